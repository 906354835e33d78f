//! `Normalization`: `(x - mean) / max(sqrt(var), 1e-7)`, or with `invert`
//! `x * max(sqrt(var), 1e-7) + mean`; mean and variance from the config or the weights
//! (`mean`, `variance`, `count` after `adapt()`).

use super::params::{to_block, ConstArray, FullParam};
use super::{LayerKind, Options};
use crate::ir::{Op, Weights};
use crate::keras::activation::resolve_axis;

/// Keras's `backend.epsilon()`.
const EPSILON: f32 = 1e-7;

#[derive(Debug)]
struct Normalization {
    /// Keras axes kept (batch counted, may be negative); empty = one scalar.
    axes: Vec<i64>,
    invert: bool,
    /// Mean and variance given in the config (no weights then).
    given: Option<(ConstArray, ConstArray)>,
}

pub(super) fn parse(options: &mut Options) -> Option<Box<dyn LayerKind>> {
    let axes = options.int_list("axis").unwrap_or_default();
    let invert = options.bool("invert", false);
    let mean = options.get("mean").map(ConstArray::parse);
    let variance = options.get("variance").map(ConstArray::parse);
    let given = match (mean, variance) {
        (None, None) => None,
        (Some(Ok(m)), Some(Ok(v))) => Some((m, v)),
        (Some(Err(e)), _) | (_, Some(Err(e))) => {
            options
                .problems
                .push(format!("option 'mean'/'variance': {e}"));
            return None;
        }
        _ => {
            options
                .problems
                .push("options 'mean' and 'variance' must be given together".into());
            return None;
        }
    };
    Some(Box::new(Normalization {
        axes,
        invert,
        given,
    }))
}

/// `max(sqrt(var), eps)`, keeping NaN as TensorFlow's maximum does.
fn std_dev(var: f32) -> f32 {
    let s = var.sqrt();
    if s.is_nan() {
        s
    } else {
        s.max(EPSILON)
    }
}

impl LayerKind for Normalization {
    fn weight_names(&self) -> Vec<&'static str> {
        if self.given.is_some() {
            vec![]
        } else {
            vec!["mean", "variance", "count"]
        }
    }

    fn trainable_weights(&self) -> usize {
        0
    }

    fn build(&self, input: &[usize], weights: &[Weights]) -> Result<Op, String> {
        let mut axes = self
            .axes
            .iter()
            .map(|&a| resolve_axis(a, input.len()))
            .collect::<Result<Vec<_>, _>>()?;
        axes.sort_unstable();
        axes.dedup();
        let kept: Vec<usize> = axes.iter().map(|&a| input[a]).collect();
        let (mean, var) = match &self.given {
            Some((m, v)) => {
                // A scalar broadcasts everywhere; otherwise align to the kept axes.
                let place = |a: &ConstArray| {
                    if a.shape.is_empty() {
                        Ok(FullParam {
                            shape: vec![1; input.len()],
                            data: a.data.clone(),
                        })
                    } else {
                        FullParam::on_axes(a, &axes, input)
                    }
                };
                (place(m)?, place(v)?)
            }
            None => {
                let (Some(m), Some(v)) = (weights.first(), weights.get(1)) else {
                    return Err("missing mean and variance".into());
                };
                for (name, w) in [("mean", m), ("variance", v)] {
                    if w.shape != kept {
                        return Err(format!(
                            "weight '{name}' has shape {:?}, expected {kept:?} for this input",
                            w.shape
                        ));
                    }
                }
                let to_param = |w: &Weights| {
                    FullParam::on_axes(
                        &ConstArray {
                            shape: w.shape.clone(),
                            data: w.data.clone(),
                        },
                        &axes,
                        input,
                    )
                };
                (to_param(m)?, to_param(v)?)
            }
        };
        let block = to_block(&[&mean, &var], input)?;
        let mut values = block.values.into_iter();
        let mean = values.next().unwrap_or_default();
        let std: Vec<f32> = values
            .next()
            .unwrap_or_default()
            .into_iter()
            .map(std_dev)
            .collect();
        Ok(if self.invert {
            Op::Affine {
                center: None,
                scale: std,
                shift: mean,
                inner: block.inner,
            }
        } else {
            let zeros = vec![0.0; mean.len()];
            Op::Affine {
                center: Some(mean),
                scale: std.into_iter().map(|s| 1.0 / s).collect(),
                shift: zeros,
                inner: block.inner,
            }
        })
    }
}
