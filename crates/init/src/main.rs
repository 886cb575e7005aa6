//! The `weft-init` binary: parse the flags, install or remove the rules.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = weft_init::args::Args::parse();
    eprintln!("weft-init: not built yet ({args:?})");
    std::process::ExitCode::FAILURE
}
