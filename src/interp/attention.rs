//! Reference semantics of the attention ops, as plain loops.

use super::index::{flat, indices, strides};
use super::reference_math;
use crate::ir::MathFn;
use crate::ir::{numel, AxisFn, MASKED_SCORE};

/// `AttentionSoftmax`: scaled scores, masked (causal, window), softmax over the last axis.
pub fn softmax(
    x: &[f32],
    shape: &[usize],
    scale: Option<f32>,
    causal: bool,
    window: Option<usize>,
) -> Vec<f32> {
    let rank = shape.len();
    let (tq, tv) = (shape[rank - 2], shape[rank - 1]);
    let masked =
        |i: usize, j: usize| (causal && j > i) || window.is_some_and(|w| i.abs_diff(j) >= w);
    let out = x
        .iter()
        .enumerate()
        .map(|(flat, &v)| {
            let (i, j) = ((flat / tv) % tq, flat % tv);
            let v = scale.map_or(v, |s| s * v);
            if masked(i, j) {
                v + MASKED_SCORE
            } else {
                v
            }
        })
        .collect();
    super::axis_activation(AxisFn::Softmax, rank - 1, out, shape)
}

/// The sizes of a batched product `[*b, m, k] x [*b, k, n]`: (batch, m, k, n).
fn product_dims(a_shape: &[usize], b_shape: &[usize]) -> (usize, usize, usize, usize) {
    let rank = a_shape.len();
    let (m, k, n) = (a_shape[rank - 2], a_shape[rank - 1], b_shape[rank - 1]);
    (numel(&a_shape[..rank - 2]), m, k, n)
}

/// `MatMul`: the batched matrix product.
pub fn matmul((a, a_shape): (&[f32], &[usize]), (b, b_shape): (&[f32], &[usize])) -> Vec<f32> {
    let (batch, m, k, n) = product_dims(a_shape, b_shape);
    let mut out = vec![0.0f32; batch * m * n];
    for p in 0..batch {
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0.0f32;
                for t in 0..k {
                    acc += a[(p * m + i) * k + t] * b[(p * k + t) * n + j];
                }
                out[(p * m + i) * n + j] = acc;
            }
        }
    }
    out
}

/// `AdditiveScore`: `post * sum_t scale[t] * tanh(pre * (q + kt))`.
pub fn additive_score(
    (a, a_shape): (&[f32], &[usize]),
    (b, b_shape): (&[f32], &[usize]),
    pre: Option<f32>,
    scale: Option<&[f32]>,
    post: Option<f32>,
) -> Vec<f32> {
    let (batch, m, k, n) = product_dims(a_shape, b_shape);
    let mut out = vec![0.0f32; batch * m * n];
    for p in 0..batch {
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0.0f32;
                for t in 0..k {
                    let mut x = a[(p * m + i) * k + t] + b[(p * k + t) * n + j];
                    if let Some(s) = pre {
                        x *= s;
                    }
                    let mut y = reference_math(MathFn::Tanh, x);
                    if let Some(s) = scale {
                        y *= s[t];
                    }
                    acc += y;
                }
                out[(p * m + i) * n + j] = match post {
                    Some(s) => s * acc,
                    None => acc,
                };
            }
        }
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
