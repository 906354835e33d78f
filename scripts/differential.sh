#!/bin/sh
# Differential testing at length: CASES random models (default 500) from SEED (default
# 1), each generated as Rust and C++, compiled, run and compared with the interpreter.
# Failing models are written to target/differential-failures/.
# Usage: scripts/differential.sh [CASES] [SEED]
set -eu
cd "$(dirname "$0")/.."
KERAS2SRC_DIFF_CASES="${1:-500}" KERAS2SRC_DIFF_SEED="${2:-1}" \
    exec cargo test --release --test differential -- --nocapture
