//! Frontend: keras2src's own JSON interchange format, for models whose weights are easiest
//! to hand over from Python (or from another framework) as plain JSON.
//!
//! ```json
//! {
//!   "format": "keras2src",
//!   "version": 1,
//!   "keras_version": "3.15.1",
//!   "model": { "class_name": "Sequential", "config": { ... } },
//!   "weights": {
//!     "dense": [
//!       {"shape": [4, 3], "data": [0.1, -0.2, ...]},
//!       {"shape": [3], "data": [0.0, "nan", "inf"]}
//!     ]
//!   }
//! }
//! ```
//!
//! - `format` must be `"keras2src"` and `version` must be `1`.
//! - `keras_version` (optional) decides version-dependent semantics, e.g. `hard_sigmoid`
//!   is `clip(0.2x + 0.5)` in Keras 2 and `clip(x/6 + 0.5)` in Keras 3. Without it, the
//!   `keras_version` that Keras 2's `to_json()` writes into `model` is used, else 3.
//! - `model` is the architecture, exactly `json.loads(model.to_json())`.
//! - `weights` maps each layer name to that layer's weights in `layer.get_weights()` order,
//!   each as its `shape` and its values `data`, flattened row-major (C order, as
//!   `w.ravel().tolist()`). `data` holds numbers, or the strings `"nan"`, `"inf"`, `"-inf"`
//!   for non-finite values (JSON has no literal for them). Layers without weights may be
//!   left out or given `[]`. A nested model (a Sequential used as a layer) is one entry:
//!   its `get_weights()`, i.e. its layers' weights one layer after the other.
//!
//! Written from Python in a few lines:
//!
//! ```python
//! import json, numpy as np
//! def value(x):
//!     return float(x) if np.isfinite(x) else ("nan" if np.isnan(x) else ("inf" if x > 0 else "-inf"))
//! doc = {
//!     "format": "keras2src", "version": 1, "keras_version": keras.__version__,
//!     "model": json.loads(model.to_json()),
//!     "weights": {layer.name: [{"shape": list(w.shape), "data": [value(v) for v in w.ravel()]}
//!                              for w in layer.get_weights()] for layer in model.layers},
//! }
//! json.dump(doc, open("model.json", "w"))
//! ```

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::escape_for_message as esc;
use crate::ir::{checked_numel, Weights};
use crate::keras::config::{self, KerasVersion};
use crate::keras::{nonfinite, Source, WeightSource};

/// The only version of the format so far.
pub const FORMAT_VERSION: u64 = 1;

/// Parses an interchange document (already known to have `"format": "keras2src"`).
pub(crate) fn parse(doc: &Value) -> Result<Source, String> {
    let version = doc
        .get("version")
        .ok_or("interchange JSON has no 'version'")?;
    if version.as_u64() != Some(FORMAT_VERSION) {
        return Err(format!(
            "interchange version {version} is not supported (this keras2src reads version \
             {FORMAT_VERSION})"
        ));
    }
    let model = doc.get("model").ok_or("interchange JSON has no 'model'")?;
    let model = config::parse(model).map_err(|e| format!("'model': {e}"))?;
    // The document's `keras_version`, else the one `to_json()` wrote (Keras 2), else 3.
    let keras_version = match doc.get("keras_version") {
        None | Some(Value::Null) => match &model.keras_version {
            Some(v) => KerasVersion::parse(v)?,
            None => KerasVersion::KERAS3,
        },
        Some(Value::String(s)) => KerasVersion::parse(s)?,
        Some(other) => return Err(format!("'keras_version' must be a string, got {other}")),
    };
    let weights = match doc.get("weights") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(map)) => {
            let mut out = BTreeMap::new();
            for (layer, list) in map {
                out.insert(
                    layer.clone(),
                    parse_layer_weights(list)
                        .map_err(|e| format!("weights of layer '{}': {e}", esc(layer)))?,
                );
            }
            out
        }
        Some(_) => return Err("'weights' must be an object of layer name → list".into()),
    };
    Ok(Source {
        model,
        version: keras_version,
        weights: WeightSource::ByName(weights),
        notes: Vec::new(),
    })
}

fn parse_layer_weights(list: &Value) -> Result<Vec<Weights>, String> {
    let items = list.as_array().ok_or("must be a list of {shape, data}")?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| parse_tensor(item).map_err(|e| format!("#{i}: {e}")))
        .collect()
}

fn parse_tensor(item: &Value) -> Result<Weights, String> {
    let shape_value = item.get("shape").ok_or("has no 'shape'")?;
    let shape: Vec<usize> = shape_value
        .as_array()
        .ok_or("'shape' must be a list")?
        .iter()
        .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
        .collect::<Option<_>>()
        .ok_or_else(|| format!("'shape' {shape_value} must hold non-negative integers"))?;
    let count = checked_numel(&shape)
        .ok_or_else(|| format!("shape {shape:?} is larger than the supported limit"))?;
    let data_value = item.get("data").ok_or("has no 'data'")?;
    let values = data_value.as_array().ok_or("'data' must be a flat list")?;
    if values.len() != count {
        return Err(format!(
            "shape {shape:?} needs {count} values, 'data' has {}",
            values.len()
        ));
    }
    let mut data = Vec::with_capacity(count);
    for (i, v) in values.iter().enumerate() {
        let f = match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => nonfinite(s),
            _ => None,
        }
        .ok_or_else(|| {
            format!(
                "data[{i}] = {} is not a number (use \"nan\", \"inf\", \"-inf\" for non-finite \
                 values)",
                esc(&v.to_string())
            )
        })?;
        data.push(f as f32);
    }
    Weights::new(shape, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors() {
        let v: Value = serde_json::from_str(r#"{"shape": [2], "data": [1.5, "-inf"]}"#).unwrap();
        let w = parse_tensor(&v).unwrap();
        assert_eq!(w.data, vec![1.5, f32::NEG_INFINITY]);
        let v: Value = serde_json::from_str(r#"{"shape": [3], "data": [1.5]}"#).unwrap();
        assert!(parse_tensor(&v).unwrap_err().contains("needs 3"));
        let v: Value = serde_json::from_str(r#"{"shape": [-1], "data": []}"#).unwrap();
        assert!(parse_tensor(&v).is_err());
        let v: Value =
            serde_json::from_str(r#"{"shape": [1000000, 1000000, 1000000], "data": []}"#).unwrap();
        assert!(parse_tensor(&v).unwrap_err().contains("limit"));
    }

    #[test]
    fn versions() {
        let doc: Value = serde_json::from_str(
            r#"{"format": "keras2src", "version": 2, "model": {}, "weights": {}}"#,
        )
        .unwrap();
        assert!(parse(&doc).err().unwrap().contains("version 2"));
    }
}
