//! The stream–table join: each stream record meets the table's value for
//! its key at that moment (the table's records of a call batch are applied
//! before its stream records, see `crate::task`), and the joiner makes one
//! value of the two. Kafka Streams' rules (`KStreamKTableJoinProcessor`):
//!
//! - a stream record without a value is dropped (counted as
//!   `join_skipped`);
//! - an inner join emits only when the table has the key (a record without
//!   a key never matches); a left join emits for every stream record, with
//!   no right side when the table lacks the key (or the record has none,
//!   as Kafka Streams does since KIP-962);
//! - the result has the stream record's key and time, and its headers
//!   (a table keeps only values, so none come from the right).
//!
//! A pair the joiner rejects meets the `rejected` policy, one it traps on
//! the `trap` policy; the stream record is what is dead-lettered.

use bytes::Bytes;
use sluice_frame::Writer;

use super::joiner::{JoinError, JoinPair, Joined, ValueJoiner};
use crate::error::RunError;
use crate::operator::batch::StepOut;
use crate::operator::dead_letter::Kind;
use crate::operator::{Operator, StepCtx};
use crate::plugin::Plugin;
use crate::plugin::frame;
use crate::record::{Record, RecordRef};
use crate::topology::{JoinKind, NodeId};

/// The stream records that take part in a join (with their index in the
/// batch), and the table's row for each.
type Matched<'r> = (Vec<(usize, RecordRef<'r>)>, Vec<Option<Record>>);

/// A stream–table join of one task.
pub struct StreamTableJoin {
    index: usize,
    kind: JoinKind,
    joiner: ValueJoiner,
    /// The table's store, among the task's.
    store: usize,
}

impl StreamTableJoin {
    /// The join of step `index`, of `kind`, looking up the task's store
    /// `store`, its values joined by `joiner`.
    pub fn new(index: usize, kind: JoinKind, joiner: ValueJoiner, store: usize) -> StreamTableJoin {
        StreamTableJoin {
            index,
            kind,
            joiner,
            store,
        }
    }

    /// The stream records that take part, each with the table's value for
    /// its key (if any).
    fn matches<'r>(
        &self,
        inputs: Vec<(usize, RecordRef<'r>)>,
        cx: &mut StepCtx<'_, '_>,
    ) -> Result<Matched<'r>, RunError> {
        let mut left = Vec::with_capacity(inputs.len());
        let mut rows = Vec::with_capacity(inputs.len());
        for (origin, record) in inputs {
            if record.value.is_none() {
                cx.batch.counts.join_skipped += 1;
                continue;
            }
            let row = match record.key {
                None => None,
                Some(key) => StepCtx::buffer(&mut cx.stores, self.store).get(key)?,
            };
            if row.is_none() && self.kind == JoinKind::Inner {
                continue;
            }
            left.push((origin, record));
            rows.push(row.map(|value| Record {
                key: record.key.map(Bytes::copy_from_slice),
                value: Some(value.into()),
                timestamp: None,
                headers: Vec::new(),
            }));
        }
        Ok((left, rows))
    }
}

impl Operator for StreamTableJoin {
    fn process<'r>(
        &mut self,
        inputs: Vec<(usize, RecordRef<'r>)>,
        cx: &mut StepCtx<'_, '_>,
    ) -> Result<StepOut, RunError> {
        let node = NodeId::Step(self.index);
        let name = || cx.topology.steps[self.index].name.clone();
        let (left, rows) = self.matches(inputs, cx)?;
        let pairs: Vec<JoinPair<'_>> = (left.iter().zip(&rows))
            .map(|((_, l), r)| JoinPair {
                left: Some(*l),
                right: r.as_ref().map(Record::as_ref),
            })
            .collect();
        let joined = self.joiner.join_each(&pairs).map_err(|e| match e {
            JoinError::Protocol(message) => RunError::Protocol {
                step: name(),
                message,
            },
            other => RunError::Thread(format!("step `{}`: {other}", name())),
        })?;
        let mut accepted: Vec<(usize, RecordRef<'r>)> = Vec::with_capacity(left.len());
        let mut values = Vec::with_capacity(left.len());
        for (&(origin, record), result) in left.iter().zip(joined) {
            match result {
                Ok(Joined::Value(v)) => {
                    accepted.push((origin, record));
                    values.push(v);
                }
                Ok(Joined::Rejected { code, message }) => {
                    let digest = self.joiner.digest().to_owned();
                    cx.dead(
                        node,
                        &digest,
                        Kind::Rejected,
                        &code,
                        &message,
                        (origin, record),
                    )?;
                }
                Err(trap) => {
                    let digest = self.joiner.digest().to_owned();
                    cx.dead(node, &digest, Kind::Trap, "trap", &trap.0, (origin, record))?;
                }
            }
        }
        let mut w = Writer::output(Vec::new(), accepted.len() as u32);
        for ((_, record), v) in accepted.iter().zip(&values) {
            w.begin_ok();
            let headers = v.headers.iter().map(|(n, v)| (n.as_str(), v.as_deref()));
            w.record(record.key, v.value.as_deref(), None, headers);
        }
        let records: Vec<RecordRef<'_>> = accepted.iter().map(|(_, r)| *r).collect();
        let decoded =
            frame::decode(w.finish(), &records).map_err(|message| RunError::Protocol {
                step: name(),
                message,
            })?;
        let mut out = StepOut::default();
        out.absorb(decoded, &accepted);
        Ok(out)
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
    use sluice_reference::joins::tables::{Cell, KEY, Out, STREAM_TABLE};
    use sluice_reference::joins::{self, Event, Kind, Side};

    use crate::task::testing::Driver;

    fn pipeline(kind: &str) -> String {
        format!(
            r#"
            application.id = "app"
            [errors]
            rejected = "skip"
            [sources.clicks]
            [sources.users]
            table = true
            [steps.joined]
            join = "{kind}"
            joiner = "pair"
            inputs = ["clicks", "users"]
            [sinks.out]
            inputs = ["joined"]
            "#
        )
    }

    /// A value of the models (`A`, `L17`) as the records carry it: a JSON
    /// string, so that `pair` takes it.
    fn json(v: &str) -> Vec<u8> {
        serde_json::to_vec(v).unwrap()
    }

    /// What the sink got: (key, (left, right), time) per record.
    fn outputs(d: &Driver) -> Vec<(Option<String>, joins::Pair, i64)> {
        let side = |v: &serde_json::Value| v.as_str().map(str::to_owned);
        (d.outputs("out").iter())
            .map(|r| {
                let v: serde_json::Value =
                    serde_json::from_slice(r.value.as_ref().unwrap()).unwrap();
                let key = r
                    .key
                    .as_ref()
                    .map(|k| String::from_utf8(k.to_vec()).unwrap());
                (
                    key,
                    (side(&v["left"]), side(&v["right"])),
                    r.timestamp.unwrap(),
                )
            })
            .collect()
    }

    /// Runs `events` through the join, one call batch per event (so that
    /// table and stream records interleave as they arrive).
    fn run(kind: &str, events: &[Event]) -> Driver {
        let mut d = Driver::from_toml(&pipeline(kind)).unwrap();
        for e in events {
            let topic = if e.side == Side::Left {
                "clicks"
            } else {
                "users"
            };
            let value = e.value.as_deref().map(json);
            d.push(
                topic,
                e.key.as_deref().map(str::as_bytes),
                value.as_deref(),
                Some(e.time),
            );
            d.process().unwrap();
        }
        d
    }

    #[test]
    fn the_developer_guides_stream_table_semantics_hold_row_by_row() {
        for (kind, name) in [(Kind::Inner, "inner"), (Kind::Left, "left")] {
            let mut d = Driver::from_toml(&pipeline(name)).unwrap();
            for row in STREAM_TABLE.rows {
                let (topic, cell) = match (row.left, row.right) {
                    (Cell::Empty, cell) => ("users", cell),
                    (cell, _) => ("clicks", cell),
                };
                let value = match cell {
                    Cell::Value(v) => Some(json(v)),
                    _ => None,
                };
                let sent = d.outputs("out").len();
                d.push(
                    topic,
                    Some(KEY.as_bytes()),
                    value.as_deref(),
                    Some(row.time),
                );
                d.process().unwrap();
                let got: Vec<_> = outputs(&d)[sent..]
                    .iter()
                    .map(|(_, pair, _)| pair.clone())
                    .collect();
                let want: Vec<joins::Pair> = (row.column(kind).iter())
                    .map(|out| match *out {
                        Out::Pair(l, r) => (l.map(str::to_owned), r.map(str::to_owned)),
                        Out::Tombstone => panic!("a stream-table join emits no tombstone"),
                    })
                    .collect();
                assert_eq!(got, want, "{name} join, row {}", row.time);
            }
        }
    }

    #[test]
    fn fifty_random_inputs_join_as_the_reference_model_does() {
        for seed in 0..50 {
            let events = joins::events(seed, 200, 40);
            for (kind, name) in [(Kind::Inner, "inner"), (Kind::Left, "left")] {
                let want: Vec<_> = (joins::stream_table::join(&events, kind).outputs.into_iter())
                    .map(|o| (o.key, o.value.expect("no tombstones"), o.time))
                    .collect();
                let d = run(name, &events);
                assert_eq!(outputs(&d), want, "seed {seed}, {name} join");
                let skipped = events
                    .iter()
                    .filter(|e| e.side == Side::Left && e.value.is_none())
                    .count();
                assert_eq!(d.counts().join_skipped, skipped as u64, "seed {seed}");
            }
        }
    }

    #[test]
    fn headers_of_the_stream_record_are_kept_and_bad_values_follow_the_policy() {
        let mut d = Driver::from_toml(
            &pipeline("left").replace("rejected = \"skip\"", "rejected = \"dlq\""),
        )
        .unwrap();
        d.push("users", Some(b"u1"), Some(br#"{"name":"Ada"}"#), Some(1));
        d.process().unwrap();
        let mut click = crate::record::Record::new(Some(b"u1"), Some(b"not json"), Some(2));
        click.headers.push(("trace".into(), Some("t-1".into())));
        d.push_record("clicks", click.clone());
        click.value = Some(r#"{"page":"/"}"#.into());
        d.push_record("clicks", click);
        d.process().unwrap();
        let out = d.outputs("out");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].header("trace"), Some(&b"t-1"[..]));
        let v: serde_json::Value = serde_json::from_slice(out[0].value.as_ref().unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"left": {"page": "/"}, "right": {"name": "Ada"}})
        );
        let letters = d.dead_letters();
        assert_eq!(letters.len(), 1, "the pair `pair` refused");
        assert_eq!(letters[0].value.as_deref(), Some(&b"not json"[..]));
        assert_eq!(
            letters[0].header("sluice.error.code"),
            Some(&b"not-json"[..])
        );
    }
}
