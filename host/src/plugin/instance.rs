//! One plugin instance, owned by one task.

use std::sync::Arc;

use wasmtime::{Store, StoreLimits, StoreLimitsBuilder};

use super::bindings::RecordProcessor;
use super::bindings::aggregator::RecordAggregator;
use super::bindings::extractor::TimestampExtractor;
use super::bindings::joiner::ValueJoiner;
use super::host::state::LentStore;
use super::limits::{InstanceTicket, Limits};

/// Per-instance state the host keeps in the wasmtime `Store`.
pub struct HostState {
    pub(super) plugin: Arc<str>,
    store_limits: StoreLimits,
    pub(super) limits: Limits,
    /// Its slot in the tenant's instance quota, given back with the store.
    _ticket: Option<InstanceTicket>,
    /// The task stores the step declared, during a call.
    pub(super) stores: Vec<LentStore>,
    /// Set when the plugin reached outside its sandbox during a call (a
    /// store its step does not declare): the call then fails as a trap,
    /// whatever the plugin made of the error it was given.
    pub(super) violation: Option<String>,
}

impl HostState {
    pub(crate) fn new(plugin: Arc<str>, limits: &Limits, ticket: Option<InstanceTicket>) -> Self {
        HostState {
            plugin,
            store_limits: StoreLimitsBuilder::new()
                .memory_size(limits.memory)
                .trap_on_grow_failure(true)
                .build(),
            limits: limits.clone(),
            _ticket: ticket,
            stores: Vec::new(),
            violation: None,
        }
    }
}

impl HostState {
    /// The call deadline in epoch ticks (at least one).
    pub(crate) fn deadline_ticks(&self) -> u64 {
        (self.limits.deadline.as_millis() / super::EPOCH_TICK.as_millis()).max(1) as u64
    }

    /// Why a call failed, in words: a deadline or memory cap named as such.
    fn trap(&self, e: &wasmtime::Error) -> Trap {
        if e.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt) {
            return Trap(format!(
                "deadline: the call ran past its deadline of {} ms",
                self.limits.deadline.as_millis()
            ));
        }
        let text = format!("{e:#}");
        if text.contains("forcing trap when growing memory") {
            return Trap(format!(
                "memory: the instance reached its memory cap of {} MiB",
                self.limits.memory >> 20
            ));
        }
        Trap::from_wasmtime(e)
    }

    pub(crate) fn limiter(&mut self) -> &mut StoreLimits {
        &mut self.store_limits
    }

    /// The sandbox violation of the call just made, as a trap.
    fn violated(&mut self) -> Option<Trap> {
        self.violation.take().map(|v| Trap(format!("sandbox: {v}")))
    }
}

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
    Extractor(TimestampExtractor),
    Joiner(ValueJoiner),
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
            Bindings::Extractor(b) => b.sluice_plugin_extractor().call_init(&mut store, config),
            Bindings::Joiner(b) => b.sluice_plugin_joiner().call_init(&mut store, config),
        };
        match result {
            Ok(Ok(())) => InitOutcome::Ready(PluginInstance { store, bindings }),
            Ok(Err(e)) => InitOutcome::Refused {
                code: e.code,
                message: e.message,
            },
            Err(e) => InitOutcome::Trapped(store.data().trap(&e)),
        }
    }

    /// Lends the task's stores to the instance for the next call.
    pub fn lend(&mut self, stores: Vec<LentStore>) {
        self.store.data_mut().stores = stores;
    }

    /// Takes the lent stores back (after a call, trapped or not).
    pub fn take_back(&mut self) -> Vec<LentStore> {
        std::mem::take(&mut self.store.data_mut().stores)
    }

    /// Calls a processor's `process` with an input frame.
    ///
    /// # Panics
    /// If the plugin is not a processor (the topology checks kinds at load).
    pub fn process(&mut self, frame: &[u8]) -> CallResult {
        let Bindings::Processor(b) = &self.bindings else {
            panic!("`process` called on an aggregator plugin");
        };
        self.store
            .set_epoch_deadline(self.store.data().deadline_ticks());
        let result = b
            .sluice_plugin_processor()
            .call_process(&mut self.store, frame);
        lift(result, self.store.data_mut())
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
        self.store
            .set_epoch_deadline(self.store.data().deadline_ticks());
        let result = b
            .sluice_plugin_aggregator()
            .call_add(&mut self.store, aggregates, batch);
        lift(result, self.store.data_mut())
    }

    /// Calls an aggregator's `merge`: one aggregate from two of one key
    /// (session windows that a record joins).
    ///
    /// # Panics
    /// If the plugin is not an aggregator (the topology checks kinds at load).
    pub fn merge(&mut self, key: &[u8], a: &[u8], b: &[u8]) -> CallResult {
        let Bindings::Aggregator(bindings) = &self.bindings else {
            panic!("`merge` called on a processor plugin");
        };
        self.store
            .set_epoch_deadline(self.store.data().deadline_ticks());
        let result =
            bindings
                .sluice_plugin_aggregator()
                .call_merge(&mut self.store, Some(key), a, b);
        lift(result, self.store.data_mut())
    }
}

impl PluginInstance {
    /// Calls an extractor's `extract` with an input frame: one event time
    /// per record, -1 for none.
    ///
    /// # Panics
    /// If the plugin is not an extractor (the topology checks kinds at load).
    pub fn extract(&mut self, frame: &[u8]) -> Result<Result<Vec<i64>, (String, String)>, Trap> {
        let Bindings::Extractor(b) = &self.bindings else {
            panic!("`extract` called on a plugin that is not an extractor");
        };
        self.store
            .set_epoch_deadline(self.store.data().deadline_ticks());
        let result = b
            .sluice_plugin_extractor()
            .call_extract(&mut self.store, frame);
        if let Some(trap) = self.store.data_mut().violated() {
            return Err(trap);
        }
        match result {
            Ok(Ok(times)) => Ok(Ok(times)),
            Ok(Err(e)) => Ok(Err((e.code, e.message))),
            Err(e) => Err(self.store.data().trap(&e)),
        }
    }
}

impl PluginInstance {
    /// Calls a joiner's `join` with a call batch of matched pairs: the left
    /// and right records (input frames of equal count, a placeholder for an
    /// absent side) and one byte per pair saying which sides are present
    /// (`wit/FRAME.md`).
    ///
    /// # Panics
    /// If the plugin is not a joiner (the topology checks kinds at load).
    pub fn join(&mut self, left: &[u8], right: &[u8], sides: &[u8]) -> CallResult {
        let Bindings::Joiner(b) = &self.bindings else {
            panic!("`join` called on a plugin that is not a joiner");
        };
        self.store
            .set_epoch_deadline(self.store.data().deadline_ticks());
        let result = b
            .sluice_plugin_joiner()
            .call_join(&mut self.store, left, right, sides);
        lift(result, self.store.data_mut())
    }
}

/// A call's result as the task sees it: a sandbox violation or an output
/// over its cap fails the call as a trap would.
fn lift(
    result: wasmtime::Result<Result<Vec<u8>, super::bindings::sluice::plugin::types::Error>>,
    state: &mut HostState,
) -> CallResult {
    if let Some(trap) = state.violated() {
        return Err(trap);
    }
    match result {
        Ok(Ok(out)) if out.len() > state.limits.output => Err(Trap(format!(
            "output: the call returned {} bytes, over its cap of {} bytes",
            out.len(),
            state.limits.output
        ))),
        Ok(Ok(out)) => Ok(Ok(out)),
        Ok(Err(e)) => Ok(Err((e.code, e.message))),
        Err(e) => Err(state.trap(&e)),
    }
}
