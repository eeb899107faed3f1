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
#   5. The guest toolchains of the other plugin languages, pinned:
#      - C: Debian's clang-19, lld-19, wasi-libc and its compiler-rt;
#      - JavaScript/TypeScript: componentize-js, jco, esbuild and
#        typescript from npm, under $SLUICE_TOOLCHAINS/js (default
#        ~/.cache/sluice/toolchains);
#      - Python: componentize-py and pytest from PyPI, in a virtual
#        environment at $SLUICE_TOOLCHAINS/python.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '\033[1msetup:\033[0m %s\n' "$*" >&2; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

missing=()
want() { for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done; }

want build-essential pkg-config libclang-dev clang curl ca-certificates openjdk-17-jdk-headless maven git
# C plugins (wasi-libc gives malloc and strings without WASI imports).
want clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || want nodejs npm
command -v python3 >/dev/null 2>&1 && python3 -c 'import venv, ensurepip' 2>/dev/null || want python3 python3-venv

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

toolchains="${SLUICE_TOOLCHAINS:-$HOME/.cache/sluice/toolchains}"
# Keep these pins in step with host/src/toolchain/{js,python}.rs
# (and guest-sdk/js/build.mjs, which checks the toolchain it runs with).
js_packages=(@bytecodealliance/componentize-js@0.23.0 @bytecodealliance/jco@1.35.0
  @bytecodealliance/preview2-shim@0.25.0 esbuild@0.28.2 typescript@7.0.2)
py_packages=(componentize-py==0.25.1 pytest==8.4.2)
js_installed() {
  local p name version
  for p in "${js_packages[@]}"; do
    name="${p%@*}" version="${p##*@}"
    grep -qs "\"version\": \"$version\"" "$toolchains/js/node_modules/$name/package.json" || return 1
  done
}
if js_installed; then
  say "JavaScript toolchain: present in $toolchains/js"
else
  say "JavaScript toolchain: installing ${js_packages[*]} into $toolchains/js"
  mkdir -p "$toolchains/js"
  npm install --prefix "$toolchains/js" --no-audit --no-fund --save-exact --loglevel=error "${js_packages[@]}" >/dev/null
fi
py="$toolchains/python/bin/python"
if [ -x "$py" ] && "$py" -m pip freeze 2>/dev/null | grep -qx "${py_packages[0]}" \
    && "$py" -m pip freeze 2>/dev/null | grep -qx "${py_packages[1]}"; then
  say "Python toolchain: present in $toolchains/python"
else
  say "Python toolchain: installing ${py_packages[*]} into $toolchains/python"
  python3 -m venv "$toolchains/python"
  "$py" -m pip install --disable-pip-version-check -q "${py_packages[@]}"
fi

say "done"
