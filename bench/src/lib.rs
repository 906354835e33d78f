//! The benchmark harness of issue 5: generated Rust and C++ against peer engines, on the
//! same inputs and in the same run.
//!
//! One module per concern: [`fixture`] reads the models and Keras's outputs, [`engine`]
//! is what every engine answers to (a worker process speaking a line protocol, or
//! in-process code), [`ours`] generates and builds our code, [`peers`] starts the Python
//! peers, [`timing`] calibrates and interleaves the rounds, [`report`] writes the tables,
//! [`machine`] describes the machine and [`elf`] reads section sizes from objects.

pub mod elf;
pub mod engine;
pub mod fixture;
pub mod machine;
pub mod ours;
pub mod peers;
pub mod report;
pub mod suite;
pub mod timing;

use std::path::PathBuf;

/// The repository root (the workspace).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ has a parent")
        .to_path_buf()
}

/// `path` relative to the repository root when inside it, for messages.
pub fn shown(path: &std::path::Path) -> String {
    path.strip_prefix(repo_root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Where build products go: `$CARGO_TARGET_DIR/bench` (relative to the repository root
/// when relative), else `target/bench`.
pub fn work_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| {
            if t.is_absolute() {
                t
            } else {
                repo_root().join(t)
            }
        })
        .unwrap_or_else(|| repo_root().join("target"));
    target.join("bench")
}

/// Settings from the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `KERAS2SRC_BENCH_MODELS=b1,b3`: only these model keys (all when `None`).
    pub models: Option<Vec<String>>,
    /// `KERAS2SRC_BENCH_QUICK=1`: few rounds, results written under the work directory.
    pub quick: bool,
    /// `KERAS2SRC_BENCH_PYTHON`: the Python that runs `bench/peers.py`.
    pub python: PathBuf,
    /// Timed rounds per model.
    pub rounds: usize,
}

impl Settings {
    pub fn from_env() -> Settings {
        let models = std::env::var("KERAS2SRC_BENCH_MODELS").ok().map(|v| {
            v.split(',')
                .map(|w| w.trim().to_string())
                .filter(|w| !w.is_empty())
                .collect()
        });
        let quick = std::env::var("KERAS2SRC_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        let python = std::env::var_os("KERAS2SRC_BENCH_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let venv = PathBuf::from("/opt/peervenv/bin/python");
                if venv.exists() {
                    venv
                } else {
                    PathBuf::from("python3")
                }
            });
        Settings {
            models,
            quick,
            python,
            rounds: if quick { 5 } else { 25 },
        }
    }

    /// A run that may replace the committed `BENCHMARKS.md` and `bench/results.json`:
    /// every model, full rounds.
    pub fn is_full(&self) -> bool {
        !self.quick && self.models.is_none()
    }
}

/// Prints the report and writes it: `BENCHMARKS.md` and `bench/results.json` for a full
/// run, else (quick or filtered) the same files under the work directory, so that a trial
/// never replaces the committed numbers.
pub fn write_report(
    settings: &Settings,
    machine: &machine::Machine,
    models: &[report::ModelResult],
    versions: &report::Versions,
) -> Result<(), String> {
    let root = repo_root();
    let previous = report::Previous::read(&root.join("bench/results.json"));
    let notes = std::fs::read_to_string(root.join("BENCHMARKS.md"))
        .ok()
        .and_then(|md| report::notes_of(&md));
    let md = report::markdown(
        models,
        machine,
        versions,
        &previous,
        settings.rounds,
        notes.as_deref(),
    );
    let json = report::json(models, machine, &previous);
    println!("{md}");
    let (md_path, json_path) = if settings.is_full() {
        (root.join("BENCHMARKS.md"), root.join("bench/results.json"))
    } else {
        let dir = work_dir();
        (dir.join("BENCHMARKS.md"), dir.join("results.json"))
    };
    let write = |path: &std::path::Path, text: String| {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
    };
    write(&md_path, md)?;
    write(
        &json_path,
        serde_json::to_string_pretty(&json).expect("JSON") + "\n",
    )?;
    eprintln!("wrote {} and {}", md_path.display(), json_path.display());
    Ok(())
}
