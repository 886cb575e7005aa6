//! The generated cluster (pure): the same shape as [`super::mesh`], as the
//! Kubernetes objects a real cluster would hold — Namespaces, Services,
//! Deployment-owned Pods (ReplicaSets included) with a weft proxy sidecar,
//! and one EndpointSlice per Service — for the controller's Kubernetes
//! source, served by the test API server.
//!
//! ```text
//! ns-N        Namespace
//! svc-S       Service (selector app=svc-S, port 80 → targetPort http), Deployment svc-S,
//!             ReplicaSet svc-S-5d8f7c, Pods svc-S-5d8f7c-E at the mesh shape's addresses
//! svc-S-xxxxx EndpointSlice: every pod ready, port http 8080; the edit adds or removes
//!             the extra endpoint (a ready pod svc-S-5d8f7c-extra)
//! ```

use serde_json::{Value, json};

use super::mesh::{MeshShape, SERVICE_PORT, WORKLOAD_PORT};

/// The pod-template-hash every generated ReplicaSet carries.
const TEMPLATE_HASH: &str = "5d8f7c";

impl MeshShape {
    /// Every object of the cluster, in creation order (namespaces first).
    pub fn cluster_objects(&self) -> Vec<Value> {
        let mut objects: Vec<Value> = (0..self.namespaces.max(1))
            .map(|index| {
                json!({"apiVersion": "v1", "kind": "Namespace",
                       "metadata": {"name": format!("ns-{index}"),
                                    "annotations": {"weft.io/inject": "enabled"}}})
            })
            .collect();
        for service in 0..self.services {
            objects.push(self.service_object(service));
            objects.push(self.replica_set(service));
            for endpoint in 0..self.endpoints_per_service {
                objects.push(self.pod(service, &endpoint.to_string(), &self.address(service, endpoint)));
            }
            objects.push(self.slice(service, false));
        }
        objects
    }

    /// The address of service `index`'s endpoint `endpoint` (as in the mesh file).
    pub fn address(&self, service: usize, endpoint: usize) -> String {
        format!("10.{}.{}.{}", 1 + service / 256, service % 256, endpoint + 1)
    }

    fn service_object(&self, service: usize) -> Value {
        let name = Self::service_name(service);
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": self.namespace(service)},
            "spec": {
                "selector": {"app": name},
                "clusterIP": format!("10.96.{}.{}", service / 256, service % 256),
                "clusterIPs": [format!("10.96.{}.{}", service / 256, service % 256)],
                "type": "ClusterIP",
                "ports": [{"name": "http", "port": SERVICE_PORT, "protocol": "TCP", "targetPort": "http"}]
            }
        })
    }

    fn replica_set(&self, service: usize) -> Value {
        let name = Self::service_name(service);
        json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {
                "name": format!("{name}-{TEMPLATE_HASH}"), "namespace": self.namespace(service),
                "labels": {"app": name, "pod-template-hash": TEMPLATE_HASH},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name,
                                     "uid": format!("uid-deploy-{service}"), "controller": true}]
            },
            "spec": {"replicas": self.endpoints_per_service,
                     "selector": {"matchLabels": {"app": name, "pod-template-hash": TEMPLATE_HASH}}}
        })
    }

    /// Pod `suffix` of service `service` at `address`: an app container and
    /// the weft proxy as a native sidecar, Running and Ready.
    pub fn pod(&self, service: usize, suffix: &str, address: &str) -> Value {
        let name = Self::service_name(service);
        let replica_set = format!("{name}-{TEMPLATE_HASH}");
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": format!("{replica_set}-{suffix}"), "namespace": self.namespace(service),
                "labels": {"app": name, "pod-template-hash": TEMPLATE_HASH},
                "annotations": {"weft.io/proxy-version": "dev"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": replica_set,
                                     "uid": format!("uid-rs-{service}"), "controller": true}]
            },
            "spec": {
                "serviceAccountName": name,
                "nodeName": "node-a",
                "initContainers": [{
                    "name": "weft-proxy", "image": "ghcr.io/weft-mesh/weft-proxy:dev",
                    "restartPolicy": "Always",
                    "ports": [{"name": "weft-proxy", "containerPort": 4143},
                              {"name": "weft-admin", "containerPort": 4191}],
                    "env": [{"name": "WEFT_PROXY_LOG", "value": "warn"},
                            {"name": "WEFT_PROXY_DESTINATION_SVC_ADDR", "value": "weft-dst.weft.svc.cluster.local:8086"}]
                }],
                "containers": [{
                    "name": "app", "image": "ghcr.io/weft-mesh/demo:dev",
                    "ports": [{"name": "http", "containerPort": WORKLOAD_PORT, "protocol": "TCP"}],
                    "readinessProbe": {"httpGet": {"path": "/ready", "port": WORKLOAD_PORT}}
                }]
            },
            "status": {
                "phase": "Running", "podIP": address, "podIPs": [{"ip": address}],
                "hostIP": "192.168.0.10",
                "conditions": [{"type": "Ready", "status": "True"},
                               {"type": "ContainersReady", "status": "True"}]
            }
        })
    }

    /// Service `service`'s EndpointSlice: every pod ready, and with `extra`
    /// the extra endpoint too.
    pub fn slice(&self, service: usize, extra: bool) -> Value {
        let name = Self::service_name(service);
        let replica_set = format!("{name}-{TEMPLATE_HASH}");
        let mut endpoints: Vec<Value> = (0..self.endpoints_per_service)
            .map(|endpoint| {
                slice_endpoint(
                    &self.address(service, endpoint),
                    &format!("{replica_set}-{endpoint}"),
                )
            })
            .collect();
        if extra {
            endpoints.push(slice_endpoint(
                &self.extra_address(service),
                &format!("{replica_set}-extra"),
            ));
        }
        json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": format!("{name}-x7k2p"), "namespace": self.namespace(service),
                         "labels": {"kubernetes.io/service-name": name,
                                    "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": WORKLOAD_PORT, "protocol": "TCP"}],
            "endpoints": endpoints
        })
    }

    /// The extra pod an edit's endpoint points at.
    pub fn extra_pod(&self, service: usize) -> Value {
        self.pod(service, "extra", &self.extra_address(service))
    }
}

fn slice_endpoint(address: &str, pod: &str) -> Value {
    json!({
        "addresses": [address],
        "conditions": {"ready": true, "serving": true, "terminating": false},
        "nodeName": "node-a", "zone": "zone-a",
        "targetRef": {"kind": "Pod", "name": pod}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_mirror_the_mesh_shape() {
        let shape = MeshShape {
            services: 3,
            endpoints_per_service: 2,
            namespaces: 2,
        };
        let objects = shape.cluster_objects();
        let count = |kind: &str| objects.iter().filter(|object| object["kind"] == kind).count();
        assert_eq!(count("Namespace"), 2);
        assert_eq!(count("Service"), 3);
        assert_eq!(count("ReplicaSet"), 3);
        assert_eq!(count("Pod"), 6);
        assert_eq!(count("EndpointSlice"), 3);
        let slice = shape.slice(1, true);
        assert_eq!(slice["endpoints"].as_array().unwrap().len(), 3);
        assert_eq!(slice["endpoints"][2]["addresses"][0], shape.extra_address(1));
        assert_eq!(slice["metadata"]["namespace"], "ns-1");
        assert_eq!(shape.extra_pod(1)["status"]["podIP"], shape.extra_address(1));
    }
}
