//! An identity service that hands out certificates the proxy cannot use: a
//! leaf for a key of its own making (it names the proxy's identity and chains
//! to the trust anchors, but does not match the proxy's private key).
//!
//! ```text
//! weft-proxy ──Certify{CSR}──► fake Identity (tonic, rcgen CA)
//!                 ◄── leaf for another key (bad) | leaf signed from the CSR (good)
//! admin /ready, identity_cert_refresh_total{result}
//! ```
//!
//! The proxy must stay not ready and count the refusals while the answers
//! are bad, become ready after a good one, and keep its good certificate
//! (still ready) while later renewals are bad, retrying them within seconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use linkerd2_proxy_api::identity as proto;
use linkerd2_proxy_api::identity::identity_server::{Identity, IdentityServer};
use weft_test_support::ProxyProcess;

const IDENTITY: &str = "web.shop.serviceaccount.identity.weft.cluster.local";
const TOKEN: &[u8] = b"token-for-web";
/// A good leaf's lifetime: short, so a renewal comes within the test.
const GOOD_LIFETIME: time::Duration = time::Duration::seconds(6);

/// A CA and whether its answers are currently good.
struct FakeIdentity {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    good: Arc<AtomicBool>,
    calls: Arc<AtomicUsize>,
}

impl FakeIdentity {
    fn leaf(&self, csr_der: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let csr_der = rustls::pki_types::CertificateSigningRequestDer::from(csr_der.to_vec());
        let mut csr = rcgen::CertificateSigningRequestParams::from_der(&csr_der)?;
        let now = time::OffsetDateTime::now_utc();
        csr.params.not_before = now - time::Duration::seconds(5);
        csr.params.not_after = now + GOOD_LIFETIME;
        csr.params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        Ok(csr.signed_by(&self.issuer)?.der().to_vec())
    }

    /// A leaf naming `IDENTITY`, signed by the CA, for a fresh key that is
    /// not the proxy's.
    fn leaf_for_another_key(&self) -> Result<Vec<u8>, rcgen::Error> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = rcgen::CertificateParams::new(vec![IDENTITY.to_string()])?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, IDENTITY);
        let csr = params.serialize_request(&key)?;
        self.leaf(csr.der())
    }
}

#[tonic::async_trait]
impl Identity for FakeIdentity {
    async fn certify(
        &self,
        request: tonic::Request<proto::CertifyRequest>,
    ) -> Result<tonic::Response<proto::CertifyResponse>, tonic::Status> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let request = request.into_inner();
        if request.token != TOKEN || request.identity != IDENTITY {
            return Err(tonic::Status::failed_precondition("unknown workload"));
        }
        let leaf = if self.good.load(Ordering::Relaxed) {
            self.leaf(&request.certificate_signing_request)
        } else {
            self.leaf_for_another_key()
        }
        .map_err(|error| tonic::Status::internal(error.to_string()))?;
        Ok(tonic::Response::new(proto::CertifyResponse {
            leaf_certificate: leaf,
            intermediate_certificates: Vec::new(),
            valid_until: None,
        }))
    }
}

/// A self-signed root: its issuer and its certificate in PEM.
fn certificate_authority() -> (rcgen::Issuer<'static, rcgen::KeyPair>, String) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "identity.weft.cluster.local");
    let pem = params.self_signed(&key).unwrap().pem();
    (rcgen::Issuer::new(params, key), pem)
}

fn ready_status(proxy: &ProxyProcess) -> u16 {
    proxy
        .admin_get("/ready")
        .map_or(0, |response| response.status)
}

fn invalid_certificates(proxy: &ProxyProcess) -> f64 {
    proxy.metric_or_zero(
        "identity_cert_refresh_total",
        &[("result", "invalid_certificate")],
    )
}

/// Polls `condition` until it holds or `timeout` passes, asserting that
/// `invariant` holds at every poll.
fn wait_until(
    what: &str,
    timeout: Duration,
    mut invariant: impl FnMut() -> Result<(), String>,
    mut condition: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + timeout;
    loop {
        if let Err(broken) = invariant() {
            panic!("while waiting for {what}: {broken}");
        }
        if condition() {
            return;
        }
        assert!(Instant::now() < deadline, "{what} within {timeout:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_key_is_refused_until_a_good_one_arrives() {
    let (issuer, anchor_pem) = certificate_authority();
    let good = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let identity_addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(IdentityServer::new(FakeIdentity {
                issuer,
                good: good.clone(),
                calls: calls.clone(),
            }))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let token_dir = weft_e2e::scratch_dir("identity-attack");
    let token_path = token_dir.join("token");
    std::fs::write(&token_path, TOKEN).unwrap();

    let proxy = tokio::task::spawn_blocking(move || {
        ProxyProcess::builder()
            .env("WEFT_PROXY_IDENTITY_SVC_ADDR", identity_addr.to_string())
            .env(
                "WEFT_PROXY_IDENTITY_TOKEN_FILE",
                token_path.display().to_string(),
            )
            .env("WEFT_PROXY_IDENTITY_LOCAL_NAME", IDENTITY)
            .env("WEFT_PROXY_IDENTITY_TRUST_ANCHORS", anchor_pem)
            .spawn_unready()
    })
    .await
    .unwrap();

    let check = tokio::task::spawn_blocking(move || {
        // Bad answers: refused, counted, retried; never ready.
        wait_until(
            "three refused certificates",
            Duration::from_secs(30),
            || match ready_status(&proxy) {
                200 => Err(format!(
                    "ready with a certificate for another key\n{}",
                    proxy.log()
                )),
                _ => Ok(()),
            },
            || invalid_certificates(&proxy) >= 3.0,
        );
        assert_eq!(ready_status(&proxy), 503);
        assert_eq!(
            proxy.metric_or_zero("identity_cert_refresh_total", &[("result", "ok")]),
            0.0
        );
        assert!(
            !proxy
                .log()
                .contains("keeping the previous TLS configuration"),
            "{}",
            proxy.log()
        );

        // A good answer: ready.
        good.store(true, Ordering::Relaxed);
        wait_until(
            "ready after a good certificate",
            Duration::from_secs(40),
            || Ok(()),
            || ready_status(&proxy) == 200,
        );
        assert_eq!(
            proxy.metric_or_zero("identity_cert_refresh_total", &[("result", "ok")]),
            1.0
        );

        // Bad renewals after a good certificate: the good one stays (ready),
        // and the renewal is retried within seconds, not at the next 70 %.
        let refused_before = invalid_certificates(&proxy);
        good.store(false, Ordering::Relaxed);
        wait_until(
            "renewals refused and retried",
            Duration::from_secs(20),
            || match ready_status(&proxy) {
                200 => Ok(()),
                other => Err(format!("not ready ({other}) while holding a good one")),
            },
            || invalid_certificates(&proxy) >= refused_before + 2.0,
        );
        proxy
    });
    let proxy = check.await.unwrap();
    assert!(calls.load(Ordering::Relaxed) >= 6, "{}", proxy.log());
    let _ = std::fs::remove_dir_all(token_dir);
}
