//! Metrics of the proxy's own calls to the control plane, with Linkerd's
//! names: `control_request_total` counts discovery streams opened and
//! `control_response_total` how they ended (`classification`, `grpc_status`;
//! a stream the controller closes cleanly is a success), both labelled with
//! the control-plane `addr`. `control_updates_total{kind}` counts the
//! messages streams delivered (`profile`, `endpoints`).

use prometheus_client::encoding::{EncodeLabel, EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use std::sync::Arc;

/// The control-plane client families, for one control-plane address.
#[derive(Clone, Debug)]
pub(crate) struct ControlMetrics {
    addr: Arc<str>,
    requests: Family<ControlLabels, Counter>,
    responses: Family<ControlResponseLabels, Counter>,
    updates: Family<ControlUpdateLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct ControlLabels {
    addr: Arc<str>,
}

impl EncodeLabelSet for ControlLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), std::fmt::Error> {
        ("addr", &*self.addr).encode(encoder.encode_label())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct ControlResponseLabels {
    addr: Arc<str>,
    classification: &'static str,
    grpc_status: i32,
}

impl EncodeLabelSet for ControlResponseLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), std::fmt::Error> {
        ("addr", &*self.addr).encode(encoder.encode_label())?;
        ("classification", self.classification).encode(encoder.encode_label())?;
        ("grpc_status", self.grpc_status as i64).encode(encoder.encode_label())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct ControlUpdateLabels {
    addr: Arc<str>,
    kind: &'static str,
}

impl EncodeLabelSet for ControlUpdateLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), std::fmt::Error> {
        ("addr", &*self.addr).encode(encoder.encode_label())?;
        ("kind", self.kind).encode(encoder.encode_label())
    }
}

impl ControlMetrics {
    /// Creates and registers the families for the control plane at `addr`.
    pub(crate) fn new(registry: &mut Registry, addr: &str) -> ControlMetrics {
        let metrics = ControlMetrics {
            addr: addr.into(),
            requests: Family::default(),
            responses: Family::default(),
            updates: Family::default(),
        };
        registry.register(
            "control_request",
            "Streams opened to the control plane.",
            metrics.requests.clone(),
        );
        registry.register(
            "control_response",
            "Control-plane streams ended, by gRPC status.",
            metrics.responses.clone(),
        );
        registry.register(
            "control_updates",
            "Messages received on control-plane streams, by kind.",
            metrics.updates.clone(),
        );
        metrics
    }

    /// Counts a stream opened.
    pub(crate) fn stream_opened(&self) {
        self.requests
            .get_or_create(&ControlLabels {
                addr: self.addr.clone(),
            })
            .inc();
    }

    /// Counts a stream's end with its gRPC status code (0 for a clean end).
    pub(crate) fn stream_ended(&self, grpc_status: i32) {
        let classification = if grpc_status == 0 {
            "success"
        } else {
            "failure"
        };
        self.responses
            .get_or_create(&ControlResponseLabels {
                addr: self.addr.clone(),
                classification,
                grpc_status,
            })
            .inc();
    }

    /// Counts one message received.
    pub(crate) fn update(&self, kind: &'static str) {
        self.updates
            .get_or_create(&ControlUpdateLabels {
                addr: self.addr.clone(),
                kind,
            })
            .inc();
    }
}
