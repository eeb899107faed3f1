//! The source consumer's side of Kafka: a polled message as a [`Record`],
//! and the lag of the assigned partitions.
//!
//! The consumer itself (one per process, group = `application.id`) is
//! made from [`super::client_config`] and polled by the runner's poll loop.
//! A message's timestamp type becomes the task's `TimestampKind` there too
//! (`runner::poll_loop`), since the time module sits above this one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::message::{Headers, Message};

use crate::record::Record;

/// The record a polled message holds: key, value, timestamp and headers,
/// copied out of the consumer's buffer.
pub fn to_record<M: Message>(m: &M) -> Record {
    let headers = m
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| (h.key.to_owned(), h.value.map(bytes::Bytes::copy_from_slice)))
                .collect()
        })
        .unwrap_or_default();
    Record {
        key: m.key().map(bytes::Bytes::copy_from_slice),
        value: m.payload().map(bytes::Bytes::copy_from_slice),
        timestamp: m.timestamp().to_millis(),
        headers,
    }
}

/// Records on the assigned partitions past the `committed` offsets (or the
/// consumer's position, before a first commit): the end offsets are asked
/// of the brokers. `None` while nothing is assigned or a broker does not
/// answer.
pub fn lag<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    committed: &HashMap<(Arc<str>, i32), i64>,
) -> Option<u64> {
    let assignment = consumer.assignment().ok()?;
    if assignment.count() == 0 {
        return None;
    }
    let positions = consumer.position().ok()?;
    let mut total = 0;
    for e in assignment.elements() {
        let (_, end) = consumer
            .fetch_watermarks(e.topic(), e.partition(), Duration::from_millis(500))
            .ok()?;
        let position = positions
            .find_partition(e.topic(), e.partition())
            .and_then(|p| match p.offset() {
                rdkafka::Offset::Offset(o) => Some(o),
                _ => None,
            });
        let at = committed
            .get(&(Arc::from(e.topic()), e.partition()))
            .copied()
            .or(position);
        if let Some(at) = at {
            total += (end - at).max(0) as u64;
        }
    }
    Some(total)
}
