//! The server name (SNI) a TLS client asks for, read from its ClientHello.
//!
//! The inbound proxy peeks at a connection's first bytes to decide whether to
//! terminate TLS (the client asked for our identity) or to pass the bytes
//! through untouched (another name, no name, or no TLS at all).
//! [`server_name`] is the pure part of that decision: it parses the TLS record
//! layer and the ClientHello strictly, never panics or reads out of bounds on
//! hostile input, and says how many bytes it needs when the buffer ends early.
//!
//! ```text
//! record:       content type 22 | version 0x0301..=0x0304 | u16 length (1..=16384) | fragment
//! handshake:    type 1 (ClientHello) | u24 length | body   (may span several records)
//! ClientHello:  legacy_version | random[32] | session_id<0..32>
//!               | cipher_suites<2..2^16-2> | compression_methods<1..2^8-1>
//!               | extensions<0..2^16-1>    (the block is absent in old clients)
//! extension 0:  server_name_list<1..2^16-1> of name_type (0 = host_name) | name<1..2^16-1>
//! ```
//!
//! References: RFC 8446 §4.1.2 and §5.1 (records, ClientHello), RFC 6066 §3
//! (server_name).
//!
//! Host names are checked as DNS names (see [`ClientHello::ServerName`]); a
//! well-formed ClientHello whose name is not one (an IP literal, non-ASCII
//! bytes, a trailing dot) reads as a ClientHello without a usable name, as in
//! Linkerd, so the connection is not terminated but its bytes still pass
//! through.

/// TLS record content type of handshake messages.
const CONTENT_TYPE_HANDSHAKE: u8 = 22;
/// Handshake message type of the ClientHello.
const HANDSHAKE_TYPE_CLIENT_HELLO: u8 = 1;
/// Extension type of `server_name` (RFC 6066).
const EXTENSION_SERVER_NAME: u16 = 0;
/// `NameType` of a DNS host name in the server name list.
const NAME_TYPE_HOST_NAME: u8 = 0;
/// Content type, version and length.
const RECORD_HEADER_LENGTH: usize = 5;
/// Message type and 24-bit length.
const HANDSHAKE_HEADER_LENGTH: usize = 4;
/// The longest record fragment a TLS peer may send (2^14 bytes).
pub(crate) const MAX_RECORD_LENGTH: usize = 16 * 1024;
/// The longest ClientHello body accepted. Real ones are well under 2 KiB even
/// with post-quantum key shares; this is twice the longest record, so a
/// ClientHello split across records still fits, while a hostile length cannot
/// make the caller buffer without bound.
pub(crate) const MAX_CLIENT_HELLO_LENGTH: usize = 32 * 1024;
/// The longest DNS name in presentation form, without a trailing dot.
const MAX_HOST_NAME_LENGTH: usize = 253;
/// The longest DNS label.
const MAX_LABEL_LENGTH: usize = 63;

/// What a connection's first bytes say about TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ClientHello {
    /// The bytes so far are the start of a plausible ClientHello: read more.
    Incomplete {
        /// The buffer must hold at least this many bytes in total before
        /// asking again (a lower bound, never more than a complete ClientHello
        /// needs).
        needed: usize,
    },
    /// Not a TLS ClientHello (or a malformed one): not for TLS termination.
    NotTls(NotTlsReason),
    /// A complete, well-formed ClientHello.
    ///
    /// `Some` holds the requested host name in lower case. `None` means the
    /// client sent no `server_name` extension, or a name that is not a DNS
    /// name: non-ASCII, longer than 253 bytes, an empty or over-long (> 63)
    /// label (so no trailing dot), a character other than a letter, digit,
    /// `-` or `_`, a label starting or ending with `-`, or an all-digit last
    /// label (an IPv4 literal, which RFC 6066 forbids in SNI).
    ServerName(Option<String>),
}

/// Why bytes were judged not to be a TLS ClientHello.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NotTlsReason {
    /// The record is not a handshake record (plain HTTP, for instance).
    #[error("record content type {0} is not handshake (22)")]
    NotHandshakeRecord(u8),
    /// The record version is not TLS 1.0 to 1.3 (SSL 3 and SSL 2 included).
    #[error("record version {0:#06x} is not between 0x0301 and 0x0304")]
    RecordVersion(u16),
    /// A record is empty or longer than TLS allows.
    #[error("record length {0} is not between 1 and 16384")]
    RecordLength(usize),
    /// The first handshake message is not a ClientHello.
    #[error("handshake message type {0} is not ClientHello (1)")]
    NotClientHello(u8),
    /// The ClientHello is longer than [`MAX_CLIENT_HELLO_LENGTH`].
    #[error("ClientHello of {0} bytes is longer than the 32768-byte limit")]
    TooLong(usize),
    /// A length or value inside the ClientHello is inconsistent; names the
    /// field.
    #[error("malformed ClientHello: bad {0}")]
    Malformed(&'static str),
}

/// Reads the server name from the TLS ClientHello at the start of `buffer`.
///
/// `buffer` holds a connection's first bytes as read from the socket. Bytes
/// after the ClientHello (further records, early data) are ignored, and the
/// answer is given as soon as the ClientHello is complete, even mid-record.
pub(crate) fn server_name(buffer: &[u8]) -> ClientHello {
    let result = match reassemble(buffer) {
        Ok(Reassembly::Incomplete { needed }) => return ClientHello::Incomplete { needed },
        Ok(Reassembly::Complete(body)) => parse_client_hello(&body),
        Err(reason) => Err(reason),
    };
    match result {
        Ok(name) => ClientHello::ServerName(name),
        Err(reason) => ClientHello::NotTls(reason),
    }
}

/// The ClientHello body gathered from the record layer.
enum Reassembly {
    Incomplete { needed: usize },
    Complete(Vec<u8>),
}

/// How much of the handshake message has been gathered.
enum Progress {
    /// At least this many more message bytes are needed.
    More(usize),
    /// The whole message is in hand; its body ends at this offset.
    Complete { end: usize },
}

/// Joins the fragments of the first handshake message across records,
/// checking each record header and the handshake header as soon as their
/// bytes arrive so that garbage is rejected early.
fn reassemble(buffer: &[u8]) -> Result<Reassembly, NotTlsReason> {
    let mut message: Vec<u8> = Vec::new();
    // Message bytes missing, as far as is known: at first, its header.
    let mut still_needed = HANDSHAKE_HEADER_LENGTH;
    let mut record_start = 0;
    loop {
        let rest = buffer.get(record_start..).unwrap_or_default();
        let Some(header) = rest.first_chunk::<RECORD_HEADER_LENGTH>() else {
            check_record_header_prefix(rest)?;
            return Ok(Reassembly::Incomplete {
                needed: record_start + RECORD_HEADER_LENGTH + still_needed,
            });
        };
        let length = record_length(header)?;
        let fragment_start = record_start + RECORD_HEADER_LENGTH;
        let record_end = fragment_start + length;
        // `fragment_start <= buffer.len()`: the whole header was there.
        let available_end = record_end.min(buffer.len());
        message.extend_from_slice(&buffer[fragment_start..available_end]);
        match progress(&message)? {
            Progress::Complete { end } => {
                message.truncate(end);
                message.drain(..HANDSHAKE_HEADER_LENGTH);
                return Ok(Reassembly::Complete(message));
            }
            Progress::More(missing) => still_needed = missing,
        }
        if available_end < record_end {
            let left_in_record = record_end - available_end;
            let needed = if still_needed <= left_in_record {
                available_end + still_needed
            } else {
                // The rest needs another record, with its own header.
                record_end + RECORD_HEADER_LENGTH + (still_needed - left_in_record)
            };
            return Ok(Reassembly::Incomplete { needed });
        }
        record_start = record_end;
    }
}

/// Checks as much of a record header as `partial` holds (fewer than five
/// bytes), so that garbage is rejected before it is all read.
fn check_record_header_prefix(partial: &[u8]) -> Result<(), NotTlsReason> {
    if let Some(&content_type) = partial.first()
        && content_type != CONTENT_TYPE_HANDSHAKE
    {
        return Err(NotTlsReason::NotHandshakeRecord(content_type));
    }
    if let Some(&major) = partial.get(1) {
        let minor = partial.get(2).copied();
        let supported = major == 3 && minor.is_none_or(|minor| (1..=4).contains(&minor));
        if !supported {
            let version = u16::from_be_bytes([major, minor.unwrap_or(0)]);
            return Err(NotTlsReason::RecordVersion(version));
        }
    }
    Ok(())
}

/// Checks a whole record header and returns its fragment length.
fn record_length(header: &[u8; RECORD_HEADER_LENGTH]) -> Result<usize, NotTlsReason> {
    check_record_header_prefix(&header[..3])?;
    let length = usize::from(u16::from_be_bytes([header[3], header[4]]));
    if !(1..=MAX_RECORD_LENGTH).contains(&length) {
        return Err(NotTlsReason::RecordLength(length));
    }
    Ok(length)
}

/// Checks the handshake header gathered so far and says how much is missing.
fn progress(message: &[u8]) -> Result<Progress, NotTlsReason> {
    if let Some(&message_type) = message.first()
        && message_type != HANDSHAKE_TYPE_CLIENT_HELLO
    {
        return Err(NotTlsReason::NotClientHello(message_type));
    }
    let Some(&[_, high, middle, low]) = message.first_chunk::<HANDSHAKE_HEADER_LENGTH>() else {
        return Ok(Progress::More(HANDSHAKE_HEADER_LENGTH - message.len()));
    };
    let length = usize::from(high) << 16 | usize::from(middle) << 8 | usize::from(low);
    if length > MAX_CLIENT_HELLO_LENGTH {
        return Err(NotTlsReason::TooLong(length));
    }
    let end = HANDSHAKE_HEADER_LENGTH + length;
    Ok(match end.checked_sub(message.len()) {
        Some(missing) if missing > 0 => Progress::More(missing),
        _ => Progress::Complete { end },
    })
}

/// Parses a complete ClientHello body; returns the first host name if any.
fn parse_client_hello(body: &[u8]) -> Result<Option<String>, NotTlsReason> {
    use NotTlsReason::Malformed;
    let mut hello = Reader::new(body);
    let version = hello.read_u16("legacy_version")?;
    if !(0x0301..=0x0304).contains(&version) {
        return Err(Malformed("legacy_version"));
    }
    hello.take(32, "random")?;
    if hello.read_u8_prefixed("session_id")?.len() > 32 {
        return Err(Malformed("session_id"));
    }
    let cipher_suites = hello.read_u16_prefixed("cipher_suites")?;
    if cipher_suites.is_empty() || cipher_suites.len() % 2 != 0 {
        return Err(Malformed("cipher_suites"));
    }
    if hello.read_u8_prefixed("compression_methods")?.is_empty() {
        return Err(Malformed("compression_methods"));
    }
    if hello.is_empty() {
        // Clients before TLS 1.2 may omit the extensions block altogether.
        return Ok(None);
    }
    let mut extensions = hello.read_u16_prefixed("extensions")?;
    if !hello.is_empty() {
        return Err(Malformed("extensions (trailing bytes)"));
    }
    let mut server_name = None;
    let mut seen_server_name = false;
    while !extensions.is_empty() {
        let extension_type = extensions.read_u16("extension type")?;
        let data = extensions.read_u16_prefixed("extension length")?;
        if extension_type == EXTENSION_SERVER_NAME {
            if seen_server_name {
                return Err(Malformed("server_name (duplicate extension)"));
            }
            seen_server_name = true;
            server_name = parse_server_name_extension(data)?;
        }
    }
    Ok(server_name)
}

/// Parses the `server_name` extension data; returns its host name if it is a
/// DNS name.
fn parse_server_name_extension(mut data: Reader<'_>) -> Result<Option<String>, NotTlsReason> {
    use NotTlsReason::Malformed;
    let mut list = data.read_u16_prefixed("server_name_list")?;
    if list.is_empty() || !data.is_empty() {
        return Err(Malformed("server_name_list"));
    }
    let mut host_name = None;
    while !list.is_empty() {
        let name_type = list.read_u8("name_type")?;
        // Every name type defined so far is a u16-length-prefixed name.
        let name = list.read_u16_prefixed("server name")?;
        if name.is_empty() {
            return Err(Malformed("server name (empty)"));
        }
        if name_type == NAME_TYPE_HOST_NAME {
            if host_name.is_some() {
                return Err(Malformed("server_name_list (two host names)"));
            }
            host_name = Some(name.rest);
        }
    }
    Ok(host_name.and_then(dns_name))
}

/// `bytes` in lower case if they form a DNS host name (rules on
/// [`ClientHello::ServerName`]).
fn dns_name(bytes: &[u8]) -> Option<String> {
    if !bytes.is_ascii() || bytes.len() > MAX_HOST_NAME_LENGTH {
        return None;
    }
    let name = String::from_utf8(bytes.to_ascii_lowercase()).ok()?;
    let label_is_valid = |label: &str| {
        (1..=MAX_LABEL_LENGTH).contains(&label.len())
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
    };
    if !name.split('.').all(label_is_valid) {
        return None;
    }
    let last_label = name.rsplit('.').next()?;
    if last_label.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    Some(name)
}

/// A cursor over TLS wire structures that fails, naming the field, instead of
/// reading past the end.
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

    fn len(&self) -> usize {
        self.rest.len()
    }

    fn take(&mut self, count: usize, field: &'static str) -> Result<&'a [u8], NotTlsReason> {
        let (taken, rest) = self
            .rest
            .split_at_checked(count)
            .ok_or(NotTlsReason::Malformed(field))?;
        self.rest = rest;
        Ok(taken)
    }

    fn read_u8(&mut self, field: &'static str) -> Result<u8, NotTlsReason> {
        let (&byte, rest) = self
            .rest
            .split_first()
            .ok_or(NotTlsReason::Malformed(field))?;
        self.rest = rest;
        Ok(byte)
    }

    fn read_u16(&mut self, field: &'static str) -> Result<u16, NotTlsReason> {
        let (&bytes, rest) = self
            .rest
            .split_first_chunk::<2>()
            .ok_or(NotTlsReason::Malformed(field))?;
        self.rest = rest;
        Ok(u16::from_be_bytes(bytes))
    }

    /// A vector with a one-byte length.
    fn read_u8_prefixed(&mut self, field: &'static str) -> Result<Reader<'a>, NotTlsReason> {
        let length = self.read_u8(field)?;
        self.take(usize::from(length), field).map(Reader::new)
    }

    /// A vector with a two-byte length.
    fn read_u16_prefixed(&mut self, field: &'static str) -> Result<Reader<'a>, NotTlsReason> {
        let length = self.read_u16(field)?;
        self.take(usize::from(length), field).map(Reader::new)
    }
}

#[cfg(test)]
mod tests;
