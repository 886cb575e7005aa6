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
//! nginx / haproxy / NAME=CMD   client ─► other proxy ──────────► backend
//! ```
//!
//! In the outbound variants the client treats the proxy's outbound listener
//! as an explicit HTTP proxy: HTTP/1.1 requests in absolute form
//! (`GET http://B/`), HTTP/2 and gRPC on a prior-knowledge connection whose
//! `:authority` names the target (proxy B's inbound port, the backend, or the
//! discovered service). weft-outbound and weft-discovery differ only in
//! discovery, so their difference is its cost.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use crate::connections;
use crate::discovery::{self, ControllerSpec};
use crate::load::{Target, Workload};
use crate::others::{self, OtherProxy, Ports};
use crate::process::{Managed, Placement, SpawnSpec, free_port};

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
            SetupKind::Other(other) => other.name().into(),
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
    /// Where each workload's requests go.
    pub targets: BTreeMap<Workload, Target>,
    /// The proxies in the path.
    pub proxies: Vec<MeasuredProxy>,
    /// Admin address of a proxy that must route every request by discovery.
    discovering_proxy_admin: Option<SocketAddr>,
    processes: Vec<Managed>,
}

impl Setup {
    fn new(name: String, targets: BTreeMap<Workload, Target>) -> Setup {
        Setup {
            name,
            targets,
            proxies: Vec::new(),
            discovering_proxy_admin: None,
            processes: Vec::new(),
        }
    }

    /// Fails if any of the setup's processes has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        self.processes.iter_mut().try_for_each(Managed::check_alive)
    }

    /// Fails if traffic did not take the setup's path: for weft-discovery,
    /// unless every request so far went through discovery.
    pub fn verify_path(&self) -> anyhow::Result<()> {
        match self.discovering_proxy_admin {
            Some(admin) => discovery::verify(admin).map(drop),
            None => Ok(()),
        }
    }

    /// The entry point of one workload.
    pub fn target(&self, workload: Workload) -> &Target {
        &self.targets[&workload]
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
            let proxy = start_weft(lab, "weft-1hop", Some(lab.backend), None)?;
            let mut setup = Setup::new(name, same_for_all(Target::direct(proxy.inbound)));
            setup.proxies.push(proxy.measured("weft-1hop"));
            setup.processes.push(proxy.process);
            Ok(setup)
        }
        SetupKind::WeftTwoHop(entry) => {
            let server_side = start_weft(lab, "weft-2hop-server", Some(lab.backend), None)?;
            let (client_side, target) = match entry {
                TwoHopEntry::Outbound => {
                    let client_side = start_weft(lab, "weft-2hop-client", None, None)?;
                    let target = Target::via(client_side.outbound, server_side.inbound);
                    (client_side, target)
                }
                TwoHopEntry::Inbound => {
                    let client_side =
                        start_weft(lab, "weft-2hop-client", Some(server_side.inbound), None)?;
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
            let proxy = start_weft(lab, "weft-outbound", None, None)?;
            let target = Target::via(proxy.outbound, lab.backend);
            let mut setup = Setup::new(name, same_for_all(target));
            setup.proxies.push(proxy.measured("weft-outbound"));
            setup.processes.push(proxy.process);
            Ok(setup)
        }
        SetupKind::WeftDiscovery => start_discovery(lab, name),
        SetupKind::Other(other) => start_other(lab, other),
    }
}

/// weft-discovery: a controller, then a proxy that asks it; one request
/// through the proxy must come back 200 and be counted as discovered.
fn start_discovery(lab: &Lab, name: String) -> anyhow::Result<Setup> {
    let controller = discovery::start_controller(
        &ControllerSpec {
            program: &lab.controller_bin,
            placement: &lab.controller_placement,
            workdir: &lab.workdir,
            backend: lab.backend,
        },
        START_TIMEOUT,
    )?;
    let proxy = start_weft(lab, "weft-discovery", None, Some(controller.destination))?;
    let target = Target::via(proxy.outbound, discovery::AUTHORITY);
    connections::open_idle(&target, 1).context("a request through discovery")?;
    let mut setup = Setup::new(name, Workload::ALL.map(|w| (w, target.clone())).into());
    setup.discovering_proxy_admin = Some(proxy.admin);
    setup.verify_path()?;
    setup.proxies.push(proxy.measured("weft-discovery"));
    // Dropped in order: the proxy stops before its controller.
    setup.processes = vec![proxy.process, controller.process];
    Ok(setup)
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

/// Starts a weft-proxy whose inbound side forwards to `forward` (if given)
/// and whose outbound side asks the Destination service at `destination`
/// (if given).
fn start_weft(
    lab: &Lab,
    name: &str,
    forward: Option<SocketAddr>,
    destination: Option<SocketAddr>,
) -> anyhow::Result<WeftProxy> {
    let inbound = free_port()?;
    let outbound = free_port()?;
    let admin = free_port()?;
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
    if let Some(forward) = forward {
        envs.push((
            "WEFT_PROXY_INBOUND_FORWARD_ADDR".to_string(),
            forward.to_string(),
        ));
    }
    if let Some(destination) = destination {
        envs.push((
            "WEFT_PROXY_DESTINATION_SVC_ADDR".to_string(),
            destination.to_string(),
        ));
    }
    let log = lab.workdir.join(format!("{name}.log"));
    let mut process = Managed::spawn(SpawnSpec {
        name,
        program: &lab.proxy_bin,
        args: &[],
        envs: &envs,
        placement: &lab.proxy_placement,
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
