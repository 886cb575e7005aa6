//! A proxy's `/metrics` text → the samples golden metrics need.
//!
//! The text format (Prometheus or OpenMetrics, which the proxy serves) is
//! parsed by `prom_text_format_parser`; this module keeps only the families
//! in [`KEPT_METRICS`] and drops the per-endpoint and per-status labels in
//! [`DROPPED_LABELS`] (the store sums what they split), so memory grows with
//! workloads and routes, not with endpoints or status codes. The
//! authorization counters ([`AUTHZ_METRICS`]) also drop `client_id`: a
//! series per client identity would grow with the callers, and the rows
//! only sum them per workload.

use prom_text_format_parser::{Type, ValueType};

/// The sample names the queries read (Linkerd's proxy metrics).
pub const KEPT_METRICS: [&str; 12] = [
    "response_total",
    "response_latency_ms_bucket",
    "tcp_open_connections",
    "tcp_read_bytes_total",
    "tcp_write_bytes_total",
    "route_response_total",
    "route_actual_response_total",
    "route_response_latency_ms_bucket",
    AUTHZ_METRICS[0],
    AUTHZ_METRICS[1],
    AUTHZ_METRICS[2],
    AUTHZ_METRICS[3],
];

/// The inbound authorization counters (Linkerd's names): HTTP requests and
/// TCP connections allowed and denied. They carry no `direction` (they are
/// inbound only) and no `authority`.
pub const AUTHZ_METRICS: [&str; 4] = [
    "inbound_http_authz_allow_total",
    "inbound_http_authz_deny_total",
    "inbound_tcp_authz_allow_total",
    "inbound_tcp_authz_deny_total",
];

/// Labels of [`AUTHZ_METRICS`] dropped on top of [`DROPPED_LABELS`].
pub const AUTHZ_DROPPED_LABELS: [&str; 1] = ["client_id"];

/// Labels no query groups or filters by.
pub const DROPPED_LABELS: [&str; 6] = [
    "target_addr",
    "target_ip",
    "target_port",
    "status_code",
    "grpc_status",
    "error",
];

/// The proxy's certificate expiry gauge, as weft-proxy names it.
pub const CERT_EXPIRY_METRIC: &str = "identity_cert_expiration_timestamp_seconds";
/// The same gauge as linkerd2-proxy names it.
pub const LINKERD_CERT_EXPIRY_METRIC: &str = "control_identity_cert_expiration_timestamp_seconds";

/// One kept sample.
#[derive(Debug, Clone, PartialEq)]
pub struct KeptSample {
    /// Its name, one of [`KEPT_METRICS`].
    pub metric: &'static str,
    /// Its labels, unescaped, without [`DROPPED_LABELS`].
    pub labels: Vec<(String, String)>,
    /// Its value.
    pub value: f64,
}

/// What one scrape yields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedScrape {
    /// The kept samples.
    pub samples: Vec<KeptSample>,
    /// `identity_cert_expiration_timestamp_seconds` (linkerd2-proxy:
    /// `control_identity_cert_expiration_timestamp_seconds`), when present.
    pub cert_expiry_unix: Option<f64>,
}

/// Why a scrape's text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot parse the metrics text: {0}")]
pub struct ParseError(String);

/// Parses a scrape, keeping what the queries need. A family declared
/// without samples is not an error (OpenMetrics counters declare `name`
/// and write `name_total`); a text with no sample line at all is.
pub fn parse_scrape(text: &str) -> Result<ParsedScrape, ParseError> {
    let (metrics, problems) = prom_text_format_parser::parse_scrape(text);
    if metrics.is_empty() && !text.trim().is_empty() && text.trim() != "# EOF" {
        return Err(ParseError(problems.map_or_else(
            || "no samples".to_string(),
            |error| format!("{error:?}"),
        )));
    }
    let mut parsed = ParsedScrape::default();
    for metric in &metrics {
        for sample in &metric.samples {
            let suffix = match (metric.kind, sample.value.value_type) {
                (Type::Histogram, ValueType::Sample) => "_bucket",
                (Type::Histogram | Type::Summary, ValueType::Sum) => "_sum",
                (Type::Histogram | Type::Summary, ValueType::Count) => "_count",
                _ => "",
            };
            let value = sample.value.value.parse::<f64>().unwrap_or(f64::NAN);
            if value.is_nan() {
                continue;
            }
            let name = format!("{}{suffix}", metric.name);
            if name == CERT_EXPIRY_METRIC {
                parsed.cert_expiry_unix = Some(value);
                continue;
            }
            if name == LINKERD_CERT_EXPIRY_METRIC {
                // weft's own name wins when a proxy exports both.
                parsed.cert_expiry_unix.get_or_insert(value);
                continue;
            }
            let Some(kept) = KEPT_METRICS.iter().find(|kept| **kept == name) else {
                continue;
            };
            let authz = AUTHZ_METRICS.contains(kept);
            let labels = sample
                .labels
                .iter()
                .filter(|label| !DROPPED_LABELS.contains(&label.key.as_str()))
                .filter(|label| !(authz && AUTHZ_DROPPED_LABELS.contains(&label.key.as_str())))
                .map(|label| (label.key.clone(), unescape(&label.value)))
                .collect();
            parsed.samples.push(KeptSample {
                metric: kept,
                labels,
                value,
            });
        }
    }
    Ok(parsed)
}

/// A label value as written (`\\`, `\"`, `\n` escaped) → its text.
pub fn unescape(value: &str) -> String {
    let mut text = String::with_capacity(value.len());
    let mut characters = value.chars();
    while let Some(character) = characters.next() {
        if character != '\\' {
            text.push(character);
            continue;
        }
        match characters.next() {
            Some('n') => text.push('\n'),
            Some(other) => text.push(other),
            None => text.push('\\'),
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape weft-proxy serves (OpenMetrics from prometheus-client).
    const PROXY_TEXT: &str = r#"# HELP request HTTP requests received.
# TYPE request counter
request_total{direction="inbound",authority="web:80"} 5
# HELP response HTTP responses sent.
# TYPE response counter
response_total{direction="outbound",authority="web.demo.svc.cluster.local:80",target_addr="127.0.0.1:1",target_ip="127.0.0.1",target_port="1",tls="no_identity",no_tls_reason="loopback",dst_service="web",status_code="500",classification="failure",grpc_status="",error=""} 2
# HELP route_response Route responses.
# TYPE route_response counter
route_response_total{direction="outbound",dst="web.demo.svc.cluster.local:80",rt_route="GET /books/{id}",status_code="200",classification="success",error=""} 7
# HELP response_latency_ms Latency.
# TYPE response_latency_ms histogram
response_latency_ms_sum{direction="inbound",authority="a\"b\\c",status_code="200"} 12.5
response_latency_ms_count{direction="inbound",authority="a\"b\\c",status_code="200"} 3
response_latency_ms_bucket{le="1.0",direction="inbound",authority="a\"b\\c",status_code="200"} 1
response_latency_ms_bucket{le="+Inf",direction="inbound",authority="a\"b\\c",status_code="200"} 3
# HELP tcp_open_connections Open.
# TYPE tcp_open_connections gauge
tcp_open_connections{direction="inbound",peer="src"} 2
# HELP identity_cert_expiration_timestamp_seconds Expiry.
# TYPE identity_cert_expiration_timestamp_seconds gauge
identity_cert_expiration_timestamp_seconds 1764186400.0
# EOF
"#;

    /// A kept sample's label names, in order.
    fn label_keys(sample: &KeptSample) -> Vec<&str> {
        sample.labels.iter().map(|(key, _)| key.as_str()).collect()
    }

    #[test]
    fn reads_the_certificate_expiry_under_weft_and_linkerd_names() {
        // linkerd2-proxy's text format (no `# EOF`), weft-proxy's OpenMetrics, both, neither.
        let linkerd = "# HELP control_identity_cert_expiration_timestamp_seconds Time when the this proxy's current mTLS identity certificate will expire (in seconds since the UNIX epoch)\n\
                       # TYPE control_identity_cert_expiration_timestamp_seconds gauge\n\
                       control_identity_cert_expiration_timestamp_seconds 1764186400\n\
                       request_total{direction=\"inbound\"} 1\n";
        let weft = "# TYPE identity_cert_expiration_timestamp_seconds gauge\n\
                    identity_cert_expiration_timestamp_seconds 1764186500.0\n# EOF\n";
        let both = format!("{weft}\n{linkerd}").replace("# EOF\n", "");
        let neither = "request_total{direction=\"inbound\"} 1\n";
        let cases = [
            (linkerd.to_string(), Some(1_764_186_400.0)),
            (weft.to_string(), Some(1_764_186_500.0)),
            (both, Some(1_764_186_500.0)),
            (neither.to_string(), None),
        ];
        for (text, expected) in cases {
            let parsed = parse_scrape(&text).unwrap();
            assert_eq!(parsed.cert_expiry_unix, expected, "{text}");
        }
    }

    #[test]
    fn keeps_the_queried_families_and_labels() {
        let parsed = parse_scrape(PROXY_TEXT).unwrap();
        assert_eq!(parsed.cert_expiry_unix, Some(1_764_186_400.0));
        let names: Vec<&str> = parsed.samples.iter().map(|sample| sample.metric).collect();
        assert_eq!(
            names,
            [
                "response_total",
                "route_response_total",
                "response_latency_ms_bucket",
                "response_latency_ms_bucket",
                "tcp_open_connections"
            ]
        );
        let response = &parsed.samples[0];
        assert_eq!(
            label_keys(response),
            [
                "direction",
                "authority",
                "tls",
                "no_tls_reason",
                "dst_service",
                "classification"
            ]
        );
        assert_eq!(response.value, 2.0);
        let route = &parsed.samples[1];
        assert!(
            route
                .labels
                .contains(&("rt_route".to_string(), "GET /books/{id}".to_string()))
        );
        let bucket = &parsed.samples[3];
        assert!(
            bucket
                .labels
                .contains(&("le".to_string(), "+Inf".to_string()))
        );
        assert!(
            bucket
                .labels
                .contains(&("authority".to_string(), "a\"b\\c".to_string()))
        );
    }

    /// The authorization counters as linkerd2-proxy writes them (Prometheus
    /// text, no `# EOF`) and as weft-proxy writes them (OpenMetrics): HTTP
    /// allow with a route and authorization, HTTP deny on a default policy
    /// without a route, TCP allow and deny; terminate is not kept.
    const AUTHZ_TEXT: &str = r#"# HELP inbound_http_authz_allow_total The total number of inbound HTTP requests that were authorized
# TYPE inbound_http_authz_allow_total counter
inbound_http_authz_allow_total{target_addr="127.0.0.1:8080",target_ip="127.0.0.1",target_port="8080",srv_group="policy.linkerd.io",srv_kind="server",srv_name="web-http",srv_port="8080",route_group="",route_kind="default",route_name="default",authz_group="policy.linkerd.io",authz_kind="authorizationpolicy",authz_name="web-clients",tls="true",client_id="traffic.demo.serviceaccount.identity.weft.cluster.local"} 40
inbound_http_authz_allow_total{target_addr="127.0.0.1:8080",target_ip="127.0.0.1",target_port="8080",srv_group="policy.linkerd.io",srv_kind="server",srv_name="web-http",srv_port="8080",route_group="",route_kind="default",route_name="default",authz_group="policy.linkerd.io",authz_kind="authorizationpolicy",authz_name="web-clients",tls="true",client_id="load.demo.serviceaccount.identity.weft.cluster.local"} 2
# HELP inbound_http_authz_deny_total The total number of inbound HTTP requests that could not be processed due to a proxy error.
# TYPE inbound_http_authz_deny_total counter
inbound_http_authz_deny_total{target_addr="127.0.0.1:8080",target_ip="127.0.0.1",target_port="8080",srv_group="",srv_kind="default",srv_name="deny",srv_port="8080",tls="no_identity",client_id=""} 7
# HELP inbound_tcp_authz_allow_total The total number of inbound TCP connections that were authorized
# TYPE inbound_tcp_authz_allow_total counter
inbound_tcp_authz_allow_total{target_addr="127.0.0.1:5432",target_ip="127.0.0.1",target_port="5432",srv_group="policy.linkerd.io",srv_kind="server",srv_name="db",srv_port="5432",authz_group="policy.linkerd.io",authz_kind="authorizationpolicy",authz_name="db-clients",tls="true",client_id="web.demo.serviceaccount.identity.weft.cluster.local"} 3
# HELP inbound_tcp_authz_deny_total The total number of inbound TCP connections that were denied
# TYPE inbound_tcp_authz_deny_total counter
inbound_tcp_authz_deny_total{target_addr="127.0.0.1:5432",target_ip="127.0.0.1",target_port="5432",srv_group="policy.linkerd.io",srv_kind="server",srv_name="db",srv_port="5432",tls="no_identity",client_id=""} 1
# HELP inbound_tcp_authz_terminate_total The total number of inbound TCP connections that were terminated due to an authorization change
# TYPE inbound_tcp_authz_terminate_total counter
inbound_tcp_authz_terminate_total{target_addr="127.0.0.1:5432",target_ip="127.0.0.1",target_port="5432",srv_group="policy.linkerd.io",srv_kind="server",srv_name="db",srv_port="5432",authz_group="policy.linkerd.io",authz_kind="authorizationpolicy",authz_name="db-clients",tls="true",client_id="web.demo.serviceaccount.identity.weft.cluster.local"} 0
"#;

    #[test]
    fn keeps_the_authorization_counters_without_per_client_labels() {
        // OpenMetrics declares the family without `_total`.
        let open_metrics = AUTHZ_TEXT
            .replace("_total The total", " The total")
            .replace("_total counter", " counter")
            + "# EOF\n";
        for text in [AUTHZ_TEXT.to_string(), open_metrics] {
            let parsed = parse_scrape(&text).unwrap();
            let kept: Vec<(&str, f64)> = parsed
                .samples
                .iter()
                .map(|sample| (sample.metric, sample.value))
                .collect();
            assert_eq!(
                kept,
                [
                    ("inbound_http_authz_allow_total", 40.0),
                    ("inbound_http_authz_allow_total", 2.0),
                    ("inbound_http_authz_deny_total", 7.0),
                    ("inbound_tcp_authz_allow_total", 3.0),
                    ("inbound_tcp_authz_deny_total", 1.0),
                ],
                "{text}"
            );
            assert_eq!(
                label_keys(&parsed.samples[0]),
                [
                    "srv_group",
                    "srv_kind",
                    "srv_name",
                    "srv_port",
                    "route_group",
                    "route_kind",
                    "route_name",
                    "authz_group",
                    "authz_kind",
                    "authz_name",
                    "tls"
                ]
            );
            // Two clients, one series once `client_id` is gone: the store sums them.
            assert_eq!(parsed.samples[0].labels, parsed.samples[1].labels);
        }
    }

    #[test]
    fn refuses_what_is_not_metrics() {
        assert!(parse_scrape("<html>not metrics</html>").is_err());
        assert_eq!(parse_scrape("").unwrap(), ParsedScrape::default());
        assert_eq!(parse_scrape("# EOF\n").unwrap(), ParsedScrape::default());
    }

    #[test]
    fn unescapes_label_values() {
        let cases = [
            ("plain", "plain"),
            (r#"a\"b"#, "a\"b"),
            (r"a\\b", r"a\b"),
            (r"a\nb", "a\nb"),
        ];
        for (written, text) in cases {
            assert_eq!(unescape(written), text);
        }
    }
}
