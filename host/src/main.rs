//! The `sluice` command line.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use sluice::runner::{self, RunOptions, RunSummary};
use sluice::toolchain::{self, BuildOptions};
use sluice::topology::{Topology, render};

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
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a pipeline against a Kafka cluster until SIGINT or SIGTERM.
    ///
    /// The consumer group is the pipeline's `application.id`; several
    /// `sluice run` processes with the same pipeline share the partitions.
    /// On SIGINT/SIGTERM the current batches finish, outputs are flushed and
    /// offsets committed; a second signal exits at once.
    Run {
        /// The pipeline file (see docs/pipeline.md).
        pipeline: PathBuf,
        /// Kafka bootstrap servers, host:port[,host:port…].
        #[arg(long, env = "SLUICE_BROKERS")]
        brokers: String,
        /// How long to wait for the brokers at start, in seconds, before
        /// giving up with an error.
        #[arg(long, default_value_t = 30, value_name = "SECONDS")]
        connect_timeout: u64,
        /// Where local state stores live, instead of the pipeline's
        /// `[state] dir`. Each instance on one machine needs its own. A
        /// lost or corrupt directory is rebuilt from the changelog topics.
        #[arg(long, env = "SLUICE_STATE_DIR", value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Run a pipeline on an embedded Kafka with sample input, and print
    /// every output record.
    ///
    /// Starts librdkafka's mock cluster in-process, creates the topics,
    /// produces the input file (each record acknowledged by the broker),
    /// runs the pipeline until every input record is processed and
    /// committed, then prints a one-line summary. A run that ends short of
    /// the input (stopped, or records unaccounted for) says so and exits
    /// with an error.
    ///
    /// Each input line is either an envelope — a JSON object with a
    /// "value" member and only the members key, value, timestamp (ms),
    /// headers (object) and topic — or a bare value: the line itself, byte
    /// for byte, with a null key. Lines that are not JSON are bare values.
    /// Output lines are `topic[partition]@offset  key=…  ts=…  value`, then
    /// the headers; a null key prints as `(null)` and a tombstone (no
    /// value) as `(tombstone)`, unlike a value that is the JSON `null`.
    /// See docs/dev.md.
    Dev {
        /// The pipeline file.
        pipeline: PathBuf,
        /// Sample input, one record per line (JSON Lines).
        #[arg(long, short)]
        input: PathBuf,
        /// Once the input is drained, close the windows of steps with
        /// `close.idle.after` as if that long had passed without input,
        /// and print their results before stopping.
        #[arg(long)]
        idle_close: bool,
        /// Keep the stores in DIR, as `[state] dir` would, instead of a
        /// temporary directory removed when the run ends. The embedded
        /// broker starts empty every run, so use a fresh DIR each time.
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Show a pipeline's topology: sources, steps, sinks, error policies.
    Topology {
        /// The pipeline file.
        pipeline: PathBuf,
        /// `text` for the terminal; `dot` for Graphviz
        /// (`sluice topology p.toml --format dot | dot -Tsvg > p.svg`).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Build and inspect plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Run many pipelines in one process, managed through an HTTP admin API.
    ///
    /// Pipelines are deployed, paused, resumed, removed and have their
    /// plugins swapped through the API (or the `deploy`, `status`, `swap`,
    /// `pause`, `resume` and `remove` subcommands, which call it). Each
    /// pipeline runs on threads of its own. `GET /metrics` serves Prometheus
    /// metrics. On SIGINT/SIGTERM every pipeline finishes its in-flight
    /// work and commits, then the process exits.
    Serve {
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
    },
    /// Deploy a pipeline into a running `sluice serve`.
    ///
    /// Reads the pipeline file here, builds each plugin crate it names on
    /// this machine (a `.wasm` is taken as it is), uploads the components,
    /// and sends the pipeline's text: the server opens no path of yours
    /// and builds nothing.
    Deploy {
        /// The pipeline file.
        pipeline: PathBuf,
        /// The tenant that owns it (on a host with tenants).
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Show the pipelines of a running `sluice serve` (or one of them).
    Status {
        /// The pipeline's name (its `application.id`); all when left out.
        name: Option<String>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Swap a step's plugin in a running pipeline, without a restart.
    ///
    /// The component is compiled and started first; if it fails, the old
    /// one keeps running and the reason is printed. The swap takes place at
    /// a committed batch boundary: records before it are processed by the
    /// old version, records after it by the new one, none twice. Stores
    /// stay as they are.
    Swap {
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
    },
    /// Pause a running pipeline: in-flight work is committed, consuming
    /// stops, its partitions stay assigned.
    Pause {
        /// The pipeline's name.
        name: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Resume a paused pipeline.
    Resume {
        /// The pipeline's name.
        name: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Create or show the tenants of a running `sluice serve`.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Stop a pipeline (its in-flight work is committed) and remove it.
    Remove {
        /// The pipeline's name.
        name: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Create a tenant: the topic prefixes its pipelines keep to, and the
    /// limits their plugins run under. Limits left out get safe defaults
    /// (docs/serve.md). Once a host has a tenant, every deploy names one.
    /// Needs the operator's token; prints the tenant's first API token
    /// (`token`), shown once: hand it to the tenant (SLUICE_TOKEN).
    Create {
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
    },
    /// Show every tenant (or one): limits, pipelines, live plugin
    /// instances, dropped log lines.
    Show {
        /// The tenant's name; all when left out.
        name: Option<String>,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

/// Where the admin API of a running `sluice serve` is, and the token to
/// call it with.
#[derive(Debug, clap::Args)]
struct AdminArgs {
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
    fn client(&self) -> Result<client::Client> {
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

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Dot,
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
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
    New {
        /// The language.
        #[arg(long, value_enum)]
        lang: Lang,
        /// What the plugin is: which world it exports.
        #[arg(long, value_enum, default_value_t = KindArg::Processor)]
        kind: KindArg,
        /// The new plugin's directory; its last part names the plugin.
        dir: PathBuf,
    },
    /// Run a plugin's own tests, without a broker.
    ///
    /// Rust: `cargo test` on this machine's target; JavaScript and
    /// TypeScript: node's test runner over `test/*.test.{js,ts}`; Python:
    /// pytest; C: the tests compiled natively against the SDK. The SDK
    /// this binary carries is used, so the tests run wherever `sluice`
    /// runs.
    Test {
        /// The plugin's directory.
        dir: PathBuf,
    },
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
    Build {
        /// The plugin's directory.
        dir: PathBuf,
    },
    /// Check a component the way `sluice run` would, and show its digest,
    /// imports and exports.
    Inspect {
        /// The component (.wasm).
        component: PathBuf,
    },
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
}

impl KindArg {
    fn kind(self) -> sluice::toolchain::template::Kind {
        use sluice::toolchain::template::Kind;
        match self {
            KindArg::Processor => Kind::Processor,
            KindArg::Aggregator => Kind::Aggregator,
            KindArg::Extractor => Kind::Extractor,
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

fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,librdkafka=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(cli) {
        eprintln!("error: {e}");
        for cause in e.chain().skip(1) {
            eprintln!("  caused by: {cause}");
        }
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run {
            pipeline,
            brokers,
            connect_timeout,
            state_dir,
        } => {
            let (mut topology, plugins) = load(&pipeline)?;
            if let Some(dir) = state_dir {
                Arc::make_mut(&mut topology).state.dir = dir;
            }
            let stop = stop_on_signals()?;
            let summary = runner::run(
                topology,
                plugins,
                RunOptions {
                    brokers,
                    connect_timeout: Duration::from_secs(connect_timeout),
                    stop,
                    stop_at: None,
                    idle_close_at_end: false,
                    control: None,
                },
            )?;
            eprintln!("{}", summary_line(&summary));
        }
        Command::Dev {
            pipeline,
            input,
            idle_close,
            state_dir,
        } => {
            let (topology, plugins) = load(&pipeline)?;
            let opts = sluice::dev::DevOptions {
                stop: stop_on_signals()?,
                idle_close,
                state_dir,
            };
            match sluice::dev::run(topology, plugins, &input, opts, |p| println!("{p}")) {
                Ok(summary) => println!("{}", summary_line(&summary)),
                Err(e @ sluice::dev::DevError::Incomplete { .. }) => {
                    if let sluice::dev::DevError::Incomplete { summary, .. } = &e {
                        println!("{}", summary_line(summary));
                    }
                    return Err(e.into());
                }
                Err(e) => return Err(e.into()),
            }
        }
        Command::Topology { pipeline, format } => {
            let topology = Topology::load(&pipeline)?;
            match format {
                Format::Text => print!("{}", render::text(&topology)),
                Format::Dot => print!("{}", render::dot(&topology)),
            }
        }
        Command::Plugin(PluginCommand::New { lang, kind, dir }) => {
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
        }
        Command::Plugin(PluginCommand::Test { dir }) => {
            toolchain::test(&dir, &BuildOptions::default())?;
            eprintln!("the tests of {} pass", dir.display());
        }
        Command::Plugin(PluginCommand::Build { dir }) => {
            let component = toolchain::build(&dir, &BuildOptions::default())?;
            let plugin = sluice::plugin::Plugin::load(
                &sluice::plugin::engine(),
                &name_of(&dir),
                &component,
            )?;
            println!("{}", component.display());
            eprintln!("sha256 {}", plugin.digest());
        }
        Command::Plugin(PluginCommand::Inspect { component }) => inspect(&component)?,
        Command::Serve {
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
        } => {
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
            };
            let token_file = token_file.unwrap_or_else(|| data_dir.join("operator.token"));
            serve(
                settings,
                admin,
                &token_file,
                max_upload_mb << 20,
                &deploy,
                tenants.as_deref(),
            )?
        }
        Command::Deploy {
            pipeline,
            tenant,
            admin,
        } => {
            let status = client::deploy(&admin.client()?, &pipeline, tenant.as_deref())?;
            print_json(&status);
        }
        Command::Status { name, admin } => {
            let path = match name {
                Some(n) => format!("/pipelines/{n}"),
                None => "/pipelines".to_owned(),
            };
            print_json(&admin.client()?.call("GET", &path, None)?);
        }
        Command::Swap {
            name,
            step,
            plugin,
            rollback,
            admin,
        } => {
            let report = match plugin {
                Some(p) => client::swap(&admin.client()?, &name, &step, &p)?,
                None => admin.client()?.call(
                    "POST",
                    &format!("/pipelines/{name}/steps/{step}/swap"),
                    Some(serde_json::json!({ "rollback": rollback })),
                )?,
            };
            print_json(&report);
        }
        Command::Pause { name, admin } => {
            let path = format!("/pipelines/{name}/pause");
            print_json(&admin.client()?.call("POST", &path, None)?);
        }
        Command::Resume { name, admin } => {
            let path = format!("/pipelines/{name}/resume");
            print_json(&admin.client()?.call("POST", &path, None)?);
        }
        Command::Tenant(TenantCommand::Create {
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
        }) => {
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
        }
        Command::Tenant(TenantCommand::Show { name, admin }) => {
            let path = match name {
                Some(n) => format!("/tenants/{n}"),
                None => "/tenants".to_owned(),
            };
            print_json(&admin.client()?.call("GET", &path, None)?);
        }
        Command::Remove { name, admin } => {
            let path = format!("/pipelines/{name}");
            print_json(&admin.client()?.call("DELETE", &path, None)?);
        }
    }
    Ok(())
}

fn print_json(v: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).expect("a JSON value prints")
    );
}

/// How long `sluice serve` waits, once told to stop, for admin requests
/// under way.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Then how long it waits for its pipelines to stop, all together: with
/// the grace, within Kubernetes' default 30 s before a SIGKILL.
const PIPELINES_STOP_DEADLINE: Duration = Duration::from_secs(15);

/// `sluice serve`: the admin API on a small async runtime; pipelines on
/// their own threads.
fn serve(
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

use sluice::Plugins;
use sluice::admin::client;
use sluice::admin::pipelines::Host;

fn load(pipeline: &Path) -> Result<(Arc<Topology>, Plugins)> {
    let topology = Topology::load(pipeline)?;
    let engine = sluice::plugin::engine();
    let plugins = sluice::load_plugins(&engine, &topology, &BuildOptions::default())
        .with_context(|| format!("loading the plugins of {}", pipeline.display()))?;
    Ok((Arc::new(topology), plugins))
}

fn stop_on_signals() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while stopping exits at once.
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&stop))?;
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    Ok(stop)
}

fn summary_line(s: &RunSummary) -> String {
    let c = &s.counts;
    let secs = s.elapsed.as_secs_f64();
    let mut line = format!(
        "in {} · out {} · rejected {} · trapped {} · dead letters {}",
        c.records_in, c.records_out, c.rejected, c.trapped, c.dead_letters
    );
    if c.refused > 0 {
        line += &format!(" · refused by sinks {}", c.refused);
    }
    // Windowed pipelines: late records are dropped whether or not they
    // are dead-lettered, so they are counted here either way.
    if c.late_windows > 0 {
        line += &format!(
            " · late {} (partly {}; {} record-windows dropped)",
            c.late, c.partly_late, c.late_windows
        );
    }
    if c.timestamp_dropped > 0 {
        line += &format!(" · no timestamp {}", c.timestamp_dropped);
    }
    line += &format!(
        " · {:.1} s · {:.0} records/s",
        secs,
        c.records_in as f64 / secs.max(1e-9)
    );
    line
}

fn name_of(path: &Path) -> String {
    path.file_stem()
        .or_else(|| path.file_name())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plugin".into())
}

fn inspect(component: &Path) -> Result<()> {
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
