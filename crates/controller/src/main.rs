//! `weft-controller`: parse flags, then either run a one-off command
//! (`identity init`, `identity rotate-issuer`) or build the app and run it
//! until SIGTERM/SIGINT.

use clap::Parser;
use weft_controller::app::{App, Args, shutdown_signal};
use weft_controller::config::Command;

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    if let Some(Command::Identity(command)) = &args.command {
        match command.run() {
            Ok(report) => println!("{report}"),
            Err(error) => {
                eprintln!("weft-controller: {error}");
                std::process::exit(1);
            }
        }
        return;
    }
    tracing::info!(?args, "starting");
    let result = match App::build(&args).await {
        Ok(app) => app.run(shutdown_signal()).await,
        Err(error) => Err(error),
    };
    if let Err(error) = result {
        eprintln!("weft-controller: {error}");
        std::process::exit(error.exit_code());
    }
}
