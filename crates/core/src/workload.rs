//! The `Workload` kind (`weft.dev/v1alpha1`): something that serves traffic and
//! is not a pod — a process on a host, a VM — in the spirit of Linkerd's
//! ExternalWorkload. Services select workloads by their labels.
//!
//! ```yaml
//! apiVersion: weft.dev/v1alpha1
//! kind: Workload
//! metadata: {name: web-1, namespace: shop, labels: {app: web}}
//! spec:
//!   serviceAccount: web
//!   addresses: [10.0.0.11]
//!   ports: [{name: http, port: 8080}]
//!   meshed: true
//!   proxy: {inboundPort: 4143}
//! ```

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

/// The API version of [`Workload`].
pub const API_VERSION: &str = "weft.dev/v1alpha1";
/// The kind of [`Workload`].
pub const KIND: &str = "Workload";
/// The proxy's inbound port when a meshed workload does not say (Linkerd's 4143).
pub const DEFAULT_PROXY_INBOUND_PORT: u16 = 4143;
/// The service account when a workload does not say.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";

/// A workload: metadata (name, namespace, labels) and its spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Workload {
    /// Always `weft.dev/v1alpha1`.
    pub api_version: String,
    /// Always `Workload`.
    pub kind: String,
    /// Name, namespace and labels.
    pub metadata: ObjectMeta,
    /// Where and how it serves.
    pub spec: WorkloadSpec,
}

/// What a workload is and where it listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadSpec {
    /// Its identity; `default` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// The IP addresses it serves on (one per address family, or several hosts).
    pub addresses: Vec<IpAddr>,
    /// Its ports; names let Services use named `targetPort`s.
    #[serde(default)]
    pub ports: Vec<WorkloadPort>,
    /// Whether a weft proxy fronts it.
    #[serde(default)]
    pub meshed: bool,
    /// Where its proxy listens, when meshed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<WorkloadProxy>,
}

/// One port of a workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadPort {
    /// Optional name, matched by a Service's named `targetPort`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The port number.
    pub port: u16,
}

/// Where a meshed workload's proxy accepts inbound connections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadProxy {
    /// The proxy's inbound port (default 4143).
    #[serde(default = "default_inbound_port")]
    pub inbound_port: u16,
    /// The address the proxy listens on, when not the workload's own address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<IpAddr>,
}

fn default_inbound_port() -> u16 {
    DEFAULT_PROXY_INBOUND_PORT
}

/// Where to reach a meshed workload's proxy, resolved with defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProxyEndpoint {
    /// The proxy's address; `None` means the workload's own address.
    pub address: Option<IpAddr>,
    /// The proxy's inbound port.
    pub inbound_port: u16,
}

impl Workload {
    /// Its labels (empty when absent).
    pub fn labels(&self) -> &BTreeMap<String, String> {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        self.metadata.labels.as_ref().unwrap_or(&EMPTY)
    }

    /// Its service account, `default` when absent.
    pub fn service_account(&self) -> &str {
        self.spec
            .service_account
            .as_deref()
            .unwrap_or(DEFAULT_SERVICE_ACCOUNT)
    }

    /// The number of the port with this name, if any.
    pub fn port_named(&self, name: &str) -> Option<u16> {
        self.spec
            .ports
            .iter()
            .find(|port| port.name.as_deref() == Some(name))
            .map(|port| port.port)
    }

    /// Whether it serves on this port (by its declared ports).
    pub fn has_port(&self, port: u16) -> bool {
        self.spec.ports.iter().any(|declared| declared.port == port)
    }

    /// Where its proxy listens: `None` when not meshed; defaults to the
    /// workload's own address and port 4143.
    pub fn proxy_endpoint(&self) -> Option<ProxyEndpoint> {
        if !self.spec.meshed {
            return None;
        }
        Some(match &self.spec.proxy {
            Some(proxy) => ProxyEndpoint {
                address: proxy.address,
                inbound_port: proxy.inbound_port,
            },
            None => ProxyEndpoint {
                address: None,
                inbound_port: DEFAULT_PROXY_INBOUND_PORT,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: web-1, namespace: shop, labels: {app: web}}
spec:
  serviceAccount: web
  addresses: [10.0.0.11, 'fd00::11']
  ports: [{name: http, port: 8080}, {port: 9000}]
  meshed: true
  proxy: {address: 10.0.0.1}
";

    #[test]
    fn parses_and_answers() {
        let workload: Workload = serde_saphyr::from_str(YAML).unwrap();
        assert_eq!(
            workload.labels().get("app").map(String::as_str),
            Some("web")
        );
        assert_eq!(workload.service_account(), "web");
        assert_eq!(workload.spec.addresses.len(), 2);
        assert_eq!(workload.port_named("http"), Some(8080));
        assert_eq!(workload.port_named("admin"), None);
        assert!(workload.has_port(9000));
        assert_eq!(
            workload.proxy_endpoint(),
            Some(ProxyEndpoint {
                address: Some("10.0.0.1".parse().unwrap()),
                inbound_port: 4143
            })
        );
    }

    #[test]
    fn unmeshed_has_no_proxy_and_default_account() {
        let workload: Workload = serde_saphyr::from_str(
            "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: db}\nspec: {addresses: [10.0.0.9]}\n",
        )
        .unwrap();
        assert_eq!(workload.proxy_endpoint(), None);
        assert_eq!(workload.service_account(), "default");
    }

    #[test]
    fn rejects_misspelled_fields() {
        let result: Result<Workload, _> = serde_saphyr::from_str(
            "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: db}\nspec: {addresses: [10.0.0.9], mehsed: true}\n",
        );
        assert!(result.is_err());
    }
}
