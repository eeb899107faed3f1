//! JavaScript and TypeScript plugins, componentized with componentize-js.
//!
//! The SDK's `build.mjs` type-checks a TypeScript entry (tsc; a type error
//! fails the build), bundles the entry with the SDK (esbuild, which also
//! strips TypeScript's types) behind an entry that binds the WIT imports of
//! the world the plugin exports (`processor` or `aggregator`), then runs
//! componentize-js with every WASI feature turned off, so the component
//! (SpiderMonkey inside, about 12 MB) imports only `log`, `types` and, for
//! a processor, `state`. The SDK's `test.mjs` runs the plugin's own tests
//! with node's test runner. The toolchain is the npm packages under
//! `<toolchains>/js`, at the versions `scripts/setup.sh` pins.

use std::path::{Path, PathBuf};

use super::{Language, Target, on_path, run_tool, toolchains_dir};
use crate::error::BuildError;
use crate::toolchain::template::Kind;

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
pub const INSTALL: &str = "npm install --prefix \"$T\" --no-audit --no-fund --save-exact @bytecodealliance/componentize-js@0.23.0 @bytecodealliance/jco@1.35.0 @bytecodealliance/preview2-shim@0.25.0 esbuild@0.28.2 typescript@7.0.2   (T=${SLUICE_TOOLCHAINS:-~/.cache/sluice/toolchains}/js; or run ./scripts/setup.sh)";

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

/// The files of `sluice plugin new --lang js|ts --kind <kind>`.
pub(crate) fn template(
    language: Language,
    kind: Kind,
) -> Option<&'static [(&'static str, &'static str)]> {
    match (language, kind) {
        (Language::TypeScript, Kind::Processor) => Some(&[
            (
                "package.json",
                include_str!("../../../guest-sdk/js/template/ts/package.json"),
            ),
            (
                "tsconfig.json",
                include_str!("../../../guest-sdk/js/template/ts/tsconfig.json"),
            ),
            (
                "src/index.ts",
                include_str!("../../../guest-sdk/js/template/ts/src/index.ts"),
            ),
            (
                "test/index.test.ts",
                include_str!("../../../guest-sdk/js/template/ts/test/index.test.ts"),
            ),
        ]),
        (_, Kind::Processor) => Some(&[
            (
                "package.json",
                include_str!("../../../guest-sdk/js/template/js/package.json"),
            ),
            (
                "src/index.js",
                include_str!("../../../guest-sdk/js/template/js/src/index.js"),
            ),
            (
                "test/index.test.js",
                include_str!("../../../guest-sdk/js/template/js/test/index.test.js"),
            ),
        ]),
        (Language::TypeScript, Kind::Aggregator) => Some(&[
            (
                "package.json",
                include_str!("../../../guest-sdk/js/template/ts-aggregator/package.json"),
            ),
            (
                "tsconfig.json",
                include_str!("../../../guest-sdk/js/template/ts-aggregator/tsconfig.json"),
            ),
            (
                "src/index.ts",
                include_str!("../../../guest-sdk/js/template/ts-aggregator/src/index.ts"),
            ),
            (
                "test/index.test.ts",
                include_str!("../../../guest-sdk/js/template/ts-aggregator/test/index.test.ts"),
            ),
        ]),
        (_, Kind::Aggregator) => Some(&[
            (
                "package.json",
                include_str!("../../../guest-sdk/js/template/js-aggregator/package.json"),
            ),
            (
                "src/index.js",
                include_str!("../../../guest-sdk/js/template/js-aggregator/src/index.js"),
            ),
            (
                "test/index.test.js",
                include_str!("../../../guest-sdk/js/template/js-aggregator/test/index.test.js"),
            ),
        ]),
        (_, Kind::Extractor | Kind::Joiner) => None,
    }
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
    for package in ["@bytecodealliance/componentize-js", "esbuild", "typescript"] {
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
        "build.mjs (tsc, esbuild, componentize-js)",
        target.quiet,
    )
}

/// Runs the JavaScript or TypeScript plugin's own tests (`test/`,
/// `*.test.js`, `*.test.ts`) with node's test runner, through the SDK's
/// `test.mjs`: each test bundled with the SDK (esbuild), a TypeScript
/// entry type-checked first.
pub(super) fn test(target: &Target<'_>) -> Result<(), BuildError> {
    let t = toolchain()?;
    let mut cmd = std::process::Command::new("node");
    cmd.arg(target.sdk.join("test.mjs"))
        .arg("--plugin")
        .arg(target.dir)
        .arg("--toolchain")
        .arg(&t);
    run_tool(&mut cmd, target.dir, "node --test (test.mjs)", target.quiet)
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

    /// The pins of `build.mjs` (which checks the toolchain it runs with),
    /// of [`INSTALL`] and of `scripts/setup.sh` are the same.
    #[test]
    fn the_toolchain_is_pinned_alike_everywhere() {
        let script = include_str!("../../../guest-sdk/js/build.mjs");
        let setup = include_str!("../../../scripts/setup.sh");
        let table = &script[script.find("export const TOOLCHAIN = [").unwrap()..];
        let table = &table[..table.find("];").unwrap()];
        let pins: Vec<String> = table
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split('\'').collect();
                (fields.len() == 5).then(|| format!("{}@{}", fields[1], fields[3]))
            })
            .collect();
        assert_eq!(pins.len(), 5, "{table}");
        assert!(pins.contains(&"typescript@7.0.2".to_owned()), "{pins:?}");
        for pin in &pins {
            assert!(INSTALL.contains(&format!(" {pin} ")), "{pin} in {INSTALL}");
            assert!(setup.contains(pin), "{pin} in scripts/setup.sh");
        }
        assert_eq!(INSTALL.matches('@').count(), pins.len() + 3, "{INSTALL}");
    }

    /// The plugin of `sluice plugin new --lang <language> --kind <kind>`,
    /// named `demo`, in `root`, with what building or testing it needs.
    fn new_plugin(root: &Path, language: Language, kind: Kind) -> (PathBuf, PathBuf, PathBuf) {
        let dir = root
            .join(format!("{}-{}", language.name(), kind.name()))
            .join("demo");
        let target_dir = root.join("target");
        crate::toolchain::template::new_plugin(language, kind, &dir, &target_dir).unwrap();
        let sdk = super::super::embedded::materialize(language, &target_dir).unwrap();
        let component = root.join(format!("{}-{}.wasm", language.name(), kind.name()));
        (dir, sdk, component)
    }

    /// Every JavaScript and TypeScript template passes its own tests; a
    /// failing test fails `test`, and a type error fails the build (before
    /// componentize-js, so this takes seconds) with tsc naming the file and
    /// line. Needs the toolchain (./scripts/setup.sh); without it, skipped.
    #[test]
    fn the_templates_pass_their_tests_and_type_errors_fail_the_build() {
        if let Err(e) = toolchain() {
            eprintln!("skipped: {e}");
            return;
        }
        let root = tempfile::tempdir().unwrap();
        for language in [Language::JavaScript, Language::TypeScript] {
            for kind in [Kind::Processor, Kind::Aggregator] {
                let (dir, sdk, component) = new_plugin(root.path(), language, kind);
                let target = Target {
                    dir: &dir,
                    sdk,
                    component: &component,
                    quiet: true,
                };
                test(&target).unwrap_or_else(|e| panic!("{language} {kind}: {e}"));
                let ext = if language == Language::TypeScript {
                    "ts"
                } else {
                    "js"
                };
                let test_file = dir.join(format!("test/index.test.{ext}"));
                let text = std::fs::read_to_string(&test_file).unwrap();
                std::fs::write(
                    &test_file,
                    text.replacen("assert.", "assert.fail(); assert.", 1),
                )
                .unwrap();
                let e = test(&target).unwrap_err().to_string();
                assert!(e.contains("not ok 1"), "{language} {kind}: {e}");
            }
        }
        let (dir, sdk, component) = new_plugin(
            &root.path().join("typed"),
            Language::TypeScript,
            Kind::Aggregator,
        );
        let source = dir.join("src/index.ts");
        let text = std::fs::read_to_string(&source).unwrap();
        assert!(text.contains("count: totals.count + 1"));
        std::fs::write(
            &source,
            text.replace("count: totals.count + 1", "count: `${totals.count}`"),
        )
        .unwrap();
        let target = Target {
            dir: &dir,
            sdk,
            component: &component,
            quiet: true,
        };
        let e = build(&target).unwrap_err().to_string();
        // tsc names the method whose return type is wrong, and why.
        let line = 1 + text
            .lines()
            .position(|l| l.contains("add(totals, record)"))
            .unwrap();
        assert!(
            e.contains(&format!("src/index.ts({line},3): error TS2322")),
            "{e}"
        );
        assert!(
            e.contains("Type 'string' is not assignable to type 'number'."),
            "{e}"
        );
        assert!(!component.exists());
    }
}
