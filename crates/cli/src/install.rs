//! `weft install`, `weft install --crds` and `weft uninstall`: print the
//! Kubernetes manifests of weft's control plane, as Linkerd 2.12+ does,
//! without touching a cluster:
//!
//! ```text
//! weft install --crds | kubectl apply -f -     the CustomResourceDefinitions
//! weft install        | kubectl apply -f -     namespace, RBAC, identity, Services, controller,
//!                                              the proxy injector's webhook
//! weft uninstall      | kubectl delete --ignore-not-found -f -
//! ```
//!
//! Output is one multi-document YAML stream on stdout, or with
//! `--output DIR` one file per object, `<nn>-<kind>-<name>.yaml` in apply
//! order. The same flags and credential files render the same bytes
//! (golden files rely on it): only generated credentials and the generated
//! API token differ per run.
//!
//! - [`credentials`]: the identity trust anchor and issuer, generated or read and checked;
//! - [`control_plane`]: the control plane's typed objects;
//! - [`rbac`]: the controller's least-privilege roles;
//! - [`manifest`]: one object rendered as YAML, and its file name.

pub mod control_plane;
pub mod credentials;
pub mod manifest;
pub mod rbac;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom as _, SystemRandom};
use time::OffsetDateTime;

use crate::global_options::GlobalOptions;
use control_plane::{ControlPlaneOptions, ControlPlaneSecrets, ImagePullPolicy};
use credentials::{CredentialError, CredentialSource, IdentityNames};
use manifest::{Manifest, RenderError};
use weft_core::inject::ProxyResources;

/// Random bytes in a generated API token (as the controller makes them).
const API_TOKEN_BYTES: usize = 32;

/// `weft install`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Print the CustomResourceDefinitions (apply them first) instead of the control plane.
    #[arg(
        long,
        conflicts_with_all = [
            "ha", "controller_replicas", "controller_image", "controller_log_level",
            "image_pull_policy", "proxy_image", "proxy_version", "proxy_log_level",
            "proxy_cpu_request", "proxy_cpu_limit", "proxy_memory_request", "proxy_memory_limit",
            "identity_trust_anchors_file",
            "identity_issuer_certificate_file", "identity_issuer_key_file",
            "identity_external_issuer", "api_token_file",
        ]
    )]
    pub crds: bool,
    /// Write one file per object into this directory (created; must be empty)
    /// instead of printing to stdout.
    #[arg(long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// High availability: 3 controller replicas on distinct nodes, a
    /// PodDisruptionBudget, higher resource requests.
    #[arg(long)]
    pub ha: bool,
    /// The controller's replicas (default 1, or 3 with --ha).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    pub controller_replicas: Option<i32>,
    /// The controller's image (default ghcr.io/weft-mesh/weft-controller:<this version>).
    #[arg(long, value_name = "IMAGE", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub controller_image: Option<String>,
    /// The controller's log filter (`RUST_LOG` syntax: `info`, `debug`, `weft_controller=debug`…).
    #[arg(
        long,
        value_name = "FILTER",
        default_value = "info",
        value_parser = clap::builder::NonEmptyStringValueParser::new()
    )]
    pub controller_log_level: String,
    /// The pull policy of the controller's image (default IfNotPresent)
    /// and, when given, of the proxy images the injector adds.
    #[arg(long, value_enum)]
    pub image_pull_policy: Option<ImagePullPolicy>,
    /// The image (without tag) of the proxy the injector adds to pods
    /// (default ghcr.io/weft-mesh/weft-proxy).
    #[arg(long, value_name = "IMAGE", value_parser = untagged_image)]
    pub proxy_image: Option<String>,
    /// The version (image tag) of the proxy the injector adds (default this version of weft).
    #[arg(long, value_name = "TAG", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub proxy_version: Option<String>,
    /// The injected proxies' log filter (default `warn,weft_proxy=info`;
    /// a pod's `config.weft.io/proxy-log-level` wins).
    #[arg(long, value_name = "FILTER", value_parser = weft_core::inject::check_log_level)]
    pub proxy_log_level: Option<String>,
    /// The injected proxy's CPU request, e.g. `100m` (default none; a pod's
    /// `config.weft.io/proxy-cpu-request` wins).
    #[arg(long, value_name = "QUANTITY", value_parser = weft_core::inject::check_quantity)]
    pub proxy_cpu_request: Option<String>,
    /// The injected proxy's CPU limit (default none).
    #[arg(long, value_name = "QUANTITY", value_parser = weft_core::inject::check_quantity)]
    pub proxy_cpu_limit: Option<String>,
    /// The injected proxy's memory request, e.g. `20Mi` (default none).
    #[arg(long, value_name = "QUANTITY", value_parser = weft_core::inject::check_quantity)]
    pub proxy_memory_request: Option<String>,
    /// The injected proxy's memory limit (default none).
    #[arg(long, value_name = "QUANTITY", value_parser = weft_core::inject::check_quantity)]
    pub proxy_memory_limit: Option<String>,
    /// PEM trust anchors (root CAs) instead of a generated one. With an
    /// issuer certificate and key, or with --identity-external-issuer.
    #[arg(long, value_name = "FILE")]
    pub identity_trust_anchors_file: Option<PathBuf>,
    /// PEM issuer (intermediate CA) certificate signed by a trust anchor.
    #[arg(
        long,
        value_name = "FILE",
        requires_all = ["identity_issuer_key_file", "identity_trust_anchors_file"]
    )]
    pub identity_issuer_certificate_file: Option<PathBuf>,
    /// The issuer's PKCS#8 PEM key.
    #[arg(
        long,
        value_name = "FILE",
        requires_all = ["identity_issuer_certificate_file", "identity_trust_anchors_file"]
    )]
    pub identity_issuer_key_file: Option<PathBuf>,
    /// Do not write the issuer Secret (`weft-identity-issuer`, kubernetes.io/tls):
    /// cert-manager or you write it. Requires --identity-trust-anchors-file.
    #[arg(
        long,
        requires = "identity_trust_anchors_file",
        conflicts_with_all = ["identity_issuer_certificate_file", "identity_issuer_key_file"]
    )]
    pub identity_external_issuer: bool,
    /// Use the token in this file (surrounding white space ignored) as the
    /// API token instead of a random one: keeps tap's token across re-installs,
    /// and makes the output reproducible.
    #[arg(long, value_name = "FILE")]
    pub api_token_file: Option<PathBuf>,
}

/// `--proxy-image`: an image name without tag or digest (the tag is
/// `--proxy-version`; a registry's port is fine).
pub fn untagged_image(text: &str) -> Result<String, String> {
    let last = text.rsplit('/').next().unwrap_or(text);
    if text.is_empty() || last.is_empty() {
        Err("an image name is required".to_string())
    } else if last.contains(':') || text.contains('@') {
        Err("give the image without tag or digest; the tag is --proxy-version".to_string())
    } else {
        Ok(text.to_string())
    }
}

/// `weft uninstall`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct UninstallArgs {
    /// Write one file per object into this directory (created; must be empty)
    /// instead of printing to stdout.
    #[arg(long, value_name = "DIR")]
    pub output: Option<PathBuf>,
}

/// Why the manifests could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The identity credentials could not be made or read.
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    /// Only a trust-anchor file was given.
    #[error(
        "--identity-trust-anchors-file needs --identity-issuer-certificate-file and \
         --identity-issuer-key-file, or --identity-external-issuer"
    )]
    TrustAnchorsAlone,
    /// The API token file could not be read or is empty.
    #[error("{path}: {reason}")]
    ApiTokenFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The injected proxy's resources would be refused by Kubernetes.
    #[error("--proxy-cpu-*/--proxy-memory-*: {0}")]
    ProxyResources(String),
    /// The system random source failed.
    #[error("cannot make a random API token")]
    Random,
    /// An object could not be rendered.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// The output directory has files in it already.
    #[error("{0}: the directory is not empty (stale manifests would be applied with the new ones)")]
    OutputNotEmpty(PathBuf),
    /// Writing the output failed.
    #[error("{path}: {source}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// `weft install`.
pub async fn run(_global: &GlobalOptions, args: Args) -> anyhow::Result<ExitCode> {
    let manifests = if args.crds {
        crd_manifests()?
    } else {
        control_plane_manifests(&args)?
    };
    write(&manifests, args.output.as_deref())?;
    Ok(ExitCode::SUCCESS)
}

/// `weft uninstall`: a reference to everything `weft install` and
/// `weft install --crds` create, in reverse apply order.
pub async fn run_uninstall(
    _global: &GlobalOptions,
    args: UninstallArgs,
) -> anyhow::Result<ExitCode> {
    write(&uninstall_manifests()?, args.output.as_deref())?;
    Ok(ExitCode::SUCCESS)
}

/// The CRDs, rendered.
pub fn crd_manifests() -> Result<Vec<Manifest>, InstallError> {
    weft_core::crds::custom_resource_definitions()
        .iter()
        .map(|definition| Manifest::new(definition).map_err(InstallError::from))
        .collect()
}

/// The references `weft uninstall` prints: every object of an HA install
/// with an issuer Secret, then the CRDs, all in reverse order.
pub fn uninstall_manifests() -> Result<Vec<Manifest>, InstallError> {
    let options = ControlPlaneOptions {
        high_availability: true,
        ..ControlPlaneOptions::default()
    };
    let secrets = ControlPlaneSecrets {
        identity: credentials::IdentityCredentials {
            trust_anchors_pem: String::new(),
            issuer: Some(credentials::IssuerCredentials {
                certificate_pem: String::new(),
                key_pem: String::new(),
            }),
        },
        api_token: String::new(),
    };
    let mut everything = crd_manifests()?;
    everything.extend(control_plane::manifests(&options, &secrets)?);
    everything
        .iter()
        .rev()
        .map(|manifest| manifest.reference().map_err(InstallError::from))
        .collect()
}

/// Where the identity credentials come from, from the flags.
pub fn credential_source(args: &Args) -> Result<CredentialSource, InstallError> {
    match (
        &args.identity_trust_anchors_file,
        &args.identity_issuer_certificate_file,
        &args.identity_issuer_key_file,
    ) {
        (None, _, _) => Ok(CredentialSource::Generate),
        (Some(trust_anchors), _, _) if args.identity_external_issuer => {
            Ok(CredentialSource::External {
                trust_anchors: trust_anchors.clone(),
            })
        }
        (Some(trust_anchors), Some(issuer_certificate), Some(issuer_key)) => {
            Ok(CredentialSource::Files {
                trust_anchors: trust_anchors.clone(),
                issuer_certificate: issuer_certificate.clone(),
                issuer_key: issuer_key.clone(),
            })
        }
        (Some(_), _, _) => Err(InstallError::TrustAnchorsAlone),
    }
}

/// The control plane's settings, from the flags.
pub fn control_plane_options(args: &Args) -> ControlPlaneOptions {
    let default_replicas = if args.ha { 3 } else { 1 };
    ControlPlaneOptions {
        controller_image: args
            .controller_image
            .clone()
            .unwrap_or_else(control_plane::default_controller_image),
        image_pull_policy: args
            .image_pull_policy
            .unwrap_or(ImagePullPolicy::IfNotPresent),
        replicas: args.controller_replicas.unwrap_or(default_replicas),
        high_availability: args.ha,
        log_level: args.controller_log_level.clone(),
        proxy_image: args
            .proxy_image
            .clone()
            .unwrap_or_else(|| control_plane::DEFAULT_PROXY_IMAGE.to_string()),
        proxy_version: args
            .proxy_version
            .clone()
            .unwrap_or_else(control_plane::default_proxy_version),
        proxy_image_pull_policy: args.image_pull_policy,
        proxy_log_level: args.proxy_log_level.clone(),
        proxy_resources: ProxyResources {
            cpu_request: args.proxy_cpu_request.clone(),
            cpu_limit: args.proxy_cpu_limit.clone(),
            memory_request: args.proxy_memory_request.clone(),
            memory_limit: args.proxy_memory_limit.clone(),
        },
    }
}

fn control_plane_manifests(args: &Args) -> Result<Vec<Manifest>, InstallError> {
    let options = control_plane_options(args);
    options
        .proxy_resources
        .check()
        .map_err(InstallError::ProxyResources)?;
    let source = credential_source(args)?;
    let identity = credentials::obtain(
        &source,
        &IdentityNames::default(),
        OffsetDateTime::now_utc(),
    )?;
    let api_token = match &args.api_token_file {
        Some(path) => read_api_token(path)?,
        None => random_api_token()?,
    };
    let secrets = ControlPlaneSecrets {
        identity,
        api_token,
    };
    Ok(control_plane::manifests(&options, &secrets)?)
}

fn read_api_token(path: &Path) -> Result<String, InstallError> {
    let text = std::fs::read_to_string(path).map_err(|error| InstallError::ApiTokenFile {
        path: path.to_path_buf(),
        reason: error.to_string(),
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(InstallError::ApiTokenFile {
            path: path.to_path_buf(),
            reason: "the file is empty".to_string(),
        });
    }
    Ok(token.to_string())
}

fn random_api_token() -> Result<String, InstallError> {
    let mut bytes = [0u8; API_TOKEN_BYTES];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| InstallError::Random)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Prints the manifests, or writes them one per file into `directory`.
fn write(manifests: &[Manifest], directory: Option<&Path>) -> Result<(), InstallError> {
    let Some(directory) = directory else {
        let mut stdout = std::io::stdout().lock();
        return stdout
            .write_all(manifest::stream(manifests).as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(|source| InstallError::Write {
                path: PathBuf::from("<stdout>"),
                source,
            });
    };
    let write_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| InstallError::Write { path, source }
    };
    std::fs::create_dir_all(directory).map_err(write_error(directory))?;
    let mut entries = std::fs::read_dir(directory).map_err(write_error(directory))?;
    if entries.next().is_some() {
        return Err(InstallError::OutputNotEmpty(directory.to_path_buf()));
    }
    let width = manifest::index_width(manifests.len());
    for (index, manifest) in manifests.iter().enumerate() {
        let path = directory.join(manifest.file_name(index, width));
        std::fs::write(&path, &manifest.document).map_err(write_error(&path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untagged_image_table() {
        let cases = [
            ("ghcr.io/weft-mesh/weft-proxy", true),
            ("registry:5000/weft/proxy", true),
            ("proxy", true),
            ("proxy:0.1.0", false),
            ("registry:5000/weft/proxy:v1", false),
            ("ghcr.io/weft-mesh/weft-proxy@sha256:abc", false),
            ("", false),
            ("registry/", false),
        ];
        for (image, accepted) in cases {
            assert_eq!(untagged_image(image).is_ok(), accepted, "{image:?}");
        }
    }
}
