//! Windows: which windows a record falls into, and when a window closes.
//!
//! Windows are half-open, `[start, end)`, in UTC milliseconds, aligned to
//! epoch 0. A record may update window `W` only while the stream time —
//! including that record — is below `W.end + grace`; `on-window-close`
//! results fire when the stream time reaches `W.end + grace`.
//!
//! - [`tumbling`]: fixed size, no overlap.
//! - [`hopping`]: fixed size, advancing by less than the size, so that a
//!   record falls into several windows.
//! - [`sliding`]: windows defined by the records (Kafka Streams' KIP-450).
//! - [`session`]: a key's records joined while within an inactivity gap.
//! - [`duration`]: `5m`, `30s`, `250ms` in pipeline files.
//!
//! This is the arithmetic the windowed aggregations (`task::windowed`)
//! build on; it has no state of its own.

pub mod duration;
pub mod hopping;
pub mod session;
pub mod sliding;
pub mod tumbling;

/// The windows of a windowed aggregation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Windows {
    /// Fixed windows on the clock: tumbling or hopping.
    Hopping(hopping::Hopping),
    /// Windows defined by records at most a time difference apart.
    Sliding(sliding::Sliding),
    /// Sessions of activity separated by an inactivity gap.
    Session(session::Sessions),
}

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
