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
//! With a versioned table (`history` on its source) a stream record meets
//! the table's value **as of its own time** (`state::versioned`), so a
//! late stream record is not joined with updates made after it.
//!
//! With `join-grace` (a versioned table only, Kafka Streams 3.6) stream
//! records wait before they are joined, so that table updates that arrive
//! up to that late still meet them. The join's stream time is the largest
//! stream record time seen. A record that can be joined, has a key and is
//! not older than stream time minus the grace waits in the step's store;
//! after it, every waiting record whose time is at most stream time minus
//! the grace is joined, in the order (time, key, arrival). Any other
//! record is joined at once and lets none go (as in Kafka Streams). With
//! `close.idle.after`, a quiet task joins everything still waiting.
//!
//! | key (grace store) | value |
//! |---|---|
//! | `0x00 ‖ name`: the stream time, the next arrival number | `i64` big-endian |
//! | `0x01 ‖ time ‖ key ‖ arrival`: a waiting record | the record |
//!
//! A pair the joiner rejects meets the `rejected` policy, one it traps on
//! the `trap` policy; the stream record is what is dead-lettered (for a
//! record that waited, the record whose arrival let it go).

use super::joiner::ValueJoiner;
use super::results;
use super::stored::{decode, encode, ordered};
use crate::error::RunError;
use crate::operator::batch::StepOut;
use crate::operator::{Operator, StepCtx};
use crate::plugin::Plugin;
use crate::record::{Record, RecordRef};
use crate::state::StoreBuffer;
use crate::state::key_layout::{time_bytes, time_from_bytes};
use crate::state::versioned::Versioned;
use crate::topology::JoinKind;

const META: u8 = 0x00;
const WAITING: u8 = 0x01;

/// A stream–table join of one task.
pub struct StreamTableJoin {
    index: usize,
    kind: JoinKind,
    joiner: ValueJoiner,
    /// The table's store, among the task's.
    store: usize,
    /// Set when the table is versioned.
    versioned: Option<Versioned>,
    /// `join-grace`: how long records wait, and the store they wait in.
    grace: Option<(i64, usize)>,
}

/// A stream record to join now, with its time, and the origin in the
/// batch it is joined for.
type Due = (usize, Record);

impl StreamTableJoin {
    /// The join of step `index`, of `kind`, looking up the task's store
    /// `store` (a versioned table when `versioned`), its values joined by
    /// `joiner`; with `grace = (ms, store)`, records wait that long in that
    /// store.
    pub fn new(
        index: usize,
        (kind, joiner): (JoinKind, ValueJoiner),
        (store, versioned): (usize, Option<Versioned>),
        grace: Option<(i64, usize)>,
    ) -> StreamTableJoin {
        StreamTableJoin {
            index,
            kind,
            joiner,
            store,
            versioned,
            grace,
        }
    }

    /// The table's row for `key` as of `time`.
    fn row(&self, table: &StoreBuffer, key: &[u8], time: i64) -> Result<Option<Vec<u8>>, RunError> {
        Ok(match &self.versioned {
            Some(v) => v.get_as_of(table, key, time)?,
            None => table.get(key)?,
        })
    }

    /// Whether `record` takes part at all (else it is counted skipped).
    fn joinable(&self, record: &RecordRef<'_>) -> bool {
        record.value.is_some() && (record.key.is_some() || self.kind == JoinKind::Left)
    }

    /// `due`, each joined with the table's row for its key as of its time:
    /// the results to write (an inner join drops those without a row).
    fn join_due(
        &self,
        due: Vec<Due>,
        cx: &mut StepCtx<'_, '_>,
    ) -> Result<Vec<results::Result>, RunError> {
        let table = StepCtx::buffer(&mut cx.stores, self.store);
        let mut out = Vec::with_capacity(due.len());
        for (origin, record) in due {
            let time = record.timestamp;
            let row = match &record.key {
                None => None,
                Some(key) => self.row(table, key, time.unwrap_or(0))?,
            };
            if row.is_none() && self.kind == JoinKind::Inner {
                continue;
            }
            let key = record.key.clone();
            let right = row.map(|value| Record {
                key: key.clone(),
                value: Some(value.into()),
                timestamp: None,
                headers: Vec::new(),
            });
            out.push(results::Result {
                origin,
                key,
                pair: Some((Some(record), right)),
                time,
            });
        }
        Ok(out)
    }

    /// The records of `inputs` to join, with a grace period of `grace` ms
    /// in `store`: those that need not wait, and the waiting ones let go.
    fn through_grace(
        &self,
        (grace, store): (i64, usize),
        inputs: &[(usize, RecordRef<'_>)],
        cx: &mut StepCtx<'_, '_>,
    ) -> Result<Vec<Due>, RunError> {
        let tick = cx.stream_time.filter(|_| cx.batch.tick);
        let buffer = StepCtx::buffer(&mut cx.stores, store);
        let (mut stream, mut arrival) = (clock(buffer, b"stream")?, clock(buffer, b"arrival")?);
        let mut due = Vec::new();
        let mut skipped = 0;
        for &(origin, record) in inputs {
            let t = record.timestamp.unwrap_or(0);
            stream = Some(stream.map_or(t, |s| s.max(t)));
            if !self.joinable(&record) {
                skipped += 1;
                continue;
            }
            let now = stream.expect("set above");
            match record.key {
                Some(key) if t >= now.saturating_sub(grace) => {
                    let n = arrival.unwrap_or(0);
                    buffer.put(&waiting_key(t, key, n), &encode(&record.to_owned_record()));
                    arrival = Some(n + 1);
                    let_go(buffer, now.saturating_sub(grace), origin, &mut due)?;
                }
                _ => due.push((origin, record.to_owned_record())),
            }
        }
        // An idle close moved the task's stream time past what waits.
        if let Some(now) = tick
            && stream.is_none_or(|s| now > s)
        {
            stream = Some(now);
            let_go(buffer, now.saturating_sub(grace), 0, &mut due)?;
        }
        for (name, value) in [(&b"stream"[..], stream), (b"arrival", arrival)] {
            if let Some(v) = value {
                buffer.put(&[&[META][..], name].concat(), &v.to_be_bytes());
            }
        }
        cx.batch.counts.join_skipped += skipped;
        Ok(due)
    }
}

/// The store key of a waiting record.
fn waiting_key(time: i64, key: &[u8], arrival: i64) -> Vec<u8> {
    [
        &[WAITING][..],
        &time_bytes(time),
        &ordered(key),
        &(arrival as u64).to_be_bytes(),
    ]
    .concat()
}

/// A clock of the grace store (`None`: not set yet).
fn clock(buffer: &StoreBuffer, name: &[u8]) -> Result<Option<i64>, RunError> {
    Ok(buffer
        .get(&[&[META][..], name].concat())?
        .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
        .map(i64::from_be_bytes))
}

/// Moves every waiting record with a time at most `upto` to `due`, in
/// store order (time, key, arrival), as let go by the record at `origin`.
fn let_go(
    buffer: &mut StoreBuffer,
    upto: i64,
    origin: usize,
    due: &mut Vec<Due>,
) -> Result<(), RunError> {
    let end = match upto.checked_add(1) {
        Some(next) => [&[WAITING][..], &time_bytes(next)].concat(),
        None => vec![WAITING + 1],
    };
    for (k, v) in buffer.range(Some(&[WAITING]), Some(&end))? {
        let mut record = decode(&v);
        record.timestamp = Some(time_from_bytes(k[1..9].try_into().expect("8 bytes")));
        buffer.delete(&k);
        due.push((origin, record));
    }
    Ok(())
}

impl Operator for StreamTableJoin {
    fn process<'r>(
        &mut self,
        inputs: Vec<(usize, RecordRef<'r>)>,
        cx: &mut StepCtx<'_, '_>,
    ) -> Result<StepOut, RunError> {
        let (live, due) = match self.grace {
            None => {
                let mut due = Vec::with_capacity(inputs.len());
                for &(origin, record) in &inputs {
                    if self.joinable(&record) {
                        due.push((origin, record.to_owned_record()));
                    } else {
                        cx.batch.counts.join_skipped += 1;
                    }
                }
                (inputs, due)
            }
            Some((grace, store)) => {
                let live = super::super::unapplied(&[store], inputs, cx);
                let due = self.through_grace((grace, store), &live, cx)?;
                (live, due)
            }
        };
        let results = self.join_due(due, cx)?;
        results::write(&mut self.joiner, self.index, results, &live, cx)
    }

    fn latest_close(
        &self,
        stores: &mut crate::state::task_state::TaskStores,
    ) -> Result<Option<i64>, RunError> {
        let Some((grace, store)) = self.grace else {
            return Ok(None);
        };
        let waiting = stores
            .buffer(store)
            .range(Some(&[WAITING]), Some(&[WAITING + 1]))?;
        Ok((waiting.iter())
            .map(|(k, _)| time_from_bytes(k[1..9].try_into().expect("8 bytes")))
            .max()
            .map(|t| t.saturating_add(grace)))
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
                    .filter(|e: &&Event| e.side == Side::Left)
                    .filter(|e| e.value.is_none() || (e.key.is_none() && kind == Kind::Inner))
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

    /// The stream–table pipeline with a versioned table of `history` ms
    /// and, when given, `join-grace`.
    fn versioned_pipeline(kind: Kind, history: i64, grace: Option<i64>) -> String {
        let grace = grace.map_or(String::new(), |g| format!("join-grace = {g}\n"));
        pipeline(name(kind))
            .replace(
                "table = true",
                &format!("table = true\nhistory = {history}"),
            )
            .replace("joiner = \"pair\"", &format!("joiner = \"pair\"\n{grace}"))
    }

    #[test]
    fn fifty_random_inputs_join_a_versioned_table_as_the_model_does() {
        for seed in 0..50 {
            let events = joins::events(seed, 200, 40);
            for (kind, grace) in [Kind::Inner, Kind::Left]
                .into_iter()
                .flat_map(|k| [(k, None), (k, Some(0)), (k, Some(30))])
            {
                let model = joins::stream_table::versioned(&events, kind, 50, grace);
                let want: Vec<_> = (model.outputs.into_iter())
                    .map(|o| (o.key, o.value, o.time))
                    .collect();
                let mut d = Driver::from_toml(&versioned_pipeline(kind, 50, grace)).unwrap();
                for e in &events {
                    push(&mut d, TOPICS, e);
                    d.process().unwrap();
                }
                let why = format!("seed {seed}, {kind:?} join, grace {grace:?}");
                assert_eq!(seen(&d, "out", 0), want, "{why}");
                assert_eq!(
                    d.counts().join_skipped,
                    model.skipped - table_skipped(&events),
                    "{why}"
                );
                assert_eq!(d.counts().late, model.expired, "{why}");
            }
        }
    }

    /// Table records the model skips (null keys): the engine rejects them.
    fn table_skipped(events: &[Event]) -> u64 {
        (events.iter())
            .filter(|e| e.side == Side::Right && e.key.is_none())
            .count() as u64
    }

    #[test]
    fn waiting_records_survive_a_restart_and_an_idle_close_lets_them_go() {
        let text = versioned_pipeline(Kind::Left, 1_000, Some(100)).replace(
            "join-grace = 100",
            "join-grace = 100\nclose.idle.after = \"5s\"",
        );
        let dir = tempfile::tempdir().unwrap();
        let mut d = Driver::setup(&text)
            .unwrap()
            .rocksdb(dir.path())
            .start()
            .unwrap();
        let at = |side, key: &str, value: &str, time| Event::new(side, key, Some(value), time);
        for e in [
            at(Side::Left, "u1", "c1", 20),
            at(Side::Right, "u1", "A", 10),
            at(Side::Left, "u2", "c2", 50),
        ] {
            push(&mut d, TOPICS, &e);
        }
        d.process().unwrap();
        assert_eq!(seen(&d, "out", 0), [], "both wait");
        let log = crate::state::task_state::testing::MemoryChangelog::default();
        let stores = d.task().stores().unwrap();
        assert!(stores.prepare(&log).unwrap());
        stores.mark(&log).unwrap();
        stores.persist().unwrap();
        let mut d = d.restart().unwrap();
        push(&mut d, TOPICS, &at(Side::Right, "u2", "B", 40));
        d.process().unwrap();
        d.advance(5_000);
        d.close_idle(false).unwrap().expect("closed");
        let pair = |l: &str, r: &str| Some((Some(l.to_owned()), Some(r.to_owned())));
        assert_eq!(
            seen(&d, "out", 0),
            [
                (Some("u1".to_owned()), pair("c1", "A"), 20),
                (Some("u2".to_owned()), pair("c2", "B"), 50),
            ],
            "joined in time order, each as of its own time"
        );
    }
}
