//! Gateway-API route parts as protobuf, shared by both policy answers
//! (inbound routes on a Server, outbound routes on a Service): host, HTTP and
//! gRPC matches, header modifiers, redirects. Pure.
//!
//! A match that leaves its path out matches as `PathPrefix /`, as the
//! Gateway API defines it, and is sent so: a proxy ranks the rules by their
//! paths first, and a header-only rule must outrank a rule with no match at
//! all (which is also `PathPrefix /`) by its headers.

use linkerd2_proxy_api::grpc_route as grpc_proto;
use linkerd2_proxy_api::http_route as http_proto;
use linkerd2_proxy_api::http_types;
use weft_core::route::grpc::GrpcRouteMatch;
use weft_core::route::{
    HeaderMatch, HeaderModifier, HttpHeader, HttpPathMatch, HttpRouteMatch, PathMatchType,
    PathModifierType, RequestRedirect, ValueMatchType,
};

/// `example.com` exactly, or `*.example.com` as a suffix (labels reversed).
pub fn host_match(hostname: &str) -> http_proto::HostMatch {
    use http_proto::host_match::{Match, Suffix};
    let matched = match hostname.strip_prefix("*.") {
        Some(suffix) => Match::Suffix(Suffix {
            reverse_labels: suffix.rsplit('.').map(str::to_string).collect(),
        }),
        None => Match::Exact(hostname.to_string()),
    };
    http_proto::HostMatch {
        r#match: Some(matched),
    }
}

/// A route's hostnames as host matches.
pub fn host_matches(hostnames: &[String]) -> Vec<http_proto::HostMatch> {
    hostnames.iter().map(|host| host_match(host)).collect()
}

/// One HTTP match; no path = `PathPrefix /`.
pub fn http_match(condition: &HttpRouteMatch) -> http_proto::HttpRouteMatch {
    use http_proto::path_match::Kind;
    let everything = HttpPathMatch::default();
    let path = condition.path.as_ref().unwrap_or(&everything);
    http_proto::HttpRouteMatch {
        path: Some(http_proto::PathMatch {
            kind: Some(match path.match_type {
                PathMatchType::Exact => Kind::Exact(path.value.clone()),
                PathMatchType::PathPrefix => Kind::Prefix(path.value.clone()),
                PathMatchType::RegularExpression => Kind::Regex(path.value.clone()),
            }),
        }),
        headers: condition.headers.iter().map(header_match).collect(),
        query_params: condition
            .query_params
            .iter()
            .map(|parameter| {
                use http_proto::query_param_match::Value;
                http_proto::QueryParamMatch {
                    name: parameter.name.clone(),
                    value: Some(match parameter.match_type {
                        ValueMatchType::Exact => Value::Exact(parameter.value.clone()),
                        ValueMatchType::RegularExpression => Value::Regex(parameter.value.clone()),
                    }),
                }
            })
            .collect(),
        method: condition.method.as_deref().map(method),
    }
}

/// One gRPC match. The proto matches exact service and method names only:
/// a method match of another type is left out (validation refuses it in
/// outbound routes; inbound, the route is then more permissive than written).
pub fn grpc_match(condition: &GrpcRouteMatch) -> grpc_proto::GrpcRouteMatch {
    grpc_proto::GrpcRouteMatch {
        rpc: condition
            .method
            .as_ref()
            .filter(|method| method.match_type == ValueMatchType::Exact)
            .map(|method| grpc_proto::GrpcRpcMatch {
                service: method.service.clone().unwrap_or_default(),
                method: method.method.clone().unwrap_or_default(),
            }),
        headers: condition.headers.iter().map(header_match).collect(),
    }
}

/// One header match.
pub fn header_match(header: &HeaderMatch) -> http_proto::HeaderMatch {
    use http_proto::header_match::Value;
    http_proto::HeaderMatch {
        name: header.name.clone(),
        value: Some(match header.match_type {
            ValueMatchType::Exact => Value::Exact(header.value.clone().into_bytes()),
            ValueMatchType::RegularExpression => Value::Regex(header.value.clone()),
        }),
    }
}

/// A method: registered when HTTP names it, else as written.
pub fn method(name: &str) -> http_types::HttpMethod {
    use http_types::http_method::{Registered, Type};
    let registered = match name {
        "GET" => Some(Registered::Get),
        "POST" => Some(Registered::Post),
        "PUT" => Some(Registered::Put),
        "DELETE" => Some(Registered::Delete),
        "PATCH" => Some(Registered::Patch),
        "OPTIONS" => Some(Registered::Options),
        "CONNECT" => Some(Registered::Connect),
        "HEAD" => Some(Registered::Head),
        "TRACE" => Some(Registered::Trace),
        _ => None,
    };
    http_types::HttpMethod {
        r#type: Some(match registered {
            Some(registered) => Type::Registered(registered as i32),
            None => Type::Unregistered(name.to_string()),
        }),
    }
}

fn headers(list: &[HttpHeader]) -> Option<http_types::Headers> {
    (!list.is_empty()).then(|| http_types::Headers {
        headers: list
            .iter()
            .map(|header| http_types::headers::Header {
                name: header.name.clone(),
                value: header.value.clone().into_bytes(),
            })
            .collect(),
    })
}

/// A RequestHeaderModifier filter's body.
pub fn request_header_modifier(modifier: &HeaderModifier) -> http_proto::RequestHeaderModifier {
    http_proto::RequestHeaderModifier {
        add: headers(&modifier.add),
        set: headers(&modifier.set),
        remove: modifier.remove.clone(),
    }
}

/// A ResponseHeaderModifier filter's body (outbound routes only).
pub fn response_header_modifier(modifier: &HeaderModifier) -> http_proto::ResponseHeaderModifier {
    http_proto::ResponseHeaderModifier {
        add: headers(&modifier.add),
        set: headers(&modifier.set),
        remove: modifier.remove.clone(),
    }
}

/// A RequestRedirect filter's body.
pub fn redirect(redirect: &RequestRedirect) -> http_proto::RequestRedirect {
    use http_proto::path_modifier::Replace;
    http_proto::RequestRedirect {
        scheme: redirect.scheme.as_deref().map(http_types::Scheme::from),
        host: redirect.hostname.clone().unwrap_or_default(),
        path: redirect.path.as_ref().and_then(|path| {
            let replace = match path.modifier_type {
                PathModifierType::ReplaceFullPath => {
                    path.replace_full_path.clone().map(Replace::Full)
                }
                PathModifierType::ReplacePrefixMatch => {
                    path.replace_prefix_match.clone().map(Replace::Prefix)
                }
            };
            replace.map(|replace| http_proto::PathModifier {
                replace: Some(replace),
            })
        }),
        port: redirect.port.map(u32::from).unwrap_or_default(),
        status: u32::from(redirect.status_code),
    }
}
