//! Keeping the catalog in step with the mesh file: [`MeshFileSource::reload`]
//! (read; when the text changed, parse the changed documents and update the
//! catalog) and [`MeshFileSource::run`] (reload on inotify events — at once
//! when the file was renamed into place or closed after writing, after a
//! short settle otherwise — and on a one-second poll, so edits land within a
//! second even where inotify misses them).
//!
//! ```text
//! reload ─► stat: same file, size and times as the last read (and read < 10 s ago) ─► nothing
//!        ─► size > --mesh-file-max-bytes ─► refused, unread
//!        ─► read, fingerprint the text: same as the last attempt ─► nothing (not parsed)
//!        ─► documents > --mesh-file-max-objects ─► refused, unparsed
//!        ─► parse the changed documents ─► catalog
//!        ─► a big version replaced: give the freed memory back to the system
//! ```
//!
//! Every refusal leaves the last good version serving.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;
use weft_core::Workload;

use super::{
    DocumentIndex, DocumentProblem, Fingerprint, MeshFileError, MeshFileLimits, count_documents,
    parse_changes, read_bounded,
};
use crate::catalog::SharedCatalog;
use crate::file_watch;

/// An unchanged-looking file (same [`FileStamp`]) is still read this often.
const FULL_READ_INTERVAL: Duration = Duration::from_secs(10);
/// A stamp is trusted only when the file was last modified at least this
/// long before it was read: a later write then gets a later time even on a
/// file system with coarse timestamps, so an edit always changes the stamp.
const SETTLED_AFTER: Duration = Duration::from_secs(1);
/// After a load replacing or bringing a version at least this big, freed
/// memory is handed back to the system.
const RELEASE_MEMORY_AFTER_BYTES: usize = 1024 * 1024;

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
    /// Versions parsed (good or bad): an unchanged text is never parsed again.
    pub parses: u64,
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

/// What `stat` says about the file: a change of any part means it may
/// have been edited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    device: u64,
    inode: u64,
    size: u64,
    modified: SystemTime,
    changed: (i64, i64),
}

impl FileStamp {
    fn of(path: &Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt as _;
        let metadata = std::fs::metadata(path).ok()?;
        Some(Self {
            device: metadata.dev(),
            inode: metadata.ino(),
            size: metadata.size(),
            modified: metadata.modified().ok()?,
            changed: (metadata.ctime(), metadata.ctime_nsec()),
        })
    }
}

/// The stamp of the last full read, and when it was taken.
#[derive(Debug, Clone, Copy)]
struct LastRead {
    stamp: FileStamp,
    at: Instant,
    at_wall: SystemTime,
}

impl LastRead {
    /// Whether the file, now stamped `stamp`, need not be read again: the
    /// same stamp, read recently, and already settled when it was read.
    fn still_current(&self, stamp: &FileStamp) -> bool {
        let settled = self
            .at_wall
            .duration_since(self.stamp.modified)
            .is_ok_and(|age| age >= SETTLED_AFTER);
        *stamp == self.stamp && settled && self.at.elapsed() < FULL_READ_INTERVAL
    }
}

/// The mesh file feeding a catalog.
#[derive(Debug)]
pub struct MeshFileSource {
    path: PathBuf,
    catalog: SharedCatalog,
    status: Arc<Mutex<MeshFileStatus>>,
    limits: MeshFileLimits,
    /// The file's stamp at the last full read, and when that was.
    last_read: Option<LastRead>,
    /// The size of the text the catalog holds.
    serving_bytes: usize,
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
            limits: MeshFileLimits::default(),
            last_read: None,
            serving_bytes: 0,
            last_attempt: None,
            index: DocumentIndex::default(),
            workloads: watch::Sender::new(Arc::from(Vec::new())),
        }
    }

    /// The same source with these limits (default: [`MeshFileLimits::default`]).
    pub fn with_limits(mut self, limits: MeshFileLimits) -> Self {
        self.limits = limits;
        self
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
        let started = Instant::now();
        let stamp = FileStamp::of(&self.path);
        if let (Some(stamp), Some(last_read)) = (&stamp, &self.last_read)
            && last_read.still_current(stamp)
        {
            return Ok(false);
        }
        self.last_read = stamp.map(|stamp| LastRead {
            stamp,
            at: started,
            at_wall: SystemTime::now(),
        });
        let read = read_bounded(&self.path, self.limits.max_bytes);
        let attempt = match &read {
            Ok(text) => Attempt::Text(Fingerprint::of(text)),
            Err(error) => Attempt::Unreadable(error.to_string()),
        };
        if self.last_attempt.as_ref() == Some(&attempt) {
            return Ok(false);
        }
        self.last_attempt = Some(attempt);
        let text_bytes = read.as_ref().map_or(0, String::len);
        let loaded = read
            .and_then(|text| {
                let count = count_documents(&text);
                if count > self.limits.max_objects {
                    return Err(MeshFileError::TooManyObjects {
                        path: self.path.clone(),
                        count,
                        limit: self.limits.max_objects,
                    });
                }
                lock(&self.status).parses += 1;
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
        // A big version parsed (kept or refused), or a big one replaced:
        // its memory is free now, hand it back.
        let big = if loaded.is_ok() {
            let replaced_bytes = std::mem::replace(&mut self.serving_bytes, text_bytes);
            replaced_bytes.max(text_bytes) >= RELEASE_MEMORY_AFTER_BYTES
        } else {
            text_bytes >= RELEASE_MEMORY_AFTER_BYTES
        };
        let outcome = self.record(started, loaded);
        if big {
            crate::memory::release_freed();
        }
        outcome
    }

    /// Records an attempt's outcome in the status and the log.
    fn record(
        &self,
        started: Instant,
        loaded: Result<(usize, Vec<Workload>), MeshFileError>,
    ) -> Result<bool, MeshFileError> {
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
        // Off the async workers: reload reads the file (file_watch runs it
        // on the blocking pool).
        file_watch::watch_directories("mesh file", &[directory], &files, shutdown, move || {
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
