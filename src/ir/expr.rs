//! Elementwise formulas as a tiny expression tree: each activation's semantics is written
//! once here, evaluated by the interpreter and printed by every backend (same operations
//! in the same order, so they agree bit for bit).

use super::MathFn;
use super::{Activation, MathOp, ScalarOp};

/// An f32 expression of one variable `x`.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    X,
    Const(f32),
    Add(Box<Expr>, Box<Expr>),
    Sub(Box<Expr>, Box<Expr>),
    Mul(Box<Expr>, Box<Expr>),
    Div(Box<Expr>, Box<Expr>),
    /// `if a < b { then } else { otherwise }` (false for NaN, so NaN takes `otherwise`).
    IfLess(Box<[Expr; 4]>),
    /// `a < lo ? lo : (hi < a ? hi : a)`: NaN stays NaN (Rust's `f32::clamp`).
    Clamp(Box<Expr>, f32, f32),
    Call(MathFn, Box<Expr>),
}

use Expr::*;

fn c(v: f32) -> Expr {
    Const(v)
}
fn add(a: Expr, b: Expr) -> Expr {
    Add(Box::new(a), Box::new(b))
}
fn sub(a: Expr, b: Expr) -> Expr {
    Sub(Box::new(a), Box::new(b))
}
fn mul(a: Expr, b: Expr) -> Expr {
    Mul(Box::new(a), Box::new(b))
}
fn div(a: Expr, b: Expr) -> Expr {
    Div(Box::new(a), Box::new(b))
}
fn call(f: MathFn, a: Expr) -> Expr {
    Call(f, Box::new(a))
}
/// `a < b ? then : otherwise`.
fn if_less(a: Expr, b: Expr, then: Expr, otherwise: Expr) -> Expr {
    IfLess(Box::new([a, b, then, otherwise]))
}
/// `max(a, 0)` that propagates NaN (like TensorFlow's relu).
fn relu(a: Expr) -> Expr {
    if_less(a.clone(), c(0.0), c(0.0), a)
}
/// `clip(a, lo, hi)`, NaN-propagating.
fn clip(a: Expr, lo: f32, hi: f32) -> Expr {
    Clamp(Box::new(a), lo, hi)
}
/// `|a|` for a variable-free-of-side-effects expression.
fn abs(a: Expr) -> Expr {
    if_less(a.clone(), c(0.0), sub(c(0.0), a.clone()), a)
}

/// The formula of an elementwise activation applied to `X`; `None` for the axis ones.
/// Each follows what Keras 3 (TensorFlow backend) computes; see keras/src/activations.
pub fn activation(act: &Activation) -> Option<Expr> {
    let x = X;
    Some(match *act {
        Activation::Linear => x,
        Activation::Relu {
            negative_slope,
            max_value,
            threshold,
        } => keras_relu(negative_slope, max_value, threshold),
        Activation::Sigmoid => call(MathFn::Sigmoid, x),
        Activation::HardSigmoid { slope } => clip(add(mul(x, c(slope)), c(0.5)), 0.0, 1.0),
        Activation::Tanh => call(MathFn::Tanh, x),
        Activation::Elu { alpha } => if_less(
            c(0.0),
            x.clone(),
            x.clone(),
            mul(c(alpha), call(MathFn::Expm1, x)),
        ),
        Activation::Selu => {
            let (alpha, scale) = (1.673_263_2_f32, 1.050_701_f32);
            mul(
                c(scale),
                if_less(
                    c(0.0),
                    x.clone(),
                    x.clone(),
                    mul(c(alpha), call(MathFn::Expm1, x)),
                ),
            )
        }
        // max(x, 0) + alpha * expm1(min(x, 0) / alpha)
        Activation::Celu { alpha } => add(
            relu(x.clone()),
            mul(
                c(alpha),
                call(
                    MathFn::Expm1,
                    div(if_less(c(0.0), x.clone(), c(0.0), x), c(alpha)),
                ),
            ),
        ),
        Activation::Gelu { approximate: false } => mul(
            mul(c(0.5), x.clone()),
            add(
                c(1.0),
                call(MathFn::Erf, div(x, c(std::f32::consts::SQRT_2))),
            ),
        ),
        Activation::Gelu { approximate: true } => {
            // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
            let cube = mul(mul(x.clone(), x.clone()), x.clone());
            let inner = mul(c(0.797_884_6), add(x.clone(), mul(c(0.044_715), cube)));
            mul(mul(c(0.5), x), add(c(1.0), call(MathFn::Tanh, inner)))
        }
        Activation::Softplus => call(MathFn::Softplus, x),
        Activation::Softsign => div(x.clone(), add(c(1.0), abs(x))),
        Activation::Silu => mul(x.clone(), call(MathFn::Sigmoid, x)),
        // x * relu6(x + 3) / 6
        Activation::HardSilu => mul(x.clone(), div(clip(add(x, c(3.0)), 0.0, 6.0), c(6.0))),
        Activation::Mish => mul(x.clone(), call(MathFn::Tanh, call(MathFn::Softplus, x))),
        Activation::Exponential => call(MathFn::Exp, x),
        // -softplus(-x)
        Activation::LogSigmoid => sub(c(0.0), call(MathFn::Softplus, sub(c(0.0), x))),
        Activation::HardTanh => clip(x, -1.0, 1.0),
        Activation::TanhShrink => sub(x.clone(), call(MathFn::Tanh, x)),
        // (x + sqrt(x^2 + b)) / 2
        Activation::Squareplus { b } => div(
            add(x.clone(), call(MathFn::Sqrt, add(mul(x.clone(), x), c(b)))),
            c(2.0),
        ),
        // x <= -1: 0; x >= 1: x; else (x + 1)^2 / 4
        Activation::SparsePlus => {
            let sq = add(x.clone(), c(1.0));
            if_less(
                c(-1.0),
                x.clone(),
                if_less(x.clone(), c(1.0), div(mul(sq.clone(), sq), c(4.0)), x),
                c(0.0),
            )
        }
        Activation::SoftShrink { threshold: t } => if_less(
            c(t),
            x.clone(),
            sub(x.clone(), c(t)),
            if_less(x.clone(), c(-t), add(x, c(t)), c(0.0)),
        ),
        Activation::HardShrink { threshold: t } => if_less(c(t), abs(x.clone()), x, c(0.0)),
        // x <= -1: 0; x >= 1: 1; else (x + 1) / 2
        Activation::SparseSigmoid => if_less(
            c(-1.0),
            x.clone(),
            if_less(x.clone(), c(1.0), mul(c(0.5), add(x, c(1.0))), c(1.0)),
            c(0.0),
        ),
        Activation::Threshold {
            threshold,
            default_value,
        } => if_less(c(threshold), x.clone(), x, c(default_value)),
        Activation::Scalar {
            op,
            value,
            constant_first,
        } => scalar(op, value, constant_first),
        Activation::Power { exponent } => power(exponent),
        Activation::Clip { min, max } => clip(x, min, max),
        Activation::Math(op) => match op {
            MathOp::Log => call(MathFn::Log, x),
            MathOp::Sqrt => call(MathFn::Sqrt, x),
            MathOp::Rsqrt => div(c(1.0), call(MathFn::Sqrt, x)),
            MathOp::Square => mul(x.clone(), x),
            MathOp::Abs => abs(x),
            MathOp::Negative => sub(c(0.0), x),
            MathOp::Reciprocal => div(c(1.0), x),
        },
        Activation::Axis { .. } => return None,
    })
}

/// `x op v` (`v op x` with `constant_first`); comparisons give 1.0 or 0.0 and are false
/// for NaN, as TensorFlow's. `x >= v` is `x > prev(v)` and `x <= v` is `x < next(v)` (the
/// neighbouring floats), so one `<` decides each.
fn scalar(op: ScalarOp, v: f32, constant_first: bool) -> Expr {
    let x = X;
    let (a, b) = if constant_first {
        (c(v), x.clone())
    } else {
        (x.clone(), c(v))
    };
    match op {
        ScalarOp::Add => add(a, b),
        ScalarOp::Subtract => sub(a, b),
        ScalarOp::Multiply => mul(a, b),
        ScalarOp::Divide => div(a, b),
        // NaN in x propagates whichever side the constant is on.
        ScalarOp::Maximum => if_less(x.clone(), c(v), c(v), x),
        ScalarOp::Minimum => if_less(c(v), x.clone(), c(v), x),
        ScalarOp::Greater | ScalarOp::Less | ScalarOp::GreaterEqual | ScalarOp::LessEqual => {
            // Written as `lo < hi` with the variable on one side.
            let (below, bound) = match (op, constant_first) {
                // x > v  /  v < x
                (ScalarOp::Greater, false) | (ScalarOp::Less, true) => (false, v),
                // x >= v  /  v <= x
                (ScalarOp::GreaterEqual, false) | (ScalarOp::LessEqual, true) => {
                    (false, next_down(v))
                }
                // x < v  /  v > x
                (ScalarOp::Less, false) | (ScalarOp::Greater, true) => (true, v),
                // x <= v  /  v >= x
                _ => (true, next_up(v)),
            };
            if below {
                if_less(x, c(bound), c(1.0), c(0.0))
            } else {
                if_less(c(bound), x, c(1.0), c(0.0))
            }
        }
        ScalarOp::Equal => equal(v, c(1.0), c(0.0)),
        ScalarOp::NotEqual => equal(v, c(0.0), c(1.0)),
    }
}

/// `x == v ? then : otherwise` as two `<` tests (NaN is equal to nothing).
fn equal(v: f32, then: Expr, otherwise: Expr) -> Expr {
    if_less(
        c(next_down(v)),
        X,
        if_less(X, c(next_up(v)), then, otherwise.clone()),
        otherwise,
    )
}

/// The next float above `v` (infinity stays).
fn next_up(v: f32) -> f32 {
    if v.is_nan() || v == f32::INFINITY {
        return v;
    }
    if v == 0.0 {
        return f32::from_bits(1);
    }
    let bits = v.to_bits();
    f32::from_bits(if v > 0.0 { bits + 1 } else { bits - 1 })
}

/// The next float below `v`.
fn next_down(v: f32) -> f32 {
    -next_up(-v)
}

/// `x ^ e`: small integer powers by multiplication, `0.5` as `sqrt`, others as
/// `exp(e * log(x))` (NaN for negative `x`, as `pow`).
fn power(e: f32) -> Expr {
    let x = X;
    if e == 0.5 {
        return call(MathFn::Sqrt, x);
    }
    if e.fract() == 0.0 && e.abs() <= 8.0 {
        let n = e.abs() as usize;
        let product = (1..n).fold(if n == 0 { c(1.0) } else { x.clone() }, |acc, _| {
            mul(acc, x.clone())
        });
        return if e < 0.0 {
            div(c(1.0), product)
        } else {
            product
        };
    }
    call(MathFn::Exp, mul(c(e), call(MathFn::Log, x)))
}

/// Keras's `ReLU.static_call`, step by step.
fn keras_relu(negative_slope: f32, max_value: Option<f32>, threshold: f32) -> Expr {
    let x = X;
    if negative_slope != 0.0 && max_value.is_none() && threshold == 0.0 {
        // leaky_relu: x >= 0 ? x : slope * x
        return if_less(x.clone(), c(0.0), mul(c(negative_slope), x.clone()), x);
    }
    let positive = match (threshold != 0.0, max_value) {
        // x * (x > threshold), then clipped
        (true, _) => {
            let kept = mul(x.clone(), if_less(c(threshold), x.clone(), c(1.0), c(0.0)));
            max_value.map_or(kept.clone(), |m| clip(kept, 0.0, m))
        }
        // relu then clip to [0, m] is one clip (NaN stays NaN either way)
        (false, Some(m)) => clip(x.clone(), 0.0, m),
        (false, None) => relu(x.clone()),
    };
    if negative_slope == 0.0 {
        return positive;
    }
    let negative = relu(sub(c(threshold), x));
    sub(positive, mul(c(negative_slope), negative))
}

impl Expr {
    /// `f(x)`.
    pub fn call(f: MathFn) -> Expr {
        call(f, X)
    }

    /// The math functions this expression calls.
    pub fn math_fns(&self, out: &mut std::collections::BTreeSet<MathFn>) {
        match self {
            X | Const(_) => {}
            Add(a, b) | Sub(a, b) | Mul(a, b) | Div(a, b) => {
                a.math_fns(out);
                b.math_fns(out);
            }
            IfLess(parts) => parts.iter().for_each(|p| p.math_fns(out)),
            Clamp(a, _, _) => a.math_fns(out),
            Call(f, a) => {
                out.insert(*f);
                a.math_fns(out);
            }
        }
    }

    /// Evaluates with the given math functions (the interpreter passes its reference ones).
    pub fn eval(&self, x: f32, math: &dyn Fn(MathFn, f32) -> f32) -> f32 {
        match self {
            X => x,
            Const(v) => *v,
            Add(a, b) => a.eval(x, math) + b.eval(x, math),
            Sub(a, b) => a.eval(x, math) - b.eval(x, math),
            Mul(a, b) => a.eval(x, math) * b.eval(x, math),
            Div(a, b) => a.eval(x, math) / b.eval(x, math),
            IfLess(p) => {
                if p[0].eval(x, math) < p[1].eval(x, math) {
                    p[2].eval(x, math)
                } else {
                    p[3].eval(x, math)
                }
            }
            Call(f, a) => math(*f, a.eval(x, math)),
            Clamp(a, lo, hi) => {
                let v = a.eval(x, math);
                if v < *lo {
                    *lo
                } else if *hi < v {
                    *hi
                } else {
                    v
                }
            }
        }
    }
}
