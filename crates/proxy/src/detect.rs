//! Protocol detection: what a client speaks, judged from its first bytes.
//!
//! [`classify`] is the pure decision (table-tested); [`detect`] reads from a
//! socket until `classify` decides, the buffer fills, the client stops
//! sending, or the detect timeout passes. The bytes read are returned so the
//! chosen protocol handler sees the stream from its first byte.

use bytes::{Bytes, BytesMut};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The HTTP/2 connection preface a prior-knowledge client sends first.
const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Enough of the preface to be sure (Linkerd decides on these 14 bytes too).
const HTTP2_PREFIX_LENGTH: usize = 14;
/// The most bytes read before giving up on recognising a protocol.
pub const DETECT_BUFFER_SIZE: usize = 8 * 1024;

/// A protocol detection verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
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
    pub fn metric_label(self) -> &'static str {
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
pub enum Verdict {
    /// The protocol is known.
    Known(Protocol),
    /// Consistent with a protocol, but too short to be sure.
    NeedMore,
}

/// Classifies a connection's first bytes.
pub fn classify(bytes: &[u8]) -> Verdict {
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
        Ok(httparse::Status::Partial) => Verdict::NeedMore,
        Err(_) => Verdict::Known(Protocol::Opaque),
    }
}

/// How detection on a socket ended.
#[derive(Debug)]
pub enum Detection {
    /// A protocol was recognised (or ruled out: `Opaque`) from `prefix`.
    Detected {
        /// The verdict.
        protocol: Protocol,
        /// The bytes read, to be replayed.
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
    pub fn metric_label(&self) -> &'static str {
        match self {
            Detection::Detected { protocol, .. } => protocol.metric_label(),
            Detection::TimedOut { .. } => "timeout",
            Detection::Closed => "closed",
            Detection::Failed(_) => "error",
        }
    }
}

/// Reads from `io` until its protocol is known, for at most `timeout`.
pub async fn detect<I: AsyncRead + Unpin>(io: &mut I, timeout: Duration) -> Detection {
    let mut buffer = BytesMut::with_capacity(1024);
    let reading = async {
        loop {
            if buffer.len() >= DETECT_BUFFER_SIZE {
                return Ok(Protocol::Opaque);
            }
            if buffer.capacity() == buffer.len() {
                buffer.reserve(buffer.len());
            }
            let read = io.read_buf(&mut buffer).await?;
            if read == 0 {
                // End of stream: whatever arrived is forwarded as is.
                return Ok(match classify(&buffer) {
                    Verdict::Known(protocol) => protocol,
                    Verdict::NeedMore => Protocol::Opaque,
                });
            }
            if let Verdict::Known(protocol) = classify(&buffer) {
                return Ok(protocol);
            }
        }
    };
    match tokio::time::timeout(timeout, reading).await {
        Ok(Ok(_)) if buffer.is_empty() => Detection::Closed,
        Ok(Ok(protocol)) => Detection::Detected {
            protocol,
            prefix: buffer.freeze(),
        },
        Ok(Err(error)) => Detection::Failed(error),
        Err(_) => Detection::TimedOut {
            prefix: buffer.freeze(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            (b"GET /pa", NeedMore),
            (b"G", NeedMore),
            (b"GET / HTTP/9.9\r\n", Known(Opaque)),
            // Undecided until the line ends, so that the verdict does not
            // depend on where the client's first segment ends.
            (b"GET / HTTP/1.1", NeedMore),
            (b"GET / HTTP/1.1\r", NeedMore),
            (b"GET / HTTP/1.1\r\x1a", Known(Opaque)),
            (b"GE T / HTTP/1.1\r\n", Known(Opaque)),
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
