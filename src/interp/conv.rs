//! Reference semantics of the convolutions: plain loops over multi-indices, written for
//! clarity, not speed.

use super::index::{flat, indices, strides, tap_position};
use crate::ir::{numel, Weights, Window};

pub fn conv(
    inputs: &[(&[f32], &[usize])],
    out_shape: &[usize],
    kernel: &Weights,
    bias: Option<&Weights>,
    window: &Window,
    groups: usize,
) -> Vec<f32> {
    let (x, xs) = inputs[0];
    let mut out = vec![0.0f32; numel(out_shape)];
    let os = strides(out_shape);
    let xst = strides(xs);

    let rank = window.size.len();
    let (channels, filters) = (xs[rank], out_shape[rank]);
    let (per_group, f_per_group) = (channels / groups, filters / groups);
    let ks = strides(&kernel.shape);
    for o in indices(&out_shape[..rank]) {
        for f in 0..filters {
            let g = f / f_per_group;
            let mut acc = bias.map_or(0.0, |b| b.data[f]);
            for t in indices(&window.size) {
                let Some(p) = tap_position(&o, &t, window, xs) else {
                    continue;
                };
                let base = flat(&p, &xst);
                for ci in 0..per_group {
                    let w = kernel.data[flat(&t, &ks) + ci * ks[rank] + f];
                    acc += x[base + g * per_group + ci] * w;
                }
            }
            out[flat(&o, &os) + f] = acc;
        }
    }
    out
}

pub fn conv_transpose(
    inputs: &[(&[f32], &[usize])],
    out_shape: &[usize],
    kernel: &Weights,
    bias: Option<&Weights>,
    s: &[usize],
    dilation: &[usize],
    crop: &[usize],
) -> Vec<f32> {
    let (x, xs) = inputs[0];
    let mut out = vec![0.0f32; numel(out_shape)];
    let os = strides(out_shape);
    let xst = strides(xs);

    let rank = s.len();
    let (channels, filters) = (xs[rank], out_shape[rank]);
    let ks = strides(&kernel.shape);
    for (i, v) in out.iter_mut().enumerate() {
        *v = bias.map_or(0.0, |b| b.data[i % filters]);
    }
    for i in indices(&xs[..rank]) {
        for t in indices(&kernel.shape[..rank]) {
            let o: Option<Vec<usize>> = (0..rank)
                .map(|d| {
                    (i[d] * s[d] + t[d] * dilation[d])
                        .checked_sub(crop[d])
                        .filter(|&p| p < out_shape[d])
                })
                .collect();
            let Some(o) = o else { continue };
            let (ob, xb, kb) = (flat(&o, &os), flat(&i, &xst), flat(&t, &ks));
            for f in 0..filters {
                for c in 0..channels {
                    out[ob + f] += x[xb + c] * kernel.data[kb + f * channels + c];
                }
            }
        }
    }
    out
}
