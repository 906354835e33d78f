//! Keras masks in the frontend: which tensors carry one, from which layer, and the mask
//! tensors themselves (`[steps]`, 1.0 keep / 0.0 masked). An Embedding with `mask_zero`
//! or a Masking layer makes a mask; layers whose registry row says
//! [`MaskPolicy::Passes`] (and a TimeDistributed around one) pass it on unchanged; merge
//! layers ([`MaskPolicy::Merges`]) combine their inputs' masks; recurrent layers and
//! GlobalAveragePooling1D consume it (recurrent sequences carry it on), MultiHeadAttention
//! reads each input's; in Keras 3 files the layers marked [`MaskPolicy::DroppedInKeras3`]
//! drop it. Any other layer reached by a mask is rejected by name rather than computed
//! without it.
//!
//! The graph builder asks [`Masks::plan`] what a call does with masks (which may add mask
//! tensors to its inputs), builds the call's steps with [`CallMasks::steps`], and hands
//! the result back to [`Masks::record`].

use std::collections::BTreeMap;

use super::config::{Call, LayerEntry};
use super::layers::registry::{self, MaskPolicy};
use super::layers::{LayerKind, MaskSource, Step};
use crate::error::escape_for_message as esc;
use crate::ir::{Graph, MergeKind, Op, TensorId, Weights};

/// The mask a tensor carries.
#[derive(Debug, Clone)]
pub(crate) enum MaskRef {
    /// `tokens != 0`, for an Embedding with `mask_zero` (made on first use).
    NonZero { tokens: TensorId, layer: String },
    /// A mask tensor already in the graph.
    Tensor { mask: TensorId, layer: String },
}

impl MaskRef {
    fn layer(&self) -> &str {
        match self {
            MaskRef::NonZero { layer, .. } | MaskRef::Tensor { layer, .. } => layer,
        }
    }
}

/// The masks of the graph being built.
#[derive(Debug, Default)]
pub(crate) struct Masks {
    /// Keras 3 semantics (layers without mask support drop masks, merges OR them, and
    /// MultiHeadAttention clears its inputs' masks).
    keras3: bool,
    of: BTreeMap<TensorId, MaskRef>,
    /// Masks made for Embedding token tensors.
    made: BTreeMap<TensorId, TensorId>,
    /// Keras 3: tensors whose mask a MultiHeadAttention removed when it ran (its `call`
    /// clears the masks of its inputs), with that layer's name and output.
    removed: BTreeMap<TensorId, (String, TensorId)>,
    /// The first layer that read each tensor's mask from the tensor (not through an
    /// explicit `mask=` argument).
    readers: BTreeMap<TensorId, String>,
}

/// What one call does with the Keras masks of its inputs, decided by [`Masks::plan`]
/// before its nodes are made.
#[derive(Debug)]
pub(crate) struct CallMasks {
    /// The mask came as a `mask=` argument.
    explicit: bool,
    /// The layer makes a mask of its own.
    source: Option<MaskSource>,
    /// The masks reaching the call, by input position.
    incoming: Vec<(usize, MaskRef)>,
    /// The mask passes through unchanged.
    passing: bool,
    /// The mask the layer consumes (given as one more input; recurrent sequences carry it).
    consumed: Option<MaskRef>,
    /// Layers that read each input's mask (MultiHeadAttention): which inputs carry one.
    per_input: Option<Vec<bool>>,
    /// Merge layers: the output mask.
    merged: Option<MaskRef>,
}

impl CallMasks {
    /// The call's nodes on inputs of the given shapes (the mask tensors [`Masks::plan`]
    /// added included).
    pub fn steps(
        &self,
        kind: &dyn LayerKind,
        shapes: &[&[usize]],
        weights: &[Weights],
        call: &Call,
    ) -> Result<Vec<Step>, String> {
        let no_steps = || Err("internal error: no masked steps".to_string());
        match (&self.consumed, &self.per_input) {
            (_, Some(which)) => kind
                .input_masked_steps(shapes, weights, &call.kwargs, which)
                .unwrap_or_else(no_steps),
            (Some(_), _) => kind.masked_steps(shapes, weights).unwrap_or_else(no_steps),
            _ => kind.call_steps(shapes, weights, &call.kwargs),
        }
    }
}

fn shapes<'g>(graph: &'g Graph, tensors: &[TensorId]) -> Vec<&'g [usize]> {
    tensors.iter().map(|&t| graph.shape(t)).collect()
}

impl Masks {
    pub fn new(keras3: bool) -> Self {
        Masks {
            keras3,
            ..Default::default()
        }
    }

    pub fn get(&self, tensor: TensorId) -> Option<&MaskRef> {
        self.of.get(&tensor)
    }

    fn set(&mut self, tensor: TensorId, mask: MaskRef) {
        self.of.insert(tensor, mask);
    }

    /// Keras 3 operations neither read nor pass masks; tf.keras TF op layers are not known
    /// to either: a masked input of an operation is refused rather than guessed at.
    pub fn check_operation(&self, inputs: &[TensorId]) -> Result<(), String> {
        match inputs.iter().position(|&t| self.get(t).is_some()) {
            Some(k) => Err(format!(
                "reads input #{k}, which carries a Keras mask; operations on masked \
                 tensors are not supported"
            )),
            None => Ok(()),
        }
    }

    /// Decides what a call does with masks: made by a source (which ignores any incoming
    /// one), passed on, merged, read per input or consumed (each mask read then becomes
    /// one more input, appended to `inputs`); anything else is rejected. Keras 3
    /// functional nodes pass masks to the layers that take a `mask` argument explicitly
    /// (`explicit`); masks also follow the layers (tf_keras, a Sequential's chain, and
    /// Keras 3 layers that read them from their inputs, such as MultiHeadAttention).
    #[allow(clippy::too_many_arguments)]
    pub fn plan(
        &mut self,
        graph: &mut Graph,
        layer: &LayerEntry,
        call: &Call,
        kind: &dyn LayerKind,
        weights: &[Weights],
        inputs: &mut Vec<TensorId>,
        explicit: Option<TensorId>,
    ) -> Result<CallMasks, String> {
        let incoming = match explicit {
            Some(mask) => vec![(
                0,
                MaskRef::Tensor {
                    mask,
                    layer: graph
                        .producer(mask)
                        .map(|n| graph.nodes[n].name.clone())
                        .unwrap_or_else(|| "an input".into()),
                },
            )],
            None => self.incoming(graph, inputs)?,
        };
        let policy = registry::mask_policy(&layer.class);
        let mut plan = CallMasks {
            explicit: explicit.is_some(),
            source: kind.mask_source(),
            passing: inputs.len() == 1
                && (kind.passes_mask() || (policy == MaskPolicy::Passes && explicit.is_none())),
            incoming,
            consumed: None,
            per_input: None,
            merged: None,
        };
        // Keras 3 computes layers without mask support without the mask, and drops it.
        let dropping = self.keras3 && explicit.is_none() && policy == MaskPolicy::DroppedInKeras3;
        if plan.passing || dropping {
            return Ok(plan);
        }
        let read_from_inputs =
            explicit.is_none() && plan.source.is_none() && !plan.incoming.is_empty();
        if read_from_inputs && policy == MaskPolicy::Merges {
            plan.merged = self.merge(graph, layer, inputs.len(), &plan.incoming)?;
        } else if read_from_inputs
            && kind
                .input_masked_steps(&shapes(graph, inputs), weights, &call.kwargs, &[])
                .is_some()
        {
            plan.per_input = Some(self.per_input(graph, layer, kind, inputs, &plan.incoming)?);
        } else if explicit.is_some() || plan.source.is_none() {
            plan.consumed =
                self.consume(graph, layer, call, kind, weights, inputs, &plan.incoming)?;
        }
        Ok(plan)
    }

    /// The masks the call's input tensors carry, by input position.
    fn incoming(
        &self,
        graph: &Graph,
        inputs: &[TensorId],
    ) -> Result<Vec<(usize, MaskRef)>, String> {
        let mut found = Vec::new();
        for (k, &t) in inputs.iter().enumerate() {
            let Some(mask) = self.get(t) else {
                continue;
            };
            // Keras 3: a MultiHeadAttention that ran on this tensor cleared its mask;
            // layers computed from its output run after it and see none, others may run
            // before or after it.
            if let Some((mha, out)) = self.removed.get(&t) {
                if depends_on(graph, inputs, *out) {
                    continue;
                }
                return Err(format!(
                    "reads the Keras mask of its input #{k}, which the MultiHeadAttention \
                     '{}' also reads and then removes (Keras 3 clears the masks of its \
                     inputs), so whether Keras applies it here depends on the order Keras \
                     runs the layers; this is not supported",
                    esc(mha)
                ));
            }
            found.push((k, mask.clone()));
        }
        Ok(found)
    }

    /// A merge layer's output mask (Keras 3: OR of the masks when every input has one,
    /// else none; tf_keras: AND of those given).
    fn merge(
        &mut self,
        graph: &mut Graph,
        layer: &LayerEntry,
        inputs: usize,
        incoming: &[(usize, MaskRef)],
    ) -> Result<Option<MaskRef>, String> {
        if self.keras3 && incoming.len() != inputs {
            return Ok(None);
        }
        let mut tensors = Vec::new();
        for (_, mask) in incoming {
            tensors.push(self.tensor(graph, mask)?);
        }
        let kind = if self.keras3 {
            MergeKind::Maximum
        } else {
            MergeKind::Multiply
        };
        let mask = if tensors.len() == 1 {
            tensors[0]
        } else {
            graph.add_node(
                &format!("{}/mask", layer.name),
                &layer.class,
                Op::Merge { kind },
                tensors,
                0,
            )?
        };
        Ok(Some(MaskRef::Tensor {
            mask,
            layer: layer.name.clone(),
        }))
    }

    /// For a layer that reads each input's mask: appends the masks to `inputs`, and says
    /// which inputs carry one.
    fn per_input(
        &mut self,
        graph: &mut Graph,
        layer: &LayerEntry,
        kind: &dyn LayerKind,
        inputs: &mut Vec<TensorId>,
        incoming: &[(usize, MaskRef)],
    ) -> Result<Vec<bool>, String> {
        let mut which = vec![false; inputs.len()];
        for (k, mask) in incoming {
            let tensor = self.tensor(graph, mask)?;
            inputs.push(tensor);
            which[*k] = true;
        }
        if self.keras3 && kind.clears_input_masks() {
            for (k, _) in incoming {
                let t = inputs[*k];
                if let Some(reader) = self.readers.get(&t) {
                    if reader != &layer.name {
                        return Err(format!(
                            "reads the Keras mask of its input #{k}, which layer '{}' also \
                             reads; Keras 3's MultiHeadAttention clears the masks of its \
                             inputs, so which of them sees it depends on the order Keras runs \
                             the layers; this is not supported",
                            esc(reader)
                        ));
                    }
                }
            }
        }
        Ok(which)
    }

    /// For any other layer reached by a mask: the mask it consumes on its first input,
    /// appended to `inputs`, or why it is refused.
    #[allow(clippy::too_many_arguments)]
    fn consume(
        &mut self,
        graph: &mut Graph,
        layer: &LayerEntry,
        call: &Call,
        kind: &dyn LayerKind,
        weights: &[Weights],
        inputs: &mut Vec<TensorId>,
        incoming: &[(usize, MaskRef)],
    ) -> Result<Option<MaskRef>, String> {
        let Some((k, mask)) = incoming.first() else {
            return Ok(None);
        };
        if *k != 0
            || incoming.len() > 1
            || !call.kwargs.is_empty()
            || kind.masked_steps(&shapes(graph, inputs), weights).is_none()
        {
            return Err(unsupported(&layer.class, mask));
        }
        let tensor = self.tensor(graph, mask)?;
        inputs.push(tensor);
        Ok(Some(mask.clone()))
    }

    /// Records the masks of a call's outputs, and who read which mask, once its nodes are
    /// in the graph: `inputs` as given to the steps, `outputs` every step's tensor,
    /// `result` the call's outputs.
    pub fn record(
        &mut self,
        plan: CallMasks,
        layer: &LayerEntry,
        kind: &dyn LayerKind,
        inputs: &[TensorId],
        outputs: &[TensorId],
        result: &[TensorId],
    ) -> Result<(), String> {
        let CallMasks {
            explicit,
            source,
            incoming,
            passing,
            consumed,
            per_input,
            merged,
        } = plan;
        if !explicit && (passing || merged.is_some() || per_input.is_some()) {
            for (k, _) in &incoming {
                self.readers
                    .entry(inputs[*k])
                    .or_insert_with(|| layer.name.clone());
            }
        }
        if self.keras3 && kind.clears_input_masks() && per_input.is_some() {
            for &t in &inputs[..inputs.len() - incoming.len()] {
                self.removed
                    .entry(t)
                    .or_insert_with(|| (layer.name.clone(), result[0]));
            }
        }
        match (source, consumed) {
            (Some(MaskSource::NonZeroInput), _) => self.set(
                result[0],
                MaskRef::NonZero {
                    tokens: inputs[0],
                    layer: layer.name.clone(),
                },
            ),
            (Some(MaskSource::Step(k)), _) => {
                let mask = *outputs
                    .get(k)
                    .ok_or("internal error: the mask step does not exist")?;
                self.set(
                    result[0],
                    MaskRef::Tensor {
                        mask,
                        layer: layer.name.clone(),
                    },
                );
            }
            (None, Some(mask)) => {
                for &t in result.iter().take(kind.mask_outputs()) {
                    self.set(t, mask.clone());
                }
            }
            (None, None) if passing => {
                if let Some((_, mask)) = incoming.first() {
                    for &t in result {
                        self.set(t, mask.clone());
                    }
                }
            }
            (None, None) => {
                let carried = match (&per_input, merged) {
                    (Some(which), _) if which.first() == Some(&true) => {
                        incoming.first().map(|(_, m)| m.clone())
                    }
                    (_, Some(mask)) => Some(mask),
                    _ => None,
                };
                if let Some(mask) = carried {
                    self.set(result[0], mask);
                }
            }
        }
        Ok(())
    }

    /// The mask as a graph tensor.
    fn tensor(&mut self, graph: &mut Graph, mask: &MaskRef) -> Result<TensorId, String> {
        match mask {
            MaskRef::Tensor { mask, .. } => Ok(*mask),
            MaskRef::NonZero { tokens, layer } => {
                if let Some(&made) = self.made.get(tokens) {
                    return Ok(made);
                }
                let op = Op::SequenceMask {
                    value: 0.0,
                    reduce_last: false,
                };
                let made =
                    graph.add_node(&format!("{layer}/mask"), "Embedding", op, vec![*tokens], 0)?;
                self.made.insert(*tokens, made);
                Ok(made)
            }
        }
    }
}

/// Whether `target` is `from` or computed from it.
fn depends_on(graph: &Graph, from: &[TensorId], target: TensorId) -> bool {
    let mut stack: Vec<TensorId> = from.to_vec();
    let mut seen = std::collections::BTreeSet::new();
    while let Some(t) = stack.pop() {
        if t == target {
            return true;
        }
        if !seen.insert(t) {
            continue;
        }
        if let Some(n) = graph.producer(t) {
            stack.extend(graph.nodes[n].inputs.iter().copied());
        }
    }
    false
}

/// Why a layer reached by a mask is rejected.
fn unsupported(class: &str, mask: &MaskRef) -> String {
    format!(
        "receives the Keras mask made by layer '{}' (Embedding mask_zero=True or Masking); \
         keras2src applies masks only in recurrent layers (LSTM, GRU, SimpleRNN, RNN, \
         Bidirectional) and GlobalAveragePooling1D on their (first) input and in \
         MultiHeadAttention, reached directly or through {} (or TimeDistributed around one \
         of those) and merge layers, and a '{}' would use or drop the mask",
        esc(mask.layer()),
        registry::classes_with(MaskPolicy::Passes).join(", "),
        esc(class)
    )
}
