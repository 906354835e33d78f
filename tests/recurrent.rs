//! Recurrent layers through the whole frontend, on edited copies of the committed fixtures:
//! several outputs per call (return_state), what is rejected and how it is reported.

use std::path::{Path, PathBuf};

use keras2src::ir::{Graph, Op};
use keras2src::keras::load_bytes;
use keras2src::Error;
use serde_json::Value;

fn fixture(name: &str) -> (PathBuf, Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name);
    let doc = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    (path, doc)
}

fn load(path: &Path, doc: &Value) -> keras2src::Result<Graph> {
    load_bytes(path, serde_json::to_string(doc).unwrap().as_bytes(), None)
}

fn problems(result: keras2src::Result<Graph>) -> Vec<String> {
    match result {
        Err(Error::Layers { problems, .. }) => problems
            .iter()
            .map(|p| format!("{} ({}): {}", p.layer, p.class, p.message))
            .collect(),
        Err(other) => panic!("expected layer problems, got {other}"),
        Ok(_) => panic!("expected layer problems, got a graph"),
    }
}

fn layer<'a>(doc: &'a mut Value, name: &str) -> &'a mut Value {
    doc["model"]["config"]["layers"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|l| l["name"] == name)
        .unwrap()
}

#[test]
fn return_state_outputs_are_picked_by_tensor_index() {
    let (path, doc) = fixture("lstm_state.interchange.json");
    let graph = load(&path, &doc).unwrap();
    // Outputs: [sequence, h, c, Dense(h)]; one recurrent node computes all of them.
    let shapes: Vec<&[usize]> = graph
        .outputs
        .iter()
        .map(|o| graph.shape(o.tensor))
        .collect();
    assert_eq!(shapes, [&[8, 6][..], &[6], &[6], &[2]]);
    let recurrent = graph
        .nodes
        .iter()
        .filter(|n| matches!(n.op, Op::Recurrent(_)))
        .count();
    assert_eq!(recurrent, 1);
}

#[test]
fn a_missing_output_index_is_reported() {
    let (path, mut doc) = fixture("lstm_state.interchange.json");
    let head = layer(&mut doc, "head");
    head["inbound_nodes"][0]["args"][0]["config"]["keras_history"][2] = 3.into();
    let err = problems(load(&path, &doc));
    assert!(
        err[0].contains("head (Dense)")
            && err[0].contains("output #3 of layer 'lstm', which has 3"),
        "{err:?}"
    );
}

#[test]
fn stateful_is_read_and_wrong_initial_states_are_rejected() {
    let (path, mut doc) = fixture("lstm_state.interchange.json");
    layer(&mut doc, "lstm")["config"]["stateful"] = true.into();
    let graph = load(&path, &doc).unwrap();
    let stateful = graph
        .nodes
        .iter()
        .any(|n| matches!(&n.op, Op::Recurrent(r) if r.stateful));
    assert!(
        stateful,
        "stateful=True must reach the IR (it turns streaming on)"
    );

    // `lstm(x, initial_state=[x, x])`: states of the wrong shape, or too few.
    let (path, mut doc) = fixture("lstm_state.interchange.json");
    let x = layer(&mut doc, "lstm")["inbound_nodes"][0]["args"][0].clone();
    layer(&mut doc, "lstm")["inbound_nodes"][0]["kwargs"]["initial_state"] =
        Value::Array(vec![x.clone(), x.clone()]);
    let err = problems(load(&path, &doc));
    assert!(
        err[0].starts_with("lstm (LSTM)") && err[0].contains("initial state of shape [8, 5]"),
        "{err:?}"
    );
    let (path, mut doc) = fixture("lstm_state.interchange.json");
    layer(&mut doc, "lstm")["inbound_nodes"][0]["kwargs"]["initial_state"] = Value::Array(vec![x]);
    let err = problems(load(&path, &doc));
    assert!(
        err[0].starts_with("lstm (LSTM)") && err[0].contains("1 initial state tensor(s)"),
        "{err:?}"
    );
}
