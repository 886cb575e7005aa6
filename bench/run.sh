#!/usr/bin/env bash
# Builds the release binaries the benchmark measures (weft-proxy, weft-bench),
# installs oha when it is missing, then runs the benchmark with the given
# options (see bench/README.md; `bench/run.sh --help` lists them).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v oha >/dev/null 2>&1 && [ ! -x "${HOME}/.cargo/bin/oha" ]; then
    echo "bench/run.sh: installing oha (cargo install oha --locked, ~3.5 min)" >&2
    cargo install oha --locked
fi

# Built one at a time: each package then keeps its own feature set, so the
# shared target directory is not rebuilt back and forth.
cargo build --release -p weft-proxy
cargo build --release -p weft-controller # discovery and mTLS setups, linkerd's control plane
cargo build --release -p weft-bench
target_dir="${CARGO_TARGET_DIR:-target}"
exec "${target_dir}/release/weft-bench" "$@"
