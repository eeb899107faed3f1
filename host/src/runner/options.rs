//! What a run is asked to do ([`RunOptions`]) and what it did
//! ([`RunSummary`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::control;
use crate::task::Counts;

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Bootstrap servers.
    pub brokers: String,
    /// How long to wait for the brokers at start.
    pub connect_timeout: Duration,
    /// Set to stop: the current batches finish, outputs are flushed and
    /// offsets committed.
    pub stop: Arc<AtomicBool>,
    /// Stop by itself once these next offsets are committed for every
    /// listed (topic, partition): used by `sluice dev` to end when the
    /// input is drained.
    pub stop_at: Option<HashMap<(String, i32), i64>>,
    /// With `stop_at`: once caught up, close the windows of steps with
    /// `close.idle.after` as if that long had passed without input, and
    /// commit their results before stopping (`sluice dev --idle-close`).
    pub idle_close_at_end: bool,
    /// Swaps requested while it runs.
    pub control: Option<control::Control>,
    /// Parks it while it has no input (`sluice serve`; needs `control`).
    pub park: Option<super::park::ParkPolicy>,
}

/// What a finished run did.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// Record counts.
    pub counts: Counts,
    /// Wall time.
    pub elapsed: Duration,
    /// The offsets committed last, per source (topic, partition): the
    /// next record each partition would be read from.
    pub committed: HashMap<(String, i32), i64>,
}
