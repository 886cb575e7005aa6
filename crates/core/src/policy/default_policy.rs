//! The default inbound policies, as Linkerd names them: what applies to a
//! port no Server selects (the Workload's
//! `config.linkerd.io/default-inbound-policy` annotation, else the
//! controller's `--default-inbound-policy`), a Server's `accessPolicy`, and
//! the proxy's `WEFT_PROXY_INBOUND_DEFAULT_POLICY` (what applies before, or
//! without, the controller's answer).

use serde::{Deserialize, Serialize};

/// The Workload annotation naming its default inbound policy.
pub const DEFAULT_INBOUND_POLICY_ANNOTATION: &str = "config.linkerd.io/default-inbound-policy";

/// The networks `cluster-*` policies admit when `--cluster-networks` is not
/// given: the private ranges, CGNAT, IPv6 ULA and loopback (a host mesh's cluster).
pub const DEFAULT_CLUSTER_NETWORKS: &str =
    "10.0.0.0/8,100.64.0.0/10,172.16.0.0/12,192.168.0.0/16,fd00::/8,127.0.0.0/8";

/// A default inbound policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DefaultPolicy {
    /// Any client from any network (Linkerd's default).
    #[default]
    AllUnauthenticated,
    /// Meshed clients (any identity) from any network.
    AllAuthenticated,
    /// Any client from the cluster networks.
    ClusterUnauthenticated,
    /// Meshed clients from the cluster networks.
    ClusterAuthenticated,
    /// Nobody.
    Deny,
    /// Everything allowed, and counted and logged as audited.
    Audit,
}

/// Every policy, in the order error messages list them.
pub const ALL_POLICIES: [DefaultPolicy; 6] = DefaultPolicy::ALL;

/// A name that is not a default policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a default policy (expected all-unauthenticated, all-authenticated, cluster-unauthenticated, cluster-authenticated, deny or audit)"
)]
pub struct UnknownPolicy(pub String);

impl DefaultPolicy {
    /// Every policy, in the order error messages and `--help` list them.
    pub const ALL: [DefaultPolicy; 6] = [
        DefaultPolicy::AllUnauthenticated,
        DefaultPolicy::AllAuthenticated,
        DefaultPolicy::ClusterUnauthenticated,
        DefaultPolicy::ClusterAuthenticated,
        DefaultPolicy::Deny,
        DefaultPolicy::Audit,
    ];

    /// Parses Linkerd's name.
    pub fn parse(text: &str) -> Result<Self, UnknownPolicy> {
        DefaultPolicy::ALL
            .into_iter()
            .find(|policy| policy.as_str() == text.trim())
            .ok_or_else(|| UnknownPolicy(text.to_string()))
    }

    /// Linkerd's name.
    pub fn as_str(self) -> &'static str {
        match self {
            DefaultPolicy::AllUnauthenticated => "all-unauthenticated",
            DefaultPolicy::AllAuthenticated => "all-authenticated",
            DefaultPolicy::ClusterUnauthenticated => "cluster-unauthenticated",
            DefaultPolicy::ClusterAuthenticated => "cluster-authenticated",
            DefaultPolicy::Deny => "deny",
            DefaultPolicy::Audit => "audit",
        }
    }
}

impl std::fmt::Display for DefaultPolicy {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl std::str::FromStr for DefaultPolicy {
    type Err = UnknownPolicy;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}
