use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use weft_core::workload::{ProxyImplementation, WorkloadProxy};

use super::*;
use crate::kubernetes::owners::{OwnedKind, Owners};

/// A pod from JSON, with defaults for what a case leaves out.
fn pod(value: serde_json::Value) -> Pod {
    serde_json::from_value(value).unwrap()
}

fn owned_by(kind: &str, name: &str) -> serde_json::Value {
    serde_json::json!([{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": "u", "controller": true}])
}

fn running(ip: &str) -> serde_json::Value {
    serde_json::json!({"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]})
}

fn owners() -> Owners {
    let mut owners = Owners::default();
    owners.set(
        OwnedKind::ReplicaSet,
        "shop",
        "web-5d4f",
        Some("web".into()),
    );
    owners.set(OwnedKind::Job, "shop", "report-2901", Some("report".into()));
    owners
}

#[test]
fn owners_resolve_by_kind() {
    let table = [
        (
            owned_by("ReplicaSet", "web-5d4f"),
            Some(("Deployment", "web")),
        ),
        (
            owned_by("ReplicaSet", "orphan-1"),
            Some(("ReplicaSet", "orphan-1")),
        ),
        (owned_by("StatefulSet", "db"), Some(("StatefulSet", "db"))),
        (owned_by("DaemonSet", "agent"), Some(("DaemonSet", "agent"))),
        (owned_by("Job", "report-2901"), Some(("CronJob", "report"))),
        (owned_by("Job", "migrate"), Some(("Job", "migrate"))),
        (serde_json::json!([]), None),
        (
            serde_json::json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "x", "uid": "u"}]),
            None,
        ),
    ];
    for (references, expected) in table {
        let facts = pod_facts(&pod(serde_json::json!({
            "metadata": {"name": "web-1", "namespace": "shop", "ownerReferences": references},
            "spec": {"containers": [{"name": "app"}]},
            "status": running("10.0.0.5"),
        })))
        .unwrap();
        let workload = facts.finish(None, &owners());
        let owner = workload
            .spec
            .owner
            .as_ref()
            .map(|owner| (owner.kind.as_str(), owner.name.as_str()));
        assert_eq!(owner, expected, "{references}");
    }
}

#[test]
fn proxies_and_their_ports_come_from_the_containers() {
    let weft_env = serde_json::json!([
        {"name": "WEFT_PROXY_INBOUND_LISTEN_ADDR", "value": "0.0.0.0:5143"},
        {"name": "WEFT_PROXY_ADMIN_LISTEN_ADDR", "value": "0.0.0.0:5191"},
        {"name": "WEFT_PROXY_OUTBOUND_LISTEN_ADDR", "value": "127.0.0.1:5140,[::1]:5140"},
    ]);
    let table: Vec<(serde_json::Value, bool, Option<WorkloadProxy>)> = vec![
        // No proxy.
        (
            serde_json::json!({"containers": [{"name": "app"}]}),
            false,
            None,
        ),
        // A weft proxy container with every default.
        (
            serde_json::json!({"containers": [{"name": "app"}, {"name": "weft-proxy"}]}),
            true,
            None,
        ),
        // A native sidecar (init container, restartPolicy Always) with its env.
        (
            serde_json::json!({"containers": [{"name": "app"}],
                "initContainers": [{"name": "weft-init"}, {"name": "weft-proxy", "restartPolicy": "Always", "env": weft_env}]}),
            true,
            Some(WorkloadProxy {
                inbound_port: Some(5143),
                outbound_port: Some(5140),
                admin_port: Some(5191),
                ..WorkloadProxy::default()
            }),
        ),
        // An init container named like the proxy that runs to completion is no proxy.
        (
            serde_json::json!({"containers": [{"name": "app"}], "initContainers": [{"name": "weft-proxy"}]}),
            false,
            None,
        ),
        // linkerd2-proxy.
        (
            serde_json::json!({"containers": [{"name": "app"}, {"name": "linkerd-proxy",
                "env": [{"name": "LINKERD2_PROXY_CONTROL_LISTEN_ADDR", "value": "0.0.0.0:4190"}]}]}),
            true,
            Some(WorkloadProxy {
                tap_port: Some(4190),
                implementation: Some(ProxyImplementation::Linkerd2Proxy),
                ..WorkloadProxy::default()
            }),
        ),
    ];
    for (spec, meshed, proxy) in table {
        let facts = pod_facts(&pod(serde_json::json!({
            "metadata": {"name": "web-1", "namespace": "shop"},
            "spec": spec,
            "status": running("10.0.0.5"),
        })))
        .unwrap();
        assert_eq!(facts.workload.spec.meshed, meshed, "{spec}");
        assert_eq!(facts.workload.spec.proxy, proxy, "{spec}");
    }
}

#[test]
fn addresses_only_while_the_pod_may_serve() {
    let table = [
        (
            serde_json::json!({"phase": "Running", "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}, {"ip": "fd00::5"}]}),
            2,
        ),
        (
            serde_json::json!({"phase": "Pending", "podIP": "10.0.0.5"}),
            1,
        ),
        (serde_json::json!({"phase": "Pending"}), 0),
        (
            serde_json::json!({"phase": "Succeeded", "podIP": "10.0.0.5"}),
            0,
        ),
        (
            serde_json::json!({"phase": "Failed", "podIPs": [{"ip": "10.0.0.5"}]}),
            0,
        ),
        (serde_json::json!(null), 0),
    ];
    for (status, expected) in table {
        let facts = pod_facts(&pod(serde_json::json!({
            "metadata": {"name": "web-1", "namespace": "shop"},
            "spec": {"containers": [{"name": "app"}]},
            "status": status,
        })))
        .unwrap();
        assert_eq!(facts.workload.spec.addresses.len(), expected, "{status}");
    }
}

#[test]
fn labels_ports_account_and_mesh_annotations() {
    let facts = pod_facts(&pod(serde_json::json!({
        "metadata": {
            "name": "web-1", "namespace": "shop", "labels": {"app": "web"},
            "annotations": {
                "config.linkerd.io/opaque-ports": "3306",
                "kubectl.kubernetes.io/last-applied-configuration": "{...}",
            },
        },
        "spec": {
            "serviceAccountName": "web",
            "containers": [
                {"name": "app", "ports": [{"name": "http", "containerPort": 8080}, {"containerPort": 9000}]},
                {"name": "metrics", "ports": [{"name": "metrics", "containerPort": 9102}, {"containerPort": 8080}]},
            ],
        },
        "status": running("10.0.0.5"),
    })))
    .unwrap();
    let namespace = BTreeMap::from([
        (
            "config.linkerd.io/opaque-ports".to_string(),
            "25".to_string(),
        ),
        (
            "config.linkerd.io/default-inbound-policy".to_string(),
            "deny".to_string(),
        ),
    ]);
    let workload = facts.finish(Some(&namespace), &Owners::default());
    assert_eq!(
        workload.labels().get("app").map(String::as_str),
        Some("web")
    );
    assert_eq!(workload.service_account(), "web");
    let ports: Vec<(Option<&str>, u16)> = workload
        .spec
        .ports
        .iter()
        .map(|port| (port.name.as_deref(), port.port))
        .collect();
    assert_eq!(
        ports,
        [(Some("http"), 8080), (None, 9000), (Some("metrics"), 9102)]
    );
    let annotations = workload.metadata.annotations.unwrap();
    // The pod's own value wins; the namespace's adds; others are dropped.
    assert_eq!(
        annotations,
        BTreeMap::from([
            (
                "config.linkerd.io/default-inbound-policy".to_string(),
                "deny".to_string()
            ),
            (
                "config.linkerd.io/opaque-ports".to_string(),
                "3306".to_string()
            ),
        ])
    );
}

#[test]
fn a_pod_without_a_name_is_refused() {
    let refused = pod_facts(&pod(serde_json::json!({"metadata": {"namespace": "shop"}})));
    assert_eq!(refused.unwrap_err(), PodError::MissingName);
}

#[test]
fn listen_ports_parse() {
    let table = [
        ("0.0.0.0:4143", Some(4143)),
        ("[::]:4143", Some(4143)),
        ("127.0.0.1:4140,[::1]:4140", Some(4140)),
        ("4143", None),
        ("0.0.0.0:0", None),
        ("0.0.0.0:http", None),
    ];
    for (value, expected) in table {
        assert_eq!(listen_port(value), expected, "{value}");
    }
}

#[test]
fn namespaces_keep_the_inject_annotation_and_the_mesh_ones() {
    let annotations = BTreeMap::from([
        ("weft.io/inject".to_string(), "enabled".to_string()),
        ("linkerd.io/inject".to_string(), "enabled".to_string()),
        (
            "config.weft.io/proxy-cpu-limit".to_string(),
            "1".to_string(),
        ),
        (
            "kubectl.kubernetes.io/last-applied-configuration".to_string(),
            "{...}".to_string(),
        ),
    ]);
    let kept = namespace_annotations(Some(&annotations)).unwrap();
    assert_eq!(
        kept.keys().map(String::as_str).collect::<Vec<_>>(),
        ["config.weft.io/proxy-cpu-limit", "weft.io/inject"]
    );
    assert_eq!(namespace_annotations(None), None);
    let unrelated = BTreeMap::from([("team".to_string(), "shop".to_string())]);
    assert_eq!(namespace_annotations(Some(&unrelated)), None);
}
