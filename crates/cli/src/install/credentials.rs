//! The identity credentials `weft install` writes: a trust anchor (root CA)
//! and an issuer (intermediate CA) signed by it, either generated here or
//! read from the user's files and checked before any manifest is printed.
//!
//! Generated credentials follow Linkerd's documented `step` recipe: ECDSA
//! P-256 keys, a trust anchor `root.<control-ns>.<trust-domain>` valid
//! 10 years, an issuer `identity.<control-ns>.<trust-domain>` (path length 0)
//! valid 1 year, both back-dated by the clock-skew allowance (20 s). The
//! trust anchor's key is not kept: it signs the issuer and is dropped.
//!
//! Given files are checked as the controller checks its issuer: one CA
//! certificate chaining to one of the anchors, the key (PKCS#8) matching it,
//! every certificate valid now. Errors name the file at fault.
//!
//! The certificates are generated and checked with weft-core's
//! [`pki`](weft_core::pki), as the controller's identity does; the wording
//! of a [`CredentialProblem`] here is `weft install`'s own ([`describe`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::KeyPair;
use time::OffsetDateTime;
pub use weft_core::pki::CLOCK_SKEW_ALLOWANCE;
pub use weft_core::pki::{CredentialFile, CredentialProblem};
use weft_core::pki::{certificates_in, check_ca, key_matches, parse_certificate, signs};

/// A generated trust anchor's lifetime (Linkerd's docs: `--not-after 87600h`).
pub const TRUST_ANCHOR_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);
/// A generated issuer's lifetime (Linkerd's docs: `--not-after 8760h`).
pub const ISSUER_LIFETIME: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// What the control plane's identity manifests carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityCredentials {
    /// The trust anchors, a PEM bundle (the ConfigMap, and the Secret's `ca.crt`).
    pub trust_anchors_pem: String,
    /// The issuer, unless an external issuer (cert-manager, or the user) writes its Secret.
    pub issuer: Option<IssuerCredentials>,
}

/// An issuer certificate and its key, PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuerCredentials {
    /// The issuer's certificate.
    pub certificate_pem: String,
    /// Its PKCS#8 key.
    pub key_pem: String,
}

impl std::fmt::Debug for IssuerCredentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("IssuerCredentials")
            .field("certificate_pem", &self.certificate_pem)
            .finish_non_exhaustive()
    }
}

/// Where the credentials come from (the `--identity-*` flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// Generate a trust anchor and an issuer.
    Generate,
    /// The user's trust anchors, issuer certificate and key.
    Files {
        /// `--identity-trust-anchors-file`.
        trust_anchors: PathBuf,
        /// `--identity-issuer-certificate-file`.
        issuer_certificate: PathBuf,
        /// `--identity-issuer-key-file`.
        issuer_key: PathBuf,
    },
    /// `--identity-external-issuer`: only the trust anchors; the issuer
    /// Secret is written by someone else.
    External {
        /// `--identity-trust-anchors-file`.
        trust_anchors: PathBuf,
    },
}

/// The names in generated certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityNames {
    /// The control plane's namespace (`weft`).
    pub control_namespace: String,
    /// The trust domain (`cluster.local`).
    pub trust_domain: String,
}

impl IdentityNames {
    /// `root.<control namespace>.<trust domain>`.
    pub fn trust_anchor_name(&self) -> String {
        format!("root.{}.{}", self.control_namespace, self.trust_domain)
    }

    /// `identity.<control namespace>.<trust domain>`.
    pub fn issuer_name(&self) -> String {
        format!("identity.{}.{}", self.control_namespace, self.trust_domain)
    }
}

impl Default for IdentityNames {
    fn default() -> Self {
        Self {
            control_namespace: weft_core::cluster::CONTROL_PLANE_NAMESPACE.to_string(),
            trust_domain: weft_core::names::DEFAULT_TRUST_DOMAIN.to_string(),
        }
    }
}

/// How `weft install` words a credential problem (the messages its users
/// and tests know; the controller words the same problems its own way).
pub fn describe(problem: &CredentialProblem) -> String {
    match problem {
        CredentialProblem::NoCertificate => "no PEM CERTIFICATE block".to_string(),
        CredentialProblem::NotPem(reason) => format!("not PEM: {reason}"),
        CredentialProblem::BadCertificate(reason) => format!("bad certificate: {reason}"),
        CredentialProblem::SeveralCertificates(count) => {
            format!("{count} certificates, expected exactly one (the issuer)")
        }
        CredentialProblem::NotCa(subject) => {
            format!("{subject} is not a CA certificate (basicConstraints CA:TRUE)")
        }
        CredentialProblem::NotValidNow {
            subject,
            not_before,
            not_after,
        } => format!("{subject} is valid from {not_before} to {not_after}, not now"),
        CredentialProblem::Untrusted(subject) => {
            format!("{subject} is not signed by any of the trust anchors")
        }
        CredentialProblem::BadKey(reason) => format!("bad key: {reason}"),
        CredentialProblem::KeyMismatch => {
            "the key does not match the issuer certificate".to_string()
        }
        // Only the controller's chain loader finds this one.
        CredentialProblem::BrokenChain { .. } => problem.to_string(),
    }
}

/// Why the credentials could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file's content is unusable.
    #[error("{path}: {}", describe(.problem))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: CredentialProblem,
    },
    /// The issuer certificate is not signed by any of the trust anchors.
    #[error(
        "{certificate}: {subject} is not signed by any of the trust anchors in {trust_anchors}"
    )]
    Untrusted {
        /// The issuer certificate's file.
        certificate: PathBuf,
        /// Its subject.
        subject: String,
        /// The trust anchors' file.
        trust_anchors: PathBuf,
    },
    /// Generating keys or certificates failed.
    #[error("cannot create the identity certificates: {0}")]
    Generate(String),
}

/// The credentials `source` describes, checked at `now`.
pub fn obtain(
    source: &CredentialSource,
    names: &IdentityNames,
    now: OffsetDateTime,
) -> Result<IdentityCredentials, CredentialError> {
    match source {
        CredentialSource::Generate => generate(names, now),
        CredentialSource::Files {
            trust_anchors,
            issuer_certificate,
            issuer_key,
        } => {
            let trust_anchors_pem = read(trust_anchors)?;
            let certificate_pem = read(issuer_certificate)?;
            let key_pem = read(issuer_key)?;
            check_issuer(&trust_anchors_pem, &certificate_pem, &key_pem, now).map_err(
                |(file, problem)| {
                    if let CredentialProblem::Untrusted(subject) = problem {
                        return CredentialError::Untrusted {
                            certificate: issuer_certificate.clone(),
                            subject,
                            trust_anchors: trust_anchors.clone(),
                        };
                    }
                    let path = match file {
                        CredentialFile::TrustAnchors => trust_anchors,
                        CredentialFile::IssuerCertificate => issuer_certificate,
                        CredentialFile::IssuerKey => issuer_key,
                    };
                    CredentialError::Invalid {
                        path: path.clone(),
                        problem,
                    }
                },
            )?;
            Ok(IdentityCredentials {
                trust_anchors_pem,
                issuer: Some(IssuerCredentials {
                    certificate_pem,
                    key_pem,
                }),
            })
        }
        CredentialSource::External { trust_anchors } => {
            let trust_anchors_pem = read(trust_anchors)?;
            check_trust_anchors(&trust_anchors_pem, now).map_err(|problem| {
                CredentialError::Invalid {
                    path: trust_anchors.clone(),
                    problem,
                }
            })?;
            Ok(IdentityCredentials {
                trust_anchors_pem,
                issuer: None,
            })
        }
    }
}

fn read(path: &Path) -> Result<String, CredentialError> {
    std::fs::read_to_string(path).map_err(|source| CredentialError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// A new trust anchor and an issuer signed by it, valid from `now`.
pub fn generate(
    names: &IdentityNames,
    now: OffsetDateTime,
) -> Result<IdentityCredentials, CredentialError> {
    let generate_error = |error: rcgen::Error| CredentialError::Generate(error.to_string());
    let anchor =
        weft_core::pki::generate_root(&names.trust_anchor_name(), now, TRUST_ANCHOR_LIFETIME)
            .map_err(generate_error)?;
    let issuer =
        weft_core::pki::generate_issuer(&anchor, &names.issuer_name(), now, ISSUER_LIFETIME)
            .map_err(generate_error)?;
    // The anchor's key goes no further: it has signed the issuer.
    Ok(IdentityCredentials {
        trust_anchors_pem: anchor.certificate_pem,
        issuer: Some(IssuerCredentials {
            certificate_pem: issuer.certificate_pem,
            key_pem: issuer.key_pem,
        }),
    })
}

/// Checks an issuer against the trust anchors at `now`: exactly one CA
/// certificate, signed by one of the anchors (each a CA valid now), its
/// PKCS#8 key matching it. The error says which credential is at fault.
pub fn check_issuer(
    trust_anchors_pem: &str,
    certificate_pem: &str,
    key_pem: &str,
    now: OffsetDateTime,
) -> Result<(), (CredentialFile, CredentialProblem)> {
    use CredentialFile::{IssuerCertificate, IssuerKey, TrustAnchors};
    let anchor_ders =
        certificates_in(trust_anchors_pem.as_bytes()).map_err(|problem| (TrustAnchors, problem))?;
    let anchors = anchor_ders
        .iter()
        .map(|der| parse_certificate(der))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|problem| (TrustAnchors, problem))?;
    let issuer_ders = certificates_in(certificate_pem.as_bytes())
        .map_err(|problem| (IssuerCertificate, problem))?;
    let issuer_der = match issuer_ders.as_slice() {
        [one] => one,
        several => {
            return Err((
                IssuerCertificate,
                CredentialProblem::SeveralCertificates(several.len()),
            ));
        }
    };
    let issuer = parse_certificate(issuer_der).map_err(|problem| (IssuerCertificate, problem))?;
    check_ca(&issuer, now).map_err(|problem| (IssuerCertificate, problem))?;
    let anchor = anchors
        .iter()
        .find(|anchor| signs(anchor, &issuer))
        .ok_or_else(|| {
            (
                IssuerCertificate,
                CredentialProblem::Untrusted(issuer.subject().to_string()),
            )
        })?;
    check_ca(anchor, now).map_err(|problem| (TrustAnchors, problem))?;
    let key = KeyPair::from_pem(key_pem).map_err(|error| {
        let hint = if key_pem.contains("EC PRIVATE KEY") {
            " (a SEC1 \"EC PRIVATE KEY\"; convert it to PKCS#8 with `openssl pkcs8 -topk8 -nocrypt`)"
        } else {
            ""
        };
        (IssuerKey, CredentialProblem::BadKey(format!("{error}{hint}")))
    })?;
    if !key_matches(&key, &issuer) {
        return Err((IssuerKey, CredentialProblem::KeyMismatch));
    }
    Ok(())
}

/// Checks a trust-anchor bundle alone (external issuer): CA certificates, valid now.
pub fn check_trust_anchors(
    trust_anchors_pem: &str,
    now: OffsetDateTime,
) -> Result<(), CredentialProblem> {
    for der in certificates_in(trust_anchors_pem.as_bytes())? {
        check_ca(&parse_certificate(&der)?, now)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use rcgen::CertificateParams;
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    fn generated() -> (IdentityCredentials, IssuerCredentials) {
        let credentials = generate(&IdentityNames::default(), NOW).unwrap();
        let issuer = credentials.issuer.clone().unwrap();
        (credentials, issuer)
    }

    fn leaf_pem() -> String {
        let key = KeyPair::generate().unwrap();
        CertificateParams::new(vec!["leaf.example".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap()
            .pem()
    }

    #[test]
    fn generated_credentials_chain_and_name_the_control_plane() {
        let (credentials, issuer) = generated();
        check_issuer(
            &credentials.trust_anchors_pem,
            &issuer.certificate_pem,
            &issuer.key_pem,
            NOW,
        )
        .unwrap();
        let ders = certificates_in(issuer.certificate_pem.as_bytes()).unwrap();
        let certificate = parse_certificate(&ders[0]).unwrap();
        assert_eq!(
            certificate.subject().to_string(),
            "CN=identity.weft.cluster.local"
        );
        assert_eq!(
            certificate.issuer().to_string(),
            "CN=root.weft.cluster.local"
        );
        let not_after = certificate.validity().not_after.to_datetime();
        assert_eq!(not_after, NOW + ISSUER_LIFETIME);
        let anchor_ders = certificates_in(credentials.trust_anchors_pem.as_bytes()).unwrap();
        let anchor = parse_certificate(&anchor_ders[0]).unwrap();
        assert_eq!(
            anchor.validity().not_after.to_datetime(),
            NOW + TRUST_ANCHOR_LIFETIME
        );
        assert_eq!(
            anchor.validity().not_before.to_datetime(),
            NOW - CLOCK_SKEW_ALLOWANCE
        );
    }

    #[test]
    fn check_issuer_table() {
        use CredentialFile::{IssuerCertificate, IssuerKey, TrustAnchors};
        let (credentials, issuer) = generated();
        let (other, other_issuer) = generated();
        let anchors = credentials.trust_anchors_pem.as_str();
        let both_anchors = format!("{}{}", other.trust_anchors_pem, anchors);
        let two_certificates = format!("{}{}", issuer.certificate_pem, issuer.certificate_pem);
        let leaf = leaf_pem();
        let sec1 = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
        let later = NOW + ISSUER_LIFETIME + Duration::from_secs(1);
        let earlier = NOW - Duration::from_secs(3600);
        type Expected = Option<(CredentialFile, fn(&CredentialProblem) -> bool)>;
        let cases: Vec<(&str, &str, &str, &str, OffsetDateTime, Expected)> = vec![
            (
                "good",
                anchors,
                &issuer.certificate_pem,
                &issuer.key_pem,
                NOW,
                None,
            ),
            (
                "anchor among several",
                &both_anchors,
                &issuer.certificate_pem,
                &issuer.key_pem,
                NOW,
                None,
            ),
            (
                "anchors not PEM",
                "hello",
                &issuer.certificate_pem,
                &issuer.key_pem,
                NOW,
                Some((TrustAnchors, |p| *p == CredentialProblem::NoCertificate)),
            ),
            (
                "issuer empty",
                anchors,
                "",
                &issuer.key_pem,
                NOW,
                Some((IssuerCertificate, |p| {
                    *p == CredentialProblem::NoCertificate
                })),
            ),
            (
                "two issuer certificates",
                anchors,
                &two_certificates,
                &issuer.key_pem,
                NOW,
                Some((IssuerCertificate, |p| {
                    *p == CredentialProblem::SeveralCertificates(2)
                })),
            ),
            (
                "issuer of another anchor",
                anchors,
                &other_issuer.certificate_pem,
                &other_issuer.key_pem,
                NOW,
                Some((IssuerCertificate, |p| {
                    matches!(p, CredentialProblem::Untrusted(_))
                })),
            ),
            (
                "issuer not a CA",
                anchors,
                &leaf,
                &issuer.key_pem,
                NOW,
                Some((IssuerCertificate, |p| {
                    matches!(p, CredentialProblem::NotCa(_))
                })),
            ),
            (
                "another key",
                anchors,
                &issuer.certificate_pem,
                &other_issuer.key_pem,
                NOW,
                Some((IssuerKey, |p| *p == CredentialProblem::KeyMismatch)),
            ),
            (
                "SEC1 key",
                anchors,
                &issuer.certificate_pem,
                sec1,
                NOW,
                Some((
                    IssuerKey,
                    |p| matches!(p, CredentialProblem::BadKey(reason) if reason.contains("PKCS#8")),
                )),
            ),
            (
                "issuer expired",
                anchors,
                &issuer.certificate_pem,
                &issuer.key_pem,
                later,
                Some((IssuerCertificate, |p| {
                    matches!(p, CredentialProblem::NotValidNow { .. })
                })),
            ),
            (
                "not yet valid",
                anchors,
                &issuer.certificate_pem,
                &issuer.key_pem,
                earlier,
                Some((IssuerCertificate, |p| {
                    matches!(p, CredentialProblem::NotValidNow { .. })
                })),
            ),
        ];
        for (name, anchors, certificate, key, now, expected) in cases {
            let result = check_issuer(anchors, certificate, key, now);
            match (result, expected) {
                (Ok(()), None) => {}
                (Err((file, problem)), Some((expected_file, accept))) => {
                    assert_eq!(file, expected_file, "{name}: {problem}");
                    assert!(accept(&problem), "{name}: {problem}");
                }
                (result, _) => panic!("{name}: unexpected {result:?}"),
            }
        }
    }

    /// `weft install`'s wording, which differs from the controller's.
    #[test]
    fn invalid_files_are_worded_for_install() {
        let cases = [
            (CredentialProblem::NoCertificate, "no PEM CERTIFICATE block"),
            (CredentialProblem::NotPem("eof".into()), "not PEM: eof"),
            (
                CredentialProblem::BadCertificate("eof".into()),
                "bad certificate: eof",
            ),
            (
                CredentialProblem::SeveralCertificates(2),
                "2 certificates, expected exactly one (the issuer)",
            ),
            (
                CredentialProblem::NotCa("CN=leaf".into()),
                "CN=leaf is not a CA certificate (basicConstraints CA:TRUE)",
            ),
            (
                CredentialProblem::NotValidNow {
                    subject: "CN=root".into(),
                    not_before: NOW,
                    not_after: NOW,
                },
                "CN=root is valid from 2026-06-01 12:00:00.0 +00:00:00 to 2026-06-01 12:00:00.0 +00:00:00, not now",
            ),
            (
                CredentialProblem::Untrusted("CN=issuer".into()),
                "CN=issuer is not signed by any of the trust anchors",
            ),
            (CredentialProblem::BadKey("eof".into()), "bad key: eof"),
            (
                CredentialProblem::KeyMismatch,
                "the key does not match the issuer certificate",
            ),
        ];
        for (problem, expected) in cases {
            let error = CredentialError::Invalid {
                path: PathBuf::from("issuer.crt"),
                problem,
            };
            assert_eq!(error.to_string(), format!("issuer.crt: {expected}"));
        }
    }

    #[test]
    fn trust_anchors_alone_must_be_current_cas() {
        let (credentials, _) = generated();
        check_trust_anchors(&credentials.trust_anchors_pem, NOW).unwrap();
        assert!(matches!(
            check_trust_anchors(&leaf_pem(), OffsetDateTime::now_utc()),
            Err(CredentialProblem::NotCa(_))
        ));
        assert_eq!(
            check_trust_anchors("", NOW),
            Err(CredentialProblem::NoCertificate)
        );
    }
}
