//! Records the broker would refuse for their own sake, on a real Kafka
//! broker with its default topic limits: an output whose event time is two
//! hours ahead (Kafka 4 refuses more than one, `InvalidTimestamp`) and one
//! of 2 MB (over the sink's `max.message.bytes`, `MessageSizeTooLarge`).
//! Each meets the `refused` policy (dead-lettered here, with the reason);
//! every other record is delivered, the run goes on, under exactly-once as
//! under at-least-once. Before, the whole batch failed, and every restart
//! failed the same way.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use crate::support::{self, SluiceRun};

const RECORDS: usize = 60;
const AHEAD: usize = 17;
const LARGE: usize = 41;
const LARGE_BYTES: usize = 2_000_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The input: JSON values with an event-time field; record `AHEAD` is two
/// hours ahead, record `LARGE` carries 2 MB of padding.
fn input(now: i64) -> Vec<(String, Vec<u8>)> {
    (0..RECORDS)
        .map(|i| {
            let at = if i == AHEAD { now + 2 * 3_600_000 } else { now };
            let pad = if i == LARGE {
                "x".repeat(LARGE_BYTES)
            } else {
                String::new()
            };
            (
                format!("k{i}"),
                format!(r#"{{"i":{i},"at":{at},"pad":"{pad}"}}"#).into_bytes(),
            )
        })
        .collect()
}

/// Creates the topics: the input takes 3 MB records, the sink and the
/// dead-letter topic keep the broker's defaults.
fn create(brokers: &str, input: &str, out: &str, dlq: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin client");
    let topics = [
        NewTopic::new(input, 1, TopicReplication::Fixed(1)).set("max.message.bytes", "3000000"),
        NewTopic::new(out, 1, TopicReplication::Fixed(1)),
        NewTopic::new(dlq, 1, TopicReplication::Fixed(1)),
    ];
    let results = futures_executor::block_on(admin.create_topics(&topics, &AdminOptions::new()))
        .expect("create topics");
    for r in results {
        r.expect("topic created");
    }
}

fn produce(brokers: &str, topic: &str, records: &[(String, Vec<u8>)]) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("message.max.bytes", "3000000")
        .create()
        .expect("producer");
    for (key, value) in records {
        producer
            .send(BaseRecord::to(topic).key(key).payload(value))
            .expect("queued");
    }
    producer
        .flush(Duration::from_secs(60))
        .expect("flush input");
}

struct Case {
    app: String,
    input: String,
    out: String,
    dlq: String,
    run: SluiceRun,
}

fn start(brokers: &str, dir: &std::path::Path, name: &str, guarantee: &str) -> Case {
    let app = support::unique(name);
    let (input, out, dlq) = (
        format!("{app}-in"),
        format!("{app}-out"),
        format!("{app}-dlq"),
    );
    create(brokers, &input, &out, &dlq);
    // The producer's own limit is raised above the sink's, so that the
    // 2 MB output is the sink topic's to refuse (`max.message.bytes`, read
    // from the broker), not librdkafka's.
    let dir = dir.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let pipeline = support::write_pipeline(
        &dir,
        &format!(
            r#"
application.id = "{app}"
[processing]
processing.guarantee = "{guarantee}"
[kafka]
"message.max.bytes" = "5000000"
"fetch.max.bytes" = "10000000"
[errors]
refused = "dlq"
dlq-topic = "{dlq}"
[sources.events]
topic = "{input}"
timestamp = "field"
timestamp-field = "at"
[sinks.out]
topic = "{out}"
inputs = ["events"]
"#
        ),
    );
    let run = SluiceRun::start(&pipeline, brokers, dir.join(format!("{name}.log")));
    Case {
        app,
        input,
        out,
        dlq,
        run,
    }
}

#[test]
fn outputs_the_broker_would_refuse_are_dead_lettered_and_the_rest_delivered() {
    let Some(kafka) = support::RealKafka::start(19406) else {
        return;
    };
    let brokers = kafka.brokers.clone();
    let dir = tempfile::tempdir().unwrap();
    let mut cases = [
        start(&brokers, dir.path(), "eos", "exactly-once"),
        start(&brokers, dir.path(), "alo", "at-least-once"),
    ];
    let now = now_ms();
    let records = input(now);
    for case in &cases {
        produce(&brokers, &case.input, &records);
    }
    let groups: Vec<(String, String)> = cases
        .iter()
        .map(|c| (c.app.clone(), c.input.clone()))
        .collect();
    {
        let mut runs: Vec<&mut SluiceRun> = cases.iter_mut().map(|c| &mut c.run).collect();
        support::wait_until("every input committed", &mut runs, || {
            groups
                .iter()
                .all(|(app, input)| support::committed(&brokers, app, input, 1) == [RECORDS as i64])
        });
    }
    for case in cases {
        let Case {
            app, out, dlq, run, ..
        } = case;
        let log = run.terminate();
        let delivered = support::read_all(&brokers, &out, 1);
        let keys: Vec<String> = delivered
            .iter()
            .map(|r| String::from_utf8(r.key.clone().unwrap()).unwrap())
            .collect();
        let expected: Vec<String> = (0..RECORDS)
            .filter(|i| ![AHEAD, LARGE].contains(i))
            .map(|i| format!("k{i}"))
            .collect();
        assert_eq!(
            keys, expected,
            "{app}: every other record, once, in order; log:\n{log}"
        );
        for (r, (_, value)) in delivered.iter().zip(
            records
                .iter()
                .enumerate()
                .filter(|(i, _)| ![AHEAD, LARGE].contains(i))
                .map(|(_, r)| r),
        ) {
            assert_eq!(r.value.as_deref(), Some(&value[..]), "{app}");
            assert_eq!(r.timestamp, Some(now), "{app}: the event time");
        }

        let letters = support::read_all(&brokers, &dlq, 1);
        assert_eq!(letters.len(), 2, "{app}: two dead letters; log:\n{log}");
        let (ahead, large) = (&letters[0], &letters[1]);
        assert_eq!(ahead.key.as_deref(), Some(format!("k{AHEAD}").as_bytes()));
        assert_eq!(ahead.header("sluice.error.kind"), Some("refused"));
        assert_eq!(
            ahead.header("sluice.error.code"),
            Some("timestamp-out-of-range")
        );
        let reason = ahead.header("sluice.error").unwrap();
        assert!(
            reason.contains(&format!("topic `{out}`"))
                && reason.contains("message.timestamp.after.max.ms (1h)"),
            "{reason}"
        );
        assert_eq!(ahead.value.as_deref(), Some(&records[AHEAD].1[..]));
        // Its own topic would refuse its time too: the broker stamped it.
        assert_eq!(
            ahead.header("sluice.timestamp"),
            Some((now + 2 * 3_600_000).to_string().as_str())
        );
        assert!(ahead.timestamp.unwrap() < now + 3_600_000);
        assert_eq!(
            ahead.header("sluice.topic"),
            Some(case_input(&app).as_str())
        );
        assert_eq!(
            ahead.header("sluice.offset"),
            Some(AHEAD.to_string().as_str())
        );

        assert_eq!(large.key.as_deref(), Some(format!("k{LARGE}").as_bytes()));
        assert_eq!(large.header("sluice.error.code"), Some("record-too-large"));
        let reason = large.header("sluice.error").unwrap();
        assert!(
            reason.contains("the topic's max.message.bytes (1048588 bytes)"),
            "{reason}"
        );
        // Too large for the dead-letter topic as well: its value is left out.
        assert_eq!(large.value, None);
        assert_eq!(
            large.header("sluice.value.dropped"),
            Some(format!("{} bytes", records[LARGE].1.len()).as_str())
        );
        assert_eq!(
            support::committed(&brokers, &app, &case_input(&app), 1),
            [RECORDS as i64],
            "{app}: every input committed"
        );
        assert!(!log.contains("ERROR"), "{app}: no error; log:\n{log}");
    }
}

fn case_input(app: &str) -> String {
    format!("{app}-in")
}
