//! The producer every task of a process shares, and its delivery tracking.
//!
//! Sends are asynchronous; a commit first flushes the producer and then
//! checks that nothing failed, so offsets are only committed for inputs
//! whose outputs were all acknowledged.
//!
//! Under exactly-once the producer is transactional: everything sent
//! between two commits (outputs, dead letters, changelog records) is one
//! transaction, committed together with the input offsets
//! ([`OutputProducer::commit_transaction`]).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::{KafkaError as RdKafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use super::client_config::ClientSettings;
use crate::error::{KafkaError, RunError};
use crate::record::RecordRef;

/// Counts deliveries and keeps the first failure.
#[derive(Debug, Default)]
pub struct DeliveryTracker {
    no_receipt: Receipt,
    delivered: AtomicU64,
    failed: AtomicU64,
    first_failure: Mutex<Option<String>>,
}

impl ClientContext for DeliveryTracker {}

/// Filled in with the offset a record was written at, once it is
/// acknowledged (`-1` until then).
pub type Receipt = Arc<AtomicI64>;

impl ProducerContext for DeliveryTracker {
    // librdkafka carries one pointer per record: ordinary records share
    // `no_receipt` (an atomic increment, no allocation).
    type DeliveryOpaque = Receipt;

    fn delivery(&self, result: &DeliveryResult<'_>, receipt: Receipt) {
        match result {
            Ok(m) => {
                if !Arc::ptr_eq(&receipt, &self.no_receipt) {
                    receipt.store(m.offset(), Ordering::Release);
                }
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, msg)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = self.first_failure.lock().expect("not poisoned");
                if first.is_none() {
                    *first = Some(format!(
                        "topic `{}` partition {}: {e}",
                        msg.topic(),
                        msg.partition()
                    ));
                }
            }
        }
    }
}

/// The shared producer.
pub struct OutputProducer {
    inner: ThreadedProducer<DeliveryTracker>,
    flush_timeout: Duration,
    /// Transactional (exactly-once), with a transaction open.
    transactional: bool,
    /// A tenant's topic prefixes: a record for any other topic is refused.
    allowed: Option<Vec<String>>,
}

impl std::fmt::Debug for OutputProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputProducer").finish_non_exhaustive()
    }
}

impl OutputProducer {
    /// Creates the producer for an application.
    pub fn new(settings: &ClientSettings, application_id: &str) -> Result<Self, KafkaError> {
        let config = settings.producer(application_id);
        let timeout_ms: u64 = config
            .get("message.timeout.ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(120_000);
        let inner = config
            .create_with_context(DeliveryTracker::default())
            .map_err(KafkaError::client("creating the producer"))?;
        Ok(OutputProducer {
            inner,
            flush_timeout: Duration::from_millis(timeout_ms) + Duration::from_secs(10),
            transactional: false,
            allowed: None,
        })
    }

    /// Creates a transactional producer and opens its first transaction.
    /// `transactional_id` must be the same across restarts of one instance
    /// (a restart then aborts what the dead process left open at once),
    /// and differ between instances.
    pub fn transactional(
        settings: &ClientSettings,
        application_id: &str,
        transactional_id: &str,
    ) -> Result<Self, KafkaError> {
        let mut config = settings.producer(application_id);
        if config.get("transactional.id").is_none() {
            config.set("transactional.id", transactional_id);
        }
        if config.get("transaction.timeout.ms").is_none() {
            // As Kafka Streams: a dead instance's open transaction blocks
            // `read_committed` readers for at most this long.
            config.set("transaction.timeout.ms", "10000");
        }
        // librdkafka: a record may not outlive its transaction.
        let ms = |key: &str| config.get(key).and_then(|v| v.parse::<u64>().ok());
        if let (Some(message), Some(transaction)) =
            (ms("message.timeout.ms"), ms("transaction.timeout.ms"))
            && message > transaction
        {
            config.set("message.timeout.ms", transaction.to_string());
        }
        let inner: ThreadedProducer<DeliveryTracker> = config
            .create_with_context(DeliveryTracker::default())
            .map_err(KafkaError::client("creating the transactional producer"))?;
        let timeout = Duration::from_secs(60);
        inner
            .init_transactions(timeout)
            .map_err(KafkaError::client("initializing transactions"))?;
        inner
            .begin_transaction()
            .map_err(KafkaError::client("beginning a transaction"))?;
        Ok(OutputProducer {
            inner,
            flush_timeout: timeout,
            transactional: true,
            allowed: None,
        })
    }

    /// Refuses, from now on, every record for a topic that starts with none
    /// of `prefixes` (a tenant's).
    pub fn restrict_to(mut self, prefixes: Vec<String>) -> Self {
        self.allowed = Some(prefixes);
        self
    }

    /// Whether it is transactional.
    pub fn is_transactional(&self) -> bool {
        self.transactional
    }

    /// Commits the open transaction with the consumer's `offsets` (with
    /// their metadata), then opens the next one. On failure the
    /// transaction is aborted, and the error returned.
    pub fn commit_transaction(
        &self,
        offsets: &TopicPartitionList,
        group: &ConsumerGroupMetadata,
    ) -> Result<(), KafkaError> {
        let timeout = self.flush_timeout;
        let result = (|| {
            if offsets.count() > 0 {
                self.inner
                    .send_offsets_to_transaction(offsets, group, timeout)
                    .map_err(KafkaError::client("adding offsets to the transaction"))?;
            }
            self.inner
                .commit_transaction(timeout)
                .map_err(KafkaError::client("committing the transaction"))
        })();
        if result.is_err() {
            self.abort_transaction()?;
            return result;
        }
        self.inner
            .begin_transaction()
            .map_err(KafkaError::client("beginning a transaction"))
    }

    /// Aborts the open transaction (its records are never seen by
    /// `read_committed` readers) and opens the next one.
    pub fn abort_transaction(&self) -> Result<(), KafkaError> {
        self.inner
            .abort_transaction(self.flush_timeout)
            .map_err(KafkaError::client("aborting the transaction"))?;
        // Failures of the aborted records are not the next transaction's.
        *self
            .inner
            .context()
            .first_failure
            .lock()
            .expect("not poisoned") = None;
        self.inner
            .begin_transaction()
            .map_err(KafkaError::client("beginning a transaction"))
    }

    /// Queues one record for `topic`; waits while librdkafka's queue is full.
    pub fn send(&self, topic: &str, record: RecordRef<'_>) -> Result<(), RunError> {
        let headers_in = record.headers.iter();
        let mut base: BaseRecord<'_, [u8], [u8], Receipt> =
            BaseRecord::with_opaque_to(topic, self.no_receipt());
        if headers_in.len() > 0 {
            let mut headers = OwnedHeaders::new_with_capacity(headers_in.len());
            for (key, value) in headers_in {
                headers = headers.insert(Header { key, value });
            }
            base = base.headers(headers);
        }
        if let Some(k) = record.key {
            base = base.key(k);
        }
        if let Some(v) = record.value {
            base = base.payload(v);
        }
        if let Some(ts) = record.timestamp {
            base = base.timestamp(ts);
        }
        self.enqueue(topic, base)
    }

    /// Queues one record for partition `partition` of `topic` (changelog
    /// records go to their task's partition, whatever their key).
    pub fn send_to(
        &self,
        topic: &str,
        partition: i32,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), RunError> {
        let mut base = BaseRecord::with_opaque_to(topic, self.no_receipt())
            .partition(partition)
            .key(key);
        if let Some(v) = value {
            base = base.payload(v);
        }
        self.enqueue(topic, base)
    }

    /// As [`OutputProducer::send_to`]; the receipt gets the record's offset
    /// once it is acknowledged (after a successful [`OutputProducer::flush`]).
    pub fn send_with_receipt(
        &self,
        topic: &str,
        partition: i32,
        key: &[u8],
        value: &[u8],
    ) -> Result<Receipt, RunError> {
        let receipt = Arc::new(AtomicI64::new(-1));
        let base = BaseRecord::with_opaque_to(topic, Arc::clone(&receipt))
            .partition(partition)
            .key(key)
            .payload(value);
        self.enqueue(topic, base)?;
        Ok(receipt)
    }

    fn enqueue(
        &self,
        topic: &str,
        mut base: BaseRecord<'_, [u8], [u8], Receipt>,
    ) -> Result<(), RunError> {
        if let Some(allowed) = &self.allowed
            && !allowed.iter().any(|p| topic.starts_with(p.as_str()))
        {
            return Err(RunError::Delivery(format!(
                "topic `{topic}` is outside the tenant's topics ({})",
                allowed.join(", ")
            )));
        }
        loop {
            match self.inner.send(base) {
                Ok(()) => return Ok(()),
                Err((RdKafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    base = back;
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err((e, _)) => return Err(RunError::Delivery(format!("topic `{topic}`: {e}"))),
            }
        }
    }

    /// Waits until every queued record is acknowledged, then reports the
    /// first delivery failure since the producer started, if any.
    pub fn flush(&self) -> Result<(), RunError> {
        self.inner
            .flush(self.flush_timeout)
            .map_err(|e| RunError::Delivery(format!("flush did not complete: {e}")))?;
        let tracker = self.inner.context();
        if let Some(failure) = tracker.first_failure.lock().expect("not poisoned").clone() {
            return Err(RunError::Delivery(format!(
                "{} record(s) failed, first: {failure}",
                tracker.failed.load(Ordering::Relaxed)
            )));
        }
        Ok(())
    }

    fn no_receipt(&self) -> Receipt {
        Arc::clone(&self.inner.context().no_receipt)
    }

    /// Records acknowledged so far.
    pub fn delivered(&self) -> u64 {
        self.inner.context().delivered.load(Ordering::Relaxed)
    }
}
