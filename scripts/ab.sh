#!/usr/bin/env bash
# Times the working tree against another revision of the crate in one process, interleaved
# (scripts/ab/main.rs): the way to tell whether a change made the step faster on a machine
# whose bench runs vary by ±30 %.
#
#   scripts/ab.sh REV                                        # default build
#   RUSTFLAGS="-C target-cpu=native" scripts/ab.sh REV       # native build
#   AB_ONLY=process,pairs scripts/ab.sh REV                   # only those groups (step, bank,
#                                                            # process, pairs, denormal)
#
# REV must have the API the timing uses (RnnCell::new/step, RnnBank::new/step/step_lanes).
set -euo pipefail

rev=${1:?usage: scripts/ab.sh REV}
root=$(git rev-parse --show-toplevel)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/a" "$work/ab/src"
git -C "$root" archive "$rev" | tar -x -C "$work/a"
sed -i 's/^name = "elman"$/name = "elman_a"/' "$work/a/Cargo.toml"
cat > "$work/ab/Cargo.toml" <<TOML
[package]
name = "elman-ab"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
elman = { path = "$root" }
elman_a = { path = "$work/a" }

[workspace]
TOML
cp "$root/scripts/ab/main.rs" "$work/ab/src/main.rs"
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}/ab" \
    cargo run --quiet --release --manifest-path "$work/ab/Cargo.toml" -- "$rev"
