//! A certificate authority for tests: a root that signs CSRs and issues
//! ready-made credentials.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::Credentials;
use super::client::LocalKey;

/// A self-signed root that signs leaves.
pub(crate) struct TestCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    anchor_der: Vec<u8>,
}

impl TestCa {
    /// A new root.
    pub(crate) fn new() -> TestCa {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "identity.weft.cluster.local");
        let anchor_der = params.self_signed(&key).unwrap().der().to_vec();
        TestCa {
            issuer: rcgen::Issuer::new(params, key),
            anchor_der,
        }
    }

    /// The root certificate, DER.
    pub(crate) fn anchor_der(&self) -> Vec<u8> {
        self.anchor_der.clone()
    }

    /// Signs a CSR (DER) into a leaf valid for `lifetime`.
    pub(crate) fn sign(&self, csr_der: &[u8], lifetime: Duration) -> Result<Vec<u8>, rcgen::Error> {
        let now = time::OffsetDateTime::now_utc();
        let not_after = now + time::Duration::try_from(lifetime).unwrap();
        self.sign_between(csr_der, now - time::Duration::seconds(5), not_after)
    }

    /// Signs a CSR (DER) into a leaf valid from `not_before` to `not_after`.
    pub(crate) fn sign_between(
        &self,
        csr_der: &[u8],
        not_before: time::OffsetDateTime,
        not_after: time::OffsetDateTime,
    ) -> Result<Vec<u8>, rcgen::Error> {
        let csr_der = rustls_pki_types::CertificateSigningRequestDer::from(csr_der.to_vec());
        let mut csr = rcgen::CertificateSigningRequestParams::from_der(&csr_der)?;
        csr.params.not_before = not_before;
        csr.params.not_after = not_after;
        csr.params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        Ok(csr.signed_by(&self.issuer)?.der().to_vec())
    }

    /// Credentials for `name`, valid for an hour.
    pub(crate) fn credentials(&self, name: &str) -> Arc<Credentials> {
        let now = time::OffsetDateTime::now_utc();
        self.credentials_between(
            name,
            now - time::Duration::seconds(5),
            now + time::Duration::hours(1),
        )
    }

    /// Credentials for `name` whose leaf is valid from `not_before` to `not_after`.
    pub(crate) fn credentials_between(
        &self,
        name: &str,
        not_before: time::OffsetDateTime,
        not_after: time::OffsetDateTime,
    ) -> Arc<Credentials> {
        let key = LocalKey::generate(name).unwrap();
        let leaf_der = self
            .sign_between(key.csr_der(), not_before, not_after)
            .unwrap();
        Arc::new(Credentials {
            local_name: name.to_string(),
            private_key_der: Arc::new(key.private_key_der()),
            leaf_der,
            intermediates_der: Vec::new(),
            valid_until: SystemTime::now() + Duration::from_secs(3600),
        })
    }
}
