//! `weft-controller --kubernetes` at the issue's scale: 1,000 Services with
//! 10 pods each (10,000 pods, each with a ReplicaSet owner, two containers
//! and a large `kubectl` last-applied annotation that must not be kept) and
//! one EndpointSlice of 10 endpoints per Service. Prints the controller's
//! resident memory once ready and the time a slice change takes to reach a
//! Destination stream (measured, not asserted: the suite shares two cores).
//! The memory target (30 MiB) is asserted for a release binary given as
//! `WEFT_SCALE_CONTROLLER=target/release/weft-controller`;
//! `WEFT_SCALE_SERVICES=0` measures the empty controller.

use crate::common::{
    CONTROLLER_BINARY, ControllerProcess, Scratch, Source, controller_command_at, kubeconfig_for,
};

use std::time::{Duration, Instant};

use linkerd2_proxy_api::destination::GetDestination;
use linkerd2_proxy_api::destination::destination_client::DestinationClient;
use linkerd2_proxy_api::destination::update::Update as UpdateKind;
use serde_json::json;
use weft_test_support::kube_api::KubeApiServer;

const SERVICES: usize = 1_000;
const PODS_PER_SERVICE: usize = 10;
/// The issue's bound for the controller's resident memory.
const RSS_TARGET_KIB: u64 = 30 * 1024;

fn ip(service: usize, pod: usize) -> String {
    let index = service * PODS_PER_SERVICE + pod;
    format!(
        "10.{}.{}.{}",
        1 + index / 65_536,
        (index / 256) % 256,
        index % 256
    )
}

fn slice(service: usize, ready_pods: usize) -> serde_json::Value {
    let name = format!("svc-{service}");
    let endpoints: Vec<serde_json::Value> = (0..PODS_PER_SERVICE)
        .map(|pod| {
            let ready = pod < ready_pods;
            json!({"addresses": [ip(service, pod)],
                   "conditions": {"ready": ready, "serving": ready, "terminating": false},
                   "nodeName": "node-1", "zone": "zone-a",
                   "targetRef": {"kind": "Pod", "name": format!("{name}-5d4f-{pod}"), "namespace": "scale"}})
        })
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("{name}-abcde"), "namespace": "scale",
                     "labels": {"kubernetes.io/service-name": name, "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": endpoints,
    })
}

fn populate(api: &KubeApiServer, services: usize) {
    api.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "scale"}}));
    let last_applied = "x".repeat(2_000);
    for service in 0..services {
        let name = format!("svc-{service}");
        api.apply(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "scale", "labels": {"app": name},
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration": last_applied}},
            "spec": {"selector": {"app": name}, "clusterIP": format!("10.96.{}.{}", service / 256, service % 256),
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]},
        }));
        api.apply(json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": format!("{name}-5d4f"), "namespace": "scale",
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": "d", "controller": true}]},
            "spec": {"selector": {"matchLabels": {"app": name}}, "template": {}},
        }));
        for pod in 0..PODS_PER_SERVICE {
            api.apply(json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": format!("{name}-5d4f-{pod}"), "namespace": "scale",
                    "labels": {"app": name, "pod-template-hash": "5d4f"},
                    "annotations": {"kubectl.kubernetes.io/last-applied-configuration": last_applied,
                                    "weft.io/proxy-version": "0.1.0"},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{name}-5d4f"), "uid": "r", "controller": true}]},
                "spec": {"serviceAccountName": name, "nodeName": "node-1",
                    "containers": [
                        {"name": "app", "image": "example/app:1", "ports": [{"name": "http", "containerPort": 8080}],
                         "env": [{"name": "A", "value": "b"}], "resources": {"requests": {"cpu": "10m"}}},
                        {"name": "weft-proxy", "image": "weft/proxy:0.1.0", "ports": [{"name": "weft-proxy", "containerPort": 4143}],
                         "env": [{"name": "WEFT_PROXY_ADMIN_LISTEN_ADDR", "value": "0.0.0.0:4191"}]}]},
                "status": {"phase": "Running", "podIP": ip(service, pod), "podIPs": [{"ip": ip(service, pod)}],
                           "conditions": [{"type": "Ready", "status": "True"}]},
            }));
        }
        api.apply(slice(service, PODS_PER_SERVICE));
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn a_thousand_services_and_ten_thousand_pods_memory_and_slice_latency() {
    let scratch = Scratch::new("kubernetes-scale");
    let api = KubeApiServer::start();
    let started = Instant::now();
    // WEFT_SCALE_SERVICES=0 measures the empty controller's baseline.
    let services = std::env::var("WEFT_SCALE_SERVICES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(SERVICES);
    populate(&api, services);
    println!(
        "applied {} objects in {:?}",
        SERVICES * (3 + PODS_PER_SERVICE) + 1,
        started.elapsed()
    );
    let kubeconfig = kubeconfig_for(&scratch, &api);
    let destination = weft_test_support::free_addr();
    let admin = weft_test_support::free_addr();
    // WEFT_SCALE_CONTROLLER=target/release/weft-controller measures a release build.
    let binary =
        std::env::var("WEFT_SCALE_CONTROLLER").unwrap_or_else(|_| CONTROLLER_BINARY.to_string());
    let mut command = controller_command_at(
        binary,
        Source::Kubernetes {
            kubeconfig: &kubeconfig,
        },
        destination,
        admin,
    );
    // Allocator settings to experiment with (glibc reads them at start).
    command.envs(std::env::vars().filter(|(name, _)| name.starts_with("MALLOC_")));
    let started = Instant::now();
    let controller =
        ControllerProcess::start(&mut command, admin, None, Duration::from_secs(120)).await;
    let child = &controller.child;
    println!("ready after {:?}", started.elapsed());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss = rss_kib(child.id());
    println!(
        "controller RSS with {SERVICES} Services, {} pods: {} KiB",
        SERVICES * PODS_PER_SERVICE,
        rss
    );

    if services > 7 {
        // A slice change reaching a Get stream.
        let mut client = DestinationClient::connect(format!("http://{destination}"))
            .await
            .unwrap();
        let mut stream = client
            .get(GetDestination {
                scheme: "k8s".into(),
                path: "svc-7.scale.svc.cluster.local:80".into(),
                context_token: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        let first = stream.message().await.unwrap().unwrap().update.unwrap();
        assert!(
            matches!(first, UpdateKind::Add(ref set) if set.addrs.len() == PODS_PER_SERVICE),
            "{first:?}"
        );
        let mut latencies = Vec::new();
        for round in 0..10 {
            let ready = if round % 2 == 0 {
                PODS_PER_SERVICE - 1
            } else {
                PODS_PER_SERVICE
            };
            let changed = Instant::now();
            api.apply(slice(7, ready));
            let update = tokio::time::timeout(Duration::from_secs(10), stream.message())
                .await
                .expect("the change in time")
                .unwrap()
                .unwrap()
                .update
                .unwrap();
            latencies.push(changed.elapsed());
            assert!(
                matches!(update, UpdateKind::Add(_) | UpdateKind::Remove(_)),
                "{update:?}"
            );
        }
        latencies.sort();
        println!(
            "slice change → Get stream: median {:?}, max {:?}",
            latencies[latencies.len() / 2],
            latencies[latencies.len() - 1]
        );
    }
    let rss_after = rss_kib(child.id());
    println!("controller RSS after the changes: {rss_after} KiB");
    drop(controller);
    // The target is a release build's: a debug build's empty controller
    // alone is over it (36 MiB here), so it is asserted only when measuring
    // a given binary (WEFT_SCALE_CONTROLLER).
    if std::env::var_os("WEFT_SCALE_CONTROLLER").is_some() {
        assert!(
            rss <= RSS_TARGET_KIB,
            "RSS {rss} KiB over the {RSS_TARGET_KIB} KiB target"
        );
    }
}
