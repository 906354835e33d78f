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
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::config::{self, KerasVersion};
use super::{nested, nonfinite, Source, WeightSource};
use crate::error::escape_for_message as esc;
use crate::ir::{checked_numel, Weights};

/// The only version of the format so far.
pub const FORMAT_VERSION: u64 = 1;

/// A JSON model file as read: every top-level field as a JSON value, except `weights`,
/// whose tensors' data is read straight into `f32`s (a JSON value per number would take
/// 8 times the memory of the floats, and up to 16 times the file's size).
pub(crate) struct Document {
    fields: Map<String, Value>,
    /// `None` when absent or `null`.
    weights: Option<Vec<(String, Vec<RawTensor>)>>,
}

/// A tensor as written: its shape unchecked, its data converted.
struct RawTensor {
    shape: Option<Value>,
    data: Option<Vec<f32>>,
    /// `data` was not a list.
    data_not_list: bool,
    /// What was wrong with an element of `data`, reported once the model is known.
    bad_value: Option<String>,
}

impl Document {
    /// Reads a JSON object (any: interchange, architecture, sharding index).
    pub(crate) fn read(text: &str) -> Result<Document, String> {
        let mut de = serde_json::Deserializer::from_str(text);
        let doc = de
            .deserialize_map(DocumentVisitor)
            .and_then(|doc| de.end().map(|()| doc))
            .map_err(|e| {
                if e.is_data() {
                    e.to_string()
                } else {
                    format!("not valid JSON: {e}")
                }
            })?;
        Ok(doc)
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        self.fields.get(key)
    }
}

struct DocumentVisitor;

impl<'de> Visitor<'de> for DocumentVisitor {
    type Value = Document;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Document, A::Error> {
        let mut fields = Map::new();
        let mut weights = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "weights" {
                weights = map.next_value_seed(WeightsSeed)?;
            } else {
                let value: Value = map.next_value()?;
                fields.insert(key, value);
            }
        }
        Ok(Document { fields, weights })
    }
}

/// `weights`: layer name → list of tensors, or `null`.
struct WeightsSeed;

impl<'de> DeserializeSeed<'de> for WeightsSeed {
    type Value = Option<Vec<(String, Vec<RawTensor>)>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for WeightsSeed {
    type Value = Option<Vec<(String, Vec<RawTensor>)>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("'weights' to be an object of layer name → list")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut layers = Vec::new();
        while let Some(layer) = map.next_key::<String>()? {
            let tensors = map.next_value_seed(LayerSeed { layer: &layer })?;
            layers.push((layer, tensors));
        }
        Ok(Some(layers))
    }
}

/// One layer's list of tensors.
struct LayerSeed<'a> {
    layer: &'a str,
}

impl<'de> DeserializeSeed<'de> for LayerSeed<'_> {
    type Value = Vec<RawTensor>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for LayerSeed<'_> {
    type Value = Vec<RawTensor>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "the weights of layer '{}' to be a list of {{shape, data}}",
            esc(self.layer)
        )
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut tensors = Vec::new();
        while let Some(t) = seq.next_element_seed(TensorSeed {
            layer: self.layer,
            index: tensors.len(),
        })? {
            tensors.push(t);
        }
        Ok(tensors)
    }
}

/// One `{shape, data}`.
struct TensorSeed<'a> {
    layer: &'a str,
    index: usize,
}

impl<'de> DeserializeSeed<'de> for TensorSeed<'_> {
    type Value = RawTensor;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TensorSeed<'_> {
    type Value = RawTensor;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "weight #{} of layer '{}' to be an object {{shape, data}}",
            self.index,
            esc(self.layer)
        )
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawTensor, A::Error> {
        let mut tensor = RawTensor {
            shape: None,
            data: None,
            data_not_list: false,
            bad_value: None,
        };
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "shape" => tensor.shape = Some(map.next_value()?),
                "data" => match map.next_value_seed(DataSeed)? {
                    Some(Ok(data)) => tensor.data = Some(data),
                    Some(Err(bad)) => tensor.bad_value = Some(bad),
                    None => tensor.data_not_list = true,
                },
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(tensor)
    }
}

/// A tensor's `data`: numbers, or `"nan"`, `"inf"`, `"-inf"`; `None` when not a list,
/// `Some(Err)` saying which element is not a number.
struct DataSeed;

type Data = Option<Result<Vec<f32>, String>>;

impl<'de> DeserializeSeed<'de> for DataSeed {
    type Value = Data;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DataSeed {
    type Value = Data;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a flat list of numbers")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut data = Vec::new();
        while let Some(value) = seq.next_element::<Scalar>()? {
            let f = match value {
                Scalar::Number(f) => Some(f),
                Scalar::Text(ref s) => nonfinite(s),
                Scalar::Other(_) => None,
            };
            let Some(f) = f else {
                let shown = match &value {
                    Scalar::Text(s) => Value::String(s.clone()).to_string(),
                    Scalar::Number(f) => f.to_string(),
                    Scalar::Other(kind) => kind.to_string(),
                };
                let bad = format!(
                    "data[{}] = {} is not a number (use \"nan\", \"inf\", \"-inf\" for \
                     non-finite values)",
                    data.len(),
                    esc(&shown)
                );
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                return Ok(Some(Err(bad)));
            };
            data.push(f as f32);
        }
        Ok(Some(Ok(data)))
    }

    // Anything else is reported with the tensor's context once it is read whole.
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

/// One element of `data`, without building a JSON value for it.
enum Scalar {
    Number(f64),
    Text(String),
    /// The kind of anything else (`null`, `true`, a list, an object).
    Other(&'static str),
}

impl<'de> de::Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Scalar, D::Error> {
        struct ScalarVisitor;
        impl<'de> Visitor<'de> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Number(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar::Number(v as f64))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::Number(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Text(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::Other(if v { "true" } else { "false" }))
            }
            fn visit_unit<E>(self) -> Result<Scalar, E> {
                Ok(Scalar::Other("null"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other("a list"))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other("an object"))
            }
        }
        d.deserialize_any(ScalarVisitor)
    }
}

/// Parses an interchange document (already known to have `"format": "keras2src"`).
pub(crate) fn parse(doc: Document) -> Result<Source, String> {
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
    let model = config::parse(model)
        .and_then(nested::inline)
        .map_err(|e| format!("'model': {e}"))?;
    // The document's `keras_version`, else the one `to_json()` wrote (Keras 2), else 3.
    let keras_version = match doc.get("keras_version") {
        None | Some(Value::Null) => match &model.keras_version {
            Some(v) => KerasVersion::parse(v)?,
            None => KerasVersion::KERAS3,
        },
        Some(Value::String(s)) => KerasVersion::parse(s)?,
        Some(other) => return Err(format!("'keras_version' must be a string, got {other}")),
    };
    let mut weights = BTreeMap::new();
    for (layer, list) in doc.weights.unwrap_or_default() {
        let tensors = list
            .into_iter()
            .enumerate()
            .map(|(i, t)| check_tensor(t).map_err(|e| format!("weight #{i}: {e}")))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| match model.layers.iter().find(|l| l.name == layer) {
                Some(entry) => format!("layer '{}' ({}): {e}", esc(&layer), esc(&entry.class)),
                None => format!("weights of layer '{}': {e}", esc(&layer)),
            })?;
        weights.insert(layer, tensors);
    }
    Ok(Source {
        model,
        version: keras_version,
        weights: WeightSource::ByName(weights),
        notes: Vec::new(),
    })
}

fn check_tensor(tensor: RawTensor) -> Result<Weights, String> {
    let shape_value = tensor.shape.ok_or("has no 'shape'")?;
    let shape: Vec<usize> = shape_value
        .as_array()
        .ok_or("'shape' must be a list")?
        .iter()
        .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
        .collect::<Option<_>>()
        .ok_or_else(|| format!("'shape' {shape_value} must hold non-negative integers"))?;
    let count = checked_numel(&shape)
        .ok_or_else(|| format!("shape {shape:?} is larger than the supported limit"))?;
    if tensor.data_not_list {
        return Err("'data' must be a flat list".into());
    }
    if let Some(bad) = tensor.bad_value {
        return Err(bad);
    }
    let data = tensor.data.ok_or("has no 'data'")?;
    if data.len() != count {
        return Err(format!(
            "shape {shape:?} needs {count} values, 'data' has {}",
            data.len()
        ));
    }
    Weights::new(shape, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(text: &str) -> Result<Weights, String> {
        let doc = Document::read(&format!(r#"{{"weights": {{"d": [{text}]}}}}"#))?;
        let (_, mut list) = doc.weights.unwrap().pop().unwrap();
        check_tensor(list.pop().unwrap())
    }

    #[test]
    fn tensors() {
        let w = tensor(r#"{"shape": [2], "data": [1.5, "-inf"]}"#).unwrap();
        assert_eq!(w.data, vec![1.5, f32::NEG_INFINITY]);
        assert!(tensor(r#"{"shape": [3], "data": [1.5]}"#)
            .unwrap_err()
            .contains("needs 3"));
        assert!(tensor(r#"{"shape": [-1], "data": []}"#).is_err());
        assert!(
            tensor(r#"{"shape": [1000000, 1000000, 1000000], "data": []}"#)
                .unwrap_err()
                .contains("limit")
        );
        assert!(tensor(r#"{"shape": [1], "data": 3}"#)
            .unwrap_err()
            .contains("'data' must be a flat list"));
        let e = tensor(r#"{"shape": [2], "data": [1, "x"]}"#).unwrap_err();
        assert!(e.contains("data[1] = \"x\" is not a number"), "{e}");
        let e = tensor(r#"{"shape": [2], "data": [1, null]}"#).unwrap_err();
        assert!(e.contains("data[1] = null is not a number"), "{e}");
        assert!(Document::read(r#"{"weights": 5}"#)
            .err()
            .unwrap()
            .contains("'weights' to be an object"));
        assert!(Document::read(r#"{"weights": {"d": 5}}"#)
            .err()
            .unwrap()
            .contains("layer 'd' to be a list"));
        assert!(Document::read(r#"{"weights": {"#)
            .err()
            .unwrap()
            .starts_with("not valid JSON"));
    }

    #[test]
    fn versions() {
        let doc =
            Document::read(r#"{"format": "keras2src", "version": 2, "model": {}, "weights": {}}"#)
                .unwrap();
        assert!(parse(doc).err().unwrap().contains("version 2"));
    }
}
