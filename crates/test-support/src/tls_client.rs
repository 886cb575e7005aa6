//! A blocking TLS client that trusts only the anchors it is given, as the
//! Kubernetes API server dials a webhook with its `caBundle`: no client
//! certificate, the TLS versions and ALPN protocols the test picks.
//!
//! ```text
//! client_config(anchors PEM, versions, ALPN) ─► handshake(address, SNI name) ─► verified stream
//! ```

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{
    ClientConfig, ClientConnection, RootCertStore, StreamOwned, SupportedProtocolVersion,
};

/// A TLS connection over a blocking socket.
pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// A client trusting only the certificates of `anchors_pem` (ring),
/// offering `versions` (e.g. [`rustls::DEFAULT_VERSIONS`]) and `alpn`.
///
/// Panics when the PEM holds an unreadable certificate.
pub fn client_config(
    anchors_pem: &str,
    versions: &[&'static SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(anchors_pem.as_bytes()) {
        roots
            .add(certificate.expect("a PEM certificate"))
            .expect("a usable trust anchor");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("ring supports these TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
    Arc::new(config)
}

/// A completed handshake with `address` for the server name `name`, with
/// `config`; reads on the stream time out after `read_timeout`.
pub fn handshake(
    address: SocketAddr,
    name: &str,
    config: Arc<ClientConfig>,
    read_timeout: Duration,
) -> std::io::Result<TlsStream> {
    let name = ServerName::try_from(name.to_string()).map_err(std::io::Error::other)?;
    let connection = ClientConnection::new(config, name).map_err(std::io::Error::other)?;
    let socket = TcpStream::connect(address)?;
    socket.set_read_timeout(Some(read_timeout))?;
    let mut tls = StreamOwned::new(connection, socket);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}
