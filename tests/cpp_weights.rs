//! C++ with `--weights file`: the weights in `NAME.hpp.weights.bin`, brought in by the
//! assembler's `.incbin` when the header is compiled (no loading at run time). The header
//! compiles in several translation units and with -flto (one copy of the weights), agrees
//! bit for bit with the inline header and within the bound with Keras, refuses a weights
//! file of the wrong length, and also builds with the symbol defined elsewhere (the
//! fallback for toolchains without `.incbin`). The files are byte-identical across runs.

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{close, run};
use keras2src::{Lang, Model, Options, WeightsPlacement};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name)
}

/// One copy of each layer (`KERAS2SRC_NO_DISPATCH`; tests/dispatch.rs builds with dispatch).
const CXXFLAGS: [&str; 10] = [
    "-DKERAS2SRC_NO_DISPATCH",
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

/// A single-input, single-output fixture: (name, Keras inputs, Keras outputs) of sample 0.
fn sample(name: &str) -> (Vec<f32>, Vec<f32>) {
    let text = std::fs::read_to_string(fixture(&format!("{name}.io.json"))).unwrap();
    let io: serde_json::Value = serde_json::from_str(&text).unwrap();
    let first = |key: &str| common::io_samples(&io, key)[0][0].clone();
    (first("inputs"), first("outputs"))
}

/// Writes `NAME.hpp` (+ weights file) for `model` into `dir`, as `weights` says.
fn generate(model: &Model, name: &str, weights: WeightsPlacement, dir: &Path) -> Vec<PathBuf> {
    let generated = model
        .generate_with(&Options {
            weights,
            ..Options::new(Lang::Cpp, name)
        })
        .unwrap();
    generated.write(&dir.join(format!("{name}.hpp"))).unwrap()
}

/// Every fixture through a header reading a weights file and one with inline weights, in
/// a program of two translation units (both include every header), built plain and with
/// -flto: the outputs match Keras and the inline headers bit for bit.
#[test]
fn weights_file_header_matches_keras_and_inline() {
    let dir = common::work_dir("cpp-weights");
    let gen = dir.path.join("gen");
    std::fs::create_dir_all(&gen).unwrap();
    // MobileNetV2 (1.6 MB of weights) took 14 of this test's 18 s; the mechanism does not
    // depend on size, and the bench's large models read 16 and 94 MB files this way.
    let names = ["seed", "resnet_small", "bench_lstm"];
    let mut includes = String::new();
    let mut body = String::new();
    let mut want = Vec::new();
    for name in names {
        let model = Model::load(&fixture(&format!("{name}.keras")), None).unwrap();
        let written = generate(&model, name, WeightsPlacement::File, &gen);
        assert_eq!(
            written,
            vec![
                gen.join(format!("{name}.hpp")),
                gen.join(format!("{name}.hpp.weights.bin"))
            ]
        );
        let inline = format!("{name}_inline");
        generate(&model, &inline, WeightsPlacement::Inline, &gen);
        writeln!(
            includes,
            "#include \"{name}.hpp\"\n#include \"{inline}.hpp\""
        )
        .unwrap();
        let (input, output) = sample(name);
        let values: Vec<String> = input
            .iter()
            .map(|&v| keras2src::backend::cpp::float_literal(v))
            .collect();
        writeln!(
            body,
            "  {{\n    static const float in[] = {{{}}};\n    \
             static float a[{name}::kOutputLen], b[{name}::kOutputLen];\n    \
             {name}::predict(in, a);\n    other_{name}(in, b);\n    \
             emit(a, {name}::kOutputLen);\n    emit(b, {name}::kOutputLen);\n  }}",
            values.join(", ")
        )
        .unwrap();
        want.push(output);
    }
    let other: String = names
        .iter()
        .map(|n| {
            format!(
                "void other_{n}(const float* in, float* out) {{ {n}_inline::predict(in, out); }}\n"
            )
        })
        .collect();
    std::fs::write(dir.path.join("other.cpp"), format!("{includes}{other}")).unwrap();
    let declarations: String = names
        .iter()
        .map(|n| format!("void other_{n}(const float* in, float* out);\n"))
        .collect();
    std::fs::write(
        dir.path.join("main.cpp"),
        format!(
            "#include <cstdio>\n{includes}{declarations}\
             static void emit(const float* v, std::size_t n) {{\n  \
             for (std::size_t i = 0; i < n; ++i) std::printf(\"%.9g \", static_cast<double>(v[i]));\n  \
             std::printf(\"\\n\");\n}}\nint main() {{\n{body}\n  return 0;\n}}\n"
        ),
    )
    .unwrap();
    let builds = [("plain", &[][..]), ("lto", &["-flto", "-Wa,-I,gen"][..])];
    // Both builds at once; from the program's directory: GCC hands -I on to the assembler.
    common::run_all(
        builds
            .iter()
            .map(|(label, extra)| {
                let mut cmd = Command::new("g++");
                cmd.args(CXXFLAGS)
                    .args(*extra)
                    .args(["-I", "gen", "main.cpp", "other.cpp", "-o"])
                    .arg(dir.path.join(format!("program_{label}")))
                    .current_dir(&dir.path);
                cmd
            })
            .collect(),
    );
    for (label, _) in builds {
        let binary = dir.path.join(format!("program_{label}"));
        let text = run(&mut Command::new(&binary));
        let lines: Vec<Vec<f32>> = text
            .lines()
            .map(|l| l.split_whitespace().map(|v| v.parse().unwrap()).collect())
            .collect();
        assert_eq!(lines.len(), 2 * names.len(), "{text}");
        for (k, name) in names.iter().enumerate() {
            let (file, inline) = (&lines[2 * k], &lines[2 * k + 1]);
            assert_eq!(file.len(), want[k].len(), "{name}");
            for (i, (&got, &keras)) in file.iter().zip(&want[k]).enumerate() {
                assert!(
                    close(got, keras),
                    "{name} ({label}) [{i}]: {got}, Keras {keras}"
                );
            }
            let same = file
                .iter()
                .zip(inline)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(
                same,
                "{name} ({label}): weights file and inline headers differ"
            );
        }
        // One copy of each model's weights however many units include the header.
        let nm = run(Command::new("nm").arg(&binary));
        for name in names {
            let symbol = format!("keras2src_{name}_weights");
            let copies = nm
                .lines()
                .filter(|l| l.ends_with(&format!(" {symbol}")))
                .count();
            assert_eq!(copies, 1, "{symbol} ({label})");
        }
    }
}

/// The assembler refuses a weights file whose length is not the header's, naming it;
/// `KERAS2SRC_NAME_WEIGHTS_PATH` points it at a file anywhere.
#[test]
fn weights_file_of_the_wrong_length_does_not_compile() {
    let dir = common::work_dir("cpp-weights-length");
    let model = Model::load(&fixture("seed.keras"), None).unwrap();
    generate(&model, "seed", WeightsPlacement::File, &dir.path);
    std::fs::write(
        dir.path.join("main.cpp"),
        "#include \"seed.hpp\"\nfloat in[seed::kInputLen], out[seed::kOutputLen];\n\
         int main() { seed::predict(in, out); return 0; }\n",
    )
    .unwrap();
    let bin = dir.path.join("seed.hpp.weights.bin");
    let moved = dir.path.join("elsewhere.bin");
    std::fs::rename(&bin, &moved).unwrap();
    let define = format!("-DKERAS2SRC_SEED_WEIGHTS_PATH=\"{}\"", moved.display());
    let compile = |extra: &[&str]| {
        Command::new("g++")
            .args(CXXFLAGS)
            .args(extra)
            .args(["-c", "main.cpp", "-o", "main.o"])
            .current_dir(&dir.path)
            .output()
            .unwrap()
    };
    // Found through the path macro, wherever it is.
    let o = compile(&[&define]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Not found: the assembler says which file.
    let o = compile(&[]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("seed.hpp.weights.bin"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Four bytes short: refused, naming the file and the length expected.
    let bytes = std::fs::read(&moved).unwrap();
    std::fs::write(&moved, &bytes[..bytes.len() - 4]).unwrap();
    let o = compile(&[&define]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        stderr.contains("elsewhere.bin does not hold the 17156 bytes this header expects"),
        "{stderr}"
    );
}

/// The fallback for toolchains without `.incbin` (as the README shows it): define
/// `KERAS2SRC_NAME_WEIGHTS_EXTERNAL` and the symbol in a C file of `xxd -i` bytes.
#[test]
fn weights_symbol_defined_elsewhere() {
    let dir = common::work_dir("cpp-weights-external");
    let model = Model::load(&fixture("seed.keras"), None).unwrap();
    generate(&model, "seed", WeightsPlacement::File, &dir.path);
    generate(&model, "seed_inline", WeightsPlacement::Inline, &dir.path);
    let bytes = std::fs::read(dir.path.join("seed.hpp.weights.bin")).unwrap();
    // What `xxd -i < seed.hpp.weights.bin` prints.
    let listing: Vec<String> = bytes
        .chunks(12)
        .map(|row| {
            let cells: Vec<String> = row.iter().map(|b| format!("0x{b:02x}")).collect();
            format!("  {}", cells.join(", "))
        })
        .collect();
    std::fs::write(
        dir.path.join("seed.weights.inc"),
        listing.join(",\n") + "\n",
    )
    .unwrap();
    std::fs::write(
        dir.path.join("weights.c"),
        "_Alignas(64) const unsigned char keras2src_seed_weights[] = {\n\
         #include \"seed.weights.inc\"\n};\n",
    )
    .unwrap();
    write_seed_main(&dir.path);
    // The weights file is not where the assembler would look: only the C file has it.
    std::fs::remove_file(dir.path.join("seed.hpp.weights.bin")).unwrap();
    run(Command::new("gcc")
        .args(["-std=c11", "-c", "weights.c", "-o", "weights.o"])
        .current_dir(&dir.path));
    run(Command::new("g++")
        .args(CXXFLAGS)
        .args(["-DKERAS2SRC_SEED_WEIGHTS_EXTERNAL", "main.cpp", "weights.o"])
        .args(["-o", "program"])
        .current_dir(&dir.path));
    check_seed_program(&dir.path.join("program"));
}

/// `main.cpp`: seed's sample through `seed` (weights in a file) and `seed_inline`.
fn write_seed_main(dir: &Path) {
    let (input, _) = sample("seed");
    let values: Vec<String> = input
        .iter()
        .map(|&v| keras2src::backend::cpp::float_literal(v))
        .collect();
    std::fs::write(
        dir.join("main.cpp"),
        format!(
            "#include <cstdio>\n#include \"seed.hpp\"\n#include \"seed_inline.hpp\"\n\
             static const float in[] = {{{}}};\nint main() {{\n  \
             float a[1], b[1];\n  seed::predict(in, a);\n  seed_inline::predict(in, b);\n  \
             std::printf(\"%.9g %.9g\\n\", static_cast<double>(a[0]), static_cast<double>(b[0]));\n}}\n",
            values.join(", ")
        ),
    )
    .unwrap();
}

/// The program of [`write_seed_main`] gives the same bits from both headers, close to Keras.
fn check_seed_program(program: &Path) {
    let (_, output) = sample("seed");
    let text = run(&mut Command::new(program));
    let got: Vec<f32> = text
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(got[0].to_bits(), got[1].to_bits(), "{text}");
    assert!(close(got[0], output[0]), "{text} vs Keras {}", output[0]);
}

/// Clang's integrated assembler `.incbin`s the weights file too (it cannot evaluate the
/// length check, which the header leaves to GNU as); run where clang is installed.
#[test]
fn weights_file_header_compiles_with_clang() {
    if !common::have_clang() {
        return;
    }
    let dir = common::work_dir("cpp-weights-clang");
    let model = Model::load(&fixture("seed.keras"), None).unwrap();
    generate(&model, "seed", WeightsPlacement::File, &dir.path);
    generate(&model, "seed_inline", WeightsPlacement::Inline, &dir.path);
    write_seed_main(&dir.path);
    // From the header's directory: the assembler looks in its working directory.
    run(Command::new("clang++")
        .args(["-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror"])
        .args(["main.cpp", "-o", "program"])
        .current_dir(&dir.path));
    check_seed_program(&dir.path.join("program"));
}

/// The same model and options give the same bytes, source and weights file, in both
/// languages (the CLI, twice, into two directories).
#[test]
fn weights_files_are_byte_identical_across_runs() {
    let dir = common::work_dir("cpp-weights-identical");
    let mut outputs = Vec::new();
    for run_dir in ["first", "second"] {
        let out = dir.path.join(run_dir);
        std::fs::create_dir_all(&out).unwrap();
        for file in ["net.hpp", "net.rs"] {
            run(Command::new(env!("CARGO_BIN_EXE_keras2src"))
                .arg("generate")
                .arg(fixture("resnet_small.keras"))
                .args(["--weights", "file", "--lang"])
                .arg(if file.ends_with(".rs") { "rust" } else { "cpp" })
                .arg("-o")
                .arg(out.join(file)));
        }
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        files.sort();
        outputs.push(files);
    }
    let names: Vec<&str> = outputs[0].iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "net.hpp",
            "net.hpp.weights.bin",
            "net.rs",
            "net.weights.bin"
        ]
    );
    assert!(outputs[0] == outputs[1], "two runs wrote different bytes");
}
