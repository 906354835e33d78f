//! Fuses a max pooling into the convolution that feeds it: the fused kernel computes the
//! convolution positions of each pooling window in registers and stores only their
//! maximum, so the convolution's output is never written or read back. (B2's first
//! Conv2D + MaxPooling2D took 2.6 + 6.3 us as two kernels, 2.5 us fused; Zen 4, AVX-512.)

use crate::ir::{Graph, Op, PoolKind, Window};

/// At most this many f32 accumulators (filters times one row of the pooling window) in
/// flight, as for Dense tiles (`lower::dense`): 8 AVX2 registers.
const ACCUMULATORS: usize = 64;

pub fn run(mut graph: Graph) -> Graph {
    while let Some((producer, node)) = find(&graph) {
        let Op::Pool { window, .. } = graph.nodes[node].op.clone() else {
            break;
        };
        let conv = std::mem::replace(&mut graph.nodes[producer].op, Op::Identity);
        graph.nodes[producer].op = Op::ConvMaxPool {
            conv: Box::new(conv),
            pool: window,
        };
        graph = super::merge_into_producer(graph, producer, node);
    }
    graph
}

/// A window that tiles its input: no padding, no overlap, no dilation.
fn tiles(w: &Window) -> bool {
    w.padding.iter().all(|&p| p == (0, 0))
        && w.strides == w.size
        && w.dilation.iter().all(|&d| d == 1)
}

fn find(graph: &Graph) -> Option<(usize, usize)> {
    graph.nodes.iter().enumerate().find_map(|(i, node)| {
        let Op::Pool {
            kind: PoolKind::Max,
            window: pool,
        } = &node.op
        else {
            return None;
        };
        let producer = graph.producer(node.inputs[0])?;
        let Op::Conv {
            kernel,
            window,
            groups: 1,
            ..
        } = &graph.nodes[producer].op
        else {
            return None;
        };
        let filters = *kernel.shape.last()?;
        let row = *pool.size.last()?;
        let fits = filters * row <= ACCUMULATORS;
        let unpadded = window.padding.iter().all(|&p| p == (0, 0));
        (fits && unpadded && tiles(pool) && super::is_sole_consumer(graph, node.inputs[0], i))
            .then_some((producer, i))
    })
}
