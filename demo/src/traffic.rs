//! Requests through the proxy: the same paths the banner tells people to curl.
//!
//! Used by `--traffic` (a round every second, so `/metrics` has numbers) and by
//! `--check` (one round, every answer verified, then the proxy's metrics).
//!
//! ```text
//! probe ──► inbound  127.0.0.1:4143 ──► proxy ──► app        (HTTP/1.1 and h2c)
//! probe ──► outbound 127.0.0.1:4140 ──► proxy ──► app        (absolute-form HTTP proxy request)
//! probe ──► admin    127.0.0.1:4191/metrics                   (did the proxy count it?)
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

/// How long one probe may take, connect to last body byte.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the app and the proxy listen.
#[derive(Debug, Clone, Copy)]
pub struct Endpoints {
    /// The demo app.
    pub app: SocketAddr,
    /// The proxy's inbound listener (forwards to the app).
    pub inbound: SocketAddr,
    /// The proxy's outbound listener (HTTP proxy).
    pub outbound: SocketAddr,
    /// The proxy's admin server.
    pub admin: SocketAddr,
}

/// A response, reduced to what the probes look at.
#[derive(Debug)]
pub struct Answer {
    /// Response status.
    pub status: StatusCode,
    /// Response body, lossily decoded as UTF-8.
    pub body: String,
    /// The `l5d-proxy-error` header: set when the proxy itself answered.
    pub proxy_error: Option<String>,
}

/// How a request is sent.
#[derive(Debug, Clone, Copy)]
enum Path {
    /// HTTP/1.1 to the inbound listener, origin-form.
    InboundHttp1,
    /// HTTP/2 with prior knowledge (h2c) to the inbound listener.
    InboundH2c,
    /// HTTP/1.1 to the outbound listener, absolute-form (explicit HTTP proxy).
    OutboundProxy,
}

/// One request the demo makes and the answer it expects.
struct Probe {
    name: &'static str,
    path: Path,
    request_path: &'static str,
    expect_status: StatusCode,
    expect_body: &'static str,
}

const PROBES: &[Probe] = &[
    Probe {
        name: "inbound  HTTP/1.1 GET /api/hello",
        path: Path::InboundHttp1,
        request_path: "/api/hello",
        expect_status: StatusCode::OK,
        expect_body: "hello from the weft demo app",
    },
    Probe {
        name: "inbound  HTTP/1.1 GET /api/fail",
        path: Path::InboundHttp1,
        request_path: "/api/fail",
        expect_status: StatusCode::INTERNAL_SERVER_ERROR,
        expect_body: "fails",
    },
    Probe {
        name: "inbound  h2c      GET /api/hello",
        path: Path::InboundH2c,
        request_path: "/api/hello",
        expect_status: StatusCode::OK,
        expect_body: "hello from the weft demo app",
    },
    Probe {
        name: "outbound HTTP proxy GET http://APP/api/hello",
        path: Path::OutboundProxy,
        request_path: "/api/hello",
        expect_status: StatusCode::OK,
        expect_body: "hello from the weft demo app",
    },
];

/// The outcome of one probe, ready to print.
#[derive(Debug)]
pub struct ProbeResult {
    /// What was tried.
    pub name: String,
    /// `Ok(summary)` when the answer was the expected one, `Err(why)` otherwise.
    pub outcome: Result<String, String>,
}

/// Sends every probe once, in order.
pub async fn run_round(endpoints: &Endpoints) -> Vec<ProbeResult> {
    let mut results = Vec::with_capacity(PROBES.len());
    for probe in PROBES {
        let answer = tokio::time::timeout(PROBE_TIMEOUT, send(endpoints, probe)).await;
        let outcome = match answer {
            Err(_) => Err(format!("no answer within {PROBE_TIMEOUT:?}")),
            Ok(Err(error)) => Err(format!("{error:#}")),
            Ok(Ok(answer)) => judge(probe, &answer),
        };
        results.push(ProbeResult {
            name: probe.name.to_string(),
            outcome,
        });
    }
    results
}

/// Checks the proxy's `/metrics` for the label sets one round must produce.
pub async fn check_metrics(endpoints: &Endpoints) -> Vec<ProbeResult> {
    let metrics = match tokio::time::timeout(
        PROBE_TIMEOUT,
        http1_get(endpoints.admin, "/metrics", &endpoints.admin.to_string()),
    )
    .await
    {
        Ok(Ok(answer)) if answer.status == StatusCode::OK => answer.body,
        Ok(Ok(answer)) => return vec![metrics_failure(format!("status {}", answer.status))],
        Ok(Err(error)) => return vec![metrics_failure(format!("{error:#}"))],
        Err(_) => return vec![metrics_failure("no answer".to_string())],
    };
    let expectations: [(&str, &[&str]); 3] = [
        ("request_total", &["direction=\"inbound\""]),
        ("request_total", &["direction=\"outbound\""]),
        (
            "response_total",
            &["direction=\"inbound\"", "status_code=\"500\""],
        ),
    ];
    expectations
        .iter()
        .map(|(family, labels)| {
            let name = format!("metrics  {family}{{{}}}", labels.join(","));
            let outcome = match find_sample(&metrics, family, labels) {
                Some(line) => Ok(format!("= {}", sample_value(line))),
                None => Err(format!(
                    "no {family} sample with {} in /metrics",
                    labels.join(" and ")
                )),
            };
            ProbeResult { name, outcome }
        })
        .collect()
}

/// The first sample line of `family` carrying every one of `labels`.
pub fn find_sample<'a>(metrics: &'a str, family: &str, labels: &[&str]) -> Option<&'a str> {
    metrics.lines().find(|line| {
        line.strip_prefix(family)
            .is_some_and(|rest| rest.starts_with('{'))
            && labels.iter().all(|label| line.contains(label))
    })
}

/// The value of a sample line: the field after the label set.
fn sample_value(line: &str) -> &str {
    line.rsplit_once('}')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or("?")
}

fn metrics_failure(why: String) -> ProbeResult {
    ProbeResult {
        name: "metrics  GET /metrics".to_string(),
        outcome: Err(why),
    }
}

fn judge(probe: &Probe, answer: &Answer) -> Result<String, String> {
    let mut summary = format!("{} {}", answer.status.as_u16(), answer.body.trim());
    if let Some(reason) = &answer.proxy_error {
        summary.push_str(&format!(" (l5d-proxy-error: {reason})"));
    }
    if answer.status != probe.expect_status {
        return Err(format!(
            "expected {}, got {summary}",
            probe.expect_status.as_u16()
        ));
    }
    if !answer.body.contains(probe.expect_body) {
        return Err(format!(
            "expected a body containing {:?}, got {summary}",
            probe.expect_body
        ));
    }
    Ok(summary)
}

async fn send(endpoints: &Endpoints, probe: &Probe) -> anyhow::Result<Answer> {
    let app = endpoints.app.to_string();
    match probe.path {
        Path::InboundHttp1 => http1_get(endpoints.inbound, probe.request_path, &app).await,
        Path::InboundH2c => {
            let uri = format!("http://{app}{}", probe.request_path);
            h2c_get(endpoints.inbound, &uri).await
        }
        Path::OutboundProxy => {
            let uri = format!("http://{app}{}", probe.request_path);
            http1_get(endpoints.outbound, &uri, &app).await
        }
    }
}

/// `GET uri` over a new HTTP/1.1 connection to `connect_to`. An absolute
/// `uri` is sent in absolute-form, which is how HTTP proxies are addressed.
pub async fn http1_get(connect_to: SocketAddr, uri: &str, host: &str) -> anyhow::Result<Answer> {
    let stream = TcpStream::connect(connect_to)
        .await
        .with_context(|| format!("connect to {connect_to}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP/1.1 handshake")?;
    tokio::spawn(connection);
    let request = Request::get(uri)
        .header(header::HOST, host)
        .header(header::USER_AGENT, "weft-demo")
        .body(Empty::<Bytes>::new())?;
    let response = sender
        .send_request(request)
        .await
        .context("HTTP/1.1 request")?;
    read_answer(response).await
}

/// `GET uri` over a new HTTP/2 prior-knowledge (h2c) connection to `connect_to`.
/// `uri` must be absolute: it gives the `:authority`.
pub async fn h2c_get(connect_to: SocketAddr, uri: &str) -> anyhow::Result<Answer> {
    let stream = TcpStream::connect(connect_to)
        .await
        .with_context(|| format!("connect to {connect_to}"))?;
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .context("h2c handshake")?;
    tokio::spawn(connection);
    let request = Request::get(uri)
        .header(header::USER_AGENT, "weft-demo")
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await.context("h2c request")?;
    read_answer(response).await
}

async fn read_answer(response: http::Response<hyper::body::Incoming>) -> anyhow::Result<Answer> {
    let status = response.status();
    let proxy_error = response
        .headers()
        .get("l5d-proxy-error")
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let body = response
        .into_body()
        .collect()
        .await
        .context("read the response body")?
        .to_bytes();
    Ok(Answer {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
        proxy_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const METRICS: &str = "\
# TYPE request_total counter
request_total{direction=\"inbound\",authority=\"127.0.0.1:1\",target_addr=\"127.0.0.1:1\"} 2
request_total_created{direction=\"outbound\"} 1
response_total{direction=\"inbound\",status_code=\"500\",classification=\"failure\"} 1
";

    #[test]
    fn finds_samples_by_family_and_labels() {
        assert!(find_sample(METRICS, "request_total", &["direction=\"inbound\""]).is_some());
        assert!(
            find_sample(
                METRICS,
                "response_total",
                &["direction=\"inbound\"", "status_code=\"500\""]
            )
            .is_some()
        );
    }

    #[test]
    fn sample_values_follow_the_labels() {
        assert_eq!(sample_value("request_total{direction=\"inbound\"} 2"), "2");
        assert_eq!(sample_value("garbage"), "?");
    }

    #[test]
    fn other_families_with_the_same_prefix_do_not_count() {
        assert!(find_sample(METRICS, "request_total", &["direction=\"outbound\""]).is_none());
    }

    #[test]
    fn judge_checks_status_then_body() {
        let probe = &PROBES[0];
        let ok = Answer {
            status: StatusCode::OK,
            body: "{\"message\":\"hello from the weft demo app\"}".to_string(),
            proxy_error: None,
        };
        assert!(judge(probe, &ok).is_ok());
        let bad_gateway = Answer {
            status: StatusCode::BAD_GATEWAY,
            body: String::new(),
            proxy_error: Some("connection refused".to_string()),
        };
        assert!(
            judge(probe, &bad_gateway)
                .unwrap_err()
                .contains("expected 200, got 502")
        );
    }
}
