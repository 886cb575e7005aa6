//! The only I/O of `weft check --kubernetes`: builds the API client from the
//! kubeconfig and reads what the checks need into a [`ClusterState`]. Reads
//! run together; each failure is kept, worded, beside its field.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Namespace, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use weft_core::cluster::{
    CONTROL_PLANE_COMPONENT_LABEL, CONTROLLER_NAME, INJECTOR_SERVICE, ISSUER_SECRET,
    PROXY_CONTAINER_NAME, PROXY_VERSION_ANNOTATION, TRUST_ANCHORS_CONFIGMAP,
};

use super::Mode;
use super::data_plane::PROXY_TRUST_ANCHORS_VARIABLE;
use super::installation::{PROXY_INJECTOR_WEBHOOK, expected_crds};
use super::pre::pre_access_requests;
use super::state::{
    AccessRequest, AccessReview, ApiVersion, ClusterState, ControlPlaneState, DataPlaneState,
    DeploymentState, EndpointCounts, Fetched, PodState, PreState, ProxyState, WebhookService,
    WebhookState,
};

/// How long connecting to the API server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one answer may take.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Items per page of a list.
const PAGE: u32 = 500;
/// The Pod Security Admission label.
const POD_SECURITY_ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";
/// The label tying an EndpointSlice to its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The port the API server calls a webhook's Service on when none is given.
const DEFAULT_WEBHOOK_PORT: i32 = 443;
/// The controller's flag naming the proxy version its injector injects.
const PROXY_VERSION_FLAG: &str = "--proxy-version";

/// Which cluster, and what to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `--kubeconfig`.
    pub kubeconfig: Option<PathBuf>,
    /// `--context`.
    pub context: Option<String>,
    /// `--namespace`: the control plane's.
    pub control_namespace: String,
    /// `--data-plane-namespace` (with `--proxy`).
    pub data_plane_namespace: Option<String>,
}

/// Reads what `mode`'s checks need from the cluster.
pub async fn gather(target: &Target, mode: Mode) -> ClusterState {
    let mut state = ClusterState {
        now_unix: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs() as i64),
        control_namespace: target.control_namespace.clone(),
        client: Ok(()),
        version: Err("not queried: the client could not be built".into()),
        pre: None,
        control_plane: None,
        data_plane: None,
    };
    let (client, url) = match connect(target).await {
        Ok(connected) => connected,
        Err(error) => {
            state.client = Err(error.to_string());
            return state;
        }
    };
    state.version = client
        .apiserver_version()
        .await
        .map(|info| ApiVersion {
            major: info.major,
            minor: info.minor,
            git_version: info.git_version,
        })
        .map_err(|error| {
            format!(
                "cannot query the Kubernetes API at {url}: {}",
                explain(&error)
            )
        });
    if state.version.is_err() {
        return state;
    }
    let reader = Reader {
        client,
        namespace: target.control_namespace.clone(),
    };
    if mode == Mode::Pre {
        state.pre = Some(reader.pre().await);
    } else {
        let (control_plane, data_plane) = tokio::join!(reader.control_plane(), async {
            if mode == Mode::Proxy {
                Some(
                    reader
                        .data_plane(target.data_plane_namespace.as_deref())
                        .await,
                )
            } else {
                None
            }
        });
        state.control_plane = Some(control_plane);
        state.data_plane = data_plane;
    }
    state
}

/// Why no API client could be built (the `can initialize the client` error).
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// `--kubeconfig` cannot be read, or names no usable context.
    #[error("--kubeconfig {path}: {reason}")]
    Kubeconfig {
        /// The file.
        path: String,
        /// Why (with its causes).
        reason: String,
    },
    /// `--context` is not in `$KUBECONFIG` / `~/.kube/config`, or they cannot be read.
    #[error("kubeconfig: {0}")]
    Context(String),
    /// Neither a kubeconfig nor an in-cluster ServiceAccount.
    #[error("no Kubernetes configuration: {0}")]
    Infer(String),
    /// The configuration is unusable for a client (TLS material, proxy).
    #[error("Kubernetes client: {0}")]
    Client(String),
}

/// The client `--kubeconfig`/`--context` describe (else `$KUBECONFIG`,
/// `~/.kube/config` or the in-cluster ServiceAccount), and its server's URL.
async fn connect(target: &Target) -> Result<(kube::Client, String), ConnectError> {
    let options = KubeConfigOptions {
        context: target.context.clone(),
        ..KubeConfigOptions::default()
    };
    let mut config = match &target.kubeconfig {
        Some(path) => {
            let unusable = |error: &dyn std::error::Error| ConnectError::Kubeconfig {
                path: path.display().to_string(),
                reason: chain(error),
            };
            let kubeconfig = Kubeconfig::read_from(path).map_err(|error| unusable(&error))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|error| unusable(&error))?
        }
        None if target.context.is_some() => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|error| ConnectError::Context(chain(&error)))?,
        None => kube::Config::infer()
            .await
            .map_err(|error| ConnectError::Infer(chain(&error)))?,
    };
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    config.read_timeout = Some(READ_TIMEOUT);
    let url = config.cluster_url.to_string();
    let url = url.trim_end_matches('/').to_string();
    let client =
        kube::Client::try_from(config).map_err(|error| ConnectError::Client(explain(&error)))?;
    Ok((client, url))
}

/// An error and its causes, `: `-joined, without repeating a cause its
/// parent already quoted.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = cause.source();
    }
    text
}

/// A client error, worded: the API's own message for an API error.
fn explain(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => {
            if status.message.is_empty() {
                format!("HTTP {}", status.code)
            } else {
                format!("{} (HTTP {})", status.message, status.code)
            }
        }
        // kube's own wrapper text ("ServiceError: …") says nothing the causes don't.
        other => std::error::Error::source(other).map_or_else(|| other.to_string(), chain),
    }
}

struct Reader {
    client: kube::Client,
    namespace: String,
}

impl Reader {
    fn namespaced<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn cluster<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::ClusterResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::all(self.client.clone())
    }

    async fn exists<K>(api: Api<K>, what: &str, name: &str) -> Fetched<bool>
    where
        K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        api.get_metadata_opt(name)
            .await
            .map(|found| found.is_some())
            .map_err(|error| format!("cannot read {what} {name}: {}", explain(&error)))
    }

    /// The object `name` through `api` (`None` when absent); an error names
    /// its kind and name.
    async fn read<K>(api: Api<K>, name: &str) -> Fetched<Option<K>>
    where
        K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        api.get_opt(name)
            .await
            .map_err(|error| format!("cannot read {} {name}: {}", K::kind(&()), explain(&error)))
    }

    async fn pre(&self) -> PreState {
        // The reviews are small: one after the other, beside the two reads.
        let reviews = async {
            let mut access = Vec::new();
            for request in pre_access_requests() {
                access.push(self.review(request).await);
            }
            access
        };
        let (namespace_exists, access, pod_security) = tokio::join!(
            Self::exists(self.cluster::<Namespace>(), "Namespace", &self.namespace),
            reviews,
            self.pod_security(),
        );
        PreState {
            namespace_exists,
            access,
            pod_security,
        }
    }

    async fn review(&self, request: AccessRequest) -> AccessReview {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(request.verb.into()),
                    group: Some(request.group.into()),
                    resource: Some(request.resource.into()),
                    namespace: request.namespaced.then(|| self.namespace.clone()),
                    ..ResourceAttributes::default()
                }),
                ..SelfSubjectAccessReviewSpec::default()
            },
            ..SelfSubjectAccessReview::default()
        };
        let allowed = Api::<SelfSubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map(|answer| answer.status.is_some_and(|status| status.allowed))
            .map_err(|error| {
                format!(
                    "cannot review access to {} {}: {}",
                    request.verb,
                    request.resource,
                    explain(&error)
                )
            });
        AccessReview { request, allowed }
    }

    async fn pod_security(&self) -> Fetched<Vec<(String, Option<String>)>> {
        let namespaces = self
            .cluster::<Namespace>()
            .list_metadata(&ListParams::default())
            .await
            .map_err(|error| format!("cannot list namespaces: {}", explain(&error)))?;
        Ok(namespaces
            .items
            .into_iter()
            .map(|namespace| {
                let level = namespace
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|labels| labels.get(POD_SECURITY_ENFORCE_LABEL).cloned());
                (namespace.metadata.name.unwrap_or_default(), level)
            })
            .collect())
    }

    async fn control_plane(&self) -> ControlPlaneState {
        let pods_scope = format!("namespace {}", self.namespace);
        let (
            namespace_exists,
            cluster_role_exists,
            cluster_role_binding_exists,
            service_account_exists,
            crds,
            controller_deployment,
            pods,
            trust_anchors_configmap,
            issuer_secret,
            proxy_injector,
            injector_service,
            injector_endpoints,
        ) = tokio::join!(
            Self::exists(self.cluster::<Namespace>(), "Namespace", &self.namespace),
            Self::exists(
                self.cluster::<ClusterRole>(),
                "ClusterRole",
                CONTROLLER_NAME
            ),
            Self::exists(
                self.cluster::<ClusterRoleBinding>(),
                "ClusterRoleBinding",
                CONTROLLER_NAME
            ),
            Self::exists(
                self.namespaced::<ServiceAccount>(),
                "ServiceAccount",
                CONTROLLER_NAME
            ),
            self.crd_names(),
            self.controller_deployment(),
            list_pods(self.namespaced::<Pod>(), &pods_scope),
            self.trust_anchors_configmap(),
            self.issuer_secret(),
            self.proxy_injector(),
            self.injector_service(),
            self.injector_endpoints(),
        );
        ControlPlaneState {
            namespace_exists,
            cluster_role_exists,
            cluster_role_binding_exists,
            service_account_exists,
            crds,
            expected_crds: expected_crds(),
            controller_deployment,
            pods,
            trust_anchors_configmap,
            issuer_secret,
            proxy_injector,
            injector_service,
            injector_endpoints,
        }
    }

    async fn proxy_injector(&self) -> Fetched<Option<Vec<WebhookState>>> {
        let configuration = Self::read(
            self.cluster::<MutatingWebhookConfiguration>(),
            PROXY_INJECTOR_WEBHOOK,
        )
        .await?;
        Ok(configuration.map(|configuration| {
            configuration
                .webhooks
                .unwrap_or_default()
                .into_iter()
                .map(|webhook| WebhookState {
                    name: webhook.name,
                    ca_bundle: webhook
                        .client_config
                        .ca_bundle
                        .map(|bundle| bundle.0)
                        .unwrap_or_default(),
                    service: webhook.client_config.service.map(|service| WebhookService {
                        namespace: service.namespace,
                        name: service.name,
                        path: service.path,
                        port: service.port.unwrap_or(DEFAULT_WEBHOOK_PORT),
                    }),
                })
                .collect()
        }))
    }

    async fn injector_service(&self) -> Fetched<Option<Vec<i32>>> {
        let service = Self::read(self.namespaced::<Service>(), INJECTOR_SERVICE).await?;
        Ok(service.map(|service| {
            service
                .spec
                .and_then(|spec| spec.ports)
                .unwrap_or_default()
                .into_iter()
                .map(|port| port.port)
                .collect()
        }))
    }

    async fn injector_endpoints(&self) -> Fetched<EndpointCounts> {
        let params =
            ListParams::default().labels(&format!("{SERVICE_NAME_LABEL}={INJECTOR_SERVICE}"));
        let slices = self
            .namespaced::<EndpointSlice>()
            .list(&params)
            .await
            .map_err(|error| {
                format!(
                    "cannot list EndpointSlices of Service {INJECTOR_SERVICE}: {}",
                    explain(&error)
                )
            })?;
        let mut counts = EndpointCounts::default();
        for endpoint in slices.items.iter().flat_map(|slice| &slice.endpoints) {
            counts.total += 1;
            // An unset `ready` means ready (the API's documented default).
            let ready = endpoint
                .conditions
                .as_ref()
                .and_then(|conditions| conditions.ready)
                .unwrap_or(true);
            if ready {
                counts.ready += 1;
            }
        }
        Ok(counts)
    }

    async fn crd_names(&self) -> Fetched<Vec<String>> {
        let list = self
            .cluster::<CustomResourceDefinition>()
            .list_metadata(&ListParams::default())
            .await
            .map_err(|error| {
                format!("cannot list CustomResourceDefinitions: {}", explain(&error))
            })?;
        Ok(list
            .items
            .into_iter()
            .filter_map(|crd| crd.metadata.name)
            .collect())
    }

    async fn controller_deployment(&self) -> Fetched<Option<DeploymentState>> {
        let deployment = Self::read(self.namespaced::<Deployment>(), CONTROLLER_NAME).await?;
        Ok(deployment.map(|deployment| DeploymentState {
            desired: deployment
                .spec
                .as_ref()
                .and_then(|spec| spec.replicas)
                .unwrap_or(1),
            available: deployment
                .status
                .as_ref()
                .and_then(|status| status.available_replicas)
                .unwrap_or(0),
            proxy_version: control_plane_proxy_version(&deployment),
        }))
    }

    async fn trust_anchors_configmap(&self) -> Fetched<Option<BTreeMap<String, String>>> {
        let configmap = Self::read(self.namespaced::<ConfigMap>(), TRUST_ANCHORS_CONFIGMAP).await?;
        Ok(configmap.map(|configmap| configmap.data.unwrap_or_default()))
    }

    async fn issuer_secret(&self) -> Fetched<Option<BTreeMap<String, Vec<u8>>>> {
        let secret = Self::read(self.namespaced::<Secret>(), ISSUER_SECRET).await?;
        Ok(secret.map(|secret| {
            secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(key, value)| (key, value.0))
                .collect()
        }))
    }

    async fn data_plane(&self, namespace: Option<&str>) -> DataPlaneState {
        let (api, scope) = match namespace {
            Some(namespace) => (
                Api::<Pod>::namespaced(self.client.clone(), namespace),
                format!("namespace {namespace}"),
            ),
            None => (
                Api::<Pod>::all(self.client.clone()),
                "all namespaces".to_string(),
            ),
        };
        let (exists, pods) = tokio::join!(
            async {
                match namespace {
                    Some(namespace) => Some((
                        namespace.to_string(),
                        Self::exists(self.cluster::<Namespace>(), "Namespace", namespace).await,
                    )),
                    None => None,
                }
            },
            list_pods(api, &scope),
        );
        DataPlaneState {
            namespace: exists,
            pods: pods.map(|pods| pods.into_iter().filter(|pod| pod.proxy.is_some()).collect()),
        }
    }
}

/// Every pod `api` lists (page by page), reduced.
async fn list_pods(api: Api<Pod>, scope: &str) -> Fetched<Vec<PodState>> {
    let mut pods = Vec::new();
    let mut params = ListParams::default().limit(PAGE);
    loop {
        let page = api
            .list(&params)
            .await
            .map_err(|error| format!("cannot list pods in {scope}: {}", explain(&error)))?;
        pods.extend(page.items.iter().map(pod_state));
        match page.metadata.continue_.filter(|token| !token.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(pods),
        }
    }
}

/// A pod, reduced to what the checks read.
pub fn pod_state(pod: &Pod) -> PodState {
    let status = pod.status.as_ref();
    let condition = |kind: &str| {
        status
            .and_then(|status| status.conditions.as_ref())
            .and_then(|conditions| conditions.iter().find(|condition| condition.type_ == kind))
    };
    let ready = condition("Ready").is_some_and(|condition| condition.status == "True");
    let unschedulable = condition("PodScheduled")
        .filter(|condition| {
            condition.status == "False" && condition.reason.as_deref() == Some("Unschedulable")
        })
        .map(|condition| condition.message.clone().unwrap_or_default());
    let spec = pod.spec.as_ref();
    let proxy_container: Option<&Container> = spec.and_then(|spec| {
        spec.containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .find(|container| container.name == PROXY_CONTAINER_NAME)
    });
    let proxy = proxy_container.map(|container| {
        let container_ready = status
            .into_iter()
            .flat_map(|status| {
                status
                    .container_statuses
                    .iter()
                    .flatten()
                    .chain(status.init_container_statuses.iter().flatten())
            })
            .any(|container_status| {
                container_status.name == PROXY_CONTAINER_NAME && container_status.ready
            });
        let trust_anchors = container
            .env
            .iter()
            .flatten()
            .find(|variable| variable.name == PROXY_TRUST_ANCHORS_VARIABLE)
            .and_then(|variable| variable.value.clone());
        let annotated = pod
            .metadata
            .annotations
            .as_ref()
            .and_then(|annotations| annotations.get(PROXY_VERSION_ANNOTATION).cloned());
        let tagged = container.image.as_deref().and_then(image_tag);
        ProxyState {
            ready: container_ready,
            trust_anchors,
            injected_version: annotated.clone(),
            version: annotated.or(tagged),
        }
    });
    PodState {
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        name: pod.metadata.name.clone().unwrap_or_default(),
        component: pod
            .metadata
            .labels
            .as_ref()
            .and_then(|labels| labels.get(CONTROL_PLANE_COMPONENT_LABEL).cloned()),
        phase: status
            .and_then(|status| status.phase.clone())
            .unwrap_or_default(),
        ready,
        unschedulable,
        proxy,
    }
}

/// The proxy version the controller's injector injects: the value of its
/// `--proxy-version` argument (`--proxy-version V` or `--proxy-version=V`),
/// else the tag of its image (the controller's default is its own version).
pub fn control_plane_proxy_version(deployment: &Deployment) -> Option<String> {
    let containers = &deployment.spec.as_ref()?.template.spec.as_ref()?.containers;
    let flagged = containers.iter().find_map(|container| {
        let args = container.args.as_deref().unwrap_or_default();
        args.iter().enumerate().find_map(|(index, arg)| {
            if arg == PROXY_VERSION_FLAG {
                args.get(index + 1).cloned()
            } else {
                arg.strip_prefix(PROXY_VERSION_FLAG)
                    .and_then(|rest| rest.strip_prefix('='))
                    .map(str::to_string)
            }
        })
    });
    flagged.or_else(|| {
        containers
            .first()
            .and_then(|container| container.image.as_deref())
            .and_then(image_tag)
    })
}

/// `registry:5000/weft/proxy:0.1.0@sha256:…` → `0.1.0`; no tag → `None`.
pub fn image_tag(image: &str) -> Option<String> {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    last.split_once(':').map(|(_, tag)| tag.to_string())
}
