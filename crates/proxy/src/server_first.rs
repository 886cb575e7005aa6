//! Servers that speak first on ports not declared opaque.
//!
//! Detection waits for the client's first bytes, but a MySQL-like server
//! sends a banner before its client says anything: on a port missing from
//! `WEFT_PROXY_OPAQUE_PORTS` both would wait for the whole detect timeout.
//! So when the target is known without the client's bytes, a client still
//! silent after `WEFT_PROXY_SERVER_FIRST_DELAY` makes the proxy connect to
//! it while detection goes on:
//!
//! ```text
//! detect ──(client silent for the delay; target known)──► inbound: does the
//!   │       port's policy admit the client as it stands? no ─► no connection
//!   │       ─► connect as an opaque forward would (meshed: mutual TLS and a
//!   │          transport header)
//!   ├─ the client's bytes decide first ─► the early connection is closed;
//!   │                                     detection's verdict as usual
//!   └─ the server sends first ──► a banner ─► relayed as opaque TCP at once
//!                                 (the client's bytes, if any, follow)
//!                             ──► nothing (closed) or an HTTP response (an
//!                                 HTTP server ending an idle connection) ─►
//!                                 closed; detection goes on
//! ```
//!
//! Clients that speak first (HTTP, TLS, most protocols) do so well within the
//! delay, so they cost no connection. A silent client costs one upstream
//! connection at a time, as on an opaque port, and never more than one early
//! connection per accepted connection.
//!
//! [`early_delay`] and [`server_bytes`] are the pure decisions (table
//! tested); [`detect`] is the I/O around them.

use crate::detect::{self, Detection};
use crate::tcp::Upstream;
use bytes::{Bytes, BytesMut};
use std::time::Duration;
use tokio::io::AsyncRead;
use tokio::time::Instant;

/// What the proxy knows of a connection's target before the client speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EarlyTarget {
    /// A target, and nothing against connecting to it now.
    Known,
    /// No target yet: the explicit listener (the request names it), or a
    /// direct connection to the inbound port (the transport header does).
    Unknown,
    /// The target's port is declared HTTP (the inbound policy): its server
    /// never speaks first.
    DeclaredHttp,
    /// One of the proxy's own listeners: never connected to.
    OwnListener,
}

/// How long the client may stay silent before the proxy connects early;
/// `None`: it never does (off, a detect timeout no longer than the delay,
/// or a target it must not or cannot connect to yet).
pub(crate) fn early_delay(
    delay: Option<Duration>,
    detect_timeout: Duration,
    target: EarlyTarget,
) -> Option<Duration> {
    let delay = delay.filter(|delay| !delay.is_zero() && *delay < detect_timeout)?;
    (target == EarlyTarget::Known).then_some(delay)
}

/// What the server's first bytes mean, sent before the client's protocol
/// was known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ServerBytes {
    /// A server that speaks first: relay as opaque TCP.
    Relay,
    /// Nothing to relay: the server closed, or answered like an HTTP
    /// server ending an idle connection (`HTTP/1.1 408 …`), which is no
    /// banner. The early connection is closed; detection goes on.
    Discard,
}

/// Judges the server's first bytes (empty: it closed the connection). One
/// read's worth: a response split before `HTTP/` is whole is relayed, which
/// is harmless (such a server closes after it).
pub(crate) fn server_bytes(first: &[u8]) -> ServerBytes {
    const HTTP_RESPONSE: &[u8] = b"HTTP/";
    let http = first
        .get(..HTTP_RESPONSE.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(HTTP_RESPONSE));
    if first.is_empty() || http {
        ServerBytes::Discard
    } else {
        ServerBytes::Relay
    }
}

/// The early connection: made only once the delay has passed (nothing is
/// allocated for it before).
pub(crate) struct Early<F> {
    /// How long the client may stay silent first (see [`early_delay`]).
    pub delay: Duration,
    /// Connects to the target (`None`: it failed, or the connection may not
    /// be made; the forward that may follow detection reports failures).
    pub connect: F,
}

/// Who spoke first.
pub(crate) enum FirstBytes {
    /// The client (or nobody): detection's verdict, as without an early
    /// connection.
    Client(Detection),
    /// The server, before detection decided: relay `upstream` (its first
    /// bytes kept) and the client, replaying `client_prefix` (what the
    /// client sent so far, often nothing).
    Server {
        /// The client's bytes read so far.
        client_prefix: Bytes,
        /// The connection the server spoke on.
        upstream: Upstream,
    },
}

impl FirstBytes {
    /// The `tcp_detect_total` label value.
    pub(crate) fn metric_label(&self) -> &'static str {
        match self {
            FirstBytes::Client(detection) => detection.metric_label(),
            FirstBytes::Server { .. } => "server_first",
        }
    }
}

/// Detects the client's protocol for at most `timeout`; with `early`, a
/// client silent for its delay makes the proxy connect, and a server that
/// then speaks first wins.
pub(crate) async fn detect<I, F, C>(
    io: &mut I,
    timeout: Duration,
    early: Option<Early<F>>,
) -> FirstBytes
where
    I: AsyncRead + Unpin,
    F: FnOnce() -> C,
    C: Future<Output = Option<Upstream>>,
{
    let deadline = Instant::now() + timeout;
    // An idle connection holds a small buffer (see `detect::detect_until`).
    let mut buffer = BytesMut::new();
    let Some(early) = early else {
        return FirstBytes::Client(detect::detect_until(io, deadline, &mut buffer).await);
    };
    // 1. The client's turn: most speak at once.
    tokio::select! {
        biased;
        detection = detect::detect_until(io, deadline, &mut buffer) => {
            return FirstBytes::Client(detection);
        }
        () = tokio::time::sleep(early.delay) => {}
    }
    // A client that said something (not enough to decide) spoke first.
    if !buffer.is_empty() {
        return FirstBytes::Client(detect::detect_until(io, deadline, &mut buffer).await);
    }
    // 2. Connect and see who speaks first. Boxed: a connection still in
    //    its client's turn carries no room for it, and one whose server
    //    had nothing to say gives the room back.
    match Box::pin(race(io, deadline, &mut buffer, (early.connect)())).await {
        Race::Client(detection) => FirstBytes::Client(detection),
        Race::Server(upstream) => FirstBytes::Server {
            client_prefix: buffer.freeze(),
            upstream,
        },
        // 3. Back to the client's turn, without an early connection.
        Race::NoServer => FirstBytes::Client(detect::detect_until(io, deadline, &mut buffer).await),
    }
}

/// How the race between the client's detection and the server ended.
enum Race {
    /// Detection decided first.
    Client(Detection),
    /// The server spoke first.
    Server(Upstream),
    /// No connection, or the server closed it or said nothing to relay.
    NoServer,
}

async fn race<I: AsyncRead + Unpin>(
    io: &mut I,
    deadline: Instant,
    buffer: &mut BytesMut,
    connect: impl Future<Output = Option<Upstream>>,
) -> Race {
    let server = async {
        // Boxed: once connected, its room is given back while the server
        // is waited for.
        let mut upstream = Box::pin(connect).await?;
        match upstream.read_first().await {
            Ok(first) if server_bytes(first) == ServerBytes::Relay => Some(upstream),
            Ok(_) => None,
            Err(error) => {
                tracing::debug!(%error, "reading a server's first bytes failed");
                None
            }
        }
    };
    tokio::select! {
        biased;
        detection = detect::detect_until(io, deadline, buffer) => Race::Client(detection),
        upstream = server => upstream.map_or(Race::NoServer, Race::Server),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_to_connect_early() {
        use EarlyTarget::*;
        let ms = Duration::from_millis;
        let timeout = Duration::from_secs(10);
        let table = [
            (Some(ms(200)), timeout, Known, Some(ms(200))),
            (Some(ms(200)), timeout, Unknown, None),
            (Some(ms(200)), timeout, DeclaredHttp, None),
            (Some(ms(200)), timeout, OwnListener, None),
            // Off.
            (None, timeout, Known, None),
            (Some(ms(0)), timeout, Known, None),
            // Detection would end first anyway.
            (Some(ms(200)), ms(200), Known, None),
            (Some(ms(200)), ms(100), Known, None),
            (Some(ms(200)), ms(201), Known, Some(ms(200))),
        ];
        for (delay, detect_timeout, target, expected) in table {
            assert_eq!(
                early_delay(delay, detect_timeout, target),
                expected,
                "{delay:?} {detect_timeout:?} {target:?}"
            );
        }
    }

    /// Runs [`detect`] with an early connection that never succeeds,
    /// counting how often it was tried; `client` writes on its side.
    async fn detect_counting<F, C>(client: F) -> (FirstBytes, usize)
    where
        F: FnOnce(tokio::io::DuplexStream) -> C + Send + 'static,
        C: Future<Output = ()> + Send + 'static,
    {
        let (client_side, mut server_side) = tokio::io::duplex(1024);
        let writer = tokio::spawn(client(client_side));
        let tries = std::cell::Cell::new(0);
        let early = Early {
            delay: Duration::from_millis(50),
            connect: || {
                tries.set(tries.get() + 1);
                std::future::ready(None)
            },
        };
        let first = detect(&mut server_side, Duration::from_secs(2), Some(early)).await;
        writer.abort();
        (first, tries.get())
    }

    fn protocol(first: &FirstBytes) -> Option<crate::detect::Protocol> {
        match first {
            FirstBytes::Client(Detection::Detected { protocol, .. }) => Some(*protocol),
            _ => None,
        }
    }

    #[tokio::test]
    async fn a_client_that_speaks_at_once_costs_no_connection() {
        use tokio::io::AsyncWriteExt;
        let (first, tries) = detect_counting(|mut client| async move {
            client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
            std::future::pending::<()>().await;
        })
        .await;
        assert_eq!(protocol(&first), Some(crate::detect::Protocol::Http1));
        assert_eq!(tries, 0);
    }

    #[tokio::test]
    async fn a_client_that_said_something_is_not_raced() {
        use tokio::io::AsyncWriteExt;
        let (first, tries) = detect_counting(|mut client| async move {
            client.write_all(b"GET /sl").await.unwrap();
            tokio::time::sleep(Duration::from_millis(150)).await;
            client.write_all(b"ow HTTP/1.1\r\n").await.unwrap();
            std::future::pending::<()>().await;
        })
        .await;
        assert_eq!(protocol(&first), Some(crate::detect::Protocol::Http1));
        assert_eq!(tries, 0);
    }

    #[tokio::test]
    async fn a_silent_client_is_raced_once_then_detected_as_usual() {
        use tokio::io::AsyncWriteExt;
        let (first, tries) = detect_counting(|mut client| async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            client
                .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
                .await
                .unwrap();
            std::future::pending::<()>().await;
        })
        .await;
        assert_eq!(protocol(&first), Some(crate::detect::Protocol::Http2));
        assert_eq!(tries, 1);
    }

    #[test]
    fn what_the_servers_first_bytes_mean() {
        use ServerBytes::*;
        let table: &[(&[u8], ServerBytes)] = &[
            (b"220 hello\r\n", Relay),
            (b"\x4a\x00\x00\x00\x0a8.0.36\x00", Relay),
            (b"+OK POP3 ready\r\n", Relay),
            (b"SSH-2.0-OpenSSH_9.6\r\n", Relay),
            (b"H", Relay),
            (b"HTTP", Relay),
            (b"HTTP/1.1 408 Request Timeout\r\n", Discard),
            (b"http/1.0 400 Bad Request\r\n", Discard),
            (b"HTTX", Relay),
            (b"", Discard),
        ];
        for (first, expected) in table {
            assert_eq!(
                server_bytes(first),
                *expected,
                "{:?}",
                String::from_utf8_lossy(first)
            );
        }
    }
}
