//! Python plugins: `app.py`, componentized with componentize-py.
//!
//! The SDK's `build.py` stages the plugin beside the SDK and runs
//! `componentize-py … componentize --stub-wasi`, so that the component
//! (CPython inside, about 18 MB) imports nothing from WASI. It runs with
//! the Python of the toolchain's virtual environment
//! (`<toolchains>/python`, made by `scripts/setup.sh`).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{
    BuildOptions, Language, component_path, embedded, run_tool, toolchains_dir, up_to_date,
};
use crate::error::BuildError;

/// The module a Python plugin's directory holds.
pub const ENTRY: &str = "app.py";

/// The pinned toolchain, as `scripts/setup.sh` installs it.
pub const INSTALL: &str = "python3 -m venv \"$T\" && \"$T/bin/pip\" install componentize-py==0.25.1 pytest==8.4.2   (T=${SLUICE_TOOLCHAINS:-~/.cache/sluice/toolchains}/python; or run ./scripts/setup.sh)";

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

/// Builds the Python plugin in `dir`; returns the component's path.
pub(super) fn build(dir: &Path, opts: &BuildOptions) -> Result<PathBuf, BuildError> {
    let component = component_path(dir, Language::Python, opts);
    if up_to_date(&component, dir) {
        return Ok(component);
    }
    let python = python()?;
    let sdk = embedded::materialize(Language::Python, &opts.target_dir())?;
    let mut cmd = Command::new(python);
    cmd.arg(sdk.join("build.py"))
        .arg("--plugin")
        .arg(dir)
        .arg("--wit")
        .arg(sdk.join("wit"))
        .args(["--world", "record-processor", "--out"])
        .arg(&component)
        // Bytecode caches of the SDK stay out of the shared folder.
        .env("PYTHONDONTWRITEBYTECODE", "1");
    if opts.quiet {
        cmd.arg("--quiet");
    }
    run_tool(&mut cmd, dir, "componentize-py (build.py)", opts.quiet)?;
    Ok(component)
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
