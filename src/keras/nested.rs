//! Frontend: nested models (a Sequential or Functional model used as a layer) inlined into
//! the enclosing model: each of the nested model's layers becomes an entry `outer/inner`
//! with one call per call of the nested model, and references to the nested model's
//! outputs are redirected to the layers inside that produce them.
//!
//! Node indices of references to a nested model differ by version (from
//! `keras/src/models/functional.py` and tf_keras): Keras 2 counts a nested model's calls
//! from 1 everywhere (its node 0 is the model's own construction); Keras 3 counts them
//! from 0 in inbound nodes, and from 1 in `input_layers` / `output_layers` for a nested
//! Functional (not a Sequential).

use super::config::{Call, LayerEntry, ModelConfig, RefStyle, TensorRef, MAX_DEPTH};
use crate::error::escape_for_message as esc;

/// The model as the rest of the frontend sees it: nested models inlined ([`flatten`]),
/// and the top-level layers before inlining recorded as [`ModelConfig::units`].
pub(crate) fn inline(model: ModelConfig) -> Result<ModelConfig, String> {
    let units = model.layers.iter().map(|l| l.name.clone()).collect();
    let mut model = flatten(model, 0)?;
    model.units = units;
    Ok(model)
}

/// Inlines nested models: each of a nested model's layers becomes an entry `outer/inner`
/// with one call per call of the nested model, and references to the nested model's
/// outputs are redirected to the layers that produce them.
fn flatten(mut model: ModelConfig, depth: usize) -> Result<ModelConfig, String> {
    if depth > MAX_DEPTH {
        return Err("models are nested too deeply".into());
    }
    for layer in &mut model.layers {
        if let Some(nested) = layer.nested.take() {
            layer.nested = Some(Box::new(flatten(*nested, depth + 1)?));
        }
    }
    if model.layers.iter().all(|l| l.nested.is_none()) {
        for (u, layer) in model.layers.iter_mut().enumerate() {
            layer.unit = u;
        }
        return Ok(model);
    }
    let inliner = Inliner { model: &model };
    let mut layers = Vec::with_capacity(model.layers.len());
    for (u, entry) in model.layers.iter().enumerate() {
        let Some(nested) = &entry.nested else {
            let mut flat = entry.clone();
            flat.unit = u;
            for call in &mut flat.calls {
                for r in &mut call.inputs {
                    *r = inliner.resolve(r.clone(), false, 0)?;
                }
            }
            layers.push(flat);
            continue;
        };
        for inner in nested.layers.iter().filter(|l| !l.is_input()) {
            let mut flat = inner.clone();
            flat.name = format!("{}/{}", entry.name, inner.name);
            flat.unit = u;
            flat.trainable = entry.trainable && inner.trainable;
            flat.calls = Vec::with_capacity(entry.calls.len() * inner.calls.len());
            for (c, outer_call) in entry.calls.iter().enumerate() {
                for call in &inner.calls {
                    let inputs = call
                        .inputs
                        .iter()
                        .map(|r| {
                            let r = inliner.enter(entry, nested, r, c)?;
                            inliner.resolve(r, false, 0)
                        })
                        .collect::<Result<Vec<_>, String>>()?;
                    flat.calls.push(Call {
                        inputs,
                        problem: outer_call
                            .problem
                            .clone()
                            .or_else(|| outer_call.keyword_problem())
                            .or_else(|| call.problem.clone()),
                        training: outer_call.training || call.training,
                        keywords: call.keywords.clone(),
                        kwargs: call.kwargs.clone(),
                        args: call.args.clone(),
                        arg_kwargs: call.arg_kwargs.clone(),
                    });
                }
            }
            layers.push(flat);
        }
    }
    let outputs = model
        .outputs
        .iter()
        .map(|r| inliner.resolve(r.clone(), true, 0))
        .collect::<Result<Vec<_>, String>>()?;
    model.layers = layers;
    model.outputs = outputs;
    model.ref_style = RefStyle::Own;
    Ok(model)
}

struct Inliner<'a> {
    model: &'a ModelConfig,
}

impl Inliner<'_> {
    fn entry(&self, name: &str) -> Option<&LayerEntry> {
        self.model.layers.iter().find(|l| l.name == name)
    }

    /// A reference made inside `nested` (called as `entry`, call `c`), as a reference in
    /// the enclosing model.
    fn enter(
        &self,
        entry: &LayerEntry,
        nested: &ModelConfig,
        r: &TensorRef,
        c: usize,
    ) -> Result<TensorRef, String> {
        if let Some(k) = nested.inputs.iter().position(|i| i.layer == r.layer) {
            return entry
                .calls
                .get(c)
                .and_then(|call| call.inputs.get(k))
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "nested model '{}' is called without its input #{k}",
                        esc(&entry.name)
                    )
                });
        }
        let calls = nested
            .layers
            .iter()
            .find(|l| l.name == r.layer)
            .map(|l| l.calls.len())
            .ok_or_else(|| {
                format!(
                    "nested model '{}' refers to unknown layer '{}'",
                    esc(&entry.name),
                    esc(&r.layer)
                )
            })?;
        if r.node >= calls {
            return Err(format!(
                "nested model '{}' refers to call #{} of '{}', which has {calls}",
                esc(&entry.name),
                r.node,
                esc(&r.layer)
            ));
        }
        Ok(TensorRef {
            layer: format!("{}/{}", entry.name, r.layer),
            node: c * calls + r.node,
            tensor: r.tensor,
        })
    }

    /// Follows a reference to a nested model's output to the layer inside that produces
    /// it. `endpoint` marks `input_layers` / `output_layers` references.
    fn resolve(&self, r: TensorRef, endpoint: bool, depth: usize) -> Result<TensorRef, String> {
        let Some(entry) = self.entry(&r.layer) else {
            return Ok(r);
        };
        let Some(nested) = &entry.nested else {
            return Ok(r);
        };
        if depth > self.model.layers.len() + MAX_DEPTH {
            return Err("nested model outputs refer to each other in a cycle".into());
        }
        let offset = match self.model.ref_style {
            RefStyle::Own => 0,
            RefStyle::Keras2 => 1,
            RefStyle::Keras3 => usize::from(endpoint && entry.class != "Sequential"),
        };
        let call = r.node.checked_sub(offset).ok_or_else(|| {
            format!(
                "reference to node {} of nested model '{}' (its calls start at {offset})",
                r.node,
                esc(&entry.name)
            )
        })?;
        if call >= entry.calls.len() {
            return Err(format!(
                "reference to call #{call} of nested model '{}', which has {}",
                esc(&entry.name),
                entry.calls.len()
            ));
        }
        let output = nested.outputs.get(r.tensor).ok_or_else(|| {
            format!(
                "reference to output #{} of nested model '{}', which has {}",
                r.tensor,
                esc(&entry.name),
                nested.outputs.len()
            )
        })?;
        let inner = self.enter(entry, nested, output, call)?;
        self.resolve(inner, false, depth + 1)
    }
}
