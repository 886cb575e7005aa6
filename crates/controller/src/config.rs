//! `weft-controller`'s command line: the server's flags ([`Args`], each with a
//! `WEFT_CONTROLLER_*` environment fallback) and the `identity` subcommands
//! that create credentials ([`IdentityCommand`]). clap parses once; values
//! are checked as they are parsed (addresses, durations, DNS names), and the
//! identity flags that only make sense together are tied by `requires`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use weft_core::policy::default_policy::DEFAULT_CLUSTER_NETWORKS;
use weft_core::policy::{Cidr, DefaultPolicy};

use crate::identity::authority::ValidityPolicy;
use crate::identity::init::{InitOptions, TOKEN_KEY_FILE};
use crate::identity::issuer_files::IssuerPaths;
use crate::identity::issuer_secret::IssuerSecretRef;
use crate::identity::{
    DEFAULT_CONTROL_NAMESPACE, DEFAULT_TRUST_DOMAIN, IdentityDomain, is_dns_label, is_dns_name,
};
use weft_core::cluster::{TOKEN_AUDIENCE, TRUST_ANCHORS_CONFIGMAP};

/// Command-line flags (each with an environment fallback).
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "weft-controller",
    about = "The weft control plane",
    version,
    subcommand_negates_reqs = true,
    args_conflicts_with_subcommands = true
)]
pub struct Args {
    /// A one-off command instead of serving.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The mesh file: multi-document YAML of Services, Workloads,
    /// ServiceProfiles and TrafficSplits. Watched for edits.
    #[arg(
        long,
        env = "WEFT_CONTROLLER_MESH_FILE",
        required_unless_present = "kubernetes"
    )]
    pub mesh_file: Option<PathBuf>,
    /// The Kubernetes API as the catalog's source instead of a mesh file.
    #[command(flatten)]
    pub kubernetes: KubernetesArgs,
    /// Where the Destination gRPC service listens.
    #[arg(
        long,
        env = "WEFT_CONTROLLER_DESTINATION_ADDR",
        default_value = "0.0.0.0:8086"
    )]
    pub destination_addr: SocketAddr,
    /// Where the admin HTTP server (/metrics, /ready, /live) listens.
    #[arg(
        long,
        env = "WEFT_CONTROLLER_ADMIN_ADDR",
        default_value = "127.0.0.1:9990"
    )]
    pub admin_addr: SocketAddr,
    /// Do not upgrade HTTP/1.1 to HTTP/2 between meshed proxies: meshed
    /// endpoints are sent without the `H2` protocol hint, so HTTP/1.1 goes
    /// over (mutual TLS) HTTP/1.1 connections of its own.
    #[arg(long, env = "WEFT_CONTROLLER_DISABLE_H2_UPGRADE")]
    pub disable_h2_upgrade: bool,
    /// The Identity service (enabled by --identity-issuer-dir).
    #[command(flatten)]
    pub identity: IdentityArgs,
    /// The HTTP API and dashboard listener, and where its golden metrics come from.
    #[command(flatten)]
    pub web: WebArgs,
    /// Who may use tap and which Host names the dashboard answers.
    #[command(flatten)]
    pub access: AccessArgs,
    /// Bounds on what clients and the mesh file may make the controller hold.
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Inbound authorization policy: defaults and where it is served.
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// The proxy injector (a mutating admission webhook) and what it injects.
    #[command(flatten)]
    pub injector: InjectorArgs,
}

/// The proxy injector's flags: where it listens and what it puts into pods
/// (the default inbound policy and cluster networks are [`PolicyArgs`]').
#[derive(Debug, Clone, clap::Args)]
pub struct InjectorArgs {
    /// Serve the proxy injector (the `weft-proxy-injector` mutating
    /// admission webhook, HTTPS on `POST /inject`) on this address, with a
    /// certificate from the identity issuer (so identity must be on).
    /// Empty: off.
    #[arg(long, env = "WEFT_CONTROLLER_INJECTOR_ADDR", default_value = "", value_parser = optional_address)]
    pub injector_addr: OptionalAddress,
    /// The proxy image injected, without its tag (it also holds `weft-init`).
    #[arg(
        long,
        env = "WEFT_CONTROLLER_PROXY_IMAGE",
        default_value = "ghcr.io/weft-mesh/weft-proxy",
        value_parser = image_name
    )]
    pub proxy_image: String,
    /// The proxy image's tag (default: this controller's version); pods may
    /// override it with `config.weft.io/proxy-version`.
    #[arg(long, env = "WEFT_CONTROLLER_PROXY_VERSION", default_value = env!("CARGO_PKG_VERSION"), value_parser = image_tag)]
    pub proxy_version: String,
    /// `imagePullPolicy` of the injected containers: Always, IfNotPresent
    /// or Never (default: unset, Kubernetes decides).
    #[arg(long, env = "WEFT_CONTROLLER_PROXY_IMAGE_PULL_POLICY", value_parser = ["Always", "IfNotPresent", "Never"])]
    pub proxy_image_pull_policy: Option<String>,
    /// The cluster's DNS domain: the injected proxies reach the control
    /// plane at `weft-dst.<namespace>.svc.<domain>.` and friends.
    #[arg(long, env = "WEFT_CONTROLLER_CLUSTER_DOMAIN", default_value = "cluster.local", value_parser = dns_name)]
    pub cluster_domain: String,
    /// The injected proxies' log filter, unless a pod's
    /// `config.weft.io/proxy-log-level` says otherwise.
    #[arg(long, env = "WEFT_CONTROLLER_PROXY_LOG_LEVEL", default_value = "warn,weft_proxy=info", value_parser = weft_core::inject::check_log_level)]
    pub proxy_log_level: String,
    /// The injected proxy's CPU request (a quantity such as `100m`), unless
    /// a pod's `config.weft.io/proxy-cpu-request` says otherwise. Unset: none.
    #[arg(long, env = "WEFT_CONTROLLER_PROXY_CPU_REQUEST", value_parser = weft_core::inject::check_quantity)]
    pub proxy_cpu_request: Option<String>,
    /// The injected proxy's CPU limit (`config.weft.io/proxy-cpu-limit`). Unset: none.
    #[arg(long, env = "WEFT_CONTROLLER_PROXY_CPU_LIMIT", value_parser = weft_core::inject::check_quantity)]
    pub proxy_cpu_limit: Option<String>,
    /// The injected proxy's memory request (a quantity such as `20Mi`;
    /// `config.weft.io/proxy-memory-request`). Unset: none.
    #[arg(long, env = "WEFT_CONTROLLER_PROXY_MEMORY_REQUEST", value_parser = weft_core::inject::check_quantity)]
    pub proxy_memory_request: Option<String>,
    /// The injected proxy's memory limit (`config.weft.io/proxy-memory-limit`). Unset: none.
    #[arg(long, env = "WEFT_CONTROLLER_PROXY_MEMORY_LIMIT", value_parser = weft_core::inject::check_quantity)]
    pub proxy_memory_limit: Option<String>,
}

/// The Kubernetes source's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct KubernetesArgs {
    /// Read the mesh from the Kubernetes API (Services, EndpointSlices, Pods,
    /// Namespaces and weft's custom resources) instead of a mesh file.
    #[arg(long, env = "WEFT_CONTROLLER_KUBERNETES", conflicts_with = "mesh_file")]
    pub kubernetes: bool,
    /// The kubeconfig file to reach the API with. Default: the pod's
    /// ServiceAccount in a cluster, else $KUBECONFIG or ~/.kube/config.
    #[arg(long, env = "WEFT_CONTROLLER_KUBECONFIG", conflicts_with = "mesh_file")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current context).
    #[arg(
        long,
        env = "WEFT_CONTROLLER_KUBE_CONTEXT",
        conflicts_with = "mesh_file"
    )]
    pub kube_context: Option<String>,
}

/// The inbound policy service's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct PolicyArgs {
    /// The inbound policy of ports no Server selects, unless the Workload's
    /// `config.linkerd.io/default-inbound-policy` annotation says otherwise:
    /// all-unauthenticated, all-authenticated, cluster-unauthenticated,
    /// cluster-authenticated, deny or audit.
    #[arg(
        long,
        env = "WEFT_CONTROLLER_DEFAULT_INBOUND_POLICY",
        default_value = "all-unauthenticated",
        value_parser = default_inbound_policy
    )]
    pub default_inbound_policy: DefaultPolicy,
    /// The networks the `cluster-*` default policies admit (comma-separated CIDRs).
    #[arg(
        long,
        env = "WEFT_CONTROLLER_CLUSTER_NETWORKS",
        default_value = DEFAULT_CLUSTER_NETWORKS,
        value_parser = cluster_networks
    )]
    pub cluster_networks: ClusterNetworks,
    /// Also serve the policy services (InboundServerPolicies) on this
    /// address, as Linkerd's policy controller does on 8090 (they are
    /// always served on --destination-addr). Empty: off.
    #[arg(long, env = "WEFT_CONTROLLER_POLICY_ADDR", default_value = "", value_parser = optional_address)]
    pub policy_addr: OptionalAddress,
}

/// `--cluster-networks`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNetworks(pub Vec<Cidr>);

/// An address flag that may be empty (off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionalAddress(pub Option<SocketAddr>);

/// Bounds on the resources clients and the mesh file may take.
#[derive(Debug, Clone, clap::Args)]
pub struct LimitArgs {
    /// Destination streams (Get and GetProfile) one client may hold open at
    /// once; more are refused with RESOURCE_EXHAUSTED. A client is its
    /// verified TLS identity, else its IP address (so every plaintext proxy
    /// on this host counts as one client).
    #[arg(
        long,
        env = "WEFT_CONTROLLER_DESTINATION_MAX_STREAMS_PER_CLIENT",
        default_value_t = 1_000,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub destination_max_streams_per_client: u32,
    /// Destination streams all clients together may hold open at once.
    #[arg(
        long,
        env = "WEFT_CONTROLLER_DESTINATION_MAX_STREAMS",
        default_value_t = 20_000,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub destination_max_streams: u32,
    /// The largest mesh file loaded (bytes); a bigger one is refused and the
    /// last good version keeps serving.
    #[arg(
        long,
        env = "WEFT_CONTROLLER_MESH_FILE_MAX_BYTES",
        default_value_t = 8 * 1024 * 1024,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub mesh_file_max_bytes: u64,
    /// The most documents (objects) a mesh file may hold; more are refused
    /// and the last good version keeps serving.
    #[arg(
        long,
        env = "WEFT_CONTROLLER_MESH_FILE_MAX_OBJECTS",
        default_value_t = 20_000,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub mesh_file_max_objects: u32,
}

/// Tap's token and the dashboard's allowed Host names.
#[derive(Debug, Clone, clap::Args)]
pub struct AccessArgs {
    /// The API token tap requires (`Authorization: Bearer`; never in the URL):
    /// read from this file, or created there (mode 0600) with a random
    /// token when absent. Without it, tap refuses every caller.
    #[arg(long, env = "WEFT_CONTROLLER_API_TOKEN_FILE")]
    pub api_token_file: Option<PathBuf>,
    /// More Host names the dashboard and tap answer (besides localhost,
    /// 127.0.0.1 and [::1], any port); others get 403, against DNS
    /// rebinding. Comma-separated or repeated.
    #[arg(long, env = "WEFT_CONTROLLER_WEB_ALLOWED_HOSTS", value_delimiter = ',')]
    pub web_allowed_hosts: Vec<String>,
    /// How tap reaches the proxies when identity is on: `auto` = mutual TLS
    /// with the controller's certificate (the proxy's identity verified)
    /// except to a loopback address; `always`; `never` (plaintext). Without
    /// identity, always plaintext.
    #[arg(
        long,
        env = "WEFT_CONTROLLER_TAP_TLS",
        value_enum,
        default_value = "auto"
    )]
    pub tap_tls: TapTls,
}

/// When tap connects to a proxy with TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TapTls {
    /// TLS except to loopback addresses.
    Auto,
    /// Always TLS.
    Always,
    /// Never TLS.
    Never,
}

/// The web listener's flags: the JSON API (`docs/api.md`) and the metrics
/// behind it.
#[derive(Debug, Clone, clap::Args)]
pub struct WebArgs {
    /// Where the HTTP API and the dashboard listen.
    #[arg(
        long,
        env = "WEFT_CONTROLLER_WEB_ADDR",
        default_value = "127.0.0.1:8084"
    )]
    pub web_addr: SocketAddr,
    /// How often every meshed proxy's `/metrics` is scraped (Go duration).
    #[arg(long, env = "WEFT_CONTROLLER_SCRAPE_INTERVAL", default_value = "10s", value_parser = duration)]
    pub scrape_interval: Duration,
    /// How long scraped samples are kept; queries may span at most this (Go duration).
    #[arg(long, env = "WEFT_CONTROLLER_METRICS_RETENTION", default_value = "15m", value_parser = duration)]
    pub metrics_retention: Duration,
    /// Answer golden-metrics queries from this Prometheus (`http://host:9090`)
    /// instead of scraping the proxies.
    #[arg(long, env = "WEFT_CONTROLLER_PROMETHEUS_URL", value_parser = http_url)]
    pub prometheus_url: Option<String>,
}

/// The Identity service's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct IdentityArgs {
    /// Directory with the issuer's `crt.pem` and `key.pem` (PKCS#8 or SEC1); enables
    /// the Identity service. Watched: replaced files are reloaded.
    #[arg(
        long,
        env = "WEFT_CONTROLLER_IDENTITY_ISSUER_DIR",
        requires = "identity_trust_anchors"
    )]
    pub identity_issuer_dir: Option<PathBuf>,
    /// PEM bundle of trust anchors the issuer must chain to. Watched.
    #[arg(
        long,
        env = "WEFT_CONTROLLER_IDENTITY_TRUST_ANCHORS",
        requires = "identity_issuer_dir"
    )]
    pub identity_trust_anchors: Option<PathBuf>,
    // The next two need --kubernetes: as --mesh-file is required without
    // it, conflicting with --mesh-file says so (clap's `requires` takes the
    // `--kubernetes` flag's default `false` as present).
    /// With --kubernetes: the `kubernetes.io/tls` Secret in the control
    /// namespace holding the issuer (`tls.crt`, possibly followed by its
    /// chain, and `tls.key`, PKCS#8 or SEC1; cert-manager's `ca.crt` is the anchor
    /// when the trust-anchor ConfigMap does not exist); enables the Identity
    /// service instead of --identity-issuer-dir. Watched: edits are reloaded.
    #[arg(
        long,
        env = "WEFT_CONTROLLER_IDENTITY_ISSUER_SECRET",
        conflicts_with_all = ["identity_issuer_dir", "mesh_file"],
        value_parser = dns_name
    )]
    pub identity_issuer_secret: Option<String>,
    /// With --identity-issuer-secret: the ConfigMap in the control namespace
    /// whose `ca-bundle.crt` holds the trust anchors. Watched.
    #[arg(
        long,
        env = "WEFT_CONTROLLER_IDENTITY_TRUST_ANCHORS_CONFIGMAP",
        default_value = TRUST_ANCHORS_CONFIGMAP,
        requires = "identity_issuer_secret",
        value_parser = dns_name
    )]
    pub identity_trust_anchors_configmap: String,
    /// With --kubernetes: the audience proxies' ServiceAccount tokens must
    /// be issued for (checked with a TokenReview).
    #[arg(
        long,
        env = "WEFT_CONTROLLER_IDENTITY_TOKEN_AUDIENCE",
        default_value = TOKEN_AUDIENCE,
        conflicts_with = "mesh_file"
    )]
    pub identity_token_audience: String,
    /// Where the Identity gRPC service listens.
    #[arg(
        long,
        env = "WEFT_CONTROLLER_IDENTITY_ADDR",
        default_value = "0.0.0.0:8080"
    )]
    pub identity_addr: SocketAddr,
    /// With identity on, also serve plaintext gRPC to peers that are not on
    /// loopback (by default only proxies on this host may skip TLS).
    #[arg(long, env = "WEFT_CONTROLLER_ALLOW_REMOTE_PLAINTEXT")]
    pub allow_remote_plaintext: bool,
    /// The trust domain: the last labels of every identity.
    #[arg(long, env = "WEFT_CONTROLLER_IDENTITY_TRUST_DOMAIN", default_value = DEFAULT_TRUST_DOMAIN, value_parser = dns_name)]
    pub identity_trust_domain: String,
    /// The control plane's namespace, as written in identities (and, with
    /// --kubernetes, where the issuer Secret and anchor ConfigMap are).
    #[arg(long, env = "WEFT_CONTROLLER_IDENTITY_CONTROL_NAMESPACE", default_value = DEFAULT_CONTROL_NAMESPACE, value_parser = dns_label)]
    pub identity_control_namespace: String,
    /// Lifetime of issued leaf certificates (Go duration).
    #[arg(long, env = "WEFT_CONTROLLER_IDENTITY_ISSUANCE_LIFETIME", default_value = "24h", value_parser = duration)]
    pub identity_issuance_lifetime: Duration,
    /// Added before NotBefore and after NotAfter for clocks that disagree.
    #[arg(long, env = "WEFT_CONTROLLER_IDENTITY_CLOCK_SKEW_ALLOWANCE", default_value = "20s", value_parser = duration)]
    pub identity_clock_skew_allowance: Duration,
    /// The key signing the controller's tokens (32 bytes, created with mode
    /// 0600 if missing); default: `token.key` beside the issuer directory.
    /// Not with --kubernetes (ServiceAccount tokens are used there).
    #[arg(
        long,
        env = "WEFT_CONTROLLER_IDENTITY_TOKEN_KEY",
        requires = "identity_issuer_dir",
        conflicts_with = "kubernetes"
    )]
    pub identity_token_key: Option<PathBuf>,
    /// Write a token for every meshed Workload to `DIR/<namespace>/<workload>.token`.
    /// Not with --kubernetes.
    #[arg(
        long,
        env = "WEFT_CONTROLLER_IDENTITY_TOKEN_DIR",
        requires = "identity_issuer_dir",
        conflicts_with = "kubernetes"
    )]
    pub identity_token_dir: Option<PathBuf>,
    /// How long a token written to the token directory is accepted (Go
    /// duration, at least 2s). Files are rewritten when less than half of it
    /// is left, so a proxy always reads a valid one.
    #[arg(long, env = "WEFT_CONTROLLER_IDENTITY_TOKEN_LIFETIME", default_value = "24h", value_parser = token_lifetime)]
    pub identity_token_lifetime: Duration,
}

/// Everything the Identity service needs, when it is enabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityConfig {
    /// Where the issuer and the trust anchors are.
    pub issuer: IssuerLocation,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The names' suffix.
    pub domain: IdentityDomain,
    /// Leaf lifetime and skew.
    pub policy: ValidityPolicy,
    /// How proxies' tokens are checked.
    pub tokens: TokenConfig,
}

/// Where the issuer and the trust anchors are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssuerLocation {
    /// Files (`--identity-issuer-dir`, `--identity-trust-anchors`).
    Files(IssuerPaths),
    /// A Secret and a ConfigMap (`--identity-issuer-secret`).
    Secret(IssuerSecretRef),
}

/// How proxies' tokens are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenConfig {
    /// The controller's own tokens, for the mesh file's workloads.
    Minted {
        /// The token key file.
        key: PathBuf,
        /// Where token files go, if anywhere.
        dir: Option<PathBuf>,
        /// How long a written token is accepted.
        lifetime: Duration,
    },
    /// ServiceAccount tokens, checked with a Kubernetes TokenReview (--kubernetes).
    Review {
        /// The audience the tokens must be for.
        audience: String,
    },
}

impl IdentityArgs {
    /// The Identity service's configuration; `None` when it is not enabled.
    /// `kubernetes`: whether `--kubernetes` is on (tokens are then
    /// ServiceAccount tokens).
    pub fn config(&self, kubernetes: bool) -> Option<IdentityConfig> {
        let issuer = match (&self.identity_issuer_dir, &self.identity_issuer_secret) {
            (Some(issuer_dir), _) => IssuerLocation::Files(IssuerPaths {
                issuer_dir: issuer_dir.clone(),
                trust_anchors: self.identity_trust_anchors.clone()?,
            }),
            (None, Some(secret)) => IssuerLocation::Secret(IssuerSecretRef {
                namespace: self.identity_control_namespace.clone(),
                secret: secret.clone(),
                trust_anchors_configmap: self.identity_trust_anchors_configmap.clone(),
            }),
            (None, None) => return None,
        };
        let tokens = match &issuer {
            _ if kubernetes => TokenConfig::Review {
                audience: self.identity_token_audience.clone(),
            },
            IssuerLocation::Files(paths) => TokenConfig::Minted {
                key: self.identity_token_key.clone().unwrap_or_else(|| {
                    let state_dir = paths
                        .issuer_dir
                        .parent()
                        .filter(|parent| !parent.as_os_str().is_empty())
                        .map_or_else(|| PathBuf::from("."), PathBuf::from);
                    state_dir.join(TOKEN_KEY_FILE)
                }),
                dir: self.identity_token_dir.clone(),
                lifetime: self.identity_token_lifetime,
            },
            // clap requires --kubernetes for a Secret.
            IssuerLocation::Secret(_) => TokenConfig::Review {
                audience: self.identity_token_audience.clone(),
            },
        };
        Some(IdentityConfig {
            issuer,
            addr: self.identity_addr,
            domain: IdentityDomain {
                control_namespace: self.identity_control_namespace.clone(),
                trust_domain: self.identity_trust_domain.clone(),
            },
            policy: ValidityPolicy {
                lifetime: self.identity_issuance_lifetime,
                clock_skew: self.identity_clock_skew_allowance,
            },
            tokens,
        })
    }
}

/// One-off commands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Identity credentials.
    #[command(subcommand)]
    Identity(IdentityCommand),
}

/// `weft-controller identity …`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum IdentityCommand {
    /// Create a trust anchor, an issuer signed by it and a token key in a
    /// state directory (refuses to replace files unless --force).
    Init {
        /// The state directory.
        #[arg(long)]
        dir: PathBuf,
        /// Names shared with the controller's flags.
        #[command(flatten)]
        names: NameArgs,
        /// Lifetime of the trust anchor (Go duration).
        #[arg(long, default_value = "8760h", value_parser = duration)]
        trust_anchor_lifetime: Duration,
        /// Lifetime of the issuer (Go duration).
        #[arg(long, default_value = "8760h", value_parser = duration)]
        issuer_lifetime: Duration,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
    },
    /// Sign a new issuer with the state directory's trust anchor and replace
    /// `issuer/crt.pem` and `issuer/key.pem` (a running controller reloads them).
    RotateIssuer {
        /// The state directory (from `identity init`).
        #[arg(long)]
        dir: PathBuf,
        /// Names shared with the controller's flags.
        #[command(flatten)]
        names: NameArgs,
        /// Lifetime of the new issuer (Go duration).
        #[arg(long, default_value = "8760h", value_parser = duration)]
        issuer_lifetime: Duration,
    },
}

/// The names certificates are created with.
#[derive(Debug, Clone, clap::Args)]
pub struct NameArgs {
    /// The trust domain.
    #[arg(long, default_value = DEFAULT_TRUST_DOMAIN, value_parser = dns_name)]
    pub trust_domain: String,
    /// The control plane's namespace.
    #[arg(long, default_value = DEFAULT_CONTROL_NAMESPACE, value_parser = dns_label)]
    pub control_namespace: String,
}

impl NameArgs {
    /// As an identity domain.
    pub fn domain(&self) -> IdentityDomain {
        IdentityDomain {
            control_namespace: self.control_namespace.clone(),
            trust_domain: self.trust_domain.clone(),
        }
    }
}

impl IdentityCommand {
    /// Runs the command; the message lists the files written.
    pub fn run(&self) -> Result<String, crate::identity::init::InitError> {
        let files = match self {
            IdentityCommand::Init {
                dir,
                names,
                trust_anchor_lifetime,
                issuer_lifetime,
                force,
            } => crate::identity::init::init(&InitOptions {
                dir: dir.clone(),
                domain: names.domain(),
                trust_anchor_lifetime: *trust_anchor_lifetime,
                issuer_lifetime: *issuer_lifetime,
                force: *force,
            })?,
            IdentityCommand::RotateIssuer {
                dir,
                names,
                issuer_lifetime,
            } => crate::identity::init::rotate_issuer(dir, &names.domain(), *issuer_lifetime)?,
        };
        let lines: Vec<String> = files
            .iter()
            .map(|file| format!("wrote {}", file.display()))
            .collect();
        Ok(lines.join("\n"))
    }
}

fn duration(text: &str) -> Result<Duration, String> {
    let value = weft_core::duration::parse_duration(text).map_err(|error| error.to_string())?;
    if value.is_zero() {
        return Err("must be more than zero".into());
    }
    Ok(value)
}

fn default_inbound_policy(text: &str) -> Result<DefaultPolicy, String> {
    DefaultPolicy::parse(text).map_err(|error| error.to_string())
}

fn cluster_networks(text: &str) -> Result<ClusterNetworks, String> {
    let networks = Cidr::parse_list(text).map_err(|error| error.to_string())?;
    if networks.is_empty() {
        return Err("give at least one network (e.g. 10.0.0.0/8)".into());
    }
    Ok(ClusterNetworks(networks))
}

fn optional_address(text: &str) -> Result<OptionalAddress, String> {
    if text.trim().is_empty() {
        return Ok(OptionalAddress(None));
    }
    text.trim()
        .parse()
        .map(|address| OptionalAddress(Some(address)))
        .map_err(|_| format!("{text:?} is not HOST:PORT (e.g. 0.0.0.0:8090), or empty for off"))
}

fn image_name(text: &str) -> Result<String, String> {
    let valid = !text.is_empty()
        && !text.contains('@')
        && !text
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'))
        && text
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "./-_:".contains(character));
    if valid {
        Ok(text.to_string())
    } else {
        Err(
            "must be an image name without a tag or digest (e.g. ghcr.io/weft-mesh/weft-proxy)"
                .into(),
        )
    }
}

fn image_tag(text: &str) -> Result<String, String> {
    let valid = !text.is_empty()
        && text.len() <= 128
        && !text.starts_with(['.', '-'])
        && text
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "._-".contains(character));
    if valid {
        Ok(text.to_string())
    } else {
        Err("must be an image tag (letters, digits, `.`, `_`, `-`; at most 128)".into())
    }
}

fn token_lifetime(text: &str) -> Result<Duration, String> {
    let value = duration(text)?;
    if value < Duration::from_secs(2) {
        return Err("must be at least 2s (tokens are renewed at half their lifetime)".into());
    }
    Ok(value)
}

fn http_url(text: &str) -> Result<String, String> {
    let url = text.trim_end_matches('/');
    let authority = url
        .strip_prefix("http://")
        .ok_or("must be an http:// URL (https is not supported)")?;
    if authority.is_empty() || authority.contains('/') {
        return Err("must be http://host:port with no path".into());
    }
    Ok(url.to_string())
}

fn dns_name(text: &str) -> Result<String, String> {
    if is_dns_name(text) {
        Ok(text.to_string())
    } else {
        Err("must be a lower-case DNS name (labels of a-z, 0-9 and -)".into())
    }
}

fn dns_label(text: &str) -> Result<String, String> {
    if is_dns_label(text) {
        Ok(text.to_string())
    } else {
        Err("must be a DNS label (a-z, 0-9 and -, at most 63)".into())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn identity_is_off_without_an_issuer() {
        let args = Args::try_parse_from(["weft-controller", "--mesh-file", "m.yaml"]).unwrap();
        assert_eq!(args.identity.config(false), None);
        let args = Args::try_parse_from(["weft-controller", "--kubernetes"]).unwrap();
        assert_eq!(args.identity.config(true), None);
    }

    #[test]
    fn identity_defaults() {
        let args = Args::try_parse_from([
            "weft-controller",
            "--mesh-file",
            "m.yaml",
            "--identity-issuer-dir",
            "/state/issuer",
            "--identity-trust-anchors",
            "/state/trust-anchor.pem",
        ])
        .unwrap();
        let config = args.identity.config(false).unwrap();
        assert_eq!(config.addr, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(config.domain, IdentityDomain::default());
        assert_eq!(config.policy, ValidityPolicy::default());
        assert_eq!(
            config.tokens,
            TokenConfig::Minted {
                key: PathBuf::from("/state/token.key"),
                dir: None,
                lifetime: Duration::from_secs(24 * 3600),
            }
        );
    }

    #[test]
    fn kubernetes_flags_refuse_a_mesh_file() {
        for flags in [
            &["--mesh-file", "m.yaml", "--kubernetes"][..],
            &["--mesh-file", "m.yaml", "--kubeconfig", "k"][..],
            &["--mesh-file", "m.yaml", "--kube-context", "c"][..],
        ] {
            let error = Args::try_parse_from(["weft-controller"].iter().chain(flags)).unwrap_err();
            assert_eq!(
                error.kind(),
                clap::error::ErrorKind::ArgumentConflict,
                "{flags:?}"
            );
        }
        assert!(Args::try_parse_from(["weft-controller", "--kubernetes"]).is_ok());
        assert!(Args::try_parse_from(["weft-controller"]).is_err());
    }

    #[test]
    fn identity_on_kubernetes() {
        let args = Args::try_parse_from([
            "weft-controller",
            "--kubernetes",
            "--identity-issuer-secret",
            "weft-identity-issuer",
        ])
        .unwrap();
        let config = args.identity.config(args.kubernetes.kubernetes).unwrap();
        assert_eq!(
            config.issuer,
            IssuerLocation::Secret(IssuerSecretRef {
                namespace: "weft".into(),
                secret: "weft-identity-issuer".into(),
                trust_anchors_configmap: "weft-identity-trust-roots".into(),
            })
        );
        assert_eq!(
            config.tokens,
            TokenConfig::Review {
                audience: "identity.weft.io".into()
            }
        );
        let args = Args::try_parse_from([
            "weft-controller",
            "--kubernetes",
            "--identity-issuer-secret",
            "issuer",
            "--identity-control-namespace",
            "mesh",
            "--identity-trust-anchors-configmap",
            "roots",
            "--identity-token-audience",
            "mesh.example",
        ])
        .unwrap();
        let config = args.identity.config(true).unwrap();
        assert_eq!(
            config.issuer,
            IssuerLocation::Secret(IssuerSecretRef {
                namespace: "mesh".into(),
                secret: "issuer".into(),
                trust_anchors_configmap: "roots".into(),
            })
        );
        assert_eq!(
            config.tokens,
            TokenConfig::Review {
                audience: "mesh.example".into()
            }
        );
        // Issuer files in a cluster (a mounted Secret): tokens are still reviewed.
        let args = Args::try_parse_from([
            "weft-controller",
            "--kubernetes",
            "--identity-issuer-dir",
            "/var/run/weft/issuer",
            "--identity-trust-anchors",
            "/var/run/weft/anchors/ca-bundle.crt",
        ])
        .unwrap();
        let config = args.identity.config(true).unwrap();
        assert!(matches!(config.issuer, IssuerLocation::Files(_)));
        assert!(matches!(config.tokens, TokenConfig::Review { .. }));

        let refused: [&[&str]; 6] = [
            &[
                "--mesh-file",
                "m.yaml",
                "--identity-issuer-secret",
                "issuer",
            ],
            &[
                "--kubernetes",
                "--identity-issuer-secret",
                "issuer",
                "--identity-issuer-dir",
                "/state/issuer",
                "--identity-trust-anchors",
                "/a.pem",
            ],
            &["--kubernetes", "--identity-issuer-secret", "Issuer_1"],
            &[
                "--kubernetes",
                "--identity-issuer-dir",
                "/state/issuer",
                "--identity-trust-anchors",
                "/a.pem",
                "--identity-token-dir",
                "/tokens",
            ],
            &["--mesh-file", "m.yaml", "--identity-token-audience", "x"],
            &["--identity-issuer-secret", "issuer"],
        ];
        for flags in refused {
            let argv = std::iter::once("weft-controller").chain(flags.iter().copied());
            assert!(Args::try_parse_from(argv).is_err(), "{flags:?}");
        }
    }

    #[test]
    fn bad_identity_flags_are_refused() {
        let cases: [&[&str]; 6] = [
            &["--identity-issuer-dir", "/state/issuer"],
            &["--identity-trust-anchors", "/a.pem"],
            &["--identity-token-dir", "/tokens"],
            &[
                "--identity-issuer-dir",
                "i",
                "--identity-trust-anchors",
                "a",
                "--identity-issuance-lifetime",
                "soon",
            ],
            &[
                "--identity-issuer-dir",
                "i",
                "--identity-trust-anchors",
                "a",
                "--identity-trust-domain",
                "Cluster.Local",
            ],
            &[
                "--identity-issuer-dir",
                "i",
                "--identity-trust-anchors",
                "a",
                "--identity-token-lifetime",
                "1s",
            ],
        ];
        for flags in cases {
            let argv = ["weft-controller", "--mesh-file", "m.yaml"]
                .into_iter()
                .chain(flags.iter().copied());
            assert!(Args::try_parse_from(argv).is_err(), "{flags:?}");
        }
    }

    #[test]
    fn web_defaults_and_checks() {
        let args = Args::try_parse_from(["weft-controller", "--mesh-file", "m.yaml"]).unwrap();
        assert_eq!(args.web.web_addr, "127.0.0.1:8084".parse().unwrap());
        assert_eq!(args.web.scrape_interval, Duration::from_secs(10));
        assert_eq!(args.web.metrics_retention, Duration::from_secs(900));
        assert_eq!(args.web.prometheus_url, None);
        let args = Args::try_parse_from([
            "weft-controller",
            "--mesh-file",
            "m.yaml",
            "--prometheus-url",
            "http://127.0.0.1:9090/",
        ])
        .unwrap();
        assert_eq!(
            args.web.prometheus_url.as_deref(),
            Some("http://127.0.0.1:9090")
        );
        let cases: [&[&str]; 4] = [
            &["--prometheus-url", "https://prom:9090"],
            &["--prometheus-url", "http://prom:9090/api"],
            &["--scrape-interval", "0s"],
            &["--metrics-retention", "forever"],
        ];
        for flags in cases {
            let argv = ["weft-controller", "--mesh-file", "m.yaml"]
                .into_iter()
                .chain(flags.iter().copied());
            assert!(Args::try_parse_from(argv).is_err(), "{flags:?}");
        }
    }

    #[test]
    fn policy_flags() {
        let args = Args::try_parse_from(["weft-controller", "--mesh-file", "m.yaml"]).unwrap();
        assert_eq!(
            args.policy.default_inbound_policy,
            DefaultPolicy::AllUnauthenticated
        );
        assert_eq!(args.policy.cluster_networks.0.len(), 6);
        assert_eq!(args.policy.policy_addr, OptionalAddress(None));
        let args = Args::try_parse_from([
            "weft-controller",
            "--mesh-file",
            "m.yaml",
            "--default-inbound-policy",
            "deny",
            "--cluster-networks",
            "10.0.0.0/8, fd00::/8",
            "--policy-addr",
            "127.0.0.1:8090",
        ])
        .unwrap();
        assert_eq!(args.policy.default_inbound_policy, DefaultPolicy::Deny);
        assert_eq!(args.policy.cluster_networks.0.len(), 2);
        assert_eq!(
            args.policy.policy_addr,
            OptionalAddress(Some("127.0.0.1:8090".parse().unwrap()))
        );
        let cases: [(&[&str], &str); 4] = [
            (
                &["--default-inbound-policy", "allow"],
                "--default-inbound-policy",
            ),
            (&["--cluster-networks", "10.0.0.0/33"], "--cluster-networks"),
            (&["--cluster-networks", ","], "--cluster-networks"),
            (&["--policy-addr", "8090"], "--policy-addr"),
        ];
        for (flags, named) in cases {
            let argv = ["weft-controller", "--mesh-file", "m.yaml"]
                .into_iter()
                .chain(flags.iter().copied());
            let error = Args::try_parse_from(argv).unwrap_err().to_string();
            assert!(error.contains(named), "{flags:?}: {error}");
        }
    }

    #[test]
    fn subcommands_need_no_mesh_file() {
        let args = Args::try_parse_from(["weft-controller", "identity", "init", "--dir", "/state"])
            .unwrap();
        assert!(matches!(
            args.command,
            Some(Command::Identity(IdentityCommand::Init {
                force: false,
                ..
            }))
        ));
        assert!(Args::try_parse_from(["weft-controller"]).is_err());
    }
}
