#!/usr/bin/env bash
# Times the working tree against another revision of the crate in one process, interleaved
# (the package scripts/ab/): the way to tell whether a change made the step faster on a machine
# whose bench runs vary by ±30 %.
#
#   scripts/ab.sh REV                                        # default build
#   RUSTFLAGS="-C target-cpu=native" scripts/ab.sh REV       # native build
#   AB_ONLY=process,pairs scripts/ab.sh REV                   # only those groups (step, run,
#                                                            # bank, process, heads, pairs,
#                                                            # denormal, tanh, bf16, half)
#   AB_BACKEND=avx2+fma AB_ONLY=bank scripts/ab.sh REV       # the bank, step, bf16, half,
#                                                            # process and heads groups on
#                                                            # that backend (step_with,
#                                                            # Rnn::set_backend)
#
# REV must have the API side A uses: RnnCell::new/step/step_with/run_with/w_xh/w_hh/bias,
# RnnBank::new/step/step_unit_major/set_state/reset (named step_lanes before the bank's
# unit-major step was renamed: revisions from before then need that one call renamed in
# main.rs), Rnn::new/step/process/reset/set_backend, Readout::new, Bf16Cell and HalfCell's
# from_cell/step/step_with (the bf16 and half groups), Backend::avx2_fma/avx512/available/name/
# tanh_into, RnnBank::with_backend and kernel::probe::floor_chain.
# Side B (the working tree) also uses kernel::probe (build_info, fma_burst, floor_chain,
# stream_sum, widen_half, widen_bf16) and Backend::best/tanh_into. CI builds the program
# against the working tree, so a change of that API shows there first.
set -euo pipefail

rev=${1:?usage: scripts/ab.sh REV}
root=$(git rev-parse --show-toplevel)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Side A: REV, its package renamed `elman_a`.
mkdir -p "$work/a" "$work/ab"
git -C "$root" archive "$rev" | tar -x -C "$work/a"
sed -i 's/^name = "elman"$/name = "elman_a"/' "$work/a/Cargo.toml"
# The program, scripts/ab/ (a package of its own, built and linted in the repository against the
# working tree for both sides): copied with `elman` pointing at the working tree and `elman_a`
# at REV, and its workspace reduced to itself (the working tree's `elman_a` stand-in stays out).
cp "$root/scripts/ab/main.rs" "$root/scripts/ab/Cargo.toml" "$work/ab/"
cp "$root/scripts/ab/Cargo.lock" "$work/ab/"
sed -i \
    -e "s|^elman = { path = \"../..\" }\$|elman = { path = \"$root\" }|" \
    -e "s|^elman_a = { path = \"a\" }\$|elman_a = { path = \"$work/a\" }|" \
    -e 's|^members = \[".", "a"\]$|members = ["."]|' \
    "$work/ab/Cargo.toml"
grep -qxF "elman_a = { path = \"$work/a\" }" "$work/ab/Cargo.toml" ||
    { echo "scripts/ab/Cargo.toml: no \`elman_a = { path = \"a\" }\` line to point at $rev" >&2; exit 1; }
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}/ab" \
    cargo run --quiet --release --manifest-path "$work/ab/Cargo.toml" -- "$rev"
