//! The one walker over the loop language ([`crate::lower::loops`]) and the elementwise
//! formulas ([`crate::ir::expr`]), shared by every backend. Lowering has decided every
//! operation and its order; the walker only prints them, asking the language's [`Dialect`]
//! how each construct is spelled. A new language is a new dialect.

use crate::ir::expr::Expr;
use crate::ir::MathFn;
use crate::lower::loops::{Array, Buf, Cond, IVal, Index, Ix, Place, Stmt, Unroll, Val, WriteOp};
use crate::lower::WeightId;

/// A value printed two ways: as an operand (parenthesised where it is compound) and whole,
/// as a right-hand side.
pub struct Operand {
    pub nested: String,
    pub whole: String,
}

/// How one language spells what the loop language says. Every method returns code for one
/// construct; the walker does the nesting, indenting and everything the languages share
/// (C-like arithmetic, indexing, assignment).
pub trait Dialect {
    /// An f32 literal that reads back to exactly `v`.
    fn float(&self, v: f32) -> String;
    /// A constant in a formula (a language may name the well-known ones).
    fn constant(&self, v: f32) -> String {
        self.float(v)
    }
    /// A call of a generated math function.
    fn math_call(&self, f: MathFn, arg: &str) -> String;
    /// `cond ? then : otherwise` as an operand.
    fn conditional(&self, cond: &str, then: &Operand, otherwise: &Operand) -> String;
    /// `a` (an operand) clamped to `[lo, hi]`, NaN staying NaN.
    fn clamp(&self, a: &str, lo: &str, hi: &str) -> String;
    /// An `i32` element read as f32; `whole` when it is a whole right-hand side.
    fn int_to_float(&self, element: &str, whole: bool) -> String;
    /// Variable `v` truncated toward zero (see [`Val::Trunc`]).
    fn trunc(&self, v: &str) -> String;
    /// `lo <= ix < hi` with `lo > 0`; `simple` when `ix` is a bare variable.
    fn in_range(&self, ix: &str, simple: bool, lo: usize, hi: usize) -> String;
    /// `ix - below` clamped to `0..=max` (`ix - below` may be negative).
    fn clamp_index(&self, ix: &str, below: usize, max: usize) -> String;
    /// An `i32` element clamped to `0..=max`, as an index.
    fn int_index(&self, element: &str, max: usize) -> String;
    /// An f32 element truncated toward zero and clamped to `0..=max` (NaN gives 0).
    fn float_index(&self, element: &str, max: usize) -> String;
    /// A whole-number f32 (an index table entry) as an index.
    fn table_index(&self, entry: &str) -> String;
    /// The opening line of `for var in 0..count`.
    fn for_(&self, var: &str, count: usize) -> String;
    /// The line before a loop asking the compiler to unroll it as `unroll` says (a loop of
    /// `count` iterations), if the language has a way to ask.
    fn unroll(&self, unroll: Unroll, count: usize) -> Option<String>;
    /// A new f32 variable.
    fn let_(&self, name: &str, mutable: bool, value: &str) -> String;
    /// A new index variable; `typed` when `value` is a literal whose type must be given.
    fn let_index(&self, name: &str, typed: bool, value: &str) -> String;
    /// A local f32 array of `len` values.
    fn local_array(&self, name: &str, len: usize) -> String;
    /// The opening line of `if cond`.
    fn if_(&self, cond: &str) -> String;

    /// An int8 element widened to `i32`.
    fn widen(&self, element: &str) -> String;
    /// An `i32` value (within int8's range) as an int8 element's new value.
    fn narrow(&self, value: &str) -> String;
    /// A new `i32` variable.
    fn let_int(&self, name: &str, mutable: bool, value: &str) -> String;
    /// A call of an int8 runtime function (`requantize_i32`, `quantize_i8`).
    fn int8_call(&self, name: &str, args: &str) -> String;
    /// `sum a[k] * b[k]` over `len` int8 values from elements `at`, or as a formula of the
    /// elements at `lane` (`a_lane`, `b_lane`: the `k`-th). C and C++ call the runtime's
    /// `dot_i8` on pointers to the elements.
    fn dot(&self, [a, b]: [&str; 2], _lane: [&str; 2], len: usize) -> String {
        self.int8_call("dot_i8", &format!("&{a}, &{b}, {len}"))
    }
    /// [`Stmt::Dots`] of `(rows, len, stride)`: a call of the runtime's `dot4_i8` on the
    /// elements `at` (x's first and the interleaved weights' first), or statements summing
    /// over `run < rows`, `quad < len / 4` and `lane < 4` the products of the elements
    /// `quads` (x's, and each weight row's, indexed by all three).
    fn dots(
        &self,
        (x, w): (&str, &str),
        _quads: (&str, &[String; 4]),
        sums: &[String; 4],
        (rows, len, stride): (usize, usize, usize),
    ) -> Vec<String> {
        let sums: Vec<String> = sums.iter().map(|s| format!("&{s}")).collect();
        let args = format!("&{x}, &{w}, {len}, {rows}, {stride}, {}", sums.join(", "));
        vec![format!("{};", self.int8_call("dot4_i8", &args))]
    }
    /// A local array of `len` `i32` values (each stored before it is read).
    fn local_int_array(&self, name: &str, len: usize) -> String;
    /// `v` (a variable) clamped to `[lo, hi]`.
    fn int_clamp(&self, v: &str, lo: i32, hi: i32) -> String {
        format!("({v} < {lo} ? {lo} : ({v} > {hi} ? {hi} : {v}))")
    }
    /// An `i32` literal.
    fn int(&self, v: i32) -> String {
        if v == i32::MIN {
            "(-2147483647 - 1)".into()
        } else {
            v.to_string()
        }
    }
}

/// Prints one kernel's statements.
pub struct Printer<'a> {
    pub dialect: &'a dyn Dialect,
    /// Names of the kernel's inputs (`input`, or `input0`, `input1`, ...).
    pub inputs: &'a [String],
    /// Reads weight array `id` at `[row][index]` (2-D) or `[index]` (1-D).
    pub weight: &'a dyn Fn(WeightId, Option<&Ix>, &Ix) -> String,
}

/// An index as C-like text: `a * 4 + b + 3`, `a - 1`.
pub fn index(ix: &Ix) -> String {
    let mut parts: Vec<String> = ix
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
    if parts.is_empty() {
        return ix.constant.max(0).to_string();
    }
    if ix.constant > 0 {
        parts.push(ix.constant.to_string());
    }
    let text = parts.join(" + ");
    if ix.constant < 0 {
        format!("{text} - {}", -ix.constant)
    } else {
        text
    }
}

/// `(text)` without its outer parentheses.
fn unwrap(text: String) -> String {
    text[1..text.len() - 1].to_string()
}

impl Printer<'_> {
    /// The statements as text, indented from `depth`.
    pub fn text(&self, stmts: &[Stmt], depth: usize) -> String {
        let mut out = String::new();
        self.print(stmts, depth, &mut out);
        out
    }

    fn print(&self, stmts: &[Stmt], depth: usize, out: &mut String) {
        // Every list printed is a scope already (a function, loop or block body).
        if let [Stmt::Block(inner)] = stmts {
            return self.print(inner, depth, out);
        }
        let d = self.dialect;
        let line = |out: &mut String, text: &str| {
            out.push_str(&"    ".repeat(depth));
            out.push_str(text);
            out.push('\n');
        };
        // `open`, the body one level deeper, then the closing brace.
        let scope = |out: &mut String, open: &str, body: &[Stmt]| {
            line(out, open);
            self.print(body, depth + 1, out);
            line(out, "}");
        };
        for s in stmts {
            match s {
                Stmt::For {
                    var,
                    count,
                    unroll,
                    body,
                } => {
                    if let Some(hint) = d.unroll(*unroll, *count) {
                        line(out, &hint);
                    }
                    scope(out, &d.for_(var, *count), body);
                }
                Stmt::Let {
                    name,
                    value,
                    mutable,
                } => line(out, &d.let_(name, *mutable, &self.whole(value))),
                Stmt::LetIndex { name, value } => line(out, &self.let_index(name, value)),
                Stmt::ILet {
                    name,
                    value,
                    mutable,
                } => line(out, &d.let_int(name, *mutable, &self.iwhole(value))),
                Stmt::IWrite { to, op, value } => {
                    let op = match op {
                        WriteOp::Set => "=",
                        WriteOp::Add => "+=",
                        WriteOp::Mul => "*=",
                        WriteOp::Div => "/=",
                    };
                    let value = match to {
                        Place::Out(_) => d.narrow(&self.ival(value)),
                        _ => self.iwhole(value),
                    };
                    line(out, &format!("{} {op} {value};", self.place(to)));
                }
                Stmt::Dots {
                    sums,
                    x,
                    w,
                    len,
                    rows,
                    stride,
                } => {
                    let at = |(buf, ix): &(Buf, Ix)| self.val(&Val::Load(buf.clone(), ix.clone()));
                    // Element `4 quad + lane` of x's run `run`, and of each weight row's.
                    let xi = (x.1.clone().plus("run", *stride))
                        .plus("quad", 4)
                        .plus("lane", 1);
                    let ws: [String; 4] = std::array::from_fn(|k| {
                        let wi = (w.1.clone().plus("run", 4 * len))
                            .plus("quad", 16)
                            .plus("lane", 1)
                            .offset(4 * k as isize);
                        at(&(w.0.clone(), wi))
                    });
                    let quads = (at(&(x.0.clone(), xi)), ws);
                    let shape = (*rows, *len, *stride);
                    for text in d.dots((&at(x), &at(w)), (&quads.0, &quads.1), sums, shape) {
                        line(out, &text);
                    }
                }
                Stmt::Write { to, op, value } => {
                    let op = match op {
                        WriteOp::Set => "=",
                        WriteOp::Add => "+=",
                        WriteOp::Mul => "*=",
                        WriteOp::Div => "/=",
                    };
                    let text = format!("{} {op} {};", self.place(to), self.whole(value));
                    line(out, &text);
                }
                Stmt::ILocal { array, len } => line(out, &d.local_int_array(&array.name, *len)),
                Stmt::Local { array, len } => line(out, &d.local_array(&array.name, *len)),
                Stmt::Block(body) => scope(out, "{", body),
                Stmt::If(cond, body) => scope(out, &d.if_(&self.cond(cond)), body),
                Stmt::IfInRange { ix, lo, hi, body } => {
                    // Guards nested with nothing else are one `if` (clippy's collapsible_if).
                    let mut conds = vec![self.range(ix, *lo, *hi)];
                    let mut body = body;
                    while let [Stmt::IfInRange {
                        ix,
                        lo,
                        hi,
                        body: inner,
                    }] = body.as_slice()
                    {
                        conds.push(self.range(ix, *lo, *hi));
                        body = inner;
                    }
                    scope(out, &d.if_(&conds.join(" && ")), body);
                }
            }
        }
    }

    /// Element `ix` of a local array.
    fn element(&self, array: &Array, ix: &Ix) -> String {
        format!("{}[{}]", array.name, index(ix))
    }

    fn place(&self, to: &Place) -> String {
        match to {
            Place::Out(ix) => format!("output[{}]", index(ix)),
            Place::Work(ix) => format!("work[{}]", index(ix)),
            Place::Var(name) => name.clone(),
            Place::Local(array, ix) => self.element(array, ix),
        }
    }

    fn let_index(&self, name: &str, value: &Index) -> String {
        let d = self.dialect;
        match value {
            Index::Clamped { ix, max } if ix.terms.is_empty() => {
                let value = ix.constant.clamp(0, *max as isize);
                d.let_index(name, true, &value.to_string())
            }
            Index::Clamped { ix, max } => {
                let i = index(&Ix {
                    terms: ix.terms.clone(),
                    constant: ix.constant.max(0),
                });
                let below = (-ix.constant.min(0)) as usize;
                d.let_index(name, false, &d.clamp_index(&i, below, *max))
            }
            Index::Lookup {
                input,
                ix,
                max,
                integer,
            } => {
                let element = format!("{}[{}]", self.inputs[*input], index(ix));
                let value = if *integer {
                    d.int_index(&element, *max)
                } else {
                    d.float_index(&element, *max)
                };
                d.let_index(name, false, &value)
            }
            Index::Table { table, ix } => {
                let entry = (self.weight)(*table, None, ix);
                d.let_index(name, false, &d.table_index(&entry))
            }
            Index::Reversed { var, last } => d.let_index(name, false, &format!("{last} - {var}")),
        }
    }

    /// `lo <= ix < hi`.
    fn range(&self, ix: &Ix, lo: usize, hi: usize) -> String {
        let i = index(ix);
        if lo == 0 {
            return format!("{i} < {hi}");
        }
        let simple = ix.terms.len() == 1 && ix.terms[0].1 == 1 && ix.constant == 0;
        self.dialect.in_range(&i, simple, lo, hi)
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
    fn whole(&self, v: &Val) -> String {
        match v {
            Val::Load(Buf::InInt(k), ix) => self.dialect.int_to_float(&self.input(*k, ix), true),
            Val::Load(..) | Val::Var(_) | Val::Const(_) => self.val(v),
            _ => unwrap(self.val(v)),
        }
    }

    fn input(&self, k: usize, ix: &Ix) -> String {
        format!("{}[{}]", self.inputs[k], index(ix))
    }

    /// A value as an operand.
    fn val(&self, v: &Val) -> String {
        let d = self.dialect;
        match v {
            Val::Load(buf, ix) => match buf {
                Buf::In(k) => self.input(*k, ix),
                Buf::InInt(k) => d.int_to_float(&self.input(*k, ix), false),
                Buf::Out => format!("output[{}]", index(ix)),
                Buf::W(w) => (self.weight)(*w, None, ix),
                Buf::W2(w, row) => (self.weight)(*w, Some(row), ix),
                Buf::Work => format!("work[{}]", index(ix)),
                Buf::Local(array) => self.element(array, ix),
            },
            Val::Var(name) => name.clone(),
            Val::Const(c) => d.constant(*c),
            Val::Add(a, b) => format!("({} + {})", self.val(a), self.val(b)),
            Val::Sub(a, b) => format!("({} - {})", self.val(a), self.val(b)),
            Val::Mul(a, b) => format!("({} * {})", self.val(a), self.val(b)),
            Val::Div(a, b) => format!("({} / {})", self.val(a), self.val(b)),
            Val::Max(a, b) | Val::Min(a, b) => {
                let op = if matches!(v, Val::Max(..)) { ">" } else { "<" };
                let operand = |v: &Val| Operand {
                    nested: self.val(v),
                    whole: self.whole(v),
                };
                let (a, b) = (operand(a), operand(b));
                d.conditional(&format!("{} {op} {}", b.nested, a.nested), &b, &a)
            }
            Val::Apply(expr, var) => format!("({})", self.formula(expr, var)),
            Val::Trunc(var) => d.trunc(var),
            Val::Int(i) => d.int_to_float(&self.ival(i), false),
        }
    }

    /// An integer value as a whole right-hand side.
    fn iwhole(&self, v: &IVal) -> String {
        match v {
            IVal::Add(..) | IVal::Sub(..) | IVal::Mul(..) | IVal::Max(..) => unwrap(self.ival(v)),
            _ => self.ival(v),
        }
    }

    /// An integer value as an operand.
    fn ival(&self, v: &IVal) -> String {
        let d = self.dialect;
        match v {
            IVal::Load(buf, ix) => d.widen(&self.val(&Val::Load(buf.clone(), ix.clone()))),
            IVal::LoadI32(buf, ix) => self.val(&Val::Load(buf.clone(), ix.clone())),
            IVal::Var(name) => name.clone(),
            IVal::Const(c) => d.int(*c),
            IVal::Add(a, b) => format!("({} + {})", self.ival(a), self.ival(b)),
            IVal::Sub(a, b) => format!("({} - {})", self.ival(a), self.ival(b)),
            IVal::Mul(a, b) => format!("({} * {})", self.ival(a), self.ival(b)),
            IVal::Clamp(a, lo, hi) => d.int_clamp(&self.ival(a), *lo, *hi),
            IVal::Max(a, b) => {
                let operand = |v: &IVal| Operand {
                    nested: self.ival(v),
                    whole: self.iwhole(v),
                };
                let (a, b) = (operand(a), operand(b));
                d.conditional(&format!("{} > {}", b.nested, a.nested), &b, &a)
            }
            IVal::Requant(parts) => {
                let args: Vec<String> = parts.iter().map(|p| self.iwhole(p)).collect();
                d.int8_call("requantize_i32", &args.join(", "))
            }
            IVal::Quantize(x, scale, zero) => {
                let args = format!("{}, {}, {}", self.whole(x), d.float(*scale), d.int(*zero));
                d.int8_call("quantize_i8", &args)
            }
            IVal::Dot(runs, len) => {
                let [(a, ia), (b, ib)] = &**runs;
                let at = |buf: &Buf, ix: &Ix, lane: bool| {
                    let ix = if lane {
                        ix.clone().plus("lane", 1)
                    } else {
                        ix.clone()
                    };
                    self.val(&Val::Load(buf.clone(), ix))
                };
                d.dot(
                    [&at(a, ia, false), &at(b, ib, false)],
                    [&at(a, ia, true), &at(b, ib, true)],
                    *len,
                )
            }
            IVal::RoundedDiv(sum, count) => {
                let half = format!("{count} / 2");
                let then = Operand {
                    nested: format!("({sum} + {half})"),
                    whole: format!("{sum} + {half}"),
                };
                let otherwise = Operand {
                    nested: format!("({sum} - {half})"),
                    whole: format!("{sum} - {half}"),
                };
                let numerator = d.conditional(&format!("{sum} > 0"), &then, &otherwise);
                format!("({numerator} / {count})")
            }
        }
    }

    /// A formula of variable `x` as a whole right-hand side.
    pub fn formula(&self, e: &Expr, x: &str) -> String {
        let text = self.expr(e, x);
        match e {
            Expr::X | Expr::Const(_) | Expr::Call(..) | Expr::Clamp(..) => text,
            _ => unwrap(text),
        }
    }

    /// A formula as an operand.
    fn expr(&self, e: &Expr, x: &str) -> String {
        let d = self.dialect;
        match e {
            Expr::X => x.to_string(),
            Expr::Const(v) => d.constant(*v),
            Expr::Add(a, b) => format!("({} + {})", self.expr(a, x), self.expr(b, x)),
            Expr::Sub(a, b) => format!("({} - {})", self.expr(a, x), self.expr(b, x)),
            Expr::Mul(a, b) => format!("({} * {})", self.expr(a, x), self.expr(b, x)),
            Expr::Div(a, b) => format!("({} / {})", self.expr(a, x), self.expr(b, x)),
            Expr::IfLess(parts) => {
                let [a, b, then, otherwise] = &**parts;
                // Formulas give their branches whole in every language.
                let branch = |e: &Expr| {
                    let whole = self.formula(e, x);
                    Operand {
                        nested: whole.clone(),
                        whole,
                    }
                };
                let cond = format!("{} < {}", self.expr(a, x), self.expr(b, x));
                d.conditional(&cond, &branch(then), &branch(otherwise))
            }
            Expr::Clamp(a, lo, hi) => d.clamp(&self.expr(a, x), &d.constant(*lo), &d.constant(*hi)),
            Expr::Call(f, a) => d.math_call(*f, &self.formula(a, x)),
        }
    }
}
