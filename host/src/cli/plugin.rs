//! `sluice plugin new|test|build|inspect`: write, test and build plugins
//! (through [`sluice::toolchain`]), and check a built component.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Subcommand, ValueEnum};
use sluice::toolchain::{self, BuildOptions};

// The subcommands of `sluice plugin`; each one's help is the doc comment
// of its arguments struct.
#[derive(Debug, Subcommand)]
pub(crate) enum PluginCommand {
    New(NewArgs),
    Test(TestArgs),
    Build(BuildArgs),
    Inspect(InspectArgs),
}

/// Write a new plugin to start from, in any language.
///
/// A processor upper-cases record values and rejects records without
/// one; an aggregator counts each key's records and totals their
/// `amount` (with `merge`, for session windows); an extractor (Rust)
/// reads event times from a JSON field. A pipeline file, sample input
/// and tests come with it: `sluice dev pipeline.toml --input
/// sample.jsonl` in the new directory runs it, `sluice plugin test
/// <dir>` runs its tests. A Rust plugin depends on the SDK this binary
/// carries, written out under the guest target directory
/// (SLUICE_GUEST_TARGET_DIR, default ~/.cache/sluice/guest-target).
#[derive(Debug, clap::Args)]
pub(crate) struct NewArgs {
    /// The language.
    #[arg(long, value_enum)]
    lang: Lang,
    /// What the plugin is: which world it exports.
    #[arg(long, value_enum, default_value_t = KindArg::Processor)]
    kind: KindArg,
    /// The new plugin's directory; its last part names the plugin.
    dir: PathBuf,
}

/// Run a plugin's own tests, without a broker.
///
/// Rust: `cargo test` on this machine's target; JavaScript and
/// TypeScript: node's test runner over `test/*.test.{js,ts}`; Python:
/// pytest; C: the tests compiled natively against the SDK. The SDK
/// this binary carries is used, so the tests run wherever `sluice`
/// runs.
#[derive(Debug, clap::Args)]
pub(crate) struct TestArgs {
    /// The plugin's directory.
    dir: PathBuf,
}

/// Build a plugin's directory into a WebAssembly component.
///
/// The language is read off the files: Cargo.toml (Rust), package.json
/// or src/index.{js,ts} (JavaScript, TypeScript), app.py (Python),
/// *.c (C). Rust uses rustup's wasm32-unknown-unknown target where it is
/// installed, else Debian's rustc-web with -Zbuild-std; JavaScript
/// componentize-js, Python componentize-py, C clang with wasi-libc
/// (./scripts/setup.sh installs them all; a missing one is named with
/// its install command). No WASI: the component imports only what the
/// sandbox gives. Prints the component's path.
#[derive(Debug, clap::Args)]
pub(crate) struct BuildArgs {
    /// The plugin's directory.
    dir: PathBuf,
}

/// Check a component the way `sluice run` would, and show its digest,
/// imports and exports.
#[derive(Debug, clap::Args)]
pub(crate) struct InspectArgs {
    /// The component (.wasm).
    component: PathBuf,
}

/// A language of `sluice plugin new`.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Lang {
    Rust,
    Js,
    Ts,
    Python,
    C,
}

/// A kind of `sluice plugin new`.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum KindArg {
    /// Map, filter, flat-map: one record in, zero or more out.
    Processor,
    /// A keyed aggregation: initial aggregate, add, merge.
    Aggregator,
    /// A timestamp extractor for `timestamp = "plugin"` sources.
    Extractor,
    /// A value joiner: what a join's matched pair becomes (Rust).
    Joiner,
}

impl KindArg {
    fn kind(self) -> sluice::toolchain::template::Kind {
        use sluice::toolchain::template::Kind;
        match self {
            KindArg::Processor => Kind::Processor,
            KindArg::Aggregator => Kind::Aggregator,
            KindArg::Extractor => Kind::Extractor,
            KindArg::Joiner => Kind::Joiner,
        }
    }
}

impl Lang {
    fn language(self) -> toolchain::Language {
        match self {
            Lang::Rust => toolchain::Language::Rust,
            Lang::Js => toolchain::Language::JavaScript,
            Lang::Ts => toolchain::Language::TypeScript,
            Lang::Python => toolchain::Language::Python,
            Lang::C => toolchain::Language::C,
        }
    }
}

/// `sluice plugin new`: prints the files written.
pub(crate) fn new(args: NewArgs) -> Result<()> {
    let NewArgs { lang, kind, dir } = args;
    let language = lang.language();
    let kind = kind.kind();
    let files = sluice::toolchain::template::new_plugin(
        language,
        kind,
        &dir,
        &toolchain::guest_target_dir(),
    )?;
    for file in files {
        println!("{}", file.display());
    }
    eprintln!(
        "a {language} {kind} in {0}; test it with `sluice plugin test {0}`, build it with \
         `sluice plugin build {0}`, try it with `sluice dev pipeline.toml --input \
         sample.jsonl` there",
        dir.display()
    );
    Ok(())
}

/// `sluice plugin test`.
pub(crate) fn test(args: TestArgs) -> Result<()> {
    let TestArgs { dir } = args;
    toolchain::test(&dir, &BuildOptions::default())?;
    eprintln!("the tests of {} pass", dir.display());
    Ok(())
}

/// `sluice plugin build`: prints the component's path, and its digest on
/// standard error.
pub(crate) fn build(args: BuildArgs) -> Result<()> {
    let BuildArgs { dir } = args;
    let component = toolchain::build(&dir, &BuildOptions::default())?;
    let plugin =
        sluice::plugin::Plugin::load(&sluice::plugin::engine(), &name_of(&dir), &component)?;
    println!("{}", component.display());
    eprintln!("sha256 {}", plugin.digest());
    Ok(())
}

/// A plugin's name, from its path: the file's stem, or the directory's
/// name.
fn name_of(path: &Path) -> String {
    path.file_stem()
        .or_else(|| path.file_name())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plugin".into())
}

/// `sluice plugin inspect`.
pub(crate) fn inspect(args: InspectArgs) -> Result<()> {
    let component = args.component.as_path();
    let engine = sluice::plugin::engine();
    let bytes =
        std::fs::read(component).with_context(|| format!("reading {}", component.display()))?;
    match sluice::plugin::Plugin::from_bytes(&engine, &name_of(component), component, &bytes) {
        Ok(p) => {
            println!(
                "{}: ok, a sluice:plugin@0.1.0 record processor",
                component.display()
            );
            println!("sha256:  {}", p.digest());
            println!("size:    {} bytes", bytes.len());
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
