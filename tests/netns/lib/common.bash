# Shared by the privileged tests in tests/netns/ (sourced, not run: the .bash
# name and the subdirectory keep it out of scripts/test.sh's tests/netns/*.sh).
#
# The topology every test builds: two network namespaces, client and server,
# joined by a veth pair (veth0 in each), with a weft-proxy in transparent mode
# as PROXY_UID in each and the nat rules a sidecar init container installs.
#
# The test sets, before sourcing:
#   TEST_NAME         log prefix netns/TEST_NAME, work dir /tmp/weft-netns-TEST_NAME.*
#   NS_CLIENT         client namespace name (unique per run, e.g. with $$)
#   NS_SERVER         server namespace name
#   CLIENT_V4         client address on veth0 (a /24 shared with SERVER_V4)
#   SERVER_V4         server address on veth0
#   PROXY_BIN         weft-proxy binary to test (copied into the work dir)
#   TOOLS             array: commands preflight requires
#   METRIC_FAMILIES   extended regex: metric families print_logs shows
# and may set:
#   PROXY_UID         UID the proxies run as, exempt from OUTPUT REDIRECT (2102)
#   IPV6              1: ip6tables rules too, dual-stack proxy listeners (0)
# and set any time before summary:
#   SUMMARY_NOTE      added to the closing line, e.g. what was skipped
#
# It provides: check bookkeeping (ok, fail, summary), the namespaces and the
# rules (make_namespaces, install_rules), processes started by name and
# stopped on exit (start, start_proxy, alive, wait_for, wait_ready, cleanup),
# and metric checks (scrape, metric_sum, expect_metric, check_graceful_stop).
#
# shellcheck shell=bash

: "${TEST_NAME:?set TEST_NAME before sourcing lib/common.bash}"
: "${NS_CLIENT:?set NS_CLIENT before sourcing lib/common.bash}"
: "${NS_SERVER:?set NS_SERVER before sourcing lib/common.bash}"
: "${CLIENT_V4:?set CLIENT_V4 before sourcing lib/common.bash}"
: "${SERVER_V4:?set SERVER_V4 before sourcing lib/common.bash}"
: "${PROXY_BIN:?set PROXY_BIN before sourcing lib/common.bash}"
: "${METRIC_FAMILIES:?set METRIC_FAMILIES before sourcing lib/common.bash}"
[[ -n ${TOOLS[*]:-} ]] || { echo "set TOOLS before sourcing lib/common.bash" >&2; exit 2; }
PROXY_UID=${PROXY_UID:-2102}
IPV6=${IPV6:-0}

WORK=""
PIDS=()
declare -gA PID_OF=()
FAILED=0
PASSED=0

log() { printf 'netns/%s: %s\n' "$TEST_NAME" "$*"; }
ok() { PASSED=$((PASSED + 1)); printf '  ok    %s\n' "$*"; }
fail() { FAILED=$((FAILED + 1)); printf '  FAIL  %s\n' "$*"; }
in_client() { ip netns exec "$NS_CLIENT" "$@"; }
in_server() { ip netns exec "$NS_SERVER" "$@"; }

# summary : the closing line, with SUMMARY_NOTE (if set) in parentheses;
# succeeds if no check failed.
summary() {
    log "$PASSED checks passed, $FAILED failed${SUMMARY_NOTE:+ ($SUMMARY_NOTE)}"
    ((FAILED == 0))
}

# alive PID: running (a zombie, exited but not yet reaped, is not). The state
# is read once: the shell may reap the process between two looks at /proc, and
# a status file that is gone means "not running", not "running".
alive() {
    local state
    state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null) || return 1
    [[ -n $state && $state != [ZX] ]]
}

# ---------------------------------------------------------------- clean-up

# The EXIT trap: stops what the test started, removes its namespaces, prints
# the logs if it failed (or KEEP_LOGS=1) and removes the work dir.
cleanup() {
    local status=$?
    set +e
    # Stop what this script started, by pid, then anything left in its namespaces.
    for pid in "${PIDS[@]}"; do alive "$pid" && kill -TERM "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
        alive "$pid" && kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    for ns in "$NS_CLIENT" "$NS_SERVER"; do
        if ip netns list | awk '{ print $1 }' | grep -qx "$ns"; then
            for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
            ip netns del "$ns"
        fi
    done
    if [[ -n $WORK && -d $WORK ]]; then
        if ((status != 0)) || [[ ${KEEP_LOGS:-} == 1 ]]; then print_logs; fi
        rm -rf "$WORK"
    fi
    exit "$status"
}

print_logs() {
    for file in "$WORK"/*.log; do
        [[ -s $file ]] || continue
        printf '\n----- %s (last 80 lines) -----\n' "$(basename "$file")"
        tail -n 80 "$file"
    done
    for file in "$WORK"/*.metrics; do
        [[ -s $file ]] || continue
        printf '\n----- %s (weft families) -----\n' "$(basename "$file")"
        grep -E "^($METRIC_FAMILIES)" "$file" | head -n 80
    done
}

# ---------------------------------------------------------------- preflight

# preflight : exits 2 (cannot run here) unless root, with TOOLS and PROXY_BIN.
preflight() {
    if ((EUID != 0)); then
        log "needs root (network namespaces, iptables)"
        exit 2
    fi
    local missing=() tool
    for tool in "${TOOLS[@]}"; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    if ((${#missing[@]})); then
        log "missing tools: ${missing[*]} (.ci/run installs them)"
        exit 2
    fi
    require_binary proxy "$PROXY_BIN" WEFT_PROXY_BIN
}

# require_binary WHAT PATH ENV_VAR : exits 2 unless PATH is executable.
require_binary() {
    if [[ ! -x $2 ]]; then
        log "no $1 binary at $2 (cargo build --workspace, or set $3)"
        exit 2
    fi
}

# ---------------------------------------------------------------- topology

# make_namespaces : NS_CLIENT and NS_SERVER joined by veth0, with CLIENT_V4
# and SERVER_V4 (/24), links up. IPv6 is enabled in them if IPV6=1 (the
# addresses are the test's business).
make_namespaces() {
    ip netns add "$NS_CLIENT"
    ip netns add "$NS_SERVER"
    # The veth pair is created directly inside the namespaces: nothing in the
    # host namespace changes.
    ip link add veth0 netns "$NS_CLIENT" type veth peer name veth0 netns "$NS_SERVER"
    in_client ip addr add "$CLIENT_V4/24" dev veth0
    in_server ip addr add "$SERVER_V4/24" dev veth0
    local ns
    for ns in "$NS_CLIENT" "$NS_SERVER"; do
        if ((IPV6)); then
            ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0 || true
        fi
        ip netns exec "$ns" ip link set lo up
        ip netns exec "$ns" ip link set veth0 up
    done
}

# install_rules NS... : the rules a sidecar init container installs: inbound
# TCP to the proxy's inbound port (except the proxy's own ports), the app's
# outbound TCP to the outbound port (except the proxy's own traffic, by UID,
# and loopback). iptables, and ip6tables too if IPV6=1.
install_rules() {
    local ns tables
    for ns in "$@"; do
        for tables in iptables ip6tables; do
            ((IPV6)) || [[ $tables == iptables ]] || continue
            ip netns exec "$ns" "$tables" -t nat -N WEFT_INBOUND
            ip netns exec "$ns" "$tables" -t nat -A WEFT_INBOUND -p tcp --dport 4143 -j RETURN
            ip netns exec "$ns" "$tables" -t nat -A WEFT_INBOUND -p tcp --dport 4191 -j RETURN
            ip netns exec "$ns" "$tables" -t nat -A WEFT_INBOUND -p tcp -j REDIRECT --to-ports 4143
            ip netns exec "$ns" "$tables" -t nat -A PREROUTING -p tcp -j WEFT_INBOUND

            ip netns exec "$ns" "$tables" -t nat -N WEFT_OUTBOUND
            ip netns exec "$ns" "$tables" -t nat -A WEFT_OUTBOUND -m owner --uid-owner "$PROXY_UID" -j RETURN
            ip netns exec "$ns" "$tables" -t nat -A WEFT_OUTBOUND -o lo -j RETURN
            ip netns exec "$ns" "$tables" -t nat -A WEFT_OUTBOUND -p tcp -j REDIRECT --to-ports 4140
            ip netns exec "$ns" "$tables" -t nat -A OUTPUT -p tcp -j WEFT_OUTBOUND
        done
    done
}

# ---------------------------------------------------------------- processes

# make_workdir : WORK, a fresh directory others can read, with a private copy
# of PROXY_BIN the proxy UID can execute (and that a concurrent build cannot
# replace mid-test) at $WORK/weft-proxy.
make_workdir() {
    WORK=$(mktemp -d "/tmp/weft-netns-$TEST_NAME.XXXXXX")
    chmod 755 "$WORK"
    install -m 755 "$PROXY_BIN" "$WORK/weft-proxy"
}

# start NAME NS CMD... : runs CMD in NS in the background, output in NAME.log;
# its pid is in PID_OF[NAME], and cleanup stops it.
start() {
    local name=$1 ns=$2
    shift 2
    ip netns exec "$ns" "$@" >"$WORK/$name.log" 2>&1 &
    PIDS+=("$!")
    PID_OF[$name]=$!
}

# start_proxy NAME NS [VAR=VALUE...] : a transparent-mode proxy (no
# WEFT_PROXY_INBOUND_FORWARD_ADDR) as the proxy UID, with extra variables.
# The inbound listener takes what PREROUTING redirects: 0.0.0.0:4143, or with
# IPV6=1 dual-stack [::]:4143 (IPv4 clients arrive as ::ffff:a.b.c.d). The
# outbound side listens on loopback only, once per family (127.0.0.1 and ::1,
# the OUTPUT REDIRECT targets), so it is no open proxy.
start_proxy() {
    local name=$1 ns=$2 inbound="0.0.0.0:4143" outbound="127.0.0.1:4140"
    shift 2
    if ((IPV6)); then inbound="[::]:4143" outbound="127.0.0.1:4140,[::1]:4140"; fi
    start "$name" "$ns" env -i PATH="$PATH" \
        WEFT_PROXY_INBOUND_LISTEN_ADDR="$inbound" \
        WEFT_PROXY_OUTBOUND_LISTEN_ADDR="$outbound" \
        WEFT_PROXY_ADMIN_LISTEN_ADDR="127.0.0.1:4191" \
        WEFT_PROXY_SHUTDOWN_GRACE_PERIOD=2s \
        WEFT_PROXY_LOG="${WEFT_PROXY_LOG:-warn,weft_proxy=debug}" \
        "$@" \
        setpriv --reuid="$PROXY_UID" --regid="$PROXY_UID" --clear-groups -- "$WORK/weft-proxy"
}

# wait_for WHAT SECONDS CMD... : retries CMD until it succeeds.
wait_for() {
    local what=$1 seconds=$2
    shift 2
    for _ in $(seq $((seconds * 10))); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    log "timed out after ${seconds}s waiting for $what"
    return 1
}

# wait_ready NAME NS [URL] : URL (default: the proxy admin's /ready) answers
# 200 in NS (fails at once if NAME exits).
wait_ready() {
    local name=$1 ns=$2 url=${3:-http://127.0.0.1:4191/ready} pid=${PID_OF[$1]} status=0
    for _ in $(seq 200); do
        if ! alive "$pid"; then
            wait "$pid" || status=$?
            log "$name exited with status $status before it was ready"
            return 1
        fi
        if ip netns exec "$ns" curl -sf --max-time 2 "$url" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    log "timed out after 20s waiting for $name's $url"
    return 1
}

# ---------------------------------------------------------------- checks

# metric_sum FILE FAMILY LABEL... : sum of FAMILY's samples carrying every
# LABEL (each written exactly as in the exposition, e.g. direction="inbound").
metric_sum() {
    local file=$1 family=$2
    shift 2
    awk -v family="$family" -v labels="$(printf '%s\n' "$@")" '
        BEGIN { n = split(labels, want, "\n"); sum = 0 }
        index($0, family "{") == 1 {
            for (i = 1; i <= n; i++) if (want[i] != "" && index($0, want[i]) == 0) next
            rest = substr($0, index($0, "} ") + 2); split(rest, field, " "); sum += field[1]
        }
        END { print sum + 0 }' "$file"
}

# scrape SIDE : the SIDE (client or server) proxy's /metrics into SIDE.metrics.
scrape() {
    local side=$1 ns=$NS_CLIENT
    [[ $side == server ]] && ns=$NS_SERVER
    ip netns exec "$ns" curl -sf --max-time 5 http://127.0.0.1:4191/metrics >"$WORK/$side.metrics" 2>/dev/null || true
}

# expect_metric SIDE OP WANT FAMILY LABEL... : the sum must become OP WANT
# (OP is an awk comparison: ">", ">=" or "=="); metrics of a connection may be
# recorded when it closes, so scrape again for a while.
expect_metric() {
    local side=$1 op=$2 want=$3 family=$4
    shift 4
    local sum=0 test="BEGIN { exit !(s $op w) }"
    for _ in $(seq 30); do
        scrape "$side"
        sum=$(metric_sum "$WORK/$side.metrics" "$family" "$@")
        if awk -v s="$sum" -v w="$want" "$test"; then break; fi
        sleep 0.2
    done
    local desc
    desc="$side proxy: $family{$(IFS=,; echo "$*")} = $sum"
    if awk -v s="$sum" -v w="$want" "$test"; then ok "$desc"; else fail "$desc, expected $op $want"; fi
}

# check_graceful_stop NAME... : SIGTERM to each; each must exit 0 within 15s.
check_graceful_stop() {
    local name status
    for name in "$@"; do
        kill -TERM "${PID_OF[$name]}"
    done
    for name in "$@"; do
        status=0
        for _ in $(seq 150); do alive "${PID_OF[$name]}" || break; sleep 0.1; done
        if alive "${PID_OF[$name]}"; then
            fail "$name still running 15s after SIGTERM"
            continue
        fi
        wait "${PID_OF[$name]}" || status=$?
        if ((status == 0)); then ok "$name exited 0 on SIGTERM"; else fail "$name exited $status on SIGTERM"; fi
    done
}
