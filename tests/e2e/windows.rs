//! Windowed aggregations end to end: a reference model replays every
//! partition of the input in offset order, with its own stream time, and
//! the engine's results must equal it, for both emit modes, on the
//! embedded broker with 4 partitions; and the page-views sample gives its
//! expected output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sluice::kafka::embedded::EmbeddedKafka;
use sluice::state::changelog;

use crate::large_orders::run_until_drained_on;
use crate::support::{self, Read, Rng};

const PARTITIONS: i32 = 4;

/// (key, start, end) -> count.
type Results = BTreeMap<(String, i64, i64), u64>;

/// Hopping windows of `size` every `advance`, grace `grace`, over one
/// partition's (key, event time) in offset order. Returns every window's
/// count and the windows closed by the end.
fn reference(records: &[(String, i64)], size: i64, advance: i64, grace: i64) -> (Results, Results) {
    let mut counts = Results::new();
    let mut stream = i64::MIN;
    for (key, t) in records {
        stream = stream.max(*t);
        let mut start = t - t.rem_euclid(advance);
        while start + size > *t {
            if stream < start + size + grace {
                *counts
                    .entry((key.clone(), start, start + size))
                    .or_default() += 1;
            }
            start -= advance;
        }
    }
    let closed = counts
        .iter()
        .filter(|((_, _, end), _)| end + grace <= stream)
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    (counts, closed)
}

fn parse_output(r: &Read) -> ((String, i64, i64), u64) {
    let key = String::from_utf8(r.key.clone().unwrap()).unwrap();
    let (k, w) = key.rsplit_once('@').unwrap();
    let (s, e) = w.split_once('/').unwrap();
    let count = String::from_utf8(r.value.clone().unwrap())
        .unwrap()
        .parse()
        .unwrap();
    (
        (k.to_owned(), s.parse().unwrap(), e.parse().unwrap()),
        count,
    )
}

/// Clicks with bounded disorder: time moves on by 0 to `10 * (steps - 1)`
/// ms a record; a record is late by up to 150 ms (more than 90 ms behind,
/// it misses even the newest window it falls into).
fn clicks(n: usize, seed: u64, keys: u64, steps: u64) -> Vec<(Option<String>, Vec<u8>, i64)> {
    let mut rng = Rng::new(seed);
    let mut now = 10_000i64;
    (0..n)
        .map(|_| {
            now += rng.below(steps) as i64 * 10;
            let at = now - rng.below(16) as i64 * 10;
            let key = format!("k{}", rng.below(keys));
            (Some(key), format!(r#"{{"at":{at}}}"#).into_bytes(), 1)
        })
        .collect()
}

/// A windowed count of `source` (event time from `at`; hopping windows of
/// 100 every 30, grace 20) into `sink`; `extra` goes at the end.
fn windowed_count(
    dir: &Path,
    app: &str,
    source: &str,
    sink: &str,
    emit: &str,
    extra: &str,
) -> PathBuf {
    support::write_pipeline(
        dir,
        &format!(
            r#"
application.id = "{app}"
[processing]
max.batch.records = 128
commit.interval.ms = 100
[state]
dir = "{state}"
[sources.clicks]
topic = "{source}"
timestamp = "field"
timestamp-field = "at"
[steps.counts]
aggregate = "count"
inputs = ["clicks"]
window = {{ type = "hopping", size = 100, advance = 30, grace = 20 }}
emit = "{emit}"
[sinks.out]
topic = "{sink}"
inputs = ["counts"]
{extra}
"#,
            state = dir.join("state").display(),
        ),
    )
}

/// The reference over `topic` as the broker holds it, each partition
/// replayed in offset order: every window's count, and the closed ones.
fn reference_of(brokers: &str, topic: &str) -> (Results, Results) {
    let mut per_partition: BTreeMap<i32, Vec<(String, i64)>> = BTreeMap::new();
    let mut read = support::read_all(brokers, topic, PARTITIONS);
    read.sort_by_key(|r| (r.partition, r.offset));
    for r in &read {
        let v: serde_json::Value = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
        per_partition.entry(r.partition).or_default().push((
            String::from_utf8(r.key.clone().unwrap()).unwrap(),
            v["at"].as_i64().unwrap(),
        ));
    }
    let (mut all, mut closed) = (Results::new(), Results::new());
    for records in per_partition.values() {
        let (a, c) = reference(records, 100, 30, 20);
        all.extend(a);
        closed.extend(c);
    }
    (all, closed)
}

/// `on-window-close` results, each window at most once.
fn final_results(out: &[Read]) -> Results {
    let mut results = Results::new();
    for r in out {
        let (w, c) = parse_output(r);
        assert!(
            results.insert(w.clone(), c).is_none(),
            "{w:?} emitted twice"
        );
    }
    results
}

#[test]
fn windowed_counts_on_four_partitions_equal_the_reference_in_both_emit_modes() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let brokers = kafka.bootstrap_servers();
    let base = support::unique("windows");
    let source = format!("{base}-clicks");
    kafka.create_topic(&source, PARTITIONS).unwrap();
    let input = clicks(8_000, 17, 40, 4);
    support::produce(&brokers, &source, &input);
    let (all, closed) = reference_of(&brokers, &source);
    assert!(closed.len() > 1_000 && all.len() > closed.len());

    for emit in ["on-update", "on-window-close"] {
        let app = format!("{base}-{emit}");
        let sink = format!("{app}-out");
        kafka.create_topic(&sink, PARTITIONS).unwrap();
        kafka
            .create_topic(&changelog::topic(&app, "counts"), PARTITIONS)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let pipeline = windowed_count(dir.path(), &app, &source, &sink, emit, "");
        let summary = run_until_drained_on(&pipeline, &brokers, &source, PARTITIONS);
        let out = support::read_all(&brokers, &sink, PARTITIONS);
        let mut results = Results::new();
        if emit == "on-update" {
            assert_eq!(
                out.len() as u64,
                all.values().sum::<u64>(),
                "one update per (record, window)"
            );
            let mut sorted: Vec<&Read> = out.iter().collect();
            sorted.sort_by_key(|r| (r.partition, r.offset));
            for r in sorted {
                let (w, c) = parse_output(r);
                let prev = results.insert(w.clone(), c).unwrap_or(0);
                assert_eq!(prev + 1, c, "{w:?}: counts go up by one, in order");
            }
            assert_eq!(results, all, "on-update: final counts");
        } else {
            assert_eq!(
                final_results(&out),
                closed,
                "on-window-close: one final result per closed window"
            );
        }
        assert!(summary.counts.late > 0, "some records missed their windows");
    }
}

#[test]
fn the_page_views_sample_gives_the_expected_windows() {
    let dir = support::repo().join("plugins/page-views");
    let stdout = support::sluice_dev(&dir, "views.jsonl");
    let mut got: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for (key, value) in support::printed(&stdout, "page-stats") {
        assert!(
            got.insert(key.clone(), value).is_none(),
            "{key} emitted twice"
        );
    }
    assert_eq!(got, support::expected_jsonl(&dir.join("expected.jsonl")));
    let late = stdout
        .lines()
        .filter(|l| l.starts_with("page-views-dlq[") && l.contains("sluice.error.kind=late"))
        .count();
    assert_eq!(late, 4, "{stdout}");
}

#[test]
fn windows_killed_mid_run_give_the_results_of_an_uninterrupted_run() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let brokers = kafka.bootstrap_servers();
    let base = support::unique("win-crash");
    let input = clicks(40_000, 29, 50, 3);
    let (first, rest) = input.split_at(10_000);
    let (second, third) = rest.split_at(10_000);

    for (emit, points) in [
        // Before the changelog is acknowledged, outputs may go out twice.
        ("on-update", ["changelog-sent:3", "state-written:3"]),
        // After it, a closed window is never emitted again.
        ("on-window-close", ["changelog-acked:3", "state-written:3"]),
    ] {
        let app = format!("{base}-{emit}");
        let (topic, sink) = (format!("{app}-in"), format!("{app}-out"));
        for t in [&topic, &sink, &changelog::topic(&app, "counts")] {
            kafka.create_topic(t, PARTITIONS).unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let pipeline = windowed_count(
            dir.path(),
            &app,
            &topic,
            &sink,
            emit,
            "[kafka]\n\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"500\"",
        );
        let log = |n: &str| dir.path().join(format!("{n}.log"));
        support::produce(&brokers, &topic, first);
        support::crash_at(&pipeline, &brokers, log("1"), points[0]);
        support::produce(&brokers, &topic, second);
        support::crash_at(&pipeline, &brokers, log("2"), points[1]);
        support::produce(&brokers, &topic, third);
        support::run_to_end(&pipeline, &brokers, &app, &[(&topic, PARTITIONS)], log("3"));

        let (all, closed) = reference_of(&brokers, &topic);
        let mut out = support::read_all(&brokers, &sink, PARTITIONS);
        out.sort_by_key(|r| (r.partition, r.offset));
        if emit == "on-update" {
            let mut results = Results::new();
            for r in &out {
                let (w, c) = parse_output(r);
                results.insert(w, c);
            }
            assert!(
                out.len() as u64 >= all.values().sum::<u64>(),
                "at least once"
            );
            let differing: Vec<_> = all
                .iter()
                .filter(|(w, c)| results.get(*w) != Some(c))
                .map(|(w, c)| (w, c, results.get(w)))
                .take(10)
                .collect();
            let extra: Vec<_> = results
                .keys()
                .filter(|w| !all.contains_key(*w))
                .take(10)
                .collect();
            assert!(
                differing.is_empty() && extra.is_empty(),
                "on-update after kills: (window, want, got) {differing:?}; unexpected {extra:?}"
            );
        } else {
            assert_eq!(final_results(&out), closed, "on-window-close after kills");
        }
    }
}
