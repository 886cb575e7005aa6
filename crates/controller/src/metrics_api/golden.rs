//! Golden metrics per resource, route and edge: which series a request
//! selects (pure, table-tested) and how query results become rows.
//!
//! ```text
//! StatRequest ─stat_selection─► Selection {matchers, row labels}
//!             ─stat_queries───► [Query; 9] (requests by classification, p50/p95/p99, TCP, covered)
//!                               + [Query; 4] inbound authz allow/deny, HTTP and TCP (inbound view
//!                                 of workloads and namespaces only)
//!             ─(backend)──────► groups ─stat_rows─► rows (success, failure, rate, rps, latency,
//!                                                   TCP, authz allowed/denied)
//! ```
//!
//! The selections follow Linkerd's viz: the inbound view is
//! `direction="inbound"` grouped by the resource's label; `to=` and `from=`
//! read the sources' outbound series and their `dst_*` labels.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::parse::AUTHZ_METRICS;
use super::query::{Group, Matcher, Operation, Query};

pub use weft_api::{
    EdgeRow, Latency as Latencies, NamedWorkload as EdgeEnd, ResourceKind, RouteRow,
};

/// A kind's label on a source's series.
fn source_label(kind: ResourceKind) -> Option<&'static str> {
    match kind {
        ResourceKind::Namespace => Some("namespace"),
        ResourceKind::Workload => Some("workload"),
        ResourceKind::Authority => Some("authority"),
        ResourceKind::Service => None,
    }
}

/// A kind's label on an outbound series, naming the destination.
fn destination_label(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Namespace => "dst_namespace",
        ResourceKind::Workload => "dst_workload",
        ResourceKind::Service => "dst_service",
        ResourceKind::Authority => "authority",
    }
}

/// `KIND/NS/NAME` (or `namespace/NAME`): the resource of `from=` or `to=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// Its kind.
    pub kind: ResourceKind,
    /// Its namespace (for a namespace: its name).
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl Resource {
    /// Parses `KIND/NS/NAME`, or `namespace/NAME`.
    pub fn parse(text: &str) -> Result<Self, SelectionError> {
        let parts: Vec<&str> = text.split('/').collect();
        let bad = || SelectionError::BadResource(text.to_string());
        let kind =
            ResourceKind::parse(parts.first().copied().unwrap_or_default()).ok_or_else(bad)?;
        let (namespace, name) = match (kind, parts.as_slice()) {
            (ResourceKind::Namespace, [_, name]) => (*name, *name),
            (ResourceKind::Namespace, _) => return Err(bad()),
            (_, [_, namespace, name]) => (*namespace, *name),
            _ => return Err(bad()),
        };
        if namespace.is_empty() || name.is_empty() {
            return Err(bad());
        }
        Ok(Self {
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
    }

    /// The matchers naming it as a destination on outbound series.
    fn destination_matchers(&self) -> Vec<Matcher> {
        match self.kind {
            ResourceKind::Namespace => vec![Matcher::equal("dst_namespace", &self.name)],
            ResourceKind::Authority => vec![Matcher::equal("authority", &self.name)],
            kind => vec![
                Matcher::equal("dst_namespace", &self.namespace),
                Matcher::equal(destination_label(kind), &self.name),
            ],
        }
    }
}

/// Why a request cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    /// `from`/`to` is not `KIND/NS/NAME`.
    #[error("bad resource {0:?}: want KIND/NAMESPACE/NAME (namespace/NAME for a namespace)")]
    BadResource(String),
    /// `from` and `to` together.
    #[error("give from or to, not both")]
    FromAndTo,
    /// A kind that cannot be a source.
    #[error("a {0} cannot be a source: use it with to=")]
    NotASource(&'static str),
}

/// A stat request (`/api/stat`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatRequest {
    /// The kind of rows.
    pub kind: ResourceKind,
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Only this name.
    pub name: Option<String>,
    /// The window.
    pub window: Duration,
    /// What these sent to.
    pub to: Option<Resource>,
    /// What this source sent, per destination.
    pub from: Option<Resource>,
}

/// Which series a request reads and which labels name its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// `direction`, resource and destination matchers.
    pub matchers: Vec<Matcher>,
    /// The label holding a row's namespace.
    pub namespace_label: &'static str,
    /// The label holding a row's name (`None`: rows are namespaces).
    pub name_label: Option<&'static str>,
    /// Inbound or outbound (TCP rows read `peer="src"` inbound, `"dst"` outbound).
    pub inbound: bool,
}

impl Selection {
    fn group_by(&self) -> Vec<String> {
        let mut labels = vec![self.namespace_label.to_string()];
        labels.extend(self.name_label.map(str::to_string));
        labels
    }
}

/// The series and row labels of a stat request.
pub fn stat_selection(request: &StatRequest) -> Result<Selection, SelectionError> {
    let kind = request.kind;
    let mut matchers = Vec::new();
    let selection = match (&request.from, &request.to) {
        (Some(_), Some(_)) => return Err(SelectionError::FromAndTo),
        (Some(source), None) => {
            let source_label = source_label(source.kind)
                .filter(|_| source.kind != ResourceKind::Authority)
                .ok_or(SelectionError::NotASource(ResourceKind::as_str(
                    source.kind,
                )))?;
            matchers.push(Matcher::equal("direction", "outbound"));
            matchers.push(Matcher::equal("namespace", &source.namespace));
            if source_label != "namespace" {
                matchers.push(Matcher::equal(source_label, &source.name));
            }
            let (namespace_label, name_label) = match kind {
                ResourceKind::Namespace => ("dst_namespace", None),
                ResourceKind::Authority => ("dst_namespace", Some("authority")),
                other => ("dst_namespace", Some(destination_label(other))),
            };
            if let Some(namespace) = &request.namespace {
                matchers.push(Matcher::equal("dst_namespace", namespace));
            }
            if let (Some(name), Some(label)) = (&request.name, name_label) {
                matchers.push(Matcher::equal(label, name));
            }
            Selection {
                matchers,
                namespace_label,
                name_label,
                inbound: false,
            }
        }
        (None, target) => {
            let inbound = target.is_none() && kind != ResourceKind::Service;
            let (namespace_label, name_label) = if kind == ResourceKind::Service {
                if target.is_some() {
                    return Err(SelectionError::NotASource("service"));
                }
                ("dst_namespace", Some("dst_service"))
            } else {
                let label = source_label(kind).unwrap_or("workload");
                ("namespace", (label != "namespace").then_some(label))
            };
            matchers.push(Matcher::equal(
                "direction",
                if inbound { "inbound" } else { "outbound" },
            ));
            if let Some(namespace) = &request.namespace {
                matchers.push(Matcher::equal(namespace_label, namespace));
            }
            match (&request.name, name_label) {
                (Some(name), Some(label)) => matchers.push(Matcher::equal(label, name)),
                (Some(name), None) => matchers.push(Matcher::equal(namespace_label, name)),
                _ => {}
            }
            if let Some(target) = target {
                matchers.extend(target.destination_matchers());
            }
            Selection {
                matchers,
                namespace_label,
                name_label,
                inbound,
            }
        }
    };
    Ok(selection)
}

/// Traffic addressed to a TrafficSplit's apex service (`apex_host`, its
/// FQDN): the sources' outbound series whose `authority` is the apex, at
/// any port. The proxies label split traffic with the apex as `authority`
/// and the leaf that served it as `dst_service`, so `by_leaf` gives one row
/// per leaf (`dst_namespace`, `dst_service`), and without it one row per
/// namespace holding the apex's total.
pub fn apex_selection(apex_host: &str, by_leaf: bool) -> Selection {
    Selection {
        matchers: vec![
            Matcher::equal("direction", "outbound"),
            Matcher::Host("authority".into(), apex_host.to_string()),
        ],
        namespace_label: "dst_namespace",
        name_label: by_leaf.then_some("dst_service"),
        inbound: false,
    }
}

/// The latency quantiles every row reports.
pub const QUANTILES: [f64; 3] = [0.5, 0.95, 0.99];

/// The queries of a stat request, in the order [`stat_rows`] reads them:
/// responses by classification, p50, p95, p99, open connections, bytes
/// read, bytes written, and the seconds the response and byte counters
/// cover (what rates divide by).
pub fn stat_queries(selection: &Selection, window: Duration) -> Vec<Query> {
    let group_by = selection.group_by();
    let query = |operation, metric, extra: &[&str], matchers: Vec<Matcher>| Query {
        operation,
        metric,
        matchers,
        group_by: group_by
            .iter()
            .cloned()
            .chain(extra.iter().map(|label| label.to_string()))
            .collect(),
        window,
    };
    let mut tcp_matchers = selection.matchers.clone();
    tcp_matchers.push(Matcher::equal(
        "peer",
        if selection.inbound { "src" } else { "dst" },
    ));
    let mut queries = vec![query(
        Operation::Increase,
        "response_total",
        &["classification"],
        selection.matchers.clone(),
    )];
    for quantile in QUANTILES {
        queries.push(query(
            Operation::Quantile(quantile),
            "response_latency_ms_bucket",
            &[],
            selection.matchers.clone(),
        ));
    }
    queries.push(query(
        Operation::Latest,
        "tcp_open_connections",
        &[],
        tcp_matchers.clone(),
    ));
    queries.push(query(
        Operation::Increase,
        "tcp_read_bytes_total",
        &[],
        tcp_matchers.clone(),
    ));
    queries.push(query(
        Operation::Increase,
        "tcp_write_bytes_total",
        &[],
        tcp_matchers.clone(),
    ));
    queries.push(query(
        Operation::Covered,
        "response_total",
        &[],
        selection.matchers.clone(),
    ));
    queries.push(query(
        Operation::Covered,
        "tcp_read_bytes_total",
        &[],
        tcp_matchers,
    ));
    if let Some(matchers) = authz_matchers(selection) {
        for metric in AUTHZ_METRICS {
            queries.push(query(Operation::Increase, metric, &[], matchers.clone()));
        }
    }
    queries
}

/// Where [`stat_queries`] puts the authorization queries (in
/// [`AUTHZ_METRICS`]' order: HTTP allow, HTTP deny, TCP allow, TCP deny).
pub const AUTHZ_QUERIES: usize = 9;

/// The matchers of the authorization counters for a selection, `None` when
/// they cannot answer it: they are inbound only, carry no `direction` and
/// no `authority`, so only the inbound view of workloads and namespaces
/// reads them (the same resource matchers, without `direction`).
fn authz_matchers(selection: &Selection) -> Option<Vec<Matcher>> {
    let by_workload = matches!(selection.name_label, Some("workload") | None);
    (selection.inbound && by_workload).then(|| {
        selection
            .matchers
            .iter()
            .filter(|matcher| matcher.label() != "direction")
            .cloned()
            .collect()
    })
}

/// The golden metrics of one row.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Golden {
    /// Successful responses in the window.
    pub success: u64,
    /// Failed responses in the window.
    pub failure: u64,
    /// success / (success + failure); `None` without requests.
    pub success_rate: Option<f64>,
    /// Requests per second over the window; `None` without requests.
    pub rps: Option<f64>,
    /// `None` without requests.
    pub latency_ms: Option<Latencies>,
    /// Open TCP connections now.
    pub tcp_connections: Option<u64>,
    /// Bytes read per second.
    pub read_bytes_per_sec: Option<f64>,
    /// Bytes written per second.
    pub write_bytes_per_sec: Option<f64>,
    /// Inbound requests and connections authorized in the window; `None`
    /// when no proxy of the row exports the authorization counters.
    pub authz_allowed: Option<u64>,
    /// Inbound requests and connections denied in the window; `None` as
    /// `authz_allowed` (a proxy exporting only one of them gives both, the
    /// other 0: Linkerd's proxies export a series once it counts).
    pub authz_denied: Option<u64>,
}

/// A row's namespace and name.
pub type RowKey = (String, String);

/// The seconds a rate divides by: what the row's counters cover of the
/// window (less in the controller's first minute, or for series younger
/// than the window), never more than the window; the window when unknown.
pub fn rate_seconds(covered: Option<f64>, window: Duration) -> f64 {
    let window = window.as_secs_f64();
    match covered {
        Some(covered) if covered > 0.0 => covered.min(window),
        _ => window,
    }
}

/// The longest covered span per key, from an [`Operation::Covered`] result.
fn covered_by<K: Ord>(
    groups: Option<&Vec<Group>>,
    key: impl Fn(&BTreeMap<String, String>) -> K,
) -> BTreeMap<K, f64> {
    let mut covered: BTreeMap<K, f64> = BTreeMap::new();
    for (labels, seconds) in groups.into_iter().flatten() {
        let longest = covered.entry(key(labels)).or_default();
        *longest = longest.max(*seconds);
    }
    covered
}

fn row_key(selection: &Selection, labels: &BTreeMap<String, String>) -> RowKey {
    let namespace = labels
        .get(selection.namespace_label)
        .cloned()
        .unwrap_or_default();
    let name = match selection.name_label {
        Some(label) => labels.get(label).cloned().unwrap_or_default(),
        None => namespace.clone(),
    };
    (namespace, name)
}

fn rounded(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// Rows from the results of [`stat_queries`] (same order), keyed by
/// namespace and name; rows whose name label is empty (traffic to no
/// known resource) are left out.
pub fn stat_rows(
    selection: &Selection,
    results: &[Vec<Group>],
    window: Duration,
) -> BTreeMap<RowKey, Golden> {
    let response_covered = covered_by(results.get(7), |labels| row_key(selection, labels));
    let bytes_covered = covered_by(results.get(8), |labels| row_key(selection, labels));
    let mut rows: BTreeMap<RowKey, Golden> = BTreeMap::new();
    let mut counts: BTreeMap<RowKey, (f64, f64)> = BTreeMap::new();
    for (labels, value) in results.first().into_iter().flatten() {
        let entry = counts.entry(row_key(selection, labels)).or_default();
        match labels.get("classification").map(String::as_str) {
            Some("success") => entry.0 += value,
            _ => entry.1 += value,
        }
    }
    for (key, (success, failure)) in counts {
        let total = success + failure;
        let seconds = rate_seconds(response_covered.get(&key).copied(), window);
        let row = rows.entry(key).or_default();
        row.success = success.round() as u64;
        row.failure = failure.round() as u64;
        if total > 0.0 {
            row.success_rate = Some(rounded(success / total, 4));
            row.rps = Some(rounded(total / seconds, 3));
        }
    }
    for (index, _) in QUANTILES.iter().enumerate() {
        for (labels, value) in results.get(1 + index).into_iter().flatten() {
            let row = rows.entry(row_key(selection, labels)).or_default();
            if row.rps.is_none() {
                continue;
            }
            let latencies = row.latency_ms.get_or_insert(Latencies {
                p50: None,
                p95: None,
                p99: None,
            });
            let value = Some(rounded(*value, 3));
            match index {
                0 => latencies.p50 = value,
                1 => latencies.p95 = value,
                _ => latencies.p99 = value,
            }
        }
    }
    for (labels, value) in results.get(4).into_iter().flatten() {
        rows.entry(row_key(selection, labels))
            .or_default()
            .tcp_connections = Some(value.max(0.0).round() as u64);
    }
    for (index, read) in [(5, true), (6, false)] {
        for (labels, value) in results.get(index).into_iter().flatten() {
            let key = row_key(selection, labels);
            let seconds = rate_seconds(bytes_covered.get(&key).copied(), window);
            let row = rows.entry(key).or_default();
            let rate = Some(rounded(value / seconds, 1));
            if read {
                row.read_bytes_per_sec = rate;
            } else {
                row.write_bytes_per_sec = rate;
            }
        }
    }
    let mut authz: BTreeMap<RowKey, (f64, f64)> = BTreeMap::new();
    for (offset, metric) in AUTHZ_METRICS.iter().enumerate() {
        let allow = metric.ends_with("_allow_total");
        for (labels, value) in results.get(AUTHZ_QUERIES + offset).into_iter().flatten() {
            let entry = authz.entry(row_key(selection, labels)).or_default();
            if allow {
                entry.0 += value;
            } else {
                entry.1 += value;
            }
        }
    }
    for (key, (allowed, denied)) in authz {
        let row = rows.entry(key).or_default();
        row.authz_allowed = Some(allowed.max(0.0).round() as u64);
        row.authz_denied = Some(denied.max(0.0).round() as u64);
    }
    rows.retain(|(_, name), _| !name.is_empty());
    rows
}

/// The route metrics' queries: effective responses, actual responses (with
/// retries), p50, p95, p99, and the seconds both counters cover; grouped by
/// `rt_route` and `dst`.
pub fn route_queries(matchers: &[Matcher], window: Duration) -> Vec<Query> {
    let query = |operation, metric, classification: bool| Query {
        operation,
        metric,
        matchers: matchers.to_vec(),
        group_by: ["rt_route", "dst"]
            .into_iter()
            .chain(classification.then_some("classification"))
            .map(str::to_string)
            .collect(),
        window,
    };
    let mut queries = vec![
        query(Operation::Increase, "route_response_total", true),
        query(Operation::Increase, "route_actual_response_total", true),
    ];
    for quantile in QUANTILES {
        queries.push(query(
            Operation::Quantile(quantile),
            "route_response_latency_ms_bucket",
            false,
        ));
    }
    queries.push(query(Operation::Covered, "route_response_total", false));
    queries.push(query(
        Operation::Covered,
        "route_actual_response_total",
        false,
    ));
    queries
}

/// The name rows show for requests no route matched.
pub const DEFAULT_ROUTE: &str = "[DEFAULT]";

/// Route rows from the results of [`route_queries`] (same order).
pub fn route_rows(results: &[Vec<Group>], window: Duration) -> Vec<RouteRow> {
    let key = |labels: &BTreeMap<String, String>| {
        let route = labels.get("rt_route").cloned().unwrap_or_default();
        let route = if route.is_empty() {
            DEFAULT_ROUTE.to_string()
        } else {
            route
        };
        (route, labels.get("dst").cloned().unwrap_or_default())
    };
    let mut totals: BTreeMap<(String, String), [f64; 4]> = BTreeMap::new();
    for (slot, results) in results.iter().take(2).enumerate() {
        for (labels, value) in results {
            let entry = totals.entry(key(labels)).or_default();
            let success = labels.get("classification").map(String::as_str) == Some("success");
            entry[slot * 2 + usize::from(!success)] += value;
        }
    }
    let effective_covered = covered_by(results.get(5), key);
    let actual_covered = covered_by(results.get(6), key);
    let mut rows: BTreeMap<(String, String), RouteRow> = totals
        .into_iter()
        .map(
            |((route, authority), [success, failure, actual_success, actual_failure])| {
                let rate = |good: f64, bad: f64| {
                    (good + bad > 0.0).then(|| rounded(good / (good + bad), 4))
                };
                let route_key = (route.clone(), authority.clone());
                let rps = |good: f64, bad: f64, covered: &BTreeMap<(String, String), f64>| {
                    let seconds = rate_seconds(covered.get(&route_key).copied(), window);
                    (good + bad > 0.0).then(|| rounded((good + bad) / seconds, 3))
                };
                let row = RouteRow {
                    route: route.clone(),
                    authority: authority.clone(),
                    success_rate: rate(success, failure),
                    rps: rps(success, failure, &effective_covered),
                    actual_success_rate: rate(actual_success, actual_failure),
                    actual_rps: rps(actual_success, actual_failure, &actual_covered),
                    latency_ms: None,
                };
                ((route, authority), row)
            },
        )
        .collect();
    for (index, results) in results.iter().skip(2).take(3).enumerate() {
        for (labels, value) in results {
            let Some(row) = rows.get_mut(&key(labels)) else {
                continue;
            };
            if row.rps.is_none() {
                continue;
            }
            let latencies = row.latency_ms.get_or_insert(Latencies {
                p50: None,
                p95: None,
                p99: None,
            });
            let value = Some(rounded(*value, 3));
            match index {
                0 => latencies.p50 = value,
                1 => latencies.p95 = value,
                _ => latencies.p99 = value,
            }
        }
    }
    rows.into_values().collect()
}

/// The edges queries: the sources' outbound responses by source,
/// destination and TLS, and the seconds those counters cover (by source
/// and destination).
pub fn edge_queries(namespace: Option<&str>, window: Duration) -> Vec<Query> {
    let responses = edge_query(namespace, window);
    let covered = Query {
        operation: Operation::Covered,
        group_by: ["namespace", "workload", "dst_namespace", "dst_workload"]
            .into_iter()
            .map(str::to_string)
            .collect(),
        ..responses.clone()
    };
    vec![responses, covered]
}

/// The edges' responses query (the first of [`edge_queries`]).
fn edge_query(namespace: Option<&str>, window: Duration) -> Query {
    let mut matchers = vec![Matcher::equal("direction", "outbound")];
    if let Some(namespace) = namespace {
        matchers.push(Matcher::equal("namespace", namespace));
    }
    Query {
        operation: Operation::Increase,
        metric: "response_total",
        matchers,
        group_by: [
            "namespace",
            "workload",
            "dst_namespace",
            "dst_workload",
            "tls",
            "server_id",
            "no_tls_reason",
            "classification",
        ]
        .into_iter()
        .map(str::to_string)
        .collect(),
        window,
    }
}

/// Edges from the results of [`edge_queries`]: one per source, destination
/// and TLS status; destinations discovery did not name are left out.
/// `client_id` names the source's identity (`identity_of`) on secured edges.
pub fn edge_rows(
    results: &[Vec<Group>],
    window: Duration,
    identity_of: impl Fn(&EdgeEnd) -> Option<String>,
) -> Vec<EdgeRow> {
    let groups = results.first().map(Vec::as_slice).unwrap_or_default();
    let end = |labels: &BTreeMap<String, String>, namespace: &str, name: &str| EdgeEnd {
        namespace: labels.get(namespace).cloned().unwrap_or_default(),
        name: labels.get(name).cloned().unwrap_or_default(),
    };
    let covered = covered_by(results.get(1), |labels| {
        (
            end(labels, "namespace", "workload"),
            end(labels, "dst_namespace", "dst_workload"),
        )
    });
    type EdgeKey = (EdgeEnd, EdgeEnd, String, String, String);
    let mut totals: BTreeMap<EdgeKey, (f64, f64)> = BTreeMap::new();
    for (labels, value) in groups {
        let get = |label: &str| labels.get(label).cloned().unwrap_or_default();
        if get("dst_workload").is_empty() {
            continue;
        }
        let key = (
            EdgeEnd {
                namespace: get("namespace"),
                name: get("workload"),
            },
            EdgeEnd {
                namespace: get("dst_namespace"),
                name: get("dst_workload"),
            },
            get("tls"),
            get("server_id"),
            get("no_tls_reason"),
        );
        let entry = totals.entry(key).or_default();
        if get("classification") == "success" {
            entry.0 += value;
        } else {
            entry.1 += value;
        }
    }
    totals
        .into_iter()
        .map(
            |((src, dst, tls, server_id, no_tls_reason), (success, failure))| {
                let total = success + failure;
                let secured = tls == "true";
                let seconds =
                    rate_seconds(covered.get(&(src.clone(), dst.clone())).copied(), window);
                EdgeRow {
                    client_id: if secured { identity_of(&src) } else { None },
                    src,
                    dst,
                    server_id: Some(server_id).filter(|id| !id.is_empty()),
                    secured,
                    no_tls_reason: Some(no_tls_reason).filter(|reason| !reason.is_empty()),
                    rps: (total > 0.0).then(|| rounded(total / seconds, 3)),
                    success_rate: (total > 0.0).then(|| rounded(success / total, 4)),
                }
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(
        kind: ResourceKind,
        namespace: Option<&str>,
        from: Option<&str>,
        to: Option<&str>,
    ) -> StatRequest {
        StatRequest {
            kind,
            namespace: namespace.map(str::to_string),
            name: None,
            window: Duration::from_secs(60),
            from: from.map(|text| Resource::parse(text).unwrap()),
            to: to.map(|text| Resource::parse(text).unwrap()),
        }
    }

    fn rendered(matchers: &[Matcher]) -> Vec<String> {
        matchers
            .iter()
            .map(|matcher| match matcher {
                Matcher::Equal(label, value) => format!("{label}={value}"),
                Matcher::Host(label, host) => format!("{label}~{host}"),
            })
            .collect()
    }

    #[test]
    fn selections_follow_linkerd() {
        use ResourceKind::*;
        // (request, matchers, namespace label, name label, inbound)
        let cases = [
            (
                request(Workload, Some("demo"), None, None),
                vec!["direction=inbound", "namespace=demo"],
                "namespace",
                Some("workload"),
                true,
            ),
            (
                request(Namespace, None, None, None),
                vec!["direction=inbound"],
                "namespace",
                None,
                true,
            ),
            (
                request(Authority, None, None, None),
                vec!["direction=inbound"],
                "namespace",
                Some("authority"),
                true,
            ),
            (
                request(Service, Some("demo"), None, None),
                vec!["direction=outbound", "dst_namespace=demo"],
                "dst_namespace",
                Some("dst_service"),
                false,
            ),
            (
                request(Workload, Some("demo"), None, Some("service/demo/web")),
                vec![
                    "direction=outbound",
                    "namespace=demo",
                    "dst_namespace=demo",
                    "dst_service=web",
                ],
                "namespace",
                Some("workload"),
                false,
            ),
            (
                request(Workload, None, Some("workload/demo/load"), None),
                vec!["direction=outbound", "namespace=demo", "workload=load"],
                "dst_namespace",
                Some("dst_workload"),
                false,
            ),
            (
                request(Service, None, Some("namespace/demo"), None),
                vec!["direction=outbound", "namespace=demo"],
                "dst_namespace",
                Some("dst_service"),
                false,
            ),
        ];
        for (request, matchers, namespace_label, name_label, inbound) in cases {
            let selection = stat_selection(&request).unwrap();
            assert_eq!(rendered(&selection.matchers), matchers, "{request:?}");
            assert_eq!(selection.namespace_label, namespace_label, "{request:?}");
            assert_eq!(selection.name_label, name_label, "{request:?}");
            assert_eq!(selection.inbound, inbound, "{request:?}");
        }
    }

    #[test]
    fn apex_selections_read_the_authority_callers_addressed() {
        let leaves = apex_selection("books.demo.svc.cluster.local", true);
        assert_eq!(
            rendered(&leaves.matchers),
            [
                "direction=outbound",
                "authority~books.demo.svc.cluster.local"
            ]
        );
        assert_eq!(leaves.group_by(), ["dst_namespace", "dst_service"]);
        let total = apex_selection("books.demo.svc.cluster.local", false);
        assert_eq!(total.group_by(), ["dst_namespace"]);
        // 80/20 between two leaves: one row per leaf, or one for the apex.
        let leaf = |name: &str, classification: &str, value: f64| {
            group(
                &[
                    ("dst_namespace", "demo"),
                    ("dst_service", name),
                    ("classification", classification),
                ],
                value,
            )
        };
        let responses = vec![
            leaf("books-v1", "success", 96.0),
            leaf("books-v2", "success", 20.0),
            leaf("books-v2", "failure", 4.0),
        ];
        let rows = stat_rows(
            &leaves,
            std::slice::from_ref(&responses),
            Duration::from_secs(60),
        );
        let v1 = &rows[&("demo".to_string(), "books-v1".to_string())];
        let v2 = &rows[&("demo".to_string(), "books-v2".to_string())];
        assert_eq!((v1.success, v1.rps), (96, Some(1.6)));
        assert_eq!((v2.success_rate, v2.rps), (Some(0.8333), Some(0.4)));
        let namespace_only: Vec<Group> = responses
            .into_iter()
            .map(|(mut labels, value)| {
                labels.remove("dst_service");
                (labels, value)
            })
            .collect();
        let rows = stat_rows(&total, &[namespace_only], Duration::from_secs(60));
        let apex = &rows[&("demo".to_string(), "demo".to_string())];
        assert_eq!((apex.success, apex.failure, apex.rps), (116, 4, Some(2.0)));
    }

    #[test]
    fn bad_selections_are_refused() {
        use ResourceKind::*;
        let both = request(Workload, None, Some("workload/a/b"), Some("workload/a/c"));
        assert_eq!(stat_selection(&both), Err(SelectionError::FromAndTo));
        let from_service = request(Workload, None, Some("service/a/b"), None);
        assert!(stat_selection(&from_service).is_err());
        let service_to = request(Service, None, None, Some("workload/a/b"));
        assert!(stat_selection(&service_to).is_err());
        for text in ["workload/a", "pod/a/b", "workload//b", "namespace/a/b", ""] {
            assert!(Resource::parse(text).is_err(), "{text}");
        }
    }

    fn group(labels: &[(&str, &str)], value: f64) -> Group {
        (
            labels
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
            value,
        )
    }

    #[test]
    fn rows_combine_counts_latency_and_tcp() {
        let selection = stat_selection(&request(ResourceKind::Workload, None, None, None)).unwrap();
        let web = [("namespace", "demo"), ("workload", "web")];
        let with = |extra: (&'static str, &'static str)| {
            let mut labels = web.to_vec();
            labels.push(extra);
            labels
        };
        let results = vec![
            vec![
                group(&with(("classification", "success")), 90.0),
                group(&with(("classification", "failure")), 30.0),
                group(
                    &[
                        ("namespace", "demo"),
                        ("workload", ""),
                        ("classification", "success"),
                    ],
                    5.0,
                ),
            ],
            vec![group(&web, 3.0)],
            vec![group(&web, 9.0)],
            vec![group(&web, 19.0)],
            vec![
                group(&web, 4.0),
                group(&[("namespace", "demo"), ("workload", "idle")], 1.0),
            ],
            vec![group(&web, 600.0)],
            vec![group(&web, 1200.0)],
        ];
        let rows = stat_rows(&selection, &results, Duration::from_secs(60));
        assert_eq!(rows.len(), 2, "{rows:?}");
        let row = &rows[&("demo".to_string(), "web".to_string())];
        assert_eq!((row.success, row.failure), (90, 30));
        assert_eq!(row.success_rate, Some(0.75));
        assert_eq!(row.rps, Some(2.0));
        assert_eq!(
            row.latency_ms,
            Some(Latencies {
                p50: Some(3.0),
                p95: Some(9.0),
                p99: Some(19.0)
            })
        );
        assert_eq!(row.tcp_connections, Some(4));
        assert_eq!(row.read_bytes_per_sec, Some(10.0));
        assert_eq!(row.write_bytes_per_sec, Some(20.0));
        let idle = &rows[&("demo".to_string(), "idle".to_string())];
        assert_eq!(
            (idle.success_rate, idle.rps, idle.latency_ms),
            (None, None, None)
        );
    }

    /// The controller's first 15 s: 300 requests at 20 rps, counters that
    /// cover 15 s of a 1 m window. RPS is 20, not 5; bytes likewise.
    #[test]
    fn rates_divide_by_the_seconds_covered() {
        let window = Duration::from_secs(60);
        let selection = stat_selection(&request(ResourceKind::Workload, None, None, None)).unwrap();
        let web = [("namespace", "demo"), ("workload", "web")];
        let class = |classification| {
            let mut labels = web.to_vec();
            labels.push(("classification", classification));
            group(
                &labels,
                if classification == "success" {
                    270.0
                } else {
                    30.0
                },
            )
        };
        let mut results = vec![
            vec![class("success"), class("failure")],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![group(&web, 3000.0)],
            vec![group(&web, 6000.0)],
            vec![group(&web, 15.0)],
            vec![group(&web, 30.0)],
        ];
        let rows = stat_rows(&selection, &results, window);
        let row = &rows[&("demo".to_string(), "web".to_string())];
        assert_eq!(row.rps, Some(20.0));
        assert_eq!(row.read_bytes_per_sec, Some(100.0));
        assert_eq!(row.write_bytes_per_sec, Some(200.0));
        // Without coverage (or a longer one than the window): the window.
        results[7] = vec![group(&web, 90.0)];
        results.truncate(8);
        let rows = stat_rows(&selection, &results, window);
        let row = &rows[&("demo".to_string(), "web".to_string())];
        assert_eq!(row.rps, Some(5.0));
        assert_eq!(row.read_bytes_per_sec, Some(50.0));
        for (covered, expected) in [
            (None, 60.0),
            (Some(0.0), 60.0),
            (Some(15.0), 15.0),
            (Some(61.0), 60.0),
        ] {
            assert_eq!(rate_seconds(covered, window), expected, "{covered:?}");
        }
    }

    #[test]
    fn authorization_counters_answer_the_inbound_view_of_workloads_and_namespaces() {
        use ResourceKind::*;
        // (request, the authz queries' matchers; None: no authz queries)
        let cases = [
            (
                request(Workload, Some("demo"), None, None),
                Some(vec!["namespace=demo"]),
            ),
            (request(Namespace, None, None, None), Some(vec![])),
            (request(Authority, None, None, None), None),
            (request(Service, Some("demo"), None, None), None),
            (
                request(Workload, Some("demo"), None, Some("service/demo/web")),
                None,
            ),
            (
                request(Workload, None, Some("workload/demo/load"), None),
                None,
            ),
        ];
        for (request, matchers) in cases {
            let selection = stat_selection(&request).unwrap();
            let queries = stat_queries(&selection, request.window);
            let authz: Vec<&Query> = queries.iter().skip(AUTHZ_QUERIES).collect();
            match matchers {
                None => assert!(authz.is_empty(), "{request:?}"),
                Some(matchers) => {
                    let metrics: Vec<&str> = authz.iter().map(|query| query.metric).collect();
                    assert_eq!(metrics, AUTHZ_METRICS, "{request:?}");
                    for query in authz {
                        assert_eq!(rendered(&query.matchers), matchers, "{request:?}");
                        assert_eq!(query.operation, Operation::Increase);
                        assert_eq!(query.group_by, selection.group_by());
                    }
                }
            }
        }
    }

    #[test]
    fn rows_sum_allowed_and_denied_requests_and_connections() {
        let selection = stat_selection(&request(ResourceKind::Workload, None, None, None)).unwrap();
        let workload = |name| [("namespace", "demo"), ("workload", name)];
        let mut results = vec![Vec::new(); AUTHZ_QUERIES];
        results.extend([
            // HTTP allowed, denied; TCP allowed, denied.
            vec![group(&workload("web"), 42.0)],
            vec![group(&workload("web"), 7.0), group(&workload("db"), 2.4)],
            vec![group(&workload("web"), 3.0)],
            vec![group(&workload("web"), 1.0)],
        ]);
        let rows = stat_rows(&selection, &results, Duration::from_secs(60));
        let row = |name: &str| &rows[&("demo".to_string(), name.to_string())];
        assert_eq!(
            (row("web").authz_allowed, row("web").authz_denied),
            (Some(45), Some(8))
        );
        // Only denials exported: allowed is 0, not unknown.
        assert_eq!(
            (row("db").authz_allowed, row("db").authz_denied),
            (Some(0), Some(2))
        );
        // Nothing exported (a proxy without authorization metrics): unknown.
        let results = vec![vec![group(
            &[
                ("namespace", "demo"),
                ("workload", "web"),
                ("classification", "success"),
            ],
            6.0,
        )]];
        let rows = stat_rows(&selection, &results, Duration::from_secs(60));
        let web = &rows[&("demo".to_string(), "web".to_string())];
        assert_eq!((web.authz_allowed, web.authz_denied), (None, None));
    }

    #[test]
    fn routes_and_edges() {
        let dst = ("dst", "web.demo.svc.cluster.local:80");
        let results = vec![
            vec![
                group(
                    &[
                        ("rt_route", "GET /books/{id}"),
                        dst,
                        ("classification", "success"),
                    ],
                    30.0,
                ),
                group(&[("rt_route", ""), dst, ("classification", "failure")], 6.0),
            ],
            vec![
                group(
                    &[
                        ("rt_route", "GET /books/{id}"),
                        dst,
                        ("classification", "success"),
                    ],
                    30.0,
                ),
                group(
                    &[
                        ("rt_route", "GET /books/{id}"),
                        dst,
                        ("classification", "failure"),
                    ],
                    10.0,
                ),
            ],
            vec![group(&[("rt_route", "GET /books/{id}"), dst], 2.0)],
            vec![],
            vec![],
        ];
        let rows = route_rows(&results, Duration::from_secs(60));
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].route, "GET /books/{id}");
        assert_eq!(rows[0].success_rate, Some(1.0));
        assert_eq!(rows[0].actual_success_rate, Some(0.75));
        assert_eq!(rows[0].latency_ms.unwrap().p50, Some(2.0));
        assert_eq!(rows[1].route, DEFAULT_ROUTE);
        assert_eq!(rows[1].success_rate, Some(0.0));
        assert_eq!(rows[1].rps, Some(0.1));

        let edge = |tls: &str, classification: &str, value: f64| {
            group(
                &[
                    ("namespace", "demo"),
                    ("workload", "load"),
                    ("dst_namespace", "demo"),
                    ("dst_workload", "web"),
                    ("tls", tls),
                    ("server_id", if tls == "true" { "web.demo" } else { "" }),
                    ("no_tls_reason", if tls == "true" { "" } else { "loopback" }),
                    ("classification", classification),
                ],
                value,
            )
        };
        let groups = vec![
            edge("true", "success", 60.0),
            edge("true", "failure", 60.0),
            edge("no_identity", "success", 6.0),
            group(
                &[
                    ("namespace", "demo"),
                    ("workload", "load"),
                    ("dst_workload", ""),
                ],
                9.0,
            ),
        ];
        let rows = edge_rows(&[groups], Duration::from_secs(60), |src| {
            Some(format!("{}.{}", src.name, src.namespace))
        });
        assert_eq!(rows.len(), 2, "{rows:?}");
        let secured = rows.iter().find(|row| row.secured).unwrap();
        assert_eq!(secured.client_id.as_deref(), Some("load.demo"));
        assert_eq!(secured.server_id.as_deref(), Some("web.demo"));
        assert_eq!((secured.rps, secured.success_rate), (Some(2.0), Some(0.5)));
        let plain = rows.iter().find(|row| !row.secured).unwrap();
        assert_eq!(plain.no_tls_reason.as_deref(), Some("loopback"));
        assert_eq!(plain.client_id, None);
    }
}
