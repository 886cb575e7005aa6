//! The controller's golden metrics end to end: real `weft-proxy` processes
//! in front of a backend that fails a known fraction, traffic through them,
//! and the controller's HTTP API answering from its own scrapes — or from a
//! real Prometheus (`/usr/bin/prometheus`) that discovers the proxies
//! through the controller's `/api/sd`.
//!
//! ```text
//! load ─► client proxy "load" (outbound) ══mTLS══► server proxy "web" (inbound) ─► backend (fails 1 in 5)
//!              ▲ /metrics                               ▲ /metrics
//!              └──────── weft-controller scrapes (1 s) ─┘    or   Prometheus ◄─ /api/sd
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use weft_test_support::{
    Behavior, ControllerProcess, HttpTestServer, MeshFile, ProxyProcess, free_port, load,
};

const NAMESPACE: &str = "shop";
const URL: &str = "http://web.shop.svc.cluster.local/bytes/700";
const WEB_IDENTITY: &str = "web.shop.serviceaccount.identity.weft.cluster.local";
const LOAD_IDENTITY: &str = "load.shop.serviceaccount.identity.weft.cluster.local";
/// The backend fails 1 request in 5.
const FAILURES: (u64, u64) = (1, 5);
pub(crate) const PROMETHEUS: &str = "/usr/bin/prometheus";

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A meshed Workload whose proxy's admin port is `admin_port`.
fn workload(name: &str, app_port: u16, inbound_port: u16, admin_port: u16) -> String {
    format!(
        "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata:\n  name: {name}\n  \
         namespace: {NAMESPACE}\n  labels: {{app: {name}}}\nspec:\n  serviceAccount: {name}\n  \
         addresses: [127.0.0.1]\n  ports:\n  - {{name: http, port: {app_port}}}\n  meshed: true\n  \
         proxy: {{inboundPort: {inbound_port}, adminPort: {admin_port}}}\n"
    )
}

/// The backend, the two proxies and the controller.
struct Mesh {
    controller: ControllerProcess,
    client: ProxyProcess,
    _server: ProxyProcess,
    backend: HttpTestServer,
}

impl Mesh {
    fn start(controller_args: &[&str]) -> Mesh {
        let backend = HttpTestServer::start_with(Behavior::new().fail(FAILURES.0, FAILURES.1));
        let server_inbound = free_port();
        let server_admin = free_port();
        let client_admin = free_port();
        let mesh = MeshFile::new()
            .service(NAMESPACE, "web", &[("app", "web")])
            .document(&workload(
                "web",
                backend.addr().port(),
                server_inbound,
                server_admin,
            ))
            .document(&workload("load", free_port(), free_port(), client_admin))
            .profile(
                NAMESPACE,
                "web",
                "  routes:\n  - name: GET /bytes/{n}\n    condition:\n      method: GET\n      \
                 pathRegex: /bytes/[0-9]+\n",
            )
            .render();
        let controller = ControllerProcess::start_with_identity_args(&mesh, controller_args);
        let identity = |builder: weft_test_support::ProxyBuilder, workload: &str, name: &str| {
            controller.proxy_identity(builder, NAMESPACE, workload, name)
        };
        let server = identity(
            ProxyProcess::builder()
                .inbound_addr(loopback(server_inbound))
                .inbound_forward(backend.addr())
                .admin_addr(loopback(server_admin)),
            "web",
            WEB_IDENTITY,
        )
        .spawn();
        let client = identity(
            ProxyProcess::builder()
                .admin_addr(loopback(client_admin))
                .env(
                    "WEFT_PROXY_DESTINATION_SVC_ADDR",
                    controller.destination_addr().to_string(),
                ),
            "load",
            LOAD_IDENTITY,
        )
        .spawn();
        Mesh {
            controller,
            client,
            _server: server,
            backend,
        }
    }

    /// Sends `total` requests through the client proxy (after one that
    /// waits for discovery); returns the measured success rate.
    fn traffic(&self, total: usize) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(10);
        while load::get(self.client.outbound_addr(), URL).status.is_none() {
            assert!(Instant::now() < deadline, "the mesh never answered {URL}");
            std::thread::sleep(Duration::from_millis(50));
        }
        // Successes and failures both, then a pause: a scrape sees every
        // series before the measured traffic (a counter's first sample is
        // where increase() starts counting, in Prometheus too).
        load::run(self.client.outbound_addr(), URL, 10, 1);
        std::thread::sleep(Duration::from_millis(2500));
        let report = load::run(self.client.outbound_addr(), URL, total, 4);
        println!(
            "traffic: {} requests ({:?}), success {:.3}, in {:?}; the backend saw {} and failed {}",
            report.total(),
            report.summary(),
            report.success_rate(),
            report.elapsed,
            self.backend.requests_seen(),
            self.backend.failures_answered()
        );
        report.success_rate()
    }

    fn api(&self, path: &str) -> Value {
        let response = self.controller.web_get(path).expect("GET the API");
        assert_eq!(response.status, 200, "GET {path}: {}", response.body);
        serde_json::from_str(&response.body)
            .unwrap_or_else(|error| panic!("{path}: {error}: {}", response.body))
    }

    /// Polls `path` until `ready` accepts its answer; panics after `timeout`.
    fn api_until(&self, path: &str, timeout: Duration, ready: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            // A backend that is not up yet answers 502: keep polling.
            let answer = match self.controller.web_get(path) {
                Ok(response) if response.status == 200 => {
                    serde_json::from_str(&response.body).expect("JSON")
                }
                Ok(response) => Value::String(response.body),
                Err(error) => Value::String(error.to_string()),
            };
            if ready(&answer) {
                return answer;
            }
            assert!(
                Instant::now() < deadline,
                "GET {path} never settled within {timeout:?}; last answer: {answer:#}\ncontroller log:\n{}",
                self.controller.log()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

fn row<'a>(answer: &'a Value, name: &str) -> Option<&'a Value> {
    answer["rows"]
        .as_array()?
        .iter()
        .find(|row| row["name"] == name)
}

fn requests(row: &Value) -> u64 {
    row["success"].as_u64().unwrap_or(0) + row["failure"].as_u64().unwrap_or(0)
}

/// What both backends must answer after the same traffic.
fn assert_golden_metrics(mesh: &Mesh, expected_rate: f64, total: u64, settle: Duration) {
    // Inbound: what the web workload served.
    let stat = mesh.api_until(
        "/api/stat?kind=workload&namespace=shop&window=1m",
        settle,
        |answer| row(answer, "web").is_some_and(|web| requests(web) as f64 >= total as f64 * 0.9),
    );
    let web = row(&stat, "web").unwrap();
    println!("stat web: {web}");
    let rate = web["success_rate"].as_f64().expect("a success rate");
    assert!(
        (rate - expected_rate).abs() < 0.06,
        "success rate {rate} far from the measured {expected_rate}: {web}"
    );
    assert!(web["rps"].as_f64().unwrap() > 0.0, "{web}");
    for quantile in ["p50", "p95", "p99"] {
        assert!(
            web["latency_ms"][quantile].as_f64().is_some(),
            "no {quantile}: {web}"
        );
    }
    assert_eq!(web["meshed"], 1, "{web}");
    assert!(web["tcp_connections"].as_u64().is_some(), "{web}");

    // Outbound: what load sent to the web service.
    // Its own wait: the source proxy is scraped at another moment than the
    // server's, and a counter needs two samples to show an increase.
    let to = mesh.api_until(
        "/api/stat?kind=workload&namespace=shop&to=service/shop/web&window=1m",
        settle,
        |answer| row(answer, "load").is_some_and(|load| requests(load) > 0),
    );
    let load = row(&to, "load").unwrap_or_else(|| panic!("no load row: {to}"));
    println!("stat load → service/shop/web: {load}");
    assert!(requests(load) > 0, "{load}");
    let load_rate = load["success_rate"].as_f64().unwrap();
    assert!((load_rate - expected_rate).abs() < 0.06, "{load}");

    // Edges: load → web over mutual TLS.
    let edges = mesh.api("/api/edges?kind=workload&namespace=shop&window=1m");
    println!("edges: {edges}");
    let edge = edges["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|edge| edge["src"]["name"] == "load" && edge["dst"]["name"] == "web")
        .unwrap_or_else(|| panic!("no load → web edge: {edges}"));
    assert_eq!(edge["secured"], true, "{edge}");
    assert_eq!(edge["server_id"], WEB_IDENTITY, "{edge}");
    assert_eq!(edge["client_id"], LOAD_IDENTITY, "{edge}");

    // Routes: the profile's route, as load sent it.
    let routes = mesh
        .api("/api/routes?kind=workload&namespace=shop&name=load&to=service/shop/web&window=1m");
    println!("routes: {routes}");
    let route = routes["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|route| route["route"] == "GET /bytes/{n}")
        .unwrap_or_else(|| panic!("no profile route: {routes}"));
    assert!(route["rps"].as_f64().unwrap() > 0.0, "{route}");
    assert!(
        (route["success_rate"].as_f64().unwrap() - expected_rate).abs() < 0.06,
        "{route}"
    );
    assert!(
        route["authority"]
            .as_str()
            .unwrap()
            .starts_with("web.shop.svc.cluster.local"),
        "{route}"
    );
}

#[test]
fn the_controller_scrapes_proxies_and_answers_golden_metrics() {
    let mesh = Mesh::start(&["--scrape-interval", "1s"]);
    let total = 300;
    let measured = mesh.traffic(total);
    assert!(
        (0.7..0.9).contains(&measured),
        "the backend fails 1 in 5: {measured}"
    );
    assert_golden_metrics(&mesh, measured, total as u64, Duration::from_secs(20));

    let version = mesh.api("/api/version");
    assert_eq!(version["metrics_source"], "scrape");
    let workloads = mesh.api("/api/workloads?namespace=shop");
    for workload in workloads["workloads"].as_array().unwrap() {
        assert_eq!(workload["scrape"]["up"], true, "{workload}");
        assert!(
            workload["cert_expiry_unix"].as_f64().is_some(),
            "{workload}"
        );
    }
    let identity = mesh.api("/api/identity");
    assert_eq!(identity["enabled"], true);
    assert_eq!(identity["issuer"]["issued_by_anchor"], true, "{identity}");
    let sd = mesh.api("/api/sd");
    assert_eq!(sd.as_array().unwrap().len(), 2, "{sd}");
    let bad = mesh
        .controller
        .web_get("/api/stat?kind=workload&window=1h")
        .unwrap();
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("\"error\""), "{}", bad.body);

    let scrapes = mesh
        .controller
        .metric("weft_controller_metrics_scrapes_total", &[("result", "ok")])
        .unwrap_or(0.0);
    let series = mesh
        .controller
        .metric("weft_controller_metrics_series", &[])
        .unwrap_or(0.0);
    let rss_kib = mesh.controller.pid().and_then(|pid| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse::<u64>().ok()
    });
    println!("controller: {scrapes} good scrapes, {series} series stored, RSS {rss_kib:?} KiB");
    assert!(scrapes >= 2.0 && series > 0.0);
}

/// A blocking `GET path` read to the end (`Connection: close`): the whole response.
/// In the controller's first minute a 1m window is mostly time it was not
/// scraping: RPS divides by the seconds its samples cover, so it matches
/// what the client itself measured (before: a fifth of it at 12 s).
#[test]
fn rps_in_the_controllers_first_minute_matches_the_clients_own_rate() {
    let mesh = Mesh::start(&["--scrape-interval", "1s"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while load::get(mesh.client.outbound_addr(), URL).status.is_none() {
        assert!(Instant::now() < deadline, "the mesh never answered {URL}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let load = load::BackgroundLoad::start(
        mesh.client.outbound_addr(),
        URL,
        2,
        Duration::from_millis(100),
    );
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(12));
    let stat = mesh.api("/api/stat?kind=workload&namespace=shop&window=1m");
    let (sent, elapsed) = (load.completed(), started.elapsed());
    let to = mesh.api("/api/stat?kind=workload&namespace=shop&to=service/shop/web&window=1m");
    let edges = mesh.api("/api/edges?kind=workload&namespace=shop&window=1m");
    let report = load.stop();
    let client_rate = sent as f64 / elapsed.as_secs_f64();
    let web = row(&stat, "web").unwrap_or_else(|| panic!("no web row: {stat}"));
    let load_row = row(&to, "load").unwrap_or_else(|| panic!("no load row: {to}"));
    let edge = edges["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|edge| edge["src"]["name"] == "load" && edge["dst"]["name"] == "web")
        .unwrap_or_else(|| panic!("no load → web edge: {edges}"));
    println!(
        "client: {sent} requests in {elapsed:?} = {client_rate:.2} rps ({} in all);          shown: web {} rps, load → web {} rps, edge {} rps; the full window would say {:.2}",
        report.total(),
        web["rps"],
        load_row["rps"],
        edge["rps"],
        requests(web) as f64 / 60.0
    );
    for (what, shown) in [
        ("web inbound", &web["rps"]),
        ("load → svc/web", &load_row["rps"]),
        ("edge load → web", &edge["rps"]),
    ] {
        let shown = shown.as_f64().unwrap_or_else(|| panic!("{what}: no rps"));
        assert!(
            (shown - client_rate).abs() <= client_rate * 0.25,
            "{what}: {shown} rps shown, the client sent {client_rate:.2} a second"
        );
    }
}

fn http_get(addr: SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let mut response = String::new();
    if stream.write_all(request.as_bytes()).is_ok() {
        let _ = stream.read_to_string(&mut response);
    }
    response
}

/// A Prometheus child process, killed on drop.
pub(crate) struct Prometheus {
    child: Child,
    dir: PathBuf,
}

impl Prometheus {
    /// Starts Prometheus on `port`, scraping every second the targets the
    /// controller's `/api/sd` lists.
    pub(crate) fn start(port: u16, web: SocketAddr) -> Prometheus {
        let dir =
            std::env::temp_dir().join(format!("weft-prometheus-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n\
             - job_name: weft-proxy\n  http_sd_configs:\n  - url: http://{web}/api/sd\n    \
             refresh_interval: 1s\n"
        );
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new(PROMETHEUS)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        Prometheus { child, dir }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default();
            eprintln!("prometheus log:\n{log}");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn with_prometheus_url_the_same_queries_go_to_prometheus() {
    if !std::path::Path::new(PROMETHEUS).is_file() {
        println!("SKIPPED: {PROMETHEUS} is absent (Debian package `prometheus`; CI installs it)");
        return;
    }
    let port = free_port();
    let prometheus_url = format!("http://127.0.0.1:{port}");
    let mesh = Mesh::start(&["--prometheus-url", &prometheus_url]);
    let _prometheus = Prometheus::start(port, mesh.controller.web_addr());
    // Prometheus has found (through /api/sd) and scraped both proxies
    // before the traffic.
    // Generous deadlines: they only matter when a loaded CI machine is slow.
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let up = http_get(
            loopback(port),
            "/api/v1/query?query=sum(up%7Bjob%3D%22weft-proxy%22%7D)",
        );
        if up.contains("\"2\"]") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "prometheus never scraped both proxies: {up}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let total = 300;
    let measured = mesh.traffic(total);
    assert_golden_metrics(&mesh, measured, total as u64, Duration::from_secs(45));
    assert_eq!(mesh.api("/api/version")["metrics_source"], "prometheus");
}

/// `deploy/...` from the workspace root.
fn deploy_file(path: &str) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read_to_string(root.join("deploy").join(path))
        .unwrap_or_else(|error| panic!("deploy/{path}: {error}"))
}

#[test]
fn the_grafana_dashboard_and_prometheus_config_are_well_formed() {
    let dashboard: Value =
        serde_json::from_str(&deploy_file("grafana/weft-top-line.json")).expect("dashboard JSON");
    assert_eq!(dashboard["uid"], "weft-top-line");
    let variables: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|variable| variable["name"].as_str())
        .collect();
    for variable in ["namespace", "workload"] {
        assert!(
            variables.contains(&variable),
            "no ${variable}: {variables:?}"
        );
    }
    let expressions: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|panel| panel["targets"].as_array().unwrap().iter())
        .map(|target| target["expr"].as_str().unwrap().to_string())
        .collect();
    let all = expressions.join("\n");
    for metric in [
        "response_total{classification=\"success\"",
        "request_total{",
        "histogram_quantile(0.5, sum(irate(response_latency_ms_bucket",
        "histogram_quantile(0.95,",
        "histogram_quantile(0.99,",
        "tcp_open_connections{",
        "tcp_read_bytes_total{",
        "route_response_total{",
    ] {
        assert!(all.contains(metric), "no panel queries {metric}");
    }
    for expression in &expressions {
        assert!(
            expression.contains("namespace=~\"$namespace\"")
                && expression.contains("workload=~\"$workload\""),
            "a panel ignores the template variables: {expression}"
        );
        assert_eq!(
            expression.matches('(').count(),
            expression.matches(')').count(),
            "unbalanced: {expression}"
        );
    }

    let config: Value =
        serde_saphyr::from_str(&deploy_file("prometheus/prometheus.yml")).expect("prometheus YAML");
    let proxies = config["scrape_configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|job| job["job_name"] == "weft-proxy")
        .expect("a weft-proxy job");
    assert_eq!(proxies["scrape_interval"], "10s");
    let url = proxies["http_sd_configs"][0]["url"].as_str().unwrap();
    assert!(url.ends_with("/api/sd"), "{url}");
}
