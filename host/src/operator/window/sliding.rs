//! Sliding windows over the task's store (the arithmetic is in
//! `crate::window::sliding`).
//!
//! A sliding window is created by a record: its own left window, the
//! right window of the record before it, or its own right window when
//! later records exist. A new window must start from every record it
//! covers, and an aggregate cannot be split, so the step keeps the records
//! themselves until no open window can cover them (`0x02` entries, expired
//! through `0x03`; see [`super::store`]). Kafka Streams reaches the
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

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use crate::error::{RunError, StateError};
use crate::operator::aggregate::KeyedAggregate;
use crate::operator::window::layers::{self, Emitted, WindowAdd, by_key, key_layers};
use crate::operator::window::store::{AGGREGATE, OpenWindow, RECORD, expire, tagged};
use crate::operator::{FastMap, StepCtx};
use crate::plugin::frame::{self, Outcome};
use crate::record::{InputRecord, Record, RecordRef};
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

/// One key's windows and records within reach of the batch.
struct Reach {
    /// The starts of its stored windows (and of those the batch creates).
    existing: BTreeSet<i64>,
    /// Its records by time: kept ones, and the batch's planned so far.
    records: BTreeMap<i64, Vec<Covered>>,
}

/// What planning a batch decided, record by record.
struct Plan<'r> {
    sliding: Sliding,
    grace: i64,
    /// Records kept by earlier batches, loaded for the windows they start.
    kept: Vec<Record>,
    created: Vec<NewWindow<'r>>,
    adds: Vec<WindowAdd<'r>>,
    /// Where each (key, window start) is in `adds`.
    add_at: FastMap<(&'r [u8], i64), usize>,
    /// Inputs to keep for later windows (positions in the step's inputs).
    keep: Vec<usize>,
    /// Late inputs, with how many closed windows would have held them.
    late: Vec<(usize, u64)>,
}

/// Adds a batch's records to their sliding windows, creating the windows
/// they define; under `on-update`, returns each update.
pub fn run<'r>(
    agg: &mut KeyedAggregate,
    spec: &Windowing,
    sliding: Sliding,
    inputs: Vec<(usize, RecordRef<'r>)>,
    cx: &mut StepCtx<'_, '_>,
) -> Result<Vec<Emitted>, RunError> {
    let (keys, of_key) = by_key(&inputs);
    let mut plan = Plan {
        sliding,
        grace: spec.grace,
        kept: Vec::new(),
        created: Vec::new(),
        adds: Vec::new(),
        add_at: FastMap::default(),
        keep: Vec::new(),
        late: Vec::new(),
    };
    for key in keys {
        let positions = &of_key[key];
        let (lo, hi) = positions
            .iter()
            .map(|&i| cx.batch.times[inputs[i].0])
            .fold((i64::MAX, i64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
        let mut reach = plan.load(agg, key, (lo, hi), cx)?;
        for &i in positions {
            plan.record(&mut reach, key, i, &inputs, cx);
        }
    }
    for (i, closed) in std::mem::take(&mut plan.late) {
        layers::late(agg, spec, inputs[i], closed, cx)?;
    }

    let record_of = |c: &Covered| -> RecordRef<'_> {
        match *c {
            Covered::Kept(k) => plan.kept[k].as_ref(),
            Covered::Batch(i) => inputs[i].1,
        }
    };
    let starts: Vec<(&[u8], OpenWindow, Vec<RecordRef<'_>>)> = plan
        .created
        .iter()
        .map(|n| (n.key, n.open, n.covered.iter().map(record_of).collect()))
        .collect();
    start_windows(agg, starts, cx)?;
    let updates = spec.emit == EmitMode::OnUpdate;
    let adds = std::mem::take(&mut plan.adds);
    let mut emitted = layers::add_in_layers(agg, adds, updates, cx)?;
    if updates {
        plan.emit_created(agg, &mut emitted, cx)?;
    }
    plan.keep_records(agg, &inputs, cx);
    Ok(emitted)
}

impl<'r> Plan<'r> {
    /// The key's windows and kept records within reach of the batch's
    /// records of `key`, whose times are from `lo` to `hi`.
    fn load(
        &mut self,
        agg: &KeyedAggregate,
        key: &[u8],
        (lo, hi): (i64, i64),
        cx: &mut StepCtx<'_, '_>,
    ) -> Result<Reach, RunError> {
        let d = self.sliding.difference();
        let buffer = agg.buffer(&mut cx.stores);
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
                    store: cx.topology.steps[agg.step()].name.clone(),
                    message: "a record kept for sliding windows cannot be read".into(),
                }
                .into());
            };
            self.kept.push(record);
            records
                .entry(t)
                .or_default()
                .push(Covered::Kept(self.kept.len() - 1));
        }
        Ok(Reach { existing, records })
    }

    /// The window starting at `start`.
    fn open(&self, start: i64) -> OpenWindow {
        OpenWindow::timed(self.sliding.starting_at(start), self.grace)
    }

    /// Creates the window starting at `start` for `key`, from the records
    /// it covers.
    fn create(&mut self, reach: &mut Reach, key: &'r [u8], start: i64, origin: usize) {
        let w = self.sliding.starting_at(start);
        reach.existing.insert(start);
        self.created.push(NewWindow {
            key,
            open: self.open(start),
            covered: reach
                .records
                .range(w.start..w.end)
                .flat_map(|(_, c)| c.iter().copied())
                .collect(),
            origin,
        });
    }

    /// Plans input `i` (of `key`): the windows it goes into, those it
    /// creates, or that it is late.
    fn record(
        &mut self,
        reach: &mut Reach,
        key: &'r [u8],
        i: usize,
        inputs: &[(usize, RecordRef<'r>)],
        cx: &mut StepCtx<'_, '_>,
    ) {
        let (sliding, grace) = (self.sliding, self.grace);
        let origin = inputs[i].0;
        let (t, st) = (cx.batch.times[origin], cx.batch.stream_at[origin]);
        let accepts = |start: i64| sliding.starting_at(start).accepts_at(st, grace);
        let (first, last) = sliding.starts_containing(t);
        let mut into: Vec<i64> = reach
            .existing
            .range(first..=last)
            .copied()
            .filter(|&s| accepts(s))
            .collect();
        // Stored windows that would hold it but have closed (those
        // already purged are not seen).
        let mut closed = reach.existing.range(first..=last).count() - into.len();
        let mut new_starts = Vec::new();
        let left = sliding.left(t).start;
        if !reach.existing.contains(&left) {
            if accepts(left) {
                new_starts.push(left);
            } else {
                closed += 1;
            }
        }
        let (q_from, q_to) = sliding.right_windows_reaching(t);
        if let Some((&q, _)) = reach.records.range(q_from..=q_to).next_back() {
            let start = sliding.right(q).start;
            if start != left && !reach.existing.contains(&start) && accepts(start) {
                new_starts.push(start);
            }
        }
        if into.is_empty() && new_starts.is_empty() {
            self.late.push((i, closed as u64));
            return;
        }
        if closed > 0 {
            cx.batch.counts.partly_late += 1;
            cx.batch.counts.late_windows += closed as u64;
        }
        for start in new_starts {
            self.create(reach, key, start, origin);
            into.push(start);
        }
        let right = sliding.right(t);
        if !reach.existing.contains(&right.start)
            && reach.records.range(right.start..right.end).next().is_some()
            && accepts(right.start)
        {
            self.create(reach, key, right.start, origin);
        }
        into.sort_unstable();
        for start in into {
            let open = self.open(start);
            let adds = &mut self.adds;
            let at = *self.add_at.entry((key, start)).or_insert_with(|| {
                adds.push(WindowAdd {
                    open,
                    records: Vec::new(),
                });
                adds.len() - 1
            });
            adds[at].records.push(inputs[i]);
        }
        reach.records.entry(t).or_default().push(Covered::Batch(i));
        self.keep.push(i);
    }

    /// Under `on-update`: a new window that took no record of the batch
    /// (a record's right window) still changed: it came into being.
    fn emit_created(
        &self,
        agg: &KeyedAggregate,
        emitted: &mut Vec<Emitted>,
        cx: &mut StepCtx<'_, '_>,
    ) -> Result<(), RunError> {
        let buffer = agg.buffer(&mut cx.stores);
        for n in &self.created {
            if self.add_at.contains_key(&(n.key, n.open.window.start)) {
                continue;
            }
            if let Some(value) = buffer.get(&n.open.store_key(n.key))? {
                emitted.push(Emitted {
                    origin: n.origin,
                    key: n.key.to_vec(),
                    window: n.open.window,
                    value: Some(value),
                    timestamp: Some(cx.batch.times[n.origin]),
                });
            }
        }
        Ok(())
    }

    /// Keeps the batch's records that later windows may start from, until
    /// no open window can cover them.
    fn keep_records(
        &self,
        agg: &KeyedAggregate,
        inputs: &[(usize, RecordRef<'r>)],
        cx: &mut StepCtx<'_, '_>,
    ) {
        let buffer = agg.buffer(&mut cx.stores);
        for &i in &self.keep {
            let (origin, record) = inputs[i];
            let t = cx.batch.times[origin];
            let stored = tagged(
                RECORD,
                &key_layout::record_key(
                    record.key.expect("null keys were filtered out"),
                    t,
                    &position(&cx.batch.batch[origin]),
                ),
            );
            buffer.put(&stored, &frame::encode(Vec::new(), std::iter::once(record)));
            expire(
                buffer,
                &stored,
                self.sliding.record_expires_at(t, self.grace),
            );
        }
    }
}

/// Writes each new window's aggregate: `init`, then every record it
/// covers. One aggregator call per layer of distinct keys.
fn start_windows(
    agg: &mut KeyedAggregate,
    windows: Vec<(&[u8], OpenWindow, Vec<RecordRef<'_>>)>,
    cx: &mut StepCtx<'_, '_>,
) -> Result<(), RunError> {
    const DOING: &str = "building a new sliding window from the records it covers";
    let name = cx.topology.steps[agg.step()].name.clone();
    let windows: Vec<_> = windows
        .into_iter()
        .filter(|(_, _, records)| !records.is_empty())
        .collect();
    let mut results: Vec<(usize, Vec<u8>)> = Vec::with_capacity(windows.len());
    if agg.is_count() {
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
            let output = agg.call_on_aggregates(&name, DOING, |i| i.add(&aggregates, &batch))?;
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
    let buffer = agg.buffer(&mut cx.stores);
    for (j, value) in results {
        let (key, open, _) = &windows[j];
        buffer.put(&open.store_key(key), &value);
        open.note_new(buffer, key);
    }
    Ok(())
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
