//! Compile time of a large graph (issue 19), reported, not asserted: a synthetic chain of
//! 256 Dense layers (16 units, ReLU), built here as interchange JSON, generated as Rust with
//! the weights in a file and compiled as a library with `rustc -C opt-level=3`; the time is
//! printed (`cargo test --release --test compile_time -- --nocapture`). Measured on the
//! 2-core machine of issue 19, 300 such layers took 9.9 s out of line and 326 s inlined
//! into one `predict_with_scratch`, as before issue 19, one function per layer
//! (scripts/compile_times.sh measures the keras.applications models; BENCHMARKS.md has
//! the numbers). What is asserted: the code compiles, every layer function is kept out of
//! line, and layers equal up to their weights share a function, the properties that keep
//! the compile time linear in the number of distinct layers.

use std::process::Command;
use std::time::Instant;

use keras2src::{Lang, Model, Options, WeightsPlacement};
use serde_json::{json, Value};

mod common;

const LAYERS: usize = 256;
const UNITS: usize = 16;

/// Deterministic weights in [-0.2, 0.2).
struct Lcg(u64);

impl Lcg {
    fn values(&mut self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| {
                self.0 = self
                    .0
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((self.0 >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.4
            })
            .collect()
    }
}

/// `LAYERS` Dense layers of `UNITS` units, as an interchange document.
fn chain() -> Value {
    let mut rng = Lcg(1);
    let mut layers = vec![json!({"class_name": "InputLayer", "config": {
        "batch_shape": [null, UNITS], "dtype": "float32", "name": "input"}})];
    let mut weights = serde_json::Map::new();
    for i in 0..LAYERS {
        let name = format!("dense{i}");
        layers.push(json!({"class_name": "Dense", "config": {
            "name": name, "units": UNITS, "activation": "relu", "use_bias": true}}));
        weights.insert(
            name,
            json!([
                {"shape": [UNITS, UNITS], "data": rng.values(UNITS * UNITS)},
                {"shape": [UNITS], "data": rng.values(UNITS)}
            ]),
        );
    }
    json!({"format": "keras2src", "version": 1, "keras_version": "3.10.0",
        "model": {"class_name": "Sequential", "config": {"name": "chain", "layers": layers}},
        "weights": weights})
}

#[test]
fn large_graph_compile_time_is_reported() {
    let dir = common::work_dir("compile-time");
    let json_path = dir.path.join("chain.interchange.json");
    std::fs::write(&json_path, serde_json::to_string(&chain()).unwrap()).unwrap();
    let model = Model::load(&json_path, None).unwrap();
    let mut options = Options::new(Lang::Rust, "chain");
    options.weights = WeightsPlacement::File;
    let generated = model.generate_with(&options).unwrap();
    // Layer functions are the top-level `fn`s other than the API and the view helpers.
    let functions = generated
        .source
        .lines()
        .filter(|l| l.starts_with("fn ") && !l.starts_with("fn view"))
        .count();
    let out_of_line = generated.source.matches("#[inline(never)]\n").count();
    assert_eq!(
        out_of_line, functions,
        "every one of the {functions} layer functions should be #[inline(never)] \
         (backend::INLINE_LAYERS_MAX): inlined, they make one huge predict_with_scratch"
    );
    // The Dense layers differ only in their weights, so they share a function taking the
    // weight arrays (a regression to one function per layer fails here).
    assert!(
        (1..=LAYERS / 16).contains(&functions),
        "{functions} layer functions for {LAYERS} layers equal up to their weights: \
         they should share functions (lower::share)"
    );
    let source = dir.path.join("chain.rs");
    generated.write(&source).unwrap();
    let start = Instant::now();
    let status = Command::new("rustc")
        .args([
            "--edition",
            "2021",
            "--crate-type",
            "lib",
            "-C",
            "opt-level=3",
        ])
        .arg(&source)
        .arg("--out-dir")
        .arg(&dir.path)
        .status()
        .expect("rustc on the PATH");
    let seconds = start.elapsed().as_secs_f64();
    assert!(status.success(), "the generated module does not compile");
    println!(
        "compile time: {LAYERS} layers (Dense, {UNITS} units), \
         {functions} layer functions, rustc -C opt-level=3 --crate-type lib: {seconds:.1} s \
         ({:.0} ms a layer)",
        seconds * 1000.0 / LAYERS as f64
    );
}
