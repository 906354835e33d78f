//! Frontend: the only code that knows Keras. Reads a model file (`.keras`, legacy `.h5`,
//! `.weights.h5` with its architecture JSON, or the keras2src interchange JSON) into the
//! IR [`Graph`].
//!
//! Phases, each with an error barrier: detect the format from the content and take the
//! file apart (`archive`, `h5`, `interchange`); parse the architecture (`config`) and
//! inline nested models (`nested`); read the weights and match them to layers as Keras
//! does (`h5`); parse every layer (`layers`, by its `registry` row); then build the graph
//! call by call (`graph`, with Keras masks decided in `mask`). Layer problems (unsupported
//! class or option, unknown activation, custom layer, weight shape) are collected over the
//! whole model and reported together as [`Error::Layers`]; a damaged or wrong file is an
//! [`Error::Format`].

pub(crate) mod activation;
pub(crate) mod archive;
pub(crate) mod config;
mod graph;
pub(crate) mod h5;
pub mod interchange;
pub(crate) mod layers;
mod mask;
mod nested;
mod ops;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::error::Error;
use crate::ir::{Graph, Weights};
use crate::Result;
use config::{KerasVersion, ModelConfig};
use graph::build;

/// What to do with a TensorFlow SavedModel (a directory with `saved_model.pb`), which
/// holds a TensorFlow graph rather than a Keras model.
pub(crate) const SAVED_MODEL_HINT: &str =
    "this is a TensorFlow SavedModel (a TensorFlow graph, not a Keras model file), which is \
     not supported; save the Keras model instead, where it is built: \
     `model.save(\"model.keras\")` (Keras 3) or `model.save(\"model.h5\")` (tf.keras); a \
     SavedModel written by tf.keras loads back with `tf_keras.models.load_model(DIR)` \
     (TensorFlow 2.15 and older: `tf.keras.models.load_model(DIR)`), then \
     `model.save(\"model.h5\")`";

/// Reads a model file (and, for a bare weights file, its architecture JSON) into the IR.
pub fn load(model: &Path, config: Option<&Path>) -> Result<Graph> {
    let bytes = crate::read(model)?;
    let config_bytes = config.map(|c| crate::read(c).map(|b| (c, b))).transpose()?;
    load_bytes(
        model,
        &bytes,
        config_bytes.as_ref().map(|(p, b)| (*p, &b[..])),
    )
}

/// The same from bytes already in memory (the CLI hashes the bytes; fuzzers use this).
/// `model_name` and the config's path are only used in messages.
pub fn load_bytes(
    model_name: &Path,
    bytes: &[u8],
    config: Option<(&Path, &[u8])>,
) -> Result<Graph> {
    load_bytes_with_shapes(model_name, bytes, config, &[])
}

/// [`load_bytes`], with sizes for the dimensions the model leaves open (`None`, such as
/// the sequence length of a recurrent model): `input_shapes[k]` is the whole shape of
/// model input `k` without the batch dimension; sizes the file does give must agree.
pub fn load_bytes_with_shapes(
    model_name: &Path,
    bytes: &[u8],
    config: Option<(&Path, &[u8])>,
    input_shapes: &[Vec<usize>],
) -> Result<Graph> {
    let mut source = take_apart(model_name, bytes, config)?;
    fix_input_shapes(&mut source.model, input_shapes).map_err(|message| Error::Format {
        path: model_name.to_path_buf(),
        message,
    })?;
    build(model_name, source)
}

/// [`load_bytes_with_shapes`] with the sequence length (every input's first dimension
/// after the batch) set to `steps`, whatever the file declares: the model as streaming
/// sees it (see [`crate::passes::stream`]).
pub fn load_bytes_with_steps(
    model_name: &Path,
    bytes: &[u8],
    config: Option<(&Path, &[u8])>,
    input_shapes: &[Vec<usize>],
    steps: usize,
) -> Result<Graph> {
    let mut source = take_apart(model_name, bytes, config)?;
    fix_input_shapes(&mut source.model, input_shapes)
        .and_then(|()| set_steps(&mut source.model, steps))
        .map_err(|message| Error::Format {
            path: model_name.to_path_buf(),
            message,
        })?;
    build(model_name, source)
}

/// The input layer named `name` and the config key of its shape (`batch_shape`, or Keras
/// 2's `batch_input_shape`).
fn input_layer<'a>(
    layers: &'a mut [config::LayerEntry],
    name: &str,
) -> Option<(&'a mut config::LayerEntry, &'static str)> {
    let layer = layers.iter_mut().find(|l| l.name == name && l.is_input())?;
    let key = ["batch_shape", "batch_input_shape"]
        .into_iter()
        .find(|k| layer.config.get(*k).is_some_and(|v| !v.is_null()))
        .unwrap_or("batch_shape");
    Some((layer, key))
}

/// Writes `steps` as every model input's first dimension after the batch.
fn set_steps(model: &mut ModelConfig, steps: usize) -> std::result::Result<(), String> {
    for input in &model.inputs {
        let Some((layer, key)) = input_layer(&mut model.layers, &input.layer) else {
            continue; // reported when the graph is built
        };
        let mut dims = layer
            .config
            .get(key)
            .and_then(serde_json::Value::as_array)
            .cloned()
            .unwrap_or_default();
        if dims.len() < 2 {
            return Err(format!(
                "input '{}' has no time axis to stream (its shape has no dimension after the \
                 batch)",
                crate::error::escape_for_message(&input.layer)
            ));
        }
        dims[1] = serde_json::Value::from(steps);
        layer
            .config
            .insert(key.to_string(), serde_json::Value::Array(dims));
    }
    Ok(())
}

/// The shapes the model file declares for its inputs, in input order and without the batch
/// dimension: `None` for a dimension the model leaves open (a sequence length), which
/// `--input-shape` sizes; `None` for the whole shape where the file declares none.
pub fn declared_input_shapes(
    model_name: &Path,
    bytes: &[u8],
    config: Option<(&Path, &[u8])>,
) -> Result<Vec<Option<Vec<Option<usize>>>>> {
    let model = take_apart(model_name, bytes, config)?.model;
    Ok(model
        .inputs
        .iter()
        .map(|input| {
            let layer = model
                .layers
                .iter()
                .find(|l| l.name == input.layer && l.is_input())?;
            let dims = ["batch_shape", "batch_input_shape"]
                .into_iter()
                .find_map(|k| layer.config.get(k).and_then(Value::as_array))?;
            Some(
                dims.iter()
                    .skip(1)
                    .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
                    .collect(),
            )
        })
        .collect())
}

/// Detects the format from the content and takes the file apart.
fn take_apart(model_name: &Path, bytes: &[u8], config: Option<(&Path, &[u8])>) -> Result<Source> {
    let format_error = |message: String| Error::Format {
        path: model_name.to_path_buf(),
        message,
    };
    Ok(if bytes.starts_with(archive::MAGIC) {
        reject_config(config)?;
        from_archive(bytes).map_err(format_error)?
    } else if bytes.starts_with(h5::MAGIC) {
        from_hdf5(model_name, bytes, config)?
    } else if looks_like_json(bytes) {
        reject_config(config)?;
        from_json(bytes).map_err(format_error)?
    } else if bytes.is_empty() {
        return Err(format_error("the file is empty".into()));
    } else if archive::MAGIC.starts_with(&bytes[..bytes.len().min(4)])
        || h5::MAGIC.starts_with(&bytes[..bytes.len().min(8)])
    {
        return Err(format_error("the file is truncated".into()));
    } else if model_name.extension().is_some_and(|e| e == "pb") {
        return Err(format_error(SAVED_MODEL_HINT.into()));
    } else {
        return Err(format_error(
            "not a Keras model: expected a .keras archive, an HDF5 .h5 / .weights.h5 file, or \
             keras2src interchange JSON"
                .into(),
        ));
    })
}

/// Writes `shapes` into the model inputs' `batch_shape`, where the file has `None`.
fn fix_input_shapes(
    model: &mut ModelConfig,
    shapes: &[Vec<usize>],
) -> std::result::Result<(), String> {
    if shapes.len() > model.inputs.len() {
        return Err(format!(
            "{} input shapes given, but the model has {} input(s)",
            shapes.len(),
            model.inputs.len()
        ));
    }
    for (input, shape) in model.inputs.iter().zip(shapes) {
        let name = crate::error::escape_for_message(&input.layer);
        let Some((layer, key)) = input_layer(&mut model.layers, &input.layer) else {
            continue; // reported when the graph is built
        };
        let declared: Vec<serde_json::Value> = layer
            .config
            .get(key)
            .and_then(serde_json::Value::as_array)
            .map(|dims| dims.iter().skip(1).cloned().collect())
            .unwrap_or_else(|| vec![serde_json::Value::Null; shape.len()]);
        if declared.len() != shape.len() {
            return Err(format!(
                "input '{name}' has {} dimensions (batch excluded), the given shape {shape:?} has {}",
                declared.len(),
                shape.len()
            ));
        }
        for (d, (given, file)) in shape.iter().zip(&declared).enumerate() {
            if file.as_u64().is_some_and(|f| f != *given as u64) {
                return Err(format!(
                    "input '{name}' has size {file} in dimension {}, the given shape {shape:?} says {given}",
                    d + 1
                ));
            }
        }
        let mut dims = vec![serde_json::Value::Null];
        dims.extend(shape.iter().map(|&d| serde_json::Value::from(d)));
        layer
            .config
            .insert(key.to_string(), serde_json::Value::Array(dims));
    }
    Ok(())
}

fn reject_config(config: Option<(&Path, &[u8])>) -> Result<()> {
    match config {
        None => Ok(()),
        Some((path, _)) => Err(Error::Usage(format!(
            "--config {} is only used with a bare weights file (.weights.h5); this model file \
             already holds its architecture",
            path.display()
        ))),
    }
}

fn looks_like_json(bytes: &[u8]) -> bool {
    let text = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    text.iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{')
}

/// A model taken apart: its architecture, version, and where its weights are.
pub(crate) struct Source {
    pub model: ModelConfig,
    pub version: KerasVersion,
    pub weights: WeightSource,
    pub notes: Vec<String>,
}

/// Where weights come from. The HDF5 ones carry the most bytes of data the file can
/// hold ([`h5::data_budget`]), checked before each dataset is read.
pub(crate) enum WeightSource {
    /// An HDF5 file in Keras 3's `saving_lib` layout (the group holding `layers/`).
    SavingLib(hdf5_reader::group::Group, u64),
    /// A group with legacy `layer_names` / `weight_names`.
    Legacy(hdf5_reader::group::Group, u64),
    /// Weights by layer name (interchange JSON).
    ByName(BTreeMap<String, Vec<Weights>>),
}

fn version_from(
    text: Option<&str>,
    default: KerasVersion,
) -> std::result::Result<KerasVersion, String> {
    match text {
        Some(t) => KerasVersion::parse(t),
        None => Ok(default),
    }
}

fn from_archive(bytes: &[u8]) -> std::result::Result<Source, String> {
    let parts = archive::read(bytes)?;
    let mut model = config::parse_text(&parts.config)
        .and_then(nested::inline)
        .map_err(|e| format!("config.json: {e}"))?;
    archive::attach_vocabularies(&mut model, &parts.vocabularies);
    let metadata_version = match &parts.metadata {
        Some(text) => {
            let meta: Value = serde_json::from_str(text)
                .map_err(|e| format!("metadata.json is not valid JSON: {e}"))?;
            meta.get("keras_version")
                .and_then(Value::as_str)
                .map(str::to_string)
        }
        None => None,
    };
    let version = version_from(metadata_version.as_deref(), KerasVersion::KERAS3)?;
    let budget = h5::data_budget(parts.weights.len());
    let file = h5::open(parts.weights).map_err(|e| format!("model.weights.h5: {e}"))?;
    let root = h5::root(&file).map_err(|e| format!("model.weights.h5: {e}"))?;
    Ok(Source {
        model,
        version,
        weights: WeightSource::SavingLib(root, budget),
        notes: Vec::new(),
    })
}

fn from_hdf5(path: &Path, bytes: &[u8], config: Option<(&Path, &[u8])>) -> Result<Source> {
    let format_error = |message: String| Error::Format {
        path: path.to_path_buf(),
        message,
    };
    let budget = h5::data_budget(bytes.len());
    let file = h5::open(bytes.to_vec()).map_err(format_error)?;
    let root = h5::root(&file).map_err(format_error)?;
    let file_version = h5::attr_string(&root, "keras_version").map_err(format_error)?;
    if let Some(model_config) = h5::attr_string(&root, "model_config").map_err(format_error)? {
        // A full legacy model.
        reject_config(config)?;
        let model = config::parse_text(&model_config)
            .and_then(nested::inline)
            .map_err(|e| format_error(format!("model_config: {e}")))?;
        let version =
            version_from(file_version.as_deref(), KerasVersion::KERAS3).map_err(format_error)?;
        let has_weights = h5::has_group(&root, "model_weights").map_err(format_error)?;
        let weights_group = if has_weights {
            root.group("model_weights")
                .map_err(|e| format_error(format!("cannot open 'model_weights': {e}")))?
        } else {
            return Err(format_error(
                "the file has a model config but no 'model_weights' group (saved without \
                 weights?)"
                    .into(),
            ));
        };
        return Ok(Source {
            model,
            version,
            weights: WeightSource::Legacy(weights_group, budget),
            notes: Vec::new(),
        });
    }
    // A bare weights file: which layout?
    let saving_lib = h5::has_group(&root, "layers").map_err(format_error)?
        || h5::has_group(&root, "_layer_checkpoint_dependencies").map_err(format_error)?;
    let legacy = h5::attr_strings(&root, "layer_names")
        .map_err(format_error)?
        .is_some();
    if !saving_lib && !legacy {
        return Err(format_error(
            "this HDF5 file has no Keras model config and no Keras weights (no 'model_config' \
             attribute, no 'layers' group, no 'layer_names' attribute)"
                .into(),
        ));
    }
    let Some((config_path, config_bytes)) = config else {
        return Err(format_error(
            "this is a weights-only file without the model architecture; pass the JSON from \
             `model.to_json()` with --config"
                .into(),
        ));
    };
    let config_error = |message: String| Error::Format {
        path: config_path.to_path_buf(),
        message,
    };
    let text = std::str::from_utf8(config_bytes)
        .map_err(|_| config_error("the architecture JSON is not UTF-8 text".into()))?;
    let value: Value = serde_json::from_str(text.trim_start_matches('\u{feff}'))
        .map_err(|e| config_error(format!("the architecture is not valid JSON: {e}")))?;
    if value.get("format").and_then(Value::as_str) == Some("keras2src") {
        return Err(config_error(
            "--config expects the architecture JSON from `model.to_json()`, not interchange \
             JSON (which holds its own weights: pass it as the model)"
                .into(),
        ));
    }
    let model = config::parse(&value)
        .and_then(nested::inline)
        .map_err(config_error)?;
    let version = version_from(
        model.keras_version.as_deref().or(file_version.as_deref()),
        KerasVersion::KERAS3,
    )
    .map_err(config_error)?;
    Ok(Source {
        model,
        version,
        weights: if saving_lib {
            WeightSource::SavingLib(root, budget)
        } else {
            WeightSource::Legacy(root, budget)
        },
        notes: Vec::new(),
    })
}

fn from_json(bytes: &[u8]) -> std::result::Result<Source, String> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| "the JSON file is not UTF-8 text".to_string())?;
    let value = interchange::Document::read(text.trim_start_matches('\u{feff}'))?;
    if value.get("format").and_then(Value::as_str) == Some("keras2src") {
        return interchange::parse(value);
    }
    if value.get("weight_map").is_some() {
        return Err(
            "this is the index of sharded weights (max_shard_size), which is not supported; \
             save the weights without sharding"
                .into(),
        );
    }
    if value.get("class_name").is_some() {
        return Err(
            "this is an architecture JSON without weights: pass the weights file (.weights.h5) \
             as the model and this JSON with --config"
                .into(),
        );
    }
    Err(
        "this JSON is neither keras2src interchange (\"format\": \"keras2src\") nor a Keras \
         architecture"
            .into(),
    )
}

/// Parses `"nan"`, `"inf"`, `"-inf"` (any case, also `"+inf"`, `"infinity"`).
pub(crate) fn nonfinite(text: &str) -> Option<f64> {
    match text.trim().to_ascii_lowercase().as_str() {
        "nan" | "-nan" | "+nan" => Some(f64::NAN),
        "inf" | "+inf" | "infinity" | "+infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonfinite_strings() {
        assert!(nonfinite("nan").unwrap().is_nan());
        assert_eq!(nonfinite("-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(nonfinite("Inf"), Some(f64::INFINITY));
        assert_eq!(nonfinite("1.0"), None);
    }
}
