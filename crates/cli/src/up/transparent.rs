//! `weft up --transparent` (root): every run workload in its own network
//! namespace, its app's TCP redirected into its proxy by iptables, so an app
//! that ignores proxy variables is meshed too. This file is the pure part:
//! names, addresses, the effective mesh file, the hosts files, the `ip` and
//! `iptables` argument lists and the processes' command lines, all decided
//! before anything runs and table-tested. [`host`] executes them.
//!
//! ```text
//! host: bridge weft-<id> 10.209.0.1/16 ── controller on 10.209.0.1:{8086,8080,9990,8084}
//!   ├─ veth wv<id><n> ═ eth0 in netns weft-<id>-<n> (10.209.0.<n+2>/16)
//!   │    app (no proxy variables)  ─connect()─► OUTPUT nat REDIRECT → 127.0.0.1:4140
//!   │    weft-proxy (gid 2102: its own traffic is not redirected)
//!   │      inbound 0.0.0.0:4143 ◄─ PREROUTING nat REDIRECT (all TCP but 4143/4190/4191)
//!   │      admin 0.0.0.0:4191, tap 0.0.0.0:4190 (scraped and tapped from the host)
//!   └─ … one per workload; service names resolve (/etc/netns/<netns>/hosts)
//!        to clusterIPs in 10.96.0.0/16, routed to the bridge so connect()
//!        reaches the REDIRECT; the proxy looks them up in discovery
//! ```

pub mod host;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use serde::Deserialize;
use weft_core::Workload;
use weft_core::workload::WorkloadProxy;

use super::plan::{ControllerAddrs, WorkloadPlan};
use super::ports;

/// The group the proxy runs as: `-m owner --gid-owner` exempts its own
/// connections from the OUTPUT REDIRECT. A group, not a user: the proxy stays
/// uid 0 and reads its root-owned token file.
pub const PROXY_GID: u32 = 2102;
/// The proxy's inbound port in every namespace (the PREROUTING target).
pub const INBOUND_PORT: u16 = 4143;
/// The proxy's outbound port in every namespace (the OUTPUT target).
pub const OUTBOUND_PORT: u16 = 4140;
/// The proxy's admin port in every namespace.
pub const ADMIN_PORT: u16 = 4191;
/// The proxy's tap port in every namespace.
pub const TAP_PORT: u16 = 4190;
/// The bridge's address: the host side, where the controller listens.
pub const BRIDGE_IP: Ipv4Addr = Ipv4Addr::new(10, 209, 0, 1);
/// The workloads' network (the bridge's prefix length).
pub const WORKLOAD_PREFIX: u8 = 16;
/// The virtual service network: clusterIPs nothing listens on.
pub const SERVICE_NETWORK: &str = "10.96.0.0/16";
/// The first clusterIP handed to a Service without one.
const FIRST_SERVICE_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);
/// The most workloads one bridge holds (10.209.0.2 up to 10.209.255.254).
const MAX_WORKLOADS: usize = 65_533;

/// Variables an app must not inherit from `weft up`'s environment: with
/// them, a proxy-aware client would bypass interception as an explicit
/// proxy client (or, worse, use a proxy of the host's).
pub const PROXY_VARIABLES: &[&str] = &[
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

/// Why the mesh cannot be laid out in namespaces.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TransparentError {
    /// More run workloads than the bridge's network holds.
    #[error("{0} workloads to run: --transparent fits at most 65533 on one bridge")]
    TooManyWorkloads(usize),
    /// More Services without a clusterIP than the service network holds.
    #[error("{0} Services without spec.clusterIP: --transparent hands out at most 65000")]
    TooManyServices(usize),
}

/// The names of everything `weft up --transparent` creates, from an id
/// (six hex digits of a hash of the state directory), so two state
/// directories never share a namespace and every name fits IFNAMSIZ (15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    id: String,
}

impl Names {
    /// The names for one state directory.
    pub fn for_state_dir(state_dir: &Path) -> Self {
        Self::from_id(format!(
            "{:06x}",
            fnv1a(state_dir.as_os_str().as_encoded_bytes()) & 0x00ff_ffff
        ))
    }

    /// The names for an id.
    pub fn from_id(id: String) -> Self {
        Self { id }
    }

    /// The host's bridge: `weft-<id>`.
    pub fn bridge(&self) -> String {
        format!("weft-{}", self.id)
    }

    /// Workload `index`'s network namespace: `weft-<id>-<index>`.
    pub fn namespace(&self, index: usize) -> String {
        format!("{}{index}", self.namespace_prefix())
    }

    /// What every namespace's name starts with: `weft-<id>-`.
    pub fn namespace_prefix(&self) -> String {
        format!("weft-{}-", self.id)
    }

    /// The host end of workload `index`'s veth pair: `wv<id><index>`.
    pub fn host_veth(&self, index: usize) -> String {
        format!("wv{}{index}", self.id)
    }
}

/// FNV-1a, 32 bits: stable across Rust versions (unlike `DefaultHasher`),
/// so a later `weft up` finds what an earlier one left behind.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |hash, byte| {
        (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193)
    })
}

/// A Service as the hosts files need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEntry {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its `spec.clusterIP`: `None` when absent (one is handed out), and
    /// headless Services (`None` written) are left out altogether.
    pub cluster_ip: Option<Ipv4Addr>,
}

/// One run workload's place in the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadNet {
    /// Its namespace in the mesh (`demo`).
    pub mesh_namespace: String,
    /// Its network namespace (`weft-<id>-<n>`).
    pub netns: String,
    /// The host end of its veth pair.
    pub host_veth: String,
    /// Its address on the bridge.
    pub ip: Ipv4Addr,
}

/// Where everything goes: the bridge, each run workload (in the order of
/// the plan's workloads) and each Service's clusterIP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The names.
    pub names: Names,
    /// By run workload, in file order (the plan's order).
    pub workloads: Vec<WorkloadNet>,
    /// Every Service with a clusterIP, by `namespace/name`.
    pub services: BTreeMap<String, (ServiceEntry, Ipv4Addr)>,
}

/// The Services of a multi-document mesh file (documents that do not parse
/// are the controller's business and are skipped).
pub fn parse_services(text: &str) -> Vec<ServiceEntry> {
    ports::documents(text)
        .into_iter()
        .filter_map(|(_, document)| service_document(document))
        .filter_map(|(entry, headless)| (!headless).then_some(entry))
        .collect()
}

#[derive(Deserialize)]
struct ServiceHead {
    kind: Option<String>,
    #[serde(default)]
    metadata: ServiceMetadata,
    #[serde(default)]
    spec: ServiceSpecHead,
}

#[derive(Deserialize, Default)]
struct ServiceMetadata {
    name: Option<String>,
    namespace: Option<String>,
}

#[derive(Deserialize, Default)]
struct ServiceSpecHead {
    #[serde(rename = "clusterIP")]
    cluster_ip: Option<String>,
}

/// A Service document: the entry, and whether it is headless.
fn service_document(document: &str) -> Option<(ServiceEntry, bool)> {
    let head: ServiceHead = serde_saphyr::from_str(document).ok()?;
    if head.kind.as_deref() != Some("Service") {
        return None;
    }
    let written = head.spec.cluster_ip.as_deref().map(str::trim);
    let headless = written == Some("None");
    Some((
        ServiceEntry {
            namespace: head
                .metadata
                .namespace
                .unwrap_or_else(|| "default".to_string()),
            name: head.metadata.name?,
            cluster_ip: written.and_then(|ip| ip.parse().ok()),
        },
        headless,
    ))
}

/// Lays out the run workloads (`10.209.0.2` onwards, in file order) and the
/// Services (their own clusterIP, else `10.96.0.10` onwards, skipping the
/// written ones).
pub fn layout(
    names: Names,
    workloads: &[Workload],
    services: &[ServiceEntry],
) -> Result<Layout, TransparentError> {
    let run: Vec<&Workload> = workloads
        .iter()
        .filter(|workload| workload.spec.run.is_some())
        .collect();
    if run.len() > MAX_WORKLOADS {
        return Err(TransparentError::TooManyWorkloads(run.len()));
    }
    let first = u32::from(BRIDGE_IP) + 1;
    let workloads = run
        .iter()
        .enumerate()
        .map(|(index, workload)| WorkloadNet {
            mesh_namespace: namespace_of(workload),
            netns: names.namespace(index),
            host_veth: names.host_veth(index),
            ip: Ipv4Addr::from(first + index as u32),
        })
        .collect();
    let written: Vec<Ipv4Addr> = services.iter().filter_map(|s| s.cluster_ip).collect();
    let mut next = u32::from(FIRST_SERVICE_IP);
    let mut laid_out = BTreeMap::new();
    let missing = services.iter().filter(|s| s.cluster_ip.is_none()).count();
    if missing > 65_000 {
        return Err(TransparentError::TooManyServices(missing));
    }
    for service in services {
        let ip = match service.cluster_ip {
            Some(ip) => ip,
            None => {
                while written.contains(&Ipv4Addr::from(next)) {
                    next += 1;
                }
                next += 1;
                Ipv4Addr::from(next - 1)
            }
        };
        laid_out.insert(
            format!("{}/{}", service.namespace, service.name),
            (service.clone(), ip),
        );
    }
    Ok(Layout {
        names,
        workloads,
        services: laid_out,
    })
}

fn namespace_of(workload: &Workload) -> String {
    workload
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".to_string())
}

/// Gives each run workload its namespace's address and, when meshed, the
/// proxy ports every namespace uses (nothing is allocated: every namespace
/// has ports of its own). Workloads without `spec.run` are left alone.
pub fn place(workloads: &mut [Workload], layout: &Layout) {
    let run = workloads
        .iter_mut()
        .filter(|workload| workload.spec.run.is_some());
    for (workload, net) in run.zip(&layout.workloads) {
        workload.spec.addresses = vec![IpAddr::V4(net.ip)];
        if workload.spec.meshed {
            // The ports are the namespace's fixed ones; what the file says
            // of the proxy's kind stays.
            let implementation = workload
                .spec
                .proxy
                .as_ref()
                .and_then(|proxy| proxy.implementation);
            workload.spec.proxy = Some(WorkloadProxy {
                inbound_port: Some(INBOUND_PORT),
                address: None,
                outbound_port: Some(OUTBOUND_PORT),
                admin_port: Some(ADMIN_PORT),
                tap_port: Some(TAP_PORT),
                implementation,
            });
        }
    }
}

/// The effective mesh file: every run workload placed ([`place`]) and every
/// Service without a clusterIP given its own, each such document as one line
/// of JSON padded with blank lines (line numbers stay the user's); every
/// other document as written.
pub fn render(text: &str, layout: &Layout) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run_index = 0;
    for (separator, document) in ports::documents(text) {
        out.push_str(separator);
        let replaced = match workload_document(document) {
            Some(mut workload) if workload.spec.run.is_some() => {
                let net = layout.workloads.get(run_index);
                run_index += 1;
                net.and_then(|net| {
                    place(
                        std::slice::from_mut(&mut workload),
                        &Layout {
                            names: layout.names.clone(),
                            workloads: vec![net.clone()],
                            services: BTreeMap::new(),
                        },
                    );
                    serde_json::to_string(&workload).ok()
                })
            }
            Some(_) => None,
            None => service_with_cluster_ip(document, layout),
        };
        match replaced {
            Some(json) => {
                out.push_str(&json);
                out.push_str(&"\n".repeat(document.matches('\n').count().max(1)));
            }
            None => out.push_str(document),
        }
    }
    out
}

fn workload_document(document: &str) -> Option<Workload> {
    #[derive(Deserialize)]
    struct Head {
        kind: Option<String>,
    }
    let head: Head = serde_saphyr::from_str(document).ok()?;
    if head.kind.as_deref() != Some(weft_core::workload::KIND) {
        return None;
    }
    serde_saphyr::from_str(document).ok()
}

/// A Service document without a clusterIP, given the one laid out, as JSON.
fn service_with_cluster_ip(document: &str, layout: &Layout) -> Option<String> {
    let (entry, headless) = service_document(document)?;
    if headless || entry.cluster_ip.is_some() {
        return None;
    }
    let (_, ip) = layout
        .services
        .get(&format!("{}/{}", entry.namespace, entry.name))?;
    let mut value: serde_json::Value = serde_saphyr::from_str(document).ok()?;
    let spec = value
        .as_object_mut()?
        .entry("spec")
        .or_insert_with(|| serde_json::json!({}));
    spec.as_object_mut()?.insert(
        "clusterIP".into(),
        serde_json::Value::String(ip.to_string()),
    );
    serde_json::to_string(&value).ok()
}

/// A workload's `/etc/netns/<netns>/hosts` (which `ip netns exec` mounts
/// over `/etc/hosts`): loopback, and every Service's clusterIP under
/// `name.ns.svc.cluster.local name.ns.svc name.ns`, plus the bare `name`
/// for Services in the workload's own mesh namespace.
pub fn hosts_file(layout: &Layout, mesh_namespace: &str) -> String {
    let mut text = String::from(
        "# written by weft up --transparent\n127.0.0.1 localhost\n::1 localhost ip6-localhost\n",
    );
    for (entry, ip) in layout.services.values() {
        let (name, namespace) = (&entry.name, &entry.namespace);
        text.push_str(&format!(
            "{ip} {name}.{namespace}.svc.cluster.local {name}.{namespace}.svc {name}.{namespace}"
        ));
        if namespace == mesh_namespace {
            text.push_str(&format!(" {name}"));
        }
        text.push('\n');
    }
    text
}

/// One command to run: a program and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The program (`ip`, `iptables`).
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
}

impl Step {
    fn new(program: &str, args: &[&str]) -> Self {
        Self {
            program: program.to_string(),
            args: args.iter().map(|arg| (*arg).to_string()).collect(),
        }
    }

    /// Runs `ip netns exec <netns>` this step.
    fn inside(self, netns: &str) -> Self {
        let mut args = vec!["netns".into(), "exec".into(), netns.into(), self.program];
        args.extend(self.args);
        Self {
            program: "ip".into(),
            args,
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{} {}", self.program, self.args.join(" "))
    }
}

/// The FORWARD rule for bridged traffic (hosts with `br_netfilter` and a
/// DROP policy, e.g. Docker's), as `-I`/`-D` arguments after the verb.
fn forward_rule(bridge: &str) -> Vec<&str> {
    vec!["FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT"]
}

/// Everything to create, in order: the bridge and its FORWARD rule, then per
/// workload its namespace, veth pair, address, routes and nat rules
/// (`meshed`: whether workload `index` has a proxy; without one there is
/// nothing to redirect to).
pub fn set_up(layout: &Layout, meshed: &[bool]) -> Vec<Step> {
    let bridge = layout.names.bridge();
    let bridge_cidr = format!("{BRIDGE_IP}/{WORKLOAD_PREFIX}");
    let mut steps = vec![
        Step::new("ip", &["link", "add", &bridge, "type", "bridge"]),
        Step::new("ip", &["addr", "add", &bridge_cidr, "dev", &bridge]),
        Step::new("ip", &["link", "set", &bridge, "up"]),
        Step::new(
            "iptables",
            &[&["-I"], forward_rule(&bridge).as_slice()].concat(),
        ),
    ];
    let gateway = BRIDGE_IP.to_string();
    for (index, net) in layout.workloads.iter().enumerate() {
        let netns = net.netns.as_str();
        let veth = net.host_veth.as_str();
        let cidr = format!("{}/{WORKLOAD_PREFIX}", net.ip);
        steps.push(Step::new("ip", &["netns", "add", netns]));
        steps.push(Step::new(
            "ip",
            &[
                "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns,
            ],
        ));
        steps.push(Step::new(
            "ip",
            &["link", "set", veth, "master", &bridge, "up"],
        ));
        steps.push(Step::new("ip", &["addr", "add", &cidr, "dev", "eth0"]).inside(netns));
        steps.push(Step::new("ip", &["link", "set", "lo", "up"]).inside(netns));
        steps.push(Step::new("ip", &["link", "set", "eth0", "up"]).inside(netns));
        for network in service_routes(layout) {
            steps.push(Step::new("ip", &["route", "add", &network, "via", &gateway]).inside(netns));
        }
        if meshed.get(index).copied().unwrap_or(false) {
            steps.extend(nat_rules().into_iter().map(|step| step.inside(netns)));
        }
    }
    steps
}

/// The networks routed to the bridge inside every namespace (so that
/// `connect()` to a clusterIP gets as far as the OUTPUT REDIRECT) and looked
/// up in discovery: the service network, and each clusterIP the file writes
/// outside it.
pub fn service_routes(layout: &Layout) -> Vec<String> {
    let mut networks = vec![SERVICE_NETWORK.to_string()];
    for (_, ip) in layout.services.values() {
        let octets = ip.octets();
        if (octets[0], octets[1]) != (10, 96) {
            let network = format!("{ip}/32");
            if !networks.contains(&network) {
                networks.push(network);
            }
        }
    }
    networks
}

/// The nat rules of a sidecar's init container (`tests/netns/lib/common.bash`
/// `install_rules`): inbound TCP but the proxy's own ports to its inbound
/// port; the app's outbound TCP, except the proxy's own (by group) and
/// loopback, to its outbound port.
pub fn nat_rules() -> Vec<Step> {
    let gid = PROXY_GID.to_string();
    let inbound = INBOUND_PORT.to_string();
    let outbound = OUTBOUND_PORT.to_string();
    let mut steps = vec![Step::new("iptables", &["-t", "nat", "-N", "WEFT_INBOUND"])];
    for port in [INBOUND_PORT, TAP_PORT, ADMIN_PORT] {
        let port = port.to_string();
        steps.push(Step::new(
            "iptables",
            &[
                "-t",
                "nat",
                "-A",
                "WEFT_INBOUND",
                "-p",
                "tcp",
                "--dport",
                &port,
                "-j",
                "RETURN",
            ],
        ));
    }
    let nat = |args: &[&str]| Step::new("iptables", &[&["-t", "nat"], args].concat());
    steps.extend([
        nat(&[
            "-A",
            "WEFT_INBOUND",
            "-p",
            "tcp",
            "-j",
            "REDIRECT",
            "--to-ports",
            &inbound,
        ]),
        nat(&["-A", "PREROUTING", "-p", "tcp", "-j", "WEFT_INBOUND"]),
        nat(&["-N", "WEFT_OUTBOUND"]),
        nat(&[
            "-A",
            "WEFT_OUTBOUND",
            "-m",
            "owner",
            "--gid-owner",
            &gid,
            "-j",
            "RETURN",
        ]),
        nat(&["-A", "WEFT_OUTBOUND", "-o", "lo", "-j", "RETURN"]),
        nat(&[
            "-A",
            "WEFT_OUTBOUND",
            "-p",
            "tcp",
            "-j",
            "REDIRECT",
            "--to-ports",
            &outbound,
        ]),
        nat(&["-A", "OUTPUT", "-p", "tcp", "-j", "WEFT_OUTBOUND"]),
    ]);
    steps
}

/// Everything to remove, given the namespaces that exist: each namespace
/// (its veth pair and nat rules go with it), the bridge, the FORWARD rule.
/// Each step may fail when its object is already gone.
pub fn tear_down(names: &Names, namespaces: &[String]) -> Vec<Step> {
    let bridge = names.bridge();
    let mut steps: Vec<Step> = namespaces
        .iter()
        .map(|netns| Step::new("ip", &["netns", "del", netns]))
        .collect();
    steps.push(Step::new("ip", &["link", "del", &bridge]));
    steps.push(Step::new(
        "iptables",
        &[&["-D"], forward_rule(&bridge).as_slice()].concat(),
    ));
    steps
}

/// The proxy's environment in a namespace: `base` (the plan's
/// [`super::plan::proxy_env`]) in transparent mode: no
/// `INBOUND_FORWARD_ADDR` (inbound goes to each connection's original
/// destination, as in a pod), its listeners on the namespace's fixed ports,
/// clusterIPs looked up in discovery, and the controller on the bridge (not
/// loopback, so the proxy speaks TLS to it and the controller, which serves
/// plaintext only to loopback, accepts).
pub fn proxy_env(
    base: Vec<(String, String)>,
    layout: &Layout,
    controller: &ControllerAddrs,
) -> Vec<(String, String)> {
    let mut env: BTreeMap<String, String> = base.into_iter().collect();
    env.remove("WEFT_PROXY_INBOUND_FORWARD_ADDR");
    let any = |port: u16| SocketAddr::from(([0, 0, 0, 0], port)).to_string();
    for (name, value) in [
        ("WEFT_PROXY_INBOUND_LISTEN_ADDR", any(INBOUND_PORT)),
        (
            "WEFT_PROXY_OUTBOUND_LISTEN_ADDR",
            SocketAddr::from(([127, 0, 0, 1], OUTBOUND_PORT)).to_string(),
        ),
        ("WEFT_PROXY_ADMIN_LISTEN_ADDR", any(ADMIN_PORT)),
        ("WEFT_PROXY_TAP_LISTEN_ADDR", any(TAP_PORT)),
        (
            "WEFT_PROXY_DESTINATION_SVC_ADDR",
            controller.destination.to_string(),
        ),
        (
            "WEFT_PROXY_IDENTITY_SVC_ADDR",
            controller.identity.to_string(),
        ),
        (
            "WEFT_PROXY_DESTINATION_PROFILE_NETWORKS",
            service_routes(layout).join(","),
        ),
    ] {
        env.insert(name.to_string(), value);
    }
    env.into_iter().collect()
}

/// The program and arguments that run the proxy in its namespace as
/// [`PROXY_GID`] (`ip netns exec` execs, so the supervisor's process group
/// and signals reach the proxy itself).
pub fn proxy_command(netns: &str, proxy_bin: &Path) -> (String, Vec<String>) {
    let gid = PROXY_GID.to_string();
    let args = [
        "netns",
        "exec",
        netns,
        "setpriv",
        "--regid",
        &gid,
        "--clear-groups",
        "--",
    ]
    .iter()
    .map(|arg| (*arg).to_string())
    .chain([proxy_bin.display().to_string()])
    .collect();
    ("ip".to_string(), args)
}

/// The program and arguments that run an app in its namespace.
pub fn app_command(netns: &str, program: &Path, args: &[String]) -> (String, Vec<String>) {
    let mut all: Vec<String> = vec!["netns".into(), "exec".into(), netns.into()];
    all.push(program.display().to_string());
    all.extend(args.iter().cloned());
    ("ip".to_string(), all)
}

/// The app's environment in a namespace: its mesh-file `env` and
/// `WEFT_WORKLOAD`, no proxy variables (iptables meshes it).
pub fn app_env(workload: &WorkloadPlan) -> Vec<(String, String)> {
    let unproxied = WorkloadPlan {
        proxy: None,
        ..workload.clone()
    };
    super::plan::app_env(&unproxied)
}

/// Whether `/proc/<pid>/net/tcp` (or `tcp6`) text shows a listener on
/// `port` (any local address: inside a namespace, every one is the app's).
pub fn listens_on(proc_net_tcp: &str, port: u16) -> bool {
    proc_net_tcp.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(state)) = (fields.get(1), fields.get(3)) else {
            return false;
        };
        *state == "0A"
            && local
                .rsplit_once(':')
                .and_then(|(_, hex)| u16::from_str_radix(hex, 16).ok())
                == Some(port)
    })
}

#[cfg(test)]
mod tests;
