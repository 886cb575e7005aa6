//! `controller-targets`: measures `weft-controller` against its targets with
//! a big generated mesh — resident memory, mesh-file reload time, and how
//! fast an endpoint edit in the mesh file reaches subscribed `Get` streams.
//!
//! ```text
//! generate mesh.yaml (1,000 Services × 10 Workloads) ─► start weft-controller ─► /ready
//!   RSS idle
//!   fan-out: N Get streams on ONE service ─► RSS ─► edits (add / remove one workload of it)
//!   spread:  one Get stream on each of N services ─► RSS ─► edits on one of them
//!   each edit: t0 = rename(tmp, mesh.yaml); per stream: t(diff received) − t0
//!   policy:  one Server per service, WatchPort streams, namespace-wide policy edits ([`policy`])
//! ```
//!
//! Streams are `linkerd2-proxy-api` Destination clients on tonic channels,
//! one connection per stream by default (as N proxies would have). The
//! pure parts are in [`mesh`] (the file) and [`report`] (summaries, markdown).

pub mod cluster;
pub mod mesh;
pub mod policy;
pub mod report;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use linkerd2_proxy_api::destination::destination_client::DestinationClient;
use linkerd2_proxy_api::destination::update::Update as UpdateKind;
use linkerd2_proxy_api::destination::{GetDestination, Update};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tonic::transport::{Channel, Endpoint};

use weft_test_support::kube_api::KubeApiServer;

use crate::process::{Managed, Placement, SpawnSpec, free_port};
use crate::procfs;
use mesh::MeshShape;
use report::{EditResults, Report, Summary, millis};

/// Command line of `controller-targets`.
#[derive(Debug, Parser)]
#[command(
    name = "controller-targets",
    about = "weft-controller targets: RSS, reload time and edit fan-out with a big mesh"
)]
pub struct Args {
    /// Services in the generated mesh.
    #[arg(long, default_value_t = 1000)]
    pub services: usize,
    /// Workloads (one endpoint each) per service.
    #[arg(long, default_value_t = 10)]
    pub endpoints_per_service: usize,
    /// Namespaces the services are spread over.
    #[arg(long, default_value_t = 10)]
    pub namespaces: usize,
    /// `Get` streams per scenario.
    #[arg(long, default_value_t = 1000)]
    pub streams: usize,
    /// gRPC connections the streams share (default: one per stream).
    #[arg(long)]
    pub connections: Option<usize>,
    /// Edits per scenario (alternately adding and removing one workload).
    #[arg(long, default_value_t = 10)]
    pub edits: usize,
    /// InboundServerPolicies WatchPort streams in the policy scenario (0: skip it).
    #[arg(long, default_value_t = 1000)]
    pub policy_streams: usize,
    /// Pause between edits, in milliseconds.
    #[arg(long, default_value_t = 400)]
    pub pause_ms: u64,
    /// The controller binary (default: `$CARGO_TARGET_DIR` or `target`, `release/weft-controller`).
    #[arg(long)]
    pub controller: Option<PathBuf>,
    /// One more flag for the controller (repeatable), e.g.
    /// `--controller-arg=--prometheus-url=http://127.0.0.1:9090` to measure
    /// without the scraper.
    #[arg(long = "controller-arg", allow_hyphen_values = true)]
    pub controller_args: Vec<String>,
    /// `taskset -c` CPU list for the controller (default: not pinned).
    #[arg(long)]
    pub controller_cpus: Option<String>,
    /// Where the controller reads the mesh from: `mesh-file` (a generated
    /// file, edited by rewriting it) or `kubernetes` (the same objects as a
    /// cluster holds them — Pods, EndpointSlices, ReplicaSets — served by the
    /// test API server in this process; edits change one EndpointSlice).
    #[arg(long, value_enum, default_value = "mesh-file")]
    pub source: Source,
    /// Directory for results (markdown, JSON, logs, the mesh file).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/results/controller"))]
    pub out_dir: PathBuf,
}

/// Where the controller's mesh comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Source {
    /// A generated mesh file.
    MeshFile,
    /// The Kubernetes API (the test API server).
    Kubernetes,
}

/// How long to wait for the controller's first load.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long an edit may take to reach every stream before it counts as missed.
const EDIT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to keep listening for updates on untouched streams after an edit.
const QUIET_GRACE: Duration = Duration::from_millis(100);

/// Runs the whole measurement and writes the report.
pub fn run(args: Args) -> anyhow::Result<()> {
    let shape = MeshShape {
        services: args.services,
        endpoints_per_service: args.endpoints_per_service,
        namespaces: args.namespaces,
    };
    if args.services == 0 || args.streams == 0 {
        bail!("--services and --streams must be at least 1");
    }
    let controller_bin = args.controller.clone().unwrap_or_else(default_controller);
    if !controller_bin.exists() {
        bail!(
            "{} not found: build it with `cargo build --release -p weft-controller`",
            controller_bin.display()
        );
    }

    // 1. The run directory and the mesh file.
    let run_dir = args.out_dir.join(utc_now("+%Y%m%dT%H%M%SZ"));
    std::fs::create_dir_all(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
    let mesh_file = MeshFile::new(&run_dir);
    let base_text = shape.render(None);
    mesh_file.write(&base_text)?;
    let mut report = Report {
        started: utc_now("+%Y-%m-%d %H:%M:%S UTC"),
        load_average: load_average(),
        mesh: format!(
            "{} services × {} workloads = {} endpoints in {} namespaces ({:.1} MiB of YAML)",
            shape.services,
            shape.endpoints_per_service,
            shape.total_endpoints(),
            shape.namespaces,
            base_text.len() as f64 / (1024.0 * 1024.0)
        ),
        controller: controller_bin.display().to_string(),
        ..Report::default()
    };

    // 2. The controller, until /ready: on the mesh file, or on the API
    //    server holding the same mesh as cluster objects.
    let api = match args.source {
        Source::MeshFile => None,
        Source::Kubernetes => {
            let api = KubeApiServer::start();
            let loading = Instant::now();
            let objects = shape.cluster_objects();
            let count = objects.len();
            for object in objects {
                api.apply(object);
            }
            // The pods the edits' extra endpoint names (the fan-out and
            // spread scenarios' edited services), present from the start.
            for service in [0, shape.services / 2] {
                api.apply(shape.extra_pod(service));
            }
            eprintln!(
                "controller-targets: {count} objects in the API server in {:.0} ms",
                millis(loading.elapsed())
            );
            api.write_kubeconfig(&run_dir.join("kubeconfig"));
            report.mesh = format!(
                "{} services × {} pods = {} endpoints in {} namespaces, from the Kubernetes API ({count} objects)",
                shape.services,
                shape.endpoints_per_service,
                shape.total_endpoints(),
                shape.namespaces,
            );
            Some(api)
        }
    };
    let source_args: Vec<String> = match &api {
        None => vec!["--mesh-file".into(), mesh_file.path.display().to_string()],
        Some(_) => vec![
            "--kubernetes".into(),
            "--kubeconfig".into(),
            run_dir.join("kubeconfig").display().to_string(),
        ],
    };
    let destination_addr = free_port()?;
    let admin_addr = free_port()?;
    let started = Instant::now();
    let mut controller = Managed::spawn(SpawnSpec {
        name: "weft-controller",
        program: &controller_bin,
        args: &[
            source_args,
            vec![
                "--destination-addr".into(),
                destination_addr.to_string(),
                "--admin-addr".into(),
                admin_addr.to_string(),
                "--web-addr".into(),
                "127.0.0.1:0".into(),
                // Every stream comes from this host: one client to the controller.
                "--destination-max-streams-per-client".into(),
                (2 * args.streams.max(args.policy_streams) + 1000).to_string(),
            ],
            args.controller_args.clone(),
        ]
        .concat(),
        envs: &[("RUST_LOG".into(), "warn".into())],
        placement: &Placement {
            cpus: args.controller_cpus.clone(),
            nice: None,
            user: None,
        },
        log: &run_dir.join("controller.log"),
    })?;
    controller.wait_http_ok(admin_addr, "/ready", START_TIMEOUT)?;
    report.start_to_ready_ms = millis(started.elapsed());
    let pid = controller.pid();
    report.cpu.start_ms = ticks_ms(procfs::cpu_ticks(pid)?);
    if api.is_none() {
        report.initial_load_ms = last_load_ms(admin_addr)?;
    }
    std::thread::sleep(Duration::from_secs(1));
    let idle_from = procfs::cpu_ticks(pid)?;
    std::thread::sleep(IDLE_CPU_WINDOW);
    report.cpu.idle_percent = ticks_ms(procfs::cpu_ticks(pid)?.saturating_sub(idle_from))
        / millis(IDLE_CPU_WINDOW)
        * 100.0;
    report.memory.idle_kib = procfs::rss_kib(pid)?;
    eprintln!(
        "controller-targets: ready in {:.0} ms (load {:.1} ms), idle RSS {} KiB",
        report.start_to_ready_ms, report.initial_load_ms, report.memory.idle_kib
    );

    // 3. The scenarios, on one multi-threaded client runtime.
    let runtime = tokio::runtime::Runtime::new()?;
    let harness = Harness {
        shape,
        destination_addr,
        admin_addr,
        pid,
        editor: match &api {
            None => Editor::MeshFile {
                file: &mesh_file,
                base_text: &base_text,
            },
            Some(api) => Editor::Kubernetes { api },
        },
        streams: args.streams,
        connections: args
            .connections
            .unwrap_or(args.streams)
            .clamp(1, args.streams),
        edits: args.edits,
        pause: Duration::from_millis(args.pause_ms),
    };
    let fan_out_target = 0;
    let (fan_out, fan_out_kib) = runtime.block_on(harness.scenario(Scenario {
        name: "fan-out: all streams on one service",
        service_of_stream: &|_| fan_out_target,
        edited_service: fan_out_target,
    }))?;
    report.memory.fan_out_kib = fan_out_kib;
    report.scenarios.push(fan_out);
    controller.check_alive()?;
    let services = shape.services;
    let (spread, spread_kib) = runtime.block_on(harness.scenario(Scenario {
        name: "spread: one stream per service",
        service_of_stream: &|stream| stream % services,
        edited_service: services / 2,
    }))?;
    report.memory.spread_kib = spread_kib;
    report.scenarios.push(spread);
    controller.check_alive()?;
    if args.policy_streams > 0 && api.is_none() {
        let policy_results = runtime.block_on(policy::scenario(policy::PolicyRun {
            shape,
            base_text: &base_text,
            mesh_file: &mesh_file,
            address: destination_addr,
            admin: admin_addr,
            streams: args.policy_streams,
            connections: args
                .connections
                .unwrap_or(args.policy_streams)
                .clamp(1, args.policy_streams),
            edits: args.edits,
            pause: Duration::from_millis(args.pause_ms),
        }))?;
        report.scenarios.push(policy_results);
        controller.check_alive()?;
    }
    report.memory.peak_kib = peak_rss_kib(pid).unwrap_or_default();
    controller.stop(Duration::from_secs(5));

    // 4. The report.
    let markdown = report.markdown();
    std::fs::write(run_dir.join("report.md"), &markdown)?;
    std::fs::write(
        run_dir.join("report.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    std::fs::write(args.out_dir.join("latest.md"), &markdown)?;
    // The big mesh file is only needed while the run lasts.
    let _ = std::fs::remove_file(&mesh_file.path);
    println!("{markdown}");
    eprintln!(
        "controller-targets: wrote {}",
        run_dir.join("report.md").display()
    );
    Ok(())
}

/// One scenario: which service each stream watches and which one the edits touch.
struct Scenario<'a> {
    name: &'static str,
    service_of_stream: &'a (dyn Fn(usize) -> usize + Sync),
    edited_service: usize,
}

/// What every scenario shares.
struct Harness<'a> {
    shape: MeshShape,
    destination_addr: SocketAddr,
    admin_addr: SocketAddr,
    pid: u32,
    editor: Editor<'a>,
    streams: usize,
    connections: usize,
    edits: usize,
    pause: Duration,
}

/// How an edit adds or removes the edited service's extra endpoint.
enum Editor<'a> {
    /// Rewrites the mesh file (with or without the extra workload).
    MeshFile {
        /// The file.
        file: &'a MeshFile,
        /// Its text without the extra workload.
        base_text: &'a str,
    },
    /// Replaces the service's EndpointSlice (with or without the extra endpoint).
    Kubernetes {
        /// The API server the controller watches.
        api: &'a KubeApiServer,
    },
}

/// CPU time in milliseconds for clock ticks (`/proc`'s 100 Hz).
fn ticks_ms(ticks: u64) -> f64 {
    ticks as f64 * 10.0
}

/// How long idle CPU is sampled after start-up.
const IDLE_CPU_WINDOW: Duration = Duration::from_secs(10);

/// One update as a stream saw it.
struct Received {
    stream: usize,
    at: Instant,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Add,
    Remove,
    Other,
}

impl Harness<'_> {
    /// Opens the streams, samples RSS, makes the edits; returns the results
    /// and the RSS with the streams open. The streams close at the end.
    async fn scenario(&self, scenario: Scenario<'_>) -> anyhow::Result<(EditResults, u64)> {
        eprintln!("controller-targets: {}", scenario.name);
        let channels = self.connect().await?;
        let (sender, mut received) = mpsc::unbounded_channel::<Received>();
        let mut tasks = JoinSet::new();
        let (ready_sender, mut ready) = mpsc::channel::<anyhow::Result<()>>(self.streams);
        let watched: Vec<usize> = (0..self.streams).map(scenario.service_of_stream).collect();
        for (stream, service) in watched.iter().enumerate() {
            let channel = channels[stream % channels.len()].clone();
            let path = self.shape.authority(*service);
            let sender = sender.clone();
            let ready_sender = ready_sender.clone();
            tasks.spawn(watch_stream(channel, path, stream, sender, ready_sender));
        }
        drop(ready_sender);
        for _ in 0..self.streams {
            match ready.recv().await {
                Some(Ok(())) => {}
                Some(Err(error)) => return Err(error.context("opening a Get stream")),
                None => bail!("a Get stream ended before its first update"),
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rss_kib = procfs::rss_kib(self.pid)?;
        eprintln!("  {} streams open, RSS {rss_kib} KiB", self.streams);

        let receivers: Vec<bool> = watched
            .iter()
            .map(|service| *service == scenario.edited_service)
            .collect();
        let receivers_per_edit = receivers.iter().filter(|receives| **receives).count();
        let edited_text = match self.editor {
            Editor::MeshFile { .. } => self.shape.render(Some(scenario.edited_service)),
            Editor::Kubernetes { .. } => String::new(),
        };
        let mut latencies = Vec::new();
        let mut firsts = Vec::new();
        let mut spreads = Vec::new();
        let mut reloads = Vec::new();
        let mut misses = 0;
        let mut unexpected = 0;
        for edit in 0..self.edits {
            let adding = edit % 2 == 0;
            let expected = if adding { Kind::Add } else { Kind::Remove };
            while received.try_recv().is_ok() {}
            let written = match &self.editor {
                Editor::MeshFile { file, base_text } => {
                    let text = if adding {
                        edited_text.as_str()
                    } else {
                        base_text
                    };
                    let written = Instant::now();
                    file.write(text)?;
                    written
                }
                Editor::Kubernetes { api } => {
                    let slice = self.shape.slice(scenario.edited_service, adding);
                    let written = Instant::now();
                    api.apply(slice);
                    written
                }
            };
            let mut arrivals: Vec<Instant> = Vec::with_capacity(receivers_per_edit);
            let deadline = tokio::time::Instant::now() + EDIT_TIMEOUT;
            let mut quiet_until: Option<tokio::time::Instant> = None;
            loop {
                let until = quiet_until.unwrap_or(deadline);
                let Ok(Some(update)) = tokio::time::timeout_at(until, received.recv()).await else {
                    break;
                };
                if !receivers[update.stream] {
                    unexpected += 1;
                } else if update.kind != expected {
                    misses += 1;
                } else {
                    arrivals.push(update.at);
                    if arrivals.len() == receivers_per_edit {
                        quiet_until = Some(tokio::time::Instant::now() + QUIET_GRACE);
                    }
                }
            }
            misses += receivers_per_edit.saturating_sub(arrivals.len());
            arrivals.sort();
            latencies.extend(arrivals.iter().map(|at| at.duration_since(written)));
            if let (Some(first), Some(last)) = (arrivals.first(), arrivals.last()) {
                firsts.push(first.duration_since(written));
                spreads.push(last.duration_since(*first));
            }
            if let Editor::MeshFile { .. } = self.editor
                && let Ok(reload_ms) = last_load_ms(self.admin_addr)
            {
                reloads.push(Duration::from_secs_f64(reload_ms / 1000.0));
            }
            eprintln!(
                "  edit {}: {} of {receivers_per_edit} streams, first {:.1} ms, last {:.1} ms",
                edit + 1,
                arrivals.len(),
                arrivals
                    .first()
                    .map_or(0.0, |at| millis(at.duration_since(written))),
                arrivals
                    .last()
                    .map_or(0.0, |at| millis(at.duration_since(written))),
            );
            tokio::time::sleep(self.pause).await;
        }
        // Leave the file as the scenario found it.
        if self.edits % 2 == 1 {
            match &self.editor {
                Editor::MeshFile { file, base_text } => file.write(base_text)?,
                Editor::Kubernetes { api } => {
                    api.apply(self.shape.slice(scenario.edited_service, false));
                }
            }
            tokio::time::sleep(self.pause).await;
        }
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        drop(channels);
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok((
            EditResults {
                name: scenario.name.to_string(),
                streams: self.streams,
                receivers_per_edit,
                edits: self.edits,
                latency: Summary::of(&latencies),
                first: Summary::of(&firsts),
                spread: Summary::of(&spreads),
                reload: Summary::of(&reloads),
                misses,
                unexpected,
            },
            rss_kib,
        ))
    }

    /// The gRPC connections the streams share.
    async fn connect(&self) -> anyhow::Result<Vec<Channel>> {
        let endpoint = Endpoint::from_shared(format!("http://{}", self.destination_addr))?
            .connect_timeout(Duration::from_secs(5));
        let mut channels = Vec::with_capacity(self.connections);
        for _ in 0..self.connections {
            channels.push(
                endpoint
                    .connect()
                    .await
                    .context("connecting to the controller")?,
            );
        }
        Ok(channels)
    }
}

/// One `Get` stream: reports readiness after the first update (the current
/// set), then every later update with the time it arrived.
async fn watch_stream(
    channel: Channel,
    path: String,
    stream: usize,
    updates: mpsc::UnboundedSender<Received>,
    ready: mpsc::Sender<anyhow::Result<()>>,
) {
    let mut client = DestinationClient::new(channel);
    let request = GetDestination {
        scheme: "k8s".into(),
        path,
        context_token: r#"{"ns":"bench","nodeName":"bench","pod":"bench"}"#.into(),
    };
    let mut responses = match client.get(request).await {
        Ok(response) => response.into_inner(),
        Err(status) => {
            let _ = ready
                .send(Err(anyhow::anyhow!("Get refused: {status}")))
                .await;
            return;
        }
    };
    match responses.message().await {
        Ok(Some(_snapshot)) => {
            let _ = ready.send(Ok(())).await;
        }
        Ok(None) => return,
        Err(status) => {
            let _ = ready
                .send(Err(anyhow::anyhow!("Get failed: {status}")))
                .await;
            return;
        }
    }
    while let Ok(Some(update)) = responses.message().await {
        let at = Instant::now();
        let kind = match update {
            Update {
                update: Some(UpdateKind::Add(_)),
            } => Kind::Add,
            Update {
                update: Some(UpdateKind::Remove(_)),
            } => Kind::Remove,
            Update { .. } => Kind::Other,
        };
        if updates.send(Received { stream, at, kind }).is_err() {
            return;
        }
    }
}

/// The mesh file, replaced atomically (write a sibling, rename) as editors do.
struct MeshFile {
    path: PathBuf,
    staging: PathBuf,
}

impl MeshFile {
    fn new(dir: &Path) -> Self {
        Self {
            path: dir.join("mesh.yaml"),
            staging: dir.join(".mesh.yaml.tmp"),
        }
    }

    fn write(&self, text: &str) -> anyhow::Result<()> {
        std::fs::write(&self.staging, text)
            .with_context(|| format!("writing {}", self.staging.display()))?;
        std::fs::rename(&self.staging, &self.path)
            .with_context(|| format!("renaming to {}", self.path.display()))?;
        Ok(())
    }
}

/// The controller's last mesh-file load time, from `/ready`'s `last_load_ms`.
fn last_load_ms(admin: SocketAddr) -> anyhow::Result<f64> {
    let body = http_get_body(admin, "/ready")?;
    let ready: serde_json::Value = serde_json::from_str(&body).context("parsing /ready")?;
    ready["mesh_file"]["last_load_ms"]
        .as_f64()
        .context("/ready has no mesh_file.last_load_ms")
}

/// The body of a plain `GET path` (HTTP/1.1, `Connection: close`).
fn http_get_body(addr: SocketAddr, path: &str) -> anyhow::Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (_, body) = response
        .split_once("\r\n\r\n")
        .context("no end of headers")?;
    Ok(body.to_string())
}

/// `VmHWM` (peak resident set) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn default_controller() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("release/weft-controller")
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn utc_now(format: &str) -> String {
    std::process::Command::new("date")
        .args(["-u", format])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
