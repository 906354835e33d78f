//! Frontend: the model's architecture JSON (`config.json`, the legacy `model_config`
//! attribute, `model.to_json()`), Keras 2 and Keras 3 forms, read into one shape: a list
//! of layers, each with its config and its calls (inbound nodes), plus the model's input
//! and output tensors. Sequential models are rewritten as a chain of calls.
//!
//! Forms handled (from `keras/src/models/functional.py` and `tf_keras`):
//! - Keras 3 inbound nodes: `[{"args": [...], "kwargs": {...}}]`, tensors as
//!   `{"class_name": "__keras_tensor__", "config": {"keras_history": [layer, node, tensor]}}`;
//! - Keras 2 inbound nodes: `[[["layer", node, tensor, {kwargs}], ...], ...]`;
//! - `input_layers` / `output_layers` as `[[name, node, tensor], ...]`, a single
//!   `[name, node, tensor]`, or (Keras 3 dict inputs) an object of those.

use serde_json::{Map, Value};

use crate::error::escape_for_message as esc;

/// The Keras major version whose semantics apply (`hard_sigmoid` differs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KerasVersion {
    pub major: u32,
}

impl KerasVersion {
    pub const KERAS3: KerasVersion = KerasVersion { major: 3 };

    /// Parses `"3.15.1"`, `"2.21.0"`, `"2.2.4-tf"`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let major: String = text
            .trim()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        match major.parse::<u32>() {
            Ok(major) if (2..=3).contains(&major) => Ok(KerasVersion { major }),
            Ok(major) if major > 3 => Ok(KerasVersion { major }),
            _ => Err(format!(
                "keras_version '{}' is not supported (Keras 2 and 3 are)",
                esc(text)
            )),
        }
    }
}

/// A reference to a layer call's output: `[layer, node_index, tensor_index]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TensorRef {
    pub layer: String,
    pub node: usize,
    pub tensor: usize,
}

/// One call of a layer (an inbound node).
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Call {
    /// The positional tensor arguments, then the tensors passed by keyword (named in
    /// [`Call::keywords`], which lines up with the end of this list).
    pub inputs: Vec<TensorRef>,
    /// A call that cannot be converted (nested keyword tensors).
    pub problem: Option<String>,
    /// The call records `training=True` (random at inference for most layers; see
    /// [`TRAINING_TRUE`]).
    pub training: bool,
    /// The keyword names of the last `keywords.len()` tensors of [`Call::inputs`]
    /// (`mha(q, value=v, key=k)`); the layer decides whether it takes them.
    pub keywords: Vec<String>,
    /// Other keyword arguments (not `training`, not an empty `mask`), such as
    /// `use_causal_mask`; the layer decides whether it supports them.
    pub kwargs: Map<String, Value>,
    /// The call's positional arguments as written, each tensor replaced by
    /// `{"__tensor__": k}` with `k` its index in [`Call::inputs`]: what an operation node
    /// (`x + 3.0`, `ops.mean(x, axis=1)`, a tf.keras `TFOpLambda`) computes depends on
    /// where its tensors and constants stand.
    pub args: Vec<Value>,
    /// The keyword arguments as written, tensors replaced the same way.
    pub arg_kwargs: Map<String, Value>,
}

/// The placeholder for call tensor `k` in [`Call::args`] and [`Call::arg_kwargs`].
pub(crate) const TENSOR_KEY: &str = "__tensor__";

impl Call {
    /// Why a call with keyword arguments cannot be inlined into a nested model's layers.
    pub(crate) fn keyword_problem(&self) -> Option<String> {
        if let Some(key) = self.keywords.first() {
            return Some(format!(
                "is called with a tensor as keyword argument '{}', which is not supported",
                esc(key)
            ));
        }
        self.kwargs.iter().next().map(|(key, value)| {
            format!(
                "is called with keyword argument '{}'={}, which is not supported",
                esc(key),
                esc(&value.to_string())
            )
        })
    }
}

/// One entry of the model's `layers`. After [`parse`], nested models are inlined: their
/// layers appear as entries named `outer/inner`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LayerEntry {
    pub name: String,
    pub class: String,
    pub module: Option<String>,
    pub registered_name: Option<String>,
    pub config: Map<String, Value>,
    pub calls: Vec<Call>,
    /// Whether this entry is one of `model.layers`, which names the weight groups of a
    /// Keras 3 weights file (a Sequential's InputLayer is not).
    pub in_model_layers: bool,
    /// A nested model's own architecture (before inlining).
    pub nested: Option<Box<ModelConfig>>,
    /// The layer's group in a Keras 3 weights file (`layers/dense_1`,
    /// `layers/sequential/layers/dense`).
    pub weights_path: Option<String>,
    /// Index into [`ModelConfig::units`]: the top-level layer this entry belongs to (a
    /// nested model's layers share their model's unit, which is one legacy weight group).
    pub unit: usize,
    /// Whether the layer and every model around it are trainable (legacy files list a
    /// nested model's trainable weights before its non-trainable ones).
    pub trainable: bool,
}

impl LayerEntry {
    pub fn is_input(&self) -> bool {
        self.class == "InputLayer"
    }

    pub(crate) fn new(name: String, class: String, config: Map<String, Value>) -> Self {
        LayerEntry {
            name,
            class,
            module: None,
            registered_name: None,
            config,
            calls: Vec::new(),
            in_model_layers: true,
            nested: None,
            weights_path: None,
            unit: 0,
            trainable: true,
        }
    }
}

/// How node indices in references count a nested model's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefStyle {
    /// Calls counted from 0 (Sequential chains, flattened models).
    Own,
    /// Keras 2: a nested model's first call is node 1 everywhere.
    Keras2,
    /// Keras 3: from 0 in inbound nodes; from 1 for a nested Functional in
    /// `input_layers` / `output_layers`.
    Keras3,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ModelKind {
    Sequential,
    Functional,
}

/// A model's architecture.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ModelConfig {
    pub kind: ModelKind,
    pub name: String,
    pub layers: Vec<LayerEntry>,
    pub inputs: Vec<TensorRef>,
    pub outputs: Vec<TensorRef>,
    /// The name of each output: the layer that produces it as the model sees it (a nested
    /// model's name, not the layer inside it).
    pub output_names: Vec<String>,
    /// `keras_version` written in the JSON itself (Keras 2 `to_json()` has it).
    pub keras_version: Option<String>,
    pub ref_style: RefStyle,
    /// Names of the top-level layers (see [`LayerEntry::unit`]).
    pub units: Vec<String>,
}

/// Classes that are whole models.
pub(crate) const MODEL_CLASSES: &[&str] = &["Sequential", "Functional", "Model"];

/// How deep models may nest.
pub(crate) const MAX_DEPTH: usize = 16;

/// Parses the architecture JSON text.
pub(crate) fn parse_text(text: &str) -> Result<ModelConfig, String> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| format!("the model config is not valid JSON: {e}"))?;
    parse(&value)
}

/// Parses the architecture JSON value (`{"class_name": ..., "config": ...}`). Nested
/// models stay nested (in [`LayerEntry::nested`]); [`super::nested::inline`] flattens them.
pub(crate) fn parse(root: &Value) -> Result<ModelConfig, String> {
    let Some(root_obj) = root.as_object() else {
        return Err("the model config is not a JSON object".into());
    };
    let class = root_obj
        .get("class_name")
        .and_then(Value::as_str)
        .ok_or("the model config has no 'class_name'")?;
    let keras_version = root_obj
        .get("keras_version")
        .and_then(Value::as_str)
        .map(str::to_string);
    let config = root_obj.get("config").unwrap_or(&Value::Null);
    if !MODEL_CLASSES.contains(&class) {
        return Err(format!(
            "the model is a '{}', not a Sequential or Functional model; subclassed models \
             keep their architecture in Python code, not in the file",
            esc(class)
        ));
    }
    let mut model = parse_model(class, config, 0)?;
    model.keras_version = keras_version;
    assign_weight_paths(&mut model, "");
    Ok(model)
}

fn parse_model(class: &str, config: &Value, depth: usize) -> Result<ModelConfig, String> {
    if depth > MAX_DEPTH {
        return Err("models are nested too deeply".into());
    }
    match class {
        "Sequential" => parse_sequential(config, depth),
        _ => parse_functional(config, depth),
    }
}

fn layer_header(value: &Value, index: usize, depth: usize) -> Result<LayerEntry, String> {
    let obj = value
        .as_object()
        .ok_or_else(|| format!("layer #{index} is not a JSON object"))?;
    let class = obj
        .get("class_name")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("layer #{index} has no 'class_name'"))?;
    let class = canonical_class(class).to_string();
    let config = match obj.get("config") {
        Some(Value::Object(c)) => c.clone(),
        // Keras <= 2.2 wrote a nested Sequential's config as its layer list.
        None | Some(Value::Null) | Some(Value::Array(_)) => Map::new(),
        Some(_) => {
            return Err(format!(
                "layer #{index} ({}) has a config that is not an object",
                esc(&class)
            ))
        }
    };
    let name = obj
        .get("name")
        .and_then(Value::as_str)
        .or_else(|| config.get("name").and_then(Value::as_str))
        .ok_or_else(|| format!("layer #{index} ({}) has no name", esc(&class)))?
        .to_string();
    let raw_config = obj.get("config").unwrap_or(&Value::Null);
    let has_layers = raw_config.is_array() || raw_config.get("layers").is_some();
    let builtin = obj
        .get("module")
        .and_then(Value::as_str)
        .is_none_or(|m| m == "keras" || m.starts_with("keras.") || m.starts_with("tf_keras"));
    let nested = if MODEL_CLASSES.contains(&class.as_str()) && has_layers && builtin {
        let inner = parse_model(&class, raw_config, depth + 1)
            .map_err(|e| format!("nested model '{}': {e}", esc(&name)))?;
        Some(Box::new(inner))
    } else {
        None
    };
    let mut entry = LayerEntry::new(name, class, config);
    entry.module = obj
        .get("module")
        .and_then(Value::as_str)
        .map(str::to_string);
    entry.registered_name = obj
        .get("registered_name")
        .and_then(Value::as_str)
        .map(str::to_string);
    entry.trainable = entry
        .config
        .get("trainable")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    entry.nested = nested;
    Ok(entry)
}

fn parse_sequential(config: &Value, depth: usize) -> Result<ModelConfig, String> {
    // Keras <= 2.2 wrote the layer list as the whole config.
    let (layers_value, model_config) = match config {
        Value::Array(_) => (config, None),
        Value::Object(obj) => (
            obj.get("layers")
                .ok_or("the Sequential config has no 'layers'")?,
            Some(obj),
        ),
        _ => return Err("the Sequential config is not an object".into()),
    };
    let items = layers_value
        .as_array()
        .ok_or("the Sequential 'layers' is not a list")?;
    let mut layers = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        layers.push(layer_header(item, i, depth)?);
    }
    let name = model_config
        .and_then(|c| c.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("sequential")
        .to_string();
    if layers.iter().skip(1).any(LayerEntry::is_input) {
        return Err("an InputLayer appears after the first layer of a Sequential model".into());
    }
    if layers.first().is_some_and(LayerEntry::is_input) {
        layers[0].in_model_layers = false;
    } else {
        // No InputLayer: the input shape is on the first layer (Keras 2
        // `batch_input_shape`) or the model (`build_input_shape`).
        let first = layers.first().ok_or("the Sequential model has no layers")?;
        let shape = first
            .config
            .get("batch_input_shape")
            .or_else(|| first.config.get("batch_shape"))
            .or_else(|| model_config.and_then(|c| c.get("build_input_shape")))
            .filter(|v| !v.is_null())
            .cloned()
            .ok_or(
                "the Sequential model has no input shape (it was never built); build it or \
                 start it with keras.Input(shape)",
            )?;
        let dtype = first.config.get("dtype").cloned().unwrap_or(Value::Null);
        let input_name = format!("{}_input", first.name);
        let mut input_config = Map::new();
        input_config.insert("batch_input_shape".into(), shape);
        input_config.insert("name".into(), Value::String(input_name.clone()));
        if let Some(d) = policy_name(&dtype) {
            // The input takes the first layer's float dtype; integer inputs need an InputLayer.
            input_config.insert("dtype".into(), Value::String(d));
        }
        let mut input = LayerEntry::new(input_name, "InputLayer".into(), input_config);
        input.in_model_layers = false;
        layers.insert(0, input);
    }
    for i in 1..layers.len() {
        let previous = layers[i - 1].name.clone();
        layers[i].calls.push(Call {
            inputs: vec![TensorRef {
                layer: previous,
                node: 0,
                tensor: 0,
            }],
            ..Call::default()
        });
    }
    let first = layers.first().map(|l| l.name.clone()).unwrap_or_default();
    let last = layers.last().map(|l| l.name.clone()).unwrap_or_default();
    if layers.len() < 2 {
        return Err("the Sequential model has no layers".into());
    }
    Ok(ModelConfig {
        kind: ModelKind::Sequential,
        name,
        layers,
        inputs: vec![TensorRef {
            layer: first,
            node: 0,
            tensor: 0,
        }],
        outputs: vec![TensorRef {
            layer: last.clone(),
            node: 0,
            tensor: 0,
        }],
        output_names: vec![last],
        keras_version: None,
        ref_style: RefStyle::Own,
        units: Vec::new(),
    })
}

fn parse_functional(config: &Value, depth: usize) -> Result<ModelConfig, String> {
    let obj = config
        .as_object()
        .ok_or("the Functional config is not an object")?;
    let items = obj
        .get("layers")
        .and_then(Value::as_array)
        .ok_or("the Functional config has no 'layers' list")?;
    let mut layers = Vec::with_capacity(items.len());
    let mut keras2_form = false;
    for (i, item) in items.iter().enumerate() {
        let mut entry = layer_header(item, i, depth)?;
        let keras2_nodes = item
            .get("inbound_nodes")
            .and_then(Value::as_array)
            .is_some_and(|nodes| nodes.iter().any(Value::is_array));
        keras2_form |= keras2_nodes;
        let nodes = item.get("inbound_nodes").unwrap_or(&Value::Null);
        entry.calls =
            parse_inbound_nodes(nodes).map_err(|e| format!("layer '{}': {e}", esc(&entry.name)))?;
        layers.push(entry);
    }
    let inputs =
        parse_endpoints(obj.get("input_layers")).map_err(|e| format!("'input_layers': {e}"))?;
    let outputs =
        parse_endpoints(obj.get("output_layers")).map_err(|e| format!("'output_layers': {e}"))?;
    if inputs.is_empty() || outputs.is_empty() {
        return Err("the model has no inputs or no outputs".into());
    }
    Ok(ModelConfig {
        kind: ModelKind::Functional,
        name: obj
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("model")
            .to_string(),
        layers,
        inputs,
        output_names: outputs.iter().map(|r| r.layer.clone()).collect(),
        outputs,
        keras_version: None,
        ref_style: if keras2_form {
            RefStyle::Keras2
        } else {
            RefStyle::Keras3
        },
        units: Vec::new(),
    })
}

/// Names each layer's group in a Keras 3 weights file, as `saving_lib` does: after the
/// class in snake case, `_1`, `_2` for repeats, in the order of `model.layers`; a nested
/// model's layers below its own group.
fn assign_weight_paths(model: &mut ModelConfig, prefix: &str) {
    let mut used: std::collections::HashMap<String, usize> = Default::default();
    for layer in &mut model.layers {
        if !layer.in_model_layers {
            continue;
        }
        let base = to_snake_case(python_class(&layer.class));
        let name = match used.get_mut(&base) {
            Some(n) => {
                *n += 1;
                format!("{base}_{n}")
            }
            None => {
                used.insert(base.clone(), 0);
                base
            }
        };
        let path = format!("{prefix}layers/{name}");
        if let Some(nested) = &mut layer.nested {
            assign_weight_paths(nested, &format!("{path}/"));
        }
        layer.weights_path = Some(path);
    }
}

fn index(value: &Value, what: &str) -> Result<usize, String> {
    value
        .as_u64()
        .and_then(|v| usize::try_from(v).ok())
        .ok_or_else(|| format!("{what} must be a non-negative integer, got {value}"))
}

/// `[name, node, tensor]` (a trailing kwargs object is allowed and returned).
fn parse_history(value: &Value) -> Result<(TensorRef, Option<&Value>), String> {
    let items = value
        .as_array()
        .ok_or_else(|| format!("expected [layer, node, tensor], got {value}"))?;
    let (Some(name), Some(node), Some(tensor)) = (items.first(), items.get(1), items.get(2)) else {
        return Err(format!("expected [layer, node, tensor], got {value}"));
    };
    let name = name
        .as_str()
        .ok_or_else(|| format!("layer name must be a string, got {name}"))?;
    Ok((
        TensorRef {
            layer: name.to_string(),
            node: index(node, "node index")?,
            tensor: index(tensor, "tensor index")?,
        },
        items.get(3),
    ))
}

fn parse_endpoints(value: Option<&Value>) -> Result<Vec<TensorRef>, String> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => {
            if items.first().is_some_and(Value::is_string) {
                return Ok(vec![parse_history(value.unwrap_or(&Value::Null))?.0]);
            }
            items
                .iter()
                .map(|item| parse_history(item).map(|(r, _)| r))
                .collect()
        }
        // Dict inputs/outputs: Keras flattens them in sorted key order.
        Some(Value::Object(map)) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            keys.into_iter()
                .map(|k| parse_history(&map[k]).map(|(r, _)| r))
                .collect()
        }
        Some(other) => Err(format!("expected a list, got {other}")),
    }
}

fn parse_inbound_nodes(value: &Value) -> Result<Vec<Call>, String> {
    let nodes = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(nodes) => nodes,
        other => return Err(format!("'inbound_nodes' must be a list, got {other}")),
    };
    nodes
        .iter()
        .map(|node| match node {
            Value::Object(obj) => keras3_node(obj),
            // A tf.keras TF op layer called on one tensor writes the tensor reference
            // itself as the node: `["dense", 0, 0, {kwargs}]`.
            Value::Array(items) if items.first().is_some_and(Value::is_string) => {
                keras2_node(std::slice::from_ref(node))
            }
            Value::Array(items) => keras2_node(items),
            other => Err(format!(
                "an inbound node must be a list or object, got {other}"
            )),
        })
        .collect()
}

fn keras3_node(obj: &Map<String, Value>) -> Result<Call, String> {
    let mut call = Call::default();
    collect_tensors(obj.get("args").unwrap_or(&Value::Null), &mut call.inputs, 0)?;
    if let Some(Value::Object(kwargs)) = obj.get("kwargs") {
        for (key, value) in kwargs {
            if is_keras_tensor(value) {
                let mut found = Vec::new();
                collect_tensors(value, &mut found, 0)?;
                add_keyword_tensor(&mut call, key, found);
            } else if key == LIST_KEYWORD && is_tensor_list(value) {
                // A list of tensors (`initial_state=[h, c]`): one keyword per tensor.
                let mut found = Vec::new();
                collect_tensors(value, &mut found, 0)?;
                add_keyword_tensors(&mut call, key, found);
            } else {
                read_kwarg(&mut call, key, value, contains_tensor(value, 0));
            }
        }
    }
    let refs = call.inputs.clone();
    if let Some(Value::Array(args)) = obj.get("args") {
        call.args = args
            .iter()
            .map(|a| keras3_placeholders(a, &refs, 0))
            .collect();
    }
    if let Some(Value::Object(kwargs)) = obj.get("kwargs") {
        call.arg_kwargs = kwargs
            .iter()
            .map(|(k, v)| (k.clone(), keras3_placeholders(v, &refs, 0)))
            .collect();
    }
    Ok(call)
}

/// A placeholder for the call tensor `r` (every tensor of the call is in `refs`; a
/// tensor used twice may point at either use, which is the same tensor).
fn placeholder(r: &TensorRef, refs: &[TensorRef]) -> Value {
    let k = refs.iter().position(|t| t == r).unwrap_or(usize::MAX);
    let mut map = Map::new();
    map.insert(TENSOR_KEY.into(), Value::from(k));
    Value::Object(map)
}

/// A Keras 3 argument with its `__keras_tensor__`s replaced by placeholders and
/// `__tuple__`s by lists (the traversal of [`collect_tensors`]).
fn keras3_placeholders(value: &Value, refs: &[TensorRef], depth: usize) -> Value {
    if depth > 32 {
        return Value::Null;
    }
    match value {
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| keras3_placeholders(v, refs, depth + 1))
                .collect(),
        ),
        Value::Object(obj) if is_keras_tensor(value) => {
            match obj
                .get("config")
                .and_then(|c| c.get("keras_history"))
                .and_then(|h| parse_history(h).ok())
            {
                Some((r, _)) => placeholder(&r, refs),
                None => Value::Null,
            }
        }
        Value::Object(obj)
            if obj.get("class_name").and_then(Value::as_str) == Some("__tuple__") =>
        {
            match obj.get("config").and_then(|c| c.get("value")) {
                Some(v) => keras3_placeholders(v, refs, depth + 1),
                None => Value::Null,
            }
        }
        other => other.clone(),
    }
}

/// A Keras 2 argument with its `[layer, node, tensor]` references replaced by
/// placeholders.
fn keras2_placeholders(value: &Value, refs: &[TensorRef], depth: usize) -> Value {
    if depth > 32 {
        return Value::Null;
    }
    if let Some(r) = keras2_tensor(value) {
        return placeholder(&r, refs);
    }
    match value {
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| keras2_placeholders(v, refs, depth + 1))
                .collect(),
        ),
        Value::Object(obj) => Value::Object(
            obj.iter()
                .map(|(k, v)| (k.clone(), keras2_placeholders(v, refs, depth + 1)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// tf.keras marks a TF op layer's first argument that is not a tensor (`2.0 * x`) as
/// `["_CONSTANT_VALUE", -1, value, {kwargs}]`.
const CONSTANT_VALUE: &str = "_CONSTANT_VALUE";

fn keras2_constant(item: &Value) -> Option<(&Value, Option<&Value>)> {
    match item.as_array()?.as_slice() {
        [Value::String(tag), _, value, rest @ ..] if tag == CONSTANT_VALUE => {
            Some((value, rest.first()))
        }
        _ => None,
    }
}

fn keras2_node(items: &[Value]) -> Result<Call, String> {
    let mut call = Call::default();
    let mut keyword_tensors = Vec::new();
    let mut positional = Vec::with_capacity(items.len());
    for item in items {
        let (tensor, kwargs) = match keras2_constant(item) {
            Some((value, kwargs)) => {
                positional.push(Err(value.clone()));
                (None, kwargs)
            }
            None => {
                let (tensor, kwargs) = parse_history(item)?;
                positional.push(Ok(tensor.clone()));
                (Some(tensor), kwargs)
            }
        };
        call.inputs.extend(tensor);
        let Some(Value::Object(kwargs)) = kwargs else {
            continue;
        };
        // A list input repeats the call's keyword arguments on every element.
        for (key, value) in kwargs {
            let list = value.as_array().filter(|items| {
                !items.is_empty() && items.iter().all(|v| keras2_tensor(v).is_some())
            });
            match (keras2_tensor(value), list) {
                (Some(tensor), _) if key != "mask" => {
                    if !keyword_tensors.iter().any(|(k, _)| k == key) {
                        keyword_tensors.push((key.clone(), vec![tensor]));
                    }
                }
                (None, Some(items)) if key == LIST_KEYWORD => {
                    if !keyword_tensors.iter().any(|(k, _)| k == key) {
                        let tensors = items.iter().filter_map(keras2_tensor).collect();
                        keyword_tensors.push((key.clone(), tensors));
                    }
                }
                _ => {
                    let tensors = keras2_tensor(value).is_some() || contains_tensor(value, 0);
                    read_kwarg(&mut call, key, value, tensors);
                }
            }
        }
    }
    for (key, tensors) in keyword_tensors {
        if tensors.len() == 1 {
            add_keyword_tensor(&mut call, &key, tensors);
        } else {
            add_keyword_tensors(&mut call, &key, tensors);
        }
    }
    // As a TF op layer reads them: one positional argument, a list when the call was
    // on several tensors (`tf.concat([a, b], axis)`), and the first element's kwargs.
    let refs = call.inputs.clone();
    let args: Vec<Value> = positional
        .into_iter()
        .map(|p| match p {
            Ok(r) => placeholder(&r, &refs),
            Err(value) => value,
        })
        .collect();
    call.args = match <[Value; 1]>::try_from(args) {
        Ok([one]) => vec![one],
        Err(args) => vec![Value::Array(args)],
    };
    let first_kwargs = items.first().and_then(|i| match keras2_constant(i) {
        Some((_, kwargs)) => kwargs,
        None => i.get(3),
    });
    if let Some(Value::Object(kwargs)) = first_kwargs {
        call.arg_kwargs = kwargs
            .iter()
            .map(|(k, v)| (k.clone(), keras2_placeholders(v, &refs, 0)))
            .collect();
    }
    Ok(call)
}

/// A Keras 2 tensor in keyword arguments: `[layer, node, tensor]`.
fn keras2_tensor(value: &Value) -> Option<TensorRef> {
    match value.as_array()?.as_slice() {
        [Value::String(_), Value::Number(_), Value::Number(_)] => {
            parse_history(value).ok().map(|(r, _)| r)
        }
        _ => None,
    }
}

fn add_keyword_tensor(call: &mut Call, key: &str, tensors: Vec<TensorRef>) {
    match <[TensorRef; 1]>::try_from(tensors) {
        Ok([tensor]) if !call.keywords.iter().any(|k| k == key) => {
            call.inputs.push(tensor);
            call.keywords.push(key.to_string());
        }
        _ => {
            call.problem.get_or_insert_with(|| {
                format!(
                    "is called with a tensor as keyword argument '{}', which is not supported",
                    esc(key)
                )
            });
        }
    }
}

/// The one keyword argument read as a list of tensors (a recurrent layer's states).
const LIST_KEYWORD: &str = "initial_state";

/// A keyword argument holding a list of tensors (`initial_state=[h, c]`): each tensor
/// is one more keyword of that name, consecutive.
fn add_keyword_tensors(call: &mut Call, key: &str, tensors: Vec<TensorRef>) {
    if call.keywords.iter().any(|k| k == key) {
        add_keyword_tensor(call, key, Vec::new());
        return;
    }
    for tensor in tensors {
        call.inputs.push(tensor);
        call.keywords.push(key.to_string());
    }
}

/// A non-empty list of `__keras_tensor__`s.
fn is_tensor_list(value: &Value) -> bool {
    value
        .as_array()
        .is_some_and(|items| !items.is_empty() && items.iter().all(is_keras_tensor))
}

/// The problem with a call that records `training=True`.
pub(crate) const TRAINING_TRUE: &str =
    "is called with training=True, so it is random at inference; not supported";

/// One non-tensor keyword argument (or one holding tensors in a structure, a problem).
fn read_kwarg(call: &mut Call, key: &str, value: &Value, holds_tensors: bool) {
    let problem = if holds_tensors {
        Some(format!(
            "is called with a tensor as keyword argument '{}', which is not supported",
            esc(key)
        ))
    } else {
        match (key, value) {
            (_, Value::Null) => None,
            ("training", Value::Bool(false)) => None,
            ("training", Value::Bool(true)) => {
                call.training = true;
                None
            }
            // No mask: Keras 3 writes `[null, null]` for a nested model called on a list.
            ("mask", mask) if is_no_mask(mask) => None,
            _ => {
                if !call.kwargs.contains_key(key) {
                    call.kwargs.insert(key.to_string(), value.clone());
                }
                None
            }
        }
    };
    if call.problem.is_none() {
        call.problem = problem;
    }
}

fn is_keras_tensor(value: &Value) -> bool {
    value.get("class_name").and_then(Value::as_str) == Some("__keras_tensor__")
}

/// Collects the `__keras_tensor__` references in call arguments, in order.
fn collect_tensors(value: &Value, out: &mut Vec<TensorRef>, depth: usize) -> Result<(), String> {
    if depth > 32 {
        return Err("call arguments are nested too deeply".into());
    }
    match value {
        Value::Array(items) => {
            for item in items {
                collect_tensors(item, out, depth + 1)?;
            }
        }
        Value::Object(obj) if is_keras_tensor(value) => {
            let history = obj
                .get("config")
                .and_then(|c| c.get("keras_history"))
                .ok_or("a tensor argument has no 'keras_history'")?;
            out.push(parse_history(history)?.0);
        }
        Value::Object(obj)
            if obj.get("class_name").and_then(Value::as_str) == Some("__tuple__") =>
        {
            if let Some(v) = obj.get("config").and_then(|c| c.get("value")) {
                collect_tensors(v, out, depth + 1)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn contains_tensor(value: &Value, depth: usize) -> bool {
    if depth > 32 {
        return true;
    }
    match value {
        Value::Array(items) => items.iter().any(|v| contains_tensor(v, depth + 1)),
        Value::Object(obj) => {
            is_keras_tensor(value) || obj.values().any(|v| contains_tensor(v, depth + 1))
        }
        _ => false,
    }
}

/// A `mask` keyword argument that carries no mask: a boolean, null, or a list of those.
fn is_no_mask(value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(_) => true,
        Value::Array(items) => items
            .iter()
            .all(|v| matches!(v, Value::Null | Value::Bool(_))),
        _ => false,
    }
}

/// The dtype policy name of a layer's `dtype` option: a string (`"float32"`,
/// `"mixed_float16"`), or a policy object (`{"class_name": "DTypePolicy", "config":
/// {"name": ...}}`, Keras 2 `{"class_name": "Policy", ...}`).
pub(crate) fn policy_name(dtype: &Value) -> Option<String> {
    match dtype {
        Value::String(s) => Some(s.clone()),
        Value::Object(obj) => {
            let config = obj.get("config")?;
            if let Some(name) = config.get("name").and_then(Value::as_str) {
                return Some(name.to_string());
            }
            // Keras 3 quantized policies: `{"mode": "int8", "source_name": "float32"}`.
            let mode = config.get("mode").and_then(Value::as_str)?;
            let source = config.get("source_name").and_then(Value::as_str)?;
            Some(format!("{mode}_from_{source}"))
        }
        _ => None,
    }
}

/// Whether a dtype policy object or name describes a quantized layer.
pub(crate) fn is_quantized_policy(dtype: &Value) -> bool {
    let class_quantized = dtype
        .get("class_name")
        .and_then(Value::as_str)
        .is_some_and(|c| c.contains("Quantized"));
    let name_quantized = policy_name(dtype).is_some_and(|n| {
        ["int8", "int4", "float8", "gptq", "awq", "fp8"]
            .iter()
            .any(|q| n.contains(q))
    });
    class_quantized || name_quantized
}

/// The name Keras exports a class under, for the classes whose Python name a legacy
/// `.h5` config writes instead (Keras 3 `GroupedQueryAttention`).
fn canonical_class(class: &str) -> &str {
    match class {
        "GroupedQueryAttention" => "GroupQueryAttention",
        other => other,
    }
}

/// The Python class behind a config's `class_name`, where Keras exports a class under
/// another name: `saving_lib` names weight groups after the Python class.
fn python_class(class: &str) -> &str {
    match class {
        "GroupQueryAttention" => "GroupedQueryAttention",
        other => other,
    }
}

/// `"snake_case"` of a class name, as Keras's `naming.to_snake_case` does:
/// drop non-word characters, then `(.)([A-Z][a-z]+)` → `\1_\2`, then
/// `([a-z])([A-Z])` → `\1_\2`, then lowercase.
pub(crate) fn to_snake_case(name: &str) -> String {
    let chars: Vec<char> = name
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    // Pass 1: `(.)([A-Z][a-z]+)`.
    let mut pass1 = Vec::with_capacity(chars.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        let upper_next = chars.get(i + 1).is_some_and(char::is_ascii_uppercase);
        let lower_after = chars.get(i + 2).is_some_and(char::is_ascii_lowercase);
        if upper_next && lower_after {
            let mut end = i + 2;
            while chars.get(end).is_some_and(char::is_ascii_lowercase) {
                end += 1;
            }
            pass1.push(chars[i]);
            pass1.push('_');
            pass1.extend_from_slice(&chars[i + 1..end]);
            i = end;
        } else {
            pass1.push(chars[i]);
            i += 1;
        }
    }
    // Pass 2: `([a-z])([A-Z])`.
    let mut out = String::with_capacity(pass1.len() + 8);
    let mut i = 0;
    while i < pass1.len() {
        let c = pass1[i];
        if c.is_ascii_lowercase() && pass1.get(i + 1).is_some_and(char::is_ascii_uppercase) {
            out.push(c);
            out.push('_');
            out.push(pass1[i + 1]);
            i += 2;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_matches_keras() {
        for (class, snake) in [
            ("Dense", "dense"),
            ("Conv2D", "conv2d"),
            ("BatchNormalization", "batch_normalization"),
            ("PReLU", "p_re_lu"),
            ("LeakyReLU", "leaky_re_lu"),
            ("ReLU", "re_lu"),
            ("InputLayer", "input_layer"),
            ("ELU", "elu"),
            ("GRU", "gru"),
            ("SpatialDropout1D", "spatial_dropout1d"),
            ("MultiHeadAttention", "multi_head_attention"),
            ("Conv2DTranspose", "conv2d_transpose"),
            ("DepthwiseConv2D", "depthwise_conv2d"),
            ("GlobalAveragePooling2D", "global_average_pooling2d"),
            ("UpSampling2D", "up_sampling2d"),
            ("ZeroPadding2D", "zero_padding2d"),
            ("TimeDistributed", "time_distributed"),
            ("LSTM", "lstm"),
            ("Functional", "functional"),
            ("ActivityRegularization", "activity_regularization"),
            ("ConvLSTM2D", "conv_lstm2d"),
        ] {
            assert_eq!(to_snake_case(class), snake, "{class}");
        }
        // Exported under another name than its Python class.
        assert_eq!(
            to_snake_case(python_class("GroupQueryAttention")),
            "grouped_query_attention"
        );
    }

    #[test]
    fn keyword_tensors_and_kwargs_of_calls() {
        let tensor = |name: &str| {
            serde_json::json!({"class_name": "__keras_tensor__",
                "config": {"keras_history": [name, 0, 0]}})
        };
        let node = serde_json::json!({"args": [tensor("q")],
            "kwargs": {"value": tensor("v"), "key": tensor("k"), "use_causal_mask": true,
                       "training": false, "attention_mask": [tensor("m")]}});
        let call = keras3_node(node.as_object().unwrap()).unwrap();
        // Positional first, then keyword tensors, each named.
        assert_eq!(call.inputs.len(), 3);
        assert_eq!(call.inputs[0].layer, "q");
        for (r, key) in call.inputs[1..].iter().zip(&call.keywords) {
            assert_eq!(r.layer, if key == "value" { "v" } else { "k" });
        }
        assert_eq!(call.keywords.len(), 2);
        assert_eq!(call.kwargs.get("use_causal_mask"), Some(&Value::Bool(true)));
        assert!(call
            .problem
            .as_deref()
            .is_some_and(|p| p.contains("'attention_mask'")));

        // Keras 2: tensors in kwargs are [layer, node, tensor]; list inputs repeat kwargs.
        let items: Vec<Value> = serde_json::from_str(
            r#"[["q", 0, 0, {"value": ["v", 0, 0], "use_causal_mask": true}]]"#,
        )
        .unwrap();
        let call = keras2_node(&items).unwrap();
        assert_eq!(call.inputs.len(), 2);
        assert_eq!(call.inputs[1].layer, "v");
        assert_eq!(call.keywords, ["value"]);
        assert_eq!(call.kwargs.len(), 1);
        let items: Vec<Value> = serde_json::from_str(
            r#"[["q", 0, 0, {"use_causal_mask": true}], ["v", 0, 0, {"use_causal_mask": true}]]"#,
        )
        .unwrap();
        let call = keras2_node(&items).unwrap();
        assert_eq!(call.inputs.len(), 2);
        assert!(call.keywords.is_empty() && call.problem.is_none());

        // `initial_state=[h, c]`: one keyword per tensor, in order (Keras 3 and 2).
        let node = serde_json::json!({"args": [tensor("x")],
            "kwargs": {"initial_state": [tensor("h"), tensor("c")]}});
        let call = keras3_node(node.as_object().unwrap()).unwrap();
        let layers: Vec<&str> = call.inputs.iter().map(|r| r.layer.as_str()).collect();
        assert_eq!(layers, ["x", "h", "c"]);
        assert_eq!(call.keywords, ["initial_state", "initial_state"]);
        assert!(call.problem.is_none());
        let items: Vec<Value> =
            serde_json::from_str(r#"[["x", 0, 0, {"initial_state": [["h", 0, 1], ["h", 0, 2]]}]]"#)
                .unwrap();
        let call = keras2_node(&items).unwrap();
        assert_eq!(call.inputs.len(), 3);
        assert_eq!(call.inputs[2].tensor, 2);
        assert_eq!(call.keywords.len(), 2);
    }

    #[test]
    fn versions() {
        assert_eq!(KerasVersion::parse("3.15.1").unwrap().major, 3);
        assert_eq!(KerasVersion::parse("2.2.4-tf").unwrap().major, 2);
        assert!(KerasVersion::parse("1.2.2").is_err());
        assert!(KerasVersion::parse("abc").is_err());
    }
}
