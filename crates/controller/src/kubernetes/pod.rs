//! Pod → [`Workload`]: the pure conversion of a watched Pod into the lean
//! type the catalog keeps (the Pod itself is dropped right after).
//!
//! ```text
//! Pod ──pod_facts──► PodFacts { workload (the pod's own mesh annotations, no owner), owner reference }
//!     ──finish(namespace annotations, owners)──► Workload (annotations overlaid, owner resolved)
//! ```
//!
//! - addresses: `status.podIPs` (else `status.podIP`), only while the phase is
//!   Running or Pending (or unknown); a Succeeded or Failed pod has none;
//! - ports: every container's `containerPorts`, and those of native sidecars
//!   (init containers with `restartPolicy: Always`);
//! - meshed: a container, or a native sidecar, named `weft-proxy` (a weft
//!   proxy) or `linkerd-proxy` (linkerd2-proxy); its listen addresses come
//!   from its environment (`WEFT_PROXY_*_LISTEN_ADDR`,
//!   `LINKERD2_PROXY_*_LISTEN_ADDR`), else the defaults;
//! - annotations: only the mesh's (see [`is_mesh_annotation`]) — the
//!   namespace's overlaid by the pod's, the pod's winning. Others (such as
//!   `kubectl.kubernetes.io/last-applied-configuration`) are never kept;
//! - owner: the controller owner reference, a ReplicaSet resolved to its
//!   Deployment and a Job to its CronJob when the [`Owners`] index knows them.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Container, Pod};
use weft_core::cluster::{INJECT_ANNOTATION, LINKERD_PROXY_CONTAINER_NAME, PROXY_CONTAINER_NAME};
use weft_core::workload::{
    self, ProxyImplementation, Workload, WorkloadMeta, WorkloadPort, WorkloadProxy, WorkloadSpec,
};

use super::owners::{OwnerReference, Owners};

/// Annotation key prefixes the mesh reads on pods and namespaces; other
/// annotations are dropped at conversion (they can be large).
pub const MESH_ANNOTATION_PREFIXES: &[&str] = &[
    "config.linkerd.io/",
    "config.alpha.linkerd.io/",
    "config.weft.io/",
];

/// Whether the mesh reads annotation `key` (see [`MESH_ANNOTATION_PREFIXES`]).
pub fn is_mesh_annotation(key: &str) -> bool {
    MESH_ANNOTATION_PREFIXES
        .iter()
        .any(|prefix| key.starts_with(prefix))
}

/// The mesh annotations of `annotations`, `None` when there are none.
pub fn mesh_annotations(
    annotations: Option<&BTreeMap<String, String>>,
) -> Option<BTreeMap<String, String>> {
    let kept: BTreeMap<String, String> = annotations?
        .iter()
        .filter(|(key, _)| is_mesh_annotation(key))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    (!kept.is_empty()).then_some(kept)
}

/// A namespace's annotations the mesh and the proxy injector read: the
/// mesh annotations and `weft.io/inject`; `None` when there are none.
pub fn namespace_annotations(
    annotations: Option<&BTreeMap<String, String>>,
) -> Option<BTreeMap<String, String>> {
    let kept: BTreeMap<String, String> = annotations?
        .iter()
        .filter(|(key, _)| is_mesh_annotation(key) || key.as_str() == INJECT_ANNOTATION)
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    (!kept.is_empty()).then_some(kept)
}

/// What the source remembers of a pod between events: enough to rebuild
/// its workload's annotations and owner when its namespace or its owner
/// changes (the workload itself lives in the catalog only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodRecord {
    /// The pod's own mesh annotations, in key order (a slice: a map's node
    /// costs over half a KiB even for one entry).
    pub annotations: Option<Box<[(String, String)]>>,
    /// Its controller owner reference.
    pub owner: Option<OwnerReference>,
}

/// A pod, converted but not finished: the workload carries the pod's own
/// mesh annotations and no owner yet.
#[derive(Debug, Clone, PartialEq)]
pub struct PodFacts {
    /// The workload, unfinished.
    pub workload: Workload,
    /// The controller owner reference, unresolved.
    pub owner: Option<OwnerReference>,
}

impl PodFacts {
    /// What to remember of the pod.
    pub fn record(&self) -> PodRecord {
        PodRecord {
            annotations: self
                .workload
                .metadata
                .annotations
                .as_ref()
                .map(|annotations| {
                    annotations
                        .iter()
                        .map(|(key, value)| (key.clone(), value.clone()))
                        .collect()
                }),
            owner: self.owner.clone(),
        }
    }

    /// The finished workload: annotations and owner from the context.
    pub fn finish(
        self,
        namespace_annotations: Option<&BTreeMap<String, String>>,
        owners: &Owners,
    ) -> Workload {
        let record = self.record();
        let mut workload = self.workload;
        rebuild(&mut workload, &record, namespace_annotations, owners);
        workload
    }
}

/// Sets `workload`'s annotations (namespace's overlaid by the pod's) and
/// owner (resolved) from `record`; returns whether anything changed.
pub fn rebuild(
    workload: &mut Workload,
    record: &PodRecord,
    namespace_annotations: Option<&BTreeMap<String, String>>,
    owners: &Owners,
) -> bool {
    let namespace = workload.metadata.namespace.clone().unwrap_or_default();
    let annotations = overlay(namespace_annotations, record.annotations.as_deref());
    let owner = record
        .owner
        .as_ref()
        .map(|reference| owners.resolve(&namespace, reference));
    let changed = workload.metadata.annotations != annotations || workload.spec.owner != owner;
    workload.metadata.annotations = annotations;
    workload.spec.owner = owner;
    changed
}

/// The namespace's mesh annotations (not `weft.io/inject`, which only the
/// injector reads) overlaid by the pod's; `None` when empty.
fn overlay(
    namespace: Option<&BTreeMap<String, String>>,
    pod: Option<&[(String, String)]>,
) -> Option<BTreeMap<String, String>> {
    let mut merged: BTreeMap<String, String> = namespace
        .into_iter()
        .flatten()
        .filter(|(key, _)| is_mesh_annotation(key))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    merged.extend(
        pod.into_iter()
            .flatten()
            .map(|(key, value)| (key.clone(), value.clone())),
    );
    (!merged.is_empty()).then_some(merged)
}

/// Why a pod cannot become a workload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PodError {
    /// `metadata.name` is missing.
    #[error("metadata.name is missing")]
    MissingName,
}

/// The facts of `pod` the mesh needs; nothing else of it is kept.
pub fn pod_facts(pod: &Pod) -> Result<PodFacts, PodError> {
    let metadata = &pod.metadata;
    let name = metadata
        .name
        .clone()
        .filter(|name| !name.is_empty())
        .ok_or(PodError::MissingName)?;
    let spec = pod.spec.as_ref();
    let containers: Vec<&Container> = spec
        .map(|spec| spec.containers.iter().collect())
        .unwrap_or_default();
    let sidecars: Vec<&Container> = spec
        .and_then(|spec| spec.init_containers.as_ref())
        .map(|init| {
            init.iter()
                .filter(|container| container.restart_policy.as_deref() == Some("Always"))
                .collect()
        })
        .unwrap_or_default();
    let running: Vec<&Container> = containers.into_iter().chain(sidecars).collect();

    let mut ports: Vec<WorkloadPort> = Vec::new();
    for container in &running {
        for port in container.ports.iter().flatten() {
            let Ok(number) = u16::try_from(port.container_port) else {
                continue;
            };
            if number == 0 || ports.iter().any(|known| known.port == number) {
                continue;
            }
            ports.push(WorkloadPort {
                name: port.name.clone(),
                port: number,
            });
        }
    }
    let proxy = running.iter().find_map(|container| proxy_of(container));
    let owner = metadata
        .owner_references
        .iter()
        .flatten()
        .find(|reference| reference.controller == Some(true))
        .map(|reference| OwnerReference {
            kind: reference.kind.clone(),
            name: reference.name.clone(),
        });
    let service_account = spec
        .and_then(|spec| {
            spec.service_account_name
                .clone()
                .or_else(|| spec.service_account.clone())
        })
        .filter(|account| !account.is_empty());
    let workload = Workload {
        api_version: workload::API_VERSION.to_string(),
        kind: workload::KIND.to_string(),
        metadata: WorkloadMeta {
            name: Some(name),
            namespace: metadata.namespace.clone(),
            labels: metadata.labels.clone().unwrap_or_default().into(),
            annotations: mesh_annotations(metadata.annotations.as_ref()),
        },
        spec: WorkloadSpec {
            service_account,
            addresses: addresses_of(pod),
            ports,
            meshed: proxy.is_some(),
            run: None,
            proxy: proxy.flatten(),
            owner: None,
        },
    };
    Ok(PodFacts { workload, owner })
}

/// The pod's IPs while it may serve: Running, Pending or an unknown phase.
fn addresses_of(pod: &Pod) -> Vec<IpAddr> {
    let Some(status) = pod.status.as_ref() else {
        return Vec::new();
    };
    if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
        return Vec::new();
    }
    let mut addresses: Vec<IpAddr> = status
        .pod_ips
        .iter()
        .flatten()
        .filter_map(|pod_ip| pod_ip.ip.parse().ok())
        .collect();
    if addresses.is_empty()
        && let Some(ip) = status.pod_ip.as_deref().and_then(|ip| ip.parse().ok())
    {
        addresses.push(ip);
    }
    addresses
}

/// The proxy a container is: `None` when it is no proxy; `Some(None)` for
/// a weft proxy with every default; `Some(Some(settings))` otherwise.
fn proxy_of(container: &Container) -> Option<Option<WorkloadProxy>> {
    let (implementation, prefix) = match container.name.as_str() {
        PROXY_CONTAINER_NAME => (None, "WEFT_PROXY_"),
        LINKERD_PROXY_CONTAINER_NAME => {
            (Some(ProxyImplementation::Linkerd2Proxy), "LINKERD2_PROXY_")
        }
        _ => return None,
    };
    let port_of = |variable: &str| {
        let name = format!("{prefix}{variable}");
        container
            .env
            .iter()
            .flatten()
            .find(|env| env.name == name)
            .and_then(|env| env.value.as_deref())
            .and_then(listen_port)
    };
    let tap = if implementation.is_some() {
        "CONTROL_LISTEN_ADDR"
    } else {
        "TAP_LISTEN_ADDR"
    };
    let proxy = WorkloadProxy {
        inbound_port: port_of("INBOUND_LISTEN_ADDR"),
        address: None,
        outbound_port: port_of("OUTBOUND_LISTEN_ADDR"),
        admin_port: port_of("ADMIN_LISTEN_ADDR"),
        tap_port: port_of(tap),
        implementation,
    };
    Some((proxy != WorkloadProxy::default()).then_some(proxy))
}

/// The port of a listen address (`0.0.0.0:4143`, `[::]:4143`; of the first
/// one in a comma-separated list).
fn listen_port(value: &str) -> Option<u16> {
    let first = value.split(',').next()?.trim();
    let (_, port) = first.rsplit_once(':')?;
    port.parse().ok().filter(|port| *port != 0)
}

#[cfg(test)]
mod tests;
