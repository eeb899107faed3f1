//! KStream–KStream joins: windowed inner, left and outer joins.
//!
//! Follows, in `streams/src/main/java/org/apache/kafka/streams/` of apache/kafka
//! `1eb7644` (4.0.0-SNAPSHOT):
//!
//! - `kstream/internals/KStreamKStreamJoin.java`: the join processor of
//!   each side (`process`, `emitNonJoinedOuterRecords`,
//!   `isOuterJoinWindowOpen`, `emitInnerJoin`);
//! - `kstream/internals/KStreamKStreamJoinLeftSide.java` and
//!   `KStreamKStreamJoinRightSide.java`: the left side looks `before` back
//!   and `after` ahead, the right side the other way round;
//! - `kstream/internals/KStreamJoinWindow.java`: a record is put in its
//!   side's window store *after* it has been joined (it forwards first);
//! - `kstream/internals/KStreamImplJoin.java`: one stream time shared by
//!   both sides (`TimeTracker`), the outer-join store only for left and
//!   outer joins;
//! - `kstream/internals/StreamJoinedStoreFactory.java`: window store
//!   retention `before + after + grace`;
//! - `state/internals/RocksDBWindowStore.java` and
//!   `AbstractRocksDBSegmentedBytesStore.java` (the default store): a null
//!   value is not stored (and does not move the store's time); a fetch
//!   returns only records newer than the store's own observed time minus
//!   the retention;
//! - `state/internals/TimestampedKeyAndJoinSideSerializer.java`: the
//!   outer-join store's order, (timestamp, right before left, key);
//! - `kstream/internals/StreamStreamJoinUtil.java` and KIP-962 (3.7): null
//!   keys and null values are skipped, except that a left (outer: either)
//!   record with a null key and a value is emitted unmatched at once.
//!
//! The rules, per arriving record `x` at time `t` on side `s`:
//!
//! 1. Stream time (shared by both sides) becomes `max(stream time, t)`,
//!    whatever the record (null keys and values too).
//! 2. A null key with a value on an outer side (left in a left join,
//!    either in an outer join) is emitted at once, unmatched, at `t`. Any
//!    other null key or null value is skipped.
//! 3. If `t` equals stream time (the record is not out of order) and the
//!    join keeps unmatched records (left, outer), every pending unmatched
//!    record `p` whose window has closed is emitted, at `p`'s time, in the
//!    order (time, right before left, key, arrival): closed means
//!    `p.time + look + grace < stream time`, where `look` is `after` for a
//!    left record and `before` for a right one.
//! 4. `x` joins every record of the other side with the same key, a time
//!    in `[t - before, t + after]` (left) or `[t - after, t + before]`
//!    (right), both ends clamped at 0, and still kept by the other side's
//!    store: its time `> (latest time stored on that side) - (before +
//!    after + grace)`. Matches come in time order (then arrival order);
//!    each gives an output at `max(t, match time)` and stops the match
//!    being pending.
//! 5. If `x` matched nothing and its side is outer, it is emitted at once,
//!    unmatched, at `t`, when `t + (after for left, before for right) <
//!    stream time` (its window has ended: nothing in order can still match
//!    it); otherwise it is pending.
//! 6. `x` is kept in its side's store (records with a null value are not).
//!
//! So a late record is not dropped: it still joins what the other side
//! keeps, and in a left or outer join an unmatched one is emitted at once
//! (a late record whose window has ended but whose grace has not can
//! therefore give both an unmatched result and, later, a match; Kafka
//! accepts that, see the comment in `process`). What lateness costs is
//! the store: a record older than its side's retention is never returned
//! to the other side, so later records cannot match it.
//!
//! What the model leaves out of Kafka's implementation, all of it timing
//! of unmatched results only, never which results:
//!
//! - Kafka throttles the closing pass of rule 3 to once per
//!   `__emit.interval.ms.kstreams.outer.join.spurious.results.fix__` of
//!   wall-clock time (1000 ms by default, an internal setting); the model
//!   runs it at every in-order record, as Kafka's tests do with 0.
//! - Kafka skips the closing pass while `minTime + joinAfterMs + grace >=
//!   stream time`, where `minTime` is only an estimate of the oldest
//!   pending time (after a pass it is the time of the last entry looked
//!   at, which can be later than entries still pending) and `joinAfterMs`
//!   is the triggering side's. That can postpone a closed window's result
//!   to a later pass; the model emits it at the first pass after closing.
//! - The in-memory window store advances its time on null values too; the
//!   model follows the default RocksDB store.
//!
//! With the deprecated `JoinWindows.of(...)` API the fix for spurious
//! results is off (`JoinWindows.enableSpuriousResultFix`, KAFKA-10847,
//! Kafka 3.1): there is no pending store and an unmatched record is
//! emitted at once, whatever its time. [`Windows::eager`] models that.

use super::{Event, Kind, Output, Side};

/// A join window (`JoinWindows`): a left record at `t` joins right
/// records in `[t - before, t + after]`; closed windows give their
/// unmatched results `grace` later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    /// How far back a left record looks (`JoinWindows.before`).
    pub before: i64,
    /// How far ahead a left record looks (`JoinWindows.after`).
    pub after: i64,
    /// Grace after the window's end (`ofTimeDifferenceAndGrace`).
    pub grace: i64,
    /// Unmatched results at once, as before Kafka 3.1 or with the
    /// deprecated `JoinWindows.of(...)`: no pending store.
    pub eager: bool,
}

impl Windows {
    /// `JoinWindows.ofTimeDifferenceAndGrace(difference, grace)`.
    pub fn symmetric(difference: i64, grace: i64) -> Windows {
        Windows {
            before: difference,
            after: difference,
            grace,
            eager: false,
        }
    }

    /// The window stores' retention: size (`before + after`) plus grace.
    pub fn retention(&self) -> i64 {
        self.before + self.after + self.grace
    }
}

/// A record held until its window closes (left records in left and outer
/// joins, right records in outer joins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Its arrival number.
    pub arrival: usize,
    /// Its side.
    pub side: Side,
    /// Its key.
    pub key: String,
    /// Its value.
    pub value: String,
    /// Its time.
    pub time: i64,
}

/// What a stream–stream join gives for its input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Everything emitted, in emission order.
    pub outputs: Vec<Output>,
    /// Unmatched records still waiting for their window to close at the
    /// end, in the order they would be emitted.
    pub pending: Vec<Pending>,
    /// Records skipped for a null key or a null value (Kafka's
    /// dropped-records metric; null-key records emitted unmatched by rule
    /// 2 are not counted).
    pub skipped: u64,
    /// Records too late for their own side's store: at or before the
    /// side's latest time minus the retention, so never matched by a
    /// later record (they are still joined and emitted themselves).
    pub expired: u64,
}

/// A record kept in a side's window store.
struct Kept {
    arrival: usize,
    key: String,
    value: String,
    time: i64,
}

/// Replays `events` through a stream–stream join of type `kind`.
pub fn join(events: &[Event], kind: Kind, w: Windows) -> Outcome {
    assert!(w.before + w.after >= 0, "an inverse window");
    assert!(w.grace >= 0, "a negative grace");
    let outer = |side: Side| match kind {
        Kind::Inner => false,
        Kind::Left => side == Side::Left,
        Kind::Outer => true,
    };
    // Kafka keeps pending records only for left and outer joins, and only
    // with the fix for spurious results.
    let keeps_pending = kind != Kind::Inner && !w.eager;
    let mut out = Outcome::default();
    let mut stream = i64::MIN;
    let mut kept: [Vec<Kept>; 2] = [Vec::new(), Vec::new()];
    let mut observed = [i64::MIN, i64::MIN];
    let mut pending: Vec<Pending> = Vec::new();
    let index = |side: Side| match side {
        Side::Left => 0,
        Side::Right => 1,
    };
    let pair = |side: Side, this: Option<&str>, other: Option<&str>| {
        let (this, other) = (this.map(str::to_string), other.map(str::to_string));
        match side {
            Side::Left => (this, other),
            Side::Right => (other, this),
        }
    };
    for (at, e) in events.iter().enumerate() {
        assert!(e.time >= 0, "negative event time at {at}");
        let t = e.time;
        let side = e.side;
        let other = match side {
            Side::Left => Side::Right,
            Side::Right => Side::Left,
        };
        // This side's look back and ahead (the right side's are swapped).
        let (back, ahead) = match side {
            Side::Left => (w.before, w.after),
            Side::Right => (w.after, w.before),
        };
        // 1. Shared stream time.
        stream = stream.max(t);
        // 2. Null keys and null values.
        let (key, value) = match (&e.key, &e.value) {
            (None, Some(v)) if outer(side) => {
                out.outputs.push(Output {
                    at,
                    key: None,
                    value: Some(pair(side, Some(v), None)),
                    time: t,
                });
                continue;
            }
            (Some(k), Some(v)) => (k.clone(), v.clone()),
            _ => {
                out.skipped += 1;
                continue;
            }
        };
        // 3. Emit the pending records whose windows have closed.
        if keeps_pending && t == stream {
            let (closed, open): (Vec<Pending>, Vec<Pending>) = pending.drain(..).partition(|p| {
                let look = match p.side {
                    Side::Left => w.after,
                    Side::Right => w.before,
                };
                p.time + look + w.grace < stream
            });
            pending = open;
            for p in sorted(closed) {
                out.outputs.push(Output {
                    at,
                    key: Some(p.key.clone()),
                    value: Some(pair(p.side, Some(&p.value), None)),
                    time: p.time,
                });
            }
        }
        // 4. Join the other side's kept records in the window.
        let from = (t - back).max(0);
        let to = (t + ahead).max(0);
        let oldest = observed[index(other)].saturating_sub(w.retention());
        let mut matches: Vec<&Kept> = kept[index(other)]
            .iter()
            .filter(|o| o.key == key && from <= o.time && o.time <= to && o.time > oldest)
            .collect();
        matches.sort_by_key(|o| (o.time, o.arrival));
        for o in &matches {
            pending.retain(|p| !(p.side == other && p.key == key && p.time == o.time));
            out.outputs.push(Output {
                at,
                key: Some(key.clone()),
                value: Some(pair(side, Some(&value), Some(&o.value))),
                time: t.max(o.time),
            });
        }
        // 5. Unmatched: now or later.
        if matches.is_empty() && outer(side) {
            if !keeps_pending || t + ahead < stream {
                out.outputs.push(Output {
                    at,
                    key: Some(key.clone()),
                    value: Some(pair(side, Some(&value), None)),
                    time: t,
                });
            } else {
                pending.push(Pending {
                    arrival: at,
                    side,
                    key: key.clone(),
                    value: value.clone(),
                    time: t,
                });
            }
        }
        // 6. Keep it.
        let own = index(side);
        observed[own] = observed[own].max(t);
        if t <= observed[own].saturating_sub(w.retention()) {
            out.expired += 1;
        }
        kept[own].push(Kept {
            arrival: at,
            key,
            value,
            time: t,
        });
    }
    out.pending = sorted(pending);
    out
}

/// Pending records in the outer-join store's order: time, then right
/// before left (the side byte, 0 for right), then key, then arrival.
fn sorted(mut records: Vec<Pending>) -> Vec<Pending> {
    records.sort_by(|a, b| {
        let rank = |s: Side| match s {
            Side::Right => 0,
            Side::Left => 1,
        };
        (a.time, rank(a.side), &a.key, a.arrival).cmp(&(b.time, rank(b.side), &b.key, b.arrival))
    });
    records
}

/// The join computed offline, with nothing late: every (left, right) pair
/// of records with the same key, non-null values and a right time within
/// `[left - before, left + after]`, as (left arrival, right arrival). The
/// streaming join must produce exactly these pairs when no record arrives
/// later than the grace allows.
pub fn all_pairs(events: &[Event], w: Windows) -> Vec<(usize, usize)> {
    let mut pairs = Vec::new();
    for (i, l) in events.iter().enumerate() {
        for (j, r) in events.iter().enumerate() {
            let joinable = l.side == Side::Left
                && r.side == Side::Right
                && l.key.is_some()
                && l.key == r.key
                && l.value.is_some()
                && r.value.is_some()
                && l.time - w.before <= r.time
                && r.time <= l.time + w.after;
            if joinable {
                pairs.push((i, j));
            }
        }
    }
    pairs
}
