//! Crash points for tests: the process kills itself with SIGKILL at a
//! named point of the commit protocol or of a restore.
//!
//! Set `SLUICE_CRASH_AT=<point>:<n>` to be killed the `n`-th time `<point>`
//! is reached (counting from 1). The points:
//!
//! - `changelog-sent`: a commit's changelog records are sent, none is
//!   known to be acknowledged, no offset is committed;
//! - `changelog-acked`: the changelog (records and applied markers) is
//!   acknowledged, the local stores are not yet written;
//! - `state-written`: the local stores are written, the input offsets are
//!   not yet committed;
//! - `restore-chunk`: a restore has written one chunk to a local store and
//!   has more to read.
//!
//! Without the variable, a point costs one relaxed atomic load.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

struct Plan {
    point: String,
    at: u64,
    reached: AtomicU64,
}

fn plan() -> Option<&'static Plan> {
    static PLAN: OnceLock<Option<Plan>> = OnceLock::new();
    PLAN.get_or_init(|| {
        let spec = std::env::var("SLUICE_CRASH_AT").ok()?;
        let (point, at) = spec.rsplit_once(':').unwrap_or((&spec, "1"));
        let at = at.parse().unwrap_or_else(|_| {
            panic!("SLUICE_CRASH_AT={spec}: expected <point>:<n>, with n a positive number")
        });
        Some(Plan {
            point: point.to_owned(),
            at,
            reached: AtomicU64::new(0),
        })
    })
    .as_ref()
}

/// Marks that `point` is reached; SIGKILLs the process if the plan says so.
pub fn point(name: &str) {
    let Some(plan) = plan() else { return };
    if plan.point != name {
        return;
    }
    if plan.reached.fetch_add(1, Ordering::Relaxed) + 1 == plan.at {
        tracing::warn!(
            point = name,
            "SLUICE_CRASH_AT reached; killing this process"
        );
        // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}
