//! The IR: the only contract between frontends and backends. A graph of ops with static
//! shapes (batch dimension excluded) and constant f32 weights; no Keras JSON in sight.

mod activation;
mod graph;
mod op;

pub use activation::{Activation, AxisFn};
pub use graph::{Graph, GraphInput, GraphOutput, InputDtype, Node, NodeId, Tensor, TensorId};
pub use op::{Op, Weights};

/// Number of elements of a shape.
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Shapes larger than this (in elements) are refused, so a hostile file cannot make us
/// or the generated code allocate without bound.
pub const MAX_TENSOR_ELEMENTS: usize = 1 << 28;

/// Checked element count: `None` when the shape overflows or exceeds the limit.
pub fn checked_numel(shape: &[usize]) -> Option<usize> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= MAX_TENSOR_ELEMENTS)
}
