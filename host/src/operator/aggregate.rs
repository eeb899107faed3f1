//! Aggregation steps: records grouped by key (the input key; a new key
//! would need a repartition), each key's aggregate kept in the step's
//! store, every updated aggregate sent downstream.
//!
//! - An aggregator plugin gets, per call batch, the current aggregate of
//!   each distinct key and the records, and returns the aggregate after
//!   each record (`wit/FRAME.md`); the host writes the last one per key.
//! - The built-in count needs no plugin: the aggregate is the number of
//!   the key's records, as decimal text.
//!
//! A record without a key cannot be grouped: it is rejected (`null-key`)
//! and meets the `rejected` policy. A record whose effect the store already
//! holds (restored from the changelog) is not added again.
//!
//! A windowed aggregation ([`super::window`]) is this aggregation called
//! once per layer of keys, each key in its own window: where each key's
//! aggregate lives during a call is an argument, a [`Placement`].

use std::io::Write as _;

use sluice_frame::Writer;

use crate::error::{RunError, StateError};
use crate::operator::batch::StepOut;
use crate::operator::call::{self, Caller, PluginStep};
use crate::operator::dead_letter::Kind;
use crate::operator::{Operator, StepCtx, unapplied};
use crate::plugin::frame::{self, Decoded, Outcome};
use crate::plugin::instance::CallResult;
use crate::plugin::{Plugin, PluginInstance, Trap};
use crate::record::RecordRef;
use crate::state::StoreBuffer;
use crate::state::task_state::TaskStores;
use crate::topology::NodeId;

/// Where each key's aggregate lives during one call, when not under the
/// key itself: a windowed aggregation's windows, one per key.
pub trait Placement {
    /// The store key of `key`'s aggregate.
    fn store_key(&self, key: &[u8]) -> Vec<u8>;

    /// The call read no aggregate for `key`: its place is new (a window
    /// enters the close index).
    fn note_new(&self, buffer: &mut StoreBuffer, key: &[u8]);
}

/// Where the aggregate of `key` lives: the key itself, or where `windows`
/// put it.
fn store_key<'k>(windows: Option<&dyn Placement>, key: &'k [u8]) -> std::borrow::Cow<'k, [u8]> {
    match windows {
        None => std::borrow::Cow::Borrowed(key),
        Some(w) => std::borrow::Cow::Owned(w.store_key(key)),
    }
}

/// The call read no aggregate for `key`.
fn note_new(windows: Option<&dyn Placement>, buffer: &mut StoreBuffer, key: &[u8]) {
    if let Some(w) = windows {
        w.note_new(buffer, key);
    }
}

const NULL_KEY: &str = "an aggregation groups records by key, and this record has a null key";

/// How the aggregate is made.
pub enum Logic {
    /// The built-in count.
    Count,
    /// An aggregator plugin.
    Plugin(Box<PluginStep>),
}

/// An aggregation by key over the step's store.
pub struct KeyedAggregate {
    step: usize,
    logic: Logic,
    /// The step's store, as an index into the task's stores.
    store: usize,
}

impl KeyedAggregate {
    /// Step `step`, aggregating with `logic` into store `store`.
    pub fn new(step: usize, logic: Logic, store: usize) -> KeyedAggregate {
        KeyedAggregate { step, logic, store }
    }

    /// The step's index in the topology.
    pub fn step(&self) -> usize {
        self.step
    }

    /// Whether it is the built-in count (it has no plugin).
    pub fn is_count(&self) -> bool {
        matches!(self.logic, Logic::Count)
    }

    /// The step's store buffer, among the task's `stores`.
    pub fn buffer<'s>(&self, stores: &'s mut Option<&mut TaskStores>) -> &'s mut StoreBuffer {
        StepCtx::buffer(stores, self.store)
    }

    /// The step's store buffer, from all of the task's stores.
    pub fn buffer_of<'s>(&self, stores: &'s mut TaskStores) -> &'s mut StoreBuffer {
        stores.buffer(self.store)
    }

    /// Calls the aggregator on aggregates rather than on a record's call
    /// batch (merging sessions, building a new sliding window): no record
    /// is to blame, so a refusal or a trap is the step's error, `doing`
    /// says what failed, and a trap drops the instance.
    pub fn call_on_aggregates(
        &mut self,
        name: &str,
        doing: &'static str,
        call: impl FnOnce(&mut PluginInstance) -> CallResult,
    ) -> Result<Vec<u8>, RunError> {
        let failed = |message: String| RunError::Aggregator {
            step: name.to_owned(),
            doing,
            message,
        };
        let Logic::Plugin(plugin) = &mut self.logic else {
            unreachable!("the count calls no plugin");
        };
        match call(plugin.instance()?) {
            Ok(Ok(output)) => Ok(output),
            Ok(Err((code, message))) => Err(failed(format!("{code}: {message}"))),
            Err(trap) => {
                plugin.discard_instance();
                Err(failed(format!("trapped: {}", trap.0)))
            }
        }
    }

    /// The inputs it still has to add: not already in its store, and
    /// keyed (null keys go to the error policy).
    pub fn inputs<'r>(
        &self,
        inputs: Vec<(usize, RecordRef<'r>)>,
        cx: &mut StepCtx<'_, '_>,
    ) -> Result<Vec<(usize, RecordRef<'r>)>, RunError> {
        let inputs = unapplied(&[self.store], inputs, cx);
        let mut keep = Vec::with_capacity(inputs.len());
        for (origin, record) in inputs {
            if record.key.is_none() {
                let (node, digest) = (NodeId::Step(self.step), Operator::digest(self));
                cx.dead(
                    node,
                    digest,
                    Kind::Rejected,
                    "null-key",
                    NULL_KEY,
                    (origin, record),
                )?;
                continue;
            }
            keep.push((origin, record));
        }
        Ok(keep)
    }

    /// Adds `inputs` (keyed, not yet applied) to their aggregates: each
    /// key's own, or with `windows`, each key's aggregate in its window.
    pub fn add(
        &mut self,
        inputs: &[(usize, RecordRef<'_>)],
        windows: Option<&dyn Placement>,
        cx: &mut StepCtx<'_, '_>,
    ) -> Result<StepOut, RunError> {
        if self.is_count() {
            return self.count(inputs, windows, cx);
        }
        call::in_call_batches(&mut AggregatorCall { agg: self, windows }, inputs, cx)
    }

    /// Counts `inputs` into the step's store.
    fn count(
        &mut self,
        inputs: &[(usize, RecordRef<'_>)],
        windows: Option<&dyn Placement>,
        cx: &mut StepCtx<'_, '_>,
    ) -> Result<StepOut, RunError> {
        let name = &cx.topology.steps[self.step].name;
        let buffer = StepCtx::buffer(&mut cx.stores, self.store);
        let mut w = Writer::output(Vec::new(), inputs.len() as u32);
        // Reused for every count: no allocation per record.
        let mut text = Vec::with_capacity(20);
        for (_, record) in inputs {
            let key = record.key.expect("null keys were filtered out");
            let stored = store_key(windows, key);
            let current = buffer.get_ref(&stored)?;
            let new = current.is_none();
            let count = match current {
                None => 0u64,
                Some(v) => std::str::from_utf8(&v)
                    .ok()
                    .and_then(|t| t.parse().ok())
                    .ok_or_else(|| StateError::Corrupt {
                        store: name.clone(),
                        message: format!("the count of key {key:?} is not a decimal number"),
                    })?,
            } + 1;
            if new {
                note_new(windows, buffer, key);
            }
            text.clear();
            write!(text, "{count}").expect("writing to a vector");
            buffer.put(&stored, &text);
            w.begin_ok();
            w.record(Some(key), Some(&text), None, std::iter::empty());
        }
        let records: Vec<RecordRef<'_>> = inputs.iter().map(|(_, r)| *r).collect();
        let decoded =
            frame::decode(w.finish(), &records).map_err(|message| RunError::Protocol {
                step: name.clone(),
                message,
            })?;
        let mut out = StepOut::default();
        let rejected = out.absorb(decoded, inputs);
        debug_assert!(rejected.is_empty(), "the count rejects nothing");
        Ok(out)
    }

    /// The `aggregates` frame of a call: each distinct key of `records`
    /// with its current aggregate (null when it has none).
    fn aggregates_frame(
        &self,
        records: &[RecordRef<'_>],
        windows: Option<&dyn Placement>,
        cx: &mut StepCtx<'_, '_>,
    ) -> Result<Vec<u8>, RunError> {
        let mut keys: Vec<&[u8]> = records.iter().filter_map(|r| r.key).collect();
        keys.sort_unstable();
        keys.dedup();
        let mut w = Writer::input(std::mem::take(&mut cx.bufs.aggregates), keys.len() as u32);
        let buffer = StepCtx::buffer(&mut cx.stores, self.store);
        for key in keys {
            let current = buffer.get(&store_key(windows, key))?;
            if current.is_none() {
                note_new(windows, buffer, key);
            }
            w.record(Some(key), current.as_deref(), None, std::iter::empty());
        }
        Ok(w.finish())
    }

    /// Checks an aggregator's answer (one record per accepted input, with
    /// the input's key) and writes each new aggregate to the store; a null
    /// aggregate deletes the key.
    fn store_aggregates(
        &self,
        records: &[RecordRef<'_>],
        decoded: &Decoded,
        windows: Option<&dyn Placement>,
        cx: &mut StepCtx<'_, '_>,
    ) -> Result<(), RunError> {
        let name = &cx.topology.steps[self.step].name;
        let protocol = |message: String| RunError::Protocol {
            step: name.clone(),
            message,
        };
        let buffer = StepCtx::buffer(&mut cx.stores, self.store);
        for (j, (input, outcome)) in records.iter().zip(&decoded.outcomes).enumerate() {
            let Outcome::Ok(range) = outcome else {
                continue;
            };
            if range.len() != 1 {
                return Err(protocol(format!(
                    "an aggregator returns one aggregate per accepted record; record {j} of the call got {}",
                    range.len()
                )));
            }
            let out = decoded.record(range.start);
            if out.key != input.key {
                return Err(protocol(format!(
                    "an aggregator keeps the record's key; record {j} of the call changed it"
                )));
            }
            let key = store_key(windows, input.key.expect("null keys were filtered out"));
            match out.value {
                Some(v) => buffer.put(&key, v),
                None => buffer.delete(&key),
            }
        }
        Ok(())
    }
}

impl Operator for KeyedAggregate {
    fn process<'r>(
        &mut self,
        inputs: Vec<(usize, RecordRef<'r>)>,
        cx: &mut StepCtx<'_, '_>,
    ) -> Result<StepOut, RunError> {
        let inputs = self.inputs(inputs, cx)?;
        self.add(&inputs, None, cx)
    }

    fn digest(&self) -> &str {
        match &self.logic {
            Logic::Count => "built-in",
            Logic::Plugin(p) => p.digest(),
        }
    }

    fn swap_plugin(&mut self, plugin: Plugin) {
        match &mut self.logic {
            Logic::Plugin(p) => p.swap(plugin),
            Logic::Count => unreachable!("the built-in count has no plugin to swap"),
        }
    }
}

/// One aggregator call: the aggregation, and the windows of the call.
struct AggregatorCall<'a> {
    agg: &'a mut KeyedAggregate,
    windows: Option<&'a dyn Placement>,
}

impl Caller for AggregatorCall<'_> {
    fn node(&self) -> NodeId {
        NodeId::Step(self.agg.step)
    }

    fn digest(&self) -> &str {
        Operator::digest(self.agg)
    }

    fn call(
        &mut self,
        chunk: &[(usize, RecordRef<'_>)],
        cx: &mut StepCtx<'_, '_>,
    ) -> Result<Result<Decoded, Trap>, RunError> {
        let topology = cx.topology;
        let name = &topology.steps[self.agg.step].name;
        let records: Vec<RecordRef<'_>> = chunk.iter().map(|(_, r)| *r).collect();
        let input = frame::encode(std::mem::take(&mut cx.bufs.frame), records.iter().copied());
        let aggregates = self.agg.aggregates_frame(&records, self.windows, cx)?;
        let Logic::Plugin(plugin) = &mut self.agg.logic else {
            unreachable!("the count calls no plugin");
        };
        let result = plugin.instance()?.add(&aggregates, &input);
        cx.bufs.aggregates = aggregates;
        cx.bufs.frame = input;
        let decoded = match call::read_answer(name, plugin, result, &records)? {
            Ok(decoded) => decoded,
            Err(trap) => return Ok(Err(trap)),
        };
        self.agg
            .store_aggregates(&records, &decoded, self.windows, cx)?;
        Ok(Ok(decoded))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::record::Record;
    use crate::state::task_state::testing::MemoryChangelog;
    use crate::task::testing::Driver;

    const TEXT: &str = r#"
        application.id = "app"
        [sources.clicks]
        [steps.counts]
        aggregate = "count"
        inputs = ["clicks"]
        [sinks.out]
        inputs = ["counts"]
    "#;

    fn driver(state_dir: &Path) -> Driver {
        Driver::setup(TEXT)
            .unwrap()
            .rocksdb(state_dir)
            .start()
            .unwrap()
    }

    /// Queues `keys` from offset 0 of `clicks`, each with its offset as
    /// its timestamp.
    fn input(d: &mut Driver, keys: &[Option<&str>]) {
        d.seek("clicks", 0);
        for (offset, key) in keys.iter().enumerate() {
            let key = key.map(str::as_bytes);
            d.push("clicks", key, Some(b"{}"), Some(offset as i64));
        }
    }

    fn values(out: &[(String, Record)]) -> Vec<(String, String, String)> {
        out.iter()
            .map(|(topic, r)| {
                let text = |b: &Option<bytes::Bytes>| {
                    String::from_utf8_lossy(b.as_deref().unwrap_or(b"null")).into_owned()
                };
                (topic.clone(), text(&r.key), text(&r.value))
            })
            .collect()
    }

    #[test]
    fn count_adds_each_record_once_even_when_its_input_is_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let log = MemoryChangelog::default();
        let first = [Some("a"), Some("b"), None, Some("a")];
        let mut d = driver(dir.path());
        input(&mut d, &first);
        let counts = d.process().unwrap();
        assert_eq!(counts.records_in, 4);
        assert_eq!(counts.rejected, 1);
        let out = d.take_sent();
        assert_eq!(
            values(&out),
            vec![
                ("app-dlq".into(), "null".into(), "{}".into()),
                ("out".into(), "a".into(), "1".into()),
                ("out".into(), "b".into(), "1".into()),
                ("out".into(), "a".into(), "2".into()),
            ]
        );
        assert_eq!(out[0].1.headers[1].0, "sluice.error.code");
        let stores = d.task().stores().unwrap();
        assert!(stores.prepare(&log).unwrap());
        stores.mark(&log).unwrap();
        stores.persist().unwrap();
        // Restarted: the committed input comes again (at-least-once) with
        // new records after it; only the new ones count.
        let mut d = d.restart().unwrap();
        let again = [&first[..], &[Some("a"), Some("c")]].concat();
        input(&mut d, &again);
        let counts = d.process().unwrap();
        assert_eq!(counts.skipped, 4);
        assert_eq!(counts.records_in, 2);
        assert_eq!(
            values(&d.take_sent()),
            vec![
                ("out".into(), "a".into(), "3".into()),
                ("out".into(), "c".into(), "1".into()),
            ]
        );
    }
}
