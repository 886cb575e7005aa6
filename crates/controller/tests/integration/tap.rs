//! `/api/tap` of the real `weft-controller` binary: the API token, the
//! fan-out to every proxy a resource covers with the rate shared between
//! them, NDJSON events naming both workloads, and — against real
//! `weft-proxy` processes with traffic — live requests.
//!
//! ```text
//! test client ──GET /api/tap (NDJSON)──► weft-controller ──Observe──► fake tap servers (in-process)
//!                                                        └─Observe──► weft-proxy tap ports (DemoMesh)
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::mesh::{DemoMesh, NAMESPACE, ProxyPorts, TapStream, scratch, workload_yaml};
use linkerd2_proxy_api::http_types::HttpMethod;
use linkerd2_proxy_api::net::TcpAddress;
use linkerd2_proxy_api::tap::tap_event::http::{Event as HttpEvent, RequestInit, StreamId};
use linkerd2_proxy_api::tap::tap_event::{EndpointMeta, Event, Http, ProxyDirection};
use linkerd2_proxy_api::tap::tap_server::{Tap, TapServer};
use linkerd2_proxy_api::tap::{ObserveRequest, TapEvent};
use serde_json::Value;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status};
use weft_test_support::{ControllerProcess, free_addr};

/// Bound for anything that should happen soon.
const PATIENCE: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread")]
async fn tap_refuses_a_caller_without_the_token() {
    let dir = scratch("tap-token");
    let token_file = dir.join("state").join("api-token");
    let ports = ProxyPorts::free();
    let mesh = format!("---\n{}", workload_yaml("web", "web", 8080, ports));
    let token_arg = token_file.display().to_string();
    let controller = ControllerProcess::start_with_args(&mesh, &["--api-token-file", &token_arg]);
    let web = controller.web_addr();

    // Created with a random token, readable by its owner only.
    let token = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_string();
    assert!(token.len() >= 40, "{token:?}");
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let query = "kind=workload&namespace=demo&name=web";
    for presented in [None, Some("wrong"), Some("")] {
        let Err((status, body)) = TapStream::open(web, query, presented).await else {
            panic!("tap served a caller presenting {presented:?}");
        };
        assert_eq!(status, 401, "{presented:?}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains("API token"), "{error}");
    }
    let Err((status, _)) = TapStream::open(web, &format!("{query}&token=not-{token}"), None).await
    else {
        panic!("a wrong ?token= was served");
    };
    assert_eq!(status, 401);

    // With the token: the query is checked, then the targets.
    let cases = [
        (
            "kind=workload&namespace=demo&name=nothing",
            404,
            "workload/demo/nothing",
        ),
        (
            "kind=service&namespace=demo&name=web",
            404,
            "service/demo/web",
        ),
        (
            "kind=namespace&namespace=elsewhere",
            404,
            "namespace/elsewhere",
        ),
        ("kind=pod&namespace=demo&name=web", 400, "pod"),
        ("kind=workload&namespace=demo", 400, "name"),
        (
            "kind=workload&namespace=demo&name=web&max_rps=0",
            400,
            "max_rps",
        ),
    ];
    for (query, expected_status, mentions) in cases {
        let Err((status, body)) = TapStream::open(web, query, Some(&token)).await else {
            panic!("{query}: expected {expected_status}");
        };
        assert_eq!(status, expected_status, "{query}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(mentions), "{query}: {error}");
    }
    // With the header, a target that exists streams (even though its proxy
    // does not answer); the right token in the URL is refused all the same.
    assert!(TapStream::open(web, query, Some(&token)).await.is_ok());
    let Err((status, body)) = TapStream::open(web, &format!("{query}&token={token}"), None).await
    else {
        panic!("the token was taken from the URL");
    };
    assert_eq!(status, 401);
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("not taken from the URL"), "{error}");
    let metrics = controller.metrics_text();
    assert!(
        metrics.contains("weft_controller_tap_unauthorized_total 5"),
        "{metrics}"
    );

    // The same file is read on the next start.
    let mut controller = controller;
    controller.restart();
    assert!(
        TapStream::open(controller.web_addr(), query, Some(&token))
            .await
            .is_ok()
    );
}

/// A tap server that records every Observe and answers each with `limit`
/// inbound requests from `client_identity`, then ends the stream.
#[derive(Clone)]
struct FakeTap {
    own: SocketAddr,
    client_identity: String,
    limits: Arc<Mutex<Vec<u32>>>,
    /// Send nothing; count the streams whose client went away.
    silent: Option<Arc<AtomicUsize>>,
}

#[tonic::async_trait]
impl Tap for FakeTap {
    type ObserveStream = ReceiverStream<Result<TapEvent, Status>>;

    async fn observe(
        &self,
        request: Request<ObserveRequest>,
    ) -> Result<Response<Self::ObserveStream>, Status> {
        let request = request.into_inner();
        if request.r#match.is_none() {
            return Err(Status::invalid_argument("match is required"));
        }
        self.limits
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(request.limit);
        let (sender, receiver) = tokio::sync::mpsc::channel(16);
        let fake = self.clone();
        if let Some(closed) = &self.silent {
            let closed = Arc::clone(closed);
            tokio::spawn(async move {
                sender.closed().await;
                closed.fetch_add(1, Ordering::Relaxed);
            });
            return Ok(Response::new(ReceiverStream::new(receiver)));
        }
        tokio::spawn(async move {
            for stream in 0..u64::from(request.limit) {
                let event = TapEvent {
                    source: Some(tcp("127.0.0.1:50000")),
                    source_meta: Some(EndpointMeta {
                        labels: [
                            ("tls".to_string(), "true".to_string()),
                            ("client_id".to_string(), fake.client_identity.clone()),
                        ]
                        .into(),
                    }),
                    route_meta: None,
                    destination: Some(tcp(&fake.own.to_string())),
                    destination_meta: None,
                    proxy_direction: ProxyDirection::Inbound as i32,
                    event: Some(Event::Http(Http {
                        event: Some(HttpEvent::RequestInit(RequestInit {
                            id: Some(StreamId { base: 7, stream }),
                            method: Some(HttpMethod::from(axum::http::Method::GET)),
                            scheme: None,
                            authority: "fake:80".into(),
                            path: "/fake".into(),
                            headers: None,
                        })),
                    })),
                };
                if sender.send(Ok(event)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(receiver)))
    }
}

fn tcp(address: &str) -> TcpAddress {
    let address: SocketAddr = address.parse().unwrap();
    TcpAddress {
        ip: Some(address.ip().into()),
        port: u32::from(address.port()),
    }
}

async fn start_fake(client_identity: &str) -> (SocketAddr, Arc<Mutex<Vec<u32>>>) {
    start_fake_with(client_identity, None).await
}

async fn start_fake_with(
    client_identity: &str,
    silent: Option<Arc<AtomicUsize>>,
) -> (SocketAddr, Arc<Mutex<Vec<u32>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let own = listener.local_addr().unwrap();
    let limits = Arc::new(Mutex::new(Vec::new()));
    let fake = FakeTap {
        own,
        client_identity: client_identity.to_string(),
        limits: Arc::clone(&limits),
        silent,
    };
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TapServer::new(fake))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    (own, limits)
}

#[tokio::test(flavor = "multi_thread")]
async fn tap_fans_out_shares_the_rate_and_names_both_ends() {
    // Two fake proxies; each says its requests come from the other workload.
    let (tap_a, limits_a) = start_fake("b.demo.serviceaccount.identity.weft.cluster.local").await;
    let (tap_b, limits_b) = start_fake("a.demo.serviceaccount.identity.weft.cluster.local").await;
    let ports = |tap: SocketAddr| ProxyPorts {
        inbound: free_addr(),
        admin: free_addr(),
        tap,
    };
    let mesh = format!(
        "---\n{}---\n{}",
        workload_yaml("a", "a", tap_a.port(), ports(tap_a)),
        workload_yaml("b", "b", tap_b.port(), ports(tap_b)),
    );
    let token_file = scratch("tap-fanout").join("api-token");
    std::fs::write(&token_file, "fixed-token\n").unwrap();
    let token_arg = token_file.display().to_string();
    let controller = ControllerProcess::start_with_args(&mesh, &["--api-token-file", &token_arg]);

    let mut stream = TapStream::open(
        controller.web_addr(),
        "kind=namespace&namespace=demo&max_rps=10",
        Some("fixed-token"),
    )
    .await
    .expect("tap accepted");
    // Enough events for both proxies to have been observed at least twice.
    let mut events = Vec::new();
    while limits_a
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .len()
        < 3
        || limits_b
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
            < 3
    {
        let event = stream.next(PATIENCE).await.expect("events keep coming");
        events.push(event);
    }

    // The rate is shared: 10 rps over two proxies, 5 per Observe, re-issued.
    for limits in [&limits_a, &limits_b] {
        let limits = limits
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        assert!(limits.iter().all(|limit| *limit == 5), "{limits:?}");
    }
    // Every line is a request event naming both workloads; ids are unique
    // per Observe call across proxies, at most `limit` requests per call.
    let mut per_call: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for event in &events {
        assert_eq!(event["type"], "req", "{event}");
        assert_eq!(event["proxy"], "in");
        assert_eq!(event["tls"], "true");
        assert_eq!(event["method"], "GET");
        assert_eq!(event["path"], "/fake");
        let tapped = if event["destination"] == tap_a.to_string().as_str() {
            ("a", "b")
        } else {
            ("b", "a")
        };
        assert_eq!(
            event["dst"],
            serde_json::json!({"namespace": NAMESPACE, "workload": tapped.0}),
            "{event}"
        );
        assert_eq!(
            event["src"],
            serde_json::json!({"namespace": NAMESPACE, "workload": tapped.1}),
            "{event}"
        );
        let id = event["id"].as_str().unwrap();
        let (call, _) = id.split_once(':').unwrap();
        per_call
            .entry(call.to_string())
            .or_default()
            .insert(format!("{}-{id}", tapped.0));
    }
    for (call, ids) in &per_call {
        assert!(ids.len() <= 5, "call {call}: {ids:?}");
        let proxies: BTreeSet<&str> = ids.iter().map(|id| &id[..1]).collect();
        assert_eq!(proxies.len(), 1, "call {call} mixes proxies: {ids:?}");
    }
    assert!(per_call.len() >= 4, "{per_call:?}");

    // The client leaves: the controller stops observing.
    drop(stream);
    let settled =
        |limits: &Arc<Mutex<Vec<u32>>>| limits.lock().unwrap_or_else(PoisonError::into_inner).len();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = (settled(&limits_a), settled(&limits_b));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        (settled(&limits_a), settled(&limits_b)),
        after,
        "Observe is still re-issued after the client left"
    );
    let metrics = controller.metrics_text();
    assert!(
        metrics.contains("weft_controller_tap_sessions 0"),
        "{metrics}"
    );
}

/// A tap with no traffic holds an idle stream: when its client leaves, the
/// session ends and the Observe stream to the proxy is cancelled all the same.
#[tokio::test(flavor = "multi_thread")]
async fn an_idle_tap_ends_when_its_client_leaves() {
    let closed = Arc::new(AtomicUsize::new(0));
    let (tap, limits) = start_fake_with("", Some(Arc::clone(&closed))).await;
    let ports = ProxyPorts {
        inbound: free_addr(),
        admin: free_addr(),
        tap,
    };
    let mesh = format!(
        "---\n{}",
        workload_yaml("quiet", "quiet", tap.port(), ports)
    );
    let token_file = scratch("tap-idle").join("api-token");
    std::fs::write(&token_file, "idle-token\n").unwrap();
    let token_arg = token_file.display().to_string();
    let controller = ControllerProcess::start_with_args(&mesh, &["--api-token-file", &token_arg]);
    let stream = TapStream::open(
        controller.web_addr(),
        "kind=workload&namespace=demo&name=quiet",
        Some("idle-token"),
    )
    .await
    .expect("tap accepted");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while limits
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .is_empty()
    {
        assert!(tokio::time::Instant::now() < deadline, "never observed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        limits
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_slice(),
        [100],
        "the default max_rps, one proxy"
    );
    assert_eq!(
        controller.metric("weft_controller_tap_sessions", &[]),
        Some(1.0)
    );
    drop(stream);
    while closed.load(Ordering::Relaxed) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the Observe stream outlived its client"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        controller.metric("weft_controller_tap_sessions", &[]),
        Some(0.0)
    );
}

/// Requests between two real proxies: the server's inbound view and the
/// client's outbound view, and `max_rps` holding each Observe to its limit.
#[tokio::test(flavor = "multi_thread")]
async fn tap_shows_live_requests_between_real_proxies() {
    let demo = tokio::task::spawn_blocking(|| DemoMesh::start("tap-real"))
        .await
        .unwrap();
    let web = demo.web_addr();

    // The server side: requests arrive from demo/traffic over mTLS.
    let opened = std::time::Instant::now();
    let mut inbound = TapStream::open(
        web,
        "kind=workload&namespace=demo&name=web&max_rps=50",
        Some(&demo.token),
    )
    .await
    .expect("tap accepted");
    let first = inbound.next(PATIENCE).await.expect("a first event");
    println!("first tap event {:?} after opening", opened.elapsed());
    let mut events = vec![first];
    events.extend(inbound.collect_for(Duration::from_secs(3)).await);
    let requests: Vec<&Value> = events.iter().filter(|e| e["type"] == "req").collect();
    assert!(!requests.is_empty(), "no requests tapped: {events:?}");
    println!(
        "max_rps=50 on one proxy: {} requests tapped in about 3 s",
        requests.len()
    );
    for request in &requests {
        assert_eq!(request["proxy"], "in", "{request}");
        assert_eq!(request["method"], "GET");
        assert_eq!(request["path"], "/");
        assert_eq!(request["tls"], "true", "{request}");
        assert_eq!(
            request["src"],
            serde_json::json!({"namespace": "demo", "workload": "traffic"})
        );
        assert_eq!(
            request["dst"],
            serde_json::json!({"namespace": "demo", "workload": "web"})
        );
    }
    let responses: Vec<&Value> = events.iter().filter(|e| e["type"] == "rsp").collect();
    assert!(
        responses.iter().any(|response| response["status"] == 200),
        "{events:?}"
    );
    assert!(events.iter().any(|e| e["type"] == "end"), "{events:?}");
    drop(inbound);

    // Service web selects demo/web: the same inbound view.
    let mut service = TapStream::open(
        web,
        "kind=service&namespace=demo&name=web",
        Some(&demo.token),
    )
    .await
    .expect("tap accepted");
    let event = service.next(PATIENCE).await.expect("an event");
    assert_eq!(event["dst"]["workload"], "web", "{event}");
    drop(service);

    // The client side, only requests to demo/web, at most 2 per Observe call.
    let mut outbound = TapStream::open(
        web,
        "kind=workload&namespace=demo&name=traffic&to=workload/demo/web&max_rps=2",
        Some(&demo.token),
    )
    .await
    .expect("tap accepted");
    let mut events = vec![outbound.next(PATIENCE).await.expect("a first event")];
    events.extend(outbound.collect_for(Duration::from_secs(4)).await);
    let requests: Vec<&Value> = events.iter().filter(|e| e["type"] == "req").collect();
    assert!(
        !requests.is_empty(),
        "no outbound requests tapped: {events:?}"
    );
    let mut per_call: BTreeMap<&str, usize> = BTreeMap::new();
    for request in &requests {
        assert_eq!(request["proxy"], "out", "{request}");
        assert_eq!(
            request["src"],
            serde_json::json!({"namespace": "demo", "workload": "traffic"})
        );
        assert_eq!(
            request["dst"],
            serde_json::json!({"namespace": "demo", "workload": "web"}),
            "{request}"
        );
        let call = request["id"].as_str().unwrap().split(':').next().unwrap();
        *per_call.entry(call).or_default() += 1;
    }
    assert!(
        per_call.values().all(|count| *count <= 2),
        "max_rps=2 over one proxy allows 2 requests per Observe: {per_call:?}"
    );
    println!(
        "tapped {} outbound requests in {} Observe calls",
        requests.len(),
        per_call.len()
    );
}

/// `--tap-tls always`: the controller taps over mutual TLS with its own
/// certificate, so a proxy serving tap to another identity refuses it
/// (over plaintext loopback it would have been served).
#[tokio::test(flavor = "multi_thread")]
async fn tap_over_mutual_tls_presents_the_controller_identity() {
    let query = "kind=workload&namespace=demo&name=web";
    let demo = tokio::task::spawn_blocking(|| {
        DemoMesh::start_with(
            "tap-tls",
            &["--tap-tls", "always"],
            crate::mesh::CONTROLLER_IDENTITY,
        )
    })
    .await
    .unwrap();
    let mut stream = TapStream::open(demo.web_addr(), query, Some(&demo.token))
        .await
        .expect("tap accepted");
    let event = stream.next(PATIENCE).await.expect("events over TLS");
    assert_eq!(event["dst"]["workload"], "web", "{event}");
    drop(stream);
    drop(demo);

    let demo = tokio::task::spawn_blocking(|| {
        DemoMesh::start_with(
            "tap-tls-refused",
            &["--tap-tls", "always"],
            "someone-else.weft.serviceaccount.identity.weft.cluster.local",
        )
    })
    .await
    .unwrap();
    let mut stream = TapStream::open(demo.web_addr(), query, Some(&demo.token))
        .await
        .expect("tap accepted");
    assert_eq!(stream.next(Duration::from_secs(3)).await, None);
    let errors = demo
        .controller
        .metric("weft_controller_tap_proxy_errors_total", &[])
        .unwrap_or(0.0);
    assert!(errors >= 1.0, "the refused Observe calls are counted");
}
