//! HTTP proxying on hyper 1: a server per detected client connection
//! ([`server`]), the per-request forwarding stage ([`forward`]; requests to a
//! logical service go on to [`logical`]), what both send requests with
//! ([`upstream`]), the pooled client towards targets ([`client`]), and the
//! pure pieces they use.
//!
//! ```text
//! client conn ─► server (h1 | h2) ─► forward::handle per request
//!                                      ├─ target: fixed (transparent/inbound) or explicit (proxy request)
//!                                      ├─ headers: hop-by-hop stripped, Host/:authority kept
//!                                      ├─ client: h1 pool | h2 conn | upgrade conn ─► target
//!                                      └─ body: streamed, recorded at end of stream
//! ```

pub(crate) mod activity;
pub(crate) mod authorize;
pub(crate) mod body;
pub(crate) mod client;
pub(crate) mod errors;
pub(crate) mod forward;
pub(crate) mod header_case;
pub(crate) mod headers;
pub(crate) mod logical;
pub(crate) mod orig_proto;
pub(crate) mod request_body;
pub(crate) mod resend;
pub(crate) mod server;
pub(crate) mod upstream;
