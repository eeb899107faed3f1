//! KTable–KTable equi-joins: inner, left and outer.
//!
//! Follows, in `streams/src/main/java/org/apache/kafka/streams/kstream/internals/`
//! of apache/kafka `1eb7644` (4.0.0-SNAPSHOT):
//!
//! - `KTableImpl.java` (`doJoin`): which processor each side gets (inner:
//!   `KTableKTableInnerJoin` both sides; left: `KTableKTableLeftJoin` for
//!   the left, `KTableKTableRightJoin` for the right; outer:
//!   `KTableKTableOuterJoin` both sides) and which inputs send old values
//!   (the left in left and outer joins, the right in outer joins);
//! - those four files' `process`, and `KTableSource.java`: each input is
//!   materialized, the store is updated before the join runs, a null value
//!   deletes the key, a null key is dropped.
//!
//! The rules, per update of one input (key `k`, new value `n`, previous
//! value `o` of that input, `x` the other input's current value for `k`):
//!
//! | join | side | emits nothing when | emits (oriented left, right) |
//! |---|---|---|---|
//! | inner | either | `x` is absent | `(n, x)`, or a tombstone if `n` is null |
//! | left | left | `x`, `n` and `o` are all absent | `(n, x)`, or a tombstone if `n` is null |
//! | left | right | the left value `x` is absent | `(x, n)`, never a tombstone |
//! | outer | either | `x`, `n` and `o` are all absent | `(n, x)`, or a tombstone if both are null |
//!
//! The output time is the later of the update's and `x`'s (the update's
//! when `x` is absent). Out-of-order updates are applied like any other
//! (non-versioned tables).
//!
//! Where the code differs from the guide's prose: the guide says a
//! tombstone is forwarded "only if the corresponding key actually exists
//! already in the join result KTable", but nothing checks the result. In
//! an inner join the inputs do not send old values, so a left tombstone
//! for a key the left never had, while the right has it, emits a
//! tombstone; likewise a left-join left tombstone for a new key whose
//! right exists. The model does what the code does.
//!
//! Out of the model: caching (the tests of the guide's table run with
//! caching off; with it, consecutive updates of a key are compacted),
//! versioned tables (KIP-914: out-of-order updates are then dropped), and
//! the old values a downstream table operation would ask for.

use std::collections::BTreeMap;

use super::{Event, Kind, Output, Side};

/// What a table–table join gives for its input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Everything emitted, in emission order: the join result's changelog.
    pub outputs: Vec<Output>,
    /// Updates skipped for a null key.
    pub skipped: u64,
}

/// Replays `events` through a table–table join of type `kind`.
pub fn join(events: &[Event], kind: Kind) -> Outcome {
    // key -> (value, time), one per input.
    let mut tables: [BTreeMap<String, (String, i64)>; 2] = [BTreeMap::new(), BTreeMap::new()];
    let mut out = Outcome::default();
    for (at, e) in events.iter().enumerate() {
        let Some(key) = &e.key else {
            out.skipped += 1;
            continue;
        };
        let (this, that) = match e.side {
            Side::Left => (0, 1),
            Side::Right => (1, 0),
        };
        let old = tables[this].get(key).map(|(v, _)| v.clone());
        match &e.value {
            Some(v) => tables[this].insert(key.clone(), (v.clone(), e.time)),
            None => tables[this].remove(key),
        };
        let new = e.value.clone();
        let other = tables[that].get(key).cloned();
        let time = match &other {
            Some((_, t)) => e.time.max(*t),
            None => e.time,
        };
        let other = other.map(|(v, _)| v);
        // (this, other) -> (left, right)
        let orient = |mine: Option<String>, theirs: Option<String>| match e.side {
            Side::Left => (mine, theirs),
            Side::Right => (theirs, mine),
        };
        let value = match (kind, e.side) {
            (Kind::Inner, _) => {
                if other.is_none() {
                    continue;
                }
                new.map(|n| orient(Some(n), other))
            }
            (Kind::Left, Side::Left) => {
                if other.is_none() && new.is_none() && old.is_none() {
                    continue;
                }
                new.map(|n| orient(Some(n), other))
            }
            (Kind::Left, Side::Right) => {
                if other.is_none() {
                    continue;
                }
                Some(orient(new, other))
            }
            (Kind::Outer, _) => {
                if other.is_none() && new.is_none() && old.is_none() {
                    continue;
                }
                if new.is_none() && other.is_none() {
                    None
                } else {
                    Some(orient(new, other))
                }
            }
        };
        out.outputs.push(Output {
            at,
            key: Some(key.clone()),
            value,
            time,
        });
    }
    out
}

/// The join result as a table, computed from scratch from both inputs'
/// final contents: key -> pair, the rows an inner, left or outer join of
/// the two tables has. Replaying [`join`]'s changelog (a tombstone
/// deletes) must give the same table.
pub fn final_result(
    events: &[Event],
    kind: Kind,
) -> BTreeMap<String, (Option<String>, Option<String>)> {
    let mut tables: [BTreeMap<String, String>; 2] = [BTreeMap::new(), BTreeMap::new()];
    for e in events {
        let Some(key) = &e.key else { continue };
        let t = &mut tables[if e.side == Side::Left { 0 } else { 1 }];
        match &e.value {
            Some(v) => t.insert(key.clone(), v.clone()),
            None => t.remove(key),
        };
    }
    let keys: std::collections::BTreeSet<&String> =
        tables[0].keys().chain(tables[1].keys()).collect();
    let mut rows = BTreeMap::new();
    for key in keys {
        let (l, r) = (tables[0].get(key).cloned(), tables[1].get(key).cloned());
        let present = match kind {
            Kind::Inner => l.is_some() && r.is_some(),
            Kind::Left => l.is_some(),
            Kind::Outer => true,
        };
        if present {
            rows.insert(key.clone(), (l, r));
        }
    }
    rows
}
