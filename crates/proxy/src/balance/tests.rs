//! Balancer tests: the lease lifecycle, discovery updates, and simulations in
//! explicit virtual time (no sockets, no clock).

use super::*;
use crate::balance::ewma::DEFAULT_RTT;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

fn address(port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], port))
}

fn balancer_with(ports: &[u16], now: Instant) -> Balancer<u16> {
    let balancer = Balancer::with_seed(PeakEwmaConfig::default(), 42);
    for &port in ports {
        balancer.update_at(Change::Add(address(port), port), now);
    }
    balancer
}

fn state(balancer: &Balancer<u16>, port: u16) -> EndpointState {
    balancer.endpoint_state(address(port)).expect("present")
}

#[test]
fn empty_balancer_picks_nothing() {
    let balancer: Balancer<()> = Balancer::new(PeakEwmaConfig::default());
    assert!(balancer.is_empty());
    assert_eq!(balancer.len(), 0);
    assert!(balancer.pick().is_none());
}

#[test]
fn single_endpoint_is_always_picked() {
    let now = Instant::now();
    let balancer = balancer_with(&[1], now);
    let leases: Vec<_> = (0..10)
        .map(|_| balancer.pick_at(now).expect("one"))
        .collect();
    assert!(leases.iter().all(|lease| lease.address() == address(1)));
    assert!(leases.iter().all(|lease| *lease.metadata() == 1));
    assert_eq!(state(&balancer, 1).pending, 10);
}

#[test]
fn lease_is_pending_until_completed_and_records_its_latency() {
    let start = Instant::now();
    let balancer = balancer_with(&[1], start);
    let lease = balancer.pick_at(start).expect("one");
    assert_eq!(lease.started_at(), start);
    assert_eq!(state(&balancer, 1).pending, 1);
    lease.complete(start + Duration::from_millis(80));
    assert_eq!(
        state(&balancer, 1),
        EndpointState {
            rtt_estimate: Duration::from_millis(80),
            pending: 0
        }
    );
}

#[test]
fn dropped_lease_ends_the_request_without_a_sample() {
    let start = Instant::now();
    let balancer = balancer_with(&[1], start);
    let lease = balancer.pick_at(start).expect("one");
    drop(lease);
    assert_eq!(
        state(&balancer, 1),
        EndpointState {
            rtt_estimate: DEFAULT_RTT,
            pending: 0
        }
    );
}

#[test]
fn pending_requests_steer_picks_away() {
    let now = Instant::now();
    let balancer = balancer_with(&[1, 2], now);
    let held = balancer.pick_at(now).expect("two");
    let busy = held.address();
    for _ in 0..50 {
        let lease = balancer.pick_at(now).expect("two");
        assert_ne!(lease.address(), busy);
    }
}

#[test]
fn removed_endpoint_is_not_picked_while_its_requests_are_in_flight() {
    let start = Instant::now();
    let balancer = balancer_with(&[1, 2, 3], start);
    let in_flight: Vec<_> = (0..30)
        .map(|_| balancer.pick_at(start).expect("three"))
        .collect();
    assert!(in_flight.iter().any(|lease| lease.address() == address(2)));

    balancer.update_at(Change::Remove(address(2)), start);
    assert_eq!(balancer.len(), 2);
    assert!(balancer.endpoint_state(address(2)).is_none());
    for _ in 0..1_000 {
        let lease = balancer.pick_at(start).expect("two");
        assert_ne!(lease.address(), address(2));
    }
    // Leases on the removed endpoint end harmlessly.
    for lease in in_flight {
        lease.complete(start + Duration::from_millis(5));
    }
    assert_eq!(state(&balancer, 1).pending + state(&balancer, 3).pending, 0);
}

#[test]
fn add_of_a_known_address_replaces_metadata_and_keeps_load() {
    let start = Instant::now();
    let balancer = balancer_with(&[1, 2], start);
    let lease = balancer.pick_at(start).expect("two");
    let picked = lease.address();
    lease.complete(start + Duration::from_millis(300));
    let held = balancer.pick_at(start).expect("two");

    balancer.update_at(Change::Add(picked, 99), start);
    assert_eq!(balancer.len(), 2);
    let after = balancer.endpoint_state(picked).expect("present");
    assert_eq!(after.rtt_estimate, Duration::from_millis(300));
    assert_eq!(
        after.pending,
        usize::from(held.address() == picked),
        "pending survives the metadata change"
    );
    drop(held);
    let with_new_metadata = (0..100)
        .filter_map(|_| balancer.pick_at(start))
        .find(|lease| lease.address() == picked);
    if let Some(lease) = with_new_metadata {
        assert_eq!(*lease.metadata(), 99);
    }
}

#[test]
fn reset_keeps_listed_endpoints_and_drops_the_rest() {
    let start = Instant::now();
    let balancer = balancer_with(&[1, 2, 3], start);
    // Give endpoint 1 a distinctive estimate.
    balancer.update_at(Change::Reset(vec![(address(1), 1)]), start);
    balancer
        .pick_at(start)
        .expect("one")
        .complete(start + Duration::from_millis(70));

    balancer.update_at(
        Change::Reset(vec![(address(1), 10), (address(4), 4)]),
        start,
    );
    assert_eq!(balancer.len(), 2);
    assert_eq!(state(&balancer, 1).rtt_estimate, Duration::from_millis(70));
    assert_eq!(state(&balancer, 4).rtt_estimate, DEFAULT_RTT);
    assert!(balancer.endpoint_state(address(2)).is_none());

    balancer.update_at(Change::Reset(Vec::new()), start);
    assert!(balancer.is_empty());
    assert!(balancer.pick_at(start).is_none());
}

#[test]
fn clones_share_endpoints_across_threads() {
    let now = Instant::now();
    let balancer = balancer_with(&[1, 2, 3], now);
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let balancer = balancer.clone();
            std::thread::spawn(move || {
                for _ in 0..10_000 {
                    let lease = balancer.pick().expect("three");
                    lease.complete(Instant::now());
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("no panic");
    }
    for port in 1..=3 {
        assert_eq!(state(&balancer, port).pending, 0);
    }
    assert!(format!("{balancer:?}").contains("endpoints: 3"));
}

/// Requests arriving at a fixed rate in virtual time, each completing after
/// its endpoint's latency.
struct Simulation {
    balancer: Balancer<u16>,
    start: Instant,
    elapsed: Duration,
    arrival_interval: Duration,
    latencies: HashMap<SocketAddr, Duration>,
    in_flight: BinaryHeap<Reverse<(Duration, u64)>>,
    leases: HashMap<u64, EndpointLease<u16>>,
    next_request: u64,
    picks: HashMap<SocketAddr, usize>,
}

impl Simulation {
    fn new(endpoints: &[(u16, Duration)], arrival_interval: Duration) -> Simulation {
        let start = Instant::now();
        let balancer = Balancer::with_seed(PeakEwmaConfig::default(), 2026);
        let mut latencies = HashMap::new();
        for &(port, latency) in endpoints {
            balancer.update_at(Change::Add(address(port), port), start);
            latencies.insert(address(port), latency);
        }
        Simulation {
            balancer,
            start,
            elapsed: Duration::ZERO,
            arrival_interval,
            latencies,
            in_flight: BinaryHeap::new(),
            leases: HashMap::new(),
            next_request: 0,
            picks: HashMap::new(),
        }
    }

    fn now(&self) -> Instant {
        self.start + self.elapsed
    }

    /// Runs `requests` arrivals; returns picks per port during this run.
    fn run(&mut self, requests: usize) -> HashMap<u16, usize> {
        self.picks.clear();
        for _ in 0..requests {
            self.elapsed += self.arrival_interval;
            self.complete_due();
            let lease = self.balancer.pick_at(self.now()).expect("endpoints");
            let address = lease.address();
            *self.picks.entry(address).or_default() += 1;
            let finishes_at = self.elapsed + self.latencies[&address];
            self.in_flight
                .push(Reverse((finishes_at, self.next_request)));
            self.leases.insert(self.next_request, lease);
            self.next_request += 1;
        }
        self.picks
            .iter()
            .map(|(address, &count)| (address.port(), count))
            .collect()
    }

    fn complete_due(&mut self) {
        while let Some(&Reverse((finishes_at, request))) = self.in_flight.peek() {
            if finishes_at > self.elapsed {
                break;
            }
            self.in_flight.pop();
            let lease = self.leases.remove(&request).expect("in flight");
            lease.complete(self.start + finishes_at);
        }
    }
}

fn share(picks: &HashMap<u16, usize>, port: u16) -> f64 {
    let total: usize = picks.values().sum();
    picks.get(&port).copied().unwrap_or(0) as f64 / total as f64
}

#[test]
fn simulation_slow_endpoint_gets_under_ten_percent() {
    for arrival_interval in [
        Duration::from_millis(1),
        Duration::from_micros(200),
        Duration::from_micros(50),
    ] {
        let mut simulation = Simulation::new(
            &[
                (1, Duration::from_millis(1)),
                (2, Duration::from_millis(1)),
                (3, Duration::from_millis(50)),
            ],
            arrival_interval,
        );
        let picks = simulation.run(10_000);
        let slow = share(&picks, 3);
        println!("arrival every {arrival_interval:?}: picks {picks:?}, slow share {slow:.4}");
        assert!(slow < 0.10, "slow share {slow} at {arrival_interval:?}");
        assert!(
            share(&picks, 1) > 0.3 && share(&picks, 2) > 0.3,
            "{picks:?}"
        );
    }
}

#[test]
fn simulation_removed_endpoint_gets_nothing_afterwards() {
    let mut simulation = Simulation::new(
        &[
            (1, Duration::from_millis(1)),
            (2, Duration::from_millis(1)),
            (3, Duration::from_millis(1)),
        ],
        Duration::from_micros(200),
    );
    let before = simulation.run(5_000);
    assert!(before.get(&2).copied().unwrap_or(0) > 1_000, "{before:?}");
    let now = simulation.now();
    simulation
        .balancer
        .update_at(Change::Remove(address(2)), now);
    let after = simulation.run(5_000);
    assert_eq!(after.get(&2), None, "{after:?}");
    assert_eq!(after.values().sum::<usize>(), 5_000);
}

#[test]
fn simulation_returning_endpoint_starts_at_the_default_rtt() {
    let mut simulation = Simulation::new(
        &[
            (1, Duration::from_millis(1)),
            (2, Duration::from_millis(1)),
            (3, Duration::from_millis(50)),
        ],
        Duration::from_micros(200),
    );
    simulation.run(5_000);
    let learned = simulation
        .balancer
        .endpoint_state(address(3))
        .expect("present");
    assert!(learned.rtt_estimate > DEFAULT_RTT, "{learned:?}");

    let now = simulation.now();
    simulation
        .balancer
        .update_at(Change::Remove(address(3)), now);
    simulation.run(100);
    let now = simulation.now();
    simulation
        .balancer
        .update_at(Change::Add(address(3), 3), now);
    assert_eq!(
        simulation.balancer.endpoint_state(address(3)),
        Some(EndpointState {
            rtt_estimate: DEFAULT_RTT,
            pending: 0
        })
    );
}

/// Release-mode cost of the hot path:
/// `cargo test --release -p weft-proxy balance::tests::bench -- --ignored --nocapture`
#[test]
#[ignore = "benchmark; run in release mode"]
fn bench_pick_and_complete() {
    const CYCLES: u32 = 1_000_000;
    for endpoints in [3u16, 100, 10_000] {
        let start = Instant::now();
        let balancer: Balancer<u16> = Balancer::with_seed(PeakEwmaConfig::default(), 1);
        let ports: Vec<(SocketAddr, u16)> =
            (1..=endpoints).map(|port| (address(port), port)).collect();
        balancer.update_at(Change::Reset(ports), start);

        // Virtual time: the cost of the balancer alone.
        let began = Instant::now();
        let mut now = start;
        for _ in 0..CYCLES {
            now += Duration::from_micros(10);
            let lease = balancer.pick_at(now).expect("endpoints");
            lease.complete(now + Duration::from_millis(1));
        }
        let virtual_time = began.elapsed();

        // Real clock: what a request pays, two clock reads included.
        let began = Instant::now();
        for _ in 0..CYCLES {
            let lease = balancer.pick().expect("endpoints");
            lease.complete(Instant::now());
        }
        let real_clock = began.elapsed();

        println!(
            "{endpoints} endpoints: pick+complete {:.1} ns/cycle (explicit time), {:.1} ns/cycle (Instant::now)",
            virtual_time.as_nanos() as f64 / f64::from(CYCLES),
            real_clock.as_nanos() as f64 / f64::from(CYCLES),
        );
    }
}
