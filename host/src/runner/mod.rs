//! Running a pipeline: poll Kafka, dispatch to stream threads, commit.
//!
//! One consumer per process (group = `application.id`) polls on the
//! calling thread; records are grouped per task into call batches and run
//! on `num.stream.threads` stream threads; outputs go through one shared
//! producer. Offsets are committed every `commit.interval.ms`, after the
//! producer is flushed. On revocation and on shutdown, in-flight work is
//! finished and committed first.
//!
//! A run ([`run`]) is one attempt, or more when exactly-once recovers from
//! a transaction that could not complete ([`recovery`]), or when a served
//! pipeline parks while it has no input and wakes again ([`park`]). An attempt
//! ([`attempt()`]) starts up ([`start`]), runs the poll loop's rounds of
//! named phases ([`poll_loop`]: poll, control, quarantine, lag, idle
//! close, commit, report) and shuts down.
//!
//! - [`options`]: what a run is asked to do, and what it did.
//! - [`coordinator`]: what the poll loop and the rebalance callback share:
//!   batches, dispatch, and the commit protocol.
//! - [`control`]: swaps, pause and resume, asked for from outside.
//! - [`quarantine`]: pausing a pipeline whose plugins trap too often.

mod attempt;
pub mod control;
mod coordinator;
mod options;
pub mod park;
mod poll_loop;
mod purge;
mod quarantine;
mod recovery;
mod start;
mod table_wait;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::error::RunError;
use crate::task::Counts;
use crate::topology::{Guarantee, Topology};
use attempt::attempt;
pub use options::{RunOptions, RunSummary};
use recovery::{Recovery, recoverable};

/// Runs `topology` with its loaded `plugins` (in step order) until
/// stopped. Returns the counts, or the first fatal error after committing
/// everything processed before it. Under exactly-once, a transaction that
/// cannot complete is recovered from by itself (see [`Recovery`]).
pub fn run(
    topology: Arc<Topology>,
    plugins: crate::plugins::Plugins,
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
            Ok(()) => {
                let Some(ends) = attempt.parked else { break };
                if park(&topology, &opts, ends) {
                    continue;
                }
                break;
            }
            Err(e) => e,
        };
        let wait = wait_before_next(
            e,
            &mut recovery,
            exactly_once,
            &opts.stop,
            attempt.commits > 0,
        )?;
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

/// Parks a pipeline whose attempt ended for want of input, with the
/// `ends` of its topics: waits until they move, a request is queued, or
/// it is told to stop. Returns whether to start again (`false`: stop).
fn park(topology: &Topology, opts: &RunOptions, ends: park::Ends) -> bool {
    let (Some(policy), Some(control)) = (&opts.park, &opts.control) else {
        return false;
    };
    let topics = park::watched_topics(topology);
    let parking = policy.watcher.park(&topology.application_id, topics, ends);
    control.publish(|l| l.parked = true);
    let since = Instant::now();
    let woken = loop {
        if opts.stop.load(Ordering::Relaxed) {
            break false;
        }
        if control.has_requests() {
            break true;
        }
        crossbeam_channel::select! {
            recv(parking.woken()) -> _ => break true,
            recv(control.queued()) -> _ => {}
            // `Control::wake` follows a stop; this is a fallback.
            default(Duration::from_secs(5)) => {}
        }
    };
    drop(parking);
    control.publish(|l| l.parked = false);
    if woken {
        tracing::info!(
            parked_s = since.elapsed().as_secs(),
            "woken: starting again"
        );
    }
    woken
}

/// After an attempt failed with `e` (having committed, or not): the wait
/// before the next one, or the error that ends the run (`e` itself when
/// it is not recovered from, or why recovery gave up).
fn wait_before_next(
    e: RunError,
    recovery: &mut Recovery,
    exactly_once: bool,
    stop: &AtomicBool,
    progressed: bool,
) -> Result<Duration, RunError> {
    if !exactly_once || stop.load(Ordering::Relaxed) || !recoverable(&e, recovery.attempts > 0) {
        return Err(e);
    }
    let wait = match recovery.next(&e, progressed, Instant::now()) {
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
    Ok(wait)
}
