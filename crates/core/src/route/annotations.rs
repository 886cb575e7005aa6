//! Linkerd's retry and timeout annotations, on a route's (or a Service's)
//! metadata, parsed once ([`RouteAnnotations::parse`]) so a bad value is an
//! error naming the annotation:
//!
//! | annotation                   | value |
//! |------------------------------|-------|
//! | `retry.linkerd.io/http`      | comma list of `5xx`, `gateway-error` (502–504), `504`, `500-504` |
//! | `retry.linkerd.io/grpc`      | comma list of `cancelled`, `deadline-exceeded`, `internal`, `resource-exhausted`, `unavailable` |
//! | `retry.linkerd.io/limit`     | retries per request, default 1 |
//! | `retry.linkerd.io/timeout`   | a duration: each attempt's limit (a timed-out attempt may be retried) |
//! | `timeout.linkerd.io/request` | a duration: the whole request, retries included |
//! | `timeout.linkerd.io/response`| a duration: one backend response |
//! | `timeout.linkerd.io/idle`    | a duration: a stream without activity |
//!
//! As Linkerd does, a route with any retry annotation uses only its own retry
//! annotations (ignoring its Service's), and likewise for timeouts
//! ([`RouteAnnotations::or_service`]). Retries exist only when the condition
//! annotation for the protocol (`http` or `grpc`) is set.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::duration::parse_duration;

use super::RouteError;

/// `retry.linkerd.io/http`.
pub const RETRY_HTTP: &str = "retry.linkerd.io/http";
/// `retry.linkerd.io/grpc`.
pub const RETRY_GRPC: &str = "retry.linkerd.io/grpc";
/// `retry.linkerd.io/limit`.
pub const RETRY_LIMIT: &str = "retry.linkerd.io/limit";
/// `retry.linkerd.io/timeout`.
pub const RETRY_TIMEOUT: &str = "retry.linkerd.io/timeout";
/// `timeout.linkerd.io/request`.
pub const TIMEOUT_REQUEST: &str = "timeout.linkerd.io/request";
/// `timeout.linkerd.io/response`.
pub const TIMEOUT_RESPONSE: &str = "timeout.linkerd.io/response";
/// `timeout.linkerd.io/idle`.
pub const TIMEOUT_IDLE: &str = "timeout.linkerd.io/idle";

/// Retries per request when `retry.linkerd.io/limit` is absent (Linkerd's default).
pub const DEFAULT_RETRY_LIMIT: u32 = 1;

/// An inclusive range of HTTP statuses to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRange {
    /// Lowest status.
    pub start: u16,
    /// Highest status.
    pub end: u16,
}

/// The gRPC status codes Linkerd retries on request, by annotation name.
pub const GRPC_RETRY_CODES: &[(&str, u32)] = &[
    ("cancelled", 1),
    ("deadline-exceeded", 4),
    ("resource-exhausted", 8),
    ("internal", 13),
    ("unavailable", 14),
];

/// The retry annotations.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RetryAnnotations {
    /// `retry.linkerd.io/http`, when set.
    pub http: Option<Vec<StatusRange>>,
    /// `retry.linkerd.io/grpc` (gRPC status codes), when set.
    pub grpc: Option<Vec<u32>>,
    /// `retry.linkerd.io/limit`, when set.
    pub limit: Option<u32>,
    /// `retry.linkerd.io/timeout`, when set.
    pub timeout: Option<Duration>,
}

impl RetryAnnotations {
    /// Whether any retry annotation is set.
    pub fn is_set(&self) -> bool {
        self.http.is_some() || self.grpc.is_some() || self.limit.is_some() || self.timeout.is_some()
    }

    /// The limit, defaulted.
    pub fn effective_limit(&self) -> u32 {
        self.limit.unwrap_or(DEFAULT_RETRY_LIMIT)
    }
}

/// The timeout annotations.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TimeoutAnnotations {
    /// `timeout.linkerd.io/request`.
    pub request: Option<Duration>,
    /// `timeout.linkerd.io/response`.
    pub response: Option<Duration>,
    /// `timeout.linkerd.io/idle`.
    pub idle: Option<Duration>,
}

impl TimeoutAnnotations {
    /// Whether any timeout annotation is set.
    pub fn is_set(&self) -> bool {
        self.request.is_some() || self.response.is_some() || self.idle.is_some()
    }
}

/// A route's (or Service's) retry and timeout annotations.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouteAnnotations {
    /// `retry.linkerd.io/*`.
    pub retry: RetryAnnotations,
    /// `timeout.linkerd.io/*`.
    pub timeout: TimeoutAnnotations,
}

impl RouteAnnotations {
    /// Parses the annotations; others are ignored.
    pub fn parse(annotations: Option<&BTreeMap<String, String>>) -> Result<Self, RouteError> {
        let Some(annotations) = annotations else {
            return Ok(Self::default());
        };
        let get = |name: &str| annotations.get(name).map(String::as_str);
        let duration = |name: &str| -> Result<Option<Duration>, RouteError> {
            get(name)
                .map(|text| {
                    parse_duration(text)
                        .map_err(|error| RouteError::new(annotation_field(name), error.to_string()))
                })
                .transpose()
        };
        let retry = RetryAnnotations {
            http: get(RETRY_HTTP).map(parse_http_conditions).transpose()?,
            grpc: get(RETRY_GRPC).map(parse_grpc_conditions).transpose()?,
            limit: get(RETRY_LIMIT)
                .map(|text| {
                    text.trim().parse::<u32>().map_err(|_| {
                        RouteError::new(
                            annotation_field(RETRY_LIMIT),
                            format!("{text:?} is not a count of retries"),
                        )
                    })
                })
                .transpose()?,
            timeout: duration(RETRY_TIMEOUT)?,
        };
        let timeout = TimeoutAnnotations {
            request: duration(TIMEOUT_REQUEST)?,
            response: duration(TIMEOUT_RESPONSE)?,
            idle: duration(TIMEOUT_IDLE)?,
        };
        Ok(Self { retry, timeout })
    }

    /// What applies to a route: its own retry (and, separately, timeout)
    /// annotations when it has any, else its Service's.
    pub fn or_service(&self, service: &RouteAnnotations) -> RouteAnnotations {
        RouteAnnotations {
            retry: if self.retry.is_set() {
                self.retry.clone()
            } else {
                service.retry.clone()
            },
            timeout: if self.timeout.is_set() {
                self.timeout.clone()
            } else {
                service.timeout.clone()
            },
        }
    }
}

fn annotation_field(name: &str) -> String {
    format!("metadata.annotations[{name}]")
}

/// `5xx`, `gateway-error`, `504`, `500-504`, comma-separated.
pub fn parse_http_conditions(text: &str) -> Result<Vec<StatusRange>, RouteError> {
    let fail = |reason: String| RouteError::new(annotation_field(RETRY_HTTP), reason);
    let status = |part: &str| -> Result<u16, RouteError> {
        part.trim()
            .parse::<u16>()
            .ok()
            .filter(|status| (100..=599).contains(status))
            .ok_or_else(|| fail(format!("{part:?} is not an HTTP status (100..=599)")))
    };
    let mut ranges = Vec::new();
    for entry in text
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
    {
        let range = match entry.to_ascii_lowercase().as_str() {
            "5xx" => StatusRange {
                start: 500,
                end: 599,
            },
            "gateway-error" => StatusRange {
                start: 502,
                end: 504,
            },
            _ => match entry.split_once('-') {
                Some((low, high)) => {
                    let (start, end) = (status(low)?, status(high)?);
                    if start > end {
                        return Err(fail(format!("{entry:?}: the range is empty")));
                    }
                    StatusRange { start, end }
                }
                None => {
                    let single = status(entry)?;
                    StatusRange {
                        start: single,
                        end: single,
                    }
                }
            },
        };
        ranges.push(range);
    }
    if ranges.is_empty() {
        return Err(fail(
            "empty: e.g. 5xx, gateway-error, 503 or 500-504".into(),
        ));
    }
    Ok(ranges)
}

/// gRPC status names from [`GRPC_RETRY_CODES`], comma-separated.
pub fn parse_grpc_conditions(text: &str) -> Result<Vec<u32>, RouteError> {
    let mut codes = Vec::new();
    for entry in text
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
    {
        let code = GRPC_RETRY_CODES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(entry))
            .map(|(_, code)| *code)
            .ok_or_else(|| {
                let names: Vec<&str> = GRPC_RETRY_CODES.iter().map(|(name, _)| *name).collect();
                RouteError::new(
                    annotation_field(RETRY_GRPC),
                    format!("{entry:?} is not one of {}", names.join(", ")),
                )
            })?;
        codes.push(code);
    }
    if codes.is_empty() {
        return Err(RouteError::new(
            annotation_field(RETRY_GRPC),
            "empty: e.g. unavailable,internal",
        ));
    }
    Ok(codes)
}

/// `balancer.linkerd.io/failure-accrual` (on a Service): `consecutive` turns
/// circuit breaking on.
pub const FAILURE_ACCRUAL: &str = "balancer.linkerd.io/failure-accrual";
/// Consecutive failures before an endpoint is ejected (default 7).
pub const FAILURE_ACCRUAL_MAX_FAILURES: &str =
    "balancer.linkerd.io/failure-accrual-consecutive-max-failures";
/// Shortest ejection (default 1s).
pub const FAILURE_ACCRUAL_MIN_PENALTY: &str =
    "balancer.linkerd.io/failure-accrual-consecutive-min-penalty";
/// Longest ejection (default 1m).
pub const FAILURE_ACCRUAL_MAX_PENALTY: &str =
    "balancer.linkerd.io/failure-accrual-consecutive-max-penalty";
/// Jitter added to ejections, as a ratio (default 0.5).
pub const FAILURE_ACCRUAL_JITTER_RATIO: &str =
    "balancer.linkerd.io/failure-accrual-consecutive-jitter-ratio";

/// Consecutive-failures circuit breaking, with Linkerd's defaults: 7
/// failures, ejected for 1s growing to 1m, jitter 0.5.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConsecutiveFailures {
    /// Failures in a row that eject an endpoint.
    pub max_failures: u32,
    /// First ejection.
    pub min_penalty: Duration,
    /// Longest ejection.
    pub max_penalty: Duration,
    /// Jitter ratio, 0.0..=100.0.
    pub jitter_ratio: f32,
}

impl Default for ConsecutiveFailures {
    fn default() -> Self {
        Self {
            max_failures: 7,
            min_penalty: Duration::from_secs(1),
            max_penalty: Duration::from_secs(60),
            jitter_ratio: 0.5,
        }
    }
}

impl ConsecutiveFailures {
    /// The Service's failure accrual: `None` unless
    /// `balancer.linkerd.io/failure-accrual` is `consecutive`; an unknown
    /// mode or a bad parameter is an error naming the annotation.
    pub fn parse(
        annotations: Option<&BTreeMap<String, String>>,
    ) -> Result<Option<Self>, RouteError> {
        let Some(annotations) = annotations else {
            return Ok(None);
        };
        let get = |name: &str| annotations.get(name).map(|value| value.trim());
        match get(FAILURE_ACCRUAL) {
            None => return Ok(None),
            Some("consecutive") => {}
            Some(other) => {
                return Err(RouteError::new(
                    annotation_field(FAILURE_ACCRUAL),
                    format!("{other:?}: weft supports \"consecutive\""),
                ));
            }
        }
        let defaults = Self::default();
        let duration = |name: &str, default: Duration| -> Result<Duration, RouteError> {
            get(name).map_or(Ok(default), |text| {
                parse_duration(text)
                    .map_err(|error| RouteError::new(annotation_field(name), error.to_string()))
            })
        };
        let max_failures =
            get(FAILURE_ACCRUAL_MAX_FAILURES).map_or(Ok(defaults.max_failures), |text| {
                text.parse::<u32>().map_err(|_| {
                    RouteError::new(
                        annotation_field(FAILURE_ACCRUAL_MAX_FAILURES),
                        format!("{text:?} is not a count of failures"),
                    )
                })
            })?;
        let min_penalty = duration(FAILURE_ACCRUAL_MIN_PENALTY, defaults.min_penalty)?;
        let max_penalty = duration(FAILURE_ACCRUAL_MAX_PENALTY, defaults.max_penalty)?;
        if min_penalty.is_zero() {
            return Err(RouteError::new(
                annotation_field(FAILURE_ACCRUAL_MIN_PENALTY),
                "must not be zero",
            ));
        }
        if min_penalty > max_penalty {
            return Err(RouteError::new(
                annotation_field(FAILURE_ACCRUAL_MIN_PENALTY),
                format!("{min_penalty:?} exceeds the max penalty {max_penalty:?}"),
            ));
        }
        let jitter_ratio =
            get(FAILURE_ACCRUAL_JITTER_RATIO).map_or(Ok(defaults.jitter_ratio), |text| {
                text.parse::<f32>()
                    .ok()
                    .filter(|ratio| (0.0..=100.0).contains(ratio))
                    .ok_or_else(|| {
                        RouteError::new(
                            annotation_field(FAILURE_ACCRUAL_JITTER_RATIO),
                            format!("{text:?} is not a ratio within 0..=100"),
                        )
                    })
            })?;
        Ok(Some(Self {
            max_failures,
            min_penalty,
            max_penalty,
            jitter_ratio,
        }))
    }
}
