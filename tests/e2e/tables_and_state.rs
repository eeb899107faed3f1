//! Tables from topics and processor-owned state, end to end on the
//! embedded broker: a Debezium table read by a processor through the WIT
//! `state` import, and `plugins/dedup` keeping its own store across kills.

use std::collections::{BTreeMap, HashMap};

use sluice::kafka::embedded::EmbeddedKafka;
use sluice::state::changelog;

use crate::support;

/// A record to produce: key, value, timestamp.
type Produced = (Option<String>, Vec<u8>, i64);

#[test]
fn a_debezium_table_is_materialized_and_read_through_the_state_import() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let brokers = kafka.bootstrap_servers();
    let app = support::unique("enrich");
    let (customers, orders, sink, dlq) = (
        format!("{app}-customers"),
        format!("{app}-orders"),
        format!("{app}-enriched"),
        format!("{app}-dlq"),
    );
    for t in [
        &customers,
        &orders,
        &sink,
        &dlq,
        &changelog::topic(&app, "customers"),
        &changelog::topic(&app, "orders"),
    ] {
        kafka.create_topic(t, 1).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let component = support::component("tests/plugins/table-lookup");
    let pipeline = support::write_pipeline(
        dir.path(),
        &format!(
            r#"
application.id = "{app}"
[processing]
commit.interval.ms = 100
[errors]
rejected = "dlq"
trap = "dlq"
dlq-topic = "{dlq}"
[state]
dir = "{state}"
[sources.customers]
topic = "{customers}"
table = true
format = "debezium"
[sources.orders]
topic = "{orders}"
[steps.lookup]
plugin = "{component}"
inputs = ["orders"]
stores = ["customers", "orders"]
[sinks.enriched]
topic = "{sink}"
inputs = ["lookup"]
[kafka]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "500"
"#,
            state = dir.path().join("state").display(),
            component = component.display(),
        ),
    );

    // The customer table first, as Debezium change events: creates,
    // updates, a delete with its tombstone, and Connect's {schema, payload}.
    let event = |before: &str, after: &str, op: &str| {
        format!(r#"{{"before":{before},"after":{after},"op":"{op}","source":{{"db":"shop"}}}}"#)
    };
    let mut changes: Vec<(Option<String>, Vec<u8>, i64)> = Vec::new();
    let mut rows: BTreeMap<String, Option<String>> = BTreeMap::new();
    for id in 0..20 {
        let row = format!(r#"{{"id":{id},"name":"c{id}"}}"#);
        changes.push((
            Some(format!("c{id}")),
            event("null", &row, "r").into_bytes(),
            1,
        ));
        rows.insert(format!("c{id}"), Some(row));
    }
    for id in (0..20).step_by(3) {
        let row = format!(r#"{{"id":{id},"name":"C{id}","vip":true}}"#);
        let wrapped = format!(
            r#"{{"schema":{{"type":"struct"}},"payload":{}}}"#,
            event("null", &row, "u")
        );
        changes.push((Some(format!("c{id}")), wrapped.into_bytes(), 2));
        rows.insert(format!("c{id}"), Some(row));
    }
    for id in [4, 8] {
        changes.push((
            Some(format!("c{id}")),
            event("{}", "null", "d").into_bytes(),
            3,
        ));
        rows.insert(format!("c{id}"), None);
    }
    changes.push((Some("c9".into()), b"not an event".to_vec(), 4));
    support::produce(&brokers, &customers, &changes);
    support::run_to_end(
        &pipeline,
        &brokers,
        &app,
        &[(&customers, 1), (&orders, 1)],
        dir.path().join("1.log"),
    );
    // The tombstone that follows a Debezium delete (compaction's cue).
    support::produce_tombstone(&brokers, &customers, "c8");

    // Then the orders, in a second run: the table comes back from the
    // local store.
    let mut input: Vec<(Option<String>, Vec<u8>, i64)> = Vec::new();
    for i in 0..60 {
        let customer = format!("c{}", i % 25);
        let order = match i {
            17 => "WRITE".to_owned(),
            33 => "UNDECLARED".to_owned(),
            _ => format!("o{i}"),
        };
        input.push((Some(customer), order.into_bytes(), 10 + i as i64));
    }
    input.push((Some("c1".into()), b"COUNT".to_vec(), 100));
    support::produce(&brokers, &orders, &input);
    support::run_to_end(
        &pipeline,
        &brokers,
        &app,
        &[(&customers, 1), (&orders, 1)],
        dir.path().join("2.log"),
    );

    let mut want: Vec<(String, String)> = Vec::new();
    let mut accepted = 0;
    for (key, value, _) in &input {
        let key = key.clone().unwrap();
        let order = String::from_utf8(value.clone()).unwrap();
        match order.as_str() {
            "WRITE" | "UNDECLARED" => continue,
            "COUNT" => want.push((key, (accepted + 1).to_string())),
            _ => {
                accepted += 1;
                let who = rows
                    .get(&key)
                    .cloned()
                    .flatten()
                    .unwrap_or_else(|| "unknown".into());
                want.push((key, format!("{order} for {who}")));
            }
        }
    }
    let got: Vec<(String, String)> = support::read_all(&brokers, &sink, 1)
        .into_iter()
        .map(|r| {
            (
                String::from_utf8(r.key.unwrap()).unwrap(),
                String::from_utf8(r.value.unwrap()).unwrap(),
            )
        })
        .collect();
    assert_eq!(got, want);
    let dead: HashMap<String, String> = support::read_all(&brokers, &dlq, 1)
        .iter()
        .map(|r| {
            (
                String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned(),
                r.header("sluice.error.code").unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(dead["WRITE"], "read-only");
    // Reaching for a store the step did not declare is a sandbox
    // violation: the call fails as a trap, whatever the plugin makes of
    // the error it is given.
    assert_eq!(dead["UNDECLARED"], "trap");
    assert_eq!(dead["not an event"], "bad-change-event");
    assert_eq!(dead.len(), 3);
}

#[test]
fn dedup_keeps_its_own_state_exact_across_kills() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let brokers = kafka.bootstrap_servers();
    let app = support::unique("dedup");
    let (events, unique) = (format!("{app}-events"), format!("{app}-unique"));
    for t in [&events, &unique, &changelog::topic(&app, "seen")] {
        kafka.create_topic(t, 3).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let component = support::component("plugins/dedup");
    let pipeline = support::write_pipeline(
        dir.path(),
        &format!(
            r#"
application.id = "{app}"
[processing]
max.batch.records = 100
commit.interval.ms = 20
[state]
dir = "{state}"
[sources.events]
topic = "{events}"
[steps.dedup]
plugin = "{component}"
inputs = ["events"]
stores = ["seen"]
[sinks.unique]
topic = "{unique}"
inputs = ["dedup"]
[kafka]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "500"
"#,
            state = dir.path().join("state").display(),
            component = component.display(),
        ),
    );
    let mut rng = support::Rng::new(21);
    let input: Vec<(Option<String>, Vec<u8>, i64)> = (0..30_000)
        .map(|i| {
            (
                Some(format!("k{}", rng.below(5_000))),
                format!("event {i}").into_bytes(),
                i as i64,
            )
        })
        .collect();
    // Each killed run gets fresh input, so that it has commits to die in
    // (every 20 ms: a part takes a quarter of a second or less here).
    let points = ["changelog-acked:2", "state-written:3", "changelog-sent:2"];
    let parts: Vec<&[Produced]> = input.chunks(input.len() / 4).collect();
    for (n, point) in points.iter().enumerate() {
        support::produce(&brokers, &events, parts[n]);
        support::crash_at(
            &pipeline,
            &brokers,
            dir.path().join(format!("{n}.log")),
            point,
        );
    }
    for part in &parts[points.len()..] {
        support::produce(&brokers, &events, part);
    }
    support::run_to_end(
        &pipeline,
        &brokers,
        &app,
        &[(&events, 3)],
        dir.path().join("last.log"),
    );

    let mut first: HashMap<String, String> = HashMap::new();
    for (key, value, _) in &input {
        first
            .entry(key.clone().unwrap())
            .or_insert_with(|| String::from_utf8(value.clone()).unwrap());
    }
    let out = support::read_all(&brokers, &unique, 3);
    let mut passed: HashMap<String, String> = HashMap::new();
    for r in &out {
        let key = String::from_utf8(r.key.clone().unwrap()).unwrap();
        let value = String::from_utf8(r.value.clone().unwrap()).unwrap();
        assert_eq!(
            first[&key], value,
            "only the first event of {key} may pass, even when replayed"
        );
        passed.insert(key, value);
    }
    assert_eq!(passed, first, "every key's first event passed");
    eprintln!(
        "{} keys, {} sink records ({} repeats of a first event after kills)",
        first.len(),
        out.len(),
        out.len() - first.len()
    );
}
