//! Outputs a sink topic would refuse (too large, a timestamp out of its
//! range) meet the `refused` policy, and their neighbours go out.

use std::collections::HashMap;
use std::path::Path;

use crate::error::RunError;
use crate::kafka::topic_limits::{SinkLimits, TopicLimits};
use crate::record::Record;
use crate::task::Counts;
use crate::task::testing::Driver;
use crate::topology::Topology;
use crate::topology::pipeline_file::PipelineFile;

const NOW: i64 = 1_700_000_000_000;
const HOUR: i64 = 3_600_000;

/// A driver of `policy`, its sends refused as Kafka 4's default topic
/// limits would, with four records queued at offsets 10 to 13: fine, an
/// hour and a minute ahead, 2 MB, fine.
fn driver(policy: &str) -> Driver {
    let text = format!(
        r#"
        application.id = "app"
        [errors]
        refused = "{policy}"
        [sources.events]
        [sinks.out]
        inputs = ["events"]
    "#
    );
    let mut d = Driver::from_toml(&text).unwrap();
    let limits = SinkLimits::new(None);
    let kafka4 = TopicLimits::from_configs([
        ("max.message.bytes", "1048588"),
        ("message.timestamp.after.max.ms", "3600000"),
    ]);
    limits.learn(HashMap::from([
        ("out".to_owned(), kafka4),
        ("app-dlq".to_owned(), kafka4),
    ]));
    d.refuse_with(move |topic, record| limits.check(topic, record, NOW));
    let big = vec![b'x'; 2_000_000];
    d.seek("events", 10);
    d.push("events", Some(b"a"), Some(b"1"), Some(NOW));
    d.push("events", Some(b"b"), Some(b"2"), Some(NOW + HOUR + 60_000));
    d.push("events", Some(b"c"), Some(&big), Some(NOW));
    d.push("events", Some(b"d"), Some(b"4"), Some(NOW - HOUR));
    d
}

fn keys(records: &[&Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned())
        .collect()
}

#[test]
fn refused_outputs_are_dead_lettered_with_the_reason_and_their_neighbours_go_out() {
    let mut d = driver("dlq");
    let counts = d.process().unwrap();
    assert_eq!(keys(&d.outputs("out")), ["a", "d"]);
    assert_eq!(
        (counts.records_out, counts.refused, counts.dead_letters),
        (2, 2, 2),
        "{counts:?}"
    );
    let letters = d.dead_letters();
    assert_eq!(keys(&letters), ["b", "c"]);
    let header = |r: &Record, name| String::from_utf8_lossy(r.header(name).unwrap()).into_owned();
    // The future timestamp: the letter carries it in a header, and is
    // stamped by the broker.
    let ahead = letters[0];
    assert_eq!(header(ahead, "sluice.error.kind"), "refused");
    assert_eq!(header(ahead, "sluice.error.code"), "timestamp-out-of-range");
    assert!(
        header(ahead, "sluice.error").contains("message.timestamp.after.max.ms (1h)"),
        "{}",
        header(ahead, "sluice.error")
    );
    assert_eq!(ahead.timestamp, None);
    assert_eq!(
        header(ahead, "sluice.timestamp"),
        (NOW + HOUR + 60_000).to_string()
    );
    assert_eq!(ahead.value.as_deref(), Some(&b"2"[..]));
    assert_eq!(header(ahead, "sluice.offset"), "11");
    // The 2 MB value: too large for the dead-letter topic too, so left out.
    let large = letters[1];
    assert_eq!(header(large, "sluice.error.code"), "record-too-large");
    assert!(
        header(large, "sluice.error").contains("message.max.bytes (1000000 bytes)"),
        "{}",
        header(large, "sluice.error")
    );
    assert_eq!(large.value, None);
    assert_eq!(header(large, "sluice.value.dropped"), "2000000 bytes");
    assert_eq!(large.timestamp, Some(NOW));
}

#[test]
fn refused_outputs_are_skipped_and_counted_under_skip() {
    let mut d = driver("skip");
    let counts: Counts = d.process().unwrap();
    assert_eq!(keys(&d.outputs("out")), ["a", "d"]);
    assert!(d.dead_letters().is_empty());
    assert_eq!((counts.refused, counts.dead_letters), (2, 0));
}

#[test]
fn a_refused_output_under_fail_names_the_record_and_the_limit() {
    let err = driver("fail").process().unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, RunError::RecordFailed { .. }), "{text}");
    assert!(text.contains("events/0@11"), "{text}");
    assert!(text.contains("`refused` policy is `fail`"), "{text}");
    assert!(text.contains("message.timestamp.after.max.ms"), "{text}");
}

#[test]
fn the_refused_policy_defaults_to_the_rejected_one() {
    let text = r#"
        application.id = "app"
        [errors]
        rejected = "skip"
        [sources.events]
        [sinks.out]
        inputs = ["events"]
    "#;
    let path = Path::new("/p/pipeline.toml");
    let t = Topology::from_file(path, PipelineFile::parse(path, text).unwrap()).unwrap();
    assert_eq!(t.errors.refused, crate::topology::ErrorPolicy::Skip);
    assert!(!t.uses_dlq());
}
