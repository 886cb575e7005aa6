//! Endpoint sets of a `service:port` and the diffs published to subscribers
//! (pure: [`endpoints_of`] computes a set, [`diff`] compares two).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use k8s_openapi::api::core::v1::Service;
use weft_core::service::{selects, target_port};
use weft_core::workload::{Labels, ProxyEndpoint, Workload, WorkloadOwner};

use super::ServicePort;

/// One address serving a `service:port`: a workload address and the target
/// port resolved on that workload, with what a proxy labels it by. On
/// Kubernetes the workload is the pod an EndpointSlice names, the zone the
/// slice's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Workload address + resolved target port.
    pub address: SocketAddr,
    /// The workload's name.
    pub workload: String,
    /// The workload's namespace.
    pub namespace: String,
    /// The workload's labels.
    pub labels: Labels,
    /// The workload's service account.
    pub service_account: String,
    /// Where its proxy listens, when meshed.
    pub proxy: Option<ProxyEndpoint>,
    /// What runs the workload (a pod's Deployment, StatefulSet, ...), if known.
    pub owner: Option<WorkloadOwner>,
    /// The endpoint's zone (EndpointSlice `zone`), if known.
    pub zone: Option<String>,
    /// The zones that should use it (EndpointSlice `hints.forZones`).
    pub for_zones: Vec<String>,
}

impl Endpoint {
    /// The endpoint for `workload` at `address`: unmeshed on a port its
    /// pod skips inbound (weft-init does not send it to the proxy, so a
    /// client must not speak mutual TLS or a transport header to it).
    pub fn new(workload: &Workload, namespace: &str, address: SocketAddr) -> Self {
        Self {
            address,
            workload: workload.metadata.name.clone().unwrap_or_default(),
            namespace: namespace.to_string(),
            labels: workload.labels().clone(),
            service_account: workload.service_account().to_string(),
            proxy: workload
                .proxy_endpoint()
                .filter(|_| !workload.skips_inbound_port(address.port())),
            owner: workload.spec.owner.clone(),
            zone: None,
            for_zones: Vec::new(),
        }
    }

    /// An endpoint whose workload the catalog does not know (yet): a pod an
    /// EndpointSlice names before its Workload arrives, or an address with
    /// no pod at all (`workload` empty). Unmeshed, no labels, no service
    /// account.
    pub fn unknown(workload: &str, namespace: &str, address: SocketAddr) -> Self {
        Self {
            address,
            workload: workload.to_string(),
            namespace: namespace.to_string(),
            labels: Labels::default(),
            service_account: String::new(),
            proxy: None,
            owner: None,
            zone: None,
            for_zones: Vec::new(),
        }
    }

    /// The same endpoint in `zone`, hinted for `for_zones`.
    pub fn in_zone(self, zone: Option<String>, for_zones: Vec<String>) -> Self {
        Self {
            zone,
            for_zones,
            ..self
        }
    }

    /// Whether a weft proxy fronts it.
    pub fn is_meshed(&self) -> bool {
        self.proxy.is_some()
    }
}

/// An endpoint question: a `service:port`, or one instance of it by its
/// endpoint hostname (`web-0.web.shop.svc.cluster.local`, a StatefulSet
/// pod). What endpoint subscriptions are keyed by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointTarget {
    /// The service and port.
    pub target: ServicePort,
    /// Only the endpoint with this hostname, when set.
    pub hostname: Option<String>,
}

impl EndpointTarget {
    /// Every endpoint of `target`.
    pub fn service(target: ServicePort) -> Self {
        Self {
            target,
            hostname: None,
        }
    }

    /// The endpoint of `target` whose hostname is `hostname`.
    pub fn instance(target: ServicePort, hostname: &str) -> Self {
        Self {
            target,
            hostname: Some(hostname.to_string()),
        }
    }
}

impl std::fmt::Display for EndpointTarget {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.hostname {
            Some(hostname) => write!(formatter, "{hostname}.{}", self.target),
            None => self.target.fmt(formatter),
        }
    }
}

/// A `service:port`'s endpoints, by address.
pub type EndpointSet = BTreeMap<SocketAddr, Endpoint>;

/// What a subscriber to a `service:port` receives: first the current set (an
/// `Add`, or `NoEndpoints`), then only changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointUpdate {
    /// These addresses are new or changed (overwrite by address).
    Add(Vec<Endpoint>),
    /// These addresses are gone.
    Remove(Vec<SocketAddr>),
    /// The set is empty; `exists` says whether the service exists at all.
    NoEndpoints {
        /// Whether the service exists.
        exists: bool,
    },
}

/// The endpoints of `service:port` among `workloads` (all in the service's
/// namespace or not: `selects` checks). Workloads lacking a named target port
/// contribute nothing.
pub fn endpoints_of<'workloads>(
    service: &Service,
    namespace: &str,
    service_port: u16,
    workloads: impl Iterator<Item = &'workloads Workload>,
) -> EndpointSet {
    let target = target_port(service, service_port);
    let mut set = EndpointSet::new();
    for workload in workloads.filter(|workload| selects(service, workload)) {
        let Some(port) = target.resolve(workload) else {
            continue;
        };
        for ip in &workload.spec.addresses {
            let address = SocketAddr::new(*ip, port);
            set.insert(address, Endpoint::new(workload, namespace, address));
        }
    }
    set
}

/// The first message for a new subscriber: the whole current set.
pub fn snapshot(set: &EndpointSet, exists: bool) -> EndpointUpdate {
    if set.is_empty() {
        EndpointUpdate::NoEndpoints { exists }
    } else {
        EndpointUpdate::Add(set.values().cloned().collect())
    }
}

/// The updates that take a subscriber from `old` to `new`: `NoEndpoints` when
/// the set becomes empty (or the service appears/disappears while empty);
/// otherwise `Remove` of gone addresses, then `Add` of new and changed ones.
pub fn diff(
    old: &EndpointSet,
    old_exists: bool,
    new: &EndpointSet,
    new_exists: bool,
) -> Vec<EndpointUpdate> {
    if new.is_empty() {
        if !old.is_empty() || old_exists != new_exists {
            return vec![EndpointUpdate::NoEndpoints { exists: new_exists }];
        }
        return Vec::new();
    }
    let mut updates = Vec::new();
    let removed: Vec<SocketAddr> = old
        .keys()
        .filter(|address| !new.contains_key(address))
        .copied()
        .collect();
    if !removed.is_empty() {
        updates.push(EndpointUpdate::Remove(removed));
    }
    let added: Vec<Endpoint> = new
        .values()
        .filter(|endpoint| old.get(&endpoint.address) != Some(*endpoint))
        .cloned()
        .collect();
    if !added.is_empty() {
        updates.push(EndpointUpdate::Add(added));
    }
    updates
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(address: &str, service_account: &str) -> Endpoint {
        Endpoint {
            address: address.parse().unwrap(),
            workload: "w".into(),
            namespace: "shop".into(),
            labels: Labels::default(),
            service_account: service_account.into(),
            proxy: None,
            owner: None,
            zone: None,
            for_zones: Vec::new(),
        }
    }

    fn set(endpoints: &[&Endpoint]) -> EndpointSet {
        endpoints
            .iter()
            .map(|endpoint| (endpoint.address, (*endpoint).clone()))
            .collect()
    }

    /// A pod whose weft-init skips a port is unmeshed there and meshed on
    /// its other ports; weft's annotation wins over Linkerd's.
    #[test]
    fn skipped_inbound_ports_are_unmeshed_endpoints() {
        /// (annotations, port, meshed there)
        type Case = (&'static [(&'static str, &'static str)], u16, bool);
        let cases: &[Case] = &[
            (&[], 8080, true),
            (&[("config.weft.io/skip-inbound-ports", "8081")], 8080, true),
            (
                &[("config.weft.io/skip-inbound-ports", "8081")],
                8081,
                false,
            ),
            (
                &[("config.linkerd.io/skip-inbound-ports", "8000-8100")],
                8081,
                false,
            ),
            (
                &[
                    ("config.weft.io/skip-inbound-ports", "9000"),
                    ("config.linkerd.io/skip-inbound-ports", "8081"),
                ],
                8081,
                true,
            ),
        ];
        for (annotations, port, meshed) in cases {
            let mut workload: Workload = serde_json::from_value(serde_json::json!({
                "apiVersion": "weft.dev/v1alpha1",
                "kind": "Workload",
                "metadata": {"name": "db-0", "namespace": "shop"},
                "spec": {"serviceAccount": "db", "addresses": ["10.0.0.9"], "meshed": true},
            }))
            .unwrap();
            workload.metadata.annotations = Some(
                annotations
                    .iter()
                    .map(|(name, value)| (name.to_string(), value.to_string()))
                    .collect(),
            );
            let address = SocketAddr::from(([10, 0, 0, 9], *port));
            let endpoint = Endpoint::new(&workload, "shop", address);
            assert_eq!(endpoint.is_meshed(), *meshed, "{annotations:?} port {port}");
        }
    }

    #[test]
    fn diffs() {
        let a = endpoint("10.0.0.1:80", "web");
        let b = endpoint("10.0.0.2:80", "web");
        let b_changed = endpoint("10.0.0.2:80", "other");
        let address = |endpoint: &Endpoint| endpoint.address;
        type Case = (
            &'static str,
            EndpointSet,
            bool,
            EndpointSet,
            bool,
            Vec<EndpointUpdate>,
        );
        let cases: Vec<Case> = vec![
            ("unchanged", set(&[&a]), true, set(&[&a]), true, vec![]),
            (
                "added",
                set(&[&a]),
                true,
                set(&[&a, &b]),
                true,
                vec![EndpointUpdate::Add(vec![b.clone()])],
            ),
            (
                "removed",
                set(&[&a, &b]),
                true,
                set(&[&a]),
                true,
                vec![EndpointUpdate::Remove(vec![address(&b)])],
            ),
            (
                "replaced",
                set(&[&a]),
                true,
                set(&[&b]),
                true,
                vec![
                    EndpointUpdate::Remove(vec![address(&a)]),
                    EndpointUpdate::Add(vec![b.clone()]),
                ],
            ),
            (
                "changed",
                set(&[&b]),
                true,
                set(&[&b_changed]),
                true,
                vec![EndpointUpdate::Add(vec![b_changed.clone()])],
            ),
            (
                "emptied",
                set(&[&a]),
                true,
                set(&[]),
                true,
                vec![EndpointUpdate::NoEndpoints { exists: true }],
            ),
            (
                "service deleted",
                set(&[&a]),
                true,
                set(&[]),
                false,
                vec![EndpointUpdate::NoEndpoints { exists: false }],
            ),
            (
                "service created empty",
                set(&[]),
                false,
                set(&[]),
                true,
                vec![EndpointUpdate::NoEndpoints { exists: true }],
            ),
            ("still empty", set(&[]), true, set(&[]), true, vec![]),
            (
                "first endpoint",
                set(&[]),
                true,
                set(&[&a]),
                true,
                vec![EndpointUpdate::Add(vec![a.clone()])],
            ),
        ];
        for (name, old, old_exists, new, new_exists, expected) in cases {
            assert_eq!(diff(&old, old_exists, &new, new_exists), expected, "{name}");
        }
    }

    #[test]
    fn snapshots() {
        assert_eq!(
            snapshot(&EndpointSet::new(), false),
            EndpointUpdate::NoEndpoints { exists: false }
        );
        let a = endpoint("10.0.0.1:80", "web");
        assert_eq!(snapshot(&set(&[&a]), true), EndpointUpdate::Add(vec![a]));
    }
}
