//! The CMake and Make examples in build-systems/: each generates the seed model's header
//! with the keras2src binary as a build step, builds a program around it whose output must
//! match Keras's, and regenerates the header when the model file changes. A build system
//! that is not installed is skipped with a message (`.ci/run` installs cmake).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn installed(tool: &str) -> bool {
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!("skipped: {tool} is not installed");
    }
    found
}

fn run(command: &mut Command) -> String {
    let out = command.output().expect("the command starts");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{command:?} failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// A copy of the seed model in `dir`, so the test can change it.
fn model_copy(dir: &Path) -> PathBuf {
    let model = dir.join("seed.keras");
    std::fs::copy(repo().join("tests/fixtures/models/seed.keras"), &model).unwrap();
    model
}

/// Makes `model` newer than everything built from it.
fn touch(model: &Path) {
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let bytes = std::fs::read(model).unwrap();
    std::fs::write(model, bytes).unwrap();
}

/// Runs `program` on every sample of the seed fixture and compares with Keras.
fn check_predictions(program: &Path) {
    let text = std::fs::read_to_string(repo().join("tests/fixtures/models/seed.io.json")).unwrap();
    let io: serde_json::Value = serde_json::from_str(&text).unwrap();
    let samples = io["inputs"][0]["data"].as_array().unwrap();
    let wanted = io["outputs"][0]["data"].as_array().unwrap();
    assert!(!samples.is_empty());
    for (x, y) in samples.iter().zip(wanted) {
        let input: Vec<String> = x
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.to_string())
            .collect();
        let mut child = Command::new(program)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.join(" ").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let got: Vec<f32> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect();
        let keras: Vec<f32> = y
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(got.len(), keras.len());
        for (g, k) in got.iter().zip(&keras) {
            assert!((g - k).abs() <= 1e-5 + 1e-4 * k.abs(), "got {g}, Keras {k}");
        }
    }
}

#[test]
fn make_example_generates_builds_and_regenerates() {
    if !installed("make") || !installed("g++") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let model = model_copy(dir.path());
    let out = dir.path().join("build");
    let make = || {
        let mut c = Command::new("make");
        c.arg("-C")
            .arg(repo().join("build-systems/make"))
            .arg(format!("KERAS2SRC={}", env!("CARGO_BIN_EXE_keras2src")))
            .arg(format!("MODEL={}", model.display()))
            .arg(format!("OUT={}", out.display()));
        c
    };
    run(&mut make());
    check_predictions(&out.join("predict"));
    let up_to_date = |c: &mut Command| c.arg("-q").status().unwrap().success();
    assert!(
        up_to_date(&mut make()),
        "make rebuilds with nothing changed"
    );
    touch(&model);
    assert!(
        !up_to_date(&mut make()),
        "make does not see the changed model"
    );
    assert!(run(&mut make()).contains("keras2src"));
}

#[test]
fn cmake_example_generates_builds_and_regenerates() {
    if !installed("cmake") || !installed("g++") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let model = model_copy(dir.path());
    let build = dir.path().join("build");
    run(Command::new("cmake")
        .arg("-S")
        .arg(repo().join("build-systems/cmake"))
        .arg("-B")
        .arg(&build)
        .arg(format!("-DKERAS2SRC={}", env!("CARGO_BIN_EXE_keras2src")))
        .arg(format!("-DMODEL={}", model.display())));
    let cmake_build = || {
        let mut c = Command::new("cmake");
        c.arg("--build").arg(&build);
        c
    };
    assert!(run(&mut cmake_build()).contains("keras2src: generating seed.hpp"));
    check_predictions(&build.join("predict"));
    assert!(!run(&mut cmake_build()).contains("keras2src: generating"));
    touch(&model);
    assert!(run(&mut cmake_build()).contains("keras2src: generating seed.hpp"));
}
