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

use super::joiner::ValueJoiner;
use super::results;
use crate::error::RunError;
use crate::operator::batch::StepOut;
use crate::operator::{Operator, StepCtx};
use crate::plugin::Plugin;
use crate::record::{Record, RecordRef};
use crate::topology::JoinKind;

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
        let (left, rows) = self.matches(inputs, cx)?;
        let results = (left.iter().zip(rows))
            .map(|(&(origin, record), row)| results::Result {
                origin,
                key: record.key.map(Bytes::copy_from_slice),
                pair: Some((Some(record.to_owned_record()), row)),
                time: None,
            })
            .collect();
        results::write(&mut self.joiner, self.index, results, &left, cx)
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
    use sluice_reference::joins::tables::STREAM_TABLE;
    use sluice_reference::joins::{self, Event, Kind, Side};

    use crate::operator::join::testing::{column, name, push, row, seen};
    use crate::task::testing::Driver;

    const TOPICS: (&str, &str) = ("clicks", "users");

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

    #[test]
    fn the_developer_guides_stream_table_semantics_hold_row_by_row() {
        for kind in [Kind::Inner, Kind::Left] {
            let mut d = Driver::from_toml(&pipeline(name(kind))).unwrap();
            for r in STREAM_TABLE.rows {
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
            let events = joins::events(seed, 200, 40);
            for kind in [Kind::Inner, Kind::Left] {
                let want: Vec<_> = (joins::stream_table::join(&events, kind).outputs.into_iter())
                    .map(|o| (o.key, o.value, o.time))
                    .collect();
                // One record per batch: table and stream records interleave
                // as they arrive.
                let mut d = Driver::from_toml(&pipeline(name(kind))).unwrap();
                for e in &events {
                    push(&mut d, TOPICS, e);
                    d.process().unwrap();
                }
                assert_eq!(seen(&d, "out", 0), want, "seed {seed}, {kind:?} join");
                let skipped = (events.iter())
                    .filter(|e: &&Event| e.side == Side::Left && e.value.is_none())
                    .count();
                assert_eq!(d.counts().join_skipped, skipped as u64, "seed {seed}");
            }
        }
    }

    #[test]
    fn headers_of_the_stream_record_are_kept_and_bad_values_follow_the_policy() {
        let text = pipeline("left").replace("rejected = \"skip\"", "rejected = \"dlq\"");
        let mut d = Driver::from_toml(&text).unwrap();
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

    #[test]
    fn a_swapped_joiner_plugin_joins_the_next_batch_and_the_table_stays() {
        let path = crate::operator::join::testing::component("join-greeting");
        let text = pipeline("left").replace(
            "joiner = \"pair\"",
            &format!("joiner = {:?}", path.display().to_string()),
        );
        let setup = Driver::setup(&text).unwrap();
        let mut plugins = crate::plugins::Plugins::none(setup.topology());
        plugins.steps[0] = Some(crate::operator::join::testing::load("join-greeting"));
        let mut d = setup.plugins(plugins).start().unwrap();
        d.push("users", Some(b"u1"), Some(br#"{"name":"Ada"}"#), Some(1));
        d.push("clicks", Some(b"u1"), Some(br#"{"item":"pen"}"#), Some(2));
        d.process().unwrap();
        let greeting: serde_json::Value =
            serde_json::from_slice(d.outputs("out")[0].value.as_ref().unwrap()).unwrap();
        assert_eq!(greeting["greeting"], "Hello Ada, your pen is on its way");
        d.task().swap_plugin(
            0,
            crate::operator::join::testing::load("join-trap-on-marker"),
        );
        d.push("clicks", Some(b"u1"), Some(b"ink"), Some(3));
        d.process().unwrap();
        assert_eq!(
            d.outputs("out")[1].value.as_deref(),
            Some(&br#"ink|{"name":"Ada"}"#[..]),
            "the new joiner, and the table as it was"
        );
    }
}
