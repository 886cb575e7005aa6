//! The real `weft` binary observing a real mesh: a `weft-controller` with
//! its Identity service and HTTP API, two meshed workloads whose real
//! `weft-proxy`es listen on the mesh file's `inboundPort`/`adminPort`, and
//! traffic through them to a backend failing a known share of requests.
//!
//! ```text
//!  load ─► traffic's proxy (outbound) ══mTLS══► books' proxy (inbound) ─► backend (fails 1 in 5)
//!              │ admin /metrics                      │ admin /metrics
//!              └───────── scraped by weft-controller ┘ ◄── weft stat/edges/routes/check/tap -o json
//! ```
//!
//! Build the binaries first: `cargo build -p weft-proxy -p weft-controller -p weft-cli`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use weft_test_support::{
    Behavior, ControllerProcess, HttpTestServer, MeshFile, ProxyPorts, ProxyProcess, bin_path,
    free_port, load,
};

const NAMESPACE: &str = "demo";
const BOOKS_IDENTITY: &str = "books.demo.serviceaccount.identity.weft.cluster.local";
const TRAFFIC_IDENTITY: &str = "traffic.demo.serviceaccount.identity.weft.cluster.local";
const URL: &str = "http://books.demo.svc.cluster.local/";
/// The backend fails 1 request in 5.
const FAILURES: (u64, u64) = (1, 5);
/// How long the controller may take to scrape what the proxies counted.
const SETTLE: Duration = Duration::from_secs(40);

/// The mesh under observation; everything stops when dropped.
struct Observed {
    controller: ControllerProcess,
    _backend: HttpTestServer,
    books: ProxyProcess,
    traffic: ProxyProcess,
    token_file: PathBuf,
    state_dir: PathBuf,
}

fn scratch(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "weft-cli-observe-{label}-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A meshed workload whose proxy listens on `ports`.
fn workload_yaml(name: &str, app: SocketAddr, ports: ProxyPorts) -> String {
    format!(
        "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata:\n  name: {name}\n  namespace: {NAMESPACE}\n  \
         labels: {{app: {name}}}\nspec:\n  serviceAccount: {name}\n  addresses: [{}]\n  ports:\n  \
         - {{name: http, port: {}}}\n  meshed: true\n  proxy: {}\n",
        app.ip(),
        app.port(),
        ports.mesh_yaml()
    )
}

impl Observed {
    fn start(controller_args: &[&str]) -> Observed {
        Self::start_with_mesh(controller_args, |mesh| mesh)
    }

    /// Like [`Observed::start`], with more mesh-file objects.
    fn start_with_mesh(
        controller_args: &[&str],
        extra: impl FnOnce(MeshFile) -> MeshFile,
    ) -> Observed {
        let backend = HttpTestServer::start_with(Behavior::new().fail(FAILURES.0, FAILURES.1));
        let (books_ports, traffic_ports) = (ProxyPorts::free(), ProxyPorts::free());
        let traffic_app: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mesh = MeshFile::new()
            .service(NAMESPACE, "books", &[("app", "books")])
            .document(&workload_yaml("books", backend.addr(), books_ports))
            .document(&workload_yaml("traffic", traffic_app, traffic_ports))
            .profile(
                NAMESPACE,
                "books",
                "  routes:\n  - name: GET /\n    condition: {method: GET, pathRegex: /}\n",
            );
        let mesh = extra(mesh).render();
        let state_dir = scratch("state");
        // Not `<state dir>/api-token`, where weft looks by default.
        let token_file = scratch("controller").join("api-token");
        let token_arg = token_file.display().to_string();
        let mut args = vec!["--scrape-interval", "1s", "--api-token-file", &token_arg];
        args.extend_from_slice(controller_args);
        let controller = ControllerProcess::start_with_identity_args(&mesh, &args);
        let books = controller
            .proxy_identity(
                books_ports.builder().inbound_forward(backend.addr()),
                NAMESPACE,
                "books",
                BOOKS_IDENTITY,
            )
            .spawn();
        let traffic = controller
            .proxy_identity(
                traffic_ports.builder().env(
                    "WEFT_PROXY_DESTINATION_SVC_ADDR",
                    controller.destination_addr().to_string(),
                ),
                NAMESPACE,
                "traffic",
                TRAFFIC_IDENTITY,
            )
            .spawn();
        Observed {
            controller,
            _backend: backend,
            books,
            traffic,
            token_file,
            state_dir,
        }
    }

    /// Sends `total` requests from traffic to books, once the controller
    /// has scraped both proxies (counters it first sees are its baseline).
    fn send_traffic(&self, total: usize) -> load::LoadReport {
        self.weft_json_until(&["stat", "workload", "-n", NAMESPACE], |rows| {
            ["books", "traffic"]
                .iter()
                .all(|name| row(rows, name).is_some_and(|row| row["meshed"] == "1/1"))
        });
        load::run(self.traffic.outbound_addr(), URL, total, 4)
    }

    /// Runs `weft ARGS` against this mesh's controller (no `up.json`).
    fn weft(&self, args: &[&str]) -> Output {
        weft_at(
            &self.controller.web_addr().to_string(),
            &self.state_dir,
            args,
        )
    }

    /// Polls `weft ARGS -o json` until it exits 0 with JSON `accept` takes.
    fn weft_json_until(&self, args: &[&str], accept: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + SETTLE;
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        loop {
            let output = self.weft(&all);
            let value: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
            if output.status.success() && accept(&value) {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "weft {all:?} never showed what was expected within {SETTLE:?}: {value:#}\n{}\n\
                 --- books proxy log ---\n{}\n--- controller log ---\n{}",
                text(&output.stderr),
                self.books.log(),
                self.controller.log()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Observed {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.state_dir);
        if let Some(dir) = self.token_file.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn weft_at(api: &str, state_dir: &Path, args: &[&str]) -> Output {
    Command::new(bin_path("weft"))
        .args(args)
        .env("WEFT_API_ADDR", api)
        .env("WEFT_STATE_DIR", state_dir)
        .output()
        .expect("run weft")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn row<'a>(rows: &'a Value, name: &str) -> Option<&'a Value> {
    rows.as_array()?.iter().find(|row| row["name"] == name)
}

#[test]
fn stat_edges_and_routes_report_the_traffic() {
    let mesh = Observed::start(&[]);
    // Before any traffic, routes say what is missing rather than "No
    // Service Profiles found": books has a profile but no route metrics
    // yet; no service selects traffic; nosuch is not in the mesh file.
    let books_routes = mesh.weft(&["routes", "svc/books", "-n", NAMESPACE]);
    assert_eq!(
        books_routes.status.code(),
        Some(0),
        "{}",
        text(&books_routes.stderr)
    );
    assert!(
        text(&books_routes.stderr).starts_with(
            "No route metrics yet for service/demo/books in the last 1m: ServiceProfile \
             demo/books.demo.svc.cluster.local (1 route) applies"
        ),
        "{}",
        text(&books_routes.stderr)
    );
    let traffic_routes = mesh.weft(&["routes", "deploy/traffic"]);
    assert_eq!(traffic_routes.status.code(), Some(1));
    assert!(
        text(&traffic_routes.stderr)
            .starts_with("No ServiceProfile for any service selecting workload/demo/traffic"),
        "{}",
        text(&traffic_routes.stderr)
    );
    let nosuch_routes = mesh.weft(&["routes", "deploy/nosuch", "-n", NAMESPACE]);
    assert_eq!(nosuch_routes.status.code(), Some(1));
    assert_eq!(
        text(&nosuch_routes.stderr).trim(),
        "weft: workload demo/nosuch does not exist in the mesh file"
    );
    let report = mesh.send_traffic(200);
    let expected_rate = 1.0 - FAILURES.0 as f64 / FAILURES.1 as f64;
    assert!(
        (report.success_rate() - expected_rate).abs() < 0.02,
        "the backend fails as configured: {:?}",
        report.summary()
    );

    // Inbound view of books: every request counted, the configured rate.
    let rows = mesh.weft_json_until(&["stat", "workload", "-n", NAMESPACE], |rows| {
        row(rows, "books").is_some_and(|books| {
            let requests = &books["requests"];
            requests["success"].as_u64().unwrap_or(0) + requests["failure"].as_u64().unwrap_or(0)
                >= 200
        })
    });
    let books = row(&rows, "books").unwrap();
    let success = books["success"].as_f64().unwrap();
    assert!(
        (success - expected_rate).abs() < 0.05,
        "books' success rate {success} is not {expected_rate} ± 0.05: {rows:#}"
    );
    assert_eq!(books["meshed"], "1/1");
    assert!(books["rps"].as_f64().unwrap() > 0.0, "{rows:#}");
    assert!(books["latency_ms_p99"].as_f64().is_some(), "{rows:#}");
    assert!(row(&rows, "traffic").is_some(), "{rows:#}");

    // The table shows the same percentage.
    let table = mesh.weft(&["stat", "wl/books", "-n", NAMESPACE]);
    let table_text = text(&table.stdout);
    assert!(
        table.status.success(),
        "{table_text}{}",
        text(&table.stderr)
    );
    assert!(
        table_text.starts_with("NAME    MESHED   SUCCESS"),
        "{table_text}"
    );
    // (A scrape may land between the two calls: compare with the tolerance.)
    let cells: Vec<&str> = table_text
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(&cells[..2], ["books", "1/1"], "{table_text}");
    let percent: f64 = cells[2].trim_end_matches('%').parse().unwrap();
    assert!(
        (percent / 100.0 - expected_rate).abs() < 0.05,
        "{table_text}"
    );
    assert!(
        cells[3].ends_with("rps") && cells[4].ends_with("ms"),
        "{table_text}"
    );

    // A namespace that does not exist is named, and fails.
    let nosuch = mesh.weft(&["stat", "deploy", "-n", "nosuch"]);
    assert_eq!(nosuch.status.code(), Some(1), "{}", text(&nosuch.stderr));
    assert_eq!(
        text(&nosuch.stderr).trim(),
        "weft: namespace \"nosuch\" does not exist: no Service, Workload, ServiceProfile or \
         TrafficSplit of the mesh file is in it"
    );

    // Edges: traffic → books, secured, with both identities.
    let edges = mesh.weft_json_until(&["edges", "-n", NAMESPACE], |edges| {
        edges.as_array().is_some_and(|edges| {
            edges
                .iter()
                .any(|edge| edge["src"] == "traffic" && edge["dst"] == "books")
        })
    });
    let edge = edges
        .as_array()
        .unwrap()
        .iter()
        .find(|edge| edge["src"] == "traffic" && edge["dst"] == "books")
        .unwrap();
    assert_eq!(edge["secured"], true, "{edges:#}");
    assert_eq!(edge["client_id"], TRAFFIC_IDENTITY, "{edges:#}");
    assert_eq!(edge["server_id"], BOOKS_IDENTITY, "{edges:#}");

    // Routes: the profile's route, as traffic's proxy sent it to books.
    let routes = mesh.weft_json_until(
        &["routes", "wl/traffic", "--to", "svc/books", "-n", NAMESPACE],
        |routes| {
            routes.as_array().is_some_and(|routes| {
                routes
                    .iter()
                    .any(|route| route["route"] == "GET /" && route["rps"].as_f64().is_some())
            })
        },
    );
    let route = routes
        .as_array()
        .unwrap()
        .iter()
        .find(|route| route["route"] == "GET /")
        .unwrap();
    let route_success = route["success"].as_f64().unwrap();
    assert!(
        (route_success - expected_rate).abs() < 0.05,
        "route success {route_success}: {routes:#}"
    );
}

#[test]
fn proxy_metrics_prints_the_proxys_own_text() {
    let mesh = Observed::start(&[]);
    mesh.send_traffic(10);
    let output = mesh.weft(&["diagnostics", "proxy-metrics", "demo/books"]);
    let printed = text(&output.stdout);
    assert!(output.status.success(), "{printed}{}", text(&output.stderr));
    assert!(
        printed.starts_with("#\n# WORKLOAD demo/books (1 of 1)\n#\n"),
        "{printed}"
    );
    assert!(printed.contains("request_total{"), "{printed}");
    assert!(printed.contains("direction=\"inbound\""), "{printed}");
}

#[test]
fn tap_refuses_a_caller_without_the_token() {
    let mesh = Observed::start(&[]);
    // No token anywhere: the state directory has none and no flag is given.
    let missing = mesh.weft(&["tap", "deploy/books", "-n", NAMESPACE, "--duration", "5s"]);
    let message = text(&missing.stderr);
    assert!(
        !missing.status.success(),
        "tap without a token must fail: {message}"
    );
    assert!(message.contains("not authorized"), "{message}");
    assert!(message.contains("--token-file"), "{message}");
    assert!(missing.stdout.is_empty(), "{}", text(&missing.stdout));

    let wrong = scratch("wrong-token").join("token");
    std::fs::write(&wrong, "not-the-token\n").unwrap();
    let refused = mesh.weft(&[
        "tap",
        "deploy/books",
        "-n",
        NAMESPACE,
        "--duration",
        "5s",
        "--token-file",
        wrong.to_str().unwrap(),
    ]);
    let message = text(&refused.stderr);
    assert!(
        !refused.status.success(),
        "tap with a wrong token must fail: {message}"
    );
    assert!(message.contains("was refused"), "{message}");

    // The controller's own token opens the stream: live requests to books.
    let traffic = load::BackgroundLoad::start(
        mesh.traffic.outbound_addr(),
        URL,
        2,
        Duration::from_millis(20),
    );
    let token = mesh.token_file.to_str().unwrap();
    let events = mesh.weft(&[
        "tap",
        "deploy/books",
        "-n",
        NAMESPACE,
        "--limit",
        "9",
        "--duration",
        "30s",
        "--token-file",
        token,
        "-o",
        "json",
    ]);
    assert!(
        events.status.success(),
        "tap with the token: {}",
        text(&events.stderr)
    );
    let events: Vec<Value> = text(&events.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    assert_eq!(events.len(), 9, "{events:#?}");
    let request = events
        .iter()
        .find(|event| event["type"] == "req")
        .expect("a req event");
    assert_eq!(request["path"], "/", "{request:#}");
    assert_eq!(request["method"], "GET", "{request:#}");
    assert_eq!(request["dst"]["workload"], "books", "{request:#}");
    assert!(
        events
            .iter()
            .any(|event| event["type"] == "rsp"
                && (event["status"] == 200 || event["status"] == 500)),
        "{events:#?}"
    );

    let lines = mesh.weft(&[
        "tap",
        "deploy/books",
        "-n",
        NAMESPACE,
        "--limit",
        "3",
        "--duration",
        "30s",
        "--token-file",
        token,
    ]);
    let printed = text(&lines.stdout);
    assert!(lines.status.success(), "{printed}{}", text(&lines.stderr));
    assert_eq!(printed.lines().count(), 3, "{printed}");
    assert!(
        printed.lines().all(|line| ["req id=", "rsp id=", "end id="]
            .iter()
            .any(|start| line.starts_with(start))),
        "{printed}"
    );

    // top: the requests aggregated by path, with a plausible success rate.
    let top = mesh.weft(&[
        "top",
        "deploy/books",
        "-n",
        NAMESPACE,
        "--duration",
        "4s",
        "--token-file",
        token,
        "-o",
        "json",
    ]);
    assert!(top.status.success(), "{}", text(&top.stderr));
    let rows: Value = serde_json::from_slice(&top.stdout).unwrap();
    let slash = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["path"] == "/" && row["destination"] == "books")
        .unwrap_or_else(|| panic!("no row for / to books: {rows:#}"));
    assert!(slash["count"].as_u64().unwrap() >= 5, "{rows:#}");
    let success = slash["success"].as_f64().unwrap();
    assert!((0.5..1.0).contains(&success), "1 in 5 fails: {rows:#}");
    drop(traffic);
}

/// `weft stat ts`: a TrafficSplit of books between two leaf services
/// (both served by the books workload), each leaf's share and the apex
/// service's total; `weft stat svc/books` shows the apex, and both agree
/// with the client's own count.
#[test]
fn stat_ts_shows_the_split_and_its_apex() {
    let mesh = Observed::start_with_mesh(&[], |mesh| {
        mesh.service(NAMESPACE, "books-v1", &[("app", "books")])
            .service(NAMESPACE, "books-v2", &[("app", "books")])
            .split(NAMESPACE, "books", &[("books-v1", 800), ("books-v2", 200)])
    });
    let report = mesh.send_traffic(200);
    let sent = report.total() as f64;
    let close = |shown: f64| (shown - sent).abs() <= sent * 0.1;
    let requests = |row: &Value| {
        row["requests"]["success"].as_u64().unwrap_or(0) as f64
            + row["requests"]["failure"].as_u64().unwrap_or(0) as f64
    };
    let splits = mesh.weft_json_until(&["stat", "ts", "-n", NAMESPACE], |rows| {
        rows.as_array()
            .is_some_and(|rows| close(rows.iter().map(requests).sum()))
    });
    let leaves = splits.as_array().unwrap();
    assert_eq!(leaves.len(), 2, "{splits:#}");
    for (row, leaf, weight) in [
        (&leaves[0], "books-v1", "800m"),
        (&leaves[1], "books-v2", "200m"),
    ] {
        assert_eq!(row["name"], "books-split", "{splits:#}");
        assert_eq!(row["apex"], "books", "{splits:#}");
        assert_eq!(row["leaf"], leaf, "{splits:#}");
        assert_eq!(row["weight"], weight, "{splits:#}");
    }
    let v1_share = requests(&leaves[0]) / leaves.iter().map(requests).sum::<f64>();
    assert!(
        (0.65..0.95).contains(&v1_share),
        "80 % to books-v1: {v1_share} {splits:#}"
    );

    // The apex service: every request its callers addressed to it.
    let services = mesh.weft_json_until(&["stat", "svc", "-n", NAMESPACE], |rows| {
        row(rows, "books").is_some_and(|books| close(requests(books)))
    });
    let books = row(&services, "books").unwrap();
    println!(
        "client sent {sent} to books; stat svc/books counted {} at {} rps; stat ts: {}",
        requests(books),
        books["rps"],
        leaves
            .iter()
            .map(|leaf| format!("{} {}", leaf["leaf"], requests(leaf)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let success = books["success"].as_f64().unwrap();
    assert!(
        (success - report.success_rate()).abs() < 0.06,
        "{services:#}"
    );

    // The table: Linkerd's columns.
    let table = mesh.weft(&["stat", "ts/books-split", "-n", NAMESPACE]);
    let table_text = text(&table.stdout);
    assert!(table.status.success(), "{}", text(&table.stderr));
    let header: Vec<&str> = table_text
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "APEX",
            "LEAF",
            "WEIGHT",
            "SUCCESS",
            "RPS",
            "LATENCY_P50",
            "LATENCY_P95",
            "LATENCY_P99"
        ],
        "{table_text}"
    );
    let cells: Vec<&str> = table_text
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        &cells[..4],
        ["books-split", "books", "books-v1", "800m"],
        "{table_text}"
    );
}

/// `weft top ns/demo` taps both proxies of every request (traffic's
/// outbound, books' inbound): each request is counted once, and none is
/// lost to sampling, so top's count is the client's own.
#[test]
fn top_counts_each_request_once() {
    let mesh = Observed::start(&[]);
    mesh.send_traffic(5);
    let token = mesh.token_file.to_str().unwrap().to_string();
    let top = Command::new(bin_path("weft"))
        .args([
            "top",
            "ns/demo",
            "--duration",
            "12s",
            "--token-file",
            &token,
            "-o",
            "json",
        ])
        .env("WEFT_API_ADDR", mesh.controller.web_addr().to_string())
        .env("WEFT_STATE_DIR", &mesh.state_dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run weft top");
    // Time for the controller to open Observe on both proxies.
    std::thread::sleep(Duration::from_secs(4));
    let report = load::run(mesh.traffic.outbound_addr(), URL, 150, 2);
    let output = top.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let rows: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}", text(&output.stdout)));
    let counted: u64 = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|row| row["source"] == "traffic" && row["destination"] == "books")
        .map(|row| row["count"].as_u64().unwrap())
        .sum();
    println!(
        "client sent {} requests in {:?}; weft top counted {counted}: {rows}",
        report.total(),
        report.elapsed
    );
    assert_eq!(counted, report.total() as u64, "{rows:#}");
}

#[test]
fn check_passes_then_fails_when_a_certificate_expires_soon() {
    let mesh = Observed::start(&[]);
    mesh.send_traffic(10);
    // Wait until both proxies were scraped with their certificate's expiry.
    let deadline = Instant::now() + SETTLE;
    loop {
        let output = mesh.weft(&["check", "-o", "json"]);
        let report: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
        if report["success"] == true && output.status.success() {
            let warnings: Vec<&Value> = report["categories"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|category| category["checks"].as_array().unwrap())
                .filter(|check| check["result"] != "success")
                .collect();
            if warnings.is_empty() {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "weft check never passed cleanly: {report:#}\n{}",
            text(&output.stderr)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let table = mesh.weft(&["check"]);
    let table_text = text(&table.stdout);
    assert!(table.status.success(), "{table_text}");
    assert!(
        table_text.ends_with("Status check results are √\n"),
        "{table_text}"
    );

    // Leaf certificates live 24h: a 48h threshold makes them expire "soon".
    let failing = mesh.weft(&["check", "--expiry-threshold", "48h"]);
    let failing_text = text(&failing.stdout);
    assert_eq!(failing.status.code(), Some(1), "{failing_text}");
    assert!(
        failing_text.contains("× data plane proxies' certificates are valid for at least 2d"),
        "{failing_text}"
    );
    assert!(
        failing_text.contains("demo/books expires in"),
        "{failing_text}"
    );
    assert!(failing_text.contains("hint: "), "{failing_text}");
    assert!(
        failing_text.ends_with("Status check results are ×\n"),
        "{failing_text}"
    );
}

#[test]
fn check_fails_when_leaf_certificates_are_shorter_lived_than_the_threshold() {
    // Leaves live 30 minutes, less than the default 1h threshold.
    let mesh = Observed::start(&["--identity-issuance-lifetime", "30m"]);
    let deadline = Instant::now() + SETTLE;
    loop {
        let output = mesh.weft(&["check", "-o", "json"]);
        let report: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
        let leaf = report["categories"]
            .as_array()
            .and_then(|categories| {
                categories
                    .iter()
                    .find(|category| category["categoryName"] == "weft-identity-data-plane")
            })
            .map(|category| category["checks"][0].clone());
        if let Some(leaf) = leaf.filter(|leaf| leaf["result"] == "error") {
            assert_eq!(output.status.code(), Some(1));
            assert_eq!(report["success"], false);
            let error = leaf["error"].as_str().unwrap();
            assert!(error.contains("demo/books expires in"), "{error}");
            assert!(error.contains("demo/traffic expires in"), "{error}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "weft check never failed on the leaves: {report:#}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
