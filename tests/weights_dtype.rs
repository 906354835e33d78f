//! `--weights-dtype f16|int8` (kernels stored compressed, computed in f32): committed
//! fixtures generated with each dtype in Rust, C++ and C (weights inline and in a file),
//! compiled, run, and compared with the interpreter running the same compressed kernels
//! ([`Model::dequantized`]), within the bound the f32 code meets against Keras (not bit for
//! bit: the interpreter sums in its own order, as for f32). Their error against Keras's
//! float outputs is measured and printed (`cargo test --release --test weights_dtype --
//! --nocapture`): non-zero (the kernels were compressed) and small.

mod common;

use std::path::{Path, PathBuf};

use common::{close, io_samples, run_both_stored, Case};
use keras2src::{interp, Model, WeightsDtype, WeightsPlacement};
use serde_json::{json, Value};

/// Fixtures covering every compressed kernel: Dense, recurrent (LSTM, GRU, SimpleRNN),
/// convolution (blocked, grouped, depthwise, separable, fused with max pooling, transposed
/// 1D and 2D), EinsumDense, attention, a layer shared between call sites.
const MODELS: &[&str] = &[
    "seed",
    "bench_cnn",
    "bench_lstm",
    "conv2d_transpose",
    "conv2d_groups",
    "depthwise_conv2d",
    "conv_pool_fused",
    "gru_reset_before",
    "einsum_dense_dense",
    // One Conv2D called at two sites: its compressed kernel and scales stored once.
    "shared_conv",
    "separable_conv2d",
    "conv1d_transpose",
    "simple_rnn",
    "mha_self",
    "transformer_block",
];

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models")
}

/// Values per sample, per port.
type Samples = Vec<Vec<Vec<f32>>>;

/// The model and its Keras samples: inputs and outputs.
fn fixture(name: &str) -> (Model, Samples, Samples) {
    let dir = models_dir();
    let model = Model::load(&dir.join(format!("{name}.keras")), None).unwrap();
    let io: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(format!("{name}.io.json"))).unwrap(),
    )
    .unwrap();
    (model, io_samples(&io, "inputs"), io_samples(&io, "outputs"))
}

/// Largest |a - b| over every value.
fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    a.iter()
        .flatten()
        .zip(b.iter().flatten())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Runs the interpreter on `graph`: outputs per sample.
fn interpret(graph: &keras2src::ir::Graph, samples: &[Vec<Vec<f32>>]) -> Samples {
    samples
        .iter()
        .map(|s| interp::outputs(graph, &interp::run(graph, s).unwrap()))
        .collect()
}

/// Checks every language's outputs against the compressed interpreter's; the mismatches.
fn mismatches(
    ident: &str,
    want: &[Vec<Vec<f32>>],
    rust: &[Vec<Vec<f32>>],
    cpp: &[Vec<Vec<f32>>],
) -> Vec<String> {
    let mut bad = Vec::new();
    for (lang, got) in [("Rust", rust), ("C++ and C", cpp)] {
        for (s, (got, want)) in got.iter().zip(want).enumerate() {
            let values = got.iter().flatten().zip(want.iter().flatten());
            if let Some((g, w)) = values.clone().find(|(g, w)| !close(**g, **w)) {
                bad.push(format!(
                    "{ident} {lang} sample {s}: got {g}, interpreter {w}"
                ));
            }
            assert_eq!(values.count(), want.iter().flatten().count());
        }
    }
    bad
}

#[test]
fn compressed_kernels_compute_what_the_interpreter_computes_in_every_language() {
    for dtype in [WeightsDtype::F16, WeightsDtype::Int8] {
        let mut cases = Vec::new();
        let mut expected = Vec::new();
        for (n, name) in MODELS.iter().enumerate() {
            let (model, inputs, keras) = fixture(name);
            let compressed = model.dequantized(dtype).unwrap();
            let want = interpret(&compressed, &inputs);
            let float = interpret(&model.optimized(), &inputs);
            expected.push((want, float, keras));
            cases.push(Case {
                ident: format!("{name}_{}", dtype.as_str()),
                model,
                samples: inputs,
                // Half inline, half in a weights file.
                weights: if n % 2 == 0 {
                    WeightsPlacement::Inline
                } else {
                    WeightsPlacement::File
                },
            });
        }
        let dir = common::work_dir(&format!("weights-{}", dtype.as_str()));
        let (rust, cpp) = run_both_stored(&cases, &dir.path, dtype);
        if common::have_clang() {
            // The C headers (with `half`, the int8 casts) under clang -Weverything.
            let idents: Vec<&str> = cases.iter().map(|c| c.ident.as_str()).collect();
            common::clang_checks_c(&dir.path, &idents, false);
        }
        let mut bad = Vec::new();
        println!(
            "--weights-dtype {}: max |error| against Keras (against the f32 interpreter), \
             largest |output|",
            dtype.as_str()
        );
        for (k, (want, float, keras)) in expected.iter().enumerate() {
            let ident = &cases[k].ident;
            bad.extend(mismatches(ident, want, &rust[k], &cpp[k]));
            let per_sample = |a: &[Vec<Vec<f32>>], b: &[Vec<Vec<f32>>]| {
                a.iter()
                    .zip(b)
                    .map(|(a, b)| max_diff(a, b))
                    .fold(0.0, f32::max)
            };
            let (vs_keras, vs_float) = (per_sample(want, keras), per_sample(want, float));
            let magnitude = keras
                .iter()
                .flatten()
                .flatten()
                .fold(0f32, |m, v| m.max(v.abs()));
            println!("  {ident}: {vs_keras:.2e} ({vs_float:.2e}), {magnitude:.2e}");
            // Compressed for real, and close: a weight moves by at most 2^-11 of itself
            // (f16) or 1/254 of its channel's largest (int8).
            let bound = match dtype {
                WeightsDtype::F16 => 2e-3,
                WeightsDtype::Int8 => 3e-2,
                WeightsDtype::F32 | WeightsDtype::Q8 | WeightsDtype::I32 => 0.0,
            } * (1.0 + magnitude);
            assert!(vs_float > 0.0, "{ident}: no difference from the f32 model");
            assert!(
                vs_keras <= bound,
                "{ident}: error {vs_keras} against Keras, above {bound}"
            );
        }
        assert!(bad.is_empty(), "{}", bad.join("\n"));
    }
}

/// `layers` Dense layers of 8 units (tanh), as an interchange document: more layers than
/// [`keras2src::backend::INLINE_LAYERS_MAX`], so layer functions take their weights (the
/// int8 scales too) as parameters and share one function.
fn chain(layers: usize) -> Value {
    let mut seed = 7u64;
    let mut values = |n: usize| -> Vec<f32> {
        (0..n)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 1.2
            })
            .collect()
    };
    let mut config = vec![json!({"class_name": "InputLayer", "config": {
        "batch_shape": [null, 8], "dtype": "float32", "name": "input"}})];
    let mut weights = serde_json::Map::new();
    for i in 0..layers {
        let name = format!("dense{i}");
        config.push(json!({"class_name": "Dense", "config": {
            "name": name, "units": 8, "activation": "tanh", "use_bias": true}}));
        weights.insert(
            name,
            json!([{"shape": [8, 8], "data": values(64)}, {"shape": [8], "data": values(8)}]),
        );
    }
    json!({"format": "keras2src", "version": 1, "keras_version": "3.10.0",
        "model": {"class_name": "Sequential", "config": {"name": "chain", "layers": config}},
        "weights": weights})
}

#[test]
fn compressed_kernels_pass_as_parameters_above_the_inline_limit() {
    let dir = common::work_dir("weights-dtype-chain");
    let path = dir.path.join("chain.interchange.json");
    std::fs::write(&path, serde_json::to_string(&chain(120)).unwrap()).unwrap();
    let samples: Samples = (0..2)
        .map(|s| vec![(0..8).map(|i| ((i + s * 3) as f32 * 0.37).sin()).collect()])
        .collect();
    for dtype in [WeightsDtype::F16, WeightsDtype::Int8] {
        let model = Model::load(&path, None).unwrap();
        let want = interpret(&model.dequantized(dtype).unwrap(), &samples);
        let cases: Vec<Case> = [WeightsPlacement::Inline, WeightsPlacement::File]
            .into_iter()
            .map(|weights| Case {
                ident: format!(
                    "chain_{}_{}",
                    dtype.as_str(),
                    if weights == WeightsPlacement::File {
                        "file"
                    } else {
                        "inline"
                    }
                ),
                model: Model::load(&path, None).unwrap(),
                samples: samples.clone(),
                weights,
            })
            .collect();
        let generated = cases[0]
            .model
            .generate_with(&keras2src::Options {
                weights_dtype: dtype,
                ..keras2src::Options::new(keras2src::Lang::Rust, "chain")
            })
            .unwrap();
        assert!(generated.source.contains("#[inline(never)]"));
        let sub = dir.path.join(dtype.as_str());
        std::fs::create_dir_all(&sub).unwrap();
        let (rust, cpp) = run_both_stored(&cases, &sub, dtype);
        let bad: Vec<String> = cases
            .iter()
            .enumerate()
            .flat_map(|(k, case)| mismatches(&case.ident, &want, &rust[k], &cpp[k]))
            .collect();
        assert!(bad.is_empty(), "{}", bad.join("\n"));
    }
}

#[test]
fn flash_shrinks_by_dtype() {
    println!("weight bytes (flash): f32 / f16 / int8");
    for name in ["seed", "bench_cnn", "bench_lstm", "mobilenet_v2"] {
        let model = Model::load(&models_dir().join(format!("{name}.keras")), None).unwrap();
        let bytes = WeightsDtype::ALL.map(|d| model.flash_bytes(d).unwrap());
        assert_eq!(bytes[0], model.summary().flash_bytes);
        let [f32_, f16, int8] = bytes.map(|b| b as f64);
        println!(
            "  {name}: {} / {} ({:.3}) / {} ({:.3})",
            bytes[0],
            bytes[1],
            f16 / f32_,
            bytes[2],
            int8 / f32_
        );
        // Biases, BatchNorm's rescale and the int8 scales stay f32.
        assert!(f16 / f32_ < 0.53, "{name}: f16 {f16} of {f32_}");
        assert!(int8 / f32_ < 0.32, "{name}: int8 {int8} of {f32_}");
    }
}

#[test]
fn the_header_reports_the_accuracy_and_the_option() {
    let dir = models_dir();
    let test = keras2src::SelfTest::read(&dir.join("seed.io.json")).unwrap();
    let model = Model::load(&dir.join("seed.keras"), None).unwrap();
    for dtype in [WeightsDtype::F16, WeightsDtype::Int8] {
        for self_test in [None, Some(test.clone())] {
            let generated = model
                .generate_with(&keras2src::Options {
                    weights_dtype: dtype,
                    self_test: self_test.clone(),
                    ..keras2src::Options::new(keras2src::Lang::C, "seed")
                })
                .unwrap();
            let name = dtype.as_str();
            let head: String = generated
                .source
                .lines()
                .take(7)
                .collect::<Vec<_>>()
                .join("\n");
            assert!(head.contains(&format!("--weights-dtype {name}")), "{head}");
            // seed.io.json holds 4 samples.
            let measured = format!("kernels stored as {name}: max |error| ");
            let unmeasured = format!("kernels stored as {name}: accuracy not measured");
            let want = if self_test.is_some() {
                &measured
            } else {
                &unmeasured
            };
            assert!(head.contains(want.as_str()), "{head}");
            if self_test.is_some() {
                assert!(head.contains("on the 4 --emit-test samples"), "{head}");
                assert!(
                    head.contains("the self-test allows |got - keras| <= "),
                    "{head}"
                );
            }
            assert!(generated.notes.iter().any(|n| n.contains(want.as_str())));
        }
    }
}

#[test]
fn kernels_a_dtype_cannot_hold_are_refused_by_layer() {
    let dir = common::work_dir("weights-dtype-refused");
    let mut doc = chain(2);
    doc["weights"]["dense1"][0]["data"][5] = json!(1.0e6);
    let path = dir.path.join("big.interchange.json");
    std::fs::write(&path, serde_json::to_string(&doc).unwrap()).unwrap();
    let model = Model::load(&path, None).unwrap();
    let options = |dtype| keras2src::Options {
        weights_dtype: dtype,
        ..keras2src::Options::new(keras2src::Lang::Rust, "big")
    };
    let e = model
        .generate_with(&options(WeightsDtype::F16))
        .unwrap_err()
        .to_string();
    assert!(e.contains("dense1") && e.contains("65504"), "{e}");
    assert!(model.dequantized(WeightsDtype::F16).is_err());
    // int8 holds it (its channel's scale grows).
    model.generate_with(&options(WeightsDtype::Int8)).unwrap();
}

#[test]
fn the_command_line_takes_the_option_and_inspect_shows_flash_by_dtype() {
    let bin = env!("CARGO_BIN_EXE_keras2src");
    let model = models_dir().join("seed.keras");
    let out = std::process::Command::new(bin)
        .arg("inspect")
        .arg(&model)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("flash (weights): 17156 bytes\n")
            && text.contains("flash with --weights-dtype: f16 8772 bytes, int8 4968 bytes\n"),
        "{text}"
    );
    let dir = common::work_dir("weights-dtype-cli");
    let output = dir.path.join("seed.hpp");
    let out = std::process::Command::new(bin)
        .arg("generate")
        .arg(&model)
        .args(["--weights-dtype", "int8", "--emit-test"])
        .arg(models_dir().join("seed.io.json"))
        .arg("-o")
        .arg(&output)
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("kernels stored as int8: max |error| ")
            && stderr.contains("the self-test allows"),
        "{stderr}"
    );
    let source = std::fs::read_to_string(&output).unwrap();
    assert!(source.contains("--weights-dtype int8 --emit-test"));
    assert!(source.contains("flash 4968 bytes (weights)"));
    // `predict --weights-dtype` runs the interpreter with the same compressed kernels.
    let (model_, inputs, _) = fixture("seed");
    let input = dir.path.join("input.json");
    std::fs::write(&input, json!({"inputs": inputs[0]}).to_string()).unwrap();
    let out = std::process::Command::new(bin)
        .arg("predict")
        .arg(&model)
        .arg("--input")
        .arg(&input)
        .args(["--weights-dtype", "int8"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let want = interpret(
        &model_.dequantized(WeightsDtype::Int8).unwrap(),
        &inputs[..1],
    );
    let got: Vec<f32> = printed["outputs"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    assert_eq!(got.len(), want[0][0].len());
    assert!(got.iter().zip(&want[0][0]).all(|(g, w)| close(*g, *w)));
    let bad = std::process::Command::new(bin)
        .arg("generate")
        .arg(&model)
        .args(["--lang", "rust", "--weights-dtype", "int4"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

#[test]
fn the_self_test_passes_with_compressed_kernels() {
    let dir = common::work_dir("weights-dtype-selftest");
    let test = keras2src::SelfTest::read(&models_dir().join("bench_lstm.io.json")).unwrap();
    let model = Model::load(&models_dir().join("bench_lstm.keras"), None).unwrap();
    for dtype in [WeightsDtype::F16, WeightsDtype::Int8] {
        let generate = |lang, name: &str| {
            model
                .generate_with(&keras2src::Options {
                    weights_dtype: dtype,
                    self_test: Some(test.clone()),
                    ..keras2src::Options::new(lang, name)
                })
                .unwrap()
        };
        common::self_tests_pass(&dir.path, &format!("lstm_{}", dtype.as_str()), generate);
    }
}
