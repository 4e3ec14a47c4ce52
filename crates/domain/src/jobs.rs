//! Background jobs: their states and the retry schedule after a failed attempt.
//!
//! A job is retried with exponential backoff and "equal jitter": the n-th retry waits between
//! half and all of `base × 2^(n−1)`, capped at `max_delay`, so servers that failed together do
//! not retry together. After `max_attempts` attempts the job fails for good and waits in the
//! dead-letter list for a person.

use jiff::{SignedDuration, Timestamp};

use crate::InvalidValue;

/// The stage a job is at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Waiting for its due time or its next attempt.
    Queued,
    /// Claimed by a worker, whose lease gives the time until which the job is its own.
    Running,
    Done,
    /// Out of attempts or failed for a reason retrying cannot fix.
    Failed,
    Cancelled,
}

impl JobState {
    pub const ALL: [Self; 5] = [
        Self::Queued,
        Self::Running,
        Self::Done,
        Self::Failed,
        Self::Cancelled,
    ];

    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(code: &str) -> Result<Self, InvalidValue> {
        Self::ALL
            .into_iter()
            .find(|state| state.code() == code)
            .ok_or_else(|| {
                InvalidValue::new(
                    "state",
                    format!(
                        "'{code}' is not a job state; use queued, running, done, failed or cancelled"
                    ),
                )
            })
    }

    /// Whether the job will not run again unless a person retries it.
    #[must_use]
    pub fn is_final(self) -> bool {
        matches!(self, Self::Done | Self::Failed | Self::Cancelled)
    }
}

/// How often and how soon a failed job is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The wait before the first retry, before jitter.
    pub base_delay: SignedDuration,
    pub max_delay: SignedDuration,
}

impl Default for RetryPolicy {
    /// Eight attempts, the first retry after 30 to 60 seconds, no wait longer than an hour: a
    /// job that keeps failing is given up after about two hours.
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_delay: SignedDuration::from_secs(60),
            max_delay: SignedDuration::from_hours(1),
        }
    }
}

impl RetryPolicy {
    /// Returns the time of the next attempt after `attempts` failed ones, or `None` when the job is out
    /// of attempts. `jitter` is a random number in `0.0..=1.0`; it picks the point between half
    /// the delay and the whole delay.
    #[must_use]
    pub fn next_attempt(
        &self,
        attempts: u32,
        failed_at: Timestamp,
        jitter: f64,
    ) -> Option<Timestamp> {
        if attempts >= self.max_attempts {
            return None;
        }
        let exponent = attempts.saturating_sub(1).min(30);
        let full = self
            .base_delay
            .checked_mul(1_i32 << exponent)
            .unwrap_or(self.max_delay)
            .min(self.max_delay);
        let jitter = jitter.clamp(0.0, 1.0);
        let delay = full.mul_f64(0.5 + 0.5 * jitter);
        failed_at.checked_add(delay).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().expect("instant")
    }

    #[test]
    fn backoff_doubles_with_jitter_and_a_cap() {
        let policy = RetryPolicy::default();
        let failed = at("2026-12-05T10:00:00Z");
        // After the first failure: 30 s without jitter, 60 s with full jitter.
        assert_eq!(
            policy.next_attempt(1, failed, 0.0),
            Some(at("2026-12-05T10:00:30Z"))
        );
        assert_eq!(
            policy.next_attempt(1, failed, 1.0),
            Some(at("2026-12-05T10:01:00Z"))
        );
        // After the third: base × 4 = 4 minutes at full jitter.
        assert_eq!(
            policy.next_attempt(3, failed, 1.0),
            Some(at("2026-12-05T10:04:00Z"))
        );
        // After the seventh: 64 minutes, capped at the hour.
        assert_eq!(
            policy.next_attempt(7, failed, 1.0),
            Some(at("2026-12-05T11:00:00Z"))
        );
        // Out of attempts.
        assert_eq!(policy.next_attempt(8, failed, 0.5), None);
        // Jitter outside 0..1 is clamped.
        assert_eq!(
            policy.next_attempt(1, failed, 7.0),
            Some(at("2026-12-05T10:01:00Z"))
        );
    }

    #[test]
    fn states_round_trip() {
        for state in JobState::ALL {
            assert_eq!(JobState::parse(state.code()), Ok(state));
        }
        assert!(JobState::parse("stuck").is_err());
        assert!(JobState::Done.is_final());
        assert!(!JobState::Running.is_final());
    }
}
