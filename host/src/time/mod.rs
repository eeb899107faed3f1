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
