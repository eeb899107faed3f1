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
//! Out of the model: versioned tables (a stream record then joins the
//! table value as of its own time, KIP-914) and the stream-side grace
//! buffer, which Kafka allows only with a versioned table (KIP-923). For
//! a GlobalKTable the arrival order stands for the order in which table
//! updates become visible to the stream's task: Kafka does not
//! synchronize the two by time.

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
