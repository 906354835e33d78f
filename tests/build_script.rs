//! keras2src as a build-dependency, as the README and build-example/ use it: with
//! `default-features = false` the library builds alone (no clap, no command line), and a
//! model error fails the build with a clean message, not a panic with a backtrace.
//!
//! Each build script is built in a crate of its own outside this workspace, in this
//! workspace's `target/` with `--release`, where `cargo test --release` has already built
//! the library for build-example/'s build script (the same unit: nothing is rebuilt).

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The README's `// build.rs` example.
fn readme_build_rs() -> String {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let start = readme
        .find("```rust\n// build.rs\n")
        .expect("the README shows a build.rs")
        + "```rust\n".len();
    let len = readme[start..].find("```").unwrap();
    readme[start..start + len].to_string()
}

/// A crate at `dir` whose build script is `build_rs`, depending on keras2src without its
/// default features; returns `cargo build`'s output.
fn build(dir: &Path, build_rs: &str) -> std::process::Output {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"uses-keras2src\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n\
             [build-dependencies]\nkeras2src = {{ path = {:?}, default-features = false }}\n\n\
             [workspace]\n",
            repo().display().to_string()
        ),
    )
    .unwrap();
    std::fs::write(dir.join("src/lib.rs"), "").unwrap();
    std::fs::write(dir.join("build.rs"), build_rs).unwrap();
    // The same versions as this repository, so nothing is fetched.
    std::fs::copy(repo().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    Command::new(env!("CARGO"))
        .current_dir(dir)
        .args(["build", "--release", "--offline"])
        .env("CARGO_TARGET_DIR", repo().join("target"))
        // A panic would print its backtrace.
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("cargo runs")
}

#[test]
fn build_scripts_fail_cleanly_on_a_bad_model_and_need_no_cli() {
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(repo().join("build-example/build.rs")).unwrap();
    // Each crate with a model that is not one, where its build script looks for it.
    let cases = [
        (
            dir.path().join("readme"),
            readme_build_rs(),
            "readme/models/seed.keras",
        ),
        (
            dir.path().join("example/crate"),
            example,
            "example/tests/fixtures/models/seed.keras",
        ),
    ];
    for (crate_dir, build_rs, model) in cases {
        let model = dir.path().join(model);
        std::fs::create_dir_all(model.parent().unwrap()).unwrap();
        std::fs::write(&model, "not a model").unwrap();
        let o = build(&crate_dir, &build_rs);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{err}");
        assert!(
            err.contains("keras2src: ") && err.contains("seed.keras: not a Keras model"),
            "{err}"
        );
        assert!(
            !err.contains("panicked") && !err.contains("stack backtrace"),
            "{err}"
        );
        assert!(
            !err.contains("Compiling clap"),
            "the CLI is not built: {err}"
        );
    }
}
