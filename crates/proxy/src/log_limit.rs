//! A budget for log lines caused by traffic (malformed requests, proxy
//! errors): each is logged at info level so operators see it, but at most
//! [`LINES_PER_SECOND`] a second, so a flood of bad traffic cannot flood the
//! log. Lines held back are counted and reported with the next one allowed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Traffic-caused log lines allowed per second.
pub(crate) const LINES_PER_SECOND: u64 = 10;

/// Shared by every connection of the process.
#[derive(Debug)]
pub(crate) struct LogLimit {
    epoch: Instant,
    /// The second the current budget belongs to.
    second: AtomicU64,
    used: AtomicU64,
    held_back: AtomicU64,
}

/// Permission to write one line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Allowed {
    /// Lines held back since the last allowed one.
    pub held_back: u64,
}

impl LogLimit {
    /// A fresh budget.
    pub(crate) fn new() -> Self {
        LogLimit {
            epoch: Instant::now(),
            second: AtomicU64::new(0),
            used: AtomicU64::new(0),
            held_back: AtomicU64::new(0),
        }
    }

    /// Whether a line may be written now.
    pub(crate) fn allow(&self) -> Option<Allowed> {
        self.allow_at(self.epoch.elapsed().as_secs())
    }

    fn allow_at(&self, second: u64) -> Option<Allowed> {
        if self.second.swap(second, Ordering::Relaxed) != second {
            self.used.store(0, Ordering::Relaxed);
        }
        if self.used.fetch_add(1, Ordering::Relaxed) < LINES_PER_SECOND {
            Some(Allowed {
                held_back: self.held_back.swap(0, Ordering::Relaxed),
            })
        } else {
            self.held_back.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

impl Default for LogLimit {
    fn default() -> Self {
        LogLimit::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_per_second_and_held_back_count() {
        let limit = LogLimit::new();
        for _ in 0..LINES_PER_SECOND {
            assert_eq!(limit.allow_at(5), Some(Allowed { held_back: 0 }));
        }
        assert_eq!(limit.allow_at(5), None);
        assert_eq!(limit.allow_at(5), None);
        assert_eq!(limit.allow_at(6), Some(Allowed { held_back: 2 }));
        assert_eq!(limit.allow_at(6), Some(Allowed { held_back: 0 }));
    }
}
