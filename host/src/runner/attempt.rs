//! One attempt of a run: start-up ([`super::start`]), the poll loop's
//! rounds ([`PollLoop::run`]), and the shutdown that finishes, commits (or,
//! under exactly-once after a failure, aborts) and closes, however the
//! loop ended. A run is one attempt, or more when exactly-once recovers
//! (see [`super::recovery`]).

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};

use super::coordinator::RebalanceHandler;
use super::options::RunOptions;
use super::park::Ends;
use super::poll_loop::{Ended, PollLoop, lock};
use super::start::start;
use crate::error::RunError;
use crate::task::Counts;
use crate::topology::Topology;

/// How long closing the consumer (leaving the group) may hold the run up;
/// past it, the close goes on in the background.
const CLOSE_DEADLINE: Duration = Duration::from_secs(10);

/// What one attempt of a run did.
pub(super) struct Attempt {
    /// `Ok` once stopped as asked.
    pub(super) result: Result<(), RunError>,
    /// Ended to park, with the ends of the topics it reads.
    pub(super) parked: Option<Ends>,
    /// Counts of this attempt and the ones before it.
    pub(super) counts: Counts,
    pub(super) committed: HashMap<(String, i32), i64>,
    /// Transactions committed with offsets.
    pub(super) commits: u64,
    /// Records acknowledged.
    pub(super) delivered: u64,
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
            parked: None,
            counts,
            committed: HashMap::new(),
            commits: 0,
            delivered: 0,
        }
    }
}

/// One attempt: connects, runs until stopped or failed, and cleans up.
pub(super) fn attempt(
    topology: &std::sync::Arc<Topology>,
    plugins: &crate::plugins::Plugins,
    running: &mut [Option<crate::plugin::Plugin>],
    opts: &RunOptions,
    counts_before: Counts,
    recovery: Option<u32>,
) -> Attempt {
    let mut poll_loop = match start(topology, plugins, running, opts, counts_before, recovery) {
        Ok(Some(poll_loop)) => poll_loop,
        // Told to stop while waiting for the brokers: nothing started.
        Ok(None) => return Attempt::stopped(counts_before),
        Err(e) => return Attempt::failed(e, counts_before),
    };
    let (result, parked) = match poll_loop.run(running) {
        Ok(Ended::Stopped) => (Ok(()), None),
        Ok(Ended::Parked(ends)) => (Ok(()), Some(ends)),
        Err(e) => (Err(e), None),
    };
    let mut attempt = shut_down(poll_loop, result);
    if attempt.result.is_ok() {
        attempt.parked = parked;
    }
    attempt
}

/// Finishes in-flight work and commits it, joins the stream threads and
/// closes the consumer; `result` is how the poll loop ended.
fn shut_down(poll_loop: PollLoop<'_>, result: Result<(), RunError>) -> Attempt {
    // The stores' context is held to the end of the attempt; all three
    // go after the consumer's close: coordinator, producer, context.
    let PollLoop {
        state: _state,
        producer,
        coordinator,
        consumer,
        ..
    } = poll_loop;
    // Finish in-flight work and commit it, even after a failure: what
    // was processed before the failing record is safe to commit. Under
    // exactly-once a failure aborts instead: the failing batch's outputs
    // before the failing record are in the transaction too.
    let mut c = lock(&coordinator);
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
        parked: None,
        counts,
        committed,
        commits,
        delivered: producer.delivered(),
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
