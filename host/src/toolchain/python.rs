//! Python plugins: `app.py`, componentized with componentize-py.
//!
//! The SDK's `build.py` stages the plugin beside the SDK and runs
//! `componentize-py … componentize --stub-wasi`, so that the component
//! (CPython inside, about 18 MB) imports nothing from WASI. It runs with
//! the Python of the toolchain's virtual environment
//! (`<toolchains>/python`, made by `scripts/setup.sh`).

use std::path::PathBuf;

use super::{Target, run_tool, toolchains_dir};
use crate::error::BuildError;
use crate::toolchain::template::Kind;

/// The module a Python plugin's directory holds.
pub const ENTRY: &str = "app.py";

/// The pinned toolchain, as `scripts/setup.sh` installs it.
pub const INSTALL: &str = "python3 -m venv \"$T\" && \"$T/bin/pip\" install componentize-py==0.25.1 pytest==8.4.2   (T=${SLUICE_TOOLCHAINS:-~/.cache/sluice/toolchains}/python; or run ./scripts/setup.sh)";

/// The files of `sluice plugin new --lang python --kind <kind>`.
pub(crate) fn template(kind: Kind) -> Option<&'static [(&'static str, &'static str)]> {
    match kind {
        Kind::Processor => Some(&[
            (
                "app.py",
                include_str!("../../../guest-sdk/python/template/app.py"),
            ),
            (
                "tests/test_app.py",
                include_str!("../../../guest-sdk/python/template/tests/test_app.py"),
            ),
        ]),
        Kind::Aggregator => Some(&[
            (
                "app.py",
                include_str!("../../../guest-sdk/python/template/aggregator/app.py"),
            ),
            (
                "tests/test_aggregator.py",
                include_str!(
                    "../../../guest-sdk/python/template/aggregator/tests/test_aggregator.py"
                ),
            ),
        ]),
        Kind::Extractor | Kind::Joiner => None,
    }
}

/// The toolchain's Python, if it is installed with componentize-py.
fn python() -> Result<PathBuf, BuildError> {
    python_in(toolchains_dir().join("python"))
}

fn python_in(venv: PathBuf) -> Result<PathBuf, BuildError> {
    let python = venv.join("bin").join("python");
    if python.is_file() && venv.join("bin").join("componentize-py").is_file() {
        return Ok(python);
    }
    Err(BuildError::MissingToolchain {
        language: "Python".into(),
        message: format!(
            "componentize-py is not installed in {}; install it with: {INSTALL}",
            venv.display()
        ),
    })
}

/// Builds the Python plugin of `target`.
pub(super) fn build(target: &Target<'_>) -> Result<(), BuildError> {
    let mut cmd = target.script(python()?, "build.py");
    // Bytecode caches of the SDK stay out of the shared folder.
    cmd.env("PYTHONDONTWRITEBYTECODE", "1");
    if target.quiet {
        cmd.arg("--quiet");
    }
    run_tool(
        &mut cmd,
        target.dir,
        "componentize-py (build.py)",
        target.quiet,
    )
}

/// Runs the plugin's tests with pytest from the toolchain, the SDK on
/// `PYTHONPATH` (plain CPython: no component is built).
pub(super) fn test(target: &Target<'_>) -> Result<(), BuildError> {
    let mut cmd = std::process::Command::new(python()?);
    cmd.args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .current_dir(target.dir)
        .env("PYTHONPATH", &target.sdk)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    run_tool(&mut cmd, target.dir, "pytest", target.quiet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_toolchain_is_named_with_its_install_command() {
        let empty = tempfile::tempdir().unwrap();
        let e = python_in(empty.path().to_owned()).unwrap_err().to_string();
        assert!(e.starts_with("cannot build Python plugins here"), "{e}");
        assert!(e.contains("pip\" install componentize-py==0.25.1"), "{e}");
    }
}
