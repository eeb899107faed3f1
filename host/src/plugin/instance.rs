//! One plugin instance, owned by one task.

use std::sync::Arc;

use wasmtime::{Store, StoreLimits, StoreLimitsBuilder};

use super::bindings::RecordProcessor;
use super::bindings::sluice::plugin::log::{self, Level};
use super::bindings::sluice::plugin::types;

/// Per-instance state the host keeps in the wasmtime `Store`.
pub struct HostState {
    plugin: Arc<str>,
    limits: StoreLimits,
}

impl HostState {
    pub(crate) fn new(plugin: Arc<str>, max_memory_bytes: usize) -> Self {
        HostState {
            plugin,
            limits: StoreLimitsBuilder::new()
                .memory_size(max_memory_bytes)
                .trap_on_grow_failure(true)
                .build(),
        }
    }
}

impl HostState {
    pub(crate) fn limiter(&mut self) -> &mut StoreLimits {
        &mut self.limits
    }
}

impl log::Host for HostState {
    fn log(&mut self, level: Level, message: String) {
        let plugin = &*self.plugin;
        match level {
            Level::Trace => tracing::trace!(target: "sluice::plugin", plugin, "{message}"),
            Level::Debug => tracing::debug!(target: "sluice::plugin", plugin, "{message}"),
            Level::Info => tracing::info!(target: "sluice::plugin", plugin, "{message}"),
            Level::Warn => tracing::warn!(target: "sluice::plugin", plugin, "{message}"),
            Level::Error => tracing::error!(target: "sluice::plugin", plugin, "{message}"),
        }
    }
}

impl types::Host for HostState {}

/// The plugin trapped: the instance is broken and has been discarded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Trap(pub String);

impl Trap {
    fn from_wasmtime(e: &wasmtime::Error) -> Trap {
        // The root cause names the trap; the outer context is a backtrace.
        let root = e.root_cause().to_string();
        let first = e.to_string();
        if first == root || first.starts_with("error while executing") {
            Trap(root)
        } else {
            Trap(format!("{first}: {root}"))
        }
    }
}

/// A live instance of a record-processor plugin.
pub struct PluginInstance {
    store: Store<HostState>,
    bindings: RecordProcessor,
}

impl std::fmt::Debug for PluginInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginInstance")
            .field("plugin", &self.store.data().plugin)
            .finish_non_exhaustive()
    }
}

/// What `init` said.
#[derive(Debug)]
pub(crate) enum InitOutcome {
    Ready(PluginInstance),
    Refused { code: String, message: String },
    Trapped(Trap),
}

impl PluginInstance {
    pub(crate) fn start(
        mut store: Store<HostState>,
        bindings: RecordProcessor,
        config: &[(String, String)],
    ) -> InitOutcome {
        match bindings
            .sluice_plugin_processor()
            .call_init(&mut store, config)
        {
            Ok(Ok(())) => InitOutcome::Ready(PluginInstance { store, bindings }),
            Ok(Err(e)) => InitOutcome::Refused {
                code: e.code,
                message: e.message,
            },
            Err(e) => InitOutcome::Trapped(Trap::from_wasmtime(&e)),
        }
    }

    /// Calls `process` with an input frame. `Ok(Ok(frame))` is the output
    /// frame; `Ok(Err((code, message)))` is the plugin refusing the whole
    /// call; `Err(trap)` means the instance is broken and must be dropped.
    pub fn process(&mut self, frame: &[u8]) -> Result<Result<Vec<u8>, (String, String)>, Trap> {
        match self
            .bindings
            .sluice_plugin_processor()
            .call_process(&mut self.store, frame)
        {
            Ok(Ok(out)) => Ok(Ok(out)),
            Ok(Err(e)) => Ok(Err((e.code, e.message))),
            Err(e) => Err(Trap::from_wasmtime(&e)),
        }
    }
}
