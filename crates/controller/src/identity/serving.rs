//! The controller's own certificate, for TLS on its gRPC ports: a leaf for
//! the service account `weft-controller` in the control namespace
//! (`weft-controller.<cns>.serviceaccount.identity.<cns>.<td>`), signed by
//! the controller's own issuer (no token: the controller is its own CA).
//!
//! ```text
//! start:  key (P-256, in memory) + CSR for the name ─► issuer.issue ─► ServerConfig
//! loop:   sleep 70 % of the remaining lifetime ─┐   (super::renewal)
//!         the issuer file changes ──────────────┴► issue again ─► swap the ServerConfig
//!         (a failure keeps the current certificate and retries in 10 s)
//! ```
//!
//! The ServerConfig is TLS 1.3 only (ring), ALPN `h2`, and requests client
//! certificates without requiring them: one that is presented must chain to
//! the trust anchors (proxies holding a certificate use it for Destination;
//! a proxy asking for its first certificate has none). A ClientConfig with
//! the same certificate (verifying servers against the trust anchors) is
//! kept beside it for the connections the controller opens: tap.

use std::sync::{Arc, PoisonError, RwLock};

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;
use tokio::sync::watch;

use super::authority::{CertificateAuthority, IssueError, ValidityPolicy, leaf_validity};
use super::csr::{ParsedCsr, parse_csr};
use super::issuer_files::AuthorityHandle;
use super::renewal::{Renewable, renew_until};
use super::{IdentityDomain, WorkloadIdentity};

/// The controller's service account, in the control namespace.
pub const CONTROLLER_SERVICE_ACCOUNT: &str = "weft-controller";

/// Why the controller could not certify itself.
#[derive(Debug, thiserror::Error)]
pub enum ServingError {
    /// No issuer has loaded.
    #[error("no issuer to sign the controller's certificate")]
    NoIssuer,
    /// The key or its CSR could not be made.
    #[error("cannot create the controller's key: {0}")]
    Key(String),
    /// The issuer refused to sign.
    #[error("cannot issue the controller's certificate: {0}")]
    Issue(#[from] IssueError),
    /// rustls refused the certificate, key or anchors.
    #[error("cannot build the controller's TLS configuration: {0}")]
    Tls(String),
}

/// The current TLS configuration of the gRPC servers; cheap to clone, and
/// every clone sees renewals.
#[derive(Clone, Debug)]
pub struct ServingTls {
    name: Arc<str>,
    current: Arc<RwLock<Arc<ServerConfig>>>,
    client: Arc<RwLock<Arc<ClientConfig>>>,
}

impl ServingTls {
    /// The controller's identity (what clients put in SNI and verify).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// An acceptor with the current certificate.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let config = self
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        tokio_rustls::TlsAcceptor::from(config)
    }

    /// The client configuration with the current certificate (TLS 1.3,
    /// ALPN `h2`, servers verified against the trust anchors).
    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.client
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn install(&self, configs: Configs) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(configs.server);
        *self.client.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(configs.client);
    }
}

/// The server and client configurations around one certificate.
struct Configs {
    server: ServerConfig,
    client: ClientConfig,
}

/// The controller's certificate and its renewal.
pub struct ServingCertificate {
    key: KeyPair,
    csr: ParsedCsr,
    spiffe_id: String,
    policy: ValidityPolicy,
    authority: watch::Receiver<Option<Arc<CertificateAuthority>>>,
    tls: ServingTls,
    not_after: OffsetDateTime,
    expiration: Gauge,
}

impl std::fmt::Debug for ServingCertificate {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ServingCertificate")
            .field("name", &self.tls.name)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// The name the controller's certificate carries.
pub fn controller_name(domain: &IdentityDomain) -> String {
    domain.dns_name(&WorkloadIdentity::new(
        domain.control_namespace.clone(),
        CONTROLLER_SERVICE_ACCOUNT,
    ))
}

impl ServingCertificate {
    /// A key, and a first certificate from the issuer `authority` holds now.
    pub fn issue_first(
        authority: &AuthorityHandle,
        domain: &IdentityDomain,
        policy: ValidityPolicy,
        registry: &mut Registry,
    ) -> Result<Self, ServingError> {
        let name = controller_name(domain);
        let spiffe_id = domain.spiffe_id(&WorkloadIdentity::new(
            domain.control_namespace.clone(),
            CONTROLLER_SERVICE_ACCOUNT,
        ));
        let key_error = |error: String| ServingError::Key(error);
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|error| key_error(error.to_string()))?;
        let mut params = CertificateParams::new(vec![name.clone()])
            .map_err(|error| key_error(error.to_string()))?;
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, &name);
        let request = params
            .serialize_request(&key)
            .map_err(|error| key_error(error.to_string()))?;
        let csr = parse_csr(request.der()).map_err(|error| key_error(error.to_string()))?;

        let receiver = authority.subscribe();
        let current = receiver.borrow().clone().ok_or(ServingError::NoIssuer)?;
        let (configs, not_after) = certify(&key, &csr, &name, &spiffe_id, &policy, &current)?;
        let expiration = Gauge::default();
        registry.register(
            "identity_controller_cert_expiration_timestamp_seconds",
            "When the controller's own serving certificate expires (Unix time)",
            expiration.clone(),
        );
        expiration.set(not_after.unix_timestamp());
        tracing::info!(identity = %name, %not_after, "controller certificate issued");
        Ok(Self {
            key,
            csr,
            spiffe_id,
            policy,
            authority: receiver,
            tls: ServingTls {
                name: name.into(),
                current: Arc::new(RwLock::new(Arc::new(configs.server))),
                client: Arc::new(RwLock::new(Arc::new(configs.client))),
            },
            not_after,
            expiration,
        })
    }

    /// The configuration the servers accept TLS with (follows renewals).
    pub fn tls(&self) -> ServingTls {
        self.tls.clone()
    }

    /// Renews until `shutdown` completes: at 70 % of the remaining lifetime,
    /// and at once whenever a new issuer loads.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        renew_until(&mut self, shutdown).await;
    }
}

impl Renewable for ServingCertificate {
    type Error = ServingError;
    const NAME: &'static str = "controller certificate";

    fn issuer(&mut self) -> &mut watch::Receiver<Option<Arc<CertificateAuthority>>> {
        &mut self.authority
    }

    fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    fn renew(&mut self) -> Result<(), ServingError> {
        let authority = self
            .authority
            .borrow_and_update()
            .clone()
            .ok_or(ServingError::NoIssuer)?;
        let (configs, not_after) = certify(
            &self.key,
            &self.csr,
            self.tls.name(),
            &self.spiffe_id,
            &self.policy,
            &authority,
        )?;
        self.tls.install(configs);
        self.not_after = not_after;
        self.expiration.set(not_after.unix_timestamp());
        tracing::info!(identity = %self.tls.name(), %not_after, "controller certificate renewed");
        Ok(())
    }
}

/// Signs a leaf for `key` and makes the configurations around it.
fn certify(
    key: &KeyPair,
    csr: &ParsedCsr,
    name: &str,
    spiffe_id: &str,
    policy: &ValidityPolicy,
    authority: &CertificateAuthority,
) -> Result<(Configs, OffsetDateTime), ServingError> {
    let validity = leaf_validity(
        OffsetDateTime::now_utc(),
        policy,
        authority.chain_not_after(),
    )?;
    let leaf = authority.issue(csr, name, spiffe_id, validity)?;
    let chain = leaf.chain();
    let client = client_config(key, chain.clone(), authority.trust_anchors_der())?;
    let server = server_config(key, chain, authority.trust_anchors_der())?;
    Ok((Configs { server, client }, leaf.not_after))
}

/// TLS 1.3, ring, ALPN `h2`; presents the certificate, verifies servers
/// against `anchors`.
fn client_config(
    key: &KeyPair,
    chain: Vec<CertificateDer<'static>>,
    anchors: &[Vec<u8>],
) -> Result<ClientConfig, ServingError> {
    let tls = |error: String| ServingError::Tls(error);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(
        anchors
            .iter()
            .map(|der| CertificateDer::from(der.as_slice().to_vec())),
    );
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|error| tls(error.to_string()))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|error| tls(error.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// TLS 1.3, ring, ALPN `h2`; client certificates optional, verified against
/// `anchors` when presented.
fn server_config(
    key: &KeyPair,
    chain: Vec<CertificateDer<'static>>,
    anchors: &[Vec<u8>],
) -> Result<ServerConfig, ServingError> {
    let tls = |error: String| ServingError::Tls(error);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(
        anchors
            .iter()
            .map(|der| CertificateDer::from(der.as_slice().to_vec())),
    );
    if added == 0 {
        return Err(tls("no usable trust anchor".to_string()));
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|error| tls(error.to_string()))?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|error| tls(error.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|error| tls(error.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_is_the_controller_service_account_in_the_control_namespace() {
        assert_eq!(
            controller_name(&IdentityDomain::default()),
            "weft-controller.weft.serviceaccount.identity.weft.cluster.local"
        );
        let other = IdentityDomain {
            control_namespace: "mesh".to_string(),
            trust_domain: "example.org".to_string(),
        };
        assert_eq!(
            controller_name(&other),
            "weft-controller.mesh.serviceaccount.identity.mesh.example.org"
        );
    }
}
