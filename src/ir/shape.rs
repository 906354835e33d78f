//! Shape inference for the spatial (conv, pooling, padding, ...) and multi-input ops.

use super::op::{Op, Rescale, Weights, Window};
use super::{numel, Activation};

/// The shape `op` produces from its input shapes, or what is wrong: every op's rule, in
/// one match.
pub fn infer(op: &Op, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
    match op {
        Op::Dense {
            kernel,
            bias,
            rescale,
            activation,
        } => {
            one(inputs).and_then(|x| dense(x, kernel, bias.as_ref(), rescale.as_ref(), activation))
        }
        Op::Activation(activation) => one(inputs).and_then(|x| activation.output_shape(x)),
        Op::Affine {
            center,
            scale,
            shift,
            inner,
        } => one(inputs).and_then(|x| affine(x, center.as_deref(), scale, shift, *inner)),
        Op::PRelu { alpha } => one(inputs).and_then(|x| prelu(x, alpha)),
        Op::Reshape { target } => one(inputs).and_then(|x| super::op::reshape(x, target)),
        Op::Identity => one(inputs).map(<[usize]>::to_vec),
        Op::Recurrent(r) => r.output_shape(inputs),
        Op::Int8(q) => int8(q, inputs),
        Op::ConvLstm(c) => c.output_shape(inputs),
        Op::Conv {
            kernel,
            bias,
            rescale,
            window,
            groups,
            activation,
        } => one(inputs).and_then(|x| {
            let rank = window.size.len();
            spatial_rank(x, rank)?;
            let channels = x[rank];
            let [taps @ .., per_group, filters] = &kernel.shape[..] else {
                return Err(format!(
                    "kernel shape {:?} is not [*k, in, filters]",
                    kernel.shape
                ));
            };
            if taps != window.size.as_slice() || *groups == 0 || channels % groups != 0 {
                return Err(format!(
                    "kernel {:?} does not fit input {x:?}",
                    kernel.shape
                ));
            }
            if channels / groups != *per_group || filters % groups != 0 {
                return Err(format!(
                    "kernel {:?} does not fit {channels} channels in {groups} group(s)",
                    kernel.shape
                ));
            }
            check_bias(bias.as_ref().map(|b| &b.shape[..]), *filters)?;
            check_rescale(rescale.as_ref(), *filters)?;
            let mut out = windowed(x, window)?;
            out.push(*filters);
            activation.output_shape(&out)
        }),
        Op::ConvTranspose {
            kernel,
            bias,
            strides,
            dilation,
            crop,
            output,
            activation,
        } => one(inputs).and_then(|x| {
            let rank = output.len();
            spatial_rank(x, rank)?;
            let [taps @ .., filters, channels] = &kernel.shape[..] else {
                return Err(format!(
                    "kernel shape {:?} is not [*k, filters, in]",
                    kernel.shape
                ));
            };
            let lengths_ok = [taps.len(), strides.len(), dilation.len(), crop.len()]
                .iter()
                .all(|&n| n == rank);
            if !lengths_ok || *channels != x[rank] || strides.contains(&0) || dilation.contains(&0)
            {
                return Err(format!(
                    "kernel {:?} does not fit input {x:?}",
                    kernel.shape
                ));
            }
            check_bias(bias.as_ref().map(|b| &b.shape[..]), *filters)?;
            let mut out = output.clone();
            out.push(*filters);
            activation.output_shape(&out)
        }),
        Op::Pool { window, .. } => one(inputs).and_then(|x| {
            spatial_rank(x, window.size.len())?;
            let mut out = windowed(x, window)?;
            out.push(x[window.size.len()]);
            Ok(out)
        }),
        Op::ConvMaxPool { conv, pool } => {
            infer(conv, inputs).and_then(|y| infer(&Op::max_pool(pool), &[&y]))
        }
        Op::Residual { op } => match inputs {
            [x, residual] => {
                let y = infer(op, &[x])?;
                if !matches!(op.as_ref(), Op::Dense { .. } | Op::Conv { .. }) {
                    Err("a residual add needs a Dense or Conv".into())
                } else if y != *residual {
                    Err(format!(
                        "the residual has shape {residual:?}, the output {y:?}"
                    ))
                } else {
                    Ok(y)
                }
            }
            _ => Err(format!("expects two inputs, got {}", inputs.len())),
        },
        Op::GlobalPool { .. } => one(inputs).and_then(|x| match x {
            [_, .., c] => Ok(vec![*c]),
            _ => Err(format!("needs spatial axes, input shape is {x:?}")),
        }),
        Op::Pad { padding, .. } => one(inputs).and_then(|x| {
            same_rank(x, padding.len())?;
            x.iter()
                .zip(padding)
                .map(|(d, (b, a))| d.checked_add(*b).and_then(|v| v.checked_add(*a)))
                .collect::<Option<Vec<usize>>>()
                .ok_or_else(|| format!("padding {padding:?} is too large"))
        }),
        Op::Slice { begin, end, step } => one(inputs).and_then(|x| {
            same_rank(x, begin.len())?;
            same_rank(x, end.len())?;
            same_rank(x, step.len())?;
            x.iter()
                .zip(begin.iter().zip(end).zip(step))
                .map(|(&d, ((&b, &e), &s))| {
                    (b < e && e <= d && s > 0)
                        .then(|| (e - b).div_ceil(s))
                        .ok_or_else(|| format!("slice {b}..{e}:{s} is empty or out of 0..{d}"))
                })
                .collect()
        }),
        Op::Transpose { perm } => one(inputs).and_then(|x| {
            same_rank(x, perm.len())?;
            let mut seen = vec![false; perm.len()];
            for &p in perm {
                if p >= perm.len() || std::mem::replace(&mut seen[p], true) {
                    return Err(format!("{perm:?} is not a permutation"));
                }
            }
            Ok(perm.iter().map(|&p| x[p]).collect())
        }),
        Op::Upsample { factors, .. } => one(inputs).and_then(|x| {
            spatial_rank(x, factors.len())?;
            let mut out = x
                .iter()
                .zip(factors)
                .map(|(d, f)| d.checked_mul(*f))
                .collect::<Option<Vec<usize>>>()
                .ok_or_else(|| format!("upsampling factors {factors:?} are too large"))?;
            out.push(x[factors.len()]);
            Ok(out)
        }),
        Op::Resize { size, .. } => one(inputs).and_then(|x| resampled(x, size)),
        Op::AdaptivePool { output, .. } => one(inputs).and_then(|x| resampled(x, output)),
        Op::Repeat { times } => one(inputs).and_then(|x| match x {
            [n] if *times > 0 => Ok(vec![*times, *n]),
            _ => Err(format!(
                "needs a vector and times > 0, input shape is {x:?}"
            )),
        }),
        Op::Merge { .. } => broadcast(inputs),
        Op::Select { then, otherwise } => {
            let tensors = 1 + usize::from(then.is_none()) + usize::from(otherwise.is_none());
            if inputs.len() != tensors {
                Err(format!("expects {tensors} inputs, got {}", inputs.len()))
            } else {
                broadcast(inputs)
            }
        }
        Op::ConstMerge { constant, .. } => {
            one(inputs).and_then(|x| broadcast(&[x, &constant.shape[..]]))
        }
        Op::Cumulative { axis, .. } => one(inputs).and_then(|x| {
            if *axis >= x.len() {
                return Err(format!("cannot accumulate along axis {axis} of {x:?}"));
            }
            Ok(x.to_vec())
        }),
        Op::Reduce { axes, keepdims, .. } => one(inputs).and_then(|x| {
            let sorted = axes.windows(2).all(|w| w[0] < w[1]);
            if axes.is_empty() || !sorted || axes.iter().any(|&a| a >= x.len()) {
                return Err(format!("cannot reduce axes {axes:?} of {x:?}"));
            }
            let kept = x.iter().enumerate().filter_map(|(d, &len)| {
                if !axes.contains(&d) {
                    Some(len)
                } else {
                    keepdims.then_some(1)
                }
            });
            let out: Vec<usize> = kept.collect();
            Ok(if out.is_empty() { vec![1] } else { out })
        }),
        Op::Concat { axis } => concat(inputs, *axis),
        Op::Dot { axes, .. } => match inputs {
            [a, b] => {
                let (i, j) = *axes;
                if i >= a.len() || j >= b.len() || a[i] != b[j] {
                    Err(format!(
                        "cannot contract axis {i} of {a:?} with axis {j} of {b:?}"
                    ))
                } else {
                    let mut out: Vec<usize> = a
                        .iter()
                        .enumerate()
                        .filter(|(k, _)| *k != i)
                        .map(|(_, d)| *d)
                        .collect();
                    out.extend(
                        b.iter()
                            .enumerate()
                            .filter(|(k, _)| *k != j)
                            .map(|(_, d)| *d),
                    );
                    if out.is_empty() {
                        out.push(1);
                    }
                    Ok(out)
                }
            }
            _ => Err(format!("expects two inputs, got {}", inputs.len())),
        },
        Op::MatMul => super::attention::matmul_shape(inputs),
        Op::AttentionSoftmax { window, .. } => one(inputs).and_then(|x| {
            if x.len() < 2 || *window == Some(0) {
                return Err(format!(
                    "needs scores of rank 2 or more and a positive window, input shape is {x:?}"
                ));
            }
            Ok(x.to_vec())
        }),
        Op::AdditiveScore { scale, .. } => super::attention::matmul_shape(inputs)
            .and_then(|out| super::attention::check_scale(inputs, scale.as_deref(), out)),
        Op::Normalize {
            view, gamma, beta, ..
        } => one(inputs).and_then(|x| super::norm_shape::normalize(x, view, gamma, beta)),
        Op::SequenceMask { reduce_last, .. } => one(inputs).and_then(|x| {
            if !reduce_last {
                return Ok(x.to_vec());
            }
            match x {
                [lead @ .., _] if !lead.is_empty() => Ok(lead.to_vec()),
                _ => Err(format!("needs an input of rank 2 or more, got {x:?}")),
            }
        }),
        Op::Embedding { table } => one(inputs).and_then(|x| embedding(x, table)),
        Op::Encode { depth, mode } => {
            one(inputs).and_then(|x| super::preprocess::encode_shape(x, *depth, *mode))
        }
        Op::Bucketize { boundaries } => {
            one(inputs).and_then(|x| super::preprocess::bucketize_shape(x, boundaries))
        }
        Op::Lookup(lookup) => one(inputs).and_then(|x| super::preprocess::lookup_shape(x, lookup)),
    }
}

fn dense(
    input: &[usize],
    kernel: &Weights,
    bias: Option<&Weights>,
    rescale: Option<&Rescale>,
    activation: &Activation,
) -> Result<Vec<usize>, String> {
    let [k_in, units] = kernel.shape[..] else {
        return Err(format!("kernel must be 2-D, got {:?}", kernel.shape));
    };
    if input.last() != Some(&k_in) {
        return Err(format!(
            "kernel expects {k_in} input features, input shape is {input:?}"
        ));
    }
    check_bias(bias.map(|b| &b.shape[..]), units)?;
    check_rescale(rescale, units)?;
    let mut shape = input.to_vec();
    *shape.last_mut().unwrap_or(&mut 0) = units;
    activation.output_shape(&shape)
}

fn affine(
    input: &[usize],
    center: Option<&[f32]>,
    scale: &[f32],
    shift: &[f32],
    inner: usize,
) -> Result<Vec<usize>, String> {
    let channels = scale.len();
    if shift.len() != channels || center.is_some_and(|c| c.len() != channels) {
        return Err("affine parameters differ in length".into());
    }
    if channels == 0 || inner == 0 || !numel(input).is_multiple_of(channels * inner) {
        return Err(format!(
            "{channels} parameters (stride {inner}) do not fit input shape {input:?}"
        ));
    }
    Ok(input.to_vec())
}

fn prelu(input: &[usize], alpha: &Weights) -> Result<Vec<usize>, String> {
    let fits = alpha.shape.len() == input.len()
        && alpha
            .shape
            .iter()
            .zip(input)
            .all(|(&a, &d)| a == d || a == 1);
    if !fits {
        return Err(format!(
            "alpha shape {:?} does not broadcast to input shape {input:?}",
            alpha.shape
        ));
    }
    Ok(input.to_vec())
}

/// [`super::Op::Embedding`]: `[*s] -> [*s, output_dim]`.
fn embedding(x: &[usize], table: &Weights) -> Result<Vec<usize>, String> {
    let [rows, dim] = table.shape[..] else {
        return Err(format!(
            "embedding table must be 2-D, got {:?}",
            table.shape
        ));
    };
    if rows == 0 || dim == 0 {
        return Err(format!("embedding table {:?} is empty", table.shape));
    }
    let mut out = x.to_vec();
    out.push(dim);
    Ok(out)
}

fn one<'a>(inputs: &[&'a [usize]]) -> Result<&'a [usize], String> {
    match inputs {
        [x] => Ok(x),
        _ => Err(format!("expects one input, got {}", inputs.len())),
    }
}

/// `rank` spatial axes then one channel axis.
fn spatial_rank(x: &[usize], rank: usize) -> Result<(), String> {
    if rank == 0 || x.len() != rank + 1 {
        return Err(format!(
            "expects {rank} spatial axes and channels, input shape is {x:?}"
        ));
    }
    Ok(())
}

/// `[*spatial, C]` with new spatial lengths `size` (all positive, from a non-empty input).
fn resampled(x: &[usize], size: &[usize]) -> Result<Vec<usize>, String> {
    spatial_rank(x, size.len())?;
    if size.contains(&0) || x.contains(&0) {
        return Err(format!(
            "cannot resample input {x:?} to {size:?}: every length must be positive"
        ));
    }
    let mut out = size.to_vec();
    out.push(x[size.len()]);
    if super::checked_numel(&out).is_none() {
        return Err(format!("output shape {out:?} is too large"));
    }
    Ok(out)
}

fn same_rank(x: &[usize], n: usize) -> Result<(), String> {
    if x.len() != n {
        return Err(format!("expects {n} axes, input shape is {x:?}"));
    }
    Ok(())
}

/// A rescale has one scale and one shift per output channel.
pub(super) fn check_rescale(
    rescale: Option<&super::Rescale>,
    filters: usize,
) -> Result<(), String> {
    match rescale {
        Some(r) if r.scale.len() != filters || r.shift.len() != filters => Err(format!(
            "rescale has {} scales and {} shifts, expected {filters} of each",
            r.scale.len(),
            r.shift.len()
        )),
        _ => Ok(()),
    }
}

fn check_bias(bias: Option<&[usize]>, filters: usize) -> Result<(), String> {
    match bias {
        Some(b) if b != [filters] => Err(format!("bias shape {b:?}, expected [{filters}]")),
        _ => Ok(()),
    }
}

/// Output lengths of a window sliding over the spatial axes of `x`.
fn windowed(x: &[usize], w: &Window) -> Result<Vec<usize>, String> {
    let rank = w.size.len();
    let consistent = [w.strides.len(), w.dilation.len(), w.padding.len()]
        .iter()
        .all(|&n| n == rank);
    if !consistent || w.strides.contains(&0) || w.dilation.contains(&0) || w.size.contains(&0) {
        return Err(format!("inconsistent window {w:?}"));
    }
    let too_large = || format!("window {w:?} is too large for input {x:?}");
    (0..rank)
        .map(|d| {
            let padded = x[d]
                .checked_add(w.padding[d].0)
                .and_then(|v| v.checked_add(w.padding[d].1))
                .ok_or_else(too_large)?;
            let span = (w.size[d] - 1)
                .checked_mul(w.dilation[d])
                .and_then(|v| v.checked_add(1))
                .ok_or_else(too_large)?;
            if span > padded {
                return Err(format!(
                    "window of {span} does not fit axis {d} of length {padded} (input {x:?})"
                ));
            }
            Ok((padded - span) / w.strides[d] + 1)
        })
        .collect()
}

/// Numpy broadcasting: shapes aligned at their last axes, whose lengths agree or are 1.
pub fn broadcast(inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
    if inputs.is_empty() {
        return Err("expects at least one input".into());
    }
    let rank = inputs.iter().map(|x| x.len()).max().unwrap_or(0);
    let mut out = vec![1; rank];
    for x in inputs {
        for (o, &d) in out[rank - x.len()..].iter_mut().zip(x.iter()) {
            if *o == 1 {
                *o = d;
            } else if d != 1 && d != *o {
                return Err(format!("cannot broadcast shapes {inputs:?}"));
            }
        }
    }
    Ok(out)
}

fn concat(inputs: &[&[usize]], axis: usize) -> Result<Vec<usize>, String> {
    let Some(first) = inputs.first() else {
        return Err("expects at least one input".into());
    };
    if axis >= first.len() {
        return Err(format!("axis {axis} is out of range for {first:?}"));
    }
    let mut out = first.to_vec();
    out[axis] = 0;
    for x in inputs {
        let fits = x.len() == first.len()
            && x.iter()
                .zip(first.iter())
                .enumerate()
                .all(|(k, (a, b))| k == axis || a == b);
        if !fits {
            return Err(format!(
                "cannot concatenate shapes {inputs:?} on axis {axis}"
            ));
        }
        out[axis] += x[axis];
    }
    Ok(out)
}

/// A quantized op's shape: its float twin's, and the same shape in and out for the rest.
fn int8(q: &super::int8::QOp, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
    use super::int8::QOp;
    match q {
        QOp::Quantize(_) | QOp::Dequantize(_) => one(inputs).map(<[usize]>::to_vec),
        QOp::Linear(l) => {
            let y = infer(&l.float_op(), inputs)?;
            match &l.pool {
                None => Ok(y),
                Some(window) => infer(
                    &Op::Pool {
                        kind: super::PoolKind::Max,
                        window: window.clone(),
                    },
                    &[&y],
                ),
            }
        }
        QOp::Pool { kind, window } => infer(
            &Op::Pool {
                kind: *kind,
                window: window.clone(),
            },
            inputs,
        ),
        QOp::GlobalPool { kind } => infer(&Op::GlobalPool { kind: *kind }, inputs),
        QOp::Add(_) => match inputs {
            [a, b] if a == b => Ok(a.to_vec()),
            _ => Err(format!(
                "an int8 Add needs two inputs of one shape, got {inputs:?}"
            )),
        },
        QOp::Pad { padding, .. } => infer(
            &Op::Pad {
                padding: padding.clone(),
                value: 0.0,
            },
            inputs,
        ),
    }
}
