//! `BatchNormalization` at inference, with the moving statistics, computed as TensorFlow
//! does: `inv = 1 / sqrt(var + eps)`, `inv *= gamma`, `y = x * inv + (beta - mean * inv)`.

use super::params::{to_block, FullParam};
use super::{LayerKind, Options};
use crate::ir::{Op, Weights};
use crate::keras::activation::resolve_axis;

#[derive(Debug)]
struct BatchNorm {
    /// Keras axes (batch counted, may be negative).
    axes: Vec<i64>,
    epsilon: f32,
    center: bool,
    scale: bool,
}

pub(super) fn parse(options: &mut Options) -> Option<Box<dyn LayerKind>> {
    options.ignore(&[
        "momentum",
        "beta_initializer",
        "gamma_initializer",
        "moving_mean_initializer",
        "moving_variance_initializer",
        "beta_regularizer",
        "gamma_regularizer",
        "beta_constraint",
        "gamma_constraint",
        "synchronized",
        "fused",
        "renorm_clipping",
        "renorm_momentum",
    ]);
    options.only("renorm", &false.into(), " (batch renormalization)");
    options.only("virtual_batch_size", &serde_json::Value::Null, "");
    options.only("adjustment", &serde_json::Value::Null, "");
    let axes = options.int_list("axis").unwrap_or_else(|| vec![-1]);
    let epsilon = options.f64("epsilon", 1e-3) as f32;
    let center = options.bool("center", true);
    let scale = options.bool("scale", true);
    if axes.is_empty() {
        options.problems.push("option 'axis' is empty".into());
        return None;
    }
    Some(Box::new(BatchNorm {
        axes,
        epsilon,
        center,
        scale,
    }))
}

impl LayerKind for BatchNorm {
    fn weight_names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.scale {
            names.push("gamma");
        }
        if self.center {
            names.push("beta");
        }
        names.extend(["moving_mean", "moving_variance"]);
        names
    }

    fn trainable_weights(&self) -> usize {
        usize::from(self.scale) + usize::from(self.center)
    }

    fn build(&self, input: &[usize], weights: &[Weights]) -> Result<Op, String> {
        let mut axes = self
            .axes
            .iter()
            .map(|&a| resolve_axis(a, input.len()))
            .collect::<Result<Vec<_>, _>>()?;
        axes.sort_unstable();
        axes.dedup();
        // Weights hold one value per position of the normalized axes.
        let param_shape: Vec<usize> = (0..input.len())
            .map(|a| if axes.contains(&a) { input[a] } else { 1 })
            .collect();
        let count = crate::ir::numel(&param_shape);
        let names = self.weight_names();
        for (name, w) in names.iter().zip(weights) {
            if w.data.len() != count {
                return Err(format!(
                    "weight '{name}' has shape {:?}, expected {} values for input shape {input:?}",
                    w.shape, count
                ));
            }
        }
        let mut it = weights.iter();
        let gamma = if self.scale { it.next() } else { None };
        let beta = if self.center { it.next() } else { None };
        let (Some(mean), Some(var)) = (it.next(), it.next()) else {
            return Err("missing moving statistics".into());
        };
        let mut scale = Vec::with_capacity(count);
        let mut shift = Vec::with_capacity(count);
        for i in 0..count {
            let mut inv = 1.0 / (var.data[i] + self.epsilon).sqrt();
            if let Some(g) = gamma {
                inv *= g.data[i];
            }
            let b = beta.map_or(0.0, |b| b.data[i]);
            scale.push(inv);
            shift.push(b - mean.data[i] * inv);
        }
        let scale = FullParam {
            shape: param_shape.clone(),
            data: scale,
        };
        let shift = FullParam {
            shape: param_shape,
            data: shift,
        };
        let block = to_block(&[&scale, &shift], input)?;
        let mut values = block.values.into_iter();
        Ok(Op::Affine {
            center: None,
            scale: values.next().unwrap_or_default(),
            shift: values.next().unwrap_or_default(),
            inner: block.inner,
        })
    }
}
