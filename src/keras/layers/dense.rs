//! `Dense`: `activation(x · kernel + bias)` on the last axis; kernel `[in, units]`.

use super::{check_shape, LayerKind, Options};
use crate::ir::{Op, Weights};
use crate::keras::activation::{self, ActivationSpec};
use crate::keras::config::KerasVersion;

#[derive(Debug)]
struct Dense {
    units: usize,
    use_bias: bool,
    activation: ActivationSpec,
}

pub(super) fn parse(options: &mut Options, version: KerasVersion) -> Option<Box<dyn LayerKind>> {
    options.ignore(&[
        "kernel_initializer",
        "bias_initializer",
        "kernel_regularizer",
        "bias_regularizer",
        "kernel_constraint",
        "bias_constraint",
        "lora_alpha",
    ]);
    options.only(
        "lora_rank",
        &serde_json::Value::Null,
        " (merge the LoRA weights into the kernel before saving)",
    );
    options.only(
        "quantization_config",
        &serde_json::Value::Null,
        " (quantized layer)",
    );
    let units = match options.int("units") {
        Some(u) if u > 0 => usize::try_from(u).ok(),
        Some(u) => {
            options
                .problems
                .push(format!("option 'units'={u} must be positive"));
            None
        }
        None => {
            options.problems.push("option 'units' is missing".into());
            None
        }
    };
    let use_bias = options.bool("use_bias", true);
    let activation = match options.get("activation") {
        None => ActivationSpec::linear(),
        Some(v) => match activation::parse(v, version) {
            Ok(a) => a,
            Err(e) => {
                options.problems.push(e);
                return None;
            }
        },
    };
    Some(Box::new(Dense {
        units: units?,
        use_bias,
        activation,
    }))
}

impl LayerKind for Dense {
    fn weight_names(&self) -> Vec<&'static str> {
        if self.use_bias {
            vec!["kernel", "bias"]
        } else {
            vec!["kernel"]
        }
    }

    fn build(&self, input: &[usize], weights: &[Weights]) -> Result<Op, String> {
        let Some(&features) = input.last() else {
            return Err("Dense needs an input with at least one dimension".into());
        };
        let kernel = weights.first().ok_or("missing kernel")?;
        check_shape("kernel", kernel, &[features, self.units])?;
        let bias = match weights.get(1) {
            Some(b) if self.use_bias => {
                check_shape("bias", b, &[self.units])?;
                Some(b.clone())
            }
            _ => None,
        };
        let mut output = input.to_vec();
        if let Some(last) = output.last_mut() {
            *last = self.units;
        }
        Ok(Op::Dense {
            kernel: kernel.clone(),
            bias,
            rescale: None,
            activation: self.activation.resolve(&output)?,
        })
    }
}
