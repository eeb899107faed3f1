//! Session windows over the task's store (the arithmetic is in
//! `crate::window::session`).
//!
//! A batch is planned record by record, in arrival order, without calling
//! the plugin: each record joins the sessions of its key it is within the
//! gap of (stored ones, or ones of this batch), or is late. Then each
//! session the batch touched is built once:
//! 1. the stored sessions it absorbed are deleted, and their aggregates
//!    merged (the aggregator's `merge`; the count adds);
//! 2. the batch's records are added to that, in arrival order.
//!
//! With `on-update`, a session's result is emitted once per batch (its
//! last update), and each absorbed session is retracted with a tombstone
//! of its window key, as Kafka Streams does.

use std::collections::HashMap;

use super::windowed::{AGGREGATE, Emitted, Layout, OpenWindow, WindowAdd};
use super::{BatchContext, Task};
use crate::error::{RunError, StateError};
use crate::record::RecordRef;
use crate::state::key_layout;
use crate::topology::{EmitMode, Windowing};
use crate::window::Window;
use crate::window::session::Sessions;

/// A session while a batch is planned.
struct Live {
    window: Window,
    /// The stored sessions it covers.
    absorbed: Vec<Window>,
    /// The batch records it takes (positions in the step's inputs).
    records: Vec<usize>,
}

impl Task {
    /// Session windows.
    pub(super) fn run_sessions<'r>(
        &mut self,
        step: usize,
        spec: &Windowing,
        sessions: Sessions,
        inputs: Vec<(usize, RecordRef<'r>)>,
        ctx: &mut BatchContext<'_>,
    ) -> Result<Vec<Emitted>, RunError> {
        let grace = spec.grace;
        let updates = spec.emit == EmitMode::OnUpdate;
        let (keys, of_key) = by_key(&inputs);
        let mut finals: Vec<(&'r [u8], Live)> = Vec::new();
        let mut late = Vec::new();
        for key in keys {
            let positions = &of_key[key];
            let earliest = positions
                .iter()
                .map(|&i| ctx.times[inputs[i].0])
                .min()
                .expect("a key has records");
            let (from, to) =
                key_layout::session_scan(key, sessions.earliest_end_joined_by(earliest));
            let buffer = self.step_buffer(step);
            let mut live: Vec<Live> = Vec::new();
            for (k, _) in buffer.range(
                Some(&tagged(AGGREGATE, &from)),
                Some(&tagged(AGGREGATE, &to)),
            )? {
                if let Some((_, start, end)) = key_layout::decode_session_key(&k[1..]) {
                    let w = Window { start, end };
                    live.push(Live {
                        window: w,
                        absorbed: vec![w],
                        records: Vec::new(),
                    });
                }
            }
            for &i in positions {
                let origin = inputs[i].0;
                let (t, st) = (ctx.times[origin], ctx.stream_at[origin]);
                // A closed session is final, even before it is purged at
                // the end of the batch.
                let (joined, rest): (Vec<Live>, Vec<Live>) = live.into_iter().partition(|l| {
                    sessions.joins(l.window, t) && st < sessions.closes_at(l.window, grace)
                });
                let merged = joined
                    .iter()
                    .fold(Sessions::of_record(t), |m, l| Sessions::merge(m, l.window));
                if !merged.accepts_at(st, grace) {
                    late.push(i);
                    live = joined.into_iter().chain(rest).collect();
                    continue;
                }
                let mut next = Live {
                    window: merged,
                    absorbed: Vec::new(),
                    records: vec![i],
                };
                for l in joined {
                    next.absorbed.extend(l.absorbed);
                    next.records.extend(l.records);
                }
                next.records.sort_unstable();
                live = rest;
                live.push(next);
            }
            finals.extend(
                live.into_iter()
                    .filter(|l| !l.records.is_empty())
                    .map(|l| (key, l)),
            );
        }
        for i in late {
            self.late(step, spec, inputs[i], 1, ctx)?;
        }

        let open = |window: Window| OpenWindow {
            window,
            layout: Layout::Session,
            close_at: sessions.closes_at(window, grace),
        };
        let mut emitted = Vec::new();
        let mut adds = Vec::with_capacity(finals.len());
        for (key, mut l) in finals {
            let session = open(l.window);
            let first = inputs[l.records[0]].0;
            l.absorbed.sort_unstable();
            if l.absorbed != [l.window] {
                let mut aggregates = Vec::with_capacity(l.absorbed.len());
                for &a in &l.absorbed {
                    let old = open(a);
                    let buffer = self.step_buffer(step);
                    if let Some(v) = buffer.get(&old.store_key(key))? {
                        aggregates.push(v);
                    }
                    old.delete(buffer, key);
                    if updates {
                        emitted.push(Emitted {
                            origin: first,
                            key: key.to_vec(),
                            window: a,
                            value: None,
                            timestamp: Some(a.end - 1),
                        });
                    }
                }
                let base = self.merge_aggregates(step, key, aggregates)?;
                let buffer = self.step_buffer(step);
                if let Some(base) = base {
                    buffer.put(&session.store_key(key), &base);
                }
                session.note_new(buffer, key);
            }
            adds.push(WindowAdd {
                open: session,
                records: l.records.iter().map(|&i| inputs[i]).collect(),
            });
        }
        let updated = self.add_in_layers(step, adds, updates, ctx)?;
        // One result per session and batch: its last update.
        let mut last: HashMap<(&[u8], Window), usize> = HashMap::new();
        for (j, e) in updated.iter().enumerate() {
            last.insert((&e.key, e.window), j);
        }
        let keep: Vec<bool> = (0..updated.len())
            .map(|j| {
                let e = &updated[j];
                last[&(&e.key[..], e.window)] == j
            })
            .collect();
        emitted.extend(
            updated
                .into_iter()
                .zip(keep)
                .filter_map(|(e, keep)| keep.then_some(e)),
        );
        Ok(emitted)
    }

    /// Merges the aggregates of sessions a record joined, oldest first.
    fn merge_aggregates(
        &mut self,
        step: usize,
        key: &[u8],
        aggregates: Vec<Vec<u8>>,
    ) -> Result<Option<Vec<u8>>, RunError> {
        let name = self.topology.steps[step].name.clone();
        if self.is_count(step) {
            if aggregates.is_empty() {
                return Ok(None);
            }
            let mut sum = 0u64;
            for a in &aggregates {
                sum += std::str::from_utf8(a)
                    .ok()
                    .and_then(|t| t.parse::<u64>().ok())
                    .ok_or_else(|| StateError::Corrupt {
                        store: name.clone(),
                        message: format!("a session count of key {key:?} is not a decimal number"),
                    })?;
            }
            return Ok(Some(sum.to_string().into_bytes()));
        }
        let mut all = aggregates.into_iter();
        let Some(mut merged) = all.next() else {
            return Ok(None);
        };
        for next in all {
            merged = self.aggregator_call(step, "merging two sessions a record joined", |i| {
                i.merge(key, &merged, &next)
            })?;
        }
        Ok(Some(merged))
    }
}

/// `tag ‖ bytes`.
pub(super) fn tagged(tag: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + bytes.len());
    out.push(tag);
    out.extend_from_slice(bytes);
    out
}

/// Positions of each key's records in a step's inputs.
pub(super) type ByKey<'r> = HashMap<&'r [u8], Vec<usize>>;

/// The distinct keys of `inputs` in order of first appearance, and the
/// positions of each key's records.
pub(super) fn by_key<'r>(inputs: &[(usize, RecordRef<'r>)]) -> (Vec<&'r [u8]>, ByKey<'r>) {
    let mut keys = Vec::new();
    let mut of_key = ByKey::new();
    for (i, (_, r)) in inputs.iter().enumerate() {
        let k = r.key.expect("null keys were filtered out");
        of_key
            .entry(k)
            .or_insert_with(|| {
                keys.push(k);
                Vec::new()
            })
            .push(i);
    }
    (keys, of_key)
}
