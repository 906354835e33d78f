//! The IR: the only contract between frontends and backends. A graph of ops with static
//! shapes (batch dimension excluded) and constant f32 weights; no Keras JSON in sight.

mod activation;
mod attention;
mod conv_lstm;
pub mod expr;
mod graph;
pub mod int8;
mod math;
mod norm_shape;
mod op;
mod preprocess;
pub mod quant;
mod recurrent;
mod resample;
mod shape;

pub use activation::{Activation, AxisFn, MathOp, ScalarOp};
pub use attention::MASKED_SCORE;
pub use conv_lstm::ConvLstm;
pub use graph::{Graph, GraphInput, GraphOutput, InputDtype, Node, NodeId, Tensor, TensorId};
pub use math::MathFn;
pub use op::{
    CumulativeKind, MergeKind, NormAxis, NormKind, Op, PoolKind, ReduceKind, Rescale, Weights,
    Window,
};
pub use preprocess::{EncodeMode, Lookup, EXACT_INTEGER_LIMIT};
pub use quant::WeightsDtype;
pub use recurrent::{Cell, Recurrent};
pub use resample::{adaptive_windows, resize_taps, ResizeMethod, ResizeTap};

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

/// The flat index into a weight of `shape` (1 on broadcast axes) for flat index `flat` of
/// a tensor of `target`.
pub fn broadcast_index(flat: usize, shape: &[usize], target: &[usize]) -> usize {
    let (mut rest, mut index, mut stride) = (flat, 0, 1);
    for (&d, &s) in target.iter().zip(shape).rev() {
        if s != 1 {
            index += (rest % d) * stride;
        }
        rest /= d;
        stride *= s;
    }
    index
}
