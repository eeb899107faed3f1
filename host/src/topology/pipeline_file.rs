//! The pipeline file: a TOML document that declares a topology.
//!
//! The reference for every key is `docs/pipeline.md`. In short:
//!
//! ```toml
//! application.id = "large-orders"
//!
//! [processing]
//! max.batch.records = 500     # records per plugin call
//! commit.interval.ms = 1000   # how often outputs are flushed and offsets committed
//! num.stream.threads = 1
//!
//! [errors]
//! rejected = "dlq"            # a record the plugin rejects: fail | skip | dlq
//! trap = "fail"               # a record on which the plugin traps: fail | skip | dlq
//!
//! [sources.orders]
//! topic = "orders"
//!
//! [steps.filter]
//! plugin = "."                # plugin crate directory or built .wasm
//! inputs = ["orders"]
//!
//! [sinks.alerts]
//! topic = "alerts"
//! inputs = ["filter"]
//! ```
//!
//! Structural keys are parsed by serde, so a typo or a wrong type is
//! reported with its line. Tunables (`[processing]`, `[kafka]`, a step's
//! `config`) use Kafka's dotted names, which TOML reads as nested tables;
//! they are flattened back into dotted names here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::PipelineError;
pub use crate::state::settings::StoreKind;

/// What to do with a record that a plugin rejected or trapped on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorPolicy {
    /// Stop the pipeline without committing the record's offset.
    Fail,
    /// Drop the record and count it.
    Skip,
    /// Write the record to the dead-letter topic, with the reason in headers.
    Dlq,
}

/// The pipeline file as written, before validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineFile {
    /// `application.id = "…"`.
    pub application: Application,
    /// Tunables, by Kafka-style dotted name.
    #[serde(default)]
    pub processing: toml::Table,
    /// Error policies.
    #[serde(default)]
    pub errors: Errors,
    /// Input topics, by node name.
    pub sources: BTreeMap<String, SourceDef>,
    /// Plugin steps, by node name.
    #[serde(default)]
    pub steps: BTreeMap<String, StepDef>,
    /// Output topics, by node name.
    pub sinks: BTreeMap<String, SinkDef>,
    /// Extra librdkafka properties for every client, by dotted name.
    #[serde(default)]
    pub kafka: toml::Table,
    /// Where and how state stores are kept.
    #[serde(default)]
    pub state: StateDef,
}

/// The `[state]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateDef {
    /// Directory of the local stores (`state.dir` in Kafka Streams).
    pub dir: Option<PathBuf>,
    /// `"rocksdb"` (default) or `"memory"` (rebuilt from the changelog at
    /// every start).
    pub store: Option<StoreKind>,
    /// Changelog records a restore writes to the local store at a time
    /// (default 10000).
    #[serde(rename = "restore-chunk")]
    pub restore_chunk: Option<usize>,
    /// The memory every store of the pipeline may take together, in MiB
    /// (default 256): RocksDB's memtables and block cache, or what
    /// in-memory stores hold.
    #[serde(rename = "memory-mb")]
    pub memory_mb: Option<u64>,
}

/// The `[application]` table (usually written `application.id = "…"`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Application {
    /// Consumer group id, and the prefix of internal topic names.
    pub id: String,
}

/// The `[errors]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Errors {
    /// Policy for records a plugin rejects (returns an error for).
    #[serde(default = "default_rejected")]
    pub rejected: ErrorPolicy,
    /// Policy for records on which a plugin traps.
    #[serde(default = "default_trap")]
    pub trap: ErrorPolicy,
    /// Policy for a step's output its sink topic would refuse (larger
    /// than it takes, or a timestamp out of its range); defaults to the
    /// `rejected` policy.
    pub refused: Option<ErrorPolicy>,
    /// Dead-letter topic; defaults to `<application.id>-dlq`.
    pub dlq_topic: Option<String>,
}

fn default_rejected() -> ErrorPolicy {
    ErrorPolicy::Dlq
}

fn default_trap() -> ErrorPolicy {
    ErrorPolicy::Fail
}

impl Default for Errors {
    fn default() -> Self {
        Errors {
            rejected: default_rejected(),
            trap: default_trap(),
            refused: None,
            dlq_topic: None,
        }
    }
}

/// A `[sources.<name>]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceDef {
    /// Topic to read; defaults to the node name.
    pub topic: Option<String>,
    /// Partition count `sluice dev` creates the topic with (default 1).
    pub partitions: Option<i32>,
    /// Read the topic as a table: the latest value per key, materialized
    /// into a store (a null value deletes the key).
    #[serde(default)]
    pub table: bool,
    /// The table's store; defaults to the source name.
    pub store: Option<String>,
    /// A versioned table: how long (in its records' time) each key's
    /// earlier values are kept, so that a join looks the table up as of
    /// the stream record's time.
    pub history: Option<toml::Value>,
    /// A global table: every partition, in every task of an instance.
    #[serde(default)]
    pub global: bool,
    /// How table records are written: `"plain"` (default) or `"debezium"`
    /// (a `{before, after, op}` change event).
    pub format: Option<TableFormat>,
    /// Where event time comes from: `record` (default), `log-append`,
    /// `wall-clock` or `field`.
    pub timestamp: Option<String>,
    /// With `timestamp = "field"`: a dotted path into the JSON value.
    #[serde(rename = "timestamp-field")]
    pub timestamp_field: Option<String>,
    /// With `timestamp = "plugin"`: a timestamp-extractor plugin (crate
    /// directory or `.wasm`), relative to the pipeline file.
    #[serde(rename = "timestamp-plugin")]
    pub timestamp_plugin: Option<PathBuf>,
    /// Passed to the extractor plugin's `init`.
    #[serde(rename = "timestamp-config", default)]
    pub timestamp_config: toml::Table,
    /// A record without a valid timestamp: `fail` (default), `skip` or
    /// `use-partition-time`.
    #[serde(rename = "invalid-timestamp")]
    pub invalid_timestamp: Option<crate::time::InvalidTimestamp>,
}

/// The shape of a table topic's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TableFormat {
    /// The value is the row; a null value (tombstone) deletes the key.
    #[default]
    Plain,
    /// A Debezium change event, `{before, after, op}` (optionally inside
    /// `{schema, payload}`): ops `c`, `r` and `u` set the row to `after`,
    /// `d` deletes it; a tombstone deletes it too.
    Debezium,
}

/// A `[steps.<name>]` table: `plugin = …` for a record processor, or
/// `aggregate = …` for a keyed aggregation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepDef {
    /// A processor plugin: a crate directory or a built component
    /// (`.wasm`), relative to the pipeline file.
    pub plugin: Option<PathBuf>,
    /// An aggregation by key: an aggregator plugin (crate directory or
    /// `.wasm`), or the built-in `"count"`.
    pub aggregate: Option<String>,
    /// The state store an aggregation keeps its aggregates in; defaults to
    /// the step name.
    pub store: Option<String>,
    /// Stores a processor reads and writes through the WIT `state` import
    /// (a table's store is read-only).
    #[serde(default)]
    pub stores: Vec<String>,
    /// Aggregations: aggregate per time window instead of per key.
    pub window: Option<WindowDef>,
    /// Windowed aggregations: `on-update` (default) or `on-window-close`.
    pub emit: Option<EmitMode>,
    /// Windowed aggregations: a record too late for every window it falls
    /// into is dropped and counted (`skip`, default) or also dead-lettered
    /// (`dlq`).
    pub late: Option<LatePolicy>,
    /// Windowed aggregations: `close.idle.after = "1m"` closes every open
    /// window of a task that has had no input for that long (wall clock).
    pub close: Option<CloseDef>,
    /// Processors: `"kept"` promises that every output record has its
    /// input record's key (as Kafka Streams' `mapValues`, `filter`,
    /// `flatMapValues`), so an aggregation may follow without a
    /// repartition; the host holds the plugin to it. Default `"may-change"`.
    pub key: Option<KeyPolicy>,
    /// A join: `"inner"` or `"left"`, of its first input (a stream) with
    /// its second (a table).
    pub join: Option<JoinKindDef>,
    /// Joins: `"merge"`, `"pair"` (default), or a value-joiner plugin
    /// (crate directory or `.wasm`).
    pub joiner: Option<String>,
    /// Joins: whether the stream waits for the table to catch up with its
    /// end when partitions are assigned (default true).
    #[serde(rename = "wait-for-table")]
    pub wait_for_table: Option<bool>,
    /// Joins with a global table: the dotted path of the stream value's
    /// JSON field that holds the table's key (default: the record's key).
    #[serde(rename = "key-field")]
    pub key_field: Option<String>,
    /// Joins of two tables by a foreign key: the dotted path of the left
    /// value's JSON field that names the right table's key.
    #[serde(rename = "foreign-key")]
    pub foreign_key: Option<String>,
    /// Joins with a global table: a record-processor plugin (crate
    /// directory or `.wasm`) whose output's key is the table key.
    #[serde(rename = "key-plugin")]
    pub key_plugin: Option<PathBuf>,
    /// Joins of two streams: how far apart in time two records may be to
    /// match, and the grace after.
    #[serde(rename = "join-window")]
    pub join_window: Option<JoinWindowDef>,
    /// Joins of a stream with a versioned table: how long stream records
    /// wait, in stream time, to be joined in time order.
    #[serde(rename = "join-grace")]
    pub join_grace: Option<toml::Value>,
    /// `repartition = true`: the step writes its inputs to a repartition
    /// topic (`<application.id>-<step>-repartition`), keyed by their keys,
    /// and emits what it reads back, so that records reach the task of
    /// their key.
    #[serde(default)]
    pub repartition: bool,
    /// Repartition steps: the topic's partition count (default: the
    /// largest among the sources upstream).
    pub partitions: Option<i32>,
    /// Nodes (sources or steps) whose records this step receives.
    pub inputs: Vec<String>,
    /// Passed to the plugin's `init`, as dotted-name/string pairs.
    #[serde(default)]
    pub config: toml::Table,
}

/// A stream–stream join's `join-window` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinWindowDef {
    /// Both `before` and `after`.
    pub difference: Option<toml::Value>,
    /// How far back a left record looks.
    pub before: Option<toml::Value>,
    /// How far ahead a left record looks.
    pub after: Option<toml::Value>,
    /// How long after a window's end its records may still come.
    pub grace: Option<toml::Value>,
}

/// `join = …`, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JoinKindDef {
    /// Matched records only.
    Inner,
    /// Every record of the first input.
    Left,
    /// Every record of either input (stream–stream and table–table joins
    /// only).
    Outer,
}

/// A step's `close` table: `close.idle.after = "<duration>"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloseDef {
    /// `close.idle.*`.
    pub idle: IdleCloseDef,
}

/// `close.idle.after`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdleCloseDef {
    /// How long a task may go without input before its windows close.
    pub after: toml::Value,
}

/// A step's `window` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowDef {
    /// `tumbling`, `hopping`, `sliding` or `session`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Tumbling and hopping windows: the size, in milliseconds or as a
    /// duration such as `"5m"`.
    pub size: Option<toml::Value>,
    /// Hopping windows: how far each window starts after the previous one.
    pub advance: Option<toml::Value>,
    /// Sliding windows: the largest time difference between two records
    /// of one window.
    pub difference: Option<toml::Value>,
    /// Session windows: the inactivity gap that ends a session.
    pub gap: Option<toml::Value>,
    /// How long after its end a window still takes late records (default 0).
    pub grace: Option<toml::Value>,
}

/// What a processor does with keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum KeyPolicy {
    /// Its output records may have any key.
    #[default]
    MayChange,
    /// Each output record has the key of the input record it came from.
    Kept,
}

/// When a windowed aggregation emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum EmitMode {
    /// Every change of a window's aggregate.
    #[default]
    OnUpdate,
    /// One final result per window, once stream time passes end + grace.
    OnWindowClose,
}

/// What happens to a record too late for all its windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum LatePolicy {
    /// Drop and count it.
    #[default]
    Skip,
    /// Drop, count, and write it to the dead-letter topic (kind `late`).
    Dlq,
}

/// A `[sinks.<name>]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkDef {
    /// Topic to write; defaults to the node name.
    pub topic: Option<String>,
    /// Nodes (sources or steps) whose records go to this topic.
    pub inputs: Vec<String>,
}

impl PipelineFile {
    /// Reads and parses a pipeline file. Structural errors name the file,
    /// the line, the key and what was expected.
    pub fn read(path: &Path) -> Result<PipelineFile, PipelineError> {
        let text = std::fs::read_to_string(path).map_err(|e| PipelineError::Read {
            file: path.to_owned(),
            source: e,
        })?;
        Self::parse(path, &text)
    }

    /// Parses pipeline text; `path` is used in messages and to resolve
    /// relative plugin paths.
    pub fn parse(path: &Path, text: &str) -> Result<PipelineFile, PipelineError> {
        toml::from_str(text).map_err(|e| {
            let message = e.to_string();
            // The parser's nesting limit is reported without a line or a
            // key (for dotted keys), or as a bare "recursion depth" at a
            // column (for values): say what nests too deep, and where.
            let limit = ["recursion limit", "max recursion depth"];
            let message = match limit
                .iter()
                .any(|l| message.contains(l))
                .then(|| too_deep(text))
            {
                Some(Some(deep)) => deep,
                _ => message.trim_end().to_owned(),
            };
            PipelineError::Syntax {
                file: path.to_owned(),
                message,
            }
        })
    }
}

/// How deep the TOML parser lets a pipeline file nest: dotted parts of one
/// key (`a.b.c = 1`, `[a.b.c]`) beyond this, or arrays and inline tables
/// nested in a value beyond this, are refused as a "recursion limit".
pub const MAX_NESTING: usize = 80;

/// A dotted key or a nested value (`item`, counted from the start), and
/// where it starts.
#[derive(Default)]
struct Deepest {
    depth: usize,
    line: usize,
    key: String,
    item: usize,
}

impl Deepest {
    /// Keeps the deepest item until one is past the limit, then the
    /// depth that one reaches.
    fn offer(&mut self, depth: usize, line: usize, key: &str, item: usize) {
        if depth > self.depth && (self.depth <= MAX_NESTING || item == self.item) {
            if item != self.item || self.depth == 0 {
                (self.line, self.key, self.item) = (line, key.to_owned(), item);
            }
            self.depth = depth;
        }
    }
}

/// What the scanner of [`nesting`] expects next.
enum Mode {
    /// A key, or a table header at the start of a line.
    Key,
    /// The key's parts, up to `=` (or `]` in a header).
    InKey { header: bool },
    /// A value.
    Value,
}

/// The first place where `text` nests deeper than [`MAX_NESTING`], said
/// for a person: the line, the key (shortened) and how deep; `None` if
/// nothing does. Linear in the text, and reads any text without failing
/// (the file has already failed to parse; this only explains why).
fn too_deep(text: &str) -> Option<String> {
    let shortened = |key: &str| {
        let mut short: String = key.chars().take(40).collect();
        if short.len() < key.len() {
            short.push('…');
        }
        short
    };
    let (keys, values) = nesting(text);
    let (key_past, value_past) = (keys.depth > MAX_NESTING, values.depth > MAX_NESTING);
    if key_past && (!value_past || keys.line <= values.line) {
        Some(format!(
            "line {}: the key `{}` has {} dotted parts; a key may have at most {MAX_NESTING} \
             (the TOML parser's recursion limit)",
            keys.line,
            shortened(&keys.key),
            keys.depth
        ))
    } else if value_past {
        Some(format!(
            "line {}: the value of `{}` nests {} arrays or inline tables deep; a value may nest \
             at most {MAX_NESTING} (the TOML parser's recursion limit)",
            values.line,
            shortened(&values.key),
            values.depth
        ))
    } else {
        None
    }
}

/// The most deeply dotted key of `text` and its most deeply nested value
/// (see [`Deepest::offer`]), found by a scan that knows just enough TOML:
/// comments, strings, keys, headers, arrays and inline tables.
fn nesting(text: &str) -> (Deepest, Deepest) {
    let mut keys = Deepest::default();
    let mut values = Deepest::default();
    // Open arrays (`[`) and inline tables (`{`) of the current value.
    let mut open: Vec<char> = Vec::new();
    let mut mode = Mode::Key;
    let mut line = 1;
    let (mut key, mut key_line, mut parts) = (String::new(), 1, 0);
    // Keys so far, and the key of the current value outside any inline
    // table (with its number).
    let mut item = 0;
    let (mut top_key, mut top_item) = (String::new(), 0);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => {
                line += 1;
                if open.is_empty() {
                    mode = Mode::Key;
                }
                continue;
            }
            '#' => {
                while chars.next_if(|&c| c != '\n').is_some() {}
                continue;
            }
            '"' | '\'' => {
                // A string, as part of a key or as a value: skipped, with
                // the lines of a multi-line one counted.
                let text = skip_string(c, &mut chars, &mut line);
                match mode {
                    Mode::InKey { .. } => key.push_str(&text),
                    Mode::Key => {
                        (key, key_line, parts) = (text, line, 1);
                        mode = Mode::InKey { header: false };
                    }
                    Mode::Value => {}
                }
                continue;
            }
            _ => {}
        }
        match mode {
            Mode::Key if c.is_whitespace() => {}
            Mode::Key if c == '[' && open.is_empty() => {
                chars.next_if_eq(&'[');
                (key, key_line, parts) = (String::new(), line, 1);
                mode = Mode::InKey { header: true };
            }
            Mode::Key if c == '}' => {
                open.pop();
                mode = Mode::Value;
            }
            Mode::Key => {
                (key, key_line, parts) = (c.to_string(), line, 1);
                mode = Mode::InKey { header: false };
            }
            Mode::InKey { header } => {
                if c == '.' {
                    parts += 1;
                }
                if (c == '=' && !header) || (c == ']' && header) {
                    item += 1;
                    keys.offer(parts, key_line, key.trim(), item);
                    if header {
                        chars.next_if_eq(&']');
                        mode = Mode::Key;
                    } else {
                        if open.is_empty() {
                            (top_key, top_item) = (key.trim().to_owned(), item);
                        }
                        mode = Mode::Value;
                    }
                } else if key.len() < 4096 {
                    key.push(c);
                }
            }
            Mode::Value => match c {
                '[' | '{' => {
                    open.push(c);
                    values.offer(open.len(), line, &top_key, top_item);
                    if c == '{' {
                        mode = Mode::Key;
                    }
                }
                ']' | '}' => {
                    open.pop();
                }
                ',' if open.last() == Some(&'{') => mode = Mode::Key,
                _ => {}
            },
        }
    }
    (keys, values)
}

/// Skips a string that opened with `quote` (already read), counting the
/// lines of a multi-line one into `line`; returns its start (at most 64
/// bytes and a character), quotes included, as part of a key.
fn skip_string(
    quote: char,
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    line: &mut usize,
) -> String {
    let mut text = String::from(quote);
    let empty = chars.next_if_eq(&quote).is_some();
    let triple = empty && chars.next_if_eq(&quote).is_some();
    if empty && !triple {
        text.push(quote);
    } else {
        let mut quotes = 0;
        while let Some(s) = chars.next() {
            if s == '\n' {
                *line += 1;
            }
            if text.len() < 64 {
                text.push(s);
            }
            if quote == '"' && s == '\\' {
                if chars.next() == Some('\n') {
                    *line += 1;
                }
                quotes = 0;
                continue;
            }
            quotes = if s == quote { quotes + 1 } else { 0 };
            if quotes == if triple { 3 } else { 1 } || (!triple && s == '\n') {
                break;
            }
        }
    }
    text
}

/// A scalar from a flattened table.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// A string.
    String(String),
    /// An integer.
    Integer(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
}

impl Scalar {
    /// The value as text, the way Kafka properties are written.
    pub fn to_text(&self) -> String {
        match self {
            Scalar::String(s) => s.clone(),
            Scalar::Integer(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }

    /// A short description of the type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Scalar::String(_) => "a string",
            Scalar::Integer(_) => "an integer",
            Scalar::Float(_) => "a float",
            Scalar::Bool(_) => "a boolean",
        }
    }
}

/// Flattens nested tables into dotted names: `{max = {batch = {records = 5}}}`
/// becomes `max.batch.records = 5`. Arrays, dates and inline arrays are
/// refused with the dotted name of where they stand.
pub fn flatten(table: &toml::Table, section: &str) -> Result<BTreeMap<String, Scalar>, String> {
    fn walk(
        prefix: &str,
        table: &toml::Table,
        section: &str,
        out: &mut BTreeMap<String, Scalar>,
    ) -> Result<(), String> {
        for (k, v) in table {
            let name = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            let scalar = match v {
                toml::Value::Table(t) => {
                    walk(&name, t, section, out)?;
                    continue;
                }
                toml::Value::String(s) => Scalar::String(s.clone()),
                toml::Value::Integer(i) => Scalar::Integer(*i),
                toml::Value::Float(f) => Scalar::Float(*f),
                toml::Value::Boolean(b) => Scalar::Bool(*b),
                other => {
                    return Err(format!(
                        "{section}: `{name}` must be a string, number or boolean, not {}",
                        other.type_str()
                    ));
                }
            };
            out.insert(name, scalar);
        }
        Ok(())
    }
    let mut out = BTreeMap::new();
    walk("", table, section, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<PipelineFile, String> {
        PipelineFile::parse(Path::new("p.toml"), text).map_err(|e| e.to_string())
    }

    const MINIMAL: &str = r#"
        application.id = "app"
        [sources.in]
        [steps.s]
        plugin = "x.wasm"
        inputs = ["in"]
        [sinks.out]
        inputs = ["s"]
    "#;

    #[test]
    fn minimal_file_uses_defaults() {
        let f = parse(MINIMAL).unwrap();
        assert_eq!(f.application.id, "app");
        assert_eq!(f.errors.rejected, ErrorPolicy::Dlq);
        assert_eq!(f.errors.trap, ErrorPolicy::Fail);
        assert!(f.sources["in"].topic.is_none());
    }

    #[test]
    fn unknown_key_names_file_key_and_expected() {
        let e = parse(&MINIMAL.replace("inputs = [\"s\"]", "inputs = [\"s\"]\ntopik = \"x\""))
            .unwrap_err();
        assert!(e.contains("p.toml"), "{e}");
        assert!(e.contains("topik"), "{e}");
        assert!(e.contains("expected `topic` or `inputs`"), "{e}");
    }

    #[test]
    fn missing_field_is_named() {
        let e = parse(&MINIMAL.replace("inputs = [\"in\"]", "")).unwrap_err();
        assert!(e.contains("missing field `inputs`"), "{e}");
    }

    #[test]
    fn wrong_type_says_what_was_expected() {
        let e = parse(&MINIMAL.replace("inputs = [\"in\"]", "inputs = \"in\"")).unwrap_err();
        assert!(
            e.contains("inputs") && e.contains("expected a sequence"),
            "{e}"
        );
        let e = parse(&format!("{MINIMAL}\n[errors]\nrejected = \"drop\"")).unwrap_err();
        assert!(e.contains("expected one of `fail`, `skip`, `dlq`"), "{e}");
    }

    /// The TOML parser refuses a key of more than 80 dotted parts, or a
    /// value nested more than 80 arrays or inline tables deep, as a
    /// "recursion limit" that names no line and no key: the message says
    /// which key, on which line, and how deep against the limit.
    #[test]
    fn nesting_past_the_parsers_limit_names_the_line_key_and_depth() {
        let line_of = |text: &str, needle: &str| {
            1 + text
                .lines()
                .position(|l| l.contains(needle))
                .expect("needle")
        };
        let dotted = |parts: usize| vec!["deep"; parts].join(".");

        // A dotted key, in [processing].
        let text = format!("{MINIMAL}\n[processing]\n{} = 1\n", dotted(100));
        let e = parse(&text).unwrap_err();
        let line = line_of(&text, "deep.deep");
        assert!(e.contains("p.toml"), "{e}");
        assert!(
            e.contains(&format!(
                "line {line}: the key `deep.deep.deep.deep.deep.deep.deep.deep.…` has 100 dotted parts"
            )),
            "{e}"
        );
        assert!(e.contains("at most 80"), "{e}");
        assert!(
            e.len() < 400,
            "the key is shortened, not echoed: {} bytes",
            e.len()
        );
        // A table header; a comment and a multi-line string before it
        // keep the line count honest.
        let text = format!(
            "# a comment with [brackets] and \"quotes\"\n{MINIMAL}\n[steps.s.config]\nnote = \"\"\"\nline one\nline two\"\"\"\n\n[steps.s.config.{}]\nx = 1\n",
            dotted(90)
        );
        let e = parse(&text).unwrap_err();
        let line = line_of(&text, "[steps.s.config.deep");
        assert!(
            e.contains(&format!("line {line}: the key `steps.s.config.deep.")),
            "{e}"
        );
        assert!(e.contains("has 93 dotted parts"), "{e}");

        // Arrays and inline tables nested in a value.
        let text = format!(
            "{MINIMAL}\n[kafka]\nok = [1, [2], {{a = \"]\"}}]\nnested = {}{}\n",
            "[".repeat(100),
            "]".repeat(100)
        );
        let e = parse(&text).unwrap_err();
        let line = line_of(&text, "nested = ");
        assert!(
            e.contains(&format!(
                "line {line}: the value of `nested` nests 100 arrays or inline tables deep"
            )),
            "{e}"
        );
        let text = format!(
            "{MINIMAL}\n[kafka]\ntables = {}1{}\n",
            "{a = ".repeat(100),
            "}".repeat(100)
        );
        let e = parse(&text).unwrap_err();
        let line = line_of(&text, "tables = ");
        assert!(
            e.contains(&format!("line {line}: the value of `tables` nests 100")),
            "{e}"
        );

        // At the limit the file parses; the limit is the parser's own.
        let text = format!(
            "{MINIMAL}\n[kafka]\n{} = {}1{}\n",
            dotted(MAX_NESTING),
            "[".repeat(MAX_NESTING),
            "]".repeat(MAX_NESTING)
        );
        parse(&text).unwrap();
        let text = format!("{MINIMAL}\n[kafka]\n{} = 1\n", dotted(MAX_NESTING + 1));
        assert!(parse(&text).unwrap_err().contains("has 81 dotted parts"));

        // Another error that mentions the words is left as it is.
        let e = parse(&MINIMAL.replace(
            "inputs = [\"s\"]",
            "inputs = [\"s\"]\n\"recursion limit\" = 1",
        ))
        .unwrap_err();
        assert!(e.contains("unknown field `recursion limit`"), "{e}");
    }

    #[test]
    fn flatten_joins_dotted_names_and_refuses_arrays() {
        let t: toml::Table =
            toml::from_str("max.batch.records = 5\n\"a.b\" = \"x\"\nc = [1]").unwrap();
        let e = flatten(&t, "[processing]").unwrap_err();
        assert!(e.contains("`c`") && e.contains("array"), "{e}");
        let t: toml::Table = toml::from_str("max.batch.records = 5\n\"a.b\" = \"x\"").unwrap();
        let f = flatten(&t, "[processing]").unwrap();
        assert_eq!(f["max.batch.records"], Scalar::Integer(5));
        assert_eq!(f["a.b"], Scalar::String("x".into()));
    }
}
