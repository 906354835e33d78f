//! Compiles generated code with rustc and g++, runs it on given inputs, and reads back the
//! outputs. Several models go into one program per language, to keep compile time low.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use keras2src::{Lang, Model};

/// A temporary directory, kept (and its path printed) when `KERAS2SRC_KEEP` is set.
pub struct WorkDir {
    _guard: Option<tempfile::TempDir>,
    pub path: std::path::PathBuf,
}

pub fn work_dir(label: &str) -> WorkDir {
    let dir = tempfile::Builder::new()
        .prefix(&format!("keras2src-{label}-"))
        .tempdir()
        .unwrap();
    if std::env::var_os("KERAS2SRC_KEEP").is_some() {
        let path = dir.keep();
        eprintln!("keeping {}", path.display());
        return WorkDir { _guard: None, path };
    }
    WorkDir {
        path: dir.path().to_path_buf(),
        _guard: Some(dir),
    }
}

/// One model to compile, with the samples to run it on.
pub struct Case {
    /// Module / namespace name (an identifier).
    pub ident: String,
    pub model: Model,
    /// samples[s][input] = flat values.
    pub samples: Vec<Vec<Vec<f32>>>,
    /// Where the weights go, in both languages.
    pub weights: keras2src::WeightsPlacement,
}

/// A fixture's `.io.json` (`{"inputs"|"outputs": [{"data": [[sample 0], ...]}, ...]}`) as
/// samples[s][port] = flat values, for `key` "inputs" or "outputs". A JSON null (Python's
/// NaN cannot be written) reads as NaN.
pub fn io_samples(io: &serde_json::Value, key: &str) -> Vec<Vec<Vec<f32>>> {
    let ports = io[key].as_array().unwrap();
    let samples = ports[0]["data"].as_array().unwrap().len();
    (0..samples)
        .map(|s| {
            ports
                .iter()
                .map(|p| {
                    p["data"][s]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_f64().map_or(f32::NAN, |x| x as f32))
                        .collect()
                })
                .collect()
        })
        .collect()
}

/// outputs[case][sample][output] = flat values.
pub type Outputs = Vec<Vec<Vec<Vec<f32>>>>;

/// `|got - want| <= 1e-5 + 1e-4 |want|`, with NaN matching NaN and infinities matching.
pub fn close(got: f32, want: f32) -> bool {
    if want.is_nan() {
        return got.is_nan();
    }
    if want.is_infinite() {
        return got == want;
    }
    (got - want).abs() <= 1e-5 + 1e-4 * want.abs()
}

pub fn rust_literal(v: f32) -> String {
    keras2src::lower::expr::Lang::Rust.float(v)
}

/// Generates, compiles (as `#![no_std]` modules with `#![deny(warnings)]`, used through
/// `include!`) and runs the Rust code of every case.
pub fn run_rust(cases: &[Case], dir: &Path) -> Outputs {
    let mut main = String::from("#![deny(warnings)]\n");
    let mut lib = String::from("#![no_std]\n#![deny(warnings)]\n");
    let mut body = String::new();
    for case in cases {
        let generated = case
            .model
            .generate_with(&keras2src::Options {
                weights: case.weights,
                // The harness calls `predict` (its main thread has the stack for it).
                scratch: Some(keras2src::ScratchPlacement::Stack),
                ..keras2src::Options::new(Lang::Rust, &case.ident)
            })
            .expect("generate rust");
        std::fs::write(dir.join(format!("{}.rs", case.ident)), &generated.source).unwrap();
        if let Some((file, bytes)) = &generated.weights_file {
            std::fs::write(dir.join(file), bytes).unwrap();
        }
        writeln!(main, "mod {0} {{ include!(\"{0}.rs\"); }}", case.ident).unwrap();
        writeln!(lib, "pub mod {0};", case.ident).unwrap();
        for sample in &case.samples {
            let args: Vec<String> = sample
                .iter()
                .enumerate()
                .map(|(k, values)| {
                    let int = case.model.graph.inputs[k].dtype == keras2src::ir::InputDtype::I32;
                    let vals: Vec<String> = values
                        .iter()
                        .map(|&v| {
                            if int {
                                format!("{}", v as i32)
                            } else {
                                rust_literal(v)
                            }
                        })
                        .collect();
                    format!("&[{}]", vals.join(", "))
                })
                .collect();
            let outs = case.model.graph.outputs.len();
            writeln!(
                body,
                "    {{ let r = {}::predict({});",
                case.ident,
                args.join(", ")
            )
            .unwrap();
            if outs == 1 {
                writeln!(body, "      emit(&r);").unwrap();
            } else {
                for k in 0..outs {
                    writeln!(body, "      emit(&r.{k});").unwrap();
                }
            }
            writeln!(body, "      println!(); }}").unwrap();
        }
    }
    write!(
        main,
        "fn emit(v: &[f32]) {{ for x in v {{ print!(\"{{:?}} \", x); }} print!(\"| \"); }}\nfn main() {{\n{body}}}\n"
    )
    .unwrap();
    std::fs::write(dir.join("main.rs"), main).unwrap();
    std::fs::write(dir.join("lib.rs"), lib).unwrap();
    // The no_std library build proves the modules need nothing from std, in both editions.
    for edition in ["--edition=2021", "--edition=2024"] {
        run(Command::new("rustc")
            .args([edition, "--crate-type=lib", "--emit=metadata", "-o"])
            .arg(dir.join("libmodels.rmeta"))
            .arg(dir.join("lib.rs")));
    }
    clippy(dir);
    run(Command::new("rustc")
        .args(["--edition=2021", "-O", "-o"])
        .arg(dir.join("rust_runner"))
        .arg(dir.join("main.rs")));
    parse(&run(&mut Command::new(dir.join("rust_runner"))), cases)
}

/// Runs `cargo clippy -D warnings` on the `#![no_std]` library of generated modules in
/// `dir` (skipped, with a message, where clippy is not installed).
fn clippy(dir: &Path) {
    let available = Command::new("cargo")
        .args(["clippy", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        eprintln!("cargo clippy is not installed: generated code not linted");
        return;
    }
    std::fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"models\"\nversion = \"0.0.0\"\nedition = \"2021\"\n[lib]\npath = \"lib.rs\"\n[workspace]\n",
    )
    .unwrap();
    run(Command::new("cargo")
        .args(["clippy", "--quiet", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(dir.join("target"))
        .args(["--", "-D", "warnings"]));
}

/// Same for C++: one program including every header, strict warnings as errors.
pub fn run_cpp(cases: &[Case], dir: &Path) -> Outputs {
    let mut main = String::from("#include <cstdio>\n");
    let mut body = String::new();
    for case in cases {
        let generated = case
            .model
            .generate_with(&keras2src::Options {
                weights: case.weights,
                ..keras2src::Options::new(Lang::Cpp, &case.ident)
            })
            .expect("generate cpp");
        for (path, bytes) in generated.files(&dir.join(format!("{}.hpp", case.ident))) {
            std::fs::write(path, bytes).unwrap();
        }
        writeln!(main, "#include \"{}.hpp\"", case.ident).unwrap();
        let ns = &case.ident;
        for sample in &case.samples {
            body.push_str("  {\n");
            for (k, values) in sample.iter().enumerate() {
                let int = case.model.graph.inputs[k].dtype == keras2src::ir::InputDtype::I32;
                let vals: Vec<String> = values
                    .iter()
                    .map(|&v| {
                        if int {
                            format!("{}", v as i32)
                        } else {
                            keras2src::lower::expr::Lang::Cpp.float(v)
                        }
                    })
                    .collect();
                let ty = if int { "std::int32_t" } else { "float" };
                writeln!(
                    body,
                    "    static const {ty} in{k}[] = {{{}}};",
                    vals.join(", ")
                )
                .unwrap();
            }
            let outs = &case.model.graph.outputs;
            let single = outs.len() == 1;
            let mut args: Vec<String> = (0..sample.len()).map(|k| format!("in{k}")).collect();
            for k in 0..outs.len() {
                let len = if single {
                    "kOutputLen".to_string()
                } else {
                    format!("kOutput{k}Len")
                };
                writeln!(body, "    static float out{k}[{ns}::{len}];").unwrap();
                args.push(format!("out{k}"));
            }
            writeln!(body, "    {ns}::predict({});", args.join(", ")).unwrap();
            for k in 0..outs.len() {
                let len = if single {
                    "kOutputLen".to_string()
                } else {
                    format!("kOutput{k}Len")
                };
                writeln!(body, "    emit(out{k}, {ns}::{len});").unwrap();
            }
            body.push_str("    std::printf(\"\\n\");\n  }\n");
        }
    }
    write!(
        main,
        "static void emit(const float* v, std::size_t n) {{ for (std::size_t i = 0; i < n; ++i) std::printf(\"%.9g \", static_cast<double>(v[i])); std::printf(\"| \"); }}\nint main() {{\n{body}  return 0;\n}}\n"
    )
    .unwrap();
    std::fs::write(dir.join("main.cpp"), main).unwrap();
    run(Command::new("g++")
        .args([
            "-std=c++17",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-fno-exceptions",
            "-fno-rtti",
            "-O1",
            "-ffp-contract=off",
            // The assembler's .incbin finds weights files on the include path.
            "-I",
        ])
        .arg(dir)
        .arg("-o")
        .arg(dir.join("cpp_runner"))
        .arg(dir.join("main.cpp")));
    parse(&run(&mut Command::new(dir.join("cpp_runner"))), cases)
}

/// Runs `cmd`, which must succeed; returns its stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn parse(text: &str, cases: &[Case]) -> Outputs {
    let mut lines = text.lines();
    cases
        .iter()
        .map(|case| {
            case.samples
                .iter()
                .map(|_| {
                    let line = lines.next().expect("runner printed too few lines");
                    line.split('|')
                        .filter(|part| !part.trim().is_empty())
                        .map(|part| {
                            part.split_whitespace()
                                .map(|v| match v {
                                    "NaN" | "nan" | "-nan" => f32::NAN,
                                    "inf" => f32::INFINITY,
                                    "-inf" => f32::NEG_INFINITY,
                                    v => {
                                        v.parse::<f32>().unwrap_or_else(|_| panic!("bad value {v}"))
                                    }
                                })
                                .collect()
                        })
                        .collect()
                })
                .collect()
        })
        .collect()
}

/// Undefined symbols of an object file (`nm -u`), or `None` where nm is missing.
pub fn undefined_symbols(object: &Path) -> Option<Vec<String>> {
    let out = Command::new("nm").arg("-u").arg(object).output().ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().last().map(str::to_string))
            .collect()
    })
}

/// Compiles every case's header into one object with a `predict` call each and returns its
/// undefined symbols: the generated C++ must not need the heap or exceptions.
pub fn cpp_object_symbols(cases: &[Case], dir: &Path) -> Option<Vec<String>> {
    let mut tu = String::new();
    for (k, case) in cases.iter().enumerate() {
        let ns = &case.ident;
        writeln!(tu, "#include \"{ns}.hpp\"").unwrap();
        let ins = case.model.graph.inputs.len();
        let outs = case.model.graph.outputs.len();
        let params: Vec<String> = (0..ins)
            .map(|i| {
                let ty = match case.model.graph.inputs[i].dtype {
                    keras2src::ir::InputDtype::I32 => "std::int32_t",
                    keras2src::ir::InputDtype::F32 => "float",
                };
                format!("const {ty}* in{i}")
            })
            .chain((0..outs).map(|o| format!("float* out{o}")))
            .collect();
        let args: Vec<String> = (0..ins)
            .map(|i| format!("in{i}"))
            .chain((0..outs).map(|o| format!("out{o}")))
            .collect();
        writeln!(
            tu,
            "void run_{k}({}) {{ {ns}::predict({}); }}",
            params.join(", "),
            args.join(", ")
        )
        .unwrap();
    }
    std::fs::write(dir.join("symbols.cpp"), tu).unwrap();
    run(Command::new("g++")
        .args([
            "-std=c++17",
            "-O2",
            "-fno-exceptions",
            "-fno-rtti",
            "-c",
            "-I",
        ])
        .arg(dir)
        .arg("-o")
        .arg(dir.join("symbols.o"))
        .arg(dir.join("symbols.cpp")));
    undefined_symbols(&dir.join("symbols.o"))
}
