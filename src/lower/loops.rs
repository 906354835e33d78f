//! A small loop language for kernels whose index arithmetic is more than a flat walk:
//! convolution, pooling, padding, merges, ... Lowering writes each such kernel once as
//! `Stmt`s; the Rust and C++ backends only print them (so both run the same operations in
//! the same order, and agree bit for bit).

use super::expr::{Expr, Lang};
use super::WeightId;

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

    /// `self + other * scale`.
    pub fn add_scaled(mut self, other: &Ix, scale: usize) -> Ix {
        for (v, s) in &other.terms {
            self = self.plus(v, s * scale);
        }
        self.constant += other.constant * scale as isize;
        self
    }

    pub fn print(&self) -> String {
        let mut parts: Vec<String> = self
            .terms
            .iter()
            .map(|(v, s)| {
                if *s == 1 {
                    v.clone()
                } else {
                    format!("{v} * {s}")
                }
            })
            .collect();
        let text = if parts.is_empty() {
            return self.constant.max(0).to_string();
        } else {
            if self.constant > 0 {
                parts.push(self.constant.to_string());
            }
            parts.join(" + ")
        };
        if self.constant < 0 {
            format!("{text} - {}", -self.constant)
        } else {
            text
        }
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
    /// The kernel's private working memory (`work`), see [`Stmt::WorkStore`].
    Work,
    /// A local array, see [`Stmt::Local`].
    Local(String),
    /// An accumulator, see [`Stmt::Acc`].
    Acc(Acc),
}

/// A run of outputs summed in registers: `output[home..home + len]`. Rust keeps it in a
/// local array (copied to the output at the end); C++ accumulates in place in the output,
/// which GCC keeps in registers more reliably than a local array. Either way every value
/// sees the same operations in the same order.
#[derive(Debug, Clone, PartialEq)]
pub struct Acc {
    pub name: String,
    pub home: Ix,
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

/// A statement of a kernel body.
#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    /// `for var in 0..count`.
    For {
        var: String,
        count: usize,
        body: Vec<Stmt>,
    },
    /// A new f32 variable.
    Let(String, Val),
    /// A new mutable f32 variable.
    LetMut(String, Val),
    /// Assignment to a variable.
    Set(String, Val),
    /// `output[ix] = value`.
    Store(Ix, Val),
    /// `output[ix] += value` (`Add`), `*=` (`Mul`) or `/=` (`Div`).
    Update(Ix, Update, Val),
    /// `name += value`.
    Accumulate(String, Val),
    /// Runs `body` when `cond` holds.
    If(Cond, Vec<Stmt>),
    /// An index variable: `ix` (which may be negative) clamped to `0..=max`.
    LetIndex { name: String, ix: Ix, max: usize },
    /// An index variable read from input `input` at `ix` (an Embedding index): `i32`
    /// values clamped to `0..=max`; f32 values truncated toward zero, then clamped (NaN
    /// gives 0).
    LetLookup {
        name: String,
        input: usize,
        ix: Ix,
        max: usize,
        integer: bool,
    },
    /// An index variable read from a weight array of whole numbers (an index table made at
    /// generation time, every entry a valid index): `name = table[ix]`.
    LetTable {
        name: String,
        table: WeightId,
        ix: Ix,
    },
    /// Runs `body` when `lo <= ix < hi`.
    IfInRange {
        ix: Ix,
        lo: usize,
        hi: usize,
        body: Vec<Stmt>,
    },
    /// `work[ix] = value` (the kernel's working memory).
    WorkStore(Ix, Val),
    /// `work[ix] += value`.
    WorkAdd(Ix, Val),
    /// Declares accumulator `acc` of `len` values (contents undefined until stored).
    Acc(Acc, usize),
    /// `acc[ix] = value`.
    AccStore(Acc, Ix, Val),
    /// `acc[ix] += value`.
    AccAdd(Acc, Ix, Val),
    /// An index variable counting down: `name = last - var` (a loop over time read
    /// backwards).
    LetReversed {
        name: String,
        var: String,
        last: usize,
    },
    /// A local f32 array (accumulators the compiler keeps in registers). Every element is
    /// stored before it is read: C++ leaves it uninitialised, Rust fills it with zeros.
    Local { name: String, len: usize },
    /// `name[ix] = value` on a local array.
    LocalStore(String, Ix, Val),
    /// `name[ix] += value` on a local array.
    LocalAdd(String, Ix, Val),
    /// Statements in their own scope (`{ ... }`), so their names can repeat.
    Block(Vec<Stmt>),
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

/// A compound assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    Add,
    Mul,
    Div,
}

/// A `for` loop, or its body alone when it runs once (with the variable fixed at 0), in a
/// scope of its own when it declares names (as the loop's body would be: two such bodies
/// in a row must not declare the same name twice, which C++ rejects).
pub fn for_(var: &str, count: usize, body: Vec<Stmt>) -> Vec<Stmt> {
    if count == 1 {
        let body: Vec<Stmt> = body.into_iter().map(|s| s.fix(var)).collect();
        if body.iter().any(Stmt::declares) {
            vec![Stmt::Block(body)]
        } else {
            body
        }
    } else {
        vec![Stmt::For {
            var: var.to_string(),
            count,
            body,
        }]
    }
}

impl Stmt {
    /// Whether the statement declares a name in the current scope.
    fn declares(&self) -> bool {
        matches!(
            self,
            Stmt::Let(..)
                | Stmt::LetMut(..)
                | Stmt::LetIndex { .. }
                | Stmt::LetLookup { .. }
                | Stmt::LetTable { .. }
                | Stmt::LetReversed { .. }
                | Stmt::Acc(..)
                | Stmt::Local { .. }
        )
    }

    /// Substitutes 0 for `var` (a loop that runs once).
    fn fix(self, var: &str) -> Stmt {
        let ix = |ix: Ix| Ix {
            terms: ix.terms.into_iter().filter(|(v, _)| v != var).collect(),
            constant: ix.constant,
        };
        match self {
            Stmt::For {
                var: v,
                count,
                body,
            } => Stmt::For {
                var: v,
                count,
                body: body.into_iter().map(|s| s.fix(var)).collect(),
            },
            Stmt::Let(n, val) => Stmt::Let(n, val.fix(var)),
            Stmt::LetMut(n, val) => Stmt::LetMut(n, val.fix(var)),
            Stmt::Set(n, val) => Stmt::Set(n, val.fix(var)),
            Stmt::Store(i, val) => Stmt::Store(ix(i), val.fix(var)),
            Stmt::Update(i, op, val) => Stmt::Update(ix(i), op, val.fix(var)),
            Stmt::WorkStore(i, val) => Stmt::WorkStore(ix(i), val.fix(var)),
            Stmt::WorkAdd(i, val) => Stmt::WorkAdd(ix(i), val.fix(var)),
            Stmt::LocalStore(n, i, val) => Stmt::LocalStore(n, ix(i), val.fix(var)),
            Stmt::LocalAdd(n, i, val) => Stmt::LocalAdd(n, ix(i), val.fix(var)),
            s @ Stmt::Local { .. } => s,
            Stmt::Block(body) => Stmt::Block(body.into_iter().map(|s| s.fix(var)).collect()),
            Stmt::Acc(a, len) => Stmt::Acc(a.fix(var), len),
            Stmt::AccStore(a, i, val) => Stmt::AccStore(a.fix(var), ix(i), val.fix(var)),
            Stmt::AccAdd(a, i, val) => Stmt::AccAdd(a.fix(var), ix(i), val.fix(var)),
            // Counting down from `last` with the loop variable fixed at 0.
            Stmt::LetReversed { name, var: v, last } if v == var => Stmt::LetIndex {
                name,
                ix: Ix::constant(last),
                max: last,
            },
            s @ Stmt::LetReversed { .. } => s,
            Stmt::Accumulate(n, val) => Stmt::Accumulate(n, val.fix(var)),
            Stmt::LetIndex { name, ix: i, max } => Stmt::LetIndex {
                name,
                ix: ix(i),
                max,
            },
            Stmt::LetLookup {
                name,
                input,
                ix: i,
                max,
                integer,
            } => Stmt::LetLookup {
                name,
                input,
                ix: ix(i),
                max,
                integer,
            },
            Stmt::LetTable { name, table, ix: i } => Stmt::LetTable {
                name,
                table,
                ix: ix(i),
            },
            Stmt::If(cond, body) => Stmt::If(
                cond.fix(var),
                body.into_iter().map(|s| s.fix(var)).collect(),
            ),
            Stmt::IfInRange {
                ix: i,
                lo,
                hi,
                body,
            } => Stmt::IfInRange {
                ix: ix(i),
                lo,
                hi,
                body: body.into_iter().map(|s| s.fix(var)).collect(),
            },
        }
    }
}

impl Cond {
    fn fix(self, var: &str) -> Cond {
        match self {
            Cond::Greater(a, b) => Cond::Greater(a.fix(var), b.fix(var)),
            Cond::Equal(a, b) => Cond::Equal(a.fix(var), b.fix(var)),
            Cond::And(a, b) => Cond::And(Box::new(a.fix(var)), Box::new(b.fix(var))),
            // Loop variables compared with each other belong to loops that are always
            // emitted (never fixed at 0).
            other => other,
        }
    }
}

impl Val {
    fn fix(self, var: &str) -> Val {
        let ix = |ix: Ix| Ix {
            terms: ix.terms.into_iter().filter(|(v, _)| v != var).collect(),
            constant: ix.constant,
        };
        let b = |v: Box<Val>| Box::new(v.fix(var));
        match self {
            Val::Load(Buf::W2(w, row), i) => Val::Load(Buf::W2(w, ix(row)), ix(i)),
            Val::Load(Buf::Acc(a), i) => Val::Load(Buf::Acc(a.fix(var)), ix(i)),
            Val::Load(buf, i) => Val::Load(buf, ix(i)),
            Val::Add(x, y) => Val::Add(b(x), b(y)),
            Val::Sub(x, y) => Val::Sub(b(x), b(y)),
            Val::Mul(x, y) => Val::Mul(b(x), b(y)),
            Val::Div(x, y) => Val::Div(b(x), b(y)),
            Val::Max(x, y) => Val::Max(b(x), b(y)),
            Val::Min(x, y) => Val::Min(b(x), b(y)),
            other => other,
        }
    }
}

impl Acc {
    fn fix(self, var: &str) -> Acc {
        Acc {
            name: self.name,
            home: Ix {
                terms: self
                    .home
                    .terms
                    .into_iter()
                    .filter(|(v, _)| v != var)
                    .collect(),
                constant: self.home.constant,
            },
        }
    }

    /// The output index of element `ix`.
    fn at(&self, ix: &Ix) -> Ix {
        self.home.clone().add_scaled(ix, 1)
    }
}

/// The math functions the formulas in `stmts` call.
pub fn math_fns(stmts: &[Stmt], out: &mut std::collections::BTreeSet<crate::ir::MathFn>) {
    fn val(v: &Val, out: &mut std::collections::BTreeSet<crate::ir::MathFn>) {
        match v {
            Val::Apply(expr, _) => expr.math_fns(out),
            Val::Add(a, b)
            | Val::Sub(a, b)
            | Val::Mul(a, b)
            | Val::Div(a, b)
            | Val::Max(a, b)
            | Val::Min(a, b) => {
                val(a, out);
                val(b, out);
            }
            Val::Load(..) | Val::Var(_) | Val::Const(_) | Val::Trunc(_) => {}
        }
    }
    for s in stmts {
        match s {
            Stmt::For { body, .. }
            | Stmt::IfInRange { body, .. }
            | Stmt::If(_, body)
            | Stmt::Block(body) => math_fns(body, out),
            Stmt::LetIndex { .. }
            | Stmt::LetReversed { .. }
            | Stmt::LetLookup { .. }
            | Stmt::LetTable { .. }
            | Stmt::Local { .. }
            | Stmt::Acc(..) => {}
            Stmt::WorkStore(_, v)
            | Stmt::WorkAdd(_, v)
            | Stmt::LocalStore(_, _, v)
            | Stmt::LocalAdd(_, _, v)
            | Stmt::AccStore(_, _, v)
            | Stmt::AccAdd(_, _, v) => val(v, out),
            Stmt::Let(_, v)
            | Stmt::LetMut(_, v)
            | Stmt::Set(_, v)
            | Stmt::Store(_, v)
            | Stmt::Update(_, _, v)
            | Stmt::Accumulate(_, v) => val(v, out),
        }
    }
}

/// Whether `stmts` use an infinite or NaN constant (which C++ spells with `<cmath>`
/// macros).
pub fn uses_non_finite(stmts: &[Stmt]) -> bool {
    fn val(v: &Val) -> bool {
        match v {
            Val::Const(c) => !c.is_finite(),
            Val::Add(a, b)
            | Val::Sub(a, b)
            | Val::Mul(a, b)
            | Val::Div(a, b)
            | Val::Max(a, b)
            | Val::Min(a, b) => val(a) || val(b),
            Val::Load(..) | Val::Var(_) | Val::Apply(..) | Val::Trunc(_) => false,
        }
    }
    fn cond(c: &Cond) -> bool {
        match c {
            Cond::Greater(a, b) | Cond::Equal(a, b) => val(a) || val(b),
            Cond::And(a, b) => cond(a) || cond(b),
            Cond::IndexLess(..) => false,
        }
    }
    stmts.iter().any(|s| match s {
        Stmt::For { body, .. } | Stmt::IfInRange { body, .. } | Stmt::Block(body) => {
            uses_non_finite(body)
        }
        Stmt::If(c, body) => cond(c) || uses_non_finite(body),
        Stmt::LetIndex { .. }
        | Stmt::LetLookup { .. }
        | Stmt::LetTable { .. }
        | Stmt::LetReversed { .. }
        | Stmt::Local { .. }
        | Stmt::Acc(..) => false,
        Stmt::WorkStore(_, v)
        | Stmt::WorkAdd(_, v)
        | Stmt::LocalStore(_, _, v)
        | Stmt::LocalAdd(_, _, v)
        | Stmt::AccStore(_, _, v)
        | Stmt::AccAdd(_, _, v) => val(v),
        Stmt::Let(_, v)
        | Stmt::LetMut(_, v)
        | Stmt::Set(_, v)
        | Stmt::Store(_, v)
        | Stmt::Update(_, _, v)
        | Stmt::Accumulate(_, v) => val(v),
    })
}

/// How a backend names things; everything else about printing is shared.
pub struct Syntax<'a> {
    pub lang: Lang,
    /// Names of the kernel's inputs (`input`, or `input0`, `input1`, ...).
    pub inputs: &'a [String],
    /// Reads weight array `id` at `[row][index]` (2-D) or `[index]` (1-D).
    pub weight: &'a dyn Fn(WeightId, Option<&Ix>, &Ix) -> String,
}

impl Syntax<'_> {
    /// The statements as text, indented from `depth`.
    pub fn text(&self, stmts: &[Stmt], depth: usize) -> String {
        let mut out = String::new();
        self.print(stmts, depth, &mut out);
        out
    }

    /// Statements that touch only the kernel's output (activations run in place).
    pub fn output_only(lang: Lang, stmts: &[Stmt], depth: usize) -> String {
        let syntax = Syntax {
            lang,
            inputs: &[],
            weight: &|_, _, _| String::new(),
        };
        syntax.text(stmts, depth)
    }

    /// Prints statements, one per line, indented by nesting.
    pub fn print(&self, stmts: &[Stmt], depth: usize, out: &mut String) {
        // Every list printed is a scope already (a function, loop or block body).
        if let [Stmt::Block(inner)] = stmts {
            return self.print(inner, depth, out);
        }
        let pad = "    ".repeat(depth);
        let rust = self.lang == Lang::Rust;
        for s in stmts {
            match s {
                Stmt::For { var, count, body } => {
                    // GCC fully unrolls loops of up to 16 before vectorising, then turns
                    // the unrolled accumulators into in-order vector reductions over the
                    // enclosing channel loop, 4-10x slower; keep such a loop a loop.
                    if !rust && *count <= 16 && body.iter().all(|s| matches!(s, Stmt::AccAdd(..))) {
                        out.push_str(&format!("{pad}#pragma GCC unroll 1\n"));
                    }
                    if rust {
                        out.push_str(&format!("{pad}for {var} in 0..{count} {{\n"));
                    } else {
                        out.push_str(&format!(
                            "{pad}for (std::size_t {var} = 0; {var} < {count}; ++{var}) {{\n"
                        ));
                    }
                    self.print(body, depth + 1, out);
                    out.push_str(&format!("{pad}}}\n"));
                }
                Stmt::Let(name, val) | Stmt::LetMut(name, val) => {
                    let val = self.top(val);
                    let mutable = matches!(s, Stmt::LetMut(..));
                    if rust {
                        let m = if mutable { "mut " } else { "" };
                        out.push_str(&format!("{pad}let {m}{name}: f32 = {val};\n"));
                    } else {
                        let c = if mutable { "" } else { "const " };
                        out.push_str(&format!("{pad}{c}float {name} = {val};\n"));
                    }
                }
                Stmt::Set(name, val) => {
                    out.push_str(&format!("{pad}{name} = {};\n", self.top(val)));
                }
                Stmt::Store(ix, Val::Load(Buf::Acc(acc), at)) if !rust && acc.at(at) == *ix => {
                    // Already in place.
                }
                Stmt::Store(ix, val) => {
                    out.push_str(&format!(
                        "{pad}output[{}] = {};\n",
                        ix.print(),
                        self.top(val)
                    ));
                }
                Stmt::Update(ix, op, val) => {
                    let op = match op {
                        Update::Add => "+=",
                        Update::Mul => "*=",
                        Update::Div => "/=",
                    };
                    out.push_str(&format!(
                        "{pad}output[{}] {op} {};\n",
                        ix.print(),
                        self.top(val)
                    ));
                }
                Stmt::Accumulate(name, val) => {
                    out.push_str(&format!("{pad}{name} += {};\n", self.top(val)));
                }
                Stmt::WorkStore(ix, val) => {
                    out.push_str(&format!("{pad}work[{}] = {};\n", ix.print(), self.top(val)));
                }
                Stmt::Acc(acc, len) => {
                    if rust {
                        let name = &acc.name;
                        out.push_str(&format!("{pad}let mut {name} = [0.0f32; {len}];\n"));
                    }
                }
                Stmt::AccStore(acc, ix, val) | Stmt::AccAdd(acc, ix, val) => {
                    let op = if matches!(s, Stmt::AccAdd(..)) {
                        "+="
                    } else {
                        "="
                    };
                    let target = if rust {
                        format!("{}[{}]", acc.name, ix.print())
                    } else {
                        format!("output[{}]", acc.at(ix).print())
                    };
                    out.push_str(&format!("{pad}{target} {op} {};\n", self.top(val)));
                }
                Stmt::WorkAdd(ix, val) => {
                    out.push_str(&format!(
                        "{pad}work[{}] += {};\n",
                        ix.print(),
                        self.top(val)
                    ));
                }
                Stmt::Local { name, len } => {
                    if rust {
                        out.push_str(&format!("{pad}let mut {name} = [0.0f32; {len}];\n"));
                    } else {
                        out.push_str(&format!("{pad}float {name}[{len}];\n"));
                    }
                }
                Stmt::LocalStore(name, ix, val) => {
                    out.push_str(&format!(
                        "{pad}{name}[{}] = {};\n",
                        ix.print(),
                        self.top(val)
                    ));
                }
                Stmt::LocalAdd(name, ix, val) => {
                    out.push_str(&format!(
                        "{pad}{name}[{}] += {};\n",
                        ix.print(),
                        self.top(val)
                    ));
                }
                Stmt::Block(body) => {
                    out.push_str(&format!("{pad}{{\n"));
                    self.print(body, depth + 1, out);
                    out.push_str(&format!("{pad}}}\n"));
                }
                Stmt::LetReversed { name, var, last } => {
                    if rust {
                        out.push_str(&format!("{pad}let {name} = {last} - {var};\n"));
                    } else {
                        out.push_str(&format!(
                            "{pad}const std::size_t {name} = {last} - {var};\n"
                        ));
                    }
                }
                Stmt::If(cond, body) => self.print_if(&self.cond(cond), body, depth, out),
                Stmt::LetIndex { name, ix, max } if ix.terms.is_empty() => {
                    let value = ix.constant.clamp(0, *max as isize);
                    if rust {
                        out.push_str(&format!("{pad}let {name}: usize = {value};\n"));
                    } else {
                        out.push_str(&format!("{pad}const std::size_t {name} = {value};\n"));
                    }
                }
                Stmt::LetIndex { name, ix, max } => {
                    let i = Ix {
                        terms: ix.terms.clone(),
                        constant: ix.constant.max(0),
                    }
                    .print();
                    let below = -ix.constant.min(0);
                    // Function-call form: the loop variable's type is not yet known.
                    let value = match (rust, below > 0) {
                        (true, true) => {
                            format!("usize::min(usize::saturating_sub({i}, {below}), {max})")
                        }
                        (true, false) => format!("usize::min({i}, {max})"),
                        (false, true) => {
                            format!("({i} < {below} ? 0 : ({i} - {below} < {max} ? {i} - {below} : {max}))")
                        }
                        (false, false) => format!("({i} < {max} ? {i} : {max})"),
                    };
                    if rust {
                        out.push_str(&format!("{pad}let {name} = {value};\n"));
                    } else {
                        out.push_str(&format!("{pad}const std::size_t {name} = {value};\n"));
                    }
                }
                Stmt::LetLookup {
                    name,
                    input,
                    ix,
                    max,
                    integer,
                } => {
                    let v = format!("{}[{}]", self.inputs[*input], ix.print());
                    let line = match (rust, integer) {
                        (true, true) => format!("let {name} = {v}.clamp(0, {max}) as usize;"),
                        (true, false) => format!("let {name} = usize::min({v} as usize, {max});"),
                        (false, true) => format!(
                            "const std::size_t {name} = static_cast<std::size_t>({v} < 0 ? 0 : ({v} > {max} ? {max} : {v}));"
                        ),
                        (false, false) => format!(
                            "const std::size_t {name} = static_cast<std::size_t>(!({v} >= 1.0f) ? 0.0f : ({v} >= {max}.0f ? {max}.0f : {v}));"
                        ),
                    };
                    out.push_str(&format!("{pad}{line}\n"));
                }
                Stmt::LetTable { name, table, ix } => {
                    let entry = (self.weight)(*table, None, ix);
                    if rust {
                        out.push_str(&format!("{pad}let {name} = {entry} as usize;\n"));
                    } else {
                        out.push_str(&format!(
                            "{pad}const std::size_t {name} = static_cast<std::size_t>({entry});\n"
                        ));
                    }
                }
                Stmt::IfInRange { ix, lo, hi, body } => {
                    // Guards nested with nothing else are one `if` (clippy's collapsible_if).
                    let mut conds = vec![self.range_cond(ix, *lo, *hi)];
                    let mut body = body;
                    while let [Stmt::IfInRange {
                        ix,
                        lo,
                        hi,
                        body: inner,
                    }] = body.as_slice()
                    {
                        conds.push(self.range_cond(ix, *lo, *hi));
                        body = inner;
                    }
                    self.print_if(&conds.join(" && "), body, depth, out);
                }
            }
        }
    }

    /// `lo <= ix < hi`.
    fn range_cond(&self, ix: &Ix, lo: usize, hi: usize) -> String {
        let rust = self.lang == Lang::Rust;
        let i = ix.print();
        let simple = ix.terms.len() == 1 && ix.terms[0].1 == 1 && ix.constant == 0;
        if lo == 0 {
            format!("{i} < {hi}")
        } else if rust && simple {
            format!("({lo}..{hi}).contains(&{i})")
        } else if rust {
            format!("({lo}..{hi}).contains(&({i}))")
        } else {
            format!("{lo} <= {i} && {i} < {hi}")
        }
    }

    fn print_if(&self, cond: &str, body: &[Stmt], depth: usize, out: &mut String) {
        let pad = "    ".repeat(depth);
        if self.lang == Lang::Rust {
            out.push_str(&format!("{pad}if {cond} {{\n"));
        } else {
            out.push_str(&format!("{pad}if ({cond}) {{\n"));
        }
        self.print(body, depth + 1, out);
        out.push_str(&format!("{pad}}}\n"));
    }

    fn cond(&self, c: &Cond) -> String {
        match c {
            Cond::Greater(a, b) => format!("{} > {}", self.val(a), self.val(b)),
            Cond::Equal(a, b) => format!("{} == {}", self.val(a), self.val(b)),
            Cond::IndexLess(a, b) => format!("{a} < {b}"),
            Cond::And(a, b) => format!("{} && {}", self.cond(a), self.cond(b)),
        }
    }

    /// A value as a whole right-hand side, without redundant outer parentheses.
    fn top(&self, v: &Val) -> String {
        let text = self.val(v);
        match v {
            Val::Load(Buf::InInt(_), _) if self.lang == Lang::Rust => {
                text[1..text.len() - 1].to_string()
            }
            Val::Load(..) | Val::Var(_) | Val::Const(_) => text,
            _ => text[1..text.len() - 1].to_string(),
        }
    }

    fn val(&self, v: &Val) -> String {
        let rust = self.lang == Lang::Rust;
        match v {
            Val::Load(buf, ix) => {
                let i = ix.print();
                match buf {
                    Buf::In(k) => format!("{}[{i}]", self.inputs[*k]),
                    Buf::InInt(k) if rust => format!("({}[{i}] as f32)", self.inputs[*k]),
                    Buf::InInt(k) => format!("static_cast<float>({}[{i}])", self.inputs[*k]),
                    Buf::Out => format!("output[{i}]"),
                    Buf::W(w) => (self.weight)(*w, None, ix),
                    Buf::W2(w, row) => (self.weight)(*w, Some(row), ix),
                    Buf::Work => format!("work[{i}]"),
                    Buf::Local(name) => format!("{name}[{i}]"),
                    Buf::Acc(acc) if rust => format!("{}[{i}]", acc.name),
                    Buf::Acc(acc) => format!("output[{}]", acc.at(ix).print()),
                }
            }
            Val::Var(name) => name.clone(),
            Val::Const(c) => self.lang.constant(*c),
            Val::Add(a, b) => format!("({} + {})", self.val(a), self.val(b)),
            Val::Sub(a, b) => format!("({} - {})", self.val(a), self.val(b)),
            Val::Mul(a, b) => format!("({} * {})", self.val(a), self.val(b)),
            Val::Div(a, b) => format!("({} / {})", self.val(a), self.val(b)),
            Val::Max(a_val, b_val) | Val::Min(a_val, b_val) => {
                let (a, b) = (self.val(a_val), self.val(b_val));
                let op = if matches!(v, Val::Max(..)) { ">" } else { "<" };
                if rust {
                    let (ta, tb) = (self.top(a_val), self.top(b_val));
                    format!("(if {b} {op} {a} {{ {tb} }} else {{ {ta} }})")
                } else {
                    format!("({b} {op} {a} ? {b} : {a})")
                }
            }
            Val::Apply(expr, var) => format!("({})", expr.print_value(var, self.lang)),
            Val::Trunc(v) if rust => format!(
                "(if {v} < 8388608.0 && {v} > -8388608.0 {{ {v} as i32 as f32 }} else {{ {v} }})"
            ),
            Val::Trunc(v) => format!(
                "({v} < 8388608.0f && {v} > -8388608.0f ? static_cast<float>(static_cast<long>({v})) : {v})"
            ),
        }
    }
}
