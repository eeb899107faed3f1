//! Two `sluice run` processes with one `application.id` share the
//! partitions of a real Kafka broker. When the second joins, the first's
//! partitions are revoked: its in-flight work is finished and committed
//! first, so the output has every record exactly once, with no repeats,
//! even though the guarantee is only at-least-once.

use crate::large_orders::{self, check_exact};
use crate::support::{self, SluiceRun, wait_until};

const PARTITIONS: i32 = 6;

#[test]
fn a_second_instance_takes_partitions_without_repeating_records() {
    let Some(kafka) = support::RealKafka::start(19394) else {
        return;
    };
    let brokers = kafka.brokers.clone();
    let app = support::unique("rebalance");
    let (source, sink, dlq) = (
        format!("{app}-orders"),
        format!("{app}-alerts"),
        format!("{app}-dlq"),
    );
    support::create_topics(
        &brokers,
        &[
            (&source, PARTITIONS),
            (&sink, PARTITIONS),
            (&dlq, PARTITIONS),
        ],
    );
    let input = large_orders::orders(12_000, 5);
    let (alerts, _) = large_orders::expected(&input);
    let (first_half, second_half) = input.split_at(6_000);
    support::produce(&brokers, &source, first_half);

    let dir = tempfile::tempdir().unwrap();
    let component = support::component("plugins/large-orders");
    let kafka_settings =
        "[kafka]\n\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"500\"\n";
    let pipeline = support::write_pipeline(
        dir.path(),
        &large_orders::pipeline_text(&app, &source, &sink, &dlq, &component, kafka_settings),
    );
    let mut a = SluiceRun::start(&pipeline, &brokers, dir.path().join("a.log"));
    wait_until("instance A to commit", &mut [&mut a], || {
        support::committed(&brokers, &app, &source, PARTITIONS)
            .iter()
            .any(|&c| c > 0)
    });

    let mut b = SluiceRun::start(&pipeline, &brokers, dir.path().join("b.log"));
    let (log_a, log_b) = (a.log.clone(), b.log.clone());
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    wait_until("the rebalance", &mut [&mut a, &mut b], || {
        read(&log_a).contains("partitions revoked; in-flight work finished and committed")
            && read(&log_b).contains("partitions assigned")
    });
    support::produce(&brokers, &source, second_half);
    let ends = support::high_watermarks(&brokers, &source, PARTITIONS);
    wait_until(
        "both instances to commit everything",
        &mut [&mut a, &mut b],
        || support::committed(&brokers, &app, &source, PARTITIONS) == ends,
    );
    for text in [b.terminate(), a.terminate()] {
        let summary = text
            .lines()
            .rfind(|l| l.starts_with("in "))
            .expect("summary line");
        let records_in: u64 = summary[3..].split(' ').next().unwrap().parse().unwrap();
        assert!(
            records_in > 0,
            "both instances processed records: {summary}"
        );
    }

    let input_read = support::read_all(&brokers, &source, PARTITIONS);
    check_exact(
        &input_read,
        &support::read_all(&brokers, &sink, PARTITIONS),
        &alerts,
    );
    assert_eq!(
        support::committed(&brokers, &app, &source, PARTITIONS),
        ends
    );
}
