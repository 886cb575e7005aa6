//! Abuse of the real `weft-controller` binary, through its real interfaces:
//! Destination streams for names that never exist and more streams than a
//! client may hold, mesh files too big or built to explode, Certify calls
//! that are huge, forged or many at once, a Host header carrying markup,
//! and the API token in a URL.
//!
//! ```text
//! test ──tonic (linkerd2-proxy-api)──► Destination / Identity ─┐
//!      ──raw HTTP/1.1────────────────► web (/api/tap, 403 page) ├─ weft-controller (child process)
//!      ──rewrites───────────────────► mesh.yaml ───────────────┘      /metrics, /ready, /proc/PID
//! ```
//!
//! Each test prints the controller's RSS where memory is the point.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::common::{eventually, identity_of};
use futures::future::join_all;
use linkerd2_proxy_api::destination::destination_client::DestinationClient;
use linkerd2_proxy_api::destination::{DestinationProfile, GetDestination, Update};
use linkerd2_proxy_api::identity::CertifyRequest;
use linkerd2_proxy_api::identity::identity_client::IdentityClient;
use rcgen::{CertificateParams, DistinguishedName, KeyPair};
use tonic::transport::Channel;
use tonic::{Code, Streaming};
use weft_test_support::ControllerProcess;

/// Generous bound for anything that should be quick.
const PATIENCE: Duration = Duration::from_secs(20);

/// A service with one meshed workload (which gets an identity token).
const MESH: &str = "
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: web-1, namespace: shop, labels: {app: web}}
spec:
  serviceAccount: web
  addresses: [127.0.0.1]
  ports: [{name: http, port: 8080}]
  meshed: true
";

/// The controller's resident set size, in MiB.
fn rss_mib(controller: &ControllerProcess) -> f64 {
    let pid = controller.pid().expect("the controller runs");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .expect("VmRSS");
    kib / 1024.0
}

async fn destination(controller: &ControllerProcess) -> DestinationClient<Channel> {
    DestinationClient::connect(format!("http://{}", controller.destination_addr()))
        .await
        .expect("connects to the Destination service")
}

fn lookup(name: &str) -> GetDestination {
    GetDestination {
        scheme: "k8s".into(),
        path: format!("{name}.shop.svc.cluster.local:80"),
        context_token: String::new(),
    }
}

/// Opens a Get stream and waits for its first message.
async fn open_get(
    mut client: DestinationClient<Channel>,
    name: String,
) -> Result<Streaming<Update>, tonic::Status> {
    let mut stream = client.get(lookup(&name)).await?.into_inner();
    let first = tokio::time::timeout(PATIENCE, stream.message())
        .await
        .expect("a first update in time")?;
    assert!(first.is_some(), "{name}: the stream ended at once");
    Ok(stream)
}

/// Opens a GetProfile stream and waits for its first message.
async fn open_profile(
    mut client: DestinationClient<Channel>,
    name: String,
) -> Result<Streaming<DestinationProfile>, tonic::Status> {
    let mut stream = client.get_profile(lookup(&name)).await?.into_inner();
    let first = tokio::time::timeout(PATIENCE, stream.message())
        .await
        .expect("a first profile in time")?;
    assert!(first.is_some(), "{name}: the stream ended at once");
    Ok(stream)
}

/// Catalog watches held (endpoints and profiles); panics when the gauge is missing.
fn watches(controller: &ControllerProcess) -> f64 {
    controller
        .metric("weft_controller_destination_watches", &[])
        .expect("the destination_watches gauge is exported")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_for_unknown_names_are_released_when_their_streams_close() {
    let controller = ControllerProcess::start(MESH);
    let client = destination(&controller).await;
    // One watch that stays: a known service with a client.
    let _known = open_get(client.clone(), "web".into()).await.unwrap();
    let baseline = watches(&controller);
    assert_eq!(baseline, 1.0);
    let rss_before = rss_mib(&controller);

    const BATCHES: usize = 4;
    const PER_BATCH: usize = 500;
    for batch in 0..BATCHES {
        let gets = (0..PER_BATCH / 2).map(|index| {
            open_get(
                client.clone(),
                format!("never-{batch}-{index}-{}", "x".repeat(40)),
            )
        });
        let profiles = (0..PER_BATCH / 2).map(|index| {
            open_profile(
                client.clone(),
                format!("never-{batch}-{index}-{}", "y".repeat(40)),
            )
        });
        let (gets, profiles) = tokio::join!(join_all(gets), join_all(profiles));
        let gets: Vec<_> = gets.into_iter().map(Result::unwrap).collect();
        let profiles: Vec<_> = profiles.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            watches(&controller),
            baseline + PER_BATCH as f64,
            "one watch per open stream"
        );
        drop((gets, profiles));
        eventually(PATIENCE, "the batch's watches are released", || {
            watches(&controller) == baseline
        })
        .await;
    }
    let rss_after = rss_mib(&controller);
    println!(
        "RSS: {rss_before:.1} MiB before, {rss_after:.1} MiB after {} streams for distinct unknown names",
        BATCHES * PER_BATCH
    );
    assert_eq!(
        controller.metric("weft_controller_destination_get_streams", &[]),
        Some(1.0)
    );
}

/// A measurement, not a check (`--run-ignored only`): the controller's RSS
/// after each of three rounds of 10,000 Get and GetProfile streams for
/// distinct unknown names, opened and closed 500 at a time. Uses nothing but
/// the wire API, so it runs against any build of the controller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: prints RSS"]
async fn measure_rss_after_ten_thousand_unknown_names() {
    let controller = ControllerProcess::start(MESH);
    let client = destination(&controller).await;
    let mut figures = vec![format!("{:.1}", rss_mib(&controller))];
    for round in 0..3 {
        for batch in 0..20 {
            let name = |index| format!("gone-{round}-{batch}-{index}");
            let gets = (0..250).map(|index| open_get(client.clone(), name(index)));
            let profiles = (0..250).map(|index| open_profile(client.clone(), name(index)));
            let (gets, profiles) = tokio::join!(join_all(gets), join_all(profiles));
            drop((gets, profiles));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        figures.push(format!("{:.1}", rss_mib(&controller)));
    }
    println!(
        "RSS (MiB) at start, then after each round of 10,000 streams for distinct unknown names: {}",
        figures.join(" → ")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_beyond_the_per_client_limit_are_refused_with_resource_exhausted() {
    const LIMIT: usize = 20;
    let controller = ControllerProcess::start_with_args(
        MESH,
        &["--destination-max-streams-per-client", &LIMIT.to_string()],
    );
    let client = destination(&controller).await;
    let mut open = Vec::new();
    for index in 0..LIMIT {
        open.push(
            open_get(client.clone(), format!("name-{index}"))
                .await
                .unwrap(),
        );
    }
    // A second connection from the same address is the same client.
    let other_connection = destination(&controller).await;
    for attempt in [
        open_get(client.clone(), "one-more".into()).await.map(drop),
        open_profile(other_connection, "one-more".into())
            .await
            .map(drop),
    ] {
        let status = attempt.expect_err("a stream beyond the limit is refused");
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert!(
            status
                .message()
                .contains("--destination-max-streams-per-client"),
            "{status:?}"
        );
    }
    assert_eq!(
        controller.metric(
            "weft_controller_destination_streams_refused_total",
            &[("reason", "per_client")]
        ),
        Some(2.0)
    );
    assert!(
        controller.log().contains("Destination stream refused"),
        "the refusal is logged"
    );

    // A stream that closes gives its place back (once the server sees it go).
    open.pop();
    let deadline = Instant::now() + PATIENCE;
    while let Err(status) = open_get(client.clone(), "again".into()).await {
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert!(
            Instant::now() < deadline,
            "the closed stream's place never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_beyond_the_total_limit_are_refused() {
    let controller = ControllerProcess::start_with_args(
        MESH,
        &[
            "--destination-max-streams",
            "5",
            "--destination-max-streams-per-client",
            "100",
        ],
    );
    let client = destination(&controller).await;
    let mut open = Vec::new();
    for index in 0..5 {
        open.push(
            open_get(client.clone(), format!("n-{index}"))
                .await
                .unwrap(),
        );
    }
    let status = open_get(client.clone(), "n-6".into())
        .await
        .expect_err("over the total");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("--destination-max-streams)"),
        "{status:?}"
    );
    assert_eq!(
        controller.metric(
            "weft_controller_destination_streams_refused_total",
            &[("reason", "total")]
        ),
        Some(1.0)
    );
}

/// Writes `text` as the mesh file (write + rename).
fn write_mesh(controller: &ControllerProcess, text: &str) {
    controller.rewrite_mesh(text);
}

/// Waits until the mesh file's failed loads reach `count`; returns `/ready`'s body.
async fn wait_failed_loads(controller: &ControllerProcess, count: u64) -> serde_json::Value {
    let mut body = serde_json::Value::Null;
    eventually(PATIENCE, "the bad mesh file is refused", || {
        body = controller.ready().1;
        body["mesh_file"]["failed_loads"].as_u64() >= Some(count)
    })
    .await;
    body
}

/// The known service still answers with its endpoint.
async fn still_serving(controller: &ControllerProcess) {
    let stream = open_get(destination(controller).await, "web".into())
        .await
        .expect("the last good version serves");
    drop(stream);
    let (status, body) = controller.ready();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["mesh_file"]["current"], false, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_mesh_file_is_refused_and_an_unchanged_one_is_not_parsed_again() {
    let controller = ControllerProcess::start_with_args(MESH, &["--mesh-file-max-bytes", "65536"]);
    let parses = || {
        controller
            .metric("weft_controller_mesh_file_parses_total", &[])
            .expect("mesh_file_parses is exported")
    };
    assert_eq!(parses(), 1.0);

    // Over the limit: refused without being parsed, named with its size.
    let oversized = format!(
        "{MESH}---\napiVersion: v1\nkind: Service\nmetadata:\n  name: big\n  namespace: shop\n  annotations: {{blob: \"{}\"}}\nspec:\n  ports: [{{port: 80}}]\n",
        "a".repeat(70_000)
    );
    write_mesh(&controller, &oversized);
    let body = wait_failed_loads(&controller, 1).await;
    let error = body["mesh_file"]["last_error"].as_str().unwrap();
    let path = controller.mesh_path().display().to_string();
    assert!(error.contains(&path), "{error}");
    assert!(
        error.contains(&format!("{} bytes", oversized.len())),
        "{error}"
    );
    assert!(
        error.contains("over the limit of 65536 bytes (--mesh-file-max-bytes)"),
        "{error}"
    );
    assert_eq!(parses(), 1.0, "an oversized file is not parsed");
    still_serving(&controller).await;

    // Back to the good text: parsed and loaded once.
    write_mesh(&controller, MESH);
    controller.wait_good_loads(2, PATIENCE);
    assert_eq!(parses(), 2.0);
    // The same text written again (a new file, new times): read, not parsed.
    write_mesh(&controller, MESH);
    let touched = std::fs::File::options()
        .append(true)
        .open(controller.mesh_path())
        .unwrap();
    touched.set_modified(std::time::SystemTime::now()).unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(parses(), 2.0, "an unchanged text is not parsed again");
    let (_, body) = controller.ready();
    assert_eq!(body["mesh_file"]["good_loads"], 2, "{body}");
}

/// A YAML bomb, and what the refusal says.
struct Bomb {
    name: &'static str,
    text: String,
    mentions: &'static str,
}

fn bombs() -> Vec<Bomb> {
    // Billion laughs: nine levels of nine aliases each.
    let mut laughs = String::from(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: lol\n  namespace: shop\n  annotations:\n    a0: &a0 \"lol\"\n",
    );
    for level in 1..10 {
        let previous = format!("*a{}", level - 1);
        let list = vec![previous; 9].join(", ");
        laughs.push_str(&format!("    a{level}: &a{level} [{list}]\n"));
    }
    laughs.push_str("spec:\n  ports: [{port: 80}]\n");
    // Deep nesting: 100,000 levels of flow sequences.
    let deep = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: deep, namespace: shop}}\nspec:\n  selector: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    // A huge string: 64 MiB in one scalar.
    let huge = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: huge\n  namespace: shop\n  annotations: {{blob: \"{}\"}}\nspec:\n  ports: [{{port: 80}}]\n",
        "a".repeat(64 * 1024 * 1024)
    );
    // Many documents: 30,000 tiny ones (under the size limit).
    let many: String = (0..30_000)
        .map(|index| {
            format!("---\napiVersion: v1\nkind: Service\nmetadata: {{name: s{index}, namespace: shop}}\nspec: {{ports: [{{port: 80}}]}}\n")
        })
        .collect();
    vec![
        Bomb {
            name: "billion laughs",
            text: format!("{MESH}---\n{laughs}"),
            mentions: "document 3, line 30: alias replay limit exceeded",
        },
        Bomb {
            name: "deep nesting",
            text: format!("{MESH}---\n{deep}"),
            mentions: "document 3, line 23: recursion limit exceeded",
        },
        Bomb {
            name: "huge string",
            text: format!("{MESH}---\n{huge}"),
            mentions: "over the limit of 8388608 bytes (--mesh-file-max-bytes)",
        },
        Bomb {
            name: "many documents",
            text: format!("{MESH}{many}"),
            mentions: "holds 30002 documents, over the limit of 20000 objects (--mesh-file-max-objects)",
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesh_file_bombs_are_refused_quickly_and_in_bounded_memory() {
    let controller = ControllerProcess::start(MESH);
    let rss_at_start = rss_mib(&controller);
    for (index, bomb) in bombs().into_iter().enumerate() {
        let started = Instant::now();
        write_mesh(&controller, &bomb.text);
        let body = wait_failed_loads(&controller, index as u64 + 1).await;
        let error = body["mesh_file"]["last_error"]
            .as_str()
            .unwrap()
            .to_string();
        let rss = rss_mib(&controller);
        println!(
            "{}: refused after {:?}, RSS {rss:.1} MiB (at start {rss_at_start:.1}): {}",
            bomb.name,
            started.elapsed(),
            error.lines().next().unwrap_or_default()
        );
        assert!(error.contains(bomb.mentions), "{}: {error}", bomb.name);
        assert!(
            rss < rss_at_start + 256.0,
            "{}: RSS {rss:.1} MiB",
            bomb.name
        );
        still_serving(&controller).await;
    }
}

/// A CSR for `dns_name` as a proxy makes it: fresh P-256 key, no subject, DER.
fn csr_for(dns_name: &str) -> Vec<u8> {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec![dns_name.to_string()]).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params.serialize_request(&key).unwrap().der().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certify_abuse_fails_cleanly_and_in_bounded_memory() {
    let controller = ControllerProcess::start_with_identity(MESH);
    let address = controller.identity_addr().unwrap();
    let mut client = IdentityClient::connect(format!("http://{address}"))
        .await
        .expect("connects to the Identity service");
    let web = identity_of("shop", "web");
    let token = std::fs::read(controller.token_path("shop", "web-1")).unwrap();
    let certify = |identity: &str, token: Vec<u8>, csr: Vec<u8>| CertifyRequest {
        identity: identity.to_string(),
        token,
        certificate_signing_request: csr,
    };
    let rss_at_start = rss_mib(&controller);

    // A huge CSR: refused by size before anything parses it.
    let huge = vec![0x30; 1024 * 1024];
    let status = client
        .certify(certify(&web, token.clone(), huge))
        .await
        .expect_err("a 1 MiB CSR is refused");
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(status.message().contains("too large"), "{status:?}");
    // Garbage within the size limit: INVALID_ARGUMENT.
    let status = client
        .certify(certify(&web, token.clone(), vec![0x30; 2_000]))
        .await
        .expect_err("garbage CSR");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    // A CSR for another identity (the token proves web): refused, Linkerd's code.
    let other = identity_of("shop", "db");
    let status = client
        .certify(certify(&web, token.clone(), csr_for(&other)))
        .await
        .expect_err("a CSR for another identity");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    // Asking for another identity with web's token.
    let status = client
        .certify(certify(&other, token.clone(), csr_for(&other)))
        .await
        .expect_err("another identity with web's token");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    // Garbage tokens.
    for garbage in [
        b"not a token".to_vec(),
        vec![0xff; 4_000],
        b"a.b.c".to_vec(),
    ] {
        let status = client
            .certify(certify(&web, garbage, csr_for(&web)))
            .await
            .expect_err("a garbage token");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    }

    // Many concurrent calls from one client: every one answered, memory bounded.
    let csr = csr_for(&web);
    let calls = (0..300).map(|index| {
        let mut client = client.clone();
        let request = if index % 2 == 0 {
            certify(&web, token.clone(), csr.clone())
        } else {
            certify(&web, token.clone(), vec![0x30; 60_000])
        };
        async move { client.certify(request).await.map(drop) }
    });
    let started = Instant::now();
    let results = tokio::time::timeout(PATIENCE * 3, join_all(calls))
        .await
        .expect("every call answered in time");
    let issued = results.iter().filter(|result| result.is_ok()).count();
    let refused: Vec<Code> = results
        .iter()
        .filter_map(|result| result.as_ref().err().map(tonic::Status::code))
        .collect();
    assert_eq!(issued, 150);
    assert!(
        refused.iter().all(|code| *code == Code::InvalidArgument),
        "{refused:?}"
    );
    let rss = rss_mib(&controller);
    println!(
        "300 concurrent Certify calls in {:?}; RSS {rss:.1} MiB (at start {rss_at_start:.1})",
        started.elapsed()
    );
    assert!(rss < rss_at_start + 128.0, "RSS {rss:.1} MiB");
}

/// A raw HTTP/1.1 GET with this Host header: (status, body).
async fn raw_get(address: SocketAddr, path: &str, host: &str, extra: &str) -> (u16, String) {
    tokio::time::timeout(
        PATIENCE,
        crate::common::http_get_with(address, path, host, extra),
    )
    .await
    .expect("an answer in time")
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_check_page_escapes_the_host_it_refuses() {
    let controller = ControllerProcess::start(MESH);
    let host = "<script>alert(document.domain)</script>.evil.example";
    let (status, body) = raw_get(controller.web_addr(), "/", host, "").await;
    assert_eq!(status, 403, "{body}");
    assert!(!body.contains("<script>"), "{body}");
    assert!(
        body.contains("&lt;script&gt;alert(document.domain)&lt;/script&gt;.evil.example"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tap_takes_the_token_only_in_the_authorization_header() {
    let token_file = std::env::temp_dir().join(format!(
        "weft-attack-api-token-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    ));
    std::fs::write(&token_file, "attack-token\n").unwrap();
    let token_arg = token_file.display().to_string();
    let controller = ControllerProcess::start_with_args(MESH, &["--api-token-file", &token_arg]);
    let web = controller.web_addr();
    let query = "/api/tap?kind=workload&namespace=shop&name=nothing";
    let host = format!("localhost:{}", web.port());

    let (status, body) = raw_get(web, &format!("{query}&token=attack-token"), &host, "").await;
    assert_eq!(status, 401, "a token in the URL is refused: {body}");
    assert!(body.contains("Authorization"), "{body}");
    assert!(
        !body.contains("?token="),
        "no advice to put it in the URL: {body}"
    );
    // The header still works: the query is then checked (no such workload).
    let (status, body) = raw_get(web, query, &host, "Authorization: Bearer attack-token\r\n").await;
    assert_eq!(status, 404, "{body}");
    let _ = std::fs::remove_file(&token_file);
}

/// A "proxy" whose admin port accepts and never answers (a hung proxy):
/// each scrape gives up at its timeout and closes its connection, so the
/// controller holds at most the one in flight, however many rounds pass.
/// (`bench/` controller-targets measures the harder case: thousands of
/// addresses a middlebox accepts and never acknowledges data on.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_of_a_silent_proxy_do_not_pile_up_connections() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::AsyncReadExt;

    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = silent.local_addr().unwrap();
    let (accepted, open) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (accepted_count, open_count) = (accepted.clone(), open.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut connection, _)) = silent.accept().await else {
                return;
            };
            accepted_count.fetch_add(1, Ordering::SeqCst);
            open_count.fetch_add(1, Ordering::SeqCst);
            let open_count = open_count.clone();
            tokio::spawn(async move {
                // Read the request and anything after it, never answer;
                // the connection counts as open until the controller closes it.
                let mut buffer = [0u8; 4096];
                while matches!(connection.read(&mut buffer).await, Ok(read) if read > 0) {}
                open_count.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    let mesh = format!(
        "{MESH}---\napiVersion: weft.dev/v1alpha1\nkind: Workload\n\
         metadata: {{name: hung, namespace: shop, labels: {{app: hung}}}}\n\
         spec:\n  addresses: [127.0.0.1]\n  meshed: true\n  proxy: {{adminPort: {}}}\n",
        admin.port()
    );
    let _controller = ControllerProcess::start_with_args(&mesh, &["--scrape-interval", "500ms"]);
    // Rounds every 0.5 s, each waiting 0.4 s for an answer that never comes.
    eventually(PATIENCE, "six scrapes of the silent proxy", || {
        accepted.load(Ordering::SeqCst) >= 6
    })
    .await;
    // At most the scrape in flight is open (a closed one may take a moment
    // to be seen); a client keeping them would sit at six and more.
    eventually(PATIENCE, "at most one scrape connection open", || {
        open.load(Ordering::SeqCst) <= 1
    })
    .await;
    println!(
        "silent proxy: {} scrapes accepted, {} connections open",
        accepted.load(Ordering::SeqCst),
        open.load(Ordering::SeqCst)
    );
}
