//! NaN, infinities, negative zero, subnormals and the extremes of f32 as weights: the
//! generated code compiles in both languages (Rust weights inline and in a file, C++
//! decimal and hex literals), every weight keeps its exact bit pattern
//! (NaN stays NaN: C++17 has no constant expression for a chosen payload), and predict
//! propagates them as the interpreter does.

mod common;

use std::fmt::Write as _;
use std::process::Command;

use keras2src::{Lang, Model, Options, WeightsPlacement};
use serde_json::{json, Value};

const INPUTS: usize = 4;
const UNITS: usize = 8;

fn specials() -> Vec<f32> {
    let mut v = vec![
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        -0.0,
        0.0,
        f32::from_bits(1),           // smallest subnormal
        -f32::from_bits(1),          //
        f32::from_bits(0x007f_ffff), // largest subnormal
        f32::from_bits(0x0040_0001), // a subnormal with low bits set
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
        f32::MAX,
        f32::MIN,
        f32::EPSILON,
        0.1,
        1.0 / 3.0,
        16_777_217.0, // 2^24 + 1 rounds to 2^24: the literal must too
        -123_456.79,
        1e-38,
        3.4028235e38,
    ];
    // Fill the kernel and bias with ordinary values after the special ones.
    let mut k = 1u32;
    while v.len() < INPUTS * UNITS + UNITS {
        v.push((k as f32 * 0.37).sin());
        k += 1;
    }
    v
}

/// JSON for a weight value: the interchange format writes non-finite values as strings.
fn json_value(v: f32) -> Value {
    if v.is_nan() {
        json!("nan")
    } else if v.is_infinite() {
        json!(if v > 0.0 { "inf" } else { "-inf" })
    } else {
        json!(v as f64)
    }
}

fn model(dir: &std::path::Path) -> Model {
    let values = specials();
    let (kernel, bias) = values.split_at(INPUTS * UNITS);
    let doc = json!({
        "format": "keras2src",
        "version": 1,
        "keras_version": "3.15.1",
        "model": {
            "class_name": "Sequential",
            "config": {
                "name": "special",
                "layers": [
                    {"class_name": "InputLayer",
                     "config": {"batch_shape": [null, INPUTS], "dtype": "float32", "name": "x"}},
                    {"class_name": "Dense",
                     "config": {"name": "special", "units": UNITS, "activation": "linear",
                                "use_bias": true}}
                ]
            }
        },
        "weights": {
            "special": [
                {"shape": [INPUTS, UNITS], "data": kernel.iter().map(|&v| json_value(v)).collect::<Vec<_>>()},
                {"shape": [UNITS], "data": bias.iter().map(|&v| json_value(v)).collect::<Vec<_>>()}
            ]
        }
    });
    let path = dir.join("special.interchange.json");
    std::fs::write(&path, doc.to_string()).unwrap();
    Model::load(&path, None).unwrap()
}

/// Sorted bit patterns, every NaN as the canonical one.
fn bit_multiset(values: impl IntoIterator<Item = f32>) -> Vec<u32> {
    let mut bits: Vec<u32> = values
        .into_iter()
        .map(|v| {
            if v.is_nan() {
                f32::NAN.to_bits()
            } else {
                v.to_bits()
            }
        })
        .collect();
    bits.sort_unstable();
    bits
}

/// Whitespace-separated hex bit patterns.
fn parse_bits(text: &str) -> Vec<f32> {
    text.split_whitespace()
        .map(|w| f32::from_bits(u32::from_str_radix(w, 16).unwrap()))
        .collect()
}

#[test]
fn special_weights_keep_their_exact_values() {
    let dir = common::work_dir("special-numbers");
    let model = model(&dir.path);
    let want = bit_multiset(specials());

    // Rust, weights inline and in a file: the weights module is visible from the module
    // that includes the generated file.
    let mut rust_y = Vec::new();
    for (placement, read) in [
        (
            WeightsPlacement::Inline,
            "weights::SPECIAL_KERNEL.iter().flatten().chain(weights::SPECIAL_BIAS.iter()).copied()",
        ),
        (
            WeightsPlacement::File,
            "(0..32).map(weights::special_kernel).chain((0..8).map(weights::special_bias))",
        ),
    ] {
        let options = Options {
            weights: placement,
            ..Options::new(Lang::Rust, "special")
        };
        let generated = model.generate_with(&options).unwrap();
        generated.write(&dir.path.join("special.rs")).unwrap();
        let main = format!(
            "#![deny(warnings)]\n\
             mod special {{\n    include!(\"special.rs\");\n    \
             pub fn weights() -> impl Iterator<Item = f32> {{ {read} }}\n}}\n\
             fn main() {{\n    \
             for v in special::weights() {{ print!(\"{{:x}} \", v.to_bits()); }}\n    println!();\n    \
             let y = special::predict(&[1.0, 0.5, -2.0, 0.0]);\n    \
             for v in y {{ print!(\"{{:x}} \", v.to_bits()); }}\n    println!();\n}}\n"
        );
        std::fs::write(dir.path.join("main.rs"), main).unwrap();
        for edition in ["2021", "2024"] {
            common::run(
                Command::new("rustc")
                    .args(["--edition", edition, "-O", "main.rs", "-o", "rust_special"])
                    .current_dir(&dir.path),
            );
        }
        let out = common::run(&mut Command::new(dir.path.join("rust_special")));
        let mut lines = out.lines();
        let weights = parse_bits(lines.next().unwrap());
        assert_eq!(bit_multiset(weights), want, "Rust weights {placement:?}");
        rust_y = parse_bits(lines.next().unwrap());
    }

    // C++, with decimal literals and with the hex floats large models get: the arrays are
    // in namespace detail.
    let graph = model.optimized();
    let plan = keras2src::passes::plan_memory(&graph);
    let program = keras2src::lower::lower(&graph, &plan, &keras2src::backend::cpp::TUNING).unwrap();
    let mut cpp_y = Vec::new();
    for hex in [false, true] {
        let options = keras2src::backend::cpp::Options {
            header: &[],
            namespace: "special",
            weights_file: None,
            hex_weights: hex,
            scratch: keras2src::ScratchPlacement::Stack,
            extern_c: false,
            self_test: None,
        };
        let header = keras2src::backend::cpp::emit(&program, &options)
            .unwrap()
            .source;
        assert_eq!(header.contains("0x1.99999ap-4f"), hex, "0.1 as hex");
        std::fs::write(dir.path.join("special.hpp"), &header).unwrap();
        let mut main = String::from(
            "#include <cstdint>\n#include <cstdio>\n#include <cstring>\n#include \"special.hpp\"\n\
             static void dump(const float* v, std::size_t n) {\n    \
             for (std::size_t i = 0; i < n; ++i) {\n        \
             std::uint32_t b;\n        std::memcpy(&b, &v[i], 4);\n        \
             std::printf(\"%x \", (unsigned)b);\n    }\n}\nint main() {\n",
        );
        writeln!(
            main,
            "    dump(&special::detail::special_kernel[0][0], {});\n    \
             dump(special::detail::special_bias, {UNITS});\n    std::printf(\"\\n\");\n    \
             const float x[] = {{1.0f, 0.5f, -2.0f, 0.0f}};\n    float y[{UNITS}];\n    \
             special::predict(x, y);\n    dump(y, {UNITS});\n    std::printf(\"\\n\");\n}}",
            INPUTS * UNITS
        )
        .unwrap();
        std::fs::write(dir.path.join("main.cpp"), main).unwrap();
        common::run(
            Command::new("g++")
                .args([
                    "-std=c++17",
                    "-Wall",
                    "-Wextra",
                    "-Werror",
                    "-pedantic",
                    "-O2",
                ])
                .args(["-ffp-contract=off", "main.cpp", "-o", "cpp_special"])
                .current_dir(&dir.path),
        );
        let out = common::run(&mut Command::new(dir.path.join("cpp_special")));
        let mut lines = out.lines();
        let weights = parse_bits(lines.next().unwrap());
        assert_eq!(bit_multiset(weights), want, "C++ weights (hex: {hex})");
        cpp_y = parse_bits(lines.next().unwrap());
    }

    // Outputs: what the interpreter computes, bit for bit in both languages.
    let reference = keras2src::interp::run(&model.graph, &[vec![1.0, 0.5, -2.0, 0.0]]).unwrap();
    let reference = &keras2src::interp::outputs(&model.graph, &reference)[0];
    assert!(reference.iter().any(|v| v.is_nan()) && reference.iter().any(|v| v.is_infinite()));
    for (lang, got) in [("Rust", &rust_y), ("C++", &cpp_y)] {
        for (i, (&g, &r)) in got.iter().zip(reference).enumerate() {
            assert!(common::close(g, r), "{lang} output {i}: {g} vs {r}");
        }
    }
    assert_eq!(bit_multiset(rust_y.clone()), bit_multiset(cpp_y.clone()));
}
