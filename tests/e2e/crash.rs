//! Crash recovery: SIGKILL a `sluice run` halfway, start it again, and
//! check at-least-once: every expected output at least once, nothing
//! unexpected, and the committed offsets at the high watermarks.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::large_orders::{self, PARTITIONS};
use crate::support;

fn start(pipeline: &std::path::Path, brokers: &str, log: &std::path::Path) -> Child {
    Command::new(support::sluice_bin())
        .args(["run", pipeline.to_str().unwrap(), "--brokers", brokers])
        .env("RUST_LOG", "info,librdkafka=off")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("starting sluice run")
}

fn wait_until(
    what: &str,
    child: &mut Child,
    log: &std::path::Path,
    mut done: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while !done() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "sluice exited ({status}) before {what}; its log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "gave up waiting for {what}; sluice's log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigkill_halfway_then_restart_loses_nothing() {
    let kafka = sluice::kafka::embedded::EmbeddedKafka::start(1).unwrap();
    let brokers = kafka.bootstrap_servers();
    let app = support::unique("crash");
    let (source, sink, dlq) = (
        format!("{app}-orders"),
        format!("{app}-alerts"),
        format!("{app}-dlq"),
    );
    for t in [&source, &sink, &dlq] {
        kafka.create_topic(t, PARTITIONS).unwrap();
    }
    let input = large_orders::orders(10_000, 11);
    let (alerts, _) = large_orders::expected(&input);
    // The input arrives while the pipeline runs: a first part before it
    // starts, a second while it runs, the rest after the crash.
    let (first_part, rest) = input.split_at(3_000);
    let (second_part, last_part) = rest.split_at(3_000);
    support::produce(&brokers, &source, first_part);

    let dir = tempfile::tempdir().unwrap();
    let component = support::component("plugins/large-orders");
    // A short session lets the restarted process take over the killed
    // one's partitions without waiting out the default 45 s.
    let throttle =
        "[kafka]\n\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"500\"\n";
    let pipeline = support::write_pipeline(
        dir.path(),
        &large_orders::pipeline_text(&app, &source, &sink, &dlq, &component, throttle),
    );
    let log = dir.path().join("first.log");
    let mut first = start(&pipeline, &brokers, &log);
    let sink_count = || {
        support::high_watermarks(&brokers, &sink, PARTITIONS)
            .iter()
            .sum::<i64>() as usize
    };
    wait_until("a first commit", &mut first, &log, || {
        support::committed(&brokers, &app, &source, PARTITIONS)
            .iter()
            .any(|&c| c > 0)
    });
    let before = sink_count();
    support::produce(&brokers, &source, second_part);
    wait_until("output of the second part", &mut first, &log, || {
        sink_count() > before
    });
    first.kill().expect("SIGKILL");
    first.wait().unwrap();
    support::produce(&brokers, &source, last_part);
    let ends = support::high_watermarks(&brokers, &source, PARTITIONS);
    let at_kill = support::committed(&brokers, &app, &source, PARTITIONS);
    eprintln!(
        "killed after {} alerts; committed {at_kill:?} of {ends:?}",
        sink_count()
    );
    assert!(
        at_kill.iter().zip(&ends).any(|(c, e)| c < e),
        "the kill must land before the input is done: committed {at_kill:?}, ends {ends:?}"
    );

    let log = dir.path().join("second.log");
    let mut second = start(&pipeline, &brokers, &log);
    wait_until(
        "the restarted run to commit everything",
        &mut second,
        &log,
        || support::committed(&brokers, &app, &source, PARTITIONS) == ends,
    );
    let term = Command::new("kill")
        .args(["-TERM", &second.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let status = second.wait().unwrap();
    let second_log = std::fs::read_to_string(&log).unwrap();
    assert!(
        status.success(),
        "SIGTERM stops cleanly; log:\n{second_log}"
    );
    assert!(second_log.contains("stopped cleanly"), "{second_log}");

    let out = support::read_all(&brokers, &sink, PARTITIONS);
    let got: HashSet<(Vec<u8>, Vec<u8>)> = out
        .iter()
        .map(|r| (r.key.clone().unwrap(), r.value.clone().unwrap()))
        .collect();
    let want: HashSet<(Vec<u8>, Vec<u8>)> = alerts.iter().cloned().collect();
    let missing = want.difference(&got).count();
    let unexpected = got.difference(&want).count();
    assert_eq!(
        (missing, unexpected),
        (0, 0),
        "every expected alert at least once, nothing else"
    );
    assert!(out.len() >= alerts.len());
    eprintln!(
        "{} alerts expected, {} written ({} repeated after the crash)",
        alerts.len(),
        out.len(),
        out.len() - alerts.len()
    );
    assert_eq!(
        support::committed(&brokers, &app, &source, PARTITIONS),
        ends
    );
}
