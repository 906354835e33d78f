//! Splits off activations a layer cannot run in place on its own output: glu (it halves
//! an axis) after Dense or Conv, and any axis activation (softmax, ...) after Conv or
//! ConvTranspose, whose loops apply elementwise activations only. The activation becomes
//! a node of its own.

use crate::ir::{Activation, AxisFn, Graph, Node, Op, Tensor};

pub fn run(graph: Graph) -> Graph {
    split(graph, |op| match op {
        Op::Dense { activation, .. } => is_glu(activation),
        Op::Conv { activation, .. } | Op::ConvTranspose { activation, .. } => {
            matches!(activation, Activation::Axis { .. })
        }
        _ => false,
    })
}

/// Splits the activation off every layer `wanted` picks (Dense, Conv, ConvTranspose).
pub fn split(mut graph: Graph, wanted: impl Fn(&Op) -> bool) -> Graph {
    let mut nodes = Vec::with_capacity(graph.nodes.len());
    for mut node in std::mem::take(&mut graph.nodes) {
        if !wanted(&node.op) {
            nodes.push(node);
            continue;
        }
        // The layer's own shape once the activation is gone (validated graphs: no error).
        let mut linear_op = node.op.clone();
        let shapes: Vec<&[usize]> = node.inputs.iter().map(|&t| graph.shape(t)).collect();
        let linear_shape = match activation_mut(&mut linear_op) {
            Some(a) => {
                *a = Activation::Linear;
                linear_op.output_shape(&shapes)
            }
            _ => Err(String::new()),
        };
        let (Ok(linear_shape), Some(activation)) = (linear_shape, activation_mut(&mut node.op))
        else {
            nodes.push(node);
            continue;
        };
        let activation = std::mem::replace(activation, Activation::Linear);
        graph.tensors.push(Tensor {
            shape: linear_shape,
        });
        let linear = graph.tensors.len() - 1;
        let output = std::mem::replace(&mut node.output, linear);
        let activation = Node {
            name: node.name.clone(),
            class: node.class.clone(),
            op: Op::Activation(activation),
            inputs: vec![linear],
            output,
            keras_params: 0,
        };
        nodes.push(node);
        nodes.push(activation);
    }
    graph.nodes = nodes;
    graph
}

fn activation_mut(op: &mut Op) -> Option<&mut Activation> {
    match op {
        Op::ConvTranspose { activation, .. } => Some(activation),
        op => op.linear_parts_mut().map(|(_, _, a)| a),
    }
}

fn is_glu(activation: &Activation) -> bool {
    matches!(
        activation,
        Activation::Axis {
            func: AxisFn::Glu,
            ..
        }
    )
}
