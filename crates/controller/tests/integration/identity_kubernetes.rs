//! The Identity service on Kubernetes, through the real `weft-controller`
//! binary (`--kubernetes --kubeconfig … --identity-issuer-secret …`) and the
//! real kube client talking HTTP to the test API server
//! (`weft_test_support::kube_api`): ServiceAccount tokens reviewed with
//! TokenReview, the issuer read from a `kubernetes.io/tls` Secret and the
//! anchors from a ConfigMap, both watched. A `linkerd2-proxy-api` Identity
//! client sends Certify as a proxy does; leaves are verified with webpki.
//!
//! ```text
//! test ─ Certify(identity, token, CSR) ─► weft-controller ─ POST tokenreviews ─► KubeApiServer
//!                                              │ watch Secret + ConfigMap ◄───── api.apply(…)
//! ```

use crate::common::{
    ControllerProcess, Scratch, Source, assert_leaf_chains, controller_command, http_get,
    identity_command, identity_of, kubeconfig_for, wait_for_exit,
};

use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use linkerd2_proxy_api::identity::identity_client::IdentityClient;
use linkerd2_proxy_api::identity::{CertifyRequest, CertifyResponse};
use rcgen::{CertificateParams, DistinguishedName, KeyPair};
use serde_json::json;
use tonic::Code;
use tonic::transport::Channel;
use weft_core::cluster::{ISSUER_SECRET, TOKEN_AUDIENCE, TRUST_ANCHORS_CONFIGMAP};
use weft_test_support::kube_api::{KubeApiServer, TokenReviewAnswer, TokenReviewRequest};
use x509_parser::prelude::{FromDer, X509Certificate};

/// Generous bound for start-up and reloads.
const PATIENCE: Duration = Duration::from_secs(20);

/// The controller with identity on, killed on drop (its log printed if
/// the test failed).
struct Controller {
    process: ControllerProcess,
    identity: SocketAddr,
}

impl Controller {
    /// The binary in Kubernetes mode against `api`, identity from the Secret.
    fn command(
        scratch: &Scratch,
        api: &KubeApiServer,
        identity: SocketAddr,
        admin: SocketAddr,
    ) -> Command {
        let kubeconfig = kubeconfig_for(scratch, api);
        let source = Source::Kubernetes {
            kubeconfig: &kubeconfig,
        };
        let mut command = controller_command(source, weft_test_support::free_addr(), admin);
        command
            .env("RUST_LOG", "info")
            .args(["--identity-issuer-secret", ISSUER_SECRET])
            .args(["--identity-addr", &identity.to_string()]);
        command
    }

    /// Starts it and waits for `/ready`.
    async fn start(scratch: &Scratch, api: &KubeApiServer) -> Self {
        let identity = weft_test_support::free_addr();
        let admin = weft_test_support::free_addr();
        let process = ControllerProcess::start(
            &mut Self::command(scratch, api, identity, admin),
            admin,
            Some(scratch.path("controller.log")),
            PATIENCE,
        )
        .await;
        Self { process, identity }
    }

    fn log(&self) -> String {
        self.process.log()
    }

    async fn client(&self) -> IdentityClient<Channel> {
        IdentityClient::connect(format!("http://{}", self.identity))
            .await
            .expect("connects to the Identity service")
    }

    async fn metric(&self, name: &str) -> Option<f64> {
        self.process.metric(name).await
    }
}

/// Credentials made by `weft-controller identity init` / `rotate-issuer`.
struct Credentials {
    anchor_pem: String,
    issuer_pem: String,
    key_pem: String,
}

impl Credentials {
    /// A new trust anchor and issuer in `scratch/<dir>`.
    fn init(scratch: &Scratch, dir: &str) -> Self {
        let state = scratch.path(dir);
        let init = identity_command(&["init", "--dir", state.to_str().unwrap()]);
        assert!(init.status.success(), "{init:?}");
        Self::read(scratch, dir)
    }

    /// A new issuer signed by the same anchor.
    fn rotate(scratch: &Scratch, dir: &str) -> Self {
        let state = scratch.path(dir);
        let rotate = identity_command(&["rotate-issuer", "--dir", state.to_str().unwrap()]);
        assert!(rotate.status.success(), "{rotate:?}");
        Self::read(scratch, dir)
    }

    fn read(scratch: &Scratch, dir: &str) -> Self {
        let read =
            |file: &str| std::fs::read_to_string(scratch.path(&format!("{dir}/{file}"))).unwrap();
        Self {
            anchor_pem: read("trust-anchor.pem"),
            issuer_pem: read("issuer/crt.pem"),
            key_pem: read("issuer/key.pem"),
        }
    }

    fn anchor_der(&self) -> Vec<u8> {
        der(&self.anchor_pem)
    }

    fn issuer_der(&self) -> Vec<u8> {
        der(&self.issuer_pem)
    }
}

fn der(pem: &str) -> Vec<u8> {
    x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes())
        .next()
        .unwrap()
        .unwrap()
        .contents
}

/// The issuer Secret as cert-manager or `weft install` writes it.
fn issuer_secret(certificate: &str, key: &str, ca: Option<&str>) -> serde_json::Value {
    let mut data = json!({
        "tls.crt": STANDARD.encode(certificate),
        "tls.key": STANDARD.encode(key),
    });
    if let Some(ca) = ca {
        data["ca.crt"] = json!(STANDARD.encode(ca));
    }
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": ISSUER_SECRET, "namespace": "weft"},
        "type": "kubernetes.io/tls",
        "data": data,
    })
}

fn trust_roots(bundle: &str) -> serde_json::Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": TRUST_ANCHORS_CONFIGMAP, "namespace": "weft"},
        "data": {"ca-bundle.crt": bundle},
    })
}

/// The TokenReview answers: `sa:<ns>:<name>` tokens are that service
/// account's; a few named tokens exercise the other outcomes. Every request
/// is recorded.
fn review_tokens(api: &KubeApiServer) -> Arc<Mutex<Vec<TokenReviewRequest>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&seen);
    api.set_token_review(move |request: &TokenReviewRequest| {
        recorded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(request.clone());
        match request.token.as_str() {
            "forged" => TokenReviewAnswer::Unauthenticated {
                error: "invalid bearer token".into(),
            },
            "node" => TokenReviewAnswer::Authenticated {
                username: "system:node:worker-1".into(),
                audiences: request.audiences.clone(),
            },
            "other-audience" => TokenReviewAnswer::Authenticated {
                username: "system:serviceaccount:shop:web".into(),
                audiences: vec!["https://kubernetes.default.svc".into()],
            },
            "api-fails" => TokenReviewAnswer::HttpStatus(500),
            "forbidden" => TokenReviewAnswer::HttpStatus(403),
            "hang" => TokenReviewAnswer::Hang,
            token => match token
                .strip_prefix("sa:")
                .and_then(|rest| rest.split_once(':'))
            {
                Some((namespace, name)) => TokenReviewAnswer::Authenticated {
                    username: format!("system:serviceaccount:{namespace}:{name}"),
                    audiences: request.audiences.clone(),
                },
                None => TokenReviewAnswer::Unauthenticated {
                    error: "unknown token".into(),
                },
            },
        }
    });
    seen
}

/// A CSR for `dns_name` as a proxy makes it: fresh P-256 key, no subject, DER.
fn csr_for(dns_name: &str) -> Vec<u8> {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec![dns_name.to_string()]).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params.serialize_request(&key).unwrap().der().to_vec()
}

async fn certify(
    client: &mut IdentityClient<Channel>,
    identity: &str,
    token: &str,
) -> Result<CertifyResponse, tonic::Status> {
    let mut request = tonic::Request::new(CertifyRequest {
        identity: identity.to_string(),
        token: token.as_bytes().to_vec(),
        certificate_signing_request: csr_for(identity),
    });
    // A proxy's deadline: the controller must answer (even with an error) before it.
    request.set_timeout(Duration::from_secs(15));
    client
        .certify(request)
        .await
        .map(tonic::Response::into_inner)
}

/// The leaf chains through the returned issuer to `anchor_der` and names `identity`.
fn assert_chains(response: &CertifyResponse, anchor_der: &[u8], identity: &str) {
    assert_leaf_chains(
        response,
        anchor_der,
        identity,
        [webpki::KeyUsage::client_auth()],
    );
}

/// Polls `/ready` until its `identity` object (as compact JSON text)
/// satisfies `condition`; returns that text.
async fn wait_for_issuer_status(
    controller: &Controller,
    what: &str,
    condition: impl Fn(&str) -> bool,
) -> String {
    let started = Instant::now();
    loop {
        let (_, body) = http_get(controller.process.admin, "/ready").await.unwrap();
        let ready: serde_json::Value = serde_json::from_str(body.trim()).expect("/ready is JSON");
        let identity = ready["identity"].to_string();
        if condition(&identity) {
            return identity;
        }
        assert!(started.elapsed() < PATIENCE, "{what}: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn service_account_tokens_are_reviewed_for_our_audience() {
    let scratch = Scratch::new("k8s-identity-tokens");
    let credentials = Credentials::init(&scratch, "state");
    let api = KubeApiServer::start();
    api.apply(issuer_secret(
        &credentials.issuer_pem,
        &credentials.key_pem,
        None,
    ));
    api.apply(trust_roots(&credentials.anchor_pem));
    let reviews = review_tokens(&api);
    let controller = Controller::start(&scratch, &api).await;
    let mut client = controller.client().await;
    let web = identity_of("shop", "web");
    let db = identity_of("shop", "db");

    // web's ServiceAccount token: a leaf for web, chained to the ConfigMap's anchor.
    let response = certify(&mut client, &web, "sa:shop:web")
        .await
        .expect("web gets its certificate");
    assert_chains(&response, &credentials.anchor_der(), &web);
    assert_eq!(
        response.intermediate_certificates,
        vec![credentials.issuer_der()]
    );
    let (_, leaf) = X509Certificate::from_der(&response.leaf_certificate).unwrap();
    assert!(
        leaf.subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
            .iter()
            .any(|name| name.to_string() == "URI(spiffe://cluster.local/ns/shop/sa/web)"),
        "the SPIFFE ID of the reviewed service account"
    );
    // The review carried the token as sent and our audience alone.
    let first = reviews.lock().unwrap_or_else(PoisonError::into_inner)[0].clone();
    assert_eq!(first.token, "sa:shop:web");
    assert_eq!(first.audiences, vec![TOKEN_AUDIENCE.to_string()]);
    assert!(api.token_reviews() >= 1, "{:?}", api.requests());

    // Every refusal, with the code a proxy sees.
    let cases = [
        (
            "web's token for db's identity",
            db.as_str(),
            "sa:shop:web",
            Code::FailedPrecondition,
            "requested identity did not match provided token",
        ),
        (
            "a token the API does not authenticate",
            web.as_str(),
            "forged",
            Code::FailedPrecondition,
            "authentication token could not be authenticated",
        ),
        (
            "a token for another audience",
            web.as_str(),
            "other-audience",
            Code::FailedPrecondition,
            "authentication token could not be authenticated",
        ),
        (
            "a node's token",
            web.as_str(),
            "node",
            Code::InvalidArgument,
            "is not a service account",
        ),
        (
            "the API fails",
            web.as_str(),
            "api-fails",
            Code::Internal,
            "500",
        ),
        (
            "the controller may not create tokenreviews",
            web.as_str(),
            "forbidden",
            Code::Internal,
            "RBAC",
        ),
        (
            "the API never answers",
            web.as_str(),
            "hang",
            Code::Internal,
            "did not answer the TokenReview",
        ),
    ];
    for (name, identity, token, code, message) in cases {
        let status = certify(&mut client, identity, token).await.expect_err(name);
        assert_eq!(status.code(), code, "{name}: {status:?}");
        assert!(status.message().contains(message), "{name}: {status:?}");
    }
    // The API's own error text is logged, not sent to the proxy.
    assert!(
        controller.log().contains("invalid bearer token"),
        "{}",
        controller.log()
    );

    // db, with its own token, still gets its certificate.
    let response = certify(&mut client, &db, "sa:shop:db")
        .await
        .expect("db gets its certificate");
    assert_chains(&response, &credentials.anchor_der(), &db);

    let (_, metrics) = http_get(controller.process.admin, "/metrics")
        .await
        .unwrap();
    for (reason, count) in [
        ("identity_mismatch", 1),
        ("unauthenticated", 2),
        ("bad_token", 1),
        ("token_validator_error", 3),
    ] {
        let line =
            format!("weft_controller_identity_cert_rejected_total{{reason=\"{reason}\"}} {count}");
        assert!(metrics.contains(&line), "{line}\n{metrics}");
    }
    assert_eq!(
        controller
            .metric("weft_controller_identity_cert_issued_total")
            .await,
        Some(2.0)
    );
}

#[tokio::test]
async fn the_issuer_secret_is_watched_rotations_apply_and_bad_edits_keep_the_old_issuer() {
    let scratch = Scratch::new("k8s-identity-rotation");
    let first = Credentials::init(&scratch, "state");
    let api = KubeApiServer::start();
    // cert-manager's shape: the anchor in ca.crt too.
    api.apply(issuer_secret(
        &first.issuer_pem,
        &first.key_pem,
        Some(&first.anchor_pem),
    ));
    api.apply(trust_roots(&first.anchor_pem));
    review_tokens(&api);
    let controller = Controller::start(&scratch, &api).await;
    let mut client = controller.client().await;
    let web = identity_of("shop", "web");
    let body = wait_for_issuer_status(&controller, "the Secret is shown", |body| {
        body.contains("\"current\":true") && body.contains("weft-identity-issuer")
    })
    .await;
    assert!(body.contains("weft-identity-trust-roots"), "{body}");

    // A bad edit of the Secret: reported, the previous issuer keeps signing.
    api.apply(issuer_secret("not a certificate", &first.key_pem, None));
    let body = wait_for_issuer_status(&controller, "the bad Secret was never reported", |body| {
        body.contains("\"current\":false")
    })
    .await;
    assert!(
        body.contains("Secret weft/weft-identity-issuer key tls.crt"),
        "{body}"
    );
    assert_eq!(
        controller
            .metric("weft_controller_identity_issuer_failed_reloads_total")
            .await,
        Some(1.0)
    );
    let response = certify(&mut client, &web, "sa:shop:web")
        .await
        .expect("the previous issuer keeps signing");
    assert_eq!(response.intermediate_certificates, vec![first.issuer_der()]);

    // A rotated issuer (same anchor): the next leaves chain to it.
    let second = Credentials::rotate(&scratch, "state");
    assert_ne!(second.issuer_der(), first.issuer_der());
    api.apply(issuer_secret(
        &second.issuer_pem,
        &second.key_pem,
        Some(&second.anchor_pem),
    ));
    let started = Instant::now();
    let response = loop {
        let response = certify(&mut client, &web, "sa:shop:web")
            .await
            .expect("web gets its certificate");
        if response.intermediate_certificates == vec![second.issuer_der()] {
            break response;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the new issuer never took over\n{}",
            controller.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_chains(&response, &second.anchor_der(), &web);
    let (_, leaf) = X509Certificate::from_der(&response.leaf_certificate).unwrap();
    let second_issuer = second.issuer_der();
    let (_, issuer) = X509Certificate::from_der(&second_issuer).unwrap();
    leaf.verify_signature(Some(issuer.public_key()))
        .expect("signed by the new issuer");
    wait_for_issuer_status(&controller, "the rotated issuer is current", |body| {
        body.contains("\"current\":true")
    })
    .await;
    assert_eq!(
        controller
            .metric("weft_controller_identity_issuer_reloads_total")
            .await,
        Some(1.0)
    );

    // The anchor ConfigMap goes: the Secret's ca.crt takes over (and says so).
    assert!(api.delete("v1", "ConfigMap", Some("weft"), TRUST_ANCHORS_CONFIGMAP));
    let started = Instant::now();
    while !controller.log().contains("using the Secret's ca.crt") {
        assert!(
            started.elapsed() < PATIENCE,
            "the fallback was never logged\n{}",
            controller.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let response = certify(&mut client, &web, "sa:shop:web")
        .await
        .expect("web still gets its certificate");
    assert_chains(&response, &second.anchor_der(), &web);

    // Anchors of another mesh in a new ConfigMap: refused, the issuer stays.
    let other = Credentials::init(&scratch, "other");
    api.apply(trust_roots(&other.anchor_pem));
    let body = wait_for_issuer_status(
        &controller,
        "the foreign anchors were never reported",
        |body| body.contains("is not signed by any trust anchor"),
    )
    .await;
    assert!(body.contains("\"current\":false"), "{body}");
    let response = certify(&mut client, &web, "sa:shop:web")
        .await
        .expect("the issuer keeps signing");
    assert_eq!(
        response.intermediate_certificates,
        vec![second.issuer_der()]
    );
}

#[tokio::test]
async fn start_up_refuses_a_missing_or_unusable_issuer_secret() {
    let scratch = Scratch::new("k8s-identity-refuse");
    let good = Credentials::init(&scratch, "state");
    let other = Credentials::init(&scratch, "other");
    type Setup = fn(&KubeApiServer, &Credentials, &Credentials);
    let cases: [(&str, Setup, &str); 5] = [
        (
            "no Secret",
            |api, good, _| {
                api.apply(trust_roots(&good.anchor_pem));
            },
            "Secret weft/weft-identity-issuer: not found",
        ),
        (
            "anchors of another mesh",
            |api, good, other| {
                api.apply(issuer_secret(&good.issuer_pem, &good.key_pem, None));
                api.apply(trust_roots(&other.anchor_pem));
            },
            "is not signed by any trust anchor",
        ),
        (
            "no ConfigMap and no ca.crt",
            |api, good, _| {
                api.apply(issuer_secret(&good.issuer_pem, &good.key_pem, None));
            },
            "no trust anchors: ConfigMap weft/weft-identity-trust-roots does not exist",
        ),
        (
            "no tls.key",
            |api, good, _| {
                let mut secret = issuer_secret(&good.issuer_pem, &good.key_pem, None);
                secret["data"].as_object_mut().unwrap().remove("tls.key");
                api.apply(secret);
                api.apply(trust_roots(&good.anchor_pem));
            },
            "Secret weft/weft-identity-issuer: has no key tls.key",
        ),
        (
            "no RBAC for tokenreviews",
            |api, good, _| {
                api.apply(issuer_secret(&good.issuer_pem, &good.key_pem, None));
                api.apply(trust_roots(&good.anchor_pem));
                api.set_self_subject_access_review(|attributes| {
                    !(attributes.group == "authentication.k8s.io"
                        && attributes.resource == "tokenreviews"
                        && attributes.verb == "create")
                });
            },
            "the controller may not create tokenreviews.authentication.k8s.io: denied by the test API server",
        ),
    ];
    for (name, setup, expected) in cases {
        let api = KubeApiServer::start();
        setup(&api, &good, &other);
        let admin = weft_test_support::free_addr();
        let mut command =
            Controller::command(&scratch, &api, weft_test_support::free_addr(), admin);
        let mut refused =
            ControllerProcess::spawn(&mut command, admin, Some(scratch.path("refused.log")));
        let status = wait_for_exit(&mut refused.child, PATIENCE, name).await;
        let stderr = refused.log();
        assert_eq!(status.code(), Some(64), "{name}: {stderr}");
        assert!(stderr.contains(expected), "{name}: {stderr}");
    }
}
