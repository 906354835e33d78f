//! Reference semantics of the attention ops, as plain loops.

use super::reference_math;
use crate::backend::math::MathFn;
use crate::ir::{numel, AxisFn, Op, MASKED_SCORE};

/// Evaluates `MatMul`, `AdditiveScore` and `AttentionSoftmax`; `None` for other ops.
pub fn eval(op: &Op, inputs: &[(&[f32], &[usize])]) -> Option<Vec<f32>> {
    if let (
        Op::AttentionSoftmax {
            scale,
            causal,
            window,
        },
        [(x, shape)],
    ) = (op, inputs)
    {
        let rank = shape.len();
        let (tq, tv) = (shape[rank - 2], shape[rank - 1]);
        let masked =
            |i: usize, j: usize| (*causal && j > i) || window.is_some_and(|w| i.abs_diff(j) >= w);
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
        return Some(super::axis_activation(
            AxisFn::Softmax,
            rank - 1,
            out,
            shape,
        ));
    }
    let [(a, a_shape), (b, b_shape)] = inputs else {
        return None;
    };
    let rank = a_shape.len();
    if rank < 2 || b_shape.len() != rank {
        return None;
    }
    let (m, k, n) = (a_shape[rank - 2], a_shape[rank - 1], b_shape[rank - 1]);
    let batch = numel(&a_shape[..rank - 2]);
    let mut out = vec![0.0f32; batch * m * n];
    match op {
        Op::MatMul => {
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
        }
        Op::AdditiveScore { pre, scale, post } => {
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
        }
        _ => return None,
    }
    Some(out)
}
