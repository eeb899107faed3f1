#!/usr/bin/env bash
# Installs everything Sluice needs to build, test and run, on Debian or
# Ubuntu, with only the package registries reachable (and also where
# rustup can download). Safe to run again: it skips what is already there.
#
#   1. Debian packages: C toolchain and headers for librdkafka and RocksDB,
#      Java 17 and Maven (for the real Kafka broker used in tests).
#   2. Rust: rustup's toolchain if present; otherwise Debian's rustc-web
#      (1.96) with clippy and rustfmt.
#   3. The guest toolchain for wasm32-unknown-unknown: rustup's target
#      where it can be added, otherwise Debian's rustc-web + rust-web-src
#      (-Zbuild-std) and lld-19.
#   4. Apache Kafka's jars, from Maven Central (scripts/kafka.sh fetch).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '\033[1msetup:\033[0m %s\n' "$*" >&2; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

missing=()
want() { for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done; }

want build-essential pkg-config libclang-dev clang curl ca-certificates openjdk-17-jdk-headless maven git

host_cargo=""
if command -v cargo >/dev/null 2>&1 && cargo --version >/dev/null 2>&1; then
  host_cargo="$(command -v cargo)"
else
  say "no cargo on PATH: using Debian's rustc-web for the host too"
  want rustc-web cargo-web rust-web-clippy rustfmt
fi

guest_route=""
if command -v rustup >/dev/null 2>&1; then
  if rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    guest_route="rustup"
  elif timeout 120 rustup target add wasm32-unknown-unknown >/dev/null 2>&1; then
    guest_route="rustup"
  fi
fi
if [ -z "$guest_route" ]; then
  guest_route="debian"
  want rustc-web cargo-web rust-web-src lld-19
fi

if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  say "Debian packages: all present"
fi
say "host Rust: ${host_cargo:-/usr/bin/cargo (Debian rustc-web)}; guests: $guest_route route"

say "Kafka jars"
./scripts/kafka.sh fetch

say "done"
