//! The call-batch frame: how records cross the Sluice plugin boundary.
//!
//! A plugin call passes one byte buffer in and one out, instead of a
//! `list<record>`, because lifting every field of every record through the
//! canonical ABI costs far more than the records' own bytes. Both sides
//! decode the frame in place, without copying or allocating per record.
//!
//! - [`Writer`] appends input or output frames to a `Vec<u8>`.
//! - [`Reader`] walks a frame and hands out borrowed [`RecordRef`]s.
//!
//! The byte layout is specified in `wit/FRAME.md`; all integers are
//! little-endian.
//!
//! # Examples
//! ```
//! use sluice_frame::{Reader, Status, Writer};
//!
//! let mut w = Writer::input(Vec::new(), 1);
//! w.record(Some(b"k"), Some(b"v"), Some(7), [("h", Some(&b"x"[..]))]);
//! let input = w.finish();
//!
//! let (mut r, count) = Reader::input(&input).unwrap();
//! assert_eq!(count, 1);
//! let rec = r.record().unwrap();
//! assert_eq!(rec.value, Some(&b"v"[..]));
//! assert_eq!(rec.headers().next(), Some(Ok(("h", Some(&b"x"[..])))));
//!
//! let mut w = Writer::output(Vec::new(), 1);
//! w.rejected("bad-json", "expected value");
//! let output = w.finish();
//! let (mut r, _) = Reader::output(&output).unwrap();
//! assert!(matches!(r.status().unwrap(), Status::Rejected { code: "bad-json", .. }));
//! ```
#![no_std]

extern crate alloc;

use alloc::vec::Vec;
use core::fmt;

/// The frame format version written in the first byte of every frame.
pub const VERSION: u8 = 1;

/// A length of `u32::MAX` marks an absent (null) key, value or header value.
const NULL: u32 = u32::MAX;

const FLAG_TIMESTAMP: u8 = 1;
const STATUS_OK: u8 = 0;
const STATUS_REJECTED: u8 = 1;

/// Why a frame could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The frame ended in the middle of a field.
    Truncated {
        /// Byte offset at which more input was needed.
        at: usize,
    },
    /// The first byte names a frame version this reader does not know.
    Version(u8),
    /// A header name was not valid UTF-8.
    Utf8 {
        /// Byte offset of the offending string.
        at: usize,
    },
    /// A status byte was neither ok nor rejected.
    Status(u8),
    /// A record's flags byte set bits this version does not define (only
    /// bit 0, the timestamp, is).
    Flags {
        /// Byte offset of the flags byte.
        at: usize,
        /// The byte.
        flags: u8,
    },
    /// A joiner call's `sides` byte named no side, or set bits other than
    /// the two sides.
    Sides {
        /// The pair it belongs to.
        pair: usize,
        /// The byte.
        sides: u8,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Truncated { at } => write!(f, "frame truncated at byte {at}"),
            FrameError::Version(v) => {
                write!(f, "frame version {v} is not supported (expected {VERSION})")
            }
            FrameError::Utf8 { at } => write!(f, "string at byte {at} is not valid UTF-8"),
            FrameError::Status(s) => write!(f, "unknown record status {s}"),
            FrameError::Flags { at, flags } => write!(
                f,
                "record flags {flags:#04x} at byte {at} set reserved bits (only bit 0, the timestamp, is defined)"
            ),
            FrameError::Sides { pair, sides } => write!(
                f,
                "sides {sides:#04x} of pair {pair} are not 1 (left), 2 (right) or 3 (both)"
            ),
        }
    }
}

impl core::error::Error for FrameError {}

/// Writes a frame into a buffer it owns; [`Writer::finish`] returns it.
///
/// An input frame is a sequence of records; an output frame is a sequence
/// of statuses, each either a group of records or a rejection. The count
/// given to [`Writer::input`] / [`Writer::output`] must match what is written.
#[derive(Debug)]
pub struct Writer {
    buf: Vec<u8>,
    /// Where the record count of the open `ok` group sits, if one is open.
    open_group: Option<(usize, u32)>,
}

impl Writer {
    /// Starts an input frame of `count` records in `buf`, which is cleared
    /// first (pass a used buffer to reuse its allocation).
    #[inline]
    pub fn input(mut buf: Vec<u8>, count: u32) -> Self {
        buf.clear();
        buf.push(VERSION);
        buf.extend_from_slice(&count.to_le_bytes());
        Writer {
            buf,
            open_group: None,
        }
    }

    /// Starts an output frame of `count` statuses.
    #[inline]
    pub fn output(buf: Vec<u8>, count: u32) -> Self {
        Self::input(buf, count)
    }

    /// Opens the `ok` status of one input record; records written until the
    /// next status belong to it.
    #[inline]
    pub fn begin_ok(&mut self) {
        self.close_group();
        self.buf.push(STATUS_OK);
        let at = self.buf.len();
        self.buf.extend_from_slice(&0u32.to_le_bytes());
        self.open_group = Some((at, 0));
    }

    /// Writes the `rejected` status of one input record.
    #[inline]
    pub fn rejected(&mut self, code: &str, message: &str) {
        self.close_group();
        self.buf.push(STATUS_REJECTED);
        put_bytes(&mut self.buf, Some(code.as_bytes()));
        put_bytes(&mut self.buf, Some(message.as_bytes()));
    }

    /// Discards everything written since the open `ok` status began,
    /// including the status itself, so that a rejection can replace it.
    #[inline]
    pub fn abandon_ok(&mut self) {
        if let Some((at, _)) = self.open_group.take() {
            self.buf.truncate(at - 1);
        }
    }

    /// Writes one record. In an output frame a `None` timestamp means
    /// "keep the input record's timestamp".
    #[inline]
    pub fn record<'h, H>(
        &mut self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp: Option<i64>,
        headers: H,
    ) where
        H: IntoIterator<Item = (&'h str, Option<&'h [u8]>)>,
        H::IntoIter: ExactSizeIterator,
    {
        if let Some((_, n)) = &mut self.open_group {
            *n += 1;
        }
        let buf = &mut self.buf;
        buf.extend_from_slice(&timestamp.unwrap_or(0).to_le_bytes());
        buf.push(if timestamp.is_some() {
            FLAG_TIMESTAMP
        } else {
            0
        });
        put_bytes(buf, key);
        put_bytes(buf, value);
        let headers = headers.into_iter();
        buf.extend_from_slice(&(headers.len() as u32).to_le_bytes());
        for (name, value) in headers {
            put_bytes(buf, Some(name.as_bytes()));
            put_bytes(buf, value);
        }
    }

    /// Finishes the frame (closes the last `ok` group) and returns it.
    #[inline]
    pub fn finish(mut self) -> Vec<u8> {
        self.close_group();
        self.buf
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True if nothing has been written (not even the frame header).
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    #[inline]
    fn close_group(&mut self) {
        if let Some((at, n)) = self.open_group.take() {
            self.buf[at..at + 4].copy_from_slice(&n.to_le_bytes());
        }
    }
}

#[inline]
fn put_bytes(buf: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(b) => {
            buf.extend_from_slice(&(b.len() as u32).to_le_bytes());
            buf.extend_from_slice(b);
        }
        None => buf.extend_from_slice(&NULL.to_le_bytes()),
    }
}

/// One record, borrowed from a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// The record key, `None` for a null key.
    pub key: Option<&'a [u8]>,
    /// The record value, `None` for a tombstone.
    pub value: Option<&'a [u8]>,
    /// Event time in UTC milliseconds; in an output frame `None` means
    /// "inherit the input record's timestamp".
    pub timestamp: Option<i64>,
    header_count: u32,
    header_bytes: &'a [u8],
    header_offset: usize,
}

impl<'a> RecordRef<'a> {
    /// The record's headers, in order, decoded lazily.
    #[inline]
    pub fn headers(&self) -> Headers<'a> {
        Headers {
            reader: Reader {
                buf: self.header_bytes,
                pos: 0,
                base: self.header_offset,
            },
            left: self.header_count,
        }
    }

    /// How many headers the record carries.
    #[inline]
    pub fn header_count(&self) -> usize {
        self.header_count as usize
    }
}

/// An iterator over a record's headers: `(name, value)` pairs.
#[derive(Debug, Clone)]
pub struct Headers<'a> {
    reader: Reader<'a>,
    left: u32,
}

impl<'a> Iterator for Headers<'a> {
    type Item = Result<(&'a str, Option<&'a [u8]>), FrameError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        Some(
            self.reader
                .string()
                .and_then(|name| Ok((name, self.reader.bytes()?))),
        )
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left as usize, Some(self.left as usize))
    }
}

/// The status of one input record in an output frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status<'a> {
    /// The record was processed; this many output records follow.
    Ok(u32),
    /// The plugin rejected the record.
    Rejected {
        /// Machine-readable reason.
        code: &'a str,
        /// Human-readable reason.
        message: &'a str,
    },
}

/// Which records of a joined pair are present: one byte per pair of a
/// joiner call (`joiner.join`'s `sides`), bit 0 for the left record, bit 1
/// for the right; at least one is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sides {
    /// The left record is present.
    pub left: bool,
    /// The right record is present.
    pub right: bool,
}

impl Sides {
    const LEFT: u8 = 1;
    const RIGHT: u8 = 2;

    /// The byte of these sides.
    #[inline]
    pub fn to_byte(self) -> u8 {
        (if self.left { Self::LEFT } else { 0 }) | (if self.right { Self::RIGHT } else { 0 })
    }

    /// The sides of pair `pair` from its byte; a byte that names no side,
    /// or sets other bits, is an error.
    #[inline]
    pub fn from_byte(sides: u8, pair: usize) -> Result<Sides, FrameError> {
        if sides == 0 || sides & !(Self::LEFT | Self::RIGHT) != 0 {
            return Err(FrameError::Sides { pair, sides });
        }
        Ok(Sides {
            left: sides & Self::LEFT != 0,
            right: sides & Self::RIGHT != 0,
        })
    }
}

/// Reads a frame in place.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf` within the whole frame, for error messages.
    base: usize,
}

impl<'a> Reader<'a> {
    /// Opens an input frame; returns the reader and the record count.
    #[inline]
    pub fn input(buf: &'a [u8]) -> Result<(Self, u32), FrameError> {
        let mut r = Reader {
            buf,
            pos: 0,
            base: 0,
        };
        let version = r.take(1)?[0];
        if version != VERSION {
            return Err(FrameError::Version(version));
        }
        let count = r.u32()?;
        Ok((r, count))
    }

    /// A reader positioned at byte `pos` of a frame, for re-reading a record
    /// whose position [`Reader::position`] gave earlier.
    #[inline]
    pub fn at(buf: &'a [u8], pos: usize) -> Self {
        Reader { buf, pos, base: 0 }
    }

    /// Opens an output frame; returns the reader and the status count.
    #[inline]
    pub fn output(buf: &'a [u8]) -> Result<(Self, u32), FrameError> {
        Self::input(buf)
    }

    /// Byte offset of the next field, from the start of the frame.
    #[inline]
    pub fn position(&self) -> usize {
        self.base + self.pos
    }

    /// Reads the next record.
    #[inline]
    pub fn record(&mut self) -> Result<RecordRef<'a>, FrameError> {
        let ts = i64::from_le_bytes(self.array()?);
        let at = self.position();
        let flags = self.take(1)?[0];
        if flags & !FLAG_TIMESTAMP != 0 {
            return Err(FrameError::Flags { at, flags });
        }
        let key = self.bytes()?;
        let value = self.bytes()?;
        let header_count = self.u32()?;
        let start = self.pos;
        for _ in 0..header_count {
            self.string()?;
            self.bytes()?;
        }
        Ok(RecordRef {
            key,
            value,
            timestamp: (flags & FLAG_TIMESTAMP != 0).then_some(ts),
            header_count,
            header_bytes: &self.buf[start..self.pos],
            header_offset: self.base + start,
        })
    }

    /// Reads the next status of an output frame. After `Status::Ok(n)`,
    /// read `n` records before the next status.
    #[inline]
    pub fn status(&mut self) -> Result<Status<'a>, FrameError> {
        match self.take(1)?[0] {
            STATUS_OK => Ok(Status::Ok(self.u32()?)),
            STATUS_REJECTED => Ok(Status::Rejected {
                code: self.string()?,
                message: self.string()?,
            }),
            other => Err(FrameError::Status(other)),
        }
    }

    /// True when every byte of the frame has been read.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        // A wrapped end is below `pos`, which `get` refuses like any other
        // out-of-range end.
        let end = self.pos.wrapping_add(n);
        match self.buf.get(self.pos..end) {
            Some(out) => {
                self.pos = end;
                Ok(out)
            }
            None => Err(FrameError::Truncated {
                at: self.base + self.pos,
            }),
        }
    }

    #[inline]
    fn array<const N: usize>(&mut self) -> Result<[u8; N], FrameError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    #[inline]
    fn u32(&mut self) -> Result<u32, FrameError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    #[inline]
    fn bytes(&mut self) -> Result<Option<&'a [u8]>, FrameError> {
        match self.u32()? {
            NULL => Ok(None),
            len => self.take(len as usize).map(Some),
        }
    }

    #[inline]
    fn string(&mut self) -> Result<&'a str, FrameError> {
        let at = self.position();
        let bytes = self.bytes()?.unwrap_or_default();
        core::str::from_utf8(bytes).map_err(|_| FrameError::Utf8 { at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn input_round_trip_keeps_nulls_and_headers() {
        let mut w = Writer::input(Vec::new(), 2);
        w.record(None, Some(b"v1"), Some(-5), []);
        w.record(
            Some(b"k2"),
            None,
            None,
            [("a", Some(&b"1"[..])), ("b", None)],
        );
        let buf = w.finish();
        let (mut r, n) = Reader::input(&buf).unwrap();
        assert_eq!(n, 2);
        let a = r.record().unwrap();
        assert_eq!(
            (a.key, a.value, a.timestamp),
            (None, Some(&b"v1"[..]), Some(-5))
        );
        assert_eq!(a.headers().count(), 0);
        let b = r.record().unwrap();
        assert_eq!(
            (b.key, b.value, b.timestamp),
            (Some(&b"k2"[..]), None, None)
        );
        let hs: Vec<_> = b.headers().map(Result::unwrap).collect();
        assert_eq!(hs, vec![("a", Some(&b"1"[..])), ("b", None)]);
        assert!(r.is_empty());
    }

    #[test]
    fn output_groups_count_their_records_and_abandon_rewinds() {
        let mut w = Writer::output(Vec::new(), 3);
        w.begin_ok();
        w.record(Some(b"x"), Some(b"1"), None, []);
        w.record(Some(b"y"), Some(b"2"), Some(9), []);
        w.begin_ok();
        w.record(Some(b"z"), Some(b"3"), None, []);
        w.abandon_ok();
        w.rejected("nope", "bad input");
        w.begin_ok();
        let buf = w.finish();
        let (mut r, n) = Reader::output(&buf).unwrap();
        assert_eq!(n, 3);
        assert_eq!(r.status().unwrap(), Status::Ok(2));
        assert_eq!(r.record().unwrap().key, Some(&b"x"[..]));
        assert_eq!(r.record().unwrap().timestamp, Some(9));
        assert_eq!(
            r.status().unwrap(),
            Status::Rejected {
                code: "nope",
                message: "bad input"
            }
        );
        assert_eq!(r.status().unwrap(), Status::Ok(0));
        assert!(r.is_empty());
    }

    #[test]
    fn sides_round_trip_and_refuse_no_side_or_other_bits() {
        for (left, right) in [(true, false), (false, true), (true, true)] {
            let sides = Sides { left, right };
            assert_eq!(Sides::from_byte(sides.to_byte(), 0), Ok(sides));
        }
        assert_eq!(
            Sides {
                left: true,
                right: false
            }
            .to_byte(),
            1
        );
        assert_eq!(
            Sides {
                left: false,
                right: true
            }
            .to_byte(),
            2
        );
        for bad in [0, 4, 5, 0x83] {
            assert_eq!(
                Sides::from_byte(bad, 7),
                Err(FrameError::Sides {
                    pair: 7,
                    sides: bad
                })
            );
        }
    }

    #[test]
    fn malformed_frames_are_errors_not_panics() {
        assert_eq!(
            Reader::input(&[]).unwrap_err(),
            FrameError::Truncated { at: 0 }
        );
        assert_eq!(
            Reader::input(&[9, 0, 0, 0, 0]).unwrap_err(),
            FrameError::Version(9)
        );
        let mut w = Writer::input(Vec::new(), 1);
        w.record(Some(b"key"), Some(b"value"), Some(1), []);
        let buf = w.finish();
        for cut in 5..buf.len() {
            let (mut r, _) = Reader::input(&buf[..cut]).unwrap();
            assert!(
                matches!(r.record(), Err(FrameError::Truncated { .. })),
                "cut at {cut}"
            );
        }
        let mut bad = Writer::output(Vec::new(), 1).finish();
        bad.push(7);
        let (mut r, _) = Reader::output(&bad).unwrap();
        assert_eq!(r.status().unwrap_err(), FrameError::Status(7));
        // Reserved flag bits are a protocol error, not ignored.
        let mut flagged = buf.clone();
        let at = 5 + 8;
        assert_eq!(flagged[at], FLAG_TIMESTAMP);
        flagged[at] |= 0x80;
        let (mut r, _) = Reader::input(&flagged).unwrap();
        let e = r.record().unwrap_err();
        assert_eq!(e, FrameError::Flags { at, flags: 0x81 });
        assert!(alloc::format!("{e}").contains("reserved bits"), "{e}");
    }

    #[test]
    fn invalid_utf8_header_name_is_reported_with_offset() {
        let mut w = Writer::input(Vec::new(), 1);
        w.record(None, None, None, [("h", None)]);
        let mut buf = w.finish();
        let name_at = buf.len() - 4 - 1;
        buf[name_at] = 0xff;
        let (mut r, _) = Reader::input(&buf).unwrap();
        assert_eq!(
            r.record().unwrap_err(),
            FrameError::Utf8 { at: name_at - 4 }
        );
    }
}
