//! `weft-demo`: the demo mesh's apps. Thin entry point: parse the command
//! line, run the app until it is stopped.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = weft_demo::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("weft-demo: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(weft_demo::run(cli.command)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("weft-demo: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
