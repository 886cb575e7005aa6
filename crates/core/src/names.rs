//! The names weft gives things:
//!
//! - fully-qualified service names, `<service>.<namespace>.svc.<cluster domain>`,
//!   the name a ServiceProfile carries and the name proxies resolve;
//! - identity names (Linkerd's format),
//!   `<service account>.<namespace>.serviceaccount.identity.<control namespace>.<trust domain>`,
//!   the DNS name a workload's certificate carries and peers verify.

/// The cluster domain used when none is configured.
pub const DEFAULT_CLUSTER_DOMAIN: &str = "cluster.local";

/// The control-plane namespace in identity names when none is configured.
pub const DEFAULT_CONTROL_NAMESPACE: &str = "weft";
/// The trust domain in identity names when none is configured.
pub const DEFAULT_TRUST_DOMAIN: &str = "cluster.local";

/// A workload's identity name, the DNS name its certificate carries:
/// `<service_account>.<namespace>.serviceaccount.identity.<control_namespace>.<trust_domain>`.
/// The controller issues certificates for it; `weft up` tells each proxy to ask for it.
pub fn identity_name(
    service_account: &str,
    namespace: &str,
    control_namespace: &str,
    trust_domain: &str,
) -> String {
    format!(
        "{service_account}.{namespace}.serviceaccount.identity.{control_namespace}.{trust_domain}"
    )
}

/// A service, named by namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceName {
    /// The service's namespace.
    pub namespace: String,
    /// The service's name.
    pub name: String,
}

impl ServiceName {
    /// A service name from its parts.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// `<name>.<namespace>.svc.<cluster_domain>`, without a trailing dot.
    pub fn fully_qualified(&self, cluster_domain: &str) -> String {
        format!("{}.{}.svc.{}", self.name, self.namespace, cluster_domain)
    }

    /// Parses a host as a proxy sends it: `<name>.<namespace>.svc.<cluster_domain>`
    /// with an optional trailing dot, or the short forms `<name>.<namespace>` and
    /// `<name>.<namespace>.svc`. Anything else (an IP, another domain) is `None`.
    pub fn parse(host: &str, cluster_domain: &str) -> Option<Self> {
        let host = host.strip_suffix('.').unwrap_or(host);
        let labels: Vec<&str> = host.split('.').collect();
        let (name, namespace) = match labels.as_slice() {
            [name, namespace] => (*name, *namespace),
            [name, namespace, "svc"] => (*name, *namespace),
            [name, namespace, "svc", domain @ ..] if domain.join(".") == cluster_domain => {
                (*name, *namespace)
            }
            _ => return None,
        };
        let is_label = |label: &str| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|character| character.is_ascii_alphanumeric() || character == '-')
                && !label.chars().all(|character| character.is_ascii_digit())
        };
        (is_label(name) && is_label(namespace)).then(|| Self::new(namespace, name))
    }
}

impl std::fmt::Display for ServiceName {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}.{}", self.name, self.namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_service_hosts() {
        let cases: &[(&str, Option<(&str, &str)>)] = &[
            ("web.shop.svc.cluster.local", Some(("shop", "web"))),
            ("web.shop.svc.cluster.local.", Some(("shop", "web"))),
            ("web.shop.svc", Some(("shop", "web"))),
            ("web.shop", Some(("shop", "web"))),
            ("web.shop.svc.example.org", None),
            ("web", None),
            ("10.0.0.1", None),
            ("www.example.com", None),
            ("web..svc.cluster.local", None),
        ];
        for (host, expected) in cases {
            let parsed = ServiceName::parse(host, DEFAULT_CLUSTER_DOMAIN);
            let expected = expected.map(|(namespace, name)| ServiceName::new(namespace, name));
            assert_eq!(parsed, expected, "{host}");
        }
    }

    #[test]
    fn identity_names_follow_linkerd() {
        let cases = [
            (
                (
                    "web",
                    "shop",
                    DEFAULT_CONTROL_NAMESPACE,
                    DEFAULT_TRUST_DOMAIN,
                ),
                "web.shop.serviceaccount.identity.weft.cluster.local",
            ),
            (
                ("weft-controller", "weft", "weft", "cluster.local"),
                "weft-controller.weft.serviceaccount.identity.weft.cluster.local",
            ),
            (
                ("default", "demo", "mesh", "example.org"),
                "default.demo.serviceaccount.identity.mesh.example.org",
            ),
        ];
        for ((service_account, namespace, control_namespace, trust_domain), expected) in cases {
            assert_eq!(
                identity_name(service_account, namespace, control_namespace, trust_domain),
                expected
            );
        }
    }

    #[test]
    fn fully_qualified() {
        assert_eq!(
            ServiceName::new("shop", "web").fully_qualified("cluster.local"),
            "web.shop.svc.cluster.local"
        );
    }
}
