//! Changelogs: the compacted topic behind every store, and restore.
//!
//! Topic: `<application.id>-<store>-changelog`, one partition per task.
//!
//! Record format (the topic is Sluice's own, so keys carry a kind byte):
//! - **data**: key `0x00 ‖ store key`, value = the new value, or null for a
//!   deletion. Values are absolute, never deltas, so replaying a record
//!   twice is harmless.
//! - **applied marker**: key `0x01 ‖ "applied"`, value = JSON list of
//!   `{topic, partition, next}`: the input offsets whose effects are
//!   complete in the records before it. A commit writes its data records,
//!   then one marker, all to the task's partition, in order.
//!
//! Restore applies data records in chunks and, at each marker, records the
//! marker's input offsets and the changelog position in the store's
//! metadata, in the same atomic batch. Records after the last marker belong
//! to a commit that never completed: they are not applied, and their keys
//! are returned so that the task can write the store's true values for them
//! in its next commit. See `docs/state.md` for why this keeps state exact.

use serde::{Deserialize, Serialize};

use super::store::{KeyValueStore, WriteBatch};
use crate::error::StateError;

/// Metadata entry: the input offsets applied to the store.
pub const META_APPLIED: &str = "applied";
/// Metadata entry: the next changelog offset to restore from.
pub const META_POSITION: &str = "changelog.position";

const DATA: u8 = 0;
const MARKER: u8 = 1;
const MARKER_KEY: &[u8] = b"\x01applied";

/// The changelog topic of `store`.
pub fn topic(application_id: &str, store: &str) -> String {
    format!("{application_id}-{store}-changelog")
}

/// The next input offset of one source partition, as applied to state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// Source topic.
    pub topic: String,
    /// Source partition.
    pub partition: i32,
    /// The next offset to apply: records below it are already in state.
    pub next: i64,
}

/// The changelog record for writing `value` (or deleting, for `None`) at `key`.
pub fn data_record(key: &[u8], value: Option<&[u8]>) -> (Vec<u8>, Option<Vec<u8>>) {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(DATA);
    k.extend_from_slice(key);
    (k, value.map(<[u8]>::to_vec))
}

/// The marker that closes a commit.
pub fn marker_record(applied: &[Applied]) -> (Vec<u8>, Vec<u8>) {
    (
        MARKER_KEY.to_vec(),
        serde_json::to_vec(applied).expect("serializable"),
    )
}

/// A record read from a changelog partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangelogRecord {
    /// Offset in the changelog partition.
    pub offset: i64,
    /// Record key.
    pub key: Vec<u8>,
    /// Record value; `None` is a tombstone.
    pub value: Option<Vec<u8>>,
}

/// What a changelog record means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A store write.
    Data {
        /// Store key.
        key: Vec<u8>,
        /// New value; `None` deletes.
        value: Option<Vec<u8>>,
    },
    /// The end of a commit.
    Applied(Vec<Applied>),
}

/// Decodes a changelog record of `store`.
pub fn decode(store: &str, record: &ChangelogRecord) -> Result<Change, StateError> {
    let corrupt = |message: String| StateError::Corrupt {
        store: store.to_owned(),
        message: format!("changelog offset {}: {message}", record.offset),
    };
    match record.key.first() {
        Some(&DATA) => Ok(Change::Data {
            key: record.key[1..].to_vec(),
            value: record.value.clone(),
        }),
        Some(&MARKER) if record.key == MARKER_KEY => {
            let value = record
                .value
                .as_deref()
                .ok_or_else(|| corrupt("applied marker without a value".into()))?;
            serde_json::from_slice(value)
                .map(Change::Applied)
                .map_err(|e| corrupt(format!("applied marker: {e}")))
        }
        _ => Err(corrupt(
            "not a Sluice changelog record (unknown key kind)".into(),
        )),
    }
}

/// The applied input offsets recorded in a store.
pub fn applied(store: &dyn KeyValueStore) -> Result<Vec<Applied>, StateError> {
    match store.meta(META_APPLIED)? {
        None => Ok(Vec::new()),
        Some(v) => serde_json::from_slice(&v).map_err(|e| StateError::Corrupt {
            store: store.name().to_owned(),
            message: format!("applied offsets: {e}"),
        }),
    }
}

/// The changelog offset a restore of `store` starts from.
pub fn position(store: &dyn KeyValueStore) -> Result<i64, StateError> {
    match store.meta(META_POSITION)? {
        None => Ok(0),
        Some(v) => v
            .as_slice()
            .try_into()
            .map(i64::from_be_bytes)
            .map_err(|_| StateError::Corrupt {
                store: store.name().to_owned(),
                message: "changelog position is not 8 bytes".into(),
            }),
    }
}

/// What a restore did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restored {
    /// Changelog records read.
    pub records: u64,
    /// Input offsets applied to the store, from the last marker.
    pub applied: Vec<Applied>,
    /// The next changelog offset to read.
    pub position: i64,
    /// Keys written after the last marker (an incomplete commit): not
    /// applied; the task writes their true values in its next commit.
    pub incomplete_keys: Vec<Vec<u8>>,
}

/// Applies changelog `records` (read from the store's position onward) to
/// `store`, writing in chunks of at most `chunk` records; `progress` is
/// called with the count of records read.
pub fn restore(
    store: &mut dyn KeyValueStore,
    records: impl IntoIterator<Item = Result<ChangelogRecord, StateError>>,
    chunk: usize,
    mut progress: impl FnMut(u64),
) -> Result<Restored, StateError> {
    let name = store.name().to_owned();
    let mut out = Restored {
        applied: applied(store)?,
        position: position(store)?,
        ..Restored::default()
    };
    // Complete commits are written together, about `chunk` records at a
    // time, with the metadata of the last marker among them. Records after
    // the last marker so far are *unsealed*: they are never written before
    // their marker arrives, since an unfinished commit's records would
    // apply inputs that are going to be processed again. (So one commit is
    // held in memory until its marker, however large.)
    let mut batch = WriteBatch::default();
    let mut sealed = 0usize;
    let mut meta: Option<(Vec<Applied>, i64)> = None;
    let mut since_marker: Vec<Vec<u8>> = Vec::new();
    let mut write_sealed = |batch: &mut WriteBatch,
                            sealed: &mut usize,
                            meta: &mut Option<(Vec<Applied>, i64)>|
     -> Result<(), StateError> {
        let Some((applied, position)) = meta.take() else {
            return Ok(());
        };
        let unsealed = batch.split_off(*sealed);
        batch.put_meta(
            META_APPLIED,
            &serde_json::to_vec(&applied).expect("serializable"),
        );
        batch.put_meta(META_POSITION, &position.to_be_bytes());
        store.write(batch)?;
        *batch = unsealed;
        *sealed = 0;
        crate::fault::point("restore-chunk");
        Ok(())
    };
    for record in records {
        let record = record?;
        out.records += 1;
        match decode(&name, &record)? {
            Change::Data { key, value } => {
                match &value {
                    Some(v) => batch.put(&key, v),
                    None => batch.delete(&key),
                }
                since_marker.push(key);
                if batch.len() >= chunk {
                    write_sealed(&mut batch, &mut sealed, &mut meta)?;
                }
            }
            Change::Applied(applied) => {
                since_marker.clear();
                sealed = batch.len();
                out.applied = applied.clone();
                out.position = record.offset + 1;
                meta = Some((applied, record.offset + 1));
                if sealed >= chunk {
                    write_sealed(&mut batch, &mut sealed, &mut meta)?;
                }
            }
        }
        progress(out.records);
    }
    write_sealed(&mut batch, &mut sealed, &mut meta)?;
    since_marker.sort();
    since_marker.dedup();
    out.incomplete_keys = since_marker;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::memory::MemoryStore;

    fn log(entries: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Vec<Result<ChangelogRecord, StateError>> {
        entries
            .into_iter()
            .enumerate()
            .map(|(i, (key, value))| {
                Ok(ChangelogRecord {
                    offset: i as i64,
                    key,
                    value,
                })
            })
            .collect()
    }

    fn data(k: &str, v: Option<&str>) -> (Vec<u8>, Option<Vec<u8>>) {
        data_record(k.as_bytes(), v.map(str::as_bytes))
    }

    fn marker(next: i64) -> (Vec<u8>, Option<Vec<u8>>) {
        let (k, v) = marker_record(&[Applied {
            topic: "in".into(),
            partition: 0,
            next,
        }]);
        (k, Some(v))
    }

    #[test]
    fn restore_applies_complete_commits_and_holds_back_an_incomplete_one() {
        let records = log(vec![
            data("a", Some("1")),
            data("b", Some("1")),
            marker(10),
            data("a", Some("2")),
            data("b", None),
            marker(20),
            data("a", Some("3")), // the commit that never finished
            data("c", Some("9")),
        ]);
        let mut store = MemoryStore::new("counts");
        let mut seen = 0;
        let r = restore(&mut store, records, 100, |n| seen = n).unwrap();
        assert_eq!(seen, 8);
        assert_eq!(r.position, 6);
        assert_eq!(r.applied[0].next, 20);
        assert_eq!(r.incomplete_keys, vec![b"a".to_vec(), b"c".to_vec()]);
        assert_eq!(store.get(b"a").unwrap().as_deref(), Some(&b"2"[..]));
        assert_eq!(store.get(b"b").unwrap(), None);
        assert_eq!(store.get(b"c").unwrap(), None);
        assert_eq!(position(&store).unwrap(), 6);
        assert_eq!(applied(&store).unwrap()[0].next, 20);
    }

    #[test]
    fn restore_resumes_from_the_stored_position_and_chunks_big_commits() {
        let mut store = MemoryStore::new("s");
        let first = log(vec![data("a", Some("1")), marker(1)]);
        restore(&mut store, first, 100, |_| {}).unwrap();
        // The tail from position 2 on: a commit bigger than the chunk.
        let tail: Vec<_> = (0..5)
            .map(|i| data(&format!("k{i}"), Some("v")))
            .chain([marker(6)])
            .enumerate()
            .map(|(i, (key, value))| {
                Ok(ChangelogRecord {
                    offset: 2 + i as i64,
                    key,
                    value,
                })
            })
            .collect();
        let r = restore(&mut store, tail, 2, |_| {}).unwrap();
        assert_eq!(r.position, 8);
        assert!(r.incomplete_keys.is_empty());
        assert_eq!(store.range(None, None).unwrap().count(), 6);
    }

    #[test]
    fn an_unfinished_commit_is_never_written_even_across_a_chunk_boundary() {
        // Complete commits fill most of a chunk; the unfinished one after
        // them would cross it. Its records must not reach the store.
        let records = log(vec![
            data("a", Some("1")),
            data("b", Some("1")),
            marker(10),
            data("a", Some("99")),
            data("c", Some("99")),
            data("d", Some("99")),
        ]);
        let mut store = MemoryStore::new("s");
        let r = restore(&mut store, records, 3, |_| {}).unwrap();
        assert_eq!(store.get(b"a").unwrap().as_deref(), Some(&b"1"[..]));
        assert_eq!(store.get(b"c").unwrap(), None);
        assert_eq!(store.get(b"d").unwrap(), None);
        assert_eq!(r.position, 3);
        assert_eq!(
            r.incomplete_keys,
            vec![b"a".to_vec(), b"c".to_vec(), b"d".to_vec()]
        );
    }

    #[test]
    fn foreign_records_are_refused() {
        let mut store = MemoryStore::new("s");
        let bad = log(vec![(b"plain-key".to_vec(), Some(b"v".to_vec()))]);
        let e = restore(&mut store, bad, 10, |_| {})
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not a Sluice changelog record") && e.contains("offset 0"),
            "{e}"
        );
        assert_eq!(topic("app", "counts"), "app-counts-changelog");
    }
}
