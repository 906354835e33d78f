//! Frontend tests on the fixture models written by `tests/fixtures/make_fixtures.py`: every
//! file loads; the formats of one model give the same graph; shapes and names match the
//! recorded Keras outputs; a small reference forward pass reproduces Keras's numbers; and
//! damaged or unsupported models fail with the right error.
//!

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use keras2src::ir::{Activation, Graph, Op};
use keras2src::keras::{load, load_bytes};
use keras2src::Error;
use serde_json::Value;

/// The committed fixture models.
fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models")
}

fn dir() -> Option<PathBuf> {
    Some(fixtures_dir())
}

/// One way of loading a model: (label, model file, optional config file).
struct Form {
    label: &'static str,
    model: PathBuf,
    config: Option<PathBuf>,
    /// The input shapes Keras ran the model on (models with a `None` sequence length are
    /// loaded with them, as `--input-shape` does).
    input_shapes: Vec<Vec<usize>>,
}

/// Every stored form of each fixture, grouped by fixture and Keras version
/// (`NAME` and `NAME.k2`), so that forms within a group describe the same model.
fn groups(dir: &Path) -> BTreeMap<String, Vec<Form>> {
    let mut stems: Vec<String> = std::fs::read_dir(dir)
        .expect("fixture dir")
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter_map(|n| n.split('.').next().map(str::to_string))
        .filter(|s| s != "manifest")
        .collect();
    stems.sort();
    stems.dedup();
    let mut out = BTreeMap::new();
    for stem in stems {
        for (suffix, forms) in [
            (
                "",
                vec![
                    ("keras", format!("{stem}.keras"), None),
                    ("k3.h5", format!("{stem}.k3.h5"), None),
                    (
                        "weights.h5",
                        format!("{stem}.weights.h5"),
                        Some(format!("{stem}.arch.json")),
                    ),
                    ("interchange", format!("{stem}.interchange.json"), None),
                ],
            ),
            (
                ".k2",
                vec![
                    ("k2.h5", format!("{stem}.k2.h5"), None),
                    (
                        "k2.weights.h5",
                        format!("{stem}.k2.weights.h5"),
                        Some(format!("{stem}.k2.arch.json")),
                    ),
                    (
                        "k2.interchange",
                        format!("{stem}.k2.interchange.json"),
                        None,
                    ),
                ],
            ),
        ] {
            let present: Vec<Form> = forms
                .into_iter()
                .filter(|(_, m, c)| {
                    dir.join(m).exists() && c.as_ref().is_none_or(|c| dir.join(c).exists())
                })
                .map(|(label, m, c)| Form {
                    label,
                    model: dir.join(m),
                    config: c.map(|c| dir.join(c)),
                    input_shapes: read_io(&dir.join(format!("{stem}{suffix}.io.json")))
                        .map(|io| io.inputs.into_iter().map(|(_, shape, _)| shape).collect())
                        .unwrap_or_default(),
                })
                .collect();
            if !present.is_empty() {
                out.insert(format!("{stem}{suffix}"), present);
            }
        }
    }
    out
}

fn load_form(form: &Form) -> keras2src::Result<Graph> {
    keras2src::Model::load_with_shapes(&form.model, form.config.as_deref(), &form.input_shapes)
        .map(|m| m.graph)
}

#[test]
fn every_fixture_loads_and_formats_agree() {
    let Some(dir) = dir() else { return };
    let mut failures = Vec::new();
    let mut loaded = 0;
    for (name, forms) in groups(&dir) {
        let mut first: Option<(&str, Graph)> = None;
        for form in &forms {
            match load_form(form) {
                Err(e) => failures.push(format!("{name} [{}]: {e}", form.label)),
                Ok(graph) => {
                    loaded += 1;
                    if let Some((label, reference)) = &first {
                        if !same_graph(reference, &graph) {
                            failures.push(format!(
                                "{name}: the graph from [{}] differs from the graph from [{label}]",
                                form.label
                            ));
                        }
                    } else {
                        first = Some((form.label, graph));
                    }
                }
            }
        }
    }
    assert!(loaded > 0, "no fixture loaded");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Graphs are the same model: same tensors, nodes (ops, weights), inputs and outputs.
/// Compared through `Debug`, so that NaN weights compare equal to themselves.
fn same_graph(a: &Graph, b: &Graph) -> bool {
    let key = |g: &Graph| {
        format!(
            "{:?} {:?} {:?} {:?}",
            g.tensors, g.nodes, g.inputs, g.outputs
        )
    };
    key(a) == key(b)
}

/// A recorded tensor: name, shape, and one flat row per sample.
type Recorded = (String, Vec<usize>, Vec<Vec<f32>>);

/// Recorded Keras inputs and outputs of a fixture.
struct Io {
    inputs: Vec<Recorded>,
    outputs: Vec<Recorded>,
}

fn read_io(path: &Path) -> Option<Io> {
    let text = std::fs::read_to_string(path).ok()?;
    let doc: Value = serde_json::from_str(&text).ok()?;
    let side = |key: &str| -> Option<Vec<Recorded>> {
        doc.get(key)?
            .as_array()?
            .iter()
            .map(|t| {
                let name = t.get("name")?.as_str()?.to_string();
                let shape = t
                    .get("shape")?
                    .as_array()?
                    .iter()
                    .map(|d| d.as_u64().map(|d| d as usize))
                    .collect::<Option<Vec<_>>>()?;
                let data = t
                    .get("data")?
                    .as_array()?
                    .iter()
                    .map(flat_numbers)
                    .collect::<Option<Vec<_>>>()?;
                Some((name, shape, data))
            })
            .collect()
    };
    Some(Io {
        inputs: side("inputs")?,
        outputs: side("outputs")?,
    })
}

fn flat_numbers(v: &Value) -> Option<Vec<f32>> {
    let mut out = Vec::new();
    fn walk(v: &Value, out: &mut Vec<f32>) -> Option<()> {
        match v {
            Value::Array(items) => items.iter().try_for_each(|i| walk(i, out)),
            Value::Number(n) => {
                out.push(n.as_f64()? as f32);
                Some(())
            }
            Value::String(s) => {
                out.push(match s.as_str() {
                    "nan" => f32::NAN,
                    "inf" => f32::INFINITY,
                    "-inf" => f32::NEG_INFINITY,
                    _ => return None,
                });
                Some(())
            }
            _ => None,
        }
    }
    walk(v, &mut out)?;
    Some(out)
}

#[test]
fn shapes_and_names_match_keras() {
    let Some(dir) = dir() else { return };
    let mut failures = Vec::new();
    for (name, forms) in groups(&dir) {
        let io_name = format!("{name}.io.json");
        let Some(io) = read_io(&dir.join(&io_name)) else {
            continue;
        };
        let Ok(graph) = load_form(&forms[0]) else {
            continue; // reported by every_fixture_loads_and_formats_agree
        };
        let inputs: Vec<(String, Vec<usize>)> = graph
            .inputs
            .iter()
            .map(|i| (i.name.clone(), graph.shape(i.tensor).to_vec()))
            .collect();
        let outputs: Vec<(String, Vec<usize>)> = graph
            .outputs
            .iter()
            .map(|o| (o.name.clone(), graph.shape(o.tensor).to_vec()))
            .collect();
        let want_in: Vec<(String, Vec<usize>)> = io
            .inputs
            .iter()
            .map(|(n, s, _)| (n.clone(), s.clone()))
            .collect();
        // A scalar per sample (`ops.max(x, axis=[1, 2])`) has shape [1] in the IR.
        let want_out: Vec<(String, Vec<usize>)> = io
            .outputs
            .iter()
            .map(|(n, s, _)| (n.clone(), if s.is_empty() { vec![1] } else { s.clone() }))
            .collect();
        if inputs != want_in {
            failures.push(format!("{name}: inputs {inputs:?}, Keras {want_in:?}"));
        }
        if outputs != want_out {
            failures.push(format!("{name}: outputs {outputs:?}, Keras {want_out:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn forward_pass_matches_keras() {
    let Some(dir) = dir() else { return };
    let mut failures = Vec::new();
    let mut checked = 0;
    for (name, forms) in groups(&dir) {
        let Some(io) = read_io(&dir.join(format!("{name}.io.json"))) else {
            continue;
        };
        for form in &forms {
            let Ok(graph) = load_form(form) else { continue };
            let samples = io.inputs.first().map_or(0, |i| i.2.len());
            for s in 0..samples {
                let inputs: Vec<Vec<f32>> = io.inputs.iter().map(|i| i.2[s].clone()).collect();
                let got = match run(&graph, &inputs) {
                    Ok(got) => got,
                    Err(e) => {
                        failures.push(format!("{name} [{}]: {e}", form.label));
                        break;
                    }
                };
                for ((out_name, _, want), got) in io.outputs.iter().zip(&got) {
                    let want = &want[s];
                    let bad = want.len() != got.len()
                        || want.iter().zip(got).any(|(w, g)| {
                            !(w == g
                                || (w.is_nan() && g.is_nan())
                                || (w - g).abs() <= 1e-5 + 1e-4 * w.abs())
                        });
                    if bad {
                        let n = want.len().min(6);
                        failures.push(format!(
                            "{name} [{}] sample {s} output {out_name}: got {:?}..., Keras {:?}...",
                            form.label,
                            &got[..got.len().min(n)],
                            &want[..n]
                        ));
                    }
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 0, "no fixture was run");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The model's outputs through the reference interpreter.
fn run(graph: &Graph, inputs: &[Vec<f32>]) -> Result<Vec<Vec<f32>>, String> {
    keras2src::interp::run(graph, inputs).map(|values| keras2src::interp::outputs(graph, &values))
}

// ---------------------------------------------------------------------------------------
// Errors.

fn fixture(name: &str) -> Option<PathBuf> {
    let path = fixtures_dir().join(name);
    assert!(path.exists(), "missing fixture {}", path.display());
    Some(path)
}

fn format_message(result: keras2src::Result<Graph>) -> String {
    match result {
        Err(Error::Format { message, .. }) => message,
        Err(other) => panic!("expected a format error, got {other}"),
        Ok(_) => panic!("expected a format error, got a graph"),
    }
}

fn layer_problems(result: keras2src::Result<Graph>) -> Vec<keras2src::error::LayerProblem> {
    match result {
        Err(Error::Layers { problems, .. }) => problems,
        Err(other) => panic!("expected layer problems, got {other}"),
        Ok(_) => panic!("expected layer problems, got a graph"),
    }
}

#[test]
fn missing_file_is_an_io_error() {
    let err = load(Path::new("/nonexistent/model.keras"), None).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/model.keras"));
}

#[test]
fn truncated_files_are_format_errors() {
    for name in ["seed.keras", "seed.k3.h5", "seed.interchange.json"] {
        let Some(path) = fixture(name) else { continue };
        let bytes = std::fs::read(&path).unwrap();
        // The last meaningful byte (JSON may end with a newline).
        let end = bytes
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .unwrap();
        for cut in [3, 100, bytes.len() / 2, end] {
            let result = load_bytes(&path, &bytes[..cut], None);
            assert!(
                matches!(result, Err(Error::Format { .. })),
                "{name} cut at {cut}: {:?}",
                result.map(|_| ())
            );
        }
    }
    assert!(format_message(load_bytes(Path::new("x"), b"", None)).contains("empty"));
    assert!(format_message(load_bytes(Path::new("x"), b"hello", None)).contains("not a Keras"));
}

fn zip_with(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data) in entries {
        zip.start_file(
            *name,
            zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored),
        )
        .unwrap();
        zip.write_all(data).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// Unpacks a `.keras` archive into (name, bytes) entries.
fn unzip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    (0..zip.len())
        .map(|i| {
            let mut f = zip.by_index(i).unwrap();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut data).unwrap();
            (f.name().unwrap().to_string(), data)
        })
        .collect()
}

#[test]
fn zip_that_is_not_a_keras_archive() {
    let bytes = zip_with(&[("hello.txt", b"hi")]);
    let message = format_message(load_bytes(Path::new("x.keras"), &bytes, None));
    assert!(message.contains("not a Keras archive"), "{message}");
}

#[test]
fn npz_weights_are_rejected() {
    let bytes = zip_with(&[("config.json", b"{}"), ("model.weights.npz", b"")]);
    let message = format_message(load_bytes(Path::new("x.keras"), &bytes, None));
    assert!(message.contains("npz"), "{message}");
}

#[test]
fn weights_file_without_config() {
    let Some(path) = fixture("seed.weights.h5") else {
        return;
    };
    let message = format_message(load(&path, None));
    assert!(message.contains("--config"), "{message}");
    let Some(arch) = fixture("seed.arch.json") else {
        return;
    };
    let message = format_message(load(&arch, None));
    assert!(message.contains("--config"), "{message}");
}

/// The seed model's interchange JSON, to edit.
fn seed_interchange() -> Option<(PathBuf, Value)> {
    let path = fixture("seed.interchange.json")?;
    let doc = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    Some((path, doc))
}

/// The Dense layer entries of an architecture (`{"class_name", "config": {"layers"}}`).
fn dense_layers(model: &mut Value) -> Vec<&mut Value> {
    model["config"]["layers"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .filter(|l| l["class_name"] == "Dense")
        .collect()
}

fn load_doc(path: &Path, doc: &Value) -> keras2src::Result<Graph> {
    load_bytes(path, serde_json::to_string(doc).unwrap().as_bytes(), None)
}

#[test]
fn interchange_seed_loads() {
    let Some((path, doc)) = seed_interchange() else {
        return;
    };
    load_doc(&path, &doc).unwrap();
}

/// The seed Sequential model wrapped, as a nested model, in a Functional model, in the
/// Keras 2 (`keras3: false`) or Keras 3 config form.
fn nested_seed(keras3: bool) -> Option<(PathBuf, Value)> {
    let (path, seed) = seed_interchange()?;
    let input_config = seed["model"]["config"]["layers"][0]["config"].clone();
    let call = if keras3 {
        serde_json::json!([{"args": [{"class_name": "__keras_tensor__",
            "config": {"shape": [null, 33], "dtype": "float32", "keras_history": ["x", 0, 0]}}],
            "kwargs": {}}])
    } else {
        serde_json::json!([[["x", 0, 0, {}]]])
    };
    // Keras 2 counts a nested model's calls from 1; Keras 3 does for a Functional only.
    let node = if keras3 { 0 } else { 1 };
    let mut inner = seed["model"].clone();
    inner["name"] = "inner".into();
    inner["inbound_nodes"] = call;
    let mut input =
        serde_json::json!({"class_name": "InputLayer", "name": "x", "inbound_nodes": []});
    input["config"] = input_config;
    input["config"]["name"] = "x".into();
    let model = serde_json::json!({"class_name": "Functional", "config": {
        "name": "outer", "layers": [input, inner],
        "input_layers": [["x", 0, 0]], "output_layers": [["inner", node, 0]]}});
    // `get_weights()` of a nested model: its layers' weights in turn.
    let mut weights = Vec::new();
    for layer in seed["model"]["config"]["layers"].as_array().unwrap() {
        let name = layer["config"]["name"].as_str().unwrap();
        if let Some(list) = seed["weights"].get(name).and_then(Value::as_array) {
            weights.extend(list.iter().cloned());
        }
    }
    let doc = serde_json::json!({"format": "keras2src", "version": 1, "model": model,
        "weights": {"inner": weights}});
    Some((path, doc))
}

#[test]
fn nested_models_are_inlined() {
    let Some(dir) = dir() else { return };
    let Some(io) = read_io(&dir.join("seed.io.json")) else {
        return;
    };
    for keras3 in [false, true] {
        let Some((path, doc)) = nested_seed(keras3) else {
            return;
        };
        let graph = load_doc(&path, &doc).unwrap();
        assert_eq!(graph.outputs[0].name, "inner");
        assert!(graph.nodes.iter().all(|n| n.name.starts_with("inner/")));
        for (s, sample) in io.inputs[0].2.iter().enumerate() {
            let got = run(&graph, std::slice::from_ref(sample)).unwrap();
            let want = &io.outputs[0].2[s];
            for (g, w) in got[0].iter().zip(want) {
                assert!(
                    (g - w).abs() <= 1e-5 + 1e-4 * w.abs(),
                    "{got:?} vs {want:?}"
                );
            }
        }
    }
}

/// A Keras 3 reference to call `node` of `layer`.
fn tensor(layer: &str, node: usize) -> Value {
    serde_json::json!({"class_name": "__keras_tensor__",
        "config": {"shape": [null, 3], "dtype": "float32", "keras_history": [layer, node, 0]}})
}

#[test]
fn shared_layers_become_one_node_per_call() {
    let input = serde_json::json!({"class_name": "InputLayer", "name": "x", "inbound_nodes": [],
        "config": {"name": "x", "batch_shape": [null, 3], "dtype": "int32"}});
    let dense = serde_json::json!({"class_name": "Dense", "name": "d", "module": "keras.layers",
        "config": {"name": "d", "units": 3, "activation": "hard_sigmoid"},
        "inbound_nodes": [{"args": [tensor("x", 0)], "kwargs": {}},
                          {"args": [tensor("d", 0)], "kwargs": {"training": false}}]});
    let model = serde_json::json!({"class_name": "Functional", "config": {"name": "m",
        "layers": [input, dense], "input_layers": ["x", 0, 0], "output_layers": ["d", 1, 0]}});
    let kernel: Vec<f32> = (0..9).map(|i| i as f32).collect();
    let mut doc = serde_json::json!({"format": "keras2src", "version": 1, "keras_version": "2.15.0",
        "model": model,
        "weights": {"d": [{"shape": [3, 3], "data": kernel}, {"shape": [3], "data": [1, "nan", "-inf"]}]}});
    let graph = load_doc(Path::new("shared.json"), &doc).unwrap();
    assert_eq!(graph.inputs[0].dtype, keras2src::ir::InputDtype::I32);
    assert_eq!(graph.nodes.len(), 2);
    assert_eq!(
        format!("{:?}", graph.nodes[0].op),
        format!("{:?}", graph.nodes[1].op)
    );
    assert_eq!(graph.nodes[1].inputs, vec![graph.nodes[0].output]);
    assert_eq!(graph.outputs[0].tensor, graph.nodes[1].output);
    assert_eq!(
        (graph.nodes[0].keras_params, graph.nodes[1].keras_params),
        (12, 0)
    );
    let Op::Dense {
        activation, bias, ..
    } = &graph.nodes[0].op
    else {
        panic!()
    };
    // keras_version 2: hard_sigmoid is clip(0.2x + 0.5).
    assert_eq!(*activation, Activation::HardSigmoid { slope: 0.2 });
    assert!(bias.as_ref().unwrap().data[1].is_nan());
    // training=True makes Dropout-like layers random: refused, naming the layer.
    doc["model"]["config"]["layers"][1]["inbound_nodes"][1]["kwargs"]["training"] = true.into();
    let problems = layer_problems(load_doc(Path::new("shared.json"), &doc));
    assert!(problems[0].message.contains("training"), "{problems:?}");
}

#[test]
fn wrong_weight_shape() {
    let Some((path, mut doc)) = seed_interchange() else {
        return;
    };
    let name = dense_layers(&mut doc["model"])[0]["config"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let kernel = &mut doc["weights"][&name][0];
    let shape: Vec<u64> = kernel["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap())
        .collect();
    let wrong = [shape[0] + 1, shape[1]];
    kernel["shape"] = serde_json::json!(wrong);
    kernel["data"] = serde_json::json!(vec![0.0; (wrong[0] * wrong[1]) as usize]);
    let problems = layer_problems(load_doc(&path, &doc));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].layer, name);
    assert!(problems[0].message.contains("kernel"), "{problems:?}");
}

#[test]
fn data_length_must_match_shape() {
    let Some((path, mut doc)) = seed_interchange() else {
        return;
    };
    let name = dense_layers(&mut doc["model"])[0]["config"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    doc["weights"][&name][0]["data"] = serde_json::json!([1.0, 2.0]);
    let message = format_message(load_doc(&path, &doc));
    assert!(
        message.contains(&name) && message.contains("needs"),
        "{message}"
    );
}

#[test]
fn unknown_layer_activation_and_custom_layer() {
    let Some((path, mut doc)) = seed_interchange() else {
        return;
    };
    {
        let mut dense = dense_layers(&mut doc["model"]);
        dense[0]["class_name"] = "FancyLayer".into();
        dense[1]["config"]["activation"] = "zap".into();
    }
    let problems = layer_problems(load_doc(&path, &doc));
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert_eq!(problems[0].class, "FancyLayer");
    assert!(problems[0].message.contains("FancyLayer"), "{problems:?}");
    assert!(problems[1].message.contains("zap"), "{problems:?}");

    let Some((path, mut doc)) = seed_interchange() else {
        return;
    };
    {
        let mut dense = dense_layers(&mut doc["model"]);
        dense[0]["registered_name"] = "my_pkg>MyDense".into();
        dense[0]["module"] = "my_pkg.layers".into();
        dense[0]["class_name"] = "MyDense".into();
    }
    let problems = layer_problems(load_doc(&path, &doc));
    assert!(
        problems[0].message.contains("custom") && problems[0].message.contains("my_pkg>MyDense")
    );
}

#[test]
fn all_problems_of_a_keras_archive_at_once() {
    let Some(path) = fixture("seed.keras") else {
        return;
    };
    let entries = unzip(&std::fs::read(&path).unwrap());
    let mut config: Value =
        serde_json::from_slice(&entries.iter().find(|(n, _)| n == "config.json").unwrap().1)
            .unwrap();
    {
        let mut dense = dense_layers(&mut config);
        dense[0]["config"]["activation"] = "zap".into();
        dense[1]["config"]["frobnicate"] = 3.into();
    }
    let config = serde_json::to_vec(&config).unwrap();
    let rebuilt: Vec<(&str, &[u8])> = entries
        .iter()
        .map(|(n, d)| {
            if n == "config.json" {
                (n.as_str(), &config[..])
            } else {
                (n.as_str(), &d[..])
            }
        })
        .collect();
    let bytes = zip_with(&rebuilt);
    let problems = layer_problems(load_bytes(&path, &bytes, None));
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].message.contains("zap"));
    assert!(problems[1].message.contains("frobnicate"));
    let text = Error::Layers {
        path: path.clone(),
        problems,
    }
    .to_string();
    assert!(text.contains("2 problem(s)"), "{text}");
}

#[test]
fn missing_weights_in_archive() {
    let Some(path) = fixture("seed.keras") else {
        return;
    };
    let Some(other) = fixture("act_relu.keras") else {
        return;
    };
    // The seed's config with another model's weights file: groups or shapes differ.
    let seed = unzip(&std::fs::read(&path).unwrap());
    let other = unzip(&std::fs::read(&other).unwrap());
    let weights = &other
        .iter()
        .find(|(n, _)| n == "model.weights.h5")
        .unwrap()
        .1;
    let rebuilt: Vec<(&str, &[u8])> = seed
        .iter()
        .map(|(n, d)| {
            if n == "model.weights.h5" {
                (n.as_str(), &weights[..])
            } else {
                (n.as_str(), &d[..])
            }
        })
        .collect();
    let bytes = zip_with(&rebuilt);
    match load_bytes(&path, &bytes, None) {
        Err(Error::Format { .. }) | Err(Error::Layers { .. }) => {}
        other => panic!("expected an error, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn config_with_a_full_model_is_a_usage_error() {
    let (Some(model), Some(arch)) = (fixture("seed.keras"), fixture("seed.arch.json")) else {
        return;
    };
    assert!(matches!(load(&model, Some(&arch)), Err(Error::Usage(_))));
}

#[test]
fn dynamic_input_shape_is_rejected() {
    let Some((path, mut doc)) = seed_interchange() else {
        return;
    };
    doc["model"]["config"]["layers"][0]["config"]["batch_shape"][1] = Value::Null;
    let problems = layer_problems(load_doc(&path, &doc));
    assert!(problems[0].message.contains("dynamic"), "{problems:?}");
}

#[test]
fn no_panic_on_corrupted_bytes() {
    for name in [
        "seed.keras",
        "seed.k3.h5",
        "seed.weights.h5",
        "k2_seed.k2.h5",
    ] {
        let Some(path) = fixture(name) else { continue };
        let config = fixture("seed.arch.json").map(|c| std::fs::read(c).unwrap());
        let bytes = std::fs::read(&path).unwrap();
        // Flip bytes at a spread of positions; every result must be a value, not a panic.
        let step = (bytes.len() / 97).max(1);
        for pos in (0..bytes.len()).step_by(step) {
            let mut damaged = bytes.clone();
            damaged[pos] ^= 0xa5;
            let config = if name.ends_with("weights.h5") {
                config.as_deref().map(|c| (Path::new("arch.json"), c))
            } else {
                None
            };
            let _ = load_bytes(&path, &damaged, config);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Convolutional layers and general graphs.

/// A Keras 3 reference to output 0 of call `node` of `layer` (any shape).
fn keras3_ref(layer: &str, node: usize) -> Value {
    serde_json::json!({"class_name": "__keras_tensor__",
        "config": {"shape": null, "dtype": "float32", "keras_history": [layer, node, 0]}})
}

fn input_layer(name: &str, shape: &[usize]) -> Value {
    let mut batch_shape = vec![Value::Null];
    batch_shape.extend(shape.iter().map(|&d| Value::from(d)));
    serde_json::json!({"class_name": "InputLayer", "name": name, "inbound_nodes": [],
        "config": {"name": name, "batch_shape": batch_shape, "dtype": "float32"}})
}

/// A weightless Keras 3 layer whose calls take the given lists of (layer, node) inputs.
fn keras3_layer(class: &str, name: &str, config: Value, calls: &[&[(&str, usize)]]) -> Value {
    let nodes: Vec<Value> = calls
        .iter()
        .map(|refs| {
            let args: Vec<Value> = refs.iter().map(|(l, n)| keras3_ref(l, *n)).collect();
            let args = if args.len() == 1 {
                args
            } else {
                vec![Value::Array(args)]
            };
            serde_json::json!({"args": args, "kwargs": {}})
        })
        .collect();
    let mut config = config;
    config["name"] = name.into();
    serde_json::json!({"class_name": class, "name": name, "module": "keras.layers",
        "config": config, "inbound_nodes": nodes})
}

fn functional(name: &str, layers: Vec<Value>, inputs: &[&str], outputs: &[(&str, usize)]) -> Value {
    let inputs: Vec<Value> = inputs
        .iter()
        .map(|i| serde_json::json!([i, 0, 0]))
        .collect();
    let outputs: Vec<Value> = outputs
        .iter()
        .map(|(l, n)| serde_json::json!([l, n, 0]))
        .collect();
    serde_json::json!({"class_name": "Functional", "name": name, "config": {"name": name,
        "layers": layers, "input_layers": inputs, "output_layers": outputs}})
}

fn interchange(model: Value, weights: Value) -> Value {
    serde_json::json!({"format": "keras2src", "version": 1, "keras_version": "3.15.1",
        "model": model, "weights": weights})
}

/// Rewrites a layer's Keras 3 inbound nodes in the Keras 2 form, `[[layer, node, tensor,
/// kwargs], ...]` per call, where calls of the `nested` models count from 1.
fn to_keras2_calls(layer: &mut Value, nested: &[&str]) {
    fn tensors(v: &Value, out: &mut Vec<Value>, nested: &[&str]) {
        match v {
            Value::Array(items) => items.iter().for_each(|i| tensors(i, out, nested)),
            Value::Object(o) if o.get("class_name") == Some(&"__keras_tensor__".into()) => {
                let h = &o["config"]["keras_history"];
                let name = h[0].as_str().unwrap();
                let node = h[1].as_u64().unwrap() + u64::from(nested.contains(&name));
                out.push(serde_json::json!([name, node, h[2], {}]));
            }
            _ => {}
        }
    }
    let calls: Vec<Value> = layer["inbound_nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|node| {
            let mut refs = Vec::new();
            tensors(&node["args"], &mut refs, nested);
            Value::Array(refs)
        })
        .collect();
    layer["inbound_nodes"] = Value::Array(calls);
}

/// Runs a one-sample model and returns its outputs.
fn run_doc(doc: &Value, inputs: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let graph = load_doc(Path::new("model.json"), doc).unwrap();
    run(&graph, inputs).unwrap()
}

#[test]
fn multi_input_layers_take_their_inputs_in_order() {
    let layers = vec![
        input_layer("x", &[2]),
        input_layer("y", &[2]),
        keras3_layer(
            "Concatenate",
            "cat",
            serde_json::json!({"axis": -1}),
            &[&[("y", 0), ("x", 0)]],
        ),
        keras3_layer(
            "Subtract",
            "sub",
            serde_json::json!({}),
            &[&[("x", 0), ("y", 0)]],
        ),
        keras3_layer(
            "Dot",
            "dot",
            serde_json::json!({"axes": 1}),
            &[&[("x", 0), ("sub", 0)]],
        ),
    ];
    let model = functional(
        "m",
        layers,
        &["x", "y"],
        &[("cat", 0), ("sub", 0), ("dot", 0)],
    );
    let doc = interchange(model.clone(), serde_json::json!({}));
    let (x, y) = (vec![1.0, 2.0], vec![5.0, 7.0]);
    let got = run_doc(&doc, &[x.clone(), y.clone()]);
    assert_eq!(got[0], vec![5.0, 7.0, 1.0, 2.0]);
    assert_eq!(got[1], vec![-4.0, -5.0]);
    assert_eq!(got[2], vec![1.0 * -4.0 + 2.0 * -5.0]);

    // The same model in the Keras 2 form: one inner list of [layer, node, tensor, kwargs].
    let mut k2 = model;
    for layer in k2["config"]["layers"].as_array_mut().unwrap() {
        to_keras2_calls(layer, &[]);
    }
    let mut doc = interchange(k2, serde_json::json!({}));
    doc["keras_version"] = "2.15.0".into();
    assert_eq!(run_doc(&doc, &[x, y]), got);
}

#[test]
fn wrong_input_counts_are_layer_problems() {
    let layers = vec![
        input_layer("x", &[2]),
        input_layer("y", &[2]),
        keras3_layer(
            "Subtract",
            "sub",
            serde_json::json!({}),
            &[&[("x", 0), ("y", 0), ("x", 0)]],
        ),
        keras3_layer(
            "Flatten",
            "flat",
            serde_json::json!({}),
            &[&[("x", 0), ("y", 0)]],
        ),
        keras3_layer(
            "Concatenate",
            "cat",
            serde_json::json!({"axis": 0}),
            &[&[("x", 0), ("y", 0)]],
        ),
    ];
    let model = functional(
        "m",
        layers,
        &["x", "y"],
        &[("sub", 0), ("flat", 0), ("cat", 0)],
    );
    let problems = layer_problems(load_doc(
        Path::new("m.json"),
        &interchange(model, serde_json::json!({})),
    ));
    let by_layer: BTreeMap<&str, &str> = problems
        .iter()
        .map(|p| (p.layer.as_str(), p.message.as_str()))
        .collect();
    assert!(by_layer["sub"].contains("3 tensors"), "{problems:?}");
    assert!(by_layer["flat"].contains("2 tensors"), "{problems:?}");
    assert!(by_layer["cat"].contains("batch"), "{problems:?}");
    assert_eq!(problems[0].class, "Subtract");
}

/// A Functional model with two inputs `p`, `q` computing `(p - q) * q`, called twice (on
/// `[x, y]` and `[y, x]`) inside an outer model that concatenates both results, in the
/// Keras 3 (`keras3`) or Keras 2 config form.
fn nested_two_input_model(keras3: bool) -> Value {
    let inner_layers = vec![
        input_layer("p", &[2]),
        input_layer("q", &[2]),
        keras3_layer(
            "Subtract",
            "diff",
            serde_json::json!({}),
            &[&[("p", 0), ("q", 0)]],
        ),
        keras3_layer(
            "Multiply",
            "prod",
            serde_json::json!({}),
            &[&[("diff", 0), ("q", 0)]],
        ),
    ];
    let mut inner = functional("inner", inner_layers, &["p", "q"], &[("prod", 0)]);
    // Keras 3 writes `mask: [null, null]` for a model called on a list.
    let call = |a: &str, b: &str| {
        serde_json::json!({"args": [[keras3_ref(a, 0), keras3_ref(b, 0)]],
            "kwargs": {"mask": [null, null]}})
    };
    inner["inbound_nodes"] = serde_json::json!([call("x", "y"), call("y", "x")]);
    let cat = keras3_layer(
        "Concatenate",
        "cat",
        serde_json::json!({"axis": -1}),
        &[&[("inner", 0), ("inner", 1)]],
    );
    let mut model = functional(
        "outer",
        vec![input_layer("x", &[2]), input_layer("y", &[2]), inner, cat],
        &["x", "y"],
        &[("cat", 0)],
    );
    if !keras3 {
        for layer in model["config"]["layers"].as_array_mut().unwrap() {
            to_keras2_calls(layer, &["inner"]);
            let inner_layers = layer["config"]
                .get_mut("layers")
                .and_then(Value::as_array_mut);
            for inner_layer in inner_layers.into_iter().flatten() {
                to_keras2_calls(inner_layer, &[]);
            }
        }
    }
    let mut doc = interchange(model, serde_json::json!({}));
    if !keras3 {
        doc["keras_version"] = "2.15.0".into();
    }
    doc
}

#[test]
fn nested_models_and_shared_calls_with_several_inputs() {
    for keras3 in [true, false] {
        let doc = nested_two_input_model(keras3);
        let graph = load_doc(Path::new("nested.json"), &doc).unwrap();
        let names: Vec<&str> = graph.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "inner/diff",
                "inner/diff",
                "inner/prod",
                "inner/prod",
                "cat"
            ],
            "keras3: {keras3}"
        );
        let (x, y) = (vec![1.0, 2.0], vec![3.0, 5.0]);
        let got = run(&graph, &[x, y]).unwrap();
        // inner(x, y) = (x - y) * y; inner(y, x) = (y - x) * x.
        assert_eq!(got[0], vec![-6.0, -15.0, 2.0, 6.0], "keras3: {keras3}");
    }
}

#[test]
fn separable_conv_is_two_nodes_with_the_parameters_counted_once() {
    let Some(path) = fixture("separable_conv2d.keras") else {
        return;
    };
    let graph = load(&path, None).unwrap();
    let first: Vec<(&str, &str, usize)> = graph.nodes[..2]
        .iter()
        .map(|n| (n.name.as_str(), n.class.as_str(), n.keras_params))
        .collect();
    // Depthwise 3x3x3 (27) + pointwise 3x6 (18) + bias 6.
    assert_eq!(
        first,
        [
            ("separable_conv2d/depthwise", "SeparableConv2D", 0),
            ("separable_conv2d", "SeparableConv2D", 51)
        ]
    );
    assert_eq!(graph.nodes[1].inputs, vec![graph.nodes[0].output]);
    // Keras's model.count_params().
    assert_eq!(graph.keras_params(), 376);
}

#[test]
fn channels_first_layers_keep_keras_layout_between_layers() {
    let Some(path) = fixture("cnn_channels_first.keras") else {
        return;
    };
    let graph = load(&path, None).unwrap();
    let nodes: Vec<(&str, Vec<usize>)> = graph
        .nodes
        .iter()
        .take(3)
        .map(|n| (n.name.as_str(), graph.shape(n.output).to_vec()))
        .collect();
    assert_eq!(
        nodes,
        [
            ("conv2d/to_channels_last", vec![12, 10, 3]),
            ("conv2d", vec![10, 8, 6]),
            ("conv2d/to_channels_first", vec![6, 10, 8]),
        ]
    );
    assert!(graph
        .nodes
        .iter()
        .any(|n| n.name == "flatten/to_channels_last" && matches!(n.op, Op::Transpose { .. })));
}

#[test]
fn parameter_counts_match_keras() {
    // model.count_params() of the fixtures, from Keras.
    for (name, params) in [
        ("mobilenet_v2.keras", 423018),
        ("resnet_small.keras", 10146),
        ("shared_conv.keras", 122),
        ("nested_model.keras", 266),
        ("two_io_cnn.keras", 1287),
        ("depthwise_conv2d.keras", 174),
        ("conv2d_transpose_outpad.keras", 320),
        ("separable_conv1d.keras", 262),
    ] {
        let Some(path) = fixture(name) else { continue };
        assert_eq!(load(&path, None).unwrap().keras_params(), params, "{name}");
    }
}

#[test]
fn batchnorm_after_conv_is_per_channel() {
    let Some(path) = fixture("conv_bn_relu.keras") else {
        return;
    };
    let graph = load(&path, None).unwrap();
    let bn = graph
        .nodes
        .iter()
        .find(|n| n.class == "BatchNormalization")
        .unwrap();
    assert!(matches!(&bn.op, Op::Affine { inner: 1, scale, .. } if scale.len() == 6));
    // axis=1 on a (4, 6, 5) input: 4 channels, each over 6 * 5 values.
    let Some(path) = fixture("bn_4d_axis1.keras") else {
        return;
    };
    let graph = load(&path, None).unwrap();
    assert!(matches!(&graph.nodes[0].op, Op::Affine { inner: 30, scale, .. } if scale.len() == 4));
}

#[test]
fn merges_expand_lower_rank_inputs_like_keras() {
    let Some(path) = fixture("merge_broadcast.keras") else {
        return;
    };
    let graph = load(&path, None).unwrap();
    let expand = graph
        .nodes
        .iter()
        .find(|n| n.name == "add_4x6_6/expand_input_1")
        .unwrap();
    assert_eq!(expand.op, Op::Reshape { target: vec![1, 6] });
    assert_eq!(expand.class, "Add");
}

#[test]
fn unsupported_spatial_options_are_all_reported() {
    let layer =
        |class: &str, name: &str, config: Value| keras3_layer(class, name, config, &[&[("x", 0)]]);
    let layers = vec![
        input_layer("x", &[8, 8, 3]),
        layer(
            "Conv2D",
            "reflect",
            serde_json::json!({"filters": 2, "kernel_size": 3, "padding": "reflect"}),
        ),
        layer(
            "UpSampling2D",
            "bicubic",
            serde_json::json!({"size": 2, "interpolation": "bicubic"}),
        ),
        layer(
            "MaxPooling2D",
            "pool",
            serde_json::json!({"pool_size": 2, "data_format": "channels_middle"}),
        ),
        layer(
            "Conv2D",
            "conv1d_input",
            serde_json::json!({"filters": 2, "kernel_size": 3}),
        ),
    ];
    let mut model = functional(
        "m",
        layers,
        &["x"],
        &[
            ("reflect", 0),
            ("bicubic", 0),
            ("pool", 0),
            ("conv1d_input", 0),
        ],
    );
    // The last Conv2D reads a 2-D input: a build problem, found after parsing.
    model["config"]["layers"][0] = input_layer("x", &[8, 3]);
    let kernel = serde_json::json!({"shape": [3, 3, 3, 2], "data": vec![0.0; 54]});
    let bias = serde_json::json!({"shape": [2], "data": [0.0, 0.0]});
    let doc = interchange(
        model,
        serde_json::json!({"reflect": [kernel, bias], "conv1d_input": [kernel, bias]}),
    );
    let problems = layer_problems(load_doc(Path::new("m.json"), &doc));
    let messages: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(problems.len(), 4, "{messages:#?}");
    assert!(messages[0].contains("'reflect' (Conv2D)") && messages[0].contains("padding"));
    assert!(messages[1].contains("interpolation") && messages[1].contains("bicubic"));
    assert!(messages[2].contains("data_format"));
    assert!(messages[3].contains("spatial axes"), "{messages:#?}");
}

#[test]
fn an_integer_input_cannot_be_a_model_output() {
    let input = serde_json::json!({"class_name": "InputLayer", "name": "x", "inbound_nodes": [],
        "config": {"name": "x", "batch_shape": [null, 3], "dtype": "int32"}});
    let model = |outputs: Value| {
        serde_json::json!({"format": "keras2src", "version": 1, "keras_version": "3.15.1",
            "model": {"class_name": "Functional", "config": {"name": "m", "layers": [input.clone()],
                "input_layers": [["x", 0, 0]], "output_layers": outputs}},
            "weights": {}})
    };
    let problems = layer_problems(load_doc(
        Path::new("int.json"),
        &model(serde_json::json!([["x", 0, 0]])),
    ));
    assert_eq!(problems[0].layer, "x");
    assert!(
        problems[0]
            .message
            .contains("integer model input and a model output"),
        "{problems:?}"
    );
}

/// A Keras 3 mask (`mask=` tensor) reaching a layer other than a recurrent one is
/// rejected by name, never dropped.
#[test]
fn masks_reaching_other_layers_are_rejected() {
    let (Some(weights), Some(arch)) = (
        fixture("mask_masking_gru.weights.h5"),
        fixture("mask_masking_gru.arch.json"),
    ) else {
        return;
    };
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&arch).unwrap()).unwrap();
    let layers = doc["config"]["layers"].as_array_mut().unwrap();
    let act = layers.iter_mut().find(|l| l["name"] == "act").unwrap();
    act["inbound_nodes"][0]["kwargs"]["mask"] = serde_json::json!({
        "class_name": "__keras_tensor__",
        "config": {"shape": [null, 8], "dtype": "bool", "keras_history": ["any", 0, 0]}
    });
    let config = serde_json::to_vec(&doc).unwrap();
    let bytes = std::fs::read(&weights).unwrap();
    let problems = layer_problems(load_bytes(&weights, &bytes, Some((&arch, &config))));
    assert_eq!(problems[0].layer, "act", "{problems:?}");
    assert!(
        problems[0].message.contains("mask") && problems[0].message.contains("'any'"),
        "{problems:?}"
    );
}

/// Keras 3 drops a mask at GlobalMaxPooling1D, Conv1D and Flatten (they do not support
/// masking); tf_keras raises an error there, so a Keras 2 file with the same layers is
/// rejected by name rather than computed without the mask.
#[test]
fn masks_dropped_only_in_keras3() {
    let Some(path) = fixture("mask_pool.interchange.json") else {
        return;
    };
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(load_doc(&path, &doc).is_ok());
    doc["keras_version"] = Value::from("2.21.0");
    let problems = layer_problems(load_doc(&path, &doc));
    let rejected: Vec<&str> = problems.iter().map(|p| p.layer.as_str()).collect();
    assert_eq!(rejected, ["conv", "flat", "max"], "{problems:?}");
    assert!(
        problems[0].message.contains("Keras mask") && problems[0].message.contains("'embed'"),
        "{problems:?}"
    );
}

/// Keras 3's MultiHeadAttention clears the masks of its input tensors when it runs, so a
/// second attention reading the same masked tensor (not computed from the first) sees the
/// mask or not depending on Keras's execution order: rejected by name. A Keras 3
/// Attention layer reached by a mask is rejected too (its masks are not implemented).
#[test]
fn order_dependent_keras3_attention_masks_are_rejected() {
    let Some(path) = fixture("mask_mha.interchange.json") else {
        return;
    };
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut shared = doc.clone();
    let layers = shared["model"]["config"]["layers"].as_array_mut().unwrap();
    let scores = layers
        .iter_mut()
        .find(|l| l["name"] == "mha_scores")
        .unwrap();
    for arg in scores["inbound_nodes"][0]["args"].as_array_mut().unwrap() {
        arg["config"]["keras_history"][0] = Value::from("embed");
    }
    let problems = layer_problems(load_doc(&path, &shared));
    assert!(
        problems
            .iter()
            .any(|p| p.message.contains("depends on the order")),
        "{problems:?}"
    );
    // The same model as tf_keras would write it loads: tf_keras keeps the masks.
    shared["keras_version"] = Value::from("2.21.0");
    assert!(load_doc(&path, &shared).is_ok());

    let mut attention = doc;
    let layers = attention["model"]["config"]["layers"]
        .as_array_mut()
        .unwrap();
    let cross = layers.iter_mut().find(|l| l["name"] == "cross").unwrap();
    cross["class_name"] = Value::from("Attention");
    cross["config"] = serde_json::json!({"name": "cross", "use_scale": false,
        "score_mode": "dot", "dropout": 0.0});
    let args = cross["inbound_nodes"][0]["args"].take();
    cross["inbound_nodes"][0]["args"] = serde_json::json!([[args[1].clone(), args[1].clone()]]);
    attention["weights"]
        .as_object_mut()
        .unwrap()
        .remove("cross");
    let problems = layer_problems(load_doc(&path, &attention));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].layer, "cross");
    assert!(
        problems[0].message.contains("Keras mask") && problems[0].message.contains("'Attention'"),
        "{problems:?}"
    );
}

/// `ops_hard_swish` (MobileNetV3's hard-sigmoid: `ReLU(6)(x + 3.0) * (1/6)`) with its
/// architecture JSON edited by `edit`, loaded with the fixture's weights.
fn load_edited_hard_swish(edit: impl Fn(&mut Value)) -> keras2src::Result<Graph> {
    let arch = fixture("ops_hard_swish.arch.json").unwrap();
    let weights = fixture("ops_hard_swish.weights.h5").unwrap();
    let mut config: Value = serde_json::from_str(&std::fs::read_to_string(arch).unwrap()).unwrap();
    edit(&mut config);
    let dir = tempfile::tempdir().unwrap();
    let edited = dir.path().join("arch.json");
    std::fs::write(&edited, config.to_string()).unwrap();
    load(&weights, Some(&edited))
}

fn layer_named<'a>(config: &'a mut Value, name: &str) -> &'a mut Value {
    config["config"]["layers"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|l| l["name"] == name)
        .unwrap()
}

#[test]
fn an_operation_is_never_read_as_the_layer_of_its_class_name() {
    // Keras 3 saves `x + 3.0` as an operation `Add` (module keras.src.ops.numpy) whose
    // call holds the constant: it is that addition, not the Add merge layer.
    let graph = load_edited_hard_swish(|_| {}).unwrap();
    let add = graph.nodes.iter().find(|n| n.name == "add").unwrap();
    assert!(
        matches!(&add.op, Op::Activation(Activation::Scalar { value, .. }) if *value == 3.0),
        "{:?}",
        add.op
    );
    // Made to look like the merge layer, the constant among its positional arguments is
    // refused instead of dropped.
    let problems = layer_problems(load_edited_hard_swish(|c| {
        let add = layer_named(c, "add");
        add["module"] = Value::from("keras.layers");
        add["config"]["trainable"] = Value::Bool(true);
    }));
    assert!(
        problems
            .iter()
            .any(|p| p.layer == "add" && p.message.contains("constant 3.0")),
        "{problems:?}"
    );
    // An operation keras2src does not know is named, with its module.
    let problems = layer_problems(load_edited_hard_swish(|c| {
        layer_named(c, "add")["class_name"] = Value::from("Logaddexp");
    }));
    assert!(
        problems
            .iter()
            .any(|p| p.class == "Logaddexp" && p.message.contains("keras.src.ops.numpy")),
        "{problems:?}"
    );
}
