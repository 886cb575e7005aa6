//! `weft inject`'s proxy flags and the [`InjectionConfig`] they make: the
//! settings the controller's injector takes from its own flags, given here
//! because offline there is no controller to ask. The trust anchors are
//! required: the injected proxy carries them inline in its environment.
//!
//! Everything else a pod may set (resources, log level, ports, policy,
//! image) it sets with the same annotations the webhook reads, on the pod
//! template.

use std::path::{Path, PathBuf};

use time::OffsetDateTime;
use weft_core::inject::InjectionConfig;
use weft_core::pki;
use weft_core::policy::{Cidr, DefaultPolicy};

/// The flag naming the trust anchors, as error messages name it.
const TRUST_ANCHORS_FLAG: &str = "--identity-trust-anchors-file";

/// The proxy's settings (the controller's injector flags, offline).
#[derive(Debug, Clone, clap::Args)]
pub struct ProxyFlags {
    /// PEM trust anchors (root CAs) of the mesh, the file given to `weft
    /// install --identity-trust-anchors-file` (or the `ca-bundle.crt` of
    /// the `weft-identity-trust-roots` ConfigMap): the injected proxies
    /// verify their peers with them.
    #[arg(long, value_name = "FILE", required = true)]
    pub identity_trust_anchors_file: PathBuf,
    /// The proxy image, without its tag (default ghcr.io/weft-mesh/weft-proxy);
    /// it also holds weft-init. As `weft install --proxy-image`.
    #[arg(long, value_name = "IMAGE", value_parser = crate::install::untagged_image)]
    pub proxy_image: Option<String>,
    /// The proxy image's tag (default this weft's version).
    #[arg(long, value_name = "TAG", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub proxy_version: Option<String>,
    /// The injected containers' imagePullPolicy (default: Kubernetes' own).
    #[arg(long, value_name = "POLICY", value_parser = ["Always", "IfNotPresent", "Never"])]
    pub image_pull_policy: Option<String>,
    /// The cluster's DNS domain, in the control plane's Service addresses.
    #[arg(long, value_name = "DOMAIN", default_value = "cluster.local",
          value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub cluster_domain: String,
    /// The inbound policy of ports no Server selects, unless the pod's
    /// `config.weft.io/default-inbound-policy` annotation says otherwise:
    /// all-unauthenticated, all-authenticated, cluster-unauthenticated,
    /// cluster-authenticated, deny or audit.
    #[arg(long, value_name = "POLICY", default_value = "all-unauthenticated",
          value_parser = default_inbound_policy)]
    pub default_inbound_policy: DefaultPolicy,
    /// The cluster's networks (comma-separated CIDRs): the proxy resolves
    /// names in them through discovery, and the cluster-* policies admit them
    /// (default: the private ranges, CGNAT and IPv6 ULA).
    #[arg(long, value_name = "CIDRS", value_parser = cluster_networks)]
    pub cluster_networks: Option<String>,
    /// The proxy's log filter, unless the pod's
    /// `config.weft.io/proxy-log-level` annotation says otherwise
    /// (default warn,weft_proxy=info).
    #[arg(long, value_name = "FILTER", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub proxy_log_level: Option<String>,
}

/// Why the trust anchors cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{TRUST_ANCHORS_FLAG} {}: {reason}", path.display())]
pub struct TrustAnchorsError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

impl ProxyFlags {
    /// The injection settings: the defaults of this weft, overridden by the
    /// flags given; reads and checks the trust anchors.
    pub fn injection_config(&self) -> Result<InjectionConfig, TrustAnchorsError> {
        let anchors =
            read_trust_anchors(&self.identity_trust_anchors_file, OffsetDateTime::now_utc())?;
        let mut config = InjectionConfig::new(anchors);
        if let Some(image) = &self.proxy_image {
            config.proxy_image.clone_from(image);
        }
        if let Some(version) = &self.proxy_version {
            config.proxy_version.clone_from(version);
        }
        config.image_pull_policy.clone_from(&self.image_pull_policy);
        config.cluster_domain.clone_from(&self.cluster_domain);
        config.default_inbound_policy = self.default_inbound_policy.as_str().to_string();
        if let Some(networks) = &self.cluster_networks {
            config.cluster_networks.clone_from(networks);
        }
        if let Some(level) = &self.proxy_log_level {
            config.proxy_log_level.clone_from(level);
        }
        Ok(config)
    }
}

/// The PEM text of `path`, once it holds at least one certificate, every
/// certificate a CA valid at `now`.
pub fn read_trust_anchors(path: &Path, now: OffsetDateTime) -> Result<String, TrustAnchorsError> {
    let problem = |reason: String| TrustAnchorsError {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|error| problem(error.to_string()))?;
    check_trust_anchors(&text, now).map_err(problem)?;
    Ok(text)
}

/// Checks a trust-anchor bundle: PEM, at least one certificate, each a CA
/// valid at `now`.
pub fn check_trust_anchors(pem: &str, now: OffsetDateTime) -> Result<(), String> {
    let certificates =
        pki::certificates_in(pem.as_bytes()).map_err(|problem| problem.to_string())?;
    for der in &certificates {
        let certificate = pki::parse_certificate(der).map_err(|problem| problem.to_string())?;
        pki::check_ca(&certificate, now).map_err(|problem| problem.to_string())?;
    }
    Ok(())
}

fn default_inbound_policy(text: &str) -> Result<DefaultPolicy, String> {
    DefaultPolicy::parse(text).map_err(|error| error.to_string())
}

/// Checks a CIDR list; the value is the list as given, trimmed.
fn cluster_networks(text: &str) -> Result<String, String> {
    let networks = Cidr::parse_list(text).map_err(|error| error.to_string())?;
    if networks.is_empty() {
        return Err("give at least one network (e.g. 10.0.0.0/8)".into());
    }
    Ok(text.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anchors() -> String {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/inject/trust-anchors.pem");
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn trust_anchors_table() {
        let now = OffsetDateTime::now_utc();
        let valid = anchors();
        let long_ago = OffsetDateTime::UNIX_EPOCH;
        let cases: [(&str, OffsetDateTime, Option<&str>); 5] = [
            (&valid, now, None),
            ("", now, Some("holds no CERTIFICATE")),
            ("not a certificate\n", now, Some("holds no CERTIFICATE")),
            (
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                now,
                Some("invalid certificate"),
            ),
            (&valid, long_ago, Some("is not valid now")),
        ];
        for (pem, at, expected) in cases {
            let result = check_trust_anchors(pem, at);
            match expected {
                None => assert_eq!(result, Ok(()), "{pem}"),
                Some(says) => {
                    let error = result.unwrap_err();
                    assert!(error.contains(says), "{pem:?}: {error}");
                }
            }
        }
    }

    #[test]
    fn cluster_networks_table() {
        assert_eq!(
            cluster_networks(" 10.0.0.0/8,fd00::/8 ").as_deref(),
            Ok("10.0.0.0/8,fd00::/8")
        );
        assert!(cluster_networks("").is_err());
        assert!(cluster_networks("10.0.0.0/33").is_err());
        assert!(cluster_networks("ten").is_err());
    }
}
