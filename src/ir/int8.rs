//! Full int8 (`--quantize int8`): the ops of a quantized graph and the one definition of
//! their integer arithmetic, shared by the interpreter and the generated code (which calls
//! the same functions, written once per language in the math runtime).
//!
//! The scheme is TensorFlow Lite's post-training quantization:
//! - activations per tensor, asymmetric: `real = (q - zero_point) * scale`, `q` in
//!   `[-128, 127]`, the range from calibration widened to hold 0 ([`QParams::from_range`]);
//! - weights per output channel, symmetric, in `[-127, 127]` ([`super::quant`]'s rule);
//! - biases as `i32` in units of `input scale * weight scale`;
//! - sums in `i32`, brought to the output's scale by a fixed-point multiplier and shift
//!   ([`Requant`], TFLite's `MultiplyByQuantizedMultiplier`), the activation (ReLU,
//!   ReLU6) a clamp of the result.
//!
//! Integer arithmetic is exact, so the order of a sum does not matter: the generated code
//! may fold the input's zero point into the bias, the interpreter subtracts it per tap,
//! and both give the same bits (sums are bounded so that `i32` never overflows:
//! [`MAX_TAPS`]).

use super::{Op, PoolKind, Weights, Window};

/// Per-tensor quantization: `real = (q - zero_point) * scale`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QParams {
    pub scale: f32,
    pub zero_point: i32,
}

impl QParams {
    /// TFLite's parameters for values seen in `[min, max]`: the range widened to hold 0 (so
    /// that 0, padding and ReLU's floor are exact), split into 255 steps.
    pub fn from_range(min: f32, max: f32) -> QParams {
        let (lo, hi) = (f64::from(min.min(0.0)), f64::from(max.max(0.0)));
        if !(hi - lo).is_finite() || hi - lo <= 0.0 {
            // Only zeros seen (or nothing finite): any scale represents them.
            return QParams {
                scale: 1.0,
                zero_point: 0,
            };
        }
        let scale = (hi - lo) / 255.0;
        let zero_point = (-128.0 - lo / scale).round().clamp(-128.0, 127.0) as i32;
        QParams {
            scale: scale as f32,
            zero_point,
        }
    }
}

/// `q` for `x` (see the module docs): `x / scale` rounded half away from zero, plus the
/// zero point, clamped to int8; NaN gives the zero point. Every language computes it as
/// here, step by step in f32 (the division is exact-rounded everywhere).
pub fn quantize(x: f32, q: QParams) -> i32 {
    let mut v = x / q.scale;
    if v.is_nan() {
        v = 0.0;
    }
    let v = v.clamp(-256.0, 256.0);
    let mut t = v as i32;
    let frac = v - t as f32;
    if frac >= 0.5 {
        t += 1;
    } else if frac <= -0.5 {
        t -= 1;
    }
    (t + q.zero_point).clamp(-128, 127)
}

/// The real value of `q`: `(q - zero_point) * scale` in f32.
pub fn dequantize(v: i32, q: QParams) -> f32 {
    (v - q.zero_point) as f32 * q.scale
}

/// A real multiplier as TFLite's fixed point: `multiplier * 2^(shift - 31)`, the
/// multiplier in `[2^30, 2^31)` (or 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requant {
    pub multiplier: i32,
    pub shift: i32,
}

impl Requant {
    /// TFLite's `QuantizeMultiplier`: `real = q * 2^shift` with `q` in `[0.5, 1)`, `q`
    /// rounded to 31 bits. Multipliers below `2^-31` are 0; the shift is kept within
    /// `[-31, 30]`, as TFLite keeps it.
    pub fn new(real: f64) -> Requant {
        let zero = Requant {
            multiplier: 0,
            shift: 0,
        };
        if real.is_nan() || real <= 0.0 || !real.is_finite() {
            return zero;
        }
        let bits = real.to_bits();
        let exponent = ((bits >> 52) & 0x7ff) as i32;
        if exponent == 0 {
            return zero; // subnormal: far below 2^-31
        }
        // frexp: real = q * 2^shift, q in [0.5, 1).
        let q = f64::from_bits((bits & !(0x7ff << 52)) | (1022 << 52));
        let mut shift = exponent - 1022;
        let mut fixed = (q * 2_147_483_648.0).round() as i64;
        if fixed == 1 << 31 {
            fixed /= 2;
            shift += 1;
        }
        if shift < -31 {
            return zero;
        }
        if shift > 30 {
            shift = 30;
            fixed = (1 << 31) - 1;
        }
        Requant {
            multiplier: fixed as i32,
            shift,
        }
    }
}

/// `acc * multiplier * 2^(shift - 31)`, rounded: TFLite's `MultiplyByQuantizedMultiplier`
/// (a rounding doubling high multiply, then a rounding right shift), with the left shift
/// of a multiplier above 1 saturating instead of overflowing. The math runtime of every
/// language has this function, step for step.
///
/// Each rounding is TFLite's in fewer operations (the tests check them against TFLite's
/// own steps): its high multiply, `(ab + nudge) / 2^31` toward zero with the nudge `2^30`
/// or `1 - 2^30` by sign, is `floor((ab + 2^30) / 2^31)` for either sign; its rounding
/// right shift by `r` (halves away from zero) is `floor((x + 2^(r-1) - [x < 0]) / 2^r)`.
pub fn requantize(acc: i32, r: Requant) -> i32 {
    let mut v = i64::from(acc);
    if r.shift > 0 {
        v = (v << r.shift).clamp(i64::from(i32::MIN), i64::from(i32::MAX));
    }
    let high = (v * i64::from(r.multiplier) + (1 << 30)) >> 31;
    if r.shift >= 0 {
        return high as i32;
    }
    let right = -r.shift;
    ((high + (1i64 << (right - 1)) - i64::from(high < 0)) >> right) as i32
}

/// TFLite's rounded average: `sum / count`, halves away from zero.
pub fn rounded_div(sum: i32, count: i32) -> i32 {
    if sum > 0 {
        (sum + count / 2) / count
    } else {
        (sum - count / 2) / count
    }
}

/// The most products one `i32` sum may hold: each `(x - zero_point) * w` is at most
/// `255 * 127` in magnitude, and the bias at most as much again.
pub const MAX_TAPS: usize = (i32::MAX as usize) / (2 * 255 * 127);

/// The most int8 values one average may sum (their sum stays within `i32`).
pub const MAX_POOLED: usize = (i32::MAX as usize) / 256;

/// A quantized op (see the module docs); its inputs and output are int8 tensors except
/// where it says.
#[derive(Debug, Clone, PartialEq)]
pub enum QOp {
    /// f32 in, int8 out ([`quantize`]).
    Quantize(QParams),
    /// int8 in, f32 out ([`dequantize`]).
    Dequantize(QParams),
    /// A Dense or convolution with its activation.
    Linear(Box<QLinear>),
    /// Max or average pooling; the output has the input's parameters.
    Pool { kind: PoolKind, window: Window },
    /// Max or average over all spatial axes; the output has the input's parameters.
    GlobalPool { kind: PoolKind },
    /// Elementwise sum of two tensors of the same shape.
    Add(Box<QAdd>),
    /// Constant padding with `value` (the quantized pad value); the output has the input's
    /// parameters.
    Pad {
        padding: Vec<(usize, usize)>,
        value: i32,
    },
}

/// `y = clamp(zero_out + requantize(bias[o] + sum (x - zero_in) * w, requant[o]), lo, hi)`.
#[derive(Debug, Clone, PartialEq)]
pub struct QLinear {
    /// The integers `q` of the kernel, in the float op's layout: Dense `[in, units]`,
    /// convolution `[*k, in / groups, filters]`.
    pub kernel: Weights,
    /// A convolution's window and groups; `None` for a Dense.
    pub conv: Option<(Window, usize)>,
    /// Per output channel.
    pub bias: Vec<i32>,
    pub requant: Vec<Requant>,
    pub input: QParams,
    pub output: QParams,
    /// The fused activation as a clamp of `q`.
    pub lo: i32,
    pub hi: i32,
    /// A max pooling fused after a convolution (its window tiles the output: no padding,
    /// strides = size). Requantization is monotonic, so the kernel requantizes only each
    /// window's largest sum: the same numbers as pooling the requantized outputs.
    pub pool: Option<Window>,
}

impl QLinear {
    /// The float op of the same shape (its kernel the integers), for shape inference.
    pub fn float_op(&self) -> Op {
        let kernel = self.kernel.clone();
        match &self.conv {
            None => Op::Dense {
                kernel,
                bias: None,
                rescale: None,
                activation: super::Activation::Linear,
            },
            Some((window, groups)) => Op::Conv {
                kernel,
                bias: None,
                rescale: None,
                window: window.clone(),
                groups: *groups,
                activation: super::Activation::Linear,
            },
        }
    }

    /// Products per output value.
    pub fn taps(&self) -> usize {
        let filters = self.kernel.shape.last().copied().unwrap_or(1).max(1);
        self.kernel.len() / filters
    }
}

/// TFLite's int8 Add: each input, less its zero point, is shifted left by
/// [`QAdd::LEFT_SHIFT`] and brought to a common scale (`twice the larger input scale`),
/// the sum to the output's, then clamped.
#[derive(Debug, Clone, PartialEq)]
pub struct QAdd {
    pub inputs: [QParams; 2],
    pub requant: [Requant; 2],
    pub output: QParams,
    pub output_requant: Requant,
    pub lo: i32,
    pub hi: i32,
}

impl QAdd {
    pub const LEFT_SHIFT: i32 = 20;

    pub fn new(a: QParams, b: QParams, output: QParams, (lo, hi): (i32, i32)) -> QAdd {
        let twice_max = 2.0 * f64::from(a.scale.max(b.scale));
        let real = |s: f32| f64::from(s) / twice_max;
        QAdd {
            inputs: [a, b],
            requant: [Requant::new(real(a.scale)), Requant::new(real(b.scale))],
            output,
            output_requant: Requant::new(
                twice_max / (f64::from(1u32 << Self::LEFT_SHIFT) * f64::from(output.scale)),
            ),
            lo,
            hi,
        }
    }

    /// The sum of one pair of elements.
    pub fn apply(&self, a: i32, b: i32) -> i32 {
        let scaled = |k: usize, v: i32| {
            requantize(
                (v - self.inputs[k].zero_point) << Self::LEFT_SHIFT,
                self.requant[k],
            )
        };
        let sum = scaled(0, a) + scaled(1, b);
        (requantize(sum, self.output_requant) + self.output.zero_point).clamp(self.lo, self.hi)
    }
}

/// The clamp of `q` for a fused activation on an output quantized as `q`: the whole int8
/// range, from the real 0 up for ReLU, and up to the real 6 too for ReLU6. `None` for an
/// activation that is not a clamp.
pub fn activation_clamp(a: &super::Activation, q: QParams) -> Option<(i32, i32)> {
    use super::Activation;
    let at = |real: f32| quantize(real, q);
    match a {
        Activation::Linear => Some((-128, 127)),
        Activation::Relu {
            negative_slope,
            max_value,
            threshold,
        } if *negative_slope == 0.0 && *threshold == 0.0 => {
            let hi = max_value.map_or(127, at);
            Some((at(0.0), hi))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipliers_are_tflites() {
        // 0.5 = 2^30 * 2^(0 - 31); 1.0 = 2^30 * 2^(1 - 31).
        assert_eq!(
            Requant::new(0.5),
            Requant {
                multiplier: 1 << 30,
                shift: 0
            }
        );
        assert_eq!(
            Requant::new(1.0),
            Requant {
                multiplier: 1 << 30,
                shift: 1
            }
        );
        assert_eq!(Requant::new(0.0).multiplier, 0);
        // q rounding up to 1.0 moves to the next power of two.
        let r = Requant::new(1.0 - 1e-12);
        assert_eq!(
            r,
            Requant {
                multiplier: 1 << 30,
                shift: 1
            }
        );
        assert_eq!(requantize(100, Requant::new(0.5)), 50);
        assert_eq!(requantize(101, Requant::new(0.5)), 51); // 50.5 rounds up
                                                            // TFLite's negative nudge is 1 - 2^30: -50.5 rounds to -50 (toward zero).
        assert_eq!(requantize(-101, Requant::new(0.5)), -50);
        assert_eq!(requantize(7, Requant::new(3.0)), 21);
        // The left shift saturates: i32::MAX * 8 is held at i32::MAX, then halved.
        assert_eq!(requantize(i32::MAX, Requant::new(4.0)), 1 << 30);
        // A small multiplier: 1000 * 0.001 = 1.
        assert_eq!(requantize(1000, Requant::new(0.001)), 1);
        assert_eq!(requantize(-1499, Requant::new(0.001)), -1);
        assert_eq!(requantize(-1501, Requant::new(0.001)), -2);
    }

    /// TFLite's `MultiplyByQuantizedMultiplier`, step by step (gemmlowp's
    /// `SaturatingRoundingDoublingHighMul` and `RoundingDivideByPOT`), on a saturated left
    /// shift as [`requantize`] takes it.
    fn tflite(acc: i32, r: Requant) -> i32 {
        let left = r.shift.max(0);
        let right = (-r.shift).max(0);
        let v = (i64::from(acc) << left).clamp(i64::from(i32::MIN), i64::from(i32::MAX));
        let ab = v * i64::from(r.multiplier);
        let nudge: i64 = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
        let high = ((ab + nudge) / (1i64 << 31)) as i32;
        let mask = ((1i64 << right) - 1) as i32;
        let remainder = high & mask;
        let threshold = (mask >> 1) + i32::from(high < 0);
        (high >> right) + i32::from(remainder > threshold)
    }

    #[test]
    fn requantize_is_tflites_step_for_step() {
        // A small deterministic generator: sums of every size, multipliers of every shift.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let edges = [0, 1, -1, 2, -2, i32::MAX, i32::MIN, 1 << 30, -(1 << 30)];
        for k in 0..200_000 {
            let acc = match k % 3 {
                0 => edges[(next() % edges.len() as u64) as usize],
                1 => (next() as i32) >> (next() % 31),
                _ => next() as i32,
            };
            let real = f64::from_bits(next()).abs() % 4.0 / f64::from(1u32 << (next() % 32));
            let r = Requant::new(real);
            for r in [
                r,
                Requant {
                    shift: (next() % 62) as i32 - 31,
                    ..r
                },
            ] {
                assert_eq!(requantize(acc, r), tflite(acc, r), "{acc} {r:?}");
            }
        }
    }

    #[test]
    fn quantize_rounds_half_away_and_clamps() {
        let q = QParams {
            scale: 0.5,
            zero_point: -10,
        };
        assert_eq!(quantize(0.25, q), -10 + 1);
        assert_eq!(quantize(-0.25, q), -10 - 1);
        assert_eq!(quantize(0.24, q), -10);
        assert_eq!(quantize(1e9, q), 127);
        assert_eq!(quantize(-1e9, q), -128);
        assert_eq!(quantize(f32::NAN, q), -10);
        assert_eq!(dequantize(-8, q), 1.0);
        let p = QParams::from_range(-1.0, 3.0);
        assert_eq!(p.zero_point, -64);
        assert_eq!(quantize(0.0, p), p.zero_point);
        assert_eq!(rounded_div(5, 2), 3);
        assert_eq!(rounded_div(-5, 2), -3);
        assert_eq!(rounded_div(4, 3), 1);
    }
}
