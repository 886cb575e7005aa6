//! Which proxies a tap reaches, and who is on the other side of a tapped
//! request (pure, from a copy of the catalog's workloads).
//!
//! ```text
//! workload/NS/NAME  ─► that workload, if meshed
//! service/NS/NAME   ─► the meshed workloads its selector picks
//! namespace/NS      ─► every meshed workload of NS
//!                   ─► TapTarget { workload, tap address (proxy address or
//!                      first address : tap port), identity }
//! ```
//!
//! [`Peers`] answers the hydration questions: which workload has this
//! service account in this namespace (an inbound request's client
//! identity), which one serves at this address.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use k8s_openapi::api::core::v1::Service;
use weft_core::service::{namespace_or_default, selects};
use weft_core::workload::Workload;

use super::query::{Resource, ResourceKind};
use crate::proxy_address::proxy_listeners;

/// A workload, as tap events name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkloadName {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl WorkloadName {
    /// The name of a catalog workload.
    pub fn of(workload: &Workload) -> Self {
        Self {
            namespace: namespace_or_default(workload.metadata.namespace.as_deref()).to_string(),
            name: workload.metadata.name.clone().unwrap_or_default(),
        }
    }
}

/// One proxy to tap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapTarget {
    /// The workload it fronts.
    pub workload: WorkloadName,
    /// Its service account.
    pub service_account: String,
    /// Where its tap server listens.
    pub tap_addr: SocketAddr,
}

/// The meshed workloads `resource` covers, sorted by name; `None` when there
/// are none (the caller answers 404 naming `resource`).
pub fn resolve(
    resource: &Resource,
    workloads: &[Workload],
    service: Option<&Service>,
) -> Vec<TapTarget> {
    let mut targets: Vec<TapTarget> = workloads
        .iter()
        .filter(|workload| {
            let name = WorkloadName::of(workload);
            if name.namespace != resource.namespace {
                return false;
            }
            match resource.kind {
                ResourceKind::Workload => resource.name.as_deref() == Some(name.name.as_str()),
                ResourceKind::Service => service.is_some_and(|service| selects(service, workload)),
                ResourceKind::Namespace => true,
            }
        })
        .filter_map(target_of)
        .collect();
    targets.sort_by(|a, b| a.workload.cmp(&b.workload));
    targets
}

/// A meshed workload's tap target; `None` when not meshed or without an address.
pub fn target_of(workload: &Workload) -> Option<TapTarget> {
    Some(TapTarget {
        workload: WorkloadName::of(workload),
        service_account: workload.service_account().to_string(),
        tap_addr: proxy_listeners(workload)?.tap,
    })
}

/// The catalog's workloads indexed for hydrating events.
#[derive(Debug, Clone, Default)]
pub struct Peers {
    by_identity: HashMap<(String, String), Vec<WorkloadName>>,
    by_address: HashMap<(IpAddr, u16), WorkloadName>,
    by_ip: HashMap<IpAddr, Vec<WorkloadName>>,
}

impl Peers {
    /// Indexes `workloads`.
    pub fn new(workloads: &[Workload]) -> Self {
        let mut peers = Self::default();
        for workload in workloads {
            let name = WorkloadName::of(workload);
            peers
                .by_identity
                .entry((
                    name.namespace.clone(),
                    workload.service_account().to_string(),
                ))
                .or_default()
                .push(name.clone());
            let proxy = workload.proxy_settings();
            for ip in &workload.spec.addresses {
                peers.by_ip.entry(*ip).or_default().push(name.clone());
                let ports = workload.spec.ports.iter().map(|port| port.port);
                let proxy_ports = proxy.iter().map(|proxy| proxy.inbound_port);
                for port in ports.chain(proxy_ports) {
                    peers
                        .by_address
                        .entry((*ip, port))
                        .or_insert_with(|| name.clone());
                }
            }
        }
        for names in peers
            .by_identity
            .values_mut()
            .chain(peers.by_ip.values_mut())
        {
            names.sort();
            names.dedup();
        }
        peers
    }

    /// The workload with the identity `<sa>.<ns>.serviceaccount.identity.…`
    /// (the first by name when several share a service account); when no
    /// workload has it, the namespace alone (name empty).
    pub fn by_identity(&self, identity: &str) -> Option<WorkloadName> {
        let mut labels = identity.split('.');
        let service_account = labels.next().filter(|label| !label.is_empty())?;
        let namespace = labels.next().filter(|label| !label.is_empty())?;
        if labels.next() != Some("serviceaccount") {
            return None;
        }
        let key = (namespace.to_string(), service_account.to_string());
        Some(
            match self.by_identity.get(&key).and_then(|names| names.first()) {
                Some(name) => name.clone(),
                None => WorkloadName {
                    namespace: namespace.to_string(),
                    name: String::new(),
                },
            },
        )
    }

    /// The workload serving at `address`: one declaring that IP and port
    /// (or whose proxy takes inbound traffic there), else the only one with
    /// that IP.
    pub fn by_address(&self, address: SocketAddr) -> Option<WorkloadName> {
        if let Some(name) = self.by_address.get(&(address.ip(), address.port())) {
            return Some(name.clone());
        }
        match self.by_ip.get(&address.ip()).map(Vec::as_slice) {
            Some([only]) => Some(only.clone()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload(namespace: &str, name: &str, labels: &str, tail: &str) -> Workload {
        serde_saphyr::from_str(&format!(
            "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {{name: {name}, namespace: {namespace}, labels: {{{labels}}}}}\nspec:\n  serviceAccount: {name}\n{tail}"
        ))
        .unwrap()
    }

    fn mesh() -> Vec<Workload> {
        vec![
            workload(
                "demo",
                "web",
                "app: web",
                "  addresses: [127.0.0.1]\n  ports: [{port: 7000}]\n  meshed: true\n  proxy: {inboundPort: 4143, tapPort: 4190}\n",
            ),
            workload(
                "demo",
                "books",
                "app: books",
                "  addresses: [10.0.0.2]\n  ports: [{port: 7001}]\n  meshed: true\n  proxy: {address: 10.0.0.9, tapPort: 5190}\n",
            ),
            workload(
                "demo",
                "books-old",
                "app: books",
                "  addresses: [10.0.0.3]\n  ports: [{port: 7001}]\n  meshed: false\n",
            ),
            workload(
                "other",
                "web",
                "app: web",
                "  addresses: [127.0.0.1]\n  ports: [{port: 7100}]\n  meshed: true\n",
            ),
        ]
    }

    fn resource(kind: ResourceKind, namespace: &str, name: Option<&str>) -> Resource {
        Resource {
            kind,
            namespace: namespace.into(),
            name: name.map(str::to_string),
        }
    }

    fn names(targets: &[TapTarget]) -> Vec<String> {
        targets
            .iter()
            .map(|target| {
                format!(
                    "{}/{}@{}",
                    target.workload.namespace, target.workload.name, target.tap_addr
                )
            })
            .collect()
    }

    #[test]
    fn resolves_targets() {
        let workloads = mesh();
        let service: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "books", "namespace": "demo"},
            "spec": {"selector": {"app": "books"}}
        }))
        .unwrap();
        let cases: [(Resource, Option<&Service>, &[&str]); 6] = [
            (
                resource(ResourceKind::Workload, "demo", Some("web")),
                None,
                &["demo/web@127.0.0.1:4190"],
            ),
            (
                resource(ResourceKind::Service, "demo", Some("books")),
                Some(&service),
                &["demo/books@10.0.0.9:5190"],
            ),
            (
                resource(ResourceKind::Service, "demo", Some("books")),
                None,
                &[],
            ),
            (
                resource(ResourceKind::Namespace, "demo", None),
                None,
                &["demo/books@10.0.0.9:5190", "demo/web@127.0.0.1:4190"],
            ),
            (
                resource(ResourceKind::Workload, "demo", Some("books-old")),
                None,
                &[],
            ),
            (
                resource(ResourceKind::Namespace, "nowhere", None),
                None,
                &[],
            ),
        ];
        for (wanted, service, expected) in cases {
            assert_eq!(
                names(&resolve(&wanted, &workloads, service)),
                expected,
                "{wanted}"
            );
        }
    }

    #[test]
    fn finds_peers() {
        let peers = Peers::new(&mesh());
        let name = |namespace: &str, name: &str| WorkloadName {
            namespace: namespace.into(),
            name: name.into(),
        };
        let identities = [
            (
                "web.demo.serviceaccount.identity.weft.cluster.local",
                Some(name("demo", "web")),
            ),
            (
                "books.demo.serviceaccount.identity.weft.cluster.local",
                Some(name("demo", "books")),
            ),
            (
                "ghost.demo.serviceaccount.identity.weft.cluster.local",
                Some(name("demo", "")),
            ),
            ("web.demo.example.com", None),
            ("", None),
        ];
        for (identity, expected) in identities {
            assert_eq!(peers.by_identity(identity), expected, "{identity}");
        }
        let addresses = [
            ("127.0.0.1:7000", Some(name("demo", "web"))),
            ("127.0.0.1:7100", Some(name("other", "web"))),
            ("127.0.0.1:4143", Some(name("demo", "web"))),
            ("127.0.0.1:50000", None),
            ("10.0.0.2:50000", Some(name("demo", "books"))),
            ("10.9.9.9:80", None),
        ];
        for (address, expected) in addresses {
            assert_eq!(
                peers.by_address(address.parse().unwrap()),
                expected,
                "{address}"
            );
        }
    }
}
