//! Activation layers: `Activation`, `ReLU`, `LeakyReLU`, `ELU`, `Softmax`.

use super::{LayerKind, Options};
use crate::ir::{Op, Weights};
use crate::keras::activation::{self, ActivationSpec};
use crate::keras::config::KerasVersion;

#[derive(Debug)]
struct ActivationLayer(ActivationSpec);

pub(super) fn parse(
    class: &str,
    options: &mut Options,
    version: KerasVersion,
) -> Option<Box<dyn LayerKind>> {
    // Mark the options the activation reads; `activation::from_layer` interprets them.
    let keys: &[&str] = match class {
        "Activation" => &["activation"],
        "ReLU" => &["max_value", "negative_slope", "threshold", "alpha"],
        "LeakyReLU" => &["negative_slope", "alpha"],
        "ELU" => &["alpha"],
        "Softmax" => &["axis"],
        _ => &[],
    };
    let mut config = serde_json::Map::new();
    for key in keys {
        if let Some(v) = options.get(key) {
            config.insert((*key).to_string(), v.clone());
        }
    }
    if class == "Activation" && !config.contains_key("activation") {
        // A null activation is linear.
        config.insert("activation".into(), serde_json::Value::Null);
    }
    match activation::from_layer(class, &config, version)? {
        Ok(spec) => Some(Box::new(ActivationLayer(spec))),
        Err(e) => {
            options.problems.push(e);
            None
        }
    }
}

impl LayerKind for ActivationLayer {
    fn weight_names(&self) -> Vec<&'static str> {
        vec![]
    }

    fn build(&self, input: &[usize], _weights: &[Weights]) -> Result<Op, String> {
        Ok(Op::Activation(self.0.resolve(input)?))
    }
}
