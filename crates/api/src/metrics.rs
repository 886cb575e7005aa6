//! Golden metrics: `GET /api/stat`, `/api/trafficsplits`, `/api/routes`
//! and `/api/edges`.

use serde::{Deserialize, Serialize};

/// The kinds of resources rows can be about (`kind=`, `from=KIND/…`, `to=KIND/…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceKind {
    /// A namespace.
    Namespace,
    /// A workload.
    Workload,
    /// A Service (a destination only: `dst_service`).
    Service,
    /// An authority (`host:port` requests were addressed to).
    Authority,
}

impl ResourceKind {
    /// Parses `namespace`, `workload`, `service`, `authority` (and the
    /// plural and short forms `ns`, `wl`, `svc`, `au`).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "namespace" | "namespaces" | "ns" => Some(Self::Namespace),
            "workload" | "workloads" | "wl" => Some(Self::Workload),
            "service" | "services" | "svc" => Some(Self::Service),
            "authority" | "authorities" | "au" => Some(Self::Authority),
            _ => None,
        }
    }

    /// Its name on the wire (`workload`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Namespace => "namespace",
            Self::Workload => "workload",
            Self::Service => "service",
            Self::Authority => "authority",
        }
    }
}

/// Latency quantiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "strict", serde(deny_unknown_fields))]
pub struct Latency {
    /// The median.
    pub p50: Option<f64>,
    /// The 95th percentile.
    pub p95: Option<f64>,
    /// The 99th percentile.
    pub p99: Option<f64>,
}

/// `GET /api/stat`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "strict", serde(deny_unknown_fields))]
pub struct StatResponse {
    /// The window the numbers cover.
    pub window_seconds: u64,
    /// One row per resource.
    pub rows: Vec<StatRow>,
}

/// One resource's golden metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "strict", serde(deny_unknown_fields))]
pub struct StatRow {
    /// What the row is about.
    pub kind: ResourceKind,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Meshed instances (`None` for authorities).
    pub meshed: Option<u64>,
    /// Instances whose proxy answered the last scrape (`None` for
    /// authorities, and with Prometheus as the metrics source).
    pub running: Option<u64>,
    /// Successful responses in the window.
    pub success: u64,
    /// Failed responses in the window.
    pub failure: u64,
    /// success / (success + failure); `None` without requests.
    pub success_rate: Option<f64>,
    /// Requests per second over the window; `None` without requests.
    pub rps: Option<f64>,
    /// Latency quantiles; `None` without requests.
    pub latency_ms: Option<Latency>,
    /// Open TCP connections now.
    pub tcp_connections: Option<u64>,
    /// Bytes read per second.
    pub read_bytes_per_sec: Option<f64>,
    /// Bytes written per second.
    pub write_bytes_per_sec: Option<f64>,
    /// Inbound requests (HTTP) and connections (TCP) the workloads' proxies
    /// authorized in the window (`inbound_{http,tcp}_authz_allow_total`);
    /// `None` when no proxy of the row exports the counters, and for rows
    /// that are not the inbound view of workloads or namespaces.
    #[serde(default)]
    pub authz_allowed: Option<u64>,
    /// Inbound requests and connections the proxies refused in the window
    /// (`inbound_{http,tcp}_authz_deny_total`); `None` as for `authz_allowed`.
    #[serde(default)]
    pub authz_denied: Option<u64>,
}

/// `GET /api/trafficsplits`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "strict", serde(deny_unknown_fields))]
pub struct TrafficSplitsResponse {
    /// The window the numbers cover.
    pub window_seconds: u64,
    /// One row per split and leaf, by namespace, split name, then the
    /// split's order of backends.
    pub rows: Vec<TrafficSplitRow>,
}

/// One leaf of a TrafficSplit: what callers addressing the apex service
/// sent to it (the sources' outbound metrics, `authority` = the apex).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "strict", serde(deny_unknown_fields))]
pub struct TrafficSplitRow {
    /// The split's namespace (its apex's and leaves').
    pub namespace: String,
    /// The split's name.
    pub name: String,
    /// The apex service callers address.
    pub apex: String,
    /// This backend service.
    pub leaf: String,
    /// Its weight as the split writes it (`800m`, `80`).
    pub weight: String,
    /// Successful responses in the window.
    pub success: u64,
    /// Failed responses in the window.
    pub failure: u64,
    /// `null` without requests.
    pub success_rate: Option<f64>,
    /// `null` without requests.
    pub rps: Option<f64>,
    /// `null` without requests.
    pub latency_ms: Option<Latency>,
}

/// `GET /api/routes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "strict", serde(deny_unknown_fields))]
pub struct RoutesResponse {
    /// The window the numbers cover.
    pub window_seconds: u64,
    /// One row per route with traffic, plus `[DEFAULT]`.
    pub rows: Vec<RouteRow>,
    /// The ServiceProfiles whose routes the rows are of: empty when no
    /// profile applies to the resource. Tells "no profile" from "a profile,
    /// but no route metrics in the window" when `rows` is empty.
    #[serde(default)]
    pub profiles: Vec<RouteProfile>,
}

/// A ServiceProfile that applies to a routes query.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "strict", serde(deny_unknown_fields))]
pub struct RouteProfile {
    /// Its namespace.
    pub namespace: String,
    /// Its name (the service's FQDN, `books.demo.svc.cluster.local`).
    pub name: String,
    /// Its routes' names, in order.
    pub routes: Vec<String>,
}

/// One ServiceProfile route's golden metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "strict", serde(deny_unknown_fields))]
pub struct RouteRow {
    /// The route's name (`GET /books/{id}`); `[DEFAULT]` for requests no
    /// route matched.
    pub route: String,
    /// The profile's authority (`dst`).
    pub authority: String,
    /// Effective success rate (after retries).
    pub success_rate: Option<f64>,
    /// Effective requests per second.
    pub rps: Option<f64>,
    /// Success rate of every attempt.
    pub actual_success_rate: Option<f64>,
    /// Attempts per second.
    pub actual_rps: Option<f64>,
    /// Latency quantiles.
    pub latency_ms: Option<Latency>,
}

/// `GET /api/edges`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "strict", serde(deny_unknown_fields))]
pub struct EdgesResponse {
    /// The window the edges were seen in.
    pub window_seconds: u64,
    /// One row per source, destination and TLS status.
    pub rows: Vec<EdgeRow>,
}

/// One edge between workloads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "strict", serde(deny_unknown_fields))]
pub struct EdgeRow {
    /// The source workload.
    pub src: NamedWorkload,
    /// The destination workload.
    pub dst: NamedWorkload,
    /// The source's identity, when the edge is mutual TLS.
    pub client_id: Option<String>,
    /// The destination's identity, when the edge is mutual TLS.
    pub server_id: Option<String>,
    /// Whether the requests went over mutual TLS.
    pub secured: bool,
    /// Why not, when not.
    pub no_tls_reason: Option<String>,
    /// Requests per second.
    pub rps: Option<f64>,
    /// Success rate.
    pub success_rate: Option<f64>,
}

/// A workload by namespace and name (one end of an edge).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "strict", serde(deny_unknown_fields))]
pub struct NamedWorkload {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_shapes_decode() {
        let stat: StatResponse = serde_json::from_str(
            r#"{"window_seconds": 60, "rows": [{"kind": "workload", "namespace": "demo", "name": "books",
            "meshed": 1, "running": 1, "success": 118, "failure": 2, "success_rate": 0.9833, "rps": 2.0,
            "latency_ms": {"p50": 3, "p95": 9, "p99": 19}, "tcp_connections": 4,
            "read_bytes_per_sec": 1234.5, "write_bytes_per_sec": 4321.0},
            {"kind": "authority", "namespace": "demo", "name": "books.demo.svc.cluster.local:7000",
            "meshed": null, "running": null, "success": 0, "failure": 0, "success_rate": null,
            "rps": null, "latency_ms": null, "tcp_connections": null,
            "read_bytes_per_sec": null, "write_bytes_per_sec": null}]}"#,
        )
        .unwrap();
        assert_eq!(stat.rows[0].latency_ms.unwrap().p99, Some(19.0));
        assert_eq!(stat.rows[1].kind, ResourceKind::Authority);
        assert_eq!(stat.rows[1].success_rate, None);
        // A controller without the authorization fields: unknown.
        assert_eq!(
            (stat.rows[0].authz_allowed, stat.rows[0].authz_denied),
            (None, None)
        );
        let with: StatRow = serde_json::from_str(
            r#"{"kind": "workload", "namespace": "demo", "name": "web", "meshed": 1, "running": 1,
            "success": 40, "failure": 0, "success_rate": 1.0, "rps": 0.7, "latency_ms": null,
            "tcp_connections": 1, "read_bytes_per_sec": null, "write_bytes_per_sec": null,
            "authz_allowed": 40, "authz_denied": 7}"#,
        )
        .unwrap();
        assert_eq!((with.authz_allowed, with.authz_denied), (Some(40), Some(7)));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let error = serde_json::from_str::<NamedWorkload>(
            r#"{"namespace": "demo", "name": "web", "extra": 1}"#,
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("unknown field `extra`"),
            "{error}"
        );
    }

    #[test]
    fn kinds_parse_their_short_forms() {
        for (text, kind) in [
            ("ns", ResourceKind::Namespace),
            ("workloads", ResourceKind::Workload),
            ("svc", ResourceKind::Service),
            ("authority", ResourceKind::Authority),
        ] {
            assert_eq!(ResourceKind::parse(text), Some(kind));
            assert_eq!(ResourceKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(ResourceKind::parse("pod"), None);
    }
}
