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

impl SampleRecord {
    /// Its bytes: key, value, and the headers' names and values.
    pub fn size(&self) -> usize {
        let len = |b: &Option<Vec<u8>>| b.as_ref().map_or(0, Vec::len);
        len(&self.key)
            + len(&self.value)
            + self
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
    }
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
        Some(t) => match t.as_i64() {
            // librdkafka stamps a record given 0 with the time of producing.
            Some(0) => {
                return Err(
                    "`timestamp` 0 cannot be produced: the Kafka client takes 0 as \"now\"; \
                     use 1 or later, or leave it out to stamp the time of producing"
                        .into(),
                );
            }
            Some(t) => Some(t),
            None => return Err(format!("`timestamp` must be an integer (ms), got {t}")),
        },
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
        let text = |b: &Option<Vec<u8>>, none: &str| match b {
            None => none.to_owned(),
            Some(b) => String::from_utf8_lossy(b).into_owned(),
        };
        write!(
            f,
            "{}[{}]@{}  key={}  ts={}  {}",
            self.topic,
            self.partition,
            self.offset,
            text(&self.key, "(null)"),
            self.timestamp
                .map(|t| t.to_string())
                .unwrap_or_else(|| "-".into()),
            text(&self.value, "(tombstone)")
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
    /// A line of input was not delivered to the embedded broker.
    #[error("{}:{line}: the embedded broker did not take this record: {message}", path.display())]
    Produce {
        /// The file.
        path: std::path::PathBuf,
        /// 1-based line number.
        line: usize,
        /// The producer's error.
        message: String,
    },
    /// The run ended before it had processed every input record: its
    /// summary does not account for the input. What was processed was
    /// printed; nothing is complete.
    #[error(
        "the run processed {accounted} of the {produced} input records{}",
        if unconsumed.is_empty() { String::new() } else { format!("; not consumed: {}", unconsumed.join(", ")) }
    )]
    Incomplete {
        /// What the run did.
        summary: Box<RunSummary>,
        /// Records produced from the input file.
        produced: usize,
        /// Records the summary accounts for (processed, or dropped by the
        /// `invalid-timestamp` policy).
        accounted: u64,
        /// Partitions whose committed offset is short of the input's end,
        /// as `topic/partition: committed of end`.
        unconsumed: Vec<String>,
    },
    /// `--idle-close` on a pipeline without `close.idle.after`.
    #[error(
        "--idle-close closes the windows of steps with `close.idle.after`, and no step of this \
         pipeline sets it (docs/pipeline.md#windowed-aggregations)"
    )]
    NoIdleClose,
    /// The run failed.
    #[error(transparent)]
    Run(#[from] RunError),
}

impl From<KafkaError> for DevError {
    fn from(e: KafkaError) -> Self {
        DevError::Run(e.into())
    }
}

/// How `sluice dev` runs.
#[derive(Debug, Clone, Default)]
pub struct DevOptions {
    /// Set to stop: the run ends early, cleanly (and incomplete).
    pub stop: Arc<AtomicBool>,
    /// Once the input is drained, close the windows of steps with
    /// `close.idle.after` as if that long had passed, before stopping.
    pub idle_close: bool,
    /// Keep the stores in this directory (as `[state] dir` would) instead
    /// of a temporary one removed when the run ends.
    pub state_dir: Option<std::path::PathBuf>,
}

/// The name of a run's temporary state directory starts with this, then
/// the process id and a dash.
const STATE_PREFIX: &str = "sluice-dev-state-";

/// Removes the temporary state directories of `sluice dev` runs in `tmp`
/// whose process is gone: a run killed (SIGKILL, a second Ctrl-C) has no
/// chance to remove its own. Returns how many were removed.
pub fn sweep_state_dirs(tmp: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(STATE_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<i32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() as i32
            && !alive(pid)
            && std::fs::remove_dir_all(entry.path()).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

/// Whether a process `pid` exists (signal 0 checks without sending).
fn alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks whether `pid` could be
    // signalled; it has no effect on the process.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Runs `topology` on an embedded broker with the records of `input`;
/// calls `print` for each output record as it arrives. The run ends once
/// every input record is processed and committed; one that ends before
/// (stopped, or short of the input) is [`DevError::Incomplete`].
pub fn run(
    topology: Arc<Topology>,
    plugins: crate::plugins::Plugins,
    input: &Path,
    opts: DevOptions,
    print: impl FnMut(&Printed) + Send + 'static,
) -> Result<RunSummary, DevError> {
    let kafka = EmbeddedKafka::start(1)?;
    run_on(&kafka, topology, plugins, input, opts, print)
}

/// [`run`] on an embedded broker of the caller's (with faults injected,
/// in tests). Its topics must not exist yet.
pub fn run_on(
    kafka: &EmbeddedKafka,
    topology: Arc<Topology>,
    plugins: crate::plugins::Plugins,
    input: &Path,
    opts: DevOptions,
    mut print: impl FnMut(&Printed) + Send + 'static,
) -> Result<RunSummary, DevError> {
    if opts.idle_close && topology.idle_close().is_none() {
        return Err(DevError::NoIdleClose);
    }
    let (lines, records) = read_input(input, &topology)?;
    let brokers = kafka.bootstrap_servers();
    let partitions = topology
        .sources
        .iter()
        .map(|s| s.partitions)
        .max()
        .unwrap_or(1);
    let outputs = topology.output_topics();
    create_topics(kafka, &topology, &outputs, partitions)?;
    let (topology, temporary) = with_state_dir(&topology, opts.state_dir.as_deref())?;
    let settings = ClientSettings::new(&brokers, &topology.kafka);
    // The run stops once its committed offsets reach the end of what the
    // broker acknowledged on each partition (one the input left empty
    // has nothing to catch up with).
    let mut stop_at = produce(&settings, &topology, &records, &lines, input)?;
    for s in &topology.sources {
        for p in 0..s.partitions {
            stop_at.entry((s.topic.clone(), p)).or_insert(0);
        }
    }
    // A global table is restored before the run starts, and commits
    // nothing: the run does not wait for it, and does not count its
    // records in.
    let global: Vec<&str> = (topology.sources.iter())
        .filter(|s| s.is_global())
        .map(|s| s.topic.as_str())
        .collect();
    stop_at.retain(|(t, _), _| !global.contains(&t.as_str()));
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
            stop: opts.stop,
            stop_at: Some(stop_at.clone()),
            idle_close_at_end: opts.idle_close,
            control: None,
            park: None,
        },
    );
    let ends = high_watermarks(&settings, outputs.iter().map(|t| (t.as_str(), partitions)));
    *finish.lock().expect("not poisoned") = Some(ends.as_ref().cloned().unwrap_or_default());
    let watched = watcher.join().expect("watcher thread");
    let summary = summary?;
    ends?;
    watched?;
    drop(temporary);
    let first = &topology.sources[0].topic;
    let streamed = (records.iter())
        .filter(|r| !global.contains(&r.topic.as_deref().unwrap_or(first)))
        .count();
    check_complete(summary, streamed, &stop_at)
}

/// The records of the input file, each with its 1-based line number
/// (blank lines skipped). A line that is a malformed envelope, or names a
/// topic the pipeline does not read, is an error.
fn read_input(
    input: &Path,
    topology: &Topology,
) -> Result<(Vec<usize>, Vec<SampleRecord>), DevError> {
    let text = std::fs::read_to_string(input).map_err(|e| DevError::Input {
        path: input.to_owned(),
        source: e,
    })?;
    // Each record with its 1-based line number.
    let (lines, records): (Vec<usize>, Vec<SampleRecord>) = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            parse_line(l)
                .map(|r| (i + 1, r))
                .map_err(|message| DevError::Line {
                    path: input.to_owned(),
                    line: i + 1,
                    message,
                })
        })
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .unzip();

    // A record for a topic the pipeline does not read would never be
    // consumed, and the run would wait for it for ever.
    for (line, r) in lines.iter().zip(&records) {
        if let Some(topic) = &r.topic
            && !topology.sources.iter().any(|s| &s.topic == topic)
        {
            let sources: Vec<&str> = topology.sources.iter().map(|s| s.topic.as_str()).collect();
            return Err(DevError::Line {
                path: input.to_owned(),
                line: *line,
                message: format!(
                    "`topic` {topic:?} is not a source topic of this pipeline (its sources read {})",
                    sources.join(", ")
                ),
            });
        }
    }
    Ok((lines, records))
}

/// Creates the source topics, the output topics (sinks and dead letters)
/// and the stores' changelog topics on the embedded broker.
fn create_topics(
    kafka: &EmbeddedKafka,
    topology: &Topology,
    outputs: &[String],
    partitions: i32,
) -> Result<(), KafkaError> {
    for s in &topology.sources {
        kafka.create_topic(&s.topic, s.partitions)?;
    }
    for t in outputs {
        kafka.create_topic(t, partitions)?;
    }
    // The embedded broker has no CreateTopics, and its changelogs start
    // empty: so do the stores, in a directory of this run.
    let by_sub = (topology.sources.iter())
        .map(|s| (s.topic.as_str(), s.partitions))
        .collect::<std::collections::HashMap<_, _>>();
    let per_sub = topology.partition_counts(|t| by_sub.get(t).copied())?;
    for (store, _) in topology.stores() {
        let sub = topology.subtopology_of_store(store).unwrap_or(0);
        kafka.create_topic(
            &crate::state::changelog::topic(&topology.application_id, store),
            per_sub[sub],
        )?;
    }
    Ok(())
}

/// `topology` with its stores in `state_dir`, or in a temporary directory
/// of this run, returned with it (removed when dropped). Sweeps first the
/// temporary directories of earlier runs that were killed.
fn with_state_dir(
    topology: &Topology,
    state_dir: Option<&Path>,
) -> Result<(Arc<Topology>, Option<tempfile::TempDir>), DevError> {
    // The stores start empty, as the embedded broker's changelogs do: in
    // a directory of this run, removed when it ends (whichever way; the
    // next run removes one whose process was killed), or in the one asked
    // for, kept.
    let swept = sweep_state_dirs(&std::env::temp_dir());
    if swept > 0 {
        tracing::info!(
            swept,
            "removed the state directories of earlier `sluice dev` runs that were killed"
        );
    }
    let temporary = match state_dir {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix(&format!("{STATE_PREFIX}{}-", std::process::id()))
                .tempdir()
                .map_err(|e| {
                    DevError::Run(RunError::State(crate::error::StateError::Io {
                        path: std::env::temp_dir(),
                        source: e,
                    }))
                })?,
        ),
    };
    let topology = {
        let mut t = topology.clone();
        t.state.dir = match (state_dir, &temporary) {
            (Some(dir), _) => dir.to_owned(),
            (None, Some(tmp)) => tmp.path().to_owned(),
            (None, None) => unreachable!("a temporary directory without one asked for"),
        };
        Arc::new(t)
    };
    Ok((topology, temporary))
}

/// The summary of a run that processed every input record: the committed
/// offsets reached the end of every partition the input went to, and the
/// counts account for each record once (processed, or dropped for want of
/// a valid timestamp). Anything else is [`DevError::Incomplete`].
fn check_complete(
    summary: RunSummary,
    produced: usize,
    ends: &Offsets,
) -> Result<RunSummary, DevError> {
    let mut unconsumed: Vec<String> = ends
        .iter()
        .filter_map(|((topic, p), &end)| {
            let committed = summary
                .committed
                .get(&(topic.clone(), *p))
                .copied()
                .unwrap_or(0);
            (committed < end).then(|| format!("{topic}/{p}: {committed} of {end}"))
        })
        .collect();
    unconsumed.sort();
    let c = &summary.counts;
    let accounted = c.records_in + c.timestamp_dropped + c.skipped;
    if unconsumed.is_empty() && accounted == produced as u64 {
        return Ok(summary);
    }
    Err(DevError::Incomplete {
        summary: Box::new(summary),
        produced,
        accounted,
        unconsumed,
    })
}

/// Where a record landed (topic, partition, offset), or why it did not.
type Delivery = Result<(String, i32, i64), String>;

/// Delivery reports of the input producer: per record (by its index in
/// the input), where it landed or the error.
#[derive(Default)]
struct Deliveries(Mutex<Vec<(usize, Delivery)>>);

impl rdkafka::ClientContext for Deliveries {}

impl rdkafka::producer::ProducerContext for Deliveries {
    type DeliveryOpaque = Box<usize>;

    fn delivery(&self, result: &rdkafka::producer::DeliveryResult<'_>, index: Box<usize>) {
        let outcome = match result {
            Ok(m) => Ok((m.topic().to_owned(), m.partition(), m.offset())),
            Err((e, _)) => Err(e.to_string()),
        };
        self.0.lock().expect("not poisoned").push((*index, outcome));
    }
}

/// Produces the input records and waits for the broker to acknowledge
/// each of them (the producer is idempotent: its own retries neither
/// repeat nor reorder a record). Returns the end offset the input reached
/// on each partition. A record the broker refuses, or that cannot be
/// queued, fails the run naming its line.
fn produce(
    settings: &ClientSettings,
    topology: &Topology,
    records: &[SampleRecord],
    lines: &[usize],
    input: &Path,
) -> Result<Offsets, DevError> {
    let producer: BaseProducer<Deliveries> = settings
        .producer(&format!("{}-dev-input", topology.application_id))
        .create_with_context(Deliveries::default())
        .map_err(KafkaError::client("creating the input producer"))?;
    let failed = |index: usize, message: String| DevError::Produce {
        path: input.to_owned(),
        line: lines[index],
        message,
    };
    let first = &topology.sources[0].topic;
    for (index, r) in records.iter().enumerate() {
        let topic = r.topic.as_deref().unwrap_or(first);
        let mut headers = OwnedHeaders::new();
        for (k, v) in &r.headers {
            headers = headers.insert(Header {
                key: k,
                value: Some(v),
            });
        }
        let mut rec: BaseRecord<'_, [u8], [u8], Box<usize>> =
            BaseRecord::with_opaque_to(topic, Box::new(index)).headers(headers);
        if let Some(k) = &r.key {
            rec = rec.key(k);
        }
        if let Some(v) = &r.value {
            rec = rec.payload(v);
        }
        if let Some(ts) = r.timestamp {
            rec = rec.timestamp(ts);
        }
        // Only a full queue is worth waiting for; any other refusal (a
        // record over `message.max.bytes`, an unknown topic) is final.
        let waited = std::time::Instant::now();
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    back,
                )) if waited.elapsed() < Duration::from_secs(60) => {
                    rec = back;
                    producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => {
                    let mut message = e.to_string();
                    if e.rdkafka_error_code()
                        == Some(rdkafka::types::RDKafkaErrorCode::MessageSizeTooLarge)
                    {
                        let limit = topology
                            .kafka
                            .iter()
                            .find(|(k, _)| k == "message.max.bytes")
                            .map_or("1000000", |(_, v)| v.as_str());
                        message = format!(
                            "{message}: the record is {} bytes (key, value and headers), over the \
                             {limit} bytes a record may have (`message.max.bytes`)",
                            r.size()
                        );
                    }
                    return Err(failed(index, message));
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer
        .flush(Duration::from_secs(60))
        .map_err(KafkaError::client("producing the sample input"))?;
    let mut reports = std::mem::take(&mut *producer.context().0.lock().expect("not poisoned"));
    reports.sort_by_key(|(index, _)| *index);
    let mut ends = Offsets::new();
    for (index, outcome) in &reports {
        match outcome {
            Ok((topic, partition, offset)) => {
                let end = ends.entry((topic.clone(), *partition)).or_insert(0);
                *end = (*end).max(offset + 1);
            }
            Err(message) => return Err(failed(*index, message.clone())),
        }
    }
    if reports.len() != records.len() {
        let acked: std::collections::HashSet<usize> = reports.iter().map(|(i, _)| *i).collect();
        let missing = (0..records.len()).find(|i| !acked.contains(i)).unwrap_or(0);
        return Err(failed(
            missing,
            "no delivery report within 60 s of the last record".into(),
        ));
    }
    Ok(ends)
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
        // Outputs the embedded broker dropped before they were printed
        // are an error, not a silent jump to the end (and a wait for
        // offsets that never come).
        .set("auto.offset.reset", "error")
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
            Some(Err(
                e @ rdkafka::error::KafkaError::MessageConsumption(
                    rdkafka::types::RDKafkaErrorCode::OffsetOutOfRange
                    | rdkafka::types::RDKafkaErrorCode::AutoOffsetReset,
                ),
            )) => {
                return Err(KafkaError::client(format!(
                    "printing the outputs: the embedded broker dropped outputs before they were printed \
                     (it keeps about the last 5 MB of each partition, some 170,000 short records; {} printed so far). Feed `sluice dev` less input, \
                     or run the pipeline on a real broker with `sluice run`",
                    seen.values().sum::<i64>()
                ))(e));
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
    fn a_tombstone_and_a_null_key_print_apart_from_json_null() {
        let printed = |key: Option<&str>, value: Option<&str>| {
            Printed {
                topic: "t".into(),
                partition: 0,
                offset: 7,
                key: key.map(|k| k.as_bytes().to_vec()),
                value: value.map(|v| v.as_bytes().to_vec()),
                timestamp: Some(5),
                headers: vec![("h".into(), b"v".to_vec())],
            }
            .to_string()
        };
        assert_eq!(
            printed(Some("k"), None),
            "t[0]@7  key=k  ts=5  (tombstone)  headers: h=v"
        );
        assert_eq!(
            printed(None, Some("null")),
            "t[0]@7  key=(null)  ts=5  null  headers: h=v"
        );
    }

    #[test]
    fn only_the_state_directories_of_dead_runs_are_swept() {
        let tmp = tempfile::tempdir().unwrap();
        // A process id that is not running: a child that has exited.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let mine = std::process::id();
        for name in [
            format!("{STATE_PREFIX}{dead}-abc"),
            format!("{STATE_PREFIX}{mine}-def"),
            format!("{STATE_PREFIX}1-ghi"),
            "sluice-dev-state-notapid".to_owned(),
            "other".to_owned(),
        ] {
            std::fs::create_dir_all(tmp.path().join(name).join("app")).unwrap();
        }
        assert_eq!(sweep_state_dirs(tmp.path()), 1);
        let mut left: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "other".to_owned(),
                format!("{STATE_PREFIX}1-ghi"),
                format!("{STATE_PREFIX}{mine}-def"),
                "sluice-dev-state-notapid".to_owned(),
            ]
        );
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
        assert!(
            parse_line(r#"{"value":1,"timestamp":0}"#)
                .unwrap_err()
                .contains("takes 0 as \"now\"")
        );
    }
}
