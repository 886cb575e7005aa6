//! What the `linkerd` setup (`--other linkerd=/path/to/linkerd2-proxy`)
//! needs besides the transparent machinery it shares with weft-transparent:
//! linkerd2-proxy's environment (it has no flags or config file), and its
//! identity directory (`key.p8`, `csr.der`, which Linkerd's image entrypoint
//! would write) plus the token it sends to the Identity service.
//!
//! ```text
//! weft-controller (identity on) ◄─ Destination, InboundServerPolicies (plaintext: loopback)
//!      ▲  Certify(identity, token file's bytes, csr.der)
//! linkerd2-proxy (UID 2102), LINKERD2_PROXY_* ─ inbound 127.0.0.1:I ◄─ REDIRECT of 127.0.0.3:P
//! ```
//!
//! The variable names come from the reference of linkerd2-proxy's
//! environment (`shared/reference/linkerd-proxy.md` §1.3–1.5); the bench has
//! not been run against a real linkerd2-proxy binary. [`environment`] is pure
//! and table-tested; [`preflight_certify`] sends the Certify request the
//! proxy would send, so a bad key, CSR or token shows before it starts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use linkerd2_proxy_api::identity::CertifyRequest;
use linkerd2_proxy_api::identity::identity_client::IdentityClient;

/// The identity the weft-controller's own services carry (what a proxy
/// would check over TLS; loopback control planes are plaintext).
pub const CONTROLLER_IDENTITY: &str =
    "weft-controller.weft.serviceaccount.identity.weft.cluster.local";

/// Everything linkerd2-proxy's environment is built from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkerdConfig {
    /// Inbound listener (the REDIRECT target).
    pub inbound: SocketAddr,
    /// Outbound listener (unused by the bench, but bound).
    pub outbound: SocketAddr,
    /// Admin server (`/metrics`, `/ready`).
    pub admin: SocketAddr,
    /// Control (tap) listener.
    pub control: SocketAddr,
    /// weft-controller's Destination service, which also serves
    /// InboundServerPolicies.
    pub destination: SocketAddr,
    /// weft-controller's Identity service.
    pub identity: SocketAddr,
    /// The identity directory (`key.p8`, `csr.der`).
    pub identity_dir: PathBuf,
    /// The token file.
    pub token_file: PathBuf,
    /// The trust anchors, PEM text.
    pub trust_anchors_pem: String,
    /// The proxy's identity (`<sa>.<ns>.serviceaccount.identity.weft.cluster.local`).
    pub local_name: String,
    /// The workload, for the policy API (`{"ns":"…","pod":"…"}`).
    pub policy_workload: String,
    /// The app port whose policy is discovered at start.
    pub app_port: u16,
}

/// linkerd2-proxy's environment for `config`: listeners, one core, identity
/// from the weft-controller, Destination and policy from the same
/// controller, the default inbound policy `all-unauthenticated`, log level
/// `warn`, and a short shutdown grace period.
pub fn environment(config: &LinkerdConfig) -> Vec<(String, String)> {
    let variables: [(&str, String); 20] = [
        ("INBOUND_LISTEN_ADDR", config.inbound.to_string()),
        ("OUTBOUND_LISTEN_ADDR", config.outbound.to_string()),
        ("ADMIN_LISTEN_ADDR", config.admin.to_string()),
        ("CONTROL_LISTEN_ADDR", config.control.to_string()),
        ("CORES", "1".into()),
        ("LOG", "warn".into()),
        ("SHUTDOWN_GRACE_PERIOD", "1s".into()),
        ("IDENTITY_DIR", config.identity_dir.display().to_string()),
        (
            "IDENTITY_TOKEN_FILE",
            config.token_file.display().to_string(),
        ),
        ("IDENTITY_TRUST_ANCHORS", config.trust_anchors_pem.clone()),
        ("IDENTITY_LOCAL_NAME", config.local_name.clone()),
        ("IDENTITY_SVC_ADDR", config.identity.to_string()),
        ("IDENTITY_SVC_NAME", CONTROLLER_IDENTITY.into()),
        ("DESTINATION_SVC_ADDR", config.destination.to_string()),
        ("DESTINATION_SVC_NAME", CONTROLLER_IDENTITY.into()),
        ("POLICY_SVC_ADDR", config.destination.to_string()),
        ("POLICY_SVC_NAME", CONTROLLER_IDENTITY.into()),
        ("POLICY_WORKLOAD", config.policy_workload.clone()),
        ("INBOUND_DEFAULT_POLICY", "all-unauthenticated".into()),
        ("INBOUND_PORTS", config.app_port.to_string()),
    ];
    variables
        .into_iter()
        .map(|(name, value)| (format!("LINKERD2_PROXY_{name}"), value))
        .collect()
}

/// The policy workload of `pod` in `namespace`, as Linkerd's chart writes it.
pub fn policy_workload(namespace: &str, pod: &str) -> String {
    format!(r#"{{"ns":"{namespace}","pod":"{pod}"}}"#)
}

/// The files of linkerd2-proxy's identity directory (and the token file,
/// kept beside it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityFiles {
    /// The directory (`LINKERD2_PROXY_IDENTITY_DIR`).
    pub dir: PathBuf,
    /// The ECDSA P-256 key, PEM (only for openssl; the proxy reads key.p8).
    pub key_pem: PathBuf,
    /// The key, PKCS#8 DER.
    pub key: PathBuf,
    /// The CSR, DER: CN and the one DNS SAN = the local name.
    pub csr: PathBuf,
    /// The token (`LINKERD2_PROXY_IDENTITY_TOKEN_FILE`).
    pub token: PathBuf,
}

impl IdentityFiles {
    /// The files under `dir`.
    pub fn in_dir(dir: &Path) -> IdentityFiles {
        IdentityFiles {
            dir: dir.to_path_buf(),
            key_pem: dir.join("key.pem"),
            key: dir.join("key.p8"),
            csr: dir.join("csr.der"),
            token: dir.join("token"),
        }
    }

    /// The `openssl` arguments that make the key and the CSR for
    /// `local_name`, as Linkerd's `proxy-identity` entrypoint does: an
    /// ECDSA P-256 key as PKCS#8 DER, a DER CSR with CN and one DNS SAN.
    pub fn openssl_commands(&self, local_name: &str) -> Vec<Vec<String>> {
        let path = |path: &Path| path.display().to_string();
        let words = |list: &[&str]| list.iter().map(|word| word.to_string()).collect();
        vec![
            words(&crate::others::p256_key_args(&path(&self.key_pem))),
            words(&[
                "pkcs8",
                "-topk8",
                "-nocrypt",
                "-in",
                &path(&self.key_pem),
                "-outform",
                "DER",
                "-out",
                &path(&self.key),
            ]),
            words(&[
                "req",
                "-new",
                "-key",
                &path(&self.key_pem),
                "-subj",
                &format!("/CN={local_name}"),
                "-addext",
                &format!("subjectAltName=DNS:{local_name}"),
                "-outform",
                "DER",
                "-out",
                &path(&self.csr),
            ]),
        ]
    }

    /// Makes the key and CSR with `openssl`, copies `token_source` in, and
    /// gives the directory (0700) and its files (0600) to `uid`.
    pub fn write(
        &self,
        openssl: &Path,
        local_name: &str,
        token_source: &Path,
        uid: u32,
    ) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        for command in self.openssl_commands(local_name) {
            let args: Vec<&str> = command.iter().map(String::as_str).collect();
            crate::others::run_openssl(openssl, &args)?;
        }
        std::fs::copy(token_source, &self.token).with_context(|| {
            format!(
                "copying the token {} to {}",
                token_source.display(),
                self.token.display()
            )
        })?;
        use std::os::unix::fs::PermissionsExt;
        for (path, mode) in [
            (&self.dir, 0o700),
            (&self.key_pem, 0o600),
            (&self.key, 0o600),
            (&self.csr, 0o600),
            (&self.token, 0o600),
        ] {
            std::os::unix::fs::chown(path, Some(uid), Some(uid))
                .with_context(|| format!("giving {} to UID {uid}", path.display()))?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .with_context(|| format!("setting the mode of {}", path.display()))?;
        }
        Ok(())
    }
}

/// Sends the Certify request linkerd2-proxy would send (its local name,
/// the token file's bytes, the DER CSR) to the Identity service at
/// `identity`; fails with the service's answer unless a certificate comes
/// back.
pub fn preflight_certify(
    identity: SocketAddr,
    local_name: &str,
    files: &IdentityFiles,
) -> anyhow::Result<()> {
    let token = std::fs::read(&files.token)
        .with_context(|| format!("reading {}", files.token.display()))?;
    let csr =
        std::fs::read(&files.csr).with_context(|| format!("reading {}", files.csr.display()))?;
    if token.is_empty() || csr.is_empty() {
        bail!("the token or the CSR is empty (linkerd2-proxy refuses to start without both)");
    }
    let request = CertifyRequest {
        identity: local_name.to_string(),
        token,
        certificate_signing_request: csr,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let response = runtime.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{identity}"))?
            .connect()
            .await
            .with_context(|| format!("connecting to the Identity service at {identity}"))?;
        IdentityClient::new(channel)
            .certify(request)
            .await
            .map_err(|status| anyhow::anyhow!("Certify for {local_name}: {status}"))
    })?;
    if response.into_inner().leaf_certificate.is_empty() {
        bail!("Certify for {local_name}: no leaf certificate in the answer");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> LinkerdConfig {
        LinkerdConfig {
            inbound: "127.0.0.1:4143".parse().unwrap(),
            outbound: "127.0.0.1:4140".parse().unwrap(),
            admin: "127.0.0.1:4191".parse().unwrap(),
            control: "127.0.0.1:4190".parse().unwrap(),
            destination: "127.0.0.1:8086".parse().unwrap(),
            identity: "127.0.0.1:8080".parse().unwrap(),
            identity_dir: PathBuf::from("/run/bench/linkerd/identity"),
            token_file: PathBuf::from("/run/bench/linkerd/identity/token"),
            trust_anchors_pem: "-----BEGIN CERTIFICATE-----\n…".into(),
            local_name: "web-1.bench.serviceaccount.identity.weft.cluster.local".into(),
            policy_workload: policy_workload("bench", "web-1"),
            app_port: 41000,
        }
    }

    /// The reference's names (§1.3–1.5) and what the bench sets them to;
    /// every required variable is present.
    #[test]
    fn environment_names_every_variable_of_the_reference() {
        let controller = CONTROLLER_IDENTITY;
        let table: &[(&str, &str)] = &[
            ("LINKERD2_PROXY_INBOUND_LISTEN_ADDR", "127.0.0.1:4143"),
            ("LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR", "127.0.0.1:4140"),
            ("LINKERD2_PROXY_ADMIN_LISTEN_ADDR", "127.0.0.1:4191"),
            ("LINKERD2_PROXY_CONTROL_LISTEN_ADDR", "127.0.0.1:4190"),
            ("LINKERD2_PROXY_CORES", "1"),
            ("LINKERD2_PROXY_LOG", "warn"),
            ("LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD", "1s"),
            ("LINKERD2_PROXY_IDENTITY_DIR", "/run/bench/linkerd/identity"),
            (
                "LINKERD2_PROXY_IDENTITY_TOKEN_FILE",
                "/run/bench/linkerd/identity/token",
            ),
            (
                "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS",
                "-----BEGIN CERTIFICATE-----\n…",
            ),
            (
                "LINKERD2_PROXY_IDENTITY_LOCAL_NAME",
                "web-1.bench.serviceaccount.identity.weft.cluster.local",
            ),
            ("LINKERD2_PROXY_IDENTITY_SVC_ADDR", "127.0.0.1:8080"),
            ("LINKERD2_PROXY_IDENTITY_SVC_NAME", controller),
            ("LINKERD2_PROXY_DESTINATION_SVC_ADDR", "127.0.0.1:8086"),
            ("LINKERD2_PROXY_DESTINATION_SVC_NAME", controller),
            ("LINKERD2_PROXY_POLICY_SVC_ADDR", "127.0.0.1:8086"),
            ("LINKERD2_PROXY_POLICY_SVC_NAME", controller),
            (
                "LINKERD2_PROXY_POLICY_WORKLOAD",
                r#"{"ns":"bench","pod":"web-1"}"#,
            ),
            (
                "LINKERD2_PROXY_INBOUND_DEFAULT_POLICY",
                "all-unauthenticated",
            ),
            ("LINKERD2_PROXY_INBOUND_PORTS", "41000"),
        ];
        let environment = environment(&config());
        let as_pairs: Vec<(&str, &str)> = environment
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        assert_eq!(as_pairs, table);
        // No weft variable, and no identity opt-out (a fatal error today).
        assert!(
            environment
                .iter()
                .all(|(name, _)| name.starts_with("LINKERD2_PROXY_")
                    && name != "LINKERD2_PROXY_IDENTITY_DISABLED")
        );
    }

    /// Durations in linkerd2-proxy's format: digits and a mandatory unit
    /// (`^\s*(\d+)(ms|s|m|h|d)?\s*$`, unit required unless 0).
    #[test]
    fn durations_follow_linkerd_syntax() {
        let is_duration = |value: &str| {
            let digits = value.trim_end_matches(char::is_alphabetic);
            let unit = &value[digits.len()..];
            !digits.is_empty()
                && digits.chars().all(|c| c.is_ascii_digit())
                && ["ms", "s", "m", "h", "d"].contains(&unit)
        };
        for (name, value) in environment(&config()) {
            if name.ends_with("_TIMEOUT") || name.ends_with("_PERIOD") {
                assert!(is_duration(&value), "{name}={value}");
            }
        }
    }

    #[test]
    fn identity_files_follow_linkerds_entrypoint() {
        let files = IdentityFiles::in_dir(Path::new("/d"));
        let commands: Vec<String> = files
            .openssl_commands("web-1.bench.serviceaccount.identity.weft.cluster.local")
            .iter()
            .map(|command| command.join(" "))
            .collect();
        assert_eq!(
            commands,
            [
                "genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out /d/key.pem",
                "pkcs8 -topk8 -nocrypt -in /d/key.pem -outform DER -out /d/key.p8",
                "req -new -key /d/key.pem -subj /CN=web-1.bench.serviceaccount.identity.weft.cluster.local \
                 -addext subjectAltName=DNS:web-1.bench.serviceaccount.identity.weft.cluster.local \
                 -outform DER -out /d/csr.der",
            ]
        );
        assert_eq!(files.token, Path::new("/d/token"));
    }
}
