//! The benchmark run, wired in order: plan → tools → backend → setups (idle
//! memory) → warm-up and smoke test → interleaved measured runs (proxy CPU
//! read around each) → memory with 200 open connections → report.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::cli::{EntryArg, RunArgs};
use crate::connections;
use crate::generators::Generators;
use crate::handshakes::{self, HandshakeRun};
use crate::load::{LoadPoint, LoadSpec, Workload};
use crate::oha;
use crate::others::OtherProxy;
use crate::plan::{self, Profile, Step};
use crate::process::{Managed, Placement, SpawnSpec, free_port};
use crate::procfs;
use crate::report::{self, Failure, Memory, Meta, Sample};
use crate::setups::{self, Lab, Setup, SetupKind, TwoHopEntry};

/// Client connections held open for the memory measurement.
const HELD_CONNECTIONS: usize = 200;

/// Runs the benchmark described by `args` and writes its report.
pub fn run(args: RunArgs) -> anyhow::Result<()> {
    // 1. The plan: profile, setups, workloads, schedule.
    let profile = profile(&args);
    let kinds = setup_kinds(&args)?;
    let workloads = args
        .workloads
        .iter()
        .map(|w| Workload::parse(w).with_context(|| format!("unknown workload {w:?}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let placement = |cpus: &str| Placement {
        cpus: (!args.no_pin).then(|| cpus.to_string()),
        nice: (args.nice != 0).then_some(args.nice),
        user: None,
    };
    let client_placement = placement(&args.client_cpus);

    // 2. Tools: the proxy and controller binaries, oha, and this executable
    //    for helpers.
    let me = std::env::current_exe().context("locating weft-bench itself")?;
    let proxy_bin = args
        .proxy_bin
        .clone()
        .unwrap_or_else(|| me.with_file_name("weft-proxy"));
    let controller_bin = args
        .controller_bin
        .clone()
        .unwrap_or_else(|| me.with_file_name("weft-controller"));
    let oha = oha::locate(!args.no_install_oha)?;
    let generators = Generators {
        oha,
        me: me.clone(),
        placement: client_placement.clone(),
    };

    // 3. Where results and logs go.
    let started = utc_now("+%Y-%m-%d %H:%M:%S UTC");
    let load_at_start = load_average();
    let run_dir = args.out_dir.join(utc_now("+%Y%m%dT%H%M%SZ"));
    std::fs::create_dir_all(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;

    // 4. The backend, pinned with the load generators; its port also on
    //    the loopback addresses the transparent setups intercept.
    let backend_addr = free_port()?;
    let backend_addrs: Vec<SocketAddr> = std::iter::once(backend_addr)
        .chain(kinds.iter().filter_map(|kind| {
            let address = kind.intercepted_address()?;
            Some(SocketAddr::new(address.into(), backend_addr.port()))
        }))
        .collect();
    let backend_args: Vec<String> = std::iter::once("backend".to_string())
        .chain(
            backend_addrs
                .iter()
                .flat_map(|addr| ["--listen".to_string(), addr.to_string()]),
        )
        .collect();
    let mut backend = Managed::spawn(SpawnSpec {
        name: "backend",
        program: &me,
        args: &backend_args,
        envs: &[],
        placement: &client_placement,
        log: &run_dir.join("backend.log"),
    })?;
    for addr in &backend_addrs {
        backend.wait_listening(*addr, Duration::from_secs(10))?;
    }

    // 5. Every setup, all running for the whole benchmark; idle memory
    //    before any traffic. weft-discovery's controller answers each target
    //    once, then idles: it runs with the load generators, off the
    //    proxies' CPUs.
    let lab = Lab {
        backend: backend_addr,
        proxy_bin: proxy_bin.clone(),
        proxy_placement: placement(&args.proxy_cpus),
        controller_bin,
        controller_placement: client_placement.clone(),
        workdir: run_dir.clone(),
        install_others: args.install_others,
    };
    let mut failures = Vec::new();
    let mut running: Vec<Setup> = Vec::new();
    for kind in &kinds {
        eprintln!("weft-bench: starting {}", kind.name());
        match setups::start(&lab, kind) {
            Ok(setup) => running.push(setup),
            Err(error) => failures.push(Failure {
                setup: kind.name(),
                workload: None,
                message: format!("did not start: {error:#}"),
            }),
        }
    }
    if running.is_empty() {
        bail!("no setup started: {failures:?}");
    }
    std::thread::sleep(Duration::from_millis(300));
    let mut memory = idle_memory(&running);

    // 6. Warm-up, which is also the smoke test: a (setup, workload) that
    //    fails here is reported and left out.
    let bench = Bench {
        generators: &generators,
        profile,
        open_loop_slots: args.open_loop_slots,
        new_connections: args.new_connections,
        pre_run: args.pre_run,
    };
    let broken = bench.smoke_test(&running, &workloads, &mut failures);

    // 7. The measured runs, interleaved; a setup that does not serve a
    //    workload (the nginx chains serve HTTP/1.1 only) has no runs of it,
    //    and its cells stay empty in the report.
    let steps: Vec<Step> = plan::schedule(
        profile.repeats,
        &workloads,
        &plan::load_points_of(&args.concurrencies.0, &args.rates.0),
        running.len(),
    )
    .into_iter()
    .filter(|step| running[step.setup].target(step.workload).is_some())
    .collect();
    eprintln!(
        "weft-bench: {} runs of {:?}, about {} s",
        steps.len(),
        profile.duration,
        (plan::estimate(&profile, steps.len(), 0) + args.pre_run * steps.len() as u32).as_secs()
    );
    let mut samples = Vec::new();
    let mut dead: BTreeSet<usize> = BTreeSet::new();
    for (n, step) in steps.iter().enumerate() {
        if broken.contains(&(step.setup, step.workload)) || dead.contains(&step.setup) {
            continue;
        }
        let setup = &mut running[step.setup];
        if let Err(error) = setup.check_alive() {
            failures.push(Failure {
                setup: setup.name.clone(),
                workload: Some(step.workload),
                message: format!("{error:#}"),
            });
            dead.insert(step.setup);
            continue;
        }
        eprint!("[{}/{}] ", n + 1, steps.len());
        match bench.measure(setup, step) {
            Ok(sample) => samples.push(sample),
            Err(failure) => failures.push(failure),
        }
    }

    // 8. weft-mtls-2hop: the connections A opened toward B during all the
    //    runs, then what new TLS connections cost B.
    let mut mtls_connections = None;
    let mut handshakes = None;
    for setup in running.iter_mut() {
        if setup.check_alive().is_err() {
            continue;
        }
        if let Some(counts) = setup.mtls_connections() {
            match counts {
                Ok(counts) => mtls_connections = Some(counts),
                Err(error) => failures.push(Failure {
                    setup: setup.name.clone(),
                    workload: None,
                    message: format!("reading proxy A's connections: {error:#}"),
                }),
            }
        }
        let Some(server) = setup.mtls_server().filter(|_| args.handshakes > 0) else {
            continue;
        };
        eprintln!(
            "weft-bench: {}: {} TLS handshakes with proxy B",
            setup.name, args.handshakes
        );
        let run = HandshakeRun {
            addr: server.inbound,
            server_name: Some(server.identity),
            trust_anchors: Some(server.trust_anchors),
            count: args.handshakes,
        };
        match handshakes::measure(&me, &client_placement, server.pid, &run) {
            Ok(cost) => handshakes = Some(cost),
            Err(error) => failures.push(Failure {
                setup: setup.name.clone(),
                workload: None,
                message: format!("handshake measurement: {error:#}"),
            }),
        }
    }

    // 9. Memory after load, then with 200 open connections.
    measure_loaded_memory(&mut running, &mut memory, &mut failures);

    // 10. The report.
    let meta = Meta {
        started,
        profile: format!(
            "{} ({} repeats × {:?} per run)",
            profile.name, profile.repeats, profile.duration
        ),
        setups: running.iter().map(|s| s.name.clone()).collect(),
        notes: notes(&args, &kinds, &generators, &proxy_bin, &load_at_start),
    };
    drop(running);
    drop(backend);
    let mut report = report::build(meta, samples, memory, failures);
    report.mtls_connections = mtls_connections;
    report.handshakes = handshakes;
    write_report(&report, &run_dir, &args.out_dir)?;
    Ok(())
}

fn profile(args: &RunArgs) -> Profile {
    let mut profile = if args.quick {
        Profile::QUICK
    } else {
        Profile::FULL
    };
    if args.repeats.is_some() || args.duration.is_some() {
        profile.name = "custom";
    }
    profile.repeats = args.repeats.unwrap_or(profile.repeats).max(1);
    profile.duration = args.duration.unwrap_or(profile.duration);
    profile
}

fn setup_kinds(args: &RunArgs) -> anyhow::Result<Vec<SetupKind>> {
    let entry = match args.two_hop_entry {
        EntryArg::Outbound => TwoHopEntry::Outbound,
        EntryArg::Inbound => TwoHopEntry::Inbound,
    };
    let mut kinds = Vec::new();
    for name in &args.setups {
        kinds.push(match name.as_str() {
            "direct" => SetupKind::Direct,
            "weft-1hop" => SetupKind::WeftOneHop,
            "weft-2hop" => SetupKind::WeftTwoHop(entry),
            "weft-outbound" => SetupKind::WeftOutbound,
            "weft-discovery" => SetupKind::WeftDiscovery,
            "weft-discovery-2hop" => SetupKind::WeftDiscoveryTwoHop,
            "weft-mtls-2hop" => SetupKind::WeftMtlsTwoHop,
            "weft-mtls-h1-2hop" => SetupKind::WeftMtlsHttp1TwoHop,
            "weft-mtls-h2-2hop" => SetupKind::WeftMtlsHttp2TwoHop,
            "weft-transparent" => SetupKind::WeftTransparent,
            _ => bail!(
                "unknown setup {name:?} (direct, weft-1hop, weft-2hop, weft-outbound, \
                 weft-discovery, weft-discovery-2hop, weft-mtls-2hop, weft-mtls-h1-2hop, \
                 weft-mtls-h2-2hop, weft-transparent; others with --other)"
            ),
        });
    }
    let mut add = |added: &[SetupKind]| {
        for kind in added {
            let present = kinds.iter().any(|k| k.name() == kind.name());
            if !present {
                kinds.push(kind.clone());
            }
        }
    };
    if args.discovery {
        add(&[SetupKind::WeftOutbound, SetupKind::WeftDiscovery]);
    }
    if args.mtls {
        add(&[
            SetupKind::WeftTwoHop(entry),
            SetupKind::WeftDiscovery,
            SetupKind::WeftDiscoveryTwoHop,
            SetupKind::WeftMtlsTwoHop,
            SetupKind::WeftMtlsHttp1TwoHop,
            SetupKind::WeftMtlsHttp2TwoHop,
        ]);
    }
    let others = args
        .others
        .iter()
        .map(|other| OtherProxy::parse(other))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if others
        .iter()
        .any(|other| matches!(other, OtherProxy::Linkerd { .. }))
    {
        // The same transparent path through weft, to compare with.
        add(&[SetupKind::WeftTransparent]);
    }
    kinds.extend(others.into_iter().map(SetupKind::Other));
    Ok(kinds)
}

/// What every measured run shares.
struct Bench<'a> {
    generators: &'a Generators,
    profile: Profile,
    open_loop_slots: u32,
    new_connections: bool,
    pre_run: Duration,
}

impl Bench<'_> {
    /// Warm-up runs (closed loop, c=10) of every (setup, workload); returns
    /// those that failed more than 1% of their requests.
    fn smoke_test(
        &self,
        running: &[Setup],
        workloads: &[Workload],
        failures: &mut Vec<Failure>,
    ) -> BTreeSet<(usize, Workload)> {
        let mut broken = BTreeSet::new();
        for (index, setup) in running.iter().enumerate() {
            let mut requests_ok = 0;
            for &workload in workloads {
                let Some(target) = setup.target(workload) else {
                    eprintln!(
                        "weft-bench: {} does not serve {workload}: its cells stay empty",
                        setup.name
                    );
                    continue;
                };
                let spec = LoadSpec {
                    workload,
                    point: LoadPoint::Closed { concurrency: 10 },
                    target: target.clone(),
                    duration: self.profile.warmup,
                    open_loop_slots: self.open_loop_slots,
                    new_connections: self.new_connections,
                };
                let outcome = self.generators.run(&spec);
                if let Ok(result) = &outcome {
                    requests_ok += result.ok;
                }
                let message = match outcome {
                    // A stray error (a connection cut at the deadline) is
                    // reported with the runs; only a path that mostly fails
                    // is left out.
                    Ok(result) if result.ok > 0 && result.errors * 100 <= result.ok => continue,
                    Ok(result) => format!(
                        "smoke test: {} ok, {} failed; e.g. {}",
                        result.ok,
                        result.errors,
                        result.error_sample.unwrap_or_default()
                    ),
                    Err(error) => format!("smoke test: {error:#}"),
                };
                eprintln!("weft-bench: {} {workload}: {message}", setup.name);
                broken.insert((index, workload));
                failures.push(Failure {
                    setup: setup.name.clone(),
                    workload: Some(workload),
                    message,
                });
            }
            // Requests that succeeded by another path than the setup's own
            // would measure the wrong thing: leave the whole setup out.
            if let Err(error) = setup.verify_smoke(requests_ok) {
                eprintln!("weft-bench: {}: WRONG PATH: {error:#}", setup.name);
                broken.extend(workloads.iter().map(|&w| (index, w)));
                failures.push(Failure {
                    setup: setup.name.clone(),
                    workload: None,
                    message: format!("smoke test: {error:#}"),
                });
            }
        }
        broken
    }

    /// One measured run, with the proxies' CPU time read around it.
    fn measure(&self, setup: &Setup, step: &Step) -> Result<Sample, Failure> {
        let target = setup.target(step.workload).ok_or_else(|| Failure {
            setup: setup.name.clone(),
            workload: Some(step.workload),
            message: format!("{}: not served by this setup", step.point),
        })?;
        let spec = LoadSpec {
            workload: step.workload,
            point: step.point,
            target: target.clone(),
            duration: self.profile.duration,
            open_loop_slots: self.open_loop_slots,
            new_connections: self.new_connections,
        };
        if !self.pre_run.is_zero() {
            // Not recorded: it only reopens what idled out between turns.
            let _ = self.generators.run(&LoadSpec {
                duration: self.pre_run,
                ..spec.clone()
            });
        }
        let before = cpu_ticks(setup);
        let outcome = self.generators.run(&spec);
        let after = cpu_ticks(setup);
        let result = outcome.map_err(|error| {
            eprintln!("{} {} {}: {error:#}", setup.name, step.workload, step.point);
            Failure {
                setup: setup.name.clone(),
                workload: Some(step.workload),
                message: format!("{}: {error:#}", step.point),
            }
        })?;
        let errors = match result.errors {
            0 => String::new(),
            n => format!(
                ", {n} errors ({})",
                result.error_sample.as_deref().unwrap_or("")
            ),
        };
        eprintln!(
            "{} {} {}: {:.0} rps, p99 {:.3} ms{errors}",
            step.workload,
            step.point,
            setup.name,
            result.throughput(),
            result.latency.p99_ms,
        );
        let proxy_cpu_ticks = after
            .iter()
            .map(|(role, ticks)| {
                let start = before.get(role).copied().unwrap_or(0);
                (role.clone(), ticks.saturating_sub(start))
            })
            .collect();
        Ok(Sample {
            repeat: step.repeat,
            setup: setup.name.clone(),
            workload: step.workload,
            point: step.point,
            result,
            proxy_cpu_ticks,
        })
    }
}

fn cpu_ticks(setup: &Setup) -> BTreeMap<String, u64> {
    setup
        .proxies
        .iter()
        .map(|p| {
            let tree = procfs::process_tree(p.pid);
            (p.role.clone(), procfs::tree_cpu_ticks(&tree))
        })
        .collect()
}

fn idle_memory(running: &[Setup]) -> Vec<Memory> {
    running
        .iter()
        .flat_map(|setup| {
            setup.proxies.iter().map(|p| Memory {
                setup: setup.name.clone(),
                role: p.role.clone(),
                idle_kib: procfs::tree_rss_kib(&procfs::process_tree(p.pid)),
                conns_200_kib: None,
                after_load_kib: None,
            })
        })
        .collect()
}

fn measure_loaded_memory(
    running: &mut [Setup],
    memory: &mut [Memory],
    failures: &mut Vec<Failure>,
) {
    let rss = |pid| procfs::tree_rss_kib(&procfs::process_tree(pid));
    for setup in running.iter_mut() {
        if setup.proxies.is_empty() || setup.check_alive().is_err() {
            continue;
        }
        for proxy in &setup.proxies {
            if let Some(m) = memory.iter_mut().find(|m| m.role == proxy.role) {
                m.after_load_kib = Some(rss(proxy.pid));
            }
        }
        let Some(target) = setup.target(Workload::Http1) else {
            continue;
        };
        match connections::open_idle(target, HELD_CONNECTIONS) {
            Ok(held) => {
                std::thread::sleep(Duration::from_millis(300));
                for proxy in &setup.proxies {
                    if let Some(m) = memory.iter_mut().find(|m| m.role == proxy.role) {
                        m.conns_200_kib = Some(rss(proxy.pid));
                    }
                }
                drop(held);
            }
            Err(error) => failures.push(Failure {
                setup: setup.name.clone(),
                workload: Some(Workload::Http1),
                message: format!("holding {HELD_CONNECTIONS} connections: {error:#}"),
            }),
        }
    }
}

fn notes(
    args: &RunArgs,
    kinds: &[SetupKind],
    generators: &Generators,
    proxy_bin: &Path,
    load_at_start: &str,
) -> Vec<String> {
    let entry = match args.two_hop_entry {
        EntryArg::Outbound => {
            "weft-2hop = client → proxy A outbound listener as explicit HTTP proxy \
             (HTTP/1.1 absolute-form; HTTP/2 and gRPC with :authority = proxy B) → \
             proxy B inbound (FORWARD_ADDR) → backend"
        }
        EntryArg::Inbound => {
            "weft-2hop = client → proxy A inbound → proxy B inbound → backend (FORWARD_ADDR chain)"
        }
    };
    let pinning = if args.no_pin {
        "no CPU pinning".to_string()
    } else {
        format!(
            "proxies pinned to CPU {}, load generators and backend to CPU {} (taskset)",
            args.proxy_cpus, args.client_cpus
        )
    };
    let mut notes: Vec<String> = Vec::new();
    if kinds.contains(&SetupKind::WeftOneHop) {
        notes.push(
            "weft-1hop = client → proxy inbound listener (WEFT_PROXY_INBOUND_FORWARD_ADDR) → \
             backend"
                .into(),
        );
    }
    if kinds
        .iter()
        .any(|kind| matches!(kind, SetupKind::WeftTwoHop(_)))
    {
        notes.push(entry.into());
    }
    if kinds.contains(&SetupKind::WeftOutbound) {
        notes.push(
            "weft-outbound = client → proxy outbound listener as explicit HTTP proxy \
             (HTTP/1.1 absolute-form; HTTP/2 and gRPC with :authority = backend ip:port) → \
             backend; no discovery"
                .into(),
        );
    }
    if kinds.contains(&SetupKind::WeftDiscovery) {
        notes.push(format!(
            "weft-discovery = weft-outbound's proxy plus WEFT_PROXY_DESTINATION_SVC_ADDR: \
             requests name {} (HTTP/1.1 absolute-form, HTTP/2 and gRPC :authority), \
             resolved by GetProfile/Get at a weft-controller (mesh file: Service web.bench \
             → one Workload, the backend) and balanced by P2C over peak-EWMA; the \
             controller runs beside the load generators and is not measured; the smoke \
             test checks that every request was counted with dst_service=\"{}\"",
            crate::discovery::AUTHORITY,
            crate::discovery::SERVICE
        ));
    }
    if kinds.contains(&SetupKind::WeftDiscoveryTwoHop) {
        notes.push(format!(
            "weft-discovery-2hop = client → proxy A outbound (explicit HTTP proxy, requests \
             name {}) → discovery at a weft-controller without identity, whose Service web \
             selects one unmeshed Workload at proxy B's inbound listener → plaintext HTTP/1.1 \
             (A's connection pool) → proxy B inbound (FORWARD_ADDR) → backend: weft-2hop plus \
             discovery",
            crate::discovery::AUTHORITY
        ));
    }
    if kinds.contains(&SetupKind::WeftMtlsTwoHop) {
        notes.push(format!(
            "weft-mtls-2hop = the same two proxies with identity: a weft-controller with \
             --identity-* (fresh `identity init` per run, token files per meshed Workload) \
             issues both certificates (A = {}, B = {}); Service web selects the meshed \
             Workload web-1 (the backend, proxy.inboundPort = B's inbound port), so A sends \
             every request over mutual TLS to B with the transport header: an HTTP/1.1 \
             request on A's one HTTP/1.1 connection to B while it is free, else upgraded \
             (l5d-orig-proto) on the one HTTP/2 connection; B terminates TLS and \
             forwards plain HTTP to the backend; the smoke test checks that every request A \
             sent has tls=\"true\" and server_id=\"{}\", and every request B received has \
             client_id=\"{}\". weft-mtls-2hop − weft-discovery-2hop is what mTLS costs",
            crate::discovery::identity_of(crate::discovery::CLIENT_WORKLOAD),
            crate::discovery::identity_of(crate::discovery::SERVER_WORKLOAD),
            crate::discovery::identity_of(crate::discovery::SERVER_WORKLOAD),
            crate::discovery::identity_of(crate::discovery::CLIENT_WORKLOAD),
        ));
    }
    if kinds.contains(&SetupKind::WeftMtlsHttp1TwoHop) {
        notes.push(
            "weft-mtls-h1-2hop = weft-mtls-2hop with the controller's --disable-h2-upgrade: \
             mutual TLS and the transport header, but HTTP/1.1 between the proxies (A's pool \
             of TLS connections), so weft-mtls-h1-2hop − weft-discovery-2hop is what TLS \
             alone costs, and weft-mtls-2hop − weft-mtls-h1-2hop what the HTTP/2 upgrade does"
                .into(),
        );
    }
    if kinds.contains(&SetupKind::WeftMtlsHttp2TwoHop) {
        notes.push(
            "weft-mtls-h2-2hop = weft-mtls-2hop with WEFT_PROXY_MESHED_HTTP1_CONNECTIONS=0 on \
             A: every HTTP/1.1 request upgraded to HTTP/2 on the one mutual-TLS connection, \
             as Linkerd does; weft-mtls-h2-2hop − weft-mtls-2hop is what always upgrading \
             costs"
                .into(),
        );
    }
    if kinds.contains(&SetupKind::WeftTransparent) {
        notes.push(format!(
            "weft-transparent = client → 127.0.0.2:<backend port> → iptables nat OUTPUT REDIRECT \
             (chain WEFT_BENCH_<pid>_2, UID {uid} exempt) → weft-proxy inbound (no \
             WEFT_PROXY_INBOUND_FORWARD_ADDR, run as UID {uid}; SO_ORIGINAL_DST) → backend on \
             127.0.0.2:<same port>; the start check counts exactly its 20 requests as \
             request_total{{direction=\"inbound\"}} (none: bypassed; more: a loop), the smoke \
             test at least its successful requests",
            uid = crate::interception::PROXY_UID
        ));
    }
    if kinds
        .iter()
        .any(|kind| matches!(kind, SetupKind::Other(OtherProxy::Linkerd { .. })))
    {
        notes.push(format!(
            "linkerd = weft-transparent's path and checks through linkerd2-proxy (127.0.0.3, \
             chain WEFT_BENCH_<pid>_3, UID {}), configured by LINKERD2_PROXY_* (one core, \
             default policy all-unauthenticated); its Destination, policy and Identity are a \
             weft-controller with identity (Workload web-1 = the backend, meshed); key.p8 and \
             csr.der made with openssl, the token from the controller's token files",
            crate::interception::PROXY_UID
        ));
    }
    let chains = [
        (
            OtherProxy::NginxTwoHop,
            "nginx-2hop = client → nginx A → plaintext HTTP/1.1 (keep-alive pool) → nginx B → \
             backend",
        ),
        (
            OtherProxy::NginxMtlsTwoHop,
            "nginx-mtls-2hop = client → nginx A → mutual TLS 1.3 (ECDSA P-256 certificates from \
             one CA made with the openssl command line; A verifies B's name, B requires A's \
             certificate; keep-alive pool of TLS connections, session reuse) → nginx B → backend",
        ),
    ];
    for (chain, description) in chains {
        if kinds.contains(&SetupKind::Other(chain)) {
            notes.push(format!(
                "{description}; two nginx processes (worker_processes 1 each) on the proxy CPU, \
                 both measured; HTTP/1.1 only (other workloads –): the floor a mature C proxy \
                 sets on this machine for the weft two-hop setups"
            ));
        }
    }
    notes.extend([
        format!(
            "{pinning}; nice {} for all of them; one-worker proxies (WEFT_PROXY_CORES=1)",
            args.nice
        ),
        format!(
            "load average (1/5/15 min) at start {load_at_start}, at end {}: \
             other work on the machine adds noise to the tails",
            load_average()
        ),
        generators.describe(),
        if args.new_connections {
            "--new-connections: every HTTP/1.1 request on a new client connection \
             (oha --disable-keepalive); the proxies still pool and reuse their own \
             connections onward"
                .to_string()
        } else {
            "HTTP/1.1 clients keep their connections alive".to_string()
        },
        format!(
            "open loop: {} slots, latency from the scheduled send time (oha --latency-correction)",
            args.open_loop_slots
        ),
        format!("proxy binary: {}", proxy_bin.display()),
    ]);
    notes
}

fn write_report(report: &report::Report, run_dir: &Path, out_dir: &Path) -> anyhow::Result<()> {
    let markdown = report.markdown();
    let json = serde_json::to_string_pretty(report)?;
    for dir in [run_dir, out_dir] {
        let (md_name, json_name) = if dir == run_dir {
            ("report.md", "report.json")
        } else {
            ("latest.md", "latest.json")
        };
        std::fs::write(dir.join(md_name), &markdown)?;
        std::fs::write(dir.join(json_name), &json)?;
    }
    println!("{markdown}");
    eprintln!(
        "weft-bench: wrote {} and {}",
        run_dir.join("report.md").display(),
        run_dir.join("report.json").display()
    );
    Ok(())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn utc_now(format: &str) -> String {
    Command::new("date")
        .args(["-u", format])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    fn kinds(args: &[&str]) -> Vec<String> {
        let cli = Cli::try_parse_from([&["weft-bench"], args].concat()).unwrap();
        setup_kinds(&cli.run)
            .unwrap()
            .iter()
            .map(SetupKind::name)
            .collect()
    }

    #[test]
    fn discovery_adds_both_setups_once() {
        assert_eq!(
            kinds(&["--discovery"]),
            [
                "direct",
                "weft-1hop",
                "weft-2hop",
                "weft-outbound",
                "weft-discovery"
            ]
        );
        assert_eq!(
            kinds(&["--setups", "direct,weft-discovery", "--discovery"]),
            ["direct", "weft-discovery", "weft-outbound"]
        );
        assert_eq!(
            kinds(&["--setups", "weft-outbound,weft-discovery"]),
            ["weft-outbound", "weft-discovery"]
        );
    }

    #[test]
    fn transparent_setups_run_only_when_asked_for() {
        assert!(!kinds(&[]).contains(&"weft-transparent".to_string()));
        assert_eq!(
            kinds(&["--setups", "direct,weft-1hop,weft-transparent"]),
            ["direct", "weft-1hop", "weft-transparent"]
        );
        // linkerd brings the same path through weft, once.
        assert_eq!(
            kinds(&["--setups", "direct", "--other", "linkerd=/bin/sh"]),
            ["direct", "weft-transparent", "linkerd"]
        );
        assert_eq!(
            kinds(&["--setups", "weft-transparent", "--other", "linkerd=/bin/sh"]),
            ["weft-transparent", "linkerd"]
        );
        let cli = Cli::try_parse_from(["weft-bench", "--other", "linkerd=/nonexistent"]).unwrap();
        let error = format!("{:#}", setup_kinds(&cli.run).unwrap_err());
        assert!(error.contains("/nonexistent does not exist"), "{error}");
    }

    #[test]
    fn mtls_adds_its_comparisons_once() {
        assert_eq!(
            kinds(&["--mtls"]),
            [
                "direct",
                "weft-1hop",
                "weft-2hop",
                "weft-discovery",
                "weft-discovery-2hop",
                "weft-mtls-2hop",
                "weft-mtls-h1-2hop",
                "weft-mtls-h2-2hop"
            ]
        );
        assert_eq!(
            kinds(&["--setups", "direct", "--mtls", "--discovery"]),
            [
                "direct",
                "weft-outbound",
                "weft-discovery",
                "weft-2hop",
                "weft-discovery-2hop",
                "weft-mtls-2hop",
                "weft-mtls-h1-2hop",
                "weft-mtls-h2-2hop"
            ]
        );
    }
}
