//! The attention ops as loops. Both are batched products over the last two axes, written
//! like Dense: for each row of the first operand, the output row accumulates one row of
//! the second operand per contracted element, so the innermost loop walks contiguous
//! memory (the frontend transposes the keys beforehand) and vectorises without
//! reassociating sums.

use super::axis::AxisKernel;
use super::index::{ix, nest, strides};
use super::loops::{for_, Buf, Cond, Index, Ix, Place, Stmt, Unroll, Val, WriteOp};
use super::WeightId;
use crate::ir::expr::Expr;
use crate::ir::MathFn;
use crate::ir::{numel, AxisFn};

/// `(batch, m, k, n)` of `[*b, m, k] x [*b, k, n]`.
fn dims(a: &[usize], b: &[usize]) -> (usize, usize, usize, usize) {
    let rank = a.len();
    (numel(&a[..rank - 2]), a[rank - 2], a[rank - 1], b[rank - 1])
}

/// The loops shared by both ops: zero the output row, then for each contracted element
/// `t` bind `let_t` and run `body(b, out)` for each output of the row (`b` reads
/// `input1[p, t, j]`, `out` is the output index); `finish` scales each output of the row
/// at the end.
fn rows(
    a: &[usize],
    b: &[usize],
    let_t: impl Fn(Ix) -> Vec<Stmt>,
    body: impl Fn(Val, Ix) -> Vec<Stmt>,
    finish: Option<Val>,
) -> Vec<Stmt> {
    let (batch, m, k, n) = dims(a, b);
    let out = Ix::default().plus("p", m * n).plus("i", n).plus("j", 1);
    let a_at = Ix::default().plus("p", m * k).plus("i", k).plus("t", 1);
    let b_at = Ix::default().plus("p", k * n).plus("t", n).plus("j", 1);
    let mut row = for_("j", n, vec![Place::Out(out.clone()).set(Val::Const(0.0))]);
    let mut per_t = let_t(a_at);
    per_t.extend(for_("j", n, body(Val::load(Buf::In(1), b_at), out.clone())));
    row.extend(for_("t", k, per_t));
    if let Some(factor) = finish {
        row.extend(for_(
            "j",
            n,
            vec![Place::Out(out).write(WriteOp::Mul, factor)],
        ));
    }
    for_("p", batch, for_("i", m, row))
}

/// `y[p, i, :] = sum_t a[p, i, t] * b[p, t, :]`.
pub fn matmul(a: &[usize], b: &[usize]) -> Vec<Stmt> {
    rows(
        a,
        b,
        |a_at| vec![Stmt::let_("x".into(), Val::load(Buf::In(0), a_at))],
        |b, out| vec![Place::Out(out).write(WriteOp::Add, Val::var("x") * b)],
        None,
    )
}

/// `y[p, i, j] = post * sum_t scale[t] * tanh(pre * (a[p, i, t] + b[p, t, j]))`.
pub fn additive_score(
    a: &[usize],
    b: &[usize],
    pre: Option<f32>,
    scale: Option<WeightId>,
    post: Option<f32>,
) -> Vec<Stmt> {
    let tanh = Expr::call(MathFn::Tanh);
    rows(
        a,
        b,
        |a_at| vec![Stmt::let_("q".into(), Val::load(Buf::In(0), a_at))],
        |b, out| {
            let sum = Val::var("q") + b;
            let x = match pre {
                Some(s) => Val::Const(s) * sum,
                None => sum,
            };
            let y = Val::Apply(tanh.clone(), "x".into());
            let y = match scale {
                Some(w) => Val::load(Buf::W(w), Ix::default().plus("t", 1)) * y,
                None => y,
            };
            vec![
                Stmt::let_("x".into(), x),
                Place::Out(out).write(WriteOp::Add, y),
            ]
        },
        post.map(Val::Const),
    )
}

/// The attention distribution from scores `[*b, tq, tv]`: writes `scale * x`, then
/// `scale * x + MASKED` where query `i` may not see key `j`: `i < j` (causal), `j < lo` or
/// `hi < j` (window `w`: `lo = max(i - w + 1, 0)`, `hi = i + w - 1`; each condition stores
/// the same value, so overlaps are harmless), then runs the softmax in place on each row.
pub fn softmax(
    shape: &[usize],
    scale: Option<f32>,
    causal: bool,
    window: Option<usize>,
) -> Vec<Stmt> {
    let rank = shape.len();
    let (tq, tv) = (shape[rank - 2], shape[rank - 1]);
    let scaled = |at: Ix| {
        let x = Val::load(Buf::In(0), at);
        match scale {
            Some(s) => Val::Const(s) * x,
            None => x,
        }
    };
    let flat = Ix::default().plus("i", 1);
    let mut stmts = for_(
        "i",
        numel(shape),
        vec![Place::Out(flat.clone()).set(scaled(flat))],
    );
    if causal || window.is_some() {
        stmts.extend(mask(
            tq,
            tv,
            numel(&shape[..rank - 2]),
            causal,
            window,
            scaled,
        ));
    }
    let rows = AxisKernel {
        func: AxisFn::Softmax,
        outer: numel(shape) / tv,
        len: tv,
        inner: 1,
    };
    stmts.extend(super::axis::in_place(&rows));
    stmts
}

/// The masked stores of [`softmax`] over `batch` matrices `[tq, tv]`. The `i` and `j`
/// loops are always emitted: the conditions compare their variables.
fn mask(
    tq: usize,
    tv: usize,
    batch: usize,
    causal: bool,
    window: Option<usize>,
    scaled: impl Fn(Ix) -> Val,
) -> Vec<Stmt> {
    let at = Ix::default().plus("p", tq * tv).plus("i", tv).plus("j", 1);
    let masked = vec![Place::Out(at.clone()).set(scaled(at) + Val::Const(crate::ir::MASKED_SCORE))];
    let mut per_key = Vec::new();
    let mut per_query = Vec::new();
    if causal {
        per_key.push(Stmt::If(
            Cond::IndexLess("i".into(), "j".into()),
            masked.clone(),
        ));
    }
    if let Some(w) = window {
        let reach = w.saturating_sub(1);
        per_query.push(Stmt::LetIndex {
            name: "lo".into(),
            value: Index::Clamped {
                ix: Ix::default().plus("i", 1).offset(-(reach as isize)),
                max: tv,
            },
        });
        per_query.push(Stmt::LetIndex {
            name: "hi".into(),
            value: Index::Clamped {
                ix: Ix::default().plus("i", 1).offset(reach as isize),
                max: tv,
            },
        });
        per_key.push(Stmt::If(
            Cond::IndexLess("j".into(), "lo".into()),
            masked.clone(),
        ));
        per_key.push(Stmt::If(Cond::IndexLess("hi".into(), "j".into()), masked));
    }
    per_query.push(Stmt::For {
        var: "j".into(),
        count: tv,
        unroll: Unroll::Compiler,
        body: per_key,
    });
    let rows = vec![Stmt::For {
        var: "i".into(),
        count: tq,
        unroll: Unroll::Compiler,
        body: per_query,
    }];
    for_("p", batch, rows)
}

/// Contraction of axis `axes.0` of the first input with `axes.1` of the second; with
/// `normalize: Some(cap)` each input is first scaled by `min(1 / |x|, cap)` along the
/// contracted axis, element by element as Keras does it.
pub fn dot(
    axes: (usize, usize),
    normalize: Option<f32>,
    a: &[usize],
    b: &[usize],
    out_shape: &[usize],
) -> Vec<Stmt> {
    let (i, j) = axes;
    let (sa, sb) = (strides(a), strides(b));
    let rest_a: Vec<usize> = (0..a.len()).filter(|&k| k != i).collect();
    let rest_b: Vec<usize> = (0..b.len()).filter(|&k| k != j).collect();
    let mut ia = Ix::default().plus("t", sa[i]);
    let mut ib = Ix::default().plus("t", sb[j]);
    for (n, &d) in rest_a.iter().enumerate() {
        ia = ia.plus(&format!("o{n}"), sa[d]);
    }
    for (n, &d) in rest_b.iter().enumerate() {
        ib = ib.plus(&format!("o{}", rest_a.len() + n), sb[d]);
    }
    let out_dims: Vec<usize> = if rest_a.is_empty() && rest_b.is_empty() {
        vec![1]
    } else {
        out_shape.to_vec()
    };
    let (x, y) = (
        Val::load(Buf::In(0), ia.clone()),
        Val::load(Buf::In(1), ib.clone()),
    );
    let mut body = vec![Stmt::let_mut("acc".into(), Val::Const(0.0))];
    let term = match normalize {
        None => x * y,
        Some(cap) => {
            // Inverse norms of the two slices, then the normalized products.
            for (name, v) in [("a", x.clone()), ("b", y.clone())] {
                let sq = format!("sq_{name}");
                let norm = format!("norm_{name}");
                body.push(Stmt::let_mut(sq.clone(), Val::Const(0.0)));
                body.extend(for_(
                    "t",
                    a[i],
                    vec![Place::Var(sq.clone()).accumulate(v.clone() * v)],
                ));
                body.push(Stmt::let_(
                    norm.clone(),
                    Val::Apply(Expr::call(MathFn::Sqrt), sq),
                ));
                body.push(Stmt::let_(
                    format!("inv_{name}"),
                    Val::min(Val::Const(1.0) / Val::var(&norm), Val::Const(cap)),
                ));
            }
            (x * Val::var("inv_a")) * (y * Val::var("inv_b"))
        }
    };
    body.extend(for_(
        "t",
        a[i],
        vec![Place::Var("acc".into()).accumulate(term)],
    ));
    body.push(Place::Out(ix("o", &strides(&out_dims))).set(Val::var("acc")));
    nest("o", &out_dims, body)
}
