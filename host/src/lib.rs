//! Sluice: stateful stream processing on Kafka, with the per-record logic
//! in sandboxed WebAssembly components.
//!
//! The host owns Kafka I/O, batching, delivery and error policies; a
//! plugin (a component exporting `sluice:plugin/processor@0.1.0`) owns the
//! logic.
//!
//! - [`topology`]: the pipeline file, validated into a DAG.
//! - [`plugin`]: loading, building and calling plugins.
//! - [`task`]: per-partition tasks and the stream threads they run on.
//! - [`runner`]: the poll / dispatch / commit loop.
//! - [`time`]: timestamp extractors and stream time.
//! - [`window`]: window arithmetic (tumbling, hopping) and when windows close.
//! - [`state`]: task-local stores (RocksDB, in-memory), key layouts, changelogs.
//! - [`kafka`]: client settings, connection checks, the embedded broker.
//! - [`dev`]: `sluice dev`, a pipeline on an embedded broker with sample input.
//! - [`error`]: typed errors.

pub mod dev;
pub mod error;
pub mod fault;
pub mod kafka;
pub mod plugin;
pub mod record;
pub mod runner;
pub mod state;
pub mod task;
pub mod time;
pub mod topology;
pub mod window;

use error::PluginError;
use plugin::PluginKind;
use plugin::builder::{self, BuildOptions};
use topology::{Operation, PluginRef, Topology};

/// Loads every step's plugin of `topology`, in step order (`None` for a
/// step without one, such as the built-in count). A step that names a
/// crate directory is built first (cargo decides whether anything changed).
/// A plugin of the wrong kind for its step (an aggregator under `plugin`,
/// a processor under `aggregate`) is refused.
pub fn load_plugins(
    engine: &wasmtime::Engine,
    topology: &Topology,
    build: &BuildOptions,
) -> Result<Vec<Option<plugin::Plugin>>, PluginError> {
    topology
        .steps
        .iter()
        .map(|step| {
            let Some(plugin_ref) = step.plugin() else {
                return Ok(None);
            };
            let path = match plugin_ref {
                PluginRef::Component(p) => p.clone(),
                PluginRef::Crate(dir) => {
                    if !dir.exists() {
                        return Err(PluginError::NotFound {
                            plugin: step.name.clone(),
                            path: dir.clone(),
                        });
                    }
                    builder::build(dir, build).map_err(|source| PluginError::Build {
                        plugin: step.name.clone(),
                        source,
                    })?
                }
            };
            let plugin = plugin::Plugin::load(engine, &step.name, &path)?;
            let wanted = match step.op {
                Operation::Process(_) => PluginKind::Processor,
                Operation::Aggregate { .. } => PluginKind::Aggregator,
            };
            if plugin.kind() != wanted {
                let (found, hint) = match plugin.kind() {
                    PluginKind::Aggregator => ("an aggregator", "use it as `aggregate = ...`"),
                    PluginKind::Processor => ("a record processor", "use it as `plugin = ...`"),
                };
                return Err(PluginError::WrongWorld {
                    plugin: step.name.clone(),
                    expected: wanted.interface().to_owned(),
                    found: format!("{} is {found}; {hint}", path.display()),
                });
            }
            tracing::info!(step = %step.name, digest = %&plugin.digest()[..12], path = %path.display(), "plugin loaded");
            Ok(Some(plugin))
        })
        .collect()
}
