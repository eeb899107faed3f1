//! Keyed aggregation with state, and restore, in records per second.
//!
//! - **aggregate**: `plugins/stock-stats` over 1,000 tickers on one task
//!   and one core: call batches of 500, the RocksDB store, the changelog,
//!   a commit (changelog records, applied markers, local write) every
//!   10,000 records, and every updated aggregate produced to a sink. The
//!   baselines, measured in the same run on the same records: the same
//!   pipeline with the in-memory store, and a native Rust closure that
//!   keeps the statistics in a `HashMap` and produces the same outputs
//!   (no Wasm, no store, no changelog).
//! - **restore**: the changelog written above, into an empty RocksDB store,
//!   against reading the same changelog partition with a bare consumer;
//!   once with a consumer made for it, once with a consumer kept from an
//!   earlier restore (as a pipeline's tasks share them).
//!
//! The broker is `SLUICE_BENCH_BROKERS` when set (a real Kafka), else the
//! embedded mock cluster. Run: `cargo bench -p sluice --bench state`.
//! Under `cargo test` (no `--bench` argument) it runs once on a few
//! thousand records, as a smoke test.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use sluice::kafka::client_config::ClientSettings;
use sluice::kafka::embedded::EmbeddedKafka;
use sluice::kafka::producer::OutputProducer;
use sluice::plugin::{Plugin, engine};
use sluice::record::{Record, RecordRef};
use sluice::state::KeyValueStore;
use sluice::state::changelog;
use sluice::state::restore::{RestoreClients, restore_from_kafka};
use sluice::state::rocksdb::RocksDbStore;
use sluice::state::task_state::StateContext;
use sluice::task::{InputRecord, Task, TaskId};
use sluice::toolchain::{self, BuildOptions};
use sluice::topology::pipeline_file::PipelineFile;
use sluice::topology::{StoreKind, Topology};

const TICKERS: u64 = 1_000;
const BATCH: usize = 500;
const COMMIT_EVERY: usize = 10_000;

fn trades(n: usize) -> Vec<InputRecord> {
    let topic: Arc<str> = Arc::from("trades");
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let ticker = format!("T{:04}", x % TICKERS);
            let cents = 1_000 + (x >> 20) % 50_000;
            let value = format!(
                r#"{{"price":{}.{:02},"qty":{}}}"#,
                cents / 100,
                cents % 100,
                1 + (x >> 40) % 900
            );
            InputRecord {
                topic: Arc::clone(&topic),
                partition: 0,
                offset: i as i64,
                timestamp_kind: sluice::time::TimestampKind::CreateTime,
                record: Record::new(
                    Some(ticker.as_bytes()),
                    Some(value.as_bytes()),
                    Some(1_767_225_600_000 + i as i64),
                ),
                origin: None,
            }
        })
        .collect()
}

fn topology(app: &str, dir: &Path, kind: StoreKind) -> Arc<Topology> {
    let plugin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/stock-stats");
    pipeline(
        app,
        dir,
        kind,
        &format!("aggregate = \"{}\"", plugin.display()),
    )
}

/// A windowed count of trades per ticker.
fn windowed(app: &str, dir: &Path, window: &str) -> Arc<Topology> {
    pipeline(
        app,
        dir,
        StoreKind::Rocksdb,
        &format!("aggregate = \"count\"\nwindow = {window}"),
    )
}

fn pipeline(app: &str, dir: &Path, kind: StoreKind, step: &str) -> Arc<Topology> {
    let text = format!(
        r#"
application.id = "{app}"
[sources.trades]
[steps.stats]
{step}
inputs = ["trades"]
[sinks.out]
topic = "{app}-out"
inputs = ["stats"]
"#
    );
    let path = Path::new("bench.toml");
    let mut t = Topology::from_file(path, PipelineFile::parse(path, &text).expect("parses"))
        .expect("valid");
    t.state.dir = dir.to_owned();
    t.state.kind = kind;
    Arc::new(t)
}

/// Runs the records through a stateful task, committing as `sluice run`
/// does; returns the elapsed time.
fn sluice_aggregate(
    records: &[InputRecord],
    topology: Arc<Topology>,
    plugin: Option<&Plugin>,
    settings: &ClientSettings,
    producer: &OutputProducer,
) -> (Duration, u64) {
    let ctx = StateContext::new(
        &topology.application_id,
        topology.state.clone(),
        Some(settings.clone()),
    );
    let started = Instant::now();
    let plugins = sluice::Plugins {
        steps: vec![plugin.cloned()],
        extractors: vec![None],
        keys: vec![None],
    };
    let mut task = Task::new(TaskId::first(0), topology, &plugins, Some(&ctx)).expect("task");
    let mut outputs = 0;
    let mut since_commit = 0;
    let commit = |task: &mut Task| {
        let stores = task.stores().expect("stateful");
        if stores.prepare(producer).expect("prepare") {
            producer.flush().expect("flush");
            stores.mark(producer).expect("mark");
            producer.flush().expect("flush");
            stores.persist().expect("persist");
        }
    };
    for chunk in records.chunks(BATCH) {
        let mut out: &OutputProducer = producer;
        let counts = task.process(chunk, &mut out).expect("process");
        assert_eq!(counts.late + counts.rejected, 0);
        outputs += counts.records_out;
        since_commit += chunk.len();
        if since_commit >= COMMIT_EVERY {
            commit(&mut task);
            since_commit = 0;
        }
    }
    commit(&mut task);
    producer.flush().expect("flush");
    (started.elapsed(), outputs)
}

#[derive(Serialize, Deserialize)]
struct Trade {
    price: f64,
}

#[derive(Serialize, Clone, Copy)]
struct Stats {
    min: f64,
    max: f64,
    avg: f64,
    count: u64,
}

/// The same statistics in a native closure over a `HashMap`, producing
/// every updated aggregate.
fn native_aggregate(records: &[InputRecord], producer: &OutputProducer, sink: &str) -> Duration {
    let started = Instant::now();
    let mut stats: HashMap<Vec<u8>, Stats> = HashMap::new();
    let mut add = |key: &[u8], value: &[u8]| -> Vec<u8> {
        let price = serde_json::from_slice::<Trade>(value).expect("trade").price;
        let s = stats
            .entry(key.to_vec())
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
        serde_json::to_vec(s).expect("json")
    };
    for (i, r) in records.iter().enumerate() {
        let key = r.record.key.as_deref().expect("keyed");
        let out = add(key, r.record.value.as_deref().expect("value"));
        producer
            .send(
                sink,
                RecordRef {
                    key: Some(key),
                    value: Some(&out),
                    timestamp: r.record.timestamp,
                    headers: sluice::record::HeadersRef::Owned(&[]),
                },
            )
            .expect("send");
        if (i + 1) % COMMIT_EVERY == 0 {
            producer.flush().expect("flush");
        }
    }
    producer.flush().expect("flush");
    started.elapsed()
}

/// Runs native windowed code over `records`: `step` gets each record's
/// key and time, and `emit(start, end, count)` (`None` retracts the
/// window) produces the result keyed `key@start/end`, as Sluice does. The
/// producer is flushed as often as the Sluice runs commit. Returns the time
/// taken and the outputs produced.
fn native_windows(
    records: &[InputRecord],
    producer: &OutputProducer,
    sink: &str,
    mut step: impl FnMut(&[u8], i64, &mut dyn FnMut(i64, i64, Option<u64>)),
) -> (Duration, u64) {
    let started = Instant::now();
    let mut outputs = 0;
    for (i, r) in records.iter().enumerate() {
        let key = r.record.key.as_deref().expect("keyed");
        let t = r.record.timestamp.expect("timestamped");
        step(key, t, &mut |start, end, count| {
            let mut out_key = key.to_vec();
            out_key.extend_from_slice(format!("@{start}/{end}").as_bytes());
            let value = count.map(|n| n.to_string());
            producer
                .send(
                    sink,
                    RecordRef {
                        key: Some(&out_key),
                        value: value.as_deref().map(str::as_bytes),
                        timestamp: Some(t),
                        headers: sluice::record::HeadersRef::Owned(&[]),
                    },
                )
                .expect("send");
            outputs += 1;
        });
        if (i + 1) % COMMIT_EVERY == 0 {
            producer.flush().expect("flush");
        }
    }
    producer.flush().expect("flush");
    (started.elapsed(), outputs)
}

/// A native windowed count: a `HashMap` per (key, window start).
fn native_windowed_count(
    records: &[InputRecord],
    producer: &OutputProducer,
    sink: &str,
    size: i64,
    advance: i64,
) -> (Duration, u64) {
    let mut counts: HashMap<(Vec<u8>, i64), u64> = HashMap::new();
    native_windows(records, producer, sink, |key, t, emit| {
        let mut start = t - t.rem_euclid(advance);
        while start + size > t {
            let n = counts.entry((key.to_vec(), start)).or_default();
            *n += 1;
            emit(start, start + size, Some(*n));
            start -= advance;
        }
    })
}

/// A native sliding-window count (in-order input): per key, the windows
/// by start and the record times within reach; each record updates the
/// windows containing it and creates its left window and its
/// predecessor's right window, as Sluice does.
fn native_sliding_count(
    records: &[InputRecord],
    producer: &OutputProducer,
    sink: &str,
    d: i64,
) -> (Duration, u64) {
    /// Per key: window start -> count, and the record times within reach.
    type Sliding = (BTreeMap<i64, u64>, VecDeque<i64>);
    let mut keys: HashMap<Vec<u8>, Sliding> = HashMap::new();
    native_windows(records, producer, sink, |key, t, emit| {
        let (windows, times) = keys.entry(key.to_vec()).or_default();
        while times.front().is_some_and(|&x| x < t - d - 1) {
            times.pop_front();
        }
        while windows.first_key_value().is_some_and(|(&s, _)| s < t - d) {
            windows.pop_first();
        }
        for (&start, n) in windows.range_mut(t - d..=t) {
            *n += 1;
            emit(start, start + d + 1, Some(*n));
        }
        if let Some(&q) = times.back()
            && q + 1 != t - d
            && !windows.contains_key(&(q + 1))
        {
            windows.insert(q + 1, 1);
            emit(q + 1, q + d + 2, Some(1));
        }
        if let std::collections::btree_map::Entry::Vacant(left) = windows.entry(t - d) {
            let n = 1 + times.iter().filter(|&&x| x >= t - d).count() as u64;
            left.insert(n);
            emit(t - d, t + 1, Some(n));
        }
        times.push_back(t);
    })
}

/// A native session count (in-order input): per key, the open session;
/// a record within `gap` extends it (retracting the old window key),
/// else starts a new one.
fn native_session_count(
    records: &[InputRecord],
    producer: &OutputProducer,
    sink: &str,
    gap: i64,
) -> (Duration, u64) {
    let mut sessions: HashMap<Vec<u8>, (i64, i64, u64)> = HashMap::new();
    native_windows(records, producer, sink, |key, t, emit| {
        let session = sessions.entry(key.to_vec()).or_insert((t, t, 0));
        if t - session.1 > gap {
            *session = (t, t, 0);
        } else if session.2 > 0 {
            emit(session.0, session.1 + 1, None);
        }
        session.1 = t;
        session.2 += 1;
        emit(session.0, session.1 + 1, Some(session.2));
    })
}

/// Reads partition 0 of `topic` to its end with a bare consumer.
fn raw_read(settings: &ClientSettings, topic: &str) -> (u64, Duration) {
    let consumer: BaseConsumer = settings
        .plain()
        .set("group.id", "bench-raw")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let (_, high) = consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .expect("watermarks");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .expect("offset");
    let started = Instant::now();
    consumer.assign(&tpl).expect("assign");
    let mut n = 0u64;
    while let Some(m) = consumer.poll(Duration::from_secs(5)) {
        let m = m.expect("read");
        n += 1;
        if rdkafka::Message::offset(&m) + 1 >= high {
            break;
        }
    }
    (n, started.elapsed())
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n = if full { 300_000 } else { 3_000 };
    let embedded = match std::env::var("SLUICE_BENCH_BROKERS") {
        Ok(_) => None,
        Err(_) => Some(EmbeddedKafka::start(1).expect("embedded kafka")),
    };
    let brokers = match &embedded {
        Some(k) => k.bootstrap_servers(),
        None => std::env::var("SLUICE_BENCH_BROKERS").expect("set"),
    };
    let run = format!("bench-{}", std::process::id());
    let apps = [
        format!("{run}-rocksdb"),
        format!("{run}-memory"),
        format!("{run}-native"),
        format!("{run}-tumbling"),
        format!("{run}-hopping"),
        format!("{run}-native-windows"),
        format!("{run}-sliding"),
        format!("{run}-session"),
    ];
    let settings = ClientSettings::new(&brokers, &[]);
    let specs: Vec<sluice::kafka::topics::TopicSpec> = apps
        .iter()
        .flat_map(|app| {
            [
                (format!("{app}-out"), false),
                (changelog::topic(app, "stats"), true),
            ]
        })
        .map(|(name, compacted)| sluice::kafka::topics::TopicSpec {
            name,
            partitions: 1,
            compacted,
        })
        .collect();
    if let Some(kafka) = &embedded {
        for s in &specs {
            kafka.create_topic(&s.name, 1).expect("topic");
        }
    } else {
        sluice::kafka::topics::create_missing(&settings, &specs, Duration::from_secs(30))
            .expect("topics");
    }

    let component = toolchain::build(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/stock-stats"),
        &BuildOptions {
            quiet: true,
            ..BuildOptions::default()
        },
    )
    .expect("building plugins/stock-stats");
    let plugin = Plugin::load(&engine(), "stats", &component).expect("loading stock-stats");
    let records = trades(n);
    let dir = tempfile::tempdir().expect("temp dir");

    let producer = OutputProducer::new(&settings, &run).expect("producer");
    let (rocks, _) = sluice_aggregate(
        &records,
        topology(&apps[0], dir.path(), StoreKind::Rocksdb),
        Some(&plugin),
        &settings,
        &producer,
    );
    let (memory, _) = sluice_aggregate(
        &records,
        topology(&apps[1], dir.path(), StoreKind::Memory),
        Some(&plugin),
        &settings,
        &producer,
    );
    let (tumbling, tumbling_out) = sluice_aggregate(
        &records,
        windowed(
            &apps[3],
            dir.path(),
            r#"{ type = "tumbling", size = "1m" }"#,
        ),
        None,
        &settings,
        &producer,
    );
    let (hopping, hopping_out) = sluice_aggregate(
        &records,
        windowed(
            &apps[4],
            dir.path(),
            r#"{ type = "hopping", size = "5m", advance = "1m" }"#,
        ),
        None,
        &settings,
        &producer,
    );
    let (sliding, sliding_out) = sluice_aggregate(
        &records,
        windowed(
            &apps[6],
            dir.path(),
            r#"{ type = "sliding", difference = "10s" }"#,
        ),
        None,
        &settings,
        &producer,
    );
    let (session, session_out) = sluice_aggregate(
        &records,
        windowed(&apps[7], dir.path(), r#"{ type = "session", gap = "1s" }"#),
        None,
        &settings,
        &producer,
    );
    let native = native_aggregate(&records, &producer, &format!("{}-out", apps[2]));
    let native_sink = format!("{}-out", apps[5]);
    let (native_tumbling, _) =
        native_windowed_count(&records, &producer, &native_sink, 60_000, 60_000);
    let (native_hopping, _) =
        native_windowed_count(&records, &producer, &native_sink, 300_000, 60_000);
    let (native_sliding, _) = native_sliding_count(&records, &producer, &native_sink, 10_000);
    let (native_session, _) = native_session_count(&records, &producer, &native_sink, 1_000);

    // Restore the RocksDB run's changelog into an empty store.
    let changelog_topic = changelog::topic(&apps[0], "stats");
    let mut store = RocksDbStore::open(&dir.path().join("restored"), "stats").expect("store");
    let started = Instant::now();
    let restored =
        restore_from_kafka(&settings, &changelog_topic, 0, &mut store, 10_000).expect("restore");
    let restore = started.elapsed();
    let tickers: std::collections::HashSet<&[u8]> = records
        .iter()
        .filter_map(|r| r.record.key.as_deref())
        .collect();
    assert_eq!(
        store.range(None, None).expect("scan").count(),
        tickers.len(),
        "every ticker restored"
    );
    let (raw_n, raw) = raw_read(&settings, &changelog_topic);
    assert_eq!(raw_n, restored.records);
    // Again, into another empty store, through a consumer kept from a
    // restore before (as the stores of a pipeline's tasks are).
    let clients = RestoreClients::default();
    let mut first = RocksDbStore::open(&dir.path().join("restored-first"), "stats").expect("store");
    clients
        .restore(&settings, &changelog_topic, 0, &mut first, 10_000)
        .expect("restore");
    let mut kept = RocksDbStore::open(&dir.path().join("restored-kept"), "stats").expect("store");
    let started = Instant::now();
    let restored_kept = clients
        .restore(&settings, &changelog_topic, 0, &mut kept, 10_000)
        .expect("restore");
    let restore_kept = started.elapsed();
    assert_eq!(restored_kept.records, restored.records);

    let rate = |count: u64, d: Duration| count as f64 / d.as_secs_f64();
    let (r, m, x) = (
        rate(n as u64, rocks),
        rate(n as u64, memory),
        rate(n as u64, native),
    );
    let broker = if embedded.is_some() {
        "embedded mock cluster"
    } else {
        "SLUICE_BENCH_BROKERS"
    };
    println!(
        "\nkeyed aggregate, stock-stats, {n} trades over {TICKERS} tickers, one task, broker: {broker}"
    );
    println!("{:<44} {:>12} {:>8}", "variant", "records/s", "ratio");
    println!(
        "{:<44} {:>12.0} {:>7.2}x",
        "native closure + HashMap (baseline)", x, 1.0
    );
    println!(
        "{:<44} {:>12.0} {:>7.2}x",
        "sluice: Wasm + in-memory store + changelog",
        m,
        m / x
    );
    println!(
        "{:<44} {:>12.0} {:>7.2}x",
        "sluice: Wasm + RocksDB + changelog",
        r,
        r / x
    );
    println!(
        "\nwindowed count per ticker, the same trades (1 ms apart), built-in count, RocksDB + changelog, on-update"
    );
    println!(
        "{:<44} {:>12} {:>12} {:>8}",
        "windows", "records/s", "outputs/s", "ratio"
    );
    for (name, d, outs, baseline) in [
        ("tumbling 1m", tumbling, tumbling_out, native_tumbling),
        ("hopping 5m every 1m", hopping, hopping_out, native_hopping),
        ("sliding 10s", sliding, sliding_out, native_sliding),
        ("session, gap 1s", session, session_out, native_session),
    ] {
        println!(
            "{:<44} {:>12.0} {:>12.0} {:>7.2}x",
            format!("{name}: native HashMap (baseline)"),
            rate(n as u64, baseline),
            rate(outs, baseline),
            1.0
        );
        println!(
            "{:<44} {:>12.0} {:>12.0} {:>7.2}x",
            format!("{name}: Sluice"),
            rate(n as u64, d),
            rate(outs, d),
            baseline.as_secs_f64() / d.as_secs_f64()
        );
    }
    let (rr, raw_rate) = (rate(restored.records, restore), rate(raw_n, raw));
    println!(
        "\nrestore, {} changelog records into an empty RocksDB store",
        restored.records
    );
    println!("{:<44} {:>12} {:>8}", "variant", "records/s", "ratio");
    println!(
        "{:<44} {:>12.0} {:>7.2}x",
        "bare consumer read (baseline)", raw_rate, 1.0
    );
    println!(
        "{:<44} {:>12.0} {:>7.2}x",
        "sluice restore, a consumer of its own",
        rr,
        rr / raw_rate
    );
    let kept_rate = rate(restored_kept.records, restore_kept);
    println!(
        "{:<44} {:>12.0} {:>7.2}x",
        "sluice restore, a consumer kept from before",
        kept_rate,
        kept_rate / raw_rate
    );
    println!(
        "restore time: {:.3} s with a consumer of its own, {:.3} s with a kept one",
        restore.as_secs_f64(),
        restore_kept.as_secs_f64()
    );
}
