//! The injector's decision, pure: an AdmissionReview (`admission.k8s.io/v1`)
//! as the API server posts it in, the AdmissionReview answer out.
//!
//! ```text
//! body bytes ─► parse (own minimal structs) ─► malformed? ─► 400 + a message naming what is wrong
//!            └► a pod CREATE? ── no ─► allowed, no patch           (not_a_pod_create)
//!                  └ yes ─► weft_core::inject(pod, namespace annotations, config)
//!                           Injected / Skipped ─► allowed, patchType JSONPatch, patch = base64(JSON Patch)
//!                           NotRequested / AlreadyInjected ─► allowed, no patch
//! ```
//!
//! The review types are weft's own, not kube-core's: kube-core writes the
//! response's `patch` as an array of numbers, where the API (and its
//! documentation) wants a base64 string. Every answer allows the pod: the
//! injector only ever adds a proxy (or a note why it did not), it never
//! refuses a pod.

use std::collections::BTreeMap;

use base64::Engine;
use serde::{Deserialize, Serialize};
use weft_core::inject::{Decision, InjectionConfig, SkipReason, inject};

/// The AdmissionReview API version the injector speaks.
pub const ADMISSION_API_VERSION: &str = "admission.k8s.io/v1";
/// The AdmissionReview kind.
pub const ADMISSION_KIND: &str = "AdmissionReview";

/// What the injector decided for one review (the metric's `decision` label).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The proxy was added.
    Injected,
    /// Neither the pod nor its namespace asks for a proxy.
    NotRequested,
    /// The pod already has a weft or Linkerd proxy.
    AlreadyInjected,
    /// Asked for but not done; the patch notes why in `weft.io/inject-skipped`.
    Skipped {
        /// Why.
        reason: String,
    },
    /// Not a pod, or not a CREATE (the webhook's rules should not send these).
    NotAPodCreate,
    /// Not an AdmissionReview the injector can read: answered 400.
    Malformed {
        /// What is wrong, for the caller and the log.
        message: String,
    },
}

impl Verdict {
    /// The `decision` label of `injector_requests_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Injected => "injected",
            Verdict::NotRequested => "not_requested",
            Verdict::AlreadyInjected => "already_injected",
            Verdict::Skipped { .. } => "skipped",
            Verdict::NotAPodCreate => "not_a_pod_create",
            Verdict::Malformed { .. } => "malformed",
        }
    }

    /// Every label, for tests and dashboards.
    pub const LABELS: [&'static str; 6] = [
        "injected",
        "not_requested",
        "already_injected",
        "skipped",
        "not_a_pod_create",
        "malformed",
    ];
}

/// One review's outcome: the verdict, the pod it was about (for the log)
/// and the HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reviewed {
    /// What was decided.
    pub verdict: Verdict,
    /// `namespace/name` of the pod (`namespace/generateName*` before it has
    /// a name); empty when unknown.
    pub target: String,
    /// Whether the review asked for a dry run (nothing changes: the patch
    /// is computed all the same).
    pub dry_run: bool,
    /// The response body: the AdmissionReview JSON, or the 400 message.
    pub body: Vec<u8>,
}

impl Reviewed {
    /// The HTTP status of the answer: 200, or 400 for a malformed review.
    pub fn status(&self) -> u16 {
        match self.verdict {
            Verdict::Malformed { .. } => 400,
            _ => 200,
        }
    }
}

/// The parts of an AdmissionReview the injector reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReviewIn {
    api_version: Option<String>,
    kind: Option<String>,
    request: Option<RequestIn>,
}

/// The parts of an AdmissionRequest the injector reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestIn {
    uid: Option<String>,
    kind: Option<GroupVersionKind>,
    resource: Option<GroupVersionResource>,
    #[serde(default)]
    sub_resource: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    operation: Option<String>,
    #[serde(default)]
    object: Option<serde_json::Value>,
    #[serde(default)]
    dry_run: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct GroupVersionKind {
    #[serde(default)]
    group: String,
    #[serde(default)]
    kind: String,
}

#[derive(Debug, Deserialize)]
struct GroupVersionResource {
    #[serde(default)]
    group: String,
    #[serde(default)]
    resource: String,
}

/// The answer: an AdmissionReview with only `response`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewOut<'a> {
    api_version: &'static str,
    kind: &'static str,
    response: ResponseOut<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ResponseOut<'a> {
    uid: &'a str,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    /// base64 (standard, padded) of the JSON Patch.
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
}

/// Reviews `body` (an AdmissionReview v1 as JSON): `namespace_annotations`
/// gives a namespace's annotations (those the injector reads: `weft.io/inject`
/// and `config.*`; empty when unknown).
pub fn review(
    body: &[u8],
    namespace_annotations: impl Fn(&str) -> BTreeMap<String, String>,
    config: &InjectionConfig,
) -> Reviewed {
    let request = match parse(body) {
        Ok(request) => request,
        Err(message) => {
            return Reviewed {
                body: format!("malformed AdmissionReview: {message}\n").into_bytes(),
                verdict: Verdict::Malformed { message },
                target: String::new(),
                dry_run: false,
            };
        }
    };
    let namespace = request.namespace.clone().unwrap_or_default();
    let target = request
        .object
        .as_ref()
        .map(|object| target_of(&namespace, object))
        .unwrap_or_default();
    let dry_run = request.dry_run.unwrap_or(false);
    let uid = request.uid.as_deref().unwrap_or_default();
    let answer = |verdict: Verdict, patch: Option<String>| Reviewed {
        body: response_body(uid, patch),
        verdict,
        target: target.clone(),
        dry_run,
    };
    let is_pod = request
        .kind
        .as_ref()
        .is_some_and(|kind| kind.group.is_empty() && kind.kind == "Pod")
        && request
            .resource
            .as_ref()
            .is_some_and(|resource| resource.group.is_empty() && resource.resource == "pods")
        && request
            .sub_resource
            .as_deref()
            .unwrap_or_default()
            .is_empty();
    if !is_pod || request.operation.as_deref() != Some("CREATE") {
        return answer(Verdict::NotAPodCreate, None);
    }
    let Some(pod) = request.object.as_ref() else {
        // `parse` refuses a pod CREATE without an object.
        return answer(Verdict::NotAPodCreate, None);
    };
    let injection = inject(pod, &namespace_annotations(&namespace), config);
    let verdict = match injection.decision {
        Decision::Injected => Verdict::Injected,
        Decision::NotRequested => Verdict::NotRequested,
        Decision::AlreadyInjected => Verdict::AlreadyInjected,
        Decision::Skipped(reason) => Verdict::Skipped {
            reason: skip_reason(&reason),
        },
    };
    let patch = (!injection.patch.is_empty()).then(|| {
        // Serializing plain operations cannot fail.
        let json = serde_json::to_vec(&injection.patch).unwrap_or_default();
        base64::engine::general_purpose::STANDARD.encode(json)
    });
    answer(verdict, patch)
}

/// The request of `body`, or what is wrong with it.
fn parse(body: &[u8]) -> Result<RequestIn, String> {
    let review: ReviewIn = serde_json::from_slice(body).map_err(|error| {
        if error.is_syntax() || error.is_eof() {
            format!("not JSON: {error}")
        } else {
            format!("not an AdmissionReview: {error}")
        }
    })?;
    match review.api_version.as_deref() {
        Some(ADMISSION_API_VERSION) => {}
        Some(other) => {
            return Err(format!(
                "apiVersion is {other:?}; only {ADMISSION_API_VERSION} is served \
                 (admissionReviewVersions: [v1])"
            ));
        }
        None => {
            return Err(format!(
                "apiVersion is missing (want {ADMISSION_API_VERSION})"
            ));
        }
    }
    if review.kind.as_deref() != Some(ADMISSION_KIND) {
        return Err(format!(
            "kind is {:?}, not {ADMISSION_KIND}",
            review.kind.unwrap_or_default()
        ));
    }
    let request = review.request.ok_or("request is missing")?;
    if request.uid.as_deref().unwrap_or_default().is_empty() {
        return Err("request.uid is missing or empty".into());
    }
    if request.kind.is_none() {
        return Err("request.kind is missing".into());
    }
    if request.resource.is_none() {
        return Err("request.resource is missing".into());
    }
    if request.operation.as_deref().unwrap_or_default().is_empty() {
        return Err("request.operation is missing".into());
    }
    let pod_create = request.operation.as_deref() == Some("CREATE")
        && request.kind.as_ref().is_some_and(|kind| kind.kind == "Pod");
    if pod_create {
        match &request.object {
            Some(object) if object.is_object() => {}
            Some(_) => return Err("request.object is not a JSON object".into()),
            None => return Err("request.object is missing for a pod CREATE".into()),
        }
    }
    Ok(request)
}

/// The answer allowing the pod, with `patch` (base64) when there is one.
fn response_body(uid: &str, patch: Option<String>) -> Vec<u8> {
    let review = ReviewOut {
        api_version: ADMISSION_API_VERSION,
        kind: ADMISSION_KIND,
        response: ResponseOut {
            uid,
            allowed: true,
            patch_type: patch.as_ref().map(|_| "JSONPatch"),
            patch,
        },
    };
    serde_json::to_vec(&review).unwrap_or_default()
}

/// `namespace/name` of a pod object (`namespace/generateName*` before the
/// API server names it).
fn target_of(namespace: &str, object: &serde_json::Value) -> String {
    let metadata = &object["metadata"];
    let name = match metadata["name"].as_str().filter(|name| !name.is_empty()) {
        Some(name) => name.to_string(),
        None => format!("{}*", metadata["generateName"].as_str().unwrap_or_default()),
    };
    format!("{namespace}/{name}")
}

/// A skip reason in words, for the log.
fn skip_reason(reason: &SkipReason) -> String {
    match reason {
        SkipReason::HostNetwork => "the pod uses the host's network".to_string(),
        SkipReason::InvalidAnnotation { annotation, reason } => {
            format!("annotation {annotation}: {reason}")
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn config() -> InjectionConfig {
        InjectionConfig::new("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    }

    fn no_annotations(_: &str) -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    fn request(operation: &str, kind: &str, resource: &str) -> serde_json::Value {
        json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "0f5c",
                "kind": {"group": "", "version": "v1", "kind": kind},
                "resource": {"group": "", "version": "v1", "resource": resource},
                "namespace": "shop",
                "operation": operation,
                "object": {"metadata": {"generateName": "web-"}, "spec": {"containers": [{"name": "app", "image": "app"}]}},
            }
        })
    }

    #[test]
    fn malformed_reviews_are_answered_400_with_what_is_wrong() {
        let mut cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("not JSON", b"{".to_vec(), "not JSON"),
            ("empty", Vec::new(), "not JSON"),
            ("an array", b"[]".to_vec(), "not an AdmissionReview"),
        ];
        let mut edit =
            |name: &'static str, change: fn(&mut serde_json::Value), expected: &'static str| {
                let mut value = request("CREATE", "Pod", "pods");
                change(&mut value);
                cases.push((name, serde_json::to_vec(&value).unwrap(), expected));
            };
        edit(
            "v1beta1",
            |value| value["apiVersion"] = json!("admission.k8s.io/v1beta1"),
            "only admission.k8s.io/v1",
        );
        edit(
            "no apiVersion",
            |value| {
                value.as_object_mut().unwrap().remove("apiVersion");
            },
            "apiVersion is missing",
        );
        edit(
            "another kind",
            |value| value["kind"] = json!("Pod"),
            "kind is \"Pod\"",
        );
        edit(
            "no request",
            |value| {
                value.as_object_mut().unwrap().remove("request");
            },
            "request is missing",
        );
        edit(
            "no uid",
            |value| value["request"]["uid"] = json!(""),
            "request.uid",
        );
        edit(
            "uid a number",
            |value| value["request"]["uid"] = json!(7),
            "not an AdmissionReview",
        );
        edit(
            "no operation",
            |value| {
                value["request"]
                    .as_object_mut()
                    .unwrap()
                    .remove("operation");
            },
            "request.operation",
        );
        edit(
            "no object",
            |value| {
                value["request"].as_object_mut().unwrap().remove("object");
            },
            "request.object is missing",
        );
        edit(
            "object a string",
            |value| value["request"]["object"] = json!("pod"),
            "request.object is not a JSON object",
        );
        edit(
            "no kind",
            |value| {
                value["request"].as_object_mut().unwrap().remove("kind");
            },
            "request.kind",
        );
        for (name, body, expected) in cases {
            let reviewed = review(&body, no_annotations, &config());
            assert_eq!(reviewed.status(), 400, "{name}");
            assert_eq!(reviewed.verdict.label(), "malformed", "{name}");
            let text = String::from_utf8(reviewed.body).unwrap();
            assert!(
                text.starts_with("malformed AdmissionReview: "),
                "{name}: {text}"
            );
            assert!(text.contains(expected), "{name}: {text}");
        }
    }

    #[test]
    fn only_pod_creates_are_reviewed() {
        let cases = [
            ("UPDATE", "Pod", "pods", "not_a_pod_create"),
            ("DELETE", "Pod", "pods", "not_a_pod_create"),
            ("CREATE", "Service", "services", "not_a_pod_create"),
            ("CREATE", "Pod", "pods", "not_requested"),
        ];
        for (operation, kind, resource, label) in cases {
            let body = serde_json::to_vec(&request(operation, kind, resource)).unwrap();
            let reviewed = review(&body, no_annotations, &config());
            assert_eq!(reviewed.status(), 200);
            assert_eq!(reviewed.verdict.label(), label, "{operation} {kind}");
            let answer: serde_json::Value = serde_json::from_slice(&reviewed.body).unwrap();
            assert_eq!(
                answer,
                json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                       "response": {"uid": "0f5c", "allowed": true}})
            );
        }
        // A subresource (pods/ephemeralcontainers) is not a pod.
        let mut value = request("CREATE", "Pod", "pods");
        value["request"]["subResource"] = json!("ephemeralcontainers");
        let reviewed = review(
            &serde_json::to_vec(&value).unwrap(),
            no_annotations,
            &config(),
        );
        assert_eq!(reviewed.verdict, Verdict::NotAPodCreate);
    }

    #[test]
    fn the_target_names_the_pod_or_its_generate_name() {
        let body = serde_json::to_vec(&request("CREATE", "Pod", "pods")).unwrap();
        let reviewed = review(&body, no_annotations, &config());
        assert_eq!(reviewed.target, "shop/web-*");
        assert!(!reviewed.dry_run);
        let mut value = request("CREATE", "Pod", "pods");
        value["request"]["object"]["metadata"]["name"] = json!("web-1");
        value["request"]["dryRun"] = json!(true);
        let reviewed = review(
            &serde_json::to_vec(&value).unwrap(),
            no_annotations,
            &config(),
        );
        assert_eq!(reviewed.target, "shop/web-1");
        assert!(reviewed.dry_run);
    }

    #[test]
    fn the_namespace_of_the_request_is_looked_up() {
        let body = serde_json::to_vec(&request("CREATE", "Pod", "pods")).unwrap();
        let asked = std::cell::RefCell::new(Vec::new());
        review(
            &body,
            |namespace| {
                asked.borrow_mut().push(namespace.to_string());
                BTreeMap::new()
            },
            &config(),
        );
        assert_eq!(asked.into_inner(), ["shop"]);
    }

    #[test]
    fn labels_are_distinct() {
        let labels: std::collections::BTreeSet<_> = Verdict::LABELS.iter().collect();
        assert_eq!(labels.len(), Verdict::LABELS.len());
    }
}
