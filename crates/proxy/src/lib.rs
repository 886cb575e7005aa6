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

pub mod admin;
pub mod app;
pub mod balance;
pub mod config;
pub mod connect;
pub mod context;
pub mod control;
pub mod detect;
pub mod direction;
pub mod discovery;
pub mod drain;
pub mod fuzz_entry;
pub mod http;
pub mod identity;
pub mod inbound;
pub mod inbound_policy;
pub mod io;
pub mod listen;
pub mod log_limit;
pub mod memory;
pub mod metrics;
pub mod orig_dst;
pub mod outbound;
pub mod proxy;
pub mod resources;
pub mod routing;
pub mod tap;
pub mod tcp;
pub mod tls;
