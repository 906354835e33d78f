//! Ops: what each node computes, with its constants, and its shape inference.

use super::{
    checked_numel, numel, Activation, ConvLstm, EncodeMode, Lookup, Recurrent, ResizeMethod,
};

/// A constant tensor: row-major f32 data and its shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Weights {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self, String> {
        if numel(&shape) != data.len() {
            return Err(format!(
                "weight of shape {shape:?} needs {} values, got {}",
                numel(&shape),
                data.len()
            ));
        }
        Ok(Weights { shape, data })
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// A per-output-channel `y = sum * scale[o] + shift[o]` that a Dense or Conv applies to its
/// sum (bias included) before its activation: a BatchNormalization or Rescaling that
/// followed the layer, computed as Keras computes it rather than folded into the weights
/// (which would round every weight once more: on deep networks, enough to leave Keras's
/// tolerance).
#[derive(Debug, Clone, PartialEq)]
pub struct Rescale {
    pub scale: Vec<f32>,
    pub shift: Vec<f32>,
}

/// What one node computes. Shapes exclude the batch dimension; data is channels-last.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// `y = activation(rescale(x · kernel + bias))` on the last axis; kernel `[in, units]`.
    Dense {
        kernel: Weights,
        bias: Option<Weights>,
        rescale: Option<Rescale>,
        activation: Activation,
    },
    /// An activation on its own.
    Activation(Activation),
    /// `y = (x - center[c]) * scale[c] + shift[c]` with `c = (i / inner) % channels`:
    /// BatchNormalization, Normalization and Rescaling. All vectors have `channels` values.
    Affine {
        center: Option<Vec<f32>>,
        scale: Vec<f32>,
        shift: Vec<f32>,
        inner: usize,
    },
    /// `y = x >= 0 ? x : alpha * x`; alpha has the input's rank, size 1 on shared axes.
    PRelu { alpha: Weights },
    /// The same data under a new shape (Flatten, Reshape); at most one `-1` in `target`.
    Reshape { target: Vec<i64> },
    /// An inference no-op (Dropout and friends), removed by a pass.
    Identity,
    /// Convolution over the leading (spatial) axes of a channels-last input; kernel
    /// `[*k, in / groups, filters]`. Depthwise convolutions are `groups = in`. The sum,
    /// bias included, goes through `rescale`, then `activation`.
    Conv {
        kernel: Weights,
        bias: Option<Weights>,
        rescale: Option<Rescale>,
        window: Window,
        groups: usize,
        activation: Activation,
    },
    /// Transposed convolution; kernel `[*k, filters, in]`. Output position `o` along a
    /// spatial axis takes the full result at `o + crop[d]`, for `o < output[d]`.
    ConvTranspose {
        kernel: Weights,
        bias: Option<Weights>,
        strides: Vec<usize>,
        dilation: Vec<usize>,
        crop: Vec<usize>,
        output: Vec<usize>,
        activation: Activation,
    },
    /// Max or average over windows of the spatial axes (average counts only real,
    /// unpadded elements; max ignores padding).
    Pool { kind: PoolKind, window: Window },
    /// A convolution (`conv`, an [`Op::Conv`]) and the max pooling of its output over
    /// `pool`, in one kernel (made by a pass): the convolution's output is never stored.
    ConvMaxPool { conv: Box<Op>, pool: Window },
    /// A Dense or Conv (`op`, its activation applied last) that adds the node's second
    /// input, of its output's shape, to each rescaled sum before the activation: `y =
    /// activation(rescale(x · kernel + bias) + residual)`, a residual connection's Add in
    /// the layer's epilogue (made by a pass).
    Residual { op: Box<Op> },
    /// Max or average over all spatial axes: `[*spatial, C] -> [C]`.
    GlobalPool { kind: PoolKind },
    /// Constant padding, `(before, after)` per axis, with `value` (0 for ZeroPadding).
    Pad {
        padding: Vec<(usize, usize)>,
        value: f32,
    },
    /// `x[begin[d]..end[d]:step[d]]` on every axis (Cropping, slicing ops); steps are
    /// positive.
    Slice {
        begin: Vec<usize>,
        end: Vec<usize>,
        step: Vec<usize>,
    },
    /// Axis permutation: output axis `i` is input axis `perm[i]`.
    Transpose { perm: Vec<usize> },
    /// Repeats each spatial position `factors[d]` times (nearest) or interpolates
    /// (bilinear, half-pixel centres as Keras's resize).
    Upsample { factors: Vec<usize>, bilinear: bool },
    /// Resizes the spatial axes of `[*spatial, C]` to `size` as TensorFlow's resize with
    /// half-pixel centres (see [`super::resize_taps`]); bilinear interpolates the last
    /// spatial axis first (x, then y).
    Resize {
        size: Vec<usize>,
        method: ResizeMethod,
    },
    /// Max or average over the windows of an adaptive pooling of the spatial axes of
    /// `[*spatial, C]` to `output` positions (see [`super::adaptive_windows`]).
    AdaptivePool { kind: PoolKind, output: Vec<usize> },
    /// `[n] -> [times, n]` (RepeatVector).
    Repeat { times: usize },
    /// Elementwise over several inputs, broadcasting as numpy does (shapes aligned at
    /// their last axes, axes of size 1 repeated).
    Merge { kind: MergeKind },
    /// Elementwise `x (kind) constant`, or `constant (kind) x` with `constant_first`,
    /// broadcasting as [`Op::Merge`] (`x * np.array(...)` in a functional model).
    ConstMerge {
        kind: MergeKind,
        constant: Weights,
        constant_first: bool,
    },
    /// `condition != 0 ? then : otherwise` elementwise (`where`), broadcasting as
    /// [`Op::Merge`]. The inputs are the condition, then the branches that are tensors; a
    /// branch given as `Some(value)` is that constant.
    Select {
        then: Option<f32>,
        otherwise: Option<f32>,
    },
    /// Sum, mean, max or min over `axes` (sorted, distinct), which stay as size 1 with
    /// `keepdims` and are dropped otherwise.
    Reduce {
        kind: ReduceKind,
        axes: Vec<usize>,
        keepdims: bool,
    },
    /// The running sum or product along `axis`: element `i` of the axis combines elements
    /// `0..=i`, in order (`cumsum`, `cumprod`).
    Cumulative { kind: CumulativeKind, axis: usize },
    /// Concatenation along `axis`.
    Concat { axis: usize },
    /// Contracts axis `axes.0` of the first input with axis `axes.1` of the second; the
    /// result keeps the other axes of the first, then of the second. `normalize: Some(cap)`
    /// first scales both inputs by `min(1 / |x|, cap)` along those axes (cosine
    /// similarity): cap 1e7 in Keras 3 (epsilon 1e-7 on the norm), 1e6 in Keras 2
    /// (epsilon 1e-12 on the squared norm).
    Dot {
        axes: (usize, usize),
        normalize: Option<f32>,
    },
    /// Batched matrix product `[*b, m, k] x [*b, k, n] -> [*b, m, n]` (attention).
    MatMul,
    /// Additive attention scores from `q: [*b, m, d]` and `kt: [*b, d, n]` (keys
    /// transposed) to `[*b, m, n]`: `post * sum_d scale[d] * tanh(pre * (q[m, d] +
    /// kt[d, n]))`, each factor present only when given.
    AdditiveScore {
        pre: Option<f32>,
        scale: Option<Vec<f32>>,
        post: Option<f32>,
    },
    /// The attention distribution from scores `[*b, tq, tv]`: softmax over the last axis
    /// of `scale * x`, with `-1e9` added first where query `i` may not see key `j`: `j > i`
    /// when `causal`, `|i - j| >= w` for a sliding `window` `w` (what Keras adds to masked
    /// scores; the softmax gives them exactly 0).
    AttentionSoftmax {
        scale: Option<f32>,
        causal: bool,
        window: Option<usize>,
    },
    /// LSTM, GRU or SimpleRNN over `[steps, features]` (see [`Recurrent`]).
    Recurrent(Box<Recurrent>),
    /// The recurrence of a ConvLSTM over its precomputed input gates (see [`ConvLstm`]).
    ConvLstm(Box<ConvLstm>),
    /// A Keras mask as 1.0 (keep) / 0.0 (masked): `x != value` elementwise (Embedding
    /// `mask_zero`), or with `reduce_last` `any(x[..., f] != value)` over the last axis,
    /// which it drops (Masking). NaN differs from every value.
    SequenceMask { value: f32, reduce_last: bool },
    /// A quantized op (`--quantize int8`, see [`super::int8`]).
    Int8(super::int8::QOp),
    /// Normalisation over groups of elements (LayerNormalization, GroupNormalization,
    /// UnitNormalization). The input is viewed as the axes of `view` (row-major, their
    /// lengths multiply to the input's length); statistics are taken over the `reduced`
    /// axes, separately for every position along the others. `gamma` and `beta` are read
    /// at `sum(index[a] * param_stride[a])`. See [`NormKind`] for the formulas.
    Normalize {
        view: Vec<NormAxis>,
        kind: NormKind,
        gamma: Option<Vec<f32>>,
        beta: Option<Vec<f32>>,
    },
    /// Embedding: each input value, truncated to an integer and clamped to
    /// `0..table.shape[0]`, selects a row of `table` `[input_dim, output_dim]`;
    /// `[*s] -> [*s, output_dim]`.
    Embedding { table: Weights },
    /// CategoryEncoding (and the encodings of Discretization and IntegerLookup): each input
    /// value, read as an integer (an f32 truncated toward zero, as Keras casts), hits
    /// position `v` of a `depth`-long vector of 0.0 / 1.0; values outside `0..depth` hit
    /// nothing. See [`EncodeMode`] for the shapes.
    Encode { depth: usize, mode: EncodeMode },
    /// Discretization (TensorFlow's Bucketize): how many of the sorted `boundaries` are at
    /// or below each value (a NaN is above them all), as f32.
    Bucketize { boundaries: Vec<f32> },
    /// IntegerLookup: each value, read as an integer, through a table (see [`Lookup`]).
    Lookup(Box<Lookup>),
}

/// One axis of an [`Op::Normalize`] view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NormAxis {
    pub len: usize,
    /// Statistics are taken over this axis (else computed per position along it).
    pub reduced: bool,
    /// Stride of this axis into `gamma` / `beta` (0 where they do not vary along it).
    pub param_stride: usize,
}

/// What [`Op::Normalize`] computes from the elements `x` of one group (`n` of them), as
/// Keras does (TensorFlow's two-pass moments: the mean, then the mean of squared
/// deviations).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NormKind {
    /// `inv = 1 / sqrt(var + epsilon) * gamma`, `y = x * inv + (beta - mean * inv)`.
    Standardize { epsilon: f32 },
    /// LayerNormalization with `rms_scaling`: `y = x * (1 / sqrt(var + epsilon)) * gamma`
    /// (scaled by the variance, not centred; no beta).
    RmsScale { epsilon: f32 },
    /// RMSNormalization: `y = x * (1 / sqrt(sum(x^2) / n + epsilon)) * gamma` (the mean
    /// square, not centred; no beta).
    Rms { epsilon: f32 },
    /// UnitNormalization: `y = x * min(1 / sqrt(sum(x^2)), 1 / epsilon)` (NaN stays NaN).
    L2 { epsilon: f32 },
}

/// Sliding-window geometry, one entry per spatial axis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub size: Vec<usize>,
    pub strides: Vec<usize>,
    pub dilation: Vec<usize>,
    /// `(before, after)` zero padding.
    pub padding: Vec<(usize, usize)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKind {
    Max,
    Average,
}

/// What [`Op::Reduce`] computes over the reduced axes (max and min propagate NaN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReduceKind {
    Sum,
    Mean,
    Max,
    Min,
}

/// What [`Op::Cumulative`] accumulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CumulativeKind {
    Sum,
    Product,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeKind {
    Add,
    Subtract,
    Multiply,
    Average,
    Maximum,
    Minimum,
    /// The first input divided by the second (a masked mean; not a Keras merge layer).
    Divide,
}

impl Op {
    /// The shape this op produces from its input shapes, or what is wrong.
    pub fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        super::shape::infer(self, inputs)
    }

    /// For ops that end in `x · kernel + bias` with the output channel as the kernel's
    /// last axis (Dense, Conv): the kernel, rescale and activation, for fusing passes.
    pub fn linear_parts_mut(
        &mut self,
    ) -> Option<(&Weights, &mut Option<Rescale>, &mut Activation)> {
        match self {
            Op::Dense {
                kernel,
                rescale,
                activation,
                ..
            }
            | Op::Conv {
                kernel,
                rescale,
                activation,
                ..
            } => Some((kernel, rescale, activation)),
            _ => None,
        }
    }

    /// The same, read-only.
    pub fn linear_parts(&self) -> Option<(&Weights, &Option<Rescale>, &Activation)> {
        match self {
            Op::Dense {
                kernel,
                rescale,
                activation,
                ..
            }
            | Op::Conv {
                kernel,
                rescale,
                activation,
                ..
            } => Some((kernel, rescale, activation)),
            _ => None,
        }
    }

    /// The max pooling a [`Op::ConvMaxPool`] fuses, as an op of its own.
    pub fn max_pool(window: &Window) -> Op {
        Op::Pool {
            kind: PoolKind::Max,
            window: window.clone(),
        }
    }

    /// Multiply-accumulates per sample, for the summary.
    pub fn macs(&self, input: &[usize], output: &[usize]) -> usize {
        match self {
            Op::Dense { kernel, .. } => numel(output) * kernel.shape[0],
            // Per output value: one MAC per kernel tap and input channel of its group.
            Op::Conv { kernel, .. } => {
                let filters = kernel.shape.last().copied().unwrap_or(1).max(1);
                numel(output) / filters.max(1) * kernel.len()
            }
            // The convolution computes every position the pool reads.
            Op::ConvMaxPool { conv, pool } => match conv.as_ref() {
                Op::Conv { kernel, .. } => {
                    let filters = kernel.shape.last().copied().unwrap_or(1).max(1);
                    numel(output) / filters * numel(&pool.size) * kernel.len()
                }
                _ => 0,
            },
            Op::Residual { op } => op.macs(input, output),
            // Every input position meets every tap, filter and channel once.
            Op::ConvTranspose { kernel, .. } => {
                numel(&input[..input.len().saturating_sub(1)]) * kernel.len()
            }
            // Per output value, one MAC per contracted element.
            Op::MatMul | Op::AdditiveScore { .. } => {
                numel(output) * input.last().copied().unwrap_or(0)
            }
            Op::Recurrent(r) => r.macs(input.first().copied().unwrap_or(0)),
            Op::ConvLstm(c) => c.macs(input),
            // Per output value, one MAC per contracted element.
            Op::Dot { axes, .. } => numel(output) * input.get(axes.0).copied().unwrap_or(0),
            Op::Int8(super::int8::QOp::Linear(l)) => l.float_op().macs(input, output),
            Op::Activation(_)
            | Op::Affine { .. }
            | Op::PRelu { .. }
            | Op::Reshape { .. }
            | Op::Identity
            | Op::Pool { .. }
            | Op::GlobalPool { .. }
            | Op::Pad { .. }
            | Op::Slice { .. }
            | Op::Transpose { .. }
            | Op::Upsample { .. }
            | Op::Resize { .. }
            | Op::AdaptivePool { .. }
            | Op::Repeat { .. }
            | Op::Merge { .. }
            | Op::ConstMerge { .. }
            | Op::Select { .. }
            | Op::Reduce { .. }
            | Op::Cumulative { .. }
            | Op::Concat { .. }
            | Op::AttentionSoftmax { .. }
            | Op::SequenceMask { .. }
            | Op::Normalize { .. }
            | Op::Embedding { .. }
            | Op::Encode { .. }
            | Op::Bucketize { .. }
            | Op::Int8(_)
            | Op::Lookup(_) => 0,
        }
    }

    /// Working memory (f32s) the generated code needs while this op runs, besides its
    /// input and output.
    pub fn workspace_len(&self) -> usize {
        match self {
            Op::Recurrent(r) => r.workspace(),
            Op::ConvLstm(c) => c.workspace(),
            Op::Dense { .. }
            | Op::Activation(_)
            | Op::Affine { .. }
            | Op::PRelu { .. }
            | Op::Reshape { .. }
            | Op::Identity
            | Op::Conv { .. }
            | Op::ConvTranspose { .. }
            | Op::Pool { .. }
            | Op::ConvMaxPool { .. }
            | Op::Residual { .. }
            | Op::GlobalPool { .. }
            | Op::Pad { .. }
            | Op::Slice { .. }
            | Op::Transpose { .. }
            | Op::Upsample { .. }
            | Op::Resize { .. }
            | Op::AdaptivePool { .. }
            | Op::Repeat { .. }
            | Op::Merge { .. }
            | Op::ConstMerge { .. }
            | Op::Select { .. }
            | Op::Reduce { .. }
            | Op::Cumulative { .. }
            | Op::Concat { .. }
            | Op::Dot { .. }
            | Op::MatMul
            | Op::AdditiveScore { .. }
            | Op::AttentionSoftmax { .. }
            | Op::SequenceMask { .. }
            | Op::Normalize { .. }
            | Op::Embedding { .. }
            | Op::Encode { .. }
            | Op::Bucketize { .. }
            | Op::Int8(_)
            | Op::Lookup(_) => 0,
        }
    }

    /// Weights in the order a backend stores them, for flash accounting.
    pub fn weights(&self) -> Vec<&[f32]> {
        match self {
            Op::Dense {
                kernel,
                bias,
                rescale,
                ..
            }
            | Op::Conv {
                kernel,
                bias,
                rescale,
                ..
            } => {
                let mut w = vec![&kernel.data[..]];
                w.extend(bias.iter().map(|b| &b.data[..]));
                w.extend(rescale.iter().flat_map(|r| [&r.scale[..], &r.shift[..]]));
                w
            }
            Op::Affine {
                center,
                scale,
                shift,
                ..
            } => {
                let mut w: Vec<&[f32]> = center.iter().map(|c| &c[..]).collect();
                w.push(scale);
                w.push(shift);
                w
            }
            Op::PRelu { alpha } => vec![&alpha.data[..]],
            Op::ConstMerge { constant, .. } => vec![&constant.data[..]],
            Op::AdditiveScore { scale, .. } => scale.iter().map(|s| &s[..]).collect(),
            Op::Normalize { gamma, beta, .. } => {
                gamma.iter().chain(beta.iter()).map(|v| &v[..]).collect()
            }
            Op::Embedding { table } => vec![&table.data[..]],
            Op::Bucketize { boundaries } => vec![&boundaries[..]],
            Op::Lookup(l) => vec![&l.keys[..], &l.values[..]],
            Op::ConvTranspose { kernel, bias, .. } => {
                let mut w = vec![&kernel.data[..]];
                w.extend(bias.iter().map(|b| &b.data[..]));
                w
            }
            Op::Recurrent(r) => {
                let mut w = vec![&r.kernel.data[..], &r.recurrent.data[..]];
                w.extend(r.bias.iter().map(|b| &b.data[..]));
                w
            }
            Op::ConvLstm(c) => vec![&c.recurrent.data[..]],
            Op::ConvMaxPool { conv, .. } => conv.weights(),
            Op::Residual { op } => op.weights(),
            Op::Int8(super::int8::QOp::Linear(l)) => vec![&l.kernel.data[..]],
            Op::Int8(_) => vec![],
            Op::Activation(_)
            | Op::Reshape { .. }
            | Op::Identity
            | Op::Pool { .. }
            | Op::GlobalPool { .. }
            | Op::Pad { .. }
            | Op::Slice { .. }
            | Op::Transpose { .. }
            | Op::Upsample { .. }
            | Op::Resize { .. }
            | Op::AdaptivePool { .. }
            | Op::Repeat { .. }
            | Op::Merge { .. }
            | Op::Select { .. }
            | Op::Reduce { .. }
            | Op::Cumulative { .. }
            | Op::Concat { .. }
            | Op::Dot { .. }
            | Op::MatMul
            | Op::AttentionSoftmax { .. }
            | Op::SequenceMask { .. }
            | Op::Encode { .. } => vec![],
        }
    }
}

pub(super) fn reshape(input: &[usize], target: &[i64]) -> Result<Vec<usize>, String> {
    let total = numel(input);
    let mut unknown = None;
    let mut known = 1usize;
    for (i, &d) in target.iter().enumerate() {
        match d {
            -1 if unknown.is_none() => unknown = Some(i),
            d if d > 0 => {
                known = known
                    .checked_mul(d as usize)
                    .ok_or("target shape overflows")?
            }
            _ => return Err(format!("invalid target shape {target:?}")),
        }
    }
    let mut shape: Vec<usize> = target.iter().map(|&d| d.max(0) as usize).collect();
    if let Some(i) = unknown {
        if known == 0 || !total.is_multiple_of(known) {
            return Err(format!("cannot reshape {input:?} into {target:?}"));
        }
        shape[i] = total / known;
    }
    if checked_numel(&shape) != Some(total) {
        return Err(format!("cannot reshape {input:?} into {target:?}"));
    }
    Ok(shape)
}
