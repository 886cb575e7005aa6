//! `weft-demo`: the apps of the demo mesh that `weft demo` runs, one
//! subcommand each. Every app sits behind its own `weft-proxy` in explicit
//! mode and reaches the others by service name through it (`HTTP_PROXY`).
//!
//! ```text
//! traffic ──HTTP/1.1──► web ──HTTP/1.1──► books  (TrafficSplit: books-v1 / books-v2)
//!                        └───gRPC (h2c)──► authors (fails a configurable share of calls)
//! ```
//!
//! | module      | what it holds |
//! |-------------|---------------|
//! | [`cli`]     | the subcommands and their flags |
//! | [`serve`]   | the HTTP server loop every app uses |
//! | [`client`]  | HTTP/1.1 requests through the explicit proxy |
//! | [`web`]     | the front end |
//! | [`books`]   | the books service, in two versions |
//! | [`authors`] | the gRPC authors service and its client |
//! | [`traffic`] | the traffic generator |

pub mod authors;
pub mod books;
pub mod cli;
pub mod client;
pub mod serve;
pub mod traffic;
pub mod web;

use cli::Command;

/// Runs one app until it is stopped (SIGTERM / Ctrl-C) or fails.
pub async fn run(command: Command) -> anyhow::Result<()> {
    let app = async {
        match command {
            Command::Web(args) => web::run(args).await,
            Command::Books(args) => books::run(args).await,
            Command::Authors(args) => authors::run(args).await,
            Command::Traffic(args) => traffic::run(args).await,
        }
    };
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = app => result,
        _ = terminate.recv() => Ok(()),
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}
