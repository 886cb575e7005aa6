//! The snapshot `weft check --kubernetes` judges: what the gathering read
//! from the cluster, already reduced to the few fields the checks look at
//! (names, phases, readiness, PEM text), so every check is a pure function
//! over plain values and the tables in `tests.rs` build it by hand.
//!
//! Each read keeps its own error ([`Fetched`]): one forbidden list fails the
//! checks that needed it, not the whole run.

use std::collections::BTreeMap;

/// A read from the API: its value, or why it failed (already worded for
/// the user: `cannot list pods in namespace weft: …`).
pub type Fetched<T> = Result<T, String>;

/// Everything the checks look at.
#[derive(Debug, Clone)]
pub struct ClusterState {
    /// This host's clock, Unix seconds (certificate validity is judged against it).
    pub now_unix: i64,
    /// The control plane's namespace (`--namespace`).
    pub control_namespace: String,
    /// Whether the client could be built from the kubeconfig.
    pub client: Fetched<()>,
    /// `GET /version`.
    pub version: Fetched<ApiVersion>,
    /// Read for `--pre`.
    pub pre: Option<PreState>,
    /// Read unless `--pre`.
    pub control_plane: Option<ControlPlaneState>,
    /// Read for `--proxy`.
    pub data_plane: Option<DataPlaneState>,
}

/// The API server's version (`GET /version`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiVersion {
    /// `major`, as served (`"1"`).
    pub major: String,
    /// `minor`, as served (`"33"`, or `"33+"` on some providers).
    pub minor: String,
    /// `gitVersion` (`v1.33.1`), for messages.
    pub git_version: String,
}

/// One SelfSubjectAccessReview: may the kubeconfig's user do this?
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessReview {
    /// What was asked.
    pub request: AccessRequest,
    /// The answer, or why the review could not be made.
    pub allowed: Fetched<bool>,
}

/// The attributes of an access review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct AccessRequest {
    /// `create`, `get`.
    pub verb: &'static str,
    /// The API group (`""` for the core group).
    pub group: &'static str,
    /// The resource, plural (`clusterroles`).
    pub resource: &'static str,
    /// Whether it is asked in the control plane's namespace.
    pub namespaced: bool,
}

/// What `--pre` reads.
#[derive(Debug, Clone)]
pub struct PreState {
    /// Whether the control plane's namespace exists already.
    pub namespace_exists: Fetched<bool>,
    /// The access reviews (see `checks::PRE_ACCESS`), in order.
    pub access: Vec<AccessReview>,
    /// Every namespace and its Pod Security Admission `enforce` level
    /// (label `pod-security.kubernetes.io/enforce`), when labelled.
    pub pod_security: Fetched<Vec<(String, Option<String>)>>,
}

impl PreState {
    /// The answer to one review, if it was asked.
    pub fn allowed(&self, request: &AccessRequest) -> Option<&Fetched<bool>> {
        self.access
            .iter()
            .find(|review| review.request == *request)
            .map(|review| &review.allowed)
    }
}

/// The controller's Deployment: replica counts, and the proxy version its
/// injector injects.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeploymentState {
    /// `spec.replicas` (1 when unset).
    pub desired: i32,
    /// `status.availableReplicas` (0 when unset).
    pub available: i32,
    /// The control plane's proxy version: the controller's `--proxy-version`
    /// argument, else its image's tag (the controller's default).
    pub proxy_version: Option<String>,
}

/// One webhook of the proxy injector's MutatingWebhookConfiguration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WebhookState {
    /// Its name (`weft-proxy-injector.weft.io`).
    pub name: String,
    /// `clientConfig.caBundle`, decoded (PEM; empty when unset).
    pub ca_bundle: Vec<u8>,
    /// `clientConfig.service`; `None` when the webhook calls a URL.
    pub service: Option<WebhookService>,
}

/// The Service a webhook calls.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WebhookService {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The path (`/inject`), if set.
    pub path: Option<String>,
    /// The port (443 when unset, as the API server defaults it).
    pub port: i32,
}

/// The ready and all endpoints of a Service's EndpointSlices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EndpointCounts {
    /// Endpoints whose `conditions.ready` is not `false`.
    pub ready: usize,
    /// Every endpoint.
    pub total: usize,
}

/// A pod, reduced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PodState {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The value of `weft.io/control-plane-component`, if labelled.
    pub component: Option<String>,
    /// `status.phase` (`Running`, `Pending`, …; empty when unset).
    pub phase: String,
    /// Condition `Ready` is `True`.
    pub ready: bool,
    /// Condition `PodScheduled` is `False` with reason `Unschedulable`: its message.
    pub unschedulable: Option<String>,
    /// The weft proxy, when meshed (a container or native-sidecar init
    /// container named `weft-proxy`).
    pub proxy: Option<ProxyState>,
}

impl PodState {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Phase `Succeeded` or `Failed` (a finished Job, an evicted pod): its
    /// containers are not ready, and need not be.
    pub fn finished(&self) -> bool {
        matches!(self.phase.as_str(), "Succeeded" | "Failed")
    }
}

/// A meshed pod's proxy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProxyState {
    /// The proxy container's status says ready.
    pub ready: bool,
    /// Its `WEFT_PROXY_IDENTITY_TRUST_ANCHORS` value (PEM), when set inline.
    pub trust_anchors: Option<String>,
    /// Its version: annotation `weft.io/proxy-version`, else the image's tag.
    pub version: Option<String>,
    /// Annotation `weft.io/proxy-version` alone: the version the injector
    /// injected (`None` for a proxy added by hand without it).
    pub injected_version: Option<String>,
}

/// What the default checks read: the installation in the control plane's namespace.
#[derive(Debug, Clone)]
pub struct ControlPlaneState {
    /// The namespace exists.
    pub namespace_exists: Fetched<bool>,
    /// ClusterRole `weft-controller` exists.
    pub cluster_role_exists: Fetched<bool>,
    /// ClusterRoleBinding `weft-controller` exists.
    pub cluster_role_binding_exists: Fetched<bool>,
    /// ServiceAccount `weft-controller` exists in the namespace.
    pub service_account_exists: Fetched<bool>,
    /// The names of the CustomResourceDefinitions in the cluster.
    pub crds: Fetched<Vec<String>>,
    /// The names weft installs.
    pub expected_crds: Vec<String>,
    /// Deployment `weft-controller`, if it exists.
    pub controller_deployment: Fetched<Option<DeploymentState>>,
    /// Every pod in the namespace.
    pub pods: Fetched<Vec<PodState>>,
    /// ConfigMap `weft-identity-trust-roots`'s `data`, if it exists.
    pub trust_anchors_configmap: Fetched<Option<BTreeMap<String, String>>>,
    /// Secret `weft-identity-issuer`'s `data` (decoded), if it exists.
    pub issuer_secret: Fetched<Option<BTreeMap<String, Vec<u8>>>>,
    /// MutatingWebhookConfiguration `weft-proxy-injector`'s webhooks, if it exists.
    pub proxy_injector: Fetched<Option<Vec<WebhookState>>>,
    /// Service `weft-proxy-injector`'s ports, if it exists.
    pub injector_service: Fetched<Option<Vec<i32>>>,
    /// The endpoints of that Service's EndpointSlices.
    pub injector_endpoints: Fetched<EndpointCounts>,
}

/// What `--proxy` reads.
#[derive(Debug, Clone)]
pub struct DataPlaneState {
    /// `--data-plane-namespace` and whether it exists; `None`: every namespace.
    pub namespace: Option<(String, Fetched<bool>)>,
    /// The meshed pods (those with a weft proxy) in scope.
    pub pods: Fetched<Vec<PodState>>,
}
