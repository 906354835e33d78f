//! Transposed convolutions `Conv1DTranspose/2DTranspose/3DTranspose` as IR `ConvTranspose`.
//!
//! Per spatial axis, with `k_eff = (k - 1) * d + 1` (from Keras's
//! `compute_conv_transpose_output_shape` and tf.keras's `deconv_output_length`, which
//! agree):
//! - output length without `output_padding`: `same` → `in * s`; `valid` →
//!   `in * s + max(k_eff - s, 0)`; with it: `(in - 1) * s + k_eff - 2 * pad +
//!   output_padding`, `pad = k_eff / 2` for `same`, 0 for `valid`;
//! - TensorFlow computes the gradient of a convolution with that padding whose input is the
//!   output: input position `i` and tap `t` land on full position `i * s + t * d`, shifted
//!   left by the convolution's `before` padding, which is `crop = max(full - out, 0) / 2`
//!   for `same` (`full = (in - 1) * s + k_eff`) and 0 for `valid`. Checked against Keras 3
//!   and tf.keras on every combination of lengths 4-5, kernels 1-4, strides 1-3, dilation
//!   1-2 and output paddings.

use super::conv::activation_option;
use super::spatial::{self, Layout, PaddingMode};
use super::{check_shape, single, LayerKind, Options, Step};
use crate::error::escape_for_message as esc;
use crate::ir::{Op, Weights};
use crate::keras::activation::ActivationSpec;
use crate::keras::config::KerasVersion;

#[derive(Debug)]
struct ConvTranspose {
    filters: usize,
    kernel_size: Vec<usize>,
    strides: Vec<usize>,
    dilation: Vec<usize>,
    padding: PaddingMode,
    output_padding: Option<Vec<usize>>,
    layout: Layout,
    use_bias: bool,
    activation: ActivationSpec,
}

pub(super) fn parse(
    class: &str,
    options: &mut Options,
    version: KerasVersion,
) -> Option<Box<dyn LayerKind>> {
    let rank = match class {
        "Conv1DTranspose" => 1,
        "Conv2DTranspose" => 2,
        _ => 3,
    };
    options.ignore(&[
        "kernel_initializer",
        "bias_initializer",
        "kernel_regularizer",
        "bias_regularizer",
        "kernel_constraint",
        "bias_constraint",
    ]);
    // tf.keras writes `groups: 1`.
    options.only("groups", &1.into(), " (grouped transposed convolutions)");
    let filters = spatial::positive(options, "filters", None);
    let kernel_size = spatial::tuple(options, "kernel_size", rank, None);
    let strides = spatial::tuple(options, "strides", rank, Some(vec![1; rank]));
    let dilation = spatial::tuple(options, "dilation_rate", rank, Some(vec![1; rank]));
    let padding = spatial::padding_mode(options, false);
    let output_padding = output_padding(options, rank);
    let channels_first = spatial::channels_first(options);
    let use_bias = options.bool("use_bias", true);
    let activation = activation_option(options, version);
    Some(Box::new(ConvTranspose {
        filters: filters?,
        kernel_size: kernel_size?,
        strides: strides?,
        dilation: dilation?,
        padding: padding?,
        output_padding: output_padding?,
        layout: Layout {
            channels_first: channels_first?,
            spatial: rank,
        },
        use_bias,
        activation: activation?,
    }))
}

/// `output_padding`: null, one non-negative integer or `rank` of them.
fn output_padding(options: &mut Options, rank: usize) -> Option<Option<Vec<usize>>> {
    let Some(value) = options.get("output_padding") else {
        return Some(None);
    };
    let as_size = |v: &serde_json::Value| {
        v.as_u64()
            .filter(|&v| v <= crate::ir::MAX_TENSOR_ELEMENTS as u64)
            .and_then(|v| usize::try_from(v).ok())
    };
    let parsed: Option<Vec<usize>> = match value {
        serde_json::Value::Array(items) if items.len() == rank => {
            items.iter().map(as_size).collect()
        }
        serde_json::Value::Array(_) => None,
        single => as_size(single).map(|v| vec![v; rank]),
    };
    if parsed.is_none() {
        options.problems.push(format!(
            "option 'output_padding'={} must be a non-negative integer or {rank} of them",
            esc(&value.to_string())
        ));
        return None;
    }
    Some(parsed)
}

impl ConvTranspose {
    /// Output length and crop along spatial axis `d` for an input of `len`.
    fn geometry(&self, d: usize, len: usize) -> Result<(usize, usize), String> {
        let (k, s) = (self.kernel_size[d], self.strides[d]);
        let k_eff = (k - 1) * self.dilation[d] + 1;
        let same = self.padding == PaddingMode::Same;
        let output = match (&self.output_padding, same) {
            (None, true) => len * s,
            (None, false) => len * s + k_eff.saturating_sub(s),
            (Some(extra), true) => (len - 1) * s + k_eff % 2 + extra[d],
            (Some(extra), false) => (len - 1) * s + k_eff + extra[d],
        };
        if output == 0 {
            return Err(format!(
                "the output would be empty along spatial axis {d} (input length {len})"
            ));
        }
        let full = (len - 1) * s + k_eff;
        let crop = if same {
            full.saturating_sub(output) / 2
        } else {
            0
        };
        Ok((output, crop))
    }
}

impl LayerKind for ConvTranspose {
    fn weight_names(&self) -> Vec<&'static str> {
        if self.use_bias {
            vec!["kernel", "bias"]
        } else {
            vec!["kernel"]
        }
    }

    fn steps(&self, inputs: &[&[usize]], weights: &[Weights]) -> Result<Vec<Step>, String> {
        let input = self.layout.channels_last(single(inputs)?)?;
        let rank = self.kernel_size.len();
        let channels = input[rank];
        let kernel = weights.first().ok_or("missing kernel")?;
        let mut kernel_shape = self.kernel_size.clone();
        kernel_shape.extend([self.filters, channels]);
        check_shape("kernel", kernel, &kernel_shape)?;
        let bias = match weights.get(1) {
            Some(b) if self.use_bias => {
                check_shape("bias", b, &[self.filters])?;
                Some(b.clone())
            }
            _ => None,
        };
        let (output, crop) = (0..rank)
            .map(|d| self.geometry(d, input[d]))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .unzip();
        let op = Op::ConvTranspose {
            kernel: kernel.clone(),
            bias,
            strides: self.strides.clone(),
            dilation: self.dilation.clone(),
            crop,
            output,
            activation: self.layout.activation(&self.activation)?,
        };
        Ok(self.layout.wrap(vec![(None, op)], true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(k: usize, s: usize, d: usize, same: bool, extra: Option<usize>) -> ConvTranspose {
        ConvTranspose {
            filters: 1,
            kernel_size: vec![k],
            strides: vec![s],
            dilation: vec![d],
            padding: if same {
                PaddingMode::Same
            } else {
                PaddingMode::Valid
            },
            output_padding: extra.map(|e| vec![e]),
            layout: Layout {
                channels_first: false,
                spatial: 1,
            },
            use_bias: false,
            activation: ActivationSpec::linear(),
        }
    }

    #[test]
    fn output_lengths_and_crops() {
        // valid: (in - 1) * s + max(k_eff, s), no crop.
        assert_eq!(layer(3, 2, 1, false, None).geometry(0, 4), Ok((9, 0)));
        assert_eq!(layer(2, 3, 1, false, None).geometry(0, 4), Ok((12, 0)));
        // same: in * s; full 9, crop (9 - 8) / 2 = 0.
        assert_eq!(layer(3, 2, 1, true, None).geometry(0, 4), Ok((8, 0)));
        // same, k 4, s 1: full 7, out 4, crop 1.
        assert_eq!(layer(4, 1, 1, true, None).geometry(0, 4), Ok((4, 1)));
        // same with output_padding: (in - 1) * s + k_eff % 2 + p; full 24, crop 0.
        assert_eq!(layer(3, 3, 1, true, Some(1)).geometry(0, 8), Ok((23, 0)));
        // dilated valid: k_eff 5.
        assert_eq!(layer(3, 1, 2, false, None).geometry(0, 4), Ok((8, 0)));
    }
}
