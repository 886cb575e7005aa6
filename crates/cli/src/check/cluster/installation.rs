//! The decisions about the API server and an installation: the client
//! and `/version` (kubernetes-api, kubernetes-version), the namespace, RBAC
//! and CRDs (weft-config), the controller's Deployment and pods
//! (weft-existence). The proxy injector's are in `webhooks.rs`.

use std::collections::BTreeSet;

use weft_core::cluster::{CONTROL_PLANE_COMPONENT_LABEL, CONTROLLER_COMPONENT, CONTROLLER_NAME};

use super::state::{ClusterState, PodState};
use super::verdict::{Verdict, control_plane, exists, fail_on, some_of};

/// The oldest Kubernetes weft supports: k8s-openapi's `v1_33` floor.
pub const MINIMUM_KUBERNETES: (u32, u32) = (1, 33);

pub use weft_core::cluster::PROXY_INJECTOR_WEBHOOK;

/// The CRDs weft installs, used when weft-core's generated list is empty
/// (a unit test keeps the two equal once it is not).
pub const EXPECTED_CRDS: &[&str] = &[
    "serviceprofiles.linkerd.io",
    "trafficsplits.split.smi-spec.io",
    "servers.policy.linkerd.io",
    "authorizationpolicies.policy.linkerd.io",
    "meshtlsauthentications.policy.linkerd.io",
    "networkauthentications.policy.linkerd.io",
    "httproutes.policy.linkerd.io",
    "workloads.weft.dev",
];

/// The CRD names `weft check` expects: weft-core's generated list, else
/// [`EXPECTED_CRDS`].
pub fn expected_crds() -> Vec<String> {
    let generated: Vec<String> = weft_core::crds::custom_resource_definitions()
        .into_iter()
        .filter_map(|crd| crd.metadata.name)
        .collect();
    if generated.is_empty() {
        EXPECTED_CRDS.iter().map(|name| name.to_string()).collect()
    } else {
        generated
    }
}

/// The kubeconfig gave a client.
pub fn client_built(state: &ClusterState) -> Verdict {
    fail_on(&state.client, |()| Verdict::Pass)
}

/// `GET /version` answered.
pub fn api_answers(state: &ClusterState) -> Verdict {
    fail_on(&state.version, |_| Verdict::Pass)
}

/// `"33+"` → 33.
fn leading_number(text: &str) -> Option<u32> {
    let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The server is at least [`MINIMUM_KUBERNETES`].
pub fn minimum_version(state: &ClusterState) -> Verdict {
    fail_on(&state.version, |version| {
        let (major, minor) = MINIMUM_KUBERNETES;
        match (
            leading_number(&version.major),
            leading_number(&version.minor),
        ) {
            (Some(found_major), Some(found_minor))
                if (found_major, found_minor) >= (major, minor) =>
            {
                Verdict::Pass
            }
            (Some(_), Some(_)) => Verdict::Fail(format!(
                "Kubernetes is on version [{}], but version [{major}.{minor}.0] or more recent is required",
                version.git_version
            )),
            _ => Verdict::Fail(format!(
                "cannot read the version the API server reports (major {:?}, minor {:?}, gitVersion {:?})",
                version.major, version.minor, version.git_version
            )),
        }
    })
}

/// The control plane's namespace exists.
pub fn namespace_exists(state: &ClusterState) -> Verdict {
    control_plane(state, |control| {
        exists(&control.namespace_exists, || {
            format!(
                "The \"{}\" namespace does not exist",
                state.control_namespace
            )
        })
    })
}

/// ClusterRole `weft-controller` exists.
pub fn cluster_roles_exist(state: &ClusterState) -> Verdict {
    control_plane(state, |control| {
        exists(&control.cluster_role_exists, || {
            format!("missing ClusterRoles: {CONTROLLER_NAME}")
        })
    })
}

/// ClusterRoleBinding `weft-controller` exists.
pub fn cluster_role_bindings_exist(state: &ClusterState) -> Verdict {
    control_plane(state, |control| {
        exists(&control.cluster_role_binding_exists, || {
            format!("missing ClusterRoleBindings: {CONTROLLER_NAME}")
        })
    })
}

/// ServiceAccount `weft-controller` exists.
pub fn service_accounts_exist(state: &ClusterState) -> Verdict {
    control_plane(state, |control| {
        exists(&control.service_account_exists, || {
            format!("missing ServiceAccounts: {CONTROLLER_NAME}")
        })
    })
}

/// Every expected CRD is in the cluster.
pub fn crds_exist(state: &ClusterState) -> Verdict {
    control_plane(state, |control| {
        fail_on(&control.crds, |found| {
            let found: BTreeSet<&str> = found.iter().map(String::as_str).collect();
            let missing: Vec<String> = control
                .expected_crds
                .iter()
                .filter(|name| !found.contains(name.as_str()))
                .cloned()
                .collect();
            if missing.is_empty() {
                Verdict::Pass
            } else {
                Verdict::Fail(format!(
                    "missing CustomResourceDefinitions: {}",
                    missing.join(", ")
                ))
            }
        })
    })
}

/// Deployment `weft-controller` has all its replicas available.
pub fn deployment_available(state: &ClusterState) -> Verdict {
    control_plane(state, |control| {
        fail_on(
            &control.controller_deployment,
            |deployment| match deployment {
                None => Verdict::Fail(format!(
                    "Deployment {CONTROLLER_NAME} not found in namespace {}",
                    state.control_namespace
                )),
                Some(deployment) if deployment.available >= deployment.desired.max(1) => {
                    Verdict::Pass
                }
                Some(deployment) => Verdict::Fail(format!(
                    "{} of {} replicas of Deployment {CONTROLLER_NAME} are available",
                    deployment.available, deployment.desired
                )),
            },
        )
    })
}

fn control_plane_pods(
    state: &ClusterState,
    decide: impl FnOnce(&[PodState]) -> Verdict,
) -> Verdict {
    control_plane(state, |control| fail_on(&control.pods, |pods| decide(pods)))
}

fn is_controller(pod: &&PodState) -> bool {
    pod.component.as_deref() == Some(CONTROLLER_COMPONENT)
}

/// No pod of the namespace is unschedulable.
pub fn no_unschedulable_pods(state: &ClusterState) -> Verdict {
    control_plane_pods(state, |pods| {
        let unschedulable: Vec<String> = pods
            .iter()
            .filter_map(|pod| {
                pod.unschedulable
                    .as_ref()
                    .map(|message| format!("{}: {message}", pod.name))
            })
            .collect();
        if unschedulable.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail(format!("unschedulable pods: {}", some_of(&unschedulable)))
        }
    })
}

/// A controller pod is running.
pub fn controller_running(state: &ClusterState) -> Verdict {
    control_plane_pods(state, |pods| {
        let controllers: Vec<&PodState> = pods.iter().filter(is_controller).collect();
        if controllers.is_empty() {
            return Verdict::Fail(format!(
                "no pod labelled {CONTROL_PLANE_COMPONENT_LABEL}={CONTROLLER_COMPONENT} in namespace {}",
                state.control_namespace
            ));
        }
        if controllers.iter().any(|pod| pod.phase == "Running") {
            Verdict::Pass
        } else {
            let phases: Vec<String> = controllers
                .iter()
                .map(|pod| {
                    format!(
                        "{} is {}",
                        pod.name,
                        if pod.phase.is_empty() {
                            "without a phase"
                        } else {
                            &pod.phase
                        }
                    )
                })
                .collect();
            Verdict::Fail(format!(
                "no controller pod is running: {}",
                some_of(&phases)
            ))
        }
    })
}

/// Every controller pod is ready (finished ones aside).
pub fn control_plane_ready(state: &ClusterState) -> Verdict {
    control_plane_pods(state, |pods| {
        let controllers: Vec<&PodState> = pods.iter().filter(is_controller).collect();
        let not_ready: Vec<String> = controllers
            .iter()
            .filter(|pod| !pod.ready && !pod.finished())
            .map(|pod| pod.name.clone())
            .collect();
        if controllers.is_empty() {
            Verdict::Fail("no control plane pods".into())
        } else if not_ready.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail(format!("pods not ready: {}", some_of(&not_ready)))
        }
    })
}
