//! The CMake and Make examples in build-systems/ (`keras2src_add_model` in Keras2Src.cmake,
//! `keras2src_model` in keras2src.mk): each generates the seed model's header with the
//! keras2src binary as a build step, with its weights inline and in a file, builds a
//! program around it whose output must match Keras's, and regenerates the header when the
//! model file changes; both find keras2src after `cargo build --release` and say what to
//! do when they cannot. A build system that is not installed is skipped with a message
//! (`.ci/run` installs cmake).

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

/// The build's generated files: the header, and the weights file when there is one.
fn generated(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("seed."))
        .collect();
    names.sort();
    names
}

/// The weights inline (the seed's default) and in a file read by `.incbin`.
const VARIANTS: [(&str, &[&str]); 2] = [
    ("inline", &["seed.hpp"]),
    ("--weights file", &["seed.hpp", "seed.hpp.weights.bin"]),
];

#[test]
fn make_example_generates_builds_and_regenerates() {
    if !installed("make") || !installed("g++") {
        return;
    }
    for (options, files) in VARIANTS {
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
            if options != "inline" {
                c.arg(format!("MODEL_OPTIONS={options}"));
            }
            c
        };
        run(&mut make());
        assert_eq!(generated(&out), files, "{options}");
        check_predictions(&out.join("predict"));
        let up_to_date = |c: &mut Command| c.arg("-q").status().unwrap().success();
        assert!(
            up_to_date(&mut make()),
            "make rebuilds with nothing changed ({options})"
        );
        touch(&model);
        assert!(
            !up_to_date(&mut make()),
            "make does not see the changed model ({options})"
        );
        assert!(run(&mut make()).contains("keras2src"));
        check_predictions(&out.join("predict"));
    }
}

#[test]
fn cmake_example_generates_builds_and_regenerates() {
    if !installed("cmake") || !installed("g++") {
        return;
    }
    for (options, files) in VARIANTS {
        let dir = tempfile::tempdir().unwrap();
        let model = model_copy(dir.path());
        let build = dir.path().join("build");
        let mut configure = Command::new("cmake");
        configure
            .arg("-S")
            .arg(repo().join("build-systems/cmake"))
            .arg("-B")
            .arg(&build)
            .arg("-DCMAKE_BUILD_TYPE=Release")
            .arg(format!("-DKERAS2SRC={}", env!("CARGO_BIN_EXE_keras2src")))
            .arg(format!("-DMODEL={}", model.display()));
        if options != "inline" {
            configure.arg(format!("-DMODEL_OPTIONS={}", options.replace(' ', ";")));
        }
        run(&mut configure);
        let cmake_build = || {
            let mut c = Command::new("cmake");
            c.arg("--build").arg(&build);
            c
        };
        assert!(run(&mut cmake_build()).contains("keras2src: generating seed.hpp"));
        assert_eq!(generated(&build.join("keras2src")), files, "{options}");
        check_predictions(&build.join("predict"));
        assert!(!run(&mut cmake_build()).contains("keras2src: generating"));
        touch(&model);
        assert!(run(&mut cmake_build()).contains("keras2src: generating seed.hpp"));
        check_predictions(&build.join("predict"));
    }
}

/// After the README's install step (`cargo build --release`), both find the executable in
/// target/release without being told; a wrong or missing one is a clear error.
#[test]
fn build_systems_find_keras2src_or_say_how() {
    let built = repo().join("target/release/keras2src");
    if installed("cmake") && installed("g++") {
        let dir = tempfile::tempdir().unwrap();
        if built.exists() {
            let build = dir.path().join("found");
            let o = Command::new("cmake")
                .arg("-S")
                .arg(repo().join("build-systems/cmake"))
                .arg("-B")
                .arg(&build)
                .arg("-DCMAKE_BUILD_TYPE=Release")
                .env("PATH", "/usr/bin:/bin")
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let cache = std::fs::read_to_string(build.join("CMakeCache.txt")).unwrap();
            let found = format!("KERAS2SRC:FILEPATH={}", built.display());
            assert!(cache.contains(&found), "wanted {found}");
        }
        // A wrong path is named.
        let o = Command::new("cmake")
            .arg("-S")
            .arg(repo().join("build-systems/cmake"))
            .arg("-B")
            .arg(dir.path().join("wrong"))
            .arg("-DKERAS2SRC=/nonexistent/keras2src")
            .output()
            .unwrap();
        // CMake wraps its messages: compare with the whitespace folded.
        let stderr = String::from_utf8_lossy(&o.stderr)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(!o.status.success());
        assert!(
            stderr.contains("'/nonexistent/keras2src', which does not exist"),
            "{stderr}"
        );
        // Nowhere to be found: the module outside this repository, nothing on PATH.
        let project = dir.path().join("project");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::copy(
            repo().join("build-systems/cmake/Keras2Src.cmake"),
            project.join("Keras2Src.cmake"),
        )
        .unwrap();
        std::fs::write(project.join("main.cpp"), "int main() { return 0; }\n").unwrap();
        std::fs::write(
            project.join("CMakeLists.txt"),
            "cmake_minimum_required(VERSION 3.16)\nproject(p CXX)\n\
             include(Keras2Src.cmake)\nadd_executable(app main.cpp)\n\
             keras2src_add_model(TARGET app MODEL m.keras NAME m)\n",
        )
        .unwrap();
        let o = Command::new("cmake")
            .arg("-S")
            .arg(&project)
            .arg("-B")
            .arg(dir.path().join("missing"))
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", dir.path())
            .env_remove("CARGO_HOME")
            .output()
            .unwrap();
        // CMake wraps its messages: compare with the whitespace folded.
        let stderr = String::from_utf8_lossy(&o.stderr)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(!o.status.success());
        assert!(
            stderr.contains("the keras2src executable was not found")
                && stderr.contains("-DKERAS2SRC=/path/to/keras2src"),
            "{stderr}"
        );
    }
    if installed("make") && installed("g++") {
        let dir = tempfile::tempdir().unwrap();
        if built.exists() {
            let out = dir.path().join("found");
            let o = Command::new("make")
                .arg("-C")
                .arg(repo().join("build-systems/make"))
                .arg(format!("OUT={}", out.display()))
                .env("PATH", "/usr/bin:/bin")
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            check_predictions(&out.join("predict"));
        }
        let o = Command::new("make")
            .arg("-C")
            .arg(repo().join("build-systems/make"))
            .arg(format!("OUT={}", dir.path().join("wrong").display()))
            .arg("KERAS2SRC=/nonexistent/keras2src")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(!o.status.success());
        assert!(
            stderr.contains("the keras2src executable was not found")
                && stderr.contains("KERAS2SRC=/path/to/keras2src"),
            "{stderr}"
        );
    }
}
