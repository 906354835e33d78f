//! Model inputs read from JSON: `predict`'s input file, and the samples of a calibration
//! or check file (`--calibrate`, `--check-samples`).

use std::path::Path;

use serde_json::Value;

use crate::Error;

/// Per model input: its dimensions without the batch one (`None` where open), or `None`
/// where the file declares no shape.
pub type Declared = Option<Vec<Option<usize>>>;

/// One input from the file: its values, flat, and its whole shape where the declared one
/// and the values decide it.
pub struct Input {
    pub values: Vec<f32>,
    pub shape: Option<Vec<usize>>,
}

/// The samples of `{"samples": [S, ...]}`, each `S` a document as `predict` reads it, for a
/// model with inputs of `shapes`: per sample, the values of each input.
pub fn read_samples(path: &Path, shapes: &[Vec<usize>]) -> Result<Vec<Vec<Vec<f32>>>, Error> {
    let bad = |message: String| Error::Format {
        path: path.to_path_buf(),
        message,
    };
    let doc = crate::read_json(path)?;
    let Some(Value::Array(samples)) = doc.get("samples") else {
        return Err(bad(
            "expected {\"samples\": [sample, ...]}, each sample as `predict` reads \
                        its input"
                .into(),
        ));
    };
    if samples.is_empty() {
        return Err(bad("\"samples\" is empty".into()));
    }
    let declared: Vec<Declared> = shapes
        .iter()
        .map(|s| Some(s.iter().copied().map(Some).collect()))
        .collect();
    samples
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let inputs = inputs_from(s, &declared).map_err(|e| bad(format!("sample {k}: {e}")))?;
            Ok(inputs.into_iter().map(|i| i.values).collect())
        })
        .collect()
}

/// The values of each model input, and its whole shape where the declared one and the
/// values decide it. The file is `{"inputs": [input0, ...]}`, or a bare list; for a
/// one-input model, the input itself may stand there in place of the list of inputs.
pub fn read_inputs(path: &Path, declared: &[Declared]) -> Result<Vec<Input>, String> {
    let doc = crate::read_json(path).map_err(|e| match e {
        Error::Format { message, .. } => message,
        other => other.to_string(),
    })?;
    inputs_from(&doc, declared)
}

/// [`read_inputs`] of a document already read.
pub fn inputs_from(doc: &Value, declared: &[Declared]) -> Result<Vec<Input>, String> {
    let value = match doc {
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
            crate::error::escape_for_message(&other.to_string())
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
