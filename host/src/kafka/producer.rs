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
//!
//! Deadlines. Every call that waits on the broker is bounded:
//! - `flush`: rdkafka's own deadline loop, `message.timeout.ms` + 5 s
//!   (records fail by `message.timeout.ms` anyway);
//! - sending while librdkafka's queue is full: the same bound, then an
//!   error;
//! - transactional calls (`init_transactions`, `send_offsets_to_transaction`,
//!   `commit_transaction`, `abort_transaction`): librdkafka gets a timeout,
//!   but some of its waits have none (`send_offsets_to_transaction` waits
//!   with an infinite timeout for a coordinator request whose own timeout
//!   librdkafka never checks, so a broker frozen at the wrong moment hangs
//!   it for good). So each runs on a helper thread, and the caller waits
//!   at most [`OutputProducer`]'s transaction deadline (twice librdkafka's
//!   timeout, plus 5 s). A call that overruns it leaves the producer
//!   abandoned ([`TransactionError::TimedOut`]): the helper thread and the
//!   librdkafka instance are left to finish (or not) on their own, and the
//!   run goes on with a new producer, whose `init_transactions` fences the
//!   old one;
//! - `begin_transaction` does no I/O.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::{KafkaError as RdKafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use super::client_config::ClientSettings;
use super::topic_limits::{Refusal, SinkLimits};
use crate::error::{KafkaError, RunError, TransactionError};
use crate::record::RecordRef;

/// Counts deliveries and keeps the first failure.
#[derive(Debug, Default)]
pub struct DeliveryTracker {
    no_receipt: Receipt,
    delivered: AtomicU64,
    failed: AtomicU64,
    /// The first failure, and its error code.
    first_failure: Mutex<Option<(String, Option<RDKafkaErrorCode>)>>,
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
                    *first = Some((
                        format!("topic `{}` partition {}: {e}", msg.topic(), msg.partition()),
                        e.rdkafka_error_code(),
                    ));
                }
            }
        }
    }
}

/// Whether a failed delivery concerns the record itself (the broker or
/// librdkafka would refuse it again), rather than the broker's state or
/// the producer's: under exactly-once, only the latter are recovered from
/// by redoing the transaction.
fn refuses_the_record(code: Option<RDKafkaErrorCode>) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        code,
        Some(
            C::MessageSizeTooLarge
                | C::InvalidMessageSize
                | C::MessageBatchTooLarge
                | C::InvalidTimestamp
                | C::InvalidRecord
                | C::InvalidMessage
                | C::BadMessage
                | C::InvalidTopic
                | C::UnknownTopic
                | C::UnknownPartition
                | C::TopicAuthorizationFailed
                | C::ClusterAuthorizationFailed
                | C::TransactionalIdAuthorizationFailed
                | C::PolicyViolation
                | C::UnsupportedForMessageFormat
                | C::UnsupportedCompressionType
                | C::InvalidRequiredAcks
                | C::InvalidArgument
        )
    )
}

/// librdkafka's `message.max.bytes`, when the configuration sets it.
fn client_max(config: &rdkafka::ClientConfig) -> Option<u64> {
    config.get("message.max.bytes").and_then(|v| v.parse().ok())
}

/// How a transactional call failed.
enum TxnFailure {
    /// The transaction must be aborted; the producer can then go on.
    Abortable {
        what: String,
        source: rdkafka::error::KafkaError,
    },
    /// The producer is abandoned.
    Final(TransactionError),
}

impl From<TxnFailure> for TransactionError {
    fn from(f: TxnFailure) -> Self {
        match f {
            TxnFailure::Final(e) => e,
            TxnFailure::Abortable { what, source } => TransactionError::Fatal { what, source },
        }
    }
}

impl From<TxnFailure> for RunError {
    fn from(f: TxnFailure) -> Self {
        TransactionError::from(f).into()
    }
}

/// Transactional calls under way in librdkafka, process-wide: after a
/// deadline passed, the calls left blocked, each holding its abandoned
/// producer.
static RUNNING_CALLS: AtomicUsize = AtomicUsize::new(0);

/// The shared producer.
pub struct OutputProducer {
    inner: Arc<ThreadedProducer<DeliveryTracker>>,
    flush_timeout: Duration,
    /// Transactional (exactly-once), with a transaction open.
    transactional: bool,
    /// The timeout librdkafka gets for a transactional call.
    txn_timeout: Duration,
    /// How long a transactional call may take before the producer is
    /// abandoned (more than librdkafka's timeout, which it mostly keeps).
    txn_deadline: Duration,
    /// Set once a transactional call overran its deadline or failed
    /// fatally: the producer is not used again.
    abandoned: AtomicBool,
    /// A tenant's topic prefixes: a record for any other topic is refused.
    allowed: Option<Vec<String>>,
    /// What the producer and the topics it writes to accept.
    limits: Arc<SinkLimits>,
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
        let limits = Arc::new(SinkLimits::new(client_max(&config)));
        let inner = config
            .create_with_context(DeliveryTracker::default())
            .map_err(KafkaError::client("creating the producer"))?;
        Ok(OutputProducer {
            inner: Arc::new(inner),
            flush_timeout: Duration::from_millis(timeout_ms) + Duration::from_secs(10),
            transactional: false,
            txn_timeout: Duration::ZERO,
            txn_deadline: Duration::ZERO,
            abandoned: AtomicBool::new(false),
            allowed: None,
            limits,
        })
    }

    /// Creates a transactional producer and opens its first transaction.
    /// `transactional_id` must be the same across restarts of one instance
    /// (a restart then aborts what the dead process left open at once),
    /// and differ between instances. `init_transactions` is bounded by
    /// twice `transaction.timeout.ms` (at least 30 s): the coordinator may
    /// first have to abort what an earlier producer left open.
    pub fn transactional(
        settings: &ClientSettings,
        application_id: &str,
        transactional_id: &str,
    ) -> Result<Self, RunError> {
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
        let ms = |key: &str| config.get(key).and_then(|v| v.parse::<u64>().ok());
        let message_timeout = Duration::from_millis(ms("message.timeout.ms").unwrap_or(120_000));
        let txn_timeout = Duration::from_millis(ms("transaction.timeout.ms").unwrap_or(10_000));
        let limits = Arc::new(SinkLimits::new(client_max(&config)));
        let inner: ThreadedProducer<DeliveryTracker> = config
            .create_with_context(DeliveryTracker::default())
            .map_err(KafkaError::client("creating the transactional producer"))?;
        let producer = OutputProducer {
            inner: Arc::new(inner),
            flush_timeout: message_timeout + Duration::from_secs(5),
            transactional: true,
            txn_timeout,
            txn_deadline: txn_timeout * 2 + Duration::from_secs(5),
            abandoned: AtomicBool::new(false),
            allowed: None,
            limits,
        };
        let init = (txn_timeout * 2).max(Duration::from_secs(30));
        producer.txn_call(
            "initializing transactions",
            init + Duration::from_secs(5),
            move |p| p.init_transactions(init),
        )?;
        producer.begin()?;
        Ok(producer)
    }

    /// Refuses, from now on, every record for a topic that starts with none
    /// of `prefixes` (a tenant's).
    pub fn restrict_to(mut self, prefixes: Vec<String>) -> Self {
        self.allowed = Some(prefixes);
        self
    }

    /// What the producer and its topics accept; topics' limits are
    /// learned ([`SinkLimits::learn`]) once read from the broker.
    pub fn limits(&self) -> Arc<SinkLimits> {
        Arc::clone(&self.limits)
    }

    /// Why `topic` (or librdkafka) would refuse `record`, if it would: a
    /// refusal that concerns the record alone, to meet the pipeline's
    /// `refused` policy rather than fail the whole produce request.
    pub fn refusal(&self, topic: &str, record: RecordRef<'_>) -> Option<Refusal> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        self.limits.check(topic, record, now)
    }

    /// Whether it is transactional.
    pub fn is_transactional(&self) -> bool {
        self.transactional
    }

    /// Runs the transactional call `call` on a helper thread, and waits
    /// at most `deadline` for it (see the module's notes). Its failure is
    /// classified; only an abortable one leaves the producer usable.
    fn txn_call(
        &self,
        what: &str,
        deadline: Duration,
        call: impl FnOnce(&ThreadedProducer<DeliveryTracker>) -> rdkafka::error::KafkaResult<()>
        + Send
        + 'static,
    ) -> Result<(), TxnFailure> {
        if self.abandoned.load(Ordering::Acquire) {
            return Err(TxnFailure::Final(TransactionError::Abandoned {
                what: what.to_owned(),
            }));
        }
        let inner = Arc::clone(&self.inner);
        let (tx, rx) = crossbeam_channel::bounded(1);
        RUNNING_CALLS.fetch_add(1, Ordering::Relaxed);
        let spawned = std::thread::Builder::new()
            .name("sluice-txn".into())
            .spawn(move || {
                let result = call(&inner);
                RUNNING_CALLS.fetch_sub(1, Ordering::Relaxed);
                // Past its deadline, the caller has gone.
                let _ = tx.send(result);
            });
        if let Err(e) = spawned {
            RUNNING_CALLS.fetch_sub(1, Ordering::Relaxed);
            self.abandon();
            return Err(TxnFailure::Final(TransactionError::Fatal {
                what: format!("{what} (starting its thread: {e})"),
                source: rdkafka::error::KafkaError::Canceled,
            }));
        }
        match rx.recv_timeout(deadline) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => {
                let fatal = match &source {
                    rdkafka::error::KafkaError::Transaction(e) => e.is_fatal(),
                    _ => false,
                };
                let abortable = match &source {
                    rdkafka::error::KafkaError::Transaction(e) => e.txn_requires_abort(),
                    // rdkafka's flush before the commit: nothing sent yet.
                    rdkafka::error::KafkaError::Flush(_) => true,
                    _ => false,
                };
                if fatal {
                    self.abandon();
                    Err(TxnFailure::Final(TransactionError::Fatal {
                        what: what.to_owned(),
                        source,
                    }))
                } else if abortable {
                    Err(TxnFailure::Abortable {
                        what: what.to_owned(),
                        source,
                    })
                } else {
                    // Retriable, and resumable only by calling the same
                    // API again (an abort now would conflict with it): a
                    // new producer is simpler and as safe.
                    self.abandon();
                    Err(TxnFailure::Final(TransactionError::Fatal {
                        what: what.to_owned(),
                        source,
                    }))
                }
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                self.abandon();
                let blocked = RUNNING_CALLS.load(Ordering::Relaxed);
                tracing::warn!(
                    call = what,
                    deadline_s = deadline.as_secs(),
                    blocked,
                    "a transactional call overran its deadline: the producer is abandoned (its call is left to return on its own)"
                );
                Err(TxnFailure::Final(TransactionError::TimedOut {
                    what: what.to_owned(),
                    after: deadline,
                }))
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                self.abandon();
                Err(TxnFailure::Final(TransactionError::Abandoned {
                    what: format!("{what} (its thread panicked)"),
                }))
            }
        }
    }

    fn abandon(&self) {
        self.abandoned.store(true, Ordering::Release);
    }

    /// Whether an earlier failure left the producer unusable.
    pub fn is_abandoned(&self) -> bool {
        self.abandoned.load(Ordering::Acquire)
    }

    /// Opens the next transaction. librdkafka does no I/O for it (its wait
    /// is for its own main thread only).
    fn begin(&self) -> Result<(), TransactionError> {
        self.inner.begin_transaction().map_err(|source| {
            self.abandon();
            TransactionError::Fatal {
                what: "beginning a transaction".into(),
                source,
            }
        })
    }

    /// Commits the open transaction with the consumer's `offsets` (with
    /// their metadata), then opens the next one. On failure the
    /// transaction is aborted where librdkafka allows it
    /// ([`TransactionError::Aborted`]: the producer goes on); otherwise
    /// the producer is abandoned, and the broker aborts the transaction
    /// (at `transaction.timeout.ms`, or when a new producer with the same
    /// `transactional.id` starts).
    pub fn commit_transaction(
        &self,
        offsets: TopicPartitionList,
        group: ConsumerGroupMetadata,
    ) -> Result<(), TransactionError> {
        let timeout = self.txn_timeout;
        let result = if offsets.count() > 0 {
            self.txn_call(
                "adding the offsets to the transaction",
                self.txn_deadline,
                move |p| p.send_offsets_to_transaction(&offsets, &group, timeout),
            )
        } else {
            Ok(())
        }
        .and_then(|()| {
            self.txn_call("committing the transaction", self.txn_deadline, move |p| {
                p.commit_transaction(timeout)
            })
        });
        match result {
            Ok(()) => self.begin(),
            Err(TxnFailure::Final(e)) => Err(e),
            Err(TxnFailure::Abortable { what, source }) => match self.abort_transaction() {
                Ok(()) => Err(TransactionError::Aborted { what, source }),
                Err(abort) => Err(TransactionError::NotAborted {
                    what,
                    source,
                    abort: Box::new(abort),
                }),
            },
        }
    }

    /// Aborts the open transaction (its records are never seen by
    /// `read_committed` readers) and opens the next one.
    pub fn abort_transaction(&self) -> Result<(), TransactionError> {
        let timeout = self.txn_timeout;
        match self.txn_call("aborting the transaction", self.txn_deadline, move |p| {
            p.abort_transaction(timeout)
        }) {
            Ok(()) => {}
            Err(TxnFailure::Final(e)) => return Err(e),
            Err(TxnFailure::Abortable { what, source }) => {
                self.abandon();
                return Err(TransactionError::Fatal { what, source });
            }
        }
        // Failures of the aborted records are not the next transaction's.
        *self
            .inner
            .context()
            .first_failure
            .lock()
            .expect("not poisoned") = None;
        self.begin()
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
        // A full queue drains as records are acknowledged or time out
        // (`message.timeout.ms`): past that, something else is wrong.
        let mut full_since: Option<Instant> = None;
        loop {
            if self.is_abandoned() {
                return Err(TransactionError::Abandoned {
                    what: format!("sending to topic `{topic}`"),
                }
                .into());
            }
            match self.inner.send(base) {
                Ok(()) => return Ok(()),
                Err((RdKafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    base = back;
                    let since = *full_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > self.flush_timeout {
                        return Err(self.undelivered(
                            1,
                            format!(
                                "topic `{topic}`: librdkafka's queue stayed full for {} s",
                                self.flush_timeout.as_secs()
                            ),
                            None,
                            str::to_owned,
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err((e, _)) => {
                    return Err(self.undelivered(
                        1,
                        format!("topic `{topic}`: {e}"),
                        e.rdkafka_error_code(),
                        str::to_owned,
                    ));
                }
            }
        }
    }

    /// A delivery failure (`message` as at-least-once reports it): under
    /// exactly-once, one that does not concern the record itself fails
    /// the transaction instead (which is then redone).
    fn undelivered(
        &self,
        failed: u64,
        first: String,
        code: Option<RDKafkaErrorCode>,
        message: impl FnOnce(&str) -> String,
    ) -> RunError {
        if self.transactional && !refuses_the_record(code) {
            TransactionError::Undelivered { failed, first }.into()
        } else {
            RunError::Delivery(message(&first))
        }
    }

    /// Waits until every queued record is acknowledged, then reports the
    /// first delivery failure since the producer started, if any.
    /// Bounded: `message.timeout.ms` + 5 s.
    ///
    /// Not rdkafka's `flush` with that timeout: between its checks it
    /// polls the producer's queue for up to 100 ms, while the
    /// `ThreadedProducer`'s own thread takes the acknowledgements it
    /// waits for, so any flush with a record in flight took about 100 ms
    /// (a commit under at-least-once has several). A flush without a
    /// timeout sends what lingers at once; then the records in flight
    /// (and the acknowledgements not yet handled) are counted down.
    pub fn flush(&self) -> Result<(), RunError> {
        let deadline = Instant::now() + self.flush_timeout;
        let mut pause = Duration::from_micros(20);
        while self.inner.flush(Duration::ZERO).is_err() || self.inner.in_flight_count() > 0 {
            if Instant::now() >= deadline {
                return Err(self.undelivered(
                    self.inner.in_flight_count().max(1) as u64,
                    format!(
                        "flush did not complete within {} s",
                        self.flush_timeout.as_secs()
                    ),
                    None,
                    str::to_owned,
                ));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(1));
        }
        let tracker = self.inner.context();
        let first = tracker.first_failure.lock().expect("not poisoned").clone();
        if let Some((failure, code)) = first {
            let failed = tracker.failed.load(Ordering::Relaxed);
            return Err(self.undelivered(failed, failure, code, |first| {
                format!("{failed} record(s) failed, first: {first}")
            }));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_refusals_of_the_record_itself_are_not_redone_under_exactly_once() {
        use RDKafkaErrorCode as C;
        for code in [
            C::MessageSizeTooLarge,
            C::InvalidTimestamp,
            C::InvalidRecord,
        ] {
            assert!(refuses_the_record(Some(code)), "{code:?}");
        }
        for code in [
            C::MessageTimedOut,
            C::State,
            C::Fatal,
            C::ProducerFenced,
            C::NotEnoughReplicas,
            C::PurgeQueue,
        ] {
            assert!(!refuses_the_record(Some(code)), "{code:?}");
        }
        assert!(!refuses_the_record(None));
    }

    #[test]
    fn a_transactional_call_past_its_deadline_abandons_the_producer_at_once() {
        // No broker: nothing here waits for one.
        let settings = ClientSettings::new("127.0.0.1:9", &[]);
        let mut producer = OutputProducer::new(&settings, "app").unwrap();
        producer.transactional = true;
        let started = Instant::now();
        let stuck = producer.txn_call(
            "a call librdkafka never returns from",
            Duration::from_millis(200),
            |_| {
                std::thread::sleep(Duration::from_secs(3));
                Ok(())
            },
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "waited {:?}",
            started.elapsed()
        );
        let Err(TxnFailure::Final(e)) = stuck else {
            panic!("not a final failure");
        };
        assert!(matches!(e, TransactionError::TimedOut { .. }), "{e}");
        assert!(e.to_string().contains("did not finish within 0 s"), "{e}");
        assert!(producer.is_abandoned());
        // Later calls and sends fail at once, for a new producer to go on.
        let again = producer.abort_transaction().unwrap_err();
        assert!(
            matches!(again, TransactionError::Abandoned { .. }),
            "{again}"
        );
        let send = producer.send_to("out", 0, b"k", Some(b"v")).unwrap_err();
        assert!(
            matches!(
                send,
                RunError::Transaction(TransactionError::Abandoned { .. })
            ),
            "{send}"
        );
    }
}
