//! The proxy injector's AdmissionReview answers, golden: each
//! `fixtures/injector/<case>.review.json` (as the API server posts it, with
//! the namespace's annotations in `<case>.namespace.json`) goes through the
//! pure [`review`] and must give `<case>.response.json` and, when the answer
//! carries a patch, `<case>.patch.json` (the patch decoded, for reading).
//! `WEFT_UPDATE_GOLDEN=1` rewrites them.
//!
//! Then the patch is applied to the pod as the API server would: the result
//! must read as a `k8s_openapi` Pod and pass `kubernetes-validate --strict`
//! for Kubernetes 1.33 (the tool from `scripts/k8s-tools.sh`, found through
//! `$WEFT_K8S_TOOLS`; skipped when absent, except under CI).
//!
//! ```text
//! <case>.review.json + <case>.namespace.json ─► review() ─► response == <case>.response.json
//!                                                  └ base64 patch ─► == <case>.patch.json ─► apply ─► kubernetes-validate
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use base64::Engine;
use serde_json::Value;
use weft_controller::injector::review::{Reviewed, review};
use weft_core::inject::{InjectionConfig, PatchOperation, apply};
use weft_test_support::k8s_tools::{kubernetes_validate, kubernetes_validate_strict};

/// Every case and the decision expected of it.
const CASES: [(&str, &str); 11] = [
    ("deployment-pod", "injected"),
    ("job-pod", "injected"),
    ("statefulset-pod", "injected"),
    ("existing-init-containers", "injected"),
    ("dry-run", "injected"),
    ("host-network", "skipped"),
    ("already-injected", "already_injected"),
    ("namespace-enabled-pod-disabled", "not_requested"),
    ("non-pod", "not_a_pod_create"),
    ("update-operation", "not_a_pod_create"),
    ("plain-namespace", "not_requested"),
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/injector")
}

/// The settings of the goldens: the defaults with a fixed version and
/// trust anchors, so a release does not change them.
fn config() -> InjectionConfig {
    let mut config = InjectionConfig::new(
        "-----BEGIN CERTIFICATE-----\nMIIBfixture\n-----END CERTIFICATE-----\n",
    );
    config.proxy_version = "v0.0.0-golden".to_string();
    config
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// The review body of `case` (`plain-namespace`: the deployment pod in a
/// namespace without annotations).
fn review_body(case: &str) -> Vec<u8> {
    let file = if case == "plain-namespace" {
        "deployment-pod"
    } else {
        case
    };
    read(&fixtures().join(format!("{file}.review.json"))).into_bytes()
}

/// The annotations of the case's namespace (none when it has no file).
fn namespace_annotations(case: &str) -> BTreeMap<String, String> {
    let path = fixtures().join(format!("{case}.namespace.json"));
    if !path.exists() {
        return BTreeMap::new();
    }
    serde_json::from_str(&read(&path)).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Reviews `case`; only the request's namespace has annotations.
fn reviewed(case: &str) -> Reviewed {
    let body = review_body(case);
    let request: Value = serde_json::from_slice(&body).unwrap();
    let namespace = request["request"]["namespace"]
        .as_str()
        .unwrap()
        .to_string();
    let annotations = namespace_annotations(case);
    review(
        &body,
        |asked| {
            if asked == namespace {
                annotations.clone()
            } else {
                BTreeMap::new()
            }
        },
        &config(),
    )
}

/// The decoded patch of a response, if it has one.
fn patch_of(response: &Value) -> Option<Vec<PatchOperation>> {
    let encoded = response["response"]["patch"].as_str()?;
    assert_eq!(response["response"]["patchType"], "JSONPatch");
    let json = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("the patch is standard base64");
    Some(serde_json::from_slice(&json).expect("the patch is a JSON Patch"))
}

/// Compares `actual` with the golden `file`, or rewrites it under
/// `WEFT_UPDATE_GOLDEN`.
fn check_golden(file: &str, actual: &str) {
    weft_test_support::golden::check(&fixtures().join(file), actual, "the injector's answer");
}

fn pretty(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap() + "\n"
}

#[test]
fn injector_answers_match_the_goldens() {
    for (case, decision) in CASES {
        let reviewed = reviewed(case);
        assert_eq!(reviewed.status(), 200, "{case}");
        assert_eq!(reviewed.verdict.label(), decision, "{case}");
        let response: Value = serde_json::from_slice(&reviewed.body).unwrap();
        let request: Value = serde_json::from_slice(&review_body(case)).unwrap();
        assert_eq!(
            response["response"]["uid"], request["request"]["uid"],
            "{case}: uid echoed"
        );
        assert_eq!(
            response["response"]["allowed"], true,
            "{case}: never refused"
        );
        check_golden(&format!("{case}.response.json"), &pretty(&response));
        let patch_file = fixtures().join(format!("{case}.patch.json"));
        match patch_of(&response) {
            Some(patch) => {
                assert!(
                    matches!(decision, "injected" | "skipped"),
                    "{case}: {decision} with a patch"
                );
                check_golden(&format!("{case}.patch.json"), &pretty(&patch));
            }
            None => {
                assert!(
                    !matches!(decision, "injected" | "skipped"),
                    "{case}: {decision} without a patch"
                );
                if std::env::var_os("WEFT_UPDATE_GOLDEN").is_some() {
                    let _ = std::fs::remove_file(&patch_file);
                }
                assert!(
                    !patch_file.exists(),
                    "{case}: a stale {}",
                    patch_file.display()
                );
            }
        }
    }
}

#[test]
fn injector_skips_say_why_in_the_pod() {
    let reviewed = reviewed("host-network");
    let response: Value = serde_json::from_slice(&reviewed.body).unwrap();
    let mut pod: Value =
        serde_json::from_slice::<Value>(&review_body("host-network")).unwrap()["request"]["object"]
            .clone();
    apply(&mut pod, &patch_of(&response).unwrap()).unwrap();
    let note = pod["metadata"]["annotations"]["weft.io/inject-skipped"]
        .as_str()
        .expect("the skip is noted");
    assert!(!note.is_empty());
    assert!(
        pod["spec"]["initContainers"].is_null(),
        "nothing injected: {pod}"
    );
}

/// The patched pods of every case (and the pods left alone), as files.
fn patched_pods(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for (case, decision) in CASES {
        let request: Value = serde_json::from_slice(&review_body(case)).unwrap();
        let mut object = request["request"]["object"].clone();
        if object["kind"] != "Pod" {
            continue;
        }
        let response: Value = serde_json::from_slice(&reviewed(case).body).unwrap();
        if let Some(patch) = patch_of(&response) {
            apply(&mut object, &patch).unwrap_or_else(|error| panic!("{case}: {error}"));
        }
        // The API server names the pod before storing it.
        if object["metadata"]["name"].is_null() {
            object["metadata"]["name"] = Value::from(format!("{case}-x2x9q"));
        }
        let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(object.clone())
            .unwrap_or_else(|error| panic!("{case}: the patched pod is not a Pod: {error}"));
        let proxies = pod
            .spec
            .iter()
            .flat_map(|spec| spec.init_containers.iter().flatten())
            .filter(|container| container.name == "weft-proxy")
            .count();
        let meshed = matches!(decision, "injected" | "already_injected");
        let weft_init = pod
            .spec
            .iter()
            .flat_map(|spec| spec.init_containers.iter().flatten())
            .filter(|container| container.name == "weft-init")
            .count();
        assert_eq!(
            proxies,
            usize::from(meshed),
            "{case}: weft-proxy init containers"
        );
        if decision == "injected" {
            assert_eq!(weft_init, 1, "{case}: weft-init");
        }
        let path = dir.join(format!("{case}.json"));
        std::fs::write(&path, serde_json::to_string_pretty(&object).unwrap()).unwrap();
        files.push(path);
    }
    files
}

#[test]
fn injector_patched_pods_pass_kubernetes_validate_strict() {
    let dir = std::env::temp_dir().join(format!("weft-injector-pods-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let files = patched_pods(&dir);
    assert!(files.len() >= 8, "{files:?}");
    let Some(tool) = kubernetes_validate() else {
        return;
    };
    kubernetes_validate_strict(&tool, &files, &["1.33.0"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Prints how long one review of a Deployment's pod takes (not asserted).
#[test]
fn injector_review_latency_is_printed() {
    let body = review_body("deployment-pod");
    let annotations = namespace_annotations("deployment-pod");
    let config = config();
    let rounds = 200;
    let started = Instant::now();
    for _ in 0..rounds {
        let reviewed = review(&body, |_| annotations.clone(), &config);
        assert_eq!(reviewed.verdict.label(), "injected");
    }
    let each = started.elapsed() / rounds;
    eprintln!(
        "injector review of a Deployment's pod ({} bytes): {each:?} each",
        body.len()
    );
}
