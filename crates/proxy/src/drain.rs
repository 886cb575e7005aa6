//! Graceful shutdown: one [`DrainSignal`] owned by the app, a [`DrainWatch`]
//! held by every accept loop and every connection.
//!
//! ```text
//! SIGTERM ─► DrainSignal::drain() ─► watches see `signaled()` ─► accept loops stop,
//!                                   HTTP connections finish in-flight requests,
//!            waits until every DrainWatch is dropped (or the grace period ends)
//! ```

use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Starts a drain and waits for it to complete.
pub(crate) struct DrainSignal {
    draining: watch::Sender<bool>,
    finished: mpsc::Receiver<()>,
    watch: Option<DrainWatch>,
}

/// Held while work is in progress; tells the holder when to wind down.
#[derive(Clone)]
pub(crate) struct DrainWatch {
    draining: watch::Receiver<bool>,
    _in_progress: mpsc::Sender<()>,
}

/// How a drain ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DrainOutcome {
    /// Every watch was dropped in time.
    Complete,
    /// The grace period ran out with work still in progress.
    TimedOut,
}

impl DrainSignal {
    /// A new signal and the first watch of it.
    pub(crate) fn new() -> DrainSignal {
        let (draining_sender, draining_receiver) = watch::channel(false);
        let (in_progress_sender, finished) = mpsc::channel(1);
        DrainSignal {
            draining: draining_sender,
            finished,
            watch: Some(DrainWatch {
                draining: draining_receiver,
                _in_progress: in_progress_sender,
            }),
        }
    }

    /// A watch to hand to a component.
    pub(crate) fn watch(&self) -> DrainWatch {
        self.watch
            .clone()
            .expect("watches are only handed out before draining starts")
    }

    /// Tells every watch to wind down and waits, at most `grace_period`, for
    /// all of them to be dropped.
    pub(crate) async fn drain(mut self, grace_period: Duration) -> DrainOutcome {
        self.watch = None;
        let _ = self.draining.send(true);
        let all_dropped = async { while self.finished.recv().await.is_some() {} };
        match tokio::time::timeout(grace_period, all_dropped).await {
            Ok(()) => DrainOutcome::Complete,
            Err(_) => DrainOutcome::TimedOut,
        }
    }
}

impl Default for DrainSignal {
    fn default() -> Self {
        DrainSignal::new()
    }
}

impl DrainWatch {
    /// Completes once a drain has started.
    pub(crate) async fn signaled(&self) {
        let mut draining = self.draining.clone();
        let _ = draining.wait_for(|draining| *draining).await;
    }

    /// Whether a drain has started.
    #[cfg(test)]
    pub(crate) fn is_draining(&self) -> bool {
        *self.draining.borrow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn completes_when_every_watch_is_dropped() {
        let signal = DrainSignal::new();
        let watch = signal.watch();
        let worker = tokio::spawn(async move {
            watch.signaled().await;
            tokio::time::sleep(Duration::from_millis(20)).await;
            drop(watch);
        });
        assert_eq!(
            signal.drain(Duration::from_secs(5)).await,
            DrainOutcome::Complete
        );
        worker.await.unwrap();
    }

    #[tokio::test]
    async fn times_out_while_work_is_held() {
        let signal = DrainSignal::new();
        let watch = signal.watch();
        assert_eq!(
            signal.drain(Duration::from_millis(50)).await,
            DrainOutcome::TimedOut
        );
        assert!(watch.is_draining());
    }
}
