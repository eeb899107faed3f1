//! Rust plugins: a crate built into a component.
//!
//! 1. Build the crate for `wasm32-unknown-unknown` (no WASI: the sandbox
//!    refuses it) with whichever toolchain is here:
//!    - **rustup**, where the `wasm32-unknown-unknown` target is installed;
//!    - **Debian's rustc-web**, where rustup cannot download targets: its
//!      `rust-web-src` package has the standard library sources, so
//!      `-Zbuild-std` compiles them for wasm, linked with `wasm-ld-19`.
//! 2. Make a component of the core module in-process with `wit-component`.
//!
//! Guests share one target directory (`SLUICE_GUEST_TARGET_DIR`, default
//! `~/.cache/sluice/guest-target`), so the standard library is compiled once.
//! A component is re-encoded only when its core module is newer.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{
    BuildOptions, componentize, guest_target_dir, io_error, on_path, run_tool, write_atomically,
};
use crate::error::BuildError;
use crate::toolchain::template::Kind;

const TARGET: &str = "wasm32-unknown-unknown";
const SETUP_HINT: &str = "run `./scripts/setup.sh` from the Sluice checkout (it installs Debian's \
     rustc-web, cargo-web, rust-web-src and lld-19), or `rustup target add wasm32-unknown-unknown`";

/// The files of `sluice plugin new --lang rust --kind <kind>`; `{{sdk}}`
/// is the Rust SDK's path.
pub(crate) fn template(kind: Kind) -> Option<&'static [(&'static str, &'static str)]> {
    Some(match kind {
        Kind::Processor => &[
            (
                "Cargo.toml",
                include_str!("../../../guest-sdk/rust/template/Cargo.toml"),
            ),
            (
                "src/lib.rs",
                include_str!("../../../guest-sdk/rust/template/src/lib.rs"),
            ),
        ],
        Kind::Aggregator => &[
            (
                "Cargo.toml",
                include_str!("../../../guest-sdk/rust/template/aggregator/Cargo.toml"),
            ),
            (
                "src/lib.rs",
                include_str!("../../../guest-sdk/rust/template/aggregator/src/lib.rs"),
            ),
        ],
        Kind::Extractor => &[
            (
                "Cargo.toml",
                include_str!("../../../guest-sdk/rust/template/extractor/Cargo.toml"),
            ),
            (
                "src/lib.rs",
                include_str!("../../../guest-sdk/rust/template/extractor/src/lib.rs"),
            ),
        ],
        Kind::Joiner => &[
            (
                "Cargo.toml",
                include_str!("../../../guest-sdk/rust/template/joiner/Cargo.toml"),
            ),
            (
                "src/lib.rs",
                include_str!("../../../guest-sdk/rust/template/joiner/src/lib.rs"),
            ),
        ],
    })
}

/// How guests are compiled on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Toolchain {
    /// rustup's cargo with the `wasm32-unknown-unknown` target installed.
    Rustup,
    /// Debian's rustc-web with `-Zbuild-std`, linked by this `wasm-ld`.
    DebianBuildStd {
        /// The linker binary.
        linker: String,
    },
}

impl Toolchain {
    /// Finds a toolchain; `SLUICE_GUEST_TOOLCHAIN=rustup|debian` forces one.
    pub fn detect() -> Result<Toolchain, BuildError> {
        let forced = std::env::var("SLUICE_GUEST_TOOLCHAIN").ok();
        if forced.as_deref() != Some("debian") && rustup_has_target() {
            return Ok(Toolchain::Rustup);
        }
        if forced.as_deref() == Some("rustup") {
            return Err(BuildError::NoToolchain {
                message: format!(
                    "SLUICE_GUEST_TOOLCHAIN=rustup, but rustup has no {TARGET} target"
                ),
            });
        }
        Self::debian()
    }

    /// Debian's rustc-web with `-Zbuild-std`, if its packages are installed.
    pub fn debian() -> Result<Toolchain, BuildError> {
        let missing: Vec<&str> = [
            ("/usr/bin/rustc", "rustc-web"),
            ("/usr/bin/cargo", "cargo-web"),
            ("/usr/lib/rustlib/src/rust/library", "rust-web-src"),
        ]
        .into_iter()
        .filter(|(p, _)| !Path::new(p).exists())
        .map(|(_, pkg)| pkg)
        .collect();
        let linker = ["wasm-ld-19", "rust-lld", "wasm-ld"]
            .into_iter()
            .find(|l| on_path(l));
        match (missing.is_empty(), linker) {
            (true, Some(linker)) => Ok(Toolchain::DebianBuildStd {
                linker: linker.to_owned(),
            }),
            (_, linker) => {
                let mut missing = missing;
                if linker.is_none() {
                    missing.push("lld-19");
                }
                Err(BuildError::NoToolchain {
                    message: format!(
                        "missing Debian packages {}; {SETUP_HINT}",
                        missing.join(", ")
                    ),
                })
            }
        }
    }
}

fn rustup_has_target() -> bool {
    Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .any(|l| l.trim() == TARGET)
        })
        .unwrap_or(false)
}

/// Builds the plugin crate in `dir`; returns the component's path.
pub(super) fn build(dir: &Path, opts: &BuildOptions) -> Result<PathBuf, BuildError> {
    let lib = lib_name(dir)?;
    check_sdk_path(dir, opts)?;
    let toolchain = match &opts.toolchain {
        Some(t) => t.clone(),
        None => Toolchain::detect()?,
    };
    let target_dir = opts.target_dir.clone().unwrap_or_else(guest_target_dir);
    let mut cmd = match &toolchain {
        Toolchain::Rustup => {
            let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
            c.args(["build", "--release", "--target", TARGET]);
            c
        }
        Toolchain::DebianBuildStd { linker } => {
            let mut c = Command::new("/usr/bin/cargo");
            let path = std::env::var_os("PATH").unwrap_or_default();
            let mut paths = vec![PathBuf::from("/usr/bin")];
            paths.extend(std::env::split_paths(&path));
            c.env(
                "PATH",
                std::env::join_paths(paths).expect("PATH entries are valid"),
            )
            .env("RUSTC", "/usr/bin/rustc")
            .env("RUSTC_BOOTSTRAP", "1")
            .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER", linker)
            .env_remove("RUSTUP_TOOLCHAIN")
            .args([
                "build",
                "-Zbuild-std=std,panic_abort",
                "--release",
                "--target",
                TARGET,
            ]);
            c
        }
    };
    clean_cargo_env(&mut cmd);
    cmd.current_dir(dir)
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "3");
    tracing::debug!(?toolchain, "Rust guest toolchain");
    run_tool(&mut cmd, dir, "cargo build", opts.quiet)?;
    let module = target_dir
        .join(TARGET)
        .join("release")
        .join(format!("{lib}.wasm"));
    let component = target_dir.join("components").join(format!("{lib}.wasm"));
    componentize_if_stale(&module, &component)?;
    Ok(component)
}

/// Runs the crate's tests on the host target (`cargo test`): plugin logic
/// is plain Rust, and `sluice_sdk::testing` runs it through the frames.
pub(super) fn test(dir: &Path, opts: &BuildOptions) -> Result<(), BuildError> {
    lib_name(dir)?;
    check_sdk_path(dir, opts)?;
    let target_dir = opts.target_dir.clone().unwrap_or_else(guest_target_dir);
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.arg("test");
    clean_cargo_env(&mut cmd);
    cmd.current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir.join("native"));
    run_tool(&mut cmd, dir, "cargo test", opts.quiet)
}

/// A build started from inside `cargo test` must not inherit its flags.
fn clean_cargo_env(cmd: &mut Command) {
    for var in [
        "CARGO_TARGET_DIR",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_MAKEFLAGS",
    ] {
        cmd.env_remove(var);
    }
}

/// A crate that `sluice plugin new` wrote names the Rust SDK this binary
/// wrote out under the guest target directory. Where that folder is gone
/// (a cleaned cache) it is written again; where it is another Sluice's
/// (its digest differs), the error says which path to name instead.
fn check_sdk_path(dir: &Path, opts: &BuildOptions) -> Result<(), BuildError> {
    let manifest = dir.join("Cargo.toml");
    let Ok(text) = std::fs::read_to_string(&manifest) else {
        return Ok(());
    };
    let Ok(doc) = toml::from_str::<toml::Table>(&text) else {
        return Ok(());
    };
    let Some(path) = doc
        .get("dependencies")
        .and_then(|d| d.get("sluice-sdk"))
        .and_then(|d| d.get("path"))
        .and_then(|p| p.as_str())
    else {
        return Ok(());
    };
    let named = dir.join(path);
    if named.join("Cargo.toml").is_file() {
        return Ok(());
    }
    let target_dir = opts.target_dir.clone().unwrap_or_else(guest_target_dir);
    let ours = super::embedded::rust_sdk(&target_dir)?;
    if named == ours {
        return Ok(());
    }
    Err(BuildError::NotACrate {
        dir: dir.to_owned(),
        message: format!(
            "its dependency sluice-sdk names {}, which does not exist (written by another \
             Sluice, or a cleaned cache?); this Sluice's Rust SDK is at {}: set \
             `sluice-sdk = {{ path = \"{}\" }}` in {}",
            named.display(),
            ours.display(),
            ours.display(),
            manifest.display()
        ),
    })
}

/// The library name cargo gives the crate in `dir`.
fn lib_name(dir: &Path) -> Result<String, BuildError> {
    let manifest = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).map_err(|e| BuildError::NotACrate {
        dir: dir.to_owned(),
        message: format!("cannot read {}: {e}", manifest.display()),
    })?;
    let doc: toml::Table = toml::from_str(&text).map_err(|e| BuildError::NotACrate {
        dir: dir.to_owned(),
        message: format!("{}: {e}", manifest.display()),
    })?;
    let explicit = doc
        .get("lib")
        .and_then(|l| l.get("name"))
        .and_then(|n| n.as_str());
    let package = doc
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str());
    explicit
        .or(package)
        .map(|n| n.replace('-', "_"))
        .ok_or_else(|| BuildError::NotACrate {
            dir: dir.to_owned(),
            message: format!("{} has no [package] name", manifest.display()),
        })
}

fn componentize_if_stale(module: &Path, component: &Path) -> Result<(), BuildError> {
    let module_time = std::fs::metadata(module)
        .and_then(|m| m.modified())
        .map_err(io_error(module))?;
    if let Ok(existing) = std::fs::metadata(component).and_then(|m| m.modified())
        && existing >= module_time
    {
        return Ok(());
    }
    let bytes = std::fs::read(module).map_err(io_error(module))?;
    let encoded = componentize(&bytes).map_err(|message| BuildError::Componentize {
        module: module.to_owned(),
        message,
    })?;
    write_atomically(component, &encoded)?;
    tracing::info!(component = %component.display(), bytes = encoded.len(), "componentized");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lib_name_prefers_lib_section_and_normalizes_dashes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Cargo.toml"),
            "[package]\nname = \"large-orders\"\n",
        )
        .unwrap();
        assert_eq!(lib_name(dir.path()).unwrap(), "large_orders");
        std::fs::write(
            dir.path().join("Cargo.toml"),
            "[package]\nname = \"a\"\n[lib]\nname = \"b-c\"\n",
        )
        .unwrap();
        assert_eq!(lib_name(dir.path()).unwrap(), "b_c");
    }

    #[test]
    fn a_directory_without_a_manifest_is_not_a_crate() {
        let dir = tempfile::tempdir().unwrap();
        let opts = BuildOptions {
            quiet: true,
            ..BuildOptions::default()
        };
        let e = build(dir.path(), &opts).unwrap_err();
        assert!(matches!(e, BuildError::NotACrate { .. }), "{e}");
    }

    #[test]
    fn a_module_without_bindings_makes_a_component_the_host_refuses() {
        // The smallest core module: no wit-bindgen metadata, no exports.
        let component = componentize(b"\0asm\x01\0\0\0").unwrap();
        let engine = crate::plugin::engine();
        let e = crate::plugin::Plugin::from_bytes(
            &engine,
            "empty",
            Path::new("empty.wasm"),
            &component,
        )
        .unwrap_err();
        assert!(e.to_string().contains("it exports nothing"), "{e}");
    }
}
