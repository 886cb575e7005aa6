//! Catalog tests for Kubernetes: Services whose endpoints come from
//! EndpointSlices, pods as Workloads (with owners), what subscribers
//! receive as slices and pods come, change and go; pod-IP lookups.

use std::time::Instant;

use weft_core::endpoint_slice::EndpointSlice as LeanSlice;

use super::tests::{address, assert_no_endpoints, assert_workloads_at, next};
use super::*;

/// `web` in `shop`: port 80 (`http` → container port `http`), headless or not.
fn web_service(cluster_ip: &str) -> MeshObject {
    let yaml = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: web, namespace: shop}}\n\
         spec:\n  selector: {{app: web}}\n  clusterIP: {cluster_ip}\n  ports:\n  - {{name: http, port: 80, targetPort: http}}\n"
    );
    serde_saphyr::from_str::<Service>(&yaml)
        .expect("service yaml")
        .into()
}

/// A pod as the Kubernetes source makes it: a Workload with an owner,
/// meshed, no declared ports.
fn pod(name: &str, ip: &str, version: &str) -> MeshObject {
    let yaml = format!(
        "apiVersion: weft.dev/v1alpha1\nkind: Workload\n\
         metadata: {{name: {name}, namespace: shop, labels: {{app: web, version: {version}}}}}\n\
         spec: {{serviceAccount: web, addresses: [{ip}], meshed: true, owner: {{kind: StatefulSet, name: web}}}}\n"
    );
    serde_saphyr::from_str::<Workload>(&yaml)
        .expect("pod yaml")
        .into()
}

/// A mesh-file Workload `web-host` of `web` at 10.0.0.5, port `http` 9000.
fn web_host() -> MeshObject {
    let yaml = "apiVersion: weft.dev/v1alpha1\nkind: Workload\n\
                metadata: {name: web-host, namespace: shop, labels: {app: web}}\n\
                spec: {addresses: [10.0.0.5], ports: [{name: http, port: 9000}]}\n";
    serde_saphyr::from_str::<Workload>(yaml)
        .expect("host yaml")
        .into()
}

/// One slice endpoint: (ip, ready, pod).
type SliceEntry<'a> = (&'a str, bool, &'a str);

/// An EndpointSlice of `service` with port `http` → 8080.
fn slice(name: &str, service: &str, endpoints: &[SliceEntry<'_>]) -> MeshObject {
    let mut yaml = format!(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
         metadata: {{name: {name}, namespace: shop, labels: {{kubernetes.io/service-name: {service}}}}}\n\
         addressType: IPv4\nports: [{{name: http, port: 8080, protocol: TCP}}]\nendpoints:\n"
    );
    for (ip, ready, pod) in endpoints {
        yaml.push_str(&format!(
            "- addresses: [{ip}]\n  conditions: {{ready: {ready}, serving: true, terminating: {}}}\n  \
             hostname: {pod}\n  zone: zone-a\n  targetRef: {{kind: Pod, name: {pod}, namespace: shop}}\n",
            !ready
        ));
    }
    if endpoints.is_empty() {
        yaml.push_str("  []\n");
    }
    let slice: k8s_openapi::api::discovery::v1::EndpointSlice =
        serde_saphyr::from_str(&yaml).expect("slice yaml");
    LeanSlice::from_kubernetes(&slice)
        .expect("a valid slice")
        .into()
}

fn nothing_more(receiver: &mut mpsc::Receiver<EndpointUpdate>, when: &str) {
    if let Ok(update) = receiver.try_recv() {
        panic!("{when}: unexpected {update:?}");
    }
}

/// Addresses of an `Add`, with each endpoint's workload and `version` label.
/// Applies the EndpointSlice `name` of `service` holding `endpoints`.
fn apply_slice(catalog: &mut Catalog, name: &str, service: &str, endpoints: &[SliceEntry<'_>]) {
    catalog.apply(slice(name, service, endpoints)).unwrap();
}

/// The next update adds exactly `expected` (address, workload, `version`).
fn assert_added(
    receiver: &mut mpsc::Receiver<EndpointUpdate>,
    expected: &[(SocketAddr, String, Option<String>)],
) {
    assert_eq!(added(&next(receiver)), expected);
}

fn added(update: &EndpointUpdate) -> Vec<(SocketAddr, String, Option<String>)> {
    match update {
        EndpointUpdate::Add(endpoints) => endpoints
            .iter()
            .map(|endpoint| {
                (
                    endpoint.address,
                    endpoint.workload.clone(),
                    endpoint.labels.get("version").cloned(),
                )
            })
            .collect(),
        other => panic!("expected Add, got {other:?}"),
    }
}

fn entry(
    text: &str,
    workload: &str,
    version: Option<&str>,
) -> (SocketAddr, String, Option<String>) {
    (
        address(text),
        workload.to_string(),
        version.map(str::to_string),
    )
}

#[test]
fn slices_applied_changed_and_deleted_reach_subscribers_exactly() {
    let mut catalog = Catalog::default();
    catalog.set_endpoints_from_slices(true);
    catalog.apply(web_service("10.96.0.20")).unwrap();
    catalog.apply(pod("web-0", "10.1.0.1", "v1")).unwrap();
    catalog.apply(pod("web-1", "10.1.0.2", "v1")).unwrap();
    let target = ServicePort::new("shop", "web", 80);
    let mut receiver = catalog.subscribe_endpoints(&target);
    // Slices only: the selector matches both pods, but no slice is written yet.
    assert_no_endpoints(&mut receiver, true);

    apply_slice(
        &mut catalog,
        "web-abc",
        "web",
        &[("10.1.0.1", true, "web-0"), ("10.1.0.2", false, "web-1")],
    );
    let update = next(&mut receiver);
    assert_eq!(
        added(&update),
        vec![entry("10.1.0.1:8080", "web-0", Some("v1"))]
    );
    let EndpointUpdate::Add(endpoints) = &update else {
        unreachable!()
    };
    let web_0 = &endpoints[0];
    assert!(web_0.is_meshed());
    assert_eq!(web_0.service_account, "web");
    assert_eq!(web_0.zone.as_deref(), Some("zone-a"));
    assert_eq!(
        web_0.owner.as_ref().map(|owner| owner.kind.as_str()),
        Some("StatefulSet")
    );
    nothing_more(&mut receiver, "after the first slice");

    // web-1 turns ready.
    apply_slice(
        &mut catalog,
        "web-abc",
        "web",
        &[("10.1.0.1", true, "web-0"), ("10.1.0.2", true, "web-1")],
    );
    assert_added(
        &mut receiver,
        &[entry("10.1.0.2:8080", "web-1", Some("v1"))],
    );
    nothing_more(&mut receiver, "after web-1 turned ready");

    // A second slice listing web-1 again and a new pod unknown so far.
    apply_slice(
        &mut catalog,
        "web-def",
        "web",
        &[("10.1.0.2", true, "web-1"), ("10.1.0.3", true, "web-2")],
    );
    assert_added(&mut receiver, &[entry("10.1.0.3:8080", "web-2", None)]);
    nothing_more(&mut receiver, "after the second slice");

    // web-0 terminates: unready in its slice.
    apply_slice(
        &mut catalog,
        "web-abc",
        "web",
        &[("10.1.0.1", false, "web-0"), ("10.1.0.2", true, "web-1")],
    );
    assert_eq!(
        next(&mut receiver),
        EndpointUpdate::Remove(vec![address("10.1.0.1:8080")])
    );
    nothing_more(&mut receiver, "after web-0 terminated");

    // A pod's labels change: its endpoint is sent again.
    catalog.apply(pod("web-1", "10.1.0.2", "v2")).unwrap();
    assert_added(
        &mut receiver,
        &[entry("10.1.0.2:8080", "web-1", Some("v2"))],
    );
    // A pod no slice names, and another service's slice: nothing.
    catalog.apply(pod("web-9", "10.1.0.9", "v1")).unwrap();
    apply_slice(
        &mut catalog,
        "api-abc",
        "api",
        &[("10.1.0.9", true, "web-9")],
    );
    nothing_more(&mut receiver, "after unrelated changes");

    // The first slice goes: web-1 stays (the second slice lists it).
    assert!(catalog.delete(Kind::EndpointSlice, "shop", "web-abc"));
    nothing_more(
        &mut receiver,
        "after deleting a slice whose addresses remain",
    );
    assert!(catalog.delete(Kind::EndpointSlice, "shop", "web-def"));
    assert_no_endpoints(&mut receiver, true);
    catalog.delete(Kind::Service, "shop", "web");
    assert_no_endpoints(&mut receiver, false);
    nothing_more(&mut receiver, "at the end");
}

#[test]
fn a_slice_before_its_pods_is_completed_when_they_arrive() {
    let mut catalog = Catalog::default();
    catalog.set_endpoints_from_slices(true);
    catalog.apply(web_service("None")).unwrap();
    apply_slice(
        &mut catalog,
        "web-abc",
        "web",
        &[("10.1.0.1", true, "web-0")],
    );
    let mut receiver = catalog.subscribe_endpoints(&ServicePort::new("shop", "web", 80));
    let update = next(&mut receiver);
    assert_eq!(added(&update), vec![entry("10.1.0.1:8080", "web-0", None)]);
    let EndpointUpdate::Add(endpoints) = &update else {
        unreachable!()
    };
    assert!(!endpoints[0].is_meshed(), "unknown pods are not meshed");
    assert_eq!(endpoints[0].service_account, "");

    catalog.apply(pod("web-0", "10.1.0.1", "v1")).unwrap();
    let update = next(&mut receiver);
    assert_eq!(
        added(&update),
        vec![entry("10.1.0.1:8080", "web-0", Some("v1"))]
    );
    let EndpointUpdate::Add(endpoints) = &update else {
        unreachable!()
    };
    assert!(endpoints[0].is_meshed());
    assert_eq!(endpoints[0].service_account, "web");

    // The pod goes before its slice is updated: an unmeshed endpoint again.
    assert!(catalog.delete(Kind::Workload, "shop", "web-0"));
    let update = next(&mut receiver);
    assert_eq!(added(&update), vec![entry("10.1.0.1:8080", "web-0", None)]);
    nothing_more(&mut receiver, "at the end");
}

#[test]
fn a_mesh_file_service_switches_from_selector_to_slices_when_it_gets_one() {
    let mut catalog = Catalog::default();
    catalog.apply(web_service("10.96.0.20")).unwrap();
    catalog.apply(web_host()).unwrap();
    let target = ServicePort::new("shop", "web", 80);
    let mut receiver = catalog.subscribe_endpoints(&target);
    assert_added(&mut receiver, &[entry("10.0.0.5:9000", "web-host", None)]);
    apply_slice(
        &mut catalog,
        "web-abc",
        "web",
        &[("10.1.0.1", true, "web-0")],
    );
    assert_eq!(
        next(&mut receiver),
        EndpointUpdate::Remove(vec![address("10.0.0.5:9000")])
    );
    assert_added(&mut receiver, &[entry("10.1.0.1:8080", "web-0", None)]);
    assert!(catalog.delete(Kind::EndpointSlice, "shop", "web-abc"));
    assert_eq!(
        next(&mut receiver),
        EndpointUpdate::Remove(vec![address("10.1.0.1:8080")])
    );
    assert_added(&mut receiver, &[entry("10.0.0.5:9000", "web-host", None)]);
    // Slices only from now on: the selector's workload leaves.
    catalog.set_endpoints_from_slices(true);
    assert_no_endpoints(&mut receiver, true);
    assert!(catalog.endpoints_from_slices());
}

#[test]
fn instance_names_answer_only_their_endpoint() {
    let mut catalog = Catalog::default();
    catalog.set_endpoints_from_slices(true);
    catalog.apply(web_service("None")).unwrap();
    catalog.apply(pod("web-0", "10.1.0.1", "v1")).unwrap();
    apply_slice(
        &mut catalog,
        "web-abc",
        "web",
        &[("10.1.0.1", true, "web-0"), ("10.1.0.2", true, "web-1")],
    );
    let target = ServicePort::new("shop", "web", 80);
    let web_1 = EndpointTarget::instance(target.clone(), "web-1");
    let mut receiver = catalog.subscribe_endpoints_for(&web_1);
    assert_added(&mut receiver, &[entry("10.1.0.2:8080", "web-1", None)]);
    let mut unknown =
        catalog.subscribe_endpoints_for(&EndpointTarget::instance(target.clone(), "web-7"));
    assert_no_endpoints(&mut unknown, true);
    // web-0 changing does not change web-1's answer.
    apply_slice(
        &mut catalog,
        "web-abc",
        "web",
        &[("10.1.0.1", false, "web-0"), ("10.1.0.2", true, "web-1")],
    );
    nothing_more(&mut receiver, "after web-0 changed");
    apply_slice(
        &mut catalog,
        "web-abc",
        "web",
        &[("10.1.0.1", true, "web-0")],
    );
    assert_no_endpoints(&mut receiver, true);
    assert_eq!(catalog.endpoint_subscriptions(), 2);
    drop(receiver);
    catalog.release_endpoints_for(&web_1);
    assert_eq!(catalog.endpoint_subscriptions(), 1);
    // On a mesh-file Service, a Workload's name stands for its hostname.
    let mut mesh = Catalog::default();
    mesh.apply(web_service("10.96.0.20")).unwrap();
    mesh.apply(web_host()).unwrap();
    let found = mesh
        .endpoints_for(&EndpointTarget::instance(target.clone(), "web-host"))
        .unwrap();
    assert_eq!(
        found.keys().copied().collect::<Vec<_>>(),
        vec![address("10.0.0.5:9000")]
    );
}

#[test]
fn pod_ips_resolve_to_the_pod_without_declared_ports() {
    let mut catalog = Catalog::default();
    catalog.apply(pod("web-0", "10.1.0.1", "v1")).unwrap();
    // A host workload sharing the pod's IP (a hostNetwork-like setup),
    // declaring one port.
    let host = "apiVersion: weft.dev/v1alpha1\nkind: Workload\n\
                metadata: {name: node-agent, namespace: shop}\n\
                spec: {addresses: [10.1.0.1, 10.2.0.1], ports: [{port: 9100}]}\n";
    catalog
        .apply(serde_saphyr::from_str::<Workload>(host).unwrap().into())
        .unwrap();
    let two_hosts = "apiVersion: weft.dev/v1alpha1\nkind: Workload\n\
                     metadata: {name: other-agent, namespace: shop}\n\
                     spec: {addresses: [10.2.0.1], ports: [{port: 9200}]}\n";
    catalog
        .apply(
            serde_saphyr::from_str::<Workload>(two_hosts)
                .unwrap()
                .into(),
        )
        .unwrap();
    let cases: &[(&str, Option<&str>)] = &[
        // No declared port: the pod, by its IP.
        ("10.1.0.1:8080", Some("web-0")),
        // A declared port wins.
        ("10.1.0.1:9100", Some("node-agent")),
        ("10.2.0.1:9200", Some("other-agent")),
        // Two host workloads without the port: neither (mesh-file rule).
        ("10.2.0.1:80", None),
        ("10.9.9.9:80", None),
    ];
    assert_workloads_at(&catalog, cases);
    let endpoint = catalog.workload_at(address("10.1.0.1:8080")).unwrap();
    assert!(endpoint.is_meshed());
    assert!(endpoint.owner.is_some());
    // Two pods on one IP (hostNetwork) without the port: neither.
    catalog.apply(pod("web-1", "10.1.0.1", "v1")).unwrap();
    assert_eq!(catalog.workload_at(address("10.1.0.1:8080")), None);
}

/// Not a benchmark: prints what one slice change costs with 1,000
/// subscribers of one service (10 endpoints), to watch for regressions.
#[test]
fn cost_of_a_slice_change_with_a_thousand_subscribers() {
    let mut catalog = Catalog::default();
    catalog.set_endpoints_from_slices(true);
    catalog.apply(web_service("10.96.0.20")).unwrap();
    let mut entries: Vec<(String, bool, String)> = Vec::new();
    for index in 0..10 {
        let name = format!("web-{index}");
        let ip = format!("10.1.0.{}", index + 1);
        catalog.apply(pod(&name, &ip, "v1")).unwrap();
        entries.push((ip, true, name));
    }
    // 999 other Services with a slice of 10 pods each, to make lookups
    // realistic, and the memory they take (an upper bound: the YAML
    // parser's garbage counts too).
    let resident_before = resident_bytes();
    for index in 0..999 {
        let service = format!("svc-{index}");
        let yaml = format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: {service}, namespace: shop}}\n\
             spec:\n  selector: {{app: {service}}}\n  ports:\n  - {{name: http, port: 80, targetPort: http}}\n"
        );
        catalog
            .apply(serde_saphyr::from_str::<Service>(&yaml).unwrap().into())
            .unwrap();
        let ips: Vec<String> = (0..10)
            .map(|endpoint| format!("10.{}.{}.{}", 2 + index / 250, index % 250, endpoint + 1))
            .collect();
        let pods: Vec<String> = (0..10)
            .map(|endpoint| format!("{service}-{endpoint}"))
            .collect();
        for (ip, pod) in ips.iter().zip(&pods) {
            let yaml = format!(
                "apiVersion: weft.dev/v1alpha1\nkind: Workload\n\
                 metadata: {{name: {pod}, namespace: shop, labels: {{app: {service}, pod-template-hash: 5d9c7b8f4}}}}\n\
                 spec: {{serviceAccount: {service}, addresses: [{ip}], meshed: true, owner: {{kind: Deployment, name: {service}}}}}\n"
            );
            catalog
                .apply(serde_saphyr::from_str::<Workload>(&yaml).unwrap().into())
                .unwrap();
        }
        let slice_entries: Vec<SliceEntry<'_>> = ips
            .iter()
            .zip(&pods)
            .map(|(ip, pod)| (ip.as_str(), true, pod.as_str()))
            .collect();
        catalog
            .apply(slice(&format!("{service}-abc"), &service, &slice_entries))
            .unwrap();
    }
    let resident_after = resident_bytes();
    let web_slice = |entries: &[(String, bool, String)]| {
        let borrowed: Vec<SliceEntry<'_>> = entries
            .iter()
            .map(|(ip, ready, pod)| (ip.as_str(), *ready, pod.as_str()))
            .collect();
        slice("web-abc", "web", &borrowed)
    };
    catalog.apply(web_slice(&entries)).unwrap();
    let target = ServicePort::new("shop", "web", 80);
    let mut receivers: Vec<_> = (0..1_000)
        .map(|_| catalog.subscribe_endpoints(&target))
        .collect();
    for receiver in &mut receivers {
        next(receiver);
    }
    let rounds = 20_usize;
    // Parsed up front: only the catalog's work and the subscribers' draining are timed.
    let slice_changes: Vec<MeshObject> = (0..rounds)
        .map(|round| {
            let mut changed = entries.clone();
            changed[round % 10].1 = round % 2 == 1;
            web_slice(&changed)
        })
        .collect();
    let pod_changes: Vec<MeshObject> = (0..rounds)
        .map(|round| {
            pod(
                "web-3",
                "10.1.0.4",
                if round % 2 == 0 { "v2" } else { "v1" },
            )
        })
        .collect();
    let started = Instant::now();
    for change in slice_changes {
        catalog.apply(change).unwrap();
        for receiver in &mut receivers {
            while receiver.try_recv().is_ok() {}
        }
    }
    let per_change = started.elapsed() / rounds as u32;
    let started = Instant::now();
    for change in pod_changes {
        catalog.apply(change).unwrap();
        for receiver in &mut receivers {
            while receiver.try_recv().is_ok() {}
        }
    }
    let per_pod_change = started.elapsed() / rounds as u32;
    println!(
        "slice change (10 endpoints, 1,000 subscribers, 1,000 services / 10,010 endpoints): \
         {per_change:?} per change incl. draining; pod change: {per_pod_change:?} (build profile: {})",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    if let (Some(before), Some(after)) = (resident_before, resident_after) {
        println!(
            "resident memory for 999 services, 9,990 pod workloads and 999 slices: {:.1} MiB",
            after.saturating_sub(before) as f64 / (1024.0 * 1024.0)
        );
    }
    println!(
        "inline sizes: Service {} B, Workload {} B, EndpointSlice {} B, slice endpoint {} B, catalog Endpoint {} B",
        std::mem::size_of::<Service>(),
        std::mem::size_of::<Workload>(),
        std::mem::size_of::<LeanSlice>(),
        std::mem::size_of::<weft_core::endpoint_slice::SliceEndpoint>(),
        std::mem::size_of::<Endpoint>(),
    );
}

#[test]
fn a_mesh_file_with_slices_loads_into_slice_endpoints() {
    let text = "
apiVersion: v1
kind: Service
metadata: {name: db, namespace: shop}
spec:
  clusterIP: None
  ports: [{port: 5432}]
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: db-0, namespace: shop, labels: {app: db}}
spec: {serviceAccount: db, addresses: [10.1.0.7], meshed: true, owner: {kind: StatefulSet, name: db}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: db-x1
  namespace: shop
  labels: {kubernetes.io/service-name: db}
addressType: IPv4
ports: [{port: 5432}]
endpoints:
- addresses: [10.1.0.7]
  hostname: db-0
  targetRef: {kind: Pod, name: db-0}
- addresses: [10.1.0.8]
  conditions: {ready: false, terminating: true}
  hostname: db-1
";
    let mut catalog = Catalog::default();
    catalog
        .reset(crate::mesh_file::parse_mesh(text).expect("the mesh file parses"))
        .unwrap();
    let target = ServicePort::new("shop", "db", 5432);
    let set = catalog.endpoints(&target).unwrap();
    assert_eq!(
        set.values()
            .map(|endpoint| (
                endpoint.address,
                endpoint.workload.as_str(),
                endpoint.is_meshed()
            ))
            .collect::<Vec<_>>(),
        vec![(address("10.1.0.7:5432"), "db-0", true)]
    );
    let instance = catalog
        .endpoints_for(&EndpointTarget::instance(target.clone(), "db-1"))
        .unwrap();
    assert!(instance.is_empty(), "db-1 is terminating");
}

/// The process's resident memory (Linux `/proc/self/statm`), if readable.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
