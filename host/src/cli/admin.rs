//! The subcommands that call the admin API of a running `sluice serve`
//! (`deploy`, `status`, `swap`, `pause`, `resume`, `remove`; `tenant` has
//! its own file), where that API is ([`AdminArgs`]), and how they print
//! its answers.

use std::path::PathBuf;

use anyhow::{Context, Result};
use sluice::admin::client;

/// Where the admin API of a running `sluice serve` is, and the token to
/// call it with.
#[derive(Debug, clap::Args)]
pub(crate) struct AdminArgs {
    /// The admin API's address.
    #[arg(long, env = "SLUICE_ADMIN", default_value = "127.0.0.1:7070")]
    admin: String,
    /// A file holding the API token (a tenant's, or the operator's).
    /// Without it or SLUICE_TOKEN, the operator's token file of a
    /// `sluice serve` on this machine (`<data dir>/operator.token`) is
    /// used when readable.
    #[arg(long, env = "SLUICE_TOKEN_FILE", value_name = "FILE")]
    token_file: Option<PathBuf>,
}

impl AdminArgs {
    /// A client of the API, with the token from `--token-file`, else
    /// SLUICE_TOKEN, else the operator's token file on this machine (if
    /// readable), else none.
    pub(super) fn client(&self) -> Result<client::Client> {
        let base = if self.admin.contains("://") {
            self.admin.clone()
        } else {
            format!("http://{}", self.admin)
        };
        let token = match (&self.token_file, std::env::var("SLUICE_TOKEN")) {
            (Some(file), _) => Some(
                std::fs::read_to_string(file)
                    .with_context(|| format!("reading the token file {}", file.display()))?
                    .trim()
                    .to_owned(),
            ),
            (None, Ok(token)) => Some(token.trim().to_owned()),
            (None, Err(_)) => {
                std::fs::read_to_string(sluice::admin::default_data_dir().join("operator.token"))
                    .ok()
                    .map(|t| t.trim().to_owned())
            }
        };
        Ok(client::Client::new(&base, token))
    }
}

/// Deploy a pipeline into a running `sluice serve`.
///
/// Reads the pipeline file here, builds each plugin crate it names on
/// this machine (a `.wasm` is taken as it is), uploads the components,
/// and sends the pipeline's text: the server opens no path of yours
/// and builds nothing.
#[derive(Debug, clap::Args)]
pub(crate) struct DeployArgs {
    /// The pipeline file.
    pipeline: PathBuf,
    /// The tenant that owns it (on a host with tenants).
    #[arg(long)]
    tenant: Option<String>,
    #[command(flatten)]
    admin: AdminArgs,
}

/// `sluice deploy`.
pub(crate) fn deploy(args: DeployArgs) -> Result<()> {
    let DeployArgs {
        pipeline,
        tenant,
        admin,
    } = args;
    let status = client::deploy(&admin.client()?, &pipeline, tenant.as_deref())?;
    print_json(&status);
    Ok(())
}

/// Show the pipelines of a running `sluice serve` (or one of them).
#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    /// The pipeline's name (its `application.id`); all when left out.
    name: Option<String>,
    #[command(flatten)]
    admin: AdminArgs,
}

/// `sluice status`.
pub(crate) fn status(args: StatusArgs) -> Result<()> {
    let StatusArgs { name, admin } = args;
    let path = match name {
        Some(n) => format!("/pipelines/{n}"),
        None => "/pipelines".to_owned(),
    };
    print_json(&admin.client()?.call("GET", &path, None)?);
    Ok(())
}

/// Swap a step's plugin in a running pipeline, without a restart.
///
/// The component is compiled and started first; if it fails, the old
/// one keeps running and the reason is printed. The swap takes place at
/// a committed batch boundary: records before it are processed by the
/// old version, records after it by the new one, none twice. Stores
/// stay as they are.
#[derive(Debug, clap::Args)]
pub(crate) struct SwapArgs {
    /// The pipeline's name.
    name: String,
    /// The step.
    step: String,
    /// The new component (.wasm) or plugin crate directory (built
    /// here, then uploaded).
    #[arg(required_unless_present = "rollback")]
    plugin: Option<PathBuf>,
    /// Go back to the step's previous plugin instead.
    #[arg(long, conflicts_with = "plugin")]
    rollback: bool,
    #[command(flatten)]
    admin: AdminArgs,
}

/// `sluice swap`: uploads the new plugin (built here if a crate), or asks
/// for a rollback.
pub(crate) fn swap(args: SwapArgs) -> Result<()> {
    let SwapArgs {
        name,
        step,
        plugin,
        rollback,
        admin,
    } = args;
    let report = match plugin {
        Some(p) => client::swap(&admin.client()?, &name, &step, &p)?,
        None => admin.client()?.call(
            "POST",
            &format!("/pipelines/{name}/steps/{step}/swap"),
            Some(serde_json::json!({ "rollback": rollback })),
        )?,
    };
    print_json(&report);
    Ok(())
}

/// Pause a running pipeline: in-flight work is committed, consuming
/// stops, its partitions stay assigned.
#[derive(Debug, clap::Args)]
pub(crate) struct PauseArgs {
    /// The pipeline's name.
    name: String,
    #[command(flatten)]
    admin: AdminArgs,
}

/// `sluice pause`.
pub(crate) fn pause(args: PauseArgs) -> Result<()> {
    let PauseArgs { name, admin } = args;
    let path = format!("/pipelines/{name}/pause");
    print_json(&admin.client()?.call("POST", &path, None)?);
    Ok(())
}

/// Resume a paused pipeline.
#[derive(Debug, clap::Args)]
pub(crate) struct ResumeArgs {
    /// The pipeline's name.
    name: String,
    #[command(flatten)]
    admin: AdminArgs,
}

/// `sluice resume`.
pub(crate) fn resume(args: ResumeArgs) -> Result<()> {
    let ResumeArgs { name, admin } = args;
    let path = format!("/pipelines/{name}/resume");
    print_json(&admin.client()?.call("POST", &path, None)?);
    Ok(())
}

/// Stop a pipeline (its in-flight work is committed) and remove it.
#[derive(Debug, clap::Args)]
pub(crate) struct RemoveArgs {
    /// The pipeline's name.
    name: String,
    #[command(flatten)]
    admin: AdminArgs,
}

/// `sluice remove`.
pub(crate) fn remove(args: RemoveArgs) -> Result<()> {
    let RemoveArgs { name, admin } = args;
    let path = format!("/pipelines/{name}");
    print_json(&admin.client()?.call("DELETE", &path, None)?);
    Ok(())
}

/// Prints an answer of the admin API, pretty.
pub(super) fn print_json(v: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).expect("a JSON value prints")
    );
}
