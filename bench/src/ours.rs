//! Our engines: the model generated through the library, compiled by rustc and g++ with
//! two flag sets each, each build a small worker executable around the generated code.
//!
//! The generated code is compiled on its own (an rlib for Rust, an object for C++), as a
//! user's build would: that compile is the one timed and the one whose sections are
//! measured; the runner is linked against it, so nothing of the model is inlined into the
//! timing loop.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use keras2src::{interp, Lang, Model, Options, Quantization, ScratchPlacement};

use crate::elf::Sizes;
use crate::engine::Worker;
use crate::fixture::Fixture;

/// One way to compile the generated code.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    pub key: &'static str,
    pub label: &'static str,
    pub lang: Lang,
    pub flags: &'static [&'static str],
}

/// Rust baseline, Rust native, C++ -O2, C++ -O3 native.
pub const CONFIGS: [Config; 4] = [
    Config {
        key: "rust",
        label: "Rust, rustc -C opt-level=3",
        lang: Lang::Rust,
        flags: &["-C", "opt-level=3"],
    },
    Config {
        key: "rust-native",
        label: "Rust, rustc -C opt-level=3 -C target-cpu=native",
        lang: Lang::Rust,
        flags: &["-C", "opt-level=3", "-C", "target-cpu=native"],
    },
    Config {
        key: "cpp-O2",
        label: "C++, g++ -O2",
        lang: Lang::Cpp,
        flags: &["-O2"],
    },
    Config {
        key: "cpp-O3-native",
        label: "C++, g++ -O3 -march=native",
        lang: Lang::Cpp,
        flags: &["-O3", "-march=native"],
    },
];

/// The builds of the int8 model (`--quantize int8`): the two native ones, keyed
/// `<float key>-int8`.
pub const INT8_CONFIGS: [Config; 2] = [
    Config {
        key: "rust-native-int8",
        label: "int8: Rust, rustc -C opt-level=3 -C target-cpu=native",
        lang: Lang::Rust,
        flags: &["-C", "opt-level=3", "-C", "target-cpu=native"],
    },
    Config {
        key: "cpp-O3-native-int8",
        label: "int8: C++, g++ -O3 -march=native",
        lang: Lang::Cpp,
        flags: &["-O3", "-march=native"],
    },
];

/// The engine every ratio is taken against.
pub const REFERENCE: &str = "rust-native";

/// The most working memory `predict` gets on the stack (bytes); above it, a static buffer.
pub const STACK_SCRATCH_MAX: usize = 4 << 20;

/// What generating the model costs and what it holds.
#[derive(Debug, Clone)]
pub struct Generation {
    /// Seconds to generate the Rust and the C++ (the model loaded once before).
    pub rust_s: f64,
    pub cpp_s: f64,
    /// Seconds to read the model file.
    pub load_s: f64,
    pub macs: usize,
    /// `SCRATCH_LEN` (f32s)
    pub scratch_floats: usize,
    /// All intermediate tensors added up, without reuse (f32s).
    pub activation_floats: usize,
    /// Rust weights in a `.weights.bin` file (the library's `auto` choice).
    pub weights_in_file: bool,
    /// Where `predict` keeps its working memory: the stack, or a static buffer above
    /// [`STACK_SCRATCH_MAX`].
    pub scratch: ScratchPlacement,
    /// For the int8 model: the quantized interpreter's output on the fixture's input
    /// (`Model::quantized(..).graph` run by `keras2src::interp`), what its builds must give.
    pub int8_reference: Option<Vec<f32>>,
    dir: PathBuf,
}

/// A compiled build: its costs, and its worker.
pub struct Build {
    pub config: Config,
    pub compile_s: f64,
    pub sizes: Sizes,
    pub worker: Worker,
}

/// Loads and generates the model into `dir/src`, timing each step; with `int8`, quantized
/// (`--quantize int8`, calibrated on the fixture's `.calib.json`) into `dir/int8/src`.
pub fn generate(fixture: &Fixture, dir: &Path, int8: bool) -> Result<Generation, String> {
    let dir = &if int8 {
        dir.join("int8")
    } else {
        dir.to_path_buf()
    };
    let src = dir.join("src");
    std::fs::create_dir_all(&src).map_err(|e| e.to_string())?;
    let t = Instant::now();
    let model = Model::load_with_shapes(
        &fixture.keras,
        None,
        std::slice::from_ref(&fixture.input_shape),
    )
    .map_err(|e| e.to_string())?;
    let load_s = t.elapsed().as_secs_f64();
    let quantize = if int8 {
        let calib = fixture.calib.as_ref().ok_or("no calibration samples")?;
        let calibration = keras2src::samples::read_samples(calib, &model.input_port_shapes())
            .map_err(|e| e.to_string())?;
        Some(Quantization {
            calibration,
            check: Vec::new(),
            int8_io: false,
        })
    } else {
        None
    };
    let int8_reference = match &quantize {
        Some(q) => {
            let graph = model.quantized(q).map_err(|e| e.to_string())?.graph;
            let values = interp::run(&graph, std::slice::from_ref(&fixture.input))
                .map_err(|e| format!("quantized interpreter: {e}"))?;
            let outputs = interp::outputs(&graph, &values);
            Some(outputs.into_iter().flatten().collect())
        }
        None => None,
    };
    let summary = model.summary();
    let t = Instant::now();
    // `predict` with its working memory on the stack, as small models get by default (a
    // large model would otherwise get `predict_with_scratch` only, or a static buffer),
    // unless it would not fit the runners' 8 MiB main-thread stack with room to spare:
    // then one static buffer, in both languages (ResNet50 at 224×224 needs 9.6 MB).
    let scratch = if summary.ram_bytes <= STACK_SCRATCH_MAX {
        ScratchPlacement::Stack
    } else {
        ScratchPlacement::Static
    };
    let options = |lang| Options {
        scratch: Some(scratch),
        quantize: quantize.clone(),
        ..Options::new(lang, "model")
    };
    let rust = model
        .generate_with(&options(Lang::Rust))
        .map_err(|e| e.to_string())?;
    let rust_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let cpp = model
        .generate_with(&options(Lang::Cpp))
        .map_err(|e| e.to_string())?;
    let cpp_s = t.elapsed().as_secs_f64();
    // As the CLI writes `-o model.rs`: the weights file beside the source.
    write(&src.join("model.rs"), rust.source.as_bytes())?;
    if let Some((file, bytes)) = &rust.weights_file {
        write(&src.join(file), bytes)?;
    }
    write(&src.join("model.hpp"), cpp.source.as_bytes())?;
    if let Some((file, bytes)) = &cpp.weights_file {
        write(&src.join(file), bytes)?;
    }
    Ok(Generation {
        rust_s,
        cpp_s,
        load_s,
        // The model's MACs as Keras defines it (what every engine computes), not the fewer
        // that fusion leaves (a fused pooling skips convolution positions it never reads).
        macs: summary.rows.iter().map(|r| r.macs).sum(),
        scratch_floats: summary.ram_bytes / 4,
        activation_floats: summary.unplanned_bytes / 4,
        weights_in_file: rust.weights_file.is_some(),
        scratch,
        int8_reference,
        dir: dir.to_path_buf(),
    })
}

/// Compiles one configuration and starts its worker on `input`.
pub fn build(generation: &Generation, config: Config, input: &Path) -> Result<Build, String> {
    let src = generation.dir.join("src");
    let out = generation.dir.join(config.key);
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let (compile_s, object, runner) = match config.lang {
        Lang::Rust => build_rust(&src, &out, config.flags)?,
        Lang::Cpp => build_cpp(&src, &out, config.flags)?,
        // The C header is the C++ kernels compiled as C: timed through the C++ rows.
        Lang::C => return Err("the benchmark times Rust and C++ builds only".into()),
    };
    let bytes = std::fs::read(&object).map_err(|e| format!("{}: {e}", object.display()))?;
    let sizes = crate::elf::sizes(&bytes).map_err(|e| format!("{}: {e}", object.display()))?;
    let mut command = Command::new(&runner);
    command.arg(input);
    let worker = Worker::start(command, &out.join("stderr.log")).map_err(|e| format!("{e:?}"))?;
    Ok(Build {
        config,
        compile_s,
        sizes,
        worker,
    })
}

const RUST_LIB: &str = "#![no_std]\npub mod model {\n    include!(\"model.rs\");\n}\n";

const RUST_RUNNER: &str = r#"use std::hint::black_box;
use std::io::{BufRead, Write};
use std::time::Instant;

use kmodel::model;

fn main() {
    let path = std::env::args().nth(1).expect("usage: runner INPUT_PATH");
    let bytes = std::fs::read(&path).expect("read the input file");
    assert_eq!(bytes.len(), 4 * model::INPUT_LEN, "input size");
    let mut input = [0.0f32; model::INPUT_LEN];
    for (x, b) in input.iter_mut().zip(bytes.chunks_exact(4)) {
        *x = f32::from_le_bytes(b.try_into().unwrap());
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        match words[..] {
            ["out"] => {
                let y = model::predict(&input);
                let text: Vec<String> = y.iter().map(|v| format!("{v:?}")).collect();
                writeln!(out, "{}", text.join(" ")).unwrap();
            }
            ["time", n] => {
                let n: u64 = n.parse().expect("time N");
                let start = Instant::now();
                for _ in 0..n {
                    black_box(model::predict(black_box(&input)));
                }
                writeln!(out, "{}", start.elapsed().as_nanos()).unwrap();
            }
            ["quit"] => break,
            _ => writeln!(out, "error: unknown command {line:?}").unwrap(),
        }
        out.flush().unwrap();
    }
}
"#;

fn build_rust(src: &Path, out: &Path, flags: &[&str]) -> Result<(f64, PathBuf, PathBuf), String> {
    write(&src.join("lib.rs"), RUST_LIB.as_bytes())?;
    write(&src.join("runner.rs"), RUST_RUNNER.as_bytes())?;
    let rlib = out.join("libkmodel.rlib");
    let t = Instant::now();
    run(Command::new("rustc")
        .args(["--edition=2021", "--crate-type=rlib", "--crate-name=kmodel"])
        .args(flags)
        .arg("-o")
        .arg(&rlib)
        .arg(src.join("lib.rs")))?;
    let compile_s = t.elapsed().as_secs_f64();
    let runner = out.join("runner");
    run(Command::new("rustc")
        .args(["--edition=2021", "--crate-type=bin"])
        .args(flags)
        .arg("--extern")
        .arg(format!("kmodel={}", rlib.display()))
        .arg("-o")
        .arg(&runner)
        .arg(src.join("runner.rs")))?;
    Ok((compile_s, rlib, runner))
}

const CPP_MODEL: &str = r#"#include <cstddef>
#include "model.hpp"

extern "C" {
extern const std::size_t bench_input_len = model::kInputLen;
extern const std::size_t bench_output_len = model::kOutputLen;
void bench_predict(const float* input, float* output) { model::predict(input, output); }
}
"#;

const CPP_RUNNER: &str = r#"#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

extern "C" {
extern const std::size_t bench_input_len;
extern const std::size_t bench_output_len;
void bench_predict(const float* input, float* output);
}

// Every prediction's first output goes here, so no call can be dropped.
volatile float sink;

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  std::FILE* f = std::fopen(argv[1], "rb");
  if (!f) return 2;
  std::vector<float> input(bench_input_len + 1);
  std::size_t got = std::fread(input.data(), sizeof(float), input.size(), f);
  std::fclose(f);
  if (got != bench_input_len) {
    std::fprintf(stderr, "input size: %zu floats, want %zu\n", got, bench_input_len);
    return 2;
  }
  std::vector<float> output(bench_output_len);
  std::printf("ready\n");
  std::fflush(stdout);
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line == "out") {
      bench_predict(input.data(), output.data());
      for (std::size_t i = 0; i < output.size(); ++i)
        std::printf(i ? " %.9g" : "%.9g", static_cast<double>(output[i]));
      std::printf("\n");
    } else if (line.rfind("time ", 0) == 0) {
      long long n = std::atoll(line.c_str() + 5);
      auto start = std::chrono::steady_clock::now();
      for (long long i = 0; i < n; ++i) {
        bench_predict(input.data(), output.data());
        sink = output[0];
      }
      auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
          std::chrono::steady_clock::now() - start).count();
      std::printf("%lld\n", static_cast<long long>(ns));
    } else if (line == "quit") {
      break;
    } else {
      std::printf("error: unknown command\n");
    }
    std::fflush(stdout);
  }
  return 0;
}
"#;

fn build_cpp(src: &Path, out: &Path, flags: &[&str]) -> Result<(f64, PathBuf, PathBuf), String> {
    write(&src.join("model.cpp"), CPP_MODEL.as_bytes())?;
    write(&src.join("runner.cpp"), CPP_RUNNER.as_bytes())?;
    let object = out.join("model.o");
    let t = Instant::now();
    // `-I src`: the assembler's `.incbin` finds a weights file there.
    run(Command::new("g++")
        .arg("-std=c++17")
        .args(flags)
        .arg("-I")
        .arg(src)
        .arg("-c")
        .arg("-o")
        .arg(&object)
        .arg(src.join("model.cpp")))?;
    let compile_s = t.elapsed().as_secs_f64();
    let runner = out.join("runner");
    run(Command::new("g++")
        .arg("-std=c++17")
        .args(flags)
        .arg("-o")
        .arg(&runner)
        .arg(src.join("runner.cpp"))
        .arg(&object))?;
    Ok((compile_s, object, runner))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn run(command: &mut Command) -> Result<(), String> {
    let out = command
        .output()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let head: Vec<&str> = stderr.lines().take(20).collect();
        let program = command.get_program().to_string_lossy().into_owned();
        eprintln!("   {command:?} failed:\n{}", head.join("\n"));
        Err(format!("{program} failed: {}", head.join(" ")))
    }
}
