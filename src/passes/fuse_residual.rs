//! Fuses a residual connection's Add into the Dense or Conv that computes one of its two
//! inputs: the layer adds the other input to each sum in its epilogue, before its
//! activation ([`Op::Residual`]), so the layer's own output is never stored and read back,
//! and an activation after the Add then fuses too. (ResNet50's adds and the ReLUs after
//! them took 2.3 ms of 77 as passes of their own; Zen 4, AVX-512.)

use crate::ir::{Graph, InputDtype, MergeKind, Op, TensorId};

pub fn run(mut graph: Graph) -> Graph {
    while let Some((producer, add, residual)) = find(&graph) {
        // The fused node takes the Add's place, where both of its inputs exist.
        let mut node = graph.nodes.remove(producer);
        let add = &mut graph.nodes[add - 1];
        node.op = Op::Residual {
            op: Box::new(node.op),
        };
        node.inputs.push(residual);
        node.output = add.output;
        node.keras_params += add.keras_params;
        *add = node;
    }
    graph
}

/// An Add of two distinct tensors of one shape, one of them computed by a Dense or Conv
/// with no activation that nothing else reads: (that layer, the Add, the other tensor).
fn find(graph: &Graph) -> Option<(usize, usize, TensorId)> {
    graph.nodes.iter().enumerate().find_map(|(i, node)| {
        let Op::Merge {
            kind: MergeKind::Add,
        } = node.op
        else {
            return None;
        };
        let &[a, b] = node.inputs.as_slice() else {
            return None;
        };
        let same = a != b
            && graph.shape(a) == graph.shape(b)
            && graph.shape(a) == graph.shape(node.output)
            && [a, b].iter().all(|&t| graph.dtype(t) == InputDtype::F32);
        if !same {
            return None;
        }
        // Keras's `Add()([shortcut, x])` has the layer's output second.
        [(b, a), (a, b)].into_iter().find_map(|(sum, residual)| {
            let producer = graph.producer(sum)?;
            let linear = match &graph.nodes[producer].op {
                Op::Dense { activation, .. } | Op::Conv { activation, .. } => {
                    activation.is_linear()
                }
                _ => false,
            };
            (linear && super::is_sole_consumer(graph, sum, i)).then_some((producer, i, residual))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interp;
    use crate::ir::{Activation, Rescale, Weights, Window};

    /// Deterministic values in [-1, 1).
    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).max(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 2000) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    fn conv(size: usize, channels: usize, filters: usize, seed: u32, act: Activation) -> Op {
        let shape = vec![size, size, channels, filters];
        let n = size * size * channels * filters;
        Op::Conv {
            kernel: Weights::new(shape, values(n, seed)).unwrap(),
            bias: Some(Weights::new(vec![filters], values(filters, seed + 1)).unwrap()),
            rescale: Some(Rescale {
                scale: values(filters, seed + 2),
                shift: values(filters, seed + 3),
            }),
            window: Window {
                size: vec![size; 2],
                strides: vec![1; 2],
                dilation: vec![1; 2],
                padding: vec![(size / 2, size / 2); 2],
            },
            groups: 1,
            activation: act,
        }
    }

    /// `relu(add(relu(conv3x3(x)), conv1x1(x)))`, the 1x1 convolution's output also a model
    /// output when `shared`.
    fn block(shared: bool) -> Graph {
        let mut g = Graph::default();
        let x = g.add_input("x", vec![6, 5, 3], InputDtype::F32).unwrap();
        let main = conv(3, 3, 4, 10, Activation::relu());
        let a = g.add_node("a", "Conv2D", main, vec![x], 0).unwrap();
        let b = (g.add_node(
            "b",
            "Conv2D",
            conv(1, 3, 4, 20, Activation::Linear),
            vec![x],
            0,
        ))
        .unwrap();
        let add = Op::Merge {
            kind: MergeKind::Add,
        };
        let sum = g.add_node("add", "Add", add, vec![a, b], 0).unwrap();
        let relu = Op::Activation(Activation::relu());
        let y = g
            .add_node("relu", "Activation", relu, vec![sum], 0)
            .unwrap();
        g.add_output("y", y);
        if shared {
            g.add_output("b", b);
        }
        g
    }

    #[test]
    fn the_add_and_its_activation_join_the_linear_convolution_with_the_same_bits() {
        let g = block(false);
        let fused = crate::passes::optimize(g.clone());
        assert_eq!(fused.nodes.len(), 2, "{:#?}", fused.nodes);
        let Op::Residual { op } = &fused.nodes[1].op else {
            panic!("not fused: {:?}", fused.nodes[1].op);
        };
        assert!(matches!(
            op.as_ref(),
            Op::Conv {
                activation: Activation::Relu { .. },
                ..
            }
        ));
        assert_eq!(fused.nodes[1].name, "b");
        let input = vec![values(6 * 5 * 3, 30)];
        let run = |g: &Graph| interp::outputs(g, &interp::run(g, &input).unwrap());
        let (before, after) = (run(&g), run(&fused));
        let bits = |v: &[Vec<f32>]| v[0].iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&before), bits(&after));
        // Not degenerate: the ReLU passes some values and stops others.
        assert!(before[0].iter().any(|&v| v > 0.0) && before[0].contains(&0.0));
    }

    #[test]
    fn a_layer_whose_output_is_read_elsewhere_keeps_its_add() {
        let fused = crate::passes::optimize(block(true));
        assert!(fused
            .nodes
            .iter()
            .all(|n| !matches!(n.op, Op::Residual { .. })));
        assert!(fused.nodes.iter().any(|n| matches!(n.op, Op::Merge { .. })));
    }
}
