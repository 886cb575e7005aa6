//! The proxy injector: the mutating admission webhook that adds a weft
//! proxy to pods created in annotated namespaces (`weft.io/inject`), as
//! Linkerd's proxy-injector does. The decision itself is weft-core's
//! [`inject`](weft_core::inject::inject), shared with `weft inject`.
//!
//! ```text
//! API server ──HTTPS POST /inject (AdmissionReview)──► server.rs (bounds, TLS from serving.rs)
//!                                                         └► review.rs (pure) ──► weft_core::inject
//!                                                               ▲ namespace annotations (the Kubernetes source's Namespaces)
//!                                                               ▲ InjectionConfig (flags; anchors follow the issuer)
//! ```
//!
//! | module | what |
//! |---|---|
//! | [`review`] | AdmissionReview JSON in, AdmissionReview JSON out (pure) |
//! | [`serving`] | the webhook's certificate from the identity issuer, renewed; the injected trust anchors |
//! | [`server`] | the listener: `POST /inject`, size, time and connection bounds |
//!
//! Metrics: `injector_requests_total{decision}` (injected, not_requested,
//! already_injected, skipped, not_a_pod_create, malformed),
//! `injector_refused_total{reason}` (requests and connections turned away
//! before a review), `injector_cert_expiration_timestamp_seconds`.

pub mod review;
pub mod server;
pub mod serving;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use weft_core::inject::{InjectionConfig, ProxyResources};

use crate::config::Args;
use review::Verdict;

/// The `decision` label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct DecisionLabels {
    /// [`Verdict::label`].
    pub decision: &'static str,
}

/// Why a request or connection was turned away before a review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// Over the connection cap.
    Connections,
    /// The TLS handshake failed or timed out (plaintext clients land here).
    Handshake,
    /// A path other than `/inject`.
    NotFound,
    /// A method other than POST.
    Method,
    /// A body over the size bound.
    TooLarge,
    /// The body was not sent in time.
    Timeout,
    /// The body could not be read.
    Body,
}

impl Refusal {
    /// The `reason` label.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Connections => "connections",
            Refusal::Handshake => "handshake",
            Refusal::NotFound => "not_found",
            Refusal::Method => "method",
            Refusal::TooLarge => "too_large",
            Refusal::Timeout => "timeout",
            Refusal::Body => "body",
        }
    }
}

/// The `reason` label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RefusalLabels {
    /// [`Refusal::label`].
    pub reason: &'static str,
}

/// The injector's counters.
#[derive(Debug, Clone, Default)]
pub struct InjectorMetrics {
    requests: Family<DecisionLabels, Counter>,
    refused: Family<RefusalLabels, Counter>,
}

impl InjectorMetrics {
    /// Registers `injector_requests_total` and `injector_refused_total`
    /// (every decision label present from the start, at 0).
    pub fn new(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "injector_requests",
            "AdmissionReviews answered by the proxy injector, by decision",
            metrics.requests.clone(),
        );
        registry.register(
            "injector_refused",
            "Requests and connections the proxy injector turned away before a review, by reason",
            metrics.refused.clone(),
        );
        for decision in Verdict::LABELS {
            let _ = metrics.requests.get_or_create(&DecisionLabels { decision });
        }
        metrics
    }

    /// Counts one answered review.
    pub fn decided(&self, verdict: &Verdict) {
        self.requests
            .get_or_create(&DecisionLabels {
                decision: verdict.label(),
            })
            .inc();
    }

    /// Counts one refusal.
    pub fn refuse(&self, reason: Refusal) {
        self.refused
            .get_or_create(&RefusalLabels {
                reason: reason.label(),
            })
            .inc();
    }
}

/// What the flags say to inject; the trust anchors are filled in from the
/// issuer ([`serving::InjectorCertificate`]).
pub fn injection_config(args: &Args) -> InjectionConfig {
    let mut config = InjectionConfig::new(String::new());
    config.proxy_image = args.injector.proxy_image.clone();
    config.proxy_version = args.injector.proxy_version.clone();
    config.image_pull_policy = args.injector.proxy_image_pull_policy.clone();
    config.control_plane_namespace = args.identity.identity_control_namespace.clone();
    config.cluster_domain = args.injector.cluster_domain.clone();
    config.trust_domain = args.identity.identity_trust_domain.clone();
    config.default_inbound_policy = args.policy.default_inbound_policy.as_str().to_string();
    config.proxy_log_level = args.injector.proxy_log_level.clone();
    config.proxy_resources = ProxyResources {
        cpu_request: args.injector.proxy_cpu_request.clone(),
        cpu_limit: args.injector.proxy_cpu_limit.clone(),
        memory_request: args.injector.proxy_memory_request.clone(),
        memory_limit: args.injector.proxy_memory_limit.clone(),
    };
    config.cluster_networks = args
        .policy
        .cluster_networks
        .0
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    config
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn the_config_follows_the_flags() {
        let args = Args::try_parse_from(["weft-controller", "--kubernetes"]).unwrap();
        let config = injection_config(&args);
        let defaults = InjectionConfig::new(String::new());
        assert_eq!(config.proxy_image, defaults.proxy_image);
        assert_eq!(config.proxy_version, env!("CARGO_PKG_VERSION"));
        assert_eq!(config.image_pull_policy, None);
        assert_eq!(config.control_plane_namespace, "weft");
        assert_eq!(config.cluster_domain, "cluster.local");
        assert_eq!(config.trust_domain, "cluster.local");
        assert_eq!(config.default_inbound_policy, "all-unauthenticated");
        assert_eq!(config.cluster_networks.split(',').count(), 6);
        assert_eq!(config.proxy_log_level, defaults.proxy_log_level);
        assert_eq!(config.proxy_resources, ProxyResources::default());

        let args = Args::try_parse_from([
            "weft-controller",
            "--kubernetes",
            "--proxy-image",
            "registry.local:5000/mesh/proxy",
            "--proxy-version",
            "v2.1.0-rc.1",
            "--proxy-image-pull-policy",
            "Never",
            "--cluster-domain",
            "corp.example",
            "--identity-control-namespace",
            "mesh",
            "--identity-trust-domain",
            "mesh.example",
            "--default-inbound-policy",
            "cluster-authenticated",
            "--cluster-networks",
            "10.0.0.0/8,fd00::/8",
            "--proxy-log-level",
            "warn,weft_proxy=debug",
            "--proxy-cpu-request",
            "100m",
            "--proxy-memory-limit",
            "250Mi",
        ])
        .unwrap();
        let config = injection_config(&args);
        assert_eq!(config.proxy_log_level, "warn,weft_proxy=debug");
        assert_eq!(
            config.proxy_resources,
            ProxyResources {
                cpu_request: Some("100m".to_string()),
                memory_limit: Some("250Mi".to_string()),
                ..ProxyResources::default()
            }
        );
        assert_eq!(config.proxy_image, "registry.local:5000/mesh/proxy");
        assert_eq!(config.proxy_version, "v2.1.0-rc.1");
        assert_eq!(config.image_pull_policy.as_deref(), Some("Never"));
        assert_eq!(config.control_plane_namespace, "mesh");
        assert_eq!(config.cluster_domain, "corp.example");
        assert_eq!(config.trust_domain, "mesh.example");
        assert_eq!(config.default_inbound_policy, "cluster-authenticated");
        assert_eq!(config.cluster_networks, "10.0.0.0/8,fd00::/8");
    }

    #[test]
    fn bad_injector_flags_are_refused_naming_the_flag() {
        let cases: [(&[&str], &str); 9] = [
            (&["--injector-addr", "8443"], "--injector-addr"),
            (&["--proxy-image", "weft-proxy:v1"], "--proxy-image"),
            (&["--proxy-image", "weft@sha256:00"], "--proxy-image"),
            (&["--proxy-version=.v1"], "--proxy-version"),
            (
                &["--proxy-image-pull-policy", "Sometimes"],
                "--proxy-image-pull-policy",
            ),
            (&["--cluster-domain", "Cluster.Local"], "--cluster-domain"),
            (&["--proxy-log-level", "warn, debug"], "--proxy-log-level"),
            (&["--proxy-cpu-request", "lots"], "--proxy-cpu-request"),
            (&["--proxy-memory-limit=-1Mi"], "--proxy-memory-limit"),
        ];
        for (flags, named) in cases {
            let argv = ["weft-controller", "--kubernetes"]
                .into_iter()
                .chain(flags.iter().copied());
            let error = Args::try_parse_from(argv).unwrap_err().to_string();
            assert!(error.contains(named), "{flags:?}: {error}");
        }
        let args = Args::try_parse_from(["weft-controller", "--kubernetes"]).unwrap();
        assert_eq!(args.injector.injector_addr.0, None);
        let args = Args::try_parse_from([
            "weft-controller",
            "--kubernetes",
            "--injector-addr",
            "0.0.0.0:8443",
        ])
        .unwrap();
        assert_eq!(
            args.injector.injector_addr.0,
            Some("0.0.0.0:8443".parse().unwrap())
        );
    }
}
