//! Exponential backoff with jitter for re-opening discovery streams.
//!
//! Attempt `n` (from 0) waits `min × 2ⁿ`, capped at `max`, plus up to
//! `jitter ×` that delay at random, so proxies that lost the same controller
//! do not all come back in the same millisecond.

use std::time::Duration;

/// Why a backoff could not be built.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[cfg(test)]
pub(crate) enum BackoffError {
    /// `min` is zero or larger than `max`.
    #[error("backoff min must be positive and at most max")]
    InvalidRange,
    /// `jitter` is not within 0–100.
    #[error("backoff jitter must be within 0 and 100")]
    InvalidJitter,
}

/// Exponential backoff parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ExponentialBackoff {
    min: Duration,
    max: Duration,
    jitter: f64,
}

impl Default for ExponentialBackoff {
    /// 100 ms doubling to 10 s, jitter 0.1.
    fn default() -> Self {
        ExponentialBackoff {
            min: Duration::from_millis(100),
            max: Duration::from_secs(10),
            jitter: 0.1,
        }
    }
}

impl ExponentialBackoff {
    /// A backoff from `min` doubling up to `max`, with `jitter` as a
    /// fraction of the delay (0.1 = up to 10 % more).
    #[cfg(test)]
    pub(crate) fn new(min: Duration, max: Duration, jitter: f64) -> Result<Self, BackoffError> {
        if min.is_zero() || min > max {
            return Err(BackoffError::InvalidRange);
        }
        if !(0.0..=100.0).contains(&jitter) {
            return Err(BackoffError::InvalidJitter);
        }
        Ok(ExponentialBackoff { min, max, jitter })
    }

    /// The delay before attempt `attempt` (0 = the first retry), given a
    /// uniformly random `random` in `[0, 1)`.
    pub(crate) fn delay(&self, attempt: u32, random: f64) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(31));
        let base = self.min.saturating_mul(factor).min(self.max);
        let extra = base.as_secs_f64() * self.jitter * random.clamp(0.0, 1.0);
        base + Duration::from_secs_f64(extra)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_min_and_stop_at_max() {
        let backoff = ExponentialBackoff::default();
        let millis = |ms| Duration::from_millis(ms);
        // (attempt, random, delay)
        let table = [
            (0, 0.0, millis(100)),
            (1, 0.0, millis(200)),
            (2, 0.0, millis(400)),
            (6, 0.0, millis(6400)),
            (7, 0.0, millis(10_000)),
            (40, 0.0, millis(10_000)),
            (u32::MAX, 0.0, millis(10_000)),
            (0, 0.5, millis(105)),
            (7, 0.999_999, Duration::from_secs_f64(10.0 + 0.999_999)),
        ];
        for (attempt, random, expected) in table {
            let delay = backoff.delay(attempt, random);
            let difference = delay.abs_diff(expected);
            assert!(
                difference < Duration::from_micros(1),
                "attempt {attempt}: {delay:?} != {expected:?}"
            );
        }
    }

    #[test]
    fn invalid_parameters_are_rejected() {
        let second = Duration::from_secs(1);
        assert_eq!(
            ExponentialBackoff::new(Duration::ZERO, second, 0.1),
            Err(BackoffError::InvalidRange)
        );
        assert_eq!(
            ExponentialBackoff::new(second * 2, second, 0.1),
            Err(BackoffError::InvalidRange)
        );
        assert_eq!(
            ExponentialBackoff::new(second, second, -1.0),
            Err(BackoffError::InvalidJitter)
        );
        assert!(ExponentialBackoff::new(second, second, 0.0).is_ok());
    }
}
