//! The host's record types.
//!
//! - [`Record`]: an owned record (read from Kafka, or built by the host).
//! - [`RecordRef`]: a borrowed view of either an owned record or a record
//!   inside a plugin's output frame; what is encoded for the next step and
//!   what is produced to Kafka.
//! - [`InputRecord`]: a record read from a source topic, with where it
//!   came from and who set its timestamp ([`TimestampKind`]).

use std::sync::Arc;

use bytes::Bytes;

/// One owned Kafka record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// The key; `None` is a null key.
    pub key: Option<Bytes>,
    /// The value; `None` is a tombstone.
    pub value: Option<Bytes>,
    /// Event time in UTC milliseconds; `None` when the broker gave none.
    pub timestamp: Option<i64>,
    /// Headers in order; names may repeat.
    pub headers: Vec<(String, Option<Bytes>)>,
}

impl Record {
    /// A record with a key and a value.
    pub fn new(key: Option<&[u8]>, value: Option<&[u8]>, timestamp: Option<i64>) -> Record {
        Record {
            key: key.map(Bytes::copy_from_slice),
            value: value.map(Bytes::copy_from_slice),
            timestamp,
            headers: Vec::new(),
        }
    }

    /// The value of the last header named `name`.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    /// A borrowed view.
    pub fn as_ref(&self) -> RecordRef<'_> {
        RecordRef {
            key: self.key.as_deref(),
            value: self.value.as_deref(),
            timestamp: self.timestamp,
            headers: HeadersRef::Owned(&self.headers),
        }
    }
}

/// A borrowed record.
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    /// The key.
    pub key: Option<&'a [u8]>,
    /// The value.
    pub value: Option<&'a [u8]>,
    /// Event time (ms).
    pub timestamp: Option<i64>,
    /// The headers.
    pub headers: HeadersRef<'a>,
}

impl<'a> RecordRef<'a> {
    /// A record read from a frame, with `timestamp` as its time (an output
    /// frame's record may keep its input's).
    pub fn framed(r: sluice_frame::RecordRef<'a>, timestamp: Option<i64>) -> RecordRef<'a> {
        RecordRef {
            key: r.key,
            value: r.value,
            timestamp,
            headers: HeadersRef::Framed(r),
        }
    }
}

impl RecordRef<'_> {
    /// No key, no value, no time, no headers.
    pub const EMPTY: RecordRef<'static> = RecordRef {
        key: None,
        value: None,
        timestamp: None,
        headers: HeadersRef::Owned(&[]),
    };
}

/// Headers of a [`RecordRef`], wherever they live.
#[derive(Debug, Clone, Copy)]
pub enum HeadersRef<'a> {
    /// An owned record's header list.
    Owned(&'a [(String, Option<Bytes>)]),
    /// The headers of a record in a validated frame.
    Framed(sluice_frame::RecordRef<'a>),
}

impl<'a> HeadersRef<'a> {
    /// `(name, value)` pairs, in order.
    pub fn iter(&self) -> HeaderIter<'a> {
        match *self {
            HeadersRef::Owned(hs) => HeaderIter::Owned(hs.iter()),
            HeadersRef::Framed(r) => HeaderIter::Framed(r.headers()),
        }
    }
}

/// Iterator over [`HeadersRef`].
#[derive(Debug, Clone)]
pub enum HeaderIter<'a> {
    /// Over an owned list.
    Owned(std::slice::Iter<'a, (String, Option<Bytes>)>),
    /// Over a frame.
    Framed(sluice_frame::Headers<'a>),
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = (&'a str, Option<&'a [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            HeaderIter::Owned(it) => it.next().map(|(n, v)| (n.as_str(), v.as_deref())),
            HeaderIter::Framed(it) => it
                .next()
                .map(|h| h.expect("headers were validated when the frame was decoded")),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            HeaderIter::Owned(it) => it.size_hint(),
            HeaderIter::Framed(it) => it.size_hint(),
        }
    }
}

impl ExactSizeIterator for HeaderIter<'_> {}

impl RecordRef<'_> {
    /// Copies the record out.
    pub fn to_owned_record(&self) -> Record {
        Record {
            key: self.key.map(Bytes::copy_from_slice),
            value: self.value.map(Bytes::copy_from_slice),
            timestamp: self.timestamp,
            headers: self
                .headers
                .iter()
                .map(|(n, v)| (n.to_owned(), v.map(Bytes::copy_from_slice)))
                .collect(),
        }
    }
}

/// The broker's kind of record timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampKind {
    /// None given.
    NotAvailable,
    /// Set by the producer.
    CreateTime,
    /// Set by the broker when it appended the record.
    LogAppendTime,
}

/// A record read from a source topic.
#[derive(Debug, Clone)]
pub struct InputRecord {
    /// Source topic.
    pub topic: Arc<str>,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// Who set `record.timestamp`: the producer or the broker.
    pub timestamp_kind: TimestampKind,
    /// The record.
    pub record: Record,
    /// Set for a record of a repartition topic: the input record it was
    /// made from, upstream (or its own place, when its writer gave no
    /// origin: [`Origin::of_repartitioned`]). Stores mark what they applied
    /// by it, so a record written twice (an upstream task that crashed
    /// before its commit and processed its input again) is applied once.
    pub origin: Option<Origin>,
}

impl InputRecord {
    /// Where a store marks this record applied: its origin upstream if it
    /// came through a repartition topic, else its own place.
    pub fn applied_at(&self) -> (&Arc<str>, i32, i64) {
        match &self.origin {
            Some(o) => (&o.topic, o.partition, o.position),
            None => (&self.topic, self.partition, self.offset),
        }
    }
}

/// The header that carries a repartitioned record's [`Origin`].
pub const ORIGIN_HEADER: &str = "sluice.origin";

/// The most records one input record may send to one repartition topic:
/// the position of each is its input's offset times this, plus its index.
pub const OUTPUTS_PER_ORIGIN: i64 = 1 << 16;

/// Where a repartitioned record was made: an input record of the task
/// that wrote it (topic, partition) and a position that orders its
/// outputs (`offset × OUTPUTS_PER_ORIGIN + index`). It crosses the topic as
/// the header `sluice.origin = "<partition>/<position>/<topic>"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The upstream input record's topic.
    pub topic: Arc<str>,
    /// Its partition.
    pub partition: i32,
    /// Its offset × [`OUTPUTS_PER_ORIGIN`] + the output's index.
    pub position: i64,
}

impl Origin {
    /// The header value of output `index` of input record `offset` of
    /// `topic`/`partition`; `None` past [`OUTPUTS_PER_ORIGIN`] outputs.
    pub fn header(topic: &str, partition: i32, offset: i64, index: i64) -> Option<String> {
        (index < OUTPUTS_PER_ORIGIN).then(|| {
            format!(
                "{partition}/{}/{topic}",
                offset * OUTPUTS_PER_ORIGIN + index
            )
        })
    }

    /// The origin of a record read from a repartition topic at `topic`,
    /// `partition`, `offset`: its origin header, taken out; or, without
    /// one (its writer reads two topics: `Topology::writes_origins`), its
    /// own place, by which it is marked applied.
    pub fn of_repartitioned(
        record: &mut Record,
        (topic, partition, offset): (&Arc<str>, i32, i64),
    ) -> Origin {
        Origin::take(record).unwrap_or_else(|| Origin {
            topic: Arc::clone(topic),
            partition,
            position: offset,
        })
    }

    /// Takes the origin header out of a record read from a repartition
    /// topic. A record without one (or with one that does not parse)
    /// has none, and is marked applied by its own place.
    pub fn take(record: &mut Record) -> Option<Origin> {
        let i = record
            .headers
            .iter()
            .rposition(|(n, _)| n == ORIGIN_HEADER)?;
        let (_, value) = record.headers.remove(i);
        let text = std::str::from_utf8(value.as_deref()?).ok()?;
        let mut parts = text.splitn(3, '/');
        let partition = parts.next()?.parse().ok()?;
        let position = parts.next()?.parse().ok()?;
        let topic = parts.next().filter(|t| !t.is_empty())?;
        Some(Origin {
            topic: Arc::from(topic),
            partition,
            position,
        })
    }
}

#[cfg(test)]
mod origin_tests {
    use super::*;

    #[test]
    fn an_origin_crosses_as_a_header_and_is_taken_out() {
        let value = Origin::header("orders", 2, 41, 3).unwrap();
        let mut r = Record::new(Some(b"k"), Some(b"v"), Some(1));
        r.headers.push(("a".into(), None));
        r.headers
            .push((ORIGIN_HEADER.into(), Some(Bytes::from(value))));
        let origin = Origin::take(&mut r).unwrap();
        assert_eq!(
            origin,
            Origin {
                topic: Arc::from("orders"),
                partition: 2,
                position: 41 * OUTPUTS_PER_ORIGIN + 3
            }
        );
        assert_eq!(
            r.headers,
            vec![("a".to_owned(), None)],
            "taken out; the others kept"
        );
        assert_eq!(Origin::take(&mut r), None);
        assert_eq!(Origin::header("t", 0, 0, OUTPUTS_PER_ORIGIN), None);
        for bad in ["", "1/2", "x/2/t", "1/y/t", "1/2/"] {
            let mut r = Record::default();
            r.headers
                .push((ORIGIN_HEADER.into(), Some(Bytes::from(bad))));
            assert_eq!(Origin::take(&mut r), None, "{bad:?}");
            assert!(r.headers.is_empty());
        }
    }
}
