//! The attack suite: each test is an attacker's real client (raw sockets,
//! hand-written HTTP/2 frames, TLS clients without a certificate) against
//! real `weft-proxy` and `weft-controller` processes, with the outcome
//! asserted. Holes that were closed stay closed; defences that already held
//! keep holding.
//!
//! ```text
//! attacker (raw TCP / h2 frames / TLS, no client certificate)
//!     └─► weft-proxy inbound, outbound (explicit), admin │ weft-controller gRPC, web
//! ```
//!
//! Attacks that need another network namespace (a peer on the network,
//! transparent interception) are in `tests/netns/attack.sh`, run as root by
//! `scripts/test.sh`.

mod authz;
mod h2_floods;
mod identity;
mod inbound;
mod resources;
