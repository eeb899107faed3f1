//! The stream–stream join: records of two streams with the same key meet
//! when their times are close enough (`join-window`), with Kafka Streams'
//! semantics since 3.1 (`KStreamKStreamJoin`; the reference model in
//! `tests/reference/src/joins/stream_stream.rs` spells the rules out).
//! Per record `x` at time `t` on one side, in arrival order:
//!
//! 1. the join's stream time (both sides') becomes `max(stream time, t)`;
//! 2. a record without a key but with a value, on a side whose unmatched
//!    records are kept (left in a left join, either in an outer join), is
//!    emitted at once, unmatched; any other record without a key or a
//!    value is dropped and counted (`join_skipped`);
//! 3. if `t` is the stream time, every pending unmatched record whose
//!    window closed (`its time + its look-ahead + grace < stream time`) is
//!    emitted, in the order (time, right before left, key, arrival);
//! 4. `x` joins the other side's kept records with its key and a time in
//!    `[t - before, t + after]` (a right record: `[t - after, t + before]`)
//!    that the other side still keeps (newer than its latest time minus
//!    `before + after + grace`), each giving one result at the later of
//!    the two times, and no longer pending;
//! 5. unmatched on a kept side, `x` is emitted at once if its window has
//!    already ended (`t + look-ahead < stream time`), else it waits;
//! 6. `x` is kept on its side.
//!
//! Everything lives in the step's store (and so in its changelog):
//!
//! | key | value |
//! |---|---|
//! | `0x00 ‖ name`: the stream time, each side's latest time, the next arrival number | `i64` big-endian |
//! | `0x01 ‖ side ‖ key ‖ time ‖ arrival`: a kept record | the record |
//! | `0x02 ‖ side ‖ time ‖ arrival`: when it expires | its `0x01` key |
//! | `0x03 ‖ time ‖ rank ‖ key ‖ arrival`: a pending unmatched record (rank 0 right, 1 left) | the record |
//!
//! Keys are written so that byte order is their order (`ordered`), times
//! and arrival numbers big-endian. A kept record older than its side's
//! latest time minus the retention can no longer match and is deleted.

use bytes::Bytes;

use super::joiner::ValueJoiner;
use super::results;
use super::stored::{decode, encode, ordered};
use crate::error::RunError;
use crate::operator::batch::StepOut;
use crate::operator::{Operator, StepCtx};
use crate::plugin::Plugin;
use crate::record::{Record, RecordRef};
use crate::state::StoreBuffer;
use crate::topology::{JoinKind, JoinWindow};

/// Which input a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Left,
    Right,
}

impl Side {
    fn other(self) -> Side {
        match self {
            Side::Left => Side::Right,
            Side::Right => Side::Left,
        }
    }

    /// Its byte in kept keys.
    fn byte(self) -> u8 {
        match self {
            Side::Left => 0,
            Side::Right => 1,
        }
    }

    /// Its rank in the pending order: right before left.
    fn rank(self) -> u8 {
        match self {
            Side::Right => 0,
            Side::Left => 1,
        }
    }
}

const META: u8 = 0x00;
const KEPT: u8 = 0x01;
const EXPIRY: u8 = 0x02;
const PENDING: u8 = 0x03;

/// A stream–stream join of one task.
pub struct StreamStreamJoin {
    index: usize,
    kind: JoinKind,
    window: JoinWindow,
    joiner: ValueJoiner,
    /// Its store, among the task's.
    store: usize,
}

/// The join's clocks, kept in its store between batches.
#[derive(Debug, Clone, Copy)]
struct Clocks {
    stream: i64,
    /// Each side's latest time (left, right).
    observed: [i64; 2],
    /// The next arrival number.
    arrival: i64,
    /// Per side: every kept record older than this is deleted already.
    expired: [i64; 2],
    /// Every pending record older than this was emitted already.
    closed: i64,
}

type Emit = results::Result;

impl StreamStreamJoin {
    /// The join of step `index`, of `kind`, within `window`, its values
    /// joined by `joiner`, kept in the task's store `store`.
    pub fn new(
        index: usize,
        kind: JoinKind,
        window: JoinWindow,
        joiner: ValueJoiner,
        store: usize,
    ) -> StreamStreamJoin {
        StreamStreamJoin {
            index,
            kind,
            window,
            joiner,
            store,
        }
    }

    /// Whether a side's unmatched records are emitted.
    fn outer(&self, side: Side) -> bool {
        match self.kind {
            JoinKind::Inner => false,
            JoinKind::Left => side == Side::Left,
            JoinKind::Outer => true,
        }
    }

    /// How far back and ahead a record of `side` looks.
    fn looks(&self, side: Side) -> (i64, i64) {
        match side {
            Side::Left => (self.window.before, self.window.after),
            Side::Right => (self.window.after, self.window.before),
        }
    }

    fn retention(&self) -> i64 {
        self.window.before + self.window.after + self.window.grace
    }

    /// Rules 1 to 6 for one record; what it emits goes to `out`.
    fn arrive(
        &self,
        store: &mut StoreBuffer,
        clocks: &mut Clocks,
        (origin, side, record): (usize, Side, RecordRef<'_>),
        out: &mut Vec<Emit>,
        skipped: &mut u64,
    ) -> Result<(), RunError> {
        let t = record.timestamp.unwrap_or(0).max(0);
        clocks.stream = clocks.stream.max(t);
        let (Some(key), Some(_)) = (record.key, record.value) else {
            if record.key.is_none() && record.value.is_some() && self.outer(side) {
                out.push(alone(origin, side, None, record.to_owned_record(), t));
            } else {
                *skipped += 1;
            }
            return Ok(());
        };
        if self.kind != JoinKind::Inner && t == clocks.stream {
            let stream = clocks.stream;
            self.close_pending(store, clocks, stream, origin, out)?;
        }
        let matched = self.match_other(store, clocks, (origin, side, record), key, t, out)?;
        let (_, ahead) = self.looks(side);
        let owned = record.to_owned_record();
        if !matched && self.outer(side) {
            if t.saturating_add(ahead) < clocks.stream {
                out.push(alone(
                    origin,
                    side,
                    Some(Bytes::copy_from_slice(key)),
                    owned.clone(),
                    t,
                ));
            } else {
                store.put(&pending_key(t, side, key, clocks.arrival), &encode(&owned));
            }
        }
        self.keep(store, clocks, side, key, t, &owned)?;
        Ok(())
    }

    /// Rule 3: the pending records whose windows closed, in store order.
    fn close_pending(
        &self,
        store: &mut StoreBuffer,
        clocks: &mut Clocks,
        stream: i64,
        origin: usize,
        out: &mut Vec<Emit>,
    ) -> Result<(), RunError> {
        let least = self.window.before.min(self.window.after) + self.window.grace;
        let below = stream.saturating_sub(least);
        if below <= 0 {
            return Ok(());
        }
        // Below `closed` everything was emitted: a scan from there passes
        // over no deleted entries.
        let start = [&[PENDING][..], &(clocks.closed.max(0) as u64).to_be_bytes()].concat();
        let end = [&[PENDING][..], &(below as u64).to_be_bytes()].concat();
        let most = self.window.before.max(self.window.after) + self.window.grace;
        clocks.closed = clocks.closed.max(stream.saturating_sub(most));
        for (k, v) in store.range(Some(&start), Some(&end))? {
            let (time, side) = pending_parts(&k);
            let (_, ahead) = self.looks(side);
            if time + ahead + self.window.grace < stream {
                let record = decode(&v);
                let key = record.key.clone();
                store.delete(&k);
                out.push(alone(origin, side, key, record, time));
            }
        }
        Ok(())
    }

    /// Rule 4: `record` (with `key`, at `t`) joins the other side's kept
    /// records in its window. Returns whether it matched any.
    fn match_other(
        &self,
        store: &mut StoreBuffer,
        clocks: &Clocks,
        (origin, side, record): (usize, Side, RecordRef<'_>),
        key: &[u8],
        t: i64,
        out: &mut Vec<Emit>,
    ) -> Result<bool, RunError> {
        let other = side.other();
        let (back, ahead) = self.looks(side);
        let from = t.saturating_sub(back).max(0);
        let to = t.saturating_add(ahead).max(0);
        let oldest = clocks.observed[other.byte() as usize].saturating_sub(self.retention());
        let start = kept_key(other, key, from, 0);
        let end = kept_key(other, key, to.saturating_add(1), 0);
        let matches = store.range(Some(&start), Some(&end))?;
        let mut any = false;
        for (k, v) in matches {
            let time = kept_time(&k);
            if time <= oldest {
                continue;
            }
            any = true;
            let theirs = decode(&v);
            // It is no longer waiting to be emitted unmatched.
            let pending = pending_key(time, other, key, 0);
            let past = pending_key(time, other, key, i64::MAX);
            for (p, _) in store.range(Some(&pending), Some(&past))? {
                store.delete(&p);
            }
            let mine = record.to_owned_record();
            let (left, right) = match side {
                Side::Left => (mine, theirs),
                Side::Right => (theirs, mine),
            };
            out.push(Emit {
                origin,
                key: Some(Bytes::copy_from_slice(key)),
                pair: Some((Some(left), Some(right))),
                time: Some(t.max(time)),
            });
        }
        Ok(any)
    }

    /// Rule 6: keeps `record` on its side, and deletes that side's records
    /// that can no longer match.
    fn keep(
        &self,
        store: &mut StoreBuffer,
        clocks: &mut Clocks,
        side: Side,
        key: &[u8],
        t: i64,
        record: &Record,
    ) -> Result<(), RunError> {
        let kept = kept_key(side, key, t, clocks.arrival);
        store.put(&kept, &encode(record));
        store.put(&expiry_key(side, t, clocks.arrival), &kept);
        clocks.arrival += 1;
        let observed = &mut clocks.observed[side.byte() as usize];
        *observed = (*observed).max(t);
        let dead = observed.saturating_sub(self.retention());
        let floor = &mut clocks.expired[side.byte() as usize];
        if dead < *floor {
            return Ok(());
        }
        // Below `floor` everything is deleted already.
        let start = expiry_key(side, *floor, 0);
        let end = expiry_key(side, dead.saturating_add(1), 0);
        *floor = dead.saturating_add(1);
        for (k, v) in store.range(Some(&start), Some(&end))? {
            store.delete(&v);
            store.delete(&k);
        }
        Ok(())
    }
}

impl Operator for StreamStreamJoin {
    fn process<'r>(
        &mut self,
        inputs: Vec<(usize, RecordRef<'r>)>,
        cx: &mut StepCtx<'_, '_>,
    ) -> Result<StepOut, RunError> {
        let left = cx.per_input.first().copied().unwrap_or(0);
        let mut arrivals: Vec<(usize, Side, RecordRef<'r>)> = (inputs.iter().enumerate())
            .map(|(i, &(origin, r))| (origin, if i < left { Side::Left } else { Side::Right }, r))
            .collect();
        // Arrival order: the batch's, whichever input a record came by.
        arrivals.sort_by_key(|&(origin, _, _)| origin);
        let live: std::collections::HashSet<usize> =
            (super::super::unapplied(&[self.store], inputs, cx).into_iter())
                .map(|(o, _)| o)
                .collect();
        arrivals.retain(|(origin, _, _)| live.contains(origin));
        let store = StepCtx::buffer(&mut cx.stores, self.store);
        let mut clocks = read_clocks(store)?;
        let mut emits = Vec::new();
        let mut skipped = 0;
        for &arrival in &arrivals {
            self.arrive(store, &mut clocks, arrival, &mut emits, &mut skipped)?;
        }
        // An idle close moved the task's stream time past what is waiting.
        if cx.batch.tick
            && let Some(now) = cx.stream_time
            && now > clocks.stream
        {
            clocks.stream = now;
            if self.kind != JoinKind::Inner {
                self.close_pending(store, &mut clocks, now, 0, &mut emits)?;
            }
        }
        write_clocks(store, &clocks);
        cx.batch.counts.join_skipped += skipped;
        let records: Vec<(usize, RecordRef<'r>)> =
            arrivals.iter().map(|&(o, _, r)| (o, r)).collect();
        results::write(&mut self.joiner, self.index, emits, &records, cx)
    }

    fn latest_close(
        &self,
        stores: &mut crate::state::task_state::TaskStores,
    ) -> Result<Option<i64>, RunError> {
        if self.kind == JoinKind::Inner {
            return Ok(None);
        }
        let buffer = stores.buffer(self.store);
        let pending = buffer.range(Some(&[PENDING]), Some(&[PENDING + 1]))?;
        Ok((pending.iter())
            .map(|(k, _)| {
                let (time, side) = pending_parts(k);
                time + self.looks(side).1 + self.window.grace + 1
            })
            .max())
    }

    fn digest(&self) -> &str {
        self.joiner.digest()
    }

    fn swap_plugin(&mut self, plugin: Plugin) {
        self.joiner.swap_plugin(plugin);
    }
}

/// An unmatched result: `record` alone on its `side`.
fn alone(origin: usize, side: Side, key: Option<Bytes>, record: Record, time: i64) -> Emit {
    let pair = match side {
        Side::Left => (Some(record), None),
        Side::Right => (None, Some(record)),
    };
    Emit {
        origin,
        key,
        pair: Some(pair),
        time: Some(time),
    }
}

/// The clocks as the store keeps them (a fresh join's: no time yet).
fn read_clocks(store: &StoreBuffer) -> Result<Clocks, RunError> {
    let get = |name: &[u8], default: i64| -> Result<i64, RunError> {
        let key = [&[META][..], name].concat();
        Ok(match store.get(&key)? {
            Some(v) if v.len() == 8 => i64::from_be_bytes(v.try_into().expect("8 bytes")),
            _ => default,
        })
    };
    Ok(Clocks {
        stream: get(b"stream", i64::MIN)?,
        observed: [
            get(b"observed-left", i64::MIN)?,
            get(b"observed-right", i64::MIN)?,
        ],
        arrival: get(b"arrival", 0)?,
        expired: [get(b"expired-left", 0)?, get(b"expired-right", 0)?],
        closed: get(b"closed", 0)?,
    })
}

fn write_clocks(store: &mut StoreBuffer, clocks: &Clocks) {
    let values = [
        (&b"stream"[..], clocks.stream),
        (b"observed-left", clocks.observed[0]),
        (b"observed-right", clocks.observed[1]),
        (b"arrival", clocks.arrival),
        (b"expired-left", clocks.expired[0]),
        (b"expired-right", clocks.expired[1]),
        (b"closed", clocks.closed),
    ];
    for (name, value) in values {
        store.put(&[&[META][..], name].concat(), &value.to_be_bytes());
    }
}

fn kept_key(side: Side, key: &[u8], time: i64, arrival: i64) -> Vec<u8> {
    [
        &[KEPT, side.byte()][..],
        &ordered(key),
        &(time.max(0) as u64).to_be_bytes(),
        &(arrival as u64).to_be_bytes(),
    ]
    .concat()
}

/// The time of a kept key.
fn kept_time(k: &[u8]) -> i64 {
    let at = k.len() - 16;
    u64::from_be_bytes(k[at..at + 8].try_into().expect("8 bytes")) as i64
}

fn expiry_key(side: Side, time: i64, arrival: i64) -> Vec<u8> {
    [
        &[EXPIRY, side.byte()][..],
        &(time.max(0) as u64).to_be_bytes(),
        &(arrival as u64).to_be_bytes(),
    ]
    .concat()
}

fn pending_key(time: i64, side: Side, key: &[u8], arrival: i64) -> Vec<u8> {
    [
        &[PENDING][..],
        &(time.max(0) as u64).to_be_bytes(),
        &[side.rank()],
        &ordered(key),
        &(arrival as u64).to_be_bytes(),
    ]
    .concat()
}

/// The time and side of a pending key.
fn pending_parts(k: &[u8]) -> (i64, Side) {
    let time = u64::from_be_bytes(k[1..9].try_into().expect("8 bytes")) as i64;
    let side = if k[9] == Side::Right.rank() {
        Side::Right
    } else {
        Side::Left
    };
    (time, side)
}

#[cfg(test)]
mod tests {
    use sluice_reference::joins::stream_stream::{self, Windows};
    use sluice_reference::joins::tables::{
        STREAM_STREAM, STREAM_STREAM_CODE, STREAM_STREAM_WINDOW,
    };
    use sluice_reference::joins::{self, Event, Kind, Side};

    use crate::operator::join::testing::{column, json, name, push, row, seen};
    use crate::task::testing::Driver;

    const TOPICS: (&str, &str) = ("left", "right");

    fn pipeline(kind: &str, before: i64, after: i64, grace: i64) -> String {
        format!(
            r#"
            application.id = "app"
            [sources.left]
            [sources.right]
            [steps.joined]
            join = "{kind}"
            joiner = "pair"
            join-window = {{ before = {before}, after = {after}, grace = {grace} }}
            inputs = ["left", "right"]
            [sinks.out]
            inputs = ["joined"]
            "#
        )
    }

    /// `events` through the join, one call batch of `per_batch` events at
    /// a time (arrival order is kept within a batch too).
    fn run(kind: Kind, w: Windows, events: &[Event], per_batch: usize) -> Driver {
        let mut d = Driver::from_toml(&pipeline(name(kind), w.before, w.after, w.grace)).unwrap();
        for chunk in events.chunks(per_batch) {
            chunk.iter().for_each(|e| push(&mut d, TOPICS, e));
            d.process().unwrap();
        }
        d
    }

    #[test]
    fn the_developer_guides_stream_stream_semantics_hold_row_by_row() {
        let (difference, grace) = STREAM_STREAM_WINDOW;
        for kind in Kind::ALL {
            let mut d =
                Driver::from_toml(&pipeline(name(kind), difference, difference, grace)).unwrap();
            for r in STREAM_STREAM.rows {
                // Where Kafka's code and its guide disagree, the code.
                let outs = (STREAM_STREAM_CODE.iter())
                    .find(|(t, k, _)| *t == r.time && *k == kind)
                    .map_or(r.column(kind), |(_, _, outs)| *outs);
                assert_eq!(
                    row(&mut d, TOPICS, r),
                    column(outs),
                    "{kind:?} join, row {}",
                    r.time
                );
            }
        }
    }

    #[test]
    fn fifty_random_inputs_join_as_the_reference_model_does() {
        let asymmetric = Windows {
            before: 10,
            after: 50,
            grace: 0,
            eager: false,
        };
        for seed in 0..50 {
            let events = joins::events(seed, 150, 60);
            for kind in Kind::ALL {
                for w in [Windows::symmetric(30, 20), asymmetric] {
                    let want: Vec<_> = (stream_stream::join(&events, kind, w).outputs.into_iter())
                        .map(|o| (o.key, o.value, o.time))
                        .collect();
                    // One record per batch, and several per batch: the same.
                    for per_batch in [1, 7] {
                        let d = run(kind, w, &events, per_batch);
                        assert_eq!(
                            seen(&d, "out", 0),
                            want,
                            "seed {seed}, {kind:?}, {w:?}, {per_batch} per batch"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_store_keeps_only_what_can_still_match() {
        let w = Windows::symmetric(10, 5);
        let side = |i: i64| if i % 2 == 0 { Side::Left } else { Side::Right };
        let events: Vec<Event> = (0..200)
            .map(|i| Event::new(side(i), "k", Some(&format!("v{i}")), i * 10))
            .collect();
        let mut d = run(Kind::Outer, w, &events, 10);
        let kept = d
            .entries("joined")
            .unwrap()
            .iter()
            .filter(|(k, _)| k[0] == 0x01)
            .count();
        assert!(
            kept <= 6,
            "{kept} records kept for a window of 25 ms over records 10 ms apart"
        );
    }

    #[test]
    fn an_idle_partition_still_emits_its_unmatched_records() {
        let text = pipeline("left", 0, 600_000, 60_000).replace(
            "inputs = [\"left\", \"right\"]",
            "inputs = [\"left\", \"right\"]\n            close.idle.after = \"5m\"",
        );
        let mut d = Driver::setup(&text)
            .unwrap()
            .clock_at(1_000)
            .start()
            .unwrap();
        d.push("left", Some(b"s1"), Some(&json("rust")), Some(1_000));
        d.push("left", Some(b"s2"), Some(&json("wasm")), Some(2_000));
        d.push(
            "right",
            Some(b"s1"),
            Some(&json("rust-lang.org")),
            Some(3_000),
        );
        d.process().unwrap();
        assert_eq!(seen(&d, "out", 0).len(), 1, "s1 met its click; s2 waits");
        d.advance(299_000);
        assert!(
            d.close_idle(false).unwrap().is_none(),
            "not idle for 5 minutes yet"
        );
        d.advance(2_000);
        d.close_idle(false).unwrap().expect("closed");
        let s2 = (
            Some("s2".to_owned()),
            Some((Some("wasm".to_owned()), None)),
            2_000,
        );
        assert_eq!(
            seen(&d, "out", 1),
            [s2],
            "its window (10 min) and grace (1 min) closed"
        );
        assert!(d.close_idle(false).unwrap().is_none(), "once");
    }
}
