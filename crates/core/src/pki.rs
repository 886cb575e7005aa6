//! The mesh's CA certificates, shared by the controller's identity (which
//! loads an issuer and signs leaves with it, and creates credentials for
//! `weft-controller identity init`) and `weft install` (which generates or
//! checks the credentials it writes into manifests): pure functions from PEM
//! text and certificates to facts, and the parameters of a generated CA.
//!
//! ```text
//! PEM text ─► certificate_blocks / certificates_in ─► DER ─► parse_certificate
//!   ─► check_ca (basicConstraints CA:TRUE, valid now) ─► signs (anchor → issuer)
//!   ─► key_matches (the issuer's key)
//! generate_root ─► self-signed CA ─► generate_issuer ─► CA of path length 0 signed by it
//!   (ca_params: keyCertSign|cRLSign|digitalSignature, back-dated CLOCK_SKEW_ALLOWANCE)
//! ```
//!
//! [`CredentialProblem`]'s messages are the control plane's wording (its log
//! and `/ready`); `weft install` words the same problems its own way.
//! Apart from key generation, nothing here reads a clock, a file or the
//! network: `now` is always an argument.

use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;

/// How far a generated CA certificate's NotBefore is back-dated, so nodes
/// with slightly late clocks accept it at once (Linkerd's
/// `clockSkewAllowance`, which the controller also puts on both ends of a
/// leaf's validity).
pub const CLOCK_SKEW_ALLOWANCE: Duration = Duration::from_secs(20);

/// Which credential a problem is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialFile {
    /// The issuer certificate (`crt.pem`, a Secret's `tls.crt`).
    IssuerCertificate,
    /// The issuer key (`key.pem`, a Secret's `tls.key`).
    IssuerKey,
    /// The trust-anchor bundle.
    TrustAnchors,
}

/// What is wrong with an issuer's or the trust anchors' credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialProblem {
    /// Not readable as PEM.
    #[error("not PEM: {0}")]
    NotPem(String),
    /// No `CERTIFICATE` block.
    #[error("holds no CERTIFICATE")]
    NoCertificate,
    /// The issuer certificate's text must hold the issuer alone.
    #[error("holds {0} certificates; it must hold only the issuer certificate")]
    SeveralCertificates(usize),
    /// A certificate does not parse.
    #[error("invalid certificate: {0}")]
    BadCertificate(String),
    /// The key does not parse.
    #[error("invalid key: {0}")]
    BadKey(String),
    /// The key is not the certificate's.
    #[error("the key does not belong to the issuer certificate")]
    KeyMismatch,
    /// A certificate lacks `basicConstraints CA:TRUE`.
    #[error("{0} is not a CA certificate (basicConstraints CA:TRUE is required)")]
    NotCa(String),
    /// Outside its validity window.
    #[error("{subject} is not valid now (valid {not_before} to {not_after})")]
    NotValidNow {
        /// The certificate's subject.
        subject: String,
        /// Its NotBefore.
        not_before: OffsetDateTime,
        /// Its NotAfter.
        not_after: OffsetDateTime,
    },
    /// No anchor signed the issuer (or the last certificate of its chain).
    #[error("the issuer {0} is not signed by any trust anchor")]
    Untrusted(String),
    /// A certificate of the issuer's chain does not sign the one before it.
    #[error("the chain is out of order: {next} did not sign {subject}")]
    BrokenChain {
        /// The certificate whose signer was expected next.
        subject: String,
        /// The certificate found next.
        next: String,
    },
}

/// A generated CA certificate and its key, PEM.
#[derive(Debug, Clone)]
pub struct GeneratedCa {
    /// The certificate.
    pub certificate_pem: String,
    /// The key (PKCS#8).
    pub key_pem: String,
}

/// The DER of each `CERTIFICATE` block of a PEM text, in order (other blocks
/// skipped); an item is [`CredentialProblem::NotPem`] where the text stops
/// being PEM.
pub fn certificate_blocks(
    pem: &[u8],
) -> impl Iterator<Item = Result<Vec<u8>, CredentialProblem>> + '_ {
    Pem::iter_from_buffer(pem).filter_map(|block| match block {
        Ok(block) if block.label == "CERTIFICATE" => Some(Ok(block.contents)),
        Ok(_) => None,
        Err(error) => Some(Err(CredentialProblem::NotPem(error.to_string()))),
    })
}

/// The DER of every `CERTIFICATE` block in a PEM text (other blocks
/// ignored); [`CredentialProblem::NoCertificate`] when there is none.
pub fn certificates_in(pem: &[u8]) -> Result<Vec<Vec<u8>>, CredentialProblem> {
    let certificates = certificate_blocks(pem).collect::<Result<Vec<_>, _>>()?;
    if certificates.is_empty() {
        return Err(CredentialProblem::NoCertificate);
    }
    Ok(certificates)
}

/// One certificate from its DER.
pub fn parse_certificate(der: &[u8]) -> Result<X509Certificate<'_>, CredentialProblem> {
    X509Certificate::from_der(der)
        .map(|(_, certificate)| certificate)
        .map_err(|error| CredentialProblem::BadCertificate(error.to_string()))
}

/// Checks that `certificate` is a CA certificate valid at `now`
/// (NotBefore ≤ now < NotAfter).
pub fn check_ca(
    certificate: &X509Certificate<'_>,
    now: OffsetDateTime,
) -> Result<(), CredentialProblem> {
    let subject = certificate.subject().to_string();
    if !certificate.is_ca() {
        return Err(CredentialProblem::NotCa(subject));
    }
    let not_before = certificate.validity().not_before.to_datetime();
    let not_after = certificate.validity().not_after.to_datetime();
    if now < not_before || now >= not_after {
        return Err(CredentialProblem::NotValidNow {
            subject,
            not_before,
            not_after,
        });
    }
    Ok(())
}

/// Whether `signer` issued `certificate` (names match, signature verifies).
pub fn signs(signer: &X509Certificate<'_>, certificate: &X509Certificate<'_>) -> bool {
    signer.subject().as_raw() == certificate.issuer().as_raw()
        && certificate
            .verify_signature(Some(signer.public_key()))
            .is_ok()
}

/// Whether `key` is the key of `certificate` (the same public key).
pub fn key_matches(key: &KeyPair, certificate: &X509Certificate<'_>) -> bool {
    key.public_key_raw() == certificate.public_key().subject_public_key.data.as_ref()
}

/// The parameters of a CA certificate named `name` (the common name alone),
/// as Linkerd's documented `step` recipe makes them: CA with `constraints`,
/// key usages keyCertSign, cRLSign and digitalSignature, an authority key
/// identifier, valid from `now` back-dated by [`CLOCK_SKEW_ALLOWANCE`] to
/// `now + lifetime`.
pub fn ca_params(
    name: &str,
    now: OffsetDateTime,
    lifetime: Duration,
    constraints: BasicConstraints,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut subject = DistinguishedName::new();
    subject.push(DnType::CommonName, name);
    params.distinguished_name = subject;
    params.is_ca = IsCa::Ca(constraints);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - CLOCK_SKEW_ALLOWANCE;
    params.not_after = now + lifetime;
    params
}

/// A self-signed root CA (a trust anchor) named `name` with a new ECDSA
/// P-256 key, valid from `now` for `lifetime`.
pub fn generate_root(
    name: &str,
    now: OffsetDateTime,
    lifetime: Duration,
) -> Result<GeneratedCa, rcgen::Error> {
    let key = KeyPair::generate()?;
    let certificate =
        ca_params(name, now, lifetime, BasicConstraints::Unconstrained).self_signed(&key)?;
    Ok(GeneratedCa {
        certificate_pem: certificate.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// An issuer CA named `name` (path length 0) with a new ECDSA P-256 key,
/// signed by `root`, valid from `now` for `lifetime`. Fails when `root`'s
/// certificate or key does not parse.
pub fn generate_issuer(
    root: &GeneratedCa,
    name: &str,
    now: OffsetDateTime,
    lifetime: Duration,
) -> Result<GeneratedCa, rcgen::Error> {
    let root_key = KeyPair::from_pem(&root.key_pem)?;
    let signer = Issuer::from_ca_cert_pem(&root.certificate_pem, root_key)?;
    let key = KeyPair::generate()?;
    let certificate = ca_params(name, now, lifetime, BasicConstraints::Constrained(0))
        .signed_by(&key, &signer)?;
    Ok(GeneratedCa {
        certificate_pem: certificate.pem(),
        key_pem: key.serialize_pem(),
    })
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);
    const DAY: Duration = Duration::from_secs(24 * 60 * 60);

    fn root_and_issuer() -> (GeneratedCa, GeneratedCa) {
        let root = generate_root("root.weft.cluster.local", NOW, 365 * DAY).unwrap();
        let issuer = generate_issuer(&root, "identity.weft.cluster.local", NOW, 30 * DAY).unwrap();
        (root, issuer)
    }

    /// A self-signed certificate that is not a CA.
    fn leaf_pem() -> String {
        rcgen::generate_simple_self_signed(vec!["leaf.example".to_string()])
            .unwrap()
            .cert
            .pem()
    }

    /// Whether a problem is the one a case expects.
    type Accept = fn(&CredentialProblem) -> bool;

    fn der(pem: &str) -> Vec<u8> {
        certificates_in(pem.as_bytes()).unwrap().remove(0)
    }

    #[test]
    fn certificates_in_table() {
        let (root, issuer) = root_and_issuer();
        let bundle = format!("{}{}", root.certificate_pem, issuer.certificate_pem);
        let with_key = format!("{}{}", issuer.key_pem, root.certificate_pem);
        /// (name, PEM text, how many certificates or which problem).
        type Case<'a> = (&'a str, &'a str, Result<usize, Accept>);
        let cases: Vec<Case<'_>> = vec![
            ("one", &root.certificate_pem, Ok(1)),
            ("a bundle, in order", &bundle, Ok(2)),
            ("a key block is skipped", &with_key, Ok(1)),
            ("empty", "", Err(|p| *p == CredentialProblem::NoCertificate)),
            (
                "not PEM at all",
                "hello",
                Err(|p| *p == CredentialProblem::NoCertificate),
            ),
            (
                "a key alone",
                &issuer.key_pem,
                Err(|p| *p == CredentialProblem::NoCertificate),
            ),
            (
                "a block that does not end",
                "-----BEGIN CERTIFICATE-----\nAAAA\n",
                Err(|p| matches!(p, CredentialProblem::NotPem(_))),
            ),
        ];
        for (name, pem, expected) in cases {
            match (certificates_in(pem.as_bytes()), expected) {
                (Ok(ders), Ok(count)) => assert_eq!(ders.len(), count, "{name}"),
                (Err(problem), Err(accept)) => assert!(accept(&problem), "{name}: {problem}"),
                (got, _) => panic!("{name}: unexpected {got:?}"),
            }
        }
        assert_eq!(
            certificates_in(bundle.as_bytes()).unwrap(),
            vec![der(&root.certificate_pem), der(&issuer.certificate_pem)]
        );
    }

    #[test]
    fn parse_certificate_refuses_what_is_not_x509() {
        assert!(matches!(
            parse_certificate(b"not a certificate"),
            Err(CredentialProblem::BadCertificate(_))
        ));
    }

    #[test]
    fn check_ca_table() {
        let (root, issuer) = root_and_issuer();
        let issuer_der = der(&issuer.certificate_pem);
        let issuer_certificate = parse_certificate(&issuer_der).unwrap();
        let root_der = der(&root.certificate_pem);
        let root_certificate = parse_certificate(&root_der).unwrap();
        let leaf_der = der(&leaf_pem());
        let leaf = parse_certificate(&leaf_der).unwrap();
        let not_before = NOW - CLOCK_SKEW_ALLOWANCE;
        let not_after = NOW + 30 * DAY;
        let not_valid = |p: &CredentialProblem| matches!(p, CredentialProblem::NotValidNow { .. });
        /// (name, certificate, now, which problem if any).
        type Case<'a> = (
            &'a str,
            &'a X509Certificate<'a>,
            OffsetDateTime,
            Option<Accept>,
        );
        let cases: Vec<Case<'_>> = vec![
            ("issuer now", &issuer_certificate, NOW, None),
            ("root now", &root_certificate, NOW, None),
            (
                "from its back-dated NotBefore",
                &issuer_certificate,
                not_before,
                None,
            ),
            (
                "a second before",
                &issuer_certificate,
                not_before - Duration::from_secs(1),
                Some(not_valid),
            ),
            (
                "a second before its NotAfter",
                &issuer_certificate,
                not_after - Duration::from_secs(1),
                None,
            ),
            (
                "at its NotAfter",
                &issuer_certificate,
                not_after,
                Some(not_valid),
            ),
            (
                "not a CA",
                &leaf,
                OffsetDateTime::now_utc(),
                Some(|p| matches!(p, CredentialProblem::NotCa(_))),
            ),
        ];
        for (name, certificate, now, expected) in cases {
            match (check_ca(certificate, now), expected) {
                (Ok(()), None) => {}
                (Err(problem), Some(accept)) => assert!(accept(&problem), "{name}: {problem}"),
                (got, _) => panic!("{name}: unexpected {got:?}"),
            }
        }
        assert_eq!(
            check_ca(&issuer_certificate, not_after),
            Err(CredentialProblem::NotValidNow {
                subject: "CN=identity.weft.cluster.local".to_string(),
                not_before,
                not_after,
            })
        );
    }

    #[test]
    fn generated_issuer_is_signed_by_its_root_and_holds_its_key() {
        let (root, issuer) = root_and_issuer();
        let (other_root, other_issuer) = root_and_issuer();
        let parse = |pem: &str| der(pem);
        let (root_der, issuer_der, other_root_der) = (
            parse(&root.certificate_pem),
            parse(&issuer.certificate_pem),
            parse(&other_root.certificate_pem),
        );
        let root_certificate = parse_certificate(&root_der).unwrap();
        let issuer_certificate = parse_certificate(&issuer_der).unwrap();
        let other_root_certificate = parse_certificate(&other_root_der).unwrap();
        assert!(signs(&root_certificate, &issuer_certificate));
        assert!(signs(&root_certificate, &root_certificate), "self-signed");
        assert!(!signs(&other_root_certificate, &issuer_certificate));
        assert!(!signs(&issuer_certificate, &root_certificate));
        let key = KeyPair::from_pem(&issuer.key_pem).unwrap();
        let other_key = KeyPair::from_pem(&other_issuer.key_pem).unwrap();
        assert!(key_matches(&key, &issuer_certificate));
        assert!(!key_matches(&other_key, &issuer_certificate));
    }

    #[test]
    fn generated_cas_carry_the_names_constraints_usages_and_window() {
        let (root, issuer) = root_and_issuer();
        let root_der = der(&root.certificate_pem);
        let issuer_der = der(&issuer.certificate_pem);
        let cases = [
            (
                "root",
                &root_der,
                "CN=root.weft.cluster.local",
                "CN=root.weft.cluster.local",
                None,
                NOW + 365 * DAY,
            ),
            (
                "issuer",
                &issuer_der,
                "CN=identity.weft.cluster.local",
                "CN=root.weft.cluster.local",
                Some(0),
                NOW + 30 * DAY,
            ),
        ];
        for (name, der, subject, issuer_name, path_length, not_after) in cases {
            let certificate = parse_certificate(der).unwrap();
            assert_eq!(certificate.subject().to_string(), subject, "{name}");
            assert_eq!(certificate.issuer().to_string(), issuer_name, "{name}");
            let constraints = certificate.basic_constraints().unwrap().unwrap().value;
            assert!(constraints.ca, "{name}");
            assert_eq!(constraints.path_len_constraint, path_length, "{name}");
            let usage = certificate.key_usage().unwrap().unwrap().value;
            assert!(
                usage.key_cert_sign() && usage.crl_sign() && usage.digital_signature(),
                "{name}"
            );
            assert!(!usage.key_encipherment(), "{name}");
            let validity = certificate.validity();
            assert_eq!(
                validity.not_before.to_datetime(),
                NOW - CLOCK_SKEW_ALLOWANCE,
                "{name}"
            );
            assert_eq!(validity.not_after.to_datetime(), not_after, "{name}");
        }
    }

    #[test]
    fn an_issuer_needs_a_root_whose_certificate_and_key_parse() {
        let (root, _) = root_and_issuer();
        let bad_key = GeneratedCa {
            certificate_pem: root.certificate_pem.clone(),
            key_pem: "hello".to_string(),
        };
        let bad_certificate = GeneratedCa {
            certificate_pem: "hello".to_string(),
            key_pem: root.key_pem.clone(),
        };
        for (name, root) in [("bad key", bad_key), ("bad certificate", bad_certificate)] {
            assert!(
                generate_issuer(&root, "identity.weft.cluster.local", NOW, DAY).is_err(),
                "{name}"
            );
        }
    }
}
