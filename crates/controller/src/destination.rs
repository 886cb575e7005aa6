//! The Destination gRPC service (`io.linkerd.proxy.destination`): the only
//! module that speaks protobuf.
//!
//! | module        | what it is |
//! |---------------|------------|
//! | [`translate`] | pure conversions: request paths → targets, catalog answers → messages |
//! | [`server`]    | the tonic service: subscriptions turned into response streams |
//! | [`limits`]    | open streams per client and in total (pure admission, permits) |
//! | [`stream`]    | what every watch stream does alike (Destination's and the policy services'): admit, subscribe, answers, finish |

pub mod limits;
pub mod server;
pub mod stream;
pub mod translate;

pub use limits::StreamLimits;
pub use server::{DestinationMetrics, DestinationService, ServerError};
