//! Results, the markdown report (`BENCHMARKS.md`) and the machine-readable medians
//! (`bench/results.json`), compared with the previous run.

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::elf::Sizes;
use crate::machine::Machine;
use crate::ours::{Generation, REFERENCE};
use crate::timing::Stats;

/// Report order of the engines.
const ENGINE_ORDER: [&str; 13] = [
    "rust",
    "rust-native",
    "cpp-O2",
    "cpp-O3-native",
    "tract",
    "tract-fused",
    "ort",
    "ort-fused",
    "litert",
    "litert-fused",
    "rust-native-int8",
    "cpp-O3-native-int8",
    "litert-int8",
];

/// The int8 engines, each with the float engine it is the int8 counterpart of.
const INT8_PAIRS: [(&str, &str); 3] = [
    ("rust-native-int8", "rust-native"),
    ("cpp-O3-native-int8", "cpp-O3-native"),
    ("litert-int8", "litert"),
];

/// The int8 engine our int8 builds are compared with.
const INT8_PEER: &str = "litert-int8";

/// A slowdown against the previous run beyond this is flagged, when it is also outside
/// both runs' spread (this run's p10 above the previous p90): on a shared machine load
/// alone moves medians by more than 10%.
const SLOWDOWN_FLAG: f64 = 1.10;

#[derive(Debug, Clone)]
pub enum Status {
    /// Started and agreed with Keras, waiting for rounds (never reported).
    Pending,
    Timed {
        stats: Stats,
        calls_per_slice: u64,
    },
    Disagrees,
    Skipped(String),
    Failed(String),
}

#[derive(Debug, Clone)]
pub struct EngineResult {
    pub key: String,
    pub label: String,
    /// A peer's package and version, as it reported them.
    pub version: Option<String>,
    /// Against Keras (for an int8 engine, information: int8 differs by design).
    pub max_abs_err: Option<f32>,
    /// Our int8 builds: against the quantized interpreter (what they are checked with).
    pub check_err: Option<f32>,
    pub status: Status,
}

impl EngineResult {
    pub fn new(key: &str, label: &str, version: Option<String>) -> EngineResult {
        EngineResult {
            key: key.into(),
            label: label.into(),
            version,
            max_abs_err: None,
            check_err: None,
            status: Status::Pending,
        }
    }

    pub fn skipped(key: &str, label: &str, why: String) -> EngineResult {
        EngineResult {
            status: Status::Skipped(why),
            ..EngineResult::new(key, label, None)
        }
    }

    pub fn failed(key: &str, label: &str, why: String) -> EngineResult {
        EngineResult {
            status: Status::Failed(why),
            ..EngineResult::new(key, label, None)
        }
    }

    /// Median nanoseconds per call, when timed.
    pub fn median_ns(&self) -> Option<f64> {
        match &self.status {
            Status::Timed { stats, .. } => Some(stats.median),
            _ => None,
        }
    }
}

/// One compiled build's costs.
#[derive(Debug, Clone)]
pub struct BuildCost {
    pub key: String,
    pub label: String,
    pub compile_s: f64,
    pub sizes: Sizes,
}

/// What a user pays besides latency.
#[derive(Debug, Clone)]
pub struct Costs {
    pub load_s: f64,
    pub generate_rust_s: f64,
    pub generate_cpp_s: f64,
    pub weights_in_file: bool,
    /// Where `predict`'s working memory is: `stack` or `static`.
    pub scratch: &'static str,
    pub scratch_floats: usize,
    pub activation_floats: usize,
    pub builds: Vec<BuildCost>,
    /// The int8 model's generation, when it has one (its builds are in `builds`).
    pub int8: Option<Int8Costs>,
}

/// Generating the int8 model (`--quantize int8`).
#[derive(Debug, Clone)]
pub struct Int8Costs {
    /// Seconds to read the model file (calibration is in the Rust generation).
    pub load_s: f64,
    pub generate_rust_s: f64,
    pub generate_cpp_s: f64,
    pub weights_in_file: bool,
}

impl Int8Costs {
    pub fn from_generation(g: &Generation) -> Int8Costs {
        Int8Costs {
            load_s: g.load_s,
            generate_rust_s: g.rust_s,
            generate_cpp_s: g.cpp_s,
            weights_in_file: g.weights_in_file,
        }
    }
}

impl Costs {
    pub fn from_generation(g: &Generation) -> Costs {
        Costs {
            load_s: g.load_s,
            generate_rust_s: g.rust_s,
            generate_cpp_s: g.cpp_s,
            weights_in_file: g.weights_in_file,
            scratch: g.scratch.as_str(),
            scratch_floats: g.scratch_floats,
            activation_floats: g.activation_floats,
            builds: Vec::new(),
            int8: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ModelResult {
    pub key: String,
    pub fixture: String,
    /// Why the whole model was skipped.
    pub skipped: Option<String>,
    pub macs: usize,
    pub engines: Vec<EngineResult>,
    pub costs: Option<Costs>,
}

impl ModelResult {
    pub fn skipped(key: &str, fixture: &str, why: String) -> ModelResult {
        ModelResult {
            key: key.into(),
            fixture: fixture.into(),
            skipped: Some(why),
            macs: 0,
            engines: Vec::new(),
            costs: None,
        }
    }

    pub fn sort_engines(&mut self) {
        let rank = |k: &str| ENGINE_ORDER.iter().position(|&e| e == k).unwrap_or(99);
        self.engines.sort_by_key(|e| rank(&e.key));
    }

    pub fn median_ns(&self, engine: &str) -> Option<f64> {
        self.engines
            .iter()
            .find(|e| e.key == engine)
            .and_then(EngineResult::median_ns)
    }

    fn compile_s(&self, build: &str) -> Option<f64> {
        self.costs
            .as_ref()?
            .builds
            .iter()
            .find(|b| b.key == build)
            .map(|b| b.compile_s)
    }
}

/// Medians of the previous run: model key -> engine key -> median µs.
#[derive(Debug, Clone, Default)]
pub struct Previous {
    pub date: Option<String>,
    doc: Value,
}

impl Previous {
    pub fn read(path: &std::path::Path) -> Previous {
        let doc: Value = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null);
        Previous {
            date: doc["date"].as_str().map(str::to_string),
            doc,
        }
    }

    /// The previous run's median and p90, in µs.
    fn times_us(&self, model: &str, engine: &str) -> Option<(f64, f64)> {
        let e = &self.doc["models"][model]["engines"][engine];
        Some((e["median_us"].as_f64()?, e["p90_us"].as_f64()?))
    }
}

/// The tool versions the report names besides the machine.
#[derive(Debug, Clone, Default)]
pub struct Versions {
    pub tract: Option<String>,
}

/// A pass/fail line of the goals.
struct Goal {
    text: String,
    /// `None`: not measurable in this run (a model or a peer missing).
    pass: Option<bool>,
    detail: String,
}

fn goals(models: &[ModelResult]) -> Vec<Goal> {
    let model = |k: &str| models.iter().find(|m| m.key == k);
    let median = |m: &str, e: &str| model(m).and_then(|m| m.median_ns(e));
    let ours = |m: &str| median(m, REFERENCE);
    // A peer's best case: its plain or its fused-op model, whichever is faster.
    let peer = |m: &str, e: &str| {
        let plain = median(m, e);
        let fused = median(m, &format!("{e}-fused"));
        match (plain, fused) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    };
    let mut goals = Vec::new();
    let us = |ns: f64| format!("{:.3} µs", ns / 1e3);
    let b1 = ours("b1");
    goals.push(Goal {
        text: "B1: Rust native ≤ 0.2 µs".into(),
        pass: b1.map(|t| t <= 200.0),
        detail: b1.map_or("not measured".into(), us),
    });
    let ratio_goal = |text: &str, m: &str, e: &str, limit: f64| {
        let (o, p) = (ours(m), peer(m, e));
        Goal {
            text: text.into(),
            pass: o.zip(p).map(|(o, p)| o / p <= limit),
            detail: match (o, p) {
                (Some(o), Some(p)) => format!("{} vs {} ({:.2}×)", us(o), us(p), o / p),
                _ => "not measured".into(),
            },
        }
    };
    let mut b2 = ratio_goal("B2: Rust native faster than LiteRT", "b2", "litert", 1.0);
    b2.pass = ours("b2").zip(peer("b2", "litert")).map(|(o, p)| o < p);
    goals.push(b2);
    goals.push(ratio_goal(
        "B3: Rust native ≤ 0.5× onnxruntime",
        "b3",
        "ort",
        0.5,
    ));
    goals.push(ratio_goal(
        "MobileNetV2: Rust native ≤ 1.5× onnxruntime",
        "mobilenet",
        "ort",
        1.5,
    ));
    let compile = model("mobilenet").and_then(|m| {
        let a = m.compile_s("rust")?;
        let b = m.compile_s("rust-native")?;
        Some(a.max(b))
    });
    goals.push(Goal {
        text: "MobileNetV2: generated Rust compiles in < 30 s".into(),
        pass: compile.map(|s| s < 30.0),
        detail: compile.map_or("not measured".into(), |s| {
            format!("{s:.1} s (slower of the two rustc builds)")
        }),
    });
    goals
}

/// Issue 16's goals: the C++ as fast as the Rust and ahead of the peers, `-O2` close to
/// `-O3 -march=native`, MobileNetV2 ahead of LiteRT.
fn goals_16(models: &[ModelResult]) -> Vec<Goal> {
    let median = |m: &str, e: &str| {
        models
            .iter()
            .find(|r| r.key == m)
            .and_then(|r| r.median_ns(e))
    };
    let peer = |m: &str, e: &str| match (median(m, e), median(m, &format!("{e}-fused"))) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let us = |ns: f64| format!("{:.3} µs", ns / 1e3);
    let ratio = |text: String, a: Option<f64>, b: Option<f64>, pass: &dyn Fn(f64) -> bool| Goal {
        text,
        pass: a.zip(b).map(|(a, b)| pass(a / b)),
        detail: match (a, b) {
            (Some(a), Some(b)) => format!("{} vs {} ({:.2}×)", us(a), us(b), a / b),
            _ => "not measured".into(),
        },
    };
    let mut goals = Vec::new();
    for m in [
        "b1",
        "b2",
        "b3",
        "mobilenet",
        "transformer",
        "efficientnet",
        "resnet50",
    ] {
        let cpp = median(m, "cpp-O3-native");
        goals.push(ratio(
            format!("{m}: C++ -O3 native ≤ 1.15× Rust native"),
            cpp,
            median(m, REFERENCE),
            &|r| r <= 1.15,
        ));
        for (peer_key, name) in [("litert", "LiteRT"), ("ort", "onnxruntime")] {
            goals.push(ratio(
                format!("{m}: C++ -O3 native faster than {name}"),
                cpp,
                peer(m, peer_key),
                &|r| r < 1.0,
            ));
        }
        if ["b1", "b2", "b3"].contains(&m) {
            goals.push(ratio(
                format!("{m}: C++ -O2 ≤ 1.5× C++ -O3 native"),
                median(m, "cpp-O2"),
                cpp,
                &|r| r <= 1.5,
            ));
        }
    }
    goals.push(ratio(
        "mobilenet: Rust native ≤ 0.8× LiteRT".into(),
        median("mobilenet", REFERENCE),
        peer("mobilenet", "litert"),
        &|r| r <= 0.8,
    ));
    // The large models (keras.applications, 224×224): the Rust faster than both peers too
    // (the C++ rows are above). Their files may be missing (bench/large/, not in git).
    for (m, name) in [("efficientnet", "EfficientNetB0"), ("resnet50", "ResNet50")] {
        let skipped = models
            .iter()
            .find(|r| r.key == m)
            .and_then(|r| r.skipped.as_ref());
        for (peer_key, peer_name) in [("litert", "LiteRT"), ("ort", "onnxruntime")] {
            let mut goal = ratio(
                format!("{m} ({name}): Rust native faster than {peer_name}"),
                median(m, REFERENCE),
                peer(m, peer_key),
                &|r| r < 1.0,
            );
            if skipped.is_some() {
                goal.detail = format!("skipped: run `{}`", crate::fixture::MAKE_LARGE);
            }
            goals.push(goal);
        }
    }
    goals
}

/// Goals as a Markdown table with pass / fail.
fn goal_table(w: &mut String, goals: Vec<Goal>) {
    let _ = writeln!(w, "| goal | result | measured |");
    let _ = writeln!(w, "|---|---|---|");
    for g in goals {
        let verdict = match g.pass {
            Some(true) => "pass",
            Some(false) => "**fail**",
            None => "not measured",
        };
        let _ = writeln!(w, "| {} | {verdict} | {} |", g.text, g.detail);
    }
}

fn fmt_us(ns: f64) -> String {
    let us = ns / 1e3;
    if us < 10.0 {
        format!("{us:.3}")
    } else if us < 1000.0 {
        format!("{us:.1}")
    } else {
        format!("{us:.0}")
    }
}

fn fmt_bytes(b: u64) -> String {
    if b >= 1 << 20 {
        format!("{:.2} MiB", b as f64 / (1u64 << 20) as f64)
    } else if b >= 1 << 10 {
        format!("{:.1} KiB", b as f64 / 1024.0)
    } else {
        format!("{b} B")
    }
}

/// One cell of text on one line, safe inside a table.
fn cell(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let short: String = one_line.chars().take(160).collect();
    short.replace('|', "\\|")
}

/// The int8 rows of a model side by side: each against LiteRT's int8 model and against
/// its own float build.
fn int8_table(w: &mut String, m: &ModelResult) {
    if !m.engines.iter().any(|e| e.key.ends_with("-int8")) {
        return;
    }
    let peer_file = match m.engines.iter().find(|e| e.key == INT8_PEER) {
        Some(EngineResult {
            status: Status::Skipped(_),
            ..
        })
        | None => String::new(),
        Some(_) => format!(
            "; LiteRT: `bench/models/{}.int8.tflite`, the same samples, float32 I/O",
            m.fixture
        ),
    };
    let _ = writeln!(
        w,
        "int8 (`--quantize int8`, calibrated on `{}.calib.json`{peer_file}). × LiteRT int8 = \
         time / LiteRT int8's; × float = time / the same engine's float time. Our int8 \
         builds are checked against our quantized interpreter before timing; max abs err is \
         against Keras's float output (information: int8 differs by design).\n",
        m.fixture
    );
    let _ = writeln!(
        w,
        "| int8 engine | median µs | × LiteRT int8 | × float | max abs err vs Keras | check |"
    );
    let _ = writeln!(w, "|---|---:|---:|---:|---:|---|");
    let peer = m.median_ns(INT8_PEER);
    for (key, float) in INT8_PAIRS {
        let Some(e) = m.engines.iter().find(|e| e.key == key) else {
            continue;
        };
        let err = e.max_abs_err.map_or("–".into(), |x| format!("{x:.1e}"));
        let check = match e.check_err {
            Some(0.0) => "quantized interpreter: bit for bit".into(),
            Some(x) => format!("quantized interpreter: max abs err {x:.1e}"),
            None if key == INT8_PEER => "none (no bit-exact reference)".into(),
            None => "–".into(),
        };
        let ratio =
            |other: Option<f64>, t: f64| other.map_or("–".into(), |o| format!("{:.2}", t / o));
        match e.median_ns() {
            Some(t) => {
                let _ = writeln!(
                    w,
                    "| {} | {} | {} | {} | {err} | {check} |",
                    cell(&e.label),
                    fmt_us(t),
                    ratio(peer, t),
                    ratio(m.median_ns(float), t)
                );
            }
            None => {
                let why = match &e.status {
                    Status::Skipped(why) => format!("skipped: {why}"),
                    Status::Failed(why) => format!("failed: {why}"),
                    Status::Disagrees => "disagrees, not timed".into(),
                    _ => "not timed".into(),
                };
                let _ = writeln!(
                    w,
                    "| {} | {} | | | {err} | {check} |",
                    cell(&e.label),
                    cell(&why)
                );
            }
        }
    }
    let _ = writeln!(w);
}

/// The markdown report. `notes` is the hand-written "## Notes" section of the previous
/// report, kept as it was.
pub fn markdown(
    models: &[ModelResult],
    machine: &Machine,
    versions: &Versions,
    previous: &Previous,
    rounds: usize,
    notes: Option<&str>,
) -> String {
    let mut md = String::new();
    let peak = machine.peak_gflops();
    let w = &mut md;
    let _ = writeln!(w, "# Benchmarks\n");
    let _ = writeln!(
        w,
        "Written by `cargo bench -p keras2src-bench` (bench/benches/compare.rs) on {}; \
         do not edit by hand except the Notes section at the end, which the next run keeps.\n",
        machine.date
    );
    let _ = writeln!(
        w,
        "Single-sample latency on one thread, per call, for the first sample of each \
         fixture. Every engine is first checked against Keras's output \
         (|got − keras| ≤ 1e-5 + 1e-4·|keras| elementwise) and timed only if it agrees; \
         then each is calibrated to slices of 10–20 ms and the engines run one slice each \
         in turn for {rounds} rounds. Median and spread (p10–p90, min) are over rounds. \
         × = engine time / Rust native time (higher is slower). GFLOP/s counts 2 flops \
         per MAC (MACs from `keras2src inspect`); the FMA peak is 32 flop/cycle (2 FMA \
         pipes × 8 f32 lanes × 2) × the clock, taken from `cpu MHz` in /proc/cpuinfo \
         ({:.0} MHz → {peak:.1} GFLOP/s). Our code is built outside the timing loop's \
         crate / translation unit (an rlib, an object), so nothing is hoisted out of it.\n",
        machine.mhz
    );
    if let Some(date) = &previous.date {
        let _ = writeln!(
            w,
            "\"vs previous\" compares medians with the run of {date} (bench/results.json); \
             ⚠ marks a slowdown over {:.0}% whose p10 is above the previous p90, which needs a note.\n",
            (SLOWDOWN_FLAG - 1.0) * 100.0
        );
    }

    let _ = writeln!(w, "## Latency\n");
    for m in models {
        let _ = writeln!(w, "### {} (`{}`)\n", m.key, m.fixture);
        if let Some(why) = &m.skipped {
            let _ = writeln!(w, "Skipped: {}\n", cell(why));
            continue;
        }
        let _ = writeln!(w, "{} MACs.\n", m.macs);
        let _ = writeln!(
            w,
            "| engine | median µs | p10–p90 µs | min µs | × Rust native | GFLOP/s | % FMA peak | max abs err | vs previous |"
        );
        let _ = writeln!(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        let reference = m.median_ns(REFERENCE);
        for e in &m.engines {
            let label = match &e.version {
                Some(v) => format!("{}; {}", e.label, v),
                None if e.key == "tract" => {
                    format!("{} {}", e.label, versions.tract.as_deref().unwrap_or(""))
                }
                None => e.label.clone(),
            };
            let err = e.max_abs_err.map_or("–".into(), |x| format!("{x:.1e}"));
            match &e.status {
                Status::Timed { stats, .. } => {
                    let gflops = 2.0 * m.macs as f64 / stats.median;
                    let ratio =
                        reference.map_or("–".into(), |r| format!("{:.2}", stats.median / r));
                    let vs =
                        previous
                            .times_us(&m.key, &e.key)
                            .map_or("–".into(), |(old, old_p90)| {
                                let change = stats.median / 1e3 / old;
                                let slower = change > SLOWDOWN_FLAG && stats.p10 / 1e3 > old_p90;
                                let flag = if slower { " ⚠" } else { "" };
                                format!("{:+.0}%{flag}", (change - 1.0) * 100.0)
                            });
                    let _ = writeln!(
                        w,
                        "| {} | {} | {}–{} | {} | {} | {:.2} | {:.1}% | {} | {} |",
                        cell(&label),
                        fmt_us(stats.median),
                        fmt_us(stats.p10),
                        fmt_us(stats.p90),
                        fmt_us(stats.min),
                        ratio,
                        gflops,
                        100.0 * gflops / peak,
                        err,
                        vs
                    );
                }
                Status::Disagrees => {
                    let against = match e.check_err {
                        Some(x) => format!("the quantized interpreter (max abs err {x:.1e})"),
                        None if e.key.ends_with("-int8") => "Keras's output length".into(),
                        None => "Keras".into(),
                    };
                    let _ = writeln!(
                        w,
                        "| {} | disagrees with {against}, not timed | | | | | | {err} | |",
                        cell(&label)
                    );
                }
                Status::Skipped(why) => {
                    let _ = writeln!(
                        w,
                        "| {} | skipped: {} | | | | | | | |",
                        cell(&label),
                        cell(why)
                    );
                }
                Status::Failed(why) => {
                    let _ = writeln!(
                        w,
                        "| {} | failed: {} | | | | | | | |",
                        cell(&label),
                        cell(why)
                    );
                }
                Status::Pending => {}
            }
        }
        let _ = writeln!(w);
        int8_table(w, m);
    }

    let _ = writeln!(w, "## Goals of issue 5 (this run)\n");
    let _ = writeln!(
        w,
        "Against a peer's best case: the faster of its plain and its fused-op model.\n"
    );
    goal_table(w, goals(models));
    let _ = writeln!(
        w,
        "\nAnd: no benchmark slower than the previous run without a note (⚠ above).\n"
    );

    let _ = writeln!(w, "## Goals of issue 16 (this run)\n");
    let _ = writeln!(
        w,
        "C++ against Rust and the peers (a peer's best case, as above); the Cortex-M4 goals \
         are in Notes (from the firmware test).\n"
    );
    goal_table(w, goals_16(models));
    let _ = writeln!(w);

    let _ = writeln!(w, "## Costs besides latency\n");
    let _ = writeln!(
        w,
        "Generation: reading the .keras file, then generating each language through the \
         library (in-process). Compile: rustc of the generated module as an rlib, g++ of \
         one translation unit including the header, each alone. Sections: .text\\* and \
         .rodata\\* of that rlib / object (read from the ELF section headers). Working \
         memory: `SCRATCH_LEN` f32s against all intermediate tensors added up without \
         reuse.\n"
    );
    for m in models {
        let Some(c) = &m.costs else { continue };
        let _ = writeln!(w, "### {} (`{}`)\n", m.key, m.fixture);
        let _ = writeln!(
            w,
            "Generation: load {:.3} s, Rust {:.3} s, C++ {:.3} s; Rust weights {}. Working \
             memory: SCRATCH_LEN {} f32s ({}) vs {} f32s of activations ({:.0}%).\n",
            c.load_s,
            c.generate_rust_s,
            c.generate_cpp_s,
            if c.weights_in_file {
                "in model.weights.bin"
            } else {
                "inline"
            },
            c.scratch_floats,
            if c.scratch == "stack" {
                "on the stack"
            } else {
                "a static buffer"
            },
            c.activation_floats,
            100.0 * c.scratch_floats as f64 / c.activation_floats.max(1) as f64
        );
        if let Some(q) = &c.int8 {
            let _ = writeln!(
                w,
                "int8 generation (`--quantize int8`, calibration included): load {:.3} s, \
                 Rust {:.3} s, C++ {:.3} s; Rust weights {}.\n",
                q.load_s,
                q.generate_rust_s,
                q.generate_cpp_s,
                if q.weights_in_file {
                    "in model.weights.bin"
                } else {
                    "inline"
                }
            );
        }
        let _ = writeln!(w, "| build | compile s | .text | .rodata |");
        let _ = writeln!(w, "|---|---:|---:|---:|");
        for b in &c.builds {
            let _ = writeln!(
                w,
                "| {} | {:.2} | {} | {} |",
                b.label,
                b.compile_s,
                fmt_bytes(b.sizes.text),
                fmt_bytes(b.sizes.rodata)
            );
        }
        let _ = writeln!(w);
    }

    let _ = writeln!(w, "## Machine\n");
    let peer_version = |key: &str| {
        models
            .iter()
            .flat_map(|m| &m.engines)
            .find(|e| e.key == key)
            .and_then(|e| e.version.clone())
            .unwrap_or_else(|| "not run".into())
    };
    let _ = writeln!(
        w,
        "- CPU: {} ({} logical cores; benchmarks use one thread)",
        machine.cpu, machine.logical_cores
    );
    let _ = writeln!(
        w,
        "- Clock: {:.0} MHz (`cpu MHz`, /proc/cpuinfo, first core)",
        machine.mhz
    );
    let _ = writeln!(w, "- SIMD flags: {}", machine.simd_flags.join(" "));
    let _ = writeln!(w, "- {}", machine.rustc);
    let _ = writeln!(w, "- {}", machine.gxx);
    let _ = writeln!(
        w,
        "- tract-onnx {}",
        versions.tract.as_deref().unwrap_or("?")
    );
    let _ = writeln!(w, "- onnxruntime: {}", peer_version("ort"));
    let _ = writeln!(w, "- LiteRT: {}", peer_version("litert"));
    let _ = writeln!(w, "- Date: {}", machine.date);
    let _ = writeln!(
        w,
        "- Load average (1, 5, 15 min) at the start: {}",
        machine.load
    );
    match notes {
        Some(notes) => {
            let _ = write!(w, "\n{}", notes.trim_end());
            let _ = writeln!(w);
        }
        None => {
            let _ = writeln!(
                w,
                "\n## Notes\n\nWhy a benchmark got slower, and anything else a reader of the \
                 numbers should know (kept by the next run)."
            );
        }
    }
    md
}

/// The "## Notes" section of a previous report, to carry over.
pub fn notes_of(previous_md: &str) -> Option<String> {
    let start = previous_md.find("\n## Notes")?;
    Some(previous_md[start + 1..].to_string())
}

/// The machine-readable medians. Models not in this run keep their previous entry.
pub fn json(models: &[ModelResult], machine: &Machine, previous: &Previous) -> Value {
    let mut out = serde_json::Map::new();
    if let Some(old) = previous.doc["models"].as_object() {
        out.extend(old.clone());
    }
    for m in models.iter().filter(|m| m.skipped.is_none()) {
        let mut engines = serde_json::Map::new();
        for e in &m.engines {
            if let Status::Timed {
                stats,
                calls_per_slice,
            } = &e.status
            {
                let mut entry = json!({
                    "median_us": stats.median / 1e3,
                    "p10_us": stats.p10 / 1e3,
                    "p90_us": stats.p90 / 1e3,
                    "min_us": stats.min / 1e3,
                    "rounds": stats.rounds,
                    "calls_per_slice": calls_per_slice,
                    "max_abs_err": e.max_abs_err,
                    "version": e.version,
                });
                // Our int8 builds: their error against the quantized interpreter.
                if let Some(err) = e.check_err {
                    entry["check_err"] = json!(err);
                }
                engines.insert(e.key.clone(), entry);
            }
        }
        let costs = m.costs.as_ref().map(|c| {
            let mut costs = json!({
                "generate_rust_s": c.generate_rust_s,
                "generate_cpp_s": c.generate_cpp_s,
                "scratch_floats": c.scratch_floats,
                "activation_floats": c.activation_floats,
                "builds": c.builds.iter().map(|b| (b.key.clone(), json!({
                    "compile_s": b.compile_s,
                    "text_bytes": b.sizes.text,
                    "rodata_bytes": b.sizes.rodata,
                }))).collect::<serde_json::Map<_, _>>(),
            });
            if let Some(q) = &c.int8 {
                costs["int8"] = json!({
                    "generate_rust_s": q.generate_rust_s,
                    "generate_cpp_s": q.generate_cpp_s,
                });
            }
            costs
        });
        // int8 ratios: each int8 engine against LiteRT int8 and against its float twin.
        let ratio = |a: &str, b: &str| Some(m.median_ns(a)? / m.median_ns(b)?);
        let int8 = m.engines.iter().any(|e| e.key.ends_with("-int8")).then(|| {
            INT8_PAIRS
                .iter()
                .map(|(key, float)| {
                    (
                        key.to_string(),
                        json!({
                            "vs_litert_int8": ratio(key, INT8_PEER),
                            "vs_float": ratio(key, float),
                        }),
                    )
                })
                .collect::<serde_json::Map<_, _>>()
        });
        let mut entry = json!({
            "fixture": m.fixture,
            "date": machine.date,
            "macs": m.macs,
            "engines": engines,
            "costs": costs,
        });
        if let Some(int8) = int8 {
            entry["int8"] = Value::Object(int8);
        }
        out.insert(m.key.clone(), entry);
    }
    json!({
        "date": machine.date,
        "cpu": machine.cpu,
        "mhz": machine.mhz,
        "models": out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timed(key: &str, us: f64, check_err: Option<f32>) -> EngineResult {
        let ns = us * 1e3;
        EngineResult {
            max_abs_err: Some(0.02),
            check_err,
            status: Status::Timed {
                stats: Stats {
                    median: ns,
                    p10: ns,
                    p90: ns,
                    min: ns,
                    rounds: 1,
                },
                calls_per_slice: 1,
            },
            ..EngineResult::new(key, key, None)
        }
    }

    fn machine() -> Machine {
        Machine {
            cpu: "cpu".into(),
            logical_cores: 2,
            mhz: 1000.0,
            simd_flags: Vec::new(),
            rustc: "rustc".into(),
            gxx: "g++".into(),
            date: "today".into(),
            load: "0".into(),
        }
    }

    #[test]
    fn int8_rows_are_ratios_to_litert_int8_and_to_float() {
        let mut m = ModelResult::skipped("b2", "bench_cnn", String::new());
        m.skipped = None;
        m.macs = 1000;
        m.engines = vec![
            timed("rust-native", 10.0, None),
            timed("cpp-O3-native", 20.0, None),
            timed("litert", 8.0, None),
            timed("rust-native-int8", 15.0, Some(0.0)),
            timed("cpp-O3-native-int8", 30.0, Some(1e-9)),
            timed("litert-int8", 5.0, None),
        ];
        let doc = json(std::slice::from_ref(&m), &machine(), &Previous::default());
        let int8 = &doc["models"]["b2"]["int8"];
        assert_eq!(int8["rust-native-int8"]["vs_litert_int8"], json!(3.0));
        assert_eq!(int8["rust-native-int8"]["vs_float"], json!(1.5));
        assert_eq!(int8["cpp-O3-native-int8"]["vs_float"], json!(1.5));
        assert_eq!(int8["litert-int8"]["vs_float"], json!(0.625));
        let engines = &doc["models"]["b2"]["engines"];
        assert_eq!(engines["rust-native-int8"]["check_err"], json!(0.0));
        assert!(engines["rust-native"].get("check_err").is_none());

        let mut md = String::new();
        int8_table(&mut md, &m);
        assert!(md.contains("| rust-native-int8 | 15.0 | 3.00 | 1.50 | 2.0e-2 | quantized interpreter: bit for bit |"), "{md}");
        assert!(
            md.contains("quantized interpreter: max abs err 1.0e-9"),
            "{md}"
        );
        assert!(md.contains("| litert-int8 | 5.000 | 1.00 | 0.62 |"), "{md}");

        // A float-only model has no int8 entry or table.
        m.engines.retain(|e| !e.key.ends_with("-int8"));
        let doc = json(std::slice::from_ref(&m), &machine(), &Previous::default());
        assert!(doc["models"]["b2"].get("int8").is_none());
        let mut md = String::new();
        int8_table(&mut md, &m);
        assert!(md.is_empty());
    }
}
