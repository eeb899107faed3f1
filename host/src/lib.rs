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
//! - [`state`]: task-local stores (RocksDB, in-memory), key layouts, changelogs.
//! - [`kafka`]: client settings, connection checks, the embedded broker.
//! - [`dev`]: `sluice dev`, a pipeline on an embedded broker with sample input.
//! - [`error`]: typed errors.

pub mod dev;
pub mod error;
pub mod kafka;
pub mod plugin;
pub mod record;
pub mod runner;
pub mod state;
pub mod task;
pub mod topology;

use error::PluginError;
use plugin::builder::{self, BuildOptions};
use topology::{PluginRef, Topology};

/// Loads every step's plugin of `topology`, in step order. A step that
/// names a crate directory is built first (cargo decides whether anything
/// changed).
pub fn load_plugins(
    engine: &wasmtime::Engine,
    topology: &Topology,
    build: &BuildOptions,
) -> Result<Vec<plugin::Plugin>, PluginError> {
    topology
        .steps
        .iter()
        .map(|step| {
            let path = match &step.plugin {
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
            tracing::info!(step = %step.name, digest = %&plugin.digest()[..12], path = %path.display(), "plugin loaded");
            Ok(plugin)
        })
        .collect()
}
