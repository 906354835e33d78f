//! Reference semantics of the attention ops, as plain loops.

use super::reference_math;
use crate::backend::math::MathFn;
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
