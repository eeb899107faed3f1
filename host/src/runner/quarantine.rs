//! Quarantine (`quarantine.after.traps`): a pipeline whose plugins trap
//! this often within `quarantine.window` stops consuming. The poll loop
//! feeds the run's trap count to [`Quarantine::observe`] once per round
//! (see `poll_loop::PollLoop::quarantine_phase`); a resume by hand
//! ([`super::control`]) clears it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Counts traps over a sliding window of time (`quarantine.after.traps`).
pub(super) struct Quarantine {
    limit: Option<u64>,
    window: Duration,
    traps: VecDeque<Instant>,
    seen: u64,
    active: bool,
}

impl Quarantine {
    pub(super) fn new(limit: Option<u64>, window: Duration) -> Quarantine {
        Quarantine {
            limit,
            window,
            traps: VecDeque::new(),
            seen: 0,
            active: false,
        }
    }

    /// Takes the run's trap count; says why when the limit is reached
    /// (once, until [`Quarantine::clear`]).
    pub(super) fn observe(&mut self, trapped: u64) -> Option<String> {
        let limit = self.limit?;
        let now = Instant::now();
        for _ in self.seen..trapped {
            self.traps.push_back(now);
        }
        self.seen = self.seen.max(trapped);
        while self
            .traps
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.window)
        {
            self.traps.pop_front();
        }
        if self.active || (self.traps.len() as u64) < limit {
            return None;
        }
        self.active = true;
        Some(format!(
            "{} records trapped within {} s (quarantine.after.traps = {limit})",
            self.traps.len(),
            self.window.as_secs()
        ))
    }

    /// Resumed by hand: counting starts again.
    pub(super) fn clear(&mut self) {
        self.traps.clear();
        self.active = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarantine_comes_once_at_the_limit_and_counting_restarts_after_a_resume() {
        let mut q = Quarantine::new(Some(3), Duration::from_secs(60));
        assert_eq!(q.observe(2), None);
        let why = q.observe(3).expect("the third trap");
        assert!(why.contains("3 records trapped within 60 s"), "{why}");
        assert_eq!(q.observe(5), None, "once, until resumed");
        q.clear();
        assert_eq!(q.observe(7), None, "two traps since the resume");
        assert!(q.observe(8).is_some());
        let mut off = Quarantine::new(None, Duration::from_secs(60));
        assert_eq!(off.observe(1_000), None, "off unless configured");
    }
}
