//! The control plane's objects, in apply order: the namespace, the
//! controller's ServiceAccount and RBAC, the identity ConfigMap and Secrets,
//! the Services (the proxy injector's among them), the controller
//! Deployment, (HA) its PodDisruptionBudget, and last the proxy injector's
//! MutatingWebhookConfiguration, once what it calls exists. Pure: options
//! and credentials in, typed objects out, rendered by [`super::manifest`].
//!
//! The injector is the controller's HTTPS listener (`--injector-addr`,
//! container port `injector`) behind Service `weft-proxy-injector` (443);
//! its certificate comes from the identity issuer, so the webhook's
//! `caBundle` is the trust anchors PEM.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, ServiceReference,
    WebhookClientConfig,
};
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMap, Container, ContainerPort, EnvVar, HTTPGetAction, KeyToPath,
    Namespace, PodAffinityTerm, PodAntiAffinity, PodSecurityContext, PodSpec, PodTemplateSpec,
    Probe, ResourceRequirements, SeccompProfile, Secret, SecretVolumeSource, SecurityContext,
    Service, ServiceAccount, ServicePort, ServiceSpec, Volume, VolumeMount,
    WeightedPodAffinityTerm,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use weft_core::cluster;
use weft_core::inject::ProxyResources;

use super::credentials::IdentityCredentials;
use super::manifest::{Manifest, RenderError};
use super::rbac;

/// The controller's user and group (Linkerd's controller UID).
pub const CONTROLLER_UID: i64 = 2103;
/// Where the API token Secret is mounted.
pub const API_TOKEN_DIR: &str = "/var/run/weft/api-token";
/// The API token's key in its Secret (and file name in [`API_TOKEN_DIR`]).
pub const API_TOKEN_KEY: &str = "token";
/// The controller's container name.
pub const CONTAINER_NAME: &str = "controller";
/// The container port names (Services target them by name).
pub const DESTINATION_PORT_NAME: &str = "grpc-dst";
/// The Identity port's name.
pub const IDENTITY_PORT_NAME: &str = "grpc-identity";
/// The policy port's name.
pub const POLICY_PORT_NAME: &str = "grpc-policy";
/// The admin port's name (probes, metrics).
pub const ADMIN_PORT_NAME: &str = "admin-http";
/// The web (API, dashboard) port's name.
pub const WEB_PORT_NAME: &str = "http-web";
/// The proxy injector's (HTTPS webhook) port's name.
pub const INJECTOR_PORT_NAME: &str = "injector";
/// The proxy injector Service's port (the API server calls webhooks on 443
/// unless told otherwise).
pub const INJECTOR_SERVICE_PORT: u16 = 443;
/// The webhook's name in the MutatingWebhookConfiguration (a qualified
/// name, as the API requires).
pub const INJECTOR_WEBHOOK_NAME: &str = "weft-proxy-injector.weft.io";
/// The namespace label that turns weft's admission webhooks off for a
/// namespace (`disabled`), as Linkerd's `config.linkerd.io/admission-webhooks`.
pub const ADMISSION_WEBHOOKS_LABEL: &str = "config.weft.io/admission-webhooks";
/// The label Kubernetes puts on every namespace, valued by its name.
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";
/// How long the API server waits for the injector (seconds).
pub const INJECTOR_TIMEOUT_SECONDS: i32 = 10;
/// The proxy image's repository (the tag is the proxy version).
pub const DEFAULT_PROXY_IMAGE: &str = "ghcr.io/weft-mesh/weft-proxy";
/// Labels every object `weft install` writes carries besides the component.
const PART_OF_LABEL: &str = "app.kubernetes.io/part-of";
/// The pod template's annotation with the API token's SHA-256: a new token
/// rolls every replica, so they never disagree on it (the controller reads
/// the token once, at start).
pub const API_TOKEN_CHECKSUM_ANNOTATION: &str = "weft.io/api-token-checksum";

/// How the controller's image is pulled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "PascalCase")]
pub enum ImagePullPolicy {
    /// Pull on every start.
    Always,
    /// Pull when the node does not have it.
    IfNotPresent,
    /// Never pull.
    Never,
}

impl ImagePullPolicy {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "Always",
            Self::IfNotPresent => "IfNotPresent",
            Self::Never => "Never",
        }
    }
}

/// The control plane's settings (the `weft install` flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlPlaneOptions {
    /// The controller's image.
    pub controller_image: String,
    /// Its pull policy.
    pub image_pull_policy: ImagePullPolicy,
    /// The controller's replicas.
    pub replicas: i32,
    /// High availability: anti-affinity, a PodDisruptionBudget, higher
    /// requests, a one-at-a-time rolling update.
    pub high_availability: bool,
    /// The controller's log filter (`RUST_LOG`).
    pub log_level: String,
    /// The injected proxy's image, without tag (`--proxy-image`).
    pub proxy_image: String,
    /// The injected proxy's version, the image tag (`--proxy-version`).
    pub proxy_version: String,
    /// The injected containers' pull policy; `None`: the controller's default.
    pub proxy_image_pull_policy: Option<ImagePullPolicy>,
    /// The injected proxies' log filter; `None`: the controller's default.
    pub proxy_log_level: Option<String>,
    /// The injected proxy's requests and limits (unset: none).
    pub proxy_resources: ProxyResources,
}

/// The default controller image for this version of weft.
pub fn default_controller_image() -> String {
    format!(
        "ghcr.io/weft-mesh/weft-controller:{}",
        env!("CARGO_PKG_VERSION")
    )
}

impl Default for ControlPlaneOptions {
    fn default() -> Self {
        Self {
            controller_image: default_controller_image(),
            image_pull_policy: ImagePullPolicy::IfNotPresent,
            replicas: 1,
            high_availability: false,
            log_level: "info".to_string(),
            proxy_image: DEFAULT_PROXY_IMAGE.to_string(),
            proxy_version: default_proxy_version(),
            proxy_image_pull_policy: None,
            proxy_log_level: None,
            proxy_resources: ProxyResources::default(),
        }
    }
}

/// The default proxy version: this version of weft.
pub fn default_proxy_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// The secrets the manifests carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlPlaneSecrets {
    /// Trust anchors and (unless external) the issuer.
    pub identity: IdentityCredentials,
    /// The HTTP API's bearer token, shared by every replica.
    pub api_token: String,
}

/// Every control-plane object, rendered, in apply order.
pub fn manifests(
    options: &ControlPlaneOptions,
    secrets: &ControlPlaneSecrets,
) -> Result<Vec<Manifest>, RenderError> {
    let mut manifests = vec![
        Manifest::new(&namespace())?,
        Manifest::new(&ServiceAccount {
            metadata: namespaced(cluster::CONTROLLER_NAME),
            automount_service_account_token: Some(true),
            ..ServiceAccount::default()
        })?,
        Manifest::new(&rbac::cluster_role(cluster_scoped(
            cluster::CONTROLLER_NAME,
        )))?,
        Manifest::new(&rbac::cluster_role_binding(cluster_scoped(
            cluster::CONTROLLER_NAME,
        )))?,
        Manifest::new(&rbac::role(namespaced(cluster::CONTROLLER_NAME)))?,
        Manifest::new(&rbac::role_binding(namespaced(cluster::CONTROLLER_NAME)))?,
        Manifest::new(&trust_anchors(&secrets.identity.trust_anchors_pem))?,
    ];
    if let Some(issuer) = &secrets.identity.issuer {
        manifests.push(Manifest::new(&tls_secret(
            cluster::ISSUER_SECRET,
            &issuer.certificate_pem,
            &issuer.key_pem,
            &secrets.identity.trust_anchors_pem,
        ))?);
    }
    manifests.push(Manifest::new(&api_token_secret(&secrets.api_token))?);
    for (name, port, target) in [
        (
            cluster::DESTINATION_SERVICE,
            cluster::DESTINATION_PORT,
            DESTINATION_PORT_NAME,
        ),
        (
            cluster::IDENTITY_SERVICE,
            cluster::IDENTITY_PORT,
            IDENTITY_PORT_NAME,
        ),
        (
            cluster::POLICY_SERVICE,
            cluster::POLICY_PORT,
            POLICY_PORT_NAME,
        ),
        (cluster::WEB_SERVICE, cluster::WEB_PORT, WEB_PORT_NAME),
        (
            cluster::INJECTOR_SERVICE,
            INJECTOR_SERVICE_PORT,
            INJECTOR_PORT_NAME,
        ),
    ] {
        manifests.push(Manifest::new(&service(name, port, target))?);
    }
    manifests.push(Manifest::new(&deployment(options, &secrets.api_token))?);
    if options.high_availability {
        manifests.push(Manifest::new(&disruption_budget())?);
    }
    manifests.push(Manifest::new(&proxy_injector_webhook(
        &secrets.identity.trust_anchors_pem,
    ))?);
    Ok(manifests)
}

/// The labels of every control-plane object.
fn labels() -> BTreeMap<String, String> {
    [
        (
            cluster::CONTROL_PLANE_NAMESPACE_LABEL,
            cluster::CONTROL_PLANE_NAMESPACE,
        ),
        (PART_OF_LABEL, "weft"),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_string(), value.to_string()))
    .collect()
}

/// The labels of the controller's objects (and its pods' selector).
fn component_labels() -> BTreeMap<String, String> {
    let mut labels = labels();
    labels.extend(selector_labels());
    labels
}

fn selector_labels() -> BTreeMap<String, String> {
    [(
        cluster::CONTROL_PLANE_COMPONENT_LABEL.to_string(),
        cluster::CONTROLLER_COMPONENT.to_string(),
    )]
    .into()
}

fn cluster_scoped(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        labels: Some(labels()),
        ..ObjectMeta::default()
    }
}

fn namespaced(name: &str) -> ObjectMeta {
    ObjectMeta {
        namespace: Some(cluster::CONTROL_PLANE_NAMESPACE.to_string()),
        ..cluster_scoped(name)
    }
}

fn namespace() -> Namespace {
    let mut labels = labels();
    // The controller's pod meets the `restricted` Pod Security Standard.
    labels.insert(
        "pod-security.kubernetes.io/enforce".to_string(),
        "restricted".to_string(),
    );
    // The injector never sees the control plane's own pods.
    labels.insert(ADMISSION_WEBHOOKS_LABEL.to_string(), "disabled".to_string());
    Namespace {
        metadata: ObjectMeta {
            name: Some(cluster::CONTROL_PLANE_NAMESPACE.to_string()),
            labels: Some(labels),
            annotations: Some(
                [(
                    cluster::INJECT_ANNOTATION.to_string(),
                    "disabled".to_string(),
                )]
                .into(),
            ),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    }
}

fn trust_anchors(pem: &str) -> ConfigMap {
    ConfigMap {
        metadata: namespaced(cluster::TRUST_ANCHORS_CONFIGMAP),
        data: Some([(cluster::TRUST_ANCHORS_KEY.to_string(), pem.to_string())].into()),
        ..ConfigMap::default()
    }
}

fn bytes(text: &str) -> ByteString {
    ByteString(text.as_bytes().to_vec())
}

fn tls_secret(name: &str, certificate: &str, key: &str, trust_anchors: &str) -> Secret {
    Secret {
        metadata: namespaced(name),
        type_: Some("kubernetes.io/tls".to_string()),
        data: Some(
            [
                ("ca.crt".to_string(), bytes(trust_anchors)),
                ("tls.crt".to_string(), bytes(certificate)),
                ("tls.key".to_string(), bytes(key)),
            ]
            .into(),
        ),
        ..Secret::default()
    }
}

fn api_token_secret(token: &str) -> Secret {
    Secret {
        metadata: namespaced(cluster::API_TOKEN_SECRET),
        type_: Some("Opaque".to_string()),
        data: Some([(API_TOKEN_KEY.to_string(), bytes(token))].into()),
        ..Secret::default()
    }
}

fn service(name: &str, port: u16, target: &str) -> Service {
    Service {
        metadata: ObjectMeta {
            labels: Some(component_labels()),
            ..namespaced(name)
        },
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_string()),
            selector: Some(selector_labels()),
            ports: Some(vec![ServicePort {
                name: Some(target.to_string()),
                port: i32::from(port),
                target_port: Some(IntOrString::String(target.to_string())),
                protocol: Some("TCP".to_string()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// The controller's command line (flags of `weft-controller`).
pub fn controller_args(options: &ControlPlaneOptions) -> Vec<String> {
    let any = |port: u16| format!("0.0.0.0:{port}");
    let mut args: Vec<String> = [
        "--kubernetes".to_string(),
        "--destination-addr".to_string(),
        any(cluster::DESTINATION_PORT),
        "--policy-addr".to_string(),
        any(cluster::POLICY_PORT),
        "--admin-addr".to_string(),
        any(cluster::ADMIN_PORT),
        "--web-addr".to_string(),
        any(cluster::WEB_PORT),
        "--identity-addr".to_string(),
        any(cluster::IDENTITY_PORT),
        "--identity-issuer-secret".to_string(),
        cluster::ISSUER_SECRET.to_string(),
        "--api-token-file".to_string(),
        format!("{API_TOKEN_DIR}/{API_TOKEN_KEY}"),
        "--injector-addr".to_string(),
        any(cluster::INJECTOR_PORT),
        "--proxy-image".to_string(),
        options.proxy_image.clone(),
        "--proxy-version".to_string(),
        options.proxy_version.clone(),
    ]
    .into();
    if let Some(policy) = options.proxy_image_pull_policy {
        args.push("--proxy-image-pull-policy".to_string());
        args.push(policy.as_str().to_string());
    }
    let resources = &options.proxy_resources;
    let optional = [
        ("--proxy-log-level", &options.proxy_log_level),
        ("--proxy-cpu-request", &resources.cpu_request),
        ("--proxy-cpu-limit", &resources.cpu_limit),
        ("--proxy-memory-request", &resources.memory_request),
        ("--proxy-memory-limit", &resources.memory_limit),
    ];
    for (flag, value) in optional {
        if let Some(value) = value {
            args.push(flag.to_string());
            args.push(value.clone());
        }
    }
    args
}

fn quantity(text: &str) -> Quantity {
    Quantity(text.to_string())
}

fn resources(high_availability: bool) -> ResourceRequirements {
    let (cpu, memory) = if high_availability {
        ("200m", "100Mi")
    } else {
        ("100m", "50Mi")
    };
    ResourceRequirements {
        requests: Some(
            [
                ("cpu".to_string(), quantity(cpu)),
                ("memory".to_string(), quantity(memory)),
            ]
            .into(),
        ),
        limits: Some([("memory".to_string(), quantity("250Mi"))].into()),
        ..ResourceRequirements::default()
    }
}

fn http_probe(path: &str, initial_delay_seconds: Option<i32>) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_string()),
            port: IntOrString::String(ADMIN_PORT_NAME.to_string()),
            ..HTTPGetAction::default()
        }),
        initial_delay_seconds,
        ..Probe::default()
    }
}

fn container(options: &ControlPlaneOptions) -> Container {
    let ports = [
        (DESTINATION_PORT_NAME, cluster::DESTINATION_PORT),
        (IDENTITY_PORT_NAME, cluster::IDENTITY_PORT),
        (POLICY_PORT_NAME, cluster::POLICY_PORT),
        (ADMIN_PORT_NAME, cluster::ADMIN_PORT),
        (WEB_PORT_NAME, cluster::WEB_PORT),
        (INJECTOR_PORT_NAME, cluster::INJECTOR_PORT),
    ]
    .into_iter()
    .map(|(name, port)| ContainerPort {
        name: Some(name.to_string()),
        container_port: i32::from(port),
        protocol: Some("TCP".to_string()),
        ..ContainerPort::default()
    })
    .collect();
    Container {
        name: CONTAINER_NAME.to_string(),
        image: Some(options.controller_image.clone()),
        image_pull_policy: Some(options.image_pull_policy.as_str().to_string()),
        args: Some(controller_args(options)),
        env: Some(vec![EnvVar {
            name: "RUST_LOG".to_string(),
            value: Some(options.log_level.clone()),
            ..EnvVar::default()
        }]),
        ports: Some(ports),
        readiness_probe: Some(http_probe("/ready", None)),
        liveness_probe: Some(http_probe("/live", Some(10))),
        resources: Some(resources(options.high_availability)),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_string()]),
                ..Capabilities::default()
            }),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            run_as_user: Some(CONTROLLER_UID),
            run_as_group: Some(CONTROLLER_UID),
            seccomp_profile: Some(runtime_default()),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(vec![VolumeMount {
            name: cluster::API_TOKEN_SECRET.to_string(),
            mount_path: API_TOKEN_DIR.to_string(),
            read_only: Some(true),
            ..VolumeMount::default()
        }]),
        ..Container::default()
    }
}

fn runtime_default() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".to_string(),
        ..SeccompProfile::default()
    }
}

fn component_selector() -> LabelSelector {
    LabelSelector {
        match_labels: Some(selector_labels()),
        ..LabelSelector::default()
    }
}

/// HA: never two replicas on one node; spread across zones when possible.
fn anti_affinity() -> Affinity {
    let term = |topology_key: &str| PodAffinityTerm {
        label_selector: Some(LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: cluster::CONTROL_PLANE_COMPONENT_LABEL.to_string(),
                operator: "In".to_string(),
                values: Some(vec![cluster::CONTROLLER_COMPONENT.to_string()]),
            }]),
            ..LabelSelector::default()
        }),
        topology_key: topology_key.to_string(),
        ..PodAffinityTerm::default()
    };
    Affinity {
        pod_anti_affinity: Some(PodAntiAffinity {
            required_during_scheduling_ignored_during_execution: Some(vec![term(
                "kubernetes.io/hostname",
            )]),
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                WeightedPodAffinityTerm {
                    weight: 100,
                    pod_affinity_term: term("topology.kubernetes.io/zone"),
                },
            ]),
        }),
        ..Affinity::default()
    }
}

/// The hex SHA-256 of `text`.
fn sha256_hex(text: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, text.as_bytes())
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn deployment(options: &ControlPlaneOptions, api_token: &str) -> Deployment {
    let high_availability = options.high_availability;
    let pod = PodSpec {
        service_account_name: Some(cluster::CONTROLLER_NAME.to_string()),
        automount_service_account_token: Some(true),
        node_selector: Some([("kubernetes.io/os".to_string(), "linux".to_string())].into()),
        affinity: high_availability.then(anti_affinity),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            fs_group: Some(CONTROLLER_UID),
            seccomp_profile: Some(runtime_default()),
            ..PodSecurityContext::default()
        }),
        containers: vec![container(options)],
        volumes: Some(vec![Volume {
            name: cluster::API_TOKEN_SECRET.to_string(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(cluster::API_TOKEN_SECRET.to_string()),
                // Owner read, group (fsGroup: the controller) read.
                default_mode: Some(0o440),
                items: Some(vec![KeyToPath {
                    key: API_TOKEN_KEY.to_string(),
                    path: API_TOKEN_KEY.to_string(),
                    ..KeyToPath::default()
                }]),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        }]),
        ..PodSpec::default()
    };
    Deployment {
        metadata: ObjectMeta {
            labels: Some(component_labels()),
            ..namespaced(cluster::CONTROLLER_NAME)
        },
        spec: Some(DeploymentSpec {
            replicas: Some(options.replicas),
            selector: component_selector(),
            strategy: high_availability.then(|| DeploymentStrategy {
                type_: Some("RollingUpdate".to_string()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_unavailable: Some(IntOrString::Int(1)),
                    max_surge: Some(IntOrString::String("25%".to_string())),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(component_labels()),
                    annotations: Some(
                        [
                            (
                                API_TOKEN_CHECKSUM_ANNOTATION.to_string(),
                                sha256_hex(api_token),
                            ),
                            (
                                cluster::INJECT_ANNOTATION.to_string(),
                                "disabled".to_string(),
                            ),
                        ]
                        .into(),
                    ),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

/// The MutatingWebhookConfiguration that sends every pod CREATE outside
/// kube-system and the control plane's namespace (and namespaces labelled
/// `config.weft.io/admission-webhooks: disabled`) to the injector. The API
/// server verifies the injector's certificate (issued by the identity
/// issuer) with `caBundle`: the trust anchors. A failing or unreachable
/// injector does not block pods (`failurePolicy: Ignore`): they start
/// unmeshed, and `weft check` says why.
pub fn proxy_injector_webhook(trust_anchors_pem: &str) -> MutatingWebhookConfiguration {
    let strings = |items: &[&str]| items.iter().map(|item| item.to_string()).collect();
    let not_in = |key: &str, values: &[&str]| LabelSelectorRequirement {
        key: key.to_string(),
        operator: "NotIn".to_string(),
        values: Some(strings(values)),
    };
    let webhook = MutatingWebhook {
        name: INJECTOR_WEBHOOK_NAME.to_string(),
        client_config: WebhookClientConfig {
            ca_bundle: Some(bytes(trust_anchors_pem)),
            service: Some(ServiceReference {
                namespace: cluster::CONTROL_PLANE_NAMESPACE.to_string(),
                name: cluster::INJECTOR_SERVICE.to_string(),
                path: Some(cluster::INJECTOR_PATH.to_string()),
                port: Some(i32::from(INJECTOR_SERVICE_PORT)),
            }),
            url: None,
        },
        rules: Some(vec![RuleWithOperations {
            api_groups: Some(strings(&[""])),
            api_versions: Some(strings(&["v1"])),
            operations: Some(strings(&["CREATE"])),
            resources: Some(strings(&["pods"])),
            scope: Some("Namespaced".to_string()),
        }]),
        namespace_selector: Some(LabelSelector {
            match_expressions: Some(vec![
                not_in(
                    NAMESPACE_NAME_LABEL,
                    &["kube-system", cluster::CONTROL_PLANE_NAMESPACE],
                ),
                not_in(ADMISSION_WEBHOOKS_LABEL, &["disabled"]),
            ]),
            ..LabelSelector::default()
        }),
        failure_policy: Some("Ignore".to_string()),
        side_effects: "None".to_string(),
        admission_review_versions: strings(&["v1"]),
        timeout_seconds: Some(INJECTOR_TIMEOUT_SECONDS),
        reinvocation_policy: Some("Never".to_string()),
        ..MutatingWebhook::default()
    };
    MutatingWebhookConfiguration {
        metadata: ObjectMeta {
            labels: Some(component_labels()),
            ..cluster_scoped(cluster::PROXY_INJECTOR_WEBHOOK)
        },
        webhooks: Some(vec![webhook]),
    }
}

fn disruption_budget() -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: ObjectMeta {
            labels: Some(component_labels()),
            ..namespaced(cluster::CONTROLLER_NAME)
        },
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(component_selector()),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::install::credentials::IssuerCredentials;

    fn secrets(issuer: bool) -> ControlPlaneSecrets {
        ControlPlaneSecrets {
            identity: IdentityCredentials {
                trust_anchors_pem: "ANCHORS".to_string(),
                issuer: issuer.then(|| IssuerCredentials {
                    certificate_pem: "CERT".to_string(),
                    key_pem: "KEY".to_string(),
                }),
            },
            api_token: "TOKEN".to_string(),
        }
    }

    fn kinds_and_names(manifests: &[Manifest]) -> Vec<String> {
        manifests
            .iter()
            .map(|manifest| format!("{} {}", manifest.kind, manifest.name))
            .collect()
    }

    #[test]
    fn objects_table() {
        let base = [
            "Namespace weft",
            "ServiceAccount weft-controller",
            "ClusterRole weft-controller",
            "ClusterRoleBinding weft-controller",
            "Role weft-controller",
            "RoleBinding weft-controller",
            "ConfigMap weft-identity-trust-roots",
        ];
        let services = [
            "Secret weft-api-token",
            "Service weft-dst",
            "Service weft-identity",
            "Service weft-policy",
            "Service weft-web",
            "Service weft-proxy-injector",
            "Deployment weft-controller",
        ];
        let with = |middle: &[&str], end: &[&str]| -> Vec<String> {
            base.iter()
                .chain(middle)
                .chain(services.iter())
                .chain(end)
                .chain(["MutatingWebhookConfiguration weft-proxy-injector"].iter())
                .map(|text| text.to_string())
                .collect()
        };
        let high_availability = ControlPlaneOptions {
            high_availability: true,
            replicas: 3,
            ..ControlPlaneOptions::default()
        };
        let cases = [
            (
                "default",
                ControlPlaneOptions::default(),
                true,
                with(&["Secret weft-identity-issuer"], &[]),
            ),
            (
                "external issuer",
                ControlPlaneOptions::default(),
                false,
                with(&[], &[]),
            ),
            (
                "ha",
                high_availability,
                true,
                with(
                    &["Secret weft-identity-issuer"],
                    &["PodDisruptionBudget weft-controller"],
                ),
            ),
        ];
        for (name, options, issuer, expected) in cases {
            let manifests = manifests(&options, &secrets(issuer)).unwrap();
            assert_eq!(kinds_and_names(&manifests), expected, "{name}");
            for manifest in &manifests {
                let cluster_scoped = [
                    "Namespace",
                    "ClusterRole",
                    "ClusterRoleBinding",
                    "MutatingWebhookConfiguration",
                ]
                .contains(&manifest.kind.as_str());
                assert_eq!(manifest.namespace.is_none(), cluster_scoped, "{name}");
            }
        }
    }

    #[test]
    fn sha256_hex_table() {
        let cases = [
            (
                "",
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
            (
                "abc",
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(sha256_hex(text), expected);
        }
    }

    /// The value following `flag`, if the flag is there.
    fn value_of<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
        let position = args.iter().position(|arg| arg == flag)?;
        args.get(position + 1).map(String::as_str)
    }

    #[test]
    fn controller_args_listen_on_every_interface() {
        let args = controller_args(&ControlPlaneOptions::default());
        for flag in [
            "--destination-addr",
            "--policy-addr",
            "--admin-addr",
            "--web-addr",
            "--identity-addr",
            "--injector-addr",
        ] {
            assert!(
                value_of(&args, flag).is_some_and(|value| value.starts_with("0.0.0.0:")),
                "{flag}"
            );
        }
        assert_eq!(value_of(&args, "--injector-addr"), Some("0.0.0.0:8443"));
        assert!(args.contains(&"/var/run/weft/api-token/token".to_string()));
    }

    #[test]
    fn proxy_flags_table() {
        let custom = ControlPlaneOptions {
            proxy_image: "registry.example/proxy".to_string(),
            proxy_version: "v9".to_string(),
            proxy_image_pull_policy: Some(ImagePullPolicy::Always),
            ..ControlPlaneOptions::default()
        };
        let version = env!("CARGO_PKG_VERSION");
        let cases = [
            (
                "defaults",
                ControlPlaneOptions::default(),
                "ghcr.io/weft-mesh/weft-proxy",
                version,
                None,
            ),
            (
                "custom",
                custom,
                "registry.example/proxy",
                "v9",
                Some("Always"),
            ),
        ];
        for (name, options, image, tag, policy) in cases {
            let args = controller_args(&options);
            assert_eq!(value_of(&args, "--proxy-image"), Some(image), "{name}");
            assert_eq!(value_of(&args, "--proxy-version"), Some(tag), "{name}");
            assert_eq!(
                value_of(&args, "--proxy-image-pull-policy"),
                policy,
                "{name}"
            );
        }
    }

    #[test]
    fn the_webhook_calls_the_injector_service_with_the_anchors() {
        let configuration = proxy_injector_webhook("ANCHORS");
        let webhooks = configuration.webhooks.unwrap();
        assert_eq!(webhooks.len(), 1);
        let webhook = &webhooks[0];
        assert_eq!(webhook.name, INJECTOR_WEBHOOK_NAME);
        assert_eq!(
            webhook.client_config.ca_bundle,
            Some(ByteString(b"ANCHORS".to_vec()))
        );
        let reference = webhook.client_config.service.as_ref().unwrap();
        assert_eq!(reference.namespace, cluster::CONTROL_PLANE_NAMESPACE);
        assert_eq!(reference.name, cluster::INJECTOR_SERVICE);
        assert_eq!(reference.path.as_deref(), Some(cluster::INJECTOR_PATH));
        let injector_service = service(
            cluster::INJECTOR_SERVICE,
            INJECTOR_SERVICE_PORT,
            INJECTOR_PORT_NAME,
        );
        let port = &injector_service.spec.unwrap().ports.unwrap()[0];
        assert_eq!(reference.port, Some(port.port));
        assert_eq!(
            port.target_port,
            Some(IntOrString::String(INJECTOR_PORT_NAME.to_string()))
        );
        assert_eq!(webhook.failure_policy.as_deref(), Some("Ignore"));
        assert_eq!(webhook.side_effects, "None");
    }
}
