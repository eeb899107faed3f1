//! The poll loop of one attempt, as named phases. Each round, unless told
//! to stop or a stream thread failed:
//!
//! 0. the global tables: apply what arrived on their topics
//!    ([`GlobalReader::follow`]);
//! 1. [poll](PollLoop::poll_phase): poll up to `4 × max.batch.records`
//!    records into per-task call batches, dispatch them to the stream
//!    threads, collect the batches done;
//! 2. [control](PollLoop::control_phase): carry out the swaps, pauses and
//!    resumes asked for ([`super::control`]);
//! 3. [quarantine](PollLoop::quarantine_phase): pause (or stop) once
//!    plugins trap too often ([`super::quarantine`]);
//! 4. [lag](PollLoop::lag_phase): publish the lag of a served pipeline;
//! 5. [idle close](PollLoop::idle_close_phase): ask the tasks whether their
//!    windows idled (`close.idle.after`);
//! 6. [commit](PollLoop::commit_phase): every `commit.interval.ms`, commit
//!    (see [`super::coordinator`]), and stop once `stop_at` is reached;
//! 7. [report](PollLoop::report_phase): log progress every 10 s;
//! 8. [park](PollLoop::park_phase): a served pipeline without input for
//!    a while ends the attempt to park ([`super::park`]).
//!
//! The shutdown after the last round is [`super::attempt`]'s. The
//! coordinator is shared with the rebalance callback, which runs inside
//! `consumer.poll`: no phase holds its lock across a poll.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;

use super::control::{serve_requests, set_paused};
use super::coordinator::{Coordinator, RebalanceHandler};
use super::options::RunOptions;
use super::park::{CONFIRM, Ends, watched_topics};
use super::purge::Purger;
use super::quarantine::Quarantine;
use crate::error::RunError;
use crate::kafka::client_config::ClientSettings;
use crate::kafka::consumer;
use crate::kafka::producer::OutputProducer;
use crate::plugin::Plugin;
use crate::record::Origin;
use crate::state::global_table::GlobalReader;
use crate::state::task_state::StateContext;
use crate::task::InputRecord;
use crate::time::TimestampKind;
use crate::topology::Topology;

/// How often an idle pipeline reads its topics' ends to see whether it
/// may park.
const PARK_CHECK_EVERY: Duration = Duration::from_secs(1);

/// How often a served pipeline's lag is measured.
const LAG_EVERY: Duration = Duration::from_secs(2);

/// What one attempt's poll loop carries from round to round: what the
/// start-up made, and when each periodic phase last ran.
pub(super) struct PollLoop<'a> {
    topology: Arc<Topology>,
    opts: &'a RunOptions,
    /// The producer the stream threads share.
    pub(super) producer: Arc<OutputProducer>,
    /// The stores' context (a stateful pipeline), held to the attempt's end.
    pub(super) state: Option<Arc<StateContext>>,
    /// Shared with the rebalance callback.
    pub(super) coordinator: Arc<Mutex<Coordinator>>,
    pub(super) consumer: BaseConsumer<RebalanceHandler>,
    quarantine: Quarantine,
    /// The source topics' names, shared by the records polled from them.
    topic_names: HashMap<String, Arc<str>>,
    /// The repartition topics it reads, whose records carry their origin.
    repartition_topics: HashSet<String>,
    /// Records polled per round at most.
    poll_limit: usize,
    commit_every: Duration,
    /// `close.idle.after`: how often tasks are asked whether they idled.
    tick_every: Option<Duration>,
    last_commit: Instant,
    last_report: Instant,
    last_tick: Instant,
    last_lag: Option<Instant>,
    /// `idle_close_at_end`: the idle windows were closed once caught up.
    idle_closed_at_end: bool,
    /// Deletes the committed records of repartition topics.
    purger: Option<Purger>,
    /// Follows the global tables' topics (a pipeline that has them).
    globals: Option<GlobalReader>,
    /// When the last record was polled (or the attempt started).
    last_input: Instant,
    /// With a park policy: how long without input before parking.
    park_after: Option<Duration>,
    /// The ends of the topics it reads, read once idle, and when: it
    /// parks if nothing arrives for [`CONFIRM`] after.
    park_pending: Option<(Ends, Instant)>,
    /// When the park phase may next read the topics' ends.
    next_park_check: Option<Instant>,
}

/// How an attempt's poll loop ended, when it was not a failure.
pub(super) enum Ended {
    /// Stopped as asked (or `stop_at` reached).
    Stopped,
    /// Idle: it parks with the ends of its topics ([`super::park`]).
    Parked(Ends),
}

/// Where the loop goes after the commit phase.
enum AfterCommit {
    /// On to the report phase.
    Report,
    /// Straight to the next round (idle windows closed at the end: their
    /// results are committed at the next interval).
    NextRound,
    /// `stop_at` is reached: the loop ends.
    Stop,
}

/// The coordinator, locked.
pub(super) fn lock(coordinator: &Mutex<Coordinator>) -> MutexGuard<'_, Coordinator> {
    coordinator.lock().expect("not poisoned")
}

impl<'a> PollLoop<'a> {
    /// The loop of an attempt that has started: its stream threads run
    /// behind `coordinator`, and `consumer` has subscribed to `topics`.
    pub(super) fn new(
        topology: Arc<Topology>,
        opts: &'a RunOptions,
        producer: Arc<OutputProducer>,
        state: Option<Arc<StateContext>>,
        coordinator: Arc<Mutex<Coordinator>>,
        consumer: BaseConsumer<RebalanceHandler>,
        (topics, globals): (&[String], Option<GlobalReader>),
    ) -> PollLoop<'a> {
        let quarantine = Quarantine::new(
            topology.processing.quarantine_traps,
            topology.processing.quarantine_window,
        );
        let topic_names: HashMap<String, Arc<str>> = topics
            .iter()
            .map(|t| (t.clone(), Arc::from(t.as_str())))
            .collect();
        let repartition_topics = (topology.sources.iter())
            .filter(|s| s.repartition.is_some())
            .map(|s| s.topic.clone())
            .collect();
        let poll_limit = topology.processing.max_batch_records * 4;
        let commit_every = topology.processing.commit_interval;
        let tick_every = topology
            .idle_close()
            .map(|ms| Duration::from_millis((ms as u64 / 4).clamp(10, 1_000)));
        let purger = Purger::new(
            &topology,
            &ClientSettings::new(&opts.brokers, &topology.kafka),
        );
        let park_after = opts.park.as_ref().map(|p| p.after_for(&topology));
        PollLoop {
            topology,
            opts,
            producer,
            state,
            coordinator,
            consumer,
            quarantine,
            topic_names,
            repartition_topics,
            poll_limit,
            commit_every,
            tick_every,
            last_commit: Instant::now(),
            last_report: Instant::now(),
            last_tick: Instant::now(),
            last_lag: None,
            idle_closed_at_end: false,
            purger,
            globals,
            last_input: Instant::now(),
            park_after,
            park_pending: None,
            next_park_check: None,
        }
    }

    /// Runs rounds until stopped as asked (`Ok`) or failed; `running` is
    /// what each step runs, which swaps change.
    pub(super) fn run(&mut self, running: &mut [Option<Plugin>]) -> Result<Ended, RunError> {
        loop {
            if self.opts.stop.load(Ordering::Relaxed) {
                return Ok(Ended::Stopped);
            }
            if let Some(e) = lock(&self.coordinator).failure.take() {
                return Err(e);
            }
            let mut polled = 0;
            if let Some(globals) = &mut self.globals {
                polled += globals.follow()?;
            }
            polled += self.poll_phase();
            if polled > 0 {
                self.last_input = Instant::now();
                self.park_pending = None;
            }
            self.control_phase(running)?;
            self.quarantine_phase()?;
            self.lag_phase();
            self.idle_close_phase();
            match self.commit_phase()? {
                AfterCommit::Report => self.report_phase(),
                AfterCommit::NextRound => continue,
                AfterCommit::Stop => return Ok(Ended::Stopped),
            }
            if let Some(ends) = self.park_phase() {
                return Ok(Ended::Parked(ends));
            }
        }
    }

    /// Polls up to `poll_limit` records (waiting up to 100 ms for the
    /// first), each into its task's call batch; then dispatches what is
    /// pending and collects the batches done. Returns the records polled.
    fn poll_phase(&self) -> usize {
        let mut polled = 0;
        while polled < self.poll_limit {
            let timeout = if polled == 0 {
                Duration::from_millis(100)
            } else {
                Duration::ZERO
            };
            match self.consumer.poll(timeout) {
                None => break,
                Some(Ok(m)) => {
                    let topic = self
                        .topic_names
                        .get(m.topic())
                        .cloned()
                        .unwrap_or_else(|| Arc::from(m.topic()));
                    let mut record = consumer::to_record(&m);
                    let origin = (self.repartition_topics.contains(m.topic())).then(|| {
                        Origin::of_repartitioned(&mut record, (&topic, m.partition(), m.offset()))
                    });
                    lock(&self.coordinator).push(InputRecord {
                        topic,
                        partition: m.partition(),
                        offset: m.offset(),
                        timestamp_kind: timestamp_kind(m.timestamp()),
                        record,
                        origin,
                    });
                    polled += 1;
                }
                Some(Err(e)) => tracing::warn!("consumer: {e}"),
            }
        }
        let mut c = lock(&self.coordinator);
        c.dispatch_all();
        c.collect(false);
        c.release_tables(&self.consumer);
        polled
    }

    /// Carries out the requests queued on the control handle, if the run
    /// has one.
    fn control_phase(&mut self, running: &mut [Option<Plugin>]) -> Result<(), RunError> {
        if let Some(control) = &self.opts.control {
            serve_requests(
                control,
                &self.topology,
                running,
                &mut self.quarantine,
                &mut lock(&self.coordinator),
                &self.consumer,
            )?;
        }
        Ok(())
    }

    /// Pauses consumption once the plugins trapped too often (see
    /// [`Quarantine`]); a run without a control handle stops instead.
    fn quarantine_phase(&mut self) -> Result<(), RunError> {
        let trapped = lock(&self.coordinator).counts.trapped;
        let Some(reason) = self.quarantine.observe(trapped) else {
            return Ok(());
        };
        tracing::warn!(%reason, "quarantined: consumption paused");
        let mut c = lock(&self.coordinator);
        // Without an admin API to resume it, it stops instead.
        let pause = self.opts.control.is_some();
        match set_paused(&mut c, &self.consumer, pause) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e.into()),
            Err(e) => return Err(e),
        }
        let Some(control) = &self.opts.control else {
            return Err(RunError::Quarantined(reason));
        };
        control.publish(|l| {
            l.paused = true;
            l.quarantined = Some(reason);
        });
        Ok(())
    }

    /// Measures the lag every [`LAG_EVERY`] and publishes it, if the run
    /// has a control handle.
    fn lag_phase(&mut self) {
        let opts = self.opts;
        if let Some(control) = &opts.control
            && self.last_lag.is_none_or(|t| t.elapsed() >= LAG_EVERY)
        {
            self.last_lag = Some(Instant::now());
            let lag = consumer::lag(&self.consumer, lock(&self.coordinator).committed());
            control.publish(|l| l.lag = lag);
        }
    }

    /// Asks the tasks whether their windows idled, every `tick_every`
    /// (steps with `close.idle.after`).
    fn idle_close_phase(&mut self) {
        if let Some(every) = self.tick_every
            && self.last_tick.elapsed() >= every
        {
            lock(&self.coordinator).tick(false);
            self.last_tick = Instant::now();
        }
    }

    /// Every `commit_every`, commits; once that covers `stop_at`, closes
    /// the idle windows first if asked (`idle_close_at_end`), then stops.
    fn commit_phase(&mut self) -> Result<AfterCommit, RunError> {
        if self.last_commit.elapsed() < self.commit_every {
            return Ok(AfterCommit::Report);
        }
        let opts = self.opts;
        let mut c = lock(&self.coordinator);
        // Covers the batches reported done so far; batches still on a
        // stream thread are committed at a later interval.
        c.commit(&self.consumer)?;
        self.last_commit = Instant::now();
        if let Some(purger) = &mut self.purger {
            purger.after_commit(c.committed());
        }
        if let Some(stop_at) = &opts.stop_at
            && caught_up(c.committed(), stop_at)
            && self.repartitions_drained(c.committed())
        {
            if opts.idle_close_at_end && !self.idle_closed_at_end {
                // Their results are committed at the next interval,
                // and then the run stops.
                self.idle_closed_at_end = true;
                tracing::info!("input drained: closing idle windows (--idle-close)");
                c.tick(true);
                return Ok(AfterCommit::NextRound);
            }
            c.drain();
            return Ok(AfterCommit::Stop);
        }
        Ok(AfterCommit::Report)
    }

    /// Whether every record written to a repartition topic so far is
    /// committed: asked once the sources are caught up, when everything
    /// the upstream tasks wrote is flushed, so the topics' ends stay put
    /// until downstream tasks (or idle closes) write again.
    fn repartitions_drained(&self, committed: &HashMap<(Arc<str>, i32), i64>) -> bool {
        let timeout = Duration::from_secs(5);
        (self.topology.sources.iter())
            .filter(|s| s.repartition.is_some())
            .all(|s| {
                let Ok(metadata) = self.consumer.fetch_metadata(Some(&s.topic), timeout) else {
                    return false;
                };
                let partitions = metadata
                    .topics()
                    .first()
                    .map_or(0, |t| t.partitions().len());
                (0..partitions as i32).all(|p| {
                    match self.consumer.fetch_watermarks(&s.topic, p, timeout) {
                        Ok((_, 0)) => true,
                        Ok((_, high)) => committed
                            .get(&(Arc::from(s.topic.as_str()), p))
                            .is_some_and(|&c| c >= high),
                        Err(_) => false,
                    }
                })
            })
    }

    /// Logs the counts so far, every 10 s.
    fn report_phase(&mut self) {
        if self.last_report.elapsed() >= Duration::from_secs(10) {
            let c = lock(&self.coordinator).counts;
            tracing::info!(
                records_in = c.records_in,
                records_out = c.records_out,
                rejected = c.rejected,
                trapped = c.trapped,
                "progress"
            );
            self.last_report = Instant::now();
        }
    }
}

impl PollLoop<'_> {
    /// With a park policy: once without input for `park_after`, with
    /// nothing in flight and not paused, reads the ends of the topics it
    /// reads; [`CONFIRM`] later, still without input, the ends to park
    /// with. A round with input starts over ([`PollLoop::run`]).
    fn park_phase(&mut self) -> Option<Ends> {
        let (after, policy) = (self.park_after?, self.opts.park.as_ref()?);
        if self.last_input.elapsed() < after {
            return None;
        }
        if let Some((_, read_at)) = &self.park_pending {
            if read_at.elapsed() < CONFIRM {
                return None;
            }
            let (ends, _) = self.park_pending.take()?;
            tracing::info!(
                idle_s = self.last_input.elapsed().as_secs(),
                "no input: parking (its Kafka clients and threads are let go until a topic it reads moves)"
            );
            return Some(ends);
        }
        if self.next_park_check.is_some_and(|t| Instant::now() < t) {
            return None;
        }
        self.next_park_check = Some(Instant::now() + PARK_CHECK_EVERY);
        if !lock(&self.coordinator).idle() {
            return None;
        }
        match policy.watcher.ends(&watched_topics(&self.topology)) {
            Ok(ends) if self.caught_up(&ends) => {
                self.park_pending = Some((ends, Instant::now()));
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!("cannot read the ends of its topics, so it does not park yet: {e}")
            }
        }
        None
    }

    /// Whether the consumer has partitions, and has read each of them to
    /// its end in `ends` (its position, or the group's committed offset
    /// when it has read nothing since it was assigned the partition). A
    /// consumer still joining its group has nothing to read yet, but is
    /// not caught up.
    fn caught_up(&self, ends: &Ends) -> bool {
        let Ok(assignment) = self.consumer.assignment() else {
            return false;
        };
        if assignment.count() == 0 {
            return false;
        }
        let offset = |list: &rdkafka::TopicPartitionList, topic: &str, partition: i32| match list
            .find_partition(topic, partition)?
            .offset()
        {
            rdkafka::Offset::Offset(o) => Some(o),
            _ => None,
        };
        let positions = self.consumer.position().ok();
        let committed = (self.consumer).committed(Duration::from_secs(5)).ok();
        assignment.elements().iter().all(|e| {
            let (t, p) = (e.topic(), e.partition());
            let Some(&end) = ends.offsets.get(&(t.to_owned(), p)) else {
                return false;
            };
            let position = positions.as_ref().and_then(|l| offset(l, t, p));
            let committed = committed.as_ref().and_then(|l| offset(l, t, p));
            position.max(committed).is_some_and(|at| at >= end)
        })
    }
}

/// The task's view of a polled message's timestamp type. (Here rather
/// than in `kafka::consumer`: `kafka` sits below `time`.)
fn timestamp_kind(timestamp: rdkafka::Timestamp) -> TimestampKind {
    match timestamp {
        rdkafka::Timestamp::NotAvailable => TimestampKind::NotAvailable,
        rdkafka::Timestamp::CreateTime(_) => TimestampKind::CreateTime,
        rdkafka::Timestamp::LogAppendTime(_) => TimestampKind::LogAppendTime,
    }
}

/// Whether the committed offsets reach `stop_at` on every listed
/// partition (an empty one, ending at 0, is reached at once).
fn caught_up(
    committed: &HashMap<(Arc<str>, i32), i64>,
    stop_at: &HashMap<(String, i32), i64>,
) -> bool {
    stop_at.iter().all(|((topic, partition), &end)| {
        end == 0
            || committed
                .get(&(Arc::from(topic.as_str()), *partition))
                .is_some_and(|&c| c >= end)
    })
}
