//! Keeping the catalog in step with the mesh file: [`MeshFileSource::reload`]
//! (read; when the text changed, parse the changed documents and update the
//! catalog) and [`MeshFileSource::run`] (reload on inotify events — at once
//! when the file was renamed into place or closed after writing, after a
//! short settle otherwise — and on a one-second poll, so edits land within a
//! second even where inotify misses them).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use weft_core::Workload;

use super::{DocumentIndex, DocumentProblem, Fingerprint, MeshFileError, parse_changes};
use crate::catalog::SharedCatalog;
use crate::file_watch;

/// How loading the mesh file is going: for logs, metrics and `/ready`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MeshFileStatus {
    /// Loads that reached the catalog.
    pub good_loads: u64,
    /// Distinct failed attempts (the same bad text is counted once).
    pub failed_loads: u64,
    /// When the catalog last took a version of the file.
    pub last_good_load: Option<SystemTime>,
    /// How many objects that version held.
    pub objects: usize,
    /// How long the latest attempt took: read, parse and (when good) the catalog update.
    pub last_load_duration: Option<Duration>,
    /// The latest attempt's error, one problem per line; `None` once a good version loads.
    pub last_error: Option<String>,
    /// The latest attempt's problems (empty for read errors).
    pub last_problems: Vec<DocumentProblem>,
    /// When the latest failure happened.
    pub last_error_at: Option<SystemTime>,
}

impl MeshFileStatus {
    /// Whether the file as it is now is the version being served.
    pub fn is_current(&self) -> bool {
        self.last_good_load.is_some() && self.last_error.is_none()
    }
}

/// What was last tried, so an unchanged file is neither reloaded nor re-reported.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Attempt {
    Text(Fingerprint),
    Unreadable(String),
}

/// The mesh file feeding a catalog.
#[derive(Debug)]
pub struct MeshFileSource {
    path: PathBuf,
    catalog: SharedCatalog,
    status: Arc<Mutex<MeshFileStatus>>,
    last_attempt: Option<Attempt>,
    /// The documents of the version the catalog holds.
    index: DocumentIndex,
    workloads: watch::Sender<Arc<[Workload]>>,
}

impl MeshFileSource {
    /// A source for `path` feeding `catalog`; nothing is read until [`reload`](Self::reload).
    pub fn new(path: impl Into<PathBuf>, catalog: SharedCatalog) -> Self {
        Self {
            path: path.into(),
            catalog,
            status: Arc::default(),
            last_attempt: None,
            index: DocumentIndex::default(),
            workloads: watch::Sender::new(Arc::from(Vec::new())),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A copy of the current status.
    pub fn status(&self) -> MeshFileStatus {
        lock(&self.status).clone()
    }

    /// The live status, for an admin server that outlives this value's moves.
    pub fn status_handle(&self) -> Arc<Mutex<MeshFileStatus>> {
        Arc::clone(&self.status)
    }

    /// The Workloads of the version serving, republished after each good load
    /// (for consumers that need more than the catalog's queries, such as the
    /// identity token files).
    pub fn subscribe_workloads(&self) -> watch::Receiver<Arc<[Workload]>> {
        self.workloads.subscribe()
    }

    /// Reads the file; when its text changed since the last attempt, parses
    /// the documents that changed and updates the catalog (resets it on the
    /// first load). `Ok(true)`: a new version is serving;
    /// `Ok(false)`: nothing changed; `Err`: this version is invalid (recorded in
    /// the status and logged) and the last good one keeps serving.
    pub fn reload(&mut self) -> Result<bool, MeshFileError> {
        let started = std::time::Instant::now();
        let read = std::fs::read_to_string(&self.path);
        let attempt = match &read {
            Ok(text) => Attempt::Text(Fingerprint::of(text)),
            Err(error) => Attempt::Unreadable(error.to_string()),
        };
        if self.last_attempt.as_ref() == Some(&attempt) {
            return Ok(false);
        }
        self.last_attempt = Some(attempt);
        let loaded = read
            .map_err(|source| MeshFileError::Read {
                path: self.path.clone(),
                source,
            })
            .and_then(|text| {
                parse_changes(&text, &self.index).map_err(|problems| MeshFileError::Invalid {
                    path: self.path.clone(),
                    problems,
                })
            })
            .and_then(|changes| {
                let mut catalog = lock(&self.catalog);
                let updated = if self.index.is_empty() {
                    catalog.reset(changes.applied)
                } else {
                    catalog.update(changes.applied, changes.deleted).map(drop)
                };
                let workloads = catalog.workloads();
                drop(catalog);
                updated.map_err(|source| MeshFileError::Rejected {
                    path: self.path.clone(),
                    source,
                })?;
                self.index = changes.index;
                Ok((self.index.len(), workloads))
            });
        let mut status = lock(&self.status);
        status.last_load_duration = Some(started.elapsed());
        match loaded {
            Ok((count, workloads)) => {
                self.workloads.send_replace(Arc::from(workloads));
                status.good_loads += 1;
                status.last_good_load = Some(SystemTime::now());
                status.objects = count;
                status.last_error = None;
                status.last_problems.clear();
                tracing::info!(path = %self.path.display(), objects = count, "mesh file loaded");
                Ok(true)
            }
            Err(error) => {
                status.failed_loads += 1;
                status.last_error = Some(error.to_string());
                status.last_problems = error.problems().to_vec();
                status.last_error_at = Some(SystemTime::now());
                tracing::warn!(path = %self.path.display(), "mesh file rejected; the last good version keeps serving:\n{error}");
                Err(error)
            }
        }
    }

    /// Watches the file until `shutdown` completes: reloads on change events
    /// (the directory is watched, as editors replace files) and every
    /// [`POLL_INTERVAL`](file_watch::POLL_INTERVAL).
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        let directory = file_watch::directory_of(&self.path);
        let files = [self.path.clone()];
        file_watch::watch_directories("mesh file", &[directory], &files, shutdown, || {
            // Errors are recorded in the status and logged by reload.
            let _ = self.reload();
        })
        .await;
    }
}

/// Locks, recovering the data if a holder panicked (the catalog stays usable).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
