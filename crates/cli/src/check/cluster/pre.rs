//! The `--pre` decisions: the control plane's namespace is free, the
//! kubeconfig's user may create what `weft install` writes
//! (SelfSubjectAccessReviews), and Pod Security admission lets the
//! `weft-init` container add `NET_ADMIN`/`NET_RAW`.

use super::state::{AccessRequest, ClusterState};
use super::verdict::{Verdict, fail_on, some_of};

/// Cluster-scoped kinds `--pre` must be allowed to create.
pub const CLUSTER_RESOURCES: &[AccessRequest] = &[
    create("", "namespaces", false),
    create("rbac.authorization.k8s.io", "clusterroles", false),
    create("rbac.authorization.k8s.io", "clusterrolebindings", false),
    create("apiextensions.k8s.io", "customresourcedefinitions", false),
    create(
        "admissionregistration.k8s.io",
        "mutatingwebhookconfigurations",
        false,
    ),
];
const CREATE_SERVICE_ACCOUNTS: AccessRequest = create("", "serviceaccounts", true);
const CREATE_SERVICES: AccessRequest = create("", "services", true);
const CREATE_DEPLOYMENTS: AccessRequest = create("apps", "deployments", true);
const CREATE_CONFIGMAPS: AccessRequest = create("", "configmaps", true);
const CREATE_SECRETS: AccessRequest = create("", "secrets", true);
const CREATE_DISRUPTION_BUDGETS: AccessRequest = create("policy", "poddisruptionbudgets", true);
const READ_SECRETS: AccessRequest = AccessRequest {
    verb: "get",
    group: "",
    resource: "secrets",
    namespaced: true,
};
const CREATE_TOKEN_REVIEWS: AccessRequest = create("authentication.k8s.io", "tokenreviews", false);

const fn create(group: &'static str, resource: &'static str, namespaced: bool) -> AccessRequest {
    AccessRequest {
        verb: "create",
        group,
        resource,
        namespaced,
    }
}

/// Every access review `--pre` asks, in order.
pub fn pre_access_requests() -> Vec<AccessRequest> {
    let mut requests = CLUSTER_RESOURCES.to_vec();
    requests.extend([
        CREATE_SERVICE_ACCOUNTS,
        CREATE_SERVICES,
        CREATE_DEPLOYMENTS,
        CREATE_CONFIGMAPS,
        CREATE_SECRETS,
        CREATE_DISRUPTION_BUDGETS,
        READ_SECRETS,
        CREATE_TOKEN_REVIEWS,
    ]);
    requests
}

/// The control plane's namespace does not exist yet.
pub fn namespace_absent(state: &ClusterState) -> Verdict {
    let Some(pre) = &state.pre else {
        return Verdict::Skip;
    };
    fail_on(&pre.namespace_exists, |exists| {
        if *exists {
            Verdict::Fail(format!(
                "The \"{}\" namespace already exists",
                state.control_namespace
            ))
        } else {
            Verdict::Pass
        }
    })
}

/// May create every kind of [`CLUSTER_RESOURCES`].
pub fn can_create_cluster_resources(state: &ClusterState) -> Verdict {
    access(state, CLUSTER_RESOURCES)
}

/// May create ServiceAccounts in the namespace.
pub fn can_create_service_accounts(state: &ClusterState) -> Verdict {
    access(state, &[CREATE_SERVICE_ACCOUNTS])
}

/// May create Services in the namespace.
pub fn can_create_services(state: &ClusterState) -> Verdict {
    access(state, &[CREATE_SERVICES])
}

/// May create Deployments in the namespace.
pub fn can_create_deployments(state: &ClusterState) -> Verdict {
    access(state, &[CREATE_DEPLOYMENTS])
}

/// May create ConfigMaps in the namespace.
pub fn can_create_configmaps(state: &ClusterState) -> Verdict {
    access(state, &[CREATE_CONFIGMAPS])
}

/// May create Secrets in the namespace.
pub fn can_create_secrets(state: &ClusterState) -> Verdict {
    access(state, &[CREATE_SECRETS])
}

/// May create PodDisruptionBudgets in the namespace.
pub fn can_create_disruption_budgets(state: &ClusterState) -> Verdict {
    access(state, &[CREATE_DISRUPTION_BUDGETS])
}

/// May read Secrets in the namespace.
pub fn can_read_secrets(state: &ClusterState) -> Verdict {
    access(state, &[READ_SECRETS])
}

/// May create TokenReviews (and so grant it to the controller).
pub fn can_create_token_reviews(state: &ClusterState) -> Verdict {
    access(state, &[CREATE_TOKEN_REVIEWS])
}

/// No namespace's Pod Security level refuses `NET_ADMIN`.
pub fn has_net_admin(state: &ClusterState) -> Verdict {
    capability(state, "NET_ADMIN")
}

/// No namespace's Pod Security level refuses `NET_RAW`.
pub fn has_net_raw(state: &ClusterState) -> Verdict {
    capability(state, "NET_RAW")
}

fn access(state: &ClusterState, requests: &[AccessRequest]) -> Verdict {
    let Some(pre) = &state.pre else {
        return Verdict::Skip;
    };
    let mut denied = Vec::new();
    for request in requests {
        let scope = if request.namespaced {
            format!(" in namespace {}", state.control_namespace)
        } else {
            String::new()
        };
        let group = if request.group.is_empty() {
            String::new()
        } else {
            format!(".{}", request.group)
        };
        match pre.allowed(request) {
            Some(Ok(true)) => {}
            Some(Ok(false)) => denied.push(format!(
                "{} {}{group}{scope}",
                request.verb, request.resource
            )),
            Some(Err(error)) => return Verdict::Fail(error.clone()),
            None => {
                return Verdict::Fail(format!(
                    "{} {}{group} was not reviewed",
                    request.verb, request.resource
                ));
            }
        }
    }
    if denied.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail(format!("not allowed to {}", denied.join(", ")))
    }
}

/// The Pod Security Standards that forbid adding `NET_ADMIN`/`NET_RAW`.
const RESTRICTIVE_LEVELS: &[&str] = &["baseline", "restricted"];

fn capability(state: &ClusterState, capability: &str) -> Verdict {
    let Some(pre) = &state.pre else {
        return Verdict::Skip;
    };
    fail_on(&pre.pod_security, |namespaces| {
        let refusing: Vec<String> = namespaces
            .iter()
            .filter(|(_, level)| {
                level
                    .as_deref()
                    .is_some_and(|level| RESTRICTIVE_LEVELS.contains(&level))
            })
            .map(|(name, level)| format!("{name} ({})", level.as_deref().unwrap_or_default()))
            .collect();
        if refusing.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Warn(format!(
                "Pod Security admission refuses {capability} (needed by the weft-init container) in namespaces {}",
                some_of(&refusing)
            ))
        }
    })
}
