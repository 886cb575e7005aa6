//! `weft-demo`: the first thing to run. A small demo app behind a real
//! `weft-proxy` child process, with the curl commands to try printed.
//!
//! ```text
//! curl ──► proxy inbound  127.0.0.1:4143 ──────────────► demo app 127.0.0.1:APP
//! curl ──► proxy outbound 127.0.0.1:4140 (HTTP proxy) ──► demo app
//! curl ──► proxy admin    127.0.0.1:4191 /metrics /ready /config
//! ```
//!
//! Start-up order in [`run`]: bind the app, check the proxy ports, locate and
//! spawn the proxy, wait for its `/ready`, then print the banner and wait for
//! Ctrl-C / SIGTERM (or run `--check` and exit).

pub mod app;
pub mod cli;
pub mod proxy;
pub mod traffic;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::signal::unix::{SignalKind, signal};

use crate::cli::Options;
use crate::proxy::{Proxy, ProxyConfig};
use crate::traffic::{Endpoints, ProbeResult};

/// How long the proxy may take to answer `/ready` after it is spawned.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// How long the proxy may take to exit after SIGTERM (its grace period is 3s
/// unless `WEFT_PROXY_SHUTDOWN_GRACE_PERIOD` says otherwise).
const STOP_TIMEOUT: Duration = Duration::from_secs(35);

/// `--traffic` reports failing requests at most this often.
const TRAFFIC_REPORT_EVERY: Duration = Duration::from_secs(10);

/// Runs the demo until Ctrl-C / SIGTERM (or until `--check` is done).
pub async fn run(options: Options) -> anyhow::Result<()> {
    // 1. The demo app, on its own loopback port.
    let app = app::App::bind(options.app_port)
        .await
        .map_err(|error| port_error("app", "--app-port", options.app_port, &error))?;
    let app_addr = app.local_addr()?;

    // 2. The proxy's ports: all checked up front, every taken one reported.
    let endpoints = Endpoints {
        app: app_addr,
        inbound: loopback(options.inbound_port),
        outbound: loopback(options.outbound_port),
        admin: loopback(options.admin_port),
    };
    let endpoints = reserve_proxy_ports(endpoints)?;

    // 3. The proxy binary, next to ours unless told otherwise.
    let bin = proxy::locate(options.proxy_bin.clone())?;

    // 4. Serve the app, then start the proxy in front of it.
    let app_task = tokio::spawn(app.run());
    let config = ProxyConfig {
        bin,
        inbound: endpoints.inbound,
        outbound: endpoints.outbound,
        admin: endpoints.admin,
        forward_to: endpoints.app,
    };
    println!(
        "weft-demo: demo app on http://{app_addr}, starting {} ...",
        proxy::display_path(&config.bin)
    );
    let mut proxy = Proxy::spawn(&config)?;

    // 5. Wait until the proxy serves, then run the demo or the check.
    let outcome = match proxy.wait_ready(READY_TIMEOUT).await {
        Err(error) => Err(error),
        Ok(()) if options.check => check(&endpoints).await,
        Ok(()) => {
            print_banner(&endpoints, proxy.id(), options.traffic);
            wait_for_stop(&mut proxy, &endpoints, options.traffic).await
        }
    };

    // 6. Stop the proxy gracefully whatever happened.
    if proxy.is_running() {
        println!("weft-demo: stopping weft-proxy (SIGTERM) ...");
    }
    let stopped = proxy.stop(STOP_TIMEOUT).await;
    app_task.abort();
    match &stopped {
        Ok(status) => println!("weft-demo: weft-proxy exited ({status})"),
        Err(error) => eprintln!("weft-demo: {error:#}"),
    }
    outcome?;
    stopped.map(|_| ())
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// Checks that each proxy port is free (and picks one for port 0). Reports
/// every taken port at once, by name.
fn reserve_proxy_ports(endpoints: Endpoints) -> anyhow::Result<Endpoints> {
    let mut problems = Vec::new();
    let mut reserve = |name: &str, flag: &str, addr: SocketAddr| -> SocketAddr {
        // Bound and released right away: the proxy binds it a moment later.
        match std::net::TcpListener::bind(addr).and_then(|listener| listener.local_addr()) {
            Ok(bound) => bound,
            Err(error) => {
                problems.push(port_error(name, flag, addr.port(), &error).to_string());
                addr
            }
        }
    };
    let reserved = Endpoints {
        app: endpoints.app,
        inbound: reserve("proxy inbound", "--inbound-port", endpoints.inbound),
        outbound: reserve("proxy outbound", "--outbound-port", endpoints.outbound),
        admin: reserve("proxy admin", "--admin-port", endpoints.admin),
    };
    // The checks above are done; release the borrow of `problems`.
    if !problems.is_empty() {
        bail!("{}", problems.join("\n           "));
    }
    Ok(reserved)
}

fn port_error(name: &str, flag: &str, port: u16, error: &std::io::Error) -> anyhow::Error {
    if error.kind() == std::io::ErrorKind::AddrInUse {
        anyhow::anyhow!(
            "{name} port 127.0.0.1:{port} is already in use \
             (stop what uses it, or choose another with {flag} PORT; 0 = any free port)"
        )
    } else {
        anyhow::anyhow!("cannot bind the {name} port 127.0.0.1:{port}: {error}")
    }
}

fn print_banner(endpoints: &Endpoints, proxy_pid: Option<u32>, traffic: Option<Duration>) {
    let Endpoints {
        app,
        inbound,
        outbound,
        admin,
    } = endpoints;
    let pid = proxy_pid.map_or_else(String::new, |pid| format!(" (pid {pid})"));
    println!(
        "
weft demo is running
  demo app        http://{app}        /  /api/hello  /api/fail  POST /api/echo
  weft-proxy{pid}
    inbound       {inbound}  -> forwards every connection to the app
    outbound      {outbound}  -> HTTP proxy for the app's own calls
    admin         http://{admin}  /metrics /ready /live /config

Try it:
  # inbound: a peer calls the app through its sidecar
  curl -sS http://{inbound}/api/hello
  curl -sS -i http://{inbound}/api/fail

  # outbound: the app calls a service through its sidecar, as an HTTP proxy
  curl -sS -x http://{outbound} http://{app}/api/hello

  # HTTP/2 without TLS (h2c, prior knowledge), proxied as HTTP/2
  curl -sS --http2-prior-knowledge http://{inbound}/api/hello

  # what the proxy counted
  curl -sS http://{admin}/metrics | grep -E '^(request_total|response_total|tcp_open_total)'
  curl -sS http://{admin}/config
"
    );
    if let Some(every) = traffic {
        println!("Sending demo traffic every {every:?} (--traffic).");
    } else {
        println!("Tip: run with --traffic to have the demo send requests itself.");
    }
    println!("Press Ctrl-C to stop.\n");
}

/// Waits for Ctrl-C / SIGTERM, sending traffic meanwhile if asked. An exit
/// of the proxy on its own is an error.
async fn wait_for_stop(
    proxy: &mut Proxy,
    endpoints: &Endpoints,
    traffic: Option<Duration>,
) -> anyhow::Result<()> {
    let mut sigterm = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let traffic = async {
        match traffic {
            Some(every) => send_traffic(endpoints, every).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {
            println!();
            Ok(())
        }
        _ = sigterm.recv() => Ok(()),
        status = proxy.exited() => bail!("weft-proxy exited on its own ({}); its log is above", status?),
        () = traffic => Ok(()),
    }
}

/// Sends a round of requests every `every`, forever; reports failures.
async fn send_traffic(endpoints: &Endpoints, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    let mut last_report: Option<tokio::time::Instant> = None;
    let mut rounds: u64 = 0;
    loop {
        ticks.tick().await;
        rounds += 1;
        let failures: Vec<ProbeResult> = traffic::run_round(endpoints)
            .await
            .into_iter()
            .filter(|result| result.outcome.is_err())
            .collect();
        let quiet = last_report.is_some_and(|at| at.elapsed() < TRAFFIC_REPORT_EVERY);
        if failures.is_empty() || quiet {
            continue;
        }
        last_report = Some(tokio::time::Instant::now());
        for failure in failures {
            let why = failure.outcome.err().unwrap_or_default();
            eprintln!("weft-demo: traffic round {rounds}: {}: {why}", failure.name);
        }
    }
}

/// `--check`: one round through every path, then the metrics; all must pass.
async fn check(endpoints: &Endpoints) -> anyhow::Result<()> {
    let mut results = traffic::run_round(endpoints).await;
    results.extend(traffic::check_metrics(endpoints).await);
    let failed = results
        .iter()
        .filter(|result| result.outcome.is_err())
        .count();
    println!("weft-demo --check:");
    for result in &results {
        match &result.outcome {
            Ok(summary) => println!("  ok    {:<48} {}", result.name, one_line(summary)),
            Err(why) => println!("  FAIL  {:<48} {}", result.name, one_line(why)),
        }
    }
    if failed > 0 {
        bail!("{failed} of {} demo checks failed", results.len());
    }
    println!("weft-demo --check: all {} checks passed", results.len());
    Ok(())
}

fn one_line(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(160) {
        Some((cut, _)) => format!("{}...", &flat[..cut]),
        None => flat,
    }
}
