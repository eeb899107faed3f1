//! `sluice serve`: many pipelines in one process, managed through the
//! HTTP admin API ([`sluice::admin`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use sluice::admin::pipelines::Host;

use super::shared::stop_on_signals;

/// Run many pipelines in one process, managed through an HTTP admin API.
///
/// Pipelines are deployed, paused, resumed, removed and have their
/// plugins swapped through the API (or the `deploy`, `status`, `swap`,
/// `pause`, `resume` and `remove` subcommands, which call it). Each
/// pipeline runs on threads of its own. `GET /metrics` serves Prometheus
/// metrics. On SIGINT/SIGTERM every pipeline finishes its in-flight
/// work and commits, then the process exits.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Kafka bootstrap servers for every pipeline.
    #[arg(long, env = "SLUICE_BROKERS")]
    brokers: String,
    /// Address of the admin API. Keep it on loopback unless a proxy
    /// with TLS stands in front: tokens travel in plain HTTP.
    #[arg(long, env = "SLUICE_ADMIN", default_value = "127.0.0.1:7070")]
    admin: std::net::SocketAddr,
    /// Where tenants' uploaded components and state live
    /// (`<dir>/tenants/<name>/`), and the operator's token by default.
    #[arg(long, env = "SLUICE_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The operator's API token: read from this file, or written there
    /// (random, mode 0600) when it does not exist. Default
    /// `<data dir>/operator.token`; the CLI subcommands on this machine
    /// find it there.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// A librdkafka property for every pipeline's clients, the
    /// operator's (security protocol, SASL, TLS); repeat for more.
    /// Tenants' pipelines may set only tuning properties
    /// (docs/security.md).
    #[arg(long = "kafka", value_name = "KEY=VALUE")]
    kafka: Vec<String>,
    /// A file of librdkafka properties (`key=value` lines, `#`
    /// comments), as `--kafka`; keeps credentials off the command line.
    #[arg(long, value_name = "FILE")]
    kafka_config: Option<PathBuf>,
    /// The largest component an upload may carry, in MiB.
    #[arg(long, default_value_t = 64, value_name = "MIB")]
    max_upload_mb: usize,
    /// Pipeline files to deploy at start (on a host without tenants);
    /// their plugins must be built components (`.wasm`).
    #[arg(long = "deploy", value_name = "PIPELINE")]
    deploy: Vec<PathBuf>,
    /// A tenants file: each tenant's topic prefixes, state directory and
    /// plugin limits (docs/serve.md). Every pipeline deployed then names
    /// its tenant.
    #[arg(long, value_name = "FILE")]
    tenants: Option<PathBuf>,
    /// How long each pipeline waits for the brokers at start, in seconds.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    connect_timeout: u64,
    /// Plugin instances alive at once in the whole host, with the
    /// pooling allocator (memories and tables reserved up front and
    /// reused, so an instance starts in microseconds). 0 allocates
    /// on demand, without a bound. Tenants' `max-instances` quotas
    /// share this pool.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    max_instances: u32,
    /// Park a pipeline after this many seconds without input: it
    /// commits, and lets go of its Kafka clients, threads, plugin
    /// instances and open stores until a topic it reads has a new record
    /// (one client for the whole host watches them, every second), or an
    /// API request names it. Waking costs a restart of the pipeline (a
    /// group join). 0: never park.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    park_after: u64,
}

/// `sluice serve`: the host's settings from the arguments (the operator's
/// Kafka properties from `--kafka-config`, then each `--kafka`), then
/// [`serve_host`].
pub(crate) fn serve(args: ServeArgs) -> Result<()> {
    let ServeArgs {
        brokers,
        admin,
        data_dir,
        token_file,
        kafka,
        kafka_config,
        max_upload_mb,
        deploy,
        tenants,
        connect_timeout,
        max_instances,
        park_after,
    } = args;
    sluice::plugin::configure(sluice::plugin::EngineSettings {
        pooled_instances: (max_instances > 0).then_some(max_instances),
    });
    let data_dir = data_dir.unwrap_or_else(sluice::admin::default_data_dir);
    let mut properties = match &kafka_config {
        Some(file) => sluice::admin::read_properties(file).map_err(anyhow::Error::msg)?,
        None => Vec::new(),
    };
    for kv in &kafka {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--kafka `{kv}` is not KEY=VALUE"))?;
        properties.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    let settings = sluice::admin::pipelines::HostSettings {
        brokers,
        connect_timeout: Duration::from_secs(connect_timeout),
        kafka: properties,
        data_dir: data_dir.clone(),
        park_after: (park_after > 0).then(|| Duration::from_secs(park_after)),
    };
    let token_file = token_file.unwrap_or_else(|| data_dir.join("operator.token"));
    serve_host(
        settings,
        admin,
        &token_file,
        max_upload_mb << 20,
        &deploy,
        tenants.as_deref(),
    )
}

/// How long `sluice serve` waits, once told to stop, for admin requests
/// under way.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Then how long it waits for its pipelines to stop, all together: with
/// the grace, within Kubernetes' default 30 s before a SIGKILL.
const PIPELINES_STOP_DEADLINE: Duration = Duration::from_secs(15);

/// `sluice serve`: the admin API on a small async runtime; pipelines on
/// their own threads.
fn serve_host(
    settings: sluice::admin::pipelines::HostSettings,
    admin: std::net::SocketAddr,
    token_file: &Path,
    max_upload: usize,
    deploy: &[PathBuf],
    tenants: Option<&Path>,
) -> Result<()> {
    let token = sluice::admin::auth::operator_token(token_file).map_err(anyhow::Error::msg)?;
    let mut host = Host::new(sluice::plugin::engine(), settings).with_operator_token(&token);
    if let Some(file) = tenants {
        host = host.with_tenants(sluice::admin::tenants::load(file).map_err(anyhow::Error::msg)?);
    }
    let host = Arc::new(host);
    for file in deploy {
        host.deploy_file(file, None)
            .with_context(|| format!("deploying {}", file.display()))?;
    }
    let stop = stop_on_signals()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .thread_name("admin-api")
        .build()
        .context("starting the admin API's runtime")?;
    let stopped = move || {
        let stop = Arc::clone(&stop);
        async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    tracing::info!(token_file = %token_file.display(), "the operator's token");
    // On a signal the API stops taking requests and lets those under way
    // finish, for at most SHUTDOWN_GRACE: a request that runs on (a deploy
    // still compiling) does not keep the host from stopping.
    let served = runtime.block_on(async {
        tokio::select! {
            served = sluice::admin::api::serve(admin, Arc::clone(&host), max_upload, stopped()) => served,
            () = async {
                stopped().await;
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            } => {
                tracing::warn!("admin requests still under way after {SHUTDOWN_GRACE:?}; stopping without them");
                Ok(())
            }
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    tracing::info!("stopping every pipeline");
    let stuck = host.shutdown_within(Some(PIPELINES_STOP_DEADLINE));
    served.with_context(|| format!("serving the admin API on {admin}"))?;
    if !stuck.is_empty() {
        anyhow::bail!(
            "{} pipeline(s) did not stop within {} s, and were left unfinished: {} (each resumes from its last commit at its next start)",
            stuck.len(),
            PIPELINES_STOP_DEADLINE.as_secs(),
            stuck.join(", ")
        );
    }
    tracing::info!("stopped");
    Ok(())
}
