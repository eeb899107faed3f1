//! Typed errors of the Sluice library.
//!
//! - [`PipelineError`]: the pipeline file is unreadable or wrong.
//! - [`PluginError`]: a plugin cannot be loaded, or failed to start.
//! - [`BuildError`]: a plugin crate could not be built into a component.
//! - [`KafkaError`]: the brokers are unreachable or refused something.
//! - [`RunError`]: why a running pipeline stopped.
//!
//! A plugin *rejecting* a record is not an error here: it is an outcome,
//! handled by the pipeline's `rejected` policy. A plugin *trap* is a fault
//! of the plugin, handled by the `trap` policy. Either becomes a
//! [`RunError::RecordFailed`] only when its policy is `fail`.

use std::path::PathBuf;

/// The pipeline file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// The file could not be read.
    #[error("cannot read pipeline file {}: {source}", file.display())]
    Read {
        /// The pipeline file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a key is unknown, missing or of the
    /// wrong type.
    #[error("invalid pipeline file {}:\n{message}", file.display())]
    Syntax {
        /// The pipeline file.
        file: PathBuf,
        /// The parser's message, with line, column and key.
        message: String,
    },
    /// The file parses, but what it declares does not hold together.
    #[error("invalid pipeline file {}: {message}", file.display())]
    Invalid {
        /// The pipeline file.
        file: PathBuf,
        /// What is wrong, naming the section and key.
        message: String,
    },
}

/// A plugin cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    /// The plugin path does not exist.
    #[error("plugin `{plugin}`: {} does not exist", path.display())]
    NotFound {
        /// The step or plugin name.
        plugin: String,
        /// The path that was tried.
        path: PathBuf,
    },
    /// The plugin file could not be read.
    #[error("plugin `{plugin}`: cannot read {}: {source}", path.display())]
    Read {
        /// The step or plugin name.
        plugin: String,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a WebAssembly component.
    #[error("plugin `{plugin}`: {} is not a WebAssembly component: {detail}", path.display())]
    NotAComponent {
        /// The step or plugin name.
        plugin: String,
        /// The file.
        path: PathBuf,
        /// What it is instead.
        detail: String,
    },
    /// wasmtime could not compile the component.
    #[error("plugin `{plugin}`: cannot compile the component: {message}")]
    Compile {
        /// The step or plugin name.
        plugin: String,
        /// wasmtime's explanation.
        message: String,
    },
    /// The component imports something the sandbox does not provide.
    #[error(
        "plugin `{plugin}` imports {}, which Sluice does not provide to plugins (allowed imports: {})",
        imports.join(", "),
        allowed.join(", ")
    )]
    ForbiddenImport {
        /// The step or plugin name.
        plugin: String,
        /// The refused import names.
        imports: Vec<String>,
        /// What a plugin may import.
        allowed: Vec<String>,
    },
    /// The component does not export the interface the step needs.
    #[error("plugin `{plugin}` does not export `{expected}`: {found}")]
    WrongWorld {
        /// The step or plugin name.
        plugin: String,
        /// The interface the host needs, with version.
        expected: String,
        /// What the component exports instead, or why it does not match.
        found: String,
    },
    /// The component imports an interface the host provides, by its name
    /// and version, but with other functions or types than the host's WIT
    /// (`wit/plugin.wit`): it was built against another WIT of that name.
    #[error(
        "plugin `{plugin}` imports {import}, but not with the signature of this host's WIT \
         (wit/plugin.wit): {detail}; rebuild it against the WIT of this Sluice"
    )]
    ImportMismatch {
        /// The step or plugin name.
        plugin: String,
        /// The import, quoted (`sluice:plugin/log@0.1.0`).
        import: String,
        /// How it differs, as wasmtime found it.
        detail: String,
    },
    /// The plugin's `init` returned an error.
    #[error("plugin `{plugin}` refused to start: {code}: {message}")]
    Init {
        /// The step or plugin name.
        plugin: String,
        /// The plugin's error code.
        code: String,
        /// The plugin's message.
        message: String,
    },
    /// The plugin trapped while being instantiated or initialized.
    #[error("plugin `{plugin}` trapped while starting: {message}")]
    StartTrap {
        /// The step or plugin name.
        plugin: String,
        /// The trap.
        message: String,
    },
    /// The tenant has as many live plugin instances as its quota allows.
    #[error("plugin `{plugin}` cannot start another instance: {message}")]
    Quota {
        /// The step or plugin name.
        plugin: String,
        /// Which quota, and whose.
        message: String,
    },
    /// The plugin source directory could not be built.
    #[error("plugin `{plugin}`: {source}")]
    Build {
        /// The step or plugin name.
        plugin: String,
        /// The build failure.
        source: BuildError,
    },
}

/// A plugin crate could not be built into a component.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The directory has no `Cargo.toml`, or it names no package.
    #[error("{} is not a plugin crate: {message}", dir.display())]
    NotACrate {
        /// The directory.
        dir: PathBuf,
        /// What is missing.
        message: String,
    },
    /// No Rust toolchain can build for `wasm32-unknown-unknown`.
    #[error("no Rust toolchain here can build wasm32-unknown-unknown: {message}")]
    NoToolchain {
        /// What was looked for and how to install it.
        message: String,
    },
    /// The directory holds no plugin in a language Sluice builds.
    #[error("{} is not a plugin Sluice can build: {message}", dir.display())]
    UnknownLanguage {
        /// The directory.
        dir: PathBuf,
        /// What was looked for.
        message: String,
    },
    /// The toolchain a language needs is not installed.
    #[error("cannot build {language} plugins here: {message}")]
    MissingToolchain {
        /// The language.
        language: String,
        /// What is missing, and the command that installs it.
        message: String,
    },
    /// A language's build tool failed.
    #[error("building {} failed: {tool}:\n{output}", dir.display())]
    Tool {
        /// The plugin directory.
        dir: PathBuf,
        /// The tool that failed, and how (its exit status).
        tool: String,
        /// The end of its output.
        output: String,
    },
    /// The core module could not be turned into a component.
    #[error("cannot make a component from {}: {message}", module.display())]
    Componentize {
        /// The core module.
        module: PathBuf,
        /// wit-component's explanation.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Kafka could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KafkaError {
    /// No broker answered within the bounded retries.
    #[error(
        "cannot reach Kafka at {brokers} after {attempts} attempts over {waited_secs} s (last error: {last})"
    )]
    Unreachable {
        /// The bootstrap servers.
        brokers: String,
        /// How many metadata requests were tried.
        attempts: u32,
        /// How long it tried.
        waited_secs: u64,
        /// The last error seen.
        last: String,
    },
    /// A source topic does not exist.
    #[error("source topic `{topic}` does not exist on {brokers}")]
    MissingTopic {
        /// The topic.
        topic: String,
        /// The bootstrap servers.
        brokers: String,
    },
    /// A topic has the wrong number of partitions.
    #[error(
        "topic `{topic}` has {found} partitions, but its tasks need {expected} (one per source partition); delete it or fix the source topics"
    )]
    PartitionMismatch {
        /// The topic.
        topic: String,
        /// Partitions needed.
        expected: i32,
        /// Partitions it has.
        found: i32,
    },
    /// A record of a joined topic is not on the partition murmur2 of its
    /// key gives: its producer partitions otherwise.
    #[error(
        "topic `{topic}` is joined by key, but its record at partition {partition} offset {offset} (key `{key}`) belongs on partition {expected} by Kafka's default partitioner (murmur2 of the key): its producer partitions otherwise (librdkafka's default CRC32, a custom partitioner, or a key serializer that adds bytes such as a schema id), so the join would not find its partners. Produce it with murmur2 (Java clients do by default; librdkafka: `partitioner=murmur2_random`), or re-key it through a step so that Sluice repartitions it"
    )]
    NotMurmur2Partitioned {
        /// The topic.
        topic: String,
        /// Where the record is.
        partition: i32,
        /// Its offset.
        offset: i64,
        /// Its key, as text (cut short).
        key: String,
        /// Where murmur2 puts it.
        expected: i32,
    },
    /// The sources of one sub-topology have different partition counts.
    #[error(
        "sub-topology {subtopology} reads {topics}: the topics a task reads together (joined, or sharing a store) must have the same partition count, since task `p` reads partition `p` of each; repartition one of them, or recreate it with the same count"
    )]
    NotCoPartitioned {
        /// The sub-topology.
        subtopology: usize,
        /// Its topics with their counts, as text.
        topics: String,
    },
    /// The broker refused to create a topic.
    #[error("cannot create topic `{topic}`: {reason}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// The broker's answer.
        reason: String,
    },
    /// A client call failed.
    #[error("{context}: {source}")]
    Client {
        /// What was being done.
        context: String,
        /// librdkafka's error.
        source: rdkafka::error::KafkaError,
    },
}

impl KafkaError {
    /// Wraps a librdkafka error with what was being done.
    pub fn client(context: impl Into<String>) -> impl FnOnce(rdkafka::error::KafkaError) -> Self {
        let context = context.into();
        move |source| KafkaError::Client { context, source }
    }
}

/// Why a running pipeline stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The pipeline file is wrong.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// A plugin could not be loaded or started.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// Kafka failed.
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    /// A source record has no valid event time and the source's
    /// `invalid-timestamp` policy is `fail`. Its offset was not committed.
    #[error(
        "record {topic}/{partition}@{offset} of source `{source_name}` has no valid timestamp and `invalid-timestamp` is `fail`: {reason}; set `invalid-timestamp = \"skip\"` or `\"use-partition-time\"` to go on"
    )]
    InvalidTimestamp {
        /// The source node.
        source_name: String,
        /// Its topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The offset.
        offset: i64,
        /// Why the timestamp is not valid.
        reason: String,
    },
    /// A record met a `fail` policy. Its offset was not committed.
    #[error(
        "step `{step}` {outcome} record {topic}/{partition}@{offset} and the `{policy}` policy is `fail`: {reason}"
    )]
    RecordFailed {
        /// The step whose plugin failed.
        step: String,
        /// `rejected` or `trapped on`.
        outcome: &'static str,
        /// Which policy applied: `rejected` or `trap`.
        policy: &'static str,
        /// Source topic of the record.
        topic: String,
        /// Source partition.
        partition: i32,
        /// Source offset.
        offset: i64,
        /// The plugin's error or the trap.
        reason: String,
    },
    /// Output records could not be delivered; their inputs were not
    /// committed and will be processed again on restart.
    #[error("could not deliver output records: {0}")]
    Delivery(String),
    /// The plugin returned a malformed frame or broke the protocol.
    #[error("step `{step}`: plugin broke the call protocol: {message}")]
    Protocol {
        /// The step.
        step: String,
        /// What was wrong.
        message: String,
    },
    /// An aggregator failed on aggregates rather than on a record: while
    /// merging session windows, or rebuilding a new sliding window from
    /// the records it covers. No record is to blame, so no policy applies.
    #[error("step `{step}`: the aggregator failed while {doing}: {message}")]
    Aggregator {
        /// The step.
        step: String,
        /// What the host was doing.
        doing: &'static str,
        /// The plugin's error or the trap.
        message: String,
    },
    /// A plugin trapped too often (`quarantine.after.traps`) in a pipeline
    /// that no admin API can resume: it stops, its work so far committed.
    #[error("quarantined: {0}")]
    Quarantined(String),
    /// A worker thread died.
    #[error("stream thread failed: {0}")]
    Thread(String),
    /// A state store failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// A store could not be restored from its changelog.
    #[error(transparent)]
    Restore(#[from] RestoreError),
    /// Exactly-once: a transaction could not complete. The run recovers
    /// from it by itself (see [`crate::runner`]); it ends a run only once
    /// the recovery gives up.
    #[error(transparent)]
    Transaction(#[from] TransactionError),
    /// Exactly-once: recovering from broker faults made no progress within
    /// its bound, or the producer kept being fenced.
    #[error(
        "exactly-once: gave up recovering after {attempts} attempt(s): {reason}; last failure: {last}"
    )]
    RecoveryGaveUp {
        /// Recoveries tried.
        attempts: u32,
        /// Which bound was reached.
        reason: String,
        /// The failure the last attempt ended with.
        last: Box<RunError>,
    },
}

/// A Kafka transaction (exactly-once) that could not complete. Except for
/// [`TransactionError::Aborted`], the producer is not used again: the run
/// creates a new one with the same `transactional.id` and resumes from the
/// last committed offsets.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransactionError {
    /// A call did not return within its deadline (librdkafka waits
    /// without one in places): the broker is frozen or unreachable.
    #[error(
        "{what} did not finish within {} s: the broker is frozen or unreachable",
        after.as_secs()
    )]
    TimedOut {
        /// The call.
        what: String,
        /// Its deadline.
        after: std::time::Duration,
    },
    /// The call failed with an error that requires an abort; the
    /// transaction was aborted and the producer can go on.
    #[error("{what} failed, and the transaction was aborted: {source}")]
    Aborted {
        /// The call.
        what: String,
        /// librdkafka's error.
        source: rdkafka::error::KafkaError,
    },
    /// The producer failed fatally: fenced (its epoch is over, because the
    /// broker aborted a transaction older than `transaction.timeout.ms`,
    /// or another producer with the same `transactional.id` started), or
    /// left in a state it cannot leave.
    #[error("{what} failed, and the producer cannot go on: {source}")]
    Fatal {
        /// The call.
        what: String,
        /// librdkafka's error.
        source: rdkafka::error::KafkaError,
    },
    /// The call failed and the transaction could not be aborted either.
    #[error("{what} failed ({source}), and aborting the transaction failed too: {abort}")]
    NotAborted {
        /// The call.
        what: String,
        /// librdkafka's error.
        source: rdkafka::error::KafkaError,
        /// Why the abort failed.
        abort: Box<TransactionError>,
    },
    /// Records of the transaction were not acknowledged: the broker did
    /// not answer within `message.timeout.ms`, or refused them for a
    /// reason that concerns the producer rather than the records.
    #[error("{failed} record(s) of the transaction were not delivered, first: {first}")]
    Undelivered {
        /// Records that failed so far.
        failed: u64,
        /// The first failure.
        first: String,
    },
    /// An earlier call left the producer unusable.
    #[error("{what}: the transactional producer was given up after an earlier failure")]
    Abandoned {
        /// The call.
        what: String,
    },
}

impl TransactionError {
    /// Whether the producer can go on (the transaction was aborted, and
    /// the next one begun).
    pub fn producer_usable(&self) -> bool {
        matches!(self, TransactionError::Aborted { .. })
    }

    /// Whether the producer was fenced: its epoch is over.
    pub fn is_fenced(&self) -> bool {
        use rdkafka::types::RDKafkaErrorCode as C;
        match self {
            TransactionError::Fatal { source, .. } => matches!(
                source.rdkafka_error_code(),
                Some(C::ProducerFenced | C::InvalidProducerEpoch | C::Fenced)
            ),
            _ => false,
        }
    }
}

/// A state store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The store's directory could not be opened.
    #[error("cannot open store `{store}` at {}: {message}", path.display())]
    Open {
        /// The store.
        store: String,
        /// Its directory.
        path: PathBuf,
        /// RocksDB's explanation.
        message: String,
    },
    /// A read or write failed.
    #[error("store `{store}`: {message}")]
    Rocks {
        /// The store.
        store: String,
        /// RocksDB's explanation.
        message: String,
    },
    /// A file or directory could not be used.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A write would take the pipeline's in-memory state past its budget.
    #[error(
        "store `{store}` cannot take {wanted} more bytes: the pipeline's in-memory stores hold {used} bytes, and their budget is {limit} bytes ([state] memory-mb). Raise `memory-mb`, or use `store = \"rocksdb\"`, which keeps what does not fit on disk"
    )]
    MemoryFull {
        /// The store.
        store: String,
        /// Bytes held before the write.
        used: u64,
        /// Bytes the write would add.
        wanted: u64,
        /// The budget.
        limit: u64,
    },
    /// A changelog record or metadata entry could not be read.
    #[error("store `{store}`: {message}")]
    Corrupt {
        /// The store.
        store: String,
        /// What is wrong.
        message: String,
    },
}

/// Why a restore failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// The store failed, or a record is not a changelog record.
    #[error(transparent)]
    State(#[from] StateError),
    /// Kafka failed.
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    /// The local store is ahead of its changelog: the topic was deleted
    /// and recreated. The local store must be rebuilt from scratch.
    #[error(
        "store `{store}` has restored changelog `{topic}` partition {partition} up to offset {position}, but the changelog ends at {end}: was the topic recreated? Delete the local state to rebuild it"
    )]
    AheadOfChangelog {
        /// The store.
        store: String,
        /// The changelog topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The store's position.
        position: i64,
        /// The changelog's end.
        end: i64,
    },
}
