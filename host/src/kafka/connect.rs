//! Bounded waits: a broker that is down gets a few tries, then a clear
//! error, never a hang.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::metadata::Metadata;

use super::client_config::ClientSettings;
use crate::error::KafkaError;

/// The longest single metadata request of [`wait_for_brokers`]: the
/// longest it goes without looking at its stop flag.
const PER_TRY_MAX: Duration = Duration::from_secs(2);

/// Fetches cluster metadata, retrying with backoff until `timeout` has
/// passed. `Ok(None)` once `stop` is set: a run told to stop while it
/// waits for the brokers (`sluice serve` shutting down, SIGTERM) stops
/// within about [`PER_TRY_MAX`], not after `timeout`.
pub fn wait_for_brokers(
    settings: &ClientSettings,
    timeout: Duration,
    stop: &AtomicBool,
) -> Result<Option<Metadata>, KafkaError> {
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
    let stopped = || stop.load(Ordering::Relaxed);
    loop {
        if stopped() {
            return Ok(None);
        }
        attempts += 1;
        let left = timeout.saturating_sub(start.elapsed());
        let per_try = left.min(PER_TRY_MAX).max(Duration::from_millis(100));
        match client.fetch_metadata(None, per_try) {
            Ok(m) if !m.brokers().is_empty() => return Ok(Some(m)),
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
        let until = Instant::now() + backoff;
        while Instant::now() < until && !stopped() {
            std::thread::sleep(Duration::from_millis(50));
        }
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
