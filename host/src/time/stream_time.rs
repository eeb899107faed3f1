//! Stream time: per task, the largest event time seen so far. A record
//! below it is *out of order*. Windows close against stream time, so it
//! must survive restarts: it is committed with the task's input offsets
//! (as offset-commit metadata) and read back when the task is assigned,
//! and records re-read after a restart advance it exactly as they did
//! before.

/// The stream time of one task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamTime {
    max: Option<i64>,
}

impl StreamTime {
    /// Stream time restored from a commit (or none yet).
    pub fn starting_at(time: Option<i64>) -> Self {
        StreamTime { max: time }
    }

    /// Takes a record's event time; returns whether it was out of order
    /// (below the stream time before it).
    pub fn observe(&mut self, event_time: i64) -> bool {
        match self.max {
            Some(max) if event_time < max => true,
            _ => {
                self.max = Some(event_time);
                false
            }
        }
    }

    /// The stream time, or `None` before the first record.
    pub fn get(&self) -> Option<i64> {
        self.max
    }

    /// The offset-commit metadata that carries it: `st=<ms>`.
    pub fn to_metadata(&self) -> String {
        self.max.map(|t| format!("st={t}")).unwrap_or_default()
    }

    /// Reads [`StreamTime::to_metadata`]'s form; anything else (metadata
    /// another client wrote, or none) is no stream time.
    pub fn from_metadata(metadata: &str) -> Option<i64> {
        metadata.strip_prefix("st=")?.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_time_only_moves_forward_and_round_trips_through_commit_metadata() {
        let mut st = StreamTime::default();
        assert_eq!(st.to_metadata(), "");
        assert!(!st.observe(100));
        assert!(!st.observe(100), "equal is not out of order");
        assert!(st.observe(99));
        assert!(!st.observe(250));
        assert_eq!(st.get(), Some(250));
        let meta = st.to_metadata();
        assert_eq!(StreamTime::from_metadata(&meta), Some(250));
        assert_eq!(StreamTime::from_metadata("written by someone else"), None);
        let mut again = StreamTime::starting_at(StreamTime::from_metadata(&meta));
        assert!(
            again.observe(200),
            "a restart keeps what counts as out of order"
        );
    }
}
