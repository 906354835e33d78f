//! Removes the inference no-ops ([`Op::Identity`]: Dropout and friends) whose output is not
//! a model output: their readers read the input instead. Memory planning already made them
//! free; removed, they also stop keeping the layers around them from fusing
//! (EfficientNet's drop-connect Dropout sits between each projection and its residual Add).

use crate::ir::{Graph, Op};

pub fn run(mut graph: Graph) -> Graph {
    let mut i = 0;
    while i < graph.nodes.len() {
        let node = &graph.nodes[i];
        if !matches!(node.op, Op::Identity) || graph.is_output(node.output) {
            i += 1;
            continue;
        }
        let (from, to) = (node.output, node.inputs[0]);
        graph.nodes.remove(i);
        for t in graph.nodes.iter_mut().flat_map(|n| n.inputs.iter_mut()) {
            if *t == from {
                *t = to;
            }
        }
    }
    graph
}
