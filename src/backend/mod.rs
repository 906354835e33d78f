//! Backends: print a lowered [`crate::lower::Program`] as Rust, C++ or C source.

pub mod c;
pub mod cpp;
pub mod incbin;
pub mod math;
pub mod printer;
pub mod rust;

use crate::lower::loops::Ix;
use crate::lower::{Program, WeightArray};

pub use crate::lower::INLINE_LAYERS_MAX;

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

/// The weights file (Rust's `NAME.weights.bin`, C++'s `NAME.hpp.weights.bin`, C's
/// `NAME.h.weights.bin`): every weight array in program order, row-major, as little-endian
/// f32, with nothing between them. The arrays are packed as each language's lowering reads
/// them, so Rust's file differs from C++'s (C's is C++'s).
pub fn weights_file_bytes(p: &Program) -> Vec<u8> {
    p.weights
        .iter()
        .flat_map(|w| w.data.iter().flat_map(|v| v.to_le_bytes()))
        .collect()
}

/// Where each weight array starts in the weights file, in floats.
pub fn weights_file_offsets(p: &Program) -> Vec<usize> {
    p.weights
        .iter()
        .scan(0, |at, w| {
            let start = *at;
            *at += w.data.len();
            Some(start)
        })
        .collect()
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
pub fn array_initializer(w: &WeightArray, literal: impl Fn(f32) -> String) -> String {
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
    }
}
