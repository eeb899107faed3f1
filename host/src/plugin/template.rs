//! `sluice plugin new`: a ready-to-build plugin in any language.
//!
//! Every template is the same small processor (it upper-cases values and
//! rejects a record without one), with a pipeline file and sample input
//! beside it, so `sluice dev pipeline.toml --input sample.jsonl` in the
//! new directory runs it at once. The files are part of this binary.

use std::path::{Path, PathBuf};

use super::builder::{Language, io_error};
use crate::error::BuildError;

/// The Rust SDK this binary was built beside, for a Rust template's
/// `Cargo.toml`.
const RUST_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../guest-sdk/rust");

const PIPELINE: &str = include_str!("../../../guest-sdk/template/pipeline.toml");
const SAMPLE: &str = include_str!("../../../guest-sdk/template/sample.jsonl");

/// The files of `language`'s template: (path, contents with `{{name}}`).
fn files(language: Language) -> &'static [(&'static str, &'static str)] {
    match language {
        Language::Rust => &[
            (
                "Cargo.toml",
                include_str!("../../../guest-sdk/rust/template/Cargo.toml"),
            ),
            (
                "src/lib.rs",
                include_str!("../../../guest-sdk/rust/template/src/lib.rs"),
            ),
        ],
        Language::JavaScript => &[
            (
                "package.json",
                include_str!("../../../guest-sdk/js/template/js/package.json"),
            ),
            (
                "src/index.js",
                include_str!("../../../guest-sdk/js/template/js/src/index.js"),
            ),
        ],
        Language::TypeScript => &[
            (
                "package.json",
                include_str!("../../../guest-sdk/js/template/ts/package.json"),
            ),
            (
                "src/index.ts",
                include_str!("../../../guest-sdk/js/template/ts/src/index.ts"),
            ),
        ],
        Language::Python => &[(
            "app.py",
            include_str!("../../../guest-sdk/python/template/app.py"),
        )],
        Language::C => &[(
            "plugin.c",
            include_str!("../../../guest-sdk/c/template/plugin.c"),
        )],
    }
}

/// Writes a new `language` plugin into `dir` (which must not exist, or be
/// empty), named for the directory. Returns the files written.
pub fn new_plugin(language: Language, dir: &Path) -> Result<Vec<PathBuf>, BuildError> {
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned();
    let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err(BuildError::UnknownLanguage {
            dir: dir.to_owned(),
            message: format!(
                "a plugin's directory names it, and `{name}` is not a plugin name: \
                 use lowercase letters, digits and dashes, starting with a letter"
            ),
        });
    }
    if dir.exists()
        && std::fs::read_dir(dir)
            .map_err(io_error(dir))?
            .next()
            .is_some()
    {
        return Err(BuildError::Io {
            path: dir.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "the directory is not empty; a new plugin needs a directory of its own",
            ),
        });
    }
    let fill = |text: &str| text.replace("{{name}}", &name).replace("{{sdk}}", RUST_SDK);
    let mut written = Vec::new();
    let common = [("pipeline.toml", PIPELINE), ("sample.jsonl", SAMPLE)];
    for (path, text) in files(language).iter().chain(&common) {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("a file in the plugin's directory"))
            .map_err(io_error(&path))?;
        std::fs::write(&path, fill(text)).map_err(io_error(&path))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_gets_a_plugin_its_builder_recognizes() {
        for language in Language::ALL {
            let root = tempfile::tempdir().unwrap();
            let dir = root.path().join("shout");
            let files = new_plugin(language, &dir).unwrap();
            assert!(files.iter().all(|f| f.is_file()), "{language}");
            assert_eq!(Language::detect(&dir).unwrap(), language);
            let pipeline = std::fs::read_to_string(dir.join("pipeline.toml")).unwrap();
            assert!(
                pipeline.contains("application.id = \"shout\""),
                "{pipeline}"
            );
            crate::topology::Topology::load(&dir.join("pipeline.toml")).unwrap();
        }
    }

    #[test]
    fn a_bad_name_or_a_full_directory_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let e = new_plugin(Language::C, &root.path().join("Not_A_Name")).unwrap_err();
        assert!(e.to_string().contains("not a plugin name"), "{e}");
        let dir = root.path().join("taken");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("x"), "").unwrap();
        let e = new_plugin(Language::Python, &dir).unwrap_err();
        assert!(e.to_string().contains("not empty"), "{e}");
    }
}
