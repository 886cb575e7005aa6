//! The issuer's files: `--identity-issuer-dir` (`crt.pem`, `key.pem`) and
//! `--identity-trust-anchors`. [`IssuerSource::reload`] reads all three and,
//! when they changed, checks them ([`CertificateAuthority::load`]) and swaps
//! the authority in; [`IssuerSource::run`] reloads on inotify events in their
//! directories and on a one-second poll.
//!
//! ```text
//! files changed ─► load + chain check ─► good: new authority serves (new leaves chain to it)
//!                                    └► bad:  old authority keeps serving; the error goes
//!                                             to the log, the failed-reload metric and /ready
//! ```

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use time::OffsetDateTime;
use tokio::sync::watch;

use super::authority::{
    CertificateAuthority, CredentialError, CredentialFile, CredentialProblem, IssuerCredentials,
};
use super::init::{ISSUER_CERTIFICATE_FILE, ISSUER_KEY_FILE};
use crate::file_watch;

/// Where the issuer's files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerPaths {
    /// The directory with `crt.pem` and `key.pem`.
    pub issuer_dir: PathBuf,
    /// The trust-anchor PEM bundle.
    pub trust_anchors: PathBuf,
}

impl IssuerPaths {
    /// `crt.pem`.
    pub fn certificate(&self) -> PathBuf {
        self.issuer_dir.join(ISSUER_CERTIFICATE_FILE)
    }

    /// `key.pem`.
    pub fn key(&self) -> PathBuf {
        self.issuer_dir.join(ISSUER_KEY_FILE)
    }

    /// The file a credential problem is in.
    pub fn of(&self, file: CredentialFile) -> PathBuf {
        match file {
            CredentialFile::IssuerCertificate => self.certificate(),
            CredentialFile::IssuerKey => self.key(),
            CredentialFile::TrustAnchors => self.trust_anchors.clone(),
        }
    }
}

/// Why the issuer files could not be used.
#[derive(Debug, thiserror::Error)]
pub enum IssuerFilesError {
    /// A file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file's contents are unusable.
    #[error("{path}: {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: CredentialProblem,
    },
}

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

/// What was last read, so unchanged files are neither reloaded nor re-reported.
type Attempt = [Result<Vec<u8>, String>; 3];

/// The issuer files feeding an [`AuthorityHandle`].
#[derive(Debug)]
pub struct IssuerSource {
    paths: IssuerPaths,
    authority: AuthorityHandle,
    status: Arc<Mutex<IssuerStatus>>,
    metrics: IssuerMetrics,
    last_attempt: Option<Attempt>,
}

impl IssuerSource {
    /// A source for `paths`; nothing is read until [`reload`](Self::reload).
    pub fn new(paths: IssuerPaths, metrics: IssuerMetrics) -> Self {
        Self {
            paths,
            authority: AuthorityHandle::default(),
            status: Arc::default(),
            metrics,
            last_attempt: None,
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

    /// Reads the three files; when any changed since the last attempt, loads
    /// them. `Ok(true)`: a new issuer is signing; `Ok(false)`: nothing
    /// changed; `Err`: these files are unusable (recorded, logged, counted)
    /// and the previous issuer, if any, keeps signing.
    pub fn reload(&mut self) -> Result<bool, IssuerFilesError> {
        let files = [
            self.paths.certificate(),
            self.paths.key(),
            self.paths.trust_anchors.clone(),
        ];
        let reads = files.clone().map(std::fs::read);
        let attempt: Attempt = std::array::from_fn(|index| match &reads[index] {
            Ok(bytes) => Ok(bytes.clone()),
            Err(error) => Err(error.to_string()),
        });
        if self.last_attempt.as_ref() == Some(&attempt) {
            return Ok(false);
        }
        self.last_attempt = Some(attempt);
        let loaded = self.load(files, reads);
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
                tracing::warn!(%error, "identity issuer rejected; the previous issuer keeps signing");
                Err(error)
            }
        }
    }

    fn load(
        &self,
        files: [PathBuf; 3],
        reads: [std::io::Result<Vec<u8>>; 3],
    ) -> Result<CertificateAuthority, IssuerFilesError> {
        let mut contents = Vec::with_capacity(3);
        for (path, read) in files.into_iter().zip(reads) {
            contents.push(read.map_err(|source| IssuerFilesError::Read { path, source })?);
        }
        let credentials = IssuerCredentials {
            certificate_pem: &contents[0],
            key_pem: &contents[1],
            trust_anchors_pem: &contents[2],
        };
        CertificateAuthority::load(&credentials, OffsetDateTime::now_utc()).map_err(
            |CredentialError { file, problem }| IssuerFilesError::Invalid {
                path: self.paths.of(file),
                problem,
            },
        )
    }

    /// Watches the files until `shutdown` completes (their directories via
    /// inotify, plus a poll every second).
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        let mut directories = vec![self.paths.issuer_dir.clone()];
        let anchors_directory = file_watch::directory_of(&self.paths.trust_anchors);
        if !same_directory(&anchors_directory, &self.paths.issuer_dir) {
            directories.push(anchors_directory);
        }
        let files = [
            self.paths.issuer_dir.join("crt.pem"),
            self.paths.issuer_dir.join("key.pem"),
            self.paths.trust_anchors.clone(),
        ];
        file_watch::watch_directories(
            "identity issuer files",
            &directories,
            &files,
            shutdown,
            move || {
                // Errors are recorded in the status and logged by reload
                // (on the blocking pool: it reads the files).
                let _ = self.reload();
            },
        )
        .await;
    }
}

fn same_directory(left: &Path, right: &Path) -> bool {
    match (left.canonicalize(), right.canonicalize()) {
        (Ok(left), Ok(right)) => left == right,
        _ => left == right,
    }
}
