//! The `EndpointSlice` kind (`discovery.k8s.io/v1`), kept lean: which
//! addresses serve a Service on a cluster, with their conditions, the pod
//! behind each one, its hostname (StatefulSet DNS) and zone hints.
//!
//! Kubernetes writes slices; weft reads them. On a cluster a Service's
//! endpoints come from its slices (label `kubernetes.io/service-name`), not
//! from matching its selector against workloads as in a mesh file: the
//! endpoint controller already applied readiness, and headless or
//! selector-less Services have slices written by other controllers.
//!
//! [`EndpointSlice::from_kubernetes`] converts k8s-openapi's type (a watch
//! event or a mesh-file document); nothing else of the object is kept.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::workload::WorkloadMeta;

/// The API version of [`EndpointSlice`].
pub const API_VERSION: &str = "discovery.k8s.io/v1";
/// The kind of [`EndpointSlice`].
pub const KIND: &str = "EndpointSlice";
/// The label naming the Service a slice belongs to.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// A slice: its metadata (name, namespace, labels), the Service it serves,
/// its ports and endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSlice {
    /// Name, namespace, labels.
    pub metadata: WorkloadMeta,
    /// The Service (same namespace) from [`SERVICE_NAME_LABEL`]; `None` when
    /// the label is missing (such a slice serves no Service).
    pub service: Option<String>,
    /// `IPv4`, `IPv6` or `FQDN` (FQDN slices are kept but contribute no address).
    pub address_type: AddressType,
    /// The ports every endpoint of the slice serves.
    pub ports: Vec<SlicePort>,
    /// The endpoints.
    pub endpoints: Vec<SliceEndpoint>,
}

/// A slice's address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AddressType {
    /// IPv4 addresses.
    IPv4,
    /// IPv6 addresses.
    IPv6,
    /// DNS names (not resolved by weft).
    FQDN,
}

/// One port of a slice: it matches the Service port with the same name
/// (both unnamed when the Service has a single unnamed port).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlicePort {
    /// The Service port's name, if it has one.
    pub name: Option<String>,
    /// The port on the endpoints (the resolved targetPort).
    pub port: u16,
    /// TCP, UDP or SCTP (`None` = TCP).
    pub protocol: Option<String>,
    /// The application protocol, when declared.
    pub app_protocol: Option<String>,
}

/// One endpoint: addresses and conditions, as the endpoint controller wrote them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SliceEndpoint {
    /// Its addresses (one in practice).
    pub addresses: Vec<IpAddr>,
    /// `conditions.ready` (`None` = unknown, treated as ready, as Kubernetes says).
    pub ready: Option<bool>,
    /// `conditions.serving`.
    pub serving: Option<bool>,
    /// `conditions.terminating`.
    pub terminating: Option<bool>,
    /// `hostname` (StatefulSet pods: `web-0` answers `web-0.<service>...`).
    pub hostname: Option<String>,
    /// `nodeName`.
    pub node_name: Option<String>,
    /// `zone`.
    pub zone: Option<String>,
    /// `hints.forZones[].name`: the zones that should use this endpoint.
    pub for_zones: Vec<String>,
    /// `targetRef` when it is a Pod: the pod's name (same namespace unless `target_namespace`).
    pub target_pod: Option<String>,
    /// `targetRef.namespace`, when it names another namespace.
    pub target_namespace: Option<String>,
}

impl SliceEndpoint {
    /// Whether traffic may go to it: ready, or ready unknown (Kubernetes'
    /// rule for consumers). Terminating endpoints are not ready.
    pub fn is_ready(&self) -> bool {
        self.ready.unwrap_or(true)
    }
}

/// Why a slice cannot enter the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SliceError {
    /// `addressType` is not IPv4, IPv6 or FQDN.
    #[error("addressType: unknown address type {0:?} (expected IPv4, IPv6 or FQDN)")]
    AddressType(String),
    /// An address of an IPv4/IPv6 slice does not parse.
    #[error("endpoints[{index}].addresses: {address:?} is not an IP address")]
    Address {
        /// The endpoint's index.
        index: usize,
        /// The address as written.
        address: String,
    },
    /// A port is missing or out of range.
    #[error("ports[{index}].port: {port:?} is not a port (1-65535)")]
    Port {
        /// The port's index.
        index: usize,
        /// The port as written.
        port: Option<i32>,
    },
}

impl EndpointSlice {
    /// The lean slice for k8s-openapi's object. FQDN slices keep their
    /// endpoints without addresses.
    pub fn from_kubernetes(
        slice: &k8s_openapi::api::discovery::v1::EndpointSlice,
    ) -> Result<Self, SliceError> {
        let address_type = match slice.address_type.as_str() {
            "IPv4" => AddressType::IPv4,
            "IPv6" => AddressType::IPv6,
            "FQDN" => AddressType::FQDN,
            other => return Err(SliceError::AddressType(other.to_string())),
        };
        let metadata = &slice.metadata;
        let labels = metadata.labels.clone().unwrap_or_default();
        let service = labels.get(SERVICE_NAME_LABEL).cloned();
        let mut ports = Vec::new();
        for (index, port) in slice.ports.iter().flatten().enumerate() {
            let number = port
                .port
                .and_then(|number| u16::try_from(number).ok())
                .filter(|number| *number != 0)
                .ok_or(SliceError::Port {
                    index,
                    port: port.port,
                })?;
            ports.push(SlicePort {
                name: port.name.clone().filter(|name| !name.is_empty()),
                port: number,
                protocol: port.protocol.clone(),
                app_protocol: port.app_protocol.clone(),
            });
        }
        let mut endpoints = Vec::with_capacity(slice.endpoints.len());
        for (index, endpoint) in slice.endpoints.iter().enumerate() {
            let addresses = if address_type == AddressType::FQDN {
                Vec::new()
            } else {
                endpoint
                    .addresses
                    .iter()
                    .map(|address| {
                        address.parse::<IpAddr>().map_err(|_| SliceError::Address {
                            index,
                            address: address.clone(),
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?
            };
            let conditions = endpoint.conditions.as_ref();
            let pod = endpoint
                .target_ref
                .as_ref()
                .filter(|target| target.kind.as_deref() == Some("Pod"));
            endpoints.push(SliceEndpoint {
                addresses,
                ready: conditions.and_then(|conditions| conditions.ready),
                serving: conditions.and_then(|conditions| conditions.serving),
                terminating: conditions.and_then(|conditions| conditions.terminating),
                hostname: endpoint.hostname.clone(),
                node_name: endpoint.node_name.clone(),
                zone: endpoint.zone.clone(),
                for_zones: endpoint
                    .hints
                    .as_ref()
                    .and_then(|hints| hints.for_zones.as_ref())
                    .map(|zones| zones.iter().map(|zone| zone.name.clone()).collect())
                    .unwrap_or_default(),
                target_pod: pod.and_then(|target| target.name.clone()),
                target_namespace: pod
                    .and_then(|target| target.namespace.clone())
                    .filter(|namespace| Some(namespace) != metadata.namespace.as_ref()),
            });
        }
        Ok(Self {
            metadata: WorkloadMeta {
                name: metadata.name.clone(),
                namespace: metadata.namespace.clone(),
                labels: labels.into(),
                annotations: None,
            },
            service,
            address_type,
            ports,
            endpoints,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLICE: &str = "
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc12
  namespace: shop
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints:
- addresses: [10.1.0.5]
  conditions: {ready: true, serving: true, terminating: false}
  hostname: web-0
  nodeName: node-a
  zone: us-east-1a
  hints: {forZones: [{name: us-east-1a}]}
  targetRef: {kind: Pod, name: web-0, namespace: shop}
- addresses: [10.1.0.6]
  conditions: {ready: false, serving: true, terminating: true}
";

    #[test]
    fn converts_a_kubernetes_slice() {
        let slice: k8s_openapi::api::discovery::v1::EndpointSlice =
            serde_saphyr::from_str(SLICE).unwrap();
        let lean = EndpointSlice::from_kubernetes(&slice).unwrap();
        assert_eq!(lean.service.as_deref(), Some("web"));
        assert_eq!(lean.address_type, AddressType::IPv4);
        assert_eq!(lean.ports[0].name.as_deref(), Some("http"));
        assert_eq!(lean.ports[0].port, 8080);
        let first = &lean.endpoints[0];
        assert_eq!(first.addresses, vec!["10.1.0.5".parse::<IpAddr>().unwrap()]);
        assert!(first.is_ready());
        assert_eq!(first.hostname.as_deref(), Some("web-0"));
        assert_eq!(first.for_zones, vec!["us-east-1a".to_string()]);
        assert_eq!(first.target_pod.as_deref(), Some("web-0"));
        assert_eq!(first.target_namespace, None);
        assert!(!lean.endpoints[1].is_ready());
        assert_eq!(lean.endpoints[1].terminating, Some(true));
    }

    #[test]
    fn bad_addresses_and_ports_name_the_field() {
        let mut slice: k8s_openapi::api::discovery::v1::EndpointSlice =
            serde_saphyr::from_str(SLICE).unwrap();
        slice.endpoints[1].addresses = vec!["not-an-ip".to_string()];
        assert_eq!(
            EndpointSlice::from_kubernetes(&slice)
                .unwrap_err()
                .to_string(),
            "endpoints[1].addresses: \"not-an-ip\" is not an IP address"
        );
        slice.endpoints.truncate(1);
        slice.ports.as_mut().unwrap()[0].port = Some(70000);
        assert_eq!(
            EndpointSlice::from_kubernetes(&slice)
                .unwrap_err()
                .to_string(),
            "ports[0].port: Some(70000) is not a port (1-65535)"
        );
    }
}
