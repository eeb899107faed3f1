//! Event time end to end: a JSON-field extractor, the `invalid-timestamp`
//! policies, out-of-order counting, and stream time surviving a restart
//! through the committed offsets.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use sluice::kafka::embedded::EmbeddedKafka;
use sluice::runner::{self, RunOptions};
use sluice::topology::Topology;

use crate::large_orders::run_until_drained_on;
use crate::support;

fn pipeline(dir: &Path, app: &str, source: &str, sink: &str, invalid: &str) -> std::path::PathBuf {
    support::write_pipeline(
        dir,
        &format!(
            r#"
application.id = "{app}"
[processing]
commit.interval.ms = 100
[sources.events]
topic = "{source}"
timestamp = "field"
timestamp-field = "event.at"
invalid-timestamp = "{invalid}"
[steps.identity]
plugin = "{}"
inputs = ["events"]
[sinks.out]
topic = "{sink}"
inputs = ["identity"]
[kafka]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "500"
"#,
            support::component("plugins/identity").display()
        ),
    )
}

fn event(at: Option<&str>) -> (Option<String>, Vec<u8>, i64) {
    let value = match at {
        Some(at) => format!(r#"{{"event":{{"at":{at}}}}}"#),
        None => r#"{"event":{}}"#.to_owned(),
    };
    // The record timestamp is deliberately unrelated to the event time.
    (Some("k".into()), value.into_bytes(), 99)
}

#[test]
fn event_time_comes_from_a_field_and_stream_time_survives_a_restart() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let brokers = kafka.bootstrap_servers();
    let app = support::unique("time");
    let (source, sink) = (format!("{app}-events"), format!("{app}-out"));
    for t in [&source, &sink] {
        kafka.create_topic(t, 1).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let skip = pipeline(dir.path(), &app, &source, &sink, "skip");

    support::produce(
        &brokers,
        &source,
        &[
            event(Some("1000")),
            event(Some("3000")),
            event(Some("2000")), // out of order
            event(None),         // no event time: skipped
            event(Some(r#""1970-01-01T00:00:05Z""#)),
        ],
    );
    let first = run_until_drained_on(&skip, &brokers, &source, 1);
    assert_eq!(first.counts.out_of_order, 1);
    assert_eq!(first.counts.invalid_timestamps, 1);
    assert_eq!(first.counts.records_out, 4);
    let times: Vec<Option<i64>> = support::read_all(&brokers, &sink, 1)
        .iter()
        .map(|r| r.timestamp)
        .collect();
    assert_eq!(
        times,
        [Some(1000), Some(3000), Some(2000), Some(5000)],
        "outputs carry the extracted event time"
    );

    // A new run starts from the committed stream time (5000): 4000 is
    // still out of order after the restart.
    support::produce(
        &brokers,
        &source,
        &[event(Some("4000")), event(Some("6000"))],
    );
    let second = run_until_drained_on(&skip, &brokers, &source, 1);
    assert_eq!(second.counts.records_in, 2);
    assert_eq!(second.counts.out_of_order, 1, "stream time was restored");

    // Under `fail`, the record without an event time stops the pipeline
    // with an error that names it.
    let strict_app = format!("{app}-strict");
    let strict = pipeline(dir.path(), &strict_app, &source, &sink, "fail");
    let topology = Arc::new(Topology::load(&strict).unwrap());
    let plugins =
        sluice::load_plugins(&sluice::plugin::engine(), &topology, &Default::default()).unwrap();
    let e = runner::run(
        topology,
        plugins,
        RunOptions {
            brokers: brokers.clone(),
            connect_timeout: Duration::from_secs(30),
            stop: Arc::new(AtomicBool::new(false)),
            stop_at: None,
            idle_close_at_end: false,
            control: None,
            park: None,
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains(&format!("record {source}/0@3"))
            && e.contains("`invalid-timestamp` is `fail`")
            && e.contains("no `event.at`"),
        "{e}"
    );
}

#[test]
fn a_wasm_extractor_gives_the_event_times() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let brokers = kafka.bootstrap_servers();
    let app = support::unique("plugin-time");
    let (source, sink) = (format!("{app}-events"), format!("{app}-out"));
    for t in [&source, &sink] {
        kafka.create_topic(t, 1).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let pipeline = support::write_pipeline(
        dir.path(),
        &format!(
            r#"
application.id = "{app}"
[processing]
commit.interval.ms = 100
[sources.events]
topic = "{source}"
timestamp = "plugin"
timestamp-plugin = "{extractor}"
timestamp-config.prefix = "at="
invalid-timestamp = "skip"
[steps.identity]
plugin = "{identity}"
inputs = ["events"]
[sinks.out]
topic = "{sink}"
inputs = ["identity"]
"#,
            extractor = support::component("tests/plugins/text-time").display(),
            identity = support::component("plugins/identity").display(),
        ),
    );
    let record = |v: &str| (Some("k".to_owned()), v.as_bytes().to_vec(), 99);
    support::produce(
        &brokers,
        &source,
        &[
            record("at=1000;a"),
            record("at=3000;b"),
            record("at=2000;c"),
            record("no time"),
        ],
    );
    let summary = run_until_drained_on(&pipeline, &brokers, &source, 1);
    assert_eq!(summary.counts.invalid_timestamps, 1);
    assert_eq!(summary.counts.out_of_order, 1);
    let times: Vec<Option<i64>> = support::read_all(&brokers, &sink, 1)
        .iter()
        .map(|r| r.timestamp)
        .collect();
    assert_eq!(times, [Some(1000), Some(3000), Some(2000)]);
}

/// A windowed count behind a processor that traps on `TRAP`, reading
/// event times from `event.at`; `trap` is the policy.
fn trapping_count(
    dir: &Path,
    app: &str,
    source: &str,
    sink: &str,
    trap: &str,
) -> std::path::PathBuf {
    let dir = dir.join(trap);
    std::fs::create_dir_all(&dir).unwrap();
    support::write_pipeline(
        &dir,
        &format!(
            r#"
application.id = "{app}"
[processing]
commit.interval.ms = 100
[errors]
trap = "{trap}"
[state]
dir = "{}"
[sources.events]
topic = "{source}"
timestamp = "field"
timestamp-field = "event.at"
[steps.check]
plugin = "{}"
key = "kept"
inputs = ["events"]
[steps.counts]
aggregate = "count"
inputs = ["check"]
window = {{ type = "tumbling", size = 60000 }}
[sinks.out]
topic = "{sink}"
inputs = ["counts"]
[kafka]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "500"
"#,
            dir.parent().unwrap().join("state").display(),
            support::component("tests/plugins/trap-on-marker").display()
        ),
    )
}

#[test]
fn a_failed_batch_does_not_move_the_committed_stream_time() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let brokers = kafka.bootstrap_servers();
    let app = support::unique("failed-time");
    let (source, sink) = (format!("{app}-events"), format!("{app}-out"));
    // The embedded broker cannot create topics: the changelog too.
    let changelog = sluice::state::changelog::topic(&app, "counts");
    for t in [&source, &sink, &changelog] {
        kafka.create_topic(t, 1).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let fail = trapping_count(dir.path(), &app, &source, &sink, "fail");
    let skip = trapping_count(dir.path(), &app, &source, &sink, "skip");
    let at = |t: i64, marker: &str| {
        (
            Some("k".to_owned()),
            format!(r#"{{"event":{{"at":{t}}},"v":"{marker}"}}"#).into_bytes(),
            1,
        )
    };
    support::produce(&brokers, &source, &[at(1_000, "")]);
    run_until_drained_on(&fail, &brokers, &source, 1);

    // A run under `fail` takes an on-time record (a batch that succeeds
    // and is committed), then one batch of an on-time record, one far
    // ahead, and one the plugin traps on: the run stops.
    support::produce(&brokers, &source, &[at(1_500, "")]);
    let topology = Arc::new(Topology::load(&fail).unwrap());
    let plugins =
        sluice::load_plugins(&sluice::plugin::engine(), &topology, &Default::default()).unwrap();
    let run = {
        let brokers = brokers.clone();
        std::thread::spawn(move || {
            runner::run(
                topology,
                plugins,
                RunOptions {
                    brokers,
                    connect_timeout: Duration::from_secs(30),
                    stop: Arc::new(AtomicBool::new(false)),
                    stop_at: None,
                    idle_close_at_end: false,
                    control: None,
                    park: None,
                },
            )
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while support::committed(&brokers, &app, &source, 1) != [2] {
        assert!(
            std::time::Instant::now() < deadline,
            "the first batch was not committed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    support::produce(
        &brokers,
        &source,
        &[at(2_000, ""), at(200_000, ""), at(3_000, "TRAP")],
    );
    let e = run.join().unwrap().unwrap_err().to_string();
    assert!(e.contains("trap"), "{e}");

    // Switched to `skip`, as the error advises: the batch is processed
    // again from the stream time before it (1,500, not 200,000), so 2,000
    // is on time and the first minute counts 3.
    let again = run_until_drained_on(&skip, &brokers, &source, 1);
    assert_eq!(
        again.counts.late, 0,
        "nothing judged late: {:?}",
        again.counts
    );
    let last_of_first_minute = support::read_all(&brokers, &sink, 1)
        .into_iter()
        .rfind(|r| r.key.as_deref() == Some(b"k@0/60000".as_slice()))
        .expect("the first minute's count");
    assert_eq!(last_of_first_minute.value.as_deref(), Some(&b"3"[..]));
}
