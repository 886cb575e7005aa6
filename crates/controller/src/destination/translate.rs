//! Pure conversions between the catalog and the Destination API's protobuf
//! messages, plus the parsing of the `path` a proxy asks about.
//!
//! ```text
//! "web.shop.svc.cluster.local:80" ─parse_target─► Target::Service(web.shop, 80)
//! "web-0.web.shop.svc.cluster.local:80" ─parse_target─► Target::Instance(web-0, web.shop, 80)
//! "10.96.0.10:80"                 ─parse_target─► Target::Address(10.96.0.10:80)
//! r#"{"ns":"shop","nodeName":"n1","pod":"web-1"}"# ─client_namespace─► Some("shop")
//! EndpointUpdate ─update─► Update{Add(WeightedAddrSet) | Remove(AddrSet) | NoEndpoints}
//! Profile        ─profile─► DestinationProfile{routes, retry_budget, dst_overrides, …}
//! Endpoint       ─endpoint_profile─► DestinationProfile{endpoint, retry_budget}
//! ```
//!
//! With identities on, meshed endpoints carry `tls_identity` (their proxy's
//! identity) and `protocol_hint` (HTTP/2, and the inbound port that takes a
//! transport header). Those fronted by a weft proxy also carry
//! `resource_ref` naming their weft.dev Workload: the hint that tells weft
//! proxies the peer restores `l5d-orig-header-case` (see [`weft_proxy_ref`]).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use linkerd2_proxy_api::destination as proto;
use linkerd2_proxy_api::http_types::{HttpMethod, http_method};
use linkerd2_proxy_api::meta;
use linkerd2_proxy_api::net::{IpAddress, TcpAddress};
use weft_core::names::ServiceName;
use weft_core::profile::{RequestMatch, ResponseClass, ResponseMatch, RetryBudget, RouteSpec};
use weft_core::workload::{self, ProxyImplementation};

use crate::catalog::{Endpoint, EndpointUpdate, Profile};
use crate::identity::{IdentityDomain, WorkloadIdentity};

/// The weight of every address (Linkerd's constant).
pub const ENDPOINT_WEIGHT: u32 = 10_000;
/// The port assumed when a path carries none (Linkerd's `getHostAndPort`).
pub const DEFAULT_PORT: u16 = 80;

/// Why a request path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    /// Not `host[:port]`, the port is not 1–65535, or the host is neither an
    /// IP address nor a fully-qualified service name. Answered with
    /// `InvalidArgument`.
    #[error("Invalid authority: {0}")]
    InvalidAuthority(String),
}

/// What a request path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A service by name (`<name>.<namespace>.svc.<domain>[.]:<port>`).
    Service {
        /// The service.
        service: ServiceName,
        /// The requested port.
        port: u16,
    },
    /// An address (`ip:port`): a service's clusterIP, a workload, or neither.
    Address(SocketAddr),
    /// One endpoint of a service by its hostname
    /// (`<hostname>.<name>.<namespace>.svc.<domain>[.]:<port>`): a
    /// StatefulSet pod's DNS name, as Linkerd resolves it.
    Instance {
        /// The endpoint's hostname (EndpointSlice `hostname`).
        hostname: String,
        /// The service.
        service: ServiceName,
        /// The requested port.
        port: u16,
    },
}

/// Parses a request path as Linkerd does: `host[:port]` (port 80 when absent,
/// 1–65535 otherwise); the host is an IP (IPv6 in brackets when a port
/// follows) or a service name, with or without a trailing dot; a name with
/// one more label in front names one endpoint of the service by hostname.
pub fn parse_target(path: &str, cluster_domain: &str) -> Result<Target, TranslateError> {
    let invalid = || TranslateError::InvalidAuthority(path.to_string());
    if let Ok(address) = path.parse::<SocketAddr>() {
        if address.port() == 0 {
            return Err(invalid());
        }
        return Ok(Target::Address(address));
    }
    if let Ok(ip) = path.parse::<IpAddr>() {
        return Ok(Target::Address(SocketAddr::new(ip, DEFAULT_PORT)));
    }
    let (host, port) = match path.rsplit_once(':') {
        Some((host, port)) => {
            let port: u16 = port.parse().map_err(|_| invalid())?;
            if port == 0 {
                return Err(invalid());
            }
            (host, port)
        }
        None => (path, DEFAULT_PORT),
    };
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(Target::Address(SocketAddr::new(ip, port)));
    }
    // Only fully-qualified names, as Linkerd: relative ones are not resolvable.
    let host = host.to_ascii_lowercase();
    let suffix = format!(".svc.{cluster_domain}");
    if !host.strip_suffix('.').unwrap_or(&host).ends_with(&suffix) {
        return Err(invalid());
    }
    if let Some(service) = ServiceName::parse(&host, cluster_domain) {
        return Ok(Target::Service { service, port });
    }
    let (hostname, rest) = host.split_once('.').ok_or_else(invalid)?;
    let service = ServiceName::parse(rest, cluster_domain)
        .filter(|_| is_dns_label(hostname))
        .ok_or_else(invalid)?;
    Ok(Target::Instance {
        hostname: hostname.to_string(),
        service,
        port,
    })
}

/// Whether `label` is a DNS label (RFC 1123: letters, digits, inner hyphens).
fn is_dns_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || character == '-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// The client's namespace from the `context_token` a proxy sends with each
/// request: Linkerd's JSON form `{"ns":"<ns>","nodeName":…,"pod":…}` or the
/// older `ns:<ns>`. Anything else — empty, malformed, no or empty `ns` — is
/// no namespace (Linkerd logs and ignores such tokens).
pub fn client_namespace(context_token: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct ContextToken {
        ns: Option<String>,
    }
    let token = context_token.trim();
    let namespace = if token.starts_with('{') {
        serde_json::from_str::<ContextToken>(token).ok()?.ns?
    } else {
        token.strip_prefix("ns:")?.trim().to_string()
    };
    Some(namespace).filter(|namespace| !namespace.is_empty())
}

/// The set-level labels of a service's endpoints: `service`, `namespace`.
pub fn set_labels(service: &ServiceName) -> HashMap<String, String> {
    HashMap::from([
        ("service".to_string(), service.name.clone()),
        ("namespace".to_string(), service.namespace.clone()),
    ])
}

/// One catalog update for a subscriber, with `labels` on each `Add`; with
/// `mesh` (identity on), meshed endpoints carry their identity and hints.
pub fn update(
    endpoint_update: EndpointUpdate,
    labels: &HashMap<String, String>,
    mesh: Option<&MeshHints>,
) -> proto::Update {
    let update = match endpoint_update {
        EndpointUpdate::Add(endpoints) => proto::update::Update::Add(proto::WeightedAddrSet {
            addrs: endpoints
                .iter()
                .map(|endpoint| weighted_addr(endpoint, mesh))
                .collect(),
            metric_labels: labels.clone(),
        }),
        EndpointUpdate::Remove(addresses) => proto::update::Update::Remove(proto::AddrSet {
            addrs: addresses.into_iter().map(tcp_address).collect(),
        }),
        EndpointUpdate::NoEndpoints { exists } => {
            proto::update::Update::NoEndpoints(proto::NoEndpoints { exists })
        }
    };
    proto::Update {
        update: Some(update),
    }
}

/// An address outside the mesh: one `Add` of the bare address (weight
/// 10000, no labels), as Linkerd 2.9 answers `Get` for unknown IPs.
pub fn bare_address_update(address: SocketAddr) -> proto::Update {
    proto::Update {
        update: Some(proto::update::Update::Add(proto::WeightedAddrSet {
            addrs: vec![proto::WeightedAddr {
                addr: Some(tcp_address(address)),
                weight: ENDPOINT_WEIGHT,
                ..Default::default()
            }],
            metric_labels: HashMap::new(),
        })),
    }
}

/// What meshed endpoints are sent with when the mesh has identities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshHints {
    /// The identity names' domain.
    pub domain: IdentityDomain,
    /// Whether HTTP/1.1 is upgraded to HTTP/2 between proxies (the `H2`
    /// protocol hint; `--disable-h2-upgrade` turns it off, as Linkerd's).
    pub h2_upgrade: bool,
}

/// One endpoint on the wire: address, weight 10000 and the labels a proxy
/// prefixes with `dst_` ([`endpoint_labels`]). A
/// meshed endpoint, when the mesh has identities (`mesh`), also carries its
/// proxy's identity (`tls_identity`: clients require it with mutual TLS) and
/// protocol hint: HTTP/2 between proxies (unless the upgrade is off), and
/// the inbound port that takes a transport header (`opaque_transport`);
/// behind a weft proxy, `resource_ref` names its Workload ([`weft_proxy_ref`]).
pub fn weighted_addr(endpoint: &Endpoint, mesh: Option<&MeshHints>) -> proto::WeightedAddr {
    let meshed = endpoint.proxy.as_ref().zip(mesh);
    let tls_identity = meshed.map(|(_, hints)| {
        let name = hints.domain.dns_name(&WorkloadIdentity::new(
            endpoint.namespace.clone(),
            endpoint.service_account.clone(),
        ));
        proto::TlsIdentity {
            strategy: Some(proto::tls_identity::Strategy::DnsLikeIdentity(
                proto::tls_identity::DnsLikeIdentity { name: name.clone() },
            )),
            server_name: Some(proto::tls_identity::DnsLikeIdentity { name }),
        }
    });
    let protocol_hint = meshed.map(|(proxy, hints)| proto::ProtocolHint {
        protocol: hints
            .h2_upgrade
            .then(|| proto::protocol_hint::Protocol::H2(proto::protocol_hint::H2::default())),
        opaque_transport: Some(proto::protocol_hint::OpaqueTransport {
            inbound_port: u32::from(proxy.inbound_port),
        }),
    });
    let resource_ref = meshed.and_then(|_| weft_proxy_ref(endpoint));
    proto::WeightedAddr {
        tls_identity,
        protocol_hint,
        resource_ref,
        addr: Some(tcp_address(endpoint.address)),
        weight: ENDPOINT_WEIGHT,
        metric_labels: endpoint_labels(endpoint),
        ..Default::default()
    }
}

/// An endpoint's metric labels: `workload`, `serviceaccount`, `namespace`;
/// for a workload with an owner (a Kubernetes pod), as Linkerd's: `pod` and
/// the owner's kind lowercased (`deployment`, `statefulset`, `daemonset`,
/// `job`, `cronjob`, `replicaset`) naming the owner; `zone` when known.
pub fn endpoint_labels(endpoint: &Endpoint) -> HashMap<String, String> {
    let mut labels = HashMap::from([
        ("workload".to_string(), endpoint.workload.clone()),
        (
            "serviceaccount".to_string(),
            endpoint.service_account.clone(),
        ),
        ("namespace".to_string(), endpoint.namespace.clone()),
    ]);
    if let Some(owner) = &endpoint.owner {
        labels.insert("pod".to_string(), endpoint.workload.clone());
        let kind = owner.kind.to_ascii_lowercase();
        // A kind that would overwrite one of the labels above is left out.
        if !labels.contains_key(&kind) && !kind.is_empty() {
            labels.insert(kind, owner.name.clone());
        }
    }
    if let Some(zone) = &endpoint.zone {
        labels.insert("zone".to_string(), zone.clone());
    }
    labels
}

/// The hint that a weft proxy fronts `endpoint`: `resource_ref` naming its
/// `weft.dev` Workload, set only when the mesh file leaves the workload's
/// proxy a weft proxy (`proxy.implementation`, default `weft`). Weft proxies
/// send weft's extensions (`l5d-orig-header-case`) only to endpoints with it.
///
/// Why this field: linkerd2-proxy reads `addr`, `weight`, `metric_labels`
/// (every one exported as a `dst_*` metric label), `tls_identity`,
/// `protocol_hint`, `authority_override` and `http2` of a `WeightedAddr`, and
/// ignores `resource_ref`; so a linkerd2-proxy reading the same answers
/// behaves and labels its metrics exactly as before.
pub fn weft_proxy_ref(endpoint: &Endpoint) -> Option<meta::Metadata> {
    let proxy = endpoint.proxy.as_ref()?;
    (proxy.implementation == ProxyImplementation::Weft).then(|| meta::Metadata {
        kind: Some(meta::metadata::Kind::Resource(meta::Resource {
            group: WEFT_GROUP.to_string(),
            kind: workload::KIND.to_string(),
            name: endpoint.workload.clone(),
            namespace: endpoint.namespace.clone(),
            ..Default::default()
        })),
    })
}

/// The API group of weft's own kinds (`weft.dev/v1alpha1`).
pub const WEFT_GROUP: &str = "weft.dev";

/// An address on the wire.
pub fn tcp_address(address: SocketAddr) -> TcpAddress {
    TcpAddress {
        ip: Some(IpAddress::from(address.ip())),
        port: u32::from(address.port()),
    }
}

/// A service's profile on the wire.
pub fn profile(profile: &Profile) -> proto::DestinationProfile {
    proto::DestinationProfile {
        fully_qualified_name: profile.fully_qualified_name.clone(),
        opaque_protocol: profile.opaque_protocol,
        routes: profile.routes.iter().map(route).collect(),
        retry_budget: Some(retry_budget(&profile.retry_budget)),
        dst_overrides: profile
            .dst_overrides
            .iter()
            .map(|destination| proto::WeightedDst {
                authority: destination.authority.clone(),
                weight: destination.weight,
                backend_ref: None,
            })
            .collect(),
        ..Default::default()
    }
}

/// The profile of a workload address: no routes, no overrides, the default
/// budget and `endpoint` set so the proxy connects directly.
pub fn endpoint_profile(
    endpoint: &Endpoint,
    mesh: Option<&MeshHints>,
) -> proto::DestinationProfile {
    proto::DestinationProfile {
        retry_budget: Some(retry_budget(&RetryBudget::default())),
        endpoint: Some(weighted_addr(endpoint, mesh)),
        ..Default::default()
    }
}

/// The profile of anything the mesh does not know: empty but for the
/// default retry budget (Linkerd 2.9's default profile).
pub fn default_profile() -> proto::DestinationProfile {
    proto::DestinationProfile {
        retry_budget: Some(retry_budget(&RetryBudget::default())),
        ..Default::default()
    }
}

fn route(route: &RouteSpec) -> proto::Route {
    proto::Route {
        condition: Some(request_match(&route.condition)),
        response_classes: route.response_classes.iter().map(response_class).collect(),
        metrics_labels: HashMap::from([("route".to_string(), route.name.clone())]),
        is_retryable: route.is_retryable,
        timeout: route
            .timeout
            .as_ref()
            .map(|timeout| duration(timeout.value())),
    }
}

fn retry_budget(budget: &RetryBudget) -> proto::RetryBudget {
    proto::RetryBudget {
        retry_ratio: budget.retry_ratio as f32,
        min_retries_per_second: budget.min_retries_per_second,
        ttl: Some(duration(budget.ttl.value())),
    }
}

fn duration(value: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(value.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(value.subsec_nanos()).unwrap_or(0),
    }
}

/// Each field that is set becomes one matcher; one is used alone, several
/// are wrapped in `all` (Linkerd's rule).
fn request_match(condition: &RequestMatch) -> proto::RequestMatch {
    use proto::request_match::{Match, Seq};
    let sequence = |conditions: &Vec<RequestMatch>| Seq {
        matches: conditions.iter().map(request_match).collect(),
    };
    let mut matchers: Vec<Match> = Vec::new();
    if let Some(all) = &condition.all {
        matchers.push(Match::All(sequence(all)));
    }
    if let Some(any) = &condition.any {
        matchers.push(Match::Any(sequence(any)));
    }
    if let Some(method) = &condition.method {
        matchers.push(Match::Method(http_method(method)));
    }
    if let Some(not) = &condition.not {
        matchers.push(Match::Not(Box::new(request_match(not))));
    }
    if let Some(path) = &condition.path_regex {
        matchers.push(Match::Path(proto::PathMatch {
            regex: path.as_str().to_string(),
        }));
    }
    let single = if matchers.len() == 1 {
        matchers.pop()
    } else {
        Some(Match::All(Seq {
            matches: matchers
                .into_iter()
                .map(|matcher| proto::RequestMatch {
                    r#match: Some(matcher),
                })
                .collect(),
        }))
    };
    proto::RequestMatch { r#match: single }
}

fn http_method(method: &str) -> HttpMethod {
    use http_method::Registered;
    let registered = Registered::from_str_name(method);
    HttpMethod {
        r#type: Some(match registered {
            Some(registered) => http_method::Type::Registered(registered as i32),
            None => http_method::Type::Unregistered(method.to_string()),
        }),
    }
}

fn response_class(class: &ResponseClass) -> proto::ResponseClass {
    proto::ResponseClass {
        condition: Some(response_match(&class.condition)),
        is_failure: class.is_failure,
    }
}

fn response_match(condition: &ResponseMatch) -> proto::ResponseMatch {
    use proto::response_match::{Match, Seq};
    let sequence = |conditions: &Vec<ResponseMatch>| Seq {
        matches: conditions.iter().map(response_match).collect(),
    };
    let mut matchers: Vec<Match> = Vec::new();
    if let Some(all) = &condition.all {
        matchers.push(Match::All(sequence(all)));
    }
    if let Some(any) = &condition.any {
        matchers.push(Match::Any(sequence(any)));
    }
    if let Some(not) = &condition.not {
        matchers.push(Match::Not(Box::new(response_match(not))));
    }
    if let Some(status) = &condition.status {
        matchers.push(Match::Status(proto::HttpStatusRange {
            min: u32::from(status.min),
            max: u32::from(status.max),
        }));
    }
    let single = if matchers.len() == 1 {
        matchers.pop()
    } else {
        Some(Match::All(Seq {
            matches: matchers
                .into_iter()
                .map(|matcher| proto::ResponseMatch {
                    r#match: Some(matcher),
                })
                .collect(),
        }))
    };
    proto::ResponseMatch { r#match: single }
}

#[cfg(test)]
mod tests;
