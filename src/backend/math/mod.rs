//! The math runtime that generated code carries with it.
//!
//! Generated Rust is `no_std`, so it has no `exp`, `tanh`, `sqrt`, ...: the generated file
//! contains its own versions of exactly the functions the model needs (plus what those
//! call). The generated C++ and C contain the same algorithms, operation for operation, so
//! that the three agree bit for bit when the C++ and C are built with `-ffp-contract=off`.
//!
//! The functions live as real code in `runtime.rs`, `runtime.hpp` and `runtime.h` (C99,
//! the C++ file's text without C++: union bit casts, `static inline`, names prefixed per
//! model since C has no namespaces), each between a `// @fn NAME` and a `// @end` line;
//! [`rust_source`], [`cpp_source`] and [`c_source`] copy those sections. `runtime.rs` is
//! also compiled into this crate's tests, which check every function against an f64
//! reference and the C++ and C versions (built with g++ and gcc) against the Rust one.
//! `scripts/sweep_math.sh` checks all 2^32 inputs (the C++ version).
//!
//! All functions are pure f32 (no f64: Cortex-M4F emulates it), branch-light (selects, no
//! tables; the loops over arrays vectorise), and follow IEEE for special values: NaN in
//! gives the same NaN out, overflow gives inf, gradual underflow (exp rounds once),
//! `log(0) = -inf`, `log(-1) = NaN`, `tanh` and `erf` saturate at +-1, `-0` stays `-0`
//! where IEEE says so. Max error against an f64 reference over all 2^32 inputs:
//!
//! | function | ulp   | function | ulp   | function | ulp   |
//! |----------|-------|----------|-------|----------|-------|
//! | exp      | 0.868 | log1p    | 0.840 | sqrt     | 0.5 (correctly rounded) |
//! | expm1    | 0.974 | tanh     | 1.422 | sigmoid  | 1.967 |
//! | log      | 0.840 | erf      | 1.314 | softplus | 1.620 |
//!
//! What the generated source needs around these functions: Rust, the module-level
//! `#![allow(clippy::excessive_precision, clippy::approx_constant, clippy::unreadable_literal)]`
//! (the code uses nothing newer than Rust 1.43); C++, `<cstdint>` and `<cmath>` included
//! before them, and a compiler with `__builtin_bit_cast` (GCC 11, Clang 9, MSVC 19.28 or
//! later). The names they define are [`MathFn::rust_name`] / [`MathFn::cpp_name`] and, in
//! C++ only, [`CPP_HELPER_NAMES`]; the Namer must keep model identifiers clear of them.
//! g++ vectorises loops over these functions only with `-fno-trapping-math` (and
//! `-fno-math-errno` for sqrt); neither flag changes any result.

use std::collections::BTreeSet;

#[cfg(test)]
#[path = "runtime.rs"]
mod runtime;

pub use crate::ir::MathFn;

impl MathFn {
    /// The marker name of the function's section in `runtime.rs` / `runtime.hpp`.
    fn key(self) -> &'static str {
        match self {
            MathFn::Exp => "exp",
            MathFn::Expm1 => "expm1",
            MathFn::Log => "log",
            MathFn::Log1p => "log1p",
            MathFn::Tanh => "tanh",
            MathFn::Erf => "erf",
            MathFn::Sqrt => "sqrt",
            MathFn::Sigmoid => "sigmoid",
            MathFn::Softplus => "softplus",
        }
    }

    /// The name the generated Rust code calls: `fn NAME(x: f32) -> f32`.
    pub fn rust_name(self) -> &'static str {
        match self {
            MathFn::Exp => "exp_f32",
            MathFn::Expm1 => "expm1_f32",
            MathFn::Log => "log_f32",
            MathFn::Log1p => "log1p_f32",
            MathFn::Tanh => "tanh_f32",
            MathFn::Erf => "erf_f32",
            MathFn::Sqrt => "sqrt_f32",
            MathFn::Sigmoid => "sigmoid_f32",
            MathFn::Softplus => "softplus_f32",
        }
    }

    /// The name the generated C++ code calls: `float NAME(float x) noexcept`.
    pub fn cpp_name(self) -> &'static str {
        self.rust_name()
    }

    /// The functions this one calls.
    pub fn deps(self) -> &'static [MathFn] {
        match self {
            MathFn::Tanh => &[MathFn::Expm1],
            MathFn::Erf | MathFn::Sigmoid => &[MathFn::Exp],
            MathFn::Softplus => &[MathFn::Exp, MathFn::Log1p],
            MathFn::Exp | MathFn::Expm1 | MathFn::Log | MathFn::Log1p | MathFn::Sqrt => &[],
        }
    }
}

/// The integer functions of a quantized model (`requantize_i32`, `quantize_i8`; see
/// [`crate::ir::int8`]), in Rust.
pub fn int8_rust_source() -> String {
    section(RUST_RUNTIME, "int8")
}

/// [`int8_rust_source`] in C++ (for namespace level, after `<cstdint>`).
pub fn int8_cpp_source() -> String {
    section(CPP_RUNTIME, "int8")
}

/// [`int8_rust_source`] in C, prefixed as [`c_source`] prefixes.
pub fn int8_c_source(prefix: &str) -> String {
    section(C_RUNTIME, "int8").replace("k2s_", &format!("{prefix}_"))
}

/// Where the int8 runtime's `dot_i8` can use the Cortex-M DSP extension: its intrinsics.
pub const DSP_INCLUDE: &str =
    "#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP\n#include <arm_acle.h>\n#endif\n";

/// The names the int8 functions define (kept clear of model identifiers).
pub const INT8_NAMES: [&str; 5] = [
    "requantize_i32",
    "quantize_i8",
    "dot_i8",
    "dot4_i8",
    "sxtb16_ror8",
];

/// Names that [`cpp_source`] defines besides the functions' own (the bit-cast helpers).
pub const CPP_HELPER_NAMES: [&str; 2] = ["f32_to_bits", "f32_from_bits"];

const RUST_RUNTIME: &str = include_str!("runtime.rs");
const CPP_RUNTIME: &str = include_str!("runtime.hpp");
const C_RUNTIME: &str = include_str!("runtime.h");

/// The lines between `// @fn KEY` and the next `// @end` of `src`, each ending in `\n`.
fn section(src: &str, key: &str) -> String {
    let open = format!("// @fn {key}");
    let mut lines = src.lines().map(|l| l.strip_suffix('\r').unwrap_or(l));
    lines
        .by_ref()
        .find(|l| *l == open)
        .unwrap_or_else(|| panic!("math runtime: no `{open}` section"));
    let mut out = String::new();
    for line in lines {
        if line == "// @end" {
            return out;
        }
        out.push_str(line);
        out.push('\n');
    }
    panic!("math runtime: section `{open}` has no `// @end`")
}

/// `needed` plus everything it calls, in emission order.
fn closure(needed: &BTreeSet<MathFn>) -> BTreeSet<MathFn> {
    let mut all = needed.clone();
    let mut todo: Vec<MathFn> = needed.iter().copied().collect();
    while let Some(f) = todo.pop() {
        for &d in f.deps() {
            if all.insert(d) {
                todo.push(d);
            }
        }
    }
    all
}

fn join(sections: impl Iterator<Item = String>) -> String {
    sections.collect::<Vec<_>>().join("\n")
}

/// Rust source of exactly the needed functions plus their dependencies, in a fixed order:
/// private `#[inline] fn NAME(x: f32) -> f32` items for module level. Empty if nothing
/// is needed.
pub fn rust_source(needed: &BTreeSet<MathFn>) -> String {
    join(
        closure(needed)
            .into_iter()
            .map(|f| section(RUST_RUNTIME, f.key())),
    )
}

/// C++ source of exactly the needed functions plus their dependencies and the bit-cast
/// helpers, in a fixed order: `inline float NAME(float x) noexcept` definitions for
/// namespace level, after `#include <cstdint>` and `<cmath>`. Empty if nothing is needed.
pub fn cpp_source(needed: &BTreeSet<MathFn>) -> String {
    let all = closure(needed);
    if all.is_empty() {
        return String::new();
    }
    let helpers = std::iter::once(section(CPP_RUNTIME, "bits"));
    join(helpers.chain(all.into_iter().map(|f| section(CPP_RUNTIME, f.key()))))
}

/// C source of exactly the needed functions plus their dependencies and the bit-cast
/// helpers, in [`cpp_source`]'s order: `static inline float PREFIX_NAME(float x)`
/// definitions (`PREFIX_exp_f32`, `PREFIX_f32_to_bits`, ...), after `#include <stdint.h>`
/// and `<math.h>`. Empty if nothing is needed.
pub fn c_source(needed: &BTreeSet<MathFn>, prefix: &str) -> String {
    let all = closure(needed);
    if all.is_empty() {
        return String::new();
    }
    let helpers = std::iter::once(section(C_RUNTIME, "bits"));
    let text = join(helpers.chain(all.into_iter().map(|f| section(C_RUNTIME, f.key()))));
    text.replace("k2s_", &format!("{prefix}_"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;
    use std::path::Path;
    use std::process::Command;

    /// Max error in ulp allowed per function, against an f64 reference. The comment gives
    /// the maximum measured over all 2^32 inputs by `scripts/sweep_math.sh`.
    const BOUNDS: [(MathFn, f64); 9] = [
        (MathFn::Exp, 1.0),      // 0.868
        (MathFn::Expm1, 1.0),    // 0.974
        (MathFn::Log, 1.0),      // 0.840
        (MathFn::Log1p, 1.0),    // 0.840
        (MathFn::Tanh, 1.5),     // 1.422
        (MathFn::Erf, 1.5),      // 1.314
        (MathFn::Sqrt, 0.5),     // 0.5: correctly rounded
        (MathFn::Sigmoid, 2.0),  // 1.967
        (MathFn::Softplus, 2.0), // 1.620
    ];

    fn bound(f: MathFn) -> f64 {
        BOUNDS.iter().find(|(g, _)| *g == f).unwrap().1
    }

    fn set(fs: &[MathFn]) -> BTreeSet<MathFn> {
        fs.iter().copied().collect()
    }

    fn eval(f: MathFn, x: f32) -> f32 {
        runtime::eval(f, x)
    }

    /// erf in f64: erf(a) = 2/sqrt(pi) e^(-a^2) sum_n (2a^2)^n a / (1 3 5 ... (2n+1)),
    /// a series of positive terms (no cancellation) that converges for every a; erf(a)
    /// is 1 in f64 from a = 6 on.
    fn erf_ref(x: f64) -> f64 {
        let a = x.abs();
        if a.is_nan() {
            return x;
        }
        if a >= 6.0 {
            return 1f64.copysign(x);
        }
        let a2 = a * a;
        let (mut term, mut sum, mut n) = (a, a, 0.0);
        while term > sum * 1e-18 {
            n += 1.0;
            term *= 2.0 * a2 / (2.0 * n + 1.0);
            sum += term;
        }
        (2.0 / std::f64::consts::PI.sqrt() * (-a2).exp() * sum).copysign(x)
    }

    fn reference(f: MathFn, x: f32) -> f64 {
        let x = f64::from(x);
        match f {
            MathFn::Exp => x.exp(),
            MathFn::Expm1 => x.exp_m1(),
            MathFn::Log => x.ln(),
            MathFn::Log1p => x.ln_1p(),
            MathFn::Tanh => x.tanh(),
            MathFn::Erf => erf_ref(x),
            MathFn::Sqrt => x.sqrt(),
            MathFn::Sigmoid if x >= 0.0 => 1.0 / (1.0 + (-x).exp()),
            MathFn::Sigmoid => x.exp() / (1.0 + x.exp()),
            MathFn::Softplus => x.max(0.0) + (-x.abs()).exp().ln_1p(),
        }
    }

    /// |got - want| in units of the f32 ulp at `want` (2^-149 below 2^-126; inf counts as
    /// 2^128). NaN must meet NaN.
    fn ulp_err(got: f32, want: f64) -> f64 {
        if want.is_nan() || got.is_nan() {
            return if want.is_nan() && got.is_nan() {
                0.0
            } else {
                f64::INFINITY
            };
        }
        let top = 2f64.powi(128);
        let g = if got.is_infinite() {
            top.copysign(f64::from(got))
        } else {
            f64::from(got)
        };
        let w = want.clamp(-top, top);
        if g == w {
            return 0.0;
        }
        let e = (((w.abs().to_bits() >> 52) as i32) - 1023).clamp(-126, 127);
        (g - w).abs() / 2f64.powi(e - 23)
    }

    fn specials() -> Vec<f32> {
        #[rustfmt::skip]
        let base = [
            0.0f32, 1.0, 0.5, 2.0, 4.0, 10.0, 1e-30, 1e-10, 1e-5, 0.1, 0.25541282, 0.54930615,
            std::f32::consts::LN_2, 0.9999, 1.0001, 2.5, 3.92, 9.0, 17.0, 27.0, 88.0, 88.72283, 88.72284,
            88.8, 87.33655, 103.97208, 104.0, 1e30, f32::MIN_POSITIVE, f32::MAX,
            f32::from_bits(1), f32::INFINITY, f32::NAN,
        ];
        let mut v = Vec::new();
        for x in base {
            for x in [x, -x] {
                for d in [-2i32, -1, 0, 1, 2] {
                    v.push(f32::from_bits(x.to_bits().wrapping_add_signed(d)));
                }
            }
        }
        v
    }

    /// Every 2^11-th bit pattern (2^14-th in debug builds) with varying low bits, a dense
    /// grid on [-20, 20], and special values with their neighbours.
    fn samples() -> Vec<f32> {
        let shift = if cfg!(debug_assertions) { 14 } else { 11 };
        let mut v: Vec<f32> = (0..1u64 << (32 - shift))
            .map(|i| {
                let jitter =
                    (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as u32 & ((1 << shift) - 1);
                f32::from_bits((i << shift) as u32 | jitter)
            })
            .collect();
        let m = if cfg!(debug_assertions) {
            20_000
        } else {
            200_000
        };
        v.extend((0..=m).map(|i| -20.0 + 40.0 * i as f32 / m as f32));
        v.extend(specials());
        v
    }

    #[test]
    fn erf_reference_is_right() {
        let known = [
            (1e-10, 1.1283791670955126e-10),
            (0.5, 0.5204998778130465),
            (1.0, 0.8427007929497149),
            (2.0, 0.9953222650189527),
            (3.0, 0.9999779095030014),
            (-1.5, -0.9661051464753108),
        ];
        for (x, want) in known {
            let got = erf_ref(x);
            assert!(
                ((got - want) / want).abs() < 1e-14,
                "erf_ref({x}) = {got}, want {want}"
            );
        }
        // 1 - erf(4) = erfc(4) = 1.541725790028002e-8
        assert!(((1.0 - erf_ref(4.0)) / 1.541725790028002e-8 - 1.0).abs() < 1e-6);
    }

    #[test]
    fn accuracy_against_f64() {
        let xs = samples();
        let mut report = String::new();
        let mut failed = false;
        for f in MathFn::ALL {
            let (mut worst, mut at) = (0.0f64, 0.0f32);
            for &x in &xs {
                let e = ulp_err(eval(f, x), reference(f, x));
                if e > worst {
                    (worst, at) = (e, x);
                }
            }
            let bad = worst > bound(f);
            failed |= bad;
            let mark = if bad { "  EXCEEDS" } else { "" };
            let _ = writeln!(
                report,
                "{f:?}: max {worst:.3} ulp at {at:e} (bound {}){mark}",
                bound(f)
            );
        }
        println!("{} samples\n{report}", xs.len());
        assert!(!failed, "{report}");
    }

    #[test]
    fn special_values() {
        use MathFn::*;
        let (inf, nan) = (f32::INFINITY, f32::NAN);
        let tiny = f32::from_bits(1);
        #[rustfmt::skip]
        let table: &[(MathFn, f32, f32)] = &[
            (Exp, 0.0, 1.0), (Exp, -0.0, 1.0), (Exp, inf, inf), (Exp, -inf, 0.0), (Exp, 88.8, inf),
            (Exp, 1e30, inf), (Exp, -104.0, 0.0), (Exp, -1e30, 0.0), (Exp, tiny, 1.0),
            (Expm1, 0.0, 0.0), (Expm1, -0.0, -0.0), (Expm1, inf, inf), (Expm1, -inf, -1.0),
            (Expm1, 88.8, inf), (Expm1, -30.0, -1.0), (Expm1, tiny, tiny), (Expm1, -tiny, -tiny),
            (Log, 1.0, 0.0), (Log, 0.0, -inf), (Log, -0.0, -inf), (Log, inf, inf), (Log, -1.0, nan),
            (Log, -inf, nan), (Log, -tiny, nan),
            (Log1p, 0.0, 0.0), (Log1p, -0.0, -0.0), (Log1p, -1.0, -inf), (Log1p, -2.0, nan),
            (Log1p, inf, inf), (Log1p, -inf, nan), (Log1p, tiny, tiny), (Log1p, -tiny, -tiny),
            (Tanh, 0.0, 0.0), (Tanh, -0.0, -0.0), (Tanh, inf, 1.0), (Tanh, -inf, -1.0),
            (Tanh, 20.0, 1.0), (Tanh, -20.0, -1.0), (Tanh, tiny, tiny), (Tanh, -tiny, -tiny),
            (Erf, 0.0, 0.0), (Erf, -0.0, -0.0), (Erf, inf, 1.0), (Erf, -inf, -1.0), (Erf, 5.0, 1.0),
            (Erf, -5.0, -1.0),
            (Sqrt, 0.0, 0.0), (Sqrt, -0.0, -0.0), (Sqrt, inf, inf), (Sqrt, -inf, nan), (Sqrt, -1.0, nan),
            (Sqrt, -tiny, nan), (Sqrt, 4.0, 2.0), (Sqrt, 1.0, 1.0), (Sqrt, 0.25, 0.5),
            (Sqrt, f32::from_bits(0x0000_0002), f32::from_bits(0x1a80_0000)), // 2^-148 -> 2^-74
            (Sigmoid, 0.0, 0.5), (Sigmoid, -0.0, 0.5), (Sigmoid, inf, 1.0), (Sigmoid, -inf, 0.0),
            (Sigmoid, 100.0, 1.0), (Sigmoid, -200.0, 0.0),
            (Softplus, inf, inf), (Softplus, -inf, 0.0), (Softplus, 100.0, 100.0),
            (Softplus, -200.0, 0.0), (Softplus, 0.0, std::f32::consts::LN_2),
        ];
        for &(f, x, want) in table {
            let got = eval(f, x);
            let ok = if want.is_nan() {
                got.is_nan()
            } else {
                got.to_bits() == want.to_bits()
            };
            assert!(ok, "{f:?}({x:e}) = {got:e}, want {want:e}");
        }
        // NaN in gives the very same NaN out, signalling and negative ones included.
        for bits in [
            0x7fc0_0000u32,
            0xffc0_0000,
            0x7f80_0001,
            0x7fc1_2345,
            0xff81_2345,
        ] {
            for f in MathFn::ALL {
                let got = eval(f, f32::from_bits(bits)).to_bits();
                assert_eq!(got, bits, "{f:?}(NaN {bits:#x}) = {got:#x}");
            }
        }
        // NaN made from a non-NaN input is the default quiet NaN in both languages.
        for (f, x) in [(Log, -1.0f32), (Log1p, -2.0), (Sqrt, -1.0)] {
            assert_eq!(eval(f, x).to_bits(), 0x7fc0_0000, "{f:?}({x})");
        }
    }

    /// sqrt depends only on the significand and the exponent's parity (subnormals are
    /// scaled into the normal range), so two binades plus the subnormals cover every input.
    #[test]
    fn sqrt_is_correctly_rounded() {
        let step = if cfg!(debug_assertions) { 97 } else { 1 };
        let ranges = [0x3f80_0000u32..0x4080_0000, 1..0x0080_0000];
        for bits in ranges.into_iter().flat_map(|r| r.step_by(step)) {
            let x = f32::from_bits(bits);
            let want = f64::from(x).sqrt() as f32; // double rounding is harmless for sqrt
            assert_eq!(
                eval(MathFn::Sqrt, x).to_bits(),
                want.to_bits(),
                "sqrt({x:e})"
            );
        }
    }

    #[test]
    fn sources_hold_exactly_the_closure() {
        for f in MathFn::ALL {
            assert!(
                f.deps().iter().all(|&d| d < f),
                "{f:?}: a dependency must come first"
            );
        }
        assert_eq!(rust_source(&BTreeSet::new()), "");
        assert_eq!(cpp_source(&BTreeSet::new()), "");
        assert_eq!(c_source(&BTreeSet::new(), "m"), "");
        for f in MathFn::ALL {
            let want = closure(&set(&[f]));
            let (rs, cpp) = (rust_source(&set(&[f])), cpp_source(&set(&[f])));
            for g in MathFn::ALL {
                let in_rs = rs.contains(&format!("fn {}(x: f32) -> f32", g.rust_name()));
                let in_cpp =
                    cpp.contains(&format!("inline float {}(float x) noexcept", g.cpp_name()));
                assert_eq!(in_rs, want.contains(&g), "{f:?}: Rust source and {g:?}");
                assert_eq!(in_cpp, want.contains(&g), "{f:?}: C++ source and {g:?}");
            }
            let c = c_source(&set(&[f]), "m");
            for g in MathFn::ALL {
                let in_c = c.contains(&format!("static inline float m_{}(float x)", g.cpp_name()));
                assert_eq!(in_c, want.contains(&g), "{f:?}: C source and {g:?}");
            }
            for name in CPP_HELPER_NAMES {
                assert!(
                    cpp.contains(&format!(" {name}(")),
                    "{f:?}: C++ helper {name}"
                );
                assert!(c.contains(&format!(" m_{name}(")), "{f:?}: C helper {name}");
            }
            assert!(
                !c.contains("// @") && !c.contains("k2s_"),
                "{f:?}: marker or unprefixed name in C output"
            );
            assert!(
                !rs.contains("// @") && !cpp.contains("// @"),
                "{f:?}: marker in output"
            );
            assert!(
                !rs.contains("pub(super)") && !cpp.contains("namespace"),
                "{f:?}: glue in output"
            );
        }
        // Deterministic, in the fixed order, each function once.
        let all = set(&MathFn::ALL);
        let rs = rust_source(&all);
        assert_eq!(rs, rust_source(&all));
        let pos: Vec<usize> = MathFn::ALL
            .iter()
            .map(|f| rs.find(&format!("fn {}(", f.rust_name())).unwrap())
            .collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]), "order {pos:?}");
        for f in MathFn::ALL {
            assert_eq!(rs.matches(&format!("fn {}(", f.rust_name())).count(), 1);
        }
    }

    fn have(tool: &str) -> bool {
        let ok = Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            println!("SKIPPED: `{tool}` is not available");
        }
        ok
    }

    fn run(cmd: &mut Command) {
        let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        assert!(
            out.status.success(),
            "{cmd:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A `no_std` crate with all functions in one module and each function alone (with
    /// its dependencies) in another, each module using what it has.
    fn standalone_rust() -> String {
        let mut s = String::from(
            "#![no_std]\n#![deny(warnings)]\n\
             #![allow(clippy::excessive_precision, clippy::approx_constant, clippy::unreadable_literal)]\n",
        );
        let calls: Vec<String> = MathFn::ALL
            .iter()
            .map(|f| format!("{}(x)", f.rust_name()))
            .collect();
        let _ = write!(
            s,
            "pub mod all {{\n{}\npub fn use_all(x: f32) -> f32 {{\n    {}\n}}\n}}\n",
            rust_source(&set(&MathFn::ALL)),
            calls.join(" + ")
        );
        for f in MathFn::ALL {
            let _ = write!(
                s,
                "pub mod only_{} {{\n{}\npub fn use_it(x: f32) -> f32 {{\n    {}(x)\n}}\n}}\n",
                f.key(),
                rust_source(&set(&[f])),
                f.rust_name()
            );
        }
        s
    }

    #[test]
    fn rust_source_compiles_standalone() {
        if !have("rustc") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("math.rs");
        std::fs::write(&src, standalone_rust()).unwrap();
        for edition in ["2021", "2024"] {
            run(Command::new("rustc")
                .args([
                    "--edition",
                    edition,
                    "--crate-type=lib",
                    "--emit=obj",
                    "-O",
                    "-o",
                ])
                .arg(dir.path().join(format!("math{edition}.o")))
                .arg(&src));
        }
        if have("clippy-driver") {
            for edition in ["2021", "2024"] {
                run(Command::new("clippy-driver")
                    .args([
                        "--edition",
                        edition,
                        "--crate-type=lib",
                        "--emit=metadata",
                        "-o",
                    ])
                    .arg(dir.path().join(format!("clippy{edition}.rmeta")))
                    .args(["-D", "warnings"])
                    .arg(&src));
            }
        }
    }

    const CXXFLAGS: [&str; 6] = [
        "-std=c++17",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-pedantic",
        "-ffp-contract=off",
    ];

    #[test]
    fn cpp_source_compiles_standalone() {
        if !have("g++") {
            return;
        }
        let mut s = String::from("#include <cstdint>\n#include <cmath>\n");
        s.push_str(crate::backend::DISPATCH);
        let _ = write!(
            s,
            "namespace all {{\n{}}}\n",
            cpp_source(&set(&MathFn::ALL))
        );
        for f in MathFn::ALL {
            let _ = write!(
                s,
                "namespace only_{} {{\n{}}}\n",
                f.key(),
                cpp_source(&set(&[f]))
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("math.cpp");
        std::fs::write(&src, s).unwrap();
        run(Command::new("g++")
            .args(CXXFLAGS)
            .args([
                "-fno-exceptions",
                "-fno-rtti",
                "-Wdouble-promotion",
                "-Wconversion",
            ])
            .args(["-Wsign-conversion", "-Wshadow", "-O2", "-c", "-o"])
            .arg(dir.path().join("math.o"))
            .arg(&src));
    }

    /// A C++ program around `cpp_source(all)`: `prog IN OUT` applies every function (in
    /// `MathFn::ALL` order) to the f32s in IN and writes the results to OUT; `prog sweep`
    /// prints one hash per function over all 2^32 inputs (see `sweep_hash`).
    fn cpp_driver() -> String {
        let runners: Vec<String> = MathFn::ALL
            .iter()
            .map(|f| format!("run<m::{}>", f.cpp_name()))
            .collect();
        format!(
            r#"#include <cstddef>
#include <cstdint>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>
{dispatch}
namespace m {{
{src}}}
template <float (*F)(float)>
static void run(const float* in, float* out, std::size_t n) {{
    for (std::size_t i = 0; i < n; ++i) out[i] = F(in[i]);
}}
typedef void (*Runner)(const float*, float*, std::size_t);
static const Runner kRun[] = {{{runners}}};
static const std::size_t kN = sizeof(kRun) / sizeof(kRun[0]);
static std::uint64_t mix(std::uint64_t z) {{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}}
int main(int argc, char** argv) {{
    if (argc == 2 && std::strcmp(argv[1], "sweep") == 0) {{
        const std::size_t chunk = 1 << 16;
        std::vector<float> in(chunk), out(chunk);
        std::vector<std::uint64_t> h(kN, 0);
        for (std::uint64_t base = 0; base < (1ull << 32); base += chunk) {{
            for (std::size_t i = 0; i < chunk; ++i) {{
                const std::uint32_t b = static_cast<std::uint32_t>(base + i);
                std::memcpy(&in[i], &b, 4);
            }}
            for (std::size_t f = 0; f < kN; ++f) {{
                kRun[f](in.data(), out.data(), chunk);
                for (std::size_t i = 0; i < chunk; ++i) {{
                    std::uint32_t b;
                    std::memcpy(&b, &out[i], 4);
                    h[f] += mix(((base + i) << 32) | b);
                }}
            }}
        }}
        for (std::size_t f = 0; f < kN; ++f) std::printf("%016llx\n", static_cast<unsigned long long>(h[f]));
        return 0;
    }}
    if (argc != 3) return 2;
    std::FILE* fi = std::fopen(argv[1], "rb");
    if (!fi) return 3;
    std::vector<float> in;
    float x;
    while (std::fread(&x, 4, 1, fi) == 1) in.push_back(x);
    std::fclose(fi);
    std::vector<float> out(in.size());
    std::FILE* fo = std::fopen(argv[2], "wb");
    if (!fo) return 4;
    for (std::size_t f = 0; f < kN; ++f) {{
        kRun[f](in.data(), out.data(), in.size());
        if (std::fwrite(out.data(), 4, out.size(), fo) != out.size()) return 5;
    }}
    return std::fclose(fo) == 0 ? 0 : 6;
}}
"#,
            dispatch = crate::backend::DISPATCH,
            src = cpp_source(&set(&MathFn::ALL)),
            runners = runners.join(", ")
        )
    }

    fn build_cpp_driver(dir: &Path, opt: &[&str]) -> std::path::PathBuf {
        let src = dir.join("driver.cpp");
        std::fs::write(&src, cpp_driver()).unwrap();
        let exe = dir.join(format!("driver{}", opt.join("")));
        run(Command::new("g++")
            .args(CXXFLAGS)
            .args(opt)
            .arg("-o")
            .arg(&exe)
            .arg(&src));
        exe
    }

    #[test]
    fn cpp_is_bit_identical_to_rust() {
        if !have("g++") {
            return;
        }
        let xs = samples();
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.bin");
        let output = dir.path().join("out.bin");
        std::fs::write(
            &input,
            xs.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>(),
        )
        .unwrap();
        let mut report = String::new();
        // -fno-trapping-math lets g++ vectorise the loops (it does not change results).
        let vectorised = [
            "-O3",
            "-march=native",
            "-fno-trapping-math",
            "-fno-math-errno",
        ];
        for opt in [&["-O2"][..], &vectorised] {
            let exe = build_cpp_driver(dir.path(), opt);
            run(Command::new(&exe).arg(&input).arg(&output));
            let bytes = std::fs::read(&output).unwrap();
            assert_eq!(bytes.len(), 4 * xs.len() * MathFn::ALL.len());
            let mut got = bytes
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes(c.try_into().unwrap()));
            for f in MathFn::ALL {
                let mut bad = 0;
                for &x in &xs {
                    let (cpp, rust) = (got.next().unwrap(), eval(f, x).to_bits());
                    if cpp != rust {
                        if bad < 3 {
                            let _ = writeln!(
                                report,
                                "{opt:?} {f:?}({x:e}): C++ {cpp:#010x}, Rust {rust:#010x}"
                            );
                        }
                        bad += 1;
                    }
                }
                if bad > 0 {
                    let _ = writeln!(report, "{opt:?} {f:?}: {bad} of {} differ", xs.len());
                }
            }
        }
        assert!(report.is_empty(), "{report}");
    }

    const CFLAGS: [&str; 6] = [
        "-std=c99",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-pedantic",
        "-ffp-contract=off",
    ];

    /// Every function's C source once with a prefix per closure, as two models would put
    /// them in one file, plus `prog IN OUT` (as [`cpp_driver`]'s) over the full set, one
    /// loop per function (which gcc may vectorise).
    fn c_driver() -> String {
        let mut s = String::from(
            "#include <math.h>\n#include <stdint.h>\n#include <stdio.h>\n#include <stddef.h>\n",
        );
        s.push_str(crate::backend::DISPATCH);
        s.push_str(&c_source(&set(&MathFn::ALL), "all"));
        for f in MathFn::ALL {
            s.push_str(&c_source(&set(&[f]), &format!("only_{}", f.key())));
        }
        for f in MathFn::ALL {
            let _ = writeln!(
                s,
                "static void run_{0}(const float* in, float* out, size_t n) {{\n    \
                 size_t i;\n    for (i = 0; i < n; ++i) out[i] = all_{0}(in[i]);\n}}",
                f.cpp_name()
            );
        }
        let runners: Vec<String> = MathFn::ALL
            .iter()
            .map(|f| format!("run_{}", f.cpp_name()))
            .collect();
        let _ = write!(
            s,
            r#"typedef void (*Runner)(const float*, float*, size_t);
static const Runner kRun[] = {{{}}};
static float in[1 << 22], out[1 << 22];
int main(int argc, char** argv) {{
    size_t f, n;
    FILE* fi;
    FILE* fo;
    if (argc != 3) return 2;
    fi = fopen(argv[1], "rb");
    if (!fi) return 3;
    n = fread(in, 4, sizeof in / 4, fi);
    fclose(fi);
    fo = fopen(argv[2], "wb");
    if (!fo) return 4;
    for (f = 0; f < sizeof kRun / sizeof kRun[0]; ++f) {{
        kRun[f](in, out, n);
        if (fwrite(out, 4, n, fo) != n) return 5;
    }}
    return fclose(fo) == 0 ? 0 : 6;
}}
"#,
            runners.join(", ")
        );
        s
    }

    #[test]
    fn c_is_bit_identical_to_rust() {
        if !have("gcc") {
            return;
        }
        let xs = samples();
        assert!(xs.len() < 1 << 22, "the C driver reads at most 2^22 floats");
        let dir = tempfile::tempdir().unwrap();
        let (input, output) = (dir.path().join("in.bin"), dir.path().join("out.bin"));
        let bytes: Vec<u8> = xs.iter().flat_map(|x| x.to_le_bytes()).collect();
        std::fs::write(&input, bytes).unwrap();
        let src = dir.path().join("driver.c");
        std::fs::write(&src, c_driver()).unwrap();
        let mut report = String::new();
        // -fno-trapping-math lets gcc vectorise the loops (it does not change results).
        let vectorised = [
            "-O3",
            "-march=native",
            "-fno-trapping-math",
            "-fno-math-errno",
        ];
        for opt in [&["-O2"][..], &vectorised] {
            let exe = dir.path().join(format!("driver{}", opt.join("")));
            // Strict: the runtime must compile cleanly with the strictest usual warnings.
            run(Command::new("gcc")
                .args(CFLAGS)
                .args(["-Wconversion", "-Wsign-conversion", "-Wshadow"])
                .arg("-Wdouble-promotion")
                .args(opt)
                .arg("-o")
                .arg(&exe)
                .arg(&src)
                .arg("-lm"));
            run(Command::new(&exe).arg(&input).arg(&output));
            let bytes = std::fs::read(&output).unwrap();
            assert_eq!(bytes.len(), 4 * xs.len() * MathFn::ALL.len());
            let mut got = bytes
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes(c.try_into().unwrap()));
            for f in MathFn::ALL {
                let bad = xs
                    .iter()
                    .filter(|&&x| got.next().unwrap() != eval(f, x).to_bits())
                    .count();
                if bad > 0 {
                    let _ = writeln!(report, "{opt:?} {f:?}: {bad} of {} differ", xs.len());
                }
            }
        }
        assert!(report.is_empty(), "C against Rust:\n{report}");
    }

    fn mix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// All 2^32 inputs of every function against the f64 reference: prints the max error
    /// per function (and how many results are not correctly rounded), then checks that
    /// the C++ version gives the same bits everywhere (a hash per function; set
    /// K2S_SWEEP_CPP=0 to skip). Takes minutes: run by `scripts/sweep_math.sh`.
    #[test]
    #[ignore = "sweeps all 2^32 inputs (minutes); run scripts/sweep_math.sh"]
    fn full_sweep() {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
        let per = (1u64 << 32) / threads;
        let start = std::time::Instant::now();
        // per function: (max error, where, results off by more than 0.5 ulp, hash)
        type Acc = Vec<(f64, u32, u64, u64)>;
        let parts: Vec<Acc> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    s.spawn(move || {
                        let mut acc: Acc = vec![(0.0, 0, 0, 0); MathFn::ALL.len()];
                        let (lo, hi) = (
                            t * per,
                            if t + 1 == threads {
                                1 << 32
                            } else {
                                (t + 1) * per
                            },
                        );
                        for b in lo..hi {
                            if t == 0 && (b - lo) % (1 << 26) == 0 {
                                eprintln!(
                                    "{:5.1}% {:?}",
                                    100.0 * (b - lo) as f64 / (hi - lo) as f64,
                                    start.elapsed()
                                );
                            }
                            let x = f32::from_bits(b as u32);
                            for (k, &f) in MathFn::ALL.iter().enumerate() {
                                let y = eval(f, x);
                                let e = ulp_err(y, reference(f, x));
                                let a = &mut acc[k];
                                if e > a.0 {
                                    (a.0, a.1) = (e, b as u32);
                                }
                                a.2 += u64::from(e > 0.5);
                                a.3 = a.3.wrapping_add(mix(b << 32 | u64::from(y.to_bits())));
                            }
                        }
                        acc
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut report = String::new();
        let mut hashes = Vec::new();
        let mut failed = false;
        for (k, f) in MathFn::ALL.iter().enumerate() {
            let mut total = (0.0f64, 0u32, 0u64, 0u64);
            for p in &parts {
                let a = p[k];
                if a.0 > total.0 {
                    (total.0, total.1) = (a.0, a.1);
                }
                total.2 += a.2;
                total.3 = total.3.wrapping_add(a.3);
            }
            hashes.push(total.3);
            let bad = total.0 > bound(*f);
            failed |= bad;
            let _ = writeln!(
                report,
                "{:<9} max {:.3} ulp at {:e} ({:#010x}); {} results not correctly rounded{}",
                format!("{f:?}"),
                total.0,
                f32::from_bits(total.1),
                total.1,
                total.2,
                if bad { "  EXCEEDS BOUND" } else { "" }
            );
        }
        println!("all 2^32 inputs, {:?}\n{report}", start.elapsed());
        assert!(!failed, "{report}");
        if std::env::var("K2S_SWEEP_CPP").as_deref() == Ok("0") || !have("g++") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let exe = build_cpp_driver(
            dir.path(),
            &["-O2", "-fno-trapping-math", "-fno-math-errno"],
        );
        let out = Command::new(&exe).arg("sweep").output().unwrap();
        assert!(out.status.success());
        let cpp: Vec<u64> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| u64::from_str_radix(l, 16).unwrap())
            .collect();
        assert_eq!(cpp, hashes, "C++ and Rust differ on some input");
        println!(
            "C++ (g++ -O2 -fno-trapping-math, vectorised): bit-identical on all 2^32 inputs, {:?}",
            start.elapsed()
        );
    }
}
