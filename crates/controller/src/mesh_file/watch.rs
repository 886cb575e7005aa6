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

use notify::Watcher;

use super::{DocumentIndex, DocumentProblem, Fingerprint, MeshFileError, parse_changes};
use crate::catalog::SharedCatalog;

/// How often the file is re-read when no change event arrives.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How long to let a burst of change events (an editor's save) settle; a
/// file renamed into place or closed after writing is reloaded at once.
const SETTLE_DELAY: Duration = Duration::from_millis(50);

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
                drop(catalog);
                updated.map_err(|source| MeshFileError::Rejected {
                    path: self.path.clone(),
                    source,
                })?;
                self.index = changes.index;
                Ok(self.index.len())
            });
        let mut status = lock(&self.status);
        status.last_load_duration = Some(started.elapsed());
        match loaded {
            Ok(count) => {
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
    /// [`POLL_INTERVAL`].
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        let (notify_sender, mut changes) = tokio::sync::mpsc::channel::<Change>(1);
        let directory = match self.path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let file_name = self.path.file_name().map(ToOwned::to_owned);
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let change = match event {
                Ok(event) if is_complete_write(&event, file_name.as_deref()) => Change::Complete,
                _ => Change::Partial,
            };
            // A full queue already means "look again"; a complete write is
            // worth the wait for room, as it skips the settle delay.
            if notify_sender.try_send(change).is_err() && change == Change::Complete {
                let _ = notify_sender.blocking_send(change);
            }
        })
        .and_then(|mut watcher| {
            watcher
                .watch(&directory, notify::RecursiveMode::NonRecursive)
                .map(|()| watcher)
        });
        let _watcher = match watcher {
            Ok(watcher) => Some(watcher),
            Err(error) => {
                tracing::warn!(directory = %directory.display(), %error, "cannot watch the mesh file; polling only");
                None
            }
        };
        let mut poll = tokio::time::interval(POLL_INTERVAL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                _ = poll.tick() => {}
                Some(change) = changes.recv() => {
                    if change == Change::Partial {
                        settle(&mut changes).await;
                    }
                    while changes.try_recv().is_ok() {}
                }
            }
            // Errors are recorded in the status and logged by reload.
            let _ = self.reload();
        }
    }
}

/// Waits [`SETTLE_DELAY`] for a burst of events to end, or less when the
/// file is reported whole first.
async fn settle(changes: &mut tokio::sync::mpsc::Receiver<Change>) {
    let delay = tokio::time::sleep(SETTLE_DELAY);
    tokio::pin!(delay);
    loop {
        tokio::select! {
            () = &mut delay => return,
            change = changes.recv() => {
                if change != Some(Change::Partial) {
                    return;
                }
            }
        }
    }
}

/// What a change event says about the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// The file was just replaced (renamed into place) or closed after
    /// writing: it is whole, reload now.
    Complete,
    /// Anything else in the directory (a write in progress, a symlink swap):
    /// let a burst settle first.
    Partial,
}

/// Whether `event` is a finished write of the file named `file_name`.
fn is_complete_write(event: &notify::Event, file_name: Option<&std::ffi::OsStr>) -> bool {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode, ModifyKind};
    let finished = matches!(
        event.kind,
        EventKind::Modify(ModifyKind::Name(_))
            | EventKind::Access(AccessKind::Close(AccessMode::Write))
    );
    finished
        && event
            .paths
            .iter()
            .any(|path| path.file_name().is_some() && path.file_name() == file_name)
}

/// Locks, recovering the data if a holder panicked (the catalog stays usable).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
