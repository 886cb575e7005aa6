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
//! [`encode`] and [`decode`] are pure and hand-written: the protobuf subset is
//! small and this keeps the module free of generated code. Decoding follows
//! protobuf rules: unknown fields of any of the four current wire types
//! (varint, 64-bit, length-delimited, 32-bit) are skipped, the last value of a
//! repeated scalar wins, repeated messages merge; the deprecated group wire
//! types are rejected.

use bytes::{BufMut, Bytes, BytesMut};

/// The ALPN protocol a client proxy offers to announce a transport header.
pub const ALPN: &[u8] = b"transport.l5d.io/v1";
/// The bytes every transport header starts with.
pub const PREFACE: &[u8] = b"transport.l5d.io/v1\r\n\r\n";
/// The longest protobuf message accepted (Linkerd reads the header into a
/// 64 KiB buffer).
pub const MAX_MESSAGE_LENGTH: usize = 64 * 1024;
/// The big-endian u32 message length after the preface.
const LENGTH_PREFIX_LENGTH: usize = 4;
/// Preface and length: what is needed before the message length is known.
const FRAME_HEADER_LENGTH: usize = PREFACE.len() + LENGTH_PREFIX_LENGTH;

/// Field numbers of `transport.l5d.io.Header`.
const FIELD_PORT: u32 = 1;
const FIELD_NAME: u32 = 2;
const FIELD_SESSION_PROTOCOL: u32 = 3;
/// Field numbers of the `kind` oneof in `SessionProtocol`.
const FIELD_HTTP1: u32 = 1;
const FIELD_HTTP2: u32 = 2;

/// Where a direct connection goes, as told by the client proxy.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TransportHeader {
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
pub enum SessionProtocol {
    /// HTTP/1.x.
    Http1,
    /// HTTP/2.
    Http2,
}

/// The outcome of [`decode`] on the bytes read so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decoded {
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
pub enum HeaderError {
    /// The bytes do not start with [`PREFACE`].
    #[error("connection does not start with the transport header preface")]
    NotTransportHeader,
    /// The declared message length is over [`MAX_MESSAGE_LENGTH`].
    #[error("transport header message of {0} bytes is longer than the 65536-byte limit")]
    TooLong(u32),
    /// A varint runs past the end of its message.
    #[error("transport header message ends inside a varint")]
    TruncatedVarint,
    /// A varint is longer than ten bytes or overflows 64 bits.
    #[error("transport header message has a varint longer than 64 bits")]
    VarintOverflow,
    /// A field's value runs past the end of its message.
    #[error("transport header message ends inside a field value")]
    TruncatedField,
    /// A field key has field number 0 or does not fit 32 bits.
    #[error("transport header message has an invalid field key {0}")]
    InvalidFieldKey(u64),
    /// A field uses a group wire type (3, 4) or an undefined one (6, 7).
    #[error("transport header message uses unsupported wire type {0}")]
    UnsupportedWireType(u8),
    /// A known field is encoded with the wrong wire type.
    #[error("transport header field {field} has wire type {wire_type}")]
    WrongWireType {
        /// The field's name in the protobuf schema.
        field: &'static str,
        /// The wire type found.
        wire_type: u8,
    },
    /// The `name` field is not UTF-8.
    #[error("transport header name is not UTF-8")]
    NameNotUtf8,
    /// The port is missing, 0, negative or above 65535.
    #[error("transport header port {0} is not between 1 and 65535")]
    InvalidPort(i32),
}

/// Encodes `header`, preface and length included, ready to write after the
/// TLS handshake.
///
/// Fields with default values are omitted, as proto3 encoders do, so a
/// `port` of 0 produces a header the peer refuses; a `name` that makes the
/// message longer than [`MAX_MESSAGE_LENGTH`] is refused too.
pub fn encode(header: &TransportHeader) -> Bytes {
    let mut message = BytesMut::new();
    if header.port != 0 {
        put_key(&mut message, FIELD_PORT, WireType::Varint);
        put_varint(&mut message, u64::from(header.port));
    }
    if let Some(name) = header.name.as_deref().filter(|name| !name.is_empty()) {
        put_key(&mut message, FIELD_NAME, WireType::LengthDelimited);
        put_varint(&mut message, name.len() as u64);
        message.put_slice(name.as_bytes());
    }
    if let Some(protocol) = header.protocol {
        let kind = match protocol {
            SessionProtocol::Http1 => FIELD_HTTP1,
            SessionProtocol::Http2 => FIELD_HTTP2,
        };
        // SessionProtocol { kind: <empty message> }: a one-byte key and a zero
        // length, two bytes in all.
        put_key(
            &mut message,
            FIELD_SESSION_PROTOCOL,
            WireType::LengthDelimited,
        );
        put_varint(&mut message, 2);
        put_key(&mut message, kind, WireType::LengthDelimited);
        put_varint(&mut message, 0);
    }
    let length = u32::try_from(message.len()).expect("a transport header is far below 4 GiB");
    let mut framed = BytesMut::with_capacity(FRAME_HEADER_LENGTH + message.len());
    framed.put_slice(PREFACE);
    framed.put_u32(length);
    framed.put_slice(&message);
    framed.freeze()
}

/// Decodes the transport header at the start of `buffer`.
///
/// Answers as soon as the bytes cannot be a header (`NotTransportHeader`
/// after the first differing preface byte), and otherwise asks for more
/// until the whole message is there.
pub fn decode(buffer: &[u8]) -> Result<Decoded, HeaderError> {
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
    Ok(Decoded::Complete {
        header: decode_header_message(message)?,
        consumed: end,
    })
}

/// Decodes a `transport.l5d.io.Header` message and checks its port.
fn decode_header_message(message: &[u8]) -> Result<TransportHeader, HeaderError> {
    let mut port: i32 = 0;
    let mut name = String::new();
    let mut protocol = None;
    let mut reader = Reader::new(message);
    while !reader.is_empty() {
        let (field, wire_type) = reader.read_key()?;
        match (field, wire_type) {
            // int32 semantics: the low 32 bits of the varint, as signed.
            (FIELD_PORT, WireType::Varint) => port = reader.read_varint()? as i32,
            (FIELD_NAME, WireType::LengthDelimited) => {
                let bytes = reader.read_length_delimited()?;
                name = String::from_utf8(bytes.to_vec()).map_err(|_| HeaderError::NameNotUtf8)?;
            }
            (FIELD_SESSION_PROTOCOL, WireType::LengthDelimited) => {
                let bytes = reader.read_length_delimited()?;
                protocol = decode_session_protocol(bytes, protocol)?;
            }
            (FIELD_PORT | FIELD_NAME | FIELD_SESSION_PROTOCOL, wire_type) => {
                let field = match field {
                    FIELD_PORT => "port",
                    FIELD_NAME => "name",
                    _ => "session_protocol",
                };
                return Err(HeaderError::WrongWireType {
                    field,
                    wire_type: wire_type.number(),
                });
            }
            (_, wire_type) => reader.skip_value(wire_type)?,
        }
    }
    let port = u16::try_from(port)
        .ok()
        .filter(|&port| port != 0)
        .ok_or(HeaderError::InvalidPort(port))?;
    Ok(TransportHeader {
        port,
        name: Some(name).filter(|name| !name.is_empty()),
        protocol,
    })
}

/// Decodes a `SessionProtocol` message, merged over an earlier occurrence
/// (`previous`): the last `kind` set wins, and a message without one keeps
/// the earlier value.
fn decode_session_protocol(
    message: &[u8],
    previous: Option<SessionProtocol>,
) -> Result<Option<SessionProtocol>, HeaderError> {
    let mut protocol = previous;
    let mut reader = Reader::new(message);
    while !reader.is_empty() {
        let (field, wire_type) = reader.read_key()?;
        let kind = match field {
            FIELD_HTTP1 => SessionProtocol::Http1,
            FIELD_HTTP2 => SessionProtocol::Http2,
            _ => {
                reader.skip_value(wire_type)?;
                continue;
            }
        };
        if wire_type != WireType::LengthDelimited {
            let field = match kind {
                SessionProtocol::Http1 => "http1",
                SessionProtocol::Http2 => "http2",
            };
            return Err(HeaderError::WrongWireType {
                field,
                wire_type: wire_type.number(),
            });
        }
        // Http1 and Http2 have no fields; anything inside is unknown but must
        // still be well formed.
        let mut empty_message = Reader::new(reader.read_length_delimited()?);
        while !empty_message.is_empty() {
            let (_, wire_type) = empty_message.read_key()?;
            empty_message.skip_value(wire_type)?;
        }
        protocol = Some(kind);
    }
    Ok(protocol)
}

/// The protobuf wire types this decoder accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WireType {
    Varint,
    Fixed64,
    LengthDelimited,
    Fixed32,
}

impl WireType {
    fn number(self) -> u8 {
        match self {
            WireType::Varint => 0,
            WireType::Fixed64 => 1,
            WireType::LengthDelimited => 2,
            WireType::Fixed32 => 5,
        }
    }
}

fn put_key(buffer: &mut BytesMut, field: u32, wire_type: WireType) {
    put_varint(
        buffer,
        u64::from(field) << 3 | u64::from(wire_type.number()),
    );
}

fn put_varint(buffer: &mut BytesMut, mut value: u64) {
    while value >= 0x80 {
        buffer.put_u8((value & 0x7f) as u8 | 0x80);
        value >>= 7;
    }
    buffer.put_u8(value as u8);
}

/// A cursor over a protobuf message that fails instead of reading past its
/// end.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn read_varint(&mut self) -> Result<u64, HeaderError> {
        let mut value: u64 = 0;
        for index in 0..10 {
            let (&byte, rest) = self
                .rest
                .split_first()
                .ok_or(HeaderError::TruncatedVarint)?;
            self.rest = rest;
            // The tenth byte holds the 64th bit only.
            if index == 9 && byte > 1 {
                return Err(HeaderError::VarintOverflow);
            }
            value |= u64::from(byte & 0x7f) << (7 * index);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(HeaderError::VarintOverflow)
    }

    /// A field key: field number and wire type.
    fn read_key(&mut self) -> Result<(u32, WireType), HeaderError> {
        let key = self.read_varint()?;
        let field = u32::try_from(key >> 3)
            .ok()
            .filter(|&field| field != 0 && key <= u64::from(u32::MAX))
            .ok_or(HeaderError::InvalidFieldKey(key))?;
        let wire_type = match key & 0x7 {
            0 => WireType::Varint,
            1 => WireType::Fixed64,
            2 => WireType::LengthDelimited,
            5 => WireType::Fixed32,
            other => return Err(HeaderError::UnsupportedWireType(other as u8)),
        };
        Ok((field, wire_type))
    }

    fn take(&mut self, count: usize) -> Result<&'a [u8], HeaderError> {
        let (taken, rest) = self
            .rest
            .split_at_checked(count)
            .ok_or(HeaderError::TruncatedField)?;
        self.rest = rest;
        Ok(taken)
    }

    fn read_length_delimited(&mut self) -> Result<&'a [u8], HeaderError> {
        let length = self.read_varint()?;
        let length = usize::try_from(length).map_err(|_| HeaderError::TruncatedField)?;
        self.take(length)
    }

    /// Skips the value of an unknown field.
    fn skip_value(&mut self, wire_type: WireType) -> Result<(), HeaderError> {
        match wire_type {
            WireType::Varint => self.read_varint().map(drop),
            WireType::Fixed64 => self.take(8).map(drop),
            WireType::LengthDelimited => self.read_length_delimited().map(drop),
            WireType::Fixed32 => self.take(4).map(drop),
        }
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

    #[test]
    fn message_errors() {
        use HeaderError::*;
        let table: &[(&str, &[u8], HeaderError)] = &[
            ("empty message: no port", b"", InvalidPort(0)),
            ("port 0 written out", b"\x08\x00", InvalidPort(0)),
            ("name without port", b"\x12\x01a", InvalidPort(0)),
            ("port 65536", b"\x08\x80\x80\x04", InvalidPort(65536)),
            (
                "port -1 (ten-byte varint)",
                b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
                InvalidPort(-1),
            ),
            ("truncated port varint", b"\x08\x90", TruncatedVarint),
            ("key without value", b"\x08", TruncatedVarint),
            (
                "eleven-byte varint",
                b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x81\x01",
                VarintOverflow,
            ),
            (
                "tenth varint byte over 1",
                b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02",
                VarintOverflow,
            ),
            ("field number 0", b"\x00\x01", InvalidFieldKey(0)),
            (
                "key over 32 bits",
                b"\x80\x80\x80\x80\x80\x01",
                InvalidFieldKey(1 << 35),
            ),
            ("group start", b"\x0b", UnsupportedWireType(3)),
            ("group end", b"\x0c", UnsupportedWireType(4)),
            ("wire type 6", b"\x26\x00", UnsupportedWireType(6)),
            ("wire type 7", b"\x27\x00", UnsupportedWireType(7)),
            (
                "port as fixed32",
                b"\x0d\x50\x00\x00\x00",
                WrongWireType {
                    field: "port",
                    wire_type: 5,
                },
            ),
            (
                "port as bytes",
                b"\x0a\x01\x50",
                WrongWireType {
                    field: "port",
                    wire_type: 2,
                },
            ),
            (
                "name as varint",
                b"\x08\x50\x10\x01",
                WrongWireType {
                    field: "name",
                    wire_type: 0,
                },
            ),
            (
                "protocol as varint",
                b"\x08\x50\x18\x01",
                WrongWireType {
                    field: "session_protocol",
                    wire_type: 0,
                },
            ),
            (
                "http1 as varint",
                b"\x08\x50\x1a\x02\x08\x01",
                WrongWireType {
                    field: "http1",
                    wire_type: 0,
                },
            ),
            (
                "http2 as fixed64",
                b"\x08\x50\x1a\x09\x11\x00\x00\x00\x00\x00\x00\x00\x00",
                WrongWireType {
                    field: "http2",
                    wire_type: 1,
                },
            ),
            (
                "name longer than message",
                b"\x08\x50\x12\x05ab",
                TruncatedField,
            ),
            (
                "huge name length",
                b"\x08\x50\x12\xff\xff\xff\xff\x0f",
                TruncatedField,
            ),
            (
                "protocol longer than message",
                b"\x08\x50\x1a\x04\x12\x00",
                TruncatedField,
            ),
            (
                "http2 longer than protocol",
                b"\x08\x50\x1a\x02\x12\x01",
                TruncatedField,
            ),
            (
                "garbage inside http1",
                b"\x08\x50\x1a\x03\x0a\x01\x0b",
                UnsupportedWireType(3),
            ),
            (
                "unknown fixed64 cut short",
                b"\x08\x50\x21\x00\x00",
                TruncatedField,
            ),
            (
                "unknown fixed32 cut short",
                b"\x08\x50\x25\x00",
                TruncatedField,
            ),
            ("name not UTF-8", b"\x08\x50\x12\x02\xff\xfe", NameNotUtf8),
        ];
        for (case, message, expected) in table {
            assert_eq!(decode_message(message).as_ref(), Err(expected), "{case}");
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
