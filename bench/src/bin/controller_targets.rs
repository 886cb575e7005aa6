//! `controller-targets`: weft-controller's memory, reload and edit fan-out
//! figures with a big generated mesh (see `weft_bench::controller_targets`).

use clap::Parser;

fn main() -> anyhow::Result<()> {
    weft_bench::controller_targets::run(weft_bench::controller_targets::Args::parse())
}
