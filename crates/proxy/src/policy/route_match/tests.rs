use http::{HeaderMap, Method, Uri};
use linkerd2_proxy_api::{grpc_route as grpc_proto, http_route as http_proto, http_types};

use super::*;

fn path_exact(path: &str) -> http_proto::PathMatch {
    http_proto::PathMatch {
        kind: Some(http_proto::path_match::Kind::Exact(path.into())),
    }
}

fn path_prefix(path: &str) -> http_proto::PathMatch {
    http_proto::PathMatch {
        kind: Some(http_proto::path_match::Kind::Prefix(path.into())),
    }
}

fn path_regex(path: &str) -> http_proto::PathMatch {
    http_proto::PathMatch {
        kind: Some(http_proto::path_match::Kind::Regex(path.into())),
    }
}

fn header_exact(name: &str, value: &str) -> http_proto::HeaderMatch {
    http_proto::HeaderMatch {
        name: name.into(),
        value: Some(http_proto::header_match::Value::Exact(value.into())),
    }
}

fn header_regex(name: &str, value: &str) -> http_proto::HeaderMatch {
    http_proto::HeaderMatch {
        name: name.into(),
        value: Some(http_proto::header_match::Value::Regex(value.into())),
    }
}

fn query_exact(name: &str, value: &str) -> http_proto::QueryParamMatch {
    http_proto::QueryParamMatch {
        name: name.into(),
        value: Some(http_proto::query_param_match::Value::Exact(value.into())),
    }
}

fn query_regex(name: &str, value: &str) -> http_proto::QueryParamMatch {
    http_proto::QueryParamMatch {
        name: name.into(),
        value: Some(http_proto::query_param_match::Value::Regex(value.into())),
    }
}

fn http_match(
    path: Option<http_proto::PathMatch>,
    method: Option<Method>,
    headers: Vec<http_proto::HeaderMatch>,
    query_params: Vec<http_proto::QueryParamMatch>,
) -> HttpRouteMatch {
    convert_http(
        "match",
        http_proto::HttpRouteMatch {
            path,
            headers,
            query_params,
            method: method.map(http_types::HttpMethod::from),
        },
    )
    .expect("valid match")
}

fn request(method: Method, uri: &str, headers: &[(&str, &str)]) -> (Method, Uri, HeaderMap) {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).expect("name"),
            HeaderValue::from_str(value).expect("value"),
        );
    }
    (method, uri.parse().expect("uri"), map)
}

/// One route per entry, one rule with one match, data = its label.
fn routes(matches: Vec<(&'static str, HttpRouteMatch)>) -> Vec<HttpRoute<(), &'static str>> {
    matches
        .into_iter()
        .map(|(label, rule_match)| Route {
            hosts: vec![],
            rules: vec![Rule {
                matches: vec![rule_match],
                data: label,
            }],
            data: (),
        })
        .collect()
}

fn pick(
    routes: &[HttpRoute<(), &'static str>],
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
) -> Option<&'static str> {
    let (method, uri, headers) = request(method, uri, headers);
    let view = RequestView {
        method: &method,
        uri: &uri,
        headers: &headers,
    };
    select_http(routes, &view).map(|selected| selected.rule.data)
}

#[test]
fn single_matches() {
    type Case = (
        &'static str,
        HttpRouteMatch,
        Method,
        &'static str,
        &'static [(&'static str, &'static str)],
        bool,
    );
    let cases: Vec<Case> = vec![
        (
            "exact hit",
            http_match(Some(path_exact("/a")), None, vec![], vec![]),
            Method::GET,
            "/a",
            &[],
            true,
        ),
        (
            "exact miss on longer",
            http_match(Some(path_exact("/a")), None, vec![], vec![]),
            Method::GET,
            "/a/b",
            &[],
            false,
        ),
        (
            "exact ignores query",
            http_match(Some(path_exact("/a")), None, vec![], vec![]),
            Method::GET,
            "/a?x=1",
            &[],
            true,
        ),
        (
            "prefix same",
            http_match(Some(path_prefix("/foo")), None, vec![], vec![]),
            Method::GET,
            "/foo",
            &[],
            true,
        ),
        (
            "prefix segment",
            http_match(Some(path_prefix("/foo")), None, vec![], vec![]),
            Method::GET,
            "/foo/bar",
            &[],
            true,
        ),
        (
            "prefix not partial segment",
            http_match(Some(path_prefix("/foo")), None, vec![], vec![]),
            Method::GET,
            "/foobar",
            &[],
            false,
        ),
        (
            "prefix trailing slash",
            http_match(Some(path_prefix("/foo/")), None, vec![], vec![]),
            Method::GET,
            "/foo",
            &[],
            true,
        ),
        (
            "prefix root",
            http_match(Some(path_prefix("/")), None, vec![], vec![]),
            Method::GET,
            "/anything/at/all",
            &[],
            true,
        ),
        (
            "regex anchored hit",
            http_match(Some(path_regex("/users/[0-9]+")), None, vec![], vec![]),
            Method::GET,
            "/users/42",
            &[],
            true,
        ),
        (
            "regex anchored miss",
            http_match(Some(path_regex("/users/[0-9]+")), None, vec![], vec![]),
            Method::GET,
            "/users/42/x",
            &[],
            false,
        ),
        (
            "regex alternation anchored",
            http_match(Some(path_regex("/a|/b")), None, vec![], vec![]),
            Method::GET,
            "/a/x",
            &[],
            false,
        ),
        (
            "regex with own anchors",
            http_match(Some(path_regex("^/a$")), None, vec![], vec![]),
            Method::GET,
            "/a",
            &[],
            true,
        ),
        (
            "method hit",
            http_match(None, Some(Method::POST), vec![], vec![]),
            Method::POST,
            "/",
            &[],
            true,
        ),
        (
            "method miss",
            http_match(None, Some(Method::POST), vec![], vec![]),
            Method::GET,
            "/",
            &[],
            false,
        ),
        (
            "header exact hit",
            http_match(None, None, vec![header_exact("x-user", "alice")], vec![]),
            Method::GET,
            "/",
            &[("x-user", "alice")],
            true,
        ),
        (
            "header exact case-sensitive value",
            http_match(None, None, vec![header_exact("x-user", "alice")], vec![]),
            Method::GET,
            "/",
            &[("x-user", "Alice")],
            false,
        ),
        (
            "header name case-insensitive",
            http_match(None, None, vec![header_exact("X-User", "alice")], vec![]),
            Method::GET,
            "/",
            &[("x-user", "alice")],
            true,
        ),
        (
            "header any value",
            http_match(None, None, vec![header_exact("x-user", "bob")], vec![]),
            Method::GET,
            "/",
            &[("x-user", "alice"), ("x-user", "bob")],
            true,
        ),
        (
            "header missing",
            http_match(None, None, vec![header_exact("x-user", "alice")], vec![]),
            Method::GET,
            "/",
            &[],
            false,
        ),
        (
            "header regex",
            http_match(None, None, vec![header_regex("x-v", "v[12]")], vec![]),
            Method::GET,
            "/",
            &[("x-v", "v2")],
            true,
        ),
        (
            "header regex anchored",
            http_match(None, None, vec![header_regex("x-v", "v[12]")], vec![]),
            Method::GET,
            "/",
            &[("x-v", "v23")],
            false,
        ),
        (
            "all headers required",
            http_match(
                None,
                None,
                vec![header_exact("a", "1"), header_exact("b", "2")],
                vec![],
            ),
            Method::GET,
            "/",
            &[("a", "1")],
            false,
        ),
        (
            "query exact",
            http_match(None, None, vec![], vec![query_exact("q", "1")]),
            Method::GET,
            "/x?a=b&q=1",
            &[],
            true,
        ),
        (
            "query first occurrence",
            http_match(None, None, vec![], vec![query_exact("q", "2")]),
            Method::GET,
            "/x?q=1&q=2",
            &[],
            false,
        ),
        (
            "query no value",
            http_match(None, None, vec![], vec![query_exact("flag", "")]),
            Method::GET,
            "/x?flag",
            &[],
            true,
        ),
        (
            "query missing",
            http_match(None, None, vec![], vec![query_exact("q", "1")]),
            Method::GET,
            "/x",
            &[],
            false,
        ),
        (
            "query regex",
            http_match(None, None, vec![], vec![query_regex("page", "[0-9]+")]),
            Method::GET,
            "/x?page=12",
            &[],
            true,
        ),
        (
            "everything",
            http_match(
                Some(path_prefix("/api")),
                Some(Method::PUT),
                vec![header_exact("a", "1")],
                vec![query_exact("q", "1")],
            ),
            Method::PUT,
            "/api/v1?q=1",
            &[("a", "1")],
            true,
        ),
        (
            "empty match matches all",
            HttpRouteMatch::default(),
            Method::DELETE,
            "/whatever",
            &[],
            true,
        ),
    ];
    for (name, rule_match, method, uri, headers, expected) in cases {
        let table = routes(vec![("hit", rule_match)]);
        assert_eq!(
            pick(&table, method, uri, headers).is_some(),
            expected,
            "{name}"
        );
    }
}

#[test]
fn precedence() {
    type Case = (
        &'static str,
        Vec<(&'static str, HttpRouteMatch)>,
        &'static str,
        &'static [(&'static str, &'static str)],
        Option<&'static str>,
    );
    let cases: Vec<Case> = vec![
        (
            "exact beats prefix",
            vec![
                (
                    "prefix",
                    http_match(Some(path_prefix("/a")), None, vec![], vec![]),
                ),
                (
                    "exact",
                    http_match(Some(path_exact("/a/b")), None, vec![], vec![]),
                ),
            ],
            "/a/b",
            &[],
            Some("exact"),
        ),
        (
            "longest prefix wins",
            vec![
                (
                    "short",
                    http_match(Some(path_prefix("/a")), None, vec![], vec![]),
                ),
                (
                    "long",
                    http_match(Some(path_prefix("/a/b")), None, vec![], vec![]),
                ),
            ],
            "/a/b/c",
            &[],
            Some("long"),
        ),
        (
            "prefix beats regex",
            vec![
                (
                    "regex",
                    http_match(Some(path_regex("/a/.*")), None, vec![], vec![]),
                ),
                (
                    "prefix",
                    http_match(Some(path_prefix("/")), None, vec![], vec![]),
                ),
            ],
            "/a/b",
            &[],
            Some("prefix"),
        ),
        (
            "no path is prefix /, so it beats a regex too",
            vec![
                (
                    "regex",
                    http_match(Some(path_regex("/a/.*")), None, vec![], vec![]),
                ),
                ("none", http_match(None, None, vec![], vec![])),
            ],
            "/a/b",
            &[],
            Some("none"),
        ),
        (
            "a header-only match beats a bare prefix / by its header",
            vec![
                (
                    "split",
                    http_match(Some(path_prefix("/")), None, vec![], vec![]),
                ),
                (
                    "canary",
                    http_match(None, None, vec![header_exact("x-canary", "true")], vec![]),
                ),
            ],
            "/books",
            &[("x-canary", "true")],
            Some("canary"),
        ),
        (
            "method after path",
            vec![
                (
                    "plain",
                    http_match(Some(path_prefix("/")), None, vec![], vec![]),
                ),
                (
                    "get",
                    http_match(Some(path_prefix("/")), Some(Method::GET), vec![], vec![]),
                ),
            ],
            "/x",
            &[],
            Some("get"),
        ),
        (
            "path beats method",
            vec![
                (
                    "get",
                    http_match(Some(path_prefix("/")), Some(Method::GET), vec![], vec![]),
                ),
                (
                    "longer",
                    http_match(Some(path_prefix("/x")), None, vec![], vec![]),
                ),
            ],
            "/x",
            &[],
            Some("longer"),
        ),
        (
            "method beats headers",
            vec![
                (
                    "header",
                    http_match(
                        None,
                        None,
                        vec![header_exact("a", "1"), header_exact("b", "1")],
                        vec![],
                    ),
                ),
                ("get", http_match(None, Some(Method::GET), vec![], vec![])),
            ],
            "/",
            &[("a", "1"), ("b", "1")],
            Some("get"),
        ),
        (
            "more headers win",
            vec![
                (
                    "one",
                    http_match(None, None, vec![header_exact("a", "1")], vec![]),
                ),
                (
                    "two",
                    http_match(
                        None,
                        None,
                        vec![header_exact("a", "1"), header_exact("b", "2")],
                        vec![],
                    ),
                ),
            ],
            "/",
            &[("a", "1"), ("b", "2")],
            Some("two"),
        ),
        (
            "headers beat query params",
            vec![
                (
                    "query",
                    http_match(
                        None,
                        None,
                        vec![],
                        vec![query_exact("q", "1"), query_exact("r", "1")],
                    ),
                ),
                (
                    "header",
                    http_match(None, None, vec![header_exact("a", "1")], vec![]),
                ),
            ],
            "/?q=1&r=1",
            &[("a", "1")],
            Some("header"),
        ),
        (
            "more query params win",
            vec![
                (
                    "one",
                    http_match(None, None, vec![], vec![query_exact("q", "1")]),
                ),
                (
                    "two",
                    http_match(
                        None,
                        None,
                        vec![],
                        vec![query_exact("q", "1"), query_exact("r", "1")],
                    ),
                ),
            ],
            "/?q=1&r=1",
            &[],
            Some("two"),
        ),
        (
            "tie keeps the earlier route",
            vec![
                (
                    "first",
                    http_match(Some(path_prefix("/")), None, vec![], vec![]),
                ),
                (
                    "second",
                    http_match(Some(path_prefix("/")), None, vec![], vec![]),
                ),
            ],
            "/x",
            &[],
            Some("first"),
        ),
        (
            "nothing matches",
            vec![(
                "a",
                http_match(Some(path_exact("/a")), None, vec![], vec![]),
            )],
            "/b",
            &[],
            None,
        ),
    ];
    for (name, matches, uri, headers, expected) in cases {
        let table = routes(matches);
        assert_eq!(pick(&table, Method::GET, uri, headers), expected, "{name}");
    }
}

#[test]
fn rules_and_matches_within_a_route() {
    let route: HttpRoute<&str, &str> = Route {
        hosts: vec![],
        rules: vec![
            Rule {
                matches: vec![
                    http_match(Some(path_prefix("/a")), None, vec![], vec![]),
                    http_match(Some(path_exact("/b")), None, vec![], vec![]),
                ],
                data: "rule0",
            },
            Rule {
                matches: vec![http_match(Some(path_prefix("/b")), None, vec![], vec![])],
                data: "rule1",
            },
            Rule {
                matches: vec![],
                data: "catch-all",
            },
        ],
        data: "route",
    };
    let routes = vec![route];
    let cases = [
        ("/a/x", Some(("rule0", 0))),
        // The rule's best match (exact /b) beats rule1's prefix.
        ("/b", Some(("rule0", 0))),
        ("/b/x", Some(("rule1", 1))),
        ("/c", Some(("catch-all", 2))),
    ];
    for (uri, expected) in cases {
        let (method, uri_parsed, headers) = request(Method::GET, uri, &[]);
        let view = RequestView {
            method: &method,
            uri: &uri_parsed,
            headers: &headers,
        };
        let got = select_http(&routes, &view).map(|s| (s.rule.data, s.rule_index));
        assert_eq!(got, expected, "{uri}");
    }
}

/// (URI, headers, expected rule).
type HostCase = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
);

#[test]
fn hosts() {
    let exact = |host: &str| {
        convert_host(
            "hosts[0]",
            http_proto::HostMatch {
                r#match: Some(http_proto::host_match::Match::Exact(host.into())),
            },
        )
        .expect("host")
    };
    let suffix = |labels: &[&str]| {
        convert_host(
            "hosts[0]",
            http_proto::HostMatch {
                r#match: Some(http_proto::host_match::Match::Suffix(
                    http_proto::host_match::Suffix {
                        reverse_labels: labels.iter().map(|l| l.to_string()).collect(),
                    },
                )),
            },
        )
        .expect("host")
    };
    assert_eq!(
        suffix(&["com", "example"]),
        HostMatch::Suffix("example.com".into())
    );
    let route = |hosts: Vec<HostMatch>, label: &'static str| Route {
        hosts,
        rules: vec![Rule {
            matches: vec![],
            data: label,
        }],
        data: (),
    };
    let table = vec![
        route(vec![], "any"),
        route(vec![suffix(&["com", "example"])], "wildcard"),
        route(vec![suffix(&["com", "example", "api"])], "longer wildcard"),
        route(vec![exact("Web.Example.com.")], "exact"),
    ];
    let cases: [HostCase; 7] = [
        ("http://web.example.com/", &[], "exact"),
        ("/", &[("host", "WEB.example.com:8080")], "exact"),
        ("http://x.example.com/", &[], "wildcard"),
        ("http://v1.api.example.com/", &[], "longer wildcard"),
        // A wildcard needs at least one more label.
        ("http://example.com/", &[], "any"),
        ("http://other.org/", &[], "any"),
        ("/", &[], "any"),
    ];
    for (uri, headers, expected) in cases {
        let (method, uri_parsed, headers) = request(Method::GET, uri, headers);
        let view = RequestView {
            method: &method,
            uri: &uri_parsed,
            headers: &headers,
        };
        assert_eq!(
            select_http(&table, &view).map(|s| s.rule.data),
            Some(expected),
            "{uri}"
        );
    }
    // Host matching precedes match precedence.
    let table = vec![
        Route {
            hosts: vec![],
            rules: vec![Rule {
                matches: vec![http_match(Some(path_exact("/a")), None, vec![], vec![])],
                data: "any host, exact path",
            }],
            data: (),
        },
        Route {
            hosts: vec![exact("web.example.com")],
            rules: vec![Rule {
                matches: vec![http_match(Some(path_prefix("/")), None, vec![], vec![])],
                data: "exact host, prefix",
            }],
            data: (),
        },
    ];
    let (method, uri, headers) = request(Method::GET, "http://web.example.com/a", &[]);
    let view = RequestView {
        method: &method,
        uri: &uri,
        headers: &headers,
    };
    assert_eq!(
        select_http(&table, &view).map(|s| s.rule.data),
        Some("exact host, prefix")
    );
}

/// (path, headers, expected rule).
type GrpcCase = (
    &'static str,
    &'static [(&'static str, &'static str)],
    Option<&'static str>,
);

#[test]
fn grpc() {
    let grpc_match = |service: &str, method: &str, headers: Vec<http_proto::HeaderMatch>| {
        convert_grpc(
            "match",
            grpc_proto::GrpcRouteMatch {
                rpc: Some(grpc_proto::GrpcRpcMatch {
                    service: service.into(),
                    method: method.into(),
                }),
                headers,
            },
        )
        .expect("grpc match")
    };
    let route = |rule_match: GrpcRouteMatch, label: &'static str| Route {
        hosts: vec![],
        rules: vec![Rule {
            matches: vec![rule_match],
            data: label,
        }],
        data: (),
    };
    let table = vec![
        route(grpc_match("", "", vec![]), "any"),
        route(grpc_match("", "Get", vec![]), "method only"),
        route(grpc_match("pkg.Users", "", vec![]), "service"),
        route(grpc_match("pkg.Users", "Get", vec![]), "service and method"),
        route(
            grpc_match("pkg.Users", "Get", vec![header_exact("x-canary", "1")]),
            "with header",
        ),
    ];
    let cases: [GrpcCase; 6] = [
        ("/pkg.Users/Get", &[], Some("service and method")),
        ("/pkg.Users/Get", &[("x-canary", "1")], Some("with header")),
        ("/pkg.Users/List", &[], Some("service")),
        ("/pkg.Orders/Get", &[], Some("method only")),
        ("/pkg.Orders/List", &[], Some("any")),
        ("/not-grpc", &[], Some("any")),
    ];
    for (path, headers, expected) in cases {
        let (method, uri, headers) = request(Method::POST, path, headers);
        let view = RequestView {
            method: &method,
            uri: &uri,
            headers: &headers,
        };
        assert_eq!(
            select_grpc(&table, &view).map(|s| s.rule.data),
            expected,
            "{path}"
        );
    }
    let strict = vec![route(grpc_match("pkg.Users", "", vec![]), "service")];
    let (method, uri, headers) = request(Method::POST, "/not-grpc", &[]);
    let view = RequestView {
        method: &method,
        uri: &uri,
        headers: &headers,
    };
    assert!(select_grpc(&strict, &view).is_none());
}

#[test]
fn conversion_errors() {
    let cases: Vec<(&str, http_proto::HttpRouteMatch, &str)> = vec![
        (
            "bad path regex",
            http_proto::HttpRouteMatch {
                path: Some(path_regex("(")),
                ..Default::default()
            },
            "m.path.regex",
        ),
        (
            "path without kind",
            http_proto::HttpRouteMatch {
                path: Some(http_proto::PathMatch { kind: None }),
                ..Default::default()
            },
            "m.path.kind",
        ),
        (
            "bad header name",
            http_proto::HttpRouteMatch {
                headers: vec![header_exact("bad name", "x")],
                ..Default::default()
            },
            "m.headers[0].name",
        ),
        (
            "bad header value",
            http_proto::HttpRouteMatch {
                headers: vec![header_exact("ok", "x"), header_exact("ok", "a\nb")],
                ..Default::default()
            },
            "m.headers[1].exact",
        ),
        (
            "header without value",
            http_proto::HttpRouteMatch {
                headers: vec![http_proto::HeaderMatch {
                    name: "a".into(),
                    value: None,
                }],
                ..Default::default()
            },
            "m.headers[0].value",
        ),
        (
            "bad query regex",
            http_proto::HttpRouteMatch {
                query_params: vec![query_regex("q", "[")],
                ..Default::default()
            },
            "m.query_params[0].regex",
        ),
        (
            "bad method",
            http_proto::HttpRouteMatch {
                method: Some(http_types::HttpMethod {
                    r#type: Some(http_types::http_method::Type::Registered(99)),
                }),
                ..Default::default()
            },
            "m.method",
        ),
        (
            "huge regex",
            http_proto::HttpRouteMatch {
                path: Some(path_regex("(a{1000}){1000}")),
                ..Default::default()
            },
            "m.path.regex",
        ),
    ];
    for (name, proto, field) in cases {
        let error = convert_http("m", proto).expect_err(name);
        assert!(
            error.to_string().starts_with(&format!("{field}:")),
            "{name}: {error}"
        );
    }
}
