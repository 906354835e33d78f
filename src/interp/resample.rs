//! Reference semantics of upsampling, resizing and adaptive pooling.

use super::index::{flat, indices, strides};
use crate::ir::{adaptive_windows, numel, resize_taps, PoolKind, ResizeMethod};

pub fn upsample(
    inputs: &[(&[f32], &[usize])],
    out_shape: &[usize],
    factors: &[usize],
    bilinear: bool,
) -> Vec<f32> {
    let (x, xs) = inputs[0];
    let mut out = vec![0.0f32; numel(out_shape)];
    let os = strides(out_shape);
    let xst = strides(xs);

    let rank = factors.len();
    for o in indices(out_shape) {
        out[flat(&o, &os)] = if bilinear {
            bilinear_at(x, xs, &xst, &o, factors)
        } else {
            let i: Vec<usize> = (0..=rank)
                .map(|d| if d < rank { o[d] / factors[d] } else { o[d] })
                .collect();
            x[flat(&i, &xst)]
        };
    }
    out
}

/// TensorFlow's bilinear resize (half-pixel centres) at output index `o`.
fn bilinear_at(x: &[f32], xs: &[usize], xst: &[usize], o: &[usize], factors: &[usize]) -> f32 {
    let rank = factors.len();
    // Per spatial axis: the two source rows and the weight of the second.
    let taps: Vec<(usize, usize, f32)> = (0..rank)
        .map(|d| {
            let src = (o[d] as f32 + 0.5) / factors[d] as f32 - 0.5;
            let lo = src.floor();
            let lerp = src - lo;
            let top = xs[d] - 1;
            let clamp = |v: f32| (v.max(0.0) as usize).min(top);
            (clamp(lo), clamp(src.ceil()), lerp)
        })
        .collect();
    // Interpolate axis by axis, the last spatial axis first (as TF's x then y).
    let corners = 1usize << rank;
    let mut values: Vec<f32> = (0..corners)
        .map(|m| {
            let mut i: Vec<usize> = (0..rank)
                .map(|d| {
                    if m >> (rank - 1 - d) & 1 == 1 {
                        taps[d].1
                    } else {
                        taps[d].0
                    }
                })
                .collect();
            i.push(o[rank]);
            x[flat(&i, xst)]
        })
        .collect();
    for &(_, _, lerp) in taps.iter().rev() {
        values = values
            .chunks(2)
            .map(|pair| pair[0] + (pair[1] - pair[0]) * lerp)
            .collect();
    }
    values[0]
}

/// TensorFlow's resize with half-pixel centres: per output position, the corners of its
/// taps, blended the last spatial axis first (bilinear) or the `lo` corner alone (nearest).
pub fn resize(x: &[f32], xs: &[usize], out_shape: &[usize], method: ResizeMethod) -> Vec<f32> {
    let mut out = vec![0.0f32; numel(out_shape)];
    let rank = out_shape.len() - 1;
    let (xst, os) = (strides(xs), strides(out_shape));
    let taps: Vec<_> = (0..rank)
        .map(|d| resize_taps(xs[d], out_shape[d], method))
        .collect();
    for o in indices(out_shape) {
        let t: Vec<_> = (0..rank).map(|d| taps[d][o[d]]).collect();
        let corner = |mask: usize| {
            let mut i: Vec<usize> = (0..rank)
                .map(|d| {
                    if mask >> (rank - 1 - d) & 1 == 1 {
                        t[d].hi
                    } else {
                        t[d].lo
                    }
                })
                .collect();
            i.push(o[rank]);
            x[flat(&i, &xst)]
        };
        out[flat(&o, &os)] = match method {
            ResizeMethod::Nearest => corner(0),
            ResizeMethod::Bilinear => {
                let mut values: Vec<f32> = (0..1usize << rank).map(corner).collect();
                for d in (0..rank).rev() {
                    values = values
                        .chunks(2)
                        .map(|p| p[0] + (p[1] - p[0]) * t[d].lerp)
                        .collect();
                }
                values[0]
            }
        };
    }
    out
}

/// Adaptive pooling: the max or mean of each output position's window (the product of its
/// per-axis windows).
pub fn adaptive_pool(x: &[f32], xs: &[usize], out_shape: &[usize], kind: PoolKind) -> Vec<f32> {
    let mut out = vec![0.0f32; numel(out_shape)];
    let rank = out_shape.len() - 1;
    let (xst, os) = (strides(xs), strides(out_shape));
    let windows: Vec<_> = (0..rank)
        .map(|d| adaptive_windows(xs[d], out_shape[d]))
        .collect();
    for o in indices(out_shape) {
        let w: Vec<(usize, usize)> = (0..rank).map(|d| windows[d][o[d]]).collect();
        let lengths: Vec<usize> = w.iter().map(|(s, e)| e - s).collect();
        let (mut sum, mut max, mut count) = (0.0f32, f32::NEG_INFINITY, 0usize);
        for t in indices(&lengths) {
            let mut i: Vec<usize> = (0..rank).map(|d| w[d].0 + t[d]).collect();
            i.push(o[rank]);
            let v = x[flat(&i, &xst)];
            sum += v;
            count += 1;
            // As the generated code: a NaN in the window is skipped.
            if v > max {
                max = v;
            }
        }
        out[flat(&o, &os)] = match kind {
            PoolKind::Max => max,
            PoolKind::Average => sum / count as f32,
        };
    }
    out
}
