//! Backends: print a lowered [`crate::lower::Program`] as Rust, C++ or C source.

pub mod c;
pub mod cpp;
pub mod incbin;
pub mod math;
pub mod printer;
pub mod rust;

use crate::ir::quant::f32_to_f16;
use crate::ir::{InputDtype, WeightsDtype};
use crate::lower::loops::Ix;
use crate::lower::{Layer, Program, WeightArray};

/// A compressed weight as the integer literal of its storage type: f16 bits in hex
/// (`0x3c00`), int8 in decimal; f32 values print as the language prints floats.
pub fn stored_literal(dtype: WeightsDtype, v: f32) -> String {
    match dtype {
        WeightsDtype::F16 => format!("0x{:04x}", f32_to_f16(v)),
        WeightsDtype::Int8 | WeightsDtype::Q8 => format!("{}", v as i32),
        WeightsDtype::I32 => format!("{}", v.to_bits() as i32),
        WeightsDtype::F32 => format!("{v:?}"),
    }
}

/// C's and C++'s `half` (f16 bits to float, exact; see [`crate::ir::quant::f16_to_f32`]):
/// `signature` is the language's first line, `memcpy` and `u32` its spellings of them.
/// Branch-free (both forms computed, one selected by a mask, which g++ does not turn back
/// into a branch as it does `?:`), so that loops over weights vectorise: with a branch,
/// g++ -O3 ran bench_cnn 30 times slower than with f32 weights.
pub fn c_half(signature: &str, memcpy: &str, u32: &str) -> String {
    [
        "// The float value of f16 bits (exact; the kernels hold no infinity or NaN).",
        "// On ARM with -mfp16-format=ieee, the FPU's conversion (VCVTB on a Cortex-M4F).",
        &format!("{signature} {{"),
        "#if defined(__ARM_FP16_FORMAT_IEEE)",
        "    __fp16 h;",
        &format!("    {memcpy}(&h, &bits, sizeof h);"),
        "    return (float)h;",
        "#else",
        "    uint32_t rest = (uint32_t)(bits & 0x7fffu);",
        "    float subnormal = (float)rest * 5.9604644775390625e-8f;",
        "    uint32_t subnormal_bits;",
        &format!("    {memcpy}(&subnormal_bits, &subnormal, sizeof subnormal_bits);"),
        "    uint32_t is_subnormal = 0u - (uint32_t)(rest < 0x0400u);",
        "    uint32_t u = (subnormal_bits & is_subnormal)",
        "        | (((rest << 13) + 0x38000000u) & ~is_subnormal)",
        "        | ((uint32_t)(bits & 0x8000u) << 16);",
        "    float f;",
        &format!("    {memcpy}(&f, &u, sizeof f);"),
        "    return f;",
        "#endif",
        "}",
    ]
    .join("\n")
    .replace("uint32_t", u32)
}

pub use crate::lower::INLINE_LAYERS_MAX;

/// An element type in C.
pub fn c_type(dtype: InputDtype) -> &'static str {
    match dtype {
        InputDtype::F32 => "float",
        InputDtype::I32 => "int32_t",
        InputDtype::I8 => "int8_t",
    }
}

/// An element type in C++.
pub fn cpp_type(dtype: InputDtype) -> &'static str {
    match dtype {
        InputDtype::F32 => "float",
        InputDtype::I32 => "std::int32_t",
        InputDtype::I8 => "std::int8_t",
    }
}

/// An element type in Rust.
pub fn rust_type(dtype: InputDtype) -> &'static str {
    match dtype {
        InputDtype::F32 => "f32",
        InputDtype::I32 => "i32",
        InputDtype::I8 => "i8",
    }
}

/// Whole numbers held as f32, as a comma-separated list.
pub fn integers(values: &[f32]) -> String {
    let ints: Vec<String> = values.iter().map(|&v| (v as i32).to_string()).collect();
    ints.join(", ")
}

/// Defines `KERAS2SRC_NOINLINE` for C and C++ (see [`INLINE_LAYERS_MAX`]).
pub const NOINLINE: &str = "
// Each layer stays a function of its own: inlined into predict_with_scratch (each is called
// once), they make one huge function that compilers optimise in superlinear time. Define
// KERAS2SRC_NOINLINE as empty to let the compiler decide.
#ifndef KERAS2SRC_NOINLINE
#if defined(__GNUC__) || defined(__clang__)
#define KERAS2SRC_NOINLINE __attribute__((noinline))
#elif defined(_MSC_VER)
#define KERAS2SRC_NOINLINE __declspec(noinline)
#else
#define KERAS2SRC_NOINLINE
#endif
#endif
";

/// Defines `KERAS2SRC_DISPATCH`, which C and C++ put before every layer function that
/// multiply-accumulates (see [`dispatch`]), and `KERAS2SRC_HELPER`, before every function
/// the layers call (the math runtime, `half`); C and C++ emit it after their includes, which
/// define `__GLIBC__` on glibc.
pub const DISPATCH: &str = "
// x86-64 builds for an instruction set below AVX2 (g++ or gcc on glibc, no -march) compile
// each layer that multiply-accumulates three times, for AVX-512 (x86-64-v4), AVX2 with FMA
// (x86-64-v3) and the build's own target, and the first call runs the best this CPU has
// (GCC's target_clones, an ifunc): without it, plain -O2 took 2.4 to 3.8 times as long as
// -O3 -march=native. Layers that move, pool or map values have one copy. The functions the
// layers call are then always inlined, since each copy needs its own. Define
// KERAS2SRC_NO_DISPATCH for one copy of each (up to 2.7 times less compile time). Copies
// may differ in the last bits by FMA contraction; with -ffp-contract=off all compute the
// same bits.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11 && defined(__x86_64__)
#if defined(__GLIBC__) && !defined(__AVX2__) && !defined(KERAS2SRC_DISPATCH) && !defined(KERAS2SRC_NO_DISPATCH)
#define KERAS2SRC_DISPATCH __attribute__((target_clones(\"arch=x86-64-v4\", \"arch=x86-64-v3\", \"default\")))
#ifndef KERAS2SRC_HELPER
#define KERAS2SRC_HELPER __attribute__((always_inline))
#endif
#endif
#endif
#ifndef KERAS2SRC_DISPATCH
#define KERAS2SRC_DISPATCH
#endif
#ifndef KERAS2SRC_HELPER
#define KERAS2SRC_HELPER
#endif
";

/// What C and C++ put before a layer's function: `KERAS2SRC_DISPATCH` where the layer
/// multiply-accumulates. Copies of the layers that only move, pool or map values cost
/// compile time for little: NASNetMobile's g++ -O2 object took 31.4 s with every layer
/// copied, 24.1 s with these, 9.8 s with one copy of each.
pub(crate) fn dispatch(layer: &Layer) -> &'static str {
    if layer.macs > 0 {
        "KERAS2SRC_DISPATCH "
    } else {
        ""
    }
}

/// Opens the part of a C or C++ header that calls the math functions (see
/// [`NO_TRAPPING_MATH_END`]).
pub const NO_TRAPPING_MATH: &str = "
// g++ vectorises a loop that calls exp, sigmoid or tanh only if it may compute both arms
// of their selects, which its default -ftrapping-math forbids unless vector masks make it
// safe (AVX-512): on x86 without -march such loops ran scalar, and an LSTM took 2.2x,
// EfficientNetB0 2x as long at g++ -O2. This code never relies on floating-point traps,
// and the option changes no value.
#if defined(__GNUC__) && !defined(__clang__) && (defined(__x86_64__) || defined(__i386__))
#pragma GCC push_options
#pragma GCC optimize(\"no-trapping-math\")
#endif
";

/// Closes [`NO_TRAPPING_MATH`].
pub const NO_TRAPPING_MATH_END: &str = "
#if defined(__GNUC__) && !defined(__clang__) && (defined(__x86_64__) || defined(__i386__))
#pragma GCC pop_options
#endif
";

/// Defines `KERAS2SRC_ALIGNED`, which C and C++ put after the working memory's declarator
/// (C99 has no `alignas`).
pub const ALIGNED: &str = "
// Working memory on a 64-byte boundary on cores with wide vectors, so that vector loads
// never straddle a cache line: on x86 with AVX-512, MobileNetV2's C++ took 415 or 565 us
// by where the stack happened to put it. Microcontrollers keep their 8-byte stack
// alignment (realigning would cost stack and instructions for nothing).
#ifndef KERAS2SRC_ALIGNED
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__) || defined(__aarch64__))
#define KERAS2SRC_ALIGNED __attribute__((aligned(64)))
#else
#define KERAS2SRC_ALIGNED
#endif
#endif
";

/// The weights file (Rust's `NAME.weights.bin`, C++'s `NAME.hpp.weights.bin`, C's
/// `NAME.h.weights.bin`): every weight array in program order, row-major, little-endian in
/// its stored type (f32; f16 bits as u16; int8 as i8), each starting at a multiple of 4
/// bytes (zeros pad a compressed array to it). The arrays are packed as each language's
/// lowering reads them, so Rust's file differs from C++'s (C's is C++'s).
pub fn weights_file_bytes(p: &Program) -> Vec<u8> {
    let mut bytes = Vec::new();
    for w in &p.weights {
        for &v in &w.data {
            match w.dtype {
                WeightsDtype::F32 => bytes.extend(v.to_le_bytes()),
                WeightsDtype::F16 => bytes.extend(f32_to_f16(v).to_le_bytes()),
                WeightsDtype::Int8 | WeightsDtype::Q8 => bytes.extend((v as i8).to_le_bytes()),
                WeightsDtype::I32 => bytes.extend((v.to_bits() as i32).to_le_bytes()),
            }
        }
        bytes.resize(bytes.len().next_multiple_of(4), 0);
    }
    bytes
}

/// The bytes array `w` takes in the weights file (without the padding after it).
pub fn stored_bytes(w: &WeightArray) -> usize {
    w.data.len() * w.dtype.bytes()
}

/// Where each weight array starts in the weights file, in bytes (a multiple of 4).
pub fn weights_file_offsets(p: &Program) -> Vec<usize> {
    p.weights
        .iter()
        .scan(0, |at, w| {
            let start = *at;
            *at += stored_bytes(w).next_multiple_of(4);
            Some(start)
        })
        .collect()
}

/// The weights file's length in bytes.
pub fn weights_file_len(p: &Program) -> usize {
    p.weights
        .iter()
        .map(|w| stored_bytes(w).next_multiple_of(4))
        .sum()
}

/// What the weights file holds, for its comment: `little-endian f32`, or with compressed
/// kernels `little-endian f32 and int8` (f16 as `f16 bits`).
pub fn file_holds(p: &Program) -> String {
    let kinds: Vec<&str> = WeightsDtype::ALL
        .iter()
        .filter(|&&d| stores(p, d))
        .map(|d| match d {
            WeightsDtype::F32 => "f32",
            WeightsDtype::F16 => "f16 bits",
            WeightsDtype::Int8 | WeightsDtype::Q8 => "int8",
            WeightsDtype::I32 => "int32",
        })
        .collect();
    match kinds[..] {
        [] => "little-endian f32".into(),
        [one] => format!("little-endian {one}"),
        [.., last] => format!(
            "little-endian {} and {last}",
            kinds[..kinds.len() - 1].join(", ")
        ),
    }
}

/// Whether some array is stored as `dtype`.
pub fn stores(p: &Program, dtype: WeightsDtype) -> bool {
    p.weights.iter().any(|w| w.dtype == dtype)
}

/// The flat index of element `[row][index]` (or `[index]`) of an array read from the
/// weights file.
pub fn flat_index(w: &WeightArray, row: Option<&Ix>, index: &Ix) -> Ix {
    let cols = w.dims.last().copied().unwrap_or(1);
    match row {
        Some(r) => Ix::default().add_scaled(r, cols).add_scaled(index, 1),
        None => index.clone(),
    }
}

/// Whether the source needs the non-finite constants (`INFINITY`, `NAN`): in a weight, in
/// a kernel, or in the self-test's sample. C and C++ take them from their math header.
pub fn uses_non_finite(p: &Program, self_test: Option<&crate::SelfTest>) -> bool {
    let test_values = self_test
        .iter()
        .flat_map(|t| t.inputs.iter().chain(&t.outputs).flatten());
    p.non_finite
        || p.weights
            .iter()
            .flat_map(|w| &w.data)
            .chain(test_values)
            .any(|v| !v.is_finite())
}

/// A C or C++ array's dimensions and initializer, `[rows][cols] = {\n    {...},\n}` (one
/// printed row per weight row), each value printed by `literal`.
/// A compressed array's values print as their stored integers: f16 bits in hex, int8 in
/// decimal.
pub fn array_initializer(w: &WeightArray, literal: impl Fn(f32) -> String) -> String {
    let literal = |v: f32| match w.dtype {
        WeightsDtype::F32 => literal(v),
        WeightsDtype::F16 | WeightsDtype::Int8 | WeightsDtype::Q8 | WeightsDtype::I32 => {
            stored_literal(w.dtype, v)
        }
    };
    let row = |values: &[f32]| {
        values
            .iter()
            .map(|&v| literal(v))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match w.dims[..] {
        [rows, cols] => {
            let body: Vec<String> = w
                .data
                .chunks(cols.max(1))
                .map(|values| format!("    {{{}}},", row(values)))
                .collect();
            format!("[{rows}][{cols}] = {{\n{}\n}};", body.join("\n"))
        }
        _ => format!("[{}] = {{\n    {}\n}};", w.data.len(), row(&w.data)),
    }
}

/// A C or C++ layer call's pointer argument for `arg`: the model port, or the scratch
/// arena at its offset.
pub fn c_pointer(p: &crate::lower::Entry, arg: &crate::lower::Arg) -> String {
    use crate::passes::Location;
    match arg.loc {
        Location::Input(k) => p.inputs[k].ident.clone(),
        Location::Output(k) => p.outputs[k].ident.clone(),
        Location::Scratch(0) => "scratch".into(),
        Location::Scratch(off) => format!("scratch + {off}"),
        Location::ScratchI8(0) => "scratch_i8".into(),
        Location::ScratchI8(off) => format!("scratch_i8 + {off}"),
    }
}

/// What a weights-file array's comment says of its bytes.
pub fn file_comment(dtype: WeightsDtype) -> &'static str {
    match dtype {
        WeightsDtype::F32 => "",
        WeightsDtype::F16 => " f16 bits (little-endian)",
        WeightsDtype::Int8 | WeightsDtype::Q8 => " int8",
        WeightsDtype::I32 => " int32 (little-endian)",
    }
}

/// How C or C++ spells what compressed weights need.
pub struct CStorage {
    /// The element types of int8 and f16 arrays (`int8_t`, `std::uint16_t`, ...).
    pub int8: &'static str,
    pub uint16: &'static str,
    /// The integer types of a quantized model's `i32` arrays and of the bytes composing
    /// them in a weights file.
    pub int32: &'static str,
    pub uint32: &'static str,
    /// `cast(type, x)`: `x` converted to `type`.
    pub cast: fn(&str, &str) -> String,
    /// The f16 conversion function's name.
    pub half: String,
}

impl CStorage {
    /// The element type of `w`'s array.
    pub fn element_type(&self, dtype: WeightsDtype) -> &'static str {
        match dtype {
            WeightsDtype::F32 => "float",
            WeightsDtype::F16 => self.uint16,
            WeightsDtype::Int8 | WeightsDtype::Q8 => self.int8,
            WeightsDtype::I32 => self.int32,
        }
    }

    /// The pointer type of `w` in a weights file (bytes for compressed arrays: the file's
    /// symbol is an array of floats, and only character types may read another's bytes).
    pub fn file_type(&self, dtype: WeightsDtype) -> &'static str {
        match dtype {
            WeightsDtype::F32 => "float",
            WeightsDtype::F16 | WeightsDtype::I32 => "unsigned char",
            WeightsDtype::Int8 | WeightsDtype::Q8 => "signed char",
        }
    }

    /// Element `[row][at]` (or `[at]`) of array `name` holding `w`, as a float (an int8
    /// value before its scale); `in_file`: read flat from the weights file's bytes.
    pub fn read(
        &self,
        w: &WeightArray,
        name: &str,
        row: Option<&Ix>,
        at: &Ix,
        in_file: bool,
    ) -> String {
        use crate::backend::printer::index;
        let element = match row {
            _ if in_file => {
                let flat = flat_index(w, row, at);
                if w.dtype == WeightsDtype::F16 {
                    // Little-endian bits from two bytes.
                    let lo = Ix::default().add_scaled(&flat, 2);
                    let hi = lo.clone().offset(1);
                    let bits = format!("{name}[{}] | ({name}[{}] << 8)", index(&lo), index(&hi));
                    return format!("{}({})", self.half, (self.cast)(self.uint16, &bits));
                }
                if w.dtype == WeightsDtype::I32 {
                    // Little-endian from four bytes.
                    let at = Ix::default().add_scaled(&flat, 4);
                    let byte = |k: isize, shift: u32| {
                        let b = (self.cast)(
                            self.uint32,
                            &format!("{name}[{}]", index(&at.clone().offset(k))),
                        );
                        if shift == 0 {
                            b
                        } else {
                            format!("({b} << {shift})")
                        }
                    };
                    let bits = format!(
                        "{} | {} | {} | {}",
                        byte(0, 0),
                        byte(1, 8),
                        byte(2, 16),
                        byte(3, 24)
                    );
                    return (self.cast)(self.int32, &bits);
                }
                format!("{name}[{}]", index(&flat))
            }
            Some(r) => format!("{name}[{}][{}]", index(r), index(at)),
            None => format!("{name}[{}]", index(at)),
        };
        match w.dtype {
            WeightsDtype::F32 => element,
            WeightsDtype::F16 => format!("{}({element})", self.half),
            WeightsDtype::Int8 => (self.cast)("float", &element),
            // Read as integers by integer kernels.
            WeightsDtype::Q8 | WeightsDtype::I32 => element,
        }
    }
}
