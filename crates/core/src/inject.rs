//! Proxy injection: the pure decision the admission webhook (weft-controller)
//! and `weft inject` (the CLI, offline) share. A pod (or a workload's pod
//! template) and its namespace's annotations go in; a JSON Patch (RFC 6902)
//! on the pod comes out, adding `weft-init`, the proxy as a native sidecar,
//! the identity token volume and weft's annotations.
//!
//! ```text
//! pod JSON + namespace annotations + InjectionConfig
//!     └─► inject() ─► Injection { decision, patch: [PatchOperation] }
//!            webhook: base64(patch) in the AdmissionResponse
//!            weft inject: apply(patch) on the template
//! ```

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the injector puts into pods, beyond what the pod's annotations say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectionConfig {
    /// The proxy image without its tag (`ghcr.io/weft-mesh/weft-proxy`); it
    /// also holds `weft-init`.
    pub proxy_image: String,
    /// The image tag, written into `weft.io/proxy-version`.
    pub proxy_version: String,
    /// `imagePullPolicy` of the injected containers; `None`: Kubernetes' default.
    pub image_pull_policy: Option<String>,
    /// The control plane's namespace (the Services' namespace).
    pub control_plane_namespace: String,
    /// The cluster's DNS domain (`cluster.local`).
    pub cluster_domain: String,
    /// The identity trust domain (`cluster.local`).
    pub trust_domain: String,
    /// The trust anchors (PEM), written into the proxy's environment.
    pub trust_anchors_pem: String,
    /// The inbound policy of ports no Server selects (unless annotated).
    pub default_inbound_policy: String,
    /// The cluster's networks (comma-separated CIDRs): discovery and the
    /// `cluster-*` policies.
    pub cluster_networks: String,
    /// The proxy's log filter (unless annotated).
    pub proxy_log_level: String,
    /// The proxy's resources (unless annotated).
    pub proxy_resources: ProxyResources,
}

/// Requests and limits of the proxy container (Kubernetes quantities).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyResources {
    /// `requests.cpu`.
    pub cpu_request: Option<String>,
    /// `limits.cpu`.
    pub cpu_limit: Option<String>,
    /// `requests.memory`.
    pub memory_request: Option<String>,
    /// `limits.memory`.
    pub memory_limit: Option<String>,
}

impl InjectionConfig {
    /// The defaults of this version of weft, with the given trust anchors.
    pub fn new(trust_anchors_pem: impl Into<String>) -> Self {
        Self {
            proxy_image: "ghcr.io/weft-mesh/weft-proxy".to_string(),
            proxy_version: env!("CARGO_PKG_VERSION").to_string(),
            image_pull_policy: None,
            control_plane_namespace: crate::cluster::CONTROL_PLANE_NAMESPACE.to_string(),
            cluster_domain: "cluster.local".to_string(),
            trust_domain: "cluster.local".to_string(),
            trust_anchors_pem: trust_anchors_pem.into(),
            default_inbound_policy: "all-unauthenticated".to_string(),
            cluster_networks: "10.0.0.0/8,100.64.0.0/10,172.16.0.0/12,192.168.0.0/16,fd00::/8"
                .to_string(),
            proxy_log_level: "warn,weft_proxy=info".to_string(),
            proxy_resources: ProxyResources::default(),
        }
    }
}

/// What the injector decided for one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The proxy was added.
    Injected,
    /// Neither the pod nor its namespace asks for injection (or says `disabled`).
    NotRequested,
    /// The pod already has a weft or Linkerd proxy.
    AlreadyInjected,
    /// Injection was asked for but cannot be done; the patch records why in
    /// `weft.io/inject-skipped`.
    Skipped(SkipReason),
}

/// Why a pod that asked for injection was left without a proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// `hostNetwork: true`: iptables would redirect the node's traffic.
    HostNetwork,
    /// An annotation's value is not valid (the annotation, the value, why).
    InvalidAnnotation {
        /// The annotation's name.
        annotation: String,
        /// What is wrong with its value.
        reason: String,
    },
}

/// The decision and the patch that carries it out (empty unless injected or skipped).
#[derive(Debug, Clone, PartialEq)]
pub struct Injection {
    /// What was decided.
    pub decision: Decision,
    /// The JSON Patch on the pod.
    pub patch: Vec<PatchOperation>,
}

/// One RFC 6902 operation (the subset the injector writes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum PatchOperation {
    /// Add `value` at `path` (`-` appends to an array).
    Add {
        /// A JSON Pointer.
        path: String,
        /// The value added.
        value: serde_json::Value,
    },
    /// Remove what is at `path`.
    Remove {
        /// A JSON Pointer.
        path: String,
    },
    /// Replace what is at `path` with `value`.
    Replace {
        /// A JSON Pointer.
        path: String,
        /// The new value.
        value: serde_json::Value,
    },
}

/// Why a patch could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot apply the patch at {path}: {reason}")]
pub struct PatchError {
    /// The operation's path.
    pub path: String,
    /// What was wrong.
    pub reason: String,
}

/// Decide for `pod` (a Pod object or a pod template: `metadata` and `spec`)
/// in a namespace with `namespace_annotations`.
pub fn inject(
    pod: &serde_json::Value,
    namespace_annotations: &BTreeMap<String, String>,
    config: &InjectionConfig,
) -> Injection {
    let _ = (pod, namespace_annotations, config);
    Injection {
        decision: Decision::NotRequested,
        patch: Vec::new(),
    }
}

/// The patch that removes what [`inject`] added (containers, volumes,
/// annotations, label); empty for a pod without a weft proxy.
pub fn uninject(pod: &serde_json::Value) -> Vec<PatchOperation> {
    let _ = pod;
    Vec::new()
}

/// Apply `patch` to `value` in order; on error `value` may be partly patched.
pub fn apply(value: &mut serde_json::Value, patch: &[PatchOperation]) -> Result<(), PatchError> {
    let _ = value;
    match patch.first() {
        None => Ok(()),
        Some(_) => Err(PatchError {
            path: String::new(),
            reason: "not implemented".to_string(),
        }),
    }
}
