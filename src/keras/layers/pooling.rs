//! Pooling: `MaxPooling1D/2D/3D`, `AveragePooling1D/2D/3D` as IR `Pool` (strides default
//! to the pool size; `same` padding as for convolutions, and average pooling divides by
//! the real elements, as TensorFlow does), and `GlobalMax/GlobalAveragePooling1D/2D/3D` as
//! `GlobalPool`, followed by a `Reshape` (`NAME/keepdims`) to size-1 spatial axes when
//! `keepdims`. `channels_first` wraps the nodes in transposes (see `spatial`).

use super::spatial::{self, Layout, PaddingMode};
use super::{single, LayerKind, Options, Step};
use crate::ir::{Op, PoolKind, Weights};

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
}
