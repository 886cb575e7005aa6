//! The weft-webhooks decisions, in Linkerd's spirit: the proxy injector's
//! MutatingWebhookConfiguration exists, its `caBundle` holds the control
//! plane's trust anchors (the injector's certificate comes from the
//! identity issuer, so the API server verifies it with them), it calls the
//! injector's Service on `/inject`, and that Service exists with a ready
//! endpoint. The webhook's `failurePolicy` is `Ignore`: when any of this
//! is wrong, pods are not refused, they start unmeshed — so each is an error.

use std::collections::BTreeSet;

use weft_core::cluster::{INJECTOR_PATH, INJECTOR_SERVICE, TRUST_ANCHORS_CONFIGMAP};

use super::certificates::parse_bundle;
use super::identity::trust_anchors;
use super::installation::PROXY_INJECTOR_WEBHOOK;
use super::state::{ClusterState, ControlPlaneState, WebhookService, WebhookState};
use super::verdict::{Verdict, control_plane, fail_on};

/// The webhooks, when the configuration was read and exists; else the
/// check is skipped ("proxy-injector webhook exists" said why).
fn with_webhooks(
    state: &ClusterState,
    decide: impl FnOnce(&ControlPlaneState, &[WebhookState]) -> Verdict,
) -> Verdict {
    control_plane(state, |control| match &control.proxy_injector {
        Ok(Some(webhooks)) if !webhooks.is_empty() => decide(control, webhooks),
        _ => Verdict::Skip,
    })
}

/// MutatingWebhookConfiguration `weft-proxy-injector` exists, with a webhook.
pub fn injector_exists(state: &ClusterState) -> Verdict {
    control_plane(state, |control| {
        fail_on(&control.proxy_injector, |webhooks| match webhooks {
            None => Verdict::Fail(format!(
                "MutatingWebhookConfiguration {PROXY_INJECTOR_WEBHOOK} not found: new pods are not meshed"
            )),
            Some(webhooks) if webhooks.is_empty() => Verdict::Fail(format!(
                "MutatingWebhookConfiguration {PROXY_INJECTOR_WEBHOOK} has no webhooks: new pods are not meshed"
            )),
            Some(_) => Verdict::Pass,
        })
    })
}

/// What is wrong with one webhook's `caBundle`, given the anchors' DER.
fn bundle_problem(webhook: &WebhookState, anchors: &[(String, Vec<u8>)]) -> Option<String> {
    if webhook.ca_bundle.iter().all(u8::is_ascii_whitespace) {
        return Some(format!("webhook {} has no caBundle", webhook.name));
    }
    let bundle = match parse_bundle(&webhook.ca_bundle) {
        Ok(bundle) => bundle,
        Err(error) => return Some(format!("webhook {}'s caBundle: {error}", webhook.name)),
    };
    let held: BTreeSet<&[u8]> = bundle
        .iter()
        .map(|certificate| certificate.der.as_slice())
        .collect();
    let missing: Vec<&str> = anchors
        .iter()
        .filter(|(_, der)| !held.contains(der.as_slice()))
        .map(|(subject, _)| subject.as_str())
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "webhook {}'s caBundle lacks the trust anchors of ConfigMap {TRUST_ANCHORS_CONFIGMAP} ({}): the API server cannot verify the injector's certificate, and new pods start unmeshed",
            webhook.name,
            missing.join(", ")
        )
    })
}

/// Every webhook's `caBundle` holds every trust anchor of the ConfigMap.
pub fn injector_trusts_anchors(state: &ClusterState) -> Verdict {
    with_webhooks(state, |control, webhooks| {
        let anchors: Vec<(String, Vec<u8>)> = match trust_anchors(control) {
            Ok(anchors) => anchors
                .into_iter()
                .map(|anchor| (anchor.subject, anchor.der))
                .collect(),
            Err(error) => return Verdict::Fail(format!("cannot compare: {error}")),
        };
        let problems: Vec<String> = webhooks
            .iter()
            .filter_map(|webhook| bundle_problem(webhook, &anchors))
            .collect();
        if problems.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail(problems.join("; "))
        }
    })
}

/// Service `weft-proxy-injector` exists in the control plane's namespace.
pub fn injector_service_exists(state: &ClusterState) -> Verdict {
    control_plane(state, |control| {
        fail_on(&control.injector_service, |ports| match ports {
            Some(_) => Verdict::Pass,
            None => Verdict::Fail(format!(
                "Service {INJECTOR_SERVICE} not found in namespace {}: the API server cannot reach the injector, and new pods start unmeshed",
                state.control_namespace
            )),
        })
    })
}

/// `namespace/name:port/path`.
fn describe_service(service: &WebhookService) -> String {
    format!(
        "{}/{}:{}{}",
        service.namespace,
        service.name,
        service.port,
        service.path.as_deref().unwrap_or("")
    )
}

/// Every webhook calls Service `weft-proxy-injector` in the control plane's
/// namespace, on one of its ports, at `/inject` (skipped without the
/// configuration or the Service: their checks said so).
pub fn injector_calls_service(state: &ClusterState) -> Verdict {
    with_webhooks(state, |control, webhooks| {
        let Ok(Some(ports)) = &control.injector_service else {
            return Verdict::Skip;
        };
        let problems: Vec<String> = webhooks
            .iter()
            .filter_map(|webhook| {
                let Some(service) = &webhook.service else {
                    return Some(format!(
                        "webhook {} calls a URL, not Service {}/{INJECTOR_SERVICE}",
                        webhook.name, state.control_namespace
                    ));
                };
                let port = if ports.contains(&service.port) {
                    service.port
                } else {
                    ports.first().copied().unwrap_or(service.port)
                };
                let expected = WebhookService {
                    namespace: state.control_namespace.clone(),
                    name: INJECTOR_SERVICE.to_string(),
                    path: Some(INJECTOR_PATH.to_string()),
                    port,
                };
                (*service != expected).then(|| {
                    format!(
                        "webhook {} calls {}, not {}",
                        webhook.name,
                        describe_service(service),
                        describe_service(&expected)
                    )
                })
            })
            .collect();
        if problems.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail(problems.join("; "))
        }
    })
}

/// The injector's Service has a ready endpoint (skipped without the Service).
pub fn injector_has_ready_endpoints(state: &ClusterState) -> Verdict {
    control_plane(state, |control| {
        if !matches!(control.injector_service, Ok(Some(_))) {
            return Verdict::Skip;
        }
        fail_on(&control.injector_endpoints, |endpoints| {
            if endpoints.ready > 0 {
                Verdict::Pass
            } else if endpoints.total == 0 {
                Verdict::Fail(format!(
                    "Service {INJECTOR_SERVICE} has no endpoints: no controller pod serves the injector, and new pods start unmeshed"
                ))
            } else {
                Verdict::Fail(format!(
                    "none of the {} endpoints of Service {INJECTOR_SERVICE} is ready: new pods start unmeshed",
                    endpoints.total
                ))
            }
        })
    })
}
