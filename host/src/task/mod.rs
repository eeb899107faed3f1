//! Tasks: the unit of parallelism.
//!
//! A task ([`TaskId`]) covers one partition number of the source topics of
//! one sub-topology (most pipelines have one; repartition topics split a
//! pipeline into several, see [`crate::topology::SubTopology`]). It owns one
//! operator per node of its sub-topology (`crate::operator`), each with its own
//! plugin instance, so the hot path takes no locks. A call batch of source
//! records flows through the steps in topological order: the task finds
//! each record's event time ([`event_time`]), hands each node the records
//! that reach it, and sends what reaches the sinks to its [`Output`]. What
//! a node does with its records is its operator's business.
//!
//! - [`Task`]: runs batches through the DAG.
//! - [`event_time`]: each record's event time, and the stream time.
//! - [`stream_thread`]: the worker threads tasks run on.
//! - [`testing`]: a task on in-memory stores, driven by hand in tests.

pub mod event_time;
pub mod stream_thread;
pub mod testing;

#[cfg(test)]
mod refusal_tests;
#[cfg(test)]
mod window_tests;

use std::sync::Arc;

pub use crate::operator::batch::{Counts, Output};
pub use crate::record::InputRecord;

use crate::error::RunError;
use crate::operator::batch::{BatchContext, StepOut};
use crate::operator::call::PluginStep;
use crate::operator::dead_letter::Kind;
use crate::operator::record_cache::{self, Held, RecordCache};
use crate::operator::table::Table;
use crate::operator::{self, Buffers, Operator, StepCtx};
use crate::plugin::Plugin;
use crate::record::{Record, RecordRef};
use crate::state::task_state::{StateContext, TaskStores};
use crate::time::{Clock, StreamTime, SystemClock, TimestampKind};
use crate::topology::{NodeId, Topology};

/// A task's identity: a sub-topology and a partition number. Shown as
/// `<sub-topology>_<partition>`, as Kafka Streams shows its task ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId {
    /// Index into [`Topology::subtopologies`].
    pub subtopology: usize,
    /// The partition number of its sources.
    pub partition: i32,
}

impl TaskId {
    /// The task of partition `partition` of the first sub-topology (of
    /// the only one, in most pipelines).
    pub fn first(partition: i32) -> TaskId {
        TaskId {
            subtopology: 0,
            partition,
        }
    }
}

impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}_{}", self.subtopology, self.partition)
    }
}

/// One partition's processing: its operators, stores, and the DAG walk.
pub struct Task {
    id: TaskId,
    topology: Arc<Topology>,
    /// One operator per step of its sub-topology (`None` for the others).
    steps: Vec<Option<Box<dyn Operator>>>,
    /// Per source: its table operator, if it is read as a table.
    tables: Vec<Option<Table>>,
    /// Per source: its timestamp-extractor plugin, if it has one.
    extractors: Vec<Option<PluginStep>>,
    stores: Option<TaskStores>,
    /// Per step: its record cache, if `cache.max.bytes` is set and the
    /// step is cached (`operator::record_cache`).
    caches: Vec<Option<RecordCache>>,
    stream_time: StreamTime,
    /// The wall clock (`close.idle.after`, wall-clock event times).
    clock: Arc<dyn Clock>,
    /// Wall-clock time of the last batch, and whether the windows have
    /// been closed for idleness since.
    last_input_at: Option<i64>,
    idle_closed: bool,
    bufs: Buffers,
}

impl std::fmt::Debug for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Task {
    /// Creates task `id`: instantiates the plugin of every step of its
    /// sub-topology and the extractor plugin of every source, and opens
    /// and restores its stores (`state` is needed then).
    pub fn new(
        id: TaskId,
        topology: Arc<Topology>,
        plugins: &crate::plugins::Plugins,
        state: Option<&StateContext>,
    ) -> Result<Task, RunError> {
        let sub = &topology.subtopologies[id.subtopology];
        let names: Vec<&str> = topology
            .stores()
            .filter(|(name, _)| topology.subtopology_of_store(name) == Some(id.subtopology))
            .map(|(name, _)| name)
            .collect();
        let global = (sub.steps.iter()).any(|&i| topology.steps[i].global_table().is_some());
        if global && state.is_none() {
            return Err(RunError::Thread(
                "a join with a global table needs a state context".into(),
            ));
        }
        let stores = match (names.is_empty(), state) {
            (true, _) => None,
            (false, Some(ctx)) => Some(TaskStores::open(ctx, id.partition, &names)?),
            (false, None) => {
                return Err(RunError::Thread(
                    "a stateful topology needs a state context".into(),
                ));
            }
        };
        let mut extractors = Vec::with_capacity(topology.sources.len());
        for (i, (plugin, source)) in plugins.extractors.iter().zip(&topology.sources).enumerate() {
            extractors.push(match plugin {
                Some(p) if sub.sources.contains(&i) => {
                    Some(PluginStep::new(p.clone(), source.timestamp_config.clone())?)
                }
                _ => None,
            });
        }
        let mut steps = Vec::with_capacity(plugins.steps.len());
        for (i, (plugin, step)) in plugins.steps.iter().zip(&topology.steps).enumerate() {
            steps.push(match sub.steps.contains(&i) {
                true => Some(operator::build::step(
                    i,
                    step,
                    (
                        plugin.as_ref(),
                        plugins.keys.get(i).and_then(Option::as_ref),
                    ),
                    (stores.as_ref(), state.map(|s| &s.globals)),
                )?),
                false => None,
            });
        }
        let cached: Vec<bool> = (0..topology.steps.len())
            .map(|i| {
                topology.processing.cache_max_bytes > 0
                    && sub.steps.contains(&i)
                    && record_cache::cacheable(&topology, i)
            })
            .collect();
        let share =
            topology.processing.cache_max_bytes / cached.iter().filter(|c| **c).count().max(1);
        let caches = (cached.iter())
            .map(|&c| c.then(|| RecordCache::new(share)))
            .collect();
        let tables = (topology.sources.iter().enumerate())
            .map(|(i, source)| match sub.sources.contains(&i) {
                true => operator::build::table(i, source, stores.as_ref()),
                false => None,
            })
            .collect();
        Ok(Task {
            id,
            topology,
            steps,
            tables,
            extractors,
            stores,
            caches,
            stream_time: StreamTime::default(),
            clock: Arc::new(SystemClock),
            last_input_at: None,
            idle_closed: false,
            bufs: Buffers::default(),
        })
    }

    /// Replaces step `step`'s plugin: the next call batch goes to a fresh
    /// instance of `plugin`. The step's stores stay as they are.
    pub fn swap_plugin(&mut self, step: usize, plugin: Plugin) {
        if let Some(op) = &mut self.steps[step] {
            op.swap_plugin(plugin);
        }
    }

    /// Gives the task a wall clock other than the system's.
    pub fn set_clock(&mut self, clock: Arc<dyn Clock>) {
        self.clock = clock;
    }

    /// Starts stream time where the task's last commit left it.
    pub fn resume_stream_time(&mut self, time: Option<i64>) {
        self.stream_time = StreamTime::starting_at(time);
    }

    /// The task's stream time: the largest event time seen.
    pub fn stream_time(&self) -> Option<i64> {
        self.stream_time.get()
    }

    /// The task's stores, if its topology keeps state.
    pub fn stores(&mut self) -> Option<&mut TaskStores> {
        self.stores.as_mut()
    }

    /// The sub-topology and partition number this task covers.
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// Runs a batch of source records through the topology and sends what
    /// reaches the sinks (and dead letters) to `out`. An error means a
    /// `fail` policy was met or a plugin broke the protocol; nothing after
    /// the failing record was sent.
    ///
    /// In a stateful task, the batch's store writes are kept only if it
    /// succeeds; input whose effects every store already holds (restored
    /// from a changelog) is skipped.
    pub fn process(
        &mut self,
        batch: &[InputRecord],
        out: &mut dyn Output,
    ) -> Result<Counts, RunError> {
        if !batch.is_empty() {
            self.last_input_at = Some(self.clock.now_ms());
            self.idle_closed = false;
        }
        let result = self.process_inner(batch, false, None, out);
        self.settle_caches(result.is_ok());
        if let Some(stores) = &mut self.stores {
            match &result {
                // Where each store marks the batch applied: after the last
                // record of each (topic, partition), or of each origin
                // upstream for records of a repartition topic.
                Ok(_) => stores.accept(stream_thread::next_after(
                    batch.iter().map(InputRecord::applied_at),
                )),
                Err(_) => stores.discard(),
            }
        }
        result
    }

    /// With `close.idle.after` set, and no input for that long: closes
    /// every open window (their results flow downstream to `out`) by moving
    /// the stream time to the latest close time, as if a record had.
    /// Records that arrive later for those windows are late. With `force`
    /// (`sluice dev --idle-close`) it does not wait for the wall clock: it
    /// acts as if `close.idle.after` had passed since the last input.
    /// Returns `None` when there was nothing to do.
    pub fn close_idle(
        &mut self,
        force: bool,
        out: &mut dyn Output,
    ) -> Result<Option<Counts>, RunError> {
        let (Some(idle), Some(last)) = (self.topology.idle_close(), self.last_input_at) else {
            return Ok(None);
        };
        let waited = force || self.clock.now_ms().saturating_sub(last) >= idle;
        if self.idle_closed || !waited {
            return Ok(None);
        }
        self.idle_closed = true;
        if !self.close_all_windows()? {
            return Ok(None);
        }
        tracing::info!(
            task = %self.id,
            idle_ms = idle,
            stream_time = self.stream_time.get(),
            "no input for `close.idle.after`: closing every open window"
        );
        // One placeholder record gives the emitted results an origin; it
        // is not live, so no source passes it on.
        let tick = [InputRecord {
            topic: Arc::from(""),
            partition: self.id.partition,
            offset: -1,
            timestamp_kind: TimestampKind::NotAvailable,
            // The time the close moved to: what it sends to a repartition
            // topic is told apart by it.
            record: Record {
                timestamp: self.stream_time.get(),
                ..Record::default()
            },
            origin: None,
        }];
        let result = self.process_inner(&tick, true, None, out);
        self.settle_caches(result.is_ok());
        if let Some(stores) = &mut self.stores {
            match &result {
                Ok(_) => stores.accept(std::iter::empty()),
                Err(_) => stores.discard(),
            }
        }
        result.map(Some)
    }

    /// Sends what the record caches hold (`cache.max.bytes`) through the
    /// rest of the sub-topology to the sinks, as a batch of its own whose
    /// records are the inputs that last updated each cached key. Called
    /// at every commit, before the stores' phases, so the outputs of what
    /// a marker calls applied were sent. `None` when they held nothing.
    pub fn flush_caches(&mut self, out: &mut dyn Output) -> Result<Option<Counts>, RunError> {
        if self.caches.iter().flatten().all(RecordCache::is_empty) {
            return Ok(None);
        }
        let mut all: Vec<(usize, InputRecord, Held)> = Vec::new();
        for (step, cache) in self.caches.iter_mut().enumerate() {
            if let Some(cache) = cache {
                all.extend(cache.take().into_iter().map(|(o, r)| (step, o, r)));
            }
        }
        // Stable: each step's outputs of one origin keep their order.
        all.sort_by(|a, b| {
            (&a.1.topic, a.1.partition, a.1.offset).cmp(&(&b.1.topic, b.1.partition, b.1.offset))
        });
        let mut batch: Vec<InputRecord> = Vec::new();
        let mut flushed: Flushed = (self.steps.iter()).map(|_| Vec::new()).collect();
        for (step, origin, record) in all {
            let same = batch.last().is_some_and(|b| {
                b.offset == origin.offset
                    && b.partition == origin.partition
                    && b.topic == origin.topic
            });
            if !same {
                batch.push(origin);
            }
            flushed[step].push((batch.len() - 1, record));
        }
        let result = self.process_inner(&batch, false, Some(flushed), out);
        if let Some(stores) = &mut self.stores {
            match &result {
                Ok(_) => stores.accept(std::iter::empty()),
                Err(_) => stores.discard(),
            }
        }
        result.map(Some)
    }

    /// Keeps what a batch put in the record caches, or takes it out if
    /// the batch failed.
    fn settle_caches(&mut self, ok: bool) {
        for cache in self.caches.iter_mut().flatten() {
            match ok {
                true => cache.accept(),
                false => cache.discard(),
            }
        }
    }

    /// Runs `batch` through the sub-topology: source records (their live
    /// ones), the placeholder of an idle close (`tick`), or, with
    /// `flushed`, the origins of what the record caches held, which the
    /// cached steps emit (per step: origin index and record).
    fn process_inner(
        &mut self,
        batch: &[InputRecord],
        tick: bool,
        flushed: Option<Flushed>,
        out: &mut dyn Output,
    ) -> Result<Counts, RunError> {
        let topology = Arc::clone(&self.topology);
        let live: Vec<bool> = match &self.stores {
            _ if tick || flushed.is_some() => vec![false; batch.len()],
            None => vec![true; batch.len()],
            Some(stores) => {
                // Per origin upstream, the position after the last record
                // of this batch: a repartitioned record behind it is a
                // second copy (its writer crashed before its commit and
                // wrote it again) polled in the same batch as the first.
                let mut next: Vec<(&Arc<str>, i32, i64)> = Vec::new();
                (batch.iter())
                    .map(|r| {
                        let (topic, partition, at) = r.applied_at();
                        if stores.all_applied(topic, partition, at) {
                            return false;
                        }
                        match next
                            .iter_mut()
                            .find(|(t, p, _)| *p == partition && *t == topic)
                        {
                            Some(e) if at < e.2 => false,
                            Some(e) => {
                                e.2 = at + 1;
                                true
                            }
                            None => {
                                next.push((topic, partition, at + 1));
                                true
                            }
                        }
                    })
                    .collect()
            }
        };
        let skipped = if tick || flushed.is_some() {
            0
        } else {
            live.iter().filter(|l| !**l).count() as u64
        };
        let repartitioned = (batch.iter().zip(&live))
            .filter(|(r, l)| **l && r.origin.is_some())
            .count() as u64;
        let records_in = live.iter().filter(|l| **l).count() as u64 - repartitioned;
        let mut ctx = BatchContext {
            batch,
            tick,
            live,
            times: Vec::with_capacity(batch.len()),
            stream_at: Vec::with_capacity(batch.len()),
            out,
            counts: Counts {
                records_in,
                repartitioned,
                skipped,
                ..Counts::default()
            },
        };
        let now = self.clock.now_ms();
        if flushed.is_some() {
            // Origins of cached outputs: their times were assigned when
            // they were processed, and the stream time stays.
            for r in batch {
                ctx.times.push(r.record.timestamp.unwrap_or(0));
                ctx.stream_at.push(self.stream_time.get().unwrap_or(0));
            }
        } else {
            event_time::assign(
                &topology,
                &mut self.extractors,
                &mut self.stream_time,
                now,
                &mut self.bufs.frame,
                &mut ctx,
            )?;
        }
        let mut tables: Vec<Option<StepOut>> = Vec::with_capacity(topology.sources.len());
        let outs: Vec<StepOut>;
        {
            let mut cx = StepCtx {
                task: self.id.partition,
                topology: &topology,
                stores: self.stores.as_mut(),
                stream_time: self.stream_time.get(),
                batch: &mut ctx,
                bufs: &mut self.bufs,
                per_input: Vec::new(),
            };
            // Tables first: their changes are what their consumers see.
            for (i, table) in self.tables.iter_mut().enumerate() {
                tables.push(match table {
                    None => None,
                    Some(table) => {
                        let (live, times) = (&cx.batch.live, &cx.batch.times);
                        let node = NodeId::Source(i);
                        let inputs = node_records(&topology, batch, live, times, &[], &[], node);
                        Some(table.process(inputs, &mut cx)?)
                    }
                });
            }
            outs = run_steps(
                &topology,
                &mut self.steps,
                &mut self.caches,
                batch,
                &tables,
                flushed,
                &mut cx,
            )?;
        }
        self.to_sinks(&topology, &tables, &outs, &mut ctx)?;
        Ok(ctx.counts)
    }

    /// Sends what reaches each sink to the output; an output its sink
    /// would refuse meets the `refused` policy instead.
    fn to_sinks(
        &self,
        topology: &Topology,
        tables: &[Option<StepOut>],
        outs: &[StepOut],
        ctx: &mut BatchContext<'_>,
    ) -> Result<(), RunError> {
        // Per batch record: how many records it sent to the repartition
        // topic at hand (each gets its own position).
        let mut sent: Vec<i64> = Vec::new();
        let origins = topology.writes_origins(self.id.subtopology);
        for &k in &topology.subtopologies[self.id.subtopology].sinks {
            let sink = &topology.sinks[k];
            sent.clear();
            for &node in &sink.inputs {
                let (batch, live, times) = (ctx.batch, &ctx.live, &ctx.times);
                for (origin, record) in
                    node_records(topology, batch, live, times, tables, outs, node)
                {
                    if sink.repartition {
                        let digest = self.digest(node);
                        operator::repartition::send(
                            topology,
                            ctx,
                            (sink, origins),
                            (node, digest),
                            (origin, record),
                            &mut sent,
                        )?;
                        continue;
                    }
                    if let Some(refusal) = ctx.out.refusal(&sink.topic, record) {
                        let message = refusal.to_string();
                        let why = operator::error_policy::Refused {
                            node,
                            digest: self.digest(node),
                            kind: Kind::Refused,
                            code: refusal.code(),
                            message: &message,
                        };
                        operator::error_policy::apply(topology, ctx, why, (origin, record))?;
                        continue;
                    }
                    ctx.out.send(&sink.topic, record)?;
                    ctx.counts.records_out += 1;
                }
            }
        }
        Ok(())
    }

    /// The digest of a node's plugin (`built-in` without one).
    fn digest(&self, node: NodeId) -> &str {
        match node {
            NodeId::Step(i) => self.steps[i].as_ref().map_or("built-in", |op| op.digest()),
            NodeId::Source(_) => "built-in",
        }
    }

    /// Closes every open window of the task now: the stream time moves to
    /// the latest close time in the close indexes, as if records had
    /// brought it there. Returns whether it moved.
    fn close_all_windows(&mut self) -> Result<bool, RunError> {
        let Some(stores) = self.stores.as_mut() else {
            return Ok(false);
        };
        let mut latest: Option<i64> = None;
        for step in self.steps.iter().flatten() {
            if let Some(at) = step.latest_close(stores)? {
                latest = Some(latest.map_or(at, |l| l.max(at)));
            }
        }
        Ok(match latest {
            Some(t) if self.stream_time.get().is_none_or(|st| st < t) => {
                self.stream_time.observe(t);
                true
            }
            _ => false,
        })
    }
}

/// Runs each step of the task's sub-topology, in order, on what reaches
/// it (the others have no operator, and emit nothing).
/// Per step: what its record cache held, as (origin index, record).
type Flushed = Vec<Vec<(usize, Held)>>;

fn run_steps(
    topology: &Topology,
    steps: &mut [Option<Box<dyn Operator>>],
    caches: &mut [Option<RecordCache>],
    batch: &[InputRecord],
    tables: &[Option<StepOut>],
    mut flushed: Option<Flushed>,
    cx: &mut StepCtx<'_, '_>,
) -> Result<Vec<StepOut>, RunError> {
    let mut outs: Vec<StepOut> = Vec::with_capacity(steps.len());
    for (i, (step, operator)) in topology.steps.iter().zip(steps).enumerate() {
        let Some(operator) = operator else {
            outs.push(StepOut::default());
            continue;
        };
        let (live, times) = (&cx.batch.live, &cx.batch.times);
        let mut inputs: Vec<(usize, RecordRef<'_>)> = Vec::new();
        cx.per_input.clear();
        for &n in &step.inputs {
            let records = node_records(topology, batch, live, times, tables, &outs, n);
            cx.per_input.push(records.len());
            inputs.extend(records);
        }
        let mut produced = operator.process(inputs, cx)?;
        if let Some(cache) = &mut caches[i] {
            produced = match &mut flushed {
                // What it held goes first: what it makes now of a cached
                // step upstream is newer.
                Some(flushed) => {
                    let records = std::mem::take(&mut flushed[i]);
                    let emit: Vec<(usize, RecordRef<'_>, RecordRef<'_>)> = (records.iter())
                        .map(|(o, r)| (*o, batch[*o].record.as_ref(), r.record()))
                        .collect();
                    let mut held = StepOut::of_records(&step.name, &emit)?;
                    held.extend(produced);
                    held
                }
                None => cache.absorb(&step.name, produced, batch, &cx.batch.times)?,
            };
        }
        outs.push(produced);
    }
    Ok(outs)
}

/// The records a node emits in this batch, with their source index: a
/// table's changes (once materialized), a stream source's live records, or
/// a step's outputs.
fn node_records<'a>(
    topology: &'a Topology,
    batch: &'a [InputRecord],
    live: &[bool],
    times: &[i64],
    tables: &'a [Option<StepOut>],
    steps: &'a [StepOut],
    node: NodeId,
) -> Vec<(usize, RecordRef<'a>)> {
    match node {
        NodeId::Source(i) if tables.get(i).is_some_and(Option::is_some) => {
            tables[i].as_ref().expect("checked").records()
        }
        NodeId::Source(i) => {
            let topic = topology.sources[i].topic.as_str();
            batch
                .iter()
                .enumerate()
                .filter(|(i, r)| live[*i] && &*r.topic == topic)
                .map(|(i, r)| {
                    let mut record = r.record.as_ref();
                    record.timestamp = Some(times[i]);
                    (i, record)
                })
                .collect()
        }
        NodeId::Step(i) => steps[i].records(),
    }
}
