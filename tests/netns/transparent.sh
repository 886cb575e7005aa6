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
# byte counts); and when a server that speaks first on a port in no opaque
# list (a MySQL-like banner on :3307) reaches a silent client through both
# proxies within WEFT_PROXY_SERVER_FIRST_DELAY of each, not the 10 s detect
# timeout. Only addresses inside the two namespaces and loopback are used.
#
# Needs root, iproute2, iptables (nft or legacy, with the nat table), curl,
# python3, redis-server, redis-cli, setpriv (util-linux).
#
# Env: WEFT_PROXY_BIN     proxy binary (default: target/debug/weft-proxy)
#      WEFT_NETNS_IPV6=0  IPv4 only: skip the IPv6 part, IPv4-only listeners
#      KEEP_LOGS=1        print the proxies' logs even when the test passes
#
# Exit status: 0 all checks passed, 1 a check failed, 2 cannot run here.
#
# The plumbing the netns tests share (namespaces, nat rules, processes, metric
# checks) is in lib/common.bash; this file is the test itself.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PROXY_BIN=${WEFT_PROXY_BIN:-$ROOT/target/debug/weft-proxy}
ID=$$
TEST_NAME=transparent
NS_CLIENT=weft-client-$ID
NS_SERVER=weft-server-$ID
CLIENT_V4=10.203.7.1
SERVER_V4=10.203.7.2
CLIENT_V6=fd77:203::1
SERVER_V6=fd77:203::2
IPV6=${WEFT_NETNS_IPV6:-1}
TOOLS=(ip iptables ip6tables curl python3 redis-server redis-cli setpriv)
METRIC_FAMILIES='request_total|response_total|tcp_|inbound_http|outbound_http'
APP_PORT=8080
REDIS_PORT=6379
BANNER_PORT=3307
MARKER="weft-netns-transparent-$ID"

# shellcheck source-path=SCRIPTDIR source=lib/common.bash
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"

# ---------------------------------------------------------------- topology

# IPv6 addresses on veth0, unless WEFT_NETNS_IPV6=0 or the kernel cannot (then
# IPV6=0: the test runs IPv4 only).
add_ipv6() {
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

# ---------------------------------------------------------------- processes

start_everything() {
    make_workdir
    mkdir -p "$WORK/www"
    printf '%s\n' "$MARKER" >"$WORK/www/index.html"

    # Unmodified servers in the server namespace, on all addresses.
    local python
    python=$(python3 -c 'import sys; print(sys.executable)')
    local any="0.0.0.0"
    ((IPV6)) && any="::"
    start app "$NS_SERVER" "$python" -u -m http.server "$APP_PORT" --bind "$any" --directory "$WORK/www"
    # A server that speaks first (a banner, then whatever it is sent back).
    cat >"$WORK/banner.py" <<'PY'
import socket, sys, threading
server = socket.create_server(("", int(sys.argv[1])), family=socket.AF_INET6, dualstack_ipv6=True) \
    if socket.has_dualstack_ipv6() else socket.create_server(("0.0.0.0", int(sys.argv[1])))
def serve(connection):
    with connection:
        connection.sendall(sys.argv[2].encode() + b"\n")
        while data := connection.recv(4096):
            connection.sendall(data)
while True:
    connection, _ = server.accept()
    threading.Thread(target=serve, args=(connection,), daemon=True).start()
PY
    # The silent client: connects, sends nothing, prints what arrives first
    # and how long it took.
    cat >"$WORK/silent-client.py" <<'PY'
import socket, sys, time
started = time.monotonic()
connection = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=15)
line = connection.recv(4096).decode().strip()
print(f"{line} {time.monotonic() - started:.3f}")
PY
    start banner "$NS_SERVER" "$python" -u "$WORK/banner.py" "$BANNER_PORT" "$MARKER-banner"
    start redis "$NS_SERVER" redis-server --port "$REDIS_PORT" --bind 0.0.0.0 -:: \
        --protected-mode no --save "" --appendonly no --dir "$WORK"
    start_proxy server-proxy "$NS_SERVER"
    start_proxy client-proxy "$NS_CLIENT"

    wait_for "the app" 10 in_server curl -sf "http://127.0.0.1:$APP_PORT/"
    wait_for "redis" 10 in_server redis-cli -h 127.0.0.1 -p "$REDIS_PORT" PING
    wait_for "the banner server" 10 in_server "$python" -c \
        "import socket; socket.create_connection(('127.0.0.1', $BANNER_PORT), timeout=1)"
    wait_ready server-proxy "$NS_SERVER"
    wait_ready client-proxy "$NS_CLIENT"
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

check_family() {
    local label=$1 host=$2 url_host=$3
    log "$label: unmodified clients in the client namespace"
    expect_output "$label curl http://$url_host:$APP_PORT/ answers through both proxies" \
        "$MARKER" "$NS_CLIENT" curl -gsS --max-time 10 "http://$url_host:$APP_PORT/"
    expect_output "$label redis-cli -h $host PING (opaque port $REDIS_PORT)" \
        "PONG" "$NS_CLIENT" redis-cli -h "$host" -p "$REDIS_PORT" PING

    log "$label: the proxies' metrics show the traffic"
    local http="target_addr=\"$url_host:$APP_PORT\"" redis="target_addr=\"$url_host:$REDIS_PORT\""
    expect_metric client ">" 0 request_total 'direction="outbound"' "$http"
    expect_metric client ">" 0 response_total 'direction="outbound"' "$http" 'status_code="200"'
    expect_metric server ">" 0 request_total 'direction="inbound"' "$http"
    expect_metric server ">" 0 response_total 'direction="inbound"' "$http" 'status_code="200"'
    expect_metric client ">" 0 tcp_read_bytes_total 'direction="outbound"' "$redis"
    expect_metric client ">" 0 tcp_write_bytes_total 'direction="outbound"' "$redis"
    expect_metric server ">" 0 tcp_read_bytes_total 'direction="inbound"' "$redis"
    expect_metric server ">" 0 tcp_write_bytes_total 'direction="inbound"' "$redis"
}

# A silent client gets the banner of a server that speaks first, on a port
# no proxy knows as opaque, through the client proxy's transparent outbound
# and the server proxy's inbound: each waits WEFT_PROXY_SERVER_FIRST_DELAY
# (200 ms) for client bytes, then connects early and relays the banner.
check_server_first() {
    local got line seconds
    log "a server that speaks first on :$BANNER_PORT (in no opaque list), a silent client"
    got=$(timeout 20 ip netns exec "$NS_CLIENT" python3 "$WORK/silent-client.py" \
        "$SERVER_V4" "$BANNER_PORT" 2>&1) || true
    line=${got% *} seconds=${got##* }
    if [[ $line == "$MARKER-banner" ]] && awk -v s="$seconds" 'BEGIN { exit !(s < 5) }'; then
        ok "the banner reached the silent client through both proxies in ${seconds}s (detect timeout: 10s)"
    else
        fail "banner through both proxies: expected '$MARKER-banner' in under 5s, got '$got'"
    fi
    expect_metric client ">" 0 tcp_detect_total 'direction="outbound"' 'result="server_first"'
    expect_metric server ">" 0 tcp_detect_total 'direction="inbound"' 'result="server_first"'
    expect_metric server ">" 0 tcp_write_bytes_total 'direction="inbound"' \
        "target_addr=\"$SERVER_V4:$BANNER_PORT\""
}

check_interception() {
    expect_metric client ">" 0 tcp_detect_total 'direction="outbound"' 'result="opaque_port"'
    expect_metric server ">" 0 tcp_detect_total 'direction="inbound"' 'result="opaque_port"'
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

main() {
    preflight
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    log "namespaces $NS_CLIENT and $NS_SERVER, proxy $PROXY_BIN as UID $PROXY_UID"
    make_namespaces
    add_ipv6
    install_rules "$NS_CLIENT" "$NS_SERVER"
    start_everything

    check_family IPv4 "$SERVER_V4" "$SERVER_V4"
    if ((IPV6)); then
        check_family IPv6 "$SERVER_V6" "[$SERVER_V6]"
    fi
    check_server_first
    check_interception
    check_graceful_stop client-proxy server-proxy

    ((IPV6)) || SUMMARY_NOTE="IPv6 part skipped"
    summary
}

main "$@"
