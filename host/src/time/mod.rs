//! Time: where event times come from, and each task's stream time.
//!
//! - [`extractor`]: timestamp extractors (record, log-append, wall-clock,
//!   a JSON field) and the `invalid-timestamp` policy.
//! - [`stream_time`]: the largest event time a task has seen, committed
//!   with its offsets.
//! - [`clock`]: the wall clock, injectable for tests.
//!
//! All times are UTC milliseconds since the epoch.

pub mod clock;
pub mod extractor;
pub mod stream_time;

pub use clock::{Clock, ManualClock, SystemClock};
pub use extractor::{Extractor, TimestampKind};
pub use stream_time::StreamTime;

/// The latest event time Sluice accepts: the last millisecond of the
/// year 9999 (RFC 3339's range). Later times (a producer's garbage,
/// `i64::MAX`) are invalid and meet the source's `invalid-timestamp`
/// policy, so window arithmetic (a time plus a size plus a grace, each
/// bounded) never overflows.
pub const MAX_EVENT_TIME: i64 = 253_402_300_799_999;

/// `t` if it is an event time Sluice accepts (0 to [`MAX_EVENT_TIME`]),
/// else why not; `what` names where it came from.
pub fn event_time(t: i64, what: &str) -> Result<i64, String> {
    if t < 0 {
        Err(format!("{what} {t} is negative"))
    } else if t > MAX_EVENT_TIME {
        Err(format!(
            "{what} {t} is after the year 9999 (the latest event time is {MAX_EVENT_TIME})"
        ))
    } else {
        Ok(t)
    }
}

/// What to do with a record whose timestamp is missing or invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InvalidTimestamp {
    /// Stop the pipeline, naming the record.
    #[default]
    Fail,
    /// Drop the record and count it.
    Skip,
    /// Use the task's stream time (the largest event time seen so far);
    /// a task that has seen none yet drops the record and counts it.
    UsePartitionTime,
}
