//! `GET /api/identity`: the trust domain, the trust anchors and the issuer
//! (subjects and validity), and the leaf lifetime.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use weft_api::{Certificate, IdentityInfo, IssuerCertificate};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::WebState;

/// Subject and validity of a DER certificate.
fn certificate_summary(der: &[u8]) -> Option<(String, i64, i64, X509Certificate<'_>)> {
    let (_, certificate) = X509Certificate::from_der(der).ok()?;
    let validity = certificate.validity();
    Some((
        certificate.subject().to_string(),
        validity.not_before.timestamp(),
        validity.not_after.timestamp(),
        certificate,
    ))
}

/// `GET /api/identity`.
pub(super) async fn identity(State(state): State<Arc<WebState>>) -> Json<IdentityInfo> {
    let (Some(domain), Some(authority)) = (&state.identity_domain, &state.identity_authority)
    else {
        return Json(IdentityInfo::default());
    };
    let Some(current) = authority.current() else {
        return Json(IdentityInfo {
            enabled: true,
            trust_domain: Some(domain.trust_domain.to_string()),
            ..IdentityInfo::default()
        });
    };
    let anchors: Vec<_> = current
        .trust_anchors_der()
        .iter()
        .filter_map(|der| certificate_summary(der))
        .collect();
    let issuer =
        certificate_summary(current.issuer_der()).map(|(subject, from, to, certificate)| {
            let issued_by_anchor = anchors.iter().any(|(_, _, _, anchor)| {
                certificate
                    .verify_signature(Some(anchor.public_key()))
                    .is_ok()
            });
            IssuerCertificate {
                subject,
                not_before_unix: from,
                not_after_unix: to,
                issued_by_anchor,
            }
        });
    let trust_anchors = anchors
        .into_iter()
        .map(|(subject, from, to, _)| Certificate {
            subject,
            not_before_unix: from,
            not_after_unix: to,
        })
        .collect();
    Json(IdentityInfo {
        enabled: true,
        trust_domain: Some(domain.trust_domain.to_string()),
        trust_anchors,
        issuer,
        leaf_lifetime_seconds: state.leaf_lifetime.map(|lifetime| lifetime.as_secs()),
    })
}
