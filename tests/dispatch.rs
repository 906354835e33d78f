//! Dispatch (`keras2src::backend::DISPATCH`): built by g++ or gcc on x86-64 glibc for an
//! instruction set below AVX2 (no `-march`), every layer is compiled for x86-64-v4,
//! x86-64-v3 and the build's own target, and the first call picks the best the CPU runs;
//! a layer that moves, pools or maps values (no multiply-accumulates) has one copy.
//! The other tests build one copy (`KERAS2SRC_NO_DISPATCH`, up to 2.7 times less compile time);
//! this one builds, with dispatch, fixtures that reach every kind of helper the layers call
//! (the math runtime, f16 `half`, the int8 runtime), and checks that
//! - C++ and C give the Rust outputs bit for bit: the runners are built without FMA
//!   contraction, so every copy computes the same bits, and they run the copy this CPU
//!   picks;
//! - the layers have their copies, layer normalization has not, and no helper is left
//!   out of line: a copy that called the
//!   baseline's helper would compute it one value at a time.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{io_samples, run_both_as, Case, Variant};
use keras2src::{Model, Quantization, Tune, WeightsDtype, WeightsPlacement};

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models")
}

/// The fixture `name` as case `ident`, with its Keras inputs.
fn case(name: &str, ident: &str) -> Case {
    let dir = models_dir();
    let model = Model::load(&dir.join(format!("{name}.keras")), None).unwrap();
    let io: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(format!("{name}.io.json"))).unwrap(),
    )
    .unwrap();
    Case {
        ident: ident.into(),
        model,
        samples: io_samples(&io, "inputs"),
        weights: WeightsPlacement::Inline,
    }
}

/// Whether the host is one dispatch applies to (the C and C++ compilers are GCC there).
fn dispatching_host() -> bool {
    cfg!(all(
        target_arch = "x86_64",
        target_os = "linux",
        target_env = "gnu"
    ))
}

/// The defined function symbols of the objects the runners were linked from.
fn symbols(dir: &Path) -> Vec<String> {
    let objects: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "o"))
        .collect();
    let out = Command::new("nm")
        .args(["--defined-only", "--demangle"])
        .args(&objects)
        .output()
        .expect("nm");
    assert!(out.status.success(), "nm failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|t| "tTiW".contains(t))
        })
        .filter_map(|l| l.split_once(' ').map(|(_, rest)| rest[2..].to_string()))
        .collect()
}

#[test]
fn dispatched_builds_compute_the_rust_bits_and_inline_every_helper() {
    if !dispatching_host() {
        eprintln!("skipped: dispatch applies to x86-64 Linux with glibc only");
        return;
    }
    let dir = common::work_dir("dispatch");
    // Dense, convolution and pooling, LSTM (sigmoid, tanh), attention and layer
    // normalization (exp, sqrt), and the int8 MLP (the int8 runtime) first: `quantize`
    // applies to the first cases.
    let seed = case("seed", "seed_int8");
    let shapes = seed.model.input_port_shapes();
    let calibration =
        keras2src::samples::read_samples(&models_dir().join("seed.calib.json"), &shapes).unwrap();
    let int8 = [Quantization {
        calibration,
        check: seed.samples.clone(),
        int8_io: false,
    }];
    let f32_cases = vec![
        seed,
        case("seed", "seed"),
        case("bench_cnn", "bench_cnn"),
        case("bench_lstm", "bench_lstm"),
        case("transformer_block", "transformer_block"),
    ];
    let variant = Variant {
        dtype: WeightsDtype::F32,
        quantize: &int8,
        tune: Tune::Host,
        dispatch: true,
    };
    let f16_cases = vec![case("seed", "seed_f16")];
    let f16_dir = common::work_dir("dispatch-f16");
    let f16 = Variant {
        dtype: WeightsDtype::F16,
        quantize: &[],
        ..variant
    };
    let runs = [
        (&f32_cases, &dir.path, variant),
        (&f16_cases, &f16_dir.path, f16),
    ];
    let mut failures = Vec::new();
    for (cases, dir, variant) in runs {
        let (rust, cpp) = run_both_as(cases, dir, variant);
        for (c, case) in cases.iter().enumerate() {
            let same = rust[c]
                .iter()
                .flatten()
                .flatten()
                .zip(cpp[c].iter().flatten().flatten())
                .all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()));
            if !same {
                failures.push(format!("{}: C++ and Rust differ in bits", case.ident));
            }
        }
        let symbols = symbols(dir);
        for case in cases.iter() {
            // C++'s `seed::detail::dense_1`, C's `seed_dense_1`: every layer function has
            // a copy per instruction set.
            let layers: Vec<&String> = symbols
                .iter()
                .filter(|s| {
                    s.starts_with(&format!("{}::detail::", case.ident))
                        || s.starts_with(&format!("{}_", case.ident))
                })
                .collect();
            for isa in ["arch_x86_64_v4", "arch_x86_64_v3"] {
                if !layers.iter().any(|s| s.contains(isa)) {
                    failures.push(format!("{}: no layer copy for {isa}", case.ident));
                }
            }
            // A layer without multiply-accumulates is compiled once.
            if case.ident == "transformer_block" {
                let norm = ["::detail::norm_1", "_norm_1"];
                let copies: Vec<&&String> = (layers.iter())
                    .filter(|s| norm.iter().any(|n| s.contains(n)) && s.contains("arch_"))
                    .collect();
                if !copies.is_empty() {
                    failures.push(format!("layer normalization has copies: {copies:?}"));
                }
            }
        }
        let helpers = keras2src::ir::MathFn::ALL
            .iter()
            .map(|f| f.cpp_name())
            .chain(keras2src::backend::math::INT8_NAMES)
            .chain(keras2src::backend::math::CPP_HELPER_NAMES)
            .chain(["half"]);
        for helper in helpers {
            let out_of_line: Vec<&String> = symbols
                .iter()
                .filter(|s| {
                    let name = s.split('(').next().unwrap_or(s);
                    name.ends_with(&format!("::{helper}")) || name.ends_with(&format!("_{helper}"))
                })
                .collect();
            if !out_of_line.is_empty() {
                failures.push(format!("helper left out of line: {out_of_line:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
