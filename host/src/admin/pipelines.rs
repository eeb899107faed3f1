//! The pipelines one host runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::tenants::Tenant;
use crate::error::RunError;
use crate::plugin::TenantBudget;
use crate::plugin::builder::BuildOptions;
use crate::runner::control::{self, Control};
use crate::runner::{self, RunOptions, RunSummary};
use crate::task::Counts;
use crate::topology::Topology;

/// How long an API call waits for a running pipeline to act on a request
/// (a swap waits for the batches in flight and a commit).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Why an admin request failed; each maps to an HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No pipeline of that name (404).
    #[error("no pipeline `{0}` is deployed")]
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
    /// The pipeline file.
    pub file: PathBuf,
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
    /// Records too late for every window.
    pub late: u64,
    /// Records too late for some of their windows, added to the others.
    pub partly_late: u64,
    /// (record, window) pairs dropped because the window had closed.
    pub late_windows: u64,
    /// Records on its partitions not yet processed and committed (measured
    /// every two seconds; `null` before its first assignment).
    pub lag: Option<u64>,
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
    file: PathBuf,
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
            file: self.file.clone(),
            state,
            records_in: counts.records_in,
            records_out: counts.records_out,
            rejected: counts.rejected,
            trapped: counts.trapped,
            dead_letters: counts.dead_letters,
            late: counts.late,
            partly_late: counts.partly_late,
            late_windows: counts.late_windows,
            lag: live.lag.filter(|_| self.ended.is_none()),
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
}

/// The pipelines of one host.
pub struct Host {
    engine: wasmtime::Engine,
    tenants: Mutex<BTreeMap<String, TenantEntry>>,
    brokers: String,
    connect_timeout: Duration,
    pipelines: Mutex<BTreeMap<String, Deployed>>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("brokers", &self.brokers)
            .finish_non_exhaustive()
    }
}

/// A swap's target.
#[derive(Debug, Clone)]
pub enum SwapTo {
    /// A component (`.wasm`) or a plugin crate directory.
    Plugin(PathBuf),
    /// The step's previous component.
    Rollback,
}

impl Host {
    /// A host running pipelines against `brokers`.
    pub fn new(engine: wasmtime::Engine, brokers: &str, connect_timeout: Duration) -> Host {
        Host {
            engine,
            tenants: Mutex::new(BTreeMap::new()),
            brokers: brokers.to_owned(),
            connect_timeout,
            pipelines: Mutex::new(BTreeMap::new()),
        }
    }

    /// With tenants (`sluice serve --tenants`): every pipeline then names
    /// the tenant that owns it.
    pub fn with_tenants(self, tenants: BTreeMap<String, Tenant>) -> Host {
        *self.tenants.lock().expect("not poisoned") = tenants
            .into_iter()
            .map(|(name, tenant)| {
                let budget = tenant.budget(&name);
                (name, TenantEntry { tenant, budget })
            })
            .collect();
        self
    }

    /// Creates a tenant. Once a host has a tenant, every pipeline deployed
    /// names its owner. A tenant's settings are fixed once created.
    pub fn create_tenant(&self, name: &str, tenant: Tenant) -> Result<TenantStatus, AdminError> {
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
        {
            let mut tenants = self.tenants.lock().expect("not poisoned");
            if tenants.contains_key(name) {
                return Err(AdminError::Conflict(format!(
                    "tenant `{name}` exists already; its settings are fixed once created"
                )));
            }
            let budget = tenant.budget(name);
            tenants.insert(name.to_owned(), TenantEntry { tenant, budget });
        }
        tracing::info!(tenant = %name, "tenant created");
        self.tenant(name)
    }

    /// One tenant.
    pub fn tenant(&self, name: &str) -> Result<TenantStatus, AdminError> {
        self.tenants()
            .into_iter()
            .find(|t| t.name == name)
            .ok_or_else(|| AdminError::NotFound(format!("tenant `{name}`")))
    }

    /// Every tenant.
    pub fn tenants(&self) -> Vec<TenantStatus> {
        let owners: Vec<(String, String)> = self
            .lock()
            .values()
            .filter_map(|d| Some((d.tenant.clone()?, d.topology.application_id.clone())))
            .collect();
        self.tenants
            .lock()
            .expect("not poisoned")
            .iter()
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

    /// Loads a pipeline file and its plugins, and starts it. Its name is
    /// its `application.id`, which must not be running already. On a host
    /// with tenants, `tenant` names its owner, whose topic prefixes it
    /// must keep to and whose limits it gets.
    pub fn deploy(&self, file: &Path, tenant: Option<&str>) -> Result<Status, AdminError> {
        let mut topology = Topology::load(file).map_err(|e| AdminError::Invalid(e.to_string()))?;
        let tenants = self.tenants.lock().expect("not poisoned");
        match (tenant, tenants.is_empty()) {
            (Some(t), _) => {
                let owner = tenants.get(t).ok_or_else(|| {
                    AdminError::Invalid(format!(
                        "no tenant `{t}` (tenants: {})",
                        tenants.keys().cloned().collect::<Vec<_>>().join(", ")
                    ))
                })?;
                owner
                    .tenant
                    .admit(&owner.budget, &mut topology)
                    .map_err(AdminError::Invalid)?;
            }
            (None, false) => {
                return Err(AdminError::Invalid(
                    "this host has tenants: name the pipeline's (`--tenant`)".into(),
                ));
            }
            (None, true) => {}
        }
        drop(tenants);
        let topology = Arc::new(topology);
        let name = topology.application_id.clone();
        if self.lock().contains_key(&name) {
            return Err(AdminError::Conflict(format!(
                "a pipeline named `{name}` is deployed already; remove it first, or swap its plugins"
            )));
        }
        let plugins = crate::load_plugins(&self.engine, &topology, &BuildOptions::default())
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
            brokers: self.brokers.clone(),
            connect_timeout: self.connect_timeout,
            stop: Arc::clone(&stop),
            stop_at: None,
            idle_close_at_end: false,
            control: Some(control.clone()),
        };
        let run_topology = Arc::clone(&topology);
        let thread = std::thread::Builder::new()
            .name(format!("pipeline-{name}"))
            .spawn(move || runner::run(run_topology, plugins, options))
            .map_err(|e| AdminError::Failed(format!("starting the pipeline's thread: {e}")))?;
        let mut deployed = Deployed {
            file: file.to_owned(),
            tenant: tenant.map(str::to_owned),
            topology,
            control,
            stop,
            thread: Some(thread),
            ended: None,
            history,
            swaps: 0,
        };
        let status = deployed.status();
        let mut pipelines = self.lock();
        if pipelines.contains_key(&name) {
            deployed.stop.store(true, Ordering::Relaxed);
            return Err(AdminError::Conflict(format!(
                "a pipeline named `{name}` was deployed meanwhile"
            )));
        }
        pipelines.insert(name.clone(), deployed);
        tracing::info!(pipeline = %name, file = %file.display(), "deployed");
        Ok(status)
    }

    /// Every pipeline's status.
    pub fn list(&self) -> Vec<Status> {
        self.lock().values_mut().map(Deployed::status).collect()
    }

    /// One pipeline's status.
    pub fn status(&self, name: &str) -> Result<Status, AdminError> {
        self.with(name, |d| Ok(d.status()))
    }

    /// Stops a pipeline (its in-flight work is finished and committed) and
    /// forgets it.
    pub fn remove(&self, name: &str) -> Result<Status, AdminError> {
        let mut deployed = self
            .lock()
            .remove(name)
            .ok_or_else(|| AdminError::NotFound(name.to_owned()))?;
        deployed.stop.store(true, Ordering::Relaxed);
        deployed.join();
        tracing::info!(pipeline = %name, "removed");
        Ok(deployed.status())
    }

    /// Pauses (`true`) or resumes a pipeline.
    pub fn pause(&self, name: &str, pause: bool) -> Result<Status, AdminError> {
        let control = self.with(name, |d| {
            d.running()?;
            Ok(d.control.clone())
        })?;
        control
            .pause(pause)
            .recv_timeout(REQUEST_TIMEOUT)
            .map_err(|_| AdminError::Failed("the pipeline did not answer in time".into()))?
            .map_err(AdminError::Failed)?;
        self.status(name)
    }

    /// Replaces a step's plugin at a committed batch boundary. The new
    /// component is compiled and started first: if that fails, the old one
    /// keeps running and the error says why.
    pub fn swap(&self, name: &str, step: &str, to: SwapTo) -> Result<SwapReport, AdminError> {
        let (topology, control, path) = self.with(name, |d| {
            d.running()?;
            let path = match &to {
                SwapTo::Plugin(p) => p.clone(),
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
            Ok((Arc::clone(&d.topology), d.control.clone(), path))
        })?;
        let component = if path.is_dir() {
            crate::plugin::builder::build(&path, &BuildOptions::default())
                .map_err(|e| AdminError::Invalid(format!("building {}: {e}", path.display())))?
        } else {
            path.clone()
        };
        let (index, plugin) = control::prepare_swap(&self.engine, &topology, step, &component)
            .map_err(AdminError::Invalid)?;
        let digest = plugin.digest().to_owned();
        let swapped = control
            .swap(index, plugin)
            .recv_timeout(REQUEST_TIMEOUT)
            .map_err(|_| AdminError::Failed("the pipeline did not answer in time".into()))?
            .map_err(AdminError::Failed)?;
        self.with(name, |d| {
            let versions = d.history.entry(step.to_owned()).or_default();
            match to {
                SwapTo::Rollback => {
                    versions.pop();
                }
                SwapTo::Plugin(_) => versions.push((path.clone(), digest.clone())),
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

    /// Stops every pipeline.
    pub fn shutdown(&self) {
        let names: Vec<String> = self.lock().keys().cloned().collect();
        for name in names {
            let _ = self.remove(&name);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Deployed>> {
        self.pipelines.lock().expect("not poisoned")
    }

    fn with<T>(
        &self,
        name: &str,
        f: impl FnOnce(&mut Deployed) -> Result<T, AdminError>,
    ) -> Result<T, AdminError> {
        let mut pipelines = self.lock();
        let d = pipelines
            .get_mut(name)
            .ok_or_else(|| AdminError::NotFound(name.to_owned()))?;
        f(d)
    }
}
