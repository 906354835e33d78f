//! Activations along one axis (softmax, log_softmax, sparsemax, glu) as loops, run in place
//! on a layer's output viewed as `[outer, len, inner]`.

use super::loops::{for_, Buf, Cond, Ix, Place, Stmt, Unroll, Val, WriteOp};
use crate::ir::expr::Expr;
use crate::ir::numel;
use crate::ir::AxisFn;
use crate::ir::MathFn;

/// An activation along the middle axis of `[outer, len, inner]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AxisKernel {
    pub func: AxisFn,
    pub outer: usize,
    pub len: usize,
    pub inner: usize,
}

impl AxisKernel {
    pub(super) fn new(func: AxisFn, axis: usize, shape: &[usize]) -> Self {
        AxisKernel {
            func,
            outer: numel(&shape[..axis]),
            len: shape[axis],
            inner: numel(&shape[axis + 1..]),
        }
    }
}

/// The activation `k` in place on the output (not glu, which changes the shape).
pub fn in_place(k: &AxisKernel) -> Vec<Stmt> {
    let AxisKernel {
        func,
        outer,
        len,
        inner,
    } = *k;
    let at = |var: &str| {
        Ix::default()
            .plus("o", len * inner)
            .plus(var, inner)
            .plus("k", 1)
    };
    let out = |var: &str| Val::load(Buf::Out, at(var));
    let each = |body: Vec<Stmt>| for_("i", len, body);
    let first = Ix::default().plus("o", len * inner).plus("k", 1);
    let max = [
        vec![Stmt::let_mut("m".into(), Val::load(Buf::Out, first))],
        each(vec![Stmt::If(
            Cond::Greater(out("i"), Val::var("m")),
            vec![Place::Var("m".into()).set(out("i"))],
        )]),
        vec![Stmt::let_mut("sum".into(), Val::Const(0.0))],
    ]
    .concat();
    let exp = |var: &str| Val::Apply(Expr::call(MathFn::Exp), var.into());
    let per_slice = match func {
        AxisFn::Softmax => [
            max,
            each(vec![
                Stmt::let_("d".into(), out("i") - Val::var("m")),
                Stmt::let_("e".into(), exp("d")),
                Place::Out(at("i")).set(Val::var("e")),
                Place::Var("sum".into()).accumulate(Val::var("e")),
            ]),
            each(vec![
                Place::Out(at("i")).write(WriteOp::Div, Val::var("sum"))
            ]),
        ]
        .concat(),
        AxisFn::LogSoftmax => [
            max,
            each(vec![
                Stmt::let_("d".into(), out("i") - Val::var("m")),
                Place::Var("sum".into()).accumulate(exp("d")),
            ]),
            vec![Stmt::let_(
                "lse".into(),
                Val::Apply(Expr::call(MathFn::Log), "sum".into()),
            )],
            each(vec![
                Place::Out(at("i")).set(out("i") - Val::var("m") - Val::var("lse"))
            ]),
        ]
        .concat(),
        AxisFn::Sparsemax => sparsemax(len, &at, &out),
        AxisFn::Glu => Vec::new(),
    };
    for_("o", outer, for_("k", inner, per_slice))
}

/// Keras 3's sparsemax, without sorting: element i stands at sorted position
/// q = 1 + #{z_j > z_i} + #{j < i: z_j == z_i}, where the cumulative sum is c_q; it is in
/// the support when z_i - (c_q - 1) / q > 0, and Keras takes
/// tau = (sum of c_q over the support - 1) / |support| (sic).
fn sparsemax(len: usize, at: &dyn Fn(&str) -> Ix, out: &dyn Fn(&str) -> Val) -> Vec<Stmt> {
    let one = || Val::Const(1.0);
    let v = Val::var;
    // Always real loops: `j < i` compares the two variables.
    let loop_ = |var: &str, body: Vec<Stmt>| {
        vec![Stmt::For {
            var: var.into(),
            count: len,
            unroll: Unroll::Compiler,
            body,
        }]
    };
    let scan = loop_(
        "j",
        vec![
            Stmt::let_("zj".into(), out("j")),
            Stmt::If(
                Cond::Greater(v("zj"), v("zi")),
                vec![
                    Place::Var("greater".into()).accumulate(one()),
                    Place::Var("above".into()).accumulate(v("zj")),
                ],
            ),
            Stmt::If(
                Cond::And(
                    Box::new(Cond::Equal(v("zj"), v("zi"))),
                    Box::new(Cond::IndexLess("j".into(), "i".into())),
                ),
                vec![Place::Var("ties_before".into()).accumulate(one())],
            ),
        ],
    );
    let per_element = [
        vec![
            Stmt::let_("zi".into(), out("i")),
            Stmt::let_mut("greater".into(), Val::Const(0.0)),
            Stmt::let_mut("ties_before".into(), Val::Const(0.0)),
            Stmt::let_mut("above".into(), Val::Const(0.0)),
        ],
        scan,
        vec![
            Stmt::let_("q".into(), v("greater") + v("ties_before") + one()),
            Stmt::let_(
                "cumsum".into(),
                v("above") + (v("ties_before") + one()) * v("zi"),
            ),
            Stmt::If(
                Cond::Greater(v("zi") - (v("cumsum") - one()) / v("q"), Val::Const(0.0)),
                vec![
                    Place::Var("support".into()).accumulate(one()),
                    Place::Var("cumsum_sum".into()).accumulate(v("cumsum")),
                ],
            ),
        ],
    ]
    .concat();
    [
        vec![
            Stmt::let_mut("support".into(), Val::Const(0.0)),
            Stmt::let_mut("cumsum_sum".into(), Val::Const(0.0)),
        ],
        loop_("i", per_element),
        vec![Stmt::let_(
            "tau".into(),
            (v("cumsum_sum") - one()) / v("support"),
        )],
        for_(
            "i",
            len,
            vec![
                Stmt::let_("v".into(), out("i") - v("tau")),
                Place::Out(at("i")).set(Val::max(v("v"), Val::Const(0.0))),
            ],
        ),
    ]
    .concat()
}

/// `y[o, h, k] = x[o, h, k] * sigmoid(x[o, half + h, k])`.
pub fn glu(outer: usize, half: usize, inner: usize) -> Vec<Stmt> {
    let x = |offset: usize| {
        Ix::default()
            .plus("o", 2 * half * inner)
            .plus("h", inner)
            .plus("k", 1)
            .offset((offset * inner) as isize)
    };
    let y = Ix::default()
        .plus("o", half * inner)
        .plus("h", inner)
        .plus("k", 1);
    let body = vec![
        Stmt::let_("b".into(), Val::load(Buf::In(0), x(half))),
        Place::Out(y)
            .set(Val::load(Buf::In(0), x(0)) * Val::Apply(Expr::call(MathFn::Sigmoid), "b".into())),
    ];
    for_("o", outer, for_("h", half, for_("k", inner, body)))
}
