//! Broker faults under exactly-once, on a real Kafka broker: the broker
//! frozen (SIGSTOP) for longer than the transaction timeout, and again for
//! less, while input keeps arriving. The run must never hang, must resume
//! by itself (aborting what could not commit, and re-creating its
//! transactional producer when the broker fenced it), and a
//! `read_committed` reader must see every result exactly once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::exactly_once::{clicks_of_today, exactly_once_counts};
use crate::support::{self, SluiceRun};
use crate::windows::{CRASH_CASES, PARTITIONS, event_times, results};

/// The producer's `transaction.timeout.ms`: the long freeze outlasts it
/// (the broker then aborts the open transaction and fences the producer's
/// epoch), the short one does not.
const TRANSACTION_TIMEOUT_MS: u64 = 5_000;
const LONG_FREEZE: Duration = Duration::from_secs(15);
const SHORT_FREEZE: Duration = Duration::from_secs(3);
/// How long the run may take to commit again after a thaw: a recovery
/// takes seconds (a transaction deadline of 2 x 5 s + 5 s at most, a wait
/// of 1 s, a new producer and consumer, stores restored); more is a hang.
const RESUME_LIMIT: Duration = Duration::from_secs(120);

/// SIGCONTs the broker when dropped, so that a failing test never leaves
/// it stopped.
struct Frozen(i32);

impl Frozen {
    fn freeze(pid: i32, for_: Duration) {
        support::signal(pid, "STOP");
        let thaw = Frozen(pid);
        eprintln!("broker {pid} frozen for {} s", for_.as_secs());
        std::thread::sleep(for_);
        drop(thaw);
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        support::signal(self.0, "CONT");
        eprintln!("broker {} thawed", self.0);
    }
}

/// Sum of the group's committed offsets on `topic` (`-1` counts as 0).
fn committed_total(brokers: &str, app: &str, topic: &str) -> i64 {
    support::committed(brokers, app, topic, PARTITIONS)
        .iter()
        .map(|&o| o.max(0))
        .sum()
}

/// Waits (at most `limit`) until the group committed more than `above` on
/// `topic`; fails at once if the run exits.
fn wait_for_commits_past(
    run: &mut SluiceRun,
    brokers: &str,
    app: &str,
    topic: &str,
    above: i64,
    limit: Duration,
    what: &str,
) -> i64 {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = run.child.try_wait().unwrap() {
            panic!(
                "sluice exited ({status}) before {what}; log:\n{}",
                run.log()
            );
        }
        let now = committed_total(brokers, app, topic);
        if now > above {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "no commit past {above} within {} s: {what} did not happen (a hang?); log:\n{}",
            limit.as_secs(),
            run.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn exactly_once_resumes_by_itself_after_broker_freezes_and_outputs_each_result_once() {
    let Some(kafka) = support::RealKafka::start(19402) else {
        return;
    };
    let Some(pid) = kafka.pid() else {
        eprintln!(
            "SKIPPED: the broker named by SLUICE_KAFKA_BROKERS cannot be frozen by this test"
        );
        return;
    };
    let started = Instant::now();
    let brokers = kafka.brokers.clone();
    let app = support::unique("freeze");
    let dir = tempfile::tempdir().unwrap();
    let (topic, pipeline) = exactly_once_counts(
        &brokers,
        &app,
        dir.path(),
        &format!(
            "[kafka]\n\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"500\"\n\"transaction.timeout.ms\" = \"{TRANSACTION_TIMEOUT_MS}\""
        ),
    );
    let input = clicks_of_today(16_000, 37);
    // The input arrives continuously, through both freezes: a chunk every
    // 150 ms, about 20 s of it when the broker answers.
    let (first, rest) = input.split_at(2_000);
    support::produce(&brokers, &topic, first);
    let producing = Arc::new(AtomicBool::new(true));
    let producer = {
        let (brokers, topic, producing) = (brokers.clone(), topic.clone(), producing.clone());
        let rest = rest.to_vec();
        std::thread::spawn(move || {
            for chunk in rest.chunks(100) {
                support::produce(&brokers, &topic, chunk);
                std::thread::sleep(Duration::from_millis(150));
            }
            producing.store(false, Ordering::Relaxed);
        })
    };

    let mut run = SluiceRun::start(&pipeline, &brokers, dir.path().join("run.log"));
    let before = wait_for_commits_past(
        &mut run,
        &brokers,
        &app,
        &topic,
        0,
        Duration::from_secs(60),
        "a first commit",
    );
    eprintln!("first commit {} s in", started.elapsed().as_secs());

    // Longer than the transaction timeout: the open transaction cannot
    // commit, and the broker aborts it and fences the producer's epoch.
    Frozen::freeze(pid, LONG_FREEZE);
    let after_long = wait_for_commits_past(
        &mut run,
        &brokers,
        &app,
        &topic,
        before,
        RESUME_LIMIT,
        "resuming after the long freeze",
    );
    eprintln!(
        "committed {before} before the long freeze, {after_long} after it ({} s in)",
        started.elapsed().as_secs()
    );

    // Shorter than the transaction timeout.
    Frozen::freeze(pid, SHORT_FREEZE);
    wait_for_commits_past(
        &mut run,
        &brokers,
        &app,
        &topic,
        after_long,
        RESUME_LIMIT,
        "resuming after the short freeze",
    );

    producer.join().expect("the input producer");
    assert!(!producing.load(Ordering::Relaxed));
    let ends = support::high_watermarks(&brokers, &topic, PARTITIONS);
    support::wait_until("the run to commit all its input", &mut [&mut run], || {
        support::committed(&brokers, &app, &topic, PARTITIONS)
            .iter()
            .zip(&ends)
            .all(|(c, e)| *e == 0 || c == e)
    });
    eprintln!("all input committed {} s in", started.elapsed().as_secs());
    let log = run.terminate_within(Duration::from_secs(60));
    // The run's own account of the faults.
    for line in log.lines().filter(|l| {
        ["WARN", "ERROR", "exactly-once", "assigned", "revoked"]
            .iter()
            .any(|s| l.contains(s))
    }) {
        eprintln!("  sluice: {line}");
    }
    assert!(
        log.contains("exactly-once: recovered"),
        "the long freeze was recovered from, and the log says so:\n{log}"
    );
    let recoveries = log.matches("exactly-once: recovering").count();
    eprintln!(
        "{recoveries} recoveries; run stopped {} s after the test started",
        started.elapsed().as_secs()
    );

    let per_partition = event_times(&brokers, &topic);
    let records: usize = per_partition.values().map(Vec::len).sum();
    assert!(
        records >= input.len(),
        "{records} records in the input topic"
    );
    for case in &CRASH_CASES {
        let (all, closed) = case.expected(&per_partition);
        assert!(closed.len() > 100, "{}: {} closed", case.name, closed.len());
        // `results` fails on a final result emitted twice.
        assert_eq!(
            results(&brokers, &app, case, "on-window-close"),
            closed,
            "{} on-window-close",
            case.name
        );
        assert_eq!(
            results(&brokers, &app, case, "on-update"),
            all,
            "{} on-update",
            case.name
        );
        if case.name == "hopping" {
            // One update per (record, window) it was counted in: none
            // repeated, though transactions were aborted and redone.
            let updates =
                support::read_all(&brokers, &format!("{app}-hopping-on-update"), PARTITIONS).len();
            assert_eq!(updates as u64, all.values().sum::<u64>(), "hopping updates");
        }
    }
    eprintln!("test took {} s", started.elapsed().as_secs());
}
