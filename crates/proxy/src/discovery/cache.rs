//! The per-target cache of active lookups, so every connection to one
//! target shares one stream, one watch and one balancer.
//!
//! ```text
//! cache.profile("10.0.0.7:80") ──► cached ProfileWatch clone (or a new lookup)
//! sweeper, every idle_timeout / 4:
//!   held only by the cache? ─► idle since now (if not already)
//!   idle ≥ idle_timeout     ─► evict: the last handle drops, the stream closes
//! ```
//!
//! An entry is idle once every handle the cache gave out has been dropped;
//! it is evicted between `idle_timeout` and `idle_timeout + 2 × sweep
//! interval` later. A lookup that was not discoverable stays cached (and
//! answers at once) until it is evicted like any other.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use tokio::time::Instant;

use super::client::{DiscoveryClient, EndpointsWatch, ProfileWatch};

/// Default idle period before a lookup nobody holds is dropped (Linkerd's
/// outbound discovery idle timeout).
#[cfg(test)]
pub(crate) const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Shared lookups per target. Cheap to clone; clones share entries.
#[derive(Clone, Debug)]
pub(crate) struct DiscoveryCache {
    client: DiscoveryClient,
    entries: Arc<Mutex<Entries>>,
}

#[derive(Debug, Default)]
struct Entries {
    profiles: HashMap<String, Entry<ProfileWatch>>,
    endpoints: HashMap<String, Entry<EndpointsWatch>>,
}

/// One cached watch and since when only the cache holds it. Shared with
/// the outbound policy cache, which evicts its watches the same way.
#[derive(Debug)]
pub(crate) struct Entry<W> {
    /// The watch handed out (cloned) to callers.
    pub watch: W,
    /// When the sweeper first saw it held by the cache alone.
    pub idle_since: Option<Instant>,
}

impl DiscoveryCache {
    /// A cache over `client` whose entries are evicted after `idle_timeout`
    /// unheld. Spawns the sweeper, which stops when the last clone of the
    /// cache is dropped; call it inside a tokio runtime.
    pub(crate) fn new(client: DiscoveryClient, idle_timeout: Duration) -> DiscoveryCache {
        let entries = Arc::new(Mutex::new(Entries::default()));
        spawn_sweeper(&entries, idle_timeout, move |entries, now| {
            let what = "discovery lookup";
            evict_idle(&mut entries.profiles, now, idle_timeout, what, |watch| {
                watch.holders()
            });
            evict_idle(&mut entries.endpoints, now, idle_timeout, what, |watch| {
                watch.lookup().holders()
            });
        });
        DiscoveryCache { client, entries }
    }

    /// The profile lookup of `target`, shared with every other caller.
    pub(crate) fn profile(&self, target: &str) -> ProfileWatch {
        self.profile_within(target, usize::MAX)
            .expect("no cache holds usize::MAX lookups")
    }

    /// Like [`DiscoveryCache::profile`], but a new lookup only while fewer
    /// than `max` profile lookups are cached; `None` past that.
    pub(crate) fn profile_within(&self, target: &str, max: usize) -> Option<ProfileWatch> {
        let mut entries = self.lock();
        if !entries.profiles.contains_key(target) && entries.profiles.len() >= max {
            return None;
        }
        let entry = entries
            .profiles
            .entry(target.to_string())
            .or_insert_with(|| Entry {
                watch: self.client.profile(target),
                idle_since: None,
            });
        entry.idle_since = None;
        Some(entry.watch.clone())
    }

    /// The endpoint lookup (and balancer) of `authority`, shared with every
    /// other caller.
    pub(crate) fn endpoints(&self, authority: &str) -> EndpointsWatch {
        let mut entries = self.lock();
        let entry = entries
            .endpoints
            .entry(authority.to_string())
            .or_insert_with(|| Entry {
                watch: self.client.endpoints(authority),
                idle_since: None,
            });
        entry.idle_since = None;
        entry.watch.clone()
    }

    /// Number of cached lookups (profiles and endpoint sets).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        let entries = self.lock();
        entries.profiles.len() + entries.endpoints.len()
    }

    /// Whether nothing is cached.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        lock(&self.entries)
    }
}

fn lock<E>(entries: &Mutex<E>) -> MutexGuard<'_, E> {
    // Every operation leaves the maps consistent before it can panic.
    entries.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Spawns the sweeper of `entries` (inside a tokio runtime): every
/// `idle_timeout / 4` (10 ms at least) it calls `sweep` under the lock,
/// until the last strong reference to `entries` is dropped.
pub(crate) fn spawn_sweeper<E: Send + 'static>(
    entries: &Arc<Mutex<E>>,
    idle_timeout: Duration,
    sweep: impl Fn(&mut E, Instant) + Send + 'static,
) {
    let entries: Weak<Mutex<E>> = Arc::downgrade(entries);
    let interval = (idle_timeout / 4).max(Duration::from_millis(10));
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let Some(entries) = entries.upgrade() else {
                return;
            };
            sweep(&mut lock(&entries), Instant::now());
        }
    });
}

/// Marks entries held only by the cache (`holders` of 1) as idle and
/// removes those idle for `idle_timeout`; `what` names them in the log.
/// Removal happens under the cache lock, so no caller can take a handle on
/// an entry being evicted.
pub(crate) fn evict_idle<W>(
    entries: &mut HashMap<String, Entry<W>>,
    now: Instant,
    idle_timeout: Duration,
    what: &str,
    holders: impl Fn(&W) -> usize,
) {
    entries.retain(|target, entry| {
        if holders(&entry.watch) > 1 {
            entry.idle_since = None;
            return true;
        }
        let idle_since = *entry.idle_since.get_or_insert(now);
        let keep = now.duration_since(idle_since) < idle_timeout;
        if !keep {
            tracing::debug!(%target, "evicting an idle {what}");
        }
        keep
    });
}
