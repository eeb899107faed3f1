//! Parking: a served pipeline that has had no input for a while lets go
//! of its Kafka clients and threads, and a [`Watcher`] shared by the whole
//! host wakes it once one of its topics moves.
//!
//! Each pipeline has a consumer and a producer of its own (a consumer
//! belongs to one group, and the group is the pipeline), and each
//! librdkafka client runs threads of its own: about ten threads for a
//! pipeline that does nothing. A parked pipeline holds none of them.
//!
//! 1. **Park.** The poll loop sees no input for [`ParkPolicy::after`]
//!    (and, for steps with `close.idle.after`, for longer than that: its
//!    idle windows close first), nothing in flight, and the pipeline not
//!    paused. It reads the end of every topic it reads ([`Watcher::ends`]:
//!    the last stable offsets, as a `read_committed` consumer sees them)
//!    and goes on polling for [`CONFIRM`]. A record in that time keeps it
//!    running; otherwise the attempt ends as a stop does: in-flight work
//!    finished, outputs acknowledged, offsets and stores committed,
//!    stream threads joined, the consumer closed (it leaves the group),
//!    the producer and the stores closed.
//! 2. **Watch.** The watcher's one client asks the brokers for the ends
//!    of every parked pipeline's partitions in one request per check
//!    ([`Watcher::start`]'s `every`), and for their topics' partition
//!    counts every [`RESIZE_CHECK_EVERY`].
//! 3. **Wake.** A topic with a record past the end read at parking (or
//!    with more partitions) wakes its pipeline, and so does a request
//!    through the admin API (swap, pause, resume) or a stop. It starts
//!    again as after a restart: it rejoins its group and resumes from its
//!    committed offsets, with its stores as they were.
//!
//! Nothing is lost in between: a record written after the ends were read
//! moves an end past them, and one written before was polled during
//! [`CONFIRM`] (the consumer is caught up, and its fetch answers as soon
//! as data arrives). What a wake costs is the start of a pipeline: a group
//! join, tens of milliseconds on an idle broker plus the broker's
//! `group.initial.rebalance.delay.ms` (Kafka's default 3 s).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};

use crate::kafka::client_config::ClientSettings;
use crate::topology::Topology;

/// How long a pipeline goes on polling, after reading its topics' ends,
/// before it parks.
pub(super) const CONFIRM: Duration = Duration::from_secs(2);

/// How often the watcher reads the partition counts of the parked
/// pipelines' topics (the ends it reads every check).
const RESIZE_CHECK_EVERY: Duration = Duration::from_secs(30);

/// How long a request to the brokers may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// When a pipeline parks, and who wakes it.
#[derive(Clone)]
pub struct ParkPolicy {
    /// Without input for this long, it parks.
    pub after: Duration,
    /// Wakes it.
    pub watcher: Arc<Watcher>,
}

impl std::fmt::Debug for ParkPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParkPolicy")
            .field("after", &self.after)
            .finish_non_exhaustive()
    }
}

impl ParkPolicy {
    /// How long `topology` must go without input before it parks: at
    /// least `after`, and past every `close.idle.after` (with two of its
    /// ticks to spare), so that idle windows close before it parks.
    pub(super) fn after_for(&self, topology: &Topology) -> Duration {
        let idle = topology.idle_close().map_or(Duration::ZERO, |ms| {
            let ms = ms.max(0) as u64;
            Duration::from_millis(ms + 2 * (ms / 4).clamp(10, 1_000))
        });
        self.after.max(idle)
    }
}

/// Where each topic a pipeline reads ended, as a `read_committed`
/// consumer sees it (the last stable offset), and how many partitions it
/// had.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ends {
    /// (topic, partition) → end offset.
    pub offsets: HashMap<(String, i32), i64>,
    /// topic → partitions.
    pub partitions: HashMap<String, usize>,
}

impl Ends {
    /// Whether `now` shows something the pipeline has not seen: a record
    /// past an end, or a topic with a different number of partitions.
    /// What `now` lacks (a failed request) wakes nothing.
    pub fn moved(&self, now: &Ends) -> bool {
        let resized =
            (self.partitions.iter()).any(|(t, n)| now.partitions.get(t).is_some_and(|m| m != n));
        let grown =
            (self.offsets.iter()).any(|(tp, end)| now.offsets.get(tp).is_some_and(|e| e > end));
        resized || grown
    }
}

/// The topics `topology` reads (sources, tables, global tables and its
/// repartition topics), each once.
pub(super) fn watched_topics(topology: &Topology) -> Vec<String> {
    let mut topics: Vec<String> = topology.sources.iter().map(|s| s.topic.clone()).collect();
    topics.sort();
    topics.dedup();
    topics
}

/// One Kafka client for the whole host, watching the topics of the parked
/// pipelines; see the module's documentation.
pub struct Watcher {
    client: BaseConsumer,
    parked: Mutex<HashMap<u64, Parked>>,
    next_id: Mutex<u64>,
}

struct Parked {
    name: String,
    topics: Vec<String>,
    ends: Ends,
    wake: Sender<()>,
}

/// A parked pipeline's registration: [`Parking::woken`] answers once its
/// topics moved. Dropping it (a pipeline woken otherwise) unregisters it.
pub struct Parking {
    id: u64,
    watcher: Arc<Watcher>,
    woken: Receiver<()>,
}

impl Parking {
    /// Ready once the watcher saw the pipeline's topics move.
    pub fn woken(&self) -> &Receiver<()> {
        &self.woken
    }
}

impl Drop for Parking {
    fn drop(&mut self) {
        self.watcher.lock().remove(&self.id);
    }
}

impl Watcher {
    /// A watcher with a client of `settings` (the brokers and the
    /// operator's properties) that checks the parked pipelines' topics
    /// every `every`, on a thread of its own that ends with the watcher.
    pub fn start(settings: &ClientSettings, every: Duration) -> Result<Arc<Watcher>, KafkaError> {
        let mut config = settings.plain();
        config.set("client.id", "sluice-park-watcher");
        let client: BaseConsumer = config.create()?;
        let watcher = Arc::new(Watcher {
            client,
            parked: Mutex::new(HashMap::new()),
            next_id: Mutex::new(0),
        });
        let weak = Arc::downgrade(&watcher);
        std::thread::Builder::new()
            .name("sluice-park-watch".into())
            .spawn(move || watch(&weak, every))
            .map_err(|e| KafkaError::ClientCreation(format!("the park watcher's thread: {e}")))?;
        Ok(watcher)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Parked>> {
        self.parked.lock().expect("not poisoned")
    }

    /// The pipelines parked now.
    pub fn parked(&self) -> usize {
        self.lock().len()
    }

    /// The ends of `topics` now: their partitions (a metadata request
    /// per topic, or one for all topics when there are many), and the
    /// ends of all their partitions in one request. A topic the brokers
    /// do not know is left out.
    pub fn ends(&self, topics: &[String]) -> Result<Ends, KafkaError> {
        let partitions = self.partitions(topics)?;
        let offsets = self.offsets(
            (partitions.iter()).flat_map(|(t, ps)| ps.iter().map(move |&p| (t.as_str(), p))),
        )?;
        Ok(Ends {
            offsets,
            partitions: (partitions.into_iter())
                .map(|(t, ps)| (t, ps.len()))
                .collect(),
        })
    }

    /// The partitions of each of `topics` (sorted) the brokers know.
    fn partitions(&self, topics: &[String]) -> Result<HashMap<String, Vec<i32>>, KafkaError> {
        let mut found = HashMap::new();
        let mut add = |t: &rdkafka::metadata::MetadataTopic| {
            if t.error().is_none()
                && topics
                    .binary_search_by(|w| w.as_str().cmp(t.name()))
                    .is_ok()
            {
                let ids = t.partitions().iter().map(|p| p.id()).collect();
                found.insert(t.name().to_owned(), ids);
            }
        };
        if topics.len() <= 8 {
            for topic in topics {
                let metadata = self.client.fetch_metadata(Some(topic), REQUEST_TIMEOUT)?;
                metadata.topics().iter().for_each(&mut add);
            }
        } else {
            let metadata = self.client.fetch_metadata(None, REQUEST_TIMEOUT)?;
            metadata.topics().iter().for_each(&mut add);
        }
        Ok(found)
    }

    /// The end offsets of `partitions`, in one request; a partition the
    /// brokers answer with an error is left out.
    fn offsets<'t>(
        &self,
        partitions: impl Iterator<Item = (&'t str, i32)>,
    ) -> Result<HashMap<(String, i32), i64>, KafkaError> {
        let mut list = TopicPartitionList::new();
        for (t, p) in partitions {
            list.add_partition_offset(t, p, Offset::End)?;
        }
        let mut ends = HashMap::new();
        if list.count() == 0 {
            return Ok(ends);
        }
        let answered = self.client.offsets_for_times(list, REQUEST_TIMEOUT)?;
        for e in answered.elements() {
            if e.error().is_ok()
                && let Offset::Offset(end) = e.offset()
            {
                ends.insert((e.topic().to_owned(), e.partition()), end);
            }
        }
        Ok(ends)
    }

    /// Registers pipeline `name`, parked with its `topics` (sorted) at
    /// `ends`.
    pub fn park(self: &Arc<Self>, name: &str, topics: Vec<String>, ends: Ends) -> Parking {
        let (wake, woken) = crossbeam_channel::bounded(1);
        let id = {
            let mut next = self.next_id.lock().expect("not poisoned");
            *next += 1;
            *next
        };
        self.lock().insert(
            id,
            Parked {
                name: name.to_owned(),
                topics,
                ends,
                wake,
            },
        );
        Parking {
            id,
            watcher: Arc::clone(self),
            woken,
        }
    }

    /// One check: reads the ends of every parked pipeline's partitions
    /// (one request) and, with `resized`, their topics' partition counts;
    /// wakes those whose topics moved.
    fn check(&self, resized: bool) -> Result<(), KafkaError> {
        let (mut topics, partitions): (Vec<String>, Vec<(String, i32)>) = {
            let parked = self.lock();
            let topics = parked.values().flat_map(|p| p.topics.iter().cloned());
            let partitions = parked.values().flat_map(|p| p.ends.offsets.keys().cloned());
            (topics.collect(), partitions.collect())
        };
        if topics.is_empty() {
            return Ok(());
        }
        topics.sort();
        topics.dedup();
        let offsets = self.offsets(partitions.iter().map(|(t, p)| (t.as_str(), *p)))?;
        let partitions = if resized {
            (self.partitions(&topics)?.into_iter())
                .map(|(t, ps)| (t, ps.len()))
                .collect()
        } else {
            HashMap::new()
        };
        let now = Ends {
            offsets,
            partitions,
        };
        self.lock().retain(|_, p| {
            if !p.ends.moved(&now) {
                return true;
            }
            tracing::info!(pipeline = %p.name, "input arrived: waking");
            let _ = p.wake.try_send(());
            false
        });
        Ok(())
    }
}

/// The watcher's thread: a check every `every`, until the watcher is
/// dropped. A failed check is retried at the next; it is logged once a
/// minute at most.
fn watch(watcher: &Weak<Watcher>, every: Duration) {
    let mut last_warning: Option<Instant> = None;
    let mut last_resize_check = Instant::now();
    loop {
        std::thread::sleep(every);
        let Some(watcher) = watcher.upgrade() else {
            return;
        };
        let resized = last_resize_check.elapsed() >= RESIZE_CHECK_EVERY;
        if resized {
            last_resize_check = Instant::now();
        }
        if let Err(e) = watcher.check(resized)
            && last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(60))
        {
            last_warning = Some(Instant::now());
            tracing::warn!(
                parked = watcher.parked(),
                "cannot read the parked pipelines' topics (retrying every {} ms): {e}",
                every.as_millis()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ends(offsets: &[(&str, i32, i64)], partitions: &[(&str, usize)]) -> Ends {
        Ends {
            offsets: (offsets.iter())
                .map(|&(t, p, o)| ((t.to_owned(), p), o))
                .collect(),
            partitions: (partitions.iter())
                .map(|&(t, n)| (t.to_owned(), n))
                .collect(),
        }
    }

    #[test]
    fn a_record_past_an_end_or_a_new_partition_moves_the_ends() {
        let parked = ends(&[("in", 0, 5), ("in", 1, 0)], &[("in", 2)]);
        assert!(!parked.moved(&parked.clone()));
        assert!(parked.moved(&ends(&[("in", 0, 5), ("in", 1, 1)], &[("in", 2)])));
        assert!(parked.moved(&ends(&[("in", 0, 5), ("in", 1, 0)], &[("in", 3)])));
        // What a failed request leaves out wakes nothing; an end that
        // went back (a topic deleted and made again) is not new input.
        assert!(!parked.moved(&ends(&[("in", 0, 5)], &[])));
        assert!(!parked.moved(&ends(&[("in", 0, 4), ("in", 1, 0)], &[("in", 2)])));
    }
}
