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
pub mod expr;
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
    lower, lower_with, Arg, Blocking, Kernel, Layer, Port, Post, Program, WeightArray, WeightId,
};

/// Registers a weight array (name suffix, dims, data) and returns its id.
pub(crate) type AddWeight<'a> = dyn FnMut(&str, Vec<usize>, &[f32]) -> WeightId + 'a;

/// The names of a layer function's inputs: `input` for one, else `input0`, `input1`, ...
pub fn input_names(count: usize) -> Vec<String> {
    if count == 1 {
        vec!["input".to_string()]
    } else {
        (0..count).map(|k| format!("input{k}")).collect()
    }
}
