//! Host side of the call-batch frame: records in, per-record outcomes out.
//!
//! Encoding writes into a reused buffer; decoding slices the plugin's output
//! buffer into [`Bytes`] without copying payloads.

use std::ops::Range;

use bytes::Bytes;
use sluice_frame::{FrameError, Reader, Status, Writer};

use crate::record::Record;

/// Encodes `records` as an input frame into `buf` (cleared first).
pub fn encode<'a>(buf: Vec<u8>, records: impl ExactSizeIterator<Item = &'a Record>) -> Vec<u8> {
    let mut w = Writer::input(buf, records.len() as u32);
    for r in records {
        w.record(
            r.key.as_deref(),
            r.value.as_deref(),
            r.timestamp,
            r.headers.iter().map(|(n, v)| (n.as_str(), v.as_deref())),
        );
    }
    w.finish()
}

/// What a plugin did with one input record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It produced `records[range]` of the [`Decoded`] batch.
    Ok(Range<usize>),
    /// It rejected the record.
    Rejected {
        /// Machine-readable reason.
        code: String,
        /// Human-readable reason.
        message: String,
    },
}

/// A decoded output frame: all output records, flat, and one outcome per
/// input record pointing into them.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Output records of every input, in order.
    pub records: Vec<Record>,
    /// One per input record.
    pub outcomes: Vec<Outcome>,
}

/// Decodes an output frame that answers `inputs` input records. Output
/// records without a timestamp inherit their input record's.
pub fn decode(frame: Vec<u8>, inputs: &[&Record]) -> Result<Decoded, String> {
    let frame = Bytes::from(frame);
    let bad = |e: FrameError| e.to_string();
    let (mut r, count) = Reader::output(&frame).map_err(bad)?;
    if count as usize != inputs.len() {
        return Err(format!(
            "output frame has {count} statuses for {} input records",
            inputs.len()
        ));
    }
    let mut out = Decoded {
        records: Vec::with_capacity(inputs.len()),
        outcomes: Vec::with_capacity(inputs.len()),
    };
    let slice = |s: &[u8]| frame.slice_ref(s);
    for input in inputs {
        match r.status().map_err(bad)? {
            Status::Ok(n) => {
                let start = out.records.len();
                for _ in 0..n {
                    let rec = r.record().map_err(bad)?;
                    let mut headers = Vec::with_capacity(rec.header_count());
                    for h in rec.headers() {
                        let (name, value) = h.map_err(bad)?;
                        headers.push((name.to_owned(), value.map(slice)));
                    }
                    out.records.push(Record {
                        key: rec.key.map(slice),
                        value: rec.value.map(slice),
                        timestamp: rec.timestamp.or(input.timestamp),
                        headers,
                    });
                }
                out.outcomes.push(Outcome::Ok(start..out.records.len()));
            }
            Status::Rejected { code, message } => out.outcomes.push(Outcome::Rejected {
                code: code.to_owned(),
                message: message.to_owned(),
            }),
        }
    }
    if !r.is_empty() {
        return Err(format!("{} unread bytes after the last status", frame.len() - r.position()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_inherit_timestamps_and_share_the_frame() {
        let inputs = [
            Record::new(Some(b"a"), Some(b"1"), Some(100)),
            Record::new(Some(b"b"), Some(b"2"), Some(200)),
        ];
        let frame = encode(Vec::new(), inputs.iter());
        let (mut r, n) = Reader::input(&frame).unwrap();
        assert_eq!(n, 2);
        assert_eq!(r.record().unwrap().key, Some(&b"a"[..]));

        let mut w = Writer::output(Vec::new(), 2);
        w.begin_ok();
        w.record(Some(b"x"), Some(b"10"), None, [("h", Some(&b"v"[..]))]);
        w.record(Some(b"y"), Some(b"11"), Some(5), []);
        w.rejected("bad", "nope");
        let refs: Vec<&Record> = inputs.iter().collect();
        let d = decode(w.finish(), &refs).unwrap();
        assert_eq!(d.outcomes[0], Outcome::Ok(0..2));
        assert_eq!(d.records[0].timestamp, Some(100), "inherited");
        assert_eq!(d.records[1].timestamp, Some(5), "set by the plugin");
        assert_eq!(d.records[0].header("h"), Some(&b"v"[..]));
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
        assert!(decode(frame, &[&input]).unwrap_err().contains("0 statuses for 1"));
        let mut w = Writer::output(Vec::new(), 1);
        w.begin_ok();
        let mut frame = w.finish();
        frame.push(0);
        assert!(decode(frame, &[&input]).unwrap_err().contains("unread bytes"));
    }
}
