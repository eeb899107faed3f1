//! Restoring a store from its changelog partition, with progress.
//!
//! Reads from the store's recorded changelog position to the partition's
//! end (its high watermark when the restore starts), and feeds the records
//! to [`changelog::restore`]. Progress goes to the log every two seconds
//! (records and records/s) and, on a terminal, to a progress bar.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::changelog::{self, ChangelogRecord, Restored};
use super::store::KeyValueStore;
use crate::error::{KafkaError, RestoreError, StateError};
use crate::kafka::client_config::ClientSettings;

/// How long a restore waits for the next changelog record before it fails.
const RESTORE_STALL: Duration = Duration::from_secs(60);

/// The default number of changelog records a restore writes at a time.
pub const RESTORE_CHUNK: usize = 10_000;

/// Restores `store` from `topic`/`partition`, with a consumer of its own.
pub fn restore_from_kafka(
    settings: &ClientSettings,
    topic: &str,
    partition: i32,
    store: &mut dyn KeyValueStore,
    chunk: usize,
) -> Result<Restored, RestoreError> {
    RestoreClients::default().restore(settings, topic, partition, store, chunk)
}

/// Consumers for restores, kept between them: a restore takes an idle one
/// (or makes one) and gives it back. So the stores of a pipeline's tasks
/// pay for one client's start (its connection and metadata, about 0.1 s),
/// not one each; restores on several threads at once each get their own.
#[derive(Default)]
pub struct RestoreClients {
    idle: Mutex<Vec<BaseConsumer>>,
}

impl std::fmt::Debug for RestoreClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let idle = self.idle.lock().map_or(0, |i| i.len());
        f.debug_struct("RestoreClients")
            .field("idle", &idle)
            .finish()
    }
}

impl RestoreClients {
    /// Restores `store` from `topic`/`partition` with one of the kept
    /// consumers (made with `settings` when none is idle).
    pub fn restore(
        &self,
        settings: &ClientSettings,
        topic: &str,
        partition: i32,
        store: &mut dyn KeyValueStore,
        chunk: usize,
    ) -> Result<Restored, RestoreError> {
        let kept = self.idle.lock().expect("not poisoned").pop();
        let consumer = match kept {
            Some(c) => c,
            None => restore_consumer(settings, topic)?,
        };
        let restored = restore_with(&consumer, settings, topic, partition, store, chunk);
        // Assigned nothing, it fetches nothing while it waits.
        if consumer.unassign().is_ok() {
            self.idle.lock().expect("not poisoned").push(consumer);
        }
        restored
    }
}

/// Restores `store` from `topic`/`partition` with `consumer`.
fn restore_with(
    consumer: &BaseConsumer,
    settings: &ClientSettings,
    topic: &str,
    partition: i32,
    store: &mut dyn KeyValueStore,
    chunk: usize,
) -> Result<Restored, RestoreError> {
    let name = store.name().to_owned();
    let (low, high) = consumer
        .fetch_watermarks(topic, partition, Duration::from_secs(30))
        .map_err(KafkaError::client(format!(
            "reading the extent of {topic}/{partition}"
        )))?;
    let position = changelog::position(store)?;
    if position > high {
        return Err(RestoreError::AheadOfChangelog {
            store: name,
            topic: topic.to_owned(),
            partition,
            position,
            end: high,
        });
    }
    let start = position.max(low);
    if start >= high {
        return Ok(changelog::restore(
            store,
            std::iter::empty(),
            chunk,
            |_| {},
        )?);
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(start))
        .expect("valid offset");
    consumer
        .assign(&tpl)
        .map_err(KafkaError::client(format!("assigning {topic}/{partition}")))?;

    let total = (high - start) as u64;
    let bar = progress_bar(total, &name);
    tracing::info!(store = %name, %topic, partition, from = start, to = high, "restoring");
    let started = Instant::now();
    let mut last_log = Instant::now();
    let mut records = ChangelogReader {
        consumer,
        settings,
        topic,
        partition,
        high,
        next: start,
        last_record: Instant::now(),
        empty_polls: 0,
        failure: None,
    };
    let mut read_last = 0;
    let restored = changelog::restore(store, &mut records, chunk, |n| {
        read_last = n;
        bar.set_position(n);
        if last_log.elapsed() >= Duration::from_secs(2) {
            let rate = n as f64 / started.elapsed().as_secs_f64();
            tracing::info!(store = %name, records = n, of = total, rate = format!("{rate:.0}/s"), "restoring");
            last_log = Instant::now();
        }
    })?;
    bar.finish_and_clear();
    if let Some(e) = records.failure {
        return Err(e.into());
    }
    let secs = started.elapsed().as_secs_f64();
    tracing::info!(
        store = %name,
        records = read_last,
        seconds = format!("{secs:.2}"),
        rate = format!("{:.0}/s", read_last as f64 / secs.max(1e-9)),
        "restored"
    );
    Ok(restored)
}

/// A consumer for restores (first of `topic`): assigned by hand, it
/// commits nothing.
fn restore_consumer(settings: &ClientSettings, topic: &str) -> Result<BaseConsumer, KafkaError> {
    settings
        .plain()
        .set("enable.auto.commit", "false")
        .set("group.id", format!("{topic}-restore"))
        .set("enable.partition.eof", "false")
        // A restore reads to a known end: a fetch that finds nothing
        // should not wait there (librdkafka sends one fetch at a time to
        // a broker, so a kept consumer's next restore waited for it).
        .set("fetch.wait.max.ms", "10")
        .create()
        .map_err(KafkaError::client("creating the restore consumer"))
}

/// The progress bar of a restore of `total` records into store `name`.
fn progress_bar(total: u64, name: &str) -> ProgressBar {
    let bar = ProgressBar::new(total).with_message(format!("restoring {name}"));
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} records, {per_sec}, eta {eta}")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar
}

/// The changelog records of one partition, from `next` up to `high` (the
/// high watermark when the restore started). It ends early on a read
/// error, or when no record came for [`RESTORE_STALL`]; `failure` then
/// says why.
struct ChangelogReader<'a> {
    consumer: &'a BaseConsumer,
    settings: &'a ClientSettings,
    topic: &'a str,
    partition: i32,
    high: i64,
    next: i64,
    /// A broker that stops answering mid-restore is an error after
    /// RESTORE_STALL without a record, not an endless wait.
    last_record: Instant,
    empty_polls: u32,
    failure: Option<KafkaError>,
}

impl Iterator for ChangelogReader<'_> {
    type Item = Result<ChangelogRecord, StateError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (topic, partition, high) = (self.topic, self.partition, self.high);
        loop {
            if self.next >= high {
                return None;
            }
            // Short polls: under exactly-once a changelog ends in a
            // transaction marker, which no poll returns, so a restore
            // with nothing left to read ends by the position check below
            // (a 500 ms poll cost half a second per store and task).
            match self.consumer.poll(Duration::from_millis(50)) {
                // A kept consumer's earlier assignment: not this one's.
                Some(Ok(m)) if m.topic() != topic || m.partition() != partition => {}
                Some(Ok(m)) if m.offset() < high => {
                    self.next = m.offset() + 1;
                    self.last_record = Instant::now();
                    return Some(Ok(ChangelogRecord {
                        offset: m.offset(),
                        key: m.key().map(<[u8]>::to_vec).unwrap_or_default(),
                        value: m.payload().map(<[u8]>::to_vec),
                    }));
                }
                Some(Ok(_)) => return None,
                Some(Err(e)) => {
                    self.failure = Some(KafkaError::Client {
                        context: format!("reading {topic}/{partition}"),
                        source: e,
                    });
                    return None;
                }
                None => {
                    if self
                        .consumer
                        .position()
                        .ok()
                        .and_then(|p| p.find_partition(topic, partition).map(|e| e.offset()))
                        .is_some_and(|o| matches!(o, Offset::Offset(o) if o >= high))
                    {
                        return None;
                    }
                    self.empty_polls += 1;
                    if self.last_record.elapsed() >= RESTORE_STALL {
                        self.failure = Some(KafkaError::Unreachable {
                            brokers: self.settings.brokers().to_owned(),
                            attempts: self.empty_polls,
                            waited_secs: self.last_record.elapsed().as_secs(),
                            last: format!(
                                "no record of {topic}/{partition} while restoring it, at offset {} of {high}",
                                self.next
                            ),
                        });
                        return None;
                    }
                }
            }
        }
    }
}
