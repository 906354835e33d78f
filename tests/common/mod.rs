//! Compiles generated code with rustc, g++ and gcc, runs it on given inputs, and reads back
//! the outputs. To keep compile time low, many models go into few compiler invocations: the
//! cases are dealt into a few parts per language (one per core, 2 to 4) compiled at the same
//! time, with one function per case, and Rust and C compile beside C++ ([`run_both`]).
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
    keras2src::backend::rust::float_literal(v)
}

/// Generates and compiles both languages' code of every case at once (Rust and C++ compile
/// side by side), runs each program, and returns (Rust outputs, C++ outputs). The C
/// backend's code runs too, and must give the C++ outputs bit for bit (both are lowered
/// alike), so every caller's checks of the C++ outputs hold for C.
pub fn run_both(cases: &[Case], dir: &Path) -> (Outputs, Outputs) {
    run_both_stored(cases, dir, keras2src::WeightsDtype::F32)
}

/// How a run generates its cases: kernels stored as `dtype` (`--weights-dtype`), or case
/// `c` quantized as `quantize[c]` says (`--quantize int8`).
#[derive(Clone, Copy)]
pub struct Variant<'a> {
    pub dtype: keras2src::WeightsDtype,
    pub quantize: &'a [keras2src::Quantization],
    /// C and C++ only (Rust has no `--tune mcu`).
    pub tune: keras2src::Tune,
    /// C and C++ built with dispatch (`backend::DISPATCH`: each layer compiled for several
    /// instruction sets where the host allows); without it, `KERAS2SRC_NO_DISPATCH`, one
    /// copy, for up to 2.7 times less compile time. tests/dispatch.rs builds with it.
    pub dispatch: bool,
}

impl Variant<'_> {
    const F32: Variant<'static> = Variant {
        dtype: keras2src::WeightsDtype::F32,
        quantize: &[],
        tune: keras2src::Tune::Host,
        dispatch: false,
    };

    fn options(&self, c: usize, case: &Case, lang: Lang) -> keras2src::Options {
        keras2src::Options {
            weights: case.weights,
            weights_dtype: self.dtype,
            quantize: self.quantize.get(c).cloned(),
            tune: self.tune,
            ..keras2src::Options::new(lang, &case.ident)
        }
    }

    /// Whether case `c`'s ports are int8 (`--int8-io`).
    fn int8_io(&self, c: usize) -> bool {
        self.quantize.get(c).is_some_and(|q| q.int8_io)
    }
}

/// [`run_both`] with every case's kernels stored as `dtype` (`--weights-dtype`).
pub fn run_both_stored(
    cases: &[Case],
    dir: &Path,
    dtype: keras2src::WeightsDtype,
) -> (Outputs, Outputs) {
    run_both_as(
        cases,
        dir,
        Variant {
            dtype,
            ..Variant::F32
        },
    )
}

/// [`run_both`] with every case generated as `variant` says. With `--int8-io`, the samples
/// are int8 values and so are the outputs.
pub fn run_both_as(cases: &[Case], dir: &Path, variant: Variant) -> (Outputs, Outputs) {
    let (rust, cpp, c) = std::thread::scope(|s| {
        let rust = s.spawn(|| run_rust_as(cases, dir, variant));
        let c = s.spawn(|| run_native(cases, dir, Native::C, variant));
        let cpp = run_native(cases, dir, Native::Cpp, variant);
        (join(rust), cpp, join(c))
    });
    let differ: Vec<String> = cases
        .iter()
        .zip(cpp.iter().zip(&c))
        .flat_map(|(case, (cpp, c))| {
            let same = |a: &Vec<Vec<f32>>, b: &Vec<Vec<f32>>| {
                a.len() == b.len()
                    && a.iter().zip(b).all(|(a, b)| {
                        a.len() == b.len()
                            && a.iter().zip(b).all(|(a, b)| {
                                a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
                            })
                    })
            };
            let samples = cpp.iter().zip(c).enumerate();
            samples
                .filter(|(_, (a, b))| !same(a, b))
                .map(|(s, _)| format!("{} sample {s}", case.ident))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        differ.is_empty(),
        "C and C++ outputs differ in bits: {differ:?}"
    );
    (rust, cpp)
}

/// A scoped thread's result, its panic passed on (with the thread's own message printed).
fn join<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Runs every command at once, each of which must succeed; returns their stdouts in order.
pub fn run_all(commands: Vec<Command>) -> Vec<String> {
    std::thread::scope(|s| {
        let handles: Vec<_> = commands
            .into_iter()
            .map(|mut cmd| s.spawn(move || run(&mut cmd)))
            .collect();
        handles.into_iter().map(join).collect()
    })
}

/// How many programs the cases are split into per language, compiled at the same time.
fn parts(cases: usize) -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 4)
        .min(cases)
        .max(1)
}

/// The cases `0..costs.len()` dealt into at most `parts` groups of about equal total cost
/// (the costliest first, each to the cheapest group so far), each group in case order.
fn deal(costs: &[usize], parts: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..costs.len()).collect();
    order.sort_by_key(|&c| std::cmp::Reverse(costs[c]));
    let mut groups = vec![(0, Vec::new()); parts.min(costs.len()).max(1)];
    for c in order {
        let group = groups.iter_mut().min_by_key(|(cost, _)| *cost).unwrap();
        group.0 += costs[c];
        group.1.push(c);
    }
    groups
        .into_iter()
        .map(|(_, mut cases)| {
            cases.sort_unstable();
            cases
        })
        .filter(|cases| !cases.is_empty())
        .collect()
}

/// What a case costs to compile, roughly: the lines of its generated code and its calls.
fn cost(source: &str, calls: &str) -> usize {
    source.lines().count() + calls.lines().count()
}

/// Generates, compiles (as `#![no_std]` modules with `#![deny(warnings)]`, used through
/// `include!`) and runs the Rust code of every case. The runner is split into a few
/// programs compiled at once; the library checks (clippy, both editions) run beside them.
pub fn run_rust(cases: &[Case], dir: &Path) -> Outputs {
    run_rust_as(cases, dir, Variant::F32)
}

fn run_rust_as(cases: &[Case], dir: &Path, variant: Variant) -> Outputs {
    let mut lib = String::from("#![no_std]\n#![deny(warnings)]\n");
    let mut mods = Vec::new();
    let mut bodies = Vec::new();
    let mut costs = Vec::new();
    for (c, case) in cases.iter().enumerate() {
        let generated = case
            .model
            .generate_with(&keras2src::Options {
                // The harness calls `predict` (its main thread has the stack for it).
                scratch: Some(keras2src::ScratchPlacement::Stack),
                ..variant.options(c, case, Lang::Rust)
            })
            .expect("generate rust");
        std::fs::write(dir.join(format!("{}.rs", case.ident)), &generated.source).unwrap();
        if let Some((file, bytes)) = &generated.weights_file {
            std::fs::write(dir.join(file), bytes).unwrap();
        }
        mods.push(format!("mod {0} {{ include!(\"{0}.rs\"); }}\n", case.ident));
        writeln!(lib, "pub mod {};", case.ident).unwrap();
        let mut body = String::new();
        for sample in &case.samples {
            let args: Vec<String> = sample
                .iter()
                .enumerate()
                .map(|(k, values)| {
                    let int = case.model.graph.inputs[k].dtype == keras2src::ir::InputDtype::I32
                        || variant.int8_io(c);
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
        costs.push(cost(&generated.source, &body));
        bodies.push(body);
    }
    std::fs::write(dir.join("lib.rs"), lib).unwrap();
    // The no_std library build proves the modules need nothing from std, in both editions
    // (clippy, where installed, builds it in edition 2021 with `-D warnings`).
    let mut checks = Vec::new();
    let clippy = clippy(dir);
    let editions: &[&str] = if clippy.is_some() {
        &["--edition=2024"]
    } else {
        &["--edition=2021", "--edition=2024"]
    };
    for edition in editions {
        let mut cmd = Command::new("rustc");
        cmd.args([edition, "--crate-type=lib", "--emit=metadata", "-o"])
            .arg(dir.join(format!("libmodels{}.rmeta", &edition[10..])))
            .arg(dir.join("lib.rs"));
        checks.push(cmd);
    }
    checks.extend(clippy);
    let groups = deal(&costs, parts(cases.len()));
    let mut builds = Vec::new();
    for (p, group) in groups.iter().enumerate() {
        let mut main = String::from("#![deny(warnings)]\n");
        main.extend(group.iter().map(|&c| mods[c].as_str()));
        main.push_str(
            "fn emit<T: std::fmt::Debug>(v: &[T]) { for x in v { print!(\"{:?} \", x); } print!(\"| \"); }\n",
        );
        // One function per case: a small function each is quicker to optimise than one
        // huge `main`.
        for &c in group {
            write!(
                main,
                "#[inline(never)]\nfn case_{c}() {{\n{}}}\n",
                bodies[c]
            )
            .unwrap();
        }
        main.push_str("fn main() {\n");
        for &c in group {
            writeln!(main, "    case_{c}();").unwrap();
        }
        main.push_str("}\n");
        std::fs::write(dir.join(format!("main{p}.rs")), main).unwrap();
        let mut cmd = Command::new("rustc");
        cmd.args(["--edition=2021", "-O", "-o"])
            .arg(dir.join(format!("rust_runner{p}")))
            .arg(dir.join(format!("main{p}.rs")));
        builds.push(cmd);
    }
    let n = builds.len();
    builds.extend(checks);
    run_all(builds);
    let text: String = (0..n)
        .map(|p| run(&mut Command::new(dir.join(format!("rust_runner{p}")))))
        .collect();
    parse(&text, cases, &groups)
}

/// A `cargo clippy -D warnings` command on the `#![no_std]` library of generated modules in
/// `dir`, or `None` (with a message) where clippy is not installed.
fn clippy(dir: &Path) -> Option<Command> {
    let available = Command::new("cargo")
        .args(["clippy", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        eprintln!("cargo clippy is not installed: generated code not linted");
        return None;
    }
    std::fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"models\"\nversion = \"0.0.0\"\nedition = \"2021\"\n[lib]\npath = \"lib.rs\"\n[workspace]\n",
    )
    .unwrap();
    let mut cmd = Command::new("cargo");
    cmd.args(["clippy", "--quiet", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(dir.join("target"))
        .args(["--", "-D", "warnings"]);
    Some(cmd)
}

/// Same for C++: every header with strict warnings as errors, in a few translation units
/// compiled at once and linked into one program.
pub fn run_cpp(cases: &[Case], dir: &Path) -> Outputs {
    run_native(cases, dir, Native::Cpp, Variant::F32)
}

/// Same for C: every header as C99 (its definitions in the part that runs it), compiled and
/// linked with gcc alone.
pub fn run_c(cases: &[Case], dir: &Path) -> Outputs {
    run_c_as(cases, dir, Variant::F32)
}

/// [`run_c`] with every case generated as `variant` says.
pub fn run_c_as(cases: &[Case], dir: &Path, variant: Variant) -> Outputs {
    run_native(cases, dir, Native::C, variant)
}

/// The languages a C compiler builds: how the runner spells what differs.
#[derive(Clone, Copy, PartialEq)]
enum Native {
    Cpp,
    C,
}

impl Native {
    fn lang(self) -> Lang {
        match self {
            Native::Cpp => Lang::Cpp,
            Native::C => Lang::C,
        }
    }

    /// (header extension, source extension, compiler, flags, file prefix)
    fn tools(
        self,
    ) -> (
        &'static str,
        &'static str,
        &'static str,
        &'static [&'static str],
        &'static str,
    ) {
        match self {
            Native::Cpp => ("hpp", "cpp", "g++", CPP_FLAGS, ""),
            Native::C => ("h", "c", "gcc", C_FLAGS, "c_"),
        }
    }

    /// `#include <cstdio>` / `#include <stdio.h>`.
    fn include(self, header: &str) -> String {
        match self {
            Native::Cpp => format!("#include <c{header}>\n"),
            Native::C => format!("#include <{header}.h>\n"),
        }
    }

    /// `std::` where C++ has it.
    fn std(self) -> &'static str {
        match self {
            Native::Cpp => "std::",
            Native::C => "",
        }
    }

    /// A model's entity: `ns::kOutputLen` / `NS_OUTPUT_LEN`, `ns::predict` / `ns_predict`.
    fn output_len(self, ns: &str, k: Option<usize>) -> String {
        let k = k.map(|k| k.to_string()).unwrap_or_default();
        match self {
            Native::Cpp => format!("{ns}::kOutput{k}Len"),
            Native::C => format!("{}_OUTPUT{k}_LEN", ns.to_ascii_uppercase()),
        }
    }

    fn predict(self, ns: &str) -> String {
        match self {
            Native::Cpp => format!("{ns}::predict"),
            Native::C => format!("{ns}_predict"),
        }
    }
}

fn run_native(cases: &[Case], dir: &Path, native: Native, variant: Variant) -> Outputs {
    let (header_ext, source_ext, compiler, flags, prefix) = native.tools();
    let std = native.std();
    let mut includes = Vec::new();
    let mut bodies = Vec::new();
    let mut costs = Vec::new();
    for (c, case) in cases.iter().enumerate() {
        let generated = case
            .model
            .generate_with(&variant.options(c, case, native.lang()))
            .expect("generate C/C++");
        let header = format!("{}.{header_ext}", case.ident);
        for (path, bytes) in generated.files(&dir.join(&header)) {
            std::fs::write(path, bytes).unwrap();
        }
        includes.push(match native {
            Native::Cpp => format!("#include \"{header}\"\n"),
            // Each C part holds the definitions of the models it runs.
            Native::C => format!(
                "#define KERAS2SRC_{}_IMPLEMENTATION\n#include \"{header}\"\n",
                case.ident.to_ascii_uppercase()
            ),
        });
        let ns = &case.ident;
        let mut body = String::new();
        for sample in &case.samples {
            body.push_str("  {\n");
            for (k, values) in sample.iter().enumerate() {
                let int = case.model.graph.inputs[k].dtype == keras2src::ir::InputDtype::I32;
                let int8 = variant.int8_io(c);
                let vals: Vec<String> = values
                    .iter()
                    .map(|&v| {
                        if int || int8 {
                            format!("{}", v as i32)
                        } else {
                            keras2src::backend::cpp::float_literal(v)
                        }
                    })
                    .collect();
                let (int, ty) = match (int, int8) {
                    (true, _) => (true, "int32_t"),
                    (_, true) => (true, "int8_t"),
                    _ => (false, "float"),
                };
                writeln!(
                    body,
                    "    static const {}{ty} in{k}[] = {{{}}};",
                    if int { std } else { "" },
                    vals.join(", ")
                )
                .unwrap();
            }
            let outs = &case.model.graph.outputs;
            let single = outs.len() == 1;
            let len = |k: usize| native.output_len(ns, (!single).then_some(k));
            let mut args: Vec<String> = (0..sample.len()).map(|k| format!("in{k}")).collect();
            let out_ty = if variant.int8_io(c) {
                format!("{std}int8_t")
            } else {
                "float".to_string()
            };
            for k in 0..outs.len() {
                writeln!(body, "    static {out_ty} out{k}[{}];", len(k)).unwrap();
                args.push(format!("out{k}"));
            }
            writeln!(body, "    {}({});", native.predict(ns), args.join(", ")).unwrap();
            let emit = if variant.int8_io(c) && native == Native::C {
                "emit_i8"
            } else {
                "emit"
            };
            for k in 0..outs.len() {
                writeln!(body, "    {emit}(out{k}, {});", len(k)).unwrap();
            }
            writeln!(body, "    {std}printf(\"\\n\");\n  }}").unwrap();
        }
        costs.push(cost(&generated.source, &body));
        bodies.push(body);
    }
    // Each part runs its cases in a function `part_P`; main calls them in order.
    let (void, double) = match native {
        Native::Cpp => ("", "static_cast<double>(v[i])"),
        Native::C => ("void", "(double)v[i]"),
    };
    // `emit` of floats; for int8 outputs (`--int8-io`) C++ overloads it, C calls `emit_i8`.
    let emits = [
        format!("void emit(const float* v, {std}size_t n)"),
        match native {
            Native::Cpp => format!("void emit(const {std}int8_t* v, {std}size_t n)"),
            Native::C => "void emit_i8(const int8_t* v, size_t n)".to_string(),
        },
    ];
    let emit = emits.join(";\n");
    let groups = deal(&costs, parts(cases.len()));
    let mut main = format!(
        "{}{}{}",
        native.include("stddef"),
        native.include("stdio"),
        native.include("stdint"),
    );
    for e in &emits {
        writeln!(main, "{e};\n{e} {{ for ({std}size_t i = 0; i < n; ++i) {std}printf(\"%.9g \", {double}); {std}printf(\"| \"); }}").unwrap();
    }
    let mut compiles = Vec::new();
    let mut objects = vec![dir.join(format!("{prefix}main.o"))];
    for (p, group) in groups.iter().enumerate() {
        // The headers right after <cstdio>, as they were in one program: each must bring
        // what it needs. The inputs' NAN and INFINITY come from <cmath>.
        let mut part = native.include("stdio");
        part.extend(group.iter().map(|&c| includes[c].as_str()));
        part.push_str(&native.include("math"));
        part.push_str(&native.include("stddef"));
        part.push_str(&native.include("stdint"));
        writeln!(part, "{emit};").unwrap();
        // One function per case, as in Rust (not static: -O1 inlines a static function called
        // once); `part_P` calls them in order.
        for &c in group {
            write!(
                part,
                "void case_{c}({void});\nvoid case_{c}({void}) {{\n{}}}\n",
                bodies[c]
            )
            .unwrap();
        }
        write!(part, "void part_{p}({void});\nvoid part_{p}({void}) {{\n").unwrap();
        for &c in group {
            writeln!(part, "  case_{c}();").unwrap();
        }
        part.push_str("}\n");
        std::fs::write(dir.join(format!("{prefix}part{p}.{source_ext}")), part).unwrap();
        writeln!(main, "void part_{p}({void});").unwrap();
        objects.push(dir.join(format!("{prefix}part{p}.o")));
    }
    writeln!(main, "int main({void}) {{").unwrap();
    for p in 0..groups.len() {
        writeln!(main, "  part_{p}();").unwrap();
    }
    main.push_str("  return 0;\n}\n");
    std::fs::write(dir.join(format!("{prefix}main.{source_ext}")), main).unwrap();
    for (object, source) in objects.iter().zip(
        std::iter::once(format!("{prefix}main.{source_ext}"))
            .chain((0..groups.len()).map(|p| format!("{prefix}part{p}.{source_ext}"))),
    ) {
        let mut cmd = Command::new(compiler);
        cmd.args(flags)
            .args((!variant.dispatch).then_some("-DKERAS2SRC_NO_DISPATCH"))
            .arg("-c")
            // The assembler's .incbin finds weights files on the include path.
            .arg("-I")
            .arg(dir)
            .arg("-o")
            .arg(object)
            .arg(dir.join(source));
        compiles.push(cmd);
    }
    run_all(compiles);
    let runner = dir.join(format!("{source_ext}_runner"));
    // C's sqrtf may be a libm call (errno for negative inputs).
    let libm: &[&str] = if native == Native::C { &["-lm"] } else { &[] };
    run(Command::new(compiler)
        .args(&objects)
        .arg("-o")
        .arg(&runner)
        .args(libm));
    parse(&run(&mut Command::new(&runner)), cases, &groups)
}

/// The runner's C++ flags: strict warnings as errors, no exceptions, no FMA contraction
/// (and `-DKERAS2SRC_NO_DISPATCH` unless [`Variant::dispatch`]).
const CPP_FLAGS: &[&str] = &[
    "-std=c++17",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-pedantic",
    "-fno-exceptions",
    "-fno-rtti",
    "-O1",
    "-ffp-contract=off",
];

/// The runner's C flags: C99, strict warnings as errors, no FMA contraction; `-O1` as
/// the C++ (without contraction the bits do not depend on the level, and `-O2` took a
/// third longer; tests/entry_points.rs builds C and C++ at `-O2`).
const C_FLAGS: &[&str] = &[
    "-std=c99",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-pedantic",
    "-O1",
    "-ffp-contract=off",
];

/// What `clang -std=c99 -Weverything` says of generated C that is a style the code uses on
/// purpose (README, "C"): declarations after statements (C99, as C++ writes them), and
/// exact float compares (the math functions' special cases, `x == -1.0f` in log1p, and
/// the index layers' lookups: IntegerLookup, CategoryEncoding, Discretization). Each must
/// stay needed: [`clang_checks_c`] fails on a flag that silences nothing.
pub const CLANG_ALLOWED: &[&str] = &["-Wno-declaration-after-statement", "-Wno-float-equal"];

/// Generates `name` with a self-test in C and in Rust (`generate(lang, name)`) into `dir`,
/// and checks that both pass: C's `NAME_selftest()` returns 1, Rust's `#[cfg(test)]`
/// module passes under `rustc --test`.
pub fn self_tests_pass(
    dir: &Path,
    name: &str,
    generate: impl Fn(Lang, &str) -> keras2src::Generated,
) {
    generate(Lang::C, name)
        .write(&dir.join(format!("{name}.h")))
        .unwrap();
    let main = dir.join(format!("{name}.c"));
    std::fs::write(
        &main,
        format!(
            "#define KERAS2SRC_{}_IMPLEMENTATION\n#include \"{name}.h\"\n\
             int main(void) {{ return {name}_selftest() ? 0 : 1; }}\n",
            name.to_ascii_uppercase()
        ),
    )
    .unwrap();
    let exe = dir.join(name);
    run(Command::new("gcc")
        .args([
            "-std=c99",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-DKERAS2SRC_NO_DISPATCH",
        ])
        .arg(&main)
        .arg("-o")
        .arg(&exe)
        .arg("-lm"));
    run(&mut Command::new(&exe));
    generate(Lang::Rust, name)
        .write(&dir.join(format!("{name}.rs")))
        .unwrap();
    let lib = dir.join(format!("{name}_lib.rs"));
    std::fs::write(
        &lib,
        format!("#![no_std]\n#![deny(warnings)]\nextern crate std;\nmod m {{ include!(\"{name}.rs\"); }}\n"),
    )
    .unwrap();
    let tests = dir.join(format!("{name}_tests"));
    run(Command::new("rustc")
        .args(["--edition", "2021", "--test", "-O"])
        .arg(&lib)
        .arg("-o")
        .arg(&tests));
    let out = run(&mut Command::new(&tests));
    assert!(out.contains("1 passed"), "{out}");
}

/// Whether clang is installed (a message when not).
pub fn have_clang() -> bool {
    let ok = Command::new("clang")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("clang is not installed: generated C not checked with -Weverything");
    }
    ok
}

/// `clang -std=c99 -Weverything` on the definitions of the C headers `idents` in `dir`
/// (written by [`run_c`]), all in one translation unit: it must warn of nothing but what
/// [`CLANG_ALLOWED`] silences, and with `all_needed`, of each of those (one run, which
/// reads the warnings' flags from clang's messages).
pub fn clang_checks_c(dir: &Path, idents: &[&str], all_needed: bool) {
    let mut unit = String::new();
    for ident in idents {
        writeln!(
            unit,
            "#define KERAS2SRC_{}_IMPLEMENTATION\n#include \"{ident}.h\"",
            ident.to_ascii_uppercase()
        )
        .unwrap();
    }
    std::fs::write(dir.join("clang.c"), unit).unwrap();
    let out = Command::new("clang")
        .args(["-std=c99", "-Weverything", "-fsyntax-only"])
        .args(["-fno-caret-diagnostics", "-I"])
        .arg(dir)
        .arg(dir.join("clang.c"))
        .output()
        .unwrap();
    let messages = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "clang:\n{messages}");
    // "file:line:col: warning: text [-Wname]" gives the flag `-Wno-name`.
    let mut flags: Vec<String> = messages
        .lines()
        .filter(|l| l.contains(": warning: "))
        .map(|l| {
            let name = l
                .rsplit_once("[-W")
                .map_or("?", |(_, n)| n.trim_end_matches(']'));
            format!("-Wno-{name}")
        })
        .collect();
    flags.sort();
    flags.dedup();
    let unexpected: Vec<&String> = flags
        .iter()
        .filter(|f| !CLANG_ALLOWED.contains(&f.as_str()))
        .collect();
    let first = |flag: &str| {
        let name = &flag["-Wno-".len()..];
        messages
            .lines()
            .find(|l| l.ends_with(&format!("[-W{name}]")))
            .unwrap_or("")
            .to_string()
    };
    assert!(
        unexpected.is_empty(),
        "clang -Weverything warns: {:?}",
        unexpected.iter().map(|f| first(f)).collect::<Vec<_>>()
    );
    if all_needed {
        for flag in CLANG_ALLOWED {
            assert!(
                flags.iter().any(|f| f == flag),
                "{flag} silences nothing in the generated C: drop it from CLANG_ALLOWED"
            );
        }
    }
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

/// The outputs of `cases`, read from `text`, which has the lines of each group's cases in
/// turn.
fn parse(text: &str, cases: &[Case], groups: &[Vec<usize>]) -> Outputs {
    let mut lines = text.lines();
    let mut outputs: Vec<(usize, _)> = groups
        .iter()
        .flatten()
        .map(|&c| {
            let case = &cases[c];
            let output: Vec<Vec<Vec<f32>>> = {
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
                                        v => v
                                            .parse::<f32>()
                                            .unwrap_or_else(|_| panic!("bad value {v}")),
                                    })
                                    .collect()
                            })
                            .collect()
                    })
                    .collect()
            };
            (c, output)
        })
        .collect();
    outputs.sort_by_key(|(c, _)| *c);
    outputs.into_iter().map(|(_, output)| output).collect()
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

/// Undefined symbols of the objects of `run_cpp`'s (`run_c`'s) program in `dir` that hold
/// the generated code (every case's header and its `predict` calls, at `-O1`, which
/// inlines less than `-O2` and so leaves more calls to see), or `None` where nm is
/// missing.
pub fn runner_symbols(dir: &Path, lang: Lang) -> Option<Vec<String>> {
    let prefix = if lang == Lang::C { "c_" } else { "" };
    let objects: Vec<_> = (0..)
        .map(|p| dir.join(format!("{prefix}part{p}.o")))
        .take_while(|o| o.exists())
        .collect();
    assert!(!objects.is_empty(), "no objects in {}", dir.display());
    let mut symbols = Vec::new();
    for object in &objects {
        symbols.extend(undefined_symbols(object)?);
    }
    Some(symbols)
}
