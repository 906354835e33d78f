//! How C99 spells the loop language (see [`crate::backend::printer`]): the C++ dialect's
//! constructs with C's casts and types, and names prefixed with the model's name.

use crate::backend::printer::{Dialect, Operand};
use crate::ir::MathFn;
use crate::lower::loops::Unroll;

/// C99, for the model whose identifiers start with `prefix` and an underscore.
pub struct C<'a> {
    pub prefix: &'a str,
}

/// An f32 literal that reads back to exactly `v`: C's literals are C++'s (the non-finite
/// ones are `<math.h>`'s `NAN` and `INFINITY`).
pub fn float(v: f32) -> String {
    crate::backend::cpp::float_literal(v)
}

impl Dialect for C<'_> {
    fn float(&self, v: f32) -> String {
        float(v)
    }

    fn math_call(&self, f: MathFn, arg: &str) -> String {
        format!("{}_{}({arg})", self.prefix, f.cpp_name())
    }

    fn conditional(&self, cond: &str, then: &Operand, otherwise: &Operand) -> String {
        format!("({cond} ? {} : {})", then.nested, otherwise.nested)
    }

    fn clamp(&self, a: &str, lo: &str, hi: &str) -> String {
        format!("({a} < {lo} ? {lo} : ({hi} < {a} ? {hi} : {a}))")
    }

    fn int_to_float(&self, element: &str, whole: bool) -> String {
        if whole {
            format!("(float){element}")
        } else {
            format!("((float){element})")
        }
    }

    fn trunc(&self, v: &str) -> String {
        format!("({v} < 8388608.0f && {v} > -8388608.0f ? (float)(long)({v}) : {v})")
    }

    fn in_range(&self, ix: &str, _simple: bool, lo: usize, hi: usize) -> String {
        format!("{lo} <= {ix} && {ix} < {hi}")
    }

    fn clamp_index(&self, ix: &str, below: usize, max: usize) -> String {
        if below > 0 {
            format!("({ix} < {below} ? 0 : ({ix} - {below} < {max} ? {ix} - {below} : {max}))")
        } else {
            format!("({ix} < {max} ? {ix} : {max})")
        }
    }

    fn int_index(&self, element: &str, max: usize) -> String {
        let v = element;
        format!("(size_t)({v} < 0 ? 0 : ({v} > {max} ? {max} : {v}))")
    }

    fn float_index(&self, element: &str, max: usize) -> String {
        let v = element;
        format!("(size_t)(!({v} >= 1.0f) ? 0.0f : ({v} >= {max}.0f ? {max}.0f : {v}))")
    }

    fn table_index(&self, entry: &str) -> String {
        format!("(size_t)({entry})")
    }

    fn for_(&self, var: &str, count: usize) -> String {
        format!("for (size_t {var} = 0; {var} < {count}; ++{var}) {{")
    }

    fn unroll(&self, unroll: Unroll, count: usize) -> Option<String> {
        crate::backend::cpp::unroll_pragma(unroll, count)
    }

    fn let_(&self, name: &str, mutable: bool, value: &str) -> String {
        let c = if mutable { "" } else { "const " };
        format!("{c}float {name} = {value};")
    }

    fn let_index(&self, name: &str, _typed: bool, value: &str) -> String {
        format!("const size_t {name} = {value};")
    }

    fn local_array(&self, name: &str, len: usize) -> String {
        // A constant length (no VLA), uninitialised: every element is stored before it
        // is read.
        format!("float {name}[{len}];")
    }

    fn local_int_array(&self, name: &str, len: usize) -> String {
        format!("int32_t {name}[{len}];")
    }

    fn if_(&self, cond: &str) -> String {
        format!("if ({cond}) {{")
    }

    fn widen(&self, element: &str) -> String {
        element.to_string()
    }

    fn narrow(&self, value: &str) -> String {
        format!("(int8_t)({value})")
    }

    fn let_int(&self, name: &str, mutable: bool, value: &str) -> String {
        let c = if mutable { "" } else { "const " };
        format!("{c}int32_t {name} = {value};")
    }

    fn int8_call(&self, name: &str, args: &str) -> String {
        format!("{}_{name}({args})", self.prefix)
    }
}
