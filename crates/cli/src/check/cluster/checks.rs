//! The cluster checks as data: each a category, a description, a hint
//! anchor, what a failure stops, and a pure function from the gathered
//! [`ClusterState`] to a [`Verdict`]. Categories, their order and their
//! descriptions follow `linkerd check`'s.

use std::collections::BTreeSet;

use weft_core::cluster::{CONTROL_PLANE_COMPONENT_LABEL, CONTROLLER_COMPONENT, CONTROLLER_NAME};

use super::certificates::{CertificateFacts, parse_bundle, signed_by};
use super::state::{AccessRequest, ClusterState, ControlPlaneState, PodState};
use crate::check::{WARNING_WINDOW, human_duration};

/// The oldest Kubernetes weft supports: k8s-openapi's `v1_33` floor.
pub const MINIMUM_KUBERNETES: (u32, u32) = (1, 33);

/// The proxy injector's MutatingWebhookConfiguration (installed by a later
/// `weft install`; until then its absence is a warning).
pub const PROXY_INJECTOR_WEBHOOK: &str = "weft-proxy-injector";

/// The proxy's trust-anchor variable (crates/proxy/src/config/variables.rs).
pub const PROXY_TRUST_ANCHORS_VARIABLE: &str = "WEFT_PROXY_IDENTITY_TRUST_ANCHORS";

/// Where the hints live: `see <base><anchor> for hints`.
pub const HINT_BASE_URL: &str = "https://weft.dev/checks/#";

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

/// What an error stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Nothing: the next check runs.
    Continue,
    /// The rest of this category (they read what failed).
    SkipCategory,
    /// Every later check (they all need what failed).
    Stop,
}

/// One check, as data.
pub struct Definition {
    /// Its category (`weft-identity`).
    pub category: &'static str,
    /// What it checks.
    pub description: &'static str,
    /// Its hint's anchor under [`HINT_BASE_URL`].
    pub anchor: &'static str,
    /// What an error stops.
    pub on_error: OnError,
    /// The decision.
    pub run: fn(&ClusterState) -> Verdict,
}

/// The categories `weft check --kubernetes` runs always.
pub const API_CATEGORIES: &[&str] = &["kubernetes-api", "kubernetes-version"];
/// The categories `--pre` adds.
pub const PRE_CATEGORIES: &[&str] = &["pre-kubernetes-setup", "pre-kubernetes-capability"];
/// The categories of an installed control plane (default, and with `--proxy`).
pub const CONTROL_PLANE_CATEGORIES: &[&str] = &[
    "weft-config",
    "weft-existence",
    "weft-identity",
    "weft-webhooks",
];
/// The categories `--proxy` adds.
pub const DATA_PLANE_CATEGORIES: &[&str] = &["weft-data-plane", "weft-identity-data-plane"];

const fn check(
    category: &'static str,
    description: &'static str,
    anchor: &'static str,
    on_error: OnError,
    run: fn(&ClusterState) -> Verdict,
) -> Definition {
    Definition {
        category,
        description,
        anchor,
        on_error,
        run,
    }
}

/// Every check, in the order they run.
pub const DEFINITIONS: &[Definition] = &[
    // kubernetes-api
    check(
        "kubernetes-api",
        "can initialize the client",
        "k8s-api",
        OnError::Stop,
        |state| fail_on(&state.client, |()| Verdict::Pass),
    ),
    check(
        "kubernetes-api",
        "can query the Kubernetes API",
        "k8s-api",
        OnError::Stop,
        |state| fail_on(&state.version, |_| Verdict::Pass),
    ),
    // kubernetes-version
    check(
        "kubernetes-version",
        "is running the minimum Kubernetes API version",
        "k8s-version",
        OnError::Continue,
        minimum_version,
    ),
    // pre-kubernetes-setup
    check(
        "pre-kubernetes-setup",
        "control plane namespace does not already exist",
        "pre-ns",
        OnError::Continue,
        |state| {
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
        },
    ),
    check(
        "pre-kubernetes-setup",
        "can create non-namespaced resources",
        "pre-k8s-cluster-k8s",
        OnError::Continue,
        |state| access(state, CLUSTER_RESOURCES),
    ),
    check(
        "pre-kubernetes-setup",
        "can create ServiceAccounts",
        "pre-k8s",
        OnError::Continue,
        |state| access(state, &[CREATE_SERVICE_ACCOUNTS]),
    ),
    check(
        "pre-kubernetes-setup",
        "can create Services",
        "pre-k8s",
        OnError::Continue,
        |state| access(state, &[CREATE_SERVICES]),
    ),
    check(
        "pre-kubernetes-setup",
        "can create Deployments",
        "pre-k8s",
        OnError::Continue,
        |state| access(state, &[CREATE_DEPLOYMENTS]),
    ),
    check(
        "pre-kubernetes-setup",
        "can create ConfigMaps",
        "pre-k8s",
        OnError::Continue,
        |state| access(state, &[CREATE_CONFIGMAPS]),
    ),
    check(
        "pre-kubernetes-setup",
        "can create Secrets",
        "pre-k8s",
        OnError::Continue,
        |state| access(state, &[CREATE_SECRETS]),
    ),
    check(
        "pre-kubernetes-setup",
        "can create PodDisruptionBudgets",
        "pre-k8s",
        OnError::Continue,
        |state| access(state, &[CREATE_DISRUPTION_BUDGETS]),
    ),
    check(
        "pre-kubernetes-setup",
        "can read Secrets",
        "pre-k8s",
        OnError::Continue,
        |state| access(state, &[READ_SECRETS]),
    ),
    check(
        "pre-kubernetes-setup",
        "can create TokenReviews",
        "pre-k8s",
        OnError::Continue,
        |state| access(state, &[CREATE_TOKEN_REVIEWS]),
    ),
    // pre-kubernetes-capability
    check(
        "pre-kubernetes-capability",
        "has NET_ADMIN capability",
        "pre-k8s-cluster-net-admin",
        OnError::Continue,
        |state| capability(state, "NET_ADMIN"),
    ),
    check(
        "pre-kubernetes-capability",
        "has NET_RAW capability",
        "pre-k8s-cluster-net-raw",
        OnError::Continue,
        |state| capability(state, "NET_RAW"),
    ),
    // weft-config
    check(
        "weft-config",
        "control plane Namespace exists",
        "weft-config-ns",
        OnError::Stop,
        |state| {
            control_plane(state, |control| {
                exists(&control.namespace_exists, || {
                    format!(
                        "The \"{}\" namespace does not exist",
                        state.control_namespace
                    )
                })
            })
        },
    ),
    check(
        "weft-config",
        "control plane ClusterRoles exist",
        "weft-config-cr",
        OnError::Continue,
        |state| {
            control_plane(state, |control| {
                exists(&control.cluster_role_exists, || {
                    format!("missing ClusterRoles: {CONTROLLER_NAME}")
                })
            })
        },
    ),
    check(
        "weft-config",
        "control plane ClusterRoleBindings exist",
        "weft-config-crb",
        OnError::Continue,
        |state| {
            control_plane(state, |control| {
                exists(&control.cluster_role_binding_exists, || {
                    format!("missing ClusterRoleBindings: {CONTROLLER_NAME}")
                })
            })
        },
    ),
    check(
        "weft-config",
        "control plane ServiceAccounts exist",
        "weft-config-sa",
        OnError::Continue,
        |state| {
            control_plane(state, |control| {
                exists(&control.service_account_exists, || {
                    format!("missing ServiceAccounts: {CONTROLLER_NAME}")
                })
            })
        },
    ),
    check(
        "weft-config",
        "control plane CustomResourceDefinitions exist",
        "weft-config-crd",
        OnError::Continue,
        crds_exist,
    ),
    // weft-existence
    check(
        "weft-existence",
        "controller Deployment is available",
        "weft-existence-deployment",
        OnError::Continue,
        deployment_available,
    ),
    check(
        "weft-existence",
        "no unschedulable pods",
        "weft-existence-unschedulable-pods",
        OnError::Continue,
        no_unschedulable_pods,
    ),
    check(
        "weft-existence",
        "controller pod is running",
        "weft-existence-controller",
        OnError::Continue,
        controller_running,
    ),
    check(
        "weft-existence",
        "control plane pods are ready",
        "weft-existence-ready",
        OnError::Continue,
        control_plane_ready,
    ),
    // weft-identity
    check(
        "weft-identity",
        "certificate config is valid",
        "weft-identity-cert-config-valid",
        OnError::SkipCategory,
        |state| {
            control_plane(state, |control| {
                identity(control).map_or_else(Verdict::Fail, |_| Verdict::Pass)
            })
        },
    ),
    check(
        "weft-identity",
        "trust anchors are using supported crypto algorithm",
        "weft-identity-trust-anchors-use-supported-crypto",
        OnError::Continue,
        |state| with_identity(state, |identity| supported_algorithms(&identity.anchors)),
    ),
    check(
        "weft-identity",
        "trust anchors are within their validity period",
        "weft-identity-trust-anchors-are-time-valid",
        OnError::Continue,
        |state| {
            with_identity(state, |identity| {
                time_valid(&identity.anchors, state.now_unix)
            })
        },
    ),
    check(
        "weft-identity",
        "trust anchors are valid for at least 60 days",
        "weft-identity-trust-anchors-not-expiring-soon",
        OnError::Continue,
        |state| {
            with_identity(state, |identity| {
                not_expiring_soon(&identity.anchors, state.now_unix)
            })
        },
    ),
    check(
        "weft-identity",
        "issuer cert is using supported crypto algorithm",
        "weft-identity-issuer-cert-uses-supported-crypto",
        OnError::Continue,
        |state| {
            with_identity(state, |identity| {
                supported_algorithms(std::slice::from_ref(&identity.issuer))
            })
        },
    ),
    check(
        "weft-identity",
        "issuer cert is within its validity period",
        "weft-identity-issuer-cert-is-time-valid",
        OnError::Continue,
        |state| {
            with_identity(state, |identity| {
                time_valid(std::slice::from_ref(&identity.issuer), state.now_unix)
            })
        },
    ),
    check(
        "weft-identity",
        "issuer cert is valid for at least 60 days",
        "weft-identity-issuer-cert-not-expiring-soon",
        OnError::Continue,
        |state| {
            with_identity(state, |identity| {
                not_expiring_soon(std::slice::from_ref(&identity.issuer), state.now_unix)
            })
        },
    ),
    check(
        "weft-identity",
        "issuer cert is issued by the trust anchor",
        "weft-identity-issuer-cert-issued-by-trust-anchor",
        OnError::Continue,
        |state| with_identity(state, issued_by_anchor),
    ),
    // weft-webhooks
    check(
        "weft-webhooks",
        "proxy-injector webhook exists",
        "weft-webhooks-proxy-injector",
        OnError::Continue,
        |state| {
            control_plane(state, |control| {
                fail_on(&control.proxy_injector_exists, |found| {
                    if *found {
                        Verdict::Pass
                    } else {
                        Verdict::Warn(format!(
                            "MutatingWebhookConfiguration {PROXY_INJECTOR_WEBHOOK} not found: pods are not meshed automatically (add the weft-proxy container yourself)"
                        ))
                    }
                })
            })
        },
    ),
    // weft-data-plane
    check(
        "weft-data-plane",
        "data plane namespace exists",
        "weft-data-plane-exists",
        OnError::SkipCategory,
        |state| {
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
        },
    ),
    check(
        "weft-data-plane",
        "data plane proxies are ready",
        "weft-data-plane-proxies-ready",
        OnError::Continue,
        proxies_ready,
    ),
    check(
        "weft-data-plane",
        "data plane and cli versions match",
        "weft-data-plane-cli-version",
        OnError::Continue,
        proxy_versions,
    ),
    // weft-identity-data-plane
    check(
        "weft-identity-data-plane",
        "data plane proxies' trust anchors match the control plane's",
        "weft-identity-data-plane-proxies-certs-match-ca",
        OnError::Continue,
        proxy_trust_anchors,
    ),
];

// ---- helpers ---------------------------------------------------------------

/// A failed read fails the check with its message; else `decide`.
fn fail_on<T>(fetched: &Result<T, String>, decide: impl FnOnce(&T) -> Verdict) -> Verdict {
    match fetched {
        Ok(value) => decide(value),
        Err(error) => Verdict::Fail(error.clone()),
    }
}

fn exists(found: &Result<bool, String>, missing: impl FnOnce() -> String) -> Verdict {
    fail_on(found, |found| {
        if *found {
            Verdict::Pass
        } else {
            Verdict::Fail(missing())
        }
    })
}

fn control_plane(
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

// ---- kubernetes-version ----------------------------------------------------

/// `"33+"` → 33.
fn leading_number(text: &str) -> Option<u32> {
    let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn minimum_version(state: &ClusterState) -> Verdict {
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

// ---- pre -------------------------------------------------------------------

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

// ---- weft-config / weft-existence ------------------------------------------

fn crds_exist(state: &ClusterState) -> Verdict {
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

fn deployment_available(state: &ClusterState) -> Verdict {
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

fn no_unschedulable_pods(state: &ClusterState) -> Verdict {
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

fn controller_running(state: &ClusterState) -> Verdict {
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

fn control_plane_ready(state: &ClusterState) -> Verdict {
    control_plane_pods(state, |pods| {
        let controllers: Vec<&PodState> = pods.iter().filter(is_controller).collect();
        let not_ready: Vec<String> = controllers
            .iter()
            .filter(|pod| !pod.ready)
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

// ---- weft-identity ---------------------------------------------------------

/// The parsed identity configuration.
pub struct Identity {
    /// The trust anchors.
    pub anchors: Vec<CertificateFacts>,
    /// The issuer certificate (the first of `tls.crt`; any others are its chain).
    pub issuer: CertificateFacts,
}

/// The trust anchors of the ConfigMap, parsed.
pub fn trust_anchors(control: &ControlPlaneState) -> Result<Vec<CertificateFacts>, String> {
    use weft_core::cluster::{TRUST_ANCHORS_CONFIGMAP, TRUST_ANCHORS_KEY};
    let data = match &control.trust_anchors_configmap {
        Err(error) => return Err(error.clone()),
        Ok(None) => return Err(format!("ConfigMap {TRUST_ANCHORS_CONFIGMAP} not found")),
        Ok(Some(data)) => data,
    };
    let pem = data.get(TRUST_ANCHORS_KEY).ok_or_else(|| {
        format!("ConfigMap {TRUST_ANCHORS_CONFIGMAP} has no key {TRUST_ANCHORS_KEY}")
    })?;
    parse_bundle(pem.as_bytes()).map_err(|error| {
        format!("ConfigMap {TRUST_ANCHORS_CONFIGMAP} key {TRUST_ANCHORS_KEY}: {error}")
    })
}

/// The ConfigMap's anchors and the Secret's issuer, or what is wrong.
pub fn identity(control: &ControlPlaneState) -> Result<Identity, String> {
    use weft_core::cluster::ISSUER_SECRET;
    let anchors = trust_anchors(control)?;
    let data = match &control.issuer_secret {
        Err(error) => return Err(error.clone()),
        Ok(None) => return Err(format!("Secret {ISSUER_SECRET} not found")),
        Ok(Some(data)) => data,
    };
    for key in ["tls.crt", "tls.key"] {
        if data.get(key).is_none_or(Vec::is_empty) {
            return Err(format!("Secret {ISSUER_SECRET} has no {key}"));
        }
    }
    let mut issuer = parse_bundle(&data["tls.crt"])
        .map_err(|error| format!("Secret {ISSUER_SECRET} key tls.crt: {error}"))?;
    // parse_bundle returns at least one certificate.
    let issuer = issuer.swap_remove(0);
    Ok(Identity { anchors, issuer })
}

fn with_identity(state: &ClusterState, decide: impl FnOnce(&Identity) -> Verdict) -> Verdict {
    control_plane(state, |control| match identity(control) {
        Ok(identity) => decide(&identity),
        // "certificate config is valid" already said why.
        Err(_) => Verdict::Skip,
    })
}

fn supported_algorithms(certificates: &[CertificateFacts]) -> Verdict {
    let unsupported: Vec<String> = certificates
        .iter()
        .filter(|certificate| !certificate.algorithm.supported())
        .map(|certificate| format!("{} uses {}", certificate.subject, certificate.algorithm))
        .collect();
    if unsupported.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail(format!(
            "{} (supported: ECDSA P-256, RSA)",
            unsupported.join("; ")
        ))
    }
}

fn time_valid(certificates: &[CertificateFacts], now: i64) -> Verdict {
    let invalid: Vec<String> = certificates
        .iter()
        .filter_map(|certificate| {
            if now < certificate.not_before_unix {
                Some(format!(
                    "{} is not valid before {} from now",
                    certificate.subject,
                    human_duration((certificate.not_before_unix - now) as f64)
                ))
            } else if now > certificate.not_after_unix {
                Some(format!(
                    "{} expired {} ago",
                    certificate.subject,
                    human_duration((now - certificate.not_after_unix) as f64)
                ))
            } else {
                None
            }
        })
        .collect();
    if invalid.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail(invalid.join("; "))
    }
}

fn not_expiring_soon(certificates: &[CertificateFacts], now: i64) -> Verdict {
    let window = WARNING_WINDOW.as_secs() as i64;
    // One is invalid already: "within its validity period" said so, and a
    // √ here would read as all being well.
    if certificates.iter().any(|certificate| {
        !(certificate.not_before_unix..=certificate.not_after_unix).contains(&now)
    }) {
        return Verdict::Skip;
    }
    let expiring: Vec<String> = certificates
        .iter()
        .filter(|certificate| certificate.not_after_unix - now < window)
        .map(|certificate| {
            format!(
                "{} expires in {}",
                certificate.subject,
                human_duration((certificate.not_after_unix - now) as f64)
            )
        })
        .collect();
    if expiring.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Warn(expiring.join("; "))
    }
}

fn issued_by_anchor(identity: &Identity) -> Verdict {
    let issuer = &identity.issuer;
    if identity
        .anchors
        .iter()
        .any(|anchor| signed_by(issuer, anchor))
    {
        Verdict::Pass
    } else {
        Verdict::Fail(format!(
            "issuer {} is not signed by any trust anchor in {}",
            issuer.subject,
            weft_core::cluster::TRUST_ANCHORS_CONFIGMAP
        ))
    }
}

// ---- weft-data-plane -------------------------------------------------------

fn data_plane_pods(state: &ClusterState, decide: impl FnOnce(&[PodState]) -> Verdict) -> Verdict {
    let Some(data) = &state.data_plane else {
        return Verdict::Skip;
    };
    fail_on(&data.pods, |pods| decide(pods))
}

fn proxies_ready(state: &ClusterState) -> Verdict {
    data_plane_pods(state, |pods| {
        let not_ready: Vec<String> = pods
            .iter()
            .filter(|pod| !pod.proxy.as_ref().is_some_and(|proxy| proxy.ready))
            .map(PodState::key)
            .collect();
        if pods.is_empty() {
            Verdict::Warn(format!(
                "no meshed pods (with a {} container) found",
                weft_core::cluster::PROXY_CONTAINER_NAME
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

fn proxy_versions(state: &ClusterState) -> Verdict {
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

fn proxy_trust_anchors(state: &ClusterState) -> Verdict {
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
                weft_core::cluster::TRUST_ANCHORS_CONFIGMAP,
                some_of(&mismatched)
            ))
        }
    })
}
