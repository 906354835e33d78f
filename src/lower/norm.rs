//! Normalisation (LayerNormalization, GroupNormalization, UnitNormalization,
//! RMSNormalization) kernels in the shared loop language. A normalisation
//! walks the kept axes outside and the reduced axes inside, in three passes per group
//! (sum, squared deviations, output), so LayerNormalization over the last axis is one pass
//! over rows with the features innermost.

use super::loops::{for_, Buf, Ix, Place, Stmt, Val};
use super::WeightId;
use crate::ir::expr::Expr;
use crate::ir::MathFn;
use crate::ir::{NormAxis, NormKind};

/// Nested loops over `axes` (outermost first) around `body`.
fn nest(axes: &[(String, usize)], body: Vec<Stmt>) -> Vec<Stmt> {
    axes.iter()
        .rev()
        .fold(body, |body, (var, len)| for_(var, *len, body))
}

/// `sq = sum(x * x)` over the `reduced` axes, reading each element as `x`.
fn sum_of_squares(reduced: &[(String, usize)], x: Val) -> Vec<Stmt> {
    let mut body = vec![Stmt::let_mut("sq".into(), Val::Const(0.0))];
    body.extend(nest(
        reduced,
        vec![
            Stmt::let_("x".into(), x),
            Place::Var("sq".into()).accumulate(Val::var("x") * Val::var("x")),
        ],
    ));
    body
}

/// `1 / sqrt(x + epsilon)` (epsilon 0: `1 / sqrt(x)`).
fn rsqrt(epsilon: f32) -> Expr {
    let arg = if epsilon == 0.0 {
        Expr::X
    } else {
        Expr::Add(Box::new(Expr::X), Box::new(Expr::Const(epsilon)))
    };
    Expr::Div(
        Box::new(Expr::Const(1.0)),
        Box::new(Expr::Call(MathFn::Sqrt, Box::new(arg))),
    )
}

/// The kernel of `Op::Normalize`, with gamma and beta as 1-D weight arrays.
pub fn normalize(
    view: &[NormAxis],
    kind: NormKind,
    gamma: Option<WeightId>,
    beta: Option<WeightId>,
) -> Vec<Stmt> {
    let mut x_ix = Ix::default();
    let mut p_ix = Ix::default();
    let mut kept = Vec::new();
    let mut reduced = Vec::new();
    let mut stride = 1;
    for (a, axis) in view.iter().enumerate().rev() {
        let var = if axis.reduced {
            format!("r{a}")
        } else {
            format!("k{a}")
        };
        x_ix = x_ix.plus(&var, stride);
        p_ix = p_ix.plus(&var, axis.param_stride);
        stride *= axis.len;
        if axis.reduced {
            reduced.push((var, axis.len));
        } else {
            kept.push((var, axis.len));
        }
    }
    kept.reverse();
    reduced.reverse();
    // Loops run once drop their variable: index expressions keep only real loops.
    let n: usize = reduced.iter().map(|(_, len)| len).product();
    let x = || Val::load(Buf::In(0), x_ix.clone());
    let param = |w: WeightId| Val::load(Buf::W(w), p_ix.clone());
    let mut body = Vec::new();
    match kind {
        NormKind::Standardize { epsilon } | NormKind::RmsScale { epsilon } => {
            body.push(Stmt::let_mut("sum".into(), Val::Const(0.0)));
            body.extend(nest(
                &reduced,
                vec![Place::Var("sum".into()).accumulate(x())],
            ));
            body.push(Stmt::let_(
                "mean".into(),
                Val::var("sum") / Val::Const(n as f32),
            ));
            body.push(Stmt::let_mut("sq".into(), Val::Const(0.0)));
            body.extend(nest(
                &reduced,
                vec![
                    Stmt::let_("d".into(), x() - Val::var("mean")),
                    Place::Var("sq".into()).accumulate(Val::var("d") * Val::var("d")),
                ],
            ));
            body.push(Stmt::let_(
                "variance".into(),
                Val::var("sq") / Val::Const(n as f32),
            ));
            body.push(Stmt::let_(
                "r".into(),
                Val::Apply(rsqrt(epsilon), "variance".into()),
            ));
            let mut out = vec![Stmt::let_("x".into(), x())];
            let value = if matches!(kind, NormKind::RmsScale { .. }) {
                let scaled = Val::var("x") * Val::var("r");
                match gamma {
                    Some(g) => scaled * param(g),
                    None => scaled,
                }
            } else {
                let inv = match gamma {
                    Some(g) => {
                        out.push(Stmt::let_("inv".into(), Val::var("r") * param(g)));
                        "inv"
                    }
                    None => "r",
                };
                let scaled = Val::var("x") * Val::var(inv);
                let shift = Val::var("mean") * Val::var(inv);
                match beta {
                    Some(b) => scaled + (param(b) - shift),
                    None => scaled - shift,
                }
            };
            out.push(Place::Out(x_ix.clone()).set(value));
            body.extend(nest(&reduced, out));
        }
        NormKind::Rms { epsilon } => {
            body.extend(sum_of_squares(&reduced, x()));
            body.push(Stmt::let_(
                "mean_sq".into(),
                Val::var("sq") / Val::Const(n as f32),
            ));
            body.push(Stmt::let_(
                "r".into(),
                Val::Apply(rsqrt(epsilon), "mean_sq".into()),
            ));
            let scaled = x() * Val::var("r");
            let value = match gamma {
                Some(g) => scaled * param(g),
                None => scaled,
            };
            body.extend(nest(&reduced, vec![Place::Out(x_ix.clone()).set(value)]));
        }
        NormKind::L2 { epsilon } => {
            body.extend(sum_of_squares(&reduced, x()));
            body.push(Stmt::let_(
                "inv0".into(),
                Val::Apply(rsqrt(0.0), "sq".into()),
            ));
            body.push(Stmt::let_(
                "inv".into(),
                Val::min(Val::var("inv0"), Val::Const(1.0 / epsilon)),
            ));
            body.extend(nest(
                &reduced,
                vec![Place::Out(x_ix.clone()).set(x() * Val::var("inv"))],
            ));
        }
    }
    nest(&kept, body)
}
