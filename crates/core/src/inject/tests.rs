//! Table tests of the pure decisions (what [`inject`] decides and writes
//! for each annotation) and round trips `apply(inject)` → `apply(uninject)`.
//! The annotation checks and [`apply`] are tested in their modules.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;

fn config() -> InjectionConfig {
    let mut config =
        InjectionConfig::new("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
    config.proxy_version = "v1.2.3".to_string();
    config
}

/// Annotation pairs, as tables write them.
type Pairs<'table> = &'table [(&'table str, &'table str)];

fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(key, value)| ((*key).to_string(), (*value).to_string()))
        .collect()
}

/// A pod with `annotations` and one container serving port 8080.
fn pod(pod_annotations: &[(&str, &str)]) -> Value {
    json!({
        "metadata": {"name": "web-0", "namespace": "shop", "annotations": annotations(pod_annotations)},
        "spec": {"containers": [{"name": "web", "image": "web:1", "ports": [{"containerPort": 8080}]}]},
    })
}

fn injected(pod: &Value, namespace: &[(&str, &str)]) -> Value {
    let injection = inject(pod, &annotations(namespace), &config());
    assert_eq!(injection.decision, Decision::Injected, "{pod}");
    let mut patched = pod.clone();
    apply(&mut patched, &injection.patch).expect("the patch applies");
    patched
}

fn init_container<'pod>(patched: &'pod Value, name: &str) -> &'pod Value {
    patched["spec"]["initContainers"]
        .as_array()
        .and_then(|containers| {
            containers
                .iter()
                .find(|container| container["name"] == name)
        })
        .unwrap_or_else(|| panic!("no init container {name} in {patched}"))
}

fn proxy_variable(patched: &Value, name: &str) -> Option<String> {
    init_container(patched, "weft-proxy")["env"]
        .as_array()?
        .iter()
        .find(|variable| variable["name"] == name)
        .and_then(|variable| variable["value"].as_str())
        .map(str::to_string)
}

fn init_arguments(patched: &Value) -> Vec<String> {
    serde_json::from_value(init_container(patched, "weft-init")["args"].clone())
        .expect("args are strings")
}

#[test]
fn decisions() {
    let cases: &[(&str, Pairs<'_>, Pairs<'_>, Decision)] = &[
        ("nothing annotated", &[], &[], Decision::NotRequested),
        (
            "pod enabled",
            &[("weft.io/inject", "enabled")],
            &[],
            Decision::Injected,
        ),
        (
            "pod ingress",
            &[("weft.io/inject", "ingress")],
            &[],
            Decision::Injected,
        ),
        (
            "pod disabled",
            &[("weft.io/inject", "disabled")],
            &[],
            Decision::NotRequested,
        ),
        (
            "pod unknown value",
            &[("weft.io/inject", "yes")],
            &[],
            Decision::NotRequested,
        ),
        (
            "namespace enabled",
            &[],
            &[("weft.io/inject", "enabled")],
            Decision::Injected,
        ),
        (
            "namespace ingress",
            &[],
            &[("weft.io/inject", "ingress")],
            Decision::Injected,
        ),
        (
            "pod disabled wins over namespace enabled",
            &[("weft.io/inject", "disabled")],
            &[("weft.io/inject", "enabled")],
            Decision::NotRequested,
        ),
        (
            "pod enabled wins over namespace disabled",
            &[("weft.io/inject", "enabled")],
            &[("weft.io/inject", "disabled")],
            Decision::Injected,
        ),
        (
            "Linkerd's inject annotation is not weft's",
            &[("linkerd.io/inject", "enabled")],
            &[],
            Decision::NotRequested,
        ),
    ];
    for (name, pod_annotations, namespace, expected) in cases {
        let injection = inject(&pod(pod_annotations), &annotations(namespace), &config());
        assert_eq!(&injection.decision, expected, "{name}");
        assert_eq!(
            injection.patch.is_empty(),
            *expected == Decision::NotRequested,
            "{name}: {:?}",
            injection.patch
        );
    }
}

#[test]
fn already_injected_pods_are_left_alone() {
    let proxy = json!({"name": "weft-proxy", "image": "proxy:1"});
    let linkerd = json!({"name": "linkerd-proxy", "image": "linkerd:1"});
    let cases = [
        ("weft-proxy as a container", "containers", proxy.clone()),
        ("weft-proxy as an init container", "initContainers", proxy),
        (
            "linkerd-proxy as a container",
            "containers",
            linkerd.clone(),
        ),
        (
            "linkerd-proxy as an init container",
            "initContainers",
            linkerd,
        ),
    ];
    for (name, field, container) in cases {
        let mut pod = pod(&[("weft.io/inject", "enabled")]);
        match pod["spec"][field].as_array_mut() {
            Some(containers) => containers.push(container),
            None => pod["spec"][field] = json!([container]),
        }
        let injection = inject(&pod, &BTreeMap::new(), &config());
        assert_eq!(injection.decision, Decision::AlreadyInjected, "{name}");
        assert!(injection.patch.is_empty(), "{name}");
    }
}

#[test]
fn injecting_an_injected_pod_changes_nothing() {
    let once = injected(&pod(&[("weft.io/inject", "enabled")]), &[]);
    let again = inject(&once, &BTreeMap::new(), &config());
    assert_eq!(again.decision, Decision::AlreadyInjected);
}

#[test]
fn host_network_pods_are_skipped_with_the_reason() {
    let mut pod = pod(&[("weft.io/inject", "enabled")]);
    pod["spec"]["hostNetwork"] = json!(true);
    let injection = inject(&pod, &BTreeMap::new(), &config());
    assert_eq!(
        injection.decision,
        Decision::Skipped(SkipReason::HostNetwork)
    );
    assert_eq!(
        injection.patch,
        [PatchOperation::Add {
            path: "/metadata/annotations/weft.io~1inject-skipped".to_string(),
            value: json!(SkipReason::HostNetwork.to_string()),
        }]
    );
    assert!(SkipReason::HostNetwork.to_string().contains("hostNetwork"));
}

#[test]
fn each_invalid_annotation_skips_the_pod_naming_it() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "config.weft.io/proxy-cpu-request",
            "lots",
            "not a Kubernetes quantity",
        ),
        ("config.weft.io/proxy-cpu-limit", "-1", "negative"),
        (
            "config.weft.io/proxy-memory-request",
            "64MB",
            "not a Kubernetes quantity",
        ),
        (
            "config.weft.io/proxy-memory-limit",
            "",
            "not a Kubernetes quantity",
        ),
        ("config.weft.io/proxy-log-level", "warn, debug", "spaces"),
        ("config.weft.io/proxy-log-level", "", "empty"),
        ("config.weft.io/opaque-ports", "3306,http", "not a port"),
        ("config.weft.io/opaque-ports", "0", "not a port"),
        ("config.weft.io/skip-inbound-ports", "65536", "not a port"),
        ("config.weft.io/skip-inbound-ports", "9000-8000", "low end"),
        ("config.weft.io/skip-outbound-ports", "1,,2", "not a port"),
        ("config.weft.io/skip-subnets", "10.0.0.0/33", "prefix"),
        ("config.weft.io/skip-subnets", "ten/8", "not an IP network"),
        (
            "config.weft.io/default-inbound-policy",
            "allow",
            "not a default policy",
        ),
        ("config.weft.io/proxy-image", "", "empty"),
        (
            "config.weft.io/proxy-image",
            "registry/proxy@sha256:ab",
            "not an image name",
        ),
        ("config.weft.io/proxy-version", "", "empty"),
        ("config.weft.io/proxy-version", "v1 2", "not an image tag"),
        (
            "config.weft.io/image-pull-policy",
            "Sometimes",
            "not an image pull policy",
        ),
        (
            "config.linkerd.io/proxy-cpu-request",
            "1 core",
            "not a Kubernetes quantity",
        ),
        (
            "config.weft.io/proxy-cpu-request",
            "2",
            "above the limit", // with the limit below
        ),
    ];
    for (annotation, value, reason_part) in cases {
        let mut pairs = vec![("weft.io/inject", "enabled"), (*annotation, *value)];
        if *reason_part == "above the limit" {
            pairs.push(("config.weft.io/proxy-cpu-limit", "500m"));
        }
        let injection = inject(&pod(&pairs), &BTreeMap::new(), &config());
        let Decision::Skipped(SkipReason::InvalidAnnotation {
            annotation: named,
            reason,
        }) = &injection.decision
        else {
            panic!("{annotation}: {value:?}: {:?}", injection.decision);
        };
        let expected_name = if *reason_part == "above the limit" {
            "config.weft.io/proxy-cpu-limit"
        } else {
            annotation
        };
        assert_eq!(named, expected_name, "{value:?}");
        assert!(reason.contains(reason_part), "{annotation}: {reason}");
        assert_eq!(
            injection.patch,
            [PatchOperation::Add {
                path: "/metadata/annotations/weft.io~1inject-skipped".to_string(),
                value: json!(format!("{named}: {reason}")),
            }],
            "{annotation}"
        );
    }
}

#[test]
fn a_namespace_annotation_is_checked_too() {
    let injection = inject(
        &pod(&[]),
        &annotations(&[
            ("weft.io/inject", "enabled"),
            ("config.weft.io/opaque-ports", "mysql"),
        ]),
        &config(),
    );
    assert!(matches!(
        injection.decision,
        Decision::Skipped(SkipReason::InvalidAnnotation { annotation, .. })
            if annotation == "config.weft.io/opaque-ports"
    ));
}

#[test]
fn an_annotated_request_above_the_configured_limit_is_refused() {
    let mut config = config();
    config.proxy_resources.memory_limit = Some("64Mi".to_string());
    let injection = inject(
        &pod(&[
            ("weft.io/inject", "enabled"),
            ("config.weft.io/proxy-memory-request", "0.1Gi"),
        ]),
        &BTreeMap::new(),
        &config,
    );
    assert!(
        matches!(&injection.decision, Decision::Skipped(SkipReason::InvalidAnnotation { annotation, .. })
            if annotation == "config.weft.io/proxy-memory-request"),
        "{:?}",
        injection.decision
    );
}

#[test]
fn annotation_precedence() {
    // (pod, namespace, the opaque ports the proxy gets)
    let cases: &[(Pairs<'_>, Pairs<'_>, Option<&str>)] = &[
        (&[], &[], None),
        (
            &[("config.linkerd.io/opaque-ports", "3306")],
            &[],
            Some("3306"),
        ),
        (
            &[
                ("config.linkerd.io/opaque-ports", "3306"),
                ("config.weft.io/opaque-ports", "5432"),
            ],
            &[],
            Some("5432"),
        ),
        (
            &[],
            &[("config.weft.io/opaque-ports", "11211")],
            Some("11211"),
        ),
        (
            &[("config.linkerd.io/opaque-ports", "3306")],
            &[("config.weft.io/opaque-ports", "11211")],
            Some("3306"),
        ),
        (
            &[],
            &[
                ("config.linkerd.io/opaque-ports", "3306"),
                ("config.weft.io/opaque-ports", "5432"),
            ],
            Some("5432"),
        ),
        // An empty list on the pod overrides the namespace's with none.
        (
            &[("config.weft.io/opaque-ports", "")],
            &[("config.weft.io/opaque-ports", "5432")],
            None,
        ),
    ];
    for (pod_annotations, namespace, expected) in cases {
        let mut pairs = vec![("weft.io/inject", "enabled")];
        pairs.extend_from_slice(pod_annotations);
        let patched = injected(&pod(&pairs), namespace);
        assert_eq!(
            proxy_variable(&patched, "WEFT_PROXY_OPAQUE_PORTS").as_deref(),
            *expected,
            "pod {pod_annotations:?}, namespace {namespace:?}"
        );
    }
}

#[test]
fn resources_come_from_annotations_over_the_configuration() {
    let mut config = config();
    config.proxy_resources = ProxyResources {
        cpu_request: Some("100m".to_string()),
        cpu_limit: None,
        memory_request: Some("20Mi".to_string()),
        memory_limit: Some("250Mi".to_string()),
    };
    let pod = pod(&[
        ("weft.io/inject", "enabled"),
        ("config.weft.io/proxy-cpu-limit", "1"),
        ("config.linkerd.io/proxy-memory-request", "64Mi"),
    ]);
    let injection = inject(&pod, &BTreeMap::new(), &config);
    let mut patched = pod.clone();
    apply(&mut patched, &injection.patch).expect("applies");
    assert_eq!(
        init_container(&patched, "weft-proxy")["resources"],
        json!({
            "requests": {"cpu": "100m", "memory": "64Mi"},
            "limits": {"cpu": "1", "memory": "250Mi"},
        })
    );
    // Nothing configured, nothing annotated: no resources at all.
    let plain = injected(&self::pod(&[("weft.io/inject", "enabled")]), &[]);
    assert!(
        init_container(&plain, "weft-proxy")
            .get("resources")
            .is_none()
    );
    // weft-init's own are fixed.
    assert_eq!(
        init_container(&plain, "weft-init")["resources"],
        json!({
            "requests": {"cpu": "10m", "memory": "10Mi"},
            "limits": {"cpu": "100m", "memory": "20Mi"},
        })
    );
}

#[test]
fn weft_init_arguments() {
    let base = [
        "--inbound-proxy-port",
        "4143",
        "--outbound-proxy-port",
        "4140",
        "--proxy-uid",
        "2102",
        "--skip-inbound-ports",
    ];
    let cases: &[(Pairs<'_>, &[&str])] = &[
        (&[("weft.io/inject", "enabled")], &["4190,4191"]),
        (
            &[("weft.io/inject", "ingress")],
            &["4190,4191", "--inbound-only"],
        ),
        (
            &[
                ("weft.io/inject", "enabled"),
                ("config.weft.io/skip-inbound-ports", "22, 8000-8100"),
            ],
            &["4190,4191,22,8000-8100"],
        ),
        (
            &[
                ("weft.io/inject", "enabled"),
                ("config.linkerd.io/skip-outbound-ports", "3306,5432"),
                ("config.weft.io/skip-subnets", "10.96.0.0/12, fd00::/8"),
            ],
            &[
                "4190,4191",
                "--skip-outbound-ports",
                "3306,5432",
                "--skip-subnets",
                "10.96.0.0/12,fd00::/8",
            ],
        ),
        (
            &[
                ("weft.io/inject", "ingress"),
                ("config.weft.io/skip-outbound-ports", "443"),
            ],
            &[
                "4190,4191",
                "--skip-outbound-ports",
                "443",
                "--inbound-only",
            ],
        ),
        (
            &[
                ("weft.io/inject", "enabled"),
                ("config.weft.io/skip-outbound-ports", ""),
            ],
            &["4190,4191"],
        ),
    ];
    for (pod_annotations, rest) in cases {
        let patched = injected(&pod(pod_annotations), &[]);
        let expected: Vec<String> = base
            .iter()
            .chain(rest.iter())
            .map(|argument| (*argument).to_string())
            .collect();
        assert_eq!(init_arguments(&patched), expected, "{pod_annotations:?}");
    }
}

#[test]
fn inbound_ports_are_every_container_port() {
    let cases: &[(Value, Option<&str>)] = &[
        (
            json!({"containers": [{"name": "app", "image": "app"}]}),
            None,
        ),
        (
            json!({"containers": [
                {"name": "app", "image": "app", "ports": [{"containerPort": 9090}, {"containerPort": 80}]},
                {"name": "metrics", "image": "m", "ports": [{"containerPort": 9090, "protocol": "UDP"}]},
            ]}),
            Some("80,9090"),
        ),
        (
            json!({
                "initContainers": [
                    {"name": "migrate", "image": "m", "ports": [{"containerPort": 7000}]},
                    {"name": "log-shipper", "image": "l", "restartPolicy": "Always", "ports": [{"containerPort": 24224}]},
                ],
                "containers": [{"name": "app", "image": "app", "ports": [{"containerPort": 8080}]}],
            }),
            Some("8080,24224"),
        ),
    ];
    for (spec, expected) in cases {
        let pod = json!({
            "metadata": {"annotations": {"weft.io/inject": "enabled"}},
            "spec": spec,
        });
        let patched = injected(&pod, &[]);
        assert_eq!(
            proxy_variable(&patched, "WEFT_PROXY_INBOUND_PORTS").as_deref(),
            *expected,
            "{spec}"
        );
    }
}

#[test]
fn the_injected_pod_has_the_planned_shape() {
    let patched = injected(&pod(&[("weft.io/inject", "enabled")]), &[]);
    let names: Vec<&str> = patched["spec"]["initContainers"]
        .as_array()
        .expect("init containers")
        .iter()
        .filter_map(|container| container["name"].as_str())
        .collect();
    assert_eq!(names, ["weft-init", "weft-proxy"]);
    let proxy = init_container(&patched, "weft-proxy");
    assert_eq!(proxy["restartPolicy"], "Always");
    assert_eq!(proxy["image"], "ghcr.io/weft-mesh/weft-proxy:v1.2.3");
    assert_eq!(proxy["securityContext"]["runAsUser"], 2102);
    assert_eq!(
        proxy["startupProbe"]["httpGet"],
        json!({"path": "/ready", "port": 4191})
    );
    assert_eq!(
        proxy["livenessProbe"]["httpGet"],
        json!({"path": "/live", "port": 4191})
    );
    let variables: Vec<&str> = proxy["env"]
        .as_array()
        .expect("env")
        .iter()
        .filter_map(|variable| variable["name"].as_str())
        .collect();
    assert_eq!(
        variables,
        [
            "_pod_name",
            "_pod_ns",
            "_pod_sa",
            "WEFT_PROXY_INBOUND_LISTEN_ADDR",
            "WEFT_PROXY_OUTBOUND_LISTEN_ADDR",
            "WEFT_PROXY_ADMIN_LISTEN_ADDR",
            "WEFT_PROXY_TAP_LISTEN_ADDR",
            "WEFT_PROXY_DESTINATION_SVC_ADDR",
            "WEFT_PROXY_DESTINATION_CONTEXT",
            "WEFT_PROXY_DESTINATION_PROFILE_NETWORKS",
            "WEFT_PROXY_POLICY_WORKLOAD",
            "WEFT_PROXY_POLICY_SVC_ADDR",
            "WEFT_PROXY_INBOUND_DEFAULT_POLICY",
            "WEFT_PROXY_POLICY_CLUSTER_NETWORKS",
            "WEFT_PROXY_IDENTITY_SVC_ADDR",
            "WEFT_PROXY_IDENTITY_TOKEN_FILE",
            "WEFT_PROXY_IDENTITY_LOCAL_NAME",
            "WEFT_PROXY_IDENTITY_TRUST_ANCHORS",
            "WEFT_PROXY_DESTINATION_SVC_NAME",
            "WEFT_PROXY_IDENTITY_SVC_NAME",
            "WEFT_PROXY_TAP_SVC_NAME",
            "WEFT_PROXY_INBOUND_PORTS",
            "WEFT_PROXY_LOG",
        ]
    );
    assert_eq!(
        proxy_variable(&patched, "WEFT_PROXY_DESTINATION_SVC_ADDR").as_deref(),
        Some("weft-dst.weft.svc.cluster.local.:8086")
    );
    assert_eq!(
        proxy_variable(&patched, "WEFT_PROXY_IDENTITY_LOCAL_NAME").as_deref(),
        Some("$(_pod_sa).$(_pod_ns).serviceaccount.identity.weft.cluster.local")
    );
    assert_eq!(
        patched["metadata"]["annotations"],
        json!({
            "weft.io/inject": "enabled",
            "weft.io/proxy-version": "v1.2.3",
            "weft.io/identity-mode": "default",
        })
    );
    assert_eq!(
        patched["metadata"]["labels"],
        json!({"weft.io/control-plane-ns": "weft"})
    );
    let volumes: Vec<&str> = patched["spec"]["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .filter_map(|volume| volume["name"].as_str())
        .collect();
    assert_eq!(volumes, ["weft-identity-token", "weft-init-xtables-lock"]);
}

#[test]
fn proxy_image_version_log_and_policy_annotations() {
    let patched = injected(
        &pod(&[
            ("weft.io/inject", "enabled"),
            ("config.weft.io/proxy-image", "registry.local:5000/proxy"),
            ("config.weft.io/proxy-version", "dev"),
            ("config.weft.io/proxy-log-level", "debug"),
            (
                "config.linkerd.io/default-inbound-policy",
                "cluster-authenticated",
            ),
            ("config.weft.io/image-pull-policy", "Never"),
        ]),
        &[],
    );
    for name in ["weft-init", "weft-proxy"] {
        let container = init_container(&patched, name);
        assert_eq!(
            container["image"], "registry.local:5000/proxy:dev",
            "{name}"
        );
        assert_eq!(container["imagePullPolicy"], "Never", "{name}");
    }
    assert_eq!(
        patched["metadata"]["annotations"]["weft.io/proxy-version"],
        "dev"
    );
    assert_eq!(
        proxy_variable(&patched, "WEFT_PROXY_LOG").as_deref(),
        Some("debug")
    );
    assert_eq!(
        proxy_variable(&patched, "WEFT_PROXY_INBOUND_DEFAULT_POLICY").as_deref(),
        Some("cluster-authenticated")
    );
}

#[test]
fn patch_operations_for_absent_and_present_objects() {
    let config = config();
    let namespace = annotations(&[("weft.io/inject", "enabled")]);
    let paths = |pod: &Value| -> Vec<String> {
        inject(pod, &namespace, &config)
            .patch
            .iter()
            .map(|operation| match operation {
                PatchOperation::Add { path, .. }
                | PatchOperation::Remove { path }
                | PatchOperation::Replace { path, .. } => path.clone(),
            })
            .collect()
    };
    let bare = json!({"spec": {"containers": [{"name": "app", "image": "app"}]}});
    assert_eq!(
        paths(&bare),
        ["/metadata", "/spec/initContainers", "/spec/volumes"]
    );
    let full = json!({
        "metadata": {"annotations": {"a": "b"}, "labels": {"app": "x"}},
        "spec": {
            "initContainers": [{"name": "setup", "image": "s"}],
            "containers": [{"name": "app", "image": "app"}],
            "volumes": [{"name": "data", "emptyDir": {}}],
        },
    });
    assert_eq!(
        paths(&full),
        [
            "/metadata/annotations/weft.io~1proxy-version",
            "/metadata/annotations/weft.io~1identity-mode",
            "/metadata/labels/weft.io~1control-plane-ns",
            "/spec/initContainers/0",
            "/spec/initContainers/1",
            "/spec/volumes/-",
            "/spec/volumes/-",
        ]
    );
    let metadata_only_name = json!({
        "metadata": {"name": "x"},
        "spec": {"containers": [{"name": "app", "image": "app"}]},
    });
    assert_eq!(
        paths(&metadata_only_name),
        [
            "/metadata/annotations",
            "/metadata/labels",
            "/spec/initContainers",
            "/spec/volumes",
        ]
    );
    // A pod skipped before and injected now loses the stale reason.
    let previously_skipped = json!({
        "metadata": {"annotations": {"weft.io/inject-skipped": "old"}},
        "spec": {"containers": [{"name": "app", "image": "app"}]},
    });
    assert_eq!(
        paths(&previously_skipped)[..2],
        [
            "/metadata/annotations/weft.io~1inject-skipped",
            "/metadata/annotations/weft.io~1proxy-version",
        ]
    );
}

#[test]
fn inject_then_uninject_gives_back_the_pod() {
    let shapes = [
        (
            "no metadata",
            json!({"spec": {"containers": [{"name": "app", "image": "app"}]}}),
        ),
        (
            "no annotations",
            json!({
                "metadata": {"name": "app", "labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "app"}]},
            }),
        ),
        (
            "existing init containers",
            json!({
                "metadata": {"annotations": {"note": "x"}},
                "spec": {
                    "initContainers": [
                        {"name": "setup", "image": "s"},
                        {"name": "sidecar", "image": "c", "restartPolicy": "Always"},
                    ],
                    "containers": [{"name": "app", "image": "app"}],
                },
            }),
        ),
        (
            "existing volumes",
            json!({
                "metadata": {"name": "db-0", "annotations": {"a": "b"}, "labels": {"app": "db"}},
                "spec": {
                    "containers": [{"name": "db", "image": "db", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                    "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data-db-0"}}],
                },
            }),
        ),
    ];
    let namespace = annotations(&[("weft.io/inject", "enabled")]);
    for (name, original) in shapes {
        let injection = inject(&original, &namespace, &config());
        assert_eq!(injection.decision, Decision::Injected, "{name}");
        let mut pod = original.clone();
        apply(&mut pod, &injection.patch).expect("inject applies");
        assert_ne!(pod, original, "{name}");
        let removal = uninject(&pod);
        apply(&mut pod, &removal).expect("uninject applies");
        assert_eq!(pod, original, "{name}");
        assert!(uninject(&pod).is_empty(), "{name}: a second uninject");
    }
    // Empty objects are the one shape not given back: uninject cannot tell
    // `annotations: {}` from an object injection added, and removes it.
    let empty = json!({
        "metadata": {"name": "x", "annotations": {}},
        "spec": {"containers": [{"name": "app", "image": "app"}]},
    });
    let mut pod = empty.clone();
    apply(&mut pod, &inject(&empty, &namespace, &config()).patch).expect("applies");
    let removal = uninject(&pod);
    apply(&mut pod, &removal).expect("applies");
    assert_eq!(
        pod,
        json!({"metadata": {"name": "x"}, "spec": {"containers": [{"name": "app", "image": "app"}]}})
    );
}

#[test]
fn uninject_removes_from_the_highest_index_down() {
    let pod = json!({
        "metadata": {"annotations": {"weft.io/inject-skipped": "x", "keep": "y"}},
        "spec": {
            "initContainers": [
                {"name": "weft-init"}, {"name": "setup"}, {"name": "weft-proxy"},
            ],
            "containers": [{"name": "app"}, {"name": "weft-proxy"}, {"name": "other"}],
            "volumes": [{"name": "weft-identity-token"}, {"name": "data"}, {"name": "weft-init-xtables-lock"}],
        },
    });
    let removal = uninject(&pod);
    let paths: Vec<&str> = removal
        .iter()
        .map(|operation| match operation {
            PatchOperation::Remove { path } => path.as_str(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        paths,
        [
            "/spec/initContainers/2",
            "/spec/initContainers/0",
            "/spec/containers/1",
            "/spec/volumes/2",
            "/spec/volumes/0",
            "/metadata/annotations/weft.io~1inject-skipped",
        ]
    );
    let mut patched = pod.clone();
    apply(&mut patched, &removal).expect("applies");
    assert_eq!(
        patched,
        json!({
            "metadata": {"annotations": {"keep": "y"}},
            "spec": {
                "initContainers": [{"name": "setup"}],
                "containers": [{"name": "app"}, {"name": "other"}],
                "volumes": [{"name": "data"}],
            },
        })
    );
    assert!(uninject(&json!({"spec": {"containers": [{"name": "app"}]}})).is_empty());
}

#[test]
fn another_cluster_domain_changes_the_addresses_and_the_discovery_suffix() {
    let pod = pod(&[("weft.io/inject", "enabled")]);
    let mut config = config();
    config.cluster_domain = "corp.example".to_string();
    config.control_plane_namespace = "mesh".to_string();
    config.trust_domain = "trust.example".to_string();
    let injection = inject(&pod, &BTreeMap::new(), &config);
    let mut patched = pod.clone();
    apply(&mut patched, &injection.patch).expect("applies");
    let expectations = [
        (
            "WEFT_PROXY_DESTINATION_SVC_ADDR",
            "weft-dst.mesh.svc.corp.example.:8086",
        ),
        (
            "WEFT_PROXY_POLICY_SVC_ADDR",
            "weft-policy.mesh.svc.corp.example.:8090",
        ),
        (
            "WEFT_PROXY_IDENTITY_SVC_ADDR",
            "weft-identity.mesh.svc.corp.example.:8080",
        ),
        (
            "WEFT_PROXY_IDENTITY_LOCAL_NAME",
            "$(_pod_sa).$(_pod_ns).serviceaccount.identity.mesh.trust.example",
        ),
        (
            "WEFT_PROXY_DESTINATION_SVC_NAME",
            "weft-controller.mesh.serviceaccount.identity.mesh.trust.example",
        ),
        (
            "WEFT_PROXY_DESTINATION_PROFILE_SUFFIXES",
            "svc.corp.example.",
        ),
    ];
    for (name, expected) in expectations {
        assert_eq!(
            proxy_variable(&patched, name).as_deref(),
            Some(expected),
            "{name}"
        );
    }
    assert_eq!(
        patched["metadata"]["labels"]["weft.io/control-plane-ns"],
        "mesh"
    );
    let default = injected(&pod, &[]);
    assert_eq!(
        proxy_variable(&default, "WEFT_PROXY_DESTINATION_PROFILE_SUFFIXES"),
        None
    );
}

/// The controller's default proxy resources are checked before any pod
/// gets them: quantities, and each request at most its limit.
#[test]
fn proxy_resources_check() {
    let resources =
        |cpu: (Option<&str>, Option<&str>), memory: (Option<&str>, Option<&str>)| ProxyResources {
            cpu_request: cpu.0.map(str::to_string),
            cpu_limit: cpu.1.map(str::to_string),
            memory_request: memory.0.map(str::to_string),
            memory_limit: memory.1.map(str::to_string),
        };
    let cases = [
        (resources((None, None), (None, None)), Ok(())),
        (
            resources((Some("100m"), Some("1")), (Some("20Mi"), Some("250Mi"))),
            Ok(()),
        ),
        (resources((Some("2"), None), (None, Some("64Mi"))), Ok(())),
        (
            resources((Some("2"), Some("500m")), (None, None)),
            Err("the cpu request 2 is above its limit 500m"),
        ),
        (
            resources((None, None), (Some("1Gi"), Some("512Mi"))),
            Err("the memory request 1Gi is above its limit 512Mi"),
        ),
    ];
    for (resources, expected) in cases {
        assert_eq!(
            resources.check(),
            expected.map_err(str::to_string),
            "{resources:?}"
        );
    }
    let bad = resources((Some("lots"), None), (None, None))
        .check()
        .unwrap_err();
    assert!(bad.starts_with("cpu request: "), "{bad}");
}
