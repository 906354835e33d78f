#!/usr/bin/env python3
"""The register-blocking experiment of issue 16 (BENCHMARKS.md, Notes, "Cortex-M4F").

Takes a directory kept by `KERAS2SRC_KEEP=1 cargo test --release --test firmware`, copies
its seed and bench_cnn builds (`--scratch stack`), replaces the generated layer functions
of each copy's model.hpp by the hand-written kernels below (accumulators in registers,
the reduction in the inner loop), and runs generated and hand-edited headers through
scripts/firmware-icount.sh at -O2 and -Os: outputs checked against Keras, instructions
per predict, .text. The generator is not changed; this shows what code shape it would
need to emit.

    scripts/firmware-kernel-experiment.py KEPT_DIR
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

CONV = r"""
// Experiment: a 3x3 valid convolution with ReLU and a fused 2x2/2 max pooling, register
// blocked: the 4 positions of a pooling window x FB filters accumulate in registers over
// the taps and channels, then max, ReLU, store.
template <std::size_t W, std::size_t C, std::size_t F, std::size_t PH, std::size_t PW,
          std::size_t FB>
inline void conv3x3_pool_rb(const float* __restrict input, const float (*__restrict kernel)[F],
                            const float* __restrict bias, float* __restrict output) noexcept {
    static_assert(F % FB == 0, "");
    for (std::size_t p0 = 0; p0 < PH; ++p0) {
        for (std::size_t p1 = 0; p1 < PW; ++p1) {
            const float* __restrict window = input + (2 * p0 * W + 2 * p1) * C;
            for (std::size_t fb = 0; fb < F; fb += FB) {
                float a[4][FB];
#pragma GCC unroll 16
                for (std::size_t f = 0; f < FB; ++f) {
                    a[0][f] = a[1][f] = a[2][f] = a[3][f] = bias[fb + f];
                }
#pragma GCC unroll 9
                for (std::size_t t = 0; t < 9; ++t) {
                    const float* __restrict x = window + ((t / 3) * W + t % 3) * C;
                    const float* __restrict w = kernel[t * C] + fb;
                    for (std::size_t c = 0; c < C; ++c, ++x, w += F) {
                        const float x0 = x[0], x1 = x[C], x2 = x[W * C], x3 = x[W * C + C];
#pragma GCC unroll 16
                        for (std::size_t f = 0; f < FB; ++f) {
                            const float k = w[f];
                            a[0][f] += x0 * k;
                            a[1][f] += x1 * k;
                            a[2][f] += x2 * k;
                            a[3][f] += x3 * k;
                        }
                    }
                }
#pragma GCC unroll 16
                for (std::size_t f = 0; f < FB; ++f) {
                    float m = a[0][f];
                    m = a[1][f] > m ? a[1][f] : m;
                    m = a[2][f] > m ? a[2][f] : m;
                    m = a[3][f] > m ? a[3][f] : m;
                    output[(p0 * PW + p1) * F + fb + f] = m < 0.0f ? 0.0f : m;
                }
            }
        }
    }
}
"""

DENSE = r"""
// Experiment: accumulators in registers, a block of B outputs at a time, the inputs in the
// inner loop (each kernel row is contiguous in the outputs).
template <std::size_t In, std::size_t Out, std::size_t B, bool Relu>
inline void dense_rb(const float* __restrict input, const float (*__restrict kernel)[Out],
                     const float* __restrict bias, float* __restrict output) noexcept {
    static_assert(Out % B == 0, "");
    for (std::size_t o = 0; o < Out; o += B) {
        float acc[B];
#pragma GCC unroll 32
        for (std::size_t k = 0; k < B; ++k) acc[k] = bias[o + k];
        const float* __restrict w = &kernel[0][o];
        for (std::size_t i = 0; i < In; ++i, w += Out) {
            const float x = input[i];
#pragma GCC unroll 32
            for (std::size_t k = 0; k < B; ++k) acc[k] += x * w[k];
        }
#pragma GCC unroll 32
        for (std::size_t k = 0; k < B; ++k) {
            output[o + k] = Relu ? (acc[k] < 0.0f ? 0.0f : acc[k]) : acc[k];
        }
    }
}
// One output: a dot product, four partial sums.
template <std::size_t In>
inline float dot4(const float* __restrict input, const float (*__restrict kernel)[1]) noexcept {
    float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
    std::size_t i = 0;
    for (; i + 4 <= In; i += 4) {
        a0 += input[i] * kernel[i][0]; a1 += input[i + 1] * kernel[i + 1][0];
        a2 += input[i + 2] * kernel[i + 2][0]; a3 += input[i + 3] * kernel[i + 3][0];
    }
    if constexpr (In % 4 != 0) {
        for (; i < In; ++i) a0 += input[i] * kernel[i][0];
    }
    return (a0 + a1) + (a2 + a3);
}
"""

# Per model: the first generated function replaced, the one the replacement ends before,
# and the replacement's calls (same names and signatures as the generated functions).
EDITS = {
    "seed": (
        "// dense (Dense)",
        "}  // namespace detail",
        DENSE
        + """
inline void dense(const float* __restrict input, float* __restrict output) noexcept {
    dense_rb<33, 64, 16, true>(input, dense_kernel, dense_bias, output);
}
inline void dense_1(const float* __restrict input, float* __restrict output) noexcept {
    dense_rb<64, 32, 16, true>(input, dense_1_kernel, dense_1_bias, output);
}
inline void dense_2(const float* __restrict input, float* __restrict output) noexcept {
    output[0] = dense_2_bias[0] + dot4<32>(input, dense_2_kernel);
}

""",
    ),
    "bench_cnn": (
        "// conv_1 (Conv2D)",
        "// predictions (Dense)",
        CONV
        + DENSE
        + """
inline void conv_1(const float* __restrict input, float* __restrict output) noexcept {
    conv3x3_pool_rb<28, 1, 16, 13, 13, 4>(input, conv_1_kernel, conv_1_bias, output);
}
inline void conv_2(const float* __restrict input, float* __restrict output) noexcept {
    conv3x3_pool_rb<13, 16, 32, 5, 5, 4>(input, conv_2_kernel, conv_2_bias, output);
}
inline void dense(const float* __restrict input, float* __restrict output) noexcept {
    dense_rb<800, 64, 16, true>(input, dense_kernel, dense_bias, output);
}

""",
    ),
}


def main():
    kept = Path(sys.argv[1]).resolve()
    icount = Path(__file__).resolve().parent / "firmware-icount.sh"
    for name, (first, end, replacement) in EDITS.items():
        generated = kept / f"{name}-stack-O2"
        edited = kept / f"{name}-experiment"
        shutil.rmtree(edited, ignore_errors=True)
        shutil.copytree(generated, edited)
        header = edited / "model.hpp"
        text = header.read_text()
        start, stop = text.index(first), text.index(end)
        header.write_text(text[:start] + replacement.lstrip("\n") + text[stop:])
        for label, directory in (("generated", generated), ("hand-edited", edited)):
            for opt in ("-O2", "-Os"):
                out = subprocess.run(
                    [str(icount), str(directory), opt],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                counts = sorted(set(re.findall(r"(\d+) instructions", out)))
                verdict = "matches Keras" if "DIFFERS" not in out else "DIFFERS from Keras"
                size = re.search(r"model .text: (\d+)", out).group(1)
                print(
                    f"{name} {label} {opt}: {verdict}; instructions per predict "
                    f"{'/'.join(counts)}; .text {size} bytes"
                )


if __name__ == "__main__":
    main()
