//! The per-request stage: decide where a request goes, forward it, and
//! stream the response back — in three named phases.
//!
//! 1. **Context**: the target endpoint (the connection's fixed target, or the
//!    request's own on the explicit listener) and the metric labels.
//! 2. **Early checks**: malformed targets, unresolvable names and forwarding
//!    loops are answered by the proxy (see [`errors`](crate::http::errors)).
//! 3. **Proxy**: hop-by-hop headers stripped, the request sent over the
//!    endpoint's pooled HTTP/1.1 or multiplexed HTTP/2 connection (or its own
//!    connection for Upgrade/CONNECT, which become raw tunnels after the
//!    101/2xx), and the response body streamed back and recorded at its end.

use crate::connect;
use crate::dispatch::{self, ConnectionContext, Target, connect_tls};
use crate::http::body::{ProxyBody, ResponseRecorder};
use crate::http::client::Endpoint;
use crate::http::errors::{L5D_PROXY_ERROR, ProxyError};
use crate::http::headers;
use crate::metrics::labels::HttpLabels;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Where one request goes.
struct RequestTarget {
    addr: SocketAddr,
    /// The authority's metric label.
    authority: Arc<str>,
}

/// Handles one request from a client connection.
pub async fn handle(
    context: Arc<ConnectionContext>,
    mut request: Request<Incoming>,
) -> Response<ProxyBody> {
    let started = Instant::now();
    let is_grpc = headers::is_grpc(request.headers()) && request.version() == Version::HTTP_2;

    // 1. Context: the target and the labels.
    let target = match request_target(&context, &request).await {
        Ok(target) => target,
        Err(error) => return error_response(&context, error, is_grpc, None),
    };
    let labels = HttpLabels {
        direction: context.direction,
        authority: target.authority,
        target: context.target_labels(target.addr),
    };
    let metrics = &context.proxy.metrics.http;
    metrics.request(&labels, &context.metric_handles);
    let recorder = ResponseRecorder::new(
        metrics.clone(),
        context.metric_handles.clone(),
        labels,
        started,
    );

    // 2. Early checks.
    if context.proxy.is_own_listener(target.addr) {
        return error_response(
            &context,
            ProxyError::Loop(target.addr),
            is_grpc,
            Some(recorder),
        );
    }
    let explicit = context.target == Target::Explicit;
    if explicit && request.method() == Method::CONNECT {
        return open_tunnel(&context, &mut request, target.addr, recorder);
    }

    // 3. Proxy.
    let upgrade = request.version() != Version::HTTP_2
        && (request.method() == Method::CONNECT || headers::wants_upgrade(request.headers()));
    prepare_request(&mut request, explicit, upgrade);
    let endpoint = Endpoint {
        addr: target.addr,
        direction: context.direction,
        tls: connect_tls(context.direction),
        connect_timeout: context.proxy.connect_timeout(context.direction),
    };
    let client = context.proxy.client(context.direction);
    let result = if upgrade {
        let downstream = hyper::upgrade::on(&mut request);
        let is_connect = request.method() == Method::CONNECT;
        client
            .send_upgrade(&endpoint, request)
            .await
            .map(|mut response| {
                let switched = response.status() == StatusCode::SWITCHING_PROTOCOLS
                    || (is_connect && response.status().is_success());
                if switched {
                    let upstream = hyper::upgrade::on(&mut response);
                    spawn_tunnel(&context, downstream, upstream, target.addr);
                }
                response
            })
    } else if request.version() == Version::HTTP_2 {
        client.send_http2(&endpoint, request).await
    } else {
        client.send_http1(&endpoint, request).await
    };
    match result {
        Ok(response) => proxied_response(response, upgrade, recorder),
        Err(error) => error_response(&context, error, is_grpc, Some(recorder)),
    }
}

/// The request's endpoint and authority.
async fn request_target(
    context: &ConnectionContext,
    request: &Request<Incoming>,
) -> Result<RequestTarget, ProxyError> {
    match context.target {
        Target::Addr(addr) => {
            let authority = match headers::authority_of(request.uri(), request.headers()) {
                Some(authority) => context.authority_label(authority),
                None => context.authority_label(&addr.to_string()),
            };
            Ok(RequestTarget { addr, authority })
        }
        Target::Explicit => {
            let explicit = headers::explicit_target(
                request.method(),
                request.uri(),
                request.version() == Version::HTTP_2,
            )?;
            let addr = connect::resolve(&explicit.host, explicit.port).await?;
            Ok(RequestTarget {
                addr,
                authority: context.authority_label(&explicit.authority),
            })
        }
    }
}

/// Rewrites the request for the next hop.
fn prepare_request(request: &mut Request<Incoming>, explicit: bool, upgrade: bool) {
    let is_http2 = request.version() == Version::HTTP_2;
    if explicit && !is_http2 {
        // A proxy request names the target in absolute form; the origin
        // server gets origin-form and a Host header naming that target.
        if let Some(authority) = request.uri().authority().cloned()
            && let Ok(host) = HeaderValue::from_str(authority.as_str())
        {
            request.headers_mut().insert(header::HOST, host);
        }
        *request.uri_mut() = headers::origin_form(request.uri());
    }
    headers::strip_hop_by_hop(request.headers_mut(), upgrade, is_http2);
}

/// The target's response, on its way back.
fn proxied_response(
    response: Response<Incoming>,
    upgrade: bool,
    mut recorder: ResponseRecorder,
) -> Response<ProxyBody> {
    let (mut parts, body) = response.into_parts();
    let switching = upgrade && parts.status == StatusCode::SWITCHING_PROTOCOLS;
    headers::strip_hop_by_hop(&mut parts.headers, switching, false);
    recorder.head(parts.status.as_u16(), &parts.headers);
    Response::from_parts(parts, ProxyBody::streaming(body, recorder))
}

/// Answers CONNECT on the explicit listener: 200, then whatever the client
/// sends through the tunnel is detected and proxied like any connection to
/// `target`.
fn open_tunnel(
    context: &Arc<ConnectionContext>,
    request: &mut Request<Incoming>,
    target: SocketAddr,
    mut recorder: ResponseRecorder,
) -> Response<ProxyBody> {
    let on_upgrade = hyper::upgrade::on(request);
    let tunnel = ConnectionContext::new(
        context.proxy.clone(),
        context.direction,
        context.client_addr,
        Target::Addr(target),
        context.drain.clone(),
    );
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => dispatch::serve(TokioIo::new(upgraded), tunnel).await,
            Err(error) => tracing::debug!(%error, "CONNECT tunnel was not established"),
        }
    });
    let (parts, ()) = Response::new(()).into_parts();
    recorder.head(parts.status.as_u16(), &parts.headers);
    Response::from_parts(parts, ProxyBody::empty(Some(recorder)))
}

/// Joins the client's and the target's upgraded connections into a raw
/// tunnel once both sides have switched protocols.
fn spawn_tunnel(
    context: &Arc<ConnectionContext>,
    downstream: hyper::upgrade::OnUpgrade,
    upstream: hyper::upgrade::OnUpgrade,
    target: SocketAddr,
) {
    let drain = context.drain.clone();
    tokio::spawn(async move {
        let _drain = drain;
        let (downstream, upstream) = match tokio::try_join!(downstream, upstream) {
            Ok(both) => both,
            Err(error) => {
                tracing::debug!(%target, %error, "upgrade did not complete");
                return;
            }
        };
        let mut downstream = TokioIo::new(downstream);
        let mut upstream = TokioIo::new(upstream);
        if let Err(error) = tokio::io::copy_bidirectional(&mut downstream, &mut upstream).await {
            tracing::debug!(%target, %error, "upgraded tunnel ended with an error");
        }
    });
}

/// A response the proxy makes itself: the status for the error (gRPC
/// clients get HTTP 200 with `grpc-status` in a trailers-only response) and
/// the reason in `l5d-proxy-error`.
fn error_response(
    context: &ConnectionContext,
    error: ProxyError,
    is_grpc: bool,
    recorder: Option<ResponseRecorder>,
) -> Response<ProxyBody> {
    context.proxy.log_traffic_error(
        context.direction,
        context.client_addr,
        "answered with a proxy error",
        &error,
    );
    context
        .proxy
        .metrics
        .http_errors
        .record(context.direction, error.metric_label());
    let mut response = Response::new(());
    if !is_grpc {
        *response.status_mut() = error.status();
    }
    let headers = response.headers_mut();
    headers.insert(L5D_PROXY_ERROR, error.header_value());
    if is_grpc {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        headers.insert("grpc-status", HeaderValue::from(error.grpc_status()));
        headers.insert("grpc-message", error.header_value());
    } else {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    }
    let (parts, ()) = response.into_parts();
    let recorder = recorder.map(|mut recorder| {
        recorder.head(parts.status.as_u16(), &parts.headers);
        recorder
    });
    Response::from_parts(parts, ProxyBody::empty(recorder))
}
