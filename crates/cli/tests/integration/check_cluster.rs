//! `weft check --kubernetes` — the real `weft` binary with the real kube
//! client — against the test Kubernetes API server
//! (`weft_test_support::kube_api`) holding an installation written as
//! objects: the namespace, RBAC, the CRDs, a ready controller pod and its
//! available Deployment, the trust-anchor ConfigMap and issuer Secret (made
//! with rcgen), the proxy injector's webhook (trusting the anchor), its
//! Service and a ready EndpointSlice. Each test breaks one part and
//! compares the output line by line (no colors: stdout is a pipe, NO_COLOR).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use serde_json::{Value, json};
use weft_core::cluster::{
    CONTROL_PLANE_COMPONENT_LABEL, CONTROL_PLANE_NAMESPACE, CONTROLLER_COMPONENT, CONTROLLER_NAME,
    INJECTOR_PATH, INJECTOR_PORT, INJECTOR_SERVICE, ISSUER_SECRET, PROXY_CONTAINER_NAME,
    PROXY_INJECTOR_WEBHOOK, TRUST_ANCHORS_CONFIGMAP, TRUST_ANCHORS_KEY,
};
use weft_test_support::free_port;
use weft_test_support::kube_api::KubeApiServer;

const DAY: i64 = 86_400;

/// A CA: its PEM, its key's PEM, and the handle that signs with it.
struct Authority {
    pem: String,
    key_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A P-256 CA valid from `now + from` to `now + until` (seconds).
fn authority(name: &str, (from, until): (i64, i64), signer: Option<&Authority>) -> Authority {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.not_before = time::OffsetDateTime::from_unix_timestamp(now() + from).unwrap();
    params.not_after = time::OffsetDateTime::from_unix_timestamp(now() + until).unwrap();
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let certificate = match signer {
        Some(signer) => params.signed_by(&key, &signer.issuer).unwrap(),
        None => params.self_signed(&key).unwrap(),
    };
    Authority {
        pem: certificate.pem(),
        key_pem: key.serialize_pem(),
        issuer: Issuer::new(params, key),
    }
}

const A_YEAR: (i64, i64) = (-DAY, 365 * DAY);

/// The test API server, a kubeconfig for it, and the installation's anchor.
struct Cluster {
    api: KubeApiServer,
    kubeconfig: PathBuf,
    anchor: Authority,
}

impl Cluster {
    /// An empty cluster.
    fn empty() -> Cluster {
        let api = KubeApiServer::start();
        let kubeconfig = kubeconfig_path("weft-check-cluster");
        api.write_kubeconfig(&kubeconfig);
        let anchor = authority("root.weft.cluster.local", A_YEAR, None);
        Cluster {
            api,
            kubeconfig,
            anchor,
        }
    }

    /// A healthy installation.
    fn installed() -> Cluster {
        let cluster = Cluster::empty();
        let api = &cluster.api;
        let namespace = CONTROL_PLANE_NAMESPACE;
        api.apply(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
        );
        api.apply(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": CONTROLLER_NAME},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]}]
        }));
        api.apply(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": CONTROLLER_NAME},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": CONTROLLER_NAME},
            "subjects": [{"kind": "ServiceAccount", "name": CONTROLLER_NAME, "namespace": namespace}]
        }));
        api.apply(json!({
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": CONTROLLER_NAME, "namespace": namespace}
        }));
        for crd in crds() {
            api.apply(crd);
        }
        api.apply(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": CONTROLLER_NAME, "namespace": namespace},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {CONTROL_PLANE_COMPONENT_LABEL: CONTROLLER_COMPONENT}},
                "template": {
                    "metadata": {"labels": {CONTROL_PLANE_COMPONENT_LABEL: CONTROLLER_COMPONENT}},
                    "spec": {"containers": [{
                        "name": CONTROLLER_NAME, "image": "weft-controller:0.1.0",
                        "args": ["--kubernetes", "--proxy-version", env!("CARGO_PKG_VERSION")]
                    }]}
                }
            },
            "status": {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1}
        }));
        api.apply(controller_pod(true));
        api.apply(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": TRUST_ANCHORS_CONFIGMAP, "namespace": namespace},
            "data": {TRUST_ANCHORS_KEY: cluster.anchor.pem}
        }));
        let issuer = authority("identity.weft.cluster.local", A_YEAR, Some(&cluster.anchor));
        cluster.set_issuer(&issuer);
        cluster.set_webhook_anchors(&cluster.anchor.pem);
        api.apply(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": INJECTOR_SERVICE, "namespace": namespace},
            "spec": {
                "selector": {CONTROL_PLANE_COMPONENT_LABEL: CONTROLLER_COMPONENT},
                "ports": [{"name": "injector", "port": 443, "targetPort": "injector"}]
            }
        }));
        api.apply(injector_endpoint_slice(true));
        cluster
    }

    /// The proxy injector's webhook, as `weft install` writes it, with
    /// `anchors` as its caBundle.
    fn set_webhook_anchors(&self, anchors: &str) {
        let encode = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
        self.api.apply(json!({
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": PROXY_INJECTOR_WEBHOOK},
            "webhooks": [{
                "name": "weft-proxy-injector.weft.io",
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": "Ignore",
                "clientConfig": {
                    "caBundle": encode(anchors),
                    "service": {"namespace": CONTROL_PLANE_NAMESPACE, "name": INJECTOR_SERVICE,
                                "path": INJECTOR_PATH, "port": 443}
                },
                "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                           "resources": ["pods"], "scope": "Namespaced"}]
            }]
        }));
    }

    fn set_issuer(&self, issuer: &Authority) {
        let encode = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
        self.api.apply(json!({
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": ISSUER_SECRET, "namespace": CONTROL_PLANE_NAMESPACE},
            "data": {
                "tls.crt": encode(&issuer.pem),
                "tls.key": encode(&issuer.key_pem),
                "ca.crt": encode(&self.anchor.pem),
            }
        }));
    }

    /// Deletes the installation's cluster-scoped object `name`, which exists.
    fn delete(&self, api_version: &str, kind: &str, name: &str) {
        assert!(
            self.api.delete(api_version, kind, None, name),
            "no {kind} {name}"
        );
    }

    /// Runs `weft check --kubeconfig … <args>`.
    fn check(&self, args: &[&str]) -> Output {
        weft_check(&self.kubeconfig)
            .args(args)
            .output()
            .expect("run weft check")
    }
}

/// A kubeconfig path in the temporary folder no other test uses.
fn kubeconfig_path(prefix: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "{prefix}-{}-{}.yaml",
        std::process::id(),
        free_port()
    ))
}

/// `weft check --kubeconfig <kubeconfig>` without colors and with no
/// `$KUBECONFIG`; the caller adds arguments.
fn weft_check(kubeconfig: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_weft"));
    command
        .arg("check")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG");
    command
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.kubeconfig);
    }
}

/// The CRDs weft installs: weft-core's, else minimal ones with the names `weft check` expects.
fn crds() -> Vec<Value> {
    let generated = weft_core::crds::custom_resource_definitions();
    if !generated.is_empty() {
        return generated
            .iter()
            .map(|crd| {
                let mut value = serde_json::to_value(crd).unwrap();
                value["apiVersion"] = json!("apiextensions.k8s.io/v1");
                value["kind"] = json!("CustomResourceDefinition");
                value
            })
            .collect();
    }
    [
        ("serviceprofiles", "linkerd.io", "ServiceProfile", "v1alpha2"),
        ("trafficsplits", "split.smi-spec.io", "TrafficSplit", "v1alpha2"),
        ("servers", "policy.linkerd.io", "Server", "v1beta3"),
        ("authorizationpolicies", "policy.linkerd.io", "AuthorizationPolicy", "v1alpha1"),
        ("meshtlsauthentications", "policy.linkerd.io", "MeshTLSAuthentication", "v1alpha1"),
        ("networkauthentications", "policy.linkerd.io", "NetworkAuthentication", "v1alpha1"),
        ("httproutes", "policy.linkerd.io", "HTTPRoute", "v1beta3"),
        ("workloads", "weft.dev", "Workload", "v1alpha1"),
    ]
    .into_iter()
    .map(|(plural, group, kind, version)| {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": format!("{plural}.{group}")},
            "spec": {
                "group": group, "scope": "Namespaced",
                "names": {"plural": plural, "kind": kind, "singular": kind.to_lowercase(), "listKind": format!("{kind}List")},
                "versions": [{"name": version, "served": true, "storage": true,
                              "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]
            }
        })
    })
    .collect()
}

fn controller_pod(ready: bool) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": "weft-controller-5d9f7c-abcde", "namespace": CONTROL_PLANE_NAMESPACE,
            "labels": {CONTROL_PLANE_COMPONENT_LABEL: CONTROLLER_COMPONENT}
        },
        "spec": {"containers": [{"name": CONTROLLER_NAME, "image": "weft-controller:0.1.0"}]},
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Ready", "status": if ready { "True" } else { "False" }}
            ],
            "containerStatuses": [{"name": CONTROLLER_NAME, "ready": ready, "restartCount": 0,
                                   "image": "weft-controller:0.1.0", "imageID": ""}]
        }
    })
}

/// The EndpointSlice of the injector's Service: the controller pod, ready or not
/// (the test plays the EndpointSlice controller).
fn injector_endpoint_slice(ready: bool) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {
            "name": format!("{INJECTOR_SERVICE}-abcde"), "namespace": CONTROL_PLANE_NAMESPACE,
            "labels": {"kubernetes.io/service-name": INJECTOR_SERVICE}
        },
        "addressType": "IPv4",
        "endpoints": [{
            "addresses": ["10.0.0.7"],
            "conditions": {"ready": ready},
            "targetRef": {"kind": "Pod", "name": "weft-controller-5d9f7c-abcde", "namespace": CONTROL_PLANE_NAMESPACE}
        }],
        "ports": [{"name": "injector", "port": INJECTOR_PORT, "protocol": "TCP"}]
    })
}

/// A meshed pod in `demo` whose proxy trusts `anchors`.
fn meshed_pod(name: &str, anchors: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "demo",
                     "annotations": {"weft.io/proxy-version": env!("CARGO_PKG_VERSION")}},
        "spec": {"containers": [
            {"name": "app", "image": "app:1"},
            {"name": PROXY_CONTAINER_NAME, "image": "weft-proxy:0.1.0",
             "env": [{"name": "WEFT_PROXY_IDENTITY_TRUST_ANCHORS", "value": anchors}]}
        ]},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {"name": "app", "ready": true, "restartCount": 0, "image": "app:1", "imageID": ""},
                {"name": PROXY_CONTAINER_NAME, "ready": true, "restartCount": 0, "image": "weft-proxy:0.1.0", "imageID": ""}
            ]
        }
    })
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The output's lines equal `expected`'s (given without the trailing status).
fn assert_lines(output: &Output, expected: &str) {
    let text = stdout(output);
    let found: Vec<&str> = text.lines().collect();
    let wanted: Vec<&str> = expected.lines().collect();
    assert_eq!(
        found,
        wanted,
        "stdout:\n{text}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

const API_OK: &str = "\
kubernetes-api
--------------
√ can initialize the client
√ can query the Kubernetes API

kubernetes-version
------------------
√ is running the minimum Kubernetes API version
";

const CONFIG_OK: &str = "\
weft-config
-----------
√ control plane Namespace exists
√ control plane ClusterRoles exist
√ control plane ClusterRoleBindings exist
√ control plane ServiceAccounts exist
√ control plane CustomResourceDefinitions exist
";

const EXISTENCE_OK: &str = "\
weft-existence
--------------
√ controller Deployment is available
√ no unschedulable pods
√ controller pod is running
√ control plane pods are ready
";

const IDENTITY_OK: &str = "\
weft-identity
-------------
√ certificate config is valid
√ trust anchors are using supported crypto algorithm
√ trust anchors are within their validity period
√ trust anchors are valid for at least 60 days
√ issuer cert is using supported crypto algorithm
√ issuer cert is within its validity period
√ issuer cert is valid for at least 60 days
√ issuer cert is issued by the trust anchor
";

const WEBHOOKS_OK: &str = "\
weft-webhooks
-------------
√ proxy-injector webhook exists
√ proxy-injector webhook trusts the identity trust anchors
√ proxy-injector Service exists
√ proxy-injector webhook calls the proxy-injector Service
√ proxy-injector Service has ready endpoints
";

/// The categories joined as printed (a blank line after each), then the status.
fn report(categories: &[&str], success: bool) -> String {
    let mut text = String::new();
    for category in categories {
        text.push_str(category);
        text.push('\n');
    }
    text.push_str(if success {
        "Status check results are √\n"
    } else {
        "Status check results are ×\n"
    });
    text
}

/// Every category of a healthy installation, in the order printed.
const INSTALLED_OK: [&str; 5] = [API_OK, CONFIG_OK, EXISTENCE_OK, IDENTITY_OK, WEBHOOKS_OK];

/// `INSTALLED_OK` with the category `healthy` printed as `broken` instead.
fn installed_except<'a>(healthy: &str, broken: &'a str) -> Vec<&'a str> {
    assert!(INSTALLED_OK.contains(&healthy), "not a category: {healthy}");
    INSTALLED_OK
        .iter()
        .map(|&category| {
            if category == healthy {
                broken
            } else {
                category
            }
        })
        .collect()
}

/// The output is `categories` then the status `success` says, and `weft
/// check` exits 0 on success, else 1.
fn assert_report(output: &Output, categories: &[&str], success: bool) {
    assert_lines(output, &report(categories, success));
    assert_eq!(output.status.code(), Some(if success { 0 } else { 1 }));
}

/// `category` with its passing check `√ <check>` printed as `<mark> <check>`
/// followed by `details`, each indented, and the hints line for `anchor`.
fn broken(category: &str, mark: char, check: &str, details: &[&str], anchor: &str) -> String {
    let passing = format!("√ {check}\n");
    assert!(
        category.contains(&passing),
        "no check {check:?} in {category}"
    );
    let mut failing = format!("{mark} {check}\n");
    for detail in details {
        failing.push_str(&format!("    {detail}\n"));
    }
    failing.push_str(&format!(
        "    see https://weft.dev/checks/#{anchor} for hints\n"
    ));
    category.replace(&passing, &failing)
}

/// The webhooks category when the proxy injector's webhook is missing: an
/// error, and the checks reading the webhook are left out.
fn webhook_missing() -> String {
    broken(
        WEBHOOKS_OK,
        '×',
        "proxy-injector webhook exists",
        &["MutatingWebhookConfiguration weft-proxy-injector not found: new pods are not meshed"],
        "weft-webhooks-proxy-injector",
    )
    .replace(
        "√ proxy-injector webhook trusts the identity trust anchors\n",
        "",
    )
    .replace(
        "√ proxy-injector webhook calls the proxy-injector Service\n",
        "",
    )
}

#[test]
fn a_healthy_installation_passes() {
    let cluster = Cluster::installed();
    let output = cluster.check(&[]);
    assert_report(&output, &INSTALLED_OK, true);

    // --kubernetes with the kubeconfig in $KUBECONFIG: the same checks.
    let output = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["check", "--kubernetes", "-o", "json"])
        .env("KUBECONFIG", &cluster.kubeconfig)
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["success"], true, "{json}");
    assert_eq!(json["categories"][4]["categoryName"], "weft-identity");
    assert_eq!(json["categories"][4]["checks"][7]["result"], "success");
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn an_expired_issuer_fails() {
    let cluster = Cluster::installed();
    let issuer = authority(
        "identity.weft.cluster.local",
        (-10 * DAY, -DAY),
        Some(&cluster.anchor),
    );
    cluster.set_issuer(&issuer);
    let output = cluster.check(&[]);
    let identity = broken(
        IDENTITY_OK,
        '×',
        "issuer cert is within its validity period",
        &["CN=identity.weft.cluster.local expired 1d ago"],
        "weft-identity-issuer-cert-is-time-valid",
    )
    // An expired certificate is not checked for the 60 days ahead.
    .replace("√ issuer cert is valid for at least 60 days\n", "");
    assert_report(&output, &installed_except(IDENTITY_OK, &identity), false);
}

#[test]
fn an_issuer_the_anchors_did_not_sign_fails() {
    let cluster = Cluster::installed();
    let stranger = authority("root.weft.cluster.local", A_YEAR, None);
    let issuer = authority("identity.weft.cluster.local", A_YEAR, Some(&stranger));
    cluster.set_issuer(&issuer);
    let output = cluster.check(&[]);
    let text = stdout(&output);
    assert!(
        text.contains(
            "× issuer cert is issued by the trust anchor\n    issuer CN=identity.weft.cluster.local is not signed by any trust anchor in weft-identity-trust-roots\n    see https://weft.dev/checks/#weft-identity-issuer-cert-issued-by-trust-anchor for hints\n"
        ),
        "{text}"
    );
    assert!(text.ends_with("Status check results are ×\n"), "{text}");
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn a_controller_pod_not_ready_fails() {
    let cluster = Cluster::installed();
    cluster.api.apply(controller_pod(false));
    let output = cluster.check(&[]);
    let existence = broken(
        EXISTENCE_OK,
        '×',
        "control plane pods are ready",
        &["pods not ready: weft-controller-5d9f7c-abcde"],
        "weft-existence-ready",
    );
    assert_report(&output, &installed_except(EXISTENCE_OK, &existence), false);
}

#[test]
fn a_missing_crd_fails() {
    let cluster = Cluster::installed();
    cluster.delete(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "workloads.weft.dev",
    );
    let output = cluster.check(&[]);
    let config = broken(
        CONFIG_OK,
        '×',
        "control plane CustomResourceDefinitions exist",
        &["missing CustomResourceDefinitions: workloads.weft.dev"],
        "weft-config-crd",
    );
    assert_report(&output, &installed_except(CONFIG_OK, &config), false);
}

#[test]
fn a_missing_webhook_fails() {
    let cluster = Cluster::installed();
    cluster.delete(
        "admissionregistration.k8s.io/v1",
        "MutatingWebhookConfiguration",
        PROXY_INJECTOR_WEBHOOK,
    );
    let output = cluster.check(&[]);
    assert_report(
        &output,
        &installed_except(WEBHOOKS_OK, &webhook_missing()),
        false,
    );
}

/// The webhook trusts an anchor the control plane does not use (the
/// anchors were rotated, the webhook was not): the API server would refuse
/// the injector's certificate.
#[test]
fn a_webhook_trusting_another_anchor_fails_with_a_hint() {
    let cluster = Cluster::installed();
    let stranger = authority("root.other.cluster.local", A_YEAR, None);
    cluster.set_webhook_anchors(&stranger.pem);
    let output = cluster.check(&[]);
    let webhooks = broken(
        WEBHOOKS_OK,
        '×',
        "proxy-injector webhook trusts the identity trust anchors",
        &[
            "webhook weft-proxy-injector.weft.io's caBundle lacks the trust anchors of ConfigMap weft-identity-trust-roots (CN=root.weft.cluster.local): the API server cannot verify the injector's certificate, and new pods start unmeshed",
        ],
        "weft-webhooks-proxy-injector-ca-bundle",
    );
    assert_report(&output, &installed_except(WEBHOOKS_OK, &webhooks), false);

    // The old and the new anchor, as during a rotation: trusted.
    cluster.set_webhook_anchors(&format!("{}{}", stranger.pem, cluster.anchor.pem));
    assert_report(&cluster.check(&[]), &INSTALLED_OK, true);
}

/// The injector's Service without a ready endpoint (the controller is not
/// ready to serve it): new pods would start unmeshed.
#[test]
fn an_injector_without_ready_endpoints_fails() {
    let cluster = Cluster::installed();
    cluster.api.apply(injector_endpoint_slice(false));
    // Another Service's ready endpoint does not count.
    let mut other = injector_endpoint_slice(true);
    other["metadata"]["name"] = json!("weft-dst-abcde");
    other["metadata"]["labels"]["kubernetes.io/service-name"] = json!("weft-dst");
    cluster.api.apply(other);
    let output = cluster.check(&[]);
    let webhooks = broken(
        WEBHOOKS_OK,
        '×',
        "proxy-injector Service has ready endpoints",
        &[
            "none of the 1 endpoints of Service weft-proxy-injector is ready: new pods start unmeshed",
        ],
        "weft-webhooks-proxy-injector-endpoints",
    );
    assert_report(&output, &installed_except(WEBHOOKS_OK, &webhooks), false);
}

const PRE_SETUP_OK: &str = "\
pre-kubernetes-setup
--------------------
√ control plane namespace does not already exist
√ can create non-namespaced resources
√ can create ServiceAccounts
√ can create Services
√ can create Deployments
√ can create ConfigMaps
√ can create Secrets
√ can create PodDisruptionBudgets
√ can read Secrets
√ can create TokenReviews
";

const PRE_CAPABILITY_OK: &str = "\
pre-kubernetes-capability
-------------------------
√ has NET_ADMIN capability
√ has NET_RAW capability
";

#[test]
fn pre_passes_on_an_empty_cluster_and_fails_on_an_installed_one() {
    let cluster = Cluster::empty();
    let output = cluster.check(&["--pre"]);
    assert_report(&output, &[API_OK, PRE_SETUP_OK, PRE_CAPABILITY_OK], true);
    // It asked about the namespaced kinds in the control plane's namespace.
    assert!(
        cluster
            .api
            .requests()
            .iter()
            .any(|request| request.method == "POST"
                && request.path.ends_with("selfsubjectaccessreviews")),
        "{:?}",
        cluster.api.requests()
    );

    let installed = Cluster::installed();
    let output = installed.check(&["--pre"]);
    let text = stdout(&output);
    assert!(
        text.contains(
            "× control plane namespace does not already exist\n    The \"weft\" namespace already exists\n    see https://weft.dev/checks/#pre-ns for hints\n"
        ),
        "{text}"
    );
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn pre_fails_when_access_is_denied() {
    let cluster = Cluster::empty();
    cluster
        .api
        .set_self_subject_access_review(|attributes| attributes.resource != "clusterroles");
    let output = cluster.check(&["--pre"]);
    let setup = broken(
        PRE_SETUP_OK,
        '×',
        "can create non-namespaced resources",
        &["not allowed to create clusterroles.rbac.authorization.k8s.io"],
        "pre-k8s-cluster-k8s",
    );
    assert_report(&output, &[API_OK, &setup, PRE_CAPABILITY_OK], false);
}

#[test]
fn proxy_checks_the_meshed_pods_trust_anchors() {
    let cluster = Cluster::installed();
    cluster
        .api
        .apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}}));
    cluster.api.apply(meshed_pod("web-1", &cluster.anchor.pem));
    let data_plane_ok = "\
weft-data-plane
---------------
√ data plane namespace exists
√ data plane proxies are ready
√ data plane and cli versions match
√ data plane and control plane versions match
";
    let identity_data_plane_ok = "\
weft-identity-data-plane
------------------------
√ data plane proxies' trust anchors match the control plane's
";
    fn all<'a>(data: &'a str, identity: &'a str) -> Vec<&'a str> {
        INSTALLED_OK
            .iter()
            .copied()
            .chain([data, identity])
            .collect()
    }
    let output = cluster.check(&["--proxy", "--data-plane-namespace", "demo"]);
    assert_report(&output, &all(data_plane_ok, identity_data_plane_ok), true);

    let stranger = authority("root.weft.cluster.local", A_YEAR, None);
    cluster.api.apply(meshed_pod("web-2", &stranger.pem));
    let output = cluster.check(&["--proxy", "--data-plane-namespace", "demo"]);
    let mismatch = "\
weft-identity-data-plane
------------------------
× data plane proxies' trust anchors match the control plane's
    WEFT_PROXY_IDENTITY_TRUST_ANCHORS differs from ConfigMap weft-identity-trust-roots in: demo/web-2
    see https://weft.dev/checks/#weft-identity-data-plane-proxies-certs-match-ca for hints
";
    assert_report(&output, &all(data_plane_ok, mismatch), false);

    // Every namespace (no --data-plane-namespace): no namespace check, the same pods.
    let output = cluster.check(&["--proxy"]);
    let every_namespace = data_plane_ok.replace("√ data plane namespace exists\n", "");
    assert_report(&output, &all(&every_namespace, mismatch), false);
}

/// The control plane injects another proxy version than the running pods
/// have (it was upgraded, they were not restarted): a warning naming them.
#[test]
fn proxy_warns_about_pods_injected_at_another_version() {
    let cluster = Cluster::installed();
    cluster
        .api
        .apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}}));
    cluster.api.apply(meshed_pod("web-1", &cluster.anchor.pem));
    let mut deployment = cluster
        .api
        .get(
            "apps/v1",
            "Deployment",
            Some(CONTROL_PLANE_NAMESPACE),
            CONTROLLER_NAME,
        )
        .unwrap();
    deployment["spec"]["template"]["spec"]["containers"][0]["args"] =
        json!(["--kubernetes", "--proxy-version", "v9.9.9"]);
    cluster.api.apply(deployment);
    let output = cluster.check(&["--proxy", "--data-plane-namespace", "demo"]);
    let text = stdout(&output);
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        text.contains(&format!(
            "‼ data plane and control plane versions match\n    proxies not running the control plane's version v9.9.9: demo/web-1 ({version})\n    see https://weft.dev/checks/#weft-data-plane-control-plane-version for hints\n"
        )),
        "{text}"
    );
    // A warning: the status stays √.
    assert!(text.ends_with("Status check results are √\n"), "{text}");
    assert_eq!(output.status.code(), Some(0));
}

/// The server stopped: `can query the Kubernetes API` fails, naming the
/// server and the cause, and nothing else runs.
#[test]
fn an_unreachable_api_fails_clearly() {
    let api = KubeApiServer::start();
    let url = api.url();
    let kubeconfig = kubeconfig_path("weft-check-cluster-stopped");
    api.write_kubeconfig(&kubeconfig);
    drop(api);
    let output = weft_check(&kubeconfig).output().unwrap();
    let _ = std::fs::remove_file(&kubeconfig);
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[..4],
        [
            "kubernetes-api",
            "--------------",
            "√ can initialize the client",
            "× can query the Kubernetes API"
        ],
        "{text}"
    );
    assert!(
        lines[4].starts_with(&format!("    cannot query the Kubernetes API at {url}: "))
            && lines[4].to_lowercase().contains("connection refused"),
        "{text}"
    );
    assert_eq!(
        lines[5..],
        [
            "    see https://weft.dev/checks/#k8s-api for hints",
            "",
            "Status check results are ×"
        ],
        "{text}"
    );
    assert_eq!(output.status.code(), Some(1));
}

/// `--wait`: the checks run again until they pass — here once the
/// controller pod turns ready while `weft check` waits.
#[test]
fn wait_retries_until_the_checks_pass() {
    let cluster = Cluster::installed();
    cluster.api.apply(controller_pod(false));
    let child = weft_check(&cluster.kubeconfig)
        .args(["--wait", "2m"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Ready once a second round began: the first one saw it not ready.
    let pods_lists = || {
        cluster
            .api
            .requests()
            .iter()
            .filter(|request| {
                request.method == "GET" && request.path.ends_with("/namespaces/weft/pods")
            })
            .count()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while pods_lists() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "no second round: {:?}",
            cluster.api.requests()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    cluster.api.apply(controller_pod(true));
    let output = child.wait_with_output().unwrap();
    assert_report(&output, &INSTALLED_OK, true);
}

/// What `weft install --crds` and `weft install` print, applied to an empty
/// cluster, passes every `weft check` once the controller runs (the test
/// plays the kubelet and the EndpointSlice controller: Deployment status, a
/// ready pod, the injector Service's ready endpoint) — the proxy
/// injector's webhook, Service and anchors included.
#[test]
fn what_weft_install_writes_passes() {
    let cluster = Cluster::empty();
    let output = cluster.check(&["--pre"]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    for args in [&["install", "--crds"][..], &["install"][..]] {
        let install = Command::new(env!("CARGO_BIN_EXE_weft"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            install.status.success(),
            "weft {args:?}: {}",
            String::from_utf8_lossy(&install.stderr)
        );
        cluster
            .api
            .apply_yaml(&String::from_utf8(install.stdout).unwrap());
    }
    let mut deployment = cluster
        .api
        .get(
            "apps/v1",
            "Deployment",
            Some(CONTROL_PLANE_NAMESPACE),
            CONTROLLER_NAME,
        )
        .expect("weft install writes the controller's Deployment");
    deployment["status"] = json!({"replicas": 1, "readyReplicas": 1, "availableReplicas": 1});
    cluster.api.apply(deployment);
    cluster.api.apply(controller_pod(true));
    // Before the injector's endpoint is ready: new pods would go unmeshed.
    let output = cluster.check(&[]);
    let no_endpoints = broken(
        WEBHOOKS_OK,
        '×',
        "proxy-injector Service has ready endpoints",
        &[
            "Service weft-proxy-injector has no endpoints: no controller pod serves the injector, and new pods start unmeshed",
        ],
        "weft-webhooks-proxy-injector-endpoints",
    );
    assert_report(
        &output,
        &installed_except(WEBHOOKS_OK, &no_endpoints),
        false,
    );

    cluster.api.apply(injector_endpoint_slice(true));
    let output = cluster.check(&[]);
    assert_report(&output, &INSTALLED_OK, true);
}

/// `--context` picks the kubeconfig's context (and so the server); an
/// unknown one fails `can initialize the client`, and nothing else runs.
#[test]
fn context_selects_the_cluster() {
    let cluster = Cluster::installed();
    // A current context pointing nowhere; `test` is the server.
    let kubeconfig = cluster
        .api
        .kubeconfig_yaml()
        .replace("current-context: test", "current-context: nowhere")
        .replace(
            "contexts:\n",
            "contexts:\n- name: nowhere\n  context:\n    cluster: nowhere\n    user: test\n",
        )
        .replace(
            "clusters:\n",
            "clusters:\n- name: nowhere\n  cluster:\n    server: http://127.0.0.1:1\n",
        );
    std::fs::write(&cluster.kubeconfig, kubeconfig).unwrap();
    let output = cluster.check(&["--context", "test"]);
    assert_report(&output, &INSTALLED_OK, true);

    let output = cluster.check(&["--context", "missing"]);
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[..3],
        [
            "kubernetes-api",
            "--------------",
            "× can initialize the client"
        ],
        "{text}"
    );
    assert!(lines[3].contains("missing"), "{text}");
    assert!(text.ends_with("Status check results are ×\n"), "{text}");
    assert_eq!(output.status.code(), Some(1));
}
