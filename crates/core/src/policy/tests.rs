//! Table tests of the policy kinds and the effective-policy decision.

use std::net::IpAddr;

use super::authentication::{IdentityMatch, NetworkMatch};
use super::effective::{
    AuthorizationRef, ClientAuthentication, DETECT_TIMEOUT, PortQuery, Protocol, RouteKind,
    ServerRef, ServerRoute, default_authorizations,
};
use super::*;
use crate::object::MeshObject;
use crate::workload::Workload;

const CONTROL_NAMESPACE: &str = "weft";
const TRUST_DOMAIN: &str = "cluster.local";

fn parse<T: serde::de::DeserializeOwned>(yaml: &str) -> T {
    serde_saphyr::from_str(yaml).unwrap_or_else(|error| panic!("{error}: {yaml}"))
}

fn workload(annotations: &str) -> Workload {
    parse(&format!(
        "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {{name: web-1, namespace: shop, labels: {{app: web, tier: front}}, annotations: {{{annotations}}}}}\nspec:\n  serviceAccount: web\n  addresses: [10.0.0.11]\n  ports: [{{name: http, port: 8080}}, {{name: admin, port: 9000}}]\n"
    ))
}

fn server(name: &str, selector: &str, port: &str, extra: &str) -> Server {
    parse(&format!(
        "apiVersion: policy.linkerd.io/v1beta3\nkind: Server\nmetadata: {{name: {name}, namespace: shop}}\nspec:\n  podSelector: {selector}\n  port: {port}\n{extra}"
    ))
}

fn policy(name: &str, target: &str, refs: &str) -> AuthorizationPolicy {
    parse(&format!(
        "apiVersion: policy.linkerd.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {{name: {name}, namespace: shop}}\nspec:\n  targetRef: {target}\n  requiredAuthenticationRefs: {refs}\n"
    ))
}

fn mesh_tls(name: &str, spec: &str) -> MeshTLSAuthentication {
    parse(&format!(
        "apiVersion: policy.linkerd.io/v1alpha1\nkind: MeshTLSAuthentication\nmetadata: {{name: {name}, namespace: shop}}\nspec: {spec}\n"
    ))
}

fn network(name: &str, networks: &str) -> NetworkAuthentication {
    parse(&format!(
        "apiVersion: policy.linkerd.io/v1alpha1\nkind: NetworkAuthentication\nmetadata: {{name: {name}, namespace: shop}}\nspec: {{networks: {networks}}}\n"
    ))
}

fn identity(service_account: &str, namespace: &str) -> String {
    crate::names::identity_name(service_account, namespace, CONTROL_NAMESPACE, TRUST_DOMAIN)
}

fn cluster() -> Vec<Cidr> {
    Cidr::parse_list(default_policy::DEFAULT_CLUSTER_NETWORKS).unwrap()
}

const SERVER_REF: &str = "{group: policy.linkerd.io, kind: Server, name: web-http}";
const MESH_REF: &str = "{group: policy.linkerd.io, kind: MeshTLSAuthentication, name: clients}";
const NET_REF: &str = "{group: policy.linkerd.io, kind: NetworkAuthentication, name: office}";

#[derive(Default)]
struct Objects {
    servers: Vec<Server>,
    policies: Vec<AuthorizationPolicy>,
    mesh_tls: Vec<MeshTLSAuthentication>,
    networks: Vec<NetworkAuthentication>,
    routes: Vec<ServerRoute>,
}

impl Objects {
    fn decide(
        &self,
        workload: Option<&Workload>,
        port: u16,
        default: DefaultPolicy,
    ) -> InboundPolicy {
        let servers: Vec<&Server> = self.servers.iter().collect();
        let policies: Vec<&AuthorizationPolicy> = self.policies.iter().collect();
        let mesh_tls: Vec<&MeshTLSAuthentication> = self.mesh_tls.iter().collect();
        let networks: Vec<&NetworkAuthentication> = self.networks.iter().collect();
        let cluster = cluster();
        inbound_policy(
            PortQuery {
                namespace: "shop",
                workload,
                port,
            },
            &PolicyObjects {
                servers: &servers,
                authorization_policies: &policies,
                mesh_tls: &mesh_tls,
                networks: &networks,
                routes: &self.routes,
            },
            &PolicyContext {
                default_policy: default,
                cluster_networks: &cluster,
                control_namespace: CONTROL_NAMESPACE,
                trust_domain: TRUST_DOMAIN,
            },
        )
    }
}

fn base() -> Objects {
    Objects {
        servers: vec![server(
            "web-http",
            "{matchLabels: {app: web}}",
            "http",
            "  proxyProtocol: HTTP/1\n",
        )],
        policies: vec![policy(
            "web-from-clients",
            SERVER_REF,
            &format!("[{MESH_REF}]"),
        )],
        mesh_tls: vec![mesh_tls(
            "clients",
            &format!("{{identities: [{}]}}", identity("shop-client", "shop")),
        )],
        networks: vec![network(
            "office",
            "[{cidr: 192.168.0.0/16, except: [192.168.9.0/24]}]",
        )],
        routes: Vec::new(),
    }
}

/// (client address, identity) → whether some authorization of the answer admits it.
fn admitted(answer: &InboundPolicy, address: &str, client: Option<&str>) -> bool {
    let address: IpAddr = address.parse().unwrap();
    answer
        .authorizations
        .iter()
        .any(|authorization| authorization.admits(address, client))
}

#[test]
fn decisions() {
    let web = workload("");
    let client = identity("shop-client", "shop");
    let other = identity("other", "shop");
    struct Case {
        name: &'static str,
        edit: fn(&mut Objects),
        port: u16,
        server: ServerRef,
        protocol: Protocol,
        /// (address, identity, admitted)
        clients: &'static [(&'static str, Option<&'static str>, bool)],
    }
    // Identities are filled in below: "client" and "other" stand for them.
    let cases = [
        Case {
            name: "one identity allowed",
            edit: |_| {},
            port: 8080,
            server: ServerRef::Server("web-http".into()),
            protocol: Protocol::Http1,
            clients: &[
                ("10.1.1.1", Some("client"), true),
                ("10.1.1.1", Some("other"), false),
                ("10.1.1.1", None, false),
            ],
        },
        Case {
            name: "a port nobody selects gets the default",
            edit: |_| {},
            port: 9000,
            server: ServerRef::Default(DefaultPolicy::AllUnauthenticated),
            protocol: Protocol::Detect(DETECT_TIMEOUT),
            clients: &[("8.8.8.8", None, true)],
        },
        Case {
            name: "a Server without policies denies everything",
            edit: |objects| objects.policies.clear(),
            port: 8080,
            server: ServerRef::Server("web-http".into()),
            protocol: Protocol::Http1,
            clients: &[
                ("10.1.1.1", Some("client"), false),
                ("127.0.0.1", None, false),
            ],
        },
        Case {
            name: "accessPolicy all-authenticated admits any identity",
            edit: |objects| {
                objects.policies.clear();
                objects.servers[0].spec.access_policy = Some("all-authenticated".into());
            },
            port: 8080,
            server: ServerRef::Server("web-http".into()),
            protocol: Protocol::Http1,
            clients: &[("10.1.1.1", Some("other"), true), ("10.1.1.1", None, false)],
        },
        Case {
            name: "MeshTLS and Network together: both",
            edit: |objects| {
                objects.policies = vec![policy(
                    "both",
                    SERVER_REF,
                    &format!("[{MESH_REF}, {NET_REF}]"),
                )];
            },
            port: 8080,
            server: ServerRef::Server("web-http".into()),
            protocol: Protocol::Http1,
            clients: &[
                ("192.168.1.1", Some("client"), true),
                ("192.168.9.1", Some("client"), false),
                ("10.1.1.1", Some("client"), false),
                ("192.168.1.1", None, false),
            ],
        },
        Case {
            name: "Network alone admits unauthenticated clients of the network",
            edit: |objects| {
                objects.policies = vec![policy("office", SERVER_REF, &format!("[{NET_REF}]"))];
            },
            port: 8080,
            server: ServerRef::Server("web-http".into()),
            protocol: Protocol::Http1,
            clients: &[("192.168.1.1", None, true), ("10.0.0.1", None, false)],
        },
        Case {
            name: "a missing authentication: the policy is ignored",
            edit: |objects| objects.mesh_tls.clear(),
            port: 8080,
            server: ServerRef::Server("web-http".into()),
            protocol: Protocol::Http1,
            clients: &[("10.1.1.1", Some("client"), false)],
        },
        Case {
            name: "targetRef Namespace applies to every Server",
            edit: |objects| {
                objects.policies = vec![policy(
                    "ns",
                    "{kind: Namespace, name: shop}",
                    &format!("[{MESH_REF}]"),
                )];
            },
            port: 8080,
            server: ServerRef::Server("web-http".into()),
            protocol: Protocol::Http1,
            clients: &[
                ("10.1.1.1", Some("client"), true),
                ("10.1.1.1", Some("other"), false),
            ],
        },
        Case {
            name: "a policy for another Server does not apply",
            edit: |objects| {
                objects.policies = vec![policy(
                    "elsewhere",
                    "{group: policy.linkerd.io, kind: Server, name: db}",
                    "[]",
                )];
            },
            port: 8080,
            server: ServerRef::Server("web-http".into()),
            protocol: Protocol::Http1,
            clients: &[("10.1.1.1", None, false)],
        },
        Case {
            name: "matchExpressions select by In / NotIn / Exists / DoesNotExist",
            edit: |objects| {
                objects.servers = vec![server(
                    "web-http",
                    "{matchExpressions: [{key: app, operator: In, values: [web, api]}, {key: tier, operator: NotIn, values: [back]}, {key: tier, operator: Exists}, {key: canary, operator: DoesNotExist}]}",
                    "8080",
                    "  proxyProtocol: gRPC\n",
                )];
            },
            port: 8080,
            server: ServerRef::Server("web-http".into()),
            protocol: Protocol::Grpc,
            clients: &[("10.1.1.1", Some("client"), true)],
        },
        Case {
            name: "a selector that does not match leaves the default",
            edit: |objects| {
                objects.servers = vec![server(
                    "web-http",
                    "{matchExpressions: [{key: canary, operator: Exists}]}",
                    "8080",
                    "",
                )];
            },
            port: 8080,
            server: ServerRef::Default(DefaultPolicy::AllUnauthenticated),
            protocol: Protocol::Detect(DETECT_TIMEOUT),
            clients: &[("8.8.8.8", None, true)],
        },
        Case {
            name: "two Servers on one port: the first wins",
            edit: |objects| {
                objects.servers.push(server(
                    "web-opaque",
                    "{}",
                    "8080",
                    "  proxyProtocol: opaque\n  accessPolicy: all-unauthenticated\n",
                ));
            },
            port: 8080,
            server: ServerRef::Server("web-http".into()),
            protocol: Protocol::Http1,
            clients: &[("10.1.1.1", None, false)],
        },
        Case {
            name: "an empty podSelector selects the namespace's workloads",
            edit: |objects| {
                objects.servers = vec![server(
                    "all-admin",
                    "{}",
                    "9000",
                    "  proxyProtocol: TLS\n  accessPolicy: audit\n",
                )];
            },
            port: 9000,
            server: ServerRef::Server("all-admin".into()),
            protocol: Protocol::Tls,
            clients: &[("8.8.8.8", None, true)],
        },
        Case {
            name: "ServiceAccount ref: that account's identity",
            edit: |objects| {
                objects.policies = vec![policy(
                    "sa",
                    SERVER_REF,
                    "[{kind: ServiceAccount, name: shop-client}]",
                )];
            },
            port: 8080,
            server: ServerRef::Server("web-http".into()),
            protocol: Protocol::Http1,
            clients: &[
                ("10.1.1.1", Some("client"), true),
                ("10.1.1.1", Some("other"), false),
            ],
        },
        Case {
            name: "identityRefs Namespace and wildcard suffix",
            edit: |objects| {
                objects.mesh_tls = vec![mesh_tls(
                    "clients",
                    "{identityRefs: [{kind: Namespace, name: shop}]}",
                )];
            },
            port: 8080,
            server: ServerRef::Server("web-http".into()),
            protocol: Protocol::Http1,
            clients: &[
                ("10.1.1.1", Some("client"), true),
                ("10.1.1.1", Some("other"), true),
                ("10.1.1.1", None, false),
            ],
        },
    ];
    for case in cases {
        let mut objects = base();
        (case.edit)(&mut objects);
        let answer = objects.decide(Some(&web), case.port, DefaultPolicy::AllUnauthenticated);
        assert_eq!(answer.server, case.server, "{}", case.name);
        assert_eq!(answer.protocol, case.protocol, "{}", case.name);
        for (address, who, expected) in case.clients {
            let who = who.map(|who| {
                if who == "client" {
                    client.as_str()
                } else {
                    other.as_str()
                }
            });
            assert_eq!(
                admitted(&answer, address, who),
                *expected,
                "{}: {address} {who:?}",
                case.name
            );
        }
    }
}

#[test]
fn shadowed_servers_and_ignored_policies_are_noted() {
    let web = workload("");
    let mut objects = base();
    objects.servers.push(server("web-too", "{}", "http", ""));
    objects.mesh_tls.clear();
    let answer = objects.decide(Some(&web), 8080, DefaultPolicy::AllUnauthenticated);
    assert_eq!(answer.notes.len(), 2, "{:?}", answer.notes);
    assert!(answer.notes[0].contains("web-too"));
    assert!(answer.notes[1].contains("MeshTLSAuthentication shop/clients does not exist"));
}

#[test]
fn default_policies() {
    let cluster = cluster();
    let any = ClientAuthentication::MeshTls(vec![IdentityMatch::Suffix(Vec::new())]);
    let all = vec![
        NetworkMatch::all(Cidr::ALL_V4),
        NetworkMatch::all(Cidr::ALL_V6),
    ];
    let in_cluster: Vec<NetworkMatch> = cluster.iter().copied().map(NetworkMatch::all).collect();
    let cases = [
        (
            DefaultPolicy::AllUnauthenticated,
            Some((all.clone(), ClientAuthentication::Unauthenticated)),
        ),
        (
            DefaultPolicy::AllAuthenticated,
            Some((all.clone(), any.clone())),
        ),
        (
            DefaultPolicy::ClusterUnauthenticated,
            Some((in_cluster.clone(), ClientAuthentication::Unauthenticated)),
        ),
        (DefaultPolicy::ClusterAuthenticated, Some((in_cluster, any))),
        (DefaultPolicy::Deny, None),
        (
            DefaultPolicy::Audit,
            Some((all, ClientAuthentication::Unauthenticated)),
        ),
    ];
    for (policy, expected) in cases {
        let authorizations = default_authorizations(policy, &cluster);
        match expected {
            None => assert!(authorizations.is_empty(), "{policy}"),
            Some((networks, authentication)) => {
                assert_eq!(authorizations.len(), 1, "{policy}");
                assert_eq!(
                    authorizations[0].reference,
                    AuthorizationRef::Default(policy)
                );
                assert_eq!(authorizations[0].networks, networks, "{policy}");
                assert_eq!(authorizations[0].authentication, authentication, "{policy}");
            }
        }
        assert_eq!(DefaultPolicy::parse(policy.as_str()), Ok(policy));
    }
    assert!(DefaultPolicy::parse("allow").is_err());
}

#[test]
fn workload_annotations_choose_the_default_and_opaque_ports() {
    let objects = Objects::default();
    let cases = [
        (
            "",
            DefaultPolicy::AllUnauthenticated,
            Protocol::Detect(DETECT_TIMEOUT),
            0,
        ),
        (
            "config.linkerd.io/default-inbound-policy: deny",
            DefaultPolicy::Deny,
            Protocol::Detect(DETECT_TIMEOUT),
            0,
        ),
        (
            "config.linkerd.io/default-inbound-policy: cluster-authenticated",
            DefaultPolicy::ClusterAuthenticated,
            Protocol::Detect(DETECT_TIMEOUT),
            0,
        ),
        (
            "config.linkerd.io/default-inbound-policy: bogus",
            DefaultPolicy::AllUnauthenticated,
            Protocol::Detect(DETECT_TIMEOUT),
            1,
        ),
        (
            "config.linkerd.io/opaque-ports: '8000-8100'",
            DefaultPolicy::AllUnauthenticated,
            Protocol::Opaque,
            0,
        ),
    ];
    for (annotations, policy, protocol, notes) in cases {
        let web = workload(annotations);
        let answer = objects.decide(Some(&web), 8080, DefaultPolicy::AllUnauthenticated);
        assert_eq!(answer.server, ServerRef::Default(policy), "{annotations}");
        assert_eq!(answer.protocol, protocol, "{annotations}");
        assert_eq!(answer.notes.len(), notes, "{annotations}");
    }
    // An unknown workload gets the controller's default.
    let answer = objects.decide(None, 8080, DefaultPolicy::Audit);
    assert_eq!(answer.server, ServerRef::Default(DefaultPolicy::Audit));
}

#[test]
fn route_policies_attach_to_their_route() {
    let web = workload("");
    let mut objects = base();
    objects.routes = vec![
        ServerRoute {
            namespace: "shop".into(),
            server: "web-http".into(),
            kind: RouteKind::Http,
            name: "metrics".into(),
        },
        ServerRoute {
            namespace: "shop".into(),
            server: "other".into(),
            kind: RouteKind::Http,
            name: "elsewhere".into(),
        },
    ];
    objects.policies.push(policy(
        "metrics-from-office",
        "{group: policy.linkerd.io, kind: HTTPRoute, name: metrics}",
        &format!("[{NET_REF}]"),
    ));
    let answer = objects.decide(Some(&web), 8080, DefaultPolicy::AllUnauthenticated);
    assert_eq!(answer.routes.len(), 1);
    assert_eq!(answer.routes[0].name, "metrics");
    assert_eq!(answer.routes[0].authorizations.len(), 1);
    assert_eq!(
        answer.routes[0].authorizations[0].reference,
        AuthorizationRef::Policy("metrics-from-office".into())
    );
    // The server-level authorizations are only the Server's policy.
    assert_eq!(answer.authorizations.len(), 1);
}

#[test]
fn validation_names_the_field() {
    let cases: Vec<(MeshObject, &str)> = vec![
        (MeshObject::from(server("s", "{}", "0", "")), "spec.port"),
        (
            MeshObject::from(server("s", "{}", "http", "  accessPolicy: allow\n")),
            "spec.accessPolicy",
        ),
        (
            MeshObject::from(server(
                "s",
                "{matchExpressions: [{key: a, operator: In}]}",
                "80",
                "",
            )),
            "spec.podSelector.matchExpressions[0].values",
        ),
        (
            MeshObject::from(policy("p", "{kind: Pod, name: x}", "[]")),
            "spec.targetRef.kind",
        ),
        (
            MeshObject::from(policy("p", "{kind: Server, name: x}", "[]")),
            "spec.targetRef.group",
        ),
        (
            MeshObject::from(policy(
                "p",
                SERVER_REF,
                &format!("[{MESH_REF}, {{kind: ServiceAccount, name: a}}]"),
            )),
            "spec.requiredAuthenticationRefs[1].kind",
        ),
        (
            MeshObject::from(mesh_tls("m", "{identities: []}")),
            "spec.identities",
        ),
        (
            MeshObject::from(mesh_tls("m", "{identities: ['a..b']}")),
            "spec.identities[0]",
        ),
        (
            MeshObject::from(network("n", "[{cidr: 10.0.0.0/40}]")),
            "spec.networks[0].cidr",
        ),
        (
            MeshObject::from(network("n", "[{cidr: 10.0.0.0/8, except: [nope]}]")),
            "spec.networks[0].except[0]",
        ),
    ];
    for (object, field) in cases {
        let error = object.validate().expect_err(field);
        assert_eq!(error.field, field, "{error}");
    }
    assert!(server("s", "{}", "http", "").validate().is_ok());
    assert!(base().policies[0].validate().is_ok());
}

#[test]
fn cidrs() {
    let cases: &[(&str, &str, bool)] = &[
        ("10.0.0.0/8", "10.200.1.1", true),
        ("10.0.0.0/8", "11.0.0.1", false),
        ("0.0.0.0/0", "8.8.8.8", true),
        ("0.0.0.0/0", "::1", false),
        ("fd00::/8", "fd12::1", true),
        ("127.0.0.1", "127.0.0.1", true),
        ("127.0.0.1", "127.0.0.2", false),
    ];
    for (cidr, address, expected) in cases {
        let cidr = Cidr::parse(cidr).unwrap();
        assert_eq!(
            cidr.contains(address.parse().unwrap()),
            *expected,
            "{cidr} {address}"
        );
    }
    for bad in ["10.0.0.0/33", "nope", "::/129", "10.0.0.0/x"] {
        assert!(Cidr::parse(bad).is_err(), "{bad}");
    }
}
