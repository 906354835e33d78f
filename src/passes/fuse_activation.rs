//! Fuses an activation layer into the Dense or Conv layer that feeds it, so the activation runs
//! on the Dense output while it is still in cache, with no tensor in between. A layer with
//! a fused residual add ([`Op::Residual`]) takes it too: the activation runs after the add.

use crate::ir::{Activation, AxisFn, Graph, Op};

pub fn run(mut graph: Graph) -> Graph {
    while let Some((producer, node)) = find(&graph) {
        let Op::Activation(activation) = graph.nodes[node].op.clone() else {
            break;
        };
        let op = match &mut graph.nodes[producer].op {
            Op::Residual { op } => op.as_mut(),
            op => op,
        };
        if let Some((_, _, a)) = op.linear_parts_mut() {
            *a = activation;
        }
        graph = super::merge_into_producer(graph, producer, node);
    }
    graph
}

fn find(graph: &Graph) -> Option<(usize, usize)> {
    graph.nodes.iter().enumerate().find_map(|(i, node)| {
        let Op::Activation(activation) = &node.op else {
            return None;
        };
        // Glu changes the shape, so it cannot run in place on the Dense output.
        if matches!(
            activation,
            Activation::Axis {
                func: AxisFn::Glu,
                ..
            }
        ) {
            return None;
        }
        let producer = graph.producer(node.inputs[0])?;
        // Conv kernels apply elementwise activations only; Dense takes any.
        let op = match &graph.nodes[producer].op {
            Op::Residual { op } => op.as_ref(),
            op => op,
        };
        let fusable = match op {
            Op::Dense { activation, .. } => activation.is_linear(),
            Op::Conv { activation: a, .. } => {
                a.is_linear() && !matches!(activation, Activation::Axis { .. })
            }
            _ => false,
        };
        (fusable && super::is_sole_consumer(graph, node.inputs[0], i)).then_some((producer, i))
    })
}
