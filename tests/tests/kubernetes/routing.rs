//! A proxy routed by EndpointSlices: the test API server holds a Service,
//! two pods and one EndpointSlice per pod; a real `weft-controller
//! --kubernetes` watches it; a real `weft-proxy` asks the controller where
//! `web.shop.svc.cluster.local:80` is and routes to both "pods" (local HTTP
//! servers on distinct loopback ports) — and stops routing to one when its
//! slice endpoint turns unready.
//!
//! ```text
//!  client ──GET http://web.shop.svc.cluster.local/──► weft-proxy ──► pod a (127.0.0.1:Pa)
//!                                                        │        └─► pod b (127.0.0.1:Pb)
//!                                                        │ Get / GetProfile
//!  KubeApiServer (Service, Pods, EndpointSlices) ──watch──► weft-controller --kubernetes
//! ```

use std::time::{Duration, Instant};

use weft_test_support::kube_api::KubeApiServer;
use weft_test_support::load;
use weft_test_support::{HttpTestServer, ProxyProcess};

use crate::cluster::{KubeController, PATIENCE, Scratch};

const URL: &str = "http://web.shop.svc.cluster.local/";

/// The shop: namespace, Service `web` (port 80 → named port `http`), and
/// per pod a Pod on 127.0.0.1 and an EndpointSlice with its port.
fn shop_yaml(pods: &[(&str, u16)]) -> String {
    let mut yaml = String::from(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\n\
         spec:\n  selector: {app: web}\n  clusterIP: 10.96.0.10\n  ports: [{name: http, port: 80, targetPort: http}]\n",
    );
    for (pod, port) in pods {
        yaml.push_str(&format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {pod}, namespace: shop, labels: {{app: web}}}}\n\
             spec:\n  containers: [{{name: app, ports: [{{name: http, containerPort: {port}}}]}}]\n\
             status: {{phase: Running, podIP: 127.0.0.1, podIPs: [{{ip: 127.0.0.1}}]}}\n"
        ));
        yaml.push_str(&slice_yaml(pod, *port, true));
    }
    yaml
}

fn slice_yaml(pod: &str, port: u16, ready: bool) -> String {
    format!(
        "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
         metadata: {{name: web-{pod}, namespace: shop, labels: {{kubernetes.io/service-name: web}}}}\n\
         addressType: IPv4\nports: [{{name: http, port: {port}, protocol: TCP}}]\n\
         endpoints:\n- addresses: [127.0.0.1]\n  conditions: {{ready: {ready}, serving: {ready}, terminating: false}}\n  \
         targetRef: {{kind: Pod, name: {pod}, namespace: shop}}\n"
    )
}

/// Sends `count` requests through the proxy; panics on a failure.
fn send(proxy: &ProxyProcess, count: usize) {
    for _ in 0..count {
        let outcome = load::get(proxy.outbound_addr(), URL);
        assert!(outcome.is_success(), "{}", outcome.summary());
    }
}

#[test]
fn a_proxy_routes_to_the_pods_of_ready_slice_endpoints() {
    let pod_a = HttpTestServer::start();
    let pod_b = HttpTestServer::start();
    let api = KubeApiServer::start();
    api.apply_yaml(&shop_yaml(&[
        ("web-a", pod_a.addr().port()),
        ("web-b", pod_b.addr().port()),
    ]));
    let scratch = Scratch::new("kubernetes-routing");
    let controller = KubeController::start_with(&scratch, &api, "controller", &[]);
    let proxy = ProxyProcess::builder()
        .env(
            "WEFT_PROXY_DESTINATION_SVC_ADDR",
            controller.destination.to_string(),
        )
        .env("WEFT_PROXY_OUTBOUND_FAILFAST_TIMEOUT", "1s")
        .spawn();

    // Resolved: both pods serve.
    let deadline = Instant::now() + PATIENCE;
    while !load::get(proxy.outbound_addr(), URL).is_success() {
        assert!(Instant::now() < deadline, "{URL} never served");
        std::thread::sleep(Duration::from_millis(50));
    }
    let deadline = Instant::now() + PATIENCE;
    while pod_a.requests_seen() == 0 || pod_b.requests_seen() == 0 {
        assert!(
            Instant::now() < deadline,
            "requests reached a: {}, b: {}",
            pod_a.requests_seen(),
            pod_b.requests_seen()
        );
        send(&proxy, 10);
    }

    // Pod b's endpoint turns unready: once the change lands, a batch of
    // requests reaches pod a only.
    api.apply_yaml(&slice_yaml("web-b", pod_b.addr().port(), false));
    let deadline = Instant::now() + PATIENCE;
    loop {
        let before = pod_b.requests_seen();
        send(&proxy, 20);
        if pod_b.requests_seen() == before {
            break;
        }
        assert!(Instant::now() < deadline, "pod b still receives requests");
    }
    let (a_before, b_before) = (pod_a.requests_seen(), pod_b.requests_seen());
    send(&proxy, 30);
    assert_eq!(
        pod_b.requests_seen(),
        b_before,
        "an unready pod got requests"
    );
    assert_eq!(pod_a.requests_seen(), a_before + 30);

    // Ready again: it serves again.
    api.apply_yaml(&slice_yaml("web-b", pod_b.addr().port(), true));
    let deadline = Instant::now() + PATIENCE;
    let before = pod_b.requests_seen();
    while pod_b.requests_seen() == before {
        assert!(Instant::now() < deadline, "pod b never served again");
        send(&proxy, 10);
    }
}
