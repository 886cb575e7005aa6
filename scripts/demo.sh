#!/usr/bin/env bash
# The README's first command: build release binaries of weft, weft-controller,
# weft-proxy and weft-demo, then run the demo mesh (`weft demo`): a controller,
# four apps and a traffic generator, each app behind its own weft-proxy.
#
#   ./scripts/demo.sh                        # run it; Ctrl-C stops everything
#   ./scripts/demo.sh --failure-rate 0.3     # make authors fail more
#   ./scripts/demo.sh --split 50,50          # books-v1 / books-v2 weights
#   ./scripts/demo.sh --port-base 17400      # move every port
#   ./scripts/demo.sh --help                 # all options
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh

cargo build --release -p weft-cli -p weft-controller -p weft-proxy -p weft-demo
target=$(target_dir)
# weft finds weft-controller, weft-proxy and weft-demo next to itself.
exec "${target:-target}/release/weft" demo "$@"
