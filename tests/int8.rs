//! Full int8 (`--quantize int8`): committed fixtures quantized with their committed
//! calibration sets (`NAME.calib.json`), generated in Rust, C++ and C, compiled, run on the
//! check samples of `NAME.int8.json`, and compared bit for bit with the quantized
//! interpreter (integer arithmetic is exact; the float layers around it are the f32 code's,
//! within the f32 bound). The accuracy against the f32 model, Keras and TFLite's int8
//! converter is printed side by side (`cargo test --release --test int8 -- --nocapture`).

mod common;

use std::path::{Path, PathBuf};

use common::{close, run_both_as, Case, Variant};
use keras2src::ir::int8::quantize;
use keras2src::passes::quantize::port_params;
use keras2src::{interp, Model, Quantization, WeightsDtype, WeightsPlacement};
use serde_json::Value;

/// A Dense MLP, a CNN (convolutions, max pooling), an LSTM (float) with an int8 head, and
/// MobileNetV2 (depthwise and pointwise convolutions, ReLU6, residual Adds, global average
/// pooling, softmax in float).
const MODELS: &[&str] = &["seed", "bench_cnn", "bench_lstm", "mobilenet_v2"];

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models")
}

type Samples = Vec<Vec<Vec<f32>>>;

struct Fixture {
    name: &'static str,
    model: Model,
    calibration: Samples,
    /// The check samples (one input each) and TFLite's report on them.
    check: Samples,
    report: Value,
}

fn fixture(name: &'static str) -> Fixture {
    let dir = models_dir();
    let model = Model::load(&dir.join(format!("{name}.keras")), None).unwrap();
    let shapes = model.input_port_shapes();
    let calibration =
        keras2src::samples::read_samples(&dir.join(format!("{name}.calib.json")), &shapes).unwrap();
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(format!("{name}.int8.json"))).unwrap(),
    )
    .unwrap();
    let check = report["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| vec![floats(s)])
        .collect();
    Fixture {
        name,
        model,
        calibration,
        check,
        report,
    }
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn quantization(f: &Fixture, int8_io: bool) -> Quantization {
    Quantization {
        calibration: f.calibration.clone(),
        check: f.check.clone(),
        int8_io,
    }
}

fn interpret(graph: &keras2src::ir::Graph, samples: &[Vec<Vec<f32>>]) -> Samples {
    samples
        .iter()
        .map(|s| interp::outputs(graph, &interp::run(graph, s).unwrap()))
        .collect()
}

/// The samples as the int8 ports of `graph` take them.
fn quantized_inputs(graph: &keras2src::ir::Graph, samples: &[Vec<Vec<f32>>]) -> Samples {
    let params: Vec<_> = (graph.inputs.iter())
        .map(|i| port_params(graph, i.tensor).expect("an int8 input has parameters"))
        .collect();
    samples
        .iter()
        .map(|s| {
            s.iter()
                .zip(&params)
                .map(|(v, &q)| v.iter().map(|&x| quantize(x, q) as f32).collect())
                .collect()
        })
        .collect()
}

/// Every language against the quantized interpreter: int8 values exactly, float outputs
/// (after a float layer such as softmax) within the f32 bound.
#[test]
fn generated_int8_code_matches_the_quantized_interpreter() {
    let fixtures: Vec<Fixture> = MODELS.iter().map(|n| fixture(n)).collect();
    let dir = common::work_dir("int8");
    let mut cases = Vec::new();
    let mut quantizations = Vec::new();
    let mut want = Vec::new();
    let mut exact = Vec::new();
    for f in &fixtures {
        // float ports, and int8 ports (--int8-io) for the MLP and the CNN (the LSTM's
        // input is a float layer's; MobileNetV2's ports add nothing but compile time).
        for int8_io in [false, true] {
            if int8_io && !["seed", "bench_cnn"].contains(&f.name) {
                continue;
            }
            let q = quantization(f, int8_io);
            let graph = f.model.quantized(&q).unwrap().graph;
            let samples = if int8_io {
                quantized_inputs(&graph, &f.check)
            } else {
                f.check.clone()
            };
            want.push(interpret(&graph, &samples));
            // Exact where the outputs are int8 or dequantized int8; a float layer after
            // the last int8 one (softmax) is the f32 code's, within its bound.
            exact.push(graph.outputs.iter().all(|o| {
                let producer = graph.producer(o.tensor).map(|n| &graph.nodes[n].op);
                int8_io || matches!(producer, Some(keras2src::ir::Op::Int8(_)))
            }));
            cases.push(Case {
                ident: format!("{}{}", f.name, if int8_io { "_io" } else { "" }),
                model: f.model.clone(),
                samples,
                weights: WeightsPlacement::Inline,
            });
            quantizations.push(q);
        }
    }
    let variant = Variant {
        dtype: WeightsDtype::F32,
        quantize: &quantizations,
        tune: keras2src::Tune::Host,
        dispatch: false,
    };
    let (rust, cpp) = run_both_as(&cases, &dir.path, variant);
    // C tuned for a core without SIMD: four filters at a time (`dot4_i8`, here its
    // portable loops; tests/firmware.rs runs its DSP form on the Cortex-M4, MobileNetV2
    // included, which is left out here for the test's time).
    let small: Vec<usize> = (0..cases.len())
        .filter(|&c| !cases[c].ident.starts_with("mobilenet"))
        .collect();
    let mcu_cases: Vec<Case> = (small.iter().map(|&c| &cases[c]))
        .map(|c| Case {
            ident: c.ident.clone(),
            model: c.model.clone(),
            samples: c.samples.clone(),
            weights: c.weights,
        })
        .collect();
    let mcu_quantizations: Vec<_> = small.iter().map(|&c| quantizations[c].clone()).collect();
    let mcu_dir = common::work_dir("int8-mcu");
    let mcu = common::run_c_as(
        &mcu_cases,
        &mcu_dir.path,
        Variant {
            tune: keras2src::Tune::Mcu,
            quantize: &mcu_quantizations,
            ..variant
        },
    );
    let mut bad = Vec::new();
    for (c, case) in cases.iter().enumerate() {
        let mcu = small
            .iter()
            .position(|&k| k == c)
            .map(|k| ("C --tune mcu", &mcu[k]));
        for (lang, got) in [("Rust", &rust[c]), ("C++", &cpp[c])]
            .into_iter()
            .chain(mcu)
        {
            for (s, (got, want)) in got.iter().zip(&want[c]).enumerate() {
                let same = got
                    .iter()
                    .flatten()
                    .zip(want.iter().flatten())
                    .all(|(g, w)| g.to_bits() == w.to_bits() || (!exact[c] && close(*g, *w)));
                if !same || got.len() != want.len() {
                    bad.push(format!(
                        "{lang} {} sample {s}: {got:?} vs {want:?}",
                        case.ident
                    ));
                }
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// Our int8 model and TFLite's (the same calibration samples through its converter) on
/// the check samples, both against Keras's float outputs: printed side by side, and ours
/// no worse than TFLite's beyond a small margin (where TFLite quantized fully: its LSTM
/// converter crashes, so bench_lstm's TFLite model is dynamic-range, float activations).
#[test]
fn int8_accuracy_is_tflites() {
    println!("int8 on the check samples: max |output - keras| (top-1 agreement with Keras)");
    for name in MODELS {
        let f = fixture(name);
        let q = quantization(&f, false);
        let quantized = f.model.quantized(&q).unwrap();
        let ours = interpret(&quantized.graph, &f.check);
        let keras: Vec<Vec<f32>> = (f.report["keras"].as_array().unwrap().iter())
            .map(floats)
            .collect();
        let tflite: Vec<Vec<f32>> = (f.report["tflite_int8"].as_array().unwrap().iter())
            .map(floats)
            .collect();
        let ours: Vec<Vec<f32>> = ours.into_iter().map(|s| s.concat()).collect();
        let error = |got: &[Vec<f32>]| {
            got.iter()
                .flatten()
                .zip(keras.iter().flatten())
                .map(|(g, k)| (g - k).abs())
                .fold(0f32, f32::max)
        };
        let top1 = |got: &[Vec<f32>]| {
            let argmax = |v: &[f32]| (0..v.len()).fold(0, |b, k| if v[k] > v[b] { k } else { b });
            let agree = got
                .iter()
                .zip(&keras)
                .filter(|(g, k)| argmax(g) == argmax(k));
            agree.count() as f32 / keras.len() as f32
        };
        let classes = keras[0].len() > 1;
        let (e_ours, e_tflite) = (error(&ours), error(&tflite));
        let mode = f.report["tflite_mode"].as_str().unwrap();
        if classes {
            println!(
                "  {name}: ours {e_ours:.4} ({:.0}%), TFLite {mode} {e_tflite:.4} ({:.0}%), {} samples",
                100.0 * top1(&ours),
                100.0 * top1(&tflite),
                keras.len()
            );
        } else {
            println!(
                "  {name}: ours {e_ours:.4}, TFLite {mode} {e_tflite:.4}, {} samples",
                keras.len()
            );
        }
        // Quantized for real (not the float model) and not degenerate.
        let float = interpret(&f.model.optimized(), &f.check);
        let float: Vec<Vec<f32>> = float.into_iter().map(|s| s.concat()).collect();
        assert!(
            error(&float) < e_ours,
            "{name}: the int8 model is the f32 model"
        );
        let spread = ours.iter().flatten().fold(f32::MIN, |m, &v| m.max(v))
            - ours.iter().flatten().fold(f32::MAX, |m, &v| m.min(v));
        assert!(spread > 0.1, "{name}: int8 outputs nearly constant");
        if mode == "int8" {
            assert!(
                e_ours <= 1.25 * e_tflite + 0.02,
                "{name}: int8 error {e_ours} against Keras, TFLite's {e_tflite}"
            );
        }
    }
}

/// `--emit-test` with `--quantize int8`: the self-test expects the quantized interpreter's
/// outputs and passes, in C and Rust.
#[test]
fn the_self_test_passes_when_quantized() {
    let dir = common::work_dir("int8-selftest");
    let f = fixture("bench_cnn");
    let test = keras2src::SelfTest::read(&models_dir().join("bench_cnn.io.json")).unwrap();
    let generate = |lang, name: &str| {
        f.model
            .generate_with(&keras2src::Options {
                quantize: Some(quantization(&f, false)),
                self_test: Some(test.clone()),
                ..keras2src::Options::new(lang, name)
            })
            .unwrap()
    };
    common::self_tests_pass(&dir.path, "cnn_int8", generate);
}

/// What a quantized model cannot have is refused, saying what to drop; a layer without an
/// int8 kernel stays float (and the header says how accurate the whole is).
#[test]
fn unsupported_combinations_are_refused() {
    let f = fixture("seed");
    let refused = |options: keras2src::Options| match f.model.generate_with(&options) {
        Ok(_) => panic!("generated"),
        Err(e) => e.to_string(),
    };
    let base = || keras2src::Options {
        quantize: Some(quantization(&f, false)),
        ..keras2src::Options::new(keras2src::Lang::Rust, "m")
    };
    let e = refused(keras2src::Options {
        weights_dtype: WeightsDtype::Int8,
        ..base()
    });
    assert!(e.contains("--weights-dtype"), "{e}");
    let e = refused(keras2src::Options {
        stream: true,
        ..base()
    });
    assert!(e.contains("--stream"), "{e}");
    let test = keras2src::SelfTest::read(&models_dir().join("seed.io.json")).unwrap();
    let e = refused(keras2src::Options {
        quantize: Some(quantization(&f, true)),
        self_test: Some(test),
        ..base()
    });
    assert!(e.contains("--int8-io"), "{e}");
    // The header reports the accuracy on both sample sets.
    let source = f.model.generate_with(&base()).unwrap().source;
    let header: Vec<&str> = source.lines().take_while(|l| l.starts_with("//")).collect();
    let header = header.join("\n");
    assert!(header.contains("--quantize int8"), "{header}");
    assert!(header.contains("64 calibration samples"), "{header}");
    assert!(header.contains("32 check samples"), "{header}");
}
