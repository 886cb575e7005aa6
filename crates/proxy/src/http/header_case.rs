//! Header-name case across the HTTP/2 hop between proxies. HTTP/2 lowercases
//! header names; a legacy HTTP/1 server behind the mesh should still see the
//! names exactly as the client wrote them.
//!
//! ```text
//! outbound: HeadSniffer reads the request heads as the client sends them
//!           (names in their case) ─► the request that goes upgraded carries
//!           l5d-orig-header-case: X-Custom-HEADER,Content-Type,…
//! inbound:  l5d-orig-header-case ─► a case map hyper's HTTP/1 client uses
//!           (made once per list by parsing a synthetic head, then cached)
//! ```
//!
//! The sniffer follows Content-Length bodies; after a chunked body or an
//! upgrade it stops (later requests on that connection go lowercase).
//!
//! Who gets the header ([`send_spellings`], [`honour_spellings`]):
//!
//! ```text
//! outbound: upgraded to a weft proxy (discovery's resource_ref hint) ─► sent
//!           upgraded to any other proxy (linkerd2-proxy: it would hand the
//!           header to its app) or not upgraded                     ─► not sent
//! inbound:  HTTP/1 that crossed the HTTP/2 hop from a verified peer ─► names
//!           respelled, header removed; anything else ─► header removed
//! ```

use std::collections::{HashMap, VecDeque};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::BytesMut;
use http::HeaderName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The header carrying the original spellings of header names.
pub(crate) const L5D_ORIG_HEADER_CASE: HeaderName = HeaderName::from_static("l5d-orig-header-case");

/// Largest request head the sniffer reads (hyper's default limit is larger;
/// past this the case is simply not kept).
const MAX_HEAD: usize = 16 * 1024;
/// Heads kept waiting for their request (pipelining depth).
const MAX_QUEUED: usize = 16;

/// One request head as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    method: String,
    target: String,
    /// Header names whose spelling is not all lowercase, as sent.
    names: Vec<String>,
}

/// The heads a connection's client sent, waiting for their requests.
#[derive(Debug, Default)]
pub(crate) struct SniffedHeads {
    heads: Mutex<VecDeque<Head>>,
}

impl SniffedHeads {
    /// The original spellings for the request `method target` (the oldest
    /// head with that request line), as the `l5d-orig-header-case` value.
    pub(crate) fn take(&self, method: &str, target: &http::Uri) -> Option<String> {
        let mut heads = self.heads.lock().unwrap_or_else(PoisonError::into_inner);
        let position = heads
            .iter()
            .position(|head| head.method == method && *target == *head.target)?;
        let head = heads.remove(position)?;
        (!head.names.is_empty()).then(|| head.names.join(","))
    }

    fn push(&self, head: Head) {
        let mut heads = self.heads.lock().unwrap_or_else(PoisonError::into_inner);
        if heads.len() >= MAX_QUEUED {
            heads.pop_front();
        }
        heads.push_back(head);
    }
}

/// What the sniffer expects next on the stream.
enum State {
    /// A request head (bytes collected so far).
    Head(BytesMut),
    /// This many body bytes before the next head.
    Body(u64),
    /// Stopped: a chunked body, an upgrade, or an oversized head.
    Off,
}

/// A client connection whose request heads are read as they pass.
pub(crate) struct HeadSniffer<I> {
    inner: I,
    state: State,
    heads: Arc<SniffedHeads>,
}

impl<I> HeadSniffer<I> {
    /// Wraps the client connection `inner`, recording heads into `heads`.
    pub(crate) fn new(inner: I, heads: Arc<SniffedHeads>) -> Self {
        HeadSniffer {
            inner,
            state: State::Head(BytesMut::new()),
            heads,
        }
    }

    /// Follows `data` (just read) through heads and bodies.
    fn observe(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            match &mut self.state {
                State::Off => return,
                State::Body(remaining) => {
                    let skipped = (*remaining).min(data.len() as u64);
                    *remaining -= skipped;
                    data = &data[skipped as usize..];
                    if *remaining == 0 {
                        self.state = State::Head(BytesMut::new());
                    }
                }
                State::Head(buffer) => {
                    let before = buffer.len();
                    buffer.extend_from_slice(data);
                    let mut headers = [httparse::EMPTY_HEADER; 100];
                    let mut request = httparse::Request::new(&mut headers);
                    match request.parse(buffer) {
                        Ok(httparse::Status::Complete(length)) => {
                            let (head, next) = read_head(&request);
                            self.heads.push(head);
                            let used = length - before;
                            data = &data[used..];
                            self.state = next;
                        }
                        Ok(httparse::Status::Partial) if buffer.len() <= MAX_HEAD => return,
                        _ => self.state = State::Off,
                    }
                }
            }
        }
    }
}

/// The head's spellings and what follows it.
fn read_head(request: &httparse::Request<'_, '_>) -> (Head, State) {
    let mut names = Vec::new();
    let mut next = State::Head(BytesMut::new());
    for header in request.headers.iter() {
        if header.name.bytes().any(|byte| byte.is_ascii_uppercase()) {
            names.push(header.name.to_string());
        }
        let value = std::str::from_utf8(header.value).unwrap_or_default().trim();
        if header.name.eq_ignore_ascii_case("content-length") {
            if let Ok(length) = value.parse::<u64>()
                && length > 0
            {
                next = State::Body(length);
            }
        } else if header.name.eq_ignore_ascii_case("transfer-encoding")
            || header.name.eq_ignore_ascii_case("upgrade")
        {
            next = State::Off;
        }
    }
    if request.method == Some("CONNECT") {
        next = State::Off;
    }
    let head = Head {
        method: request.method.unwrap_or_default().to_string(),
        target: request.path.unwrap_or_default().to_string(),
        names,
    };
    (head, next)
}

impl<I: AsyncRead + Unpin> AsyncRead for HeadSniffer<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buffer.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(context, buffer);
        if let Poll::Ready(Ok(())) = result
            && !matches!(self.state, State::Off)
        {
            self.observe(&buffer.filled()[before..]);
        }
        result
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for HeadSniffer<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(context, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(context, buffers)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(context)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(context)
    }
}

/// Outbound: whether a request carries its names' original spellings to
/// the next hop. Only across the HTTP/2 hop (`upgraded`, where names get
/// lowercased) and only to a peer known to restore and remove the header
/// (`peer_restores_case`: a weft proxy, by discovery's hint). Any other peer
/// (linkerd2-proxy) would pass the header on to its app.
pub(crate) fn send_spellings(upgraded: bool, peer_restores_case: bool) -> bool {
    upgraded && peer_restores_case
}

/// Inbound: whether a request's `l5d-orig-header-case` is honoured (its
/// names respelled for the app). Only for an HTTP/1 request that crossed
/// the HTTP/2 hop (`downgraded`) from a peer with a verified identity,
/// whichever proxy that peer is: a respelling changes only the case of
/// names the request already has, never a value, so a linkerd2-proxy peer
/// passing on its app's header cannot do harm with it. In every case the
/// header itself is removed before the app.
pub(crate) fn honour_spellings(verified_peer: bool, downgraded: bool) -> bool {
    verified_peer && downgraded
}

/// Case maps for hyper's HTTP/1 client, made from `l5d-orig-header-case`
/// values. hyper keeps its case map type private, so one is made by letting
/// hyper parse a head with those names, then cached per value.
#[derive(Default)]
pub(crate) struct CaseMaps {
    cache: Mutex<HashMap<String, http::Extensions>>,
}

/// Distinct `l5d-orig-header-case` values remembered.
const MAX_CASE_MAPS: usize = 256;

impl CaseMaps {
    /// Extensions carrying hyper's case map for the names in `spellings`
    /// (comma-separated); `None` if the value cannot be used.
    pub(crate) async fn for_spellings(&self, spellings: &str) -> Option<http::Extensions> {
        if let Some(found) = self
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(spellings)
        {
            return Some(found.clone());
        }
        let extensions = parse_case_map(spellings).await?;
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= MAX_CASE_MAPS {
            cache.clear();
        }
        cache.insert(spellings.to_string(), extensions.clone());
        Some(extensions)
    }
}

/// Lets hyper's HTTP/1 server (with `preserve_header_case`) parse a head
/// with these names and returns the request's extensions (its case map).
async fn parse_case_map(spellings: &str) -> Option<http::Extensions> {
    let mut head = String::from("GET / HTTP/1.1\r\nhost: x\r\n");
    for name in spellings.split(',').map(str::trim) {
        if name.is_empty() || HeaderName::from_bytes(name.as_bytes()).is_err() {
            return None;
        }
        head.push_str(name);
        head.push_str(": x\r\n");
    }
    head.push_str("connection: close\r\n\r\n");
    let (client, server) = tokio::io::duplex(head.len() + 1024);
    let captured = Arc::new(Mutex::new(None));
    let sink = captured.clone();
    let service =
        hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
            let sink = sink.clone();
            async move {
                let (parts, _) = request.into_parts();
                *sink.lock().unwrap_or_else(PoisonError::into_inner) = Some(parts.extensions);
                Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Empty::<
                    bytes::Bytes,
                >::new()))
            }
        });
    let serving = hyper::server::conn::http1::Builder::new()
        .preserve_header_case(true)
        .serve_connection(hyper_util::rt::TokioIo::new(server), service);
    let mut client = client;
    let writing = async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        client.write_all(head.as_bytes()).await.ok()?;
        let mut sink = Vec::new();
        client.read_to_end(&mut sink).await.ok()
    };
    let _ = tokio::join!(serving, writing);
    captured
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn who_gets_the_original_spellings() {
        // (upgraded, the peer restores the case) -> sent
        let outbound = [
            (true, true, true),
            (true, false, false),
            (false, true, false),
            (false, false, false),
        ];
        for (upgraded, restores, expected) in outbound {
            assert_eq!(
                send_spellings(upgraded, restores),
                expected,
                "upgraded {upgraded}, restores {restores}"
            );
        }
        // (verified peer, crossed the HTTP/2 hop) -> honoured
        let inbound = [
            (true, true, true),
            (true, false, false),
            (false, true, false),
            (false, false, false),
        ];
        for (verified, downgraded, expected) in inbound {
            assert_eq!(
                honour_spellings(verified, downgraded),
                expected,
                "verified {verified}, downgraded {downgraded}"
            );
        }
    }

    fn uri(text: &str) -> http::Uri {
        text.parse().unwrap()
    }

    async fn sniff(chunks: &[&[u8]]) -> Arc<SniffedHeads> {
        let heads = Arc::new(SniffedHeads::default());
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let mut sniffer = HeadSniffer::new(server, heads.clone());
        for chunk in chunks {
            client.write_all(chunk).await.unwrap();
            let mut buffer = vec![0u8; chunk.len()];
            sniffer.read_exact(&mut buffer).await.unwrap();
        }
        heads
    }

    #[tokio::test]
    async fn heads_are_read_through_bodies_and_split_reads() {
        let heads = sniff(&[
            b"POST /a HTTP/1.1\r\nHost: x\r\nX-Custom-HEADER: 1\r\nContent-Length: 5\r\n\r\nhel",
            b"lo",
            b"GET /b HTTP/1.1\r\nhost: x\r\nAccept",
            b": */*\r\n\r\n",
        ])
        .await;
        assert_eq!(
            heads.take("POST", &uri("/a")).as_deref(),
            Some("Host,X-Custom-HEADER,Content-Length")
        );
        assert_eq!(heads.take("GET", &uri("/b")).as_deref(), Some("Accept"));
        assert_eq!(heads.take("GET", &uri("/b")), None, "taken once");
    }

    #[tokio::test]
    async fn chunked_bodies_and_upgrades_stop_the_sniffer() {
        let heads = sniff(&[
            b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n",
        ])
        .await;
        assert!(heads.take("POST", &uri("/a")).is_some());
        assert_eq!(heads.take("GET", &uri("/b")), None);
    }

    #[tokio::test]
    async fn case_maps_make_hyper_write_the_original_spelling() {
        let maps = CaseMaps::default();
        let extensions = maps
            .for_spellings("X-Custom-HEADER,Content-Type")
            .await
            .unwrap();
        // hyper's HTTP/1 client writes the names in that case.
        let (client_io, mut server_io) = tokio::io::duplex(64 * 1024);
        let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
            .preserve_header_case(true)
            .handshake::<_, http_body_util::Empty<bytes::Bytes>>(hyper_util::rt::TokioIo::new(
                client_io,
            ))
            .await
            .unwrap();
        tokio::spawn(connection);
        let mut request = http::Request::builder()
            .uri("/")
            .header("host", "web")
            .header("x-custom-header", "1")
            .header("content-type", "text/plain")
            .body(http_body_util::Empty::new())
            .unwrap();
        request.extensions_mut().extend(extensions);
        tokio::spawn(async move { sender.send_request(request).await });
        let mut head = vec![0u8; 512];
        let read = server_io.read(&mut head).await.unwrap();
        let head = String::from_utf8_lossy(&head[..read]).to_string();
        assert!(head.contains("X-Custom-HEADER: 1"), "{head}");
        assert!(head.contains("Content-Type: text/plain"), "{head}");
        assert!(maps.for_spellings("bad name,").await.is_none());
    }
}
