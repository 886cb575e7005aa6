//! When the controller's own certificates are renewed, and the loop that
//! renews them: the controller's serving certificate
//! ([`serving`](super::serving)) and the injector's
//! ([`injector::serving`](crate::injector::serving)) both follow the issuer
//! this way.
//!
//! ```text
//! sleep 70 % of the remaining lifetime (at least 1 s) ─┐
//! the issuer changes ──────────────────────────────────┴► renew
//! renewed ─► sleep 70 % of the new remaining lifetime
//! failed  ─► keep the current certificate, retry in 10 s
//! ```

use std::fmt::Display;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::watch;

use super::authority::CertificateAuthority;

/// Share of the remaining lifetime after which a certificate is renewed.
const RENEW_AT: f64 = 0.7;
/// The earliest renewal, so a very short lifetime does not spin.
const MIN_RENEWAL: Duration = Duration::from_secs(1);
/// Wait after a failed renewal.
const RETRY: Duration = Duration::from_secs(10);

/// When to renew a certificate expiring at `not_after`, seen at `now`: after
/// 70 % of the remaining lifetime, at least [`MIN_RENEWAL`] from now.
pub fn renew_in(now: OffsetDateTime, not_after: OffsetDateTime) -> Duration {
    let remaining = (not_after - now).as_seconds_f64().max(0.0);
    Duration::from_secs_f64(remaining * RENEW_AT).max(MIN_RENEWAL)
}

/// A certificate of the controller's own that follows the issuer.
pub trait Renewable {
    /// Why a renewal failed.
    type Error: Display;
    /// What the log lines call it, e.g. "controller certificate".
    const NAME: &'static str;

    /// The issuer it follows; a change renews at once.
    fn issuer(&mut self) -> &mut watch::Receiver<Option<Arc<CertificateAuthority>>>;
    /// When the current certificate expires.
    fn not_after(&self) -> OffsetDateTime;
    /// Issues again from the current issuer and installs the result; on
    /// failure the current certificate stays.
    fn renew(&mut self) -> Result<(), Self::Error>;
}

/// Renews `certificate` until `shutdown` completes (or the issuer's sender
/// is gone): at 70 % of the remaining lifetime, and at once whenever a new
/// issuer loads; a failure is retried after [`RETRY`].
pub async fn renew_until<R: Renewable>(certificate: &mut R, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut wait = renew_in(OffsetDateTime::now_utc(), certificate.not_after());
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(wait) => {}
            changed = certificate.issuer().changed() => {
                if changed.is_err() {
                    return;
                }
                tracing::info!("identity issuer changed; renewing the {}", R::NAME);
            }
        }
        wait = match certificate.renew() {
            Ok(()) => renew_in(OffsetDateTime::now_utc(), certificate.not_after()),
            Err(error) => {
                tracing::warn!(%error, "keeping the current {}", R::NAME);
                RETRY
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn renews_at_seventy_percent_of_the_remaining_lifetime() {
        let now = datetime!(2026-11-25 18:00:00 UTC);
        let cases = [
            ("24 h left", datetime!(2026-11-26 18:00:00 UTC), 60_480.0),
            ("100 s left", datetime!(2026-11-25 18:01:40 UTC), 70.0),
            (
                "1 s left: the floor",
                datetime!(2026-11-25 18:00:01 UTC),
                1.0,
            ),
            (
                "expired: the floor",
                datetime!(2026-11-25 17:00:00 UTC),
                1.0,
            ),
        ];
        for (name, not_after, seconds) in cases {
            assert_eq!(renew_in(now, not_after).as_secs_f64(), seconds, "{name}");
        }
    }
}
