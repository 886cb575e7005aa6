//! A check's [`Verdict`] and the helpers the checks' decisions share
//! (a failed read fails the check, only with a control plane, lists cut
//! short): below the checks table and every topic module.

use super::state::{ClusterState, ControlPlaneState};

/// A check's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Passed.
    Pass,
    /// Passed, but needs attention: the message says why.
    Warn(String),
    /// Failed: the message says why.
    Fail(String),
    /// Does not apply (not printed).
    Skip,
}

/// A failed read fails the check with its message; else `decide`.
pub(super) fn fail_on<T>(
    fetched: &Result<T, String>,
    decide: impl FnOnce(&T) -> Verdict,
) -> Verdict {
    match fetched {
        Ok(value) => decide(value),
        Err(error) => Verdict::Fail(error.clone()),
    }
}

pub(super) fn exists(found: &Result<bool, String>, missing: impl FnOnce() -> String) -> Verdict {
    fail_on(found, |found| {
        if *found {
            Verdict::Pass
        } else {
            Verdict::Fail(missing())
        }
    })
}

pub(super) fn control_plane(
    state: &ClusterState,
    decide: impl FnOnce(&ControlPlaneState) -> Verdict,
) -> Verdict {
    state.control_plane.as_ref().map_or(Verdict::Skip, decide)
}

/// At most five items, then `and N more`.
pub fn some_of(items: &[String]) -> String {
    const SHOWN: usize = 5;
    if items.len() <= SHOWN {
        items.join(", ")
    } else {
        format!(
            "{}, and {} more",
            items[..SHOWN].join(", "),
            items.len() - SHOWN
        )
    }
}
