//! The recurrence of a ConvLSTM layer: its options, weights and shape rule.

use super::{checked_numel, numel, Activation, Weights};

/// The recurrent part of `ConvLSTM1D/2D/3D` (channels-last). Its first input holds every
/// step's input convolution with the bias, `[steps, *spatial, 4 * filters]` (gates i, f,
/// c, o per position, as Keras packs the kernel), computed by an `Op::Conv` before it.
/// Each step adds the `same`-padded, stride-1 convolution of the previous `h`
/// (`[*spatial, filters]`) with `recurrent`, then runs the LSTM gate math per position and
/// filter: `c = f*c' + i*act(z_c)`, `h = o*act(c)`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvLstm {
    pub filters: usize,
    /// The spatial lengths of the input gates and of the states.
    pub spatial: Vec<usize>,
    /// `[*k, filters, 4 * filters]`.
    pub recurrent: Weights,
    pub activation: Activation,
    pub recurrent_activation: Activation,
    /// Reads the steps from the last to the first.
    pub go_backwards: bool,
    /// Outputs every step's h (`[steps, *spatial, filters]`) rather than the last.
    pub return_sequences: bool,
    /// Appends the final h, then c, to the output, which is then flat.
    pub return_state: bool,
    /// Takes the initial h and c (`[*spatial, filters]` each) as inputs 1 and 2.
    pub initial_state: bool,
}

impl ConvLstm {
    /// The spatial rank (1 to 3).
    pub fn rank(&self) -> usize {
        self.spatial.len()
    }

    /// The recurrent kernel's window along each spatial axis.
    pub fn kernel_size(&self) -> &[usize] {
        &self.recurrent.shape[..self.rank()]
    }

    /// `(before, after)` padding of the recurrent convolution per axis (`same`, stride 1:
    /// `k - 1` in all, the extra one after).
    pub fn padding(&self) -> Vec<(usize, usize)> {
        self.kernel_size()
            .iter()
            .map(|&k| ((k - 1) / 2, k - 1 - (k - 1) / 2))
            .collect()
    }

    /// Values of one state (h or c): the spatial positions times the filters.
    pub fn state_len(&self) -> usize {
        numel(&self.spatial) * self.filters
    }

    /// Length of the main output (before any appended states).
    pub fn main_len(&self, steps: usize) -> usize {
        let state = self.state_len();
        if self.return_sequences {
            steps * state
        } else {
            state
        }
    }

    pub fn arity(&self) -> usize {
        if self.initial_state {
            3
        } else {
            1
        }
    }

    /// Scratch values: h, c and the packed gate sums of every position.
    pub fn workspace(&self) -> usize {
        6 * self.state_len()
    }

    pub fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        if inputs.len() != self.arity() {
            return Err(format!(
                "expects {} input(s) (the input gates{}), got {}",
                self.arity(),
                if self.initial_state { ", h and c" } else { "" },
                inputs.len()
            ));
        }
        let (f, rank) = (self.filters, self.rank());
        let x = inputs[0];
        if rank == 0 || x.len() != rank + 2 || x[1..=rank] != self.spatial || x[rank + 1] != 4 * f {
            return Err(format!(
                "needs input gates of shape [steps, {:?}, {}], got {x:?}",
                self.spatial,
                4 * f
            ));
        }
        let kernel = self.recurrent.shape.get(..rank).unwrap_or(&[]);
        let mut want = kernel.to_vec();
        want.extend([f, 4 * f]);
        if self.recurrent.shape != want || kernel.contains(&0) {
            return Err(format!(
                "recurrent kernel shape {:?}, expected [*kernel, {f}, {}]",
                self.recurrent.shape,
                4 * f
            ));
        }
        let steps = x[0];
        let mut state = x[1..=rank].to_vec();
        state.push(f);
        if let Some(bad) = inputs[1..].iter().find(|s| **s != state.as_slice()) {
            return Err(format!(
                "an initial state has shape {bad:?}, expected {state:?}"
            ));
        }
        let out = if self.return_state {
            vec![self.main_len(steps) + 2 * numel(&state)]
        } else if self.return_sequences {
            std::iter::once(steps).chain(state).collect()
        } else {
            state
        };
        checked_numel(&out).ok_or("the output is too large")?;
        Ok(out)
    }

    /// Multiply-accumulates per sample of the recurrent convolutions (the input
    /// convolution is its own node).
    pub fn macs(&self, input: &[usize]) -> usize {
        let steps = input.first().copied().unwrap_or(0);
        steps * numel(&self.spatial) * self.recurrent.len()
    }
}
