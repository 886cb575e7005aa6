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

pub mod activity;
pub mod body;
pub mod client;
pub mod errors;
pub mod forward;
pub mod header_case;
pub mod headers;
pub mod logical;
pub mod orig_proto;
pub mod request_body;
pub mod resend;
pub mod server;
pub mod upstream;
