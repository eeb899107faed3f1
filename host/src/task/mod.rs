//! Tasks: the unit of parallelism.
//!
//! A task covers one partition number of the source topics. It owns one
//! instance of each step's plugin, so the hot path takes no locks. A call
//! batch of source records flows through the steps in topological order;
//! each step is called with at most `max.batch.records` records at a time.
//!
//! - [`Task`]: runs batches through the DAG.
//! - [`aggregate`]: aggregation steps (a plugin, or the built-in count)
//!   over the task's stores.
//! - [`Output`]: where sink and dead-letter records go (the shared
//!   producer, or a `Vec` in tests).
//! - [`table`]: sources read as tables, materialized into stores.
//! - [`windowed`]: aggregations per time window, with grace and emit modes;
//!   [`sliding_window`] and [`session_window`] for the windows records define.
//! - [`dead_letter`]: the headers a dead letter carries.
//! - [`stream_thread`]: the worker threads tasks run on.

pub mod aggregate;
pub mod dead_letter;
pub mod session_window;
pub mod sliding_window;
pub mod stream_thread;
pub mod table;
pub mod testing;
pub mod windowed;

#[cfg(test)]
mod refusal_tests;
#[cfg(test)]
mod window_tests;

use std::sync::Arc;

use crate::error::{PluginError, RunError};
use crate::kafka::topic_limits::Refusal;
use crate::plugin::frame::{self, Decoded, Outcome};
use crate::plugin::{Plugin, PluginInstance};
use crate::record::{Record, RecordRef};
use crate::state::task_state::{StateContext, TaskStores};
use crate::time::{Clock, InvalidTimestamp, StreamTime, SystemClock, TimestampKind};
use crate::topology::{Aggregation, ErrorPolicy, NodeId, Operation, Topology};
use dead_letter::{Failure, Kind, Origin};

/// A record read from a source topic.
#[derive(Debug, Clone)]
pub struct InputRecord {
    /// Source topic.
    pub topic: Arc<str>,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// Who set `record.timestamp`: the producer or the broker.
    pub timestamp_kind: TimestampKind,
    /// The record.
    pub record: Record,
}

/// Where a task's records go.
pub trait Output {
    /// Sends one record to `topic`.
    fn send(&mut self, topic: &str, record: RecordRef<'_>) -> Result<(), RunError>;

    /// Why `topic` would refuse `record` (too large, a timestamp out of
    /// its range), if it would: the record then meets the `refused`
    /// policy instead of failing its neighbours with it.
    fn refusal(&self, topic: &str, record: RecordRef<'_>) -> Option<Refusal> {
        let _ = (topic, record);
        None
    }
}

impl Output for Vec<(String, Record)> {
    fn send(&mut self, topic: &str, record: RecordRef<'_>) -> Result<(), RunError> {
        self.push((topic.to_owned(), record.to_owned_record()));
        Ok(())
    }
}

/// Counts of one batch, or of a whole run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Source records processed.
    pub records_in: u64,
    /// Records written to sinks.
    pub records_out: u64,
    /// Records a plugin rejected.
    pub rejected: u64,
    /// Records a plugin trapped on.
    pub trapped: u64,
    /// Records written to the dead-letter topic.
    pub dead_letters: u64,
    /// Outputs a sink topic would refuse (too large, or a timestamp out of
    /// its range), handled by the `refused` policy.
    pub refused: u64,
    /// Source records not processed again: their effects were restored.
    pub skipped: u64,
    /// Source records whose event time was below the stream time.
    pub out_of_order: u64,
    /// Source records without a valid timestamp (dropped, or given the
    /// stream time, by the `invalid-timestamp` policy).
    pub invalid_timestamps: u64,
    /// Of those, the records dropped (`invalid-timestamp = "skip"`): not
    /// in `records_in`.
    pub timestamp_dropped: u64,
    /// Records a windowed aggregation dropped: every window they fall into
    /// had closed (stream time at or past end + grace). With `late =
    /// "dlq"`, these are the records dead-lettered.
    pub late: u64,
    /// Records some of whose windows took them while others had closed
    /// (hopping and sliding windows): added to the open ones, counted
    /// here, never dead-lettered.
    pub partly_late: u64,
    /// (record, window) pairs dropped because the window had closed, for
    /// late and partly late records alike: Kafka Streams' dropped-records
    /// count.
    pub late_windows: u64,
}

impl Counts {
    /// Adds `other` to `self`.
    pub fn add(&mut self, other: &Counts) {
        self.records_in += other.records_in;
        self.records_out += other.records_out;
        self.rejected += other.rejected;
        self.trapped += other.trapped;
        self.dead_letters += other.dead_letters;
        self.refused += other.refused;
        self.skipped += other.skipped;
        self.out_of_order += other.out_of_order;
        self.invalid_timestamps += other.invalid_timestamps;
        self.timestamp_dropped += other.timestamp_dropped;
        self.late += other.late;
        self.partly_late += other.partly_late;
        self.late_windows += other.late_windows;
    }
}

struct StepRuntime {
    /// `None` for a step without a plugin (the built-in count).
    plugin: Option<Plugin>,
    config: Vec<(String, String)>,
    instance: Option<PluginInstance>,
    /// An aggregation's store, as an index into the task's stores.
    store: Option<usize>,
    /// The stores a processor declared: (index, writable).
    state: Vec<(usize, bool)>,
}

impl StepRuntime {
    fn instance(&mut self) -> Result<&mut PluginInstance, PluginError> {
        if self.instance.is_none() {
            let plugin = self.plugin.as_ref().expect("only plugin steps are called");
            self.instance = Some(plugin.instantiate(&self.config)?);
        }
        Ok(self.instance.as_mut().expect("set above"))
    }

    fn digest(&self) -> &str {
        self.plugin.as_ref().map_or("built-in", |p| p.digest())
    }
}

/// One partition's processing: plugin instances, stores, and the DAG walk.
pub struct Task {
    id: i32,
    topology: Arc<Topology>,
    steps: Vec<StepRuntime>,
    /// Per source: its timestamp-extractor plugin, if it has one.
    extractors: Vec<Option<StepRuntime>>,
    stores: Option<TaskStores>,
    stream_time: StreamTime,
    /// During a windowed aggregation's call: each key's window, whose
    /// aggregate is read and written.
    window: Option<Arc<windowed::CallWindows>>,
    /// The wall clock (`close.idle.after`, wall-clock event times).
    clock: Arc<dyn Clock>,
    /// Wall-clock time of the last batch, and whether the windows have
    /// been closed for idleness since.
    last_input_at: Option<i64>,
    idle_closed: bool,
    frame_buf: Vec<u8>,
    aggregates_buf: Vec<u8>,
}

impl std::fmt::Debug for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The batch being processed, where its records go, and its counts.
struct BatchContext<'a> {
    batch: &'a [InputRecord],
    /// Per record of `batch`: false when every store already holds its
    /// effects (restored), or its timestamp was invalid and skipped, so it
    /// is not processed.
    live: Vec<bool>,
    /// Per record of `batch`: its event time.
    times: Vec<i64>,
    /// Per record of `batch`: the stream time once it was seen.
    stream_at: Vec<i64>,
    out: &'a mut dyn Output,
    counts: Counts,
}

/// What one step produced for a batch: its decoded output frames, and
/// each output record as (source record index, frame, record in frame).
#[derive(Default)]
struct StepOut {
    frames: Vec<Decoded>,
    items: Vec<(usize, u32, u32)>,
}

impl StepOut {
    /// Its records, with their source index.
    fn records(&self) -> Vec<(usize, RecordRef<'_>)> {
        self.items
            .iter()
            .map(|&(origin, f, k)| (origin, self.frames[f as usize].record(k as usize)))
            .collect()
    }

    /// Takes one call's output: records of accepted inputs are kept;
    /// rejected inputs are returned as (position in `chunk`, code, message).
    fn absorb(
        &mut self,
        decoded: Decoded,
        chunk: &[(usize, RecordRef<'_>)],
    ) -> Vec<(usize, String, String)> {
        let frame = self.frames.len() as u32;
        let mut rejected = Vec::new();
        for (j, ((origin, _), outcome)) in chunk.iter().zip(&decoded.outcomes).enumerate() {
            match outcome {
                Outcome::Ok(range) => self
                    .items
                    .extend(range.clone().map(|k| (*origin, frame, k as u32))),
                Outcome::Rejected { code, message } => {
                    rejected.push((j, code.clone(), message.clone()))
                }
            }
        }
        self.frames.push(decoded);
        rejected
    }
}

impl Task {
    /// Creates the task for partition `id`: instantiates every step's
    /// plugin and every source's extractor plugin, and opens and restores
    /// the stores of a stateful topology (`state` is needed then).
    pub fn new(
        id: i32,
        topology: Arc<Topology>,
        plugins: &crate::Plugins,
        state: Option<&StateContext>,
    ) -> Result<Task, RunError> {
        let names: Vec<&str> = topology.stores().map(|(name, _)| name).collect();
        let stores = match (names.is_empty(), state) {
            (true, _) => None,
            (false, Some(ctx)) => Some(TaskStores::open(ctx, id, &names)?),
            (false, None) => {
                return Err(RunError::Thread(
                    "a stateful topology needs a state context".into(),
                ));
            }
        };
        let mut extractors = Vec::with_capacity(topology.sources.len());
        for (plugin, source) in plugins.extractors.iter().zip(&topology.sources) {
            extractors.push(match plugin {
                None => None,
                Some(p) => {
                    let mut rt = StepRuntime {
                        plugin: Some(p.clone()),
                        config: source.timestamp_config.clone(),
                        instance: None,
                        store: None,
                        state: Vec::new(),
                    };
                    rt.instance()?;
                    Some(rt)
                }
            });
        }
        let mut steps = Vec::with_capacity(plugins.steps.len());
        for (plugin, step) in plugins.steps.iter().zip(&topology.steps) {
            let mut rt = StepRuntime {
                plugin: plugin.clone(),
                config: step.config.clone(),
                instance: None,
                store: step
                    .store()
                    .and_then(|name| stores.as_ref().and_then(|s| s.index(name))),
                state: step
                    .state
                    .iter()
                    .filter_map(|u| {
                        let i = stores.as_ref()?.index(&u.name)?;
                        Some((i, u.writable))
                    })
                    .collect(),
            };
            if rt.plugin.is_some() {
                rt.instance()?;
            }
            steps.push(rt);
        }
        Ok(Task {
            id,
            topology,
            steps,
            extractors,
            stores,
            stream_time: StreamTime::default(),
            window: None,
            clock: Arc::new(SystemClock),
            last_input_at: None,
            idle_closed: false,
            frame_buf: Vec::new(),
            aggregates_buf: Vec::new(),
        })
    }

    /// Replaces step `step`'s plugin: the next call batch goes to a fresh
    /// instance of `plugin`. The step's stores stay as they are.
    pub fn swap_plugin(&mut self, step: usize, plugin: Plugin) {
        let rt = &mut self.steps[step];
        rt.plugin = Some(plugin);
        rt.instance = None;
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

    /// The partition number this task covers.
    pub fn id(&self) -> i32 {
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
        let result = self.process_inner(batch, false, out);
        if let Some(stores) = &mut self.stores {
            match &result {
                Ok(_) => stores.accept(stream_thread::next_offsets(batch)),
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
            task = self.id,
            idle_ms = idle,
            stream_time = self.stream_time.get(),
            "no input for `close.idle.after`: closing every open window"
        );
        // One placeholder record gives the emitted results an origin; it
        // is not live, so no source passes it on.
        let tick = [InputRecord {
            topic: Arc::from(""),
            partition: self.id,
            offset: -1,
            timestamp_kind: TimestampKind::NotAvailable,
            record: Record::default(),
        }];
        let result = self.process_inner(&tick, true, out);
        if let Some(stores) = &mut self.stores {
            match &result {
                Ok(_) => stores.accept(std::iter::empty()),
                Err(_) => stores.discard(),
            }
        }
        result.map(Some)
    }

    fn process_inner(
        &mut self,
        batch: &[InputRecord],
        tick: bool,
        out: &mut dyn Output,
    ) -> Result<Counts, RunError> {
        let topology = Arc::clone(&self.topology);
        let live: Vec<bool> = match &self.stores {
            _ if tick => vec![false; batch.len()],
            None => vec![true; batch.len()],
            Some(stores) => batch
                .iter()
                .map(|r| !stores.all_applied(&r.topic, r.partition, r.offset))
                .collect(),
        };
        let skipped = if tick {
            0
        } else {
            live.iter().filter(|l| !**l).count() as u64
        };
        let records_in = live.iter().filter(|l| **l).count() as u64;
        let mut ctx = BatchContext {
            batch,
            live,
            times: Vec::with_capacity(batch.len()),
            stream_at: Vec::with_capacity(batch.len()),
            out,
            counts: Counts {
                records_in,
                skipped,
                ..Counts::default()
            },
        };
        self.event_times(&topology, &mut ctx)?;
        // Tables first: their changes are what their consumers see.
        let mut tables: Vec<Option<StepOut>> = Vec::with_capacity(topology.sources.len());
        for (i, source) in topology.sources.iter().enumerate() {
            tables.push(match source.table {
                None => None,
                Some(_) => {
                    let inputs = node_records(
                        &topology,
                        batch,
                        &ctx.live,
                        &ctx.times,
                        &[],
                        &[],
                        NodeId::Source(i),
                    );
                    Some(self.materialize(i, inputs, &mut ctx)?)
                }
            });
        }
        let mut outs: Vec<StepOut> = Vec::with_capacity(self.steps.len());
        for (i, step) in topology.steps.iter().enumerate() {
            let produced = {
                let inputs: Vec<(usize, RecordRef<'_>)> = step
                    .inputs
                    .iter()
                    .flat_map(|&n| {
                        node_records(&topology, batch, &ctx.live, &ctx.times, &tables, &outs, n)
                    })
                    .collect();
                match &step.op {
                    Operation::Process(_) if !self.steps[i].state.is_empty() => {
                        let inputs = self.unapplied(i, inputs, &ctx);
                        self.run_step(i, &inputs, &mut ctx)?
                    }
                    Operation::Process(_) => self.run_step(i, &inputs, &mut ctx)?,
                    Operation::Aggregate {
                        window: Some(_), ..
                    } => self.run_windowed(i, inputs, &mut ctx)?,
                    Operation::Aggregate {
                        logic: Aggregation::Plugin(_),
                        ..
                    } => self.run_aggregate(i, inputs, &mut ctx)?,
                    Operation::Aggregate {
                        logic: Aggregation::Count,
                        ..
                    } => self.run_count(i, inputs, &mut ctx)?,
                }
            };
            outs.push(produced);
        }
        for sink in &topology.sinks {
            for &node in &sink.inputs {
                for (origin, record) in node_records(
                    &topology, batch, &ctx.live, &ctx.times, &tables, &outs, node,
                ) {
                    if let Some(refusal) = ctx.out.refusal(&sink.topic, record) {
                        let message = refusal.to_string();
                        let at = (origin, record);
                        self.dead(node, Kind::Refused, refusal.code(), &message, at, &mut ctx)?;
                        continue;
                    }
                    ctx.out.send(&sink.topic, record)?;
                    ctx.counts.records_out += 1;
                }
            }
        }
        Ok(ctx.counts)
    }

    /// Runs a plugin step over `inputs` in call batches, replaying a call
    /// batch that trapped one record at a time.
    fn run_step(
        &mut self,
        step: usize,
        inputs: &[(usize, RecordRef<'_>)],
        ctx: &mut BatchContext<'_>,
    ) -> Result<StepOut, RunError> {
        let max = self.topology.processing.max_batch_records;
        let mut produced = StepOut::default();
        for chunk in inputs.chunks(max) {
            let Some(trap) = self.call_and_absorb(step, chunk, &mut produced, ctx)? else {
                continue;
            };
            tracing::warn!(
                task = self.id,
                step = %self.topology.steps[step].name,
                records = chunk.len(),
                "plugin trapped ({trap}); replaying the call batch one record at a time on fresh instances"
            );
            for one in chunk.chunks(1) {
                if let Some(trap) = self.call_and_absorb(step, one, &mut produced, ctx)? {
                    self.dead(NodeId::Step(step), Kind::Trap, "trap", &trap.0, one[0], ctx)?;
                }
            }
        }
        Ok(produced)
    }

    /// Calls the plugin with `chunk`, keeps what it produced and
    /// dead-letters what it rejected; returns the trap, if it trapped.
    fn call_and_absorb(
        &mut self,
        step: usize,
        chunk: &[(usize, RecordRef<'_>)],
        produced: &mut StepOut,
        ctx: &mut BatchContext<'_>,
    ) -> Result<Option<crate::plugin::Trap>, RunError> {
        match self.call(step, chunk)? {
            Ok(decoded) => {
                for (j, code, message) in produced.absorb(decoded, chunk) {
                    self.dead(
                        NodeId::Step(step),
                        Kind::Rejected,
                        &code,
                        &message,
                        chunk[j],
                        ctx,
                    )?;
                }
                Ok(None)
            }
            Err(trap) => Ok(Some(trap)),
        }
    }

    /// Calls the step's plugin once. The outer error is fatal; the inner
    /// `Err` is a trap, after which the instance has been discarded.
    fn call(
        &mut self,
        step: usize,
        chunk: &[(usize, RecordRef<'_>)],
    ) -> Result<Result<Decoded, crate::plugin::Trap>, RunError> {
        let topology = Arc::clone(&self.topology);
        let name = &topology.steps[step].name;
        let records: Vec<RecordRef<'_>> = chunk.iter().map(|(_, r)| *r).collect();
        let buf = std::mem::take(&mut self.frame_buf);
        let input = frame::encode(buf, records.iter().copied());
        let aggregating = self.steps[step].store.is_some();
        let result = if aggregating {
            let aggregates = self.aggregates_frame(step, &records)?;
            let result = self.steps[step].instance()?.add(&aggregates, &input);
            self.aggregates_buf = aggregates;
            result
        } else if self.steps[step].state.is_empty() {
            self.steps[step].instance()?.process(&input)
        } else {
            self.process_with_state(step, &input)?
        };
        self.frame_buf = input;
        let rt = &mut self.steps[step];
        match result {
            Ok(Ok(output)) => {
                let decoded =
                    frame::decode(output, &records).map_err(|message| RunError::Protocol {
                        step: name.clone(),
                        message,
                    })?;
                if aggregating {
                    self.store_aggregates(step, &records, &decoded)?;
                } else if topology.steps[step].keeps_key
                    && let Some(trap) = changed_key(name, &records, &decoded)
                {
                    return Ok(Err(trap));
                }
                Ok(Ok(decoded))
            }
            Ok(Err((code, message))) => Err(RunError::Protocol {
                step: name.clone(),
                message: format!("the plugin refused the whole call batch: {code}: {message}"),
            }),
            Err(trap) => {
                rt.instance = None;
                Ok(Err(trap))
            }
        }
    }

    /// Finds each record's event time, advances stream time (records
    /// skipped as already applied too, so that a restart counts the same
    /// records as out of order), and applies the `invalid-timestamp` policy.
    fn event_times(
        &mut self,
        topology: &Topology,
        ctx: &mut BatchContext<'_>,
    ) -> Result<(), RunError> {
        let now = self.clock.now_ms();
        let mut from_plugins = self.plugin_times(topology, ctx.batch)?;
        for (i, r) in ctx.batch.iter().enumerate() {
            let Some(source) = topology.sources.iter().find(|s| *s.topic == *r.topic) else {
                let t = r.record.timestamp.unwrap_or(0);
                ctx.times.push(t);
                ctx.stream_at.push(t);
                continue;
            };
            let extracted = match from_plugins[i].take() {
                Some(t) => {
                    t.and_then(|t| crate::time::event_time(t, "the extractor plugin's time"))
                }
                None => source.timestamp.extract(
                    r.record.timestamp,
                    r.timestamp_kind,
                    r.record.value.as_deref(),
                    now,
                ),
            };
            let time = match extracted {
                Ok(t) => {
                    if self.stream_time.observe(t) && ctx.live[i] {
                        ctx.counts.out_of_order += 1;
                    }
                    Some(t)
                }
                Err(reason) => {
                    let fallback = match source.invalid_timestamp {
                        InvalidTimestamp::Fail => {
                            return Err(RunError::InvalidTimestamp {
                                source_name: source.name.clone(),
                                topic: r.topic.to_string(),
                                partition: r.partition,
                                offset: r.offset,
                                reason,
                            });
                        }
                        InvalidTimestamp::Skip => None,
                        InvalidTimestamp::UsePartitionTime => self.stream_time.get(),
                    };
                    if ctx.live[i] {
                        ctx.counts.invalid_timestamps += 1;
                        tracing::debug!(topic = %r.topic, partition = r.partition, offset = r.offset, "invalid timestamp: {reason}");
                    }
                    fallback
                }
            };
            match time {
                Some(t) => ctx.times.push(t),
                None => {
                    if ctx.live[i] {
                        ctx.live[i] = false;
                        ctx.counts.records_in -= 1;
                        ctx.counts.timestamp_dropped += 1;
                    }
                    ctx.times.push(0);
                }
            }
            ctx.stream_at
                .push(self.stream_time.get().unwrap_or(ctx.times[i]));
        }
        Ok(())
    }

    /// Calls the extractor plugins, once per source that has one, with
    /// that source's records of the batch; per batch record, the plugin's
    /// answer (`None` for records of other sources).
    #[allow(clippy::type_complexity)]
    fn plugin_times(
        &mut self,
        topology: &Topology,
        batch: &[InputRecord],
    ) -> Result<Vec<Option<Result<i64, String>>>, RunError> {
        let mut out: Vec<Option<Result<i64, String>>> = vec![None; batch.len()];
        for (s, source) in topology.sources.iter().enumerate() {
            let Some(rt) = self.extractors[s].as_mut() else {
                continue;
            };
            let at: Vec<usize> = (0..batch.len())
                .filter(|&i| *batch[i].topic == *source.topic)
                .collect();
            if at.is_empty() {
                continue;
            }
            let input = frame::encode(
                std::mem::take(&mut self.frame_buf),
                at.iter().map(|&i| batch[i].record.as_ref()),
            );
            let protocol = |message: String| RunError::Protocol {
                step: format!("{} (timestamp extractor)", source.name),
                message,
            };
            let result = rt.instance()?.extract(&input);
            self.frame_buf = input;
            let times = match result {
                Ok(Ok(times)) => times,
                Ok(Err((code, message))) => {
                    return Err(protocol(format!(
                        "the extractor refused the whole call batch: {code}: {message}"
                    )));
                }
                Err(trap) => {
                    rt.instance = None;
                    return Err(protocol(format!("the extractor trapped: {trap}")));
                }
            };
            if times.len() != at.len() {
                return Err(protocol(format!(
                    "the extractor returned {} times for {} records",
                    times.len(),
                    at.len()
                )));
            }
            for (&i, t) in at.iter().zip(times) {
                out[i] = Some(if t >= 0 {
                    Ok(t)
                } else {
                    Err("the extractor plugin found no valid time".to_owned())
                });
            }
        }
        Ok(out)
    }

    /// Calls a processor with the stores it declared lent to its instance.
    fn process_with_state(
        &mut self,
        step: usize,
        input: &[u8],
    ) -> Result<crate::plugin::instance::CallResult, RunError> {
        let Task { steps, stores, .. } = self;
        let rt = &mut steps[step];
        let stores = stores.as_mut().expect("a step with state has stores");
        let state = rt.state.clone();
        let instance = rt.instance()?;
        instance.lend(
            state
                .iter()
                .map(|&(i, writable)| crate::plugin::host::state::LentStore {
                    name: stores.name(i).to_owned(),
                    buffer: stores.lend(i),
                    writable,
                })
                .collect(),
        );
        let result = instance.process(input);
        for (lent, &(i, _)) in instance.take_back().into_iter().zip(&state) {
            stores.give_back(i, lent.buffer);
        }
        Ok(result)
    }

    /// The inputs of `step` whose effects its stores do not all hold yet
    /// (restored from the changelog); the others are not applied again.
    fn unapplied<'r>(
        &self,
        step: usize,
        inputs: Vec<(usize, RecordRef<'r>)>,
        ctx: &BatchContext<'_>,
    ) -> Vec<(usize, RecordRef<'r>)> {
        let rt = &self.steps[step];
        let written: Vec<usize> = rt
            .store
            .into_iter()
            .chain(rt.state.iter().filter(|(_, w)| *w).map(|(i, _)| *i))
            .collect();
        let Some(stores) = self.stores.as_ref() else {
            return inputs;
        };
        if written.is_empty() {
            return inputs;
        }
        inputs
            .into_iter()
            .filter(|(origin, _)| {
                let r = &ctx.batch[*origin];
                !written
                    .iter()
                    .all(|&i| stores.has_applied(i, &r.topic, r.partition, r.offset))
            })
            .collect()
    }

    /// Applies the error policy to a record the step rejected or trapped on.
    /// `node` is the step, or the table source, that refused the record.
    fn dead(
        &self,
        node: NodeId,
        kind: Kind,
        code: &str,
        message: &str,
        (origin, record): (usize, RecordRef<'_>),
        ctx: &mut BatchContext<'_>,
    ) -> Result<(), RunError> {
        let source = &ctx.batch[origin];
        match kind {
            Kind::Rejected => ctx.counts.rejected += 1,
            Kind::Trap => ctx.counts.trapped += 1,
            Kind::Refused => ctx.counts.refused += 1,
            Kind::Late => {}
        }
        let t = &self.topology;
        let (policy, policy_name) = match kind {
            Kind::Rejected => (t.errors.rejected, "rejected"),
            Kind::Trap => (t.errors.trap, "trap"),
            Kind::Refused => (t.errors.refused, "refused"),
            // Only dead-lettered when the step's `late` policy is `dlq`.
            Kind::Late => (ErrorPolicy::Dlq, "late"),
        };
        let step_name = t.node_name(node);
        let digest = match node {
            NodeId::Step(i) => self.steps[i].digest(),
            NodeId::Source(_) => "built-in",
        };
        match policy {
            ErrorPolicy::Skip => {
                tracing::debug!(step = %step_name, topic = %source.topic, partition = source.partition, offset = source.offset, "{policy_name}: {code}: {message}; skipped");
                Ok(())
            }
            ErrorPolicy::Dlq => {
                let letter = dead_letter::letter(
                    record,
                    &Failure {
                        kind,
                        code,
                        message,
                        step: step_name,
                        digest,
                    },
                    &Origin {
                        topic: &source.topic,
                        partition: source.partition,
                        offset: source.offset,
                    },
                );
                let mut letter = letter;
                let dlq = &t.errors.dlq_topic;
                if let Some(refusal) = ctx.out.refusal(dlq, letter.as_ref()) {
                    dead_letter::fit(&mut letter, &refusal);
                    if let Some(again) = ctx.out.refusal(dlq, letter.as_ref()) {
                        return Err(RunError::RecordFailed {
                            step: step_name.to_owned(),
                            outcome: "could not dead-letter",
                            policy: policy_name,
                            topic: source.topic.to_string(),
                            partition: source.partition,
                            offset: source.offset,
                            reason: format!("{code}: {message}; and the dead letter: {again}"),
                        });
                    }
                }
                ctx.out.send(dlq, letter.as_ref())?;
                ctx.counts.dead_letters += 1;
                Ok(())
            }
            ErrorPolicy::Fail => Err(RunError::RecordFailed {
                step: step_name.to_owned(),
                outcome: match kind {
                    Kind::Rejected => "rejected",
                    Kind::Trap => "trapped on",
                    Kind::Refused => "made an output its sink would refuse from",
                    Kind::Late => "was too late for",
                },
                policy: policy_name,
                topic: source.topic.to_string(),
                partition: source.partition,
                offset: source.offset,
                reason: format!("{code}: {message}"),
            }),
        }
    }
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

/// For a step declared `key = "kept"`: the first output whose key is not
/// its input's, as a trap (the plugin broke the step's promise; only the
/// record it came from fails, when the call is replayed one at a time).
fn changed_key(
    step: &str,
    inputs: &[RecordRef<'_>],
    decoded: &Decoded,
) -> Option<crate::plugin::Trap> {
    let text = |k: Option<&[u8]>| match k {
        Some(k) => format!("`{}`", String::from_utf8_lossy(k)),
        None => "null".to_owned(),
    };
    decoded
        .outcomes
        .iter()
        .zip(inputs)
        .find_map(|(outcome, input)| match outcome {
            Outcome::Ok(range) => range
                .clone()
                .map(|j| decoded.record(j).key)
                .find(|&key| key != input.key)
                .map(|key| {
                    crate::plugin::Trap(format!(
                        "key: step `{step}` declares key = \"kept\", but its plugin changed a key from {} to {}",
                        text(input.key),
                        text(key)
                    ))
                }),
            Outcome::Rejected { .. } => None,
        })
}
