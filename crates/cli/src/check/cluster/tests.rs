//! Table tests of the cluster checks over hand-built [`ClusterState`]s
//! (certificates made with rcgen): each check passing, failing, warning.

use std::collections::BTreeMap;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use weft_core::cluster::{
    CONTROLLER_COMPONENT, INJECTOR_PATH, INJECTOR_SERVICE, ISSUER_SECRET, TRUST_ANCHORS_CONFIGMAP,
    TRUST_ANCHORS_KEY,
};

use super::gather::{control_plane_proxy_version, image_tag, pod_state};
use super::pre::pre_access_requests;
use super::verdict::some_of;
use super::*;

const NOW: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

/// A CA certificate (PEM) and its issuer handle.
struct Authority {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn authority(
    name: &str,
    (not_before, not_after): (i64, i64),
    signer: Option<&Authority>,
    algorithm: &'static rcgen::SignatureAlgorithm,
) -> Authority {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.not_before = time::OffsetDateTime::from_unix_timestamp(not_before).unwrap();
    params.not_after = time::OffsetDateTime::from_unix_timestamp(not_after).unwrap();
    let key = KeyPair::generate_for(algorithm).unwrap();
    let certificate = match signer {
        Some(signer) => params.signed_by(&key, &signer.issuer).unwrap(),
        None => params.self_signed(&key).unwrap(),
    };
    Authority {
        pem: certificate.pem(),
        issuer: Issuer::new(params, key),
    }
}

fn p256(name: &str, validity: (i64, i64), signer: Option<&Authority>) -> Authority {
    authority(name, validity, signer, &rcgen::PKCS_ECDSA_P256_SHA256)
}

const YEAR: (i64, i64) = (NOW - DAY, NOW + 365 * DAY);

fn configmap(pem: &str) -> Fetched<Option<BTreeMap<String, String>>> {
    Ok(Some(BTreeMap::from([(
        TRUST_ANCHORS_KEY.to_string(),
        pem.to_string(),
    )])))
}

fn secret(pem: &str) -> Fetched<Option<BTreeMap<String, Vec<u8>>>> {
    Ok(Some(BTreeMap::from([
        ("tls.crt".to_string(), pem.as_bytes().to_vec()),
        ("tls.key".to_string(), b"key".to_vec()),
        ("ca.crt".to_string(), Vec::new()),
    ])))
}

fn controller_pod(name: &str) -> PodState {
    PodState {
        namespace: "weft".into(),
        name: name.into(),
        component: Some(CONTROLLER_COMPONENT.into()),
        phase: "Running".into(),
        ready: true,
        unschedulable: None,
        proxy: None,
    }
}

fn meshed_pod(name: &str, anchors: &str) -> PodState {
    PodState {
        namespace: "demo".into(),
        name: name.into(),
        component: None,
        phase: "Running".into(),
        ready: true,
        unschedulable: None,
        proxy: Some(ProxyState {
            ready: true,
            trust_anchors: Some(anchors.into()),
            version: Some(env!("CARGO_PKG_VERSION").into()),
            injected_version: Some(env!("CARGO_PKG_VERSION").into()),
        }),
    }
}

/// The injector's webhook as `weft install` writes it, trusting `anchors`.
fn injector_webhook(anchors: &str) -> Fetched<Option<Vec<WebhookState>>> {
    Ok(Some(vec![WebhookState {
        name: "weft-proxy-injector.weft.io".into(),
        ca_bundle: anchors.as_bytes().to_vec(),
        service: Some(WebhookService {
            namespace: "weft".into(),
            name: INJECTOR_SERVICE.into(),
            path: Some(INJECTOR_PATH.into()),
            port: 443,
        }),
    }]))
}

fn webhooks(state: &mut ClusterState) -> &mut Vec<WebhookState> {
    control(state)
        .proxy_injector
        .as_mut()
        .unwrap()
        .as_mut()
        .unwrap()
}

/// A healthy installation with a meshed pod, and its anchor.
fn healthy() -> (ClusterState, Authority) {
    let anchor = p256("root.weft.cluster.local", YEAR, None);
    let issuer = p256("identity.weft.cluster.local", YEAR, Some(&anchor));
    let state = ClusterState {
        now_unix: NOW,
        control_namespace: "weft".into(),
        client: Ok(()),
        version: Ok(ApiVersion {
            major: "1".into(),
            minor: "33".into(),
            git_version: "v1.33.1".into(),
        }),
        pre: None,
        control_plane: Some(ControlPlaneState {
            namespace_exists: Ok(true),
            cluster_role_exists: Ok(true),
            cluster_role_binding_exists: Ok(true),
            service_account_exists: Ok(true),
            crds: Ok(expected_crds()),
            expected_crds: expected_crds(),
            controller_deployment: Ok(Some(DeploymentState {
                desired: 1,
                available: 1,
                proxy_version: Some(env!("CARGO_PKG_VERSION").into()),
            })),
            pods: Ok(vec![controller_pod("weft-controller-1")]),
            trust_anchors_configmap: configmap(&anchor.pem),
            issuer_secret: secret(&issuer.pem),
            proxy_injector: injector_webhook(&anchor.pem),
            injector_service: Ok(Some(vec![443])),
            injector_endpoints: Ok(EndpointCounts { ready: 1, total: 1 }),
        }),
        data_plane: Some(DataPlaneState {
            namespace: None,
            pods: Ok(vec![meshed_pod("web-1", &anchor.pem)]),
        }),
    };
    (state, anchor)
}

fn pre_state() -> ClusterState {
    let (mut state, _) = healthy();
    state.control_plane = None;
    state.data_plane = None;
    state.pre = Some(PreState {
        namespace_exists: Ok(false),
        access: pre_access_requests()
            .into_iter()
            .map(|request| AccessReview {
                request,
                allowed: Ok(true),
            })
            .collect(),
        pod_security: Ok(vec![("default".into(), None)]),
    });
    state
}

/// `(category, description, outcome, message)` of every check that is not a success.
fn problems(state: &ClusterState, mode: Mode) -> Vec<(String, String, Outcome, String)> {
    evaluate(state, mode)
        .into_iter()
        .flat_map(|category| {
            category
                .checks
                .into_iter()
                .filter(|check| check.outcome != Outcome::Success)
                .map(move |check| {
                    (
                        category.name.clone(),
                        check.description,
                        check.outcome,
                        check.error.unwrap_or_default(),
                    )
                })
        })
        .collect()
}

fn names(categories: &[Category]) -> Vec<&str> {
    categories
        .iter()
        .map(|category| category.name.as_str())
        .collect()
}

#[test]
fn a_healthy_installation_passes_in_every_mode() {
    let (state, _) = healthy();
    let categories = evaluate(&state, Mode::Proxy);
    assert_eq!(
        names(&categories),
        [
            "kubernetes-api",
            "kubernetes-version",
            "weft-config",
            "weft-existence",
            "weft-identity",
            "weft-webhooks",
            "weft-data-plane",
            "weft-identity-data-plane"
        ]
    );
    assert_eq!(problems(&state, Mode::Proxy), []);
    assert_eq!(categories.iter().map(|c| c.checks.len()).sum::<usize>(), 29);
    let control_plane = evaluate(&state, Mode::ControlPlane);
    assert_eq!(names(&control_plane).last(), Some(&"weft-webhooks"));
    assert!(passed(&control_plane));

    let pre = pre_state();
    let categories = evaluate(&pre, Mode::Pre);
    assert_eq!(
        names(&categories),
        [
            "kubernetes-api",
            "kubernetes-version",
            "pre-kubernetes-setup",
            "pre-kubernetes-capability"
        ]
    );
    assert_eq!(problems(&pre, Mode::Pre), []);
}

type Edit = fn(&mut ClusterState, &Authority);

fn control(state: &mut ClusterState) -> &mut ControlPlaneState {
    state.control_plane.as_mut().unwrap()
}

fn data(state: &mut ClusterState) -> &mut DataPlaneState {
    state.data_plane.as_mut().unwrap()
}

/// Each broken part of a healthy installation shows as exactly one problem.
#[test]
fn each_problem_is_found() {
    let cases: Vec<(&str, Edit, &str, &str, Outcome, &str)> = vec![
        (
            "old kubernetes",
            |state, _| {
                state.version = Ok(ApiVersion {
                    major: "1".into(),
                    minor: "32".into(),
                    git_version: "v1.32.9".into(),
                })
            },
            "kubernetes-version",
            "is running the minimum Kubernetes API version",
            Outcome::Error,
            "Kubernetes is on version [v1.32.9], but version [1.33.0] or more recent is required",
        ),
        (
            "no cluster role",
            |state, _| control(state).cluster_role_exists = Ok(false),
            "weft-config",
            "control plane ClusterRoles exist",
            Outcome::Error,
            "missing ClusterRoles: weft-controller",
        ),
        (
            "no cluster role binding",
            |state, _| control(state).cluster_role_binding_exists = Ok(false),
            "weft-config",
            "control plane ClusterRoleBindings exist",
            Outcome::Error,
            "missing ClusterRoleBindings: weft-controller",
        ),
        (
            "no service account",
            |state, _| control(state).service_account_exists = Ok(false),
            "weft-config",
            "control plane ServiceAccounts exist",
            Outcome::Error,
            "missing ServiceAccounts: weft-controller",
        ),
        (
            "a CRD missing",
            |state, _| {
                control(state)
                    .crds
                    .as_mut()
                    .unwrap()
                    .retain(|name| name != "workloads.weft.dev")
            },
            "weft-config",
            "control plane CustomResourceDefinitions exist",
            Outcome::Error,
            "missing CustomResourceDefinitions: workloads.weft.dev",
        ),
        (
            "CRDs unreadable",
            |state, _| {
                control(state).crds = Err("cannot list CustomResourceDefinitions: forbidden".into())
            },
            "weft-config",
            "control plane CustomResourceDefinitions exist",
            Outcome::Error,
            "cannot list CustomResourceDefinitions: forbidden",
        ),
        (
            "no deployment",
            |state, _| control(state).controller_deployment = Ok(None),
            "weft-existence",
            "controller Deployment is available",
            Outcome::Error,
            "Deployment weft-controller not found in namespace weft",
        ),
        (
            "deployment short of replicas",
            |state, _| {
                control(state).controller_deployment = Ok(Some(DeploymentState {
                    desired: 3,
                    available: 2,
                    proxy_version: Some(env!("CARGO_PKG_VERSION").into()),
                }))
            },
            "weft-existence",
            "controller Deployment is available",
            Outcome::Error,
            "2 of 3 replicas of Deployment weft-controller are available",
        ),
        (
            "an unschedulable pod",
            |state, _| {
                let mut pod = controller_pod("weft-controller-2");
                pod.phase = "Pending".into();
                pod.ready = false;
                pod.component = None;
                pod.unschedulable = Some("0/3 nodes are available".into());
                control(state).pods.as_mut().unwrap().push(pod);
            },
            "weft-existence",
            "no unschedulable pods",
            Outcome::Error,
            "unschedulable pods: weft-controller-2: 0/3 nodes are available",
        ),
        (
            "controller pending",
            |state, _| {
                let pods = control(state).pods.as_mut().unwrap();
                pods[0].phase = "Pending".into();
            },
            "weft-existence",
            "controller pod is running",
            Outcome::Error,
            "no controller pod is running: weft-controller-1 is Pending",
        ),
        (
            "controller not ready",
            |state, _| control(state).pods.as_mut().unwrap()[0].ready = false,
            "weft-existence",
            "control plane pods are ready",
            Outcome::Error,
            "pods not ready: weft-controller-1",
        ),
        (
            "anchor expiring within 60 days",
            |state, _| {
                let anchor = p256("root", (NOW - DAY, NOW + 10 * DAY), None);
                let issuer = p256("issuer", YEAR, Some(&anchor));
                // The proxies and the webhook hold the new anchor too.
                data(state).pods = Ok(vec![meshed_pod("web-1", &anchor.pem)]);
                control(state).proxy_injector = injector_webhook(&anchor.pem);
                control(state).trust_anchors_configmap = configmap(&anchor.pem);
                control(state).issuer_secret = secret(&issuer.pem);
            },
            "weft-identity",
            "trust anchors are valid for at least 60 days",
            Outcome::Warning,
            "CN=root expires in 10d",
        ),
        (
            "issuer expired",
            |state, anchor| {
                let issuer = p256("issuer", (NOW - 10 * DAY, NOW - DAY), Some(anchor));
                control(state).issuer_secret = secret(&issuer.pem);
            },
            "weft-identity",
            "issuer cert is within its validity period",
            Outcome::Error,
            "CN=issuer expired 1d ago",
        ),
        (
            "issuer not yet valid",
            |state, anchor| {
                let issuer = p256("issuer", (NOW + 3600, NOW + 100 * DAY), Some(anchor));
                control(state).issuer_secret = secret(&issuer.pem);
            },
            "weft-identity",
            "issuer cert is within its validity period",
            Outcome::Error,
            "CN=issuer is not valid before 1h from now",
        ),
        (
            "issuer expiring within 60 days",
            |state, anchor| {
                let issuer = p256("issuer", (NOW - DAY, NOW + 30 * DAY), Some(anchor));
                control(state).issuer_secret = secret(&issuer.pem);
            },
            "weft-identity",
            "issuer cert is valid for at least 60 days",
            Outcome::Warning,
            "CN=issuer expires in 30d",
        ),
        (
            "issuer signed by another root",
            |state, _| {
                let other = p256("root.weft.cluster.local", YEAR, None);
                let issuer = p256("issuer", YEAR, Some(&other));
                control(state).issuer_secret = secret(&issuer.pem);
            },
            "weft-identity",
            "issuer cert is issued by the trust anchor",
            Outcome::Error,
            "issuer CN=issuer is not signed by any trust anchor in weft-identity-trust-roots",
        ),
        (
            "issuer on P-384",
            |state, anchor| {
                let issuer =
                    authority("issuer", YEAR, Some(anchor), &rcgen::PKCS_ECDSA_P384_SHA384);
                control(state).issuer_secret = secret(&issuer.pem);
            },
            "weft-identity",
            "issuer cert is using supported crypto algorithm",
            Outcome::Error,
            "CN=issuer uses ECDSA on curve 1.3.132.0.34 (supported: ECDSA P-256, RSA)",
        ),
        (
            "no webhook",
            |state, _| control(state).proxy_injector = Ok(None),
            "weft-webhooks",
            "proxy-injector webhook exists",
            Outcome::Error,
            "MutatingWebhookConfiguration weft-proxy-injector not found: new pods are not meshed",
        ),
        (
            "a webhook configuration without webhooks",
            |state, _| webhooks(state).clear(),
            "weft-webhooks",
            "proxy-injector webhook exists",
            Outcome::Error,
            "MutatingWebhookConfiguration weft-proxy-injector has no webhooks: new pods are not meshed",
        ),
        (
            "webhook unreadable",
            |state, _| {
                control(state).proxy_injector = Err(
                    "cannot read MutatingWebhookConfiguration weft-proxy-injector: forbidden"
                        .into(),
                )
            },
            "weft-webhooks",
            "proxy-injector webhook exists",
            Outcome::Error,
            "cannot read MutatingWebhookConfiguration weft-proxy-injector: forbidden",
        ),
        (
            "caBundle with another anchor",
            |state, _| {
                let other = p256("other-root", YEAR, None);
                webhooks(state)[0].ca_bundle = other.pem.into_bytes();
            },
            "weft-webhooks",
            "proxy-injector webhook trusts the identity trust anchors",
            Outcome::Error,
            "webhook weft-proxy-injector.weft.io's caBundle lacks the trust anchors of ConfigMap weft-identity-trust-roots (CN=root.weft.cluster.local): the API server cannot verify the injector's certificate, and new pods start unmeshed",
        ),
        (
            "caBundle with the anchor and another: fine, but the Service lacks endpoints",
            |state, anchor| {
                let other = p256("other-root", YEAR, None);
                webhooks(state)[0].ca_bundle = format!("{}{}", other.pem, anchor.pem).into_bytes();
                control(state).injector_endpoints = Ok(EndpointCounts::default());
            },
            "weft-webhooks",
            "proxy-injector Service has ready endpoints",
            Outcome::Error,
            "Service weft-proxy-injector has no endpoints: no controller pod serves the injector, and new pods start unmeshed",
        ),
        (
            "no caBundle",
            |state, _| webhooks(state)[0].ca_bundle = Vec::new(),
            "weft-webhooks",
            "proxy-injector webhook trusts the identity trust anchors",
            Outcome::Error,
            "webhook weft-proxy-injector.weft.io has no caBundle",
        ),
        (
            "caBundle not PEM",
            |state, _| webhooks(state)[0].ca_bundle = b"anchors".to_vec(),
            "weft-webhooks",
            "proxy-injector webhook trusts the identity trust anchors",
            Outcome::Error,
            "webhook weft-proxy-injector.weft.io's caBundle: no PEM CERTIFICATE block",
        ),
        (
            "no injector Service (its endpoints and the webhook's target not judged)",
            |state, _| {
                control(state).injector_service = Ok(None);
                control(state).injector_endpoints = Ok(EndpointCounts::default());
            },
            "weft-webhooks",
            "proxy-injector Service exists",
            Outcome::Error,
            "Service weft-proxy-injector not found in namespace weft: the API server cannot reach the injector, and new pods start unmeshed",
        ),
        (
            "webhook calling another path",
            |state, _| webhooks(state)[0].service.as_mut().unwrap().path = Some("/mutate".into()),
            "weft-webhooks",
            "proxy-injector webhook calls the proxy-injector Service",
            Outcome::Error,
            "webhook weft-proxy-injector.weft.io calls weft/weft-proxy-injector:443/mutate, not weft/weft-proxy-injector:443/inject",
        ),
        (
            "webhook calling a port the Service lacks",
            |state, _| webhooks(state)[0].service.as_mut().unwrap().port = 8443,
            "weft-webhooks",
            "proxy-injector webhook calls the proxy-injector Service",
            Outcome::Error,
            "webhook weft-proxy-injector.weft.io calls weft/weft-proxy-injector:8443/inject, not weft/weft-proxy-injector:443/inject",
        ),
        (
            "webhook calling a URL",
            |state, _| webhooks(state)[0].service = None,
            "weft-webhooks",
            "proxy-injector webhook calls the proxy-injector Service",
            Outcome::Error,
            "webhook weft-proxy-injector.weft.io calls a URL, not Service weft/weft-proxy-injector",
        ),
        (
            "injector endpoints not ready",
            |state, _| {
                control(state).injector_endpoints = Ok(EndpointCounts { ready: 0, total: 2 })
            },
            "weft-webhooks",
            "proxy-injector Service has ready endpoints",
            Outcome::Error,
            "none of the 2 endpoints of Service weft-proxy-injector is ready: new pods start unmeshed",
        ),
        (
            "injector endpoints unreadable",
            |state, _| {
                control(state).injector_endpoints = Err(
                    "cannot list EndpointSlices of Service weft-proxy-injector: forbidden".into(),
                )
            },
            "weft-webhooks",
            "proxy-injector Service has ready endpoints",
            Outcome::Error,
            "cannot list EndpointSlices of Service weft-proxy-injector: forbidden",
        ),
        (
            "data plane namespace missing",
            |state, _| {
                let data = data(state);
                data.namespace = Some(("demo".into(), Ok(false)));
                data.pods = Ok(Vec::new());
            },
            "weft-data-plane",
            "data plane namespace exists",
            Outcome::Error,
            "The \"demo\" namespace does not exist",
        ),
        (
            "proxy not ready",
            |state, _| {
                data(state).pods.as_mut().unwrap()[0]
                    .proxy
                    .as_mut()
                    .unwrap()
                    .ready = false
            },
            "weft-data-plane",
            "data plane proxies are ready",
            Outcome::Error,
            "proxies not ready: demo/web-1",
        ),
        (
            "a finished job's proxy is not ready, an evicted controller neither: fine",
            |state, anchor| {
                let mut job = meshed_pod("job-1", &anchor.pem);
                job.phase = "Succeeded".into();
                job.proxy.as_mut().unwrap().ready = false;
                data(state).pods.as_mut().unwrap().push(job);
                let mut evicted = controller_pod("weft-controller-0");
                evicted.phase = "Failed".into();
                evicted.ready = false;
                control(state).pods.as_mut().unwrap().push(evicted);
                // The one problem left, to keep the table's shape.
                control(state).proxy_injector = Ok(None);
            },
            "weft-webhooks",
            "proxy-injector webhook exists",
            Outcome::Error,
            "MutatingWebhookConfiguration weft-proxy-injector not found: new pods are not meshed",
        ),
        (
            "no meshed pods",
            |state, _| data(state).pods = Ok(Vec::new()),
            "weft-data-plane",
            "data plane proxies are ready",
            Outcome::Warning,
            "no meshed pods (with a weft-proxy container) found",
        ),
        (
            "injected before the control plane's upgrade",
            |state, _| {
                control(state).controller_deployment = Ok(Some(DeploymentState {
                    desired: 1,
                    available: 1,
                    proxy_version: Some("v0.2.0".into()),
                }))
            },
            "weft-data-plane",
            "data plane and control plane versions match",
            Outcome::Warning,
            "proxies not running the control plane's version v0.2.0: demo/web-1 (0.1.0)",
        ),
        (
            "a proxy added by hand (no annotation) is not compared with the control plane",
            |state, _| {
                data(state).pods.as_mut().unwrap()[0]
                    .proxy
                    .as_mut()
                    .unwrap()
                    .injected_version = None;
                control(state).controller_deployment = Ok(Some(DeploymentState {
                    desired: 1,
                    available: 1,
                    proxy_version: Some("0.2.0".into()),
                }));
                // The one problem left, to keep the table's shape.
                control(state).injector_endpoints = Ok(EndpointCounts { ready: 0, total: 1 });
            },
            "weft-webhooks",
            "proxy-injector Service has ready endpoints",
            Outcome::Error,
            "none of the 1 endpoints of Service weft-proxy-injector is ready: new pods start unmeshed",
        ),
        (
            "old proxy",
            |state, _| {
                data(state).pods.as_mut().unwrap()[0]
                    .proxy
                    .as_mut()
                    .unwrap()
                    .version = Some("0.0.1".into())
            },
            "weft-data-plane",
            "data plane and cli versions match",
            Outcome::Warning,
            "proxies not running version 0.1.0: demo/web-1 (0.0.1)",
        ),
        (
            "proxy with other anchors",
            |state, _| {
                let other = p256("other-root", YEAR, None);
                data(state).pods.as_mut().unwrap()[0]
                    .proxy
                    .as_mut()
                    .unwrap()
                    .trust_anchors = Some(other.pem);
            },
            "weft-identity-data-plane",
            "data plane proxies' trust anchors match the control plane's",
            Outcome::Error,
            "WEFT_PROXY_IDENTITY_TRUST_ANCHORS differs from ConfigMap weft-identity-trust-roots in: demo/web-1",
        ),
        (
            "proxy without anchors",
            |state, _| {
                data(state).pods.as_mut().unwrap()[0]
                    .proxy
                    .as_mut()
                    .unwrap()
                    .trust_anchors = None
            },
            "weft-identity-data-plane",
            "data plane proxies' trust anchors match the control plane's",
            Outcome::Error,
            "WEFT_PROXY_IDENTITY_TRUST_ANCHORS differs from ConfigMap weft-identity-trust-roots in: demo/web-1",
        ),
    ];
    for (name, edit, category, description, outcome, message) in cases {
        let (mut state, anchor) = healthy();
        edit(&mut state, &anchor);
        assert_eq!(
            problems(&state, Mode::Proxy),
            [(
                category.to_string(),
                description.to_string(),
                outcome,
                message.to_string()
            )],
            "{name}"
        );
        assert_eq!(
            passed(&evaluate(&state, Mode::Proxy)),
            outcome != Outcome::Error,
            "{name}"
        );
    }
}

/// The identity configuration missing or broken: one error, and the other
/// identity checks (which would all repeat it) are left out.
#[test]
fn broken_certificate_config_skips_the_rest_of_identity() {
    type ControlEdit = fn(&mut ControlPlaneState);
    let cases: Vec<(ControlEdit, &str)> = vec![
        (
            |control| control.trust_anchors_configmap = Ok(None),
            "ConfigMap weft-identity-trust-roots not found",
        ),
        (
            |control| control.trust_anchors_configmap = Ok(Some(BTreeMap::new())),
            "ConfigMap weft-identity-trust-roots has no key ca-bundle.crt",
        ),
        (
            |control| control.trust_anchors_configmap = configmap("not pem"),
            "ConfigMap weft-identity-trust-roots key ca-bundle.crt: no PEM CERTIFICATE block",
        ),
        (
            |control| control.issuer_secret = Ok(None),
            "Secret weft-identity-issuer not found",
        ),
        (
            |control| {
                control
                    .issuer_secret
                    .as_mut()
                    .unwrap()
                    .as_mut()
                    .unwrap()
                    .remove("tls.key");
            },
            "Secret weft-identity-issuer has no tls.key",
        ),
        (
            |control| {
                control.issuer_secret =
                    Err("cannot read Secret weft-identity-issuer: forbidden".into())
            },
            "cannot read Secret weft-identity-issuer: forbidden",
        ),
    ];
    for (edit, message) in cases {
        let (mut state, _) = healthy();
        edit(control(&mut state));
        let categories = evaluate(&state, Mode::ControlPlane);
        let identity = categories
            .iter()
            .find(|category| category.name == "weft-identity")
            .unwrap();
        assert_eq!(identity.checks.len(), 1, "{message}");
        assert_eq!(
            identity.checks[0].description,
            "certificate config is valid"
        );
        assert_eq!(identity.checks[0].error.as_deref(), Some(message));
        // The webhooks category still runs.
        assert_eq!(
            names(&categories).last(),
            Some(&"weft-webhooks"),
            "{message}"
        );
    }
    let _ = (ISSUER_SECRET, TRUST_ANCHORS_CONFIGMAP);
}

#[test]
fn an_unreachable_api_stops_after_kubernetes_api() {
    let (mut state, _) = healthy();
    state.version =
        Err("cannot query the Kubernetes API at http://127.0.0.1:1: connection refused".into());
    let categories = evaluate(&state, Mode::Proxy);
    assert_eq!(names(&categories), ["kubernetes-api"]);
    assert_eq!(categories[0].checks.len(), 2);
    assert_eq!(categories[0].checks[1].outcome, Outcome::Error);
    assert!(!passed(&categories));

    state.client = Err("--kubeconfig /nowhere: No such file".into());
    let categories = evaluate(&state, Mode::Pre);
    assert_eq!(names(&categories), ["kubernetes-api"]);
    assert_eq!(categories[0].checks.len(), 1);
}

#[test]
fn a_missing_namespace_stops_the_installation_checks() {
    let (mut state, _) = healthy();
    control(&mut state).namespace_exists = Ok(false);
    let categories = evaluate(&state, Mode::Proxy);
    assert_eq!(
        names(&categories),
        ["kubernetes-api", "kubernetes-version", "weft-config"]
    );
    assert_eq!(
        categories[2].checks[0].error.as_deref(),
        Some("The \"weft\" namespace does not exist")
    );
}

#[test]
fn kubernetes_versions() {
    for (major, minor, passes) in [
        ("1", "33", true),
        ("1", "34+", true),
        ("2", "0", true),
        ("1", "32", false),
        ("1", "9", false),
        ("", "", false),
    ] {
        let (mut state, _) = healthy();
        state.version = Ok(ApiVersion {
            major: major.into(),
            minor: minor.into(),
            git_version: format!("v{major}.{minor}"),
        });
        assert_eq!(
            problems(&state, Mode::ControlPlane).is_empty(),
            passes,
            "{major}.{minor}"
        );
    }
}

#[test]
fn pre_problems() {
    type PreEdit = fn(&mut PreState);
    let cases: Vec<(&str, PreEdit, &str, Outcome, &str)> = vec![
        (
            "namespace exists",
            |pre| pre.namespace_exists = Ok(true),
            "control plane namespace does not already exist",
            Outcome::Error,
            "The \"weft\" namespace already exists",
        ),
        (
            "cluster roles denied",
            |pre| {
                for review in &mut pre.access {
                    if review.request.resource.starts_with("clusterrole") {
                        review.allowed = Ok(false);
                    }
                }
            },
            "can create non-namespaced resources",
            Outcome::Error,
            "not allowed to create clusterroles.rbac.authorization.k8s.io, create clusterrolebindings.rbac.authorization.k8s.io",
        ),
        (
            "secrets denied",
            |pre| {
                for review in &mut pre.access {
                    if review.request.resource == "secrets" && review.request.verb == "get" {
                        review.allowed = Ok(false);
                    }
                }
            },
            "can read Secrets",
            Outcome::Error,
            "not allowed to get secrets in namespace weft",
        ),
        (
            "deployments unreviewable",
            |pre| {
                for review in &mut pre.access {
                    if review.request.resource == "deployments" {
                        review.allowed =
                            Err("cannot review access to create deployments: HTTP 500".into());
                    }
                }
            },
            "can create Deployments",
            Outcome::Error,
            "cannot review access to create deployments: HTTP 500",
        ),
    ];
    for (name, edit, description, outcome, message) in cases {
        let mut state = pre_state();
        edit(state.pre.as_mut().unwrap());
        assert_eq!(
            problems(&state, Mode::Pre),
            [(
                "pre-kubernetes-setup".to_string(),
                description.to_string(),
                outcome,
                message.to_string()
            )],
            "{name}"
        );
    }

    let mut state = pre_state();
    state.pre.as_mut().unwrap().pod_security = Ok(vec![
        ("default".into(), Some("privileged".into())),
        ("apps".into(), Some("baseline".into())),
    ]);
    let found = problems(&state, Mode::Pre);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0].1, "has NET_ADMIN capability");
    assert_eq!(found[0].2, Outcome::Warning);
    assert_eq!(
        found[0].3,
        "Pod Security admission refuses NET_ADMIN (needed by the weft-init container) in namespaces apps (baseline)"
    );
    assert!(passed(&evaluate(&state, Mode::Pre)));
}

#[test]
fn rendering_in_linkerd_form() {
    let (mut state, _) = healthy();
    control(&mut state).proxy_injector = Ok(None);
    control(&mut state).pods.as_mut().unwrap()[0].ready = false;
    let categories = evaluate(&state, Mode::ControlPlane);
    let text = crate::check::render(&categories, false);
    assert!(
        text.starts_with(
            "kubernetes-api\n--------------\n√ can initialize the client\n√ can query the Kubernetes API\n\n\
             kubernetes-version\n------------------\n√ is running the minimum Kubernetes API version\n\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "× control plane pods are ready\n    pods not ready: weft-controller-1\n    see https://weft.dev/checks/#weft-existence-ready for hints\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("weft-webhooks\n-------------\n× proxy-injector webhook exists\n"),
        "{text}"
    );
    assert!(text.ends_with("\nStatus check results are ×\n"), "{text}");
    let json = crate::check::to_json(&categories);
    assert_eq!(json["success"], false);
    assert_eq!(json["categories"][0]["categoryName"], "kubernetes-api");
    let webhooks = &json["categories"][5]["checks"][0];
    assert_eq!(webhooks["result"], "error");
    assert_eq!(
        webhooks["hint"],
        "https://weft.dev/checks/#weft-webhooks-proxy-injector"
    );
}

/// The fallback list and weft-core's generated CRDs name the same CRDs
/// (once weft-core generates them).
#[test]
fn the_expected_crds_match_weft_cores() {
    let mut generated: Vec<String> = weft_core::crds::custom_resource_definitions()
        .into_iter()
        .filter_map(|crd| crd.metadata.name)
        .collect();
    if generated.is_empty() {
        assert_eq!(expected_crds(), EXPECTED_CRDS);
        return;
    }
    let mut fallback: Vec<String> = EXPECTED_CRDS.iter().map(|name| name.to_string()).collect();
    generated.sort();
    fallback.sort();
    assert_eq!(generated, fallback, "update check::cluster::EXPECTED_CRDS");
}

#[test]
fn pods_are_reduced() {
    let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(serde_json::json!({
        "metadata": {
            "name": "web-1", "namespace": "demo",
            "annotations": {"weft.io/proxy-version": "v0.1.0"}
        },
        "spec": {
            "containers": [{"name": "app", "image": "app:1"}],
            "initContainers": [{
                "name": "weft-proxy", "image": "registry:5000/weft/proxy:0.0.9@sha256:abc",
                "restartPolicy": "Always",
                "env": [{"name": "WEFT_PROXY_IDENTITY_TRUST_ANCHORS", "value": "PEM"}]
            }]
        },
        "status": {
            "phase": "Pending",
            "conditions": [
                {"type": "Ready", "status": "False"},
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "no nodes"}
            ],
            "initContainerStatuses": [{
                "name": "weft-proxy", "ready": true, "restartCount": 0,
                "image": "proxy", "imageID": ""
            }]
        }
    }))
    .unwrap();
    assert_eq!(
        pod_state(&pod),
        PodState {
            namespace: "demo".into(),
            name: "web-1".into(),
            component: None,
            phase: "Pending".into(),
            ready: false,
            unschedulable: Some("no nodes".into()),
            proxy: Some(ProxyState {
                ready: true,
                trust_anchors: Some("PEM".into()),
                version: Some("v0.1.0".into()),
                injected_version: Some("v0.1.0".into()),
            }),
        }
    );
}

#[test]
fn image_tags() {
    for (image, tag) in [
        ("ghcr.io/weft/proxy:0.1.0", Some("0.1.0")),
        ("registry:5000/weft/proxy", None),
        ("registry:5000/weft/proxy:v1@sha256:abc", Some("v1")),
        ("proxy", None),
    ] {
        assert_eq!(image_tag(image).as_deref(), tag, "{image}");
    }
}

#[test]
fn the_control_planes_proxy_version() {
    let deployment = |image: &str, args: &[&str]| -> k8s_openapi::api::apps::v1::Deployment {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "weft-controller"},
            "spec": {
                "selector": {},
                "template": {"spec": {"containers": [
                    {"name": "controller", "image": image, "args": args}
                ]}}
            }
        }))
        .unwrap()
    };
    let cases = [
        (
            "ghcr.io/weft-mesh/weft-controller:0.1.0",
            &["--proxy-version", "v0.3.0"][..],
            Some("v0.3.0"),
        ),
        (
            "ghcr.io/weft-mesh/weft-controller:0.1.0",
            &["--proxy-version=0.4.0"][..],
            Some("0.4.0"),
        ),
        (
            "ghcr.io/weft-mesh/weft-controller:0.1.0",
            &["--kubernetes"][..],
            Some("0.1.0"),
        ),
        ("weft-controller", &[][..], None),
    ];
    for (image, args, expected) in cases {
        assert_eq!(
            control_plane_proxy_version(&deployment(image, args)).as_deref(),
            expected,
            "{image} {args:?}"
        );
    }
}

#[test]
fn long_lists_are_cut() {
    let items: Vec<String> = (1..=7).map(|n| format!("p{n}")).collect();
    assert_eq!(some_of(&items[..2]), "p1, p2");
    assert_eq!(some_of(&items), "p1, p2, p3, p4, p5, and 2 more");
}

#[test]
fn every_hint_anchor_is_a_heading_of_the_checks_page() {
    let page = include_str!("../../../../../docs/checks.md");
    let headings: Vec<&str> = page
        .lines()
        .filter_map(|line| line.strip_prefix("### "))
        .collect();
    for definition in super::checks::DEFINITIONS {
        assert!(
            headings.contains(&definition.anchor),
            "docs/checks.md has no `### {}` heading",
            definition.anchor
        );
    }
}
