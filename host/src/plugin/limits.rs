//! What a plugin instance may use: memory, wall-clock time and output per
//! call, and (shared by all of a tenant's instances) log lines per second
//! and a number of live instances.
//!
//! Memory and time are enforced by wasmtime (`StoreLimits`, epoch
//! deadlines); output and logs by the host as a call returns or logs; the
//! instance count by the host's own accounting, because the pooling
//! allocator's limits apply to the whole engine, not to one tenant.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Default cap on one instance's linear memory.
pub const DEFAULT_MAX_MEMORY: usize = 256 << 20;

/// Default deadline of one call into a plugin (wall clock).
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(5);

/// Default cap on the output of one call (the frame a call returns).
pub const DEFAULT_MAX_OUTPUT: usize = 64 << 20;

/// The limits of one plugin's instances.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Linear memory of one instance, in bytes.
    pub memory: usize,
    /// Wall-clock time of one call.
    pub deadline: Duration,
    /// Bytes one call may return.
    pub output: usize,
    /// The owning tenant's shared budget, if a tenant owns the pipeline.
    pub tenant: Option<Arc<TenantBudget>>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: DEFAULT_MAX_MEMORY,
            deadline: DEFAULT_DEADLINE,
            output: DEFAULT_MAX_OUTPUT,
            tenant: None,
        }
    }
}

/// What all of one tenant's plugin instances share: a rate of log lines
/// and a number of live instances.
#[derive(Debug)]
pub struct TenantBudget {
    tenant: String,
    log_rate: u32,
    bucket: Mutex<Bucket>,
    dropped: AtomicU64,
    max_instances: usize,
    live: AtomicUsize,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
    /// When a drop was last reported in the host's own log.
    reported: Option<Instant>,
}

/// How often dropped log lines are reported, at most.
const DROP_REPORT_EVERY: Duration = Duration::from_secs(1);

impl TenantBudget {
    /// A budget of `log_rate` lines per second (a burst of one second's
    /// worth) and `max_instances` live instances.
    pub fn new(tenant: &str, log_rate: u32, max_instances: usize) -> TenantBudget {
        TenantBudget {
            tenant: tenant.to_owned(),
            log_rate,
            bucket: Mutex::new(Bucket {
                tokens: f64::from(log_rate),
                refilled: Instant::now(),
                reported: None,
            }),
            dropped: AtomicU64::new(0),
            max_instances,
            live: AtomicUsize::new(0),
        }
    }

    /// The tenant's name.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// Whether one more log line may be written now. A line refused is
    /// counted; the host says so in its own log at most once a second.
    pub fn admit_log_line(&self) -> bool {
        let mut b = self.bucket.lock().expect("not poisoned");
        let now = Instant::now();
        let rate = f64::from(self.log_rate);
        b.tokens = (b.tokens + now.duration_since(b.refilled).as_secs_f64() * rate).min(rate);
        b.refilled = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return true;
        }
        let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        if b.reported
            .is_none_or(|t| now.duration_since(t) >= DROP_REPORT_EVERY)
        {
            b.reported = Some(now);
            tracing::warn!(
                tenant = %self.tenant,
                dropped,
                "plugin log lines over the tenant's {} per second are dropped",
                self.log_rate
            );
        }
        false
    }

    /// Log lines dropped so far.
    pub fn dropped_log_lines(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Instances alive now.
    pub fn live_instances(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// The most instances the tenant may have alive at once.
    pub fn max_instances(&self) -> usize {
        self.max_instances
    }

    /// Takes one instance slot, or says why not. The slot is given back
    /// when the returned ticket is dropped (with its instance).
    pub fn take_instance(self: &Arc<Self>) -> Result<InstanceTicket, String> {
        let taken = self
            .live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_instances).then_some(n + 1)
            });
        match taken {
            Ok(_) => Ok(InstanceTicket(Arc::clone(self))),
            Err(_) => Err(format!(
                "tenant `{}` has {} plugin instances alive, its quota (`max-instances`)",
                self.tenant, self.max_instances
            )),
        }
    }
}

/// One live instance counted against its tenant's quota.
#[derive(Debug)]
pub struct InstanceTicket(Arc<TenantBudget>);

impl Drop for InstanceTicket {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_past_the_rate_are_dropped_and_counted() {
        let budget = TenantBudget::new("t", 5, 1);
        let admitted = (0..20).filter(|_| budget.admit_log_line()).count();
        // A burst of one second's worth; 20 lines take far less than the
        // 200 ms that would earn one more.
        assert!((5..=6).contains(&admitted), "{admitted}");
        assert_eq!(budget.dropped_log_lines(), 20 - admitted as u64);
        std::thread::sleep(Duration::from_millis(450));
        assert!(budget.admit_log_line(), "the bucket refills");
    }

    #[test]
    fn instance_slots_are_counted_and_given_back() {
        let budget = Arc::new(TenantBudget::new("t", 1, 2));
        let a = budget.take_instance().unwrap();
        let _b = budget.take_instance().unwrap();
        let e = budget.take_instance().unwrap_err();
        assert!(e.contains("`t`") && e.contains("max-instances"), "{e}");
        drop(a);
        assert_eq!(budget.live_instances(), 1);
        budget.take_instance().unwrap();
    }
}
