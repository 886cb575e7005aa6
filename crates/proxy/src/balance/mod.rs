//! The endpoint balancer: power of two choices over peak-EWMA load, as
//! Linkerd balances the endpoints of one backend.
//!
//! ```text
//! discovery ─► Balancer::update(Change::{Add, Remove, Reset})
//! request   ─► Balancer::pick() ─► EndpointLease (pending + 1, start time)
//!                                   ├─ complete(now): RTT sample, pending − 1
//!                                   └─ dropped:       no sample,  pending − 1
//! ```
//!
//! [`ewma`] holds the load estimate of one endpoint, [`p2c`] the endpoint set
//! and the choice. A [`Balancer`] is a cheap handle (`Arc`): picks take a read
//! lock on the set and the two candidates' own small locks, and allocate
//! nothing. Queueing and failfast for an empty balancer belong to the caller:
//! [`Balancer::pick`] answers `None` at once.

pub(crate) mod accrual;
pub(crate) mod ewma;
pub(crate) mod p2c;

#[cfg(test)]
mod tests;

pub(crate) use ewma::PeakEwmaConfig;

use p2c::{Endpoint, EndpointSet, Random};
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

/// A discovery update for one balancer, with metadata `M` per endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Change<M> {
    /// An endpoint appeared, or its metadata changed (its load is kept).
    Add(SocketAddr, M),
    /// An endpoint went away; it is never picked again.
    Remove(SocketAddr),
    /// The complete set: endpoints not listed are removed, listed ones that
    /// were present keep their load.
    Reset(Vec<(SocketAddr, M)>),
}

/// A load-aware picker over the endpoints of one backend. Clones share the
/// same endpoints.
pub(crate) struct Balancer<M> {
    shared: Arc<Shared<M>>,
}

struct Shared<M> {
    endpoints: RwLock<EndpointSet<M>>,
    random: Random,
}

impl<M> Clone for Balancer<M> {
    fn clone(&self) -> Self {
        Balancer {
            shared: self.shared.clone(),
        }
    }
}

impl<M> std::fmt::Debug for Balancer<M> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Balancer")
            .field("endpoints", &self.len())
            .finish()
    }
}

impl<M> Balancer<M> {
    /// An empty balancer with a random seed.
    pub(crate) fn new(config: PeakEwmaConfig) -> Balancer<M> {
        Balancer::from_parts(config, Random::from_entropy())
    }

    /// An empty balancer whose choices follow `seed` (deterministic tests).
    #[cfg(test)]
    pub(crate) fn with_seed(config: PeakEwmaConfig, seed: u64) -> Balancer<M> {
        Balancer::from_parts(config, Random::with_seed(seed))
    }

    fn from_parts(config: PeakEwmaConfig, random: Random) -> Balancer<M> {
        Balancer {
            shared: Arc::new(Shared {
                endpoints: RwLock::new(EndpointSet::new(config)),
                random,
            }),
        }
    }

    /// Picks an endpoint for one request starting now; `None` if there are
    /// no endpoints.
    pub(crate) fn pick(&self) -> Option<EndpointLease<M>> {
        self.pick_at(Instant::now())
    }

    /// Picks an endpoint for one request starting at `now`.
    pub(crate) fn pick_at(&self, now: Instant) -> Option<EndpointLease<M>> {
        self.pick_avoiding_at(now, &[])
    }

    /// Picks an endpoint other than those in `avoid` (they failed the
    /// request being placed) while there is one; `None` if there are no
    /// endpoints.
    pub(crate) fn pick_avoiding(&self, avoid: &[SocketAddr]) -> Option<EndpointLease<M>> {
        self.pick_avoiding_at(Instant::now(), avoid)
    }

    fn pick_avoiding_at(&self, now: Instant, avoid: &[SocketAddr]) -> Option<EndpointLease<M>> {
        let random = self.shared.random.next_u64();
        let endpoints = self.read();
        let endpoint = endpoints.select_avoiding(random, now, avoid)?.clone();
        drop(endpoints);
        endpoint.load().start_request();
        Some(EndpointLease {
            endpoint,
            started_at: now,
        })
    }

    /// Applies a discovery update now.
    pub(crate) fn update(&self, change: Change<M>) {
        self.update_at(change, Instant::now());
    }

    /// Applies a discovery update at `now` (the start time of new endpoints'
    /// estimates).
    pub(crate) fn update_at(&self, change: Change<M>, now: Instant) {
        let mut endpoints = self.write();
        match change {
            Change::Add(address, metadata) => endpoints.insert(address, metadata, now),
            Change::Remove(address) => {
                endpoints.remove(address);
            }
            Change::Reset(new_endpoints) => endpoints.reset(new_endpoints, now),
        }
    }

    /// Whether there are no endpoints, so [`Balancer::pick`] answers `None`.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// Whether the endpoint at `address` is in the set.
    pub(crate) fn contains(&self, address: SocketAddr) -> bool {
        self.read().get(address).is_some()
    }

    /// Number of endpoints.
    pub(crate) fn len(&self) -> usize {
        self.read().len()
    }

    /// The load state of the endpoint at `address`, if it is in the set.
    #[cfg(test)]
    pub(crate) fn endpoint_state(&self, address: SocketAddr) -> Option<EndpointState> {
        let endpoints = self.read();
        let load = endpoints.get(address)?.load();
        Some(EndpointState {
            rtt_estimate: load.rtt_estimate(),
            pending: load.pending(),
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, EndpointSet<M>> {
        // Every update leaves the set consistent before it can panic.
        self.shared
            .endpoints
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, EndpointSet<M>> {
        self.shared
            .endpoints
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A snapshot of one endpoint's load, for tests and diagnostics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg(test)]
pub(crate) struct EndpointState {
    /// The peak-EWMA RTT estimate as of its last update.
    pub rtt_estimate: Duration,
    /// Requests in flight.
    pub pending: usize,
}

/// One request's hold on the endpoint it was sent to. It counts as pending
/// until [`EndpointLease::complete`] (which records the latency) or until it
/// is dropped (a failure or cancellation: no latency sample).
#[derive(Debug)]
#[must_use = "dropping a lease at once ends the request without a latency sample"]
pub(crate) struct EndpointLease<M> {
    endpoint: Arc<Endpoint<M>>,
    started_at: Instant,
}

impl<M> EndpointLease<M> {
    /// Where to send the request.
    pub(crate) fn address(&self) -> SocketAddr {
        self.endpoint.address()
    }

    /// The endpoint's discovery metadata (as it was when picked).
    pub(crate) fn metadata(&self) -> &M {
        self.endpoint.metadata()
    }

    /// When the request started.
    #[cfg(test)]
    pub(crate) fn started_at(&self) -> Instant {
        self.started_at
    }

    /// The request got its response at `now`: records `now − started_at` as
    /// the endpoint's latency sample and ends the request.
    pub(crate) fn complete(self, now: Instant) {
        let rtt = now.saturating_duration_since(self.started_at);
        self.endpoint.load().observe(rtt, now);
        // Dropping `self` ends the request.
    }
}

impl<M> EndpointLease<M> {
    /// The endpoint could not be reached: its load estimate jumps to
    /// `penalty` (decaying like any sample), so the balancer avoids it while
    /// others are healthy, and the request ends.
    pub(crate) fn fail(self, penalty: Duration) {
        self.endpoint.load().observe(penalty, Instant::now());
    }
}

impl<M> Drop for EndpointLease<M> {
    fn drop(&mut self) {
        self.endpoint.load().end_request();
    }
}
