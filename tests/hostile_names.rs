//! Names are data, never code. Fixture models with every layer, input, output and model
//! name replaced by one built to break out of a comment, a string or an identifier (or to
//! collide with a keyword or a C library macro) still generate code that compiles in every
//! language (strict warnings; C++ and C also in GNU mode after headers that define
//! lowercase macros) and computes exactly what Keras computed.

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use keras2src::{Lang, Model};
use serde_json::Value;

/// Each tries one way out; `evil` marks text that must never become code.
const HOSTILE: &[&str] = &[
    "*/ fn evil() { loop {} } /*",
    "\n#define predict evil\nint x = (",
    "\"); evil(); (\"",
    "\u{202e}evil\u{2066} \u{200b}",
    "??/\nevil",
    "evil\\",
    "fn",
    "gen",
    "linux",
    "stdout",
    "max",
    "major",
    "main",
    "predict",
    "r#try",
    "__cxa_evil",
    "a",
    "A",
    "x\u{0}evil",
    "\r\nevil();\r\n//",
    "\u{2028}evil\u{2029}",
    "0x1p3f",
    "core",
    "Self",
    "weights",
    "math",
    "offsetof",
    "isnan",
];

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models")
}

/// Replaces every string equal to a key of `names` (layer names are unique and used
/// verbatim in configs, references and weight keys), object keys included.
fn rename(value: &mut Value, names: &[(String, String)]) {
    let new_name = |s: &str| names.iter().find(|(old, _)| old == s).map(|(_, n)| n);
    match value {
        Value::String(s) => {
            if let Some(n) = new_name(s) {
                *s = n.clone();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rename(v, names)),
        Value::Object(map) => {
            let old = std::mem::take(map);
            for (k, mut v) in old {
                rename(&mut v, names);
                let key = new_name(&k).cloned().unwrap_or(k);
                map.insert(key, v);
            }
        }
        _ => {}
    }
}

/// The fixture's interchange file with hostile names, and its samples and Keras outputs.
fn hostile_case(fixture: &str, offset: usize, dir: &Path) -> (common::Case, Vec<Vec<Vec<f32>>>) {
    let read = |ext: &str| -> Value {
        let path = models_dir().join(format!("{fixture}{ext}"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let mut doc = read(".interchange.json");
    let config = &doc["model"]["config"];
    let mut old: Vec<String> = vec![config["name"].as_str().unwrap().to_string()];
    for layer in config["layers"].as_array().unwrap() {
        let name = layer.get("name").unwrap_or(&layer["config"]["name"]);
        old.push(name.as_str().unwrap().to_string());
    }
    let names: Vec<(String, String)> = old
        .into_iter()
        .enumerate()
        .map(|(k, o)| (o, HOSTILE[(offset + k) % HOSTILE.len()].to_string()))
        .collect();
    rename(&mut doc, &names);
    let path = dir.join(format!("{fixture}.interchange.json"));
    std::fs::write(&path, doc.to_string()).unwrap();
    let model = Model::load(&path, None).unwrap();

    let io = read(".io.json");
    let case = common::Case {
        ident: fixture.to_string(),
        model,
        samples: common::io_samples(&io, "inputs"),
        weights: keras2src::WeightsPlacement::Inline,
    };
    (case, common::io_samples(&io, "outputs"))
}

/// The text of `line` outside string literals and `//` comments.
fn code_part(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                while let Some(s) = chars.next() {
                    match s {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '/' if chars.peek() == Some(&'/') => break,
            _ => out.push(c),
        }
    }
    out
}

#[test]
fn hostile_names_stay_data() {
    let dir = common::work_dir("hostile-names");
    let fixtures = [
        ("two_io", 0),
        ("text_bilstm", 6),
        ("bench_cnn", 14),
        ("seed", 22),
    ];
    let mut cases = Vec::new();
    let mut wanted = Vec::new();
    for (fixture, offset) in fixtures {
        let (case, outputs) = hostile_case(fixture, offset, &dir.path);
        for lang in [Lang::Rust, Lang::Cpp, Lang::C] {
            let source = case.model.generate(lang, fixture).unwrap();
            assert!(source.is_ascii(), "{fixture}: non-ASCII in generated code");
            for line in source.lines() {
                // Identifiers keep a name's letters (`x_evil`), never its punctuation.
                let code = code_part(line);
                let injected = [
                    "fn evil()",
                    "evil();",
                    "#define predict",
                    "loop {}",
                    "/*",
                    "*/",
                ];
                assert!(
                    !injected.iter().any(|i| code.contains(i)),
                    "{fixture} ({lang:?}): a name reached code: {line}"
                );
                assert!(
                    !line.ends_with('\\'),
                    "{fixture}: line continuation: {line}"
                );
            }
        }
        cases.push(case);
        wanted.push(outputs);
    }

    // Both languages compile (strict, see tests/common) and compute what Keras computed.
    let (rust, cpp) = common::run_both(&cases, &dir.path);
    for (c, case) in cases.iter().enumerate() {
        for (s, want) in wanted[c].iter().enumerate() {
            for (lang, got) in [("Rust", &rust[c][s]), ("C++", &cpp[c][s])] {
                for (port, (g, w)) in got.iter().zip(want).enumerate() {
                    assert_eq!(g.len(), w.len());
                    for (i, (&g, &w)) in g.iter().zip(w).enumerate() {
                        assert!(
                            common::close(g, w),
                            "{} {lang} sample {s} output {port}[{i}]: {g} vs Keras {w}",
                            case.ident
                        );
                    }
                }
            }
        }
    }

    // C++ and C in GNU mode (which predefines `linux` and `unix`) after headers and an
    // Arduino-style SDK that define lowercase macros (C: with the definitions).
    let macros = "#include <math.h>\n#include <stdio.h>\n#include <sys/sysmacros.h>\n\
         #define max(a, b) ((a) > (b) ? (a) : (b))\n#define min(a, b) ((a) < (b) ? (a) : (b))\n\
         #define abs(x) ((x) > 0 ? (x) : -(x))\n#define round(x) ((long)((x) + 0.5))\n";
    let mut tu = format!("#include <cmath>\n#include <cstddef>\n#include <cstdint>\n{macros}");
    let mut c = format!("#include <stddef.h>\n#include <stdint.h>\n{macros}");
    for case in &cases {
        writeln!(tu, "#include \"{}.hpp\"", case.ident).unwrap();
        writeln!(
            c,
            "#define KERAS2SRC_{}_IMPLEMENTATION\n#include \"{}.h\"",
            case.ident.to_ascii_uppercase(),
            case.ident
        )
        .unwrap();
    }
    std::fs::write(dir.path.join("macros.cpp"), tu).unwrap();
    std::fs::write(dir.path.join("macros.c"), c).unwrap();
    let strict = ["-Wall", "-Wextra", "-Werror", "-c"];
    common::run_all(vec![
        {
            let mut cmd = Command::new("g++");
            cmd.arg("-std=gnu++17").args(strict).arg("macros.cpp");
            cmd.current_dir(&dir.path);
            cmd
        },
        {
            let mut cmd = Command::new("gcc");
            cmd.arg("-std=gnu99").args(strict).arg("macros.c");
            cmd.current_dir(&dir.path);
            cmd
        },
    ]);
}
