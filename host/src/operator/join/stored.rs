//! How joins keep records and keys in their stores: a record (key, value,
//! headers) as bytes, and a key encoded so that byte order is key order
//! and no key's encoding is a prefix of another's, so that keys can sit in
//! the middle of a store key (`time ‖ key ‖ arrival`) and still sort.

use bytes::Bytes;

use crate::record::Record;

/// `key` so that byte order is key order and no key is a prefix of
/// another's encoding: 0x00 becomes 0x00 0xFF, and 0x00 0x00 ends it.
pub fn ordered(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 2);
    for &b in key {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0, 0]);
    out
}

/// A record as the store keeps it: its key, value and headers.
pub fn encode(r: &Record) -> Vec<u8> {
    let mut out = Vec::new();
    let mut bytes = |b: Option<&[u8]>| match b {
        None => out.extend_from_slice(&u32::MAX.to_le_bytes()),
        Some(b) => {
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
            out.extend_from_slice(b);
        }
    };
    bytes(r.key.as_deref());
    bytes(r.value.as_deref());
    bytes(Some(&(r.headers.len() as u32).to_le_bytes()));
    for (name, value) in &r.headers {
        bytes(Some(name.as_bytes()));
        bytes(value.as_deref());
    }
    out
}

/// A record with a time (`time ‖ record`), as a join keeps a table's row.
pub fn encode_at(time: i64, r: &Record) -> Vec<u8> {
    [&time.to_be_bytes()[..], &encode(r)].concat()
}

/// A record and its time, as [`encode_at`] wrote them.
pub fn decode_at(b: &[u8]) -> (i64, Record) {
    let time = i64::from_be_bytes(b[..8].try_into().expect("a time"));
    (time, decode(&b[8..]))
}

/// A record [`encode`] wrote (the host wrote it: it is trusted).
pub fn decode(mut b: &[u8]) -> Record {
    let mut next = || -> Option<Bytes> {
        let len = u32::from_le_bytes(b[..4].try_into().expect("4 bytes"));
        b = &b[4..];
        if len == u32::MAX {
            return None;
        }
        let (this, rest) = b.split_at(len as usize);
        b = rest;
        Some(Bytes::copy_from_slice(this))
    };
    let key = next();
    let value = next();
    let count = u32::from_le_bytes(next().expect("a count")[..4].try_into().expect("4 bytes"));
    let headers = (0..count)
        .map(|_| {
            let name = String::from_utf8_lossy(&next().expect("a name")).into_owned();
            (name, next())
        })
        .collect();
    Record {
        key,
        value,
        timestamp: None,
        headers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_keys_come_back_and_keys_keep_their_order() {
        let mut r = Record::new(Some(b"k\0"), None, Some(5));
        r.headers.push(("h".into(), Some("v".into())));
        r.headers.push(("empty".into(), None));
        let back = decode(&encode(&r));
        assert_eq!(
            (back.key, back.value, back.headers),
            (r.key, r.value, r.headers)
        );
        let keys: [&[u8]; 5] = [b"", b"\0", b"\0\0", b"a", b"a\0"];
        for w in keys.windows(2) {
            assert!(ordered(w[0]) < ordered(w[1]), "{w:?}");
        }
    }
}
