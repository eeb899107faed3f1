//! The built-in count and a reducer plugin side by side on one source,
//! end to end on the embedded broker, checked record by record.

use std::collections::BTreeMap;

use sluice::kafka::embedded::EmbeddedKafka;
use sluice::state::changelog;

use crate::support::{self, Rng};

#[test]
fn count_and_a_reducer_emit_every_update_in_order() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let brokers = kafka.bootstrap_servers();
    let app = support::unique("aggs");
    let (source, counts, joined, dlq) = (
        format!("{app}-in"),
        format!("{app}-counts"),
        format!("{app}-joined"),
        format!("{app}-dlq"),
    );
    for t in [
        &source,
        &counts,
        &joined,
        &dlq,
        &changelog::topic(&app, "counts"),
        &changelog::topic(&app, "joined"),
    ] {
        kafka.create_topic(t, 2).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let component = support::component("tests/plugins/concat");
    let pipeline = support::write_pipeline(
        dir.path(),
        &format!(
            r#"
application.id = "{app}"
[processing]
max.batch.records = 64
commit.interval.ms = 100
[errors]
rejected = "dlq"
dlq-topic = "{dlq}"
[state]
dir = "{state}"
[sources.in]
topic = "{source}"
[steps.count]
aggregate = "count"
store = "counts"
inputs = ["in"]
[steps.join]
aggregate = "{component}"
store = "joined"
inputs = ["in"]
[sinks.counts]
topic = "{counts}"
inputs = ["count"]
[sinks.joined]
topic = "{joined}"
inputs = ["join"]
"#,
            state = dir.path().join("state").display(),
            component = component.display(),
        ),
    );
    let mut rng = Rng::new(3);
    let input: Vec<(Option<String>, Vec<u8>, i64)> = (0..3_000)
        .map(|i| {
            let key = (i % 101 != 50).then(|| format!("k{}", rng.below(30)));
            let value = if i % 97 == 5 {
                "BAD".to_owned()
            } else {
                format!("v{i}")
            };
            (key, value.into_bytes(), i as i64)
        })
        .collect();
    support::produce(&brokers, &source, &input);
    let summary = crate::large_orders::run_until_drained_on(&pipeline, &brokers, &source, 2);

    // Per key, in input order: the count after each record, and the values
    // joined so far (a later BAD left out, but still counted).
    let mut want_counts: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut want_joined: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut null_keys = 0;
    let mut bad = 0;
    for (key, value, _) in &input {
        let Some(key) = key else {
            null_keys += 1;
            continue;
        };
        let c = want_counts.entry(key.clone()).or_default();
        c.push((c.len() + 1).to_string());
        let value = String::from_utf8(value.clone()).unwrap();
        let j = want_joined.entry(key.clone()).or_default();
        // A reducer starts from the first value as it is (as Kafka
        // Streams' reduce does); only later values go through the plugin.
        if value == "BAD" && !j.is_empty() {
            bad += 1;
            continue;
        }
        let next = match j.last() {
            Some(prev) => format!("{prev},{value}"),
            None => value,
        };
        j.push(next);
    }
    let per_key = |topic: &str| {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut read = support::read_all(&brokers, topic, 2);
        read.sort_by_key(|r| (r.partition, r.offset));
        for r in read {
            out.entry(String::from_utf8(r.key.unwrap()).unwrap())
                .or_default()
                .push(String::from_utf8(r.value.unwrap()).unwrap());
        }
        out
    };
    assert_eq!(per_key(&counts), want_counts);
    assert_eq!(per_key(&joined), want_joined);
    assert_eq!(summary.counts.rejected as usize, 2 * null_keys + bad);
    let dead = support::read_all(&brokers, &dlq, 2);
    assert_eq!(dead.len(), 2 * null_keys + bad);
    assert!(dead.iter().all(|r| matches!(
        r.header("sluice.error.code"),
        Some("null-key" | "bad-value")
    )));
}
