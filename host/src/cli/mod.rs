//! The `sluice` command line: its arguments, and one function per
//! subcommand.
//!
//! [`Cli`] and [`Command`] are the top of the argument table; each
//! subcommand's help (the doc comment of its arguments struct), flags and
//! the function that runs it live together in the file named for it:
//! `run.rs`, `dev.rs`, `topology.rs`, `plugin.rs` (`sluice plugin …`),
//! `serve.rs`, `admin.rs` (the subcommands that call a running
//! `sluice serve`) and `tenant.rs` (`sluice tenant …`); what several share
//! is in `shared.rs`. `main.rs` parses and dispatches.

pub(crate) mod admin;
pub(crate) mod dev;
pub(crate) mod plugin;
pub(crate) mod run;
pub(crate) mod serve;
pub(crate) mod shared;
pub(crate) mod tenant;
pub(crate) mod topology;

use clap::{Parser, Subcommand};

/// Stream processing on Kafka with WebAssembly plugins.
///
/// A pipeline file (TOML) names the source topics, the steps — plugins
/// (Wasm components, or plugin crates built on demand) and aggregations by
/// key — and the sink topics. Sluice consumes the sources, calls each
/// plugin with batches of records, keeps aggregates in local state stores
/// (RocksDB, backed by compacted changelog topics), produces the results,
/// and commits offsets only after the results are acknowledged
/// (at-least-once; aggregates are exact even so). With
/// `processing.guarantee = "exactly-once"` each commit is one Kafka
/// transaction. Aggregations may be windowed (tumbling, hopping, sliding or
/// session windows) with a grace period for late records.
///
/// Start with `sluice dev <pipeline> --input <sample.jsonl>`: it needs no
/// Kafka. Logs go to standard error; set RUST_LOG (e.g. RUST_LOG=debug)
/// for more.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, max_term_width = 100)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

// The subcommands, in the order `sluice --help` lists them. Each one's
// help is the doc comment of its arguments struct (a doc comment here
// would be help text too, so this is a plain comment).
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    Run(run::RunArgs),
    Dev(dev::DevArgs),
    Topology(topology::TopologyArgs),
    /// Build and inspect plugins.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    Serve(serve::ServeArgs),
    Deploy(admin::DeployArgs),
    Status(admin::StatusArgs),
    Swap(admin::SwapArgs),
    Pause(admin::PauseArgs),
    Resume(admin::ResumeArgs),
    /// Create or show the tenants of a running `sluice serve`.
    #[command(subcommand)]
    Tenant(tenant::TenantCommand),
    Remove(admin::RemoveArgs),
}
