//! A window: the interval `[start, end)` of event times it covers, and
//! when a record may still update it.

/// A window `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window {
    /// Inclusive start.
    pub start: i64,
    /// Exclusive end.
    pub end: i64,
}

impl Window {
    /// Whether event time `t` is inside it.
    pub fn contains(&self, t: i64) -> bool {
        self.start <= t && t < self.end
    }

    /// Whether a record may still update it: the stream time, including
    /// that record, is below `end + grace`.
    pub fn accepts_at(&self, stream_time: i64, grace: i64) -> bool {
        stream_time < self.end.saturating_add(grace)
    }

    /// Whether its final result is due: the stream time has reached
    /// `end + grace`.
    pub fn closed_at(&self, stream_time: i64, grace: i64) -> bool {
        !self.accepts_at(stream_time, grace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_accepts_until_end_plus_grace_and_closes_exactly_there() {
        let w = Window { start: 0, end: 100 };
        assert!(w.contains(0) && w.contains(99) && !w.contains(100) && !w.contains(-1));
        assert!(w.accepts_at(149, 50));
        assert!(
            !w.accepts_at(150, 50),
            "a record exactly at end + grace is late"
        );
        assert!(w.closed_at(150, 50));
        assert!(!w.closed_at(149, 50));
        assert!(
            w.accepts_at(99, 0) && w.closed_at(100, 0),
            "no grace: closes at end"
        );
        let far = Window {
            start: 0,
            end: i64::MAX - 1,
        };
        assert!(far.accepts_at(i64::MAX - 2, i64::MAX), "no overflow");
    }
}
