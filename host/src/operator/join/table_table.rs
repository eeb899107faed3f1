//! The table–table join: each update of either table meets the other
//! table's current value for its key, and what comes out is the changelog
//! of the join result, a table itself (a tombstone deletes a result). The
//! rules are Kafka Streams' (`KTableKTable{Inner,Left,Right,Outer}Join`;
//! the reference model in `tests/reference/src/joins/table_table.rs`),
//! per update of one side (key `k`, new value `n`, that side's previous
//! value `o`, the other side's current value `x`):
//!
//! | join | side | nothing when | emits (left, right) |
//! |---|---|---|---|
//! | inner | either | `x` is absent | `(n, x)`, or a tombstone if `n` is null |
//! | left | left | `x`, `n` and `o` are all absent | `(n, x)`, or a tombstone if `n` is null |
//! | left | right | the left value `x` is absent | `(x, n)` |
//! | outer | either | `x`, `n` and `o` are all absent | `(n, x)`, or a tombstone if both are null |
//!
//! The result's time is the later of the update's and `x`'s. The join
//! keeps both sides' values with their times in its store (`side ‖ key` →
//! `time ‖ value`), so it knows `o` and `x`'s time; the tables' own
//! stores are theirs.

use bytes::Bytes;

use super::joiner::ValueJoiner;
use super::results;
use crate::error::RunError;
use crate::operator::batch::StepOut;
use crate::operator::{Operator, StepCtx};
use crate::plugin::Plugin;
use crate::record::{Record, RecordRef};
use crate::state::StoreBuffer;
use crate::topology::JoinKind;

/// A table–table join of one task.
pub struct TableTableJoin {
    index: usize,
    kind: JoinKind,
    joiner: ValueJoiner,
    store: usize,
}

impl TableTableJoin {
    /// The join of step `index`, of `kind`, its values joined by `joiner`,
    /// the sides kept in the task's store `store`.
    pub fn new(index: usize, kind: JoinKind, joiner: ValueJoiner, store: usize) -> TableTableJoin {
        TableTableJoin {
            index,
            kind,
            joiner,
            store,
        }
    }

    /// One update of `left` (else the right) table: keeps it, and says
    /// what the result becomes, if anything.
    fn update(
        &self,
        store: &mut StoreBuffer,
        (origin, left, record): (usize, bool, RecordRef<'_>),
    ) -> Result<Option<results::Result>, RunError> {
        let Some(key) = record.key else {
            return Ok(None);
        };
        let t = record.timestamp.unwrap_or(0);
        let (mine, theirs) = (side_key(left, key), side_key(!left, key));
        let old = store.get(&mine)?;
        match record.value {
            Some(v) => store.put(&mine, &[&t.to_be_bytes()[..], v].concat()),
            None => store.delete(&mine),
        }
        let other = store.get(&theirs)?.map(|kept| {
            let time = i64::from_be_bytes(kept[..8].try_into().expect("a time"));
            (time, Bytes::copy_from_slice(&kept[8..]))
        });
        let time = other.as_ref().map_or(t, |(o, _)| t.max(*o));
        let new = record.value.map(|_| record.to_owned_record());
        let other = other.map(|(_, v)| Record {
            key: Some(Bytes::copy_from_slice(key)),
            value: Some(v),
            timestamp: None,
            headers: Vec::new(),
        });
        let orient = |mine: Option<Record>, theirs: Option<Record>| match left {
            true => (mine, theirs),
            false => (theirs, mine),
        };
        let quiet = other.is_none() && new.is_none() && old.is_none();
        let pair = match (self.kind, left) {
            (JoinKind::Inner, _) if other.is_none() => return Ok(None),
            (JoinKind::Inner, _) => new.map(|n| orient(Some(n), other)),
            (JoinKind::Left, true) if quiet => return Ok(None),
            (JoinKind::Left, true) => new.map(|n| orient(Some(n), other)),
            (JoinKind::Left, false) if other.is_none() => return Ok(None),
            (JoinKind::Left, false) => Some(orient(new, other)),
            (JoinKind::Outer, _) if quiet => return Ok(None),
            (JoinKind::Outer, _) if new.is_none() && other.is_none() => None,
            (JoinKind::Outer, _) => Some(orient(new, other)),
        };
        Ok(Some(results::Result {
            origin,
            key: Some(Bytes::copy_from_slice(key)),
            pair,
            time: Some(time),
        }))
    }
}

/// Where a side keeps `key`'s value.
fn side_key(left: bool, key: &[u8]) -> Vec<u8> {
    [&[u8::from(!left)][..], key].concat()
}

impl Operator for TableTableJoin {
    fn process<'r>(
        &mut self,
        inputs: Vec<(usize, RecordRef<'r>)>,
        cx: &mut StepCtx<'_, '_>,
    ) -> Result<StepOut, RunError> {
        let updates = super::in_arrival_order(inputs, self.store, cx);
        let store = StepCtx::buffer(&mut cx.stores, self.store);
        let mut changes = Vec::new();
        for &update in &updates {
            changes.extend(self.update(store, update)?);
        }
        let records: Vec<(usize, RecordRef<'r>)> =
            updates.iter().map(|&(o, _, r)| (o, r)).collect();
        results::write(&mut self.joiner, self.index, changes, &records, cx)
    }

    fn digest(&self) -> &str {
        self.joiner.digest()
    }

    fn swap_plugin(&mut self, plugin: Plugin) {
        self.joiner.swap_plugin(plugin);
    }
}

#[cfg(test)]
mod tests {
    use sluice_reference::joins::tables::TABLE_TABLE;
    use sluice_reference::joins::{self, Event, Kind};

    use crate::operator::join::testing::{column, name, push, row, seen};
    use crate::task::testing::Driver;

    const TOPICS: (&str, &str) = ("left", "right");

    fn pipeline(kind: &str) -> String {
        format!(
            r#"
            application.id = "app"
            [errors]
            rejected = "skip"
            [sources.left]
            table = true
            [sources.right]
            table = true
            [steps.joined]
            join = "{kind}"
            joiner = "pair"
            inputs = ["left", "right"]
            [sinks.out]
            inputs = ["joined"]
            "#
        )
    }

    /// `events` through the join, `per_batch` at a time.
    fn run(kind: Kind, events: &[Event], per_batch: usize) -> Driver {
        let mut d = Driver::from_toml(&pipeline(name(kind))).unwrap();
        for chunk in events.chunks(per_batch) {
            chunk.iter().for_each(|e| push(&mut d, TOPICS, e));
            d.process().unwrap();
        }
        d
    }

    #[test]
    fn the_developer_guides_table_table_semantics_hold_row_by_row() {
        for kind in Kind::ALL {
            let mut d = Driver::from_toml(&pipeline(name(kind))).unwrap();
            for r in TABLE_TABLE.rows {
                assert_eq!(
                    row(&mut d, TOPICS, r),
                    column(r.column(kind)),
                    "{kind:?} join, row {}",
                    r.time
                );
            }
        }
    }

    #[test]
    fn fifty_random_inputs_join_as_the_reference_model_does() {
        for seed in 0..50 {
            let events = joins::events(seed, 150, 40);
            for kind in Kind::ALL {
                let want: Vec<_> = (joins::table_table::join(&events, kind).outputs.into_iter())
                    .map(|o| (o.key, o.value, o.time))
                    .collect();
                for per_batch in [1, 9] {
                    let d = run(kind, &events, per_batch);
                    assert_eq!(
                        seen(&d, "out", 0),
                        want,
                        "seed {seed}, {kind:?}, {per_batch} per batch"
                    );
                }
            }
        }
    }

    #[test]
    fn the_result_replayed_is_the_join_of_the_final_tables() {
        let events: Vec<Event> = joins::events(7, 300, 0);
        for kind in Kind::ALL {
            let d = run(kind, &events, events.len());
            let mut table = std::collections::BTreeMap::new();
            for (key, pair, _) in seen(&d, "out", 0) {
                match pair {
                    Some(p) => table.insert(key.unwrap(), p),
                    None => table.remove(&key.unwrap()),
                };
            }
            assert_eq!(
                table,
                joins::table_table::final_result(&events, kind),
                "{kind:?}"
            );
        }
    }
}
