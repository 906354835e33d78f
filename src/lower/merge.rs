//! Elementwise merges of several tensors (numpy broadcasting), with a constant, and
//! `where`, as loops.

use super::index::{ix, nest, strides};
use super::loops::{Buf, Cond, Ix, Place, Stmt, Val};
use super::WeightId;
use crate::ir::MergeKind;

/// The index into an operand of `shape` that output position `o0, o1, ...` (of rank
/// `rank`) reads under numpy broadcasting: shapes aligned at their last axes, axes of
/// size 1 repeated.
fn broadcast_ix(shape: &[usize], rank: usize) -> Ix {
    let lead = rank - shape.len();
    strides(shape)
        .iter()
        .zip(shape)
        .enumerate()
        .fold(Ix::default(), |ix, (d, (&s, &len))| {
            ix.plus(&format!("o{}", d + lead), if len == 1 { 0 } else { s })
        })
}

/// One step of an elementwise merge.
fn merge_step(kind: MergeKind, acc: Val, v: Val) -> Val {
    match kind {
        MergeKind::Add | MergeKind::Average => acc + v,
        MergeKind::Subtract => acc - v,
        MergeKind::Multiply => acc * v,
        MergeKind::Maximum => Val::max(acc, v),
        MergeKind::Minimum => Val::min(acc, v),
        MergeKind::Divide => acc / v,
    }
}

/// Elementwise `x (kind) constant` (or `constant (kind) x`), broadcasting as numpy.
pub fn const_merge(
    kind: MergeKind,
    constant: WeightId,
    constant_shape: &[usize],
    constant_first: bool,
    in_shape: &[usize],
    out_shape: &[usize],
) -> Vec<Stmt> {
    let rank = out_shape.len();
    let x = Val::load(Buf::In(0), broadcast_ix(in_shape, rank));
    let c = Val::load(Buf::W(constant), broadcast_ix(constant_shape, rank));
    let value = if constant_first {
        merge_step(kind, c, x)
    } else {
        merge_step(kind, x, c)
    };
    nest(
        "o",
        out_shape,
        vec![Place::Out(ix("o", &strides(out_shape))).set(value)],
    )
}

/// `condition != 0 ? then : otherwise` with numpy broadcasting; a branch is input `k` or
/// a constant.
pub fn select(
    then: Option<f32>,
    otherwise: Option<f32>,
    in_shapes: &[&[usize]],
    out_shape: &[usize],
) -> Vec<Stmt> {
    let rank = out_shape.len();
    let mut next = 1..;
    let mut branch = |constant: Option<f32>| match constant {
        Some(v) => Val::Const(v),
        None => {
            let k = next.next().unwrap_or(0);
            Val::load(Buf::In(k), broadcast_ix(in_shapes[k], rank))
        }
    };
    let (then, otherwise) = (branch(then), branch(otherwise));
    let o = ix("o", &strides(out_shape));
    let condition = Val::load(Buf::In(0), broadcast_ix(in_shapes[0], rank));
    nest(
        "o",
        out_shape,
        vec![
            Place::Out(o.clone()).set(then),
            Stmt::If(
                Cond::Equal(condition, Val::Const(0.0)),
                vec![Place::Out(o).set(otherwise)],
            ),
        ],
    )
}

/// Elementwise over several inputs, broadcasting as numpy.
pub fn merge(kind: MergeKind, in_shapes: &[&[usize]], out_shape: &[usize]) -> Vec<Stmt> {
    let rank = out_shape.len();
    let load = |k: usize| Val::load(Buf::In(k), broadcast_ix(in_shapes[k], rank));
    let value = (1..in_shapes.len()).fold(load(0), |acc, k| merge_step(kind, acc, load(k)));
    let value = match kind {
        MergeKind::Average => value / Val::Const(in_shapes.len() as f32),
        _ => value,
    };
    nest(
        "o",
        out_shape,
        vec![Place::Out(ix("o", &strides(out_shape))).set(value)],
    )
}
