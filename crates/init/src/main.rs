//! The `weft-init` binary: parse the flags, install or remove the rules.
//! Exit status: 0 done, 64 a bad flag (named in the message), 1 iptables
//! failed (its stderr in the message).

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use weft_init::args::Args;
use weft_init::run::{EXIT_USAGE, run};

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(error) => {
            let _ = error.print();
            return match error.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitCode::SUCCESS,
                _ => ExitCode::from(EXIT_USAGE),
            };
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("weft-init: {error}");
            error.exit_code()
        }
    }
}
