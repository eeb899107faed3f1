//! What a topic accepts: the size and timestamp bounds a broker enforces
//! per record, checked before a record is sent.
//!
//! A broker refuses a record larger than its topic's `max.message.bytes`
//! (`MessageSizeTooLarge`) or, for `CreateTime` topics, with a timestamp
//! more than `message.timestamp.after.max.ms` ahead of the broker's clock
//! or more than `message.timestamp.before.max.ms` behind it
//! (`InvalidTimestamp`; Kafka 4 refuses anything over an hour ahead by
//! default). librdkafka itself refuses, at once, a record over its own
//! `message.max.bytes`. Such a refusal concerns the record, not the
//! producer, yet it fails the whole produce request (the record's batch
//! neighbours with it) and, under exactly-once, the transaction. So the
//! host checks each output against its topic's limits first, and a record
//! that would be refused meets the pipeline's `refused` error policy
//! instead of halting the pipeline.
//!
//! The limits are read from the broker (`DescribeConfigs`) when a run
//! starts. The size is counted as the record's uncompressed wire size,
//! batch header included, as librdkafka counts it: with compression a
//! record slightly over the limit might have passed.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, OwnedResourceSpecifier, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;

use super::client_config::ClientSettings;
use crate::error::KafkaError;
use crate::record::RecordRef;

/// A record batch's header (v2), before its first record.
const BATCH_OVERHEAD: u64 = 61;
/// The most a record's own framing takes (librdkafka's
/// `RD_KAFKAP_MESSAGE_V2_MAX_OVERHEAD`: length, attributes, timestamp and
/// offset deltas, key and value lengths, header count).
const RECORD_OVERHEAD: u64 = 36;
/// The most a header's framing takes (two length varints).
const HEADER_OVERHEAD: u64 = 10;
/// librdkafka's default `message.max.bytes`.
const CLIENT_DEFAULT_MAX: u64 = 1_000_000;
/// Leeway for a timestamp that is old: it gets older on its way to the
/// broker (a timestamp ahead gets less so, and needs none).
const BEFORE_LEEWAY_MS: i64 = 60_000;

/// One topic's limits, as its configs say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TopicLimits {
    /// `max.message.bytes`: the largest record batch it takes.
    pub max_message_bytes: Option<u64>,
    /// `message.timestamp.after.max.ms`.
    pub after_max_ms: Option<i64>,
    /// `message.timestamp.before.max.ms`.
    pub before_max_ms: Option<i64>,
    /// `message.timestamp.type = LogAppendTime`: the broker sets the
    /// timestamp, and never refuses one.
    pub log_append_time: bool,
}

impl TopicLimits {
    /// The limits in a topic's configs (`name` → value).
    pub fn from_configs<'a>(configs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut limits = TopicLimits::default();
        for (name, value) in configs {
            match name {
                "max.message.bytes" => limits.max_message_bytes = value.parse().ok(),
                "message.timestamp.after.max.ms" => limits.after_max_ms = value.parse().ok(),
                "message.timestamp.before.max.ms" => limits.before_max_ms = value.parse().ok(),
                "message.timestamp.type" => limits.log_append_time = value == "LogAppendTime",
                _ => {}
            }
        }
        limits
    }
}

/// Why a topic would refuse a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The record is larger than the topic or the producer takes.
    TooLarge {
        /// The topic.
        topic: String,
        /// The record's size as sent, in bytes.
        size: u64,
        /// The limit.
        limit: u64,
        /// The setting that sets it.
        setting: &'static str,
    },
    /// The record's timestamp is too far from now.
    Timestamp {
        /// The topic.
        topic: String,
        /// The record's timestamp (ms).
        timestamp: i64,
        /// The host's clock when checked (ms).
        now: i64,
        /// The setting it breaks, and its value in ms.
        setting: &'static str,
        /// That setting's value (ms).
        limit_ms: i64,
    },
}

impl Refusal {
    /// The dead letter's `sluice.error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::TooLarge { .. } => "record-too-large",
            Refusal::Timestamp { .. } => "timestamp-out-of-range",
        }
    }

    /// Whether the timestamp is what would be refused.
    pub fn is_timestamp(&self) -> bool {
        matches!(self, Refusal::Timestamp { .. })
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::TooLarge {
                topic,
                size,
                limit,
                setting,
            } => write!(
                f,
                "topic `{topic}` would refuse the record: {size} bytes as sent, over {setting} ({limit} bytes)"
            ),
            Refusal::Timestamp {
                topic,
                timestamp,
                now,
                setting,
                limit_ms,
            } => {
                let (how, by) = if timestamp > now {
                    ("ahead of", timestamp.saturating_sub(*now))
                } else {
                    ("behind", now.saturating_sub(*timestamp))
                };
                write!(
                    f,
                    "topic `{topic}` would refuse the record: its timestamp {timestamp} (ms) is {} {how} the clock, over {setting} ({})",
                    crate::window::duration::format(by),
                    crate::window::duration::format(*limit_ms),
                )
            }
        }
    }
}

/// The limits of the topics a producer writes to.
#[derive(Debug)]
pub struct SinkLimits {
    /// librdkafka's `message.max.bytes`.
    client_max: u64,
    topics: RwLock<HashMap<String, TopicLimits>>,
}

impl SinkLimits {
    /// Limits of a producer whose `message.max.bytes` is `client_max`
    /// (librdkafka's default when `None`); no topic's limits known yet.
    pub fn new(client_max: Option<u64>) -> Self {
        SinkLimits {
            client_max: client_max.unwrap_or(CLIENT_DEFAULT_MAX),
            topics: RwLock::new(HashMap::new()),
        }
    }

    /// Adds (or replaces) topics' limits.
    pub fn learn(&self, limits: HashMap<String, TopicLimits>) {
        self.topics.write().expect("not poisoned").extend(limits);
    }

    /// Whether `topic` would refuse `record`, with the clock at `now_ms`.
    pub fn check(&self, topic: &str, record: RecordRef<'_>, now_ms: i64) -> Option<Refusal> {
        let size = wire_size(record);
        let limits = self
            .topics
            .read()
            .expect("not poisoned")
            .get(topic)
            .copied()
            .unwrap_or_default();
        let too_large = |limit: u64, setting| Refusal::TooLarge {
            topic: topic.to_owned(),
            size,
            limit,
            setting,
        };
        if size > self.client_max {
            return Some(too_large(
                self.client_max,
                "the producer's message.max.bytes",
            ));
        }
        if let Some(max) = limits.max_message_bytes
            && size + BATCH_OVERHEAD > max
        {
            return Some(Refusal::TooLarge {
                topic: topic.to_owned(),
                size: size + BATCH_OVERHEAD,
                limit: max,
                setting: "the topic's max.message.bytes",
            });
        }
        let timestamp = record.timestamp?;
        if limits.log_append_time {
            return None;
        }
        let refused = |setting, limit_ms| Refusal::Timestamp {
            topic: topic.to_owned(),
            timestamp,
            now: now_ms,
            setting,
            limit_ms,
        };
        if let Some(after) = limits.after_max_ms
            && timestamp > now_ms.saturating_add(after)
        {
            return Some(refused("message.timestamp.after.max.ms", after));
        }
        if let Some(before) = limits.before_max_ms
            && timestamp
                < now_ms
                    .saturating_sub(before)
                    .saturating_add(BEFORE_LEEWAY_MS)
        {
            return Some(refused("message.timestamp.before.max.ms", before));
        }
        None
    }
}

/// A record's size on the wire, uncompressed, framing included (as
/// librdkafka checks it against `message.max.bytes`).
pub fn wire_size(record: RecordRef<'_>) -> u64 {
    let len = |b: Option<&[u8]>| b.map_or(0, |b| b.len() as u64);
    let headers: u64 = record
        .headers
        .iter()
        .map(|(name, value)| HEADER_OVERHEAD + name.len() as u64 + len(value))
        .sum();
    RECORD_OVERHEAD + len(record.key) + len(record.value) + headers
}

/// The id librdkafka's mock cluster (the embedded broker) gives itself
/// starts so; it has no `DescribeConfigs` (a request waits for its
/// timeout), so it is not asked.
const EMBEDDED_CLUSTER_ID: &str = "mockCluster";

/// Reads the limits of `topics` from the broker; `None` from the embedded
/// broker, which cannot tell them. A topic the broker cannot describe is
/// left out (it is then unchecked but for the producer's own limit).
pub fn describe(
    settings: &ClientSettings,
    topics: &[String],
    timeout: Duration,
) -> Result<Option<HashMap<String, TopicLimits>>, KafkaError> {
    let admin: AdminClient<DefaultClientContext> = settings
        .admin()
        .create()
        .map_err(KafkaError::client("creating an admin client"))?;
    if admin
        .inner()
        .fetch_cluster_id(timeout)
        .is_some_and(|id| id.starts_with(EMBEDDED_CLUSTER_ID))
    {
        return Ok(None);
    }
    let opts = AdminOptions::new()
        .operation_timeout(Some(timeout))
        .request_timeout(Some(timeout));
    let specifiers: Vec<ResourceSpecifier<'_>> =
        topics.iter().map(|t| ResourceSpecifier::Topic(t)).collect();
    let results = futures_executor::block_on(admin.describe_configs(&specifiers, &opts))
        .map_err(KafkaError::client("reading the sink topics' configs"))?;
    let mut out = HashMap::new();
    for resource in results.into_iter().flatten() {
        let OwnedResourceSpecifier::Topic(topic) = &resource.specifier else {
            continue;
        };
        let limits = TopicLimits::from_configs(
            resource
                .entries
                .iter()
                .filter_map(|e| Some((e.name.as_str(), e.value.as_deref()?))),
        );
        out.insert(topic.clone(), limits);
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Record;

    const HOUR: i64 = 3_600_000;

    fn kafka4_defaults() -> TopicLimits {
        TopicLimits::from_configs([
            ("max.message.bytes", "1048588"),
            ("message.timestamp.after.max.ms", "3600000"),
            ("message.timestamp.before.max.ms", "9223372036854775807"),
            ("message.timestamp.type", "CreateTime"),
            ("cleanup.policy", "delete"),
        ])
    }

    fn limits() -> SinkLimits {
        let l = SinkLimits::new(Some(2_000_000));
        l.learn(HashMap::from([("out".to_owned(), kafka4_defaults())]));
        l
    }

    #[test]
    fn a_record_within_every_limit_passes() {
        let now = 1_700_000_000_000;
        let r = Record::new(Some(b"k"), Some(&[7; 1_000_000]), Some(now + HOUR));
        assert_eq!(limits().check("out", r.as_ref(), now), None);
        let old = Record::new(Some(b"k"), Some(b"v"), Some(0));
        assert_eq!(limits().check("out", old.as_ref(), now), None);
        let none = Record::new(Some(b"k"), Some(b"v"), None);
        assert_eq!(limits().check("out", none.as_ref(), now), None);
    }

    #[test]
    fn a_record_over_the_topics_size_is_refused_naming_both_sizes() {
        let r = Record::new(Some(b"k"), Some(&[7; 1_048_588]), Some(1));
        let refusal = limits().check("out", r.as_ref(), 1).expect("refused");
        assert_eq!(refusal.code(), "record-too-large");
        let text = refusal.to_string();
        assert!(text.contains("max.message.bytes (1048588 bytes)"), "{text}");
        assert!(text.contains("1048686 bytes as sent"), "{text}");
        // Headers count too.
        let mut r = Record::new(Some(b"k"), Some(&[7; 1_048_000]), Some(1));
        r.headers.push(("h".into(), Some(vec![0; 1_000].into())));
        assert!(limits().check("out", r.as_ref(), 1).is_some());
    }

    #[test]
    fn the_producers_own_limit_applies_to_every_topic() {
        let l = SinkLimits::new(None);
        let r = Record::new(None, Some(&[0; 1_000_000]), None);
        let refusal = l.check("anywhere", r.as_ref(), 0).expect("refused");
        assert!(
            refusal
                .to_string()
                .contains("the producer's message.max.bytes"),
            "{refusal}"
        );
        let fits = Record::new(None, Some(&[0; 999_000]), None);
        assert_eq!(l.check("anywhere", fits.as_ref(), 0), None);
    }

    #[test]
    fn a_timestamp_too_far_ahead_is_refused() {
        let now = 1_700_000_000_000;
        let r = Record::new(Some(b"k"), Some(b"v"), Some(now + HOUR + 1));
        let refusal = limits().check("out", r.as_ref(), now).expect("refused");
        assert!(refusal.is_timestamp());
        assert_eq!(refusal.code(), "timestamp-out-of-range");
        let text = refusal.to_string();
        assert!(
            text.contains("message.timestamp.after.max.ms (1h)"),
            "{text}"
        );
        assert!(text.contains("ahead of the clock"), "{text}");
        // Unknown topics and LogAppendTime topics check no timestamp.
        assert_eq!(limits().check("other", r.as_ref(), now), None);
        let l = SinkLimits::new(None);
        l.learn(HashMap::from([(
            "out".to_owned(),
            TopicLimits {
                log_append_time: true,
                ..kafka4_defaults()
            },
        )]));
        assert_eq!(l.check("out", r.as_ref(), now), None);
    }

    #[test]
    fn a_timestamp_too_far_behind_is_refused_with_leeway() {
        let now = 1_700_000_000_000;
        let l = SinkLimits::new(None);
        l.learn(HashMap::from([(
            "out".to_owned(),
            TopicLimits {
                before_max_ms: Some(HOUR),
                ..kafka4_defaults()
            },
        )]));
        let old = Record::new(None, Some(b"v"), Some(now - HOUR));
        let refusal = l.check("out", old.as_ref(), now).expect("refused");
        assert!(
            refusal.to_string().contains("behind the clock"),
            "{refusal}"
        );
        let recent = Record::new(None, Some(b"v"), Some(now - HOUR + 2 * BEFORE_LEEWAY_MS));
        assert_eq!(l.check("out", recent.as_ref(), now), None);
    }
}
