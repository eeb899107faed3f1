#!/usr/bin/env bash
# Checks a component's world as wasm-tools prints it: the only imports are
# sluice:plugin/{log,state,types}@0.1.0 and sluice:plugin/processor@0.1.0 is
# exported. Usage: check_imports.sh COMPONENT.wasm
set -euo pipefail
world="$(wasm-tools component wit "$1" | sed -n '/^world root {/,/^}/p')"
bad="$(echo "$world" | grep -E '^\s*import ' | grep -vE 'import sluice:plugin/(log|state|types)@0\.1\.0;' || true)"
if [ -n "$bad" ]; then
  echo "FAIL $1 imports more than sluice:plugin log/state/types:" >&2
  echo "$bad" >&2
  exit 1
fi
if ! echo "$world" | grep -qE '^\s*export sluice:plugin/processor@0\.1\.0;'; then
  echo "FAIL $1 does not export sluice:plugin/processor@0.1.0" >&2
  exit 1
fi
echo "ok   $1: $(echo "$world" | grep -E '^\s*(import|export) ' | sed 's/^ *//' | tr '\n' ' ')"
