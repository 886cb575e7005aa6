//! Linkerd's opaque transport header: where a peer proxy's connection goes.
//!
//! When a client proxy sends opaque (or known-protocol) traffic to a meshed
//! peer's direct port (4143), it negotiates the ALPN protocol [`ALPN`] and,
//! right after the TLS handshake, writes this header before any application
//! byte. The server proxy reads it to learn the target port, an optional
//! gateway target name and, for HTTP, the session protocol.
//!
//! ```text
//! "transport.l5d.io/v1\r\n\r\n" | u32 big-endian length | protobuf message | application data…
//!        23 bytes (PREFACE)        (at most 64 KiB)
//!
//! message transport.l5d.io.Header {
//!     int32 port = 1;                        // 1..=65535
//!     string name = 2;                       // empty: the local target
//!     SessionProtocol session_protocol = 3;  // absent: opaque TCP
//! }
//! message SessionProtocol { oneof kind { Http1 http1 = 1; Http2 http2 = 2; } }
//! message Http1 {}  message Http2 {}
//! ```
//!
//! [`encode`] and [`decode`] are pure. The framing (preface, length, the
//! 64 KiB bound) is ours; the message is a `prost` message written out by hand
//! in [`proto`] (no build script), so decoding follows protobuf rules as
//! Linkerd's own proxy applies them: unknown fields are skipped, the last
//! value of a repeated scalar wins, repeated messages merge. Then the port is
//! checked and the message converted to a [`TransportHeader`].

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message;

/// The ALPN protocol a client proxy offers to announce a transport header.
pub(crate) const ALPN: &[u8] = b"transport.l5d.io/v1";
/// The bytes every transport header starts with.
pub(crate) const PREFACE: &[u8] = b"transport.l5d.io/v1\r\n\r\n";
/// The longest protobuf message accepted (Linkerd reads the header into a
/// 64 KiB buffer).
pub(crate) const MAX_MESSAGE_LENGTH: usize = 64 * 1024;
/// The big-endian u32 message length after the preface.
const LENGTH_PREFIX_LENGTH: usize = 4;
/// Preface and length: what is needed before the message length is known.
const FRAME_HEADER_LENGTH: usize = PREFACE.len() + LENGTH_PREFIX_LENGTH;

/// Where a direct connection goes, as told by the client proxy.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TransportHeader {
    /// The target port. Must not be 0: [`decode`] rejects a header without a
    /// port.
    pub port: u16,
    /// The target's name for gateway forwarding; `None` means the local
    /// workload. `Some("")` is encoded as `None`.
    pub name: Option<String>,
    /// The protocol the connection carries; `None` means opaque TCP.
    pub protocol: Option<SessionProtocol>,
}

/// The protocol a direct connection carries, so the server skips detection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum SessionProtocol {
    /// HTTP/1.x.
    Http1,
    /// HTTP/2.
    Http2,
}

/// The outcome of [`decode`] on the bytes read so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// A valid beginning: read until the buffer holds at least `needed` bytes.
    Incomplete {
        /// Total bytes needed before asking again (a lower bound).
        needed: usize,
    },
    /// A whole header.
    Complete {
        /// The decoded header.
        header: TransportHeader,
        /// Bytes taken by the header; the rest of the buffer is application
        /// data.
        consumed: usize,
    },
}

/// Why a transport header was refused. Every variant means the connection
/// should be closed: the peer is not speaking this protocol or is broken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HeaderError {
    /// The bytes do not start with [`PREFACE`].
    #[error("connection does not start with the transport header preface")]
    NotTransportHeader,
    /// The declared message length is over [`MAX_MESSAGE_LENGTH`].
    #[error("transport header message of {0} bytes is longer than the 65536-byte limit")]
    TooLong(u32),
    /// The message is not a valid `transport.l5d.io.Header`: truncated, a
    /// bad varint or key, a known field with the wrong wire type, a name that
    /// is not UTF-8. The protobuf error names the field where it can.
    #[error("transport header message is malformed: {0}")]
    Malformed(prost::DecodeError),
    /// The port is missing, 0, negative or above 65535.
    #[error("transport header port {0} is not between 1 and 65535")]
    InvalidPort(i32),
}

/// The protobuf messages, written out by hand as `prost` would generate them
/// from Linkerd's `transport.l5d.io` schema. Their names are the schema's, so
/// decode errors read `Header.port: …`.
mod proto {
    /// `transport.l5d.io.Header`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Header {
        #[prost(int32, tag = "1")]
        pub(super) port: i32,
        #[prost(string, tag = "2")]
        pub(super) name: String,
        #[prost(message, optional, tag = "3")]
        pub(super) session_protocol: Option<SessionProtocol>,
    }

    /// `transport.l5d.io.SessionProtocol`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct SessionProtocol {
        #[prost(oneof = "Kind", tags = "1, 2")]
        pub(super) kind: Option<Kind>,
    }

    /// `SessionProtocol.kind`.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub(super) enum Kind {
        #[prost(message, tag = "1")]
        Http1(Http1),
        #[prost(message, tag = "2")]
        Http2(Http2),
    }

    /// `SessionProtocol.Http1`: no fields.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Http1 {}

    /// `SessionProtocol.Http2`: no fields.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Http2 {}
}

/// Encodes `header`, preface and length included, ready to write after the
/// TLS handshake.
///
/// Fields with default values are omitted, as proto3 encoders do, so a
/// `port` of 0 produces a header the peer refuses; a `name` that makes the
/// message longer than [`MAX_MESSAGE_LENGTH`] is refused too.
pub(crate) fn encode(header: &TransportHeader) -> Bytes {
    let kind = header.protocol.map(|protocol| match protocol {
        SessionProtocol::Http1 => proto::Kind::Http1(proto::Http1 {}),
        SessionProtocol::Http2 => proto::Kind::Http2(proto::Http2 {}),
    });
    let message = proto::Header {
        port: i32::from(header.port),
        name: header.name.clone().unwrap_or_default(),
        session_protocol: kind.map(|kind| proto::SessionProtocol { kind: Some(kind) }),
    };
    let length = message.encoded_len();
    let mut framed = BytesMut::with_capacity(FRAME_HEADER_LENGTH + length);
    framed.put_slice(PREFACE);
    framed.put_u32(u32::try_from(length).expect("a transport header is far below 4 GiB"));
    message
        .encode(&mut framed)
        .expect("a BytesMut grows to hold the message");
    framed.freeze()
}

/// Decodes the transport header at the start of `buffer`.
///
/// Answers as soon as the bytes cannot be a header (`NotTransportHeader`
/// after the first differing preface byte), and otherwise asks for more
/// until the whole message is there.
pub(crate) fn decode(buffer: &[u8]) -> Result<Decoded, HeaderError> {
    let compared = buffer.len().min(PREFACE.len());
    if buffer[..compared] != PREFACE[..compared] {
        return Err(HeaderError::NotTransportHeader);
    }
    let Some(&length) = buffer
        .get(PREFACE.len()..)
        .and_then(|rest| rest.first_chunk::<LENGTH_PREFIX_LENGTH>())
    else {
        return Ok(Decoded::Incomplete {
            needed: FRAME_HEADER_LENGTH,
        });
    };
    let length = u32::from_be_bytes(length);
    let message_length = usize::try_from(length).unwrap_or(usize::MAX);
    if message_length > MAX_MESSAGE_LENGTH {
        return Err(HeaderError::TooLong(length));
    }
    let end = FRAME_HEADER_LENGTH + message_length;
    let Some(message) = buffer.get(FRAME_HEADER_LENGTH..end) else {
        return Ok(Decoded::Incomplete { needed: end });
    };
    let message = proto::Header::decode(message).map_err(HeaderError::Malformed)?;
    Ok(Decoded::Complete {
        header: TransportHeader::try_from(message)?,
        consumed: end,
    })
}

impl TryFrom<proto::Header> for TransportHeader {
    type Error = HeaderError;

    /// Checks the port; an empty name and a `SessionProtocol` without a
    /// `kind` mean none.
    fn try_from(message: proto::Header) -> Result<Self, HeaderError> {
        let port = u16::try_from(message.port)
            .ok()
            .filter(|&port| port != 0)
            .ok_or(HeaderError::InvalidPort(message.port))?;
        let protocol = message
            .session_protocol
            .and_then(|session_protocol| session_protocol.kind)
            .map(|kind| match kind {
                proto::Kind::Http1(_) => SessionProtocol::Http1,
                proto::Kind::Http2(_) => SessionProtocol::Http2,
            });
        Ok(TransportHeader {
            port,
            name: Some(message.name).filter(|name| !name.is_empty()),
            protocol,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(port: u16, name: Option<&str>, protocol: Option<SessionProtocol>) -> TransportHeader {
        TransportHeader {
            port,
            name: name.map(str::to_string),
            protocol,
        }
    }

    /// Frames a hand-written protobuf message with the preface and length.
    fn framed(message: &[u8]) -> Vec<u8> {
        let length = u32::try_from(message.len()).expect("short").to_be_bytes();
        [PREFACE, &length, message].concat()
    }

    fn decode_message(message: &[u8]) -> Result<TransportHeader, HeaderError> {
        match decode(&framed(message))? {
            Decoded::Complete { header, consumed } => {
                assert_eq!(consumed, FRAME_HEADER_LENGTH + message.len());
                Ok(header)
            }
            Decoded::Incomplete { needed } => panic!("incomplete, needs {needed}"),
        }
    }

    fn round_trip_cases() -> Vec<TransportHeader> {
        let mut cases = Vec::new();
        for port in [1, 80, 4143, 8080, 65535] {
            for name in [None, Some("web.emojivoto.svc.cluster.local")] {
                for protocol in [
                    None,
                    Some(SessionProtocol::Http1),
                    Some(SessionProtocol::Http2),
                ] {
                    cases.push(header(port, name, protocol));
                }
            }
        }
        cases
    }

    #[test]
    fn constants() {
        assert_eq!(PREFACE.len(), 23);
        assert_eq!(&PREFACE[..ALPN.len()], ALPN);
    }

    #[test]
    fn round_trips() {
        for original in round_trip_cases() {
            let encoded = encode(&original);
            assert_eq!(
                decode(&encoded),
                Ok(Decoded::Complete {
                    header: original.clone(),
                    consumed: encoded.len()
                }),
                "{original:?}"
            );
        }
    }

    #[test]
    fn empty_name_is_encoded_as_none() {
        let encoded = encode(&header(80, Some(""), None));
        assert_eq!(encoded, encode(&header(80, None, None)));
    }

    /// Byte vectors derived by hand from the protobuf encoding rules:
    /// a key is `field_number << 3 | wire_type` as a varint (wire type 0 for
    /// varints, 2 for length-delimited), a varint stores 7 bits per byte,
    /// least significant first, with the high bit set on all but the last.
    #[test]
    fn known_encodings() {
        let table: &[(TransportHeader, &[u8])] = &[
            // port = 80: key 1<<3|0 = 0x08, 80 = 0x50 fits one byte.
            (header(80, None, None), b"\x08\x50"),
            // port = 8080 = 0x1f90: low 7 bits 0x10 | 0x80 = 0x90, then
            // 8080 >> 7 = 63 = 0x3f.
            // name = "web.example": key 2<<3|2 = 0x12, length 11 = 0x0b.
            // session_protocol = http2: key 3<<3|2 = 0x1a, length 2, then
            // the empty Http2 message: key 2<<3|2 = 0x12, length 0.
            // Message length 3 + 13 + 4 = 20 = 0x14.
            (
                header(8080, Some("web.example"), Some(SessionProtocol::Http2)),
                b"\x08\x90\x3f\x12\x0bweb.example\x1a\x02\x12\x00",
            ),
            // port = 65535 = 0xffff: 0xff, 0xff, then 65535 >> 14 = 3.
            // http1: key 1<<3|2 = 0x0a.
            (
                header(65535, None, Some(SessionProtocol::Http1)),
                b"\x08\xff\xff\x03\x1a\x02\x0a\x00",
            ),
        ];
        for (original, message) in table {
            let expected = framed(message);
            assert_eq!(
                encode(original).as_ref(),
                expected.as_slice(),
                "{original:?}"
            );
            assert_eq!(decode_message(message).as_ref(), Ok(original));
        }
        assert_eq!(
            &framed(b"\x08\x90\x3f\x12\x0bweb.example\x1a\x02\x12\x00")[..27],
            b"transport.l5d.io/v1\r\n\r\n\x00\x00\x00\x14"
        );
    }

    #[test]
    fn every_truncation_is_incomplete() {
        for original in round_trip_cases() {
            let encoded = encode(&original);
            for length in 0..encoded.len() {
                match decode(&encoded[..length]) {
                    Ok(Decoded::Incomplete { needed }) => {
                        assert!(
                            needed > length && needed <= encoded.len(),
                            "{original:?} at {length}: {needed}"
                        );
                    }
                    other => panic!("{original:?} at {length}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn application_data_after_the_header_is_not_consumed() {
        let encoded = encode(&header(6379, None, None));
        let buffer = [&encoded[..], b"*1\r\n$4\r\nPING\r\n"].concat();
        let Ok(Decoded::Complete {
            header: decoded,
            consumed,
        }) = decode(&buffer)
        else {
            panic!("complete");
        };
        assert_eq!(decoded, header(6379, None, None));
        assert_eq!(&buffer[consumed..], b"*1\r\n$4\r\nPING\r\n");
    }

    #[test]
    fn framing_errors() {
        let too_long = [PREFACE, &[0x00, 0x01, 0x00, 0x01][..]].concat();
        let longest = [PREFACE, &[0x00, 0x01, 0x00, 0x00][..]].concat();
        let table: Vec<(&str, Vec<u8>, Result<Decoded, HeaderError>)> = vec![
            ("empty", vec![], Ok(Decoded::Incomplete { needed: 27 })),
            (
                "preface start",
                b"transport.l5d".to_vec(),
                Ok(Decoded::Incomplete { needed: 27 }),
            ),
            (
                "preface only",
                PREFACE.to_vec(),
                Ok(Decoded::Incomplete { needed: 27 }),
            ),
            (
                "HTTP/1.1",
                b"GET / HTTP/1.1\r\n\r\n".to_vec(),
                Err(HeaderError::NotTransportHeader),
            ),
            (
                "HTTP/2 preface",
                b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
                Err(HeaderError::NotTransportHeader),
            ),
            (
                "TLS record",
                b"\x16\x03\x01\x02\x00\x01".to_vec(),
                Err(HeaderError::NotTransportHeader),
            ),
            (
                "one wrong byte",
                b"tr@nsport".to_vec(),
                Err(HeaderError::NotTransportHeader),
            ),
            (
                "other version",
                b"transport.l5d.io/v2\r\n\r\n\x00\x00\x00\x02\x08\x50".to_vec(),
                Err(HeaderError::NotTransportHeader),
            ),
            (
                "no blank line",
                b"transport.l5d.io/v1\r\n\x00\x00".to_vec(),
                Err(HeaderError::NotTransportHeader),
            ),
            (
                "65537-byte message",
                too_long,
                Err(HeaderError::TooLong(65537)),
            ),
            (
                "4 GiB message",
                [PREFACE, &[0xff; 4][..]].concat(),
                Err(HeaderError::TooLong(u32::MAX)),
            ),
            (
                "65536-byte message",
                longest,
                Ok(Decoded::Incomplete { needed: 27 + 65536 }),
            ),
        ];
        for (case, bytes, expected) in table {
            assert_eq!(decode(&bytes), expected, "{case}");
        }
    }

    /// What a refused message is refused with: a bad port, or a protobuf
    /// error whose text contains the given words.
    #[derive(Debug)]
    enum Refusal {
        Port(i32),
        Malformed(&'static str),
    }

    #[test]
    fn message_errors() {
        use Refusal::*;
        let table: &[(&str, &[u8], Refusal)] = &[
            ("empty message: no port", b"", Port(0)),
            ("port 0 written out", b"\x08\x00", Port(0)),
            ("name without port", b"\x12\x01a", Port(0)),
            ("port 65536", b"\x08\x80\x80\x04", Port(65536)),
            (
                "port -1 (ten-byte varint)",
                b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
                Port(-1),
            ),
            (
                "truncated port varint",
                b"\x08\x90",
                Malformed("Header.port: invalid varint"),
            ),
            (
                "key without value",
                b"\x08",
                Malformed("Header.port: invalid varint"),
            ),
            (
                "eleven-byte varint",
                b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x81\x01",
                Malformed("Header.port: invalid varint"),
            ),
            (
                "tenth varint byte over 1",
                b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02",
                Malformed("Header.port: invalid varint"),
            ),
            (
                "field number 0",
                b"\x00\x01",
                Malformed("invalid tag value: 0"),
            ),
            (
                "key over 32 bits",
                b"\x80\x80\x80\x80\x80\x01",
                Malformed("invalid key value: 34359738368"),
            ),
            (
                "group start",
                b"\x0b",
                Malformed("Header.port: invalid wire type: StartGroup"),
            ),
            (
                "group end",
                b"\x0c",
                Malformed("Header.port: invalid wire type: EndGroup"),
            ),
            (
                "wire type 6",
                b"\x26\x00",
                Malformed("invalid wire type value: 6"),
            ),
            (
                "wire type 7",
                b"\x27\x00",
                Malformed("invalid wire type value: 7"),
            ),
            (
                "port as fixed32",
                b"\x0d\x50\x00\x00\x00",
                Malformed("Header.port: invalid wire type: ThirtyTwoBit (expected Varint)"),
            ),
            (
                "port as bytes",
                b"\x0a\x01\x50",
                Malformed("Header.port: invalid wire type: LengthDelimited (expected Varint)"),
            ),
            (
                "name as varint",
                b"\x08\x50\x10\x01",
                Malformed("Header.name: invalid wire type: Varint (expected LengthDelimited)"),
            ),
            (
                "protocol as varint",
                b"\x08\x50\x18\x01",
                Malformed(
                    "Header.session_protocol: invalid wire type: Varint (expected LengthDelimited)",
                ),
            ),
            (
                "http1 as varint",
                b"\x08\x50\x1a\x02\x08\x01",
                Malformed(
                    "SessionProtocol.kind: Header.session_protocol: invalid wire type: Varint (expected LengthDelimited)",
                ),
            ),
            (
                "http2 as fixed64",
                b"\x08\x50\x1a\x09\x11\x00\x00\x00\x00\x00\x00\x00\x00",
                Malformed(
                    "SessionProtocol.kind: Header.session_protocol: invalid wire type: SixtyFourBit (expected LengthDelimited)",
                ),
            ),
            (
                "name longer than message",
                b"\x08\x50\x12\x05ab",
                Malformed("Header.name: buffer underflow"),
            ),
            (
                "huge name length",
                b"\x08\x50\x12\xff\xff\xff\xff\x0f",
                Malformed("Header.name: buffer underflow"),
            ),
            (
                "protocol longer than message",
                b"\x08\x50\x1a\x04\x12\x00",
                Malformed("Header.session_protocol: buffer underflow"),
            ),
            (
                "http2 longer than protocol",
                b"\x08\x50\x1a\x02\x12\x01",
                Malformed("buffer underflow"),
            ),
            (
                "garbage inside http1",
                b"\x08\x50\x1a\x03\x0a\x01\x0b",
                Malformed("SessionProtocol.kind"),
            ),
            (
                "unknown fixed64 cut short",
                b"\x08\x50\x21\x00\x00",
                Malformed("buffer underflow"),
            ),
            (
                "unknown fixed32 cut short",
                b"\x08\x50\x25\x00",
                Malformed("buffer underflow"),
            ),
            (
                "name not UTF-8",
                b"\x08\x50\x12\x02\xff\xfe",
                Malformed("Header.name: invalid string value: data is not UTF-8 encoded"),
            ),
        ];
        for (case, message, expected) in table {
            match (decode_message(message), expected) {
                (Err(HeaderError::InvalidPort(port)), Port(expected)) if port == *expected => {}
                (Err(HeaderError::Malformed(error)), Malformed(words))
                    if error.to_string().contains(words) => {}
                (outcome, expected) => panic!(
                    "{case}: {}, expected {expected:?}",
                    outcome.map_or_else(|error| error.to_string(), |header| format!("{header:?}"))
                ),
            }
        }
    }

    #[test]
    fn protobuf_decoding_rules() {
        use SessionProtocol::*;
        let table: &[(&str, &[u8], TransportHeader)] = &[
            (
                "unknown fields of every wire type, before and after",
                b"\x20\x07\x29\x01\x02\x03\x04\x05\x06\x07\x08\x08\x50\x32\x03abc\x3d\x01\x02\x03\x04\xc0\x3e\x01",
                header(80, None, None),
            ),
            ("unknown field inside session_protocol", b"\x08\x50\x1a\x04\x18\x01\x0a\x00", header(80, None, Some(Http1))),
            ("unknown field inside http2", b"\x08\x50\x1a\x04\x12\x02\x08\x01", header(80, None, Some(Http2))),
            ("empty session_protocol: opaque", b"\x08\x50\x1a\x00", header(80, None, None)),
            ("last port wins", b"\x08\x50\x08\x90\x3f", header(8080, None, None)),
            ("last name wins", b"\x08\x50\x12\x01a\x12\x01b", header(80, Some("b"), None)),
            ("empty name: none", b"\x08\x50\x12\x00", header(80, None, None)),
            ("last kind wins across messages", b"\x08\x50\x1a\x02\x0a\x00\x1a\x02\x12\x00", header(80, None, Some(Http2))),
            ("last kind wins within a message", b"\x08\x50\x1a\x04\x12\x00\x0a\x00", header(80, None, Some(Http1))),
            ("a later empty session_protocol merges", b"\x08\x50\x1a\x02\x0a\x00\x1a\x00", header(80, None, Some(Http1))),
            ("int32 keeps the low 32 bits", b"\x08\xd0\x80\x80\x80\x10", header(80, None, None)),
            ("fields in any order", b"\x1a\x02\x12\x00\x12\x01n\x08\x50", header(80, Some("n"), Some(Http2))),
            ("non-ASCII UTF-8 name", "\x08\x50\x12\x02é".as_bytes(), header(80, Some("é"), None)),
        ];
        for (case, message, expected) in table {
            assert_eq!(decode_message(message).as_ref(), Ok(expected), "{case}");
        }
    }

    #[test]
    fn corrupted_bytes_never_panic() {
        let encoded = encode(&header(
            8080,
            Some("web.example"),
            Some(SessionProtocol::Http2),
        ));
        for position in 0..encoded.len() {
            for value in [0x00, 0x01, 0x07, 0x08, 0x0b, 0x12, 0x1a, 0x7f, 0x80, 0xff] {
                let mut corrupted = encoded.to_vec();
                corrupted[position] = value;
                let _ = decode(&corrupted);
            }
        }
    }
}
