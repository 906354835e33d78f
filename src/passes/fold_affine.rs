//! Folds BatchNormalization-like affine layers into the Dense or Conv layer before them:
//! `((x·W + b) - c) * s + t  =  x·(W*s) + ((b - c) * s + t)`, per output channel.

use crate::ir::{Activation, Graph, Op};

pub fn run(mut graph: Graph) -> Graph {
    while let Some((producer, node)) = find(&graph) {
        let Op::Affine {
            center,
            scale,
            shift,
            ..
        } = graph.nodes[node].op.clone()
        else {
            break;
        };
        if let Some((kernel, bias, _)) = graph.nodes[producer].op.linear_parts_mut() {
            let units = kernel.shape[kernel.shape.len() - 1];
            let at = |v: &[f32], o: usize| if v.len() == 1 { v[0] } else { v[o] };
            for row in kernel.data.chunks_exact_mut(units) {
                for (o, w) in row.iter_mut().enumerate() {
                    *w *= at(&scale, o);
                }
            }
            let folded: Vec<f32> = (0..units)
                .map(|o| {
                    let b = bias.as_ref().map_or(0.0, |b| b.data[o]);
                    let c = center.as_ref().map_or(0.0, |c| at(c, o));
                    (b - c) * at(&scale, o) + at(&shift, o)
                })
                .collect();
            *bias = Some(crate::ir::Weights {
                shape: vec![units],
                data: folded,
            });
        }
        graph = super::merge_into_producer(graph, producer, node);
    }
    graph
}

/// An affine node over the last axis right after a linear Dense or Conv that nothing else
/// reads.
fn find(graph: &Graph) -> Option<(usize, usize)> {
    graph.nodes.iter().enumerate().find_map(|(i, node)| {
        let Op::Affine { scale, inner, .. } = &node.op else {
            return None;
        };
        let producer = graph.producer(node.inputs[0])?;
        let (kernel, _, activation) = graph.nodes[producer].op.linear_parts()?;
        let units = kernel.shape[kernel.shape.len() - 1];
        let per_unit = *inner == 1 && (scale.len() == units || scale.len() == 1);
        (per_unit
            && *activation == Activation::Linear
            && super::is_sole_consumer(graph, node.inputs[0], i))
        .then_some((producer, i))
    })
}
