#!/usr/bin/env bash
# Times `RnnCell::step`, called once per input from a user's loop, against the same cell written
# with Eigen's static matrices (what RTNeural's Eigen backend computes for a dense layer and its
# tanh), compiled `-O3 -march=native`; both in one process, interleaved (the package
# scripts/peer/). Installs Debian's libeigen3-dev first if Eigen is not there.
#
#   scripts/peer.sh                                      # elman in a default build
#   RUSTFLAGS="-C target-cpu=native" scripts/peer.sh     # elman in a native build
#   scripts/peer.sh --install                            # only install Eigen (CI, before linting)
set -euo pipefail

root=$(git rev-parse --show-toplevel)
include=${EIGEN_INCLUDE:-/usr/include/eigen3}
if [ ! -f "$include/Eigen/Dense" ]; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get install -y libeigen3-dev
fi
[ "${1:-}" != --install ] || exit 0
EIGEN_INCLUDE="$include" CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}/peer" \
    cargo run --quiet --release --manifest-path "$root/scripts/peer/Cargo.toml"
