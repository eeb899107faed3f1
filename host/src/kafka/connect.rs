//! Bounded waits: a broker that is down gets a few tries, then a clear
//! error, never a hang.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::metadata::Metadata;

use super::client_config::ClientSettings;
use crate::error::KafkaError;

/// Fetches cluster metadata, retrying with backoff until `timeout` has
/// passed.
pub fn wait_for_brokers(
    settings: &ClientSettings,
    timeout: Duration,
) -> Result<Metadata, KafkaError> {
    // librdkafka logs every failed connection attempt; this wait reports
    // them itself, so keep the client quiet.
    let client: BaseConsumer = settings
        .plain()
        .set("log_level", "0")
        .create()
        .map_err(KafkaError::client("creating a metadata client"))?;
    let start = Instant::now();
    let mut attempts = 0;
    let mut backoff = Duration::from_millis(200);
    loop {
        attempts += 1;
        let left = timeout.saturating_sub(start.elapsed());
        let per_try = left
            .min(Duration::from_secs(5))
            .max(Duration::from_millis(100));
        match client.fetch_metadata(None, per_try) {
            Ok(m) if !m.brokers().is_empty() => return Ok(m),
            Ok(_) => {}
            Err(e) if start.elapsed() + backoff >= timeout => {
                return Err(KafkaError::Unreachable {
                    brokers: settings.brokers().to_owned(),
                    attempts,
                    waited_secs: start.elapsed().as_secs(),
                    last: e.to_string(),
                });
            }
            Err(e) => tracing::warn!(
                brokers = settings.brokers(),
                attempt = attempts,
                "Kafka not reachable yet: {e}"
            ),
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// Partition counts of `topics`; a missing topic is an error.
pub fn partition_counts(
    metadata: &Metadata,
    brokers: &str,
    topics: &[String],
) -> Result<Vec<(String, usize)>, KafkaError> {
    topics
        .iter()
        .map(|t| {
            metadata
                .topics()
                .iter()
                .find(|m| m.name() == t && m.error().is_none() && !m.partitions().is_empty())
                .map(|m| (t.clone(), m.partitions().len()))
                .ok_or_else(|| KafkaError::MissingTopic {
                    topic: t.clone(),
                    brokers: brokers.to_owned(),
                })
        })
        .collect()
}
