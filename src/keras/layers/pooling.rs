//! Pooling: `MaxPooling1D/2D/3D`, `AveragePooling1D/2D/3D` as IR `Pool` (strides default
//! to the pool size; `same` padding as for convolutions, and average pooling divides by
//! the real elements, as TensorFlow does), and `GlobalMax/GlobalAveragePooling1D/2D/3D` as
//! `GlobalPool`, followed by a `Reshape` (`NAME/keepdims`) to size-1 spatial axes when
//! `keepdims`. `channels_first` wraps the nodes in transposes (see `spatial`).
//!
//! `GlobalAveragePooling1D` consumes a Keras mask as Keras does: the mean of the unmasked
//! steps, `sum(x * m) / sum(m)` (NaN when every step is masked, as in Keras), computed as
//! `mean(x * m) / mean(m)`; its output carries no mask.

use super::spatial::{self, Layout, PaddingMode};
use super::{single, LayerKind, Options, Source, Step};
use crate::ir::{MergeKind, Op, PoolKind, Weights};

#[derive(Debug)]
struct Pool {
    kind: PoolKind,
    size: Vec<usize>,
    strides: Vec<usize>,
    padding: PaddingMode,
    layout: Layout,
}

#[derive(Debug)]
struct GlobalPool {
    kind: PoolKind,
    keepdims: bool,
    layout: Layout,
}

fn rank_of(class: &str) -> usize {
    match class.as_bytes().get(class.len().saturating_sub(2)) {
        Some(b'1') => 1,
        Some(b'2') => 2,
        _ => 3,
    }
}

fn kind_of(class: &str) -> PoolKind {
    if class.contains("Max") {
        PoolKind::Max
    } else {
        PoolKind::Average
    }
}

pub(super) fn parse_pool(class: &str, options: &mut Options) -> Option<Box<dyn LayerKind>> {
    let rank = rank_of(class);
    // tf.keras 1D pooling defaults `pool_size` to 2.
    let size = spatial::tuple(options, "pool_size", rank, Some(vec![2; rank]));
    let strides = match &size {
        Some(size) => spatial::tuple(options, "strides", rank, Some(size.clone())),
        None => None,
    };
    let padding = spatial::padding_mode(options, false);
    let channels_first = spatial::channels_first(options);
    Some(Box::new(Pool {
        kind: kind_of(class),
        size: size?,
        strides: strides?,
        padding: padding?,
        layout: Layout {
            channels_first: channels_first?,
            spatial: rank,
        },
    }))
}

pub(super) fn parse_global(class: &str, options: &mut Options) -> Option<Box<dyn LayerKind>> {
    let keepdims = options.bool("keepdims", false);
    let channels_first = spatial::channels_first(options);
    Some(Box::new(GlobalPool {
        kind: kind_of(class),
        keepdims,
        layout: Layout {
            channels_first: channels_first?,
            spatial: rank_of(class),
        },
    }))
}

impl LayerKind for Pool {
    fn weight_names(&self) -> Vec<&'static str> {
        vec![]
    }

    fn steps(&self, inputs: &[&[usize]], _weights: &[Weights]) -> Result<Vec<Step>, String> {
        let input = self.layout.channels_last(single(inputs)?)?;
        let rank = self.size.len();
        let window = spatial::window(
            &input[..rank],
            &self.size,
            &self.strides,
            &vec![1; rank],
            self.padding,
        );
        let op = Op::Pool {
            kind: self.kind,
            window,
        };
        Ok(self.layout.wrap(vec![(None, op)], true))
    }
}

impl LayerKind for GlobalPool {
    fn weight_names(&self) -> Vec<&'static str> {
        vec![]
    }

    fn steps(&self, inputs: &[&[usize]], _weights: &[Weights]) -> Result<Vec<Step>, String> {
        let input = self.layout.channels_last(single(inputs)?)?;
        let rank = self.layout.spatial;
        let channels = i64::try_from(input[rank]).map_err(|_| "too many channels")?;
        let mut core = vec![(None, Op::GlobalPool { kind: self.kind })];
        if self.keepdims {
            let mut target = vec![1i64; rank];
            if self.layout.channels_first {
                target.insert(0, channels);
            } else {
                target.push(channels);
            }
            core.push((Some("keepdims"), Op::Reshape { target }));
        }
        Ok(self.layout.wrap(core, false))
    }

    fn masked_steps(
        &self,
        inputs: &[&[usize]],
        _weights: &[Weights],
    ) -> Option<Result<Vec<Step>, String>> {
        if self.kind != PoolKind::Average || self.layout.spatial != 1 {
            return None;
        }
        Some(self.masked_mean(inputs))
    }
}

impl GlobalPool {
    /// `GlobalAveragePooling1D` over `[steps, channels]` (or `[channels, steps]`) with a
    /// `[steps]` mask as the second input.
    fn masked_mean(&self, inputs: &[&[usize]]) -> Result<Vec<Step>, String> {
        let [input, mask] = inputs else {
            return Err(format!("expects an input and a mask, got {inputs:?}"));
        };
        let shape = self.layout.channels_last(input)?;
        let (steps, channels) = (shape[0], shape[1]);
        if **mask != [steps] {
            return Err(format!(
                "the Keras mask has shape {mask:?}, expected [{steps}] for input {input:?}"
            ));
        }
        let steps_i = i64::try_from(steps).map_err(|_| "too many steps")?;
        let channels_i = i64::try_from(channels).map_err(|_| "too many channels")?;
        let cf = self.layout.channels_first;
        let column = Op::Reshape {
            target: if cf {
                vec![1, steps_i]
            } else {
                vec![steps_i, 1]
            },
        };
        let mut out = vec![
            Step::new(Some("mask_column"), column, vec![Source::Input(1)]),
            Step::new(
                Some("masked"),
                Op::Merge {
                    kind: MergeKind::Multiply,
                },
                vec![Source::Input(0), Source::Step(0)],
            ),
        ];
        if cf {
            out.push(Step::new(
                Some("to_channels_last"),
                Op::Transpose { perm: vec![1, 0] },
                vec![Source::Step(1)],
            ));
            out.push(Step::new(
                Some("mask_steps"),
                Op::Reshape {
                    target: vec![steps_i, 1],
                },
                vec![Source::Input(1)],
            ));
        }
        let (values, mask_steps) = if cf { (2, 3) } else { (1, 0) };
        let average = || Op::GlobalPool {
            kind: PoolKind::Average,
        };
        out.push(Step::new(
            Some("sum"),
            average(),
            vec![Source::Step(values)],
        ));
        out.push(Step::new(
            Some("count"),
            average(),
            vec![Source::Step(mask_steps)],
        ));
        let n = out.len();
        out.push(Step::new(
            None,
            Op::Merge {
                kind: MergeKind::Divide,
            },
            vec![Source::Step(n - 2), Source::Step(n - 1)],
        ));
        if self.keepdims {
            let target = if cf {
                vec![channels_i, 1]
            } else {
                vec![1, channels_i]
            };
            out.push(Step::new(
                Some("keepdims"),
                Op::Reshape { target },
                vec![Source::Step(n)],
            ));
        }
        Ok(out)
    }
}
