//! Windows: which windows a record falls into, and when a window closes.
//!
//! Windows are half-open, `[start, end)`, in UTC milliseconds, aligned to
//! epoch 0. A record may update window `W` only while the stream time —
//! including that record — is below `W.end + grace`; `on-window-close`
//! results fire when the stream time reaches `W.end + grace`.
//!
//! - [`interval`]: a window, `[start, end)`, and when it closes.
//! - [`tumbling`]: fixed size, no overlap.
//! - [`hopping`]: fixed size, advancing by less than the size, so that a
//!   record falls into several windows.
//! - [`sliding`]: windows defined by the records (Kafka Streams' KIP-450).
//! - [`session`]: a key's records joined while within an inactivity gap.
//! - [`duration`]: `5m`, `30s`, `250ms` in pipeline files.
//!
//! This is the arithmetic the windowed aggregations (`operator::window`)
//! build on; it has no state of its own.

pub mod duration;
pub mod hopping;
pub mod interval;
pub mod session;
pub mod sliding;
pub mod tumbling;

pub use interval::Window;

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
