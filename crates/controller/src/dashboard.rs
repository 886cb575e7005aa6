//! The dashboard: one page served at `/`, its script and style built into
//! the binary (no CDN, no framework; the machine may be offline), and the
//! Host check that guards the web listener's browser-facing routes against
//! DNS rebinding.
//!
//! ```text
//! GET /                  index.html   (hash routes: #/, #/namespaces/NS,
//! GET /assets/app.js     app.js        #/workloads/NS/NAME, #/topology,
//! GET /assets/style.css  style.css     #/identity; #token=… is remembered)
//!
//! the page polls /api/stat, /api/edges, /api/routes, /api/workloads,
//! /api/identity every few seconds and reads /api/tap as a stream
//! ```
//!
//! [`host_allowed`] is the pure decision: `localhost`, `127.0.0.1` and
//! `[::1]` (any port), plus the names given with `--web-allowed-hosts`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

const INDEX_HTML: &str = include_str!("dashboard/index.html");
const APP_JS: &str = include_str!("dashboard/app.js");
const STYLE_CSS: &str = include_str!("dashboard/style.css");

/// The dashboard's routes: `/`, `/assets/app.js`, `/assets/style.css`.
pub fn router() -> Router {
    Router::new()
        .route("/", get(index))
        .route(
            "/assets/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/assets/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }),
        )
}

/// The page, with a policy that allows only this origin.
async fn index() -> Response {
    (
        [(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'",
            ),
        )],
        Html(INDEX_HTML),
    )
        .into_response()
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

/// The Host names allowed besides the loopback ones.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts(Vec<String>);

impl AllowedHosts {
    /// From `--web-allowed-hosts` (compared case-insensitively, port ignored).
    pub fn new(extra: &[String]) -> Self {
        Self(
            extra
                .iter()
                .map(|host| host.trim().to_ascii_lowercase())
                .filter(|host| !host.is_empty())
                .collect(),
        )
    }
}

/// Whether a request with this `Host` header may be answered: loopback
/// names (any port) or one of `allowed`. A missing Host is refused.
pub fn host_allowed(host: Option<&str>, allowed: &AllowedHosts) -> bool {
    let Some(host) = host.map(|host| host.trim().to_ascii_lowercase()) else {
        return false;
    };
    let name = if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port
        match rest.split_once(']') {
            Some((inside, after)) if after.is_empty() || is_port_suffix(after) => {
                format!("[{inside}]")
            }
            _ => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if is_port_suffix(&format!(":{port}")) => name.to_string(),
            Some(_) => return false,
            None => host,
        }
    };
    matches!(name.as_str(), "localhost" | "127.0.0.1" | "[::1]")
        || allowed.0.iter().any(|allowed| {
            allowed == &name
                || allowed
                    .rsplit_once(':')
                    .is_some_and(|(bare, _)| bare == name)
        })
}

fn is_port_suffix(text: &str) -> bool {
    text.strip_prefix(':').is_some_and(|port| {
        !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Middleware: 403 with an explanation unless [`host_allowed`].
pub async fn check_host(
    State(allowed): State<Arc<AllowedHosts>>,
    request: Request,
    next: Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            request
                .uri()
                .authority()
                .map(|authority| authority.to_string())
        });
    if host_allowed(host.as_deref(), &allowed) {
        return next.run(request).await;
    }
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        format!(
            "<!doctype html><title>weft: Host not allowed</title><p>The Host header \
             <code>{}</code> is not allowed: this protects the dashboard against DNS \
             rebinding. Use http://localhost:&lt;port&gt;/, or start the controller with \
             <code>--web-allowed-hosts NAME</code>.</p>\n",
            escape_html(host.as_deref().unwrap_or_default())
        ),
    )
        .into_response()
}

/// `text` with the characters that mean something in HTML (`<`, `>`, `&`,
/// quotes) written as entities, so a value from a request is shown, never run.
pub fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '&' => escaped.push_str("&amp;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_table() {
        let extra = AllowedHosts::new(&["Weft.Example".to_string(), "10.0.0.5:8084".to_string()]);
        let cases = [
            (Some("localhost"), true),
            (Some("localhost:8084"), true),
            (Some("LOCALHOST:50750"), true),
            (Some("127.0.0.1:8084"), true),
            (Some("[::1]:8084"), true),
            (Some("[::1]"), true),
            (Some("weft.example:80"), true),
            (Some("10.0.0.5:9999"), true),
            (Some("evil.example"), false),
            (Some("localhost.evil.example"), false),
            (Some("127.0.0.1.nip.io:8084"), false),
            (Some("[::2]:8084"), false),
            (Some("localhost:http"), false),
            (Some("[::1]x"), false),
            (None, false),
        ];
        for (host, expected) in cases {
            assert_eq!(host_allowed(host, &extra), expected, "{host:?}");
        }
        assert!(!host_allowed(
            Some("weft.example"),
            &AllowedHosts::default()
        ));
    }

    #[test]
    fn html_escaping() {
        let cases = [
            ("localhost:8084", "localhost:8084"),
            (
                "<script>alert(1)</script>",
                "&lt;script&gt;alert(1)&lt;/script&gt;",
            ),
            ("a&b\"c'd", "a&amp;b&quot;c&#39;d"),
            ("", ""),
        ];
        for (text, expected) in cases {
            assert_eq!(escape_html(text), expected, "{text}");
        }
    }

    #[test]
    fn the_page_links_its_assets_only() {
        assert!(INDEX_HTML.contains("/assets/app.js"));
        assert!(INDEX_HTML.contains("/assets/style.css"));
        for text in [INDEX_HTML, APP_JS, STYLE_CSS] {
            // The SVG namespace is a name, not something fetched.
            let text = text.replace("http://www.w3.org/2000/svg", "");
            assert!(!text.contains("https://"), "no external resources");
            assert!(!text.contains("http://"), "no external resources");
        }
    }
}
