//! The generation options for firmware and build-time use: where the scratch lives
//! (stack, caller, static), the `extern "C"` entry points and `--emit-test` self-tests.
//! Every combination is compiled and run in every language; a self-test given wrong Keras
//! outputs must fail, so a passing one means something.

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::run;
use keras2src::{Lang, Model, Options, ScratchPlacement, SelfTest};

/// One input and one output; two of each; an integer input beside a float one, 7 outputs.
const FIXTURES: [&str; 3] = ["seed", "two_io", "mask_pool"];
const PLACEMENTS: [ScratchPlacement; 3] = [
    ScratchPlacement::Stack,
    ScratchPlacement::Caller,
    ScratchPlacement::Static,
];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name)
}

/// A model to generate, under the name `ident`, with its self-test sample.
struct Variant {
    ident: String,
    model: Model,
    options: Options,
    /// Whether the self-test must pass (false: Keras's outputs were tampered with).
    passes: bool,
}

fn variants(lang: Lang) -> Vec<Variant> {
    let mut out = Vec::new();
    for name in FIXTURES {
        let model = Model::load(&fixture(&format!("{name}.keras")), None).unwrap();
        let test = SelfTest::read(&fixture(&format!("{name}.io.json"))).unwrap();
        for scratch in PLACEMENTS {
            let ident = format!("{name}_{}", scratch.as_str());
            let options = Options {
                scratch: Some(scratch),
                extern_c: lang == Lang::Cpp,
                self_test: Some(test.clone()),
                ..Options::new(lang, &ident)
            };
            out.push(Variant {
                ident,
                model: model.clone(),
                options,
                passes: true,
            });
        }
        // The last output value off by far more than the bound.
        let mut wrong = test.clone();
        let last = wrong.outputs.last_mut().unwrap().last_mut().unwrap();
        *last = *last * 1.01 + 0.01;
        let ident = format!("{name}_wrong");
        out.push(Variant {
            ident: ident.clone(),
            model,
            options: Options {
                extern_c: lang == Lang::Cpp,
                self_test: Some(wrong),
                ..Options::new(lang, &ident)
            },
            passes: false,
        });
    }
    out
}

#[test]
fn rust_placements_and_self_tests() {
    let dir = common::work_dir("entry-rust");
    let variants = variants(Lang::Rust);
    let mut lib = String::from("#![no_std]\n#![deny(warnings)]\n");
    for v in &variants {
        let generated = v.model.generate_with(&v.options).unwrap();
        let source = &generated.source;
        let has_predict = source.contains("pub fn predict(");
        assert_eq!(
            has_predict,
            v.options.scratch != Some(ScratchPlacement::Caller),
            "{}",
            v.ident
        );
        assert_eq!(
            source.contains("unsafe"),
            v.options.scratch == Some(ScratchPlacement::Static),
            "{}: only the static scratch needs unsafe",
            v.ident
        );
        std::fs::write(dir.path.join(format!("{}.rs", v.ident)), source).unwrap();
        writeln!(lib, "pub mod {};", v.ident).unwrap();
    }
    std::fs::write(dir.path.join("lib.rs"), lib).unwrap();
    for edition in ["2021", "2024"] {
        let binary = dir.path.join(format!("selftests{edition}"));
        run(Command::new("rustc")
            .args(["--edition", edition, "--test", "-O", "lib.rs", "-o"])
            .arg(&binary)
            .current_dir(&dir.path));
        // The wrong self-tests fail, so the run fails; read each test's verdict.
        let out = Command::new(&binary)
            .args(["--test-threads", "1"])
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&out.stdout);
        for v in &variants {
            let line = format!("test {}::selftest::matches_keras ... ", v.ident);
            let verdict = report
                .lines()
                .find_map(|l| l.strip_prefix(&line))
                .unwrap_or_else(|| panic!("no result for {}:\n{report}", v.ident));
            let want = if v.passes { "ok" } else { "FAILED" };
            assert_eq!(verdict, want, "{} (edition {edition})", v.ident);
        }
    }
}

#[test]
fn cpp_self_tests_and_c_entry_points() {
    let dir = common::work_dir("entry-cpp");
    let variants = variants(Lang::Cpp);
    // C: every header in C mode, calling the entry points; C++: their definitions.
    let mut c = String::from("#include <stdio.h>\n#include <stdint.h>\n");
    let mut cpp = String::new();
    let mut main = String::from("int main(void) {\n");
    for v in &variants {
        let generated = v.model.generate_with(&v.options).unwrap();
        let header = format!("{}.hpp", v.ident);
        std::fs::write(dir.path.join(&header), &generated.source).unwrap();
        let upper = v.ident.to_ascii_uppercase();
        writeln!(c, "#include \"{header}\"").unwrap();
        writeln!(
            cpp,
            "#define KERAS2SRC_{upper}_IMPLEMENTATION\n#include \"{header}\""
        )
        .unwrap();
        let caller = v.options.scratch == Some(ScratchPlacement::Caller);
        assert_eq!(
            generated.source.contains("inline void predict("),
            !caller,
            "{}",
            v.ident
        );
        let id = &v.ident;
        if caller {
            writeln!(
                main,
                "    {{ static float scratch[{upper}_SCRATCH_LEN + 1];\n      \
                 printf(\"{id} %d\\n\", {id}_selftest(scratch)); }}"
            )
            .unwrap();
        } else {
            writeln!(main, "    printf(\"{id} %d\\n\", {id}_selftest());").unwrap();
        }
    }
    main.push_str("    return 0;\n}\n");
    c.push_str(&main);
    std::fs::write(dir.path.join("main.c"), c).unwrap();
    std::fs::write(dir.path.join("models.cpp"), cpp).unwrap();
    let strict = ["-Wall", "-Wextra", "-Werror", "-pedantic", "-O2"];
    run(Command::new("gcc")
        .args(["-std=c99", "-c", "main.c"])
        .args(strict)
        .current_dir(&dir.path));
    run(Command::new("g++")
        .args([
            "-std=c++17",
            "-fno-exceptions",
            "-fno-rtti",
            "-c",
            "models.cpp",
        ])
        .args(strict)
        .current_dir(&dir.path));
    run(Command::new("g++")
        .args(["main.o", "models.o", "-o", "selftests"])
        .current_dir(&dir.path));
    let report = run(&mut Command::new(dir.path.join("selftests")));
    for v in &variants {
        let want = format!("{} {}", v.ident, i32::from(v.passes));
        assert!(
            report.lines().any(|l| l == want),
            "expected `{want}` in:\n{report}"
        );
    }

    if let Some(undefined) = common::undefined_symbols(&dir.path.join("models.o")) {
        let banned = [
            "malloc", "free", "_Znw", "_Zdl", "_Zna", "__cxa_", "_Unwind_",
        ];
        let bad: Vec<_> = undefined
            .iter()
            .filter(|s| banned.iter().any(|b| s.contains(b)))
            .collect();
        assert!(bad.is_empty(), "heap or exception symbols: {bad:?}");
    }
    // `--scratch static`: the buffer is one object of kScratchLen floats, not stack.
    let symbols = run(Command::new("nm")
        .args(["-S", "-C", "models.o"])
        .current_dir(&dir.path));
    for v in variants
        .iter()
        .filter(|v| v.options.scratch == Some(ScratchPlacement::Static))
    {
        let scratch_len = v.model.summary().ram_bytes / 4;
        let wanted = format!("{}::predict(", v.ident);
        let line = symbols
            .lines()
            .find(|l| l.contains(&wanted) && l.ends_with("::scratch"))
            .unwrap_or_else(|| panic!("no static scratch for {}:\n{symbols}", v.ident));
        let size = u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap();
        assert_eq!(size as usize, 4 * scratch_len.max(1), "{line}");
    }
}

/// The C backend: every placement and self-test, the declarations included from one C file
/// (and from C++) and the definitions compiled in another (two models' definitions in one
/// file share no name), built with gcc alone; nothing from the heap, a static scratch of
/// SCRATCH_LEN floats.
#[test]
fn c_self_tests_and_entry_points() {
    let dir = common::work_dir("entry-c");
    let variants = variants(Lang::C);
    let mut main = String::from("#include <stdio.h>\n");
    let mut models = String::new();
    let mut calls = String::from("int main(void) {\n");
    for v in &variants {
        let generated = v.model.generate_with(&v.options).unwrap();
        let header = format!("{}.h", v.ident);
        std::fs::write(dir.path.join(&header), &generated.source).unwrap();
        let upper = v.ident.to_ascii_uppercase();
        writeln!(main, "#include \"{header}\"").unwrap();
        writeln!(
            models,
            "#define KERAS2SRC_{upper}_IMPLEMENTATION\n#include \"{header}\""
        )
        .unwrap();
        let caller = v.options.scratch == Some(ScratchPlacement::Caller);
        let id = &v.ident;
        assert_eq!(
            generated.source.contains(&format!("void {id}_predict(")),
            !caller,
            "{id}"
        );
        if caller {
            writeln!(
                calls,
                "    {{ static float scratch[{upper}_SCRATCH_LEN + 1];\n      \
                 printf(\"{id} %d\\n\", {id}_selftest(scratch)); }}"
            )
            .unwrap();
        } else {
            writeln!(calls, "    printf(\"{id} %d\\n\", {id}_selftest());").unwrap();
        }
    }
    calls.push_str("    return 0;\n}\n");
    main.push_str(&calls);
    std::fs::write(dir.path.join("main.c"), &main).unwrap();
    // The same caller in C++: the declarations are `extern "C"` there.
    std::fs::write(dir.path.join("main.cpp"), &main).unwrap();
    std::fs::write(dir.path.join("models.c"), models).unwrap();
    let strict = [
        "-std=c99",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-pedantic",
        "-O2",
        "-c",
    ];
    run(Command::new("gcc")
        .args(strict)
        .args(["main.c", "models.c"])
        .current_dir(&dir.path));
    run(Command::new("gcc")
        .args(["main.o", "models.o", "-o", "selftests", "-lm"])
        .current_dir(&dir.path));
    run(Command::new("g++")
        .args([
            "-std=c++17",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-c",
        ])
        .args(["main.cpp", "-o", "main_cpp.o"])
        .current_dir(&dir.path));
    run(Command::new("g++")
        .args(["main_cpp.o", "models.o", "-o", "selftests_cpp", "-lm"])
        .current_dir(&dir.path));
    for program in ["selftests", "selftests_cpp"] {
        let report = run(&mut Command::new(dir.path.join(program)));
        for v in &variants {
            let want = format!("{} {}", v.ident, i32::from(v.passes));
            assert!(
                report.lines().any(|l| l == want),
                "{program}: expected `{want}` in:\n{report}"
            );
        }
    }
    if let Some(undefined) = common::undefined_symbols(&dir.path.join("models.o")) {
        // Besides libm's sqrtf, only what dispatch (x86-64 glibc, no -march) takes from
        // libgcc, which every gcc link has, and the linker.
        let dispatch = [
            "_GLOBAL_OFFSET_TABLE_",
            "__cpu_features2",
            "__cpu_indicator_init",
            "__cpu_model",
        ];
        assert!(
            undefined
                .iter()
                .all(|s| s == "sqrtf" || dispatch.contains(&s.as_str())),
            "the definitions need {undefined:?}"
        );
    }
    // `--scratch static`: the buffer is one local static of SCRATCH_LEN floats, not stack.
    let symbols = run(Command::new("nm")
        .args(["-S", "models.o"])
        .current_dir(&dir.path));
    let statics: Vec<&str> = symbols
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .last()
                .is_some_and(|s| s.starts_with("scratch."))
        })
        .collect();
    let static_variants: Vec<&Variant> = variants
        .iter()
        .filter(|v| v.options.scratch == Some(ScratchPlacement::Static))
        .collect();
    assert_eq!(statics.len(), static_variants.len(), "{symbols}");
    let mut sizes: Vec<u64> = statics
        .iter()
        .map(|l| u64::from_str_radix(l.split_whitespace().nth(1).unwrap(), 16).unwrap())
        .collect();
    let mut wanted: Vec<u64> = static_variants
        .iter()
        .map(|v| 4 * (v.model.summary().ram_bytes as u64 / 4).max(1))
        .collect();
    sizes.sort_unstable();
    wanted.sort_unstable();
    assert_eq!(sizes, wanted, "{symbols}");
}

/// The `no_std` proof on the host: a `#![no_std]` crate of generated modules (every kind of
/// layer the sample models use, the math runtime, a weights file, the static scratch)
/// compiles to an object that references nothing from `std` or `alloc`.
#[test]
fn rust_object_needs_nothing_from_std_or_alloc() {
    let dir = common::work_dir("entry-nostd");
    let mut lib = String::from("#![no_std]\n#![deny(warnings)]\n");
    let models = [
        (
            "seed",
            ScratchPlacement::Static,
            keras2src::WeightsPlacement::File,
        ),
        (
            "bench_cnn",
            ScratchPlacement::Stack,
            keras2src::WeightsPlacement::Inline,
        ),
        (
            "bench_lstm",
            ScratchPlacement::Caller,
            keras2src::WeightsPlacement::Inline,
        ),
        (
            "text_bilstm",
            ScratchPlacement::Stack,
            keras2src::WeightsPlacement::Inline,
        ),
        (
            "transformer_block",
            ScratchPlacement::Static,
            keras2src::WeightsPlacement::Inline,
        ),
    ];
    for (name, scratch, weights) in models {
        let model = Model::load(&fixture(&format!("{name}.keras")), None).unwrap();
        let options = Options {
            scratch: Some(scratch),
            weights,
            ..Options::new(Lang::Rust, name)
        };
        let generated = model.generate_with(&options).unwrap();
        for (path, bytes) in generated.files(&dir.path.join(format!("{name}.rs"))) {
            std::fs::write(path, bytes).unwrap();
        }
        writeln!(lib, "pub mod {name};").unwrap();
    }
    std::fs::write(dir.path.join("lib.rs"), lib).unwrap();
    run(Command::new("rustc")
        .args(["--edition=2021", "--crate-type=lib", "--emit=obj"])
        .args(["-C", "opt-level=1", "-C", "panic=abort", "-o", "models.o"])
        .arg("lib.rs")
        .current_dir(&dir.path));
    let Some(undefined) = common::undefined_symbols(&dir.path.join("models.o")) else {
        eprintln!("skipped: nm is not installed");
        return;
    };
    let banned = [
        "3std",
        "5alloc",
        "__rust_alloc",
        "__rust_dealloc",
        "__rust_realloc",
    ];
    let bad: Vec<_> = undefined
        .iter()
        .filter(|s| banned.iter().any(|b| s.contains(b)))
        .collect();
    assert!(bad.is_empty(), "std or alloc symbols: {bad:?}");
    // The object is the models' code, not an empty file: their entry points are defined.
    let defined = run(Command::new("nm")
        .args(["--defined-only", "models.o"])
        .current_dir(&dir.path));
    for (name, _, _) in models {
        let mangled = format!("{}{name}", name.len());
        assert!(
            defined
                .lines()
                .any(|l| l.contains(&mangled) && l.contains("predict_with_scratch")),
            "{name}::predict_with_scratch is not in the object"
        );
    }
}

/// `tanh(x) + x` over 50,000 floats: 200 KB of working memory and 200 KB of output, so
/// `predict` would need 400 KB of stack, over [`keras2src::STACK_SCRATCH_LIMIT`].
fn large_model() -> Model {
    use keras2src::ir::{Activation, Graph, InputDtype, MergeKind, Op};
    let mut g = Graph::default();
    let x = g.add_input("x", vec![50_000], InputDtype::F32).unwrap();
    let t = g
        .add_node(
            "t",
            "Activation",
            Op::Activation(Activation::Tanh),
            vec![x],
            0,
        )
        .unwrap();
    let y = g
        .add_node(
            "y",
            "Add",
            Op::Merge {
                kind: MergeKind::Add,
            },
            vec![t, x],
            0,
        )
        .unwrap();
    g.add_output("y", y);
    Model {
        graph: g,
        sha256: vec!["0".into()],
        path: "large".into(),
        config: None,
        input_shapes: Vec::new(),
    }
}

/// Above 256 KiB of `predict` arrays the default leaves the stack (Rust: the caller's
/// buffer, C++: a static one), says so, and the code runs on a thread with a 64 KiB stack;
/// an explicit `--scratch` wins, and small models keep the stack.
#[test]
fn large_working_memory_leaves_the_stack() {
    use keras2src::STACK_SCRATCH_LIMIT;
    assert_eq!(
        ScratchPlacement::automatic(Lang::Rust, STACK_SCRATCH_LIMIT),
        (ScratchPlacement::Stack, None)
    );
    for (lang, placement) in [
        (Lang::Rust, ScratchPlacement::Caller),
        (Lang::Cpp, ScratchPlacement::Static),
    ] {
        let (chosen, note) = ScratchPlacement::automatic(lang, STACK_SCRATCH_LIMIT + 1);
        assert_eq!(chosen, placement);
        assert!(note
            .unwrap()
            .contains(&format!("--scratch {}", placement.as_str())));
    }

    // A small model: the default is the stack, byte for byte, with nothing to say.
    let seed = Model::load(&fixture("seed.keras"), None).unwrap();
    for lang in [Lang::Rust, Lang::Cpp] {
        let auto = seed.generate_with(&Options::new(lang, "seed")).unwrap();
        let stack = seed
            .generate_with(&Options {
                scratch: Some(ScratchPlacement::Stack),
                ..Options::new(lang, "seed")
            })
            .unwrap();
        assert_eq!(auto, stack);
        assert!(auto.notes.is_empty());
    }

    let model = large_model();
    let dir = common::work_dir("entry-large");
    let rust = model
        .generate_with(&Options::new(Lang::Rust, "big"))
        .unwrap();
    assert!(!rust.source.contains("pub fn predict("), "no stack predict");
    assert!(rust.source.contains("--scratch caller\n"), "header options");
    assert!(rust
        .source
        .contains("// note: predict would put 400000 bytes on the stack"));
    assert_eq!(rust.notes.len(), 1, "{:?}", rust.notes);
    let explicit = model
        .generate_with(&Options {
            scratch: Some(ScratchPlacement::Stack),
            ..Options::new(Lang::Rust, "big")
        })
        .unwrap();
    assert!(explicit.source.contains("pub fn predict(") && explicit.notes.is_empty());

    std::fs::write(dir.path.join("big.rs"), &rust.source).unwrap();
    std::fs::write(
        dir.path.join("main.rs"),
        "#![deny(warnings)]\nmod big { include!(\"big.rs\"); }\n\
         fn boxed<const N: usize>() -> Box<[f32; N]> {\n    \
         vec![0.0f32; N].into_boxed_slice().try_into().unwrap()\n}\n\
         fn main() {\n    \
         let small_stack = std::thread::Builder::new().stack_size(64 * 1024);\n    \
         let ok = small_stack.spawn(|| {\n        \
         let mut input = boxed::<{ big::INPUT_LEN }>();\n        \
         for (i, v) in input.iter_mut().enumerate() { *v = (i % 7) as f32 - 3.0; }\n        \
         let mut output = boxed::<{ big::OUTPUT_LEN }>();\n        \
         let mut scratch = boxed::<{ big::SCRATCH_LEN }>();\n        \
         big::predict_with_scratch(&input, &mut output, &mut scratch);\n        \
         input.iter().zip(output.iter()).all(|(x, y)| (x.tanh() + x - y).abs() < 1e-5)\n    \
         }).unwrap().join().unwrap();\n    \
         assert!(ok);\n    println!(\"ok\");\n}\n",
    )
    .unwrap();
    run(Command::new("rustc")
        .args(["--edition", "2021", "-O", "main.rs", "-o", "big_rust"])
        .current_dir(&dir.path));
    assert_eq!(run(&mut Command::new(dir.path.join("big_rust"))), "ok\n");

    let cpp = model
        .generate_with(&Options::new(Lang::Cpp, "big"))
        .unwrap();
    assert!(cpp.source.contains("static float scratch[kScratchLen"));
    assert!(cpp.source.contains("--scratch static\n"), "header options");
    assert_eq!(cpp.notes.len(), 1, "{:?}", cpp.notes);
    std::fs::write(dir.path.join("big.hpp"), &cpp.source).unwrap();
    std::fs::write(
        dir.path.join("main.cpp"),
        "#include \"big.hpp\"\n#include <pthread.h>\n#include <cmath>\n#include <cstdio>\n\
         static float input[big::kInputLen], output[big::kOutputLen];\n\
         static void* work(void*) {\n    \
         for (std::size_t i = 0; i < big::kInputLen; ++i) input[i] = float(i % 7) - 3.0f;\n    \
         big::predict(input, output);\n    \
         for (std::size_t i = 0; i < big::kInputLen; ++i)\n        \
         if (std::fabs(std::tanh(input[i]) + input[i] - output[i]) > 1e-5f) return nullptr;\n    \
         return output;\n}\n\
         int main() {\n    \
         pthread_attr_t attr;\n    pthread_attr_init(&attr);\n    \
         pthread_attr_setstacksize(&attr, 64 * 1024);\n    \
         pthread_t thread;\n    void* result = nullptr;\n    \
         if (pthread_create(&thread, &attr, work, nullptr) != 0) return 2;\n    \
         pthread_join(thread, &result);\n    \
         std::puts(result ? \"ok\" : \"wrong\");\n    return result ? 0 : 1;\n}\n",
    )
    .unwrap();
    run(Command::new("g++")
        .args([
            "-std=c++17",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pthread",
        ])
        .args(["main.cpp", "-o", "big_cpp"])
        .current_dir(&dir.path));
    assert_eq!(run(&mut Command::new(dir.path.join("big_cpp"))), "ok\n");
}
