//! The foreign-key table–table join (inner, left): each row of the left
//! table L names a key of the right table R in a field of its JSON value
//! (`foreign-key = "a.b"`), and the result, a table keyed by L's keys, is
//! each left row with the right row it names.
//!
//! L and R need not be co-partitioned, so the join is a protocol between
//! L's tasks and R's through two topics of the pipeline's own (the parts
//! `topology::ForeignKeyPart` adds):
//!
//! 1. [`subscribe`], beside L: when a left row's foreign key changes, it
//!    unsubscribes the left key from the old one and subscribes it to the
//!    new one, keyed by the foreign key, so that the message reaches R's
//!    task for it. A subscription carries a hash of the left value it was
//!    made for.
//! 2. [`answer`], beside R: keeps R's rows and the subscriptions to each;
//!    answers a subscription with the right row it names, and a change of
//!    a right row to every subscription to it, keyed by the left key.
//! 3. [`result`], the join step, beside L: keeps the left rows; an answer
//!    whose hash is not the current left value's is stale (the left row
//!    changed since) and dropped; the others, and the left changes that
//!    need no answer, become the results.
//!
//! What comes out is the developer guide's table for foreign-key joins
//! (`tests/reference/src/joins/tables.rs`), row by row: not Kafka
//! Streams' code, which gives some results twice (KAFKA-16394) and, in an
//! inner join, ignores foreign keys going to or from null (KAFKA-16407,
//! KAFKA-16434). Per left update of key `k` (old value `o`, new `n`):
//!
//! | case | inner join | left join |
//! |---|---|---|
//! | `n` null | a tombstone if `o` had a foreign key | a tombstone if `o` existed |
//! | `n`'s foreign key null | a tombstone if `o` had a foreign key | `(n, null)` |
//! | `n`'s foreign key `f` | `(n, R[f])`; if `R[f]` is absent, a tombstone if `o` had a foreign key | `(n, R[f])`, `R[f]` possibly null |
//!
//! and per right update of key `f` to `v`: for each left row naming `f`,
//! in left-key order, `(row, v)`, or for an inner join a tombstone when
//! `v` is null. A result's time is the later of the left update's and the
//! right row's, or the right update's. A left value whose `foreign-key`
//! field is missing (or is not JSON, or is an object) is rejected (code
//! `no-join-key`): the join goes on as if it had not come.

pub mod answer;
pub mod result;
pub mod subscribe;

use sha2::{Digest, Sha256};

use super::table_key::{TableKey, table_key};
use crate::error::RunError;
use crate::operator::batch::StepOut;
use crate::record::{Record, RecordRef};
use crate::topology::GlobalKey;

/// A hash of a left value: what a subscription and its answers carry, by
/// which an answer for a value since replaced is told apart.
pub type Hash = [u8; 16];

/// The hash of left value `value`.
pub fn hash(value: &[u8]) -> Hash {
    let digest = Sha256::digest(value);
    digest[..16].try_into().expect("16 bytes")
}

/// What a subscription asks of the right side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// The left row no longer names this key: forget the subscription.
    Unsubscribe,
    /// Subscribe, and answer now, with no right row if there is none.
    Answer,
    /// Subscribe, and answer now only if there is a right row (an inner
    /// join of a left row that had no result).
    AnswerIfFound,
}

/// A subscription message: key the foreign key, value this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription<'a> {
    pub ask: Ask,
    /// The hash of the left value it is for.
    pub hash: Hash,
    /// The left key.
    pub left_key: &'a [u8],
}

impl<'a> Subscription<'a> {
    /// Its value: the ask, the hash, the left key.
    pub fn encode(&self) -> Vec<u8> {
        let ask = match self.ask {
            Ask::Unsubscribe => 0,
            Ask::Answer => 1,
            Ask::AnswerIfFound => 2,
        };
        [&[ask][..], &self.hash, self.left_key].concat()
    }

    /// A subscription's value, or what is wrong with it.
    pub fn decode(value: Option<&'a [u8]>) -> Result<Subscription<'a>, String> {
        let v = value.ok_or("a subscription without a value")?;
        if v.len() < 17 {
            return Err(format!("a subscription of {} bytes (at least 17)", v.len()));
        }
        let ask = match v[0] {
            0 => Ask::Unsubscribe,
            1 => Ask::Answer,
            2 => Ask::AnswerIfFound,
            other => return Err(format!("a subscription asking {other}")),
        };
        Ok(Subscription {
            ask,
            hash: v[1..17].try_into().expect("16 bytes"),
            left_key: &v[17..],
        })
    }
}

/// An answer (a response message): key the left key, value the hash of
/// the subscription it answers and the right row, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub hash: Hash,
    /// The right row (key, value, headers).
    pub right: Option<Record>,
}

impl Answer {
    /// Its value: the hash, then the right row as the join stores keep
    /// records, if any.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.hash.to_vec();
        if let Some(r) = &self.right {
            out.extend(super::stored::encode(r));
        }
        out
    }

    /// An answer's value, or what is wrong with it.
    pub fn decode(value: Option<&[u8]>) -> Result<Answer, String> {
        let v = value.ok_or("an answer without a value")?;
        if v.len() < 16 {
            return Err(format!("an answer of {} bytes (at least 16)", v.len()));
        }
        let right = match &v[16..] {
            [] => None,
            row => Some(super::stored::decode(row)),
        };
        Ok(Answer {
            hash: v[..16].try_into().expect("16 bytes"),
            right,
        })
    }
}

/// What a left value's foreign key is: a key, null (it names no row), or
/// the value cannot say (rejected).
pub fn foreign_key(field: &[String], value: Option<&[u8]>) -> Result<Option<Vec<u8>>, String> {
    let record = RecordRef {
        value,
        ..RecordRef::EMPTY
    };
    match table_key(&GlobalKey::Field(field.to_vec()), &record) {
        TableKey::Key(k) => Ok(Some(k)),
        TableKey::Null => Ok(None),
        TableKey::Missing(why) => Err(why.replace("`key-field`", "`foreign-key`")),
    }
}

/// A part's output: the messages it made, each with the batch record it
/// came from and the record it took.
pub fn emit(step: &str, messages: &[(usize, RecordRef<'_>, Record)]) -> Result<StepOut, RunError> {
    let outputs: Vec<_> = (messages.iter())
        .map(|(origin, input, m)| (*origin, *input, m.as_ref()))
        .collect();
    StepOut::of_records(step, &outputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_come_back_as_they_were_sent() {
        for ask in [Ask::Unsubscribe, Ask::Answer, Ask::AnswerIfFound] {
            let s = Subscription {
                ask,
                hash: hash(b"v"),
                left_key: b"k\0",
            };
            assert_eq!(Subscription::decode(Some(&s.encode())), Ok(s.clone()));
        }
        assert!(Subscription::decode(Some(b"short")).is_err());
        assert!(Subscription::decode(None).is_err());
        let mut right = Record::new(Some(b"f"), Some(b"{}"), None);
        right.headers.push(("h".into(), Some("x".into())));
        for right in [None, Some(right)] {
            let a = Answer {
                hash: hash(b"v"),
                right,
            };
            assert_eq!(Answer::decode(Some(&a.encode())), Ok(a.clone()));
        }
        assert_ne!(hash(b"a"), hash(b"b"));
    }

    #[test]
    fn a_foreign_key_is_a_field_or_null_or_missing() {
        let field = vec!["user".to_owned(), "id".to_owned()];
        let fk = |v: &str| foreign_key(&field, Some(v.as_bytes()));
        assert_eq!(fk(r#"{"user":{"id":"u1"}}"#), Ok(Some(b"u1".to_vec())));
        assert_eq!(fk(r#"{"user":{"id":7}}"#), Ok(Some(b"7".to_vec())));
        assert_eq!(fk(r#"{"user":{"id":null}}"#), Ok(None));
        assert_eq!(foreign_key(&field, None), Ok(None));
        let e = fk(r#"{"user":{}}"#).unwrap_err();
        assert!(
            e.contains("no field `user.id` (the join's `foreign-key`)"),
            "{e}"
        );
        assert!(fk("nope").unwrap_err().contains("not JSON"));
    }
}

#[cfg(test)]
mod join_tests;
