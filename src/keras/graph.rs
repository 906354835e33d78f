//! Frontend: builds the IR graph from a parsed model. Parses every layer, matches the
//! weights to layers (`h5` / by name), then adds the nodes of each layer call (usually
//! one; see [`layers::Step`]) in an order where every input is ready. A call passes all of
//! its input tensors, in order, to its layer, and may produce several outputs (an RNN with
//! `return_state`), which consumers and model outputs pick by keras_history tensor index. Layer problems are collected and reported
//! together; a layer that fails is skipped along with everything downstream of it, so each
//! problem is reported once, at its source.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use super::config::{self, LayerEntry, ModelConfig};
use super::h5::{self, LoadedWeights, StoredDtype, UnitOrder};
use super::layers::{self, WeightCount};
use super::{Source, WeightSource};
use crate::error::{escape_for_message as esc, Error, LayerProblem};
use crate::ir::{Graph, InputDtype, TensorId, Weights};
use crate::Result;

/// Collected layer problems, in the order of the model's layers.
#[derive(Default)]
struct Problems {
    list: Vec<(usize, LayerProblem)>,
}

impl Problems {
    fn push(&mut self, index: usize, layer: &LayerEntry, message: impl Into<String>) {
        let problem = LayerProblem {
            layer: layer.name.clone(),
            class: layer.class.clone(),
            message: message.into(),
        };
        if !self.list.iter().any(|(_, p)| *p == problem) {
            self.list.push((index, problem));
        }
    }

    fn into_error(mut self, path: &Path) -> Option<Error> {
        if self.list.is_empty() {
            return None;
        }
        self.list.sort_by_key(|(i, _)| *i);
        Some(Error::Layers {
            path: path.to_path_buf(),
            problems: self.list.into_iter().map(|(_, p)| p).collect(),
        })
    }
}

pub(super) fn build(path: &Path, source: Source) -> Result<Graph> {
    let format_error = |message: String| Error::Format {
        path: path.to_path_buf(),
        message,
    };
    let Source {
        model,
        version,
        weights,
        mut notes,
    } = source;
    let layers = &model.layers;
    let mut names = BTreeSet::new();
    for layer in layers {
        if !names.insert(layer.name.as_str()) {
            return Err(format_error(format!(
                "two layers are named '{}'",
                esc(&layer.name)
            )));
        }
    }

    // Parse every layer, collecting problems.
    let mut problems = Problems::default();
    let mut kinds: Vec<Option<Box<dyn layers::LayerKind>>> = Vec::with_capacity(layers.len());
    for (i, layer) in layers.iter().enumerate() {
        if layer.is_input() {
            kinds.push(None);
            continue;
        }
        match layers::parse(layer, version) {
            Ok(kind) => kinds.push(Some(kind)),
            Err(messages) => {
                for m in messages {
                    problems.push(i, layer, m);
                }
                kinds.push(None);
            }
        }
    }
    policy_notes(layers, &mut notes);

    // Read and match the weights.
    let counts: Vec<Option<WeightCount>> = layers
        .iter()
        .zip(&kinds)
        .map(|(layer, kind)| match kind {
            Some(k) => Some(WeightCount::of(k.as_ref())),
            None => layers::loose_weight_count(layer),
        })
        .collect();
    let expected: Vec<Option<usize>> = counts.iter().map(|c| c.map(|c| c.total)).collect();
    let loaded = match weights {
        WeightSource::SavingLib(root, budget) => {
            let groups: Vec<Vec<String>> = kinds
                .iter()
                .map(|k| {
                    k.as_ref()
                        .map_or_else(|| vec![String::new()], |k| k.weight_groups())
                })
                .collect();
            h5::saving_lib_weights(&root, &model, &groups, budget)
        }
        WeightSource::Legacy(group, budget) => h5::legacy_weights(&group, &model, &counts, budget),
        WeightSource::ByName(map) => by_name(map, &model, &counts),
    }
    .map_err(format_error)?;
    dtype_notes(&loaded.dtypes, &mut notes);

    let mut layer_weights: Vec<Vec<Weights>> = Vec::with_capacity(layers.len());
    let mut per_layer = loaded.per_layer;
    for (i, layer) in layers.iter().enumerate() {
        let found = per_layer
            .get_mut(i)
            .and_then(Option::take)
            .unwrap_or_default();
        let names = kinds[i].as_ref().map(|k| k.weight_names());
        if loaded.unsplit.contains(&i) {
            // A nested model whose weights could not be split among its layers because
            // another of its layers is unknown (and reported): skip quietly.
            kinds[i] = None;
            layer_weights.push(Vec::new());
            continue;
        }
        if let (Some(names), Some(n)) = (&names, expected[i]) {
            if found.len() < n {
                let location = loaded.locations.get(i).map(String::as_str).unwrap_or("");
                let what = names.get(found.len()).copied().unwrap_or("weight");
                return Err(format_error(format!(
                    "weight '{what}' (#{}) of layer '{}' ({}) is missing from the file{}",
                    found.len(),
                    esc(&layer.name),
                    esc(&layer.class),
                    if location.is_empty() {
                        String::new()
                    } else {
                        format!(" (looked in {location})")
                    }
                )));
            }
            if found.len() > n {
                problems.push(
                    i,
                    layer,
                    format!(
                        "the file has {} weights for this layer, expected {n} ({})",
                        found.len(),
                        names.join(", ")
                    ),
                );
                kinds[i] = None;
            }
        }
        layer_weights.push(found);
    }

    let mut builder = Builder {
        path,
        graph: Graph::default(),
        model: &model,
        tensors: BTreeMap::new(),
        failed: BTreeSet::new(),
        problems,
        masks: super::mask::Masks::new(version.major >= 3),
        keras3: version.major >= 3,
    };
    builder.inputs()?;
    builder.calls(&kinds, &layer_weights)?;
    builder.outputs()?;
    if let Some(error) = builder.problems.into_error(path) {
        return Err(error);
    }
    let mut graph = builder.graph;
    graph.notes.extend(notes);
    Ok(graph)
}

/// Weights given by layer name (interchange JSON); a nested model's weights are its
/// layers' weights in turn, as `get_weights()` lists them.
fn by_name(
    mut map: BTreeMap<String, Vec<Weights>>,
    model: &ModelConfig,
    counts: &[Option<WeightCount>],
) -> std::result::Result<LoadedWeights, String> {
    for name in map.keys() {
        if !model.units.iter().any(|u| u == name) {
            return Err(format!(
                "'weights' has an entry for layer '{}', which the model does not have",
                esc(name)
            ));
        }
    }
    let mut loaded = LoadedWeights::empty(model.layers.len());
    for (u, name) in model.units.iter().enumerate() {
        let location = format!("weights[\"{}\"]", esc(name));
        match map.remove(name) {
            Some(tensors) => loaded.assign(
                model,
                u,
                tensors,
                counts,
                UnitOrder::LayerByLayer,
                &location,
            )?,
            None => {
                for (i, layer) in model.layers.iter().enumerate() {
                    if layer.unit == u {
                        loaded.locations[i] = location.clone();
                    }
                }
            }
        }
    }
    Ok(loaded)
}

fn dtype_notes(dtypes: &BTreeSet<StoredDtype>, notes: &mut Vec<String>) {
    for dtype in dtypes {
        if matches!(
            dtype,
            StoredDtype::F16 | StoredDtype::BF16 | StoredDtype::F64
        ) {
            notes.push(format!(
                "weights stored as {} were converted to float32",
                dtype.label()
            ));
        }
    }
}

fn policy_notes(layers: &[LayerEntry], notes: &mut Vec<String>) {
    let mut policies = BTreeSet::new();
    for layer in layers {
        if layer.is_input() {
            continue;
        }
        if let Some(name) = layer.config.get("dtype").and_then(config::policy_name) {
            if name != "float32" && !config::is_quantized_policy(&Value::String(name.clone())) {
                policies.insert(name);
            }
        }
    }
    for policy in policies {
        notes.push(format!(
            "layers with dtype policy '{}' are computed in float32",
            esc(&policy)
        ));
    }
}

/// The first constant (not a tensor placeholder, list or null) in a call argument.
fn first_constant(value: &Value, depth: usize) -> Option<&Value> {
    match value {
        Value::Null => None,
        Value::Array(items) if depth < 32 => {
            items.iter().find_map(|v| first_constant(v, depth + 1))
        }
        Value::Object(obj) if obj.contains_key(config::TENSOR_KEY) => None,
        other => Some(other),
    }
}

/// Builds the graph call by call, in an order where inputs come first.
struct Builder<'a> {
    path: &'a Path,
    graph: Graph,
    model: &'a ModelConfig,
    /// Output tensors of each (layer, call), by keras_history tensor index.
    tensors: BTreeMap<(String, usize), Vec<TensorId>>,
    /// Calls that could not be built (their consumers are skipped silently).
    failed: BTreeSet<(String, usize)>,
    problems: Problems,
    /// The Keras masks tensors carry.
    masks: super::mask::Masks,
    /// Keras 3 semantics (the augmentation layers' recorded `training=True`).
    keras3: bool,
}

impl<'a> Builder<'a> {
    fn format_error(&self, message: String) -> Error {
        Error::Format {
            path: self.path.to_path_buf(),
            message,
        }
    }

    fn find(&self, name: &str) -> Option<(usize, &'a LayerEntry)> {
        let model: &'a ModelConfig = self.model;
        model
            .layers
            .iter()
            .enumerate()
            .find(|(_, l)| l.name == name)
    }

    fn inputs(&mut self) -> Result<()> {
        let model = self.model;
        for r in &model.inputs {
            let Some((index, layer)) = self.find(&r.layer) else {
                return Err(self.format_error(format!(
                    "model input '{}' is not a layer of the model",
                    esc(&r.layer)
                )));
            };
            if !layer.is_input() {
                self.problems
                    .push(index, layer, "is a model input but not an InputLayer");
                self.failed.insert((r.layer.clone(), 0));
                continue;
            }
            if self.tensors.contains_key(&(r.layer.clone(), 0)) {
                continue;
            }
            match input_spec(layer) {
                Ok((shape, dtype)) => match self.graph.add_input(&layer.name, shape, dtype) {
                    Ok(tensor) => {
                        self.tensors.insert((layer.name.clone(), 0), vec![tensor]);
                    }
                    Err(e) => {
                        self.problems.push(index, layer, e);
                        self.failed.insert((layer.name.clone(), 0));
                    }
                },
                Err(e) => {
                    self.problems.push(index, layer, e);
                    self.failed.insert((layer.name.clone(), 0));
                }
            }
        }
        // InputLayers that are not model inputs cannot feed anything.
        for (index, layer) in model.layers.iter().enumerate() {
            if layer.is_input()
                && !self.tensors.contains_key(&(layer.name.clone(), 0))
                && !self.failed.contains(&(layer.name.clone(), 0))
            {
                self.failed.insert((layer.name.clone(), 0));
                if model.layers.iter().any(|l| {
                    l.calls
                        .iter()
                        .any(|c| c.inputs.iter().any(|t| t.layer == layer.name))
                }) {
                    self.problems.push(
                        index,
                        layer,
                        "is used but is not one of the model's inputs",
                    );
                }
            }
        }
        Ok(())
    }

    fn calls(
        &mut self,
        kinds: &[Option<Box<dyn layers::LayerKind>>],
        weights: &[Vec<Weights>],
    ) -> Result<()> {
        let model = self.model;
        let mut pending: Vec<(usize, usize)> = model
            .layers
            .iter()
            .enumerate()
            .filter(|(_, l)| !l.is_input())
            .flat_map(|(i, l)| (0..l.calls.len()).map(move |c| (i, c)))
            .collect();
        let mut params_counted = vec![false; model.layers.len()];
        // Layers that could not be parsed: everything downstream is skipped.
        let broken: BTreeSet<&str> = model
            .layers
            .iter()
            .zip(kinds)
            .filter(|(l, k)| !l.is_input() && k.is_none())
            .map(|(l, _)| l.name.as_str())
            .collect();
        loop {
            let before = pending.len();
            let mut still = Vec::with_capacity(pending.len());
            for (i, c) in pending {
                let layer = &model.layers[i];
                let call = &layer.calls[c];
                let key = (layer.name.clone(), c);
                let refs = &call.inputs;
                if refs.iter().any(|r| {
                    broken.contains(r.layer.as_str())
                        || self.failed.contains(&(r.layer.clone(), r.node))
                }) {
                    self.failed.insert(key);
                    continue;
                }
                let ready: Option<Vec<&Vec<TensorId>>> = refs
                    .iter()
                    .map(|r| self.tensors.get(&(r.layer.clone(), r.node)))
                    .collect();
                let Some(ready) = ready else {
                    still.push((i, c));
                    continue;
                };
                let picked: Result<Vec<TensorId>, String> = refs
                    .iter()
                    .zip(&ready)
                    .map(|(r, outs)| pick(outs, r))
                    .collect();
                let inputs = match picked {
                    Ok(inputs) => inputs,
                    Err(message) => {
                        self.problems.push(i, layer, message);
                        self.failed.insert(key);
                        continue;
                    }
                };
                let Some(kind) = &kinds[i] else {
                    // Already reported while parsing.
                    self.failed.insert(key);
                    continue;
                };
                match self.call(
                    layer,
                    call,
                    kind.as_ref(),
                    &weights[i],
                    inputs,
                    !params_counted[i],
                ) {
                    Ok(tensors) => {
                        params_counted[i] = true;
                        self.tensors.insert(key, tensors);
                    }
                    Err(message) => {
                        self.problems.push(i, layer, message);
                        self.failed.insert(key);
                    }
                }
            }
            pending = still;
            if pending.is_empty() {
                return Ok(());
            }
            if pending.len() == before {
                // No progress: the first stuck call is reported, and everything it blocks
                // is skipped, as downstream of any broken layer.
                let (i, c) = pending[0];
                let layer = &model.layers[i];
                let missing = layer.calls[c]
                    .inputs
                    .iter()
                    .find(|r| !self.tensors.contains_key(&(r.layer.clone(), r.node)))
                    .map(|r| format!("'{}' call #{}", esc(&r.layer), r.node))
                    .unwrap_or_default();
                self.problems.push(
                    i,
                    layer,
                    format!(
                        "takes its input from {missing}, which does not exist or depends on \
                         it (damaged config?)"
                    ),
                );
                for (i, c) in pending {
                    self.failed.insert((model.layers[i].name.clone(), c));
                }
                return Ok(());
            }
        }
    }

    /// Adds the nodes for one call of a layer whose inputs are ready; returns the call's
    /// output tensors in keras_history tensor-index order.
    fn call(
        &mut self,
        layer: &LayerEntry,
        call: &config::Call,
        kind: &dyn layers::LayerKind,
        weights: &[Weights],
        inputs: Vec<TensorId>,
        first_call: bool,
    ) -> std::result::Result<Vec<TensorId>, String> {
        let shapes: Vec<&[usize]> = inputs.iter().map(|&t| self.graph.shape(t)).collect();
        if let Some(steps) = kind.operation_steps(&shapes, &call.args, &call.arg_kwargs) {
            self.masks.check_operation(&inputs)?;
            let (_, result) = self.add_steps(layer, steps?, &inputs, 0)?;
            return Ok(result);
        }
        if let Some(problem) = &call.problem {
            return Err(problem.clone());
        }
        // Keras 3 records the augmentation layers' `call(training=True)` default in a
        // functional model, and `predict` / `model(x, training=False)` override it.
        if call.training && !(self.keras3 && layers::records_training_default(&layer.class)) {
            return Err(config::TRAINING_TRUE.into());
        }
        // A Keras 3 `mask=` tensor is not one of the layer's own arguments.
        let mut inputs = inputs;
        let mut keywords = call.keywords.clone();
        let explicit_mask = match keywords.iter().position(|k| k == "mask") {
            Some(j) => {
                let at = inputs.len().saturating_sub(keywords.len()) + j;
                keywords.remove(j);
                Some(inputs.remove(at))
            }
            None => None,
        };
        let positional = inputs.len().saturating_sub(keywords.len());
        let mut inputs: Vec<TensorId> =
            layers::order_arguments(kind.tensor_arguments(), positional, &keywords)?
                .into_iter()
                .map(|k| inputs[k])
                .collect();
        if inputs.is_empty() && explicit_mask.is_some() {
            return Err("is called with a mask but without an input tensor".into());
        }
        // A layer's positional arguments are tensors; a constant among them (`bn(x, True)`
        // passing `training` by position) would change what it computes unseen.
        if let Some(constant) = call.args.iter().find_map(|a| first_constant(a, 0)) {
            return Err(format!(
                "is called with the constant {} as a positional argument, which is not \
                 supported",
                esc(&constant.to_string())
            ));
        }
        // Keras masks (see `mask`): the plan may add mask tensors to the inputs.
        let masks = self.masks.plan(
            &mut self.graph,
            layer,
            call,
            kind,
            weights,
            &mut inputs,
            explicit_mask,
        )?;
        let shapes: Vec<&[usize]> = inputs.iter().map(|&t| self.graph.shape(t)).collect();
        let steps = masks.steps(kind, &shapes, weights, call)?;
        let params: usize = if first_call {
            weights.iter().map(Weights::len).sum()
        } else {
            0
        };
        let (outputs, result) = self.add_steps(layer, steps, &inputs, params)?;
        self.masks
            .record(masks, layer, kind, &inputs, &outputs, &result)?;
        Ok(result)
    }

    /// Adds the nodes of a call's steps (the unnamed one takes the layer's name and
    /// `params`); returns every step's tensor and the call's outputs.
    fn add_steps(
        &mut self,
        layer: &LayerEntry,
        steps: Vec<layers::Step>,
        inputs: &[TensorId],
        params: usize,
    ) -> std::result::Result<(Vec<TensorId>, Vec<TensorId>), String> {
        let mut outputs: Vec<TensorId> = Vec::with_capacity(steps.len());
        let mut marked: Vec<(usize, TensorId)> = Vec::new();
        for step in steps {
            let sources = step
                .inputs
                .iter()
                .map(|s| match *s {
                    layers::Source::Input(k) => inputs.get(k).copied(),
                    layers::Source::Step(j) => outputs.get(j).copied(),
                })
                .collect::<Option<Vec<TensorId>>>()
                .ok_or("internal error: a step reads a tensor that does not exist")?;
            let (name, step_params) = match &step.suffix {
                None => (layer.name.clone(), params),
                Some(suffix) => (format!("{}/{suffix}", layer.name), 0),
            };
            let tensor = self
                .graph
                .add_node(&name, &layer.class, step.op, sources, step_params)
                .map_err(|e| match &step.suffix {
                    None => e,
                    Some(suffix) => format!("{suffix}: {e}"),
                })?;
            outputs.push(tensor);
            if let Some(k) = step.output {
                marked.push((k, tensor));
            }
        }
        let result: Vec<TensorId> = if marked.is_empty() {
            outputs
                .last()
                .map(|&t| vec![t])
                .ok_or_else(|| "internal error: the layer made no node".to_string())?
        } else {
            marked.sort_by_key(|&(k, _)| k);
            if marked.iter().enumerate().any(|(i, &(k, _))| i != k) {
                return Err(
                    "internal error: the layer's outputs are not numbered 0, 1, ...".into(),
                );
            }
            marked.into_iter().map(|(_, t)| t).collect()
        };
        Ok((outputs, result))
    }

    fn outputs(&mut self) -> Result<()> {
        let model = self.model;
        for (r, name) in model.outputs.iter().zip(&model.output_names) {
            let key = (r.layer.clone(), r.node);
            if self.failed.contains(&key) || self.failed.iter().any(|(l, _)| *l == r.layer) {
                continue;
            }
            match self.tensors.get(&key).map(|outs| pick(outs, r)) {
                Some(Ok(tensor)) if self.is_integer_input(tensor) => {
                    if let Some((i, layer)) = self.find(&r.layer) {
                        self.problems.push(
                            i,
                            layer,
                            "is an integer model input and a model output: outputs are float32, \
                             integer outputs are not supported",
                        );
                    }
                }
                Some(Ok(tensor)) => self.graph.add_output(name, tensor),
                Some(Err(message)) => {
                    if let Some((i, layer)) = self.find(&r.layer) {
                        self.problems
                            .push(i, layer, format!("is a model output: {message}"));
                    }
                }
                None => {
                    return Err(self.format_error(format!(
                        "model output '{}' call #{} does not exist",
                        esc(&r.layer),
                        r.node
                    )))
                }
            }
        }
        Ok(())
    }
}

impl Builder<'_> {
    fn is_integer_input(&self, tensor: TensorId) -> bool {
        self.graph
            .inputs
            .iter()
            .any(|i| i.tensor == tensor && i.dtype == InputDtype::I32)
    }
}

/// Output `r.tensor` of a call with outputs `outs`.
fn pick(outs: &[TensorId], r: &config::TensorRef) -> std::result::Result<TensorId, String> {
    outs.get(r.tensor).copied().ok_or_else(|| {
        format!(
            "uses output #{} of layer '{}', which has {} output(s)",
            r.tensor,
            esc(&r.layer),
            outs.len()
        )
    })
}

/// An InputLayer's shape (batch dropped) and dtype.
fn input_spec(layer: &LayerEntry) -> std::result::Result<(Vec<usize>, InputDtype), String> {
    let config = &layer.config;
    for flag in ["sparse", "ragged", "optional"] {
        if config.get(flag).and_then(Value::as_bool) == Some(true) {
            return Err(format!("option '{flag}'=true is not supported"));
        }
    }
    let shape_value = config
        .get("batch_shape")
        .or_else(|| config.get("batch_input_shape"))
        .filter(|v| !v.is_null())
        .ok_or("has no 'batch_shape' / 'batch_input_shape'")?;
    let dims = shape_value
        .as_array()
        .ok_or_else(|| format!("input shape {shape_value} is not a list"))?;
    let Some((_batch, rest)) = dims.split_first() else {
        return Err("input shape is empty (no batch dimension)".into());
    };
    let mut shape = Vec::with_capacity(rest.len());
    for d in rest {
        match d {
            Value::Null => {
                return Err(format!(
                    "input shape {shape_value} has a dynamic (None) dimension; give it a size \
                     when generating (--input-shape)"
                ))
            }
            d => match d.as_u64().and_then(|u| usize::try_from(u).ok()) {
                Some(u) if u > 0 => shape.push(u),
                _ => {
                    return Err(format!(
                        "input shape {shape_value} has an invalid dimension {d}"
                    ))
                }
            },
        }
    }
    let dtype = match config.get("dtype").and_then(config::policy_name) {
        None => InputDtype::F32,
        Some(d) if d.contains("int") || d == "uint8" => InputDtype::I32,
        Some(d) if d.contains("float") => InputDtype::F32,
        Some(d) => return Err(format!("input dtype '{}' is not supported", esc(&d))),
    };
    Ok((shape, dtype))
}
