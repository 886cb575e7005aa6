//! `weft demo`: `weft up` with a built-in mesh file ([`MESH_TEMPLATE`]):
//! a web front end calling books (HTTP/1.1, two versions under a
//! TrafficSplit) and authors (gRPC, failing a share of calls), and a
//! traffic generator calling web. The apps are `weft-demo` subcommands.
//!
//! `--check` brings it up, waits until every service's proxy has answered
//! requests and the controller's `/api/stat` shows web's traffic, prints
//! the counts and stops (the test script's smoke test).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::bail;

use crate::global_options::GlobalOptions;
use crate::state;
use crate::up::{self, ControllerArgs, Started, UpOptions};

/// The demo mesh file, with `{{P+N}}` for port base + N and the knobs below.
pub const MESH_TEMPLATE: &str = include_str!("demo/mesh.yaml");

/// Workloads whose proxies must have answered requests for `--check`.
pub const CHECKED: &[&str] = &["web", "books-v1", "authors"];

/// `weft demo` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Every port the demo listens on is this plus a small offset: the
    /// controller takes base..base+3, the workloads base+10..base+54.
    #[arg(long, default_value_t = 7400, value_parser = clap::value_parser!(u16).range(1024..65_000))]
    pub port_base: u16,
    /// The share of the authors service's calls that fail (0 to 1).
    #[arg(long, default_value_t = 0.1, value_parser = failure_rate)]
    pub failure_rate: f64,
    /// The TrafficSplit's weights of books-v1 and books-v2.
    #[arg(long, default_value = "80,20", value_parser = split)]
    pub split: (u32, u32),
    /// The traffic generator's requests per second.
    #[arg(long, default_value_t = 10)]
    pub rps: u32,
    /// Start, wait until traffic shows in every service's proxy metrics,
    /// print it, stop and exit 0 (1 if it does not show).
    #[arg(long)]
    pub check: bool,
    /// How long `--check` waits for traffic.
    #[arg(long, default_value = "120", value_name = "SECONDS")]
    pub check_timeout: u64,
}

/// The knobs the template is rendered with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DemoSettings {
    /// The port base.
    pub port_base: u16,
    /// The authors failure share.
    pub failure_rate: f64,
    /// books-v1, books-v2 weights.
    pub split: (u32, u32),
    /// Traffic rate.
    pub rps: u32,
}

/// The demo mesh file.
pub fn render_mesh(settings: &DemoSettings) -> String {
    let mut text = String::with_capacity(MESH_TEMPLATE.len());
    let mut rest = MESH_TEMPLATE;
    while let Some(start) = rest.find("{{") {
        text.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else {
            break;
        };
        let token = &rest[start + 2..start + end];
        let value = match token {
            "V1_WEIGHT" => settings.split.0.to_string(),
            "V2_WEIGHT" => settings.split.1.to_string(),
            "FAILURE_RATE" => settings.failure_rate.to_string(),
            "FAILURE_PERCENT" => format!("{:.0}", settings.failure_rate * 100.0),
            "RPS" => settings.rps.to_string(),
            offset => {
                let offset: u16 = offset
                    .strip_prefix("P+")
                    .and_then(|number| number.parse().ok())
                    .expect("the template's placeholders are known");
                (settings.port_base + offset).to_string()
            }
        };
        text.push_str(&value);
        rest = &rest[start + end + 2..];
    }
    text.push_str(rest);
    text
}

/// The demo's controller listeners: base .. base+3.
pub fn controller_args(port_base: u16) -> ControllerArgs {
    let addr = |offset: u16| std::net::SocketAddr::from(([127, 0, 0, 1], port_base + offset));
    ControllerArgs {
        destination_addr: Some(addr(0)),
        identity_addr: Some(addr(1)),
        controller_admin_addr: Some(addr(2)),
        web_addr: Some(addr(3)),
        scrape_interval: "5s".to_string(),
    }
}

/// Runs `weft demo`.
pub async fn run(global: &GlobalOptions, args: Args) -> anyhow::Result<ExitCode> {
    let state_dir = state::state_dir(global);
    std::fs::create_dir_all(&state_dir)?;
    let mesh_file: PathBuf = state_dir.join("demo-mesh.yaml");
    let settings = DemoSettings {
        port_base: args.port_base,
        failure_rate: args.failure_rate,
        split: args.split,
        rps: args.rps,
    };
    std::fs::write(&mesh_file, render_mesh(&settings))?;
    let options = UpOptions {
        mesh_file,
        controller: controller_args(args.port_base),
        port_base: Some(args.port_base),
        state_dir,
        explicit_state_dir: global.state_dir.is_some(),
    };
    let mut signals = up::Signals::new()?;
    let running = match up::start(&options, &mut signals).await {
        Ok(Started::Running(running)) => *running,
        Ok(Started::Interrupted) => return Ok(ExitCode::SUCCESS),
        Err(error) => {
            if !args.check && error.to_string().contains("is taken") {
                bail!("{error:#}\n(or move the whole demo: weft demo --port-base PORT)");
            }
            return Err(error);
        }
    };
    let web_outbound = running
        .state
        .workloads
        .iter()
        .find(|workload| workload.name == "web")
        .map(|workload| workload.outbound.clone())
        .unwrap_or_default();
    if !args.check {
        running.print_summary(&[
            format!("curl -x http://{web_outbound} http://web.demo.svc.cluster.local/"),
            "weft demo --failure-rate 0.3 --split 50,50   (after Ctrl-C: more failures, an even split)"
                .to_string(),
        ]);
        signals.recv().await;
        running.stop().await;
        return Ok(ExitCode::SUCCESS);
    }
    let outcome = tokio::select! {
        outcome = check(&running, Duration::from_secs(args.check_timeout)) => outcome,
        () = signals.recv() => Err(anyhow::anyhow!("interrupted")),
    };
    running.stop().await;
    outcome.map(|()| ExitCode::SUCCESS)
}

/// Waits until every checked workload's proxy has answered inbound requests
/// and the controller's golden metrics show web's traffic.
async fn check(running: &up::Running, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    up::progress("waiting for traffic");
    loop {
        let mut counts = Vec::new();
        for workload in &running.state.workloads {
            let Ok(admin) = workload.admin.parse() else {
                continue;
            };
            let responses = match up::ready::get(admin, "/metrics").await {
                Ok((200, body)) => inbound_responses(&body),
                _ => 0.0,
            };
            counts.push((workload.name.clone(), responses));
        }
        let seen = |name: &str| {
            counts
                .iter()
                .any(|(workload, count)| workload == name && *count > 0.0)
        };
        // The controller's golden metrics show web's traffic too.
        let web_rps = api_stat(&running.state.controller.api).await;
        if CHECKED.iter().all(|name| seen(name)) && web_rps.is_some_and(|rps| rps > 0.0) {
            up::done("seen");
            println!("weft demo --check: inbound responses per workload:");
            for (name, count) in &counts {
                println!("  {name:<12} {count}");
            }
            if let Some(rps) = web_rps {
                println!("weft demo --check: the controller's /api/stat: web at {rps} rps");
            }
            println!("weft demo --check: ok");
            return Ok(());
        }
        if Instant::now() >= deadline {
            up::done("not seen");
            bail!(
                "no traffic through every service within {timeout:?}: {counts:?}; logs in {}",
                running.state.log_dir.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The sum of a proxy's inbound `response_total` samples (the text parsed
/// by the same Prometheus text parser the controller's scraper uses).
pub fn inbound_responses(metrics: &str) -> f64 {
    let (families, _) = prom_text_format_parser::parse_scrape(metrics);
    families
        .iter()
        .filter(|family| family.name == "response_total")
        .flat_map(|family| &family.samples)
        .filter(|sample| {
            sample
                .labels
                .iter()
                .any(|label| label.key == "direction" && label.value == "inbound")
        })
        .map(|sample| sample.value.value.as_f64())
        .filter(|value| !value.is_nan())
        .sum()
}

/// Web's requests per second by the controller's `/api/stat` (`None`: no
/// rate yet, or no answer).
async fn api_stat(api_url: &str) -> Option<f64> {
    let api = api_url.trim_start_matches("http://").parse().ok()?;
    match up::ready::get(api, "/api/stat?kind=workload&namespace=demo").await {
        Ok((200, body)) => api_rps(&body, "web"),
        _ => None,
    }
}

/// The `rps` of workload `name` in an `/api/stat` answer (`None` when not
/// there yet).
pub fn api_rps(body: &str, name: &str) -> Option<f64> {
    let answer: weft_api::StatResponse = serde_json::from_str(body).ok()?;
    answer.rows.iter().find(|row| row.name == name)?.rps
}

fn failure_rate(value: &str) -> Result<f64, String> {
    let rate: f64 = value
        .parse()
        .map_err(|_| format!("{value:?} is not a number"))?;
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!("{rate} is not between 0 and 1"))
    }
}

fn split(value: &str) -> Result<(u32, u32), String> {
    let parse = |part: &str| {
        part.trim()
            .parse::<u32>()
            .map_err(|_| format!("{part:?} is not a whole number"))
    };
    let (v1, v2) = value
        .split_once(',')
        .ok_or_else(|| format!("expected V1,V2 weights such as 80,20, got {value:?}"))?;
    let weights = (parse(v1)?, parse(v2)?);
    if weights == (0, 0) {
        return Err("at least one weight must be above 0".to_string());
    }
    Ok(weights)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_renders_into_a_plan() {
        let text = render_mesh(&DemoSettings {
            port_base: 9000,
            failure_rate: 0.25,
            split: (90, 10),
            rps: 5,
        });
        assert!(!text.contains("{{"), "{text}");
        assert!(text.contains("weight: 90}") && text.contains("weight: 10}"));
        assert!(text.contains("--failure-rate, '0.25'"));
        let workloads = up::plan::parse_workloads(&text).unwrap();
        let plan = up::plan::plan(
            &workloads,
            controller_args(9000).addrs(None),
            std::path::Path::new("/"),
        )
        .unwrap();
        let names: Vec<String> = plan
            .workloads
            .iter()
            .map(|workload| workload.key())
            .collect();
        assert_eq!(
            names,
            [
                "demo/web",
                "demo/books-v1",
                "demo/books-v2",
                "demo/authors",
                "demo/traffic"
            ]
        );
        let ports: Vec<u16> = plan.ports().iter().map(|claim| claim.addr.port()).collect();
        assert_eq!(ports.iter().min(), Some(&9000));
        assert_eq!(ports.iter().max(), Some(&9054));
    }

    #[test]
    fn flags() {
        for (input, expected) in [
            ("80,20", Ok((80, 20))),
            ("0, 100", Ok((0, 100))),
            ("0,0", Err(())),
            ("80", Err(())),
            ("a,b", Err(())),
        ] {
            assert_eq!(split(input).map_err(|_| ()), expected, "{input}");
        }
        assert!(failure_rate("0.5").is_ok() && failure_rate("2").is_err());
    }

    #[test]
    fn reads_rps_from_the_api() {
        let row = |name: &str, rps: Option<f64>| weft_api::StatRow {
            kind: weft_api::ResourceKind::Workload,
            namespace: "demo".into(),
            name: name.into(),
            meshed: Some(1),
            running: Some(1),
            success: 0,
            failure: 0,
            success_rate: None,
            rps,
            latency_ms: None,
            tcp_connections: None,
            read_bytes_per_sec: None,
            write_bytes_per_sec: None,
            authz_allowed: None,
            authz_denied: None,
        };
        let body = serde_json::to_string(&weft_api::StatResponse {
            window_seconds: 60,
            rows: vec![
                row("authors", Some(2.4)),
                row("web", None),
                row("books", Some(1.0)),
            ],
        })
        .unwrap();
        let body = body.as_str();
        for (name, expected) in [
            ("authors", Some(2.4)),
            ("web", None),
            ("books", Some(1.0)),
            ("x", None),
        ] {
            assert_eq!(api_rps(body, name), expected, "{name}");
        }
        assert_eq!(api_rps("not json", "web"), None);
    }

    #[test]
    fn counts_inbound_responses() {
        let metrics = "\
# TYPE response_total counter
response_total{direction=\"inbound\",status_code=\"200\"} 7
response_total{direction=\"inbound\",status_code=\"500\"} 2
response_total{direction=\"outbound\",status_code=\"200\"} 40
response_total_created{direction=\"inbound\"} 1700000000
request_total{direction=\"inbound\"} 9
";
        assert_eq!(inbound_responses(metrics), 9.0);
        assert_eq!(inbound_responses(""), 0.0);
    }
}
