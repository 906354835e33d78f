//! Lowering: the decisions both backends share (loop shapes, weight arrays, where each
//! tensor lives, which math functions are needed), made once.

mod attention;
pub(crate) mod axis;
mod conv;
mod conv_lstm;
mod dense;
mod elementwise;
mod embedding;
mod epilogue;
mod index;
mod layout;
pub mod loops;
mod merge;
mod norm;
mod pool;
mod preprocess;
mod program;
mod recurrent;
mod reduce;
mod resample;

pub use axis::AxisKernel;
pub(crate) use epilogue::Epilogue;
pub use program::{
    lower, Arg, Blocking, Layer, Port, Post, Program, Tuning, WeightArray, WeightId,
};

/// Registers a weight array (name suffix, dims, data) and returns its id.
pub(crate) type AddWeight<'a> = dyn FnMut(&str, Vec<usize>, &[f32]) -> WeightId + 'a;

/// A port's identifier, the rule every backend follows: the bare `prefix` when the model
/// has one such port (`input`, `kOutputLen`), else the prefix numbered from 0 (`input0`,
/// `INPUT1_LEN`).
pub fn port_ident(prefix: &str, single: bool, k: usize) -> String {
    if single {
        prefix.to_string()
    } else {
        format!("{prefix}{k}")
    }
}

/// The names of a layer function's inputs: `input` for one, else `input0`, `input1`, ...
pub fn input_names(count: usize) -> Vec<String> {
    (0..count)
        .map(|k| port_ident("input", count == 1, k))
        .collect()
}
