//! KStream–KTable and KStream–GlobalKTable joins: inner and left (Kafka
//! Streams has no outer stream–table join).
//!
//! Follows, in `streams/src/main/java/org/apache/kafka/streams/kstream/internals/`
//! of apache/kafka `1eb7644` (4.0.0-SNAPSHOT):
//!
//! - `KStreamKTableJoinProcessor.java`: `maybeDropRecord` and `doJoin`,
//!   shared by the KTable and GlobalKTable joins (a GlobalKTable join maps
//!   the stream record to the table's key with a `KeyValueMapper`; a KTable
//!   join's mapper returns the record's key);
//! - `KTableSource.java`: the table side, materialized, drops null keys,
//!   and a null value deletes the key;
//! - KIP-962 (Kafka 3.7): a left join does not drop a stream record with a
//!   null key and a value.
//!
//! The rules, per arriving record:
//!
//! - A table record (right) with a key updates the table: a value puts,
//!   a null value deletes. It emits nothing. A null key is skipped.
//! - A stream record (left) with a null value is skipped; so is one whose
//!   mapped key is null, except, in a left join, one with a null key.
//! - Otherwise the record is joined with the table's current value for its
//!   mapped key: an inner join emits only when there is one, a left join
//!   always (with `None` on the right when there is none). The output has
//!   the stream record's key and time.
//!
//! For a GlobalKTable the arrival order stands for the order in which
//! table updates become visible to the stream's task: Kafka does not
//! synchronize the two by time.
//!
//! [`versioned`] is the join with a versioned table (KIP-914, Kafka 3.5)
//! and, optionally, the stream-side grace buffer (KIP-923, Kafka 3.6),
//! following `RocksDBVersionedStore.java` (`put`, `delete`, `get(key,
//! asOf)`) and `RocksDBTimeOrderedKeyValueBuffer.java` (`put`,
//! `evictWhile`) of the same commit.

use std::collections::BTreeMap;

use super::{Event, Kind, Output, Side};

/// What a stream–table join gives for its input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Everything emitted, in emission order.
    pub outputs: Vec<Output>,
    /// Stream records skipped (null value, or null mapped key) and table
    /// records skipped (null key).
    pub skipped: u64,
}

/// Replays `events` through a KStream–KTable join of type `kind` (inner
/// or left).
pub fn join(events: &[Event], kind: Kind) -> Outcome {
    global(events, kind, |key, _| key.map(str::to_string))
}

/// Replays `events` through a KStream–GlobalKTable join of type `kind`
/// (inner or left): `map(key, value)` gives a stream record's key in the
/// table (`None` for none).
pub fn global(
    events: &[Event],
    kind: Kind,
    map: impl Fn(Option<&str>, &str) -> Option<String>,
) -> Outcome {
    assert!(
        kind != Kind::Outer,
        "Kafka Streams has no outer stream-table join"
    );
    let mut table: BTreeMap<String, String> = BTreeMap::new();
    let mut out = Outcome::default();
    for (at, e) in events.iter().enumerate() {
        match e.side {
            Side::Right => match (&e.key, &e.value) {
                (None, _) => out.skipped += 1,
                (Some(k), Some(v)) => {
                    table.insert(k.clone(), v.clone());
                }
                (Some(k), None) => {
                    table.remove(k);
                }
            },
            Side::Left => {
                let Some(value) = &e.value else {
                    out.skipped += 1;
                    continue;
                };
                let mapped = map(e.key.as_deref(), value);
                let left_null_key = kind == Kind::Left && e.key.is_none();
                if mapped.is_none() && !left_null_key {
                    out.skipped += 1;
                    continue;
                }
                let right = mapped.and_then(|k| table.get(&k).cloned());
                if kind == Kind::Left || right.is_some() {
                    out.outputs.push(Output {
                        at,
                        key: e.key.clone(),
                        value: Some((Some(value.clone()), right)),
                        time: e.time,
                    });
                }
            }
        }
    }
    out
}

/// The same join the slow way: each stream record looks back through the
/// input for the last table record with its key. A second formulation to
/// check [`join`] against (KTable join, no mapping).
pub fn by_scanning_back(events: &[Event], kind: Kind) -> Vec<Output> {
    let mut outputs = Vec::new();
    for (at, e) in events.iter().enumerate() {
        if e.side != Side::Left || e.value.is_none() {
            continue;
        }
        if e.key.is_none() && kind != Kind::Left {
            continue;
        }
        let right = events[..at]
            .iter()
            .rev()
            .find(|t| t.side == Side::Right && t.key.is_some() && t.key == e.key)
            .and_then(|t| t.value.clone());
        if kind == Kind::Left || right.is_some() {
            outputs.push(Output {
                at,
                key: e.key.clone(),
                value: Some((e.value.clone(), right)),
                time: e.time,
            });
        }
    }
    outputs
}

/// What a join with a versioned table gives for its input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionedOutcome {
    /// Everything emitted, in emission order.
    pub outputs: Vec<Output>,
    /// Stream records skipped (null value, or a null key in an inner
    /// join) and table records skipped (null key).
    pub skipped: u64,
    /// Table records older than the table's latest time minus the
    /// history: neither kept nor forwarded.
    pub expired: u64,
}

/// Replays `events` through a KStream–KTable join of type `kind` (inner
/// or left) whose table keeps `history` ms of versions, with the stream
/// side buffered for `grace` ms when given. The rules:
///
/// - The table's time is the largest time of a table record it kept. A
///   table record older than that time minus `history` is expired: not
///   kept. Any other one adds a version of its key at its time (a
///   tombstone, a deleting version), replacing a version of the same time.
/// - A stream record joins the table **as of its own time**: the version
///   of its key with the largest time not after it (none, or a deleting
///   one: no match). Asked for a time older than the table's time minus
///   `history`, the table answers only with the key's latest version, and
///   only if that is not after the asked time.
/// - With `grace`, the join's stream time is the largest stream-record
///   time seen (skipped records too). A stream record is skipped as
///   without grace; else, if it has a key and is not older than stream
///   time minus `grace`, it waits; otherwise it joins at once. After each
///   stream record that waits, every waiting record whose time is at most
///   stream time minus `grace` joins, in the order (time, key, arrival): a
///   record skipped or joined at once moves stream time but lets none go,
///   as in `KStreamKTableJoinProcessor.process`. (Kafka Streams cannot
///   buffer a record without a key; here a left join joins it at once.)
pub fn versioned(
    events: &[Event],
    kind: Kind,
    history: i64,
    grace: Option<i64>,
) -> VersionedOutcome {
    assert!(
        kind != Kind::Outer,
        "Kafka Streams has no outer stream-table join"
    );
    let mut versions: BTreeMap<String, BTreeMap<i64, Option<String>>> = BTreeMap::new();
    let mut table_time = i64::MIN;
    let mut stream_time = i64::MIN;
    let mut waiting: Vec<(i64, String, usize, String)> = Vec::new();
    let mut out = VersionedOutcome::default();
    let as_of = |versions: &BTreeMap<String, BTreeMap<i64, Option<String>>>,
                 table_time: i64,
                 key: &str,
                 time: i64|
     -> Option<String> {
        let of_key = versions.get(key)?;
        if time < table_time.saturating_sub(history) {
            let (&latest, value) = of_key.iter().next_back()?;
            return if latest <= time { value.clone() } else { None };
        }
        of_key
            .range(..=time)
            .next_back()
            .and_then(|(_, v)| v.clone())
    };
    for (at, e) in events.iter().enumerate() {
        match e.side {
            Side::Right => {
                let Some(k) = &e.key else {
                    out.skipped += 1;
                    continue;
                };
                if e.time < table_time.saturating_sub(history) {
                    out.expired += 1;
                    continue;
                }
                table_time = table_time.max(e.time);
                versions
                    .entry(k.clone())
                    .or_default()
                    .insert(e.time, e.value.clone());
            }
            Side::Left => {
                stream_time = stream_time.max(e.time);
                let Some(value) = &e.value else {
                    out.skipped += 1;
                    continue;
                };
                if e.key.is_none() && kind == Kind::Inner {
                    out.skipped += 1;
                    continue;
                }
                let mut now = Vec::new();
                match (grace, &e.key) {
                    (Some(g), Some(k)) if e.time >= stream_time.saturating_sub(g) => {
                        waiting.push((e.time, k.clone(), at, value.clone()));
                    }
                    _ => now.push((e.time, e.key.clone(), value.clone())),
                }
                if let (Some(g), true) = (grace, now.is_empty()) {
                    waiting.sort();
                    let due = waiting
                        .iter()
                        .take_while(|w| w.0 <= stream_time.saturating_sub(g))
                        .count();
                    for (time, key, _, value) in waiting.drain(..due) {
                        now.push((time, Some(key), value));
                    }
                }
                for (time, key, value) in now {
                    let right = key
                        .as_deref()
                        .and_then(|k| as_of(&versions, table_time, k, time));
                    if kind == Kind::Left || right.is_some() {
                        out.outputs.push(Output {
                            at,
                            key,
                            value: Some((Some(value), right)),
                            time,
                        });
                    }
                }
            }
        }
    }
    out
}

/// The versioned join without grace the slow way: each stream record
/// looks through the table records that came before it for the last one
/// of its key with a time not after its own, among those the table kept.
/// Checks [`versioned`] with a second formulation; only for inputs whose
/// stream records are never older than the table's time minus `history`.
pub fn versioned_by_scanning(events: &[Event], kind: Kind, history: i64) -> Vec<Output> {
    let kept: Vec<bool> = (0..events.len())
        .map(|i| {
            let e = &events[i];
            let newest = (events[..i].iter())
                .filter(|t| t.side == Side::Right && t.key.is_some())
                .map(|t| t.time)
                .max();
            e.side == Side::Right
                && e.key.is_some()
                && newest.is_none_or(|n| e.time >= n.saturating_sub(history))
        })
        .collect();
    let mut outputs = Vec::new();
    for (at, e) in events.iter().enumerate() {
        if e.side != Side::Left || e.value.is_none() || (e.key.is_none() && kind != Kind::Left) {
            continue;
        }
        let right = (0..at)
            .filter(|&i| kept[i] && events[i].key == e.key && events[i].time <= e.time)
            .max_by_key(|&i| (events[i].time, i))
            .and_then(|i| events[i].value.clone());
        if kind == Kind::Left || right.is_some() {
            outputs.push(Output {
                at,
                key: e.key.clone(),
                value: Some((e.value.clone(), right)),
                time: e.time,
            });
        }
    }
    outputs
}
