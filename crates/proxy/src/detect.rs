//! Protocol detection: what a client speaks, judged from its first bytes.
//!
//! [`classify`] is the pure decision (table-tested); [`detect_until`] reads
//! from a socket until `classify` decides, the buffer fills, the client stops
//! sending, or the detect timeout passes. The bytes read are returned so the
//! chosen protocol handler sees the stream from its first byte.

use bytes::{BufMut, Bytes, BytesMut};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

/// The HTTP/2 connection preface a prior-knowledge client sends first.
const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Enough of the preface to be sure (Linkerd decides on these 14 bytes too).
const HTTP2_PREFIX_LENGTH: usize = 14;
/// The most bytes read before giving up on recognising a protocol.
pub(crate) const DETECT_BUFFER_SIZE: usize = 8 * 1024;

/// A protocol detection verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// An HTTP/1.x request line.
    Http1,
    /// The HTTP/2 prior-knowledge preface.
    Http2,
    /// A TLS ClientHello.
    Tls,
    /// Anything else: forwarded as opaque TCP.
    Opaque,
}

impl Protocol {
    /// The `tcp_detect_total` label value.
    pub(crate) fn metric_label(self) -> &'static str {
        match self {
            Protocol::Http1 => "http/1",
            Protocol::Http2 => "h2",
            Protocol::Tls => "tls",
            Protocol::Opaque => "opaque",
        }
    }
}

/// What the bytes seen so far say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The protocol is known.
    Known(Protocol),
    /// Consistent with a protocol, but too short to be sure.
    NeedMore,
    /// An HTTP/1 request line so far, not yet complete (a method, maybe a
    /// target, no version yet): still HTTP if more arrives.
    HttpIncomplete,
    /// A first line naming `HTTP/` that the proxy's parser refuses (leading
    /// or doubled whitespace, tabs, a bad version): a lenient app server
    /// would still read it as a request, so it is never relayed inbound.
    MalformedHttp,
}

/// Classifies a connection's first bytes.
pub(crate) fn classify(bytes: &[u8]) -> Verdict {
    if bytes.is_empty() {
        return Verdict::NeedMore;
    }
    // HTTP/2 prior knowledge.
    let compared = bytes.len().min(HTTP2_PREFIX_LENGTH);
    if bytes[..compared] == HTTP2_PREFACE[..compared] {
        return if compared == HTTP2_PREFIX_LENGTH {
            Verdict::Known(Protocol::Http2)
        } else {
            Verdict::NeedMore
        };
    }
    // TLS: a handshake record (0x16), version 3.x, whose first message is a
    // ClientHello (0x01).
    if bytes[0] == 0x16 {
        return match bytes {
            [0x16, 0x03, _, _, _, 0x01, ..] => Verdict::Known(Protocol::Tls),
            [0x16]
            | [0x16, 0x03]
            | [0x16, 0x03, _]
            | [0x16, 0x03, _, _]
            | [0x16, 0x03, _, _, _] => Verdict::NeedMore,
            _ => Verdict::Known(Protocol::Opaque),
        };
    }
    classify_http1(bytes)
}

/// An HTTP/1 request line is recognised once the parser has read the method,
/// target, version and line end; headers are the HTTP server's business.
/// Only the request line is parsed, so the verdict does not change as more
/// bytes arrive.
fn classify_http1(bytes: &[u8]) -> Verdict {
    let request_line = match bytes.iter().position(|&byte| byte == b'\n') {
        Some(end) => &bytes[..=end],
        None => bytes,
    };
    let mut no_headers = [];
    let mut request = httparse::Request::new(&mut no_headers);
    match request.parse(request_line) {
        Ok(httparse::Status::Complete(_)) => Verdict::Known(Protocol::Http1),
        // With no room for headers the parser stops at the first one, after a
        // fully parsed request line.
        Err(httparse::Error::TooManyHeaders) => Verdict::Known(Protocol::Http1),
        Ok(httparse::Status::Partial)
            if request.version.is_some() && request_line.ends_with(b"\n") =>
        {
            Verdict::Known(Protocol::Http1)
        }
        Ok(httparse::Status::Partial) if request.method.is_some() => Verdict::HttpIncomplete,
        Ok(httparse::Status::Partial) => Verdict::NeedMore,
        Err(_) => classify_refused_line(bytes),
    }
}

/// Bytes the HTTP/1 parser refused. A lenient server still reads
/// `[blanks] METHOD blanks TARGET blanks HTTP/x.y` as a request, so a text
/// line that starts with letters and then a blank is judged once it ends:
/// malformed HTTP if it names `HTTP/` (in any case). Anything else (binary,
/// JSON, `*1` …) is opaque at once.
fn classify_refused_line(bytes: &[u8]) -> Verdict {
    let line_end = bytes.iter().position(|&byte| byte == b'\n');
    let line = &bytes[..line_end.unwrap_or(bytes.len())];
    let text = line
        .iter()
        .all(|&byte| byte.is_ascii_graphic() || matches!(byte, b' ' | b'\t' | b'\r'));
    let start = line.trim_ascii_start();
    let method = start
        .iter()
        .position(|byte| !byte.is_ascii_alphabetic())
        .unwrap_or(start.len());
    let request_like = match start.get(method) {
        None => true,
        Some(b' ' | b'\t') => method > 0,
        Some(_) => false,
    };
    if !text || !request_like {
        return Verdict::Known(Protocol::Opaque);
    }
    match line_end {
        None => Verdict::NeedMore,
        Some(_)
            if line
                .windows(5)
                .any(|window| window.eq_ignore_ascii_case(b"http/")) =>
        {
            Verdict::MalformedHttp
        }
        Some(_) => Verdict::Known(Protocol::Opaque),
    }
}

/// How detection on a socket ended.
#[derive(Debug)]
pub(crate) enum Detection {
    /// A protocol was recognised (or ruled out: `Opaque`) from `prefix`.
    Detected {
        /// The verdict.
        protocol: Protocol,
        /// The bytes read, to be replayed.
        prefix: Bytes,
    },
    /// The buffer filled with an HTTP/1 request line that never ended:
    /// answered, never relayed (inbound), or relayed as opaque (outbound).
    HttpTooLarge {
        /// The bytes read.
        prefix: Bytes,
    },
    /// A first line naming `HTTP/` that the parser refuses: answered 400,
    /// never relayed (inbound), or relayed as opaque (outbound).
    MalformedHttp {
        /// The bytes read.
        prefix: Bytes,
    },
    /// The client sent too little before the detect timeout.
    TimedOut {
        /// The bytes read, to be replayed.
        prefix: Bytes,
    },
    /// The client closed the connection before sending anything.
    Closed,
    /// Reading failed.
    Failed(std::io::Error),
}

impl Detection {
    /// The `tcp_detect_total` label value.
    pub(crate) fn metric_label(&self) -> &'static str {
        match self {
            Detection::Detected { protocol, .. } => protocol.metric_label(),
            Detection::HttpTooLarge { .. } => "http_too_large",
            Detection::MalformedHttp { .. } => "http_malformed",
            Detection::TimedOut { .. } => "timeout",
            Detection::Closed => "closed",
            Detection::Failed(_) => "error",
        }
    }
}

/// How reading the first bytes ended (before the timeout).
enum Reading {
    /// A verdict.
    Known(Protocol),
    /// The buffer filled with an unfinished HTTP/1 request line.
    HttpTooLarge,
    /// A request line the parser refuses.
    MalformedHttp,
}

/// The first read's size: most protocols are told apart by it (a request
/// line, the HTTP/2 preface, a TLS record header).
const FIRST_READ: usize = 128;

/// How much room to add for the next read when `read` bytes are buffered
/// and the buffer is full: [`FIRST_READ`] first, then at least 512 and at
/// least doubling.
fn next_read_size(read: usize) -> usize {
    match read {
        0 => FIRST_READ,
        _ => read.max(512),
    }
}

/// Reads from `io` until its protocol is known, for at most `timeout`.
#[cfg(test)]
pub(crate) async fn detect<I: AsyncRead + Unpin>(
    io: &mut I,
    timeout: std::time::Duration,
) -> Detection {
    // An idle connection holds FIRST_READ bytes, not a full buffer.
    let mut buffer = BytesMut::new();
    detect_until(io, Instant::now() + timeout, &mut buffer).await
}

/// Reads from `io` into `buffer` until its protocol is known, at most until
/// `deadline`. Cancel-safe: dropped before it ends, what was read stays in
/// `buffer`, and a later call carries on from there.
pub(crate) async fn detect_until<I: AsyncRead + Unpin>(
    io: &mut I,
    deadline: Instant,
    buffer: &mut BytesMut,
) -> Detection {
    let reading = async {
        loop {
            if buffer.len() >= DETECT_BUFFER_SIZE {
                // Full: a request line still going is HTTP, just too long
                // (an 8 KiB method token as well: hyper would take it).
                return Ok(match classify(buffer) {
                    Verdict::Known(protocol) => Reading::Known(protocol),
                    Verdict::MalformedHttp => Reading::MalformedHttp,
                    Verdict::HttpIncomplete | Verdict::NeedMore => Reading::HttpTooLarge,
                });
            }
            if buffer.capacity() == buffer.len() {
                buffer.reserve(next_read_size(buffer.len()));
            }
            // Never past the detection limit, however the buffer grew.
            let room = DETECT_BUFFER_SIZE - buffer.len();
            let read = io.read_buf(&mut (&mut *buffer).limit(room)).await?;
            if read == 0 {
                // End of stream: whatever arrived is forwarded as is.
                return Ok(match classify(buffer) {
                    Verdict::Known(protocol) => Reading::Known(protocol),
                    Verdict::MalformedHttp => Reading::MalformedHttp,
                    Verdict::NeedMore | Verdict::HttpIncomplete => Reading::Known(Protocol::Opaque),
                });
            }
            match classify(buffer) {
                Verdict::Known(protocol) => return Ok(Reading::Known(protocol)),
                Verdict::MalformedHttp => return Ok(Reading::MalformedHttp),
                Verdict::NeedMore | Verdict::HttpIncomplete => {}
            }
        }
    };
    let result = tokio::time::timeout_at(deadline, reading).await;
    match result {
        Ok(Ok(_)) if buffer.is_empty() => Detection::Closed,
        Ok(Ok(reading)) => {
            let prefix = std::mem::take(buffer).freeze();
            match reading {
                Reading::Known(protocol) => Detection::Detected { protocol, prefix },
                Reading::HttpTooLarge => Detection::HttpTooLarge { prefix },
                Reading::MalformedHttp => Detection::MalformedHttp { prefix },
            }
        }
        Ok(Err(error)) => Detection::Failed(error),
        Err(_) => Detection::TimedOut {
            prefix: std::mem::take(buffer).freeze(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn classification_table() {
        use Protocol::*;
        use Verdict::*;
        let table: &[(&[u8], Verdict)] = &[
            (b"", NeedMore),
            (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", Known(Http2)),
            (b"PRI * HTTP/2.0", Known(Http2)),
            (b"PRI * HT", NeedMore),
            (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", Known(Http1)),
            (b"GET / HTTP/1.1\r\n", Known(Http1)),
            (b"GET http://example.com/x HTTP/1.1\r\n", Known(Http1)),
            (b"CONNECT example.com:443 HTTP/1.1\r\n", Known(Http1)),
            (
                b"POST /upload HTTP/1.0\r\nContent-Length: 3\r\n",
                Known(Http1),
            ),
            (b"GET / HTTP/1.1\r\nX-Big: aaaa", Known(Http1)),
            (b"GET /pa", HttpIncomplete),
            (b"GET ", HttpIncomplete),
            (b"POST /upload?a=1&b=2", HttpIncomplete),
            (b"G", NeedMore),
            (b"GETGETGET", NeedMore),
            (b"GET / HTTP/9.9\r\n", MalformedHttp),
            (b"GE T / HTTP/1.1\r\n", MalformedHttp),
            (b" GET / HTTP/1.1\r\nl5d-client-id: x\r\n", MalformedHttp),
            (b"GET  /double HTTP/1.1\r\n", MalformedHttp),
            (b"GET /tab\tHTTP/1.1\n", MalformedHttp),
            (b"get / http/1.1 \r\n", MalformedHttp),
            (b" GET / HT", NeedMore),
            (b"HELO mail.example\r\n", Known(Opaque)),
            (b"{\"jsonrpc\": \"2.0\"", Known(Opaque)),
            (b"GET/x HTTP/1.1\r\n", Known(Opaque)),
            (b"  ", NeedMore),
            // Undecided until the line ends, so that the verdict does not
            // depend on where the client's first segment ends.
            (b"GET / HTTP/1.1", HttpIncomplete),
            (b"GET / HTTP/1.1\r", HttpIncomplete),
            (b"GET / HTTP/1.1\r\x1a", Known(Opaque)),
            (b"*1\r\n$4\r\nPING\r\n", Known(Opaque)),
            (b"\x00\x01\x02garbage", Known(Opaque)),
            (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc", Known(Tls)),
            (b"\x16\x03\x01", NeedMore),
            (b"\x16\x01", Known(Opaque)),
            (b"\x16\x03\x01\x02\x00\x02", Known(Opaque)),
        ];
        for (bytes, expected) in table {
            assert_eq!(
                classify(bytes),
                *expected,
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn read_sizes_start_small_and_grow() {
        let cases = [(0, FIRST_READ), (128, 512), (640, 640), (4096, 4096)];
        for (read, expected) in cases {
            assert_eq!(next_read_size(read), expected, "after {read} bytes");
        }
    }

    #[tokio::test]
    async fn detection_replays_what_it_read() {
        let (mut client, server) = tokio::io::duplex(64);
        use tokio::io::AsyncWriteExt;
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let mut server = server;
        match detect(&mut server, Duration::from_secs(1)).await {
            Detection::Detected { protocol, prefix } => {
                assert_eq!(protocol, Protocol::Http1);
                assert_eq!(&prefix[..], b"GET / HTTP/1.1\r\n");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_full_buffer_is_an_overlong_request_line_or_opaque() {
        use tokio::io::AsyncWriteExt;
        let long_target = format!("GET /{} HTTP/1.1\r\n", "a".repeat(DETECT_BUFFER_SIZE));
        let long_method = "A".repeat(DETECT_BUFFER_SIZE + 10);
        let binary = [0x01u8; DETECT_BUFFER_SIZE + 10];
        let cases: [(&[u8], &str); 3] = [
            (long_target.as_bytes(), "http_too_large"),
            (long_method.as_bytes(), "http_too_large"),
            (&binary, "opaque"),
        ];
        for (bytes, expected) in cases {
            let (mut client, mut server) = tokio::io::duplex(DETECT_BUFFER_SIZE * 4);
            client.write_all(bytes).await.unwrap();
            let detection = detect(&mut server, Duration::from_secs(5)).await;
            assert_eq!(detection.metric_label(), expected, "{detection:?}");
        }
    }

    #[tokio::test]
    async fn a_silent_client_times_out_and_a_closed_one_is_closed() {
        let (_client, mut server) = tokio::io::duplex(64);
        assert!(matches!(
            detect(&mut server, Duration::from_millis(20)).await,
            Detection::TimedOut { .. }
        ));
        let (client, mut server) = tokio::io::duplex(64);
        drop(client);
        assert!(matches!(
            detect(&mut server, Duration::from_secs(1)).await,
            Detection::Closed
        ));
    }
}
