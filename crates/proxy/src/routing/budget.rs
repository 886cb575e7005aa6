//! The retry budget: how many retries a logical destination may send,
//! with the semantics of Linkerd's (tower's `TpsBudget`): over a sliding
//! window of `ttl`, retries may reach `min_retries_per_second × ttl` plus
//! `retry_ratio ×` the requests seen in the window.
//!
//! ```text
//! request ─► deposit(now)            window: 10 slots of ttl/10, oldest dropped as time passes
//! retry?  ─► withdraw(now) ─► allowed when retries + 1 ≤ min × ttl + ratio × requests
//! ```
//!
//! Time is passed in, so the arithmetic is tested without sleeping.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::routing::profile::RetryBudget as BudgetSpec;

const SLOTS: usize = 10;

/// One logical destination's retry budget, shared by its retryable routes.
#[derive(Debug)]
pub(crate) struct RetryBudget {
    spec: BudgetSpec,
    window: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    requests: [u64; SLOTS],
    retries: [u64; SLOTS],
    /// Index of the current slot.
    current: usize,
    /// When the current slot started.
    slot_started: Instant,
}

impl RetryBudget {
    /// An empty budget with `spec`'s limits, its window starting at `now`.
    pub(crate) fn new(spec: BudgetSpec, now: Instant) -> RetryBudget {
        RetryBudget {
            spec,
            window: Mutex::new(Window {
                requests: [0; SLOTS],
                retries: [0; SLOTS],
                current: 0,
                slot_started: now,
            }),
        }
    }

    /// The limits this budget enforces.
    pub(crate) fn spec(&self) -> BudgetSpec {
        self.spec
    }

    /// Counts one request (not a retry).
    pub(crate) fn deposit(&self, now: Instant) {
        let mut window = self.lock(now);
        let current = window.current;
        window.requests[current] += 1;
    }

    /// Takes one retry from the budget; `false` when it is spent.
    pub(crate) fn withdraw(&self, now: Instant) -> bool {
        let mut window = self.lock(now);
        let requests: u64 = window.requests.iter().sum();
        let retries: u64 = window.retries.iter().sum();
        let reserve = f64::from(self.spec.min_retries_per_second) * self.spec.ttl.as_secs_f64();
        let allowed = reserve + f64::from(self.spec.retry_ratio) * requests as f64;
        if (retries + 1) as f64 > allowed {
            return false;
        }
        let current = window.current;
        window.retries[current] += 1;
        true
    }

    /// The window, advanced to `now`.
    fn lock(&self, now: Instant) -> std::sync::MutexGuard<'_, Window> {
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = (self.spec.ttl / SLOTS as u32).max(Duration::from_millis(1));
        let elapsed = now.saturating_duration_since(window.slot_started);
        let steps = (elapsed.as_nanos() / slot.as_nanos()) as usize;
        if steps > 0 {
            for step in 1..=steps.min(SLOTS) {
                let index = (window.current + step) % SLOTS;
                window.requests[index] = 0;
                window.retries[index] = 0;
            }
            window.current = (window.current + steps) % SLOTS;
            window.slot_started += slot * steps as u32;
        }
        window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(ratio: f32, min_per_second: u32, ttl_seconds: u64) -> BudgetSpec {
        BudgetSpec {
            retry_ratio: ratio,
            min_retries_per_second: min_per_second,
            ttl: Duration::from_secs(ttl_seconds),
        }
    }

    /// Sends `requests` requests, each retried once if the budget allows;
    /// returns the retries allowed.
    fn retries_allowed(budget: &RetryBudget, requests: u64, now: Instant) -> u64 {
        let mut allowed = 0;
        for _ in 0..requests {
            budget.deposit(now);
            if budget.withdraw(now) {
                allowed += 1;
            }
        }
        allowed
    }

    #[test]
    fn allowed_retries_follow_ratio_and_reserve() {
        // (ratio, min/s, ttl s, requests, retries allowed)
        let table: &[(f32, u32, u64, u64, u64)] = &[
            (0.2, 0, 10, 100, 20),
            (0.2, 1, 10, 100, 30),
            (0.0, 1, 10, 100, 10),
            (0.0, 0, 10, 100, 0),
            (1.0, 0, 10, 50, 50),
            (0.2, 10, 10, 1000, 300),
            (0.5, 0, 1, 10, 5),
        ];
        for &(ratio, min, ttl, requests, expected) in table {
            let now = Instant::now();
            let budget = RetryBudget::new(spec(ratio, min, ttl), now);
            assert_eq!(
                retries_allowed(&budget, requests, now),
                expected,
                "ratio {ratio}, min {min}/s, ttl {ttl}s, {requests} requests"
            );
        }
    }

    #[test]
    fn spent_budget_refills_as_the_window_slides() {
        let start = Instant::now();
        let budget = RetryBudget::new(spec(0.0, 1, 10), start);
        assert_eq!(retries_allowed(&budget, 20, start), 10);
        assert!(!budget.withdraw(start + Duration::from_secs(5)));
        // Just past the window: the first slot's retries have expired.
        assert!(budget.withdraw(start + Duration::from_secs(10)));
        // Long after: the whole reserve is back.
        let later = start + Duration::from_secs(60);
        assert_eq!(retries_allowed(&budget, 20, later), 10);
    }

    #[test]
    fn old_requests_stop_counting() {
        let start = Instant::now();
        let budget = RetryBudget::new(spec(1.0, 0, 1), start);
        for _ in 0..10 {
            budget.deposit(start);
        }
        assert!(budget.withdraw(start + Duration::from_millis(500)));
        assert!(
            !budget.withdraw(start + Duration::from_secs(2)),
            "deposits expired"
        );
    }
}
