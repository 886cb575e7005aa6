//! The real `weft-controller --kubernetes` against the test Kubernetes API
//! server (real HTTP, the real kube client through a kubeconfig): a
//! `linkerd2-proxy-api` Destination client sees endpoints follow
//! EndpointSlices, a relist after `410 Expired` lose nothing and leave
//! nothing stale, ServiceProfile resources reach GetProfile, a pod IP
//! resolves to its pod, and `/ready` waits for the first lists.

use crate::common::{DestinationController, Scratch, Source, http_get, kubeconfig_for};

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use linkerd2_proxy_api::destination::update::Update as UpdateKind;
use linkerd2_proxy_api::destination::{DestinationProfile, GetDestination, Update};
use linkerd2_proxy_api::net::TcpAddress;
use serde_json::{Value, json};
use tonic::Streaming;
use weft_test_support::kube_api::KubeApiServer;

/// Generous bound for start-up, first messages and changes to arrive.
const PATIENCE: Duration = Duration::from_secs(15);
const SERVICE: &str = "web.shop.svc.cluster.local:80";

/// The controller reading the cluster at `kubeconfig`.
fn spawn_controller(kubeconfig: &Path) -> DestinationController {
    DestinationController::spawn(Source::Kubernetes { kubeconfig })
}

/// [`spawn_controller`], then waits for `/ready`.
async fn start_controller(kubeconfig: &Path) -> DestinationController {
    DestinationController::start(Source::Kubernetes { kubeconfig }, PATIENCE).await
}

/// The shop served by a new controller, and a Get stream on `web` once it
/// holds both pods.
struct ShopStream {
    controller: DestinationController,
    stream: Streaming<Update>,
    endpoints: Endpoints,
    api: KubeApiServer,
    _scratch: Scratch,
}

impl ShopStream {
    async fn start(test: &str) -> Self {
        let scratch = Scratch::new(test);
        let api = KubeApiServer::start();
        shop(&api);
        let controller = start_controller(&kubeconfig_for(&scratch, &api)).await;
        let mut client = controller.client().await;
        let mut stream = client.get(get(SERVICE)).await.expect("Get").into_inner();
        let mut endpoints = Endpoints::default();
        endpoints
            .wait_for(&mut stream, &["10.1.0.1:8080", "10.1.0.2:8080"])
            .await;
        Self {
            controller,
            stream,
            endpoints,
            api,
            _scratch: scratch,
        }
    }

    /// Reads updates until the set holds exactly `wanted`.
    async fn wait_for(&mut self, wanted: &[&str]) {
        self.endpoints.wait_for(&mut self.stream, wanted).await;
    }

    /// Reads updates until `address` carries `key=value`.
    async fn wait_for_label(&mut self, address: &str, key: &str, value: &str) {
        self.endpoints
            .wait_for_label(&mut self.stream, address, key, value)
            .await;
    }
}

/// The shop: namespace, Service `web` (port 80 → 8080), Deployment `web`'s
/// ReplicaSet and two pods, one EndpointSlice per pod (each ready).
fn shop(api: &KubeApiServer) {
    api.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}));
    api.apply(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"selector": {"app": "web"}, "clusterIP": "10.96.0.10",
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }));
    api.apply(json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "web-5d4f", "namespace": "shop",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "d1", "controller": true}]},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {}},
    }));
    for (pod, ip) in [("web-5d4f-a", "10.1.0.1"), ("web-5d4f-b", "10.1.0.2")] {
        add_pod(api, pod, ip);
    }
}

/// A ready pod of `web` and its own EndpointSlice.
fn add_pod(api: &KubeApiServer, pod: &str, ip: &str) {
    api.apply(pod_object(pod, ip));
    set_ready(api, pod, ip, true);
}

/// Rewrites the EndpointSlice of `pod` (at `ip`) with its readiness.
fn set_ready(api: &KubeApiServer, pod: &str, ip: &str, ready: bool) {
    api.apply(slice_object(&format!("web-{pod}"), pod, ip, ready));
}

/// Deletes the EndpointSlice of `pod`, which exists.
fn delete_slice(api: &KubeApiServer, pod: &str) {
    let name = format!("web-{pod}");
    assert!(
        api.delete("discovery.k8s.io/v1", "EndpointSlice", Some("shop"), &name),
        "no EndpointSlice {name}"
    );
}

fn pod_object(name: &str, ip: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop", "labels": {"app": "web"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d4f", "uid": "r1", "controller": true}]},
        "spec": {"serviceAccountName": "web",
                 "containers": [{"name": "app", "ports": [{"name": "http", "containerPort": 8080}]}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]},
    })
}

fn slice_object(name: &str, pod: &str, ip: &str, ready: bool) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": "shop", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": [{"addresses": [ip], "conditions": {"ready": ready, "serving": ready, "terminating": false},
                       "targetRef": {"kind": "Pod", "name": pod, "namespace": "shop"}}],
    })
}

fn get(path: &str) -> GetDestination {
    GetDestination {
        scheme: "k8s".to_string(),
        path: path.to_string(),
        context_token: String::new(),
    }
}

fn socket(address: &TcpAddress) -> SocketAddr {
    let ip: std::net::IpAddr = address.ip.expect("ip").try_into().expect("valid ip");
    SocketAddr::new(ip, u16::try_from(address.port).unwrap())
}

/// The endpoint set a Get stream shows, kept up to date from its updates,
/// with each endpoint's metric labels.
#[derive(Default)]
struct Endpoints(HashMap<SocketAddr, HashMap<String, String>>);

impl Endpoints {
    fn take(&mut self, update: UpdateKind) {
        match update {
            UpdateKind::Add(set) => {
                for address in set.addrs {
                    let at = socket(address.addr.as_ref().expect("addr"));
                    self.0.insert(at, address.metric_labels);
                }
            }
            UpdateKind::Remove(set) => {
                for address in set.addrs {
                    self.0.remove(&socket(&address));
                }
            }
            UpdateKind::NoEndpoints(_) => self.0.clear(),
        }
    }

    fn addresses(&self) -> BTreeSet<String> {
        self.0.keys().map(ToString::to_string).collect()
    }

    /// Reads updates until the set holds exactly `wanted`.
    async fn wait_for(&mut self, stream: &mut Streaming<Update>, wanted: &[&str]) {
        let wanted: BTreeSet<String> = wanted.iter().map(ToString::to_string).collect();
        let deadline = Instant::now() + PATIENCE;
        while self.addresses() != wanted {
            let left = deadline.saturating_duration_since(Instant::now());
            let message = tokio::time::timeout(left, stream.message())
                .await
                .unwrap_or_else(|_| panic!("endpoints {:?}, never {wanted:?}", self.addresses()))
                .expect("a healthy stream")
                .expect("the stream is open");
            self.take(message.update.expect("update set"));
        }
    }
}

impl Endpoints {
    /// Reads updates until `address` carries `key=value`.
    async fn wait_for_label(
        &mut self,
        stream: &mut Streaming<Update>,
        address: &str,
        key: &str,
        value: &str,
    ) {
        let address: SocketAddr = address.parse().unwrap();
        let deadline = Instant::now() + PATIENCE;
        while self
            .0
            .get(&address)
            .and_then(|labels| labels.get(key))
            .map(String::as_str)
            != Some(value)
        {
            let left = deadline.saturating_duration_since(Instant::now());
            let message = tokio::time::timeout(left, stream.message())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "{address} never labelled {key}={value}: {:?}",
                        self.0.get(&address)
                    )
                })
                .expect("a healthy stream")
                .expect("the stream is open");
            self.take(message.update.expect("update set"));
        }
    }
}

async fn next_profile(stream: &mut Streaming<DestinationProfile>) -> DestinationProfile {
    tokio::time::timeout(PATIENCE, stream.message())
        .await
        .expect("a profile in time")
        .expect("a healthy stream")
        .expect("the stream is open")
}

#[tokio::test]
async fn endpoints_follow_endpoint_slices() {
    let mut shop = ShopStream::start("kubernetes-slices").await;
    // Deployment-owned pods carry Linkerd's pod and owner labels.
    shop.wait_for_label("10.1.0.1:8080", "pod", "web-5d4f-a")
        .await;
    let labels = &shop.endpoints.0[&"10.1.0.1:8080".parse().unwrap()];
    assert_eq!(
        labels.get("deployment").map(String::as_str),
        Some("web"),
        "{labels:?}"
    );
    assert_eq!(
        labels.get("serviceaccount").map(String::as_str),
        Some("web"),
        "{labels:?}"
    );

    // Pod b turns unready: it leaves; ready again: it comes back.
    set_ready(&shop.api, "web-5d4f-b", "10.1.0.2", false);
    shop.wait_for(&["10.1.0.1:8080"]).await;
    set_ready(&shop.api, "web-5d4f-b", "10.1.0.2", true);
    shop.wait_for(&["10.1.0.1:8080", "10.1.0.2:8080"]).await;
    // A third pod and its slice appear; a slice deleted takes its endpoint.
    add_pod(&shop.api, "web-5d4f-c", "10.1.0.3");
    delete_slice(&shop.api, "web-5d4f-a");
    shop.wait_for(&["10.1.0.2:8080", "10.1.0.3:8080"]).await;
    let events = shop
        .controller
        .process
        .metric("weft_controller_kubernetes_watch_events_total{resource=\"endpointslices.discovery.k8s.io\",type=\"apply\"}")
        .await;
    assert!(events.is_some_and(|count| count >= 3.0), "{events:?}");
}

#[tokio::test]
async fn a_relist_after_410_loses_nothing_and_leaves_nothing_stale() {
    let mut shop = ShopStream::start("kubernetes-relist").await;
    let api = &shop.api;
    let lists_before = slice_lists(api);

    // History forgotten, then an add and a delete, a later write (so every
    // watch's resourceVersion is older than the history), history forgotten
    // again, and every watch cut: each resumes, gets 410 Expired, relists.
    api.compact();
    add_pod(api, "web-5d4f-c", "10.1.0.3");
    delete_slice(api, "web-5d4f-a");
    api.apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bump", "namespace": "shop"}}));
    api.compact();
    api.close_watches();

    shop.wait_for(&["10.1.0.2:8080", "10.1.0.3:8080"]).await;
    weft_test_support::eventually(PATIENCE, || slice_lists(&shop.api) > lists_before);
    // After the relist the set is still exact: the new pod kept its labels.
    set_ready(&shop.api, "web-5d4f-b", "10.1.0.2", false);
    shop.wait_for(&["10.1.0.3:8080"]).await;
    // The pods' relist may land after the slices': the pod's labels follow.
    shop.wait_for_label("10.1.0.3:8080", "pod", "web-5d4f-c")
        .await;
}

/// How many times the EndpointSlices were listed (not watched).
fn slice_lists(api: &KubeApiServer) -> usize {
    api.requests()
        .iter()
        .filter(|request| {
            request.method == "GET"
                && request.path == "/apis/discovery.k8s.io/v1/endpointslices"
                && !request.query.contains("watch=true")
        })
        .count()
}

#[tokio::test]
async fn service_profiles_and_pod_addresses_reach_get_profile() {
    let scratch = Scratch::new("kubernetes-profile");
    let api = KubeApiServer::start();
    shop(&api);
    api.apply(json!({
        "apiVersion": "linkerd.io/v1alpha2", "kind": "ServiceProfile",
        "metadata": {"name": "web.shop.svc.cluster.local", "namespace": "shop"},
        "spec": {"routes": [{"name": "GET /books", "condition": {"method": "GET", "pathRegex": "/books"}}]},
        "status": {"ignored": true},
    }));
    let controller = start_controller(&kubeconfig_for(&scratch, &api)).await;
    let mut client = controller.client().await;

    let mut profiles = client
        .get_profile(get(SERVICE))
        .await
        .expect("GetProfile")
        .into_inner();
    let profile = next_profile(&mut profiles).await;
    let routes: Vec<&str> = profile
        .routes
        .iter()
        .map(|route| route.metrics_labels["route"].as_str())
        .collect();
    assert_eq!(routes, ["GET /books"], "{profile:?}");

    // The profile changes with its resource.
    api.apply(json!({
        "apiVersion": "linkerd.io/v1alpha2", "kind": "ServiceProfile",
        "metadata": {"name": "web.shop.svc.cluster.local", "namespace": "shop"},
        "spec": {"routes": [{"name": "POST /books", "condition": {"method": "POST", "pathRegex": "/books"}}]},
    }));
    let profile = next_profile(&mut profiles).await;
    assert_eq!(profile.routes[0].metrics_labels["route"], "POST /books");

    // A pod IP answers with the pod as `endpoint`.
    let mut by_ip = client
        .get_profile(get("10.1.0.2:8080"))
        .await
        .expect("GetProfile by pod IP")
        .into_inner();
    let profile = next_profile(&mut by_ip).await;
    let endpoint = profile.endpoint.expect("endpoint set for a pod IP");
    assert_eq!(
        socket(endpoint.addr.as_ref().unwrap()).to_string(),
        "10.1.0.2:8080"
    );
    assert_eq!(
        endpoint.metric_labels.get("pod").map(String::as_str),
        Some("web-5d4f-b")
    );
}

#[tokio::test]
async fn ready_waits_for_the_first_lists() {
    let scratch = Scratch::new("kubernetes-ready");
    // An API that accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let api = KubeApiServer::start();
    let kubeconfig = api.kubeconfig_yaml().replace(
        &api.url(),
        &format!("http://{}", silent.local_addr().unwrap()),
    );
    std::fs::write(scratch.path("kubeconfig"), kubeconfig).unwrap();
    let mut controller = spawn_controller(&scratch.path("kubeconfig"));
    let started = Instant::now();
    let mut answered = 0;
    while started.elapsed() < Duration::from_secs(3) {
        if let Ok((code, body)) = http_get(controller.admin(), "/ready").await {
            assert_eq!(code, 503, "{body}");
            let body: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(
                body["kubernetes"]["resources"]["pods"]["listed"], false,
                "{body}"
            );
            answered += 1;
        }
        assert!(
            controller.process.child.try_wait().unwrap().is_none(),
            "the controller exited"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(answered > 0, "the admin server never answered");

    // Against an answering API the same controller flags become ready.
    api.write_kubeconfig(&scratch.path("kubeconfig-live"));
    let live = start_controller(&scratch.path("kubeconfig-live")).await;
    let (code, body) = http_get(live.admin(), "/ready").await.unwrap();
    assert_eq!(code, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        body["kubernetes"]["resources"]["pods"]["listed"], true,
        "{body}"
    );
    drop(silent);
}

/// A loopback HTTP/1.1 relay to the test API server that answers `404
/// NotFound` (a Status, as an API server does for a resource it does not
/// serve) to every request whose path contains `hidden`: a custom resource
/// that is not installed. Requests carry no body (GETs), and the client
/// sends the next request on a connection only after the previous answer.
async fn relay_hiding(upstream: SocketAddr, hidden: &'static str) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                continue;
            };
            tokio::spawn(async move {
                let (mut client_read, client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let client_write = std::sync::Arc::new(tokio::sync::Mutex::new(client_write));
                let answers = std::sync::Arc::clone(&client_write);
                tokio::spawn(async move {
                    let mut buffer = vec![0; 64 * 1024];
                    while let Ok(read) = server_read.read(&mut buffer).await {
                        if read == 0
                            || answers
                                .lock()
                                .await
                                .write_all(&buffer[..read])
                                .await
                                .is_err()
                        {
                            break;
                        }
                    }
                });
                let mut pending = Vec::new();
                let mut buffer = vec![0; 16 * 1024];
                while let Ok(read) = client_read.read(&mut buffer).await {
                    if read == 0 {
                        break;
                    }
                    pending.extend_from_slice(&buffer[..read]);
                    while let Some(end) =
                        pending.windows(4).position(|window| window == b"\r\n\r\n")
                    {
                        let request: Vec<u8> = pending.drain(..end + 4).collect();
                        let line = String::from_utf8_lossy(&request);
                        let path = line.split(' ').nth(1).unwrap_or_default();
                        if path.contains(hidden) {
                            let body = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the server could not find the requested resource","reason":"NotFound","details":{},"code":404}"#;
                            let answer = format!(
                                "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                                body.len()
                            );
                            if client_write
                                .lock()
                                .await
                                .write_all(answer.as_bytes())
                                .await
                                .is_err()
                            {
                                return;
                            }
                        } else if server_write.write_all(&request).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    address
}

#[tokio::test]
async fn a_custom_resource_not_installed_does_not_hold_readiness_back() {
    let scratch = Scratch::new("kubernetes-absent");
    let api = KubeApiServer::start();
    shop(&api);
    let upstream: SocketAddr = api.url().trim_start_matches("http://").parse().unwrap();
    let relay = relay_hiding(upstream, "/grpcroutes").await;
    let kubeconfig = api
        .kubeconfig_yaml()
        .replace(&api.url(), &format!("http://{relay}"));
    std::fs::write(scratch.path("kubeconfig"), kubeconfig).unwrap();
    let controller = start_controller(&scratch.path("kubeconfig")).await;

    let (code, body) = http_get(controller.admin(), "/ready").await.unwrap();
    assert_eq!(code, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    let grpc_routes = &body["kubernetes"]["resources"]["grpcroutes.gateway.networking.k8s.io"];
    assert_eq!(grpc_routes["absent"], true, "{body}");
    assert_eq!(grpc_routes["listed"], false, "{body}");
    // Everything else is served as usual.
    let mut client = controller.client().await;
    let mut stream = client.get(get(SERVICE)).await.expect("Get").into_inner();
    Endpoints::default()
        .wait_for(&mut stream, &["10.1.0.1:8080", "10.1.0.2:8080"])
        .await;
    let errors = controller
        .process
        .metric("weft_controller_kubernetes_watch_errors_total{resource=\"grpcroutes.gateway.networking.k8s.io\"}")
        .await;
    assert!(errors.is_some_and(|count| count >= 1.0), "{errors:?}");
}
