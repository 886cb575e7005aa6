#!/usr/bin/env bash
# Privileged end-to-end test: transparent interception + discovery.
#
# An unmodified client talks to *virtual* service addresses (Kubernetes-style
# clusterIPs nothing listens on); the client-side weft-proxy intercepts the
# connection, asks the controller what the original destination is, and
# balances over the service's endpoints:
#
#   client ns (10.203.8.1)                      server ns (10.203.8.2)
#   curl http://10.96.0.10/                     python http.server :8080 (web-1)
#   redis-cli -h 10.96.0.20 -p 6379             python http.server :8081 (web-2)
#     │ route 10.96.0.0/16 via veth               redis-server :6379 (cache-1)
#     │ OUTPUT nat: REDIRECT → 4140               redis-server :6380 (cache-2)
#     ▼                                           ▲ connects as UID 2102 (not redirected)
#   weft-proxy outbound 127.0.0.1:4140            │
#     (UID 2102, SO_ORIGINAL_DST 10.96.0.x)     weft-proxy inbound 0.0.0.0:4143
#     │ GetProfile / Get ──► weft-controller      (UID 2102, transparent; 6380 opaque)
#     │                      127.0.0.1:18086      ▲
#     │                      (mesh file: web,     │ PREROUTING nat: REDIRECT → 4143
#     │                       cache, 4 workloads) │
#     └─ P2C over the endpoints ───── veth ───────┘
#
# Passes when curl to the web clusterIP succeeds every time and reaches both
# HTTP servers, redis-cli to the cache clusterIP succeeds every time and
# reaches both redis instances, the client proxy's /metrics name the services
# (authority, dst_service, route_request_total, tcp_open_total), and a target
# discovery does not cover still goes to its original destination. Only
# addresses inside the two namespaces and loopback are used. IPv4 only.
#
# Needs root, iproute2, iptables (nft or legacy, with the nat table), curl,
# python3, redis-server, redis-cli, setpriv (util-linux).
#
# Env: WEFT_PROXY_BIN          proxy binary (default: target/debug/weft-proxy)
#      WEFT_CONTROLLER_BIN     controller binary (default: target/debug/weft-controller)
#      KEEP_LOGS=1             print the logs even when the test passes
#
# Exit status: 0 all checks passed, 1 a check failed, 2 cannot run here.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PROXY_BIN=${WEFT_PROXY_BIN:-$ROOT/target/debug/weft-proxy}
CONTROLLER_BIN=${WEFT_CONTROLLER_BIN:-$ROOT/target/debug/weft-controller}
PROXY_UID=2102
ID=$$
NS_CLIENT=weft-dclient-$ID
NS_SERVER=weft-dserver-$ID
CLIENT_V4=10.203.8.1
SERVER_V4=10.203.8.2
SERVICE_NET=10.96.0.0/16
WEB_IP=10.96.0.10
CACHE_IP=10.96.0.20
WEB_PORTS=(8080 8081)
REDIS_PORTS=(6379 6380)
# The controller runs in the client namespace, on loopback.
DESTINATION_ADDR=127.0.0.1:18086
CONTROLLER_ADMIN_ADDR=127.0.0.1:19990
WEB_NAME=web.shop.svc.cluster.local:80
MARKER_PREFIX="weft-netns-discovery-$ID"
CURLS=30
REDIS_CALLS=20

WORK=""
PIDS=()
FAILED=0
PASSED=0

log() { printf 'netns/discovery: %s\n' "$*"; }
ok() { PASSED=$((PASSED + 1)); printf '  ok    %s\n' "$*"; }
fail() { FAILED=$((FAILED + 1)); printf '  FAIL  %s\n' "$*"; }
in_client() { ip netns exec "$NS_CLIENT" "$@"; }
in_server() { ip netns exec "$NS_SERVER" "$@"; }
# alive PID: running (a zombie, exited but not yet reaped, is not). The state
# is read once: the shell may reap the process between two looks at /proc, and
# a status file that is gone means "not running", not "running".
alive() {
    local state
    state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null) || return 1
    [[ -n $state && $state != [ZX] ]]
}
marker() { printf '%s-web-%s' "$MARKER_PREFIX" "$1"; }

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
        grep -E '^(request_total|response_total|route_|tcp_open|tcp_close|inbound_|outbound_|control_)' "$file" | head -n 80
    done
}

# ---------------------------------------------------------------- preflight

preflight() {
    if ((EUID != 0)); then
        log "needs root (network namespaces, iptables)"
        exit 2
    fi
    local missing=()
    for tool in ip iptables curl python3 redis-server redis-cli setpriv; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    if ((${#missing[@]})); then
        log "missing tools: ${missing[*]} (.ci/run installs them)"
        exit 2
    fi
    if [[ ! -x $PROXY_BIN ]]; then
        log "no proxy binary at $PROXY_BIN (cargo build --workspace, or set WEFT_PROXY_BIN)"
        exit 2
    fi
    if [[ ! -x $CONTROLLER_BIN ]]; then
        log "no controller binary at $CONTROLLER_BIN (cargo build --workspace, or set WEFT_CONTROLLER_BIN)"
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
        ip netns exec "$ns" ip link set lo up
        ip netns exec "$ns" ip link set veth0 up
    done
    # The service network is virtual, as in Kubernetes: it only needs a route
    # so that connect() gets as far as the OUTPUT nat REDIRECT. Traffic that
    # escaped the proxy would go to the server namespace, which has no route
    # back into 10.96.0.0/16 and nothing listening there.
    in_client ip route add "$SERVICE_NET" via "$SERVER_V4" dev veth0
}

# The rules a sidecar init container installs: inbound TCP to the proxy's
# inbound port (except the proxy's own ports), the app's outbound TCP to the
# outbound port (except the proxy's own traffic, by UID, and loopback).
install_rules() {
    local ns=$1
    ip netns exec "$ns" iptables -t nat -N WEFT_INBOUND
    ip netns exec "$ns" iptables -t nat -A WEFT_INBOUND -p tcp --dport 4143 -j RETURN
    ip netns exec "$ns" iptables -t nat -A WEFT_INBOUND -p tcp --dport 4191 -j RETURN
    ip netns exec "$ns" iptables -t nat -A WEFT_INBOUND -p tcp -j REDIRECT --to-ports 4143
    ip netns exec "$ns" iptables -t nat -A PREROUTING -p tcp -j WEFT_INBOUND

    ip netns exec "$ns" iptables -t nat -N WEFT_OUTBOUND
    ip netns exec "$ns" iptables -t nat -A WEFT_OUTBOUND -m owner --uid-owner "$PROXY_UID" -j RETURN
    ip netns exec "$ns" iptables -t nat -A WEFT_OUTBOUND -o lo -j RETURN
    ip netns exec "$ns" iptables -t nat -A WEFT_OUTBOUND -p tcp -j REDIRECT --to-ports 4140
    ip netns exec "$ns" iptables -t nat -A OUTPUT -p tcp -j WEFT_OUTBOUND
}

# The mesh: two Services with clusterIPs and named target ports, each
# selecting two Workloads on the server's address.
write_mesh_file() {
    cat >"$WORK/mesh.yaml" <<EOF
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  selector: {app: web}
  clusterIP: $WEB_IP
  ports:
  - {name: http, port: 80, targetPort: http}
---
apiVersion: v1
kind: Service
metadata:
  name: cache
  namespace: shop
spec:
  selector: {app: cache}
  clusterIP: $CACHE_IP
  ports:
  - {name: redis, port: 6379, targetPort: redis}
EOF
    local i
    for i in 0 1; do
        cat >>"$WORK/mesh.yaml" <<EOF
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: web-$((i + 1))
  namespace: shop
  labels: {app: web}
spec:
  serviceAccount: web
  addresses: [$SERVER_V4]
  ports:
  - {name: http, port: ${WEB_PORTS[i]}}
  meshed: true
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: cache-$((i + 1))
  namespace: shop
  labels: {app: cache}
spec:
  serviceAccount: cache
  addresses: [$SERVER_V4]
  ports:
  - {name: redis, port: ${REDIS_PORTS[i]}}
  meshed: true
EOF
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

# start_proxy NAME NS VAR=VALUE... : a transparent-mode proxy (no
# WEFT_PROXY_INBOUND_FORWARD_ADDR) as the proxy UID, with extra variables.
start_proxy() {
    local name=$1 ns=$2
    shift 2
    start "$name" "$ns" env -i PATH="$PATH" \
        WEFT_PROXY_INBOUND_LISTEN_ADDR="0.0.0.0:4143" \
        WEFT_PROXY_OUTBOUND_LISTEN_ADDR="127.0.0.1:4140" \
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

# wait_ready NAME NS URL : URL answers 200 (fails at once if NAME exits).
wait_ready() {
    local name=$1 ns=$2 url=$3 pid=${PID_OF[$1]} status=0
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

start_everything() {
    WORK=$(mktemp -d /tmp/weft-netns-discovery.XXXXXX)
    chmod 755 "$WORK"
    # Private copies the proxy UID can execute (and that a concurrent build
    # cannot replace mid-test).
    install -m 755 "$PROXY_BIN" "$WORK/weft-proxy"
    install -m 755 "$CONTROLLER_BIN" "$WORK/weft-controller"
    write_mesh_file

    # Unmodified servers in the server namespace: each HTTP server serves its
    # own marker, each redis keeps its own counter.
    local python i port
    python=$(python3 -c 'import sys; print(sys.executable)')
    for i in 0 1; do
        port=${WEB_PORTS[i]}
        mkdir -p "$WORK/www-$port"
        marker "$port" >"$WORK/www-$port/index.html"
        start "web-$port" "$NS_SERVER" "$python" -u -m http.server "$port" --bind 0.0.0.0 --directory "$WORK/www-$port"
        port=${REDIS_PORTS[i]}
        mkdir -p "$WORK/redis-$port"
        start "redis-$port" "$NS_SERVER" redis-server --port "$port" --bind 0.0.0.0 \
            --protected-mode no --save "" --appendonly no --dir "$WORK/redis-$port"
    done

    # The controller, on the client's loopback (not redirected: -o lo).
    start controller "$NS_CLIENT" env -i PATH="$PATH" RUST_LOG=info \
        "$WORK/weft-controller" --mesh-file "$WORK/mesh.yaml" \
        --destination-addr "$DESTINATION_ADDR" --admin-addr "$CONTROLLER_ADMIN_ADDR"

    # 6379 is opaque by default; the inbound side also sees 6380 (cache-2).
    start_proxy server-proxy "$NS_SERVER" \
        WEFT_PROXY_OPAQUE_PORTS="25,587,3306,4444,5432,6379,6380,9300,11211"
    # The initial timeout is generous: a first lookup that fell back to the
    # original (virtual) destination would fail the request.
    start_proxy client-proxy "$NS_CLIENT" \
        WEFT_PROXY_DESTINATION_SVC_ADDR="$DESTINATION_ADDR" \
        WEFT_PROXY_DESTINATION_PROFILE_NETWORKS="$SERVICE_NET" \
        WEFT_PROXY_DESTINATION_INITIAL_TIMEOUT=3s

    for port in "${WEB_PORTS[@]}"; do
        wait_for "web :$port" 10 in_server curl -sf "http://127.0.0.1:$port/"
    done
    for port in "${REDIS_PORTS[@]}"; do
        wait_for "redis :$port" 10 in_server redis-cli -h 127.0.0.1 -p "$port" PING
    done
    wait_ready controller "$NS_CLIENT" "http://$CONTROLLER_ADMIN_ADDR/ready"
    wait_ready server-proxy "$NS_SERVER" http://127.0.0.1:4191/ready
    wait_ready client-proxy "$NS_CLIENT" http://127.0.0.1:4191/ready
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

scrape() {
    local side=$1 ns=$NS_CLIENT
    [[ $side == server ]] && ns=$NS_SERVER
    ip netns exec "$ns" curl -sf --max-time 5 http://127.0.0.1:4191/metrics >"$WORK/$side.metrics" 2>/dev/null || true
}

# expect_metric SIDE OP WANT FAMILY LABEL... : the sum must become OP WANT
# (OP is an awk comparison: ">" or "=="); metrics of a connection may be
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

# 1–2: HTTP to the web clusterIP is balanced over both endpoints.
check_http() {
    log "HTTP: $CURLS x curl http://$WEB_IP/ (service web, clusterIP)"
    local i body good=0 errors="" port
    declare -A seen=()
    for i in $(seq "$CURLS"); do
        if body=$(timeout 15 ip netns exec "$NS_CLIENT" curl -sS --fail --max-time 10 "http://$WEB_IP/" 2>&1); then
            good=$((good + 1))
            seen[$body]=$((${seen[$body]:-0} + 1))
        else
            errors+=" [#$i: $body]"
        fi
    done
    if ((good == CURLS)); then ok "all $CURLS requests to $WEB_IP:80 succeeded"; else fail "$good of $CURLS requests to $WEB_IP:80 succeeded:$errors"; fi
    local counts=""
    for port in "${WEB_PORTS[@]}"; do counts+=" :$port=${seen[$(marker "$port")]:-0}"; done
    if [[ -n ${seen[$(marker "${WEB_PORTS[0]}")]:-} && -n ${seen[$(marker "${WEB_PORTS[1]}")]:-} ]]; then
        ok "both web endpoints answered ($counts)"
    else
        fail "not both web endpoints answered ($counts; bodies: ${!seen[*]})"
    fi

    expect_metric client ">" 0 control_request_total "addr=\"$DESTINATION_ADDR\""
    local web="authority=\"$WEB_NAME\""
    expect_metric client ">=" "$CURLS" request_total 'direction="outbound"' "$web" 'dst_service="web"' 'dst_namespace="shop"'
    expect_metric client ">=" "$CURLS" response_total 'direction="outbound"' "$web" 'dst_service="web"' 'status_code="200"'
    expect_metric client "==" "$CURLS" route_request_total 'direction="outbound"' "dst=\"$WEB_NAME\""
    # Each endpoint's requests carry its workload's name.
    for i in 0 1; do
        expect_metric client ">" 0 request_total 'direction="outbound"' "$web" \
            "target_addr=\"$SERVER_V4:${WEB_PORTS[i]}\"" "dst_workload=\"web-$((i + 1))\""
    done
    expect_metric server ">=" "$CURLS" request_total 'direction="inbound"'
}

# 3–4: redis to the cache clusterIP is balanced over both instances.
check_redis() {
    log "opaque TCP: $REDIS_CALLS x redis-cli -h $CACHE_IP -p 6379 INCR (service cache, clusterIP)"
    local i out good=0 errors="" port
    for i in $(seq "$REDIS_CALLS"); do
        if out=$(timeout 15 ip netns exec "$NS_CLIENT" redis-cli -h "$CACHE_IP" -p 6379 INCR hits 2>&1) \
            && [[ $out =~ ^[0-9]+$ ]]; then
            good=$((good + 1))
        else
            errors+=" [#$i: $out]"
        fi
    done
    if ((good == REDIS_CALLS)); then ok "all $REDIS_CALLS INCRs via $CACHE_IP:6379 succeeded"; else fail "$good of $REDIS_CALLS INCRs via $CACHE_IP:6379 succeeded:$errors"; fi

    # Each instance counted the INCRs it received; together they saw all.
    local total=0 both=1 counts="" n
    for port in "${REDIS_PORTS[@]}"; do
        n=$(in_server redis-cli -h 127.0.0.1 -p "$port" GET hits 2>&1) || n="?"
        [[ $n =~ ^[0-9]+$ ]] || { counts+=" :$port=$n"; both=0; continue; }
        counts+=" :$port=$n"
        total=$((total + n))
        ((n > 0)) || both=0
    done
    if ((both && total == good)); then
        ok "both redis instances received INCRs ($counts)"
    else
        fail "expected both redis instances to count INCRs, $good in total ($counts)"
    fi

    local cache='dst_service="cache"'
    expect_metric client ">=" "$REDIS_CALLS" tcp_open_total 'direction="outbound"' 'peer="dst"' "$cache"
    for i in 0 1; do
        expect_metric client ">" 0 tcp_open_total 'direction="outbound"' 'peer="dst"' "$cache" \
            "target_addr=\"$SERVER_V4:${REDIS_PORTS[i]}\"" "dst_workload=\"cache-$((i + 1))\""
    done
    expect_metric server ">" 0 tcp_read_bytes_total 'direction="inbound"' "target_addr=\"$SERVER_V4:${REDIS_PORTS[1]}\""
}

# 5: a target discovery does not cover goes to its original destination.
check_original() {
    local port=${WEB_PORTS[0]} got
    log "a target outside $SERVICE_NET: curl http://$SERVER_V4:$port/"
    got=$(timeout 15 ip netns exec "$NS_CLIENT" curl -sS --fail --max-time 10 "http://$SERVER_V4:$port/" 2>&1) || true
    if [[ $got == "$(marker "$port")" ]]; then
        ok "curl http://$SERVER_V4:$port/ reached web :$port through the proxies"
    else
        fail "curl http://$SERVER_V4:$port/: expected '$(marker "$port")', got '$got'"
    fi
    expect_metric client "==" 1 request_total 'direction="outbound"' "authority=\"$SERVER_V4:$port\"" "target_addr=\"$SERVER_V4:$port\""
    if grep "^request_total{direction=\"outbound\",authority=\"$SERVER_V4:$port\"" "$WORK/client.metrics" | grep -q 'dst_'; then
        fail "the original-destination request carries dst_* labels: $(grep -m1 "authority=\"$SERVER_V4:$port\"" "$WORK/client.metrics")"
    else
        ok "the original-destination request carries no dst_* labels"
    fi
}

check_interception() {
    # The apps must only ever have seen the server proxy (connecting from the
    # server's own address), never the client: nothing bypassed the proxies.
    local port
    for port in "${WEB_PORTS[@]}"; do
        if grep -q "^$CLIENT_V4 " "$WORK/web-$port.log"; then
            fail "web :$port saw the client's address directly: $(grep -m1 "^$CLIENT_V4 " "$WORK/web-$port.log")"
        elif grep -q '"GET / HTTP' "$WORK/web-$port.log"; then
            ok "web :$port saw only the proxy as its client"
        else
            fail "web :$port logged no request at all"
        fi
    done
    for port in "${REDIS_PORTS[@]}"; do
        if in_server redis-cli -p "$port" CLIENT LIST 2>/dev/null | grep -q "addr=$CLIENT_V4:"; then
            fail "redis :$port has a client connected from $CLIENT_V4 directly"
        fi
    done
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
    log "namespaces $NS_CLIENT and $NS_SERVER, proxy $PROXY_BIN as UID $PROXY_UID, controller $CONTROLLER_BIN"
    make_namespaces
    install_rules "$NS_CLIENT"
    install_rules "$NS_SERVER"
    start_everything

    check_http
    check_redis
    check_original
    check_interception
    check_graceful_stop

    log "$PASSED checks passed, $FAILED failed"
    ((FAILED == 0))
}

main "$@"
