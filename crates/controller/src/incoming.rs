//! Accepted gRPC connections, TLS or plaintext on the same port, each with
//! `TCP_NODELAY` (Destination updates and Certify answers are small; without
//! it each waits out a delayed ACK, about 40 ms on Linux).
//!
//! ```text
//! accept ─► TCP_NODELAY ─► (own task, ≤ 10 s) peek the first byte
//!             0x16 and TLS configured ─► TLS 1.3 handshake (client certificate optional,
//!                                        verified when presented) ─► ServerIo::Tls
//!             no TLS configured, or a loopback peer, or --allow-remote-plaintext
//!                                     ─► ServerIo::Plain (h2c)
//!             anything else           ─► closed: with identity on, only proxies on
//!                                        this host may talk to the controller in the clear
//!          ─► the stream tonic serves
//! ```
//!
//! Handshakes run in their own tasks, so a slow or silent client never holds
//! up the next connection. [`transport_for`] is the decision, pure.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tonic::transport::server::Connected;

use crate::identity::serving::ServingTls;

/// Bounds on one of the controller's gRPC servers (HTTP/2 and message sizes).
#[derive(Debug, Clone, Copy)]
pub struct GrpcLimits {
    /// HTTP/2 streams one connection may have open (`SETTINGS_MAX_CONCURRENT_STREAMS`).
    pub streams_per_connection: u32,
    /// The largest header list accepted (`SETTINGS_MAX_HEADER_LIST_SIZE`).
    pub header_list_bytes: u32,
    /// The largest request message decoded.
    pub message_bytes: usize,
}

impl GrpcLimits {
    /// A tonic server builder with the HTTP/2 bounds set (the message bound
    /// is set on the service itself).
    pub fn server(&self) -> tonic::transport::Server {
        tonic::transport::Server::builder()
            .max_concurrent_streams(self.streams_per_connection)
            .http2_max_header_list_size(self.header_list_bytes)
    }
}

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;
/// How long a connection may take to send its first byte and finish a TLS
/// handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How an accepted connection is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// HTTP/2 without TLS (prior knowledge).
    Plaintext,
    /// TLS, then HTTP/2.
    Tls,
    /// Closed: plaintext from a peer that may not use it.
    Refused,
}

/// Who may talk to a TLS-capable controller without TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaintextPolicy {
    /// Only peers on loopback (proxies on this host). The default.
    LoopbackOnly,
    /// Anyone (`--allow-remote-plaintext`, e.g. while proxies migrate to TLS).
    Any,
}

/// The decision: a connection whose first byte starts a TLS handshake record
/// is TLS when the server has a certificate. Anything else (an HTTP/2
/// preface starts with `P`) is plaintext — but once the server has a
/// certificate, only from loopback peers unless the policy allows any.
pub fn transport_for(
    first_byte: u8,
    tls_configured: bool,
    peer_is_loopback: bool,
    plaintext: PlaintextPolicy,
) -> Transport {
    if !tls_configured {
        return Transport::Plaintext;
    }
    if first_byte == TLS_HANDSHAKE_RECORD {
        Transport::Tls
    } else if peer_is_loopback || plaintext == PlaintextPolicy::Any {
        Transport::Plaintext
    } else {
        Transport::Refused
    }
}

/// An accepted connection as tonic serves it.
#[derive(Debug)]
pub enum ServerIo {
    /// Plaintext HTTP/2.
    Plain(TcpStream),
    /// TLS-terminated HTTP/2.
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// What a request's extensions say about its connection.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// The client's address.
    pub remote: Option<SocketAddr>,
    /// Whether the connection is TLS.
    pub tls: bool,
    /// The identity (first DNS SAN) of a verified client certificate.
    pub client_identity: Option<String>,
}

impl Connected for ServerIo {
    type ConnectInfo = ConnectionInfo;

    fn connect_info(&self) -> ConnectionInfo {
        match self {
            ServerIo::Plain(stream) => ConnectionInfo {
                remote: stream.peer_addr().ok(),
                tls: false,
                client_identity: None,
            },
            ServerIo::Tls(stream) => {
                let (tcp, session) = stream.get_ref();
                ConnectionInfo {
                    remote: tcp.peer_addr().ok(),
                    tls: true,
                    client_identity: session
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .and_then(|leaf| first_dns_name(leaf)),
                }
            }
        }
    }
}

fn first_dns_name(der: &[u8]) -> Option<String> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
    let names = certificate.subject_alternative_name().ok()??;
    names
        .value
        .general_names
        .iter()
        .find_map(|name| match name {
            x509_parser::extensions::GeneralName::DNSName(dns) => Some(dns.to_string()),
            _ => None,
        })
}

impl AsyncRead for ServerIo {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerIo::Plain(stream) => Pin::new(stream).poll_read(context, buffer),
            ServerIo::Tls(stream) => Pin::new(stream.as_mut()).poll_read(context, buffer),
        }
    }
}

impl AsyncWrite for ServerIo {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ServerIo::Plain(stream) => Pin::new(stream).poll_write(context, buffer),
            ServerIo::Tls(stream) => Pin::new(stream.as_mut()).poll_write(context, buffer),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ServerIo::Plain(stream) => Pin::new(stream).poll_write_vectored(context, buffers),
            ServerIo::Tls(stream) => {
                Pin::new(stream.as_mut()).poll_write_vectored(context, buffers)
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            ServerIo::Plain(stream) => stream.is_write_vectored(),
            ServerIo::Tls(stream) => stream.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerIo::Plain(stream) => Pin::new(stream).poll_flush(context),
            ServerIo::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(context),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerIo::Plain(stream) => Pin::new(stream).poll_shutdown(context),
            ServerIo::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(context),
        }
    }
}

/// Which gRPC server a connection came to (metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Server {
    /// `--destination-addr`.
    Destination,
    /// `--identity-addr`.
    Identity,
    /// `--policy-addr`.
    Policy,
}

/// How an accepted connection turned out (metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Served in plaintext.
    Plaintext,
    /// Served over TLS without a client certificate.
    Tls,
    /// Served over TLS with a verified client certificate.
    MutualTls,
    /// The TLS handshake failed or timed out, or the client sent nothing.
    Failed,
    /// Plaintext from a non-loopback peer while TLS is on: closed.
    Refused,
}

impl EncodeLabelValue for Server {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> std::fmt::Result {
        use std::fmt::Write as _;
        encoder.write_str(match self {
            Server::Destination => "destination",
            Server::Identity => "identity",
            Server::Policy => "policy",
        })
    }
}

impl EncodeLabelValue for Outcome {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> std::fmt::Result {
        use std::fmt::Write as _;
        encoder.write_str(match self {
            Outcome::Plaintext => "plaintext",
            Outcome::Tls => "tls",
            Outcome::MutualTls => "mtls",
            Outcome::Failed => "failed",
            Outcome::Refused => "refused",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ConnectionLabels {
    server: Server,
    transport: Outcome,
}

/// Accepted gRPC connections by server and transport.
#[derive(Debug, Clone, Default)]
pub struct IncomingMetrics {
    accepted: Family<ConnectionLabels, Counter>,
}

impl IncomingMetrics {
    /// Registers `grpc_connections_total{server, transport}`.
    pub fn new(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "grpc_connections",
            "Connections accepted by the gRPC servers, by transport (plaintext, tls, mtls, failed, refused)",
            metrics.accepted.clone(),
        );
        metrics
    }

    fn record(&self, server: Server, transport: Outcome) {
        self.accepted
            .get_or_create(&ConnectionLabels { server, transport })
            .inc();
    }
}

/// A bound gRPC port and how to serve its connections.
#[derive(Debug)]
pub struct GrpcListener {
    /// The bound socket.
    pub listener: TcpListener,
    /// Which server it is (metric label).
    pub server: Server,
    /// The controller's certificate; `None`: plaintext only.
    pub tls: Option<ServingTls>,
    /// Who may use plaintext when `tls` is set.
    pub plaintext: PlaintextPolicy,
    /// Where connections are counted.
    pub metrics: IncomingMetrics,
}

impl GrpcListener {
    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The connections it accepts, TLS or plaintext, ready for tonic. The
    /// accept loop ends when tonic drops the stream.
    pub fn incoming(self) -> impl Stream<Item = io::Result<ServerIo>> {
        incoming(self)
    }
}

fn incoming(
    GrpcListener {
        listener,
        server,
        tls,
        plaintext,
        metrics,
    }: GrpcListener,
) -> impl Stream<Item = io::Result<ServerIo>> {
    let (sender, receiver) = mpsc::channel::<io::Result<ServerIo>>(64);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = sender.closed() => return,
                accepted = listener.accept() => accepted,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of descriptors and the like: pause instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%error, "cannot set TCP_NODELAY");
            }
            let (sender, tls, metrics) = (sender.clone(), tls.clone(), metrics.clone());
            tokio::spawn(async move {
                let prepared = prepare(stream, tls.as_ref(), plaintext);
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, prepared).await {
                    Ok(Ok(io)) => {
                        let outcome = match &io {
                            ServerIo::Plain(_) => Outcome::Plaintext,
                            ServerIo::Tls(stream)
                                if stream.get_ref().1.peer_certificates().is_some() =>
                            {
                                Outcome::MutualTls
                            }
                            ServerIo::Tls(_) => Outcome::Tls,
                        };
                        metrics.record(server, outcome);
                        let _ = sender.send(Ok(io)).await;
                    }
                    Ok(Err(error)) if error.kind() == io::ErrorKind::PermissionDenied => {
                        metrics.record(server, Outcome::Refused);
                        tracing::info!(%error, "connection refused");
                    }
                    Ok(Err(error)) => {
                        metrics.record(server, Outcome::Failed);
                        tracing::debug!(%error, "connection dropped before serving");
                    }
                    Err(_) => {
                        metrics.record(server, Outcome::Failed);
                        tracing::debug!("connection dropped: no handshake within 10 s");
                    }
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(receiver)
}

/// Peeks at the first byte and terminates TLS when it starts a handshake.
async fn prepare(
    stream: TcpStream,
    tls: Option<&ServingTls>,
    plaintext: PlaintextPolicy,
) -> io::Result<ServerIo> {
    let mut first = [0u8; 1];
    if stream.peek(&mut first).await? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "closed before sending anything",
        ));
    }
    let peer = stream.peer_addr()?;
    let transport = transport_for(first[0], tls.is_some(), peer.ip().is_loopback(), plaintext);
    match (transport, tls) {
        (Transport::Tls, Some(tls)) => {
            let stream = tls.acceptor().accept(stream).await.inspect_err(|error| {
                tracing::info!(%error, "TLS handshake with a client failed");
            })?;
            Ok(ServerIo::Tls(Box::new(stream)))
        }
        (Transport::Refused, _) => Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "plaintext from {peer}: only proxies on this host may skip TLS \
                 (--allow-remote-plaintext lets anyone)"
            ),
        )),
        _ => Ok(ServerIo::Plain(stream)),
    }
}

#[cfg(test)]
mod tests;
