//! Pure header and request-target decisions: hop-by-hop headers (RFC 9110
//! §7.6.1), authorities, explicit proxy targets, gRPC and upgrade detection.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Uri};

/// Headers that describe one connection, never forwarded. Names, not
/// strings, so removing them costs no parsing per request.
const HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Removes hop-by-hop headers, including every header the `Connection`
/// header names. With `keep_upgrade`, `Connection: upgrade` and `Upgrade`
/// stay so the next hop can switch protocols too. With `keep_te_trailers`,
/// `TE: trailers` stays (HTTP/2 allows exactly that value; gRPC needs it).
pub(crate) fn strip_hop_by_hop(
    headers: &mut HeaderMap,
    keep_upgrade: bool,
    keep_te_trailers: bool,
) {
    // One pass over the names (comparisons, no hashing) instead of a lookup
    // per hop-by-hop name: most messages have none.
    if !headers.keys().any(|name| HOP_BY_HOP.contains(name)) {
        return;
    }
    // Headers the Connection header names, beyond the usual `keep-alive`,
    // `close` and `upgrade` tokens (which need no extra work).
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|token| {
            !CONNECTION_OPTIONS
                .iter()
                .any(|option| token.eq_ignore_ascii_case(option))
        })
        .filter_map(|token| HeaderName::from_bytes(token.as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    let te_trailers = keep_te_trailers
        && headers
            .get_all(header::TE)
            .iter()
            .any(|value| value.as_bytes().eq_ignore_ascii_case(b"trailers"));
    let upgrade = if keep_upgrade {
        headers.remove(header::UPGRADE)
    } else {
        None
    };
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    if let Some(upgrade) = upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, upgrade);
    }
    if te_trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

/// Headers only a peer proxy speaking for a verified client may send: who
/// the client is, where to route, how the request crossed the HTTP/2 hop.
const MESH_HEADERS: [HeaderName; 4] = [
    HeaderName::from_static("l5d-client-id"),
    HeaderName::from_static("l5d-dst-override"),
    HeaderName::from_static("l5d-orig-proto"),
    HeaderName::from_static("l5d-orig-header-case"),
];

/// Removes the mesh's own headers from a request of a client without a
/// verified mesh identity, so none of them reaches the app or steers the
/// proxy.
pub(crate) fn strip_mesh_headers(headers: &mut HeaderMap) {
    // One pass over the names first: nearly every request has none.
    if !headers.keys().any(|name| MESH_HEADERS.contains(name)) {
        return;
    }
    for name in &MESH_HEADERS {
        headers.remove(name);
    }
}

/// Removes every `name` header, finding it by one pass over the names
/// (comparisons, no hashing): cheaper than a lookup for a header that is
/// nearly always absent.
pub(crate) fn remove_rare(headers: &mut HeaderMap, name: &HeaderName) -> Option<HeaderValue> {
    if headers.keys().any(|present| present == name) {
        headers.remove(name)
    } else {
        None
    }
}

/// Whether the request has more than one `Host` header line, which a
/// server must refuse (RFC 9112 §3.2): two hops could each pick another.
pub(crate) fn has_duplicate_host(headers: &HeaderMap) -> bool {
    headers.get_all(header::HOST).iter().nth(1).is_some()
}

/// Connection tokens that are options rather than header names.
const CONNECTION_OPTIONS: [&str; 4] = ["keep-alive", "close", "upgrade", ""];

/// Whether the request asks to switch protocols (WebSocket and friends).
pub(crate) fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
}

/// Whether a request is gRPC (its content type says so).
pub(crate) fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc"))
}

/// The gRPC status header: a name, so looking it up parses nothing.
const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");

/// The `grpc-status` in a header map, if any.
pub(crate) fn grpc_status_of(headers: &HeaderMap) -> Option<u32> {
    headers.get(GRPC_STATUS)?.to_str().ok()?.trim().parse().ok()
}

/// The request's authority: the URI's (absolute-form, HTTP/2 `:authority`)
/// or the `Host` header's.
pub(crate) fn authority_of<'a>(uri: &'a Uri, headers: &'a HeaderMap) -> Option<&'a str> {
    if let Some(authority) = uri.authority() {
        return Some(authority.as_str());
    }
    headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .filter(|host| !host.is_empty())
}

/// The header naming the logical service a peer proxy routed a request to.
const L5D_DST_CANONICAL: HeaderName = HeaderName::from_static("l5d-dst-canonical");

/// The service an inbound request names, as `(host, port)`: the peer
/// proxy's `l5d-dst-canonical`, else the request's authority; port 80 when
/// it names none. `None` when neither parses as an authority.
pub(crate) fn logical_name(uri: &Uri, headers: &HeaderMap) -> Option<(String, u16)> {
    let named = headers
        .get(L5D_DST_CANONICAL)
        .and_then(|value| value.to_str().ok())
        .filter(|value| !value.is_empty())
        .or_else(|| authority_of(uri, headers))?;
    let authority: http::uri::Authority = named.parse().ok()?;
    Some((
        authority.host().to_string(),
        authority.port_u16().unwrap_or(80),
    ))
}

/// An authority as a metric label: always `host:port` (port 80 when the
/// request names none).
pub(crate) fn authority_label(authority: &str) -> String {
    if has_port(authority) {
        authority.to_string()
    } else {
        format!("{authority}:80")
    }
}

fn has_port(authority: &str) -> bool {
    match authority.rfind(':') {
        Some(colon) => !authority[colon..].contains(']'),
        None => false,
    }
}

/// Where an explicit proxy request goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ExplicitTarget {
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
    /// `host:port` as the client wrote it (plus the default port).
    pub authority: String,
}

/// Why a request on the explicit listener names no usable target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ExplicitTargetError {
    /// An origin-form request (`GET /path`) sent to the proxy port.
    #[error(
        "not a proxy request: use an absolute URI (GET http://host:port/path) or CONNECT host:port"
    )]
    NotProxyRequest,
    /// CONNECT without a port.
    #[error("CONNECT target must be host:port")]
    ConnectWithoutPort,
    /// A scheme the proxy cannot originate (e.g. https in absolute form).
    #[error("unsupported scheme in proxy request: use CONNECT for TLS")]
    UnsupportedScheme,
}

/// The target of an explicit HTTP proxy request: absolute-form
/// (`GET http://host:port/path`) or `CONNECT host:port`.
pub(crate) fn explicit_target(
    method: &Method,
    uri: &Uri,
    is_http2: bool,
) -> Result<ExplicitTarget, ExplicitTargetError> {
    let authority = uri
        .authority()
        .ok_or(ExplicitTargetError::NotProxyRequest)?;
    let port = if method == Method::CONNECT {
        authority
            .port_u16()
            .ok_or(ExplicitTargetError::ConnectWithoutPort)?
    } else {
        // An HTTP/2 request always carries scheme and authority; its scheme
        // is the client's view of the hop, so only port defaults apply.
        match (uri.scheme_str(), is_http2) {
            (Some("http"), _) | (_, true) => authority.port_u16().unwrap_or(80),
            (None, false) => return Err(ExplicitTargetError::NotProxyRequest),
            _ => return Err(ExplicitTargetError::UnsupportedScheme),
        }
    };
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let authority = if authority.port_u16().is_some() {
        authority.as_str().to_string()
    } else {
        format!("{}:{port}", authority.as_str())
    };
    Ok(ExplicitTarget {
        host,
        port,
        authority,
    })
}

/// The origin-form of a URI (`/path?query`), for forwarding an absolute-form
/// proxy request to an origin server.
pub(crate) fn origin_form(uri: &Uri) -> Uri {
    let path = uri
        .path_and_query()
        .map(|path| path.as_str())
        .filter(|path| !path.is_empty())
        .unwrap_or("/");
    path.parse().unwrap_or_else(|_| Uri::from_static("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request's URI and headers, and the name expected of them.
    type NameCase<'a> = (&'a Uri, &'a [(&'a str, &'a str)], Option<(&'a str, u16)>);

    #[test]
    fn logical_name_table() {
        let absolute: Uri = "http://web.shop.svc.cluster.local:8080/x".parse().unwrap();
        let origin: Uri = "/x".parse().unwrap();
        let table: [NameCase<'_>; 7] = [
            // The peer proxy's name wins over the authority.
            (
                &origin,
                &[
                    ("l5d-dst-canonical", "web.shop.svc.cluster.local:80"),
                    ("host", "10.0.0.1:8080"),
                ],
                Some(("web.shop.svc.cluster.local", 80)),
            ),
            (
                &origin,
                &[("host", "books.demo.svc.cluster.local")],
                Some(("books.demo.svc.cluster.local", 80)),
            ),
            (&origin, &[("host", "books:7000")], Some(("books", 7000))),
            (
                &absolute,
                &[("host", "other")],
                Some(("web.shop.svc.cluster.local", 8080)),
            ),
            (&origin, &[("host", "[::1]:81")], Some(("[::1]", 81))),
            (
                &origin,
                &[("l5d-dst-canonical", ""), ("host", "a:1")],
                Some(("a", 1)),
            ),
            (&origin, &[("host", "bad host")], None),
        ];
        for (uri, pairs, expected) in table {
            let found = logical_name(uri, &headers(pairs));
            let found = found.as_ref().map(|(host, port)| (host.as_str(), *port));
            assert_eq!(found, expected, "{uri} {pairs:?}");
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn names(map: &HeaderMap) -> Vec<String> {
        let mut names: Vec<String> = map.keys().map(|name| name.to_string()).collect();
        names.sort();
        names
    }

    #[test]
    fn hop_by_hop_table() {
        type Case<'a> = (&'a [(&'a str, &'a str)], bool, bool, &'a [&'a str]);
        let table: &[Case<'_>] = &[
            (
                &[
                    ("connection", "keep-alive, x-private"),
                    ("keep-alive", "timeout=5"),
                    ("x-private", "1"),
                    ("proxy-connection", "keep-alive"),
                    ("transfer-encoding", "chunked"),
                    ("te", "gzip"),
                    ("host", "a"),
                ],
                false,
                false,
                &["host"],
            ),
            (
                &[
                    ("connection", "Upgrade"),
                    ("upgrade", "websocket"),
                    ("host", "a"),
                ],
                true,
                false,
                &["connection", "host", "upgrade"],
            ),
            (
                &[("connection", "upgrade"), ("upgrade", "websocket")],
                false,
                false,
                &[],
            ),
            (
                &[("te", "trailers"), ("content-type", "application/grpc")],
                false,
                true,
                &["content-type", "te"],
            ),
            (&[("te", "trailers")], false, false, &[]),
        ];
        for (input, keep_upgrade, keep_te, expected) in table {
            let mut map = headers(input);
            strip_hop_by_hop(&mut map, *keep_upgrade, *keep_te);
            assert_eq!(names(&map), *expected, "{input:?}");
        }
    }

    #[test]
    fn mesh_headers_and_duplicate_hosts() {
        let mut map = headers(&[
            (
                "L5d-Client-Id",
                "web.shop.serviceaccount.identity.weft.cluster.local",
            ),
            ("l5d-dst-override", "admin:4191"),
            ("l5d-orig-proto", "HTTP/1.1"),
            ("l5d-orig-header-case", "X-Forged"),
            ("l5d-request-id", "kept"),
            ("host", "a"),
        ]);
        strip_mesh_headers(&mut map);
        assert_eq!(names(&map), ["host", "l5d-request-id"]);
        let table: &[(&[(&str, &str)], bool)] = &[
            (&[("host", "a")], false),
            (&[], false),
            (&[("host", "a"), ("Host", "b")], true),
            (&[("host", "a"), ("host", "a")], true),
        ];
        for (input, expected) in table {
            assert_eq!(has_duplicate_host(&headers(input)), *expected, "{input:?}");
        }
    }

    #[test]
    fn rare_headers_are_removed_with_every_value() {
        let mut map = headers(&[
            ("l5d-client-id", "a"),
            ("L5d-Client-Id", "b"),
            ("host", "x"),
        ]);
        let name = HeaderName::from_static("l5d-client-id");
        assert_eq!(remove_rare(&mut map, &name).unwrap(), "a");
        assert_eq!(names(&map), ["host"]);
        assert!(remove_rare(&mut map, &name).is_none());
    }

    #[test]
    fn upgrade_and_grpc_detection() {
        assert!(wants_upgrade(&headers(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket")
        ])));
        assert!(!wants_upgrade(&headers(&[("upgrade", "websocket")])));
        assert!(!wants_upgrade(&headers(&[("connection", "upgrade")])));
        assert!(is_grpc(&headers(&[(
            "content-type",
            "application/grpc+proto"
        )])));
        assert!(!is_grpc(&headers(&[("content-type", "application/json")])));
    }

    #[test]
    fn authorities() {
        let uri: Uri = "/path".parse().unwrap();
        assert_eq!(
            authority_of(&uri, &headers(&[("host", "web:8080")])),
            Some("web:8080")
        );
        let absolute: Uri = "http://api.example:81/x".parse().unwrap();
        assert_eq!(
            authority_of(&absolute, &headers(&[("host", "other")])),
            Some("api.example:81")
        );
        assert_eq!(authority_of(&uri, &HeaderMap::new()), None);
        let labels = [
            ("web", "web:80"),
            ("web:8080", "web:8080"),
            ("[::1]", "[::1]:80"),
            ("[::1]:90", "[::1]:90"),
        ];
        for (input, expected) in labels {
            assert_eq!(authority_label(input), expected);
        }
    }

    #[test]
    fn explicit_targets() {
        let ok = |host: &str, port: u16, authority: &str| {
            Ok(ExplicitTarget {
                host: host.to_string(),
                port,
                authority: authority.to_string(),
            })
        };
        let table: &[(
            Method,
            &str,
            bool,
            Result<ExplicitTarget, ExplicitTargetError>,
        )] = &[
            (
                Method::GET,
                "http://web:8080/x",
                false,
                ok("web", 8080, "web:8080"),
            ),
            (Method::GET, "http://web/x", false, ok("web", 80, "web:80")),
            (
                Method::GET,
                "http://[::1]:9/x",
                false,
                ok("::1", 9, "[::1]:9"),
            ),
            (Method::CONNECT, "db:5432", false, ok("db", 5432, "db:5432")),
            (
                Method::CONNECT,
                "db",
                false,
                Err(ExplicitTargetError::ConnectWithoutPort),
            ),
            (
                Method::GET,
                "/x",
                false,
                Err(ExplicitTargetError::NotProxyRequest),
            ),
            (
                Method::GET,
                "https://web/x",
                false,
                Err(ExplicitTargetError::UnsupportedScheme),
            ),
            (
                Method::GET,
                "https://web:8443/x",
                true,
                ok("web", 8443, "web:8443"),
            ),
        ];
        for (method, uri, is_http2, expected) in table {
            let uri: Uri = uri.parse().unwrap();
            assert_eq!(
                &explicit_target(method, &uri, *is_http2),
                expected,
                "{method} {uri}"
            );
        }
    }

    #[test]
    fn origin_forms() {
        let table = [
            ("http://a:1/x?y=1", "/x?y=1"),
            ("http://a:1", "/"),
            ("/already", "/already"),
        ];
        for (input, expected) in table {
            assert_eq!(origin_form(&input.parse().unwrap()).to_string(), expected);
        }
    }
}
