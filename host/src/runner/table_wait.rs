//! `wait-for-table`: a join's stream waits for its table. When a task's
//! partitions are assigned, the partitions of the table a join reads have
//! an end (their high watermark then); until the table has been processed
//! up to it, the stream partitions of the same number stay paused, so a
//! fresh deployment (or a new instance) does not join its first records
//! against an empty or stale table. A table whose committed offset is
//! already at its end (a restart) holds nothing back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::{Offset, TopicPartitionList};

use crate::topology::{Join, JoinWith, Operation, Topology};

/// How long reading a table partition's end may take.
const WATERMARK_TIMEOUT: Duration = Duration::from_secs(10);

/// The joins' tables and the stream topics they hold back, and what is
/// held now.
#[derive(Debug, Default)]
pub struct TableWaits {
    /// Per waited-for table topic: the stream topics read with it.
    tables: Vec<(String, Vec<String>)>,
    /// Per (table topic, partition) not caught up: the end to reach.
    waiting: HashMap<(String, i32), i64>,
}

impl TableWaits {
    /// The waits of `topology`'s joins that ask for them.
    pub fn new(topology: &Topology) -> TableWaits {
        let mut tables: Vec<(String, Vec<String>)> = Vec::new();
        for (i, step) in topology.steps.iter().enumerate() {
            let Operation::Join(Join {
                with:
                    JoinWith::Table {
                        table,
                        wait_for_table: true,
                        ..
                    },
                ..
            }) = &step.op
            else {
                continue;
            };
            let sub = &topology.subtopologies[topology.subtopology_of_step(i)];
            let streams: Vec<String> = (sub.sources.iter())
                .map(|&s| &topology.sources[s])
                .filter(|s| s.table.is_none())
                .map(|s| s.topic.clone())
                .collect();
            let table = topology.sources[*table].topic.clone();
            match tables.iter_mut().find(|(t, _)| *t == table) {
                Some((_, held)) => held.extend(streams),
                None => tables.push((table, streams)),
            }
        }
        for (_, held) in &mut tables {
            held.sort();
            held.dedup();
        }
        TableWaits {
            tables,
            waiting: HashMap::new(),
        }
    }

    /// On an assignment (`assigned`, whose committed offsets are
    /// `committed`): the table partitions behind their end hold the stream
    /// partitions of their number, which are paused.
    pub fn on_assign<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        assigned: &TopicPartitionList,
        committed: &TopicPartitionList,
    ) {
        if self.tables.is_empty() {
            return;
        }
        for e in assigned.elements() {
            if !self.tables.iter().any(|(t, _)| t == e.topic()) {
                continue;
            }
            let high = match consumer.fetch_watermarks(e.topic(), e.partition(), WATERMARK_TIMEOUT)
            {
                Ok((_, high)) => high,
                Err(err) => {
                    tracing::warn!(
                        topic = e.topic(),
                        partition = e.partition(),
                        "cannot read the table's end ({err}); its stream is not held back"
                    );
                    continue;
                }
            };
            let at = (committed.find_partition(e.topic(), e.partition()))
                .and_then(|c| match c.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                })
                .unwrap_or(0);
            if at < high {
                self.waiting
                    .insert((e.topic().to_owned(), e.partition()), high);
            }
        }
        let held = self.held(assigned);
        if held.count() > 0 {
            match consumer.pause(&held) {
                Ok(()) => tracing::info!(
                    partitions = held.count(),
                    tables = self.waiting.len(),
                    "wait-for-table: stream partitions held until their tables catch up"
                ),
                Err(e) => tracing::error!("pausing stream partitions for their tables: {e}"),
            }
        }
    }

    /// Forgets revoked table partitions.
    pub fn on_revoke(&mut self, revoked: &TopicPartitionList) {
        for e in revoked.elements() {
            self.waiting.remove(&(e.topic().to_owned(), e.partition()));
        }
    }

    /// After a poll round: table partitions processed up to their end
    /// (`processed`: next offsets) release their stream partitions,
    /// resumed unless the pipeline is `paused` as a whole.
    pub fn release<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        processed: &HashMap<(Arc<str>, i32), i64>,
        paused: bool,
    ) {
        if self.waiting.is_empty() {
            return;
        }
        let caught_up: Vec<(String, i32)> = (self.waiting.iter())
            .filter(|((t, p), end)| {
                processed
                    .get(&(Arc::from(t.as_str()), *p))
                    .is_some_and(|n| n >= end)
            })
            .map(|(k, _)| k.clone())
            .collect();
        if caught_up.is_empty() {
            return;
        }
        let Ok(assignment) = consumer.assignment() else {
            return;
        };
        let before = self.held(&assignment);
        for k in &caught_up {
            self.waiting.remove(k);
            tracing::info!(topic = %k.0, partition = k.1, "wait-for-table: table caught up");
        }
        let after = self.held(&assignment);
        let mut free = TopicPartitionList::new();
        for e in before.elements() {
            if after.find_partition(e.topic(), e.partition()).is_none() {
                free.add_partition(e.topic(), e.partition());
            }
        }
        if free.count() > 0 && !paused {
            if let Err(e) = consumer.resume(&free) {
                tracing::error!("resuming stream partitions after their tables: {e}");
            }
        }
    }

    /// The stream partitions of `assigned` held back by a table partition
    /// still behind.
    fn held(&self, assigned: &TopicPartitionList) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        for (table, p) in self.waiting.keys() {
            let streams = (self.tables.iter())
                .find(|(t, _)| t == table)
                .map(|(_, s)| s.as_slice());
            for topic in streams.unwrap_or_default() {
                if assigned.find_partition(topic, *p).is_some()
                    && tpl.find_partition(topic, *p).is_none()
                {
                    tpl.add_partition(topic, *p);
                }
            }
        }
        tpl
    }

    /// Whether `assigned` has a partition of a table some stream waits
    /// for.
    pub fn watches(&self, assigned: &TopicPartitionList) -> bool {
        (assigned.elements().iter()).any(|e| self.tables.iter().any(|(t, _)| t == e.topic()))
    }

    /// After the whole assignment was resumed: pauses again what is still
    /// held.
    pub fn hold_again<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        assigned: &TopicPartitionList,
    ) {
        let held = self.held(assigned);
        if held.count() > 0
            && let Err(e) = consumer.pause(&held)
        {
            tracing::error!("pausing stream partitions for their tables: {e}");
        }
    }
}
