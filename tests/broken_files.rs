//! Broken and hostile model files through the CLI: each gives exit code 2 and one message
//! that names the file, the layer (name and class) where one is at fault, and the problem;
//! nothing is written and no temporary file is left behind; nothing panics.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name)
}

fn read_json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap()
}

/// A copy of a fixture's `.keras` archive with its config.json edited.
fn keras_with(name: &str, edit: impl Fn(&mut Value)) -> Vec<u8> {
    let file = std::fs::File::open(fixture(name)).unwrap();
    let mut archive = zip::ZipArchive::new(file).unwrap();
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        let name = entry.name().unwrap().to_string();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        if name == "config.json" {
            let mut config: Value = serde_json::from_slice(&bytes).unwrap();
            edit(&mut config);
            bytes = config.to_string().into_bytes();
        }
        out.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        out.write_all(&bytes).unwrap();
    }
    out.finish().unwrap().into_inner()
}

/// A fixture's interchange JSON, edited.
fn interchange_with(name: &str, edit: impl Fn(&mut Value)) -> Vec<u8> {
    let mut doc = read_json(name);
    edit(&mut doc);
    doc.to_string().into_bytes()
}

/// The layer list of a `.keras` config.json or of an interchange document's model.
fn layers(doc: &mut Value) -> &mut Vec<Value> {
    let model = if doc.get("model").is_some() {
        &mut doc["model"]
    } else {
        doc
    };
    model["config"]["layers"].as_array_mut().unwrap()
}

struct Case {
    /// The file name the model is written under.
    file: &'static str,
    bytes: Vec<u8>,
    /// Every one must appear in the message.
    expect: Vec<&'static str>,
}

fn cases() -> Vec<Case> {
    let seed_h5 = std::fs::read(fixture("seed.k3.h5")).unwrap();
    let seed_keras = std::fs::read(fixture("seed.keras")).unwrap();
    vec![
        Case {
            file: "empty.keras",
            bytes: Vec::new(),
            expect: vec!["empty"],
        },
        Case {
            file: "truncated.keras",
            bytes: seed_keras[..seed_keras.len() / 2].to_vec(),
            expect: vec![],
        },
        Case {
            file: "truncated.h5",
            bytes: seed_h5[..seed_h5.len() / 2].to_vec(),
            expect: vec![],
        },
        Case {
            file: "junk.h5",
            bytes: b"\x89HDF\r\n\x1a\nthis is not really HDF5".to_vec(),
            expect: vec![],
        },
        Case {
            file: "config_not_json.keras",
            bytes: {
                let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
                let options = zip::write::SimpleFileOptions::default();
                out.start_file("config.json", options).unwrap();
                out.write_all(b"{not json").unwrap();
                out.start_file("model.weights.h5", options).unwrap();
                out.finish().unwrap().into_inner()
            },
            expect: vec!["config.json"],
        },
        Case {
            file: "version2.json",
            bytes: interchange_with("seed.interchange.json", |d| d["version"] = 2.into()),
            expect: vec!["version 2"],
        },
        Case {
            file: "activation.keras",
            bytes: keras_with("seed.keras", |c| {
                layers(c)[1]["config"]["activation"] = "zap".into();
            }),
            expect: vec!["layer 'dense' (Dense)", "unknown activation 'zap'"],
        },
        Case {
            file: "two_unsupported.json",
            bytes: interchange_with("seed.interchange.json", |d| {
                layers(d)[1]["class_name"] = "Fancy".into();
                layers(d)[3]["class_name"] = "Fancier".into();
            }),
            expect: vec![
                "2 problem(s)",
                "layer 'dense' (Fancy)",
                "layer 'dense_2' (Fancier)",
            ],
        },
        Case {
            file: "negative_units.keras",
            bytes: keras_with("seed.keras", |c| {
                layers(c)[2]["config"]["units"] = (-3).into();
            }),
            expect: vec!["layer 'dense_1' (Dense)", "'units'=-3"],
        },
        Case {
            file: "units_vs_kernel.keras",
            bytes: keras_with("seed.keras", |c| {
                layers(c)[2]["config"]["units"] = 7.into();
            }),
            expect: vec!["layer 'dense_1' (Dense)", "kernel", "[64, 7]"],
        },
        Case {
            file: "huge_units.keras",
            bytes: keras_with("seed.keras", |c| {
                layers(c)[2]["config"]["units"] = 1_000_000_000_000u64.into();
            }),
            expect: vec!["layer 'dense_1' (Dense)"],
        },
        Case {
            file: "huge_input.json",
            bytes: interchange_with("seed.interchange.json", |d| {
                layers(d)[0]["config"]["batch_shape"] = serde_json::json!([null, 1u64 << 40]);
            }),
            expect: vec!["input_layer"],
        },
        Case {
            file: "data_length.json",
            bytes: interchange_with("seed.interchange.json", |d| {
                d["weights"]["dense"][0]["shape"] = serde_json::json!([33, 63]);
            }),
            expect: vec!["layer 'dense' (Dense)", "needs 2079 values"],
        },
        Case {
            file: "not_a_number.json",
            bytes: interchange_with("seed.interchange.json", |d| {
                d["weights"]["dense_2"][1]["data"][0] = "one".into();
            }),
            expect: vec!["layer 'dense_2' (Dense)", "weight #1", "data[0] = \"one\""],
        },
        Case {
            file: "missing_weights.json",
            bytes: interchange_with("seed.interchange.json", |d| {
                d["weights"].as_object_mut().unwrap().remove("dense_1");
            }),
            expect: vec!["layer 'dense_1' (Dense)", "missing"],
        },
        Case {
            file: "dangling_input.keras",
            bytes: keras_with("two_io.keras", |c| {
                for layer in layers(c) {
                    if layer["name"] == "out_a" {
                        layer["inbound_nodes"][0]["args"][0]["config"]["keras_history"][0] =
                            "nowhere".into();
                    }
                }
            }),
            expect: vec!["layer 'out_a' (Dense)", "'nowhere'"],
        },
        Case {
            file: "hostile_name.json",
            bytes: interchange_with("seed.interchange.json", |d| {
                let name = "x\u{202e}\n*/y";
                layers(d)[2]["config"]["name"] = name.into();
                layers(d)[2]["config"]["units"] = (-1).into();
                let weights = d["weights"].as_object_mut().unwrap();
                let w = weights.remove("dense_1").unwrap();
                weights.insert(name.into(), w);
            }),
            expect: vec!["layer 'x\\u{202e}\\n*/y' (Dense)"],
        },
    ]
}

#[test]
fn broken_files_give_one_clear_error_and_write_nothing() {
    let mut failures = Vec::new();
    for case in cases() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join(case.file);
        std::fs::write(&model, &case.bytes).unwrap();
        for lang in ["rust", "cpp"] {
            let out = dir.path().join("out");
            let o = Command::new(env!("CARGO_BIN_EXE_keras2src"))
                .arg("generate")
                .arg(&model)
                .args(["--lang", lang, "-o"])
                .arg(&out)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&o.stderr);
            let mut problems = Vec::new();
            if o.status.code() != Some(2) {
                problems.push(format!("exit {:?}", o.status.code()));
            }
            if !stderr.starts_with(&format!("error: {}", model.display())) {
                problems.push("does not start by naming the file".into());
            }
            for want in &case.expect {
                if !stderr.contains(want) {
                    problems.push(format!("lacks `{want}`"));
                }
            }
            if stderr.contains("panicked") || !stderr.is_ascii() {
                problems.push("panicked or printed raw non-ASCII".into());
            }
            let left: Vec<_> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .filter(|f| f != case.file)
                .collect();
            if !left.is_empty() {
                problems.push(format!("wrote {left:?}"));
            }
            if !problems.is_empty() {
                failures.push(format!("{} ({lang}): {problems:?}\n{stderr}", case.file));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
