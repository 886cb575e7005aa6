//! weft-bench: a side-by-side, interleaved benchmark of the paths a request
//! can take through weft, run as real processes on loopback.
//!
//! ```text
//!            ┌──────── CPU 1 ────────┐        ┌──── CPU 0 ────┐
//!  oha / grpc-load ──► [setup under test: none | weft-proxy ×1 | ×2 | other] ──► backend (CPU 1)
//! ```
//!
//! - [`app`] wires a run: plan, tools, backend, setups, runs, report.
//! - [`plan`] decides the schedule (pure); [`report`] summarises (pure).
//! - [`setups`], [`others`] and [`discovery`] start the paths; [`process`]
//!   and [`procfs`] manage and measure processes.
//! - [`interception`] installs and removes the transparent setups' iptables
//!   REDIRECT; [`linkerd`] builds linkerd2-proxy's environment and identity
//!   files for `--other linkerd=PATH`.
//! - [`controller_targets`] is a separate benchmark: weft-controller's
//!   memory, reload time and edit fan-out with a big mesh.
//! - [`generators`] runs [`oha`] or [`grpc_load`] for a run; [`backend`]
//!   answers the load.

pub mod app;
pub mod backend;
pub mod cli;
pub mod connections;
pub mod controller_targets;
pub mod discovery;
pub mod generators;
pub mod grpc_load;
pub mod handshakes;
pub mod interception;
pub mod linkerd;
pub mod load;
pub mod oha;
pub mod others;
pub mod plan;
pub mod process;
pub mod procfs;
pub mod proto;
pub mod report;
pub mod setups;
pub mod stats;
