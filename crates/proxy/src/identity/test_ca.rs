//! A certificate authority for tests: a root that signs CSRs and issues
//! ready-made credentials.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{Credentials, LocalKey};

/// A self-signed root that signs leaves.
pub struct TestCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    anchor_der: Vec<u8>,
}

impl TestCa {
    /// A new root.
    pub fn new() -> TestCa {
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
    pub fn anchor_der(&self) -> Vec<u8> {
        self.anchor_der.clone()
    }

    /// Signs a CSR (DER) into a leaf valid for `lifetime`.
    pub fn sign(&self, csr_der: &[u8], lifetime: Duration) -> Result<Vec<u8>, rcgen::Error> {
        let csr_der = rustls_pki_types::CertificateSigningRequestDer::from(csr_der.to_vec());
        let mut csr = rcgen::CertificateSigningRequestParams::from_der(&csr_der)?;
        let now = time::OffsetDateTime::now_utc();
        csr.params.not_before = now - time::Duration::seconds(5);
        csr.params.not_after = now + time::Duration::try_from(lifetime).unwrap();
        csr.params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        Ok(csr.signed_by(&self.issuer)?.der().to_vec())
    }

    /// Credentials for `name`, valid for an hour.
    pub fn credentials(&self, name: &str) -> Arc<Credentials> {
        let key = LocalKey::generate(name).unwrap();
        let leaf_der = self.sign(key.csr_der(), Duration::from_secs(3600)).unwrap();
        Arc::new(Credentials {
            local_name: name.to_string(),
            private_key_der: Arc::new(key.private_key_der()),
            leaf_der,
            intermediates_der: Vec::new(),
            valid_until: SystemTime::now() + Duration::from_secs(3600),
        })
    }
}
