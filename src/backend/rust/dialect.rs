//! How Rust spells the loop language (see [`crate::backend::printer`]).

use crate::backend::printer::{Dialect, Operand};
use crate::ir::MathFn;
use crate::lower::loops::Unroll;

pub struct Rust;

/// An f32 literal that reads back to exactly `v` (NaN, infinities, -0.0 and subnormals
/// included).
pub fn float(v: f32) -> String {
    if v.is_nan() {
        "f32::NAN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "f32::INFINITY"
        } else {
            "f32::NEG_INFINITY"
        }
        .into()
    } else {
        let s = format!("{v:?}");
        if s.contains(['.', 'e']) {
            s
        } else {
            format!("{s}.0")
        }
    }
}

impl Dialect for Rust {
    fn float(&self, v: f32) -> String {
        float(v)
    }

    /// Names the well-known constants (clippy asks for it).
    fn constant(&self, v: f32) -> String {
        use std::f32::consts;
        let named = [
            (consts::SQRT_2, "SQRT_2"),
            (consts::FRAC_1_SQRT_2, "FRAC_1_SQRT_2"),
            (consts::PI, "PI"),
            (consts::E, "E"),
            (consts::LN_2, "LN_2"),
            (consts::LN_10, "LN_10"),
            (consts::FRAC_2_SQRT_PI, "FRAC_2_SQRT_PI"),
        ];
        match named.iter().find(|(c, _)| *c == v) {
            Some((_, name)) => format!("core::f32::consts::{name}"),
            None => float(v),
        }
    }

    fn math_call(&self, f: MathFn, arg: &str) -> String {
        format!("math::{}({arg})", f.rust_name())
    }

    fn conditional(&self, cond: &str, then: &Operand, otherwise: &Operand) -> String {
        format!(
            "(if {cond} {{ {} }} else {{ {} }})",
            then.whole, otherwise.whole
        )
    }

    fn clamp(&self, a: &str, lo: &str, hi: &str) -> String {
        format!("{a}.clamp({lo}, {hi})")
    }

    fn int_to_float(&self, element: &str, whole: bool) -> String {
        if whole {
            format!("{element} as f32")
        } else {
            format!("({element} as f32)")
        }
    }

    fn trunc(&self, v: &str) -> String {
        format!("(if {v} < 8388608.0 && {v} > -8388608.0 {{ {v} as i32 as f32 }} else {{ {v} }})")
    }

    fn in_range(&self, ix: &str, simple: bool, lo: usize, hi: usize) -> String {
        if simple {
            format!("({lo}..{hi}).contains(&{ix})")
        } else {
            format!("({lo}..{hi}).contains(&({ix}))")
        }
    }

    // Function-call forms: the loop variable's type is not yet known.
    fn clamp_index(&self, ix: &str, below: usize, max: usize) -> String {
        if below > 0 {
            format!("usize::min(usize::saturating_sub({ix}, {below}), {max})")
        } else {
            format!("usize::min({ix}, {max})")
        }
    }

    fn int_index(&self, element: &str, max: usize) -> String {
        format!("{element}.clamp(0, {max}) as usize")
    }

    fn float_index(&self, element: &str, max: usize) -> String {
        // `as usize` truncates toward zero and saturates (NaN gives 0).
        format!("usize::min({element} as usize, {max})")
    }

    fn table_index(&self, entry: &str) -> String {
        format!("{entry} as usize")
    }

    fn for_(&self, var: &str, count: usize) -> String {
        format!("for {var} in 0..{count} {{")
    }

    fn unroll(&self, _: Unroll, _: usize) -> Option<String> {
        None
    }

    fn let_(&self, name: &str, mutable: bool, value: &str) -> String {
        let m = if mutable { "mut " } else { "" };
        format!("let {m}{name}: f32 = {value};")
    }

    fn let_index(&self, name: &str, typed: bool, value: &str) -> String {
        if typed {
            format!("let {name}: usize = {value};")
        } else {
            format!("let {name} = {value};")
        }
    }

    fn local_array(&self, name: &str, len: usize) -> String {
        // Zeros, though every element is stored before it is read: Rust asks for a value.
        format!("let mut {name} = [0.0f32; {len}];")
    }

    fn local_int_array(&self, name: &str, len: usize) -> String {
        format!("let mut {name} = [0i32; {len}];")
    }

    fn if_(&self, cond: &str) -> String {
        format!("if {cond} {{")
    }

    fn widen(&self, element: &str) -> String {
        format!("i32::from({element})")
    }

    fn narrow(&self, value: &str) -> String {
        // A literal is typed, not cast (clippy's unnecessary_cast).
        match value.parse::<i8>() {
            Ok(_) => format!("{value}i8"),
            Err(_) => format!("{value} as i8"),
        }
    }

    fn let_int(&self, name: &str, mutable: bool, value: &str) -> String {
        let m = if mutable { "mut " } else { "" };
        format!("let {m}{name}: i32 = {value};")
    }

    fn int8_call(&self, name: &str, args: &str) -> String {
        format!("math::{name}({args})")
    }

    fn dot(&self, _: [&str; 2], [a, b]: [&str; 2], len: usize) -> String {
        format!("(0..{len}).map(|lane| i32::from({a}) * i32::from({b})).sum::<i32>()")
    }

    fn dots(
        &self,
        _: (&str, &str),
        (x, rows): (&str, &[String; 4]),
        sums: &[String; 4],
        (runs, len, _): (usize, usize, usize),
    ) -> Vec<String> {
        let quads = len / 4;
        (sums.iter().zip(rows))
            .map(|(sum, w)| {
                format!(
                    "{sum} += (0..{runs}).map(|run| (0..{quads}).map(|quad| (0..4).map(|lane| \
                     i32::from({x}) * i32::from({w})).sum::<i32>()).sum::<i32>()).sum::<i32>();"
                )
            })
            .collect()
    }

    fn int(&self, v: i32) -> String {
        if v == i32::MIN {
            "i32::MIN".into()
        } else {
            v.to_string()
        }
    }

    fn int_clamp(&self, v: &str, lo: i32, hi: i32) -> String {
        format!("{v}.clamp({lo}, {hi})")
    }
}
