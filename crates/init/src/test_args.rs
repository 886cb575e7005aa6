//! For the unit tests: a command line as weft-init parses it, and the
//! configuration it checks into.

use clap::Parser;

use crate::args::Args;
use crate::ports::Config;

/// `weft-init <command_line>`, parsed; panics when clap refuses it.
pub(crate) fn args(command_line: &[&str]) -> Args {
    Args::try_parse_from(std::iter::once("weft-init").chain(command_line.iter().copied()))
        .expect("parses")
}

/// `weft-init <command_line>`, parsed and checked; panics when either fails.
pub(crate) fn config(command_line: &[&str]) -> Config {
    Config::from_args(&args(command_line)).expect("valid")
}
