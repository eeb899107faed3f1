//! Purging repartition topics: once the offsets of a repartition topic's
//! partition are committed, the records below them are never read again,
//! so they are deleted (Kafka's DeleteRecords), at most once every
//! `repartition.purge.interval.ms` (30 s by default, as in Kafka Streams).
//! A repartition topic is created without a retention limit, so this is
//! what keeps it from growing without bound. A purge that fails is logged
//! and tried again later: nothing depends on it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::{Offset, TopicPartitionList};

use crate::kafka::client_config::ClientSettings;
use crate::topology::Topology;

/// How long one DeleteRecords request may take.
const PURGE_TIMEOUT: Duration = Duration::from_secs(30);

/// The purges of one attempt.
pub(super) struct Purger {
    admin: Arc<AdminClient<DefaultClientContext>>,
    /// The repartition topics.
    topics: Vec<String>,
    every: Duration,
    last: Instant,
    /// What was deleted (or asked to be) per partition.
    purged: HashMap<(String, i32), i64>,
    /// The purge in flight, if one is.
    running: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Purger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Purger")
            .field("topics", &self.topics)
            .field("purged", &self.purged)
            .finish_non_exhaustive()
    }
}

impl Purger {
    /// A purger of `topology`'s repartition topics; `None` without any, or
    /// when no admin client can be made (logged).
    pub(super) fn new(topology: &Topology, settings: &ClientSettings) -> Option<Purger> {
        let mut topics: Vec<String> = (topology.sources.iter())
            .filter(|s| s.repartition.is_some())
            .map(|s| s.topic.clone())
            .collect();
        topics.sort();
        topics.dedup();
        if topics.is_empty() {
            return None;
        }
        let admin = match settings.admin().create() {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(
                    "repartition topics will not be purged: creating an admin client: {e}"
                );
                return None;
            }
        };
        Some(Purger {
            admin: Arc::new(admin),
            topics,
            every: topology.processing.repartition_purge_interval,
            last: Instant::now(),
            purged: HashMap::new(),
            running: None,
        })
    }

    /// After a commit of `committed` (next offsets by topic-partition):
    /// deletes what of the repartition topics is below them, if the
    /// interval has passed and the last purge is done.
    pub(super) fn after_commit(&mut self, committed: &HashMap<(Arc<str>, i32), i64>) {
        if self.last.elapsed() < self.every
            || self.running.as_ref().is_some_and(|h| !h.is_finished())
        {
            return;
        }
        self.last = Instant::now();
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), &next) in committed {
            let key = (topic.to_string(), *partition);
            if !self.topics.iter().any(|t| **t == **topic)
                || self.purged.get(&key).is_some_and(|&p| p >= next)
            {
                continue;
            }
            tpl.add_partition_offset(topic, *partition, Offset::Offset(next))
                .expect("a valid offset");
            self.purged.insert(key, next);
        }
        if tpl.count() == 0 {
            return;
        }
        let admin = Arc::clone(&self.admin);
        self.running = Some(std::thread::spawn(move || purge(&admin, &tpl)));
    }
}

/// Deletes the records of each partition of `tpl` below its offset.
fn purge(admin: &AdminClient<DefaultClientContext>, tpl: &TopicPartitionList) {
    let opts = AdminOptions::new()
        .operation_timeout(Some(PURGE_TIMEOUT))
        .request_timeout(Some(PURGE_TIMEOUT));
    match futures_executor::block_on(admin.delete_records(tpl, &opts)) {
        Ok(result) => {
            for e in result.elements() {
                match e.error() {
                    Ok(()) => tracing::debug!(
                        topic = e.topic(),
                        partition = e.partition(),
                        below = ?e.offset(),
                        "repartition topic purged"
                    ),
                    Err(err) => tracing::warn!(
                        topic = e.topic(),
                        partition = e.partition(),
                        "purging a repartition topic: {err}; tried again after the next commit"
                    ),
                }
            }
        }
        Err(e) => tracing::warn!("purging the repartition topics: {e}; tried again later"),
    }
}
