//! Joins and repartitioning, in records per second on one core, each
//! against a native Rust closure doing the same work in the same run.
//!
//! - **stream–table**: clicks (JSON objects) joined with a table of users
//!   by key, `joiner = "merge"`, in-memory stores; the baseline looks the
//!   user up in a `HashMap` and merges the two objects with serde_json.
//! - **stream–stream**: two streams over 1,000 keys, times moving
//!   forward, a 1 s window, inner join with `merge`; the baseline keeps
//!   each side's recent records per key in `VecDeque`s and merges each
//!   pair with serde_json.
//! - **foreign-key**: updates of 500 × n orders over a quarter as many
//!   order keys, each naming one of 2,000 customers in a field, left join
//!   with `merge`: Sluice's subscribe, answer and join steps with their
//!   two topics played by the driver, in-memory stores; the baseline
//!   parses each order for its customer, keeps the order's foreign key in
//!   a `HashMap`, and merges it with the customer.
//! - **repartition hop**: `count` per key of a stream, with and without a
//!   `repartition = true` step before it, in one process (the task test
//!   driver plays the topic: the hop's cost here is the origin header,
//!   the copy and the second task, not a broker's round trip).
//! - **repartition hop on a broker**: the same two pipelines run whole by
//!   `sluice::runner::run` against `SLUICE_BENCH_BROKERS` (a real Kafka),
//!   over a backlog of 1,000,000 records on 2 partitions: the hop adds a
//!   produce to `<app>-counts-repartition`, a fetch of it, a second task
//!   and the purge of what was read. A reader of the output topic times
//!   the drain from the first count to the last.
//!
//! The first four are the host's own path only: no Wasm (the joiners are
//! built-ins), no broker. Run: `cargo bench -p sluice --bench joins`, and
//! with `SLUICE_BENCH_BROKERS=$(scripts/kafka.sh start | tail -1)` for the
//! hop on a broker (without it, that part is skipped: the embedded broker
//! is too slow to consume from to measure throughput on). Under `cargo
//! test` (no `--bench` argument) it runs once on a few thousand records,
//! the broker part on the embedded broker, as a smoke test.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::{Map, Value};
use sluice::kafka::client_config::ClientSettings;
use sluice::kafka::embedded::EmbeddedKafka;
use sluice::kafka::topics::{TopicSpec, create_missing};
use sluice::runner::{self, RunOptions};
use sluice::task::testing::Driver;
use sluice::topology::Topology;
use sluice::topology::pipeline_file::PipelineFile;

const BATCH: usize = 500;

/// A small JSON object of record `i`, its fields named for `tag`.
fn object(tag: &str, i: usize) -> Vec<u8> {
    format!(
        r#"{{"{tag}":{i},"{tag}-name":"n{i}","{tag}-at":{}}}"#,
        i * 7
    )
    .into_bytes()
}

/// The `merge` joiner's work, natively: right's fields over left's.
fn merge(left: &[u8], right: &[u8]) -> Vec<u8> {
    let mut l: Map<String, Value> = serde_json::from_slice(left).unwrap();
    let r: Map<String, Value> = serde_json::from_slice(right).unwrap();
    l.extend(r);
    serde_json::to_vec(&l).unwrap()
}

/// Records per second of `n` records done by `f`.
fn rate(n: usize, f: impl FnOnce()) -> f64 {
    let start = Instant::now();
    f();
    n as f64 / start.elapsed().as_secs_f64()
}

/// One line: Sluice's rate against the baseline's (`native`, or the same
/// pipeline without the hop).
fn report(name: &str, sluice: f64, (label, baseline): (&str, f64)) {
    println!(
        "{name:<28} sluice {:>10.0} records/s   {label} {:>10.0} records/s   ratio {:.2}",
        sluice,
        baseline,
        sluice / baseline
    );
}

fn stream_table(users: usize, clicks: usize) {
    let mut d = Driver::from_toml(
        r#"
        application.id = "bench"
        [sources.clicks]
        [sources.users]
        table = true
        [steps.joined]
        join = "left"
        joiner = "merge"
        inputs = ["clicks", "users"]
        [sinks.out]
        inputs = ["joined"]
        "#,
    )
    .unwrap();
    let key = |i: usize| format!("u{}", i % users);
    for i in 0..users {
        d.push(
            "users",
            Some(key(i).as_bytes()),
            Some(&object("user", i)),
            Some(1),
        );
    }
    d.process().unwrap();
    let values: Vec<Vec<u8>> = (0..clicks).map(|i| object("click", i)).collect();
    let sluice = rate(clicks, || {
        for chunk in (0..clicks).collect::<Vec<_>>().chunks(BATCH) {
            for &i in chunk {
                d.push(
                    "clicks",
                    Some(key(i * 31).as_bytes()),
                    Some(&values[i]),
                    Some(2),
                );
            }
            d.process().unwrap();
            d.take_sent();
        }
    });
    let table: HashMap<String, Vec<u8>> = (0..users).map(|i| (key(i), object("user", i))).collect();
    let mut out = Vec::with_capacity(BATCH);
    let native = rate(clicks, || {
        for (i, v) in values.iter().enumerate() {
            let joined = match table.get(&key(i * 31)) {
                Some(user) => merge(v, user),
                None => v.clone(),
            };
            out.push(joined);
            if out.len() == BATCH {
                out.clear();
            }
        }
    });
    report("stream-table join (merge)", sluice, ("native", native));
}

/// A side's recent records per key: (time, value).
type Kept = HashMap<String, VecDeque<(i64, Vec<u8>)>>;

fn stream_stream(records: usize) {
    let mut d = Driver::from_toml(
        r#"
        application.id = "bench"
        [sources.left]
        [sources.right]
        [steps.joined]
        join = "inner"
        joiner = "merge"
        join-window = { difference = 1000 }
        inputs = ["left", "right"]
        [sinks.out]
        inputs = ["joined"]
        "#,
    )
    .unwrap();
    let side = |i: usize| if i % 2 == 0 { "left" } else { "right" };
    let key = |i: usize| format!("k{}", (i / 2) % 1_000);
    let time = |i: usize| 10 * i as i64;
    let values: Vec<Vec<u8>> = (0..records).map(|i| object(side(i), i)).collect();
    let sluice = rate(records, || {
        for chunk in (0..records).collect::<Vec<_>>().chunks(BATCH) {
            for &i in chunk {
                d.push(
                    side(i),
                    Some(key(i).as_bytes()),
                    Some(&values[i]),
                    Some(time(i)),
                );
            }
            d.process().unwrap();
            d.take_sent();
        }
    });
    let mut kept: [Kept; 2] = [HashMap::new(), HashMap::new()];
    let mut joined = 0usize;
    let native = rate(records, || {
        for (i, v) in values.iter().enumerate() {
            let (mine, other) = if i % 2 == 0 { (0, 1) } else { (1, 0) };
            let (k, t) = (key(i), time(i));
            for (ot, ov) in kept[other].get(&k).into_iter().flatten() {
                if (t - ot).abs() <= 1000 {
                    let pair = if mine == 0 {
                        merge(v, ov)
                    } else {
                        merge(ov, v)
                    };
                    joined += pair.len();
                }
            }
            let q = kept[mine].entry(k).or_default();
            q.push_back((t, v.clone()));
            while q.front().is_some_and(|(ot, _)| t - ot > 1000) {
                q.pop_front();
            }
        }
    });
    assert!(joined > 0);
    report("stream-stream join (merge)", sluice, ("native", native));
}

fn repartition_hop(records: usize) {
    let count = |hop: bool| {
        let mut d = Driver::from_toml(&count_text("bench", "events", hop)).unwrap();
        rate(records, || {
            for chunk in (0..records).collect::<Vec<_>>().chunks(BATCH) {
                for &i in chunk {
                    d.push(
                        "events",
                        Some(format!("k{}", i % 1_000).as_bytes()),
                        Some(b"{}"),
                        Some(1),
                    );
                }
                d.process().unwrap();
                d.take_sent();
            }
        })
    };
    let (without, with) = (count(false), count(true));
    report("count with a repartition hop", with, ("without", without));
}

/// The pipeline file of `app`: `count` per key of topic `events`, to
/// `<app>-out`, with a repartition step before the count when `hop`.
fn count_text(app: &str, events: &str, hop: bool) -> String {
    let (input, extra) = match hop {
        true => (
            "by-key",
            "[steps.by-key]\nrepartition = true\ninputs = [\"events\"]\n",
        ),
        false => ("events", ""),
    };
    format!(
        "application.id = \"{app}\"\n[sources.events]\ntopic = \"{events}\"\n{extra}[steps.counts]\naggregate = \"count\"\ninputs = [\"{input}\"]\n[sinks.out]\ntopic = \"{app}-out\"\ninputs = [\"counts\"]\n"
    )
}

/// [`count_text`] as a topology keeping its state under `dir`.
fn count_pipeline(app: &str, events: &str, hop: bool, dir: &Path) -> Arc<Topology> {
    let text = count_text(app, events, hop);
    let path = Path::new("bench.toml");
    let mut t = Topology::from_file(path, PipelineFile::parse(path, &text).expect("parses"))
        .expect("valid");
    t.state.dir = dir.to_owned();
    Arc::new(t)
}

/// Runs the count pipeline of `app` (with the hop or without) over the
/// backlog in `events`, which holds `records` records over `keys` keys;
/// returns records per second, timed by a reader of the output topic from
/// the first count to the one that completes every key's count.
fn drain(brokers: &str, app: &str, events: &str, hop: bool, records: usize, keys: usize) -> f64 {
    let dir = tempfile::tempdir().expect("temp dir");
    let topology = count_pipeline(app, events, hop, dir.path());
    let plugins = sluice::load_plugins(&sluice::plugin::engine(), &topology, &Default::default())
        .expect("built-ins only");
    let stop = Arc::new(AtomicBool::new(false));
    let runner = {
        let (brokers, stop) = (brokers.to_owned(), Arc::clone(&stop));
        std::thread::spawn(move || {
            runner::run(
                topology,
                plugins,
                RunOptions {
                    brokers,
                    connect_timeout: Duration::from_secs(30),
                    stop,
                    stop_at: None,
                    idle_close_at_end: false,
                    control: None,
                    park: None,
                },
            )
        })
    };
    let reader: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("{app}-reader"))
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "10")
        .create()
        .expect("reader");
    reader
        .subscribe(&[&format!("{app}-out")])
        .expect("subscribe");
    // Each key's count rises by one per record: the drain is over when the
    // latest counts add up to the backlog.
    let mut latest: HashMap<Vec<u8>, u64> = HashMap::with_capacity(keys);
    let (mut counted, mut first) = (0u64, None);
    let give_up = Instant::now() + Duration::from_secs(600);
    while counted < records as u64 {
        if runner.is_finished() {
            let ended = runner.join().expect("runner");
            panic!("{app}: the run ended after {counted} of {records} records: {ended:?}");
        }
        assert!(
            Instant::now() < give_up,
            "{app}: counted {counted} of {records} records in ten minutes"
        );
        let Some(m) = reader.poll(Duration::from_millis(100)) else {
            continue;
        };
        let m = m.expect("read");
        first.get_or_insert_with(Instant::now);
        let n: u64 = std::str::from_utf8(m.payload().expect("a count"))
            .expect("text")
            .parse()
            .expect("a number");
        let was = latest.insert(m.key().expect("keyed").to_vec(), n);
        counted = counted + n - was.unwrap_or(0).min(n);
    }
    let elapsed = first.expect("outputs").elapsed();
    stop.store(true, Ordering::Relaxed);
    let summary = runner.join().expect("runner").expect("run");
    assert_eq!(latest.len(), keys, "{app}: every key counted");
    assert!(summary.counts.records_in >= records as u64);
    records as f64 / elapsed.as_secs_f64()
}

/// One repartition hop on a broker: the count of `records` records with
/// and without it, each pipeline draining the same backlog.
fn repartition_hop_on_broker(brokers: &str, embedded: Option<&EmbeddedKafka>, records: usize) {
    const PARTITIONS: i32 = 2;
    const KEYS: usize = 1_000;
    let run = format!("bench-hop-{}", std::process::id());
    let events = format!("{run}-events");
    let apps = [format!("{run}-without"), format!("{run}-with")];
    let topics: Vec<String> = std::iter::once(events.clone())
        .chain(apps.iter().map(|a| format!("{a}-out")))
        .collect();
    match embedded {
        Some(kafka) => {
            // The embedded broker cannot create topics for a run: its
            // changelogs and repartition topic are made here.
            let internal = [
                format!("{}-counts-changelog", apps[0]),
                format!("{}-counts-changelog", apps[1]),
                format!("{}-by-key-repartition", apps[1]),
            ];
            for t in topics.iter().chain(&internal) {
                kafka.create_topic(t, PARTITIONS).expect("topic");
            }
        }
        None => {
            let specs: Vec<TopicSpec> = topics
                .iter()
                .map(|name| TopicSpec {
                    name: name.clone(),
                    partitions: PARTITIONS,
                    compacted: false,
                })
                .collect();
            create_missing(
                &ClientSettings::new(brokers, &[]),
                &specs,
                Duration::from_secs(30),
            )
            .expect("topics");
        }
    }
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "20")
        .create()
        .expect("producer");
    for i in 0..records {
        let key = format!("k{}", i % KEYS);
        let mut record = BaseRecord::to(&events).key(&key).payload("{}");
        while let Err((e, r)) = producer.send(record) {
            assert!(
                e.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::QueueFull),
                "{e}"
            );
            producer.poll(Duration::from_millis(10));
            record = r;
        }
        producer.poll(Duration::ZERO);
    }
    producer
        .flush(Duration::from_secs(60))
        .expect("backlog produced");
    let without = drain(brokers, &apps[0], &events, false, records, KEYS);
    let with = drain(brokers, &apps[1], &events, true, records, KEYS);
    println!(
        "\ncount per key, {records} records on {PARTITIONS} partitions, whole pipelines on {}",
        if embedded.is_some() {
            "the embedded broker (a smoke test: no throughput figures)"
        } else {
            "SLUICE_BENCH_BROKERS"
        }
    );
    if embedded.is_none() {
        report("count with a repartition hop", with, ("without", without));
    }
}

/// A foreign-key join: `orders` updates of order rows (over `orders / 4`
/// order keys), each naming one of `customers` customers, joined with
/// the customers (loaded first) by `merge`; Sluice's three parts and its
/// two topics, played by the driver, against a native closure that keeps
/// the orders' foreign keys and merges each with its customer.
fn foreign_key(customers: usize, orders: usize) {
    let mut d = Driver::from_toml(
        r#"
        application.id = "bench"
        [sources.orders]
        table = true
        [sources.customers]
        table = true
        [steps.joined]
        join = "left"
        joiner = "merge"
        foreign-key = "customer"
        inputs = ["orders", "customers"]
        [sinks.out]
        inputs = ["joined"]
        "#,
    )
    .unwrap();
    let customer = |i: usize| format!("c{}", (i * 31) % customers);
    for i in 0..customers {
        let key = format!("c{i}");
        d.push(
            "customers",
            Some(key.as_bytes()),
            Some(&object("customer", i)),
            Some(1),
        );
    }
    d.process().unwrap();
    let order_key = |i: usize| format!("o{}", i % (orders / 4).max(1));
    let values: Vec<Vec<u8>> = (0..orders)
        .map(|i| format!(r#"{{"order":{i},"customer":"{}"}}"#, customer(i)).into_bytes())
        .collect();
    let sluice = rate(orders, || {
        for chunk in (0..orders).collect::<Vec<_>>().chunks(BATCH) {
            for &i in chunk {
                d.push(
                    "orders",
                    Some(order_key(i).as_bytes()),
                    Some(&values[i]),
                    Some(2),
                );
            }
            d.process().unwrap();
            d.take_sent();
        }
    });
    let table: HashMap<String, Vec<u8>> = (0..customers)
        .map(|i| (format!("c{i}"), object("customer", i)))
        .collect();
    let mut foreign: HashMap<String, String> = HashMap::new();
    let mut out = Vec::with_capacity(BATCH);
    let native = rate(orders, || {
        for (i, v) in values.iter().enumerate() {
            let fk = serde_json::from_slice::<serde_json::Value>(v).unwrap()["customer"]
                .as_str()
                .unwrap()
                .to_owned();
            foreign.insert(order_key(i), fk.clone());
            let joined = match table.get(&fk) {
                Some(c) => merge(v, c),
                None => v.clone(),
            };
            out.push(joined);
            if out.len() == BATCH {
                out.clear();
            }
        }
    });
    report("foreign-key join (merge)", sluice, ("native", native));
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let scale = if bench { 100 } else { 1 };
    stream_table(2_000, 2_000 * scale);
    foreign_key(2_000, 2_000 * scale);
    stream_stream(2_000 * scale);
    repartition_hop(2_000 * scale);
    match (std::env::var("SLUICE_BENCH_BROKERS"), bench) {
        (Ok(brokers), _) => repartition_hop_on_broker(&brokers, None, 1_000 * scale * 10),
        (Err(_), true) => println!(
            "\nrepartition hop on a broker: skipped (set SLUICE_BENCH_BROKERS to a real Kafka)"
        ),
        (Err(_), false) => {
            let kafka = EmbeddedKafka::start(1).expect("embedded kafka");
            repartition_hop_on_broker(&kafka.bootstrap_servers(), Some(&kafka), 2_000);
        }
    }
}
