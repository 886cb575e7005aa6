//! What the per-request stages share once they know the endpoint: sending a
//! request upstream and streaming the response back, tunnels for Upgrade and
//! CONNECT, and the proxy's own error responses. Used by [`super::forward`]
//! (one address) and [`super::logical`] (routed, retried, balanced), which do
//! not import each other's helpers.
//!
//! ```text
//! proxy_to ─► request rewritten for the next hop (prepare_request)
//!          ─► send: h1 pool | h2 conn (HTTP/1 upgraded to a proxy that takes h2)
//!             | own connection for Upgrade/CONNECT ─► raw tunnel after the 101/2xx
//!          ─► proxied_response (hop-by-hop stripped, body recorded at its end)
//! error_response: status, grpc-status and l5d-proxy-error for a ProxyError
//! ```

use crate::context::{ConnectionContext, Target};
use crate::discovery::EndpointMeta;
use crate::http::body::{ProxyBody, ResponseRecorder};
use crate::http::client::{Endpoint, HttpClient, MeshedSend, SendError};
use crate::http::errors::{L5D_PROXY_ERROR, ProxyError};
use crate::http::header_case::{self, L5D_ORIG_HEADER_CASE};
use crate::http::request_body::RequestBody;
use crate::http::{headers, orig_proto};
use crate::metrics::labels::TargetLabels;
use crate::routing::Plan;
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;

/// Sends `request` to `addr` and streams the response back; Upgrade and
/// CONNECT requests become raw tunnels after the 101/2xx. From a peer proxy
/// (`mesh_client`), an upgraded HTTP/1 request goes on as HTTP/1 again (its
/// header names' case restored) and `l5d-client-id` is set.
pub(crate) async fn proxy_to(
    context: &Arc<ConnectionContext>,
    mut request: Request<Incoming>,
    upstream: Upstream,
    recorder: ResponseRecorder,
    is_grpc: bool,
    mesh_client: bool,
) -> Response<ProxyBody> {
    let explicit = context.target == Target::Explicit;
    let downgraded = mesh_client && orig_proto::downgrade_request(&mut request);
    // Never passed on as is: honoured (names respelled) or dropped.
    let spellings = headers::remove_rare(request.headers_mut(), &L5D_ORIG_HEADER_CASE);
    let verified_peer = mesh_client && context.client_identity.is_some();
    if let Some(spellings) = spellings
        && header_case::honour_spellings(verified_peer, downgraded)
        && let Ok(spellings) = spellings.to_str()
        && let Some(case_map) = Box::pin(context.proxy.case_maps.for_spellings(spellings)).await
    {
        request.extensions_mut().extend(case_map);
    }
    if mesh_client {
        set_client_id(request.headers_mut(), context.client_identity.as_deref());
    }
    let upgrade = is_upgrade(&request);
    prepare_request(&mut request, explicit, upgrade);
    let addr = upstream.endpoint.addr;
    let endpoint = upstream.endpoint;
    let client = context.proxy.client(context.direction);
    let result = if upgrade {
        let downstream = hyper::upgrade::on(&mut request);
        let is_connect = request.method() == Method::CONNECT;
        // Boxed, as every path most requests do not take (see forward).
        Box::pin(client.send_upgrade(&endpoint, request.map(RequestBody::Streaming)))
            .await
            .map(|mut response| {
                let switched = response.status() == StatusCode::SWITCHING_PROTOCOLS
                    || (is_connect && response.status().is_success());
                if switched {
                    let upstream = hyper::upgrade::on(&mut response);
                    spawn_tunnel(context, downstream, upstream, addr);
                }
                response
            })
    } else {
        send(
            client,
            &endpoint,
            upstream.peer,
            request.map(RequestBody::Streaming),
        )
        .await
        .map_err(ProxyError::from)
    };
    match result {
        Ok(mut response) => {
            if downgraded {
                orig_proto::upgrade_response(&mut response);
            }
            proxied_response(response, upgrade, recorder)
        }
        Err(error) => error_response(context, error, is_grpc, Some(recorder)),
    }
}

/// The header telling the app who the (mutually authenticated) client is.
pub(crate) const L5D_CLIENT_ID: HeaderName = HeaderName::from_static("l5d-client-id");

/// Replaces any client-supplied `l5d-client-id` with the verified client
/// identity, or removes it when there is none.
pub(crate) fn set_client_id(headers: &mut http::HeaderMap, client_identity: Option<&str>) {
    match client_identity.map(HeaderValue::from_str) {
        // `insert` replaces every value the client sent.
        Some(Ok(value)) => {
            headers.insert(L5D_CLIENT_ID, value);
        }
        Some(Err(_)) | None => {
            headers::remove_rare(headers, &L5D_CLIENT_ID);
        }
    }
}

/// Whether the request switches protocols (HTTP/1 Upgrade or CONNECT).
pub(crate) fn is_upgrade<B>(request: &Request<B>) -> bool {
    request.version() != Version::HTTP_2
        && (request.method() == Method::CONNECT || headers::wants_upgrade(request.headers()))
}

/// The header names of an outbound HTTP/1 request as its client wrote
/// them, sent along when the request crosses an HTTP/2 hop.
#[derive(Clone, Debug)]
pub(crate) struct OrigHeaderCase(pub(crate) String);

/// An endpoint to send to, and what its proxy takes.
pub(crate) struct Upstream {
    /// Where and how to connect.
    pub endpoint: Endpoint,
    /// What the endpoint's proxy understands.
    pub peer: PeerProtocol,
}

/// What an endpoint's proxy understands, from discovery's hints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PeerProtocol {
    /// HTTP/1 requests travel as HTTP/2 (`l5d-orig-proto`).
    pub h2: bool,
    /// It restores header names' case from `l5d-orig-header-case` (a weft
    /// proxy); other peers are never sent the header.
    pub restores_header_case: bool,
}

impl PeerProtocol {
    /// The peer discovery's `meta` describes (none: a plain HTTP/1 server).
    pub(crate) fn of(meta: Option<&EndpointMeta>) -> PeerProtocol {
        meta.map(|meta| PeerProtocol {
            h2: meta.h2,
            restores_header_case: meta.restores_header_case,
        })
        .unwrap_or_default()
    }
}

impl Upstream {
    /// The upstream for `addr` (metric `labels`) with discovery's `meta` (if
    /// any): mutual TLS when it has an identity, and its protocol hints.
    pub(crate) fn new(
        context: &ConnectionContext,
        addr: SocketAddr,
        labels: Arc<TargetLabels>,
        meta: Option<&EndpointMeta>,
    ) -> Result<Upstream, ProxyError> {
        let identity = meta.and_then(|meta| meta.identity.as_ref());
        let transport_port = meta.and_then(|meta| meta.opaque_transport_port);
        Ok(Upstream {
            endpoint: Endpoint {
                addr,
                direction: context.direction,
                labels,
                connect_timeout: context.proxy.connect_timeout(context.direction),
                tls: context.proxy.client_tls(identity, transport_port)?,
            },
            peer: PeerProtocol::of(meta),
        })
    }
}

/// Sends a request over the endpoint's HTTP/1.1 pool or HTTP/2 connection;
/// to a proxy that takes HTTP/2 (`peer.h2`), HTTP/1 requests take a free
/// HTTP/1.1 connection of its few and otherwise travel upgraded, with the
/// names' original case (`l5d-orig-header-case`) only to a proxy that
/// restores it.
pub(crate) async fn send(
    client: &HttpClient,
    endpoint: &Endpoint,
    peer: PeerProtocol,
    request: Request<RequestBody>,
) -> Result<Response<Incoming>, SendError> {
    if request.version() == Version::HTTP_2 {
        return client.send_http2(endpoint, request).await;
    }
    if !peer.h2 {
        return client.send_http1(endpoint, request).await;
    }
    let mut request = match client.send_meshed_http1(endpoint, request).await {
        MeshedSend::Sent(result) => return result,
        MeshedSend::Busy(request) => request,
    };
    let original = orig_proto::upgrade_request(&mut request);
    // The spellings stay in the extensions: an unsent request that goes to
    // another endpoint (its header removed on restore) may carry them again.
    if header_case::send_spellings(peer.h2, peer.restores_header_case)
        && let Some(OrigHeaderCase(spellings)) = request.extensions().get()
        && let Ok(value) = HeaderValue::from_str(spellings)
    {
        request.headers_mut().insert(L5D_ORIG_HEADER_CASE, value);
    }
    match client.send_http2(endpoint, request).await {
        Ok(mut response) => {
            orig_proto::downgrade_response(&mut response, original);
            Ok(response)
        }
        Err(mut error) => {
            if let Some(unsent) = error.unsent.as_mut() {
                orig_proto::restore_request(unsent, original);
            }
            Err(error)
        }
    }
}

/// Rewrites the request for the next hop.
pub(crate) fn prepare_request(request: &mut Request<Incoming>, explicit: bool, upgrade: bool) {
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
pub(crate) fn proxied_response(
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
/// `target`, by the connection's own entry point (its context's
/// `serve_tunnel`).
pub(crate) fn open_tunnel(
    context: &Arc<ConnectionContext>,
    request: &mut Request<Incoming>,
    target: SocketAddr,
    meta: Option<EndpointMeta>,
    mut recorder: ResponseRecorder,
) -> Response<ProxyBody> {
    let on_upgrade = hyper::upgrade::on(request);
    let serve_tunnel = context.serve_tunnel;
    let tunnel = ConnectionContext::new(
        context.proxy.clone(),
        context.direction,
        context.client_addr,
        Target::Addr(target),
        context.drain.clone(),
        serve_tunnel,
    );
    // A tunnel to an endpoint discovery described keeps its identity and
    // labels: what travels inside goes over mutual TLS like any request.
    let tunnel = match meta {
        Some(meta) => tunnel.with_plan(Plan::Endpoint {
            addr: target,
            meta,
            opaque: false,
        }),
        None => tunnel,
    };
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => serve_tunnel(Box::new(TokioIo::new(upgraded)), tunnel).await,
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
pub(crate) fn error_response(
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
    let tapped_as_response = error.tapped_as_response();
    let recorder = recorder.map(|mut recorder| {
        if !tapped_as_response {
            recorder.proxy_error();
        }
        recorder.head(parts.status.as_u16(), &parts.headers);
        recorder
    });
    Response::from_parts(parts, ProxyBody::empty(recorder))
}
