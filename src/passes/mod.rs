//! Graph passes, run in the order listed in [`optimize`], then memory planning.

mod drop_identity;
mod fold_affine;
mod fuse_activation;
mod fuse_pad;
mod fuse_pool;
mod fuse_residual;
mod memory;
mod output_copies;
pub mod quantize;
mod split_activation;
pub mod stream;

pub use memory::{plan_memory, Location, MemoryPlan};

use crate::ir::Graph;

/// The inference passes, in order. Each takes and returns a valid graph.
pub fn optimize(graph: Graph) -> Graph {
    let graph = drop_identity::run(graph);
    let graph = split_activation::run(graph);
    let graph = fold_affine::run(graph);
    let graph = fuse_residual::run(graph);
    let graph = fuse_activation::run(graph);
    let graph = fuse_pool::run(graph);
    let graph = fuse_pad::run(graph);
    output_copies::run(graph)
}

/// Whether `node`'s output may be merged into its producer: it is the producer's only
/// consumer and the producer's output is not a model output.
fn is_sole_consumer(graph: &Graph, producer_output: usize, node: usize) -> bool {
    graph.consumers(producer_output) == [node] && !graph.is_output(producer_output)
}

/// Removes node `removed` whose single input is `producer`'s output: `producer` now writes
/// `removed`'s output tensor, so consumers stay unchanged.
fn merge_into_producer(mut graph: Graph, producer: usize, removed: usize) -> Graph {
    let node = graph.nodes.remove(removed);
    graph.nodes[producer].output = node.output;
    graph.nodes[producer].keras_params += node.keras_params;
    graph
}
