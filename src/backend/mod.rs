//! Backends: print a lowered [`crate::lower::Program`] as Rust, C++ or C source.

pub mod c;
pub mod cpp;
pub mod incbin;
pub mod math;
pub mod printer;
pub mod rust;

use crate::lower::loops::Ix;
use crate::lower::{Program, WeightArray};

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
