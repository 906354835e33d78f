//! Elementwise kernels (activations, affine, PReLU, copies) as loops, so both backends
//! print them from the same statements.

use super::loops::{for_, Buf, Cond, Ix, Place, Stmt, Val};
use super::WeightId;
use crate::ir::expr::Expr;

fn at(var: &str) -> Ix {
    Ix::default().plus(var, 1)
}

/// `y[i] = expr(x[i])`.
pub fn map(expr: &Expr, len: usize) -> Vec<Stmt> {
    for_(
        "i",
        len,
        vec![
            Stmt::let_("x".into(), Val::load(Buf::In(0), at("i"))),
            Place::Out(at("i")).set(Val::Apply(expr.clone(), "x".into())),
        ],
    )
}

/// `y = x`.
pub fn copy(len: usize) -> Vec<Stmt> {
    for_(
        "i",
        len,
        vec![Place::Out(at("i")).set(Val::load(Buf::In(0), at("i")))],
    )
}

/// `y = (x - center[c]) * scale[c] + shift[c]` over `[outer, channels, inner]`.
pub fn affine(
    (outer, channels, inner): (usize, usize, usize),
    center: Option<WeightId>,
    scale: WeightId,
    shift: WeightId,
) -> Vec<Stmt> {
    let i = Ix::default()
        .plus("n", channels * inner)
        .plus("c", inner)
        .plus("k", 1);
    let x = Val::load(Buf::In(0), i.clone());
    let x = match center {
        Some(c) => x - Val::load(Buf::W(c), at("c")),
        None => x,
    };
    let value = x * Val::load(Buf::W(scale), at("c")) + Val::load(Buf::W(shift), at("c"));
    for_(
        "n",
        outer,
        for_(
            "c",
            channels,
            for_("k", inner, vec![Place::Out(i).set(value)]),
        ),
    )
}

/// `y[i] = x[i] < 0 ? alpha[i % period] * x[i] : x[i]`, the input walked in rows of
/// `period`.
pub fn prelu(len: usize, alpha: WeightId, period: usize) -> Vec<Stmt> {
    let i = Ix::default().plus("r", period).plus("p", 1);
    let body = vec![
        Stmt::let_("x".into(), Val::load(Buf::In(0), i.clone())),
        Place::Out(i.clone()).set(Val::var("x")),
        Stmt::If(
            Cond::Greater(Val::Const(0.0), Val::var("x")),
            vec![Place::Out(i).set(Val::load(Buf::W(alpha), at("p")) * Val::var("x"))],
        ),
    ];
    for_("r", len / period.max(1), for_("p", period, body))
}
