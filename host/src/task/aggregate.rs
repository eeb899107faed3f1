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

use sluice_frame::Writer;

use super::dead_letter::Kind;
use super::windowed::CallWindows;
use super::{BatchContext, StepOut, Task};
use crate::error::{RunError, StateError};
use crate::plugin::frame::{self, Decoded, Outcome};
use crate::record::RecordRef;
use crate::state::StoreBuffer;
use crate::topology::NodeId;

/// Where the aggregate of `key` lives: the key itself, or during a
/// windowed aggregation's call, the entry of the key's window (see
/// [`super::windowed`]).
pub(super) fn store_key<'k>(
    windows: Option<&CallWindows>,
    key: &'k [u8],
) -> std::borrow::Cow<'k, [u8]> {
    match windows {
        None => std::borrow::Cow::Borrowed(key),
        Some(w) => std::borrow::Cow::Owned(w[key].store_key(key)),
    }
}

/// A windowed call read no aggregate for `key`: its window is new.
fn note_new(windows: Option<&CallWindows>, buffer: &mut StoreBuffer, key: &[u8]) {
    if let Some(w) = windows {
        w[key].note_new(buffer, key);
    }
}

const NULL_KEY: &str = "an aggregation groups records by key, and this record has a null key";

impl Task {
    /// The store buffer of aggregation step `step`.
    pub(super) fn step_buffer(&mut self, step: usize) -> &mut StoreBuffer {
        let store = self.steps[step].store.expect("an aggregation has a store");
        self.stores
            .as_mut()
            .expect("a stateful task has stores")
            .buffer(store)
    }

    /// Whether step `step` is the built-in count (it has no plugin).
    pub(super) fn is_count(&self, step: usize) -> bool {
        self.steps[step].plugin.is_none()
    }

    /// Calls step `step`'s aggregator on aggregates rather than on a
    /// record's call batch (merging sessions, building a new sliding
    /// window): no record is to blame, so a refusal or a trap is the step's
    /// error, `doing` says what failed, and a trap drops the instance.
    pub(super) fn aggregator_call(
        &mut self,
        step: usize,
        doing: &'static str,
        call: impl FnOnce(&mut crate::plugin::PluginInstance) -> crate::plugin::instance::CallResult,
    ) -> Result<Vec<u8>, RunError> {
        let failed = |message: String| RunError::Aggregator {
            step: self.topology.steps[step].name.clone(),
            doing,
            message,
        };
        match call(self.steps[step].instance()?) {
            Ok(Ok(output)) => Ok(output),
            Ok(Err((code, message))) => Err(failed(format!("{code}: {message}"))),
            Err(trap) => {
                let e = failed(format!("trapped: {}", trap.0));
                self.steps[step].instance = None;
                Err(e)
            }
        }
    }

    /// The inputs an aggregation still has to add: not already in its
    /// store, and keyed (null keys go to the error policy).
    pub(super) fn aggregation_inputs<'r>(
        &self,
        step: usize,
        inputs: Vec<(usize, RecordRef<'r>)>,
        ctx: &mut BatchContext<'_>,
    ) -> Result<Vec<(usize, RecordRef<'r>)>, RunError> {
        let inputs = self.unapplied(step, inputs, ctx);
        let mut keep = Vec::with_capacity(inputs.len());
        for (origin, record) in inputs {
            if record.key.is_none() {
                self.dead(
                    NodeId::Step(step),
                    Kind::Rejected,
                    "null-key",
                    NULL_KEY,
                    (origin, record),
                    ctx,
                )?;
                continue;
            }
            keep.push((origin, record));
        }
        Ok(keep)
    }

    /// Runs an aggregator plugin step.
    pub(super) fn run_aggregate(
        &mut self,
        step: usize,
        inputs: Vec<(usize, RecordRef<'_>)>,
        ctx: &mut BatchContext<'_>,
    ) -> Result<StepOut, RunError> {
        let inputs = self.aggregation_inputs(step, inputs, ctx)?;
        self.run_step(step, &inputs, ctx)
    }

    /// Runs the built-in count.
    pub(super) fn run_count(
        &mut self,
        step: usize,
        inputs: Vec<(usize, RecordRef<'_>)>,
        ctx: &mut BatchContext<'_>,
    ) -> Result<StepOut, RunError> {
        let inputs = self.aggregation_inputs(step, inputs, ctx)?;
        self.count(step, &inputs)
    }

    /// Counts `inputs` (keyed, not yet applied) into the step's store.
    pub(super) fn count(
        &mut self,
        step: usize,
        inputs: &[(usize, RecordRef<'_>)],
    ) -> Result<StepOut, RunError> {
        let store = self.steps[step].store.expect("an aggregation has a store");
        let name = &self.topology.steps[step].name;
        let windows = self.window.clone();
        let stores = self.stores.as_mut().expect("a stateful task has stores");
        let buffer = stores.buffer(store);
        let mut w = Writer::output(Vec::new(), inputs.len() as u32);
        for (_, record) in inputs {
            let key = record.key.expect("null keys were filtered out");
            let stored = store_key(windows.as_deref(), key);
            let current = buffer.get(&stored)?;
            if current.is_none() {
                note_new(windows.as_deref(), buffer, key);
            }
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
            let text = count.to_string();
            buffer.put(&stored, text.as_bytes());
            w.begin_ok();
            w.record(Some(key), Some(text.as_bytes()), None, std::iter::empty());
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
    pub(super) fn aggregates_frame(
        &mut self,
        step: usize,
        records: &[RecordRef<'_>],
    ) -> Result<Vec<u8>, RunError> {
        let windows = self.window.clone();
        let mut keys: Vec<&[u8]> = records.iter().filter_map(|r| r.key).collect();
        keys.sort_unstable();
        keys.dedup();
        let mut w = Writer::input(std::mem::take(&mut self.aggregates_buf), keys.len() as u32);
        let buffer = self.step_buffer(step);
        for key in keys {
            let current = buffer.get(&store_key(windows.as_deref(), key))?;
            if current.is_none() {
                note_new(windows.as_deref(), buffer, key);
            }
            w.record(Some(key), current.as_deref(), None, std::iter::empty());
        }
        Ok(w.finish())
    }

    /// Checks an aggregator's answer (one record per accepted input, with
    /// the input's key) and writes each new aggregate to the store; a null
    /// aggregate deletes the key.
    pub(super) fn store_aggregates(
        &mut self,
        step: usize,
        records: &[RecordRef<'_>],
        decoded: &Decoded,
    ) -> Result<(), RunError> {
        let name = self.topology.steps[step].name.clone();
        let protocol = |message: String| RunError::Protocol {
            step: name.clone(),
            message,
        };
        let windows = self.window.clone();
        let buffer = self.step_buffer(step);
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
            let key = store_key(
                windows.as_deref(),
                input.key.expect("null keys were filtered out"),
            );
            match out.value {
                Some(v) => buffer.put(&key, v),
                None => buffer.delete(&key),
            }
        }
        Ok(())
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
