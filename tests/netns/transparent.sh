#!/usr/bin/env bash
# Privileged end-to-end test: transparent interception with real iptables.
#
# Two network namespaces joined by a veth pair, each with a weft-proxy in
# transparent mode and the nat rules a sidecar init container installs:
#
#   client ns (10.203.7.1, fd77:203::1)        server ns (10.203.7.2, fd77:203::2)
#   curl / redis-cli (unmodified)               python http.server :8080, redis :6379
#     │ OUTPUT nat: REDIRECT → 4140               ▲ connects as UID 2102 (not redirected)
#     ▼                                           │
#   weft-proxy outbound [::]:4140 ── veth ──► PREROUTING nat: REDIRECT → 4143
#     (UID 2102, SO_ORIGINAL_DST)                 weft-proxy inbound [::]:4143
#                                                 (UID 2102, no INBOUND_FORWARD_ADDR)
#
# Passes when unmodified clients reach the servers over IPv4 and IPv6, and
# both proxies' /metrics show the traffic (HTTP request counts and opaque TCP
# byte counts). Only addresses inside the two namespaces and loopback are used.
#
# Needs root, iproute2, iptables (nft or legacy, with the nat table), curl,
# python3, redis-server, redis-cli, setpriv (util-linux).
#
# Env: WEFT_PROXY_BIN     proxy binary (default: target/debug/weft-proxy)
#      WEFT_NETNS_IPV6=0  IPv4 only: skip the IPv6 part, IPv4-only listeners
#      KEEP_LOGS=1        print the proxies' logs even when the test passes
#
# Exit status: 0 all checks passed, 1 a check failed, 2 cannot run here.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PROXY_BIN=${WEFT_PROXY_BIN:-$ROOT/target/debug/weft-proxy}
PROXY_UID=2102
ID=$$
NS_CLIENT=weft-client-$ID
NS_SERVER=weft-server-$ID
CLIENT_V4=10.203.7.1
SERVER_V4=10.203.7.2
CLIENT_V6=fd77:203::1
SERVER_V6=fd77:203::2
APP_PORT=8080
REDIS_PORT=6379
MARKER="weft-netns-transparent-$ID"

WORK=""
PIDS=()
FAILED=0
PASSED=0
IPV6=${WEFT_NETNS_IPV6:-1}

log() { printf 'netns/transparent: %s\n' "$*"; }
ok() { PASSED=$((PASSED + 1)); printf '  ok    %s\n' "$*"; }
fail() { FAILED=$((FAILED + 1)); printf '  FAIL  %s\n' "$*"; }
in_client() { ip netns exec "$NS_CLIENT" "$@"; }
in_server() { ip netns exec "$NS_SERVER" "$@"; }
# alive PID: running (a zombie, exited but not yet reaped, is not).
alive() { [[ -e /proc/$1 ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

# ---------------------------------------------------------------- clean-up

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
        grep -E '^(request_total|response_total|tcp_|inbound_http|outbound_http)' "$file" | head -n 60
    done
}

# ---------------------------------------------------------------- preflight

preflight() {
    if ((EUID != 0)); then
        log "needs root (network namespaces, iptables)"
        exit 2
    fi
    local missing=()
    for tool in ip iptables ip6tables curl python3 redis-server redis-cli setpriv; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    if ((${#missing[@]})); then
        log "missing tools: ${missing[*]} (.ci/run installs them)"
        exit 2
    fi
    if [[ ! -x $PROXY_BIN ]]; then
        log "no proxy binary at $PROXY_BIN (cargo build -p weft-proxy, or set WEFT_PROXY_BIN)"
        exit 2
    fi
}

# ---------------------------------------------------------------- topology

make_namespaces() {
    ip netns add "$NS_CLIENT"
    ip netns add "$NS_SERVER"
    # The veth pair is created directly inside the namespaces: nothing in the
    # host namespace changes.
    ip link add veth0 netns "$NS_CLIENT" type veth peer name veth0 netns "$NS_SERVER"
    in_client ip addr add "$CLIENT_V4/24" dev veth0
    in_server ip addr add "$SERVER_V4/24" dev veth0
    for ns in "$NS_CLIENT" "$NS_SERVER"; do
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0 || true
        ip netns exec "$ns" ip link set lo up
        ip netns exec "$ns" ip link set veth0 up
    done
    if ((!IPV6)); then
        log "WEFT_NETNS_IPV6=0: skipping the IPv6 part"
    elif ! in_client ip -6 addr add "$CLIENT_V6/64" dev veth0 nodad 2>/dev/null \
        || ! in_server ip -6 addr add "$SERVER_V6/64" dev veth0 nodad 2>/dev/null; then
        log "IPv6 addresses unavailable: skipping the IPv6 part"
        IPV6=0
    fi
    if ((IPV6)) && ! in_server ip6tables -t nat -S >/dev/null 2>&1; then
        log "ip6tables nat table unavailable: skipping the IPv6 part"
        IPV6=0
    fi
}

# The rules a sidecar init container installs: inbound TCP to the proxy's
# inbound port (except the proxy's own ports), the app's outbound TCP to the
# outbound port (except the proxy's own traffic, by UID, and loopback).
install_rules() {
    local ns=$1 tables
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
}

# ---------------------------------------------------------------- processes

declare -A PID_OF=()

# start NAME NS CMD... : runs CMD in NS in the background, output in NAME.log.
start() {
    local name=$1 ns=$2
    shift 2
    ip netns exec "$ns" "$@" >"$WORK/$name.log" 2>&1 &
    PIDS+=("$!")
    PID_OF[$name]=$!
}

# A transparent-mode proxy (no WEFT_PROXY_INBOUND_FORWARD_ADDR) as the proxy
# UID. With IPv6 the inbound listener is dual-stack ([::]): the PREROUTING
# REDIRECT targets of both families reach it, and IPv4 clients arrive as
# ::ffff:a.b.c.d. The outbound side listens on loopback only, once per family
# (127.0.0.1 and ::1, the OUTPUT REDIRECT targets), so it is no open proxy.
start_proxy() {
    local name=$1 ns=$2 inbound="0.0.0.0:4143" outbound="127.0.0.1:4140"
    if ((IPV6)); then inbound="[::]:4143" outbound="127.0.0.1:4140,[::1]:4140"; fi
    start "$name" "$ns" env -i PATH="$PATH" \
        WEFT_PROXY_INBOUND_LISTEN_ADDR="$inbound" \
        WEFT_PROXY_OUTBOUND_LISTEN_ADDR="$outbound" \
        WEFT_PROXY_ADMIN_LISTEN_ADDR="127.0.0.1:4191" \
        WEFT_PROXY_SHUTDOWN_GRACE_PERIOD=2s \
        WEFT_PROXY_LOG="${WEFT_PROXY_LOG:-warn,weft_proxy=debug}" \
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

start_everything() {
    WORK=$(mktemp -d /tmp/weft-netns.XXXXXX)
    chmod 755 "$WORK"
    # A private copy the proxy UID can execute (and that a concurrent build
    # cannot replace mid-test).
    install -m 755 "$PROXY_BIN" "$WORK/weft-proxy"
    mkdir -p "$WORK/www"
    printf '%s\n' "$MARKER" >"$WORK/www/index.html"

    # Unmodified servers in the server namespace, on all addresses.
    local python
    python=$(python3 -c 'import sys; print(sys.executable)')
    local any="0.0.0.0"
    ((IPV6)) && any="::"
    start app "$NS_SERVER" "$python" -u -m http.server "$APP_PORT" --bind "$any" --directory "$WORK/www"
    start redis "$NS_SERVER" redis-server --port "$REDIS_PORT" --bind 0.0.0.0 -:: \
        --protected-mode no --save "" --appendonly no --dir "$WORK"
    start_proxy server-proxy "$NS_SERVER"
    start_proxy client-proxy "$NS_CLIENT"

    wait_for "the app" 10 in_server curl -sf "http://127.0.0.1:$APP_PORT/"
    wait_for "redis" 10 in_server redis-cli -h 127.0.0.1 -p "$REDIS_PORT" PING
    wait_ready server-proxy "$NS_SERVER"
    wait_ready client-proxy "$NS_CLIENT"
}

# wait_ready NAME NS : the proxy's admin /ready answers 200 (fails at once if
# the proxy exits).
wait_ready() {
    local name=$1 ns=$2 pid=${PID_OF[$1]} status=0
    for _ in $(seq 200); do
        if ! alive "$pid"; then
            wait "$pid" || status=$?
            log "$name exited with status $status before it was ready"
            return 1
        fi
        if ip netns exec "$ns" curl -sf --max-time 2 http://127.0.0.1:4191/ready >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    log "timed out after 20s waiting for $name's /ready"
    return 1
}

# ---------------------------------------------------------------- checks

# expect_output DESC WANT NS CMD... : CMD (run in NS) must print exactly WANT.
expect_output() {
    local desc=$1 want=$2 ns=$3 got
    shift 3
    got=$(timeout 15 ip netns exec "$ns" "$@" 2>&1) || true
    got=${got%$'\n'}
    if [[ $got == "$want" ]]; then ok "$desc"; else fail "$desc: expected '$want', got '$got'"; fi
}

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

scrape() {
    local side=$1
    ip netns exec "weft-$side-$ID" curl -sf --max-time 5 http://127.0.0.1:4191/metrics >"$WORK/$side.metrics" 2>/dev/null || true
}

# expect_metric SIDE FAMILY LABEL... : the sum must become > 0 (metrics of a
# connection may be recorded when it closes, so scrape again for a while).
expect_metric() {
    local side=$1 family=$2
    shift 2
    local sum=0
    for _ in $(seq 30); do
        scrape "$side"
        sum=$(metric_sum "$WORK/$side.metrics" "$family" "$@")
        if awk -v s="$sum" 'BEGIN { exit !(s > 0) }'; then break; fi
        sleep 0.2
    done
    local desc="$side proxy: $family{$(IFS=,; echo "$*")} = $sum"
    if awk -v s="$sum" 'BEGIN { exit !(s > 0) }'; then ok "$desc"; else fail "$desc, expected > 0"; fi
}

check_family() {
    local label=$1 host=$2 url_host=$3
    log "$label: unmodified clients in the client namespace"
    expect_output "$label curl http://$url_host:$APP_PORT/ answers through both proxies" \
        "$MARKER" "$NS_CLIENT" curl -gsS --max-time 10 "http://$url_host:$APP_PORT/"
    expect_output "$label redis-cli -h $host PING (opaque port $REDIS_PORT)" \
        "PONG" "$NS_CLIENT" redis-cli -h "$host" -p "$REDIS_PORT" PING

    log "$label: the proxies' metrics show the traffic"
    local http="target_addr=\"$url_host:$APP_PORT\"" redis="target_addr=\"$url_host:$REDIS_PORT\""
    expect_metric client request_total 'direction="outbound"' "$http"
    expect_metric client response_total 'direction="outbound"' "$http" 'status_code="200"'
    expect_metric server request_total 'direction="inbound"' "$http"
    expect_metric server response_total 'direction="inbound"' "$http" 'status_code="200"'
    expect_metric client tcp_read_bytes_total 'direction="outbound"' "$redis"
    expect_metric client tcp_write_bytes_total 'direction="outbound"' "$redis"
    expect_metric server tcp_read_bytes_total 'direction="inbound"' "$redis"
    expect_metric server tcp_write_bytes_total 'direction="inbound"' "$redis"
}

check_interception() {
    expect_metric client tcp_detect_total 'direction="outbound"' 'result="opaque_port"'
    expect_metric server tcp_detect_total 'direction="inbound"' 'result="opaque_port"'
    # The app must only ever have seen the server proxy (connecting from the
    # server's own address), never the client: nothing bypassed the proxies.
    if grep -q "$CLIENT_V4\|$CLIENT_V6" "$WORK/app.log"; then
        fail "the app saw the client's address directly: $(grep -m1 "$CLIENT_V4\|$CLIENT_V6" "$WORK/app.log")"
    elif grep -q '"GET / HTTP' "$WORK/app.log"; then
        ok "the app saw only the proxy as its client"
    else
        fail "the app logged no request at all"
    fi
}

check_graceful_stop() {
    local name status
    for name in client-proxy server-proxy; do
        kill -TERM "${PID_OF[$name]}"
    done
    for name in client-proxy server-proxy; do
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

main() {
    preflight
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    log "namespaces $NS_CLIENT and $NS_SERVER, proxy $PROXY_BIN as UID $PROXY_UID"
    make_namespaces
    install_rules "$NS_CLIENT"
    install_rules "$NS_SERVER"
    start_everything

    check_family IPv4 "$SERVER_V4" "$SERVER_V4"
    if ((IPV6)); then
        check_family IPv6 "$SERVER_V6" "[$SERVER_V6]"
    fi
    check_interception
    check_graceful_stop

    local skipped=""
    ((IPV6)) || skipped=" (IPv6 part skipped)"
    log "$PASSED checks passed, $FAILED failed$skipped"
    ((FAILED == 0))
}

main "$@"
