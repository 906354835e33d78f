//! The math functions of the generated Rust code, as real code.
//!
//! Each function sits between a `// @fn NAME` line and a `// @end` line; `mod.rs` copies
//! exactly those lines into the generated source (`rust_source`), and compiles this file
//! into the crate only for its tests. Everything outside the markers is not emitted.
//!
//! Rules for the code between markers (the generated file is `no_std`, edition 2021 and
//! 2024, `#![deny(warnings)]`, clippy-clean): only `+ - * /`, comparisons, `to_bits`,
//! `from_bits`, `is_nan`, integer ops and `as` casts; no `f32` methods that need libm (no
//! `abs`, `sqrt`, `mul_add`, `round`), no `unsafe`, no f64. Selects rather than branches,
//! no tables. `runtime.hpp` carries the same algorithms operation for operation, so
//! that results agree bit for bit with C++ compiled with `-ffp-contract=off`.
//! Polynomial coefficients come from `scripts/fit_math.py`.
#![allow(
    clippy::excessive_precision,
    clippy::approx_constant,
    clippy::unreadable_literal
)]

// @fn exp
/// e^x. x = k ln2 + r, |r| <= ln2/2 (Cody-Waite: k * LN2_HI is exact);
/// e^r = 1 + r + r^2 (1/2 + r P(r)), P minimax; 2^k is applied as two
/// normal factors, so a subnormal result is rounded only once.
#[inline]
fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = 1.442695;
    const LN2_HI: f32 = 0.69314575;
    const LN2_LO: f32 = 1.4286068e-6;
    const SHIFT: f32 = 12582912.0; // 1.5 * 2^23: adding it rounds to an integer

    // Past +-104 the result is inf or 0; the clamp keeps k in [-150, 150]
    // (NaN becomes 104 here and is returned unchanged at the end).
    let xc = if x < 104.0 { x } else { 104.0 };
    let xc = if xc > -104.0 { xc } else { -104.0 };
    let kt = xc * LOG2E + SHIFT;
    let kb = kt.to_bits(); // 0x4b40_0000 + k
    let k = kt - SHIFT;
    let hi = xc - k * LN2_HI; // exact
    let lo = k * LN2_LO;
    let r = hi - lo;
    let c = (hi - r) - lo; // r + c = hi - lo
    let p =
        0.16666667 + r * (0.041666515 + r * (0.008332887 + r * (0.0013931345 + r * 0.00020292008)));
    let y = 1.0 + (r + (r * r * (0.5 + r * p) + c));
    // 2^k = 2^h * 2^(k - h), h = floor(k / 2); kk = k + 256 keeps the integers unsigned.
    let kk = kb - 0x4b3f_ff00;
    let h = kk >> 1;
    let y = y * f32::from_bits((h - 1) << 23) * f32::from_bits((kk - h - 1) << 23);
    if x.is_nan() {
        x
    } else {
        y
    }
}
// @end

// @fn expm1
/// e^x - 1. Reduction as in exp_f32, with the rounding error c of r = hi - lo
/// carried along; then e^x - 1 = 2^k (e^r - 1) + (2^k - 1), computed at half
/// scale so that 2^(k-1) stays finite up to k = 128.
#[inline]
fn expm1_f32(x: f32) -> f32 {
    const LOG2E: f32 = 1.442695;
    const LN2_HI: f32 = 0.69314575;
    const LN2_LO: f32 = 1.4286068e-6;
    const SHIFT: f32 = 12582912.0;
    // e^88.8 overflows and e^-27 - 1 rounds to -1: k stays in [-39, 128].
    let xc = if x < 88.8 { x } else { 88.8 };
    let xc = if xc > -27.0 { xc } else { -27.0 };
    let kt = xc * LOG2E + SHIFT;
    let kb = kt.to_bits(); // 0x4b40_0000 + k
    let k = kt - SHIFT;
    let hi = xc - k * LN2_HI; // exact
    let lo = k * LN2_LO;
    let r = hi - lo;
    let c = (hi - r) - lo; // r + c = hi - lo
    let p =
        0.16666667 + r * (0.041666515 + r * (0.008332887 + r * (0.0013931345 + r * 0.00020292008)));
    // e^(r + c) - 1 = r + p2, p2 = (e^r - 1 - r) + c e^r
    let p2 = r * r * (0.5 + r * p) + c * (1.0 + r);
    let e = r + p2;
    let tz = f32::from_bits((kb - 0x4b3f_ff82) << 23); // 2^(k - 1)

    // k <= 24: 2^k - 1 is exact; k >= 25: it is not, the -1 goes in first.
    let ya = (tz * e + (tz - 0.5)) * 2.0;
    let yb = ((tz * e - 0.5) + tz) * 2.0;
    // k = 1: 2 (1/2 + r + p2), where 1/2 + r is exact for r < -1/4, so that
    // e^r - 1 is not rounded before the cancellation.
    let y1 = ((0.5 + r) + p2) * 2.0;
    let y = if kb > 0x4b40_0018 { yb } else { ya };
    let y = if kb == 0x4b40_0001 { y1 } else { y };
    let y = if kb == 0x4b40_0000 { e } else { y };
    // The result has the sign of x; this also makes expm1(-0) = -0.
    let y = f32::from_bits(y.to_bits() | (x.to_bits() & 0x8000_0000));
    if x.is_nan() {
        x
    } else {
        y
    }
}
// @end

// @fn log
/// Natural logarithm. x = 2^k m, m in [sqrt(2)/2, sqrt(2)), f = m - 1 (exact),
/// s = f / (2 + f): log(1 + f) = f - f^2/2 + s (f^2/2 + z P(z)), z = s^2,
/// P minimax; k ln2 is added last in two parts.
#[inline]
fn log_f32(x: f32) -> f32 {
    const LN2_HI: f32 = 0.69314575;
    const LN2_LO: f32 = 1.4286068e-6;
    // Positive subnormals are scaled up by 2^25.
    let sub = x < 1.1754944e-38;
    let xs = if sub { x * 33554432.0 } else { x };
    let ix = xs.to_bits();
    // Only positive normal values take the main path; the rest is fixed at the end.
    let ix = if ix.wrapping_sub(0x0080_0000) < 0x7f00_0000 {
        ix
    } else {
        0x3f80_0000
    };
    let ix = ix + (0x3f80_0000 - 0x3f35_04f3);
    let k = (ix >> 23) as i32 - 0x7f - if sub { 25 } else { 0 };
    let f = f32::from_bits((ix & 0x007f_ffff) + 0x3f35_04f3) - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * (0.3999889 + w * 0.20910878);
    let t2 = z * (0.6666667 + w * 0.28659746);
    let hfsq = 0.5 * f * f;
    let dk = k as f32;
    let y = s * (hfsq + (t2 + t1)) + dk * LN2_LO - hfsq + f + dk * LN2_HI;
    let y = if x > 0.0 {
        y
    } else {
        f32::from_bits(0x7fc0_0000)
    };
    let y = if x == 0.0 {
        f32::from_bits(0xff80_0000)
    } else {
        y
    };
    if x.is_nan() || x == f32::INFINITY {
        x
    } else {
        y
    }
}
// @end

// @fn log1p
/// log(1 + x). u = 1 + x (rounded) = 2^k m as in log_f32, f = m - 1, plus the
/// correction c / u for the rounding of u; f = x exactly when k = 0.
#[inline]
fn log1p_f32(x: f32) -> f32 {
    const LN2_HI: f32 = 0.69314575;
    const LN2_LO: f32 = 1.4286068e-6;
    // Only x in (-1, inf) takes the main path (NaN too becomes 0 here).
    let xs = if x > -1.0 { x } else { 0.0 };
    let xs = if xs < f32::INFINITY { xs } else { 0.0 };
    let u = 1.0 + xs;
    let iu = u.to_bits() + (0x3f80_0000 - 0x3f35_04f3);
    let k = (iu >> 23) as i32 - 0x7f;
    // c = (1 + x) - u, exactly; log(1 + x) = log(u) + c / u
    let c = if k >= 2 {
        1.0 - (u - xs)
    } else {
        xs - (u - 1.0)
    };
    let c = if k < 25 { c / u } else { 0.0 };
    let c = if k == 0 { 0.0 } else { c };
    let m = f32::from_bits((iu & 0x007f_ffff) + 0x3f35_04f3);
    let f = if k == 0 { xs } else { m - 1.0 };
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * (0.3999889 + w * 0.20910878);
    let t2 = z * (0.6666667 + w * 0.28659746);
    let hfsq = 0.5 * f * f;
    let dk = k as f32;
    let y = s * (hfsq + (t2 + t1)) + (dk * LN2_LO + c) - hfsq + f + dk * LN2_HI;
    // The result has the sign of x; this also makes log1p(-0) = -0.
    let y = f32::from_bits(y.to_bits() | (x.to_bits() & 0x8000_0000));
    let y = if x < -1.0 {
        f32::from_bits(0x7fc0_0000)
    } else {
        y
    };
    let y = if x == -1.0 {
        f32::from_bits(0xff80_0000)
    } else {
        y
    };
    if x.is_nan() || x == f32::INFINITY {
        x
    } else {
        y
    }
}
// @end

// @fn tanh
/// Hyperbolic tangent. a = |x| < log(3)/2: tanh(a) = a + a u S(u), u = a^2,
/// S minimax; above, 1 - 2 / (expm1(2a) + 2); the sign of x is put back.
#[inline]
fn tanh_f32(x: f32) -> f32 {
    let sign = x.to_bits() & 0x8000_0000;
    let ax = f32::from_bits(x.to_bits() & 0x7fff_ffff);
    // tanh(10) rounds to 1 (NaN becomes 10 here).
    let a = if ax < 10.0 { ax } else { 10.0 };
    let u = a * a;
    let s =
        -0.3333333 + u * (0.13333032 + u * (-0.05389407 + u * (0.021220021 + u * -0.0064510927)));
    let y1 = a + a * (u * s);
    let y2 = 1.0 - 2.0 / (expm1_f32(2.0 * a) + 2.0);
    let y = if a < 0.54930615 { y1 } else { y2 };
    let y = f32::from_bits(y.to_bits() | sign);
    if x.is_nan() {
        x
    } else {
        y
    }
}
// @end

// @fn erf
/// Error function. |x| < 1: erf(x) = x + x T(x^2); 1 <= |x| < 4:
/// erf(x) = 1 - e^(-x^2) R(|x| - 2.5), with x^2 split exactly into u + l
/// (Dekker) and e^(-l) ~ 1 - l; T, R minimax; |x| >= 4: +-1.
#[inline]
fn erf_f32(x: f32) -> f32 {
    let sign = x.to_bits() & 0x8000_0000;
    let ax = f32::from_bits(x.to_bits() & 0x7fff_ffff);
    // erf(4) rounds to 1 (NaN becomes 4 here).
    let a = if ax < 4.0 { ax } else { 4.0 };
    let u = a * a;
    let t = 0.12837917
        + u * (-0.37612626
            + u * (0.11283579
                + u * (-0.026853347 + u * (0.005187162 + u * (-0.0007997853 + u * 7.806903e-5)))));
    let y1 = a + a * t;
    let ah = f32::from_bits(a.to_bits() & 0xffff_f000);
    let al = a - ah;
    let l = ((ah * ah - u) + 2.0 * ah * al) + al * al; // a^2 = u + l
    let v = a - 2.5;
    let r = 0.2108076
        + v * (-0.07434219
            + v * (0.024914565
                + v * (-0.008132392
                    + v * (0.0023024853
                        + v * (-0.00066082034
                            + v * (0.0005437286 + v * (0.00022527964 + v * 0.00010688531)))))));
    let p = exp_f32(-u) * r;
    let y2 = 1.0 - (p - p * l);
    let y = if a < 1.0 { y1 } else { y2 };
    let y = f32::from_bits(y.to_bits() | sign);
    if x.is_nan() {
        x
    } else {
        y
    }
}
// @end

// @fn sqrt
/// Square root, correctly rounded (the same values as IEEE sqrt; C++ uses
/// std::sqrt). x = m 4^j with m in [1, 4); s ~ sqrt(m) to within 1 ulp from a
/// 1/sqrt estimate, two Newton steps and a Heron step; then q = s 2^23 is made
/// the correctly rounded root of the integer M = m 2^46: -q < M - q^2 <= q.
/// (Checked for every significand and exponent parity by the tests.)
#[inline]
fn sqrt_f32(x: f32) -> f32 {
    // Positive subnormals are scaled up by 2^24 (the root then by 2^-12).
    let sub = x < 1.1754944e-38;
    let xs = if sub { x * 16777216.0 } else { x };
    let ib = xs.to_bits();
    // Only positive normal values take the main path; the rest is fixed at the end.
    let ok = ib.wrapping_sub(0x0080_0000) < 0x7f00_0000;
    let ib = if ok { ib } else { 0x3f80_0000 };
    let eb = ib >> 23; // biased exponent
    let odd = (eb & 1) ^ 1; // unbiased exponent odd
    let mb = (ib & 0x007f_ffff) | (0x3f80_0000 + (odd << 23));
    let m = f32::from_bits(mb);
    let hm = 0.5 * m;
    let r = f32::from_bits(0x5f37_5a86 - (mb >> 1));
    let r = r * (1.5 - hm * r * r);
    let r = r * (1.5 - hm * r * r);
    let s = m * r;
    let s = s + 0.5 * r * (m - s * s); // now within 1 ulp of sqrt(m)
    let mm = ((((ib & 0x007f_ffff) | 0x0080_0000) as u64) << (23 + odd)) as i64;
    let q = (s.to_bits() - 0x3f00_0000) as i64;
    let q = if mm - q * q > q { q + 1 } else { q };
    let q = if mm - q * q <= -q { q - 1 } else { q };
    let e = ((eb + 125) >> 1) - if sub { 12 } else { 0 };
    let y = f32::from_bits((e << 23) + q as u32);
    let y = if ok { y } else { x };
    if x < 0.0 {
        f32::from_bits(0x7fc0_0000)
    } else {
        y
    }
}
// @end

// @fn sigmoid
/// Logistic function: with z = e^(-|x|), 1 / (1 + z) for x >= 0 and
/// z / (1 + z) for x < 0, so that neither side overflows or cancels; the
/// rounding error dl of d = 1 + z is divided out: n / (d + dl) ~ q - q dl / d.
#[inline]
fn sigmoid_f32(x: f32) -> f32 {
    let z = exp_f32(f32::from_bits(x.to_bits() | 0x8000_0000));
    let n = if x < 0.0 { z } else { 1.0 };
    let d = 1.0 + z;
    let dl = (1.0 - d) + z; // exact: 1 + z = d + dl
    let q = n / d;
    let y = q - q * dl / d;
    if x.is_nan() {
        x
    } else {
        y
    }
}
// @end

// @fn softplus
/// log(1 + e^x) as max(x, 0) + log1p(e^(-|x|)) (TensorFlow's formula).
#[inline]
fn softplus_f32(x: f32) -> f32 {
    let z = exp_f32(f32::from_bits(x.to_bits() | 0x8000_0000));
    let m = if x > 0.0 { x } else { 0.0 };
    let y = m + log1p_f32(z);
    if x.is_nan() {
        x
    } else {
        y
    }
}
// @end

/// Gives the tests in `mod.rs` access to the private functions above.
pub(super) fn eval(f: super::MathFn, x: f32) -> f32 {
    use super::MathFn;
    match f {
        MathFn::Exp => exp_f32(x),
        MathFn::Expm1 => expm1_f32(x),
        MathFn::Log => log_f32(x),
        MathFn::Log1p => log1p_f32(x),
        MathFn::Tanh => tanh_f32(x),
        MathFn::Erf => erf_f32(x),
        MathFn::Sqrt => sqrt_f32(x),
        MathFn::Sigmoid => sigmoid_f32(x),
        MathFn::Softplus => softplus_f32(x),
    }
}

// @fn int8
/// TFLite's `MultiplyByQuantizedMultiplier` (keras2src's `ir::int8::requantize`): `acc *
/// multiplier * 2^(shift - 31)`, rounded (a rounding doubling high multiply, then a
/// rounding right shift), the left shift of a multiplier above 1 saturating.
#[inline]
#[allow(dead_code)]
fn requantize_i32(acc: i32, multiplier: i32, shift: i32) -> i32 {
    let mut v = acc as i64;
    if shift > 0 {
        v = (v << shift).clamp(i32::MIN as i64, i32::MAX as i64);
    }
    let high = (v * multiplier as i64 + (1 << 30)) >> 31;
    if shift >= 0 {
        return high as i32;
    }
    let right = -shift;
    ((high + (1i64 << (right - 1)) - (high < 0) as i64) >> right) as i32
}

/// `x` quantized: `x / scale` rounded half away from zero, plus the zero point, clamped
/// to int8's range; NaN gives the zero point.
#[inline]
#[allow(dead_code)]
fn quantize_i8(x: f32, scale: f32, zero_point: i32) -> i32 {
    let mut v = x / scale;
    if v.is_nan() {
        v = 0.0;
    }
    v = v.clamp(-256.0, 256.0);
    let mut t = v as i32;
    let frac = v - t as f32;
    if frac >= 0.5 {
        t += 1;
    } else if frac <= -0.5 {
        t -= 1;
    }
    (t + zero_point).clamp(-128, 127)
}
// @end
