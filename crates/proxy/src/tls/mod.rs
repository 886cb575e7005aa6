//! The proxy's TLS: rustls configurations made from its identity
//! ([`config`]), the connection type that is plaintext or TLS
//! ([`transport`]), and the pure codecs of what travels at the start of a
//! mesh connection.

pub(crate) mod accept;
pub(crate) mod client_hello;
pub(crate) mod config;
pub(crate) mod transport;
pub(crate) mod transport_header;

/// ALPN of Linkerd's opaque transport (a transport header follows the handshake).
pub(crate) const TRANSPORT_ALPN: &[u8] = transport_header::ALPN;
