//! What `weft up` will run, decided before anything starts: the mesh file's
//! workloads that name a command become an app and (when meshed) a proxy;
//! every port the controller, the apps and the proxies listen on is claimed
//! by name, and two claims of one port are an error. [`parse_workloads`],
//! [`plan`], [`clashes`], [`proxy_env`] and [`app_env`] are pure;
//! [`probe`] tries each port.
//!
//! ```text
//! mesh file ─► Workloads with spec.run ─► WorkloadPlan { app, proxy ports }
//!                                        └─► PortClaim "admin of demo/web" 127.0.0.1:7413
//! ```

pub mod order;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use weft_core::Workload;
use weft_core::policy::default_policy::{
    ALL_POLICIES, DEFAULT_INBOUND_POLICY_ANNOTATION, DefaultPolicy,
};

/// An identity name in the control namespace and trust domain `weft up` runs
/// with (the controller's defaults).
fn identity_name(service_account: &str, namespace: &str) -> String {
    use weft_core::names::{DEFAULT_CONTROL_NAMESPACE, DEFAULT_TRUST_DOMAIN, identity_name};
    identity_name(
        service_account,
        namespace,
        DEFAULT_CONTROL_NAMESPACE,
        DEFAULT_TRUST_DOMAIN,
    )
}

/// The controller's identity, which the proxies' tap servers accept: its
/// service account `weft-controller` in the control namespace.
fn controller_identity() -> String {
    identity_name(
        "weft-controller",
        weft_core::names::DEFAULT_CONTROL_NAMESPACE,
    )
}
/// The grace period each proxy gets to drain when stopped.
pub const PROXY_GRACE_PERIOD: &str = "3s";

/// Why a mesh file cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A document is not YAML or not a valid Workload.
    #[error("document {document}: {reason}")]
    Document {
        /// Its position in the file, from 1.
        document: usize,
        /// Why.
        reason: String,
    },
    /// A workload cannot be run as written.
    #[error("{workload}: {reason}")]
    Workload {
        /// `namespace/name`.
        workload: String,
        /// Why.
        reason: String,
    },
    /// The file asks for the same port twice (every clash listed).
    #[error("{}", .0.join("\n"))]
    Clashes(Vec<String>),
    /// `spec.run.dependsOn` goes round in a circle (the workloads in order,
    /// the first repeated at the end).
    #[error("spec.run.dependsOn goes round in a circle: {}", .0.join(" -> "))]
    DependencyCycle(Vec<String>),
}

/// The controller's listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControllerAddrs {
    /// Destination gRPC.
    pub destination: SocketAddr,
    /// Identity gRPC.
    pub identity: SocketAddr,
    /// Admin (`/ready`, `/metrics`).
    pub admin: SocketAddr,
    /// The HTTP API and dashboard.
    pub web: SocketAddr,
}

/// Everything `weft up` runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The controller's listeners.
    pub controller: ControllerAddrs,
    /// The workloads that name a command, in file order.
    pub workloads: Vec<WorkloadPlan>,
    /// The order their apps start in: indexes into `workloads`, every
    /// workload after those it depends on, otherwise in file order.
    pub start_order: Vec<usize>,
    /// Where the workloads run.
    pub placement: Placement,
}

/// Where the workloads' apps and proxies run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Placement {
    /// All on this host's network: every port is claimed here.
    #[default]
    Host,
    /// Each workload in its own network namespace (`--transparent`): only
    /// the controller's ports are this host's.
    Namespaces,
}

/// One workload that `weft up` runs.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadPlan {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its identity (`<service account>.<namespace>.serviceaccount.identity.weft.cluster.local`).
    pub identity: String,
    /// Its app.
    pub app: AppPlan,
    /// Its proxy, when meshed.
    pub proxy: Option<ProxyPlan>,
    /// The workloads (`namespace/name`) whose apps must be listening before
    /// its app starts (`spec.run.dependsOn`).
    pub depends_on: Vec<String>,
    /// Its `config.linkerd.io/default-inbound-policy` annotation: the policy
    /// its proxy applies before the controller's first answer.
    pub default_inbound_policy: Option<String>,
}

impl WorkloadPlan {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The file name stem of its logs: `namespace-name`.
    pub fn log_stem(&self) -> String {
        format!("{}-{}", self.namespace, self.name)
    }
}

/// An app: what to run and where it listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppPlan {
    /// The program and its arguments.
    pub command: Vec<String>,
    /// Its extra environment, from the mesh file.
    pub env: BTreeMap<String, String>,
    /// Its working directory.
    pub working_dir: PathBuf,
    /// The addresses it serves on (its declared ports).
    pub listen: Vec<SocketAddr>,
}

/// A proxy's listeners, in explicit mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyPlan {
    /// Inbound: where peers' proxies connect.
    pub inbound: SocketAddr,
    /// Outbound: the app's HTTP proxy (loopback).
    pub outbound: SocketAddr,
    /// Admin: `/metrics`, `/ready`.
    pub admin: SocketAddr,
    /// Tap.
    pub tap: SocketAddr,
    /// Where inbound traffic goes: the app's first port.
    pub forward: SocketAddr,
}

/// One port someone listens on, and who.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortClaim {
    /// The address.
    pub addr: SocketAddr,
    /// Who: `admin of demo/web`, `controller destination`.
    pub owner: String,
}

/// Where the proxies find the controller and their credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyContext {
    /// The controller's listeners.
    pub controller: ControllerAddrs,
    /// The directory where the controller writes `<namespace>/<workload>.token`.
    pub token_dir: PathBuf,
    /// The trust anchors, PEM.
    pub trust_anchors_pem: String,
}

#[derive(Deserialize)]
struct DocumentHead {
    kind: Option<String>,
}

/// The Workloads of a multi-document mesh file (other kinds are the
/// controller's business and are skipped).
pub fn parse_workloads(text: &str) -> Result<Vec<Workload>, PlanError> {
    let mut workloads = Vec::new();
    let documents = split_documents(text)
        .into_iter()
        .filter(|document| !is_blank(document));
    for (index, document) in documents.enumerate() {
        let problem = |reason: String| PlanError::Document {
            document: index + 1,
            reason,
        };
        let head: DocumentHead =
            serde_saphyr::from_str(document).map_err(|error| problem(error.to_string()))?;
        if head.kind.as_deref() == Some(weft_core::workload::KIND) {
            let workload: Workload =
                serde_saphyr::from_str(document).map_err(|error| problem(error.to_string()))?;
            workloads.push(workload);
        }
    }
    Ok(workloads)
}

/// Whether a document holds only blank lines and comments.
fn is_blank(document: &str) -> bool {
    document
        .lines()
        .all(|line| line.trim().is_empty() || line.trim_start().starts_with('#'))
}

/// The documents of a YAML stream, split at `---` lines.
fn split_documents(text: &str) -> Vec<&str> {
    let mut documents = Vec::new();
    let mut start = 0;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_end() == "---" || line.starts_with("--- ") {
            documents.push(&text[start..offset]);
            start = offset + line.len();
        }
        offset += line.len();
    }
    documents.push(&text[start..]);
    documents
}

/// Plans the workloads that name a command (`spec.run`); the mesh file's
/// directory is the default working directory.
pub fn plan(
    workloads: &[Workload],
    controller: ControllerAddrs,
    mesh_dir: &Path,
) -> Result<Plan, PlanError> {
    plan_placed(workloads, controller, mesh_dir, Placement::Host)
}

/// [`plan`], with the workloads placed as `placement` says.
pub fn plan_placed(
    workloads: &[Workload],
    controller: ControllerAddrs,
    mesh_dir: &Path,
    placement: Placement,
) -> Result<Plan, PlanError> {
    let mut planned = Vec::new();
    for workload in workloads {
        let Some(run) = workload.spec.run.as_deref() else {
            continue;
        };
        let namespace = workload
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string());
        let name = workload.metadata.name.clone().unwrap_or_default();
        let key = format!("{namespace}/{name}");
        let refuse = |reason: &str| PlanError::Workload {
            workload: key.clone(),
            reason: reason.to_string(),
        };
        if run.command.is_empty() {
            return Err(refuse("spec.run.command is empty"));
        }
        let default_inbound_policy = workload
            .metadata
            .annotations
            .as_ref()
            .and_then(|annotations| annotations.get(DEFAULT_INBOUND_POLICY_ANNOTATION))
            .map(|value| value.trim().to_string());
        if let Some(policy) = &default_inbound_policy
            && DefaultPolicy::parse(policy).is_err()
        {
            return Err(refuse(&format!(
                "metadata.annotations.{DEFAULT_INBOUND_POLICY_ANNOTATION}: {policy:?} is not one of {}",
                ALL_POLICIES.map(DefaultPolicy::as_str).join(", ")
            )));
        }
        let address = workload
            .spec
            .addresses
            .first()
            .copied()
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let listen: Vec<SocketAddr> = workload
            .spec
            .ports
            .iter()
            .map(|port| SocketAddr::new(address, port.port))
            .collect();
        let proxy = match workload.proxy_settings() {
            None => None,
            Some(settings) => {
                let forward_port = workload
                    .port_named("http")
                    .or_else(|| workload.spec.ports.first().map(|port| port.port))
                    .ok_or_else(|| {
                        refuse("a meshed workload needs a port: its proxy forwards inbound traffic there")
                    })?;
                let proxy_ip = settings.address.unwrap_or(address);
                Some(ProxyPlan {
                    inbound: SocketAddr::new(proxy_ip, settings.inbound_port),
                    outbound: SocketAddr::new(
                        IpAddr::V4(Ipv4Addr::LOCALHOST),
                        settings.outbound_port,
                    ),
                    admin: SocketAddr::new(proxy_ip, settings.admin_port),
                    tap: SocketAddr::new(proxy_ip, settings.tap_port),
                    forward: SocketAddr::new(address, forward_port),
                })
            }
        };
        let working_dir = match &run.working_dir {
            Some(dir) => mesh_dir.join(dir),
            None => mesh_dir.to_path_buf(),
        };
        let depends_on = run
            .depends_on
            .iter()
            .map(|name| match name.split_once('/') {
                Some(_) => name.clone(),
                None => format!("{namespace}/{name}"),
            })
            .collect();
        planned.push(WorkloadPlan {
            identity: identity_name(workload.service_account(), &namespace),
            depends_on,
            default_inbound_policy,
            namespace,
            name,
            app: AppPlan {
                command: run.command.clone(),
                env: run.env.clone(),
                working_dir,
                listen,
            },
            proxy,
        });
    }
    let start_order = order::start_order(&planned)?;
    let plan = Plan {
        controller,
        workloads: planned,
        start_order,
        placement,
    };
    let found = clashes(&plan.ports());
    if !found.is_empty() {
        return Err(PlanError::Clashes(found));
    }
    Ok(plan)
}

impl Plan {
    /// Every port that will be listened on on this host, named by its owner.
    pub fn ports(&self) -> Vec<PortClaim> {
        let claim = |addr: SocketAddr, owner: String| PortClaim { addr, owner };
        let controller = self.controller;
        let mut claims = vec![
            claim(controller.destination, "controller destination".into()),
            claim(controller.identity, "controller identity".into()),
            claim(controller.admin, "controller admin".into()),
            claim(controller.web, "controller API and dashboard".into()),
        ];
        if self.placement == Placement::Namespaces {
            return claims;
        }
        for workload in &self.workloads {
            let key = workload.key();
            for addr in &workload.app.listen {
                claims.push(claim(*addr, format!("app of {key}")));
            }
            if let Some(proxy) = &workload.proxy {
                claims.push(claim(proxy.inbound, format!("inbound of {key}")));
                claims.push(claim(proxy.outbound, format!("outbound of {key}")));
                claims.push(claim(proxy.admin, format!("admin of {key}")));
                claims.push(claim(proxy.tap, format!("tap of {key}")));
            }
        }
        claims
    }
}

/// Ports claimed twice (same port on the same or an overlapping address):
/// one line per clash.
pub fn clashes(claims: &[PortClaim]) -> Vec<String> {
    let mut first_owner: HashMap<u16, Vec<&PortClaim>> = HashMap::new();
    let mut found = Vec::new();
    for claim in claims {
        let earlier = first_owner.entry(claim.addr.port()).or_default();
        if let Some(other) = earlier
            .iter()
            .find(|other| overlaps(other.addr, claim.addr))
        {
            found.push(format!(
                "port {} is claimed twice: {} and {}",
                claim.addr.port(),
                other.owner,
                claim.owner
            ));
        }
        earlier.push(claim);
    }
    found
}

/// Whether two listeners on the same port would collide: same IP, or either
/// is the unspecified address.
fn overlaps(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// Tries to bind every claimed port; one line per taken one
/// (`port 4191 (admin of demo/web) is taken`).
pub fn probe(claims: &[PortClaim]) -> Vec<String> {
    claims
        .iter()
        .filter_map(|claim| match std::net::TcpListener::bind(claim.addr) {
            Ok(_) => None,
            Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => Some(format!(
                "port {} ({}) is taken",
                claim.addr.port(),
                claim.owner
            )),
            Err(error) => Some(format!(
                "port {} ({}) cannot be bound on {}: {error}",
                claim.addr.port(),
                claim.owner,
                claim.addr.ip()
            )),
        })
        .collect()
}

/// The workload string of the policy APIs and the context token of
/// Destination lookups: `{"ns":"<namespace>","pod":"<name>"}` (a host
/// workload stands where Linkerd has a pod).
pub fn workload_token(workload: &WorkloadPlan) -> String {
    serde_json::json!({"ns": workload.namespace, "pod": workload.name}).to_string()
}

/// The proxy's environment: explicit mode, its ports, discovery, policy,
/// identity, tap.
pub fn proxy_env(
    workload: &WorkloadPlan,
    proxy: &ProxyPlan,
    context: &ProxyContext,
) -> Vec<(String, String)> {
    let token_file = context
        .token_dir
        .join(&workload.namespace)
        .join(format!("{}.token", workload.name));
    [
        ("WEFT_PROXY_INBOUND_LISTEN_ADDR", proxy.inbound.to_string()),
        (
            "WEFT_PROXY_OUTBOUND_LISTEN_ADDR",
            proxy.outbound.to_string(),
        ),
        ("WEFT_PROXY_ADMIN_LISTEN_ADDR", proxy.admin.to_string()),
        ("WEFT_PROXY_INBOUND_FORWARD_ADDR", proxy.forward.to_string()),
        // Peers' transport headers may name the app's ports, nothing else.
        ("WEFT_PROXY_INBOUND_PORTS", app_ports(workload)),
        (
            "WEFT_PROXY_DESTINATION_SVC_ADDR",
            context.controller.destination.to_string(),
        ),
        ("WEFT_PROXY_DESTINATION_CONTEXT", workload_token(workload)),
        // Policy (inbound server policies, outbound routes) from the
        // controller's Destination port.
        ("WEFT_PROXY_POLICY_WORKLOAD", workload_token(workload)),
        (
            "WEFT_PROXY_IDENTITY_SVC_ADDR",
            context.controller.identity.to_string(),
        ),
        (
            "WEFT_PROXY_IDENTITY_TOKEN_FILE",
            token_file.display().to_string(),
        ),
        ("WEFT_PROXY_IDENTITY_LOCAL_NAME", workload.identity.clone()),
        (
            "WEFT_PROXY_IDENTITY_TRUST_ANCHORS",
            context.trust_anchors_pem.clone(),
        ),
        ("WEFT_PROXY_TAP_LISTEN_ADDR", proxy.tap.to_string()),
        ("WEFT_PROXY_TAP_SVC_NAME", controller_identity()),
        (
            "WEFT_PROXY_SHUTDOWN_GRACE_PERIOD",
            PROXY_GRACE_PERIOD.to_string(),
        ),
    ]
    .into_iter()
    .chain(
        workload
            .default_inbound_policy
            .clone()
            .map(|policy| ("WEFT_PROXY_INBOUND_DEFAULT_POLICY", policy)),
    )
    .map(|(name, value)| (name.to_string(), value))
    .collect()
}

/// The workload's declared ports, comma-separated (`8080,9090`).
fn app_ports(workload: &WorkloadPlan) -> String {
    let ports: Vec<String> = workload
        .app
        .listen
        .iter()
        .map(|addr| addr.port().to_string())
        .collect();
    ports.join(",")
}

/// Hosts an app reaches directly, not through its proxy (`NO_PROXY`).
pub const NO_PROXY: &str = "localhost,127.0.0.1,::1";

/// The app's environment: its mesh-file `env`, and when meshed its proxy's
/// outbound listener as its HTTP proxy in both spellings (curl reads only
/// the lower-case `http_proxy` for `http://` URLs), for `https://` too (the
/// proxy tunnels `CONNECT`), loopback excepted; the mesh file may override
/// any of them.
pub fn app_env(workload: &WorkloadPlan) -> Vec<(String, String)> {
    let mut env = BTreeMap::new();
    if let Some(proxy) = &workload.proxy {
        let url = format!("http://{}", proxy.outbound);
        for name in ["http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"] {
            env.insert(name.to_string(), url.clone());
        }
        for name in ["no_proxy", "NO_PROXY"] {
            env.insert(name.to_string(), NO_PROXY.to_string());
        }
    }
    env.insert("WEFT_WORKLOAD".to_string(), workload.key());
    env.extend(workload.app.env.clone());
    env.into_iter().collect()
}

#[cfg(test)]
mod tests;
