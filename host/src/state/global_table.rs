//! Global tables: a table source declared `global = true` is copied in
//! full into every instance, and every task of the instance looks it up.
//!
//! Unlike a table, which is split by partition among tasks and kept by
//! each in its own store with a changelog, a global table is read whole,
//! every partition, by a consumer of its own that belongs to no group and
//! commits nothing. Its topic is its changelog: an instance restores the
//! table from the beginning of the topic each time it starts, up to the
//! end offsets it finds then, before any task processes a record, and
//! follows the topic afterwards (the poll loop reads it between batches).
//! Joins look rows up by a key taken from the stream record, so the stream
//! and the table need not be co-partitioned, or even have the same number
//! of partitions.
//!
//! The rows are kept in memory, counted against the pipeline's
//! `[state] memory-mb`. A record without a key, or a Debezium change event
//! that cannot be read, is not applied: under `rejected = "fail"` the run
//! stops naming it; otherwise it is skipped, logged and counted (a global
//! table's reader has no transaction to write a dead letter in).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError as RdKafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::memory::MemoryStore;
use super::memory_budget::MemoryBudget;
use super::store::{KeyValueStore, WriteBatch};
use crate::cdc::{Unreadable, table_change};
use crate::error::{KafkaError, RunError, StateError};
use crate::kafka::client_config::ClientSettings;

/// How long reading a topic's partitions and ends may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(30);

/// The most records [`GlobalReader::follow`] applies in one call, so the
/// poll loop gets back to the stream promptly.
const FOLLOW_BATCH: usize = 5_000;

/// What a global table is read from, as the topology declares it.
#[derive(Debug, Clone)]
pub struct GlobalSpec {
    /// The source's node name.
    pub source: String,
    /// Its topic.
    pub topic: String,
    /// Its store's name.
    pub store: String,
    /// Whether its values are Debezium change events (else plain rows).
    pub debezium: bool,
}

/// One global table of an instance: its rows, shared by every task.
#[derive(Debug)]
pub struct GlobalTable {
    /// The source's node name.
    pub source: String,
    /// Its topic.
    pub topic: String,
    /// Its store's name (what joins name it by).
    pub store: String,
    debezium: bool,
    rows: RwLock<MemoryStore>,
    /// Records not applied (no key, a change event that cannot be read).
    skipped: AtomicU64,
}

impl GlobalTable {
    /// The row of `key`, as it is now.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        self.rows.read().unwrap_or_else(|e| e.into_inner()).get(key)
    }

    /// How many rows it has.
    pub fn len(&self) -> usize {
        let rows = self.rows.read().unwrap_or_else(|e| e.into_inner());
        rows.range(None, None).map(Iterator::count).unwrap_or(0)
    }

    /// True if it has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records it did not apply.
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }
}

/// The global tables of one instance of a pipeline.
#[derive(Debug, Default)]
pub struct GlobalTables {
    tables: Vec<GlobalTable>,
}

impl GlobalTables {
    /// Empty global tables of `specs`, their rows counted against
    /// `budget`.
    pub fn new(specs: Vec<GlobalSpec>, budget: &Arc<MemoryBudget>) -> GlobalTables {
        let tables = (specs.into_iter())
            .map(|spec| GlobalTable {
                rows: RwLock::new(MemoryStore::with_budget(&spec.store, Arc::clone(budget))),
                source: spec.source,
                topic: spec.topic,
                store: spec.store,
                debezium: spec.debezium,
                skipped: AtomicU64::new(0),
            })
            .collect();
        GlobalTables { tables }
    }

    /// The global table kept in `store`.
    pub fn get(&self, store: &str) -> Option<&GlobalTable> {
        self.tables.iter().find(|t| t.store == store)
    }

    /// The tables.
    pub fn iter(&self) -> impl Iterator<Item = &GlobalTable> {
        self.tables.iter()
    }

    /// Applies a record of `topic` to its table: a row sets the key, a
    /// tombstone (or a Debezium deletion) deletes it. A record that cannot
    /// be applied is returned as [`Unreadable`] and changes nothing.
    pub fn apply(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Result<Result<(), Unreadable>, StateError> {
        let Some(table) = self.tables.iter().find(|t| t.topic == topic) else {
            return Ok(Ok(()));
        };
        let (key, row) = match table_change(key, value, table.debezium) {
            Ok(change) => change,
            Err(bad) => return Ok(Err(bad)),
        };
        let mut batch = WriteBatch::default();
        match &row {
            Some(v) => batch.put(key, v),
            None => batch.delete(key),
        }
        let mut rows = table.rows.write().unwrap_or_else(|e| e.into_inner());
        rows.write(&batch)?;
        Ok(Ok(()))
    }

    /// Counts a record of `topic` that was not applied.
    fn skip(&self, topic: &str) {
        if let Some(t) = self.tables.iter().find(|t| t.topic == topic) {
            t.skipped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The global consumer's context: an end of partition, which it asks to
/// be told of, is not an error to log.
struct EndsAreNews;

impl ClientContext for EndsAreNews {
    fn error(&self, error: RdKafkaError, reason: &str) {
        if error.rdkafka_error_code() != Some(RDKafkaErrorCode::PartitionEOF) {
            tracing::error!("global tables' consumer: {error}: {reason}");
        }
    }
}

impl ConsumerContext for EndsAreNews {}

/// The consumer that reads an instance's global tables: restores them at
/// start and follows their topics afterwards.
pub struct GlobalReader {
    tables: Arc<GlobalTables>,
    consumer: BaseConsumer<EndsAreNews>,
    /// `rejected`: `fail` stops the run at a record that cannot be applied.
    fail: bool,
}

impl std::fmt::Debug for GlobalReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlobalReader").finish_non_exhaustive()
    }
}

impl GlobalReader {
    /// Reads every partition of `tables`' topics from the beginning up to
    /// the end offsets they have now, and returns the reader, ready to
    /// follow them, as `<application_id>-global`. A record that cannot be
    /// applied stops the run when `fail` (the `rejected` policy is
    /// `fail`), else it is skipped and counted. Logs progress every two
    /// seconds. `None` when `stop` was set meanwhile.
    pub fn restore(
        tables: Arc<GlobalTables>,
        settings: &ClientSettings,
        (application_id, fail): (&str, bool),
        stop: &std::sync::atomic::AtomicBool,
    ) -> Result<Option<GlobalReader>, RunError> {
        let consumer: BaseConsumer<EndsAreNews> = settings
            .plain()
            .set("group.id", format!("{application_id}-global"))
            .set("client.id", format!("{application_id}-global"))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "true")
            .create_with_context(EndsAreNews)
            .map_err(KafkaError::client("creating the global tables' consumer"))?;
        let mut assignment = TopicPartitionList::new();
        // Per (topic, partition) still restoring: the end to reach.
        let mut ends: HashMap<(String, i32), i64> = HashMap::new();
        for table in tables.iter() {
            let metadata = consumer
                .fetch_metadata(Some(&table.topic), METADATA_TIMEOUT)
                .map_err(KafkaError::client(format!(
                    "reading the partitions of global table topic `{}`",
                    table.topic
                )))?;
            let partitions: Vec<i32> = (metadata.topics().iter())
                .filter(|t| t.name() == table.topic && t.error().is_none())
                .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                .collect();
            if partitions.is_empty() {
                return Err(KafkaError::MissingTopic {
                    topic: table.topic.clone(),
                    brokers: settings.brokers().to_owned(),
                }
                .into());
            }
            for p in partitions {
                let (low, high) = consumer
                    .fetch_watermarks(&table.topic, p, METADATA_TIMEOUT)
                    .map_err(KafkaError::client(format!(
                        "reading the end of {}/{p}",
                        table.topic
                    )))?;
                assignment
                    .add_partition_offset(&table.topic, p, Offset::Beginning)
                    .expect("a valid offset");
                if high > low {
                    ends.insert((table.topic.clone(), p), high);
                }
            }
        }
        consumer.assign(&assignment).map_err(KafkaError::client(
            "assigning the global tables' partitions",
        ))?;
        let reader = GlobalReader {
            tables,
            consumer,
            fail,
        };
        let total: i64 = ends.values().sum();
        tracing::info!(
            tables = reader.tables.tables.len(),
            partitions = assignment.count(),
            records = total,
            "restoring global tables"
        );
        let started = Instant::now();
        let mut last_log = Instant::now();
        let mut read = 0u64;
        while !ends.is_empty() {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                return Ok(None);
            }
            match reader.consumer.poll(Duration::from_millis(200)) {
                None => {}
                Some(Err(RdKafkaError::PartitionEOF(_))) => reader.caught_up(&mut ends),
                Some(Err(e)) => reader.poll_error(e)?,
                Some(Ok(m)) => {
                    read += 1;
                    let (topic, partition, offset) =
                        (m.topic().to_owned(), m.partition(), m.offset());
                    reader.apply(&topic, partition, offset, m.key(), m.payload())?;
                    let key = (topic, partition);
                    if ends.get(&key).is_some_and(|&end| offset + 1 >= end) {
                        ends.remove(&key);
                    }
                }
            }
            if last_log.elapsed() >= Duration::from_secs(2) {
                tracing::info!(read, of = total, "restoring global tables");
                last_log = Instant::now();
            }
        }
        for t in reader.tables.iter() {
            tracing::info!(
                table = %t.source,
                rows = t.len(),
                skipped = t.skipped(),
                seconds = format!("{:.2}", started.elapsed().as_secs_f64()),
                "global table restored"
            );
        }
        Ok(Some(reader))
    }

    /// Drops from `ends` the partitions whose position has reached their
    /// end (under `read_committed` the last offsets may be transaction
    /// markers, which no record reports).
    fn caught_up(&self, ends: &mut HashMap<(String, i32), i64>) {
        let Ok(positions) = self.consumer.position() else {
            return;
        };
        for e in positions.elements() {
            if let Offset::Offset(at) = e.offset() {
                let key = (e.topic().to_owned(), e.partition());
                if ends.get(&key).is_some_and(|&end| at >= end) {
                    ends.remove(&key);
                }
            }
        }
    }

    /// Applies what arrived on the global topics since the last call, at
    /// most [`FOLLOW_BATCH`] records, without waiting.
    pub fn follow(&mut self) -> Result<usize, RunError> {
        let mut n = 0;
        while n < FOLLOW_BATCH {
            match self.consumer.poll(Duration::ZERO) {
                None => break,
                Some(Err(RdKafkaError::PartitionEOF(_))) => {}
                Some(Err(e)) => self.poll_error(e)?,
                Some(Ok(m)) => {
                    let topic = m.topic().to_owned();
                    self.apply(&topic, m.partition(), m.offset(), m.key(), m.payload())?;
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    fn apply(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Result<(), RunError> {
        let Err(bad) = self.tables.apply(topic, key, value)? else {
            return Ok(());
        };
        let source = (self.tables.iter())
            .find(|t| t.topic == topic)
            .map_or(topic, |t| t.source.as_str());
        if self.fail {
            return Err(RunError::RecordFailed {
                step: source.to_owned(),
                outcome: "rejected",
                policy: "rejected",
                topic: topic.to_owned(),
                partition,
                offset,
                reason: format!("{} ({})", bad.message, bad.code),
            });
        }
        self.tables.skip(topic);
        tracing::warn!(
            table = source,
            record = format!("{topic}/{partition}@{offset}"),
            code = bad.code,
            "global table record skipped: {}",
            bad.message
        );
        Ok(())
    }

    /// A consumer error: the end of the run if the topic is gone or may
    /// not be read; otherwise logged (librdkafka retries by itself).
    fn poll_error(&self, e: RdKafkaError) -> Result<(), RunError> {
        let fatal = matches!(
            e.rdkafka_error_code(),
            Some(
                RDKafkaErrorCode::UnknownTopicOrPartition
                    | RDKafkaErrorCode::TopicAuthorizationFailed
            )
        );
        if fatal {
            return Err(KafkaError::client("reading the global tables")(e).into());
        }
        tracing::warn!("reading the global tables: {e}");
        Ok(())
    }
}
