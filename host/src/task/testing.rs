//! A task test driver: the tasks of one partition number run from a
//! pipeline's text, with no Kafka and no wall clock.
//!
//! [`Driver`] builds the topology from the text, opens the stores of its
//! tasks (one per sub-topology) in memory (or in RocksDB, if asked), and
//! gives the tasks a [`ManualClock`]. What reaches a repartition topic is
//! read back at once by the task of the sub-topology that reads it (on the
//! same partition number: the driver plays a one-partition pipeline). A test pushes records to source topics (offsets are
//! numbered per topic-partition), runs them as call batches, closes idle
//! windows, moves the clock, and reads back what reached each sink topic,
//! the dead letters with their headers, the counts, and the stores.
//! Output capture can play a broker that refuses records (a rule given to
//! [`Driver::refuse_with`]).
//!
//! ```
//! use sluice::task::testing::Driver;
//!
//! let mut d = Driver::from_toml(r#"
//!     application.id = "app"
//!     [sources.clicks]
//!     [steps.counts]
//!     aggregate = "count"
//!     inputs = ["clicks"]
//!     [sinks.out]
//!     inputs = ["counts"]
//! "#)?;
//! d.push("clicks", Some(b"a"), Some(b"{}"), Some(0));
//! d.push("clicks", Some(b"a"), Some(b"{}"), Some(1));
//! let counts = d.process()?;
//! assert_eq!(counts.records_in, 2);
//! let counted: Vec<_> = d.outputs("out").iter().map(|r| r.value.clone()).collect();
//! assert_eq!(counted, [Some("1".into()), Some("2".into())]);
//! assert_eq!(d.get("counts", b"a")?, Some(b"2".to_vec()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The unit tests of `task/` run on it; the public `sluice test` command
//! is meant to stand on it too.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::{Counts, InputRecord, Output, Task, TaskId};
use crate::error::{RunError, StateError};
use crate::kafka::topic_limits::Refusal;
use crate::plugins::Plugins;
use crate::record::{Origin, Record, RecordRef};
use crate::state::settings::StoreKind;
use crate::state::store::Entry;
use crate::state::task_state::StateContext;
use crate::time::{ManualClock, TimestampKind};
use crate::topology::Topology;
use crate::topology::pipeline_file::PipelineFile;

/// Where the pipeline text is said to come from: relative plugin paths in
/// it would be resolved against `/p`, so a text whose plugins are loaded
/// ([`Setup::plugins`]) names them by absolute path.
const PIPELINE_FILE: &str = "/p/pipeline.toml";

/// A refusal rule: why the broker would refuse a record sent to a topic.
type RefusalRule = Box<dyn Fn(&str, RecordRef<'_>) -> Option<Refusal>>;

/// A [`Driver`] before it starts: its topology, and the choices that
/// differ from [`Driver::from_toml`]'s defaults (in-memory stores, no
/// plugins, partition 0, the clock at 0).
pub struct Setup {
    topology: Topology,
    plugins: Option<Plugins>,
    partition: i32,
    now: i64,
}

impl Setup {
    /// The topology, for loading its plugins ([`crate::plugins::load_plugins`]).
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Runs the steps and extractors with these loaded plugins.
    pub fn plugins(mut self, plugins: Plugins) -> Setup {
        self.plugins = Some(plugins);
        self
    }

    /// Keeps the stores in RocksDB under `dir` rather than in memory.
    pub fn rocksdb(mut self, dir: &Path) -> Setup {
        self.topology.state.kind = StoreKind::Rocksdb;
        self.topology.state.dir = dir.to_owned();
        self
    }

    /// Runs the task of `partition`: pushed records come from it.
    pub fn partition(mut self, partition: i32) -> Setup {
        self.partition = partition;
        self
    }

    /// Starts the manual clock at `now` (UTC ms).
    pub fn clock_at(mut self, now: i64) -> Setup {
        self.now = now;
        self
    }

    /// Creates the task: instantiates its plugins and opens its stores.
    pub fn start(self) -> Result<Driver, RunError> {
        let topology = Arc::new(self.topology);
        let plugins = self.plugins.unwrap_or_else(|| Plugins::none(&topology));
        let state = StateContext::new(&topology.application_id, topology.state.clone(), None)
            .with_global_tables(topology.global_specs());
        let clock = ManualClock::at(self.now);
        let tasks = new_tasks(self.partition, &topology, &plugins, &state, &clock)?;
        Ok(Driver {
            topology,
            plugins,
            state,
            clock,
            tasks,
            pending: Vec::new(),
            next_offsets: HashMap::new(),
            out: Capture::default(),
            counts: Counts::default(),
        })
    }
}

/// The tasks of one partition number, driven by hand: see the [module
/// docs](self).
pub struct Driver {
    topology: Arc<Topology>,
    plugins: Plugins,
    state: StateContext,
    clock: ManualClock,
    /// One per sub-topology, in order.
    tasks: Vec<Task>,
    /// Pushed records not processed yet: the next call batch.
    pending: Vec<InputRecord>,
    /// The next offset of each (topic, partition) records were pushed to.
    next_offsets: HashMap<(Arc<str>, i32), i64>,
    out: Capture,
    counts: Counts,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("tasks", &self.tasks)
            .field("pending", &self.pending.len())
            .field("sent", &self.out.sent.len())
            .field("counts", &self.counts)
            .finish_non_exhaustive()
    }
}

impl Driver {
    /// A driver of `text`'s pipeline with the defaults: in-memory stores
    /// (whatever `[state]` says), no plugins, partition 0, the clock at 0.
    /// A pipeline the text does not make is a [`RunError::Pipeline`].
    pub fn from_toml(text: &str) -> Result<Driver, RunError> {
        Driver::setup(text)?.start()
    }

    /// `text`'s pipeline, to be set up otherwise than by default before
    /// [`Setup::start`].
    pub fn setup(text: &str) -> Result<Setup, RunError> {
        let path = Path::new(PIPELINE_FILE);
        let mut topology = Topology::from_file(path, PipelineFile::parse(path, text)?)?;
        topology.state.kind = StoreKind::Memory;
        Ok(Setup {
            topology,
            plugins: None,
            partition: 0,
            now: 0,
        })
    }

    /// The task of the first sub-topology, for what the driver does not
    /// wrap (its stores' commit phases, stream time, plugin swaps).
    pub fn task(&mut self) -> &mut Task {
        &mut self.tasks[0]
    }

    /// The task of sub-topology `n`.
    pub fn task_of(&mut self, n: usize) -> &mut Task {
        &mut self.tasks[n]
    }

    /// The partition number the driver runs.
    fn partition(&self) -> i32 {
        self.tasks[0].id().partition
    }

    /// Queues a record for source topic `topic`, at the next offset of
    /// the task's partition, with a producer's timestamp.
    pub fn push(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp: Option<i64>,
    ) {
        self.push_record(topic, Record::new(key, value, timestamp));
    }

    /// [`Driver::push`] for a record built by the caller (with headers).
    /// A record for a repartition topic gives up its origin header, as
    /// one polled from Kafka does.
    pub fn push_record(&mut self, topic: &str, mut record: Record) {
        let repartition =
            (self.topology.sources.iter()).any(|s| s.topic == topic && s.repartition.is_some());
        let topic: Arc<str> = Arc::from(topic);
        let partition = self.partition();
        let offset = *self
            .next_offsets
            .get(&(Arc::clone(&topic), partition))
            .unwrap_or(&0);
        let origin =
            repartition.then(|| Origin::of_repartitioned(&mut record, (&topic, partition, offset)));
        self.push_input(InputRecord {
            topic,
            partition,
            offset,
            timestamp_kind: TimestampKind::CreateTime,
            record,
            origin,
        });
    }

    /// Queues a record as given (any partition, offset or timestamp
    /// kind); later pushes to its topic-partition follow its offset.
    pub fn push_input(&mut self, input: InputRecord) {
        self.next_offsets.insert(
            (Arc::clone(&input.topic), input.partition),
            input.offset + 1,
        );
        self.pending.push(input);
    }

    /// Numbers the next record pushed to `topic` (the task's partition)
    /// `offset`: to start elsewhere than 0, or to push records again.
    pub fn seek(&mut self, topic: &str, offset: i64) {
        let partition = self.partition();
        self.next_offsets
            .insert((Arc::from(topic), partition), offset);
    }

    /// Runs the queued records through their tasks, a call batch per
    /// task, then what they sent to repartition topics through the tasks
    /// that read those, until nothing is left. Their outputs and counts
    /// are kept; the counts of all those batches are returned, or the
    /// error that stopped one.
    pub fn process(&mut self) -> Result<Counts, RunError> {
        let mut total = Counts::default();
        while !self.pending.is_empty() {
            let mut pending = std::mem::take(&mut self.pending);
            let mut unapplied = 0;
            // A global table's records go to the instance's copy (as its
            // reader applies them between batches), before the batch.
            pending.retain(|r| {
                let global = self.state.globals.iter().any(|t| *t.topic == *r.topic);
                if global {
                    let applied = (self.state.globals)
                        .apply(&r.topic, r.record.key.as_deref(), r.record.value.as_deref())
                        .expect("an in-memory global table takes a write");
                    if applied.is_err() {
                        unapplied += 1;
                    }
                }
                !global
            });
            total.rejected += unapplied;
            self.counts.rejected += unapplied;
            let mut fed: Vec<(String, Record)> = Vec::new();
            for (n, task) in self.tasks.iter_mut().enumerate() {
                let batch: Vec<InputRecord> = (pending.iter())
                    .filter(|r| self.topology.subtopology_of_topic(&r.topic).unwrap_or(0) == n)
                    .cloned()
                    .collect();
                if batch.is_empty() {
                    continue;
                }
                let sent_before = self.out.sent.len();
                let counts = task.process(&batch, &mut self.out)?;
                self.counts.add(&counts);
                total.add(&counts);
                fed.extend(
                    (self.out.sent[sent_before..].iter())
                        .filter(|(topic, _)| self.topology.subtopology_of_topic(topic).is_some())
                        .cloned(),
                );
            }
            for (topic, record) in fed {
                self.push_record(&topic, record);
            }
        }
        Ok(total)
    }

    /// [`Task::close_idle`]: closes every open window once
    /// `close.idle.after` has passed on the clock since the last batch
    /// (or at once, with `force`).
    pub fn close_idle(&mut self, force: bool) -> Result<Option<Counts>, RunError> {
        let mut any: Option<Counts> = None;
        for task in &mut self.tasks {
            if let Some(c) = task.close_idle(force, &mut self.out)? {
                self.counts.add(&c);
                any.get_or_insert_with(Counts::default).add(&c);
            }
        }
        Ok(any)
    }

    /// [`Task::flush_caches`] of every task, as a commit does first: what
    /// the record caches held goes to the sinks.
    pub fn flush_caches(&mut self) -> Result<Counts, RunError> {
        let mut total = Counts::default();
        for task in &mut self.tasks {
            if let Some(c) = task.flush_caches(&mut self.out)? {
                self.counts.add(&c);
                total.add(&c);
            }
        }
        Ok(total)
    }

    /// Moves the task's clock forward by `ms`.
    pub fn advance(&self, ms: i64) {
        self.clock.advance(ms);
    }

    /// Plays a broker that refuses what `rule` says it would: the task
    /// asks before sending (the `refused` policy), and a refused record
    /// sent all the same fails the batch with [`RunError::Delivery`].
    pub fn refuse_with(&mut self, rule: impl Fn(&str, RecordRef<'_>) -> Option<Refusal> + 'static) {
        self.out.refusal = Some(Box::new(rule));
    }

    /// Everything sent, sink records and dead letters, in order.
    pub fn sent(&self) -> &[(String, Record)] {
        &self.out.sent
    }

    /// Takes everything sent so far (then [`Driver::sent`] is empty).
    pub fn take_sent(&mut self) -> Vec<(String, Record)> {
        std::mem::take(&mut self.out.sent)
    }

    /// The records sent to `topic`, in order.
    pub fn outputs(&self, topic: &str) -> Vec<&Record> {
        self.out
            .sent
            .iter()
            .filter(|(t, _)| t == topic)
            .map(|(_, r)| r)
            .collect()
    }

    /// The records sent to the dead-letter topic, in order.
    pub fn dead_letters(&self) -> Vec<&Record> {
        self.outputs(&self.topology.errors.dlq_topic)
    }

    /// The counts of every batch and idle close so far.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// The value of `key` in store `store`, as the task sees it.
    ///
    /// # Panics
    /// If the pipeline has no store `store`.
    pub fn get(&mut self, store: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        let (stores, i) = self.store(store);
        stores.get(i, key)
    }

    /// Every entry of store `store`, in key order, as the task sees it.
    ///
    /// # Panics
    /// If the pipeline has no store `store`.
    pub fn entries(&mut self, store: &str) -> Result<Vec<Entry>, StateError> {
        let (stores, i) = self.store(store);
        stores.buffer(i).range(None, None)
    }

    fn store(&mut self, name: &str) -> (&mut crate::state::task_state::TaskStores, usize) {
        let n = (self.topology.subtopology_of_store(name))
            .unwrap_or_else(|| panic!("the pipeline has no store `{name}`"));
        let stores = self.tasks[n].stores().expect("the pipeline keeps no state");
        let i = stores
            .index(name)
            .unwrap_or_else(|| panic!("the pipeline has no store `{name}`"));
        (stores, i)
    }

    /// A new task in the old one's place, as after a crash or a
    /// rebalance: its stores hold what the old task's commits persisted
    /// (nothing, in memory), its stream time starts afresh. The clock,
    /// offsets, outputs and counts carry on.
    pub fn restart(self) -> Result<Driver, RunError> {
        let Driver {
            topology,
            plugins,
            state,
            clock,
            tasks,
            pending,
            next_offsets,
            out,
            counts,
        } = self;
        let partition = tasks[0].id().partition;
        // A RocksDB store opens once at a time.
        drop(tasks);
        let tasks = new_tasks(partition, &topology, &plugins, &state, &clock)?;
        Ok(Driver {
            topology,
            plugins,
            state,
            clock,
            tasks,
            pending,
            next_offsets,
            out,
            counts,
        })
    }
}

/// The tasks of `partition`, one per sub-topology.
fn new_tasks(
    partition: i32,
    topology: &Arc<Topology>,
    plugins: &Plugins,
    state: &StateContext,
    clock: &ManualClock,
) -> Result<Vec<Task>, RunError> {
    (0..topology.subtopologies.len())
        .map(|subtopology| {
            let id = TaskId {
                subtopology,
                partition,
            };
            let mut task = Task::new(id, Arc::clone(topology), plugins, Some(state))?;
            task.set_clock(Arc::new(clock.clone()));
            Ok(task)
        })
        .collect()
}

/// What the task sent, and the broker's refusal rule.
#[derive(Default)]
struct Capture {
    sent: Vec<(String, Record)>,
    refusal: Option<RefusalRule>,
}

impl Output for Capture {
    fn send(&mut self, topic: &str, record: RecordRef<'_>) -> Result<(), RunError> {
        // What a broker would do: refuse it for the whole request.
        if let Some(refusal) = self.refusal(topic, record) {
            return Err(RunError::Delivery(format!("the broker refused: {refusal}")));
        }
        self.sent.push((topic.to_owned(), record.to_owned_record()));
        Ok(())
    }

    fn refusal(&self, topic: &str, record: RecordRef<'_>) -> Option<Refusal> {
        self.refusal.as_ref().and_then(|rule| rule(topic, record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COUNT: &str = r#"
        application.id = "app"
        [sources.clicks]
        [sources.views]
        [steps.counts]
        aggregate = "count"
        inputs = ["clicks", "views"]
        [sinks.out]
        inputs = ["counts"]
    "#;

    fn text(r: &Record) -> (String, String) {
        let s = |b: &Option<bytes::Bytes>| {
            String::from_utf8_lossy(b.as_deref().unwrap_or(b"null")).into_owned()
        };
        (s(&r.key), s(&r.value))
    }

    #[test]
    fn offsets_are_numbered_per_topic_and_follow_seeks_and_given_inputs() {
        let mut d = Driver::from_toml(COUNT).unwrap();
        d.push("clicks", Some(b"a"), None, Some(1));
        d.push("views", Some(b"a"), None, Some(1));
        d.push("clicks", Some(b"a"), None, Some(1));
        d.seek("views", 10);
        d.push("views", Some(b"a"), None, Some(1));
        d.push_input(InputRecord {
            topic: Arc::from("clicks"),
            partition: 0,
            offset: 40,
            timestamp_kind: TimestampKind::LogAppendTime,
            record: Record::new(Some(b"a"), None, Some(1)),
            origin: None,
        });
        d.push("clicks", Some(b"a"), None, Some(1));
        let at: Vec<(&str, i32, i64)> = d
            .pending
            .iter()
            .map(|r| (&*r.topic, r.partition, r.offset))
            .collect();
        assert_eq!(
            at,
            [
                ("clicks", 0, 0),
                ("views", 0, 0),
                ("clicks", 0, 1),
                ("views", 0, 10),
                ("clicks", 0, 40),
                ("clicks", 0, 41)
            ]
        );
        assert_eq!(d.process().unwrap().records_in, 6);
        assert!(d.pending.is_empty(), "one call batch took them all");
    }

    #[test]
    fn a_chosen_partition_numbers_the_task_and_its_records() {
        let mut d = Driver::setup(COUNT).unwrap().partition(3).start().unwrap();
        assert_eq!(d.task().id(), TaskId::first(3));
        d.push("clicks", Some(b"a"), None, Some(1));
        assert_eq!((d.pending[0].partition, d.pending[0].offset), (3, 0));
    }

    #[test]
    fn outputs_counts_and_stores_are_visible() {
        let mut d = Driver::from_toml(COUNT).unwrap();
        for key in ["a", "b", "a"] {
            d.push("clicks", Some(key.as_bytes()), Some(b"{}"), Some(5));
        }
        d.push("views", None, Some(b"{}"), Some(6));
        d.process().unwrap();
        d.push("views", Some(b"b"), Some(b"{}"), Some(7));
        let batch = d.process().unwrap();
        assert_eq!(batch.records_in, 1);
        let out: Vec<_> = d.outputs("out").into_iter().map(text).collect();
        let kv = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(
            out,
            [kv("a", "1"), kv("b", "1"), kv("a", "2"), kv("b", "2")]
        );
        let letters = d.dead_letters();
        assert_eq!(letters.len(), 1, "the null key");
        assert_eq!(letters[0].header("sluice.offset"), Some(&b"0"[..]));
        assert_eq!(letters[0].header("sluice.topic"), Some(&b"views"[..]));
        let c = d.counts();
        assert_eq!((c.records_in, c.records_out, c.rejected), (5, 4, 1));
        assert_eq!(d.get("counts", b"a").unwrap(), Some(b"2".to_vec()));
        assert_eq!(d.get("counts", b"z").unwrap(), None);
        assert_eq!(
            d.entries("counts").unwrap(),
            [
                (b"a".to_vec(), b"2".to_vec()),
                (b"b".to_vec(), b"2".to_vec())
            ]
        );
        assert_eq!(d.take_sent().len(), 5);
        assert!(d.sent().is_empty());
    }

    #[test]
    fn advancing_the_clock_closes_idle_windows() {
        let mut d = Driver::setup(
            r#"
            application.id = "app"
            [sources.clicks]
            [steps.counts]
            aggregate = "count"
            inputs = ["clicks"]
            window = { type = "tumbling", size = 100 }
            emit = "on-window-close"
            close.idle.after = "10s"
            [sinks.out]
            inputs = ["counts"]
        "#,
        )
        .unwrap()
        .clock_at(5_000)
        .start()
        .unwrap();
        d.push("clicks", Some(b"k"), Some(b"v"), Some(30));
        d.process().unwrap();
        d.advance(9_999);
        assert_eq!(d.close_idle(false).unwrap(), None);
        d.advance(1);
        assert!(d.close_idle(false).unwrap().is_some());
        let out: Vec<_> = d.outputs("out").into_iter().map(text).collect();
        assert_eq!(out, [("k@0/100".to_owned(), "1".to_owned())]);
        assert_eq!(d.counts().records_out, 1, "the idle close's counts add up");
    }

    #[test]
    fn a_refusal_rule_refuses_records_and_a_refused_send_fails() {
        let text = r#"
            application.id = "app"
            [errors]
            refused = "skip"
            [sources.clicks]
            [sinks.out]
            inputs = ["clicks"]
        "#;
        let mut d = Driver::from_toml(text).unwrap();
        let big = |topic: &str, r: RecordRef<'_>| {
            let size = r.value.map_or(0, |v| v.len() as u64);
            (size > 3).then(|| Refusal::TooLarge {
                topic: topic.to_owned(),
                size,
                limit: 3,
                setting: "max.message.bytes",
            })
        };
        d.refuse_with(big);
        d.push("clicks", Some(b"a"), Some(b"abcd"), Some(1));
        d.push("clicks", Some(b"b"), Some(b"abc"), Some(1));
        let counts = d.process().unwrap();
        assert_eq!((counts.refused, counts.records_out), (1, 1));
        assert_eq!(d.outputs("out").len(), 1);
        let err = d
            .out
            .send("out", Record::new(None, Some(b"abcd"), None).as_ref());
        assert!(matches!(err, Err(RunError::Delivery(_))), "{err:?}");
    }

    #[test]
    fn memory_is_the_default_store_and_a_restart_starts_it_empty() {
        let text = COUNT.replace(
            "[sources.clicks]",
            "[state]\nstore = \"rocksdb\"\n[sources.clicks]",
        );
        let mut d = Driver::from_toml(&text).unwrap();
        d.push("clicks", Some(b"a"), Some(b"{}"), Some(1));
        d.process().unwrap();
        let mut d = d.restart().unwrap();
        assert_eq!(
            d.get("counts", b"a").unwrap(),
            None,
            "nothing was persisted"
        );
        d.push("clicks", Some(b"a"), Some(b"{}"), Some(2));
        d.process().unwrap();
        assert_eq!(d.outputs("out").len(), 2, "outputs carry on");
        assert_eq!(d.pending.len(), 0);
        assert_eq!(d.next_offsets[&(Arc::from("clicks"), 0)], 2);
    }

    #[test]
    fn a_bad_pipeline_text_is_a_pipeline_error() {
        let err = Driver::from_toml("application.id = 3").unwrap_err();
        assert!(matches!(err, RunError::Pipeline(_)), "{err}");
    }
}
