//! weft-proxy: the data plane of the weft service mesh.
//!
//! Start at [`app`], which wires the components in start-up order. Traffic
//! enters through [`listen`] (inbound and outbound listeners), and each
//! direction's entry point reads its connections top to bottom: [`inbound`]
//! (TLS for our identity, transport header, [`inbound_policy`] checks) and
//! [`outbound`] ([`routing`] by discovery first). After [`detect`]ion,
//! traffic leaves through [`http`] (per-request proxying) or [`tcp`] (opaque
//! forwarding). Every stage shares the process state ([`proxy`]) and the
//! connection's ([`context`]). [`metrics`] and [`admin`] observe it;
//! [`drain`] ends it gracefully. [`identity`] and [`discovery`] talk to the
//! controller over [`control`] channels (TLS or plaintext). [`tap`] streams
//! live request events to an authorized tap client.

// The effective configuration's JSON (`config.rs`) nests deeper than the
// default limit of `serde_json::json!`.
#![recursion_limit = "256"]

pub(crate) mod admin;
pub mod app;
pub(crate) mod balance;
pub mod config;
pub(crate) mod connect;
pub(crate) mod context;
pub(crate) mod control;
pub(crate) mod detect;
pub(crate) mod direction;
pub(crate) mod discovery;
pub(crate) mod drain;
pub mod fuzz_entry;
pub(crate) mod http;
pub(crate) mod identity;
pub(crate) mod inbound;
pub(crate) mod inbound_authz;
pub(crate) mod inbound_policy;
pub(crate) mod io;
pub(crate) mod listen;
pub(crate) mod log_limit;
pub mod memory;
pub(crate) mod metrics;
pub(crate) mod orig_dst;
pub(crate) mod outbound;
pub(crate) mod policy;
pub(crate) mod proxy;
pub(crate) mod resources;
pub(crate) mod routing;
pub(crate) mod server_first;
pub(crate) mod tap;
pub(crate) mod tcp;
pub(crate) mod tls;
pub(crate) mod wake_gate;
