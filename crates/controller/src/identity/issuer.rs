//! What every issuer source shares: the [`AuthorityHandle`] the Identity
//! service and the controller's own certificate sign with, the
//! [`IssuerStatus`] `/ready` shows, the [`IssuerMetrics`], and
//! [`IssuerRecorder::record`], the one place a load's outcome is applied.
//!
//! ```text
//! source (files, or a Secret + ConfigMap) ─► CertificateAuthority::load* ─► record
//!    good: swap the authority in (subscribers renew), status current, expiry gauge
//!    bad:  keep the previous authority; status.last_error, failed-reload counter, log
//! ```

use std::fmt::Display;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use time::OffsetDateTime;
use tokio::sync::watch;

use super::authority::CertificateAuthority;

/// The authority currently signing leaves; swapped on reload. Holders can
/// [`subscribe`](Self::subscribe) to hear of each swap.
#[derive(Debug, Clone)]
pub struct AuthorityHandle(Arc<watch::Sender<Option<Arc<CertificateAuthority>>>>);

impl Default for AuthorityHandle {
    fn default() -> Self {
        Self(Arc::new(watch::Sender::new(None)))
    }
}

impl AuthorityHandle {
    /// The current authority, if one has loaded.
    pub fn current(&self) -> Option<Arc<CertificateAuthority>> {
        self.0.borrow().clone()
    }

    /// A receiver that sees every new authority.
    pub fn subscribe(&self) -> watch::Receiver<Option<Arc<CertificateAuthority>>> {
        self.0.subscribe()
    }

    pub(crate) fn replace(&self, authority: CertificateAuthority) {
        self.0.send_replace(Some(Arc::new(authority)));
    }
}

/// How loading the issuer is going: for logs, metrics and `/ready`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IssuerStatus {
    /// Loads that replaced the authority (the first included).
    pub good_loads: u64,
    /// Distinct failed attempts (the same bad files are counted once).
    pub failed_loads: u64,
    /// When the authority last changed.
    pub last_good_load: Option<SystemTime>,
    /// The serving issuer's subject.
    pub issuer: Option<String>,
    /// The serving issuer's NotAfter.
    pub issuer_not_after: Option<OffsetDateTime>,
    /// The latest attempt's error; `None` once good files load.
    pub last_error: Option<String>,
    /// When the latest failure happened.
    pub last_error_at: Option<SystemTime>,
}

impl IssuerStatus {
    /// Whether the files as they are now are what is serving.
    pub fn is_current(&self) -> bool {
        self.last_good_load.is_some() && self.last_error.is_none()
    }
}

/// Issuer metrics: reloads, failed reloads, the serving issuer's expiry.
#[derive(Debug, Clone, Default)]
pub struct IssuerMetrics {
    reloads: Counter,
    failed_reloads: Counter,
    expiration_seconds: Gauge,
}

impl IssuerMetrics {
    /// Registers `identity_issuer_reloads_total`,
    /// `identity_issuer_failed_reloads_total` and
    /// `identity_issuer_expiration_timestamp_seconds`.
    pub fn new(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "identity_issuer_reloads",
            "Issuer credentials loaded after start-up (a changed issuer now signing)",
            metrics.reloads.clone(),
        );
        registry.register(
            "identity_issuer_failed_reloads",
            "Issuer credential changes rejected (the previous issuer kept signing)",
            metrics.failed_reloads.clone(),
        );
        registry.register(
            "identity_issuer_expiration_timestamp_seconds",
            "When the signing issuer certificate expires (Unix time)",
            metrics.expiration_seconds.clone(),
        );
        metrics
    }
}

/// Applies load outcomes to an authority, its status and its metrics; every
/// clone shares them.
#[derive(Debug, Clone)]
pub struct IssuerRecorder {
    /// Where the credentials come from, for the log (`issuer files`,
    /// `Secret weft/weft-identity-issuer`).
    source: Arc<str>,
    authority: AuthorityHandle,
    status: Arc<Mutex<IssuerStatus>>,
    metrics: IssuerMetrics,
}

impl IssuerRecorder {
    /// A recorder with no authority yet; `source` names the credentials in logs.
    pub fn new(source: impl Into<Arc<str>>, metrics: IssuerMetrics) -> Self {
        Self {
            source: source.into(),
            authority: AuthorityHandle::default(),
            status: Arc::default(),
            metrics,
        }
    }

    /// The handle the Identity service signs with.
    pub fn authority(&self) -> AuthorityHandle {
        self.authority.clone()
    }

    /// The live status, for the admin server.
    pub fn status_handle(&self) -> Arc<Mutex<IssuerStatus>> {
        Arc::clone(&self.status)
    }

    /// Applies one load: a good one swaps the authority in (`Ok(true)`); a
    /// bad one is recorded, logged and counted, and the previous authority,
    /// if any, keeps signing (the error is handed back).
    pub fn record<E: Display>(&self, loaded: Result<CertificateAuthority, E>) -> Result<bool, E> {
        let first = self.authority.current().is_none();
        let mut status = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        match loaded {
            Ok(authority) => {
                let not_after = authority.issuer_not_after();
                status.good_loads += 1;
                status.last_good_load = Some(SystemTime::now());
                status.issuer = Some(authority.issuer_subject().to_string());
                status.issuer_not_after = Some(not_after);
                status.last_error = None;
                self.metrics
                    .expiration_seconds
                    .set(not_after.unix_timestamp());
                if !first {
                    self.metrics.reloads.inc();
                }
                tracing::info!(
                    source = &*self.source,
                    issuer = authority.issuer_subject(),
                    %not_after,
                    "identity issuer loaded"
                );
                self.authority.replace(authority);
                Ok(true)
            }
            Err(error) => {
                status.failed_loads += 1;
                status.last_error = Some(error.to_string());
                status.last_error_at = Some(SystemTime::now());
                if !first {
                    self.metrics.failed_reloads.inc();
                }
                tracing::warn!(
                    source = &*self.source,
                    %error,
                    "identity issuer rejected; the previous issuer keeps signing"
                );
                Err(error)
            }
        }
    }
}
