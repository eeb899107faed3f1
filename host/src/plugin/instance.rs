//! One plugin instance, owned by one task.

use std::sync::Arc;

use wasmtime::{Store, StoreLimits, StoreLimitsBuilder};

use super::bindings::RecordProcessor;
use super::bindings::aggregator::RecordAggregator;
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

/// An instance's exports, by world.
pub(crate) enum Bindings {
    Processor(RecordProcessor),
    Aggregator(RecordAggregator),
}

/// What a call returned: `Ok(Ok(frame))` is the output frame;
/// `Ok(Err((code, message)))` is the plugin refusing the whole call;
/// `Err(trap)` means the instance is broken and must be dropped.
pub type CallResult = Result<Result<Vec<u8>, (String, String)>, Trap>;

/// A live instance of a plugin.
pub struct PluginInstance {
    store: Store<HostState>,
    bindings: Bindings,
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
        bindings: Bindings,
        config: &[(String, String)],
    ) -> InitOutcome {
        let result = match &bindings {
            Bindings::Processor(b) => b.sluice_plugin_processor().call_init(&mut store, config),
            Bindings::Aggregator(b) => b.sluice_plugin_aggregator().call_init(&mut store, config),
        };
        match result {
            Ok(Ok(())) => InitOutcome::Ready(PluginInstance { store, bindings }),
            Ok(Err(e)) => InitOutcome::Refused {
                code: e.code,
                message: e.message,
            },
            Err(e) => InitOutcome::Trapped(Trap::from_wasmtime(&e)),
        }
    }

    /// Calls a processor's `process` with an input frame.
    ///
    /// # Panics
    /// If the plugin is not a processor (the topology checks kinds at load).
    pub fn process(&mut self, frame: &[u8]) -> CallResult {
        let Bindings::Processor(b) = &self.bindings else {
            panic!("`process` called on an aggregator plugin");
        };
        lift(
            b.sluice_plugin_processor()
                .call_process(&mut self.store, frame),
        )
    }

    /// Calls an aggregator's `add` with the current aggregates of the
    /// batch's keys and the batch (both input frames).
    ///
    /// # Panics
    /// If the plugin is not an aggregator (the topology checks kinds at load).
    pub fn add(&mut self, aggregates: &[u8], batch: &[u8]) -> CallResult {
        let Bindings::Aggregator(b) = &self.bindings else {
            panic!("`add` called on a processor plugin");
        };
        lift(
            b.sluice_plugin_aggregator()
                .call_add(&mut self.store, aggregates, batch),
        )
    }
}

fn lift(
    result: wasmtime::Result<Result<Vec<u8>, super::bindings::sluice::plugin::types::Error>>,
) -> CallResult {
    match result {
        Ok(Ok(out)) => Ok(Ok(out)),
        Ok(Err(e)) => Ok(Err((e.code, e.message))),
        Err(e) => Err(Trap::from_wasmtime(&e)),
    }
}
