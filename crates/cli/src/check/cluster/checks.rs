//! The cluster checks as data: each a category, a description, a hint
//! anchor, what a failure stops, and a pure function from the gathered
//! [`ClusterState`] to a [`Verdict`] (the functions live by topic in
//! `installation.rs`, `pre.rs`, `identity.rs`, `webhooks.rs` and `data_plane.rs`).
//! Categories, their order and their descriptions follow `linkerd check`'s.

use super::state::ClusterState;
pub use super::verdict::Verdict;
use super::{data_plane, identity, installation, pre, webhooks};

/// Where the hints live: `see <base><anchor> for hints`.
pub const HINT_BASE_URL: &str = "https://weft.dev/checks/#";

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

use OnError::{Continue, SkipCategory, Stop};

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

/// Every check, in the order they run: (category, description, hint
/// anchor, what an error stops, decision).
#[rustfmt::skip]
pub const DEFINITIONS: &[Definition] = &[
    check("kubernetes-api", "can initialize the client", "k8s-api", Stop, installation::client_built),
    check("kubernetes-api", "can query the Kubernetes API", "k8s-api", Stop, installation::api_answers),
    check("kubernetes-version", "is running the minimum Kubernetes API version", "k8s-version", Continue, installation::minimum_version),

    check("pre-kubernetes-setup", "control plane namespace does not already exist", "pre-ns", Continue, pre::namespace_absent),
    check("pre-kubernetes-setup", "can create non-namespaced resources", "pre-k8s-cluster-k8s", Continue, pre::can_create_cluster_resources),
    check("pre-kubernetes-setup", "can create ServiceAccounts", "pre-k8s", Continue, pre::can_create_service_accounts),
    check("pre-kubernetes-setup", "can create Services", "pre-k8s", Continue, pre::can_create_services),
    check("pre-kubernetes-setup", "can create Deployments", "pre-k8s", Continue, pre::can_create_deployments),
    check("pre-kubernetes-setup", "can create ConfigMaps", "pre-k8s", Continue, pre::can_create_configmaps),
    check("pre-kubernetes-setup", "can create Secrets", "pre-k8s", Continue, pre::can_create_secrets),
    check("pre-kubernetes-setup", "can create PodDisruptionBudgets", "pre-k8s", Continue, pre::can_create_disruption_budgets),
    check("pre-kubernetes-setup", "can read Secrets", "pre-k8s", Continue, pre::can_read_secrets),
    check("pre-kubernetes-setup", "can create TokenReviews", "pre-k8s", Continue, pre::can_create_token_reviews),
    check("pre-kubernetes-capability", "has NET_ADMIN capability", "pre-k8s-cluster-net-admin", Continue, pre::has_net_admin),
    check("pre-kubernetes-capability", "has NET_RAW capability", "pre-k8s-cluster-net-raw", Continue, pre::has_net_raw),

    check("weft-config", "control plane Namespace exists", "weft-config-ns", Stop, installation::namespace_exists),
    check("weft-config", "control plane ClusterRoles exist", "weft-config-cr", Continue, installation::cluster_roles_exist),
    check("weft-config", "control plane ClusterRoleBindings exist", "weft-config-crb", Continue, installation::cluster_role_bindings_exist),
    check("weft-config", "control plane ServiceAccounts exist", "weft-config-sa", Continue, installation::service_accounts_exist),
    check("weft-config", "control plane CustomResourceDefinitions exist", "weft-config-crd", Continue, installation::crds_exist),
    check("weft-existence", "controller Deployment is available", "weft-existence-deployment", Continue, installation::deployment_available),
    check("weft-existence", "no unschedulable pods", "weft-existence-unschedulable-pods", Continue, installation::no_unschedulable_pods),
    check("weft-existence", "controller pod is running", "weft-existence-controller", Continue, installation::controller_running),
    check("weft-existence", "control plane pods are ready", "weft-existence-ready", Continue, installation::control_plane_ready),
    check("weft-identity", "certificate config is valid", "weft-identity-cert-config-valid", SkipCategory, identity::config_valid),
    check("weft-identity", "trust anchors are using supported crypto algorithm", "weft-identity-trust-anchors-use-supported-crypto", Continue, identity::anchors_supported),
    check("weft-identity", "trust anchors are within their validity period", "weft-identity-trust-anchors-are-time-valid", Continue, identity::anchors_time_valid),
    check("weft-identity", "trust anchors are valid for at least 60 days", "weft-identity-trust-anchors-not-expiring-soon", Continue, identity::anchors_not_expiring_soon),
    check("weft-identity", "issuer cert is using supported crypto algorithm", "weft-identity-issuer-cert-uses-supported-crypto", Continue, identity::issuer_supported),
    check("weft-identity", "issuer cert is within its validity period", "weft-identity-issuer-cert-is-time-valid", Continue, identity::issuer_time_valid),
    check("weft-identity", "issuer cert is valid for at least 60 days", "weft-identity-issuer-cert-not-expiring-soon", Continue, identity::issuer_not_expiring_soon),
    check("weft-identity", "issuer cert is issued by the trust anchor", "weft-identity-issuer-cert-issued-by-trust-anchor", Continue, identity::issued_by_anchor),
    check("weft-webhooks", "proxy-injector webhook exists", "weft-webhooks-proxy-injector", Continue, webhooks::injector_exists),
    check("weft-webhooks", "proxy-injector webhook trusts the identity trust anchors", "weft-webhooks-proxy-injector-ca-bundle", Continue, webhooks::injector_trusts_anchors),
    check("weft-webhooks", "proxy-injector Service exists", "weft-webhooks-proxy-injector-service", Continue, webhooks::injector_service_exists),
    check("weft-webhooks", "proxy-injector webhook calls the proxy-injector Service", "weft-webhooks-proxy-injector-client-config", Continue, webhooks::injector_calls_service),
    check("weft-webhooks", "proxy-injector Service has ready endpoints", "weft-webhooks-proxy-injector-endpoints", Continue, webhooks::injector_has_ready_endpoints),

    check("weft-data-plane", "data plane namespace exists", "weft-data-plane-exists", SkipCategory, data_plane::namespace_exists),
    check("weft-data-plane", "data plane proxies are ready", "weft-data-plane-proxies-ready", Continue, data_plane::proxies_ready),
    check("weft-data-plane", "data plane and cli versions match", "weft-data-plane-cli-version", Continue, data_plane::versions_match),
    check("weft-data-plane", "data plane and control plane versions match", "weft-data-plane-control-plane-version", Continue, data_plane::control_plane_versions_match),
    check("weft-identity-data-plane", "data plane proxies' trust anchors match the control plane's", "weft-identity-data-plane-proxies-certs-match-ca", Continue, data_plane::trust_anchors_match),
];
