//! What the Kubernetes source watches ([`Resource`]), how each watch is
//! going ([`KubernetesStatus`], read by `/ready`) and its metrics
//! ([`KubernetesMetrics`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use weft_core::object::Kind;

/// One watched resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    /// v1 Namespace (annotations only).
    Namespaces,
    /// v1 Service.
    Services,
    /// discovery.k8s.io/v1 EndpointSlice.
    EndpointSlices,
    /// v1 Pod (as Workloads).
    Pods,
    /// apps/v1 ReplicaSet (metadata only: owners).
    ReplicaSets,
    /// batch/v1 Job (metadata only: owners).
    Jobs,
    /// linkerd.io/v1alpha2 ServiceProfile.
    ServiceProfiles,
    /// split.smi-spec.io/v1alpha1 TrafficSplit.
    TrafficSplits,
    /// policy.linkerd.io/v1beta3 Server.
    Servers,
    /// policy.linkerd.io/v1alpha1 AuthorizationPolicy.
    AuthorizationPolicies,
    /// policy.linkerd.io/v1alpha1 MeshTLSAuthentication.
    MeshTlsAuthentications,
    /// policy.linkerd.io/v1alpha1 NetworkAuthentication.
    NetworkAuthentications,
    /// policy.linkerd.io/v1beta3 HTTPRoute.
    PolicyHttpRoutes,
    /// gateway.networking.k8s.io/v1 HTTPRoute.
    GatewayHttpRoutes,
    /// gateway.networking.k8s.io/v1 GRPCRoute.
    GatewayGrpcRoutes,
    /// weft.dev/v1alpha1 Workload.
    Workloads,
}

/// A custom resource's coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CustomResource {
    /// API group.
    pub group: &'static str,
    /// Version.
    pub version: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Plural (the URL path segment).
    pub plural: &'static str,
}

impl CustomResource {
    /// `group/version`.
    pub fn api_version(&self) -> String {
        format!("{}/{}", self.group, self.version)
    }
}

impl Resource {
    /// Every resource, in the order the watches start.
    pub const ALL: [Resource; 16] = [
        Resource::Namespaces,
        Resource::ReplicaSets,
        Resource::Jobs,
        Resource::Services,
        Resource::EndpointSlices,
        Resource::Pods,
        Resource::ServiceProfiles,
        Resource::TrafficSplits,
        Resource::Servers,
        Resource::AuthorizationPolicies,
        Resource::MeshTlsAuthentications,
        Resource::NetworkAuthentications,
        Resource::PolicyHttpRoutes,
        Resource::GatewayHttpRoutes,
        Resource::GatewayGrpcRoutes,
        Resource::Workloads,
    ];

    /// Its name in metrics, logs and `/ready`: the plural, with the group
    /// for custom resources (`httproutes.gateway.networking.k8s.io`).
    pub fn name(self) -> &'static str {
        match self {
            Resource::Namespaces => "namespaces",
            Resource::Services => "services",
            Resource::EndpointSlices => "endpointslices.discovery.k8s.io",
            Resource::Pods => "pods",
            Resource::ReplicaSets => "replicasets.apps",
            Resource::Jobs => "jobs.batch",
            Resource::ServiceProfiles => "serviceprofiles.linkerd.io",
            Resource::TrafficSplits => "trafficsplits.split.smi-spec.io",
            Resource::Servers => "servers.policy.linkerd.io",
            Resource::AuthorizationPolicies => "authorizationpolicies.policy.linkerd.io",
            Resource::MeshTlsAuthentications => "meshtlsauthentications.policy.linkerd.io",
            Resource::NetworkAuthentications => "networkauthentications.policy.linkerd.io",
            Resource::PolicyHttpRoutes => "httproutes.policy.linkerd.io",
            Resource::GatewayHttpRoutes => "httproutes.gateway.networking.k8s.io",
            Resource::GatewayGrpcRoutes => "grpcroutes.gateway.networking.k8s.io",
            Resource::Workloads => "workloads.weft.dev",
        }
    }

    /// The catalog kind its objects become (`None`: namespaces and owners,
    /// which only shape pods' workloads).
    pub fn catalog_kind(self) -> Option<Kind> {
        match self {
            Resource::Namespaces | Resource::ReplicaSets | Resource::Jobs => None,
            Resource::Services => Some(Kind::Service),
            Resource::EndpointSlices => Some(Kind::EndpointSlice),
            Resource::Pods | Resource::Workloads => Some(Kind::Workload),
            Resource::ServiceProfiles => Some(Kind::ServiceProfile),
            Resource::TrafficSplits => Some(Kind::TrafficSplit),
            Resource::Servers => Some(Kind::Server),
            Resource::AuthorizationPolicies => Some(Kind::AuthorizationPolicy),
            Resource::MeshTlsAuthentications => Some(Kind::MeshTLSAuthentication),
            Resource::NetworkAuthentications => Some(Kind::NetworkAuthentication),
            Resource::PolicyHttpRoutes | Resource::GatewayHttpRoutes => Some(Kind::HttpRoute),
            Resource::GatewayGrpcRoutes => Some(Kind::GrpcRoute),
        }
    }

    /// Its coordinates when it is a custom resource (which may not be installed).
    pub fn custom(self) -> Option<CustomResource> {
        let (group, version, kind, plural) = match self {
            Resource::Namespaces
            | Resource::Services
            | Resource::EndpointSlices
            | Resource::Pods
            | Resource::ReplicaSets
            | Resource::Jobs => return None,
            Resource::ServiceProfiles => (
                "linkerd.io",
                "v1alpha2",
                "ServiceProfile",
                "serviceprofiles",
            ),
            Resource::TrafficSplits => (
                "split.smi-spec.io",
                "v1alpha1",
                "TrafficSplit",
                "trafficsplits",
            ),
            Resource::Servers => ("policy.linkerd.io", "v1beta3", "Server", "servers"),
            Resource::AuthorizationPolicies => (
                "policy.linkerd.io",
                "v1alpha1",
                "AuthorizationPolicy",
                "authorizationpolicies",
            ),
            Resource::MeshTlsAuthentications => (
                "policy.linkerd.io",
                "v1alpha1",
                "MeshTLSAuthentication",
                "meshtlsauthentications",
            ),
            Resource::NetworkAuthentications => (
                "policy.linkerd.io",
                "v1alpha1",
                "NetworkAuthentication",
                "networkauthentications",
            ),
            Resource::PolicyHttpRoutes => {
                ("policy.linkerd.io", "v1beta3", "HTTPRoute", "httproutes")
            }
            Resource::GatewayHttpRoutes => {
                ("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes")
            }
            Resource::GatewayGrpcRoutes => {
                ("gateway.networking.k8s.io", "v1", "GRPCRoute", "grpcroutes")
            }
            Resource::Workloads => ("weft.dev", "v1alpha1", "Workload", "workloads"),
        };
        Some(CustomResource {
            group,
            version,
            kind,
            plural,
        })
    }
}

/// How one watch is going.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceStatus {
    /// Whether its first list completed.
    pub listed: bool,
    /// Whether the API answered 404 (a custom resource not installed):
    /// treated as empty, retried with backoff, not waited for.
    pub absent: bool,
    /// Objects it holds now (pods, services, ...; namespaces and owners too).
    pub objects: usize,
    /// The last watch error, until the next good list or event.
    pub last_error: Option<String>,
    /// When it happened.
    pub last_error_at: Option<SystemTime>,
    /// Objects refused (bad shape or field) since start.
    pub rejected: u64,
}

/// Every watch's status, keyed by [`Resource::name`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubernetesStatus {
    /// Per resource.
    pub resources: BTreeMap<&'static str, ResourceStatus>,
}

impl KubernetesStatus {
    /// A status with every resource not yet listed.
    pub fn new() -> Self {
        Self {
            resources: Resource::ALL
                .iter()
                .map(|resource| (resource.name(), ResourceStatus::default()))
                .collect(),
        }
    }

    /// Ready once every resource listed once, except custom resources that
    /// are not installed.
    pub fn is_ready(&self) -> bool {
        self.resources
            .values()
            .all(|status| status.listed || status.absent)
    }

    /// The status as JSON, for `/ready`.
    pub fn to_json(&self) -> serde_json::Value {
        let seconds = |time: Option<SystemTime>| {
            time.and_then(|time| time.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map(|since| since.as_secs())
        };
        let resources: serde_json::Map<String, serde_json::Value> = self
            .resources
            .iter()
            .map(|(name, status)| {
                (
                    name.to_string(),
                    serde_json::json!({
                        "listed": status.listed,
                        "absent": status.absent,
                        "objects": status.objects,
                        "rejected": status.rejected,
                        "last_error": status.last_error,
                        "last_error_seconds": seconds(status.last_error_at),
                    }),
                )
            })
            .collect();
        serde_json::json!({"ready": self.is_ready(), "resources": resources})
    }
}

/// The live status, shared with the admin server.
pub type SharedKubernetesStatus = Arc<Mutex<KubernetesStatus>>;

/// Locks a status, recovering it if a holder panicked.
pub fn lock_status(status: &SharedKubernetesStatus) -> std::sync::MutexGuard<'_, KubernetesStatus> {
    status.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `{resource, type}` of a watch event.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct EventLabels {
    /// [`Resource::name`].
    pub resource: &'static str,
    /// `init`, `init_apply`, `init_done`, `apply`, `delete`.
    pub r#type: &'static str,
}

/// `{resource}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ResourceLabels {
    /// [`Resource::name`].
    pub resource: &'static str,
}

/// The source's metrics, in the controller's registry.
#[derive(Debug, Clone, Default)]
pub struct KubernetesMetrics {
    /// `kubernetes_watch_events_total{resource,type}`.
    pub events: Family<EventLabels, Counter>,
    /// `kubernetes_watch_errors_total{resource}`.
    pub errors: Family<ResourceLabels, Counter>,
    /// `kubernetes_rejected_objects_total{resource}`.
    pub rejected: Family<ResourceLabels, Counter>,
}

impl KubernetesMetrics {
    /// Registers the metrics in `registry`.
    pub fn new(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "kubernetes_watch_events",
            "Kubernetes watch events received, by resource and type",
            metrics.events.clone(),
        );
        registry.register(
            "kubernetes_watch_errors",
            "Kubernetes list and watch errors (each retried with backoff), by resource",
            metrics.errors.clone(),
        );
        registry.register(
            "kubernetes_rejected_objects",
            "Kubernetes objects refused by the catalog (bad shape or field), by resource",
            metrics.rejected.clone(),
        );
        metrics
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_after_every_first_list_except_absent_custom_resources() {
        let mut status = KubernetesStatus::new();
        assert!(!status.is_ready());
        for resource in Resource::ALL {
            let entry = status.resources.get_mut(resource.name()).unwrap();
            if resource == Resource::GatewayGrpcRoutes {
                entry.absent = true;
            } else {
                entry.listed = true;
            }
        }
        assert!(status.is_ready());
        status.resources.get_mut("pods").unwrap().listed = false;
        assert!(!status.is_ready());
    }

    #[test]
    fn names_are_unique_and_custom_resources_have_coordinates() {
        let mut names: Vec<&str> = Resource::ALL
            .iter()
            .map(|resource| resource.name())
            .collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Resource::ALL.len());
        for resource in Resource::ALL {
            if let Some(custom) = resource.custom() {
                assert!(resource.name().starts_with(custom.plural));
                assert!(resource.name().ends_with(custom.group));
                let kind = Kind::from_type(&custom.api_version(), custom.kind).unwrap();
                assert_eq!(Some(kind), resource.catalog_kind());
            }
        }
    }
}
