#!/usr/bin/env bash
# Regenerates BENCHMARKS.md and docs/step.svg: runs the benches in the build the environment asks
# for (a default build unless RUSTFLAGS says otherwise), then writes the report from criterion's
# estimates with scripts/benchmarks.py.
#
#   scripts/benchmarks.sh              run the benches, then write the report (about 20 minutes)
#   BENCH_RUN=0 scripts/benchmarks.sh  write the report from the last run's estimates only
#   BENCH_REPORT=docs/benchmarks-zen3.md BENCH_SVG=docs/step-zen3.svg scripts/benchmarks.sh
#                                      another machine's report and picture (the README's
#                                      headline stays BENCHMARKS.md's)
#   BENCH_PASSES=5 scripts/benchmarks.sh
#                                      more passes (3 unless told), each given the benches'
#                                      measurement times divided by the passes
#
# The benches run in passes: every bench of the three programs once, then all of them again, each
# pass saved as a criterion baseline (`pass1`, `pass2`, ...), and the report takes each bench's
# median over the passes. On a shared machine a neighbour's burst slows what runs during it; in a
# single pass that bench alone is off against the others of its group, while with passes minutes
# apart it is off in one pass of several and the median leaves it out. Every figure of the report
# comes from the one run: the groups' previous estimates are removed first, so that nothing older
# is mixed in.
set -euo pipefail
cd "$(dirname "$0")/.."

criterion=target/criterion
logs=target/benchmarks
passes=${BENCH_PASSES:-3}
[[ $passes =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_PASSES must be a positive integer" >&2; exit 2; }
if [ "${BENCH_RUN:-1}" != 0 ]; then
    rm -rf "$criterion"/step_* "$criterion"/bank_* "$criterion"/block_* "$criterion"/subnormal_* \
        "$criterion"/decay_* "$criterion"/tanh_* "$logs"
    mkdir -p "$logs"
    for pass in $(seq "$passes"); do
        # Each bench prints the backend `Backend::best()` picked and the compiled target
        # features first; the report quotes that line. `BENCH_PASSES` shares each bench's
        # warm-up and measurement times out among the passes (benches/support).
        for bench in step realtime tanh; do
            BENCH_PASSES=$passes cargo bench --bench "$bench" -- --save-baseline "pass$pass" \
                2>&1 | tee -a "$logs/$bench.log"
        done
    done
    date -u +%Y-%m-%d >"$logs/date"
    printf '%s\n' "${RUSTFLAGS:-}" >"$logs/rustflags"
fi
python3 scripts/benchmarks.py "$criterion" "$logs" "${BENCH_REPORT:-BENCHMARKS.md}" \
    "${BENCH_SVG:-docs/step.svg}"
