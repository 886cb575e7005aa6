//! Linkerd's authorization policy kinds (`policy.linkerd.io`) and the pure
//! decision behind the inbound policy of a workload's port.
//!
//! ```text
//! Server (v1beta1..v1beta3)          podSelector + port ─► selects (Workload, port)
//!   ▲ targetRef (Server | Namespace | HTTPRoute | GRPCRoute)
//! AuthorizationPolicy (v1alpha1)     requiredAuthenticationRefs: ALL must hold
//!   └─► MeshTLSAuthentication        identities (`*`, `*.suffix`), identityRefs
//!   └─► NetworkAuthentication        networks [{cidr, except}]
//!   └─► ServiceAccount               one identity
//! effective::inbound_policy(workload, port, objects) ─► InboundPolicy (pure, table-tested)
//! ```
//!
//! | module             | what it holds |
//! |--------------------|---------------|
//! | [`server`]         | the `Server` kind, label selectors, proxy protocols |
//! | [`authorization`]  | the `AuthorizationPolicy` kind |
//! | [`authentication`] | `MeshTLSAuthentication`, `NetworkAuthentication` |
//! | [`network`]        | CIDR networks (`10.0.0.0/8`) |
//! | [`default_policy`] | the default policies (`all-unauthenticated`, `deny`, ...) |
//! | [`effective`]      | the decision: a port's effective inbound policy |
//!
//! Without the `model` feature only [`network`] and [`default_policy`] (and
//! [`FieldError`]) are built: the proxy parses its own default policy and
//! networks with them, without k8s-openapi.

#[cfg(feature = "model")]
pub mod authentication;
#[cfg(feature = "model")]
pub mod authorization;
pub mod default_policy;
#[cfg(feature = "model")]
pub mod effective;
pub mod network;
#[cfg(feature = "model")]
pub mod server;

#[cfg(feature = "model")]
pub use authentication::{MeshTLSAuthentication, NetworkAuthentication};
#[cfg(feature = "model")]
pub use authorization::AuthorizationPolicy;
pub use default_policy::DefaultPolicy;
#[cfg(feature = "model")]
pub use effective::{InboundPolicy, PolicyContext, PolicyObjects, inbound_policy};
pub use network::Cidr;
#[cfg(feature = "model")]
pub use server::Server;

/// The API group of every policy kind.
pub const GROUP: &str = "policy.linkerd.io";

/// Why a policy object is invalid: the field (`spec.port`) and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    /// The field's path, as written in the YAML (`spec.podSelector.matchExpressions[0].operator`).
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FieldError {
    /// An error for `field`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

#[cfg(all(test, feature = "model"))]
mod tests;
