//! Certificate signing requests: [`parse_csr`] reads one (DER as Linkerd's
//! wire carries it, or PEM) and verifies its signature; [`check_csr`] is the
//! pure decision whether it may be granted for a requested identity.
//!
//! A CSR is granted only when it names exactly the identity asked for:
//! exactly one DNS SAN, equal to the identity; a common name that is empty or
//! equal; no e-mail, IP, URI or other SANs; an ECDSA key (P-256 or P-384).
//! The leaf's names are then written by the authority, not copied from the CSR.

use rcgen::{CertificateSigningRequestParams, DnType, DnValue, PublicKeyData, SanType};

/// What a CSR asks for, reduced to what [`check_csr`] decides on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CsrSummary {
    /// The subject's common name, if any (as text).
    pub common_name: Option<String>,
    /// Its DNS SANs.
    pub dns_names: Vec<String>,
    /// Its e-mail SANs.
    pub email_names: usize,
    /// Its IP SANs.
    pub ip_addresses: usize,
    /// Its URI SANs.
    pub uris: usize,
    /// Its other-name SANs.
    pub other_names: usize,
    /// The kind of public key.
    pub key: CsrKey,
}

/// The kind of key a CSR carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CsrKey {
    /// ECDSA on P-256.
    EcdsaP256,
    /// ECDSA on P-384.
    EcdsaP384,
    /// Anything else (RSA, Ed25519, a curve/hash mismatch).
    #[default]
    Other,
}

/// A parsed CSR whose signature checked out.
#[derive(Debug)]
pub struct ParsedCsr {
    /// What rcgen read: the key to certify (and the requested extensions).
    pub request: CertificateSigningRequestParams,
    /// What the request asks for.
    pub summary: CsrSummary,
}

/// Why a CSR could not be read (the request is malformed: `InvalidArgument`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsrParseError {
    /// Looked like PEM but was not text.
    #[error("the certificate signing request is neither DER nor PEM")]
    NotDerOrPem,
    /// Not a PKCS#10 request, an unsupported extension, or a bad signature.
    #[error("invalid certificate signing request: {0}")]
    Invalid(String),
}

/// Why a well-formed CSR may not be granted (`FailedPrecondition`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsrError {
    /// Zero or several DNS SANs.
    #[error("the certificate signing request must name exactly one DNS name, found {0}")]
    DnsNameCount(usize),
    /// The DNS SAN is another identity.
    #[error(
        "the certificate signing request names {found:?}, not the requested identity {requested:?}"
    )]
    DnsNameMismatch {
        /// The identity asked for.
        requested: String,
        /// The CSR's DNS SAN.
        found: String,
    },
    /// The common name is set and differs from the identity.
    #[error(
        "the certificate signing request's common name {found:?} is not the requested identity {requested:?}"
    )]
    CommonNameMismatch {
        /// The identity asked for.
        requested: String,
        /// The CSR's common name.
        found: String,
    },
    /// E-mail, IP, URI or other-name SANs are present.
    #[error("the certificate signing request must not carry {0} names")]
    ForbiddenName(&'static str),
    /// The key is not ECDSA P-256/P-384.
    #[error("the certificate signing request's key must be ECDSA (P-256 or P-384)")]
    UnsupportedKey,
}

/// Reads a CSR: DER, or PEM when the bytes are PEM text. rcgen verifies the
/// request's signature, so the key in it is the requester's.
pub fn parse_csr(bytes: &[u8]) -> Result<ParsedCsr, CsrParseError> {
    let request = if bytes.starts_with(b"-----BEGIN") {
        let text = std::str::from_utf8(bytes).map_err(|_| CsrParseError::NotDerOrPem)?;
        CertificateSigningRequestParams::from_pem(text)
    } else {
        CertificateSigningRequestParams::from_der(&bytes.into())
    }
    .map_err(|error| CsrParseError::Invalid(error.to_string()))?;
    let summary = summarize(&request);
    Ok(ParsedCsr { request, summary })
}

fn summarize(request: &CertificateSigningRequestParams) -> CsrSummary {
    let mut summary = CsrSummary {
        common_name: request
            .params
            .distinguished_name
            .get(&DnType::CommonName)
            .map(dn_text),
        key: key_kind(request),
        ..CsrSummary::default()
    };
    for name in &request.params.subject_alt_names {
        match name {
            SanType::DnsName(dns) => summary.dns_names.push(dns.as_str().to_string()),
            SanType::Rfc822Name(_) => summary.email_names += 1,
            SanType::IpAddress(_) => summary.ip_addresses += 1,
            SanType::URI(_) => summary.uris += 1,
            _ => summary.other_names += 1,
        }
    }
    summary
}

/// The key's kind: rcgen names the algorithm from the CSR's signature, so the
/// point's length confirms the curve (uncompressed P-256: 65 bytes, P-384: 97).
fn key_kind(request: &CertificateSigningRequestParams) -> CsrKey {
    let algorithm = request.public_key.algorithm();
    let length = request.public_key.der_bytes().len();
    if algorithm == &rcgen::PKCS_ECDSA_P256_SHA256 && length == 65 {
        CsrKey::EcdsaP256
    } else if algorithm == &rcgen::PKCS_ECDSA_P384_SHA384 && length == 97 {
        CsrKey::EcdsaP384
    } else {
        CsrKey::Other
    }
}

fn dn_text(value: &DnValue) -> String {
    match value {
        DnValue::Utf8String(text) => text.clone(),
        DnValue::PrintableString(text) => text.as_str().to_string(),
        DnValue::Ia5String(text) => text.as_str().to_string(),
        // Encodings no proxy uses for a DNS name: never equal to an identity.
        other => format!("{other:?}"),
    }
}

/// Whether a CSR summarised as `summary` may be granted for `requested`
/// (Linkerd's order: DNS names, common name, other names; then the key).
pub fn check_csr(requested: &str, summary: &CsrSummary) -> Result<(), CsrError> {
    let [dns_name] = summary.dns_names.as_slice() else {
        return Err(CsrError::DnsNameCount(summary.dns_names.len()));
    };
    if dns_name != requested {
        return Err(CsrError::DnsNameMismatch {
            requested: requested.to_string(),
            found: dns_name.clone(),
        });
    }
    if let Some(common_name) = &summary.common_name
        && !common_name.is_empty()
        && common_name != requested
    {
        return Err(CsrError::CommonNameMismatch {
            requested: requested.to_string(),
            found: common_name.clone(),
        });
    }
    let forbidden = [
        (summary.email_names, "e-mail"),
        (summary.ip_addresses, "IP"),
        (summary.uris, "URI"),
        (summary.other_names, "other"),
    ];
    if let Some((_, kind)) = forbidden.iter().find(|(count, _)| *count > 0) {
        return Err(CsrError::ForbiddenName(kind));
    }
    match summary.key {
        CsrKey::EcdsaP256 | CsrKey::EcdsaP384 => Ok(()),
        CsrKey::Other => Err(CsrError::UnsupportedKey),
    }
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, KeyPair};

    use super::*;

    const WEB: &str = "web.shop.serviceaccount.identity.weft.cluster.local";

    fn good() -> CsrSummary {
        CsrSummary {
            common_name: None,
            dns_names: vec![WEB.to_string()],
            key: CsrKey::EcdsaP256,
            ..CsrSummary::default()
        }
    }

    #[test]
    fn check_csr_table() {
        type Edit = fn(&mut CsrSummary);
        let cases: [(&str, Edit, Result<(), CsrError>); 12] = [
            ("good", |_| {}, Ok(())),
            ("P-384 key", |csr| csr.key = CsrKey::EcdsaP384, Ok(())),
            (
                "common name equal",
                |csr| csr.common_name = Some(WEB.to_string()),
                Ok(()),
            ),
            (
                "common name empty",
                |csr| csr.common_name = Some(String::new()),
                Ok(()),
            ),
            (
                "no DNS name",
                |csr| csr.dns_names.clear(),
                Err(CsrError::DnsNameCount(0)),
            ),
            (
                "two DNS names",
                |csr| csr.dns_names.push(WEB.to_string()),
                Err(CsrError::DnsNameCount(2)),
            ),
            (
                "another identity",
                |csr| {
                    csr.dns_names =
                        vec!["db.shop.serviceaccount.identity.weft.cluster.local".into()]
                },
                Err(CsrError::DnsNameMismatch {
                    requested: WEB.into(),
                    found: "db.shop.serviceaccount.identity.weft.cluster.local".into(),
                }),
            ),
            (
                "other common name",
                |csr| csr.common_name = Some("db".into()),
                Err(CsrError::CommonNameMismatch {
                    requested: WEB.into(),
                    found: "db".into(),
                }),
            ),
            (
                "e-mail SAN",
                |csr| csr.email_names = 1,
                Err(CsrError::ForbiddenName("e-mail")),
            ),
            (
                "IP SAN",
                |csr| csr.ip_addresses = 1,
                Err(CsrError::ForbiddenName("IP")),
            ),
            (
                "URI SAN",
                |csr| csr.uris = 1,
                Err(CsrError::ForbiddenName("URI")),
            ),
            (
                "RSA or Ed25519 key",
                |csr| csr.key = CsrKey::Other,
                Err(CsrError::UnsupportedKey),
            ),
        ];
        for (name, edit, expected) in cases {
            let mut summary = good();
            edit(&mut summary);
            assert_eq!(check_csr(WEB, &summary), expected, "{name}");
        }
    }

    fn request(names: &[&str], key: &KeyPair) -> rcgen::CertificateSigningRequest {
        let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        // rcgen's default subject is "CN=rcgen self signed cert".
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.serialize_request(key).unwrap()
    }

    #[test]
    fn parses_der_and_pem() {
        let key = KeyPair::generate().unwrap();
        let csr = request(&[WEB], &key);
        let from_der = parse_csr(csr.der()).unwrap();
        let from_pem = parse_csr(csr.pem().unwrap().as_bytes()).unwrap();
        assert_eq!(from_der.summary, from_pem.summary);
        assert_eq!(from_der.summary.dns_names, vec![WEB.to_string()]);
        assert_eq!(from_der.summary.key, CsrKey::EcdsaP256);
        assert_eq!(check_csr(WEB, &from_der.summary), Ok(()));
    }

    #[test]
    fn reads_the_names_and_key_kind() {
        let mut with_default_subject = CertificateParams::new(vec![WEB.to_string()]).unwrap();
        with_default_subject.key_usages.clear();
        let key = KeyPair::generate().unwrap();
        let parsed =
            parse_csr(with_default_subject.serialize_request(&key).unwrap().der()).unwrap();
        assert_eq!(
            parsed.summary.common_name.as_deref(),
            Some("rcgen self signed cert")
        );
        let p384 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let parsed = parse_csr(request(&[WEB, "10.0.0.1"], &p384).der()).unwrap();
        assert_eq!(parsed.summary.key, CsrKey::EcdsaP384);
        assert_eq!(parsed.summary.ip_addresses, 1);
        let ed25519 = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let parsed = parse_csr(request(&[WEB], &ed25519).der()).unwrap();
        assert_eq!(
            check_csr(WEB, &parsed.summary),
            Err(CsrError::UnsupportedKey)
        );
    }

    #[test]
    fn rejects_garbage_and_tampering() {
        assert!(matches!(
            parse_csr(b"not a csr"),
            Err(CsrParseError::Invalid(_))
        ));
        let key = KeyPair::generate().unwrap();
        let mut der = request(&[WEB], &key).der().to_vec();
        // Flip a byte inside the DNS name: the signature no longer matches.
        let at = der.windows(3).position(|window| window == b"web").unwrap();
        der[at] = b'x';
        assert!(matches!(parse_csr(&der), Err(CsrParseError::Invalid(_))));
    }
}
