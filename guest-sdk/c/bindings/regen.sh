#!/usr/bin/env bash
# Regenerates the C bindings of the `record-processor` and
# `record-aggregator` worlds from wit/ with wit-bindgen's C generator. The
# checked-in files were made with
#
#   wit-bindgen-cli 0.61.1 (the Rust SDK uses wit-bindgen 0.61), installed by
#   nice cargo install --locked wit-bindgen-cli --version 0.61.1 --root ~/.cache/sluice/tools
#   (`--no-default-features --features c` builds only the C generator, in a
#   third of the time, and gives the same bytes)
#
#   wit-bindgen c --world record-processor --out-dir guest-sdk/c/bindings wit
#   wit-bindgen c --world record-aggregator --out-dir guest-sdk/c/bindings wit
#
# which write <world>.c, <world>.h and <world>_component_type.o (a wasm
# object whose only content is the `component-type:<world>` custom section:
# the encoded world that wit-component reads to make the component). Run
# this after a change to wit/plugin.wit; then
# `make -C guest-sdk/c test check-wasm`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
want="0.61.1"
bin="${WIT_BINDGEN:-$(command -v wit-bindgen || echo "$HOME/.cache/sluice/tools/bin/wit-bindgen")}"
if [ ! -x "$bin" ]; then
  echo "error: wit-bindgen not found; install it with:" >&2
  echo "  nice cargo install --locked wit-bindgen-cli --version $want --root ~/.cache/sluice/tools" >&2
  exit 1
fi
have="$("$bin" --version | awk '{print $2}')"
if [ "$have" != "$want" ]; then
  echo "warning: wit-bindgen $have, the checked-in bindings came from $want" >&2
fi
for world in record-processor record-aggregator; do
  "$bin" c --world "$world" --out-dir "$here" "$root/wit"
done
