//! Inbound: a peer (usually another proxy) calling the local app. One
//! connection, top to bottom:
//!
//! ```text
//! accept ─► target: WEFT_PROXY_INBOUND_FORWARD_ADDR, else SO_ORIGINAL_DST
//!   │       (a direct connection to the inbound port targets the proxy itself)
//!   ├─ opaque port (not direct) ─► authorize ─► tcp::forward
//!   ├─ the port's policy says opaque: with an identity, TLS for it is
//!   │  terminated first (the client's identity authorizes), the rest TCP
//!   ▼
//! detect ─► TLS for our identity ─► terminate (mutual TLS, client identity)
//!   │                                 ├─ transport header: verified client and
//!   │                                 │  an allowed port, else refused ─► HTTP or TCP as it says
//!   │                                 └─ no header: what is inside starts over at detect
//!   ├─ direct, without TLS and a transport header ─► refused (it would loop)
//!   ├─ request line over 8 KiB ─► 431; malformed request line ─► 400
//!   ├─ a silent client (WEFT_PROXY_SERVER_FIRST_DELAY) the policy admits:
//!   │  the app connected early; it speaks first ─► authorize ─► relayed as TCP
//!   ├─ detect timeout, action close (default with identity) ─► closed
//!   ├─ HTTP/1, HTTP/2 ─► http::server (peer proxies: mesh HTTP/2 limits)
//!   │                     └─ each request authorized by the port's current policy
//!   └─ other TLS, other, timeout ─► authorize ─► tcp::forward (closed if revoked)
//! ```
//!
//! Authorization (who may use the port, from the controller's
//! InboundServerPolicies or the default policy) is in
//! [`crate::inbound_authz`] (TCP) and [`crate::http::authorize`] (HTTP).
//!
//! The decisions themselves (which ports a transport header may name, the
//! refusal reasons) are pure functions in [`crate::inbound_policy`].

use crate::config::DetectTimeoutAction;
use crate::context::{ConnectionContext, Target};
use crate::detect::{Detection, Protocol};
use crate::direction::Direction;
use crate::drain::DrainWatch;
use crate::http::server::ServerSettings;
use crate::inbound_policy::{self, InboundPorts, Refusal};
use crate::io::{Io, MeteredIo, PrefixedIo};
use crate::listen::Accepted;
use crate::metrics::labels::{Peer, TargetLabels, TcpLabels, TlsStatus};
use crate::policy::inbound::{PortPolicy, Protocol as PolicyProtocol};
use crate::proxy::Proxy;
use crate::routing::Plan;
use crate::server_first::{self, Early, EarlyTarget, FirstBytes};
use crate::tcp::{self, Upstream};
use crate::tls::accept::{self, Accepted as TlsAccepted};
use crate::tls::config::TlsConfigs;
use crate::tls::transport_header::SessionProtocol;
use crate::{http, inbound_authz};
use futures::future::BoxFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The inbound HTTP server's settings: HTTP/2 clients are peer proxies,
/// each multiplexing many clients.
const HTTP_SERVER: ServerSettings = ServerSettings {
    mesh_clients: true,
    sniff_header_case: false,
};

/// Serves a connection accepted on the inbound listener to completion.
pub(crate) fn accept(
    accepted: Accepted,
    proxy: Arc<Proxy>,
    drain: DrainWatch,
) -> BoxFuture<'static, ()> {
    // Explicit mode sends everything to the forward address. A direct
    // connection to the inbound port (not redirected) targets the proxy
    // itself: only mutual TLS with a transport header (which names the
    // port) is served; anything else would loop back here.
    let target = match proxy.config.inbound_forward_addr {
        Some(forward) => forward,
        None if accepted.redirected => accepted.original,
        None => accepted.local,
    };
    // The TLS status is known only once the first bytes are read (and,
    // for mutual TLS, the client's identity after the handshake).
    let metrics = Arc::new(proxy.metrics.tcp.open_unsettled(TcpLabels {
        direction: Direction::Inbound,
        peer: Peer::Source,
        target: TargetLabels::new(target, TlsStatus::NoTlsFromRemote),
    }));
    let mut context = ConnectionContext::new(
        proxy,
        Direction::Inbound,
        accepted.client_addr,
        Target::Addr(target),
        drain,
        serve,
    );
    context.accept_metrics = Some(metrics.clone());
    Box::pin(serve_connection(
        MeteredIo::shared(accepted.stream, metrics),
        context,
    ))
}

/// Serves an inbound connection (accepted, or the inside of terminated TLS)
/// to completion.
pub(crate) fn serve(io: Box<dyn Io>, context: ConnectionContext) -> BoxFuture<'static, ()> {
    Box::pin(serve_connection(io, context))
}

/// Serves a connection to completion. Detection, TLS and the TCP paths run in a box of
/// their own, freed before HTTP is served ([`http::server::after_detection`]).
fn serve_connection<I: Io>(io: I, context: ConnectionContext) -> impl Future<Output = ()> + Send {
    http::server::after_detection(detect_and_serve(io, context))
}

/// Serves the connection to completion unless it carries HTTP: then the
/// HTTP server's future is returned, to run once this one is dropped.
async fn detect_and_serve<I: Io>(
    mut io: I,
    mut context: ConnectionContext,
) -> Option<BoxFuture<'static, ()>> {
    let proxy = context.proxy.clone();
    // Inbound connections always have one target (see `accept`).
    let Target::Addr(target) = context.target else {
        return None;
    };

    // 1. Before reading: a connection to the proxy's own port carries mutual
    //    TLS with a transport header or nothing. Opaque ports skip detection:
    //    the server may speak first.
    //    The port's policy may also say opaque (or TLS the app terminates).
    let direct = is_direct(&proxy, target);
    // (A direct connection's own port has no policy: what is inside the
    // TLS is authorized for the port its transport header names.)
    let policy = (!direct).then(|| proxy.inbound_policies.port(target.port()));
    let protocol = match &policy {
        Some(policy) => policy.borrow().protocol.clone(),
        None => PolicyProtocol::Detect { timeout: None },
    };
    let config_opaque = proxy.config.opaque_ports.contains(target.port());
    let policy_opaque = matches!(protocol, PolicyProtocol::Opaque | PolicyProtocol::Tls);
    // On a port the policy makes opaque, mesh TLS for our identity is still
    // terminated first (as linkerd2-proxy does; in explicit mode meshed
    // clients arrive so): the client's identity is what authorizes it.
    // Whatever else arrives is forwarded as TCP.
    let opaque_after_tls = !direct
        && policy_opaque
        && !config_opaque
        && context.client_identity.is_none()
        && proxy.tls.is_some();
    if !direct && (config_opaque || policy_opaque) && !opaque_after_tls {
        proxy.metrics.detected(Direction::Inbound, "opaque_port");
        context.settle_accept(None);
        let identity = context.client_identity.clone();
        inbound_authz::forward(&proxy, io, target, context.client_addr, identity).await;
        return None;
    }

    // 2. Detect (for as long as the port's policy says, else the proxy's
    //    detect timeout).
    let timeout = match protocol {
        PolicyProtocol::Detect {
            timeout: Some(timeout),
        } => timeout,
        _ => proxy.config.detect_timeout,
    };
    //    A client silent for a while may face a server that speaks first:
    //    the app is connected to early, if the port's policy admits the
    //    client as it stands (asked then, when the delay has passed).
    let early_target = if direct {
        EarlyTarget::Unknown
    } else if matches!(
        protocol,
        PolicyProtocol::Http1 | PolicyProtocol::Http2 | PolicyProtocol::Grpc
    ) {
        EarlyTarget::DeclaredHttp
    } else {
        EarlyTarget::Known
    };
    let early = server_first::early_delay(proxy.config.server_first_delay, timeout, early_target)
        .map(|delay| Early {
            delay,
            connect: || connect_early(&proxy, target, &context),
        });
    let first = server_first::detect(&mut io, timeout, early).await;
    proxy
        .metrics
        .detected(Direction::Inbound, first.metric_label());
    let detection = match first {
        FirstBytes::Client(detection) => detection,
        FirstBytes::Server {
            client_prefix,
            upstream,
        } => {
            // The app spoke first: opaque TCP, authorized once (and on
            // changes) like any.
            context.settle_accept(None);
            let io = PrefixedIo::new(client_prefix, io);
            let identity = context.client_identity.clone();
            let client_addr = context.client_addr;
            inbound_authz::forward_over(&proxy, io, target, client_addr, identity, Some(upstream))
                .await;
            return None;
        }
    };

    // 3. TLS asking for our identity is terminated, and what is inside
    //    served; other TLS passes through.
    let detection = match detection {
        Detection::Detected {
            protocol: Protocol::Tls,
            prefix,
        } => match proxy.tls.as_ref().and_then(|store| store.current()) {
            // Boxed: a connection waiting in detection keeps no room for the
            // TLS path's state.
            Some(configs) => {
                return Box::pin(terminate(io, prefix, context, target, configs)).await;
            }
            None => Detection::Detected {
                protocol: Protocol::Tls,
                prefix,
            },
        },
        other => other,
    };
    context.settle_accept(None);
    if opaque_after_tls {
        let prefix = match detection {
            Detection::Detected { prefix, .. }
            | Detection::TimedOut { prefix }
            | Detection::HttpTooLarge { prefix }
            | Detection::MalformedHttp { prefix } => prefix,
            Detection::Closed | Detection::Failed(_) => return None,
        };
        let io = PrefixedIo::new(prefix, io);
        inbound_authz::forward(&proxy, io, target, context.client_addr, None).await;
        return None;
    }

    // 4. Checks on what was read. A direct connection without a transport
    //    header would loop. What is not HTTP yet is never relayed raw where
    //    an HTTP request could follow: the app would get the client's own
    //    l5d-* headers unchecked.
    if direct && !matches!(detection, Detection::Closed | Detection::Failed(_)) {
        refuse(
            &proxy,
            context.client_addr,
            Refusal::DirectWithoutTransportHeader,
        );
        return None;
    }
    // A policy that names the HTTP version serves it whatever detection
    // made of the first bytes (Linkerd skips detection on such ports; TLS
    // is still looked for first).
    let detection = match (protocol, detection) {
        (PolicyProtocol::Http1, Detection::Detected { protocol, prefix })
            if protocol != Protocol::Tls =>
        {
            Detection::Detected {
                protocol: Protocol::Http1,
                prefix,
            }
        }
        (PolicyProtocol::Http1, Detection::TimedOut { prefix }) => Detection::Detected {
            protocol: Protocol::Http1,
            prefix,
        },
        (
            PolicyProtocol::Http2 | PolicyProtocol::Grpc,
            Detection::Detected { protocol, prefix },
        ) if protocol != Protocol::Tls => Detection::Detected {
            protocol: Protocol::Http2,
            prefix,
        },
        (PolicyProtocol::Http2 | PolicyProtocol::Grpc, Detection::TimedOut { prefix }) => {
            Detection::Detected {
                protocol: Protocol::Http2,
                prefix,
            }
        }
        (_, detection) => detection,
    };
    let prefix = match detection {
        Detection::Detected {
            protocol: protocol @ (Protocol::Http1 | Protocol::Http2),
            prefix,
        } => {
            // 5a. HTTP: per-request proxying, each request authorized by
            //     the port's current policy.
            let policy = policy.unwrap_or_else(|| proxy.inbound_policies.port(target.port()));
            context.inbound_policy = Some(PortPolicy::new(policy));
            let drain = context.drain.clone();
            let io = PrefixedIo::new(prefix, io);
            return Some(http::server::serve(
                io,
                protocol,
                Arc::new(context),
                drain,
                HTTP_SERVER,
            ));
        }
        Detection::HttpTooLarge { .. } => {
            refuse(&proxy, context.client_addr, Refusal::RequestLineTooLong);
            Box::pin(answer_and_close(io, REQUEST_LINE_TOO_LONG)).await;
            return None;
        }
        Detection::MalformedHttp { .. } => {
            refuse(&proxy, context.client_addr, Refusal::MalformedRequestLine);
            Box::pin(answer_and_close(io, MALFORMED_REQUEST_LINE)).await;
            return None;
        }
        Detection::TimedOut { .. }
            if proxy.config.inbound_detect_timeout_action() == DetectTimeoutAction::Close =>
        {
            refuse(&proxy, context.client_addr, Refusal::DetectTimeout);
            let _ = io.shutdown().await;
            return None;
        }
        Detection::Detected { prefix, .. } | Detection::TimedOut { prefix } => prefix,
        Detection::Closed => return None,
        Detection::Failed(error) => {
            tracing::debug!(client = %context.client_addr, %error, "reading the first bytes failed");
            proxy.metrics.tcp_errors.record(Direction::Inbound, "i/o");
            return None;
        }
    };
    // 5b. Anything else: opaque TCP, authorized once (and on changes).
    inbound_authz::forward(
        &proxy,
        PrefixedIo::new(prefix, io),
        target,
        context.client_addr,
        context.client_identity.clone(),
    )
    .await;
    None
}

/// Connects to the app before the client has spoken, if the port's policy
/// admits the client as it stands (`None`: not admitted, or it failed; the
/// forward that may follow detection decides and reports again).
async fn connect_early(
    proxy: &Proxy,
    target: SocketAddr,
    context: &ConnectionContext,
) -> Option<Upstream> {
    let identity = context.client_identity.as_deref();
    if !inbound_authz::admits(proxy, target, context.client_addr, identity) {
        return None;
    }
    match tcp::connect_planned(proxy, target, Plan::Original, Direction::Inbound).await {
        Ok(upstream) => Some(upstream),
        Err(failure) => {
            tracing::debug!(%target, error = %failure.error, "early connection failed");
            None
        }
    }
}

/// Terminates inbound TLS that asks for our identity, then serves what is
/// inside: per the transport header (target port, protocol) when the client
/// sent one, else detected like any connection. Other TLS passes through.
/// What is inside is returned to be served once the handshake's state is
/// dropped (TCP inside is forwarded here).
async fn terminate<I: Io>(
    io: I,
    prefix: bytes::Bytes,
    context: ConnectionContext,
    target: SocketAddr,
    configs: Arc<TlsConfigs>,
) -> Option<BoxFuture<'static, ()>> {
    let proxy = context.proxy.clone();
    let timeout = proxy.config.detect_timeout;
    let (mut stream, client_identity, transport) =
        match accept::accept(io, prefix, &configs, timeout).await {
            Ok(TlsAccepted::Terminated {
                stream,
                client_identity,
                transport,
            }) => {
                context.settle_accept(Some(TlsStatus::FromClient(client_identity.clone())));
                (stream, client_identity, transport)
            }
            Ok(TlsAccepted::PassThrough { prefix, io }) => {
                context.settle_accept(None);
                proxy
                    .metrics
                    .detected(Direction::Inbound, "tls_passthrough");
                if is_direct(&proxy, target) {
                    refuse(
                        &proxy,
                        context.client_addr,
                        Refusal::DirectWithoutTransportHeader,
                    );
                    return None;
                }
                inbound_authz::forward(
                    &proxy,
                    PrefixedIo::new(prefix, io),
                    target,
                    context.client_addr,
                    None,
                )
                .await;
                return None;
            }
            Err(error) => {
                proxy.log_traffic_error(
                    Direction::Inbound,
                    context.client_addr,
                    "TLS not accepted",
                    &error,
                );
                proxy.metrics.tcp_errors.record(Direction::Inbound, "tls");
                return None;
            }
        };
    // The transport header names a port of this workload: only a verified
    // mesh client may use it, and only for the workload's own ports.
    let (inner_target, protocol, rest) = if transport {
        if client_identity.is_none() {
            refuse(&proxy, context.client_addr, Refusal::NoClientCertificate);
            return None;
        }
        match accept::read_transport_header(&mut stream, timeout).await {
            Ok((header, rest)) => {
                if let Err(refusal) =
                    transport_header_allowed(&proxy, client_identity.as_deref(), header.port)
                {
                    refuse(&proxy, context.client_addr, refusal);
                    return None;
                }
                (
                    SocketAddr::new(target.ip(), header.port),
                    Some(header.protocol),
                    rest,
                )
            }
            Err(error) => {
                proxy.log_traffic_error(
                    Direction::Inbound,
                    context.client_addr,
                    "transport header refused",
                    &error,
                );
                proxy
                    .metrics
                    .tcp_errors
                    .record(Direction::Inbound, "transport header");
                return None;
            }
        }
    } else if is_direct(&proxy, target) {
        refuse(
            &proxy,
            context.client_addr,
            Refusal::DirectWithoutTransportHeader,
        );
        return None;
    } else {
        (target, None, bytes::Bytes::new())
    };
    let mut inner = ConnectionContext::new(
        proxy.clone(),
        Direction::Inbound,
        context.client_addr,
        Target::Addr(inner_target),
        context.drain.clone(),
        serve,
    )
    .with_client_identity(client_identity);
    // Boxed: what is inside is served by the same (generic) code that
    // served the outer connection.
    let io: Box<dyn Io> = Box::new(PrefixedIo::new(rest, stream));
    match protocol {
        // No transport header: what is inside is detected.
        None => Some(serve(io, inner)),
        Some(None) => {
            let identity = inner.client_identity.clone();
            inbound_authz::forward(&proxy, io, inner_target, inner.client_addr, identity).await;
            None
        }
        Some(Some(session)) => {
            inner.inbound_policy = Some(PortPolicy::new(
                proxy.inbound_policies.port(inner_target.port()),
            ));
            let protocol = match session {
                SessionProtocol::Http1 => Protocol::Http1,
                SessionProtocol::Http2 => Protocol::Http2,
            };
            let drain = inner.drain.clone();
            Some(http::server::serve(
                io,
                protocol,
                Arc::new(inner),
                drain,
                HTTP_SERVER,
            ))
        }
    }
}

/// Whether an inbound connection's `target` is the proxy itself: a direct
/// connection to the inbound port (transparent mode), whose only use is
/// mutual TLS with a transport header. Inbound targets are local addresses
/// (the original destination of traffic to this host), so any of the
/// listeners' ports means the proxy, whatever IP it was reached on.
fn is_direct(proxy: &Proxy, target: SocketAddr) -> bool {
    proxy.config.inbound_forward_addr.is_none()
        && (proxy.is_own_listener(target)
            || proxy
                .listener_addrs
                .iter()
                .any(|listener| listener.port() == target.port()))
}

/// Whether a transport header from `client_identity` may name `port`.
fn transport_header_allowed(
    proxy: &Proxy,
    client_identity: Option<&str>,
    port: u16,
) -> Result<(), Refusal> {
    let own_ports: Vec<u16> = proxy.listener_addrs.iter().map(SocketAddr::port).collect();
    let ports = InboundPorts {
        allowed: proxy.config.inbound_ports.as_ref(),
        forward_port: proxy.config.inbound_forward_addr.map(|addr| addr.port()),
        denied: &proxy.config.inbound_deny_ports,
        own_ports: &own_ports,
    };
    inbound_policy::transport_header_allowed(client_identity, port, &ports)
}

/// Logs (within the budget) and counts an inbound connection refused.
fn refuse(proxy: &Proxy, client_addr: SocketAddr, refusal: Refusal) {
    proxy.log_traffic_error(
        Direction::Inbound,
        client_addr,
        "refused a connection",
        &refusal,
    );
    proxy
        .metrics
        .tcp_errors
        .record(Direction::Inbound, refusal.metric_label());
}

/// The most a refused client's unread bytes are drained before closing, so
/// the kernel sends the answer rather than a reset.
const DRAIN_BEFORE_CLOSE: u64 = 64 * 1024;
/// How long a refused client's unread bytes are drained.
const DRAIN_BEFORE_CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Writes `answer`, closes the sending side and drains (bounded) what the
/// client still sends, so it reads the answer instead of a reset.
async fn answer_and_close<I: Io>(mut io: I, answer: &[u8]) {
    if io.write_all(answer).await.is_err() || io.shutdown().await.is_err() {
        return;
    }
    let mut unread = (&mut io).take(DRAIN_BEFORE_CLOSE);
    let mut sink = tokio::io::sink();
    let draining = tokio::io::copy(&mut unread, &mut sink);
    let _ = tokio::time::timeout(DRAIN_BEFORE_CLOSE_TIMEOUT, draining).await;
}

const REQUEST_LINE_TOO_LONG: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\n\
l5d-proxy-error: request line longer than the proxy's 8 KiB detection buffer\r\n\
content-length: 0\r\nconnection: close\r\n\r\n";

const MALFORMED_REQUEST_LINE: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
l5d-proxy-error: malformed HTTP request line\r\n\
content-length: 0\r\nconnection: close\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::returned_size;

    #[test]
    fn an_http_connection_keeps_no_room_for_detection() {
        // What a connection holds while served as HTTP: the detection box's
        // pointer, then the HTTP server's (a few KiB in detection, debug).
        let serving = returned_size(&serve_connection::<tokio::net::TcpStream>);
        let detecting = returned_size(&detect_and_serve::<tokio::net::TcpStream>);
        assert!(serving <= 64, "{serving} bytes");
        assert!(detecting > 1024, "{detecting} bytes: worth its box");
    }
}
