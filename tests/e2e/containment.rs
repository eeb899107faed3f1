//! Hostile plugins are contained: an endless loop meets the call deadline,
//! endless allocation meets the memory cap. Only the offending record's
//! call fails; it goes to the DLQ with the reason, and every other record
//! passes, in order.

use sluice::kafka::embedded::EmbeddedKafka;

use crate::large_orders::run_until_drained_on;
use crate::support;

#[test]
fn an_endless_loop_and_endless_allocation_fail_only_their_own_records() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let brokers = kafka.bootstrap_servers();
    let app = support::unique("hostile");
    let (source, sink, dlq) = (
        format!("{app}-in"),
        format!("{app}-out"),
        format!("{app}-dlq"),
    );
    for t in [&source, &sink, &dlq] {
        kafka.create_topic(t, 1).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let pipeline = support::write_pipeline(
        dir.path(),
        &format!(
            r#"
application.id = "{app}"
[processing]
max.batch.records = 16
commit.interval.ms = 100
plugin.deadline.ms = 300
plugin.memory.mb = 64
[errors]
trap = "dlq"
[sources.events]
topic = "{source}"
[steps.hostile]
plugin = "{plugin}"
inputs = ["events"]
[sinks.out]
topic = "{sink}"
inputs = ["hostile"]
"#,
            plugin = support::component("tests/plugins/hostile").display()
        ),
    );
    let values: Vec<String> = (0..60)
        .map(|i| match i {
            10 => "SPIN".to_owned(),
            40 => "GRAB".to_owned(),
            i => format!("ok-{i}"),
        })
        .collect();
    let records: Vec<(Option<String>, Vec<u8>, i64)> = values
        .iter()
        .map(|v| (Some("k".to_owned()), v.clone().into_bytes(), 1))
        .collect();
    support::produce(&brokers, &source, &records);
    let summary = run_until_drained_on(&pipeline, &brokers, &source, 1);
    assert_eq!(summary.counts.trapped, 2);

    let passed: Vec<String> = support::read_all(&brokers, &sink, 1)
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap())
        .collect();
    let want: Vec<&String> = values.iter().filter(|v| v.starts_with("ok-")).collect();
    assert_eq!(
        passed.iter().collect::<Vec<_>>(),
        want,
        "every other record, in order"
    );

    let dead = support::read_all(&brokers, &dlq, 1);
    assert_eq!(dead.len(), 2);
    let reason = |i: usize| dead[i].header("sluice.error").unwrap().to_owned();
    assert_eq!(dead[0].value.as_deref(), Some(&b"SPIN"[..]));
    assert!(
        reason(0).contains("deadline: the call ran past its deadline of 300 ms"),
        "{}",
        reason(0)
    );
    assert_eq!(dead[0].header("sluice.offset"), Some("10"));
    assert_eq!(dead[1].value.as_deref(), Some(&b"GRAB"[..]));
    assert!(
        reason(1).contains("memory: the instance reached its memory cap of 64 MiB"),
        "{}",
        reason(1)
    );
    assert!(dead[1].header("sluice.plugin.digest").is_some());
}
