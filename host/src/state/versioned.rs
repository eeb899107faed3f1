//! Versioned tables (`history` on a table source): each key's values over
//! time, so that a stream–table join looks a key up as of the stream
//! record's time rather than as the table is when the record is processed
//! (Kafka Streams' versioned key-value stores, KIP-914).
//!
//! The rules, with the table's time being the latest time of a record it
//! kept:
//!
//! - A record older than the table's time minus `history` is expired:
//!   neither kept nor passed on ([`Put::Expired`]).
//! - Any other adds a version of its key at its time (a deletion for a
//!   tombstone), replacing a version of the same time. It is the key's
//!   latest unless the key has a later version already ([`Put::Earlier`]):
//!   then it is kept for lookups but not passed downstream, as Kafka
//!   Streams does not forward out-of-order updates of a versioned table.
//! - A lookup as of time `t` finds the version with the largest time not
//!   after `t` (none, or a deletion: no value). Asked for a time older
//!   than the table's time minus `history`, only the key's latest version
//!   answers, and only if it is not after `t`.
//!
//! Layout in the table's store:
//!
//! | key | value |
//! |---|---|
//! | `0x00 ‖ len(key) ‖ key ‖ time` | `0x01 ‖ row`, or `0x00` for a deletion |
//! | `0x01 ‖ "time"` | the table's time, `i64` big-endian |
//!
//! A key's versions are contiguous and in time order (`key_layout`'s
//! length prefix and time encoding), so a lookup is one short scan. When a
//! key gets a version, its versions that no lookup can reach any more are
//! deleted: every one before the latest at or before the table's time
//! minus `history`. A key written once and never again keeps its one
//! version, as the latest version of every key is kept forever.

use super::StoreBuffer;
use super::key_layout::{time_bytes, time_from_bytes};
use crate::error::StateError;

const VERSION: u8 = 0x00;
const META: u8 = 0x01;
const TIME: &[u8] = &[META, b't', b'i', b'm', b'e'];

/// What writing a table record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// Kept, and now the key's latest version: passed downstream.
    Latest,
    /// Kept for lookups as of its time; the key has a later version.
    Earlier,
    /// Older than the table's time minus its history: dropped.
    Expired,
}

/// One table's versions, in its store.
#[derive(Debug, Clone, Copy)]
pub struct Versioned {
    /// How far back (ms, in the table's time) versions stay reachable.
    pub history: i64,
}

/// The store key of `key`'s version at `time`.
fn version_key(key: &[u8], time: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + 4 + key.len() + 8);
    out.push(VERSION);
    out.extend_from_slice(&(key.len() as u32).to_be_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&time_bytes(time));
    out
}

/// The time of a version's store key.
fn version_time(stored: &[u8]) -> i64 {
    let at = stored.len() - 8;
    time_from_bytes(stored[at..].try_into().expect("8 bytes"))
}

/// The row a version's stored value holds (`None`: a deletion).
fn row(stored: &[u8]) -> Option<Vec<u8>> {
    match stored.split_first() {
        Some((1, row)) => Some(row.to_vec()),
        _ => None,
    }
}

/// Every version of `key` with a time before `before` (`None`: all), in
/// time order.
fn versions(
    store: &StoreBuffer,
    key: &[u8],
    before: Option<i64>,
) -> Result<Vec<(i64, Vec<u8>)>, StateError> {
    let from = version_key(key, i64::MIN);
    let to = match before {
        Some(t) => version_key(key, t),
        None => [&version_key(key, i64::MAX)[..], &[0xFF]].concat(),
    };
    Ok((store.range(Some(&from), Some(&to))?.into_iter())
        .map(|(k, v)| (version_time(&k), v))
        .collect())
}

impl Versioned {
    /// The table's time: the latest time of a record it kept.
    pub fn time(store: &StoreBuffer) -> Result<Option<i64>, StateError> {
        Ok(store
            .get(TIME)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map(i64::from_be_bytes))
    }

    /// The oldest time a lookup is answered for in full.
    fn horizon(&self, table_time: Option<i64>) -> i64 {
        table_time.map_or(i64::MIN, |t| t.saturating_sub(self.history))
    }

    /// Writes `key`'s `row` (`None`: a deletion) at `time`.
    pub fn put(
        &self,
        store: &mut StoreBuffer,
        key: &[u8],
        row: Option<&[u8]>,
        time: i64,
    ) -> Result<Put, StateError> {
        let table_time = Self::time(store)?;
        if time < self.horizon(table_time) {
            return Ok(Put::Expired);
        }
        let before = versions(store, key, None)?;
        let latest = before.last().map(|(t, _)| *t);
        let value = match row {
            Some(row) => [&[1u8][..], row].concat(),
            None => vec![0],
        };
        store.put(&version_key(key, time), &value);
        let now = table_time.map_or(time, |t| t.max(time));
        if Some(now) != table_time {
            store.put(TIME, &now.to_be_bytes());
        }
        // The versions a lookup can still reach start at the latest one at
        // or before the horizon; those before it are gone for good.
        let horizon = self.horizon(Some(now));
        let times: std::collections::BTreeSet<i64> =
            before.iter().map(|(t, _)| *t).chain([time]).collect();
        if let Some(&first_kept) = times.range(..=horizon).next_back() {
            for &t in times.range(..first_kept) {
                store.delete(&version_key(key, t));
            }
        }
        Ok(match latest {
            Some(l) if time < l => Put::Earlier,
            _ => Put::Latest,
        })
    }

    /// Whether a version of `key` at `time` is (or would be) its latest:
    /// none is later.
    pub fn is_latest(store: &StoreBuffer, key: &[u8], time: i64) -> Result<bool, StateError> {
        Ok(versions(store, key, None)?
            .last()
            .is_none_or(|(t, _)| time >= *t))
    }

    /// `key`'s row as of `time`.
    pub fn get_as_of(
        &self,
        store: &StoreBuffer,
        key: &[u8],
        time: i64,
    ) -> Result<Option<Vec<u8>>, StateError> {
        if time < self.horizon(Self::time(store)?) {
            let latest = versions(store, key, None)?.pop();
            return Ok(latest
                .filter(|(t, _)| *t <= time)
                .and_then(|(_, v)| row(&v)));
        }
        let upto = versions(store, key, time.checked_add(1))?;
        Ok(upto.last().and_then(|(_, v)| row(v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::memory::MemoryStore;

    fn store() -> StoreBuffer {
        StoreBuffer::new(Box::new(MemoryStore::new("users")))
    }

    fn text(v: Option<Vec<u8>>) -> Option<String> {
        v.map(|v| String::from_utf8(v).unwrap())
    }

    #[test]
    fn a_key_is_looked_up_as_of_a_time_within_the_history() {
        let v = Versioned { history: 100 };
        let mut s = store();
        assert_eq!(v.put(&mut s, b"u1", Some(b"A"), 10).unwrap(), Put::Latest);
        assert_eq!(v.put(&mut s, b"u1", Some(b"C"), 50).unwrap(), Put::Latest);
        assert_eq!(v.put(&mut s, b"u1", Some(b"B"), 30).unwrap(), Put::Earlier);
        assert_eq!(v.put(&mut s, b"u1", None, 70).unwrap(), Put::Latest);
        let at = |s: &StoreBuffer, t| text(v.get_as_of(s, b"u1", t).unwrap());
        assert_eq!(at(&s, 9), None);
        assert_eq!(at(&s, 10).as_deref(), Some("A"));
        assert_eq!(at(&s, 29).as_deref(), Some("A"));
        assert_eq!(at(&s, 30).as_deref(), Some("B"));
        assert_eq!(at(&s, 69).as_deref(), Some("C"));
        assert_eq!(at(&s, 70), None, "deleted at 70");
        assert_eq!(
            text(v.get_as_of(&s, b"u", 50).unwrap()),
            None,
            "another key"
        );
        assert_eq!(Versioned::time(&s).unwrap(), Some(70));
        // The same time again replaces that version.
        v.put(&mut s, b"u1", Some(b"B2"), 30).unwrap();
        assert_eq!(at(&s, 40).as_deref(), Some("B2"));
    }

    #[test]
    fn history_bounds_what_is_kept_and_what_is_answered() {
        let v = Versioned { history: 20 };
        let mut s = store();
        for (t, row) in [(10, "A"), (20, "B"), (30, "C"), (40, "D")] {
            v.put(&mut s, b"k", Some(row.as_bytes()), t).unwrap();
        }
        // Table time 40, horizon 20: B (valid at 20) is the first kept.
        let at = |s: &StoreBuffer, t| text(v.get_as_of(s, b"k", t).unwrap());
        assert_eq!(at(&s, 20).as_deref(), Some("B"));
        assert_eq!(at(&s, 35).as_deref(), Some("C"));
        assert_eq!(at(&s, 19), None, "beyond the history, and D is later");
        assert_eq!(at(&s, 45).as_deref(), Some("D"));
        let kept: Vec<i64> = (s.range(None, None).unwrap().iter())
            .filter(|(k, _)| k[0] == VERSION)
            .map(|(k, _)| version_time(k))
            .collect();
        assert_eq!(kept, [20, 30, 40], "A can no longer be reached");
        assert_eq!(v.put(&mut s, b"k", Some(b"old"), 19).unwrap(), Put::Expired);
        assert_eq!(
            v.put(&mut s, b"k", Some(b"edge"), 20).unwrap(),
            Put::Earlier
        );
        assert_eq!(at(&s, 25).as_deref(), Some("edge"));
        // Beyond the history the latest version still answers.
        v.put(&mut s, b"other", Some(b"X"), 100).unwrap();
        assert_eq!(
            at(&s, 60).as_deref(),
            Some("D"),
            "60 < 100 - 20, D is latest"
        );
        assert_eq!(at(&s, 35), None, "35 < 100 - 20, and D is later");
        assert_eq!(
            text(v.get_as_of(&s, b"other", 100).unwrap()).as_deref(),
            Some("X")
        );
        let mut longer = b"k".to_vec();
        longer.push(0);
        v.put(&mut s, &longer, Some(b"Y"), 100).unwrap();
        assert_eq!(at(&s, 100).as_deref(), Some("D"), "keys never interleave");
    }
}
