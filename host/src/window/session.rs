//! Session windows: a key's records joined while each is within the
//! inactivity `gap` of the next. A session runs from its first record to
//! its last, `[first, last + 1)` half-open (Kafka Streams writes it
//! `[first, last]`).
//!
//! A record at `t` joins every session of its key that it is within `gap`
//! of: sessions with `last >= t - gap` and `first <= t + gap`. When it
//! joins two or more, they merge into one. It is late when the merged
//! session would already be closed to records: the stream time is at or
//! past its end plus grace.
//!
//! A session is final once no record could change it any more: a record
//! within `gap` after its end, arriving while the stream time is below
//! its end plus grace, still could. So it closes (and `on-window-close`
//! emits it) when the stream time reaches `end + gap + grace`.

use super::interval::Window;

/// Session windows of one inactivity gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sessions {
    gap: i64,
}

impl Sessions {
    /// Sessions that end after `gap` ms without a record.
    pub fn new(gap: i64) -> Result<Sessions, String> {
        if gap <= 0 {
            return Err(format!("the inactivity gap must be positive, got {gap} ms"));
        }
        Ok(Sessions { gap })
    }

    /// The gap.
    pub fn gap(&self) -> i64 {
        self.gap
    }

    /// The session of a single record at `t`.
    pub fn of_record(t: i64) -> Window {
        Window {
            start: t,
            end: t + 1,
        }
    }

    /// Whether a record at `t` joins `session`.
    pub fn joins(&self, session: Window, t: i64) -> bool {
        // Its last record (end - 1) is at most `gap` before `t`.
        session.end > t - self.gap && session.start <= t + self.gap
    }

    /// The earliest end of a session that a record at `t` could join.
    pub fn earliest_end_joined_by(&self, t: i64) -> i64 {
        t - self.gap + 1
    }

    /// The session two sessions (or a session and a record) merge into.
    pub fn merge(a: Window, b: Window) -> Window {
        Window {
            start: a.start.min(b.start),
            end: a.end.max(b.end),
        }
    }

    /// The stream time at which `session` is final.
    pub fn closes_at(&self, session: Window, grace: i64) -> i64 {
        session.end.saturating_add(self.gap).saturating_add(grace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_joins_sessions_within_the_gap_and_bridges_two() {
        let s = Sessions::new(30).unwrap();
        let a = Window { start: 0, end: 11 }; // records at 0..=10
        assert!(s.joins(a, 40), "exactly the gap after the last record");
        assert!(!s.joins(a, 41));
        assert!(s.joins(a, -30) && !s.joins(a, -31), "and before the first");
        assert!(s.joins(a, 5), "inside");
        let b = Window { start: 70, end: 71 };
        // 40 is within 30 of both 10 and 70: it bridges them.
        assert!(s.joins(b, 40) && s.joins(a, 40));
        let merged = Sessions::merge(Sessions::merge(a, Sessions::of_record(40)), b);
        assert_eq!(merged, Window { start: 0, end: 71 });
        assert_eq!(s.earliest_end_joined_by(40), 11);
        // Final once a record within the gap after its last one (at 40)
        // can no longer be taken: stream time 11 + 30 + grace.
        assert_eq!(s.closes_at(a, 5), 46);
        assert!(Sessions::new(0).unwrap_err().contains("positive"));
    }
}
