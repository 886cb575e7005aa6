//! Peak-EWMA: the load estimate of one endpoint, as Linkerd (tower's
//! `PeakEwma`) and Finagle compute it.
//!
//! ```text
//! observe(sample, now):  sample > estimate  ─► estimate = sample          (peak: at once)
//!                        otherwise           ─► estimate = estimate·w + sample·(1 − w),
//!                                                w = e^(−elapsed / decay)  (decays in)
//! load(pending, now):    observe(0, now)     ─► an idle estimate decays toward zero, so an
//!                                               endpoint that was slow once is retried later
//!                        estimate · (pending + 1)
//! ```
//!
//! Time is always an argument, so every step is deterministic and testable
//! without a clock. Estimates are kept in nanoseconds as `f64`.

use std::time::{Duration, Instant};

/// Linkerd's default time constant of the moving average.
pub(crate) const DEFAULT_DECAY: Duration = Duration::from_secs(10);

/// Linkerd's default estimate for an endpoint with no samples yet.
pub(crate) const DEFAULT_RTT: Duration = Duration::from_millis(30);

/// The smallest default RTT accepted (Linkerd clamps it the same way), so a
/// new endpoint never looks free.
pub(crate) const MINIMUM_DEFAULT_RTT: Duration = Duration::from_millis(1);

/// The load of an endpoint whose estimate has decayed to exactly zero while it
/// has requests in flight: it is unknown but busy, so it is avoided (Finagle's
/// penalty, `Long.MaxValue >> 16` nanoseconds).
pub(crate) const PENDING_PENALTY_NANOS: f64 = (i64::MAX >> 16) as f64;

/// How the estimate of every endpoint of one balancer behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PeakEwmaConfig {
    /// Time constant of the moving average: after `decay` without samples an
    /// estimate keeps `1/e` of its weight.
    pub decay: Duration,
    /// The estimate of an endpoint before its first sample (at least
    /// [`MINIMUM_DEFAULT_RTT`]).
    pub default_rtt: Duration,
}

impl Default for PeakEwmaConfig {
    fn default() -> Self {
        PeakEwmaConfig {
            decay: DEFAULT_DECAY,
            default_rtt: DEFAULT_RTT,
        }
    }
}

/// The peak-EWMA round-trip estimate of one endpoint.
#[derive(Clone, Debug)]
pub(crate) struct PeakEwma {
    estimate_nanos: f64,
    updated_at: Instant,
    decay_nanos: f64,
}

impl PeakEwma {
    /// A fresh estimate at the configured default RTT, as of `now`.
    pub(crate) fn new(config: PeakEwmaConfig, now: Instant) -> PeakEwma {
        PeakEwma {
            estimate_nanos: nanos(config.default_rtt.max(MINIMUM_DEFAULT_RTT)),
            updated_at: now,
            // A zero decay would divide by zero; one nanosecond means "no memory".
            decay_nanos: nanos(config.decay).max(1.0),
        }
    }

    /// Records a measured round trip that ended at `now`.
    pub(crate) fn observe(&mut self, rtt: Duration, now: Instant) {
        self.observe_nanos(nanos(rtt), now);
    }

    /// The load of the endpoint at `now` with `pending` requests in flight.
    ///
    /// Like Linkerd and Finagle, reading the load first decays the estimate
    /// toward zero for the time since the last update (a zero-latency
    /// sample), which is why it takes `&mut self`.
    pub(crate) fn load(&mut self, pending: usize, now: Instant) -> f64 {
        self.observe_nanos(0.0, now);
        load_of(self.estimate_nanos, pending)
    }

    /// The current estimate, as of the last sample or load read.
    #[cfg(test)]
    pub(crate) fn estimate(&self) -> Duration {
        Duration::from_nanos(self.estimate_nanos as u64)
    }

    fn observe_nanos(&mut self, sample_nanos: f64, now: Instant) {
        if sample_nanos > self.estimate_nanos {
            self.estimate_nanos = sample_nanos;
        } else {
            // `saturating_duration_since`: a `now` older than the last update
            // (callers on other threads) counts as no time passing.
            let elapsed_nanos = nanos(now.saturating_duration_since(self.updated_at));
            let weight = (-elapsed_nanos / self.decay_nanos).exp();
            self.estimate_nanos = self.estimate_nanos * weight + sample_nanos * (1.0 - weight);
        }
        self.updated_at = self.updated_at.max(now);
    }
}

/// The load of an endpoint with the given estimate and `pending` requests in
/// flight: `estimate × (pending + 1)`, or [`PENDING_PENALTY_NANOS`] (plus
/// `pending`) when the estimate is zero and requests are in flight.
pub(crate) fn load_of(estimate_nanos: f64, pending: usize) -> f64 {
    if estimate_nanos == 0.0 && pending > 0 {
        PENDING_PENALTY_NANOS + pending as f64
    } else {
        estimate_nanos * (pending as f64 + 1.0)
    }
}

fn nanos(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    const MILLISECOND: f64 = 1e6;

    fn assert_close(actual: f64, expected: f64, what: &str) {
        let tolerance = expected.abs() * 1e-9 + 1e-3;
        assert!(
            (actual - expected).abs() <= tolerance,
            "{what}: got {actual}, want {expected}"
        );
    }

    #[test]
    fn new_estimate_is_the_default_rtt_clamped_to_one_millisecond() {
        let now = Instant::now();
        let cases = [
            (Duration::from_millis(30), Duration::from_millis(30)),
            (Duration::from_millis(250), Duration::from_millis(250)),
            (Duration::from_micros(10), Duration::from_millis(1)),
            (Duration::ZERO, Duration::from_millis(1)),
        ];
        for (default_rtt, expected) in cases {
            let config = PeakEwmaConfig {
                default_rtt,
                ..PeakEwmaConfig::default()
            };
            assert_eq!(
                PeakEwma::new(config, now).estimate(),
                expected,
                "{default_rtt:?}"
            );
        }
        assert_eq!(PeakEwmaConfig::default().decay, Duration::from_secs(10));
        assert_eq!(
            PeakEwmaConfig::default().default_rtt,
            Duration::from_millis(30)
        );
    }

    /// (elapsed since creation at 30 ms, sample, expected estimate in ms)
    #[test]
    fn observe_table_peak_replaces_lower_decays_in() {
        let e = std::f64::consts::E;
        let cases: [(Duration, Duration, f64); 8] = [
            // Peak: a higher sample replaces the estimate at once, whatever the time.
            (Duration::ZERO, Duration::from_millis(100), 100.0),
            (Duration::from_secs(60), Duration::from_millis(31), 31.0),
            // Lower: no time passed, the sample has no weight.
            (Duration::ZERO, Duration::from_millis(10), 30.0),
            // Lower: weight 1 − e^(−elapsed/10 s).
            (
                Duration::from_secs(1),
                Duration::from_millis(10),
                30.0 * (-0.1f64).exp() + 10.0 * (1.0 - (-0.1f64).exp()),
            ),
            (
                Duration::from_secs(10),
                Duration::from_millis(10),
                30.0 / e + 10.0 * (1.0 - 1.0 / e),
            ),
            (
                Duration::from_secs(30),
                Duration::ZERO,
                30.0 * (-3.0f64).exp(),
            ),
            // Long after: the sample is (almost) all that is left.
            (Duration::from_secs(1000), Duration::from_millis(10), 10.0),
            // Equal sample: unchanged.
            (Duration::from_secs(5), Duration::from_millis(30), 30.0),
        ];
        let start = Instant::now();
        for (elapsed, sample, expected_milliseconds) in cases {
            let mut ewma = PeakEwma::new(PeakEwmaConfig::default(), start);
            ewma.observe(sample, start + elapsed);
            assert_close(
                ewma.estimate_nanos,
                expected_milliseconds * MILLISECOND,
                &format!("elapsed {elapsed:?}, sample {sample:?}"),
            );
        }
    }

    #[test]
    fn steady_lower_samples_converge_and_a_spike_is_remembered_then_forgotten() {
        let start = Instant::now();
        let mut ewma = PeakEwma::new(PeakEwmaConfig::default(), start);
        // One 1 ms sample per 10 ms for 100 s of virtual time.
        let mut now = start;
        for _ in 0..10_000 {
            now += Duration::from_millis(10);
            ewma.observe(Duration::from_millis(1), now);
        }
        let expected = 1.0 + 29.0 * (-10.0f64).exp();
        assert_close(ewma.estimate_nanos, expected * MILLISECOND, "converged");
        // A spike is taken at once ...
        now += Duration::from_millis(10);
        ewma.observe(Duration::from_millis(200), now);
        assert_eq!(ewma.estimate(), Duration::from_millis(200));
        // ... and decays back after a few time constants of normal samples.
        for _ in 0..5_000 {
            now += Duration::from_millis(10);
            ewma.observe(Duration::from_millis(1), now);
        }
        let expected = 1.0 + 199.0 * (-5.0f64).exp();
        assert_close(ewma.estimate_nanos, expected * MILLISECOND, "after spike");
    }

    /// (idle time before reading, pending, expected load in ms) from a 30 ms estimate.
    #[test]
    fn load_table_idle_decay_times_pending_plus_one() {
        let cases: [(Duration, usize, f64); 6] = [
            (Duration::ZERO, 0, 30.0),
            (Duration::ZERO, 1, 60.0),
            (Duration::ZERO, 9, 300.0),
            (Duration::from_secs(10), 0, 30.0 / std::f64::consts::E),
            (Duration::from_secs(10), 2, 90.0 / std::f64::consts::E),
            (Duration::from_secs(20), 0, 30.0 * (-2.0f64).exp()),
        ];
        let start = Instant::now();
        for (idle, pending, expected_milliseconds) in cases {
            let mut ewma = PeakEwma::new(PeakEwmaConfig::default(), start);
            let load = ewma.load(pending, start + idle);
            assert_close(
                load,
                expected_milliseconds * MILLISECOND,
                &format!("idle {idle:?}, pending {pending}"),
            );
        }
    }

    #[test]
    fn load_of_table_penalises_zero_estimate_with_pending() {
        let cases: [(f64, usize, f64); 5] = [
            (0.0, 0, 0.0),
            (0.0, 1, PENDING_PENALTY_NANOS + 1.0),
            (0.0, 3, PENDING_PENALTY_NANOS + 3.0),
            (2.0, 0, 2.0),
            (2.0, 3, 8.0),
        ];
        for (estimate, pending, expected) in cases {
            assert_eq!(load_of(estimate, pending), expected, "{estimate} {pending}");
        }
    }

    #[test]
    fn time_going_backwards_counts_as_no_time() {
        let start = Instant::now();
        let later = start + Duration::from_secs(10);
        let mut ewma = PeakEwma::new(PeakEwmaConfig::default(), later);
        ewma.observe(Duration::from_millis(10), start);
        assert_eq!(ewma.estimate(), Duration::from_millis(30));
        assert_eq!(ewma.updated_at, later);
    }

    #[test]
    fn zero_decay_means_no_memory() {
        let start = Instant::now();
        let config = PeakEwmaConfig {
            decay: Duration::ZERO,
            ..PeakEwmaConfig::default()
        };
        let mut ewma = PeakEwma::new(config, start);
        ewma.observe(Duration::from_millis(5), start + Duration::from_millis(1));
        assert_close(ewma.estimate_nanos, 5.0 * MILLISECOND, "zero decay");
        assert!(ewma.estimate_nanos.is_finite());
    }
}
