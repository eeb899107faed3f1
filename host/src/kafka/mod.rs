//! Kafka I/O: client configuration, connection checks, the producer that
//! tasks share, and the embedded broker of `sluice dev`.
//!
//! - [`allow_list`]: the properties a tenant's pipeline may set under
//!   `sluice serve`.
//! - [`client_config`]: consumer and producer settings Sluice relies on.
//! - [`properties`]: which librdkafka properties only consumers, or only
//!   producers, read.
//! - [`connect`]: bounded waits for brokers and topics.
//! - [`consumer`]: a polled message as a record, and the consumer's lag.
//! - [`producer`]: the shared producer and its delivery tracking.
//! - [`transactions`]: exactly-once: the producer's `transactional.id`.
//! - [`embedded`]: librdkafka's in-process mock cluster.
//! - [`topics`]: internal topics, created or checked.
//! - [`topic_limits`]: the record size and timestamps a topic accepts.

pub mod allow_list;
pub mod client_config;
pub mod connect;
pub mod consumer;
pub mod embedded;
pub mod partitioner;
pub mod producer;
pub mod properties;
pub mod topic_limits;
pub mod topics;
pub mod transactions;
