//! The `keras2src` command line, run as a user would.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_keras2src"))
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name)
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run keras2src")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn generate_writes_identical_bytes_each_time() {
    let dir = tempfile::tempdir().unwrap();
    for (lang, file) in [("rust", "model.rs"), ("cpp", "model.hpp")] {
        let out = dir.path().join(file);
        let mut previous = None;
        for _ in 0..2 {
            let o = run(bin()
                .arg("generate")
                .arg(fixture("seed.keras"))
                .args(["--lang", lang, "-o"])
                .arg(&out));
            assert!(o.status.success(), "{}", stderr(&o));
            let bytes = std::fs::read(&out).unwrap();
            if let Some(p) = &previous {
                assert_eq!(p, &bytes);
            }
            previous = Some(bytes);
        }
        let text = String::from_utf8(previous.unwrap()).unwrap();
        assert!(
            text.contains("options: --lang") && text.contains("--name model"),
            "default name is the stem"
        );
        assert!(
            !text.contains(dir.path().to_str().unwrap()),
            "no paths in output"
        );
    }
}

#[test]
fn generate_to_stdout_and_named() {
    let o = run(bin()
        .arg("generate")
        .arg(fixture("seed.k3.h5"))
        .args(["--lang", "cpp", "--name", "a::b"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("namespace a::b {"));
    let o = run(bin().arg("generate").arg(fixture("seed.keras")).args([
        "--lang",
        "rust",
        "--name",
        "not valid",
    ]));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--name"));
}

#[test]
fn check_reports_stale_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("seed.rs");
    let generate = |extra: &[&str]| {
        run(bin()
            .arg("generate")
            .arg(fixture("seed.keras"))
            .args(["--lang", "rust", "-o"])
            .arg(&out)
            .args(extra))
    };
    assert_eq!(
        generate(&["--check"]).status.code(),
        Some(1),
        "missing file is stale"
    );
    assert!(generate(&[]).status.success());
    assert_eq!(generate(&["--check"]).status.code(), Some(0));
    std::fs::write(&out, "// edited\n").unwrap();
    assert_eq!(generate(&["--check"]).status.code(), Some(1));
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "// edited\n",
        "--check writes nothing"
    );
}

#[test]
fn weights_with_config() {
    let o = run(bin()
        .arg("generate")
        .arg(fixture("seed.weights.h5"))
        .arg("--config")
        .arg(fixture("seed.arch.json"))
        .args(["--lang", "rust"]));
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn inspect_prints_layers_and_totals() {
    let o = run(bin().arg("inspect").arg(fixture("seed.keras")));
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    // 33*64+64 + 64*32+32 + 32+1 = 4289 parameters, 4 bytes each.
    assert!(text.contains("parameters: 4289"), "{text}");
    assert!(text.contains("MACs: 4192"), "{text}");
    assert!(text.contains("flash (weights): 17156 bytes"), "{text}");
    assert!(text.contains("RAM (working memory):"), "{text}");
    assert!(text.contains("Dense"), "{text}");
}

#[test]
fn predict_matches_keras_and_traces() {
    let io: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("seed.io.json")).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.json");
    let sample = &io["inputs"][0]["data"][0];
    std::fs::write(
        &input,
        serde_json::json!({ "inputs": [sample] }).to_string(),
    )
    .unwrap();
    let o = run(bin()
        .arg("predict")
        .arg(fixture("seed.keras"))
        .arg("--input")
        .arg(&input)
        .arg("--trace"));
    assert!(o.status.success(), "{}", stderr(&o));
    let out: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let got = out["outputs"][0][0].as_f64().unwrap();
    let want = io["outputs"][0]["data"][0][0].as_f64().unwrap();
    assert!(
        (got - want).abs() <= 1e-5 + 1e-4 * want.abs(),
        "{got} vs {want}"
    );
    assert_eq!(out["trace"].as_array().unwrap().len(), 3);
}

#[test]
fn bad_input_fails_cleanly_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.rs");
    let not_a_model = dir.path().join("junk.keras");
    std::fs::write(&not_a_model, b"PK\x03\x04 this is not a zip").unwrap();
    let truncated = dir.path().join("truncated.h5");
    let bytes = std::fs::read(fixture("seed.k3.h5")).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    for (model, what) in [
        (dir.path().join("missing.keras"), "missing.keras"),
        (not_a_model, "junk.keras"),
        (truncated, "truncated.h5"),
        (
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/broken/not_keras.h5"),
            "no Keras model config",
        ),
    ] {
        let o = run(bin()
            .arg("generate")
            .arg(&model)
            .args(["--lang", "rust", "-o"])
            .arg(&out));
        assert!(!o.status.success());
        let err = stderr(&o);
        assert!(err.contains(what), "error names the file: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(!out.exists(), "no output written");
    }
}

#[test]
fn weights_file_beside_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net.rs");
    let generate = |extra: &[&str]| {
        run(bin()
            .arg("generate")
            .arg(fixture("resnet_small.keras"))
            .args(["--lang", "rust", "-o"])
            .arg(&out)
            .args(extra))
    };
    let o = generate(&["--weights", "file"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bin_file = dir.path().join("net.weights.bin");
    let source = std::fs::read_to_string(&out).unwrap();
    assert!(
        source.contains("include_bytes!(\"net.weights.bin\")"),
        "{source}"
    );
    assert!(
        source.contains("--weights file"),
        "the header names the option"
    );
    assert!(std::fs::metadata(&bin_file).unwrap().len() > 0);
    assert_eq!(
        generate(&["--weights", "file", "--check"]).status.code(),
        Some(0)
    );
    std::fs::write(&bin_file, b"stale").unwrap();
    assert_eq!(
        generate(&["--weights", "file", "--check"]).status.code(),
        Some(1),
        "a stale weights file is stale"
    );
    // Without -o there is nowhere to put the file.
    let o = run(bin()
        .arg("generate")
        .arg(fixture("resnet_small.keras"))
        .args(["--lang", "rust", "--weights", "file"]));
    assert!(!o.status.success() && stderr(&o).contains("-o"));
    // C++ takes its own file (its layout differs from Rust's): tests/cpp_weights.rs.
    let o = run(bin()
        .arg("generate")
        .arg(fixture("resnet_small.keras"))
        .args(["--lang", "cpp", "--weights", "file", "-o"])
        .arg(dir.path().join("net.hpp")));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(dir.path().join("net.hpp.weights.bin").exists());
    // Auto: MobileNetV2's 400k floats go to a file, the seed's 4k stay inline.
    let mobile = dir.path().join("mobile.rs");
    let o = run(bin()
        .arg("generate")
        .arg(fixture("mobilenet_v2.keras"))
        .args(["--lang", "rust", "-o"])
        .arg(&mobile));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(dir.path().join("mobile.weights.bin").exists());
    let seed = dir.path().join("seed.rs");
    assert!(run(bin()
        .arg("generate")
        .arg(fixture("seed.keras"))
        .args(["--lang", "rust", "-o"])
        .arg(&seed))
    .status
    .success());
    assert!(!dir.path().join("seed.weights.bin").exists());
}

#[test]
fn shared_layers_count_their_weights_once() {
    let o = run(bin().arg("inspect").arg(fixture("shared_conv.keras")));
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    // Keras counts 122 parameters; the generated code holds each of them once.
    assert!(
        text.contains("parameters: 122") && text.contains("flash (weights): 488 bytes"),
        "{text}"
    );
}

/// A sequence length left open (`None`) is given with `--input-shape`; sizes the file
/// fixes must agree, and the option is recorded in the header.
#[test]
fn input_shape_fixes_open_dimensions() {
    let model = fixture("k2_variable_length.k2.h5");
    let open = run(bin().arg("generate").arg(&model).args(["--lang", "rust"]));
    assert_eq!(open.status.code(), Some(2));
    assert!(stderr(&open).contains("--input-shape"), "{}", stderr(&open));

    let o =
        run(bin()
            .arg("generate")
            .arg(&model)
            .args(["--lang", "rust", "--input-shape", "12,3"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("--input-shape 12,3"), "options in the header");
    assert!(text.contains("pub const INPUT_SHAPE: [usize; 2] = [12, 3];"));

    for (shape, message) in [
        ("12,4", "has size 3 in dimension 2"),
        ("12", "has 2 dimensions"),
        ("12,x", "is not a list of positive sizes"),
        ("0,3", "is not a list of positive sizes"),
    ] {
        let o = run(bin()
            .arg("inspect")
            .arg(&model)
            .args(["--input-shape", shape]));
        assert_eq!(o.status.code(), Some(2), "{shape}");
        assert!(stderr(&o).contains(message), "{shape}: {}", stderr(&o));
    }
    let o = run(bin().arg("inspect").arg(&model).args([
        "--input-shape",
        "5,3",
        "--input-shape",
        "5,3",
    ]));
    assert!(stderr(&o).contains("2 input shapes given, but the model has 1 input"));
}

#[test]
fn firmware_options_are_recorded_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("seed.hpp");
    let generate = |extra: &[&str]| {
        run(bin()
            .arg("generate")
            .arg(fixture("seed.keras"))
            .args(["-o"])
            .arg(&out)
            .args(extra))
    };
    let test_file = fixture("seed.io.json");
    let test_arg = test_file.to_str().unwrap();
    let o = generate(&[
        "--lang",
        "cpp",
        "--scratch",
        "static",
        "--extern-c",
        "--emit-test",
        test_arg,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("--scratch static --extern-c --emit-test\n"));
    assert!(text.contains("void seed_predict(const float* input, float* output);"));
    assert!(!text.contains(test_arg), "no paths in output");
    std::fs::remove_file(&out).unwrap();

    // C entry points are for the C++ build.
    let o = generate(&["--lang", "rust", "--extern-c"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--extern-c"), "{}", stderr(&o));
    // A sample that does not fit the model: the file is named, nothing is written.
    let wrong = dir.path().join("wrong.json");
    std::fs::write(&wrong, r#"{"inputs": [[1, 2, 3]], "outputs": [[0.5]]}"#).unwrap();
    let o = generate(&["--lang", "rust", "--emit-test", wrong.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let message = stderr(&o);
    assert!(
        message.contains("wrong.json") && message.contains("[3]") && message.contains("[33]"),
        "{message}"
    );
    let o = generate(&["--lang", "cpp", "--emit-test", "missing.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("missing.json"), "{}", stderr(&o));
    std::fs::write(&wrong, r#"{"inputs": [[1, "x"]], "outputs": []}"#).unwrap();
    let o = generate(&["--lang", "cpp", "--emit-test", wrong.to_str().unwrap()]);
    assert!(stderr(&o).contains("inputs[0]"), "{}", stderr(&o));
    assert!(!out.exists());
}
