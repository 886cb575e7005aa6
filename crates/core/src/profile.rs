//! `ServiceProfile` (`linkerd.io/v1alpha2`): a service's routes (request
//! conditions, response classes, retryability, timeout) and its retry budget,
//! with Linkerd's field names. Validation happens while deserializing (bad
//! regex, bad duration, empty condition, status out of range), so a mesh file
//! reports each problem with its line.
//!
//! Pure decisions: [`first_matching_route`] (routes in order, first match wins,
//! `pathRegex` anchored as Linkerd's proxy anchors it) and
//! [`classify_response`] (the route's response classes, then gRPC status, then
//! 5xx).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

use crate::duration::GoDuration;
use crate::weight::Weight;

/// The API version of [`ServiceProfile`].
pub const API_VERSION: &str = "linkerd.io/v1alpha2";
/// The kind of [`ServiceProfile`].
pub const KIND: &str = "ServiceProfile";

/// Why a profile field was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProfileError {
    /// `pathRegex` does not compile.
    #[error("invalid pathRegex {pattern:?}: {reason}")]
    InvalidRegex {
        /// The pattern as written.
        pattern: String,
        /// The regex engine's complaint.
        reason: String,
    },
    /// A `condition` with no field set.
    #[error("a request match must have a field set (method, pathRegex, all, any or not)")]
    EmptyRequestMatch,
    /// A response `condition` with no field set.
    #[error("a response match must have a field set (status, all, any or not)")]
    EmptyResponseMatch,
    /// A status range without bounds, outside 100–599, or with min > max.
    #[error(
        "invalid status range min={min:?} max={max:?}: bounds must be within 100..=599 and min <= max"
    )]
    InvalidStatusRange {
        /// `min` as written.
        min: Option<u16>,
        /// `max` as written.
        max: Option<u16>,
    },
    /// A negative or non-finite `retryRatio`.
    #[error("invalid retryRatio {0}: must be >= 0")]
    InvalidRetryRatio(f64),
}

/// A ServiceProfile. Its name is the service's fully-qualified name
/// (`web.shop.svc.cluster.local`), in the service's namespace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceProfile {
    /// `linkerd.io/v1alpha2`.
    pub api_version: String,
    /// `ServiceProfile`.
    pub kind: String,
    /// Name (the service FQDN) and namespace.
    pub metadata: ObjectMeta,
    /// Routes and budget.
    pub spec: ServiceProfileSpec,
}

/// The body of a ServiceProfile.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceProfileSpec {
    /// Routes in order; the first match wins.
    #[serde(default)]
    pub routes: Vec<RouteSpec>,
    /// The retry budget shared by the retryable routes; defaults apply when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_budget: Option<RetryBudget>,
    /// Weighted destinations; a TrafficSplit for the same service replaces them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dst_overrides: Vec<WeightedDestinationSpec>,
    /// Opaque ports, as in Linkerd's schema.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub opaque_ports: Vec<String>,
}

/// One `dstOverrides` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WeightedDestinationSpec {
    /// `host:port` of the destination.
    pub authority: String,
    /// A quantity (`500m`, `1`).
    pub weight: Weight,
}

/// One route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteSpec {
    /// The route's name; becomes the `rt_route` metric label.
    pub name: String,
    /// Which requests belong to it.
    pub condition: RequestMatch,
    /// How its responses are classified; first match wins.
    #[serde(default)]
    pub response_classes: Vec<ResponseClass>,
    /// Whether failed requests may be retried (within the budget).
    #[serde(default)]
    pub is_retryable: bool,
    /// Limit from dispatch to response headers, covering all retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<GoDuration>,
}

/// A request condition. Every field that is set must match; `all: []` matches
/// everything and `any: []` nothing. At least one field must be set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", try_from = "RequestMatchFields")]
pub struct RequestMatch {
    /// The HTTP method, exactly (`GET`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// A regex on the URI path, anchored at both ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_regex: Option<PathRegex>,
    /// All of these match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub all: Option<Vec<RequestMatch>>,
    /// At least one of these matches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub any: Option<Vec<RequestMatch>>,
    /// This does not match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not: Option<Box<RequestMatch>>,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RequestMatchFields {
    /// The HTTP method, exactly (`GET`).
    #[serde(default)]
    method: Option<String>,
    /// A regex on the URI path, anchored at both ends.
    #[serde(default)]
    path_regex: Option<PathRegex>,
    /// All of these match.
    #[serde(default)]
    all: Option<Vec<RequestMatch>>,
    /// At least one of these matches.
    #[serde(default)]
    any: Option<Vec<RequestMatch>>,
    /// This does not match.
    #[serde(default)]
    not: Option<Box<RequestMatch>>,
}

impl TryFrom<RequestMatchFields> for RequestMatch {
    type Error = ProfileError;
    fn try_from(fields: RequestMatchFields) -> Result<Self, Self::Error> {
        let RequestMatchFields {
            method,
            path_regex,
            all,
            any,
            not,
        } = fields;
        if method.is_none()
            && path_regex.is_none()
            && all.is_none()
            && any.is_none()
            && not.is_none()
        {
            return Err(ProfileError::EmptyRequestMatch);
        }
        Ok(Self {
            method,
            path_regex,
            all,
            any,
            not,
        })
    }
}

impl RequestMatch {
    /// A condition on the path alone (for tests and builders).
    pub fn path(pattern: &str) -> Result<Self, ProfileError> {
        Ok(Self {
            method: None,
            path_regex: Some(PathRegex::new(pattern)?),
            all: None,
            any: None,
            not: None,
        })
    }

    /// Whether a request with this method and path matches.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|expected| expected == method)
            && self
                .path_regex
                .as_ref()
                .is_none_or(|regex| regex.is_match(path))
            && self
                .all
                .as_ref()
                .is_none_or(|all| all.iter().all(|condition| condition.matches(method, path)))
            && self
                .any
                .as_ref()
                .is_none_or(|any| any.iter().any(|condition| condition.matches(method, path)))
            && self
                .not
                .as_ref()
                .is_none_or(|not| !not.matches(method, path))
    }
}

/// A path regex as written, compiled anchored (`^`/`$` added if missing), as
/// Linkerd's proxy does.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(try_from = "String", into = "String")]
pub struct PathRegex {
    source: String,
    anchored: regex::Regex,
}

impl PathRegex {
    /// Compiles `pattern`, anchoring it.
    pub fn new(pattern: &str) -> Result<Self, ProfileError> {
        let start = if pattern.starts_with('^') { "" } else { "^" };
        let end = if pattern.ends_with('$') { "" } else { "$" };
        let anchored = regex::Regex::new(&format!("{start}{pattern}{end}")).map_err(|error| {
            ProfileError::InvalidRegex {
                pattern: pattern.to_string(),
                reason: regex_reason(&error),
            }
        })?;
        Ok(Self {
            source: pattern.to_string(),
            anchored,
        })
    }

    /// The pattern as written (what goes on the wire; the proxy anchors it).
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the whole path matches.
    pub fn is_match(&self, path: &str) -> bool {
        self.anchored.is_match(path)
    }
}

/// The regex error on one line (syntax errors come with a multi-line diagram).
fn regex_reason(error: &regex::Error) -> String {
    let text = error.to_string();
    let last_line = text.lines().last().unwrap_or_default().trim();
    last_line
        .strip_prefix("error: ")
        .unwrap_or(last_line)
        .to_string()
}

impl PartialEq for PathRegex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for PathRegex {}

impl TryFrom<String> for PathRegex {
    type Error = ProfileError;
    fn try_from(pattern: String) -> Result<Self, Self::Error> {
        Self::new(&pattern)
    }
}

impl From<PathRegex> for String {
    fn from(regex: PathRegex) -> String {
        regex.source
    }
}

/// A response class: responses matching `condition` are failures or successes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResponseClass {
    /// Which responses.
    pub condition: ResponseMatch,
    /// Whether they are failures.
    #[serde(default)]
    pub is_failure: bool,
}

/// A response condition; the same combination rules as [`RequestMatch`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", try_from = "ResponseMatchFields")]
pub struct ResponseMatch {
    /// An inclusive status range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusRange>,
    /// All of these match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub all: Option<Vec<ResponseMatch>>,
    /// At least one of these matches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub any: Option<Vec<ResponseMatch>>,
    /// This does not match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not: Option<Box<ResponseMatch>>,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ResponseMatchFields {
    /// An inclusive status range.
    #[serde(default)]
    status: Option<StatusRange>,
    /// All of these match.
    #[serde(default)]
    all: Option<Vec<ResponseMatch>>,
    /// At least one of these matches.
    #[serde(default)]
    any: Option<Vec<ResponseMatch>>,
    /// This does not match.
    #[serde(default)]
    not: Option<Box<ResponseMatch>>,
}

impl TryFrom<ResponseMatchFields> for ResponseMatch {
    type Error = ProfileError;
    fn try_from(fields: ResponseMatchFields) -> Result<Self, Self::Error> {
        let ResponseMatchFields {
            status,
            all,
            any,
            not,
        } = fields;
        if status.is_none() && all.is_none() && any.is_none() && not.is_none() {
            return Err(ProfileError::EmptyResponseMatch);
        }
        Ok(Self {
            status,
            all,
            any,
            not,
        })
    }
}

impl ResponseMatch {
    /// A condition on a status range alone.
    pub fn status(min: u16, max: u16) -> Result<Self, ProfileError> {
        let status = StatusRange::try_from(StatusRangeFields {
            min: Some(min),
            max: Some(max),
        })?;
        Ok(Self {
            status: Some(status),
            all: None,
            any: None,
            not: None,
        })
    }

    /// Whether a response with this status matches.
    pub fn matches(&self, status: u16) -> bool {
        self.status.is_none_or(|range| range.contains(status))
            && self
                .all
                .as_ref()
                .is_none_or(|all| all.iter().all(|condition| condition.matches(status)))
            && self
                .any
                .as_ref()
                .is_none_or(|any| any.iter().any(|condition| condition.matches(status)))
            && self.not.as_ref().is_none_or(|not| !not.matches(status))
    }
}

/// An inclusive HTTP status range; one bound alone means that single code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(try_from = "StatusRangeFields")]
pub struct StatusRange {
    /// Lowest status, inclusive.
    pub min: u16,
    /// Highest status, inclusive.
    pub max: u16,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
struct StatusRangeFields {
    /// Lowest status, inclusive (100-599); alone, that one status.
    #[serde(default)]
    min: Option<u16>,
    /// Highest status, inclusive (100-599); alone, that one status.
    #[serde(default)]
    max: Option<u16>,
}

impl TryFrom<StatusRangeFields> for StatusRange {
    type Error = ProfileError;
    fn try_from(fields: StatusRangeFields) -> Result<Self, Self::Error> {
        let invalid = || ProfileError::InvalidStatusRange {
            min: fields.min,
            max: fields.max,
        };
        let (min, max) = match (fields.min, fields.max) {
            (Some(min), Some(max)) => (min, max),
            (Some(single), None) | (None, Some(single)) => (single, single),
            (None, None) => return Err(invalid()),
        };
        if !(100..=599).contains(&min) || !(100..=599).contains(&max) || min > max {
            return Err(invalid());
        }
        Ok(Self { min, max })
    }
}

impl StatusRange {
    /// Whether `status` is within the range.
    pub fn contains(&self, status: u16) -> bool {
        (self.min..=self.max).contains(&status)
    }
}

/// How many retries a profile's routes may add: `minRetriesPerSecond` plus
/// `retryRatio` × requests over a sliding `ttl` window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", try_from = "RetryBudgetFields")]
pub struct RetryBudget {
    /// Retries allowed per original request (0.2 = 20%).
    pub retry_ratio: f64,
    /// Retries always allowed per second.
    pub min_retries_per_second: u32,
    /// The window the ratio is computed over.
    pub ttl: GoDuration,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "crds", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RetryBudgetFields {
    /// Retries allowed per original request (0.2 = 20%).
    retry_ratio: f64,
    /// Retries always allowed per second.
    min_retries_per_second: u32,
    /// The window the ratio is computed over.
    ttl: GoDuration,
}

impl TryFrom<RetryBudgetFields> for RetryBudget {
    type Error = ProfileError;
    fn try_from(fields: RetryBudgetFields) -> Result<Self, Self::Error> {
        if !fields.retry_ratio.is_finite() || fields.retry_ratio < 0.0 {
            return Err(ProfileError::InvalidRetryRatio(fields.retry_ratio));
        }
        Ok(Self {
            retry_ratio: fields.retry_ratio,
            min_retries_per_second: fields.min_retries_per_second,
            ttl: fields.ttl,
        })
    }
}

impl Default for RetryBudget {
    /// Linkerd's defaults: ratio 0.2, 10 retries per second, ttl 10s.
    fn default() -> Self {
        Self {
            retry_ratio: 0.2,
            min_retries_per_second: 10,
            ttl: GoDuration::try_from("10s".to_string())
                .unwrap_or_else(|_| std::time::Duration::from_secs(10).into()),
        }
    }
}

/// The first route whose condition matches the request, if any.
pub fn first_matching_route<'routes>(
    routes: &'routes [RouteSpec],
    method: &str,
    path: &str,
) -> Option<&'routes RouteSpec> {
    routes
        .iter()
        .find(|route| route.condition.matches(method, path))
}

/// Whether a response counts as a success or a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classification {
    /// Counted as a success.
    Success,
    /// Counted as a failure (and retryable on a retryable route).
    Failure,
}

/// gRPC codes that Linkerd counts as failures.
const GRPC_FAILURE_CODES: [i32; 6] = [
    2,  /* Unknown */
    4,  /* DeadlineExceeded */
    7,  /* PermissionDenied */
    13, /* Internal */
    14, /* Unavailable */
    15, /* DataLoss */
];

/// Classifies a response: the route's first matching response class decides;
/// otherwise a `grpc-status` decides (DataLoss, DeadlineExceeded, Internal,
/// PermissionDenied, Unavailable, Unknown are failures); otherwise 5xx fails.
pub fn classify_response(
    route: Option<&RouteSpec>,
    status: u16,
    grpc_status: Option<i32>,
) -> Classification {
    let by_class = route
        .into_iter()
        .flat_map(|route| route.response_classes.iter())
        .find(|class| class.condition.matches(status))
        .map(|class| class.is_failure);
    let is_failure = match (by_class, grpc_status) {
        (Some(is_failure), _) => is_failure,
        (None, Some(code)) => GRPC_FAILURE_CODES.contains(&code),
        (None, None) => (500..=599).contains(&status),
    };
    if is_failure {
        Classification::Failure
    } else {
        Classification::Success
    }
}

#[cfg(test)]
mod tests;
