//! The controller's HTTP API as the CLI sees it (contract: `docs/api.md`):
//! the response types, and [`ApiClient`], a small hyper client that GETs JSON
//! documents or a stream of newline-delimited JSON (tap), with the API token
//! as `Authorization: Bearer` when it has one.
//!
//! ```text
//!  weft stat ──► ApiClient::get_json("/api/stat?kind=workload") ──► controller --web-addr
//!  weft tap  ──► ApiClient::lines("/api/tap?…") ─ NDJSON, one event a line ─►
//! ```

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{AUTHORIZATION, DATE};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::global_options::GlobalOptions;

/// How long a plain (non-streaming) request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// The token file's name in the state directory (`weft up` writes it).
pub const TOKEN_FILE: &str = "api-token";
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an API call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The URL could not be built (a bad `--api-addr`).
    #[error("bad URL {url:?}: {reason}")]
    BadUrl {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// Nothing answered (connection refused, DNS, reset).
    #[error(
        "cannot reach the weft controller's API at {url}: {reason} (is `weft up` running? see --api-addr)"
    )]
    Unreachable {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// No answer in time.
    #[error("no answer from {url} within {seconds}s")]
    Timeout {
        /// The URL.
        url: String,
        /// The limit.
        seconds: u64,
    },
    /// 401: the call needs the API token, or the token is wrong.
    #[error("not authorized: {message} (give the API token with --token-file)")]
    Unauthorized {
        /// The controller's message.
        message: String,
    },
    /// 404: what the command named is not in the mesh (the controller
    /// says what: a namespace, a service, a workload).
    #[error("{message}")]
    NotFound {
        /// The controller's message.
        message: String,
    },
    /// Any other non-2xx answer.
    #[error("{url}: {status}: {message}")]
    Status {
        /// The URL.
        url: String,
        /// The status.
        status: StatusCode,
        /// The controller's message (its `error` field, or the body).
        message: String,
    },
    /// The body was not what `docs/api.md` says.
    #[error("{url}: unexpected answer: {reason}")]
    Decode {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
}

/// A client of one controller API.
#[derive(Debug, Clone)]
pub struct ApiClient {
    base: String,
    token: Option<String>,
    client: Client<HttpConnector, Empty<Bytes>>,
}

/// A JSON document and the answer's `Date` header.
#[derive(Debug)]
pub struct Dated<T> {
    /// The document.
    pub value: T,
    /// The server's clock, if it sent a parsable `Date`.
    pub date: Option<SystemTime>,
}

impl ApiClient {
    /// A client of the API at `base` (`http://host:port`).
    pub fn new(base: &str) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Self {
            base: base.trim_end_matches('/').to_string(),
            token: None,
            client,
        }
    }

    /// Sends `Authorization: Bearer <token>` with every request.
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    /// The API's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET base + path_and_query`, decoded as `T`.
    pub async fn get_json<T: DeserializeOwned>(&self, path_and_query: &str) -> Result<T, ApiError> {
        Ok(self.get_json_dated(path_and_query).await?.value)
    }

    /// Like [`ApiClient::get_json`], with the answer's `Date` header.
    pub async fn get_json_dated<T: DeserializeOwned>(
        &self,
        path_and_query: &str,
    ) -> Result<Dated<T>, ApiError> {
        let url = format!("{}{path_and_query}", self.base);
        let (date, body) = self.get_body(&url).await?;
        let value = serde_json::from_slice(&body).map_err(|error| ApiError::Decode {
            url: url.clone(),
            reason: error.to_string(),
        })?;
        Ok(Dated { value, date })
    }

    /// `GET url` (any URL, e.g. a proxy's admin `/metrics`): the body as text.
    pub async fn get_text(&self, url: &str) -> Result<String, ApiError> {
        let (_, body) = self.get_body(url).await?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    async fn get_body(&self, url: &str) -> Result<(Option<SystemTime>, Bytes), ApiError> {
        let timeout = ApiError::Timeout {
            url: url.to_string(),
            seconds: REQUEST_TIMEOUT.as_secs(),
        };
        let exchange = async {
            let response = self.send(url).await?;
            let date = response
                .headers()
                .get(DATE)
                .and_then(|value| value.to_str().ok())
                .and_then(parse_http_date);
            let body = read_body(url, response.into_body()).await?;
            Ok((date, body))
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| timeout)?
    }

    /// `GET base + path_and_query` as a stream of lines (NDJSON); runs until
    /// the server ends the stream or the caller drops it.
    pub async fn lines(&self, path_and_query: &str) -> Result<Lines, ApiError> {
        let url = format!("{}{path_and_query}", self.base);
        let response = tokio::time::timeout(REQUEST_TIMEOUT, self.send(&url))
            .await
            .map_err(|_| ApiError::Timeout {
                url: url.clone(),
                seconds: REQUEST_TIMEOUT.as_secs(),
            })??;
        Ok(Lines {
            url,
            body: response.into_body(),
            buffer: Vec::new(),
            ended: false,
        })
    }

    /// Sends the GET; a non-2xx answer becomes an error with the server's message.
    async fn send(&self, url: &str) -> Result<http::Response<Incoming>, ApiError> {
        let uri: Uri = url
            .parse()
            .map_err(|error: http::uri::InvalidUri| ApiError::BadUrl {
                url: url.to_string(),
                reason: error.to_string(),
            })?;
        let mut request = Request::get(uri).header("accept", "application/json");
        if let Some(token) = &self.token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request
            .body(Empty::new())
            .map_err(|error| ApiError::BadUrl {
                url: url.to_string(),
                reason: error.to_string(),
            })?;
        let response =
            self.client
                .request(request)
                .await
                .map_err(|error| ApiError::Unreachable {
                    url: url.to_string(),
                    reason: error_chain(&error),
                })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = read_body(url, response.into_body())
            .await
            .unwrap_or_default();
        let message = error_message(&body);
        if status == StatusCode::UNAUTHORIZED {
            return Err(ApiError::Unauthorized { message });
        }
        if status == StatusCode::NOT_FOUND && body.starts_with(b"{") {
            return Err(ApiError::NotFound { message });
        }
        Err(ApiError::Status {
            url: url.to_string(),
            status,
            message,
        })
    }
}

/// A client of the API the global options point at (`--api-addr`, else
/// `up.json`, else the default).
pub fn client(global: &GlobalOptions) -> ApiClient {
    ApiClient::new(&crate::state::api_addr(global))
}

/// Where the API token is: `--token-file`, else `up.json`'s `token_file`,
/// else `<state dir>/api-token`.
pub fn token_path(global: &GlobalOptions, flag: Option<&Path>) -> PathBuf {
    if let Some(path) = flag {
        return path.to_path_buf();
    }
    let state_dir = crate::state::state_dir(global);
    match crate::state::load(&state_dir) {
        Ok(Some(state)) if !state.token_file.as_os_str().is_empty() => state.token_file,
        _ => state_dir.join(TOKEN_FILE),
    }
}

/// The API token read from [`token_path`]; `None` when the file cannot be
/// read (the API then answers 401 and the command says so).
pub fn read_token(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let token = text.trim();
    (!token.is_empty()).then(|| token.to_string())
}

/// An NDJSON response, read a line at a time.
#[derive(Debug)]
pub struct Lines {
    url: String,
    body: Incoming,
    buffer: Vec<u8>,
    ended: bool,
}

impl Lines {
    /// The next non-empty line; `None` when the stream ended.
    pub async fn next_line(&mut self) -> Result<Option<String>, ApiError> {
        loop {
            if let Some(end) = self.buffer.iter().position(|byte| *byte == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                let text = String::from_utf8_lossy(&line).trim().to_string();
                if text.is_empty() {
                    continue;
                }
                return Ok(Some(text));
            }
            if self.ended {
                let rest = std::mem::take(&mut self.buffer);
                let text = String::from_utf8_lossy(&rest).trim().to_string();
                return Ok((!text.is_empty()).then_some(text));
            }
            match self.body.frame().await {
                None => self.ended = true,
                Some(Err(error)) => {
                    return Err(ApiError::Unreachable {
                        url: self.url.clone(),
                        reason: error_chain(&error),
                    });
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffer.extend_from_slice(&data);
                    }
                }
            }
        }
    }
}

async fn read_body(url: &str, body: Incoming) -> Result<Bytes, ApiError> {
    body.collect()
        .await
        .map(|collected| collected.to_bytes())
        .map_err(|error| ApiError::Unreachable {
            url: url.to_string(),
            reason: error_chain(&error),
        })
}

/// The `error` field of an error body, else the body itself (trimmed).
fn error_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorBody {
        error: String,
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(parsed) => parsed.error,
        Err(_) => String::from_utf8_lossy(body).trim().to_string(),
    }
}

/// An error and its sources, joined by `: `.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A query string from `(name, value)` pairs, skipping `None` values:
/// `?kind=workload&namespace=demo`, or the empty string
/// (`application/x-www-form-urlencoded`, as axum reads it).
pub fn query(pairs: &[(&str, Option<&str>)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        if let Some(value) = value {
            serializer.append_pair(name, value);
        }
    }
    let encoded = serializer.finish();
    if encoded.is_empty() {
        encoded
    } else {
        format!("?{encoded}")
    }
}

/// Parses an HTTP `Date` (IMF-fixdate, `Wed, 25 Nov 2026 21:21:22 GMT`).
pub fn parse_http_date(text: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(text.trim()).ok()
}

pub use weft_api::{
    AuthzEntry, AuthzResponse, Certificate, EdgeRow, EdgesResponse, IdentityInfo,
    IssuerCertificate, Latency, MeshStatus, NamedWorkload, PortAuthz, ProxyAddresses, ResourceKind,
    RouteProfile, RouteRow, RoutesResponse, Scrape, StatResponse, StatRow, TapEvent, TapEventKind,
    TapPeer, TrafficSplitRow, TrafficSplitsResponse, Version, WorkloadInfo, WorkloadsResponse,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_skip_absent_values_and_encode() {
        for (pairs, expected) in [
            (vec![], ""),
            (
                vec![("kind", Some("workload")), ("name", None)],
                "?kind=workload",
            ),
            (
                vec![("to", Some("service/shop/web")), ("path", Some("/a b?&"))],
                "?to=service%2Fshop%2Fweb&path=%2Fa+b%3F%26",
            ),
        ] {
            assert_eq!(query(&pairs), expected);
        }
    }

    #[test]
    fn http_dates() {
        let date = parse_http_date("Wed, 25 Nov 2026 21:21:22 GMT").unwrap();
        let seconds = date
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert_eq!(seconds, 1_795_641_682);
        let epoch = parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT").unwrap();
        assert_eq!(epoch, SystemTime::UNIX_EPOCH);
        let leap = parse_http_date("Tue, 29 Feb 2000 12:00:00 GMT").unwrap();
        assert_eq!(
            leap.duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            951_825_600
        );
        for bad in [
            "",
            "yesterday",
            "Wed, 25 Nov 2026 21:21:22 CET",
            "Wed, 32 Nov 2026 1:2:3 GMT",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_token_comes_from_the_flag_then_up_json_then_the_state_dir() {
        let dir = std::env::temp_dir().join(format!("weft-cli-token-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let global = GlobalOptions {
            state_dir: Some(dir.clone()),
            api_addr: None,
        };
        assert_eq!(token_path(&global, None), dir.join(TOKEN_FILE));
        let listed = dir.join("listed-token");
        let state = crate::state::UpState {
            token_file: listed.clone(),
            ..Default::default()
        };
        crate::state::save(&dir, &state).unwrap();
        assert_eq!(token_path(&global, None), listed);
        let flag = Path::new("/elsewhere/token");
        assert_eq!(token_path(&global, Some(flag)), flag);
        assert_eq!(read_token(&listed), None);
        std::fs::write(&listed, "  s3cret \n").unwrap();
        assert_eq!(read_token(&listed).as_deref(), Some("s3cret"));
        std::fs::write(&listed, "\n").unwrap();
        assert_eq!(read_token(&listed), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn error_bodies() {
        assert_eq!(error_message(br#"{"error": "bad window"}"#), "bad window");
        assert_eq!(error_message(b" plain \n"), "plain");
    }
}
