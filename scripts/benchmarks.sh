#!/usr/bin/env bash
# Regenerates BENCHMARKS.md and docs/step.svg: runs the benches once, in the build the
# environment asks for (a default build unless RUSTFLAGS says otherwise), then writes the
# report from criterion's estimates with scripts/benchmarks.py.
#
#   scripts/benchmarks.sh              run the benches, then write the report (about 15 minutes)
#   BENCH_RUN=0 scripts/benchmarks.sh  write the report from the last run's estimates only
#   BENCH_REPORT=docs/benchmarks-zen3.md BENCH_SVG=docs/step-zen3.svg scripts/benchmarks.sh
#                                      another machine's report and picture (the README's
#                                      headline stays BENCHMARKS.md's)
#
# Every figure of the report comes from the one run: the groups' previous estimates are removed
# first, so that nothing older is mixed in.
set -euo pipefail
cd "$(dirname "$0")/.."

criterion=target/criterion
logs=target/benchmarks
if [ "${BENCH_RUN:-1}" != 0 ]; then
    rm -rf "$criterion"/step_* "$criterion"/bank_* "$criterion"/block_* "$criterion"/subnormal_* \
        "$criterion"/decay_* "$criterion"/tanh_* "$logs"
    mkdir -p "$logs"
    # Each bench prints the backend `Backend::best()` picked and the compiled target features
    # first; the report quotes that line.
    cargo bench --bench step 2>&1 | tee "$logs/step.log"
    cargo bench --bench realtime 2>&1 | tee "$logs/realtime.log"
    cargo bench --bench tanh 2>&1 | tee "$logs/tanh.log"
    date -u +%Y-%m-%d >"$logs/date"
    printf '%s\n' "${RUSTFLAGS:-}" >"$logs/rustflags"
fi
python3 scripts/benchmarks.py "$criterion" "$logs" "${BENCH_REPORT:-BENCHMARKS.md}" \
    "${BENCH_SVG:-docs/step.svg}"
