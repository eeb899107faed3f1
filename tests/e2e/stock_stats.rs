//! `stock-stats` end to end: per-ticker min, max, average and count over
//! 100,000 trades on 3 partitions, kept in RocksDB stores with changelogs.
//! The final aggregates are checked against a reference computed here from
//! the input, after a clean run, after the local state is deleted, and
//! after a run killed again and again at fixed points of the commit
//! protocol and of a restore.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use sluice::kafka::embedded::EmbeddedKafka;
use sluice::runner::RunSummary;
use sluice::state::changelog;

use crate::support::{self, Read, Rng, SluiceRun, wait_until};

const PARTITIONS: i32 = 3;

/// `(key, value, timestamp)` input records.
type Input = Vec<(Option<String>, Vec<u8>, i64)>;

/// Trades over `tickers` tickers; one in 211 has no price, one in 503 has
/// no key. Prices are whole cents.
fn trades(n: usize, tickers: u64, seed: u64) -> Input {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| {
            let t = rng.below(tickers);
            let ticker = format!("T{t:04}");
            let base = 1_000 + t * 37 % 50_000;
            let cents = base + rng.below(2_000);
            let value = if i % 211 == 7 {
                r#"{"price":"n/a","qty":1}"#.to_owned()
            } else {
                format!(
                    r#"{{"price":{}.{:02},"qty":{}}}"#,
                    cents / 100,
                    cents % 100,
                    1 + rng.below(900)
                )
            };
            let key = (i % 503 != 11).then_some(ticker);
            (key, value.into_bytes(), 1_767_225_600_000 + i as i64)
        })
        .collect()
}

/// One ticker's statistics, as the reference computes them.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stats {
    min: f64,
    max: f64,
    avg: f64,
    count: u64,
}

/// The statistics of every ticker, in input order per ticker (all of a
/// ticker's trades are in one partition, in produce order).
fn reference(input: &[(Option<String>, Vec<u8>, i64)]) -> BTreeMap<String, Stats> {
    let mut out: BTreeMap<String, Stats> = BTreeMap::new();
    for (key, value, _) in input {
        let Some(key) = key else { continue };
        let v: serde_json::Value = serde_json::from_slice(value).unwrap();
        let Some(price) = v["price"].as_f64() else {
            continue;
        };
        out.entry(key.clone())
            .and_modify(|s| {
                s.count += 1;
                s.min = s.min.min(price);
                s.max = s.max.max(price);
                s.avg += (price - s.avg) / s.count as f64;
            })
            .or_insert(Stats {
                min: price,
                max: price,
                avg: price,
                count: 1,
            });
    }
    out
}

fn parse(value: &[u8]) -> Stats {
    let v: serde_json::Value = serde_json::from_slice(value).unwrap();
    Stats {
        min: v["min"].as_f64().unwrap(),
        max: v["max"].as_f64().unwrap(),
        avg: v["avg"].as_f64().unwrap(),
        count: v["count"].as_u64().unwrap(),
    }
}

/// The last sink record of each ticker (one ticker, one output partition).
fn last_per_ticker(sink: &[Read]) -> BTreeMap<String, Stats> {
    let mut sorted: Vec<&Read> = sink.iter().collect();
    sorted.sort_by_key(|r| (r.partition, r.offset));
    sorted
        .into_iter()
        .map(|r| {
            (
                String::from_utf8(r.key.clone().unwrap()).unwrap(),
                parse(r.value.as_deref().unwrap()),
            )
        })
        .collect()
}

fn assert_same(what: &str, got: &BTreeMap<String, Stats>, want: &BTreeMap<String, Stats>) {
    let differing: Vec<_> = want
        .iter()
        .filter(|(k, w)| got.get(*k) != Some(w))
        .map(|(k, w)| (k, w, got.get(k)))
        .take(5)
        .collect();
    assert!(
        differing.is_empty() && got.len() == want.len(),
        "{what}: {} tickers, {} expected; differing (ticker, want, got): {differing:?}",
        got.len(),
        want.len()
    );
}

/// Every store entry of every task, read from the RocksDB directories.
fn stores(state_dir: &Path, app: &str) -> BTreeMap<String, Stats> {
    use sluice::state::KeyValueStore;
    let mut out = BTreeMap::new();
    for task in 0..PARTITIONS {
        let dir = sluice::state::store_dir(state_dir, app, task, "stats");
        let store = sluice::state::rocksdb::RocksDbStore::open(&dir, "stats").unwrap();
        for entry in store.range(None, None).unwrap() {
            let (k, v) = entry.unwrap();
            out.insert(String::from_utf8(k).unwrap(), parse(&v));
        }
    }
    out
}

struct Names {
    app: String,
    source: String,
    sink: String,
    dlq: String,
}

fn setup(kafka: &EmbeddedKafka, prefix: &str) -> Names {
    let app = support::unique(prefix);
    let names = Names {
        source: format!("{app}-trades"),
        sink: format!("{app}-stats"),
        dlq: format!("{app}-dlq"),
        app,
    };
    for t in [
        &names.source,
        &names.sink,
        &names.dlq,
        &changelog::topic(&names.app, "stats"),
    ] {
        kafka.create_topic(t, PARTITIONS).unwrap();
    }
    names
}

fn pipeline(dir: &Path, n: &Names, state_dir: &Path, extra: &str) -> std::path::PathBuf {
    pipeline_committing(dir, n, state_dir, 100, extra)
}

/// [`pipeline`], committing every `commit_ms`.
fn pipeline_committing(
    dir: &Path,
    n: &Names,
    state_dir: &Path,
    commit_ms: u32,
    extra: &str,
) -> std::path::PathBuf {
    let component = support::component("plugins/stock-stats");
    support::write_pipeline(
        dir,
        &format!(
            r#"
application.id = "{app}"
[processing]
max.batch.records = 256
commit.interval.ms = {commit_ms}
[errors]
rejected = "dlq"
trap = "fail"
dlq-topic = "{dlq}"
[state]
dir = "{state}"
{extra}
[sources.trades]
topic = "{source}"
[steps.stats]
aggregate = "{component}"
inputs = ["trades"]
store = "stats"
[sinks.out]
topic = "{sink}"
inputs = ["stats"]
"#,
            app = n.app,
            dlq = n.dlq,
            source = n.source,
            sink = n.sink,
            state = state_dir.display(),
            component = component.display(),
        ),
    )
}

fn run_until_drained(pipeline: &Path, brokers: &str, source: &str) -> RunSummary {
    crate::large_orders::run_until_drained_on(pipeline, brokers, source, PARTITIONS)
}

#[test]
fn hundred_thousand_trades_give_exact_stats_and_a_lost_state_dir_is_rebuilt() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let brokers = kafka.bootstrap_servers();
    let n = setup(&kafka, "stock-stats");
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("state");
    let pipeline = pipeline(dir.path(), &n, &state_dir, "");

    let input = trades(100_000, 400, 3);
    support::produce(&brokers, &n.source, &input);
    let summary = run_until_drained(&pipeline, &brokers, &n.source);
    let want = reference(&input);
    let rejected = input.len() as u64 - want.values().map(|s| s.count).sum::<u64>();
    assert_eq!(summary.counts.records_in, 100_000);
    assert_eq!(summary.counts.rejected, rejected);
    assert_eq!(summary.counts.dead_letters, rejected);
    let sink = support::read_all(&brokers, &n.sink, PARTITIONS);
    assert_eq!(
        sink.len() as u64,
        100_000 - rejected,
        "one updated aggregate per accepted trade"
    );
    assert_same("sink after the first run", &last_per_ticker(&sink), &want);
    assert_same(
        "local stores after the first run",
        &stores(&state_dir, &n.app),
        &want,
    );
    let dead = support::read_all(&brokers, &n.dlq, PARTITIONS);
    let mut codes: Vec<&str> = dead
        .iter()
        .map(|r| r.header("sluice.error.code").unwrap())
        .collect();
    codes.sort();
    codes.dedup();
    assert_eq!(codes, ["bad-json", "null-key"]);

    // The local state is lost; more trades arrive. The stores are rebuilt
    // from the changelog, and the new trades add to them.
    std::fs::remove_dir_all(&state_dir).unwrap();
    let more = trades(10_000, 400, 4);
    support::produce(&brokers, &n.source, &more);
    let summary = run_until_drained(&pipeline, &brokers, &n.source);
    assert_eq!(summary.counts.records_in, 10_000);
    let all: Input = input.iter().chain(&more).cloned().collect();
    let want = reference(&all);
    let sink = support::read_all(&brokers, &n.sink, PARTITIONS);
    assert_same("sink after the restore", &last_per_ticker(&sink), &want);
    assert_same("rebuilt stores", &stores(&state_dir, &n.app), &want);
}

#[test]
fn killed_at_every_point_of_the_commit_protocol_and_of_a_restore_the_stats_stay_exact() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let brokers = kafka.bootstrap_servers();
    let n = setup(&kafka, "stock-crash");
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("state");
    // A short session lets each run take over the killed one's partitions
    // quickly; small restore chunks make a restore take several writes;
    // commits every 20 ms give each killed run its commits to die in (the
    // rest of a part can take under 3 commits of 100 ms).
    let pipeline = pipeline_committing(
        dir.path(),
        &n,
        &state_dir,
        20,
        "restore-chunk = 200\n[kafka]\n\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"500\"\n",
    );
    let input = trades(100_000, 2_000, 5);
    let (first, rest) = input.split_at(40_000);
    let (second, third) = rest.split_at(30_000);
    let log = |name: &str| dir.path().join(format!("{name}.log"));
    support::produce(&brokers, &n.source, first);

    // After a store write, before the changelog acknowledged it.
    support::crash_at(&pipeline, &brokers, log("1"), "changelog-sent:3");
    // Between the changelog's acknowledgement and the local write.
    support::crash_at(&pipeline, &brokers, log("2"), "changelog-acked:3");
    support::produce(&brokers, &n.source, second);
    // Between the local write and the offset commit.
    support::crash_at(&pipeline, &brokers, log("3"), "state-written:3");
    support::produce(&brokers, &n.source, third);
    // In the middle of a restore of the whole changelog.
    std::fs::remove_dir_all(&state_dir).unwrap();
    let restoring = support::crash_at(&pipeline, &brokers, log("4"), "restore-chunk:4");
    assert!(restoring.contains("restoring"), "{restoring}");
    // And once more between the changelog and the local write, with the
    // restore above only partly done.
    support::crash_at(&pipeline, &brokers, log("5"), "changelog-acked:2");

    support::run_to_end(
        &pipeline,
        &brokers,
        &n.app,
        &[(&n.source, PARTITIONS)],
        log("6"),
    );

    let want = reference(&input);
    let sink = support::read_all(&brokers, &n.sink, PARTITIONS);
    let accepted = want.values().map(|s| s.count).sum::<u64>() as usize;
    eprintln!(
        "{} sink records for {accepted} accepted trades ({} duplicates from the crashes)",
        sink.len(),
        sink.len() - accepted
    );
    assert!(sink.len() >= accepted, "at least once");
    assert_same("sink after the crashes", &last_per_ticker(&sink), &want);
    assert_same(
        "stores after the crashes",
        &stores(&state_dir, &n.app),
        &want,
    );
}

#[test]
fn with_the_record_cache_each_ticker_goes_out_once_per_commit_and_stays_exact_when_killed() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let brokers = kafka.bootstrap_servers();
    let n = setup(&kafka, "stock-cache");
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("state");
    let pipeline = pipeline(
        dir.path(),
        &n,
        &state_dir,
        "[kafka]\n\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"500\"\n",
    );
    let text = std::fs::read_to_string(&pipeline).unwrap();
    let commit_every = |ms: u32| {
        let cached = format!("commit.interval.ms = {ms}\ncache.max.bytes = 1000000");
        std::fs::write(&pipeline, text.replace("commit.interval.ms = 100", &cached)).unwrap();
    };
    let low = |t: &(Option<String>, Vec<u8>, i64)| t.0.as_deref().is_some_and(|k| k < "T0200");
    let first = trades(20_000, 400, 6);
    // The second part names only the first 200 tickers, the third only
    // the others: what the second part's run sent before its kill is the
    // last word on its tickers.
    let second: Input = trades(6_000, 400, 7).into_iter().filter(low).collect();
    let third: Input = (trades(40_000, 400, 8).into_iter())
        .filter(|t| t.0.is_some() && !low(t))
        .collect();
    let log = |name: &str| dir.path().join(format!("{name}.log"));
    // Killed after the cached outputs and the changelog records were sent
    // (the markers not yet).
    commit_every(100);
    support::produce(&brokers, &n.source, &first);
    support::crash_at(&pipeline, &brokers, log("1"), "changelog-sent:2");
    // Killed once the markers were acknowledged, in the first commit that
    // writes the stores: with commits 3 s apart, most likely the one that
    // covers the whole part. Its outputs must have gone out before the
    // markers, for the next run skips what they mark.
    commit_every(3_000);
    support::produce(&brokers, &n.source, &second);
    support::crash_at(&pipeline, &brokers, log("2"), "changelog-acked:1");
    commit_every(100);
    support::produce(&brokers, &n.source, &third);
    support::run_to_end(
        &pipeline,
        &brokers,
        &n.app,
        &[(&n.source, PARTITIONS)],
        log("3"),
    );

    let input: Input = first.into_iter().chain(second).chain(third).collect();
    let want = reference(&input);
    let sink = support::read_all(&brokers, &n.sink, PARTITIONS);
    let accepted = want.values().map(|s| s.count).sum::<u64>() as usize;
    eprintln!(
        "{} sink records for {accepted} accepted trades of 400 tickers",
        sink.len()
    );
    assert_same("sink with the cache", &last_per_ticker(&sink), &want);
    assert_same("stores with the cache", &stores(&state_dir, &n.app), &want);
    assert!(
        sink.len() < accepted / 4,
        "updates coalesced: {} sink records for {accepted} trades",
        sink.len()
    );
}

#[test]
fn on_real_kafka_the_changelog_is_created_compacted_and_restores_exactly() {
    let Some(kafka) = support::RealKafka::start(19398) else {
        return;
    };
    let brokers = kafka.brokers.clone();
    let app = support::unique("stock-real");
    let n = Names {
        source: format!("{app}-trades"),
        sink: format!("{app}-stats"),
        dlq: format!("{app}-dlq"),
        app,
    };
    // The changelog is left to Sluice to create.
    support::create_topics(
        &brokers,
        &[
            (&n.source, PARTITIONS),
            (&n.sink, PARTITIONS),
            (&n.dlq, PARTITIONS),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("state");
    let pipeline = pipeline(dir.path(), &n, &state_dir, "");
    let input = trades(20_000, 300, 8);
    support::produce(&brokers, &n.source, &input);
    run_until_drained(&pipeline, &brokers, &n.source);
    assert_same(
        "sink on real Kafka",
        &last_per_ticker(&support::read_all(&brokers, &n.sink, PARTITIONS)),
        &reference(&input),
    );

    use sluice::kafka::topics::{TopicSpec, ensure};
    let settings = sluice::kafka::client_config::ClientSettings::new(&brokers, &[]);
    let checked = ensure(
        &settings,
        &[TopicSpec {
            name: changelog::topic(&n.app, "stats"),
            partitions: PARTITIONS,
            compacted: true,
        }],
        Duration::from_secs(30),
    )
    .unwrap();
    assert!(checked.created.is_empty(), "the run created the changelog");
    assert!(
        checked.warnings.is_empty(),
        "the changelog is compacted: {:?}",
        checked.warnings
    );

    std::fs::remove_dir_all(&state_dir).unwrap();
    let more = trades(2_000, 300, 9);
    support::produce(&brokers, &n.source, &more);
    run_until_drained(&pipeline, &brokers, &n.source);
    let all: Input = input.iter().chain(&more).cloned().collect();
    assert_same(
        "stores rebuilt from the real changelog",
        &stores(&state_dir, &n.app),
        &reference(&all),
    );
}

#[test]
fn a_task_moved_to_another_instance_restores_there_and_stays_exact() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let brokers = kafka.bootstrap_servers();
    let n = setup(&kafka, "stock-move");
    let dir = tempfile::tempdir().unwrap();
    let pipeline = pipeline(
        dir.path(),
        &n,
        &dir.path().join("unused"),
        "[kafka]\n\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"500\"\n",
    );
    let input = trades(60_000, 500, 12);
    let (first, rest) = input.split_at(20_000);
    let (second, third) = rest.split_at(20_000);
    let state = |name: &str| dir.path().join(name);
    let start = |name: &str| {
        SluiceRun::start_with(
            &pipeline,
            &brokers,
            dir.path().join(format!("{name}.log")),
            &["--state-dir", state(name).to_str().unwrap()],
            &[],
        )
    };
    support::produce(&brokers, &n.source, first);
    let mut a = start("a");
    let committed_all = |upto: &[i64]| {
        support::committed(&brokers, &n.app, &n.source, PARTITIONS)
            .iter()
            .zip(upto)
            .all(|(c, e)| c == e)
    };
    let ends = support::high_watermarks(&brokers, &n.source, PARTITIONS);
    wait_until("a to process the first part", &mut [&mut a], || {
        committed_all(&ends)
    });
    // b joins: some tasks move to it, and are restored from the
    // changelog when their next records arrive.
    let mut b = start("b");
    let b_log = dir.path().join("b.log");
    let b_has = |what: &str| {
        std::fs::read_to_string(&b_log)
            .unwrap_or_default()
            .contains(what)
    };
    wait_until("b to get partitions", &mut [&mut a, &mut b], || {
        b_has("partitions assigned")
    });
    support::produce(&brokers, &n.source, second);
    let ends = support::high_watermarks(&brokers, &n.source, PARTITIONS);
    wait_until(
        "a and b to process the second part",
        &mut [&mut a, &mut b],
        || committed_all(&ends) && b_has("restored"),
    );
    // a leaves: its tasks move to b, which restores them too.
    a.terminate();
    support::produce(&brokers, &n.source, third);
    let ends = support::high_watermarks(&brokers, &n.source, PARTITIONS);
    wait_until("b to process the rest", &mut [&mut b], || {
        committed_all(&ends)
    });
    let log = b.terminate();
    assert!(log.contains("partitions assigned"), "{log}");

    let want = reference(&input);
    assert_same(
        "sink after the moves",
        &last_per_ticker(&support::read_all(&brokers, &n.sink, PARTITIONS)),
        &want,
    );
    assert_same("b's stores", &stores(&state("b"), &n.app), &want);
}

#[test]
fn the_sample_gives_the_expected_output_in_sluice_dev() {
    let dir = support::repo().join("plugins/stock-stats");
    let stdout = support::sluice_dev(&dir, "trades.jsonl");
    // In arrival order per ticker: the last one is its final state.
    let last: BTreeMap<String, serde_json::Value> = support::printed(&stdout, "ticker-stats")
        .into_iter()
        .collect();
    assert_eq!(last, support::expected_jsonl(&dir.join("expected.jsonl")));
    assert!(
        stdout.contains("rejected 2") && stdout.contains("dead letters 2"),
        "{stdout}"
    );
}
