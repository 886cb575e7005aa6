#!/usr/bin/env bash
# The README's first command: build release binaries of weft-proxy and
# weft-demo, then run the demo (a demo app behind a real weft-proxy).
#
#   ./scripts/demo.sh              # prints the curl commands to try
#   ./scripts/demo.sh --traffic    # ... and sends some traffic itself
#   ./scripts/demo.sh --help       # all options
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh

cargo build --release -p weft-proxy -p weft-demo
target=$(target_dir)
# weft-demo starts the weft-proxy found next to it.
exec "${target:-target}/release/weft-demo" "$@"
