//! The identity client against an in-process identity service that signs
//! CSRs with a test CA: first certificate, renewal before expiry, a refused
//! token, a service that is down at first, and certificates that cannot be
//! used (another key's leaf, another CA's leaf).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use linkerd2_proxy_api::identity as proto;
use linkerd2_proxy_api::identity::identity_server::{Identity, IdentityServer};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

use super::test_ca::TestCa;
use super::*;
use crate::identity::client::LocalKey;
use crate::metrics::identity::IdentityMetrics;
use crate::tls::config::TrustAnchors;

const NAME: &str = "web.shop.serviceaccount.identity.weft.cluster.local";
const TOKEN: &[u8] = b"token-for-web";

struct FakeIdentity {
    ca: TestCa,
    lifetime: Duration,
    calls: Arc<AtomicUsize>,
    /// The first this many answers carry a leaf for a key of the service's
    /// own making instead of the CSR's.
    wrong_key_answers: usize,
}

#[tonic::async_trait]
impl Identity for FakeIdentity {
    async fn certify(
        &self,
        request: Request<proto::CertifyRequest>,
    ) -> Result<Response<proto::CertifyResponse>, Status> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let request = request.into_inner();
        if request.token != TOKEN {
            return Err(Status::failed_precondition("token does not match"));
        }
        if request.identity != NAME {
            return Err(Status::failed_precondition("wrong identity"));
        }
        let call = self.calls.load(Ordering::Relaxed);
        let csr = if call <= self.wrong_key_answers {
            LocalKey::generate(NAME).unwrap().csr_der().to_vec()
        } else {
            request.certificate_signing_request
        };
        let leaf = self
            .ca
            .sign(&csr, self.lifetime)
            .map_err(|error| Status::invalid_argument(error.to_string()))?;
        Ok(Response::new(proto::CertifyResponse {
            leaf_certificate: leaf,
            intermediate_certificates: Vec::new(),
            valid_until: None,
        }))
    }
}

/// Serves a fake identity service issuing leaves of `lifetime` signed by
/// `ca`, the first `wrong_key_answers` for another key; returns its call
/// counter.
async fn serve_with(
    ca: TestCa,
    lifetime: Duration,
    wrong_key_answers: usize,
    listener: tokio::net::TcpListener,
) -> Arc<AtomicUsize> {
    let calls = Arc::new(AtomicUsize::new(0));
    let service = FakeIdentity {
        ca,
        lifetime,
        calls: calls.clone(),
        wrong_key_answers,
    };
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(IdentityServer::new(service))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    calls
}

/// A fake identity service with a CA of its own; returns the call counter
/// and the CA's trust anchors.
async fn serve(
    lifetime: Duration,
    listener: tokio::net::TcpListener,
) -> (Arc<AtomicUsize>, TrustAnchors) {
    let ca = TestCa::new();
    let anchors = TrustAnchors::new(&[ca.anchor_der()]).unwrap();
    (serve_with(ca, lifetime, 0, listener).await, anchors)
}

fn settings(
    addr: std::net::SocketAddr,
    token_file: std::path::PathBuf,
    trust_anchors: TrustAnchors,
) -> IdentitySettings {
    IdentitySettings {
        service_addr: addr.to_string(),
        token_file,
        local_name: NAME.to_string(),
        tls: None,
        trust_anchors,
    }
}

fn token_file(contents: &[u8]) -> (tempfile_dir::Dir, std::path::PathBuf) {
    let dir = tempfile_dir::Dir::new();
    let path = dir.path().join("token");
    std::fs::write(&path, contents).unwrap();
    (dir, path)
}

/// A temporary directory removed on drop (no extra crate needed).
mod tempfile_dir {
    pub(super) struct Dir(std::path::PathBuf);
    impl Dir {
        pub(super) fn new() -> Dir {
            let path = std::env::temp_dir().join(format!(
                "weft-identity-test-{}-{}",
                std::process::id(),
                rand_suffix()
            ));
            std::fs::create_dir_all(&path).unwrap();
            Dir(path)
        }
        pub(super) fn path(&self) -> &std::path::Path {
            &self.0
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    fn rand_suffix() -> u64 {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        NEXT.fetch_add(1, Ordering::Relaxed)
    }
}

async fn wait_for_credentials(
    receiver: &mut tokio::sync::watch::Receiver<Option<Arc<Credentials>>>,
    within: Duration,
) -> Arc<Credentials> {
    tokio::time::timeout(within, receiver.wait_for(Option::is_some))
        .await
        .expect("credentials in time")
        .unwrap()
        .clone()
        .unwrap()
}

#[tokio::test]
async fn obtains_and_renews_its_certificate() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (calls, anchors) = serve(Duration::from_secs(2), listener).await;
    let (_dir, token) = token_file(TOKEN);
    let mut registry = prometheus_client::registry::Registry::default();
    let mut receiver = spawn(
        settings(addr, token, anchors),
        IdentityMetrics::new(&mut registry),
    )
    .unwrap();

    let first = wait_for_credentials(&mut receiver, Duration::from_secs(5)).await;
    assert_eq!(first.local_name, NAME);
    assert!(first.valid_until > SystemTime::now());
    assert!(!first.private_key_der.is_empty());

    // Renewed at 70 % of a 2 s lifetime: a new leaf, the same key.
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), receiver.changed())
        .await
        .expect("renewed in time")
        .unwrap();
    let second = receiver.borrow().clone().unwrap();
    assert_ne!(second.leaf_der, first.leaf_der);
    assert_eq!(second.private_key_der, first.private_key_der);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(calls.load(Ordering::Relaxed) >= 2);
    let text = crate::metrics::encode(&registry);
    assert!(
        text.contains("identity_cert_refresh_total{result=\"ok\"}"),
        "{text}"
    );
    assert!(
        !text.contains("identity_cert_expiration_timestamp_seconds 0"),
        "{text}"
    );
}

#[tokio::test]
async fn a_refused_token_gets_no_certificate_and_is_retried() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (calls, anchors) = serve(Duration::from_secs(60), listener).await;
    let (_dir, token) = token_file(b"someone else's token");
    let mut registry = prometheus_client::registry::Registry::default();
    let mut receiver = spawn(
        settings(addr, token.clone(), anchors),
        IdentityMetrics::new(&mut registry),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.borrow().is_none());
    assert!(calls.load(Ordering::Relaxed) >= 1);
    assert!(
        crate::metrics::encode(&registry).contains("identity_cert_refresh_total{result=\"error\"}")
    );
    // The token file is read again on the next attempt.
    std::fs::write(&token, TOKEN).unwrap();
    wait_for_credentials(&mut receiver, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_service_that_starts_late_is_waited_for() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let (_dir, token) = token_file(TOKEN);
    let ca = TestCa::new();
    let anchors = TrustAnchors::new(&[ca.anchor_der()]).unwrap();
    let mut registry = prometheus_client::registry::Registry::default();
    let mut receiver = spawn(
        settings(addr, token, anchors),
        IdentityMetrics::new(&mut registry),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(receiver.borrow().is_none());
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    serve_with(ca, Duration::from_secs(60), 0, listener).await;
    wait_for_credentials(&mut receiver, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_leaf_for_another_key_is_refused_and_retried() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let ca = TestCa::new();
    let anchors = TrustAnchors::new(&[ca.anchor_der()]).unwrap();
    let calls = serve_with(ca, Duration::from_secs(60), 2, listener).await;
    let (_dir, token) = token_file(TOKEN);
    let mut registry = prometheus_client::registry::Registry::default();
    let mut receiver = spawn(
        settings(addr, token, anchors),
        IdentityMetrics::new(&mut registry),
    )
    .unwrap();
    // Two wrong answers (retried after 1 s, then 2 s), then a good one.
    let credentials = wait_for_credentials(&mut receiver, Duration::from_secs(10)).await;
    assert_eq!(calls.load(Ordering::Relaxed), 3);
    assert!(!credentials.leaf_der.is_empty());
    let text = crate::metrics::encode(&registry);
    assert!(
        text.contains("identity_cert_refresh_total{result=\"invalid_certificate\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("identity_cert_refresh_total{result=\"ok\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn a_leaf_from_another_ca_is_never_published() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (calls, _their_anchors) = serve(Duration::from_secs(60), listener).await;
    let ours = TrustAnchors::new(&[TestCa::new().anchor_der()]).unwrap();
    let (_dir, token) = token_file(TOKEN);
    let mut registry = prometheus_client::registry::Registry::default();
    let receiver = spawn(
        settings(addr, token, ours),
        IdentityMetrics::new(&mut registry),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while calls.load(Ordering::Relaxed) < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(calls.load(Ordering::Relaxed) >= 2, "retried");
    assert!(receiver.borrow().is_none());
    assert!(
        crate::metrics::encode(&registry)
            .contains("identity_cert_refresh_total{result=\"invalid_certificate\"}")
    );
}
