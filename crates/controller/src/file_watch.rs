//! Watching files that are replaced in place (editors, `kubectl` secret
//! mounts, `mv` of a staged copy): [`watch_directories`] calls back on inotify
//! events in the files' directories and on a fixed poll, so a change lands
//! within a poll interval even where inotify misses it.
//!
//! The callback decides whether anything really changed (the sources compare
//! what they read with what they last tried), so spurious wake-ups are cheap.
//! It reads files, so it runs on tokio's blocking pool
//! ([`tokio::task::spawn_blocking`]), never on an async worker.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::Watcher;

/// How often watched files are re-read when no change event arrives.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How long to let a burst of change events (an editor's save) settle.
const SETTLE_DELAY: Duration = Duration::from_millis(50);

/// The directory holding `path` (`.` for a bare file name).
pub fn directory_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Calls `on_change` after change events in `directories` and every
/// [`POLL_INTERVAL`], until `shutdown` completes. A burst of events settles
/// for [`SETTLE_DELAY`] first, except a finished write (closed after writing,
/// or renamed into place) of a file named in `files`, which is acted on at
/// once. `what` names the watched files in the warning logged when inotify
/// is unavailable (polling goes on). `on_change` (blocking file I/O) runs on
/// the blocking pool, one call at a time; a panic in it ends the watch.
pub async fn watch_directories<F>(
    what: &str,
    directories: &[PathBuf],
    files: &[PathBuf],
    shutdown: impl Future<Output = ()>,
    on_change: F,
) where
    F: FnMut() + Send + 'static,
{
    let (notify_sender, mut changes) = tokio::sync::mpsc::channel::<Change>(1);
    let names: Vec<std::ffi::OsString> = files
        .iter()
        .filter_map(|file| file.file_name().map(ToOwned::to_owned))
        .collect();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let change = match event {
            Ok(event) if is_complete_write(&event, &names) => Change::Complete,
            _ => Change::Partial,
        };
        // A full queue already means "look again"; a complete write is
        // worth the wait for room, as it skips the settle delay.
        if notify_sender.try_send(change).is_err() && change == Change::Complete {
            let _ = notify_sender.blocking_send(change);
        }
    })
    .and_then(|mut watcher| {
        for directory in directories {
            watcher.watch(directory, notify::RecursiveMode::NonRecursive)?;
        }
        Ok(watcher)
    });
    let _watcher = match watcher {
        Ok(watcher) => Some(watcher),
        Err(error) => {
            tracing::warn!(?directories, %error, "cannot watch the {what}; polling only");
            None
        }
    };
    let mut poll = tokio::time::interval(POLL_INTERVAL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    let mut on_change = on_change;
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
        // The callback goes to the blocking pool and comes back with its state.
        let call = tokio::task::spawn_blocking(move || {
            on_change();
            on_change
        });
        on_change = match call.await {
            Ok(on_change) => on_change,
            Err(error) => {
                tracing::error!(%error, "reloading the {what} failed; no longer watching it");
                return;
            }
        };
    }
}

/// Waits out a burst of partial changes (at most [`SETTLE_DELAY`]); a
/// complete write ends the wait.
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

/// What a change event says about the watched files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// A watched file was just replaced (renamed into place) or closed after
    /// writing: it is whole, act now.
    Complete,
    /// Anything else in the directory (a write in progress, a symlink swap):
    /// let a burst settle first.
    Partial,
}

/// Whether `event` is a finished write of one of the files named `names`.
fn is_complete_write(event: &notify::Event, names: &[std::ffi::OsString]) -> bool {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode, ModifyKind};
    let finished = matches!(
        event.kind,
        EventKind::Modify(ModifyKind::Name(_))
            | EventKind::Access(AccessKind::Close(AccessMode::Write))
    );
    finished
        && event.paths.iter().any(|path| {
            path.file_name()
                .is_some_and(|name| names.iter().any(|watched| watched == name))
        })
}
