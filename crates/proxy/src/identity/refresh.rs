//! When to renew the proxy's certificate, and how long to wait after a
//! failed attempt: pure arithmetic on times, tested by tables.
//!
//! ```text
//! issued ──── 70 % of the lifetime ────► renew ──── 30 % ────► expiry
//! failure ─► retry after 1 s, 2 s, 4 s … 30 s (never past the expiry)
//! ```

use std::time::{Duration, SystemTime};

/// The share of a certificate's remaining lifetime spent before renewing.
pub(crate) const RENEW_AT: f64 = 0.7;
/// Never renew sooner than this after an issue (a tiny lifetime would spin).
pub(crate) const MIN_REFRESH: Duration = Duration::from_secs(1);
/// Never wait longer than this before renewing.
pub(crate) const MAX_REFRESH: Duration = Duration::from_secs(24 * 60 * 60);
/// First wait after a failed attempt.
pub(crate) const RETRY_MIN: Duration = Duration::from_secs(1);
/// Longest wait after failed attempts.
pub(crate) const RETRY_MAX: Duration = Duration::from_secs(30);

/// How long after `now` to renew a certificate valid until `valid_until`:
/// 70 % of what remains, clamped to [`MIN_REFRESH`, `MAX_REFRESH`].
pub(crate) fn renew_in(now: SystemTime, valid_until: SystemTime) -> Duration {
    let remaining = valid_until.duration_since(now).unwrap_or_default();
    remaining.mul_f64(RENEW_AT).clamp(MIN_REFRESH, MAX_REFRESH)
}

/// How long to wait before attempt `failures + 1` after `failures` failed
/// ones in a row: doubling from [`RETRY_MIN`] up to [`RETRY_MAX`].
pub(crate) fn retry_in(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    (RETRY_MIN * 2u32.pow(doublings)).min(RETRY_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_at_seventy_percent() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let table: &[(u64, Duration)] = &[
            (24 * 3600, Duration::from_secs(60_480)),
            (10, Duration::from_secs(7)),
            (100, Duration::from_secs(70)),
            (1, MIN_REFRESH),
            (0, MIN_REFRESH),
            (365 * 24 * 3600, MAX_REFRESH),
        ];
        for (remaining, expected) in table {
            let valid_until = now + Duration::from_secs(*remaining);
            assert_eq!(renew_in(now, valid_until), *expected, "{remaining}s left");
        }
        let expired = now - Duration::from_secs(5);
        assert_eq!(renew_in(now, expired), MIN_REFRESH);
    }

    #[test]
    fn retries_back_off() {
        let table: &[(u32, u64)] = &[(0, 1), (1, 1), (2, 2), (3, 4), (5, 16), (6, 30), (40, 30)];
        for (failures, seconds) in table {
            assert_eq!(
                retry_in(*failures),
                Duration::from_secs(*seconds),
                "{failures}"
            );
        }
    }
}
