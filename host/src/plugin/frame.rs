//! Host side of the call-batch frame: records in, per-record outcomes out.
//!
//! Encoding writes into a reused buffer. Decoding validates the plugin's
//! output frame once and keeps it whole: output records are read in place
//! (as [`RecordRef`]s) when they are passed on or produced, so no payload is
//! copied and no reference count is touched per record.

use std::ops::Range;

use sluice_frame::{FrameError, Reader, Status, Writer};

use crate::record::{Record, RecordRef};

/// Encodes `records` as an input frame into `buf` (cleared first).
pub fn encode<'a>(buf: Vec<u8>, records: impl ExactSizeIterator<Item = RecordRef<'a>>) -> Vec<u8> {
    let mut w = Writer::input(buf, records.len() as u32);
    for r in records {
        w.record(r.key, r.value, r.timestamp, r.headers.iter());
    }
    w.finish()
}

/// What a plugin did with one input record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It produced the records `range` of the [`Decoded`] batch.
    Ok(Range<usize>),
    /// It rejected the record.
    Rejected {
        /// Machine-readable reason.
        code: String,
        /// Human-readable reason.
        message: String,
    },
}

/// A validated output frame: one outcome per input record, and the output
/// records, read in place.
#[derive(Debug, Default)]
pub struct Decoded {
    frame: Vec<u8>,
    /// Byte offset of each output record, and its timestamp (the input
    /// record's where the plugin set none).
    records: Vec<(u32, Option<i64>)>,
    /// One per input record.
    pub outcomes: Vec<Outcome>,
}

impl Decoded {
    /// Output record `i`.
    pub fn record(&self, i: usize) -> RecordRef<'_> {
        let (offset, timestamp) = self.records[i];
        let r = Reader::at(&self.frame, offset as usize)
            .record()
            .expect("validated when decoded");
        RecordRef::framed(r, timestamp)
    }

    /// How many output records there are.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True if there are no output records.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// Validates an output frame that answers `inputs`. Output records without
/// a timestamp inherit their input record's.
pub fn decode(frame: Vec<u8>, inputs: &[RecordRef<'_>]) -> Result<Decoded, String> {
    let bad = |e: FrameError| e.to_string();
    let (records, outcomes) = {
        let (mut r, count) = Reader::output(&frame).map_err(bad)?;
        if count as usize != inputs.len() {
            return Err(format!(
                "output frame has {count} statuses for {} input records",
                inputs.len()
            ));
        }
        let mut records = Vec::with_capacity(inputs.len());
        let mut outcomes = Vec::with_capacity(inputs.len());
        for input in inputs {
            match r.status().map_err(bad)? {
                Status::Ok(n) => {
                    let start = records.len();
                    for _ in 0..n {
                        let at = r.position() as u32;
                        let rec = r.record().map_err(bad)?;
                        records.push((at, rec.timestamp.or(input.timestamp)));
                    }
                    outcomes.push(Outcome::Ok(start..records.len()));
                }
                Status::Rejected { code, message } => outcomes.push(Outcome::Rejected {
                    code: code.to_owned(),
                    message: message.to_owned(),
                }),
            }
        }
        if !r.is_empty() {
            return Err(format!(
                "{} unread bytes after the last status",
                frame.len() - r.position()
            ));
        }
        (records, outcomes)
    };
    Ok(Decoded {
        frame,
        records,
        outcomes,
    })
}

/// Decodes an output frame into owned records (tests and tools).
pub fn decode_owned(
    frame: Vec<u8>,
    inputs: &[RecordRef<'_>],
) -> Result<(Vec<Record>, Vec<Outcome>), String> {
    let d = decode(frame, inputs)?;
    let records = (0..d.len())
        .map(|i| d.record(i).to_owned_record())
        .collect();
    Ok((records, d.outcomes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_inherit_timestamps_and_are_read_in_place() {
        let inputs = [
            Record::new(Some(b"a"), Some(b"1"), Some(100)),
            Record::new(Some(b"b"), Some(b"2"), Some(200)),
        ];
        let refs: Vec<RecordRef<'_>> = inputs.iter().map(Record::as_ref).collect();
        let frame = encode(Vec::new(), refs.iter().copied());
        let (mut r, n) = Reader::input(&frame).unwrap();
        assert_eq!(n, 2);
        assert_eq!(r.record().unwrap().key, Some(&b"a"[..]));

        let mut w = Writer::output(Vec::new(), 2);
        w.begin_ok();
        w.record(Some(b"x"), Some(b"10"), None, [("h", Some(&b"v"[..]))]);
        w.record(Some(b"y"), Some(b"11"), Some(5), []);
        w.rejected("bad", "nope");
        let d = decode(w.finish(), &refs).unwrap();
        assert_eq!(d.outcomes[0], Outcome::Ok(0..2));
        assert_eq!(d.record(0).timestamp, Some(100), "inherited");
        assert_eq!(d.record(1).timestamp, Some(5), "set by the plugin");
        assert_eq!(
            d.record(0).headers.iter().collect::<Vec<_>>(),
            vec![("h", Some(&b"v"[..]))]
        );
        assert_eq!(d.record(1).value, Some(&b"11"[..]));
        assert_eq!(
            d.outcomes[1],
            Outcome::Rejected {
                code: "bad".into(),
                message: "nope".into()
            }
        );
    }

    #[test]
    fn wrong_status_count_and_trailing_bytes_are_protocol_errors() {
        let input = Record::default();
        let frame = Writer::output(Vec::new(), 0).finish();
        assert!(
            decode(frame, &[input.as_ref()])
                .unwrap_err()
                .contains("0 statuses for 1")
        );
        let mut w = Writer::output(Vec::new(), 1);
        w.begin_ok();
        let mut frame = w.finish();
        frame.push(0);
        assert!(
            decode(frame, &[input.as_ref()])
                .unwrap_err()
                .contains("unread bytes")
        );
    }
}
