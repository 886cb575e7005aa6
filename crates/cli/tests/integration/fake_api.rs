//! The real `weft` binary against an in-process fake of the controller's API
//! (answers built from the `weft-api` types the controller serializes): the commands
//! send the documented queries, print the documented numbers, and tap and
//! check exit non-zero when they must. The end-to-end tests against a real
//! controller and real proxies are in `observe.rs`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Command, Output};
use std::sync::PoisonError;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use serde_json::Value;
use weft_api::{
    Certificate, EdgeRow, EdgesResponse, IdentityInfo, IssuerCertificate, Latency, MeshStatus,
    NamedWorkload, ProxyAddresses, ResourceKind, RouteProfile, RouteRow, RoutesResponse, Scrape,
    StatResponse, StatRow, TapEvent, TapEventKind, TapPeer, Version, WorkloadInfo,
    WorkloadsResponse,
};
use weft_test_support::background::BackgroundServer;

const TOKEN: &str = "fake-token-1234";

/// Answers per path, and the requests seen (path and query, Authorization).
#[derive(Default)]
struct Fake {
    answers: HashMap<String, (u16, String)>,
    seen: Vec<(String, Option<String>)>,
}

pub(crate) struct FakeApi {
    pub(crate) addr: SocketAddr,
    state: Arc<Mutex<Fake>>,
    /// Serves until the fake is dropped.
    _server: BackgroundServer,
}

impl FakeApi {
    pub(crate) fn start() -> Self {
        let state = Arc::new(Mutex::new(Fake::default()));
        let server = BackgroundServer::http1("fake-api", state.clone(), answer);
        let fake = Self {
            addr: server.addr(),
            state,
            _server: server,
        };
        fake.healthy();
        fake
    }

    pub(crate) fn set(&self, path: &str, status: u16, body: String) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.answers.insert(path.to_string(), (status, body));
    }

    pub(crate) fn seen(&self, path: &str) -> Vec<(String, Option<String>)> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state
            .seen
            .iter()
            .filter(|(seen, _)| seen.starts_with(path))
            .cloned()
            .collect()
    }

    /// Answers `path` with `body` serialized: the API's own types, so the
    /// fake cannot drift from what the controller serves.
    pub(crate) fn set_json(&self, path: &str, body: &impl serde::Serialize) {
        self.set(path, 200, serde_json::to_string(body).unwrap());
    }

    /// A healthy demo mesh: `web` fails 10 % of its requests.
    fn healthy(&self) {
        let now = now();
        self.set_json(
            "/api/version",
            &Version {
                version: env!("CARGO_PKG_VERSION").into(),
                metrics_source: "scrape".into(),
            },
        );
        let latency = |p50, p95, p99| {
            Some(Latency {
                p50: Some(p50),
                p95: Some(p95),
                p99: Some(p99),
            })
        };
        self.set_json(
            "/api/stat",
            &StatResponse {
                window_seconds: 60,
                rows: vec![
                    StatRow {
                        kind: ResourceKind::Workload,
                        namespace: "demo".into(),
                        name: "web".into(),
                        meshed: Some(1),
                        running: Some(1),
                        success: 108,
                        failure: 12,
                        success_rate: Some(0.9),
                        rps: Some(2.0),
                        latency_ms: latency(3.0, 9.0, 19.0),
                        tcp_connections: Some(4),
                        read_bytes_per_sec: Some(1234.5),
                        write_bytes_per_sec: Some(4321.0),
                        authz_allowed: None,
                        authz_denied: None,
                    },
                    StatRow {
                        kind: ResourceKind::Workload,
                        namespace: "demo".into(),
                        name: "traffic".into(),
                        meshed: Some(1),
                        running: Some(1),
                        success: 0,
                        failure: 0,
                        success_rate: None,
                        rps: None,
                        latency_ms: None,
                        tcp_connections: Some(0),
                        read_bytes_per_sec: None,
                        write_bytes_per_sec: None,
                        authz_allowed: None,
                        authz_denied: None,
                    },
                ],
            },
        );
        let authority = "books.demo.svc.cluster.local:7000";
        self.set_json(
            "/api/routes",
            &RoutesResponse {
                window_seconds: 60,
                rows: vec![
                    RouteRow {
                        route: "GET /books/{id}".into(),
                        authority: authority.into(),
                        success_rate: Some(1.0),
                        rps: Some(1.5),
                        actual_success_rate: Some(0.98),
                        actual_rps: Some(1.6),
                        latency_ms: latency(2.0, 4.0, 8.0),
                    },
                    RouteRow {
                        route: "[DEFAULT]".into(),
                        authority: authority.into(),
                        success_rate: None,
                        rps: None,
                        actual_success_rate: None,
                        actual_rps: None,
                        latency_ms: None,
                    },
                ],
                profiles: vec![books_profile()],
            },
        );
        let workload = |name: &str| NamedWorkload {
            namespace: "demo".into(),
            name: name.into(),
        };
        let identity =
            |name: &str| format!("{name}.demo.serviceaccount.identity.weft.cluster.local");
        self.set_json(
            "/api/edges",
            &EdgesResponse {
                window_seconds: 60,
                rows: vec![EdgeRow {
                    src: workload("traffic"),
                    dst: workload("web"),
                    client_id: Some(identity("traffic")),
                    server_id: Some(identity("web")),
                    secured: true,
                    no_tls_reason: None,
                    rps: Some(5.0),
                    success_rate: Some(1.0),
                }],
            },
        );
        self.set_json(
            "/api/workloads",
            &WorkloadsResponse {
                workloads: vec![WorkloadInfo {
                    namespace: "demo".into(),
                    name: "web".into(),
                    service_account: "web".into(),
                    identity: Some(identity("web")),
                    labels: [("app".to_string(), "web".to_string())].into(),
                    addresses: vec!["127.0.0.1".into()],
                    meshed: true,
                    proxy: Some(ProxyAddresses {
                        admin: Some(self.addr.to_string()),
                        tap: Some("127.0.0.1:1".into()),
                        inbound: Some("127.0.0.1:2".into()),
                    }),
                    scrape: Some(Scrape {
                        up: true,
                        last_unix: Some(now),
                        error: None,
                    }),
                    cert_expiry_unix: Some(now + 86_400.0),
                }],
            },
        );
        let year = 365 * 86_400;
        let now_seconds = now as i64;
        self.set_json(
            "/api/identity",
            &IdentityInfo {
                enabled: true,
                trust_domain: Some("weft.cluster.local".into()),
                trust_anchors: vec![Certificate {
                    subject: "CN=root.weft.cluster.local".into(),
                    not_before_unix: now_seconds - 60,
                    not_after_unix: now_seconds + year,
                }],
                issuer: Some(IssuerCertificate {
                    subject: "CN=identity.weft.weft.cluster.local".into(),
                    not_before_unix: now_seconds - 60,
                    not_after_unix: now_seconds + year,
                    issued_by_anchor: true,
                }),
                leaf_lifetime_seconds: Some(86_400),
            },
        );
        self.set_json(
            "/api/mesh",
            &MeshStatus {
                path: "/tmp/mesh.yaml".into(),
                valid: true,
                error: None,
                last_load_unix: Some(now),
            },
        );
        let mut events = String::new();
        for (id, status) in [("1:1", 200), ("1:2", 500)] {
            let common = |kind| {
                let mut event = TapEvent::new(kind, id.into(), "in", "true".into());
                event.source = Some("127.0.0.1:51000".into());
                event.destination = Some("127.0.0.1:7000".into());
                event.src = Some(TapPeer {
                    namespace: "demo".into(),
                    workload: Some("traffic".into()),
                });
                event.dst = Some(TapPeer {
                    namespace: "demo".into(),
                    workload: Some("web".into()),
                });
                event
            };
            let mut request = common(TapEventKind::Request);
            request.method = Some("GET".into());
            request.scheme = Some("http".into());
            request.authority = Some("web.demo.svc.cluster.local:7000".into());
            request.path = Some("/books".into());
            let mut response = common(TapEventKind::Response);
            response.status = Some(status);
            response.latency_us = Some(1234);
            let mut end = common(TapEventKind::End);
            end.duration_us = Some(456);
            end.response_bytes = Some(1200);
            for event in [request, response, end] {
                events.push_str(&serde_json::to_string(&event).unwrap());
                events.push('\n');
            }
        }
        self.set("/api/tap", 200, events);
        self.set(
            "/metrics",
            200,
            "# HELP request_total x\nrequest_total{direction=\"inbound\"} 7\n".into(),
        );
    }
}

/// The demo's ServiceProfile of books.
fn books_profile() -> RouteProfile {
    RouteProfile {
        namespace: "demo".into(),
        name: "books.demo.svc.cluster.local".into(),
        routes: vec!["GET /books/{id}".into()],
    }
}

fn answer(state: &Mutex<Fake>, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let authorization = request
        .headers()
        .get("authorization")
        .map(|value| value.to_str().unwrap().to_string());
    state.seen.push((path_and_query, authorization.clone()));
    let path = request.uri().path();
    if path == "/api/tap" && authorization.as_deref() != Some(&format!("Bearer {TOKEN}")) {
        return reply(
            401,
            r#"{"error": "tap needs the API token (Authorization: Bearer)"}"#.into(),
        );
    }
    match state.answers.get(path) {
        Some((status, body)) => reply(*status, body.clone()),
        None => reply(404, r#"{"error": "not found"}"#.into()),
    }
}

fn reply(status: u16, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    response
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Runs `weft` with a state directory of its own (no up.json) and the fake's address.
pub(crate) fn weft(fake: &FakeApi, args: &[&str]) -> Output {
    let state = std::env::temp_dir().join(format!(
        "weft-cli-fake-{}-{}",
        std::process::id(),
        fake.addr.port()
    ));
    std::fs::create_dir_all(&state).unwrap();
    Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(args)
        .env("WEFT_API_ADDR", fake.addr.to_string())
        .env("WEFT_STATE_DIR", &state)
        .env_remove("NO_COLOR")
        .output()
        .expect("run weft")
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn stat_queries_the_documented_api_and_prints_its_numbers() {
    let fake = FakeApi::start();
    let output = weft(
        &fake,
        &["stat", "workload", "-n", "demo", "-t", "30s", "-o", "json"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let rows: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(rows[1]["name"], "web");
    assert_eq!(rows[1]["success"], 0.9);
    assert_eq!(rows[1]["meshed"], "1/1");
    assert_eq!(rows[0]["name"], "traffic");
    assert_eq!(rows[0]["success"], Value::Null);
    assert_eq!(
        fake.seen("/api/stat")[0].0,
        "/api/stat?kind=workload&namespace=demo&window=30s"
    );

    let table = weft(&fake, &["stat", "deploy/web"]);
    let text = stdout(&table);
    assert!(table.status.success(), "{}", stderr(&table));
    assert!(
        !text.contains('\x1b'),
        "no colors when not on a terminal: {text:?}"
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with("NAMESPACE   NAME   MESHED   SUCCESS      RPS"),
        "{text}"
    );
    let cells: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        cells,
        [
            "demo", "web", "1/1", "90.00%", "2.0rps", "3ms", "9ms", "19ms", "4"
        ]
    );
    assert_eq!(
        fake.seen("/api/stat")[1].0,
        "/api/stat?kind=workload&name=web&window=1m"
    );

    fake.set(
        "/api/stat",
        200,
        r#"{"window_seconds": 60, "rows": []}"#.into(),
    );
    let empty = weft(&fake, &["stat", "ns"]);
    assert!(empty.status.success());
    assert_eq!(stderr(&empty).trim(), "No traffic found.");
}

#[test]
fn stat_wide_shows_each_workloads_proxy_ports() {
    let fake = FakeApi::start();
    let admin_port = fake.addr.port().to_string();
    let output = weft(&fake, &["stat", "wl", "-n", "demo", "-o", "wide"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].ends_with("PROXY_INBOUND   PROXY_ADMIN   PROXY_TAP"),
        "{text}"
    );
    let last_three = |line: &str| -> Vec<String> {
        let cells: Vec<&str> = line.split_whitespace().collect();
        cells[cells.len() - 3..]
            .iter()
            .map(|cell| cell.to_string())
            .collect()
    };
    // traffic is not in /api/workloads; web's listeners are.
    assert!(lines[1].starts_with("traffic"), "{text}");
    assert_eq!(last_three(lines[1]), ["-", "-", "-"], "{text}");
    assert!(lines[2].starts_with("web"), "{text}");
    assert_eq!(
        last_three(lines[2]),
        ["2".to_string(), admin_port, "1".to_string()],
        "{text}"
    );
    assert_eq!(fake.seen("/api/workloads").len(), 1);

    // Not wide, or not workloads: no ports and no /api/workloads request.
    for args in [
        &["stat", "wl", "-n", "demo"][..],
        &["stat", "ns", "-o", "wide"][..],
    ] {
        let output = weft(&fake, args);
        assert!(output.status.success(), "{}", stderr(&output));
        assert!(!stdout(&output).contains("PROXY_"), "{args:?}");
    }
    assert_eq!(fake.seen("/api/workloads").len(), 1);

    // Without an answer from /api/workloads the table still prints.
    fake.set("/api/workloads", 500, "{}".into());
    let output = weft(&fake, &["stat", "wl", "-n", "demo", "-o", "wide"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("no proxy ports"),
        "{}",
        stderr(&output)
    );
    let text = stdout(&output);
    assert_eq!(last_three(text.lines().nth(2).unwrap()), ["-", "-", "-"]);
}

#[test]
fn stat_to_and_from_targets_name_their_namespace() {
    let fake = FakeApi::start();
    let output = weft(
        &fake,
        &["stat", "wl", "--to", "svc/books", "--to-namespace", "demo"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        fake.seen("/api/stat")[0].0,
        "/api/stat?kind=workload&window=1m&to=service%2Fdemo%2Fbooks"
    );
    // Without a namespace, a workload's is looked up in /api/workloads.
    let output = weft(&fake, &["stat", "svc", "--from", "wl/web"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        fake.seen("/api/stat")[1].0,
        "/api/stat?kind=service&window=1m&from=workload%2Fdemo%2Fweb"
    );
}

#[test]
fn routes_and_edges() {
    let fake = FakeApi::start();
    let routes = weft(&fake, &["routes", "svc/books", "-n", "demo", "-o", "json"]);
    assert!(routes.status.success(), "{}", stderr(&routes));
    let rows: Value = serde_json::from_str(&stdout(&routes)).unwrap();
    assert_eq!(rows[0]["route"], "GET /books/{id}");
    assert_eq!(rows[0]["success"], 1.0);
    assert_eq!(rows[1]["route"], "[DEFAULT]");
    assert_eq!(
        fake.seen("/api/routes")[0].0,
        "/api/routes?kind=service&namespace=demo&name=books&window=1m"
    );

    let edges = weft(&fake, &["edges", "-o", "wide"]);
    assert!(edges.status.success(), "{}", stderr(&edges));
    let text = stdout(&edges);
    let cells: Vec<&str> = text.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        cells,
        [
            "traffic",
            "web",
            "demo",
            "demo",
            "traffic.demo.serviceaccount.identity.weft.cluster.local",
            "web.demo.serviceaccount.identity.weft.cluster.local",
            "√"
        ]
    );
}

/// No rows: the message says what is missing — a ServiceProfile (exit 1),
/// route metrics for the profile that exists (exit 0), or the resource.
#[test]
fn routes_say_what_is_missing() {
    let fake = FakeApi::start();
    let empty = |profiles: Vec<RouteProfile>| RoutesResponse {
        window_seconds: 60,
        rows: vec![],
        profiles,
    };
    fake.set_json("/api/routes", &empty(vec![books_profile()]));
    let no_metrics = weft(&fake, &["routes", "svc/books", "-n", "demo"]);
    assert_eq!(no_metrics.status.code(), Some(0), "{}", stderr(&no_metrics));
    assert_eq!(
        stderr(&no_metrics).trim(),
        "No route metrics yet for service/demo/books in the last 1m: ServiceProfile \
         demo/books.demo.svc.cluster.local (1 route) applies, but no request was recorded on \
         its routes (no traffic yet, or not scraped yet)."
    );
    assert!(stdout(&no_metrics).is_empty());

    fake.set_json("/api/routes", &empty(vec![]));
    let no_profile = weft(&fake, &["routes", "deploy/web"]);
    assert_eq!(no_profile.status.code(), Some(1), "{}", stderr(&no_profile));
    assert!(
        stderr(&no_profile).starts_with(
            "No ServiceProfile for any service selecting workload/demo/web: routes come from a ServiceProfile"
        ),
        "{}",
        stderr(&no_profile)
    );
    let no_profile_to = weft(&fake, &["routes", "deploy/web", "--to", "svc/demo/authors"]);
    assert_eq!(no_profile_to.status.code(), Some(1));
    assert!(
        stderr(&no_profile_to)
            .starts_with("No ServiceProfile for the service service/demo/authors:"),
        "{}",
        stderr(&no_profile_to)
    );

    fake.set(
        "/api/routes",
        404,
        r#"{"error": "service demo/nosuch does not exist in the mesh file"}"#.into(),
    );
    let missing = weft(&fake, &["routes", "svc/nosuch", "-n", "demo"]);
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(
        stderr(&missing).trim(),
        "weft: service demo/nosuch does not exist in the mesh file"
    );
}

#[test]
fn tap_needs_the_token() {
    let fake = FakeApi::start();
    let refused = weft(&fake, &["tap", "deploy/web", "-n", "demo", "--limit", "3"]);
    assert!(!refused.status.success(), "tap without a token must fail");
    let message = stderr(&refused);
    assert!(message.contains("not authorized"), "{message}");
    assert!(message.contains("--token-file"), "{message}");
    assert!(stdout(&refused).is_empty());

    let token_file = std::env::temp_dir().join(format!("weft-cli-token-{}", std::process::id()));
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let token_arg = token_file.to_str().unwrap();
    let lines = weft(
        &fake,
        &[
            "tap",
            "deploy/web",
            "-n",
            "demo",
            "--limit",
            "3",
            "--token-file",
            token_arg,
            "--method",
            "GET",
        ],
    );
    assert!(lines.status.success(), "{}", stderr(&lines));
    let text = stdout(&lines);
    let printed: Vec<&str> = text.lines().collect();
    assert_eq!(printed.len(), 3, "{text}");
    assert_eq!(
        printed[0],
        "req id=1:1 proxy=in  src=127.0.0.1:51000 dst=127.0.0.1:7000 tls=true :method=GET :authority=web.demo.svc.cluster.local:7000 :path=/books"
    );
    assert!(
        printed[1].starts_with("rsp id=1:1 proxy=in  src="),
        "{text}"
    );
    assert!(printed[1].ends_with(":status=200 latency=1234µs"), "{text}");
    assert!(
        printed[2].ends_with("duration=456µs response-length=1200B"),
        "{text}"
    );
    let tap_requests = fake.seen("/api/tap");
    assert_eq!(
        tap_requests.last().unwrap().0,
        "/api/tap?kind=workload&namespace=demo&name=web&method=GET&max_rps=100"
    );
    assert_eq!(
        tap_requests.last().unwrap().1.as_deref(),
        Some(&*format!("Bearer {TOKEN}"))
    );

    let json = weft(
        &fake,
        &["tap", "ns/demo", "-o", "json", "--token-file", token_arg],
    );
    assert!(json.status.success(), "{}", stderr(&json));
    let events: Vec<Value> = stdout(&json)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(events.len(), 6);
    assert_eq!(events[4]["status"], 500);

    // Tapping web alone: its inbound requests from traffic are counted
    // (traffic's own proxy is not tapped).
    let top = weft(
        &fake,
        &[
            "top",
            "deploy/web",
            "-n",
            "demo",
            "-o",
            "json",
            "--token-file",
            token_arg,
        ],
    );
    assert!(top.status.success(), "{}", stderr(&top));
    let rows: Value = serde_json::from_str(&stdout(&top)).unwrap();
    assert_eq!(rows[0]["path"], "/books");
    assert_eq!(rows[0]["count"], 2);
    assert_eq!(rows[0]["success"], 0.5);
    assert!(
        fake.seen("/api/tap")
            .last()
            .unwrap()
            .0
            .ends_with("&max_rps=1000"),
        "top asks for enough requests to count them all: {:?}",
        fake.seen("/api/tap")
    );
    std::fs::remove_file(&token_file).unwrap();
}

/// `weft tap … | head -1`: the reader goes away after one line while tap
/// still has events to print; weft ends quietly instead of panicking.
#[test]
fn tap_into_a_closed_pipe_exits_quietly() {
    use std::io::BufRead;
    let fake = FakeApi::start();
    let mut event = TapEvent::new(TapEventKind::Request, "1:1".into(), "in", "true".into());
    event.method = Some("GET".into());
    event.path = Some("/books".into());
    let line = serde_json::to_string(&event).unwrap() + "\n";
    // About 4 MiB: far more than a pipe holds, so weft writes after the reader left.
    fake.set("/api/tap", 200, line.repeat(4 * 1024 * 1024 / line.len()));
    let token_file = std::env::temp_dir().join(format!("weft-cli-pipe-{}", std::process::id()));
    std::fs::write(&token_file, TOKEN).unwrap();
    let state = std::env::temp_dir().join(format!("weft-cli-pipe-state-{}", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args([
            "tap",
            "ns/demo",
            "--token-file",
            token_file.to_str().unwrap(),
        ])
        .env("WEFT_API_ADDR", fake.addr.to_string())
        .env("WEFT_STATE_DIR", &state)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    assert!(first.starts_with("req id=1:1 proxy=in"), "{first}");
    drop(reader);
    let output = child.wait_with_output().unwrap();
    let _ = std::fs::remove_file(&token_file);
    let errors = stderr(&output);
    assert!(!errors.contains("panicked"), "{errors}");
    assert!(errors.is_empty(), "quiet: {errors}");
    assert!(output.status.success(), "{:?}: {errors}", output.status);
}

#[test]
fn check_passes_then_fails_when_a_certificate_expires_soon() {
    let fake = FakeApi::start();
    let healthy = weft(&fake, &["check"]);
    let text = stdout(&healthy);
    assert!(healthy.status.success(), "{text}{}", stderr(&healthy));
    assert!(
        text.contains(
            "weft-identity\n-------------\n√ trust anchors are within their validity period"
        ),
        "{text}"
    );
    assert!(text.ends_with("Status check results are √\n"), "{text}");

    let now = now();
    fake.set_json(
        "/api/workloads",
        &WorkloadsResponse {
            workloads: vec![WorkloadInfo {
                namespace: "demo".into(),
                name: "web".into(),
                meshed: true,
                scrape: Some(Scrape {
                    up: true,
                    last_unix: Some(now),
                    error: None,
                }),
                cert_expiry_unix: Some(now + 600.0),
                ..WorkloadInfo::default()
            }],
        },
    );
    let failing = weft(&fake, &["check", "-o", "json"]);
    assert_eq!(failing.status.code(), Some(1), "{}", stdout(&failing));
    let report: Value = serde_json::from_str(&stdout(&failing)).unwrap();
    assert_eq!(report["success"], false);
    let leaf = &report["categories"][2];
    assert_eq!(leaf["categoryName"], "weft-identity-data-plane");
    assert_eq!(leaf["checks"][0]["result"], "error");
    assert!(
        leaf["checks"][0]["error"]
            .as_str()
            .unwrap()
            .contains("demo/web expires in"),
        "{report}"
    );

    // A threshold shorter than the time left passes again.
    let relaxed = weft(&fake, &["check", "--expiry-threshold", "5m"]);
    assert!(relaxed.status.success(), "{}", stdout(&relaxed));
}

#[test]
fn check_fails_when_the_controller_is_unreachable() {
    let fake = FakeApi::start();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let output = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["check", "--api-addr", &addr.to_string()])
        .env(
            "WEFT_STATE_DIR",
            std::env::temp_dir().join("weft-cli-nowhere"),
        )
        .output()
        .unwrap();
    drop(fake);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(text.contains("× can query the controller API"), "{text}");
    assert!(
        text.contains("hint: start the mesh with `weft up`"),
        "{text}"
    );
}

#[test]
fn proxy_metrics_and_dashboard() {
    let fake = FakeApi::start();
    let metrics = weft(&fake, &["diagnostics", "proxy-metrics", "demo/web"]);
    assert!(metrics.status.success(), "{}", stderr(&metrics));
    assert_eq!(
        stdout(&metrics),
        "#\n# WORKLOAD demo/web (1 of 1)\n#\n# HELP request_total x\nrequest_total{direction=\"inbound\"} 7\n"
    );
    let url = weft(&fake, &["dashboard", "--show", "url"]);
    assert_eq!(stdout(&url), format!("http://{}/\n", fake.addr));
}
