//! Inbound TLS: terminate a connection whose ClientHello asks for this
//! proxy's identity; pass any other TLS through untouched.
//!
//! ```text
//! TLS detected ─► read until the ClientHello is complete (≤ 32 KiB, detect timeout)
//!   SNI = our identity ─► handshake (client certificate verified when presented)
//!       ├─ ALPN transport.l5d.io/v1 ─► read the transport header: the target port
//!       │                               and protocol come from it
//!       └─ otherwise ─► the decrypted stream is detected and proxied as usual
//!   any other SNI, none, not TLS after all ─► pass through (the bytes read are replayed)
//! ```

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncReadExt;
use tokio_rustls::server::TlsStream;

use super::client_hello::{self, ClientHello};
use super::config::{TlsConfigs, peer_identity};
use super::transport_header::{self, Decoded, TransportHeader};
use crate::io::{Io, PrefixedIo};

/// What became of a TLS connection.
pub(crate) enum Accepted<I> {
    /// It asked for our identity: terminated.
    Terminated {
        /// The decrypted stream.
        stream: Box<TlsStream<PrefixedIo<I>>>,
        /// The client's identity, from its certificate.
        client_identity: Option<Arc<str>>,
        /// The client negotiated the transport header.
        transport: bool,
    },
    /// Another name or none: forward these bytes, then the rest, untouched.
    PassThrough {
        /// What was read so far.
        prefix: Bytes,
        /// The connection.
        io: I,
    },
}

/// Why a TLS connection could not be accepted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AcceptError {
    /// The ClientHello did not arrive in time.
    #[error("no complete ClientHello within {0:?}")]
    TimedOut(Duration),
    /// Reading or the handshake failed.
    #[error("TLS handshake failed: {0}")]
    Io(#[from] io::Error),
    /// The transport header was malformed.
    #[error("bad transport header: {0}")]
    Header(#[from] transport_header::HeaderError),
}

/// Reads the ClientHello (starting with `prefix`, the bytes detection read)
/// and terminates TLS when it asks for `configs.local_name`.
pub(crate) async fn accept<I: Io>(
    mut io: I,
    prefix: Bytes,
    configs: &TlsConfigs,
    timeout: Duration,
) -> Result<Accepted<I>, AcceptError> {
    let mut buffer = BytesMut::from(&prefix[..]);
    let deadline = tokio::time::Instant::now() + timeout;
    let server_name = loop {
        match client_hello::server_name(&buffer) {
            ClientHello::Incomplete { needed } => {
                buffer.reserve(needed.saturating_sub(buffer.len()).max(512));
                let read = tokio::time::timeout_at(deadline, io.read_buf(&mut buffer))
                    .await
                    .map_err(|_| AcceptError::TimedOut(timeout))??;
                if read == 0 {
                    break None;
                }
            }
            ClientHello::NotTls(_) => break None,
            ClientHello::ServerName(name) => break name,
        }
    };
    let ours = server_name
        .as_deref()
        .is_some_and(|name| name == &*configs.local_name);
    if !ours {
        return Ok(Accepted::PassThrough {
            prefix: buffer.freeze(),
            io,
        });
    }
    let acceptor = tokio_rustls::TlsAcceptor::from(configs.server.clone());
    let stream = tokio::time::timeout_at(
        deadline,
        acceptor.accept(PrefixedIo::new(buffer.freeze(), io)),
    )
    .await
    .map_err(|_| AcceptError::TimedOut(timeout))??;
    let connection = stream.get_ref().1;
    let client_identity = peer_identity(connection.peer_certificates());
    let transport = connection.alpn_protocol() == Some(super::TRANSPORT_ALPN);
    Ok(Accepted::Terminated {
        stream: Box::new(stream),
        client_identity,
        transport,
    })
}

/// Reads the transport header at the start of `io`; returns it and the
/// application bytes read after it.
pub(crate) async fn read_transport_header<I: Io>(
    io: &mut I,
    timeout: Duration,
) -> Result<(TransportHeader, Bytes), AcceptError> {
    let mut buffer = BytesMut::with_capacity(512);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match transport_header::decode(&buffer)? {
            Decoded::Complete { header, consumed } => {
                let rest = buffer.split_off(consumed).freeze();
                return Ok((header, rest));
            }
            Decoded::Incomplete { needed } => {
                buffer.reserve(needed.saturating_sub(buffer.len()).max(64));
                let read = tokio::time::timeout_at(deadline, io.read_buf(&mut buffer))
                    .await
                    .map_err(|_| AcceptError::TimedOut(timeout))??;
                if read == 0 {
                    return Err(AcceptError::Io(io::ErrorKind::UnexpectedEof.into()));
                }
            }
        }
    }
}
