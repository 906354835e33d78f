//! Generated Rust is a fixed point of rustfmt (default configuration, editions 2021 and
//! 2024), so a repository that commits it passes `cargo fmt --check`, and `cargo fmt` never
//! makes `keras2src generate --check` call it stale.

use std::path::Path;
use std::process::Command;

use keras2src::{Lang, Model, Options, ScratchPlacement, SelfTest, WeightsDtype, WeightsPlacement};

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name)
}

fn rustfmt_available() -> bool {
    Command::new("rustfmt")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn generated_rust_is_a_rustfmt_fixed_point() {
    if !rustfmt_available() {
        eprintln!("rustfmt not found: skipping");
        return;
    }
    let inline = |name: &str| Options {
        weights: WeightsPlacement::Inline,
        ..Options::new(Lang::Rust, name)
    };
    let cases: Vec<(&str, Options)> = vec![
        ("seed.keras", inline("seed")),
        // A CNN with residual connections and BatchNorm folded into the convolutions.
        ("resnet_small.keras", inline("resnet")),
        ("bench_lstm.keras", inline("lstm")),
        // A stateful model: the streaming API (State, step).
        ("stream_lstm_gru.keras", inline("stream")),
        (
            "lstm_seq.keras",
            Options {
                stream: true,
                scratch: Some(ScratchPlacement::Caller),
                ..inline("lstm_stream")
            },
        ),
        // Integer input, Embedding, Bidirectional LSTM, several outputs' worth of names.
        ("text_bilstm.keras", inline("text")),
        ("two_io.keras", inline("two_io")),
        (
            "bidir_state.keras",
            Options {
                scratch: Some(ScratchPlacement::Static),
                ..inline("bidir")
            },
        ),
        // Weights in a file, and working memory too large for the stack (no `predict`).
        (
            "mobilenet_v2.keras",
            Options {
                weights: WeightsPlacement::File,
                ..Options::new(Lang::Rust, "mobile")
            },
        ),
        (
            "seed.keras",
            Options {
                scratch: Some(ScratchPlacement::Caller),
                self_test: Some(SelfTest::read(&fixture("seed.io.json")).unwrap()),
                ..inline("seed_test")
            },
        ),
        // Compressed kernels (`--weights-dtype`), inline and in a file.
        (
            "bench_cnn.keras",
            Options {
                weights_dtype: WeightsDtype::F16,
                ..inline("cnn_f16")
            },
        ),
        (
            "bench_lstm.keras",
            Options {
                weights: WeightsPlacement::File,
                weights_dtype: WeightsDtype::Int8,
                ..Options::new(Lang::Rust, "lstm_int8")
            },
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (model, options) in &cases {
        let generated = Model::load(&fixture(model), None)
            .unwrap()
            .generate_with(options)
            .unwrap();
        let path = dir.path().join(format!("{}.rs", options.name));
        std::fs::write(&path, &generated.source).unwrap();
        for edition in ["2021", "2024"] {
            let out = Command::new("rustfmt")
                .args(["--edition", edition, "--check", "--color", "never"])
                .arg(&path)
                .output()
                .unwrap();
            if !out.status.success() {
                failures.push(format!(
                    "{model} as {} (edition {edition}):\n{}",
                    options.name,
                    String::from_utf8_lossy(&out.stdout)
                        .lines()
                        .take(30)
                        .collect::<Vec<_>>()
                        .join("\n")
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "rustfmt would reformat generated code:\n{}",
        failures.join("\n\n")
    );
}

/// The two CI checks agree: after `rustfmt` (as `cargo fmt` runs it) on a generated module
/// and its weights accessors, `keras2src generate --check` still calls it fresh.
#[test]
fn check_accepts_rustfmt_output() {
    if !rustfmt_available() {
        eprintln!("rustfmt not found: skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (model, weights) in [("seed.keras", "inline"), ("resnet_small.keras", "file")] {
        let out = dir.path().join(model.replace(".keras", ".rs"));
        let generate = |check: bool| {
            let mut c = Command::new(env!("CARGO_BIN_EXE_keras2src"));
            c.arg("generate")
                .arg(fixture(model))
                .args(["--lang", "rust", "--weights", weights, "-o"])
                .arg(&out);
            if check {
                c.arg("--check");
            }
            c.output().unwrap()
        };
        assert!(generate(false).status.success());
        for edition in ["2021", "2024"] {
            let fmt = Command::new("rustfmt")
                .args(["--edition", edition])
                .arg(&out)
                .output()
                .unwrap();
            assert!(
                fmt.status.success(),
                "{}",
                String::from_utf8_lossy(&fmt.stderr)
            );
            let check = generate(true);
            assert_eq!(
                check.status.code(),
                Some(0),
                "{model} after rustfmt --edition {edition}: {}",
                String::from_utf8_lossy(&check.stderr)
            );
        }
    }
}
