//! The weft-identity decisions: the trust-anchor ConfigMap and issuer
//! Secret are there and parse, use ECDSA P-256 or RSA, are valid now and
//! for 60 more days (a warning), and the issuer is signed by an anchor.

use weft_core::cluster::{ISSUER_SECRET, TRUST_ANCHORS_CONFIGMAP, TRUST_ANCHORS_KEY};

use super::certificates::{CertificateFacts, parse_bundle, signed_by};
use super::state::{ClusterState, ControlPlaneState};
use super::verdict::{Verdict, control_plane};
use crate::check::{WARNING_WINDOW, human_duration};

/// The parsed identity configuration.
pub struct Identity {
    /// The trust anchors.
    pub anchors: Vec<CertificateFacts>,
    /// The issuer certificate (the first of `tls.crt`; any others are its chain).
    pub issuer: CertificateFacts,
}

/// The trust anchors of the ConfigMap, parsed.
pub fn trust_anchors(control: &ControlPlaneState) -> Result<Vec<CertificateFacts>, String> {
    let data = match &control.trust_anchors_configmap {
        Err(error) => return Err(error.clone()),
        Ok(None) => return Err(format!("ConfigMap {TRUST_ANCHORS_CONFIGMAP} not found")),
        Ok(Some(data)) => data,
    };
    let pem = data.get(TRUST_ANCHORS_KEY).ok_or_else(|| {
        format!("ConfigMap {TRUST_ANCHORS_CONFIGMAP} has no key {TRUST_ANCHORS_KEY}")
    })?;
    parse_bundle(pem.as_bytes()).map_err(|error| {
        format!("ConfigMap {TRUST_ANCHORS_CONFIGMAP} key {TRUST_ANCHORS_KEY}: {error}")
    })
}

/// The ConfigMap's anchors and the Secret's issuer, or what is wrong.
pub fn identity(control: &ControlPlaneState) -> Result<Identity, String> {
    let anchors = trust_anchors(control)?;
    let data = match &control.issuer_secret {
        Err(error) => return Err(error.clone()),
        Ok(None) => return Err(format!("Secret {ISSUER_SECRET} not found")),
        Ok(Some(data)) => data,
    };
    for key in ["tls.crt", "tls.key"] {
        if data.get(key).is_none_or(Vec::is_empty) {
            return Err(format!("Secret {ISSUER_SECRET} has no {key}"));
        }
    }
    let mut issuer = parse_bundle(&data["tls.crt"])
        .map_err(|error| format!("Secret {ISSUER_SECRET} key tls.crt: {error}"))?;
    // parse_bundle returns at least one certificate.
    let issuer = issuer.swap_remove(0);
    Ok(Identity { anchors, issuer })
}

fn with_identity(state: &ClusterState, decide: impl FnOnce(&Identity) -> Verdict) -> Verdict {
    control_plane(state, |control| match identity(control) {
        Ok(identity) => decide(&identity),
        // "certificate config is valid" already said why.
        Err(_) => Verdict::Skip,
    })
}

fn supported_algorithms(certificates: &[CertificateFacts]) -> Verdict {
    let unsupported: Vec<String> = certificates
        .iter()
        .filter(|certificate| !certificate.algorithm.supported())
        .map(|certificate| format!("{} uses {}", certificate.subject, certificate.algorithm))
        .collect();
    if unsupported.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail(format!(
            "{} (supported: ECDSA P-256, RSA)",
            unsupported.join("; ")
        ))
    }
}

fn time_valid(certificates: &[CertificateFacts], now: i64) -> Verdict {
    let invalid: Vec<String> = certificates
        .iter()
        .filter_map(|certificate| {
            if now < certificate.not_before_unix {
                Some(format!(
                    "{} is not valid before {} from now",
                    certificate.subject,
                    human_duration((certificate.not_before_unix - now) as f64)
                ))
            } else if now > certificate.not_after_unix {
                Some(format!(
                    "{} expired {} ago",
                    certificate.subject,
                    human_duration((now - certificate.not_after_unix) as f64)
                ))
            } else {
                None
            }
        })
        .collect();
    if invalid.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail(invalid.join("; "))
    }
}

fn not_expiring_soon(certificates: &[CertificateFacts], now: i64) -> Verdict {
    let window = WARNING_WINDOW.as_secs() as i64;
    // One is invalid already: "within its validity period" said so, and a
    // √ here would read as all being well.
    if certificates.iter().any(|certificate| {
        !(certificate.not_before_unix..=certificate.not_after_unix).contains(&now)
    }) {
        return Verdict::Skip;
    }
    let expiring: Vec<String> = certificates
        .iter()
        .filter(|certificate| certificate.not_after_unix - now < window)
        .map(|certificate| {
            format!(
                "{} expires in {}",
                certificate.subject,
                human_duration((certificate.not_after_unix - now) as f64)
            )
        })
        .collect();
    if expiring.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Warn(expiring.join("; "))
    }
}

fn issuer_signed_by_anchor(identity: &Identity) -> Verdict {
    let issuer = &identity.issuer;
    if identity
        .anchors
        .iter()
        .any(|anchor| signed_by(issuer, anchor))
    {
        Verdict::Pass
    } else {
        Verdict::Fail(format!(
            "issuer {} is not signed by any trust anchor in {}",
            issuer.subject, TRUST_ANCHORS_CONFIGMAP
        ))
    }
}

/// The ConfigMap's anchors and the Secret's issuer parse.
pub fn config_valid(state: &ClusterState) -> Verdict {
    control_plane(state, |control| {
        identity(control).map_or_else(Verdict::Fail, |_| Verdict::Pass)
    })
}

/// Every anchor uses ECDSA P-256 or RSA.
pub fn anchors_supported(state: &ClusterState) -> Verdict {
    with_identity(state, |identity| supported_algorithms(&identity.anchors))
}

/// Every anchor is valid now.
pub fn anchors_time_valid(state: &ClusterState) -> Verdict {
    with_identity(state, |identity| {
        time_valid(&identity.anchors, state.now_unix)
    })
}

/// Every anchor is valid for 60 more days (else a warning).
pub fn anchors_not_expiring_soon(state: &ClusterState) -> Verdict {
    with_identity(state, |identity| {
        not_expiring_soon(&identity.anchors, state.now_unix)
    })
}

/// The issuer uses ECDSA P-256 or RSA.
pub fn issuer_supported(state: &ClusterState) -> Verdict {
    with_identity(state, |identity| {
        supported_algorithms(std::slice::from_ref(&identity.issuer))
    })
}

/// The issuer is valid now.
pub fn issuer_time_valid(state: &ClusterState) -> Verdict {
    with_identity(state, |identity| {
        time_valid(std::slice::from_ref(&identity.issuer), state.now_unix)
    })
}

/// The issuer is valid for 60 more days (else a warning).
pub fn issuer_not_expiring_soon(state: &ClusterState) -> Verdict {
    with_identity(state, |identity| {
        not_expiring_soon(std::slice::from_ref(&identity.issuer), state.now_unix)
    })
}

/// An anchor signed the issuer.
pub fn issued_by_anchor(state: &ClusterState) -> Verdict {
    with_identity(state, issuer_signed_by_anchor)
}
