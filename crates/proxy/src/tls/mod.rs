//! The proxy's TLS: rustls configurations made from its identity
//! ([`config`]), the connection type that is plaintext or TLS
//! ([`transport`]), and the pure codecs of what travels at the start of a
//! mesh connection.

pub mod config;
pub mod transport;

/// ALPN of Linkerd's opaque transport (a transport header follows the handshake).
pub const TRANSPORT_ALPN: &[u8] = b"transport.l5d.io/v1";
