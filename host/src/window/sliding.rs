//! Sliding windows (Kafka Streams' KIP-450): windows defined by the
//! records, not by the clock. With a time difference `d`, two records of a
//! key share a window exactly when their times differ by at most `d`.
//!
//! Kafka Streams writes a sliding window as `[start, start + d]`, both ends
//! inclusive. Sluice keeps every window half-open, so the same window is
//! `[start, start + d + 1)`: its `end` is one more than Kafka Streams'.
//!
//! The windows of a key are those its records define:
//! - each record at `t` defines its *left* window `[t - d, t + 1)`, which
//!   ends with it;
//! - each record at `t` defines its *right* window `[t + 1, t + d + 2)`,
//!   which starts just after it, when another record falls into it.
//!
//! A window's aggregate covers every record of the key inside it. A window
//! that never held a record does not exist, so nothing is emitted for it.

use super::interval::Window;

/// Sliding windows of one time difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sliding {
    difference: i64,
}

impl Sliding {
    /// Windows of records at most `difference` ms apart.
    pub fn new(difference: i64) -> Result<Sliding, String> {
        if difference <= 0 {
            return Err(format!(
                "the time difference must be positive, got {difference} ms"
            ));
        }
        Ok(Sliding { difference })
    }

    /// The time difference.
    pub fn difference(&self) -> i64 {
        self.difference
    }

    /// The window a record at `start` would be the first instant of.
    pub fn starting_at(&self, start: i64) -> Window {
        Window {
            start,
            end: start + self.difference + 1,
        }
    }

    /// The left window of a record at `t`: it ends with the record.
    pub fn left(&self, t: i64) -> Window {
        self.starting_at(t - self.difference)
    }

    /// The right window of a record at `t`: it starts just after it.
    pub fn right(&self, t: i64) -> Window {
        self.starting_at(t + 1)
    }

    /// The starts `[first, last]` of every window that contains `t`.
    pub fn starts_containing(&self, t: i64) -> (i64, i64) {
        (t - self.difference, t)
    }

    /// The earlier record times whose right window contains `t`.
    pub fn right_windows_reaching(&self, t: i64) -> (i64, i64) {
        (t - self.difference - 1, t - 1)
    }

    /// The stream time after which a record at `t` is of no more use: no
    /// window containing it can take records, and its right window (which
    /// a later record may create) has closed too.
    pub fn record_expires_at(&self, t: i64, grace: i64) -> i64 {
        self.right(t).end.saturating_add(grace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn left_and_right_windows_hold_records_at_most_the_difference_apart() {
        let s = Sliding::new(10).unwrap();
        assert_eq!(
            s.left(100),
            Window {
                start: 90,
                end: 101
            }
        );
        assert_eq!(
            s.right(100),
            Window {
                start: 101,
                end: 112
            }
        );
        let left = s.left(100);
        assert!(left.contains(90) && left.contains(100) && !left.contains(89));
        assert!(!left.contains(101), "ends with its record");
        assert!(!s.right(100).contains(100) && s.right(100).contains(111));
        // Every window containing 100 starts in [90, 100], and the last of
        // them ends at 111; its right window ends at 112, and after that
        // plus grace the record is of no use.
        assert_eq!(s.starts_containing(100), (90, 100));
        assert_eq!(s.record_expires_at(100, 5), 117);
        assert_eq!(s.starting_at(100).end, 111);
        assert_eq!(s.right_windows_reaching(100), (89, 99));
        assert!(s.right(89).contains(100) && !s.right(88).contains(100));
        assert!(Sliding::new(0).unwrap_err().contains("positive"));
    }
}
