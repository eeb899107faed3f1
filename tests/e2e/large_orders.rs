//! `large-orders` end to end: 10,000 orders over 3 partitions, including
//! an amount of exactly 10,000 and malformed JSON, checked against a
//! reference computed here (sharing nothing with the plugin).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use sluice::runner::{self, RunOptions};
use sluice::topology::Topology;

use crate::support::{self, Read, Rng};

pub const PARTITIONS: i32 = 3;

/// The input: `(key, value, timestamp)`; keys are order ids.
pub fn orders(n: usize, seed: u64) -> Vec<(Option<String>, Vec<u8>, i64)> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| {
            let id = format!("o-{i:05}");
            let customer = format!("c-{:02}", rng.below(40));
            let value = match i % 97 {
                13 => format!(r#"{{"order_id":"{id}","customer_id":"{customer}","amount":"#),
                29 => "not json at all".to_owned(),
                41 => format!(r#"{{"order_id":"{id}","customer_id":"{customer}","amount":10000}}"#),
                53 => {
                    format!(r#"{{"order_id":"{id}","customer_id":"{customer}","amount":10000.0}}"#)
                }
                _ => {
                    let cents = rng.below(2_000_000);
                    format!(
                        r#"{{"order_id":"{id}","customer_id":"{customer}","amount":{}.{:02}}}"#,
                        cents / 100,
                        cents % 100
                    )
                }
            };
            (Some(id), value.into_bytes(), 1_767_225_600_000 + i as i64)
        })
        .collect()
}

/// `(key, value)` pairs.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// What the sink must hold: `(customer, original value)` for every order
/// strictly over 10,000, and the values that must be dead letters.
pub fn expected(input: &[(Option<String>, Vec<u8>, i64)]) -> (Pairs, Vec<Vec<u8>>) {
    let mut alerts = Vec::new();
    let mut dead = Vec::new();
    for (_, value, _) in input {
        let parsed: Result<serde_json::Value, _> = serde_json::from_slice(value);
        match parsed.ok().and_then(|v| {
            Some((
                v.get("customer_id")?.as_str()?.to_owned(),
                v.get("amount")?.as_f64()?,
            ))
        }) {
            Some((customer, amount)) if amount > 10_000.0 => {
                alerts.push((customer.into_bytes(), value.clone()))
            }
            Some(_) => {}
            None => dead.push(value.clone()),
        }
    }
    (alerts, dead)
}

pub fn pipeline_text(
    app: &str,
    source: &str,
    sink: &str,
    dlq: &str,
    component: &std::path::Path,
    extra: &str,
) -> String {
    format!(
        r#"
application.id = "{app}"
[processing]
max.batch.records = 128
commit.interval.ms = 100
[errors]
rejected = "dlq"
trap = "fail"
dlq-topic = "{dlq}"
[sources.orders]
topic = "{source}"
[steps.large-orders]
plugin = "{}"
inputs = ["orders"]
config.min.amount = "10000"
[sinks.alerts]
topic = "{sink}"
inputs = ["large-orders"]
{extra}
"#,
        component.display()
    )
}

/// Checks the sink exactly: same multiset as the reference, and per key,
/// records from one input partition in input order.
pub fn check_exact(input_read: &[Read], sink: &[Read], alerts: &[(Vec<u8>, Vec<u8>)]) {
    let mut want: HashMap<(Vec<u8>, Vec<u8>), usize> = HashMap::new();
    for a in alerts {
        *want.entry(a.clone()).or_default() += 1;
    }
    let mut got: HashMap<(Vec<u8>, Vec<u8>), usize> = HashMap::new();
    for r in sink {
        *got.entry((
            r.key.clone().expect("alerts are keyed"),
            r.value.clone().expect("value"),
        ))
        .or_default() += 1;
    }
    let missing: Vec<_> = want
        .iter()
        .filter(|(k, n)| got.get(*k) != Some(n))
        .take(3)
        .collect();
    let extra: Vec<_> = got
        .iter()
        .filter(|(k, _)| !want.contains_key(*k))
        .take(3)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "sink differs from the reference: missing/miscounted {missing:?}, unexpected {extra:?}"
    );
    assert_eq!(sink.len(), alerts.len());

    // Order per key: the sink's records of one customer (one output
    // partition, in offset order) that came from the same input partition
    // must appear in that partition's offset order.
    let origin: HashMap<&[u8], (i32, i64)> = input_read
        .iter()
        .map(|r| (r.value.as_deref().unwrap(), (r.partition, r.offset)))
        .collect();
    let mut sorted: Vec<&Read> = sink.iter().collect();
    sorted.sort_by_key(|r| (r.partition, r.offset));
    let mut last: HashMap<(Vec<u8>, i32), i64> = HashMap::new();
    for r in sorted {
        let (in_partition, in_offset) = origin[r.value.as_deref().unwrap()];
        let prev = last.insert((r.key.clone().unwrap(), in_partition), in_offset);
        assert!(
            prev.is_none_or(|p| p < in_offset),
            "order broken for key {:?}",
            String::from_utf8_lossy(r.key.as_deref().unwrap())
        );
    }
}

pub fn check_dead_letters(dlq: &[Read], dead: &[Vec<u8>], source: &str) {
    let mut got: Vec<Vec<u8>> = dlq.iter().map(|r| r.value.clone().unwrap()).collect();
    let mut want = dead.to_vec();
    got.sort();
    want.sort();
    assert_eq!(got, want, "dead letters are exactly the malformed orders");
    for r in dlq {
        assert_eq!(r.header("sluice.error.kind"), Some("rejected"));
        assert_eq!(r.header("sluice.error.code"), Some("bad-json"));
        assert_eq!(r.header("sluice.topic"), Some(source));
        assert!(r.header("sluice.offset").unwrap().parse::<i64>().is_ok());
    }
}

/// Runs the pipeline in-process until the input is committed.
pub fn run_until_drained(
    pipeline: &std::path::Path,
    brokers: &str,
    source: &str,
) -> sluice::runner::RunSummary {
    run_until_drained_on(pipeline, brokers, source, PARTITIONS)
}

/// As [`run_until_drained`], for a source of `partitions` partitions.
pub fn run_until_drained_on(
    pipeline: &std::path::Path,
    brokers: &str,
    source: &str,
    partitions: i32,
) -> sluice::runner::RunSummary {
    let topology = Arc::new(Topology::load(pipeline).expect("pipeline"));
    let engine = sluice::plugin::engine();
    let plugins = sluice::load_plugins(&engine, &topology, &Default::default()).expect("plugins");
    let ends = support::high_watermarks(brokers, source, partitions);
    let stop_at = ends
        .iter()
        .enumerate()
        .map(|(p, &e)| ((source.to_owned(), p as i32), e))
        .collect();
    runner::run(
        topology,
        plugins,
        RunOptions {
            brokers: brokers.to_owned(),
            connect_timeout: Duration::from_secs(30),
            stop: Arc::new(AtomicBool::new(false)),
            stop_at: Some(stop_at),
            idle_close_at_end: false,
            control: None,
            park: None,
        },
    )
    .expect("run")
}

fn end_to_end(brokers: &str, create: impl Fn(&[(&str, i32)])) {
    let app = support::unique("large-orders");
    let (source, sink, dlq) = (
        format!("{app}-orders"),
        format!("{app}-alerts"),
        format!("{app}-dlq"),
    );
    create(&[
        (&source, PARTITIONS),
        (&sink, PARTITIONS),
        (&dlq, PARTITIONS),
    ]);
    let input = orders(10_000, 7);
    let (alerts, dead) = expected(&input);
    assert!(
        alerts.len() > 1000 && dead.len() > 100,
        "the input exercises both paths"
    );
    assert!(
        input
            .iter()
            .any(|(_, v, _)| v.ends_with(b"\"amount\":10000}")),
        "an amount of exactly 10000"
    );
    support::produce(brokers, &source, &input);

    let dir = tempfile::tempdir().unwrap();
    let component = support::component("plugins/large-orders");
    let pipeline = support::write_pipeline(
        dir.path(),
        &pipeline_text(&app, &source, &sink, &dlq, &component, ""),
    );
    let summary = run_until_drained(&pipeline, brokers, &source);
    assert_eq!(summary.counts.records_in, 10_000);
    assert_eq!(summary.counts.records_out as usize, alerts.len());
    assert_eq!(summary.counts.rejected as usize, dead.len());

    let input_read = support::read_all(brokers, &source, PARTITIONS);
    assert_eq!(input_read.len(), 10_000);
    assert!(
        (0..PARTITIONS).all(|p| input_read.iter().any(|r| r.partition == p)),
        "input spread over 3 partitions"
    );
    check_exact(
        &input_read,
        &support::read_all(brokers, &sink, PARTITIONS),
        &alerts,
    );
    check_dead_letters(
        &support::read_all(brokers, &dlq, PARTITIONS),
        &dead,
        &source,
    );
    let ends = support::high_watermarks(brokers, &source, PARTITIONS);
    assert_eq!(
        support::committed(brokers, &app, &source, PARTITIONS),
        ends,
        "committed = high watermark"
    );
}

#[test]
fn large_orders_on_the_embedded_broker() {
    let kafka = sluice::kafka::embedded::EmbeddedKafka::start(1).unwrap();
    end_to_end(&kafka.bootstrap_servers(), |topics| {
        for (t, p) in topics {
            kafka.create_topic(t, *p).unwrap();
        }
    });
}

#[test]
fn large_orders_on_real_kafka() {
    let Some(kafka) = support::RealKafka::start(19392) else {
        return;
    };
    end_to_end(&kafka.brokers, |topics| {
        support::create_topics(&kafka.brokers, topics)
    });
}
