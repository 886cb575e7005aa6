//! Wire contract of InboundServerPolicies on the real `weft-controller`
//! binary: a `linkerd2-proxy-api` client asks as linkerd2-proxy does
//! (`PortSpec{workload: {"ns":..,"pod":..}, port}`) and the test checks every
//! field the proxy reads — protocol, authorizations (networks, authn,
//! metadata, labels), the Server's labels, routes — while it edits the mesh
//! file. Also `GET /api/authz` over the same answers, the stream limits
//! shared with Destination, `--policy-addr` (measurements with 1,000
//! Servers: `policy_latency`).

use crate::common::{Scratch, http_get, identity_of, wait_until_ready};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use linkerd2_proxy_api::inbound::inbound_server_policies_client::InboundServerPoliciesClient;
use linkerd2_proxy_api::inbound::proxy_protocol::Kind as Protocol;
use linkerd2_proxy_api::inbound::{Authz, PortSpec, Server, authn};
use linkerd2_proxy_api::meta::metadata;
use tonic::transport::Channel;
use tonic::{Code, Streaming};

/// Generous bound for start-up and first messages.
pub(crate) const PATIENCE: Duration = Duration::from_secs(10);
/// How long a mesh-file edit may take to reach a WatchPort stream (the
/// Destination contract's one second, with room for a loaded machine).
const EDIT_DEADLINE: Duration = Duration::from_secs(2);

const MESH: &str = r#"
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: web-1, namespace: shop, labels: {app: web}}
spec:
  serviceAccount: web
  addresses: [127.0.0.11]
  ports: [{name: http, port: 8080}, {name: admin, port: 9000}]
  meshed: true
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: db-1, namespace: shop, labels: {app: db}}
spec:
  addresses: [127.0.0.12]
  ports: [{name: sql, port: 5432}, {name: stats, port: 9100}]
---
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: web-http, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  port: http
  proxyProtocol: HTTP/1
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: web-from-client, namespace: shop}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: web-http}
  requiredAuthenticationRefs:
    - {group: policy.linkerd.io, kind: MeshTLSAuthentication, name: client-only}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {name: client-only, namespace: shop}
spec:
  identities: ["client.shop.serviceaccount.identity.weft.cluster.local"]
---
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: db-sql, namespace: shop}
spec:
  podSelector: {matchExpressions: [{key: app, operator: In, values: [db]}]}
  port: 5432
  proxyProtocol: opaque
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: db-from-office, namespace: shop}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: db-sql}
  requiredAuthenticationRefs:
    - {group: policy.linkerd.io, kind: NetworkAuthentication, name: office}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: NetworkAuthentication
metadata: {name: office, namespace: shop}
spec:
  networks: [{cidr: 192.168.0.0/16, except: [192.168.9.0/24]}, {cidr: "fd00::/8"}]
---
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: web-admin, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  port: admin
"#;

/// The controller process, killed on drop.
pub(crate) struct Controller {
    child: Child,
    destination: SocketAddr,
    admin: SocketAddr,
    web: SocketAddr,
    policy: Option<SocketAddr>,
}

impl Controller {
    pub(crate) async fn start(mesh_file: &Path, extra: &[&str]) -> Self {
        let port = || -> SocketAddr {
            format!("127.0.0.1:{}", weft_test_support::free_port())
                .parse()
                .unwrap()
        };
        let (destination, admin, web) = (port(), port(), port());
        let policy = extra.contains(&"--policy-addr").then(port);
        let mut command = Command::new(env!("CARGO_BIN_EXE_weft-controller"));
        command
            .arg("--mesh-file")
            .arg(mesh_file)
            .args(["--destination-addr", &destination.to_string()])
            .args(["--admin-addr", &admin.to_string()])
            .args(["--web-addr", &web.to_string()])
            .args(extra.iter().filter(|flag| **flag != "--policy-addr"));
        if let Some(policy) = policy {
            command.args(["--policy-addr", &policy.to_string()]);
        }
        let child = command
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("weft-controller starts");
        let mut controller = Self {
            child,
            destination,
            admin,
            web,
            policy,
        };
        wait_until_ready(&mut controller.child, admin, PATIENCE).await;
        controller
    }

    /// A controller over [`MESH`], written in a scratch directory `name`
    /// (returned: it must outlive the controller).
    async fn over_mesh(name: &str, extra: &[&str]) -> (Scratch, Self) {
        let scratch = Scratch::new(name);
        scratch.replace("mesh.yaml", MESH.as_bytes());
        let controller = Self::start(&scratch.path("mesh.yaml"), extra).await;
        (scratch, controller)
    }

    pub(crate) async fn client(&self) -> InboundServerPoliciesClient<Channel> {
        client_at(self.destination).await
    }

    /// The value of an unlabelled metric on the admin port.
    async fn metric(&self, name: &str) -> Option<f64> {
        let (_, body) = http_get(self.admin, "/metrics").await.ok()?;
        body.lines()
            .find_map(|line| line.strip_prefix(&format!("weft_controller_{name} ")))
            .and_then(|value| value.trim().parse().ok())
    }

    /// Waits until an unlabelled metric reads `expected`.
    async fn wait_metric(&self, name: &str, expected: f64) {
        let started = Instant::now();
        while self.metric(name).await != Some(expected) {
            assert!(
                started.elapsed() < PATIENCE,
                "{name} never reached {expected}: {:?}",
                self.metric(name).await
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn client_at(address: SocketAddr) -> InboundServerPoliciesClient<Channel> {
    InboundServerPoliciesClient::connect(format!("http://{address}"))
        .await
        .expect("connects to the policy service")
}

/// The PortSpec linkerd2-proxy sends.
pub(crate) fn spec(namespace: &str, workload: &str, port: u32) -> PortSpec {
    PortSpec {
        workload: format!(r#"{{"ns":"{namespace}","pod":"{workload}"}}"#),
        port,
    }
}

async fn get_port(client: &mut InboundServerPoliciesClient<Channel>, port: PortSpec) -> Server {
    client
        .get_port(port)
        .await
        .expect("GetPort answers")
        .into_inner()
}

pub(crate) async fn watch_port(
    client: &mut InboundServerPoliciesClient<Channel>,
    port: PortSpec,
) -> Streaming<Server> {
    client
        .watch_port(port)
        .await
        .expect("WatchPort accepted")
        .into_inner()
}

pub(crate) async fn next(stream: &mut Streaming<Server>, within: Duration) -> Server {
    tokio::time::timeout(within, stream.message())
        .await
        .expect("a message in time")
        .expect("a healthy stream")
        .expect("the stream is open")
}

fn labels(group: &str, kind: &str, name: &str) -> HashMap<String, String> {
    HashMap::from([
        ("group".to_string(), group.to_string()),
        ("kind".to_string(), kind.to_string()),
        ("name".to_string(), name.to_string()),
    ])
}

fn protocol(server: &Server) -> Protocol {
    server
        .protocol
        .clone()
        .and_then(|protocol| protocol.kind)
        .expect("a protocol")
}

/// What an Authz says, flattened: (metadata, networks, authn).
fn describe(authz: &Authz) -> (String, Vec<String>, String) {
    let metadata = match authz.metadata.clone().and_then(|metadata| metadata.kind) {
        Some(metadata::Kind::Default(name)) => format!("default:{name}"),
        Some(metadata::Kind::Resource(resource)) => {
            format!("{}:{}:{}", resource.group, resource.kind, resource.name)
        }
        None => "none".to_string(),
    };
    let network = |net: &linkerd2_proxy_api::net::IpNetwork| {
        let ip: std::net::IpAddr = net.ip.unwrap().try_into().unwrap();
        format!("{ip}/{}", net.prefix_len)
    };
    let networks = authz
        .networks
        .iter()
        .map(|entry| {
            let except: Vec<String> = entry.except.iter().map(network).collect();
            let net = network(entry.net.as_ref().unwrap());
            if except.is_empty() {
                net
            } else {
                format!("{net} except {}", except.join(","))
            }
        })
        .collect();
    let authn = match authz.authentication.clone().and_then(|authn| authn.permit) {
        Some(authn::Permit::Unauthenticated(_)) => "unauthenticated".to_string(),
        Some(authn::Permit::MeshTls(mesh)) => match mesh.clients {
            Some(authn::permit_mesh_tls::Clients::Identities(clients)) => {
                let mut names: Vec<String> = clients
                    .identities
                    .into_iter()
                    .map(|identity| identity.name)
                    .collect();
                names.extend(
                    clients
                        .suffixes
                        .into_iter()
                        .map(|suffix| format!("*.{}", suffix.parts.join("."))),
                );
                format!("mtls {}", names.join(" "))
            }
            Some(authn::permit_mesh_tls::Clients::Unauthenticated(_)) => "mtls any".to_string(),
            None => "mtls none".to_string(),
        },
        None => "none".to_string(),
    };
    (metadata, networks, authn)
}

/// The metadata of each HTTP route of a Server's protocol.
fn http_route_names(server: &Server) -> Vec<String> {
    let routes = match protocol(server) {
        Protocol::Detect(detect) => detect.http_routes,
        Protocol::Http1(http) => http.routes,
        Protocol::Http2(http) => http.routes,
        _ => Vec::new(),
    };
    routes
        .iter()
        .map(
            |route| match route.metadata.clone().and_then(|metadata| metadata.kind) {
                Some(metadata::Kind::Default(name)) => format!("default:{name}"),
                Some(metadata::Kind::Resource(resource)) => {
                    format!("{}:{}", resource.kind, resource.name)
                }
                None => "none".to_string(),
            },
        )
        .collect()
}

fn all_networks() -> Vec<String> {
    vec!["0.0.0.0/0".to_string(), "::/0".to_string()]
}

#[tokio::test]
async fn a_mesh_tls_authentication_admits_one_identity() {
    let (_scratch, controller) = Controller::over_mesh("policy-meshtls", &[]).await;
    let mut client = controller.client().await;
    let server = get_port(&mut client, spec("shop", "web-1", 8080)).await;
    assert_eq!(
        server.labels,
        labels("policy.linkerd.io", "server", "web-http")
    );
    assert!(
        matches!(protocol(&server), Protocol::Http1(_)),
        "{server:?}"
    );
    assert_eq!(http_route_names(&server), ["default:default"]);
    assert_eq!(server.authorizations.len(), 1, "{server:?}");
    assert_eq!(
        describe(&server.authorizations[0]),
        (
            "policy.linkerd.io:authorizationpolicy:web-from-client".to_string(),
            all_networks(),
            format!("mtls {}", identity_of("shop", "client")),
        )
    );
    assert_eq!(
        server.authorizations[0].labels,
        labels(
            "policy.linkerd.io",
            "authorizationpolicy",
            "web-from-client"
        )
    );
    // WatchPort answers the same at once.
    let mut stream = watch_port(&mut client, spec("shop", "web-1", 8080)).await;
    assert_eq!(next(&mut stream, PATIENCE).await, server);
}

#[tokio::test]
async fn a_network_authentication_admits_its_networks() {
    let (_scratch, controller) = Controller::over_mesh("policy-network", &[]).await;
    let mut client = controller.client().await;
    let server = get_port(&mut client, spec("shop", "db-1", 5432)).await;
    assert_eq!(
        server.labels,
        labels("policy.linkerd.io", "server", "db-sql")
    );
    assert!(
        matches!(protocol(&server), Protocol::Opaque(_)),
        "{server:?}"
    );
    assert_eq!(
        server
            .authorizations
            .iter()
            .map(describe)
            .collect::<Vec<_>>(),
        [(
            "policy.linkerd.io:authorizationpolicy:db-from-office".to_string(),
            vec![
                "192.168.0.0/16 except 192.168.9.0/24".to_string(),
                "fd00::/8".to_string()
            ],
            "unauthenticated".to_string(),
        )]
    );
}

#[tokio::test]
async fn a_server_without_policies_denies_and_unselected_ports_get_the_default() {
    let (_scratch, controller) = Controller::over_mesh("policy-deny", &[]).await;
    let mut client = controller.client().await;
    // web-admin: a Server, no AuthorizationPolicy: nothing is authorized.
    let admin = get_port(&mut client, spec("shop", "web-1", 9000)).await;
    assert_eq!(
        admin.labels,
        labels("policy.linkerd.io", "server", "web-admin")
    );
    assert!(admin.authorizations.is_empty(), "{admin:?}");
    assert!(matches!(protocol(&admin), Protocol::Detect(_)), "{admin:?}");
    // A port nobody selects: the default, detect with Linkerd's 10 s.
    for (workload, port) in [("db-1", 9100), ("nobody", 8080)] {
        let server = get_port(&mut client, spec("shop", workload, port)).await;
        assert_eq!(
            server.labels,
            labels("", "default", "all-unauthenticated"),
            "{workload}"
        );
        let Protocol::Detect(detect) = protocol(&server) else {
            panic!("{server:?}");
        };
        assert_eq!(detect.timeout.map(|timeout| timeout.seconds), Some(10));
        assert_eq!(http_route_names(&server), ["default:default"]);
        assert_eq!(
            server
                .authorizations
                .iter()
                .map(describe)
                .collect::<Vec<_>>(),
            [(
                "default:all-unauthenticated".to_string(),
                all_networks(),
                "unauthenticated".to_string()
            )]
        );
    }
}

#[tokio::test]
async fn each_default_policy_by_flag_and_by_annotation() {
    let scratch = Scratch::new("policy-defaults");
    let mut mesh = String::new();
    for policy in [
        "all-unauthenticated",
        "all-authenticated",
        "cluster-unauthenticated",
        "cluster-authenticated",
        "deny",
        "audit",
    ] {
        mesh.push_str(&format!(
            "---\napiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata:\n  name: {policy}\n  namespace: shop\n  annotations: {{config.linkerd.io/default-inbound-policy: {policy}}}\nspec: {{addresses: [127.0.0.1]}}\n"
        ));
    }
    mesh.push_str("---\napiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: plain, namespace: shop}\nspec: {addresses: [127.0.0.1]}\n");
    scratch.replace("mesh.yaml", mesh.as_bytes());
    let controller = Controller::start(
        &scratch.path("mesh.yaml"),
        &[
            "--default-inbound-policy",
            "cluster-authenticated",
            "--cluster-networks",
            "10.0.0.0/8,127.0.0.0/8",
        ],
    )
    .await;
    let mut client = controller.client().await;
    let cluster = vec!["10.0.0.0/8".to_string(), "127.0.0.0/8".to_string()];
    let any_identity = "mtls *.".to_string();
    let cases = [
        (
            "all-unauthenticated",
            Some((all_networks(), "unauthenticated".to_string())),
        ),
        (
            "all-authenticated",
            Some((all_networks(), any_identity.clone())),
        ),
        (
            "cluster-unauthenticated",
            Some((cluster.clone(), "unauthenticated".to_string())),
        ),
        (
            "cluster-authenticated",
            Some((cluster.clone(), any_identity.clone())),
        ),
        ("deny", None),
        (
            "audit",
            Some((all_networks(), "unauthenticated".to_string())),
        ),
    ];
    for (policy, expected) in cases {
        let server = get_port(&mut client, spec("shop", policy, 8080)).await;
        assert_eq!(server.labels, labels("", "default", policy));
        let found: Vec<_> = server.authorizations.iter().map(describe).collect();
        let expected: Vec<_> = expected
            .into_iter()
            .map(|(networks, authn)| (format!("default:{policy}"), networks, authn))
            .collect();
        assert_eq!(found, expected, "{policy}");
    }
    // Without the annotation: the flag's policy.
    let plain = get_port(&mut client, spec("shop", "plain", 8080)).await;
    assert_eq!(plain.labels, labels("", "default", "cluster-authenticated"));
    assert_eq!(describe(&plain.authorizations[0]).1, cluster);
}

#[tokio::test]
async fn a_mesh_file_edit_reaches_an_open_watch_port_stream() {
    let (scratch, controller) = Controller::over_mesh("policy-watch", &[]).await;
    let mut client = controller.client().await;
    let mut admin = watch_port(&mut client, spec("shop", "web-1", 9000)).await;
    let mut unrelated = watch_port(&mut client, spec("shop", "db-1", 5432)).await;
    let first = next(&mut admin, PATIENCE).await;
    assert!(first.authorizations.is_empty());
    let _ = next(&mut unrelated, PATIENCE).await;
    let edited = format!(
        "{MESH}---\napiVersion: policy.linkerd.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {{name: admin-from-web, namespace: shop}}\nspec:\n  targetRef: {{group: policy.linkerd.io, kind: Server, name: web-admin}}\n  requiredAuthenticationRefs: [{{kind: ServiceAccount, name: web}}]\n"
    );
    let started = Instant::now();
    scratch.replace("mesh.yaml", edited.as_bytes());
    let update = next(&mut admin, EDIT_DEADLINE).await;
    let latency = started.elapsed();
    eprintln!("mesh-file edit → WatchPort update: {latency:?}");
    assert_eq!(
        update
            .authorizations
            .iter()
            .map(describe)
            .collect::<Vec<_>>(),
        [(
            "policy.linkerd.io:authorizationpolicy:admin-from-web".to_string(),
            all_networks(),
            format!("mtls {}", identity_of("shop", "web")),
        )]
    );
    // The database's answer did not change: no message for it.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), unrelated.message())
            .await
            .is_err(),
        "an unchanged answer was sent again"
    );
    // Deleting the policy brings the deny back.
    let started = Instant::now();
    scratch.replace("mesh.yaml", MESH.as_bytes());
    let update = next(&mut admin, EDIT_DEADLINE).await;
    eprintln!("mesh-file edit → WatchPort update: {:?}", started.elapsed());
    assert!(update.authorizations.is_empty());
    // A workload the mesh does not know yet: the default, then its Server's
    // answer once the file declares it.
    let mut later = watch_port(&mut client, spec("shop", "web-2", 8080)).await;
    let first = next(&mut later, PATIENCE).await;
    assert_eq!(first.labels, labels("", "default", "all-unauthenticated"));
    let with_web_2 = format!(
        "{MESH}---\napiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {{name: web-2, namespace: shop, labels: {{app: web}}}}\nspec: {{addresses: [127.0.0.13], ports: [{{name: http, port: 8080}}]}}\n"
    );
    scratch.replace("mesh.yaml", with_web_2.as_bytes());
    let update = next(&mut later, EDIT_DEADLINE).await;
    assert_eq!(
        update.labels,
        labels("policy.linkerd.io", "server", "web-http")
    );
}

#[tokio::test]
async fn malformed_requests_are_invalid_arguments() {
    let (_scratch, controller) = Controller::over_mesh("policy-invalid", &[]).await;
    let mut client = controller.client().await;
    let cases = [
        PortSpec {
            workload: "web-1".into(),
            port: 8080,
        },
        PortSpec {
            workload: r#"{"ns":"shop"}"#.into(),
            port: 8080,
        },
        PortSpec {
            workload: r#"{"ns":"shop","pod":""}"#.into(),
            port: 8080,
        },
        PortSpec {
            workload: "".into(),
            port: 8080,
        },
        spec("shop", "web-1", 0),
        spec("shop", "web-1", 65_536),
    ];
    for case in cases {
        let status = client.get_port(case.clone()).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{case:?}: {status:?}");
        let status = client.watch_port(case.clone()).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{case:?}: {status:?}");
    }
}

#[tokio::test]
async fn streams_count_against_the_destination_limits() {
    let (_scratch, controller) = Controller::over_mesh(
        "policy-limits",
        &["--destination-max-streams-per-client", "2"],
    )
    .await;
    let mut client = controller.client().await;
    let first = watch_port(&mut client, spec("shop", "web-1", 8080)).await;
    let _second = watch_port(&mut client, spec("shop", "db-1", 5432)).await;
    let refused = client
        .watch_port(spec("shop", "web-1", 9000))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    // GetPort holds nothing and is still answered.
    let _ = get_port(&mut client, spec("shop", "web-1", 9000)).await;
    // A stream given back frees its place.
    drop(first);
    let started = Instant::now();
    let third = loop {
        match client.watch_port(spec("shop", "web-1", 9000)).await {
            Ok(response) => break response.into_inner(),
            Err(status) if status.code() == Code::ResourceExhausted => {
                assert!(
                    started.elapsed() < PATIENCE,
                    "the permit was never given back"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(status) => panic!("{status:?}"),
        }
    };
    // One catalog watch per open port (db-1:5432, web-1:9000); streams and
    // watches go with the client.
    controller.wait_metric("inbound_policy_streams", 2.0).await;
    controller.wait_metric("inbound_policy_watches", 2.0).await;
    drop((client, _second, third));
    controller.wait_metric("inbound_policy_streams", 0.0).await;
    controller.wait_metric("inbound_policy_watches", 0.0).await;
}

#[tokio::test]
async fn the_policy_address_serves_the_same_answers() {
    let (_scratch, controller) = Controller::over_mesh("policy-addr", &["--policy-addr"]).await;
    let mut on_destination = controller.client().await;
    let mut on_policy = client_at(controller.policy.unwrap()).await;
    for port in [8080, 9000, 7777] {
        assert_eq!(
            get_port(&mut on_policy, spec("shop", "web-1", port)).await,
            get_port(&mut on_destination, spec("shop", "web-1", port)).await
        );
    }
    // OutboundPolicies is there too: an unknown Service is NOT_FOUND, not UNIMPLEMENTED.
    use linkerd2_proxy_api::outbound::outbound_policies_client::OutboundPoliciesClient;
    use linkerd2_proxy_api::outbound::{TrafficSpec, traffic_spec};
    let mut outbound =
        OutboundPoliciesClient::connect(format!("http://{}", controller.policy.unwrap()))
            .await
            .unwrap();
    let status = outbound
        .get(TrafficSpec {
            source_workload: r#"{"ns":"shop","pod":"web-1"}"#.into(),
            target: Some(traffic_spec::Target::Authority(
                "nosuch.shop.svc.cluster.local:80".into(),
            )),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
}

#[tokio::test]
async fn api_authz_shows_each_port() {
    let (_scratch, controller) = Controller::over_mesh("policy-api", &[]).await;
    let (status, body) = http_get(controller.web, "/api/authz?namespace=shop&workload=web-1")
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let value: serde_json::Value = serde_json::from_str(&body).unwrap();
    let answer: weft_api::AuthzResponse = serde_json::from_value(value.clone()).unwrap();
    assert_eq!(
        serde_json::to_value(&answer).unwrap(),
        value,
        "written back unchanged"
    );
    assert_eq!(
        answer.default_policy,
        "all-unauthenticated (controller default)"
    );
    let ports: Vec<(u16, Option<&str>, Option<&str>, &str)> = answer
        .ports
        .iter()
        .map(|port| {
            (
                port.port,
                port.port_name.as_deref(),
                port.server.as_deref(),
                port.protocol.as_str(),
            )
        })
        .collect();
    assert_eq!(
        ports,
        [
            (8080, Some("http"), Some("web-http"), "http1"),
            (9000, Some("admin"), Some("web-admin"), "detect"),
        ]
    );
    assert_eq!(answer.ports[0].authorizations.len(), 1);
    let entry = &answer.ports[0].authorizations[0];
    assert_eq!(
        (entry.kind.as_str(), entry.name.as_str()),
        ("AuthorizationPolicy", "web-from-client")
    );
    assert_eq!(
        entry.clients,
        [format!("identity {}", identity_of("shop", "client"))]
    );
    assert!(answer.ports[1].authorizations.is_empty());
    let (status, body) = http_get(controller.web, "/api/authz?namespace=shop&workload=db-1")
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let db: weft_api::AuthzResponse = serde_json::from_str(&body).unwrap();
    assert_eq!(
        db.ports[0].authorizations[0].clients,
        [
            "unauthenticated",
            "network 192.168.0.0/16 except 192.168.9.0/24",
            "network fd00::/8"
        ]
    );
    assert_eq!(db.ports[1].server, None);
    assert_eq!(db.ports[1].authorizations[0].kind, "default");
    for (path, expected) in [
        ("/api/authz?namespace=shop", 400),
        ("/api/authz?workload=web-1", 400),
        ("/api/authz?namespace=shop&workload=nobody", 404),
    ] {
        let (status, body) = http_get(controller.web, path).await.unwrap();
        assert_eq!(status, expected, "{path}: {body}");
        let _: weft_api::ErrorBody = serde_json::from_str(&body).unwrap();
    }
}
