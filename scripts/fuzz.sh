#!/usr/bin/env bash
# Fuzz the host's parsers of untrusted input, coverage-guided (libFuzzer,
# through bolero), with AddressSanitizer.
#
# The targets are the #[test]s of host/tests/fuzz.rs: pipeline files (as
# text, and generated from the real keys), plugin output frames (as bytes,
# and encode/decode round trips), Debezium change events (as bytes, and
# generated envelopes) and the admin API's request bodies. `cargo test`
# runs each with random inputs for a second (so scripts/test.sh and
# .ci/run do); this script runs them for longer, one after another.
#
# Usage:
#   scripts/fuzz.sh [-T DURATION] [TARGET...]   run each TARGET (default: all) for DURATION
#                                              (default 5m; 90s, 10m, 1h ... as cargo-bolero reads it)
#   scripts/fuzz.sh list                       list the targets
#
# At the end it prints, per target: executions, seconds, corpus size, crashes.
# It exits non-zero if any target crashed (a panic, a failed assertion, a
# sanitizer report, a timeout or running out of memory). The input is kept
# in $SLUICE_FUZZ_DIR/crashes/<target>/; to replay it under `cargo test`
# (and keep it as a regression test), copy it into
# host/tests/__fuzz__/<target>/crashes/ and run
#   cargo test -p sluice --test fuzz <target>
#
# Needs a nightly toolchain (`rustup toolchain install nightly`, for the
# sanitizer) and cargo-bolero (`cargo install cargo-bolero --locked`).
# The build goes to a target directory of its own ($SLUICE_FUZZ_TARGET_DIR:
# every crate is built again with instrumentation, in the `fuzz` profile of
# Cargo.toml; about 6 GB). The first build took 40 minutes on 2 busy cores;
# later ones recompile only what changed (the sluice crate: 2 to 4 minutes).
#
# Environment:
#   SLUICE_FUZZ_DIR        corpora, crashes and logs (default ~/.cache/sluice/fuzz)
#   SLUICE_FUZZ_TARGET_DIR the instrumented build (default ~/.cache/sluice/fuzz-target)
#   SLUICE_FUZZ_TOOLCHAIN  rustup toolchain with -Zsanitizer (default nightly)
#   SLUICE_FUZZ_ARGS       extra libFuzzer arguments, e.g. "-max_len=65536"
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

TARGETS=(
  pipeline_text pipeline_structured
  frame_decode_bytes frame_round_trip
  debezium_bytes debezium_structured
  admin_api_bodies
)
FUZZ_DIR="${SLUICE_FUZZ_DIR:-$HOME/.cache/sluice/fuzz}"
TARGET_DIR="${SLUICE_FUZZ_TARGET_DIR:-$HOME/.cache/sluice/fuzz-target}"
TOOLCHAIN="${SLUICE_FUZZ_TOOLCHAIN:-nightly}"
TIME=5m

die() { echo "fuzz.sh: $*" >&2; exit 1; }
usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}

if [ "${1:-}" = list ]; then
  printf '%s\n' "${TARGETS[@]}"
  exit 0
fi
selected=()
while [ $# -gt 0 ]; do
  case "$1" in
    -T) [ $# -ge 2 ] || die "-T needs a duration"; TIME="$2"; shift 2 ;;
    -T*) TIME="${1#-T}"; shift ;;
    -h|--help) usage ;;
    -*) die "unknown option: $1" ;;
    *)
      printf '%s\n' "${TARGETS[@]}" | grep -qx -- "$1" || die "unknown target: $1 (scripts/fuzz.sh list)"
      selected+=("$1"); shift ;;
  esac
done
[ ${#selected[@]} -gt 0 ] || selected=("${TARGETS[@]}")

command -v cargo-bolero >/dev/null || die "cargo-bolero not found: cargo install cargo-bolero --locked"
rustup run "$TOOLCHAIN" rustc --version >/dev/null 2>&1 \
  || die "no $TOOLCHAIN toolchain: rustup toolchain install $TOOLCHAIN"

# The normal build's settings would only get in the way.
unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS RUSTFLAGS CARGO_TARGET_DIR
# Leaks of dependencies that are known, and not the host's (see the file).
export LSAN_OPTIONS="suppressions=$PWD/host/tests/fuzz.lsan${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

summary=()
failed=0
for target in "${selected[@]}"; do
  corpus="$FUZZ_DIR/corpus/$target"
  crashes="$FUZZ_DIR/crashes/$target"
  log="$FUZZ_DIR/logs/$target.log"
  mkdir -p "$corpus" "$crashes" "$(dirname "$log")"
  echo "== $target for $TIME (log: $log)" >&2
  start=$SECONDS
  status=0
  engine_args=(--engine-args=-print_final_stats=1)
  for arg in ${SLUICE_FUZZ_ARGS:-}; do engine_args+=("--engine-args=$arg"); done
  nice -n 10 cargo bolero test "$target" --package sluice --engine libfuzzer \
    --toolchain "$TOOLCHAIN" --target-dir "$TARGET_DIR" \
    -T "$TIME" --corpus-dir "$corpus" --crashes-dir "$crashes" "${engine_args[@]}" \
    >"$log" 2>&1 || status=$?
  # libFuzzer's own count and time (the build is not part of it).
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
  seconds="$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)"
  [ -n "$seconds" ] || seconds="$((SECONDS - start)) (with the build)"
  found="$(find "$crashes" -type f ! -name '.*' | wc -l)"
  summary+=("$(printf '%-22s %12s executions in %s s, corpus %s, crashes %s' \
    "$target" "${runs:-?}" "$seconds" "$(find "$corpus" -type f | wc -l)" "$found")")
  if [ "$status" -ne 0 ] || [ "$found" -ne 0 ]; then
    failed=1
    echo "fuzz.sh: $target failed (exit $status); the end of $log:" >&2
    tail -n 40 "$log" >&2
  fi
done

echo
printf '%s\n' "${summary[@]}"
exit "$failed"
