//! Fuzz targets for what a tenant or a plugin hands the host: pipeline
//! files, the output frames of plugin calls, Debezium change events and
//! the admin API's request bodies.
//!
//! Each target is a `#[test]` calling `bolero::check!()`. Under `cargo
//! test` it is a short random run (one second by default; set
//! `BOLERO_RANDOM_TEST_TIME_MS` or `BOLERO_RANDOM_ITERATIONS` to change it,
//! `BOLERO_RANDOM_SEED` to replay a failure). `scripts/fuzz.sh` runs them
//! coverage-guided with libFuzzer (`cargo bolero test <target> --engine
//! libfuzzer`).
//!
//! Every target feeds the host's own entry points (nothing here is a copy
//! of a parser) and checks more than the absence of panics: a pipeline
//! that is accepted is a valid DAG; a frame the host accepts reads the same
//! through the frame reader and survives a re-encoding; a Debezium event
//! leaves the row its `op` and `after` say.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;

use bolero::{TypeGenerator, check};
use bytes::Bytes;
use serde_json::{Map, Value, json};
use sluice::cdc::debezium_row;
use sluice::plugin::frame::{self, Outcome};
use sluice::record::{Record, RecordRef};
use sluice::topology::pipeline_file::PipelineFile;
use sluice::topology::{NodeId, Operation, Topology, render};
use sluice::window::Windows;
use sluice_frame::{Reader, Status, Writer};

// ---------------------------------------------------------------------------
// 1. The pipeline file: `PipelineFile::parse`, then `Topology::from_file`.
// ---------------------------------------------------------------------------

const PIPELINE: &str = "/fuzz/tenant/pipeline.toml";

/// Parses and validates `text` as the host does; an accepted topology must
/// hold together, a refused one must say why.
fn pipeline(text: &str) {
    let path = Path::new(PIPELINE);
    let file = match PipelineFile::parse(path, text) {
        Ok(file) => file,
        Err(e) => {
            let message = e.to_string();
            assert!(message.contains(PIPELINE), "{message}");
            return;
        }
    };
    match Topology::from_file(path, file) {
        Ok(topology) => check_topology(&topology),
        Err(e) => {
            let message = e.to_string();
            assert!(message.contains(PIPELINE), "{message}");
            assert!(message.len() > PIPELINE.len() + 25, "{message}");
        }
    }
}

/// Kafka's rule for topic names, which the host applies to every name it
/// builds a topic or a directory from.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn check_topology(t: &Topology) {
    assert!(valid_name(&t.application_id), "{:?}", t.application_id);
    assert!(valid_name(&t.errors.dlq_topic), "{:?}", t.errors.dlq_topic);
    assert!(!t.sources.is_empty() && !t.sinks.is_empty());
    let mut names = HashSet::new();
    for name in t
        .sources
        .iter()
        .map(|s| &s.name)
        .chain(t.steps.iter().map(|s| &s.name))
        .chain(t.sinks.iter().filter(|s| !s.repartition).map(|s| &s.name))
    {
        assert!(names.insert(name.as_str()), "node name {name:?} twice");
    }
    // A repartition topic's sink bears the name of the source that reads
    // the topic back: the two ends of one node.
    for sink in t.sinks.iter().filter(|s| s.repartition) {
        let ends = (t.sources.iter())
            .filter(|s| s.repartition.is_some() && s.name == sink.name && s.topic == sink.topic)
            .count();
        assert_eq!(ends, 1, "repartition {:?}", sink.name);
    }
    for s in &t.sources {
        assert!(valid_name(&s.topic), "{:?}", s.topic);
        assert!(s.partitions >= 1);
        if let Some(table) = &s.table {
            assert!(valid_name(&table.store), "{:?}", table.store);
        }
    }
    // Steps come after every step they read from, and read something.
    let input_ok = |at: usize, n: &NodeId| match *n {
        NodeId::Source(i) => i < t.sources.len(),
        NodeId::Step(i) => i < at,
    };
    for (i, step) in t.steps.iter().enumerate() {
        assert!(!step.inputs.is_empty(), "{}", step.name);
        assert!(
            step.inputs.iter().all(|n| input_ok(i, n)),
            "step {} reads a later step: {:?}",
            step.name,
            step.inputs
        );
        let fed = t.consumers_of(NodeId::Step(i)).next().is_some()
            || t.sinks.iter().any(|s| s.inputs.contains(&NodeId::Step(i)));
        assert!(fed, "step {} feeds nothing", step.name);
        if let Operation::Aggregate { store, window, .. } = &step.op {
            assert!(valid_name(store), "{store:?}");
            // What it aggregates is keyed as the source was: every step
            // upstream keeps keys, and no source upstream is a table.
            let mut stack = step.inputs.clone();
            let mut seen = HashSet::new();
            while let Some(node) = stack.pop() {
                if !seen.insert(node) {
                    continue;
                }
                match node {
                    NodeId::Step(j) => {
                        assert!(
                            t.steps[j].keeps_key,
                            "{} aggregates re-keyed records",
                            step.name
                        );
                        stack.extend(&t.steps[j].inputs);
                    }
                    NodeId::Source(j) => assert!(t.sources[j].table.is_none()),
                }
            }
            if let Some(w) = window {
                assert!(w.grace >= 0 && w.idle_close.is_none_or(|ms| ms > 0));
                let positive = match w.windows {
                    Windows::Hopping(h) => h.size() > 0 && h.advance() > 0,
                    Windows::Sliding(s) => s.difference() > 0,
                    Windows::Session(s) => s.gap() > 0,
                };
                assert!(positive, "{w:?}");
            }
        }
    }
    let sources: HashSet<&str> = t.sources.iter().map(|s| s.topic.as_str()).collect();
    if t.uses_dlq() {
        assert!(
            !sources.contains(t.errors.dlq_topic.as_str()),
            "dead letters loop"
        );
    }
    for sink in &t.sinks {
        assert!(valid_name(&sink.topic), "{:?}", sink.topic);
        // Only a repartition topic is read back, and only by its source.
        let readers = (t.sources.iter()).filter(|s| s.topic == sink.topic);
        assert!(
            readers
                .clone()
                .all(|s| sink.repartition && s.repartition.is_some()),
            "reads its own output"
        );
        assert_eq!(readers.count() == 1, sink.repartition, "{:?}", sink.topic);
        assert!(!sink.inputs.is_empty());
        assert!(sink.inputs.iter().all(|n| input_ok(t.steps.len(), n)));
    }
    // A store belongs to one node.
    let mut stores = HashSet::new();
    for (store, _) in t.stores() {
        assert!(stores.insert(store), "store {store:?} owned twice");
    }
    let p = &t.processing;
    assert!(p.max_batch_records >= 1 && p.num_stream_threads >= 1);
    assert!(t.state.restore_chunk >= 1);
    assert!(render::dot(t).contains(&t.application_id));
    assert!(render::text(t).contains(&t.application_id));
    let _ = t.output_topics();
    let _ = t.idle_close();
    let _ = t.is_stateful();
}

/// Arbitrary text, as a tenant could deploy it.
#[test]
fn pipeline_text() {
    check!().for_each(|bytes: &[u8]| pipeline(&String::from_utf8_lossy(bytes)));
}

/// Pipelines built from the real keys and plausible (and implausible)
/// values, so that the fuzzer spends its time past the TOML layer, in
/// validation.
#[test]
fn pipeline_structured() {
    check!()
        .with_type::<Gen>()
        .for_each(|g: &Gen| pipeline(&g.render()));
}

/// A generated pipeline: every choice is an index into the pools below.
#[derive(Debug, TypeGenerator)]
struct Gen {
    app: u8,
    processing: Vec<(u8, u8)>,
    errors: Option<(Option<u8>, Option<u8>, Option<u8>)>,
    kafka: Vec<(u8, u8)>,
    state: Option<(Option<u8>, Option<u8>, Option<u8>)>,
    sources: Vec<GenSource>,
    steps: Vec<GenStep>,
    sinks: Vec<GenSink>,
    /// A stray `key = value` in some table.
    stray: Option<(u8, u8, u8)>,
    /// Up to 6 steps, but all of them (up to 64) between 120 and 127.
    many: u8,
}

#[derive(Debug, TypeGenerator)]
struct GenSource {
    /// Named from the pool from 100 to 103, else `src<i>`.
    name: u8,
    topic: Option<u8>,
    partitions: Option<u8>,
    /// `table = true`, its store and its format.
    table: Option<(Option<u8>, Option<u8>)>,
    /// `timestamp`, with its `timestamp-field` or `timestamp-plugin`.
    timestamp: Option<(u8, u8)>,
    config: Vec<(u8, u8)>,
    invalid: Option<u8>,
    /// From 120 to 127, a key that does not go with the others.
    odd: u8,
}

#[derive(Debug, TypeGenerator)]
struct GenStep {
    /// Named from the pool from 100 to 103, else `s<i>`.
    name: u8,
    /// A processor (`plugin`) or an aggregation, rarely both or neither.
    op: u8,
    plugin: u8,
    /// Processors: `key` and `stores`.
    key: Option<u8>,
    stores: Vec<u8>,
    /// Aggregations: `store` and `window`.
    store: Option<u8>,
    window: Option<GenWindow>,
    inputs: Vec<GenInput>,
    config: Vec<(u8, u8)>,
    /// From 120 to 127, a key that belongs to the other kind of step.
    odd: u8,
}

#[derive(Debug, TypeGenerator)]
struct GenWindow {
    /// Tumbling, hopping, sliding or session, with the fields of its type.
    kind: u8,
    a: u8,
    b: u8,
    grace: Option<u8>,
    emit: Option<u8>,
    late: Option<u8>,
    idle: Option<u8>,
    /// From 120 to 127, a field of another type of window.
    odd: u8,
}

#[derive(Debug, TypeGenerator)]
struct GenSink {
    /// Named from the pool from 100 to 103, else `sink<i>`.
    name: u8,
    topic: Option<u8>,
    inputs: Vec<GenInput>,
}

/// Where an `inputs` entry points.
#[derive(Debug, TypeGenerator)]
enum GenInput {
    /// One of the steps just before (chains and diamonds).
    Back(u8),
    /// A source, by position.
    Source(u8),
    /// Any step before, by position; from 120 to 127, any step (forward
    /// references make cycles).
    Step(u8),
    /// From 112 to 127, a name from the pool (sinks, unknown names), else
    /// a source.
    Name(u8),
}

/// Node, store and topic names: valid ones (some colliding with the
/// generated `src<i>`, `s<i>`, `sink<i>`), then invalid ones.
const NAMES: &[&str] = &[
    "in", "out", "s0", "src0", "sink0", "orders", "app", "a.b", "-", "_", "count", "UPPER", "in2",
    "s1",
];
const BAD_NAMES: &[&str] = &[
    "", " ", ".", "..", "a/b", "é", "a b", "x\"y", "a\nb", "../x",
];
const PROCESSING_KEYS: &[&str] = &[
    "max.batch.records",
    "commit.interval.ms",
    "num.stream.threads",
    "processing.guarantee",
    "plugin.deadline.ms",
    "plugin.memory.mb",
    "plugin.output.max.kb",
    "quarantine.after.traps",
    "quarantine.window.ms",
    "unknown",
];
const KAFKA_KEYS: &[&str] = &[
    "linger.ms",
    "batch.size",
    "compression.type",
    "fetch.max.bytes",
    "plugin.library.paths",
    "bootstrap.servers",
    "ssl.key.location",
    "sasl.kerberos.kinit.cmd",
    "client.id",
    "group.id",
    "transactional.id",
    "debug",
];
const PLUGINS: &[&str] = &[
    "p.wasm",
    "count",
    "../other/p.wasm",
    "/abs/p.wasm",
    "crate",
    ".",
    "",
    "a.WASM",
];
const DURATIONS: &[&str] = &[
    "5m",
    "1ms",
    "30s",
    "2h",
    "7d",
    "0",
    "0s",
    "1.5s",
    "-5s",
    "99999999999999999999",
    "106751991167d",
    "9223372036854775807",
    "5 weeks",
    "",
];
/// Values for any key: strings, then integers, then other TOML types.
const STRINGS: &[&str] = &[
    "",
    "x",
    "exactly-once",
    "at-least-once",
    "record",
    "field",
    "plugin",
    "dlq",
    "fail",
    "skip",
    "plain",
    "debezium",
    "kept",
    "may-change",
    "on-window-close",
    "memory",
    "rocksdb",
    "use-partition-time",
    "a..b",
    "event.time",
    "avro",
    "drop",
    "final",
    "once",
];
const INTEGERS: &[i64] = &[
    1,
    2,
    64,
    500,
    4096,
    86_400_000,
    4 << 20,
    0,
    -1,
    4097,
    86_400_001,
    (4 << 20) + 1,
    i64::MAX,
    i64::MIN,
];
const OTHERS: &[&str] = &[
    "true",
    "1.5",
    "nan",
    "[1, 2]",
    "{ a = 1 }",
    "1979-05-27",
    "[]",
];

/// TOML basic string.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn pick<'a>(pool: &[&'a str], i: u8) -> &'a str {
    pool[i as usize % pool.len()]
}

// Each choice is a byte, and odd values (invalid names, values of the
// wrong type, out of range) take a narrow band of it: a pipeline makes
// dozens of choices, and should usually be well-formed enough to get
// through to validation, while every odd value stays reachable.

/// A name: a valid one, one time in 25 an invalid one.
fn name(i: u8) -> &'static str {
    match i {
        118..128 => BAD_NAMES[(i - 118) as usize],
        _ => pick(NAMES, i),
    }
}

/// A value: mostly from the key's own pool, sometimes anything at all.
fn value(good: &[&str], i: u8) -> String {
    let any = STRINGS.len() + INTEGERS.len() + OTHERS.len();
    match i {
        126..128 => match i as usize % any {
            j if j < STRINGS.len() => quote(STRINGS[j]),
            j if j < STRINGS.len() + INTEGERS.len() => INTEGERS[j - STRINGS.len()].to_string(),
            j => OTHERS[j - STRINGS.len() - INTEGERS.len()].to_owned(),
        },
        _ if good.is_empty() => value(STRINGS, i),
        _ => quote(pick(good, i)),
    }
}

/// A name as a value.
fn name_value(i: u8) -> String {
    quote(name(i))
}

/// A positive integer, sometimes out of range, sometimes anything.
fn number(i: u8) -> String {
    match i {
        124..126 => INTEGERS[i as usize % INTEGERS.len()].to_string(),
        126..128 => value(&[], i),
        _ => INTEGERS[i as usize % 3].to_string(),
    }
}

/// A duration: milliseconds or a duration string, sometimes an invalid
/// one, sometimes anything.
fn duration(i: u8) -> String {
    match i {
        122..126 => quote(pick(&DURATIONS[5..], i)),
        126..128 => value(&[], i),
        _ if i % 2 == 0 => INTEGERS[i as usize % 4].to_string(),
        _ => quote(pick(&DURATIONS[..5], i)),
    }
}

/// `key = value` lines, each key once (a key twice is only a TOML error).
fn settings(
    pairs: &[(u8, u8)],
    key: impl Fn(u8) -> String,
    value: impl Fn(&str, u8) -> String,
) -> String {
    let mut seen = HashSet::new();
    let mut out = String::new();
    for &(k, v) in pairs {
        let k = key(k);
        if seen.insert(k.clone()) {
            let v = value(&k, v);
            let _ = writeln!(out, "{k} = {v}");
        }
    }
    out
}

impl GenWindow {
    fn render(&self) -> String {
        let mut out = String::new();
        let kinds = ["tumbling", "hopping", "sliding", "session", "daily"];
        let kind = match self.kind {
            127 => "daily",
            k => pick(&kinds[..4], k),
        };
        let _ = writeln!(out, "window.type = {}", quote(kind));
        let fields: &[&str] = match kind {
            "tumbling" => &["size"],
            "hopping" => &["size", "advance"],
            "sliding" => &["difference"],
            "session" => &["gap"],
            _ => &[],
        };
        for (field, v) in fields.iter().zip([self.a, self.b]) {
            let _ = writeln!(out, "window.{field} = {}", duration(v));
        }
        match self.odd {
            120 => out += "window.advance = 1000\n",
            121 => out += "window.gap = 1000\n",
            122 => out += "window.size = 1000\n",
            123 => out += "window.difference = 1000\n",
            _ => {}
        }
        if let Some(v) = self.grace {
            let _ = writeln!(out, "window.grace = {}", duration(v));
        }
        if let Some(v) = self.emit {
            let modes = ["on-update", "on-window-close"];
            let _ = writeln!(out, "emit = {}", value(&modes, v));
        }
        if let Some(v) = self.late {
            let _ = writeln!(out, "late = {}", value(&["skip", "dlq"], v));
        }
        if let Some(v) = self.idle {
            let _ = writeln!(out, "close.idle.after = {}", duration(v));
        }
        out
    }
}

impl Gen {
    fn steps(&self) -> &[GenStep] {
        match self.many {
            120..128 => &self.steps,
            _ => &self.steps[..self.steps.len().min(6)],
        }
    }

    fn source_name(&self, i: usize) -> String {
        match self.sources.get(i).map(|s| s.name) {
            Some(n @ 100..104) => name(n).to_owned(),
            _ => format!("src{i}"),
        }
    }

    fn step_name(&self, i: usize) -> String {
        match self.steps().get(i).map(|s| s.name) {
            Some(n @ 100..104) => name(n).to_owned(),
            _ => format!("s{i}"),
        }
    }

    /// The `inputs` of a node at `at` (steps before it are `at - 1`, …).
    fn inputs(&self, at: usize, gs: &[GenInput]) -> String {
        let input = |g: &GenInput| match *g {
            GenInput::Back(_) if at == 0 => self.source_name(0),
            GenInput::Back(k) => self.step_name(at - 1 - (k as usize % 3).min(at - 1)),
            GenInput::Source(k) => self.source_name(k as usize % self.sources.len().clamp(1, 3)),
            GenInput::Step(k @ 120..128) => self.step_name(k as usize % self.steps().len().max(1)),
            GenInput::Step(_) if at == 0 => self.source_name(0),
            GenInput::Step(k) => self.step_name(k as usize % at),
            GenInput::Name(k @ 112..128) => name(k).to_owned(),
            GenInput::Name(k) => self.source_name(k as usize % self.sources.len().clamp(1, 3)),
        };
        let mut names: Vec<String> = Vec::new();
        let first = [GenInput::Back(0)];
        let gs = if gs.is_empty() { &first[..] } else { gs };
        for g in gs.iter().take(4) {
            let name = quote(&input(g));
            // Each input once, but for an odd one out.
            if !names.contains(&name) || matches!(g, GenInput::Name(127)) {
                names.push(name);
            }
        }
        format!("inputs = [{}]\n", names.join(", "))
    }

    fn render(&self) -> String {
        self.render_with(true)
    }

    /// The pipeline; without `[kafka]` and `[state]` unless `all`
    /// (`sluice serve` refuses most of what they set for a tenant).
    fn render_with(&self, all: bool) -> String {
        let mut out = format!("application.id = {}\n", name_value(self.app));
        let stray = |out: &mut String, table: usize| {
            if let Some((t, k, v)) = self.stray
                && t as usize % 8 == table
            {
                let _ = writeln!(out, "{} = {}", quote(name(k)), value(&[], v));
            }
        };
        stray(&mut out, 0);
        if !self.processing.is_empty() {
            out.push_str("[processing]\n");
            out += &settings(
                &self.processing,
                |k| match k {
                    126..128 => pick(PROCESSING_KEYS, k).to_owned(),
                    _ => pick(&PROCESSING_KEYS[..9], k).to_owned(),
                },
                |k, v| match k {
                    "processing.guarantee" => value(&["exactly-once", "at-least-once"], v),
                    _ => number(v),
                },
            );
        }
        if let Some((rejected, trap, dlq)) = self.errors {
            out.push_str("[errors]\n");
            let policies = ["fail", "skip", "dlq"];
            if let Some(v) = rejected {
                let _ = writeln!(out, "rejected = {}", value(&policies, v));
            }
            if let Some(v) = trap {
                let _ = writeln!(out, "trap = {}", value(&policies, v));
            }
            if let Some(v) = dlq {
                let _ = writeln!(out, "dlq-topic = {}", name_value(v));
            }
            stray(&mut out, 1);
        }
        if all && !self.kafka.is_empty() {
            out.push_str("[kafka]\n");
            out += &settings(
                &self.kafka,
                |k| pick(KAFKA_KEYS, k).to_owned(),
                |_, v| value(&["1", "lz4", "x"], v),
            );
        }
        if let Some((dir, store, chunk)) = self.state.filter(|_| all) {
            out.push_str("[state]\n");
            if let Some(v) = dir {
                let _ = writeln!(out, "dir = {}", value(&["state", "/tmp/x", "../.."], v));
            }
            if let Some(v) = store {
                let _ = writeln!(out, "store = {}", value(&["memory", "rocksdb"], v));
            }
            if let Some(v) = chunk {
                let _ = writeln!(out, "restore-chunk = {}", number(v));
            }
            stray(&mut out, 2);
        }
        let config = |pairs: &[(u8, u8)], prefix: &str| {
            settings(
                pairs,
                |k| format!("{prefix}.{}", quote(name(k))),
                |_, v| value(&["x", "1"], v),
            )
        };
        if self.sources.is_empty() {
            out += "[sources.src0]\n";
        }
        for (i, s) in self.sources.iter().enumerate().take(3) {
            let _ = writeln!(out, "[sources.{}]", quote(&self.source_name(i)));
            if let Some(v) = s.topic {
                let _ = writeln!(out, "topic = {}", name_value(v));
            }
            if let Some(p) = s.partitions {
                let p = match p {
                    126 => -1i32,
                    127 => 0,
                    p => 1 + i32::from(p % 4),
                };
                let _ = writeln!(out, "partitions = {p}");
            }
            if let Some((store, format)) = s.table {
                out += "table = true\n";
                if let Some(v) = store {
                    let _ = writeln!(out, "store = {}", name_value(v));
                }
                if let Some(v) = format {
                    let _ = writeln!(out, "format = {}", value(&["plain", "debezium"], v));
                }
            }
            if let Some((kind, v)) = s.timestamp {
                let kinds = ["record", "log-append", "wall-clock", "field", "plugin"];
                let kind = pick(&kinds, kind);
                let _ = writeln!(out, "timestamp = {}", quote(kind));
                let fields = ["time", "event.time"];
                match kind {
                    "field" => {
                        let _ = writeln!(out, "timestamp-field = {}", value(&fields, v));
                    }
                    "plugin" => {
                        let _ = writeln!(out, "timestamp-plugin = {}", value(PLUGINS, v));
                    }
                    _ => {}
                }
            }
            match s.odd {
                120 => out += "table = false\nstore = \"x\"\n",
                121 => out += "format = \"debezium\"\n",
                122 => out += "timestamp-field = \"t\"\n",
                123 => out += "timestamp-plugin = \"p.wasm\"\n",
                124 => out += "timestamp = \"plugin\"\n",
                125 => out += "timestamp = \"field\"\n",
                _ => {}
            }
            out += &config(&s.config, "timestamp-config");
            if let Some(v) = s.invalid {
                let policies = ["fail", "skip", "use-partition-time"];
                let _ = writeln!(out, "invalid-timestamp = {}", value(&policies, v));
            }
            stray(&mut out, 3);
        }
        for (i, s) in self.steps().iter().enumerate() {
            let _ = writeln!(out, "[steps.{}]", quote(&self.step_name(i)));
            let plugin = value(PLUGINS, s.plugin);
            match s.op {
                126 => {
                    let _ = writeln!(out, "plugin = {plugin}\naggregate = {plugin}");
                }
                127 => {}
                op if op % 2 == 0 => {
                    let _ = writeln!(out, "plugin = {plugin}");
                }
                _ => {
                    let _ = writeln!(out, "aggregate = {plugin}");
                }
            }
            let aggregation = s.op % 2 == 1;
            if !aggregation || s.odd == 120 {
                if let Some(v) = s.key {
                    let _ = writeln!(out, "key = {}", value(&["kept", "may-change"], v));
                }
                if !s.stores.is_empty() {
                    let stores: Vec<String> =
                        s.stores.iter().take(3).map(|v| name_value(*v)).collect();
                    let _ = writeln!(out, "stores = [{}]", stores.join(", "));
                }
            }
            if aggregation || s.odd == 121 {
                if let Some(v) = s.store {
                    let _ = writeln!(out, "store = {}", name_value(v));
                }
                if let Some(w) = &s.window {
                    out += &w.render();
                }
            }
            match s.odd {
                122 => out += "emit = \"on-window-close\"\n",
                123 => out += "late = \"dlq\"\n",
                124 => out += "close.idle.after = \"5m\"\n",
                _ => {}
            }
            out += &self.inputs(i, &s.inputs);
            out += &config(&s.config, "config");
            stray(&mut out, 4 + i % 2);
        }
        if self.sinks.is_empty() {
            out += "[sinks.sink0]\n";
            out += &self.inputs(self.steps().len(), &[GenInput::Back(0)]);
        }
        for (i, s) in self.sinks.iter().enumerate().take(3) {
            let sink = match s.name {
                n @ 100..104 => name(n).to_owned(),
                _ => format!("sink{i}"),
            };
            let _ = writeln!(out, "[sinks.{}]", quote(&sink));
            if let Some(v) = s.topic {
                let _ = writeln!(out, "topic = {}", name_value(v));
            }
            out += &self.inputs(self.steps().len(), &s.inputs);
            stray(&mut out, 6 + i % 2);
        }
        out
    }
}

// ---------------------------------------------------------------------------
// 2. The frame decoder the host runs on what a plugin returns.
// ---------------------------------------------------------------------------

/// Input records for a plugin call of `n` records; every other one has no
/// timestamp, so inherited and missing timestamps both occur.
fn inputs(n: usize) -> Vec<Record> {
    (0..n)
        .map(|i| {
            let mut r = Record::new(
                Some(format!("k{i}").as_bytes()),
                Some(b"v"),
                (i % 2 == 0).then_some(1_000 + i as i64),
            );
            r.headers.push(("h".into(), Some(Bytes::from_static(b"x"))));
            r
        })
        .collect()
}

/// An owned copy of a decoded output: outcomes, and per output record
/// (key, value, timestamp, headers).
type Output = (Vec<Outcome>, Vec<Record>);

/// Decodes `bytes` as the output frame of a call with `records`, as the
/// host does; an accepted frame must read the same through the frame
/// reader, and re-encode to a frame that decodes the same.
fn decode_checked(bytes: &[u8], records: &[RecordRef<'_>]) -> Result<Output, String> {
    let decoded = frame::decode(bytes.to_vec(), records)?;
    assert_eq!(decoded.outcomes.len(), records.len());
    let mut next = 0;
    for outcome in &decoded.outcomes {
        if let Outcome::Ok(range) = outcome {
            assert_eq!(range.start, next, "outputs in order, without gaps");
            next = range.end;
        }
    }
    assert_eq!(next, decoded.len());
    let out: Vec<Record> = (0..decoded.len())
        .map(|i| decoded.record(i).to_owned_record())
        .collect();

    // The same frame, walked with the frame reader.
    let (mut r, count) = Reader::output(bytes).expect("accepted");
    assert_eq!(count as usize, records.len());
    let mut at = 0;
    for input in records {
        match r.status().expect("accepted") {
            Status::Ok(n) => {
                for _ in 0..n {
                    let rec = r.record().expect("accepted");
                    let o = &out[at];
                    assert_eq!(o.key.as_deref(), rec.key);
                    assert_eq!(o.value.as_deref(), rec.value);
                    assert_eq!(o.timestamp, rec.timestamp.or(input.timestamp));
                    let headers: Vec<_> = rec.headers().map(|h| h.expect("accepted")).collect();
                    let owned: Vec<_> = o
                        .headers
                        .iter()
                        .map(|(n, v)| (n.as_str(), v.as_deref()))
                        .collect();
                    assert_eq!(headers, owned);
                    at += 1;
                }
            }
            Status::Rejected { .. } => {}
        }
    }
    assert!(r.is_empty());

    // Re-encoded canonically, it decodes to the same.
    let mut w = Writer::output(Vec::new(), records.len() as u32);
    for outcome in &decoded.outcomes {
        match outcome {
            Outcome::Ok(range) => {
                w.begin_ok();
                for o in &out[range.clone()] {
                    w.record(
                        o.key.as_deref(),
                        o.value.as_deref(),
                        o.timestamp,
                        o.headers.iter().map(|(n, v)| (n.as_str(), v.as_deref())),
                    );
                }
            }
            Outcome::Rejected { code, message } => w.rejected(code, message),
        }
    }
    let again = frame::decode_owned(w.finish(), records).expect("a re-encoded frame decodes");
    assert_eq!(again, (out.clone(), decoded.outcomes.clone()));
    Ok((decoded.outcomes, out))
}

/// Arbitrary bytes as a plugin's output frame. The first byte says how
/// many records the call passed in (0–7).
#[test]
fn frame_decode_bytes() {
    check!().for_each(|bytes: &[u8]| {
        let Some((&n, frame)) = bytes.split_first() else {
            return;
        };
        let inputs = inputs(n as usize % 8);
        let refs: Vec<RecordRef<'_>> = inputs.iter().map(Record::as_ref).collect();
        if let Err(message) = decode_checked(frame, &refs) {
            assert!(!message.is_empty());
        }
        // The frame reader on its own, as an input frame (what the host
        // reads back from kept sliding-window records).
        if let Ok((mut r, count)) = Reader::input(frame) {
            for _ in 0..count {
                let Ok(rec) = r.record() else { break };
                for h in rec.headers() {
                    h.expect("headers are checked when the record is read");
                }
            }
        }
    });
}

#[derive(Debug, Clone, TypeGenerator)]
struct GenRecord {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    timestamp: Option<i64>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

impl GenRecord {
    fn record(&self) -> Record {
        Record {
            key: self.key.clone().map(Bytes::from),
            value: self.value.clone().map(Bytes::from),
            timestamp: self.timestamp,
            headers: self
                .headers
                .iter()
                .map(|(n, v)| (n.clone(), v.clone().map(Bytes::from)))
                .collect(),
        }
    }
}

/// What a plugin answers for one input record.
#[derive(Debug, TypeGenerator)]
enum GenStatus {
    Ok(Vec<GenRecord>),
    Rejected(String, String),
    /// Records written, then abandoned for a rejection (`abandon_ok`).
    Abandoned(Vec<GenRecord>, String, String),
}

#[derive(Debug, TypeGenerator)]
struct GenCall {
    inputs: Vec<GenRecord>,
    statuses: Vec<GenStatus>,
    /// Where to cut the output frame short.
    cut: u16,
    /// A byte to append to it.
    extra: u8,
}

/// Frames written with the encoders decode to what was written: the
/// host's input frame through the frame reader, a plugin's output frame
/// through the host's decoder (timestamps inherited); a cut or a
/// trailing byte is an error.
#[test]
fn frame_round_trip() {
    check!().with_type::<GenCall>().for_each(|call: &GenCall| {
        let inputs: Vec<Record> = call.inputs.iter().map(GenRecord::record).collect();
        let refs: Vec<RecordRef<'_>> = inputs.iter().map(Record::as_ref).collect();

        let input = frame::encode(Vec::new(), refs.iter().copied());
        let (mut r, count) = Reader::input(&input).unwrap();
        assert_eq!(count as usize, inputs.len());
        for want in &inputs {
            let rec = r.record().unwrap();
            assert_eq!(
                (rec.key, rec.value, rec.timestamp),
                (want.key.as_deref(), want.value.as_deref(), want.timestamp)
            );
            let headers: Vec<_> = rec.headers().map(Result::unwrap).collect();
            let owned: Vec<_> = want
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_deref()))
                .collect();
            assert_eq!(headers, owned);
        }
        assert!(r.is_empty());

        let mut w = Writer::output(Vec::new(), inputs.len() as u32);
        let mut outcomes = Vec::new();
        let mut records = Vec::new();
        for (i, input) in inputs.iter().enumerate() {
            let write = |w: &mut Writer, recs: &[GenRecord]| {
                w.begin_ok();
                for g in recs {
                    let r = g.record();
                    w.record(
                        r.key.as_deref(),
                        r.value.as_deref(),
                        r.timestamp,
                        r.headers.iter().map(|(n, v)| (n.as_str(), v.as_deref())),
                    );
                }
            };
            match call.statuses.get(i) {
                None => {
                    w.begin_ok();
                    outcomes.push(Outcome::Ok(records.len()..records.len()));
                }
                Some(GenStatus::Ok(recs)) => {
                    write(&mut w, recs);
                    let start = records.len();
                    records.extend(recs.iter().map(|g| {
                        let mut r = g.record();
                        r.timestamp = r.timestamp.or(input.timestamp);
                        r
                    }));
                    outcomes.push(Outcome::Ok(start..records.len()));
                }
                Some(GenStatus::Rejected(code, message)) => {
                    w.rejected(code, message);
                    outcomes.push(Outcome::Rejected {
                        code: code.clone(),
                        message: message.clone(),
                    });
                }
                Some(GenStatus::Abandoned(recs, code, message)) => {
                    write(&mut w, recs);
                    w.abandon_ok();
                    w.rejected(code, message);
                    outcomes.push(Outcome::Rejected {
                        code: code.clone(),
                        message: message.clone(),
                    });
                }
            }
        }
        let output = w.finish();
        let (got, outs) = decode_checked(&output, &refs).expect("a written frame decodes");
        assert_eq!(got, outcomes);
        assert_eq!(outs, records);

        let cut = call.cut as usize % output.len();
        assert!(
            frame::decode(output[..cut].to_vec(), &refs).is_err(),
            "cut at {cut}"
        );
        let mut longer = output;
        longer.push(call.extra);
        assert!(frame::decode(longer, &refs).is_err());
    });
}

// ---------------------------------------------------------------------------
// 3. The Debezium change-event parser of `format = "debezium"` tables.
// ---------------------------------------------------------------------------

/// Arbitrary bytes as a change event: an error or a row, and a row is the
/// JSON of the event's `after`.
#[test]
fn debezium_bytes() {
    check!().for_each(|bytes: &[u8]| match debezium_row(bytes) {
        Ok(Some(row)) => {
            let row: Value = serde_json::from_slice(&row).expect("a row is JSON");
            assert!(!row.is_null());
            let v: Value = serde_json::from_slice(bytes).expect("was read as JSON");
            let event = match v.get("payload") {
                Some(p) if p.is_object() && v.get("schema").is_some() => p,
                _ => &v,
            };
            assert_eq!(event.get("after"), Some(&row));
        }
        Ok(None) => {
            let v: Value = serde_json::from_slice(bytes).expect("was read as JSON");
            assert!(v.to_string().contains("\"d\""), "{v}");
        }
        Err(message) => assert!(!message.is_empty()),
    });
}

/// A JSON value for an event's fields.
#[derive(Debug, TypeGenerator)]
enum GenJson {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Array(Vec<GenLeaf>),
    Object(Vec<(String, GenLeaf)>),
}

#[derive(Debug, TypeGenerator)]
enum GenLeaf {
    Null,
    Int(i64),
    Float(f64),
    Str(String),
}

impl GenLeaf {
    fn json(&self) -> Value {
        match self {
            GenLeaf::Null => Value::Null,
            GenLeaf::Int(i) => json!(i),
            GenLeaf::Float(f) => json!(f),
            GenLeaf::Str(s) => json!(s),
        }
    }
}

impl GenJson {
    fn json(&self) -> Value {
        match self {
            GenJson::Null => Value::Null,
            GenJson::Bool(b) => json!(b),
            GenJson::Int(i) => json!(i),
            GenJson::Float(f) => json!(f),
            GenJson::Str(s) => json!(s),
            GenJson::Array(a) => Value::Array(a.iter().map(GenLeaf::json).collect()),
            GenJson::Object(o) => {
                Value::Object(o.iter().map(|(k, v)| (k.clone(), v.json())).collect())
            }
        }
    }
}

#[derive(Debug, TypeGenerator)]
struct GenEvent {
    /// 0: bare; 1: `{schema, payload}`; 2: a payload that is not an
    /// object; 3: a payload without a schema.
    wrap: u8,
    /// `c`, `r`, `u`, `d`, another string, or another JSON value.
    op: Option<u8>,
    after: Option<GenJson>,
    before: Option<GenJson>,
    other: Option<(String, GenJson)>,
}

/// Change events built from the envelope's parts: `c`, `r` and `u` with a
/// non-null `after` leave that row; `d` deletes; anything else is an error.
#[test]
fn debezium_structured() {
    check!().with_type::<GenEvent>().for_each(|e: &GenEvent| {
        let ops = ["c", "r", "u", "d", "x", "", "C", "delete"];
        let op: Option<Value> = e.op.map(|i| match i {
            0..200 => json!(ops[i as usize % ops.len()]),
            200..228 => json!(1),
            _ => Value::Null,
        });
        let mut event = Map::new();
        if let Some((k, v)) = &e.other {
            event.insert(k.clone(), v.json());
        }
        if let Some(op) = &op {
            event.insert("op".into(), op.clone());
        }
        if let Some(after) = &e.after {
            event.insert("after".into(), after.json());
        }
        if let Some(before) = &e.before {
            event.insert("before".into(), before.json());
        }
        let event = Value::Object(event);
        let wrapped = match e.wrap % 4 {
            0 => event.clone(),
            1 => json!({"schema": {"type": "struct"}, "payload": event}),
            2 => json!({"schema": null, "payload": [event]}),
            _ => json!({"payload": event}),
        };
        let bytes = serde_json::to_vec(&wrapped).unwrap();
        let got = debezium_row(&bytes);
        // The envelope as the module documents it.
        let seen = if e.wrap % 4 == 1 { &event } else { &wrapped };
        let after = seen.get("after").filter(|a| !a.is_null());
        match (seen.get("op").and_then(Value::as_str), after) {
            (Some("c" | "r" | "u"), Some(after)) => {
                let row: Value = serde_json::from_slice(&got.unwrap().unwrap()).unwrap();
                assert_eq!(&row, after);
            }
            (Some("d"), _) => assert_eq!(got, Ok(None)),
            _ => assert!(!got.unwrap_err().is_empty()),
        }
    });
}

// ---------------------------------------------------------------------------
// 4. The admin API: request bodies (and paths, methods, credentials) sent
//    through the real router, over a host with two tenants and no broker.
// ---------------------------------------------------------------------------

mod admin {
    use std::path::{Path, PathBuf};
    use std::sync::Arc;
    use std::time::Duration;

    use axum::body::Body;
    use axum::http::{HeaderMap, Method, Request, StatusCode, header};
    use serde_json::{Value, json};
    use sluice::admin::api::router;
    use sluice::admin::pipelines::{Host, HostSettings, Status, TenantStatus};
    use tower::ServiceExt;

    use super::{Gen, GenJson, TypeGenerator, name, pick};

    pub const OPERATOR: &str = "fuzz-operator-token";
    /// The tenants: name and topic prefixes. `acme`'s prefixes admit most
    /// generated pipelines (`in`, `out`, `src0`, `sink0`, `app`, …).
    pub const TENANTS: [(&str, &[&str]); 2] =
        [("acme", &["s", "i", "o", "a"]), ("other", &["x", "U", "c"])];

    /// The API of one host, with a token for each tenant. The host has
    /// tenants, so every deploy names its owner and passes the tenant's
    /// checks (the Kafka properties' allow-list among them): nothing a
    /// generated pipeline sets reaches librdkafka unchecked.
    pub struct Api {
        runtime: tokio::runtime::Runtime,
        router: axum::Router,
        tokens: Vec<String>,
        data: PathBuf,
    }

    impl Drop for Api {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.data);
        }
    }

    /// A data directory per process, under the temporary directory; those
    /// of processes that are gone (a fuzzer ends with `exit`) are removed.
    fn data_dir() -> PathBuf {
        let root = std::env::temp_dir().join("sluice-fuzz-admin");
        for entry in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            let pid = entry.file_name();
            if !Path::new("/proc").join(&pid).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        root.join(std::process::id().to_string())
    }

    pub struct Response {
        pub status: StatusCode,
        pub headers: HeaderMap,
        pub body: Vec<u8>,
    }

    impl Api {
        pub fn new() -> Api {
            let data = data_dir();
            let mut settings = HostSettings::new("127.0.0.1:9", &data);
            settings.connect_timeout = Duration::from_millis(200);
            let host = Host::new(sluice::plugin::engine(), settings).with_operator_token(OPERATOR);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("a runtime");
            let mut api = Api {
                runtime,
                router: router(Arc::new(host), 1 << 16),
                tokens: Vec::new(),
                data,
            };
            for (tenant, topics) in TENANTS {
                let r = api.send(
                    Method::POST,
                    &format!("/tenants/{tenant}"),
                    Some(&format!("Bearer {OPERATOR}")),
                    Some("application/json"),
                    json!({ "topics": topics }).to_string().into_bytes(),
                );
                assert_eq!(r.status, StatusCode::CREATED);
                let body: Value = serde_json::from_slice(&r.body).expect("JSON");
                api.tokens
                    .push(body["token"].as_str().expect("a token").to_owned());
            }
            api
        }

        pub fn send(
            &self,
            method: Method,
            uri: &str,
            authorization: Option<&str>,
            content_type: Option<&str>,
            body: Vec<u8>,
        ) -> Response {
            let mut request = Request::builder().method(method).uri(uri);
            if let Some(a) = authorization {
                request = request.header(header::AUTHORIZATION, a);
            }
            if let Some(c) = content_type {
                request = request.header(header::CONTENT_TYPE, c);
            }
            let request = request.body(Body::from(body)).expect("a request");
            self.runtime.block_on(async {
                let response = self
                    .router
                    .clone()
                    .oneshot(request)
                    .await
                    .expect("infallible");
                let (parts, body) = response.into_parts();
                let body = axum::body::to_bytes(body, 16 << 20).await.expect("a body");
                Response {
                    status: parts.status,
                    headers: parts.headers,
                    body: body.to_vec(),
                }
            })
        }
    }

    /// One request: who sends it, to which route, with what.
    #[derive(Debug, TypeGenerator)]
    pub struct GenCall {
        /// The operator, a tenant, or no, a wrong or a malformed credential.
        caller: u8,
        route: u8,
        name: u8,
        step: u8,
        /// `?tenant=` on uploads.
        query: Option<u8>,
        /// JSON, rarely none or another content type.
        content_type: u8,
        /// The body the route takes, rarely another route's or raw bytes.
        body: u8,
        deploy: Box<GenDeploy>,
        swap: GenSwap,
        tenant: GenTenant,
        bytes: Vec<u8>,
    }

    #[derive(Debug, TypeGenerator)]
    struct GenDeploy {
        pipeline: Option<Gen>,
        /// From 120 to 127, with the pipeline's `[kafka]` and `[state]`.
        all: u8,
        text: String,
        plugins: Vec<(u8, u8)>,
        tenant: Option<u8>,
        source: Option<String>,
        extra: Option<(String, GenJson)>,
    }

    #[derive(Debug, TypeGenerator)]
    struct GenSwap {
        component: Option<u8>,
        rollback: Option<bool>,
        extra: Option<String>,
    }

    #[derive(Debug, TypeGenerator)]
    struct GenTenant {
        topics: Vec<u8>,
        numbers: Vec<(u8, i64)>,
        strings: Vec<(u8, u8)>,
    }

    /// A component's first 8 bytes (`\0asm`, version 0x0d, layer 1).
    const COMPONENT_HEADER: [u8; 8] = [0, b'a', b's', b'm', 0x0d, 0, 1, 0];
    const PATH_SEGMENTS: &[&str] = &[
        "acme", "other", "%2e%2e", "..%2f..", "a%2Fb", "%C3%A9", "%FF", "a%00b", "x.p", "U1",
    ];
    const TENANT_NUMBERS: &[&str] = &[
        "plugin-memory-mb",
        "plugin-deadline-ms",
        "quarantine-after-traps",
        "plugin-output-kb",
        "log-lines-per-second",
        "max-instances",
        "max-pipelines",
        "components-mb",
    ];
    const TENANT_STRINGS: &[&str] = &["state-dir", "dlq-topic", "token-sha256", "topics", "bogus"];

    /// A path segment: a pipeline's or tenant's name, or something odd.
    fn segment(i: u8) -> String {
        match i {
            0..160 => name(i).to_owned(),
            160..250 => pick(PATH_SEGMENTS, i).to_owned(),
            250 => "a".repeat(300),
            _ => String::new(),
        }
    }

    /// A digest of a component that may or may not have been uploaded.
    fn digest(i: u8) -> String {
        match i {
            0..128 => hex_sha256(&[&COMPONENT_HEADER[..], &[i]].concat()),
            128..192 => "0".repeat(64),
            192..224 => "../../etc/passwd".to_owned(),
            _ => name(i).to_owned(),
        }
    }

    fn hex_sha256(bytes: &[u8]) -> String {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(bytes))
    }

    /// The owner a deploy or an upload names.
    fn owner(i: u8) -> String {
        match i {
            0..100 => TENANTS[0].0.to_owned(),
            100..200 => TENANTS[1].0.to_owned(),
            _ => segment(i),
        }
    }

    impl GenDeploy {
        fn bytes(&self) -> Vec<u8> {
            let mut body = json!({
                "pipeline": self.pipeline.as_ref().map_or_else(
                    || self.text.clone(),
                    |g| g.render_with(matches!(self.all, 120..128)),
                ),
                "plugins": self.plugins
                    .iter()
                    .map(|(k, v)| (pick(super::PLUGINS, *k).to_owned(), Value::from(digest(*v))))
                    .collect::<serde_json::Map<_, _>>(),
            });
            if let Some(t) = self.tenant {
                body["tenant"] = owner(t).into();
            }
            if let Some(s) = &self.source {
                body["source"] = s.clone().into();
            }
            if let Some((k, v)) = &self.extra {
                body[k] = v.json();
            }
            body.to_string().into_bytes()
        }
    }

    impl GenSwap {
        fn bytes(&self) -> Vec<u8> {
            let mut body = json!({});
            if let Some(c) = self.component {
                body["component"] = digest(c).into();
            }
            if let Some(r) = self.rollback {
                body["rollback"] = r.into();
            }
            if let Some(e) = &self.extra {
                body[e] = Value::Null;
            }
            body.to_string().into_bytes()
        }
    }

    impl GenTenant {
        fn bytes(&self) -> Vec<u8> {
            let mut body = json!({
                "topics": self.topics.iter().map(|t| name(*t)).collect::<Vec<_>>(),
            });
            for (k, v) in &self.numbers {
                body[pick(TENANT_NUMBERS, *k)] = (*v).into();
            }
            for (k, v) in &self.strings {
                body[pick(TENANT_STRINGS, *k)] = name(*v).into();
            }
            body.to_string().into_bytes()
        }
    }

    impl GenCall {
        /// The body for `route` (see [`Api::call`]).
        fn body(&self, route: u8) -> Vec<u8> {
            let kind = match self.body {
                120..124 => 0,
                124..128 => self.route.wrapping_add(self.body) % 14,
                _ => route,
            };
            match kind {
                1 => self.deploy.bytes(),
                2 => [&COMPONENT_HEADER[..], &self.bytes].concat(),
                7 => self.swap.bytes(),
                10 => self.tenant.bytes(),
                _ => self.bytes.clone(),
            }
        }
    }

    /// Who a request claims to be.
    enum Who {
        Operator,
        Tenant(usize),
        Nobody,
    }

    impl Api {
        /// Sends the generated request and checks the answer.
        pub fn call(&self, call: &GenCall) {
            let (who, authorization) = match call.caller {
                0..64 => (Who::Operator, Some(format!("Bearer {OPERATOR}"))),
                64..160 => (Who::Tenant(0), Some(format!("Bearer {}", self.tokens[0]))),
                160..224 => (Who::Tenant(1), Some(format!("Bearer {}", self.tokens[1]))),
                224..232 => (Who::Nobody, None),
                232..240 => (Who::Nobody, Some(format!("Bearer {OPERATOR}x"))),
                240..248 => (Who::Nobody, Some(format!("Basic {}", self.tokens[0]))),
                _ => (Who::Nobody, Some(format!("Bearer{OPERATOR}"))),
            };
            let name = segment(call.name);
            let step = segment(call.step);
            let (method, template, known) = match call.route % 14 {
                0 => (Method::GET, "/pipelines".to_owned(), true),
                1 => (Method::POST, "/pipelines".to_owned(), true),
                2 => (
                    Method::PUT,
                    match call.query {
                        Some(t) => format!("/components?tenant={}", owner(t)),
                        None => "/components".to_owned(),
                    },
                    true,
                ),
                3 => (Method::GET, "/pipelines/{name}".to_owned(), true),
                4 => (Method::DELETE, "/pipelines/{name}".to_owned(), true),
                5 => (Method::POST, "/pipelines/{name}/pause".to_owned(), true),
                6 => (Method::POST, "/pipelines/{name}/resume".to_owned(), true),
                7 => (
                    Method::POST,
                    "/pipelines/{name}/steps/{step}/swap".to_owned(),
                    true,
                ),
                8 => (Method::GET, "/tenants".to_owned(), true),
                9 => (Method::GET, "/tenants/{name}".to_owned(), true),
                10 => (Method::POST, "/tenants/{name}".to_owned(), true),
                11 => (Method::POST, "/tenants/{name}/token".to_owned(), true),
                12 => (Method::GET, "/metrics".to_owned(), true),
                _ => (Method::PATCH, "/{name}/{step}".to_owned(), false),
            };
            let uri = template.replace("{name}", &name).replace("{step}", &step);
            // A name with a slash is another route, or none.
            let routable = |s: &str| !s.is_empty() && !s.contains('/');
            let known = known
                && (!template.contains("{name}") || routable(&name))
                && (!template.contains("{step}") || routable(&step));
            // A name with a space or a control character makes no URI.
            if axum::http::Uri::try_from(uri.as_str()).is_err() {
                return;
            }
            let content_type = match call.content_type {
                126 => None,
                127 => Some("text/plain"),
                _ => Some("application/json"),
            };
            let r = self.send(
                method.clone(),
                &uri,
                authorization.as_deref(),
                content_type,
                call.body(call.route % 14),
            );
            let status = r.status.as_u16();
            let text = String::from_utf8_lossy(&r.body);
            assert!(
                status < 500,
                "{method} {uri}: {status} {text}: a handler failed (a panic is a 500)"
            );
            if !known {
                return;
            }
            match who {
                Who::Nobody => {
                    assert_eq!(status, 401, "{method} {uri} without a valid token: {text}");
                    assert!(r.headers.contains_key(header::WWW_AUTHENTICATE));
                    for (tenant, _) in TENANTS {
                        assert!(!text.contains(tenant), "a 401 names a tenant: {text}");
                    }
                }
                Who::Tenant(i) => {
                    let (me, _) = TENANTS[i];
                    let (them, _) = TENANTS[1 - i];
                    if status == 200 && method == Method::GET && uri == "/pipelines" {
                        let list: Vec<Status> = serde_json::from_slice(&r.body).expect("statuses");
                        for s in list {
                            assert_eq!(s.tenant.as_deref(), Some(me), "{me} sees {}", s.name);
                        }
                    }
                    if status == 200 && method == Method::GET && uri == "/tenants" {
                        let list: Vec<TenantStatus> =
                            serde_json::from_slice(&r.body).expect("tenants");
                        assert!(list.iter().all(|t| t.name == me), "{me} sees {text}");
                    }
                    if status < 300 {
                        assert!(
                            !text.contains(&format!("\"{them}\"")),
                            "{me} sees {them}: {text}"
                        );
                    }
                    if uri == "/metrics" || (method == Method::POST && uri.starts_with("/tenants/"))
                    {
                        // Refused, or the request could not be read.
                        assert!(
                            matches!(status, 403 | 400 | 413 | 415 | 422),
                            "{me}: {method} {uri}: {status} {text}"
                        );
                    }
                }
                Who::Operator => {}
            }
            if status == 201 && template == "/pipelines" {
                // A deployed pipeline keeps retrying the broker that is
                // not there, and would hold its control requests (pause,
                // swap) for minutes: remove it at once.
                let deployed: Status = serde_json::from_slice(&r.body).expect("a status");
                let operator = Some(format!("Bearer {OPERATOR}"));
                let path = format!("/pipelines/{}", deployed.name);
                let removed =
                    self.send(Method::DELETE, &path, operator.as_deref(), None, Vec::new());
                assert_eq!(removed.status, 200, "DELETE {path}");
                let gone = self.send(Method::GET, &path, operator.as_deref(), None, Vec::new());
                assert_eq!(gone.status, 404, "GET {path} once removed");
            }
            if !r.status.is_success()
                && r.headers
                    .get(header::CONTENT_TYPE)
                    .is_some_and(|c| c == "application/json")
            {
                let error: Value = serde_json::from_slice(&r.body).expect("a JSON error");
                assert!(
                    error["error"].as_str().is_some_and(|e| !e.is_empty()),
                    "{text}"
                );
            }
        }
    }
}

/// Requests to every route of the admin API, with bodies generated from
/// the request types (deploys carry generated pipelines), raw bytes, and
/// each kind of credential: no 5xx; no token, no access; a tenant sees
/// only its own; a tenant cannot use operator actions.
#[test]
fn admin_api_bodies() {
    let api = std::panic::AssertUnwindSafe(admin::Api::new());
    check!()
        .with_type::<Vec<admin::GenCall>>()
        .for_each(|calls: &Vec<admin::GenCall>| {
            for call in calls.iter().take(4) {
                api.call(call);
            }
        });
}
