#!/usr/bin/env bash
# Sweep all 2^32 inputs of every math runtime function (src/backend/math) against an
# f64 reference and print the max error in ulp per function, with how many results are
# not correctly rounded; then check that the C++ version (g++ -O2 -ffp-contract=off)
# gives the same bits as the Rust one for every input (one hash per function).
#
# Not part of `cargo test`: it is the ignored test `full_sweep`, run in release on all
# cores: about 15 minutes on 2 cores, plus about 13 for the single-threaded C++ run,
# which K2S_SWEEP_CPP=0 skips. Honours CARGO_TARGET_DIR like any cargo command.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo test --release --lib backend::math::tests::full_sweep -- --ignored --exact --nocapture
