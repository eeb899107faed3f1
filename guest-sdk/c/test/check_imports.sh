#!/usr/bin/env bash
# Checks a component's world as wasm-tools prints it: a processor imports
# only sluice:plugin/{log,state,types}@0.1.0 and exports
# sluice:plugin/processor@0.1.0; an aggregator imports only
# sluice:plugin/{log,types}@0.1.0 and exports sluice:plugin/aggregator@0.1.0.
# Usage: check_imports.sh COMPONENT.wasm [processor|aggregator]
set -euo pipefail
kind=${2:-processor}
case "$kind" in
  processor) allowed='log|state|types' ;;
  aggregator) allowed='log|types' ;;
  *) echo "usage: $0 COMPONENT.wasm [processor|aggregator]" >&2; exit 2 ;;
esac
world="$(wasm-tools component wit "$1" | sed -n '/^world root {/,/^}/p')"
bad="$(echo "$world" | grep -E '^\s*import ' | grep -vE "import sluice:plugin/($allowed)@0\.1\.0;" || true)"
if [ -n "$bad" ]; then
  echo "FAIL $1 imports more than sluice:plugin/{$allowed}:" >&2
  echo "$bad" >&2
  exit 1
fi
if ! echo "$world" | grep -qE "^\s*export sluice:plugin/$kind@0\.1\.0;"; then
  echo "FAIL $1 does not export sluice:plugin/$kind@0.1.0" >&2
  exit 1
fi
echo "ok   $1: $(echo "$world" | grep -E '^\s*(import|export) ' | sed 's/^ *//' | tr '\n' ' ')"
