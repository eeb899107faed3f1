//! `sluice dev`: run a pipeline on an embedded broker with sample input.
//!
//! 1. Start librdkafka's mock cluster in-process.
//! 2. Create the source, sink and dead-letter topics.
//! 3. Produce the sample input (JSON Lines, see [`parse_line`]).
//! 4. Run the pipeline until the input is drained and committed, while a
//!    watcher prints every output record as it arrives.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use crate::error::{KafkaError, RunError};
use crate::kafka::client_config::ClientSettings;
use crate::kafka::embedded::EmbeddedKafka;
use crate::runner::{self, RunOptions, RunSummary};
use crate::topology::Topology;

/// Next offsets per (topic, partition).
type Offsets = HashMap<(String, i32), i64>;

/// One line of sample input, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SampleRecord {
    /// Source topic; `None` means the first source.
    pub topic: Option<String>,
    /// Key bytes.
    pub key: Option<Vec<u8>>,
    /// Value bytes.
    pub value: Option<Vec<u8>>,
    /// Event time (ms); `None` lets the producer stamp it.
    pub timestamp: Option<i64>,
    /// Headers.
    pub headers: Vec<(String, Vec<u8>)>,
}

const ENVELOPE_KEYS: [&str; 5] = ["key", "value", "timestamp", "headers", "topic"];

/// Parses one line of sample input. Two forms:
///
/// - **Envelope**: a JSON object that has a `"value"` member and no
///   members other than `key`, `value`, `timestamp` (ms since the epoch),
///   `headers` (an object of strings) and `topic`. A string `key` or
///   `value` is used as its text; any other JSON is used as compact JSON
///   text; `null` is a null key or a tombstone.
/// - **Bare value**: any other line. It is the record's value, byte for
///   byte, with a null key — so a line that is not valid JSON is sent as it
///   is, which is how malformed input is tried out.
pub fn parse_line(line: &str) -> Result<SampleRecord, String> {
    let bare = || SampleRecord {
        value: Some(line.as_bytes().to_vec()),
        ..SampleRecord::default()
    };
    let Ok(serde_json::Value::Object(obj)) = serde_json::from_str::<serde_json::Value>(line) else {
        return Ok(bare());
    };
    if !obj.contains_key("value") || !obj.keys().all(|k| ENVELOPE_KEYS.contains(&k.as_str())) {
        return Ok(bare());
    }
    let bytes = |v: Option<&serde_json::Value>| match v {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s.as_bytes().to_vec()),
        Some(other) => Some(other.to_string().into_bytes()),
    };
    let timestamp = match obj.get("timestamp") {
        None | Some(serde_json::Value::Null) => None,
        Some(t) => Some(
            t.as_i64()
                .ok_or_else(|| format!("`timestamp` must be an integer (ms), got {t}"))?,
        ),
    };
    let headers = match obj.get("headers") {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::Object(h)) => h
            .iter()
            .map(|(k, v)| (k.clone(), bytes(Some(v)).unwrap_or_default()))
            .collect(),
        Some(other) => return Err(format!("`headers` must be an object, got {other}")),
    };
    let topic = match obj.get("topic") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(t)) => Some(t.clone()),
        Some(other) => return Err(format!("`topic` must be a string, got {other}")),
    };
    Ok(SampleRecord {
        topic,
        key: bytes(obj.get("key")),
        value: bytes(obj.get("value")),
        timestamp,
        headers,
    })
}

/// An output record, as `sluice dev` prints it.
#[derive(Debug, Clone)]
pub struct Printed {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key.
    pub key: Option<Vec<u8>>,
    /// Value.
    pub value: Option<Vec<u8>>,
    /// Timestamp (ms).
    pub timestamp: Option<i64>,
    /// Headers.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl std::fmt::Display for Printed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = |b: &Option<Vec<u8>>| match b {
            None => "null".to_owned(),
            Some(b) => String::from_utf8_lossy(b).into_owned(),
        };
        write!(
            f,
            "{}[{}]@{}  key={}  ts={}  {}",
            self.topic,
            self.partition,
            self.offset,
            text(&self.key),
            self.timestamp
                .map(|t| t.to_string())
                .unwrap_or_else(|| "-".into()),
            text(&self.value)
        )?;
        if !self.headers.is_empty() {
            let hs: Vec<String> = self
                .headers
                .iter()
                .map(|(k, v)| format!("{k}={}", String::from_utf8_lossy(v)))
                .collect();
            write!(f, "  headers: {}", hs.join(", "))?;
        }
        Ok(())
    }
}

/// Errors of `sluice dev` beyond a run's own.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DevError {
    /// The input file could not be read.
    #[error("cannot read input {}: {source}", path.display())]
    Input {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line of input is a malformed envelope.
    #[error("{}:{line}: {message}", path.display())]
    Line {
        /// The file.
        path: std::path::PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The run failed.
    #[error(transparent)]
    Run(#[from] RunError),
}

impl From<KafkaError> for DevError {
    fn from(e: KafkaError) -> Self {
        DevError::Run(e.into())
    }
}

/// Runs `topology` on an embedded broker with the records of `input`;
/// calls `print` for each output record as it arrives. Setting `stop` ends
/// the run early, cleanly.
pub fn run(
    topology: Arc<Topology>,
    plugins: crate::Plugins,
    input: &Path,
    stop: Arc<AtomicBool>,
    mut print: impl FnMut(&Printed) + Send + 'static,
) -> Result<RunSummary, DevError> {
    let text = std::fs::read_to_string(input).map_err(|e| DevError::Input {
        path: input.to_owned(),
        source: e,
    })?;
    let records: Vec<SampleRecord> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            parse_line(l).map_err(|message| DevError::Line {
                path: input.to_owned(),
                line: i + 1,
                message,
            })
        })
        .collect::<Result<_, _>>()?;

    let kafka = EmbeddedKafka::start(1)?;
    let brokers = kafka.bootstrap_servers();
    let partitions = topology
        .sources
        .iter()
        .map(|s| s.partitions)
        .max()
        .unwrap_or(1);
    for s in &topology.sources {
        kafka.create_topic(&s.topic, s.partitions)?;
    }
    let outputs = topology.output_topics();
    for t in &outputs {
        kafka.create_topic(t, partitions)?;
    }
    // The embedded broker has no CreateTopics, and its changelogs start
    // empty: so do the stores, in a directory of this run.
    for (store, _) in topology.stores() {
        kafka.create_topic(
            &crate::state::changelog::topic(&topology.application_id, store),
            partitions,
        )?;
    }
    let state_dir = tempfile::Builder::new()
        .prefix("sluice-dev-state-")
        .tempdir()
        .map_err(|e| {
            DevError::Run(RunError::State(crate::error::StateError::Io {
                path: std::env::temp_dir(),
                source: e,
            }))
        })?;
    let topology = {
        let mut t = (*topology).clone();
        t.state.dir = state_dir.path().to_owned();
        Arc::new(t)
    };
    let settings = ClientSettings::new(&brokers, &topology.kafka);
    produce(&settings, &topology, &records)?;
    let stop_at = high_watermarks(
        &settings,
        topology
            .sources
            .iter()
            .map(|s| (s.topic.as_str(), s.partitions)),
    )?;
    tracing::info!(records = records.len(), brokers = %brokers, "sample input loaded into the embedded Kafka");

    let finish: Arc<Mutex<Option<Offsets>>> = Arc::default();
    let watcher = {
        let settings = settings.clone();
        let outputs = outputs.clone();
        let finish = Arc::clone(&finish);
        let app = topology.application_id.clone();
        std::thread::spawn(move || {
            watch(&settings, &app, &outputs, partitions, &finish, &mut print)
        })
    };
    let summary = runner::run(
        Arc::clone(&topology),
        plugins,
        RunOptions {
            brokers: brokers.clone(),
            connect_timeout: Duration::from_secs(10),
            stop,
            stop_at: Some(stop_at),
            control: None,
        },
    );
    let ends = high_watermarks(&settings, outputs.iter().map(|t| (t.as_str(), partitions)));
    *finish.lock().expect("not poisoned") = Some(ends.as_ref().cloned().unwrap_or_default());
    let watched = watcher.join().expect("watcher thread");
    let summary = summary?;
    ends?;
    watched?;
    Ok(summary)
}

fn produce(
    settings: &ClientSettings,
    topology: &Topology,
    records: &[SampleRecord],
) -> Result<(), KafkaError> {
    let producer: BaseProducer = settings
        .producer(&format!("{}-dev-input", topology.application_id))
        .create()
        .map_err(KafkaError::client("creating the input producer"))?;
    let first = &topology.sources[0].topic;
    for r in records {
        let topic = r.topic.as_deref().unwrap_or(first);
        let mut headers = OwnedHeaders::new();
        for (k, v) in &r.headers {
            headers = headers.insert(Header {
                key: k,
                value: Some(v),
            });
        }
        let mut rec: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).headers(headers);
        if let Some(k) = &r.key {
            rec = rec.key(k);
        }
        if let Some(v) = &r.value {
            rec = rec.payload(v);
        }
        if let Some(ts) = r.timestamp {
            rec = rec.timestamp(ts);
        }
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((_, back)) => {
                    rec = back;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
    }
    producer
        .flush(Duration::from_secs(30))
        .map_err(KafkaError::client("producing the sample input"))
}

fn high_watermarks<'a>(
    settings: &ClientSettings,
    topics: impl Iterator<Item = (&'a str, i32)>,
) -> Result<Offsets, KafkaError> {
    let consumer: BaseConsumer = settings
        .plain()
        .create()
        .map_err(KafkaError::client("creating a watermark client"))?;
    let mut out = HashMap::new();
    for (topic, partitions) in topics {
        for p in 0..partitions {
            let (_, high) = consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .map_err(KafkaError::client(format!(
                    "reading the end of {topic}/{p}"
                )))?;
            out.insert((topic.to_owned(), p), high);
        }
    }
    Ok(out)
}

fn watch(
    settings: &ClientSettings,
    app: &str,
    topics: &[String],
    partitions: i32,
    finish: &Mutex<Option<Offsets>>,
    print: &mut dyn FnMut(&Printed),
) -> Result<(), KafkaError> {
    let consumer: BaseConsumer = settings
        .plain()
        .set("group.id", format!("{app}-dev-watcher"))
        .set("enable.auto.commit", "false")
        .create()
        .map_err(KafkaError::client("creating the output watcher"))?;
    let mut tpl = TopicPartitionList::new();
    for t in topics {
        for p in 0..partitions {
            tpl.add_partition_offset(t, p, Offset::Beginning)
                .expect("valid");
        }
    }
    consumer
        .assign(&tpl)
        .map_err(KafkaError::client("assigning output partitions"))?;
    let mut seen: HashMap<(String, i32), i64> = HashMap::new();
    loop {
        if let Some(ends) = finish.lock().expect("not poisoned").as_ref()
            && ends
                .iter()
                .all(|(k, &end)| seen.get(k).copied().unwrap_or(0) >= end)
        {
            return Ok(());
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                seen.insert((m.topic().to_owned(), m.partition()), m.offset() + 1);
                let headers = m
                    .headers()
                    .map(|hs| {
                        hs.iter()
                            .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                            .collect()
                    })
                    .unwrap_or_default();
                print(&Printed {
                    topic: m.topic().to_owned(),
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().map(<[u8]>::to_vec),
                    timestamp: m.timestamp().to_millis(),
                    headers,
                });
            }
            Some(Err(e)) => tracing::warn!("output watcher: {e}"),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_and_bare_lines() {
        let e =
            parse_line(r#"{"key":"c-1","value":{"amount":5},"timestamp":17,"headers":{"h":"v"}}"#)
                .unwrap();
        assert_eq!(e.key.as_deref(), Some(&b"c-1"[..]));
        assert_eq!(e.value.as_deref(), Some(&br#"{"amount":5}"#[..]));
        assert_eq!(e.timestamp, Some(17));
        assert_eq!(e.headers, vec![("h".to_string(), b"v".to_vec())]);

        let tomb = parse_line(r#"{"key":"k","value":null}"#).unwrap();
        assert_eq!((tomb.key.as_deref(), tomb.value), (Some(&b"k"[..]), None));

        // An object with other members is a bare value, kept byte for byte.
        let line = r#"{"order_id": 1, "value": 3}"#;
        assert_eq!(
            parse_line(line).unwrap().value.as_deref(),
            Some(line.as_bytes())
        );
        // Malformed JSON is a bare value too.
        assert_eq!(
            parse_line("{oops").unwrap().value.as_deref(),
            Some(&b"{oops"[..])
        );
        assert_eq!(parse_line("{oops").unwrap().key, None);
    }

    #[test]
    fn malformed_envelope_fields_are_errors() {
        assert!(
            parse_line(r#"{"value":1,"timestamp":"soon"}"#)
                .unwrap_err()
                .contains("timestamp")
        );
        assert!(
            parse_line(r#"{"value":1,"headers":[1]}"#)
                .unwrap_err()
                .contains("headers")
        );
    }
}
