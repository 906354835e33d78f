//! Fuses a zero padding of the spatial axes into the convolution that reads it: the padding
//! becomes the convolution's own, whose kernel skips the taps that fall outside the input
//! instead of multiplying stored zeros, and the padded copy is never written (EfficientNetB0
//! wrote and cleared 5 of them, 4.9 MB the largest, before its stride-2 convolutions).
//! A skipped tap and a zero tap give the same sum, up to the sign of a zero sum; kernels
//! with a value that is not finite (0 * inf is NaN) keep their padding layer.

use crate::ir::{Graph, Op, Weights, Window};

pub fn run(mut graph: Graph) -> Graph {
    while let Some((pad, conv)) = find(&graph) {
        let Op::Pad { padding, .. } = graph.nodes[pad].op.clone() else {
            break;
        };
        let (input, params) = (graph.nodes[pad].inputs[0], graph.nodes[pad].keras_params);
        let node = &mut graph.nodes[conv];
        if let Some(window) = window_mut(&mut node.op) {
            for (own, (before, after)) in window.padding.iter_mut().zip(padding) {
                own.0 += before;
                own.1 += after;
            }
        }
        node.inputs[0] = input;
        node.keras_params += params;
        graph.nodes.remove(pad);
    }
    graph
}

/// The kernel and window of a Conv, or of a Conv with a fused residual add.
fn conv(op: &Op) -> Option<(&Weights, &Window)> {
    match op {
        Op::Conv { kernel, window, .. } => Some((kernel, window)),
        Op::Residual { op } => conv(op),
        _ => None,
    }
}

fn window_mut(op: &mut Op) -> Option<&mut Window> {
    match op {
        Op::Conv { window, .. } => Some(window),
        Op::Residual { op } => window_mut(op),
        _ => None,
    }
}

/// A zero padding of the spatial axes only whose sole reader is a convolution, as its
/// input 0 only, with finite weights: (the padding, the convolution).
fn find(graph: &Graph) -> Option<(usize, usize)> {
    graph.nodes.iter().enumerate().find_map(|(i, node)| {
        let Op::Pad { padding, value } = &node.op else {
            return None;
        };
        let (&channels, spatial) = padding.split_last()?;
        if value.to_bits() != 0 || channels != (0, 0) || graph.is_output(node.output) {
            return None;
        }
        let &[reader] = graph.consumers(node.output).as_slice() else {
            return None;
        };
        let inputs = &graph.nodes[reader].inputs;
        if inputs[0] != node.output || inputs[1..].contains(&node.output) {
            return None;
        }
        let (kernel, window) = conv(&graph.nodes[reader].op)?;
        let fits =
            window.padding.len() == spatial.len() && kernel.data.iter().all(|w| w.is_finite());
        fits.then_some((i, reader))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interp;
    use crate::ir::{Activation, InputDtype};

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| ((i as u32 * 7919 + seed * 104_729) % 2000) as f32 / 1000.0 - 1.0)
            .collect()
    }

    /// ZeroPadding2D with `padding` (and `value`), then a 3x3 stride-2 convolution with
    /// padding (0, 1) of its own on both axes.
    fn padded_conv(padding: Vec<(usize, usize)>, value: f32) -> Graph {
        let mut g = Graph::default();
        let x = g.add_input("x", vec![7, 6, 2], InputDtype::F32).unwrap();
        let pad = Op::Pad { padding, value };
        let p = g.add_node("pad", "ZeroPadding2D", pad, vec![x], 0).unwrap();
        let conv = Op::Conv {
            kernel: Weights::new(vec![3, 3, 2, 3], values(54, 1)).unwrap(),
            bias: Some(Weights::new(vec![3], values(3, 2)).unwrap()),
            rescale: None,
            window: Window {
                size: vec![3, 3],
                strides: vec![2, 2],
                dilation: vec![1, 1],
                padding: vec![(0, 1), (0, 1)],
            },
            groups: 1,
            activation: Activation::Linear,
        };
        let y = g.add_node("conv", "Conv2D", conv, vec![p], 0).unwrap();
        g.add_output("y", y);
        g
    }

    fn bits(g: &Graph) -> Vec<u32> {
        let input = vec![values(7 * 6 * 2, 3)];
        let out = interp::outputs(g, &interp::run(g, &input).unwrap());
        out[0].iter().map(|v| v.to_bits()).collect()
    }

    #[test]
    fn a_zero_padding_becomes_the_convolutions_own_with_the_same_outputs() {
        let g = padded_conv(vec![(1, 2), (2, 0), (0, 0)], 0.0);
        let fused = crate::passes::optimize(g.clone());
        let [node] = fused.nodes.as_slice() else {
            panic!("not fused: {:#?}", fused.nodes);
        };
        let Op::Conv { window, .. } = &node.op else {
            panic!("{:?}", node.op);
        };
        assert_eq!(window.padding, [(1, 3), (2, 1)]);
        assert_eq!(node.inputs, [fused.inputs[0].tensor]);
        assert_eq!(bits(&g), bits(&fused));
    }

    #[test]
    fn paddings_of_other_values_stay() {
        for (padding, value) in [
            (vec![(1, 1), (1, 1), (0, 0)], 1.0),
            (vec![(1, 1), (1, 1), (0, 0)], -0.0),
        ] {
            let fused = crate::passes::optimize(padded_conv(padding, value));
            assert_eq!(fused.nodes.len(), 2, "{value} {:?}", fused.nodes[0].op);
        }
    }
}
