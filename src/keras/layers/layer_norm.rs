//! `LayerNormalization`, `GroupNormalization`, `UnitNormalization` and `RMSNormalization`:
//! per-sample statistics over some axes, one [`Op::Normalize`] each. The formulas follow
//! Keras 3 (`keras/src/ops/nn.py` `_layer_normalization`, `_normalize` and
//! `_rms_normalization`, `layers/normalization/group_normalization.py`), which tf.keras 2
//! computes the same way (it has no `RMSNormalization`).

use super::{LayerKind, Options};
use crate::ir::{numel, NormAxis, NormKind, Op, Weights};
use crate::keras::activation::resolve_axis;
use crate::keras::config::KerasVersion;

/// Options that only matter for training.
const TRAINING_KEYS: &[&str] = &[
    "beta_initializer",
    "gamma_initializer",
    "beta_regularizer",
    "gamma_regularizer",
    "beta_constraint",
    "gamma_constraint",
];

#[derive(Debug)]
struct LayerNorm {
    /// Keras axes (batch counted, may be negative).
    axes: Vec<i64>,
    epsilon: f32,
    center: bool,
    scale: bool,
    rms_scaling: bool,
}

pub(super) fn parse_layer_norm(options: &mut Options) -> Option<Box<dyn LayerKind>> {
    options.ignore(TRAINING_KEYS);
    let axes = options.int_list("axis").unwrap_or_else(|| vec![-1]);
    let epsilon = options.f64("epsilon", 1e-3) as f32;
    let center = options.bool("center", true);
    let scale = options.bool("scale", true);
    let rms_scaling = options.bool("rms_scaling", false);
    if axes.is_empty() {
        options.problems.push("option 'axis' is empty".into());
        return None;
    }
    Some(Box::new(LayerNorm {
        axes,
        epsilon,
        center,
        scale,
        rms_scaling,
    }))
}

impl LayerNorm {
    fn has_gamma(&self) -> bool {
        self.scale || self.rms_scaling
    }

    fn has_beta(&self) -> bool {
        self.center && !self.rms_scaling
    }
}

impl LayerKind for LayerNorm {
    fn weight_names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.has_gamma() {
            names.push("gamma");
        }
        if self.has_beta() {
            names.push("beta");
        }
        names
    }

    fn build(&self, input: &[usize], weights: &[Weights]) -> Result<Op, String> {
        let axes = resolve_axes(&self.axes, input)?;
        // gamma and beta span the normalised axes in sorted order.
        let param_shape: Vec<usize> = axes.iter().map(|&a| input[a]).collect();
        let view = axes_view(input, &axes);
        let mut it = self.weight_names().into_iter().zip(weights);
        let mut take = |wanted: bool| -> Result<Option<Vec<f32>>, String> {
            if !wanted {
                return Ok(None);
            }
            let (name, w) = it.next().ok_or("missing weights")?;
            if w.shape != param_shape && w.len() != numel(&param_shape) {
                return Err(format!(
                    "weight '{name}' has shape {:?}, expected {param_shape:?} for this input",
                    w.shape
                ));
            }
            Ok(Some(w.data.clone()))
        };
        let gamma = take(self.has_gamma())?;
        let beta = take(self.has_beta())?;
        let kind = if self.rms_scaling {
            NormKind::RmsScale {
                epsilon: self.epsilon,
            }
        } else {
            NormKind::Standardize {
                epsilon: self.epsilon,
            }
        };
        Ok(Op::Normalize {
            view,
            kind,
            gamma,
            beta,
        })
    }
}

#[derive(Debug)]
struct UnitNorm {
    axes: Vec<i64>,
    /// The inverse norm is capped at `1 / epsilon`.
    epsilon: f32,
}

pub(super) fn parse_unit_norm(
    options: &mut Options,
    version: KerasVersion,
) -> Option<Box<dyn LayerKind>> {
    let axes = options.int_list("axis").unwrap_or_else(|| vec![-1]);
    if axes.is_empty() {
        options.problems.push("option 'axis' is empty".into());
        return None;
    }
    // Keras 3: `x * min(rsqrt(sum x^2), 1 / 1e-12)` (ops.normalize, epsilon=1e-12);
    // tf.keras 2: `x * rsqrt(max(sum x^2, 1e-12))` (tf.linalg.l2_normalize), a cap of 1e6.
    let epsilon = if version.major >= 3 { 1e-12 } else { 1e-6 };
    Some(Box::new(UnitNorm { axes, epsilon }))
}

impl LayerKind for UnitNorm {
    fn weight_names(&self) -> Vec<&'static str> {
        vec![]
    }

    fn build(&self, input: &[usize], _weights: &[Weights]) -> Result<Op, String> {
        let axes = resolve_axes(&self.axes, input)?;
        Ok(Op::Normalize {
            view: axes_view(input, &axes),
            kind: NormKind::L2 {
                epsilon: self.epsilon,
            },
            gamma: None,
            beta: None,
        })
    }
}

#[derive(Debug)]
struct GroupNorm {
    /// `-1`: one group per channel (instance normalisation).
    groups: i64,
    axis: i64,
    epsilon: f32,
    center: bool,
    scale: bool,
}

pub(super) fn parse_group_norm(options: &mut Options) -> Option<Box<dyn LayerKind>> {
    options.ignore(TRAINING_KEYS);
    let groups = options.int("groups").unwrap_or(32);
    let axis = options.int("axis").unwrap_or(-1);
    let epsilon = options.f64("epsilon", 1e-3) as f32;
    let center = options.bool("center", true);
    let scale = options.bool("scale", true);
    if groups == 0 || groups < -1 {
        options
            .problems
            .push(format!("option 'groups'={groups} must be positive or -1"));
        return None;
    }
    Some(Box::new(GroupNorm {
        groups,
        axis,
        epsilon,
        center,
        scale,
    }))
}

impl LayerKind for GroupNorm {
    fn weight_names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.scale {
            names.push("gamma");
        }
        if self.center {
            names.push("beta");
        }
        names
    }

    fn build(&self, input: &[usize], weights: &[Weights]) -> Result<Op, String> {
        let axis = resolve_axis(self.axis, input.len())?;
        let channels = input[axis];
        let groups = usize::try_from(self.groups).unwrap_or(channels);
        if groups == 0 || groups > channels || !channels.is_multiple_of(groups) {
            return Err(format!(
                "{groups} groups do not divide the {channels} channels of axis {}",
                self.axis
            ));
        }
        let per_group = channels / groups;
        // Statistics over everything but the group: the channel axis splits into
        // (group, channel in group); gamma and beta are per channel.
        let mut axes = Vec::new();
        for (a, &len) in input.iter().enumerate() {
            if a == axis {
                axes.push(NormAxis {
                    len: groups,
                    reduced: false,
                    param_stride: per_group,
                });
                axes.push(NormAxis {
                    len: per_group,
                    reduced: true,
                    param_stride: 1,
                });
            } else {
                axes.push(NormAxis {
                    len,
                    reduced: true,
                    param_stride: 0,
                });
            }
        }
        let mut it = self.weight_names().into_iter().zip(weights);
        let mut take = |wanted: bool| -> Result<Option<Vec<f32>>, String> {
            if !wanted {
                return Ok(None);
            }
            let (name, w) = it.next().ok_or("missing weights")?;
            super::check_shape(name, w, &[channels])?;
            Ok(Some(w.data.clone()))
        };
        let gamma = take(self.scale)?;
        let beta = take(self.center)?;
        Ok(Op::Normalize {
            view: merge_axes(axes),
            kind: NormKind::Standardize {
                epsilon: self.epsilon,
            },
            gamma,
            beta,
        })
    }
}

#[derive(Debug)]
struct RmsNorm {
    /// Keras axes (batch counted, may be negative), as the config lists them.
    axes: Vec<i64>,
    epsilon: f32,
}

/// Keras 3 `RMSNormalization`: `x * rsqrt(mean(x^2) + epsilon) * scale` over `axis` (the
/// mean square, not the variance as `LayerNormalization(rms_scaling=True)`).
pub(super) fn parse_rms_norm(options: &mut Options) -> Option<Box<dyn LayerKind>> {
    options.ignore(&["scale_initializer", "scale_regularizer", "scale_constraint"]);
    let axes = options.int_list("axis").unwrap_or_else(|| vec![-1]);
    let epsilon = options.f64("epsilon", 1e-6) as f32;
    if axes.is_empty() {
        options.problems.push("option 'axis' is empty".into());
        return None;
    }
    Some(Box::new(RmsNorm { axes, epsilon }))
}

impl LayerKind for RmsNorm {
    fn weight_names(&self) -> Vec<&'static str> {
        vec!["scale"]
    }

    fn build(&self, input: &[usize], weights: &[Weights]) -> Result<Op, String> {
        let [scale] = weights else {
            return Err("missing weight 'scale'".into());
        };
        // Keras's `build` sorts the axes as given (negative ones first) and makes `scale`
        // `[input_shape[a] for a in axes]`.
        let mut raw = self.axes.clone();
        raw.sort_unstable();
        let resolved = raw
            .iter()
            .map(|&a| resolve_axis(a, input.len()))
            .collect::<Result<Vec<_>, _>>()?;
        let axes = resolve_axes(&raw, input)?;
        if axes.len() != resolved.len() {
            return Err(format!("option 'axis'={:?} names an axis twice", self.axes));
        }
        let param_shape: Vec<usize> = resolved.iter().map(|&a| input[a]).collect();
        super::check_shape("scale", scale, &param_shape)?;
        // `outputs * scale` broadcasts `scale` against the input's trailing axes (NumPy).
        let k = param_shape.len();
        let fits = k <= input.len()
            && param_shape
                .iter()
                .zip(&input[input.len() - k..])
                .all(|(&p, &d)| p == d || p == 1);
        if !fits {
            return Err(format!(
                "weight 'scale' of shape {param_shape:?} does not broadcast against the input's \
                 trailing axes {input:?} (as Keras multiplies)"
            ));
        }
        let mut param_strides = vec![0usize; input.len()];
        let mut stride = 1;
        for (i, &p) in param_shape.iter().enumerate().rev() {
            if p != 1 {
                param_strides[input.len() - k + i] = stride;
            }
            stride *= p;
        }
        let view = input
            .iter()
            .enumerate()
            .map(|(a, &len)| NormAxis {
                len,
                reduced: axes.contains(&a),
                param_stride: param_strides[a],
            })
            .collect();
        Ok(Op::Normalize {
            view: merge_axes(view),
            kind: NormKind::Rms {
                epsilon: self.epsilon,
            },
            gamma: Some(scale.data.clone()),
            beta: None,
        })
    }
}

/// Keras axes resolved against `input` (batch excluded), sorted, without repeats.
fn resolve_axes(axes: &[i64], input: &[usize]) -> Result<Vec<usize>, String> {
    let mut resolved = axes
        .iter()
        .map(|&a| resolve_axis(a, input.len()))
        .collect::<Result<Vec<_>, _>>()?;
    resolved.sort_unstable();
    resolved.dedup();
    Ok(resolved)
}

/// The view for statistics over `axes` (sorted), with parameters laid out row-major over
/// those axes (as Keras stores gamma and beta).
fn axes_view(input: &[usize], axes: &[usize]) -> Vec<NormAxis> {
    let view = input
        .iter()
        .enumerate()
        .map(|(a, &len)| {
            let reduced = axes.contains(&a);
            let param_stride = if reduced {
                axes.iter().filter(|&&b| b > a).map(|&b| input[b]).product()
            } else {
                0
            };
            NormAxis {
                len,
                reduced,
                param_stride,
            }
        })
        .collect();
    merge_axes(view)
}

/// Merges neighbouring axes that can be walked as one (same role, parameters contiguous),
/// so the common cases become one loop each: `[rows (kept), features (reduced)]`.
fn merge_axes(axes: Vec<NormAxis>) -> Vec<NormAxis> {
    let mut out: Vec<NormAxis> = Vec::new();
    for axis in axes.into_iter().filter(|a| a.len != 1) {
        match out.last_mut() {
            Some(prev)
                if prev.reduced == axis.reduced
                    && prev.param_stride == axis.param_stride * axis.len =>
            {
                prev.len *= axis.len;
                prev.param_stride = axis.param_stride;
            }
            _ => out.push(axis),
        }
    }
    if !out.iter().any(|a| a.reduced) {
        // Every normalised axis has length 1: one element per group.
        out.push(NormAxis {
            len: 1,
            reduced: true,
            param_stride: 0,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ax(len: usize, reduced: bool, param_stride: usize) -> NormAxis {
        NormAxis {
            len,
            reduced,
            param_stride,
        }
    }

    #[test]
    fn unit_norm_cap_depends_on_the_keras_version() {
        let epsilon = |major| {
            let map = serde_json::Map::new();
            let mut options = Options::new(&map);
            let kind = parse_unit_norm(&mut options, KerasVersion { major }).unwrap();
            match kind.build(&[3], &[]).unwrap() {
                Op::Normalize {
                    kind: NormKind::L2 { epsilon },
                    ..
                } => epsilon,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(epsilon(3), 1e-12);
        assert_eq!(epsilon(2), 1e-6);
    }

    #[test]
    fn last_axis_is_rows_by_features() {
        assert_eq!(
            axes_view(&[5, 3, 8], &[2]),
            vec![ax(15, false, 0), ax(8, true, 1)]
        );
    }

    #[test]
    fn several_axes_merge_when_contiguous() {
        assert_eq!(
            axes_view(&[5, 3, 8], &[1, 2]),
            vec![ax(5, false, 0), ax(24, true, 1)]
        );
        assert_eq!(
            axes_view(&[5, 3, 8], &[0, 2]),
            vec![ax(5, true, 8), ax(3, false, 0), ax(8, true, 1)]
        );
    }
}
