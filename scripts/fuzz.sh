#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time each, one after the other.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     (default: 600 s each, every target)
#
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). Corpora are seeded
# from tests/fixtures/models (small files only) into fuzz/corpus/<target>/ on first use;
# crashes land in fuzz/artifacts/<target>/, logs in fuzz/logs/<target>.log (all ignored by
# git). Each run has libFuzzer's per-input timeout (-timeout=10) and RSS limit
# (-rss_limit_mb=1024), so a hang or an unbounded allocation is reported as a failure.
# Environment: FUZZ_SANITIZER (default none; address for ASan).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_EACH=${1:-600}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(keras_archive h5 interchange pipeline)
SANITIZER=${FUZZ_SANITIZER:-none}
MODELS=$ROOT/tests/fixtures/models

seed() {
    local target=$1 dir=$ROOT/fuzz/corpus/$1
    [ -d "$dir" ] && [ -n "$(ls -A "$dir")" ] && return
    mkdir -p "$dir"
    case $target in
    keras_archive)
        find "$MODELS" -name '*.keras' -size -20k -exec cp {} "$dir/" \; ;;
    h5)
        find "$MODELS" \( -name '*.k3.h5' -o -name '*.k2.h5' \) -size -20k -exec cp {} "$dir/" \;
        # Bare weights files, each followed by its architecture (see fuzz_targets/h5.rs).
        for w in $(find "$MODELS" -name '*.weights.h5' -size -16k | head -40); do
            local arch=${w%.weights.h5}.arch.json
            [ -f "$arch" ] || continue
            { cat "$w"; printf '\0ARCH\0'; cat "$arch"; } >"$dir/$(basename "$w").with-arch"
        done ;;
    interchange)
        find "$MODELS" -name '*.interchange.json' -size -16k -exec cp {} "$dir/" \; ;;
    pipeline)
        find "$MODELS" -name '*.interchange.json' -size -8k -exec cp {} "$dir/" \;
        find "$MODELS" -name '*.keras' -size -14k -exec cp {} "$dir/" \; ;;
    *) echo "unknown target $target" >&2; exit 2 ;;
    esac
}

mkdir -p "$ROOT/fuzz/logs"
summary=()
status=0
for target in "${TARGETS[@]}"; do
    seed "$target"
    log=$ROOT/fuzz/logs/$target.log
    echo "== $target: ${SECONDS_EACH}s, corpus $(ls "$ROOT/fuzz/corpus/$target" | wc -l) files"
    set +e
    (cd "$ROOT/fuzz" && cargo +nightly fuzz run --sanitizer "$SANITIZER" --debug-assertions \
        "$target" "corpus/$target" -- \
        -max_total_time="$SECONDS_EACH" -rss_limit_mb=1024 -timeout=10 -max_len=65536 \
        -print_final_stats=1) >"$log" 2>&1
    rc=$?
    set -e
    [ $rc -ne 0 ] && status=1
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
    rss=$(grep -o 'stat::peak_rss_mb: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)
    line="$target: exit $rc, ${execs:-?} execs, ${rate:-?} execs/s, ${cov:-cov ?}, peak RSS ${rss:-?} MB"
    [ $rc -ne 0 ] && line="$line  FAILED (see $log, fuzz/artifacts/$target/)"
    echo "$line"
    summary+=("$line")
done
echo
echo "== summary"
printf '%s\n' "${summary[@]}"
exit $status
