//! Which librdkafka properties only a consumer, or only a producer, reads.
//!
//! A pipeline's `[kafka]` table goes to every client Sluice makes, and
//! librdkafka warns about each property meant for the other kind of
//! client ("… is a consumer property and will be ignored by this producer
//! instance"). Each client is given only the properties of its kind, and
//! those of both.
//!
//! Transcribed from the `C/P` column of librdkafka 2.12.1's
//! `CONFIGURATION.md` (the version `rdkafka-sys 4.10` bundles), global and
//! topic properties alike, aliases included. A property in neither list
//! (`*`, or unknown to this list) goes to every client.

/// The kind of librdkafka handle a client is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handle {
    /// A consumer, in a group or not (metadata and reads).
    Consumer,
    /// A producer, or an admin client (librdkafka makes those on a
    /// producer handle).
    Producer,
}

/// Properties only a consumer reads.
const CONSUMER_ONLY: &[&str] = &[
    "auto.commit.enable",
    "auto.commit.interval.ms",
    "auto.offset.reset",
    "check.crcs",
    "consume.callback.max.messages",
    "consume_cb",
    "coordinator.query.interval.ms",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "enable.partition.eof",
    "fetch.error.backoff.ms",
    "fetch.max.bytes",
    "fetch.message.max.bytes",
    "fetch.min.bytes",
    "fetch.queue.backoff.ms",
    "fetch.wait.max.ms",
    "group.id",
    "group.instance.id",
    "group.protocol",
    "group.protocol.type",
    "group.remote.assignor",
    "heartbeat.interval.ms",
    "isolation.level",
    "max.partition.fetch.bytes",
    "max.poll.interval.ms",
    "offset.store.method",
    "offset.store.path",
    "offset.store.sync.interval.ms",
    "offset_commit_cb",
    "partition.assignment.strategy",
    "queued.max.messages.kbytes",
    "queued.min.messages",
    "rebalance_cb",
    "session.timeout.ms",
];

/// Properties only a producer reads.
const PRODUCER_ONLY: &[&str] = &[
    "acks",
    "batch.num.messages",
    "batch.size",
    "compression.codec",
    "compression.level",
    "compression.type",
    "delivery.report.only.error",
    "delivery.timeout.ms",
    "dr_cb",
    "dr_msg_cb",
    "enable.gapless.guarantee",
    "enable.idempotence",
    "linger.ms",
    "message.send.max.retries",
    "message.timeout.ms",
    "msg_order_cmp",
    "partitioner",
    "partitioner_cb",
    "produce.offset.report",
    "queue.buffering.backpressure.threshold",
    "queue.buffering.max.kbytes",
    "queue.buffering.max.messages",
    "queue.buffering.max.ms",
    "queuing.strategy",
    "request.required.acks",
    "request.timeout.ms",
    "retries",
    "sticky.partitioning.linger.ms",
    "transaction.timeout.ms",
    "transactional.id",
];

/// Whether a client of kind `handle` reads `property`.
pub fn read_by(property: &str, handle: Handle) -> bool {
    let other = match handle {
        Handle::Consumer => PRODUCER_ONLY,
        Handle::Producer => CONSUMER_ONLY,
    };
    other.binary_search(&property).is_err()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_client_reads_its_own_properties_and_the_shared_ones() {
        for list in [CONSUMER_ONLY, PRODUCER_ONLY] {
            assert!(list.is_sorted(), "kept sorted for binary_search");
        }
        assert!(read_by("fetch.wait.max.ms", Handle::Consumer));
        assert!(!read_by("fetch.wait.max.ms", Handle::Producer));
        assert!(read_by("linger.ms", Handle::Producer));
        assert!(!read_by("linger.ms", Handle::Consumer));
        for shared in [
            "security.protocol",
            "client.id",
            "socket.timeout.ms",
            "x.unknown",
        ] {
            assert!(read_by(shared, Handle::Consumer) && read_by(shared, Handle::Producer));
        }
    }
}
