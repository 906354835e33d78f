//! Index helpers of the reference loops: strides, multi-indices, broadcasting, window taps.

use crate::ir::{numel, Window};

/// Row-major strides of `shape`.
pub(super) fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

/// Every multi-index of `shape`, in row-major order.
pub(super) fn indices(shape: &[usize]) -> impl Iterator<Item = Vec<usize>> + '_ {
    (0..numel(shape)).map(move |mut flat| {
        let mut idx = vec![0; shape.len()];
        for d in (0..shape.len()).rev() {
            idx[d] = flat % shape[d];
            flat /= shape[d];
        }
        idx
    })
}

pub(super) fn flat(idx: &[usize], strides: &[usize]) -> usize {
    idx.iter().zip(strides).map(|(i, s)| i * s).sum()
}

/// The flat position in an operand of `shape` that output index `o` reads under numpy
/// broadcasting (shapes aligned at their last axes, axes of size 1 repeated).
pub(super) fn broadcast_flat(o: &[usize], shape: &[usize]) -> usize {
    let o = &o[o.len() - shape.len()..];
    let i: Vec<usize> = o
        .iter()
        .zip(shape)
        .map(|(&o, &d)| if d == 1 { 0 } else { o })
        .collect();
    flat(&i, &strides(shape))
}

/// The input position a window tap reads, or `None` when it falls in the padding.
pub(super) fn tap_position(
    out: &[usize],
    tap: &[usize],
    w: &Window,
    x_shape: &[usize],
) -> Option<Vec<usize>> {
    (0..tap.len())
        .map(|d| {
            let p = out[d] * w.strides[d] + tap[d] * w.dilation[d];
            p.checked_sub(w.padding[d].0).filter(|&p| p < x_shape[d])
        })
        .collect()
}
