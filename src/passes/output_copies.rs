//! Gives every model output a tensor of its own: an output that is a model input, or the
//! same tensor as an earlier output (`Model(x, [x, y])`, `Model(x, [y, y])`), becomes an
//! `Identity` node, which the memory plan turns into a copy. Without it such an output
//! argument would have no writer in the generated code.

use std::collections::BTreeSet;

use crate::ir::{Graph, Op};

pub fn run(mut graph: Graph) -> Graph {
    let mut seen = BTreeSet::new();
    for k in 0..graph.outputs.len() {
        let tensor = graph.outputs[k].tensor;
        let is_input = graph.inputs.iter().any(|i| i.tensor == tensor);
        if !seen.insert(tensor) || is_input {
            let name = format!("{}/copy", graph.outputs[k].name);
            // An Identity's shape rule cannot fail on an existing tensor.
            if let Ok(copy) = graph.add_node(&name, "Identity", Op::Identity, vec![tensor], 0) {
                graph.outputs[k].tensor = copy;
            }
        }
    }
    graph
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Activation, InputDtype};
    use crate::passes::{plan_memory, Location};

    #[test]
    fn repeated_and_input_outputs_get_their_own_writer() {
        let mut g = Graph::default();
        let x = g.add_input("x", vec![4], InputDtype::F32).unwrap();
        let y = g
            .add_node(
                "y",
                "Activation",
                Op::Activation(Activation::Sigmoid),
                vec![x],
                0,
            )
            .unwrap();
        g.add_output("x", x);
        g.add_output("y", y);
        g.add_output("y", y);
        let g = run(g);
        assert_eq!(g.nodes.len(), 3);
        let plan = plan_memory(&g);
        for (k, output) in g.outputs.iter().enumerate() {
            assert_eq!(plan.locations[output.tensor], Location::Output(k));
            let writer = g.producer(output.tensor).unwrap();
            assert!(!plan.is_view[writer], "output {k} is written");
        }
        // Copies read the input and the first output.
        assert_eq!(g.nodes[1].inputs, [x]);
        assert_eq!(g.nodes[2].inputs, [y]);
    }
}
