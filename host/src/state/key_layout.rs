//! Key layouts of window and session stores.
//!
//! Stores are ordered by key bytes, so the layout decides which scans are
//! cheap. Both layouts start with the record key, length-prefixed so that
//! one key's entries are contiguous and never interleave with a longer key
//! that shares its prefix; then come times, encoded so that byte order is
//! numeric order (big-endian, sign bit flipped).
//!
//! - **Window**: `len(key) ‖ key ‖ start ‖ end`. All windows of a key, in
//!   start order: "the windows of key K between t1 and t2" is one seek and a
//!   short scan ([`window_scan`]).
//! - **Session**: `len(key) ‖ key ‖ end ‖ start`. Sessions of a key in end
//!   order: "the sessions of key K that end at or after t" — the candidates
//!   for merging with a record at t — is one seek ([`session_scan`]).
//!
//! Expiry by time across all keys is not a scan of these layouts: a
//! windowed store keeps time-ordered indexes beside them (the close index
//! and the expiry index, tags `0x01` and `0x03` in `operator::window::store`), and
//! what stream time has passed is found there by one range scan and
//! deleted key by key.

/// Encodes a time so that byte order is numeric order.
pub fn time_bytes(t: i64) -> [u8; 8] {
    ((t as u64) ^ (1 << 63)).to_be_bytes()
}

/// Decodes [`time_bytes`].
pub fn time_from_bytes(b: [u8; 8]) -> i64 {
    (u64::from_be_bytes(b) ^ (1 << 63)) as i64
}

fn prefix(key: &[u8], extra: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + key.len() + extra);
    out.extend_from_slice(&(key.len() as u32).to_be_bytes());
    out.extend_from_slice(key);
    out
}

/// The store key of window `[start, end)` of `key`.
pub fn window_key(key: &[u8], start: i64, end: i64) -> Vec<u8> {
    let mut out = prefix(key, 16);
    out.extend_from_slice(&time_bytes(start));
    out.extend_from_slice(&time_bytes(end));
    out
}

/// The store key of session `[start, end]` of `key`.
pub fn session_key(key: &[u8], start: i64, end: i64) -> Vec<u8> {
    let mut out = prefix(key, 16);
    out.extend_from_slice(&time_bytes(end));
    out.extend_from_slice(&time_bytes(start));
    out
}

/// The store key of a record of `key` at time `t`; `id` tells apart
/// records of one time. It sorts like a window key whose start is `t`, so
/// [`window_scan`] bounds records by time too.
pub fn record_key(key: &[u8], t: i64, id: &[u8]) -> Vec<u8> {
    let mut out = prefix(key, 8 + id.len());
    out.extend_from_slice(&time_bytes(t));
    out.extend_from_slice(id);
    out
}

/// The time of a [`record_key`]; `None` if it is not one.
pub fn record_time(stored: &[u8]) -> Option<i64> {
    let len = u32::from_be_bytes(stored.get(..4)?.try_into().ok()?) as usize;
    let t = stored.get(4 + len..4 + len + 8)?;
    Some(time_from_bytes(t.try_into().ok()?))
}

/// A decoded window or session store key: `(key, start, end)`.
pub type TimedKey<'a> = (&'a [u8], i64, i64);

fn split(stored: &[u8]) -> Option<(&[u8], i64, i64)> {
    let len = u32::from_be_bytes(stored.get(..4)?.try_into().ok()?) as usize;
    let key = stored.get(4..4 + len)?;
    let rest = stored.get(4 + len..)?;
    if rest.len() != 16 {
        return None;
    }
    let a = time_from_bytes(rest[..8].try_into().ok()?);
    let b = time_from_bytes(rest[8..].try_into().ok()?);
    Some((key, a, b))
}

/// Decodes a [`window_key`]; `None` if it is not one.
pub fn decode_window_key(stored: &[u8]) -> Option<TimedKey<'_>> {
    split(stored)
}

/// Decodes a [`session_key`]; `None` if it is not one.
pub fn decode_session_key(stored: &[u8]) -> Option<TimedKey<'_>> {
    split(stored).map(|(k, end, start)| (k, start, end))
}

/// Bounds `[from, to)` that cover exactly the windows of `key` whose start
/// is in `[start_from, start_to]`.
pub fn window_scan(key: &[u8], start_from: i64, start_to: i64) -> (Vec<u8>, Vec<u8>) {
    let mut from = prefix(key, 8);
    from.extend_from_slice(&time_bytes(start_from));
    let mut to = prefix(key, 8);
    match start_to.checked_add(1) {
        Some(next) => to.extend_from_slice(&time_bytes(next)),
        // i64::MAX: everything of this key; the next key prefix bounds it.
        None => return (from, prefix_successor(&prefix(key, 0))),
    }
    (from, to)
}

/// Bounds `[from, to)` that cover exactly the sessions of `key` that end
/// at or after `end_from`.
pub fn session_scan(key: &[u8], end_from: i64) -> (Vec<u8>, Vec<u8>) {
    let mut from = prefix(key, 8);
    from.extend_from_slice(&time_bytes(end_from));
    (from, prefix_successor(&prefix(key, 0)))
}

/// The smallest byte string greater than every string starting with `p`.
pub fn prefix_successor(p: &[u8]) -> Vec<u8> {
    let mut out = p.to_vec();
    while let Some(last) = out.pop() {
        if last != 0xFF {
            out.push(last + 1);
            return out;
        }
    }
    // All 0xFF: no finite successor; the length prefix makes this unreachable.
    vec![0xFF; p.len() + 1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::memory::MemoryStore;
    use crate::state::store::{KeyValueStore, WriteBatch};

    #[test]
    fn time_bytes_sort_like_numbers() {
        let times = [i64::MIN, -1_000, -1, 0, 1, 59_999, 60_000, i64::MAX];
        for w in times.windows(2) {
            assert!(time_bytes(w[0]) < time_bytes(w[1]), "{} < {}", w[0], w[1]);
        }
        for t in times {
            assert_eq!(time_from_bytes(time_bytes(t)), t);
        }
    }

    #[test]
    fn window_keys_round_trip_and_group_by_key_then_start() {
        let k = window_key(b"page-1", -5, 60_000);
        assert_eq!(decode_window_key(&k), Some((&b"page-1"[..], -5, 60_000)));
        // "a" must not interleave with "a\0…", which shares its bytes.
        let mut keys = [
            window_key(b"a", 120, 180),
            window_key(b"a\x00", 0, 60),
            window_key(b"a", 0, 60),
            window_key(b"a", -60, 0),
            window_key(b"b", 0, 60),
        ];
        keys.sort();
        let decoded: Vec<_> = keys.iter().map(|k| decode_window_key(k).unwrap()).collect();
        assert_eq!(
            decoded,
            vec![
                (&b"a"[..], -60, 0),
                (&b"a"[..], 0, 60),
                (&b"a"[..], 120, 180),
                (&b"b"[..], 0, 60),
                (&b"a\x00"[..], 0, 60),
            ]
        );
    }

    #[test]
    fn scans_return_exactly_the_wanted_windows_and_sessions() {
        let (mut store, mut sessions_store) = (MemoryStore::new("w"), MemoryStore::new("s"));
        let (mut w, mut s) = (WriteBatch::default(), WriteBatch::default());
        for key in [&b"a"[..], b"a\x00", b"b"] {
            for start in [-60i64, 0, 60, 120, 180] {
                w.put(&window_key(key, start, start + 60), b"w");
                s.put(&session_key(key, start, start + 30), b"s");
            }
        }
        store.write(&w).unwrap();
        sessions_store.write(&s).unwrap();
        let (from, to) = window_scan(b"a", 0, 120);
        let starts: Vec<i64> = store
            .range(Some(&from), Some(&to))
            .unwrap()
            .filter_map(|e| {
                let (k, _) = e.unwrap();
                let (key, start, _) = decode_window_key(&k)?;
                (key == b"a").then_some(start)
            })
            .collect();
        assert_eq!(starts, vec![0, 60, 120]);
        let all_of_a = store.range(Some(&from), Some(&to)).unwrap().count();
        assert_eq!(all_of_a, 3, "no other key's windows in the range");

        let r = record_key(b"a", 60, b"id");
        assert_eq!(record_time(&r), Some(60));
        let (from, to) = window_scan(b"a", 60, 60);
        assert!(
            from <= r && r < to,
            "records are bounded like window starts"
        );
        let (_, to) = window_scan(b"a", 0, 59);
        assert!(r >= to);

        let (from, to) = session_scan(b"a", 90);
        let sessions: Vec<(i64, i64)> = sessions_store
            .range(Some(&from), Some(&to))
            .unwrap()
            .map(|e| {
                let (k, _) = e.unwrap();
                let (key, start, end) = decode_session_key(&k).unwrap();
                assert_eq!(key, b"a");
                (start, end)
            })
            .collect();
        assert_eq!(sessions, vec![(60, 90), (120, 150), (180, 210)]);
    }
}
