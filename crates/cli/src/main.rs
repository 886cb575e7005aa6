//! `weft`: parse the command line, run the command, exit with its code.

use clap::Parser;
use weft_cli::cli::Cli;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match weft_cli::app::run(cli).await {
        Ok(code) => code,
        // `weft tap … | head`: the reader has all it wanted.
        Err(error) if weft_cli::output::is_broken_pipe(&error) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("weft: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
