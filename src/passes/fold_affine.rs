//! Fuses a BatchNormalization-like affine layer (`y = x * scale + shift` per channel) into
//! the Dense or Conv layer before it, as that layer's [`Rescale`]: the layer applies it to
//! each sum as it stores it, so no tensor lies in between. The weights stay as they are:
//! folding `scale` into them would round every weight once more, and on deep networks
//! (ResNet50) that alone leaves Keras's tolerance.

use crate::ir::{Activation, Graph, Op, Rescale};

pub fn run(mut graph: Graph) -> Graph {
    while let Some((producer, node)) = find(&graph) {
        let Op::Affine { scale, shift, .. } = graph.nodes[node].op.clone() else {
            break;
        };
        if let Some((kernel, rescale, _)) = graph.nodes[producer].op.linear_parts_mut() {
            let units = kernel.shape[kernel.shape.len() - 1];
            // One value for all channels (Rescaling by a scalar) becomes one per channel.
            let per_unit = |v: Vec<f32>| if v.len() == 1 { vec![v[0]; units] } else { v };
            *rescale = Some(Rescale {
                scale: per_unit(scale),
                shift: per_unit(shift),
            });
        }
        graph = super::merge_into_producer(graph, producer, node);
    }
    graph
}

/// An affine node without a center, over the last axis, right after a Dense or Conv with no
/// rescale or activation of its own that nothing else reads. (A centered affine,
/// Normalization's `(x - mean) * scale`, stays a node of its own: this order of rounding is
/// the one Keras has.)
fn find(graph: &Graph) -> Option<(usize, usize)> {
    graph.nodes.iter().enumerate().find_map(|(i, node)| {
        let Op::Affine {
            center: None,
            scale,
            shift,
            inner: 1,
        } = &node.op
        else {
            return None;
        };
        let producer = graph.producer(node.inputs[0])?;
        let (kernel, rescale, activation) = graph.nodes[producer].op.linear_parts()?;
        let units = kernel.shape[kernel.shape.len() - 1];
        let fits = |v: &[f32]| v.len() == units || v.len() == 1;
        (fits(scale)
            && fits(shift)
            && rescale.is_none()
            && *activation == Activation::Linear
            && super::is_sole_consumer(graph, node.inputs[0], i))
        .then_some((producer, i))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{InputDtype, Weights};

    fn dense_then_affine(center: Option<Vec<f32>>) -> Graph {
        let mut g = Graph::default();
        let x = g.add_input("x", vec![2], InputDtype::F32).unwrap();
        let dense = Op::Dense {
            kernel: Weights::new(vec![2, 3], vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6]).unwrap(),
            bias: Some(Weights::new(vec![3], vec![1.0, 2.0, 3.0]).unwrap()),
            rescale: None,
            activation: Activation::Linear,
        };
        let y = g.add_node("dense", "Dense", dense, vec![x], 9).unwrap();
        let affine = Op::Affine {
            center,
            scale: vec![3.0],
            shift: vec![0.5],
            inner: 1,
        };
        let z = g
            .add_node("bn", "BatchNormalization", affine, vec![y], 0)
            .unwrap();
        g.add_output("z", z);
        g
    }

    #[test]
    fn an_affine_after_a_dense_becomes_its_rescale_and_leaves_the_weights_alone() {
        let before = dense_then_affine(None);
        let after = run(before.clone());
        assert_eq!(after.nodes.len(), 1);
        let Op::Dense {
            kernel,
            bias,
            rescale: Some(rescale),
            ..
        } = &after.nodes[0].op
        else {
            panic!("not fused: {:?}", after.nodes[0].op);
        };
        let Op::Dense {
            kernel: k0,
            bias: b0,
            ..
        } = &before.nodes[0].op
        else {
            unreachable!()
        };
        assert_eq!((kernel, bias), (k0, b0));
        assert_eq!(rescale.scale, [3.0; 3]);
        assert_eq!(rescale.shift, [0.5; 3]);
        let x = [vec![0.5f32, -2.0]];
        let run_all = |g: &Graph| {
            let values = crate::interp::run(g, &x).unwrap();
            crate::interp::outputs(g, &values)
        };
        assert_eq!(run_all(&before), run_all(&after));
    }

    #[test]
    fn a_centered_affine_stays_a_node() {
        let g = run(dense_then_affine(Some(vec![0.25])));
        assert_eq!(g.nodes.len(), 2);
    }
}
