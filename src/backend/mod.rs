//! Backends: print a lowered [`crate::lower::Program`] as Rust, C++ or C source.

pub mod c;
pub mod cpp;
pub mod incbin;
pub mod math;
pub mod printer;
pub mod rust;

use crate::lower::loops::Ix;
use crate::lower::{Program, WeightArray};

/// Above this many layer functions, each is kept out of line (`#[inline(never)]` in Rust,
/// `KERAS2SRC_NOINLINE` in C++). Each layer is called once, so compilers inline them all into
/// `predict_with_scratch`, one huge function optimised in superlinear time: NASNetMobile's
/// 662 layer functions took `rustc -C opt-level=3` 408 s inlined and 92 s out of line
/// (issue 19, BENCHMARKS.md). Small graphs keep inlining: it costs them little compile time,
/// and g++ -O3 optimises some inlined kernels better (bench_cnn, 4 layer functions, at
/// `-O3 -march=native`: 42 µs inlined, 65 µs out of line, the accumulators spilled to the
/// stack). The bench models have at most 68 layer functions.
pub const INLINE_LAYERS_MAX: usize = 100;

/// Whether `p`'s layer functions are kept out of line (see [`INLINE_LAYERS_MAX`]).
pub fn noinline_layers(p: &Program) -> bool {
    p.layers.len() > INLINE_LAYERS_MAX
}

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
