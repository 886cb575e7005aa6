//! `GRPCRoute` (`gateway.networking.k8s.io/v1`): gRPC requests matched by
//! service/method and headers, with header-modifier filters and weighted
//! Service backends. Shares the route around the spec ([`Route`]), parent
//! refs, header matches, filters, backends and their checks with HTTPRoute
//! (the parent module).

use serde::{Deserialize, Serialize};

use super::{
    HeaderMatch, HttpBackendRef, HttpRouteFilter, Route, RouteAnnotations, RouteError, RouteRule,
    RouteSpec, ValueMatchType, validate_filters_and_backends, validate_header_match,
};

/// A GRPCRoute.
pub type GrpcRoute = Route<GrpcRouteRule>;

/// The body of a GRPCRoute.
pub type GrpcRouteSpec = RouteSpec<GrpcRouteRule>;

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

/// A weighted Service backend of a GRPCRoute: the same fields, defaults and
/// checks as an HTTPRoute's.
pub type GrpcBackendRef = HttpBackendRef;

impl RouteRule for GrpcRouteRule {
    fn validate(&self, rule_field: &str) -> Result<(), RouteError> {
        for (index, condition) in self.matches.iter().enumerate() {
            let field = format!("{rule_field}.matches[{index}]");
            if let Some(method) = &condition.method {
                validate_method_match(method, &format!("{field}.method"))?;
            }
            for (header_index, header) in condition.headers.iter().enumerate() {
                validate_header_match(header, &format!("{field}.headers[{header_index}]"))?;
            }
        }
        validate_filters_and_backends(&self.filters, &self.backend_refs, rule_field, false)
    }

    /// Refuses `retry.linkerd.io/http` (a GRPCRoute retries by gRPC status).
    fn validate_annotations(annotations: &RouteAnnotations) -> Result<(), RouteError> {
        if annotations.retry.http.is_some() {
            return Err(RouteError::new(
                format!("metadata.annotations[{}]", super::annotations::RETRY_HTTP),
                "not valid on a GRPCRoute: use retry.linkerd.io/grpc",
            ));
        }
        Ok(())
    }
}

fn validate_method_match(method: &GrpcMethodMatch, method_field: &str) -> Result<(), RouteError> {
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
    }
    for (value, name) in [(&method.service, "service"), (&method.method, "method")] {
        if value.as_deref().is_some_and(|value| value.contains('/')) {
            return Err(RouteError::new(
                format!("{method_field}.{name}"),
                "must not contain /",
            ));
        }
    }
    Ok(())
}
