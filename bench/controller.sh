#!/usr/bin/env bash
# Builds weft-controller and the controller-targets benchmark (release), then
# measures the controller with a big generated mesh: RSS idle and with 1,000
# Get streams open, mesh-file reload time, and how fast an endpoint edit in
# the mesh file reaches 1,000 streams on one service (and one stream on each
# of 1,000 services). Options: `bench/controller.sh --help`; see bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -p weft-controller
cargo build --release -p weft-bench --bin controller-targets
target_dir="${CARGO_TARGET_DIR:-target}"
# Ahead of other work on a shared machine when allowed; the controller inherits it.
nice_prefix=()
if [ "$(id -u)" = 0 ]; then
    nice_prefix=(nice -n -10)
fi
exec "${nice_prefix[@]}" "${target_dir}/release/controller-targets" "$@"
