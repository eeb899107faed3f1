//! The plugin toolchain: `sluice plugin new` (a plugin to start from, per
//! language: [`template`]) and `sluice plugin build` (a plugin's source
//! directory to a component). The runtime that loads and runs components
//! is `crate::plugin`; this module never runs one.
//!
//! The language is read off the directory ([`Language::detect`]):
//!
//! - [`rust`]: a crate (`Cargo.toml`), built for `wasm32-unknown-unknown`
//!   and made a component in-process.
//! - [`js`]: JavaScript or TypeScript (`package.json`, `src/index.ts`, …),
//!   bundled with the JS SDK and componentized with componentize-js.
//! - [`python`]: a Python module (`app.py`), componentized with
//!   componentize-py, WASI stubbed out.
//! - [`c`]: C sources, compiled by clang for wasm32 with the C SDK and
//!   made a component in-process.
//!
//! Every route makes a component that imports nothing beyond what the
//! sandbox gives (`log`, `state`): no WASI. The SDKs of JavaScript, Python
//! and C, and the WIT package, are part of this binary
//! ([`embedded`]), so a plugin directory needs nothing but its own source
//! and the language's toolchain; a missing toolchain is named with the
//! command that installs it.
//!
//! Guests share one target directory (`SLUICE_GUEST_TARGET_DIR`, default
//! `~/.cache/sluice/guest-target`); a component is made again only when
//! its sources are newer.

pub mod c;
pub mod embedded;
pub mod js;
pub mod python;
pub mod rust;
pub mod template;

use std::path::{Path, PathBuf};

pub use rust::Toolchain;

use crate::error::BuildError;

/// Sluice's cache directory: `$XDG_CACHE_HOME/sluice`, else
/// `~/.cache/sluice`.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("sluice")
}

/// Where guests are built.
pub fn guest_target_dir() -> PathBuf {
    match std::env::var_os("SLUICE_GUEST_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => cache_dir().join("guest-target"),
    }
}

/// Where the JavaScript and Python toolchains are installed
/// (`scripts/setup.sh` puts them there): `$SLUICE_TOOLCHAINS`, else
/// `~/.cache/sluice/toolchains`.
pub fn toolchains_dir() -> PathBuf {
    match std::env::var_os("SLUICE_TOOLCHAINS") {
        Some(dir) => PathBuf::from(dir),
        None => cache_dir().join("toolchains"),
    }
}

/// Options for [`build`].
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Capture the toolchain's output (shown only on failure) instead of
    /// streaming it to the terminal.
    pub quiet: bool,
    /// The Rust toolchain; `None` detects one ([`Toolchain::detect`]).
    pub toolchain: Option<Toolchain>,
    /// The guest target directory; `None` is [`guest_target_dir`].
    pub target_dir: Option<PathBuf>,
}

impl BuildOptions {
    fn target_dir(&self) -> PathBuf {
        self.target_dir.clone().unwrap_or_else(guest_target_dir)
    }
}

/// The language a plugin is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// A Cargo crate.
    Rust,
    /// JavaScript (ES modules).
    JavaScript,
    /// TypeScript.
    TypeScript,
    /// Python 3.
    Python,
    /// C.
    C,
}

impl Language {
    /// Every language, in the order `sluice plugin new` lists them.
    pub const ALL: [Language; 5] = [
        Language::Rust,
        Language::JavaScript,
        Language::TypeScript,
        Language::Python,
        Language::C,
    ];

    /// Its name on the command line (`--lang`).
    pub fn name(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::JavaScript => "js",
            Language::TypeScript => "ts",
            Language::Python => "python",
            Language::C => "c",
        }
    }

    /// The language of the plugin in `dir`, from the files it has:
    /// `Cargo.toml` (Rust), `package.json`, `tsconfig.json` or an
    /// `index.{js,ts}` (JavaScript; TypeScript when the entry is `.ts`),
    /// `app.py` or `pyproject.toml` (Python), `*.c` (C).
    pub fn detect(dir: &Path) -> Result<Language, BuildError> {
        let has = |name: &str| dir.join(name).is_file();
        if !dir.is_dir() {
            return Err(BuildError::UnknownLanguage {
                dir: dir.to_owned(),
                message: "it is not a directory".into(),
            });
        }
        if has("Cargo.toml") {
            return Ok(Language::Rust);
        }
        if let Some(entry) = js::entry(dir) {
            return Ok(if entry.extension().is_some_and(|e| e == "ts") {
                Language::TypeScript
            } else {
                Language::JavaScript
            });
        }
        if has("package.json") || has("tsconfig.json") {
            return Err(BuildError::UnknownLanguage {
                dir: dir.to_owned(),
                message: format!(
                    "it looks like a JavaScript plugin, but has none of the entry files {}",
                    js::ENTRIES.join(", ")
                ),
            });
        }
        if has(python::ENTRY) || has("pyproject.toml") {
            return Ok(Language::Python);
        }
        if !c::sources(dir).unwrap_or_default().is_empty() {
            return Ok(Language::C);
        }
        Err(BuildError::UnknownLanguage {
            dir: dir.to_owned(),
            message: format!(
                "it has no Cargo.toml (Rust), {} (JavaScript/TypeScript), {} (Python) or *.c file (C); \
                 `sluice plugin new --lang <rust|js|ts|python|c> <dir>` writes a template",
                js::ENTRIES.join(" or "),
                python::ENTRY
            ),
        })
    }
}

impl std::fmt::Display for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Language::Rust => "Rust",
            Language::JavaScript => "JavaScript",
            Language::TypeScript => "TypeScript",
            Language::Python => "Python",
            Language::C => "C",
        })
    }
}

/// Builds the plugin in `dir`, in whatever language it is written;
/// returns the component's path.
pub fn build(dir: &Path, opts: &BuildOptions) -> Result<PathBuf, BuildError> {
    let language = Language::detect(dir)?;
    tracing::debug!(dir = %dir.display(), %language, "building plugin");
    if language == Language::Rust {
        // Cargo decides for itself what is stale.
        return rust::build(dir, opts);
    }
    let component = component_path(dir, language, opts);
    if up_to_date(&component, dir) {
        return Ok(component);
    }
    let target = Target::new(dir, language, &component, opts)?;
    match language {
        Language::JavaScript | Language::TypeScript => js::build(&target)?,
        Language::Python => python::build(&target)?,
        Language::C => c::build(&target)?,
        Language::Rust => unreachable!("built above"),
    }
    Ok(component)
}

/// Runs the tests of the plugin in `dir` (`sluice plugin test`), with its
/// language's test runner and the SDK this binary carries: no broker and
/// no component are needed. A failing test is a [`BuildError::Tool`] with
/// the runner's output.
pub fn test(dir: &Path, opts: &BuildOptions) -> Result<(), BuildError> {
    let language = Language::detect(dir)?;
    if language == Language::Rust {
        return rust::test(dir, opts);
    }
    let component = component_path(dir, language, opts);
    let target = Target::new(dir, language, &component, opts)?;
    match language {
        Language::JavaScript | Language::TypeScript => js::test(&target),
        Language::Python => python::test(&target),
        Language::C => c::test(&target),
        Language::Rust => unreachable!("tested above"),
    }
}

/// What a non-Rust build works with: the plugin's directory, the SDK and
/// WIT written out for its language, and where the component goes.
struct Target<'a> {
    dir: &'a Path,
    sdk: PathBuf,
    component: &'a Path,
    quiet: bool,
}

impl<'a> Target<'a> {
    /// The `language` plugin in `dir`, with its SDK written out.
    fn new(
        dir: &'a Path,
        language: Language,
        component: &'a Path,
        opts: &BuildOptions,
    ) -> Result<Target<'a>, BuildError> {
        Ok(Target {
            dir,
            sdk: embedded::materialize(language, &opts.target_dir())?,
            component,
            quiet: opts.quiet,
        })
    }

    /// `program` running the SDK's build `script` with the arguments every
    /// SDK's script takes: the plugin, the WIT and the output. The script
    /// reads the world (processor or aggregator) off the plugin itself.
    fn script(&self, program: impl AsRef<std::ffi::OsStr>, script: &str) -> std::process::Command {
        let mut cmd = std::process::Command::new(program);
        cmd.arg(self.sdk.join(script))
            .arg("--plugin")
            .arg(self.dir)
            .arg("--wit")
            .arg(self.sdk.join("wit"))
            .arg("--out")
            .arg(self.component);
        cmd
    }
}

/// Makes a component of a core module that carries its WIT world (as
/// `wit-bindgen` leaves it).
pub fn componentize(module: &[u8]) -> Result<Vec<u8>, String> {
    wit_component::ComponentEncoder::default()
        .module(module)
        .and_then(|e| e.validate(true).encode())
        .map_err(|e| format!("{e:#}"))
}

/// Makes an I/O error on `path` a [`BuildError::Io`] (for `map_err`).
pub(crate) fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> BuildError + use<> {
    let path = path.to_owned();
    move |source| BuildError::Io { path, source }
}

/// Writes `bytes` to `path` through a temporary file in the same
/// directory, so a concurrent reader never sees half a file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), BuildError> {
    let dir = path.parent().expect("a file path has a parent");
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io_error(dir))?;
    std::io::Write::write_all(&mut tmp, bytes).map_err(io_error(tmp.path()))?;
    tmp.persist(path)
        .map_err(|e| BuildError::Io {
            path: path.to_owned(),
            source: e.error,
        })
        .map(drop)
}

/// Where the component of the non-Rust plugin in `dir` goes: named for
/// the directory, and for the SDK and WIT it is built with, so that a
/// new Sluice never takes an old build for current.
fn component_path(dir: &Path, language: Language, opts: &BuildOptions) -> PathBuf {
    use sha2::{Digest, Sha256};
    let canonical = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
    let mut sha = Sha256::new();
    sha.update(canonical.as_os_str().as_encoded_bytes());
    sha.update(embedded::digest(language));
    let name = canonical
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("plugin");
    opts.target_dir().join("components").join(format!(
        "{name}-{}-{}.wasm",
        language.name(),
        &hex::encode(sha.finalize())[..12]
    ))
}

/// Whether `component` exists and is newer than every file under `dir`
/// (dependency and cache folders aside, and the plugin's own tests in
/// `test/` or `tests/`, which no build reads).
fn up_to_date(component: &Path, dir: &Path) -> bool {
    let Ok(built) = std::fs::metadata(component).and_then(|m| m.modified()) else {
        return false;
    };
    fn newest(dir: &Path, depth: usize) -> Option<std::time::SystemTime> {
        let mut latest = None;
        for entry in std::fs::read_dir(dir).ok()?.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.')
                || matches!(
                    &*name,
                    "node_modules" | "__pycache__" | "target" | "test" | "tests"
                )
            {
                continue;
            }
            let meta = entry.metadata().ok()?;
            let time = if meta.is_dir() {
                if depth == 0 {
                    continue;
                }
                // `None` is older than any time.
                newest(&entry.path(), depth - 1).max(meta.modified().ok())
            } else {
                meta.modified().ok()
            };
            latest = latest.max(time);
        }
        latest
    }
    newest(dir, 4).is_some_and(|t| t <= built)
}

/// Whether `bin` is a file in one of `PATH`'s directories.
fn on_path(bin: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(bin).is_file()))
}

/// Runs a toolchain command; its output is captured (and shown on
/// failure) when `quiet`, else streamed. `what` names it in errors.
fn run_tool(
    cmd: &mut std::process::Command,
    dir: &Path,
    what: &str,
    quiet: bool,
) -> Result<(), BuildError> {
    tracing::info!(dir = %dir.display(), command = ?cmd, "building plugin");
    let outcome = if quiet {
        cmd.output().map(|o| {
            let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&o.stderr));
            (o.status, text)
        })
    } else {
        cmd.status().map(|s| (s, String::new()))
    };
    let (status, output) = outcome.map_err(|e| BuildError::Io {
        path: PathBuf::from(what),
        source: e,
    })?;
    if status.success() {
        return Ok(());
    }
    let tail: Vec<&str> = output.lines().rev().take(60).collect();
    Err(BuildError::Tool {
        dir: dir.to_owned(),
        tool: format!("{what} ({status})"),
        output: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_are_told_apart_by_their_files() {
        let cases: [(&[&str], Language); 6] = [
            (&["Cargo.toml"], Language::Rust),
            (&["package.json", "src/index.ts"], Language::TypeScript),
            (&["index.js"], Language::JavaScript),
            (&["app.py"], Language::Python),
            (&["checksum.c", "util.h"], Language::C),
            (&["Cargo.toml", "app.py"], Language::Rust),
        ];
        for (files, want) in cases {
            let dir = tempfile::tempdir().unwrap();
            for f in files {
                let path = dir.path().join(f);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, "").unwrap();
            }
            assert_eq!(Language::detect(dir.path()).unwrap(), want, "{files:?}");
        }
    }

    #[test]
    fn a_directory_of_nothing_known_says_what_was_looked_for() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "").unwrap();
        let e = Language::detect(dir.path()).unwrap_err().to_string();
        assert!(e.contains("Cargo.toml") && e.contains("app.py"), "{e}");
        assert!(e.contains("sluice plugin new"), "{e}");
        std::fs::write(dir.path().join("package.json"), "{}").unwrap();
        let e = Language::detect(dir.path()).unwrap_err().to_string();
        assert!(e.contains("none of the entry files"), "{e}");
    }

    #[test]
    fn a_component_is_stale_when_a_source_is_newer() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir(&src).unwrap();
        std::fs::write(src.join("index.js"), "a").unwrap();
        let out = tempfile::tempdir().unwrap();
        let component = out.path().join("c.wasm");
        assert!(!up_to_date(&component, dir.path()));
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&component, "c").unwrap();
        assert!(up_to_date(&component, dir.path()));
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::create_dir(dir.path().join("tests")).unwrap();
        std::fs::write(dir.path().join("tests/test_app.py"), "t").unwrap();
        assert!(up_to_date(&component, dir.path()), "a test is not a source");
        std::fs::write(src.join("index.js"), "b").unwrap();
        assert!(!up_to_date(&component, dir.path()));
    }
}
