//! Pooling over windows and globally, as loops.

use super::index::{ix, nest, strides, taps};
use super::loops::{for_, Buf, Ix, Place, Stmt, Val, WriteOp};
use crate::ir::{numel, PoolKind, Window};

/// Max or average pooling; the average divides by the number of real (unpadded) taps.
pub fn pool(kind: PoolKind, window: &Window, in_shape: &[usize], out_shape: &[usize]) -> Vec<Stmt> {
    let rank = window.size.len();
    let channels = in_shape[rank];
    let out_base = ix("o", &strides(out_shape)[..rank]);
    let start = match kind {
        PoolKind::Max => Val::Const(f32::NEG_INFINITY),
        PoolKind::Average => Val::Const(0.0),
    };
    let init = for_(
        "c",
        channels,
        vec![Place::Out(out_base.clone().plus("c", 1)).set(start)],
    );
    let at = out_base.clone().plus("c", 1);
    let accumulate = taps(window, in_shape, out_shape, |_, input| {
        let x = Val::load(Buf::In(0), input.plus("c", 1));
        let update = match kind {
            PoolKind::Max => {
                Place::Out(at.clone()).set(Val::max(Val::load(Buf::Out, at.clone()), x))
            }
            PoolKind::Average => Place::Out(at.clone()).write(WriteOp::Add, x),
        };
        let mut stmts = for_("c", channels, vec![update]);
        if kind == PoolKind::Average {
            stmts.insert(0, Place::Var("count".into()).accumulate(Val::Const(1.0)));
        }
        stmts
    });
    let mut body = init;
    if kind == PoolKind::Average {
        body.push(Stmt::let_mut("count".into(), Val::Const(0.0)));
    }
    body.extend(accumulate);
    if kind == PoolKind::Average {
        body.extend(for_(
            "c",
            channels,
            vec![Place::Out(at).write(WriteOp::Div, Val::var("count"))],
        ));
    }
    nest("o", &out_shape[..rank], body)
}

/// Max or average over every spatial position, per channel.
pub fn global_pool(kind: PoolKind, in_shape: &[usize]) -> Vec<Stmt> {
    let channels = in_shape[in_shape.len() - 1];
    let positions = numel(in_shape) / channels;
    let c = Ix::default().plus("c", 1);
    let x = Val::load(Buf::In(0), Ix::default().plus("p", channels).plus("c", 1));
    let (start, update) = match kind {
        PoolKind::Max => (
            Val::Const(f32::NEG_INFINITY),
            Place::Out(c.clone()).set(Val::max(Val::load(Buf::Out, c.clone()), x)),
        ),
        PoolKind::Average => (
            Val::Const(0.0),
            Place::Out(c.clone()).write(WriteOp::Add, x),
        ),
    };
    let mut body = for_("c", channels, vec![Place::Out(c.clone()).set(start)]);
    body.extend(for_("p", positions, for_("c", channels, vec![update])));
    if kind == PoolKind::Average {
        body.extend(for_(
            "c",
            channels,
            vec![Place::Out(c).write(WriteOp::Div, Val::Const(positions as f32))],
        ));
    }
    body
}
