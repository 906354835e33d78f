#!/bin/bash
# Every keras.applications architecture, with and without the top, through keras2src:
# generated as Rust and as C++, compiled (rustc -C opt-level=3, g++ -O2) into a program
# that runs one Keras sample, compared with Keras (scripts/compare_outputs.py: within the
# DESIGN bound, or else how far ours and Keras's float32 results are from float64), and
# timed. Prints a Markdown table.
#
# Usage: scripts/applications.sh PYTHON [NAME...]
#   PYTHON: the fixture venv's python (tests/fixtures/requirements.txt), which builds the
#   models into target/applications (skipped for models already there).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x /usr/bin/time ] || { echo "needs GNU time: apt-get install time" >&2; exit 1; }
python="${1:?usage: scripts/applications.sh PYTHON [NAME...]}"
shift
out=target/applications
mkdir -p "$out"
cargo build --release -q
tool="$PWD/target/release/keras2src"

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    names=(MobileNet MobileNetV2 MobileNetV3Small MobileNetV3Large EfficientNetB0 EfficientNetB1
        EfficientNetB2 EfficientNetV2B0 ResNet50 ResNet50V2 DenseNet121 InceptionV3 Xception
        NASNetMobile ConvNeXtTiny VGG16)
fi
missing=()
for n in "${names[@]}"; do
    [ -f "$out/${n}_top.keras" ] && [ -f "$out/${n}_notop.keras" ] || missing+=("$n")
done
if [ ${#missing[@]} -gt 0 ]; then
    "$python" scripts/applications.py "$out" "${missing[@]}"
fi

# The Rust programs call `predict` with the working memory on the stack (--scratch stack:
# above 256 KiB the default would be `caller`), so the stack must hold it.
ulimit -s unlimited
export RUST_MIN_STACK=$((512 * 1024 * 1024))

seconds() { awk -v t0="$1" -v t1="$(date +%s%N)" 'BEGIN { printf "%.1f", (t1 - t0) / 1e9 }'; }
# Runs a command under `time -f` (GNU time, `apt-get install time`), keeping its peak RSS
# in MB in the file named by $1.
timed() { local log=$1; shift; /usr/bin/time -f "%M" -o "$log.rss" "$@"; }
peak_mb() { awk '{printf "%d", $1 / 1024}' "$1.rss" 2>/dev/null || true; }

echo "| model | parameters | generate (s) | rustc -O (s / MB) | Rust vs Keras | g++ -O2 (s / MB) | C++ vs Keras |"
echo "|---|---:|---:|---:|---|---:|---|"
for n in "${names[@]}"; do
    for variant in top notop; do
        stem="${n}_${variant}"
        dir="$out/$stem"
        rm -rf "$dir" && mkdir -p "$dir"
        model="$PWD/$out/$stem.keras"
        io="$PWD/$out/$stem.io.json"
        params=$("$tool" inspect "$model" 2>/dev/null | awk '/parameters/ {gsub(",", "", $0); for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+$/) {print $i; exit}}')
        t0=$(date +%s%N)
        if ! "$tool" generate "$model" --lang rust --name model --scratch stack -o "$dir/model.rs" 2>"$dir/gen.err"; then
            echo "| $stem | ${params:-?} | failed: $(head -c 300 "$dir/gen.err" | tr '\n|' '  ') | | | | |"
            continue
        fi
        gen=$(seconds "$t0")
        # Above 1 MiB of weights, C++ reads model.hpp.weights.bin with .incbin (found on -I).
        "$tool" generate "$model" --lang cpp --name model -o "$dir/model.hpp" 2>>"$dir/gen.err"
        "$python" -c "import json,sys; print(*json.load(open(sys.argv[1]))['inputs'][0])" "$io" >"$dir/input.txt"
        cat >"$dir/main.rs" <<'RUST'
mod model;
use std::io::Read;
fn main() {
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text).unwrap();
    let values: Vec<f32> = text.split_whitespace().map(|t| t.parse().unwrap()).collect();
    let input: &[f32; model::INPUT_LEN] = values.as_slice().try_into().unwrap();
    for y in model::predict(input).iter() {
        println!("{y:?}");
    }
}
RUST
        cat >"$dir/main.cpp" <<'CPP'
#include <cstdio>
#include "model.hpp"
static float input[model::kInputLen], output[model::kOutputLen];
int main() {
    for (float& x : input) if (std::scanf("%f", &x) != 1) return 1;
    model::predict(input, output);
    for (float y : output) std::printf("%.9g\n", y);
}
CPP
        t0=$(date +%s%N)
        rust="compile error"
        if timed "$dir/rustc.log" rustc --edition 2021 -C opt-level=3 "$dir/main.rs" -o "$dir/rust_run" \
            2>"$dir/rustc.log"; then
            rust_time=$(seconds "$t0")
            "$dir/rust_run" <"$dir/input.txt" >"$dir/rust_out.txt"
            rust=$("$python" scripts/compare_outputs.py "$io" "$dir/rust_out.txt")
        else
            rust_time="-"
        fi
        rust_mb=$(peak_mb "$dir/rustc.log")
        t0=$(date +%s%N)
        cpp="compile error"
        if timed "$dir/gxx.log" g++ -std=c++17 -O2 -I "$dir" -o "$dir/cpp_run" "$dir/main.cpp" 2>"$dir/gxx.log"; then
            cpp_time=$(seconds "$t0")
            "$dir/cpp_run" <"$dir/input.txt" >"$dir/cpp_out.txt"
            cpp=$("$python" scripts/compare_outputs.py "$io" "$dir/cpp_out.txt")
        else
            cpp_time="-"
        fi
        cpp_mb=$(peak_mb "$dir/gxx.log")
        echo "| $stem | $params | $gen | $rust_time / $rust_mb | $rust | $cpp_time / $cpp_mb | $cpp |"
    done
done
