//! Topologies: what a pipeline file declares, validated into a DAG.
//!
//! - [`pipeline_file`]: the TOML format, as written.
//! - [`Topology`]: sources, steps in topological order, sinks, policies,
//!   and what the rest of the host asks of them (here and in `graph`).
//! - `validate`: [`Topology::load`] and [`Topology::from_file`], which turn
//!   a pipeline file into a topology in named steps, a file each.
//! - `graph`: the order of the steps, and who reads each node.
//! - [`render`]: a picture of the topology (text or Graphviz DOT).

mod graph;
pub mod pipeline_file;
pub mod render;
mod subtopology;
mod validate;

pub use validate::repartition::topic as repartition_topic;

use std::path::PathBuf;
use std::time::Duration;

pub use pipeline_file::{EmitMode, ErrorPolicy, KeyPolicy, LatePolicy, StoreKind, TableFormat};

pub use crate::plugin::reference::PluginRef;
pub use crate::state::settings::StateSettings;
use crate::time::{Extractor, InvalidTimestamp};
use crate::window::Windows;

/// A node that can feed another: a source topic or a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeId {
    /// Index into [`Topology::sources`].
    Source(usize),
    /// Index into [`Topology::steps`].
    Step(usize),
}

/// A source topic.
#[derive(Debug, Clone)]
pub struct Source {
    /// Node name.
    pub name: String,
    /// Kafka topic.
    pub topic: String,
    /// Partitions `sluice dev` creates the topic with.
    pub partitions: i32,
    /// Set when the topic is read as a table.
    pub table: Option<Table>,
    /// Where its records' event time comes from.
    pub timestamp: Extractor,
    /// Passed to a timestamp-extractor plugin's `init`.
    pub timestamp_config: Vec<(String, String)>,
    /// What to do with a record without a valid event time.
    pub invalid_timestamp: InvalidTimestamp,
    /// Set for a repartition topic's source: the topic is the pipeline's
    /// own, written by the sink of the same name.
    pub repartition: Option<Repartition>,
}

impl Source {
    /// Whether it is a global table (`global = true`): read whole by every
    /// instance, in no sub-topology, and looked up only by joins.
    pub fn is_global(&self) -> bool {
        self.table.as_ref().is_some_and(|t| t.global)
    }
}

/// A repartition topic (`<application.id>-<name>-repartition`): written by
/// an internal sink upstream, read by an internal source downstream, so
/// that records reach the task of their new key. It is what splits a
/// topology into sub-topologies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repartition {
    /// Its partition count when declared (`partitions`); else the largest
    /// partition count of the sub-topology that writes it, found at start.
    pub partitions: Option<i32>,
    /// False when Sluice inserted it before a stateful step that reads
    /// records whose keys may have changed; true for a `repartition` step.
    pub explicit: bool,
}

/// A source read as a table: the latest value per key, in a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// The key-value store it is materialized into.
    pub store: String,
    /// How its records are written.
    pub format: TableFormat,
    /// `global = true`: copied in full to every task of an instance (all
    /// its partitions, read apart from the consumer group), restored
    /// before processing starts, and joined by a key taken from the
    /// stream record; it is in no sub-topology and needs no
    /// co-partitioning (`state/global_table.rs`).
    pub global: bool,
    /// `history`: a versioned table, which keeps each key's values of
    /// the last `history` ms of its time, so that a stream–table join
    /// looks a key up as of the stream record's time (`state/versioned.rs`).
    pub history: Option<i64>,
}

/// A stream–table join's grace buffer (`join-grace`): each stream record
/// waits until the join's stream time is `grace` past its own, and the
/// waiting records are joined in time order, so that a table update that
/// arrives up to `grace` late still meets the stream records before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamGrace {
    /// How long a stream record waits, in stream time (ms, at least 0).
    pub grace: i64,
    /// The store that keeps the waiting records.
    pub store: String,
    /// `close.idle.after`: after this long without input (wall clock,
    /// ms), a task joins every record still waiting.
    pub idle_close: Option<i64>,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// Runs a record-processor plugin on each record.
    Process(PluginRef),
    /// Folds records by key into `store`, and emits each updated aggregate.
    Aggregate {
        /// How a record changes an aggregate.
        logic: Aggregation,
        /// The key-value store that holds the aggregates.
        store: String,
        /// Set to aggregate per time window of each key.
        window: Option<Windowing>,
    },
    /// Joins each record with a table.
    Join(Join),
    /// A part of a foreign-key join that Sluice adds next to the join step
    /// (`operator/join/foreign_key/`): it calls no plugin.
    ForeignKey(ForeignKeyPart),
}

/// The parts of a foreign-key join `j` of tables L and R, besides `j`
/// itself (which reads L and the answers, and emits the results):
///
/// - `j-subscribe`, beside L: sends each change of a left row's foreign
///   key to `<application.id>-j-subscription`, keyed by the foreign key,
///   so it reaches the task of R's partition for it;
/// - `j-answer`, beside R: keeps the subscriptions and R's rows, and
///   answers each subscription (and each change of a subscribed row) to
///   `<application.id>-j-response`, keyed by the left key, so it reaches
///   `j` on the task of L's partition for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForeignKeyPart {
    /// `j-subscribe`.
    Subscribe {
        /// The join's kind: an inner join asks for no answer where none
        /// can be a result.
        kind: JoinKind,
        /// The left value's field that names the right key.
        field: Vec<String>,
        /// Its store: each left key's current foreign key.
        store: String,
    },
    /// `j-answer`.
    Answer {
        /// Its store: R's rows, and the subscriptions to each.
        store: String,
    },
}

/// A join step: its first input with a table, or with a second stream
/// within a time window (`operator/join/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Join {
    /// Inner, left or outer.
    pub kind: JoinKind,
    /// What makes one value of a matched pair.
    pub joiner: JoinerRef,
    /// What the first input is joined with.
    pub with: JoinWith,
}

/// The other side of a join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinWith {
    /// A table source: each stream record meets its value at that moment.
    Table {
        /// The table source (index into [`Topology::sources`]).
        table: usize,
        /// Its store.
        store: String,
        /// `wait-for-table`: the stream waits, at each assignment, until
        /// the table has caught up to where it ended then.
        wait_for_table: bool,
        /// The table's `history` when it is versioned: each stream record
        /// meets the table as of its own time.
        history: Option<i64>,
        /// `join-grace`: stream records wait, in time order, before they
        /// are joined (a versioned table only).
        grace: Option<StreamGrace>,
    },
    /// A global table: each stream record meets the value of the key its
    /// `key` gives, at that moment.
    Global {
        /// The global table source (index into [`Topology::sources`]).
        table: usize,
        /// Its store.
        store: String,
        /// Where the table's key comes from.
        key: GlobalKey,
    },
    /// Two tables, the step's inputs: each update of either meets the
    /// other's current value for its key, and the result is a table's
    /// changelog (a tombstone deletes a result).
    Tables {
        /// The store that keeps both sides' values (and their times).
        store: String,
    },
    /// A right table looked up by a foreign key, a field of each left
    /// row: the step reads the left table and the answers its
    /// [`ForeignKeyPart`]s send back (`inputs = [left, answers]`).
    ForeignKey {
        /// The right table source (index into [`Topology::sources`]).
        table: usize,
        /// `foreign-key = "a.b"`: the dotted path of the left value's JSON
        /// field that names the right key.
        field: Vec<String>,
        /// The store that keeps the left rows.
        store: String,
    },
    /// A second stream, the step's second input: records of both meet
    /// within a time window.
    Stream {
        /// The window and its grace.
        window: JoinWindow,
        /// The store that keeps both sides' records and the unmatched
        /// ones waiting for their window to close.
        store: String,
        /// `close.idle.after`: after this long without input (wall clock,
        /// ms), a task emits every unmatched record still waiting.
        idle_close: Option<i64>,
    },
}

/// The key a stream record looks a global table up by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GlobalKey {
    /// The record's own key (the default).
    RecordKey,
    /// `key-field = "a.b"`: a field of the JSON value, by its dotted path;
    /// a string is the key as it is, a number or a boolean its JSON text.
    Field(Vec<String>),
    /// `key-plugin = "<plugin>"`: a record-processor plugin, given the
    /// stream record; the key of the one record it returns is the table
    /// key (none returned: a null key). Kafka Streams' `KeyValueMapper`.
    Plugin(PluginRef),
}

/// `join-window = { before, after, grace }`: a left record at `t` meets
/// right records in `[t - before, t + after]`; an unmatched record of a
/// left or outer join is emitted once its window has closed, `grace`
/// after its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinWindow {
    /// How far back a left record looks, in ms.
    pub before: i64,
    /// How far ahead, in ms.
    pub after: i64,
    /// How long after the window's end a record may still come, in ms.
    pub grace: i64,
}

/// `join = "inner" | "left" | "outer"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    /// Matched pairs only.
    Inner,
    /// Every record of the first input; with none on the right when
    /// nothing matched it.
    Left,
    /// Every record of either input (stream–stream joins).
    Outer,
}

/// `joiner = "merge" | "pair" | <plugin>`: what a matched pair becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinerRef {
    /// Two JSON objects merged into one (the right side's fields win).
    Merge,
    /// `{"left": …, "right": …}`.
    Pair,
    /// A value-joiner plugin.
    Plugin(PluginRef),
}

/// A windowed aggregation's windows and emit rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windowing {
    /// The windows a record falls into (tumbling is hopping by its size).
    pub windows: Windows,
    /// How long after its end a window still takes records, in ms.
    pub grace: i64,
    /// When results are emitted.
    pub emit: EmitMode,
    /// What happens to a record too late for all its windows.
    pub late: LatePolicy,
    /// `close.idle.after`: after this long without input (wall clock, ms),
    /// a task closes every open window.
    pub idle_close: Option<i64>,
}

/// The logic of an aggregation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Aggregation {
    /// An aggregator plugin.
    Plugin(PluginRef),
    /// The built-in count: the aggregate is the number of records of the
    /// key, as decimal text.
    Count,
}

/// A store a processor declared, to use through the WIT `state` import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreUse {
    /// The store.
    pub name: String,
    /// False for a table's store: the table owns its rows.
    pub writable: bool,
}

/// A step.
#[derive(Debug, Clone)]
pub struct Step {
    /// Node name.
    pub name: String,
    /// What it does.
    pub op: Operation,
    /// The stores a processor uses through the `state` import.
    pub state: Vec<StoreUse>,
    /// Nodes that feed it.
    pub inputs: Vec<NodeId>,
    /// Passed to the plugin's `init`.
    pub config: Vec<(String, String)>,
    /// A processor declared `key = "kept"`: each output keeps its input's
    /// key (an output with another key fails its record as a trap).
    pub keeps_key: bool,
}

impl Step {
    /// The plugin it runs, if any (the built-in count and joiners have
    /// none).
    pub fn plugin(&self) -> Option<&PluginRef> {
        match &self.op {
            Operation::Process(p)
            | Operation::Aggregate {
                logic: Aggregation::Plugin(p),
                ..
            }
            | Operation::Join(Join {
                joiner: JoinerRef::Plugin(p),
                ..
            }) => Some(p),
            Operation::Aggregate {
                logic: Aggregation::Count,
                ..
            }
            | Operation::Join(_)
            | Operation::ForeignKey(_) => None,
        }
    }

    /// The plugins it names, to resolve or replace: its own (with no
    /// label) and a global join's key plugin (`key-plugin`). The built-ins
    /// name none.
    pub fn plugins_mut(&mut self) -> Vec<(Option<&'static str>, &mut PluginRef)> {
        let mut refs = Vec::new();
        match &mut self.op {
            Operation::Join(Join { joiner, with, .. }) => {
                if let JoinerRef::Plugin(p) = joiner {
                    refs.push((None, p));
                }
                if let JoinWith::Global {
                    key: GlobalKey::Plugin(p),
                    ..
                } = with
                {
                    refs.push((Some("key-plugin"), p));
                }
            }
            Operation::Process(p)
            | Operation::Aggregate {
                logic: Aggregation::Plugin(p),
                ..
            } => refs.push((None, p)),
            Operation::Aggregate { .. } | Operation::ForeignKey(_) => {}
        }
        refs
    }

    /// The key plugin of a join with a global table (`key-plugin`), if
    /// this is one with one.
    pub fn key_plugin(&self) -> Option<&PluginRef> {
        match &self.op {
            Operation::Join(Join {
                with:
                    JoinWith::Global {
                        key: GlobalKey::Plugin(p),
                        ..
                    },
                ..
            }) => Some(p),
            _ => None,
        }
    }

    /// The global table a join looks up, if this is one.
    pub fn global_table(&self) -> Option<usize> {
        match &self.op {
            Operation::Join(Join {
                with: JoinWith::Global { table, .. },
                ..
            }) => Some(*table),
            _ => None,
        }
    }

    /// The state store an aggregation, a stream–stream or table–table
    /// join, or a stream–table join's grace buffer keeps, if this is one.
    pub fn store(&self) -> Option<&str> {
        match &self.op {
            Operation::Process(_) => None,
            Operation::Aggregate { store, .. }
            | Operation::Join(Join {
                with:
                    JoinWith::Stream { store, .. }
                    | JoinWith::Tables { store }
                    | JoinWith::ForeignKey { store, .. },
                ..
            })
            | Operation::ForeignKey(
                ForeignKeyPart::Subscribe { store, .. } | ForeignKeyPart::Answer { store },
            ) => Some(store),
            Operation::Join(Join {
                with: JoinWith::Table {
                    grace: Some(grace), ..
                },
                ..
            }) => Some(&grace.store),
            Operation::Join(_) => None,
        }
    }
}

/// A sink topic.
#[derive(Debug, Clone)]
pub struct Sink {
    /// Node name.
    pub name: String,
    /// Kafka topic.
    pub topic: String,
    /// Nodes that feed it.
    pub inputs: Vec<NodeId>,
    /// True for a repartition topic's sink: records without a key cannot be
    /// routed, so they are dropped and counted (or dead-lettered).
    pub repartition: bool,
}

/// A sub-topology: the nodes that one task runs for one partition number.
/// Sources, steps and table stores joined by `inputs` (or by a store a
/// step reads) belong to one; a repartition topic separates two, the sink
/// in the one that writes it and the source in the one that reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubTopology {
    /// Its sources (indexes into [`Topology::sources`]).
    pub sources: Vec<usize>,
    /// Its steps, in topological order.
    pub steps: Vec<usize>,
    /// The sinks it writes (a sink fed from several sub-topologies is in
    /// each).
    pub sinks: Vec<usize>,
}

/// The `[processing]` table: batching and commits (the call batch and the
/// commit interval, easy to confuse), threads, the delivery guarantee, and
/// the limits and quarantine of plugin calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processing {
    /// Records per plugin call (the *call batch*).
    pub max_batch_records: usize,
    /// How often outputs are flushed and offsets committed (the *commit interval*).
    pub commit_interval: Duration,
    /// Worker threads that run tasks.
    pub num_stream_threads: usize,
    /// At-least-once (the default) or exactly-once.
    pub guarantee: Guarantee,
    /// The wall-clock deadline of one call into a plugin: past it, the
    /// call traps (`plugin.deadline.ms`).
    pub plugin_deadline: Duration,
    /// The memory cap of one plugin instance, in bytes (`plugin.memory.mb`).
    pub plugin_memory: usize,
    /// The most bytes one call into a plugin may return
    /// (`plugin.output.max.kb`): more traps the call.
    pub plugin_output: usize,
    /// Quarantine after this many traps within `quarantine_window`
    /// (`quarantine.after.traps`; off when `None`).
    pub quarantine_traps: Option<u64>,
    /// The window of `quarantine_traps` (`quarantine.window.ms`).
    pub quarantine_window: Duration,
    /// How often the committed records of repartition topics are deleted
    /// (`repartition.purge.interval.ms`).
    pub repartition_purge_interval: Duration,
    /// The record cache of each task, in bytes (`cache.max.bytes`): 0
    /// (the default) sends every update of an aggregation downstream.
    pub cache_max_bytes: usize,
}

/// `processing.guarantee`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Guarantee {
    /// Outputs are flushed before offsets are committed: after a crash,
    /// some outputs of the last commit interval are sent again.
    #[default]
    AtLeastOnce,
    /// Each commit interval's outputs, changelog records and offsets are
    /// one Kafka transaction: a crash aborts it, and `read_committed`
    /// consumers see every output once.
    ExactlyOnce,
}

impl Default for Processing {
    fn default() -> Self {
        Processing {
            max_batch_records: 500,
            commit_interval: Duration::from_millis(1000),
            num_stream_threads: 1,
            guarantee: Guarantee::AtLeastOnce,
            plugin_deadline: crate::plugin::limits::DEFAULT_DEADLINE,
            plugin_memory: crate::plugin::limits::DEFAULT_MAX_MEMORY,
            plugin_output: crate::plugin::limits::DEFAULT_MAX_OUTPUT,
            quarantine_traps: None,
            quarantine_window: Duration::from_secs(60),
            repartition_purge_interval: Duration::from_secs(30),
            cache_max_bytes: 0,
        }
    }
}

/// The error policies, resolved.
#[derive(Debug, Clone)]
pub struct Errors {
    /// For records a plugin rejects.
    pub rejected: ErrorPolicy,
    /// For records a plugin traps on.
    pub trap: ErrorPolicy,
    /// For a step's output its sink topic would refuse.
    pub refused: ErrorPolicy,
    /// The dead-letter topic.
    pub dlq_topic: String,
    /// Whether the pipeline file named it (`dlq-topic`); if not, a
    /// tenant's own dead-letter topic takes its place.
    pub dlq_named: bool,
}

/// A validated pipeline: a DAG from sources through steps to sinks.
#[derive(Debug, Clone)]
pub struct Topology {
    /// The pipeline file it came from.
    pub file: PathBuf,
    /// `application.id`: consumer group and internal-topic prefix.
    pub application_id: String,
    /// Batching, commit cadence, threads.
    pub processing: Processing,
    /// Error policies.
    pub errors: Errors,
    /// Source topics.
    pub sources: Vec<Source>,
    /// Steps, in topological order (every step after all its inputs).
    pub steps: Vec<Step>,
    /// Sink topics.
    pub sinks: Vec<Sink>,
    /// The sub-topologies: one at least; more where repartition topics or
    /// unconnected parts split the DAG. A task is one sub-topology on one
    /// partition number.
    pub subtopologies: Vec<SubTopology>,
    /// Extra librdkafka properties.
    pub kafka: Vec<(String, String)>,
    /// State stores.
    pub state: StateSettings,
    /// Set when a tenant owns the pipeline: the prefixes of every topic it
    /// may write, enforced by the producer at run time.
    pub topic_prefixes: Option<Vec<String>>,
    /// Set when a tenant owns the pipeline: the log rate and instance
    /// quota its plugins share with the tenant's other pipelines.
    pub tenant: Option<std::sync::Arc<crate::plugin::TenantBudget>>,
}

// The limits of a valid topology (`validate/` refuses a file past them).

/// The longest window size, advance, difference, gap, grace or idle
/// close: 100 years. With event times bounded too
/// ([`crate::time::MAX_EVENT_TIME`]), window arithmetic cannot overflow.
pub const MAX_WINDOW_DURATION: i64 = 100 * 365 * 86_400_000;

/// The most hopping windows one record may fall into (`size / advance`):
/// each is a store entry per key, written for every record.
pub const MAX_WINDOWS_PER_RECORD: i64 = 10_000;

/// The most partitions a source may declare (`sluice dev` creates its
/// topics with them; librdkafka's mock cluster hangs on 100,000).
pub const MAX_PARTITIONS: i32 = 1024;

impl Topology {
    /// The name of a node.
    pub fn node_name(&self, node: NodeId) -> &str {
        match node {
            NodeId::Source(i) => &self.sources[i].name,
            NodeId::Step(i) => &self.steps[i].name,
        }
    }

    /// Every plugin reference, with what names it (`[steps.x]`,
    /// `[steps.x] key-plugin`, `[sources.y] timestamp-plugin`), to resolve
    /// or replace.
    pub fn plugin_refs_mut(&mut self) -> Vec<(String, &mut PluginRef)> {
        let steps = self.steps.iter_mut().flat_map(|s| {
            let owner = format!("[steps.{}]", s.name);
            (s.plugins_mut().into_iter()).map(move |(label, p)| match label {
                None => (owner.clone(), p),
                Some(label) => (format!("{owner} {label}"), p),
            })
        });
        let sources = self
            .sources
            .iter_mut()
            .filter_map(|s| match &mut s.timestamp {
                Extractor::Plugin(p) => Some((format!("[sources.{}] timestamp-plugin", s.name), p)),
                _ => None,
            });
        steps.chain(sources).collect()
    }

    /// Every topic the pipeline writes but does not read: sinks and the
    /// dead-letter topic (when a policy sends records there); not its
    /// repartition topics.
    pub fn output_topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = (self.sinks.iter())
            .filter(|s| !s.repartition)
            .map(|s| s.topic.clone())
            .collect();
        if self.uses_dlq() {
            topics.push(self.errors.dlq_topic.clone());
        }
        topics.sort();
        topics.dedup();
        topics
    }

    /// The state stores of tasks, with the node that owns each: a table
    /// source or an aggregation step. A global table's store is the
    /// instance's, not a task's: see [`Topology::global_tables`].
    pub fn stores(&self) -> impl Iterator<Item = (&str, NodeId)> + '_ {
        let tables = self.sources.iter().enumerate().filter_map(|(i, s)| {
            s.table
                .as_ref()
                .filter(|t| !t.global)
                .map(|t| (t.store.as_str(), NodeId::Source(i)))
        });
        let steps = self.steps.iter().enumerate().flat_map(|(i, s)| {
            s.store()
                .into_iter()
                .chain(
                    s.state
                        .iter()
                        .filter(|u| u.writable)
                        .map(|u| u.name.as_str()),
                )
                .map(move |store| (store, NodeId::Step(i)))
        });
        tables.chain(steps)
    }

    /// Whether any step keeps state.
    pub fn is_stateful(&self) -> bool {
        self.stores().next().is_some()
    }

    /// The global tables (sources declared `global = true`), by index.
    pub fn global_tables(&self) -> impl Iterator<Item = usize> + '_ {
        (self.sources.iter().enumerate())
            .filter(|(_, s)| s.is_global())
            .map(|(i, _)| i)
    }

    /// What each global table is read from.
    pub fn global_specs(&self) -> Vec<crate::state::global_table::GlobalSpec> {
        (self.global_tables())
            .map(|i| {
                let source = &self.sources[i];
                let table = source.table.as_ref().expect("a global table is a table");
                crate::state::global_table::GlobalSpec {
                    source: source.name.clone(),
                    topic: source.topic.clone(),
                    store: table.store.clone(),
                    debezium: table.format == TableFormat::Debezium,
                }
            })
            .collect()
    }

    /// The shortest `close.idle.after` of its windowed aggregations and
    /// stream–stream joins.
    pub fn idle_close(&self) -> Option<i64> {
        self.steps
            .iter()
            .filter_map(|s| match &s.op {
                Operation::Aggregate {
                    window: Some(w), ..
                } => w.idle_close,
                Operation::Join(Join {
                    with: JoinWith::Stream { idle_close, .. },
                    ..
                }) => *idle_close,
                Operation::Join(Join {
                    with:
                        JoinWith::Table {
                            grace: Some(grace), ..
                        },
                    ..
                }) => grace.idle_close,
                _ => None,
            })
            .min()
    }

    /// True if any error policy, or a windowed aggregation's `late`, is
    /// `dlq`.
    pub fn uses_dlq(&self) -> bool {
        self.errors.rejected == ErrorPolicy::Dlq
            || self.errors.trap == ErrorPolicy::Dlq
            || self.errors.refused == ErrorPolicy::Dlq
            || self.steps.iter().any(|s| {
                matches!(
                    s.op,
                    Operation::Aggregate {
                        window: Some(Windowing {
                            late: LatePolicy::Dlq,
                            ..
                        }),
                        ..
                    }
                )
            })
    }
}
