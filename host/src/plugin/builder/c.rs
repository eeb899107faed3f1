//! C plugins: `*.c`, compiled by clang for wasm32 with wasi-libc and the C
//! SDK, then made a component in-process.
//!
//! wasi-libc gives `malloc` and the string functions without importing
//! anything; functions that do I/O (`printf`, `fopen`, `time`, `exit`…)
//! import WASI, which the sandbox refuses, so a module that imports
//! `wasi_snapshot_preview1` is refused here with the advice to log through
//! the SDK instead. No start files and no entry point: the SDK runs the
//! constructors on its first call.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Target, componentize, io_error, on_path, run_tool, write_atomically};
use crate::error::BuildError;

/// The Debian packages of the toolchain.
pub const INSTALL: &str = "apt-get install -y --no-install-recommends clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32   (or run ./scripts/setup.sh)";

const CLANG: &str = "clang-19";

/// The SDK's sources, compiled with the plugin's.
const SDK_SOURCES: [&str; 5] = [
    "src/sluice_frame.c",
    "src/sluice_runtime.c",
    "src/sluice_wit.c",
    "bindings/record_processor.c",
    "bindings/record_processor_component_type.o",
];

/// The `*.c` files directly in `dir`, sorted.
pub fn sources(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "c") && p.is_file())
        .collect();
    found.sort();
    Ok(found)
}

fn check_toolchain() -> Result<(), BuildError> {
    let mut missing = Vec::new();
    if !on_path(CLANG) {
        missing.push("clang-19");
    }
    if !on_path("wasm-ld-19") && !on_path("wasm-ld") {
        missing.push("lld-19");
    }
    if !Path::new("/usr/lib/wasm32-wasi/libc.a").is_file() {
        missing.push("wasi-libc");
    }
    if on_path(CLANG) {
        let builtins = Command::new(CLANG)
            .args(["--target=wasm32-wasi", "-print-libgcc-file-name"])
            .output()
            .ok()
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
        if !builtins.is_some_and(|p| p.is_file()) {
            missing.push("libclang-rt-19-dev-wasm32");
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(BuildError::MissingToolchain {
        language: "C".into(),
        message: format!(
            "missing Debian packages {}; install them with: {INSTALL}",
            missing.join(", ")
        ),
    })
}

/// Builds the C plugin of `target`.
pub(super) fn build(target: &Target<'_>) -> Result<(), BuildError> {
    check_toolchain()?;
    let (dir, sdk) = (target.dir, &target.sdk);
    let plugin_sources = sources(dir).map_err(io_error(dir))?;
    let scratch = tempfile::tempdir().map_err(io_error(&std::env::temp_dir()))?;
    let module = scratch.path().join("plugin.wasm");
    let mut cmd = Command::new(CLANG);
    cmd.args([
        "--target=wasm32-wasi",
        "-O2",
        "-Wall",
        "-Wextra",
        "-nostartfiles",
        "-Wl,--no-entry",
        "-Wl,-z,stack-size=1048576",
        "-Wl,--strip-debug",
    ])
    .arg(format!("-I{}", sdk.join("include").display()))
    .arg(format!("-I{}", sdk.join("bindings").display()))
    .arg(format!("-I{}", dir.display()))
    .args(&plugin_sources)
    .args(SDK_SOURCES.map(|s| sdk.join(s)))
    .arg("-o")
    .arg(&module);
    run_tool(&mut cmd, dir, "clang-19", target.quiet)?;
    let bytes = std::fs::read(&module).map_err(io_error(&module))?;
    if contains(&bytes, b"wasi_snapshot_preview1") {
        return Err(BuildError::Tool {
            dir: dir.to_owned(),
            tool: "clang-19 (the module imports WASI)".into(),
            output:
                "the module imports WASI (wasi_snapshot_preview1), which Sluice refuses: a libc \
                     function that does I/O was used (printf, snprintf, puts, fopen, time, clock, \
                     getenv, exit…). Log with sluice_log() and format with sluice_fmt(); to fail a \
                     record return sluice_reject(…), to fail hard use __builtin_trap()"
                    .into(),
        });
    }
    let encoded = componentize(&bytes).map_err(|message| BuildError::Componentize {
        module: module.clone(),
        message,
    })?;
    write_atomically(target.component, &encoded)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
