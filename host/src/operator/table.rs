//! Tables from topics: a source declared `table = true` is the latest value
//! per key, materialized into its store as its records arrive. This is the
//! table side of the stream–table duality, and what stream–table joins
//! will look up.
//!
//! - `format = "plain"`: the value is the row; a tombstone deletes the key.
//! - `format = "debezium"`: the value is a change event `{before, after,
//!   op}` (optionally wrapped as `{schema, payload}` by Kafka Connect's
//!   JSON converter). `c`, `r` (snapshot) and `u` set the row to `after`;
//!   `d` and a tombstone delete it.
//!
//! Downstream nodes see the table's changes: the key with the new row, or
//! a tombstone. A record without a key, or a change event that cannot be
//! read, is rejected and meets the `rejected` policy; an update the store
//! already holds (restored) is not applied again.
//!
//! A versioned table (`history`) keeps each key's rows by time instead
//! (`state::versioned`): an update older than the key's latest is kept for
//! lookups as of its time but not passed downstream, and one older than
//! the table's time minus the history is dropped and counted as late.

use crate::cdc::table_change;
use crate::error::RunError;
use crate::operator::batch::StepOut;
use crate::operator::dead_letter::Kind;
use crate::operator::{Operator, StepCtx};
use crate::plugin::Plugin;
use crate::record::RecordRef;
use crate::state::versioned::{Put, Versioned};
use crate::topology::{NodeId, TableFormat};

/// A table source, materialized into its store.
pub struct Table {
    source: usize,
    /// Its store, as an index into the task's stores.
    store: usize,
    format: TableFormat,
    /// Set for a versioned table.
    versioned: Option<Versioned>,
}

impl Table {
    /// Source `source`, kept in store `store`, its values read as
    /// `format`, with `history` ms of versions if it is versioned.
    pub fn new(source: usize, store: usize, format: TableFormat, history: Option<i64>) -> Table {
        Table {
            source,
            store,
            format,
            versioned: history.map(|history| Versioned { history }),
        }
    }
}

impl Operator for Table {
    /// Applies the table's records of this batch to its store and returns
    /// the changes for downstream nodes.
    fn process<'r>(
        &mut self,
        inputs: Vec<(usize, RecordRef<'r>)>,
        cx: &mut StepCtx<'_, '_>,
    ) -> Result<StepOut, RunError> {
        let node = NodeId::Source(self.source);
        let stores = cx
            .stores
            .as_deref_mut()
            .expect("a stateful task has stores");
        let mut accepted: Vec<(usize, RecordRef<'_>)> = Vec::with_capacity(inputs.len());
        let mut rows: Vec<Option<Vec<u8>>> = Vec::with_capacity(inputs.len());
        let mut refused = Vec::new();
        for (origin, record) in inputs {
            // Applied already (restored), while a store downstream was not
            // (a crash between two stores' markers): not written again,
            // but passed on, so that the store that lags catches up.
            let (topic, partition, at) = cx.batch.batch[origin].applied_at();
            let applied = stores.has_applied(self.store, topic, partition, at);
            let debezium = self.format == TableFormat::Debezium;
            let (key, row) = match table_change(record.key, record.value, debezium) {
                Ok(change) => change,
                // Refused when it was applied.
                Err(_) if applied => continue,
                Err(bad) => {
                    refused.push((bad.code, bad.message, (origin, record)));
                    continue;
                }
            };
            let buffer = stores.buffer(self.store);
            let time = record.timestamp.unwrap_or(0);
            match &self.versioned {
                None if applied => {}
                // Passed on only if it is still the key's latest version.
                Some(_) if applied => {
                    if !Versioned::is_latest(buffer, key, time)? {
                        continue;
                    }
                }
                None => match &row {
                    Some(v) => buffer.put(key, v),
                    None => buffer.delete(key),
                },
                Some(versioned) => match versioned.put(buffer, key, row.as_deref(), time)? {
                    Put::Latest => {}
                    Put::Earlier => continue,
                    Put::Expired => {
                        cx.batch.counts.late += 1;
                        continue;
                    }
                },
            }
            accepted.push((origin, record));
            rows.push(row);
        }
        for (code, message, at) in refused {
            cx.dead(node, "built-in", Kind::Rejected, code, &message, at)?;
        }
        let changes: Vec<_> = (accepted.iter().zip(&rows))
            .map(|(&(origin, record), row)| {
                let change = RecordRef {
                    value: row.as_deref(),
                    timestamp: None,
                    ..record
                };
                (origin, record, change)
            })
            .collect();
        StepOut::of_records(&cx.topology.sources[self.source].name, &changes)
    }

    fn digest(&self) -> &str {
        "built-in"
    }

    fn swap_plugin(&mut self, _plugin: Plugin) {
        unreachable!("a table source has no plugin to swap");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::record::Record;
    use crate::task::InputRecord;
    use crate::task::testing::Driver;

    fn change(offset: i64, key: Option<&str>, value: Option<&str>) -> InputRecord {
        InputRecord {
            topic: Arc::from("customers"),
            partition: 0,
            offset,
            timestamp_kind: crate::time::TimestampKind::CreateTime,
            record: Record {
                key: key.map(|k| bytes::Bytes::copy_from_slice(k.as_bytes())),
                value: value.map(|v| bytes::Bytes::copy_from_slice(v.as_bytes())),
                timestamp: Some(offset),
                headers: Vec::new(),
            },
            origin: None,
        }
    }

    #[test]
    fn a_debezium_table_keeps_the_latest_row_per_key_and_passes_changes_on() {
        let text = r#"
            application.id = "app"
            [state]
            store = "memory"
            [sources.customers]
            table = true
            format = "debezium"
            [sinks.changes]
            inputs = ["customers"]
        "#;
        let mut d = Driver::from_toml(text).unwrap();
        let batch = vec![
            change(
                0,
                Some("1"),
                Some(r#"{"before":null,"after":{"name":"Ada"},"op":"r"}"#),
            ),
            change(
                1,
                Some("2"),
                Some(r#"{"before":null,"after":{"name":"Bo"},"op":"c"}"#),
            ),
            change(
                2,
                Some("1"),
                Some(r#"{"before":{"name":"Ada"},"after":{"name":"Ada L."},"op":"u"}"#),
            ),
            change(
                3,
                Some("2"),
                Some(r#"{"before":{"name":"Bo"},"after":null,"op":"d"}"#),
            ),
            change(4, Some("2"), None),
            change(5, None, Some(r#"{"after":{"name":"x"},"op":"c"}"#)),
            change(6, Some("3"), Some("garbage")),
        ];
        for change in batch {
            d.push_input(change);
        }
        let counts = d.process().unwrap();
        assert_eq!(counts.rejected, 2);
        let changes: Vec<(String, Option<String>)> = d
            .outputs("changes")
            .into_iter()
            .map(|r| {
                (
                    String::from_utf8(r.key.as_deref().unwrap().to_vec()).unwrap(),
                    r.value
                        .as_deref()
                        .map(|v| String::from_utf8(v.to_vec()).unwrap()),
                )
            })
            .collect();
        assert_eq!(
            changes,
            vec![
                ("1".into(), Some(r#"{"name":"Ada"}"#.into())),
                ("2".into(), Some(r#"{"name":"Bo"}"#.into())),
                ("1".into(), Some(r#"{"name":"Ada L."}"#.into())),
                ("2".into(), None),
                ("2".into(), None),
            ]
        );
        let codes: Vec<&str> = d
            .dead_letters()
            .into_iter()
            .map(|r| {
                r.headers
                    .iter()
                    .find(|(k, _)| k == "sluice.error.code")
                    .and_then(|(_, v)| v.as_deref())
                    .map(|v| std::str::from_utf8(v).unwrap())
                    .unwrap()
            })
            .collect();
        assert_eq!(codes, ["null-key", "bad-change-event"]);
        assert_eq!(
            d.get("customers", b"1").unwrap().as_deref(),
            Some(&br#"{"name":"Ada L."}"#[..])
        );
        assert_eq!(d.get("customers", b"2").unwrap(), None);
    }

    #[test]
    fn a_versioned_table_passes_on_only_its_latest_changes() {
        let text = r#"
            application.id = "app"
            [sources.customers]
            table = true
            history = 100
            [sinks.changes]
            inputs = ["customers"]
        "#;
        let mut d = Driver::from_toml(text).unwrap();
        for (time, value) in [
            (50, "B"),
            (10, "A"),
            (200, "C"),
            (99, "late"),
            (100, "edge"),
        ] {
            d.push("customers", Some(b"1"), Some(value.as_bytes()), Some(time));
            d.process().unwrap();
        }
        let passed: Vec<(&[u8], Option<i64>)> = (d.outputs("changes").iter())
            .map(|r| (r.value.as_deref().unwrap(), r.timestamp))
            .collect();
        assert_eq!(
            passed,
            [(&b"B"[..], Some(50)), (b"C", Some(200))],
            "A and edge are older than the key's latest; late is beyond the history"
        );
        assert_eq!(d.counts().late, 1);
    }
}
