//! A plugin that traps on one record among good ones: only that record
//! reaches the dead-letter topic, with its metadata, and every other
//! record comes out once, in order.

use crate::large_orders::run_until_drained;
use crate::support;

#[test]
fn one_trapping_record_goes_to_the_dlq_alone() {
    let kafka = sluice::kafka::embedded::EmbeddedKafka::start(1).unwrap();
    let brokers = kafka.bootstrap_servers();
    let app = support::unique("traps");
    let (source, sink, dlq) = (
        format!("{app}-in"),
        format!("{app}-out"),
        format!("{app}-dlq"),
    );
    for t in [&source, &sink, &dlq] {
        kafka.create_topic(t, 3).unwrap();
    }
    // One key, so all records share a partition and their order is defined.
    let input: Vec<(Option<String>, Vec<u8>, i64)> = (0..200)
        .map(|i| {
            let v = match i {
                77 => "record 77 TRAP".to_owned(),
                120 => "record 120 REJECT".to_owned(),
                _ => format!("record {i}"),
            };
            (Some("k".to_owned()), v.into_bytes(), 1000 + i)
        })
        .collect();
    support::produce(&brokers, &source, &input);

    let dir = tempfile::tempdir().unwrap();
    let component = support::component("tests/plugins/trap-on-marker");
    let pipeline = support::write_pipeline(
        dir.path(),
        &format!(
            r#"
application.id = "{app}"
[processing]
max.batch.records = 32
[errors]
rejected = "skip"
trap = "dlq"
dlq-topic = "{dlq}"
[sources.in]
topic = "{source}"
partitions = 3
[steps.pass]
plugin = "{}"
inputs = ["in"]
[sinks.out]
topic = "{sink}"
inputs = ["pass"]
"#,
            component.display()
        ),
    );
    let summary = run_until_drained(&pipeline, &brokers, &source);
    assert_eq!(
        (
            summary.counts.trapped,
            summary.counts.rejected,
            summary.counts.dead_letters
        ),
        (1, 1, 1)
    );

    let out: Vec<String> = support::read_all(&brokers, &sink, 3)
        .into_iter()
        .map(|r| String::from_utf8(r.value.unwrap()).unwrap())
        .collect();
    let want: Vec<String> = (0..200)
        .filter(|i| *i != 77 && *i != 120)
        .map(|i| format!("record {i}"))
        .collect();
    assert_eq!(
        out, want,
        "every good record once, in order; the trapping batch was replayed record by record"
    );

    let letters = support::read_all(&brokers, &dlq, 3);
    assert_eq!(letters.len(), 1);
    let l = &letters[0];
    let source_record = support::read_all(&brokers, &source, 3)
        .into_iter()
        .find(|r| r.value.as_deref() == Some(b"record 77 TRAP"))
        .unwrap();
    assert_eq!(l.value.as_deref(), Some(&b"record 77 TRAP"[..]));
    assert_eq!(l.key.as_deref(), Some(&b"k"[..]));
    assert_eq!(l.timestamp, Some(1077));
    assert_eq!(l.header("sluice.error.kind"), Some("trap"));
    assert_eq!(l.header("sluice.step"), Some("pass"));
    assert_eq!(l.header("sluice.topic"), Some(source.as_str()));
    assert_eq!(
        l.header("sluice.partition"),
        Some(source_record.partition.to_string().as_str())
    );
    assert_eq!(
        l.header("sluice.offset"),
        Some(source_record.offset.to_string().as_str())
    );
    assert_eq!(l.header("sluice.plugin.digest").map(str::len), Some(64));
    assert!(
        l.header("sluice.error")
            .is_some_and(|e| e.contains("unreachable")),
        "{:?}",
        l.header("sluice.error")
    );
}
