//! `weft install`, `weft install --ha`, `weft install --crds` and
//! `weft uninstall`, run as the real `weft` binary:
//!
//! - the output matches the golden files in `tests/golden/` when given
//!   fixed credentials (`tests/golden/credentials/`) and API token;
//!   `WEFT_UPDATE_GOLDEN=1` rewrites them;
//! - every document passes `kubernetes-validate --strict` for Kubernetes
//!   1.33 and 1.37 (the tool from `scripts/k8s-tools.sh`), and round-trips
//!   through its k8s-openapi type without losing a field;
//! - `--ha` changes what it should; generated credentials chain and differ
//!   per run; bad credential files are named in the error; RBAC grants
//!   nothing it need not;
//! - `--output DIR` writes one file per object in apply order, and
//!   `weft uninstall` names every object the installs create;
//! - the proxy injector's webhook trusts exactly the anchors install wrote,
//!   calls the injector's Service on its path, and that Service selects the
//!   controller's pods on the controller's `injector` port.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use weft_test_support::k8s_tools::{kubernetes_validate, kubernetes_validate_strict};
use x509_parser::prelude::{FromDer, X509Certificate};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn credential(name: &str) -> String {
    golden_dir()
        .join("credentials")
        .join(name)
        .display()
        .to_string()
}

/// The flags that make `weft install` reproducible.
fn fixed_credentials() -> Vec<String> {
    vec![
        "--identity-trust-anchors-file".to_string(),
        credential("trust-anchors.pem"),
        "--identity-issuer-certificate-file".to_string(),
        credential("issuer.crt"),
        "--identity-issuer-key-file".to_string(),
        credential("issuer.key"),
        "--api-token-file".to_string(),
        credential("api-token"),
    ]
}

fn weft(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(args)
        .output()
        .unwrap()
}

fn args(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| item.to_string()).collect()
}

/// `weft ARGS`'s stdout; panics with stderr unless it succeeds.
fn weft_ok(args: &[String]) -> String {
    let output = weft(args);
    assert!(
        output.status.success(),
        "weft {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn install(extra: &[&str]) -> String {
    let mut arguments = args(&["install"]);
    arguments.extend(args(extra));
    arguments.extend(fixed_credentials());
    weft_ok(&arguments)
}

/// The documents of a multi-document stream, as JSON values.
fn documents(text: &str) -> Vec<Value> {
    if text.trim().is_empty() {
        return Vec::new();
    }
    let documents: Vec<Value> = serde_saphyr::from_str_multiple(text).unwrap();
    documents
        .into_iter()
        .filter(|document| !document.is_null())
        .collect()
}

fn find<'a>(documents: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    documents
        .iter()
        .find(|document| document["kind"] == kind && document["metadata"]["name"] == name)
}

fn typed<T: DeserializeOwned>(documents: &[Value], kind: &str, name: &str) -> T {
    let document = find(documents, kind, name).unwrap_or_else(|| panic!("no {kind} {name}"));
    serde_json::from_value(document.clone()).unwrap()
}

fn check_golden(name: &str, actual: &str) {
    weft_test_support::golden::check(&golden_dir().join(name), actual, "`weft` output");
}

#[test]
fn install_matches_golden() {
    check_golden("install.yaml", &install(&[]));
}

#[test]
fn install_ha_matches_golden() {
    check_golden("install-ha.yaml", &install(&["--ha"]));
}

#[test]
fn install_crds_matches_golden() {
    check_golden("install-crds.yaml", &weft_ok(&args(&["install", "--crds"])));
}

#[test]
fn uninstall_matches_golden() {
    check_golden("uninstall.yaml", &weft_ok(&args(&["uninstall"])));
}

fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weft-install-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    files
}

#[test]
fn every_document_passes_kubernetes_validate_strict() {
    let Some(tool) = kubernetes_validate() else {
        return;
    };
    let base = scratch("validate");
    for (name, extra) in [
        ("install", vec![]),
        ("ha", vec!["--ha"]),
        ("external", vec!["--identity-external-issuer"]),
    ] {
        let dir = base.join(name);
        let mut arguments = args(&["install", "--output"]);
        arguments.push(dir.display().to_string());
        arguments.extend(args(&extra));
        if name == "external" {
            arguments.push("--identity-trust-anchors-file".to_string());
            arguments.push(credential("trust-anchors.pem"));
        }
        weft_ok(&arguments);
    }
    let crds = base.join("crds");
    weft_ok(&[
        "install".to_string(),
        "--crds".to_string(),
        "--output".to_string(),
        crds.display().to_string(),
    ]);
    let mut files = Vec::new();
    for name in ["install", "ha", "external", "crds"] {
        files.extend(files_in(&base.join(name)));
    }
    kubernetes_validate_strict(&tool, &files, &["1.33.0", "1.37.0"]);
    let _ = std::fs::remove_dir_all(&base);
}

/// Deserializes into `T` and back: nothing k8s-openapi does not know is lost.
fn round_trip<T: DeserializeOwned + Serialize>(document: &Value) {
    let object: T = serde_json::from_value(document.clone())
        .unwrap_or_else(|error| panic!("{error}: {document}"));
    assert_eq!(&serde_json::to_value(&object).unwrap(), document);
}

#[test]
fn every_document_round_trips_into_its_type() {
    let mut all = documents(&install(&[]));
    all.extend(documents(&install(&["--ha"])));
    all.extend(documents(&weft_ok(&args(&["install", "--crds"]))));
    for document in &all {
        let kind = document["kind"].as_str().unwrap();
        match kind {
            "Namespace" => round_trip::<Namespace>(document),
            "ServiceAccount" => round_trip::<ServiceAccount>(document),
            "ClusterRole" => round_trip::<ClusterRole>(document),
            "ClusterRoleBinding" => round_trip::<ClusterRoleBinding>(document),
            "Role" => round_trip::<Role>(document),
            "RoleBinding" => round_trip::<RoleBinding>(document),
            "ConfigMap" => round_trip::<ConfigMap>(document),
            "Secret" => round_trip::<Secret>(document),
            "Service" => round_trip::<Service>(document),
            "Deployment" => round_trip::<Deployment>(document),
            "PodDisruptionBudget" => round_trip::<PodDisruptionBudget>(document),
            "MutatingWebhookConfiguration" => round_trip::<MutatingWebhookConfiguration>(document),
            "CustomResourceDefinition" => round_trip::<CustomResourceDefinition>(document),
            other => panic!("unexpected kind {other}"),
        }
    }
}

fn controller(documents: &[Value]) -> Deployment {
    typed(documents, "Deployment", "weft-controller")
}

fn requests(deployment: &Deployment) -> (String, String) {
    let container = &deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0];
    let requests = container
        .resources
        .as_ref()
        .unwrap()
        .requests
        .as_ref()
        .unwrap();
    (requests["cpu"].0.clone(), requests["memory"].0.clone())
}

#[test]
fn ha_adds_replicas_anti_affinity_budget_and_requests() {
    let plain = documents(&install(&[]));
    let ha = documents(&install(&["--ha"]));

    let plain_controller = controller(&plain);
    let plain_spec = plain_controller.spec.as_ref().unwrap();
    assert_eq!(plain_spec.replicas, Some(1));
    assert!(
        plain_spec
            .template
            .spec
            .as_ref()
            .unwrap()
            .affinity
            .is_none()
    );
    assert!(find(&plain, "PodDisruptionBudget", "weft-controller").is_none());
    assert_eq!(requests(&plain_controller), ("100m".into(), "50Mi".into()));

    let ha_controller = controller(&ha);
    let ha_spec = ha_controller.spec.as_ref().unwrap();
    assert_eq!(ha_spec.replicas, Some(3));
    let anti_affinity = ha_spec
        .template
        .spec
        .as_ref()
        .unwrap()
        .affinity
        .as_ref()
        .unwrap()
        .pod_anti_affinity
        .as_ref()
        .unwrap();
    let required = anti_affinity
        .required_during_scheduling_ignored_during_execution
        .as_ref()
        .unwrap();
    assert_eq!(required.len(), 1);
    assert_eq!(required[0].topology_key, "kubernetes.io/hostname");
    let selector = required[0].label_selector.as_ref().unwrap();
    let expression = &selector.match_expressions.as_ref().unwrap()[0];
    assert_eq!(expression.key, "weft.io/control-plane-component");
    assert_eq!(
        expression.values.as_deref(),
        Some(&["controller".to_string()][..])
    );
    let rolling = ha_spec
        .strategy
        .as_ref()
        .unwrap()
        .rolling_update
        .as_ref()
        .unwrap();
    assert_eq!(
        rolling.max_unavailable,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1))
    );
    let (cpu, memory) = requests(&ha_controller);
    assert_ne!((cpu.as_str(), memory.as_str()), ("100m", "50Mi"));

    let budget: PodDisruptionBudget = typed(&ha, "PodDisruptionBudget", "weft-controller");
    let budget_spec = budget.spec.unwrap();
    assert_eq!(
        budget_spec.max_unavailable,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1))
    );
    assert_eq!(
        budget_spec.selector.unwrap().match_labels,
        ha_spec.selector.match_labels
    );

    // --controller-replicas overrides either default.
    let five = documents(&install(&["--ha", "--controller-replicas", "5"]));
    assert_eq!(controller(&five).spec.unwrap().replicas, Some(5));
}

#[test]
fn controller_flags_reach_the_deployment() {
    let documents = documents(&install(&[
        "--controller-image",
        "registry.example/weft-controller:test",
        "--controller-log-level",
        "debug",
        "--image-pull-policy",
        "Always",
    ]));
    let deployment = controller(&documents);
    let pod = deployment.spec.unwrap().template.spec.unwrap();
    let container = &pod.containers[0];
    assert_eq!(
        container.image.as_deref(),
        Some("registry.example/weft-controller:test")
    );
    assert_eq!(container.image_pull_policy.as_deref(), Some("Always"));
    let env = container.env.as_ref().unwrap();
    assert!(
        env.iter()
            .any(|var| var.name == "RUST_LOG" && var.value.as_deref() == Some("debug"))
    );
    let security = container.security_context.as_ref().unwrap();
    assert_eq!(security.run_as_user, Some(2103));
    assert_eq!(security.run_as_non_root, Some(true));
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    let token_mount = container
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .find(|mount| mount.mount_path == "/var/run/weft/api-token")
        .unwrap();
    assert_eq!(token_mount.read_only, Some(true));
}

fn secret_text(secret: &Secret, key: &str) -> String {
    String::from_utf8(secret.data.as_ref().unwrap()[key].0.clone()).unwrap()
}

fn certificate_der(pem: &str) -> Vec<u8> {
    x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .unwrap()
        .1
        .contents
}

/// The trust anchor in the ConfigMap, the issuer certificate and key in the Secret.
fn identity_of(documents: &[Value]) -> (String, String, String, String) {
    let roots: ConfigMap = typed(documents, "ConfigMap", "weft-identity-trust-roots");
    let anchors = roots.data.unwrap()["ca-bundle.crt"].clone();
    let issuer: Secret = typed(documents, "Secret", "weft-identity-issuer");
    assert_eq!(issuer.type_.as_deref(), Some("kubernetes.io/tls"));
    let token: Secret = typed(documents, "Secret", "weft-api-token");
    (
        anchors,
        secret_text(&issuer, "tls.crt"),
        secret_text(&issuer, "tls.key"),
        secret_text(&token, "token"),
    )
}

#[test]
fn generated_credentials_chain_and_differ_per_run() {
    let first = documents(&weft_ok(&args(&["install"])));
    let second = documents(&weft_ok(&args(&["install"])));
    let (anchors, certificate, key, token) = identity_of(&first);
    let issuer_secret: Secret = typed(&first, "Secret", "weft-identity-issuer");
    assert_eq!(secret_text(&issuer_secret, "ca.crt"), anchors);

    let anchor_der = certificate_der(&anchors);
    let anchor = X509Certificate::from_der(&anchor_der).unwrap().1;
    let issuer_der = certificate_der(&certificate);
    let issuer = X509Certificate::from_der(&issuer_der).unwrap().1;
    assert!(anchor.is_ca() && issuer.is_ca());
    assert_eq!(issuer.issuer(), anchor.subject());
    issuer.verify_signature(Some(anchor.public_key())).unwrap();
    assert_eq!(
        issuer.subject().to_string(),
        "CN=identity.weft.cluster.local"
    );
    let key_pair = rcgen::KeyPair::from_pem(&key).unwrap();
    assert_eq!(
        key_pair.public_key_raw(),
        issuer.public_key().subject_public_key.data.as_ref()
    );
    // One private key in the output, the issuer's: never the trust anchor's.
    let private_keys: usize = first
        .iter()
        .filter(|document| document["kind"] == "Secret")
        .map(|document| {
            let secret: Secret = serde_json::from_value(document.clone()).unwrap();
            secret
                .data
                .unwrap_or_default()
                .values()
                .filter(|value| String::from_utf8_lossy(&value.0).contains("PRIVATE KEY"))
                .count()
        })
        .sum();
    assert_eq!(private_keys, 1);
    assert!(!token.is_empty());

    let (anchors_2, certificate_2, key_2, token_2) = identity_of(&second);
    assert_ne!(anchors, anchors_2);
    assert_ne!(certificate, certificate_2);
    assert_ne!(key, key_2);
    assert_ne!(token, token_2);
}

#[test]
fn given_credentials_are_written_as_given() {
    let documents = documents(&install(&[]));
    let (anchors, certificate, key, token) = identity_of(&documents);
    let read = |name: &str| std::fs::read_to_string(credential(name)).unwrap();
    assert_eq!(anchors, read("trust-anchors.pem"));
    assert_eq!(certificate, read("issuer.crt"));
    assert_eq!(key, read("issuer.key"));
    assert_eq!(token, read("api-token").trim());
}

#[test]
fn external_issuer_writes_no_issuer_secret() {
    let documents = documents(&weft_ok(&[
        "install".to_string(),
        "--identity-external-issuer".to_string(),
        "--identity-trust-anchors-file".to_string(),
        credential("trust-anchors.pem"),
    ]));
    assert!(find(&documents, "Secret", "weft-identity-issuer").is_none());
    assert!(find(&documents, "ConfigMap", "weft-identity-trust-roots").is_some());
    // The trust anchors are required.
    let output = weft(&args(&["install", "--identity-external-issuer"]));
    assert!(!output.status.success());
}

/// Proxy resources Kubernetes would refuse (a request above its limit)
/// stop `weft install` before it prints anything.
#[test]
fn proxy_resources_kubernetes_would_refuse_are_errors() {
    let mut arguments = args(&[
        "install",
        "--proxy-memory-request",
        "1Gi",
        "--proxy-memory-limit",
        "512Mi",
    ]);
    arguments.extend(fixed_credentials());
    let output = weft(&arguments);
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the memory request 1Gi is above its limit 512Mi"),
        "{stderr}"
    );
}

#[test]
fn bad_credential_files_are_named_in_the_error() {
    let dir = scratch("bad-credentials");
    std::fs::create_dir_all(&dir).unwrap();
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let missing = dir.join("missing.pem");
    let garbage = garbage.display().to_string();
    let missing = missing.display().to_string();
    let anchors = credential("trust-anchors.pem");
    let certificate = credential("issuer.crt");
    let key = credential("issuer.key");
    let cases = [
        // (anchors, certificate, key, the file the error names, what it says)
        (&garbage, &certificate, &key, &garbage, "no PEM CERTIFICATE"),
        (&anchors, &garbage, &key, &garbage, "no PEM CERTIFICATE"),
        (&anchors, &certificate, &garbage, &garbage, "bad key"),
        (&anchors, &certificate, &anchors, &anchors, "bad key"),
        (&missing, &certificate, &key, &missing, "No such file"),
        // The issuer as its own anchor: the issuer is not signed by it.
        (
            &certificate,
            &certificate,
            &key,
            &certificate,
            "not signed by any",
        ),
    ];
    for (anchors, certificate, key, named, says) in cases {
        let output = weft(&[
            "install".to_string(),
            "--identity-trust-anchors-file".to_string(),
            anchors.clone(),
            "--identity-issuer-certificate-file".to_string(),
            certificate.clone(),
            "--identity-issuer-key-file".to_string(),
            key.clone(),
        ]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{anchors} {certificate} {key}");
        assert!(output.stdout.is_empty(), "nothing printed on error");
        assert!(
            stderr.contains(named.as_str()) && stderr.contains(says),
            "expected {named} and {says:?} in: {stderr}"
        );
    }
    // Anchors alone are not enough without an external issuer.
    let output = weft(&[
        "install".to_string(),
        "--identity-trust-anchors-file".to_string(),
        anchors,
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--identity-external-issuer"));
    let _ = std::fs::remove_dir_all(&dir);
}

fn rules_of(document: &Value) -> Vec<PolicyRule> {
    serde_json::from_value(document["rules"].clone()).unwrap()
}

#[test]
fn rbac_is_least_privilege() {
    let documents = documents(&install(&["--ha"]));
    let roles: Vec<&Value> = documents
        .iter()
        .filter(|document| document["kind"] == "ClusterRole" || document["kind"] == "Role")
        .collect();
    assert_eq!(roles.len(), 2);
    for role in &roles {
        for rule in rules_of(role) {
            let everything = rule
                .verbs
                .iter()
                .chain(rule.resources.iter().flatten())
                .chain(rule.api_groups.iter().flatten());
            for item in everything {
                assert!(!item.contains('*'), "wildcard in {}", role["kind"]);
            }
            assert!(rule.non_resource_urls.is_none());
            for verb in &rule.verbs {
                let allowed =
                    if rule.resources.as_deref() == Some(&["tokenreviews".to_string()][..]) {
                        verb == "create"
                    } else {
                        ["get", "list", "watch"].contains(&verb.as_str())
                    };
                assert!(allowed, "{verb} on {:?}", rule.resources);
            }
            let touches_secrets = rule
                .resources
                .iter()
                .flatten()
                .any(|resource| resource == "secrets" || resource == "configmaps");
            if touches_secrets {
                assert_eq!(
                    role["kind"], "Role",
                    "no cluster-wide secrets or configmaps"
                );
                assert_eq!(role["metadata"]["namespace"], "weft");
                assert!(
                    rule.resource_names
                        .as_ref()
                        .is_some_and(|names| !names.is_empty())
                );
            }
        }
    }
    let secrets_rule = rules_of(find(&documents, "Role", "weft-controller").unwrap())
        .into_iter()
        .find(|rule| rule.resources.as_deref() == Some(&["secrets".to_string()][..]))
        .unwrap();
    assert_eq!(
        secrets_rule.resource_names,
        Some(vec!["weft-identity-issuer".to_string()])
    );
}

#[test]
fn output_directory_has_one_file_per_object_in_apply_order() {
    let dir = scratch("output");
    let mut arguments = args(&["install", "--ha", "--output"]);
    arguments.push(dir.display().to_string());
    arguments.extend(fixed_credentials());
    assert_eq!(weft_ok(&arguments), "", "nothing on stdout");
    let names: Vec<String> = files_in(&dir)
        .iter()
        .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names.first().map(String::as_str),
        Some("00-namespace-weft.yaml")
    );
    assert!(names.contains(&"01-serviceaccount-weft-controller.yaml".to_string()));
    // The webhook comes after what it calls: the Service and the Deployment.
    assert!(names.contains(&"13-service-weft-proxy-injector.yaml".to_string()));
    assert!(names.contains(&"14-deployment-weft-controller.yaml".to_string()));
    assert_eq!(
        names.last().map(String::as_str),
        Some("16-mutatingwebhookconfiguration-weft-proxy-injector.yaml")
    );
    // The files, concatenated, are the stdout stream.
    let mut stream = String::new();
    for path in files_in(&dir) {
        stream.push_str("---\n");
        stream.push_str(&std::fs::read_to_string(path).unwrap());
    }
    assert_eq!(stream, install(&["--ha"]));
    // A directory with files is refused.
    let output = weft(&arguments);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not empty"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// (apiVersion, kind, namespace, name) of each document.
fn identities(documents: &[Value]) -> BTreeSet<(String, String, String, String)> {
    documents
        .iter()
        .map(|document| {
            let text = |value: &Value| value.as_str().unwrap_or_default().to_string();
            (
                text(&document["apiVersion"]),
                text(&document["kind"]),
                text(&document["metadata"]["namespace"]),
                text(&document["metadata"]["name"]),
            )
        })
        .collect()
}

#[test]
fn uninstall_names_everything_install_creates() {
    let uninstall = documents(&weft_ok(&args(&["uninstall"])));
    let mut installed = documents(&install(&["--ha"]));
    installed.extend(documents(&weft_ok(&args(&["install", "--crds"]))));
    assert_eq!(identities(&uninstall), identities(&installed));
    for document in &uninstall {
        let metadata = document["metadata"].as_object().unwrap();
        assert!(
            metadata
                .keys()
                .all(|key| key == "name" || key == "namespace")
        );
        assert!(document.get("spec").is_none() && document.get("data").is_none());
    }
    // The namespace goes after everything in it.
    let last_namespaced = uninstall
        .iter()
        .rposition(|document| document["metadata"].get("namespace").is_some())
        .unwrap();
    let namespace = uninstall
        .iter()
        .position(|document| document["kind"] == "Namespace")
        .unwrap();
    assert!(namespace > last_namespaced);
}

#[test]
fn deployment_args_are_controller_flags() {
    let help = Command::new(weft_test_support::bin_path("weft-controller"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).unwrap();
    let has_flag = |flag: &str| {
        help.split(|c: char| c.is_whitespace() || c == ',' || c == '=' || c == '[')
            .any(|word| word == flag)
    };
    let deployment = controller(&documents(&install(&[
        "--image-pull-policy",
        "Never",
        "--proxy-log-level",
        "warn,weft_proxy=debug",
        "--proxy-cpu-request",
        "100m",
        "--proxy-cpu-limit",
        "1",
        "--proxy-memory-request",
        "20Mi",
        "--proxy-memory-limit",
        "250Mi",
    ])));
    let args = deployment.spec.unwrap().template.spec.unwrap().containers[0]
        .args
        .clone()
        .unwrap();
    let flags: Vec<&String> = args.iter().filter(|arg| arg.starts_with("--")).collect();
    assert!(flags.len() >= 17, "{args:?}");
    let value_of = |flag: &str| {
        let position = args.iter().position(|arg| arg == flag)?;
        args.get(position + 1).map(String::as_str)
    };
    assert_eq!(value_of("--proxy-log-level"), Some("warn,weft_proxy=debug"));
    assert_eq!(value_of("--proxy-cpu-request"), Some("100m"));
    assert_eq!(value_of("--proxy-memory-limit"), Some("250Mi"));
    for flag in flags {
        assert!(has_flag(flag), "weft-controller has no {flag}:\n{help}");
    }
}

fn webhook_configuration(documents: &[Value]) -> MutatingWebhookConfiguration {
    typed(
        documents,
        "MutatingWebhookConfiguration",
        weft_core::cluster::PROXY_INJECTOR_WEBHOOK,
    )
}

/// The webhook configuration is the plan's, field by field, and trusts
/// exactly the anchors install wrote — given or generated, with or without
/// an issuer Secret.
#[test]
fn the_injector_webhook_trusts_the_installed_anchors() {
    let given = documents(&install(&[]));
    let generated = documents(&weft_ok(&args(&["install"])));
    let external = documents(&weft_ok(&[
        "install".to_string(),
        "--identity-external-issuer".to_string(),
        "--identity-trust-anchors-file".to_string(),
        credential("trust-anchors.pem"),
    ]));
    for (name, documents) in [
        ("given", &given),
        ("generated", &generated),
        ("external", &external),
    ] {
        let roots: ConfigMap = typed(documents, "ConfigMap", "weft-identity-trust-roots");
        let anchors = roots.data.unwrap()["ca-bundle.crt"].clone();
        let configuration = webhook_configuration(documents);
        let webhooks = configuration.webhooks.unwrap();
        assert_eq!(webhooks.len(), 1, "{name}");
        let bundle = webhooks[0].client_config.ca_bundle.as_ref().unwrap();
        assert_eq!(
            String::from_utf8(bundle.0.clone()).unwrap(),
            anchors,
            "{name}"
        );
    }
    // In the YAML, caBundle is the anchors file, base64-encoded.
    let document = find(
        &given,
        "MutatingWebhookConfiguration",
        "weft-proxy-injector",
    )
    .unwrap();
    let encoded = document["webhooks"][0]["clientConfig"]["caBundle"]
        .as_str()
        .unwrap();
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    assert_eq!(
        decoded,
        std::fs::read(credential("trust-anchors.pem")).unwrap()
    );

    let expected = serde_json::json!({
        "name": "weft-proxy-injector.weft.io",
        "admissionReviewVersions": ["v1"],
        "clientConfig": {
            "caBundle": encoded,
            "service": {"name": "weft-proxy-injector", "namespace": "weft", "path": "/inject", "port": 443}
        },
        "failurePolicy": "Ignore",
        "namespaceSelector": {"matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system", "weft"]},
            {"key": "config.weft.io/admission-webhooks", "operator": "NotIn", "values": ["disabled"]}
        ]},
        "reinvocationPolicy": "Never",
        "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                   "resources": ["pods"], "scope": "Namespaced"}],
        "sideEffects": "None",
        "timeoutSeconds": 10
    });
    assert_eq!(document["webhooks"], serde_json::json!([expected]));
    // The control plane's namespace opts out by label too.
    let namespace: Namespace = typed(&given, "Namespace", "weft");
    assert_eq!(
        namespace.metadata.labels.unwrap()["config.weft.io/admission-webhooks"],
        "disabled"
    );
}

/// The webhook calls Service weft-proxy-injector on its port and
/// INJECTOR_PATH; the Service selects the controller's pods and targets
/// their `injector` port, which is the controller's --injector-addr.
#[test]
fn the_injector_webhook_reaches_the_controller() {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    use weft_core::cluster::{
        CONTROL_PLANE_NAMESPACE, INJECTOR_PATH, INJECTOR_PORT, INJECTOR_SERVICE,
    };

    for extra in [&[][..], &["--ha"][..]] {
        let documents = documents(&install(extra));
        let configuration = webhook_configuration(&documents);
        let reference = configuration.webhooks.unwrap()[0]
            .client_config
            .service
            .clone()
            .unwrap();
        assert_eq!(reference.namespace, CONTROL_PLANE_NAMESPACE);
        assert_eq!(reference.name, INJECTOR_SERVICE);
        assert_eq!(reference.path.as_deref(), Some(INJECTOR_PATH));

        let service: Service = typed(&documents, "Service", INJECTOR_SERVICE);
        assert_eq!(
            service.metadata.namespace.as_deref(),
            Some(CONTROL_PLANE_NAMESPACE)
        );
        let spec = service.spec.unwrap();
        let ports = spec.ports.unwrap();
        assert_eq!(ports.len(), 1);
        assert_eq!(Some(ports[0].port), reference.port);
        let Some(IntOrString::String(target)) = &ports[0].target_port else {
            panic!("the injector Service targets a named port: {:?}", ports[0]);
        };

        let deployment = controller(&documents);
        let template = deployment.spec.unwrap().template;
        let pod_labels = template.metadata.unwrap().labels.unwrap();
        let selector = spec.selector.unwrap();
        assert!(!selector.is_empty());
        for (key, value) in &selector {
            assert_eq!(pod_labels.get(key), Some(value), "selector {key}={value}");
        }
        let container = &template.spec.unwrap().containers[0];
        let port = container
            .ports
            .iter()
            .flatten()
            .find(|port| port.name.as_deref() == Some(target.as_str()))
            .unwrap_or_else(|| panic!("the controller has no port {target}"));
        assert_eq!(port.container_port, i32::from(INJECTOR_PORT));
        let args = container.args.clone().unwrap();
        let position = args
            .iter()
            .position(|arg| arg == "--injector-addr")
            .unwrap();
        assert_eq!(args[position + 1], format!("0.0.0.0:{INJECTOR_PORT}"));
    }
}

/// --proxy-image, --proxy-version and --image-pull-policy reach the
/// controller's command line (the injector's settings); without them the
/// defaults are this version's proxy, and no pull policy is imposed.
#[test]
fn proxy_flags_reach_the_controller() {
    let args_of = |extra: &[&str]| -> Vec<String> {
        let deployment = controller(&documents(&install(extra)));
        deployment.spec.unwrap().template.spec.unwrap().containers[0]
            .args
            .clone()
            .unwrap()
    };
    let value = |args: &[String], flag: &str| -> Option<String> {
        let position = args.iter().position(|arg| arg == flag)?;
        args.get(position + 1).cloned()
    };
    let defaults = args_of(&[]);
    assert_eq!(
        value(&defaults, "--proxy-image").as_deref(),
        Some("ghcr.io/weft-mesh/weft-proxy")
    );
    assert_eq!(
        value(&defaults, "--proxy-version").as_deref(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(value(&defaults, "--proxy-image-pull-policy"), None);

    let custom = args_of(&[
        "--proxy-image",
        "registry.example:5000/weft/proxy",
        "--proxy-version",
        "v9.9.9",
        "--image-pull-policy",
        "Always",
    ]);
    assert_eq!(
        value(&custom, "--proxy-image").as_deref(),
        Some("registry.example:5000/weft/proxy")
    );
    assert_eq!(value(&custom, "--proxy-version").as_deref(), Some("v9.9.9"));
    assert_eq!(
        value(&custom, "--proxy-image-pull-policy").as_deref(),
        Some("Always")
    );

    // A tag belongs in --proxy-version; --crds takes none of these.
    for refused in [
        &[
            "install",
            "--proxy-image",
            "ghcr.io/weft-mesh/weft-proxy:0.1.0",
        ][..],
        &["install", "--crds", "--proxy-version", "v1"][..],
    ] {
        let output = weft(&args(refused));
        assert!(!output.status.success(), "{refused:?}");
    }
}
