//! The controller's HTTP API (`--web-addr`, prose in `docs/api.md`) as serde
//! types: the one contract the controller serializes, the `weft` CLI and its
//! tests' fake API deserialize, and `weft-controller`'s contract test checks
//! against the real server.
//!
//! ```text
//! weft-controller api/*.rs ──serialize──► JSON ──deserialize──► weft cli
//!                       └──── weft-api (this crate) ────┘
//! ```
//!
//! With the `strict` feature (on in the controller's and the CLI's tests),
//! every type refuses fields it does not know (`deny_unknown_fields`), so a
//! field added on one side only fails a test instead of being dropped
//! silently. Without it (a released `weft`), a CLI reads a newer
//! controller's answers and ignores what it does not know. Fields the
//! controller leaves out in some answers carry `#[serde(default)]`; the rest
//! must be present (an `Option` may be `null`).

pub mod mesh;
pub mod metrics;
pub mod policy;
pub mod tap;

pub use mesh::{
    Certificate, IdentityInfo, IssuerCertificate, MeshStatus, ProxyAddresses, Scrape, TargetGroup,
    Version, WorkloadInfo, WorkloadsResponse,
};
pub use metrics::{
    EdgeRow, EdgesResponse, Latency, NamedWorkload, ResourceKind, RouteProfile, RouteRow,
    RoutesResponse, StatResponse, StatRow, TrafficSplitRow, TrafficSplitsResponse,
};
pub use policy::{AuthzEntry, AuthzResponse, PortAuthz};
pub use tap::{TapEvent, TapEventKind, TapPeer};

use serde::{Deserialize, Serialize};

/// Every error answer: a 4xx/5xx status and `{"error": "<message>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "strict", serde(deny_unknown_fields))]
pub struct ErrorBody {
    /// What went wrong, for the caller.
    pub error: String,
}
