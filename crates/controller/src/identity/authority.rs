//! The certificate authority: an issuer (intermediate CA) checked against the
//! trust anchors when loaded ([`CertificateAuthority::load`]), the leaf
//! validity window ([`leaf_validity`], pure) and leaf signing
//! ([`CertificateAuthority::issue`]).
//!
//! ```text
//! load:  crt.pem (exactly one certificate, a CA; `load_chain`: its chain may follow)
//!        + key.pem (PKCS#8, or SEC1 "EC PRIVATE KEY", its key)
//!        + anchors (PEM bundle) ─► issuer signed by an anchor, both valid now
//! issue: CSR key + names ─► leaf ECDSA-SHA256 signed by the issuer:
//!        KU digitalSignature|keyEncipherment, EKU serverAuth+clientAuth,
//!        DNS SAN identity, URI SAN spiffe ID, random serial,
//!        now − skew … now + lifetime + skew, clamped to the chain's end
//! ```
//!
//! The certificate checks (PEM blocks, CA and validity, who signed whom, the
//! key's match) and the problems they report are weft-core's
//! [`pki`](weft_core::pki), which `weft install` shares; what is the
//! controller's own is the chain of intermediates, SEC1 keys and signing.

use std::time::Duration;

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};
use ring::rand::{SecureRandom, SystemRandom};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;
pub use weft_core::pki::{CredentialFile, CredentialProblem, certificates_in};
use weft_core::pki::{check_ca, key_matches, parse_certificate, signs};
use x509_parser::pem::Pem;

use super::csr::ParsedCsr;

/// The default leaf lifetime (Linkerd's `issuanceLifetime`).
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// The default clock-skew allowance (Linkerd's `clockSkewAllowance`), the
/// same that generated CA certificates are back-dated by.
pub const DEFAULT_CLOCK_SKEW: Duration = weft_core::pki::CLOCK_SKEW_ALLOWANCE;

/// How long leaves are valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidityPolicy {
    /// The lifetime of a leaf.
    pub lifetime: Duration,
    /// Allowance for clocks that disagree, added on both ends.
    pub clock_skew: Duration,
}

impl Default for ValidityPolicy {
    fn default() -> Self {
        Self {
            lifetime: DEFAULT_LIFETIME,
            clock_skew: DEFAULT_CLOCK_SKEW,
        }
    }
}

/// A leaf's validity window, in whole seconds (what X.509 stores).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeafValidity {
    /// NotBefore.
    pub not_before: OffsetDateTime,
    /// NotAfter; also the response's `valid_until`.
    pub not_after: OffsetDateTime,
}

/// Why a leaf cannot be issued now.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// The issuer (or its anchor) has expired; a new issuer is needed.
    #[error("the issuer certificate chain expired at {0}")]
    ChainExpired(OffsetDateTime),
    /// The identity cannot be written into a certificate.
    #[error("cannot write the name {name:?} into a certificate: {reason}")]
    BadName {
        /// The name.
        name: String,
        /// rcgen's reason.
        reason: String,
    },
    /// Signing failed (rcgen or ring).
    #[error("cannot sign the certificate: {0}")]
    Signing(String),
}

/// The leaf window for a request at `now`: `now − skew` to
/// `now + lifetime + skew`, ending no later than `chain_not_after`.
pub fn leaf_validity(
    now: OffsetDateTime,
    policy: &ValidityPolicy,
    chain_not_after: OffsetDateTime,
) -> Result<LeafValidity, IssueError> {
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let chain_not_after = chain_not_after
        .replace_nanosecond(0)
        .unwrap_or(chain_not_after);
    if chain_not_after <= now {
        return Err(IssueError::ChainExpired(chain_not_after));
    }
    let not_before = now - policy.clock_skew;
    let not_after = (now + policy.lifetime + policy.clock_skew).min(chain_not_after);
    Ok(LeafValidity {
        not_before,
        not_after,
    })
}

/// A problem and the file it is in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{problem}")]
pub struct CredentialError {
    /// The file.
    pub file: CredentialFile,
    /// What is wrong with it.
    pub problem: CredentialProblem,
}

/// The issuer credentials as read from their files.
#[derive(Debug, Clone, Copy)]
pub struct IssuerCredentials<'a> {
    /// `crt.pem`.
    pub certificate_pem: &'a [u8],
    /// `key.pem`.
    pub key_pem: &'a [u8],
    /// The trust-anchor bundle.
    pub trust_anchors_pem: &'a [u8],
}

/// A signed leaf and its chain.
#[derive(Debug, Clone)]
pub struct Leaf {
    /// The leaf, DER.
    pub certificate: Vec<u8>,
    /// The issuer (and any intermediates), DER, leaf-side first.
    pub intermediates: Vec<Vec<u8>>,
    /// The leaf's NotAfter.
    pub not_after: OffsetDateTime,
}

impl Leaf {
    /// What a TLS peer presents: the leaf, then the issuer and any
    /// intermediates.
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        std::iter::once(&self.certificate)
            .chain(&self.intermediates)
            .map(|der| CertificateDer::from(der.clone()))
            .collect()
    }
}

/// A loaded issuer whose chain to the anchors checked out.
pub struct CertificateAuthority {
    issuer: Issuer<'static, KeyPair>,
    /// The issuer, then any intermediates up to the anchor, DER.
    chain_der: Vec<Vec<u8>>,
    issuer_subject: String,
    issuer_not_after: OffsetDateTime,
    /// The earlier of the issuer's and its anchor's NotAfter.
    chain_not_after: OffsetDateTime,
    /// Every certificate of the trust-anchor bundle, DER.
    trust_anchors_der: Vec<Vec<u8>>,
    random: SystemRandom,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("CertificateAuthority")
            .field("issuer", &self.issuer_subject)
            .field("issuer_not_after", &self.issuer_not_after)
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// Parses and checks the credentials at `now`: one CA certificate, its
    /// key, signed by one of the anchors, all valid now.
    pub fn load(
        credentials: &IssuerCredentials<'_>,
        now: OffsetDateTime,
    ) -> Result<Self, CredentialError> {
        Self::load_checked(credentials, now, false)
    }

    /// Like [`load`](Self::load), but the certificate text may hold the
    /// issuer's chain after it (a `kubernetes.io/tls` Secret's `tls.crt`, as
    /// cert-manager writes it): issuer first, then each certificate signing
    /// the one before, ending at one an anchor signed (copies of anchors are
    /// dropped). The intermediates go out with every leaf.
    pub fn load_chain(
        credentials: &IssuerCredentials<'_>,
        now: OffsetDateTime,
    ) -> Result<Self, CredentialError> {
        Self::load_checked(credentials, now, true)
    }

    fn load_checked(
        credentials: &IssuerCredentials<'_>,
        now: OffsetDateTime,
        chain_allowed: bool,
    ) -> Result<Self, CredentialError> {
        use CredentialFile::{IssuerCertificate, IssuerKey, TrustAnchors};
        let fail = |file, problem| CredentialError { file, problem };

        let certificate_ders = certificates_in(credentials.certificate_pem)
            .map_err(|problem| fail(IssuerCertificate, problem))?;
        let anchor_ders = certificates_in(credentials.trust_anchors_pem)
            .map_err(|problem| fail(TrustAnchors, problem))?;
        let (issuer_der, intermediate_ders) = match certificate_ders.split_first() {
            Some((issuer, [])) => (issuer.clone(), Vec::new()),
            Some((issuer, rest)) if chain_allowed => {
                let intermediates = rest
                    .iter()
                    .filter(|der| !anchor_ders.contains(der))
                    .cloned()
                    .collect();
                (issuer.clone(), intermediates)
            }
            _ => {
                return Err(fail(
                    IssuerCertificate,
                    CredentialProblem::SeveralCertificates(certificate_ders.len()),
                ));
            }
        };
        let issuer =
            parse_certificate(&issuer_der).map_err(|problem| fail(IssuerCertificate, problem))?;
        let intermediates = intermediate_ders
            .iter()
            .map(|der| parse_certificate(der))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|problem| fail(IssuerCertificate, problem))?;
        let anchors = anchor_ders
            .iter()
            .map(|der| parse_certificate(der))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|problem| fail(TrustAnchors, problem))?;

        check_ca(&issuer, now).map_err(|problem| fail(IssuerCertificate, problem))?;
        // Each certificate of the chain signs the one before it.
        let mut chain_not_after = issuer.validity().not_after.to_datetime();
        let mut signed = &issuer;
        for intermediate in &intermediates {
            if !signs(intermediate, signed) {
                return Err(fail(
                    IssuerCertificate,
                    CredentialProblem::BrokenChain {
                        subject: signed.subject().to_string(),
                        next: intermediate.subject().to_string(),
                    },
                ));
            }
            check_ca(intermediate, now).map_err(|problem| fail(IssuerCertificate, problem))?;
            chain_not_after = chain_not_after.min(intermediate.validity().not_after.to_datetime());
            signed = intermediate;
        }
        let anchor = anchors
            .iter()
            .find(|anchor| signs(anchor, signed))
            .ok_or_else(|| {
                fail(
                    IssuerCertificate,
                    CredentialProblem::Untrusted(signed.subject().to_string()),
                )
            })?;
        check_ca(anchor, now).map_err(|problem| fail(TrustAnchors, problem))?;

        let key_text = std::str::from_utf8(credentials.key_pem)
            .map_err(|error| fail(IssuerKey, CredentialProblem::NotPem(error.to_string())))?;
        let key = parse_private_key(key_text)
            .map_err(|reason| fail(IssuerKey, CredentialProblem::BadKey(reason)))?;
        if !key_matches(&key, &issuer) {
            return Err(fail(IssuerKey, CredentialProblem::KeyMismatch));
        }

        let issuer_not_after = issuer.validity().not_after.to_datetime();
        let chain_not_after = chain_not_after.min(anchor.validity().not_after.to_datetime());
        let issuer_subject = issuer.subject().to_string();
        let signer =
            Issuer::from_ca_cert_der(&issuer_der.as_slice().into(), key).map_err(|error| {
                fail(
                    IssuerCertificate,
                    CredentialProblem::BadCertificate(error.to_string()),
                )
            })?;
        let mut chain_der = Vec::with_capacity(1 + intermediate_ders.len());
        chain_der.push(issuer_der);
        chain_der.extend(intermediate_ders);
        Ok(Self {
            issuer: signer,
            chain_der,
            issuer_subject,
            issuer_not_after,
            chain_not_after,
            trust_anchors_der: anchor_ders,
            random: SystemRandom::new(),
        })
    }

    /// The issuer's NotAfter.
    pub fn issuer_not_after(&self) -> OffsetDateTime {
        self.issuer_not_after
    }

    /// The earliest NotAfter of the issuer and its anchor (leaves end by then).
    pub fn chain_not_after(&self) -> OffsetDateTime {
        self.chain_not_after
    }

    /// The issuer's subject, for logs and status.
    pub fn issuer_subject(&self) -> &str {
        &self.issuer_subject
    }

    /// The issuer certificate, DER.
    pub fn issuer_der(&self) -> &[u8] {
        // `load_checked` always puts the issuer first.
        self.chain_der.first().map_or(&[], Vec::as_slice)
    }

    /// The issuer and any intermediates up to the anchor, DER, issuer first
    /// (what goes out with each leaf).
    pub fn chain_der(&self) -> &[Vec<u8>] {
        &self.chain_der
    }

    /// The trust anchors loaded with this issuer, DER (what clients of the
    /// controller's own TLS are verified against).
    pub fn trust_anchors_der(&self) -> &[Vec<u8>] {
        &self.trust_anchors_der
    }

    /// Signs a leaf for the CSR's key naming `dns_name` and `spiffe_id`.
    /// The names are the authority's (the CSR was checked to ask for exactly
    /// `dns_name`); nothing else is copied from the request.
    pub fn issue(
        &self,
        request: &ParsedCsr,
        dns_name: &str,
        spiffe_id: &str,
        validity: LeafValidity,
    ) -> Result<Leaf, IssueError> {
        let bad_name = |name: &str, error: rcgen::Error| IssueError::BadName {
            name: name.to_string(),
            reason: error.to_string(),
        };
        let mut params = CertificateParams::default();
        let mut subject = DistinguishedName::new();
        subject.push(DnType::CommonName, dns_name);
        params.distinguished_name = subject;
        params.subject_alt_names = vec![
            SanType::DnsName(
                dns_name
                    .try_into()
                    .map_err(|error| bad_name(dns_name, error))?,
            ),
            SanType::URI(
                spiffe_id
                    .try_into()
                    .map_err(|error| bad_name(spiffe_id, error))?,
            ),
        ];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        params.serial_number = Some(self.serial()?);
        let certificate = params
            .signed_by(&request.request.public_key, &self.issuer)
            .map_err(|error| IssueError::Signing(error.to_string()))?;
        Ok(Leaf {
            certificate: certificate.der().to_vec(),
            intermediates: self.chain_der.clone(),
            not_after: validity.not_after,
        })
    }

    /// Signs a TLS server leaf for `key` naming the DNS names `dns_names`
    /// (no SPIFFE ID; EKU serverAuth only): the proxy injector's
    /// certificate, which the API server verifies against the trust anchors.
    pub fn issue_server(
        &self,
        key: &impl rcgen::PublicKeyData,
        dns_names: &[String],
        validity: LeafValidity,
    ) -> Result<Leaf, IssueError> {
        let mut params = CertificateParams::default();
        let mut subject = DistinguishedName::new();
        if let Some(first) = dns_names.first() {
            subject.push(DnType::CommonName, first.as_str());
        }
        params.distinguished_name = subject;
        params.subject_alt_names = dns_names
            .iter()
            .map(|name| {
                name.as_str()
                    .try_into()
                    .map(SanType::DnsName)
                    .map_err(|error: rcgen::Error| IssueError::BadName {
                        name: name.clone(),
                        reason: error.to_string(),
                    })
            })
            .collect::<Result<_, _>>()?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        params.serial_number = Some(self.serial()?);
        let certificate = params
            .signed_by(key, &self.issuer)
            .map_err(|error| IssueError::Signing(error.to_string()))?;
        Ok(Leaf {
            certificate: certificate.der().to_vec(),
            intermediates: self.chain_der.clone(),
            not_after: validity.not_after,
        })
    }

    /// 128 random bits, positive and without a leading zero byte.
    fn serial(&self) -> Result<SerialNumber, IssueError> {
        let mut bytes = [0u8; 16];
        self.random
            .fill(&mut bytes)
            .map_err(|_| IssueError::Signing("no randomness for the serial number".into()))?;
        bytes[0] = (bytes[0] & 0x7f) | 0x01;
        Ok(SerialNumber::from_slice(&bytes))
    }
}

/// The DER of `id-ecPublicKey`'s OID, then the named curves a SEC1 key may
/// be on (P-256, P-384), as PKCS#8 names them.
const EC_PUBLIC_KEY_OID: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const EC_CURVE_OIDS: [&[u8]; 2] = [
    &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
    &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22],
];

/// The issuer key from PEM: PKCS#8 (`PRIVATE KEY`), or SEC1 (`EC PRIVATE
/// KEY`, what cert-manager writes for ECDSA keys by default, and `openssl
/// ecparam -genkey`), which is wrapped into PKCS#8 for ring.
fn parse_private_key(pem: &str) -> Result<KeyPair, String> {
    let sec1 = Pem::iter_from_buffer(pem.as_bytes())
        .filter_map(Result::ok)
        .find(|block| block.label == "EC PRIVATE KEY");
    let Some(sec1) = sec1 else {
        return KeyPair::from_pem(pem).map_err(|error| error.to_string());
    };
    EC_CURVE_OIDS
        .iter()
        .find_map(|curve| {
            let pkcs8 = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(sec1_to_pkcs8(
                &sec1.contents,
                curve,
            )));
            KeyPair::try_from(&pkcs8).ok()
        })
        .ok_or_else(|| "a SEC1 \"EC PRIVATE KEY\" that is not a P-256 or P-384 key".to_string())
}

/// PKCS#8 `PrivateKeyInfo { 0, {id-ecPublicKey, curve}, OCTET STRING sec1 }`.
fn sec1_to_pkcs8(sec1: &[u8], curve_oid: &[u8]) -> Vec<u8> {
    let algorithm = der_element(0x30, &[EC_PUBLIC_KEY_OID, curve_oid].concat());
    let body = [
        &[0x02, 0x01, 0x00][..],
        &algorithm,
        &der_element(0x04, sec1),
    ]
    .concat();
    der_element(0x30, &body)
}

/// One DER element: tag, definite length, contents.
fn der_element(tag: u8, contents: &[u8]) -> Vec<u8> {
    let length = contents.len();
    let mut element = vec![tag];
    if length < 0x80 {
        element.push(length as u8);
    } else {
        let bytes: Vec<u8> = length
            .to_be_bytes()
            .into_iter()
            .skip_while(|byte| *byte == 0)
            .collect();
        element.push(0x80 | bytes.len() as u8);
        element.extend(bytes);
    }
    element.extend_from_slice(contents);
    element
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, KeyPair};
    use time::macros::datetime;
    use x509_parser::certificate::X509Certificate;
    use x509_parser::extensions::GeneralName;
    use x509_parser::prelude::FromDer;

    use super::*;
    use crate::identity::IdentityDomain;
    use crate::identity::csr::parse_csr;
    use crate::identity::init::{GeneratedCa, generate_issuer, generate_root};

    const DAY: Duration = Duration::from_secs(24 * 60 * 60);
    const WEB: &str = "web.shop.serviceaccount.identity.weft.cluster.local";
    const WEB_SPIFFE: &str = "spiffe://cluster.local/ns/shop/sa/web";

    #[test]
    fn validity_table() {
        let now = datetime!(2026-11-25 18:00:00.75 UTC);
        let policy = ValidityPolicy::default();
        let far = datetime!(2027-11-25 00:00:00 UTC);
        let cases = [
            (
                "defaults: 24h + 20s, back-dated 20s, whole seconds",
                policy,
                far,
                Some((
                    datetime!(2026-11-25 17:59:40 UTC),
                    datetime!(2026-11-26 18:00:20 UTC),
                )),
            ),
            (
                "clamped to the chain's end",
                policy,
                datetime!(2026-11-25 20:00:00 UTC),
                Some((
                    datetime!(2026-11-25 17:59:40 UTC),
                    datetime!(2026-11-25 20:00:00 UTC),
                )),
            ),
            (
                "a shorter lifetime, no skew",
                ValidityPolicy {
                    lifetime: Duration::from_secs(3600),
                    clock_skew: Duration::ZERO,
                },
                far,
                Some((
                    datetime!(2026-11-25 18:00:00 UTC),
                    datetime!(2026-11-25 19:00:00 UTC),
                )),
            ),
            (
                "chain expired",
                policy,
                datetime!(2026-11-25 17:00:00 UTC),
                None,
            ),
            ("chain ends now", policy, now, None),
        ];
        for (name, policy, chain_end, expected) in cases {
            let got = leaf_validity(now, &policy, chain_end)
                .ok()
                .map(|validity| (validity.not_before, validity.not_after));
            assert_eq!(got, expected, "{name}");
        }
    }

    struct Fixture {
        root: GeneratedCa,
        issuer: GeneratedCa,
    }

    fn fixture() -> Fixture {
        let domain = IdentityDomain::default();
        let now = OffsetDateTime::now_utc();
        let root = generate_root(&domain, now, 365 * DAY).unwrap();
        let issuer = generate_issuer(&root, &domain, now, 30 * DAY).unwrap();
        Fixture { root, issuer }
    }

    fn load(
        certificate: &str,
        key: &str,
        anchors: &str,
    ) -> Result<CertificateAuthority, CredentialError> {
        CertificateAuthority::load(
            &IssuerCredentials {
                certificate_pem: certificate.as_bytes(),
                key_pem: key.as_bytes(),
                trust_anchors_pem: anchors.as_bytes(),
            },
            OffsetDateTime::now_utc(),
        )
    }

    #[test]
    fn load_table() {
        let good = fixture();
        let other = fixture();
        let now = OffsetDateTime::now_utc();
        let expired_issuer =
            generate_issuer(&good.root, &IdentityDomain::default(), now - 10 * DAY, DAY).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let not_a_ca = CertificateParams::new(vec!["leaf.example".to_string()])
            .unwrap()
            .signed_by(
                &leaf_key,
                &Issuer::from_ca_cert_pem(
                    &good.root.certificate_pem,
                    KeyPair::from_pem(&good.root.key_pem).unwrap(),
                )
                .unwrap(),
            )
            .unwrap()
            .pem();
        let leaf_key_pem = leaf_key.serialize_pem();
        let bundle = format!(
            "{}{}",
            other.root.certificate_pem, good.root.certificate_pem
        );
        let chain = format!(
            "{}{}",
            good.issuer.certificate_pem, good.root.certificate_pem
        );
        use CredentialFile::*;
        /// (name, crt.pem, key.pem, anchors, the file blamed).
        type Case<'a> = (
            &'a str,
            &'a str,
            &'a str,
            String,
            Result<(), CredentialFile>,
        );
        let cases: Vec<Case<'_>> = vec![
            (
                "good",
                &good.issuer.certificate_pem,
                &good.issuer.key_pem,
                good.root.certificate_pem.clone(),
                Ok(()),
            ),
            (
                "anchor in a bundle",
                &good.issuer.certificate_pem,
                &good.issuer.key_pem,
                bundle,
                Ok(()),
            ),
            (
                "root as its own issuer",
                &good.root.certificate_pem,
                &good.root.key_pem,
                good.root.certificate_pem.clone(),
                Ok(()),
            ),
            (
                "another mesh's anchor",
                &good.issuer.certificate_pem,
                &good.issuer.key_pem,
                other.root.certificate_pem.clone(),
                Err(IssuerCertificate),
            ),
            (
                "another issuer's key",
                &good.issuer.certificate_pem,
                &other.issuer.key_pem,
                good.root.certificate_pem.clone(),
                Err(IssuerKey),
            ),
            (
                "the chain in crt.pem",
                &chain,
                &good.issuer.key_pem,
                good.root.certificate_pem.clone(),
                Err(IssuerCertificate),
            ),
            (
                "not a CA",
                &not_a_ca,
                &leaf_key_pem,
                good.root.certificate_pem.clone(),
                Err(IssuerCertificate),
            ),
            (
                "expired issuer",
                &expired_issuer.certificate_pem,
                &expired_issuer.key_pem,
                good.root.certificate_pem.clone(),
                Err(IssuerCertificate),
            ),
            (
                "garbage certificate",
                "hello",
                &good.issuer.key_pem,
                good.root.certificate_pem.clone(),
                Err(IssuerCertificate),
            ),
            (
                "garbage key",
                &good.issuer.certificate_pem,
                "hello",
                good.root.certificate_pem.clone(),
                Err(IssuerKey),
            ),
            (
                "no anchors",
                &good.issuer.certificate_pem,
                &good.issuer.key_pem,
                String::new(),
                Err(TrustAnchors),
            ),
        ];
        for (name, certificate, key, anchors, expected) in cases {
            let got = load(certificate, key, &anchors)
                .map(|_| ())
                .map_err(|error| error.file);
            assert_eq!(got, expected, "{name}");
        }
    }

    /// The SEC1 `ECPrivateKey` inside a PKCS#8 key (its last element).
    fn sec1_of(pkcs8_pem: &str) -> Vec<u8> {
        let der = certificates_in_label(pkcs8_pem, "PRIVATE KEY");
        // SEQUENCE { INTEGER 0, SEQUENCE alg, OCTET STRING sec1 }: walk the
        // outer header, then two elements.
        let (_, outer) = split_element(&der);
        let (rest, _) = {
            let (rest, _version) = split_element(outer);
            split_element(rest)
        };
        let (_, sec1) = split_element(rest);
        sec1.to_vec()
    }

    /// (what follows, contents) of the element at the start of `input`.
    fn split_element(input: &[u8]) -> (&[u8], &[u8]) {
        let (length, header) = match input[1] {
            short if short < 0x80 => (usize::from(short), 2),
            long => {
                let count = usize::from(long & 0x7f);
                let length = input[2..2 + count]
                    .iter()
                    .fold(0usize, |length, byte| length << 8 | usize::from(*byte));
                (length, 2 + count)
            }
        };
        (&input[header + length..], &input[header..header + length])
    }

    fn certificates_in_label(pem: &str, label: &str) -> Vec<u8> {
        Pem::iter_from_buffer(pem.as_bytes())
            .map(Result::unwrap)
            .find(|block| block.label == label)
            .unwrap()
            .contents
    }

    #[test]
    fn a_sec1_issuer_key_is_read_as_cert_manager_writes_it() {
        use base64::Engine;
        let good = fixture();
        let sec1 = sec1_of(&good.issuer.key_pem);
        let body = base64::engine::general_purpose::STANDARD.encode(&sec1);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|line| std::str::from_utf8(line).unwrap())
            .collect();
        let sec1_pem = format!(
            "-----BEGIN EC PRIVATE KEY-----\n{}\n-----END EC PRIVATE KEY-----\n",
            lines.join("\n")
        );
        let authority = load(
            &good.issuer.certificate_pem,
            &sec1_pem,
            &good.root.certificate_pem,
        )
        .expect("a SEC1 key loads");
        assert_eq!(authority.chain_der().len(), 1);
        // Another issuer's SEC1 key is still refused as not the issuer's.
        let other = fixture();
        let other_body =
            base64::engine::general_purpose::STANDARD.encode(sec1_of(&other.issuer.key_pem));
        let other_pem =
            format!("-----BEGIN EC PRIVATE KEY-----\n{other_body}\n-----END EC PRIVATE KEY-----\n");
        assert_eq!(
            load(
                &good.issuer.certificate_pem,
                &other_pem,
                &good.root.certificate_pem
            )
            .map(|_| ())
            .map_err(|error| error.problem),
            Err(CredentialProblem::KeyMismatch)
        );
        let garbage = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
        assert!(matches!(
            load(
                &good.issuer.certificate_pem,
                garbage,
                &good.root.certificate_pem
            )
            .map(|_| ())
            .map_err(|error| error.problem),
            Err(CredentialProblem::BadKey(_))
        ));
    }

    #[test]
    fn a_chain_in_the_certificate_text_is_checked_link_by_link() {
        let domain = IdentityDomain::default();
        let now = OffsetDateTime::now_utc();
        let root = generate_root(&domain, now, 365 * DAY).unwrap();
        let intermediate = generate_issuer(&root, &domain, now, 60 * DAY).unwrap();
        let issuer = generate_issuer(&intermediate, &domain, now, 30 * DAY).unwrap();
        let der = |pem: &str| certificates_in(pem.as_bytes()).unwrap().remove(0);
        let load_chain = |certificate: String| {
            CertificateAuthority::load_chain(
                &IssuerCredentials {
                    certificate_pem: certificate.as_bytes(),
                    key_pem: issuer.key_pem.as_bytes(),
                    trust_anchors_pem: root.certificate_pem.as_bytes(),
                },
                now,
            )
        };
        /// (name, tls.crt, the chain sent with leaves or the problem).
        type Case = (&'static str, String, Result<Vec<Vec<u8>>, &'static str>);
        let cases: Vec<Case> = vec![
            (
                "issuer, intermediate",
                format!("{}{}", issuer.certificate_pem, intermediate.certificate_pem),
                Ok(vec![
                    der(&issuer.certificate_pem),
                    der(&intermediate.certificate_pem),
                ]),
            ),
            (
                "issuer, intermediate, root (the root copy is dropped)",
                format!(
                    "{}{}{}",
                    issuer.certificate_pem, intermediate.certificate_pem, root.certificate_pem
                ),
                Ok(vec![
                    der(&issuer.certificate_pem),
                    der(&intermediate.certificate_pem),
                ]),
            ),
            (
                "issuer alone: the root did not sign it",
                issuer.certificate_pem.clone(),
                Err("is not signed by any trust anchor"),
            ),
            (
                "reversed",
                format!("{}{}", intermediate.certificate_pem, issuer.certificate_pem),
                Err("the chain is out of order"),
            ),
        ];
        for (name, certificate, expected) in cases {
            let got = load_chain(certificate)
                .map(|authority| authority.chain_der().to_vec())
                .map_err(|error| error.to_string());
            match (got, expected) {
                (Ok(chain), Ok(expected)) => assert_eq!(chain, expected, "{name}"),
                (Err(error), Err(expected)) => {
                    assert!(error.contains(expected), "{name}: {error}");
                }
                (got, expected) => panic!("{name}: {got:?}, expected {expected:?}"),
            }
        }
        // The files' loader still wants the issuer alone.
        let files = CertificateAuthority::load(
            &IssuerCredentials {
                certificate_pem: format!(
                    "{}{}",
                    issuer.certificate_pem, intermediate.certificate_pem
                )
                .as_bytes(),
                key_pem: issuer.key_pem.as_bytes(),
                trust_anchors_pem: root.certificate_pem.as_bytes(),
            },
            now,
        );
        assert!(matches!(
            files.map_err(|error| error.problem),
            Err(CredentialProblem::SeveralCertificates(2))
        ));
    }

    #[test]
    fn issues_a_leaf_with_linkerd_names_and_usages() {
        let fixture = fixture();
        let authority = load(
            &fixture.issuer.certificate_pem,
            &fixture.issuer.key_pem,
            &fixture.root.certificate_pem,
        )
        .unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![WEB.to_string()]).unwrap();
        params.distinguished_name = DistinguishedName::new();
        let csr = parse_csr(params.serialize_request(&key).unwrap().der()).unwrap();
        let validity = leaf_validity(
            OffsetDateTime::now_utc(),
            &ValidityPolicy::default(),
            authority.chain_not_after(),
        )
        .unwrap();
        let first = authority.issue(&csr, WEB, WEB_SPIFFE, validity).unwrap();
        let second = authority.issue(&csr, WEB, WEB_SPIFFE, validity).unwrap();
        assert_eq!(first.intermediates, vec![authority.issuer_der().to_vec()]);

        let (_, leaf) = X509Certificate::from_der(&first.certificate).unwrap();
        let (_, other) = X509Certificate::from_der(&second.certificate).unwrap();
        assert_ne!(leaf.serial, other.serial, "serials are unique");
        let (_, issuer) = X509Certificate::from_der(authority.issuer_der()).unwrap();
        leaf.verify_signature(Some(issuer.public_key())).unwrap();
        assert_eq!(
            leaf.public_key().subject_public_key.data.as_ref(),
            key.public_key_raw()
        );
        assert!(!leaf.is_ca());
        let names: Vec<String> = leaf
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
            .iter()
            .map(|name| match name {
                GeneralName::DNSName(dns) => format!("dns:{dns}"),
                GeneralName::URI(uri) => format!("uri:{uri}"),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            names,
            vec![format!("dns:{WEB}"), format!("uri:{WEB_SPIFFE}")]
        );
        let usage = leaf.key_usage().unwrap().unwrap().value;
        assert!(usage.digital_signature() && usage.key_encipherment() && !usage.key_cert_sign());
        let extended = leaf.extended_key_usage().unwrap().unwrap().value;
        assert!(extended.server_auth && extended.client_auth);
        assert_eq!(
            leaf.signature_algorithm.algorithm,
            x509_parser::oid_registry::OID_SIG_ECDSA_WITH_SHA256
        );
        let not_before = leaf.validity().not_before.to_datetime();
        let not_after = leaf.validity().not_after.to_datetime();
        assert_eq!(not_after, first.not_after);
        assert_eq!(
            not_after - not_before,
            time::Duration::seconds(24 * 3600 + 40)
        );
    }
}
