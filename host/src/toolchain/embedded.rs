//! The WIT package and the SDKs of every language, part of this binary: a
//! plugin is built against exactly the interface this host speaks,
//! wherever `sluice` runs, with no SDK checkout beside it. The Rust SDK
//! (`sluice-sdk` and `sluice-frame`) is written out as crates that a
//! plugin names by path ([`rust_sdk`]), their manifests made standalone.
//!
//! [`materialize`] writes a language's files once into a folder of the
//! guest target directory named for their digest, where the language's
//! build reads them (a folder is never rewritten, so concurrent builds
//! share it safely).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{Language, io_error};
use crate::error::BuildError;

/// `wit/plugin.wit`.
pub const WIT: &str = include_str!("../../../wit/plugin.wit");

macro_rules! files {
    ($root:literal: $($path:literal),* $(,)?) => {
        &[$(($path, include_bytes!(concat!("../../../guest-sdk/", $root, "/", $path)) as &[u8])),*]
    };
}

/// The JavaScript (and TypeScript) SDK, with its build and test scripts
/// and its types (which the build type-checks TypeScript against).
const JS: &[(&str, &[u8])] = files!("js":
    "build.mjs", "test.mjs", "index.js", "frame.js", "record.js", "testing.js", "package.json",
    "index.d.ts", "testing.d.ts",
);

/// The Python SDK, with its build script.
const PYTHON: &[(&str, &[u8])] = files!("python":
    "build.py",
    "sluice_sdk/__init__.py", "sluice_sdk/_component.py",
    "sluice_sdk/_component_aggregator.py", "sluice_sdk/_glue.py",
    "sluice_sdk/aggregate.py", "sluice_sdk/frame.py",
    "sluice_sdk/log.py", "sluice_sdk/record.py", "sluice_sdk/runtime.py",
    "sluice_sdk/state.py", "sluice_sdk/testing.py",
);

/// The C SDK, with the bindings `wit-bindgen c` made of the WIT (one set
/// per world) and the native test runner (`sluice_testing.h`).
const C: &[(&str, &[u8])] = files!("c":
    "include/sluice.h", "include/sluice_testing.h", "src/sluice_internal.h",
    "src/sluice_frame.c", "src/sluice_runtime.c", "src/sluice_json.c",
    "src/sluice_aggregate.c", "src/sluice_wit.c", "src/sluice_wit_aggregator.c",
    "src/sluice_testing.c",
    "bindings/record_processor.c", "bindings/record_processor.h",
    "bindings/record_processor_component_type.o",
    "bindings/record_aggregator.c", "bindings/record_aggregator.h",
    "bindings/record_aggregator_component_type.o",
);

/// The Rust SDK: `sluice-sdk` and, in `frame/`, `sluice-frame`. Their
/// manifests inherit from the workspace's, so they are rewritten when
/// written out ([`standalone_manifest`]).
const RUST: &[(&str, &[u8])] = files!("rust":
    "Cargo.toml",
    "src/lib.rs", "src/aggregate.rs", "src/extract.rs", "src/join.rs", "src/log.rs",
    "src/record.rs", "src/runtime.rs", "src/state.rs", "src/testing.rs",
    "frame/Cargo.toml", "frame/src/lib.rs",
);

/// The workspace manifest the Rust SDK's manifests inherit from.
const WORKSPACE: &str = include_str!("../../../Cargo.toml");

/// Where the Rust SDK goes in its folder: two levels down, as in the
/// checkout, so that its `generate!` finds the WIT at `../../wit`.
const RUST_PREFIX: &str = "guest-sdk/rust";

/// A language's SDK files: (path in the SDK, contents).
pub fn files(language: Language) -> &'static [(&'static str, &'static [u8])] {
    match language {
        Language::Rust => RUST,
        Language::JavaScript | Language::TypeScript => JS,
        Language::Python => PYTHON,
        Language::C => C,
    }
}

/// SHA-256 of the WIT and the language's SDK files.
pub fn digest(language: Language) -> [u8; 32] {
    let mut sha = Sha256::new();
    sha.update(WIT.as_bytes());
    for (path, bytes) in files(language) {
        sha.update(path.as_bytes());
        sha.update((bytes.len() as u64).to_le_bytes());
        sha.update(bytes);
    }
    sha.finalize().into()
}

/// The SDK of `language` and the WIT (as `wit/plugin.wit`) in a folder
/// under `target_dir`, written if it is not there yet. Returns the folder.
pub fn materialize(language: Language, target_dir: &Path) -> Result<PathBuf, BuildError> {
    let root = target_dir.join("sdk");
    let dir = root.join(format!(
        "{}-{}",
        language.name(),
        &hex::encode(digest(language))[..16]
    ));
    if dir.is_dir() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&root).map_err(io_error(&root))?;
    let tmp = tempfile::Builder::new()
        .prefix(".sdk-")
        .tempdir_in(&root)
        .map_err(io_error(&root))?;
    let wit = std::iter::once(("wit/plugin.wit", WIT.as_bytes()));
    for (path, bytes) in files(language).iter().copied().chain(wit) {
        let (file, bytes) = if language == Language::Rust && path != "wit/plugin.wit" {
            let file = tmp.path().join(RUST_PREFIX).join(path);
            let bytes = if path.ends_with("Cargo.toml") {
                standalone_manifest(std::str::from_utf8(bytes).expect("a UTF-8 manifest"))
                    .into_bytes()
            } else {
                bytes.to_vec()
            };
            (file, bytes)
        } else {
            (tmp.path().join(path), bytes.to_vec())
        };
        std::fs::create_dir_all(file.parent().expect("a file in the SDK"))
            .map_err(io_error(&file))?;
        std::fs::write(&file, bytes).map_err(io_error(&file))?;
    }
    match std::fs::rename(tmp.path(), &dir) {
        Ok(()) => {
            // Renamed away: nothing left for the guard to remove.
            let _ = tmp.keep();
            Ok(dir)
        }
        // Another build put the same files there first.
        Err(_) if dir.is_dir() => Ok(dir),
        Err(e) => Err(BuildError::Io {
            path: dir,
            source: e,
        }),
    }
}

/// The Rust SDK crate (`sluice-sdk`), written under `target_dir` if it is
/// not there yet: the path a Rust plugin's `Cargo.toml` names.
pub fn rust_sdk(target_dir: &Path) -> Result<PathBuf, BuildError> {
    Ok(materialize(Language::Rust, target_dir)?.join(RUST_PREFIX))
}

/// `manifest` with what it inherits from the workspace written out: the
/// `[package]` fields, the dependencies (features added together), no
/// dev-dependencies (a plugin never builds the SDK's tests) and no
/// workspace lints.
fn standalone_manifest(manifest: &str) -> String {
    use toml::{Table, Value};
    let workspace: Table = toml::from_str(WORKSPACE).expect("the workspace manifest parses");
    let ws = &workspace["workspace"];
    let inherits = |v: &Value| v.get("workspace").and_then(Value::as_bool) == Some(true);
    let mut doc: Table = toml::from_str(manifest).expect("an SDK manifest parses");
    if let Some(Value::Table(package)) = doc.get_mut("package") {
        for (field, value) in package.iter_mut() {
            if inherits(value) {
                *value = ws["package"][field.as_str()].clone();
            }
        }
    }
    doc.remove("dev-dependencies");
    doc.remove("lints");
    if let Some(Value::Table(deps)) = doc.get_mut("dependencies") {
        for (name, dep) in deps.iter_mut() {
            let Value::Table(local) = dep else { continue };
            if !inherits(&Value::Table(local.clone())) {
                continue;
            }
            let mut merged = match &ws["dependencies"][name.as_str()] {
                Value::String(version) => {
                    Table::from_iter([("version".into(), version.clone().into())])
                }
                Value::Table(t) => t.clone(),
                other => panic!("workspace dependency {name} is {other}"),
            };
            for (key, value) in local.iter() {
                match (key.as_str(), value, merged.get_mut(key)) {
                    ("workspace", _, _) => {}
                    ("features", Value::Array(more), Some(Value::Array(features))) => {
                        for f in more {
                            if !features.contains(f) {
                                features.push(f.clone());
                            }
                        }
                    }
                    _ => {
                        merged.insert(key.clone(), value.clone());
                    }
                }
            }
            *dep = Value::Table(merged);
        }
    }
    toml::to_string(&doc).expect("a manifest serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_sdk_is_written_once_with_the_wit() {
        let target = tempfile::tempdir().unwrap();
        for language in [Language::JavaScript, Language::Python, Language::C] {
            let dir = materialize(language, target.path()).unwrap();
            assert_eq!(
                std::fs::read_to_string(dir.join("wit/plugin.wit")).unwrap(),
                WIT
            );
            for (path, bytes) in files(language) {
                assert_eq!(&std::fs::read(dir.join(path)).unwrap(), bytes, "{path}");
            }
            assert_eq!(materialize(language, target.path()).unwrap(), dir);
        }
        assert_eq!(
            digest(Language::JavaScript),
            digest(Language::TypeScript),
            "one SDK for both"
        );
        assert_ne!(digest(Language::Python), digest(Language::C));
    }

    #[test]
    fn every_module_of_the_python_sdk_is_embedded() {
        let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk/python/sluice_sdk");
        let mut modules: Vec<String> = std::fs::read_dir(&sdk)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".py"))
            .map(|name| format!("sluice_sdk/{name}"))
            .collect();
        modules.sort();
        let mut embedded: Vec<&str> = PYTHON
            .iter()
            .map(|(path, _)| *path)
            .filter(|path| path.starts_with("sluice_sdk/"))
            .collect();
        embedded.sort_unstable();
        assert_eq!(embedded, modules, "embedded.rs's PYTHON list");
    }

    #[test]
    fn every_file_of_the_c_sdk_is_embedded() {
        let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk/c");
        let mut files: Vec<String> = ["include", "src", "bindings"]
            .iter()
            .flat_map(|dir| {
                std::fs::read_dir(sdk.join(dir))
                    .unwrap()
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|name| name != "regen.sh")
                    .map(move |name| format!("{dir}/{name}"))
            })
            .collect();
        files.sort();
        let mut embedded: Vec<&str> = C.iter().map(|(path, _)| *path).collect();
        embedded.sort_unstable();
        assert_eq!(embedded, files, "embedded.rs's C list");
    }

    #[test]
    fn the_rust_sdk_is_written_with_standalone_manifests() {
        let target = tempfile::tempdir().unwrap();
        let sdk = rust_sdk(target.path()).unwrap();
        assert!(sdk.starts_with(target.path()), "{}", sdk.display());
        let manifest = std::fs::read_to_string(sdk.join("Cargo.toml")).unwrap();
        assert!(!manifest.contains("workspace"), "{manifest}");
        let doc: toml::Table = toml::from_str(&manifest).unwrap();
        assert_eq!(doc["package"]["name"].as_str(), Some("sluice-sdk"));
        assert_eq!(doc["package"]["version"].as_str(), Some("0.1.0"));
        let wit_bindgen = &doc["dependencies"]["wit-bindgen"];
        assert!(wit_bindgen["version"].as_str().is_some(), "{manifest}");
        let serde_json = &doc["dependencies"]["serde_json"];
        assert_eq!(serde_json["optional"].as_bool(), Some(true), "{manifest}");
        assert_eq!(
            serde_json["features"].as_array().unwrap().len(),
            1,
            "features added together once: {manifest}"
        );
        assert!(doc.get("dev-dependencies").is_none());
        let frame = std::fs::read_to_string(sdk.join("frame/Cargo.toml")).unwrap();
        assert!(!frame.contains("workspace"), "{frame}");
        // The crate's bindings find the WIT where they look for it.
        assert_eq!(
            std::fs::read_to_string(sdk.join("../../wit/plugin.wit")).unwrap(),
            WIT
        );
    }
}
