//! The stream–global-table join: each stream record meets the global
//! table's current row for a key taken from the record, its own key or a
//! field of its JSON value (`key-field`). The table is the instance's,
//! whole, so the stream needs no co-partitioning with it. Kafka Streams'
//! rules (`KStreamGlobalKTableJoin`, through `KStreamKTableJoinProcessor`):
//!
//! - a stream record without a value is dropped (counted as
//!   `join_skipped`);
//! - a record whose table key is null (a null record key, or a `key-field`
//!   that is JSON `null`) never matches, and is dropped (counted as
//!   `join_skipped`), except by a left join when the record's own key is
//!   null (KIP-962): then it is emitted with no right side;
//! - an inner join emits only when the table has the key, a left join for
//!   every stream record;
//! - the result has the stream record's key, time and headers.
//!
//! Beyond Kafka Streams, a `key-field` the value lacks (or a value that is
//! not JSON, or a field that is an object or an array) is not silently a
//! null key: the record is rejected (code `no-join-key`) and meets the
//! `rejected` policy. A pair the joiner rejects meets the `rejected`
//! policy too, one it traps on the `trap` policy.

use std::sync::Arc;

use super::joiner::ValueJoiner;
use super::key_plugin::KeyPlugin;
use super::results;
use super::table_key::{TableKey, table_key};
use crate::error::RunError;
use crate::operator::batch::StepOut;
use crate::operator::call::PluginStep;
use crate::operator::dead_letter::Kind;
use crate::operator::{Operator, StepCtx};
use crate::plugin::Plugin;
use crate::record::{Record, RecordRef};
use crate::state::global_table::GlobalTables;
use crate::topology::{GlobalKey, JoinKind, NodeId};
use bytes::Bytes;

/// A stream–global-table join of one task.
pub struct StreamGlobalJoin {
    index: usize,
    kind: JoinKind,
    joiner: ValueJoiner,
    /// Set when the key comes from a plugin (`key-plugin`).
    key_plugin: Option<KeyPlugin>,
    tables: Arc<GlobalTables>,
    /// The table's store name, among the instance's global tables.
    store: String,
    key: GlobalKey,
}

impl StreamGlobalJoin {
    /// The join of step `index`, of `kind`, looking up the global table in
    /// `store` among `tables` by `key` (calling `key_plugin` for a
    /// [`GlobalKey::Plugin`]), its values joined by `joiner`.
    pub fn new(
        index: usize,
        kind: JoinKind,
        (joiner, key_plugin): (ValueJoiner, Option<PluginStep>),
        (tables, store, key): (Arc<GlobalTables>, &str, GlobalKey),
    ) -> StreamGlobalJoin {
        StreamGlobalJoin {
            index,
            kind,
            joiner,
            key_plugin: key_plugin.map(|p| KeyPlugin::new(index, p)),
            tables,
            store: store.to_owned(),
            key,
        }
    }
}

impl Operator for StreamGlobalJoin {
    fn process<'r>(
        &mut self,
        inputs: Vec<(usize, RecordRef<'r>)>,
        cx: &mut StepCtx<'_, '_>,
    ) -> Result<StepOut, RunError> {
        let table = (self.tables.get(&self.store)).ok_or_else(|| {
            RunError::Thread(format!(
                "the global table `{}` of step `{}` was not restored",
                self.store, cx.topology.steps[self.index].name
            ))
        })?;
        let mut left = Vec::with_capacity(inputs.len());
        let mut rows = Vec::with_capacity(inputs.len());
        let mut refused = Vec::new();
        let with_value: Vec<(usize, RecordRef<'r>)> = (inputs.iter())
            .filter(|(_, r)| r.value.is_some())
            .copied()
            .collect();
        cx.batch.counts.join_skipped += (inputs.len() - with_value.len()) as u64;
        let mut from_plugin = match &mut self.key_plugin {
            Some(p) => Some(p.keys(&with_value, cx)?.into_iter()),
            None => None,
        };
        for (origin, record) in with_value {
            let key = match &mut from_plugin {
                None => table_key(&self.key, &record),
                Some(keys) => match keys.next().expect("a key per record") {
                    Some(key) => key,
                    // Rejected or trapped: its policy was applied.
                    None => continue,
                },
            };
            let row = match key {
                TableKey::Key(k) => table.get(&k)?,
                // Kafka Streams (KIP-962): only a left join's record with a
                // null key of its own is joined without a table key.
                TableKey::Null if self.kind == JoinKind::Left && record.key.is_none() => None,
                TableKey::Null => {
                    cx.batch.counts.join_skipped += 1;
                    continue;
                }
                TableKey::Missing(message) => {
                    refused.push((message, (origin, record)));
                    continue;
                }
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
        let node = NodeId::Step(self.index);
        for (message, at) in refused {
            cx.dead(
                node,
                "built-in",
                Kind::Rejected,
                "no-join-key",
                &message,
                at,
            )?;
        }
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

    use crate::operator::join::testing::{column, json, name, push, row, seen};
    use crate::task::testing::Driver;

    const TOPICS: (&str, &str) = ("clicks", "users");

    fn pipeline(kind: &str, key_field: Option<&str>) -> String {
        format!(
            r#"
            application.id = "app"
            [errors]
            rejected = "skip"
            [sources.clicks]
            partitions = 4
            [sources.users]
            table = true
            global = true
            [steps.joined]
            join = "{kind}"
            joiner = "pair"
            inputs = ["clicks", "users"]
            {}
            [sinks.out]
            inputs = ["joined"]
            "#,
            key_field.map_or(String::new(), |f| format!("key-field = {f:?}"))
        )
    }

    #[test]
    fn by_the_records_key_it_follows_the_developer_guides_stream_table_rows() {
        for kind in [Kind::Inner, Kind::Left] {
            let mut d = Driver::from_toml(&pipeline(name(kind), None)).unwrap();
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

    /// The stream value of event `e` for a `key-field = "user.id"` join:
    /// its own value, and a user id that the model's mapper derives from
    /// it (every seventh one JSON null).
    fn with_user(e: &Event) -> Option<Vec<u8>> {
        let v = e.value.as_deref()?;
        Some(serde_json::to_vec(&serde_json::json!({"v": v, "user": {"id": user_of(v)}})).unwrap())
    }

    fn user_of(v: &str) -> Option<String> {
        let n: usize = v[1..].parse().unwrap();
        (n % 7 != 0).then(|| format!("k{}", n % 3))
    }

    #[test]
    fn fifty_random_inputs_join_by_a_field_as_the_reference_model_does() {
        for seed in 0..50 {
            let events = joins::events(seed, 200, 40);
            for kind in [Kind::Inner, Kind::Left] {
                let model = joins::stream_table::global(&events, kind, |_, v| user_of(v));
                let want: Vec<_> = (model.outputs.into_iter())
                    .map(|o| (o.key, o.value, o.time))
                    .collect();
                let mut d = Driver::from_toml(&pipeline(name(kind), Some("user.id"))).unwrap();
                for e in &events {
                    match e.side {
                        Side::Right => push(&mut d, TOPICS, e),
                        Side::Left => d.push(
                            "clicks",
                            e.key.as_deref().map(str::as_bytes),
                            with_user(e).as_deref(),
                            Some(e.time),
                        ),
                    }
                    d.process().unwrap();
                }
                let got: Vec<_> = (seen(&d, "out", 0).into_iter())
                    .map(|(key, pair, time)| {
                        let pair = pair.map(|_| ());
                        (key, pair, time)
                    })
                    .collect();
                let left_values: Vec<Option<String>> = (d.outputs("out").iter())
                    .map(|r| {
                        let v: serde_json::Value =
                            serde_json::from_slice(r.value.as_ref().unwrap()).unwrap();
                        v["left"]["v"].as_str().map(str::to_owned)
                    })
                    .collect();
                let rights: Vec<Option<String>> = (d.outputs("out").iter())
                    .map(|r| {
                        let v: serde_json::Value =
                            serde_json::from_slice(r.value.as_ref().unwrap()).unwrap();
                        v["right"].as_str().map(str::to_owned)
                    })
                    .collect();
                assert_eq!(got.len(), want.len(), "seed {seed}, {kind:?} join");
                for (i, (key, pair, time)) in want.iter().enumerate() {
                    let (l, r) = pair.clone().expect("a stream–table join emits pairs");
                    assert_eq!(
                        (&got[i].0, &left_values[i], &rights[i], got[i].2),
                        (key, &l, &r, *time),
                        "seed {seed}, {kind:?} join, output {i}"
                    );
                }
                assert_eq!(
                    d.counts().join_skipped,
                    model.skipped - right_skips(&events)
                );
            }
        }
    }

    /// Table records the model counts as skipped (a null key): the driver
    /// counts them as rejected instead.
    fn right_skips(events: &[Event]) -> u64 {
        (events.iter())
            .filter(|e| e.side == Side::Right && e.key.is_none())
            .count() as u64
    }

    #[test]
    fn a_missing_key_field_is_rejected_and_a_bad_table_record_is_not_applied() {
        let text = pipeline("left", Some("user.id")).replace("\"skip\"", "\"dlq\"");
        let mut d = Driver::from_toml(&text).unwrap();
        d.push("users", Some(b"u1"), Some(&json("Ada")), Some(1));
        d.push("users", None, Some(&json("nobody")), Some(1));
        d.push(
            "clicks",
            Some(b"c1"),
            Some(br#"{"user":{"id":"u1"}}"#),
            Some(2),
        );
        d.push("clicks", Some(b"c2"), Some(br#"{"user":{}}"#), Some(3));
        d.push("clicks", Some(b"c3"), Some(b"not json"), Some(4));
        d.push(
            "clicks",
            Some(b"c4"),
            Some(br#"{"user":{"id":[1]}}"#),
            Some(5),
        );
        let counts = d.process().unwrap();
        assert_eq!(counts.rejected, 4, "three clicks and the table record");
        assert_eq!(d.outputs("out").len(), 1);
        let letters = d.dead_letters();
        let codes: Vec<_> = (letters.iter())
            .map(|r| r.header("sluice.error.code").unwrap().to_vec())
            .collect();
        assert_eq!(codes, vec![b"no-join-key".to_vec(); 3]);
        let message =
            String::from_utf8(letters[0].header("sluice.error").unwrap().to_vec()).unwrap();
        assert!(message.contains("no field `user.id`"), "{message}");
    }

    #[test]
    fn a_key_plugin_gives_the_table_key_and_its_refusals_meet_their_policy() {
        let path = crate::operator::join::testing::component("key-by-field");
        let text = pipeline("left", None)
            .replace("rejected = \"skip\"", "rejected = \"dlq\"")
            .replace(
                "joiner = \"pair\"",
                &format!(
                    "joiner = \"pair\"\n            key-plugin = {:?}\n            config.field = \"user\"",
                    path.display().to_string()
                ),
            );
        let setup = Driver::setup(&text).unwrap();
        let mut plugins = crate::plugins::Plugins::none(setup.topology());
        plugins.keys[0] = Some(crate::operator::join::testing::load("key-by-field"));
        let mut d = setup.plugins(plugins).start().unwrap();
        d.push("users", Some(b"u1"), Some(&json("Ada")), Some(1));
        d.push("users", Some(b"7"), Some(&json("Bo")), Some(1));
        d.process().unwrap();
        // Keyed by click id; the user is in the value.
        d.push("clicks", Some(b"c1"), Some(br#"{"user":"u1"}"#), Some(2));
        d.push("clicks", Some(b"c2"), Some(br#"{"user":7}"#), Some(3));
        d.push(
            "clicks",
            Some(b"c3"),
            Some(br#"{"user":"nobody"}"#),
            Some(4),
        );
        d.push("clicks", Some(b"c4"), Some(br#"{"other":1}"#), Some(5));
        d.push("clicks", Some(b"c5"), Some(b"not json"), Some(6));
        d.push("clicks", None, Some(br#"{"user":null}"#), Some(7));
        d.process().unwrap();
        let got: Vec<(Option<String>, Option<String>)> = (d.outputs("out").iter())
            .map(|r| {
                let v: serde_json::Value =
                    serde_json::from_slice(r.value.as_ref().unwrap()).unwrap();
                let key = r
                    .key
                    .as_ref()
                    .map(|k| String::from_utf8(k.to_vec()).unwrap());
                (key, v["right"].as_str().map(str::to_owned))
            })
            .collect();
        let s = |t: &str| Some(t.to_owned());
        // c4 has no key for the table (null): skipped, as the null key of
        // a keyed record is; the unkeyed record with a null one is a left
        // join's (KIP-962).
        assert_eq!(
            got,
            [
                (s("c1"), s("Ada")),
                (s("c2"), s("Bo")),
                (s("c3"), None),
                (None, None)
            ]
        );
        assert_eq!(d.counts().join_skipped, 1);
        let dead = d.dead_letters();
        assert_eq!(dead.len(), 1, "the value the plugin cannot read");
        assert_eq!(dead[0].key.as_deref(), Some(&b"c5"[..]));
        let step = dead[0]
            .headers
            .iter()
            .find(|(n, _)| n == "sluice.plugin.digest");
        assert_ne!(
            step.and_then(|(_, v)| v.as_deref()),
            Some(&b"built-in"[..]),
            "the key plugin's digest"
        );
    }
}
