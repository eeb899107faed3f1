//! The host's record type.

use bytes::Bytes;

/// One Kafka record inside the host. Payloads are [`Bytes`], so passing a
/// record between steps, or slicing it out of a plugin's output frame,
/// copies nothing.
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
}
