//! `generated-samples/` holds the committed output for sample models. This test fails when
//! it is stale; refresh it with `KERAS2SRC_BLESS=1 cargo test --release --test samples`
//! and review the diff. It also builds the sample crate (`no_std`, `deny(warnings)`, clippy).

use std::path::Path;
use std::process::Command;

use keras2src::{Lang, Model};

const SAMPLES: &[(&str, &str)] = &[
    ("seed", "tests/fixtures/models/seed.keras"),
    // Integer token input, Embedding, Bidirectional LSTM, TimeDistributed, LayerNormalization.
    ("text_bilstm", "tests/fixtures/models/text_bilstm.keras"),
    (
        "transformer_block",
        "tests/fixtures/models/transformer_block.keras",
    ),
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn samples_are_fresh() {
    let bless = std::env::var_os("KERAS2SRC_BLESS").is_some();
    let mut stale = Vec::new();
    for (name, model) in SAMPLES {
        let model = Model::load(&root().join(model), None).unwrap();
        for (lang, path) in [
            (Lang::Rust, format!("generated-samples/src/{name}.rs")),
            (Lang::Cpp, format!("generated-samples/cpp/{name}.hpp")),
            (Lang::C, format!("generated-samples/c/{name}.h")),
        ] {
            let source = model.generate(lang, name).unwrap();
            let path = root().join(&path);
            if std::fs::read_to_string(&path).ok().as_deref() != Some(source.as_str()) {
                if bless {
                    std::fs::write(&path, source).unwrap();
                } else {
                    stale.push(path.display().to_string());
                }
            }
        }
    }
    assert!(
        stale.is_empty(),
        "stale generated samples: {stale:?}\nrefresh with: KERAS2SRC_BLESS=1 cargo test --release --test samples"
    );
}

#[test]
fn sample_crate_builds_clean() {
    let target = root().join("target/generated-samples");
    let manifest = root().join("generated-samples/Cargo.toml");
    let clippy_available = Command::new("cargo")
        .args(["clippy", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    let subcommand = if clippy_available { "clippy" } else { "build" };
    let out = Command::new("cargo")
        .arg(subcommand)
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target)
        .args(["--", "-D", "warnings"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo {subcommand} of generated-samples failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The committed samples are what a repository would commit: `cargo fmt --check` passes
/// on them as generated (see also tests/formatting.rs).
#[test]
fn sample_crate_is_rustfmt_clean() {
    let manifest = root().join("generated-samples/Cargo.toml");
    let Ok(out) = Command::new("cargo")
        .args(["fmt", "--check", "--manifest-path"])
        .arg(&manifest)
        .output()
    else {
        return;
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains("not installed") {
        eprintln!("cargo fmt not available: skipping");
        return;
    }
    assert!(
        out.status.success(),
        "cargo fmt --check of generated-samples failed:\n{}{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn sample_headers_build_clean() {
    for (name, _) in SAMPLES {
        let header = root().join(format!("generated-samples/cpp/{name}.hpp"));
        let out = Command::new("g++")
            .args(["-std=c++17", "-Wall", "-Wextra", "-Werror", "-pedantic"])
            .args(["-fno-exceptions", "-fno-rtti", "-fsyntax-only", "-x", "c++"])
            .arg(&header)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}.hpp: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The C one with its definitions.
        let header = root().join(format!("generated-samples/c/{name}.h"));
        let out = Command::new("gcc")
            .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"])
            .arg(format!(
                "-DKERAS2SRC_{}_IMPLEMENTATION",
                name.to_ascii_uppercase()
            ))
            .args(["-fsyntax-only", "-x", "c"])
            .arg(&header)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}.h: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn sample_header_is_callable() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("main.cpp");
    let header = root().join("generated-samples/cpp/seed.hpp");
    std::fs::write(
        &main,
        format!(
            "#include \"{}\"\nint main() {{ float in[seed::kInputLen] = {{}}; float out[seed::kOutputLen]; seed::predict(in, out); return out[0] == out[0] ? 0 : 1; }}\n",
            header.display()
        ),
    )
    .unwrap();
    let out = Command::new("g++")
        .args([
            "-std=c++17",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-fno-exceptions",
            "-fno-rtti",
            "-c",
            "-o",
        ])
        .arg(dir.path().join("main.o"))
        .arg(&main)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
