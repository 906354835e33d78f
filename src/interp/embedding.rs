//! Reference evaluation of Embedding, as the generated loops (`lower::embedding`) do it.

use crate::ir::Weights;

/// `Embedding`: the table row of each index.
pub fn embedding(x: &[f32], table: &Weights) -> Vec<f32> {
    let (rows, dim) = (table.shape[0], table.shape[1]);
    x.iter()
        .flat_map(|&v| {
            let row = embedding_index(v, rows - 1);
            table.data[row * dim..(row + 1) * dim].iter().copied()
        })
        .collect()
}

/// An Embedding index: truncated toward zero (Keras casts to int32), clamped to `0..=max`;
/// NaN reads row 0.
pub fn embedding_index(v: f32, max: usize) -> usize {
    if v >= 1.0 {
        (v as usize).min(max)
    } else {
        0
    }
}
