#!/usr/bin/env bash
# Runs weft's fuzz targets (fuzz/, cargo-fuzz + libFuzzer), one after the
# other, each for SECONDS (default 600), and prints one summary line per
# target: executions, executions per second, corpus size, crashes.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      (default: every target)
#   FUZZ_MERGE=1 scripts/fuzz.sh ...           then merge the inputs that add
#                                              coverage into fuzz/corpus/<target>/
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
# Each run starts from the committed seeds (fuzz/corpus/<target>/) and
# regression inputs (fuzz/regressions/<target>/) and grows a working corpus
# in fuzz/target/work/<target>/ (not committed). A crash or a hang stops the
# target; its input is written under fuzz/artifacts/<target>/.
#
# Runs at nice 10: the fuzzer uses one core.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../fuzz"

SECONDS_PER_TARGET="${1:-600}"
shift || true
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
    TARGETS=(detect client_hello transport_header mesh_file proxy_config)
fi
# No sanitizer: weft forbids unsafe code, so panics (overflow checks
# included, with -a) are what the fuzzer looks for; this also halves the
# build and doubles the speed.
BUILD_FLAGS=(--sanitizer none --debug-assertions)
# A slow input (pathological YAML, say) counts as a hang after 10 s; an input
# that makes a parser hold more than 2 GiB is a crash.
LIBFUZZER_FLAGS=(-timeout=10 -rss_limit_mb=2048 -print_final_stats=1)

nice -n 10 cargo +nightly fuzz build "${BUILD_FLAGS[@]}" || exit 1

SUMMARY=()
STATUS=0
for target in "${TARGETS[@]}"; do
    work="target/work/$target"
    log="target/work/$target.log"
    mkdir -p "$work" "corpus/$target" "regressions/$target" "artifacts/$target"
    # YAML parsing costs milliseconds per input: shorter inputs keep the
    # mesh-file target at hundreds of executions a second.
    extra=()
    if [ "$target" = mesh_file ]; then
        extra=(-max_len=1024)
    fi
    echo "fuzzing $target for ${SECONDS_PER_TARGET}s (log: fuzz/$log)"
    nice -n 10 cargo +nightly fuzz run "${BUILD_FLAGS[@]}" "$target" \
        "$work" "corpus/$target" "regressions/$target" -- \
        "${LIBFUZZER_FLAGS[@]}" "${extra[@]}" -max_total_time="$SECONDS_PER_TARGET" \
        -artifact_prefix="artifacts/$target/" >"$log" 2>&1
    code=$?
    executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    per_second=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    corpus=$(find "$work" -type f | wc -l)
    crash=$(grep -o "Test unit written to [^ ]*" "$log" | sed 's/Test unit written to //' | tail -1)
    if [ "$code" -eq 0 ]; then
        result="crashes: 0"
    else
        result="crashes: 1 ($(grep -m1 -oE 'ERROR: libFuzzer: [a-z-]+|panicked at [^ ]*' "$log" || echo "exit $code")) input: fuzz/${crash:-?}"
        STATUS=1
    fi
    SUMMARY+=("$(printf '%-17s executions: %-11s exec/s: %-7s working corpus: %-6s %s' \
        "$target" "${executions:-?}" "${per_second:-?}" "$corpus" "$result")")
    if [ "${FUZZ_MERGE:-0}" = 1 ]; then
        nice -n 10 cargo +nightly fuzz run "${BUILD_FLAGS[@]}" "$target" \
            "corpus/$target" "$work" -- -set_cover_merge=1 -use_counters=0 -timeout=10 >"target/work/$target.merge.log" 2>&1
    fi
done

echo
printf '%s\n' "${SUMMARY[@]}"
exit $STATUS
