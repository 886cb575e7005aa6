//! Metrics of the bounds on accepted connections: connections refused (by
//! direction and reason), each direction's effective connection limit and
//! its accepted connections open now.

use super::labels::Direction;
use prometheus_client::encoding::{EncodeLabel, EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Why an accepted connection was closed at once.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub(crate) enum RefusedReason {
    /// The direction's connection limit was reached.
    Limit,
    /// The process ran out of file descriptors (the spare one was used to
    /// accept and close).
    FdLimit,
}

impl RefusedReason {
    /// The `reason` label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RefusedReason::Limit => "limit",
            RefusedReason::FdLimit => "fd_limit",
        }
    }
}

/// Labels of `tcp_connections_refused_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub(crate) struct RefusedLabels {
    /// Traffic direction.
    pub direction: Direction,
    /// Why.
    pub reason: RefusedReason,
}

impl EncodeLabelSet for RefusedLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), std::fmt::Error> {
        ("direction", self.direction.as_str()).encode(encoder.encode_label())?;
        ("reason", self.reason.as_str()).encode(encoder.encode_label())
    }
}

/// Labels of `tcp_connection_limit`.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub(crate) struct DirectionLabels {
    /// Traffic direction.
    pub direction: Direction,
}

impl EncodeLabelSet for DirectionLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), std::fmt::Error> {
        ("direction", self.direction.as_str()).encode(encoder.encode_label())
    }
}

/// The connection-bound families.
#[derive(Clone, Default)]
pub(crate) struct LimitMetrics {
    refused: Family<RefusedLabels, Counter>,
    limit: Family<DirectionLabels, Gauge>,
    accepted: Family<DirectionLabels, Gauge>,
}

impl LimitMetrics {
    /// Creates and registers the families.
    pub(crate) fn new(registry: &mut Registry) -> LimitMetrics {
        let metrics = LimitMetrics::default();
        registry.register(
            "tcp_connections_refused",
            "Accepted connections closed at once, by direction and reason (limit: the direction's connection limit; fd_limit: out of file descriptors).",
            metrics.refused.clone(),
        );
        registry.register(
            "tcp_connection_limit",
            "Accepted connections a direction may have open at once.",
            metrics.limit.clone(),
        );
        registry.register(
            "tcp_accepted_connections",
            "Accepted connections open now, by direction (those still in protocol detection included).",
            metrics.accepted.clone(),
        );
        metrics
    }

    /// Counts a refused connection.
    pub(crate) fn refused(&self, direction: Direction, reason: RefusedReason) {
        self.refused
            .get_or_create(&RefusedLabels { direction, reason })
            .inc();
    }

    /// The gauge of a direction's accepted connections open now.
    pub(crate) fn accepted(&self, direction: Direction) -> Gauge {
        self.accepted
            .get_or_create_owned(&DirectionLabels { direction })
    }

    /// Publishes a direction's effective limit.
    pub(crate) fn set_limit(&self, direction: Direction, limit: usize) {
        self.limit
            .get_or_create(&DirectionLabels { direction })
            .set(i64::try_from(limit).unwrap_or(i64::MAX));
    }
}
