//! Two `sluice run` processes with one `application.id` share the
//! partitions of a real Kafka broker. When the second joins, the first's
//! partitions are revoked: its in-flight work is finished and committed
//! first, so the output has every record exactly once, with no repeats,
//! even though the guarantee is only at-least-once.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::large_orders::{self, check_exact};
use crate::support;

const PARTITIONS: i32 = 6;

fn start(pipeline: &std::path::Path, brokers: &str, log: &std::path::Path) -> Child {
    Command::new(support::sluice_bin())
        .args(["run", pipeline.to_str().unwrap(), "--brokers", brokers])
        .env("RUST_LOG", "info,librdkafka=off")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("starting sluice run")
}

fn log_of(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn wait_until(
    what: &str,
    children: &mut [&mut Child],
    logs: &[&std::path::Path],
    mut done: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while !done() {
        for child in children.iter_mut() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "a sluice process exited ({status}) before {what}; logs:\n{}",
                    logs.iter()
                        .map(|l| log_of(l))
                        .collect::<Vec<_>>()
                        .join("\n----\n")
                );
            }
        }
        assert!(
            Instant::now() < deadline,
            "gave up waiting for {what}; logs:\n{}",
            logs.iter()
                .map(|l| log_of(l))
                .collect::<Vec<_>>()
                .join("\n----\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn terminate(child: &mut Child, log: &std::path::Path) {
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "SIGTERM stops cleanly; log:\n{}",
        log_of(log)
    );
}

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
    let (log_a, log_b) = (dir.path().join("a.log"), dir.path().join("b.log"));
    let mut a = start(&pipeline, &brokers, &log_a);
    wait_until("instance A to commit", &mut [&mut a], &[&log_a], || {
        support::committed(&brokers, &app, &source, PARTITIONS)
            .iter()
            .any(|&c| c > 0)
    });

    let mut b = start(&pipeline, &brokers, &log_b);
    wait_until(
        "the rebalance",
        &mut [&mut a, &mut b],
        &[&log_a, &log_b],
        || {
            log_of(&log_a).contains("partitions revoked; in-flight work finished and committed")
                && log_of(&log_b).contains("partitions assigned")
        },
    );
    support::produce(&brokers, &source, second_half);
    let ends = support::high_watermarks(&brokers, &source, PARTITIONS);
    wait_until(
        "both instances to commit everything",
        &mut [&mut a, &mut b],
        &[&log_a, &log_b],
        || support::committed(&brokers, &app, &source, PARTITIONS) == ends,
    );
    terminate(&mut b, &log_b);
    terminate(&mut a, &log_a);
    for log in [&log_a, &log_b] {
        let text = log_of(log);
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
