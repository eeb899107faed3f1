#!/usr/bin/env bash
# The test command: formatting, lints, then every test of the workspace
# (unit tests, plugin tests on the host target, end-to-end tests against
# the embedded broker and a real Kafka broker, doc tests, and the
# benchmarks run once each as tests).
#
# Build output goes to $CARGO_TARGET_DIR (default ~/.cache/sluice/target),
# guests to $SLUICE_GUEST_TARGET_DIR (default ~/.cache/sluice/guest-target),
# so a fresh clone reuses earlier builds.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice/target}"
if ! command -v cargo >/dev/null 2>&1; then
  export PATH="/usr/bin:$PATH" RUSTC=/usr/bin/rustc
fi

phase() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
start=$SECONDS

phase "cargo fmt --check"
cargo fmt --all --check

phase "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

phase "cargo test"
cargo test --workspace --all-targets
cargo test --workspace --doc

printf '\ntests finished in %d s\n' $((SECONDS - start))
