//! The schedule of a benchmark, decided before anything runs: which
//! (workload, load point) cells, how many repeats, and the order of setups
//! within each cell, rotated so that no setup is always measured first or
//! right after the same neighbour (slow drifts of the machine then spread
//! over all setups instead of biasing one).

use std::time::Duration;

use serde::Serialize;

use crate::load::{LoadPoint, Workload};

/// Closed-loop concurrencies measured for max throughput.
pub const CONCURRENCIES: [u32; 3] = [1, 10, 50];
/// Open-loop rates measured for latency.
pub const RATES: [u32; 2] = [1_000, 5_000];

/// Length and repetition of a benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Profile {
    /// Name (`quick`, `full` or `custom`).
    pub name: &'static str,
    /// Repeats of the whole matrix.
    pub repeats: u32,
    /// Length of one run.
    pub duration: Duration,
    /// Length of the warm-up (and smoke test) run per setup and workload.
    pub warmup: Duration,
}

impl Profile {
    /// About 3–4 minutes with the three default setups.
    pub const QUICK: Profile = Profile {
        name: "quick",
        repeats: 3,
        duration: Duration::from_secs(1),
        warmup: Duration::from_millis(500),
    };

    /// About 13–15 minutes with the three default setups.
    pub const FULL: Profile = Profile {
        name: "full",
        repeats: 5,
        duration: Duration::from_secs(3),
        warmup: Duration::from_secs(1),
    };
}

/// One measured run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// Repeat number, from 0.
    pub repeat: u32,
    /// Protocol.
    pub workload: Workload,
    /// Load.
    pub point: LoadPoint,
    /// Index into the list of setups.
    pub setup: usize,
}

/// The default load points, closed loop first.
pub fn load_points() -> Vec<LoadPoint> {
    load_points_of(&CONCURRENCIES, &RATES)
}

/// The load points of these concurrencies and rates, closed loop first.
pub fn load_points_of(concurrencies: &[u32], rates: &[u32]) -> Vec<LoadPoint> {
    concurrencies
        .iter()
        .map(|&concurrency| LoadPoint::Closed { concurrency })
        .chain(rates.iter().map(|&rate| LoadPoint::Open { rate }))
        .collect()
}

/// The interleaved order of all runs: repeat → workload → load point →
/// every setup, the setups rotated by one more place in each cell.
pub fn schedule(
    repeats: u32,
    workloads: &[Workload],
    points: &[LoadPoint],
    setups: usize,
) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut cell = 0usize;
    for repeat in 0..repeats {
        for &workload in workloads {
            for &point in points {
                for i in 0..setups {
                    steps.push(Step {
                        repeat,
                        workload,
                        point,
                        setup: (cell + i) % setups,
                    });
                }
                cell += 1;
            }
        }
    }
    steps
}

/// Rough wall time of a schedule, to print before starting.
pub fn estimate(profile: &Profile, steps: usize, warmups: usize) -> Duration {
    const OVERHEAD: Duration = Duration::from_millis(300);
    (profile.duration + OVERHEAD) * steps as u32 + (profile.warmup + OVERHEAD) * warmups as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cell_runs_every_setup_once_per_repeat() {
        let points = load_points();
        let steps = schedule(2, &Workload::ALL, &points, 3);
        assert_eq!(steps.len(), 2 * 3 * 5 * 3);
        for chunk in steps.chunks(3) {
            let mut setups: Vec<usize> = chunk.iter().map(|s| s.setup).collect();
            setups.sort();
            assert_eq!(setups, [0, 1, 2]);
            assert!(chunk.iter().all(|s| s.point == chunk[0].point));
        }
    }

    #[test]
    fn setups_rotate_between_cells() {
        let steps = schedule(1, &[Workload::Http1], &load_points(), 3);
        let firsts: Vec<usize> = steps.chunks(3).map(|c| c[0].setup).collect();
        assert_eq!(firsts, [0, 1, 2, 0, 1]);
    }

    #[test]
    fn profiles_fit_their_budgets() {
        let steps = schedule(3, &Workload::ALL, &load_points(), 3).len();
        assert!(estimate(&Profile::QUICK, steps, 9) < Duration::from_secs(240));
        let steps = schedule(5, &Workload::ALL, &load_points(), 3).len();
        assert!(estimate(&Profile::FULL, steps, 9) < Duration::from_secs(900));
    }
}
