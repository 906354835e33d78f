//! Frontend: operation nodes of functional models. Keras 3 saves a `keras.ops.*` or
//! `keras.activations.*` call on a symbolic tensor (`x + 3.0`, `ops.mean(x, axis=1)`) as a
//! node whose module is `keras.src.ops.*` (`keras.src.activations.*`), whose config holds
//! the operation's constructor arguments and whose call arguments mix tensors and
//! constants; tf.keras saves `tf.*` calls as `TFOpLambda` / `SlicingOpLambda` layers
//! naming the TensorFlow function. Both become the same [`OpKind`] with named
//! [`Params`], then IR ops.
//!
//! A class name alone never decides: a Keras 3 `Add` operation is not the `Add` merge
//! layer (see [`is_operation`]).

mod build;
mod params;

use serde_json::{Map, Value};

use super::config::{KerasVersion, LayerEntry};
use super::layers::{LayerKind, Step};
use crate::error::escape_for_message as esc;
use crate::ir::{CumulativeKind, MergeKind, ReduceKind, ScalarOp};
pub(crate) use params::Params;

/// Whether an entry is an operation node rather than a layer: a Keras 3 entry from an
/// ops or activations module, a tf.keras TF op layer, or (Keras 3 legacy `.h5`, which
/// drops the module) a Keras 3 entry whose config lacks the `trainable` every layer's
/// config has and whose form is not the layer's (see [`reads_as_layer`]).
pub(crate) fn is_operation(entry: &LayerEntry, version: KerasVersion) -> bool {
    if matches!(entry.class.as_str(), "TFOpLambda" | "SlicingOpLambda") {
        return true;
    }
    match entry.module.as_deref() {
        Some(module) => is_operation_module(module),
        None => {
            version.major >= 3
                && !entry.is_input()
                && !entry.config.contains_key("trainable")
                && k3_spec(&entry.class).is_some()
                && !reads_as_layer(entry)
        }
    }
}

/// For an entry without a module or `trainable` (hand-written JSON) whose class names
/// both a layer and an operation: whether its config and calls have the layer's form. A
/// merge layer takes one list of tensors, the operation two arguments; the Reshape layer
/// has `target_shape`, the operation `newshape`; the Concatenate operation always writes
/// its `axis` (whose default differs from the layer's).
fn reads_as_layer(entry: &LayerEntry) -> bool {
    match entry.class.as_str() {
        "Add" | "Subtract" | "Multiply" | "Maximum" | "Minimum" => entry
            .calls
            .iter()
            .all(|c| matches!(c.args.as_slice(), [Value::Array(_)])),
        "Reshape" => !entry.config.contains_key("newshape"),
        "Concatenate" => !entry.config.contains_key("axis"),
        _ => false,
    }
}

fn is_operation_module(module: &str) -> bool {
    ["keras.src.ops.", "keras.ops.", "keras.src.activations."]
        .iter()
        .any(|p| module.starts_with(p))
        || module == "keras.ops"
        || module == "keras.activations"
}

/// How Keras wrote the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    /// Keras 3: constructor arguments in the config, call arguments positional.
    Keras3,
    /// tf.keras `TFOpLambda`: the TensorFlow function's arguments, the first positional.
    Tf,
}

/// What an operation computes, with the names of its parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum OpKind {
    /// `x1 (op) x2`, tensors or constants.
    Binary(ScalarOp),
    /// An elementwise activation or math function of `x`, see [`build::unary`].
    Unary(&'static str),
    Reduce(ReduceKind),
    Cumulative(CumulativeKind),
    Reshape,
    Transpose,
    ExpandDims,
    Squeeze,
    Concatenate,
    Stack,
    Split,
    GetItem,
    Matmul,
    Cast,
    Where,
}

/// One Keras 3 class: its kind and the names of its positional call arguments.
struct Spec {
    kind: OpKind,
    call: &'static [&'static str],
}

const X: &[&str] = &["x"];
const X1_X2: &[&str] = &["x1", "x2"];

/// The Keras 3 operation classes that are supported.
fn k3_spec(class: &str) -> Option<Spec> {
    use OpKind::*;
    let binary = |op| {
        Some(Spec {
            kind: Binary(op),
            call: X1_X2,
        })
    };
    let unary = |name| {
        Some(Spec {
            kind: Unary(name),
            call: X,
        })
    };
    let one = |kind| Some(Spec { kind, call: X });
    match class {
        "Add" => binary(ScalarOp::Add),
        "Subtract" => binary(ScalarOp::Subtract),
        "Multiply" => binary(ScalarOp::Multiply),
        "Divide" | "TrueDivide" => binary(ScalarOp::Divide),
        "Maximum" => binary(ScalarOp::Maximum),
        "Minimum" => binary(ScalarOp::Minimum),
        "Greater" => binary(ScalarOp::Greater),
        "GreaterEqual" => binary(ScalarOp::GreaterEqual),
        "Less" => binary(ScalarOp::Less),
        "LessEqual" => binary(ScalarOp::LessEqual),
        "Equal" => binary(ScalarOp::Equal),
        "Power" => Some(Spec {
            kind: Unary("power"),
            call: &["x", "x2"],
        }),
        "Exp" => unary("exp"),
        "Log" => unary("log"),
        "Sqrt" => unary("sqrt"),
        "Rsqrt" => unary("rsqrt"),
        "Square" => unary("square"),
        "Abs" | "Absolute" => unary("abs"),
        "Negative" => unary("negative"),
        "Reciprocal" => unary("reciprocal"),
        "Clip" => unary("clip"),
        "Tanh" => unary("tanh"),
        "Sigmoid" => unary("sigmoid"),
        "Relu" => unary("relu"),
        "ReLU" => unary("relu_options"),
        "Relu6" => unary("relu6"),
        "LeakyRelu" => unary("leaky_relu"),
        "Elu" => unary("elu"),
        "Selu" => unary("selu"),
        "Celu" => unary("celu"),
        "Gelu" => unary("gelu"),
        "Softplus" => unary("softplus"),
        "Softsign" => unary("softsign"),
        "Silu" | "Swish" => unary("silu"),
        "HardSigmoid" => unary("hard_sigmoid"),
        "HardSilu" | "HardSwish" => unary("hard_silu"),
        "Mish" => unary("mish"),
        "LogSigmoid" => unary("log_sigmoid"),
        "HardTanh" => unary("hard_tanh"),
        "TanhShrink" => unary("tanh_shrink"),
        "Squareplus" => unary("squareplus"),
        "SparsePlus" => unary("sparse_plus"),
        "SoftShrink" => unary("soft_shrink"),
        "HardShrink" => unary("hard_shrink"),
        "SparseSigmoid" => unary("sparse_sigmoid"),
        "Threshold" => unary("threshold"),
        "Softmax" => unary("softmax"),
        "LogSoftmax" => unary("log_softmax"),
        "Sparsemax" => unary("sparsemax"),
        "Glu" => unary("glu"),
        "Cumsum" => one(Cumulative(CumulativeKind::Sum)),
        "Cumprod" => one(Cumulative(CumulativeKind::Product)),
        "Mean" => one(Reduce(ReduceKind::Mean)),
        "Sum" => one(Reduce(ReduceKind::Sum)),
        "Max" | "Amax" => one(Reduce(ReduceKind::Max)),
        "Min" | "Amin" => one(Reduce(ReduceKind::Min)),
        "Reshape" => one(Reshape),
        "Transpose" => one(Transpose),
        "ExpandDims" => one(ExpandDims),
        "Squeeze" => one(Squeeze),
        "Concatenate" => Some(Spec {
            kind: Concatenate,
            call: &["xs"],
        }),
        "Stack" => one(Stack),
        "Split" => one(Split),
        "GetItem" => Some(Spec {
            kind: GetItem,
            call: &["x", "key"],
        }),
        "Matmul" => Some(Spec {
            kind: Matmul,
            call: X1_X2,
        }),
        "Cast" => one(Cast),
        "Where" => Some(Spec {
            kind: Where,
            call: &["condition", "x1", "x2"],
        }),
        _ => None,
    }
}

/// The supported TensorFlow functions of tf.keras TF op layers (`compat.v1.` prefixes
/// removed): the kind and each TensorFlow parameter's name as the Keras 3 operation calls
/// it, in TensorFlow's positional order.
fn tf_spec(function: &str) -> Option<(OpKind, &'static [(&'static str, &'static str)])> {
    use OpKind::*;
    const XY: &[(&str, &str)] = &[("x", "x1"), ("y", "x2")];
    const FEATURES: &[(&str, &str)] = &[("features", "x")];
    const PLAIN_X: &[(&str, &str)] = &[("x", "x")];
    const LOGITS: &[(&str, &str)] = &[("logits", "x"), ("axis", "axis")];
    const CUMULATIVE: &[(&str, &str)] = &[
        ("x", "x"),
        ("axis", "axis"),
        ("exclusive", "exclusive"),
        ("reverse", "reverse"),
    ];
    const REDUCE: &[(&str, &str)] = &[
        ("input_tensor", "x"),
        ("axis", "axis"),
        ("keepdims", "keepdims"),
    ];
    let binary = |op| Some((Binary(op), XY));
    Some(match function {
        "__operators__.add" | "math.add" | "math.add_v2" => return binary(ScalarOp::Add),
        "math.subtract" => return binary(ScalarOp::Subtract),
        "math.multiply" => return binary(ScalarOp::Multiply),
        "math.truediv" | "math.divide" => return binary(ScalarOp::Divide),
        "math.maximum" => return binary(ScalarOp::Maximum),
        "math.minimum" => return binary(ScalarOp::Minimum),
        "math.greater" => return binary(ScalarOp::Greater),
        "math.greater_equal" => return binary(ScalarOp::GreaterEqual),
        "math.less" => return binary(ScalarOp::Less),
        "math.less_equal" => return binary(ScalarOp::LessEqual),
        "math.equal" => return binary(ScalarOp::Equal),
        "math.pow" => (Unary("power"), &[("x", "x"), ("y", "x2")]),
        "math.exp" => (Unary("exp"), PLAIN_X),
        "math.log" => (Unary("log"), PLAIN_X),
        "math.sqrt" => (Unary("sqrt"), PLAIN_X),
        "math.rsqrt" => (Unary("rsqrt"), PLAIN_X),
        "math.square" => (Unary("square"), PLAIN_X),
        "math.abs" => (Unary("abs"), PLAIN_X),
        "math.negative" => (Unary("negative"), PLAIN_X),
        "math.reciprocal" => (Unary("reciprocal"), PLAIN_X),
        "math.tanh" | "nn.tanh" => (Unary("tanh"), PLAIN_X),
        "math.sigmoid" | "nn.sigmoid" => (Unary("sigmoid"), PLAIN_X),
        "math.log_sigmoid" => (Unary("log_sigmoid"), PLAIN_X),
        "math.softplus" | "nn.softplus" => (Unary("softplus"), FEATURES),
        "math.softsign" | "nn.softsign" => (Unary("softsign"), FEATURES),
        "nn.relu" => (Unary("relu"), FEATURES),
        "nn.relu6" => (Unary("relu6"), FEATURES),
        "nn.elu" => (Unary("elu_default"), FEATURES),
        "nn.selu" => (Unary("selu"), FEATURES),
        "nn.silu" | "nn.swish" => (Unary("silu"), &[("features", "x"), ("beta", "beta")]),
        "nn.gelu" => (
            Unary("gelu"),
            &[("features", "x"), ("approximate", "approximate")],
        ),
        "nn.leaky_relu" => (
            Unary("leaky_relu"),
            &[("features", "x"), ("alpha", "negative_slope")],
        ),
        "nn.softmax" | "math.softmax" => (Unary("softmax"), LOGITS),
        "nn.log_softmax" | "math.log_softmax" => (Unary("log_softmax"), LOGITS),
        "clip_by_value" => (
            Unary("clip"),
            &[
                ("t", "x"),
                ("clip_value_min", "x_min"),
                ("clip_value_max", "x_max"),
            ],
        ),
        "math.cumsum" => (Cumulative(CumulativeKind::Sum), CUMULATIVE),
        "math.cumprod" => (Cumulative(CumulativeKind::Product), CUMULATIVE),
        "math.reduce_mean" => (Reduce(ReduceKind::Mean), REDUCE),
        "math.reduce_sum" => (Reduce(ReduceKind::Sum), REDUCE),
        "math.reduce_max" => (Reduce(ReduceKind::Max), REDUCE),
        "math.reduce_min" => (Reduce(ReduceKind::Min), REDUCE),
        "reshape" => (Reshape, &[("tensor", "x"), ("shape", "newshape")]),
        "transpose" | "linalg.transpose" => (
            Transpose,
            &[("a", "x"), ("perm", "axes"), ("conjugate", "conjugate")],
        ),
        "expand_dims" => (ExpandDims, &[("input", "x"), ("axis", "axis")]),
        "squeeze" => (Squeeze, &[("input", "x"), ("axis", "axis")]),
        "concat" => (Concatenate, &[("values", "xs"), ("axis", "axis")]),
        "stack" => (Stack, &[("values", "x"), ("axis", "axis")]),
        "split" => (
            Split,
            &[
                ("value", "x"),
                ("num_or_size_splits", "sizes"),
                ("axis", "axis"),
                ("num", "num"),
            ],
        ),
        "__operators__.getitem" => (GetItem, &[("tensor", "x"), ("slice_spec", "key")]),
        "linalg.matmul" | "matmul" => (
            Matmul,
            &[
                ("a", "x1"),
                ("b", "x2"),
                ("transpose_a", "transpose_a"),
                ("transpose_b", "transpose_b"),
                ("adjoint_a", "adjoint_a"),
                ("adjoint_b", "adjoint_b"),
                ("a_is_sparse", "a_is_sparse"),
                ("b_is_sparse", "b_is_sparse"),
                ("output_type", "output_type"),
            ],
        ),
        "cast" => (Cast, &[("x", "x"), ("dtype", "dtype")]),
        "where" | "where_v2" => (
            Where,
            &[("condition", "condition"), ("x", "x1"), ("y", "x2")],
        ),
        _ => return None,
    })
}

/// An operation node, parsed.
#[derive(Debug)]
pub(crate) struct Operation {
    kind: OpKind,
    dialect: Dialect,
    /// Keras 3: the call's positional argument names; tf.keras: `(tf name, name)` pairs.
    call: Vec<(String, String)>,
    /// Keras 3 constructor arguments (`axis`, `keepdims`, ...).
    config: Map<String, Value>,
    version: KerasVersion,
}

/// Parses an operation node (see [`is_operation`]), or says why it cannot be converted.
pub(crate) fn parse(
    entry: &LayerEntry,
    version: KerasVersion,
) -> Result<Box<dyn LayerKind>, Vec<String>> {
    let mut config = entry.config.clone();
    config.remove("name");
    if matches!(entry.class.as_str(), "TFOpLambda" | "SlicingOpLambda") {
        // A TF op layer's `dtype` is its dtype policy (the op's own dtype is an argument).
        config.remove("trainable");
        config.remove("dtype");
        let function = config
            .remove("function")
            .and_then(|f| f.as_str().map(str::to_string))
            .unwrap_or_default();
        let short = function.trim_start_matches("compat.v1.");
        let Some((kind, params)) = tf_spec(short) else {
            return Err(vec![format!(
                "TensorFlow operation 'tf.{}' is not supported{}",
                esc(&function),
                replacement(short)
            )]);
        };
        if let Some((key, _)) = config.iter().next() {
            return Err(vec![format!("option '{}' is not supported", esc(key))]);
        }
        return Ok(Box::new(Operation {
            kind,
            dialect: Dialect::Tf,
            call: params
                .iter()
                .map(|(tf, name)| (tf.to_string(), name.to_string()))
                .collect(),
            config: Map::new(),
            version,
        }));
    }
    let Some(spec) = k3_spec(&entry.class) else {
        return Err(vec![format!(
            "operation '{}' (module '{}') is not supported{}",
            esc(&entry.class),
            esc(entry.module.as_deref().unwrap_or("?")),
            replacement(&entry.class.to_lowercase())
        )]);
    };
    Ok(Box::new(Operation {
        kind: spec.kind,
        dialect: Dialect::Keras3,
        call: spec
            .call
            .iter()
            .map(|n| (n.to_string(), n.to_string()))
            .collect(),
        config,
        version,
    }))
}

/// A layer that computes what an unsupported operation does, when there is one.
fn replacement(name: &str) -> &'static str {
    let name = name.rsplit('.').next().unwrap_or(name);
    match name {
        "conv2d" | "conv" | "convolution" => " (use the Conv1D / Conv2D / Conv3D layers instead)",
        "average_pool" | "avg_pool" | "avg_pool2d" => " (use an AveragePooling layer instead)",
        "max_pool" | "max_pool2d" => " (use a MaxPooling layer instead)",
        "take" | "embedding_lookup" | "gather" => " (use an Embedding layer instead)",
        "moments" | "normalize" | "batch_normalization" => {
            " (use a BatchNormalization or LayerNormalization layer instead)"
        }
        "einsum" => " (use an EinsumDense layer instead)",
        "tile" | "repeat" => " (use RepeatVector or UpSampling layers instead)",
        "pad" => " (use a ZeroPadding layer instead)",
        "resize" | "image.resize" => " (use a Resizing layer instead)",
        _ => "",
    }
}

impl LayerKind for Operation {
    fn weight_names(&self) -> Vec<&'static str> {
        Vec::new()
    }

    fn operation_steps(
        &self,
        inputs: &[&[usize]],
        args: &[Value],
        kwargs: &Map<String, Value>,
    ) -> Option<Result<Vec<Step>, String>> {
        Some(self.steps_for(inputs, args, kwargs))
    }
}

impl Operation {
    fn steps_for(
        &self,
        inputs: &[&[usize]],
        args: &[Value],
        kwargs: &Map<String, Value>,
    ) -> Result<Vec<Step>, String> {
        let mut params = Params::new(inputs);
        if args.len() > self.call.len() {
            return Err(format!(
                "is called with {} positional arguments; {} are supported",
                args.len(),
                self.call.len()
            ));
        }
        for ((_, name), value) in self.call.iter().zip(args) {
            params.insert(name, value.clone());
        }
        for (key, value) in kwargs {
            let name = match self.dialect {
                Dialect::Keras3 => Some(key.as_str()),
                Dialect::Tf => self
                    .call
                    .iter()
                    .find(|(tf, _)| tf == key)
                    .map(|(_, name)| name.as_str()),
            };
            match name {
                Some(name) => params.insert(name, value.clone()),
                None if key == "name" => {}
                None => {
                    return Err(format!(
                        "is called with argument '{}', which is not supported",
                        esc(key)
                    ))
                }
            }
        }
        for (key, value) in &self.config {
            params.insert(key, value.clone());
        }
        let steps = build::steps(
            self.kind,
            &mut params,
            self.dialect == Dialect::Tf,
            self.version,
        )?;
        params.finish()?;
        Ok(steps)
    }
}

/// The merge kind of a binary operation on two tensors, where there is one.
fn merge_kind(op: ScalarOp) -> Option<MergeKind> {
    match op {
        ScalarOp::Add => Some(MergeKind::Add),
        ScalarOp::Subtract => Some(MergeKind::Subtract),
        ScalarOp::Multiply => Some(MergeKind::Multiply),
        ScalarOp::Divide => Some(MergeKind::Divide),
        ScalarOp::Maximum => Some(MergeKind::Maximum),
        ScalarOp::Minimum => Some(MergeKind::Minimum),
        ScalarOp::Greater
        | ScalarOp::GreaterEqual
        | ScalarOp::Less
        | ScalarOp::LessEqual
        | ScalarOp::Equal
        | ScalarOp::NotEqual => None,
    }
}

#[cfg(test)]
mod tests;
