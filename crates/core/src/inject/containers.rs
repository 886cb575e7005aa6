//! What injection adds to a pod's spec, as Kubernetes JSON: the `weft-init`
//! init container (iptables), the proxy as a native sidecar (an init
//! container with `restartPolicy: Always`, so it starts before and stops
//! after the pod's own containers, and a Job's pod still completes), and
//! their two volumes.
//!
//! ```text
//! initContainers: [weft-init, weft-proxy, ...the pod's own]
//! volumes:        [...the pod's own, weft-identity-token, weft-init-xtables-lock]
//! ```

use serde_json::{Value, json};

use crate::cluster::{
    CONTROLLER_NAME, DESTINATION_PORT, DESTINATION_SERVICE, IDENTITY_PORT, IDENTITY_SERVICE,
    IDENTITY_TOKEN_DIRECTORY, IDENTITY_TOKEN_FILE, IDENTITY_TOKEN_VOLUME, INIT_CONTAINER_NAME,
    POLICY_PORT, POLICY_SERVICE, PROXY_ADMIN_PORT, PROXY_CONTAINER_NAME, PROXY_INBOUND_PORT,
    PROXY_OUTBOUND_PORT, PROXY_TAP_PORT, PROXY_UID, TOKEN_AUDIENCE,
};

use super::{InjectionConfig, ProxyResources};

/// The emptyDir `weft-init` mounts at `/run`, where iptables keeps its
/// `xtables.lock` (the root filesystem is read-only).
pub const XTABLES_LOCK_VOLUME: &str = "weft-init-xtables-lock";
/// Where `weft-init` mounts [`XTABLES_LOCK_VOLUME`].
const XTABLES_LOCK_DIRECTORY: &str = "/run";
/// How long the projected identity token lives (the kubelet renews it).
const TOKEN_EXPIRATION_SECONDS: i64 = 86_400;
/// The proxy's admin port's name in the pod.
const PROXY_ADMIN_PORT_NAME: &str = "weft-admin";
/// The cluster domain the proxy's discovery suffix defaults to.
const DEFAULT_CLUSTER_DOMAIN: &str = "cluster.local";
/// The proxy's inbound port's name in the pod.
const PROXY_INBOUND_PORT_NAME: &str = "weft-proxy";

/// Everything the two containers are built from: the configuration with
/// the pod's annotations applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxySpec<'config> {
    /// The installation's settings (Services, trust, networks).
    pub config: &'config InjectionConfig,
    /// `<image>:<version>`.
    pub image: String,
    /// `imagePullPolicy`, if any.
    pub image_pull_policy: Option<String>,
    /// The proxy's requests and limits.
    pub resources: ProxyResources,
    /// `WEFT_PROXY_LOG`.
    pub log_level: String,
    /// `WEFT_PROXY_INBOUND_DEFAULT_POLICY`.
    pub default_inbound_policy: String,
    /// `WEFT_PROXY_OPAQUE_PORTS`, if annotated.
    pub opaque_ports: Option<String>,
    /// Added to `weft-init`'s `--skip-inbound-ports` (after the tap and admin ports).
    pub skip_inbound_ports: Option<String>,
    /// `weft-init --skip-outbound-ports`.
    pub skip_outbound_ports: Option<String>,
    /// `weft-init --skip-subnets`.
    pub skip_subnets: Option<String>,
    /// `WEFT_PROXY_INBOUND_PORTS`: the pod's container ports, if any.
    pub inbound_ports: Option<String>,
    /// `weft-init --inbound-only` (`weft.io/inject: ingress`).
    pub inbound_only: bool,
}

/// The `weft-init` init container.
pub fn init_container(spec: &ProxySpec<'_>) -> Value {
    let mut skip_inbound_ports = format!("{PROXY_TAP_PORT},{PROXY_ADMIN_PORT}");
    if let Some(ports) = &spec.skip_inbound_ports {
        skip_inbound_ports.push(',');
        skip_inbound_ports.push_str(ports);
    }
    let mut arguments: Vec<String> = [
        "--inbound-proxy-port".to_string(),
        PROXY_INBOUND_PORT.to_string(),
        "--outbound-proxy-port".to_string(),
        PROXY_OUTBOUND_PORT.to_string(),
        "--proxy-uid".to_string(),
        PROXY_UID.to_string(),
        "--skip-inbound-ports".to_string(),
        skip_inbound_ports,
    ]
    .into();
    for (flag, value) in [
        ("--skip-outbound-ports", &spec.skip_outbound_ports),
        ("--skip-subnets", &spec.skip_subnets),
    ] {
        if let Some(value) = value {
            arguments.push(flag.to_string());
            arguments.push(value.clone());
        }
    }
    if spec.inbound_only {
        arguments.push("--inbound-only".to_string());
    }
    let mut container = json!({
        "name": INIT_CONTAINER_NAME,
        "image": spec.image,
        "command": ["weft-init"],
        "args": arguments,
        "resources": {
            "requests": {"cpu": "10m", "memory": "10Mi"},
            "limits": {"cpu": "100m", "memory": "20Mi"},
        },
        "securityContext": {
            "runAsUser": 0,
            "runAsNonRoot": false,
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [
            {"name": XTABLES_LOCK_VOLUME, "mountPath": XTABLES_LOCK_DIRECTORY},
        ],
    });
    set_pull_policy(&mut container, spec);
    container
}

/// The proxy, as a native sidecar.
pub fn proxy_container(spec: &ProxySpec<'_>) -> Value {
    let probe = |path: &str| json!({"httpGet": {"path": path, "port": PROXY_ADMIN_PORT}});
    let mut startup_probe = probe("/ready");
    startup_probe["periodSeconds"] = json!(1);
    startup_probe["failureThreshold"] = json!(120);
    let mut container = json!({
        "name": PROXY_CONTAINER_NAME,
        "image": spec.image,
        "restartPolicy": "Always",
        "env": environment(spec),
        "ports": [
            {"name": PROXY_INBOUND_PORT_NAME, "containerPort": PROXY_INBOUND_PORT},
            {"name": PROXY_ADMIN_PORT_NAME, "containerPort": PROXY_ADMIN_PORT},
        ],
        "startupProbe": startup_probe,
        "readinessProbe": probe("/ready"),
        "livenessProbe": probe("/live"),
        "securityContext": {
            "runAsUser": PROXY_UID,
            "runAsNonRoot": true,
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [
            {
                "name": IDENTITY_TOKEN_VOLUME,
                "mountPath": IDENTITY_TOKEN_DIRECTORY,
                "readOnly": true,
            },
        ],
    });
    if let Some(resources) = resources(&spec.resources) {
        container["resources"] = resources;
    }
    set_pull_policy(&mut container, spec);
    container
}

fn set_pull_policy(container: &mut Value, spec: &ProxySpec<'_>) {
    if let Some(policy) = &spec.image_pull_policy {
        container["imagePullPolicy"] = json!(policy);
    }
}

/// `requests`/`limits` with the set quantities; `None` when none is.
fn resources(resources: &ProxyResources) -> Option<Value> {
    let section = |cpu: &Option<String>, memory: &Option<String>| {
        let mut section = serde_json::Map::new();
        if let Some(cpu) = cpu {
            section.insert("cpu".to_string(), json!(cpu));
        }
        if let Some(memory) = memory {
            section.insert("memory".to_string(), json!(memory));
        }
        section
    };
    let requests = section(&resources.cpu_request, &resources.memory_request);
    let limits = section(&resources.cpu_limit, &resources.memory_limit);
    let mut value = serde_json::Map::new();
    if !requests.is_empty() {
        value.insert("requests".to_string(), Value::Object(requests));
    }
    if !limits.is_empty() {
        value.insert("limits".to_string(), Value::Object(limits));
    }
    (!value.is_empty()).then_some(Value::Object(value))
}

/// The proxy's environment, in the order the plan of the injected pod
/// gives (the `$(...)` references need their variables defined earlier).
fn environment(spec: &ProxySpec<'_>) -> Value {
    let config = spec.config;
    let namespace = &config.control_plane_namespace;
    let service = |name: &str, port: u16| {
        format!(
            "{name}.{namespace}.svc.{domain}.:{port}",
            domain = config.cluster_domain
        )
    };
    let controller_identity = format!(
        "{CONTROLLER_NAME}.{namespace}.serviceaccount.identity.{namespace}.{}",
        config.trust_domain
    );
    let workload = r#"{"ns":"$(_pod_ns)","pod":"$(_pod_name)"}"#;
    let field = |name: &str, path: &str| json!({"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}});
    let mut variables = vec![
        field("_pod_name", "metadata.name"),
        field("_pod_ns", "metadata.namespace"),
        field("_pod_sa", "spec.serviceAccountName"),
    ];
    let mut value =
        |name: &str, value: String| variables.push(json!({"name": name, "value": value}));
    value(
        "WEFT_PROXY_INBOUND_LISTEN_ADDR",
        format!("0.0.0.0:{PROXY_INBOUND_PORT}"),
    );
    value(
        "WEFT_PROXY_OUTBOUND_LISTEN_ADDR",
        format!("127.0.0.1:{PROXY_OUTBOUND_PORT}"),
    );
    value(
        "WEFT_PROXY_ADMIN_LISTEN_ADDR",
        format!("0.0.0.0:{PROXY_ADMIN_PORT}"),
    );
    value(
        "WEFT_PROXY_TAP_LISTEN_ADDR",
        format!("0.0.0.0:{PROXY_TAP_PORT}"),
    );
    value(
        "WEFT_PROXY_DESTINATION_SVC_ADDR",
        service(DESTINATION_SERVICE, DESTINATION_PORT),
    );
    value("WEFT_PROXY_DESTINATION_CONTEXT", workload.to_string());
    value(
        "WEFT_PROXY_DESTINATION_PROFILE_NETWORKS",
        config.cluster_networks.clone(),
    );
    value("WEFT_PROXY_POLICY_WORKLOAD", workload.to_string());
    value(
        "WEFT_PROXY_POLICY_SVC_ADDR",
        service(POLICY_SERVICE, POLICY_PORT),
    );
    value(
        "WEFT_PROXY_INBOUND_DEFAULT_POLICY",
        spec.default_inbound_policy.clone(),
    );
    value(
        "WEFT_PROXY_POLICY_CLUSTER_NETWORKS",
        config.cluster_networks.clone(),
    );
    value(
        "WEFT_PROXY_IDENTITY_SVC_ADDR",
        service(IDENTITY_SERVICE, IDENTITY_PORT),
    );
    value(
        "WEFT_PROXY_IDENTITY_TOKEN_FILE",
        format!("{IDENTITY_TOKEN_DIRECTORY}/{IDENTITY_TOKEN_FILE}"),
    );
    value(
        "WEFT_PROXY_IDENTITY_LOCAL_NAME",
        format!(
            "$(_pod_sa).$(_pod_ns).serviceaccount.identity.{namespace}.{}",
            config.trust_domain
        ),
    );
    value(
        crate::cluster::PROXY_TRUST_ANCHORS_VARIABLE,
        config.trust_anchors_pem.clone(),
    );
    value(
        "WEFT_PROXY_DESTINATION_SVC_NAME",
        controller_identity.clone(),
    );
    value("WEFT_PROXY_IDENTITY_SVC_NAME", controller_identity.clone());
    value("WEFT_PROXY_TAP_SVC_NAME", controller_identity);
    if let Some(ports) = &spec.inbound_ports {
        value("WEFT_PROXY_INBOUND_PORTS", ports.clone());
    }
    value("WEFT_PROXY_LOG", spec.log_level.clone());
    if let Some(ports) = &spec.opaque_ports {
        value("WEFT_PROXY_OPAQUE_PORTS", ports.clone());
    }
    // The proxy looks up `svc.cluster.local.` names by default; another
    // cluster domain needs saying (last, so the default shape is unchanged).
    if config.cluster_domain != DEFAULT_CLUSTER_DOMAIN {
        value(
            "WEFT_PROXY_DESTINATION_PROFILE_SUFFIXES",
            format!("svc.{}.", config.cluster_domain),
        );
    }
    Value::Array(variables)
}

/// The projected ServiceAccount token and the xtables lock's emptyDir.
pub fn volumes() -> [Value; 2] {
    [
        json!({
            "name": IDENTITY_TOKEN_VOLUME,
            "projected": {
                "sources": [{
                    "serviceAccountToken": {
                        "audience": TOKEN_AUDIENCE,
                        "expirationSeconds": TOKEN_EXPIRATION_SECONDS,
                        "path": IDENTITY_TOKEN_FILE,
                    },
                }],
            },
        }),
        json!({"name": XTABLES_LOCK_VOLUME, "emptyDir": {}}),
    ]
}
