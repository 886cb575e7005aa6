use super::*;
use crate::api::AuthzEntry;

fn entry(kind: &str, name: &str, route: Option<&str>, clients: &[&str]) -> AuthzEntry {
    AuthzEntry {
        kind: kind.into(),
        name: name.into(),
        route: route.map(str::to_string),
        clients: clients.iter().map(|client| client.to_string()).collect(),
    }
}

fn port(
    port: u16,
    name: Option<&str>,
    server: Option<&str>,
    entries: Vec<AuthzEntry>,
) -> PortAuthz {
    PortAuthz {
        port,
        port_name: name.map(str::to_string),
        server: server.map(str::to_string),
        protocol: "http1".into(),
        authorizations: entries,
        routes: Vec::new(),
    }
}

/// A Server with a policy per route and one for the whole Server, a port
/// under the default policy, and a port nothing is authorized on.
fn answer() -> AuthzResponse {
    AuthzResponse {
        namespace: "demo".into(),
        workload: "web".into(),
        default_policy: "all-unauthenticated".into(),
        ports: vec![
            port(7000, None, Some("web-admin"), Vec::new()),
            port(
                8080,
                Some("http"),
                Some("web-http"),
                vec![
                    entry(
                        "AuthorizationPolicy",
                        "web-clients",
                        None,
                        &[
                            "identity traffic.demo.serviceaccount.identity.weft.cluster.local",
                            "network 10.0.0.0/8",
                        ],
                    ),
                    entry(
                        "AuthorizationPolicy",
                        "books-readers",
                        Some("books-get"),
                        &["service-account demo/books"],
                    ),
                ],
            ),
            port(
                9090,
                None,
                None,
                vec![entry(
                    "default",
                    "all-unauthenticated",
                    None,
                    &["unauthenticated"],
                )],
            ),
        ],
    }
}

#[test]
fn one_line_per_authorization() {
    assert_eq!(
        render(&answer(), false),
        "PORT        SERVER                        ROUTE       AUTHORIZATION                       CLIENTS\n\
         7000        web-admin                     -           -                                   -\n\
         8080/http   web-http                      *           authorizationpolicy/web-clients     identity traffic.demo.serviceaccount.identity.weft.cluster.local, network 10.0.0.0/8\n\
         8080/http   web-http                      books-get   authorizationpolicy/books-readers   service-account demo/books\n\
         9090        default:all-unauthenticated   *           default:all-unauthenticated         unauthenticated\n"
    );
    let wide = render(&answer(), true);
    assert!(
        wide.starts_with("PORT        SERVER                        PROTOCOL   ROUTE"),
        "{wide}"
    );
    assert!(
        wide.lines()
            .nth(1)
            .unwrap()
            .contains("web-admin                     http1      -"),
        "{wide}"
    );
}

#[test]
fn default_servers_name_their_policy() {
    // (server, authorizations, the workload's default policy, SERVER)
    let cases = [
        (Some("web-http"), vec![], "deny", "web-http"),
        (None, vec![], "deny", "default:deny"),
        (None, vec![], "deny (annotation)", "default:deny"),
        (
            None,
            vec![entry(
                "default",
                "cluster-authenticated",
                None,
                &["authenticated"],
            )],
            "all-unauthenticated",
            "default:cluster-authenticated",
        ),
        (
            None,
            vec![entry("default", "audit", None, &[])],
            "audit",
            "default:audit",
        ),
    ];
    for (server, entries, default_policy, expected) in cases {
        let port = port(8080, None, server, entries);
        assert_eq!(server_cell(&port, default_policy), expected, "{port:?}");
    }
}

#[test]
fn workload_arguments() {
    for (argument, expected) in [
        ("web", Some("web")),
        ("workload/web", Some("web")),
        ("wl/web", Some("web")),
        ("deploy/web", Some("web")),
        ("svc/web", None),
        ("workload/", None),
        ("ns/demo", None),
    ] {
        let name = workload_name(argument).ok();
        assert_eq!(name.as_deref(), expected, "{argument}");
    }
}
