//! Session windows over the step's store (the arithmetic is in
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

use crate::error::{RunError, StateError};
use crate::operator::aggregate::KeyedAggregate;
use crate::operator::window::layers::{self, Emitted, WindowAdd, by_key};
use crate::operator::window::store::{AGGREGATE, Layout, OpenWindow, tagged};
use crate::operator::{FastMap, StepCtx};
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

/// Adds a batch's records to their sessions, merging the sessions a record
/// joins; under `on-update`, returns each session's last update and the
/// tombstones of the sessions merged away.
pub fn run<'r>(
    agg: &mut KeyedAggregate,
    spec: &Windowing,
    sessions: Sessions,
    inputs: Vec<(usize, RecordRef<'r>)>,
    cx: &mut StepCtx<'_, '_>,
) -> Result<Vec<Emitted>, RunError> {
    let (keys, of_key) = by_key(&inputs);
    let mut finals: Vec<(&'r [u8], Live)> = Vec::new();
    let mut late = Vec::new();
    for key in keys {
        let live = plan_key(
            agg,
            spec.grace,
            sessions,
            key,
            &of_key[key],
            &inputs,
            &mut late,
            cx,
        )?;
        finals.extend(
            live.into_iter()
                .filter(|l| !l.records.is_empty())
                .map(|l| (key, l)),
        );
    }
    for i in late {
        layers::late(agg, spec, inputs[i], 1, cx)?;
    }
    let updates = spec.emit == EmitMode::OnUpdate;
    let open = |window: Window| OpenWindow {
        window,
        layout: Layout::Session,
        close_at: sessions.closes_at(window, spec.grace),
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
                let buffer = agg.buffer(&mut cx.stores);
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
            let base = merge_aggregates(agg, key, aggregates, cx)?;
            let buffer = agg.buffer(&mut cx.stores);
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
    let updated = layers::add_in_layers(agg, adds, updates, cx)?;
    emitted.extend(last_per_session(updated));
    Ok(emitted)
}

/// Plans the batch's records of `key` (at `positions` in `inputs`), in
/// arrival order: the stored sessions within reach, and each record
/// joining the sessions it is within the gap of; the late ones are added
/// to `late`.
#[allow(clippy::too_many_arguments)]
fn plan_key(
    agg: &KeyedAggregate,
    grace: i64,
    sessions: Sessions,
    key: &[u8],
    positions: &[usize],
    inputs: &[(usize, RecordRef<'_>)],
    late: &mut Vec<usize>,
    cx: &mut StepCtx<'_, '_>,
) -> Result<Vec<Live>, RunError> {
    let earliest = positions
        .iter()
        .map(|&i| cx.batch.times[inputs[i].0])
        .min()
        .expect("a key has records");
    let (from, to) = key_layout::session_scan(key, sessions.earliest_end_joined_by(earliest));
    let buffer = agg.buffer(&mut cx.stores);
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
        let (t, st) = (cx.batch.times[origin], cx.batch.stream_at[origin]);
        // A closed session is final, even before it is purged at the end
        // of the batch.
        let (joined, rest): (Vec<Live>, Vec<Live>) = live
            .into_iter()
            .partition(|l| sessions.joins(l.window, t) && st < sessions.closes_at(l.window, grace));
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
    Ok(live)
}

/// One result per session and batch: its last update.
fn last_per_session(updated: Vec<Emitted>) -> impl Iterator<Item = Emitted> {
    let mut last: FastMap<(&[u8], Window), usize> = FastMap::default();
    for (j, e) in updated.iter().enumerate() {
        last.insert((&e.key, e.window), j);
    }
    let keep: Vec<bool> = (0..updated.len())
        .map(|j| {
            let e = &updated[j];
            last[&(&e.key[..], e.window)] == j
        })
        .collect();
    updated
        .into_iter()
        .zip(keep)
        .filter_map(|(e, keep)| keep.then_some(e))
}

/// Merges the aggregates of sessions a record joined, oldest first.
fn merge_aggregates(
    agg: &mut KeyedAggregate,
    key: &[u8],
    aggregates: Vec<Vec<u8>>,
    cx: &StepCtx<'_, '_>,
) -> Result<Option<Vec<u8>>, RunError> {
    let name = cx.topology.steps[agg.step()].name.clone();
    if agg.is_count() {
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
        merged = agg.call_on_aggregates(&name, "merging two sessions a record joined", |i| {
            i.merge(key, &merged, &next)
        })?;
    }
    Ok(Some(merged))
}
