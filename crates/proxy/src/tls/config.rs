//! rustls configurations made from the proxy's credentials and the mesh's
//! trust anchors: TLS 1.3 only, ECDSA P-256 keys, the ring provider.
//!
//! ```text
//! Credentials (key, leaf, chain) + trust anchors
//!   ├─ verify: the chain leads to an anchor and the leaf names our identity
//!   ├─ server: our certificate; client certificates requested, verified to
//!   │          the anchors, optional (the client's identity when present)
//!   ├─ client: our certificate as client certificate; the server's chain
//!   │          verified to the anchors and its name = the identity
//!   │          discovery gave (the SNI); no session resumption
//!   └─ control: the same, ALPN h2, for the controller's Destination service
//! trust anchors alone ─► control_server_only: the controller verified, no
//!                        client certificate (asking for the first certificate)
//! ```
//!
//! [`TlsStore`] holds the current configurations and is refreshed when the
//! credentials are renewed; connections take an `Arc` of the current ones.

use std::sync::{Arc, PoisonError, RwLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::identity::Credentials;

/// Why credentials could not become TLS configurations.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// No trust anchor could be used.
    #[error("no usable trust anchor: {0}")]
    TrustAnchors(String),
    /// The certificate does not chain to the anchors or does not name us.
    #[error("certificate for {name} does not verify: {reason}")]
    Untrusted {
        /// Our identity.
        name: String,
        /// What failed.
        reason: String,
    },
    /// The certificate is not for our private key.
    #[error("certificate for {name} does not match the private key: {reason}")]
    KeyMismatch {
        /// Our identity.
        name: String,
        /// What rustls found.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The server and client configurations for one set of credentials.
#[derive(Debug)]
pub(crate) struct TlsConfigs {
    /// Our identity (what clients put in SNI to reach us).
    pub local_name: Arc<str>,
    /// For connections we terminate.
    pub server: Arc<ServerConfig>,
    /// For connections we originate.
    pub client: Arc<ClientConfig>,
    /// For connections we originate that carry a transport header (ALPN
    /// `transport.l5d.io/v1`).
    pub client_transport: Arc<ClientConfig>,
    /// For gRPC to the control plane with our certificate (ALPN `h2`).
    pub control: Arc<ClientConfig>,
}

/// The trust anchors, parsed once.
#[derive(Clone, Debug)]
pub(crate) struct TrustAnchors {
    roots: Arc<RootCertStore>,
}

impl TrustAnchors {
    /// Anchors from DER certificates; unusable ones are skipped with a
    /// warning, none usable is an error.
    pub(crate) fn new(certificates: &[Vec<u8>]) -> Result<TrustAnchors, TlsError> {
        let mut roots = RootCertStore::empty();
        let (added, ignored) = roots.add_parsable_certificates(
            certificates
                .iter()
                .map(|der| CertificateDer::from(der.clone())),
        );
        if ignored > 0 {
            tracing::warn!(ignored, "skipped trust anchors that cannot be used");
        }
        if added == 0 {
            return Err(TlsError::TrustAnchors(format!(
                "{} certificate(s) given, none usable",
                certificates.len()
            )));
        }
        Ok(TrustAnchors {
            roots: Arc::new(roots),
        })
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the configurations for `credentials`, after checking that its
/// chain leads to `anchors`, that the leaf names its identity, has not
/// expired and carries the public half of its private key.
pub(crate) fn build(
    credentials: &Credentials,
    anchors: &TrustAnchors,
) -> Result<TlsConfigs, TlsError> {
    let provider = provider();
    let leaf = CertificateDer::from(credentials.leaf_der.clone());
    let intermediates: Vec<CertificateDer<'static>> = credentials
        .intermediates_der
        .iter()
        .map(|der| CertificateDer::from(der.clone()))
        .collect();
    let untrusted = |reason: String| TlsError::Untrusted {
        name: credentials.local_name.clone(),
        reason,
    };
    let name = ServerName::try_from(credentials.local_name.clone())
        .map_err(|error| untrusted(error.to_string()))?;
    let server_verifier =
        WebPkiServerVerifier::builder_with_provider(anchors.roots.clone(), provider.clone())
            .build()
            .map_err(|error| untrusted(error.to_string()))?;
    server_verifier
        .verify_server_cert(&leaf, &intermediates, &name, &[], UnixTime::now())
        .map_err(|error| untrusted(error.to_string()))?;

    let mut chain = vec![leaf];
    chain.extend(intermediates);
    let key = || {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            credentials.private_key_der.as_slice().to_vec(),
        ))
    };
    // The leaf must carry our public key: rustls lets a key whose public
    // half it cannot see through, so the comparison is made here, strictly.
    let signing_key = provider.key_provider.load_private_key(key())?;
    CertifiedKey::new(chain.clone(), signing_key)
        .keys_match()
        .map_err(|error| TlsError::KeyMismatch {
            name: credentials.local_name.clone(),
            reason: error.to_string(),
        })?;
    let client_verifier =
        WebPkiClientVerifier::builder_with_provider(anchors.roots.clone(), provider.clone())
            .allow_unauthenticated()
            .build()
            .map_err(|error| untrusted(error.to_string()))?;
    let mut server = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(chain.clone(), key())?;
    server.alpn_protocols = vec![crate::tls::TRANSPORT_ALPN.to_vec()];
    let mut client = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(anchors.roots.clone())
        .with_client_auth_cert(chain, key())?;
    client.resumption = rustls::client::Resumption::disabled();
    let mut client_transport = client.clone();
    client_transport.alpn_protocols = vec![crate::tls::TRANSPORT_ALPN.to_vec()];
    let mut control = client.clone();
    control.alpn_protocols = vec![H2_ALPN.to_vec()];
    Ok(TlsConfigs {
        local_name: credentials.local_name.as_str().into(),
        server: Arc::new(server),
        client: Arc::new(client),
        client_transport: Arc::new(client_transport),
        control: Arc::new(control),
    })
}

/// ALPN of HTTP/2 over TLS.
const H2_ALPN: &[u8] = b"h2";

/// For gRPC to the control plane before the proxy has a certificate (the
/// identity service): the server verified against `anchors`, no client
/// certificate, TLS 1.3, ALPN `h2`.
pub(crate) fn control_server_only(anchors: &TrustAnchors) -> Result<Arc<ClientConfig>, TlsError> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(anchors.roots.clone())
        .with_no_client_auth();
    config.alpn_protocols = vec![H2_ALPN.to_vec()];
    Ok(Arc::new(config))
}

/// The current configurations, replaced when credentials are renewed.
#[derive(Debug, Default)]
pub(crate) struct TlsStore {
    current: RwLock<Option<Arc<TlsConfigs>>>,
}

impl TlsStore {
    /// The current configurations; `None` before the first certificate.
    pub(crate) fn current(&self) -> Option<Arc<TlsConfigs>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Installs configurations made from new credentials.
    pub(crate) fn install(&self, configs: TlsConfigs) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(configs));
    }
}

/// Keeps `store` in step with the credentials watch: every renewal becomes
/// the current configuration. The identity client publishes only
/// credentials that [`build`] accepted, so a failure here means the clock
/// moved past the leaf's expiry in between; the previous configuration (if
/// any) stays.
pub(crate) async fn follow_credentials(
    store: Arc<TlsStore>,
    anchors: TrustAnchors,
    mut credentials: tokio::sync::watch::Receiver<Option<Arc<Credentials>>>,
) {
    loop {
        let latest = credentials.borrow_and_update().clone();
        if let Some(latest) = latest {
            match build(&latest, &anchors) {
                Ok(configs) => store.install(configs),
                Err(error) if store.current().is_some() => {
                    tracing::warn!(%error, "keeping the previous TLS configuration");
                }
                Err(error) => tracing::warn!(%error, "no usable TLS configuration yet"),
            }
        }
        if credentials.changed().await.is_err() {
            return;
        }
    }
}

/// The identity a peer's certificate names: its first DNS subject
/// alternative name.
pub(crate) fn peer_identity(certificates: Option<&[CertificateDer<'_>]>) -> Option<Arc<str>> {
    let leaf = certificates?.first()?;
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    let names = parsed.subject_alternative_name().ok()??;
    names
        .value
        .general_names
        .iter()
        .find_map(|name| match name {
            x509_parser::extensions::GeneralName::DNSName(dns) => Some(Arc::from(*dns)),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::test_ca::TestCa;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const SERVER: &str = "web.shop.serviceaccount.identity.weft.cluster.local";
    const CLIENT: &str = "api.shop.serviceaccount.identity.weft.cluster.local";

    /// Handshakes a client expecting `expected` with a server; returns the
    /// client identity the server saw, or the client's error.
    async fn handshake(
        server: &TlsConfigs,
        client: &TlsConfigs,
        expected: &str,
    ) -> Result<Option<Arc<str>>, std::io::Error> {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let acceptor = tokio_rustls::TlsAcceptor::from(server.server.clone());
        let serving = tokio::spawn(async move {
            let mut stream = acceptor.accept(server_io).await?;
            let identity = peer_identity(stream.get_ref().1.peer_certificates());
            let mut byte = [0u8; 1];
            stream.read_exact(&mut byte).await?;
            stream.write_all(&byte).await?;
            stream.flush().await?;
            Ok::<_, std::io::Error>(identity)
        });
        let connector = tokio_rustls::TlsConnector::from(client.client.clone());
        let name = ServerName::try_from(expected.to_string()).unwrap();
        let mut stream = connector.connect(name, client_io).await?;
        assert_eq!(
            peer_identity(stream.get_ref().1.peer_certificates()).as_deref(),
            Some(SERVER)
        );
        stream.write_all(b"x").await?;
        let mut echoed = [0u8; 1];
        stream.read_exact(&mut echoed).await?;
        serving.await.unwrap()
    }

    #[tokio::test]
    async fn mutual_tls_names_both_sides() {
        let ca = TestCa::new();
        let anchors = TrustAnchors::new(&[ca.anchor_der()]).unwrap();
        let server = build(&ca.credentials(SERVER), &anchors).unwrap();
        let client = build(&ca.credentials(CLIENT), &anchors).unwrap();
        let seen = handshake(&server, &client, SERVER).await.unwrap();
        assert_eq!(seen.as_deref(), Some(CLIENT));
        assert_eq!(&*server.local_name, SERVER);
    }

    #[tokio::test]
    async fn a_server_with_another_identity_is_refused() {
        let ca = TestCa::new();
        let anchors = TrustAnchors::new(&[ca.anchor_der()]).unwrap();
        let server = build(&ca.credentials(SERVER), &anchors).unwrap();
        let client = build(&ca.credentials(CLIENT), &anchors).unwrap();
        let error = handshake(
            &server,
            &client,
            "db.shop.serviceaccount.identity.weft.cluster.local",
        )
        .await
        .unwrap_err();
        assert!(error.to_string().contains("certificate"), "{error}");
    }

    #[tokio::test]
    async fn a_server_from_another_mesh_is_refused() {
        let ours = TestCa::new();
        let theirs = TestCa::new();
        let our_anchors = TrustAnchors::new(&[ours.anchor_der()]).unwrap();
        let their_anchors = TrustAnchors::new(&[theirs.anchor_der()]).unwrap();
        let server = build(&theirs.credentials(SERVER), &their_anchors).unwrap();
        let client = build(&ours.credentials(CLIENT), &our_anchors).unwrap();
        assert!(handshake(&server, &client, SERVER).await.is_err());
    }

    #[test]
    fn credentials_must_chain_to_the_anchors() {
        let ours = TestCa::new();
        let theirs = TestCa::new();
        let anchors = TrustAnchors::new(&[ours.anchor_der()]).unwrap();
        let error = build(&theirs.credentials(SERVER), &anchors).unwrap_err();
        assert!(matches!(error, TlsError::Untrusted { .. }), "{error}");
        assert!(TrustAnchors::new(&[b"garbage".to_vec()]).is_err());
        assert!(TrustAnchors::new(&[]).is_err());
    }

    #[test]
    fn a_leaf_for_another_key_is_refused() {
        let ca = TestCa::new();
        let anchors = TrustAnchors::new(&[ca.anchor_der()]).unwrap();
        let ours = ca.credentials(SERVER);
        let other = ca.credentials(SERVER);
        let mismatched = Credentials {
            leaf_der: other.leaf_der.clone(),
            ..(*ours).clone()
        };
        let error = build(&mismatched, &anchors).unwrap_err();
        assert!(matches!(error, TlsError::KeyMismatch { .. }), "{error}");
        assert!(build(&ours, &anchors).is_ok());
    }

    #[tokio::test]
    async fn an_expired_certificate_is_refused_both_ways() {
        let ca = TestCa::new();
        let anchors = TrustAnchors::new(&[ca.anchor_der()]).unwrap();
        let now = time::OffsetDateTime::now_utc();
        let expired = ca.credentials_between(
            SERVER,
            now - time::Duration::hours(2),
            now - time::Duration::hours(1),
        );
        // Never installed as our own...
        assert!(matches!(
            build(&expired, &anchors),
            Err(TlsError::Untrusted { .. })
        ));
        // ...and refused when a server presents it.
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            expired.private_key_der.as_slice().to_vec(),
        ));
        let stale_server = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![CertificateDer::from(expired.leaf_der.clone())], key)
            .unwrap();
        let server = TlsConfigs {
            server: Arc::new(stale_server),
            ..build(&ca.credentials(SERVER), &anchors).unwrap()
        };
        let client = build(&ca.credentials(CLIENT), &anchors).unwrap();
        let error = handshake(&server, &client, SERVER).await.unwrap_err();
        assert!(
            error.to_string().to_lowercase().contains("expired"),
            "{error}"
        );
    }

    #[test]
    fn the_store_serves_the_latest_configuration() {
        let ca = TestCa::new();
        let anchors = TrustAnchors::new(&[ca.anchor_der()]).unwrap();
        let store = TlsStore::default();
        assert!(store.current().is_none());
        store.install(build(&ca.credentials(SERVER), &anchors).unwrap());
        let first = store.current().unwrap();
        store.install(build(&ca.credentials(SERVER), &anchors).unwrap());
        assert!(!Arc::ptr_eq(&first, &store.current().unwrap()));
    }
}
