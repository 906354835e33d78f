//! Frontend: Keras activation identifiers (Keras 2 and Keras 3 names, strings or serialised
//! objects) to the IR's [`Activation`], with each function's defaults taken from Keras's
//! `keras/src/activations/activations.py` (and `tf_keras/src/activations.py` for Keras 2).

use serde_json::Value;

use super::config::KerasVersion;
use crate::ir::{Activation, AxisFn};

/// An activation as written in a layer config; axis functions keep their Keras axis until
/// the input shape is known.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ActivationSpec {
    Plain(Activation),
    /// `axis` counts the batch dimension, as in Keras (`-1` is the last axis).
    Axis {
        func: AxisFn,
        axis: i64,
    },
}

impl ActivationSpec {
    /// The activation for a tensor of `shape` (batch excluded).
    pub(crate) fn resolve(&self, shape: &[usize]) -> Result<Activation, String> {
        match self {
            ActivationSpec::Plain(a) => Ok(a.clone()),
            ActivationSpec::Axis { func, axis } => Ok(Activation::Axis {
                func: *func,
                axis: resolve_axis(*axis, shape.len())?,
            }),
        }
    }

    pub(crate) fn linear() -> Self {
        ActivationSpec::Plain(Activation::Linear)
    }
}

/// Resolves a Keras axis (counting the batch dimension, negative from the end) to an index
/// into a shape of `rank` dimensions without batch. The batch axis is refused.
pub(crate) fn resolve_axis(axis: i64, rank: usize) -> Result<usize, String> {
    let full = i64::try_from(rank).map_err(|_| "rank too large".to_string())? + 1;
    let resolved = if axis < 0 { axis + full } else { axis };
    if resolved == 0 {
        return Err(format!(
            "axis {axis} is the batch axis, which is not supported"
        ));
    }
    if resolved < 0 || resolved >= full {
        return Err(format!(
            "axis {axis} is out of range for an input of rank {full} (batch included)"
        ));
    }
    usize::try_from(resolved - 1).map_err(|_| format!("axis {axis} is out of range"))
}

/// Parses an activation config value: `null`, a name, or a serialised function object
/// (`{"module": "keras.activations", "class_name": "function", "config": "relu", ...}`).
pub(crate) fn parse(value: &Value, version: KerasVersion) -> Result<ActivationSpec, String> {
    match value {
        Value::Null => Ok(ActivationSpec::linear()),
        Value::String(name) => from_name(name, version),
        Value::Object(obj) => {
            let class = obj.get("class_name").and_then(Value::as_str).unwrap_or("");
            let module = obj.get("module").and_then(Value::as_str).unwrap_or("");
            let registered = obj.get("registered_name").and_then(Value::as_str);
            let inner = obj.get("config");
            if class == "function" || class == "builtins.function" {
                let Some(name) = inner.and_then(Value::as_str) else {
                    return Err("activation object without a function name".into());
                };
                let builtin = module.is_empty()
                    || module == "keras.activations"
                    || module.starts_with("keras.src.activations")
                    || module.starts_with("tf_keras.")
                    || module == "keras.src.activations.activations";
                if !builtin || registered.is_some_and(|r| r.contains('>')) {
                    let origin = if module.is_empty() {
                        "its config names no module".to_string()
                    } else {
                        format!("module '{}'", crate::error::escape_for_message(module))
                    };
                    return Err(format!(
                        "custom activation function '{}' ({origin}) is not supported: use a \
                         built-in activation, or compute it with `keras.ops` calls on the \
                         layer's output (saved as operations, which keras2src reads)",
                        crate::error::escape_for_message(registered.unwrap_or(name)),
                    ));
                }
                return from_name(name, version);
            }
            if module == "keras.layers" || module.is_empty() {
                let empty = serde_json::Map::new();
                let config = inner.and_then(Value::as_object).unwrap_or(&empty);
                if let Some(spec) = from_layer(class, config, version) {
                    return spec;
                }
            }
            Err(format!(
                "activation object of class '{}' is not supported (use a built-in activation name)",
                crate::error::escape_for_message(class)
            ))
        }
        other => Err(format!("activation must be a name, got {other}")),
    }
}

/// The activation of an activation layer (`Activation`, `ReLU`, `LeakyReLU`, `ELU`,
/// `Softmax`), or `None` for other classes. Every option of these layers is honoured.
pub(crate) fn from_layer(
    class: &str,
    config: &serde_json::Map<String, Value>,
    version: KerasVersion,
) -> Option<Result<ActivationSpec, String>> {
    let get = |key: &str| config.get(key).filter(|v| !v.is_null());
    let float = |key: &str, default: f32| -> Result<f32, String> {
        match get(key) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .map(|f| f as f32)
                .ok_or_else(|| format!("option '{key}' must be a number, got {v}")),
        }
    };
    let spec = match class {
        "Activation" => match config.get("activation") {
            None => Err("option 'activation' is missing".to_string()),
            Some(v) => parse(v, version),
        },
        "ReLU" => (|| {
            let max_value = match get("max_value") {
                None => None,
                Some(_) => Some(float("max_value", 0.0)?),
            };
            // Keras 2 wrote `negative_slope`; very old configs `alpha`.
            let negative_slope = match get("negative_slope") {
                Some(_) => float("negative_slope", 0.0)?,
                None => float("alpha", 0.0)?,
            };
            Ok(ActivationSpec::Plain(Activation::Relu {
                negative_slope,
                max_value,
                threshold: float("threshold", 0.0)?,
            }))
        })(),
        "LeakyReLU" => (|| {
            // Keras 3 writes `negative_slope` (and accepts the deprecated `alpha`); Keras 2
            // writes `alpha`. The layer's default is 0.3 in both.
            let negative_slope = match get("negative_slope") {
                Some(_) => float("negative_slope", 0.3)?,
                None => float("alpha", 0.3)?,
            };
            Ok(ActivationSpec::Plain(Activation::Relu {
                negative_slope,
                max_value: None,
                threshold: 0.0,
            }))
        })(),
        // Keras 3's ELU layer does not write `alpha` into its config (default 1.0).
        "ELU" => float("alpha", 1.0).map(|alpha| ActivationSpec::Plain(Activation::Elu { alpha })),
        "Softmax" => (|| {
            let axis = match get("axis") {
                None => -1,
                Some(Value::Array(items)) => match &items[..] {
                    [single] => single
                        .as_i64()
                        .ok_or_else(|| format!("option 'axis' must be an integer, got {single}"))?,
                    _ => {
                        return Err(format!(
                            "option 'axis' with several axes ({}) is not supported",
                            Value::Array(items.clone())
                        ))
                    }
                },
                Some(v) => v
                    .as_i64()
                    .ok_or_else(|| format!("option 'axis' must be an integer, got {v}"))?,
            };
            Ok(ActivationSpec::Axis {
                func: AxisFn::Softmax,
                axis,
            })
        })(),
        _ => return None,
    };
    Some(spec)
}

/// Maps a Keras activation name to the IR with Keras's default parameters.
pub(crate) fn from_name(name: &str, version: KerasVersion) -> Result<ActivationSpec, String> {
    use Activation as A;
    let plain = |a: Activation| Ok(ActivationSpec::Plain(a));
    let axis = |func: AxisFn| Ok(ActivationSpec::Axis { func, axis: -1 });
    match name {
        "linear" => plain(A::Linear),
        "relu" => plain(A::relu()),
        "relu6" => plain(A::Relu {
            negative_slope: 0.0,
            max_value: Some(6.0),
            threshold: 0.0,
        }),
        // Keras 3 `leaky_relu(x, negative_slope=0.2)`; tf.keras aliases `tf.nn.leaky_relu`
        // whose `alpha` is also 0.2.
        "leaky_relu" => plain(A::Relu {
            negative_slope: 0.2,
            max_value: None,
            threshold: 0.0,
        }),
        "sigmoid" => plain(A::Sigmoid),
        "hard_sigmoid" => plain(A::HardSigmoid {
            slope: if version.major >= 3 { 1.0 / 6.0 } else { 0.2 },
        }),
        "tanh" => plain(A::Tanh),
        "elu" => plain(A::Elu { alpha: 1.0 }),
        "selu" => plain(A::Selu),
        "celu" => plain(A::Celu { alpha: 1.0 }),
        "gelu" => plain(A::Gelu { approximate: false }),
        "softplus" => plain(A::Softplus),
        "softsign" => plain(A::Softsign),
        "silu" | "swish" => plain(A::Silu),
        "hard_silu" | "hard_swish" => plain(A::HardSilu),
        "mish" => plain(A::Mish),
        "exponential" => plain(A::Exponential),
        "log_sigmoid" => plain(A::LogSigmoid),
        "hard_tanh" => plain(A::HardTanh),
        "tanh_shrink" => plain(A::TanhShrink),
        "squareplus" => plain(A::Squareplus { b: 4.0 }),
        "sparse_plus" => plain(A::SparsePlus),
        "soft_shrink" => plain(A::SoftShrink { threshold: 0.5 }),
        "hard_shrink" => plain(A::HardShrink { threshold: 0.5 }),
        "sparse_sigmoid" => plain(A::SparseSigmoid),
        "softmax" | "softmax_v2" => axis(AxisFn::Softmax),
        "log_softmax" => axis(AxisFn::LogSoftmax),
        "sparsemax" => axis(AxisFn::Sparsemax),
        "glu" => axis(AxisFn::Glu),
        "threshold" => {
            Err("activation 'threshold' needs arguments a layer config cannot give".to_string())
        }
        other => Err(format!(
            "unknown activation '{}'",
            crate::error::escape_for_message(other)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K3: KerasVersion = KerasVersion { major: 3 };
    const K2: KerasVersion = KerasVersion { major: 2 };

    #[test]
    fn hard_sigmoid_depends_on_version() {
        assert_eq!(
            from_name("hard_sigmoid", K2).unwrap(),
            ActivationSpec::Plain(Activation::HardSigmoid { slope: 0.2 })
        );
        assert_eq!(
            from_name("hard_sigmoid", K3).unwrap(),
            ActivationSpec::Plain(Activation::HardSigmoid { slope: 1.0 / 6.0 })
        );
    }

    #[test]
    fn axes_resolve_against_the_full_shape() {
        assert_eq!(resolve_axis(-1, 3).unwrap(), 2);
        assert_eq!(resolve_axis(1, 3).unwrap(), 0);
        assert_eq!(resolve_axis(-3, 3).unwrap(), 0);
        assert!(resolve_axis(0, 3).is_err());
        assert!(resolve_axis(-4, 3).is_err());
        assert!(resolve_axis(4, 3).is_err());
    }

    #[test]
    fn serialised_function_objects() {
        let v: Value = serde_json::from_str(
            r#"{"module": "keras.activations", "class_name": "function", "config": "relu", "registered_name": "function"}"#,
        )
        .unwrap();
        assert_eq!(
            parse(&v, K3).unwrap(),
            ActivationSpec::Plain(Activation::relu())
        );
        let v: Value = serde_json::from_str(
            r#"{"module": "builtins", "class_name": "function", "config": "my_act", "registered_name": "function"}"#,
        )
        .unwrap();
        assert!(parse(&v, K3).unwrap_err().contains("custom"));
        assert!(parse(&Value::String("nope".into()), K3)
            .unwrap_err()
            .contains("unknown"));
    }
}
