//! Abuse of the proxy injector's listener (`--injector-addr`) on the real
//! `weft-controller` binary: anyone who reaches the port may talk to it (the
//! API server presents no client certificate), so each bound is held here;
//! and its certificate: both Service names, [leaf, issuer], TLS 1.2 and 1.3,
//! `http/1.1` and `h2`, issued again when the issuer is rotated.
//!
//! ```text
//! test ──plaintext / TLS (anchors as the only CA, SNI weft-proxy-injector.weft.svc)──► injector
//!      ◄── 413 unread, 405, 404, 400 "malformed AdmissionReview: …", closed when slow or over the cap
//! ```

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::eventually;
use weft_test_support::tls_client::{TlsStream, client_config, handshake};
use weft_test_support::{ControllerProcess, free_addr};

/// Generous bound for anything that should be quick.
const PATIENCE: Duration = Duration::from_secs(20);
/// The name the API server dials (the Service in the control namespace).
const SERVER_NAME: &str = "weft-proxy-injector.weft.svc";
const MESH: &str = "
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
";

/// A controller with identity and the injector on a free port.
fn controller() -> (ControllerProcess, SocketAddr) {
    let injector = free_addr();
    let controller = ControllerProcess::start_with_identity_args(
        MESH,
        &["--injector-addr", &injector.to_string()],
    );
    (controller, injector)
}

/// A TLS client trusting only the controller's anchors, as the API server
/// with caBundle.
fn api_server_tls(controller: &ControllerProcess) -> Arc<rustls::ClientConfig> {
    client_config(
        &controller.trust_anchors_pem(),
        rustls::DEFAULT_VERSIONS,
        &[b"http/1.1"],
    )
}

/// A verified TLS connection to the injector.
fn connect(controller: &ControllerProcess, injector: SocketAddr) -> TlsStream {
    handshake(injector, SERVER_NAME, api_server_tls(controller), PATIENCE)
        .expect("TLS handshake with the injector")
}

/// Sends `head` (and `body`) and reads the answer until the server closes
/// or the response is complete: (status, body).
fn exchange(tls: &mut TlsStream, head: &str, body: &[u8]) -> (u16, String) {
    tls.write_all(head.as_bytes()).unwrap();
    tls.write_all(body).unwrap();
    tls.flush().unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        match tls.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => {
                received.extend_from_slice(&buffer[..read]);
                if complete(&received) {
                    break;
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(error) => panic!("reading the answer: {error}"),
        }
    }
    let text = String::from_utf8_lossy(&received).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Whether `received` holds a whole response (by its Content-Length).
fn complete(received: &[u8]) -> bool {
    let text = String::from_utf8_lossy(received);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    head.lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .is_some_and(|length| body.len() >= length)
}

fn post(length: usize) -> String {
    format!(
        "POST /inject HTTP/1.1\r\nHost: {SERVER_NAME}\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\n\r\n"
    )
}

fn refused(controller: &ControllerProcess, reason: &str) -> f64 {
    controller
        .metric(
            "weft_controller_injector_refused_total",
            &[("reason", reason)],
        )
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injector_answers_only_post_inject_with_a_bounded_body() {
    let (controller, injector) = controller();

    // A real review: answered over TLS verified with the anchors alone.
    let review = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/injector/deployment-pod.review.json"),
    )
    .unwrap();
    let (status, body) = exchange(
        &mut connect(&controller, injector),
        &post(review.len()),
        &review,
    );
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["response"]["allowed"], true);
    // No namespace annotations in a mesh file: nothing requested.
    assert!(answer["response"]["patch"].is_null(), "{answer}");

    // Other methods and paths.
    let (status, _) = exchange(
        &mut connect(&controller, injector),
        &format!("GET /inject HTTP/1.1\r\nHost: {SERVER_NAME}\r\n\r\n"),
        b"",
    );
    assert_eq!(status, 405);
    let (status, _) = exchange(
        &mut connect(&controller, injector),
        &format!("POST /mutate HTTP/1.1\r\nHost: {SERVER_NAME}\r\nContent-Length: 2\r\n\r\n"),
        b"{}",
    );
    assert_eq!(status, 404);

    // Malformed reviews: 400 saying what is wrong.
    let (status, body) = exchange(&mut connect(&controller, injector), &post(8), b"{\"apiVer");
    assert_eq!(status, 400);
    assert!(
        body.starts_with("malformed AdmissionReview: not JSON"),
        "{body}"
    );
    let wrong = br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview"}"#;
    let (status, body) = exchange(
        &mut connect(&controller, injector),
        &post(wrong.len()),
        wrong,
    );
    assert_eq!(status, 400);
    assert!(body.contains("only admission.k8s.io/v1"), "{body}");

    // 100 MiB announced: refused at once, before any of it is read.
    let (status, body) = exchange(
        &mut connect(&controller, injector),
        &post(100 * 1024 * 1024),
        b"",
    );
    assert_eq!(status, 413, "{body}");
    // Chunked past the bound: refused once 3 MiB have come. The answer may
    // be lost to the reset of the unread rest; the count is not.
    let mut tls = connect(&controller, injector);
    tls.write_all(
        format!(
            "POST /inject HTTP/1.1\r\nHost: {SERVER_NAME}\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let chunk = vec![b' '; 64 * 1024];
    for _ in 0..(4 * 16) {
        let written = tls
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .and_then(|()| tls.write_all(&chunk))
            .and_then(|()| tls.write_all(b"\r\n"))
            .and_then(|()| tls.flush());
        if written.is_err() {
            break;
        }
    }
    let mut received = Vec::new();
    let _ = tls.read_to_end(&mut received);
    let answered = String::from_utf8_lossy(&received);
    assert!(
        answered.is_empty() || answered.starts_with("HTTP/1.1 413"),
        "{answered:?}"
    );
    eventually(PATIENCE, "both oversized bodies are counted", || {
        refused(&controller, "too_large") >= 2.0
    })
    .await;

    // Every decision is counted under its label.
    assert_eq!(
        controller.metric(
            "weft_controller_injector_requests_total",
            &[("decision", "malformed")]
        ),
        Some(2.0)
    );
    assert_eq!(
        controller.metric(
            "weft_controller_injector_requests_total",
            &[("decision", "not_requested")]
        ),
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injector_refuses_plaintext_slow_clients_and_connection_floods() {
    let (controller, injector) = controller();

    // Plaintext: the TLS handshake fails; no HTTP answer ever comes.
    let mut plain = TcpStream::connect(injector).unwrap();
    plain.set_read_timeout(Some(PATIENCE)).unwrap();
    plain
        .write_all(b"POST /inject HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        .unwrap();
    let mut received = Vec::new();
    let _ = plain.read_to_end(&mut received);
    assert!(
        !received.starts_with(b"HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&received)
    );
    eventually(PATIENCE, "the handshake failure is counted", || {
        refused(&controller, "handshake") >= 1.0
    })
    .await;

    // A client that never finishes its headers is closed.
    let mut slow = connect(&controller, injector);
    slow.write_all(b"POST /inject HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    slow.flush().unwrap();
    let started = Instant::now();
    let mut received = Vec::new();
    let _ = slow.read_to_end(&mut received);
    assert!(
        started.elapsed() < PATIENCE,
        "the slow client was never closed"
    );
    let text = String::from_utf8_lossy(&received);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text:?}"
    );
    eprintln!("a slow header was closed after {:?}", started.elapsed());

    // More connections than the cap: the extra ones are closed at once.
    let mut held = Vec::new();
    for _ in 0..140 {
        held.push(TcpStream::connect(injector).unwrap());
    }
    eventually(PATIENCE, "connections over the cap are refused", || {
        refused(&controller, "connections") >= 1.0
    })
    .await;
    let refused_now = refused(&controller, "connections");
    eprintln!("{refused_now} of 140 connections refused over the cap");
    drop(held);
    // Once they are gone, the injector answers again.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let review = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#;
        if let Ok(mut tls) = handshake(injector, SERVER_NAME, api_server_tls(&controller), PATIENCE)
        {
            let (status, _) = exchange(&mut tls, &post(review.len()), review);
            assert_eq!(status, 400);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the injector never answered again"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn injector_addr_without_identity_stops_start_up_naming_the_flag() {
    let scratch = crate::common::Scratch::new("injector-no-identity");
    let mesh = scratch.path("mesh.yaml");
    std::fs::write(&mesh, MESH).unwrap();
    let output = crate::common::controller_command(
        crate::common::Source::MeshFile(&mesh),
        free_addr(),
        free_addr(),
    )
    .args(["--injector-addr", "127.0.0.1:0"])
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--injector-addr needs identity"),
        "{stderr}"
    );
}

/// The certificate chain a client offering `versions` and `alpn` gets for
/// `name`, verified against the anchors, and the negotiated protocol.
fn presented(
    controller: &ControllerProcess,
    injector: SocketAddr,
    name: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[u8],
) -> (Vec<Vec<u8>>, Option<Vec<u8>>) {
    let config = client_config(&controller.trust_anchors_pem(), versions, &[alpn]);
    let tls = handshake(injector, name, config, PATIENCE).expect("TLS handshake with the injector");
    let connection = tls.conn;
    let chain = connection
        .peer_certificates()
        .unwrap()
        .iter()
        .map(|certificate| certificate.to_vec())
        .collect();
    (chain, connection.alpn_protocol().map(<[u8]>::to_vec))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injector_certificate_names_the_service_and_follows_the_issuer() {
    let (controller, injector) = controller();
    let qualified = "weft-proxy-injector.weft.svc.cluster.local";
    // TLS 1.2 and 1.3; HTTP/1.1 and HTTP/2; both names; [leaf, issuer].
    let (chain, protocol) = presented(
        &controller,
        injector,
        SERVER_NAME,
        &[&rustls::version::TLS12],
        b"http/1.1",
    );
    assert_eq!(protocol.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(chain.len(), 2, "leaf and issuer");
    let (_, protocol) = presented(
        &controller,
        injector,
        qualified,
        &[&rustls::version::TLS13],
        b"h2",
    );
    assert_eq!(protocol.as_deref(), Some(&b"h2"[..]));
    let (_, leaf) = x509_parser::parse_x509_certificate(&chain[0]).unwrap();
    let names: Vec<String> = leaf
        .subject_alternative_name()
        .unwrap()
        .expect("SANs")
        .value
        .general_names
        .iter()
        .map(|name| name.to_string())
        .collect();
    assert_eq!(
        names,
        [
            format!("DNSName({SERVER_NAME})"),
            format!("DNSName({qualified})")
        ]
    );
    let issuer_before = chain[1].clone();

    // A new issuer: the injector's certificate is issued again at once.
    controller.rotate_issuer();
    eventually(PATIENCE, "the injector presents the new issuer", || {
        let (chain, _) = presented(
            &controller,
            injector,
            SERVER_NAME,
            &[&rustls::version::TLS13],
            b"http/1.1",
        );
        chain[1] != issuer_before
    })
    .await;
}

#[test]
fn injected_resources_kubernetes_would_refuse_stop_start_up() {
    let scratch = crate::common::Scratch::new("injector-resources");
    let mesh = scratch.path("mesh.yaml");
    std::fs::write(&mesh, MESH).unwrap();
    let identity = scratch.path("identity");
    let init = std::process::Command::new(weft_test_support::bin_path("weft-controller"))
        .args(["identity", "init", "--dir"])
        .arg(&identity)
        .output()
        .unwrap();
    assert!(init.status.success(), "{init:?}");
    let output = crate::common::controller_command(
        crate::common::Source::MeshFile(&mesh),
        free_addr(),
        free_addr(),
    )
    .arg("--identity-issuer-dir")
    .arg(identity.join("issuer"))
    .arg("--identity-trust-anchors")
    .arg(identity.join("trust-anchor.pem"))
    .args(["--identity-addr", &free_addr().to_string()])
    .args(["--injector-addr", "127.0.0.1:0"])
    .args(["--proxy-cpu-request", "2", "--proxy-cpu-limit", "500m"])
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(64), "{stderr}");
    assert!(
        stderr.contains("the cpu request 2 is above its limit 500m"),
        "{stderr}"
    );
}
