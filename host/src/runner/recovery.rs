//! Exactly-once recovery from broker faults, across the attempts of one
//! run: how long to wait before the next attempt ([`Recovery`]), when to
//! give up, and which failures are recovered from at all
//! ([`recoverable`]).

use std::time::{Duration, Instant};

use crate::error::{KafkaError, RunError};

/// Exactly-once recovery: the wait before the first new attempt, doubled
/// after each failed one up to [`BACKOFF_MAX`] (back to the first after an
/// attempt that committed).
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Recovery gives up when no transaction has committed for this long
/// (a broker down for good, or a fault that every attempt meets again).
const GIVE_UP_AFTER: Duration = Duration::from_secs(300);
/// ... or when the producer was fenced this often within
/// [`FENCE_WINDOW`]: see [`Recovery`].
const FENCE_LIMIT: usize = 3;
const FENCE_WINDOW: Duration = Duration::from_secs(600);

/// Exactly-once recovery from broker faults, across attempts of one run.
///
/// A transaction that cannot complete ends the attempt: what it left open
/// is aborted (or, with the producer abandoned, left to the broker to
/// abort), the stream threads and their tasks are dropped, and the
/// consumer leaves the group. After a bounded, growing wait, a new attempt
/// starts as a restart of the process would: a new producer with the same
/// `transactional.id` (whose `init_transactions` fences the old one and
/// has the coordinator abort its transaction), a new consumer that resumes
/// from the committed offsets, and stores restored from their changelogs
/// (their local copies never hold uncommitted work). So nothing is lost
/// and nothing is seen twice by `read_committed` readers.
///
/// Fencing. A fenced producer is usually the broker's doing: it aborts a
/// transaction older than `transaction.timeout.ms` (a freeze, a restart)
/// and bumps the epoch. A genuine second instance with the same
/// `transactional.id` (two processes sharing a state directory, which the
/// store lock normally prevents, or a `transactional.id` set in `[kafka]`
/// for both) would fence this one again at each of its own restarts, and
/// be fenced back: so a producer fenced [`FENCE_LIMIT`] times within
/// [`FENCE_WINDOW`] stops the run with an error saying so, rather than
/// fight. (The group assignment cannot tell: both instances are members.)
#[derive(Debug)]
pub(super) struct Recovery {
    pub(super) attempts: u32,
    last_progress: Instant,
    backoff: Duration,
    fencings: std::collections::VecDeque<Instant>,
}

impl Recovery {
    pub(super) fn new(now: Instant) -> Recovery {
        Recovery {
            attempts: 0,
            last_progress: now,
            backoff: BACKOFF_FIRST,
            fencings: std::collections::VecDeque::new(),
        }
    }

    /// After an attempt failed with `e` (having committed, or not): how
    /// long to wait before the next one, or why to give up.
    pub(super) fn next(
        &mut self,
        e: &RunError,
        progressed: bool,
        now: Instant,
    ) -> Result<Duration, String> {
        if progressed {
            self.last_progress = now;
            self.backoff = BACKOFF_FIRST;
        }
        if let RunError::Transaction(t) = e
            && t.is_fenced()
        {
            self.fencings.push_back(now);
            while self
                .fencings
                .front()
                .is_some_and(|t| now.duration_since(*t) > FENCE_WINDOW)
            {
                self.fencings.pop_front();
            }
            if self.fencings.len() >= FENCE_LIMIT {
                return Err(format!(
                    "the producer was fenced {} times within {} min: another live instance probably uses the same transactional.id (two processes with one state directory, or one `transactional.id` in `[kafka]` for both); stop one of them",
                    self.fencings.len(),
                    FENCE_WINDOW.as_secs() / 60
                ));
            }
        }
        let stalled = now.duration_since(self.last_progress);
        if stalled >= GIVE_UP_AFTER {
            return Err(format!(
                "no transaction committed for {} s (the bound is {} s)",
                stalled.as_secs(),
                GIVE_UP_AFTER.as_secs()
            ));
        }
        let wait = self.backoff;
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        self.attempts += 1;
        Ok(wait)
    }
}

/// Whether an exactly-once run recovers from `e` by starting over from the
/// committed offsets. Kafka failures while starting count only during a
/// recovery (`recovering`): at the first start they are the operator's to
/// see.
pub(super) fn recoverable(e: &RunError, recovering: bool) -> bool {
    match e {
        RunError::Transaction(_) => true,
        RunError::Restore(crate::error::RestoreError::Kafka(_)) => true,
        RunError::Kafka(KafkaError::Unreachable { .. } | KafkaError::Client { .. }) => recovering,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timed_out() -> RunError {
        crate::error::TransactionError::TimedOut {
            what: "committing the transaction".into(),
            after: Duration::from_secs(25),
        }
        .into()
    }

    fn fenced() -> RunError {
        crate::error::TransactionError::Fatal {
            what: "committing the transaction".into(),
            source: rdkafka::error::KafkaError::MessageProduction(
                rdkafka::types::RDKafkaErrorCode::ProducerFenced,
            ),
        }
        .into()
    }

    #[test]
    fn recovery_backs_off_exponentially_and_starts_over_after_progress() {
        let t0 = Instant::now();
        let mut r = Recovery::new(t0);
        let waits: Vec<u64> = (0..7)
            .map(|i| {
                r.next(&timed_out(), false, t0 + Duration::from_secs(i))
                    .unwrap()
                    .as_secs()
            })
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
        let after_progress = r.next(&timed_out(), true, t0 + Duration::from_secs(10));
        assert_eq!(after_progress, Ok(BACKOFF_FIRST));
        assert_eq!(r.attempts, 8);
    }

    #[test]
    fn recovery_gives_up_after_minutes_without_a_commit() {
        let t0 = Instant::now();
        let mut r = Recovery::new(t0);
        assert!(r.next(&timed_out(), false, t0 + GIVE_UP_AFTER / 2).is_ok());
        // A commit in between moves the bound.
        assert!(r.next(&timed_out(), true, t0 + GIVE_UP_AFTER).is_ok());
        assert!(
            r.next(
                &timed_out(),
                false,
                t0 + GIVE_UP_AFTER * 2 - Duration::from_secs(1)
            )
            .is_ok()
        );
        let why = r
            .next(&timed_out(), false, t0 + GIVE_UP_AFTER * 2)
            .unwrap_err();
        assert!(why.contains("no transaction committed for 300 s"), "{why}");
    }

    #[test]
    fn a_producer_fenced_again_and_again_is_a_fight_with_another_instance() {
        let t0 = Instant::now();
        let mut r = Recovery::new(t0);
        // Fenced once per broker freeze, far apart: recovered each time.
        for i in 0..5 {
            let at = t0 + (FENCE_WINDOW + Duration::from_secs(1)) * i;
            assert!(r.next(&fenced(), true, at).is_ok(), "freeze {i}");
        }
        let t1 = t0 + FENCE_WINDOW * 10;
        assert!(r.next(&fenced(), true, t1).is_ok());
        assert!(r.next(&fenced(), true, t1 + Duration::from_secs(5)).is_ok());
        let why = r
            .next(&fenced(), true, t1 + Duration::from_secs(20))
            .unwrap_err();
        assert!(why.contains("fenced 3 times within 10 min"), "{why}");
        assert!(why.contains("transactional.id"), "{why}");
    }

    #[test]
    fn only_transaction_and_kafka_failures_are_recovered_from() {
        assert!(recoverable(&timed_out(), false));
        assert!(recoverable(&fenced(), false));
        let unreachable: RunError = KafkaError::Unreachable {
            brokers: "b:1".into(),
            attempts: 3,
            waited_secs: 30,
            last: "down".into(),
        }
        .into();
        assert!(!recoverable(&unreachable, false), "at the first start");
        assert!(recoverable(&unreachable, true), "while recovering");
        assert!(!recoverable(&RunError::Delivery("too large".into()), true));
        assert!(!recoverable(&RunError::Quarantined("traps".into()), true));
    }
}
