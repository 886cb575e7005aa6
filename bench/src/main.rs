//! `weft-bench`: parses the command line and runs the benchmark, or one of
//! the helper processes (backend, gRPC load) the benchmark starts.

use clap::Parser;
use weft_bench::cli::{Cli, Helper};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        None => weft_bench::app::run(cli.run),
        Some(Helper::Backend { listen }) => {
            single_threaded()?.block_on(weft_bench::backend::serve(listen))
        }
        Some(Helper::GrpcLoad { spec }) => {
            let run: weft_bench::grpc_load::GrpcRun = serde_json::from_str(&spec)?;
            let result = single_threaded()?.block_on(weft_bench::grpc_load::run(&run))?;
            println!("{}", serde_json::to_string(&result)?);
            Ok(())
        }
        Some(Helper::TlsHandshakes { spec }) => {
            let run: weft_bench::handshakes::HandshakeRun = serde_json::from_str(&spec)?;
            let result = weft_bench::handshakes::run(&run)?;
            println!("{}", serde_json::to_string(&result)?);
            Ok(())
        }
    }
}

/// Helpers are pinned to one CPU: a current-thread runtime fits that.
fn single_threaded() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}
