//! The injector's TLS certificate, and the trust anchors it writes into
//! proxies: both follow the identity issuer.
//!
//! ```text
//! start:  key (P-256, in memory) ─► issuer.issue_server(DNS SANs) ─► ServerConfig
//!                                └► anchors (DER ─► PEM) ─► InjectionConfig.trust_anchors_pem
//! loop:   sleep 70 % of the remaining lifetime ─┐   (identity::renewal)
//!         the issuer changes ───────────────────┴► issue again, refresh the anchors
//!         (a failure keeps the current certificate and retries in 10 s)
//! ```
//!
//! The certificate names the injector's Service as the API server dials
//! it: `weft-proxy-injector.<cns>.svc` and
//! `weft-proxy-injector.<cns>.svc.<cluster domain>`; its chain is [leaf,
//! issuer], so the API server verifies it with `caBundle` = the trust
//! anchors. TLS 1.2 and 1.3 (ring), ALPN `h2` and `http/1.1` (the API
//! server speaks either), no client certificate (the API server presents
//! none by default).

use std::sync::{Arc, PoisonError, RwLock};

use base64::Engine;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use rcgen::KeyPair;
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;
use tokio::sync::watch;
use weft_core::cluster::INJECTOR_SERVICE;
use weft_core::inject::InjectionConfig;

use crate::identity::authority::{CertificateAuthority, IssueError, ValidityPolicy, leaf_validity};
use crate::identity::issuer_files::AuthorityHandle;
use crate::identity::renewal::{Renewable, renew_until};

/// Why the injector could not get its certificate.
#[derive(Debug, thiserror::Error)]
pub enum InjectorTlsError {
    /// No issuer has loaded.
    #[error("no issuer to sign the injector's certificate")]
    NoIssuer,
    /// The key could not be made.
    #[error("cannot create the injector's key: {0}")]
    Key(String),
    /// The issuer refused to sign.
    #[error("cannot issue the injector's certificate: {0}")]
    Issue(#[from] IssueError),
    /// rustls refused the certificate or key.
    #[error("cannot build the injector's TLS configuration: {0}")]
    Tls(String),
}

/// The injection configuration of the moment: its trust anchors follow the
/// issuer. Cheap to clone; every clone sees updates.
#[derive(Debug, Clone)]
pub struct SharedInjectionConfig(Arc<RwLock<Arc<InjectionConfig>>>);

impl SharedInjectionConfig {
    /// Holds `config` until the anchors change.
    pub fn new(config: InjectionConfig) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(config))))
    }

    /// The configuration now.
    pub fn current(&self) -> Arc<InjectionConfig> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the trust anchors (PEM); returns whether they changed.
    fn set_trust_anchors(&self, pem: String) -> bool {
        let mut current = self.0.write().unwrap_or_else(PoisonError::into_inner);
        if current.trust_anchors_pem == pem {
            return false;
        }
        let mut config = InjectionConfig::clone(&current);
        config.trust_anchors_pem = pem;
        *current = Arc::new(config);
        true
    }
}

/// The current server configuration; cheap to clone, every clone sees renewals.
#[derive(Debug, Clone)]
pub struct InjectorTls(Arc<RwLock<Arc<ServerConfig>>>);

impl InjectorTls {
    /// An acceptor with the current certificate.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(
            self.0
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

/// The DNS names of the injector's certificate.
pub fn injector_names(control_namespace: &str, cluster_domain: &str) -> Vec<String> {
    let service = format!("{INJECTOR_SERVICE}.{control_namespace}.svc");
    let qualified = format!("{service}.{cluster_domain}");
    vec![service, qualified]
}

/// Trust anchors (DER) as one PEM bundle.
pub fn anchors_pem(anchors: &[Vec<u8>]) -> String {
    let mut pem = String::new();
    for der in anchors {
        let encoded = base64::engine::general_purpose::STANDARD.encode(der);
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in encoded.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    pem
}

/// The injector's certificate, the anchors it injects, and their renewal.
pub struct InjectorCertificate {
    key: KeyPair,
    names: Vec<String>,
    policy: ValidityPolicy,
    authority: watch::Receiver<Option<Arc<CertificateAuthority>>>,
    tls: InjectorTls,
    config: SharedInjectionConfig,
    not_after: OffsetDateTime,
    expiration: Gauge,
}

impl std::fmt::Debug for InjectorCertificate {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("InjectorCertificate")
            .field("names", &self.names)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl InjectorCertificate {
    /// A key and a first certificate for `names` from the issuer
    /// `authority` holds now; `config`'s anchors are set from it.
    pub fn issue_first(
        authority: &AuthorityHandle,
        names: Vec<String>,
        policy: ValidityPolicy,
        config: SharedInjectionConfig,
        registry: &mut Registry,
    ) -> Result<Self, InjectorTlsError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|error| InjectorTlsError::Key(error.to_string()))?;
        let receiver = authority.subscribe();
        let current = receiver
            .borrow()
            .clone()
            .ok_or(InjectorTlsError::NoIssuer)?;
        let (server, not_after) = certify(&key, &names, &policy, &current)?;
        config.set_trust_anchors(anchors_pem(current.trust_anchors_der()));
        let expiration = Gauge::default();
        registry.register(
            "injector_cert_expiration_timestamp_seconds",
            "When the proxy injector's serving certificate expires (Unix time)",
            expiration.clone(),
        );
        expiration.set(not_after.unix_timestamp());
        tracing::info!(names = ?names, %not_after, "injector certificate issued");
        Ok(Self {
            key,
            names,
            policy,
            authority: receiver,
            tls: InjectorTls(Arc::new(RwLock::new(Arc::new(server)))),
            config,
            not_after,
            expiration,
        })
    }

    /// The configuration the listener accepts TLS with (follows renewals).
    pub fn tls(&self) -> InjectorTls {
        self.tls.clone()
    }

    /// Renews until `shutdown` completes: at 70 % of the remaining lifetime,
    /// and at once whenever a new issuer loads (the anchors too).
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        renew_until(&mut self, shutdown).await;
    }
}

impl Renewable for InjectorCertificate {
    type Error = InjectorTlsError;
    const NAME: &'static str = "injector certificate";

    fn issuer(&mut self) -> &mut watch::Receiver<Option<Arc<CertificateAuthority>>> {
        &mut self.authority
    }

    fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    fn renew(&mut self) -> Result<(), InjectorTlsError> {
        let authority = self
            .authority
            .borrow_and_update()
            .clone()
            .ok_or(InjectorTlsError::NoIssuer)?;
        if self
            .config
            .set_trust_anchors(anchors_pem(authority.trust_anchors_der()))
        {
            tracing::info!("trust anchors changed; injected proxies get the new ones");
        }
        let (server, not_after) = certify(&self.key, &self.names, &self.policy, &authority)?;
        *self.tls.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(server);
        self.not_after = not_after;
        self.expiration.set(not_after.unix_timestamp());
        tracing::info!(%not_after, "injector certificate renewed");
        Ok(())
    }
}

/// Signs a leaf for `key` and builds the server configuration around it.
fn certify(
    key: &KeyPair,
    names: &[String],
    policy: &ValidityPolicy,
    authority: &CertificateAuthority,
) -> Result<(ServerConfig, OffsetDateTime), InjectorTlsError> {
    let validity = leaf_validity(
        OffsetDateTime::now_utc(),
        policy,
        authority.chain_not_after(),
    )?;
    let leaf = authority.issue_server(key, names, validity)?;
    let chain = leaf.chain();
    Ok((server_config(key, chain)?, leaf.not_after))
}

/// TLS 1.2 and 1.3, ring, ALPN `h2` and `http/1.1`, no client certificates.
fn server_config(
    key: &KeyPair,
    chain: Vec<CertificateDer<'static>>,
) -> Result<ServerConfig, InjectorTlsError> {
    let tls = |error: String| InjectorTlsError::Tls(error);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|error| tls(error.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|error| tls(error.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_service_short_and_qualified() {
        assert_eq!(
            injector_names("weft", "cluster.local"),
            [
                "weft-proxy-injector.weft.svc",
                "weft-proxy-injector.weft.svc.cluster.local"
            ]
        );
        assert_eq!(
            injector_names("mesh", "example.org"),
            [
                "weft-proxy-injector.mesh.svc",
                "weft-proxy-injector.mesh.svc.example.org"
            ]
        );
    }

    #[test]
    fn anchors_become_pem_that_reads_back() {
        let first = rcgen::generate_simple_self_signed(vec!["a.example".into()]).unwrap();
        let second = rcgen::generate_simple_self_signed(vec!["b.example".into()]).unwrap();
        let ders = vec![first.cert.der().to_vec(), second.cert.der().to_vec()];
        let pem = anchors_pem(&ders);
        assert_eq!(pem.matches("-----BEGIN CERTIFICATE-----\n").count(), 2);
        assert!(pem.lines().all(|line| line.len() <= 64));
        assert_eq!(
            weft_core::pki::certificates_in(pem.as_bytes()).unwrap(),
            ders
        );
        assert_eq!(anchors_pem(&[]), "");
    }

    #[test]
    fn the_shared_config_changes_only_with_other_anchors() {
        let shared = SharedInjectionConfig::new(InjectionConfig::new("old"));
        assert!(!shared.set_trust_anchors("old".into()));
        assert!(shared.set_trust_anchors("new".into()));
        assert_eq!(shared.current().trust_anchors_pem, "new");
    }
}
