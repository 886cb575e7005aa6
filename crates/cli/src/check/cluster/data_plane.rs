//! The `--proxy` decisions over the meshed pods: the data plane namespace
//! exists, every proxy is ready, runs the CLI's version and was injected
//! with the control plane's (warnings), and trusts the control plane's
//! anchors.

use std::collections::BTreeSet;

use weft_core::cluster::{PROXY_CONTAINER_NAME, TRUST_ANCHORS_CONFIGMAP};

use super::certificates::parse_bundle;
use super::identity::trust_anchors;
use super::state::{ClusterState, PodState};
use super::verdict::{Verdict, exists, fail_on, some_of};

pub use weft_core::cluster::PROXY_TRUST_ANCHORS_VARIABLE;

/// `--data-plane-namespace` exists (skipped without one).
pub fn namespace_exists(state: &ClusterState) -> Verdict {
    let Some((namespace, found)) = state
        .data_plane
        .as_ref()
        .and_then(|data| data.namespace.as_ref())
    else {
        return Verdict::Skip;
    };
    exists(found, || {
        format!("The \"{namespace}\" namespace does not exist")
    })
}

fn data_plane_pods(state: &ClusterState, decide: impl FnOnce(&[PodState]) -> Verdict) -> Verdict {
    let Some(data) = &state.data_plane else {
        return Verdict::Skip;
    };
    fail_on(&data.pods, |pods| decide(pods))
}

/// Every meshed pod's proxy container is ready (finished pods aside).
pub fn proxies_ready(state: &ClusterState) -> Verdict {
    data_plane_pods(state, |pods| {
        let not_ready: Vec<String> = pods
            .iter()
            .filter(|pod| !pod.finished() && !pod.proxy.as_ref().is_some_and(|proxy| proxy.ready))
            .map(PodState::key)
            .collect();
        if pods.is_empty() {
            Verdict::Warn(format!(
                "no meshed pods (with a {} container) found",
                PROXY_CONTAINER_NAME
            ))
        } else if not_ready.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail(format!("proxies not ready: {}", some_of(&not_ready)))
        }
    })
}

/// Whether a proxy's version is the CLI's (`0.1.0` or `v0.1.0`).
fn same_version(proxy: &str, cli: &str) -> bool {
    proxy.strip_prefix('v').unwrap_or(proxy) == cli
}

/// Every proxy runs the CLI's version (else a warning).
pub fn versions_match(state: &ClusterState) -> Verdict {
    let cli = env!("CARGO_PKG_VERSION");
    data_plane_pods(state, |pods| {
        let different: Vec<String> = pods
            .iter()
            .filter_map(|pod| {
                let version = pod
                    .proxy
                    .as_ref()
                    .and_then(|proxy| proxy.version.as_deref());
                match version {
                    Some(version) if same_version(version, cli) => None,
                    Some(version) => Some(format!("{} ({version})", pod.key())),
                    None => Some(format!("{} (unknown)", pod.key())),
                }
            })
            .collect();
        if different.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Warn(format!(
                "proxies not running version {cli}: {}",
                some_of(&different)
            ))
        }
    })
}

/// Every injected proxy (annotated `weft.io/proxy-version`) has the version
/// the control plane injects (else a warning, as Linkerd's version checks:
/// pods injected before an upgrade keep their proxy until they restart).
/// Skipped when the control plane's version is unknown.
pub fn control_plane_versions_match(state: &ClusterState) -> Verdict {
    let Some(control) = &state.control_plane else {
        return Verdict::Skip;
    };
    let Ok(Some(deployment)) = &control.controller_deployment else {
        return Verdict::Skip;
    };
    let Some(expected) = deployment.proxy_version.as_deref() else {
        return Verdict::Skip;
    };
    let bare = |version: &str| version.strip_prefix('v').unwrap_or(version).to_string();
    data_plane_pods(state, |pods| {
        let different: Vec<String> = pods
            .iter()
            .filter_map(|pod| {
                let version = pod.proxy.as_ref()?.injected_version.as_deref()?;
                (bare(version) != bare(expected)).then(|| format!("{} ({version})", pod.key()))
            })
            .collect();
        if different.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Warn(format!(
                "proxies not running the control plane's version {expected}: {}",
                some_of(&different)
            ))
        }
    })
}

/// Every proxy trusts exactly the ConfigMap's anchors.
pub fn trust_anchors_match(state: &ClusterState) -> Verdict {
    let Some(control) = &state.control_plane else {
        return Verdict::Skip;
    };
    data_plane_pods(state, |pods| {
        let expected = match trust_anchors(control) {
            Ok(anchors) => anchors,
            Err(error) => return Verdict::Fail(format!("cannot compare: {error}")),
        };
        let expected: BTreeSet<&[u8]> = expected
            .iter()
            .map(|anchor| anchor.der.as_slice())
            .collect();
        let mismatched: Vec<String> = pods
            .iter()
            .filter(|pod| {
                let Some(pem) = pod
                    .proxy
                    .as_ref()
                    .and_then(|proxy| proxy.trust_anchors.as_deref())
                else {
                    return true;
                };
                !parse_bundle(pem.as_bytes()).is_ok_and(|anchors| {
                    let found: BTreeSet<&[u8]> =
                        anchors.iter().map(|anchor| anchor.der.as_slice()).collect();
                    found == expected
                })
            })
            .map(PodState::key)
            .collect();
        if mismatched.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail(format!(
                "{PROXY_TRUST_ANCHORS_VARIABLE} differs from ConfigMap {} in: {}",
                TRUST_ANCHORS_CONFIGMAP,
                some_of(&mismatched)
            ))
        }
    })
}
