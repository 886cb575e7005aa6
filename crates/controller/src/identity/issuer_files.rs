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
use std::sync::{Arc, Mutex};

use time::OffsetDateTime;

use weft_core::pki::{CredentialFile, CredentialProblem};

use super::authority::{CertificateAuthority, CredentialError, IssuerCredentials};
use super::init::{ISSUER_CERTIFICATE_FILE, ISSUER_KEY_FILE};
use super::issuer::IssuerRecorder;
pub use super::issuer::{AuthorityHandle, IssuerMetrics, IssuerStatus};
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

/// What was last read, so unchanged files are neither reloaded nor re-reported.
type Attempt = [Result<Vec<u8>, String>; 3];

/// The issuer files feeding an [`AuthorityHandle`].
#[derive(Debug)]
pub struct IssuerSource {
    paths: IssuerPaths,
    issuer: IssuerRecorder,
    last_attempt: Option<Attempt>,
}

impl IssuerSource {
    /// A source for `paths`; nothing is read until [`reload`](Self::reload).
    pub fn new(paths: IssuerPaths, metrics: IssuerMetrics) -> Self {
        Self {
            paths,
            issuer: IssuerRecorder::new("issuer files", metrics),
            last_attempt: None,
        }
    }

    /// The handle the Identity service signs with.
    pub fn authority(&self) -> AuthorityHandle {
        self.issuer.authority()
    }

    /// The live status, for the admin server.
    pub fn status_handle(&self) -> Arc<Mutex<IssuerStatus>> {
        self.issuer.status_handle()
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
        self.issuer.record(loaded)
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
