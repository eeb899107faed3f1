//! The pipelines one host runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::auth::{self, Caller, TokenDigest};
use super::components::{ComponentStore, Stored};
use super::tenants::Tenant;
use crate::error::RunError;
use crate::kafka::client_config::ClientSettings;
use crate::plugin::TenantBudget;
use crate::runner::control::{self, Control};
use crate::runner::park::{ParkPolicy, Watcher};
use crate::runner::{self, RunOptions, RunSummary};
use crate::task::Counts;
use crate::toolchain::BuildOptions;
use crate::topology::pipeline_file::PipelineFile;
use crate::topology::{PluginRef, Topology};

/// How long an API call waits for a running pipeline to act on a request
/// (a swap waits for the batches in flight and a commit).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Why an admin request failed; each maps to an HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No such pipeline or tenant, or not the caller's (404); the
    /// message says which.
    #[error("{0}")]
    NotFound(String),
    /// It conflicts with what runs (409).
    #[error("{0}")]
    Conflict(String),
    /// The request is wrong: a bad pipeline file, a plugin that does not
    /// fit (400). Nothing changed.
    #[error("{0}")]
    Invalid(String),
    /// The pipeline could not do it (500).
    #[error("{0}")]
    Failed(String),
    /// No credential, or one the host does not know (401). Says nothing
    /// of what exists.
    #[error("a valid bearer token is required (`Authorization: Bearer <token>`)")]
    Unauthorized,
    /// A known caller asked for what only the operator may do (403).
    #[error("{0}")]
    Forbidden(String),
    /// Over a quota (429): try again once something is removed.
    #[error("{0}")]
    TooMany(String),
}

/// A pipeline's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Consuming.
    Running,
    /// Assigned but not consuming.
    Paused,
    /// Paused for repeated traps (`last_error` says how many); resume it
    /// by hand.
    Quarantined,
    /// Stopped by itself without an error (a pipeline does not, unless
    /// told to).
    Stopped,
    /// Stopped with an error (`last_error`).
    Failed,
}

/// A pipeline's plugin for one step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepStatus {
    /// The step.
    pub step: String,
    /// The component's digest (SHA-256), when the step has a plugin.
    pub digest: Option<String>,
    /// Components swapped in, oldest first (the first is the deployed one).
    pub versions: usize,
}

/// A pipeline's status, as the API reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    /// `application.id`: the pipeline's name.
    pub name: String,
    /// The tenant that owns it, if the host has tenants.
    pub tenant: Option<String>,
    /// What the client called the pipeline file (a label; the host
    /// never opens it).
    pub source: Option<String>,
    /// Running, paused, stopped or failed.
    pub state: State,
    /// Source records processed.
    pub records_in: u64,
    /// Records written to sinks.
    pub records_out: u64,
    /// Records plugins rejected.
    pub rejected: u64,
    /// Records plugins trapped on.
    pub trapped: u64,
    /// Records dead-lettered.
    pub dead_letters: u64,
    /// Outputs a sink topic would refuse (the `refused` policy).
    pub refused: u64,
    /// Records too late for every window.
    pub late: u64,
    /// Records too late for some of their windows, added to the others.
    pub partly_late: u64,
    /// (record, window) pairs dropped because the window had closed.
    pub late_windows: u64,
    /// Records without a key that reached a repartition topic.
    pub unkeyed: u64,
    /// Records read back from the pipeline's repartition topics.
    pub repartitioned: u64,
    /// Records a join dropped for want of a key or a value.
    pub join_skipped: u64,
    /// Records on its partitions not yet processed and committed (measured
    /// every two seconds; `null` before its first assignment).
    pub lag: Option<u64>,
    /// Running, but parked: no input for a while, so it holds no Kafka
    /// client or thread until a topic it reads moves (`--park-after`).
    #[serde(default)]
    pub parked: bool,
    /// Why it failed.
    pub last_error: Option<String>,
    /// Each step's plugin.
    pub steps: Vec<StepStatus>,
    /// Swaps done.
    pub swaps: u64,
}

/// What a swap did, as the API reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SwapReport {
    /// The step.
    pub step: String,
    /// The digest replaced.
    pub from: String,
    /// The digest now running.
    pub to: String,
    /// Per source partition, the first offset the new version processes.
    pub boundary: Vec<(String, i32, i64)>,
    /// How long the pipeline stood still, in milliseconds.
    pub pause_ms: f64,
}

struct Deployed {
    source: Option<String>,
    tenant: Option<String>,
    topology: Arc<Topology>,
    control: Control,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<RunSummary, RunError>>>,
    /// How the run ended, once it has.
    ended: Option<Result<Counts, String>>,
    /// Per step: the components it has run, the current one last.
    history: BTreeMap<String, Vec<(PathBuf, String)>>,
    swaps: u64,
}

impl Deployed {
    /// Collects the run's end if its thread has finished.
    fn reap(&mut self) {
        if self.thread.as_ref().is_some_and(JoinHandle::is_finished) {
            self.join();
        }
    }

    /// Waits for the run's thread to end, and keeps how it ended.
    fn join(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.ended = Some(match thread.join() {
                Ok(Ok(summary)) => Ok(summary.counts),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("the pipeline's thread panicked".into()),
            });
        }
    }

    fn status(&mut self) -> Status {
        self.reap();
        let live = self.control.live();
        let (state, counts, last_error) = match &self.ended {
            None if live.quarantined.is_some() => {
                (State::Quarantined, live.counts, live.quarantined.clone())
            }
            None if live.paused => (State::Paused, live.counts, None),
            None => (State::Running, live.counts, None),
            Some(Ok(c)) => (State::Stopped, *c, None),
            Some(Err(e)) => (State::Failed, live.counts, Some(e.clone())),
        };
        Status {
            name: self.topology.application_id.clone(),
            tenant: self.tenant.clone(),
            source: self.source.clone(),
            state,
            records_in: counts.records_in,
            records_out: counts.records_out,
            rejected: counts.rejected,
            trapped: counts.trapped,
            dead_letters: counts.dead_letters,
            refused: counts.refused,
            late: counts.late,
            partly_late: counts.partly_late,
            late_windows: counts.late_windows,
            unkeyed: counts.unkeyed,
            repartitioned: counts.repartitioned,
            join_skipped: counts.join_skipped,
            lag: live.lag.filter(|_| self.ended.is_none()),
            parked: live.parked && self.ended.is_none(),
            last_error,
            steps: self
                .topology
                .steps
                .iter()
                .map(|s| {
                    let versions = self.history.get(&s.name);
                    StepStatus {
                        step: s.name.clone(),
                        digest: versions.and_then(|v| v.last()).map(|(_, d)| d.clone()),
                        versions: versions.map_or(0, Vec::len),
                    }
                })
                .collect(),
            swaps: self.swaps,
        }
    }

    fn running(&mut self) -> Result<(), AdminError> {
        self.reap();
        match &self.ended {
            None => Ok(()),
            Some(_) => Err(AdminError::Conflict(format!(
                "pipeline `{}` is not running",
                self.topology.application_id
            ))),
        }
    }
}

/// A tenant, as the API reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TenantStatus {
    /// Its name.
    pub name: String,
    /// Its settings and limits (as in a tenants file).
    pub settings: Tenant,
    /// Its pipelines deployed now.
    pub pipelines: Vec<String>,
    /// Its plugin instances alive now.
    pub live_instances: usize,
    /// Its plugins' log lines dropped over `log-lines-per-second`.
    pub dropped_log_lines: u64,
}

struct TenantEntry {
    tenant: Tenant,
    budget: Arc<TenantBudget>,
    /// Digests of its API tokens: the tenants file's and those issued.
    tokens: Vec<TokenDigest>,
    components: ComponentStore,
}

impl TenantEntry {
    fn new(name: &str, tenant: Tenant, data_dir: &Path) -> TenantEntry {
        let budget = tenant.budget(name);
        let tokens = tenant
            .token_sha256
            .as_deref()
            .and_then(|d| auth::parse_digest(d).ok())
            .into_iter()
            .collect();
        let components = ComponentStore::new(
            data_dir.join("tenants").join(name).join("components"),
            tenant.components_mb.saturating_mul(1 << 20),
        );
        TenantEntry {
            tenant,
            budget,
            tokens,
            components,
        }
    }
}

/// How a host runs its pipelines: the operator's settings, from `sluice
/// serve`'s command line.
#[derive(Debug, Clone)]
pub struct HostSettings {
    /// Kafka bootstrap servers of every pipeline.
    pub brokers: String,
    /// How long a pipeline waits for the brokers at start.
    pub connect_timeout: Duration,
    /// Where tenants' uploaded components and (unless a tenant's
    /// `state-dir` says otherwise) state live: `<data_dir>/tenants/<name>/`;
    /// the operator's components in `<data_dir>/operator/`.
    pub data_dir: PathBuf,
    /// The operator's librdkafka properties (security protocol,
    /// credentials), applied to every pipeline's clients after its own.
    pub kafka: Vec<(String, String)>,
    /// A pipeline without input for this long parks: it lets go of its
    /// Kafka clients and threads until a topic it reads moves
    /// (`runner::park`). `None`: never.
    pub park_after: Option<Duration>,
}

impl HostSettings {
    /// Settings for `brokers`, keeping data in `data_dir`, with no extra
    /// Kafka properties.
    pub fn new(brokers: &str, data_dir: &Path) -> HostSettings {
        HostSettings {
            brokers: brokers.to_owned(),
            connect_timeout: Duration::from_secs(30),
            data_dir: data_dir.to_owned(),
            kafka: Vec::new(),
            park_after: None,
        }
    }
}

/// A deploy: the pipeline file's text, and for each plugin it names (as
/// written in the file) the digest of a component the owner uploaded.
/// Nothing in it is a path the host opens.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    /// The pipeline file's text.
    pub pipeline: String,
    /// Plugin reference (as written in the pipeline) → component digest.
    #[serde(default)]
    pub plugins: BTreeMap<String, String>,
    /// The owner, for the operator deploying on a tenant's behalf (a
    /// tenant's own token implies it).
    #[serde(default)]
    pub tenant: Option<String>,
    /// What the client called the file, shown in status; never opened.
    #[serde(default)]
    pub source: Option<String>,
}

/// The pipelines of one host.
pub struct Host {
    engine: wasmtime::Engine,
    tenants: Mutex<BTreeMap<String, TenantEntry>>,
    settings: HostSettings,
    operator_token: Option<TokenDigest>,
    operator_components: ComponentStore,
    pipelines: Mutex<BTreeMap<String, Deployed>>,
    /// Deploys under way: name → owner. Taken under the `pipelines` lock.
    pending: Mutex<BTreeMap<String, Option<String>>>,
    /// Set by [`Host::shutdown_within`] (under the `pipelines` lock): a deploy
    /// that finishes after it starts nothing.
    stopping: AtomicBool,
    /// Wakes parked pipelines: started at the first deploy that may park.
    watcher: Mutex<Option<Arc<Watcher>>>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("brokers", &self.settings.brokers)
            .finish_non_exhaustive()
    }
}

/// A swap's target.
#[derive(Debug, Clone)]
pub enum SwapTo {
    /// A component the pipeline's owner uploaded, by digest.
    Component(String),
    /// The step's previous component.
    Rollback,
}

/// How often the watcher reads the parked pipelines' topics: the longest
/// a record waits before its parked pipeline starts to wake.
const PARK_CHECK_EVERY: Duration = Duration::from_secs(1);

/// Bytes the operator's own uploads may take.
const OPERATOR_COMPONENTS: u64 = 16 << 30;

/// The name a pipeline's text is parsed under: messages say
/// `pipeline.toml`, and plugin references stay as written.
const PIPELINE_LABEL: &str = "pipeline.toml";

/// Removes a deploy's reservation when the deploy ends, however it ends.
struct Reservation<'a> {
    host: &'a Host,
    name: String,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.host
            .pending
            .lock()
            .expect("not poisoned")
            .remove(&self.name);
    }
}

impl Host {
    /// A host running pipelines with `settings`.
    pub fn new(engine: wasmtime::Engine, settings: HostSettings) -> Host {
        let operator_components = ComponentStore::new(
            settings.data_dir.join("operator").join("components"),
            OPERATOR_COMPONENTS,
        );
        Host {
            engine,
            tenants: Mutex::new(BTreeMap::new()),
            settings,
            operator_token: None,
            operator_components,
            pipelines: Mutex::new(BTreeMap::new()),
            pending: Mutex::new(BTreeMap::new()),
            stopping: AtomicBool::new(false),
            watcher: Mutex::new(None),
        }
    }

    /// The operator's API token.
    pub fn with_operator_token(mut self, token: &str) -> Host {
        self.operator_token = Some(auth::digest(token));
        self
    }

    /// With tenants (`sluice serve --tenants`): every pipeline then names
    /// the tenant that owns it.
    pub fn with_tenants(self, tenants: BTreeMap<String, Tenant>) -> Host {
        let data_dir = self.settings.data_dir.clone();
        *self.tenants.lock().expect("not poisoned") = tenants
            .into_iter()
            .map(|(name, tenant)| {
                let entry = TenantEntry::new(&name, tenant, &data_dir);
                (name, entry)
            })
            .collect();
        self
    }

    /// Who holds `token` (from `Authorization: Bearer`): the operator, a
    /// tenant, or nobody (401). Every known digest is compared, in
    /// constant time each.
    pub fn authenticate(&self, token: Option<&str>) -> Result<Caller, AdminError> {
        let token = token.ok_or(AdminError::Unauthorized)?;
        let presented = auth::digest(token);
        let mut found = None;
        if self
            .operator_token
            .is_some_and(|t| auth::same(&t, &presented))
        {
            found = Some(Caller::Operator);
        }
        for (name, entry) in self.tenants.lock().expect("not poisoned").iter() {
            for t in &entry.tokens {
                if auth::same(t, &presented) && found.is_none() {
                    found = Some(Caller::Tenant(name.clone()));
                }
            }
        }
        found.ok_or(AdminError::Unauthorized)
    }

    fn operator_only(caller: &Caller, what: &str) -> Result<(), AdminError> {
        match caller {
            Caller::Operator => Ok(()),
            Caller::Tenant(_) => Err(AdminError::Forbidden(format!(
                "{what} needs the operator's token"
            ))),
        }
    }

    /// Creates a tenant (operator only). Once a host has a tenant, every
    /// pipeline deployed names its owner. A tenant's settings are fixed
    /// once created. Answers with a new API token for it, shown once.
    pub fn create_tenant(
        &self,
        caller: &Caller,
        name: &str,
        tenant: Tenant,
    ) -> Result<(TenantStatus, String), AdminError> {
        Self::operator_only(caller, "creating a tenant")?;
        tenant.check(name).map_err(AdminError::Invalid)?;
        let untenanted: Vec<String> = self
            .lock()
            .values()
            .filter(|d| d.tenant.is_none())
            .map(|d| d.topology.application_id.clone())
            .collect();
        if !untenanted.is_empty() {
            return Err(AdminError::Conflict(format!(
                "pipelines without a tenant run here ({}); remove them before creating tenants",
                untenanted.join(", ")
            )));
        }
        let token =
            auth::new_token().map_err(|e| AdminError::Failed(format!("making a token: {e}")))?;
        {
            let mut tenants = self.tenants.lock().expect("not poisoned");
            if tenants.contains_key(name) {
                return Err(AdminError::Conflict(format!(
                    "tenant `{name}` exists already; its settings are fixed once created"
                )));
            }
            super::tenants::check_disjoint(
                name,
                &tenant,
                tenants.iter().map(|(n, e)| (n, &e.tenant)),
            )
            .map_err(AdminError::Invalid)?;
            let mut entry = TenantEntry::new(name, tenant, &self.settings.data_dir);
            entry.tokens.push(auth::digest(&token));
            tenants.insert(name.to_owned(), entry);
        }
        tracing::info!(tenant = %name, "tenant created");
        Ok((self.tenant(caller, name)?, token))
    }

    /// Issues a new API token for a tenant (operator only); its earlier
    /// tokens stay valid. Issued tokens live as long as the host.
    pub fn issue_token(&self, caller: &Caller, name: &str) -> Result<String, AdminError> {
        Self::operator_only(caller, "issuing a tenant's token")?;
        let token =
            auth::new_token().map_err(|e| AdminError::Failed(format!("making a token: {e}")))?;
        let mut tenants = self.tenants.lock().expect("not poisoned");
        let entry = tenants
            .get_mut(name)
            .ok_or_else(|| AdminError::NotFound(format!("no tenant `{name}`")))?;
        entry.tokens.push(auth::digest(&token));
        tracing::info!(tenant = %name, "tenant token issued");
        Ok(token)
    }

    /// One tenant: the caller's own, or any for the operator.
    pub fn tenant(&self, caller: &Caller, name: &str) -> Result<TenantStatus, AdminError> {
        self.tenants(caller)
            .into_iter()
            .find(|t| t.name == name)
            .ok_or_else(|| AdminError::NotFound(format!("no tenant `{name}`")))
    }

    /// Every tenant the caller may see: all for the operator, its own for
    /// a tenant.
    pub fn tenants(&self, caller: &Caller) -> Vec<TenantStatus> {
        let owners: Vec<(String, String)> = self
            .lock()
            .values()
            .filter_map(|d| Some((d.tenant.clone()?, d.topology.application_id.clone())))
            .collect();
        self.tenants
            .lock()
            .expect("not poisoned")
            .iter()
            .filter(|(name, _)| caller.owns(Some(name)))
            .map(|(name, e)| TenantStatus {
                name: name.clone(),
                settings: e.tenant.clone(),
                pipelines: owners
                    .iter()
                    .filter(|(t, _)| t == name)
                    .map(|(_, p)| p.clone())
                    .collect(),
                live_instances: e.budget.live_instances(),
                dropped_log_lines: e.budget.dropped_log_lines(),
            })
            .collect()
    }

    /// The owner a caller acts for: a tenant its own (naming another is
    /// refused), the operator the tenant it names (required once the host
    /// has tenants) or itself.
    fn owner(&self, caller: &Caller, named: Option<&str>) -> Result<Option<String>, AdminError> {
        let tenants = self.tenants.lock().expect("not poisoned");
        match (caller, named) {
            (Caller::Tenant(t), Some(n)) if n != t => Err(AdminError::Forbidden(format!(
                "this token is tenant `{t}`'s; it cannot act for another tenant"
            ))),
            (Caller::Tenant(t), _) => Ok(Some(t.clone())),
            (Caller::Operator, Some(n)) => {
                if tenants.contains_key(n) {
                    Ok(Some(n.to_owned()))
                } else {
                    Err(AdminError::Invalid(format!(
                        "no tenant `{}` (tenants: {})",
                        n.chars().take(64).collect::<String>(),
                        tenants.keys().cloned().collect::<Vec<_>>().join(", ")
                    )))
                }
            }
            (Caller::Operator, None) if tenants.is_empty() => Ok(None),
            (Caller::Operator, None) => Err(AdminError::Invalid(
                "this host has tenants: name the pipeline's (`tenant`, `--tenant`)".into(),
            )),
        }
    }

    fn components(&self, owner: Option<&str>) -> Result<ComponentStore, AdminError> {
        match owner {
            None => Ok(self.operator_components.clone()),
            Some(t) => self
                .tenants
                .lock()
                .expect("not poisoned")
                .get(t)
                .map(|e| e.components.clone())
                .ok_or_else(|| AdminError::NotFound(format!("no tenant `{t}`"))),
        }
    }

    /// Stores an uploaded component in its owner's area: the caller's
    /// own, or for the operator the tenant it names (or its own).
    pub fn upload(
        &self,
        caller: &Caller,
        tenant: Option<&str>,
        bytes: &[u8],
    ) -> Result<Stored, AdminError> {
        let owner = match (caller, tenant) {
            (Caller::Operator, None) => None,
            _ => self.owner(caller, tenant)?,
        };
        self.components(owner.as_deref())?
            .put(bytes)
            .map_err(AdminError::Invalid)
    }

    /// Deploys a pipeline file from the host's own disk, as the operator
    /// (`sluice serve --deploy`, benchmarks): its plugins must be built
    /// components (`.wasm`), which are stored as uploads are. Plugin
    /// crates are not built here.
    pub fn deploy_file(&self, file: &Path, tenant: Option<&str>) -> Result<Status, AdminError> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| AdminError::Invalid(format!("cannot read {}: {e}", file.display())))?;
        let base = file.parent().unwrap_or(Path::new("."));
        let mut plugins = BTreeMap::new();
        for written in plugin_references(&text)? {
            let path = base.join(&written);
            if path.extension().is_none_or(|e| e != "wasm") {
                return Err(AdminError::Invalid(format!(
                    "plugin `{written}` is not a component: `sluice serve` does not build plugins (build scripts run natively); build it with `sluice plugin build`, or deploy with `sluice deploy`, which builds on your machine and uploads"
                )));
            }
            let bytes = std::fs::read(&path)
                .map_err(|e| AdminError::Invalid(format!("cannot read {}: {e}", path.display())))?;
            let stored = self.upload(&Caller::Operator, tenant, &bytes)?;
            plugins.insert(written, stored.digest);
        }
        self.deploy(
            &Caller::Operator,
            DeployRequest {
                pipeline: text,
                plugins,
                tenant: tenant.map(str::to_owned),
                source: Some(file.display().to_string()),
            },
        )
    }

    /// Validates a pipeline and its uploaded plugins, and starts it. Its
    /// name is its `application.id`, which must not be running already.
    /// A tenant's pipeline keeps to the tenant's topic prefixes, Kafka
    /// properties and state directory, and gets its limits.
    pub fn deploy(&self, caller: &Caller, request: DeployRequest) -> Result<Status, AdminError> {
        let owner = self.owner(caller, request.tenant.as_deref())?;
        let label = Path::new(PIPELINE_LABEL);
        let invalid = |e: crate::error::PipelineError| AdminError::Invalid(e.to_string());
        let file = PipelineFile::parse(label, &request.pipeline).map_err(invalid)?;
        if owner.is_some() && file.state.dir.is_some() {
            return Err(AdminError::Invalid(
                "[state] `dir` is refused under `sluice serve`: a tenant's stores live in its own directory, set by the operator".into(),
            ));
        }
        let mut topology = Topology::from_file(label, file).map_err(invalid)?;
        if let Some(t) = &owner {
            let tenants = self.tenants.lock().expect("not poisoned");
            let entry = tenants
                .get(t)
                .ok_or_else(|| AdminError::NotFound(format!("no tenant `{t}`")))?;
            let root = entry.tenant.state_root(t, &self.settings.data_dir);
            entry
                .tenant
                .admit(&entry.budget, &mut topology, &root)
                .map_err(AdminError::Invalid)?;
        }
        topology.kafka.extend(self.settings.kafka.iter().cloned());
        let store = self.components(owner.as_deref())?;
        for (what, plugin) in topology.plugin_refs_mut() {
            let written = plugin.path().to_string_lossy().into_owned();
            let digest = request.plugins.get(&written).ok_or_else(|| {
                AdminError::Invalid(format!(
                    "{what}'s plugin `{written}` was not uploaded: upload its component (`PUT /components`) and name its digest under `plugins` (`sluice deploy` does both)"
                ))
            })?;
            let path = store
                .get(digest)
                .map_err(|e| AdminError::Invalid(format!("{what}'s plugin `{written}`: {e}")))?;
            *plugin = PluginRef::Component(path);
        }
        let name = topology.application_id.clone();
        let _reservation = self.reserve(&name, owner.as_deref())?;
        let topology = Arc::new(topology);
        let plugins =
            crate::plugins::load_plugins(&self.engine, &topology, &BuildOptions::default())
                .map_err(|e| AdminError::Invalid(e.to_string()))?;
        let history = topology
            .steps
            .iter()
            .zip(&plugins.steps)
            .filter_map(|(s, p)| {
                let p = p.as_ref()?;
                Some((
                    s.name.clone(),
                    vec![(p.path().to_owned(), p.digest().to_owned())],
                ))
            })
            .collect();
        let control = Control::new();
        let stop = Arc::new(AtomicBool::new(false));
        let options = RunOptions {
            brokers: self.settings.brokers.clone(),
            connect_timeout: self.settings.connect_timeout,
            stop: Arc::clone(&stop),
            stop_at: None,
            idle_close_at_end: false,
            control: Some(control.clone()),
            park: self.park_policy(),
        };
        let run_topology = Arc::clone(&topology);
        // A deploy that was still compiling when the host began to stop
        // starts nothing.
        let mut pipelines = self.lock();
        if self.stopping.load(Ordering::Acquire) {
            return Err(AdminError::Conflict(
                "the host is stopping: nothing is deployed".into(),
            ));
        }
        let thread = std::thread::Builder::new()
            .name(format!("pipeline-{name}"))
            .spawn(move || runner::run(run_topology, plugins, options))
            .map_err(|e| AdminError::Failed(format!("starting the pipeline's thread: {e}")))?;
        let mut deployed = Deployed {
            source: request.source,
            tenant: owner,
            topology,
            control,
            stop,
            thread: Some(thread),
            ended: None,
            history,
            swaps: 0,
        };
        let status = deployed.status();
        pipelines.insert(name.clone(), deployed);
        drop(pipelines);
        tracing::info!(pipeline = %name, "deployed");
        Ok(status)
    }

    /// How pipelines park (`HostSettings::park_after`), with the host's
    /// watcher, started at the first call. A watcher that cannot start
    /// (its client cannot be made) means no parking, with a warning.
    fn park_policy(&self) -> Option<ParkPolicy> {
        let after = self.settings.park_after?;
        let mut watcher = self.watcher.lock().expect("not poisoned");
        if watcher.is_none() {
            let settings = ClientSettings::new(&self.settings.brokers, &self.settings.kafka);
            match Watcher::start(&settings, PARK_CHECK_EVERY) {
                Ok(w) => *watcher = Some(w),
                Err(e) => {
                    tracing::warn!("pipelines will not park: the watcher cannot start: {e}");
                    return None;
                }
            }
        }
        Some(ParkPolicy {
            after,
            watcher: Arc::clone(watcher.as_ref()?),
        })
    }

    /// The pipelines parked now.
    pub fn parked(&self) -> usize {
        (self.watcher.lock().expect("not poisoned").as_ref()).map_or(0, |w| w.parked())
    }

    /// Reserves `name` for a deploy by `owner`, within the owner's
    /// `max-pipelines` (deploys under way count).
    fn reserve(&self, name: &str, owner: Option<&str>) -> Result<Reservation<'_>, AdminError> {
        let pipelines = self.lock();
        let mut pending = self.pending.lock().expect("not poisoned");
        if pipelines.contains_key(name) || pending.contains_key(name) {
            return Err(AdminError::Conflict(format!(
                "a pipeline named `{name}` is deployed already; remove it first, or swap its plugins"
            )));
        }
        if let Some(t) = owner {
            let limit = self
                .tenants
                .lock()
                .expect("not poisoned")
                .get(t)
                .map_or(0, |e| e.tenant.max_pipelines);
            let used = pipelines
                .values()
                .filter(|d| d.tenant.as_deref() == Some(t))
                .count()
                + pending.values().filter(|o| o.as_deref() == Some(t)).count();
            if used >= limit {
                return Err(AdminError::TooMany(format!(
                    "tenant `{t}` has {used} pipelines deployed or deploying, its quota (`max-pipelines`)"
                )));
            }
        }
        pending.insert(name.to_owned(), owner.map(str::to_owned));
        Ok(Reservation {
            host: self,
            name: name.to_owned(),
        })
    }

    /// The status of every pipeline the caller owns.
    pub fn list(&self, caller: &Caller) -> Vec<Status> {
        self.lock()
            .values_mut()
            .filter(|d| caller.owns(d.tenant.as_deref()))
            .map(Deployed::status)
            .collect()
    }

    /// One pipeline's status.
    pub fn status(&self, caller: &Caller, name: &str) -> Result<Status, AdminError> {
        self.with(caller, name, |d| Ok(d.status()))
    }

    /// Stops a pipeline (its in-flight work is finished and committed) and
    /// forgets it.
    pub fn remove(&self, caller: &Caller, name: &str) -> Result<Status, AdminError> {
        let mut deployed = {
            let mut pipelines = self.lock();
            match pipelines.get(name) {
                Some(d) if caller.owns(d.tenant.as_deref()) => {}
                _ => return Err(not_deployed(name)),
            }
            pipelines.remove(name).expect("just found")
        };
        deployed.stop.store(true, Ordering::Relaxed);
        deployed.control.wake();
        deployed.join();
        tracing::info!(pipeline = %name, "removed");
        Ok(deployed.status())
    }

    /// Pauses (`true`) or resumes a pipeline.
    pub fn pause(&self, caller: &Caller, name: &str, pause: bool) -> Result<Status, AdminError> {
        let control = self.with(caller, name, |d| {
            d.running()?;
            Ok(d.control.clone())
        })?;
        control
            .pause(pause)
            .recv_timeout(REQUEST_TIMEOUT)
            .map_err(|_| AdminError::Failed("the pipeline did not answer in time".into()))?
            .map_err(AdminError::Failed)?;
        self.status(caller, name)
    }

    /// Replaces a step's plugin at a committed batch boundary. The new
    /// component (uploaded by the pipeline's owner) is compiled and
    /// started first: if that fails, the old one keeps running and the
    /// error says why.
    pub fn swap(
        &self,
        caller: &Caller,
        name: &str,
        step: &str,
        to: SwapTo,
    ) -> Result<SwapReport, AdminError> {
        let (topology, control, path) = self.with(caller, name, |d| {
            let path = match &to {
                SwapTo::Component(digest) => self
                    .components(d.tenant.as_deref())?
                    .get(digest)
                    .map_err(AdminError::Invalid)?,
                SwapTo::Rollback => {
                    let versions = d.history.get(step).map_or(&[][..], Vec::as_slice);
                    match versions {
                        [.., previous, _] => previous.0.clone(),
                        _ => {
                            return Err(AdminError::Conflict(format!(
                                "step `{step}` of `{name}` has no earlier version to roll back to"
                            )));
                        }
                    }
                }
            };
            d.running()?;
            Ok((Arc::clone(&d.topology), d.control.clone(), path))
        })?;
        let (index, plugin) = control::prepare_swap(&self.engine, &topology, step, &path)
            .map_err(AdminError::Invalid)?;
        let digest = plugin.digest().to_owned();
        let swapped = control
            .swap(index, plugin)
            .recv_timeout(REQUEST_TIMEOUT)
            .map_err(|_| AdminError::Failed("the pipeline did not answer in time".into()))?
            .map_err(AdminError::Failed)?;
        self.with(caller, name, |d| {
            let versions = d.history.entry(step.to_owned()).or_default();
            match to {
                SwapTo::Rollback => {
                    versions.pop();
                }
                SwapTo::Component(_) => versions.push((path.clone(), digest.clone())),
            }
            d.swaps += 1;
            Ok(())
        })?;
        Ok(SwapReport {
            step: swapped.step,
            from: swapped.old_digest,
            to: swapped.new_digest,
            boundary: swapped.boundary,
            pause_ms: swapped.pause.as_secs_f64() * 1e3,
        })
    }

    /// Stops every pipeline, and waits for them all.
    pub fn shutdown(&self) {
        self.shutdown_within(None);
    }

    /// Stops every pipeline: all are told at once (each finishes and
    /// commits its work in flight, or gives up waiting for its brokers),
    /// and a deploy that finishes from now on starts nothing. Waits at
    /// most `deadline` for them, all together, and returns the names of
    /// those still running then: they are left to end with the process
    /// (what they processed since their last commit is processed again at
    /// their next start; under exactly-once the broker aborts their open
    /// transaction).
    pub fn shutdown_within(&self, deadline: Option<Duration>) -> Vec<String> {
        let mut stopping: Vec<(String, Deployed)> = {
            let mut pipelines = self.lock();
            self.stopping.store(true, Ordering::Release);
            std::mem::take(&mut *pipelines).into_iter().collect()
        };
        for (_, d) in &stopping {
            d.stop.store(true, Ordering::Relaxed);
            d.control.wake();
        }
        let until = deadline.map(|d| std::time::Instant::now() + d);
        loop {
            stopping.retain_mut(|(name, d)| {
                if d.thread.as_ref().is_some_and(|t| !t.is_finished()) {
                    return true;
                }
                d.join();
                match &d.ended {
                    Some(Err(e)) => tracing::warn!(pipeline = %name, "stopped, having failed: {e}"),
                    _ => tracing::info!(pipeline = %name, "stopped"),
                }
                false
            });
            if stopping.is_empty() || until.is_some_and(|u| std::time::Instant::now() >= u) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        stopping.into_iter().map(|(name, _)| name).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Deployed>> {
        self.pipelines.lock().expect("not poisoned")
    }

    /// Runs `f` on the pipeline `name` if the caller owns it; another
    /// tenant's pipeline is "not found", as a missing one is.
    fn with<T>(
        &self,
        caller: &Caller,
        name: &str,
        f: impl FnOnce(&mut Deployed) -> Result<T, AdminError>,
    ) -> Result<T, AdminError> {
        let mut pipelines = self.lock();
        let d = pipelines
            .get_mut(name)
            .filter(|d| caller.owns(d.tenant.as_deref()))
            .ok_or_else(|| not_deployed(name))?;
        f(d)
    }
}

/// "No pipeline `name`": for one that does not exist, and alike for
/// another tenant's.
fn not_deployed(name: &str) -> AdminError {
    AdminError::NotFound(format!(
        "no pipeline `{}` is deployed",
        name.chars().take(249).collect::<String>()
    ))
}

/// The plugin references of a pipeline's text, as written (steps'
/// `plugin` and `aggregate`, sources' `timestamp-plugin`): what a client
/// uploads components for.
pub fn plugin_references(text: &str) -> Result<Vec<String>, AdminError> {
    let label = Path::new(PIPELINE_LABEL);
    let invalid = |e: crate::error::PipelineError| AdminError::Invalid(e.to_string());
    let file = PipelineFile::parse(label, text).map_err(invalid)?;
    let mut topology = Topology::from_file(label, file).map_err(invalid)?;
    let mut refs: Vec<String> = topology
        .plugin_refs_mut()
        .into_iter()
        .map(|(_, p)| p.path().to_string_lossy().into_owned())
        .collect();
    refs.sort();
    refs.dedup();
    Ok(refs)
}
