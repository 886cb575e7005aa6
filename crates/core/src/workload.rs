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
//!
//! A meshed workload's proxy is a weft proxy unless the file says otherwise
//! (`proxy: {implementation: linkerd2-proxy}`): the controller tells weft
//! proxies which endpoints are weft proxies, to which they send weft's own
//! extensions (`l5d-orig-header-case`).

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The API version of [`Workload`].
pub const API_VERSION: &str = "weft.dev/v1alpha1";
/// The kind of [`Workload`].
pub const KIND: &str = "Workload";
/// The proxy's inbound port when a meshed workload does not say (Linkerd's 4143).
pub const DEFAULT_PROXY_INBOUND_PORT: u16 = 4143;
/// The proxy's outbound port when a meshed workload does not say (Linkerd's 4140).
pub const DEFAULT_PROXY_OUTBOUND_PORT: u16 = 4140;
/// The proxy's admin port when a meshed workload does not say (Linkerd's 4191).
pub const DEFAULT_PROXY_ADMIN_PORT: u16 = 4191;
/// The proxy's tap port when a meshed workload does not say (Linkerd's 4190).
pub const DEFAULT_PROXY_TAP_PORT: u16 = 4190;
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
    pub metadata: WorkloadMeta,
    /// Where and how it serves.
    pub spec: WorkloadSpec,
}

/// The metadata a workload needs: the part of Kubernetes' ObjectMeta the
/// mesh reads (other ObjectMeta fields are accepted and ignored). Kept lean
/// on purpose: a catalog holds tens of thousands of workloads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadMeta {
    /// Its name (required by the catalog).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its namespace (`default` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Its labels, which Services select by.
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub labels: Labels,
    /// Its annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// Labels, sorted by key. A boxed slice rather than a map: a workload carries
/// a handful, and a `BTreeMap` node costs over half a KiB even for one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "BTreeMap<String, String>", into = "BTreeMap<String, String>")]
pub struct Labels(Box<[(String, String)]>);

impl Labels {
    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&String> {
        self.0
            .binary_search_by(|(label, _)| label.as_str().cmp(key))
            .ok()
            .map(|index| &self.0[index].1)
    }

    /// The labels in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter().map(|(key, value)| (key, value))
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<BTreeMap<String, String>> for Labels {
    fn from(map: BTreeMap<String, String>) -> Self {
        Self(map.into_iter().collect())
    }
}

impl From<Labels> for BTreeMap<String, String> {
    fn from(labels: Labels) -> Self {
        labels.0.into_vec().into_iter().collect()
    }
}

/// What a workload is and where it listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
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
    /// How `weft up` starts its app, when it should.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<Box<WorkloadRun>>,
    /// Where its proxy listens, when meshed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<WorkloadProxy>,
    /// What runs it, when a controller does: on Kubernetes the pod's owner
    /// (a ReplicaSet's Deployment, a Job's CronJob, a StatefulSet, a
    /// DaemonSet); proxies label its metrics with it, as Linkerd's do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<WorkloadOwner>,
}

/// A workload's owner: its kind (`Deployment`, `StatefulSet`, `DaemonSet`,
/// `Job`, `CronJob`, `ReplicaSet`, ...) and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadOwner {
    /// The owner's kind, as Kubernetes spells it.
    pub kind: String,
    /// Its name.
    pub name: String,
}

/// One port of a workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadPort {
    /// Optional name, matched by a Service's named `targetPort`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The port number.
    pub port: u16,
}

/// Where a meshed workload's proxy listens, as the mesh file says: every
/// port is optional. The controller fills in Linkerd's defaults
/// ([`Workload::proxy_settings`]); `weft up` allocates the ones left out for
/// the workloads it runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadProxy {
    /// The proxy's inbound port (default 4143).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound_port: Option<u16>,
    /// The address the proxy listens on, when not the workload's own address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<IpAddr>,
    /// The proxy's outbound port, its HTTP proxy in explicit mode (default 4140).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound_port: Option<u16>,
    /// The proxy's admin port: `/metrics`, `/ready` (default 4191). The
    /// controller scrapes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_port: Option<u16>,
    /// The proxy's tap port (default 4190). The controller taps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tap_port: Option<u16>,
    /// Which proxy it is (default `weft`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub implementation: Option<ProxyImplementation>,
}

/// Which proxy fronts a meshed workload. Both speak Linkerd's protocols;
/// only a weft proxy understands weft's extensions to them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum ProxyImplementation {
    /// weft-proxy (the default).
    #[default]
    Weft,
    /// Linkerd's own proxy, joined to the mesh.
    #[serde(rename = "linkerd2-proxy")]
    Linkerd2Proxy,
}

/// A meshed workload's proxy with every default filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxySettings {
    /// The proxy's inbound port.
    pub inbound_port: u16,
    /// The address the proxy listens on, when not the workload's own address.
    pub address: Option<IpAddr>,
    /// The proxy's outbound port.
    pub outbound_port: u16,
    /// The proxy's admin port.
    pub admin_port: u16,
    /// The proxy's tap port.
    pub tap_port: u16,
    /// Which proxy it is.
    pub implementation: ProxyImplementation,
}

impl From<&WorkloadProxy> for ProxySettings {
    fn from(proxy: &WorkloadProxy) -> Self {
        ProxySettings {
            inbound_port: proxy.inbound_port.unwrap_or(DEFAULT_PROXY_INBOUND_PORT),
            address: proxy.address,
            outbound_port: proxy.outbound_port.unwrap_or(DEFAULT_PROXY_OUTBOUND_PORT),
            admin_port: proxy.admin_port.unwrap_or(DEFAULT_PROXY_ADMIN_PORT),
            tap_port: proxy.tap_port.unwrap_or(DEFAULT_PROXY_TAP_PORT),
            implementation: proxy.implementation.unwrap_or_default(),
        }
    }
}

/// How `weft up` runs a workload's app on this host: the command, its extra
/// environment and working directory. The controller ignores it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadRun {
    /// The program and its arguments (`command[0]` is looked up in `PATH`).
    pub command: Vec<String>,
    /// Extra environment variables for the app.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// The app's working directory (default: the mesh file's directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Workloads (`name` in the same namespace, or `namespace/name`) whose
    /// proxies must be ready and apps listening before this app starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
}

/// Where to reach a meshed workload's proxy, resolved with defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProxyEndpoint {
    /// The proxy's address; `None` means the workload's own address.
    pub address: Option<IpAddr>,
    /// The proxy's inbound port.
    pub inbound_port: u16,
    /// Which proxy it is.
    pub implementation: ProxyImplementation,
}

impl Workload {
    /// Its labels (empty when absent).
    pub fn labels(&self) -> &Labels {
        &self.metadata.labels
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

    /// Whether its pod's `weft-init` leaves inbound `port` alone
    /// (`config.weft.io/skip-inbound-ports`, else
    /// `config.linkerd.io/skip-inbound-ports`): connections to that port reach
    /// the app directly, so clients must not expect its proxy there.
    pub fn skips_inbound_port(&self, port: u16) -> bool {
        let annotations = self.metadata.annotations.as_ref();
        [
            "config.weft.io/skip-inbound-ports",
            "config.linkerd.io/skip-inbound-ports",
        ]
        .iter()
        .find_map(|name| annotations.and_then(|annotations| annotations.get(*name)))
        .is_some_and(|list| crate::port_list::lists_port(list, port))
    }

    /// All of its proxy's ports and its address, defaults filled in: `None`
    /// when not meshed.
    pub fn proxy_settings(&self) -> Option<ProxySettings> {
        if !self.spec.meshed {
            return None;
        }
        Some(ProxySettings::from(
            self.spec
                .proxy
                .as_ref()
                .unwrap_or(&WorkloadProxy::default()),
        ))
    }

    /// Where its proxy listens: `None` when not meshed; defaults to the
    /// workload's own address and port 4143.
    pub fn proxy_endpoint(&self) -> Option<ProxyEndpoint> {
        if !self.spec.meshed {
            return None;
        }
        let settings = self.proxy_settings()?;
        Some(ProxyEndpoint {
            address: settings.address,
            inbound_port: settings.inbound_port,
            implementation: settings.implementation,
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
                inbound_port: 4143,
                implementation: ProxyImplementation::Weft,
            })
        );
    }

    #[test]
    fn a_workload_may_declare_a_linkerd2_proxy() {
        let table = [
            ("{inboundPort: 4143}", Some(ProxyImplementation::Weft)),
            ("{implementation: weft}", Some(ProxyImplementation::Weft)),
            (
                "{implementation: linkerd2-proxy}",
                Some(ProxyImplementation::Linkerd2Proxy),
            ),
            ("{implementation: envoy}", None),
        ];
        for (proxy, expected) in table {
            let yaml = format!(
                "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {{name: web}}\nspec:\n  addresses: [127.0.0.1]\n  meshed: true\n  proxy: {proxy}\n"
            );
            let parsed = serde_saphyr::from_str::<Workload>(&yaml)
                .ok()
                .and_then(|workload| workload.proxy_endpoint())
                .map(|endpoint| endpoint.implementation);
            assert_eq!(parsed, expected, "{proxy}");
        }
    }

    #[test]
    fn proxy_ports_and_run_have_defaults() {
        let workload: Workload = serde_saphyr::from_str(
            "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: web}\nspec:\n  addresses: [127.0.0.1]\n  meshed: true\n  proxy: {inboundPort: 5143, adminPort: 5191}\n  run: {command: [web, --port, '8080'], env: {A: b}}\n",
        )
        .unwrap();
        let proxy = workload.proxy_settings().unwrap();
        assert_eq!(
            (
                proxy.inbound_port,
                proxy.outbound_port,
                proxy.admin_port,
                proxy.tap_port
            ),
            (5143, 4140, 5191, 4190)
        );
        let run = workload.spec.run.as_deref().unwrap();
        assert_eq!(run.command, ["web", "--port", "8080"]);
        assert_eq!(run.env.get("A").map(String::as_str), Some("b"));
        assert!(run.depends_on.is_empty());
    }

    #[test]
    fn left_out_ports_stay_out_when_written_back() {
        let workload: Workload = serde_saphyr::from_str(
            "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: web}\nspec:\n  addresses: [127.0.0.1]\n  meshed: true\n  proxy: {adminPort: 5191}\n  run: {command: [web], dependsOn: [books, shop/authors]}\n",
        )
        .unwrap();
        let proxy = workload.spec.proxy.as_ref().unwrap();
        assert_eq!((proxy.inbound_port, proxy.admin_port), (None, Some(5191)));
        assert_eq!(
            workload.spec.run.as_deref().unwrap().depends_on,
            ["books", "shop/authors"]
        );
        let json = serde_json::to_string(&workload.spec.proxy).unwrap();
        assert_eq!(json, r#"{"adminPort":5191}"#);
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
