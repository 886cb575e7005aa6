#!/usr/bin/env bash
# The one test command, for people and CI alike:
#
#   1. build everything once (the e2e tests spawn target/debug/weft-proxy)
#   2. lint: cargo fmt --check, cargo clippy -D warnings, no import circles
#   3. run the Rust tests (cargo nextest, or cargo test without it)
#   4. smoke-test the demo mesh (weft demo --check, on free ports, in a
#      temporary state directory)
#   5. as root: every privileged script tests/netns/*.sh (network namespaces,
#      iptables; tests/netns/init.sh runs weft-init with iptables-nft and
#      iptables-legacy); otherwise they are reported as skipped
#
# Exits non-zero if anything failed.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh

RESULTS=()
FAILED=0

# step NAME CMD... : runs CMD, records ok / FAIL under NAME.
step() {
    local name=$1 started=$SECONDS
    shift
    printf '\n==> %s\n' "$name"
    if "$@"; then
        RESULTS+=("ok       $name ($((SECONDS - started))s)")
    else
        RESULTS+=("FAIL     $name (exit $?, $((SECONDS - started))s)")
        FAILED=$((FAILED + 1))
    fi
}

summary() {
    printf '\n==> summary\n'
    printf '  %s\n' "${RESULTS[@]}"
    if ((FAILED)); then
        printf 'test.sh: %d step(s) FAILED\n' "$FAILED"
        exit 1
    fi
    printf 'test.sh: all steps passed\n'
}

step "cargo build --workspace --all-targets" cargo build --workspace --all-targets
if ((FAILED)); then
    RESULTS+=("skipped  tests (the build failed)")
    summary
fi
TARGET=$(target_dir)
TARGET=${TARGET:-target}

# Lints early, on the build just made: formatting, then clippy with every
# warning (including [workspace.lints]) an error.
step "cargo fmt --all --check" cargo fmt --all --check
step "cargo clippy --workspace --all-targets -- -D warnings" \
    cargo clippy --workspace --all-targets -- -D warnings
# No import circles between a crate's files (each direction of a circle is a
# climb back up for a reader): scripts/import-graph.py lists any it finds.
step "scripts/import-graph.py --check" \
    python3 scripts/import-graph.py --check crates/* tests bench demo

# The offline Kubernetes validators (kubernetes-validate, openapi-schema-
# validator) the manifest and CRD tests run; tests find them through
# WEFT_K8S_TOOLS.
if K8S_TOOLS=$(scripts/k8s-tools.sh); then
    export WEFT_K8S_TOOLS=${K8S_TOOLS%/bin}
    RESULTS+=("ok       scripts/k8s-tools.sh")
else
    RESULTS+=("FAIL     scripts/k8s-tools.sh (the manifest tests will fail)")
    FAILED=$((FAILED + 1))
fi

if cargo nextest --version >/dev/null 2>&1; then
    step "cargo nextest run --workspace" cargo nextest run --workspace --no-fail-fast
else
    echo "cargo-nextest not found: using cargo test"
    step "cargo test --workspace" cargo test --workspace --no-fail-fast
fi

# free_port_base: a base port P such that P..P+60 are all free on 127.0.0.1,
# below the ephemeral range: the attack tests' floods leave thousands of
# client ports there in TIME_WAIT, which a listener cannot bind.
free_port_base() {
    local base port busy ephemeral_low top
    read -r ephemeral_low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || ephemeral_low=32768
    top=$((ephemeral_low - 61))
    ((top > 10000)) || top=60000
    for base in $(shuf -i 10000-"$top" -n 20); do
        busy=0
        for ((port = base; port <= base + 60; port++)); do
            if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
                busy=1
                break
            fi
        done
        ((busy)) || { echo "$base"; return 0; }
    done
    return 1
}
DEMO_STATE=$(mktemp -d)
step "weft demo --check" "$TARGET/debug/weft" --state-dir "$DEMO_STATE" demo --check \
    --port-base "$(free_port_base)"
rm -rf "$DEMO_STATE"

privileged=(tests/netns/*.sh)
if ((EUID == 0)); then
    for script in "${privileged[@]}"; do
        [[ -f $script ]] || continue
        step "$script (privileged)" env WEFT_PROXY_BIN="$TARGET/debug/weft-proxy" \
            WEFT_CONTROLLER_BIN="$TARGET/debug/weft-controller" \
            WEFT_INIT_BIN="$TARGET/debug/weft-init" bash "$script"
    done
else
    for script in "${privileged[@]}"; do
        [[ -f $script ]] && RESULTS+=("skipped  $script (privileged: run as root)")
    done
fi

summary
