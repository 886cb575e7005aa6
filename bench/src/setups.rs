//! The paths under comparison, each started as real processes in front of
//! the shared backend:
//!
//! ```text
//! direct     client ───────────────────────────────────────────► backend
//! weft-1hop  client ─► proxy inbound ──(FORWARD_ADDR)───────────► backend
//! weft-2hop  client ─► proxy A outbound (HTTP proxy) ─► proxy B inbound ─► backend
//!            (--two-hop-entry inbound: client ─► A inbound ─► B inbound ─► backend)
//! weft-outbound   client ─► proxy outbound (HTTP proxy, names the backend) ─► backend
//! weft-discovery  client ─► proxy outbound (HTTP proxy, names web.bench.svc.cluster.local)
//!                             ├─ GetProfile/Get ─► weft-controller
//!                             └─ P2C over peak-EWMA ─► backend
//! weft-discovery-2hop  client ─► proxy A outbound (discovery: web is B's inbound)
//!                        ─plaintext HTTP/1.1─► proxy B inbound ─► backend
//! weft-mtls-2hop  client ─► proxy A outbound (discovery: web is the meshed web-1)
//!                   ═mTLS + transport header + HTTP/2═► proxy B inbound ─► backend
//! nginx / haproxy / NAME=CMD   client ─► other proxy ──────────► backend
//! nginx-2hop       client ─► nginx A ─plaintext HTTP/1.1─► nginx B ─► backend
//! nginx-mtls-2hop  client ─► nginx A ═mutual TLS 1.3═► nginx B ─► backend
//! weft-transparent client ─connect 127.0.0.2:P─► iptables REDIRECT ─► proxy inbound
//!                    (no FORWARD_ADDR, UID 2102: SO_ORIGINAL_DST) ─► backend 127.0.0.2:P
//! linkerd          the same path through linkerd2-proxy (127.0.0.3:P), its control
//!                  plane a weft-controller with identity
//! ```
//!
//! In the outbound variants the client treats the proxy's outbound listener
//! as an explicit HTTP proxy: HTTP/1.1 requests in absolute form
//! (`GET http://B/`), HTTP/2 and gRPC on a prior-knowledge connection whose
//! `:authority` names the target (proxy B's inbound port, the backend, or the
//! discovered service). weft-outbound and weft-discovery differ only in
//! discovery, so their difference is its cost; weft-discovery-2hop and
//! weft-mtls-2hop differ only in identity (mutual TLS and HTTP/2 between the
//! proxies), so their difference is what mTLS costs. The two nginx chains
//! (HTTP/1.1 only) are the reference a mature C proxy sets on the same
//! machine for weft-2hop and weft-mtls-2hop.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, ensure};
use serde::Serialize;

use crate::connections;
use crate::discovery::{self, ControllerSpec, Mesh};
use crate::interception::Redirect;
use crate::load::{Target, Workload};
use crate::others::{self, ChainCertificates, ChainHop, ChainTls, OtherProxy, Ports};
use crate::process::{Managed, Placement, SpawnSpec, free_port, http_get, http_get_status};

mod transparent;

/// How the first hop of `weft-2hop` is entered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TwoHopEntry {
    /// Proxy A's outbound listener, used as an explicit HTTP proxy.
    Outbound,
    /// Proxy A's inbound listener forwarding to proxy B's inbound listener.
    Inbound,
}

/// A path to set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetupKind {
    /// No proxy.
    Direct,
    /// One weft-proxy (inbound forwarding).
    WeftOneHop,
    /// Two weft-proxies, client side then server side.
    WeftTwoHop(TwoHopEntry),
    /// One weft-proxy's outbound listener as an explicit HTTP proxy to the
    /// backend, no discovery.
    WeftOutbound,
    /// The same, with discovery: the client names a service the controller
    /// resolves to the backend.
    WeftDiscovery,
    /// Two proxies, A finding B by discovery, plaintext HTTP/1.1 between
    /// them (the Workload the service selects is B's inbound listener).
    WeftDiscoveryTwoHop,
    /// Two meshed proxies with identities: A finds the meshed backend by
    /// discovery and reaches B's inbound port with mutual TLS and the
    /// transport header; HTTP/1 requests take A's one HTTP/1.1 connection to
    /// B while it is free, else travel upgraded on the HTTP/2 connection
    /// (the default, `WEFT_PROXY_MESHED_HTTP1_CONNECTIONS=1`).
    WeftMtlsTwoHop,
    /// The same with the controller's `--disable-h2-upgrade`: mutual TLS
    /// and the transport header, but HTTP/1.1 (A's connection pool) between
    /// the proxies, so against weft-discovery-2hop only TLS differs.
    WeftMtlsHttp1TwoHop,
    /// The same with every HTTP/1 request upgraded to HTTP/2 on the one
    /// connection (`WEFT_PROXY_MESHED_HTTP1_CONNECTIONS=0`, as Linkerd).
    WeftMtlsHttp2TwoHop,
    /// One weft-proxy in transparent mode (no forward address): the client
    /// connects to the backend's port on a loopback address of its own and
    /// an iptables REDIRECT sends the connection into the proxy.
    WeftTransparent,
    /// A proxy of another make.
    Other(OtherProxy),
}

impl SetupKind {
    /// Name in reports.
    pub fn name(&self) -> String {
        match self {
            SetupKind::Direct => "direct".into(),
            SetupKind::WeftOneHop => "weft-1hop".into(),
            SetupKind::WeftTwoHop(_) => "weft-2hop".into(),
            SetupKind::WeftOutbound => "weft-outbound".into(),
            SetupKind::WeftDiscovery => "weft-discovery".into(),
            SetupKind::WeftDiscoveryTwoHop => "weft-discovery-2hop".into(),
            SetupKind::WeftMtlsTwoHop => "weft-mtls-2hop".into(),
            SetupKind::WeftMtlsHttp1TwoHop => "weft-mtls-h1-2hop".into(),
            SetupKind::WeftMtlsHttp2TwoHop => "weft-mtls-h2-2hop".into(),
            SetupKind::WeftTransparent => "weft-transparent".into(),
            SetupKind::Other(other) => other.name().into(),
        }
    }

    /// For the transparent setups, the loopback address whose connections
    /// are redirected into the proxy (the backend listens there too).
    pub fn intercepted_address(&self) -> Option<std::net::Ipv4Addr> {
        match self {
            SetupKind::WeftTransparent => Some(transparent::WEFT_ADDRESS),
            SetupKind::Other(OtherProxy::Linkerd { .. }) => Some(transparent::LINKERD_ADDRESS),
            _ => None,
        }
    }
}

/// What every setup shares.
pub struct Lab {
    /// The backend all paths end at.
    pub backend: SocketAddr,
    /// The `weft-proxy` binary.
    pub proxy_bin: PathBuf,
    /// CPUs and priority of the proxies.
    pub proxy_placement: Placement,
    /// The `weft-controller` binary (weft-discovery).
    pub controller_bin: PathBuf,
    /// CPUs and priority of the controller: off the proxies' CPUs.
    pub controller_placement: Placement,
    /// Directory for logs and generated configs.
    pub workdir: PathBuf,
    /// Install nginx / HAProxy with apt-get when missing.
    pub install_others: bool,
}

/// One proxy process whose CPU and memory are measured.
#[derive(Clone, Debug, Serialize)]
pub struct MeasuredProxy {
    /// Role, e.g. `weft-2hop/client-side`.
    pub role: String,
    /// Root process id (its descendants are measured too).
    pub pid: u32,
}

/// A started setup; its processes stop when it is dropped.
pub struct Setup {
    /// Name in reports.
    pub name: String,
    /// Where each workload's requests go (a setup serves only the
    /// workloads it has a target for).
    pub targets: BTreeMap<Workload, Target>,
    /// The proxies in the path.
    pub proxies: Vec<MeasuredProxy>,
    /// What the smoke test checks on the proxies' `/metrics`.
    path_check: PathCheck,
    mtls_server: Option<MtlsServer>,
    processes: Vec<Managed>,
    /// The transparent setups' REDIRECT, removed when the setup is dropped
    /// (after its processes stopped).
    redirect: Option<Redirect>,
}

/// What the smoke test checks on the proxies' `/metrics` (or, for
/// nginx-mtls-2hop, on the TLS hop between the two nginx).
#[derive(Clone, Debug)]
enum PathCheck {
    /// Nothing to check.
    None,
    /// Every outbound request of the proxy at `admin` went through discovery.
    Discovery { admin: SocketAddr },
    /// Every request between proxy A (`client`) and B (`server`) was mutual TLS.
    Mtls {
        client: SocketAddr,
        server: SocketAddr,
    },
    /// Requests through the client-side nginx reach the server side over
    /// mutual TLS 1.3, and the server side refuses anything else.
    NginxMtls(Box<NginxMtlsCheck>),
    /// The transparent proxy counted the requests sent to the intercepted
    /// address.
    Transparent(transparent::TransparentCheck),
}

/// The nginx-mtls-2hop chain, for its path check.
#[derive(Clone, Debug)]
struct NginxMtlsCheck {
    /// The client-side nginx's plaintext listener.
    entry: SocketAddr,
    /// The server-side nginx's TLS listener.
    server: SocketAddr,
    /// The chain's CA and leaves.
    certificates: ChainCertificates,
    /// The `openssl` command line, as a TLS client.
    openssl: PathBuf,
}

/// Connections proxy A of weft-mtls-2hop opened toward B.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MtlsConnections {
    /// Opened with TLS to web-1's identity.
    pub tls_opened: u64,
    /// Any other outbound connection to a destination.
    pub other_opened: u64,
    /// Outbound requests sent over TLS to web-1's identity.
    pub requests: u64,
}

/// Proxy B of weft-mtls-2hop, for the handshake measurement.
#[derive(Clone, Debug)]
pub struct MtlsServer {
    /// B's inbound listener (terminates TLS for its identity).
    pub inbound: SocketAddr,
    /// B's process id.
    pub pid: u32,
    /// B's identity (the SNI it answers).
    pub identity: String,
    /// The trust anchor, PEM file.
    pub trust_anchors: PathBuf,
}

impl Setup {
    fn new(name: String, targets: BTreeMap<Workload, Target>) -> Setup {
        Setup {
            name,
            targets,
            proxies: Vec::new(),
            path_check: PathCheck::None,
            mtls_server: None,
            processes: Vec::new(),
            redirect: None,
        }
    }

    /// Fails if any of the setup's processes has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        self.processes.iter_mut().try_for_each(Managed::check_alive)
    }

    /// Fails if traffic did not take the setup's path: for the discovery
    /// setups, unless every request so far went through discovery; for
    /// weft-mtls-2hop, unless every request between the proxies was mutual
    /// TLS with the expected identities; for nginx-mtls-2hop, unless the
    /// hop between the two nginx is mutual TLS 1.3 and the server side
    /// refuses plain HTTP and TLS without a client certificate.
    pub fn verify_path(&self) -> anyhow::Result<()> {
        match &self.path_check {
            PathCheck::None => Ok(()),
            PathCheck::Discovery { admin } => discovery::verify(*admin).map(drop),
            PathCheck::Mtls { client, server } => {
                discovery::verify_mtls(*client, *server).map(drop)
            }
            PathCheck::NginxMtls(check) => verify_nginx_mtls(check),
            PathCheck::Transparent(check) => check.verify_counted(0),
        }
    }

    /// After the smoke test, whose requests succeeded `requests_ok` times:
    /// [`Setup::verify_path`], and for the transparent setups, that the
    /// proxy counted at least that many more inbound requests to the
    /// intercepted address than at start (so none bypassed it).
    pub fn verify_smoke(&self, requests_ok: u64) -> anyhow::Result<()> {
        match &self.path_check {
            PathCheck::Transparent(check) => check.verify_counted(requests_ok),
            _ => self.verify_path(),
        }
    }

    /// For weft-mtls-2hop, the connections proxy A opened toward B
    /// (`tcp_open_total{direction="outbound",peer="dst"}`, TLS to web-1's
    /// identity, then any others) and the requests it sent over them.
    pub fn mtls_connections(&self) -> Option<anyhow::Result<MtlsConnections>> {
        let PathCheck::Mtls { client, .. } = &self.path_check else {
            return None;
        };
        Some(discovery::metrics(*client).map(|metrics| {
            let server_id = format!(
                "server_id=\"{}\"",
                discovery::identity_of(discovery::SERVER_WORKLOAD)
            );
            let labels = ["peer=\"dst\"", "tls=\"true\"", server_id.as_str()];
            let (tls, _) = discovery::split_sum(&metrics, "tcp_open_total", "outbound", &labels);
            let (to_destinations, _) =
                discovery::split_sum(&metrics, "tcp_open_total", "outbound", &labels[..1]);
            let other = to_destinations.saturating_sub(tls);
            let (requests, _) =
                discovery::split_sum(&metrics, "request_total", "outbound", &labels[1..]);
            MtlsConnections {
                tls_opened: tls,
                other_opened: other,
                requests,
            }
        }))
    }

    /// For weft-mtls-2hop: proxy B's inbound address, admin address and the
    /// trust anchor file, for the handshake measurement.
    pub fn mtls_server(&self) -> Option<MtlsServer> {
        self.mtls_server.clone()
    }

    /// The entry point of one workload; `None` for a workload the setup
    /// does not serve (its cells are skipped).
    pub fn target(&self, workload: Workload) -> Option<&Target> {
        self.targets.get(&workload)
    }
}

const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Starts `kind` in `lab`.
pub fn start(lab: &Lab, kind: &SetupKind) -> anyhow::Result<Setup> {
    let name = kind.name();
    let same_for_all = |target: Target| Workload::ALL.map(|w| (w, target.clone())).into();
    match kind {
        SetupKind::Direct => Ok(Setup::new(name, same_for_all(Target::direct(lab.backend)))),
        SetupKind::WeftOneHop => {
            let proxy = start_weft(lab, "weft-1hop", WeftSpec::forwarding(lab.backend))?;
            let mut setup = Setup::new(name, same_for_all(Target::direct(proxy.inbound)));
            setup.proxies.push(proxy.measured("weft-1hop"));
            setup.processes.push(proxy.process);
            Ok(setup)
        }
        SetupKind::WeftTwoHop(entry) => {
            let server_side =
                start_weft(lab, "weft-2hop-server", WeftSpec::forwarding(lab.backend))?;
            let (client_side, target) = match entry {
                TwoHopEntry::Outbound => {
                    let client_side = start_weft(lab, "weft-2hop-client", WeftSpec::default())?;
                    let target = Target::via(client_side.outbound, server_side.inbound);
                    (client_side, target)
                }
                TwoHopEntry::Inbound => {
                    let client_side = start_weft(
                        lab,
                        "weft-2hop-client",
                        WeftSpec::forwarding(server_side.inbound),
                    )?;
                    let target = Target::direct(client_side.inbound);
                    (client_side, target)
                }
            };
            let mut setup = Setup::new(name, same_for_all(target));
            setup.proxies = vec![
                client_side.measured("weft-2hop/client-side"),
                server_side.measured("weft-2hop/server-side"),
            ];
            setup.processes = vec![client_side.process, server_side.process];
            Ok(setup)
        }
        SetupKind::WeftOutbound => {
            let proxy = start_weft(lab, "weft-outbound", WeftSpec::default())?;
            let target = Target::via(proxy.outbound, lab.backend);
            let mut setup = Setup::new(name, same_for_all(target));
            setup.proxies.push(proxy.measured("weft-outbound"));
            setup.processes.push(proxy.process);
            Ok(setup)
        }
        SetupKind::WeftDiscovery => start_discovery(lab, name),
        SetupKind::WeftDiscoveryTwoHop => {
            start_discovered_two_hop(lab, name, false, BetweenProxies::Adaptive)
        }
        SetupKind::WeftMtlsTwoHop => {
            start_discovered_two_hop(lab, name, true, BetweenProxies::Adaptive)
        }
        SetupKind::WeftMtlsHttp1TwoHop => {
            start_discovered_two_hop(lab, name, true, BetweenProxies::Http1)
        }
        SetupKind::WeftMtlsHttp2TwoHop => {
            start_discovered_two_hop(lab, name, true, BetweenProxies::Http2)
        }
        SetupKind::WeftTransparent => transparent::start_weft(lab, name),
        SetupKind::Other(OtherProxy::Linkerd { binary }) => {
            transparent::start_linkerd(lab, name, binary)
        }
        SetupKind::Other(OtherProxy::NginxTwoHop) => start_nginx_chain(lab, name, false),
        SetupKind::Other(OtherProxy::NginxMtlsTwoHop) => start_nginx_chain(lab, name, true),
        SetupKind::Other(other) => start_other(lab, other),
    }
}

/// weft-discovery: a controller, then a proxy that asks it; one request
/// through the proxy must come back 200 and be counted as discovered.
fn start_discovery(lab: &Lab, name: String) -> anyhow::Result<Setup> {
    let controller = start_controller(
        lab,
        &name,
        Mesh::Backend {
            backend: lab.backend,
        },
        false,
        true,
    )?;
    let proxy = start_weft(
        lab,
        "weft-discovery",
        WeftSpec {
            destination: Some(controller.destination),
            ..WeftSpec::default()
        },
    )?;
    let target = Target::via(proxy.outbound, discovery::AUTHORITY);
    connections::open_idle(&target, 1).context("a request through discovery")?;
    let mut setup = Setup::new(name, Workload::ALL.map(|w| (w, target.clone())).into());
    setup.path_check = PathCheck::Discovery { admin: proxy.admin };
    setup.verify_path()?;
    setup.proxies.push(proxy.measured("weft-discovery"));
    // Dropped in order: the proxy stops before its controller.
    setup.processes = vec![proxy.process, controller.process];
    Ok(setup)
}

/// weft-discovery-2hop and weft-mtls-2hop: a controller (with identity for
/// mTLS), proxy B forwarding to the backend, proxy A asking the controller;
/// one request through A must come back 200 and have taken the path.
/// How HTTP/1 requests travel between two meshed proxies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BetweenProxies {
    /// The default: A's one HTTP/1.1 connection while free, else upgraded.
    Adaptive,
    /// The controller's `--disable-h2-upgrade`: HTTP/1.1 only.
    Http1,
    /// Always upgraded (`WEFT_PROXY_MESHED_HTTP1_CONNECTIONS=0`).
    Http2,
}

fn start_discovered_two_hop(
    lab: &Lab,
    name: String,
    mtls: bool,
    between: BetweenProxies,
) -> anyhow::Result<Setup> {
    let h2_upgrade = between != BetweenProxies::Http1;
    let server_ports = WeftPorts::pick()?;
    let mesh = if mtls {
        Mesh::Meshed {
            backend: lab.backend,
            inbound_port: server_ports.inbound.port(),
        }
    } else {
        Mesh::ServerProxy {
            inbound: server_ports.inbound,
        }
    };
    let controller = start_controller(lab, &name, mesh, mtls, h2_upgrade)?;
    let identity = controller.identity.as_ref();
    let identity_env = |workload: &str| identity.map(|i| i.proxy_env(workload)).unwrap_or_default();
    let server = start_weft(
        lab,
        &format!("{name}-server"),
        WeftSpec {
            ports: Some(server_ports),
            forward: Some(lab.backend),
            envs: identity_env(discovery::SERVER_WORKLOAD),
            ..WeftSpec::default()
        },
    )?;
    let mut client_env = identity_env(discovery::CLIENT_WORKLOAD);
    if between == BetweenProxies::Http2 {
        client_env.push(("WEFT_PROXY_MESHED_HTTP1_CONNECTIONS".into(), "0".into()));
    }
    let client = start_weft(
        lab,
        &format!("{name}-client"),
        WeftSpec {
            destination: Some(controller.destination),
            envs: client_env,
            ..WeftSpec::default()
        },
    )?;
    let target = Target::via(client.outbound, discovery::AUTHORITY);
    connections::open_idle(&target, 1).context("a request through both proxies")?;
    let mut setup = Setup::new(
        name.clone(),
        Workload::ALL.map(|w| (w, target.clone())).into(),
    );
    setup.path_check = if mtls {
        PathCheck::Mtls {
            client: client.admin,
            server: server.admin,
        }
    } else {
        PathCheck::Discovery {
            admin: client.admin,
        }
    };
    setup.verify_path()?;
    if let Some(identity) = identity {
        setup.mtls_server = Some(MtlsServer {
            inbound: server.inbound,
            pid: server.process.pid(),
            identity: discovery::identity_of(discovery::SERVER_WORKLOAD),
            trust_anchors: identity.trust_anchors.clone(),
        });
    }
    setup.proxies = vec![
        client.measured(&format!("{name}/client-side")),
        server.measured(&format!("{name}/server-side")),
    ];
    // Dropped in order: the proxies stop before their controller.
    setup.processes = vec![client.process, server.process, controller.process];
    Ok(setup)
}

fn start_controller(
    lab: &Lab,
    setup: &str,
    mesh: Mesh,
    identity: bool,
    h2_upgrade: bool,
) -> anyhow::Result<discovery::Controller> {
    discovery::start_controller(
        &ControllerSpec {
            name: &format!("{setup}-controller"),
            program: &lab.controller_bin,
            placement: &lab.controller_placement,
            workdir: &lab.workdir,
            mesh,
            identity,
            disable_h2_upgrade: !h2_upgrade,
        },
        START_TIMEOUT,
    )
}

/// A running weft-proxy.
struct WeftProxy {
    process: Managed,
    inbound: SocketAddr,
    outbound: SocketAddr,
    admin: SocketAddr,
}

impl WeftProxy {
    fn measured(&self, role: &str) -> MeasuredProxy {
        MeasuredProxy {
            role: role.into(),
            pid: self.process.pid(),
        }
    }
}

/// A proxy's listeners.
#[derive(Clone, Copy, Debug)]
struct WeftPorts {
    inbound: SocketAddr,
    outbound: SocketAddr,
    admin: SocketAddr,
}

impl WeftSpec {
    /// Inbound forwarding to `forward`, nothing else.
    fn forwarding(forward: SocketAddr) -> WeftSpec {
        WeftSpec {
            forward: Some(forward),
            ..WeftSpec::default()
        }
    }
}

impl WeftPorts {
    fn pick() -> anyhow::Result<WeftPorts> {
        Ok(WeftPorts {
            inbound: free_port()?,
            outbound: free_port()?,
            admin: free_port()?,
        })
    }
}

/// How to start a weft-proxy.
#[derive(Debug, Default)]
struct WeftSpec {
    /// Its listeners (picked free when not given).
    ports: Option<WeftPorts>,
    /// `WEFT_PROXY_INBOUND_FORWARD_ADDR`.
    forward: Option<SocketAddr>,
    /// `WEFT_PROXY_DESTINATION_SVC_ADDR`.
    destination: Option<SocketAddr>,
    /// More variables (identity).
    envs: Vec<(String, String)>,
    /// Run as this user and group id (transparent mode).
    user: Option<u32>,
}

/// Starts a weft-proxy as `spec` says; returns once `/ready` (which waits
/// for the first certificate when identity is configured).
fn start_weft(lab: &Lab, name: &str, spec: WeftSpec) -> anyhow::Result<WeftProxy> {
    let WeftPorts {
        inbound,
        outbound,
        admin,
    } = match spec.ports {
        Some(ports) => ports,
        None => WeftPorts::pick()?,
    };
    let mut envs = vec![
        (
            "WEFT_PROXY_INBOUND_LISTEN_ADDR".to_string(),
            inbound.to_string(),
        ),
        (
            "WEFT_PROXY_OUTBOUND_LISTEN_ADDR".to_string(),
            outbound.to_string(),
        ),
        (
            "WEFT_PROXY_ADMIN_LISTEN_ADDR".to_string(),
            admin.to_string(),
        ),
        ("WEFT_PROXY_CORES".to_string(), "1".to_string()),
        ("WEFT_PROXY_LOG".to_string(), "warn".to_string()),
        (
            "WEFT_PROXY_SHUTDOWN_GRACE_PERIOD".to_string(),
            "1s".to_string(),
        ),
    ];
    if let Some(forward) = spec.forward {
        envs.push((
            "WEFT_PROXY_INBOUND_FORWARD_ADDR".to_string(),
            forward.to_string(),
        ));
    }
    if let Some(destination) = spec.destination {
        envs.push((
            "WEFT_PROXY_DESTINATION_SVC_ADDR".to_string(),
            destination.to_string(),
        ));
    }
    envs.extend(spec.envs);
    let log = lab.workdir.join(format!("{name}.log"));
    let placement = Placement {
        user: spec.user,
        ..lab.proxy_placement.clone()
    };
    let mut process = Managed::spawn(SpawnSpec {
        name,
        program: &lab.proxy_bin,
        args: &[],
        envs: &envs,
        placement: &placement,
        log: &log,
    })?;
    process.wait_http_ok(admin, "/ready", START_TIMEOUT)?;
    Ok(WeftProxy {
        process,
        inbound,
        outbound,
        admin,
    })
}

fn start_other(lab: &Lab, other: &OtherProxy) -> anyhow::Result<Setup> {
    let name = other.name().to_string();
    let log = lab.workdir.join(format!("{name}.log"));
    let ports = Ports {
        http1: free_port()?,
        http2: free_port()?,
        grpc: free_port()?,
    };
    let (program, args, targets) = match other {
        OtherProxy::Nginx => {
            let program = others::locate_or_install("nginx", "nginx", lab.install_others)?;
            let dir = lab.workdir.join("nginx");
            std::fs::create_dir_all(&dir)?;
            let config = dir.join("nginx.conf");
            std::fs::write(&config, others::nginx_config(&ports, lab.backend, &dir))?;
            let args = vec![
                "-c".to_string(),
                config.display().to_string(),
                "-e".into(),
                dir.join("nginx-error.log").display().to_string(),
            ];
            (program, args, per_workload(&ports))
        }
        OtherProxy::Haproxy => {
            let program = others::locate_or_install("haproxy", "haproxy", lab.install_others)?;
            let config = lab.workdir.join("haproxy.cfg");
            std::fs::write(&config, others::haproxy_config(&ports, lab.backend))?;
            let args = vec!["-db".to_string(), "-f".into(), config.display().to_string()];
            (program, args, per_workload(&ports))
        }
        OtherProxy::NginxTwoHop | OtherProxy::NginxMtlsTwoHop => {
            unreachable!("started by start_nginx_chain")
        }
        OtherProxy::Linkerd { .. } => unreachable!("started by transparent::start_linkerd"),
        OtherProxy::Command { template, .. } => {
            let mut words = others::expand_template(template, ports.http1, lab.backend);
            let program = PathBuf::from(words.remove(0));
            let target = Target::direct(ports.http1);
            (
                program,
                words,
                Workload::ALL.map(|w| (w, target.clone())).into(),
            )
        }
    };
    let mut process = Managed::spawn(SpawnSpec {
        name: &name,
        program: &program,
        args: &args,
        envs: &[],
        placement: &lab.proxy_placement,
        log: &log,
    })?;
    let targets: BTreeMap<Workload, Target> = targets;
    for target in targets.values() {
        process.wait_listening(target.connect_addr()?, START_TIMEOUT)?;
    }
    let mut setup = Setup::new(name.clone(), targets);
    setup.proxies.push(MeasuredProxy {
        role: name,
        pid: process.pid(),
    });
    setup.processes.push(process);
    Ok(setup)
}

fn per_workload(ports: &Ports) -> BTreeMap<Workload, Target> {
    BTreeMap::from([
        (Workload::Http1, Target::direct(ports.http1)),
        (Workload::Http2, Target::direct(ports.http2)),
        (Workload::Grpc, Target::direct(ports.grpc)),
    ])
}

/// nginx-2hop and nginx-mtls-2hop (HTTP/1.1 only): the server-side nginx
/// in front of the backend, then the client-side nginx in front of it, two
/// processes placed like the other proxies; with `mtls`, mutual TLS 1.3
/// between them, with certificates made in the run directory.
fn start_nginx_chain(lab: &Lab, name: String, mtls: bool) -> anyhow::Result<Setup> {
    let program = others::locate_or_install("nginx", "nginx", lab.install_others)?;
    let root = lab.workdir.join(&name);
    let tls = if mtls {
        let openssl = others::locate("openssl").context("openssl not found (nginx-mtls-2hop)")?;
        let certificates = others::make_chain_certificates(&openssl, &root.join("tls"))
            .context("making the chain's certificates")?;
        Some((openssl, certificates))
    } else {
        None
    };
    let certificates = tls.as_ref().map(|(_, certificates)| certificates);
    let server_listen = free_port()?;
    let server = start_chain_nginx(
        lab,
        &program,
        &format!("{name}-server"),
        &ChainHop {
            dir: &root.join("server-side"),
            listen: server_listen,
            upstream: lab.backend,
            tls: certificates.map(ChainTls::Accept),
        },
    )?;
    let client_listen = free_port()?;
    let client = start_chain_nginx(
        lab,
        &program,
        &format!("{name}-client"),
        &ChainHop {
            dir: &root.join("client-side"),
            listen: client_listen,
            upstream: server_listen,
            tls: certificates.map(ChainTls::Connect),
        },
    )?;
    let target = Target::direct(client_listen);
    let mut setup = Setup::new(name.clone(), BTreeMap::from([(Workload::Http1, target)]));
    setup.proxies = vec![
        MeasuredProxy {
            role: format!("{name}/client-side"),
            pid: client.pid(),
        },
        MeasuredProxy {
            role: format!("{name}/server-side"),
            pid: server.pid(),
        },
    ];
    setup.processes = vec![client, server];
    let status = http_get_status(client_listen, "/").context("a request through both nginx")?;
    ensure!(
        status == 200,
        "a request through both nginx: status {status}"
    );
    if let Some((openssl, certificates)) = tls {
        setup.path_check = PathCheck::NginxMtls(Box::new(NginxMtlsCheck {
            entry: client_listen,
            server: server_listen,
            certificates,
            openssl,
        }));
        setup.verify_path()?;
    }
    Ok(setup)
}

/// Writes one chain hop's configuration and starts its nginx; returns once
/// it listens.
fn start_chain_nginx(
    lab: &Lab,
    program: &std::path::Path,
    name: &str,
    hop: &ChainHop<'_>,
) -> anyhow::Result<Managed> {
    std::fs::create_dir_all(hop.dir).with_context(|| format!("creating {}", hop.dir.display()))?;
    let config = hop.dir.join("nginx.conf");
    std::fs::write(&config, others::nginx_chain_config(hop))?;
    let args = vec![
        "-c".to_string(),
        config.display().to_string(),
        "-e".into(),
        hop.dir.join("nginx-error.log").display().to_string(),
    ];
    let mut process = Managed::spawn(SpawnSpec {
        name,
        program,
        args: &args,
        envs: &[],
        placement: &lab.proxy_placement,
        log: &lab.workdir.join(format!("{name}.log")),
    })?;
    process.wait_listening(hop.listen, START_TIMEOUT)?;
    Ok(process)
}

/// Fails unless a request through the client-side nginx reached the server
/// side over TLS 1.3 with a verified client certificate, and the server
/// side refuses plain HTTP and TLS clients without a certificate (while
/// answering one with the client certificate).
fn verify_nginx_mtls(check: &NginxMtlsCheck) -> anyhow::Result<()> {
    let (status, session) = http_get(check.entry, others::TLS_CHECK_PATH)
        .context("asking the server-side nginx for its TLS session through the client side")?;
    let session = session.trim();
    ensure!(
        status == 200
            && session.starts_with("TLSv1.3 SUCCESS ")
            && session.contains(others::CHAIN_CLIENT_NAME),
        "the hop between the nginx is not mutual TLS 1.3 with the client certificate: \
         status {status}, session {session:?}"
    );
    let plain = http_get_status(check.server, "/");
    ensure!(
        plain.as_ref().ok() != Some(&200),
        "the server-side nginx answered a plain HTTP request with 200"
    );
    let status_line = |response: &str| response.lines().next().unwrap_or("").to_string();
    let without_certificate =
        others::tls_get(&check.openssl, check.server, &check.certificates, None, "/")?;
    ensure!(
        !without_certificate.starts_with("HTTP/1.1 200"),
        "the server-side nginx answered a TLS client without a certificate with 200"
    );
    let with_certificate = others::tls_get(
        &check.openssl,
        check.server,
        &check.certificates,
        Some(&check.certificates.client),
        "/",
    )?;
    ensure!(
        with_certificate.starts_with("HTTP/1.1 200"),
        "the server-side nginx did not answer a TLS client with the client certificate: {:?}",
        status_line(&with_certificate)
    );
    Ok(())
}
