//! Operation nodes to IR ops, one function per [`OpKind`]. Axes in Keras's arguments
//! count the batch axis (which no operation may touch); IR shapes do not.

use serde_json::Value;

use super::params::{Arg, Params};
use super::{merge_kind, OpKind};
use crate::error::escape_for_message as esc;
use crate::ir::{Activation, AxisFn, CumulativeKind, MathOp, Op, ReduceKind, ScalarOp, Weights};
use crate::keras::activation::{self, resolve_axis};
use crate::keras::config::KerasVersion;
use crate::keras::layers::{Source, Step};

/// The nodes for one call.
pub(super) fn steps(
    kind: OpKind,
    p: &mut Params,
    tf: bool,
    version: KerasVersion,
) -> Result<Vec<Step>, String> {
    match kind {
        OpKind::Binary(op) => binary(op, p),
        OpKind::Unary(name) => {
            let x = p.tensor("x")?;
            let act = unary(name, p, tf, version)?;
            let act = match act {
                activation::ActivationSpec::Plain(a) => a,
                spec => spec.resolve(p.shapes[x])?,
            };
            Ok(one(Op::Activation(act), x))
        }
        OpKind::Reduce(kind) => reduce(kind, p),
        OpKind::Cumulative(kind) => cumulative(kind, p),
        OpKind::Reshape => reshape(p),
        OpKind::Transpose => transpose(p),
        OpKind::ExpandDims => {
            let x = p.tensor("x")?;
            let shape = p.shapes[x];
            let axis = p.int("axis")?.ok_or("argument 'axis' is missing")?;
            let at = new_axis(axis, shape.len())?;
            let mut target: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
            target.insert(at, 1);
            Ok(one(Op::Reshape { target }, x))
        }
        OpKind::Squeeze => squeeze(p),
        OpKind::Concatenate => {
            let xs = p.tensors("xs")?;
            let first = xs.first().ok_or("concatenates no tensors")?;
            let axis = p.int("axis")?.unwrap_or(0);
            let axis = resolve_axis(axis, p.shapes[*first].len())?;
            Ok(vec![Step::new(
                None,
                Op::Concat { axis },
                xs.into_iter().map(Source::Input).collect(),
            )])
        }
        OpKind::Stack => stack(p),
        OpKind::Split => split(p, tf),
        OpKind::GetItem => get_item(p),
        OpKind::Matmul => matmul(p),
        OpKind::Where => {
            let condition = p.tensor("condition")?;
            let mut inputs = vec![Source::Input(condition)];
            let mut branch = |p: &mut Params, name: &str| match p.arg(name)? {
                Some(Arg::Tensor(k)) => {
                    inputs.push(Source::Input(k));
                    Ok(None)
                }
                Some(Arg::Scalar(v)) => Ok(Some(v)),
                Some(Arg::Array(w)) if w.len() == 1 => Ok(Some(w.data[0])),
                Some(Arg::Array(_)) => Err(format!(
                    "a where with a constant array as '{name}' is not supported"
                )),
                None => Err("a where without both branches (indices) is not supported".into()),
            };
            let then = branch(p, "x1")?;
            let otherwise = branch(p, "x2")?;
            Ok(vec![Step::new(
                None,
                Op::Select { then, otherwise },
                inputs,
            )])
        }
        OpKind::Cast => {
            let x = p.tensor("x")?;
            let dtype = p.raw("dtype").unwrap_or(Value::Null);
            match dtype.as_str() {
                Some("float16" | "float32" | "float64" | "bfloat16") => Ok(one(Op::Identity, x)),
                _ => Err(format!(
                    "cast to {} is not supported (to a float type is)",
                    esc(&dtype.to_string())
                )),
            }
        }
    }
}

fn one(op: Op, x: usize) -> Vec<Step> {
    vec![Step::new(None, op, vec![Source::Input(x)])]
}

fn binary(op: ScalarOp, p: &mut Params) -> Result<Vec<Step>, String> {
    let a = p.arg("x1")?.ok_or("argument 'x1' is missing")?;
    let b = p.arg("x2")?.ok_or("argument 'x2' is missing")?;
    let (x, constant, constant_first) = match (a, b) {
        (Arg::Tensor(x), Arg::Tensor(y)) => {
            let kind = merge_kind(op).ok_or(
                "a comparison of two tensors is not supported (of a tensor and a number is)",
            )?;
            return Ok(vec![Step::new(
                None,
                Op::Merge { kind },
                vec![Source::Input(x), Source::Input(y)],
            )]);
        }
        (Arg::Tensor(x), c) => (x, c, false),
        (c, Arg::Tensor(x)) => (x, c, true),
        _ => return Err("operates on constants only; a tensor argument is needed".into()),
    };
    let value = match constant {
        Arg::Scalar(v) => v,
        Arg::Array(w) if w.len() == 1 => w.data[0],
        Arg::Array(w) => {
            let kind = merge_kind(op)
                .ok_or("a comparison with a constant array is not supported (with a number is)")?;
            let constant = per_sample(w, p.shapes[x].len())?;
            return Ok(one(
                Op::ConstMerge {
                    kind,
                    constant,
                    constant_first,
                },
                x,
            ));
        }
        Arg::Tensor(_) => return Err("internal error: two tensors".into()),
    };
    if merge_kind(op).is_none() && !value.is_finite() {
        return Err(format!(
            "a comparison with {value} is not supported (with a finite number is)"
        ));
    }
    Ok(one(
        Op::Activation(Activation::Scalar {
            op,
            value,
            constant_first,
        }),
        x,
    ))
}

/// A constant operand aligned with a tensor of `rank` axes (batch excluded): its leading
/// axes of length 1 beyond that rank (the batch axis) are dropped.
fn per_sample(w: Weights, rank: usize) -> Result<Weights, String> {
    let extra = w.shape.len().saturating_sub(rank);
    if w.shape[..extra].iter().any(|&d| d != 1) {
        return Err(format!(
            "a constant of shape {:?} would broadcast over the batch axis; not supported",
            w.shape
        ));
    }
    Weights::new(w.shape[extra..].to_vec(), w.data)
}

/// The activation an elementwise operation computes.
fn unary(
    name: &str,
    p: &mut Params,
    tf: bool,
    version: KerasVersion,
) -> Result<activation::ActivationSpec, String> {
    use activation::ActivationSpec::{Axis, Plain};
    let number = |p: &mut Params, key: &str, default: f32| -> Result<f32, String> {
        Ok(p.number(key)?.unwrap_or(default))
    };
    let axis_fn = |p: &mut Params, func| -> Result<activation::ActivationSpec, String> {
        let axis = match p.ints("axis")? {
            None => -1,
            Some(axes) if axes.len() == 1 => axes[0],
            Some(axes) => {
                return Err(format!(
                    "argument 'axis'={axes:?} with several axes is not supported"
                ))
            }
        };
        Ok(Axis { func, axis })
    };
    Ok(match name {
        "power" => match p.arg("x2")? {
            Some(Arg::Scalar(exponent)) => Plain(Activation::Power { exponent }),
            Some(Arg::Array(w)) if w.len() == 1 => Plain(Activation::Power {
                exponent: w.data[0],
            }),
            _ => {
                return Err(
                    "a power with a tensor exponent is not supported (with a number is)".into(),
                )
            }
        },
        "exp" => Plain(Activation::Exponential),
        "log" => Plain(Activation::Math(MathOp::Log)),
        "sqrt" => Plain(Activation::Math(MathOp::Sqrt)),
        "rsqrt" => Plain(Activation::Math(MathOp::Rsqrt)),
        "square" => Plain(Activation::Math(MathOp::Square)),
        "abs" => Plain(Activation::Math(MathOp::Abs)),
        "negative" => Plain(Activation::Math(MathOp::Negative)),
        "reciprocal" => Plain(Activation::Math(MathOp::Reciprocal)),
        "clip" => {
            let (Some(min), Some(max)) = (p.number("x_min")?, p.number("x_max")?) else {
                return Err("a clip without both bounds is not supported".into());
            };
            Plain(Activation::Clip { min, max })
        }
        "relu_options" => {
            let negative_slope = number(p, "negative_slope", 0.0)?;
            let max_value = p.number("max_value")?;
            let threshold = number(p, "threshold", 0.0)?;
            Plain(Activation::Relu {
                negative_slope,
                max_value,
                threshold,
            })
        }
        "leaky_relu" => Plain(Activation::Relu {
            negative_slope: number(p, "negative_slope", 0.2)?,
            max_value: None,
            threshold: 0.0,
        }),
        "elu" => Plain(Activation::Elu {
            alpha: number(p, "alpha", 1.0)?,
        }),
        "elu_default" => Plain(Activation::Elu { alpha: 1.0 }),
        "celu" => Plain(Activation::Celu {
            alpha: number(p, "alpha", 1.0)?,
        }),
        // `keras.ops.gelu` defaults to the tanh form, `tf.nn.gelu` to the exact one.
        "gelu" => Plain(Activation::Gelu {
            approximate: p.bool("approximate", !tf)?,
        }),
        "silu" => {
            if number(p, "beta", 1.0)? != 1.0 {
                return Err("swish with beta other than 1 is not supported".into());
            }
            Plain(Activation::Silu)
        }
        "soft_shrink" => Plain(Activation::SoftShrink {
            threshold: number(p, "threshold", 0.5)?,
        }),
        "hard_shrink" => Plain(Activation::HardShrink {
            threshold: number(p, "threshold", 0.5)?,
        }),
        "squareplus" => Plain(Activation::Squareplus {
            b: number(p, "b", 4.0)?,
        }),
        "threshold" => {
            let (Some(threshold), Some(default_value)) =
                (p.number("threshold")?, p.number("default_value")?)
            else {
                return Err("threshold needs 'threshold' and 'default_value'".into());
            };
            Plain(Activation::Threshold {
                threshold,
                default_value,
            })
        }
        // Keras 3's `hard_sigmoid` operation (Keras 2 has no such TF op).
        "hard_sigmoid" => Plain(Activation::HardSigmoid { slope: 1.0 / 6.0 }),
        "softmax" => axis_fn(p, AxisFn::Softmax)?,
        "log_softmax" => axis_fn(p, AxisFn::LogSoftmax)?,
        "sparsemax" => axis_fn(p, AxisFn::Sparsemax)?,
        "glu" => axis_fn(p, AxisFn::Glu)?,
        other => activation::from_name(other, version)?,
    })
}

fn reduce(kind: ReduceKind, p: &mut Params) -> Result<Vec<Step>, String> {
    let x = p.tensor("x")?;
    let rank = p.shapes[x].len();
    let Some(axes) = p.ints("axis")? else {
        return Err("a reduction over every axis includes the batch axis; not supported".into());
    };
    let mut axes = axes
        .into_iter()
        .map(|a| resolve_axis(a, rank))
        .collect::<Result<Vec<usize>, String>>()?;
    axes.sort_unstable();
    axes.dedup();
    let keepdims = p.bool("keepdims", false)?;
    Ok(one(
        Op::Reduce {
            kind,
            axes,
            keepdims,
        },
        x,
    ))
}

/// `cumsum` / `cumprod` along one axis (tf.keras: `exclusive` and `reverse` off).
fn cumulative(kind: CumulativeKind, p: &mut Params) -> Result<Vec<Step>, String> {
    let x = p.tensor("x")?;
    for flag in ["exclusive", "reverse"] {
        p.only(flag, &Value::Bool(false))?;
    }
    if let Some(dtype) = p.raw("dtype").filter(|d| d != "float32" && !d.is_null()) {
        return Err(format!(
            "a running sum or product cast to {} is not supported",
            esc(&dtype.to_string())
        ));
    }
    let axis = p
        .int("axis")?
        .ok_or("a running sum or product over the flattened tensor mixes samples; give an axis")?;
    let axis = resolve_axis(axis, p.shapes[x].len())?;
    Ok(one(Op::Cumulative { kind, axis }, x))
}

fn reshape(p: &mut Params) -> Result<Vec<Step>, String> {
    let x = p.tensor("x")?;
    let shape = p
        .ints("newshape")?
        .ok_or("argument 'newshape' is missing")?;
    match shape.split_first() {
        Some((-1, rest)) if !rest.is_empty() => Ok(one(
            Op::Reshape {
                target: rest.to_vec(),
            },
            x,
        )),
        _ => Err(format!(
            "a reshape to {shape:?} is not supported: the first axis is the batch axis and \
             must be -1"
        )),
    }
}

fn transpose(p: &mut Params) -> Result<Vec<Step>, String> {
    let x = p.tensor("x")?;
    p.only("conjugate", &Value::Bool(false))?;
    let axes = p
        .ints("axes")?
        .ok_or("a transpose without 'axes' reverses the batch axis too; not supported")?;
    let rank = p.shapes[x].len();
    let resolved: Vec<i64> = axes
        .iter()
        .map(|&a| if a < 0 { a + rank as i64 + 1 } else { a })
        .collect();
    match resolved.split_first() {
        Some((0, rest)) if rest.len() == rank && rest.iter().all(|&a| a >= 1) => Ok(one(
            Op::Transpose {
                perm: rest.iter().map(|&a| (a - 1) as usize).collect(),
            },
            x,
        )),
        _ => Err(format!(
            "a transpose with axes {axes:?} is not supported (the batch axis must stay first)"
        )),
    }
}

/// Where `expand_dims(x, axis)` puts the new axis among the non-batch output axes, for an
/// input of `rank` axes (batch excluded).
fn new_axis(axis: i64, rank: usize) -> Result<usize, String> {
    let full = rank as i64 + 2;
    let a = if axis < 0 { axis + full } else { axis };
    if a <= 0 || a >= full {
        return Err(format!(
            "a new axis at {axis} is not supported (it must come after the batch axis)"
        ));
    }
    Ok((a - 1) as usize)
}

fn squeeze(p: &mut Params) -> Result<Vec<Step>, String> {
    let x = p.tensor("x")?;
    let shape = p.shapes[x];
    let axes: Vec<usize> = match p.ints("axis")? {
        None => (0..shape.len()).filter(|&d| shape[d] == 1).collect(),
        Some(axes) => axes
            .into_iter()
            .map(|a| resolve_axis(a, shape.len()))
            .collect::<Result<_, _>>()?,
    };
    if let Some(&d) = axes.iter().find(|&&d| shape[d] != 1) {
        return Err(format!(
            "cannot squeeze axis {} of length {}",
            d + 1,
            shape[d]
        ));
    }
    let mut target: Vec<i64> = (0..shape.len())
        .filter(|d| !axes.contains(d))
        .map(|d| shape[d] as i64)
        .collect();
    if target.is_empty() {
        target.push(1);
    }
    Ok(one(Op::Reshape { target }, x))
}

fn stack(p: &mut Params) -> Result<Vec<Step>, String> {
    let xs = p.tensors("x")?;
    let first = *xs.first().ok_or("stacks no tensors")?;
    let shape = p.shapes[first];
    let axis = p.int("axis")?.unwrap_or(0);
    let at = new_axis(axis, shape.len())?;
    let mut target: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    target.insert(at, 1);
    let mut steps: Vec<Step> = xs
        .iter()
        .enumerate()
        .map(|(k, &x)| {
            Step::new(
                Some(&format!("expand{k}")),
                Op::Reshape {
                    target: target.clone(),
                },
                vec![Source::Input(x)],
            )
        })
        .collect();
    let parts = (0..steps.len()).map(Source::Step).collect();
    steps.push(Step::new(None, Op::Concat { axis: at }, parts));
    Ok(steps)
}

/// `split`: Keras 3 takes a number of equal sections or the indices to split at; tf.split
/// a number of equal parts or their sizes.
fn split(p: &mut Params, tf: bool) -> Result<Vec<Step>, String> {
    let x = p.tensor("x")?;
    let shape = p.shapes[x];
    let key = if tf { "sizes" } else { "indices_or_sections" };
    let spec = p.ints(key)?.ok_or(format!("argument '{key}' is missing"))?;
    if tf {
        p.only("num", &Value::Null)?;
    }
    let axis = resolve_axis(p.int("axis")?.unwrap_or(0), shape.len())?;
    let len = shape[axis];
    let bounds: Vec<usize> = match (&spec[..], tf) {
        ([n], _) => {
            let n = usize::try_from(*n)
                .ok()
                .filter(|&n| n > 0 && len.is_multiple_of(n))
                .ok_or(format!(
                    "cannot split an axis of length {len} into {n} equal parts"
                ))?;
            (0..=n).map(|i| i * len / n).collect()
        }
        (sizes, true) => std::iter::once(0)
            .chain(sizes.iter().scan(0i64, |sum, &s| {
                // Hostile sizes saturate, and then fail the check below.
                *sum = sum.saturating_add(s);
                Some(usize::try_from(*sum).unwrap_or(usize::MAX))
            }))
            .collect(),
        (indices, false) => std::iter::once(0)
            .chain(indices.iter().map(|&i| i.clamp(0, len as i64) as usize))
            .chain(std::iter::once(len))
            .collect(),
    };
    if bounds.last() != Some(&len) || bounds.windows(2).any(|w| w[0] >= w[1]) {
        return Err(format!(
            "a split of an axis of length {len} at {bounds:?} is not supported (every part \
             must be non-empty)"
        ));
    }
    Ok(bounds
        .windows(2)
        .enumerate()
        .map(|(k, w)| {
            let mut begin = vec![0; shape.len()];
            let mut end = shape.to_vec();
            begin[axis] = w[0];
            end[axis] = w[1];
            let mut step = Step::new(
                Some(&format!("part{k}")),
                Op::Slice {
                    begin,
                    end,
                    step: vec![1; shape.len()],
                },
                vec![Source::Input(x)],
            );
            step.output = Some(k);
            step
        })
        .collect())
}

/// One item of a subscript.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Index {
    Range(Option<i64>, Option<i64>, Option<i64>),
    At(i64),
    Ellipsis,
}

fn index_item(v: &Value) -> Option<Index> {
    let int = |v: Option<&Value>| -> Option<Option<i64>> {
        match v {
            None | Some(Value::Null) => Some(None),
            Some(v) => v.as_i64().map(Some),
        }
    };
    match v {
        Value::Number(n) => n.as_i64().map(Index::At),
        Value::Object(obj) => match obj.get("class_name").and_then(Value::as_str) {
            Some("__ellipsis__") => Some(Index::Ellipsis),
            Some("__slice__") => {
                let c = obj.get("config")?;
                Some(Index::Range(
                    int(c.get("start"))?,
                    int(c.get("stop"))?,
                    int(c.get("step"))?,
                ))
            }
            // tf.keras writes slices as plain `{start, stop, step}`.
            None if obj.contains_key("start") => Some(Index::Range(
                int(obj.get("start"))?,
                int(obj.get("stop"))?,
                int(obj.get("step"))?,
            )),
            _ => None,
        },
        _ => None,
    }
}

/// `x[key]`: slices with positive steps, negative bounds, integer indices (which drop
/// their axis) and an ellipsis; the batch axis must be taken whole.
fn get_item(p: &mut Params) -> Result<Vec<Step>, String> {
    let x = p.tensor("x")?;
    let shape = p.shapes[x];
    let key = p.raw("key").ok_or("argument 'key' is missing")?;
    let items: Vec<Value> = match &key {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    };
    let unsupported = || format!("subscript {} is not supported", esc(&key.to_string()));
    let items: Vec<Index> = items
        .iter()
        .map(index_item)
        .collect::<Option<_>>()
        .ok_or_else(unsupported)?;
    // Axes with the batch axis first; an ellipsis stands for the full slices needed.
    let rank = shape.len() + 1;
    let explicit = items.iter().filter(|i| **i != Index::Ellipsis).count();
    if explicit > rank || items.iter().filter(|i| **i == Index::Ellipsis).count() > 1 {
        return Err(unsupported());
    }
    let mut per_axis = Vec::with_capacity(rank);
    for item in &items {
        if *item == Index::Ellipsis {
            per_axis.extend(std::iter::repeat_n(
                Index::Range(None, None, None),
                rank - explicit,
            ));
        } else {
            per_axis.push(*item);
        }
    }
    per_axis.resize(rank, Index::Range(None, None, None));
    if !matches!(
        per_axis[0],
        Index::Range(None | Some(0), None, None | Some(1))
    ) {
        return Err(format!(
            "{}: the batch axis must be taken whole",
            unsupported()
        ));
    }
    let (mut begin, mut end, mut step, mut kept) = (vec![], vec![], vec![], vec![]);
    for (d, item) in per_axis[1..].iter().enumerate() {
        let len = shape[d] as i64;
        let (b, e, s, keep) = match *item {
            Index::At(i) => {
                let i = if i < 0 { i + len } else { i };
                if !(0..len).contains(&i) {
                    return Err(format!(
                        "index {i} is out of range for axis {} of length {len}",
                        d + 1
                    ));
                }
                (i, i + 1, 1, false)
            }
            Index::Range(start, stop, s) => {
                let s = s.unwrap_or(1);
                if s <= 0 {
                    return Err(format!("{}: steps must be positive", unsupported()));
                }
                let clamp = |v: i64| (if v < 0 { v + len } else { v }).clamp(0, len);
                let b = start.map_or(0, clamp);
                let e = stop.map_or(len, clamp);
                if e <= b {
                    return Err(format!("{}: axis {} would be empty", unsupported(), d + 1));
                }
                (b, e, s, true)
            }
            Index::Ellipsis => return Err(unsupported()),
        };
        begin.push(b as usize);
        end.push(e as usize);
        step.push(s as usize);
        if keep {
            kept.push(((e - b) as usize).div_ceil(s as usize) as i64);
        }
    }
    let whole = begin.iter().all(|&b| b == 0) && step.iter().all(|&s| s == 1) && end == shape;
    let mut steps = Vec::new();
    if !whole {
        steps.push(Step::new(
            None,
            Op::Slice { begin, end, step },
            vec![Source::Input(x)],
        ));
    }
    if kept.len() != shape.len() || steps.is_empty() {
        if kept.is_empty() {
            kept.push(1);
        }
        let source = if steps.is_empty() {
            Source::Input(x)
        } else {
            steps[0].suffix = Some("slice".into());
            Source::Step(0)
        };
        steps.push(Step::new(None, Op::Reshape { target: kept }, vec![source]));
    }
    Ok(steps)
}

fn matmul(p: &mut Params) -> Result<Vec<Step>, String> {
    for flag in [
        "transpose_a",
        "transpose_b",
        "adjoint_a",
        "adjoint_b",
        "a_is_sparse",
        "b_is_sparse",
    ] {
        p.only(flag, &Value::Bool(false))?;
    }
    p.only("output_type", &Value::Null)?;
    let a = p.arg("x1")?.ok_or("argument 'x1' is missing")?;
    let b = p.arg("x2")?.ok_or("argument 'x2' is missing")?;
    match (a, b) {
        (Arg::Tensor(x), Arg::Tensor(y)) => {
            if p.shapes[x].len() < 2 || p.shapes[x].len() != p.shapes[y].len() {
                return Err(format!(
                    "a matmul of shapes {:?} and {:?} is not supported (two tensors of the \
                     same rank, 2 or more without the batch axis, are)",
                    p.shapes[x], p.shapes[y]
                ));
            }
            Ok(vec![Step::new(
                None,
                Op::MatMul,
                vec![Source::Input(x), Source::Input(y)],
            )])
        }
        (Arg::Tensor(x), Arg::Array(w)) if w.shape.len() <= 2 => {
            let vector = w.shape.len() == 1;
            let (k, n) = if vector {
                (w.shape[0], 1)
            } else {
                (w.shape[0], w.shape[1])
            };
            let kernel = Weights::new(vec![k, n], w.data)?;
            let dense = Op::Dense {
                kernel,
                bias: None,
                rescale: None,
                activation: Activation::Linear,
            };
            if !vector {
                return Ok(one(dense, x));
            }
            let shape = p.shapes[x];
            let mut target: Vec<i64> = shape[..shape.len() - 1].iter().map(|&d| d as i64).collect();
            if target.is_empty() {
                target.push(1);
            }
            Ok(vec![
                Step::new(Some("dense"), dense, vec![Source::Input(x)]),
                Step::new(None, Op::Reshape { target }, vec![Source::Step(0)]),
            ])
        }
        (Arg::Tensor(_), Arg::Array(w)) => Err(format!(
            "a matmul with a constant of shape {:?} is not supported (of rank 1 or 2 is)",
            w.shape
        )),
        _ => Err("a matmul whose first operand is a constant is not supported".into()),
    }
}
