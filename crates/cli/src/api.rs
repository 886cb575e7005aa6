//! The controller's HTTP API as the CLI sees it (contract: `docs/api.md`):
//! the response types, and [`ApiClient`], a small hyper client that GETs JSON
//! documents or a stream of newline-delimited JSON (tap), with the API token
//! as `Authorization: Bearer` when it has one.
//!
//! ```text
//!  weft stat ──► ApiClient::get_json("/api/stat?kind=workload") ──► controller --web-addr
//!  weft tap  ──► ApiClient::lines("/api/tap?…") ─ NDJSON, one event a line ─►
//! ```

use std::collections::BTreeMap;
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
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::cli::GlobalOptions;

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
/// `?kind=workload&namespace=demo`, or the empty string.
pub fn query(pairs: &[(&str, Option<&str>)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(name, value)| value.map(|value| format!("{name}={}", encode(value))))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// Percent-encodes everything but unreserved characters and `/`.
fn encode(value: &str) -> String {
    let mut text = String::new();
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                text.push(byte as char)
            }
            _ => text.push_str(&format!("%{byte:02X}")),
        }
    }
    text
}

/// Parses an HTTP `Date` (IMF-fixdate, `Wed, 25 Nov 2026 21:21:22 GMT`).
pub fn parse_http_date(text: &str) -> Option<SystemTime> {
    let (_, rest) = text.trim().split_once(", ")?;
    let fields: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, clock, "GMT"] = fields.as_slice() else {
        return None;
    };
    let day: u32 = day.parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|name| name == month)? as u32
        + 1;
    let year: i64 = year.parse().ok()?;
    let clock: Vec<u64> = clock
        .split(':')
        .map(|part| part.parse().ok())
        .collect::<Option<_>>()?;
    let [hours, minutes, seconds] = clock.as_slice() else {
        return None;
    };
    if !(1..=31).contains(&day) || *hours > 23 || *minutes > 59 || *seconds > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let total = days * 86_400 + (*hours * 3600 + *minutes * 60 + *seconds) as i64;
    let total = u64::try_from(total).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(total))
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// `GET /api/version`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Version {
    /// The controller's version.
    pub version: String,
    /// `scrape` or `prometheus`.
    pub metrics_source: String,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Latency {
    /// Median.
    pub p50: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
}

/// `GET /api/stat`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StatResponse {
    /// The window the numbers cover.
    pub window_seconds: f64,
    /// One row per resource.
    pub rows: Vec<StatRow>,
}

/// One resource's golden metrics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StatRow {
    /// `namespace`, `workload`, `service` or `authority`.
    pub kind: String,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Meshed instances (`None` for authorities).
    pub meshed: Option<u64>,
    /// Instances whose proxy answered the last scrape (`None` for authorities).
    pub running: Option<u64>,
    /// Successful responses in the window.
    #[serde(deserialize_with = "null_as_zero")]
    pub success: u64,
    /// Failed responses in the window.
    #[serde(deserialize_with = "null_as_zero")]
    pub failure: u64,
    /// success / (success + failure); `None` without requests.
    pub success_rate: Option<f64>,
    /// Requests per second.
    pub rps: Option<f64>,
    /// Latency percentiles; `None` without requests.
    pub latency_ms: Option<Latency>,
    /// Open TCP connections.
    pub tcp_connections: Option<u64>,
    /// Bytes read per second.
    pub read_bytes_per_sec: Option<f64>,
    /// Bytes written per second.
    pub write_bytes_per_sec: Option<f64>,
}

/// A count that may be written as `null` (no data): zero.
fn null_as_zero<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    Ok(Option::<u64>::deserialize(deserializer)?.unwrap_or(0))
}

/// `GET /api/routes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoutesResponse {
    /// The window the numbers cover.
    pub window_seconds: f64,
    /// One row per route, plus `[DEFAULT]`.
    pub rows: Vec<RouteRow>,
}

/// One route's golden metrics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RouteRow {
    /// The route's name (`GET /books/{id}`, `[DEFAULT]`).
    pub route: String,
    /// The profile's authority.
    pub authority: String,
    /// Effective success rate (what the caller saw).
    pub success_rate: Option<f64>,
    /// Effective requests per second.
    pub rps: Option<f64>,
    /// Success rate including retries.
    pub actual_success_rate: Option<f64>,
    /// Requests per second including retries.
    pub actual_rps: Option<f64>,
    /// Latency percentiles.
    pub latency_ms: Option<Latency>,
}

/// A workload named in an edge or a tap event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NamedWorkload {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

/// `GET /api/edges`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EdgesResponse {
    /// The window the edges were seen in.
    pub window_seconds: f64,
    /// One row per (source, destination).
    pub rows: Vec<EdgeRow>,
}

/// One edge.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EdgeRow {
    /// The client workload.
    pub src: NamedWorkload,
    /// The server workload.
    pub dst: NamedWorkload,
    /// The client's identity, when mTLS'd.
    pub client_id: Option<String>,
    /// The server's identity, when mTLS'd.
    pub server_id: Option<String>,
    /// Whether the edge is mutual TLS.
    pub secured: bool,
    /// Why not, when not.
    pub no_tls_reason: Option<String>,
    /// Requests per second.
    pub rps: Option<f64>,
    /// Success rate.
    pub success_rate: Option<f64>,
}

/// `GET /api/workloads`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkloadsResponse {
    /// Every workload.
    pub workloads: Vec<WorkloadInfo>,
}

/// A workload and its proxy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkloadInfo {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its service account.
    pub service_account: String,
    /// Its identity, when identity is on.
    pub identity: Option<String>,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its addresses.
    pub addresses: Vec<String>,
    /// Whether it has a proxy.
    pub meshed: bool,
    /// Its proxy's listeners.
    pub proxy: Option<ProxyAddresses>,
    /// The last scrape of its proxy.
    pub scrape: Option<Scrape>,
    /// When its proxy's certificate expires (Unix seconds).
    pub cert_expiry_unix: Option<f64>,
}

/// A proxy's listeners (`host:port`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProxyAddresses {
    /// Admin (`/metrics`, `/ready`).
    pub admin: Option<String>,
    /// Tap.
    pub tap: Option<String>,
    /// Inbound.
    pub inbound: Option<String>,
}

/// The last scrape of a proxy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Scrape {
    /// Whether it answered.
    pub up: bool,
    /// When (Unix seconds).
    pub last_unix: Option<f64>,
    /// Why not, when not.
    pub error: Option<String>,
}

/// `GET /api/identity`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IdentityInfo {
    /// Whether the Identity service runs.
    pub enabled: bool,
    /// The trust domain.
    pub trust_domain: Option<String>,
    /// The trust anchors.
    pub trust_anchors: Vec<Certificate>,
    /// The issuer.
    pub issuer: Option<IssuerCertificate>,
    /// Lifetime of issued leaf certificates.
    pub leaf_lifetime_seconds: Option<f64>,
}

/// A certificate's subject and validity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Certificate {
    /// Its subject.
    pub subject: String,
    /// Valid from (Unix seconds).
    pub not_before_unix: f64,
    /// Valid until (Unix seconds).
    pub not_after_unix: f64,
}

/// The issuer certificate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IssuerCertificate {
    /// Its subject.
    pub subject: String,
    /// Valid from (Unix seconds).
    pub not_before_unix: f64,
    /// Valid until (Unix seconds).
    pub not_after_unix: f64,
    /// Whether a trust anchor signed it.
    pub issued_by_anchor: bool,
}

/// `GET /api/mesh`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MeshStatus {
    /// The mesh file.
    pub path: String,
    /// Whether its newest version loaded.
    pub valid: bool,
    /// Why not, when not.
    pub error: Option<String>,
    /// When it last loaded (Unix seconds).
    pub last_load_unix: Option<f64>,
}

/// A tap event's workload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TapPeer {
    /// Its namespace.
    pub namespace: Option<String>,
    /// Its workload.
    pub workload: Option<String>,
}

/// One event of `GET /api/tap`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TapEvent {
    /// `req`, `rsp` or `end`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The stream's id (`3:1`).
    pub id: String,
    /// `in` or `out`.
    pub proxy: String,
    /// The client's address.
    pub source: String,
    /// The server's address.
    pub destination: String,
    /// The TLS status of the peer (`true`, `disabled`, `no_identity` …).
    pub tls: serde_json::Value,
    /// The client's workload, when known.
    pub src: Option<TapPeer>,
    /// The server's workload, when known.
    pub dst: Option<TapPeer>,
    /// `req`: the method.
    pub method: Option<String>,
    /// `req`: the scheme.
    pub scheme: Option<String>,
    /// `req`: the authority.
    pub authority: Option<String>,
    /// `req`: the path.
    pub path: Option<String>,
    /// `req`: the profile route, if any.
    pub route: Option<String>,
    /// `rsp`: the status.
    pub status: Option<u16>,
    /// `rsp`: request start to response headers.
    pub latency_us: Option<u64>,
    /// `end`: response headers to end of stream.
    pub duration_us: Option<u64>,
    /// `end`: response body bytes.
    pub response_bytes: Option<u64>,
    /// `end`: the gRPC status, for gRPC.
    pub grpc_status: serde_json::Value,
    /// `end`: the reset reason, when reset.
    pub reset_error: serde_json::Value,
}

/// A JSON scalar as text (`"true"` → `true`, `0` → `0`); `None` for null.
pub fn scalar_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(text) => Some(text.clone()),
        other => Some(other.to_string()),
    }
}

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
                "?to=service/shop/web&path=/a%20b%3F%26",
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

    #[test]
    fn documented_shapes_decode() {
        let stat: StatResponse = serde_json::from_str(
            r#"{"window_seconds": 60, "rows": [{"kind": "workload", "namespace": "demo", "name": "books",
            "meshed": 1, "running": 1, "success": 118, "failure": 2, "success_rate": 0.9833, "rps": 2.0,
            "latency_ms": {"p50": 3, "p95": 9, "p99": 19}, "tcp_connections": 4,
            "read_bytes_per_sec": 1234.5, "write_bytes_per_sec": 4321.0},
            {"kind": "workload", "namespace": "demo", "name": "idle", "meshed": 1, "running": 1,
            "success": 0, "failure": 0, "success_rate": null, "rps": null, "latency_ms": null}]}"#,
        )
        .unwrap();
        assert_eq!(stat.rows[0].latency_ms.unwrap().p99, Some(19.0));
        assert_eq!(stat.rows[1].success_rate, None);
        let authority: StatRow = serde_json::from_str(
            r#"{"kind": "authority", "namespace": "demo", "name": "books.demo.svc.cluster.local",
            "meshed": null, "running": null, "success": null, "failure": 3}"#,
        )
        .unwrap();
        assert_eq!(
            (authority.meshed, authority.success, authority.failure),
            (None, 0, 3)
        );
        let event: TapEvent = serde_json::from_str(
            r#"{"type": "rsp", "id": "3:1", "proxy": "in", "source": "127.0.0.1:51000",
            "destination": "127.0.0.1:7000", "tls": "true", "src": {"namespace": "demo", "workload": "traffic"},
            "dst": {"namespace": "demo", "workload": "web"}, "status": 200, "latency_us": 1234}"#,
        )
        .unwrap();
        assert_eq!(event.kind, "rsp");
        assert_eq!(scalar_text(&event.tls).as_deref(), Some("true"));
        assert_eq!(scalar_text(&event.grpc_status), None);
    }
}
