//! Frontend helpers shared by the spatial layers (convolutions, pooling, padding,
//! upsampling): integer-or-tuple options, padding modes resolved to explicit `(before,
//! after)` amounts, and `data_format`.
//!
//! The IR is channels-last. A `channels_first` layer whose op needs the channels last
//! (convolutions, pooling, global pooling, upsampling, Flatten) becomes a chain: a
//! `Transpose` node `NAME/to_channels_last`, the op(s) on channels-last data, and, when the
//! output still has spatial axes, a `Transpose` node `NAME/to_channels_first`, so every
//! tensor between layers keeps Keras's layout and numbers match Keras exactly. Layers that
//! work on any axis (ZeroPadding, Cropping) pad or slice the channels-first axes directly.

use serde_json::Value;

use super::{chain, Options, Step};
use crate::error::escape_for_message as esc;
use crate::ir::{Activation, Op, Window, MAX_TENSOR_ELEMENTS};
use crate::keras::activation::ActivationSpec;

/// How a window is padded (Keras `padding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PaddingMode {
    Valid,
    Same,
    /// Conv1D only: `(k - 1) * d` zeros before, none after.
    Causal,
}

/// Largest integer accepted in a size option, so that window arithmetic cannot overflow.
const MAX_SIZE: u64 = MAX_TENSOR_ELEMENTS as u64;

/// A non-negative integer option value no larger than [`MAX_SIZE`].
fn size(value: &Value) -> Option<usize> {
    value
        .as_u64()
        .filter(|&v| v <= MAX_SIZE)
        .and_then(|v| usize::try_from(v).ok())
}

/// A positive integer option; absent or null gives `default` (a problem when there is
/// none).
pub(crate) fn positive(options: &mut Options, key: &str, default: Option<usize>) -> Option<usize> {
    let Some(value) = options.get(key) else {
        if default.is_none() {
            options.problems.push(format!("option '{key}' is missing"));
        }
        return default;
    };
    match size(value).filter(|&v| v > 0) {
        Some(v) => Some(v),
        None => {
            options.problems.push(format!(
                "option '{key}'={} must be a positive integer",
                esc(&value.to_string())
            ));
            None
        }
    }
}

/// An option that is one positive integer or `rank` of them (`kernel_size`, `strides`,
/// `dilation_rate`, `pool_size`, `size`). Absent or null gives `default`; a missing
/// required option, a wrong length or a non-positive value is a problem (and `None`).
pub(crate) fn tuple(
    options: &mut Options,
    key: &str,
    rank: usize,
    default: Option<Vec<usize>>,
) -> Option<Vec<usize>> {
    let Some(value) = options.get(key) else {
        if default.is_none() {
            options.problems.push(format!("option '{key}' is missing"));
        }
        return default;
    };
    let values: Option<Vec<usize>> = match value {
        Value::Array(items) if items.len() == rank => items.iter().map(size).collect(),
        Value::Array(_) => None,
        single => size(single).map(|v| vec![v; rank]),
    };
    match values {
        Some(v) if v.iter().all(|&d| d > 0) => Some(v),
        _ => {
            options.problems.push(format!(
                "option '{key}'={} must be a positive integer or {rank} of them",
                esc(&value.to_string())
            ));
            None
        }
    }
}

/// `(before, after)` amounts per spatial axis (`ZeroPadding*` `padding`, `Cropping*`
/// `cropping`): an integer for every side; for rank 1 a pair `(before, after)`; for
/// rank 2 and 3 `rank` integers (symmetric per axis) or `rank` pairs.
pub(crate) fn pairs(options: &mut Options, key: &str, rank: usize) -> Option<Vec<(usize, usize)>> {
    let value = options.get(key)?;
    let pair = |v: &Value| -> Option<(usize, usize)> {
        match v.as_array()?.as_slice() {
            [a, b] => Some((size(a)?, size(b)?)),
            _ => None,
        }
    };
    let parsed: Option<Vec<(usize, usize)>> = match value {
        Value::Array(items) if rank == 1 => pair(value).map(|p| vec![p]).or_else(|| {
            // `[[before, after]]`
            match items.as_slice() {
                [inner] => pair(inner).map(|p| vec![p]),
                _ => None,
            }
        }),
        Value::Array(items) if items.len() == rank => {
            if items.iter().all(Value::is_array) {
                items.iter().map(pair).collect()
            } else {
                items.iter().map(|v| size(v).map(|n| (n, n))).collect()
            }
        }
        Value::Array(_) => None,
        single => size(single).map(|n| vec![(n, n); rank]),
    };
    if parsed.is_none() {
        options.problems.push(format!(
            "option '{key}'={} must be an integer, {rank} integers or {rank} pairs of \
             non-negative integers",
            esc(&value.to_string())
        ));
    }
    parsed
}

/// `padding`: `valid`, `same`, or (when `allow_causal`) `causal`, in any case.
pub(crate) fn padding_mode(options: &mut Options, allow_causal: bool) -> Option<PaddingMode> {
    let Some(value) = options.get("padding") else {
        return Some(PaddingMode::Valid);
    };
    let mode = value.as_str().map(str::to_ascii_lowercase);
    match mode.as_deref() {
        Some("valid") => Some(PaddingMode::Valid),
        Some("same") => Some(PaddingMode::Same),
        Some("causal") if allow_causal => Some(PaddingMode::Causal),
        _ => {
            let allowed = if allow_causal {
                "'valid', 'same' or 'causal'"
            } else {
                "'valid' or 'same'"
            };
            options.problems.push(format!(
                "option 'padding'={} is not supported (only {allowed})",
                esc(&value.to_string())
            ));
            None
        }
    }
}

/// `data_format`: whether the layer's input is channels-first. Absent means
/// channels-last (Keras's default `image_data_format`).
pub(crate) fn channels_first(options: &mut Options) -> Option<bool> {
    match options.get("data_format") {
        None => Some(false),
        Some(Value::String(s)) if s == "channels_last" => Some(false),
        Some(Value::String(s)) if s == "channels_first" => Some(true),
        Some(other) => {
            options.problems.push(format!(
                "option 'data_format'={} is not supported",
                esc(&other.to_string())
            ));
            None
        }
    }
}

/// `(before, after)` padding of `same`: the output has `ceil(len / stride)` positions.
pub(crate) fn same_padding(
    len: usize,
    size: usize,
    stride: usize,
    dilation: usize,
) -> (usize, usize) {
    let out = len.div_ceil(stride);
    let span = (size - 1) * dilation + 1;
    let total = ((out.max(1) - 1) * stride + span).saturating_sub(len);
    (total / 2, total - total / 2)
}

/// The window of a convolution or pooling over `spatial` input lengths.
pub(crate) fn window(
    spatial: &[usize],
    size: &[usize],
    strides: &[usize],
    dilation: &[usize],
    mode: PaddingMode,
) -> Window {
    let padding = (0..size.len())
        .map(|d| match mode {
            PaddingMode::Valid => (0, 0),
            PaddingMode::Same => same_padding(spatial[d], size[d], strides[d], dilation[d]),
            PaddingMode::Causal => ((size[d] - 1) * dilation[d], 0),
        })
        .collect();
    Window {
        size: size.to_vec(),
        strides: strides.to_vec(),
        dilation: dilation.to_vec(),
        padding,
    }
}

/// The axis order of a spatial layer: `spatial` axes and one channel axis, channels last
/// or first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub channels_first: bool,
    pub spatial: usize,
}

impl Layout {
    /// The input shape in channels-last order, after checking its rank.
    pub fn channels_last(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        if input.len() != self.spatial + 1 {
            return Err(format!(
                "expects an input with {} spatial axes and a channel axis, got shape {input:?}",
                self.spatial
            ));
        }
        let mut shape = input.to_vec();
        if self.channels_first {
            shape.rotate_left(1);
        }
        Ok(shape)
    }

    /// `core`, a chain of ops on the channels-last input, preceded for channels-first
    /// data by a transpose to channels-last and, when `back` (the output has spatial
    /// axes), followed by one to channels-first.
    pub fn wrap(&self, core: Vec<(Option<&str>, Op)>, back: bool) -> Vec<Step> {
        let mut ops = Vec::with_capacity(core.len() + 2);
        if self.channels_first {
            ops.push((Some("to_channels_last"), to_channels_last(self.spatial)));
        }
        ops.extend(core);
        if self.channels_first && back {
            ops.push((Some("to_channels_first"), to_channels_first(self.spatial)));
        }
        chain(1, ops)
    }

    /// The layer's activation on its channels-last output of rank `spatial + 1`: an axis
    /// (softmax) given in the layer's own layout is moved to its channels-last position.
    pub fn activation(&self, spec: &ActivationSpec) -> Result<Activation, String> {
        let shape = vec![1; self.spatial + 1];
        Ok(match spec.resolve(&shape)? {
            Activation::Axis { func, axis } if self.channels_first => Activation::Axis {
                func,
                axis: if axis == 0 { self.spatial } else { axis - 1 },
            },
            other => other,
        })
    }
}

/// `[C, *spatial] -> [*spatial, C]`.
pub(crate) fn to_channels_last(spatial: usize) -> Op {
    Op::Transpose {
        perm: (1..=spatial).chain([0]).collect(),
    }
}

/// `[*spatial, C] -> [C, *spatial]`.
pub(crate) fn to_channels_first(spatial: usize) -> Op {
    Op::Transpose {
        perm: std::iter::once(spatial).chain(0..spatial).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_matches_tensorflow() {
        // in 7, k 3, s 2: out 4, total (3 * 2 + 3) - 7 = 2.
        assert_eq!(same_padding(7, 3, 2, 1), (1, 1));
        // in 8, k 4, s 1: total 3, the extra on the end.
        assert_eq!(same_padding(8, 4, 1, 1), (1, 2));
        // Dilated: k 3, d 2 spans 5.
        assert_eq!(same_padding(6, 3, 1, 2), (2, 2));
        // Stride larger than the window: no padding.
        assert_eq!(same_padding(6, 1, 3, 1), (0, 0));
    }

    #[test]
    fn transposes_round_trip() {
        let (Op::Transpose { perm: a }, Op::Transpose { perm: b }) =
            (to_channels_last(2), to_channels_first(2))
        else {
            panic!()
        };
        assert_eq!(a, vec![1, 2, 0]);
        assert_eq!(b, vec![2, 0, 1]);
    }
}
