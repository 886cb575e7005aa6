//! Route metrics, as Linkerd's proxy writes them for service-profile routes:
//! per request (`route_request_total`, `route_response_total`,
//! `route_response_latency_ms`), per attempt including retries
//! (`route_actual_request_total`, `route_actual_response_total`) and retry
//! decisions (`route_retryable_total`, with `skipped="no_budget"` when the
//! budget refused one). Labels: `direction`, `dst` (the logical
//! `name:port`) and `rt_route` (the route's name; absent for requests no
//! route matched).

use super::HandleCache;
use super::family::{Expire, IdleFamily};
use super::labels::Classification;
use super::latency_histogram;
use crate::direction::Direction;
use prometheus_client::encoding::{EncodeLabel, EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;

/// Which route of which logical destination.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub(crate) struct RouteLabels {
    /// Traffic direction.
    pub direction: Direction,
    /// The logical destination, `name:port`.
    pub dst: Arc<str>,
    /// The route's name; `None` for the default route.
    pub route: Option<Arc<str>>,
}

impl EncodeLabelSet for RouteLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), std::fmt::Error> {
        ("direction", self.direction.as_str()).encode(encoder.encode_label())?;
        ("dst", &*self.dst).encode(encoder.encode_label())?;
        if let Some(route) = &self.route {
            ("rt_route", &**route).encode(encoder.encode_label())?;
        }
        Ok(())
    }
}

/// Labels of the route response counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub(crate) struct RouteResponseLabels {
    route: RouteLabels,
    status_code: u16,
    classification: Classification,
    error: &'static str,
}

impl EncodeLabelSet for RouteResponseLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), std::fmt::Error> {
        self.route.encode(encoder)?;
        ("status_code", self.status_code).encode(encoder.encode_label())?;
        ("classification", self.classification.as_str()).encode(encoder.encode_label())?;
        ("error", self.error).encode(encoder.encode_label())
    }
}

/// Labels of `route_response_latency_ms`.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub(crate) struct RouteLatencyLabels {
    route: RouteLabels,
    status_code: u16,
}

impl EncodeLabelSet for RouteLatencyLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), std::fmt::Error> {
        self.route.encode(encoder)?;
        ("status_code", self.status_code).encode(encoder.encode_label())
    }
}

/// Labels of `route_retryable_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub(crate) struct RetryableLabels {
    route: RouteLabels,
    skipped: Option<&'static str>,
}

impl EncodeLabelSet for RetryableLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), std::fmt::Error> {
        self.route.encode(encoder)?;
        if let Some(skipped) = self.skipped {
            ("skipped", skipped).encode(encoder.encode_label())?;
        }
        Ok(())
    }
}

/// How one response (or attempt) ended, for the route families.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RouteOutcome {
    /// The HTTP status.
    pub status_code: u16,
    /// Success or failure, by the route's response classes.
    pub classification: Classification,
    /// Why the stream failed, if it did.
    pub error: Option<&'static str>,
}

/// The route metrics one client connection last used (see
/// [`super::HttpHandleCache`]): a connection's requests mostly take the same
/// route, so this spares hashing the labels per request.
#[derive(Default)]
pub(crate) struct RouteHandleCache {
    requests: HandleCache<RouteLabels, Counter>,
    attempts: HandleCache<RouteLabels, Counter>,
    responses: HandleCache<RouteResponseLabels, Counter>,
    actual_responses: HandleCache<RouteResponseLabels, Counter>,
    latency: HandleCache<RouteLatencyLabels, Histogram>,
}

/// The route families.
#[derive(Clone)]
pub(crate) struct RouteMetrics {
    requests: IdleFamily<RouteLabels, Counter>,
    responses: IdleFamily<RouteResponseLabels, Counter>,
    latency: IdleFamily<RouteLatencyLabels, Histogram>,
    actual_requests: IdleFamily<RouteLabels, Counter>,
    actual_responses: IdleFamily<RouteResponseLabels, Counter>,
    retryable: IdleFamily<RetryableLabels, Counter>,
}

impl RouteMetrics {
    /// Creates and registers the families; returns them with the handles
    /// the idle sweeper needs.
    pub(crate) fn new(registry: &mut Registry) -> (RouteMetrics, Vec<Box<dyn Expire>>) {
        let metrics = RouteMetrics {
            requests: IdleFamily::new(Counter::default),
            responses: IdleFamily::new(Counter::default),
            latency: IdleFamily::new(latency_histogram),
            actual_requests: IdleFamily::new(Counter::default),
            actual_responses: IdleFamily::new(Counter::default),
            retryable: IdleFamily::new(Counter::default),
        };
        registry.register(
            "route_request",
            "HTTP requests per service-profile route.",
            metrics.requests.clone(),
        );
        registry.register(
            "route_response",
            "HTTP responses per service-profile route, classified by the route's response classes.",
            metrics.responses.clone(),
        );
        registry.register(
            "route_response_latency_ms",
            "Time from a request's headers to the end of its response stream per route, retries included, in milliseconds.",
            metrics.latency.clone(),
        );
        registry.register(
            "route_actual_request",
            "HTTP requests per route, counting every attempt including retries.",
            metrics.actual_requests.clone(),
        );
        registry.register(
            "route_actual_response",
            "HTTP responses per route, counting every attempt including retries.",
            metrics.actual_responses.clone(),
        );
        registry.register(
            "route_retryable",
            "Failed responses of retryable routes; skipped=\"no_budget\" when the retry budget refused the retry.",
            metrics.retryable.clone(),
        );
        let expiring: Vec<Box<dyn Expire>> = vec![
            Box::new(metrics.requests.clone()),
            Box::new(metrics.responses.clone()),
            Box::new(metrics.latency.clone()),
            Box::new(metrics.actual_requests.clone()),
            Box::new(metrics.actual_responses.clone()),
            Box::new(metrics.retryable.clone()),
        ];
        (metrics, expiring)
    }

    /// Counts a request routed by `labels`.
    pub(crate) fn request(&self, labels: &RouteLabels, cache: &RouteHandleCache) {
        cache.requests.get(&self.requests, labels).inc();
    }

    /// Counts one attempt sent upstream.
    pub(crate) fn attempt(&self, labels: &RouteLabels, cache: &RouteHandleCache) {
        cache.attempts.get(&self.actual_requests, labels).inc();
    }

    /// Records the end of one attempt whose response is not passed on (it
    /// is retried).
    pub(crate) fn attempt_response(&self, labels: &RouteLabels, outcome: RouteOutcome) {
        self.actual_responses
            .get(&response_labels(labels, outcome))
            .inc();
    }

    /// Records the response the client got, at the end of its stream: the
    /// final attempt's `route_actual_response_total` and the request's
    /// `route_response_total` and latency.
    pub(crate) fn response(
        &self,
        labels: &RouteLabels,
        outcome: RouteOutcome,
        latency: Duration,
        cache: &RouteHandleCache,
    ) {
        let response = response_labels(labels, outcome);
        cache
            .actual_responses
            .get(&self.actual_responses, &response)
            .inc();
        cache.responses.get(&self.responses, &response).inc();
        let latency_labels = RouteLatencyLabels {
            route: response.route,
            status_code: outcome.status_code,
        };
        cache
            .latency
            .get(&self.latency, &latency_labels)
            .observe(latency.as_secs_f64() * 1000.0);
    }

    /// Counts a failed response of a retryable route: retried, or skipped
    /// because the budget was spent.
    pub(crate) fn retryable(&self, labels: &RouteLabels, retried: bool) {
        self.retryable
            .get(&RetryableLabels {
                route: labels.clone(),
                skipped: (!retried).then_some("no_budget"),
            })
            .inc();
    }
}

fn response_labels(labels: &RouteLabels, outcome: RouteOutcome) -> RouteResponseLabels {
    RouteResponseLabels {
        route: labels.clone(),
        status_code: outcome.status_code,
        classification: outcome.classification,
        error: outcome.error.unwrap_or(""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_families_use_linkerd_names_and_labels() {
        let mut registry = Registry::default();
        let (metrics, _) = RouteMetrics::new(&mut registry);
        let cache = RouteHandleCache::default();
        let named = RouteLabels {
            direction: Direction::Outbound,
            dst: "web.shop.svc.cluster.local:80".into(),
            route: Some("GET /books".into()),
        };
        let default = RouteLabels {
            route: None,
            ..named.clone()
        };
        metrics.request(&named, &cache);
        metrics.attempt(&named, &cache);
        let failed = RouteOutcome {
            status_code: 500,
            classification: Classification::Failure,
            error: None,
        };
        metrics.attempt_response(&named, failed);
        metrics.retryable(&named, true);
        metrics.attempt(&named, &cache);
        let succeeded = RouteOutcome {
            status_code: 200,
            classification: Classification::Success,
            error: None,
        };
        metrics.response(&named, succeeded, Duration::from_millis(3), &cache);
        metrics.request(&default, &cache);
        metrics.retryable(&default, false);
        let text = super::super::encode(&registry);
        let labels =
            "direction=\"outbound\",dst=\"web.shop.svc.cluster.local:80\",rt_route=\"GET /books\"";
        for expected in [
            format!("route_request_total{{{labels}}} 1"),
            format!("route_actual_request_total{{{labels}}} 2"),
            format!("route_actual_response_total{{{labels},status_code=\"500\",classification=\"failure\",error=\"\"}} 1"),
            format!("route_actual_response_total{{{labels},status_code=\"200\",classification=\"success\",error=\"\"}} 1"),
            format!("route_response_total{{{labels},status_code=\"200\",classification=\"success\",error=\"\"}} 1"),
            format!("route_response_latency_ms_bucket{{le=\"3\",{labels},status_code=\"200\"}} 1"),
            format!("route_retryable_total{{{labels}}} 1"),
            "route_request_total{direction=\"outbound\",dst=\"web.shop.svc.cluster.local:80\"} 1".to_string(),
            "route_retryable_total{direction=\"outbound\",dst=\"web.shop.svc.cluster.local:80\",skipped=\"no_budget\"} 1".to_string(),
        ] {
            assert!(text.contains(&expected), "missing {expected}\n{text}");
        }
    }
}
