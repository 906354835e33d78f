//! Hand-built graphs through both backends, compiled and compared with the interpreter.

mod common;

use common::{close, run_both, Case};
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
        rescale: None,
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

    // Register-blocked products: two full tiles of 64 outputs and a ragged one, a Dense
    // without bias with 4 partial sums written out, one output per row (vectorised over
    // the inputs), rows of a 3-D input.
    let mut g = Graph::default();
    let x = g.add_input("in", vec![3, 37], InputDtype::F32).unwrap();
    let x = g
        .add_node(
            "wide",
            "Dense",
            dense(11, 37, 150, Activation::Sigmoid),
            vec![x],
            5700,
        )
        .unwrap();
    let no_bias = Op::Dense {
        kernel: Weights::new(vec![150, 16], values(13, 2400)).unwrap(),
        bias: None,
        rescale: None,
        activation: Activation::Linear,
    };
    let x = g
        .add_node("no_bias", "Dense", no_bias, vec![x], 2400)
        .unwrap();
    let x = g
        .add_node(
            "one",
            "Dense",
            dense(15, 16, 1, Activation::Tanh),
            vec![x],
            17,
        )
        .unwrap();
    g.add_output("one", x);
    out.push(("tiles".to_string(), g));

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

    // Convolutions, pooling and the reshaping ops, padded and strided.
    let mut g = Graph::default();
    let x = g.add_input("img", vec![7, 6, 3], InputDtype::F32).unwrap();
    let window = |size: Vec<usize>,
                  strides: Vec<usize>,
                  dilation: Vec<usize>,
                  padding: Vec<(usize, usize)>| {
        keras2src::ir::Window {
            size,
            strides,
            dilation,
            padding,
        }
    };
    let conv = Op::Conv {
        kernel: Weights::new(vec![3, 3, 3, 4], values(20, 108)).unwrap(),
        bias: Some(Weights::new(vec![4], values(21, 4)).unwrap()),
        window: window(vec![3, 3], vec![2, 1], vec![1, 1], vec![(1, 1), (1, 1)]),
        groups: 1,
        rescale: None,
        activation: Activation::relu(),
    };
    let x = g.add_node("conv", "Conv2D", conv, vec![x], 112).unwrap();
    let depthwise = Op::Conv {
        kernel: Weights::new(vec![2, 2, 1, 8], values(22, 32)).unwrap(),
        bias: None,
        window: window(vec![2, 2], vec![1, 1], vec![1, 2], vec![(0, 1), (1, 1)]),
        groups: 4,
        rescale: None,
        activation: Activation::Tanh,
    };
    let x = g
        .add_node("dw", "DepthwiseConv2D", depthwise, vec![x], 32)
        .unwrap();
    let pool = Op::Pool {
        kind: keras2src::ir::PoolKind::Average,
        window: window(vec![3, 2], vec![2, 2], vec![1, 1], vec![(1, 1), (0, 1)]),
    };
    let x = g
        .add_node("avg", "AveragePooling2D", pool, vec![x], 0)
        .unwrap();
    let pool = Op::Pool {
        kind: keras2src::ir::PoolKind::Max,
        window: window(vec![2, 2], vec![1, 1], vec![1, 1], vec![(0, 1), (0, 1)]),
    };
    let x = g.add_node("max", "MaxPooling2D", pool, vec![x], 0).unwrap();
    let transpose = Op::ConvTranspose {
        kernel: Weights::new(vec![3, 2, 5, 8], values(23, 240)).unwrap(),
        bias: Some(Weights::new(vec![5], values(24, 5)).unwrap()),
        strides: vec![2, 1],
        dilation: vec![1, 1],
        crop: vec![1, 0],
        output: vec![4, 3],
        activation: Activation::Linear,
    };
    let x = g
        .add_node("deconv", "Conv2DTranspose", transpose, vec![x], 245)
        .unwrap();
    let x = g
        .add_node(
            "pad",
            "ZeroPadding2D",
            Op::Pad {
                padding: vec![(1, 0), (2, 1), (0, 0)],
                value: 0.0,
            },
            vec![x],
            0,
        )
        .unwrap();
    let x = g
        .add_node(
            "crop",
            "Cropping2D",
            Op::Slice {
                begin: vec![1, 0, 1],
                end: vec![5, 5, 4],
                step: vec![1, 1, 1],
            },
            vec![x],
            0,
        )
        .unwrap();
    let x = g
        .add_node(
            "perm",
            "Permute",
            Op::Transpose {
                perm: vec![1, 0, 2],
            },
            vec![x],
            0,
        )
        .unwrap();
    let x = g
        .add_node(
            "up",
            "UpSampling2D",
            Op::Upsample {
                factors: vec![2, 3],
                bilinear: false,
            },
            vec![x],
            0,
        )
        .unwrap();
    let x = g
        .add_node(
            "gap",
            "GlobalAveragePooling2D",
            Op::GlobalPool {
                kind: keras2src::ir::PoolKind::Average,
            },
            vec![x],
            0,
        )
        .unwrap();
    g.add_output("gap", x);
    out.push(("conv".to_string(), g));

    // Merges with broadcasting, concatenation, dot, repeat, global max.
    let mut g = Graph::default();
    let a = g.add_input("a", vec![4, 3], InputDtype::F32).unwrap();
    let b = g.add_input("b", vec![1, 3], InputDtype::F32).unwrap();
    let c = g.add_input("c", vec![4, 1], InputDtype::F32).unwrap();
    use keras2src::ir::MergeKind::*;
    let mut merged = Vec::new();
    for (i, kind) in [Add, Subtract, Multiply, Average, Maximum, Minimum]
        .into_iter()
        .enumerate()
    {
        let inputs = if kind == Subtract {
            vec![a, b]
        } else {
            vec![a, b, c]
        };
        merged.push(
            g.add_node(&format!("m{i}"), "Merge", Op::Merge { kind }, inputs, 0)
                .unwrap(),
        );
    }
    let cat = g
        .add_node(
            "cat",
            "Concatenate",
            Op::Concat { axis: 1 },
            merged.clone(),
            0,
        )
        .unwrap();
    let cat0 = g
        .add_node(
            "cat0",
            "Concatenate",
            Op::Concat { axis: 0 },
            vec![merged[0], merged[1]],
            0,
        )
        .unwrap();
    let dot = g
        .add_node(
            "dot",
            "Dot",
            Op::Dot {
                axes: (1, 1),
                normalize: None,
            },
            vec![cat0, merged[0]],
            0,
        )
        .unwrap();
    let flat = g
        .add_node(
            "flat",
            "Flatten",
            Op::Reshape { target: vec![-1] },
            vec![dot],
            0,
        )
        .unwrap();
    let gmax = g
        .add_node(
            "gmax",
            "GlobalMaxPooling1D",
            Op::GlobalPool {
                kind: keras2src::ir::PoolKind::Max,
            },
            vec![cat],
            0,
        )
        .unwrap();
    let rep = g
        .add_node(
            "rep",
            "RepeatVector",
            Op::Repeat { times: 2 },
            vec![gmax],
            0,
        )
        .unwrap();
    g.add_output("flat", flat);
    g.add_output("rep", rep);
    out.push(("merges".to_string(), g));

    // Attention products, including loops that run once (batch 1, one row, one column).
    let mut g = Graph::default();
    let a = g.add_input("a", vec![2, 3, 4], InputDtype::F32).unwrap();
    let b = g.add_input("b", vec![2, 4, 5], InputDtype::F32).unwrap();
    let r = g.add_input("r", vec![1, 4], InputDtype::F32).unwrap();
    let c = g.add_input("c", vec![4, 1], InputDtype::F32).unwrap();
    let mm = g
        .add_node("mm", "MatMul", Op::MatMul, vec![a, b], 0)
        .unwrap();
    let one = g
        .add_node("one", "MatMul", Op::MatMul, vec![r, c], 0)
        .unwrap();
    let scored = g
        .add_node(
            "scored",
            "AdditiveAttention",
            Op::AdditiveScore {
                pre: Some(0.7),
                scale: Some(values(11, 4)),
                post: Some(-1.3),
            },
            vec![a, b],
            0,
        )
        .unwrap();
    let plain = g
        .add_node(
            "plain",
            "AdditiveAttention",
            Op::AdditiveScore {
                pre: None,
                scale: None,
                post: None,
            },
            vec![r, c],
            0,
        )
        .unwrap();
    let mut masked = Vec::new();
    for (k, (scores, scale, causal, window)) in [
        (mm, Some(0.5), true, None),
        (mm, None, false, Some(2)),
        (scored, Some(-1.5), true, Some(3)),
        (one, None, true, Some(1)),
        (plain, None, false, None),
    ]
    .into_iter()
    .enumerate()
    {
        let op = Op::AttentionSoftmax {
            scale,
            causal,
            window,
        };
        masked.push(
            g.add_node(
                &format!("mask{k}"),
                "MultiHeadAttention",
                op,
                vec![scores],
                0,
            )
            .unwrap(),
        );
    }
    for (k, &m) in masked.iter().enumerate() {
        g.add_output(&format!("mask{k}"), m);
    }
    g.add_output("mm", mm);
    g.add_output("one", one);
    g.add_output("scored", scored);
    g.add_output("plain", plain);
    out.push(("attention_products".to_string(), g));

    // Resizes by any factor, adaptive pooling (ragged windows), padding with a value.
    use keras2src::ir::{PoolKind, ResizeMethod};
    let mut g = Graph::default();
    let x = g.add_input("img", vec![5, 4, 2], InputDtype::F32).unwrap();
    let seq = g.add_input("seq", vec![6, 3], InputDtype::F32).unwrap();
    let vol = g
        .add_input("vol", vec![3, 4, 5, 1], InputDtype::F32)
        .unwrap();
    let resample = [
        (
            x,
            "bilinear",
            Op::Resize {
                size: vec![3, 7],
                method: ResizeMethod::Bilinear,
            },
        ),
        (
            x,
            "nearest",
            Op::Resize {
                size: vec![1, 9],
                method: ResizeMethod::Nearest,
            },
        ),
        (
            seq,
            "bilinear_1d",
            Op::Resize {
                size: vec![4],
                method: ResizeMethod::Bilinear,
            },
        ),
        (
            x,
            "max",
            Op::AdaptivePool {
                kind: PoolKind::Max,
                output: vec![3, 3],
            },
        ),
        (
            x,
            "avg",
            Op::AdaptivePool {
                kind: PoolKind::Average,
                output: vec![2, 1],
            },
        ),
        (
            seq,
            "avg_1d",
            Op::AdaptivePool {
                kind: PoolKind::Average,
                output: vec![9],
            },
        ),
        (
            vol,
            "max_3d",
            Op::AdaptivePool {
                kind: PoolKind::Max,
                output: vec![2, 3, 1],
            },
        ),
        (
            x,
            "pad",
            Op::Pad {
                padding: vec![(1, 0), (0, 2), (0, 0)],
                value: -0.5,
            },
        ),
    ];
    for (input, name, op) in resample {
        let y = g.add_node(name, "Resizing", op, vec![input], 0).unwrap();
        g.add_output(name, y);
    }
    out.push(("resample".to_string(), g));
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
                weights: keras2src::WeightsPlacement::Inline,
                ident,
                model: Model {
                    graph,
                    sha256: vec!["0".into()],
                    path: "test".into(),
                    config: None,
                    input_shapes: Vec::new(),
                },
                samples,
            }
        })
        .collect();
    let (rust, cpp) = run_both(&cases, &dir.path);
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

/// Every elementwise and axis activation the IR has.
fn all_activations(axis: usize) -> Vec<Activation> {
    use Activation::*;
    let mut acts = vec![
        Linear,
        Activation::relu(),
        Relu {
            negative_slope: 0.1,
            max_value: Some(2.5),
            threshold: 0.3,
        },
        Relu {
            negative_slope: 0.2,
            max_value: None,
            threshold: 0.0,
        },
        Relu {
            negative_slope: 0.0,
            max_value: Some(6.0),
            threshold: 0.0,
        },
        Sigmoid,
        HardSigmoid { slope: 0.2 },
        HardSigmoid { slope: 1.0 / 6.0 },
        Tanh,
        Elu { alpha: 0.7 },
        Selu,
        Celu { alpha: 1.3 },
        Gelu { approximate: false },
        Gelu { approximate: true },
        Softplus,
        Softsign,
        Silu,
        HardSilu,
        Mish,
        Exponential,
        LogSigmoid,
        HardTanh,
        TanhShrink,
        Squareplus { b: 4.0 },
        SparsePlus,
        SoftShrink { threshold: 0.5 },
        HardShrink { threshold: 0.5 },
        SparseSigmoid,
    ];
    for func in [AxisFn::Softmax, AxisFn::LogSoftmax, AxisFn::Sparsemax] {
        acts.push(Axis { func, axis });
    }
    acts
}

/// Random chains of ops over random shapes: the generated code must agree with the
/// interpreter on each (a small fixed number here; the property holds for any seed).
#[test]
fn random_graphs_agree_with_interpreter() {
    let mut cases = Vec::new();
    for seed in 0..12u64 {
        let r = values(1000 + seed, 16);
        let pick = |i: usize, n: usize| ((r[i] + 1.0) / 2.0 * n as f32) as usize % n;
        let mut shape = vec![2 + pick(0, 4)];
        if pick(1, 2) == 1 {
            shape.insert(0, 1 + pick(2, 3));
        }
        let mut g = Graph::default();
        let mut x = g.add_input("x", shape.clone(), InputDtype::F32).unwrap();
        for step in 0..6 {
            let shape = g.shape(x).to_vec();
            let last = *shape.last().unwrap();
            let acts = all_activations(pick(3 + step, shape.len()));
            let act = acts[(seed as usize * 7 + step * 5) % acts.len()].clone();
            let op = match (seed as usize + step) % 5 {
                0 | 1 => dense(seed * 10 + step as u64, last, 2 + pick(step, 5), act),
                2 => Op::Activation(act),
                3 => {
                    let channel = pick(step + 2, shape.len());
                    let inner = keras2src::ir::numel(&shape[channel + 1..]);
                    let n = shape[channel];
                    Op::Affine {
                        center: (step % 2 == 0).then(|| values(seed + 40, n)),
                        scale: values(seed + 41, n),
                        shift: values(seed + 42, n),
                        inner,
                    }
                }
                _ => {
                    let mut a_shape = shape.clone();
                    a_shape[0] = 1;
                    let n = keras2src::ir::numel(&a_shape);
                    Op::PRelu {
                        alpha: Weights::new(a_shape, values(seed + 50, n)).unwrap(),
                    }
                }
            };
            x = g
                .add_node(&format!("layer {step}"), "Random", op, vec![x], 0)
                .unwrap();
        }
        g.add_output("y", x);
        let n = keras2src::ir::numel(&shape);
        let samples = (0..2)
            .map(|s| vec![values(seed * 3 + s, n).iter().map(|v| v * 4.0).collect()])
            .collect();
        cases.push(Case {
            ident: format!("random_{seed}"),
            model: Model {
                graph: g,
                sha256: vec!["0".into()],
                path: "test".into(),
                config: None,
                input_shapes: Vec::new(),
            },
            samples,
            weights: keras2src::WeightsPlacement::File,
        });
    }
    let dir = common::work_dir("random");
    let (rust, cpp) = run_both(&cases, &dir.path);
    for (c, case) in cases.iter().enumerate() {
        for (s, sample) in case.samples.iter().enumerate() {
            let values = interp::run(&case.model.graph, sample).unwrap();
            let want = &interp::outputs(&case.model.graph, &values)[0];
            for (i, (&g, &w)) in rust[c][s][0].iter().zip(want).enumerate() {
                assert!(
                    close(g, w),
                    "{} sample {s} [{i}]: rust {g}, interpreter {w}",
                    case.ident
                );
            }
            assert_eq!(rust[c][s][0].len(), want.len());
            for (&r, &cc) in rust[c][s][0].iter().zip(&cpp[c][s][0]) {
                assert!(
                    r.to_bits() == cc.to_bits() || (r.is_nan() && cc.is_nan()),
                    "{}: rust {r} != c++ {cc}",
                    case.ident
                );
            }
        }
    }
}
