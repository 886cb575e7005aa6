//! The certificate facts the identity checks need, read from PEM text:
//! subject, validity, key algorithm, and whether one certificate signed
//! another. Pure (bytes in, values out); errors are user-facing strings.
//! The PEM blocks, the parsing and the signature check are weft-core's
//! [`pki`](weft_core::pki), as the controller reads its issuer.

use weft_core::pki::{CredentialProblem, certificate_blocks, parse_certificate, signs};
use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_PKCS1_RSAENCRYPTION};

/// A certificate's key algorithm, as the checks judge it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// ECDSA on P-256: supported.
    EcdsaP256,
    /// RSA: supported.
    Rsa,
    /// Anything else (`ECDSA on 1.3.132.0.34`, `1.3.101.112`): not supported.
    Other(String),
}

impl KeyAlgorithm {
    /// Whether weft's identity accepts it (ECDSA P-256 or RSA, as Linkerd).
    pub fn supported(&self) -> bool {
        !matches!(self, KeyAlgorithm::Other(_))
    }
}

impl std::fmt::Display for KeyAlgorithm {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyAlgorithm::EcdsaP256 => formatter.write_str("ECDSA P-256"),
            KeyAlgorithm::Rsa => formatter.write_str("RSA"),
            KeyAlgorithm::Other(name) => formatter.write_str(name),
        }
    }
}

/// One parsed certificate, reduced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFacts {
    /// The subject (`CN=root.weft.cluster.local`).
    pub subject: String,
    /// NotBefore, Unix seconds.
    pub not_before_unix: i64,
    /// NotAfter, Unix seconds.
    pub not_after_unix: i64,
    /// The key's algorithm.
    pub algorithm: KeyAlgorithm,
    /// The DER bytes (to compare bundles and check signatures).
    pub der: Vec<u8>,
}

/// Every `CERTIFICATE` block of a PEM bundle, parsed; an error when the text
/// is not PEM, a block is not a certificate, or there is none.
pub fn parse_bundle(pem: &[u8]) -> Result<Vec<CertificateFacts>, String> {
    let mut certificates = Vec::new();
    for der in certificate_blocks(pem) {
        certificates.push(facts(&der.map_err(|problem| describe(&problem))?)?);
    }
    if certificates.is_empty() {
        return Err(describe(&CredentialProblem::NoCertificate));
    }
    Ok(certificates)
}

/// How the checks word a problem with a certificate bundle.
fn describe(problem: &CredentialProblem) -> String {
    match problem {
        CredentialProblem::NoCertificate => "no PEM CERTIFICATE block".to_string(),
        CredentialProblem::BadCertificate(reason) => {
            format!("not an X.509 certificate: {reason}")
        }
        // `not PEM: …`; the bundle readers find no other.
        other => other.to_string(),
    }
}

fn facts(der: &[u8]) -> Result<CertificateFacts, String> {
    let certificate = parse_certificate(der).map_err(|problem| describe(&problem))?;
    let key = certificate.public_key();
    let algorithm = if key.algorithm.algorithm == OID_PKCS1_RSAENCRYPTION {
        KeyAlgorithm::Rsa
    } else if key.algorithm.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = key
            .algorithm
            .parameters
            .as_ref()
            .and_then(|parameters| parameters.as_oid().ok());
        match curve {
            Some(curve) if curve == OID_EC_P256 => KeyAlgorithm::EcdsaP256,
            Some(curve) => KeyAlgorithm::Other(format!("ECDSA on curve {curve}")),
            None => KeyAlgorithm::Other("ECDSA on an unnamed curve".into()),
        }
    } else {
        KeyAlgorithm::Other(key.algorithm.algorithm.to_id_string())
    };
    Ok(CertificateFacts {
        subject: certificate.subject().to_string(),
        not_before_unix: certificate.validity().not_before.timestamp(),
        not_after_unix: certificate.validity().not_after.timestamp(),
        algorithm,
        der: der.to_vec(),
    })
}

/// Whether `child` names `parent` as its issuer and carries its signature.
pub fn signed_by(child: &CertificateFacts, parent: &CertificateFacts) -> bool {
    let (Ok(child), Ok(parent)) = (
        parse_certificate(&child.der),
        parse_certificate(&parent.der),
    ) else {
        return false;
    };
    signs(&parent, &child)
}
