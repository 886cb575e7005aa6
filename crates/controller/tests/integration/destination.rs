//! Wire contract of the real `weft-controller` binary: a Destination client
//! built from `linkerd2-proxy-api` talks to it over loopback while the test
//! edits its mesh file.

use crate::common::{
    DestinationController, Scratch, Source, controller_command, http_get, wait_for_exit,
};

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use linkerd2_proxy_api::destination::destination_client::DestinationClient;
use linkerd2_proxy_api::destination::update::Update as UpdateKind;
use linkerd2_proxy_api::destination::{DestinationProfile, GetDestination, Update};
use linkerd2_proxy_api::net::TcpAddress;
use tonic::transport::Channel;
use tonic::{Code, Streaming};

const EXAMPLE: &str = include_str!("../../examples/mesh.yaml");
/// Generous bound for anything not stated by the issue (start-up, first message).
const PATIENCE: Duration = Duration::from_secs(10);
/// The issue's bound for a mesh-file edit to reach a stream.
const EDIT_DEADLINE: Duration = Duration::from_secs(1);

const NEW_WORKLOAD: &str = "
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: web-3
  namespace: shop
  labels: {app: web, version: v1}
spec:
  serviceAccount: web
  addresses: [127.0.0.5]
  ports:
  - {name: http, port: 8085}
  meshed: true
";

/// The controller reading `mesh_file`, its stderr piped.
fn spawn_controller(mesh_file: &Path, destination: SocketAddr, admin: SocketAddr) -> Child {
    controller_command(Source::MeshFile(mesh_file), destination, admin)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("weft-controller starts")
}

/// The controller reading `mesh_file`, once ready.
async fn start_controller(mesh_file: &Path) -> DestinationController {
    DestinationController::start(Source::MeshFile(mesh_file), PATIENCE).await
}

fn request(path: &str) -> GetDestination {
    GetDestination {
        scheme: "k8s".to_string(),
        path: path.to_string(),
        context_token: String::new(),
    }
}

/// Opens a Get stream for `path`; the controller must accept it.
async fn open_get(client: &mut DestinationClient<Channel>, path: &str) -> Streaming<Update> {
    client
        .get(request(path))
        .await
        .expect("Get accepted")
        .into_inner()
}

async fn next_update(stream: &mut Streaming<Update>, within: Duration) -> UpdateKind {
    tokio::time::timeout(within, stream.message())
        .await
        .expect("an update in time")
        .expect("a healthy stream")
        .expect("the stream is open")
        .update
        .expect("update set")
}

async fn next_profile(
    stream: &mut Streaming<DestinationProfile>,
    within: Duration,
) -> DestinationProfile {
    tokio::time::timeout(within, stream.message())
        .await
        .expect("a profile in time")
        .expect("a healthy stream")
        .expect("the stream is open")
}

fn socket(address: &TcpAddress) -> SocketAddr {
    let ip: std::net::IpAddr = address.ip.expect("ip").try_into().expect("valid ip");
    SocketAddr::new(ip, u16::try_from(address.port).unwrap())
}

fn sorted(mut addresses: Vec<SocketAddr>) -> Vec<SocketAddr> {
    addresses.sort();
    addresses
}

fn addresses(list: &[&str]) -> Vec<SocketAddr> {
    sorted(list.iter().map(|text| text.parse().unwrap()).collect())
}

fn label<'a>(labels: &'a HashMap<String, String>, key: &str) -> Option<&'a str> {
    labels.get(key).map(String::as_str)
}

/// The gRPC code a call ends with: refused up front or as the first message.
async fn code_of<T>(result: Result<tonic::Response<Streaming<T>>, tonic::Status>) -> Code {
    match result {
        Err(status) => status.code(),
        Ok(response) => match response.into_inner().message().await {
            Err(status) => status.code(),
            Ok(_) => Code::Ok,
        },
    }
}

#[tokio::test]
async fn get_streams_the_current_set_then_diffs_and_survives_a_broken_edit() {
    let scratch = Scratch::new("get");
    scratch.replace("mesh.yaml", EXAMPLE.as_bytes());
    let controller = start_controller(&scratch.path("mesh.yaml")).await;
    let mut client = controller.client().await;
    let mut stream = open_get(&mut client, "web.shop.svc.cluster.local:80").await;

    // The current set first, with set-level and per-address labels.
    let UpdateKind::Add(set) = next_update(&mut stream, PATIENCE).await else {
        panic!("first message must be an Add");
    };
    assert_eq!(label(&set.metric_labels, "service"), Some("web"));
    assert_eq!(label(&set.metric_labels, "namespace"), Some("shop"));
    let found = sorted(
        set.addrs
            .iter()
            .map(|addr| socket(addr.addr.as_ref().unwrap()))
            .collect(),
    );
    assert_eq!(
        found,
        addresses(&["127.0.0.1:8081", "127.0.0.2:8082", "127.0.0.3:8083"])
    );
    let web_1 = set
        .addrs
        .iter()
        .find(|addr| socket(addr.addr.as_ref().unwrap()).port() == 8081)
        .unwrap();
    assert_eq!(web_1.weight, 10_000);
    assert_eq!(label(&web_1.metric_labels, "workload"), Some("web-1"));
    assert_eq!(label(&web_1.metric_labels, "serviceaccount"), Some("web"));
    assert_eq!(label(&web_1.metric_labels, "namespace"), Some("shop"));
    assert!(web_1.tls_identity.is_none() && web_1.protocol_hint.is_none());

    let (_, metrics) = http_get(controller.admin(), "/metrics").await.unwrap();
    assert!(
        metrics.contains("weft_controller_destination_get_streams 1"),
        "{metrics}"
    );

    // An added workload arrives as an Add diff of just that address.
    let with_web_3 = format!("{EXAMPLE}{NEW_WORKLOAD}");
    scratch.replace("mesh.yaml", with_web_3.as_bytes());
    let UpdateKind::Add(diff) = next_update(&mut stream, EDIT_DEADLINE).await else {
        panic!("expected an Add diff");
    };
    let found: Vec<SocketAddr> = diff
        .addrs
        .iter()
        .map(|addr| socket(addr.addr.as_ref().unwrap()))
        .collect();
    assert_eq!(found, addresses(&["127.0.0.5:8085"]));

    // A removed workload arrives as a Remove.
    let without_web_2 = with_web_3.replace("addresses: [127.0.0.2]", "addresses: []");
    scratch.replace("mesh.yaml", without_web_2.as_bytes());
    let UpdateKind::Remove(removed) = next_update(&mut stream, EDIT_DEADLINE).await else {
        panic!("expected a Remove");
    };
    let found: Vec<SocketAddr> = removed.addrs.iter().map(socket).collect();
    assert_eq!(found, addresses(&["127.0.0.2:8082"]));

    // A broken edit changes nothing on the stream and shows on /ready.
    scratch.replace("mesh.yaml", format!(
        "{without_web_2}---\napiVersion: v1\nkind: Service\nmetadata: {{name: broken}}\nspec: {{ports: nope}}\n"
    ).as_bytes());
    let quiet = tokio::time::timeout(Duration::from_millis(1500), stream.message()).await;
    assert!(
        quiet.is_err(),
        "a broken edit must not reach the stream: {quiet:?}"
    );
    let (status, body) = http_get(controller.admin(), "/ready").await.unwrap();
    assert_eq!(status, 200, "the last good version keeps serving: {body}");
    let ready: serde_json::Value = serde_json::from_str(body.trim()).expect("JSON body");
    let last_error = ready["mesh_file"]["last_error"]
        .as_str()
        .unwrap_or_default();
    assert!(
        last_error.contains("mesh.yaml") && last_error.contains("document 12"),
        "{body}"
    );
    assert_eq!(ready["mesh_file"]["current"], false, "{body}");

    // The client going away ends the stream on the server.
    drop(stream);
    let started = Instant::now();
    loop {
        let (_, metrics) = http_get(controller.admin(), "/metrics").await.unwrap();
        if metrics.contains("weft_controller_destination_get_streams 0") {
            break;
        }
        assert!(started.elapsed() < PATIENCE, "stream still open: {metrics}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn unknown_names_and_malformed_paths_get_the_reference_answers() {
    let scratch = Scratch::new("names");
    scratch.replace("mesh.yaml", EXAMPLE.as_bytes());
    let controller = start_controller(&scratch.path("mesh.yaml")).await;
    let mut client = controller.client().await;

    let mut unknown = open_get(&mut client, "nope.shop.svc.cluster.local:80").await;
    assert_eq!(
        next_update(&mut unknown, PATIENCE).await,
        UpdateKind::NoEndpoints(linkerd2_proxy_api::destination::NoEndpoints { exists: false })
    );

    for path in [
        "web:80",
        "web.shop.svc.cluster.local:http",
        "",
        "web.example.com:80",
    ] {
        assert_eq!(
            code_of(client.get(request(path)).await).await,
            Code::InvalidArgument,
            "Get {path:?}"
        );
        assert_eq!(
            code_of(client.get_profile(request(path)).await).await,
            Code::InvalidArgument,
            "GetProfile {path:?}"
        );
    }
}

#[tokio::test]
async fn get_profile_by_name_and_by_address() {
    let scratch = Scratch::new("profile");
    scratch.replace("mesh.yaml", EXAMPLE.as_bytes());
    let controller = start_controller(&scratch.path("mesh.yaml")).await;
    let mut client = controller.client().await;

    for path in ["web.shop.svc.cluster.local:80", "10.96.0.10:80"] {
        let mut stream = client
            .get_profile(request(path))
            .await
            .expect("GetProfile accepted")
            .into_inner();
        let profile = next_profile(&mut stream, PATIENCE).await;
        assert_eq!(
            profile.fully_qualified_name, "web.shop.svc.cluster.local",
            "{path}"
        );
        let routes: Vec<(&str, bool)> = profile
            .routes
            .iter()
            .map(|route| {
                (
                    label(&route.metrics_labels, "route").unwrap(),
                    route.is_retryable,
                )
            })
            .collect();
        assert_eq!(
            routes,
            vec![("GET /api/items", true), ("POST /api/orders", false)],
            "{path}"
        );
        let budget = profile.retry_budget.expect("retry budget");
        assert_eq!(budget.min_retries_per_second, 10);
        let overrides: Vec<(&str, u32)> = profile
            .dst_overrides
            .iter()
            .map(|destination| (destination.authority.as_str(), destination.weight))
            .collect();
        assert_eq!(
            overrides,
            vec![
                ("web-v1.shop.svc.cluster.local.:80", 9000),
                ("web-v2.shop.svc.cluster.local.:80", 1000),
            ],
            "{path}"
        );
        assert!(profile.endpoint.is_none(), "{path}");
    }

    // A workload's address: `endpoint` set so the proxy connects directly.
    let mut stream = client
        .get_profile(request("127.0.0.1:8081"))
        .await
        .expect("GetProfile accepted")
        .into_inner();
    let profile = next_profile(&mut stream, PATIENCE).await;
    let endpoint = profile
        .endpoint
        .expect("endpoint set for a workload address");
    assert_eq!(
        socket(endpoint.addr.as_ref().unwrap()),
        "127.0.0.1:8081".parse().unwrap()
    );
    assert_eq!(label(&endpoint.metric_labels, "workload"), Some("web-1"));
    assert!(profile.routes.is_empty() && profile.dst_overrides.is_empty());

    // Any other address: the default profile, no endpoint.
    let mut stream = client
        .get_profile(request("192.0.2.1:80"))
        .await
        .expect("GetProfile accepted")
        .into_inner();
    let profile = next_profile(&mut stream, PATIENCE).await;
    assert!(profile.endpoint.is_none() && profile.fully_qualified_name.is_empty());
    assert!(profile.retry_budget.is_some());

    // The profile stream follows edits: without the split, the service itself.
    let mut stream = client
        .get_profile(request("web.shop.svc.cluster.local:80"))
        .await
        .expect("GetProfile accepted")
        .into_inner();
    next_profile(&mut stream, PATIENCE).await;
    let without_split = EXAMPLE
        .split_once("---\napiVersion: split.smi-spec.io/v1alpha1")
        .map(|(before, _)| before.to_string())
        .expect("the example has a split");
    scratch.replace("mesh.yaml", without_split.as_bytes());
    let profile = next_profile(&mut stream, EDIT_DEADLINE).await;
    let overrides: Vec<(&str, u32)> = profile
        .dst_overrides
        .iter()
        .map(|destination| (destination.authority.as_str(), destination.weight))
        .collect();
    // No split: no override (the name says it is a service), so a
    // linkerd2-proxy routes by the service's HTTPRoutes.
    assert_eq!(overrides, Vec::<(&str, u32)>::new());
    assert_eq!(profile.fully_qualified_name, "web.shop.svc.cluster.local");
}

/// A client-side ServiceProfile: in the client's namespace, named after the service.
const CLIENT_PROFILE: &str = "
---
apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata:
  name: web.shop.svc.cluster.local
  namespace: client
spec:
  routes:
  - name: client route
    condition: {method: GET, pathRegex: /.*}
";

#[tokio::test]
async fn get_profile_prefers_the_client_namespace_profile() {
    let scratch = Scratch::new("client-profile");
    scratch.replace("mesh.yaml", format!("{EXAMPLE}{CLIENT_PROFILE}").as_bytes());
    let controller = start_controller(&scratch.path("mesh.yaml")).await;
    let mut client = controller.client().await;

    let cases = [
        (
            r#"{"ns":"client","nodeName":"node-1","pod":"app-1"}"#,
            "client route",
        ),
        ("ns:client", "client route"),
        (r#"{"ns":"shop","nodeName":"node-1"}"#, "GET /api/items"),
        (r#"{"ns":"elsewhere"}"#, "GET /api/items"),
        ("", "GET /api/items"),
        ("not a token", "GET /api/items"),
    ];
    for (token, first_route) in cases {
        let request = GetDestination {
            context_token: token.to_string(),
            ..request("web.shop.svc.cluster.local:80")
        };
        let mut stream = client
            .get_profile(request)
            .await
            .expect("GetProfile accepted")
            .into_inner();
        let profile = next_profile(&mut stream, PATIENCE).await;
        let route = profile
            .routes
            .first()
            .and_then(|route| label(&route.metrics_labels, "route"));
        assert_eq!(route, Some(first_route), "{token:?}");
    }
}

#[tokio::test]
async fn start_up_failures_are_clear_and_sigterm_exits_cleanly() {
    let scratch = Scratch::new("startup");
    let admin = weft_test_support::free_addr();

    // A missing file: exit 64, naming the file.
    let destination = weft_test_support::free_addr();
    let output = spawn_controller(&scratch.path("mesh.yaml"), destination, admin)
        .wait_with_output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("mesh.yaml"), "{stderr}");

    // A bad file: exit 64, naming file, document and line.
    scratch.replace(
        "mesh.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: 7}\n".as_bytes(),
    );
    let output = spawn_controller(&scratch.path("mesh.yaml"), destination, admin)
        .wait_with_output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("mesh.yaml: document 1, line 4"), "{stderr}");

    // A taken port: the flag is named.
    scratch.replace("mesh.yaml", EXAMPLE.as_bytes());
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let output = spawn_controller(
        &scratch.path("mesh.yaml"),
        taken.local_addr().unwrap(),
        admin,
    )
    .wait_with_output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_ne!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("--destination-addr"), "{stderr}");
    drop(taken);

    // SIGTERM with a stream open: a clean exit.
    let mut controller = start_controller(&scratch.path("mesh.yaml")).await;
    let mut client = controller.client().await;
    let mut stream = open_get(&mut client, "web.shop.svc.cluster.local:80").await;
    next_update(&mut stream, PATIENCE).await;
    let signalled = Command::new("kill")
        .arg("-TERM")
        .arg(controller.process.child.id().to_string())
        .status()
        .unwrap();
    assert!(signalled.success());
    let status = wait_for_exit(&mut controller.process.child, PATIENCE, "SIGTERM").await;
    assert_eq!(status.code(), Some(0));
}
