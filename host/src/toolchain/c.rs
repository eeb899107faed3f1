//! C plugins: `*.c`, compiled by clang for wasm32 with wasi-libc and the C
//! SDK, then made a component in-process.
//!
//! wasi-libc gives `malloc` and the string functions without importing
//! anything; functions that do I/O (`printf`, `fopen`, `time`, `exit`…)
//! import WASI, which the sandbox refuses, so a module that imports
//! `wasi_snapshot_preview1` is refused here with the advice to log through
//! the SDK instead. No start files and no entry point: the SDK runs the
//! constructors on its first call.
//!
//! The world comes from the sources ([`world`]): a line starting with
//! `SLUICE_PROCESSOR(` makes a record processor, `SLUICE_AGGREGATOR(` an
//! aggregator, and each links its own WIT bindings. Tests (`tests/*.c`)
//! are compiled for this machine instead, with the SDK's test runner
//! ([`test`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Target, componentize, io_error, on_path, run_tool, write_atomically};
use crate::error::BuildError;
use crate::toolchain::template::Kind;

/// The Debian packages of the toolchain.
pub const INSTALL: &str = "apt-get install -y --no-install-recommends clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32   (or run ./scripts/setup.sh)";

const CLANG: &str = "clang-19";

/// The SDK's runtime, compiled with the plugin's sources in every world
/// (and natively for its tests).
const RUNTIME: [&str; 4] = [
    "src/sluice_frame.c",
    "src/sluice_runtime.c",
    "src/sluice_json.c",
    "src/sluice_aggregate.c",
];

/// The world a C plugin exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum World {
    /// `record-processor` (`SLUICE_PROCESSOR`).
    Processor,
    /// `record-aggregator` (`SLUICE_AGGREGATOR`).
    Aggregator,
}

impl World {
    /// The macro that exports it.
    fn macro_name(self) -> &'static str {
        match self {
            World::Processor => "SLUICE_PROCESSOR",
            World::Aggregator => "SLUICE_AGGREGATOR",
        }
    }

    /// The world's glue and the bindings `wit-bindgen c` made of it.
    fn sources(self) -> [&'static str; 3] {
        match self {
            World::Processor => [
                "src/sluice_wit.c",
                "bindings/record_processor.c",
                "bindings/record_processor_component_type.o",
            ],
            World::Aggregator => [
                "src/sluice_wit_aggregator.c",
                "bindings/record_aggregator.c",
                "bindings/record_aggregator_component_type.o",
            ],
        }
    }
}

/// The files of `sluice plugin new --lang c --kind <kind>`.
pub(crate) fn template(kind: Kind) -> Option<&'static [(&'static str, &'static str)]> {
    match kind {
        Kind::Processor => Some(&[
            (
                "plugin.c",
                include_str!("../../../guest-sdk/c/template/plugin.c"),
            ),
            (
                "tests/test_plugin.c",
                include_str!("../../../guest-sdk/c/template/tests/test_plugin.c"),
            ),
        ]),
        Kind::Aggregator => Some(&[
            (
                "plugin.c",
                include_str!("../../../guest-sdk/c/template/aggregator/plugin.c"),
            ),
            (
                "tests/test_plugin.c",
                include_str!("../../../guest-sdk/c/template/aggregator/tests/test_plugin.c"),
            ),
        ]),
        Kind::Extractor | Kind::Joiner => None,
    }
}

/// Whether a line of C source invokes `name(…)`: it starts with the name
/// (after blanks) followed by `(`, so a comment or a longer name such as
/// `SLUICE_PROCESSOR_INIT` does not count.
fn invokes(line: &str, name: &str) -> bool {
    line.trim_start()
        .strip_prefix(name)
        .is_some_and(|rest| rest.trim_start().starts_with('('))
}

/// The world of the C plugin in `dir`, from its `*.c` and `*.h` files:
/// which of `SLUICE_PROCESSOR(…)` and `SLUICE_AGGREGATOR(…)` they use.
/// Using both, or neither, is an error that says what was found.
pub fn world(dir: &Path) -> Result<World, BuildError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io_error(dir))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "c" || e == "h") && p.is_file())
        .collect();
    files.sort();
    let mut found: [Vec<String>; 2] = Default::default();
    for file in &files {
        let text = std::fs::read(file).map_err(io_error(file))?;
        let text = String::from_utf8_lossy(&text);
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for (i, world) in [World::Processor, World::Aggregator]
            .into_iter()
            .enumerate()
        {
            if text.lines().any(|l| invokes(l, world.macro_name())) {
                found[i].push(name.clone());
            }
        }
    }
    let [processor, aggregator] = found;
    match (processor.is_empty(), aggregator.is_empty()) {
        (false, true) => Ok(World::Processor),
        (true, false) => Ok(World::Aggregator),
        (false, false) => Err(BuildError::UnknownLanguage {
            dir: dir.to_owned(),
            message: format!(
                "it uses both SLUICE_PROCESSOR (in {}) and SLUICE_AGGREGATOR (in {}); \
                 a plugin is a processor or an aggregator: keep one of them",
                processor.join(", "),
                aggregator.join(", ")
            ),
        }),
        (true, true) => Err(BuildError::UnknownLanguage {
            dir: dir.to_owned(),
            message: "no line of its *.c files starts with SLUICE_PROCESSOR(…) or \
                      SLUICE_AGGREGATOR(…), so it exports neither a processor nor an \
                      aggregator: end the plugin with one of them (`sluice plugin new --lang c \
                      --kind processor|aggregator <dir>` writes one)"
                .into(),
        }),
    }
}

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
    let world = world(dir)?;
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
    .args(RUNTIME.map(|s| sdk.join(s)))
    .args(world.sources().map(|s| sdk.join(s)))
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
                     getenv, exit, and strtod, which shares their stdio…). Log with sluice_log(), \
                     format with sluice_fmt() (%g for doubles), read numbers with \
                     sluice_json_number(); to fail a record return sluice_reject(…), to fail hard \
                     use __builtin_trap()"
                    .into(),
        });
    }
    let encoded = componentize(&bytes).map_err(|message| BuildError::Componentize {
        module: module.clone(),
        message,
    })?;
    write_atomically(target.component, &encoded)
}

/// Sanitizers for the native test build, where the compiler links them.
const SANITIZE: &str = "-fsanitize=address,undefined";

/// The compilers a plugin's tests may be built with, for this machine, in
/// order of preference: the system's, then the wasm build's clang.
const NATIVE_COMPILERS: [&str; 4] = ["cc", "gcc", CLANG, "clang"];

/// Whether `compiler` links a program with [`SANITIZE`] here (clang-19
/// needs the native compiler-rt, which not every install has).
fn sanitizers_link(compiler: &str, scratch: &Path) -> bool {
    let src = scratch.join("probe.c");
    if std::fs::write(&src, "int main(void) { return 0; }\n").is_err() {
        return false;
    }
    Command::new(compiler)
        .arg(SANITIZE)
        .arg(&src)
        .arg("-o")
        .arg(scratch.join("probe"))
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs the plugin's tests (`sluice plugin test`): the plugin's `*.c` and
/// `tests/*.c`, compiled for this machine with the SDK's runtime and its
/// test runner (`sluice_testing.h`; address and undefined-behaviour
/// sanitizers where they link), then run in the plugin's directory.
pub(super) fn test(target: &Target<'_>) -> Result<(), BuildError> {
    let Some(compiler) = NATIVE_COMPILERS.into_iter().find(|c| on_path(c)) else {
        return Err(BuildError::MissingToolchain {
            language: "C".into(),
            message: format!(
                "no C compiler for this machine ({}) to build the tests with; install one with: {INSTALL}",
                NATIVE_COMPILERS.join(", ")
            ),
        });
    };
    let (dir, sdk) = (target.dir, &target.sdk);
    let tests_dir = dir.join("tests");
    let tests = if tests_dir.is_dir() {
        sources(&tests_dir).map_err(io_error(&tests_dir))?
    } else {
        Vec::new()
    };
    if tests.is_empty() {
        return Err(BuildError::Tool {
            dir: dir.to_owned(),
            tool: "sluice plugin test".into(),
            output: format!(
                "no tests: a C plugin's tests are the .c files in {}, with SLUICE_TEST(name) {{ … }} \
                 from sluice_testing.h (`sluice plugin new --lang c <dir>` writes an example)",
                tests_dir.display()
            ),
        });
    }
    let plugin_sources = sources(dir).map_err(io_error(dir))?;
    let scratch = tempfile::tempdir().map_err(io_error(&std::env::temp_dir()))?;
    let binary = scratch.path().join("plugin-tests");
    let mut cmd = Command::new(compiler);
    cmd.args(["-g", "-O1", "-Wall", "-Wextra"]);
    if sanitizers_link(compiler, scratch.path()) {
        cmd.args([
            SANITIZE,
            "-fno-sanitize-recover=all",
            "-fno-omit-frame-pointer",
        ]);
    }
    cmd.arg(format!("-I{}", sdk.join("include").display()))
        .arg(format!("-I{}", sdk.join("src").display()))
        .arg(format!("-I{}", dir.display()))
        .args(&plugin_sources)
        .args(&tests)
        .args(RUNTIME.map(|s| sdk.join(s)))
        .arg(sdk.join("src/sluice_testing.c"))
        .arg("-lm")
        .arg("-o")
        .arg(&binary);
    run_tool(
        &mut cmd,
        dir,
        &format!("{compiler} (the tests, for this machine)"),
        target.quiet,
    )?;
    let mut run = Command::new(&binary);
    run.current_dir(dir);
    run_tool(&mut run, dir, "the tests", target.quiet)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn the_world_is_read_off_the_export_macro() {
        let p = plugin(&[
            (
                "util.c",
                "/* SLUICE_AGGREGATOR(a, b, c, d) in a comment */\nint x;\n",
            ),
            (
                "plugin.c",
                "SLUICE_PROCESSOR_INIT(init)\n  SLUICE_PROCESSOR (process)\n",
            ),
        ]);
        assert_eq!(world(p.path()).unwrap(), World::Processor);
        let a = plugin(&[("agg.c", "SLUICE_AGGREGATOR(NULL, initial, add, NULL)\n")]);
        assert_eq!(world(a.path()).unwrap(), World::Aggregator);
        let h = plugin(&[
            ("a.c", "#include \"x.h\"\n"),
            ("x.h", "SLUICE_AGGREGATOR(0, 0, add, 0)\n"),
        ]);
        assert_eq!(world(h.path()).unwrap(), World::Aggregator);
    }

    #[test]
    fn both_worlds_or_neither_is_refused_with_what_was_found() {
        let both = plugin(&[
            ("a.c", "SLUICE_PROCESSOR(p)\n"),
            ("b.c", "SLUICE_AGGREGATOR(NULL, NULL, add, NULL)\n"),
        ]);
        let e = world(both.path()).unwrap_err().to_string();
        assert!(
            e.contains("both SLUICE_PROCESSOR (in a.c) and SLUICE_AGGREGATOR (in b.c)"),
            "{e}"
        );
        let neither = plugin(&[("a.c", "int main(void) { return 0; }\n")]);
        let e = world(neither.path()).unwrap_err().to_string();
        assert!(e.contains("neither a processor nor an aggregator"), "{e}");
        assert!(e.contains("sluice plugin new --lang c"), "{e}");
    }

    #[test]
    fn each_template_exports_the_world_of_its_kind() {
        for (kind, want) in [
            (Kind::Processor, World::Processor),
            (Kind::Aggregator, World::Aggregator),
        ] {
            let files = template(kind).unwrap();
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir(dir.path().join("tests")).unwrap();
            for (path, text) in files {
                std::fs::write(dir.path().join(path), text).unwrap();
            }
            assert_eq!(world(dir.path()).unwrap(), want, "{kind}");
            assert!(files.iter().any(|(p, _)| p.starts_with("tests/")), "{kind}");
        }
        assert!(template(Kind::Extractor).is_none());
    }
}
