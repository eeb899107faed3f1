//! Exactly-once (`processing.guarantee = "exactly-once"`) on a real Kafka
//! broker: the embedded one has no transactions. Windowed counts killed at
//! every commit point, before and after the transaction commits, give
//! every output exactly once to a `read_committed` reader: no repeated
//! update, no repeated final result.

use std::path::{Path, PathBuf};

use crate::support;
use crate::windows::{
    CRASH_CASES, PARTITIONS, clicks, event_times, results, step_topics, windowed_counts,
};

/// The windowed counts of every crash case over `<app>-in`, exactly-once,
/// with `kafka` lines, written in `dir`; its topics created on `brokers`
/// (sinks only: Sluice creates the changelogs, compacted). Returns the
/// source topic and the pipeline file.
pub fn exactly_once_counts(brokers: &str, app: &str, dir: &Path, kafka: &str) -> (String, PathBuf) {
    let topic = format!("{app}-in");
    let mut topics = vec![topic.clone()];
    topics.extend(
        step_topics(app, &CRASH_CASES)
            .into_iter()
            .filter(|t| !t.ends_with("-changelog")),
    );
    let specs: Vec<(&str, i32)> = topics.iter().map(|t| (t.as_str(), PARTITIONS)).collect();
    support::create_topics(brokers, &specs);
    let pipeline = windowed_counts(
        dir,
        app,
        &topic,
        &CRASH_CASES,
        "timestamp = \"field\"\ntimestamp-field = \"at\"",
        kafka,
    );
    let text = std::fs::read_to_string(&pipeline).unwrap().replace(
        "[processing]",
        "[processing]\nprocessing.guarantee = \"exactly-once\"",
    );
    std::fs::write(&pipeline, text).unwrap();
    (topic, pipeline)
}

/// `n` clicks (`seed`, 50 keys) with event times of today: a real
/// broker's retention deletes records (inputs, and outputs that keep their
/// input's time) from 1970.
pub fn clicks_of_today(n: usize, seed: u64) -> Vec<(Option<String>, Vec<u8>, i64)> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    clicks(n, seed, 50, 3)
        .into_iter()
        .map(|(key, value, _)| {
            let v: serde_json::Value = serde_json::from_slice(&value).unwrap();
            let at = now + v["at"].as_i64().unwrap();
            (key, format!(r#"{{"at":{at}}}"#).into_bytes(), at)
        })
        .collect()
}

#[test]
fn windowed_counts_killed_at_every_commit_point_emit_each_result_once() {
    let Some(kafka) = support::RealKafka::start(19400) else {
        return;
    };
    let brokers = &kafka.brokers;
    let app = support::unique("eos");
    let dir = tempfile::tempdir().unwrap();
    let (topic, pipeline) = exactly_once_counts(
        brokers,
        &app,
        dir.path(),
        "[kafka]\n\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"500\"",
    );
    let input = clicks_of_today(24_000, 31);
    let parts: Vec<_> = input.chunks(6_000).collect();
    let log = |n: &str| dir.path().join(format!("{n}.log"));
    // Before the transaction commits (its records sent, or flushed), and
    // after it committed but before the local stores were written.
    for (i, point) in ["changelog-sent:3", "changelog-acked:3", "state-written:3"]
        .iter()
        .enumerate()
    {
        support::produce(brokers, &topic, parts[i]);
        let log = support::crash_at(&pipeline, brokers, log(&i.to_string()), point);
        assert!(
            log.contains("exactly-once: each commit is a transaction"),
            "{log}"
        );
    }
    support::produce(brokers, &topic, parts[3]);
    support::run_to_end(
        &pipeline,
        brokers,
        &app,
        &[(&topic, PARTITIONS)],
        log("end"),
    );

    let per_partition = event_times(brokers, &topic);
    for case in &CRASH_CASES {
        let (all, closed) = case.expected(&per_partition);
        assert!(closed.len() > 100, "{}: {} closed", case.name, closed.len());
        // `results` fails on a final result emitted twice.
        assert_eq!(
            results(brokers, &app, case, "on-window-close"),
            closed,
            "{} on-window-close",
            case.name
        );
        assert_eq!(
            results(brokers, &app, case, "on-update"),
            all,
            "{} on-update",
            case.name
        );
        if case.name == "hopping" {
            // One update per (record, window) it was counted in: none
            // repeated, though the run was killed three times.
            let updates =
                support::read_all(brokers, &format!("{app}-hopping-on-update"), PARTITIONS).len();
            assert_eq!(updates as u64, all.values().sum::<u64>(), "hopping updates");
        }
    }
}
