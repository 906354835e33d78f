//! Keras 3's `AdaptiveAveragePooling1D/2D/3D` and `AdaptiveMaxPooling1D/2D/3D`
//! (`keras/src/layers/pooling/base_adaptive_pooling.py`; the TensorFlow backend's
//! `adaptive_*_pool` in `backend/tensorflow/nn.py`): output position `i` of an axis of
//! `in` positions pools `floor(i * in / out) .. ceil((i + 1) * in / out)`. Every window of
//! an axis has the same length when `out` divides `in`, and then the layer is an ordinary
//! `Pool` (window and stride `in / out`); otherwise an IR `AdaptivePool`.
//! TensorFlow pools the axes one after the other (the mean of per-axis means); this takes
//! the mean of the whole window, which differs only by rounding. `channels_first` wraps the
//! node in transposes (see `spatial`).

use super::spatial::{self, Layout};
use super::{single, LayerKind, Options, Step};
use crate::ir::{Op, PoolKind, Weights, Window};

#[derive(Debug)]
struct AdaptivePooling {
    kind: PoolKind,
    output: Vec<usize>,
    layout: Layout,
}

/// Parses an `Adaptive{Average,Max}Pooling{1,2,3}D` (Keras 3 only).
pub(super) fn parse(class: &str, options: &mut Options) -> Option<Box<dyn LayerKind>> {
    let rank = match class.as_bytes().get(class.len().saturating_sub(2)) {
        Some(b'1') => 1,
        Some(b'2') => 2,
        _ => 3,
    };
    let kind = if class.contains("Max") {
        PoolKind::Max
    } else {
        PoolKind::Average
    };
    let output = spatial::tuple(options, "output_size", rank, None);
    let channels_first = spatial::channels_first(options);
    Some(Box::new(AdaptivePooling {
        kind,
        output: output?,
        layout: Layout {
            channels_first: channels_first?,
            spatial: rank,
        },
    }))
}

impl LayerKind for AdaptivePooling {
    fn weight_names(&self) -> Vec<&'static str> {
        vec![]
    }

    fn steps(&self, inputs: &[&[usize]], _weights: &[Weights]) -> Result<Vec<Step>, String> {
        let shape = self.layout.channels_last(single(inputs)?)?;
        let lengths = &shape[..self.output.len()];
        if lengths.contains(&0) {
            return Err(format!(
                "expects non-empty spatial axes, got shape {shape:?}"
            ));
        }
        let divides = lengths
            .iter()
            .zip(&self.output)
            .all(|(&n, &out)| n % out == 0);
        let op = if divides {
            let size: Vec<usize> = lengths
                .iter()
                .zip(&self.output)
                .map(|(&n, &out)| n / out)
                .collect();
            Op::Pool {
                kind: self.kind,
                window: Window {
                    strides: size.clone(),
                    dilation: vec![1; size.len()],
                    padding: vec![(0, 0); size.len()],
                    size,
                },
            }
        } else {
            Op::AdaptivePool {
                kind: self.kind,
                output: self.output.clone(),
            }
        };
        Ok(self.layout.wrap(vec![(None, op)], true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(output: &[usize]) -> AdaptivePooling {
        AdaptivePooling {
            kind: PoolKind::Average,
            output: output.to_vec(),
            layout: Layout {
                channels_first: false,
                spatial: output.len(),
            },
        }
    }

    #[test]
    fn divisible_sizes_are_ordinary_pooling() {
        let steps = layer(&[2, 3]).steps(&[&[8, 9, 4]], &[]).unwrap();
        let Op::Pool { window, .. } = &steps[0].op else {
            panic!("{:?}", steps[0].op)
        };
        assert_eq!(
            (window.size.clone(), window.strides.clone()),
            (vec![4, 3], vec![4, 3])
        );
        let steps = layer(&[3, 3]).steps(&[&[8, 9, 4]], &[]).unwrap();
        assert!(matches!(steps[0].op, Op::AdaptivePool { .. }));
        // Larger outputs than inputs overlap windows; still fine.
        assert!(layer(&[5]).steps(&[&[3, 2]], &[]).is_ok());
        assert!(layer(&[5]).steps(&[&[3, 2, 1]], &[]).is_err());
    }
}
