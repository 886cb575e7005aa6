use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::DynamicObject;
use weft_core::object::Kind;

use super::*;
use crate::catalog::Catalog;
use crate::kubernetes::objects::{from_dynamic, lean_service};
use crate::kubernetes::owners::Owners;
use crate::kubernetes::pod::pod_facts;

fn name(namespace: &str, name: &str) -> NamespacedName {
    (namespace.to_string(), name.to_string())
}

fn service(namespace: &str, service_name: &str) -> Converted {
    let service: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": service_name, "namespace": namespace},
        "spec": {"ports": [{"port": 80}], "selector": {"app": service_name}},
    }))
    .unwrap();
    Converted::Object(name(namespace, service_name), lean_service(service))
}

fn pod(namespace: &str, pod_name: &str, owner: Option<(&str, &str)>) -> Converted {
    let references: Vec<serde_json::Value> = owner
        .into_iter()
        .map(|(kind, owner)| serde_json::json!({"apiVersion": "apps/v1", "kind": kind, "name": owner, "uid": "u", "controller": true}))
        .collect();
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": pod_name, "namespace": namespace, "ownerReferences": references,
                     "annotations": {"config.linkerd.io/opaque-ports": "3306"}},
        "spec": {"containers": [{"name": "app", "ports": [{"containerPort": 8080}]}]},
        "status": {"phase": "Running", "podIP": "10.0.0.5"},
    }))
    .unwrap();
    Converted::Pod(name(namespace, pod_name), pod_facts(&pod).map(Box::new))
}

fn route(api_version: &str, namespace: &str, route_name: &str, port: u16) -> Converted {
    let object: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": api_version, "kind": "HTTPRoute",
        "metadata": {"name": route_name, "namespace": namespace},
        "spec": {"parentRefs": [{"name": "web", "kind": "Service", "group": "core", "port": port}],
                 "rules": [{"backendRefs": [{"name": "web", "port": port}]}]},
    }))
    .unwrap();
    Converted::Object(
        name(namespace, route_name),
        from_dynamic(&object, api_version, Kind::HttpRoute, "HTTPRoute"),
    )
}

fn relist(index: &mut Index, resource: Resource, objects: Vec<Converted>) -> Vec<Rejected> {
    index.handle(resource, Update::Init);
    let mut rejected = Vec::new();
    for object in objects {
        rejected.extend(index.handle(resource, Update::Listed(object)));
    }
    rejected.extend(index.handle(resource, Update::ListDone));
    rejected
}

fn service_names(catalog: &SharedCatalog, namespace: &str) -> Vec<String> {
    catalog
        .lock()
        .unwrap()
        .services_in(namespace)
        .into_iter()
        .filter_map(|service| service.metadata.name)
        .collect()
}

fn owner_of(catalog: &SharedCatalog, namespace: &str, pod: &str) -> Option<(String, String)> {
    catalog
        .lock()
        .unwrap()
        .workload(namespace, pod)
        .and_then(|workload| workload.spec.owner.clone())
        .map(|owner| (owner.kind, owner.name))
}

#[test]
fn a_relist_replaces_what_the_resource_held() {
    let catalog = Catalog::default().shared();
    let mut index = Index::new(catalog.clone());
    relist(
        &mut index,
        Resource::Services,
        vec![service("shop", "a"), service("shop", "b")],
    );
    assert_eq!(service_names(&catalog, "shop"), ["a", "b"]);
    index.handle(Resource::Services, Update::Applied(service("shop", "c")));
    index.handle(Resource::Services, Update::Deleted(name("shop", "a")));
    assert_eq!(service_names(&catalog, "shop"), ["b", "c"]);
    // After 410 Gone: b was deleted and d added while the watch was down.
    relist(
        &mut index,
        Resource::Services,
        vec![service("shop", "c"), service("shop", "d")],
    );
    assert_eq!(service_names(&catalog, "shop"), ["c", "d"]);
    assert_eq!(index.count(Resource::Services), 2);
    // An empty relist (a custom resource uninstalled) empties it.
    relist(&mut index, Resource::Services, vec![]);
    assert!(service_names(&catalog, "shop").is_empty());
}

#[test]
fn a_bad_object_is_refused_and_its_last_good_version_kept() {
    let catalog = Catalog::default().shared();
    let mut index = Index::new(catalog.clone());
    relist(
        &mut index,
        Resource::PolicyHttpRoutes,
        vec![route("policy.linkerd.io/v1beta3", "shop", "r", 80)],
    );
    let rejected = index.handle(
        Resource::PolicyHttpRoutes,
        Update::Applied(route("policy.linkerd.io/v1beta3", "shop", "r", 0)),
    );
    assert_eq!(rejected.len(), 1);
    let rejected = relist(
        &mut index,
        Resource::PolicyHttpRoutes,
        vec![route("policy.linkerd.io/v1beta3", "shop", "r", 0)],
    );
    assert_eq!(rejected.len(), 1);
    assert_eq!(catalog.lock().unwrap().http_routes(Some("shop")).len(), 1);
}

#[test]
fn a_linkerd_route_shadows_a_gateway_route_of_the_same_name() {
    let catalog = Catalog::default().shared();
    let mut index = Index::new(catalog.clone());
    let versions = |catalog: &SharedCatalog| -> Vec<String> {
        catalog
            .lock()
            .unwrap()
            .http_routes(Some("shop"))
            .into_iter()
            .map(|route| route.api_version)
            .collect()
    };
    relist(
        &mut index,
        Resource::GatewayHttpRoutes,
        vec![route("gateway.networking.k8s.io/v1", "shop", "r", 80)],
    );
    relist(&mut index, Resource::PolicyHttpRoutes, vec![]);
    assert_eq!(versions(&catalog), ["gateway.networking.k8s.io/v1"]);
    index.handle(
        Resource::PolicyHttpRoutes,
        Update::Applied(route("policy.linkerd.io/v1beta3", "shop", "r", 80)),
    );
    assert_eq!(versions(&catalog), ["policy.linkerd.io/v1beta3"]);
    // The gateway route changes while shadowed: still shadowed.
    index.handle(
        Resource::GatewayHttpRoutes,
        Update::Applied(route("gateway.networking.k8s.io/v1", "shop", "r", 81)),
    );
    assert_eq!(versions(&catalog), ["policy.linkerd.io/v1beta3"]);
    // The winner goes: the gateway route (its latest version) takes over.
    index.handle(
        Resource::PolicyHttpRoutes,
        Update::Deleted(name("shop", "r")),
    );
    assert_eq!(versions(&catalog), ["gateway.networking.k8s.io/v1"]);
    index.handle(
        Resource::GatewayHttpRoutes,
        Update::Deleted(name("shop", "r")),
    );
    assert!(versions(&catalog).is_empty());
}

#[test]
fn a_replica_set_after_its_pods_rebuilds_them() {
    let catalog = Catalog::default().shared();
    let mut index = Index::new(catalog.clone());
    relist(&mut index, Resource::ReplicaSets, vec![]);
    relist(
        &mut index,
        Resource::Pods,
        vec![
            pod("shop", "web-5d4f-a", Some(("ReplicaSet", "web-5d4f"))),
            pod("shop", "db-0", Some(("StatefulSet", "db"))),
        ],
    );
    assert_eq!(
        owner_of(&catalog, "shop", "web-5d4f-a"),
        Some(("ReplicaSet".into(), "web-5d4f".into()))
    );
    index.handle(
        Resource::ReplicaSets,
        Update::Applied(Converted::Owned(
            name("shop", "web-5d4f"),
            Some("web".into()),
        )),
    );
    assert_eq!(
        owner_of(&catalog, "shop", "web-5d4f-a"),
        Some(("Deployment".into(), "web".into()))
    );
    assert_eq!(
        owner_of(&catalog, "shop", "db-0"),
        Some(("StatefulSet".into(), "db".into()))
    );
    // A pod arriving now resolves at once.
    index.handle(
        Resource::Pods,
        Update::Applied(pod("shop", "web-5d4f-b", Some(("ReplicaSet", "web-5d4f")))),
    );
    assert_eq!(
        owner_of(&catalog, "shop", "web-5d4f-b"),
        Some(("Deployment".into(), "web".into()))
    );
}

#[test]
fn namespace_annotations_reach_their_pods() {
    let catalog = Catalog::default().shared();
    let mut index = Index::new(catalog.clone());
    relist(
        &mut index,
        Resource::Pods,
        vec![pod("shop", "web-1", None), pod("other", "web-1", None)],
    );
    let annotations = |namespace: &str| {
        catalog
            .lock()
            .unwrap()
            .workload(namespace, "web-1")
            .and_then(|workload| workload.metadata.annotations.clone())
            .unwrap_or_default()
    };
    let namespace_annotations = BTreeMap::from([
        (
            "config.linkerd.io/default-inbound-policy".to_string(),
            "deny".to_string(),
        ),
        (
            "config.linkerd.io/opaque-ports".to_string(),
            "25".to_string(),
        ),
    ]);
    index.handle(
        Resource::Namespaces,
        Update::Applied(Converted::Namespace(
            "shop".into(),
            Some(namespace_annotations),
        )),
    );
    let shop = annotations("shop");
    assert_eq!(
        shop.get("config.linkerd.io/default-inbound-policy")
            .map(String::as_str),
        Some("deny")
    );
    // The pod's own annotation wins.
    assert_eq!(
        shop.get("config.linkerd.io/opaque-ports")
            .map(String::as_str),
        Some("3306")
    );
    assert!(!annotations("other").contains_key("config.linkerd.io/default-inbound-policy"));
    // The namespace's annotation goes away: so does the pod's copy.
    relist(
        &mut index,
        Resource::Namespaces,
        vec![Converted::Namespace("shop".into(), None)],
    );
    assert!(!annotations("shop").contains_key("config.linkerd.io/default-inbound-policy"));
}

#[test]
fn a_pod_shadows_a_workload_resource_of_the_same_name() {
    let catalog = Catalog::default().shared();
    let mut index = Index::new(catalog.clone());
    let object: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "weft.dev/v1alpha1", "kind": "Workload",
        "metadata": {"name": "web-1", "namespace": "shop"},
        "spec": {"addresses": ["192.168.1.9"], "ports": [{"port": 80}]},
    }))
    .unwrap();
    let workload = || {
        Converted::Object(
            name("shop", "web-1"),
            from_dynamic(&object, "weft.dev/v1alpha1", Kind::Workload, "Workload"),
        )
    };
    let address = |catalog: &SharedCatalog| {
        catalog
            .lock()
            .unwrap()
            .workload("shop", "web-1")
            .map(|workload| workload.spec.addresses[0].to_string())
    };
    relist(&mut index, Resource::Workloads, vec![workload()]);
    assert_eq!(address(&catalog).as_deref(), Some("192.168.1.9"));
    relist(&mut index, Resource::Pods, vec![pod("shop", "web-1", None)]);
    assert_eq!(address(&catalog).as_deref(), Some("10.0.0.5"));
    relist(&mut index, Resource::Pods, vec![]);
    assert_eq!(address(&catalog).as_deref(), Some("192.168.1.9"));
    index.handle(Resource::Workloads, Update::Deleted(name("shop", "web-1")));
    assert_eq!(address(&catalog), None);
}

#[test]
fn a_pod_after_its_slice_updates_the_endpoint() {
    use crate::catalog::{EndpointUpdate, ServicePort};
    use k8s_openapi::api::discovery::v1::EndpointSlice;

    let catalog = Catalog::default().shared();
    catalog.lock().unwrap().set_endpoints_from_slices(true);
    let mut index = Index::new(catalog.clone());
    relist(&mut index, Resource::Services, vec![service("shop", "web")]);
    relist(&mut index, Resource::Pods, vec![]);
    let slice: EndpointSlice = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web-a", "namespace": "shop", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "ports": [{"port": 8080}],
        "endpoints": [{"addresses": ["10.0.0.5"], "conditions": {"ready": true},
                       "targetRef": {"kind": "Pod", "name": "web-1", "namespace": "shop"}}],
    }))
    .unwrap();
    relist(
        &mut index,
        Resource::EndpointSlices,
        vec![Converted::Object(
            name("shop", "web-a"),
            crate::kubernetes::objects::lean_slice(&slice),
        )],
    );
    let mut updates = catalog
        .lock()
        .unwrap()
        .subscribe_endpoints(&ServicePort::new("shop", "web", 80));
    let Ok(EndpointUpdate::Add(first)) = updates.try_recv() else {
        panic!("no first set");
    };
    assert_eq!(first.len(), 1);
    index.handle(
        Resource::Pods,
        Update::Applied(pod("shop", "web-1", Some(("ReplicaSet", "web-5d4f")))),
    );
    let Ok(EndpointUpdate::Add(changed)) = updates.try_recv() else {
        panic!("the pod's arrival changed nothing");
    };
    assert_eq!(changed[0].workload, "web-1");
    assert_eq!(
        changed[0].owner.as_ref().map(|owner| owner.name.as_str()),
        Some("web-5d4f")
    );
}

#[test]
#[ignore = "measurement"]
fn memory_of_ten_thousand_pods() {
    /// Bytes allocated (glibc), so moves and fragmentation do not blur the figure.
    #[allow(unsafe_code)]
    fn resident() -> u64 {
        // SAFETY: mallinfo2 takes no pointers and only reads glibc's counters.
        let info = unsafe { libc::mallinfo2() };
        info.uordblks as u64
    }
    let pods = || -> Vec<Converted> {
        (0..10_000)
            .map(|i| {
                pod(
                    "scale",
                    &format!("svc-{}-5d4f-{}", i / 10, i % 10),
                    Some(("ReplicaSet", "svc-5d4f")),
                )
            })
            .collect()
    };
    // The catalog alone, fed the same workloads.
    let before = resident();
    let workloads: Vec<MeshObject> = pods()
        .into_iter()
        .filter_map(|converted| match converted {
            Converted::Pod(_, Ok(facts)) => {
                Some(MeshObject::from(facts.finish(None, &Owners::default())))
            }
            _ => None,
        })
        .collect();
    let alone = Catalog::default().shared();
    alone.lock().unwrap().update(workloads, Vec::new()).unwrap();
    crate::memory::release_freed();
    let catalog_only = resident() - before;
    let before = resident();
    let listed = pods();
    let catalog = Catalog::default().shared();
    let mut index = Index::new(catalog.clone());
    relist(&mut index, Resource::Pods, listed);
    crate::memory::release_freed();
    let both = resident() - before;
    println!(
        "10,000 pods, allocated: catalog alone {:.1} MiB; catalog + source index {:.1} MiB",
        catalog_only as f64 / 1048576.0,
        both as f64 / 1048576.0
    );
}

#[test]
#[ignore = "measurement"]
fn allocated_bytes_at_the_issue_scale() {
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    #[allow(unsafe_code)]
    fn allocated() -> u64 {
        // SAFETY: mallinfo2 takes no pointers and only reads glibc's counters.
        let info = unsafe { libc::mallinfo2() };
        info.uordblks as u64
    }
    let mib = |bytes: u64| bytes as f64 / 1_048_576.0;
    let catalog = Catalog::default().shared();
    catalog.lock().unwrap().set_endpoints_from_slices(true);
    let mut index = Index::new(catalog.clone());
    let start = allocated();
    let last_applied = "x".repeat(2_000);
    let mut services = Vec::new();
    let mut slices = Vec::new();
    let mut pods = Vec::new();
    for service_index in 0..1_000 {
        let service_name = format!("svc-{service_index}");
        let service: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": service_name, "namespace": "scale", "labels": {"app": service_name},
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration": last_applied}},
            "spec": {"selector": {"app": service_name}, "clusterIP": "10.96.0.1",
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]},
        }))
        .unwrap();
        services.push(Converted::Object(
            name("scale", &service_name),
            lean_service(service),
        ));
        let endpoints: Vec<serde_json::Value> = (0..10)
            .map(|pod_index| serde_json::json!({"addresses": [format!("10.1.{service_index}.{pod_index}")],
                "conditions": {"ready": true, "serving": true, "terminating": false}, "nodeName": "node-1", "zone": "zone-a",
                "targetRef": {"kind": "Pod", "name": format!("{service_name}-5d4f-{pod_index}"), "namespace": "scale"}}))
            .collect();
        let slice: EndpointSlice = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("{service_name}-abcde"), "namespace": "scale",
                         "labels": {"kubernetes.io/service-name": service_name}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": endpoints,
        }))
        .unwrap();
        slices.push(Converted::Object(
            name("scale", &format!("{service_name}-abcde")),
            crate::kubernetes::objects::lean_slice(&slice),
        ));
        for pod_index in 0..10 {
            let pod_name = format!("{service_name}-5d4f-{pod_index}");
            let pod: Pod = serde_json::from_value(serde_json::json!({
                "metadata": {"name": pod_name, "namespace": "scale", "labels": {"app": service_name, "pod-template-hash": "5d4f"},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{service_name}-5d4f"), "uid": "r", "controller": true}]},
                "spec": {"serviceAccountName": service_name, "containers": [
                    {"name": "app", "ports": [{"name": "http", "containerPort": 8080}]},
                    {"name": "weft-proxy", "ports": [{"name": "weft-proxy", "containerPort": 4143}],
                     "env": [{"name": "WEFT_PROXY_ADMIN_LISTEN_ADDR", "value": "0.0.0.0:4191"}]}]},
                "status": {"phase": "Running", "podIP": format!("10.1.{service_index}.{pod_index}")},
            }))
            .unwrap();
            pods.push(Converted::Pod(
                name("scale", &pod_name),
                pod_facts(&pod).map(Box::new),
            ));
        }
    }
    let converted = allocated();
    relist(&mut index, Resource::Services, services);
    let with_services = allocated();
    relist(&mut index, Resource::EndpointSlices, slices);
    let with_slices = allocated();
    relist(&mut index, Resource::Pods, pods);
    let with_pods = allocated();
    println!(
        "allocated: converted objects {:.1} MiB; after services {:.1}, slices {:.1}, pods {:.1} MiB (index: {} pods)",
        mib(converted - start),
        mib(with_services - start),
        mib(with_slices - start),
        mib(with_pods - start),
        index.count(Resource::Pods),
    );
}

#[test]
fn the_injector_sees_namespace_annotations_that_workloads_do_not_take() {
    let catalog = Catalog::default().shared();
    let mut index = Index::new(catalog.clone());
    let shared = index.namespace_handle();
    relist(&mut index, Resource::Pods, vec![pod("shop", "web-1", None)]);
    let inject = BTreeMap::from([
        ("weft.io/inject".to_string(), "enabled".to_string()),
        (
            "config.weft.io/proxy-log-level".to_string(),
            "debug".to_string(),
        ),
    ]);
    relist(
        &mut index,
        Resource::Namespaces,
        vec![
            Converted::Namespace("shop".into(), Some(inject.clone())),
            Converted::Namespace("plain".into(), None),
        ],
    );
    assert_eq!(shared.get("shop"), inject);
    assert_eq!(
        shared.len(),
        1,
        "namespaces without annotations are not held"
    );
    let workload_annotations = catalog
        .lock()
        .unwrap()
        .workload("shop", "web-1")
        .and_then(|workload| workload.metadata.annotations.clone())
        .unwrap_or_default();
    assert!(!workload_annotations.contains_key("weft.io/inject"));
    assert_eq!(
        workload_annotations
            .get("config.weft.io/proxy-log-level")
            .map(String::as_str),
        Some("debug")
    );
    // Edited, then deleted.
    index.handle(
        Resource::Namespaces,
        Update::Applied(Converted::Namespace(
            "shop".into(),
            Some(BTreeMap::from([(
                "weft.io/inject".to_string(),
                "disabled".to_string(),
            )])),
        )),
    );
    assert_eq!(shared.get("shop")["weft.io/inject"], "disabled");
    index.handle(Resource::Namespaces, Update::Deleted(name("", "shop")));
    assert!(shared.get("shop").is_empty());
}
