//! `sluice plugin new`: a ready-to-build plugin in any language.
//!
//! A template is one [`Kind`] of plugin: a processor (upper-cases values,
//! rejects a record without one), an aggregator (counts and totals each
//! key's `amount`s, with `merge` for session windows), an extractor
//! (event time from a JSON field) or a joiner (an order with its
//! customer's name; Rust only). Each comes with a pipeline file and
//! sample input, so `sluice dev pipeline.toml --input sample.jsonl` in the
//! new directory runs it at once, and with tests that `sluice plugin test`
//! runs without a broker. The files are part of this binary; each
//! language's live in its builder module.

use std::path::{Path, PathBuf};

use super::{Language, c, embedded, io_error, js, python, rust};
use crate::error::BuildError;

/// What a template's plugin is: the world it exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A record processor (map, filter, flat-map).
    Processor,
    /// A keyed aggregation (init, add, merge).
    Aggregator,
    /// A timestamp extractor.
    Extractor,
    /// A value joiner (what a join's matched pair becomes).
    Joiner,
}

impl Kind {
    /// Every kind, in the order `sluice plugin new` lists them.
    pub const ALL: [Kind; 4] = [
        Kind::Processor,
        Kind::Aggregator,
        Kind::Extractor,
        Kind::Joiner,
    ];

    /// Its name on the command line (`--kind`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Processor => "processor",
            Kind::Aggregator => "aggregator",
            Kind::Extractor => "extractor",
            Kind::Joiner => "joiner",
        }
    }

    /// The pipeline file and sample input that come with every language's
    /// template of this kind.
    fn common(self) -> [(&'static str, &'static str); 2] {
        match self {
            Kind::Processor => [
                (
                    "pipeline.toml",
                    include_str!("../../../guest-sdk/template/pipeline.toml"),
                ),
                (
                    "sample.jsonl",
                    include_str!("../../../guest-sdk/template/sample.jsonl"),
                ),
            ],
            Kind::Aggregator => [
                (
                    "pipeline.toml",
                    include_str!("../../../guest-sdk/template/aggregator/pipeline.toml"),
                ),
                (
                    "sample.jsonl",
                    include_str!("../../../guest-sdk/template/aggregator/sample.jsonl"),
                ),
            ],
            Kind::Extractor => [
                (
                    "pipeline.toml",
                    include_str!("../../../guest-sdk/template/extractor/pipeline.toml"),
                ),
                (
                    "sample.jsonl",
                    include_str!("../../../guest-sdk/template/extractor/sample.jsonl"),
                ),
            ],
            Kind::Joiner => [
                (
                    "pipeline.toml",
                    include_str!("../../../guest-sdk/template/joiner/pipeline.toml"),
                ),
                (
                    "sample.jsonl",
                    include_str!("../../../guest-sdk/template/joiner/sample.jsonl"),
                ),
            ],
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The files of `language`'s template of `kind` (path, contents with
/// `{{name}}`), or `None` where that language's SDK has no such world.
fn files(language: Language, kind: Kind) -> Option<&'static [(&'static str, &'static str)]> {
    match language {
        Language::Rust => rust::template(kind),
        Language::JavaScript | Language::TypeScript => js::template(language, kind),
        Language::Python => python::template(kind),
        Language::C => c::template(kind),
    }
}

/// Writes a new `language` plugin of `kind` into `dir` (which must not
/// exist, or be empty), named for the directory. A Rust plugin depends on
/// the Rust SDK this binary carries, written out under `target_dir` (the
/// guest target directory), so the crate builds wherever `sluice` runs.
/// Returns the files written.
pub fn new_plugin(
    language: Language,
    kind: Kind,
    dir: &Path,
    target_dir: &Path,
) -> Result<Vec<PathBuf>, BuildError> {
    let Some(files) = files(language, kind) else {
        let offered: Vec<&str> = Kind::ALL
            .into_iter()
            .filter(|k| files(language, *k).is_some())
            .map(Kind::name)
            .collect();
        return Err(BuildError::UnknownLanguage {
            dir: dir.to_owned(),
            message: format!(
                "the {language} SDK has no {kind} world; its templates are: {}",
                offered.join(", ")
            ),
        });
    };
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
    let sdk = if language == Language::Rust {
        let sdk = embedded::rust_sdk(target_dir)?;
        // A TOML basic string: a path with `\` or `"` stays one path.
        sdk.display()
            .to_string()
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
    } else {
        String::new()
    };
    let fill = |text: &str| text.replace("{{name}}", &name).replace("{{sdk}}", &sdk);
    let mut written = Vec::new();
    for (path, text) in files.iter().chain(&kind.common()) {
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
    fn every_template_gets_a_plugin_its_builder_recognizes() {
        let target = tempfile::tempdir().unwrap();
        let mut made = 0;
        for language in Language::ALL {
            for kind in Kind::ALL {
                let root = tempfile::tempdir().unwrap();
                let dir = root.path().join("shout");
                let Ok(files) = new_plugin(language, kind, &dir, target.path()) else {
                    assert!(files_of(language, kind).is_none(), "{language} {kind}");
                    continue;
                };
                made += 1;
                assert!(files.iter().all(|f| f.is_file()), "{language} {kind}");
                assert_eq!(Language::detect(&dir).unwrap(), language);
                let pipeline = std::fs::read_to_string(dir.join("pipeline.toml")).unwrap();
                assert!(
                    pipeline.contains("application.id = \"shout\""),
                    "{pipeline}"
                );
                crate::topology::Topology::load(&dir.join("pipeline.toml"))
                    .unwrap_or_else(|e| panic!("{language} {kind}: {e}"));
            }
        }
        assert!(
            made >= 7,
            "processors in five languages, Rust's aggregator and extractor"
        );
    }

    fn files_of(language: Language, kind: Kind) -> Option<&'static [(&'static str, &'static str)]> {
        files(language, kind)
    }

    #[test]
    fn a_rust_template_names_the_sdk_written_out_not_the_build_machines() {
        let target = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("sums");
        new_plugin(Language::Rust, Kind::Aggregator, &dir, target.path()).unwrap();
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        let doc: toml::Table = toml::from_str(&manifest).unwrap();
        let path = doc["dependencies"]["sluice-sdk"]["path"].as_str().unwrap();
        assert!(Path::new(path).starts_with(target.path()), "{manifest}");
        assert!(Path::new(path).join("Cargo.toml").is_file(), "{path}");
        assert!(!manifest.contains(env!("CARGO_MANIFEST_DIR")), "{manifest}");
    }

    #[test]
    fn a_kind_a_language_lacks_is_refused_with_what_it_has() {
        let target = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let e = new_plugin(
            Language::C,
            Kind::Extractor,
            &root.path().join("times"),
            target.path(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("no extractor world"), "{e}");
        assert!(e.contains("processor"), "{e}");
    }

    #[test]
    fn a_bad_name_or_a_full_directory_is_refused() {
        let target = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let e = new_plugin(
            Language::C,
            Kind::Processor,
            &root.path().join("Not_A_Name"),
            target.path(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("not a plugin name"), "{e}");
        let dir = root.path().join("taken");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("x"), "").unwrap();
        let e = new_plugin(Language::Python, Kind::Processor, &dir, target.path()).unwrap_err();
        assert!(e.to_string().contains("not empty"), "{e}");
    }
}
