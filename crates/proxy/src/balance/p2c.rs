//! Power of two choices: the endpoint set of one balancer and the decision
//! over it.
//!
//! ```text
//! random u64 ─► pair(random, len) ─► (first, second), distinct when len ≥ 2
//!            ─► load of each (peak-EWMA × (pending + 1))
//!            ─► choose(loads, first, second): the lower load; ties → first
//! ```
//!
//! [`EndpointSet`] keeps each endpoint's load state across additions,
//! removals and resets of the others; a removed endpoint leaves the set at
//! once (requests in flight on it keep their own handle to its state).

use super::ewma::{PeakEwma, PeakEwmaConfig};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// Of two candidates, the one with the lower load; on a tie (or a load that
/// is not a number) the first. `first == second` chooses it.
///
/// # Panics
/// If `first` or `second` is not an index of `loads`.
pub(crate) fn choose(loads: &[f64], first: usize, second: usize) -> usize {
    if loads[second] < loads[first] {
        second
    } else {
        first
    }
}

/// Two candidate indices below `len` drawn from one random number: distinct
/// when `len ≥ 2`, `(0, 0)` when `len == 1`, `None` when `len == 0`.
///
/// Each half of `random` picks one index by multiply-shift (no division);
/// sets larger than `u32::MAX` endpoints only ever use the first `u32::MAX`.
pub(crate) fn pair(random: u64, len: usize) -> Option<(usize, usize)> {
    match len {
        0 => None,
        1 => Some((0, 0)),
        _ => {
            let first = below(random as u32, len);
            let offset = below((random >> 32) as u32, len - 1);
            Some((first, (first + 1 + offset) % len))
        }
    }
}

/// A uniform index below `bound` from 32 random bits (Lemire's multiply-shift).
fn below(random: u32, bound: usize) -> usize {
    ((u128::from(random) * bound as u128) >> 32) as usize
}

/// A lock-free random source: a splitmix64 sequence. Each call takes the next
/// number atomically, so callers on different threads never share one; one
/// seed gives one sequence (deterministic tests).
#[derive(Debug)]
pub(crate) struct Random {
    state: AtomicU64,
}

impl Random {
    /// A sequence starting from `seed`.
    pub(crate) fn with_seed(seed: u64) -> Random {
        Random {
            state: AtomicU64::new(seed),
        }
    }

    /// A sequence from a random seed (std's per-process hash keys; no crate).
    pub(crate) fn from_entropy() -> Random {
        use std::hash::{BuildHasher, Hasher};
        let seed = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        Random::with_seed(seed)
    }

    /// The next number of the sequence.
    pub(crate) fn next_u64(&self) -> u64 {
        const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut mixed = self
            .state
            .fetch_add(GOLDEN_GAMMA, Ordering::Relaxed)
            .wrapping_add(GOLDEN_GAMMA);
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        mixed ^ (mixed >> 31)
    }

    /// The next number of the sequence as a uniform fraction in `[0, 1)`
    /// (its top 53 bits).
    pub(crate) fn next_fraction(&self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The load state of one endpoint: its RTT estimate and requests in flight.
/// Shared by the set and by every lease on the endpoint.
#[derive(Debug)]
pub(crate) struct EndpointLoad {
    ewma: Mutex<PeakEwma>,
    pending: AtomicUsize,
}

impl EndpointLoad {
    /// A fresh state: default RTT, nothing pending.
    pub(crate) fn new(config: PeakEwmaConfig, now: Instant) -> EndpointLoad {
        EndpointLoad {
            ewma: Mutex::new(PeakEwma::new(config, now)),
            pending: AtomicUsize::new(0),
        }
    }

    /// The load at `now` (decays the estimate; see [`PeakEwma::load`]).
    pub(crate) fn load(&self, now: Instant) -> f64 {
        let pending = self.pending();
        self.ewma().load(pending, now)
    }

    /// Requests in flight.
    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// The RTT estimate as of its last update.
    #[cfg(test)]
    pub(crate) fn rtt_estimate(&self) -> std::time::Duration {
        self.ewma().estimate()
    }

    /// One more request in flight.
    pub(crate) fn start_request(&self) {
        self.pending.fetch_add(1, Ordering::Relaxed);
    }

    /// Records the latency of a request that got its response at `now`.
    pub(crate) fn observe(&self, rtt: std::time::Duration, now: Instant) {
        self.ewma().observe(rtt, now);
    }

    /// One request fewer in flight (never below zero).
    pub(crate) fn end_request(&self) {
        let _ = self
            .pending
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |pending| {
                pending.checked_sub(1)
            });
    }

    fn ewma(&self) -> std::sync::MutexGuard<'_, PeakEwma> {
        // A panic while holding the lock cannot leave the estimate invalid.
        self.ewma.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One endpoint of a set: its address, its discovery metadata and its load.
#[derive(Debug)]
pub(crate) struct Endpoint<M> {
    address: SocketAddr,
    metadata: M,
    load: Arc<EndpointLoad>,
}

impl<M> Endpoint<M> {
    /// Where to connect.
    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }

    /// What discovery said about the endpoint.
    pub(crate) fn metadata(&self) -> &M {
        &self.metadata
    }

    /// Its load state.
    pub(crate) fn load(&self) -> &EndpointLoad {
        &self.load
    }
}

/// The endpoints of one balancer, keyed by address.
#[derive(Debug)]
pub(crate) struct EndpointSet<M> {
    config: PeakEwmaConfig,
    endpoints: Vec<Arc<Endpoint<M>>>,
    positions: HashMap<SocketAddr, usize>,
}

impl<M> EndpointSet<M> {
    /// An empty set whose endpoints use `config`.
    pub(crate) fn new(config: PeakEwmaConfig) -> EndpointSet<M> {
        EndpointSet {
            config,
            endpoints: Vec::new(),
            positions: HashMap::new(),
        }
    }

    /// Number of endpoints.
    pub(crate) fn len(&self) -> usize {
        self.endpoints.len()
    }

    /// Whether there are no endpoints (a balancer that cannot pick).
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    /// The endpoint at `address`, if present.
    pub(crate) fn get(&self, address: SocketAddr) -> Option<&Arc<Endpoint<M>>> {
        self.positions
            .get(&address)
            .map(|&position| &self.endpoints[position])
    }

    /// Adds an endpoint, or replaces the metadata of an existing one while
    /// keeping its load state.
    pub(crate) fn insert(&mut self, address: SocketAddr, metadata: M, now: Instant) {
        let config = self.config;
        self.upsert(address, metadata, || {
            Arc::new(EndpointLoad::new(config, now))
        });
    }

    /// Replaces the metadata of a present endpoint (keeping its load), or
    /// adds it with the load `new_load` makes.
    fn upsert(
        &mut self,
        address: SocketAddr,
        metadata: M,
        new_load: impl FnOnce() -> Arc<EndpointLoad>,
    ) {
        match self.positions.entry(address) {
            Entry::Occupied(position) => {
                let existing = &mut self.endpoints[*position.get()];
                *existing = Arc::new(Endpoint {
                    address,
                    metadata,
                    load: existing.load.clone(),
                });
            }
            Entry::Vacant(position) => {
                position.insert(self.endpoints.len());
                self.endpoints.push(Arc::new(Endpoint {
                    address,
                    metadata,
                    load: new_load(),
                }));
            }
        }
    }

    /// Removes an endpoint; it is never chosen again. Returns whether it was
    /// present. If it comes back it starts afresh at the default RTT.
    pub(crate) fn remove(&mut self, address: SocketAddr) -> bool {
        let Some(position) = self.positions.remove(&address) else {
            return false;
        };
        self.endpoints.swap_remove(position);
        if let Some(moved) = self.endpoints.get(position) {
            self.positions.insert(moved.address, position);
        }
        true
    }

    /// Replaces the whole set: endpoints in `endpoints` that were present keep
    /// their load state (with the new metadata), the others are removed.
    pub(crate) fn reset(&mut self, endpoints: Vec<(SocketAddr, M)>, now: Instant) {
        let mut previous: HashMap<SocketAddr, Arc<EndpointLoad>> = self
            .endpoints
            .drain(..)
            .map(|endpoint| (endpoint.address, endpoint.load.clone()))
            .collect();
        self.positions.clear();
        let config = self.config;
        for (address, metadata) in endpoints {
            // A duplicate address in one reset: the last metadata wins.
            let load = previous.remove(&address);
            self.upsert(address, metadata, || {
                load.unwrap_or_else(|| Arc::new(EndpointLoad::new(config, now)))
            });
        }
    }

    /// Power of two choices at `now` with one random number: the chosen
    /// endpoint, or `None` when the set is empty. Does not start a request.
    #[cfg(test)]
    pub(crate) fn select(&self, random: u64, now: Instant) -> Option<&Arc<Endpoint<M>>> {
        self.select_avoiding(random, now, &[])
    }

    /// Power of two choices among the endpoints not in `avoid` (those that
    /// already failed the request being placed); among all of them when
    /// every endpoint is in `avoid`. `None` when the set is empty.
    pub(crate) fn select_avoiding(
        &self,
        random: u64,
        now: Instant,
        avoid: &[SocketAddr],
    ) -> Option<&Arc<Endpoint<M>>> {
        let candidates: Vec<&Arc<Endpoint<M>>> = if avoid.is_empty() {
            Vec::new()
        } else {
            self.endpoints
                .iter()
                .filter(|endpoint| !avoid.contains(&endpoint.address))
                .collect()
        };
        // No candidate left (or nothing to avoid): choose among all.
        let among_all = candidates.is_empty();
        let at = |index: usize| {
            if among_all {
                &self.endpoints[index]
            } else {
                candidates[index]
            }
        };
        let len = if among_all {
            self.endpoints.len()
        } else {
            candidates.len()
        };
        let (first, second) = pair(random, len)?;
        if first == second {
            return Some(at(first));
        }
        let loads = [at(first).load.load(now), at(second).load.load(now)];
        let chosen = if choose(&loads, 0, 1) == 0 {
            first
        } else {
            second
        };
        Some(at(chosen))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn address(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    /// (loads, first, second, chosen)
    #[test]
    fn choose_table_lower_load_wins_ties_go_to_first() {
        let cases: [(&[f64], usize, usize, usize); 9] = [
            (&[1.0, 2.0], 0, 1, 0),
            (&[1.0, 2.0], 1, 0, 0),
            (&[2.0, 1.0], 0, 1, 1),
            (&[5.0, 5.0], 0, 1, 0),
            (&[5.0, 5.0], 1, 0, 1),
            (&[7.0], 0, 0, 0),
            (&[3.0, 9.0, 1.0], 0, 2, 2),
            (&[3.0, f64::NAN], 0, 1, 0),
            (&[f64::NAN, 3.0], 0, 1, 0),
        ];
        for (loads, first, second, expected) in cases {
            assert_eq!(
                choose(loads, first, second),
                expected,
                "{loads:?} {first} {second}"
            );
        }
    }

    /// (random, len, expected pair)
    type PairCase = (u64, usize, Option<(usize, usize)>);

    #[test]
    fn pair_table() {
        let cases: [PairCase; 7] = [
            (0, 0, None),
            (u64::MAX, 0, None),
            (12345, 1, Some((0, 0))),
            (0, 2, Some((0, 1))),
            (u64::MAX, 2, Some((1, 0))),
            (0, 3, Some((0, 1))),
            // Top half of both halves: last index, then offset 1 past it.
            (u64::MAX, 3, Some((2, 1))),
        ];
        for (random, len, expected) in cases {
            assert_eq!(pair(random, len), expected, "{random:#x} {len}");
        }
    }

    #[test]
    fn pair_is_distinct_and_covers_every_ordered_pair() {
        let random = Random::with_seed(7);
        for len in 2..=5 {
            let mut seen = vec![vec![0u32; len]; len];
            for _ in 0..20_000 {
                let (first, second) = pair(random.next_u64(), len).expect("non-empty");
                assert_ne!(first, second);
                seen[first][second] += 1;
            }
            let expected = 20_000.0 / (len * (len - 1)) as f64;
            for (first, row) in seen.iter().enumerate() {
                for (second, &count) in row.iter().enumerate() {
                    if first != second {
                        let deviation = (f64::from(count) - expected).abs() / expected;
                        assert!(deviation < 0.15, "len {len} ({first},{second}): {count}");
                    }
                }
            }
        }
    }

    #[test]
    fn fractions_are_the_top_bits_in_zero_to_one() {
        let random = Random::with_seed(7);
        let twin = Random::with_seed(7);
        for _ in 0..1_000 {
            let fraction = random.next_fraction();
            assert!((0.0..1.0).contains(&fraction), "{fraction}");
            assert_eq!(
                fraction,
                (twin.next_u64() >> 11) as f64 / (1u64 << 53) as f64
            );
        }
    }

    #[test]
    fn random_is_deterministic_per_seed() {
        let a = Random::with_seed(1);
        let b = Random::with_seed(1);
        let c = Random::with_seed(2);
        let from_a: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let from_b: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        let from_c: Vec<u64> = (0..4).map(|_| c.next_u64()).collect();
        assert_eq!(from_a, from_b);
        assert_ne!(from_a, from_c);
    }

    #[test]
    fn insert_remove_reset_keep_the_state_of_the_others() {
        let now = Instant::now();
        let later = now + Duration::from_millis(1);
        let mut set = EndpointSet::new(PeakEwmaConfig::default());
        for port in 1..=4 {
            set.insert(address(port), format!("v1-{port}"), now);
        }
        set.get(address(2))
            .expect("present")
            .load()
            .observe(Duration::from_millis(500), later);
        set.get(address(3)).expect("present").load().start_request();

        assert!(set.remove(address(1)));
        assert!(!set.remove(address(1)));
        set.insert(address(2), "v2-2".to_string(), later);
        assert_eq!(set.len(), 3);
        let two = set.get(address(2)).expect("present");
        assert_eq!(two.metadata(), "v2-2");
        assert_eq!(two.load().rtt_estimate(), Duration::from_millis(500));
        assert_eq!(set.get(address(3)).expect("present").load().pending(), 1);

        set.reset(
            vec![
                (address(3), "v3-3".to_string()),
                (address(2), "v3-2".to_string()),
                (address(5), "v3-5".to_string()),
            ],
            later,
        );
        assert_eq!(set.len(), 3);
        assert!(set.get(address(4)).is_none());
        assert_eq!(
            set.get(address(2)).expect("kept").load().rtt_estimate(),
            Duration::from_millis(500)
        );
        assert_eq!(set.get(address(3)).expect("kept").load().pending(), 1);
        assert_eq!(set.get(address(5)).expect("new").metadata(), "v3-5");
        assert_eq!(
            set.get(address(5)).expect("new").load().rtt_estimate(),
            Duration::from_millis(30)
        );
        // Positions stay consistent after swap_remove.
        for endpoint in &set.endpoints {
            assert_eq!(set.positions[&endpoint.address()], {
                set.endpoints
                    .iter()
                    .position(|other| other.address() == endpoint.address())
                    .expect("indexed")
            });
        }
    }

    #[test]
    fn reset_with_a_duplicate_address_keeps_one_endpoint() {
        let now = Instant::now();
        let mut set = EndpointSet::new(PeakEwmaConfig::default());
        set.reset(vec![(address(1), 1), (address(1), 2)], now);
        assert_eq!(set.len(), 1);
        assert_eq!(*set.get(address(1)).expect("present").metadata(), 2);
    }

    /// (endpoints, avoided, allowed choices)
    #[test]
    fn select_avoiding_table() {
        let now = Instant::now();
        let cases: [(&[u16], &[u16], &[u16]); 5] = [
            (&[1, 2], &[], &[1, 2]),
            (&[1, 2], &[1], &[2]),
            (&[1, 2, 3], &[1, 3], &[2]),
            (&[1, 2, 3], &[2], &[1, 3]),
            // Every endpoint failed already: any of them rather than none.
            (&[1, 2], &[1, 2], &[1, 2]),
        ];
        for (endpoints, avoided, allowed) in cases {
            let mut set = EndpointSet::new(PeakEwmaConfig::default());
            for port in endpoints {
                set.insert(address(*port), (), now);
            }
            // The avoided endpoints look best, so only avoidance keeps them out.
            for port in endpoints {
                if !avoided.contains(port) {
                    set.get(address(*port))
                        .expect("present")
                        .load()
                        .start_request();
                }
            }
            let avoid: Vec<SocketAddr> = avoided.iter().map(|port| address(*port)).collect();
            let random = Random::with_seed(7);
            for _ in 0..50 {
                let chosen = set
                    .select_avoiding(random.next_u64(), now, &avoid)
                    .expect("non-empty")
                    .address();
                assert!(
                    allowed.iter().any(|port| address(*port) == chosen),
                    "{endpoints:?} avoiding {avoided:?} chose {chosen}"
                );
            }
        }
        let empty: EndpointSet<()> = EndpointSet::new(PeakEwmaConfig::default());
        assert!(empty.select_avoiding(1, now, &[address(1)]).is_none());
    }

    #[test]
    fn select_avoids_the_loaded_endpoint() {
        let now = Instant::now();
        let mut set = EndpointSet::new(PeakEwmaConfig::default());
        assert!(set.select(0, now).is_none());
        set.insert(address(1), (), now);
        assert_eq!(set.select(99, now).expect("one").address(), address(1));
        set.insert(address(2), (), now);
        set.get(address(1)).expect("present").load().start_request();
        let random = Random::with_seed(3);
        for _ in 0..100 {
            let chosen = set.select(random.next_u64(), now).expect("two");
            assert_eq!(chosen.address(), address(2));
        }
    }
}
