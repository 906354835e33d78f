//! Reference semantics of the quantized ops ([`crate::ir::int8`]): int8 tensors are held as
//! f32 values (exact), the arithmetic is in integers.

use super::index::{flat, indices, strides, tap_position};
use crate::ir::int8::{dequantize, quantize, rounded_div, QLinear, QOp};
use crate::ir::{numel, PoolKind};

pub fn eval(
    q: &QOp,
    inputs: &[(&[f32], &[usize])],
    out_shape: &[usize],
) -> Result<Vec<f32>, String> {
    let (x, xs) = inputs[0];
    let ints = |x: &[f32]| -> Vec<i32> { x.iter().map(|&v| v as i32).collect() };
    let floats = |y: Vec<i32>| -> Vec<f32> { y.into_iter().map(|v| v as f32).collect() };
    Ok(match q {
        QOp::Quantize(p) => x.iter().map(|&v| quantize(v, *p) as f32).collect(),
        QOp::Dequantize(p) => x.iter().map(|&v| dequantize(v as i32, *p)).collect(),
        QOp::Linear(l) => match &l.pool {
            None => floats(linear(l, &ints(x), xs, out_shape)),
            // The convolution, then the pooling, as two ops (the generated code fuses them).
            Some(window) => {
                let conv_shape = l.float_op().output_shape(&[xs])?;
                let y = floats(linear(l, &ints(x), xs, &conv_shape));
                super::pool::pool(&[(&y, &conv_shape)], out_shape, PoolKind::Max, window)
            }
        },
        QOp::Pool { kind, window } => match kind {
            // The largest integer, exactly as in floats.
            PoolKind::Max => super::pool::pool(inputs, out_shape, *kind, window),
            PoolKind::Average => {
                let x = ints(x);
                let (os, xst) = (strides(out_shape), strides(xs));
                let rank = window.size.len();
                let channels = xs[rank];
                let mut out = vec![0; numel(out_shape)];
                for o in indices(&out_shape[..rank]) {
                    for c in 0..channels {
                        let (mut sum, mut count) = (0i32, 0i32);
                        for t in indices(&window.size) {
                            if let Some(p) = tap_position(&o, &t, window, xs) {
                                sum += x[flat(&p, &xst) + c];
                                count += 1;
                            }
                        }
                        out[flat(&o, &os) + c] = rounded_div(sum, count);
                    }
                }
                floats(out)
            }
        },
        QOp::GlobalPool { kind } => match kind {
            PoolKind::Max => super::pool::global_pool(inputs, out_shape, *kind),
            PoolKind::Average => {
                let x = ints(x);
                let channels = out_shape[0];
                let positions = x.len() / channels;
                let out = (0..channels)
                    .map(|c| {
                        let sum: i32 = (0..positions).map(|p| x[p * channels + c]).sum();
                        rounded_div(sum, positions as i32)
                    })
                    .collect();
                floats(out)
            }
        },
        QOp::Add(add) => {
            let (a, b) = (ints(x), ints(inputs[1].0));
            floats(a.iter().zip(&b).map(|(&a, &b)| add.apply(a, b)).collect())
        }
        QOp::Pad { padding, value } => {
            super::layout::pad(inputs, out_shape, padding, *value as f32)
        }
    })
}

/// A Dense (`x` of any rank, the last axis contracted) or a convolution.
fn linear(l: &QLinear, x: &[i32], xs: &[usize], out_shape: &[usize]) -> Vec<i32> {
    let k = &l.kernel;
    let w: Vec<i32> = k.data.iter().map(|&v| v as i32).collect();
    let zero = l.input.zero_point;
    let finish = |o: usize, acc: i32| {
        let y = crate::ir::int8::requantize(acc, l.requant[o]) + l.output.zero_point;
        y.clamp(l.lo, l.hi)
    };
    let Some((window, groups)) = &l.conv else {
        let (inputs, units) = (k.shape[0], k.shape[1]);
        let mut out = Vec::with_capacity(numel(out_shape));
        for row in x.chunks_exact(inputs) {
            for o in 0..units {
                let mut acc = l.bias[o];
                for (i, &v) in row.iter().enumerate() {
                    acc += (v - zero) * w[i * units + o];
                }
                out.push(finish(o, acc));
            }
        }
        return out;
    };
    let mut out = vec![0; numel(out_shape)];
    let (os, xst, ks) = (strides(out_shape), strides(xs), strides(&k.shape));
    let rank = window.size.len();
    let (channels, filters) = (xs[rank], out_shape[rank]);
    let (per_group, f_per_group) = (channels / groups, filters / groups);
    for o in indices(&out_shape[..rank]) {
        for f in 0..filters {
            let g = f / f_per_group;
            let mut acc = l.bias[f];
            for t in indices(&window.size) {
                // Padding holds the real 0: `x - zero` is 0 there.
                let Some(p) = tap_position(&o, &t, window, xs) else {
                    continue;
                };
                let base = flat(&p, &xst);
                for ci in 0..per_group {
                    let wv = w[flat(&t, &ks) + ci * ks[rank] + f];
                    acc += (x[base + g * per_group + ci] - zero) * wv;
                }
            }
            out[flat(&o, &os) + f] = finish(f, acc);
        }
    }
    out
}
