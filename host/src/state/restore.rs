//! Restoring a store from its changelog partition, with progress.
//!
//! Reads from the store's recorded changelog position to the partition's
//! end (its high watermark when the restore starts), and feeds the records
//! to [`changelog::restore`]. Progress goes to the log every two seconds
//! (records and records/s) and, on a terminal, to a progress bar.

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

/// Restores `store` from `topic`/`partition`.
pub fn restore_from_kafka(
    settings: &ClientSettings,
    topic: &str,
    partition: i32,
    store: &mut dyn KeyValueStore,
    chunk: usize,
) -> Result<Restored, RestoreError> {
    let name = store.name().to_owned();
    let consumer = restore_consumer(settings, topic)?;
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
        consumer: &consumer,
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

/// A consumer of `topic` for restores: assigned by hand, it commits
/// nothing.
fn restore_consumer(settings: &ClientSettings, topic: &str) -> Result<BaseConsumer, KafkaError> {
    settings
        .plain()
        .set("enable.auto.commit", "false")
        .set("group.id", format!("{topic}-restore"))
        .set("enable.partition.eof", "false")
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
