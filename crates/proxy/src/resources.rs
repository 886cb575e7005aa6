//! Bounds on what clients can make the proxy hold: the open-file limit is
//! raised to its hard limit at start-up, each direction's connection limit
//! is fitted inside it with a reserve left for the other listeners, the
//! admin server, the control plane and the proxy's own connections, and
//! every accepted connection holds a [`ConnectionPermit`] of its direction.
//!
//! ```text
//! RLIMIT_NOFILE (raised to hard) ─ reserve ─► budget / FDS_PER_CONNECTION
//!     ≥ inbound limit + outbound limit  (else the larger, then the smaller, lowered)
//! ```

use prometheus_client::metrics::gauge::Gauge;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// File descriptors an accepted connection may use: its own and one to its
/// target.
pub(crate) const FDS_PER_CONNECTION: u64 = 2;
/// File descriptors kept out of the connections' budget (listeners, admin,
/// control plane, pools, logs), unless the limit is tiny.
pub(crate) const FD_RESERVE: u64 = 256;

/// Why the open-file limit could not be read or raised.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ResourceError {
    /// setrlimit refused.
    #[error("cannot raise the open-file limit from {from} to {to}: {source}")]
    Raise {
        /// The soft limit before.
        from: u64,
        /// The limit asked for.
        to: u64,
        /// The operating system's error.
        source: std::io::Error,
    },
}

/// The open-file limit after start-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FdLimit {
    /// The soft limit before it was raised (`None`: unlimited).
    pub before: Option<u64>,
    /// The soft limit now (`None`: unlimited).
    pub now: Option<u64>,
}

/// Raises the soft open-file limit to the hard limit.
pub(crate) fn raise_fd_limit() -> Result<FdLimit, ResourceError> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let before = limit.current;
    match (limit.current, limit.maximum) {
        (Some(current), Some(maximum)) if current < maximum => {
            setrlimit(
                Resource::Nofile,
                Rlimit {
                    current: Some(maximum),
                    maximum: Some(maximum),
                },
            )
            .map_err(|error| ResourceError::Raise {
                from: current,
                to: maximum,
                source: error.into(),
            })?;
            Ok(FdLimit {
                before,
                now: Some(maximum),
            })
        }
        _ => Ok(FdLimit {
            before,
            now: limit.current,
        }),
    }
}

/// The reserve kept out of a limit of `fd_limit` descriptors: [`FD_RESERVE`],
/// or half of a smaller limit.
pub(crate) fn fd_reserve(fd_limit: u64) -> u64 {
    FD_RESERVE.min(fd_limit / 2)
}

/// The connection limits `(inbound, outbound)` that fit in `fd_limit`
/// (`None`: unlimited) after the reserve: the configured ones when they
/// fit, else the smaller keeps its value up to half the budget and the
/// larger gets the rest (each at least 1).
pub(crate) fn fit_connection_limits(
    fd_limit: Option<u64>,
    inbound: usize,
    outbound: usize,
) -> (usize, usize) {
    let Some(fd_limit) = fd_limit else {
        return (inbound, outbound);
    };
    let budget = (fd_limit - fd_reserve(fd_limit)) / FDS_PER_CONNECTION;
    if inbound as u64 + outbound as u64 <= budget {
        return (inbound, outbound);
    }
    let (smaller, larger) = (inbound.min(outbound) as u64, inbound.max(outbound) as u64);
    let smaller = smaller.min(budget / 2);
    let larger = larger.min(budget - smaller);
    let to_limit = |fitted: u64| usize::try_from(fitted).unwrap_or(usize::MAX).max(1);
    let (smaller, larger) = (to_limit(smaller), to_limit(larger));
    if inbound <= outbound {
        (smaller, larger)
    } else {
        (larger, smaller)
    }
}

/// The connections of one direction open at once, up to a limit.
#[derive(Debug)]
pub(crate) struct ConnectionLimit {
    open: AtomicUsize,
    max: usize,
    /// Published count of open connections.
    gauge: Gauge,
}

impl ConnectionLimit {
    /// A limit of `max` connections, whose open count is published in `gauge`.
    pub(crate) fn new(max: usize, gauge: Gauge) -> Arc<ConnectionLimit> {
        Arc::new(ConnectionLimit {
            open: AtomicUsize::new(0),
            max,
            gauge,
        })
    }

    /// The limit.
    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// Connections open now.
    #[cfg(test)]
    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// A permit for one more connection; `None` at the limit.
    pub(crate) fn try_acquire(self: &Arc<Self>) -> Option<ConnectionPermit> {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < self.max).then_some(open + 1)
            })
            .ok()
            .map(|_| {
                self.gauge.inc();
                ConnectionPermit {
                    limit: self.clone(),
                }
            })
    }
}

/// One open connection, counted until dropped.
#[derive(Debug)]
pub(crate) struct ConnectionPermit {
    limit: Arc<ConnectionLimit>,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        self.limit.open.fetch_sub(1, Ordering::AcqRel);
        self.limit.gauge.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_fit_the_fd_limit() {
        let table = [
            // Unlimited, or plenty: as configured.
            (None, 10_000, 10_000, (10_000, 10_000)),
            (Some(1_048_576), 10_000, 10_000, (10_000, 10_000)),
            (Some(40_256), 10_000, 10_000, (10_000, 10_000)),
            // (65536 - 256) / 2 = 32640 for both: the smaller fits.
            (Some(65_536), 30_000, 10_000, (22_640, 10_000)),
            (Some(20_000), 5, 10_000, (5, 9_867)),
            // (1024 - 256) / 2 = 384.
            (Some(1_024), 10_000, 10_000, (192, 192)),
            // A tiny limit keeps half in reserve and still one each.
            (Some(100), 20, 20, (12, 13)),
            (Some(4), 10, 10, (1, 1)),
        ];
        for (fd_limit, inbound, outbound, expected) in table {
            let fitted = fit_connection_limits(fd_limit, inbound, outbound);
            assert_eq!(fitted, expected, "{fd_limit:?} {inbound} {outbound}");
            if let Some(fd_limit) = fd_limit.filter(|_| expected != (inbound, outbound)) {
                let used = (fitted.0 + fitted.1) as u64 * FDS_PER_CONNECTION;
                assert!(
                    used + fd_reserve(fd_limit) <= fd_limit || fitted == (1, 1),
                    "{fd_limit}"
                );
            }
        }
    }

    #[test]
    fn permits_count_up_to_the_limit() {
        let gauge = Gauge::default();
        let limit = ConnectionLimit::new(2, gauge.clone());
        let first = limit.try_acquire().unwrap();
        let second = limit.try_acquire().unwrap();
        assert!(limit.try_acquire().is_none());
        assert_eq!(limit.open(), 2);
        assert_eq!(gauge.get(), 2);
        drop(first);
        let third = limit.try_acquire();
        assert!(third.is_some());
        drop((second, third));
        assert_eq!(limit.open(), 0);
        assert_eq!(gauge.get(), 0);
    }
}
