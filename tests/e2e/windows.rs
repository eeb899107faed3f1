//! Windowed aggregations end to end, on the embedded broker with 4
//! partitions: every window type in both emit modes equals the reference
//! models of `sluice-reference` over 50 seeds; the page-views and sessions
//! samples give their expected output; and kills mid-run change no result.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sluice::kafka::embedded::EmbeddedKafka;
use sluice::state::changelog;
use sluice_reference::{self as reference, Reference, Results};

use crate::large_orders::run_until_drained_on;
use crate::support::{self, Read, Rng, SluiceRun};

pub const PARTITIONS: i32 = 4;

/// Seeds of the reference test: seed `s` goes to partition `s % 4`.
const SEEDS: u64 = 50;

/// How far out of order a seed's records are (ms): beyond every case's
/// windows plus grace for some records.
const SPREAD: i64 = 150;

/// A window type, as a pipeline's window table and as its reference.
pub struct Case {
    pub name: &'static str,
    pub window: &'static str,
    pub reference: fn(&[(String, i64)]) -> Reference,
}

const CASES: [Case; 4] = [
    Case {
        name: "tumbling",
        window: r#"{ type = "tumbling", size = 100, grace = 20 }"#,
        reference: |r| reference::hopping(r, 100, 100, 20),
    },
    Case {
        name: "hopping",
        window: r#"{ type = "hopping", size = 100, advance = 30, grace = 20 }"#,
        reference: |r| reference::hopping(r, 100, 30, 20),
    },
    Case {
        name: "sliding",
        window: r#"{ type = "sliding", difference = 60, grace = 20 }"#,
        reference: |r| reference::sliding(r, 60, 20),
    },
    Case {
        name: "session",
        window: r#"{ type = "session", gap = 50, grace = 20 }"#,
        reference: |r| reference::sessions(r, 50, 20),
    },
];

/// Each partition's input: its seeds' records one after the other, each
/// seed a million ms after the one before, keyed `s<seed>-<key>`.
fn seeded_input() -> BTreeMap<i32, Vec<(String, i64)>> {
    let mut input: BTreeMap<i32, Vec<(String, i64)>> = BTreeMap::new();
    for seed in 1..=SEEDS {
        let records = input.entry((seed % PARTITIONS as u64) as i32).or_default();
        let base = 1_700_000_000_000 + seed as i64 * 1_000_000;
        records.extend(
            reference::records(seed, SPREAD)
                .into_iter()
                .map(|(key, t)| (format!("s{seed}-{key}"), base + t)),
        );
    }
    input
}

impl Case {
    /// Every window's final result and the closed windows' results, over
    /// each partition's (key, event time) in offset order.
    pub fn expected(
        &self,
        per_partition: &BTreeMap<i32, Vec<(String, i64)>>,
    ) -> (Results, Results) {
        let (mut all, mut closed) = (Results::new(), Results::new());
        for records in per_partition.values() {
            let r = (self.reference)(records);
            all.extend(r.all);
            closed.extend(r.closed);
        }
        (all, closed)
    }
}

/// Each partition's (key, event time from `at`) of `topic`, in offset order.
pub fn event_times(brokers: &str, topic: &str) -> BTreeMap<i32, Vec<(String, i64)>> {
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
    per_partition
}

/// The seeds whose windows differ between `want` and `got`.
fn differing_seeds(want: &Results, got: &Results) -> Vec<String> {
    let mut seeds: Vec<String> = want
        .iter()
        .filter(|(w, c)| got.get(*w) != Some(c))
        .map(|(w, _)| &w.0)
        .chain(got.keys().filter(|w| !want.contains_key(*w)).map(|w| &w.0))
        .map(|key| key.split_once('-').expect("s<seed>-<key>").0.to_owned())
        .collect();
    seeds.sort();
    seeds.dedup();
    seeds
}

#[test]
fn every_window_type_equals_the_reference_over_50_seeds_on_four_partitions() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let brokers = kafka.bootstrap_servers();
    let app = support::unique("windows");
    let source = format!("{app}-events");
    kafka.create_topic(&source, PARTITIONS).unwrap();
    let input = seeded_input();
    for (&partition, records) in &input {
        let records: Vec<(Option<String>, Vec<u8>, i64)> = records
            .iter()
            .map(|(k, t)| (Some(k.clone()), b"e".to_vec(), *t))
            .collect();
        support::produce_on(&brokers, &source, Some(partition), &records);
    }

    create_topics(&kafka, &app, &CASES);
    let dir = tempfile::tempdir().unwrap();
    let pipeline = windowed_counts(dir.path(), &app, &source, &CASES, "", "");
    let summary = run_until_drained_on(&pipeline, &brokers, &source, PARTITIONS);

    let mut late = 0;
    for case in &CASES {
        let (mut all, mut closed) = (Results::new(), Results::new());
        for records in input.values() {
            let r = (case.reference)(records);
            all.extend(r.all);
            closed.extend(r.closed);
            late += 2 * r.late;
        }
        assert!(
            closed.len() > 1_000,
            "{}: {} closed",
            case.name,
            closed.len()
        );

        for (emit, want) in [("on-update", &all), ("on-window-close", &closed)] {
            let got = results(&brokers, &app, case, emit);
            assert!(
                &got == want,
                "{} {emit}: seeds {:?} differ; replay with sluice_reference::records(seed, {SPREAD})",
                case.name,
                differing_seeds(want, &got)
            );
        }
    }
    assert_eq!(summary.counts.late, late, "late records, all steps");
}

/// An `on-update` output: the window, and its count (`None`: retracted).
fn parse_update(r: &Read) -> ((String, i64, i64), Option<u64>) {
    let key = String::from_utf8(r.key.clone().unwrap()).unwrap();
    let (k, w) = key.rsplit_once('@').unwrap();
    let (s, e) = w.split_once('/').unwrap();
    assert_eq!(r.header("sluice.window.start"), Some(s));
    assert_eq!(r.header("sluice.window.end"), Some(e));
    let count = r
        .value
        .as_deref()
        .map(|v| std::str::from_utf8(v).unwrap().parse().unwrap());
    (
        (k.to_owned(), s.parse().unwrap(), e.parse().unwrap()),
        count,
    )
}

/// Clicks with bounded disorder: time moves on by 0 to `10 * (steps - 1)`
/// ms a record; a record is late by up to 150 ms (more than 90 ms behind,
/// it misses even the newest window it falls into).
pub fn clicks(n: usize, seed: u64, keys: u64, steps: u64) -> Vec<(Option<String>, Vec<u8>, i64)> {
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

/// A pipeline of windowed counts over `source`: one step per case and
/// emit mode, named `<case>-<emit>` (its store too), each into the topic
/// `<app>-<step>`. `source_extra` goes into the source table, `extra` at
/// the end.
pub fn windowed_counts(
    dir: &Path,
    app: &str,
    source: &str,
    cases: &[Case],
    source_extra: &str,
    extra: &str,
) -> PathBuf {
    let mut text = format!(
        r#"
application.id = "{app}"
[processing]
max.batch.records = 128
commit.interval.ms = 100
[state]
dir = "{state}"
[sources.events]
topic = "{source}"
{source_extra}
"#,
        state = dir.join("state").display(),
    );
    for (case, emit) in steps(cases) {
        let step = format!("{}-{emit}", case.name);
        text.push_str(&format!(
            r#"[steps.{step}]
aggregate = "count"
inputs = ["events"]
window = {window}
emit = "{emit}"
[sinks.{step}-out]
topic = "{app}-{step}"
inputs = ["{step}"]
"#,
            window = case.window
        ));
    }
    text.push_str(extra);
    support::write_pipeline(dir, &text)
}

/// Each case in both emit modes.
fn steps(cases: &[Case]) -> impl Iterator<Item = (&Case, &'static str)> {
    cases
        .iter()
        .flat_map(|c| [(c, "on-update"), (c, "on-window-close")])
}

/// The topics of [`windowed_counts`]: sinks and changelogs.
pub fn step_topics(app: &str, cases: &[Case]) -> Vec<String> {
    steps(cases)
        .flat_map(|(case, emit)| {
            let step = format!("{}-{emit}", case.name);
            [format!("{app}-{step}"), changelog::topic(app, &step)]
        })
        .collect()
}

/// Creates the topics of [`windowed_counts`] on the embedded broker.
fn create_topics(kafka: &EmbeddedKafka, app: &str, cases: &[Case]) {
    for topic in step_topics(app, cases) {
        kafka.create_topic(&topic, PARTITIONS).unwrap();
    }
}

/// The results of one step: `on-update` outputs replayed as a table (a
/// tombstone takes a window away: a session merged into another), or
/// `on-window-close` results, each window at most once.
pub fn results(brokers: &str, app: &str, case: &Case, emit: &str) -> Results {
    let mut out = support::read_all(brokers, &format!("{app}-{}-{emit}", case.name), PARTITIONS);
    out.sort_by_key(|r| (r.partition, r.offset));
    if emit == "on-window-close" {
        return final_results(&out);
    }
    let mut table = Results::new();
    for r in &out {
        match parse_update(r) {
            (w, Some(c)) => table.insert(w, c),
            (w, None) => table.remove(&w),
        };
    }
    table
}

/// `on-window-close` results, each window at most once.
fn final_results(out: &[Read]) -> Results {
    let mut results = Results::new();
    for r in out {
        let (w, c) = parse_update(r);
        let c = c.unwrap_or_else(|| panic!("{w:?}: a tombstone from on-window-close"));
        assert!(
            results.insert(w.clone(), c).is_none(),
            "{w:?} emitted twice"
        );
    }
    results
}

/// Runs an example's sample with `sluice dev`: each result is printed
/// once, they equal `expected.jsonl`, and `late` records went to the DLQ.
fn sample_gives_expected(example: &str, input: &str, sink: &str, late: usize) {
    let dir = support::repo().join("plugins").join(example);
    let stdout = support::sluice_dev(&dir, input);
    let mut got: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for (key, value) in support::printed(&stdout, sink) {
        assert!(
            got.insert(key.clone(), value).is_none(),
            "{key} emitted twice"
        );
    }
    assert_eq!(got, support::expected_jsonl(&dir.join("expected.jsonl")));
    let dead = stdout
        .lines()
        .filter(|l| {
            l.starts_with(&format!("{example}-dlq[")) && l.contains("sluice.error.kind=late")
        })
        .count();
    assert_eq!(dead, late, "{stdout}");
}

#[test]
fn the_page_views_sample_gives_the_expected_windows() {
    sample_gives_expected("page-views", "views.jsonl", "page-stats", 4);
}

#[test]
fn the_user_sessions_sample_gives_the_expected_sessions() {
    // Includes a late event that merges two sessions, one exactly the gap
    // after the last, and one after its session closed (the DLQ).
    sample_gives_expected("user-sessions", "activity.jsonl", "user-sessions", 1);
}

/// The same sessions with the aggregator written in Python (`merge`
/// included): the same windows, the same late record.
#[test]
fn user_sessions_in_python_give_the_same_sessions() {
    sample_gives_expected("user-sessions-py", "activity.jsonl", "user-sessions-py", 1);
}

/// The window types of the crash test, over its clicks.
pub const CRASH_CASES: [Case; 3] = [
    Case {
        name: "hopping",
        window: r#"{ type = "hopping", size = 100, advance = 30, grace = 20 }"#,
        reference: |r| reference::hopping(r, 100, 30, 20),
    },
    Case {
        name: "sliding",
        window: r#"{ type = "sliding", difference = 60, grace = 20 }"#,
        reference: |r| reference::sliding(r, 60, 20),
    },
    Case {
        name: "session",
        window: r#"{ type = "session", gap = 800, grace = 20 }"#,
        reference: |r| reference::sessions(r, 800, 20),
    },
];

#[test]
fn windows_killed_mid_run_give_the_results_of_an_uninterrupted_run() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let brokers = kafka.bootstrap_servers();
    let app = support::unique("win-crash");
    let topic = format!("{app}-in");
    kafka.create_topic(&topic, PARTITIONS).unwrap();
    create_topics(&kafka, &app, &CRASH_CASES);
    let dir = tempfile::tempdir().unwrap();
    let pipeline = windowed_counts(
        dir.path(),
        &app,
        &topic,
        &CRASH_CASES,
        "timestamp = \"field\"\ntimestamp-field = \"at\"",
        "[kafka]\n\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"500\"",
    );
    let input = clicks(30_000, 29, 50, 3);
    let (first, rest) = input.split_at(10_000);
    let (second, third) = rest.split_at(10_000);
    let log = |n: &str| dir.path().join(format!("{n}.log"));
    // Killed after the changelog is acknowledged, so that a closed window
    // is never emitted again (before it, `on-window-close` may repeat a
    // result: exactly-once needs transactions); and after the local write.
    support::produce(&brokers, &topic, first);
    support::crash_at(&pipeline, &brokers, log("1"), "changelog-acked:3");
    support::produce(&brokers, &topic, second);
    support::crash_at(&pipeline, &brokers, log("2"), "state-written:3");
    support::produce(&brokers, &topic, third);
    support::run_to_end(&pipeline, &brokers, &app, &[(&topic, PARTITIONS)], log("3"));

    let per_partition = event_times(&brokers, &topic);
    for case in &CRASH_CASES {
        let (all, closed) = case.expected(&per_partition);
        // Apart from at-least-once repeats of updates, which a table
        // replay absorbs, the results are those of an uninterrupted run.
        for (emit, want) in [("on-update", &all), ("on-window-close", &closed)] {
            let got = results(&brokers, &app, case, emit);
            let differing: Vec<_> = want
                .iter()
                .filter(|(w, c)| got.get(*w) != Some(c))
                .map(|(w, c)| (w, c, got.get(w)))
                .take(10)
                .collect();
            let extra: Vec<_> = got
                .keys()
                .filter(|w| !want.contains_key(*w))
                .take(10)
                .collect();
            assert!(
                differing.is_empty() && extra.is_empty(),
                "{} {emit} after kills: (window, want, got) {differing:?}; unexpected {extra:?}",
                case.name
            );
        }
    }
}

#[test]
fn close_idle_after_closes_the_windows_of_idle_partitions_and_survives_a_restart() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let brokers = kafka.bootstrap_servers();
    let app = support::unique("idle");
    let (source, sink, dlq) = (
        format!("{app}-events"),
        format!("{app}-out"),
        format!("{app}-dlq"),
    );
    for t in [&source, &sink, &dlq, &changelog::topic(&app, "counts")] {
        kafka.create_topic(t, 2).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let pipeline = support::write_pipeline(
        dir.path(),
        &format!(
            r#"
application.id = "{app}"
[processing]
commit.interval.ms = 100
[state]
dir = "{state}"
[sources.events]
topic = "{source}"
[steps.counts]
aggregate = "count"
inputs = ["events"]
window = {{ type = "tumbling", size = 1000 }}
emit = "on-window-close"
late = "dlq"
close.idle.after = "500ms"
[sinks.out]
topic = "{sink}"
inputs = ["counts"]
[kafka]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "500"
"#,
            state = dir.path().join("state").display()
        ),
    );
    let event = |key: &str, at: i64| (Some(key.to_owned()), b"e".to_vec(), at);
    let results = || final_results(&support::read_all(&brokers, &sink, 2));
    let late = || {
        support::read_all(&brokers, &dlq, 2)
            .iter()
            .filter(|r| r.header("sluice.error.kind") == Some("late"))
            .count()
    };
    let key = |k: &str, s: i64, e: i64| (k.to_owned(), s, e);

    let mut run = SluiceRun::start(&pipeline, &brokers, dir.path().join("1.log"));
    support::produce_on(
        &brokers,
        &source,
        Some(0),
        &[event("k", 100), event("k", 900), event("k", 1500)],
    );
    support::produce_on(&brokers, &source, Some(1), &[event("j", 200)]);
    // [0, 1000) of k closes by stream time; the other two windows only
    // because their partitions went quiet.
    let want = Results::from([
        (key("k", 0, 1000), 2),
        (key("k", 1000, 2000), 1),
        (key("j", 0, 1000), 1),
    ]);
    support::wait_until("the idle windows to close", &mut [&mut run], || {
        results() == want
    });
    support::produce_on(&brokers, &source, Some(1), &[event("j", 300)]);
    support::wait_until(
        "a record for a closed window to go to the DLQ",
        &mut [&mut run],
        || late() == 1,
    );
    let log = run.terminate();
    assert!(log.contains("closing every open window"), "{log}");

    // The stream time the idle close set was committed: after a restart,
    // a record for the window it closed is still late.
    let mut run = SluiceRun::start(&pipeline, &brokers, dir.path().join("2.log"));
    support::produce_on(&brokers, &source, Some(0), &[event("k", 1800)]);
    support::wait_until("the restarted run to find it late", &mut [&mut run], || {
        late() == 2
    });
    run.terminate();
    assert_eq!(results(), want, "no window emitted twice");
}
