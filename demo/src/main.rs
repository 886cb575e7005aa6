//! `weft-demo`: a demo app behind a real `weft-proxy` child process.
//!
//! Thin entry point: parse the options, run the demo, map the outcome to an
//! exit status. Everything else lives in the library (`weft_demo`).

use std::process::ExitCode;

fn main() -> ExitCode {
    let options = match weft_demo::cli::Options::parse(std::env::args().skip(1)) {
        Ok(weft_demo::cli::Parsed::Run(options)) => options,
        Ok(weft_demo::cli::Parsed::Help) => {
            print!("{}", weft_demo::cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("weft-demo: {error}\n\n{}", weft_demo::cli::USAGE);
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("weft-demo: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(weft_demo::run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("weft-demo: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
