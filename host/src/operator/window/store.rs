//! The store layout of a windowed aggregation (one key-value store per
//! step):
//! - `0x00 ‖ window key` (key, start, end; `state::key_layout`, the session
//!   layout for sessions) → the window's aggregate;
//! - `0x01 ‖ close time ‖ window key` → nothing: the close index. After
//!   each batch the windows whose close time the stream time has reached
//!   are read from it in one range scan, emitted once (`on-window-close`),
//!   and deleted with their aggregates: no record may change them any more.
//! - `0x02 ‖ key ‖ time ‖ source position` → a record (sliding windows:
//!   the records a new window is built from);
//! - `0x03 ‖ expiry time ‖ stored key` → nothing: entries to delete once
//!   the stream time reaches the expiry time.
//!
//! And the windows of one aggregator call ([`CallWindows`]): each key's
//! own, so that a call reads and writes one aggregate per key.

use crate::operator::FastMap;
use crate::operator::aggregate::Placement;
use crate::state::StoreBuffer;
use crate::state::key_layout::{self, time_bytes};
use crate::window::Window;

pub const AGGREGATE: u8 = 0;
pub const CLOSE: u8 = 1;
pub const RECORD: u8 = 2;
pub const EXPIRY: u8 = 3;

/// How a store's window keys are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Key, start, end: fixed and sliding windows.
    Window,
    /// Key, end, start: sessions, so that the sessions a record may join
    /// are one scan.
    Session,
}

/// The store key of `key`'s aggregate in window `w`.
pub fn aggregate_key(layout: Layout, key: &[u8], w: Window) -> Vec<u8> {
    let mut out = vec![AGGREGATE];
    out.extend_from_slice(&match layout {
        Layout::Window => key_layout::window_key(key, w.start, w.end),
        Layout::Session => key_layout::session_key(key, w.start, w.end),
    });
    out
}

/// The close-index key of `key`'s window `w`, closing at `close_at`.
pub fn close_key(key: &[u8], w: Window, close_at: i64) -> Vec<u8> {
    let mut out = vec![CLOSE];
    out.extend_from_slice(&time_bytes(close_at));
    out.extend_from_slice(&key_layout::window_key(key, w.start, w.end));
    out
}

/// Schedules `stored` for deletion once the stream time reaches `at`.
pub fn expire(buffer: &mut StoreBuffer, stored: &[u8], at: i64) {
    let mut out = Vec::with_capacity(9 + stored.len());
    out.push(EXPIRY);
    out.extend_from_slice(&time_bytes(at));
    out.extend_from_slice(stored);
    buffer.put(&out, b"");
}

/// Writes the output key of `key`'s window, `key@start/end`, into `out`
/// (cleared first), from the decimal texts of its start and end (which
/// the window's headers carry too, so they are formatted once).
pub fn write_output_key(out: &mut Vec<u8>, key: &[u8], start: &[u8], end: &[u8]) {
    out.clear();
    out.extend_from_slice(key);
    out.push(b'@');
    out.extend_from_slice(start);
    out.push(b'/');
    out.extend_from_slice(end);
}

/// A window an aggregation call reads and writes, for one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenWindow {
    /// The window.
    pub window: Window,
    /// The store's key layout.
    pub layout: Layout,
    /// The stream time at which it closes.
    pub close_at: i64,
}

impl OpenWindow {
    /// A time window (fixed or sliding), closing at its end plus `grace`.
    pub fn timed(window: Window, grace: i64) -> OpenWindow {
        OpenWindow {
            window,
            layout: Layout::Window,
            close_at: window.end.saturating_add(grace),
        }
    }

    /// Where `key`'s aggregate in this window lives.
    pub fn store_key(&self, key: &[u8]) -> Vec<u8> {
        aggregate_key(self.layout, key, self.window)
    }

    /// Puts the window into the close index (idempotent). Called where an
    /// aggregate is read and found missing, and when one is created.
    pub fn note_new(&self, buffer: &mut StoreBuffer, key: &[u8]) {
        buffer.put(&close_key(key, self.window, self.close_at), b"");
    }

    /// Deletes `key`'s aggregate in this window and its close-index entry.
    pub fn delete(&self, buffer: &mut StoreBuffer, key: &[u8]) {
        buffer.delete(&self.store_key(key));
        buffer.delete(&close_key(key, self.window, self.close_at));
    }
}

/// The windows of one aggregation call: each key's own.
pub type CallWindows = FastMap<Vec<u8>, OpenWindow>;

impl Placement for CallWindows {
    fn store_key(&self, key: &[u8]) -> Vec<u8> {
        self[key].store_key(key)
    }

    fn note_new(&self, buffer: &mut StoreBuffer, key: &[u8]) {
        self[key].note_new(buffer, key);
    }
}

/// `tag ‖ bytes`.
pub fn tagged(tag: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + bytes.len());
    out.push(tag);
    out.extend_from_slice(bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_windows_apart_and_the_close_index_sorts_by_close_time() {
        let (a, b) = (Window { start: 0, end: 10 }, Window { start: 5, end: 15 });
        let w = |w| aggregate_key(Layout::Window, b"k", w);
        assert_ne!(w(a), w(b));
        assert_ne!(
            aggregate_key(Layout::Session, b"k", b),
            w(b),
            "sessions sort by end"
        );
        assert!(
            close_key(b"zz", a, 0) < close_key(b"aa", b, 5),
            "by close time first"
        );
        let mut out = b"left over".to_vec();
        write_output_key(&mut out, b"page", b"5", b"15");
        assert_eq!(out, b"page@5/15");
    }
}
