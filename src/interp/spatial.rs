//! Reference semantics of the spatial and multi-input ops: plain loops over multi-indices,
//! written for clarity, not speed.

use crate::ir::{
    adaptive_windows, numel, resize_taps, MergeKind, PoolKind, ReduceKind, ResizeMethod, Weights,
    Window,
};

/// Row-major strides of `shape`.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

/// Every multi-index of `shape`, in row-major order.
fn indices(shape: &[usize]) -> impl Iterator<Item = Vec<usize>> + '_ {
    (0..numel(shape)).map(move |mut flat| {
        let mut idx = vec![0; shape.len()];
        for d in (0..shape.len()).rev() {
            idx[d] = flat % shape[d];
            flat /= shape[d];
        }
        idx
    })
}

fn flat(idx: &[usize], strides: &[usize]) -> usize {
    idx.iter().zip(strides).map(|(i, s)| i * s).sum()
}

/// The flat position in an operand of `shape` that output index `o` reads under numpy
/// broadcasting (shapes aligned at their last axes, axes of size 1 repeated).
fn broadcast_flat(o: &[usize], shape: &[usize]) -> usize {
    let o = &o[o.len() - shape.len()..];
    let i: Vec<usize> = o
        .iter()
        .zip(shape)
        .map(|(&o, &d)| if d == 1 { 0 } else { o })
        .collect();
    flat(&i, &strides(shape))
}

/// One step of an elementwise merge (max and min keep `acc` when `v` is NaN, as the
/// generated code does).
fn merge(kind: MergeKind, acc: f32, v: f32) -> f32 {
    match kind {
        MergeKind::Add | MergeKind::Average => acc + v,
        MergeKind::Subtract => acc - v,
        MergeKind::Multiply => acc * v,
        MergeKind::Divide => acc / v,
        MergeKind::Maximum => {
            if acc < v {
                v
            } else {
                acc
            }
        }
        MergeKind::Minimum => {
            if v < acc {
                v
            } else {
                acc
            }
        }
    }
}

/// The input position a window tap reads, or `None` when it falls in the padding.
fn tap_position(out: &[usize], tap: &[usize], w: &Window, x_shape: &[usize]) -> Option<Vec<usize>> {
    (0..tap.len())
        .map(|d| {
            let p = out[d] * w.strides[d] + tap[d] * w.dilation[d];
            p.checked_sub(w.padding[d].0).filter(|&p| p < x_shape[d])
        })
        .collect()
}

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

pub fn pool(
    inputs: &[(&[f32], &[usize])],
    out_shape: &[usize],
    kind: PoolKind,
    window: &Window,
) -> Vec<f32> {
    let (x, xs) = inputs[0];
    let mut out = vec![0.0f32; numel(out_shape)];
    let os = strides(out_shape);
    let xst = strides(xs);

    let rank = window.size.len();
    let channels = xs[rank];
    for o in indices(&out_shape[..rank]) {
        for c in 0..channels {
            let (mut acc, mut count) = (0.0f32, 0usize);
            let mut max = f32::NEG_INFINITY;
            for t in indices(&window.size) {
                if let Some(p) = tap_position(&o, &t, window, xs) {
                    let v = x[flat(&p, &xst) + c];
                    acc += v;
                    count += 1;
                    // As the generated code: a NaN in the window is skipped.
                    if v > max {
                        max = v;
                    }
                }
            }
            out[flat(&o, &os) + c] = match kind {
                PoolKind::Max => max,
                PoolKind::Average => acc / count as f32,
            };
        }
    }
    out
}

pub fn global_pool(inputs: &[(&[f32], &[usize])], out_shape: &[usize], kind: PoolKind) -> Vec<f32> {
    let x = inputs[0].0;
    let mut out = vec![0.0f32; numel(out_shape)];

    let channels = out_shape[0];
    let positions = x.len() / channels;
    for (c, v) in out.iter_mut().enumerate() {
        let values = (0..positions).map(|p| x[p * channels + c]);
        *v = match kind {
            PoolKind::Max => values.fold(f32::NEG_INFINITY, |m, v| if v > m { v } else { m }),
            PoolKind::Average => values.sum::<f32>() / positions as f32,
        };
    }
    out
}

pub fn pad(
    inputs: &[(&[f32], &[usize])],
    out_shape: &[usize],
    padding: &[(usize, usize)],
    value: f32,
) -> Vec<f32> {
    let (x, xs) = inputs[0];
    let mut out = vec![0.0f32; numel(out_shape)];
    let os = strides(out_shape);
    let xst = strides(xs);

    out.fill(value);
    for i in indices(xs) {
        let o: Vec<usize> = i.iter().zip(padding).map(|(i, (b, _))| i + b).collect();
        out[flat(&o, &os)] = x[flat(&i, &xst)];
    }
    out
}

pub fn slice(
    inputs: &[(&[f32], &[usize])],
    out_shape: &[usize],
    begin: &[usize],
    step: &[usize],
) -> Vec<f32> {
    let (x, xs) = inputs[0];
    let mut out = vec![0.0f32; numel(out_shape)];
    let os = strides(out_shape);
    let xst = strides(xs);

    for o in indices(out_shape) {
        let i: Vec<usize> = (0..o.len()).map(|d| begin[d] + o[d] * step[d]).collect();
        out[flat(&o, &os)] = x[flat(&i, &xst)];
    }
    out
}

pub fn transpose(inputs: &[(&[f32], &[usize])], out_shape: &[usize], perm: &[usize]) -> Vec<f32> {
    let (x, xs) = inputs[0];
    let mut out = vec![0.0f32; numel(out_shape)];
    let os = strides(out_shape);
    let xst = strides(xs);

    for o in indices(out_shape) {
        let mut i = vec![0; perm.len()];
        for (k, &p) in perm.iter().enumerate() {
            i[p] = o[k];
        }
        out[flat(&o, &os)] = x[flat(&i, &xst)];
    }
    out
}

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

pub fn repeat(inputs: &[(&[f32], &[usize])], out_shape: &[usize], times: usize) -> Vec<f32> {
    let x = inputs[0].0;
    let mut out = vec![0.0f32; numel(out_shape)];

    for t in 0..times {
        out[t * x.len()..(t + 1) * x.len()].copy_from_slice(x);
    }
    out
}

pub fn merge_all(inputs: &[(&[f32], &[usize])], out_shape: &[usize], kind: MergeKind) -> Vec<f32> {
    let mut out = vec![0.0f32; numel(out_shape)];
    let os = strides(out_shape);

    for o in indices(out_shape) {
        let mut values = inputs
            .iter()
            .map(|(data, shape)| data[broadcast_flat(&o, shape)]);
        let first = values.next().unwrap_or(0.0);
        let v = values.fold(first, |acc, v| merge(kind, acc, v));
        out[flat(&o, &os)] = match kind {
            MergeKind::Average => v / inputs.len() as f32,
            _ => v,
        };
    }
    out
}

pub fn select(
    inputs: &[(&[f32], &[usize])],
    out_shape: &[usize],
    then: Option<f32>,
    otherwise: Option<f32>,
) -> Vec<f32> {
    let (x, xs) = inputs[0];
    let mut out = vec![0.0f32; numel(out_shape)];
    let os = strides(out_shape);

    let mut next = 1..;
    let mut branch = |constant: Option<f32>| match constant {
        Some(v) => Err(v),
        None => Ok(next.next().unwrap_or(0)),
    };
    let (then, otherwise) = (branch(then), branch(otherwise));
    let value = |o: &[usize], b: Result<usize, f32>| match b {
        Ok(k) => inputs[k].0[broadcast_flat(o, inputs[k].1)],
        Err(v) => v,
    };
    for o in indices(out_shape) {
        let condition = x[broadcast_flat(&o, xs)];
        // Any non-zero value (NaN too) is true, as numpy's cast to bool.
        let pick = if condition == 0.0 { otherwise } else { then };
        out[flat(&o, &os)] = value(&o, pick);
    }
    out
}

pub fn const_merge(
    inputs: &[(&[f32], &[usize])],
    out_shape: &[usize],
    kind: MergeKind,
    constant: &Weights,
    constant_first: bool,
) -> Vec<f32> {
    let (x, xs) = inputs[0];
    let mut out = vec![0.0f32; numel(out_shape)];
    let os = strides(out_shape);

    for o in indices(out_shape) {
        let v = x[broadcast_flat(&o, xs)];
        let c = constant.data[broadcast_flat(&o, &constant.shape)];
        out[flat(&o, &os)] = if constant_first {
            merge(kind, c, v)
        } else {
            merge(kind, v, c)
        };
    }
    out
}

pub fn reduce(
    inputs: &[(&[f32], &[usize])],
    out_shape: &[usize],
    kind: ReduceKind,
    axes: &[usize],
) -> Vec<f32> {
    let (x, xs) = inputs[0];
    let mut out = vec![0.0f32; numel(out_shape)];
    let xst = strides(xs);

    // The output with the reduced axes kept (size 1) has the same flat layout.
    let kept: Vec<usize> = xs
        .iter()
        .enumerate()
        .map(|(d, &len)| if axes.contains(&d) { 1 } else { len })
        .collect();
    let kst = strides(&kept);
    let count: usize = axes.iter().map(|&a| xs[a]).product();
    let start = match kind {
        ReduceKind::Sum | ReduceKind::Mean => 0.0,
        ReduceKind::Max => f32::NEG_INFINITY,
        ReduceKind::Min => f32::INFINITY,
    };
    out.iter_mut().for_each(|v| *v = start);
    for i in indices(xs) {
        let o: Vec<usize> = (0..i.len())
            .map(|d| if axes.contains(&d) { 0 } else { i[d] })
            .collect();
        let slot = &mut out[flat(&o, &kst)];
        let v = x[flat(&i, &xst)];
        *slot = match kind {
            ReduceKind::Sum | ReduceKind::Mean => *slot + v,
            // As max pooling: `v > m ? v : m`.
            ReduceKind::Max => {
                if v > *slot {
                    v
                } else {
                    *slot
                }
            }
            ReduceKind::Min => {
                if v < *slot {
                    v
                } else {
                    *slot
                }
            }
        };
    }
    if kind == ReduceKind::Mean {
        out.iter_mut().for_each(|v| *v /= count as f32);
    }
    out
}

pub fn concat(inputs: &[(&[f32], &[usize])], out_shape: &[usize], axis: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; numel(out_shape)];
    let os = strides(out_shape);

    let mut offset = 0;
    for (data, shape) in inputs {
        let st = strides(shape);
        for i in indices(shape) {
            let mut o = i.clone();
            o[axis] += offset;
            out[flat(&o, &os)] = data[flat(&i, &st)];
        }
        offset += shape[axis];
    }
    out
}

/// `Dot`: the product of `a` and `b` contracted over `axes`, after L2-normalising each
/// along its axis when `normalize` gives the cap.
pub fn dot(
    (a, a_shape): (&[f32], &[usize]),
    (b, b_shape): (&[f32], &[usize]),
    out_shape: &[usize],
    axes: (usize, usize),
    normalize: Option<f32>,
) -> Vec<f32> {
    let (i, j) = axes;
    let (a, b) = match normalize {
        Some(cap) => (
            l2_normalize(a, a_shape, i, cap),
            l2_normalize(b, b_shape, j, cap),
        ),
        None => (a.to_vec(), b.to_vec()),
    };
    let (sa, sb) = (strides(a_shape), strides(b_shape));
    let a_rest: Vec<usize> = (0..a_shape.len()).filter(|&k| k != i).collect();
    let b_rest: Vec<usize> = (0..b_shape.len()).filter(|&k| k != j).collect();
    let mut out = vec![0.0f32; numel(out_shape)];
    for (v, o) in out.iter_mut().zip(indices(out_shape)) {
        let mut ia = vec![0; a_shape.len()];
        let mut ib = vec![0; b_shape.len()];
        for (k, &d) in a_rest.iter().enumerate() {
            ia[d] = o[k];
        }
        for (k, &d) in b_rest.iter().enumerate() {
            ib[d] = o[a_rest.len() + k];
        }
        let mut acc = 0.0f32;
        for t in 0..a_shape[i] {
            ia[i] = t;
            ib[j] = t;
            acc += a[flat(&ia, &sa)] * b[flat(&ib, &sb)];
        }
        *v = acc;
    }
    out
}

/// `x * min(1 / sqrt(sum(x^2)), cap)` along `axis`, as Keras's `normalize`.
fn l2_normalize(x: &[f32], shape: &[usize], axis: usize, cap: f32) -> Vec<f32> {
    let st = strides(shape);
    let mut out = x.to_vec();
    let mut rest = shape.to_vec();
    rest[axis] = 1;
    for i in indices(&rest) {
        let base = flat(&i, &st);
        let sum: f32 = (0..shape[axis])
            .map(|t| x[base + t * st[axis]].powi(2))
            .sum();
        let inv = (1.0 / sum.sqrt()).min(cap);
        for t in 0..shape[axis] {
            out[base + t * st[axis]] = x[base + t * st[axis]] * inv;
        }
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
