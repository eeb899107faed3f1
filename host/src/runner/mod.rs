//! Running a pipeline: poll Kafka, dispatch to stream threads, commit.
//!
//! One consumer per process (group = `application.id`) polls on the
//! calling thread; records are grouped per task into call batches and run
//! on `num.stream.threads` stream threads; outputs go through one shared
//! producer. Offsets are committed every `commit.interval.ms`, after the
//! producer is flushed. On revocation and on shutdown, in-flight work is
//! finished and committed first.

pub mod control;
mod coordinator;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};

use crate::error::{KafkaError, RunError};
use crate::kafka::client_config::ClientSettings;
use crate::kafka::connect;
use crate::kafka::producer::OutputProducer;
use crate::kafka::topic_limits;
use crate::kafka::topics::{self, TopicSpec};
use crate::record::Record;
use crate::state::changelog;
use crate::state::task_state::StateContext;
use crate::task::stream_thread::StreamThread;
use crate::task::{Counts, InputRecord};
use crate::time::TimestampKind;
use crate::topology::{Guarantee, Topology};
use coordinator::{Coordinator, RebalanceHandler};

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Bootstrap servers.
    pub brokers: String,
    /// How long to wait for the brokers at start.
    pub connect_timeout: Duration,
    /// Set to stop: the current batches finish, outputs are flushed and
    /// offsets committed.
    pub stop: Arc<AtomicBool>,
    /// Stop by itself once these next offsets are committed for every
    /// listed (topic, partition): used by `sluice dev` to end when the
    /// input is drained.
    pub stop_at: Option<HashMap<(String, i32), i64>>,
    /// With `stop_at`: once caught up, close the windows of steps with
    /// `close.idle.after` as if that long had passed without input, and
    /// commit their results before stopping (`sluice dev --idle-close`).
    pub idle_close_at_end: bool,
    /// Swaps requested while it runs.
    pub control: Option<control::Control>,
}

/// What a finished run did.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// Record counts.
    pub counts: Counts,
    /// Wall time.
    pub elapsed: Duration,
    /// The offsets committed last, per source (topic, partition): the
    /// next record each partition would be read from.
    pub committed: HashMap<(String, i32), i64>,
}

/// Counts traps over a sliding window of time (`quarantine.after.traps`).
struct Quarantine {
    limit: Option<u64>,
    window: Duration,
    traps: std::collections::VecDeque<Instant>,
    seen: u64,
    active: bool,
}

impl Quarantine {
    fn new(limit: Option<u64>, window: Duration) -> Quarantine {
        Quarantine {
            limit,
            window,
            traps: std::collections::VecDeque::new(),
            seen: 0,
            active: false,
        }
    }

    /// Takes the run's trap count; says why when the limit is reached
    /// (once, until [`Quarantine::clear`]).
    fn observe(&mut self, trapped: u64) -> Option<String> {
        let limit = self.limit?;
        let now = Instant::now();
        for _ in self.seen..trapped {
            self.traps.push_back(now);
        }
        self.seen = self.seen.max(trapped);
        while self
            .traps
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.window)
        {
            self.traps.pop_front();
        }
        if self.active || (self.traps.len() as u64) < limit {
            return None;
        }
        self.active = true;
        Some(format!(
            "{} records trapped within {} s (quarantine.after.traps = {limit})",
            self.traps.len(),
            self.window.as_secs()
        ))
    }

    /// Resumed by hand: counting starts again.
    fn clear(&mut self) {
        self.traps.clear();
        self.active = false;
    }
}

/// Finishes and commits the work in flight, then stops (`pause`) or
/// starts again consuming the assigned partitions; the group membership
/// stays. With `pause` false and nothing paused, it only commits. The outer
/// error is fatal (the commit failed); the inner one is the pause's own.
fn set_paused<C: rdkafka::consumer::ConsumerContext>(
    c: &mut Coordinator,
    consumer: &BaseConsumer<C>,
    pause: bool,
) -> Result<Result<(), KafkaError>, RunError> {
    c.drain();
    c.commit(consumer)?;
    let assignment = consumer.assignment().map_err(KafkaError::client(
        "reading the assignment to pause or resume",
    ))?;
    let result = if pause {
        consumer.pause(&assignment)
    } else {
        consumer.resume(&assignment)
    };
    if result.is_ok() {
        c.paused = pause;
    }
    Ok(result.map_err(KafkaError::client(if pause {
        "pausing consumption"
    } else {
        "resuming consumption"
    })))
}

/// How often a served pipeline's lag is measured.
const LAG_EVERY: Duration = Duration::from_secs(2);

/// Records on the assigned partitions past the committed offsets (or the
/// consumer's position, before a first commit): the end offsets are asked
/// of the brokers. `None` while nothing is assigned or a broker does not
/// answer.
fn lag<C: rdkafka::consumer::ConsumerContext>(
    consumer: &BaseConsumer<C>,
    c: &Coordinator,
) -> Option<u64> {
    let assignment = consumer.assignment().ok()?;
    if assignment.count() == 0 {
        return None;
    }
    let positions = consumer.position().ok()?;
    let mut total = 0;
    for e in assignment.elements() {
        let (_, end) = consumer
            .fetch_watermarks(e.topic(), e.partition(), Duration::from_millis(500))
            .ok()?;
        let position = positions
            .find_partition(e.topic(), e.partition())
            .and_then(|p| match p.offset() {
                rdkafka::Offset::Offset(o) => Some(o),
                _ => None,
            });
        let at = c
            .committed()
            .get(&(Arc::from(e.topic()), e.partition()))
            .copied()
            .or(position);
        if let Some(at) = at {
            total += (end - at).max(0) as u64;
        }
    }
    Some(total)
}

/// Carries out the requests queued on `control` between two polls.
fn serve_requests<C: rdkafka::consumer::ConsumerContext>(
    control: &control::Control,
    topology: &Topology,
    running: &mut [Option<crate::plugin::Plugin>],
    quarantine: &mut Quarantine,
    c: &mut Coordinator,
    consumer: &BaseConsumer<C>,
) -> Result<(), RunError> {
    for request in control.take() {
        match request {
            control::Request::Swap {
                step,
                plugin,
                reply,
            } => {
                let started = Instant::now();
                // The batch boundary: everything polled before is done,
                // its outputs acknowledged and its offsets committed.
                c.drain();
                if let Err(e) = c.commit(consumer) {
                    let _ = reply.send(Err(format!("the commit before the swap failed: {e}")));
                    return Err(e);
                }
                c.swap_plugin(step, &plugin)?;
                let old = running[step]
                    .replace(plugin.clone())
                    .map_or_else(|| "none".to_owned(), |p| p.digest().to_owned());
                let mut boundary: Vec<(String, i32, i64)> = c
                    .committed()
                    .iter()
                    .map(|((t, p), o)| (t.to_string(), *p, *o))
                    .collect();
                boundary.sort();
                let swapped = control::Swapped {
                    step: topology.steps[step].name.clone(),
                    old_digest: old,
                    new_digest: plugin.digest().to_owned(),
                    boundary,
                    pause: started.elapsed(),
                };
                tracing::info!(
                    step = %swapped.step,
                    from = %&swapped.old_digest[..swapped.old_digest.len().min(12)],
                    to = %&swapped.new_digest[..12],
                    pause_ms = swapped.pause.as_secs_f64() * 1e3,
                    "plugin swapped"
                );
                let _ = reply.send(Ok(swapped));
            }
            control::Request::Pause { pause, reply } => {
                let result = match set_paused(c, consumer, pause) {
                    Ok(result) => result,
                    Err(e) => {
                        let _ = reply.send(Err(format!("the commit before pausing failed: {e}")));
                        return Err(e);
                    }
                };
                match result {
                    Ok(()) => {
                        if !pause {
                            quarantine.clear();
                        }
                        control.publish(|l| {
                            l.paused = pause;
                            if !pause {
                                l.quarantined = None;
                            }
                        });
                        tracing::info!(
                            paused = pause,
                            "consumption {}",
                            if pause { "paused" } else { "resumed" }
                        );
                        let _ = reply.send(Ok(()));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e.to_string()));
                    }
                }
            }
        }
    }
    control.publish(|l| l.counts = c.counts);
    Ok(())
}

/// The producer's `transactional.id` under exactly-once: the same for
/// every run of one instance, so that a restart fences the dead process
/// and aborts what it left open at once, and different between instances.
/// A stateful instance is its state directory (which only it may lock) on
/// its host; a stateless one adds its process id (a restart then waits up
/// to `transaction.timeout.ms` for what the dead one left open). The
/// `[kafka]` table may set `transactional.id` itself.
fn transactional_id(topology: &Topology) -> String {
    use sha2::Digest;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into());
    let dir = std::fs::canonicalize(&topology.state.dir).unwrap_or(topology.state.dir.clone());
    let mut instance = format!("{host}:{}", dir.display());
    if !topology.is_stateful() {
        instance.push_str(&format!(":{}", std::process::id()));
    }
    let digest = sha2::Sha256::digest(instance.as_bytes());
    format!("{}-{}", topology.application_id, hex::encode(&digest[..8]))
}

/// Exactly-once recovery: the wait before the first new attempt, doubled
/// after each failed one up to [`BACKOFF_MAX`] (back to the first after an
/// attempt that committed).
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Recovery gives up when no transaction has committed for this long
/// (a broker down for good, or a fault that every attempt meets again).
const GIVE_UP_AFTER: Duration = Duration::from_secs(300);
/// ... or when the producer was fenced this often within
/// [`FENCE_WINDOW`]: see [`Recovery`].
const FENCE_LIMIT: usize = 3;
const FENCE_WINDOW: Duration = Duration::from_secs(600);
/// How long closing the consumer (leaving the group) may hold the run up;
/// past it, the close goes on in the background.
const CLOSE_DEADLINE: Duration = Duration::from_secs(10);

/// Exactly-once recovery from broker faults, across attempts of one run.
///
/// A transaction that cannot complete ends the attempt: what it left open
/// is aborted (or, with the producer abandoned, left to the broker to
/// abort), the stream threads and their tasks are dropped, and the
/// consumer leaves the group. After a bounded, growing wait, a new attempt
/// starts as a restart of the process would: a new producer with the same
/// `transactional.id` (whose `init_transactions` fences the old one and
/// has the coordinator abort its transaction), a new consumer that resumes
/// from the committed offsets, and stores restored from their changelogs
/// (their local copies never hold uncommitted work). So nothing is lost
/// and nothing is seen twice by `read_committed` readers.
///
/// Fencing. A fenced producer is usually the broker's doing: it aborts a
/// transaction older than `transaction.timeout.ms` (a freeze, a restart)
/// and bumps the epoch. A genuine second instance with the same
/// `transactional.id` (two processes sharing a state directory, which the
/// store lock normally prevents, or a `transactional.id` set in `[kafka]`
/// for both) would fence this one again at each of its own restarts, and
/// be fenced back: so a producer fenced [`FENCE_LIMIT`] times within
/// [`FENCE_WINDOW`] stops the run with an error saying so, rather than
/// fight. (The group assignment cannot tell: both instances are members.)
#[derive(Debug)]
struct Recovery {
    attempts: u32,
    last_progress: Instant,
    backoff: Duration,
    fencings: std::collections::VecDeque<Instant>,
}

impl Recovery {
    fn new(now: Instant) -> Recovery {
        Recovery {
            attempts: 0,
            last_progress: now,
            backoff: BACKOFF_FIRST,
            fencings: std::collections::VecDeque::new(),
        }
    }

    /// After an attempt failed with `e` (having committed, or not): how
    /// long to wait before the next one, or why to give up.
    fn next(&mut self, e: &RunError, progressed: bool, now: Instant) -> Result<Duration, String> {
        if progressed {
            self.last_progress = now;
            self.backoff = BACKOFF_FIRST;
        }
        if let RunError::Transaction(t) = e
            && t.is_fenced()
        {
            self.fencings.push_back(now);
            while self
                .fencings
                .front()
                .is_some_and(|t| now.duration_since(*t) > FENCE_WINDOW)
            {
                self.fencings.pop_front();
            }
            if self.fencings.len() >= FENCE_LIMIT {
                return Err(format!(
                    "the producer was fenced {} times within {} min: another live instance probably uses the same transactional.id (two processes with one state directory, or one `transactional.id` in `[kafka]` for both); stop one of them",
                    self.fencings.len(),
                    FENCE_WINDOW.as_secs() / 60
                ));
            }
        }
        let stalled = now.duration_since(self.last_progress);
        if stalled >= GIVE_UP_AFTER {
            return Err(format!(
                "no transaction committed for {} s (the bound is {} s)",
                stalled.as_secs(),
                GIVE_UP_AFTER.as_secs()
            ));
        }
        let wait = self.backoff;
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        self.attempts += 1;
        Ok(wait)
    }
}

/// Whether an exactly-once run recovers from `e` by starting over from the
/// committed offsets. Kafka failures while starting count only during a
/// recovery (`recovering`): at the first start they are the operator's to
/// see.
fn recoverable(e: &RunError, recovering: bool) -> bool {
    match e {
        RunError::Transaction(_) => true,
        RunError::Restore(crate::error::RestoreError::Kafka(_)) => true,
        RunError::Kafka(KafkaError::Unreachable { .. } | KafkaError::Client { .. }) => recovering,
        _ => false,
    }
}

/// Runs `topology` with its loaded `plugins` (in step order) until
/// stopped. Returns the counts, or the first fatal error after committing
/// everything processed before it. Under exactly-once, a transaction that
/// cannot complete is recovered from by itself (see [`Recovery`]).
pub fn run(
    topology: Arc<Topology>,
    plugins: crate::Plugins,
    opts: RunOptions,
) -> Result<RunSummary, RunError> {
    let started = Instant::now();
    let exactly_once = topology.processing.guarantee == Guarantee::ExactlyOnce;
    // What each step runs now: swaps outlive a recovery.
    let mut running: Vec<Option<crate::plugin::Plugin>> = plugins.steps.clone();
    let mut recovery = Recovery::new(started);
    let mut counts = Counts::default();
    let mut committed: HashMap<(String, i32), i64> = HashMap::new();
    let mut delivered = 0;
    loop {
        let attempt = attempt(
            &topology,
            &plugins,
            &mut running,
            &opts,
            counts,
            (recovery.attempts > 0).then_some(recovery.attempts),
        );
        counts = attempt.counts;
        committed.extend(attempt.committed);
        delivered += attempt.delivered;
        let e = match attempt.result {
            Ok(()) => break,
            Err(e) => e,
        };
        if !exactly_once
            || opts.stop.load(Ordering::Relaxed)
            || !recoverable(&e, recovery.attempts > 0)
        {
            return Err(e);
        }
        let wait = match recovery.next(&e, attempt.commits > 0, Instant::now()) {
            Ok(wait) => wait,
            Err(reason) => {
                return Err(RunError::RecoveryGaveUp {
                    attempts: recovery.attempts,
                    reason,
                    last: Box::new(e),
                });
            }
        };
        tracing::warn!(
            recovery = recovery.attempts,
            wait_ms = wait.as_millis() as u64,
            "exactly-once: recovering from a transaction that could not complete ({e}): what it left open is aborted, and a new producer and consumer resume from the last committed offsets"
        );
        let until = Instant::now() + wait;
        while Instant::now() < until && !opts.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
        if opts.stop.load(Ordering::Relaxed) {
            // Nothing is in flight: the failed attempt aborted its work.
            break;
        }
    }
    let summary = RunSummary {
        counts,
        elapsed: started.elapsed(),
        committed,
    };
    tracing::info!(
        records_in = counts.records_in,
        records_out = counts.records_out,
        rejected = counts.rejected,
        trapped = counts.trapped,
        dead_letters = counts.dead_letters,
        skipped = counts.skipped,
        out_of_order = counts.out_of_order,
        invalid_timestamps = counts.invalid_timestamps,
        delivered,
        recoveries = recovery.attempts,
        "stopped cleanly"
    );
    Ok(summary)
}

/// What one attempt of a run did.
struct Attempt {
    /// `Ok` once stopped as asked.
    result: Result<(), RunError>,
    /// Counts of this attempt and the ones before it.
    counts: Counts,
    committed: HashMap<(String, i32), i64>,
    /// Transactions committed with offsets.
    commits: u64,
    /// Records acknowledged.
    delivered: u64,
}

impl Attempt {
    fn failed(e: RunError, counts: Counts) -> Attempt {
        Attempt {
            result: Err(e),
            ..Attempt::stopped(counts)
        }
    }

    /// Stopped as asked before it started anything.
    fn stopped(counts: Counts) -> Attempt {
        Attempt {
            result: Ok(()),
            counts,
            committed: HashMap::new(),
            commits: 0,
            delivered: 0,
        }
    }
}

/// Closes the consumer, which leaves the group (a revocation on the way
/// commits nothing after a failure). librdkafka bounds it (requests that
/// wait for a coordinator by `session.timeout.ms`, each request by
/// `socket.timeout.ms`), but that can be minutes: it runs on a helper
/// thread, and after [`CLOSE_DEADLINE`] the run goes on without it.
fn close_consumer(consumer: BaseConsumer<RebalanceHandler>) {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let spawned = std::thread::Builder::new()
        .name("sluice-close".into())
        .spawn(move || {
            drop(consumer);
            let _ = tx.send(());
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot close the consumer on a helper thread ({e}): it was closed here");
        return;
    }
    if rx.recv_timeout(CLOSE_DEADLINE).is_err() {
        tracing::warn!(
            deadline_s = CLOSE_DEADLINE.as_secs(),
            "the consumer did not close in time (the broker is slow or unreachable): it finishes leaving the group in the background"
        );
    }
}

/// One attempt: connects, runs until stopped or failed, and cleans up.
fn attempt(
    topology: &Arc<Topology>,
    plugins: &crate::Plugins,
    running: &mut [Option<crate::plugin::Plugin>],
    opts: &RunOptions,
    counts_before: Counts,
    recovery: Option<u32>,
) -> Attempt {
    let topology = Arc::clone(topology);
    macro_rules! attempt_try {
        ($e:expr) => {
            match $e {
                Ok(v) => v,
                Err(e) => return Attempt::failed(e.into(), counts_before),
            }
        };
    }
    let settings = ClientSettings::new(&opts.brokers, &topology.kafka);
    let Some(metadata) = attempt_try!(connect::wait_for_brokers(
        &settings,
        opts.connect_timeout,
        &opts.stop
    )) else {
        // Told to stop while waiting for the brokers: nothing started.
        return Attempt::stopped(counts_before);
    };
    let topics: Vec<String> = topology.sources.iter().map(|s| s.topic.clone()).collect();
    let counts = attempt_try!(connect::partition_counts(&metadata, &opts.brokers, &topics));
    let state = if topology.is_stateful() {
        Some(Arc::new(attempt_try!(prepare_state(
            &topology,
            &settings,
            &counts,
            opts.connect_timeout,
        ))))
    } else {
        None
    };

    let producer = match topology.processing.guarantee {
        Guarantee::AtLeastOnce => {
            attempt_try!(OutputProducer::new(&settings, &topology.application_id))
        }
        Guarantee::ExactlyOnce => {
            let id = transactional_id(&topology);
            let producer = attempt_try!(OutputProducer::transactional(
                &settings,
                &topology.application_id,
                &id
            ));
            match recovery {
                None => {
                    tracing::info!(transactional_id = %id, "exactly-once: each commit is a transaction")
                }
                Some(n) => tracing::info!(
                    transactional_id = %id,
                    recovery = n,
                    "exactly-once: a new producer took over the transactional.id"
                ),
            }
            producer
        }
    };
    let producer = Arc::new(match &topology.topic_prefixes {
        Some(prefixes) => producer.restrict_to(prefixes.clone()),
        None => producer,
    });
    learn_sink_limits(&topology, &settings, &producer, opts.connect_timeout);
    let mut quarantine = Quarantine::new(
        topology.processing.quarantine_traps,
        topology.processing.quarantine_window,
    );
    let plugins = Arc::new(crate::Plugins {
        steps: running.to_vec(),
        ..plugins.clone()
    });
    let (done_tx, done_rx) = crossbeam_channel::unbounded();
    let threads = (0..topology.processing.num_stream_threads)
        .map(|i| {
            StreamThread::spawn(
                i,
                Arc::clone(&topology),
                Arc::clone(&plugins),
                state.clone(),
                Arc::clone(&producer),
                done_tx.clone(),
            )
        })
        .collect();
    drop(done_tx);
    let mut coordinator = Coordinator::new(
        threads,
        done_rx,
        Arc::clone(&producer),
        topology.processing.max_batch_records,
        state.is_some(),
    );
    coordinator.counts = counts_before;
    coordinator.recovery = recovery;
    let coordinator = Arc::new(Mutex::new(coordinator));
    let stop_threads = || {
        let threads = std::mem::take(&mut coordinator.lock().expect("not poisoned").threads);
        for t in threads {
            let _ = t.join();
        }
    };
    let consumer: BaseConsumer<RebalanceHandler> = match settings
        .consumer(&topology.application_id)
        .create_with_context(RebalanceHandler {
            coordinator: Arc::clone(&coordinator),
        }) {
        Ok(c) => c,
        Err(e) => {
            stop_threads();
            return Attempt::failed(
                KafkaError::client("creating the consumer")(e).into(),
                counts_before,
            );
        }
    };
    let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    if let Err(e) = consumer.subscribe(&topic_refs) {
        stop_threads();
        return Attempt::failed(
            KafkaError::client("subscribing to the source topics")(e).into(),
            counts_before,
        );
    }
    tracing::info!(
        application = %topology.application_id,
        sources = %topics.join(","),
        brokers = %opts.brokers,
        threads = topology.processing.num_stream_threads,
        "running"
    );

    let topic_names: HashMap<String, Arc<str>> = topics
        .iter()
        .map(|t| (t.clone(), Arc::from(t.as_str())))
        .collect();
    let poll_limit = topology.processing.max_batch_records * 4;
    let commit_every = topology.processing.commit_interval;
    let mut last_commit = Instant::now();
    let mut last_report = Instant::now();
    // `close.idle.after`: how often tasks are asked whether they idled.
    let tick_every = topology
        .idle_close()
        .map(|ms| Duration::from_millis((ms as u64 / 4).clamp(10, 1_000)));
    let mut last_tick = Instant::now();
    let mut last_lag: Option<Instant> = None;
    let mut idle_closed_at_end = false;
    let lock = || coordinator.lock().expect("not poisoned");

    let result = loop {
        if opts.stop.load(Ordering::Relaxed) {
            break Ok(());
        }
        if let Some(e) = lock().failure.take() {
            break Err(e);
        }
        let mut polled = 0;
        while polled < poll_limit {
            let timeout = if polled == 0 {
                Duration::from_millis(100)
            } else {
                Duration::ZERO
            };
            match consumer.poll(timeout) {
                None => break,
                Some(Ok(m)) => {
                    let topic = topic_names
                        .get(m.topic())
                        .cloned()
                        .unwrap_or_else(|| Arc::from(m.topic()));
                    lock().push(InputRecord {
                        topic,
                        partition: m.partition(),
                        offset: m.offset(),
                        timestamp_kind: match m.timestamp() {
                            rdkafka::Timestamp::NotAvailable => TimestampKind::NotAvailable,
                            rdkafka::Timestamp::CreateTime(_) => TimestampKind::CreateTime,
                            rdkafka::Timestamp::LogAppendTime(_) => TimestampKind::LogAppendTime,
                        },
                        record: to_record(&m),
                    });
                    polled += 1;
                }
                Some(Err(e)) => tracing::warn!("consumer: {e}"),
            }
        }
        {
            let mut c = lock();
            c.dispatch_all();
            c.collect(false);
        }
        if let Some(control) = &opts.control
            && let Err(e) = serve_requests(
                control,
                &topology,
                running,
                &mut quarantine,
                &mut lock(),
                &consumer,
            )
        {
            break Err(e);
        }
        let trapped = lock().counts.trapped;
        if let Some(reason) = quarantine.observe(trapped) {
            tracing::warn!(%reason, "quarantined: consumption paused");
            let mut c = lock();
            // Without an admin API to resume it, it stops instead.
            let pause = opts.control.is_some();
            match set_paused(&mut c, &consumer, pause) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => break Err(e.into()),
                Err(e) => break Err(e),
            }
            let Some(control) = &opts.control else {
                break Err(RunError::Quarantined(reason));
            };
            control.publish(|l| {
                l.paused = true;
                l.quarantined = Some(reason);
            });
        }
        if let Some(control) = &opts.control
            && last_lag.is_none_or(|t| t.elapsed() >= LAG_EVERY)
        {
            last_lag = Some(Instant::now());
            let lag = lag(&consumer, &lock());
            control.publish(|l| l.lag = lag);
        }
        if let Some(every) = tick_every
            && last_tick.elapsed() >= every
        {
            lock().tick(false);
            last_tick = Instant::now();
        }
        if last_commit.elapsed() >= commit_every {
            let mut c = lock();
            // Covers the batches reported done so far; batches still on a
            // stream thread are committed at a later interval.
            if let Err(e) = c.commit(&consumer) {
                break Err(e);
            }
            last_commit = Instant::now();
            if let Some(stop_at) = &opts.stop_at
                && caught_up(c.committed(), stop_at)
            {
                if opts.idle_close_at_end && !idle_closed_at_end {
                    // Their results are committed at the next interval,
                    // and then the run stops.
                    idle_closed_at_end = true;
                    tracing::info!("input drained: closing idle windows (--idle-close)");
                    c.tick(true);
                    continue;
                }
                c.drain();
                break Ok(());
            }
        }
        if last_report.elapsed() >= Duration::from_secs(10) {
            let c = lock().counts;
            tracing::info!(
                records_in = c.records_in,
                records_out = c.records_out,
                rejected = c.rejected,
                trapped = c.trapped,
                "progress"
            );
            last_report = Instant::now();
        }
    };

    // Finish in-flight work and commit it, even after a failure: what
    // was processed before the failing record is safe to commit. Under
    // exactly-once a failure aborts instead: the failing batch's outputs
    // before the failing record are in the transaction too.
    let mut c = lock();
    c.drain();
    let failed = result.is_err() || c.failure.is_some();
    let final_commit = if failed && c.transactional() {
        c.abort()
    } else {
        c.commit(&consumer)
    };
    if final_commit.is_err() {
        c.end();
    }
    let failure = c.failure.take();
    let counts = c.counts;
    let commits = c.commits;
    let committed = c
        .committed()
        .iter()
        .map(|((topic, p), &offset)| ((topic.to_string(), *p), offset))
        .collect();
    let threads = std::mem::take(&mut c.threads);
    drop(c);
    let mut joined = Ok(());
    for t in threads {
        if let Err(e) = t.join() {
            joined = joined.and(Err(e));
        }
    }
    consumer.unsubscribe();
    close_consumer(consumer);
    let result = result
        .and(failure.map_or(Ok(()), Err))
        .and(joined)
        .and(final_commit);
    Attempt {
        result,
        counts,
        committed,
        commits,
        delivered: producer.delivered(),
    }
}

/// Reads the limits of the topics the run writes to (sinks, dead letters)
/// and gives them to the producer, so that an output the broker would
/// refuse meets the `refused` policy ([`crate::kafka::topic_limits`]).
/// Before the first record: a real broker answers in milliseconds. One
/// that cannot answer leaves only the producer's own limit checked.
fn learn_sink_limits(
    topology: &Topology,
    settings: &ClientSettings,
    producer: &OutputProducer,
    timeout: Duration,
) {
    let mut topics: Vec<String> = topology.sinks.iter().map(|s| s.topic.clone()).collect();
    if topology.uses_dlq() {
        topics.push(topology.errors.dlq_topic.clone());
    }
    topics.sort();
    topics.dedup();
    match topic_limits::describe(settings, &topics, timeout.min(Duration::from_secs(10))) {
        Ok(Some(found)) => {
            for (topic, l) in &found {
                tracing::debug!(topic = %topic, max_message_bytes = ?l.max_message_bytes, timestamp_after_max_ms = ?l.after_max_ms, timestamp_before_max_ms = ?l.before_max_ms, log_append_time = l.log_append_time, "sink topic limits");
            }
            producer.limits().learn(found);
        }
        Ok(None) => tracing::debug!(
            "the embedded broker cannot describe topics: outputs are checked against the producer's message.max.bytes only"
        ),
        Err(e) => tracing::warn!(
            "cannot read the sink topics' configs ({e}): outputs are checked against the producer's message.max.bytes only, and a record the broker refuses stops the run"
        ),
    }
}

/// Checks that the sources are co-partitioned (task `p` covers partition
/// `p` of each, and owns partition `p` of each changelog), and makes sure
/// every store's changelog exists, compacted, with that many partitions.
fn prepare_state(
    topology: &Topology,
    settings: &ClientSettings,
    counts: &[(String, usize)],
    timeout: Duration,
) -> Result<StateContext, RunError> {
    let partitions = counts.first().map_or(1, |(_, n)| *n as i32);
    if let Some((topic, n)) = counts.iter().find(|(_, n)| *n as i32 != partitions) {
        return Err(KafkaError::PartitionMismatch {
            topic: topic.clone(),
            expected: partitions,
            found: *n as i32,
        }
        .into());
    }
    let specs: Vec<TopicSpec> = topology
        .stores()
        .map(|(store, _)| TopicSpec {
            name: changelog::topic(&topology.application_id, store),
            partitions,
            compacted: true,
        })
        .collect();
    let ensured = topics::create_missing(settings, &specs, timeout)?;
    for created in &ensured.created {
        tracing::info!(topic = %created, partitions, "changelog topic created");
    }
    // Only a warning can come of it, and a broker that cannot describe
    // configs (the embedded one) would hold the start up until a timeout.
    {
        let settings = settings.clone();
        std::thread::spawn(move || topics::check_compaction(&settings, &specs, timeout));
    }
    tracing::info!(
        dir = %topology.state.dir.display(),
        kind = ?topology.state.kind,
        stores = topology.stores().count(),
        "state stores"
    );
    Ok(StateContext::new(
        &topology.application_id,
        topology.state.clone(),
        Some(settings.clone()),
    ))
}

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

fn to_record<M: Message>(m: &M) -> Record {
    let headers = m
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| (h.key.to_owned(), h.value.map(bytes::Bytes::copy_from_slice)))
                .collect()
        })
        .unwrap_or_default();
    Record {
        key: m.key().map(bytes::Bytes::copy_from_slice),
        value: m.payload().map(bytes::Bytes::copy_from_slice),
        timestamp: m.timestamp().to_millis(),
        headers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarantine_comes_once_at_the_limit_and_counting_restarts_after_a_resume() {
        let mut q = Quarantine::new(Some(3), Duration::from_secs(60));
        assert_eq!(q.observe(2), None);
        let why = q.observe(3).expect("the third trap");
        assert!(why.contains("3 records trapped within 60 s"), "{why}");
        assert_eq!(q.observe(5), None, "once, until resumed");
        q.clear();
        assert_eq!(q.observe(7), None, "two traps since the resume");
        assert!(q.observe(8).is_some());
        let mut off = Quarantine::new(None, Duration::from_secs(60));
        assert_eq!(off.observe(1_000), None, "off unless configured");
    }

    fn timed_out() -> RunError {
        crate::error::TransactionError::TimedOut {
            what: "committing the transaction".into(),
            after: Duration::from_secs(25),
        }
        .into()
    }

    fn fenced() -> RunError {
        crate::error::TransactionError::Fatal {
            what: "committing the transaction".into(),
            source: rdkafka::error::KafkaError::MessageProduction(
                rdkafka::types::RDKafkaErrorCode::ProducerFenced,
            ),
        }
        .into()
    }

    #[test]
    fn recovery_backs_off_exponentially_and_starts_over_after_progress() {
        let t0 = Instant::now();
        let mut r = Recovery::new(t0);
        let waits: Vec<u64> = (0..7)
            .map(|i| {
                r.next(&timed_out(), false, t0 + Duration::from_secs(i))
                    .unwrap()
                    .as_secs()
            })
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
        let after_progress = r.next(&timed_out(), true, t0 + Duration::from_secs(10));
        assert_eq!(after_progress, Ok(BACKOFF_FIRST));
        assert_eq!(r.attempts, 8);
    }

    #[test]
    fn recovery_gives_up_after_minutes_without_a_commit() {
        let t0 = Instant::now();
        let mut r = Recovery::new(t0);
        assert!(r.next(&timed_out(), false, t0 + GIVE_UP_AFTER / 2).is_ok());
        // A commit in between moves the bound.
        assert!(r.next(&timed_out(), true, t0 + GIVE_UP_AFTER).is_ok());
        assert!(
            r.next(
                &timed_out(),
                false,
                t0 + GIVE_UP_AFTER * 2 - Duration::from_secs(1)
            )
            .is_ok()
        );
        let why = r
            .next(&timed_out(), false, t0 + GIVE_UP_AFTER * 2)
            .unwrap_err();
        assert!(why.contains("no transaction committed for 300 s"), "{why}");
    }

    #[test]
    fn a_producer_fenced_again_and_again_is_a_fight_with_another_instance() {
        let t0 = Instant::now();
        let mut r = Recovery::new(t0);
        // Fenced once per broker freeze, far apart: recovered each time.
        for i in 0..5 {
            let at = t0 + (FENCE_WINDOW + Duration::from_secs(1)) * i;
            assert!(r.next(&fenced(), true, at).is_ok(), "freeze {i}");
        }
        let t1 = t0 + FENCE_WINDOW * 10;
        assert!(r.next(&fenced(), true, t1).is_ok());
        assert!(r.next(&fenced(), true, t1 + Duration::from_secs(5)).is_ok());
        let why = r
            .next(&fenced(), true, t1 + Duration::from_secs(20))
            .unwrap_err();
        assert!(why.contains("fenced 3 times within 10 min"), "{why}");
        assert!(why.contains("transactional.id"), "{why}");
    }

    #[test]
    fn only_transaction_and_kafka_failures_are_recovered_from() {
        assert!(recoverable(&timed_out(), false));
        assert!(recoverable(&fenced(), false));
        let unreachable: RunError = KafkaError::Unreachable {
            brokers: "b:1".into(),
            attempts: 3,
            waited_secs: 30,
            last: "down".into(),
        }
        .into();
        assert!(!recoverable(&unreachable, false), "at the first start");
        assert!(recoverable(&unreachable, true), "while recovering");
        assert!(!recoverable(&RunError::Delivery("too large".into()), true));
        assert!(!recoverable(&RunError::Quarantined("traps".into()), true));
    }
}
