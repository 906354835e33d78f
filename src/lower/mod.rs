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
mod share;

pub use axis::AxisKernel;
pub use dense::{ACCUMULATORS, TILE};
pub(crate) use epilogue::Epilogue;
pub use program::{
    lower, lower_with_step, Arg, Blocking, Entry, Layer, Port, Post, Program, StepGraph, Stream,
    Tuning, WeightArray, WeightId,
};
pub use share::INLINE_LAYERS_MAX;

/// Registers a weight array (name suffix, dims, data) and returns its id.
pub(crate) type AddWeight<'a> = dyn FnMut(&str, Vec<usize>, &[f32]) -> WeightId + 'a;

/// A port's identifier, the rule every generated name follows: the bare `prefix` when
/// there is one such port, else the prefix numbered from 0 (`input0`, `input1`, ...).
fn port_ident(prefix: &str, single: bool, k: usize) -> String {
    if single {
        prefix.to_string()
    } else {
        format!("{prefix}{k}")
    }
}
