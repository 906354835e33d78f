// The math functions of the generated C code, as real code: runtime.hpp's, in C99.
//
// Each function sits between a "// @fn NAME" line and a "// @end" line; mod.rs copies
// exactly those lines into the generated header (c_source), with every "k2s_" replaced
// by the model's name and an underscore (C has no namespaces, and two models may be
// compiled in one file). The lines outside the markers only let this file compile on
// its own.
//
// These are the algorithms of runtime.rs and runtime.hpp, operation for operation and
// constant for constant, so that with -ffp-contract=off (no FMA contraction) every
// result is bit for bit the Rust one. Every literal is a float ('f'); integers are
// uint32_t or int32_t, so there is no overflow and no implementation-defined shift.
// Needs <stdint.h>, and <math.h> for sqrt (sqrtf) and NAN/INFINITY.
#include <math.h>
#include <stdint.h>

// The generated code defines this before the functions (backend/mod.rs, DISPATCH): empty,
// or always-inline where its layers are compiled for several instruction sets.
#ifndef KERAS2SRC_HELPER
#define KERAS2SRC_HELPER
#endif

// @fn bits
// Bit casts through a union: reading the member not last written reinterprets the
// bytes in C (C99 TC3, 6.5.2.3 footnote 82; C11 footnote 95), needs no <string.h>,
// and compiles to a register move.
KERAS2SRC_HELPER static inline uint32_t k2s_f32_to_bits(float x) {
    union {
        float f;
        uint32_t u;
    } v;
    v.f = x;
    return v.u;
}
KERAS2SRC_HELPER static inline float k2s_f32_from_bits(uint32_t b) {
    union {
        float f;
        uint32_t u;
    } v;
    v.u = b;
    return v.f;
}
// @end


// @fn exp
// e^x. x = k ln2 + r, |r| <= ln2/2 (Cody-Waite: k * kLn2Hi is exact);
// e^r = 1 + r + r^2 (1/2 + r P(r)), P minimax; 2^k is applied as two
// normal factors, so a subnormal result is rounded only once.
KERAS2SRC_HELPER static inline float k2s_exp_f32(float x) {
    const float kLog2e = 1.442695f;
    const float kLn2Hi = 0.69314575f;
    const float kLn2Lo = 1.4286068e-6f;
    const float kShift = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer

    // Past +-104 the result is inf or 0; the clamp keeps k in [-150, 150]
    // (NaN becomes 104 here and is returned unchanged at the end).
    float xc = x < 104.0f ? x : 104.0f;
    xc = xc > -104.0f ? xc : -104.0f;
    const float kt = xc * kLog2e + kShift;
    const uint32_t kb = k2s_f32_to_bits(kt);  // 0x4b400000 + k
    const float k = kt - kShift;
    const float hi = xc - k * kLn2Hi;  // exact
    const float lo = k * kLn2Lo;
    const float r = hi - lo;
    const float c = (hi - r) - lo;  // r + c = hi - lo
    const float p = 0.16666667f
        + r * (0.041666515f + r * (0.008332887f + r * (0.0013931345f + r * 0.00020292008f)));
    float y = 1.0f + (r + (r * r * (0.5f + r * p) + c));
    // 2^k = 2^h * 2^(k - h), h = floor(k / 2); kk = k + 256 keeps the integers unsigned.
    const uint32_t kk = kb - 0x4b3fff00u;
    const uint32_t h = kk >> 1;
    y = y * k2s_f32_from_bits((h - 1u) << 23) * k2s_f32_from_bits((kk - h - 1u) << 23);
    return x != x ? x : y;
}
// @end

// @fn expm1
// e^x - 1. Reduction as in exp_f32, with the rounding error c of r = hi - lo
// carried along; then e^x - 1 = 2^k (e^r - 1) + (2^k - 1), computed at half
// scale so that 2^(k-1) stays finite up to k = 128.
KERAS2SRC_HELPER static inline float k2s_expm1_f32(float x) {
    const float kLog2e = 1.442695f;
    const float kLn2Hi = 0.69314575f;
    const float kLn2Lo = 1.4286068e-6f;
    const float kShift = 12582912.0f;
    // e^88.8 overflows and e^-27 - 1 rounds to -1: k stays in [-39, 128].
    float xc = x < 88.8f ? x : 88.8f;
    xc = xc > -27.0f ? xc : -27.0f;
    const float kt = xc * kLog2e + kShift;
    const uint32_t kb = k2s_f32_to_bits(kt);  // 0x4b400000 + k
    const float k = kt - kShift;
    const float hi = xc - k * kLn2Hi;  // exact
    const float lo = k * kLn2Lo;
    const float r = hi - lo;
    const float c = (hi - r) - lo;  // r + c = hi - lo
    const float p = 0.16666667f
        + r * (0.041666515f + r * (0.008332887f + r * (0.0013931345f + r * 0.00020292008f)));
    // e^(r + c) - 1 = r + p2, p2 = (e^r - 1 - r) + c e^r
    const float p2 = r * r * (0.5f + r * p) + c * (1.0f + r);
    const float e = r + p2;
    const float tz = k2s_f32_from_bits((kb - 0x4b3fff82u) << 23);  // 2^(k - 1)

    // k <= 24: 2^k - 1 is exact; k >= 25: it is not, the -1 goes in first.
    const float ya = (tz * e + (tz - 0.5f)) * 2.0f;
    const float yb = ((tz * e - 0.5f) + tz) * 2.0f;
    // k = 1: 2 (1/2 + r + p2), where 1/2 + r is exact for r < -1/4, so that
    // e^r - 1 is not rounded before the cancellation.
    const float y1 = ((0.5f + r) + p2) * 2.0f;
    float y = kb > 0x4b400018u ? yb : ya;
    y = kb == 0x4b400001u ? y1 : y;
    y = kb == 0x4b400000u ? e : y;
    // The result has the sign of x; this also makes expm1(-0) = -0.
    y = k2s_f32_from_bits(k2s_f32_to_bits(y) | (k2s_f32_to_bits(x) & 0x80000000u));
    return x != x ? x : y;
}
// @end

// @fn log
// Natural logarithm. x = 2^k m, m in [sqrt(2)/2, sqrt(2)), f = m - 1 (exact),
// s = f / (2 + f): log(1 + f) = f - f^2/2 + s (f^2/2 + z P(z)), z = s^2,
// P minimax; k ln2 is added last in two parts.
KERAS2SRC_HELPER static inline float k2s_log_f32(float x) {
    const float kLn2Hi = 0.69314575f;
    const float kLn2Lo = 1.4286068e-6f;
    // Positive subnormals are scaled up by 2^25.
    const int sub = x < 1.1754944e-38f;
    const float xs = sub ? x * 33554432.0f : x;
    uint32_t ix = k2s_f32_to_bits(xs);
    // Only positive normal values take the main path; the rest is fixed at the end.
    ix = ix - 0x00800000u < 0x7f000000u ? ix : 0x3f800000u;
    ix = ix + (0x3f800000u - 0x3f3504f3u);
    const int32_t k = (int32_t)(ix >> 23) - 0x7f - (sub ? 25 : 0);
    const float f = k2s_f32_from_bits((ix & 0x007fffffu) + 0x3f3504f3u) - 1.0f;
    const float s = f / (2.0f + f);
    const float z = s * s;
    const float w = z * z;
    const float t1 = w * (0.3999889f + w * 0.20910878f);
    const float t2 = z * (0.6666667f + w * 0.28659746f);
    const float hfsq = 0.5f * f * f;
    const float dk = (float)(k);
    float y = s * (hfsq + (t2 + t1)) + dk * kLn2Lo - hfsq + f + dk * kLn2Hi;
    y = x > 0.0f ? y : k2s_f32_from_bits(0x7fc00000u);
    y = x == 0.0f ? k2s_f32_from_bits(0xff800000u) : y;
    return (x != x || x == k2s_f32_from_bits(0x7f800000u)) ? x : y;
}
// @end

// @fn log1p
// log(1 + x). u = 1 + x (rounded) = 2^k m as in log_f32, f = m - 1, plus the
// correction c / u for the rounding of u; f = x exactly when k = 0.
KERAS2SRC_HELPER static inline float k2s_log1p_f32(float x) {
    const float kLn2Hi = 0.69314575f;
    const float kLn2Lo = 1.4286068e-6f;
    // Only x in (-1, inf) takes the main path (NaN too becomes 0 here).
    float xs = x > -1.0f ? x : 0.0f;
    xs = xs < k2s_f32_from_bits(0x7f800000u) ? xs : 0.0f;
    const float u = 1.0f + xs;
    const uint32_t iu = k2s_f32_to_bits(u) + (0x3f800000u - 0x3f3504f3u);
    const int32_t k = (int32_t)(iu >> 23) - 0x7f;
    // c = (1 + x) - u, exactly; log(1 + x) = log(u) + c / u
    float c = k >= 2 ? 1.0f - (u - xs) : xs - (u - 1.0f);
    c = k < 25 ? c / u : 0.0f;
    c = k == 0 ? 0.0f : c;
    const float m = k2s_f32_from_bits((iu & 0x007fffffu) + 0x3f3504f3u);
    const float f = k == 0 ? xs : m - 1.0f;
    const float s = f / (2.0f + f);
    const float z = s * s;
    const float w = z * z;
    const float t1 = w * (0.3999889f + w * 0.20910878f);
    const float t2 = z * (0.6666667f + w * 0.28659746f);
    const float hfsq = 0.5f * f * f;
    const float dk = (float)(k);
    float y = s * (hfsq + (t2 + t1)) + (dk * kLn2Lo + c) - hfsq + f + dk * kLn2Hi;
    // The result has the sign of x; this also makes log1p(-0) = -0.
    y = k2s_f32_from_bits(k2s_f32_to_bits(y) | (k2s_f32_to_bits(x) & 0x80000000u));
    y = x < -1.0f ? k2s_f32_from_bits(0x7fc00000u) : y;
    y = x == -1.0f ? k2s_f32_from_bits(0xff800000u) : y;
    return (x != x || x == k2s_f32_from_bits(0x7f800000u)) ? x : y;
}
// @end

// @fn tanh
// Hyperbolic tangent. a = |x| < log(3)/2: tanh(a) = a + a u S(u), u = a^2,
// S minimax; above, 1 - 2 / (expm1(2a) + 2); the sign of x is put back.
KERAS2SRC_HELPER static inline float k2s_tanh_f32(float x) {
    const uint32_t sign = k2s_f32_to_bits(x) & 0x80000000u;
    const float ax = k2s_f32_from_bits(k2s_f32_to_bits(x) & 0x7fffffffu);
    // tanh(10) rounds to 1 (NaN becomes 10 here).
    const float a = ax < 10.0f ? ax : 10.0f;
    const float u = a * a;
    const float s = -0.3333333f
        + u * (0.13333032f + u * (-0.05389407f + u * (0.021220021f + u * -0.0064510927f)));
    const float y1 = a + a * (u * s);
    const float y2 = 1.0f - 2.0f / (k2s_expm1_f32(2.0f * a) + 2.0f);
    float y = a < 0.54930615f ? y1 : y2;
    y = k2s_f32_from_bits(k2s_f32_to_bits(y) | sign);
    return x != x ? x : y;
}
// @end

// @fn erf
// Error function. |x| < 1: erf(x) = x + x T(x^2); 1 <= |x| < 4:
// erf(x) = 1 - e^(-x^2) R(|x| - 2.5), with x^2 split exactly into u + l
// (Dekker) and e^(-l) ~ 1 - l; T, R minimax; |x| >= 4: +-1.
KERAS2SRC_HELPER static inline float k2s_erf_f32(float x) {
    const uint32_t sign = k2s_f32_to_bits(x) & 0x80000000u;
    const float ax = k2s_f32_from_bits(k2s_f32_to_bits(x) & 0x7fffffffu);
    // erf(4) rounds to 1 (NaN becomes 4 here).
    const float a = ax < 4.0f ? ax : 4.0f;
    const float u = a * a;
    const float t = 0.12837917f
        + u * (-0.37612626f
            + u * (0.11283579f
                + u * (-0.026853347f
                    + u * (0.005187162f + u * (-0.0007997853f + u * 7.806903e-5f)))));
    const float y1 = a + a * t;
    const float ah = k2s_f32_from_bits(k2s_f32_to_bits(a) & 0xfffff000u);
    const float al = a - ah;
    const float l = ((ah * ah - u) + 2.0f * ah * al) + al * al;  // a^2 = u + l
    const float v = a - 2.5f;
    const float r = 0.2108076f
        + v * (-0.07434219f
            + v * (0.024914565f
                + v * (-0.008132392f
                    + v * (0.0023024853f
                        + v * (-0.00066082034f
                            + v * (0.0005437286f + v * (0.00022527964f + v * 0.00010688531f)))))));
    const float p = k2s_exp_f32(-u) * r;
    const float y2 = 1.0f - (p - p * l);
    float y = a < 1.0f ? y1 : y2;
    y = k2s_f32_from_bits(k2s_f32_to_bits(y) | sign);
    return x != x ? x : y;
}
// @end

// @fn sqrt
// Square root. IEEE sqrt is correctly rounded, and so is the Rust version (which
// has no hardware sqrt without std, and is checked against it for all 2^32
// inputs), so sqrtf gives the same values; only NaN results are normalised.
KERAS2SRC_HELPER static inline float k2s_sqrt_f32(float x) {
    const float y = sqrtf(x);
    return x < 0.0f ? k2s_f32_from_bits(0x7fc00000u) : (x != x ? x : y);
}
// @end

// @fn sigmoid
// Logistic function: with z = e^(-|x|), 1 / (1 + z) for x >= 0 and
// z / (1 + z) for x < 0, so that neither side overflows or cancels; the
// rounding error dl of d = 1 + z is divided out: n / (d + dl) ~ q - q dl / d.
KERAS2SRC_HELPER static inline float k2s_sigmoid_f32(float x) {
    const float z = k2s_exp_f32(k2s_f32_from_bits(k2s_f32_to_bits(x) | 0x80000000u));
    const float n = x < 0.0f ? z : 1.0f;
    const float d = 1.0f + z;
    const float dl = (1.0f - d) + z;  // exact: 1 + z = d + dl
    const float q = n / d;
    const float y = q - q * dl / d;
    return x != x ? x : y;
}
// @end

// @fn softplus
// log(1 + e^x) as max(x, 0) + log1p(e^(-|x|)) (TensorFlow's formula).
KERAS2SRC_HELPER static inline float k2s_softplus_f32(float x) {
    const float z = k2s_exp_f32(k2s_f32_from_bits(k2s_f32_to_bits(x) | 0x80000000u));
    const float m = x > 0.0f ? x : 0.0f;
    const float y = m + k2s_log1p_f32(z);
    return x != x ? x : y;
}
// @end

// @fn int8
// TFLite's MultiplyByQuantizedMultiplier (keras2src's ir::int8::requantize): acc *
// multiplier * 2^(shift - 31), rounded (a rounding doubling high multiply, then a
// rounding right shift), the left shift of a multiplier above 1 saturating. The right
// shift of a negative number is arithmetic on every compiler keras2src supports.
KERAS2SRC_HELPER static inline int32_t k2s_requantize_i32(int32_t acc, int32_t multiplier, int32_t shift) {
    int64_t v = acc;
    if (shift > 0) {
        v *= (int64_t)1 << shift;
        if (v > 2147483647) v = 2147483647;
        if (v < -2147483647 - 1) v = -2147483647 - 1;
    }
    const int64_t high = (v * multiplier + ((int64_t)1 << 30)) >> 31;
    if (shift >= 0) return (int32_t)high;
    return (int32_t)((high + ((int64_t)1 << (-shift - 1)) - (high < 0 ? 1 : 0)) >> -shift);
}

// x quantized: x / scale rounded half away from zero, plus the zero point, clamped to
// int8's range; NaN gives the zero point.
KERAS2SRC_HELPER static inline int32_t k2s_quantize_i8(float x, float scale, int32_t zero_point) {
    float v = x / scale;
    if (v != v) v = 0.0f;
    if (v < -256.0f) v = -256.0f;
    if (v > 256.0f) v = 256.0f;
    int32_t t = (int32_t)v;
    const float frac = v - (float)t;
    if (frac >= 0.5f) {
        t += 1;
    } else if (frac <= -0.5f) {
        t -= 1;
    }
    t += zero_point;
    return t < -128 ? -128 : (t > 127 ? 127 : t);
}

// sum a[i] * b[i] over n int8 values. With the DSP extension (Cortex-M4, M7, M33), four
// at a time: SXTB16 widens bytes 0 and 2 (and, rotated, 1 and 3) of a word to two int16,
// SMLAD adds both products to the sum. Exact either way (lowering bounds every sum).
// Not inlined there: alone in its function, the loop keeps everything in registers.
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
// Bytes 1 and 3 of v widened to two int16 (SXTB16 with its rotation, one instruction).
KERAS2SRC_HELPER static inline int32_t k2s_sxtb16_ror8(uint32_t v) {
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}
static __attribute__((noinline, unused)) int32_t k2s_dot_i8(const int8_t* a, const int8_t* b, int32_t n) {
    int32_t sum = 0;
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        uint32_t wa;
        uint32_t wb;
        __builtin_memcpy(&wa, a + i, 4);
        __builtin_memcpy(&wb, b + i, 4);
        sum = __smlad(__sxtb16(wa), __sxtb16(wb), sum);
        sum = __smlad(k2s_sxtb16_ror8(wa), k2s_sxtb16_ror8(wb), sum);
    }
    for (; i < n; ++i) sum += a[i] * b[i];
    return sum;
}
// Four dot products of x (`rows` runs of n values, n a multiple of 4, `stride` apart)
// with four weight rows stored interleaved by fours (w: 4 values of row 0, 4 of row 1, 2,
// 3, then the next 4 of each, run after run): x widened once for the four, the weights
// read as one stream.
static __attribute__((noinline, unused)) void k2s_dot4_i8(const int8_t* x, const int8_t* w, int32_t n,
        int32_t rows, int32_t stride, int32_t* s0, int32_t* s1, int32_t* s2, int32_t* s3) {
    int32_t a0 = *s0, a1 = *s1, a2 = *s2, a3 = *s3;
    for (int32_t r = 0; r < rows; ++r, x += stride - n) {
        const int8_t* const end = x + n;
        for (; x != end; x += 4, w += 16) {
            uint32_t xv, v0, v1, v2, v3;
            __builtin_memcpy(&xv, x, 4);
            const int32_t lo = __sxtb16(xv);
            const int32_t hi = k2s_sxtb16_ror8(xv);
            __builtin_memcpy(&v0, w, 4);
            a0 = __smlad(lo, __sxtb16(v0), a0);
            a0 = __smlad(hi, k2s_sxtb16_ror8(v0), a0);
            __builtin_memcpy(&v1, w + 4, 4);
            a1 = __smlad(lo, __sxtb16(v1), a1);
            a1 = __smlad(hi, k2s_sxtb16_ror8(v1), a1);
            __builtin_memcpy(&v2, w + 8, 4);
            a2 = __smlad(lo, __sxtb16(v2), a2);
            a2 = __smlad(hi, k2s_sxtb16_ror8(v2), a2);
            __builtin_memcpy(&v3, w + 12, 4);
            a3 = __smlad(lo, __sxtb16(v3), a3);
            a3 = __smlad(hi, k2s_sxtb16_ror8(v3), a3);
        }
    }
    *s0 = a0;
    *s1 = a1;
    *s2 = a2;
    *s3 = a3;
}
#else
KERAS2SRC_HELPER static inline int32_t k2s_dot_i8(const int8_t* a, const int8_t* b, int32_t n) {
    int32_t sum = 0;
    for (int32_t i = 0; i < n; ++i) sum += a[i] * b[i];
    return sum;
}
KERAS2SRC_HELPER static inline void k2s_dot4_i8(const int8_t* x, const int8_t* w, int32_t n, int32_t rows,
        int32_t stride, int32_t* s0, int32_t* s1, int32_t* s2, int32_t* s3) {
    int32_t a[4] = {0, 0, 0, 0};
    for (int32_t r = 0; r < rows; ++r) {
        for (int32_t q = 0; q < n / 4; ++q) {
            for (int32_t k = 0; k < 4; ++k) {
                for (int32_t l = 0; l < 4; ++l) {
                    a[k] += x[r * stride + 4 * q + l] * w[4 * r * n + 16 * q + 4 * k + l];
                }
            }
        }
    }
    *s0 += a[0];
    *s1 += a[1];
    *s2 += a[2];
    *s3 += a[3];
}
#endif
// @end
