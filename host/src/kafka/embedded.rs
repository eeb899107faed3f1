//! The embedded broker: librdkafka's mock cluster, in-process.
//!
//! It speaks the Kafka protocol on localhost ports, so the same consumer
//! and producer code runs against it. It has no CreateTopics API (topics
//! are made with [`MockCluster::create_topic`]), no compaction and no
//! `read_committed`; it is for development and fast tests, not for
//! benchmarks.

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use crate::error::KafkaError;

/// A running embedded cluster. Dropping it stops the brokers.
pub struct EmbeddedKafka {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl std::fmt::Debug for EmbeddedKafka {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedKafka")
            .field("bootstrap", &self.cluster.bootstrap_servers())
            .finish()
    }
}

impl EmbeddedKafka {
    /// Starts a cluster of `brokers` brokers.
    pub fn start(brokers: i32) -> Result<Self, KafkaError> {
        let cluster =
            MockCluster::new(brokers).map_err(KafkaError::client("starting the embedded Kafka"))?;
        Ok(EmbeddedKafka { cluster })
    }

    /// The `host:port,…` list clients connect to.
    pub fn bootstrap_servers(&self) -> String {
        self.cluster.bootstrap_servers()
    }

    /// The mock cluster itself: tests inject faults through it
    /// (`request_errors`, `broker_round_trip_time`, `broker_down`).
    pub fn cluster(&self) -> &MockCluster<'static, DefaultProducerContext> {
        &self.cluster
    }

    /// Creates a topic (replication factor 1).
    pub fn create_topic(&self, topic: &str, partitions: i32) -> Result<(), KafkaError> {
        self.cluster
            .create_topic(topic, partitions, 1)
            .map_err(KafkaError::client(format!("creating topic `{topic}`")))
    }
}
