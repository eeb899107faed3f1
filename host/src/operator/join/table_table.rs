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
use sluice_frame::Writer;

use super::joiner::{JoinError, JoinPair, Joined, ValueJoiner};
use crate::error::RunError;
use crate::operator::batch::StepOut;
use crate::operator::dead_letter::Kind;
use crate::operator::{Operator, StepCtx};
use crate::plugin::{Plugin, frame};
use crate::record::{Record, RecordRef};
use crate::state::StoreBuffer;
use crate::topology::{JoinKind, NodeId};

/// A table–table join of one task.
pub struct TableTableJoin {
    index: usize,
    kind: JoinKind,
    joiner: ValueJoiner,
    store: usize,
}

/// A result: a joined pair, or a tombstone.
struct Change {
    origin: usize,
    key: Bytes,
    pair: Option<(Option<Record>, Option<Record>)>,
    time: i64,
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
    ) -> Result<Option<Change>, RunError> {
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
        Ok(Some(Change {
            origin,
            key: Bytes::copy_from_slice(key),
            pair,
            time,
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
        let lefts = cx.per_input.first().copied().unwrap_or(0);
        let mut updates: Vec<(usize, bool, RecordRef<'r>)> = (inputs.iter().enumerate())
            .map(|(i, &(origin, r))| (origin, i < lefts, r))
            .collect();
        updates.sort_by_key(|&(origin, _, _)| origin);
        let live = super::super::unapplied(&[self.store], inputs, cx);
        updates.retain(|(origin, _, _)| live.iter().any(|(o, _)| o == origin));
        let store = StepCtx::buffer(&mut cx.stores, self.store);
        let mut changes = Vec::new();
        for &update in &updates {
            changes.extend(self.update(store, update)?);
        }
        let records: Vec<(usize, RecordRef<'r>)> =
            updates.iter().map(|&(o, _, r)| (o, r)).collect();
        self.finish(changes, &records, cx)
    }

    fn digest(&self) -> &str {
        self.joiner.digest()
    }

    fn swap_plugin(&mut self, plugin: Plugin) {
        self.joiner.swap_plugin(plugin);
    }
}

impl TableTableJoin {
    /// Joins the pairs of `changes` and writes the results (tombstones as
    /// they are); a rejected or trapped pair meets its policy with the
    /// update that made it.
    fn finish<'r>(
        &mut self,
        changes: Vec<Change>,
        records: &[(usize, RecordRef<'r>)],
        cx: &mut StepCtx<'_, '_>,
    ) -> Result<StepOut, RunError> {
        let node = NodeId::Step(self.index);
        let name = cx.topology.steps[self.index].name.clone();
        let pairs: Vec<JoinPair<'_>> = (changes.iter())
            .filter_map(|c| c.pair.as_ref())
            .map(|(l, r)| JoinPair {
                left: l.as_ref().map(Record::as_ref),
                right: r.as_ref().map(Record::as_ref),
            })
            .collect();
        let mut joined = self
            .joiner
            .join_each(&pairs)
            .map_err(|e| match e {
                JoinError::Protocol(message) => RunError::Protocol {
                    step: name.clone(),
                    message,
                },
                other => RunError::Thread(format!("step `{name}`: {other}")),
            })?
            .into_iter();
        let of = |origin: usize| -> RecordRef<'r> {
            (records.iter().find(|(o, _)| *o == origin)).map_or(RecordRef::EMPTY, |(_, r)| *r)
        };
        let mut accepted: Vec<(usize, RecordRef<'r>)> = Vec::new();
        let mut written: Vec<(Bytes, i64, Option<super::joiner::JoinedValue>)> = Vec::new();
        let digest = self.joiner.digest().to_owned();
        for c in changes {
            if c.pair.is_none() {
                accepted.push((c.origin, of(c.origin)));
                written.push((c.key, c.time, None));
                continue;
            }
            match joined.next().expect("a result per pair") {
                Ok(Joined::Value(v)) => {
                    accepted.push((c.origin, of(c.origin)));
                    written.push((c.key, c.time, Some(v)));
                }
                Ok(Joined::Rejected { code, message }) => {
                    cx.dead(
                        node,
                        &digest,
                        Kind::Rejected,
                        &code,
                        &message,
                        (c.origin, of(c.origin)),
                    )?;
                }
                Err(trap) => {
                    cx.dead(
                        node,
                        &digest,
                        Kind::Trap,
                        "trap",
                        &trap.0,
                        (c.origin, of(c.origin)),
                    )?;
                }
            }
        }
        let mut w = Writer::output(Vec::new(), accepted.len() as u32);
        for (key, time, v) in &written {
            w.begin_ok();
            match v {
                Some(v) => {
                    let headers = v.headers.iter().map(|(n, v)| (n.as_str(), v.as_deref()));
                    w.record(Some(key), v.value.as_deref(), Some(*time), headers);
                }
                None => w.record(Some(key), None, Some(*time), std::iter::empty()),
            }
        }
        let inputs: Vec<RecordRef<'_>> = accepted.iter().map(|(_, r)| *r).collect();
        let decoded = frame::decode(w.finish(), &inputs).map_err(|message| RunError::Protocol {
            step: name.clone(),
            message,
        })?;
        let mut out = StepOut::default();
        out.absorb(decoded, &accepted);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use sluice_reference::joins::tables::{Cell, KEY, Out, TABLE_TABLE};
    use sluice_reference::joins::{self, Event, Kind, Side};

    use crate::task::testing::Driver;

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

    fn name(kind: Kind) -> &'static str {
        match kind {
            Kind::Inner => "inner",
            Kind::Left => "left",
            Kind::Outer => "outer",
        }
    }

    fn json(v: &str) -> Vec<u8> {
        serde_json::to_vec(v).unwrap()
    }

    /// The sink's records from `from`: (key, pair or tombstone, time).
    fn outputs(d: &Driver, from: usize) -> Vec<(Option<String>, Option<joins::Pair>, i64)> {
        let side = |v: &serde_json::Value| v.as_str().map(str::to_owned);
        (d.outputs("out")[from..].iter())
            .map(|r| {
                let pair = r.value.as_ref().map(|v| {
                    let v: serde_json::Value = serde_json::from_slice(v).unwrap();
                    (side(&v["left"]), side(&v["right"]))
                });
                let key = r
                    .key
                    .as_ref()
                    .map(|k| String::from_utf8(k.to_vec()).unwrap());
                (key, pair, r.timestamp.unwrap())
            })
            .collect()
    }

    #[test]
    fn the_developer_guides_table_table_semantics_hold_row_by_row() {
        for kind in Kind::ALL {
            let mut d = Driver::from_toml(&pipeline(name(kind))).unwrap();
            for row in TABLE_TABLE.rows {
                let (topic, cell) = match (row.left, row.right) {
                    (Cell::Empty, cell) => ("right", cell),
                    (cell, _) => ("left", cell),
                };
                let sent = d.outputs("out").len();
                if cell != Cell::Empty {
                    let value = match cell {
                        Cell::Value(v) => Some(json(v)),
                        _ => None,
                    };
                    d.push(
                        topic,
                        Some(KEY.as_bytes()),
                        value.as_deref(),
                        Some(row.time),
                    );
                    d.process().unwrap();
                }
                let got: Vec<_> = outputs(&d, sent)
                    .into_iter()
                    .map(|(_, pair, _)| pair)
                    .collect();
                let want: Vec<Option<joins::Pair>> = (row.column(kind).iter())
                    .map(|out| match *out {
                        Out::Pair(l, r) => Some((l.map(str::to_owned), r.map(str::to_owned))),
                        Out::Tombstone => None,
                    })
                    .collect();
                assert_eq!(got, want, "{kind:?} join, row {}", row.time);
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
                    let mut d = Driver::from_toml(&pipeline(name(kind))).unwrap();
                    for chunk in events.chunks(per_batch) {
                        for e in chunk {
                            let topic = if e.side == Side::Left {
                                "left"
                            } else {
                                "right"
                            };
                            let value = e.value.as_deref().map(json);
                            d.push(
                                topic,
                                e.key.as_deref().map(str::as_bytes),
                                value.as_deref(),
                                Some(e.time),
                            );
                        }
                        d.process().unwrap();
                    }
                    assert_eq!(
                        outputs(&d, 0),
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
            let mut d = Driver::from_toml(&pipeline(name(kind))).unwrap();
            for e in &events {
                let topic = if e.side == Side::Left {
                    "left"
                } else {
                    "right"
                };
                let value = e.value.as_deref().map(json);
                d.push(
                    topic,
                    e.key.as_deref().map(str::as_bytes),
                    value.as_deref(),
                    Some(e.time),
                );
            }
            d.process().unwrap();
            let mut table = std::collections::BTreeMap::new();
            for (key, pair, _) in outputs(&d, 0) {
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
