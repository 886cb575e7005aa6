//! A service profile as routing reads it: the routes (request conditions,
//! response classes, timeouts, retryability), the retry budget and the
//! traffic split, or the one endpoint a target is. Plain types: discovery's
//! `convert` fills them from the Destination service's protobuf, and the
//! routing decisions ([`super::policy`]) and the HTTP stage read them.

use std::time::Duration;

use regex::Regex;

use crate::discovery::Endpoint;

/// A service profile: how the proxy routes, retries and splits traffic to
/// one target.
#[derive(Clone, Debug)]
pub(crate) struct Profile {
    /// The logical name (`web.shop.svc.cluster.local`); `None` when the
    /// target has no logical name (forward without profile routing).
    pub fully_qualified_name: Option<String>,
    /// Routes in order; the first match wins. No default route is appended:
    /// "no route matched" is the caller's default route.
    pub routes: Vec<Route>,
    /// The budget shared by retryable routes; `None` means no retries.
    pub retry_budget: Option<RetryBudget>,
    /// Weighted split across authorities (zero weights dropped).
    pub dst_overrides: Vec<DstOverride>,
    /// Whether connections to the target are opaque (no protocol detection).
    pub opaque_protocol: bool,
    /// Set when the target is one workload address: connect to it directly.
    pub endpoint: Option<Endpoint>,
}

/// One profile route.
#[derive(Clone, Debug)]
pub(crate) struct Route {
    /// The route's name (its `route` metric label, `rt_route`); empty if unset.
    pub name: String,
    /// Which requests the route takes.
    pub condition: RequestMatch,
    /// Response classes in order; the first match decides failure.
    pub response_classes: Vec<ResponseClass>,
    /// Whether failed responses may be retried (within the retry budget).
    pub is_retryable: bool,
    /// Limit from dispatch to response headers, covering all retries.
    pub timeout: Option<Duration>,
}

/// A request condition.
#[derive(Clone, Debug)]
pub(crate) enum RequestMatch {
    /// Every condition matches (an empty list matches everything).
    All(Vec<RequestMatch>),
    /// At least one condition matches.
    Any(Vec<RequestMatch>),
    /// The condition does not match.
    Not(Box<RequestMatch>),
    /// The URI path matches the regex, anchored at both ends.
    Path(Regex),
    /// The request method equals this one.
    Method(http::Method),
}

impl RequestMatch {
    /// Whether a request with `method` and URI `path` matches.
    pub(crate) fn matches(&self, method: &http::Method, path: &str) -> bool {
        match self {
            RequestMatch::All(conditions) => conditions.iter().all(|c| c.matches(method, path)),
            RequestMatch::Any(conditions) => conditions.iter().any(|c| c.matches(method, path)),
            RequestMatch::Not(condition) => !condition.matches(method, path),
            RequestMatch::Path(regex) => regex.is_match(path),
            RequestMatch::Method(expected) => expected == method,
        }
    }
}

/// A response class: responses matching `condition` are failures or not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ResponseClass {
    /// Which responses belong to the class.
    pub condition: ResponseMatch,
    /// Whether they count as failures (and may be retried).
    pub is_failure: bool,
}

/// A response condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ResponseMatch {
    /// Every condition matches.
    All(Vec<ResponseMatch>),
    /// At least one condition matches.
    Any(Vec<ResponseMatch>),
    /// The condition does not match.
    Not(Box<ResponseMatch>),
    /// The status is within `min..=max`.
    Status {
        /// Lowest matching status.
        min: u16,
        /// Highest matching status.
        max: u16,
    },
}

impl ResponseMatch {
    /// Whether a response with `status` matches.
    pub(crate) fn matches(&self, status: u16) -> bool {
        match self {
            ResponseMatch::All(conditions) => conditions.iter().all(|c| c.matches(status)),
            ResponseMatch::Any(conditions) => conditions.iter().any(|c| c.matches(status)),
            ResponseMatch::Not(condition) => !condition.matches(status),
            ResponseMatch::Status { min, max } => (*min..=*max).contains(&status),
        }
    }
}

/// A retry budget (tower `TpsBudget` semantics, reference §8.4).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct RetryBudget {
    /// Retries allowed per request, in `[0, 1000]`.
    pub retry_ratio: f32,
    /// Retries always allowed per second.
    pub min_retries_per_second: u32,
    /// The sliding window, 1 s–60 s.
    pub ttl: Duration,
}

/// One weighted authority of a traffic split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DstOverride {
    /// `name:port` to resolve with `Get`.
    pub authority: String,
    /// Weight in decimillis (10000 = 100 %); never zero.
    pub weight: u32,
}
