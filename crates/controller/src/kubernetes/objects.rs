//! Converting watched objects into the catalog's types, at once, so the
//! Kubernetes object is dropped after its event: a Service is stripped of
//! what the mesh never reads, an EndpointSlice becomes weft-core's lean
//! slice, and a custom resource ([`DynamicObject`]) is rebuilt as
//! `{apiVersion, kind, metadata: {name, namespace, labels, annotations}, spec}`
//! and read with the weft-core type's serde (status and managed fields
//! dropped), then checked with [`MeshObject::validate`].

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice as KubernetesSlice;
use kube::api::DynamicObject;
use serde::de::DeserializeOwned;
use weft_core::endpoint_slice::EndpointSlice;
use weft_core::object::{Kind, MeshObject};
use weft_core::policy::{
    AuthorizationPolicy, MeshTLSAuthentication, NetworkAuthentication, Server,
};
use weft_core::{GrpcRoute, HttpRoute, ServiceProfile, TrafficSplit, Workload};

/// The annotation `kubectl apply` writes: a copy of the whole object, never kept.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Why a watched object cannot enter the catalog.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// `metadata.name` is missing.
    #[error("metadata.name is missing")]
    MissingName,
    /// The object does not read as the weft-core type.
    #[error("{0}")]
    Shape(String),
    /// It reads, but a field is invalid.
    #[error("{0}")]
    Invalid(String),
}

/// A Service as the catalog keeps it: no managed fields, status, owner
/// references or last-applied copy.
pub fn lean_service(mut service: Service) -> Result<MeshObject, ConvertError> {
    if service.metadata.name.as_deref().is_none_or(str::is_empty) {
        return Err(ConvertError::MissingName);
    }
    service.status = None;
    let metadata = &mut service.metadata;
    metadata.managed_fields = None;
    metadata.owner_references = None;
    metadata.finalizers = None;
    if let Some(annotations) = metadata.annotations.as_mut() {
        annotations.remove(LAST_APPLIED_ANNOTATION);
    }
    Ok(MeshObject::from(service))
}

/// An EndpointSlice as weft-core's lean slice.
pub fn lean_slice(slice: &KubernetesSlice) -> Result<MeshObject, ConvertError> {
    if slice.metadata.name.as_deref().is_none_or(str::is_empty) {
        return Err(ConvertError::MissingName);
    }
    EndpointSlice::from_kubernetes(slice)
        .map(MeshObject::from)
        .map_err(|error| ConvertError::Invalid(error.to_string()))
}

/// A custom resource of `kind` written as `api_version`, as the weft-core type.
pub fn from_dynamic(
    object: &DynamicObject,
    api_version: &str,
    kind: Kind,
    kind_name: &str,
) -> Result<MeshObject, ConvertError> {
    let metadata = &object.metadata;
    if metadata.name.as_deref().is_none_or(str::is_empty) {
        return Err(ConvertError::MissingName);
    }
    let annotations = metadata.annotations.as_ref().map(|annotations| {
        let mut annotations = annotations.clone();
        annotations.remove(LAST_APPLIED_ANNOTATION);
        annotations
    });
    let mut lean_metadata = serde_json::Map::new();
    lean_metadata.insert("name".into(), metadata.name.clone().into());
    if let Some(namespace) = &metadata.namespace {
        lean_metadata.insert("namespace".into(), namespace.clone().into());
    }
    if let Some(labels) = metadata.labels.as_ref().filter(|labels| !labels.is_empty()) {
        lean_metadata.insert("labels".into(), serde_json::json!(labels));
    }
    if let Some(annotations) = annotations.filter(|annotations| !annotations.is_empty()) {
        lean_metadata.insert("annotations".into(), serde_json::json!(annotations));
    }
    let mut document = serde_json::Map::new();
    document.insert("apiVersion".into(), api_version.into());
    document.insert("kind".into(), kind_name.into());
    document.insert("metadata".into(), lean_metadata.into());
    if let Some(spec) = object.data.get("spec") {
        document.insert("spec".into(), spec.clone());
    }
    let document = serde_json::Value::Object(document);
    let converted: MeshObject = match kind {
        Kind::ServiceProfile => read::<ServiceProfile>(document)?.into(),
        Kind::TrafficSplit => read::<TrafficSplit>(document)?.into(),
        Kind::Server => read::<Server>(document)?.into(),
        Kind::AuthorizationPolicy => read::<AuthorizationPolicy>(document)?.into(),
        Kind::MeshTLSAuthentication => read::<MeshTLSAuthentication>(document)?.into(),
        Kind::NetworkAuthentication => read::<NetworkAuthentication>(document)?.into(),
        Kind::HttpRoute => read::<HttpRoute>(document)?.into(),
        Kind::GrpcRoute => read::<GrpcRoute>(document)?.into(),
        Kind::Workload => read::<Workload>(document)?.into(),
        Kind::Service | Kind::EndpointSlice => {
            return Err(ConvertError::Shape(format!(
                "{kind} is not a custom resource"
            )));
        }
    };
    converted
        .validate()
        .map_err(|error| ConvertError::Invalid(error.to_string()))?;
    Ok(converted)
}

fn read<T: DeserializeOwned>(document: serde_json::Value) -> Result<T, ConvertError> {
    serde_json::from_value(document).map_err(|error| ConvertError::Shape(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dynamic(value: serde_json::Value) -> DynamicObject {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn custom_resources_convert_without_status_or_managed_fields() {
        let table: [(&str, Kind, &str, serde_json::Value); 5] = [
            (
                "linkerd.io/v1alpha2",
                Kind::ServiceProfile,
                "ServiceProfile",
                serde_json::json!({"routes": [{"name": "GET /", "condition": {"method": "GET", "pathRegex": "/"}}]}),
            ),
            (
                "policy.linkerd.io/v1beta3",
                Kind::Server,
                "Server",
                serde_json::json!({"podSelector": {"matchLabels": {"app": "web"}}, "port": 8080}),
            ),
            (
                "split.smi-spec.io/v1alpha1",
                Kind::TrafficSplit,
                "TrafficSplit",
                serde_json::json!({"service": "web", "backends": [{"service": "web-v2", "weight": "100m"}]}),
            ),
            (
                "gateway.networking.k8s.io/v1",
                Kind::HttpRoute,
                "HTTPRoute",
                serde_json::json!({"parentRefs": [{"name": "web", "kind": "Service", "group": "core", "port": 80}], "rules": [{"backendRefs": [{"name": "web", "port": 80}]}]}),
            ),
            (
                "weft.dev/v1alpha1",
                Kind::Workload,
                "Workload",
                serde_json::json!({"addresses": ["10.0.0.9"], "ports": [{"port": 80}]}),
            ),
        ];
        for (api_version, kind, kind_name, spec) in table {
            let object = dynamic(serde_json::json!({
                "apiVersion": api_version,
                "kind": kind_name,
                "metadata": {
                    "name": "web.shop.svc.cluster.local",
                    "namespace": "shop",
                    "resourceVersion": "12",
                    "uid": "abc",
                    "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
                    "annotations": {LAST_APPLIED_ANNOTATION: "{}"},
                },
                "spec": spec,
                "status": {"anything": true},
            }));
            let converted = from_dynamic(&object, api_version, kind, kind_name)
                .unwrap_or_else(|error| panic!("{kind_name}: {error}"));
            assert_eq!(converted.kind(), kind);
            let key = converted.key().unwrap();
            assert_eq!(
                (key.namespace.as_str(), key.name.as_str()),
                ("shop", "web.shop.svc.cluster.local")
            );
        }
    }

    #[test]
    fn bad_custom_resources_are_refused_with_a_reason() {
        let table = [
            (
                serde_json::json!({"metadata": {"namespace": "shop"}, "spec": {"port": 8080, "podSelector": {}}}),
                "metadata.name",
            ),
            (
                serde_json::json!({"metadata": {"name": "s", "namespace": "shop"}, "spec": {"port": 0, "podSelector": {"matchLabels": {}}}}),
                "port",
            ),
            (
                serde_json::json!({"metadata": {"name": "s", "namespace": "shop"}, "spec": {"bogus": 1}}),
                "bogus",
            ),
        ];
        for (value, expected) in table {
            let mut value = value;
            value["apiVersion"] = "policy.linkerd.io/v1beta3".into();
            value["kind"] = "Server".into();
            let error = from_dynamic(
                &dynamic(value.clone()),
                "policy.linkerd.io/v1beta3",
                Kind::Server,
                "Server",
            )
            .unwrap_err()
            .to_string();
            assert!(error.contains(expected), "{value}: {error}");
        }
    }

    #[test]
    fn services_lose_what_the_mesh_never_reads() {
        let service: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop", "managedFields": [{"manager": "x"}],
                          "annotations": {LAST_APPLIED_ANNOTATION: "{}", "config.linkerd.io/opaque-ports": "3306"}},
            "spec": {"ports": [{"port": 80}], "selector": {"app": "web"}},
            "status": {"loadBalancer": {}},
        }))
        .unwrap();
        let MeshObject::Service(service) = lean_service(service).unwrap() else {
            panic!("not a service");
        };
        assert!(service.status.is_none());
        assert!(service.metadata.managed_fields.is_none());
        let annotations = service.metadata.annotations.unwrap();
        assert_eq!(annotations.len(), 1);
        assert!(annotations.contains_key("config.linkerd.io/opaque-ports"));
    }
}
