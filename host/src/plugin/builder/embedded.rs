//! The WIT package and the JavaScript, Python and C SDKs, part of this
//! binary: a plugin is built against exactly the interface this host
//! speaks, wherever `sluice` runs, with no SDK checkout beside it.
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
pub const WIT: &str = include_str!("../../../../wit/plugin.wit");

macro_rules! files {
    ($root:literal: $($path:literal),* $(,)?) => {
        &[$(($path, include_bytes!(concat!("../../../../guest-sdk/", $root, "/", $path)) as &[u8])),*]
    };
}

/// The JavaScript (and TypeScript) SDK, with its build script.
const JS: &[(&str, &[u8])] = files!("js":
    "build.mjs", "index.js", "frame.js", "record.js", "testing.js", "package.json",
);

/// The Python SDK, with its build script.
const PYTHON: &[(&str, &[u8])] = files!("python":
    "build.py",
    "sluice_sdk/__init__.py", "sluice_sdk/_component.py", "sluice_sdk/frame.py",
    "sluice_sdk/log.py", "sluice_sdk/record.py", "sluice_sdk/runtime.py",
    "sluice_sdk/state.py", "sluice_sdk/testing.py",
);

/// The C SDK, with the bindings `wit-bindgen c` made of the WIT.
const C: &[(&str, &[u8])] = files!("c":
    "include/sluice.h", "src/sluice_internal.h",
    "src/sluice_frame.c", "src/sluice_runtime.c", "src/sluice_wit.c",
    "bindings/record_processor.c", "bindings/record_processor.h",
    "bindings/record_processor_component_type.o",
);

/// A language's SDK files: (path in the SDK, contents). Rust's SDK is a
/// crate, found by cargo, so it has none here.
pub fn files(language: Language) -> &'static [(&'static str, &'static [u8])] {
    match language {
        Language::Rust => &[],
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
        let file = tmp.path().join(path);
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
}
