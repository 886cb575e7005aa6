//! `GRPCRoute` (`gateway.networking.k8s.io/v1`): gRPC requests matched by
//! service/method and headers, with header-modifier filters and weighted
//! Service backends. Shares parent refs, header matches, filters and backend
//! validation with HTTPRoute (the parent module).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

use super::{
    HeaderMatch, HttpRouteFilter, ParentReference, RouteAnnotations, RouteError, ValueMatchType,
    group_of, validate_backend, validate_filter, validate_header_match,
    validate_parents_and_hostnames,
};

/// A GRPCRoute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "GrpcRouteFields")]
pub struct GrpcRoute {
    /// `gateway.networking.k8s.io/v1`.
    pub api_version: String,
    /// `GRPCRoute`.
    pub kind: String,
    /// Name, namespace and Linkerd's retry/timeout annotations.
    pub metadata: ObjectMeta,
    /// Parents, hostnames and rules.
    pub spec: GrpcRouteSpec,
    /// The metadata's retry and timeout annotations, parsed.
    #[serde(skip)]
    pub annotations: RouteAnnotations,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GrpcRouteFields {
    api_version: String,
    kind: String,
    metadata: ObjectMeta,
    spec: GrpcRouteSpec,
}

impl TryFrom<GrpcRouteFields> for GrpcRoute {
    type Error = RouteError;
    fn try_from(fields: GrpcRouteFields) -> Result<Self, RouteError> {
        let annotations = RouteAnnotations::parse(fields.metadata.annotations.as_ref())?;
        if annotations.retry.http.is_some() {
            return Err(RouteError::new(
                format!("metadata.annotations[{}]", super::annotations::RETRY_HTTP),
                "not valid on a GRPCRoute: use retry.linkerd.io/grpc",
            ));
        }
        validate_grpc_spec(&fields.spec)?;
        Ok(Self {
            api_version: fields.api_version,
            kind: fields.kind,
            metadata: fields.metadata,
            spec: fields.spec,
            annotations,
        })
    }
}

impl GrpcRoute {
    /// The API group (`gateway.networking.k8s.io`).
    pub fn group(&self) -> &str {
        group_of(&self.api_version)
    }
}

/// The body of a GRPCRoute.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcRouteSpec {
    /// Services (outbound) or Servers (inbound).
    #[serde(default)]
    pub parent_refs: Vec<ParentReference>,
    /// Host names; empty = all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hostnames: Vec<String>,
    /// Rules in order.
    #[serde(default)]
    pub rules: Vec<GrpcRouteRule>,
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcRouteRule {
    /// The rule's name (accepted, not used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Any of these; none = every gRPC request.
    #[serde(default)]
    pub matches: Vec<GrpcRouteMatch>,
    /// Header modifiers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<HttpRouteFilter>,
    /// Weighted Service backends; none = the parent Service.
    #[serde(default)]
    pub backend_refs: Vec<GrpcBackendRef>,
}

impl GrpcRouteRule {
    /// The rule's matches; one that matches everything when it has none.
    pub fn effective_matches(&self) -> Vec<GrpcRouteMatch> {
        if self.matches.is_empty() {
            vec![GrpcRouteMatch::default()]
        } else {
            self.matches.clone()
        }
    }
}

/// One gRPC request condition.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcRouteMatch {
    /// Service and/or method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<GrpcMethodMatch>,
    /// Headers, all of which must match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderMatch>,
}

/// A gRPC service/method match; at least one of the two is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcMethodMatch {
    /// `Exact` (default) or `RegularExpression`.
    #[serde(rename = "type", default)]
    pub match_type: ValueMatchType,
    /// The fully-qualified service (`helloworld.Greeter`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The method (`SayHello`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

/// A weighted Service backend of a GRPCRoute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcBackendRef {
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
    /// The Service port (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Relative weight, default 1.
    #[serde(default = "super::one")]
    pub weight: u32,
    /// Header modifiers for requests to this backend.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<HttpRouteFilter>,
}

impl GrpcBackendRef {
    /// The backend's namespace: its own, else the route's.
    pub fn namespace_or<'a>(&'a self, route_namespace: &'a str) -> &'a str {
        self.namespace.as_deref().unwrap_or(route_namespace)
    }
}

fn validate_grpc_spec(spec: &GrpcRouteSpec) -> Result<(), RouteError> {
    validate_parents_and_hostnames(&spec.parent_refs, &spec.hostnames)?;
    for (rule_index, rule) in spec.rules.iter().enumerate() {
        let rule_field = format!("spec.rules[{rule_index}]");
        for (index, condition) in rule.matches.iter().enumerate() {
            let field = format!("{rule_field}.matches[{index}]");
            if let Some(method) = &condition.method {
                let method_field = format!("{field}.method");
                if method.service.is_none() && method.method.is_none() {
                    return Err(RouteError::new(
                        method_field,
                        "service or method (or both) must be set",
                    ));
                }
                if method.match_type == ValueMatchType::RegularExpression {
                    // The proxy API carries exact service and method names only.
                    return Err(RouteError::new(
                        format!("{method_field}.type"),
                        "RegularExpression is not supported: gRPC methods match exactly (as in Linkerd)",
                    ));
                } else {
                    for (value, name) in [(&method.service, "service"), (&method.method, "method")]
                    {
                        if value.as_deref().is_some_and(|value| value.contains('/')) {
                            return Err(RouteError::new(
                                format!("{method_field}.{name}"),
                                "must not contain /",
                            ));
                        }
                    }
                }
            }
            for (header_index, header) in condition.headers.iter().enumerate() {
                validate_header_match(header, &format!("{field}.headers[{header_index}]"))?;
            }
        }
        for (index, filter) in rule.filters.iter().enumerate() {
            validate_filter(filter, &format!("{rule_field}.filters[{index}]"), false)?;
        }
        for (index, backend) in rule.backend_refs.iter().enumerate() {
            let field = format!("{rule_field}.backendRefs[{index}]");
            validate_backend(
                backend.group.as_deref(),
                backend.kind.as_deref(),
                &backend.name,
                backend.port,
                backend.weight,
                &field,
            )?;
            for (filter_index, filter) in backend.filters.iter().enumerate() {
                validate_filter(filter, &format!("{field}.filters[{filter_index}]"), false)?;
            }
        }
    }
    Ok(())
}
