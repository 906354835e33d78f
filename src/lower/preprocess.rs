//! The integer preprocessing kernels (CategoryEncoding, Discretization, IntegerLookup) in
//! the shared loop language. Values are compared, never used as indices, so no input can
//! make the generated code read or write out of bounds. An `i32` input is read as f32
//! (exact below 2^24); an f32 input is truncated toward zero first, as Keras casts it.

use super::loops::{for_, Buf, Cond, Ix, Place, Stmt, Val, WriteOp};
use super::WeightId;
use crate::ir::EncodeMode;

fn at(var: &str) -> Ix {
    Ix::default().plus(var, 1)
}

/// `let v = x[ix]` as an integer-valued f32 (`x` already holds integers when `integer`).
fn load_integer(ix: Ix, integer: bool) -> Vec<Stmt> {
    if integer {
        vec![Stmt::let_("v".into(), Val::load(Buf::InInt(0), ix))]
    } else {
        vec![
            Stmt::let_("x".into(), Val::load(Buf::In(0), ix)),
            Stmt::let_("v".into(), Val::Trunc("x".into())),
        ]
    }
}

/// The kernel of `Op::Encode` on an input viewed as `[n, inner]` (`n` = 1 for one-hot):
/// output `[inner, depth]`, each position `t` of row `i` set (or counted) where some
/// `x[j][i]` is `t`.
pub fn encode(n: usize, inner: usize, depth: usize, mode: EncodeMode, integer: bool) -> Vec<Stmt> {
    let mut out = for_(
        "o",
        inner * depth,
        vec![Place::Out(at("o")).set(Val::Const(0.0))],
    );
    let hit = Ix::default().plus("i", depth).plus("t", 1);
    let set = match mode {
        EncodeMode::Count => Place::Out(hit).write(WriteOp::Add, Val::Const(1.0)),
        EncodeMode::OneHot | EncodeMode::MultiHot => Place::Out(hit).set(Val::Const(1.0)),
    };
    let mut body = load_integer(Ix::default().plus("j", inner).plus("i", 1), integer);
    body.push(Stmt::let_mut("tf".into(), Val::Const(0.0)));
    body.extend(for_(
        "t",
        depth,
        vec![
            Stmt::If(Cond::Equal(Val::var("v"), Val::var("tf")), vec![set]),
            Place::Var("tf".into()).accumulate(Val::Const(1.0)),
        ],
    ));
    out.extend(for_("j", n, for_("i", inner, body)));
    out
}

/// The kernel of `Op::Bucketize`: `count` values, each the number of `len` boundaries
/// (weight `boundaries`, absent when there are none) not above it.
pub fn bucketize(
    count: usize,
    (len, boundaries): (usize, Option<WeightId>),
    integer: bool,
) -> Vec<Stmt> {
    let Some(boundaries) = boundaries else {
        return for_("i", count, vec![Place::Out(at("i")).set(Val::Const(0.0))]);
    };
    let x = if integer {
        Val::load(Buf::InInt(0), at("i"))
    } else {
        Val::load(Buf::In(0), at("i"))
    };
    let body = vec![
        Stmt::let_("x".into(), x),
        Stmt::let_mut("c".into(), Val::Const(len as f32)),
    ]
    .into_iter()
    .chain(for_(
        "k",
        len,
        vec![Stmt::If(
            Cond::Greater(Val::load(Buf::W(boundaries), at("k")), Val::var("x")),
            vec![Place::Var("c".into()).accumulate(Val::Const(-1.0))],
        )],
    ))
    .chain([Place::Out(at("i")).set(Val::var("c"))])
    .collect();
    for_("i", count, body)
}

/// What `Op::Lookup` gives a value that is no key.
pub enum Miss {
    Default(f32),
    /// `floormod(v, n) + start`.
    Buckets(f32, f32),
}

/// The kernel of `Op::Lookup`: `count` values through `len` keys (weights `keys`,
/// `values`), then the mask.
pub fn lookup(
    count: usize,
    (len, keys, values): (usize, WeightId, WeightId),
    miss: Miss,
    mask: Option<(f32, f32)>,
    integer: bool,
) -> Vec<Stmt> {
    let mut body = load_integer(at("i"), integer);
    match miss {
        Miss::Default(d) => body.push(Stmt::let_mut("y".into(), Val::Const(d))),
        Miss::Buckets(n, start) => {
            // A truncated quotient (off by at most one after rounding), then the remainder
            // brought into 0..n.
            body.push(Stmt::let_("q0".into(), Val::var("v") / Val::Const(n)));
            body.push(Stmt::let_("q".into(), Val::Trunc("q0".into())));
            body.push(Stmt::let_mut(
                "r".into(),
                Val::var("v") - Val::var("q") * Val::Const(n),
            ));
            for _ in 0..2 {
                body.push(Stmt::If(
                    Cond::Greater(Val::Const(0.0), Val::var("r")),
                    vec![Place::Var("r".into()).accumulate(Val::Const(n))],
                ));
            }
            body.push(Stmt::If(
                Cond::Greater(Val::var("r"), Val::Const(n - 1.0)),
                vec![Place::Var("r".into()).accumulate(Val::Const(-n))],
            ));
            body.push(Stmt::let_mut("y".into(), Val::var("r") + Val::Const(start)));
        }
    }
    body.extend(for_(
        "k",
        len,
        vec![Stmt::If(
            Cond::Equal(Val::var("v"), Val::load(Buf::W(keys), at("k"))),
            vec![Place::Var("y".into()).set(Val::load(Buf::W(values), at("k")))],
        )],
    ));
    if let Some((key, value)) = mask {
        body.push(Stmt::If(
            Cond::Equal(Val::var("v"), Val::Const(key)),
            vec![Place::Var("y".into()).set(Val::Const(value))],
        ));
    }
    body.push(Place::Out(at("i")).set(Val::var("y")));
    for_("i", count, body)
}
