//! Kafka's default partitioner (the Java client's and Kafka Streams'), and
//! a check that a topic's records sit where it puts them.
//!
//! A join meets records by key on the same partition number of both its
//! inputs: that holds only if every producer put each key on the partition
//! `murmur2(key) mod partitions` gives. A producer with another
//! partitioner (librdkafka's default CRC32, a random one) or a key
//! serializer that adds bytes (a schema registry's id prefix) breaks it,
//! and the join silently finds nothing: Kafka Streams has that failure.
//! [`check_keys`] samples the latest records of each partition at start
//! and names the first that sits elsewhere.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::client_config::ClientSettings;
use crate::error::KafkaError;

/// Records sampled from the end of each partition.
const SAMPLE: i64 = 20;

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`): 32
/// bits, seed `0x9747b28c`, the last bytes folded in little-endian.
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes(chunk.try_into().expect("4 bytes"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        for (i, &b) in rest.iter().enumerate().rev() {
            h ^= u32::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Kafka's default partitioner gives `key` among
/// `partitions`.
pub fn partition_of(key: &[u8], partitions: i32) -> i32 {
    ((murmur2(key) as u32 & 0x7fff_ffff) % partitions as u32) as i32
}

/// Reads up to the last [`SAMPLE`] records of each partition of each of
/// `topics` (with its partition count) and checks that each record with a
/// key sits on the partition murmur2 gives it. An empty topic passes.
pub fn check_keys(
    settings: &ClientSettings,
    topics: &[(String, i32)],
    timeout: Duration,
) -> Result<(), KafkaError> {
    let consumer: BaseConsumer = settings
        .plain()
        // librdkafka assigns only with a group; this one never joins or
        // commits.
        .set("group.id", "sluice-key-sample")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .map_err(KafkaError::client("creating a consumer to sample keys"))?;
    let mut tpl = TopicPartitionList::new();
    let mut wanted = 0;
    for (topic, partitions) in topics {
        for p in 0..*partitions {
            let (low, high) =
                consumer
                    .fetch_watermarks(topic, p, timeout)
                    .map_err(KafkaError::client(format!(
                        "reading the offsets of `{topic}`"
                    )))?;
            let from = low.max(high - SAMPLE);
            if from < high {
                tpl.add_partition_offset(topic, p, Offset::Offset(from))
                    .expect("a valid offset");
                wanted += high - from;
            }
        }
    }
    if wanted == 0 {
        return Ok(());
    }
    consumer
        .assign(&tpl)
        .map_err(KafkaError::client("assigning partitions to sample keys"))?;
    let deadline = Instant::now() + timeout;
    let mut seen = 0;
    while seen < wanted && Instant::now() < deadline {
        let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        seen += 1;
        let Some(key) = m.key() else { continue };
        let partitions = topics
            .iter()
            .find(|(t, _)| t == m.topic())
            .map_or(1, |(_, n)| *n);
        let expected = partition_of(key, partitions);
        if expected != m.partition() {
            return Err(KafkaError::NotMurmur2Partitioned {
                topic: m.topic().to_owned(),
                partition: m.partition(),
                offset: m.offset(),
                key: String::from_utf8_lossy(key).chars().take(60).collect(),
                expected,
            });
        }
    }
    tracing::debug!(records = seen, "sampled keys sit where murmur2 puts them");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_is_kafkas() {
        // Apache Kafka's `UtilsTest.testMurmur2`.
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (data, want) in cases {
            assert_eq!(murmur2(data), want, "{}", String::from_utf8_lossy(data));
        }
        assert_eq!(partition_of(b"foobar", 50), 16);
    }
}
