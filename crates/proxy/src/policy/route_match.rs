//! Route matching for the policy APIs (HTTPRoute and GRPCRoute, inbound and
//! outbound): typed matchers converted once from the protobuf
//! (`io.linkerd.proxy.http_route` / `grpc_route`), and [`select_http`] /
//! [`select_grpc`], which pick the best-matching route and rule for a
//! request. Pure and table-tested; the callers attach their own data to
//! routes (`R`) and rules (`T`).
//!
//! ```text
//! request (method, path, query, headers, host)
//!   └─ each route whose hosts match (none listed = any host)
//!        └─ each rule, each of its matches (none listed = everything, lowest rank)
//!             └─ the highest-ranked (host, match) wins; ties → earlier route, earlier rule
//! ```
//!
//! Precedence (Gateway API, as the plan fixes it):
//!
//! - host: an exact hostname beats a wildcard; longer beats shorter; a route
//!   without hostnames ranks below both.
//! - HTTP: exact path > prefix (longest first) > regex (longest pattern
//!   first) > no path; then a method match; then more header matches; then
//!   more query-parameter matches.
//! - gRPC: service and method > service only > method only > neither; then
//!   more header matches.
//! - then the earlier route, the earlier rule (the controller sends routes
//!   in Gateway-API order: oldest first, then by namespace/name).
//!
//! Decisions that Gateway API leaves to implementations:
//!
//! - Regexes (path, header, query) are anchored at both ends (as profile
//!   `pathRegex` is), compiled once at conversion with a size limit.
//! - A prefix matches whole path segments: `/foo` matches `/foo`, `/foo/`
//!   and `/foo/bar`, not `/foobar`; a trailing `/` on the prefix is ignored.
//! - A header match holds if any of the request's values for that name
//!   matches. A query match looks at the parameter's first occurrence, raw
//!   (not percent-decoded).
//! - Hosts are compared case-insensitively without port and trailing dot;
//!   the host is the URI authority's, else the `Host` header's.

use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, Uri};
use linkerd2_proxy_api::{grpc_route as grpc_proto, http_route as http_proto};
use regex::{Regex, RegexBuilder};

/// The compiled size limit of one regex (bytes): bounds the memory a
/// controller answer can make the proxy spend per regex.
pub(crate) const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Why a protobuf match could not be converted. `field` names the proto
/// field (`path.regex`, `headers[2].name`, ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum MatchError {
    /// A regex that does not compile (or exceeds [`REGEX_SIZE_LIMIT`]).
    #[error("{field}: invalid regex {regex:?}: {reason}")]
    InvalidRegex {
        /// The field holding it.
        field: String,
        /// The regex as sent.
        regex: String,
        /// The compiler's reason.
        reason: String,
    },
    /// A header name that is not a valid HTTP header name.
    #[error("{field}: invalid header name {name:?}")]
    InvalidHeaderName {
        /// The field holding it.
        field: String,
        /// The name as sent.
        name: String,
    },
    /// A header value that is not a valid HTTP header value.
    #[error("{field}: invalid header value")]
    InvalidHeaderValue {
        /// The field holding it.
        field: String,
    },
    /// A method that is not an HTTP method.
    #[error("{field}: invalid method: {reason}")]
    InvalidMethod {
        /// The field holding it.
        field: String,
        /// Why it was refused.
        reason: String,
    },
    /// A oneof that must be set is empty.
    #[error("{field}: missing")]
    Missing {
        /// The empty field.
        field: String,
    },
}

/// How a route matches the request's host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum HostMatch {
    /// This hostname, lower case, no trailing dot.
    Exact(String),
    /// Any hostname ending with `.` + this suffix (lower case), with at
    /// least one more label: `*.example.com` is `Suffix("example.com")`.
    Suffix(String),
}

/// One HTTP match: all its parts must hold.
#[derive(Clone, Debug, Default)]
pub(crate) struct HttpRouteMatch {
    /// The path condition, if any.
    pub path: Option<PathMatch>,
    /// Header conditions, all of which must hold.
    pub headers: Vec<HeaderMatch>,
    /// Query-parameter conditions, all of which must hold.
    pub query_params: Vec<QueryParamMatch>,
    /// The method, if restricted.
    pub method: Option<Method>,
}

/// How a path matches.
#[derive(Clone, Debug)]
pub(crate) enum PathMatch {
    /// Exactly this path.
    Exact(String),
    /// This prefix, by whole segments (stored without a trailing `/`, so
    /// `/` is the empty string and matches every path).
    Prefix(String),
    /// This anchored regex.
    Regex(Regex),
}

/// One header condition.
#[derive(Clone, Debug)]
pub(crate) struct HeaderMatch {
    /// The header's name.
    pub name: HeaderName,
    /// What one of its values must be.
    pub value: ValueMatch<HeaderValue>,
}

/// One query-parameter condition.
#[derive(Clone, Debug)]
pub(crate) struct QueryParamMatch {
    /// The parameter's name.
    pub name: String,
    /// What its first value must be.
    pub value: ValueMatch<String>,
}

/// A value condition: exact, or an anchored regex.
#[derive(Clone, Debug)]
pub(crate) enum ValueMatch<V> {
    /// Exactly this value.
    Exact(V),
    /// The whole value matches this regex.
    Regex(Regex),
}

/// One gRPC match: all its parts must hold.
#[derive(Clone, Debug, Default)]
pub(crate) struct GrpcRouteMatch {
    /// The fully-qualified service (`package.Service`), if restricted.
    pub service: Option<String>,
    /// The method name, if restricted.
    pub method: Option<String>,
    /// Header conditions, all of which must hold.
    pub headers: Vec<HeaderMatch>,
}

/// A route: its hosts, its rules in order, and the caller's data.
#[derive(Clone, Debug)]
pub(crate) struct Route<M, R, T> {
    /// Hosts it serves; empty means any host.
    pub hosts: Vec<HostMatch>,
    /// Its rules in order.
    pub rules: Vec<Rule<M, T>>,
    /// The caller's per-route data (name, authorizations, ...).
    pub data: R,
}

/// A rule: its matches (any one suffices; none means everything) and the
/// caller's data (filters, backends, ...).
#[derive(Clone, Debug)]
pub(crate) struct Rule<M, T> {
    /// The matches, any of which selects the rule.
    pub matches: Vec<M>,
    /// The caller's per-rule data.
    pub data: T,
}

/// An HTTPRoute as matched: `R` per route, `T` per rule.
pub(crate) type HttpRoute<R, T> = Route<HttpRouteMatch, R, T>;
/// A GRPCRoute as matched: `R` per route, `T` per rule.
pub(crate) type GrpcRoute<R, T> = Route<GrpcRouteMatch, R, T>;

/// The parts of a request that matching reads.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RequestView<'a> {
    /// The method.
    pub method: &'a Method,
    /// The URI (path, query, and the authority if absolute-form / HTTP/2).
    pub uri: &'a Uri,
    /// The headers (`Host` when the URI has no authority).
    pub headers: &'a HeaderMap,
}

impl<'a> RequestView<'a> {
    /// The view of `request`.
    pub(crate) fn of<B>(request: &'a http::Request<B>) -> RequestView<'a> {
        RequestView {
            method: request.method(),
            uri: request.uri(),
            headers: request.headers(),
        }
    }

    /// The host, lower case, without port or trailing dot.
    fn host(&self) -> Option<String> {
        let raw = match self.uri.authority() {
            Some(authority) => authority.host().to_string(),
            None => {
                let value = self.headers.get(http::header::HOST)?.to_str().ok()?;
                let authority: http::uri::Authority = value.parse().ok()?;
                authority.host().to_string()
            }
        };
        let host = raw.trim_end_matches('.').to_ascii_lowercase();
        (!host.is_empty()).then_some(host)
    }
}

/// The selected route and rule, with their positions.
#[derive(Debug)]
pub(crate) struct Selected<'r, M, R, T> {
    /// The route.
    pub route: &'r Route<M, R, T>,
    /// The rule within it.
    pub rule: &'r Rule<M, T>,
    /// The route's index in the list (for callers that label by position).
    #[allow(dead_code)]
    pub route_index: usize,
    /// The rule's index in the route.
    #[allow(dead_code)]
    pub rule_index: usize,
}

/// The best HTTP route and rule for `request`, or `None` when nothing matches.
pub(crate) fn select_http<'r, R, T>(
    routes: &'r [HttpRoute<R, T>],
    request: &RequestView<'_>,
) -> Option<Selected<'r, HttpRouteMatch, R, T>> {
    let query = request.uri.query();
    select(routes, request, |rule_match| {
        rule_match.rank(request, query)
    })
}

/// The best gRPC route and rule for `request`, or `None` when nothing matches.
pub(crate) fn select_grpc<'r, R, T>(
    routes: &'r [GrpcRoute<R, T>],
    request: &RequestView<'_>,
) -> Option<Selected<'r, GrpcRouteMatch, R, T>> {
    let rpc = grpc_rpc(request.uri.path());
    select(routes, request, |rule_match| rule_match.rank(request, rpc))
}

/// The shared selection: best (host rank, match rank), first on ties.
fn select<'r, M, R, T, K: Ord + Default>(
    routes: &'r [Route<M, R, T>],
    request: &RequestView<'_>,
    rank: impl Fn(&M) -> Option<K>,
) -> Option<Selected<'r, M, R, T>> {
    let host = request.host();
    type Best<'r, K, M, R, T> = ((HostRank, K), Selected<'r, M, R, T>);
    let mut best: Option<Best<'r, K, M, R, T>> = None;
    for (route_index, route) in routes.iter().enumerate() {
        let Some(host_rank) = host_rank(&route.hosts, host.as_deref()) else {
            continue;
        };
        for (rule_index, rule) in route.rules.iter().enumerate() {
            let rule_rank = if rule.matches.is_empty() {
                Some(K::default())
            } else {
                rule.matches.iter().filter_map(&rank).max()
            };
            let Some(rule_rank) = rule_rank else {
                continue;
            };
            let key = (host_rank.clone(), rule_rank);
            // Strictly greater: on ties the earlier route and rule stay.
            if best.as_ref().is_none_or(|(best_key, _)| key > *best_key) {
                best = Some((
                    key,
                    Selected {
                        route,
                        rule,
                        route_index,
                        rule_index,
                    },
                ));
            }
        }
    }
    best.map(|(_, selected)| selected)
}

/// How well a route's hosts match: any host (no list) < suffix (longer
/// better) < exact (longer better).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
enum HostRank {
    #[default]
    Any,
    Suffix(usize),
    Exact(usize),
}

fn host_rank(hosts: &[HostMatch], host: Option<&str>) -> Option<HostRank> {
    if hosts.is_empty() {
        return Some(HostRank::Any);
    }
    let host = host?;
    hosts
        .iter()
        .filter_map(|host_match| match host_match {
            HostMatch::Exact(exact) => (exact == host).then_some(HostRank::Exact(exact.len())),
            HostMatch::Suffix(suffix) => host
                .strip_suffix(suffix.as_str())
                .and_then(|rest| rest.strip_suffix('.'))
                .filter(|rest| !rest.is_empty())
                .map(|_| HostRank::Suffix(suffix.len())),
        })
        .max()
}

/// The rank of a matching path condition (higher wins).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
enum PathRank {
    #[default]
    Unset,
    Regex(usize),
    Prefix(usize),
    Exact(usize),
}

/// The rank of a matching HTTP match: path, then method, headers, query.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
struct HttpRank {
    path: PathRank,
    method: bool,
    headers: usize,
    query_params: usize,
}

/// The rank of a matching gRPC match: (service, method) set, then headers.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
struct GrpcRank {
    service: bool,
    method: bool,
    headers: usize,
}

impl HttpRouteMatch {
    fn rank(&self, request: &RequestView<'_>, query: Option<&str>) -> Option<HttpRank> {
        let path = match &self.path {
            // No path is `PathPrefix /` (the Gateway API's default), ranked
            // as such: a header-only match outranks a bare `/` by its headers.
            None => PathRank::Prefix("/".len() + 1),
            Some(path_match) => path_match.rank(request.uri.path())?,
        };
        if let Some(method) = &self.method
            && method != request.method
        {
            return None;
        }
        if !HeaderMatch::all_match(&self.headers, request.headers) {
            return None;
        }
        if !self
            .query_params
            .iter()
            .all(|param| param.matches(query.unwrap_or("")))
        {
            return None;
        }
        Some(HttpRank {
            path,
            method: self.method.is_some(),
            headers: self.headers.len(),
            query_params: self.query_params.len(),
        })
    }
}

impl PathMatch {
    fn rank(&self, path: &str) -> Option<PathRank> {
        match self {
            PathMatch::Exact(exact) => (path == exact).then_some(PathRank::Exact(exact.len())),
            PathMatch::Prefix(prefix) => {
                // Stored without a trailing `/` by conversion; tolerated
                // from callers that build one by hand.
                let prefix = prefix.trim_end_matches('/');
                let matches = path
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
                // Ranked by the prefix as written ("/" counts one).
                matches.then_some(PathRank::Prefix(prefix.len() + 1))
            }
            PathMatch::Regex(regex) => regex
                .is_match(path)
                .then_some(PathRank::Regex(regex.as_str().len())),
        }
    }
}

impl HeaderMatch {
    /// Whether every condition of `conditions` holds (HTTP and gRPC alike).
    fn all_match(conditions: &[HeaderMatch], headers: &HeaderMap) -> bool {
        conditions.iter().all(|header| header.matches(headers))
    }

    fn matches(&self, headers: &HeaderMap) -> bool {
        headers
            .get_all(&self.name)
            .iter()
            .any(|value| match &self.value {
                ValueMatch::Exact(exact) => value == exact,
                ValueMatch::Regex(regex) => value.to_str().is_ok_and(|text| regex.is_match(text)),
            })
    }
}

impl QueryParamMatch {
    fn matches(&self, query: &str) -> bool {
        let first = query
            .split('&')
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
            .find(|(name, _)| *name == self.name);
        match (first, &self.value) {
            (None, _) => false,
            (Some((_, value)), ValueMatch::Exact(exact)) => value == exact,
            (Some((_, value)), ValueMatch::Regex(regex)) => regex.is_match(value),
        }
    }
}

impl GrpcRouteMatch {
    fn rank(&self, request: &RequestView<'_>, rpc: Option<(&str, &str)>) -> Option<GrpcRank> {
        if self.service.is_some() || self.method.is_some() {
            let (service, method) = rpc?;
            if self.service.as_deref().is_some_and(|s| s != service)
                || self.method.as_deref().is_some_and(|m| m != method)
            {
                return None;
            }
        }
        if !HeaderMatch::all_match(&self.headers, request.headers) {
            return None;
        }
        Some(GrpcRank {
            service: self.service.is_some(),
            method: self.method.is_some(),
            headers: self.headers.len(),
        })
    }
}

/// `(service, method)` of a gRPC path `/package.Service/Method`.
fn grpc_rpc(path: &str) -> Option<(&str, &str)> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    (!service.is_empty() && !method.is_empty() && !method.contains('/'))
        .then_some((service, method))
}

/// Compiles `regex` anchored at both ends, within [`REGEX_SIZE_LIMIT`].
pub(crate) fn anchored_regex(field: &str, regex: &str) -> Result<Regex, MatchError> {
    RegexBuilder::new(&format!("^(?:{})$", strip_anchors(regex)))
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|error| MatchError::InvalidRegex {
            field: field.to_string(),
            regex: regex.to_string(),
            reason: error.to_string(),
        })
}

/// The regex without one leading `^` and one trailing `$`, which
/// [`anchored_regex`] puts back around a group (so `a|b` is `^(?:a|b)$`).
fn strip_anchors(regex: &str) -> &str {
    let regex = regex.strip_prefix('^').unwrap_or(regex);
    if regex.ends_with("\\$") {
        return regex;
    }
    regex.strip_suffix('$').unwrap_or(regex)
}

/// Converts a host match.
pub(crate) fn convert_host(
    field: &str,
    proto: http_proto::HostMatch,
) -> Result<HostMatch, MatchError> {
    use http_proto::host_match::Match;
    match proto.r#match {
        Some(Match::Exact(exact)) => Ok(HostMatch::Exact(
            exact.trim_end_matches('.').to_ascii_lowercase(),
        )),
        Some(Match::Suffix(suffix)) => {
            let labels: Vec<String> = suffix
                .reverse_labels
                .iter()
                .rev()
                .map(|label| label.to_ascii_lowercase())
                .collect();
            Ok(HostMatch::Suffix(labels.join(".")))
        }
        None => Err(MatchError::Missing {
            field: format!("{field}.match"),
        }),
    }
}

/// Converts a route's host matches; `field` names the route.
pub(crate) fn convert_hosts(
    field: &str,
    hosts: Vec<http_proto::HostMatch>,
) -> Result<Vec<HostMatch>, MatchError> {
    hosts
        .into_iter()
        .enumerate()
        .map(|(index, host)| convert_host(&format!("{field}.hosts[{index}]"), host))
        .collect()
}

/// Converts a rule's matches with `convert` ([`convert_http`] or
/// [`convert_grpc`]); `field` names the rule.
pub(crate) fn convert_matches<P, M>(
    field: &str,
    matches: Vec<P>,
    convert: impl Fn(&str, P) -> Result<M, MatchError>,
) -> Result<Vec<M>, MatchError> {
    matches
        .into_iter()
        .enumerate()
        .map(|(index, proto)| convert(&format!("{field}.matches[{index}]"), proto))
        .collect()
}

/// Converts an HTTP route match; `field` prefixes error field names.
pub(crate) fn convert_http(
    field: &str,
    proto: http_proto::HttpRouteMatch,
) -> Result<HttpRouteMatch, MatchError> {
    use http_proto::path_match::Kind;
    let path = match proto.path {
        None => None,
        Some(path) => Some(match path.kind {
            Some(Kind::Exact(exact)) => PathMatch::Exact(exact),
            Some(Kind::Prefix(prefix)) => {
                PathMatch::Prefix(prefix.trim_end_matches('/').to_string())
            }
            Some(Kind::Regex(regex)) => {
                PathMatch::Regex(anchored_regex(&format!("{field}.path.regex"), &regex)?)
            }
            None => {
                return Err(MatchError::Missing {
                    field: format!("{field}.path.kind"),
                });
            }
        }),
    };
    let headers = convert_headers(field, proto.headers)?;
    let query_params = proto
        .query_params
        .into_iter()
        .enumerate()
        .map(|(index, param)| {
            use http_proto::query_param_match::Value;
            let field = format!("{field}.query_params[{index}]");
            let value = match param.value {
                Some(Value::Exact(exact)) => ValueMatch::Exact(exact),
                Some(Value::Regex(regex)) => {
                    ValueMatch::Regex(anchored_regex(&format!("{field}.regex"), &regex)?)
                }
                None => {
                    return Err(MatchError::Missing {
                        field: format!("{field}.value"),
                    });
                }
            };
            Ok(QueryParamMatch {
                name: param.name,
                value,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let method = match proto.method {
        None => None,
        Some(method) => {
            Some(
                Method::try_from(method).map_err(|error| MatchError::InvalidMethod {
                    field: format!("{field}.method"),
                    reason: error.to_string(),
                })?,
            )
        }
    };
    Ok(HttpRouteMatch {
        path,
        headers,
        query_params,
        method,
    })
}

/// Converts a gRPC route match; `field` prefixes error field names. An
/// empty service or method means any.
pub(crate) fn convert_grpc(
    field: &str,
    proto: grpc_proto::GrpcRouteMatch,
) -> Result<GrpcRouteMatch, MatchError> {
    let (service, method) = match proto.rpc {
        None => (None, None),
        Some(rpc) => (
            (!rpc.service.is_empty()).then_some(rpc.service),
            (!rpc.method.is_empty()).then_some(rpc.method),
        ),
    };
    Ok(GrpcRouteMatch {
        service,
        method,
        headers: convert_headers(field, proto.headers)?,
    })
}

fn convert_headers(
    field: &str,
    headers: Vec<http_proto::HeaderMatch>,
) -> Result<Vec<HeaderMatch>, MatchError> {
    use http_proto::header_match::Value;
    headers
        .into_iter()
        .enumerate()
        .map(|(index, header)| {
            let field = format!("{field}.headers[{index}]");
            let name = HeaderName::from_bytes(header.name.as_bytes()).map_err(|_| {
                MatchError::InvalidHeaderName {
                    field: format!("{field}.name"),
                    name: header.name.clone(),
                }
            })?;
            let value = match header.value {
                Some(Value::Exact(exact)) => {
                    ValueMatch::Exact(HeaderValue::from_bytes(&exact).map_err(|_| {
                        MatchError::InvalidHeaderValue {
                            field: format!("{field}.exact"),
                        }
                    })?)
                }
                Some(Value::Regex(regex)) => {
                    ValueMatch::Regex(anchored_regex(&format!("{field}.regex"), &regex)?)
                }
                None => {
                    return Err(MatchError::Missing {
                        field: format!("{field}.value"),
                    });
                }
            };
            Ok(HeaderMatch { name, value })
        })
        .collect()
}

#[cfg(test)]
mod tests;
