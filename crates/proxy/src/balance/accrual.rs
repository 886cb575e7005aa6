//! Failure accrual (circuit breaking) of a backend's endpoints, as
//! Linkerd's `ConsecutiveFailures` policy: an endpoint failing
//! `max_failures` times in a row is ejected from the balancer for a
//! backoff, then probed with one request.
//!
//! ```text
//! Closed{failures}
//!   success ─► Closed{0}
//!   failure ─► failures + 1 = max? ─► Open{until: now + backoff(0), attempt 0}
//! Open{until, attempt}
//!   pick before `until` ─► avoided            pick at/after `until` ─► Probing{attempt} (this request)
//! Probing{attempt}   (other picks avoid it while the probe is out)
//!   success ─► Closed{0}
//!   failure ─► Open{until: now + backoff(attempt + 1), attempt + 1}
//! ```
//!
//! `backoff(n) = min(min_backoff × 2ⁿ, max_backoff)` plus up to
//! `jitter_ratio ×` that at random, never more than `max_backoff`.
//! Responses to requests sent before an ejection are ignored while the
//! endpoint is open. The state of removed endpoints is forgotten at the
//! next [`Accrual::retain`]; at most as many entries as endpoints the
//! backend has had since then.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The settings (from the backend's policy).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct AccrualConfig {
    /// Consecutive failures that eject an endpoint (at least 1).
    pub max_failures: u32,
    /// The first ejection.
    pub min_backoff: Duration,
    /// The longest ejection.
    pub max_backoff: Duration,
    /// Up to this share of the backoff is added at random.
    pub jitter_ratio: f64,
}

impl AccrualConfig {
    /// The ejection after `attempt` earlier failed probes, with `random`
    /// uniform in `[0, 1)`.
    pub(crate) fn backoff(&self, attempt: u32, random: f64) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(31));
        let base = self
            .min_backoff
            .saturating_mul(factor)
            .min(self.max_backoff);
        let extra = base.as_secs_f64() * self.jitter_ratio.max(0.0) * random.clamp(0.0, 1.0);
        (base + Duration::from_secs_f64(extra)).min(self.max_backoff)
    }
}

/// One endpoint's circuit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Circuit {
    /// Serving; `failures` in a row so far.
    Closed {
        /// Consecutive failures.
        failures: u32,
    },
    /// Ejected until `until`.
    Open {
        /// When a probe may go.
        until: Instant,
        /// Failed probes so far (the next backoff's exponent).
        attempt: u32,
    },
    /// One probe request is out.
    Probing {
        /// Failed probes before this one.
        attempt: u32,
    },
}

impl Default for Circuit {
    fn default() -> Self {
        Circuit::Closed { failures: 0 }
    }
}

/// What a pick may do with an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Serve normally.
    Serve,
    /// Send this request as the probe.
    Probe,
    /// Avoid it.
    Ejected,
}

impl Circuit {
    /// Whether a request may go to the endpoint at `now`, and the circuit
    /// after the decision (a due `Open` becomes `Probing`).
    pub(crate) fn admit(self, now: Instant) -> (Admission, Circuit) {
        match self {
            Circuit::Closed { .. } => (Admission::Serve, self),
            Circuit::Open { until, attempt } if now >= until => {
                (Admission::Probe, Circuit::Probing { attempt })
            }
            Circuit::Open { .. } | Circuit::Probing { .. } => (Admission::Ejected, self),
        }
    }

    /// The circuit after a response (`failed` or not) at `now`; `random`
    /// uniform in `[0, 1)` jitters a new ejection.
    pub(crate) fn observe(
        self,
        failed: bool,
        now: Instant,
        config: &AccrualConfig,
        random: f64,
    ) -> Circuit {
        match (self, failed) {
            (Circuit::Closed { .. }, false) => Circuit::Closed { failures: 0 },
            (Circuit::Closed { failures }, true) => {
                let failures = failures.saturating_add(1);
                if failures >= config.max_failures.max(1) {
                    Circuit::Open {
                        until: now + config.backoff(0, random),
                        attempt: 0,
                    }
                } else {
                    Circuit::Closed { failures }
                }
            }
            // Late answers to requests sent before the ejection.
            (Circuit::Open { .. }, _) => self,
            (Circuit::Probing { .. }, false) => Circuit::Closed { failures: 0 },
            (Circuit::Probing { attempt }, true) => {
                let attempt = attempt.saturating_add(1);
                Circuit::Open {
                    until: now + config.backoff(attempt, random),
                    attempt,
                }
            }
        }
    }

    /// Whether the endpoint is out of the balancer.
    pub(crate) fn is_ejected(self) -> bool {
        !matches!(self, Circuit::Closed { .. })
    }
}

/// The circuits of one backend's endpoints, shared by every request to it.
#[derive(Debug)]
pub(crate) struct Accrual {
    config: AccrualConfig,
    circuits: Mutex<HashMap<SocketAddr, Circuit>>,
}

impl Accrual {
    /// No endpoint ejected yet.
    pub(crate) fn new(config: AccrualConfig) -> Accrual {
        Accrual {
            config,
            circuits: Mutex::new(HashMap::new()),
        }
    }

    /// The settings.
    pub(crate) fn config(&self) -> &AccrualConfig {
        &self.config
    }

    /// The endpoints to avoid at `now` (ejected and not yet due).
    pub(crate) fn ejected(&self, now: Instant) -> Vec<SocketAddr> {
        let circuits = self.circuits.lock().unwrap_or_else(PoisonError::into_inner);
        circuits
            .iter()
            .filter(|(_, circuit)| circuit.admit(now).0 == Admission::Ejected)
            .map(|(addr, _)| *addr)
            .collect()
    }

    /// Whether a request may go to `addr` at `now` (a due endpoint takes it
    /// as its probe).
    pub(crate) fn admit(&self, addr: SocketAddr, now: Instant) -> Admission {
        let mut circuits = self.circuits.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(circuit) = circuits.get_mut(&addr) else {
            return Admission::Serve;
        };
        let (admission, next) = circuit.admit(now);
        *circuit = next;
        admission
    }

    /// Records a response from `addr` at `now`.
    pub(crate) fn observe(&self, addr: SocketAddr, failed: bool, now: Instant, random: f64) {
        let mut circuits = self.circuits.lock().unwrap_or_else(PoisonError::into_inner);
        let circuit = circuits.entry(addr).or_default();
        let next = circuit.observe(failed, now, &self.config, random);
        if next.is_ejected() && !circuit.is_ejected() {
            tracing::info!(endpoint = %addr, failures = self.config.max_failures, "endpoint ejected by failure accrual");
        }
        *circuit = next;
        if *circuit == Circuit::default() {
            circuits.remove(&addr);
        }
    }

    /// Forgets endpoints not in `present`.
    pub(crate) fn retain(&self, present: impl Fn(SocketAddr) -> bool) {
        let mut circuits = self.circuits.lock().unwrap_or_else(PoisonError::into_inner);
        circuits.retain(|addr, _| present(*addr));
    }

    /// The circuit of `addr` (tests).
    #[cfg(test)]
    pub(crate) fn circuit(&self, addr: SocketAddr) -> Circuit {
        let circuits = self.circuits.lock().unwrap_or_else(PoisonError::into_inner);
        circuits.get(&addr).copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AccrualConfig {
        AccrualConfig {
            max_failures: 3,
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            jitter_ratio: 0.5,
        }
    }

    #[test]
    fn backoff_grows_within_bounds() {
        let config = config();
        // (attempt, random, expected)
        let table = [
            (0, 0.0, Duration::from_secs(1)),
            (0, 0.5, Duration::from_millis(1250)),
            (1, 0.0, Duration::from_secs(2)),
            (2, 0.0, Duration::from_secs(4)),
            (3, 0.0, Duration::from_secs(8)),
            (3, 0.99, Duration::from_secs(10)),
            (4, 0.0, Duration::from_secs(10)),
            (40, 0.7, Duration::from_secs(10)),
        ];
        for (attempt, random, expected) in table {
            assert_eq!(
                config.backoff(attempt, random),
                expected,
                "{attempt} {random}"
            );
        }
    }

    #[test]
    fn transitions() {
        let config = config();
        let now = Instant::now();
        let second = Duration::from_secs(1);
        // (name, circuit, failed, expected)
        let table = [
            (
                "success resets",
                Circuit::Closed { failures: 2 },
                false,
                Circuit::Closed { failures: 0 },
            ),
            (
                "failure counts",
                Circuit::Closed { failures: 1 },
                true,
                Circuit::Closed { failures: 2 },
            ),
            (
                "max failures eject",
                Circuit::Closed { failures: 2 },
                true,
                Circuit::Open {
                    until: now + second,
                    attempt: 0,
                },
            ),
            (
                "late answers ignored",
                Circuit::Open {
                    until: now + second,
                    attempt: 0,
                },
                false,
                Circuit::Open {
                    until: now + second,
                    attempt: 0,
                },
            ),
            (
                "probe success closes",
                Circuit::Probing { attempt: 2 },
                false,
                Circuit::Closed { failures: 0 },
            ),
            (
                "probe failure backs off longer",
                Circuit::Probing { attempt: 0 },
                true,
                Circuit::Open {
                    until: now + 2 * second,
                    attempt: 1,
                },
            ),
        ];
        for (name, circuit, failed, expected) in table {
            assert_eq!(
                circuit.observe(failed, now, &config, 0.0),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn admission() {
        let now = Instant::now();
        let later = now + Duration::from_secs(5);
        let table = [
            (
                Circuit::Closed { failures: 2 },
                now,
                Admission::Serve,
                Circuit::Closed { failures: 2 },
            ),
            (
                Circuit::Open {
                    until: later,
                    attempt: 1,
                },
                now,
                Admission::Ejected,
                Circuit::Open {
                    until: later,
                    attempt: 1,
                },
            ),
            (
                Circuit::Open {
                    until: later,
                    attempt: 1,
                },
                later,
                Admission::Probe,
                Circuit::Probing { attempt: 1 },
            ),
            (
                Circuit::Probing { attempt: 1 },
                later,
                Admission::Ejected,
                Circuit::Probing { attempt: 1 },
            ),
        ];
        for (circuit, at, admission, next) in table {
            assert_eq!(circuit.admit(at), (admission, next), "{circuit:?}");
        }
    }

    #[test]
    fn an_endpoint_is_ejected_probed_and_restored() {
        let accrual = Accrual::new(config());
        let addr: SocketAddr = "10.0.0.1:80".parse().unwrap();
        let other: SocketAddr = "10.0.0.2:80".parse().unwrap();
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(accrual.admit(addr, start), Admission::Serve);
            accrual.observe(addr, true, start, 0.0);
        }
        assert_eq!(accrual.ejected(start), vec![addr]);
        assert_eq!(accrual.admit(addr, start), Admission::Ejected);
        assert_eq!(accrual.admit(other, start), Admission::Serve);
        let due = start + Duration::from_secs(1);
        assert!(accrual.ejected(due).is_empty());
        assert_eq!(accrual.admit(addr, due), Admission::Probe);
        // While the probe is out, others avoid it.
        assert_eq!(accrual.ejected(due), vec![addr]);
        accrual.observe(addr, true, due, 0.0);
        assert_eq!(
            accrual.circuit(addr),
            Circuit::Open {
                until: due + Duration::from_secs(2),
                attempt: 1
            }
        );
        let due = due + Duration::from_secs(2);
        assert_eq!(accrual.admit(addr, due), Admission::Probe);
        accrual.observe(addr, false, due, 0.0);
        assert_eq!(accrual.circuit(addr), Circuit::default());
        assert!(accrual.ejected(due).is_empty());
        accrual.observe(other, true, due, 0.0);
        accrual.retain(|present| present != other);
        assert_eq!(accrual.circuit(other), Circuit::default());
    }
}
