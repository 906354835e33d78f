//! Reference interpreter: runs the IR directly with the platform's math library. It backs
//! `keras2src predict`, `--trace`, and the tests that check generated code against it.

mod attention;
mod conv;
mod embedding;
mod index;
mod int8;
mod layout;
mod merge;
mod norm;
mod pool;
mod preprocess;
mod recurrent;
mod reduce;
mod resample;

use crate::ir::expr;
use crate::ir::MathFn;
use crate::ir::{numel, Activation, AxisFn, Graph, InputDtype, Op, PoolKind, Rescale};

/// Runs `graph` on one sample; `inputs` in model input order (integer inputs given as
/// f32 values). Returns the value of every tensor, indexed by tensor id.
pub fn run(graph: &Graph, inputs: &[Vec<f32>]) -> Result<Vec<Vec<f32>>, String> {
    if inputs.len() != graph.inputs.len() {
        return Err(format!(
            "the model has {} input(s), got {}",
            graph.inputs.len(),
            inputs.len()
        ));
    }
    let mut values: Vec<Vec<f32>> = vec![Vec::new(); graph.tensors.len()];
    for (input, data) in graph.inputs.iter().zip(inputs) {
        let want = numel(graph.shape(input.tensor));
        if data.len() != want {
            return Err(format!(
                "input '{}' needs {want} values, got {}",
                input.name,
                data.len()
            ));
        }
        values[input.tensor] = match input.dtype {
            InputDtype::F32 => data.clone(),
            InputDtype::I32 => data.iter().map(|v| v.trunc()).collect(),
            InputDtype::I8 => data
                .iter()
                .map(|v| v.trunc().clamp(-128.0, 127.0))
                .collect(),
        };
    }
    for node in &graph.nodes {
        let inputs: Vec<(&[f32], &[usize])> = node
            .inputs
            .iter()
            .map(|&t| (&values[t][..], graph.shape(t)))
            .collect();
        let y = eval(&node.op, &inputs, &pre_activation_shape(node, graph))?;
        values[node.output] = y;
    }
    Ok(values)
}

/// `y * scale + shift` per channel (the last axis), as a Dense or Conv applies its rescale.
fn apply_rescale(rescale: Option<&Rescale>, mut y: Vec<f32>) -> Vec<f32> {
    if let Some(r) = rescale {
        for row in y.chunks_exact_mut(r.scale.len()) {
            for ((v, s), t) in row.iter_mut().zip(&r.scale).zip(&r.shift) {
                *v = *v * s + t;
            }
        }
    }
    y
}

/// A Dense's or Conv's rescaled sums before its activation, with the activation and the
/// shape it applies to.
fn linear<'a>(
    op: &'a Op,
    inputs: &[(&[f32], &[usize])],
    out_shape: &[usize],
) -> Result<(Vec<f32>, &'a Activation, Vec<usize>), String> {
    let (x, xs) = inputs[0];
    Ok(match op {
        Op::Dense {
            kernel,
            bias,
            rescale,
            activation,
        } => {
            let y = dense(x, kernel, bias.as_ref());
            // Before a glu activation halves it, the last axis has `units` values.
            let mut shape = xs.to_vec();
            if let Some(last) = shape.last_mut() {
                *last = kernel.shape[1];
            }
            (apply_rescale(rescale.as_ref(), y), activation, shape)
        }
        Op::Conv {
            kernel,
            bias,
            rescale,
            window,
            groups,
            activation,
        } => {
            let y = conv::conv(inputs, out_shape, kernel, bias.as_ref(), window, *groups);
            (
                apply_rescale(rescale.as_ref(), y),
                activation,
                out_shape.to_vec(),
            )
        }
        _ => return Err("a residual add without its Dense or Conv".into()),
    })
}

/// A node's output shape before its fused activation (which may halve an axis: glu).
fn pre_activation_shape(node: &crate::ir::Node, graph: &Graph) -> Vec<usize> {
    let mut shape = graph.shape(node.output).to_vec();
    let op = match &node.op {
        Op::Residual { op } => op.as_ref(),
        op => op,
    };
    let filters = if let Op::Conv { kernel, .. } = op {
        kernel.shape.last()
    } else if let Op::ConvTranspose { kernel, .. } = op {
        kernel.shape.get(kernel.shape.len().wrapping_sub(2))
    } else {
        None
    };
    if let (Some(last), Some(&f)) = (shape.last_mut(), filters) {
        *last = f;
    }
    shape
}

/// The model outputs of [`run`], in output order.
pub fn outputs(graph: &Graph, values: &[Vec<f32>]) -> Vec<Vec<f32>> {
    graph
        .outputs
        .iter()
        .map(|o| values[o.tensor].clone())
        .collect()
}

/// One op on its inputs; `out_shape` is its output's shape before a fused activation.
/// Every op in one match: a new op does not compile until the interpreter runs it.
fn eval(op: &Op, inputs: &[(&[f32], &[usize])], out_shape: &[usize]) -> Result<Vec<f32>, String> {
    let (x, xs) = inputs[0];
    let two = || match inputs {
        [a, b] => Ok((*a, *b)),
        _ => Err(format!("expects two inputs, got {}", inputs.len())),
    };
    Ok(match op {
        Op::Dense { .. } | Op::Conv { .. } => {
            let (y, activation, shape) = linear(op, inputs, out_shape)?;
            activate(activation, y, &shape)
        }
        Op::Residual { op } => {
            // Keras adds `residual + y`; addition is commutative, so the bits agree.
            let (mut y, activation, shape) = linear(op, &inputs[..1], out_shape)?;
            let (residual, _) = two()?.1;
            for (v, r) in y.iter_mut().zip(residual) {
                *v += r;
            }
            activate(activation, y, &shape)
        }
        Op::Activation(a) => activate(a, x.to_vec(), xs),
        Op::Affine {
            center,
            scale,
            shift,
            inner,
        } => {
            let channels = scale.len();
            x.iter()
                .enumerate()
                .map(|(i, &v)| {
                    let c = (i / inner) % channels;
                    let v = center.as_ref().map_or(v, |m| v - m[c]);
                    v * scale[c] + shift[c]
                })
                .collect()
        }
        Op::PRelu { alpha } => x
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let a = alpha.data[crate::ir::broadcast_index(i, &alpha.shape, xs)];
                if v < 0.0 {
                    a * v
                } else {
                    v
                }
            })
            .collect(),
        Op::Reshape { .. } | Op::Identity => x.to_vec(),
        Op::ConvTranspose {
            kernel,
            bias,
            strides,
            dilation,
            crop,
            activation,
            ..
        } => {
            let y = conv::conv_transpose(
                inputs,
                out_shape,
                kernel,
                bias.as_ref(),
                strides,
                dilation,
                crop,
            );
            activate(activation, y, out_shape)
        }
        Op::ConvMaxPool { conv, pool } => {
            // The convolution, its epilogue, then the max pooling, as the unfused ops run.
            let conv_shape = conv.output_shape(&[xs])?;
            let y = eval(conv, inputs, &conv_shape)?;
            pool::pool(&[(&y, &conv_shape)], out_shape, PoolKind::Max, pool)
        }
        Op::Pool { kind, window } => pool::pool(inputs, out_shape, *kind, window),
        Op::GlobalPool { kind } => pool::global_pool(inputs, out_shape, *kind),
        Op::Pad { padding, value } => layout::pad(inputs, out_shape, padding, *value),
        Op::Int8(q) => int8::eval(q, inputs, out_shape)?,
        Op::Slice { begin, step, .. } => layout::slice(inputs, out_shape, begin, step),
        Op::Transpose { perm } => layout::transpose(inputs, out_shape, perm),
        Op::Upsample { factors, bilinear } => {
            resample::upsample(inputs, out_shape, factors, *bilinear)
        }
        Op::Resize { method, .. } => resample::resize(x, xs, out_shape, *method),
        Op::AdaptivePool { kind, .. } => resample::adaptive_pool(x, xs, out_shape, *kind),
        Op::Repeat { times } => layout::repeat(inputs, out_shape, *times),
        Op::Merge { kind } => merge::merge(inputs, out_shape, *kind),
        Op::ConstMerge {
            kind,
            constant,
            constant_first,
        } => merge::const_merge(inputs, out_shape, *kind, constant, *constant_first),
        Op::Select { then, otherwise } => merge::select(inputs, out_shape, *then, *otherwise),
        Op::Reduce { kind, axes, .. } => reduce::reduce(inputs, out_shape, *kind, axes),
        Op::Cumulative { kind, axis } => reduce::cumulative(inputs[0], *kind, *axis),
        Op::Concat { axis } => layout::concat(inputs, out_shape, *axis),
        Op::Dot { axes, normalize } => {
            let (a, b) = two()?;
            attention::dot(a, b, out_shape, *axes, *normalize)
        }
        Op::MatMul => {
            let (a, b) = two()?;
            attention::matmul(a, b)
        }
        Op::AdditiveScore { pre, scale, post } => {
            let (a, b) = two()?;
            attention::additive_score(a, b, *pre, scale.as_deref(), *post)
        }
        Op::AttentionSoftmax {
            scale,
            causal,
            window,
        } => attention::softmax(x, xs, *scale, *causal, *window),
        Op::Recurrent(r) => recurrent::recurrent(r, inputs),
        Op::ConvLstm(c) => recurrent::conv_lstm_node(c, inputs),
        Op::SequenceMask { value, reduce_last } => {
            recurrent::sequence_mask(x, xs, *value, *reduce_last)
        }
        Op::Normalize {
            view,
            kind,
            gamma,
            beta,
        } => norm::normalize(view, *kind, gamma.as_deref(), beta.as_deref(), x),
        Op::Embedding { table } => embedding::embedding(x, table),
        Op::Encode { depth, mode } => preprocess::encode(x, xs, *depth, *mode),
        Op::Bucketize { boundaries } => preprocess::bucketize(x, boundaries),
        Op::Lookup(lookup) => preprocess::lookup(x, lookup),
    })
}

/// `x · kernel + bias` row by row: the bias, then each input's products in order.
fn dense(x: &[f32], kernel: &crate::ir::Weights, bias: Option<&crate::ir::Weights>) -> Vec<f32> {
    let (n_in, units) = (kernel.shape[0], kernel.shape[1]);
    let mut y = Vec::with_capacity(x.len() / n_in.max(1) * units);
    for row in x.chunks_exact(n_in) {
        let mut acc = match bias {
            Some(b) => b.data.clone(),
            None => vec![0.0; units],
        };
        for (i, &xi) in row.iter().enumerate() {
            for (o, a) in acc.iter_mut().enumerate() {
                *a += xi * kernel.data[i * units + o];
            }
        }
        y.extend(acc);
    }
    y
}

fn activate(activation: &Activation, mut y: Vec<f32>, shape: &[usize]) -> Vec<f32> {
    if let Activation::Axis { func, axis } = activation {
        return axis_activation(*func, *axis, y, shape);
    }
    if let Some(e) = expr::activation(activation) {
        for v in &mut y {
            *v = e.eval(*v, &reference_math);
        }
    }
    y
}

pub(super) fn axis_activation(func: AxisFn, axis: usize, y: Vec<f32>, shape: &[usize]) -> Vec<f32> {
    let outer = numel(&shape[..axis]);
    let len = shape[axis];
    let inner = numel(&shape[axis + 1..]);
    let out_len = if func == AxisFn::Glu { len / 2 } else { len };
    let mut out = vec![0.0; outer * out_len * inner];
    for o in 0..outer {
        for k in 0..inner {
            let z: Vec<f32> = (0..len).map(|i| y[(o * len + i) * inner + k]).collect();
            let r = slice_activation(func, &z);
            for (i, v) in r.into_iter().enumerate() {
                out[(o * out_len + i) * inner + k] = v;
            }
        }
    }
    out
}

fn slice_activation(func: AxisFn, z: &[f32]) -> Vec<f32> {
    let max = z
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, |m, v| if v > m { v } else { m });
    match func {
        AxisFn::Softmax => {
            let e: Vec<f32> = z.iter().map(|v| (v - max).exp()).collect();
            let sum: f32 = e.iter().sum();
            e.iter().map(|v| v / sum).collect()
        }
        AxisFn::LogSoftmax => {
            let sum: f32 = z.iter().map(|v| (v - max).exp()).sum();
            z.iter().map(|v| v - max - sum.ln()).collect()
        }
        // Keras 3.15's formula, literally: tau sums the cumulative sums over the support.
        AxisFn::Sparsemax => {
            let mut sorted = z.to_vec();
            sorted.sort_by(|a, b| b.total_cmp(a));
            let (mut k, mut cumsum, mut cumsum_sum) = (0.0f32, 0.0f32, 0.0f32);
            for (i, &v) in sorted.iter().enumerate() {
                cumsum += v;
                if v - (cumsum - 1.0) / (i + 1) as f32 > 0.0 {
                    k += 1.0;
                    cumsum_sum += cumsum;
                }
            }
            let tau = (cumsum_sum - 1.0) / k;
            z.iter().map(|v| (v - tau).max(0.0)).collect()
        }
        AxisFn::Glu => {
            let half = z.len() / 2;
            (0..half)
                .map(|i| z[i] * reference_math(MathFn::Sigmoid, z[half + i]))
                .collect()
        }
    }
}

/// The platform's math, as the reference the generated functions are compared with.
pub fn reference_math(f: MathFn, x: f32) -> f32 {
    match f {
        MathFn::Exp => x.exp(),
        MathFn::Expm1 => x.exp_m1(),
        MathFn::Log => x.ln(),
        MathFn::Log1p => x.ln_1p(),
        MathFn::Tanh => x.tanh(),
        MathFn::Erf => erf(x as f64) as f32,
        MathFn::Sqrt => x.sqrt(),
        MathFn::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        MathFn::Softplus => x.max(0.0) + (-x.abs()).exp().ln_1p(),
    }
}

/// erf in f64 by its Maclaurin series near zero and a continued fraction for erfc beyond;
/// far more accurate than an f32 reference needs.
fn erf(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let a = x.abs();
    let r = if a < 2.5 {
        let (mut term, mut sum, x2) = (a, a, a * a);
        for n in 1..60 {
            term *= -x2 / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else if a < 6.0 {
        // erfc(a) = exp(-a^2)/sqrt(pi) * 1/(a + 1/2/(a + 1/(a + 3/2/(a + ...))))
        let mut f = a;
        for n in (1..80).rev() {
            f = a + (n as f64 / 2.0) / f;
        }
        1.0 - (-a * a).exp() / std::f64::consts::PI.sqrt() / f
    } else {
        1.0
    };
    r.copysign(x)
}
