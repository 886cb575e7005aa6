//! `weft up -f mesh.yaml`: a whole mesh on this host, without root.
//!
//! ```text
//! plan (pure) ─► probe every port ─► locate binaries ─► identity init (first run)
//!   ─► controller (wait /ready) ─► per workload: app, proxy (explicit mode)
//!   ─► wait every proxy's /ready ─► up.json + summary ─► wait for Ctrl-C / SIGTERM
//!   ─► SIGTERM every child, SIGKILL stragglers, remove up.json
//! ```
//!
//! `weft up --transparent` (root, [`transparent`]) adds: refusals first;
//! addresses and clusterIPs instead of allocated ports; before the
//! controller, a bridge and one network namespace per workload with nat
//! rules; proxies (transparent mode) and apps (no proxy variables) inside
//! them; and after the children stop, the network removed again.
//!
//! Everything lives under the state directory (`--state-dir`, default
//! `~/.weft`): `identity/` (trust anchor, issuer, token key), `tokens/`
//! (one per meshed workload, written by the controller), `api-token`,
//! `logs/` (one file per process) and `up.json` while running.
//! [`start`] brings a mesh up and returns it [`Running`]; `weft demo` uses
//! the same steps.

pub mod binaries;
pub mod effective;
pub mod plan;
pub mod ports;
pub mod ready;
pub mod summary;
pub mod supervise;
pub mod transparent;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::global_options::GlobalOptions;
use crate::state::{self, ControllerAddresses, UpState, UpWorkload};
pub use binaries::locate;
use binaries::resolve_program;
use plan::{ControllerAddrs, Placement, Plan, ProxyContext};
use supervise::{ProcessSpec, Supervisor};
use transparent::Layout;
use transparent::host::{self as network_host, Network};

/// How long the controller may take to be ready.
const CONTROLLER_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a proxy may take to be ready (it needs its certificate first).
const PROXY_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long an app others depend on may take to listen on its ports.
const APP_LISTEN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long children get between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// `weft up` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The mesh file: Services, Workloads (those with `spec.run` are started),
    /// ServiceProfiles, TrafficSplits.
    #[arg(short = 'f', long = "file", value_name = "MESH_FILE")]
    pub mesh_file: PathBuf,
    /// Proxy ports the mesh file leaves out are allocated from here up
    /// (default 7500; kept in <state>/ports.json across restarts). Given,
    /// the controller moves to base..base+3 too (its flags win) and
    /// allocation starts at base+10, like `weft demo`.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1024..65_000))]
    pub port_base: Option<u16>,
    /// Controller listeners.
    #[command(flatten)]
    pub controller: ControllerArgs,
    /// Root: each run workload in its own network namespace, its app's TCP
    /// redirected into its proxy by iptables, so apps that ignore proxy
    /// variables are meshed too (the controller listens on the bridge,
    /// 10.209.0.1, unless its flags say otherwise).
    #[arg(long)]
    pub transparent: bool,
}

/// Where the controller listens.
#[derive(Debug, Clone, clap::Args)]
pub struct ControllerArgs {
    /// The controller's Destination gRPC address [default: 127.0.0.1:8086,
    /// or --port-base].
    #[arg(long)]
    pub destination_addr: Option<SocketAddr>,
    /// The controller's Identity gRPC address [default: 127.0.0.1:8080, or
    /// --port-base + 1].
    #[arg(long)]
    pub identity_addr: Option<SocketAddr>,
    /// The controller's admin address (/ready, /metrics) [default:
    /// 127.0.0.1:9990, or --port-base + 2].
    #[arg(long)]
    pub controller_admin_addr: Option<SocketAddr>,
    /// The controller's HTTP API and dashboard [default: 127.0.0.1:8084, or
    /// --port-base + 3].
    #[arg(long)]
    pub web_addr: Option<SocketAddr>,
    /// How often the controller scrapes the proxies' metrics (Go duration).
    #[arg(long, default_value = "5s")]
    pub scrape_interval: String,
}

impl ControllerArgs {
    /// As planned addresses: a flag, else `port_base` + 0..3 on loopback,
    /// else the fixed default.
    pub fn addrs(&self, port_base: Option<u16>) -> ControllerAddrs {
        self.addrs_on(port_base, IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    /// [`Self::addrs`] with `ip` instead of loopback.
    pub fn addrs_on(&self, port_base: Option<u16>, ip: IpAddr) -> ControllerAddrs {
        let pick = |flag: Option<SocketAddr>, offset: u16, default: u16| {
            flag.unwrap_or_else(|| {
                let port = port_base.map_or(default, |base| base + offset);
                SocketAddr::new(ip, port)
            })
        };
        ControllerAddrs {
            destination: pick(self.destination_addr, 0, 8086),
            identity: pick(self.identity_addr, 1, 8080),
            admin: pick(self.controller_admin_addr, 2, 9990),
            web: pick(self.web_addr, 3, 8084),
        }
    }
}

/// What [`start`] needs.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// The mesh file.
    pub mesh_file: PathBuf,
    /// Controller listeners and scrape interval.
    pub controller: ControllerArgs,
    /// `--port-base`, when given.
    pub port_base: Option<u16>,
    /// The state directory.
    pub state_dir: PathBuf,
    /// Whether the state directory was given explicitly (hints then name it).
    pub explicit_state_dir: bool,
}

/// Runs `weft up`.
pub async fn run(global: &GlobalOptions, args: Args) -> anyhow::Result<ExitCode> {
    let options = UpOptions {
        mesh_file: args.mesh_file,
        controller: args.controller,
        port_base: args.port_base,
        state_dir: state::state_dir(global),
        explicit_state_dir: global.state_dir.is_some(),
    };
    let placement = if args.transparent {
        // Before anything starts (or a signal handler is installed).
        network_host::preflight()?;
        Placement::Namespaces
    } else {
        Placement::Host
    };
    let mut signals = Signals::new()?;
    let running = match start_placed(&options, placement, &mut signals).await? {
        Started::Running(running) => *running,
        Started::Interrupted => return Ok(ExitCode::SUCCESS),
    };
    running.print_summary(&running.namespace_lines());
    signals.recv().await;
    running.stop().await;
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C (SIGINT) and SIGTERM.
pub struct Signals {
    interrupt: Signal,
    terminate: Signal,
}

impl Signals {
    /// Listens for both from now on.
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self {
            interrupt: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
        })
    }

    /// Waits for either.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

/// How [`start`] ended.
pub enum Started {
    /// Everything is up.
    Running(Box<Running>),
    /// Ctrl-C / SIGTERM came while starting; what had started is stopped.
    Interrupted,
}

/// A mesh that is up.
pub struct Running {
    /// What runs.
    pub plan: Plan,
    /// What `up.json` says.
    pub state: UpState,
    options: UpOptions,
    supervisor: Supervisor,
    /// Whether `weft up` allocated any proxy port (the summary says where
    /// they are kept).
    allocated_ports: bool,
    watch: tokio::task::JoinHandle<()>,
    /// With `--transparent`: where each workload is, and the network to
    /// remove when stopping.
    namespaces: Option<(Layout, Network)>,
}

/// Files under the state directory.
struct StatePaths {
    identity_dir: PathBuf,
    trust_anchors: PathBuf,
    issuer_dir: PathBuf,
    token_dir: PathBuf,
    api_token: PathBuf,
    log_dir: PathBuf,
}

impl StatePaths {
    fn new(state_dir: &Path) -> Self {
        let identity_dir = state_dir.join("identity");
        Self {
            trust_anchors: identity_dir.join("trust-anchor.pem"),
            issuer_dir: identity_dir.join("issuer"),
            identity_dir,
            token_dir: state_dir.join("tokens"),
            api_token: state_dir.join("api-token"),
            log_dir: state_dir.join("logs"),
        }
    }
}

/// Brings the mesh up; on any error, what had started is stopped again.
pub async fn start(options: &UpOptions, signals: &mut Signals) -> anyhow::Result<Started> {
    start_placed(options, Placement::Host, signals).await
}

/// [`start`], the workloads placed as `placement` says
/// ([`Placement::Namespaces`]: the caller ran [`network_host::preflight`]).
pub async fn start_placed(
    options: &UpOptions,
    placement: Placement,
    signals: &mut Signals,
) -> anyhow::Result<Started> {
    // 1. The plan: nothing has started yet, so every problem stops here.
    let mesh_file = std::path::absolute(&options.mesh_file)
        .with_context(|| format!("{}", options.mesh_file.display()))?;
    let text = std::fs::read_to_string(&mesh_file)
        .with_context(|| format!("cannot read the mesh file {}", mesh_file.display()))?;
    let mut workloads = plan::parse_workloads(&text)
        .with_context(|| format!("mesh file {}", mesh_file.display()))?;
    let in_namespaces = placement == Placement::Namespaces;
    let controller_addrs = if in_namespaces {
        let bridge = IpAddr::V4(transparent::BRIDGE_IP);
        options.controller.addrs_on(options.port_base, bridge)
    } else {
        options.controller.addrs(options.port_base)
    };
    let (allocations, layout) = if in_namespaces {
        // Every namespace has the proxy's standard ports: nothing to
        // allocate; addresses and clusterIPs instead.
        let names = transparent::Names::for_state_dir(&options.state_dir);
        let services = transparent::parse_services(&text);
        let layout = transparent::layout(names, &workloads, &services)
            .with_context(|| format!("mesh file {}", mesh_file.display()))?;
        transparent::place(&mut workloads, &layout);
        (ports::Allocations::default(), Some(layout))
    } else {
        // Proxy ports the file leaves out: the ones kept from the last run,
        // else the first free ones from the base.
        let allocations = ports::allocate(
            &workloads,
            &ports::load(&options.state_dir),
            options
                .port_base
                .map_or(ports::DEFAULT_PORT_BASE, |base| base + 10),
            &[
                controller_addrs.destination.port(),
                controller_addrs.identity.port(),
                controller_addrs.admin.port(),
                controller_addrs.web.port(),
            ],
            &is_taken,
        );
        for workload in &mut workloads {
            ports::fill(workload, &allocations);
        }
        (allocations, None)
    };
    let mesh_dir = mesh_file.parent().unwrap_or(Path::new("/")).to_path_buf();
    let plan = plan::plan_placed(&workloads, controller_addrs, &mesh_dir, placement)
        .with_context(|| format!("mesh file {}", mesh_file.display()))?;
    if let Ok(Some(previous)) = state::load(&options.state_dir) {
        if is_weft(previous.pid) {
            bail!(
                "a mesh is already running from {} (weft pid {}): stop it first (Ctrl-C in its terminal, or kill -INT {})",
                options.state_dir.display(),
                previous.pid,
                previous.pid
            );
        }
        // Left by a weft that did not stop cleanly.
        let _ = std::fs::remove_file(options.state_dir.join(state::UP_FILE));
    }
    let allocated_ports = allocations
        .workloads
        .values()
        .any(ports::AllocatedPorts::any);
    // With --transparent the controller's address is the bridge's, which
    // exists only once the network is up: probed then.
    if !in_namespaces {
        probe_or_refuse(&plan, allocated_ports, options)?;
    }
    let controller_bin = locate("weft-controller")?;
    let proxy_bin = if plan
        .workloads
        .iter()
        .any(|workload| workload.proxy.is_some())
    {
        Some(locate("weft-proxy")?)
    } else {
        None
    };
    let apps: Vec<PathBuf> = plan
        .workloads
        .iter()
        .map(|workload| resolve_program(&workload.app.command[0]))
        .collect();

    // 2. The state directory and, on the first run, the identity.
    let paths = StatePaths::new(&options.state_dir);
    for dir in [&options.state_dir, &paths.token_dir, &paths.log_dir] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    if !in_namespaces {
        ports::save(&options.state_dir, &allocations).with_context(|| {
            format!(
                "cannot write {}",
                options.state_dir.join(ports::PORTS_FILE).display()
            )
        })?;
    }
    // The controller reads the effective file (allocated ports, or the
    // namespaces' addresses and clusterIPs, filled in), re-rendered whenever
    // the user's file changes.
    let render: Box<dyn Fn(&str) -> String + Send> = match &layout {
        Some(layout) => {
            let layout = layout.clone();
            Box::new(move |text| transparent::render(text, &layout))
        }
        None => Box::new(move |text| ports::render(text, &allocations)),
    };
    let effective_file = options.state_dir.join(ports::EFFECTIVE_MESH_FILE);
    ports::write_replacing(&effective_file, render(&text).as_bytes())
        .with_context(|| format!("cannot write {}", effective_file.display()))?;
    println!(
        "weft up: {} ({} workloads to run{}), state in {}",
        mesh_file.display(),
        plan.workloads.len(),
        if in_namespaces {
            ", each in its own network namespace"
        } else {
            ""
        },
        options.state_dir.display()
    );
    if !paths.trust_anchors.exists() {
        progress("creating the trust anchor and issuer");
        let output = std::process::Command::new(&controller_bin)
            .args(["identity", "init", "--dir"])
            .arg(&paths.identity_dir)
            .output()
            .with_context(|| format!("cannot run {}", controller_bin.display()))?;
        if !output.status.success() {
            bail!(
                "weft-controller identity init failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        done(&paths.identity_dir.display().to_string());
    }

    // 3. With --transparent, the network: what a killed weft left first.
    let namespaces = match layout {
        Some(layout) => {
            progress("creating the bridge and network namespaces");
            network_host::remove_stale(&layout.names);
            let meshed: Vec<bool> = plan
                .workloads
                .iter()
                .map(|workload| workload.proxy.is_some())
                .collect();
            let network = network_host::set_up(&layout, &transparent::set_up(&layout, &meshed))?;
            done(&format!(
                "{} on {}",
                network.namespaces().len(),
                layout.names.bridge()
            ));
            Some((layout, network))
        }
        None => None,
    };

    // 4. The controller, the proxies, the apps.
    let mut running = Running {
        state: UpState::default(),
        plan,
        options: options.clone(),
        supervisor: Supervisor::default(),
        allocated_ports,
        watch: effective::watch(mesh_file.clone(), effective_file.clone(), render),
        namespaces,
    };
    let probed = if running.namespaces.is_some() {
        probe_or_refuse(&running.plan, false, options)
    } else {
        Ok(())
    };
    let result = match probed {
        Ok(()) => {
            start_children(
                &mut running,
                &paths,
                &controller_bin,
                proxy_bin.as_deref(),
                &apps,
                &effective_file,
                signals,
            )
            .await
        }
        Err(error) => Err(error),
    };
    match result {
        Ok(true) => {}
        Ok(false) => {
            println!("\nweft up: interrupted, stopping");
            running.stop().await;
            return Ok(Started::Interrupted);
        }
        Err(error) => {
            running.watch.abort();
            running.supervisor.stop().await;
            if let Some((_, network)) = &running.namespaces {
                network.tear_down();
            }
            return Err(error);
        }
    }

    // 5. Where everything is, for the other commands.
    running.state = up_state(&running.plan, &paths, &mesh_file);
    state::save(&options.state_dir, &running.state)?;
    Ok(Started::Running(Box::new(running)))
}

/// Refuses when a port this host must listen on is taken, naming each.
fn probe_or_refuse(plan: &Plan, allocated_ports: bool, options: &UpOptions) -> anyhow::Result<()> {
    let taken = plan::probe(&plan.ports());
    if taken.is_empty() {
        return Ok(());
    }
    bail!(
        "{}\nnothing was started: stop what uses these ports or change them in the mesh file (or the controller's flags){}",
        taken.join("\n"),
        if allocated_ports {
            format!(
                "; proxy ports the file leaves out are kept in {}: delete it (or pass another --port-base) to allocate new ones",
                options.state_dir.join(ports::PORTS_FILE).display()
            )
        } else {
            String::new()
        }
    )
}
/// Starts the controller, then every app and proxy, waiting for each to be
/// ready; `Ok(false)` when interrupted.
async fn start_children(
    running: &mut Running,
    paths: &StatePaths,
    controller_bin: &Path,
    proxy_bin: Option<&Path>,
    apps: &[PathBuf],
    mesh_file: &Path,
    signals: &mut Signals,
) -> anyhow::Result<bool> {
    let controller = running.plan.controller;
    let args: Vec<String> = vec![
        "--mesh-file".into(),
        mesh_file.display().to_string(),
        "--destination-addr".into(),
        controller.destination.to_string(),
        "--admin-addr".into(),
        controller.admin.to_string(),
        "--identity-addr".into(),
        controller.identity.to_string(),
        "--identity-issuer-dir".into(),
        paths.issuer_dir.display().to_string(),
        "--identity-trust-anchors".into(),
        paths.trust_anchors.display().to_string(),
        "--identity-token-dir".into(),
        paths.token_dir.display().to_string(),
        "--web-addr".into(),
        controller.web.to_string(),
        "--scrape-interval".into(),
        running.options.controller.scrape_interval.clone(),
        "--api-token-file".into(),
        paths.api_token.display().to_string(),
    ];
    let controller_log = paths.log_dir.join("controller.log");
    truncate(&controller_log);
    progress("starting the controller");
    running.supervisor.start(
        ProcessSpec {
            name: "controller".into(),
            program: controller_bin.to_path_buf(),
            args,
            env: vec![("RUST_LOG".into(), "info".into())],
            env_remove: Vec::new(),
            working_dir: None,
            log: controller_log.clone(),
        },
        STOP_GRACE,
    )?;
    if !wait_ready_or_signal(
        controller.admin,
        CONTROLLER_READY_TIMEOUT,
        signals,
        "controller",
        &controller_log,
    )
    .await?
    {
        return Ok(false);
    }
    let trust_anchors_pem = std::fs::read_to_string(&paths.trust_anchors)
        .with_context(|| format!("cannot read {}", paths.trust_anchors.display()))?;
    let context = ProxyContext {
        controller,
        token_dir: paths.token_dir.clone(),
        trust_anchors_pem,
    };

    // The proxies first, so each app's HTTP proxy is ready when it starts.
    let workloads = running.plan.workloads.clone();
    let layout = running
        .namespaces
        .as_ref()
        .map(|(layout, _)| layout.clone());
    for (index, workload) in workloads.iter().enumerate() {
        let (Some(proxy), Some(proxy_bin)) = (&workload.proxy, proxy_bin) else {
            continue;
        };
        let env = plan::proxy_env(workload, proxy, &context);
        // With --transparent: in the workload's namespace, as the proxy's
        // group, in transparent mode.
        let (program, args, env) = match &layout {
            Some(layout) => {
                let (program, args) =
                    transparent::proxy_command(&layout.workloads[index].netns, proxy_bin);
                let env = transparent::proxy_env(env, layout, &controller);
                (PathBuf::from(program), args, env)
            }
            None => (proxy_bin.to_path_buf(), Vec::new(), env),
        };
        let what = format!("{} proxy", workload.key());
        let log = paths
            .log_dir
            .join(format!("{}-proxy.log", workload.log_stem()));
        truncate(&log);
        progress(&format!("starting {what}"));
        running.supervisor.start(
            ProcessSpec {
                name: what.clone(),
                program,
                args,
                env,
                env_remove: Vec::new(),
                working_dir: None,
                log: log.clone(),
            },
            STOP_GRACE,
        )?;
        if !wait_ready_or_signal(proxy.admin, PROXY_READY_TIMEOUT, signals, &what, &log).await? {
            return Ok(false);
        }
    }

    // Then the apps, each after the apps it depends on listen.
    progress(&format!("starting {} apps", workloads.len()));
    let start_order = running.plan.start_order.clone();
    for position in start_order {
        let workload = &workloads[position];
        for dependency in &workload.depends_on {
            let Some(needed) = workloads.iter().find(|other| other.key() == *dependency) else {
                continue;
            };
            let log = paths.log_dir.join(format!("{}-app.log", needed.log_stem()));
            let what = format!("{} app (dependsOn of {})", needed.key(), workload.key());
            // In its namespace, a connection from here would reach its
            // proxy (PREROUTING): its listeners are read from /proc instead.
            let in_namespace = layout.as_ref().map(|_| {
                let name = format!("{} app", needed.key());
                running
                    .supervisor
                    .pids()
                    .into_iter()
                    .find_map(|(child, pid)| (child == name).then_some(pid).flatten())
            });
            if !wait_listening_or_signal(&needed.app.listen, in_namespace, signals, &what, &log)
                .await?
            {
                return Ok(false);
            }
        }
        let log = paths
            .log_dir
            .join(format!("{}-app.log", workload.log_stem()));
        truncate(&log);
        let args = workload.app.command[1..].to_vec();
        // With --transparent: in its namespace, and no proxy variables (not
        // even weft's own): iptables meshes it.
        let (program, args, env, env_remove) = match &layout {
            Some(layout) => {
                let (program, args) = transparent::app_command(
                    &layout.workloads[position].netns,
                    &apps[position],
                    &args,
                );
                let env = transparent::app_env(workload);
                let remove = transparent::PROXY_VARIABLES
                    .iter()
                    .map(|name| name.to_string());
                (PathBuf::from(program), args, env, remove.collect())
            }
            None => (
                apps[position].clone(),
                args,
                plan::app_env(workload),
                Vec::new(),
            ),
        };
        running.supervisor.start(
            ProcessSpec {
                name: format!("{} app", workload.key()),
                program,
                args,
                env,
                env_remove,
                working_dir: Some(workload.app.working_dir.clone()),
                log,
            },
            STOP_GRACE,
        )?;
    }
    done("started");
    Ok(true)
}

/// Waits until an app accepts connections on every port it declares (in a
/// namespace, `Some(pid)` of the app: until it listens there);
/// `Ok(false)` when a signal came.
async fn wait_listening_or_signal(
    listen: &[SocketAddr],
    in_namespace: Option<Option<u32>>,
    signals: &mut Signals,
    what: &str,
    log: &Path,
) -> anyhow::Result<bool> {
    let ports: Vec<u16> = listen.iter().map(SocketAddr::port).collect();
    let listening = async {
        match in_namespace {
            Some(pid) => network_host::wait_listening_in(pid, &ports, APP_LISTEN_TIMEOUT).await,
            None => ready::wait_listening(listen, APP_LISTEN_TIMEOUT).await,
        }
    };
    tokio::select! {
        listening = listening => {
            if listening {
                Ok(true)
            } else {
                println!("not listening");
                bail!(
                    "{what} did not accept connections on {listen:?} within {APP_LISTEN_TIMEOUT:?}; the end of its log ({}):\n{}",
                    log.display(),
                    tail(log, 20)
                )
            }
        }
        () = signals.recv() => Ok(false),
    }
}

/// Waits for `/ready`, printing the outcome; `Ok(false)` when a signal came.
async fn wait_ready_or_signal(
    admin: SocketAddr,
    timeout: Duration,
    signals: &mut Signals,
    what: &str,
    log: &Path,
) -> anyhow::Result<bool> {
    let started = Instant::now();
    tokio::select! {
        ready = ready::wait_ready(admin, timeout) => {
            if ready {
                done(&format!("ready ({:.1}s)", started.elapsed().as_secs_f64()));
                Ok(true)
            } else {
                println!("not ready");
                bail!(
                    "{what} was not ready within {timeout:?}; the end of its log ({}):\n{}",
                    log.display(),
                    tail(log, 20)
                )
            }
        }
        () = signals.recv() => Ok(false),
    }
}

impl Running {
    /// Stops every process and removes `up.json`.
    pub async fn stop(self) {
        println!(
            "weft: stopping {} processes ...",
            self.supervisor.pids().len()
        );
        self.watch.abort();
        self.supervisor.stop().await;
        if let Some((layout, network)) = &self.namespaces {
            println!(
                "weft: removing {} network namespaces and {}",
                network.namespaces().len(),
                layout.names.bridge()
            );
            network.tear_down();
        }
        let _ = std::fs::remove_file(self.options.state_dir.join(state::UP_FILE));
        println!("weft: stopped");
    }

    /// The process ids of the children, by name.
    pub fn pids(&self) -> Vec<(String, Option<u32>)> {
        self.supervisor.pids()
    }
}

fn up_state(plan: &Plan, paths: &StatePaths, mesh_file: &Path) -> UpState {
    UpState {
        pid: std::process::id(),
        mesh_file: mesh_file.to_path_buf(),
        controller: ControllerAddresses {
            api: format!("http://{}", plan.controller.web),
            destination: plan.controller.destination.to_string(),
            identity: plan.controller.identity.to_string(),
            admin: plan.controller.admin.to_string(),
        },
        token_file: paths.api_token.clone(),
        trust_anchors: paths.trust_anchors.clone(),
        issuer_dir: paths.issuer_dir.clone(),
        log_dir: paths.log_dir.clone(),
        workloads: plan
            .workloads
            .iter()
            .filter_map(|workload| {
                let proxy = workload.proxy.as_ref()?;
                Some(UpWorkload {
                    namespace: workload.namespace.clone(),
                    name: workload.name.clone(),
                    identity: Some(workload.identity.clone()),
                    admin: proxy.admin.to_string(),
                    outbound: proxy.outbound.to_string(),
                    inbound: proxy.inbound.to_string(),
                    tap: proxy.tap.to_string(),
                })
            })
            .collect(),
    }
}

/// Whether a port is in use on this host (binding the unspecified address
/// fails when anything listens on it, on any address).
fn is_taken(port: u16) -> bool {
    std::net::TcpListener::bind(("0.0.0.0", port)).is_err()
}

/// Whether `pid` is a running `weft`.
fn is_weft(pid: u32) -> bool {
    pid != std::process::id()
        && std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|command_line| {
            let program = command_line
                .split(|byte| *byte == 0)
                .next()
                .unwrap_or_default();
            String::from_utf8_lossy(program).ends_with("weft")
        })
}

fn truncate(log: &Path) {
    let _ = std::fs::write(log, b"");
}

/// The last `lines` lines of a file.
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Prints a progress step (the outcome follows on the same line).
pub fn progress(step: &str) {
    print!("  {step:.<48} ");
    let _ = std::io::stdout().flush();
}

/// Ends a progress step.
pub fn done(outcome: &str) {
    println!("{outcome}");
}
