//! Ops that move values without arithmetic: padding, slicing, transposes, repeats and
//! concatenation, as loops.

use super::index::{ix, nest, strides};
use super::loops::{for_, Buf, Ix, Place, Stmt, Val};
use crate::ir::numel;

/// Constant padding: fill with `value`, then copy the input into place.
pub fn pad(
    padding: &[(usize, usize)],
    value: f32,
    in_shape: &[usize],
    out_shape: &[usize],
) -> Vec<Stmt> {
    let ost = strides(out_shape);
    let clear = for_(
        "p",
        numel(out_shape),
        vec![Place::Out(Ix::default().plus("p", 1)).set(Val::Const(value))],
    );
    let offset: usize = padding.iter().zip(&ost).map(|((b, _), s)| b * s).sum();
    let copy = nest(
        "i",
        in_shape,
        vec![Place::Out(ix("i", &ost).offset(offset as isize))
            .set(Val::load(Buf::In(0), ix("i", &strides(in_shape))))],
    );
    [clear, copy].concat()
}

/// A gather whose input index is affine in the output index.
pub fn gather(out_shape: &[usize], input: Ix) -> Vec<Stmt> {
    nest(
        "o",
        out_shape,
        vec![Place::Out(ix("o", &strides(out_shape))).set(Val::load(Buf::In(0), input))],
    )
}

/// `x[begin..:step]` on every axis.
pub fn slice(
    begin: &[usize],
    step: &[usize],
    in_shape: &[usize],
    out_shape: &[usize],
) -> Vec<Stmt> {
    let xst = strides(in_shape);
    let offset: usize = begin.iter().zip(&xst).map(|(b, s)| b * s).sum();
    let stepped: Vec<usize> = xst.iter().zip(step).map(|(s, k)| s * k).collect();
    gather(out_shape, ix("o", &stepped).offset(offset as isize))
}

/// Output axis `k` is input axis `perm[k]`.
pub fn transpose(perm: &[usize], in_shape: &[usize], out_shape: &[usize]) -> Vec<Stmt> {
    let xst = strides(in_shape);
    let permuted: Vec<usize> = perm.iter().map(|&p| xst[p]).collect();
    gather(out_shape, ix("o", &permuted))
}

/// `[n] -> [times, n]`.
pub fn repeat(times: usize, n: usize) -> Vec<Stmt> {
    gather(&[times, n], Ix::default().plus("o1", 1))
}

/// Concatenation: each input copied to its offset along `axis`.
pub fn concat(axis: usize, in_shapes: &[&[usize]], out_shape: &[usize]) -> Vec<Stmt> {
    let ost = strides(out_shape);
    let mut offset = 0;
    let mut body = Vec::new();
    for (k, shape) in in_shapes.iter().enumerate() {
        let prefix = format!("i{k}_");
        body.extend(nest(
            &prefix,
            shape,
            vec![
                Place::Out(ix(&prefix, &ost).offset((offset * ost[axis]) as isize))
                    .set(Val::load(Buf::In(k), ix(&prefix, &strides(shape)))),
            ],
        ));
        offset += shape[axis];
    }
    body
}
