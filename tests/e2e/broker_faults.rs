//! Broker faults under exactly-once, on a real Kafka broker, while input
//! keeps arriving: the broker frozen (SIGSTOP) for longer than the
//! transaction timeout, and again for less; and the broker killed and
//! started again on its data 25 s later. The run must never hang, must
//! resume by itself (aborting what could not commit, and re-creating its
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
    let log = commit_all_and_stop(run, &brokers, &app, &topic, started, "the long freeze");
    let recoveries = log.matches("exactly-once: recovering").count();
    eprintln!(
        "{recoveries} recoveries; run stopped {} s after the test started",
        started.elapsed().as_secs()
    );
    assert_each_result_once(&brokers, &app, &topic, input.len());
    eprintln!("test took {} s", started.elapsed().as_secs());
}

/// Waits until the run committed all of `topic`, stops it (SIGTERM: it
/// must stop cleanly), shows its account of the faults, and checks that
/// it says it recovered from `fault`. Returns its log.
fn commit_all_and_stop(
    mut run: SluiceRun,
    brokers: &str,
    app: &str,
    topic: &str,
    started: Instant,
    fault: &str,
) -> String {
    let ends = support::high_watermarks(brokers, topic, PARTITIONS);
    support::wait_until("the run to commit all its input", &mut [&mut run], || {
        support::committed(brokers, app, topic, PARTITIONS)
            .iter()
            .zip(&ends)
            .all(|(c, e)| *e == 0 || c == e)
    });
    eprintln!("all input committed {} s in", started.elapsed().as_secs());
    let log = run.terminate_within(Duration::from_secs(60));
    show_faults(&log);
    assert!(
        log.contains("exactly-once: recovered"),
        "{fault} was recovered from, and the log says so:\n{log}"
    );
    log
}

/// Prints the run's own account of the faults.
fn show_faults(log: &str) {
    for line in log.lines().filter(|l| {
        ["WARN", "ERROR", "exactly-once", "assigned", "revoked"]
            .iter()
            .any(|s| l.contains(s))
    }) {
        eprintln!("  sluice: {line}");
    }
}

/// A `read_committed` read of every output topic equals the independent
/// model of the input topic (at least `produced` records): each final
/// result once, each update once.
fn assert_each_result_once(brokers: &str, app: &str, topic: &str, produced: usize) {
    let per_partition = event_times(brokers, topic);
    let records: usize = per_partition.values().map(Vec::len).sum();
    assert!(records >= produced, "{records} records in the input topic");
    for case in &CRASH_CASES {
        let (all, closed) = case.expected(&per_partition);
        assert!(closed.len() > 100, "{}: {} closed", case.name, closed.len());
        // `results` fails on a final result emitted twice.
        assert_eq!(
            results(brokers, app, case, "on-window-close"),
            closed,
            "{} on-window-close",
            case.name
        );
        assert_eq!(
            results(brokers, app, case, "on-update"),
            all,
            "{} on-update",
            case.name
        );
        if case.name == "hopping" {
            // One update per (record, window) it was counted in: none
            // repeated, though transactions were aborted and redone.
            let updates =
                support::read_all(brokers, &format!("{app}-hopping-on-update"), PARTITIONS).len();
            assert_eq!(updates as u64, all.values().sum::<u64>(), "hopping updates");
        }
    }
}

/// The restart test's broker (the freeze test's is 19402).
const RESTART_PORT: u16 = 19404;
/// How long the broker stays down, as in the report: longer than the
/// transaction timeout (the transaction open at the crash is aborted, and
/// the producer's epoch bumped, once the broker is back) and the consumer
/// session timeout, and as long as the transaction deadline (2 x 10 s +
/// 5 s), so the calls under way at the crash fail before it is back.
const DOWN_FOR: Duration = Duration::from_secs(25);

/// `scripts/kafka.sh <args>`, which must succeed.
fn kafka_sh(args: &[&str]) {
    let out = std::process::Command::new(support::repo().join("scripts/kafka.sh"))
        .args(args)
        .output()
        .expect("running scripts/kafka.sh");
    assert!(
        out.status.success(),
        "scripts/kafka.sh {} failed:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The input producer's state: producing, asked to pause (the broker is
/// about to go down), paused.
const PRODUCING: u8 = 0;
const PAUSE: u8 = 1;
const PAUSED: u8 = 2;

#[test]
fn exactly_once_resumes_by_itself_after_a_broker_restart_and_outputs_each_result_once() {
    let Some(kafka) = support::RealKafka::start(RESTART_PORT) else {
        return;
    };
    if kafka.pid().is_none() {
        eprintln!(
            "SKIPPED: the broker named by SLUICE_KAFKA_BROKERS cannot be restarted by this test"
        );
        return;
    }
    let port = RESTART_PORT.to_string();
    let started = Instant::now();
    let brokers = kafka.brokers.clone();
    let app = support::unique("restart");
    let dir = tempfile::tempdir().unwrap();
    // The transaction timeout is sluice's default (10 s).
    let (topic, pipeline) = exactly_once_counts(
        &brokers,
        &app,
        dir.path(),
        "[kafka]\n\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"500\"",
    );
    let input = clicks_of_today(10_500, 41);
    // Input arrives before the run starts, continuously while it runs (a
    // chunk every 150 ms, paused while the broker is down: the test's own
    // producer would otherwise wait on it, not sluice), in a burst that
    // the run is in the middle of at the crash (seconds of work: a
    // transaction with outputs is open), and right after the restart,
    // while the run recovers.
    let (first, rest) = input.split_at(1_000);
    let (steady, rest) = rest.split_at(1_000);
    let (burst, last) = rest.split_at(8_000);
    support::produce(&brokers, &topic, first);
    let state = Arc::new(std::sync::atomic::AtomicU8::new(PRODUCING));
    let producer = {
        let (brokers, topic, state) = (brokers.clone(), topic.clone(), state.clone());
        let steady = steady.to_vec();
        std::thread::spawn(move || {
            for chunk in steady.chunks(100) {
                if state
                    .compare_exchange(PAUSE, PAUSED, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    while state.load(Ordering::Acquire) != PRODUCING {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
                support::produce(&brokers, &topic, chunk);
                std::thread::sleep(Duration::from_millis(150));
            }
        })
    };

    let mut run = SluiceRun::start(&pipeline, &brokers, dir.path().join("run.log"));
    wait_for_commits_past(
        &mut run,
        &brokers,
        &app,
        &topic,
        0,
        Duration::from_secs(60),
        "a first commit",
    );

    // The steady input pauses; once it is committed, the burst.
    state.store(PAUSE, Ordering::Release);
    while state.load(Ordering::Acquire) != PAUSED && !producer.is_finished() {
        std::thread::sleep(Duration::from_millis(10));
    }
    let produced = support::high_watermarks(&brokers, &topic, PARTITIONS)
        .iter()
        .sum::<i64>();
    let caught_up = wait_for_commits_past(
        &mut run,
        &brokers,
        &app,
        &topic,
        produced - 1,
        Duration::from_secs(60),
        "the steady input's commit",
    );
    support::produce(&brokers, &topic, burst);
    let before = wait_for_commits_past(
        &mut run,
        &brokers,
        &app,
        &topic,
        caught_up,
        Duration::from_secs(60),
        "a first commit of the burst",
    );
    // SIGKILL, a crash: the broker neither answers the requests under way
    // nor closes its log cleanly, and recovers it at the restart (a
    // SIGTERM's controlled shutdown is the gentler case of the outage).
    kafka_sh(&["down", "--port", &port, "--kill"]);
    let down_at = Instant::now();
    eprintln!(
        "broker killed {} s in, with {} of the burst's {} records committed; up again in {} s",
        started.elapsed().as_secs(),
        before - caught_up,
        burst.len(),
        DOWN_FOR.as_secs()
    );
    std::thread::sleep(DOWN_FOR);
    kafka_sh(&["up", "--port", &port]);
    eprintln!(
        "broker up again {} s in, after {} s down",
        started.elapsed().as_secs(),
        down_at.elapsed().as_secs()
    );
    state.store(PRODUCING, Ordering::Release);
    let up_at = Instant::now();
    support::produce(&brokers, &topic, last);
    // Every input record committed: the burst's last ones and those
    // produced since the restart only by a run that recovered.
    wait_for_commits_past(
        &mut run,
        &brokers,
        &app,
        &topic,
        input.len() as i64 - 1,
        RESUME_LIMIT,
        "resuming after the restart",
    );
    eprintln!(
        "all input committed {} s after the restart",
        up_at.elapsed().as_secs()
    );

    producer.join().expect("the input producer");
    commit_all_and_stop(run, &brokers, &app, &topic, started, "the restart");
    assert_each_result_once(&brokers, &app, &topic, input.len());
    eprintln!("test took {} s", started.elapsed().as_secs());
}
