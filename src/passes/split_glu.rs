//! Splits `Dense(activation=glu)` into a linear Dense and a separate glu node: glu halves
//! its axis, so it cannot run in place on the Dense output.

use crate::ir::{Activation, AxisFn, Graph, Node, Op, Tensor};

pub fn run(mut graph: Graph) -> Graph {
    let mut nodes = Vec::with_capacity(graph.nodes.len());
    for mut node in std::mem::take(&mut graph.nodes) {
        let glu = match &mut node.op {
            Op::Dense { activation, .. } if is_glu(activation) => {
                std::mem::replace(activation, Activation::Linear)
            }
            _ => {
                nodes.push(node);
                continue;
            }
        };
        let Op::Dense { kernel, .. } = &node.op else {
            unreachable!("matched above")
        };
        let mut linear_shape = graph.tensors[node.inputs[0]].shape.clone();
        if let Some(last) = linear_shape.last_mut() {
            *last = kernel.shape[1];
        }
        graph.tensors.push(Tensor {
            shape: linear_shape,
        });
        let linear = graph.tensors.len() - 1;
        let output = std::mem::replace(&mut node.output, linear);
        let activation = Node {
            name: node.name.clone(),
            class: node.class.clone(),
            op: Op::Activation(glu),
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

fn is_glu(activation: &Activation) -> bool {
    matches!(
        activation,
        Activation::Axis {
            func: AxisFn::Glu,
            ..
        }
    )
}
