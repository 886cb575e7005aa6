//! Routes: `HTTPRoute` (`policy.linkerd.io/v1beta1..v1beta3` and
//! `gateway.networking.k8s.io/v1`, `v1beta1`) and `GRPCRoute`
//! (`gateway.networking.k8s.io/v1`), with the Gateway API's field names, so
//! Linkerd's YAML applies unchanged. A route attaches to its `parentRefs`: a
//! Service (outbound routing, answered by the OutboundPolicies server) or a
//! Server (inbound per-route authorization).
//!
//! Validation happens while deserializing and each error names its field
//! (`spec.rules[0].matches[1].path.value: ...`), so a mesh file reports it
//! with its line. Defaults follow the Gateway API: a rule with no matches
//! matches path prefix `/` ([`HttpRouteRule::effective_matches`]), a header or
//! query match is `Exact`, a backend's weight is 1, a redirect's status is 302.
//!
//! Both route kinds share one [`Kind`](crate::object::Kind) each whatever
//! their API group: an HTTPRoute is keyed by namespace and name, so a
//! `policy.linkerd.io` and a `gateway.networking.k8s.io` HTTPRoute of the
//! same name in one namespace are one object (the mesh file refuses the pair
//! as a duplicate). [`HttpRoute::group`] keeps the group for answers.
//!
//! | module          | what it holds |
//! |-----------------|---------------|
//! | this one        | [`Route`] and [`RouteSpec`] (either kind, checked by its [`RouteRule`]), shared pieces (parent and backend refs, header matches and modifiers, their checks), HTTPRoute |
//! | [`grpc`]        | GRPCRoute |
//! | [`annotations`] | Linkerd's retry and timeout annotations (`retry.linkerd.io/*`, `timeout.linkerd.io/*`) |

pub mod annotations;
pub mod grpc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

use crate::duration::GoDuration;

pub use annotations::{RetryAnnotations, RouteAnnotations, StatusRange};
pub use grpc::GrpcRoute;

/// `HTTPRoute`.
pub const HTTP_ROUTE_KIND: &str = "HTTPRoute";
/// `GRPCRoute`.
pub const GRPC_ROUTE_KIND: &str = "GRPCRoute";
/// Linkerd's policy API group.
pub const POLICY_GROUP: &str = "policy.linkerd.io";
/// The Gateway API group.
pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";
/// The API versions an HTTPRoute may be written in.
pub const HTTP_ROUTE_API_VERSIONS: &[&str] = &[
    "policy.linkerd.io/v1beta1",
    "policy.linkerd.io/v1beta2",
    "policy.linkerd.io/v1beta3",
    "gateway.networking.k8s.io/v1",
    "gateway.networking.k8s.io/v1beta1",
];
/// The API versions a GRPCRoute may be written in.
pub const GRPC_ROUTE_API_VERSIONS: &[&str] = &["gateway.networking.k8s.io/v1"];

/// Largest backend weight the Gateway API allows.
pub const MAX_BACKEND_WEIGHT: u32 = 1_000_000;

/// Why a route was rejected: the field (`spec.rules[0].backendRefs[1].port`)
/// and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct RouteError {
    /// The field's path from the object's root.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

impl RouteError {
    pub(crate) fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

// ---- routes ---------------------------------------------------------------

/// A route; its rules say which kind ([`HttpRoute`], [`GrpcRoute`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    rename_all = "camelCase",
    try_from = "RouteFields<Rule>",
    bound(deserialize = "Rule: RouteRule + Default + Deserialize<'de>")
)]
pub struct Route<Rule> {
    /// One of [`HTTP_ROUTE_API_VERSIONS`] or [`GRPC_ROUTE_API_VERSIONS`].
    pub api_version: String,
    /// `HTTPRoute` or `GRPCRoute`.
    pub kind: String,
    /// Name, namespace and Linkerd's retry/timeout annotations.
    pub metadata: ObjectMeta,
    /// Parents, hostnames and rules.
    pub spec: RouteSpec<Rule>,
    /// The metadata's retry and timeout annotations, parsed.
    #[serde(skip)]
    pub annotations: RouteAnnotations,
}

/// An HTTPRoute.
pub type HttpRoute = Route<HttpRouteRule>;

/// A route kind's rule: how it is checked, and which annotations suit the kind.
pub trait RouteRule {
    /// Checks the rule written at `field` (`spec.rules[0]`); the error names
    /// the field within it.
    fn validate(&self, field: &str) -> Result<(), RouteError>;

    /// Checks that the route's annotations suit the kind (all do, unless the
    /// kind says otherwise).
    fn validate_annotations(_annotations: &RouteAnnotations) -> Result<(), RouteError> {
        Ok(())
    }
}

/// A route as written, before its annotations are parsed and its spec validated.
#[derive(Deserialize)]
#[serde(
    rename_all = "camelCase",
    deny_unknown_fields,
    bound(deserialize = "Rule: Default + Deserialize<'de>")
)]
struct RouteFields<Rule> {
    api_version: String,
    kind: String,
    metadata: ObjectMeta,
    spec: RouteSpec<Rule>,
}

impl<Rule: RouteRule> TryFrom<RouteFields<Rule>> for Route<Rule> {
    type Error = RouteError;
    fn try_from(fields: RouteFields<Rule>) -> Result<Self, RouteError> {
        let annotations = RouteAnnotations::parse(fields.metadata.annotations.as_ref())?;
        Rule::validate_annotations(&annotations)?;
        fields.spec.validate()?;
        Ok(Self {
            api_version: fields.api_version,
            kind: fields.kind,
            metadata: fields.metadata,
            spec: fields.spec,
            annotations,
        })
    }
}

impl<Rule> Route<Rule> {
    /// The API group (`policy.linkerd.io` or `gateway.networking.k8s.io`).
    pub fn group(&self) -> &str {
        group_of(&self.api_version)
    }
}

/// The group part of an `apiVersion`.
pub(crate) fn group_of(api_version: &str) -> &str {
    api_version.split_once('/').map_or("", |(group, _)| group)
}

/// The body of a route.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteSpec<Rule> {
    /// What the route attaches to: Services (outbound) or Servers (inbound).
    #[serde(default)]
    pub parent_refs: Vec<ParentReference>,
    /// Host names the route applies to; empty = all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hostnames: Vec<String>,
    /// Rules in order.
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// The body of an HTTPRoute.
pub type HttpRouteSpec = RouteSpec<HttpRouteRule>;

impl<Rule: RouteRule> RouteSpec<Rule> {
    fn validate(&self) -> Result<(), RouteError> {
        validate_parents_and_hostnames(&self.parent_refs, &self.hostnames)?;
        for (index, rule) in self.rules.iter().enumerate() {
            rule.validate(&format!("spec.rules[{index}]"))?;
        }
        Ok(())
    }
}

/// A route's parent: a Service (group `core` or empty) or a Server
/// (`policy.linkerd.io`), optionally one port of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParentReference {
    /// `core`/empty for a Service, `policy.linkerd.io` for a Server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `Service` or `Server`.
    pub kind: Option<String>,
    /// The parent's name.
    pub name: String,
    /// The parent's namespace; the route's when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// A named section of the parent (accepted, not used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
    /// The Service port the route applies to; all ports when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

/// What a parent reference names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParentKind {
    /// A Service: outbound routing.
    Service,
    /// A Server: inbound routes.
    Server,
}

impl ParentReference {
    /// Whether it names a Service or a Server (validated, so one of them).
    pub fn parent_kind(&self) -> ParentKind {
        if self.kind.as_deref() == Some("Server") {
            ParentKind::Server
        } else {
            ParentKind::Service
        }
    }

    /// The parent's namespace: its own, else the route's.
    pub fn namespace_or<'a>(&'a self, route_namespace: &'a str) -> &'a str {
        self.namespace.as_deref().unwrap_or(route_namespace)
    }

    fn validate(&self, field: &str) -> Result<(), RouteError> {
        let group = self.group.as_deref().unwrap_or("");
        match self.kind.as_deref() {
            Some("Service") if group.is_empty() || group == "core" => {}
            Some("Service") => {
                return Err(RouteError::new(
                    format!("{field}.group"),
                    format!("{group:?}: a Service parent's group is \"core\" or empty"),
                ));
            }
            Some("Server") if group == POLICY_GROUP => {}
            Some("Server") => {
                return Err(RouteError::new(
                    format!("{field}.group"),
                    format!("{group:?}: a Server parent's group is {POLICY_GROUP:?}"),
                ));
            }
            Some(other) => {
                return Err(RouteError::new(
                    format!("{field}.kind"),
                    format!("{other:?}: weft attaches routes to Service or Server parents"),
                ));
            }
            None => {
                return Err(RouteError::new(
                    format!("{field}.kind"),
                    "required: Service or Server",
                ));
            }
        }
        if self.name.is_empty() {
            return Err(RouteError::new(
                format!("{field}.name"),
                "must not be empty",
            ));
        }
        if self.port == Some(0) {
            return Err(RouteError::new(
                format!("{field}.port"),
                "must be within 1..=65535",
            ));
        }
        Ok(())
    }
}

/// One rule: requests matching any of `matches` get `filters` applied and go
/// to `backendRefs`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteRule {
    /// The rule's name (accepted, not used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Any of these; none = path prefix `/`.
    #[serde(default)]
    pub matches: Vec<HttpRouteMatch>,
    /// Applied in order to matching requests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<HttpRouteFilter>,
    /// Where matching requests go, by weight; none = the parent Service.
    #[serde(default)]
    pub backend_refs: Vec<HttpBackendRef>,
    /// Request and per-backend-request limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<HttpRouteTimeouts>,
}

impl HttpRouteRule {
    /// The rule's matches, with the Gateway API's default (path prefix `/`)
    /// when it has none.
    pub fn effective_matches(&self) -> Vec<HttpRouteMatch> {
        if self.matches.is_empty() {
            vec![HttpRouteMatch::default()]
        } else {
            self.matches.clone()
        }
    }
}

/// One request condition; every field set must match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteMatch {
    /// The path; absent = prefix `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<HttpPathMatch>,
    /// Headers, all of which must match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderMatch>,
    /// Query parameters, all of which must match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query_params: Vec<HeaderMatch>,
    /// The method, exactly (`GET`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

impl Default for HttpRouteMatch {
    /// Path prefix `/`: everything.
    fn default() -> Self {
        Self {
            path: Some(HttpPathMatch::default()),
            headers: Vec::new(),
            query_params: Vec::new(),
            method: None,
        }
    }
}

/// How a path is matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
pub enum PathMatchType {
    /// The whole path, exactly.
    Exact,
    /// Whole path segments (`/api` matches `/api` and `/api/x`, not `/apix`).
    #[default]
    PathPrefix,
    /// A regular expression on the whole path.
    RegularExpression,
}

/// A path match; both fields default (`PathPrefix`, `/`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpPathMatch {
    /// `Exact`, `PathPrefix` (default) or `RegularExpression`.
    #[serde(rename = "type", default)]
    pub match_type: PathMatchType,
    /// The path, prefix or pattern; default `/`.
    #[serde(default = "root_path")]
    pub value: String,
}

fn root_path() -> String {
    "/".to_string()
}

impl Default for HttpPathMatch {
    fn default() -> Self {
        Self {
            match_type: PathMatchType::PathPrefix,
            value: root_path(),
        }
    }
}

/// How a header, query parameter or gRPC method is matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
pub enum ValueMatchType {
    /// Exactly (the default).
    #[default]
    Exact,
    /// By regular expression on the whole value.
    RegularExpression,
}

/// A header (or query parameter) match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderMatch {
    /// `Exact` (default) or `RegularExpression`.
    #[serde(rename = "type", default)]
    pub match_type: ValueMatchType,
    /// The header or parameter name.
    pub name: String,
    /// The value or pattern.
    pub value: String,
}

/// The filter kinds weft applies (Linkerd's outbound set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
pub enum FilterType {
    /// Set, add or remove request headers.
    RequestHeaderModifier,
    /// Set, add or remove response headers.
    ResponseHeaderModifier,
    /// Answer with a redirect instead of forwarding.
    RequestRedirect,
}

/// One filter: its `type` and the field of that name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteFilter {
    /// Which filter.
    #[serde(rename = "type")]
    pub filter_type: FilterType,
    /// For `RequestHeaderModifier`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_header_modifier: Option<HeaderModifier>,
    /// For `ResponseHeaderModifier`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_header_modifier: Option<HeaderModifier>,
    /// For `RequestRedirect`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_redirect: Option<RequestRedirect>,
}

/// Header edits: `set` replaces, `add` appends, `remove` deletes by name.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderModifier {
    /// Headers to set (replacing existing values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<HttpHeader>,
    /// Headers to add (keeping existing values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add: Vec<HttpHeader>,
    /// Header names to remove.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

/// A header name and value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpHeader {
    /// The name.
    pub name: String,
    /// The value.
    pub value: String,
}

/// A redirect answer; unset parts keep the request's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestRedirect {
    /// `http` or `https`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// The host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// A path rewrite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathModifier>,
    /// The port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// 301 or 302 (default 302).
    #[serde(default = "found", rename = "statusCode")]
    pub status_code: u16,
}

fn found() -> u16 {
    302
}

/// How a redirect rewrites the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
pub enum PathModifierType {
    /// Replace the whole path with `replaceFullPath`.
    ReplaceFullPath,
    /// Replace the matched prefix with `replacePrefixMatch`.
    ReplacePrefixMatch,
}

/// A path rewrite: its `type` and the field of that name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PathModifier {
    /// Which rewrite.
    #[serde(rename = "type")]
    pub modifier_type: PathModifierType,
    /// For `ReplaceFullPath`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_full_path: Option<String>,
    /// For `ReplacePrefixMatch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_prefix_match: Option<String>,
}

/// A weighted backend: a Service port. A GRPCRoute's backends are the same
/// ([`grpc::GrpcBackendRef`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpBackendRef {
    /// `core` or empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `Service` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The Service's name.
    pub name: String,
    /// Its namespace; the route's when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The Service port (required for a Service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Relative weight, 0..=1000000; default 1.
    #[serde(default = "one")]
    pub weight: u32,
    /// Filters for requests sent to this backend.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<HttpRouteFilter>,
}

fn one() -> u32 {
    1
}

impl HttpBackendRef {
    /// The backend's namespace: its own, else the route's.
    pub fn namespace_or<'a>(&'a self, route_namespace: &'a str) -> &'a str {
        self.namespace.as_deref().unwrap_or(route_namespace)
    }
}

/// A rule's timeouts (Gateway API durations).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteTimeouts {
    /// The whole request, retries included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<GoDuration>,
    /// One request to a backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_request: Option<GoDuration>,
}

// ---- validation -----------------------------------------------------------

impl RouteRule for HttpRouteRule {
    fn validate(&self, rule_field: &str) -> Result<(), RouteError> {
        for (index, condition) in self.matches.iter().enumerate() {
            validate_http_match(condition, &format!("{rule_field}.matches[{index}]"))?;
        }
        validate_filters_and_backends(&self.filters, &self.backend_refs, rule_field, true)?;
        if let Some(HttpRouteTimeouts {
            request: Some(request),
            backend_request: Some(backend_request),
        }) = &self.timeouts
            && request.value() > std::time::Duration::ZERO
            && backend_request.value() > request.value()
        {
            return Err(RouteError::new(
                format!("{rule_field}.timeouts.backendRequest"),
                format!("{backend_request} must not exceed timeouts.request ({request})"),
            ));
        }
        Ok(())
    }
}

fn validate_parents_and_hostnames(
    parents: &[ParentReference],
    hostnames: &[String],
) -> Result<(), RouteError> {
    for (index, parent) in parents.iter().enumerate() {
        parent.validate(&format!("spec.parentRefs[{index}]"))?;
    }
    for (index, hostname) in hostnames.iter().enumerate() {
        let name = hostname.strip_prefix("*.").unwrap_or(hostname);
        let valid = !name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
            });
        if !valid {
            return Err(RouteError::new(
                format!("spec.hostnames[{index}]"),
                format!(
                    "{hostname:?} is not a host name (a wildcard is only allowed as the first label, *.example.com)"
                ),
            ));
        }
    }
    Ok(())
}

fn validate_http_match(condition: &HttpRouteMatch, field: &str) -> Result<(), RouteError> {
    if let Some(path) = &condition.path {
        let value_field = format!("{field}.path.value");
        match path.match_type {
            PathMatchType::Exact | PathMatchType::PathPrefix => {
                if !path.value.starts_with('/') {
                    return Err(RouteError::new(
                        value_field,
                        format!("{:?} must start with /", path.value),
                    ));
                }
            }
            PathMatchType::RegularExpression => compile(&path.value, &value_field)?,
        }
    }
    for (index, header) in condition.headers.iter().enumerate() {
        validate_header_match(header, &format!("{field}.headers[{index}]"))?;
    }
    for (index, parameter) in condition.query_params.iter().enumerate() {
        validate_header_match(parameter, &format!("{field}.queryParams[{index}]"))?;
    }
    if let Some(method) = &condition.method
        && !is_token(method)
    {
        return Err(RouteError::new(
            format!("{field}.method"),
            format!("{method:?} is not an HTTP method"),
        ));
    }
    Ok(())
}

pub(crate) fn validate_header_match(header: &HeaderMatch, field: &str) -> Result<(), RouteError> {
    if !is_token(&header.name) {
        return Err(RouteError::new(
            format!("{field}.name"),
            format!("{:?} is not a header name", header.name),
        ));
    }
    if header.match_type == ValueMatchType::RegularExpression {
        compile(&header.value, &format!("{field}.value"))?;
    }
    Ok(())
}

fn compile(pattern: &str, field: &str) -> Result<(), RouteError> {
    regex::Regex::new(pattern)
        .map(drop)
        .map_err(|error| RouteError::new(field, format!("invalid regular expression: {error}")))
}

/// An HTTP token (method or header name): visible ASCII without separators.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte))
}

/// `redirect_allowed`: HTTPRoute filters may redirect, GRPCRoute ones not.
fn validate_filter(
    filter: &HttpRouteFilter,
    field: &str,
    redirect_allowed: bool,
) -> Result<(), RouteError> {
    let (present, name) = match filter.filter_type {
        FilterType::RequestHeaderModifier => (
            filter.request_header_modifier.is_some(),
            "requestHeaderModifier",
        ),
        FilterType::ResponseHeaderModifier => (
            filter.response_header_modifier.is_some(),
            "responseHeaderModifier",
        ),
        FilterType::RequestRedirect => (filter.request_redirect.is_some(), "requestRedirect"),
    };
    if !present {
        return Err(RouteError::new(
            format!("{field}.{name}"),
            format!("required for type {:?}", filter.filter_type),
        ));
    }
    let set_fields = usize::from(filter.request_header_modifier.is_some())
        + usize::from(filter.response_header_modifier.is_some())
        + usize::from(filter.request_redirect.is_some());
    if set_fields > 1 {
        return Err(RouteError::new(
            field,
            format!("only {name} may be set for type {:?}", filter.filter_type),
        ));
    }
    for (modifier, name) in [
        (&filter.request_header_modifier, "requestHeaderModifier"),
        (&filter.response_header_modifier, "responseHeaderModifier"),
    ] {
        let Some(modifier) = modifier else { continue };
        let field = format!("{field}.{name}");
        for (list, headers) in [("set", &modifier.set), ("add", &modifier.add)] {
            for (index, header) in headers.iter().enumerate() {
                if !is_token(&header.name) {
                    return Err(RouteError::new(
                        format!("{field}.{list}[{index}].name"),
                        format!("{:?} is not a header name", header.name),
                    ));
                }
            }
        }
        for (index, name) in modifier.remove.iter().enumerate() {
            if !is_token(name) {
                return Err(RouteError::new(
                    format!("{field}.remove[{index}]"),
                    format!("{name:?} is not a header name"),
                ));
            }
        }
    }
    if let Some(redirect) = &filter.request_redirect {
        let field = format!("{field}.requestRedirect");
        if !redirect_allowed {
            return Err(RouteError::new(
                field,
                "a GRPCRoute cannot redirect (RequestHeaderModifier and ResponseHeaderModifier only)",
            ));
        }
        if let Some(scheme) = &redirect.scheme
            && scheme != "http"
            && scheme != "https"
        {
            return Err(RouteError::new(
                format!("{field}.scheme"),
                format!("{scheme:?}: http or https"),
            ));
        }
        if redirect.status_code != 301 && redirect.status_code != 302 {
            return Err(RouteError::new(
                format!("{field}.statusCode"),
                format!("{}: 301 or 302", redirect.status_code),
            ));
        }
        if redirect.port == Some(0) {
            return Err(RouteError::new(
                format!("{field}.port"),
                "must be within 1..=65535",
            ));
        }
        if let Some(path) = &redirect.path {
            let (value, name) = match path.modifier_type {
                PathModifierType::ReplaceFullPath => (&path.replace_full_path, "replaceFullPath"),
                PathModifierType::ReplacePrefixMatch => {
                    (&path.replace_prefix_match, "replacePrefixMatch")
                }
            };
            match value {
                Some(value) if value.starts_with('/') => {}
                Some(value) => {
                    return Err(RouteError::new(
                        format!("{field}.path.{name}"),
                        format!("{value:?} must start with /"),
                    ));
                }
                None => {
                    return Err(RouteError::new(
                        format!("{field}.path.{name}"),
                        format!("required for type {:?}", path.modifier_type),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// A rule's filters and weighted backends (with their own filters), under
/// `rule_field`; `redirect_allowed` as for [`validate_filter`].
pub(crate) fn validate_filters_and_backends(
    filters: &[HttpRouteFilter],
    backends: &[HttpBackendRef],
    rule_field: &str,
    redirect_allowed: bool,
) -> Result<(), RouteError> {
    for (index, filter) in filters.iter().enumerate() {
        validate_filter(
            filter,
            &format!("{rule_field}.filters[{index}]"),
            redirect_allowed,
        )?;
    }
    for (index, backend) in backends.iter().enumerate() {
        let field = format!("{rule_field}.backendRefs[{index}]");
        validate_backend(backend, &field)?;
        for (filter_index, filter) in backend.filters.iter().enumerate() {
            validate_filter(
                filter,
                &format!("{field}.filters[{filter_index}]"),
                redirect_allowed,
            )?;
        }
    }
    Ok(())
}

fn validate_backend(backend: &HttpBackendRef, field: &str) -> Result<(), RouteError> {
    let HttpBackendRef {
        group,
        kind,
        name,
        port,
        weight,
        ..
    } = backend;
    let group = group.as_deref().unwrap_or("");
    if !(group.is_empty() || group == "core") {
        return Err(RouteError::new(
            format!("{field}.group"),
            format!("{group:?}: backends are Services (group \"core\" or empty)"),
        ));
    }
    if let Some(kind) = kind
        && kind != "Service"
    {
        return Err(RouteError::new(
            format!("{field}.kind"),
            format!("{kind:?}: backends are Services"),
        ));
    }
    if name.is_empty() {
        return Err(RouteError::new(
            format!("{field}.name"),
            "must not be empty",
        ));
    }
    match port {
        None => {
            return Err(RouteError::new(
                format!("{field}.port"),
                "required for a Service backend",
            ));
        }
        Some(0) => {
            return Err(RouteError::new(
                format!("{field}.port"),
                "must be within 1..=65535",
            ));
        }
        Some(_) => {}
    }
    if *weight > MAX_BACKEND_WEIGHT {
        return Err(RouteError::new(
            format!("{field}.weight"),
            format!("{weight} is above {MAX_BACKEND_WEIGHT}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
