//! weft-init: installs (or removes) the iptables rules that send a pod's
//! inbound TCP to its proxy's inbound port and the app's outbound TCP to the
//! proxy's outbound port, leaving the proxy's own traffic (its UID),
//! loopback and the skipped ports and networks alone. It runs once, as the
//! pod's first init container (root, NET_ADMIN and NET_RAW only), before the
//! proxy (a native sidecar, UID 2102) and the app start.
//!
//! The nat table it leaves (defaults: inbound 4143, outbound 4140, proxy
//! UID 2102; the injector adds `--skip-inbound-ports 4190,4191`):
//!
//! ```text
//! PREROUTING ─► WEFT_PREROUTING                       (connections arriving)
//!                 -p tcp -m multiport --dports 4190,4191,<skip-inbound> ─► RETURN
//!                 -p tcp ─► WEFT_INBOUND_REDIRECT ─► REDIRECT --to-ports 4143
//!
//! OUTPUT ─────► WEFT_OUTPUT                           (connections the pod opens;
//!                 -m owner --uid-owner 2102 ─► RETURN   none with --inbound-only)
//!                 -o lo ─► RETURN
//!                 -d 127.0.0.1/32 ─► RETURN
//!                 -p tcp -m multiport --dports <skip-outbound> ─► RETURN
//!                 -d <skip-subnet> ─► RETURN          (one per IPv4 network)
//!                 -p tcp ─► WEFT_OUTBOUND_REDIRECT ─► REDIRECT --to-ports 4140
//! ```
//!
//! The proxy reads each redirected connection's original destination
//! (`SO_ORIGINAL_DST`). Its own connections are exempt by UID, including
//! the inbound side's connection to the app at the pod's address: that one
//! leaves over `lo`, and is deliberately *not* sent back to the inbound
//! port (Linkerd's proxy-init does that for the proxy's lo traffic, because
//! Linkerd's inbound proxy dials the app on 127.0.0.1; weft's dials the
//! original destination, which would loop).
//!
//! Stages, one file each: [`args`] (the flags, a contract with the
//! injector) → [`ports`] (checked into a [`ports::Config`], every bad value
//! named by its flag; exit 64) → [`rules`] (pure: the rule set) →
//! [`backend`] (`iptables-nft` or `iptables-legacy`, never both) →
//! [`apply`] (the table as it is → the commands, idempotent; `--remove`
//! converges to no weft chains; `--dry-run` prints the commands) →
//! [`run`] (the steps in order). IPv4 only: IPv6 is not redirected.

pub mod apply;
pub mod args;
pub mod backend;
pub mod ports;
pub mod rules;
pub mod run;

#[cfg(test)]
mod test_args;
