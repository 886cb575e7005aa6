//! The proxy's TLS: rustls configurations made from its identity
//! ([`config`]), the connection type that is plaintext or TLS
//! ([`transport`]), and the pure codecs of what travels at the start of a
//! mesh connection.

pub mod accept;
pub mod client_hello;
pub mod config;
pub mod transport;
pub mod transport_header;

/// ALPN of Linkerd's opaque transport (a transport header follows the handshake).
pub const TRANSPORT_ALPN: &[u8] = transport_header::ALPN;
