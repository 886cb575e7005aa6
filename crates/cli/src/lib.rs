//! `weft`, the command line. `up` and `demo` run a whole mesh on this host;
//! the other commands observe a running mesh through the controller's API.
//!
//! One module per command; [`cli`] holds the top-level parser,
//! [`global_options`] the options every command shares, [`app`] dispatches.

pub mod api;
pub mod app;
pub mod authz;
pub mod check;
pub mod cli;
pub mod dashboard;
pub mod demo;
pub mod diagnostics;
pub mod edges;
pub mod global_options;
pub mod inject;
pub mod install;
pub mod output;
pub mod resource;
pub mod routes;
pub mod stat;
pub mod state;
pub mod tap;
pub mod top;
pub mod up;
