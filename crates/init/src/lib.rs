//! weft-init: installs (or removes) the iptables rules that send a pod's
//! inbound TCP to its proxy's inbound port and the app's outbound TCP to the
//! proxy's outbound port, leaving the proxy's own traffic (its UID),
//! loopback and the skipped ports and networks alone.

/// The command line (flags are the contract with `weft_core::inject`).
pub mod args;
