//! Reference semantics of elementwise merges (numpy broadcasting), with a constant, and
//! `where`.

use super::index::{broadcast_flat, flat, indices, strides};
use crate::ir::{numel, MergeKind, Weights};

/// One step of an elementwise merge (max and min keep `acc` when `v` is NaN, as the
/// generated code does).
fn merge_step(kind: MergeKind, acc: f32, v: f32) -> f32 {
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

pub fn merge(inputs: &[(&[f32], &[usize])], out_shape: &[usize], kind: MergeKind) -> Vec<f32> {
    let mut out = vec![0.0f32; numel(out_shape)];
    let os = strides(out_shape);

    for o in indices(out_shape) {
        let mut values = inputs
            .iter()
            .map(|(data, shape)| data[broadcast_flat(&o, shape)]);
        let first = values.next().unwrap_or(0.0);
        let v = values.fold(first, |acc, v| merge_step(kind, acc, v));
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
            merge_step(kind, c, v)
        } else {
            merge_step(kind, v, c)
        };
    }
    out
}
