//! When to try a failed webhook POST again: exponential backoff, capped, over a bounded
//! number of attempts (Pusher's own service retries with exponential backoff too).

use std::time::Duration;

/// The retry schedule of one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failure.
    pub initial: Duration,
    /// No wait is longer than this.
    pub max: Duration,
    /// POSTs per batch and URL, the first included; after the last failure the batch is
    /// dropped and its events counted as `failed`.
    pub attempts: u32,
}

impl Backoff {
    /// The wait after failed attempt number `attempt` (1-based): `initial × 2^(attempt-1)`,
    /// at most `max`; `None` when that was the last attempt.
    #[must_use]
    pub fn after(&self, attempt: u32) -> Option<Duration> {
        if attempt >= self.attempts {
            return None;
        }
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        Some(self.initial.saturating_mul(factor).min(self.max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn waits_double_up_to_the_cap_and_stop_after_the_last_attempt() {
        let b = Backoff {
            initial: ms(100),
            max: ms(500),
            attempts: 6,
        };
        let waits: Vec<_> = (1..=6).map(|a| b.after(a)).collect();
        assert_eq!(
            waits,
            [
                Some(ms(100)),
                Some(ms(200)),
                Some(ms(400)),
                Some(ms(500)),
                Some(ms(500)),
                None
            ]
        );
    }

    #[test]
    fn one_attempt_never_retries_and_huge_attempt_numbers_saturate() {
        let once = Backoff {
            initial: ms(100),
            max: ms(500),
            attempts: 1,
        };
        assert_eq!(once.after(1), None);
        let many = Backoff {
            initial: ms(100),
            max: Duration::from_secs(60),
            attempts: u32::MAX,
        };
        assert_eq!(many.after(40), Some(Duration::from_secs(60)));
        assert_eq!(many.after(u32::MAX - 1), Some(Duration::from_secs(60)));
    }
}
