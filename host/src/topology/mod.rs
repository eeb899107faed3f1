//! Topologies: what a pipeline file declares, validated into a DAG.
//!
//! - [`pipeline_file`]: the TOML format, as written.
//! - [`Topology`]: sources, steps in topological order, sinks, policies.
//! - [`render`]: a picture of the topology (text or Graphviz DOT).

pub mod pipeline_file;
pub mod render;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use pipeline_file::{EmitMode, ErrorPolicy, KeyPolicy, LatePolicy, StoreKind, TableFormat};
use pipeline_file::{PipelineFile, Scalar, flatten};

use crate::error::PipelineError;
pub use crate::plugin::reference::PluginRef;
pub use crate::state::settings::StateSettings;
use crate::time::{Extractor, InvalidTimestamp};
use crate::window::Windows;
use crate::window::hopping::Hopping;
use crate::window::session::Sessions;
use crate::window::sliding::Sliding;

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
}

/// A source read as a table: the latest value per key, in a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// The key-value store it is materialized into.
    pub store: String,
    /// How its records are written.
    pub format: TableFormat,
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
    /// The plugin it runs, if any (the built-in count has none).
    pub fn plugin(&self) -> Option<&PluginRef> {
        match &self.op {
            Operation::Process(p)
            | Operation::Aggregate {
                logic: Aggregation::Plugin(p),
                ..
            } => Some(p),
            Operation::Aggregate {
                logic: Aggregation::Count,
                ..
            } => None,
        }
    }

    /// The plugin it runs, to replace (the built-in count has none).
    pub fn plugin_mut(&mut self) -> Option<&mut PluginRef> {
        match &mut self.op {
            Operation::Process(p)
            | Operation::Aggregate {
                logic: Aggregation::Plugin(p),
                ..
            } => Some(p),
            Operation::Aggregate {
                logic: Aggregation::Count,
                ..
            } => None,
        }
    }

    /// The state store an aggregation keeps, if this is one.
    pub fn store(&self) -> Option<&str> {
        match &self.op {
            Operation::Process(_) => None,
            Operation::Aggregate { store, .. } => Some(store),
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

const PROCESSING_KEYS: &str = "max.batch.records, commit.interval.ms, num.stream.threads, processing.guarantee, plugin.deadline.ms, plugin.memory.mb, plugin.output.max.kb, quarantine.after.traps, quarantine.window.ms";

impl Topology {
    /// Reads and validates a pipeline file.
    pub fn load(path: &Path) -> Result<Topology, PipelineError> {
        let file = PipelineFile::read(path)?;
        Self::from_file(path, file)
    }

    /// Validates a parsed pipeline file.
    pub fn from_file(path: &Path, file: PipelineFile) -> Result<Topology, PipelineError> {
        let invalid = |message: String| PipelineError::Invalid {
            file: path.to_owned(),
            message,
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let app = file.application.id.trim().to_owned();
        check_name(&app).map_err(|m| invalid(format!("`application.id` {m}")))?;

        let processing = parse_processing(&file.processing).map_err(invalid)?;
        let kafka = flatten(&file.kafka, "[kafka]")
            .map_err(invalid)?
            .into_iter()
            .map(|(k, v)| (k, v.to_text()))
            .collect();

        let dlq_topic = file
            .errors
            .dlq_topic
            .clone()
            .unwrap_or_else(|| format!("{app}-dlq"));
        check_name(&dlq_topic).map_err(|m| invalid(format!("[errors] `dlq-topic` {m}")))?;

        // One namespace for all node names.
        let mut kinds: HashMap<&str, &str> = HashMap::new();
        for (kind, names) in [
            ("source", file.sources.keys().collect::<Vec<_>>()),
            ("step", file.steps.keys().collect()),
            ("sink", file.sinks.keys().collect()),
        ] {
            for name in names {
                if let Some(other) = kinds.insert(name, kind) {
                    return Err(invalid(format!(
                        "the name `{name}` is used by a {other} and a {kind}; node names must be unique"
                    )));
                }
            }
        }
        if file.sources.is_empty() {
            return Err(invalid(
                "declare at least one [sources.<name>] table".into(),
            ));
        }
        if file.sinks.is_empty() {
            return Err(invalid("declare at least one [sinks.<name>] table".into()));
        }

        let sources: Vec<Source> = file
            .sources
            .iter()
            .map(|(name, def)| {
                let topic = def.topic.clone().unwrap_or_else(|| name.clone());
                check_name(&topic).map_err(|m| invalid(format!("[sources.{name}] `topic` {m}")))?;
                let partitions = def.partitions.unwrap_or(1);
                if !(1..=MAX_PARTITIONS).contains(&partitions) {
                    return Err(invalid(format!(
                        "[sources.{name}] `partitions` (the partitions `sluice dev` creates the topic with) must be from 1 to {MAX_PARTITIONS}, got {partitions}"
                    )));
                }
                let table = match (def.table, &def.store, &def.format) {
                    (true, store, format) => {
                        let store = store.clone().unwrap_or_else(|| name.clone());
                        check_name(&store)
                            .map_err(|m| invalid(format!("[sources.{name}] `store` {m}")))?;
                        Some(Table {
                            store,
                            format: format.unwrap_or_default(),
                        })
                    }
                    (false, None, None) => None,
                    (false, _, _) => {
                        return Err(invalid(format!(
                            "[sources.{name}] has a `store` or `format` but is not a table; add `table = true`"
                        )));
                    }
                };
                let timestamp = match (def.timestamp.as_deref(), &def.timestamp_plugin) {
                    (Some("plugin"), Some(path)) => {
                        let path = base.join(path);
                        Extractor::Plugin(if path.extension().is_some_and(|e| e == "wasm") {
                            PluginRef::Component(path)
                        } else {
                            PluginRef::Crate(path)
                        })
                    }
                    (Some("plugin"), None) => {
                        return Err(invalid(format!(
                            "[sources.{name}] `timestamp = \"plugin\"` needs `timestamp-plugin`, a crate directory or .wasm"
                        )));
                    }
                    (kind, None) => Extractor::parse(
                        kind.unwrap_or("record"),
                        def.timestamp_field.as_deref(),
                    )
                    .map_err(|m| invalid(format!("[sources.{name}] {m}")))?,
                    (_, Some(_)) => {
                        return Err(invalid(format!(
                            "[sources.{name}] has `timestamp-plugin`; add `timestamp = \"plugin\"`"
                        )));
                    }
                };
                let timestamp_config = flatten(&def.timestamp_config, &format!("[sources.{name}] timestamp-config"))
                    .map_err(invalid)?
                    .into_iter()
                    .map(|(k, v)| (k, v.to_text()))
                    .collect();
                Ok(Source {
                    name: name.clone(),
                    topic,
                    partitions,
                    table,
                    timestamp,
                    timestamp_config,
                    invalid_timestamp: def.invalid_timestamp.unwrap_or_default(),
                })
            })
            .collect::<Result<_, _>>()?;
        let source_index: HashMap<&str, usize> = sources
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.as_str(), i))
            .collect();

        for (owner, inputs) in file
            .steps
            .iter()
            .map(|(n, d)| (format!("[steps.{n}]"), &d.inputs))
            .chain(
                file.sinks
                    .iter()
                    .map(|(n, d)| (format!("[sinks.{n}]"), &d.inputs)),
            )
        {
            let mut seen = std::collections::HashSet::new();
            if let Some(twice) = inputs.iter().find(|i| !seen.insert(i.as_str())) {
                return Err(invalid(format!(
                    "{owner} `inputs` names `{twice}` twice; each input is read once (naming it twice would process every record twice)"
                )));
            }
        }
        if let Some(s) = sources.iter().find(|s| s.topic == dlq_topic) {
            return Err(invalid(format!(
                "[errors] `dlq-topic` `{dlq_topic}` is the topic of source `{}`: dead letters would be read again and loop; name another topic",
                s.name
            )));
        }
        let order = topological_order(&file.steps, &kinds).map_err(invalid)?;
        let step_index: HashMap<&str, usize> = order
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let resolve = |owner: &str, inputs: &[String]| -> Result<Vec<NodeId>, PipelineError> {
            if inputs.is_empty() {
                return Err(invalid(format!(
                    "{owner} `inputs` is empty; name at least one source or step"
                )));
            }
            inputs
                .iter()
                .map(|i| {
                    if let Some(&s) = source_index.get(i.as_str()) {
                        Ok(NodeId::Source(s))
                    } else if let Some(&s) = step_index.get(i.as_str()) {
                        Ok(NodeId::Step(s))
                    } else if kinds.get(i.as_str()) == Some(&"sink") {
                        Err(invalid(format!("{owner} `inputs` names sink `{i}`; a sink cannot feed anything")))
                    } else {
                        Err(invalid(format!(
                            "{owner} `inputs` names `{i}`, which is not a source or step (known: {})",
                            known(&source_index, &step_index)
                        )))
                    }
                })
                .collect()
        };

        let plugin_ref = |path: &Path| {
            let path = base.join(path);
            if path.extension().is_some_and(|e| e == "wasm") {
                PluginRef::Component(path)
            } else {
                PluginRef::Crate(path)
            }
        };
        let mut steps = Vec::with_capacity(order.len());
        let mut store_owners: HashMap<String, &str> = sources
            .iter()
            .filter_map(|s| s.table.as_ref().map(|t| (t.store.clone(), s.name.as_str())))
            .collect();
        if let Some((a, b)) = sources.iter().enumerate().find_map(|(i, a)| {
            let store = &a.table.as_ref()?.store;
            sources[i + 1..]
                .iter()
                .find(|b| b.table.as_ref().is_some_and(|t| &t.store == store))
                .map(|b| (a, b))
        }) {
            return Err(invalid(format!(
                "the store `{}` is used by tables `{}` and `{}`; a store belongs to one node",
                a.table.as_ref().expect("found as a table").store,
                a.name,
                b.name
            )));
        }
        for name in &order {
            let def = &file.steps[name];
            let owner = format!("[steps.{name}]");
            let inputs = resolve(&owner, &def.inputs)?;
            let op = match (&def.plugin, &def.aggregate) {
                (Some(plugin), None) => {
                    if def.store.is_some() {
                        return Err(invalid(format!(
                            "{owner} has a `store` but is not an aggregation; a processor declares the stores it uses with `stores = [...]`"
                        )));
                    }
                    Operation::Process(plugin_ref(plugin))
                }
                (None, Some(aggregate)) => {
                    if def.key.is_some() {
                        return Err(invalid(format!(
                            "{owner} has a `key` policy but is an aggregation; `key = \"kept\"` is for processors"
                        )));
                    }
                    if let Some(i) = key_changer(&steps, &inputs) {
                        return Err(invalid(format!(
                            "{owner} aggregates the output of step `{}`, which may have changed the keys; \
                             grouping by a new key needs a repartition topic, which Sluice does not make yet. \
                             If the step keeps each record's key, declare `key = \"kept\"` on it (the host holds it to that); \
                             else aggregate a source directly, or write the step's output to a topic keyed as you need and aggregate that",
                            order[i]
                        )));
                    }
                    if let Some(i) = upstream_sources(&steps, &inputs)
                        .into_iter()
                        .find(|&i| sources[i].table.is_some())
                    {
                        return Err(invalid(format!(
                            "{owner} aggregates table `{}`; a table's records replace each other, \
                             so aggregating them needs a subtractor, which Sluice does not have yet. \
                             Aggregate a stream source",
                            sources[i].name
                        )));
                    }
                    let store = def.store.clone().unwrap_or_else(|| name.clone());
                    check_name(&store).map_err(|m| invalid(format!("{owner} `store` {m}")))?;
                    if let Some(other) = store_owners.insert(store.clone(), name) {
                        return Err(invalid(format!(
                            "the store `{store}` is used by `{other}` and `{name}`; \
                             a store belongs to one node (give each its own `store` name)"
                        )));
                    }
                    let logic = match aggregate.as_str() {
                        "count" => Aggregation::Count,
                        path => Aggregation::Plugin(plugin_ref(Path::new(path))),
                    };
                    let window = match &def.window {
                        None => None,
                        Some(w) => Some(
                            windowing(w, def.emit, def.late, def.close.as_ref())
                                .map_err(|m| invalid(format!("{owner} `window`: {m}")))?,
                        ),
                    };
                    Operation::Aggregate {
                        logic,
                        store,
                        window,
                    }
                }
                (Some(_), Some(_)) => {
                    return Err(invalid(format!(
                        "{owner} has both `plugin` and `aggregate`; a step is either a processor (`plugin`) or an aggregation (`aggregate`)"
                    )));
                }
                (None, None) => {
                    return Err(invalid(format!(
                        "{owner} needs `plugin = \"<crate dir or .wasm>\"` (a processor) or `aggregate = \"<crate dir, .wasm or count>\"` (an aggregation)"
                    )));
                }
            };
            let config = flatten(&def.config, &format!("{owner} config"))
                .map_err(invalid)?
                .into_iter()
                .map(|(k, v)| (k, v.to_text()))
                .collect();
            if def.window.is_none()
                && (def.emit.is_some() || def.late.is_some() || def.close.is_some())
            {
                return Err(invalid(format!(
                    "{owner} has `emit`, `late` or `close.idle.after`, which only a windowed aggregation (`window = {{...}}`) reads"
                )));
            }
            if def.window.is_some() && !matches!(op, Operation::Aggregate { .. }) {
                return Err(invalid(format!(
                    "{owner} has a `window`, but only an aggregation (`aggregate = ...`) is windowed"
                )));
            }
            let mut state = Vec::with_capacity(def.stores.len());
            if !def.stores.is_empty() && !matches!(op, Operation::Process(_)) {
                return Err(invalid(format!(
                    "{owner} has `stores`, but only a processor (`plugin`) declares stores; an aggregation names its one `store`"
                )));
            }
            for store in &def.stores {
                check_name(store).map_err(|m| invalid(format!("{owner} `stores` {m}")))?;
                if state.iter().any(|u: &StoreUse| &u.name == store) {
                    return Err(invalid(format!(
                        "{owner} declares the store `{store}` twice"
                    )));
                }
                let table = sources
                    .iter()
                    .find(|s| s.table.as_ref().is_some_and(|t| &t.store == store));
                let writable = match (table, store_owners.get(store.as_str())) {
                    (Some(_), _) => false,
                    (None, Some(other)) => {
                        return Err(invalid(format!(
                            "{owner} declares the store `{store}`, which belongs to `{other}`; \
                             a processor may read a table's store, or own a store of its own"
                        )));
                    }
                    (None, None) => {
                        store_owners.insert(store.clone(), name);
                        true
                    }
                };
                state.push(StoreUse {
                    name: store.clone(),
                    writable,
                });
            }
            let keeps_key = def.key == Some(pipeline_file::KeyPolicy::Kept);
            steps.push(Step {
                name: name.clone(),
                op,
                state,
                inputs,
                config,
                keeps_key,
            });
        }

        let sinks: Vec<Sink> = file
            .sinks
            .iter()
            .map(|(name, def)| {
                let topic = def.topic.clone().unwrap_or_else(|| name.clone());
                check_name(&topic).map_err(|m| invalid(format!("[sinks.{name}] `topic` {m}")))?;
                if sources.iter().any(|s| s.topic == topic) {
                    return Err(invalid(format!(
                        "[sinks.{name}] writes to `{topic}`, which is also a source topic: the pipeline would read its own output"
                    )));
                }
                Ok(Sink {
                    name: name.clone(),
                    topic,
                    inputs: resolve(&format!("[sinks.{name}]"), &def.inputs)?,
                })
            })
            .collect::<Result<_, _>>()?;

        let topology = Topology {
            file: path.to_owned(),
            application_id: app,
            topic_prefixes: None,
            tenant: None,
            processing,
            errors: Errors {
                rejected: file.errors.rejected,
                trap: file.errors.trap,
                refused: file.errors.refused.unwrap_or(file.errors.rejected),
                dlq_named: file.errors.dlq_topic.is_some(),
                dlq_topic,
            },
            sources,
            steps,
            sinks,
            kafka,
            state: StateSettings {
                dir: file
                    .state
                    .dir
                    .as_ref()
                    .map(|d| base.join(d))
                    .unwrap_or_else(|| StateSettings::default().dir),
                kind: file.state.store.unwrap_or_default(),
                restore_chunk: match file.state.restore_chunk {
                    Some(0) => {
                        return Err(invalid("[state] `restore-chunk` must be at least 1".into()));
                    }
                    Some(n) => n,
                    None => StateSettings::default().restore_chunk,
                },
                memory_bytes: match file.state.memory_mb {
                    Some(mb @ 16..=1_048_576) => mb << 20,
                    Some(mb) => {
                        return Err(invalid(format!(
                            "[state] `memory-mb` = {mb} is outside 16..=1048576 (MiB): the memory every store of the pipeline may take together"
                        )));
                    }
                    None => StateSettings::default().memory_bytes,
                },
            },
        };
        // A step whose output goes nowhere is almost certainly a mistake.
        for (i, step) in topology.steps.iter().enumerate() {
            if topology.consumers_of(NodeId::Step(i)).next().is_none()
                && !topology
                    .sinks
                    .iter()
                    .any(|s| s.inputs.contains(&NodeId::Step(i)))
            {
                return Err(invalid(format!(
                    "[steps.{}] feeds nothing: add it to the `inputs` of a step or sink",
                    step.name
                )));
            }
        }
        Ok(topology)
    }

    /// Steps that take `node` as an input.
    pub fn consumers_of(&self, node: NodeId) -> impl Iterator<Item = usize> + '_ {
        self.steps
            .iter()
            .enumerate()
            .filter(move |(_, s)| s.inputs.contains(&node))
            .map(|(i, _)| i)
    }

    /// The name of a node.
    pub fn node_name(&self, node: NodeId) -> &str {
        match node {
            NodeId::Source(i) => &self.sources[i].name,
            NodeId::Step(i) => &self.steps[i].name,
        }
    }

    /// Every plugin reference, with what names it (`[steps.x]`,
    /// `[sources.y] timestamp-plugin`), to resolve or replace.
    pub fn plugin_refs_mut(&mut self) -> Vec<(String, &mut PluginRef)> {
        let steps = self.steps.iter_mut().filter_map(|s| {
            let owner = format!("[steps.{}]", s.name);
            Some((owner, s.plugin_mut()?))
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

    /// Every topic the pipeline writes: sinks and the dead-letter topic
    /// (when a policy sends records there).
    pub fn output_topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = self.sinks.iter().map(|s| s.topic.clone()).collect();
        if self.uses_dlq() {
            topics.push(self.errors.dlq_topic.clone());
        }
        topics.sort();
        topics.dedup();
        topics
    }

    /// True if either policy is `dlq`.
    /// The state stores, with the node that owns each: a table source or
    /// an aggregation step.
    pub fn stores(&self) -> impl Iterator<Item = (&str, NodeId)> + '_ {
        let tables = self.sources.iter().enumerate().filter_map(|(i, s)| {
            s.table
                .as_ref()
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

    /// The shortest `close.idle.after` of its windowed aggregations.
    pub fn idle_close(&self) -> Option<i64> {
        self.steps
            .iter()
            .filter_map(|s| match &s.op {
                Operation::Aggregate {
                    window: Some(w), ..
                } => w.idle_close,
                _ => None,
            })
            .min()
    }

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

/// Reads a step's `window` table.
fn windowing(
    def: &pipeline_file::WindowDef,
    emit: Option<EmitMode>,
    late: Option<LatePolicy>,
    close: Option<&pipeline_file::CloseDef>,
) -> Result<Windowing, String> {
    let bounded = |name: &str, ms: i64| {
        if ms > MAX_WINDOW_DURATION {
            Err(format!(
                "`{name}` is {ms} ms; window durations are at most {MAX_WINDOW_DURATION} ms (100 years)"
            ))
        } else {
            Ok(ms)
        }
    };
    let duration = |name: &str, v: &toml::Value| -> Result<i64, String> {
        match v {
            toml::Value::Integer(ms) if *ms > 0 => bounded(name, *ms),
            toml::Value::String(s) => crate::window::duration::parse(s)
                .and_then(|ms| {
                    if ms > 0 {
                        bounded(name, ms)
                    } else {
                        Err(format!("`{name}` must be positive"))
                    }
                })
                .map_err(|m| format!("`{name}`: {m}")),
            other => Err(format!(
                "`{name}` must be a positive number of milliseconds or a duration such as \"5m\", got {other}"
            )),
        }
    };
    let grace = match &def.grace {
        None => 0,
        Some(toml::Value::Integer(0)) => 0,
        Some(v) => duration("grace", v)?,
    };
    // Each type takes its own fields and no other's.
    let fields = [
        ("size", def.size.as_ref()),
        ("advance", def.advance.as_ref()),
        ("difference", def.difference.as_ref()),
        ("gap", def.gap.as_ref()),
    ];
    let (wanted, optional): (&[&str], &[&str]) = match def.kind.as_str() {
        "tumbling" => (&["size"], &[]),
        "hopping" => (&["size", "advance"], &[]),
        "sliding" => (&["difference"], &[]),
        "session" => (&["gap"], &[]),
        other => {
            return Err(format!(
                "`type` = {other:?}: expected tumbling, hopping, sliding or session"
            ));
        }
    };
    for (name, value) in fields {
        match value {
            Some(_) if !wanted.contains(&name) && !optional.contains(&name) => {
                let hint = match (def.kind.as_str(), name) {
                    ("tumbling", "advance") => " (use `type = \"hopping\"`)",
                    _ => "",
                };
                return Err(format!(
                    "{} windows have no `{name}`{hint}; they take {}",
                    def.kind,
                    wanted
                        .iter()
                        .map(|w| format!("`{w}`"))
                        .collect::<Vec<_>>()
                        .join(" and ")
                ));
            }
            None if wanted.contains(&name) => {
                return Err(format!("{} windows need `{name}`", def.kind));
            }
            _ => {}
        }
    }
    let field = |name: &str| -> Result<i64, String> {
        let (_, v) = fields
            .iter()
            .find(|(n, _)| *n == name)
            .expect("a known field");
        duration(name, v.expect("checked above"))
    };
    let windows = match def.kind.as_str() {
        "tumbling" => Windows::Hopping(crate::window::tumbling::tumbling(field("size")?)?),
        "hopping" => {
            let (size, advance) = (field("size")?, field("advance")?);
            let hopping = Hopping::new(size, advance)?;
            let per_record = (size + advance - 1) / advance;
            if per_record > MAX_WINDOWS_PER_RECORD {
                return Err(format!(
                    "a record would fall into {per_record} windows (`size` {size} ms / `advance` {advance} ms); \
                     at most {MAX_WINDOWS_PER_RECORD} are allowed, as each is a store entry per key: \
                     make `advance` at least {} ms",
                    (size + MAX_WINDOWS_PER_RECORD - 1) / MAX_WINDOWS_PER_RECORD
                ));
            }
            Windows::Hopping(hopping)
        }
        "sliding" => Windows::Sliding(Sliding::new(field("difference")?)?),
        _ => Windows::Session(Sessions::new(field("gap")?)?),
    };
    let idle_close = match close {
        None => None,
        Some(c) => Some(duration("close.idle.after", &c.idle.after)?),
    };
    Ok(Windowing {
        windows,
        grace,
        emit: emit.unwrap_or_default(),
        late: late.unwrap_or_default(),
        idle_close,
    })
}

fn known(sources: &HashMap<&str, usize>, steps: &HashMap<&str, usize>) -> String {
    let mut names: Vec<&str> = sources.keys().chain(steps.keys()).copied().collect();
    names.sort();
    names.join(", ")
}

fn parse_processing(table: &toml::Table) -> Result<Processing, String> {
    let mut p = Processing::default();
    for (key, value) in flatten(table, "[processing]")? {
        let positive = |max: i64| match &value {
            Scalar::Integer(i) if (1..=max).contains(i) => Ok(*i),
            other => Err(format!(
                "[processing] `{key}` must be an integer from 1 to {max}, got {}",
                match other {
                    Scalar::Integer(i) => i.to_string(),
                    other => other.type_name().to_owned(),
                }
            )),
        };
        match key.as_str() {
            "max.batch.records" => p.max_batch_records = positive(1_000_000)? as usize,
            "commit.interval.ms" => {
                p.commit_interval = Duration::from_millis(positive(3_600_000)? as u64)
            }
            "num.stream.threads" => p.num_stream_threads = positive(256)? as usize,
            "plugin.deadline.ms" => {
                p.plugin_deadline = Duration::from_millis(positive(3_600_000)? as u64)
            }
            "plugin.memory.mb" => p.plugin_memory = (positive(4_096)? as usize) << 20,
            "plugin.output.max.kb" => p.plugin_output = (positive(4 << 20)? as usize) << 10,
            "quarantine.after.traps" => p.quarantine_traps = Some(positive(1_000_000)? as u64),
            "quarantine.window.ms" => {
                p.quarantine_window = Duration::from_millis(positive(86_400_000)? as u64)
            }
            "processing.guarantee" => {
                p.guarantee = match &value {
                    Scalar::String(s) if s == "at-least-once" => Guarantee::AtLeastOnce,
                    Scalar::String(s) if s == "exactly-once" => Guarantee::ExactlyOnce,
                    other => {
                        return Err(format!(
                            "[processing] `processing.guarantee` is \"at-least-once\" or \"exactly-once\", got {}",
                            match other {
                                Scalar::String(s) => format!("{s:?}"),
                                other => other.type_name().to_owned(),
                            }
                        ));
                    }
                }
            }
            _ => {
                return Err(format!(
                    "[processing] unknown setting `{key}` (known: {PROCESSING_KEYS})"
                ));
            }
        }
    }
    Ok(p)
}

/// Kafka's rule for topic names, also used for `application.id`.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > 249 {
        return Err(format!(
            "`{}…` is longer than 249 characters",
            name.chars().take(40).collect::<String>()
        ));
    }
    if name == "." || name == ".." {
        return Err(format!(
            "must not be `{name}` (it is a path component of the state directory)"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "`{name}` contains {c:?}; use only letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// Orders steps so that each comes after the steps it reads from; a cycle
/// is reported with the steps on it.
fn topological_order(
    steps: &BTreeMap<String, pipeline_file::StepDef>,
    kinds: &HashMap<&str, &str>,
) -> Result<Vec<String>, String> {
    let mut indegree: BTreeMap<&str, usize> = steps.keys().map(|k| (k.as_str(), 0)).collect();
    for (name, def) in steps {
        for input in &def.inputs {
            if kinds.get(input.as_str()) == Some(&"step") {
                *indegree.get_mut(name.as_str()).expect("step") += 1;
            }
        }
    }
    let mut ready: Vec<&str> = indegree
        .iter()
        .filter(|(_, d)| **d == 0)
        .map(|(n, _)| *n)
        .collect();
    let mut consumers: HashMap<&str, Vec<&str>> = HashMap::new();
    for (name, def) in steps {
        for input in &def.inputs {
            consumers.entry(input.as_str()).or_default().push(name);
        }
    }
    let mut order = Vec::with_capacity(steps.len());
    while let Some(next) = ready.pop() {
        order.push(next.to_owned());
        for &name in consumers.get(next).map_or(&[][..], Vec::as_slice) {
            let d = indegree.get_mut(name).expect("step");
            *d -= 1;
            if *d == 0 {
                ready.push(name);
            }
        }
    }
    if order.len() < steps.len() {
        let cycle: Vec<&str> = indegree
            .iter()
            .filter(|(_, d)| **d > 0)
            .map(|(n, _)| *n)
            .collect();
        return Err(format!(
            "the steps {} form a cycle; a topology must be acyclic",
            cycle.join(", ")
        ));
    }
    Ok(order)
}

/// The first step feeding `inputs`, directly or through other steps,
/// that may change keys (it does not declare `key = "kept"`). Each step
/// is visited once, however many paths lead to it.
fn key_changer(steps: &[Step], inputs: &[NodeId]) -> Option<usize> {
    let mut seen = vec![false; steps.len()];
    let mut stack: Vec<NodeId> = inputs.iter().rev().copied().collect();
    while let Some(node) = stack.pop() {
        if let NodeId::Step(i) = node {
            if std::mem::replace(&mut seen[i], true) {
                continue;
            }
            if !steps[i].keeps_key {
                return Some(i);
            }
            stack.extend(steps[i].inputs.iter().rev());
        }
    }
    None
}

/// The sources that feed `inputs`, directly or through steps, each once.
fn upstream_sources(steps: &[Step], inputs: &[NodeId]) -> Vec<usize> {
    let mut seen = vec![false; steps.len()];
    let mut sources = Vec::new();
    let mut stack: Vec<NodeId> = inputs.iter().rev().copied().collect();
    while let Some(node) = stack.pop() {
        match node {
            NodeId::Source(i) if !sources.contains(&i) => sources.push(i),
            NodeId::Source(_) => {}
            NodeId::Step(i) => {
                if !std::mem::replace(&mut seen[i], true) {
                    stack.extend(steps[i].inputs.iter().rev());
                }
            }
        }
    }
    sources
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Topology, String> {
        let path = Path::new("/p/pipeline.toml");
        PipelineFile::parse(path, text)
            .and_then(|f| Topology::from_file(path, f))
            .map_err(|e| e.to_string())
    }

    const BRANCHING: &str = r#"
        application.id = "app"
        [processing]
        max.batch.records = 64
        commit.interval.ms = 250
        [sources.in]
        topic = "input"
        partitions = 3
        [steps.b]
        plugin = "b.wasm"
        inputs = ["a"]
        [steps.a]
        plugin = "../plugins/a"
        inputs = ["in"]
        config.min.amount = 10
        [steps.c]
        plugin = "c.wasm"
        inputs = ["a"]
        [sinks.out1]
        inputs = ["b"]
        [sinks.out2]
        topic = "second"
        inputs = ["c", "in"]
    "#;

    #[test]
    fn branching_dag_is_ordered_and_resolved() {
        let t = load(BRANCHING).unwrap();
        assert_eq!(t.processing.max_batch_records, 64);
        assert_eq!(t.processing.commit_interval, Duration::from_millis(250));
        assert_eq!(t.processing.guarantee, Guarantee::AtLeastOnce);
        let eos = load(&BRANCHING.replace(
            "max.batch.records = 64",
            "processing.guarantee = \"exactly-once\"",
        ))
        .unwrap();
        assert_eq!(eos.processing.guarantee, Guarantee::ExactlyOnce);
        let e = load(&BRANCHING.replace(
            "max.batch.records = 64",
            "processing.guarantee = \"exactly_once_v2\"",
        ))
        .unwrap_err();
        assert!(e.contains("\"at-least-once\" or \"exactly-once\""), "{e}");
        let names: Vec<_> = t.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names[0], "a",
            "a feeds b and c, so it comes first: {names:?}"
        );
        assert_eq!(
            t.steps[0].op,
            Operation::Process(PluginRef::Crate(PathBuf::from("/p/../plugins/a")))
        );
        assert_eq!(
            t.steps[0].config,
            vec![("min.amount".to_string(), "10".to_string())]
        );
        assert_eq!(t.sinks[1].topic, "second");
        assert_eq!(t.sinks[1].inputs.len(), 2);
        assert_eq!(t.errors.dlq_topic, "app-dlq");
        assert_eq!(t.output_topics(), vec!["app-dlq", "out1", "second"]);
    }

    #[test]
    fn semantic_errors_name_the_section_and_key() {
        let cases = [
            (
                BRANCHING.replace("inputs = [\"c\", \"in\"]", "inputs = [\"zz\"]"),
                "[sinks.out2] `inputs` names `zz`",
            ),
            (
                BRANCHING
                    .replace(
                        "inputs = [\"a\"]\n        [steps.a]",
                        "inputs = [\"c\"]\n        [steps.a]",
                    )
                    .replace(
                        "plugin = \"c.wasm\"\n        inputs = [\"a\"]",
                        "plugin = \"c.wasm\"\n        inputs = [\"b\"]",
                    ),
                "form a cycle",
            ),
            (
                BRANCHING.replace("max.batch.records = 64", "max.batch.records = 0"),
                "`max.batch.records` must be an integer from 1",
            ),
            (
                BRANCHING.replace("max.batch.records = 64", "max.batch.recs = 6"),
                "unknown setting `max.batch.recs`",
            ),
            (
                BRANCHING.replace("application.id = \"app\"", "application.id = \"my app\""),
                "`application.id` `my app` contains ' '",
            ),
            (
                BRANCHING.replace("topic = \"second\"", "topic = \"input\""),
                "also a source topic",
            ),
            (
                BRANCHING.replace("inputs = [\"b\"]", "inputs = [\"in\"]"),
                "[steps.b] feeds nothing",
            ),
            (
                BRANCHING.replace("[sinks.out1]", "[sinks.a]"),
                "used by a step and a sink",
            ),
        ];
        for (text, expected) in cases {
            let e = load(&text).unwrap_err();
            assert!(e.contains(expected), "expected {expected:?} in: {e}");
            assert!(e.contains("/p/pipeline.toml"), "{e}");
        }
    }

    const AGGREGATE: &str = r#"
        application.id = "app"
        [state]
        dir = "state"
        store = "memory"
        restore-chunk = 500
        [sources.trades]
        partitions = 3
        [steps.stats]
        aggregate = "../plugins/stock-stats"
        inputs = ["trades"]
        [steps.counts]
        aggregate = "count"
        store = "per-ticker"
        inputs = ["trades"]
        [sinks.out]
        inputs = ["stats", "counts"]
    "#;

    #[test]
    fn aggregations_name_their_stores_and_state_settings_resolve() {
        let t = load(AGGREGATE).unwrap();
        let mut stores: Vec<(&str, &str)> = t
            .stores()
            .map(|(store, node)| (store, t.node_name(node)))
            .collect();
        stores.sort();
        assert_eq!(stores, vec![("per-ticker", "counts"), ("stats", "stats")]);
        assert!(t.is_stateful());
        let step = |name: &str| t.steps.iter().find(|s| s.name == name).unwrap();
        assert_eq!(
            step("stats").op,
            Operation::Aggregate {
                logic: Aggregation::Plugin(PluginRef::Crate(PathBuf::from(
                    "/p/../plugins/stock-stats"
                ))),
                store: "stats".into(),
                window: None,
            }
        );
        assert!(step("counts").plugin().is_none(), "the count has no plugin");
        assert_eq!(t.state.dir, PathBuf::from("/p/state"));
        assert_eq!(t.state.kind, StoreKind::Memory);
        assert_eq!(t.state.restore_chunk, 500);
        assert!(!load(BRANCHING).unwrap().is_stateful());
    }

    #[test]
    fn windows_are_read_and_checked() {
        let windowed = |window: &str, extra: &str| {
            load(&format!(
                r#"
                application.id = "app"
                [errors]
                rejected = "skip"
                [sources.views]
                [steps.w]
                aggregate = "count"
                inputs = ["views"]
                window = {window}
                {extra}
                [sinks.out]
                inputs = ["w"]
            "#
            ))
        };
        let t = windowed(
            r#"{ type = "hopping", size = "5m", advance = "1m", grace = "30s" }"#,
            "late = \"dlq\"\nemit = \"on-window-close\"",
        )
        .unwrap();
        let Operation::Aggregate {
            window: Some(w), ..
        } = &t.steps[0].op
        else {
            panic!("windowed")
        };
        assert_eq!(
            (w.windows, w.grace, w.idle_close),
            (
                Windows::Hopping(Hopping::new(300_000, 60_000).unwrap()),
                30_000,
                None
            )
        );
        assert_eq!((w.emit, w.late), (EmitMode::OnWindowClose, LatePolicy::Dlq));
        assert!(t.uses_dlq(), "late records go to the DLQ");
        let e = windowed(r#"{ type = "tumbling", size = 100, advance = 10 }"#, "").unwrap_err();
        assert!(e.contains("tumbling windows have no `advance`"), "{e}");
        let e = windowed(r#"{ type = "session", size = 100 }"#, "").unwrap_err();
        assert!(
            e.contains("session windows have no `size`; they take `gap`"),
            "{e}"
        );
        let e = windowed(r#"{ type = "sliding" }"#, "").unwrap_err();
        assert!(e.contains("sliding windows need `difference`"), "{e}");
        let e = windowed(r#"{ type = "weekly", size = 1 }"#, "").unwrap_err();
        assert!(
            e.contains("expected tumbling, hopping, sliding or session"),
            "{e}"
        );
        let window = |w: &str, extra: &str| {
            let t = windowed(w, extra).unwrap();
            let Operation::Aggregate {
                window: Some(w), ..
            } = &t.steps[0].op
            else {
                panic!("windowed")
            };
            *w
        };
        let w = window(
            r#"{ type = "session", gap = "30m", grace = "1m" }"#,
            "close.idle.after = \"10s\"",
        );
        assert_eq!(
            (w.windows, w.grace, w.idle_close),
            (
                Windows::Session(Sessions::new(1_800_000).unwrap()),
                60_000,
                Some(10_000)
            )
        );
        let w = window(r#"{ type = "sliding", difference = "10s" }"#, "");
        assert_eq!(w.windows, Windows::Sliding(Sliding::new(10_000).unwrap()));
        let e = windowed(
            r#"{ type = "tumbling", size = 10 }"#,
            "close.idle.after = \"soon\"",
        )
        .unwrap_err();
        assert!(e.contains("`close.idle.after`"), "{e}");
        let e = windowed(
            r#"{ type = "hopping", size = "5 fortnights", advance = 1 }"#,
            "",
        )
        .unwrap_err();
        assert!(e.contains("`size`") && e.contains("unit"), "{e}");
        let e = load(&AGGREGATE.replace(
            "aggregate = \"count\"",
            "aggregate = \"count\"\n        emit = \"on-update\"",
        ))
        .unwrap_err();
        assert!(e.contains("only a windowed aggregation"), "{e}");
    }

    #[test]
    fn aggregations_that_cannot_work_are_refused_with_the_reason() {
        let e =
            load(&AGGREGATE.replace("store = \"per-ticker\"", "store = \"stats\"")).unwrap_err();
        assert!(
            e.contains("the store `stats` is used by `stats` and `counts`"),
            "{e}"
        );
        let rekeyed = AGGREGATE.replace(
            "[steps.counts]\n        aggregate = \"count\"\n        store = \"per-ticker\"\n        inputs = [\"trades\"]",
            "[steps.rekey]\n        plugin = \"rekey.wasm\"\n        inputs = [\"trades\"]\n        [steps.counts]\n        aggregate = \"count\"\n        inputs = [\"rekey\"]",
        );
        assert_ne!(rekeyed, AGGREGATE);
        let e = load(&rekeyed).unwrap_err();
        assert!(
            e.contains("[steps.counts] aggregates the output of step `rekey`")
                && e.contains("repartition")
                && e.contains("declare `key = \"kept\"`"),
            "{e}"
        );
        // Through steps that keep keys, an aggregation may follow; one step
        // up the chain that may change keys is named.
        let kept = rekeyed.replace(
            "plugin = \"rekey.wasm\"",
            "plugin = \"rekey.wasm\"\n        key = \"kept\"",
        );
        let t = load(&kept).unwrap();
        assert!(t.steps.iter().any(|s| s.name == "rekey" && s.keeps_key));
        let chained = kept.replace(
            "[steps.rekey]",
            "[steps.parse]\n        plugin = \"parse.wasm\"\n        inputs = [\"trades\"]\n        [steps.rekey]",
        )
        .replace(
            "key = \"kept\"\n        inputs = [\"trades\"]",
            "key = \"kept\"\n        inputs = [\"parse\"]",
        );
        assert_ne!(chained, kept);
        let e = load(&chained).unwrap_err();
        assert!(e.contains("aggregates the output of step `parse`"), "{e}");
        let e = load(&kept.replace("key = \"kept\"", "key = \"same\"")).unwrap_err();
        assert!(e.contains("kept") && e.contains("may-change"), "{e}");
        let e = load(&AGGREGATE.replace(
            "aggregate = \"count\"",
            "aggregate = \"count\"\n        key = \"kept\"",
        ))
        .unwrap_err();
        assert!(e.contains("`key = \"kept\"` is for processors"), "{e}");
        let e = load(&AGGREGATE.replace(
            "aggregate = \"count\"",
            "aggregate = \"count\"\n        plugin = \"x.wasm\"",
        ))
        .unwrap_err();
        assert!(e.contains("has both `plugin` and `aggregate`"), "{e}");
        let e = load(&AGGREGATE.replace("aggregate = \"count\"", "")).unwrap_err();
        assert!(e.contains("[steps.counts] needs `plugin = "), "{e}");
        let e = load(&AGGREGATE.replace("restore-chunk = 500", "restore-chunk = 0")).unwrap_err();
        assert!(e.contains("`restore-chunk` must be at least 1"), "{e}");
        for mb in ["0", "15", "1048577"] {
            let text = AGGREGATE.replace("restore-chunk = 500", &format!("memory-mb = {mb}"));
            let e = load(&text).unwrap_err();
            assert!(e.contains("`memory-mb` = "), "{e}");
            assert!(e.contains("outside 16..=1048576 (MiB)"), "{e}");
        }
    }

    const SMALL: &str = r#"
        application.id = "app"
        [sources.in]
        topic = "input"
        [steps.a]
        plugin = "a.wasm"
        inputs = ["in"]
        [sinks.out]
        inputs = ["a"]
    "#;

    #[test]
    fn settings_that_would_loop_double_or_escape_are_refused_by_name() {
        let e = load(&SMALL.replace("inputs = [\"in\"]", "inputs = [\"in\", \"in\"]")).unwrap_err();
        assert!(e.contains("[steps.a] `inputs` names `in` twice"), "{e}");
        let e = load(&SMALL.replace("inputs = [\"a\"]", "inputs = [\"a\", \"a\"]")).unwrap_err();
        assert!(e.contains("[sinks.out] `inputs` names `a` twice"), "{e}");
        assert!(!e.contains("cycle"), "{e}");
        let e = load(&SMALL.replace(
            "application.id = \"app\"",
            "application.id = \"app\"\n[errors]\ndlq-topic = \"input\"",
        ))
        .unwrap_err();
        assert!(
            e.contains("`dlq-topic` `input` is the topic of source `in`"),
            "{e}"
        );
        for id in [".", ".."] {
            let e = load(&SMALL.replace("\"app\"", &format!("\"{id}\""))).unwrap_err();
            assert!(e.contains("must not be"), "{e}");
        }
        let e = load(&SMALL.replace(
            "topic = \"input\"",
            "topic = \"input\"\npartitions = 2147483647",
        ))
        .unwrap_err();
        assert!(e.contains("must be from 1 to 1024, got 2147483647"), "{e}");
        let long = "x".repeat(5 << 20);
        let e = load(&SMALL.replace("\"app\"", &format!("\"{long}\""))).unwrap_err();
        assert!(
            e.len() < 400,
            "a 5 MB application.id is not echoed: {} bytes",
            e.len()
        );
    }

    #[test]
    fn windows_that_would_exhaust_memory_or_overflow_are_refused() {
        let agg = |window: &str| {
            load(&format!(
                "application.id = \"app\"\n[sources.in]\ntopic = \"input\"\n[steps.c]\naggregate = \"count\"\ninputs = [\"in\"]\nwindow = {{ {window} }}\n[sinks.out]\ninputs = [\"c\"]\n"
            ))
        };
        let e = agg("type = \"hopping\", size = \"1d\", advance = 1").unwrap_err();
        assert!(
            e.contains("would fall into 86400000 windows") && e.contains("at least 8640 ms"),
            "{e}"
        );
        agg("type = \"hopping\", size = \"1d\", advance = \"10s\"").unwrap();
        let e = agg("type = \"session\", gap = 9223372036854775807").unwrap_err();
        assert!(e.contains("at most"), "{e}");
        let e = agg("type = \"tumbling\", size = \"1m\", grace = \"99999999d\"").unwrap_err();
        assert!(e.contains("`grace`") && e.contains("100 years"), "{e}");
    }

    /// Pipelines of `levels` rungs, each step reading both steps of the
    /// rung before: 2^levels paths from the source to the sink.
    fn ladder(levels: usize) -> String {
        let mut text =
            String::from("application.id = \"ladder\"\n[sources.in]\ntopic = \"input\"\n");
        for level in 0..levels {
            for side in ["l", "r"] {
                let inputs = if level == 0 {
                    "\"in\"".to_owned()
                } else {
                    format!("\"l{}\", \"r{}\"", level - 1, level - 1)
                };
                text += &format!(
                    "[steps.{side}{level}]\nplugin = \"p.wasm\"\nkey = \"kept\"\ninputs = [{inputs}]\n"
                );
            }
        }
        text += &format!(
            "[steps.total]\naggregate = \"count\"\ninputs = [\"l{0}\", \"r{0}\"]\n[sinks.out]\ninputs = [\"total\"]\n",
            levels - 1
        );
        text
    }

    /// Runs `f` on a thread and waits at most `limit` for it (a test that
    /// would otherwise never end, if the work were exponential).
    fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(f()));
        rx.recv_timeout(limit)
            .expect("finished in time: validation and rendering must be linear")
    }

    #[test]
    fn validation_and_pictures_grow_with_steps_and_edges_not_paths() {
        // 2^300 paths: only linear work finishes.
        let (topology, text, dot) = within(Duration::from_secs(60), || {
            let t = load(&ladder(300)).unwrap();
            let text = render::text(&t);
            let dot = render::dot(&t);
            (t, text, dot)
        });
        assert_eq!(topology.steps.len(), 601);
        let edges: usize = topology.steps.iter().map(|s| s.inputs.len()).sum::<usize>() + 1;
        assert!(
            text.lines().count() <= edges + 10,
            "{} lines",
            text.lines().count()
        );
        assert!(dot.lines().count() <= 2 * (edges + topology.steps.len()) + 10);
        assert!(text.contains("step r5 (shown above)"));
    }

    /// A small xorshift generator: the random pipelines are the same on
    /// every run.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    /// A random pipeline: random DAG shape (shared inputs, dangling and
    /// duplicate names, cycles), random window settings (some absurd).
    fn random_pipeline(rng: &mut Rng) -> String {
        let sources = 1 + rng.below(3) as usize;
        let steps = rng.below(40) as usize;
        let mut text = String::from("application.id = \"fuzz\"\n");
        for i in 0..sources {
            text += &format!("[sources.s{i}]\ntopic = \"t{i}\"\n");
            if rng.below(20) == 0 {
                text += "partitions = 5000\n";
            }
        }
        let durations = [
            "1000",
            "\"5m\"",
            "\"1h\"",
            "\"1d\"",
            "60000",
            "\"10s\"",
            "\"30m\"",
            "\"2h\"", // sane
            "1",
            "0",
            "-3",
            "9223372036854775807",
            "\"99999999999d\"", // not
        ];
        for i in 0..steps {
            let mut inputs: Vec<String> = (0..1 + rng.below(3))
                .map(|_| match rng.below(20) {
                    // Now and then a name that is not there, or a later
                    // step (maybe a cycle).
                    0 => "\"nowhere\"".to_owned(),
                    1 => format!("\"x{}\"", rng.below(steps as u64)),
                    _ => {
                        let pick = rng.below((sources + i) as u64) as usize;
                        if pick < sources {
                            format!("\"s{pick}\"")
                        } else {
                            format!("\"x{}\"", pick - sources)
                        }
                    }
                })
                .collect();
            inputs.sort();
            inputs.dedup();
            if rng.below(400) == 0 {
                inputs.push(inputs[0].clone());
            }
            text += &format!("[steps.x{i}]\ninputs = [{}]\n", inputs.join(", "));
            match rng.below(4) {
                0 | 1 => text += "plugin = \"p.wasm\"\nkey = \"kept\"\n",
                2 => text += "plugin = \"p.wasm\"\n",
                _ => {
                    text += "aggregate = \"count\"\n";
                    let d = |rng: &mut Rng| durations[rng.below(durations.len() as u64) as usize];
                    let window = match rng.below(5) {
                        0 => format!("type = \"tumbling\", size = {}", d(rng)),
                        1 => format!(
                            "type = \"hopping\", size = {}, advance = {}",
                            d(rng),
                            d(rng)
                        ),
                        2 => format!(
                            "type = \"sliding\", difference = {}, grace = {}",
                            d(rng),
                            d(rng)
                        ),
                        3 => format!("type = \"session\", gap = {}", d(rng)),
                        _ => String::new(),
                    };
                    if !window.is_empty() {
                        text += &format!("window = {{ {window} }}\n");
                    }
                }
            }
        }
        // The sink reads every step (mostly; a step feeding nothing is
        // refused).
        let fed: Vec<String> = (0..steps)
            .filter(|_| rng.below(50) != 0)
            .map(|i| format!("\"x{i}\""))
            .collect();
        let fed = if fed.is_empty() {
            "\"s0\"".to_owned()
        } else {
            fed.join(", ")
        };
        text += &format!("[sinks.out]\ninputs = [{fed}]\n");
        text
    }

    #[test]
    fn random_pipelines_validate_without_panicking_in_bounded_time() {
        let (valid, refused) = within(Duration::from_secs(120), || {
            let mut rng = Rng(0x5eed_cafe_f00d_d00d);
            let (mut valid, mut refused) = (0, 0);
            for _ in 0..2_000 {
                let text = random_pipeline(&mut rng);
                match load(&text) {
                    Ok(t) => {
                        valid += 1;
                        let _ = (render::text(&t), render::dot(&t));
                    }
                    Err(e) => {
                        refused += 1;
                        assert!(
                            e.len() < 2_000,
                            "a message of {} bytes for:\n{text}",
                            e.len()
                        );
                    }
                }
            }
            (valid, refused)
        });
        assert!(
            valid > 100 && refused > 500,
            "{valid} valid, {refused} refused"
        );
    }
}
