//! Every fixture model that Keras wrote (tests/fixtures/make_fixtures.py), in every format
//! it was saved in, against the outputs Keras computed: through the interpreter, and
//! through generated Rust, C++ and C compiled with rustc, g++ and gcc (and the C checked
//! with `clang -Weverything` where clang is installed).

mod common;

use std::path::{Path, PathBuf};

use common::{close, run_both, Case};
use keras2src::{interp, Model};
use serde_json::Value;

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models")
}

/// A fixture: the Keras inputs and outputs, and the files that hold the model.
struct Fixture {
    name: String,
    /// (model file, architecture JSON for a bare weights file)
    files: Vec<(PathBuf, Option<PathBuf>)>,
    /// samples[s][input] = values
    inputs: Vec<Vec<Vec<f32>>>,
    /// outputs[s][output] = values
    outputs: Vec<Vec<Vec<f32>>>,
    /// The shape of each input Keras ran (passed as `--input-shape` would be, for models
    /// whose sequence length is `None`).
    input_shapes: Vec<Vec<usize>>,
}

fn fixtures() -> Vec<Fixture> {
    let dir = models_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("tests/fixtures/models")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|f| f.strip_suffix(".io.json").map(str::to_string))
        .collect();
    names.sort();
    // `KERAS2SRC_FIXTURES=lstm,gru` runs only the fixtures whose names contain one of the
    // words (for quick iteration; the full suite runs without it).
    if let Ok(filter) = std::env::var("KERAS2SRC_FIXTURES") {
        names.retain(|n| filter.split(',').any(|w| n.contains(w.trim())));
    }
    names
        .into_iter()
        .map(|name| {
            let f = |ext: &str| dir.join(format!("{name}{ext}"));
            let candidates = if name.ends_with(".k2") {
                let base = name.trim_end_matches(".k2");
                let g = |ext: &str| dir.join(format!("{base}{ext}"));
                vec![
                    (g(".k2.h5"), None),
                    (g(".k2.weights.h5"), Some(g(".k2.arch.json"))),
                ]
            } else {
                vec![
                    (f(".keras"), None),
                    (f(".k3.h5"), None),
                    (f(".weights.h5"), Some(f(".arch.json"))),
                    (f(".interchange.json"), None),
                ]
            };
            let files = candidates.into_iter().filter(|(p, _)| p.exists()).collect();
            let io: Value =
                serde_json::from_str(&std::fs::read_to_string(f(".io.json")).unwrap()).unwrap();
            Fixture {
                name: name.replace(".k2", "_k2"),
                files,
                inputs: common::io_samples(&io, "inputs"),
                input_shapes: io["inputs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| {
                        let dims = i["shape"].as_array().unwrap();
                        dims.iter().map(|d| d.as_u64().unwrap() as usize).collect()
                    })
                    .collect(),
                outputs: common::io_samples(&io, "outputs"),
            }
        })
        .collect()
}

/// Compares one sample's outputs; returns a description of the first mismatch.
fn compare(got: &[Vec<f32>], want: &[Vec<f32>]) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!("{} outputs, Keras has {}", got.len(), want.len()));
    }
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        if g.len() != w.len() {
            return Err(format!(
                "output {k} has {} values, Keras has {}",
                g.len(),
                w.len()
            ));
        }
        if let Some((i, (a, b))) = g
            .iter()
            .zip(w)
            .enumerate()
            .find(|(_, (a, b))| !close(**a, **b))
        {
            return Err(format!("output {k}[{i}] = {a}, Keras {b}"));
        }
    }
    Ok(())
}

#[test]
fn fixtures_are_present() {
    let fixtures = fixtures();
    if std::env::var_os("KERAS2SRC_FIXTURES").is_none() {
        assert!(fixtures.len() >= 60, "only {} fixtures", fixtures.len());
    }
    for f in &fixtures {
        assert!(!f.files.is_empty(), "{}: no model file", f.name);
    }
}

#[test]
fn interpreter_matches_keras_in_every_format() {
    let mut failures = Vec::new();
    for fixture in fixtures() {
        for (file, config) in &fixture.files {
            let model =
                match Model::load_with_shapes(file, config.as_deref(), &fixture.input_shapes) {
                    Ok(m) => m,
                    Err(e) => {
                        failures.push(format!("{}: {e}", file.display()));
                        continue;
                    }
                };
            for graph in [model.graph.clone(), model.optimized()] {
                for (s, (inputs, want)) in fixture.inputs.iter().zip(&fixture.outputs).enumerate() {
                    let got =
                        interp::run(&graph, inputs).map(|values| interp::outputs(&graph, &values));
                    if let Err(e) = got.and_then(|got| compare(&got, want)) {
                        failures.push(format!("{} sample {s}: {e}", file.display()));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Fixtures whose layers the code generators do not emit yet (the interpreter runs them).
/// Generating them must fail with a clear error; once a generator supports one, this test
/// fails until it is removed from the list.
const NOT_GENERATED_YET: &[(&str, &str)] = &[];

#[test]
fn generated_code_matches_keras() {
    let all = fixtures();
    let mut fixtures = Vec::new();
    let mut cases = Vec::new();
    for (n, f) in all.into_iter().enumerate() {
        let (file, config) = &f.files[0];
        let model = Model::load_with_shapes(file, config.as_deref(), &f.input_shapes)
            .unwrap_or_else(|e| panic!("{e}"));
        let expected_gap = NOT_GENERATED_YET.iter().any(|(name, _)| *name == f.name);
        match model.generate(keras2src::Lang::Rust, &f.name) {
            Ok(_) => assert!(
                !expected_gap,
                "{} now generates: remove it from NOT_GENERATED_YET",
                f.name
            ),
            Err(e) => {
                assert!(expected_gap, "{}: {e}", f.name);
                assert!(
                    e.to_string().contains("do not support this layer yet"),
                    "{e}"
                );
                continue;
            }
        }
        // Half the fixtures keep their Rust weights in a file, half inline.
        let weights = if n % 2 == 1 {
            keras2src::WeightsPlacement::File
        } else {
            keras2src::WeightsPlacement::Inline
        };
        cases.push(Case {
            ident: f.name.clone(),
            model,
            samples: f.inputs.clone(),
            weights,
        });
        fixtures.push(f);
    }
    let dir = common::work_dir("fixtures");
    // Rust, C++ and C (which must give the C++ bits: see `run_both`).
    let (rust, cpp) = run_both(&cases, &dir.path);
    if common::have_clang() {
        let idents: Vec<&str> = cases.iter().map(|c| c.ident.as_str()).collect();
        let filtered = std::env::var_os("KERAS2SRC_FIXTURES").is_some();
        common::clang_checks_c(&dir.path, &idents, !filtered);
    }
    // Firmware-ready C++ and C: nothing from the heap, exceptions or unwinding (in the
    // objects of the programs just run).
    for lang in [keras2src::Lang::Cpp, keras2src::Lang::C] {
        let Some(symbols) = common::runner_symbols(&dir.path, lang) else {
            break;
        };
        let forbidden: Vec<&String> = symbols
            .iter()
            .filter(|s| {
                s.contains("malloc")
                    || s.contains("free")
                    || s.starts_with("_Znw")
                    || s.starts_with("_Zna")
                    || s.starts_with("__cxa_")
                    || s.starts_with("_Unwind_")
            })
            .collect();
        assert!(
            forbidden.is_empty(),
            "generated {} needs {forbidden:?}",
            lang.as_str()
        );
    }
    let mut failures = Vec::new();
    for (c, fixture) in fixtures.iter().enumerate() {
        for (s, want) in fixture.outputs.iter().enumerate() {
            if let Err(e) = compare(&rust[c][s], want) {
                failures.push(format!("{} (Rust) sample {s}: {e}", fixture.name));
            }
            if let Err(e) = compare(&cpp[c][s], want) {
                failures.push(format!("{} (C++) sample {s}: {e}", fixture.name));
            }
            let same_bits = rust[c][s]
                .iter()
                .flatten()
                .zip(cpp[c][s].iter().flatten())
                .all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()));
            if !same_bits {
                failures.push(format!(
                    "{} sample {s}: Rust and C++ differ in bits",
                    fixture.name
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every fixture's generated Rust (with its weights file, if any), C++ and C, by SHA-256, as
/// committed in `tests/fixtures/generated.sha256`: a refactoring that must not change the
/// output proves it here. After an intended change, refresh the list with
/// `KERAS2SRC_BLESS=1 cargo test --release --test keras_fixtures generated_code_is_as_blessed`
/// and say in the commit why the output changed.
#[test]
fn generated_code_is_as_blessed() {
    use sha2::{Digest, Sha256};
    let hex = |bytes: &[u8]| {
        Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let mut lines = Vec::new();
    for f in fixtures() {
        let (file, config) = &f.files[0];
        let model = Model::load_with_shapes(file, config.as_deref(), &f.input_shapes)
            .unwrap_or_else(|e| panic!("{e}"));
        use keras2src::Lang;
        for lang in [Lang::Rust, Lang::Cpp, Lang::C] {
            let generated = model
                .generate_with(&keras2src::Options::new(lang, &f.name))
                .unwrap_or_else(|e| panic!("{}: {e}", f.name));
            let ext = match lang {
                Lang::Rust => "rs",
                Lang::Cpp => "hpp",
                Lang::C => "h",
            };
            lines.push(format!(
                "{}  {}.{ext}",
                hex(generated.source.as_bytes()),
                f.name
            ));
            if let Some((name, bytes)) = &generated.weights_file {
                lines.push(format!("{}  {}/{name}", hex(bytes), f.name));
            }
        }
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/generated.sha256");
    let filtered = std::env::var_os("KERAS2SRC_FIXTURES").is_some();
    let blessed = std::fs::read_to_string(&path).unwrap_or_default();
    let blessed: std::collections::BTreeMap<&str, &str> = blessed
        .lines()
        .filter_map(|l| l.split_once("  ").map(|(h, f)| (f, h)))
        .collect();
    if std::env::var_os("KERAS2SRC_BLESS").is_some() && !filtered {
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        return;
    }
    let changed: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.split_once("  "))
        .filter(|(h, f)| blessed.get(f) != Some(h))
        .map(|(_, f)| f)
        .collect();
    assert!(
        changed.is_empty(),
        "{} generated file(s) differ from tests/fixtures/generated.sha256: {changed:?}\n\
         if intended: KERAS2SRC_BLESS=1 cargo test --release --test keras_fixtures generated_code_is_as_blessed",
        changed.len()
    );
}
