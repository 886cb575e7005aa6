//! Everything that can go wrong while proxying a request, and the one place
//! that maps each failure to an HTTP status, a gRPC status, a metric label
//! and the `l5d-proxy-error` header.

use crate::connect::{ConnectError, ResolveError};
use crate::http::headers::ExplicitTargetError;
use crate::routing::PickError;
use http::{HeaderValue, StatusCode};
use std::net::SocketAddr;
use std::time::Duration;

/// Header carrying the reason of a proxy-generated response.
pub(crate) const L5D_PROXY_ERROR: &str = "l5d-proxy-error";

/// gRPC status codes the proxy produces.
pub(crate) mod grpc_code {
    /// INTERNAL.
    pub(crate) const INTERNAL: u32 = 13;
    /// UNAVAILABLE.
    pub(crate) const UNAVAILABLE: u32 = 14;
    /// DEADLINE_EXCEEDED.
    pub(crate) const DEADLINE_EXCEEDED: u32 = 4;
    /// PERMISSION_DENIED.
    pub(crate) const PERMISSION_DENIED: u32 = 7;
    /// NOT_FOUND.
    pub(crate) const NOT_FOUND: u32 = 5;
}

/// Why the proxy answered a request itself.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyError {
    /// The request names no target the proxy can use.
    #[error("request has no authority (Host header or absolute URI)")]
    MissingAuthority,
    /// A request on the explicit listener that is not a proxy request.
    #[error(transparent)]
    ExplicitTarget(#[from] ExplicitTargetError),
    /// The target's name cannot be resolved.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// The target cannot be reached.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The connection to the target failed while the request was in flight.
    #[error("connection to {target} failed: {reason}")]
    Upstream {
        /// The endpoint.
        target: SocketAddr,
        /// What failed.
        reason: String,
    },
    /// The request would be forwarded back to the proxy itself.
    #[error("request would loop back to the proxy at {0}")]
    Loop(SocketAddr),
    /// Mutual TLS to the endpoint's proxy failed (wrong or untrusted identity).
    #[error(transparent)]
    Tls(#[from] crate::tls::transport::TlsConnectError),
    /// The endpoint requires mutual TLS and this proxy has no certificate yet.
    #[error(transparent)]
    NoIdentity(#[from] crate::tls::transport::NoIdentity),
    /// No endpoint was picked for a logical service (fail-fast, or too
    /// many requests waiting).
    #[error(transparent)]
    Pick(#[from] PickError),
    /// The route's timeout passed before response headers arrived.
    #[error("HTTP response timeout after {}", crate::config::format_duration(*.0))]
    ResponseTimeout(Duration),
    /// The client's request body failed (bad chunked encoding, a reset
    /// stream) while it was being sent on: the client's fault, not the
    /// app's.
    #[error("the client's request body failed: {reason}")]
    ClientBody {
        /// What was wrong with it.
        reason: String,
    },
    /// The request carries more than one `Host` header (RFC 9112 §3.2).
    #[error("request has more than one Host header")]
    DuplicateHost,
    /// The port's inbound policy does not authorize the client.
    #[error("unauthorized request on route")]
    Unauthorized,
    /// The target's outbound policy has routes and none matches.
    #[error("no route found for request")]
    NoRoute,
    /// The matched route has no backend the proxy can use.
    #[error("route {route} has no usable backend")]
    NoBackend {
        /// The route's name.
        route: String,
    },
    /// A route's failure injector failed the request.
    #[error("{message}")]
    InjectedFailure {
        /// The HTTP status answered.
        status: StatusCode,
        /// The gRPC status answered to gRPC clients.
        grpc_code: Option<u32>,
        /// The injector's message.
        message: String,
    },
}

impl ProxyError {
    /// The HTTP status answered.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ProxyError::MissingAuthority
            | ProxyError::ExplicitTarget(_)
            | ProxyError::ClientBody { .. }
            | ProxyError::DuplicateHost => StatusCode::BAD_REQUEST,
            ProxyError::Connect(ConnectError::TimedOut { .. }) => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Resolve(_)
            | ProxyError::Connect(_)
            | ProxyError::Upstream { .. }
            | ProxyError::Tls(_)
            | ProxyError::Loop(_) => StatusCode::BAD_GATEWAY,
            ProxyError::Pick(_) | ProxyError::NoIdentity(_) | ProxyError::NoBackend { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ProxyError::ResponseTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Unauthorized => StatusCode::FORBIDDEN,
            ProxyError::NoRoute => StatusCode::NOT_FOUND,
            ProxyError::InjectedFailure { status, .. } => *status,
        }
    }

    /// The gRPC status answered to gRPC clients (with HTTP 200).
    pub(crate) fn grpc_status(&self) -> u32 {
        match self {
            ProxyError::MissingAuthority
            | ProxyError::ExplicitTarget(_)
            | ProxyError::ClientBody { .. }
            | ProxyError::DuplicateHost => grpc_code::INTERNAL,
            ProxyError::Connect(ConnectError::TimedOut { .. }) | ProxyError::ResponseTimeout(_) => {
                grpc_code::DEADLINE_EXCEEDED
            }
            ProxyError::Unauthorized => grpc_code::PERMISSION_DENIED,
            ProxyError::NoRoute => grpc_code::NOT_FOUND,
            ProxyError::InjectedFailure {
                grpc_code: Some(code),
                ..
            } => *code,
            _ => grpc_code::UNAVAILABLE,
        }
    }

    /// The `*_http_errors_total` label.
    pub(crate) fn metric_label(&self) -> &'static str {
        match self {
            ProxyError::MissingAuthority
            | ProxyError::ExplicitTarget(_)
            | ProxyError::ClientBody { .. }
            | ProxyError::DuplicateHost => "malformed request",
            ProxyError::Resolve(_) => "resolve",
            ProxyError::Connect(error) => error.metric_label(),
            ProxyError::Upstream { .. } => "i/o",
            ProxyError::Loop(_) => "loop",
            ProxyError::Tls(_) => "tls",
            ProxyError::NoIdentity(_) => "identity required",
            ProxyError::Pick(PickError::FailFast { .. }) => "failfast",
            ProxyError::Pick(PickError::Overloaded { .. }) => "loadshed",
            ProxyError::Pick(PickError::Ejected { .. }) => "unavailable",
            ProxyError::ResponseTimeout(_) => "response timeout",
            ProxyError::Unauthorized => "unauthorized",
            ProxyError::NoRoute => "no route",
            ProxyError::NoBackend { .. } => "no backend",
            ProxyError::InjectedFailure { .. } => "injected failure",
        }
    }

    /// Whether the tap shows the answer as a response (an authorization
    /// denial: `weft tap` shows the 403) rather than as a failed stream.
    pub(crate) fn tapped_as_response(&self) -> bool {
        matches!(self, ProxyError::Unauthorized)
    }

    /// The reason as a header value (the message, with anything a header
    /// cannot carry replaced).
    pub(crate) fn header_value(&self) -> HeaderValue {
        let message: String = self
            .to_string()
            .chars()
            .map(|character| {
                if character.is_ascii() && !character.is_ascii_control() {
                    character
                } else {
                    '?'
                }
            })
            .collect();
        HeaderValue::from_str(&message).unwrap_or(HeaderValue::from_static("proxy error"))
    }
}

/// Whose fault a failed exchange with an upstream was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UpstreamFault {
    /// The client's request body failed while being sent on.
    ClientBody,
    /// The connection to the target failed.
    Target,
}

impl UpstreamFault {
    /// Whose fault it was: the client's whenever its body failed, whatever
    /// hyper reports on the upstream side (a user-body error over HTTP/1, a
    /// reset stream over HTTP/2, or a connection closed in between).
    pub(crate) fn of(client_body_failed: bool) -> UpstreamFault {
        if client_body_failed {
            UpstreamFault::ClientBody
        } else {
            UpstreamFault::Target
        }
    }

    /// The error for a failed exchange with `target`, described by `reason`.
    pub(crate) fn error(self, target: SocketAddr, reason: String) -> ProxyError {
        match self {
            UpstreamFault::ClientBody => ProxyError::ClientBody { reason },
            UpstreamFault::Target => ProxyError::Upstream { target, reason },
        }
    }
}

/// The error for a hyper error from an exchange with `target`:
/// [`ProxyError::ClientBody`] when the client's body failed, else
/// [`ProxyError::Upstream`].
pub(crate) fn upstream_error(
    target: SocketAddr,
    error: &hyper::Error,
    client_body_failed: bool,
) -> ProxyError {
    let fault = UpstreamFault::of(client_body_failed);
    let reason = match fault {
        // The body's own error is the cause of hyper's (HTTP/1); over
        // HTTP/2 hyper says only that the stream was reset.
        UpstreamFault::ClientBody => std::error::Error::source(error)
            .map_or_else(|| describe_upstream_error(error), ToString::to_string),
        UpstreamFault::Target => describe_upstream_error(error),
    };
    fault.error(target, reason)
}

/// Describes a hyper error from the upstream connection.
pub(crate) fn describe_upstream_error(error: &hyper::Error) -> String {
    if error.is_incomplete_message() {
        return "connection closed before the response completed".to_string();
    }
    if error.is_canceled() {
        return "request canceled".to_string();
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_mapping_table() {
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let mut table: Vec<(ProxyError, u16, u32, &str)> = vec![
            (ProxyError::MissingAuthority, 400, 13, "malformed request"),
            (
                ProxyError::ExplicitTarget(ExplicitTargetError::NotProxyRequest),
                400,
                13,
                "malformed request",
            ),
            (
                ProxyError::Connect(ConnectError::Refused(addr)),
                502,
                14,
                "connect refused",
            ),
            (
                ProxyError::Connect(ConnectError::TimedOut {
                    addr,
                    timeout: Duration::from_secs(1),
                }),
                504,
                4,
                "connect timeout",
            ),
            (
                ProxyError::Resolve(ResolveError {
                    host: "x".into(),
                    reason: "no".into(),
                }),
                502,
                14,
                "resolve",
            ),
            (
                ProxyError::Upstream {
                    target: addr,
                    reason: "reset".into(),
                },
                502,
                14,
                "i/o",
            ),
            (
                ProxyError::Pick(PickError::FailFast {
                    authority: "web.shop.svc.cluster.local:80".into(),
                    after: Duration::from_secs(3),
                }),
                503,
                14,
                "failfast",
            ),
            (
                ProxyError::Pick(PickError::Overloaded {
                    authority: "web.shop.svc.cluster.local:80".into(),
                }),
                503,
                14,
                "loadshed",
            ),
            (
                ProxyError::ResponseTimeout(Duration::from_millis(100)),
                504,
                4,
                "response timeout",
            ),
        ];
        table.push((
            ProxyError::ClientBody {
                reason: "invalid chunk size line".into(),
            },
            400,
            13,
            "malformed request",
        ));
        for (error, status, grpc, label) in table {
            assert_eq!(error.status().as_u16(), status, "{error}");
            assert_eq!(error.grpc_status(), grpc, "{error}");
            assert_eq!(error.metric_label(), label, "{error}");
        }
    }

    #[test]
    fn a_failed_client_body_is_the_clients_fault() {
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let table = [
            (true, UpstreamFault::ClientBody, 400, "malformed request"),
            (false, UpstreamFault::Target, 502, "i/o"),
        ];
        for (client_body_failed, fault, status, label) in table {
            assert_eq!(UpstreamFault::of(client_body_failed), fault);
            let error = fault.error(addr, "reason".into());
            assert_eq!(error.status().as_u16(), status, "{error}");
            assert_eq!(error.metric_label(), label, "{error}");
        }
        let error = UpstreamFault::ClientBody.error(addr, "invalid chunk size line".into());
        assert_eq!(
            error.header_value().to_str().unwrap(),
            "the client's request body failed: invalid chunk size line"
        );
    }

    #[test]
    fn header_values_are_always_valid() {
        let error = ProxyError::Resolve(ResolveError {
            host: "bad\nhost\u{e9}".into(),
            reason: "nope".into(),
        });
        assert_eq!(
            error.header_value().to_str().unwrap(),
            "cannot resolve bad?host?: nope"
        );
    }
}
