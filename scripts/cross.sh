#!/usr/bin/env bash
# The crate on CPUs other than x86-64, where no x86 backend exists and the portable one (`wide`)
# steps every cell: linted for 64-bit Arm Linux (aarch64, `wide` on NEON), for 32-bit Arm
# Cortex-M4F without an operating system or allocator (thumbv7em-none-eabihf, no_std) and for
# WebAssembly (wasm32, `wide` scalar and on simd128); and `cargo test` (default features: the
# tests and doctests) run on aarch64 under QEMU's user-mode emulation. Installs what it needs
# first if missing: the Rust targets (rustup), and Debian's aarch64 cross linker and QEMU (apt;
# criterion, a dev-dependency, compiles C for the target).
#
#   scripts/cross.sh            # lint the three targets, then test on aarch64
#   scripts/cross.sh --lint     # only lint
set -euo pipefail

root=$(git rev-parse --show-toplevel)
cd "$root"

rustup target add aarch64-unknown-linux-gnu thumbv7em-none-eabihf wasm32-unknown-unknown
if ! command -v aarch64-linux-gnu-gcc > /dev/null || ! command -v qemu-aarch64 > /dev/null; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    packages="gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user"
    # shellcheck disable=SC2086
    $sudo apt-get install -y $packages ||
        { $sudo apt-get update && $sudo apt-get install -y $packages; }
fi
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"

echo "== aarch64: clippy, every target and feature set CI lints on x86-64"
cargo clippy --target aarch64-unknown-linux-gnu --all-targets -- -D warnings
cargo clippy --target aarch64-unknown-linux-gnu --features onnx --all-targets -- -D warnings
cargo clippy --target aarch64-unknown-linux-gnu --no-default-features --lib --tests -- -D warnings
cargo clippy --target aarch64-unknown-linux-gnu --no-default-features --features proptest --lib \
    -- -D warnings
echo "== aarch64: cargo doc, warnings denied (the private items' too)"
RUSTDOCFLAGS="-D warnings" cargo doc --target aarch64-unknown-linux-gnu --no-deps
RUSTDOCFLAGS="-D warnings" cargo doc --target aarch64-unknown-linux-gnu --no-deps \
    --document-private-items --target-dir target/private-doc

echo "== thumbv7em-none-eabihf (Cortex-M4F, no_std, no allocator): clippy of the library"
cargo clippy --target thumbv7em-none-eabihf --no-default-features --lib -- -D warnings
cargo clippy --target thumbv7em-none-eabihf --no-default-features --features proptest --lib \
    -- -D warnings

echo "== wasm32-unknown-unknown: clippy of the library, with std and without, and with SIMD"
cargo clippy --target wasm32-unknown-unknown --lib -- -D warnings
cargo clippy --target wasm32-unknown-unknown --no-default-features --lib -- -D warnings
# `wide`'s simd128 path, in a target folder of its own (other flags rebuild everything).
RUSTFLAGS="-C target-feature=+simd128" CARGO_TARGET_DIR=target/wasm-simd \
    cargo clippy --target wasm32-unknown-unknown --lib -- -D warnings

[ "${1:-}" != --lint ] || exit 0

echo "== aarch64: cargo test under QEMU (the portable backend's bits and bounds on NEON)"
cargo test --target aarch64-unknown-linux-gnu
