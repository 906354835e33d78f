//! Keras masks in the frontend: which tensors carry one, from which layer, and the mask
//! tensors themselves (`[steps]`, 1.0 keep / 0.0 masked). An Embedding with `mask_zero`
//! or a Masking layer makes a mask; layers in [`layers::MASK_PASSING`] (and a
//! TimeDistributed around one) pass it on unchanged; recurrent layers and
//! GlobalAveragePooling1D consume it (recurrent sequences carry it on); in Keras 3 files
//! the layers in [`layers::K3_MASK_DROPPING`] drop it. Any other layer reached by a mask
//! is rejected by name rather than computed without it.

use std::collections::BTreeMap;

use super::layers;
use crate::error::escape_for_message as esc;
use crate::ir::{Graph, Op, TensorId};

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

#[derive(Debug, Default)]
pub(crate) struct Masks {
    of: BTreeMap<TensorId, MaskRef>,
    /// Masks made for Embedding token tensors.
    made: BTreeMap<TensorId, TensorId>,
    /// Keras 3: tensors whose mask a MultiHeadAttention removed when it ran (its `call`
    /// clears the masks of its inputs), with that layer's name and output.
    pub removed: BTreeMap<TensorId, (String, TensorId)>,
    /// The first layer that read each tensor's mask from the tensor (not through an
    /// explicit `mask=` argument).
    pub readers: BTreeMap<TensorId, String>,
}

impl Masks {
    pub fn get(&self, tensor: TensorId) -> Option<&MaskRef> {
        self.of.get(&tensor)
    }

    pub fn set(&mut self, tensor: TensorId, mask: MaskRef) {
        self.of.insert(tensor, mask);
    }

    /// The mask as a graph tensor.
    pub fn tensor(&mut self, graph: &mut Graph, mask: &MaskRef) -> Result<TensorId, String> {
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
pub(crate) fn depends_on(graph: &Graph, from: &[TensorId], target: TensorId) -> bool {
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
pub(crate) fn unsupported(class: &str, mask: &MaskRef) -> String {
    format!(
        "receives the Keras mask made by layer '{}' (Embedding mask_zero=True or Masking); \
         keras2src applies masks only in recurrent layers (LSTM, GRU, SimpleRNN, RNN, \
         Bidirectional) and GlobalAveragePooling1D on their (first) input and in \
         MultiHeadAttention, reached directly or through {} (or TimeDistributed around one \
         of those) and merge layers, and a '{}' would use or drop the mask",
        esc(mask.layer()),
        layers::MASK_PASSING.join(", "),
        esc(class)
    )
}
