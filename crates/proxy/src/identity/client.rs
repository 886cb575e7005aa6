//! Obtains and renews the proxy's certificate from the identity service
//! (`io.linkerd.proxy.identity.Identity/Certify`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use linkerd2_proxy_api::identity as proto;
use linkerd2_proxy_api::identity::identity_client::IdentityClient;
use tokio::sync::watch;
use tonic::transport::Channel;

use super::refresh;
use crate::metrics::identity::IdentityMetrics;

/// Why the identity could not be set up or renewed.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The key or the CSR could not be made.
    #[error("cannot create the identity key: {0}")]
    Key(#[from] rcgen::Error),
    /// The local name is not a valid DNS name.
    #[error("invalid local identity name {0:?}")]
    InvalidName(String),
    /// The identity service address is not `host:port`.
    #[error("invalid identity service address {address:?}: {reason}")]
    InvalidAddress {
        /// The address as given.
        address: String,
        /// Why it was refused.
        reason: String,
    },
    /// The token file could not be read.
    #[error("cannot read the identity token {path}: {source}")]
    Token {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The identity service refused or failed.
    #[error("identity service: {0}")]
    Certify(#[from] tonic::Status),
    /// The certificate that came back is unusable.
    #[error("unusable certificate: {0}")]
    Certificate(String),
    /// The certificate does not verify with our key and the trust anchors.
    #[error("unusable certificate: {0}")]
    Unverified(#[from] crate::tls::config::TlsError),
}

/// What the proxy needs to ask for its certificate.
#[derive(Clone, Debug)]
pub(crate) struct IdentitySettings {
    /// The identity service, `host:port`.
    pub service_addr: String,
    /// The file holding the token that proves who we are (re-read each time).
    pub token_file: PathBuf,
    /// The identity to ask for (`web.shop.serviceaccount.identity.weft.cluster.local`).
    pub local_name: String,
    /// TLS to the identity service (the controller verified, no client
    /// certificate); `None`: plaintext.
    pub tls: Option<crate::control::ControlTls>,
    /// The mesh's trust anchors: a certificate that does not chain to them
    /// is refused like any other unusable one.
    pub trust_anchors: crate::tls::config::TrustAnchors,
}

/// The proxy's private key and the CSR for its identity, made once per
/// process and kept in memory only.
pub(crate) struct LocalKey {
    key: rcgen::KeyPair,
    csr_der: Vec<u8>,
    local_name: String,
}

impl LocalKey {
    /// A new P-256 key and a CSR naming `local_name` (as the only DNS SAN and
    /// the common name).
    pub(crate) fn generate(local_name: &str) -> Result<LocalKey, IdentityError> {
        if !is_dns_name(local_name) {
            return Err(IdentityError::InvalidName(local_name.to_string()));
        }
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = rcgen::CertificateParams::new(vec![local_name.to_string()])?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, local_name);
        let csr_der = params.serialize_request(&key)?.der().to_vec();
        Ok(LocalKey {
            key,
            csr_der,
            local_name: local_name.to_string(),
        })
    }

    /// The CSR, DER-encoded.
    pub(crate) fn csr_der(&self) -> &[u8] {
        &self.csr_der
    }

    /// The private key, PKCS#8 DER.
    pub(crate) fn private_key_der(&self) -> Vec<u8> {
        self.key.serialize_der()
    }
}

/// A certificate for the proxy's identity and its key.
#[derive(Clone)]
pub(crate) struct Credentials {
    /// The identity the certificate names.
    pub local_name: String,
    /// The private key, PKCS#8 DER (in memory only).
    pub private_key_der: Arc<Vec<u8>>,
    /// The leaf certificate, DER.
    pub leaf_der: Vec<u8>,
    /// The chain from the leaf towards the trust anchors, DER.
    pub intermediates_der: Vec<Vec<u8>>,
    /// When the leaf expires.
    pub valid_until: SystemTime,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Credentials")
            .field("local_name", &self.local_name)
            .field("valid_until", &self.valid_until)
            .finish_non_exhaustive()
    }
}

/// Starts obtaining and renewing the proxy's certificate. The watch holds
/// `None` until the first certificate arrives. Call inside a tokio runtime.
pub(crate) fn spawn(
    settings: IdentitySettings,
    metrics: IdentityMetrics,
) -> Result<watch::Receiver<Option<Arc<Credentials>>>, IdentityError> {
    let key = LocalKey::generate(&settings.local_name)?;
    let invalid = |reason: String| IdentityError::InvalidAddress {
        address: settings.service_addr.clone(),
        reason,
    };
    let authority: http::uri::Authority = settings
        .service_addr
        .parse()
        .map_err(|error: http::uri::InvalidUri| invalid(error.to_string()))?;
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{authority}"))
        .map_err(|error| invalid(error.to_string()))?
        .connect_timeout(Duration::from_secs(1));
    let channel = crate::control::connect_lazy(endpoint, settings.tls.clone());
    let (sender, receiver) = watch::channel(None);
    tokio::spawn(renew_forever(
        IdentityClient::new(channel),
        settings,
        key,
        sender,
        metrics,
    ));
    Ok(receiver)
}

async fn renew_forever(
    mut client: IdentityClient<Channel>,
    settings: IdentitySettings,
    key: LocalKey,
    sender: watch::Sender<Option<Arc<Credentials>>>,
    metrics: IdentityMetrics,
) {
    let private_key_der = Arc::new(key.private_key_der());
    let mut failures = 0u32;
    loop {
        let wait = match certify(&mut client, &settings, &key).await {
            Ok((leaf_der, intermediates_der)) => {
                match usable(&settings, &private_key_der, leaf_der, intermediates_der) {
                    Ok(credentials) => {
                        failures = 0;
                        let valid_until = credentials.valid_until;
                        metrics.refreshed(valid_until);
                        tracing::info!(identity = %key.local_name, ?valid_until, "certified");
                        sender.send_replace(Some(Arc::new(credentials)));
                        refresh::renew_in(SystemTime::now(), valid_until)
                    }
                    Err(error) => {
                        failures += 1;
                        metrics.rejected();
                        let wait = refresh::retry_in(failures);
                        tracing::warn!(
                            %error,
                            current = current_state(&sender),
                            retry_in = ?wait,
                            "identity service returned an unusable certificate"
                        );
                        wait
                    }
                }
            }
            Err(error) => {
                failures += 1;
                metrics.failed();
                let wait = refresh::retry_in(failures);
                tracing::warn!(
                    %error,
                    current = current_state(&sender),
                    retry_in = ?wait,
                    "certificate request failed"
                );
                wait
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// What a failed renewal leaves in place, for the log line.
fn current_state(sender: &watch::Sender<Option<Arc<Credentials>>>) -> &'static str {
    if sender.borrow().is_some() {
        "keeping the previous certificate"
    } else {
        "no certificate yet (not ready)"
    }
}

/// The credentials made of a leaf and chain from the identity service, if
/// they can be used: the leaf names our identity, has not expired, chains to
/// the trust anchors and carries the public half of our key (the same checks
/// [`crate::tls::config::build`] makes before serving with them).
fn usable(
    settings: &IdentitySettings,
    private_key_der: &Arc<Vec<u8>>,
    leaf_der: Vec<u8>,
    intermediates_der: Vec<Vec<u8>>,
) -> Result<Credentials, IdentityError> {
    let valid_until = check_leaf(&leaf_der, &settings.local_name)?;
    let credentials = Credentials {
        local_name: settings.local_name.clone(),
        private_key_der: private_key_der.clone(),
        leaf_der,
        intermediates_der,
        valid_until,
    };
    crate::tls::config::build(&credentials, &settings.trust_anchors)?;
    Ok(credentials)
}

async fn certify(
    client: &mut IdentityClient<Channel>,
    settings: &IdentitySettings,
    key: &LocalKey,
) -> Result<(Vec<u8>, Vec<Vec<u8>>), IdentityError> {
    let token = tokio::fs::read(&settings.token_file)
        .await
        .map_err(|source| IdentityError::Token {
            path: settings.token_file.clone(),
            source,
        })?;
    let response = client
        .certify(proto::CertifyRequest {
            identity: settings.local_name.clone(),
            token,
            certificate_signing_request: key.csr_der().to_vec(),
        })
        .await?
        .into_inner();
    Ok((
        der_of(response.leaf_certificate),
        response
            .intermediate_certificates
            .into_iter()
            .map(der_of)
            .collect(),
    ))
}

/// A certificate as DER: the wire carries DER, though the protobuf comments
/// say PEM; accept both.
fn der_of(certificate: Vec<u8>) -> Vec<u8> {
    if certificate.starts_with(b"-----BEGIN")
        && let Ok((_, pem)) = x509_parser::pem::parse_x509_pem(&certificate)
    {
        return pem.contents;
    }
    certificate
}

/// Checks that `leaf_der` names `local_name` among its DNS SANs and has not
/// expired; returns its expiry.
pub(crate) fn check_leaf(leaf_der: &[u8], local_name: &str) -> Result<SystemTime, IdentityError> {
    let bad = |reason: String| IdentityError::Certificate(reason);
    let (_, leaf) = x509_parser::parse_x509_certificate(leaf_der)
        .map_err(|error| bad(format!("not an X.509 certificate: {error}")))?;
    let names: Vec<String> = leaf
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|extension| {
            extension
                .value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    x509_parser::extensions::GeneralName::DNSName(dns) => Some(dns.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    if !names
        .iter()
        .any(|name| name.eq_ignore_ascii_case(local_name))
    {
        return Err(bad(format!("names {names:?}, not {local_name:?}")));
    }
    let not_after = leaf.validity().not_after.timestamp();
    let valid_until = SystemTime::UNIX_EPOCH + Duration::from_secs(not_after.max(0) as u64);
    if valid_until <= SystemTime::now() {
        return Err(bad("already expired".to_string()));
    }
    Ok(valid_until)
}

/// Whether `name` is a DNS name made of letters, digits, hyphens and dots.
fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &str = "web.shop.serviceaccount.identity.weft.cluster.local";

    #[test]
    fn dns_names() {
        let table = [
            (NAME, true),
            ("a", true),
            ("a-b.c", true),
            ("", false),
            ("a..b", false),
            ("-a.b", false),
            ("a_b.c", false),
            ("a b", false),
        ];
        for (name, valid) in table {
            assert_eq!(is_dns_name(name), valid, "{name:?}");
        }
    }

    #[test]
    fn a_leaf_signed_from_our_csr_is_accepted() {
        let key = LocalKey::generate(NAME).unwrap();
        let leaf = super::super::test_ca::TestCa::new()
            .sign(key.csr_der(), Duration::from_secs(3600))
            .unwrap();
        let valid_until = check_leaf(&leaf, NAME).unwrap();
        let remaining = valid_until.duration_since(SystemTime::now()).unwrap();
        assert!(remaining > Duration::from_secs(3500), "{remaining:?}");
        assert!(matches!(
            check_leaf(
                &leaf,
                "other.shop.serviceaccount.identity.weft.cluster.local"
            ),
            Err(IdentityError::Certificate(_))
        ));
        assert!(matches!(
            check_leaf(b"garbage", NAME),
            Err(IdentityError::Certificate(_))
        ));
    }

    #[test]
    fn keys_are_fresh_and_names_checked() {
        let first = LocalKey::generate(NAME).unwrap();
        let second = LocalKey::generate(NAME).unwrap();
        assert_ne!(first.private_key_der(), second.private_key_der());
        assert!(matches!(
            LocalKey::generate("not a name"),
            Err(IdentityError::InvalidName(_))
        ));
    }
}
