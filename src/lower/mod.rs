//! Lowering: the decisions both backends share (loop shapes, weight arrays, where each
//! tensor lives, which math functions are needed), made once.

pub mod expr;
pub mod index;
mod program;

pub use program::{
    lower, Arg, AxisKernel, Kernel, Layer, Port, Post, Program, WeightArray, WeightId,
};
