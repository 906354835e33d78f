//! The recurrent op (LSTM, GRU, SimpleRNN): its cell, weights, options and shape rule.

use super::{Activation, Weights};

/// Which recurrence a [`Recurrent`] op runs. Gates are packed along the kernels' last axis
/// in Keras order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    /// Gates i, f, c, o: `c = f*c' + i*act(z_c)`, `h = o*act(c)`.
    Lstm,
    /// Gates z, r, h: `h = z*h' + (1-z)*hh`. With `reset_after`, `hh = act(x_h + r *
    /// (h'·U_h + b_rh))` and the bias is `[2, 3u]` (input row, recurrent row); else
    /// `hh = act(x_h + (r*h')·U_h)` with bias `[3u]`.
    Gru { reset_after: bool },
    /// `h = act(x·W + h'·U + b)`.
    Simple,
}

impl Cell {
    /// Gate blocks of `units` in the packed kernels.
    pub fn gates(self) -> usize {
        match self {
            Cell::Lstm => 4,
            Cell::Gru { .. } => 3,
            Cell::Simple => 1,
        }
    }

    /// States a layer returns with `return_state` (h, then c for an LSTM).
    pub fn states(self) -> usize {
        match self {
            Cell::Lstm => 2,
            _ => 1,
        }
    }

    /// Scratch values one evaluation needs besides its input and output: the state
    /// vectors and the packed gate sums.
    pub fn workspace(self, units: usize) -> usize {
        match self {
            // h, c, z[4u]
            Cell::Lstm => 6 * units,
            // h, x-part [3u], h-part [3u], r*h [u]
            Cell::Gru { .. } => 8 * units,
            // h, z[u]
            Cell::Simple => 2 * units,
        }
    }
}

/// A recurrent layer over `[steps, features]`. Its inputs: the sequence, then (with
/// `initial_state`) one `[units]` tensor per state (h, then c for an LSTM); without
/// them the initial state is zero.
#[derive(Debug, Clone, PartialEq)]
pub struct Recurrent {
    pub cell: Cell,
    pub units: usize,
    /// `[features, gates * units]`.
    pub kernel: Weights,
    /// `[units, gates * units]`.
    pub recurrent: Weights,
    /// `[gates * units]`, or `[2, 3 * units]` for a GRU with `reset_after`.
    pub bias: Option<Weights>,
    pub activation: Activation,
    pub recurrent_activation: Activation,
    /// Reads the input from the last step to the first.
    pub go_backwards: bool,
    /// Outputs every step's h (`[steps, units]`) rather than the last (`[units]`).
    pub return_sequences: bool,
    /// Writes the h of processing step `s` at time `steps - 1 - s` (a Bidirectional's
    /// backward layer, whose sequence Keras flips back to time order).
    pub reverse_sequences: bool,
    /// Appends the final states (h, then c for an LSTM) to the output, which is then flat:
    /// `[output values..., states...]`.
    pub return_state: bool,
    /// Takes the initial states as inputs `1..=cell.states()`.
    pub initial_state: bool,
    /// Takes a Keras mask `[steps]` (1.0 keep, 0.0 masked; a [`super::Op::SequenceMask`])
    /// as its last input. A masked step keeps the state and outputs the previous step's
    /// output (zero before the first unmasked step).
    pub masked: bool,
    /// With `masked`: a masked step outputs zeros instead (`zero_output_for_mask`; a
    /// Bidirectional forces it to `return_sequences`).
    pub zero_output_for_mask: bool,
    /// Keras carries this layer's state from call to call (`stateful=True`). The op itself
    /// starts from zero (as after `reset_states()`); the streaming API carries the state
    /// (see [`crate::passes::stream`]).
    pub stateful: bool,
}

impl Recurrent {
    /// Length of the main output (before any appended states).
    pub fn main_len(&self, steps: usize) -> usize {
        if self.return_sequences {
            steps * self.units
        } else {
            self.units
        }
    }

    /// Number of inputs: the sequence, then the initial states if given.
    pub fn arity(&self) -> usize {
        1 + usize::from(self.masked)
            + if self.initial_state {
                self.cell.states()
            } else {
                0
            }
    }

    /// Number of initial-state inputs.
    pub fn state_inputs(&self) -> usize {
        if self.initial_state {
            self.cell.states()
        } else {
            0
        }
    }

    /// Scratch values: the cell's, plus the last output when masked.
    pub fn workspace(&self) -> usize {
        self.cell.workspace(self.units) + if self.masked { self.units } else { 0 }
    }

    pub fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        if inputs.len() != self.arity() {
            return Err(format!(
                "expects {} inputs (the sequence, {} initial states{}), got {}",
                self.arity(),
                self.state_inputs(),
                if self.masked { ", the mask" } else { "" },
                inputs.len()
            ));
        }
        let states = &inputs[1..1 + self.state_inputs()];
        if let Some(bad) = states.iter().find(|s| **s != [self.units]) {
            return Err(format!(
                "an initial state has shape {bad:?}, expected [{}]",
                self.units
            ));
        }
        let input = inputs[0];
        let [steps, features] = input[..] else {
            return Err(format!(
                "a recurrent layer needs an input of shape [steps, features], got {input:?}"
            ));
        };
        if self.masked && inputs[inputs.len() - 1] != [steps] {
            return Err(format!(
                "the mask has shape {:?}, expected [{steps}]",
                inputs[inputs.len() - 1]
            ));
        }
        let (u, g) = (self.units, self.cell.gates());
        if self.kernel.shape != [features, g * u] {
            return Err(format!(
                "kernel shape {:?}, expected [{features}, {}]",
                self.kernel.shape,
                g * u
            ));
        }
        if self.recurrent.shape != [u, g * u] {
            return Err(format!(
                "recurrent kernel shape {:?}, expected [{u}, {}]",
                self.recurrent.shape,
                g * u
            ));
        }
        if let Some(b) = &self.bias {
            let want = match self.cell {
                Cell::Gru { reset_after: true } => vec![2, g * u],
                _ => vec![g * u],
            };
            if b.shape != want {
                return Err(format!("bias shape {:?}, expected {want:?}", b.shape));
            }
        }
        let seq = if self.return_sequences {
            vec![steps, u]
        } else {
            vec![u]
        };
        if self.return_state {
            Ok(vec![self.main_len(steps) + self.cell.states() * u])
        } else {
            Ok(seq)
        }
    }

    /// Multiply-accumulates per sample.
    pub fn macs(&self, steps: usize) -> usize {
        steps * (self.kernel.len() + self.recurrent.len())
    }
}
