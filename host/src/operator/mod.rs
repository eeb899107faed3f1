//! Operators: what each kind of node does with a batch's records.
//!
//! A task walks its pipeline's DAG (`crate::task`) and hands each node the
//! records that reach it; the node's operator does the rest. One type and
//! file per kind:
//!
//! - [`process::Processor`]: a processor plugin (map, filter, flat-map),
//!   with the stores it declared lent to it, and `key = "kept"` checked;
//! - [`aggregate::KeyedAggregate`]: an aggregation per key (a plugin, or
//!   the built-in count) over the step's store;
//! - [`window::WindowedAggregate`]: the same per time window, one file per
//!   window type ([`window::hopping`] for tumbling and hopping windows,
//!   [`window::sliding`], [`window::session`]), its store layout in
//!   [`window::store`];
//! - [`table::Table`]: a source read as a table, materialized into its
//!   store.
//!
//! What they share: [`call`] (one plugin's instance and its call batches,
//! replayed one record at a time after a trap), [`error_policy`] (what
//! happens to a record a node rejected, trapped on, or whose output a sink
//! would refuse) with [`dead_letter`] (what a dead letter carries), and
//! [`batch`] (the batch in flight: its records, times, counts and
//! outputs).
//!
//! An operator keeps nothing about a call on itself: what a call needs
//! (the task's stores, the stream time, the batch) comes in a [`StepCtx`],
//! and what a call of an aggregation reads and writes (a key's window)
//! is an argument.

pub mod aggregate;
pub mod batch;
pub mod build;
pub mod call;
pub mod dead_letter;
pub mod error_policy;
pub mod join;
pub mod process;
pub mod record_cache;
pub mod repartition;
pub mod table;
pub mod window;

use crate::error::RunError;
use crate::plugin::Plugin;
use crate::record::RecordRef;
use crate::state::StoreBuffer;
use crate::state::task_state::TaskStores;
use crate::topology::{NodeId, Topology};
use batch::{BatchContext, StepOut};

use dead_letter::Kind;

/// A hash map for the per-record maps of the data path (record cache,
/// windows of a call): foldhash, seeded per map, where the standard
/// SipHash took about 5 % of a windowed aggregation's thread.
pub type FastMap<K, V> = foldhash::HashMap<K, V>;

/// What an operator borrows from its task for one batch.
pub struct StepCtx<'t, 'b> {
    /// The partition number of the task (for logs).
    pub task: i32,
    /// The pipeline.
    pub topology: &'t Topology,
    /// The task's stores; `None` in a stateless task.
    pub stores: Option<&'t mut TaskStores>,
    /// The task's stream time once the batch's records were seen.
    pub stream_time: Option<i64>,
    /// The batch: its records and their times, where outputs go, counts.
    pub batch: &'t mut BatchContext<'b>,
    /// Encoding buffers, reused from call to call.
    pub bufs: &'t mut Buffers,
    /// How many of the records given to `process` came from each of the
    /// step's inputs, in the order of its `inputs` (they come input by
    /// input): a join tells its sides apart by it.
    pub per_input: Vec<usize>,
}

/// Buffers a task lends its operators, so that a call allocates nothing
/// once they have grown.
#[derive(Debug, Default)]
pub struct Buffers {
    /// An input frame.
    pub frame: Vec<u8>,
    /// An aggregates frame.
    pub aggregates: Vec<u8>,
}

impl StepCtx<'_, '_> {
    /// Store `i` of the task's stores.
    pub fn buffer<'s>(stores: &'s mut Option<&mut TaskStores>, i: usize) -> &'s mut StoreBuffer {
        stores
            .as_deref_mut()
            .expect("a stateful task has stores")
            .buffer(i)
    }

    /// Applies the error policy to `at`, which `node` refused (see
    /// [`error_policy::apply`]).
    pub fn dead(
        &mut self,
        node: NodeId,
        digest: &str,
        kind: Kind,
        code: &str,
        message: &str,
        at: (usize, RecordRef<'_>),
    ) -> Result<(), RunError> {
        let why = error_policy::Refused {
            node,
            digest,
            kind,
            code,
            message,
        };
        error_policy::apply(self.topology, self.batch, why, at)
    }
}

/// One node's kind of work, behind the task's DAG walk.
pub trait Operator: Send {
    /// Runs the records that reached the node in this batch (each with
    /// its index in the batch) and returns what it emits.
    fn process<'r>(
        &mut self,
        inputs: Vec<(usize, RecordRef<'r>)>,
        cx: &mut StepCtx<'_, '_>,
    ) -> Result<StepOut, RunError>;

    /// For `close.idle.after`: the latest stream time at which one of its
    /// open windows closes, if it keeps windows.
    fn latest_close(&self, stores: &mut TaskStores) -> Result<Option<i64>, RunError> {
        let _ = stores;
        Ok(None)
    }

    /// The digest of its plugin, for dead letters (`built-in` without one).
    fn digest(&self) -> &str;

    /// Hot swap: the next call goes to a fresh instance of `plugin`; the
    /// stores stay as they are.
    fn swap_plugin(&mut self, plugin: Plugin);
}

/// The inputs whose effects the stores `written` do not all hold yet
/// (restored from the changelog); the others are not applied again.
pub fn unapplied<'r>(
    written: &[usize],
    inputs: Vec<(usize, RecordRef<'r>)>,
    cx: &StepCtx<'_, '_>,
) -> Vec<(usize, RecordRef<'r>)> {
    let Some(stores) = cx.stores.as_deref() else {
        return inputs;
    };
    if written.is_empty() {
        return inputs;
    }
    inputs
        .into_iter()
        .filter(|(origin, _)| {
            let (topic, partition, at) = cx.batch.batch[*origin].applied_at();
            !written
                .iter()
                .all(|&i| stores.has_applied(i, topic, partition, at))
        })
        .collect()
}
