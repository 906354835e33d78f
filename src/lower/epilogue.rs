//! What a Dense or Conv does with each finished sum (bias included) before it stores it:
//! the rescale a BatchNormalization after it became (`sum * scale + shift`, per output
//! channel, in that order, as Keras computes it), the residual connection's add (input 1
//! at the output's own index), then the elementwise activation.

use super::loops::{Buf, Ix, Stmt, Val};
use super::{AddWeight, WeightId};
use crate::ir::expr::Expr;
use crate::ir::Rescale;

#[derive(Debug, Clone, Copy, Default)]
pub struct Epilogue<'a> {
    /// The scale and shift arrays, indexed by output channel.
    pub rescale: Option<(WeightId, WeightId)>,
    /// Adds input 1 at the output's index ([`crate::ir::Op::Residual`]).
    pub residual: bool,
    pub activation: Option<&'a Expr>,
}

impl<'a> Epilogue<'a> {
    /// Registers the rescale's arrays, if any.
    pub fn new(
        rescale: Option<&Rescale>,
        residual: bool,
        activation: Option<&'a Expr>,
        add_weight: &mut AddWeight,
    ) -> Self {
        let rescale = rescale.map(|r| {
            let n = r.scale.len();
            (
                add_weight("scale", vec![n], &r.scale),
                add_weight("shift", vec![n], &r.shift),
            )
        });
        Epilogue {
            rescale,
            residual,
            activation,
        }
    }

    /// `sum` for output channel `channel`, stored at output index `at`, in its final form:
    /// statements to run first (binding `var` when the activation needs the value in a
    /// variable) and the value to store.
    pub fn finish(&self, sum: Val, channel: &Ix, at: &Ix, var: &str) -> (Vec<Stmt>, Val) {
        let value = match self.rescale {
            Some((scale, shift)) => {
                sum * Val::load(Buf::W(scale), channel.clone())
                    + Val::load(Buf::W(shift), channel.clone())
            }
            None => sum,
        };
        let value = if self.residual {
            value + Val::load(Buf::In(1), at.clone())
        } else {
            value
        };
        match (self.activation, value) {
            (Some(expr), Val::Var(name)) => (Vec::new(), Val::Apply(expr.clone(), name)),
            (Some(expr), value) => (
                vec![Stmt::let_(var.into(), value)],
                Val::Apply(expr.clone(), var.into()),
            ),
            (None, value) => (Vec::new(), value),
        }
    }

    /// Whether it changes the sum at all.
    pub fn is_identity(&self) -> bool {
        self.rescale.is_none() && !self.residual && self.activation.is_none()
    }
}
