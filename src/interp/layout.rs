//! Reference semantics of the ops that move values: padding, slicing, transposes,
//! repeats, concatenation.

use super::index::{flat, indices, strides};
use crate::ir::numel;

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

pub fn repeat(inputs: &[(&[f32], &[usize])], out_shape: &[usize], times: usize) -> Vec<f32> {
    let x = inputs[0].0;
    let mut out = vec![0.0f32; numel(out_shape)];

    for t in 0..times {
        out[t * x.len()..(t + 1) * x.len()].copy_from_slice(x);
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
