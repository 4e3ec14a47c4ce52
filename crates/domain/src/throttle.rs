//! Limits on failed sign-in attempts, per account and per client address.
//!
//! After too many failures in a sliding window, further attempts are refused until the oldest
//! counted failure leaves the window. The check runs before the password is verified, so a
//! guessing attack also stops costing Argon2 work.

use jiff::{SignedDuration, Timestamp};

/// How many failures are tolerated, and over which window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    pub max_failures_per_account: usize,
    pub max_failures_per_address: usize,
    pub window: SignedDuration,
}

impl Default for ThrottlePolicy {
    /// Five failures per account and twenty per address within 15 minutes. The per-address limit
    /// is higher because several people (a clinic, a care home) may share one address.
    fn default() -> Self {
        Self {
            max_failures_per_account: 5,
            max_failures_per_address: 20,
            window: SignedDuration::from_mins(15),
        }
    }
}

impl ThrottlePolicy {
    /// How long the caller must wait before the next attempt, or `None` when an attempt is
    /// allowed now. `failures` are the instants of recent failures, in any order.
    #[must_use]
    pub fn wait_before_next_attempt(
        &self,
        failures: &[Timestamp],
        max_failures: usize,
        now: Timestamp,
    ) -> Option<SignedDuration> {
        let window_start = now.saturating_sub(self.window).unwrap_or(now);
        let mut recent: Vec<Timestamp> = failures
            .iter()
            .copied()
            .filter(|at| *at > window_start)
            .collect();
        if recent.len() < max_failures {
            return None;
        }
        recent.sort_unstable();
        // The attempt is allowed again once enough failures have left the window that fewer
        // than `max_failures` remain: when the (len - max + 1)-th oldest one leaves.
        let releasing = recent[recent.len() - max_failures];
        let allowed_at = releasing.saturating_add(self.window).unwrap_or(now);
        Some(
            allowed_at
                .duration_since(now)
                .max(SignedDuration::from_secs(1)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: i64) -> Timestamp {
        Timestamp::from_second(1_796_000_000 + minute * 60).expect("valid")
    }

    #[test]
    fn attempts_allowed_below_the_limit() {
        let policy = ThrottlePolicy::default();
        let failures: Vec<Timestamp> = (0..4).map(at).collect();
        assert_eq!(policy.wait_before_next_attempt(&failures, 5, at(5)), None);
    }

    #[test]
    fn limit_reached_waits_until_oldest_failure_expires() {
        let policy = ThrottlePolicy::default();
        let failures: Vec<Timestamp> = (0..5).map(at).collect();
        assert_eq!(
            policy.wait_before_next_attempt(&failures, 5, at(5)),
            Some(SignedDuration::from_mins(10))
        );
        assert_eq!(
            policy.wait_before_next_attempt(&failures, 5, at(14)),
            Some(SignedDuration::from_mins(1))
        );
        assert_eq!(policy.wait_before_next_attempt(&failures, 5, at(15)), None);
    }

    #[test]
    fn old_failures_do_not_count() {
        let policy = ThrottlePolicy::default();
        let failures: Vec<Timestamp> = vec![at(0), at(1), at(20), at(21), at(22)];
        assert_eq!(policy.wait_before_next_attempt(&failures, 5, at(23)), None);
    }

    #[test]
    fn more_failures_than_limit_wait_for_enough_to_expire() {
        let policy = ThrottlePolicy::default();
        let failures: Vec<Timestamp> = (0..7).map(at).collect();
        // Seven failures at minutes 0..6 with a limit of 5: three must leave, the third at 2 + 15.
        assert_eq!(
            policy.wait_before_next_attempt(&failures, 5, at(7)),
            Some(SignedDuration::from_mins(10))
        );
    }
}
