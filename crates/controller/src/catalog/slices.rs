//! Endpoints of a `service:port` from the Service's EndpointSlices (pure:
//! [`endpoints_from_slices`]), as on a Kubernetes cluster.
//!
//! ```text
//! Service port 80 ─name─► "http" ─► each slice's port "http" ─► 8080
//! slice endpoint ready, IP of the slice's family ─► 10.1.0.5:8080
//!                targetRef Pod web-0 ─► the Workload web-0 (labels, SA, proxy, owner)
//!                                       unknown yet ─► unmeshed endpoint named web-0
//! ```
//!
//! The endpoint controller already applied readiness and the selector, so
//! no label is matched here: a slice's ready endpoints are the answer.
//! Unready and terminating endpoints are left out; an address listed by
//! two slices is one endpoint.
//!
//! Also here: the catalog's slice store ([`SliceStore`]: which Services a
//! changed pod serves, so only their watches are recomputed) and where a
//! Service's endpoints come from ([`Catalog::endpoints_for`]: its slices
//! when it has any or in slices-only mode, else its selector).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::{IpAddr, SocketAddr};

use k8s_openapi::api::core::v1::{Service, ServicePort as KubernetesServicePort};
use weft_core::endpoint_slice::{AddressType, EndpointSlice, SliceEndpoint};
use weft_core::names::ServiceName;
use weft_core::service::{TargetPort, target_port};
use weft_core::workload::Workload;

use super::endpoints::{Endpoint, EndpointSet, EndpointTarget, endpoints_of};
use super::{Catalog, NamespacedName, Scope};

/// The catalog's EndpointSlices by (namespace, name), in the boxes they
/// were converted into, and which of them name pods of another namespace.
#[derive(Debug, Default, Clone)]
pub(super) struct SliceStore {
    slices: BTreeMap<NamespacedName, Box<EndpointSlice>>,
    /// The slices naming a pod of another namespace (rare): searched, with
    /// a pod's own namespace, for the services a changed pod serves.
    with_foreign_pods: BTreeSet<NamespacedName>,
}

impl SliceStore {
    /// Inserts a slice, returning the one it replaced.
    pub(super) fn insert(
        &mut self,
        name: NamespacedName,
        slice: Box<EndpointSlice>,
    ) -> Option<Box<EndpointSlice>> {
        if slice
            .endpoints
            .iter()
            .any(|endpoint| endpoint.target_namespace.is_some())
        {
            self.with_foreign_pods.insert(name.clone());
        } else {
            self.with_foreign_pods.remove(&name);
        }
        self.slices.insert(name, slice)
    }

    /// Removes a slice, returning it.
    pub(super) fn remove(&mut self, name: &NamespacedName) -> Option<Box<EndpointSlice>> {
        self.with_foreign_pods.remove(name);
        self.slices.remove(name)
    }

    /// Whether there are none.
    pub(super) fn is_empty(&self) -> bool {
        self.slices.is_empty()
    }

    /// The EndpointSlices of the Service `namespace/service`, in name order.
    pub(super) fn of_service<'a>(
        &'a self,
        namespace: &'a str,
        service: &'a str,
    ) -> impl Iterator<Item = &'a EndpointSlice> + 'a {
        self.slices
            .range((namespace.to_string(), String::new())..)
            .take_while(move |((slice_namespace, _), _)| slice_namespace == namespace)
            .map(|(_, slice)| slice.as_ref())
            .filter(move |slice| slice.service.as_deref() == Some(service))
    }

    /// The Services (namespace, name) whose slices name one of `pods`
    /// (pod names by namespace) as an endpoint's pod. Scans the slices of
    /// the pods' namespaces (and the few naming pods elsewhere) without
    /// allocating per endpoint: this runs for every pod change.
    pub(super) fn services_serving(&self, pods: &[(&str, &str)]) -> HashSet<NamespacedName> {
        let namespaces: BTreeSet<&str> = pods.iter().map(|(namespace, _)| *namespace).collect();
        let local = namespaces.into_iter().flat_map(|namespace| {
            self.slices
                .range((namespace.to_string(), String::new())..)
                .take_while(move |((slice_namespace, _), _)| slice_namespace == namespace)
        });
        let foreign = self
            .with_foreign_pods
            .iter()
            .filter_map(|key| self.slices.get_key_value(key));
        let mut services = HashSet::new();
        for ((slice_namespace, _), slice) in local.chain(foreign) {
            let Some(service) = &slice.service else {
                continue;
            };
            let serves = slice.endpoints.iter().any(|endpoint| {
                let namespace = endpoint
                    .target_namespace
                    .as_deref()
                    .unwrap_or(slice_namespace);
                endpoint.target_pod.as_deref().is_some_and(|pod| {
                    pods.iter()
                        .any(|(pod_namespace, name)| *name == pod && *pod_namespace == namespace)
                })
            });
            if serves {
                services.insert((slice_namespace.clone(), service.clone()));
            }
        }
        services
    }
}

/// Where a Service's endpoints come from.
impl Catalog {
    /// Makes every Service's endpoints come from its EndpointSlices only
    /// (`true`: a Kubernetes source, where a Service whose slices are not
    /// written yet has no endpoints), or from its slices when it has any
    /// and else its selector (`false`, the default: a mesh file).
    /// Republishes every endpoint answer.
    pub fn set_endpoints_from_slices(&mut self, from_slices: bool) {
        if self.endpoints_from_slices != from_slices {
            self.endpoints_from_slices = from_slices;
            self.refresh(Scope::All);
        }
    }

    /// Whether every Service's endpoints come from its slices only.
    pub fn endpoints_from_slices(&self) -> bool {
        self.endpoints_from_slices
    }

    /// The endpoints of `service:port` (only the one with the target's
    /// hostname, when set), or `None` when the service does not exist. From
    /// the Service's slices when it has any or slices are the only source
    /// ([`Self::set_endpoints_from_slices`]); else from the Workloads its
    /// selector matches, where a Workload's name stands for its hostname.
    pub fn endpoints_for(&self, request: &EndpointTarget) -> Option<EndpointSet> {
        let target = &request.target;
        let service = self.service(&target.service)?;
        let ServiceName { namespace, name } = &target.service;
        let mut slices = self.objects.slices.of_service(namespace, name).peekable();
        if self.endpoints_from_slices || slices.peek().is_some() {
            let query = SliceQuery {
                service,
                namespace,
                port: target.port,
                hostname: request.hostname.as_deref(),
            };
            return Some(endpoints_from_slices(&query, slices, |namespace, name| {
                self.workload(namespace, name)
            }));
        }
        let mut set = endpoints_of(
            service,
            namespace,
            target.port,
            self.objects.workloads_in(namespace),
        );
        if let Some(hostname) = &request.hostname {
            set.retain(|_, endpoint| endpoint.workload == *hostname);
        }
        Some(set)
    }
}

/// What a slice-based endpoint question asks: the Service, its namespace,
/// the port clients address and, for an instance name
/// (`web-0.web.shop.svc.cluster.local`), the endpoint hostname wanted.
#[derive(Debug, Clone, Copy)]
pub struct SliceQuery<'a> {
    /// The Service.
    pub service: &'a Service,
    /// Its namespace (also the slices' namespace).
    pub namespace: &'a str,
    /// The Service port clients address.
    pub port: u16,
    /// Only the endpoint with this slice `hostname`, when set.
    pub hostname: Option<&'a str>,
}

/// Which slice port serves a Service port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlicePortRule {
    /// The Service declares the port: the slice port with the same name
    /// (`None` for an unnamed Service port). A slice without ports falls
    /// back to a numeric `targetPort`.
    Declared {
        /// The Service port's name.
        name: Option<String>,
        /// Its `targetPort`, for slices that list no port.
        target: TargetPort,
    },
    /// The Service does not declare the port: the number itself on every
    /// endpoint, as Linkerd answers.
    Undeclared(u16),
}

impl SlicePortRule {
    /// The rule for `service_port` on `service` (a TCP port first when a
    /// number is declared for several protocols).
    pub fn of(service: &Service, service_port: u16) -> Self {
        let ports = service
            .spec
            .as_ref()
            .and_then(|spec| spec.ports.as_deref())
            .unwrap_or_default();
        let is_tcp = |port: &KubernetesServicePort| {
            port.protocol
                .as_deref()
                .is_none_or(|protocol| protocol == "TCP")
        };
        let matching = |port: &&KubernetesServicePort| port.port == i32::from(service_port);
        let declared = ports
            .iter()
            .filter(matching)
            .find(|port| is_tcp(port))
            .or_else(|| ports.iter().find(matching));
        match declared {
            Some(port) => SlicePortRule::Declared {
                name: port.name.clone().filter(|name| !name.is_empty()),
                target: target_port(service, service_port),
            },
            None => SlicePortRule::Undeclared(service_port),
        }
    }

    /// The endpoint port on `slice`, or `None` when the slice does not serve it.
    pub fn port_on(&self, slice: &EndpointSlice) -> Option<u16> {
        match self {
            SlicePortRule::Undeclared(port) => Some(*port),
            SlicePortRule::Declared { name, target } => {
                if slice.ports.is_empty() {
                    return match target {
                        TargetPort::Number(port) => Some(*port),
                        TargetPort::Name(_) => None,
                    };
                }
                slice
                    .ports
                    .iter()
                    .find(|port| port.name == *name)
                    .map(|port| port.port)
            }
        }
    }
}

/// Whether `ip` is of the slice's address family (FQDN slices have none).
pub fn family_matches(address_type: AddressType, ip: &IpAddr) -> bool {
    match address_type {
        AddressType::IPv4 => ip.is_ipv4(),
        AddressType::IPv6 => ip.is_ipv6(),
        AddressType::FQDN => false,
    }
}

/// The endpoints of the query's `service:port` from `slices` (the Service's
/// own, in name order): every ready endpoint's addresses of the slice's
/// family at the slice port serving the Service port, described by the
/// Workload its `targetRef` names (`workload(namespace, name)`) or, while
/// that pod is unknown, as an unmeshed endpoint named after the pod. The
/// first slice listing an address keeps it.
pub fn endpoints_from_slices<'slices, 'workloads>(
    query: &SliceQuery<'_>,
    slices: impl IntoIterator<Item = &'slices EndpointSlice>,
    workload: impl Fn(&str, &str) -> Option<&'workloads Workload>,
) -> EndpointSet {
    let rule = SlicePortRule::of(query.service, query.port);
    let mut set = EndpointSet::new();
    for slice in slices {
        let Some(port) = rule.port_on(slice) else {
            continue;
        };
        let wanted = slice.endpoints.iter().filter(|endpoint| {
            endpoint.is_ready()
                && query
                    .hostname
                    .is_none_or(|hostname| endpoint.hostname.as_deref() == Some(hostname))
        });
        for endpoint in wanted {
            for ip in &endpoint.addresses {
                if !family_matches(slice.address_type, ip) {
                    continue;
                }
                let address = SocketAddr::new(*ip, port);
                set.entry(address)
                    .or_insert_with(|| endpoint_of(endpoint, query.namespace, address, &workload));
            }
        }
    }
    set
}

/// Kubernetes' topology-aware routing rule for a client in `zone`: the
/// endpoints hinted for that zone (`hints.forZones`) when every endpoint
/// carries hints and at least one names the zone; else all of them (an
/// unknown client zone, or hints missing or not covering it, mean no
/// filtering, as kube-proxy does).
///
/// Not applied yet: the catalog does not know a client's zone (that needs
/// the client pod's Node and its `topology.kubernetes.io/zone` label).
pub fn hinted_for_zone(set: &EndpointSet, zone: Option<&str>) -> EndpointSet {
    let Some(zone) = zone else {
        return set.clone();
    };
    let every_one_hinted = set.values().all(|endpoint| !endpoint.for_zones.is_empty());
    let hinted: EndpointSet = set
        .iter()
        .filter(|(_, endpoint)| endpoint.for_zones.iter().any(|hint| hint == zone))
        .map(|(address, endpoint)| (*address, endpoint.clone()))
        .collect();
    if every_one_hinted && !hinted.is_empty() {
        hinted
    } else {
        set.clone()
    }
}

/// One slice endpoint at `address`: its pod's Workload when known, with the
/// slice's zone and hints.
fn endpoint_of<'workloads>(
    endpoint: &SliceEndpoint,
    slice_namespace: &str,
    address: SocketAddr,
    workload: &impl Fn(&str, &str) -> Option<&'workloads Workload>,
) -> Endpoint {
    let namespace = endpoint
        .target_namespace
        .as_deref()
        .unwrap_or(slice_namespace);
    let pod = endpoint.target_pod.as_deref();
    let described = match pod.and_then(|pod| workload(namespace, pod)) {
        Some(known) => Endpoint::new(known, namespace, address),
        None => Endpoint::unknown(pod.unwrap_or_default(), namespace, address),
    };
    described.in_zone(endpoint.zone.clone(), endpoint.for_zones.clone())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use weft_core::endpoint_slice::{SliceEndpoint, SlicePort};
    use weft_core::workload::WorkloadMeta;

    use super::*;

    const SERVICE: &str = "
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  clusterIP: None
  ports:
  - {name: http, port: 80, targetPort: http}
  - {name: admin, port: 9990, targetPort: 9991}
";

    const UNNAMED: &str = "
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
";

    fn pod(name: &str, ip: &str) -> Workload {
        let yaml = format!(
            "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {{name: {name}, namespace: shop, labels: {{app: web}}}}\n\
             spec: {{serviceAccount: web, addresses: [{ip}], meshed: true, owner: {{kind: StatefulSet, name: web}}}}\n"
        );
        serde_saphyr::from_str(&yaml).unwrap()
    }

    /// An endpoint of a slice: address, ready, hostname, pod.
    fn endpoint(ip: &str, ready: Option<bool>, pod: Option<&str>) -> SliceEndpoint {
        SliceEndpoint {
            addresses: vec![ip.parse().unwrap()],
            ready,
            serving: ready,
            terminating: ready.map(|ready| !ready),
            hostname: pod.map(str::to_string),
            node_name: None,
            zone: Some("zone-a".into()),
            for_zones: vec!["zone-a".into()],
            target_pod: pod.map(str::to_string),
            target_namespace: None,
        }
    }

    fn slice(
        name: &str,
        address_type: AddressType,
        ports: &[(Option<&str>, u16)],
        endpoints: Vec<SliceEndpoint>,
    ) -> EndpointSlice {
        EndpointSlice {
            metadata: WorkloadMeta {
                name: Some(name.into()),
                namespace: Some("shop".into()),
                ..WorkloadMeta::default()
            },
            service: Some("web".into()),
            address_type,
            ports: ports
                .iter()
                .map(|(name, port)| SlicePort {
                    name: name.map(str::to_string),
                    port: *port,
                    protocol: None,
                    app_protocol: None,
                })
                .collect(),
            endpoints,
        }
    }

    #[test]
    fn port_rules() {
        let service: Service = serde_saphyr::from_str(SERVICE).unwrap();
        let unnamed: Service = serde_saphyr::from_str(UNNAMED).unwrap();
        let named_slice = slice(
            "a",
            AddressType::IPv4,
            &[(Some("http"), 8080), (Some("admin"), 9991)],
            vec![],
        );
        let unnamed_slice = slice("b", AddressType::IPv4, &[(None, 8080)], vec![]);
        let portless = slice("c", AddressType::IPv4, &[], vec![]);
        let cases: &[(&Service, u16, &EndpointSlice, Option<u16>)] = &[
            (&service, 80, &named_slice, Some(8080)),
            (&service, 9990, &named_slice, Some(9991)),
            (&service, 80, &unnamed_slice, None),
            (&service, 80, &portless, None),
            (&service, 9990, &portless, Some(9991)),
            (&service, 5555, &named_slice, Some(5555)),
            (&unnamed, 80, &unnamed_slice, Some(8080)),
            (&unnamed, 80, &named_slice, None),
            (&unnamed, 80, &portless, Some(8080)),
        ];
        for (service, port, slice, expected) in cases {
            assert_eq!(
                SlicePortRule::of(service, *port).port_on(slice),
                *expected,
                "port {port} on slice {:?}",
                slice.metadata.name
            );
        }
    }

    #[test]
    fn families() {
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        let v6: IpAddr = "fd00::1".parse().unwrap();
        let cases = [
            (AddressType::IPv4, v4, true),
            (AddressType::IPv4, v6, false),
            (AddressType::IPv6, v6, true),
            (AddressType::IPv6, v4, false),
            (AddressType::FQDN, v4, false),
        ];
        for (address_type, ip, expected) in cases {
            assert_eq!(
                family_matches(address_type, &ip),
                expected,
                "{address_type:?} {ip}"
            );
        }
    }

    #[test]
    fn ready_endpoints_of_matching_slices() {
        let service: Service = serde_saphyr::from_str(SERVICE).unwrap();
        let pods: HashMap<&str, Workload> = [("web-0", pod("web-0", "10.1.0.1"))].into();
        let lookup = |namespace: &str, name: &str| {
            assert_eq!(namespace, "shop");
            pods.get(name)
        };
        let http = [(Some("http"), 8080)];
        let slices = vec![
            slice(
                "web-a",
                AddressType::IPv4,
                &http,
                vec![
                    endpoint("10.1.0.1", Some(true), Some("web-0")),
                    endpoint("10.1.0.2", None, Some("web-1")),
                    endpoint("10.1.0.3", Some(false), Some("web-2")),
                    endpoint("fd00::9", Some(true), Some("web-9")),
                ],
            ),
            // The same address listed again (unready here): one endpoint, ready.
            slice(
                "web-b",
                AddressType::IPv4,
                &http,
                vec![
                    endpoint("10.1.0.1", Some(false), Some("web-0")),
                    endpoint("10.1.0.4", Some(true), None),
                ],
            ),
            slice(
                "web-c",
                AddressType::IPv6,
                &http,
                vec![endpoint("fd00::1", Some(true), Some("web-5"))],
            ),
            slice(
                "web-d",
                AddressType::IPv4,
                &[(Some("other"), 7000)],
                vec![endpoint("10.1.0.7", Some(true), Some("web-7"))],
            ),
        ];
        let query = |hostname| SliceQuery {
            service: &service,
            namespace: "shop",
            port: 80,
            hostname,
        };
        type Case = (Option<&'static str>, &'static [&'static str]);
        let cases: &[Case] = &[
            (
                None,
                &[
                    "10.1.0.1:8080",
                    "10.1.0.2:8080",
                    "10.1.0.4:8080",
                    "[fd00::1]:8080",
                ],
            ),
            (Some("web-1"), &["10.1.0.2:8080"]),
            (Some("web-2"), &[]),
            (Some("nope"), &[]),
        ];
        for (hostname, expected) in cases {
            let set = endpoints_from_slices(&query(*hostname), &slices, lookup);
            let addresses: Vec<String> = set.keys().map(ToString::to_string).collect();
            assert_eq!(addresses, *expected, "hostname {hostname:?}");
        }
        let set = endpoints_from_slices(&query(None), &slices, lookup);
        let known = &set[&"10.1.0.1:8080".parse().unwrap()];
        assert_eq!(
            (known.workload.as_str(), known.service_account.as_str()),
            ("web-0", "web")
        );
        assert!(known.is_meshed());
        assert_eq!(
            known.owner.as_ref().map(|owner| owner.name.as_str()),
            Some("web")
        );
        assert_eq!(known.zone.as_deref(), Some("zone-a"));
        assert_eq!(known.for_zones, vec!["zone-a".to_string()]);
        let unknown = &set[&"10.1.0.2:8080".parse().unwrap()];
        assert_eq!(
            (unknown.workload.as_str(), unknown.namespace.as_str()),
            ("web-1", "shop")
        );
        assert!(!unknown.is_meshed());
        assert!(unknown.owner.is_none());
        let no_pod = &set[&"10.1.0.4:8080".parse().unwrap()];
        assert_eq!(no_pod.workload, "");
    }

    #[test]
    fn topology_hints() {
        let endpoint = |ip: &str, hints: &[&str]| {
            Endpoint::unknown("pod", "shop", SocketAddr::new(ip.parse().unwrap(), 80))
                .in_zone(None, hints.iter().map(|hint| hint.to_string()).collect())
        };
        let set = |endpoints: &[Endpoint]| -> EndpointSet {
            endpoints
                .iter()
                .map(|endpoint| (endpoint.address, endpoint.clone()))
                .collect()
        };
        let a = endpoint("10.0.0.1", &["zone-a"]);
        let b = endpoint("10.0.0.2", &["zone-b"]);
        let ab = endpoint("10.0.0.3", &["zone-a", "zone-b"]);
        let bare = endpoint("10.0.0.4", &[]);
        type Case<'a> = (&'a str, EndpointSet, Option<&'a str>, EndpointSet);
        let cases: Vec<Case<'_>> = vec![
            (
                "hinted",
                set(&[a.clone(), b.clone(), ab.clone()]),
                Some("zone-a"),
                set(&[a.clone(), ab.clone()]),
            ),
            (
                "unknown client zone",
                set(&[a.clone(), b.clone()]),
                None,
                set(&[a.clone(), b.clone()]),
            ),
            (
                "one endpoint without hints",
                set(&[a.clone(), b.clone(), bare.clone()]),
                Some("zone-a"),
                set(&[a.clone(), b.clone(), bare]),
            ),
            (
                "no endpoint for the zone",
                set(&[a.clone(), b.clone()]),
                Some("zone-c"),
                set(&[a, b]),
            ),
            ("empty", set(&[]), Some("zone-a"), set(&[])),
        ];
        for (name, endpoints, zone, expected) in cases {
            assert_eq!(hinted_for_zone(&endpoints, zone), expected, "{name}");
        }
    }

    #[test]
    fn pods_of_other_namespaces_are_looked_up_there() {
        let service: Service = serde_saphyr::from_str(SERVICE).unwrap();
        let mut foreign = endpoint("10.1.0.1", Some(true), Some("web-0"));
        foreign.target_namespace = Some("elsewhere".into());
        let slices = [slice(
            "web-a",
            AddressType::IPv4,
            &[(Some("http"), 8080)],
            vec![foreign],
        )];
        let seen = std::cell::RefCell::new(Vec::new());
        let set = endpoints_from_slices(
            &SliceQuery {
                service: &service,
                namespace: "shop",
                port: 80,
                hostname: None,
            },
            &slices,
            |namespace, name| {
                seen.borrow_mut().push(format!("{namespace}/{name}"));
                None
            },
        );
        assert_eq!(*seen.borrow(), vec!["elsewhere/web-0".to_string()]);
        assert_eq!(set.values().next().unwrap().namespace, "elsewhere");
    }
}
