//! A connection the proxy opened: plaintext, or mutual TLS to a meshed
//! endpoint's proxy with the identity discovery named as SNI.
//!
//! ```text
//! TCP (metered) ─► identity? ─no──► Transport::Plain
//!                      │yes
//!                      ▼
//!                  TLS 1.3 handshake (SNI = identity, our client certificate,
//!                  server chain verified to the anchors and naming the identity)
//!                      └─► Transport::Tls
//! ```

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::transport_header::{self, SessionProtocol, TransportHeader};
use tokio_rustls::client::TlsStream;

/// An endpoint requires mutual TLS and this proxy has no certificate yet.
#[derive(Debug, thiserror::Error)]
#[error("no certificate yet for mutual TLS")]
pub(crate) struct NoIdentity;

/// What mutual TLS to an endpoint needs.
#[derive(Clone, Debug)]
pub(crate) struct ClientTls {
    /// The identity the server must prove (sent as SNI).
    pub server_name: Arc<str>,
    /// Our client configuration (current certificate).
    pub config: Arc<ClientConfig>,
    /// The endpoint's proxy takes a transport header on this port: connect
    /// there and name the target port in the header.
    pub transport_port: Option<u16>,
}

impl ClientTls {
    /// Where to connect for `target`: its proxy's inbound port when a
    /// transport header is used, else the target itself.
    pub(crate) fn connect_addr(
        tls: Option<&ClientTls>,
        target: std::net::SocketAddr,
    ) -> std::net::SocketAddr {
        match tls.and_then(|tls| tls.transport_port) {
            Some(port) => std::net::SocketAddr::new(target.ip(), port),
            None => target,
        }
    }
}

/// A stream that is plaintext or TLS.
pub(crate) enum Transport<I> {
    /// No TLS.
    Plain(I),
    /// Mutual TLS.
    Tls(Box<TlsStream<I>>),
}

/// Why a TLS connection could not be made.
#[derive(Debug, thiserror::Error)]
#[error("TLS to {identity} failed: {reason}")]
pub(crate) struct TlsConnectError {
    /// The identity the server had to prove.
    pub identity: Arc<str>,
    /// What went wrong.
    pub reason: String,
}

/// Opens TLS over `io` when `tls` is given, else passes `io` through; with
/// a transport port, writes the transport header naming `target_port` and
/// `protocol` (`None`: opaque) first.
pub(crate) async fn connect<I>(
    io: I,
    tls: Option<&ClientTls>,
    target_port: u16,
    protocol: Option<SessionProtocol>,
) -> Result<Transport<I>, TlsConnectError>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let Some(tls) = tls else {
        return Ok(Transport::Plain(io));
    };
    let failed = |reason: String| TlsConnectError {
        identity: tls.server_name.clone(),
        reason,
    };
    let name = ServerName::try_from(tls.server_name.to_string())
        .map_err(|error| failed(error.to_string()))?;
    let mut stream = tokio_rustls::TlsConnector::from(tls.config.clone())
        .connect(name, io)
        .await
        .map_err(|error| failed(describe(&error)))?;
    if tls.transport_port.is_some() {
        let header = transport_header::encode(&TransportHeader {
            port: target_port,
            name: None,
            protocol,
        });
        stream
            .write_all(&header)
            .await
            .map_err(|error| failed(format!("writing the transport header: {error}")))?;
    }
    Ok(Transport::Tls(Box::new(stream)))
}

/// An I/O error from a handshake, with rustls' reason when there is one.
fn describe(error: &io::Error) -> String {
    match error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => tls.to_string(),
        None => error.to_string(),
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin> AsyncRead for Transport<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(io) => Pin::new(io).poll_read(context, buffer),
            Transport::Tls(io) => Pin::new(io.as_mut()).poll_read(context, buffer),
        }
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Transport<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(io) => Pin::new(io).poll_write(context, buffer),
            Transport::Tls(io) => Pin::new(io.as_mut()).poll_write(context, buffer),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(io) => Pin::new(io).poll_write_vectored(context, buffers),
            Transport::Tls(io) => Pin::new(io.as_mut()).poll_write_vectored(context, buffers),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Transport::Plain(io) => io.is_write_vectored(),
            Transport::Tls(io) => io.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(io) => Pin::new(io).poll_flush(context),
            Transport::Tls(io) => Pin::new(io.as_mut()).poll_flush(context),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(io) => Pin::new(io).poll_shutdown(context),
            Transport::Tls(io) => Pin::new(io.as_mut()).poll_shutdown(context),
        }
    }
}
