//! How C++ spells the loop language (see [`crate::backend::printer`]).

use crate::backend::printer::{Dialect, Operand};
use crate::ir::MathFn;
use crate::lower::loops::Unroll;

pub struct Cpp;

/// An f32 literal that reads back to exactly `v` (NaN, infinities, -0.0 and subnormals
/// included; the non-finite ones are `<cmath>` macros).
pub fn float(v: f32) -> String {
    if v.is_nan() {
        "NAN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "INFINITY" } else { "-INFINITY" }.into()
    } else if v != 0.0 && v.abs() < f32::MIN_POSITIVE {
        // Subnormal: hex float is exact and draws no underflow warning.
        hex_float(v)
    } else {
        let s = format!("{v:?}");
        if s.contains(['.', 'e']) {
            format!("{s}f")
        } else {
            format!("{s}.0f")
        }
    }
}

/// `v` as a C hex float literal (`0x1.8p-140f`).
pub fn hex_float(v: f32) -> String {
    if !v.is_finite() {
        return float(v);
    }
    let bits = v.to_bits();
    let sign = if bits >> 31 == 1 { "-" } else { "" };
    let mantissa = bits & 0x7f_ffff;
    let exponent = (bits >> 23) & 0xff;
    match (exponent, mantissa) {
        (0, 0) => format!("{sign}0x0p+0f"),
        // Subnormal: value = mantissa * 2^-149.
        (0, m) => format!("{sign}0x{m:x}p-149f"),
        (e, 0) => format!("{sign}0x1p{}f", e as i32 - 127),
        (e, m) => {
            let digits = format!("{:06x}", m << 1);
            format!(
                "{sign}0x1.{}p{}f",
                digits.trim_end_matches('0'),
                e as i32 - 127
            )
        }
    }
}

/// GCC's (and Clang's) loop pragma for `unroll` over `count` iterations: C's too.
pub fn unroll_pragma(unroll: Unroll, count: usize) -> Option<String> {
    match unroll {
        Unroll::Compiler => None,
        Unroll::Never => Some("#pragma GCC unroll 1".into()),
        Unroll::Fully => Some(format!("#pragma GCC unroll {count}")),
    }
}

impl Dialect for Cpp {
    fn float(&self, v: f32) -> String {
        float(v)
    }

    fn math_call(&self, f: MathFn, arg: &str) -> String {
        format!("detail::{}({arg})", f.cpp_name())
    }

    fn conditional(&self, cond: &str, then: &Operand, otherwise: &Operand) -> String {
        format!("({cond} ? {} : {})", then.nested, otherwise.nested)
    }

    fn clamp(&self, a: &str, lo: &str, hi: &str) -> String {
        format!("({a} < {lo} ? {lo} : ({hi} < {a} ? {hi} : {a}))")
    }

    fn int_to_float(&self, element: &str, _whole: bool) -> String {
        format!("static_cast<float>({element})")
    }

    fn trunc(&self, v: &str) -> String {
        format!(
            "({v} < 8388608.0f && {v} > -8388608.0f ? static_cast<float>(static_cast<long>({v})) : {v})"
        )
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
        format!("static_cast<std::size_t>({v} < 0 ? 0 : ({v} > {max} ? {max} : {v}))")
    }

    fn float_index(&self, element: &str, max: usize) -> String {
        let v = element;
        format!(
            "static_cast<std::size_t>(!({v} >= 1.0f) ? 0.0f : ({v} >= {max}.0f ? {max}.0f : {v}))"
        )
    }

    fn table_index(&self, entry: &str) -> String {
        format!("static_cast<std::size_t>({entry})")
    }

    fn for_(&self, var: &str, count: usize) -> String {
        format!("for (std::size_t {var} = 0; {var} < {count}; ++{var}) {{")
    }

    fn unroll(&self, unroll: Unroll, count: usize) -> Option<String> {
        unroll_pragma(unroll, count)
    }

    fn let_(&self, name: &str, mutable: bool, value: &str) -> String {
        let c = if mutable { "" } else { "const " };
        format!("{c}float {name} = {value};")
    }

    fn let_index(&self, name: &str, _typed: bool, value: &str) -> String {
        format!("const std::size_t {name} = {value};")
    }

    fn local_array(&self, name: &str, len: usize) -> String {
        // Uninitialised: every element is stored before it is read.
        format!("float {name}[{len}];")
    }

    fn local_int_array(&self, name: &str, len: usize) -> String {
        format!("std::int32_t {name}[{len}];")
    }

    fn if_(&self, cond: &str) -> String {
        format!("if ({cond}) {{")
    }

    fn widen(&self, element: &str) -> String {
        element.to_string()
    }

    fn narrow(&self, value: &str) -> String {
        format!("static_cast<std::int8_t>({value})")
    }

    fn let_int(&self, name: &str, mutable: bool, value: &str) -> String {
        let c = if mutable { "" } else { "const " };
        format!("{c}std::int32_t {name} = {value};")
    }

    fn int8_call(&self, name: &str, args: &str) -> String {
        format!("detail::{name}({args})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_round_trip() {
        for v in [0.1f32, -0.0, 1.0, 1e-45, 3.4e38, 1e7, 123456.79, -2.5e-12] {
            let r = crate::backend::rust::float_literal(v);
            assert_eq!(r.parse::<f32>().unwrap().to_bits(), v.to_bits(), "{r}");
        }
        assert_eq!(float(1.0), "1.0f");
        assert_eq!(float(1e-45), "0x1p-149f");
        assert_eq!(hex_float(1.0), "0x1p0f");
        assert_eq!(hex_float(-0.1), "-0x1.99999ap-4f");
        assert_eq!(hex_float(-0.0), "-0x0p+0f");
        assert_eq!(hex_float(3.0), "0x1.8p1f");
        assert_eq!(
            crate::backend::rust::float_literal(f32::NEG_INFINITY),
            "f32::NEG_INFINITY"
        );
    }
}
