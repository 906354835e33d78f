#!/bin/bash
# Compile time of big generated graphs (issue 19): every keras.applications architecture
# (with the top) generated as Rust and as C++ and compiled, one compile at a time, under
# GNU time. Prints a Markdown table: seconds (wall) and peak RSS (GB) of
#   rustc lib: rustc --edition 2021 --crate-type lib -C opt-level=3 model.rs
#   rustc bin: rustc --edition 2021 -C opt-level=3 main.rs (mod model; calls the model)
#   g++ lib:   g++ -std=c++17 -O2 -c lib.cpp (one function calling the model)
#   g++ bin:   g++ -std=c++17 -O2 main.cpp lib.cpp -o main (compiled and linked)
# Generation uses the defaults the README recommends for large models: `--weights auto`
# (weights above 1 MiB go to a file: `include_bytes!` in Rust, `.incbin` in C++) and the
# scratch placement the tool picks (`caller` above 256 KiB: the programs call
# `predict_with_scratch` with a heap buffer).
#
# Usage: scripts/compile_times.sh PYTHON [NAME...]
#   PYTHON: the fixture venv's python, which builds missing models into target/applications
#   (the cache scripts/applications.sh uses). Outputs land in target/compile_times/.
#   KERAS2SRC_CT_LANGS="rust cpp" (default both) limits the languages.
#   KERAS2SRC_CT_INLINE=1 compiles the code as it was before issue 19: every layer function
#   inlinable (the `#[inline(never)]` lines removed, `-DKERAS2SRC_NOINLINE=` for g++), to
#   measure the difference on the same generated code.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x /usr/bin/time ] || { echo "needs GNU time: apt-get install time" >&2; exit 1; }
python="${1:?usage: scripts/compile_times.sh PYTHON [NAME...]}"
shift
models=target/applications
out=target/compile_times
mkdir -p "$models" "$out"
cargo build --release -q
tool="$PWD/target/release/keras2src"
langs="${KERAS2SRC_CT_LANGS:-rust cpp}"
cxxdef=()
[ "${KERAS2SRC_CT_INLINE:-0}" = 1 ] && cxxdef=(-DKERAS2SRC_NOINLINE=)

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    names=(MobileNet MobileNetV2 MobileNetV3Small MobileNetV3Large EfficientNetB0 EfficientNetB1
        EfficientNetB2 EfficientNetV2B0 ResNet50 ResNet50V2 DenseNet121 InceptionV3 Xception
        NASNetMobile ConvNeXtTiny VGG16)
fi
missing=()
for n in "${names[@]}"; do
    [ -f "$models/${n}_top.keras" ] || missing+=("$n")
done
if [ ${#missing[@]} -gt 0 ]; then
    "$python" scripts/applications.py "$models" "${missing[@]}"
fi

# Runs a command under GNU time; prints "seconds / GB" (or "failed").
timed() {
    local log=$1
    shift
    if /usr/bin/time -f "%e %M" -o "$log.time" "$@" >"$log" 2>&1; then
        awk '{printf "%.1f / %.2f", $1, $2 / 1048576}' "$log.time"
    else
        echo "failed (see $log)"
    fi
}

echo "| model | layers | params | rustc lib (s / GB) | rustc bin (s / GB) | g++ lib (s / GB) | g++ bin (s / GB) |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for n in "${names[@]}"; do
    stem="${n}_top"
    dir="$out/$stem"
    rm -rf "$dir" && mkdir -p "$dir"
    model="$PWD/$models/$stem.keras"
    if ! "$tool" generate "$model" --lang rust --name model -o "$dir/model.rs" --quiet 2>"$dir/gen.err" ||
        ! "$tool" generate "$model" --lang cpp --name model -o "$dir/model.hpp" --quiet 2>>"$dir/gen.err"; then
        echo "| $stem | generation failed: $(head -c 200 "$dir/gen.err" | tr '\n|' '  ') | | | | | |"
        continue
    fi
    [ "${KERAS2SRC_CT_INLINE:-0}" = 1 ] && sed -i '/^#\[inline(never)\]$/d' "$dir/model.rs"
    # "// 930 layers, 4280286 parameters, ..." in the header.
    layers=$(awk 'NR <= 8 && / layers, / {for (i = 1; i <= NF; i++) if ($(i + 1) ~ /^layers,/) {print $i; exit}}' "$dir/model.rs")
    params=$(awk 'NR <= 8 && / parameters, / {for (i = 1; i <= NF; i++) if ($(i + 1) ~ /^parameters,/) {print $i; exit}}' "$dir/model.rs")
    # The entry point the generated API offers for this model's working memory.
    if grep -q '^pub fn predict(' "$dir/model.rs"; then
        rust_call='let y = model::predict(&input); println!("{}", y[0]);'
    else
        rust_call='let mut y = vec![0.0f32; model::OUTPUT_LEN]; let mut s = vec![0.0f32; model::SCRATCH_LEN];
    model::predict_with_scratch(&input, (&mut y[..]).try_into().unwrap(), (&mut s[..]).try_into().unwrap());
    println!("{}", y[0]);'
    fi
    cat >"$dir/main.rs" <<RUST
mod model;
fn main() {
    let input = [0.5f32; model::INPUT_LEN];
    $rust_call
}
RUST
    if grep -q 'inline void predict(' "$dir/model.hpp"; then
        cpp_call='model::predict(input, output);'
    else
        cpp_call='static float scratch[model::kScratchLen]; model::predict_with_scratch(input, output, scratch);'
    fi
    cat >"$dir/lib.cpp" <<CPP
#include "model.hpp"
void run_model(const float* input, float* output) {
    $cpp_call
}
CPP
    cat >"$dir/main.cpp" <<'CPP'
#include <cstdio>
void run_model(const float* input, float* output);
static float input[1 << 20], output[1 << 16];
int main() {
    for (float& x : input) x = 0.5f;
    run_model(input, output);
    std::printf("%g\n", output[0]);
}
CPP
    rl="-" rb="-" cl="-" cb="-"
    if [[ " $langs " == *" rust "* ]]; then
        rl=$(timed "$dir/rustc_lib.log" rustc --edition 2021 --crate-type lib -C opt-level=3 \
            "$dir/model.rs" -o "$dir/libmodel.rlib")
        rb=$(timed "$dir/rustc_bin.log" rustc --edition 2021 -C opt-level=3 "$dir/main.rs" \
            -o "$dir/rust_main")
    fi
    if [[ " $langs " == *" cpp "* ]]; then
        cl=$(timed "$dir/gxx_lib.log" g++ -std=c++17 -O2 "${cxxdef[@]}" -I "$dir" -c "$dir/lib.cpp" -o "$dir/lib.o")
        cb=$(timed "$dir/gxx_bin.log" g++ -std=c++17 -O2 "${cxxdef[@]}" -I "$dir" "$dir/main.cpp" "$dir/lib.cpp" \
            -o "$dir/cpp_main")
    fi
    echo "| $n | $layers | $params | $rl | $rb | $cl | $cb |"
done
