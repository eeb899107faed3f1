//! Repartitioning end to end: orders keyed by order id are re-keyed by
//! customer (`tests/plugins/key-by-field`) and counted per customer, which
//! needs the inserted repartition topic `<app>-counts-repartition`. The
//! counts are checked against a count of the input done here: after runs
//! killed at every point of the commit protocol (at-least-once, on the
//! embedded broker: every count still exact, since the counting side
//! marks what it applied by each record's origin upstream), and under
//! exactly-once on a real broker (every count emitted once: 1, 2, 3, …).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use sluice::kafka::embedded::EmbeddedKafka;

use crate::support::{self, Rng, SluiceRun, wait_until};

const PARTITIONS: i32 = 3;

/// `(key, value, timestamp)` input records.
type Input = Vec<(Option<String>, Vec<u8>, i64)>;

/// Orders keyed by order id, for `customers` customers; one in 97 has no
/// customer (it cannot be repartitioned: dropped and counted). Times
/// start at `start`.
fn orders(n: usize, customers: u64, seed: u64, start: i64) -> Input {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| {
            let value = if i % 97 == 5 {
                format!(r#"{{"order":{i}}}"#)
            } else {
                format!(
                    r#"{{"order":{i},"customer":"c{:03}"}}"#,
                    rng.below(customers)
                )
            };
            (Some(format!("o{i}")), value.into_bytes(), start + i as i64)
        })
        .collect()
}

/// The number of orders of each customer.
fn per_customer(input: &Input) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for (_, value, _) in input {
        let v: serde_json::Value = serde_json::from_slice(value).unwrap();
        if let Some(c) = v["customer"].as_str() {
            *counts.entry(c.to_owned()).or_default() += 1;
        }
    }
    counts
}

/// The topics of app `app`.
struct Names {
    app: String,
    orders: String,
    counts: String,
    repartition: String,
    changelog: String,
}

fn names(app: &str) -> Names {
    Names {
        app: app.to_owned(),
        orders: format!("{app}-orders"),
        counts: format!("{app}-counts"),
        repartition: format!("{app}-counts-repartition"),
        changelog: format!("{app}-counts-changelog"),
    }
}

/// The pipeline: re-key by customer, count per customer.
fn pipeline(dir: &Path, n: &Names, processing: &str, extra: &str) -> PathBuf {
    let plugin = support::component("tests/plugins/key-by-field");
    support::write_pipeline(
        dir,
        &format!(
            r#"
application.id = "{app}"
[processing]
repartition.purge.interval.ms = 100
{processing}
[errors]
refused = "skip"
[state]
dir = "{state}"
[sources.orders]
topic = "{orders}"
[steps.by-customer]
plugin = "{plugin}"
config.field = "customer"
inputs = ["orders"]
[steps.counts]
aggregate = "count"
inputs = ["by-customer"]
[sinks.out]
topic = "{counts}"
inputs = ["counts"]
{extra}
"#,
            app = n.app,
            orders = n.orders,
            counts = n.counts,
            state = dir.join("state").display(),
            plugin = plugin.display(),
        ),
    )
}

/// The last count per customer in the sink, and how many records it has.
fn last_counts(brokers: &str, topic: &str) -> (BTreeMap<String, u64>, usize) {
    let out = support::read_all(brokers, topic, PARTITIONS);
    let mut last = BTreeMap::new();
    for r in &out {
        let key = String::from_utf8(r.key.clone().unwrap()).unwrap();
        let n: u64 = std::str::from_utf8(r.value.as_ref().unwrap())
            .unwrap()
            .parse()
            .unwrap();
        last.insert(key, n);
    }
    (last, out.len())
}

/// Runs until the source and the repartition topic are committed to their
/// ends (under exactly-once, `eos`, the end of a repartition partition is
/// its last transaction's marker), then stops the run.
fn run_until_drained(pipeline: &Path, brokers: &str, n: &Names, eos: bool, log: PathBuf) {
    let ends = support::high_watermarks(brokers, &n.orders, PARTITIONS);
    let mut run = SluiceRun::start(pipeline, brokers, log);
    wait_until(
        "the source and the repartition topic committed",
        &mut [&mut run],
        || {
            let source_done = support::committed(brokers, &n.app, &n.orders, PARTITIONS)
                .iter()
                .zip(&ends)
                .all(|(c, e)| *e == 0 || c == e);
            // Once the source is committed, everything written to the
            // repartition topic was flushed: its ends stay put.
            source_done && {
                let rp_ends = support::high_watermarks(brokers, &n.repartition, PARTITIONS);
                let rp = support::committed(brokers, &n.app, &n.repartition, PARTITIONS);
                rp.iter()
                    .zip(&rp_ends)
                    .all(|(c, e)| *e == 0 || c + i64::from(eos) >= *e)
            }
        },
    );
    run.terminate();
}

/// The low watermark of each partition: where a purge left it.
fn low_watermarks(brokers: &str, topic: &str) -> Vec<i64> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    (0..PARTITIONS)
        .map(|p| {
            c.fetch_watermarks(topic, p, Duration::from_secs(10))
                .unwrap()
                .0
        })
        .collect()
}

#[test]
fn rekeyed_orders_counted_per_customer_stay_exact_when_killed_at_every_commit_point() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let brokers = kafka.bootstrap_servers();
    let n = names(&support::unique("rekey"));
    // The embedded broker cannot create topics on request: made here.
    for t in [&n.orders, &n.counts, &n.repartition, &n.changelog] {
        kafka.create_topic(t, PARTITIONS).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    // Commits every 50 ms: each part is processed over several commits,
    // so each run reaches its kill in its second commit that writes the
    // store (at 200 ms a fast machine did a part in one).
    let pipeline = pipeline(
        dir.path(),
        &n,
        "commit.interval.ms = 50",
        "[kafka]\n\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"500\"\n",
    );
    let input = orders(40_000, 200, 7, 1_767_225_600_000);
    let parts: Vec<&[_]> = input.chunks(10_000).collect();
    let log = |name: &str| dir.path().join(format!("{name}.log"));
    // After the changelog records were sent, after they were acknowledged,
    // and after the local write, each before the offsets are committed.
    // (The second commit of each run: the first may come before any
    // record is processed.)
    for (i, point) in ["changelog-sent:2", "changelog-acked:2", "state-written:2"]
        .iter()
        .enumerate()
    {
        support::produce(&brokers, &n.orders, parts[i]);
        support::crash_at(&pipeline, &brokers, log(&i.to_string()), point);
    }
    support::produce(&brokers, &n.orders, parts[3]);
    run_until_drained(&pipeline, &brokers, &n, false, log("end"));

    let want = per_customer(&input);
    let (got, records) = last_counts(&brokers, &n.counts);
    let counted: u64 = want.values().sum();
    eprintln!(
        "{records} count updates for {counted} orders with a customer, of {}",
        input.len()
    );
    assert_eq!(got, want, "the last count of every customer");
    assert!(
        records as u64 >= counted,
        "an update per counted order, at least"
    );
    // The upstream side re-sent what it had sent before each kill: the
    // topic holds more records than orders with a customer; the counts
    // above applied each once.
    let written: i64 = support::high_watermarks(&brokers, &n.repartition, PARTITIONS)
        .iter()
        .sum();
    assert!(
        written as u64 >= counted,
        "{written} written to the repartition topic"
    );
    eprintln!(
        "repartition topic: {written} records written, low watermarks {:?}",
        low_watermarks(&brokers, &n.repartition)
    );
}

#[test]
fn on_real_kafka_exactly_once_repartitioned_counts_are_each_emitted_once() {
    let Some(kafka) = support::RealKafka::start(19408) else {
        return;
    };
    let brokers = kafka.brokers.clone();
    let n = names(&support::unique("rekey-eos"));
    // Sluice creates the repartition topic and the changelog.
    support::create_topics(
        &brokers,
        &[(&n.orders, PARTITIONS), (&n.counts, PARTITIONS)],
    );
    let dir = tempfile::tempdir().unwrap();
    let pipeline = pipeline(
        dir.path(),
        &n,
        "commit.interval.ms = 200\nprocessing.guarantee = \"exactly-once\"",
        "[kafka]\n\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"500\"\n",
    );
    // Today's times: a real broker's retention would delete 2026-01-01's.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let input = orders(16_000, 100, 11, now);
    let parts: Vec<&[_]> = input.chunks(4_000).collect();
    let log = |name: &str| dir.path().join(format!("{name}.log"));
    // A real broker is fast: each part is done by the first commit that
    // writes the store, so each run is killed in that one.
    for (i, point) in ["changelog-sent:1", "changelog-acked:1", "state-written:1"]
        .iter()
        .enumerate()
    {
        support::produce(&brokers, &n.orders, parts[i]);
        let log = support::crash_at(&pipeline, &brokers, log(&i.to_string()), point);
        assert!(
            log.contains("exactly-once: each commit is a transaction"),
            "{log}"
        );
    }
    support::produce(&brokers, &n.orders, parts[3]);
    run_until_drained(&pipeline, &brokers, &n, true, log("end"));

    // Each customer's counts, read committed: 1, 2, 3, … with no repeat
    // and no gap, though the run was killed three times.
    let want = per_customer(&input);
    let mut seen: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for r in support::read_all(&brokers, &n.counts, PARTITIONS) {
        let key = String::from_utf8(r.key.unwrap()).unwrap();
        let count = std::str::from_utf8(r.value.as_ref().unwrap())
            .unwrap()
            .parse()
            .unwrap();
        seen.entry(key).or_default().push(count);
    }
    for (customer, &total) in &want {
        let counts = seen.get(customer).map(Vec::as_slice).unwrap_or_default();
        assert!(
            counts.iter().copied().eq(1..=total),
            "customer {customer}: counts {counts:?}, want 1..={total}"
        );
    }
    assert_eq!(seen.len(), want.len());
    // Committed records of the repartition topic were deleted.
    let low = low_watermarks(&brokers, &n.repartition);
    assert!(
        low.iter().any(|&l| l > 0),
        "the repartition topic was purged: low watermarks {low:?}"
    );
}

#[test]
fn the_top_stocks_example_finds_each_days_top_ten_on_one_partition() {
    let dir = support::repo().join("plugins/top-stocks");
    let out = std::process::Command::new(support::sluice_bin())
        .args([
            "dev",
            "pipeline.toml",
            "--input",
            "trades.jsonl",
            "--idle-close",
        ])
        .current_dir(&dir)
        .env("RUST_LOG", "warn,librdkafka=off")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut last = BTreeMap::new();
    for (day, top) in support::printed(&stdout, "top-stocks") {
        last.insert(day, top);
    }
    assert_eq!(
        last,
        support::expected_jsonl(&dir.join("expected.jsonl")),
        "sluice dev printed:\n{stdout}"
    );
}
