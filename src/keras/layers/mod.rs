//! Frontend: Keras layers (class + config + weights) to IR ops. One file per layer family,
//! each a [`LayerKind`] listed once in the [`registry`] (class names, parser, weight count,
//! mask policy). Every config option is
//! either honoured, ignored because it only matters for training (initializers,
//! regularizers, constraints, dropout rates), or rejected with a message naming it.
//!
//! A call usually becomes one IR node named after the layer; a layer may instead make a
//! few [`Step`]s (a separable convolution's depthwise part, transposes around a
//! `channels_first` layer, see `spatial`), named `LAYER/suffix`, and take several inputs
//! (merges, `Concatenate`, `Dot`).

mod activations;
mod adaptive_pooling;
mod attention;
mod batchnorm;
mod conv;
mod conv_lstm;
mod conv_transpose;
mod dense;
mod einsum_dense;
mod embedding;
mod identity;
mod layer_norm;
mod layer_scale;
mod masking;
mod merge;
mod normalization;
mod padding;
mod params;
mod pooling;
mod prelu;
mod preprocessing;
mod recurrent;
pub(crate) mod registry;
mod rescaling;
mod reshape;
mod resizing;
mod reversible_embedding;
mod spatial;
mod time_distributed;
mod upsampling;

use serde_json::{Map, Value};

use super::config::{self, KerasVersion, LayerEntry};
use crate::error::escape_for_message as esc;
use crate::ir::{Op, Weights};

/// A parsed layer: what it needs from the file and how each call becomes an op.
pub(crate) trait LayerKind: std::fmt::Debug {
    /// The names of the weights Keras stores for this layer, in storage order
    /// (`layer.weights` / `get_weights()` / `vars/<i>`).
    fn weight_names(&self) -> Vec<&'static str>;

    /// Where a Keras 3 weights file keeps this layer's weights, relative to its group, in
    /// [`LayerKind::weight_names`] order: `""` is the layer's own `vars`; a wrapper names
    /// its sub-objects (`cell`, `forward_layer/cell`, `query_dense`, ...). A group may list
    /// alternatives separated by `|`, tried in turn (`query_dense|_query_dense`: Keras
    /// 3.0.0-3.0.2 and tf_keras kept the leading underscore).
    fn weight_groups(&self) -> Vec<String> {
        vec![String::new()]
    }

    /// How many of [`LayerKind::weight_names`] (a prefix) are trainable; the rest are
    /// statistics such as BatchNormalization's moving mean and variance.
    fn trainable_weights(&self) -> usize {
        self.weight_names().len()
    }

    /// The op for one call on an input of `input` shape (batch excluded), with the
    /// layer's weights (already checked to be `weight_names().len()` tensors). Layers that
    /// are one op on one input implement this; the others implement [`LayerKind::steps`].
    fn build(&self, input: &[usize], weights: &[Weights]) -> Result<Op, String> {
        let _ = (input, weights);
        Err("this layer takes several inputs or makes several nodes".into())
    }

    /// The nodes for one call on inputs of the given shapes (batch excluded, in call
    /// order). The last step's output is the call's output, unless steps are marked as
    /// the call's outputs ([`Step::output`]: `return_state`, ...).
    fn steps(&self, inputs: &[&[usize]], weights: &[Weights]) -> Result<Vec<Step>, String> {
        let input = single(inputs)?;
        Ok(vec![Step::new(
            None,
            self.build(input, weights)?,
            vec![Source::Input(0)],
        )])
    }

    /// The names of the tensor arguments of the layer's `call`, in signature order, for
    /// calls that pass some by keyword (`mha(q, value=v, key=k)`); empty when the layer
    /// takes no tensor by keyword.
    fn tensor_arguments(&self) -> &'static [&'static str] {
        &[]
    }

    /// Whether the layer makes a Keras mask for its output (Embedding `mask_zero`,
    /// Masking), and where it comes from.
    fn mask_source(&self) -> Option<MaskSource> {
        None
    }

    /// The nodes for a call whose sequence input carries a Keras mask, given as one more
    /// input after the call's tensors (a `[steps]` tensor of 1.0 / 0.0); `None` when the
    /// layer does not consume masks (recurrent layers do).
    fn masked_steps(
        &self,
        inputs: &[&[usize]],
        weights: &[Weights],
    ) -> Option<Result<Vec<Step>, String>> {
        let _ = (inputs, weights);
        None
    }

    /// The nodes for a call some of whose tensors carry Keras masks, for layers that read
    /// each input's mask (MultiHeadAttention): the call's tensors are followed by one
    /// `[steps]` mask per `true` in `masked` (one flag per call tensor). `None` when the
    /// layer does not read input masks. The first output carries the first input's mask.
    fn input_masked_steps(
        &self,
        inputs: &[&[usize]],
        weights: &[Weights],
        kwargs: &Map<String, Value>,
        masked: &[bool],
    ) -> Option<Result<Vec<Step>, String>> {
        let _ = (inputs, weights, kwargs, masked);
        None
    }

    /// Whether a Keras 3 call clears the Keras masks of its input tensors once it has read
    /// them (MultiHeadAttention does), for layers that implement
    /// [`LayerKind::input_masked_steps`].
    fn clears_input_masks(&self) -> bool {
        false
    }

    /// Whether the layer passes a Keras mask on unchanged although its class's registry
    /// row does not say so (a TimeDistributed whose inner layer does).
    fn passes_mask(&self) -> bool {
        false
    }

    /// How many of the call's first outputs carry a consumed mask onward (a recurrent
    /// layer's sequences).
    fn mask_outputs(&self) -> usize {
        0
    }

    /// For an operation node (see [`crate::keras::ops`]): the nodes for one call from its
    /// arguments as written (tensors as placeholders indexing `inputs`, see
    /// [`config::Call::args`]). `None` for layers.
    fn operation_steps(
        &self,
        inputs: &[&[usize]],
        args: &[Value],
        kwargs: &Map<String, Value>,
    ) -> Option<Result<Vec<Step>, String>> {
        let _ = (inputs, args, kwargs);
        None
    }

    /// The nodes for one call that also passes keyword arguments other than tensors,
    /// `training` and empty masks (`use_causal_mask=True`). By default any is rejected.
    fn call_steps(
        &self,
        inputs: &[&[usize]],
        weights: &[Weights],
        kwargs: &Map<String, Value>,
    ) -> Result<Vec<Step>, String> {
        if let Some((key, value)) = kwargs.iter().next() {
            return Err(format!(
                "is called with keyword argument '{}'={}, which is not supported",
                esc(key),
                esc(&value.to_string())
            ));
        }
        self.steps(inputs, weights)
    }
}

/// Puts a call's tensors in the order of the layer's `call` signature: `positional`
/// tensors first, then those passed by keyword, by `names` (the signature's tensor
/// arguments). Returns, for each argument in order, the index into the call's tensors.
pub(crate) fn order_arguments(
    names: &[&str],
    positional: usize,
    keywords: &[String],
) -> Result<Vec<usize>, String> {
    if keywords.is_empty() {
        return Ok((0..positional).collect());
    }
    // Each argument's tensors: one, or several for a list argument (`initial_state=[h,
    // c]`, whose tensors come as consecutive keywords of the same name).
    let mut slots: Vec<Vec<usize>> = vec![Vec::new(); names.len().max(positional)];
    for (k, slot) in slots.iter_mut().enumerate().take(positional) {
        slot.push(k);
    }
    for (j, key) in keywords.iter().enumerate() {
        let Some(at) = names.iter().position(|n| n == key) else {
            return Err(format!(
                "is called with a tensor as keyword argument '{}', which is not supported",
                esc(key)
            ));
        };
        let continues = j > 0 && keywords[j - 1] == *key;
        if !slots[at].is_empty() && !continues {
            return Err(format!(
                "is given argument '{}' both by position and by keyword",
                esc(key)
            ));
        }
        slots[at].push(positional + j);
    }
    let given = slots.iter().take_while(|s| !s.is_empty()).count();
    if slots[given..].iter().any(|s| !s.is_empty()) {
        return Err(format!(
            "is called without its argument '{}' but with later ones",
            esc(names.get(given).copied().unwrap_or("?"))
        ));
    }
    Ok(slots.into_iter().flatten().collect())
}

/// Whether Keras 3 writes `training=True` in the calls of this layer class by itself: the
/// image-augmentation layers' `call(data, training=True)` default, recorded when a
/// functional model is built. `predict` passes `training=False`, which overrides it.
pub(crate) fn records_training_default(class: &str) -> bool {
    // Resizing and CenterCrop do not read it; RandomCrop computes its inference form.
    identity::is_augmentation(class) || matches!(class, "Resizing" | "CenterCrop" | "RandomCrop")
}

/// Where a layer's output mask comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MaskSource {
    /// `input != 0` on the call's input (Embedding `mask_zero`), made when consumed.
    NonZeroInput,
    /// The output of this step of the call (Masking).
    Step(usize),
}

/// Where a step's input comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// The call's `k`-th input tensor.
    Input(usize),
    /// The output of an earlier step of the same call.
    Step(usize),
}

/// One node of a layer call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Step {
    /// `None` for the node that keeps the layer's name and carries its parameter count
    /// (one per call); otherwise the node is named `LAYER/suffix`.
    pub suffix: Option<String>,
    pub op: Op,
    pub inputs: Vec<Source>,
    /// `Some(k)` when this step's tensor is the call's output #k (keras_history's tensor
    /// index). When no step is marked, the last step's is the call's only output.
    pub output: Option<usize>,
}

impl Step {
    pub fn new(suffix: Option<&str>, op: Op, inputs: Vec<Source>) -> Self {
        Step {
            suffix: suffix.map(str::to_string),
            op,
            inputs,
            output: None,
        }
    }
}

/// Steps in a chain: the first reads the call's `inputs` inputs, each later one the step
/// before it.
pub(crate) fn chain(inputs: usize, ops: Vec<(Option<&str>, Op)>) -> Vec<Step> {
    ops.into_iter()
        .enumerate()
        .map(|(i, (suffix, op))| {
            let sources = if i == 0 {
                (0..inputs).map(Source::Input).collect()
            } else {
                vec![Source::Step(i - 1)]
            };
            Step::new(suffix, op, sources)
        })
        .collect()
}

/// The only input of a single-input layer.
pub(crate) fn single<'a>(inputs: &[&'a [usize]]) -> Result<&'a [usize], String> {
    match inputs {
        [input] => Ok(input),
        _ => Err(format!(
            "is called on {} tensors; this layer takes one",
            inputs.len()
        )),
    }
}

/// Config keys every layer may carry that do not change inference.
const BASE_KEYS: &[&str] = &[
    "name",
    "trainable",
    "dtype",
    "batch_input_shape",
    "batch_shape",
    "input_shape",
    "input_dim",
    "build_config",
    "activity_regularizer",
];

/// Reads a layer's config options, remembering which were looked at, so that anything
/// left over is reported as unsupported.
pub(crate) struct Options<'a> {
    map: &'a Map<String, Value>,
    used: std::collections::BTreeSet<&'a str>,
    pub problems: Vec<String>,
}

impl<'a> Options<'a> {
    pub fn new(map: &'a Map<String, Value>) -> Self {
        let mut options = Options {
            map,
            used: Default::default(),
            problems: Vec::new(),
        };
        options.ignore(BASE_KEYS);
        options
    }

    /// Marks training-only options as handled.
    pub fn ignore(&mut self, keys: &[&str]) {
        for key in keys {
            if let Some((k, _)) = self.map.get_key_value(*key) {
                self.used.insert(k.as_str());
            }
        }
    }

    /// The option's value; `null` counts as absent.
    pub fn get(&mut self, key: &str) -> Option<&'a Value> {
        let (k, v) = self.map.get_key_value(key)?;
        self.used.insert(k.as_str());
        (!v.is_null()).then_some(v)
    }

    pub fn bool(&mut self, key: &str, default: bool) -> bool {
        match self.get(key) {
            None => default,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                self.problems
                    .push(format!("option '{key}' must be true or false, got {other}"));
                default
            }
        }
    }

    pub fn f64(&mut self, key: &str, default: f64) -> f64 {
        match self.get(key) {
            None => default,
            Some(v) => match v.as_f64() {
                Some(f) => f,
                None => {
                    self.problems
                        .push(format!("option '{key}' must be a number, got {v}"));
                    default
                }
            },
        }
    }

    pub fn int(&mut self, key: &str) -> Option<i64> {
        let v = self.get(key)?;
        match v.as_i64() {
            Some(i) => Some(i),
            None => {
                self.problems
                    .push(format!("option '{key}' must be an integer, got {v}"));
                None
            }
        }
    }

    /// An integer or a list of integers (`axis`, `shared_axes`); `None` when absent.
    pub fn int_list(&mut self, key: &str) -> Option<Vec<i64>> {
        let v = self.get(key)?;
        let items: Vec<&Value> = match v {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        let ints: Option<Vec<i64>> = items.iter().map(|i| i.as_i64()).collect();
        if ints.is_none() {
            self.problems
                .push(format!("option '{key}' must be integers, got {v}"));
        }
        ints
    }

    /// Rejects an option unless it is absent, null or equal to `allowed`.
    pub fn only(&mut self, key: &str, allowed: &Value, why: &str) {
        if let Some(v) = self.get(key) {
            if v != allowed {
                self.problems.push(format!(
                    "option '{key}'={} is not supported{why}",
                    esc(&v.to_string())
                ));
            }
        }
    }

    /// Problems, including options that nothing looked at.
    pub fn finish(mut self) -> Vec<String> {
        for (key, value) in self.map {
            if !self.used.contains(key.as_str()) && !value.is_null() {
                self.problems.push(format!(
                    "option '{}'={} is not supported",
                    esc(key),
                    esc(&value.to_string())
                ));
            }
        }
        self.problems
    }
}

/// Parses a (non-input) layer entry, or lists everything wrong with it.
pub(crate) fn parse(
    entry: &LayerEntry,
    version: KerasVersion,
) -> Result<Box<dyn LayerKind>, Vec<String>> {
    if let Some(problem) = custom_problem(entry) {
        return Err(vec![problem]);
    }
    let mut problems = dtype_problems(&entry.config);
    if !problems.is_empty() {
        return Err(problems);
    }
    // Keras 3 writes the masks its layers pass as these operations (see `masking`).
    let mask_op = matches!(
        entry.class.as_str(),
        "NotEqual" | "Any" | "LogicalOr" | "LogicalAnd"
    );
    if !mask_op && super::ops::is_operation(entry, version) {
        return super::ops::parse(entry, version);
    }
    let Some(row) = registry::find(&entry.class) else {
        return Err(vec![unsupported_class(entry)]);
    };
    let mut options = Options::new(&entry.config);
    let kind = match row.parse {
        registry::Parse::Layer(parse) => parse(entry, &mut options, version),
        registry::Parse::Refused(why) => return Err(vec![why(&entry.class)]),
    };
    problems.extend(options.finish());
    match kind {
        Some(kind) if problems.is_empty() => Ok(kind),
        _ => {
            if problems.is_empty() {
                problems.push("invalid configuration".into());
            }
            Err(problems)
        }
    }
}

/// Why a class that is not in the registry is refused.
fn unsupported_class(entry: &LayerEntry) -> String {
    let next_step = match entry.module {
        // Keras 2 files before 2.13 record no module, custom layers included.
        None => format!(
            "; the file records no module for it, so it may be a custom layer: {}",
            REPLACE_CUSTOM_LAYER
        ),
        Some(_) => "; the README lists the supported layers: rebuild the model with \
                    those, or ask for this one in an issue"
            .to_string(),
    };
    format!("unsupported layer class '{}'{next_step}", esc(&entry.class))
}

/// The way forward from a custom layer, whose computation is Python code.
const REPLACE_CUSTOM_LAYER: &str = "replace it with built-in Keras layers or `keras.ops` calls \
     on tensors (saved as operations, which keras2src reads), copy the weights over with \
     `set_weights`, and save the model again";

/// A custom (user-registered or user-module) class, which cannot be converted.
fn custom_problem(entry: &LayerEntry) -> Option<String> {
    let registered = entry
        .registered_name
        .as_deref()
        .filter(|r| *r != entry.class && !r.is_empty());
    let keras_module = entry.module.as_deref().is_none_or(|module| {
        module == "keras"
            || module.starts_with("keras.")
            || module.starts_with("tf_keras")
            || module.starts_with("tensorflow.")
    });
    if registered.is_some() || !keras_module {
        let name = registered.unwrap_or(&entry.class);
        let origin = match entry.module.as_deref() {
            Some(module) => format!("module '{}'", esc(module)),
            None => "its config names no module".to_string(),
        };
        return Some(format!(
            "custom layer '{}' ({origin}) is not supported: its computation is Python code \
             outside the file; {REPLACE_CUSTOM_LAYER}",
            esc(name),
        ));
    }
    None
}

/// Problems with a layer's dtype policy (quantized layers).
fn dtype_problems(config: &Map<String, Value>) -> Vec<String> {
    match config.get("dtype") {
        Some(dtype) if config::is_quantized_policy(dtype) => vec![format!(
            "quantized dtype policy '{}' is not supported",
            esc(&config::policy_name(dtype).unwrap_or_default())
        )],
        _ => Vec::new(),
    }
}

/// How many weights a layer stores and how many of those (a prefix) are trainable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WeightCount {
    pub total: usize,
    pub trainable: usize,
}

impl WeightCount {
    pub fn of(kind: &dyn LayerKind) -> Self {
        WeightCount {
            total: kind.weight_names().len(),
            trainable: kind.trainable_weights(),
        }
    }

    fn all(total: usize) -> Self {
        WeightCount {
            total,
            trainable: total,
        }
    }
}

/// A best-effort count for layers that fail to parse, from the class and config alone
/// (so that legacy weights can still be matched by position and every layer's problems
/// reported), or `None` when the class is unknown.
pub(crate) fn loose_weight_count(entry: &LayerEntry) -> Option<WeightCount> {
    if entry.is_input() {
        return Some(WeightCount::all(0));
    }
    registry::find(&entry.class).and_then(|row| (row.weights)(entry))
}

/// Checks a weight's shape against the shape the layer needs.
pub(crate) fn check_shape(name: &str, weight: &Weights, expected: &[usize]) -> Result<(), String> {
    if weight.shape != expected {
        return Err(format!(
            "weight '{name}' has shape {:?}, expected {:?} for this input",
            weight.shape, expected
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_extra;
