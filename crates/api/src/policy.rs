//! Authorization policy as the controller applies it: `GET /api/authz`.

use serde::{Deserialize, Serialize};

/// `GET /api/authz?namespace=<ns>&workload=<name>`: who may reach each of a
/// workload's ports, as its proxy is told (the same computation that feeds
/// `InboundServerPolicies`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "strict", serde(deny_unknown_fields))]
pub struct AuthzResponse {
    /// The workload's namespace.
    pub namespace: String,
    /// The workload's name.
    pub workload: String,
    /// The default policy for ports no Server selects (`all-unauthenticated`,
    /// `deny`, ...), and where it comes from.
    pub default_policy: String,
    /// One entry per port of the workload, and per port a Server selects,
    /// sorted by port.
    pub ports: Vec<PortAuthz>,
}

/// One port's policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "strict", serde(deny_unknown_fields))]
pub struct PortAuthz {
    /// The port number.
    pub port: u16,
    /// The port's name on the workload, if it has one.
    pub port_name: Option<String>,
    /// The Server that selects the port; `None`: the default policy applies.
    pub server: Option<String>,
    /// The protocol the proxy is told: `detect`, `http1`, `http2`, `grpc`,
    /// `opaque` or `tls`.
    pub protocol: String,
    /// The authorizations, each with the clients it admits.
    pub authorizations: Vec<AuthzEntry>,
    /// Inbound HTTPRoutes attached to the port's Server.
    pub routes: Vec<String>,
}

/// One authorization of a port (or of one of its routes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "strict", serde(deny_unknown_fields))]
pub struct AuthzEntry {
    /// `AuthorizationPolicy`, or `default` for a default policy's.
    pub kind: String,
    /// Its name (the default policy's name for `default`).
    pub name: String,
    /// The route it is limited to (`HTTPRoute` or `GRPCRoute` name); `None`:
    /// the whole Server.
    pub route: Option<String>,
    /// Who it admits, one line each: `identity <name>` (`*` allowed),
    /// `service-account <ns>/<name>`, `network <cidr> [except <cidr>,...]`,
    /// `unauthenticated`, `authenticated`.
    pub clients: Vec<String>,
}
