//! Which way traffic flows through the proxy: a plain value that every layer
//! may name (metric and tap labels, per-direction clients and timeouts). It
//! lives here, below the stages and the metrics, so naming it imports
//! nothing else.

/// Which way traffic flows through the proxy.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub(crate) enum Direction {
    /// A peer calling the local app.
    Inbound,
    /// The local app calling out.
    Outbound,
}

impl Direction {
    /// The label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}
