//! `keras2src predict`: read the inputs (flat, or nested like each input's shape as
//! `x[0].tolist()` writes it), size the dimensions the model leaves open from them, run the
//! reference interpreter, print the outputs and, with `--trace`, every layer's output or a
//! summary of it.

use std::path::Path;
use std::process::ExitCode;

use serde_json::{json, Value};

use keras2src::{interp, Error, Model};

use crate::{PredictArgs, TraceMode};

/// Per model input: its dimensions without the batch one (`None` where open), or `None`
/// where the file declares no shape.
type Declared = Option<Vec<Option<usize>>>;

/// One input from the file: its values, flat, and its whole shape where the declared one
/// and the values decide it.
struct Input {
    values: Vec<f32>,
    shape: Option<Vec<usize>>,
}

pub fn run(args: &PredictArgs) -> Result<ExitCode, Error> {
    let source = &args.source;
    let bad = |message: String| Error::Format {
        path: args.input.clone(),
        message,
    };
    let load = |shapes: &[Vec<usize>]| {
        Model::load_with_shapes(&source.model, source.config.as_deref(), shapes)
    };
    let given = source.shapes()?;
    let declared = if given.is_empty() {
        Model::declared_input_shapes(&source.model, source.config.as_deref())?
    } else {
        Vec::new()
    };
    let open = declared
        .iter()
        .any(|d| d.as_ref().is_some_and(|d| d.contains(&None)));
    let (model, inputs) = if open {
        // Sized from the values, for the inputs up to the first whose shape is unknown.
        let inputs = read_inputs(&args.input, &declared).map_err(bad)?;
        let shapes: Vec<Vec<usize>> = inputs.iter().map_while(|i| i.shape.clone()).collect();
        (load(&shapes)?, inputs)
    } else {
        let model = load(&given)?;
        let graph = &model.graph;
        let shapes: Vec<Declared> = graph
            .inputs
            .iter()
            .map(|i| Some(graph.shape(i.tensor).iter().copied().map(Some).collect()))
            .collect();
        let inputs = read_inputs(&args.input, &shapes).map_err(bad)?;
        (model, inputs)
    };
    // Compressed kernels: the passes leave kernels as they are, so the model as loaded
    // takes them as the generated code stores them.
    let dtype = args.weights_dtype.dtype();
    let compressed = match dtype {
        keras2src::WeightsDtype::F32 => None,
        keras2src::WeightsDtype::F16 | keras2src::WeightsDtype::Int8 => Some(
            keras2src::ir::quant::dequantized(&model.graph, dtype).map_err(|problems| {
                Error::Layers {
                    path: source.model.clone(),
                    problems,
                }
            })?,
        ),
    };
    let graph = compressed.as_ref().unwrap_or(&model.graph);
    let values: Vec<Vec<f32>> = inputs.into_iter().map(|i| i.values).collect();
    let values = interp::run(graph, &values).map_err(bad)?;
    let mut text = format!("{{\"outputs\": {}", json!(interp::outputs(graph, &values)));
    if let Some(mode) = args.trace {
        let known: Vec<&str> = graph.nodes.iter().map(|n| n.name.as_str()).collect();
        if let Some(missing) = args.layers.iter().find(|l| !known.contains(&l.as_str())) {
            return Err(Error::Usage(format!(
                "--layers: the model has no layer '{}' (`keras2src inspect` lists them)",
                keras2src::error::escape_for_message(missing)
            )));
        }
        let traced = graph
            .nodes
            .iter()
            .filter(|n| args.layers.is_empty() || args.layers.contains(&n.name));
        let entries: Vec<String> = traced
            .map(|n| {
                let output = &values[n.output];
                // In this order (serde_json's maps sort their keys).
                let mut entry = format!(
                    "{{\"layer\": {}, \"class\": {}, \"shape\": {}",
                    json!(n.name),
                    json!(n.class),
                    json!(graph.shape(n.output))
                );
                match mode {
                    TraceMode::Full => entry.push_str(&format!(", \"output\": {}", json!(output))),
                    TraceMode::Summary => {
                        let (min, max, mean) = stats(output);
                        entry.push_str(&format!(
                            ", \"min\": {}, \"max\": {}, \"mean\": {}",
                            json!(min),
                            json!(max),
                            json!(mean)
                        ));
                    }
                }
                entry + "}"
            })
            .collect();
        text.push_str(&format!(",\n\"trace\": [\n{}\n]", entries.join(",\n")));
    }
    text.push_str("}\n");
    Ok(super::output::write(text.as_bytes()))
}

/// Min, max and mean, NaN when any value is (as numpy's `min`, `max`, `mean`).
fn stats(values: &[f32]) -> (f32, f32, f64) {
    if values.iter().any(|v| v.is_nan()) {
        return (f32::NAN, f32::NAN, f64::NAN);
    }
    let min = values.iter().copied().fold(f32::INFINITY, f32::min);
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = values.iter().map(|&v| f64::from(v)).sum();
    (min, max, sum / values.len().max(1) as f64)
}

/// The values of each model input, and its whole shape where the declared one and the
/// values decide it. The file is `{"inputs": [input0, ...]}`, or a bare list; for a
/// one-input model, the input itself may stand there in place of the list of inputs.
fn read_inputs(path: &Path, declared: &[Declared]) -> Result<Vec<Input>, String> {
    let doc = keras2src::read_json(path).map_err(|e| match e {
        Error::Format { message, .. } => message,
        other => other.to_string(),
    })?;
    let value = match &doc {
        Value::Object(o) => o
            .get("inputs")
            .ok_or("expected an object with \"inputs\", or a list")?,
        other => other,
    };
    let Value::Array(list) = value else {
        return Err("\"inputs\" must be a list with one entry per model input".into());
    };
    let as_list = || -> Result<Vec<_>, String> {
        if list.len() != declared.len() {
            return Err(format!(
                "the model has {} input(s) ({}), the file gives {}",
                declared.len(),
                declared
                    .iter()
                    .map(shape_text)
                    .collect::<Vec<_>>()
                    .join(", "),
                list.len()
            ));
        }
        list.iter()
            .zip(declared)
            .enumerate()
            .map(|(k, (v, d))| fit(v, d).map_err(|e| format!("input {k}: {e}")))
            .collect()
    };
    match as_list() {
        Ok(inputs) => Ok(inputs),
        // One input, given alone (flat, or nested like its shape); of the two readings'
        // errors, the one for the more likely reading.
        Err(e) if declared.len() == 1 => match fit(value, &declared[0]) {
            Ok(input) => Ok(vec![input]),
            Err(_) if list.len() == 1 && list[0].is_array() => Err(e),
            Err(alone) => Err(alone),
        },
        Err(e) => Err(e),
    }
}

/// One input's values, flat or nested, against its declared shape: nested lists must have
/// its shape (a leading batch dimension of 1 is dropped) and size its open dimensions; a
/// flat list must have its length, and sizes an open dimension when exactly one is open.
fn fit(value: &Value, declared: &Declared) -> Result<Input, String> {
    let nested = nested_shape(value)?;
    let mut flat = Vec::new();
    flatten(value, &mut flat);
    let len = flat.len();
    let input = move |shape| Input {
        values: flat,
        shape,
    };
    let Some(declared) = declared else {
        return Ok(input(None));
    };
    let want = shape_text(&Some(declared.clone()));
    let matches = |shape: &[usize]| {
        shape.len() == declared.len()
            && shape
                .iter()
                .zip(declared)
                .all(|(&s, d)| d.is_none_or(|d| d == s) && s > 0)
    };
    if matches(&nested) {
        return Ok(input(Some(nested)));
    }
    if nested.first() == Some(&1) && matches(&nested[1..]) {
        return Ok(input(Some(nested[1..].to_vec())));
    }
    if nested.len() != 1 || declared.len() == 1 {
        return Err(format!(
            "the values have shape {}, the input {want}",
            shape_text(&Some(nested.iter().copied().map(Some).collect()))
        ));
    }
    let known: usize = declared.iter().flatten().product();
    let open = declared.iter().filter(|d| d.is_none()).count();
    let sized = match open {
        0 if len == known => Some(1),
        1 if len > 0 && len.is_multiple_of(known) => Some(len / known),
        0 | 1 => None,
        _ => {
            return Err(format!(
                "a flat list, but the input's shape {want} leaves {open} dimensions open: nest \
                 the values like the input (x[0].tolist()), or give --input-shape"
            ))
        }
    };
    let Some(size) = sized else {
        return Err(format!(
            "{len} values do not fill the input's shape {want} ({} per {})",
            known,
            if open == 0 {
                "sample"
            } else {
                "step of the open dimension"
            }
        ));
    };
    Ok(input(Some(
        declared.iter().map(|d| d.unwrap_or(size)).collect(),
    )))
}

/// The shape of nested lists of numbers (`[3]` for a flat list), which must be regular.
fn nested_shape(value: &Value) -> Result<Vec<usize>, String> {
    match value {
        Value::Number(_) => Ok(Vec::new()),
        Value::Array(items) => {
            let inner = items
                .first()
                .map(nested_shape)
                .transpose()?
                .unwrap_or_default();
            for item in items.iter().skip(1) {
                if nested_shape(item)? != inner {
                    return Err("the nested lists are ragged (rows of different lengths)".into());
                }
            }
            let mut shape = vec![items.len()];
            shape.extend(inner);
            Ok(shape)
        }
        other => Err(format!(
            "expected numbers, found {}",
            keras2src::error::escape_for_message(&other.to_string())
        )),
    }
}

fn flatten(value: &Value, out: &mut Vec<f32>) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| flatten(v, out)),
        v => out.extend(v.as_f64().map(|x| x as f32)),
    }
}

/// `(None, 8)`, as Python prints a shape.
fn shape_text(shape: &Declared) -> String {
    let Some(dims) = shape else {
        return "(unknown)".into();
    };
    let dims: Vec<String> = dims
        .iter()
        .map(|d| d.map_or("None".into(), |d| d.to_string()))
        .collect();
    match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    }
}
