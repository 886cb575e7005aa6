//! HTTP/1 between meshed proxies travels as HTTP/2 over the one multiplexed
//! connection per endpoint, marked with `l5d-orig-proto` (Linkerd's
//! "orig-proto" upgrade), and is turned back into HTTP/1 for the app.
//!
//! ```text
//! app ─HTTP/1.1─► outbound: upgrade_request (l5d-orig-proto: HTTP/1.1, version 2,
//!                 authority from Host) ─HTTP/2─► inbound: downgrade_request
//!                 (version 1.1, origin-form + Host) ─HTTP/1.1─► app
//! response:       inbound: upgrade_response (l5d-orig-proto) ─► outbound:
//!                 downgrade_response (header removed, version restored)
//! ```
//!
//! Upgrade and CONNECT requests are never upgraded. Pure functions on heads.

use http::header::{self, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, Uri, Version};

/// The header carrying the original protocol.
pub(crate) const L5D_ORIG_PROTO: HeaderName = HeaderName::from_static("l5d-orig-proto");

/// What an upgraded request was, to undo the upgrade.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Original {
    version: Version,
    /// The URI before an authority was added to it.
    uri: Option<Uri>,
}

/// Marks an HTTP/1 request to travel as HTTP/2: `l5d-orig-proto`, no
/// `transfer-encoding`, the Host as the URI's authority.
pub(crate) fn upgrade_request<B>(request: &mut Request<B>) -> Original {
    let version = request.version();
    let value = if version == Version::HTTP_10 {
        "HTTP/1.0"
    } else {
        "HTTP/1.1"
    };
    let absolute = request.uri().authority().is_some();
    let value = if absolute {
        HeaderValue::from_str(&format!("{value}; absolute-form"))
    } else {
        HeaderValue::from_str(value)
    }
    .expect("a valid header value");
    request.headers_mut().insert(L5D_ORIG_PROTO, value);
    request.headers_mut().remove(header::TRANSFER_ENCODING);
    let mut original_uri = None;
    if !absolute
        && let Some(authority) = request
            .headers()
            .get(header::HOST)
            .and_then(|host| host.to_str().ok())
            .and_then(|host| host.parse::<Authority>().ok())
    {
        let path = request
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        if let Ok(uri) = Uri::builder()
            .scheme(Scheme::HTTP)
            .authority(authority)
            .path_and_query(path)
            .build()
        {
            original_uri = Some(std::mem::replace(request.uri_mut(), uri));
        }
    }
    *request.version_mut() = Version::HTTP_2;
    Original {
        version,
        uri: original_uri,
    }
}

/// Undoes [`upgrade_request`] (the request goes elsewhere unsent).
pub(crate) fn restore_request<B>(request: &mut Request<B>, original: Original) {
    request.headers_mut().remove(L5D_ORIG_PROTO);
    request
        .headers_mut()
        .remove(crate::http::header_case::L5D_ORIG_HEADER_CASE);
    *request.version_mut() = original.version;
    if let Some(uri) = original.uri {
        *request.uri_mut() = uri;
    }
}

/// The response to an upgraded request, back as the client's version.
pub(crate) fn downgrade_response<B>(response: &mut Response<B>, original: Original) {
    response.headers_mut().remove(L5D_ORIG_PROTO);
    *response.version_mut() = original.version;
}

/// Inbound: an HTTP/2 request that was HTTP/1 when it left the peer's app,
/// made HTTP/1 again (origin-form with a Host, unless it was absolute-form).
/// Returns whether it was.
pub(crate) fn downgrade_request<B>(request: &mut Request<B>) -> bool {
    if request.version() != Version::HTTP_2 {
        return false;
    }
    let Some(value) = request.headers_mut().remove(L5D_ORIG_PROTO) else {
        return false;
    };
    let value = value.to_str().unwrap_or_default();
    let (protocol, absolute) = match value.split_once(';') {
        Some((protocol, rest)) => (protocol.trim(), rest.trim() == "absolute-form"),
        None => (value.trim(), false),
    };
    let version = match protocol {
        "HTTP/1.1" => Version::HTTP_11,
        "HTTP/1.0" => Version::HTTP_10,
        other => {
            tracing::debug!(value = other, "unknown l5d-orig-proto; left as HTTP/2");
            return false;
        }
    };
    *request.version_mut() = version;
    if !absolute && let Some(authority) = request.uri().authority().cloned() {
        if !request.headers().contains_key(header::HOST)
            && let Ok(host) = HeaderValue::from_str(authority.as_str())
        {
            request.headers_mut().insert(header::HOST, host);
        }
        let path = request
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        *request.uri_mut() = Uri::from(path);
    }
    true
}

/// Inbound: the app's HTTP/1 response to a downgraded request, marked so
/// the peer proxy restores it.
pub(crate) fn upgrade_response<B>(response: &mut Response<B>) {
    let value = if response.version() == Version::HTTP_10 {
        "HTTP/1.0"
    } else {
        "HTTP/1.1"
    };
    response
        .headers_mut()
        .insert(L5D_ORIG_PROTO, HeaderValue::from_static(value));
    response.headers_mut().remove(header::TRANSFER_ENCODING);
    *response.version_mut() = Version::HTTP_2;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(version: Version, uri: &str, host: Option<&str>) -> Request<()> {
        let mut builder = Request::builder().version(version).uri(uri);
        if let Some(host) = host {
            builder = builder.header(header::HOST, host);
        }
        builder
            .header(header::TRANSFER_ENCODING, "chunked")
            .body(())
            .unwrap()
    }

    #[test]
    fn upgrade_and_downgrade_round_trip() {
        /// (version, uri, host, header sent, uri on the wire, uri for the app, host for the app)
        type Row<'a> = (
            Version,
            &'a str,
            Option<&'a str>,
            &'a str,
            &'a str,
            &'a str,
            Option<&'a str>,
        );
        let table: &[Row<'_>] = &[
            (
                Version::HTTP_11,
                "/books?id=1",
                Some("web.shop:80"),
                "HTTP/1.1",
                "http://web.shop:80/books?id=1",
                "/books?id=1",
                Some("web.shop:80"),
            ),
            (
                Version::HTTP_10,
                "/",
                Some("web"),
                "HTTP/1.0",
                "http://web/",
                "/",
                Some("web"),
            ),
            (
                Version::HTTP_11,
                "http://web.shop/x",
                None,
                "HTTP/1.1; absolute-form",
                "http://web.shop/x",
                "http://web.shop/x",
                None,
            ),
        ];
        for (version, uri, host, sent, wire, app, app_host) in table {
            let mut outgoing = request(*version, uri, *host);
            let original = upgrade_request(&mut outgoing);
            assert_eq!(outgoing.version(), Version::HTTP_2);
            assert_eq!(outgoing.headers()[L5D_ORIG_PROTO], *sent);
            assert!(!outgoing.headers().contains_key(header::TRANSFER_ENCODING));
            assert_eq!(outgoing.uri(), wire, "{uri}");

            let mut incoming = outgoing;
            incoming.headers_mut().remove(header::HOST);
            assert!(downgrade_request(&mut incoming));
            assert_eq!(incoming.version(), *version);
            assert_eq!(incoming.uri(), app, "{uri}");
            assert!(!incoming.headers().contains_key(L5D_ORIG_PROTO));
            assert_eq!(
                incoming
                    .headers()
                    .get(header::HOST)
                    .map(|host| host.to_str().unwrap()),
                *app_host
            );

            let mut response = Response::builder()
                .version(*version)
                .header(header::TRANSFER_ENCODING, "chunked")
                .body(())
                .unwrap();
            upgrade_response(&mut response);
            assert_eq!(response.version(), Version::HTTP_2);
            assert!(response.headers().contains_key(L5D_ORIG_PROTO));
            downgrade_response(&mut response, original);
            assert_eq!(response.version(), *version);
            assert!(!response.headers().contains_key(L5D_ORIG_PROTO));
        }
    }

    #[test]
    fn restoring_an_unsent_request_undoes_the_upgrade() {
        let mut outgoing = request(Version::HTTP_11, "/a", Some("web:80"));
        let before = outgoing.uri().clone();
        let original = upgrade_request(&mut outgoing);
        restore_request(&mut outgoing, original);
        assert_eq!(outgoing.version(), Version::HTTP_11);
        assert_eq!(outgoing.uri(), &before);
        assert!(!outgoing.headers().contains_key(L5D_ORIG_PROTO));
    }

    #[test]
    fn only_marked_http2_requests_are_downgraded() {
        let mut plain_h2 = Request::builder()
            .version(Version::HTTP_2)
            .uri("http://web/")
            .body(())
            .unwrap();
        assert!(!downgrade_request(&mut plain_h2));
        assert_eq!(plain_h2.version(), Version::HTTP_2);

        let mut h1 = request(Version::HTTP_11, "/", Some("web"));
        h1.headers_mut()
            .insert(L5D_ORIG_PROTO, HeaderValue::from_static("HTTP/1.1"));
        assert!(!downgrade_request(&mut h1), "only HTTP/2 requests");

        let mut unknown = Request::builder()
            .version(Version::HTTP_2)
            .uri("http://web/")
            .header(L5D_ORIG_PROTO, "SPDY/3")
            .body(())
            .unwrap();
        assert!(!downgrade_request(&mut unknown));
        assert_eq!(unknown.version(), Version::HTTP_2);
    }
}
