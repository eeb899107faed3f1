//! JavaScript and TypeScript plugins, componentized with componentize-js.
//!
//! The SDK's `build.mjs` bundles the plugin's entry with the SDK (esbuild,
//! which also strips TypeScript's types) behind an entry that binds the
//! WIT imports, then runs componentize-js with every WASI feature turned
//! off, so the component (SpiderMonkey inside, about 12 MB) imports only
//! `log`, `state` and `types`. The toolchain is the npm packages under
//! `<toolchains>/js`, at the versions `scripts/setup.sh` pins.

use std::path::{Path, PathBuf};

use super::{Target, on_path, run_tool, toolchains_dir};
use crate::error::BuildError;

/// Where a plugin's entry is looked for, after `package.json`'s `main`.
pub const ENTRIES: [&str; 8] = [
    "src/index.ts",
    "src/index.mts",
    "src/index.js",
    "src/index.mjs",
    "index.ts",
    "index.mts",
    "index.js",
    "index.mjs",
];

/// The pinned toolchain, as `scripts/setup.sh` installs it.
pub const INSTALL: &str = "npm install --prefix \"$T\" --no-audit --no-fund --save-exact @bytecodealliance/componentize-js@0.23.0 @bytecodealliance/jco@1.35.0 @bytecodealliance/preview2-shim@0.25.0 esbuild@0.28.2   (T=${SLUICE_TOOLCHAINS:-~/.cache/sluice/toolchains}/js; or run ./scripts/setup.sh)";

/// The plugin's entry module: `package.json`'s `main`, else the first of
/// [`ENTRIES`] that exists.
pub fn entry(dir: &Path) -> Option<PathBuf> {
    let main = std::fs::read_to_string(dir.join("package.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|manifest| manifest["main"].as_str().map(|m| dir.join(m)))
        .filter(|m| m.is_file());
    main.or_else(|| ENTRIES.iter().map(|e| dir.join(e)).find(|p| p.is_file()))
}

fn toolchain() -> Result<PathBuf, BuildError> {
    toolchain_in(toolchains_dir().join("js"))
}

fn toolchain_in(t: PathBuf) -> Result<PathBuf, BuildError> {
    let missing = |what: &str| BuildError::MissingToolchain {
        language: "JavaScript".into(),
        message: format!("{what}; install it with: {INSTALL}"),
    };
    if !on_path("node") {
        return Err(missing(
            "node is not on PATH (Node.js 20 or later is needed too)",
        ));
    }
    for package in ["@bytecodealliance/componentize-js", "esbuild"] {
        if !t.join("node_modules").join(package).is_dir() {
            return Err(missing(&format!(
                "{package} is not installed in {}",
                t.display()
            )));
        }
    }
    Ok(t)
}

/// Builds the JavaScript or TypeScript plugin of `target`.
pub(super) fn build(target: &Target<'_>) -> Result<(), BuildError> {
    let t = toolchain()?;
    let mut cmd = target.script("node", "build.mjs");
    cmd.arg("--toolchain").arg(&t);
    run_tool(
        &mut cmd,
        target.dir,
        "componentize-js (build.mjs)",
        target.quiet,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_toolchain_is_named_with_its_install_command() {
        let empty = tempfile::tempdir().unwrap();
        let e = toolchain_in(empty.path().to_owned())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("cannot build JavaScript plugins here"), "{e}");
        assert!(
            e.contains("is not installed in") && e.contains("npm install --prefix"),
            "{e}"
        );
    }

    #[test]
    fn the_entry_is_package_main_else_the_first_index() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(entry(dir.path()), None);
        std::fs::write(dir.path().join("index.js"), "").unwrap();
        assert_eq!(entry(dir.path()), Some(dir.path().join("index.js")));
        std::fs::create_dir(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/index.ts"), "").unwrap();
        assert_eq!(entry(dir.path()), Some(dir.path().join("src/index.ts")));
        std::fs::write(dir.path().join("main.mjs"), "").unwrap();
        std::fs::write(dir.path().join("package.json"), r#"{"main": "main.mjs"}"#).unwrap();
        assert_eq!(entry(dir.path()), Some(dir.path().join("main.mjs")));
    }
}
