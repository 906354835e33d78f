//! Lowering: the decisions both backends share (loop shapes, weight arrays, where each
//! tensor lives, which math functions are needed), made once.

mod attention;
pub(crate) mod axis;
mod conv;
mod conv_lstm;
mod dense;
mod elementwise;
mod embedding;
mod epilogue;
mod index;
mod int8;
mod layout;
pub mod loops;
mod merge;
mod norm;
mod pool;
mod preprocess;
mod program;
mod recurrent;
mod reduce;
mod resample;
mod share;

pub use axis::AxisKernel;
pub use dense::{ACCUMULATORS, TILE};
pub(crate) use epilogue::Epilogue;
pub use program::{
    lower, lower_with, lower_with_step, Arg, Blocking, Entry, Layer, Port, Post, Program,
    StepGraph, Stream, Tuning, WeightArray, WeightId,
};

use crate::ir::quant::{self, ChannelAxis, Stored};
use crate::ir::{Weights, WeightsDtype};
use loops::{Buf, Ix, Val};
pub use share::INLINE_LAYERS_MAX;

/// Registers a weight array (name suffix, dims, data) and returns its id.
pub(crate) type AddWeight<'a> = dyn FnMut(&str, Vec<usize>, &[f32]) -> WeightId + 'a;

/// Registers an array of stored values of a dtype (name suffix, dims, data) and returns its
/// id.
pub(crate) type AddStored<'a> = dyn Fn(&str, Vec<usize>, &[f32], WeightsDtype) -> WeightId + 'a;

/// Registers kernels in the form `--weights-dtype` asks for ([`crate::ir::quant`]).
pub(crate) struct Kernels<'a> {
    pub dtype: WeightsDtype,
    pub add: &'a AddStored<'a>,
}

/// A kernel array as the loops read it: its stored values and, for int8, the scale of
/// each output channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Kernel {
    pub id: WeightId,
    pub scale: Option<WeightId>,
}

impl Kernel {
    /// The weight at `[row][col]` of the array, whose output channel is `channel`, as the
    /// f32 it stands for: the value itself, or `q * scale[channel]` for int8 (the product
    /// [`crate::ir::quant::Stored::dequantized`] gives the interpreter).
    pub fn load(&self, row: Ix, col: Ix, channel: Ix) -> Val {
        let w = Val::load(Buf::W2(self.id, row), col);
        match self.scale {
            Some(scale) => w * Val::load(Buf::W(scale), channel),
            None => w,
        }
    }
}

impl Kernels<'_> {
    /// Stores kernel `w` (output channels along `axis`) and registers its scales (int8):
    /// the stored values, in `w`'s layout, for the caller to lay out and [`Kernels::add`].
    pub fn store(
        &self,
        w: &Weights,
        axis: ChannelAxis,
        suffix: &str,
    ) -> Result<(Stored, Option<WeightId>), String> {
        let stored = quant::store(w, axis, self.dtype)?;
        let scale = stored.scales.as_ref().map(|s| {
            (self.add)(
                &format!("{suffix}_scale"),
                vec![s.len()],
                s,
                WeightsDtype::F32,
            )
        });
        Ok((stored, scale))
    }

    /// Registers `data`, values of `stored` laid out as the loops read them.
    pub fn add(
        &self,
        suffix: &str,
        dims: Vec<usize>,
        data: &[f32],
        stored: &Stored,
        scale: Option<WeightId>,
    ) -> Kernel {
        Kernel {
            id: (self.add)(suffix, dims, data, stored.dtype),
            scale,
        }
    }

    /// Stores kernel `w` and registers it in its own layout, as a `dims` array.
    pub fn kernel(
        &self,
        w: &Weights,
        axis: ChannelAxis,
        suffix: &str,
        dims: Vec<usize>,
    ) -> Result<Kernel, String> {
        let (stored, scale) = self.store(w, axis, suffix)?;
        Ok(self.add(suffix, dims, &stored.values, &stored, scale))
    }
}

/// A port's identifier, the rule every generated name follows: the bare `prefix` when
/// there is one such port, else the prefix numbered from 0 (`input0`, `input1`, ...).
fn port_ident(prefix: &str, single: bool, k: usize) -> String {
    if single {
        prefix.to_string()
    } else {
        format!("{prefix}{k}")
    }
}
