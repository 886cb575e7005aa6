//! Metrics of the proxy's own certificate, with Linkerd's names:
//! `identity_cert_expiration_timestamp_seconds` (when the current leaf
//! expires, Unix seconds; 0 before the first) and
//! `identity_cert_refresh_total{result}` (Certify calls: `ok`, `error` when
//! the call failed, `invalid_certificate` when the certificate that came back
//! cannot be used — wrong name, expired, untrusted, or not for our key).

use prometheus_client::encoding::{EncodeLabel, EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::time::SystemTime;

/// The identity families.
#[derive(Clone, Debug, Default)]
pub(crate) struct IdentityMetrics {
    expiration: Gauge,
    refreshes: Family<RefreshLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct RefreshLabels {
    result: &'static str,
}

impl EncodeLabelSet for RefreshLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), std::fmt::Error> {
        ("result", self.result).encode(encoder.encode_label())
    }
}

impl IdentityMetrics {
    /// Creates and registers the families.
    pub(crate) fn new(registry: &mut Registry) -> IdentityMetrics {
        let metrics = IdentityMetrics::default();
        registry.register(
            "identity_cert_expiration_timestamp_seconds",
            "When the proxy's current certificate expires, in seconds since the Unix epoch.",
            metrics.expiration.clone(),
        );
        registry.register(
            "identity_cert_refresh",
            "Certificate requests to the identity service, by result.",
            metrics.refreshes.clone(),
        );
        metrics
    }

    /// A new certificate, valid until `valid_until`.
    pub(crate) fn refreshed(&self, valid_until: SystemTime) {
        let seconds = valid_until
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        self.expiration.set(seconds as i64);
        self.refreshes
            .get_or_create(&RefreshLabels { result: "ok" })
            .inc();
    }

    /// A certificate that came back but cannot be used.
    pub(crate) fn rejected(&self) {
        self.refreshes
            .get_or_create(&RefreshLabels {
                result: "invalid_certificate",
            })
            .inc();
    }

    /// A failed certificate request.
    pub(crate) fn failed(&self) {
        self.refreshes
            .get_or_create(&RefreshLabels { result: "error" })
            .inc();
    }
}
