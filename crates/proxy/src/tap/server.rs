//! The tap listener (`WEFT_PROXY_TAP_LISTEN_ADDR`): gRPC over HTTP/2, in
//! plaintext or over TLS terminated with the proxy's own certificate.
//!
//! ```text
//! accept ─► first byte within 1 s: 0x16 (TLS handshake)?
//!   yes ─► proxy has a certificate? ─► TLS (ALPN h2, client certificate
//!          requested and verified to the trust anchors) ─► TapClient::Tls(identity)
//!          no certificate yet ─► close
//!   no  ─► TapClient::Plaintext(client address)
//! ─► HTTP/2 server; every request carries its TapClient ─► service.rs (authorize, Observe)
//! ```
//!
//! Tap connections hold no drain watch: a long-lived tap must not delay
//! shutdown. The accept loop stops when the drain starts.

use super::service::{TapClient, TapService};
use crate::drain::DrainWatch;
use crate::tls::config::{TlsStore, peer_identity};
use hyper::body::Incoming;
use hyper::server::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use linkerd2_proxy_api::tap::tap_server::TapServer;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

/// How long a client has to send its first bytes (and finish a handshake).
const DETECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The first byte of a TLS record carrying a handshake.
const TLS_HANDSHAKE: u8 = 0x16;

/// The bound tap listener.
pub(crate) struct TapListener {
    listener: TcpListener,
}

impl TapListener {
    /// Binds `addr`.
    pub(crate) async fn bind(addr: SocketAddr) -> std::io::Result<TapListener> {
        Ok(TapListener {
            listener: TcpListener::bind(addr).await?,
        })
    }

    /// The bound address.
    pub(crate) fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves `service` until a drain starts; TLS clients are served only
    /// when `tls` holds a certificate.
    pub(crate) async fn run(
        self,
        service: TapService,
        tls: Option<Arc<TlsStore>>,
        drain: DrainWatch,
    ) {
        let server = TapServer::new(service);
        loop {
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                _ = drain.signaled() => break,
            };
            match accepted {
                Ok((stream, client_addr)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(serve_connection(
                        stream,
                        client_addr,
                        server.clone(),
                        tls.clone(),
                    ));
                }
                Err(error) => {
                    tracing::warn!(%error, "tap accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        tracing::debug!("tap listener closed for drain");
    }
}

async fn serve_connection(
    stream: TcpStream,
    client_addr: SocketAddr,
    server: TapServer<TapService>,
    tls: Option<Arc<TlsStore>>,
) {
    let mut first = [0u8; 1];
    let peeked = tokio::time::timeout(DETECT_TIMEOUT, stream.peek(&mut first)).await;
    match peeked {
        Ok(Ok(1)) => {}
        _ => {
            tracing::debug!(%client_addr, "tap client sent nothing");
            return;
        }
    }
    if first[0] != TLS_HANDSHAKE {
        serve_http2(stream, TapClient::Plaintext(client_addr), server).await;
        return;
    }
    let Some(configs) = tls.as_ref().and_then(|store| store.current()) else {
        tracing::info!(%client_addr, "tap client speaks TLS but the proxy has no certificate");
        return;
    };
    let mut config = (*configs.server).clone();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let stream = match tokio::time::timeout(DETECT_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            tracing::info!(%client_addr, %error, "tap TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::info!(%client_addr, "tap TLS handshake timed out");
            return;
        }
    };
    let identity = peer_identity(stream.get_ref().1.peer_certificates());
    serve_http2(stream, TapClient::Tls(identity), server).await;
}

/// Concurrent Observe streams on one tap connection (the controller opens
/// one per proxy at a time).
const MAX_TAP_STREAMS: u32 = 16;

async fn serve_http2<I>(io: I, client: TapClient, server: TapServer<TapService>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
        request.extensions_mut().insert(client.clone());
        let mut server = server.clone();
        async move { tower::Service::call(&mut server, request).await }
    });
    // Observe streams are long-lived: PINGs find a peer that went away.
    if let Err(error) = http2::Builder::new(TokioExecutor::new())
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive_interval(crate::http::server::KEEP_ALIVE_INTERVAL)
        .keep_alive_timeout(crate::http::server::KEEP_ALIVE_TIMEOUT)
        .max_concurrent_streams(MAX_TAP_STREAMS)
        .serve_connection(TokioIo::new(io), service)
        .await
    {
        tracing::debug!(%error, "tap connection ended with an error");
    }
}
