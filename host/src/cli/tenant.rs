//! `sluice tenant create|show`: the tenants of a running `sluice serve`,
//! through its admin API.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;

use super::admin::{AdminArgs, print_json};

// The subcommands of `sluice tenant`; each one's help is the doc comment
// of its arguments struct.
#[derive(Debug, Subcommand)]
pub(crate) enum TenantCommand {
    Create(CreateArgs),
    Show(ShowArgs),
}

/// Create a tenant: the topic prefixes its pipelines keep to, and the
/// limits their plugins run under. Limits left out get safe defaults
/// (docs/serve.md). Once a host has a tenant, every deploy names one.
/// Needs the operator's token; prints the tenant's first API token
/// (`token`), shown once: hand it to the tenant (SLUICE_TOKEN).
#[derive(Debug, clap::Args)]
pub(crate) struct CreateArgs {
    /// The tenant's name.
    name: String,
    /// A prefix of every topic (and `application.id`) its pipelines
    /// use; repeat for more.
    #[arg(long = "topics", value_name = "PREFIX", required = true)]
    topics: Vec<String>,
    /// Root of its pipelines' state stores.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Where its pipelines' dead letters go, unless one names its own.
    #[arg(long)]
    dlq_topic: Option<String>,
    /// Memory cap of one plugin instance, in MiB (default 64).
    #[arg(long)]
    plugin_memory_mb: Option<usize>,
    /// Deadline of one plugin call, in milliseconds (default 1000).
    #[arg(long)]
    plugin_deadline_ms: Option<u64>,
    /// Bytes one plugin call may return, in KiB (default 4096).
    #[arg(long)]
    plugin_output_kb: Option<usize>,
    /// Log lines per second, all its plugins together (default 100).
    #[arg(long)]
    log_lines_per_second: Option<u32>,
    /// Plugin instances alive at once (default 64).
    #[arg(long)]
    max_instances: Option<usize>,
    /// Traps within a minute before a pipeline is quarantined
    /// (default 10).
    #[arg(long)]
    quarantine_after_traps: Option<u64>,
    /// Pipelines deployed at once (default 16).
    #[arg(long)]
    max_pipelines: Option<usize>,
    /// MiB its uploaded components may take together (default 512).
    #[arg(long)]
    components_mb: Option<u64>,
    #[command(flatten)]
    admin: AdminArgs,
}

/// `sluice tenant create`.
pub(crate) fn create(args: CreateArgs) -> Result<()> {
    let CreateArgs {
        name,
        topics,
        state_dir,
        dlq_topic,
        plugin_memory_mb,
        plugin_deadline_ms,
        plugin_output_kb,
        log_lines_per_second,
        max_instances,
        quarantine_after_traps,
        max_pipelines,
        components_mb,
        admin,
    } = args;
    let mut body = serde_json::json!({
        "topics": topics,
        "state-dir": state_dir,
        "dlq-topic": dlq_topic,
        "plugin-memory-mb": plugin_memory_mb,
        "plugin-deadline-ms": plugin_deadline_ms,
        "plugin-output-kb": plugin_output_kb,
        "log-lines-per-second": log_lines_per_second,
        "max-instances": max_instances,
        "quarantine-after-traps": quarantine_after_traps,
        "max-pipelines": max_pipelines,
        "components-mb": components_mb,
    });
    // Left out, a limit takes the server's default.
    body.as_object_mut()
        .expect("an object")
        .retain(|_, v| !v.is_null());
    let path = format!("/tenants/{name}");
    print_json(&admin.client()?.call("POST", &path, Some(body))?);
    Ok(())
}

/// Show every tenant (or one): limits, pipelines, live plugin
/// instances, dropped log lines.
#[derive(Debug, clap::Args)]
pub(crate) struct ShowArgs {
    /// The tenant's name; all when left out.
    name: Option<String>,
    #[command(flatten)]
    admin: AdminArgs,
}

/// `sluice tenant show`.
pub(crate) fn show(args: ShowArgs) -> Result<()> {
    let ShowArgs { name, admin } = args;
    let path = match name {
        Some(n) => format!("/tenants/{n}"),
        None => "/tenants".to_owned(),
    };
    print_json(&admin.client()?.call("GET", &path, None)?);
    Ok(())
}
