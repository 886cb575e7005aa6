//! `weft check --kubernetes`: the mesh installed on a Kubernetes cluster,
//! checked the way `linkerd check` does — the same categories, `√`/`‼`/`×`
//! lines, `see https://weft.dev/checks/#… for hints`, `Status check results
//! are √`, exit code 1 on any error (warnings keep 0), and `-o json`.
//!
//! ```text
//!  gather (I/O, gather.rs): kubeconfig ─► client ─► GET /version, gets,
//!        lists, SelfSubjectAccessReviews ──► ClusterState (state.rs)
//!  evaluate (pure, checks.rs): DEFINITIONS × ClusterState ──► [Category]
//!        (the decisions by topic: installation, pre, identity, webhooks, data_plane;
//!        Verdict and their shared helpers: verdict.rs)
//!  render (pure, crate::check): table or JSON
//! ```
//!
//! Modes: `--pre` (the cluster can take an installation), default (the
//! installation is healthy: namespace, RBAC, CRDs, controller, identity,
//! webhooks), `--proxy` (default, plus the meshed pods' proxies). `--wait D`
//! re-gathers until no check errs or `D` has passed.

mod certificates;
mod checks;
mod data_plane;
mod gather;
mod identity;
mod installation;
mod pre;
mod state;
#[cfg(test)]
mod tests;
mod verdict;
mod webhooks;

use std::process::ExitCode;
use std::time::{Duration, Instant};

pub use checks::{DEFINITIONS, Definition, HINT_BASE_URL, OnError, Verdict};
pub use gather::{ConnectError, Target, gather};
pub use installation::{EXPECTED_CRDS, MINIMUM_KUBERNETES, PROXY_INJECTOR_WEBHOOK, expected_crds};
pub use state::{
    AccessRequest, AccessReview, ApiVersion, ClusterState, ControlPlaneState, DataPlaneState,
    DeploymentState, EndpointCounts, Fetched, PodState, PreState, ProxyState, WebhookService,
    WebhookState,
};

use super::{Category, Check, Outcome, passed, render, to_json};
use crate::output::{Format, color_wanted};

/// How long `--wait` pauses between two rounds.
const RETRY_INTERVAL: Duration = Duration::from_secs(2);

/// Which checks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `--pre`: before `weft install`.
    Pre,
    /// The installation.
    ControlPlane,
    /// `--proxy`: the installation and the data plane.
    Proxy,
}

impl Mode {
    /// The categories the mode runs, in order.
    pub fn categories(self) -> Vec<&'static str> {
        let mut categories = checks::API_CATEGORIES.to_vec();
        match self {
            Mode::Pre => categories.extend(checks::PRE_CATEGORIES),
            Mode::ControlPlane => categories.extend(checks::CONTROL_PLANE_CATEGORIES),
            Mode::Proxy => {
                categories.extend(checks::CONTROL_PLANE_CATEGORIES);
                categories.extend(checks::DATA_PLANE_CATEGORIES);
            }
        }
        categories
    }
}

/// Runs every check of `mode` over `state`, in [`DEFINITIONS`] order.
/// Skipped checks are left out; an error stops what its [`OnError`] says.
pub fn evaluate(state: &ClusterState, mode: Mode) -> Vec<Category> {
    let selected = mode.categories();
    let mut categories: Vec<Category> = Vec::new();
    let mut skipping: Option<&str> = None;
    for definition in DEFINITIONS
        .iter()
        .filter(|definition| selected.contains(&definition.category))
    {
        if skipping == Some(definition.category) {
            continue;
        }
        let hint = format!("{HINT_BASE_URL}{}", definition.anchor);
        let check = match (definition.run)(state) {
            Verdict::Skip => continue,
            Verdict::Pass => Check::success(definition.description),
            Verdict::Warn(message) => {
                Check::failed(definition.description, Outcome::Warning, message, &hint)
            }
            Verdict::Fail(message) => {
                Check::failed(definition.description, Outcome::Error, message, &hint)
            }
        };
        let failed = check.outcome == Outcome::Error;
        match categories.last_mut() {
            Some(category) if category.name == definition.category => category.checks.push(check),
            _ => categories.push(Category {
                name: definition.category.to_string(),
                checks: vec![check],
            }),
        }
        if failed {
            match definition.on_error {
                OnError::Continue => {}
                OnError::SkipCategory => skipping = Some(definition.category),
                OnError::Stop => break,
            }
        }
    }
    categories
}

/// Gathers and evaluates; with `wait`, again every two seconds until no
/// check errs or the time is up. The last round's categories.
pub async fn check(target: &Target, mode: Mode, wait: Option<Duration>) -> Vec<Category> {
    let deadline = wait.map(|wait| Instant::now() + wait);
    loop {
        let categories = evaluate(&gather(target, mode).await, mode);
        match deadline {
            Some(deadline)
                if !passed(&categories) && Instant::now() + RETRY_INTERVAL < deadline =>
            {
                tokio::time::sleep(RETRY_INTERVAL).await;
            }
            _ => return categories,
        }
    }
}

/// Runs `weft check --kubernetes` and prints the results.
pub async fn run(
    target: Target,
    mode: Mode,
    wait: Option<Duration>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let categories = check(&target, mode, wait).await;
    match format {
        Format::Json => {
            crate::output::out_line(&serde_json::to_string_pretty(&to_json(&categories))?)?
        }
        Format::Table | Format::Wide => crate::output::out(&render(&categories, color_wanted()))?,
    }
    Ok(if passed(&categories) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
