//! The Identity service: the mesh's certificate authority. A proxy proves who
//! it is with a token, sends a CSR for its identity and gets back a short-lived
//! leaf certificate chained to the mesh's trust anchor (Linkerd's
//! `io.linkerd.proxy.identity.Identity/Certify`, Linkerd's identity format).
//!
//! ```text
//! trust anchor (root, --identity-trust-anchors, or the ConfigMap --identity-trust-anchors-configmap)
//!   └─ issuer (intermediate CA, --identity-issuer-dir/{crt,key}.pem, or the Secret
//!      --identity-issuer-secret's tls.crt/tls.key; watched, reloaded)
//!        └─ leaf: DNS SAN <sa>.<ns>.serviceaccount.identity.<control-ns>.<trust-domain>
//!                 URI SAN spiffe://<trust-domain>/ns/<ns>/sa/<sa>, 24 h by default
//!
//! Certify(identity, token, csr)
//!   issuer loaded? ─► fields present, CSR parses (signature checked) ─► issuer still valid
//!   ─► CSR names exactly that identity ─► token ─► (ns, sa) ─► same identity? ─► sign leaf
//! ```
//!
//! | module          | what it is |
//! |-----------------|------------|
//! | [`csr`]         | pure: what a CSR asks for, and whether that may be granted |
//! | [`authority`]   | the loaded issuer: chain checks at load, leaf validity (pure), signing |
//! | [`issuer`]      | shared by the issuer sources: the authority handle, status, metrics, load outcomes |
//! | [`issuer_files`] | the issuer files: load, watch, reload; a bad replacement keeps the old issuer |
//! | [`issuer_secret`] | the issuer Secret and anchor ConfigMap (Kubernetes), watched the same way |
//! | [`token`]       | [`TokenValidator`](token::TokenValidator) and the controller's own HMAC tokens |
//! | [`token_files`] | one token file per meshed Workload of the mesh file |
//! | [`token_review`] | ServiceAccount tokens checked with the Kubernetes TokenReview API |
//! | [`init`]        | `weft-controller identity init` / `rotate-issuer`: create credentials |
//! | [`server`]      | the tonic service (the only protobuf here), its metrics, error → status |
//! | [`renewal`]     | when the controller's own certificates are renewed (this and the injector's), and the loop |
//! | [`serving`]     | the controller's own certificate (TLS on its gRPC ports), renewed |

pub mod authority;
pub mod csr;
pub mod init;
pub mod issuer;
pub mod issuer_files;
pub mod issuer_secret;
pub mod renewal;
pub mod server;
pub mod serving;
pub mod token;
pub mod token_files;
pub mod token_review;

use std::fmt;

pub use weft_core::names::{DEFAULT_CONTROL_NAMESPACE, DEFAULT_TRUST_DOMAIN};

/// Who a workload is: its namespace and service account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkloadIdentity {
    /// The workload's namespace.
    pub namespace: String,
    /// Its service account.
    pub service_account: String,
}

impl WorkloadIdentity {
    /// An identity from its parts (not checked; see [`is_dns_label`]).
    pub fn new(namespace: impl Into<String>, service_account: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            service_account: service_account.into(),
        }
    }
}

impl fmt::Display for WorkloadIdentity {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}/{}", self.namespace, self.service_account)
    }
}

/// Where identities live: the control-plane namespace and the trust domain,
/// the suffix `identity.<control namespace>.<trust domain>` of every name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityDomain {
    /// The control plane's namespace (`weft`).
    pub control_namespace: String,
    /// The trust domain (`cluster.local`).
    pub trust_domain: String,
}

impl Default for IdentityDomain {
    fn default() -> Self {
        Self {
            control_namespace: DEFAULT_CONTROL_NAMESPACE.to_string(),
            trust_domain: DEFAULT_TRUST_DOMAIN.to_string(),
        }
    }
}

impl IdentityDomain {
    /// The DNS name a workload's certificate carries and peers verify:
    /// `<sa>.<ns>.serviceaccount.identity.<control namespace>.<trust domain>`.
    pub fn dns_name(&self, identity: &WorkloadIdentity) -> String {
        weft_core::names::identity_name(
            &identity.service_account,
            &identity.namespace,
            &self.control_namespace,
            &self.trust_domain,
        )
    }

    /// The SPIFFE ID added as a URI SAN: `spiffe://<trust domain>/ns/<ns>/sa/<sa>`.
    pub fn spiffe_id(&self, identity: &WorkloadIdentity) -> String {
        format!(
            "spiffe://{}/ns/{}/sa/{}",
            self.trust_domain, identity.namespace, identity.service_account
        )
    }

    /// The issuer's conventional name, `identity.<control namespace>.<trust domain>`.
    pub fn issuer_name(&self) -> String {
        format!("identity.{}.{}", self.control_namespace, self.trust_domain)
    }

    /// The trust anchor's conventional name, `root.<control namespace>.<trust domain>`.
    pub fn root_name(&self) -> String {
        format!("root.{}.{}", self.control_namespace, self.trust_domain)
    }
}

/// Whether `text` is a DNS-1123 label: 1–63 of `a-z`, `0-9`, `-`, starting
/// and ending with a letter or digit (what namespaces and service accounts
/// must be for an identity).
pub fn is_dns_label(text: &str) -> bool {
    let bytes = text.as_bytes();
    let edge = |byte: &u8| byte.is_ascii_lowercase() || byte.is_ascii_digit();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes.first().is_some_and(edge)
        && bytes.last().is_some_and(edge)
        && bytes.iter().all(|byte| edge(byte) || *byte == b'-')
}

/// Whether `text` is a DNS name of such labels separated by dots (a trust
/// domain, a control namespace written in a name).
pub fn is_dns_name(text: &str) -> bool {
    !text.is_empty() && text.len() <= 253 && text.split('.').all(is_dns_label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_linkerd_and_spiffe() {
        let domain = IdentityDomain::default();
        let web = WorkloadIdentity::new("shop", "web");
        assert_eq!(
            domain.dns_name(&web),
            "web.shop.serviceaccount.identity.weft.cluster.local"
        );
        assert_eq!(
            domain.spiffe_id(&web),
            "spiffe://cluster.local/ns/shop/sa/web"
        );
        assert_eq!(domain.issuer_name(), "identity.weft.cluster.local");
    }

    #[test]
    fn dns_labels() {
        let cases = [
            ("web", true),
            ("web-1", true),
            ("1web", true),
            ("", false),
            ("-web", false),
            ("web-", false),
            ("Web", false),
            ("web.shop", false),
            ("web_1", false),
            (&*"a".repeat(63), true),
            (&*"a".repeat(64), false),
        ];
        for (text, expected) in cases {
            assert_eq!(is_dns_label(text), expected, "{text:?}");
        }
        assert!(is_dns_name("cluster.local"));
        assert!(!is_dns_name("cluster..local"));
        assert!(!is_dns_name("cluster.local."));
    }
}
