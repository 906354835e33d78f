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
    let rust_out = dir.path().join("seed.rs");
    let generate_to = |out: &Path, extra: &[&str]| {
        run(bin()
            .arg("generate")
            .arg(fixture("seed.keras"))
            .args(["-o"])
            .arg(out)
            .args(extra))
    };
    let generate = |extra: &[&str]| generate_to(&out, extra);
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
    let o = generate_to(&rust_out, &["--lang", "rust", "--extern-c"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--extern-c"), "{}", stderr(&o));
    // A sample that does not fit the model: the file is named, nothing is written.
    let wrong = dir.path().join("wrong.json");
    std::fs::write(&wrong, r#"{"inputs": [[1, 2, 3]], "outputs": [[0.5]]}"#).unwrap();
    let o = generate_to(&rust_out, &["--emit-test", wrong.to_str().unwrap()]);
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
    assert!(!out.exists() && !rust_out.exists());
}

/// keras2src's interchange JSON of the seed model, to change in tests.
fn seed_doc() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("seed.interchange.json")).unwrap())
        .unwrap()
}

fn write_json(path: &Path, value: &serde_json::Value) -> PathBuf {
    std::fs::write(path, value.to_string()).unwrap();
    path.to_path_buf()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn check_says_why_shows_a_bounded_diff_and_how_to_regenerate() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("seed.rs");
    let model = write_json(&dir.path().join("seed.json"), &seed_doc());
    let generate = |extra: &[&str]| {
        run(bin()
            .arg("generate")
            .arg(&model)
            .arg("-o")
            .arg(&out)
            .args(extra))
    };
    let check = |extra: &[&str]| {
        let o = generate(&[&["--check"], extra].concat());
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(o.stdout.is_empty());
        let err = stderr(&o);
        // The command that regenerates: this one without --check.
        let command = err.lines().skip_while(|l| *l != "regenerate with:").nth(1);
        let command = command.unwrap_or_else(|| panic!("no command in {err}"));
        assert!(
            command.contains(" generate ")
                && command.contains(out.to_str().unwrap())
                && !command.contains("--check")
                && extra.iter().all(|e| command.contains(e)),
            "{err}"
        );
        // Bounded: no line carries a row of weights.
        assert!(err.lines().all(|l| l.chars().count() < 300), "{err}");
        err
    };

    let err = check(&[]);
    assert!(err.contains("seed.rs is stale: it is missing"), "{err}");
    assert!(generate(&[]).status.success());
    assert_eq!(generate(&["--check"]).status.code(), Some(0));
    assert!(
        generate(&["--check"]).stderr.is_empty(),
        "silent when up to date"
    );

    // Options: the headers record them.
    let err = check(&["--scratch", "static"]);
    assert!(
        err.contains("the options differ") && err.contains("--scratch static"),
        "{err}"
    );
    assert!(
        err.contains("--- ") && err.contains("+++ ") && err.contains("@@ -"),
        "{err}"
    );
    assert!(
        err.contains("\n+// options: --lang rust --name seed --scratch static"),
        "{err}"
    );

    // The model: another weight, so the header's hash and one weight row differ.
    let mut doc = seed_doc();
    let kernel = &mut doc["weights"]["dense_1"][0]["data"];
    kernel[5] = serde_json::json!(kernel[5].as_f64().unwrap() + 0.5);
    write_json(&model, &doc);
    let err = check(&[]);
    assert!(err.contains("the model changed (source sha256"), "{err}");
    assert!(
        err.contains("~ 1 weight row changed (values not shown)")
            && err.contains("~ in all, 1 weight row changed"),
        "{err}"
    );
    assert!(generate(&[]).status.success());

    // The tool version.
    let text = std::fs::read_to_string(&out).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    std::fs::write(
        &out,
        text.replace(&format!("keras2src {version} "), "keras2src 0.0.1 "),
    )
    .unwrap();
    let err = check(&[]);
    assert!(
        err.contains(&format!("generated by keras2src 0.0.1, this is {version}")),
        "{err}"
    );

    // Only the content: edited by hand.
    std::fs::write(
        &out,
        text.replace("pub fn predict(", "pub fn predict_edited("),
    )
    .unwrap();
    let err = check(&[]);
    assert!(err.contains("the content differs"), "{err}");
    assert!(err.contains("\n-pub fn predict_edited(") && err.contains("\n+pub fn predict("));

    // Not generated at all.
    std::fs::write(&out, "fn main() {}\n").unwrap();
    assert!(check(&[]).contains("no keras2src header"));
}

#[test]
fn check_counts_weights_file_differences() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net.rs");
    let generate = |extra: &[&str]| {
        run(bin()
            .arg("generate")
            .arg(fixture("resnet_small.keras"))
            .args(["--weights", "file", "-o"])
            .arg(&out)
            .args(extra))
    };
    assert!(generate(&[]).status.success());
    let bin_file = dir.path().join("net.weights.bin");
    let mut bytes = std::fs::read(&bin_file).unwrap();
    bytes[4] ^= 1;
    bytes[9] ^= 1;
    std::fs::write(&bin_file, &bytes).unwrap();
    let o = generate(&["--check"]);
    assert_eq!(o.status.code(), Some(1));
    let floats = bytes.len() / 4;
    assert!(
        stderr(&o).contains(&format!(
            "net.weights.bin is stale: 2 of its {floats} weights differ"
        )),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("net.rs is stale"), "{}", stderr(&o));
}

#[test]
fn summary_line_and_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("seed.rs");
    let o = run(bin()
        .arg("generate")
        .arg(fixture("seed.keras"))
        .arg("-o")
        .arg(&out));
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    // Not a terminal: no progress, only the summary line.
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!err.contains(['\r', '\x1b']), "{err:?}");
    let size = std::fs::metadata(&out).unwrap().len();
    assert!(
        err.starts_with(&format!(
            "wrote {} ({:.1} kB): Rust, 3 layers, 4,289 parameters, in ",
            out.display(),
            size as f64 / 1000.0
        )),
        "{err}"
    );
    let o = run(bin()
        .arg("generate")
        .arg(fixture("seed.keras"))
        .args(["--quiet", "-o"])
        .arg(&out));
    assert!(o.status.success() && o.stderr.is_empty(), "{}", stderr(&o));
    // To stdout: the source only, nothing on stderr.
    let o = run(bin()
        .arg("generate")
        .arg(fixture("seed.keras"))
        .args(["--lang", "cpp"]));
    assert!(o.status.success() && o.stderr.is_empty(), "{}", stderr(&o));
}

/// On a terminal (`script` gives it one), generating shows its steps on stderr, then the
/// summary; `--quiet` shows nothing.
#[test]
fn progress_on_a_terminal() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: `script` (util-linux) is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mobile.rs");
    let on_terminal = |extra: &str| {
        // An explicit --scratch: the automatic choice would add a note, which --quiet keeps.
        let command = format!(
            "{} generate {} -o {} --scratch caller {extra}",
            env!("CARGO_BIN_EXE_keras2src"),
            fixture("mobilenet_v2.keras").display(),
            out.display()
        );
        let o = run(Command::new("script").args(["-qec", &command, "/dev/null"]));
        assert!(o.status.success(), "{}", stdout(&o));
        stdout(&o)
    };
    let screen = on_terminal("");
    // A step or more, as fast as they go by.
    assert!(
        ["reading ", "generating Rust, ", "writing "]
            .iter()
            .any(|step| screen.contains(step)),
        "{screen:?}"
    );
    assert!(
        screen.contains("wrote ") && screen.contains("mobile.weights.bin ("),
        "{screen:?}"
    );
    let screen = on_terminal("--quiet");
    assert!(screen.trim().is_empty(), "{screen:?}");
}

#[test]
fn language_from_the_output_extension() {
    let dir = tempfile::tempdir().unwrap();
    for (file, marker) in [
        ("m.rs", "pub fn predict("),
        ("m.hpp", "namespace m {"),
        ("m.hh", "namespace m {"),
        ("m.hxx", "namespace m {"),
    ] {
        let out = dir.path().join(file);
        let o = run(bin()
            .arg("generate")
            .arg(fixture("seed.keras"))
            .arg("-o")
            .arg(&out));
        assert!(o.status.success(), "{file}: {}", stderr(&o));
        assert!(
            std::fs::read_to_string(&out).unwrap().contains(marker),
            "{file}"
        );
    }
    // Explicit and agreeing, or for a .h header.
    let o = run(bin()
        .arg("generate")
        .arg(fixture("seed.keras"))
        .args(["--lang", "cpp", "-o"])
        .arg(dir.path().join("m.h")));
    assert!(o.status.success(), "{}", stderr(&o));
    let out = dir.path().join("c.h");
    let o = run(bin()
        .arg("generate")
        .arg(fixture("seed.keras"))
        .args(["--lang", "c", "-o"])
        .arg(&out));
    assert!(o.status.success(), "{}", stderr(&o));
    let header = std::fs::read_to_string(&out).unwrap();
    assert!(
        header.contains("void c_predict(const float* input, float* output);")
            && header.contains("#define C_INPUT_LEN "),
        "{header}"
    );
    for (args, message) in [
        (vec!["-o", "m.h"], "a .h header could be C or C++"),
        (
            vec!["--lang", "c", "-o", "m.hpp"],
            "--lang c writes a C header",
        ),
        (
            vec!["--lang", "c", "-o", "m.c"],
            "--lang c writes a C header",
        ),
        (
            vec!["--lang", "c", "-o", "m.rs"],
            "--lang c writes a C header",
        ),
        (
            vec!["--lang", "c", "--name", "_m"],
            "--name '_m' is not a valid c identifier",
        ),
        (
            vec!["--lang", "c", "--extern-c"],
            "--extern-c is for the C++ output",
        ),
        (
            vec!["--lang", "rust", "-o", "m.hpp"],
            "--lang rust writes a Rust module",
        ),
        (
            vec!["--lang", "rust", "-o", "m.h"],
            "--lang rust writes a Rust module",
        ),
        (
            vec!["--lang", "cpp", "-o", "m.rs"],
            "--lang cpp writes a C++ header",
        ),
        (vec!["-o", "m.txt"], "cannot tell the language from -o"),
        (vec![], "give --lang rust, --lang cpp or --lang c"),
    ] {
        let o = run(bin()
            .current_dir(dir.path())
            .arg("generate")
            .arg(fixture("seed.keras"))
            .args(&args));
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains(message), "{args:?}: {}", stderr(&o));
    }
    assert!(!dir.path().join("m.txt").exists());
}

/// The sample of `k2_variable_length` (input `(None, 3)`) as Keras recorded it: flat values
/// and outputs.
fn variable_length_sample() -> (Vec<f64>, Vec<f64>) {
    let io: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("k2_variable_length.k2.io.json")).unwrap(),
    )
    .unwrap();
    let values = |v: &serde_json::Value| -> Vec<f64> {
        v["data"][0]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    (values(&io["inputs"][0]), values(&io["outputs"][0]))
}

fn predict_outputs(model: &Path, input: &serde_json::Value, extra: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let file = write_json(&dir.path().join("in.json"), input);
    run(bin()
        .arg("predict")
        .arg(model)
        .arg("--input")
        .arg(&file)
        .args(extra))
}

fn first_output(o: &Output) -> Vec<f64> {
    assert!(o.status.success(), "{}", stderr(o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    doc["outputs"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn predict_takes_nested_lists_and_sizes_open_dimensions() {
    let model = fixture("k2_variable_length.k2.h5");
    let (flat, want) = variable_length_sample();
    assert_eq!(flat.len(), 21, "7 steps of 3");
    let nested: Vec<&[f64]> = flat.chunks(3).collect();
    let close = |got: &[f64]| {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-5 + 1e-4 * w.abs(), "{g} vs {w}");
        }
    };
    // The sequence length comes from the values: nested as x[0].tolist() writes it, with a
    // batch dimension of one, in a list of inputs, or flat (one open dimension).
    for input in [
        serde_json::json!(nested),
        serde_json::json!([nested]),
        serde_json::json!({ "inputs": [nested] }),
        serde_json::json!({ "inputs": [flat] }),
        serde_json::json!(flat),
    ] {
        close(&first_output(&predict_outputs(&model, &input, &[])));
    }
    // Given a size, the values must fill it.
    close(&first_output(&predict_outputs(
        &model,
        &serde_json::json!(nested),
        &["--input-shape", "(7, 3)"],
    )));
    for (input, extra, message) in [
        (
            serde_json::json!(&flat[..20]),
            &[][..],
            "20 values do not fill the input's shape (None, 3)",
        ),
        (
            serde_json::json!(nested),
            &["--input-shape", "8,3"][..],
            "the values have shape (7, 3), the input (8, 3)",
        ),
        (serde_json::json!([[1.0, 2.0], [3.0]]), &[][..], "ragged"),
        (
            serde_json::json!({ "inputs": [nested, nested] }),
            &[][..],
            "the values have shape (2, 7, 3), the input (None, 3)",
        ),
    ] {
        let o = predict_outputs(&model, &input, extra);
        assert_eq!(o.status.code(), Some(2), "{input}");
        assert!(stderr(&o).contains(message), "{}", stderr(&o));
    }
    // Two open dimensions: only nested values size them.
    let dir = tempfile::tempdir().unwrap();
    let mut doc = seed_doc();
    doc["model"]["config"]["layers"][0]["config"]["batch_shape"] =
        serde_json::json!([null, null, null, 33]);
    let open2 = write_json(&dir.path().join("open2.json"), &doc);
    let row: Vec<f64> = (0..33).map(|k| k as f64 / 33.0).collect();
    let o = predict_outputs(&open2, &serde_json::json!([[row, row]]), &[]);
    let out = first_output(&o);
    assert_eq!(out.len(), 2, "output (1, 2, 1)");
    assert_eq!(out[0], out[1]);
    let flat66: Vec<f64> = row.iter().chain(&row).copied().collect();
    let o = predict_outputs(&open2, &serde_json::json!(flat66), &[]);
    assert!(
        stderr(&o).contains("leaves 2 dimensions open"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn predict_and_inspect_into_a_closed_pipe_exit_quietly() {
    let dir = tempfile::tempdir().unwrap();
    // MobileNetV2's trace is megabytes: more than a pipe holds, so the write meets the
    // closed pipe even if it starts before the reader is gone.
    let input = write_json(
        &dir.path().join("in.json"),
        &serde_json::json!(vec![0.5; 96 * 96 * 3]),
    );
    let mobilenet = fixture("mobilenet_v2.keras");
    let predict = [
        "predict".as_ref(),
        mobilenet.as_os_str(),
        "--input".as_ref(),
        input.as_os_str(),
        "--trace".as_ref(),
    ];
    let inspect = ["inspect".as_ref(), mobilenet.as_os_str()];
    for args in [&predict[..], &inspect[..]] {
        // `keras2src ... | head -0`: the reader is gone.
        let mut child = bin()
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        assert!(o.stderr.is_empty(), "{}", stderr(&o));
    }
    // Messages into a closed stderr (`2>&1 | head -0`): the status still says what happened.
    let out = dir.path().join("seed.rs");
    for (model, status) in [
        (fixture("seed.keras"), 0),
        (dir.path().join("missing.keras"), 2),
    ] {
        let mut child = bin()
            .arg("generate")
            .arg(model)
            .arg("-o")
            .arg(&out)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stderr.take());
        assert_eq!(child.wait().unwrap().code(), Some(status));
    }
}

#[test]
fn trace_chosen_layers_and_summaries() {
    let io: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("seed.io.json")).unwrap()).unwrap();
    let sample = &io["inputs"][0]["data"][0];
    let model = fixture("seed.keras");
    let traced = |extra: &[&str]| -> Vec<serde_json::Value> {
        let o = predict_outputs(&model, sample, extra);
        assert!(o.status.success(), "{}", stderr(&o));
        let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        doc["trace"].as_array().unwrap().clone()
    };
    let full = traced(&["--trace"]);
    assert_eq!(full.len(), 3);
    assert_eq!(full[1]["output"].as_array().unwrap().len(), 32);
    let chosen = traced(&["--trace", "--layers", "dense_2,dense"]);
    let names: Vec<&str> = chosen
        .iter()
        .map(|e| e["layer"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["dense", "dense_2"], "in model order");
    let summary = traced(&["--trace=summary", "--layers", "dense_1"]);
    assert_eq!(summary.len(), 1);
    let values: Vec<f64> = full[1]["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let entry = &summary[0];
    assert!(entry.get("output").is_none(), "{entry}");
    assert_eq!(entry["shape"], serde_json::json!([32]));
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mean = values.iter().sum::<f64>() / 32.0;
    assert_eq!(entry["min"].as_f64().unwrap(), min);
    assert_eq!(entry["max"].as_f64().unwrap(), max);
    assert!(
        (entry["mean"].as_f64().unwrap() - mean).abs() < 1e-6,
        "{entry}"
    );
    let o = predict_outputs(&model, sample, &["--trace", "--layers", "dense,nope"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no layer 'nope'"), "{}", stderr(&o));
}

#[test]
fn errors_end_with_the_next_step() {
    let dir = tempfile::tempdir().unwrap();
    let generate = |model: &Path| {
        let o = run(bin().arg("generate").arg(model).args(["--lang", "rust"]));
        assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
        assert!(!stderr(&o).contains("panicked"));
        stderr(&o)
    };
    let with_layer = |name: &str, layer: serde_json::Value| {
        let mut doc = seed_doc();
        doc["model"]["config"]["layers"][2] = layer;
        write_json(&dir.path().join(name), &doc)
    };
    let lambda = with_layer(
        "lambda.json",
        serde_json::json!({"module": "keras.layers", "class_name": "Lambda",
            "config": {"name": "dense_1", "function": {"class_name": "__lambda__"}}}),
    );
    let err = generate(&lambda);
    assert!(
        err.contains("Lambda layers hold Python code") && err.contains("`keras.ops` calls"),
        "{err}"
    );

    let mut custom = serde_json::json!({"module": "my_pkg.layers", "class_name": "MyDense",
        "registered_name": "my_pkg>MyDense", "config": {"name": "dense_1", "units": 32}});
    let err = generate(&with_layer("custom.json", custom.clone()));
    assert!(
        err.contains("custom layer 'my_pkg>MyDense' (module 'my_pkg.layers')")
            && err.contains("replace it with built-in Keras layers")
            && err.contains("set_weights"),
        "{err}"
    );
    custom.as_object_mut().unwrap().remove("module");
    let err = generate(&with_layer("custom_no_module.json", custom.clone()));
    assert!(err.contains("(its config names no module)"), "{err}");
    assert!(!err.contains("module 'keras"), "no made-up module: {err}");
    custom.as_object_mut().unwrap().remove("registered_name");
    let err = generate(&with_layer("keras2_custom.json", custom));
    assert!(
        err.contains("unsupported layer class 'MyDense'; the file records no module for it")
            && err.contains("replace it with built-in Keras layers"),
        "{err}"
    );

    // A TensorFlow SavedModel directory, and its saved_model.pb.
    let saved = dir.path().join("exported");
    std::fs::create_dir_all(saved.join("variables")).unwrap();
    std::fs::write(saved.join("saved_model.pb"), b"\x08\x01\x12\x00").unwrap();
    for path in [saved.clone(), saved.join("saved_model.pb")] {
        let err = generate(&path);
        assert!(
            err.contains("TensorFlow SavedModel")
                && err.contains("model.save(\"model.keras\")")
                && err.contains("tf_keras.models.load_model"),
            "{err}"
        );
    }
    let err = generate(&saved.join("variables"));
    assert!(err.contains("is a directory: give the model file"), "{err}");
}

#[test]
fn input_shape_as_python_writes_it() {
    let model = fixture("k2_variable_length.k2.h5");
    for shape in ["(12, 3)", "(12,3,)", "[12, 3]", " 12 , 3 "] {
        let o =
            run(bin()
                .arg("generate")
                .arg(&model)
                .args(["--lang", "rust", "--input-shape", shape]));
        assert!(o.status.success(), "{shape}: {}", stderr(&o));
        assert!(stdout(&o).contains("--input-shape 12,3"), "{shape}");
    }
    for (shape, message) in [
        ("(None, 3)", "has a None: give every dimension a size"),
        ("(12, 3", "is not a list of positive sizes"),
        ("()", "is not a list of positive sizes"),
    ] {
        let o = run(bin()
            .arg("inspect")
            .arg(&model)
            .args(["--input-shape", shape]));
        assert_eq!(o.status.code(), Some(2), "{shape}");
        assert!(stderr(&o).contains(message), "{shape}: {}", stderr(&o));
    }
}

#[test]
fn inspect_columns_stay_aligned() {
    let dir = tempfile::tempdir().unwrap();
    let mut doc = seed_doc();
    let long = "a_layer_with_a_name_much_longer_than_the_column_it_used_to_get";
    doc["model"]["config"]["layers"][2]["config"]["name"] = long.into();
    let weights = doc["weights"]
        .as_object_mut()
        .unwrap()
        .remove("dense_1")
        .unwrap();
    doc["weights"][long] = weights;
    let model = write_json(&dir.path().join("long.json"), &doc);
    let o = run(bin().arg("inspect").arg(&model));
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let table: Vec<&str> = text.lines().take_while(|l| !l.is_empty()).collect();
    assert_eq!(table.len(), 4, "{text}");
    assert!(table.iter().any(|l| l.contains(long)));
    // Every column starts where its header does, and the numbers end together.
    let column = |l: &str, k: usize| {
        l.split("  ")
            .filter(|c| !c.is_empty())
            .nth(k)
            .map(|c| l.find(c.trim()).unwrap())
    };
    for k in 0..3 {
        let starts: Vec<_> = table.iter().map(|l| column(l, k)).collect();
        assert!(
            starts.windows(2).all(|w| w[0] == w[1]),
            "column {k}: {text}"
        );
    }
    assert!(table.windows(2).all(|w| w[0].len() == w[1].len()), "{text}");
}
