//! The `AuthorizationPolicy` kind (`policy.linkerd.io/v1alpha1`): admits the
//! clients that satisfy ALL of its required authentications to a target —
//! a Server, every Server of a namespace, or one HTTPRoute / GRPCRoute.
//!
//! ```yaml
//! apiVersion: policy.linkerd.io/v1alpha1
//! kind: AuthorizationPolicy
//! metadata: {name: web-from-shop, namespace: shop}
//! spec:
//!   targetRef: {group: policy.linkerd.io, kind: Server, name: web-http}
//!   requiredAuthenticationRefs:
//!     - {group: policy.linkerd.io, kind: MeshTLSAuthentication, name: shop-clients}
//!     - {group: policy.linkerd.io, kind: NetworkAuthentication, name: cluster}
//! ```
//!
//! As Linkerd's admission webhook does, a policy may name at most one
//! identity source (a MeshTLSAuthentication or a ServiceAccount) and at most
//! one NetworkAuthentication: together they mean both.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

use super::{FieldError, GROUP};

/// The API version of [`AuthorizationPolicy`].
pub const API_VERSION: &str = "policy.linkerd.io/v1alpha1";
/// The kind of [`AuthorizationPolicy`].
pub const KIND: &str = "AuthorizationPolicy";
/// The Gateway API's group (HTTPRoute and GRPCRoute may be in it).
pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// An AuthorizationPolicy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthorizationPolicy {
    /// `policy.linkerd.io/v1alpha1`.
    pub api_version: String,
    /// `AuthorizationPolicy`.
    pub kind: String,
    /// Name and namespace.
    pub metadata: ObjectMeta,
    /// Target and authentications.
    pub spec: AuthorizationPolicySpec,
}

/// The body of an AuthorizationPolicy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthorizationPolicySpec {
    /// What it applies to (in its own namespace).
    pub target_ref: TargetRef,
    /// Authentications a client must ALL satisfy; none: any client from anywhere.
    #[serde(default)]
    pub required_authentication_refs: Vec<AuthenticationRef>,
}

/// The policy's target, as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetRef {
    /// `policy.linkerd.io` (Server, HTTPRoute), `gateway.networking.k8s.io`
    /// (HTTPRoute, GRPCRoute) or `core`/empty (Namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `Server`, `HTTPRoute`, `GRPCRoute` or `Namespace`.
    pub kind: String,
    /// The target's name (the namespace's, for `Namespace`).
    pub name: String,
    /// Accepted for compatibility; must be the policy's own namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// One required authentication, as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthenticationRef {
    /// `policy.linkerd.io`, or empty/`core` for a ServiceAccount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `MeshTLSAuthentication`, `NetworkAuthentication` or `ServiceAccount`.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Its namespace (the policy's when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// What a policy targets, checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// One Server of the namespace.
    Server(String),
    /// Every Server of the namespace (named by the target).
    Namespace(String),
    /// One HTTPRoute.
    HttpRoute(String),
    /// One GRPCRoute.
    GrpcRoute(String),
}

/// A required authentication, checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Authentication {
    /// A MeshTLSAuthentication: (namespace if given, name).
    MeshTls(Option<String>, String),
    /// A NetworkAuthentication: (namespace if given, name).
    Network(Option<String>, String),
    /// The identity of a service account: (namespace if given, name).
    ServiceAccount(Option<String>, String),
}

fn is_core(group: Option<&str>) -> bool {
    matches!(group, None | Some("") | Some("core"))
}

impl AuthorizationPolicy {
    /// Its name.
    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or_default()
    }

    /// Its target, or why it is not one Linkerd accepts.
    pub fn target(&self) -> Result<Target, FieldError> {
        let target = &self.spec.target_ref;
        let group = target.group.as_deref();
        let field = |name: &str| format!("spec.targetRef.{name}");
        if target.name.is_empty() {
            return Err(FieldError::new(field("name"), "must not be empty"));
        }
        let checked = match target.kind.as_str() {
            "Server" if group == Some(GROUP) => Target::Server(target.name.clone()),
            "HTTPRoute" if group == Some(GROUP) || group == Some(GATEWAY_GROUP) => {
                Target::HttpRoute(target.name.clone())
            }
            "GRPCRoute" if group == Some(GATEWAY_GROUP) => Target::GrpcRoute(target.name.clone()),
            "Namespace" if is_core(group) => Target::Namespace(target.name.clone()),
            "Server" | "HTTPRoute" | "GRPCRoute" | "Namespace" => {
                return Err(FieldError::new(
                    field("group"),
                    format!(
                        "{:?} is not the group of {} (Server: policy.linkerd.io; HTTPRoute: policy.linkerd.io or gateway.networking.k8s.io; GRPCRoute: gateway.networking.k8s.io; Namespace: core)",
                        group.unwrap_or_default(),
                        target.kind
                    ),
                ));
            }
            other => {
                return Err(FieldError::new(
                    field("kind"),
                    format!("{other:?} is not Server, HTTPRoute, GRPCRoute or Namespace"),
                ));
            }
        };
        Ok(checked)
    }

    /// Its required authentications, or why one is not acceptable.
    pub fn authentications(&self) -> Result<Vec<Authentication>, FieldError> {
        let mut checked = Vec::new();
        let (mut identity_sources, mut network_sources) = (0, 0);
        for (index, reference) in self.spec.required_authentication_refs.iter().enumerate() {
            let field = |name: &str| format!("spec.requiredAuthenticationRefs[{index}].{name}");
            if reference.name.is_empty() {
                return Err(FieldError::new(field("name"), "must not be empty"));
            }
            let group = reference.group.as_deref();
            let (namespace, name) = (reference.namespace.clone(), reference.name.clone());
            let authentication = match reference.kind.as_str() {
                "MeshTLSAuthentication" if group == Some(GROUP) => {
                    identity_sources += 1;
                    Authentication::MeshTls(namespace, name)
                }
                "NetworkAuthentication" if group == Some(GROUP) => {
                    network_sources += 1;
                    Authentication::Network(namespace, name)
                }
                "ServiceAccount" if is_core(group) => {
                    identity_sources += 1;
                    Authentication::ServiceAccount(namespace, name)
                }
                "MeshTLSAuthentication" | "NetworkAuthentication" | "ServiceAccount" => {
                    return Err(FieldError::new(
                        field("group"),
                        format!(
                            "{:?} is not the group of {} (policy.linkerd.io; core for ServiceAccount)",
                            group.unwrap_or_default(),
                            reference.kind
                        ),
                    ));
                }
                other => {
                    return Err(FieldError::new(
                        field("kind"),
                        format!(
                            "{other:?} is not MeshTLSAuthentication, NetworkAuthentication or ServiceAccount"
                        ),
                    ));
                }
            };
            if identity_sources > 1 {
                return Err(FieldError::new(
                    field("kind"),
                    "at most one MeshTLSAuthentication or ServiceAccount per policy",
                ));
            }
            if network_sources > 1 {
                return Err(FieldError::new(
                    field("kind"),
                    "at most one NetworkAuthentication per policy",
                ));
            }
            checked.push(authentication);
        }
        Ok(checked)
    }

    /// Checks its target and authentications.
    pub fn validate(&self) -> Result<(), FieldError> {
        self.target()?;
        self.authentications()?;
        Ok(())
    }
}
