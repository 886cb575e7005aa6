//! The authentication kinds an AuthorizationPolicy requires
//! (`policy.linkerd.io/v1alpha1`): `MeshTLSAuthentication` (client
//! identities) and `NetworkAuthentication` (client networks).
//!
//! ```yaml
//! kind: MeshTLSAuthentication
//! spec:
//!   identities: ["web.shop.serviceaccount.identity.weft.cluster.local", "*.batch.serviceaccount.identity.weft.cluster.local"]
//!   # or identityRefs: [{kind: ServiceAccount, name: web}, {kind: Namespace, name: batch}]
//! ---
//! kind: NetworkAuthentication
//! spec:
//!   networks: [{cidr: 10.0.0.0/8, except: [10.0.9.0/24]}]
//! ```

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

use super::FieldError;
use super::network::Cidr;

/// The API version of both kinds.
pub const API_VERSION: &str = "policy.linkerd.io/v1alpha1";
/// The kind of [`MeshTLSAuthentication`].
pub const MESH_TLS_KIND: &str = "MeshTLSAuthentication";
/// The kind of [`NetworkAuthentication`].
pub const NETWORK_KIND: &str = "NetworkAuthentication";

/// Client identities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(clippy::upper_case_acronyms)]
pub struct MeshTLSAuthentication {
    /// `policy.linkerd.io/v1alpha1`.
    pub api_version: String,
    /// `MeshTLSAuthentication`.
    pub kind: String,
    /// Name and namespace.
    pub metadata: ObjectMeta,
    /// The identities.
    pub spec: MeshTLSAuthenticationSpec,
}

/// The body of a MeshTLSAuthentication: `identities` or `identityRefs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MeshTLSAuthenticationSpec {
    /// Identity names; `*` is any identity, `*.suffix` any identity ending in `.suffix`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identities: Option<Vec<String>>,
    /// ServiceAccounts (one identity each) and Namespaces (every identity of the namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_refs: Option<Vec<IdentityRef>>,
}

/// A ServiceAccount or Namespace whose identities are admitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdentityRef {
    /// Empty or `core`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `ServiceAccount` or `Namespace`.
    pub kind: String,
    /// The account's or namespace's name.
    pub name: String,
    /// A ServiceAccount's namespace (the authentication's when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// An identity pattern, checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdentityMatch {
    /// Exactly this name.
    Exact(String),
    /// Any name ending in these labels; no labels: any identity.
    Suffix(Vec<String>),
}

impl IdentityMatch {
    /// Parses `name`, `*` or `*.suffix`.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text == "*" {
            return Ok(IdentityMatch::Suffix(Vec::new()));
        }
        if let Some(suffix) = text.strip_prefix("*.") {
            let parts: Vec<String> = suffix.split('.').map(str::to_string).collect();
            if parts.iter().any(String::is_empty) {
                return Err(format!("{text:?} has an empty label"));
            }
            return Ok(IdentityMatch::Suffix(parts));
        }
        if text.is_empty() || text.contains('*') || text.split('.').any(str::is_empty) {
            return Err(format!(
                "{text:?} is not an identity (a DNS name, `*` or `*.suffix`)"
            ));
        }
        Ok(IdentityMatch::Exact(text.to_string()))
    }
}

impl std::fmt::Display for IdentityMatch {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IdentityMatch::Exact(name) => formatter.write_str(name),
            IdentityMatch::Suffix(parts) if parts.is_empty() => formatter.write_str("*"),
            IdentityMatch::Suffix(parts) => write!(formatter, "*.{}", parts.join(".")),
        }
    }
}

impl MeshTLSAuthentication {
    /// Its name.
    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or_default()
    }

    /// Checks the identities and refs: one of the two lists, not empty.
    pub fn validate(&self) -> Result<(), FieldError> {
        let identities = self.spec.identities.as_deref().unwrap_or_default();
        let refs = self.spec.identity_refs.as_deref().unwrap_or_default();
        if identities.is_empty() && refs.is_empty() {
            return Err(FieldError::new(
                "spec.identities",
                "give at least one identity (or spec.identityRefs)",
            ));
        }
        if !identities.is_empty() && !refs.is_empty() {
            return Err(FieldError::new(
                "spec.identityRefs",
                "give either identities or identityRefs, not both",
            ));
        }
        for (index, identity) in identities.iter().enumerate() {
            IdentityMatch::parse(identity)
                .map_err(|reason| FieldError::new(format!("spec.identities[{index}]"), reason))?;
        }
        for (index, reference) in refs.iter().enumerate() {
            let field = |name: &str| format!("spec.identityRefs[{index}].{name}");
            if !matches!(reference.group.as_deref(), None | Some("") | Some("core")) {
                return Err(FieldError::new(field("group"), "must be empty or core"));
            }
            if !matches!(reference.kind.as_str(), "ServiceAccount" | "Namespace") {
                return Err(FieldError::new(
                    field("kind"),
                    format!("{:?} is not ServiceAccount or Namespace", reference.kind),
                ));
            }
            if reference.name.is_empty() {
                return Err(FieldError::new(field("name"), "must not be empty"));
            }
        }
        Ok(())
    }
}

/// Client networks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkAuthentication {
    /// `policy.linkerd.io/v1alpha1`.
    pub api_version: String,
    /// `NetworkAuthentication`.
    pub kind: String,
    /// Name and namespace.
    pub metadata: ObjectMeta,
    /// The networks.
    pub spec: NetworkAuthenticationSpec,
}

/// The body of a NetworkAuthentication.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkAuthenticationSpec {
    /// The networks clients may come from.
    pub networks: Vec<NetworkSpec>,
}

/// One network, as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkSpec {
    /// The network (`10.0.0.0/8`).
    pub cidr: String,
    /// Parts of it that are not admitted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub except: Vec<String>,
}

/// A network with its exceptions, checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NetworkMatch {
    /// The network.
    pub net: Cidr,
    /// Addresses in it that do not match.
    pub except: Vec<Cidr>,
}

impl NetworkMatch {
    /// The whole network, no exceptions.
    pub fn all(net: Cidr) -> Self {
        Self {
            net,
            except: Vec::new(),
        }
    }
}

impl NetworkAuthentication {
    /// Its name.
    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or_default()
    }

    /// Its networks, or the first one that does not parse.
    pub fn networks(&self) -> Result<Vec<NetworkMatch>, FieldError> {
        if self.spec.networks.is_empty() {
            return Err(FieldError::new(
                "spec.networks",
                "give at least one network",
            ));
        }
        self.spec
            .networks
            .iter()
            .enumerate()
            .map(|(index, network)| {
                let net = Cidr::parse(&network.cidr).map_err(|error| {
                    FieldError::new(format!("spec.networks[{index}].cidr"), error.to_string())
                })?;
                let except = network
                    .except
                    .iter()
                    .enumerate()
                    .map(|(position, text)| {
                        Cidr::parse(text).map_err(|error| {
                            FieldError::new(
                                format!("spec.networks[{index}].except[{position}]"),
                                error.to_string(),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(NetworkMatch { net, except })
            })
            .collect()
    }

    /// Checks the networks.
    pub fn validate(&self) -> Result<(), FieldError> {
        self.networks().map(drop)
    }
}
