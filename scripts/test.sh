#!/usr/bin/env bash
# The test command: formatting, lints, a build, the guest SDKs' own tests,
# the guest plugins in every language, then every test of the workspace
# (unit tests, plugin tests on the host target, end-to-end tests against
# the embedded broker and a real Kafka broker, doc tests, and the
# benchmark run once as a test). Each phase is timed.
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

timings=()
phase_start=$SECONDS
phase_name=""
phase() {
  [ -z "$phase_name" ] || timings+=("$phase_name $((SECONDS - phase_start)) s")
  phase_name="$1"
  phase_start=$SECONDS
  [ -z "$1" ] || printf '\n\033[1m== %s\033[0m\n' "$1"
}

phase "fmt"
cargo fmt --all --check

phase "build+clippy"
# Exactly what the test phase runs, the `sluice` binary included, linted
# as it compiles: clippy's driver wraps the compiler for the workspace's
# own crates (as `cargo clippy` does), with `-D warnings`. One pass: a
# separate `cargo clippy` checks every dependency again in another profile,
# RocksDB's C++ build included (28 of the 65 minutes of a cold run). Not
# `cargo build`: its profile differs from `cargo test`'s, so every
# dependency would be compiled twice; nor `cargo build --all-targets`,
# which builds the benchmarks in the release profile. The test phase runs
# with the same wrapper, so it finds everything built.
clippy_driver="$(command -v clippy-driver || true)"
if [ -z "$clippy_driver" ]; then
  echo "clippy-driver is not on PATH (rustup component add clippy, or Debian's rust-web-clippy)" >&2
  exit 1
fi
export RUSTC_WORKSPACE_WRAPPER="$clippy_driver"
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
cargo test --workspace --all-targets --no-run

phase "sdks"
# Each guest SDK's own unit tests: node's test runner, pytest, a C harness.
toolchains="${SLUICE_TOOLCHAINS:-$HOME/.cache/sluice/toolchains}"
node --test guest-sdk/js/test/
"$toolchains/python/bin/python" -m pytest -q -p no:cacheprovider \
  guest-sdk/python plugins/large-orders-py plugins/polyglot/parse plugins/user-sessions-py
make -s -C guest-sdk/c test

phase "guests"
# Every plugin, in every language, built and compiled once (compiled
# components are cached, so the tests below load them in milliseconds).
for dir in plugins/*/ plugins/polyglot/*/ plugins/top-stocks/*/ tests/plugins/*/; do
  case "$dir" in plugins/polyglot/ | plugins/top-stocks/) continue ;; esac
  RUST_LOG=warn "$CARGO_TARGET_DIR/debug/sluice" plugin build "$dir" >/dev/null
done

phase "test"
cargo test --workspace --all-targets
cargo test --workspace --doc

phase ""
printf '\nphases: %s\n' "$(IFS=','; echo "${timings[*]}" | sed 's/,/, /g')"
