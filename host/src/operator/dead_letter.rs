//! Dead letters: a record a plugin rejected or trapped on, with the reason
//! and its origin in headers.
//!
//! Headers added (all values UTF-8):
//! - `sluice.error.kind`: `rejected`, `trap`, `late` (a windowed
//!   aggregation's record after its windows closed), or `refused` (an
//!   output its sink topic would refuse)
//! - `sluice.error.code`: the plugin's code (`trap` for traps;
//!   `record-too-large` or `timestamp-out-of-range` for refusals)
//! - `sluice.error`: the message
//! - `sluice.step`: the step whose plugin failed
//! - `sluice.plugin.digest`: SHA-256 of that plugin's component
//! - `sluice.topic`, `sluice.partition`, `sluice.offset`: where the source
//!   record that led here was read
//!
//! A letter its own topic would refuse is made to fit ([`fit`]): its
//! timestamp moves to a `sluice.timestamp` header, or its value is left
//! out and its size given in `sluice.value.dropped`.
//!
//! Headers the record already had keep their place, except those whose
//! names start with `sluice.` (a producer's, or an earlier dead letter's):
//! they are renamed `original.sluice.…`, so every `sluice.*` header of a
//! dead letter is the host's own.

use bytes::Bytes;

use crate::kafka::topic_limits::Refusal;
use crate::record::{Record, RecordRef};

/// Why a record is dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The plugin returned an error for it.
    Rejected,
    /// The plugin trapped on it.
    Trap,
    /// It came after every window it falls into had closed.
    Late,
    /// A step's output its sink topic would refuse.
    Refused,
    /// A record without a key, which a repartition topic cannot route.
    Unkeyed,
}

impl Kind {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Rejected => "rejected",
            Kind::Trap => "trap",
            Kind::Late => "late",
            Kind::Refused => "refused",
            Kind::Unkeyed => "unkeyed",
        }
    }
}

/// Where the source record came from.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// Source topic.
    pub topic: &'a str,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
}

/// Everything a dead letter says about its failure.
#[derive(Debug, Clone, Copy)]
pub struct Failure<'a> {
    /// Rejected or trapped.
    pub kind: Kind,
    /// The plugin's error code, or `trap`.
    pub code: &'a str,
    /// The message.
    pub message: &'a str,
    /// The step.
    pub step: &'a str,
    /// The plugin's digest.
    pub digest: &'a str,
}

/// The dead letter for `record`: same key, value and timestamp, plus the
/// failure headers.
pub fn letter(record: RecordRef<'_>, failure: &Failure<'_>, origin: &Origin<'_>) -> Record {
    let mut out = record.to_owned_record();
    for (name, _) in &mut out.headers {
        if name.starts_with("sluice.") {
            name.insert_str(0, "original.");
        }
    }
    let text = |s: &str| Some(Bytes::copy_from_slice(s.as_bytes()));
    out.headers.extend([
        ("sluice.error.kind".to_owned(), text(failure.kind.as_str())),
        ("sluice.error.code".to_owned(), text(failure.code)),
        ("sluice.error".to_owned(), text(failure.message)),
        ("sluice.step".to_owned(), text(failure.step)),
        ("sluice.plugin.digest".to_owned(), text(failure.digest)),
        ("sluice.topic".to_owned(), text(origin.topic)),
        (
            "sluice.partition".to_owned(),
            text(&origin.partition.to_string()),
        ),
        ("sluice.offset".to_owned(), text(&origin.offset.to_string())),
    ]);
    out
}

/// Makes `letter` fit the dead-letter topic that would refuse it for
/// `refusal`: a timestamp out of range moves to a `sluice.timestamp`
/// header (the broker stamps the letter); a value too large is left out,
/// its size in a `sluice.value.dropped` header. Whether it fits then is
/// for the caller to check again.
pub fn fit(letter: &mut Record, refusal: &Refusal) {
    let text = |s: String| Some(Bytes::from(s.into_bytes()));
    if refusal.is_timestamp() {
        if let Some(ts) = letter.timestamp.take() {
            letter
                .headers
                .push(("sluice.timestamp".to_owned(), text(ts.to_string())));
        }
    } else if let Some(value) = letter.value.take() {
        letter.headers.push((
            "sluice.value.dropped".to_owned(),
            text(format!("{} bytes", value.len())),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letter_keeps_the_record_and_adds_reason_and_origin() {
        let mut rec = Record::new(Some(b"k"), Some(b"v"), Some(7));
        // A producer's own `sluice.*` headers, in front of the real ones.
        rec.headers.extend([
            (
                "sluice.error".to_owned(),
                Some(Bytes::from_static(b"forged")),
            ),
            ("trace".to_owned(), Some(Bytes::from_static(b"t1"))),
        ]);
        let l = letter(
            rec.as_ref(),
            &Failure {
                kind: Kind::Trap,
                code: "trap",
                message: "unreachable",
                step: "s",
                digest: "ab",
            },
            &Origin {
                topic: "orders",
                partition: 2,
                offset: 41,
            },
        );
        assert_eq!(
            (l.key.as_deref(), l.value.as_deref(), l.timestamp),
            (Some(&b"k"[..]), Some(&b"v"[..]), Some(7))
        );
        assert_eq!(l.header("sluice.error.kind"), Some(&b"trap"[..]));
        assert_eq!(l.header("sluice.error"), Some(&b"unreachable"[..]));
        assert_eq!(l.header("sluice.topic"), Some(&b"orders"[..]));
        assert_eq!(l.header("sluice.partition"), Some(&b"2"[..]));
        assert_eq!(l.header("sluice.offset"), Some(&b"41"[..]));
        let names: Vec<&str> = l.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names.iter().filter(|n| **n == "sluice.error").count(),
            1,
            "{names:?}"
        );
        assert_eq!(l.header("original.sluice.error"), Some(&b"forged"[..]));
        assert_eq!(l.header("trace"), Some(&b"t1"[..]));
    }

    #[test]
    fn a_letter_its_topic_would_refuse_is_made_to_fit() {
        let mut l = Record::new(Some(b"k"), Some(&[1; 2_000_000]), Some(i64::MAX / 2));
        let too_far = Refusal::Timestamp {
            topic: "dlq".into(),
            timestamp: i64::MAX / 2,
            now: 0,
            setting: "message.timestamp.after.max.ms",
            limit_ms: 1,
        };
        fit(&mut l, &too_far);
        assert_eq!(l.timestamp, None);
        assert_eq!(
            l.header("sluice.timestamp"),
            Some((i64::MAX / 2).to_string().as_bytes())
        );
        assert_eq!(l.value.as_ref().map(|v| v.len()), Some(2_000_000));
        let too_large = Refusal::TooLarge {
            topic: "dlq".into(),
            size: 2_000_100,
            limit: 1_048_588,
            setting: "the topic's max.message.bytes",
        };
        fit(&mut l, &too_large);
        assert_eq!(l.value, None);
        assert_eq!(
            l.header("sluice.value.dropped"),
            Some(&b"2000000 bytes"[..])
        );
        assert_eq!(l.key.as_deref(), Some(&b"k"[..]));
    }
}
