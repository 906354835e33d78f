//! Hand-built graphs through both backends, compiled and compared with the interpreter.

mod common;

use common::{close, run_cpp, run_rust, Case};
use keras2src::ir::{Activation, AxisFn, Graph, InputDtype, Op, Weights};
use keras2src::{interp, Model};

/// Deterministic pseudo-random values in [-1, 1).
fn values(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn dense(seed: u64, n_in: usize, units: usize, activation: Activation) -> Op {
    Op::Dense {
        kernel: Weights::new(vec![n_in, units], values(seed, n_in * units)).unwrap(),
        bias: Some(Weights::new(vec![units], values(seed + 1, units)).unwrap()),
        activation,
    }
}

fn models() -> Vec<(String, Graph)> {
    let mut out = Vec::new();
    // Dense chain with a foldable BatchNorm, a standalone activation and softmax.
    let mut g = Graph::default();
    let x = g.add_input("in", vec![6], InputDtype::F32).unwrap();
    let x = g
        .add_node(
            "d1",
            "Dense",
            dense(1, 6, 8, Activation::Linear),
            vec![x],
            56,
        )
        .unwrap();
    let bn = Op::Affine {
        center: None,
        scale: values(3, 8),
        shift: values(4, 8),
        inner: 1,
    };
    let x = g
        .add_node("bn", "BatchNormalization", bn, vec![x], 32)
        .unwrap();
    let x = g
        .add_node(
            "act",
            "Activation",
            Op::Activation(Activation::Gelu { approximate: false }),
            vec![x],
            0,
        )
        .unwrap();
    let x = g
        .add_node(
            "d2",
            "Dense",
            dense(
                5,
                8,
                5,
                Activation::Axis {
                    func: AxisFn::Softmax,
                    axis: 0,
                },
            ),
            vec![x],
            45,
        )
        .unwrap();
    g.add_output("d2", x);
    out.push(("chain".to_string(), g));

    // 3-D tensors: Dense per row, PReLU with shared axis, sparsemax and glu on axis 0.
    let mut g = Graph::default();
    let x = g.add_input("in", vec![4, 6], InputDtype::F32).unwrap();
    let x = g
        .add_node(
            "d",
            "Dense",
            dense(7, 6, 6, Activation::Linear),
            vec![x],
            42,
        )
        .unwrap();
    let alpha = Weights::new(vec![1, 6], values(8, 6)).unwrap();
    let x = g
        .add_node("p", "PReLU", Op::PRelu { alpha }, vec![x], 6)
        .unwrap();
    let x = g
        .add_node(
            "s",
            "Activation",
            Op::Activation(Activation::Axis {
                func: AxisFn::Sparsemax,
                axis: 0,
            }),
            vec![x],
            0,
        )
        .unwrap();
    let x = g
        .add_node(
            "g",
            "Activation",
            Op::Activation(Activation::Axis {
                func: AxisFn::Glu,
                axis: 0,
            }),
            vec![x],
            0,
        )
        .unwrap();
    let x = g
        .add_node("f", "Flatten", Op::Reshape { target: vec![-1] }, vec![x], 0)
        .unwrap();
    g.add_output("f", x);
    out.push(("rows".to_string(), g));

    // Two inputs, two outputs (in swapped order), a reshape as an output, a name that
    // tries to break out of a comment.
    let mut g = Graph::default();
    let a = g.add_input("a */ evil", vec![3], InputDtype::F32).unwrap();
    let b = g.add_input("b", vec![4], InputDtype::F32).unwrap();
    let ya = g
        .add_node("fn", "Dense", dense(9, 3, 2, Activation::Tanh), vec![a], 8)
        .unwrap();
    let yb = g
        .add_node(
            "d\nb",
            "Dense",
            dense(11, 4, 4, Activation::relu()),
            vec![b],
            20,
        )
        .unwrap();
    let yb = g
        .add_node(
            "r",
            "Reshape",
            Op::Reshape { target: vec![2, 2] },
            vec![yb],
            0,
        )
        .unwrap();
    g.add_output("r", yb);
    g.add_output("fn", ya);
    out.push(("two_io".to_string(), g));
    out
}

#[test]
fn generated_code_matches_interpreter() {
    let dir = common::work_dir("backends");
    let cases: Vec<Case> = models()
        .into_iter()
        .enumerate()
        .map(|(i, (ident, graph))| {
            let samples = (0..3)
                .map(|s| {
                    graph
                        .inputs
                        .iter()
                        .enumerate()
                        .map(|(k, inp)| {
                            values(
                                100 * i as u64 + 10 * s + k as u64,
                                keras2src::ir::numel(graph.shape(inp.tensor)),
                            )
                            .iter()
                            .map(|v| v * 3.0)
                            .collect()
                        })
                        .collect()
                })
                .collect();
            Case {
                ident,
                model: Model {
                    graph,
                    sha256: vec!["0".into()],
                },
                samples,
            }
        })
        .collect();
    let rust = run_rust(&cases, &dir.path);
    let cpp = run_cpp(&cases, &dir.path);
    for (c, case) in cases.iter().enumerate() {
        for (s, sample) in case.samples.iter().enumerate() {
            let values = interp::run(&case.model.graph, sample).unwrap();
            let want = interp::outputs(&case.model.graph, &values);
            assert_eq!(rust[c][s].len(), want.len(), "{}: output count", case.ident);
            for (k, w) in want.iter().enumerate() {
                assert_eq!(rust[c][s][k].len(), w.len());
                for (i, (&g, &w)) in rust[c][s][k].iter().zip(w).enumerate() {
                    assert!(
                        close(g, w),
                        "{} sample {s} output {k}[{i}]: rust {g}, interpreter {w}",
                        case.ident
                    );
                }
                for (&r, &cc) in rust[c][s][k].iter().zip(&cpp[c][s][k]) {
                    assert!(
                        r.to_bits() == cc.to_bits() || (r.is_nan() && cc.is_nan()),
                        "{}: rust {r} != c++ {cc}",
                        case.ident
                    );
                }
            }
        }
    }
}
