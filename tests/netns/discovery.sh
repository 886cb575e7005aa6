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
#
# The plumbing the netns tests share (namespaces, nat rules, processes, metric
# checks) is in lib/common.bash; this file is the test itself.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PROXY_BIN=${WEFT_PROXY_BIN:-$ROOT/target/debug/weft-proxy}
CONTROLLER_BIN=${WEFT_CONTROLLER_BIN:-$ROOT/target/debug/weft-controller}
ID=$$
TEST_NAME=discovery
NS_CLIENT=weft-dclient-$ID
NS_SERVER=weft-dserver-$ID
CLIENT_V4=10.203.8.1
SERVER_V4=10.203.8.2
TOOLS=(ip iptables curl python3 redis-server redis-cli setpriv)
METRIC_FAMILIES='request_total|response_total|route_|tcp_open|tcp_close|inbound_|outbound_|control_'
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

# shellcheck source-path=SCRIPTDIR source=lib/common.bash
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"

marker() { printf '%s-web-%s' "$MARKER_PREFIX" "$1"; }

# ---------------------------------------------------------------- topology

# The service network is virtual, as in Kubernetes: it only needs a route so
# that connect() gets as far as the OUTPUT nat REDIRECT. Traffic that escaped
# the proxy would go to the server namespace, which has no route back into
# 10.96.0.0/16 and nothing listening there.
add_service_route() {
    in_client ip route add "$SERVICE_NET" via "$SERVER_V4" dev veth0
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

start_everything() {
    make_workdir
    # A private copy of the controller too (see make_workdir).
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
    wait_ready server-proxy "$NS_SERVER"
    wait_ready client-proxy "$NS_CLIENT"
}

# ---------------------------------------------------------------- checks

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

main() {
    preflight
    require_binary controller "$CONTROLLER_BIN" WEFT_CONTROLLER_BIN
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    log "namespaces $NS_CLIENT and $NS_SERVER, proxy $PROXY_BIN as UID $PROXY_UID, controller $CONTROLLER_BIN"
    make_namespaces
    add_service_route
    install_rules "$NS_CLIENT" "$NS_SERVER"
    start_everything

    check_http
    check_redis
    check_original
    check_interception
    check_graceful_stop client-proxy server-proxy

    summary
}

main "$@"
