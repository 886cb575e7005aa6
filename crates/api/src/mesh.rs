//! What the controller knows of the mesh: `GET /api/version`,
//! `/api/workloads`, `/api/identity`, `/api/mesh` and `/api/sd`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `GET /api/version`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "strict", serde(deny_unknown_fields))]
pub struct Version {
    /// The controller's version.
    pub version: String,
    /// Where golden metrics come from: `scrape` or `prometheus`.
    pub metrics_source: String,
}

/// `GET /api/workloads`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "strict", serde(deny_unknown_fields))]
pub struct WorkloadsResponse {
    /// Every workload, sorted by namespace and name.
    pub workloads: Vec<WorkloadInfo>,
}

/// A workload and, when meshed, its proxy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "strict", serde(deny_unknown_fields))]
pub struct WorkloadInfo {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its service account.
    pub service_account: String,
    /// Its identity, when identity is on.
    pub identity: Option<String>,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its addresses.
    pub addresses: Vec<String>,
    /// Whether it has a proxy.
    pub meshed: bool,
    /// Its proxy's listeners, when meshed.
    pub proxy: Option<ProxyAddresses>,
    /// The last scrape of its proxy (none yet, or Prometheus scrapes).
    pub scrape: Option<Scrape>,
    /// When its proxy's certificate expires (Unix seconds), from the proxy's
    /// `identity_cert_expiration_timestamp_seconds`.
    pub cert_expiry_unix: Option<f64>,
}

/// A proxy's listeners (`host:port`; `None` when the workload has no address).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "strict", serde(deny_unknown_fields))]
pub struct ProxyAddresses {
    /// Admin (`/metrics`, `/ready`).
    pub admin: Option<String>,
    /// Tap.
    pub tap: Option<String>,
    /// Inbound.
    pub inbound: Option<String>,
}

/// The last scrape of a proxy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "strict", serde(deny_unknown_fields))]
pub struct Scrape {
    /// Whether it answered.
    pub up: bool,
    /// When (Unix seconds).
    pub last_unix: Option<f64>,
    /// Why not, when not.
    pub error: Option<String>,
}

/// `GET /api/identity`. Identity off: only `enabled` (false) and `issuer`
/// (null); on, with no issuer loaded yet: `trust_domain` too.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "strict", serde(deny_unknown_fields))]
pub struct IdentityInfo {
    /// Whether the Identity service runs.
    pub enabled: bool,
    /// The trust domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_domain: Option<String>,
    /// The trust anchors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trust_anchors: Vec<Certificate>,
    /// The issuer.
    pub issuer: Option<IssuerCertificate>,
    /// Lifetime of issued leaf certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_lifetime_seconds: Option<u64>,
}

/// A certificate's subject and validity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "strict", serde(deny_unknown_fields))]
pub struct Certificate {
    /// Its subject (`CN=root.weft.cluster.local`).
    pub subject: String,
    /// Valid from (Unix seconds).
    pub not_before_unix: i64,
    /// Valid until (Unix seconds).
    pub not_after_unix: i64,
}

/// The issuer certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "strict", serde(deny_unknown_fields))]
pub struct IssuerCertificate {
    /// Its subject.
    pub subject: String,
    /// Valid from (Unix seconds).
    pub not_before_unix: i64,
    /// Valid until (Unix seconds).
    pub not_after_unix: i64,
    /// Whether a trust anchor signed it.
    pub issued_by_anchor: bool,
}

/// `GET /api/mesh`: the mesh file and its last load.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "strict", serde(deny_unknown_fields))]
pub struct MeshStatus {
    /// The mesh file.
    pub path: String,
    /// Whether its newest version loaded (false: the last good one serves).
    pub valid: bool,
    /// Why the newest did not, when not.
    pub error: Option<String>,
    /// When it last loaded (Unix seconds).
    pub last_load_unix: Option<f64>,
}

/// One target group of `GET /api/sd` (Prometheus `http_sd_configs`; the
/// answer is an array of them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "strict", serde(deny_unknown_fields))]
pub struct TargetGroup {
    /// The proxy's admin address.
    pub targets: Vec<String>,
    /// `namespace`, `workload`, `serviceaccount` and the workload's labels
    /// (keys as Prometheus accepts them).
    pub labels: BTreeMap<String, String>,
}
