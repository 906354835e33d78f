//! Weight compression (`--weights-dtype f16|int8`): the one definition of how a kernel is
//! stored and what value the generated code computes with, shared by lowering (which
//! stores kernels this way) and the interpreter (which runs [`dequantized`], the graph
//! with every compressed kernel replaced by exactly the values the generated code loads).
//!
//! Only kernels are compressed: Dense (EinsumDense and attention projections are Dense
//! here), convolutions (plain, grouped, depthwise, the halves of a separable one, the
//! convolution of a fused conv + max pooling, transposed), and the `kernel` and
//! `recurrent_kernel` of LSTM, GRU and SimpleRNN. Everything else stays f32: biases, the
//! rescale a BatchNormalization after a layer became, normalisation parameters, Embedding
//! tables, ConvLSTM's recurrent kernel, lookup tables. Activations are always f32.
//!
//! - `f16`: each weight rounded to the nearest IEEE binary16 value, ties to even, stored as
//!   its 16 bits; the generated code widens it to f32 (exact).
//! - `int8`: symmetric, per output channel (TFLite's rule for weights): `scale[c] =
//!   max_i |w[i, c]| / 127` (1 for a channel of zeros, or where that underflows to 0),
//!   `q = round(w / scale[c])`, ties away from zero, clamped to `[-127, 127]` (TFLite
//!   multiplies by `127 / max` instead of dividing, which can land a tie on the other
//!   side); the generated code computes with `f32(q) * scale[c]`, rounded to f32, the same
//!   product the interpreter uses. The
//!   output channel is the kernel's last axis (Dense, conv, depthwise: one scale per
//!   output channel; recurrent kernels: one per gate unit), and the next-to-last axis of
//!   a transposed convolution (Keras stores those `[*k, filters, in]`).
//!
//! Weights that the dtype cannot hold are refused by layer rather than changed silently:
//! NaN or infinite kernels (either dtype), and values beyond f16's largest finite 65504.

use super::{Graph, Op, Weights};
use crate::error::LayerProblem;

/// How kernels are stored in the generated code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum WeightsDtype {
    /// As Keras has them (the default; output unchanged).
    #[default]
    F32,
    /// IEEE binary16, 2 bytes per weight.
    F16,
    /// Symmetric per-output-channel int8, 1 byte per weight plus one f32 scale per channel.
    Int8,
    /// int8 read as an integer: the kernels of a quantized model (`--quantize int8`, see
    /// [`crate::ir::int8`]), never a `--weights-dtype`.
    Q8,
    /// `i32`: the biases, multipliers and shifts of a quantized model (`--quantize int8`),
    /// never a `--weights-dtype`. A [`crate::lower::WeightArray`] holds each integer's bits
    /// (`f32::from_bits`), so that every value is exact.
    I32,
}

impl WeightsDtype {
    pub fn as_str(self) -> &'static str {
        match self {
            WeightsDtype::F32 => "f32",
            WeightsDtype::F16 => "f16",
            WeightsDtype::Int8 => "int8",
            WeightsDtype::Q8 => "q8",
            WeightsDtype::I32 => "i32",
        }
    }

    /// Bytes per stored value.
    pub fn bytes(self) -> usize {
        match self {
            WeightsDtype::F32 => 4,
            WeightsDtype::F16 => 2,
            WeightsDtype::Int8 | WeightsDtype::Q8 => 1,
            WeightsDtype::I32 => 4,
        }
    }

    pub const ALL: [WeightsDtype; 3] = [WeightsDtype::F32, WeightsDtype::F16, WeightsDtype::Int8];
}

/// Where a kernel's output channels are: channel of flat index `i` is `(i / stride) % len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelAxis {
    pub stride: usize,
    pub len: usize,
}

impl ChannelAxis {
    /// The last axis (Dense, conv, recurrent kernels).
    pub fn last(shape: &[usize]) -> ChannelAxis {
        ChannelAxis {
            stride: 1,
            len: shape.last().copied().unwrap_or(1).max(1),
        }
    }

    /// The next-to-last axis (transposed convolutions, `[*k, filters, in]`).
    pub fn second_last(shape: &[usize]) -> ChannelAxis {
        let n = shape.len();
        ChannelAxis {
            stride: shape.get(n.wrapping_sub(1)).copied().unwrap_or(1).max(1),
            len: shape.get(n.wrapping_sub(2)).copied().unwrap_or(1).max(1),
        }
    }

    fn of(self, i: usize) -> usize {
        (i / self.stride) % self.len
    }
}

/// A kernel in its stored form, in the kernel's own layout.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub dtype: WeightsDtype,
    /// The stored numbers, as f32 (exactly): the weights themselves (f32), the f16 values
    /// (f16), the integers `q` (int8).
    pub values: Vec<f32>,
    /// int8: the scale of each output channel.
    pub scales: Option<Vec<f32>>,
    pub axis: ChannelAxis,
}

impl Stored {
    /// The values the generated code computes with.
    pub fn dequantized(&self) -> Vec<f32> {
        match &self.scales {
            Some(scales) => self
                .values
                .iter()
                .enumerate()
                .map(|(i, &q)| q * scales[self.axis.of(i)])
                .collect(),
            None => self.values.clone(),
        }
    }
}

/// Stores kernel `w` (output channels along `axis`) as `dtype`; an error says why the dtype
/// cannot hold it.
pub fn store(w: &Weights, axis: ChannelAxis, dtype: WeightsDtype) -> Result<Stored, String> {
    let stored = |values, scales| Stored {
        dtype,
        values,
        scales,
        axis,
    };
    if dtype != WeightsDtype::F32 {
        if let Some(v) = w.data.iter().find(|v| !v.is_finite()) {
            return Err(format!(
                "--weights-dtype {} needs finite kernels; this one holds {v}",
                dtype.as_str()
            ));
        }
    }
    match dtype {
        WeightsDtype::Q8 | WeightsDtype::I32 => Err(format!(
            "{} is the storage of a quantized model, not a --weights-dtype",
            dtype.as_str()
        )),
        WeightsDtype::F32 => Ok(stored(w.data.clone(), None)),
        WeightsDtype::F16 => {
            if let Some(v) = w.data.iter().find(|v| v.abs() > F16_MAX_ROUNDING_DOWN) {
                return Err(format!(
                    "--weights-dtype f16: the kernel value {v} is beyond f16's largest \
                     finite value 65504"
                ));
            }
            Ok(stored(w.data.iter().map(|&v| f16_round(v)).collect(), None))
        }
        WeightsDtype::Int8 => {
            let mut max = vec![0f32; axis.len];
            for (i, v) in w.data.iter().enumerate() {
                let c = axis.of(i);
                max[c] = max[c].max(v.abs());
            }
            // A channel of zeros (or of values so small that `max / 127` underflows to
            // zero) gets scale 1, so every q is 0.
            let scales: Vec<f32> = max
                .iter()
                .map(|&m| if m / 127.0 > 0.0 { m / 127.0 } else { 1.0 })
                .collect();
            let q = w
                .data
                .iter()
                .enumerate()
                .map(|(i, &v)| (v / scales[axis.of(i)]).round().clamp(-127.0, 127.0))
                .collect();
            Ok(stored(q, Some(scales)))
        }
    }
}

/// Values up to this round to at most 65504 (f16's largest); above it, to infinity.
const F16_MAX_ROUNDING_DOWN: f32 = 65519.996;

/// `v` rounded to the nearest f16 value, ties to even, as an f32 (finite `v` within f16's
/// range).
pub fn f16_round(v: f32) -> f32 {
    f16_to_f32(f32_to_f16(v))
}

/// The binary16 bits nearest to finite `v` (ties to even; infinity beyond the range).
pub fn f32_to_f16(v: f32) -> u16 {
    let bits = v.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let abs = bits & 0x7fff_ffff;
    if abs >= 0x477f_f000 {
        // 65520 and above round to infinity.
        return sign | 0x7c00;
    }
    if abs < 0x3880_0000 {
        // Below 2^-14: a multiple of 2^-24 (a subnormal; 1024 is the smallest normal, whose
        // bits are the same integer). Exact in f64, then rounded half to even.
        let scaled = f64::from(f32::from_bits(abs)) * 16_777_216.0;
        let floor = scaled.floor();
        let frac = scaled - floor;
        let mut q = floor as u16;
        if frac > 0.5 || (frac == 0.5 && q % 2 == 1) {
            q += 1;
        }
        return sign | q;
    }
    let exponent = (abs >> 23) - 112;
    let mantissa = abs & 0x7f_ffff;
    let mut h = (exponent << 10) | (mantissa >> 13);
    let rest = mantissa & 0x1fff;
    if rest > 0x1000 || (rest == 0x1000 && h & 1 == 1) {
        // A carry into the exponent is the right answer too.
        h += 1;
    }
    sign | h as u16
}

/// The f32 value of binary16 bits `h` (exact), as the generated code computes it.
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h & 0x8000) << 16;
    let rest = u32::from(h & 0x7fff);
    if rest >= 0x7c00 {
        // Never stored (kernels are finite): infinity or NaN.
        return f32::from_bits(sign | 0x7f80_0000 | ((rest & 0x3ff) << 13));
    }
    if rest < 0x0400 {
        // Subnormal: rest * 2^-24, exact.
        let v = rest as f32 * (1.0 / 16_777_216.0);
        return if sign != 0 { -v } else { v };
    }
    f32::from_bits(sign | ((rest << 13) + 0x3800_0000))
}

/// Every kernel of `op` stored as `dtype` compresses, with its channel axis (the list
/// lowering follows).
pub fn kernels_mut(op: &mut Op) -> Vec<(&mut Weights, ChannelAxis)> {
    match op {
        Op::Dense { kernel, .. } | Op::Conv { kernel, .. } => {
            let axis = ChannelAxis::last(&kernel.shape);
            vec![(kernel, axis)]
        }
        Op::ConvTranspose { kernel, .. } => {
            let axis = ChannelAxis::second_last(&kernel.shape);
            vec![(kernel, axis)]
        }
        Op::ConvMaxPool { conv, .. } => kernels_mut(conv),
        Op::Residual { op } => kernels_mut(op),
        Op::Recurrent(r) => {
            let (a, b) = (
                ChannelAxis::last(&r.kernel.shape),
                ChannelAxis::last(&r.recurrent.shape),
            );
            vec![(&mut r.kernel, a), (&mut r.recurrent, b)]
        }
        Op::ConvLstm(_)
        | Op::Int8(_)
        | Op::Affine { .. }
        | Op::PRelu { .. }
        | Op::ConstMerge { .. }
        | Op::AdditiveScore { .. }
        | Op::Normalize { .. }
        | Op::Embedding { .. }
        | Op::Bucketize { .. }
        | Op::Lookup(_)
        | Op::Activation(_)
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

/// `graph` with every kernel replaced by the values the generated code computes with when
/// its kernels are stored as `dtype` (the interpreter's model of that code). Lists every
/// layer whose kernel the dtype cannot hold.
pub fn dequantized(graph: &Graph, dtype: WeightsDtype) -> Result<Graph, Vec<LayerProblem>> {
    let mut graph = graph.clone();
    let mut problems = Vec::new();
    for node in &mut graph.nodes {
        for (kernel, axis) in kernels_mut(&mut node.op) {
            match store(kernel, axis, dtype) {
                Ok(stored) => kernel.data = stored.dequantized(),
                Err(message) => problems.push(LayerProblem {
                    layer: node.name.clone(),
                    class: node.class.clone(),
                    message,
                }),
            }
        }
    }
    if problems.is_empty() {
        Ok(graph)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_finite_f16_reads_back_and_midpoints_round_to_even() {
        for h in 0..0x7c00u16 {
            for h in [h, h | 0x8000] {
                let v = f16_to_f32(h);
                assert_eq!(f32_to_f16(v), h, "{h:#06x}");
                // The midpoint to the next value up (in magnitude) rounds to the even one.
                if h & 0x7fff < 0x7bff {
                    let next = f16_to_f32(h + 1);
                    let mid = ((f64::from(v) + f64::from(next)) / 2.0) as f32;
                    if f64::from(mid) == (f64::from(v) + f64::from(next)) / 2.0 {
                        let even = if h & 1 == 0 { h } else { h + 1 };
                        assert_eq!(f32_to_f16(mid), even, "midpoint above {h:#06x}");
                    }
                    // Just above and below the midpoint.
                    let above = f32::from_bits(mid.abs().to_bits() + 1).copysign(mid);
                    let below = f32::from_bits(mid.abs().to_bits() - 1).copysign(mid);
                    assert_eq!(f32_to_f16(above), h + 1, "above {h:#06x}");
                    assert_eq!(f32_to_f16(below), h, "below {h:#06x}");
                }
            }
        }
        assert_eq!(f32_to_f16(65504.0), 0x7bff);
        assert_eq!(f32_to_f16(65519.0), 0x7bff);
        assert_eq!(f32_to_f16(65520.0), 0x7c00);
        assert_eq!(f16_round(F16_MAX_ROUNDING_DOWN), 65504.0);
    }

    #[test]
    fn int8_is_symmetric_per_output_channel() {
        // [2 inputs, 3 channels]; channel 2 is all zeros.
        let w = Weights::new(vec![2, 3], vec![1.0, -0.5, 0.0, -0.25, 0.2, 0.0]).unwrap();
        let s = store(&w, ChannelAxis::last(&w.shape), WeightsDtype::Int8).unwrap();
        let scales = s.scales.clone().unwrap();
        assert_eq!(scales, vec![1.0 / 127.0, 0.5 / 127.0, 1.0]);
        assert_eq!(s.values, vec![127.0, -127.0, 0.0, -32.0, 51.0, 0.0]);
        let d = s.dequantized();
        assert_eq!(d[3], -32.0 * (1.0f32 / 127.0));
        // Transposed: channels on the next-to-last axis ([k=1, filters=2, in=2]).
        let t = Weights::new(vec![1, 2, 2], vec![2.0, -1.5, 0.5, 0.3]).unwrap();
        let s = store(&t, ChannelAxis::second_last(&t.shape), WeightsDtype::Int8).unwrap();
        assert_eq!(s.scales.unwrap(), vec![2.0 / 127.0, 0.5 / 127.0]);
        assert_eq!(s.values, vec![127.0, -95.0, 127.0, 76.0]);
    }

    #[test]
    fn kernels_the_dtype_cannot_hold_are_refused() {
        let w = Weights::new(vec![1, 2], vec![f32::NAN, 1.0]).unwrap();
        let axis = ChannelAxis::last(&w.shape);
        assert!(store(&w, axis, WeightsDtype::Int8).is_err());
        assert!(store(&w, axis, WeightsDtype::F16).is_err());
        assert!(store(&w, axis, WeightsDtype::F32).is_ok());
        // A channel whose scale would underflow quantizes to zeros.
        let tiny = Weights::new(vec![2, 1], vec![1e-44, 0.0]).unwrap();
        let s = store(&tiny, ChannelAxis::last(&tiny.shape), WeightsDtype::Int8).unwrap();
        assert_eq!((s.scales.unwrap(), s.values), (vec![1.0], vec![0.0, 0.0]));
        let big = Weights::new(vec![1, 1], vec![70000.0]).unwrap();
        assert!(store(&big, ChannelAxis::last(&big.shape), WeightsDtype::F16).is_err());
        assert!(store(&big, ChannelAxis::last(&big.shape), WeightsDtype::Int8).is_ok());
    }
}
