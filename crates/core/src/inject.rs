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
//!
//! | module          | what it holds |
//! |-----------------|---------------|
//! | `annotations`   | `weft.io/inject` and the `config.weft.io/*` (or `config.linkerd.io/*`) overrides: precedence and checks |
//! | `containers`    | the `weft-init` and `weft-proxy` containers and the two volumes, as Kubernetes JSON |
//! | `patch`         | [`apply`] (RFC 6902 add/remove/replace) and JSON Pointer escaping |
//!
//! The patch adds whole objects and arrays a pod lacks (`/metadata/labels`,
//! `/spec/initContainers`, `/spec/volumes`) and members or items to those it
//! has; [`uninject`] removes them the same way, so `uninject` after `inject`
//! gives back the pod (unless it had an empty object or array there).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::cluster::{
    IDENTITY_MODE_ANNOTATION, IDENTITY_TOKEN_VOLUME, INIT_CONTAINER_NAME,
    INJECT_SKIPPED_ANNOTATION, LINKERD_PROXY_CONTAINER_NAME, PROXY_CONTAINER_NAME,
    PROXY_CONTROL_PLANE_LABEL, PROXY_VERSION_ANNOTATION,
};

mod annotations;
mod containers;
mod patch;
#[cfg(test)]
mod tests;

pub use annotations::{
    Annotations, CONFIG_ANNOTATIONS, CONFIG_PREFIX, InjectMode, LINKERD_CONFIG_PREFIX,
    check_log_level, check_quantity, requested_mode,
};
use annotations::{Overrides, Setting};
pub use containers::XTABLES_LOCK_VOLUME;
pub use patch::{apply, escape_pointer_token};

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

impl ProxyResources {
    /// Whether Kubernetes would take these resources: every value a
    /// quantity, each request at most its limit. The error says which.
    pub fn check(&self) -> Result<(), String> {
        let pairs = [
            ("cpu", &self.cpu_request, &self.cpu_limit),
            ("memory", &self.memory_request, &self.memory_limit),
        ];
        for (resource, request, limit) in pairs {
            let request_amount = request
                .as_deref()
                .map(annotations::quantity_amount)
                .transpose()
                .map_err(|error| format!("{resource} request: {error}"))?;
            let limit_amount = limit
                .as_deref()
                .map(annotations::quantity_amount)
                .transpose()
                .map_err(|error| format!("{resource} limit: {error}"))?;
            if let (Some(request_amount), Some(limit_amount)) = (request_amount, limit_amount)
                && request_amount > limit_amount
            {
                return Err(format!(
                    "the {resource} request {} is above its limit {}",
                    request.as_deref().unwrap_or_default(),
                    limit.as_deref().unwrap_or_default()
                ));
            }
        }
        Ok(())
    }
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
    /// The pod already has a weft or Linkerd proxy (or `weft-init`).
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

impl fmt::Display for SkipReason {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::HostNetwork => formatter.write_str(
                "hostNetwork: true (weft-init's iptables rules would capture the node's traffic)",
            ),
            SkipReason::InvalidAnnotation { annotation, reason } => {
                write!(formatter, "{annotation}: {reason}")
            }
        }
    }
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
///
/// ```text
/// weft.io/inject (pod, else namespace) not enabled|ingress   ─► NotRequested
/// a weft-proxy, linkerd-proxy or weft-init container already ─► AlreadyInjected
/// hostNetwork: true                                          ─► Skipped(HostNetwork)
/// a configuration annotation is not valid                    ─► Skipped(InvalidAnnotation)
/// else                                                       ─► Injected
/// ```
pub fn inject(
    pod: &Value,
    namespace_annotations: &BTreeMap<String, String>,
    config: &InjectionConfig,
) -> Injection {
    let pod_annotations = string_members(&pod["metadata"]["annotations"]);
    let Some(mode) = requested_mode(&pod_annotations, namespace_annotations) else {
        return Injection {
            decision: Decision::NotRequested,
            patch: Vec::new(),
        };
    };
    if has_proxy(pod) {
        return Injection {
            decision: Decision::AlreadyInjected,
            patch: Vec::new(),
        };
    }
    if pod["spec"]["hostNetwork"] == Value::Bool(true) {
        return skipped(pod, SkipReason::HostNetwork);
    }
    let overrides = match annotations::read(
        &pod_annotations,
        namespace_annotations,
        &config.proxy_resources,
    ) {
        Ok(overrides) => overrides,
        Err(reason) => return skipped(pod, reason),
    };
    let version = overrides
        .proxy_version
        .as_ref()
        .map_or(config.proxy_version.as_str(), |setting| &setting.value);
    let spec = proxy_spec(pod, config, &overrides, version, mode);

    let mut patch = Vec::new();
    if pod_annotations.contains_key(INJECT_SKIPPED_ANNOTATION) {
        patch.push(PatchOperation::Remove {
            path: member_path("/metadata/annotations", INJECT_SKIPPED_ANNOTATION),
        });
    }
    patch.extend(metadata_additions(
        pod,
        &[
            (PROXY_VERSION_ANNOTATION, version),
            (IDENTITY_MODE_ANNOTATION, "default"),
        ],
        &[(
            PROXY_CONTROL_PLANE_LABEL,
            config.control_plane_namespace.as_str(),
        )],
    ));
    let init_containers = [
        containers::init_container(&spec),
        containers::proxy_container(&spec),
    ];
    let volumes = containers::volumes();
    if !pod["spec"].is_object() {
        patch.push(PatchOperation::Add {
            path: "/spec".to_string(),
            value: json!({"initContainers": init_containers, "volumes": volumes}),
        });
    } else {
        if pod["spec"]["initContainers"].is_array() {
            for (index, container) in init_containers.into_iter().enumerate() {
                patch.push(PatchOperation::Add {
                    path: format!("/spec/initContainers/{index}"),
                    value: container,
                });
            }
        } else {
            patch.push(PatchOperation::Add {
                path: "/spec/initContainers".to_string(),
                value: Value::Array(init_containers.into()),
            });
        }
        if pod["spec"]["volumes"].is_array() {
            for volume in volumes {
                patch.push(PatchOperation::Add {
                    path: "/spec/volumes/-".to_string(),
                    value: volume,
                });
            }
        } else {
            patch.push(PatchOperation::Add {
                path: "/spec/volumes".to_string(),
                value: Value::Array(volumes.into()),
            });
        }
    }
    Injection {
        decision: Decision::Injected,
        patch,
    }
}

/// The pod was asked for a proxy but gets none: only `weft.io/inject-skipped`.
fn skipped(pod: &Value, reason: SkipReason) -> Injection {
    let message = reason.to_string();
    Injection {
        patch: metadata_additions(pod, &[(INJECT_SKIPPED_ANNOTATION, &message)], &[]),
        decision: Decision::Skipped(reason),
    }
}

/// The containers are built from `config` with the annotations applied.
fn proxy_spec<'config>(
    pod: &Value,
    config: &'config InjectionConfig,
    overrides: &Overrides,
    version: &str,
    mode: InjectMode,
) -> containers::ProxySpec<'config> {
    let value = |setting: &Option<Setting>| setting.as_ref().map(|setting| setting.value.clone());
    let non_empty = |setting: &Option<Setting>| value(setting).filter(|value| !value.is_empty());
    let image = value(&overrides.proxy_image).unwrap_or_else(|| config.proxy_image.clone());
    let defaults = &config.proxy_resources;
    containers::ProxySpec {
        config,
        image: format!("{image}:{version}"),
        image_pull_policy: value(&overrides.image_pull_policy)
            .or_else(|| config.image_pull_policy.clone()),
        resources: ProxyResources {
            cpu_request: value(&overrides.cpu_request).or_else(|| defaults.cpu_request.clone()),
            cpu_limit: value(&overrides.cpu_limit).or_else(|| defaults.cpu_limit.clone()),
            memory_request: value(&overrides.memory_request)
                .or_else(|| defaults.memory_request.clone()),
            memory_limit: value(&overrides.memory_limit).or_else(|| defaults.memory_limit.clone()),
        },
        log_level: value(&overrides.log_level).unwrap_or_else(|| config.proxy_log_level.clone()),
        default_inbound_policy: value(&overrides.default_inbound_policy)
            .unwrap_or_else(|| config.default_inbound_policy.clone()),
        opaque_ports: non_empty(&overrides.opaque_ports),
        skip_inbound_ports: non_empty(&overrides.skip_inbound_ports),
        skip_outbound_ports: non_empty(&overrides.skip_outbound_ports),
        skip_subnets: non_empty(&overrides.skip_subnets),
        inbound_ports: inbound_ports(pod),
        inbound_only: mode == InjectMode::Ingress,
    }
}

/// Every `containerPort` of the pod's containers and native sidecars,
/// ascending, comma-separated; `None` when there is none.
fn inbound_ports(pod: &Value) -> Option<String> {
    let sidecars = array(&pod["spec"]["initContainers"])
        .iter()
        .filter(|container| container["restartPolicy"] == "Always");
    let ports: BTreeSet<u64> = array(&pod["spec"]["containers"])
        .iter()
        .chain(sidecars)
        .flat_map(|container| array(&container["ports"]))
        .filter_map(|port| port["containerPort"].as_u64())
        .collect();
    if ports.is_empty() {
        return None;
    }
    let ports: Vec<String> = ports.iter().map(u64::to_string).collect();
    Some(ports.join(","))
}

/// Whether a container or init container is a weft or Linkerd proxy, or
/// `weft-init` (a second one would make the pod invalid: names are unique).
fn has_proxy(pod: &Value) -> bool {
    ["containers", "initContainers"].iter().any(|field| {
        array(&pod["spec"][field]).iter().any(|container| {
            matches!(
                container["name"].as_str(),
                Some(PROXY_CONTAINER_NAME | LINKERD_PROXY_CONTAINER_NAME | INIT_CONTAINER_NAME)
            )
        })
    })
}

/// The items of `value`, none if it is not an array.
fn array(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}

/// The string members of an object (annotations, labels).
fn string_members(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(key, value)| Some((key.clone(), value.as_str()?.to_string())))
        .collect()
}

/// `parent` + `/` + the escaped `key`.
fn member_path(parent: &str, key: &str) -> String {
    format!("{parent}/{}", escape_pointer_token(key))
}

/// The operations adding `annotations` and `labels`: the whole `metadata`,
/// `annotations` or `labels` object when absent, else one member each.
fn metadata_additions(
    pod: &Value,
    annotations: &[(&str, &str)],
    labels: &[(&str, &str)],
) -> Vec<PatchOperation> {
    let object = |members: &[(&str, &str)]| {
        Value::Object(
            members
                .iter()
                .map(|(key, value)| ((*key).to_string(), json!(value)))
                .collect(),
        )
    };
    let sections = [("annotations", annotations), ("labels", labels)];
    if !pod["metadata"].is_object() {
        let metadata: Map<String, Value> = sections
            .iter()
            .filter(|(_, members)| !members.is_empty())
            .map(|(field, members)| ((*field).to_string(), object(members)))
            .collect();
        return vec![PatchOperation::Add {
            path: "/metadata".to_string(),
            value: Value::Object(metadata),
        }];
    }
    let mut patch = Vec::new();
    for (field, members) in sections {
        if members.is_empty() {
            continue;
        }
        let parent = format!("/metadata/{field}");
        if pod["metadata"][field].is_object() {
            for (key, value) in members {
                patch.push(PatchOperation::Add {
                    path: member_path(&parent, key),
                    value: json!(value),
                });
            }
        } else {
            patch.push(PatchOperation::Add {
                path: parent,
                value: object(members),
            });
        }
    }
    patch
}

/// The patch that removes what [`inject`] added (containers, volumes,
/// annotations, label) and `weft.io/inject-skipped`; empty for a pod with
/// none of them. Arrays and objects left empty are removed whole (as
/// [`inject`] adds them whole when absent); array items are removed from
/// the highest index down, so every index is valid when its turn comes.
pub fn uninject(pod: &Value) -> Vec<PatchOperation> {
    let injected_containers = [INIT_CONTAINER_NAME, PROXY_CONTAINER_NAME];
    let mut patch = Vec::new();
    remove_named_items(
        &mut patch,
        pod,
        "initContainers",
        &injected_containers,
        true,
    );
    // A `containers` array is required: never removed whole.
    remove_named_items(&mut patch, pod, "containers", &injected_containers, false);
    remove_named_items(
        &mut patch,
        pod,
        "volumes",
        &[IDENTITY_TOKEN_VOLUME, XTABLES_LOCK_VOLUME],
        true,
    );
    let Some(metadata) = pod["metadata"].as_object() else {
        return patch;
    };
    let sections = [
        (
            "annotations",
            &[
                PROXY_VERSION_ANNOTATION,
                IDENTITY_MODE_ANNOTATION,
                INJECT_SKIPPED_ANNOTATION,
            ][..],
        ),
        ("labels", &[PROXY_CONTROL_PLANE_LABEL][..]),
    ];
    let mut member_removals = Vec::new();
    let mut emptied = Vec::new();
    for (field, keys) in sections {
        let Some(members) = metadata.get(field).and_then(Value::as_object) else {
            continue;
        };
        let present: Vec<&str> = keys
            .iter()
            .copied()
            .filter(|key| members.contains_key(*key))
            .collect();
        if present.is_empty() {
            continue;
        }
        if present.len() == members.len() {
            emptied.push(field);
            continue;
        }
        let parent = format!("/metadata/{field}");
        member_removals.extend(present.into_iter().map(|key| PatchOperation::Remove {
            path: member_path(&parent, key),
        }));
    }
    if !emptied.is_empty() && emptied.len() == metadata.len() {
        patch.push(PatchOperation::Remove {
            path: "/metadata".to_string(),
        });
        return patch;
    }
    patch.extend(emptied.into_iter().map(|field| PatchOperation::Remove {
        path: format!("/metadata/{field}"),
    }));
    patch.extend(member_removals);
    patch
}

/// Removes the items of `/spec/<field>` named one of `names`, highest index
/// first; the whole array if every item goes and `whole` allows it.
fn remove_named_items(
    patch: &mut Vec<PatchOperation>,
    pod: &Value,
    field: &str,
    names: &[&str],
    whole: bool,
) {
    let items = array(&pod["spec"][field]);
    let indices: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, item)| {
            item["name"]
                .as_str()
                .is_some_and(|name| names.contains(&name))
        })
        .map(|(index, _)| index)
        .collect();
    if indices.is_empty() {
        return;
    }
    if whole && indices.len() == items.len() {
        patch.push(PatchOperation::Remove {
            path: format!("/spec/{field}"),
        });
        return;
    }
    patch.extend(
        indices
            .into_iter()
            .rev()
            .map(|index| PatchOperation::Remove {
                path: format!("/spec/{field}/{index}"),
            }),
    );
}
