//! A small loop language for kernels whose index arithmetic is more than a flat walk:
//! convolution, pooling, padding, merges, ... Lowering writes each such kernel once as
//! `Stmt`s; the backends only print them (one walker, `backend::printer`), so every
//! language runs the same operations in the same order and they agree bit for bit.

use super::WeightId;
use crate::ir::expr::Expr;

/// An affine index `sum(var * stride) + constant`. The constant may be negative only where
/// a guard ([`Stmt::IfInRange`]) has checked that the sum stays non-negative.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ix {
    pub terms: Vec<(String, usize)>,
    pub constant: isize,
}

impl Ix {
    pub fn constant(c: usize) -> Ix {
        Ix {
            terms: Vec::new(),
            constant: c as isize,
        }
    }

    /// `self + var * stride`.
    pub fn plus(mut self, var: &str, stride: usize) -> Ix {
        if stride != 0 {
            self.terms.push((var.to_string(), stride));
        }
        self
    }

    /// `self + c` (c may be negative).
    pub fn offset(mut self, c: isize) -> Ix {
        self.constant += c;
        self
    }

    /// `self` with `var` fixed at `value`.
    pub fn substitute(mut self, var: &str, value: usize) -> Ix {
        let stride: usize = self
            .terms
            .iter()
            .filter(|(v, _)| v == var)
            .map(|(_, s)| s)
            .sum();
        self.terms.retain(|(v, _)| v != var);
        self.constant += (stride * value) as isize;
        self
    }

    /// `self + other * scale`.
    pub fn add_scaled(mut self, other: &Ix, scale: usize) -> Ix {
        for (v, s) in &other.terms {
            self = self.plus(v, s * scale);
        }
        self.constant += other.constant * scale as isize;
        self
    }
}

/// Where a value is read from.
#[derive(Debug, Clone, PartialEq)]
pub enum Buf {
    /// The k-th input of the kernel.
    In(usize),
    /// The k-th input of the kernel, an `i32` model input, read as f32 (exact below 2^24).
    InInt(usize),
    /// The kernel's own output (read back while accumulating).
    Out,
    /// A 1-D weight array.
    W(WeightId),
    /// A 2-D weight array, `[row][col]`.
    W2(WeightId, Ix),
    /// The kernel's private working memory (`work`).
    Work,
    /// A local array, see [`Stmt::Local`].
    Local(Array),
}

/// A local f32 array: accumulators the compiler keeps in registers.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    pub name: String,
}

impl Array {
    pub fn named(name: String) -> Array {
        Array { name }
    }
}

/// An f32 value.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Load(Buf, Ix),
    Var(String),
    Const(f32),
    Add(Box<Val>, Box<Val>),
    Sub(Box<Val>, Box<Val>),
    Mul(Box<Val>, Box<Val>),
    Div(Box<Val>, Box<Val>),
    /// `b > a ? b : a` (keeps `a` when `b` is NaN).
    Max(Box<Val>, Box<Val>),
    /// `b < a ? b : a`.
    Min(Box<Val>, Box<Val>),
    /// An elementwise formula applied to a value held in a variable.
    Apply(Expr, String),
    /// An integer as f32 (exact below 2^24).
    Int(Box<IVal>),
    /// A variable truncated toward zero (what Keras's cast to an integer does): through
    /// `i32` below 2^23 in magnitude, where an f32 can have a fraction; itself otherwise
    /// (already an integer, or NaN).
    Trunc(String),
}

impl Val {
    pub fn load(buf: Buf, ix: Ix) -> Val {
        Val::Load(buf, ix)
    }
    pub fn var(name: &str) -> Val {
        Val::Var(name.to_string())
    }
    pub fn max(a: Val, b: Val) -> Val {
        Val::Max(Box::new(a), Box::new(b))
    }
    pub fn min(a: Val, b: Val) -> Val {
        Val::Min(Box::new(a), Box::new(b))
    }
}

macro_rules! binary_op {
    ($trait:ident, $method:ident, $variant:ident) => {
        impl std::ops::$trait for Val {
            type Output = Val;
            fn $method(self, other: Val) -> Val {
                Val::$variant(Box::new(self), Box::new(other))
            }
        }
    };
}
binary_op!(Add, add, Add);
binary_op!(Sub, sub, Sub);
binary_op!(Mul, mul, Mul);
binary_op!(Div, div, Div);

/// An `i32` value, for the integer kernels of a quantized model ([`crate::ir::int8`]).
/// Every operation is exact: lowering bounds the sums so that none overflows.
#[derive(Debug, Clone, PartialEq)]
pub enum IVal {
    /// An int8 element (an int8 input or weight), widened.
    Load(Buf, Ix),
    /// An `i32` weight element (a bias, a multiplier, a shift).
    LoadI32(Buf, Ix),
    Var(String),
    Const(i32),
    Add(Box<IVal>, Box<IVal>),
    Sub(Box<IVal>, Box<IVal>),
    Mul(Box<IVal>, Box<IVal>),
    /// `a` clamped to `[lo, hi]`.
    Clamp(Box<IVal>, i32, i32),
    /// `b > a ? b : a`.
    Max(Box<IVal>, Box<IVal>),
    /// `requantize_i32(value, multiplier, shift)` ([`crate::ir::int8::requantize`]).
    Requant(Box<[IVal; 3]>),
    /// `quantize_i8(x, scale, zero_point)` of an f32 ([`crate::ir::int8::quantize`]).
    Quantize(Box<Val>, f32, i32),
    /// `sum_{k < len} a[ix_a + k] * b[ix_b + k]` of two runs of int8 values (C and C++
    /// call the runtime's `dot_i8`, which uses the Cortex-M DSP extension where the core
    /// has it).
    Dot(Box<[(Buf, Ix); 2]>, usize),
    /// `sum / count` rounded half away from zero ([`crate::ir::int8::rounded_div`]), of two
    /// variables (`count` positive).
    RoundedDiv(String, String),
}

impl IVal {
    pub fn load(buf: Buf, ix: Ix) -> IVal {
        IVal::Load(buf, ix)
    }
    pub fn var(name: &str) -> IVal {
        IVal::Var(name.to_string())
    }
    pub fn clamp(self, lo: i32, hi: i32) -> IVal {
        IVal::Clamp(Box::new(self), lo, hi)
    }
    pub fn max(a: IVal, b: IVal) -> IVal {
        IVal::Max(Box::new(a), Box::new(b))
    }
    pub fn requant(value: IVal, multiplier: IVal, shift: IVal) -> IVal {
        IVal::Requant(Box::new([value, multiplier, shift]))
    }
}

impl std::ops::Add for IVal {
    type Output = IVal;
    fn add(self, other: IVal) -> IVal {
        IVal::Add(Box::new(self), Box::new(other))
    }
}
impl std::ops::Sub for IVal {
    type Output = IVal;
    fn sub(self, other: IVal) -> IVal {
        IVal::Sub(Box::new(self), Box::new(other))
    }
}
impl std::ops::Mul for IVal {
    type Output = IVal;
    fn mul(self, other: IVal) -> IVal {
        IVal::Mul(Box::new(self), Box::new(other))
    }
}

/// What the compiler is asked to do with a loop. Rust has no way to ask: rustc decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unroll {
    /// Its own heuristics.
    Compiler,
    /// Keep it a loop.
    Never,
    /// Unroll it fully (its accumulators then stay in registers).
    Fully,
}

/// A statement of a kernel body.
#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    /// `for var in 0..count`; `unroll` is what the compiler is asked to do with it (a
    /// tuning input of lowering, for compilers that unroll it badly or not at all).
    For {
        var: String,
        count: usize,
        unroll: Unroll,
        body: Vec<Stmt>,
    },
    /// A new f32 variable.
    Let {
        name: String,
        value: Val,
        mutable: bool,
    },
    /// A new `i32` variable.
    ILet {
        name: String,
        value: IVal,
        mutable: bool,
    },
    /// `to = value` (an int8 element where `to` is the output: the value is in range) or
    /// `to += value` (an `i32` variable).
    IWrite { to: Place, op: WriteOp, value: IVal },
    /// `sums[k] += sum_{r < rows, l < len} x[ix + r stride + l] * w[iw + 4 r len + 16 (l /
    /// 4) + 4 k + l % 4]` for `k < 4`, of int8 values (`len` a multiple of 4): `rows` input
    /// runs against four weight rows stored interleaved by fours, each input value widened
    /// once for all four (C and C++ call the runtime's `dot4_i8`, whose weights are then
    /// one stream).
    Dots {
        sums: [String; 4],
        x: (Buf, Ix),
        w: (Buf, Ix),
        len: usize,
        rows: usize,
        stride: usize,
    },
    /// A new index variable.
    LetIndex { name: String, value: Index },
    /// `to = value`, `to += value`, ...
    Write { to: Place, op: WriteOp, value: Val },
    /// Declares a local array of `len` values. Every element is stored before it is read.
    Local { array: Array, len: usize },
    /// Declares a local array of `len` `i32` values (an int8 kernel's sums), read with
    /// [`IVal::LoadI32`] and written with [`Stmt::IWrite`]. Every element is stored before
    /// it is read.
    ILocal { array: Array, len: usize },
    /// Runs `body` when `cond` holds.
    If(Cond, Vec<Stmt>),
    /// Runs `body` when `lo <= ix < hi`.
    IfInRange {
        ix: Ix,
        lo: usize,
        hi: usize,
        body: Vec<Stmt>,
    },
    /// Statements in their own scope (`{ ... }`), so their names can repeat.
    Block(Vec<Stmt>),
}

/// What an index variable holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Index {
    /// `ix` (which may be negative) clamped to `0..=max`.
    Clamped { ix: Ix, max: usize },
    /// A value read from input `input` at `ix` (an Embedding index): `i32` values clamped
    /// to `0..=max`; f32 values truncated toward zero, then clamped (NaN gives 0).
    Lookup {
        input: usize,
        ix: Ix,
        max: usize,
        integer: bool,
    },
    /// An entry of a weight array of whole numbers (an index table made at generation
    /// time, every entry a valid index): `table[ix]`.
    Table { table: WeightId, ix: Ix },
    /// `last - var`, counting down (a loop over time read backwards).
    Reversed { var: String, last: usize },
}

/// What a [`Stmt::Write`] writes to.
#[derive(Debug, Clone, PartialEq)]
pub enum Place {
    /// `output[ix]`.
    Out(Ix),
    /// `work[ix]`, the kernel's working memory.
    Work(Ix),
    /// A mutable f32 (or, for [`Stmt::IWrite`], `i32`) variable.
    Var(String),
    /// An element of a local array.
    Local(Array, Ix),
}

/// How a [`Stmt::Write`] combines the value with what is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOp {
    Set,
    Add,
    Mul,
    Div,
}

impl Place {
    /// `self = value` of an integer (narrowed to int8 where `self` is the output).
    pub fn iset(self, value: IVal) -> Stmt {
        Stmt::IWrite {
            to: self,
            op: WriteOp::Set,
            value,
        }
    }
    /// `self += value` of an integer variable.
    pub fn iadd(self, value: IVal) -> Stmt {
        Stmt::IWrite {
            to: self,
            op: WriteOp::Add,
            value,
        }
    }
    pub fn write(self, op: WriteOp, value: Val) -> Stmt {
        Stmt::Write {
            to: self,
            op,
            value,
        }
    }
    pub fn set(self, value: Val) -> Stmt {
        self.write(WriteOp::Set, value)
    }
    pub fn accumulate(self, value: Val) -> Stmt {
        self.write(WriteOp::Add, value)
    }
}

impl Stmt {
    pub fn let_(name: String, value: Val) -> Stmt {
        Stmt::Let {
            name,
            value,
            mutable: false,
        }
    }
    pub fn let_mut(name: String, value: Val) -> Stmt {
        Stmt::Let {
            name,
            value,
            mutable: true,
        }
    }
    pub fn let_index(name: &str, value: Index) -> Stmt {
        Stmt::LetIndex {
            name: name.to_string(),
            value,
        }
    }
    pub fn local(array: Array, len: usize) -> Stmt {
        Stmt::Local { array, len }
    }
    pub fn ilet(name: &str, value: IVal) -> Stmt {
        Stmt::ILet {
            name: name.to_string(),
            value,
            mutable: false,
        }
    }
    pub fn ilet_mut(name: &str, value: IVal) -> Stmt {
        Stmt::ILet {
            name: name.to_string(),
            value,
            mutable: true,
        }
    }
}

/// A condition on values (false when a NaN is involved) or on loop variables.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    Greater(Val, Val),
    Equal(Val, Val),
    /// Loop variable `a` < loop variable `b`.
    IndexLess(String, String),
    And(Box<Cond>, Box<Cond>),
}

/// A `for` loop, or its body alone when it runs once (with the variable fixed at 0), in a
/// scope of its own when it declares names (as the loop's body would be: two such bodies
/// in a row must not declare the same name twice, which C++ rejects).
pub fn for_(var: &str, count: usize, mut body: Vec<Stmt>) -> Vec<Stmt> {
    if count == 1 {
        walk(&mut body, &mut Fix(var));
        if body.iter().any(Stmt::declares) {
            vec![Stmt::Block(body)]
        } else {
            body
        }
    } else {
        vec![Stmt::For {
            var: var.to_string(),
            count,
            unroll: Unroll::Compiler,
            body,
        }]
    }
}

impl Stmt {
    /// Whether the statement declares a name in the current scope.
    fn declares(&self) -> bool {
        matches!(
            self,
            Stmt::Let { .. }
                | Stmt::ILet { .. }
                | Stmt::LetIndex { .. }
                | Stmt::Local { .. }
                | Stmt::ILocal { .. }
        )
    }
}

/// What a walk over statements sees; every hook defaults to nothing.
pub trait Visit {
    /// Every statement, before what it contains.
    fn stmt(&mut self, _: &mut Stmt) {}
    /// Every value, after its operands.
    fn val(&mut self, _: &mut Val) {}
    /// Every condition, after its values.
    fn cond(&mut self, _: &mut Cond) {}
    /// Every index: of statements, loads, writes, weight rows and accumulator homes.
    fn ix(&mut self, _: &mut Ix) {}
}

/// Walks `stmts` in order, depth first.
pub fn walk(stmts: &mut [Stmt], v: &mut impl Visit) {
    for s in stmts {
        walk_stmt(s, v);
    }
}

fn walk_stmt(s: &mut Stmt, v: &mut impl Visit) {
    v.stmt(s);
    match s {
        Stmt::For { body, .. } | Stmt::Block(body) => walk(body, v),
        Stmt::Let { value, .. } => walk_val(value, v),
        Stmt::ILet { value, .. } => walk_ival(value, v),
        Stmt::IWrite { to, value, .. } => {
            walk_place(to, v);
            walk_ival(value, v);
        }
        Stmt::Dots { x, w, .. } => {
            walk_buf(&mut x.0, &mut x.1, v);
            walk_buf(&mut w.0, &mut w.1, v);
        }
        Stmt::LetIndex { value, .. } => match value {
            Index::Clamped { ix, .. } | Index::Lookup { ix, .. } | Index::Table { ix, .. } => {
                v.ix(ix)
            }
            Index::Reversed { .. } => {}
        },
        Stmt::Write { to, value, .. } => {
            walk_place(to, v);
            walk_val(value, v);
        }
        Stmt::Local { .. } | Stmt::ILocal { .. } => {}
        Stmt::If(cond, body) => {
            walk_cond(cond, v);
            walk(body, v);
        }
        Stmt::IfInRange { ix, body, .. } => {
            v.ix(ix);
            walk(body, v);
        }
    }
}

fn walk_place(to: &mut Place, v: &mut impl Visit) {
    match to {
        Place::Out(ix) | Place::Work(ix) => v.ix(ix),
        Place::Var(_) => {}
        Place::Local(_, ix) => v.ix(ix),
    }
}

fn walk_buf(buf: &mut Buf, ix: &mut Ix, v: &mut impl Visit) {
    match buf {
        Buf::W2(_, row) => v.ix(row),
        Buf::In(_) | Buf::InInt(_) | Buf::Out | Buf::W(_) | Buf::Work | Buf::Local(_) => {}
    }
    v.ix(ix);
}

/// The integer values have no hook of their own: a walk sees their indices, and the f32
/// values they quantize.
fn walk_ival(val: &mut IVal, v: &mut impl Visit) {
    match val {
        IVal::Load(buf, ix) | IVal::LoadI32(buf, ix) => walk_buf(buf, ix, v),
        IVal::Add(a, b) | IVal::Sub(a, b) | IVal::Mul(a, b) | IVal::Max(a, b) => {
            walk_ival(a, v);
            walk_ival(b, v);
        }
        IVal::Clamp(a, ..) => walk_ival(a, v),
        IVal::Requant(parts) => parts.iter_mut().for_each(|p| walk_ival(p, v)),
        IVal::Quantize(x, ..) => walk_val(x, v),
        IVal::Dot(runs, _) => runs.iter_mut().for_each(|(buf, ix)| walk_buf(buf, ix, v)),
        IVal::Var(_) | IVal::Const(_) | IVal::RoundedDiv(..) => {}
    }
}

fn walk_val(val: &mut Val, v: &mut impl Visit) {
    match val {
        Val::Load(buf, ix) => walk_buf(buf, ix, v),
        Val::Int(i) => walk_ival(i, v),
        Val::Add(a, b)
        | Val::Sub(a, b)
        | Val::Mul(a, b)
        | Val::Div(a, b)
        | Val::Max(a, b)
        | Val::Min(a, b) => {
            walk_val(a, v);
            walk_val(b, v);
        }
        Val::Var(_) | Val::Const(_) | Val::Apply(..) | Val::Trunc(_) => {}
    }
    v.val(val);
}

fn walk_cond(cond: &mut Cond, v: &mut impl Visit) {
    match cond {
        Cond::Greater(a, b) | Cond::Equal(a, b) => {
            walk_val(a, v);
            walk_val(b, v);
        }
        Cond::And(a, b) => {
            walk_cond(a, v);
            walk_cond(b, v);
        }
        Cond::IndexLess(..) => {}
    }
    v.cond(cond);
}

/// Substitutes 0 for a loop variable (a loop that runs once). Loop variables compared with
/// each other ([`Cond::IndexLess`]) belong to loops that are always emitted.
struct Fix<'a>(&'a str);

impl Visit for Fix<'_> {
    fn stmt(&mut self, s: &mut Stmt) {
        // Counting down from `last` with the loop variable fixed at 0.
        if let Stmt::LetIndex {
            value: Index::Reversed { var, last },
            ..
        } = s
        {
            if var == self.0 {
                let last = *last;
                if let Stmt::LetIndex { value, .. } = s {
                    *value = Index::Clamped {
                        ix: Ix::constant(last),
                        max: last,
                    };
                }
            }
        }
    }

    fn ix(&mut self, ix: &mut Ix) {
        ix.terms.retain(|(v, _)| v != self.0);
    }
}

/// Facts about a kernel the backends need: the math functions its formulas call, and
/// whether it uses an infinite or NaN constant (which C++ spells with `<cmath>` macros).
#[derive(Default)]
pub struct Uses {
    pub math: std::collections::BTreeSet<crate::ir::MathFn>,
    pub non_finite: bool,
}

impl Visit for Uses {
    fn val(&mut self, v: &mut Val) {
        match v {
            Val::Apply(expr, _) => expr.math_fns(&mut self.math),
            Val::Const(c) => self.non_finite |= !c.is_finite(),
            _ => {}
        }
    }
}
