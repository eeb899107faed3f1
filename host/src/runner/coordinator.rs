//! The coordinator: what the polling thread and the rebalance callback
//! share. It batches polled records per task, dispatches them to stream
//! threads, collects results, and commits.
//!
//! Commit protocol (at-least-once): a stream thread reports a batch done
//! only after every output of it has been handed to the producer; a commit
//! flushes the producer (every output acknowledged) and only then commits
//! the offsets of batches reported done.
//!
//! With state stores, a commit first waits for every batch in flight, then
//! runs the store phases on every stream thread — changelog records, flush,
//! applied markers, flush, local write (see [`crate::state::task_state`]) —
//! and only then commits the offsets, which the markers cover exactly.
//!
//! Exactly-once: the commit waits for every batch in flight, sends the
//! changelog records and markers, and commits the producer's transaction
//! with the offsets in it; only then are the stores written locally. A
//! crash before the transaction commits aborts it: its outputs are never
//! read by `read_committed` consumers, its changelog records are never
//! restored, and the input is processed again.
//!
//! A transaction that cannot complete (a frozen or unreachable broker, a
//! fenced producer) fails the run's current attempt; the run loop (see
//! [`super::run`]) then starts over with a new producer and consumer from
//! the last committed offsets. Once a commit has failed or been aborted,
//! this coordinator commits nothing more (see [`Coordinator::abort`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use crossbeam_channel::{Receiver, Sender};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::table_wait::TableWaits;
use crate::error::{KafkaError, RunError};
use crate::fault;
use crate::kafka::producer::OutputProducer;
use crate::task::stream_thread::{Done, Phase, StreamThread, Work};
use crate::task::{Counts, InputRecord, TaskId};
use crate::time::StreamTime;

/// How long reading committed offsets at assignment may take (librdkafka
/// keeps this timeout).
const COMMITTED_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A stream time committed with a (topic, partition)'s offset.
type CommittedTime = ((Arc<str>, i32), i64);

/// Which task a source record belongs to: its topic's sub-topology and
/// its partition number.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    /// The sub-topology of each source topic; empty when there is one.
    of_topic: HashMap<String, usize>,
}

impl Routes {
    /// The routes of `topology`'s sources.
    pub fn new(topology: &crate::topology::Topology) -> Routes {
        let of_topic = match topology.subtopologies.len() {
            0 | 1 => HashMap::new(),
            _ => (topology.subtopologies.iter().enumerate())
                .flat_map(|(n, sub)| {
                    (sub.sources.iter()).map(move |&i| (topology.sources[i].topic.clone(), n))
                })
                .collect(),
        };
        Routes { of_topic }
    }

    /// The task of `partition` of `topic`.
    pub fn task(&self, topic: &str, partition: i32) -> TaskId {
        TaskId {
            subtopology: self.of_topic.get(topic).copied().unwrap_or(0),
            partition,
        }
    }
}

/// The stream thread of `task`, of `threads`: a sub-topology's partitions
/// spread over the threads, each sub-topology starting on another.
pub fn thread_of(task: TaskId, threads: usize) -> usize {
    (task.partition as usize + task.subtopology) % threads
}

/// State shared by the poll loop and the rebalance callback.
pub struct Coordinator {
    pub(super) threads: Vec<StreamThread>,
    done: Receiver<Done>,
    producer: Arc<OutputProducer>,
    max_batch: usize,
    /// Whether tasks keep state (commits then run the store phases).
    stateful: bool,
    pending: BTreeMap<TaskId, Vec<InputRecord>>,
    /// The sub-topology of each source topic (empty with only one).
    routes: Routes,
    /// Joins' streams held back until their tables catch up.
    pub(super) table_waits: TableWaits,
    in_flight: usize,
    /// Next offset to commit, per (topic, partition), of finished batches.
    processed: HashMap<(Arc<str>, i32), i64>,
    /// What the last commit committed.
    committed: HashMap<(Arc<str>, i32), i64>,
    /// Each task's stream time, committed with its offsets.
    stream_times: HashMap<TaskId, i64>,
    /// The stream time the last commit carried, per (topic, partition).
    committed_times: HashMap<(Arc<str>, i32), i64>,
    /// Totals over the run.
    pub(super) counts: Counts,
    /// The first fatal error; once set, nothing more is dispatched.
    pub(super) failure: Option<RunError>,
    /// Paused by request or quarantine: partitions assigned by a rebalance
    /// are paused as they arrive.
    pub(super) paused: bool,
    /// Set once the attempt is over (aborted, or failed): a revocation
    /// during the consumer's close must not commit what `processed` holds,
    /// since its outputs were aborted.
    ended: bool,
    /// Transactions committed with offsets.
    pub(super) commits: u64,
    /// The recovery this attempt is, announced at its first commit.
    pub(super) recovery: Option<u32>,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("in_flight", &self.in_flight)
            .field("processed", &self.processed)
            .finish_non_exhaustive()
    }
}

impl Coordinator {
    pub(super) fn new(
        threads: Vec<StreamThread>,
        done: Receiver<Done>,
        producer: Arc<OutputProducer>,
        max_batch: usize,
        stateful: bool,
        routes: Routes,
        table_waits: TableWaits,
    ) -> Self {
        Coordinator {
            threads,
            done,
            producer,
            max_batch,
            stateful,
            pending: BTreeMap::new(),
            routes,
            table_waits,
            in_flight: 0,
            processed: HashMap::new(),
            committed: HashMap::new(),
            stream_times: HashMap::new(),
            committed_times: HashMap::new(),
            counts: Counts::default(),
            failure: None,
            paused: false,
            ended: false,
            commits: 0,
            recovery: None,
        }
    }

    /// Adds a polled record; a full call batch is dispatched at once.
    pub(super) fn push(&mut self, record: InputRecord) {
        let task = self.routes.task(&record.topic, record.partition);
        let batch = self.pending.entry(task).or_default();
        batch.push(record);
        if batch.len() >= self.max_batch {
            let records = std::mem::take(batch);
            self.dispatch(task, records);
        }
    }

    /// Dispatches every partial batch.
    pub(super) fn dispatch_all(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        for (task, records) in pending {
            if !records.is_empty() {
                self.dispatch(task, records);
            }
        }
    }

    fn dispatch(&mut self, task: TaskId, records: Vec<InputRecord>) {
        if self.failure.is_some() {
            return;
        }
        let thread = &self.threads[thread_of(task, self.threads.len())];
        if thread.work.send(Work::Batch { task, records }).is_err() {
            self.fail(RunError::Thread("a stream thread stopped".into()));
            return;
        }
        self.in_flight += 1;
    }

    /// Takes finished batches; with `block`, waits until none is in flight.
    pub(super) fn collect(&mut self, block: bool) {
        loop {
            let done = if block && self.in_flight > 0 {
                match self.done.recv() {
                    Ok(d) => d,
                    Err(_) => {
                        self.fail(RunError::Thread("stream threads stopped".into()));
                        return;
                    }
                }
            } else {
                match self.done.try_recv() {
                    Ok(d) => d,
                    Err(_) => return,
                }
            };
            self.in_flight -= 1;
            match done.result {
                Ok(c) => {
                    // A failed batch's stream time is not kept: it would
                    // be committed with the offsets before the batch, and
                    // a restart would judge the batch's own records late.
                    if let Some(t) = done.stream_time {
                        self.stream_times.insert(done.task, t);
                    }
                    self.counts.add(&c);
                    for (topic, partition, next) in done.offsets {
                        let e = self.processed.entry((topic, partition)).or_insert(next);
                        *e = (*e).max(next);
                    }
                }
                Err(e) => self.fail(e),
            }
        }
    }

    fn fail(&mut self, e: RunError) {
        if self.failure.is_none() {
            // The run recovers from it by itself: see `super::run`.
            if matches!(e, RunError::Transaction(_)) {
                tracing::warn!("{e}");
            } else {
                tracing::error!("{e}");
            }
            self.failure = Some(e);
        }
    }

    /// Whether nothing waits to be processed, nothing is in flight, and
    /// consumption is not paused: a pipeline that may park.
    pub(super) fn idle(&self) -> bool {
        self.in_flight == 0 && self.pending.is_empty() && !self.paused && self.failure.is_none()
    }

    /// Dispatches what is pending and waits for every batch in flight.
    pub(super) fn drain(&mut self) {
        self.dispatch_all();
        self.collect(true);
    }

    /// Flushes the producer, then commits the offsets of finished batches.
    /// With stores, first waits for the batches in flight and commits the
    /// stores (changelogs, then local state).
    pub(super) fn commit<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Result<(), RunError> {
        if self.producer.is_transactional() {
            return self.commit_transaction(consumer);
        }
        if self.stateful {
            self.drain();
            self.flush_caches()?;
            if self.store_phase(Phase::Prepare)? {
                fault::point("changelog-sent");
                self.producer.flush()?;
                self.store_phase(Phase::Mark)?;
                self.producer.flush()?;
                fault::point("changelog-acked");
                self.store_phase(Phase::Persist)?;
                fault::point("state-written");
            }
        }
        self.producer.flush()?;
        let (tpl, times) = self.offsets_to_commit();
        if tpl.count() == 0 {
            return Ok(());
        }
        // rdkafka offers no timeout here; librdkafka bounds it: a commit
        // waits for the group coordinator at most `session.timeout.ms`
        // (once; then it fails with WaitingForCoordinator), and the
        // OffsetCommit request itself at most `socket.timeout.ms` per try,
        // for a bounded number of retries.
        match consumer.commit(&tpl, CommitMode::Sync) {
            Ok(()) => {}
            // The group is rebalancing and this member's generation is
            // over: the partitions' next owner starts from the last
            // committed offsets. Its stores skip what their changelogs
            // already hold, and outputs are at-least-once, so this is not
            // an error.
            Err(rdkafka::error::KafkaError::ConsumerCommit(
                code @ (RDKafkaErrorCode::RebalanceInProgress
                | RDKafkaErrorCode::UnknownMemberId
                | RDKafkaErrorCode::IllegalGeneration),
            )) => {
                tracing::warn!(
                    partitions = tpl.count(),
                    "offsets not committed ({code}): the group is rebalancing; the next owner resumes from the last commit"
                );
                return Ok(());
            }
            Err(e) => {
                return Err(KafkaError::Client {
                    context: "committing offsets".into(),
                    source: e,
                }
                .into());
            }
        }
        tracing::debug!(partitions = tpl.count(), "committed");
        self.committed_now(times);
        Ok(())
    }

    /// The exactly-once commit: one transaction holds the interval's
    /// outputs, changelog records, markers and offsets.
    fn commit_transaction<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Result<(), RunError> {
        self.drain();
        // A failed batch may have put part of its outputs in the open
        // transaction: it is aborted, never committed (see `abort`).
        if self.ended || self.failure.is_some() {
            return Ok(());
        }
        if self.stateful {
            self.flush_caches()?;
        }
        let stores_changed = self.stateful && self.store_phase(Phase::Prepare)?;
        if stores_changed {
            fault::point("changelog-sent");
            self.store_phase(Phase::Mark)?;
        }
        self.producer.flush()?;
        if stores_changed {
            fault::point("changelog-acked");
        }
        let (tpl, times) = self.offsets_to_commit();
        let group = consumer.group_metadata().ok_or_else(|| {
            RunError::Delivery("the consumer has no group metadata for the transaction".into())
        })?;
        let partitions = tpl.count();
        self.producer.commit_transaction(tpl, group)?;
        tracing::debug!(partitions, "transaction committed");
        if partitions > 0 {
            self.commits += 1;
            if let Some(recovery) = self.recovery.take() {
                tracing::info!(
                    recovery,
                    "exactly-once: recovered: transactions commit again, resumed from the last committed offsets"
                );
            }
        }
        if stores_changed {
            self.store_phase(Phase::Persist)?;
            fault::point("state-written");
        }
        self.committed_now(times);
        Ok(())
    }

    /// Whether commits are transactions (exactly-once).
    pub(super) fn transactional(&self) -> bool {
        self.producer.is_transactional()
    }

    /// Exactly-once, after a failure: aborts the open transaction, so that
    /// nothing since the last commit is seen; the input is processed again
    /// on restart. From now on nothing is committed. An abandoned producer
    /// (its transaction in an unknown state) is not asked: the broker
    /// aborts its transaction after `transaction.timeout.ms`, or as soon
    /// as a producer with the same `transactional.id` starts.
    pub(super) fn abort(&mut self) -> Result<(), RunError> {
        self.ended = true;
        self.drain();
        if self.producer.is_abandoned() {
            tracing::warn!(
                "the transaction is left to the broker to abort: the input since the last commit is processed again"
            );
            return Ok(());
        }
        self.producer.abort_transaction()?;
        tracing::warn!("transaction aborted: the input since the last commit is processed again");
        Ok(())
    }

    /// Ends the attempt without aborting (a failure under at-least-once,
    /// or after the final commit): nothing more is committed.
    pub(super) fn end(&mut self) {
        self.ended = true;
    }

    /// The offsets (with stream times) that changed since the last commit.
    fn offsets_to_commit(&self) -> (TopicPartitionList, Vec<CommittedTime>) {
        let mut tpl = TopicPartitionList::new();
        let mut times = Vec::new();
        for ((topic, partition), &next) in &self.processed {
            let key = (Arc::clone(topic), *partition);
            let task = self.routes.task(topic, *partition);
            let stream_time = self.stream_times.get(&task).copied();
            // A stream time moved without input (windows closed for
            // idleness) is committed too, with the same offset.
            if self.committed.get(&key) != Some(&next)
                || stream_time.is_some() && stream_time != self.committed_times.get(&key).copied()
            {
                let mut e = tpl.add_partition(topic, *partition);
                e.set_offset(Offset::Offset(next)).expect("valid offset");
                e.set_metadata(StreamTime::starting_at(stream_time).to_metadata());
                if let Some(t) = stream_time {
                    times.push((key, t));
                }
            }
        }
        (tpl, times)
    }

    /// Records what a successful commit committed.
    fn committed_now(&mut self, times: Vec<CommittedTime>) {
        self.committed
            .extend(self.processed.iter().map(|(k, v)| (k.clone(), *v)));
        self.committed_times.extend(times);
    }

    /// Sends every stream thread the work `ask` makes around a reply
    /// channel, and waits for each thread's answer.
    fn ask_all<T>(&self, ask: impl Fn(Sender<T>) -> Work) -> Result<Vec<T>, RunError> {
        let stopped = || RunError::Thread("a stream thread stopped".into());
        let (tx, rx) = crossbeam_channel::unbounded();
        for t in &self.threads {
            t.work.send(ask(tx.clone())).map_err(|_| stopped())?;
        }
        drop(tx);
        (0..self.threads.len())
            .map(|_| rx.recv().map_err(|_| stopped()))
            .collect()
    }

    /// Has every stream thread replace step `step`'s plugin, and waits.
    /// Call only with nothing in flight (after [`Coordinator::drain`]).
    pub(super) fn swap_plugin(
        &mut self,
        step: usize,
        plugin: &crate::plugin::Plugin,
    ) -> Result<(), RunError> {
        self.ask_all(|reply| Work::Swap {
            step,
            plugin: plugin.clone(),
            reply,
        })?;
        Ok(())
    }

    /// Has every stream thread close the windows of its idle tasks
    /// (`close.idle.after`), and waits for them.
    pub(super) fn tick(&mut self, force: bool) {
        let ticked = match self.ask_all(|reply| Work::Tick { force, reply }) {
            Ok(t) => t,
            Err(e) => return self.fail(e),
        };
        for ticked in ticked.into_iter().flatten() {
            if let Some(t) = ticked.stream_time {
                self.stream_times.insert(ticked.task, t);
            }
            match ticked.result {
                Ok(c) => self.counts.add(&c),
                Err(e) => self.fail(e),
            }
        }
    }

    /// Has every stream thread send what its tasks' record caches hold
    /// downstream (first in a commit: the stores' markers then cover
    /// outputs that were sent), and waits for them.
    fn flush_caches(&mut self) -> Result<(), RunError> {
        let mut failed = None;
        for flushed in self.ask_all(Work::Flush)?.into_iter().flatten() {
            match flushed.result {
                Ok(c) => self.counts.add(&c),
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// Runs one store phase on every stream thread and waits for all;
    /// returns whether any task had something to commit.
    fn store_phase(&mut self, phase: Phase) -> Result<bool, RunError> {
        let mut any = false;
        for answer in self.ask_all(|reply| Work::Commit(phase, reply))? {
            any |= answer?;
        }
        Ok(any)
    }

    /// Finishes and commits everything of `partitions` before they go.
    fn revoke<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        partitions: &TopicPartitionList,
    ) {
        self.drain();
        // Aborted outputs: their offsets must not be committed.
        let result = if self.ended {
            Ok(())
        } else {
            self.commit(consumer)
        };
        // A transaction refused by the rebalance (this member's generation
        // is over) and aborted: the revoked tasks are dropped before they
        // persist anything, and the partitions' next owner processes that
        // input again, exactly once. Anything else (the producer unusable,
        // or partitions kept whose work was aborted too) fails the attempt,
        // and the run starts over from the committed offsets.
        let mut aborted = None;
        let committed = match result {
            Ok(()) => !self.ended && self.failure.is_none(),
            Err(RunError::Transaction(e)) if e.producer_usable() => {
                aborted = Some(e);
                false
            }
            Err(e) => {
                self.fail(e);
                false
            }
        };
        let mut tasks: Vec<TaskId> = partitions
            .elements()
            .iter()
            .map(|e| self.routes.task(e.topic(), e.partition()))
            .collect();
        tasks.sort_unstable();
        tasks.dedup();
        let shown: Vec<String> = tasks.iter().map(TaskId::to_string).collect();
        if committed {
            tracing::info!(
                tasks = %shown.join(","),
                "partitions revoked; in-flight work finished and committed"
            );
        } else {
            tracing::info!(
                tasks = %shown.join(","),
                "partitions revoked; their uncommitted work is dropped, to be processed again from the committed offsets"
            );
        }
        self.table_waits.on_revoke(partitions);
        for e in partitions.elements() {
            let key = (Arc::<str>::from(e.topic()), e.partition());
            self.processed.remove(&key);
            self.committed.remove(&key);
            self.committed_times.remove(&key);
            let task = self.routes.task(e.topic(), e.partition());
            self.stream_times.remove(&task);
        }
        for t in &self.threads {
            let _ = t.work.send(Work::Revoke(tasks.clone()));
        }
        if let Some(e) = aborted {
            if self.processed.is_empty() {
                tracing::warn!("{e}; the partitions' next owner processes its input again");
            } else {
                self.fail(e.into());
            }
        }
    }

    /// Reads the stream times committed with the assigned partitions and
    /// hands each task its own (the largest over its partitions) before its
    /// first batch.
    fn resume_stream_times<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        assigned: &TopicPartitionList,
    ) {
        // A failed attempt starts no task that could commit.
        if self.ended || self.failure.is_some() {
            return;
        }
        let committed = match consumer.committed_offsets(assigned.clone(), COMMITTED_TIMEOUT) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(
                    "cannot read the committed stream times ({e}); tasks start without one"
                );
                return;
            }
        };
        let mut times: HashMap<TaskId, i64> = HashMap::new();
        for e in committed.elements() {
            if let Some(t) = StreamTime::from_metadata(e.metadata()) {
                let task = self.routes.task(e.topic(), e.partition());
                let at = times.entry(task).or_insert(t);
                *at = (*at).max(t);
            }
        }
        for (task, stream_time) in times {
            tracing::debug!(%task, stream_time, "stream time resumed");
            self.stream_times.insert(task, stream_time);
            let thread = &self.threads[thread_of(task, self.threads.len())];
            let _ = thread.work.send(Work::Resume { task, stream_time });
        }
    }

    /// Resumes the streams whose tables caught up (`wait-for-table`).
    pub(super) fn release_tables<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        self.table_waits
            .release(consumer, &self.processed, self.paused);
    }

    /// The committed next offset of every partition committed in this run.
    pub(super) fn committed(&self) -> &HashMap<(Arc<str>, i32), i64> {
        &self.committed
    }
}

/// The consumer's context: routes rebalance callbacks to the coordinator.
#[derive(Clone)]
pub struct RebalanceHandler {
    pub(super) coordinator: Arc<Mutex<Coordinator>>,
}

impl ClientContext for RebalanceHandler {}

impl ConsumerContext for RebalanceHandler {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                self.coordinator
                    .lock()
                    .expect("not poisoned")
                    .revoke(consumer, tpl);
            }
            Rebalance::Assign(tpl) => {
                let parts: Vec<String> = tpl
                    .elements()
                    .iter()
                    .map(|e| format!("{}/{}", e.topic(), e.partition()))
                    .collect();
                tracing::info!(partitions = %parts.join(","), "partitions assigned");
                self.coordinator
                    .lock()
                    .expect("not poisoned")
                    .resume_stream_times(consumer, tpl);
            }
            Rebalance::Error(e) => tracing::warn!("rebalance error: {e}"),
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Assign(tpl) = rebalance else {
            return;
        };
        // A paused (or quarantined) pipeline stays paused across a
        // rebalance: what it is given now is paused too. A running one
        // resumes what it is given: librdkafka keeps a partition's pause
        // across an unassign and a new assign, so a partition paused
        // before a resume that came mid-rebalance (with nothing assigned
        // to resume) would stay paused for good.
        if self.coordinator.lock().expect("not poisoned").paused {
            match consumer.pause(tpl) {
                Ok(()) => tracing::info!(
                    partitions = tpl.count(),
                    "kept paused: newly assigned partitions paused"
                ),
                Err(e) => tracing::error!("pausing newly assigned partitions: {e}"),
            }
        } else if let Err(e) = consumer.resume(tpl) {
            tracing::error!("resuming newly assigned partitions: {e}");
        }
        let mut c = self.coordinator.lock().expect("not poisoned");
        if c.table_waits.watches(tpl) {
            match consumer.committed_offsets((*tpl).clone(), COMMITTED_TIMEOUT) {
                Ok(committed) => c.table_waits.on_assign(consumer, tpl, &committed),
                Err(e) => tracing::warn!(
                    "cannot read the committed offsets of the tables ({e}); their streams are not held back"
                ),
            }
        }
    }
}
