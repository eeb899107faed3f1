//! Sliding windows over the task's store (the arithmetic is in
//! `crate::window::sliding`).
//!
//! A sliding window is created by a record: its own left window, the
//! right window of the record before it, or its own right window when
//! later records exist. A new window must start from every record it
//! covers, and an aggregate cannot be split, so the step keeps the records
//! themselves until no open window can cover them (`0x02` entries, expired
//! through `0x03`; see [`super::windowed`]). Kafka Streams reaches the
//! same results by copying a neighbouring window's aggregate; keeping the
//! records makes the rule exact even with late records.
//!
//! A batch is planned record by record, in arrival order, without calling
//! the plugin. For a record at `t` with stream time `st`:
//! - it is added to every existing window that contains `t` and is open
//!   (`st < end + grace`);
//! - its left window, and the right window of the latest earlier record
//!   within reach, are created if missing and open, from the records they
//!   cover, and take it;
//! - with no open window to take it, it is late;
//! - otherwise its right window is created too when a later record falls
//!   into it, and the record is kept.
//!
//! Then new windows are folded from `init` over their records (one
//! aggregator call per layer of keys), and the batch's records are added.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;

use super::session_window::{by_key, tagged};
use super::windowed::{AGGREGATE, Emitted, OpenWindow, RECORD, WindowAdd, expire};
use super::{BatchContext, InputRecord, Task};
use crate::error::{RunError, StateError};
use crate::plugin::frame::{self, Outcome};
use crate::record::{Record, RecordRef};
use crate::state::key_layout;
use crate::topology::{EmitMode, Windowing};
use crate::window::sliding::Sliding;

/// A record a new window starts from.
#[derive(Debug, Clone, Copy)]
enum Covered {
    /// Kept in the store by an earlier batch (index into the loaded ones).
    Kept(usize),
    /// Of this batch (position in the step's inputs).
    Batch(usize),
}

/// A window the batch creates.
struct NewWindow<'r> {
    key: &'r [u8],
    open: OpenWindow,
    covered: Vec<Covered>,
    /// The input that created it.
    origin: usize,
}

impl Task {
    /// Sliding windows.
    pub(super) fn run_sliding<'r>(
        &mut self,
        step: usize,
        spec: &Windowing,
        sliding: Sliding,
        inputs: Vec<(usize, RecordRef<'r>)>,
        ctx: &mut BatchContext<'_>,
    ) -> Result<Vec<Emitted>, RunError> {
        let (grace, d) = (spec.grace, sliding.difference());
        let name = self.topology.steps[step].name.clone();
        let open = |start: i64| OpenWindow::timed(sliding.starting_at(start), grace);
        let (keys, of_key) = by_key(&inputs);
        let mut kept: Vec<Record> = Vec::new();
        let mut created: Vec<NewWindow<'r>> = Vec::new();
        let mut adds: Vec<WindowAdd<'r>> = Vec::new();
        let mut add_at: HashMap<(&'r [u8], i64), usize> = HashMap::new();
        let mut keep = Vec::new();
        let mut late = Vec::new();
        for key in keys {
            let positions = &of_key[key];
            let (lo, hi) = positions
                .iter()
                .map(|&i| ctx.times[inputs[i].0])
                .fold((i64::MAX, i64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
            let buffer = self.step_buffer(step);
            // The key's windows and kept records within reach of the batch.
            let (from, to) = key_layout::window_scan(key, lo - d - 1, hi + 1);
            let mut existing: BTreeSet<i64> = BTreeSet::new();
            for (k, _) in buffer.range(
                Some(&tagged(AGGREGATE, &from)),
                Some(&tagged(AGGREGATE, &to)),
            )? {
                if let Some((_, start, _)) = key_layout::decode_window_key(&k[1..]) {
                    existing.insert(start);
                }
            }
            let (from, to) = key_layout::window_scan(key, lo - d - 1, hi + d + 1);
            let mut records: BTreeMap<i64, Vec<Covered>> = BTreeMap::new();
            for (k, v) in buffer.range(Some(&tagged(RECORD, &from)), Some(&tagged(RECORD, &to)))? {
                let (Some(t), Some(record)) = (key_layout::record_time(&k[1..]), decode_kept(&v))
                else {
                    return Err(StateError::Corrupt {
                        store: name,
                        message: "a record kept for sliding windows cannot be read".into(),
                    }
                    .into());
                };
                kept.push(record);
                records
                    .entry(t)
                    .or_default()
                    .push(Covered::Kept(kept.len() - 1));
            }
            let covered = |records: &BTreeMap<i64, Vec<Covered>>, start: i64| -> Vec<Covered> {
                let w = sliding.starting_at(start);
                records
                    .range(w.start..w.end)
                    .flat_map(|(_, c)| c.iter().copied())
                    .collect()
            };

            for &i in positions {
                let origin = inputs[i].0;
                let (t, st) = (ctx.times[origin], ctx.stream_at[origin]);
                let accepts = |start: i64| sliding.starting_at(start).accepts_at(st, grace);
                let (first, last) = sliding.starts_containing(t);
                let mut into: Vec<i64> = existing
                    .range(first..=last)
                    .copied()
                    .filter(|&s| accepts(s))
                    .collect();
                // Stored windows that would hold it but have closed (those
                // already purged are not seen).
                let mut closed = existing.range(first..=last).count() - into.len();
                let mut new_starts = Vec::new();
                let left = sliding.left(t).start;
                if !existing.contains(&left) {
                    if accepts(left) {
                        new_starts.push(left);
                    } else {
                        closed += 1;
                    }
                }
                let (q_from, q_to) = sliding.right_windows_reaching(t);
                if let Some((&q, _)) = records.range(q_from..=q_to).next_back() {
                    let start = sliding.right(q).start;
                    if start != left && !existing.contains(&start) && accepts(start) {
                        new_starts.push(start);
                    }
                }
                if into.is_empty() && new_starts.is_empty() {
                    late.push((i, closed as u64));
                    continue;
                }
                if closed > 0 {
                    ctx.counts.partly_late += 1;
                    ctx.counts.late_windows += closed as u64;
                }
                for start in new_starts {
                    existing.insert(start);
                    created.push(NewWindow {
                        key,
                        open: open(start),
                        covered: covered(&records, start),
                        origin,
                    });
                    into.push(start);
                }
                let right = sliding.right(t);
                if !existing.contains(&right.start)
                    && records.range(right.start..right.end).next().is_some()
                    && accepts(right.start)
                {
                    existing.insert(right.start);
                    created.push(NewWindow {
                        key,
                        open: open(right.start),
                        covered: covered(&records, right.start),
                        origin,
                    });
                }
                into.sort_unstable();
                for start in into {
                    let at = *add_at.entry((key, start)).or_insert_with(|| {
                        adds.push(WindowAdd {
                            open: open(start),
                            records: Vec::new(),
                        });
                        adds.len() - 1
                    });
                    adds[at].records.push(inputs[i]);
                }
                records.entry(t).or_default().push(Covered::Batch(i));
                keep.push(i);
            }
        }
        for (i, closed) in late {
            self.late(step, spec, inputs[i], closed, ctx)?;
        }

        let record_of = |c: &Covered| -> RecordRef<'_> {
            match *c {
                Covered::Kept(k) => kept[k].as_ref(),
                Covered::Batch(i) => inputs[i].1,
            }
        };
        let starts: Vec<(&[u8], OpenWindow, Vec<RecordRef<'_>>)> = created
            .iter()
            .map(|n| (n.key, n.open, n.covered.iter().map(record_of).collect()))
            .collect();
        self.start_windows(step, starts)?;
        let updates = spec.emit == EmitMode::OnUpdate;
        let mut emitted = self.add_in_layers(step, adds, updates, ctx)?;

        let buffer = self.step_buffer(step);
        if updates {
            // A new window that took no record of the batch (a record's
            // right window) still changed: it came into being.
            for n in &created {
                if add_at.contains_key(&(n.key, n.open.window.start)) {
                    continue;
                }
                if let Some(value) = buffer.get(&n.open.store_key(n.key))? {
                    emitted.push(Emitted {
                        origin: n.origin,
                        key: n.key.to_vec(),
                        window: n.open.window,
                        value: Some(value),
                        timestamp: Some(ctx.times[n.origin]),
                    });
                }
            }
        }
        for i in keep {
            let (origin, record) = inputs[i];
            let t = ctx.times[origin];
            let stored = tagged(
                RECORD,
                &key_layout::record_key(
                    record.key.expect("null keys were filtered out"),
                    t,
                    &position(&ctx.batch[origin]),
                ),
            );
            buffer.put(&stored, &frame::encode(Vec::new(), std::iter::once(record)));
            expire(buffer, &stored, sliding.record_expires_at(t, grace));
        }
        Ok(emitted)
    }

    /// Writes each new window's aggregate: `init`, then every record it
    /// covers. One aggregator call per layer of distinct keys.
    fn start_windows(
        &mut self,
        step: usize,
        windows: Vec<(&[u8], OpenWindow, Vec<RecordRef<'_>>)>,
    ) -> Result<(), RunError> {
        const DOING: &str = "building a new sliding window from the records it covers";
        let name = self.topology.steps[step].name.clone();
        let windows: Vec<_> = windows
            .into_iter()
            .filter(|(_, _, records)| !records.is_empty())
            .collect();
        let mut results: Vec<(usize, Vec<u8>)> = Vec::with_capacity(windows.len());
        if self.is_count(step) {
            results.extend(
                windows
                    .iter()
                    .enumerate()
                    .map(|(j, (_, _, records))| (j, records.len().to_string().into_bytes())),
            );
        } else {
            for layer in key_layers(windows.iter().map(|(key, _, _)| *key)) {
                let mut aggregates = sluice_frame::Writer::input(Vec::new(), layer.len() as u32);
                let mut records: Vec<RecordRef<'_>> = Vec::new();
                let mut ends = Vec::with_capacity(layer.len());
                for &j in &layer {
                    let (key, _, covered) = &windows[j];
                    aggregates.record(Some(key), None, None, std::iter::empty());
                    records.extend(covered.iter().copied());
                    ends.push((j, records.len()));
                }
                let batch = frame::encode(Vec::new(), records.iter().copied());
                let aggregates = aggregates.finish();
                let output = self.aggregator_call(step, DOING, |i| i.add(&aggregates, &batch))?;
                let decoded =
                    frame::decode(output, &records).map_err(|message| RunError::Aggregator {
                        step: name.clone(),
                        doing: DOING,
                        message,
                    })?;
                let mut begin = 0;
                for (j, end) in ends {
                    // The aggregate after the window's last accepted record.
                    let last = decoded.outcomes[begin..end]
                        .iter()
                        .rev()
                        .find_map(|o| match o {
                            Outcome::Ok(range) if range.len() == 1 => Some(range.start),
                            _ => None,
                        });
                    if let Some(at) = last
                        && let Some(value) = decoded.record(at).value
                    {
                        results.push((j, value.to_vec()));
                    }
                    begin = end;
                }
            }
        }
        let buffer = self.step_buffer(step);
        for (j, value) in results {
            let (key, open, _) = &windows[j];
            buffer.put(&open.store_key(key), &value);
            open.note_new(buffer, key);
        }
        Ok(())
    }
}

/// Groups items by key into layers where each key appears at most once,
/// keeping each key's items in order: positions of the items per layer.
pub(super) fn key_layers<'k>(keys: impl Iterator<Item = &'k [u8]>) -> Vec<Vec<usize>> {
    let mut depth: HashMap<&[u8], usize> = HashMap::new();
    let mut layers: Vec<Vec<usize>> = Vec::new();
    for (i, key) in keys.enumerate() {
        let d = depth.entry(key).or_insert(0);
        if layers.len() == *d {
            layers.push(Vec::new());
        }
        layers[*d].push(i);
        *d += 1;
    }
    layers
}

/// Tells apart records of one key and time: the source position.
fn position(r: &InputRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + r.topic.len());
    out.extend_from_slice(&r.partition.to_be_bytes());
    out.extend_from_slice(&r.offset.to_be_bytes());
    out.extend_from_slice(r.topic.as_bytes());
    out
}

/// Reads a kept record (a one-record input frame).
fn decode_kept(bytes: &[u8]) -> Option<Record> {
    let (mut reader, count) = sluice_frame::Reader::input(bytes).ok()?;
    if count != 1 {
        return None;
    }
    let r = reader.record().ok()?;
    let headers = r
        .headers()
        .map(|h| h.map(|(n, v)| (n.to_owned(), v.map(Bytes::copy_from_slice))))
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    Some(Record {
        key: r.key.map(Bytes::copy_from_slice),
        value: r.value.map(Bytes::copy_from_slice),
        timestamp: r.timestamp,
        headers,
    })
}
