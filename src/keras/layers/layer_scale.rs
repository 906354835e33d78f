//! ConvNeXt's `LayerScale` (`keras/src/applications/convnext.py`, and tf_keras's copy):
//! `x * gamma`, gamma `[projection_dim]` broadcast over the last axis. It is not a
//! `keras.layers` class, so only this class from those modules is accepted (legacy `.h5`
//! files record no module).

use super::{LayerKind, Options};
use crate::error::escape_for_message as esc;
use crate::ir::{Op, Weights};
use crate::keras::config::LayerEntry;

/// The modules that define the ConvNeXt `LayerScale`.
const MODULES: &[&str] = &[
    "keras.src.applications.convnext",
    "keras.applications.convnext",
    "tf_keras.src.applications.convnext",
];

#[derive(Debug)]
struct LayerScale {
    projection_dim: usize,
}

pub(super) fn parse(entry: &LayerEntry, options: &mut Options) -> Option<Box<dyn LayerKind>> {
    if let Some(module) = entry.module.as_deref() {
        if !MODULES.contains(&module) {
            options.problems.push(format!(
                "custom layer 'LayerScale' from module '{}' is not supported (only ConvNeXt's, \
                 from keras.src.applications.convnext)",
                esc(module)
            ));
            return None;
        }
    }
    // The initial value of gamma.
    options.ignore(&["init_values"]);
    let projection_dim = match options.int("projection_dim") {
        Some(d) if d > 0 => usize::try_from(d).ok()?,
        Some(d) => {
            options
                .problems
                .push(format!("option 'projection_dim'={d} must be positive"));
            return None;
        }
        None => {
            options
                .problems
                .push("option 'projection_dim' is missing".into());
            return None;
        }
    };
    Some(Box::new(LayerScale { projection_dim }))
}

impl LayerKind for LayerScale {
    fn weight_names(&self) -> Vec<&'static str> {
        vec!["gamma"]
    }

    fn build(&self, input: &[usize], weights: &[Weights]) -> Result<Op, String> {
        let [gamma] = weights else {
            return Err("missing weight 'gamma'".into());
        };
        super::check_shape("gamma", gamma, &[self.projection_dim])?;
        let last = input.last().copied().unwrap_or(1);
        // NumPy broadcasting: gamma of length 1 scales everything; otherwise it must match
        // the last axis (a last axis of 1 would grow the output, which Keras's own shape
        // inference does not allow either).
        if self.projection_dim != last && self.projection_dim != 1 {
            return Err(format!(
                "gamma has {} values, the input's last axis has {last}",
                self.projection_dim
            ));
        }
        Ok(Op::Affine {
            center: None,
            scale: gamma.data.clone(),
            shift: vec![0.0; self.projection_dim],
            inner: 1,
        })
    }
}
