//! Reductions over axes and running sums along one, as loops.

use super::index::{ix, nest, strides};
use super::loops::{for_, Buf, Ix, Place, Stmt, Val, WriteOp};
use crate::ir::{numel, CumulativeKind, ReduceKind};

/// Sum, mean, max or min over `axes`: the output (reduced axes kept as size 1, the same
/// flat layout) is set to the start value, then every input element is folded into its
/// slot in row-major order; a mean is divided at the end.
pub fn reduce(kind: ReduceKind, axes: &[usize], in_shape: &[usize]) -> Vec<Stmt> {
    let kept: Vec<usize> = in_shape
        .iter()
        .enumerate()
        .map(|(d, &len)| if axes.contains(&d) { 1 } else { len })
        .collect();
    let kst: Vec<usize> = strides(&kept)
        .iter()
        .enumerate()
        .map(|(d, &s)| if axes.contains(&d) { 0 } else { s })
        .collect();
    let n = numel(&kept);
    let o = ix("i", &kst);
    let x = Val::load(Buf::In(0), ix("i", &strides(in_shape)));
    let (start, fold) = match kind {
        ReduceKind::Sum | ReduceKind::Mean => (0.0, Place::Out(o.clone()).write(WriteOp::Add, x)),
        ReduceKind::Max => (
            f32::NEG_INFINITY,
            Place::Out(o.clone()).set(Val::max(Val::load(Buf::Out, o), x)),
        ),
        ReduceKind::Min => (
            f32::INFINITY,
            Place::Out(o.clone()).set(Val::min(Val::load(Buf::Out, o), x)),
        ),
    };
    let p = Ix::default().plus("p", 1);
    let mut body = for_("p", n, vec![Place::Out(p.clone()).set(Val::Const(start))]);
    body.extend(nest("i", in_shape, vec![fold]));
    if kind == ReduceKind::Mean {
        let count = numel(in_shape) / n.max(1);
        body.extend(for_(
            "p",
            n,
            vec![Place::Out(p).write(WriteOp::Div, Val::Const(count as f32))],
        ));
    }
    body
}

/// The running sum or product along `axis`: the first element of each line is copied, then
/// element `i` is element `i - 1` of the output combined with input element `i`.
pub fn cumulative(kind: CumulativeKind, axis: usize, shape: &[usize]) -> Vec<Stmt> {
    let (outer, len) = (shape[..axis].iter().product(), shape[axis]);
    let inner: usize = shape[axis + 1..].iter().product();
    let at = |i: Ix| {
        Ix::default()
            .plus("o", len * inner)
            .add_scaled(&i, inner)
            .plus("j", 1)
    };
    let first = at(Ix::default());
    let i = Ix::default().plus("i", 1);
    let (before, x) = (
        Val::load(Buf::Out, at(i.clone())),
        Val::load(Buf::In(0), at(i.clone().offset(1))),
    );
    let value = match kind {
        CumulativeKind::Sum => before + x,
        CumulativeKind::Product => before * x,
    };
    let mut line = for_(
        "j",
        inner,
        vec![Place::Out(first.clone()).set(Val::load(Buf::In(0), first))],
    );
    if len > 1 {
        let next = for_("j", inner, vec![Place::Out(at(i.offset(1))).set(value)]);
        line.extend(for_("i", len - 1, next));
    }
    for_("o", outer, line)
}
