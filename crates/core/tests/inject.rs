//! Proxy injection on pods as the API server sends them to the webhook
//! (`tests/fixtures/inject/<case>.pod.json`, with the namespace's
//! annotations in `<case>.namespace.json` when it has any):
//!
//! - each decision is the expected one and the patch matches the golden
//!   `<case>.patch.json` (`WEFT_UPDATE_GOLDEN=1` rewrites them);
//! - every patched pod passes `kubernetes-validate --strict` for
//!   Kubernetes 1.33 and 1.37 (the tool from `scripts/k8s-tools.sh`, a venv
//!   at `$WEFT_K8S_TOOLS` or `target/k8s-tools`; without it the test prints
//!   "skipped", and fails when `CI` is set) and round-trips through
//!   k8s-openapi's `Pod` without losing a field;
//! - `uninject` gives back each fixture.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};
use weft_core::inject::{
    Decision, InjectionConfig, PatchOperation, SkipReason, apply, inject, uninject,
};

mod common;

use common::{k8s_tools, kubernetes_validate_strict};

/// Every fixture and what the injector decides for it.
fn cases() -> Vec<(&'static str, Decision)> {
    let invalid = SkipReason::InvalidAnnotation {
        annotation: "config.weft.io/proxy-memory-request".to_string(),
        reason: "\"64MB\" is not a Kubernetes quantity (such as 100m, 0.5, 64Mi)".to_string(),
    };
    vec![
        ("deployment-pod", Decision::Injected),
        ("job-pod", Decision::Injected),
        ("statefulset-pod", Decision::Injected),
        ("existing-init-containers", Decision::Injected),
        ("ingress", Decision::Injected),
        ("host-network", Decision::Skipped(SkipReason::HostNetwork)),
        ("invalid-annotation", Decision::Skipped(invalid)),
        ("already-injected", Decision::AlreadyInjected),
        ("disabled", Decision::NotRequested),
    ]
}

/// The injector's settings in the goldens: the defaults with a fixed
/// version and trust anchors, so a release does not change them.
fn config() -> InjectionConfig {
    let mut config = InjectionConfig::new(
        "-----BEGIN CERTIFICATE-----\nMIIBfixture\n-----END CERTIFICATE-----\n",
    );
    config.proxy_version = "v0.0.0-golden".to_string();
    config
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/inject")
}

fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn pod(case: &str) -> Value {
    read_json(&fixtures().join(format!("{case}.pod.json")))
}

fn namespace_annotations(case: &str) -> BTreeMap<String, String> {
    let path = fixtures().join(format!("{case}.namespace.json"));
    if !path.exists() {
        return BTreeMap::new();
    }
    serde_json::from_value(read_json(&path))
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn patch(case: &str) -> (Decision, Vec<PatchOperation>) {
    let injection = inject(&pod(case), &namespace_annotations(case), &config());
    (injection.decision, injection.patch)
}

fn patched(case: &str) -> Value {
    let mut pod = pod(case);
    let (_, patch) = patch(case);
    apply(&mut pod, &patch).unwrap_or_else(|error| panic!("{case}: {error}"));
    pod
}

#[test]
fn decisions_and_patches_match_golden() {
    let update = std::env::var_os("WEFT_UPDATE_GOLDEN").is_some();
    let mut differing = Vec::new();
    for (case, expected) in cases() {
        let (decision, patch) = patch(case);
        assert_eq!(decision, expected, "{case}");
        let actual = serde_json::to_string_pretty(&patch).expect("a patch serializes") + "\n";
        let path = fixtures().join(format!("{case}.patch.json"));
        if update {
            std::fs::write(&path, &actual).expect("write the golden patch");
            continue;
        }
        let expected = std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        if expected != actual {
            differing.push(format!("--- {case}.patch.json, injected:\n{actual}"));
        }
    }
    assert!(
        differing.is_empty(),
        "patches differ from the goldens; if the change is intended, rerun with \
         WEFT_UPDATE_GOLDEN=1 and review the diff.\n{}",
        differing.join("\n")
    );
}

#[test]
fn golden_patches_are_rfc_6902() {
    for (case, _) in cases() {
        let golden = read_json(&fixtures().join(format!("{case}.patch.json")));
        let operations: Vec<PatchOperation> = serde_json::from_value(golden.clone())
            .unwrap_or_else(|error| panic!("{case}: {error}"));
        for operation in golden.as_array().expect("a patch is an array") {
            let op = operation["op"].as_str().expect("op");
            assert!(["add", "remove", "replace"].contains(&op), "{case}: {op}");
            assert!(
                operation["path"]
                    .as_str()
                    .is_some_and(|path| path.starts_with('/')),
                "{case}: {operation}"
            );
        }
        let mut pod = pod(case);
        apply(&mut pod, &operations).unwrap_or_else(|error| panic!("{case}: {error}"));
    }
}

#[test]
fn skipped_pods_only_get_the_reason() {
    for (case, decision) in cases() {
        let Decision::Skipped(reason) = decision else {
            continue;
        };
        let patched = patched(case);
        let mut expected = pod(case);
        expected["metadata"]["annotations"]["weft.io/inject-skipped"] = json!(reason.to_string());
        assert_eq!(patched, expected, "{case}");
    }
}

#[test]
fn uninject_gives_back_each_fixture() {
    for (case, decision) in cases() {
        let original = pod(case);
        let mut pod = patched(case);
        let removal = uninject(&pod);
        apply(&mut pod, &removal).unwrap_or_else(|error| panic!("{case}: {error}"));
        if case == "already-injected" {
            // Its proxy was not injected here, and uninject removes it too.
            assert!(!removal.is_empty(), "{case}");
            continue;
        }
        assert_eq!(pod, original, "{case} ({decision:?})");
    }
}

/// The pod as a whole object: `kind`, `apiVersion` and a name (pods a
/// controller creates only have `generateName` when admitted).
fn as_pod_object(case: &str, pod: &Value) -> Value {
    let mut metadata = pod["metadata"].clone();
    if metadata.get("name").is_none() {
        let prefix = metadata["generateName"].as_str().unwrap_or("pod-");
        metadata["name"] = json!(format!("{prefix}abcde"));
    }
    if metadata.get("namespace").is_none() {
        metadata["namespace"] = json!("default");
    }
    let object = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": pod["spec"],
    });
    assert!(object["spec"].is_object(), "{case}: no spec");
    object
}

#[test]
fn patched_pods_round_trip_through_k8s_openapi() {
    for (case, _) in cases() {
        let object = as_pod_object(case, &patched(case));
        let typed: Pod = serde_json::from_value(object.clone())
            .unwrap_or_else(|error| panic!("{case}: {error}"));
        let back = serde_json::to_value(&typed).expect("a Pod serializes");
        assert_eq!(
            back, object,
            "{case}: a field k8s-openapi does not know was lost"
        );
    }
}

#[test]
fn patched_pods_pass_kubernetes_validate() {
    let Some(tools) = k8s_tools() else { return };
    let directory = Path::new(env!("CARGO_TARGET_TMPDIR")).join("inject-validate");
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).expect("scratch directory");
    let mut files = Vec::new();
    for (case, _) in cases() {
        let object = as_pod_object(case, &patched(case));
        // JSON is YAML: the validator reads it as is.
        let path = directory.join(format!("{case}.yaml"));
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&object).expect("serializes"),
        )
        .expect("write the pod");
        files.push(path);
    }
    kubernetes_validate_strict(&tools, &files, &["1.33.0", "1.37.0"]);
}

#[test]
fn kubernetes_validate_refuses_a_broken_injection() {
    // The check above would pass vacuously if the validator ignored the
    // injected containers: a misspelt field in one must fail.
    let Some(tools) = k8s_tools() else { return };
    let directory = Path::new(env!("CARGO_TARGET_TMPDIR")).join("inject-validate-broken");
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).expect("scratch directory");
    let mut object = as_pod_object("deployment-pod", &patched("deployment-pod"));
    object["spec"]["initContainers"][1]["restartPolicyy"] = json!("Always");
    let path = directory.join("broken.yaml");
    std::fs::write(&path, object.to_string()).expect("write the pod");
    let output = Command::new(tools.join("kubernetes-validate"))
        .args(["--strict", "--quiet", "-k", "1.33.0"])
        .arg(&path)
        .output()
        .expect("run kubernetes-validate");
    assert!(!output.status.success(), "a misspelt field passed");
}
