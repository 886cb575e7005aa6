//! Watching files that are replaced in place (editors, `kubectl` secret
//! mounts, `mv` of a staged copy): [`watch_directories`] calls back on inotify
//! events in the files' directories and on a fixed poll, so a change lands
//! within a poll interval even where inotify misses it.
//!
//! The callback decides whether anything really changed (the sources compare
//! what they read with what they last tried), so spurious wake-ups are cheap.

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
/// [`POLL_INTERVAL`], until `shutdown` completes. `what` names the watched
/// files in the warning logged when inotify is unavailable (polling goes on).
pub async fn watch_directories(
    what: &str,
    directories: &[PathBuf],
    shutdown: impl Future<Output = ()>,
    mut on_change: impl FnMut(),
) {
    let (notify_sender, mut changes) = tokio::sync::mpsc::channel::<()>(1);
    let watcher = notify::recommended_watcher(move |_event: notify::Result<notify::Event>| {
        // A full queue already means "look again".
        let _ = notify_sender.try_send(());
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
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = poll.tick() => {}
            Some(()) = changes.recv() => {
                tokio::time::sleep(SETTLE_DELAY).await;
                while changes.try_recv().is_ok() {}
            }
        }
        on_change();
    }
}
