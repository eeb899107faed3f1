//! Crash recovery: SIGKILL a `sluice run` halfway, start it again, and
//! check at-least-once: every expected output at least once, nothing
//! unexpected, and the committed offsets at the high watermarks.

use std::collections::HashSet;

use crate::large_orders::{self, PARTITIONS};
use crate::support::{self, SluiceRun, wait_until};

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
    let mut first = SluiceRun::start(&pipeline, &brokers, dir.path().join("first.log"));
    let sink_count = || {
        support::high_watermarks(&brokers, &sink, PARTITIONS)
            .iter()
            .sum::<i64>() as usize
    };
    wait_until("a first commit", &mut [&mut first], || {
        support::committed(&brokers, &app, &source, PARTITIONS)
            .iter()
            .any(|&c| c > 0)
    });
    let before = sink_count();
    support::produce(&brokers, &source, second_part);
    wait_until("output of the second part", &mut [&mut first], || {
        sink_count() > before
    });
    first.kill();
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

    let mut second = SluiceRun::start(&pipeline, &brokers, dir.path().join("second.log"));
    wait_until(
        "the restarted run to commit everything",
        &mut [&mut second],
        || support::committed(&brokers, &app, &source, PARTITIONS) == ends,
    );
    second.terminate();

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
