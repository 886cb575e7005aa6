#!/usr/bin/env bash
# Privileged end-to-end test: weft-init's iptables rules, for real, with each
# backend (iptables-nft, then iptables-legacy; each in its own network
# namespaces, never both in one), as the injector configures a pod.
#
#   netns ctl (bridge br0, 10.205.N.1): weft-controller (identity, destination)
#     ├─ veth ─ netns client (10.205.N.2)          ├─ veth ─ netns server (10.205.N.3)
#     │   weft-init --backend auto                  │   weft-init --backend B
#     │     --skip-outbound-ports 8081                │     --skip-inbound-ports 4190,4191,8082
#     │   weft-proxy as UID 2102 (transparent,        │   weft-proxy as UID 2102 (transparent,
#     │     identity client.shop)                     │     identity web.shop)
#     │   curl as nobody (unmodified) ─ OUTPUT ─► 4140 ═══ mutual TLS ═══► PREROUTING ─► 4143
#     │                                                 python http.server :8080, :8081, :8082
#
# Checks, per backend:
#   1. weft-init installs with the backend asked for (auto: the one already
#      holding the pod's rules), the other backend stays empty, and a rule
#      that is not weft's is kept.
#   2. running weft-init again leaves iptables-save -t nat identical.
#   3. curl as an ordinary user reaches :8080 through both proxies with
#      mutual TLS: request_total{tls="true"} on the client's outbound and the
#      server's inbound each equal the number of curls (no loop, no storm),
#      and the app only ever sees the server's proxy.
#   4. the proxy's UID is not redirected: curl as UID 2102 in the client
#      namespace bypasses the client proxy.
#   5. --skip-outbound-ports 8081 bypasses the client proxy (its metrics do
#      not move) but not the server's; --skip-inbound-ports 8082 bypasses the
#      server proxy (a client in ctl reaches the app directly, and so does
#      the meshed client: discovery answers that port as unmeshed).
#   5b. the controller's proxy injector, from the client namespace: TLS only
#      (plaintext gets nothing), no client certificate needed, verified with
#      only the trust anchors as the API server does; GET 405, other paths
#      404, a 4 MiB body 413; a pod review answered allowed with the proxy.
#   6. weft-init --remove restores the nat table exactly (iptables-save with
#      counters stripped), a second --remove does nothing, and traffic then
#      flows directly (no proxy's metrics move, the app sees the client).
#
# Needs root, iproute2, iptables-nft and iptables-legacy (with their -save),
# curl, python3, setpriv (util-linux); the weft-init, weft-proxy and
# weft-controller binaries (cargo build).
#
# Env: WEFT_INIT_BIN        weft-init binary (default: next to WEFT_PROXY_BIN)
#      WEFT_PROXY_BIN       proxy binary (default: target/debug/weft-proxy)
#      WEFT_CONTROLLER_BIN  controller binary (default: target/debug/weft-controller)
#      WEFT_INIT_BACKENDS   the backends to test (default: "nft legacy")
#      KEEP_LOGS=1          print the logs even when the test passes
#      CI=true              a missing tool is a failure (exit 1), not a skip
#
# Exit status: 0 all checks passed, 1 a check failed, 2 cannot run here.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PROXY_BIN=${WEFT_PROXY_BIN:-$ROOT/target/debug/weft-proxy}
CONTROLLER_BIN=${WEFT_CONTROLLER_BIN:-$ROOT/target/debug/weft-controller}
INIT_BIN=${WEFT_INIT_BIN:-$(dirname "$PROXY_BIN")/weft-init}
read -ra BACKENDS <<<"${WEFT_INIT_BACKENDS:-nft legacy}"
ID=$$
TEST_NAME=init
# Set per backend (see use_backend); lib/common.bash needs them set now.
NS_CLIENT=weft-icli-$ID
NS_SERVER=weft-isrv-$ID
NS_CTL=weft-ictl-$ID
CLIENT_V4=10.205.0.2
SERVER_V4=10.205.0.3
CTL_V4=10.205.0.1
TOOLS=(ip curl python3 setpriv iptables-nft iptables-nft-save iptables-legacy iptables-legacy-save)
METRIC_FAMILIES='request_total|response_total|tcp_open_total|identity_'
APP_PORTS=(8080 8081 8082)
MESHED_PORT=8080
SKIP_OUTBOUND_PORT=8081
SKIP_INBOUND_PORT=8082
IDENTITY_PORT=18080
DESTINATION_PORT=18086
INJECTOR_PORT=18443
INJECTOR_NAME=weft-proxy-injector.weft.svc
CONTROLLER_ADMIN_ADDR=127.0.0.1:19990
APP_UID=65534
CURLS=5
MARKER="weft-netns-init-$ID"
# Every namespace this run creates, deleted on exit whatever happens.
ALL_NAMESPACES=()

# shellcheck source-path=SCRIPTDIR source=lib/common.bash
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"

in_ctl() { ip netns exec "$NS_CTL" "$@"; }

# ---------------------------------------------------------------- preflight

preflight_init() {
    if ((EUID != 0)); then
        log "skipped: needs root (network namespaces, iptables)"
        exit 2
    fi
    local missing=() tool
    for tool in "${TOOLS[@]}"; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    if ((${#missing[@]})); then
        if [[ ${CI:-} == true ]]; then
            log "FAIL: missing tools under CI=true: ${missing[*]}"
            exit 1
        fi
        log "skipped: missing tools: ${missing[*]}"
        exit 2
    fi
    require_binary proxy "$PROXY_BIN" WEFT_PROXY_BIN
    require_binary controller "$CONTROLLER_BIN" WEFT_CONTROLLER_BIN
    require_binary weft-init "$INIT_BIN" WEFT_INIT_BIN
}

# The EXIT trap: every namespace of this run (their processes killed), then
# lib/common.bash's cleanup (the processes it knows, the logs, the work dir).
cleanup_init() {
    local status=$?
    set +e
    for pid in "${PIDS[@]}"; do alive "$pid" && kill -TERM "$pid" 2>/dev/null; done
    for ns in "${ALL_NAMESPACES[@]}"; do
        if ip netns list | awk '{ print $1 }' | grep -qx "$ns"; then
            for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
            ip netns del "$ns"
        fi
    done
    if [[ -n $WORK && -d $WORK ]] && { ((status != 0)) || [[ ${KEEP_LOGS:-} == 1 ]]; }; then
        for file in "$WORK"/*/*.log "$WORK"/*/*.diff; do
            [[ -s $file ]] || continue
            printf '\n----- %s (last 60 lines) -----\n' "${file#"$WORK"/}"
            tail -n 60 "$file"
        done
    fi
    (exit "$status")
    cleanup
}

# ---------------------------------------------------------------- topology

# use_backend B N : this backend's names and addresses (10.205.N.0/24).
use_backend() {
    BACKEND=$1
    NS_CTL=weft-ictl-$1-$ID
    NS_CLIENT=weft-icli-$1-$ID
    NS_SERVER=weft-isrv-$1-$ID
    CTL_V4=10.205.$2.1
    CLIENT_V4=10.205.$2.2
    SERVER_V4=10.205.$2.3
    NET_V4=10.205.$2.0/24
    IPTABLES=iptables-$1
    OTHER_SAVE=iptables-legacy-save
    [[ $1 == legacy ]] && OTHER_SAVE=iptables-nft-save
    LOGS=$WORK/$1
    mkdir -p "$LOGS"
}

# Three namespaces on a bridge that lives in ctl: nothing in the host
# namespace changes.
make_topology() {
    local ns side address
    ALL_NAMESPACES+=("$NS_CTL" "$NS_CLIENT" "$NS_SERVER")
    for ns in "$NS_CTL" "$NS_CLIENT" "$NS_SERVER"; do
        ip netns add "$ns"
        ip netns exec "$ns" ip link set lo up
    done
    in_ctl ip link add br0 type bridge
    in_ctl ip addr add "$CTL_V4/24" dev br0
    in_ctl ip link set br0 up
    for side in client server; do
        ns=$NS_CLIENT address=$CLIENT_V4
        [[ $side == server ]] && ns=$NS_SERVER address=$SERVER_V4
        ip link add veth0 netns "$ns" type veth peer name "$side" netns "$NS_CTL"
        in_ctl ip link set "$side" master br0 up
        ip netns exec "$ns" ip addr add "$address/24" dev veth0
        ip netns exec "$ns" ip link set veth0 up
    done
}

# ---------------------------------------------------------------- nat tables

# nat_table NS : the nat table as BACKEND saves it, without the comment
# lines (a date) and counters ([packets:bytes] change with traffic).
nat_table() {
    ip netns exec "$1" "$IPTABLES-save" -t nat | grep -v '^#' | sed 's/ \[[0-9]*:[0-9]*\]$//'
}

# A rule of the pod's own (not weft's) before weft-init runs: it must
# survive install and removal untouched.
add_foreign_rules() {
    local ns
    for ns in "$NS_CLIENT" "$NS_SERVER"; do
        ip netns exec "$ns" "$IPTABLES" -w -t nat -N APP_NAT
        ip netns exec "$ns" "$IPTABLES" -w -t nat -A APP_NAT -p udp --dport 9 -j RETURN
        ip netns exec "$ns" "$IPTABLES" -w -t nat -A POSTROUTING -j APP_NAT
    done
}

# weft_init NAME NS ARGS... : runs weft-init in NS (output in NAME.log).
weft_init() {
    local name=$1 ns=$2
    shift 2
    ip netns exec "$ns" "$WORK/weft-init" --inbound-proxy-port 4143 --outbound-proxy-port 4140 \
        --proxy-uid "$PROXY_UID" "$@" >"$LOGS/$name.log" 2>&1
}

CLIENT_INIT=()
SERVER_INIT=()

check_install() {
    log "$BACKEND: weft-init in both namespaces"
    add_foreign_rules
    local before_client before_server
    before_client=$(nat_table "$NS_CLIENT")
    before_server=$(nat_table "$NS_SERVER")
    printf '%s\n' "$before_client" >"$LOGS/client-nat-before.txt"
    printf '%s\n' "$before_server" >"$LOGS/server-nat-before.txt"

    # As the injector writes the arguments; the client lets auto pick.
    CLIENT_INIT=(--skip-inbound-ports 4190,4191 --skip-outbound-ports "$SKIP_OUTBOUND_PORT" --backend auto)
    SERVER_INIT=(--skip-inbound-ports "4190,4191,$SKIP_INBOUND_PORT" --backend "$BACKEND")
    if weft_init client-init "$NS_CLIENT" "${CLIENT_INIT[@]}"; then ok "client: weft-init exited 0"; else fail "client: weft-init failed: $(tail -n 3 "$LOGS/client-init.log")"; fi
    if weft_init server-init "$NS_SERVER" "${SERVER_INIT[@]}"; then ok "server: weft-init exited 0"; else fail "server: weft-init failed: $(tail -n 3 "$LOGS/server-init.log")"; fi
    if grep -q "install with $IPTABLES " "$LOGS/client-init.log"; then
        ok "client: --backend auto chose $IPTABLES (the backend holding the pod's rules)"
    else
        fail "client: --backend auto did not choose $IPTABLES: $(grep -m1 'install with' "$LOGS/client-init.log")"
    fi

    local ns side after
    for side in client server; do
        ns=$NS_CLIENT
        [[ $side == server ]] && ns=$NS_SERVER
        after=$(nat_table "$ns")
        printf '%s\n' "$after" >"$LOGS/$side-nat-installed.txt"
        if grep -qx -- "-A PREROUTING -j WEFT_PREROUTING" <<<"$after" \
            && grep -qx -- "-A OUTPUT -j WEFT_OUTPUT" <<<"$after" \
            && grep -qx -- "-A WEFT_OUTPUT -m owner --uid-owner $PROXY_UID -j RETURN" <<<"$after" \
            && grep -qx -- "-A WEFT_INBOUND_REDIRECT -p tcp -j REDIRECT --to-ports 4143" <<<"$after" \
            && grep -qx -- "-A WEFT_OUTBOUND_REDIRECT -p tcp -j REDIRECT --to-ports 4140" <<<"$after"; then
            ok "$side: weft's chains and jumps are in the $BACKEND nat table"
        else
            fail "$side: weft's rules missing from the nat table (see $side-nat-installed.txt)"
        fi
        if grep -qx -- "-A POSTROUTING -j APP_NAT" <<<"$after"; then
            ok "$side: the pod's own rule is kept"
        else
            fail "$side: the pod's own rule is gone"
        fi
        if ip netns exec "$ns" "$OTHER_SAVE" | grep -q '^\*'; then
            fail "$side: $OTHER_SAVE shows tables: the backends are mixed"
        else
            ok "$side: $OTHER_SAVE is empty (one backend only)"
        fi
    done
    grep -qx -- "-A WEFT_OUTPUT -p tcp -m multiport --dports $SKIP_OUTBOUND_PORT -j RETURN" "$LOGS/client-nat-installed.txt" \
        && ok "client: outbound port $SKIP_OUTBOUND_PORT is skipped" || fail "client: no skip rule for $SKIP_OUTBOUND_PORT"
    grep -qx -- "-A WEFT_PREROUTING -p tcp -m multiport --dports 4190,4191,$SKIP_INBOUND_PORT -j RETURN" "$LOGS/server-nat-installed.txt" \
        && ok "server: inbound ports 4190,4191,$SKIP_INBOUND_PORT are skipped" || fail "server: no skip rule for 4190,4191,$SKIP_INBOUND_PORT"

    # Idempotent: a second run leaves the same table.
    weft_init client-init-again "$NS_CLIENT" "${CLIENT_INIT[@]}" || fail "client: second weft-init failed"
    weft_init server-init-again "$NS_SERVER" "${SERVER_INIT[@]}" || fail "server: second weft-init failed"
    for side in client server; do
        ns=$NS_CLIENT
        [[ $side == server ]] && ns=$NS_SERVER
        if diff -u "$LOGS/$side-nat-installed.txt" <(nat_table "$ns") >"$LOGS/$side-nat-again.diff"; then
            ok "$side: weft-init twice leaves iptables-save -t nat identical"
        else
            fail "$side: the second weft-init changed the table: $(cat "$LOGS/$side-nat-again.diff")"
        fi
    done
}

# ---------------------------------------------------------------- processes

write_mesh_file() {
    cat >"$LOGS/mesh.yaml" <<EOF
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: web
  namespace: shop
  labels: {app: web}
  annotations: {config.weft.io/skip-inbound-ports: "$SKIP_INBOUND_PORT"}
spec:
  serviceAccount: web
  addresses: [$SERVER_V4]
  ports:
  - {name: http, port: $MESHED_PORT}
  meshed: true
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: client, namespace: shop, labels: {app: client}}
spec:
  serviceAccount: client
  addresses: [$CLIENT_V4]
  meshed: true
EOF
}

# pod_proxy NAME NS WORKLOAD : the proxy with the environment the injector
# gives it (listeners, discovery, policy, identity), as PROXY_UID.
pod_proxy() {
    local name=$1 ns=$2 workload=$3 controller="$CTL_V4"
    start_proxy "$BACKEND/$name" "$ns" \
        WEFT_PROXY_INBOUND_LISTEN_ADDR=0.0.0.0:4143 \
        WEFT_PROXY_OUTBOUND_LISTEN_ADDR=127.0.0.1:4140 \
        WEFT_PROXY_ADMIN_LISTEN_ADDR=0.0.0.0:4191 \
        WEFT_PROXY_TAP_LISTEN_ADDR=0.0.0.0:4190 \
        WEFT_PROXY_DESTINATION_SVC_ADDR="$controller:$DESTINATION_PORT" \
        WEFT_PROXY_DESTINATION_CONTEXT="{\"ns\":\"shop\",\"pod\":\"$workload\"}" \
        WEFT_PROXY_DESTINATION_PROFILE_NETWORKS="$NET_V4" \
        WEFT_PROXY_DESTINATION_INITIAL_TIMEOUT=3s \
        WEFT_PROXY_POLICY_WORKLOAD="{\"ns\":\"shop\",\"pod\":\"$workload\"}" \
        WEFT_PROXY_POLICY_SVC_ADDR="$controller:$DESTINATION_PORT" \
        WEFT_PROXY_POLICY_CLUSTER_NETWORKS="$NET_V4" \
        WEFT_PROXY_IDENTITY_SVC_ADDR="$controller:$IDENTITY_PORT" \
        WEFT_PROXY_IDENTITY_TOKEN_FILE="$LOGS/tokens/shop/$workload.token" \
        WEFT_PROXY_IDENTITY_LOCAL_NAME="$workload.shop.serviceaccount.identity.weft.cluster.local" \
        WEFT_PROXY_IDENTITY_TRUST_ANCHORS="$(cat "$WORK/state/trust-anchor.pem")"
}

start_everything() {
    write_mesh_file
    local python port
    python=$(python3 -c 'import sys; print(sys.executable)')
    for port in "${APP_PORTS[@]}"; do
        mkdir -p "$LOGS/www-$port"
        printf '%s-%s\n' "$MARKER" "$port" >"$LOGS/www-$port/index.html"
        start "$BACKEND/app-$port" "$NS_SERVER" "$python" -u -m http.server "$port" --bind 0.0.0.0 --directory "$LOGS/www-$port"
    done
    start "$BACKEND/controller" "$NS_CTL" env -i PATH="$PATH" RUST_LOG=info \
        "$WORK/weft-controller" --mesh-file "$LOGS/mesh.yaml" \
        --destination-addr "$CTL_V4:$DESTINATION_PORT" --admin-addr "$CONTROLLER_ADMIN_ADDR" \
        --identity-addr "$CTL_V4:$IDENTITY_PORT" \
        --identity-issuer-dir "$WORK/state/issuer" \
        --identity-trust-anchors "$WORK/state/trust-anchor.pem" \
        --identity-token-dir "$LOGS/tokens" \
        --injector-addr "$CTL_V4:$INJECTOR_PORT"
    wait_ready "$BACKEND/controller" "$NS_CTL" "http://$CONTROLLER_ADMIN_ADDR/ready"
    wait_for "the tokens" 10 test -s "$LOGS/tokens/shop/client.token" -a -s "$LOGS/tokens/shop/web.token"
    # The proxies run as PROXY_UID: they read their tokens like a mounted volume.
    chmod -R a+rX "$LOGS"
    pod_proxy server-proxy "$NS_SERVER" web
    pod_proxy client-proxy "$NS_CLIENT" client
    for port in "${APP_PORTS[@]}"; do
        wait_for "app :$port" 10 in_server curl -sf "http://127.0.0.1:$port/"
    done
    wait_ready "$BACKEND/server-proxy" "$NS_SERVER"
    wait_ready "$BACKEND/client-proxy" "$NS_CLIENT"
}

# stop_backend : this backend's processes, then its namespaces.
stop_backend() {
    local name
    for name in "${!PID_OF[@]}"; do
        [[ $name == "$BACKEND/"* ]] || continue
        kill -TERM "${PID_OF[$name]}" 2>/dev/null || true
    done
    for name in "${!PID_OF[@]}"; do
        [[ $name == "$BACKEND/"* ]] || continue
        for _ in $(seq 50); do alive "${PID_OF[$name]}" || break; sleep 0.1; done
        alive "${PID_OF[$name]}" && kill -KILL "${PID_OF[$name]}" 2>/dev/null
        wait "${PID_OF[$name]}" 2>/dev/null || true
    done
    local ns
    for ns in "$NS_CTL" "$NS_CLIENT" "$NS_SERVER"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null || true
    done
}

# ---------------------------------------------------------------- traffic

# fetch AS_UID NS PORT [HOST] : curl http://HOST:PORT/ (default the server)
# in NS as AS_UID; prints the body.
fetch() {
    local uid=$1 ns=$2 port=$3 host=${4:-$SERVER_V4}
    timeout 15 ip netns exec "$ns" setpriv --reuid="$uid" --regid="$uid" --clear-groups -- \
        curl -sS --fail --max-time 10 "http://$host:$port/" 2>&1
}

# metric SIDE FAMILY LABEL... : the sum, scraped now.
metric() {
    local side=$1
    shift
    scrape "$side"
    metric_sum "$WORK/$side.metrics" "$@"
}

# expect_fetches DESC COUNT UID NS PORT : COUNT curls, each must answer the marker.
expect_fetches() {
    local desc=$1 count=$2 uid=$3 ns=$4 port=$5 body good=0 errors=""
    for _ in $(seq "$count"); do
        if body=$(fetch "$uid" "$ns" "$port") && [[ $body == "$MARKER-$port" ]]; then
            good=$((good + 1))
        else
            errors+=" [$body]"
        fi
    done
    if ((good == count)); then ok "$desc: $count of $count answered"; else fail "$desc: $good of $count answered:$errors"; fi
}

# app_client PORT : the address the app on PORT saw its last request from.
app_client() {
    grep '"GET / HTTP' "$WORK/$BACKEND/app-$1.log" | tail -n 1 | awk '{ print $1 }'
}

check_meshed_traffic() {
    log "$BACKEND: an unmodified client (UID $APP_UID) to $SERVER_V4:$MESHED_PORT"
    local app_lines
    app_lines=$(wc -l <"$WORK/$BACKEND/app-$MESHED_PORT.log")
    expect_fetches "curl as UID $APP_UID to :$MESHED_PORT" "$CURLS" "$APP_UID" "$NS_CLIENT" "$MESHED_PORT"
    local target="target_addr=\"$SERVER_V4:$MESHED_PORT\""
    expect_metric client "==" "$CURLS" request_total 'direction="outbound"' "$target" 'tls="true"'
    expect_metric client "==" "$CURLS" response_total 'direction="outbound"' "$target" 'tls="true"' 'status_code="200"'
    expect_metric server "==" "$CURLS" request_total 'direction="inbound"' "$target" 'tls="true"' \
        'client_id="client.shop.serviceaccount.identity.weft.cluster.local"'
    local total
    total=$(metric client request_total 'direction="outbound"')
    if ((total == CURLS)); then ok "client proxy: $total outbound requests in all (no loop)"; else fail "client proxy: $total outbound requests for $CURLS curls"; fi
    total=$(metric server request_total 'direction="inbound"')
    if ((total == CURLS)); then ok "server proxy: $total inbound requests in all (no loop)"; else fail "server proxy: $total inbound requests for $CURLS curls"; fi
    local clients
    clients=$(tail -n +"$((app_lines + 1))" "$WORK/$BACKEND/app-$MESHED_PORT.log" | grep '"GET / HTTP' | awk '{ print $1 }' | sort | uniq -c | xargs)
    if [[ $clients == "$CURLS $SERVER_V4" ]]; then
        ok "the app on :$MESHED_PORT saw only the server's proxy ($clients)"
    else
        fail "the app on :$MESHED_PORT saw other clients than the server's proxy: $clients"
    fi
}

check_proxy_uid_bypass() {
    log "$BACKEND: the proxy's own UID is not redirected"
    local before after
    before=$(metric client request_total 'direction="outbound"')
    expect_fetches "curl as UID $PROXY_UID to :$MESHED_PORT" 1 "$PROXY_UID" "$NS_CLIENT" "$MESHED_PORT"
    after=$(metric client request_total 'direction="outbound"')
    if ((after == before)); then ok "client proxy: outbound requests unchanged ($after)"; else fail "client proxy: outbound requests $before -> $after for UID $PROXY_UID"; fi
    expect_metric server "==" 1 request_total 'direction="inbound"' "target_addr=\"$SERVER_V4:$MESHED_PORT\"" 'tls="no_identity"'
}

check_skip_ports() {
    log "$BACKEND: --skip-outbound-ports $SKIP_OUTBOUND_PORT (client), --skip-inbound-ports $SKIP_INBOUND_PORT (server)"
    local before after
    before=$(metric client request_total 'direction="outbound"')
    expect_fetches "curl as UID $APP_UID to :$SKIP_OUTBOUND_PORT" 1 "$APP_UID" "$NS_CLIENT" "$SKIP_OUTBOUND_PORT"
    after=$(metric client request_total 'direction="outbound"')
    if ((after == before)); then ok "client proxy bypassed for :$SKIP_OUTBOUND_PORT (outbound requests stay $after)"; else fail "client proxy saw :$SKIP_OUTBOUND_PORT ($before -> $after)"; fi
    expect_metric server "==" 1 request_total 'direction="inbound"' "target_addr=\"$SERVER_V4:$SKIP_OUTBOUND_PORT\"" 'tls="no_identity"'

    # An unmeshed client (ctl, no rules) to the server's skipped inbound port.
    before=$(metric server request_total 'direction="inbound"')
    expect_fetches "curl from ctl to :$SKIP_INBOUND_PORT" 1 0 "$NS_CTL" "$SKIP_INBOUND_PORT"
    after=$(metric server request_total 'direction="inbound"')
    if ((after == before)); then ok "server proxy bypassed for :$SKIP_INBOUND_PORT (inbound requests stay $after)"; else fail "server proxy saw :$SKIP_INBOUND_PORT ($before -> $after)"; fi
    local seen
    seen=$(app_client "$SKIP_INBOUND_PORT")
    if [[ $seen == "$CTL_V4" ]]; then ok "the app on :$SKIP_INBOUND_PORT saw ctl ($CTL_V4) directly"; else fail "the app on :$SKIP_INBOUND_PORT saw '$seen', expected $CTL_V4"; fi

    # A meshed client to the skipped inbound port: the controller answers the
    # endpoint as unmeshed on that port (the Workload's skip-inbound-ports),
    # so the client proxy speaks plaintext, which the app itself answers.
    before=$(metric server request_total 'direction="inbound"')
    expect_fetches "curl as UID $APP_UID from the meshed client to :$SKIP_INBOUND_PORT" 1 "$APP_UID" "$NS_CLIENT" "$SKIP_INBOUND_PORT"
    after=$(metric server request_total 'direction="inbound"')
    if ((after == before)); then ok "server proxy bypassed for the meshed client too (inbound requests stay $after)"; else fail "server proxy saw the meshed client's :$SKIP_INBOUND_PORT ($before -> $after)"; fi
    seen=$(app_client "$SKIP_INBOUND_PORT")
    if [[ $seen == "$CLIENT_V4" ]]; then ok "the app on :$SKIP_INBOUND_PORT saw the client's proxy ($CLIENT_V4) directly"; else fail "the app on :$SKIP_INBOUND_PORT saw '$seen', expected $CLIENT_V4"; fi
}

check_remove() {
    log "$BACKEND: weft-init --remove"
    local ns side
    for side in client server; do
        ns=$NS_CLIENT
        [[ $side == server ]] && ns=$NS_SERVER
        if weft_init "$side-remove" "$ns" --remove; then ok "$side: weft-init --remove exited 0"; else fail "$side: weft-init --remove failed: $(tail -n 3 "$LOGS/$side-remove.log")"; fi
        if diff -u "$LOGS/$side-nat-before.txt" <(nat_table "$ns") >"$LOGS/$side-nat-removed.diff"; then
            ok "$side: iptables-save -t nat is as before weft-init"
        else
            fail "$side: the nat table differs from before weft-init: $(cat "$LOGS/$side-nat-removed.diff")"
        fi
        if weft_init "$side-remove-again" "$ns" --remove && grep -q "nothing to do" "$LOGS/$side-remove-again.log" \
            && diff -q "$LOGS/$side-nat-before.txt" <(nat_table "$ns") >/dev/null; then
            ok "$side: a second --remove does nothing"
        else
            fail "$side: a second --remove: $(tail -n 3 "$LOGS/$side-remove-again.log")"
        fi
    done

    local client_before server_before client_after server_after seen
    client_before=$(metric client request_total)
    server_before=$(metric server request_total)
    expect_fetches "after --remove, curl as UID $APP_UID to :$MESHED_PORT" 2 "$APP_UID" "$NS_CLIENT" "$MESHED_PORT"
    client_after=$(metric client request_total)
    server_after=$(metric server request_total)
    if ((client_after == client_before && server_after == server_before)); then
        ok "after --remove no proxy saw the requests (client $client_after, server $server_after)"
    else
        fail "after --remove the proxies still saw traffic: client $client_before -> $client_after, server $server_before -> $server_after"
    fi
    seen=$(app_client "$MESHED_PORT")
    if [[ $seen == "$CLIENT_V4" ]]; then ok "the app on :$MESHED_PORT saw the client ($CLIENT_V4) directly"; else fail "the app on :$MESHED_PORT saw '$seen', expected $CLIENT_V4"; fi
}

# injector_curl ARGS... : curl to the controller's proxy injector from the
# client namespace (as the proxy's UID: no redirect), verifying it with only
# the trust anchors, as the API server does with caBundle; prints the status.
# HTTP/1.1: over HTTP/2 an answer given before the request body was read is
# followed by a reset of that stream, which curl reports instead of the status.
injector_curl() {
    timeout 15 ip netns exec "$NS_CLIENT" setpriv --reuid="$PROXY_UID" --regid="$PROXY_UID" --clear-groups -- \
        curl -sS --http1.1 --max-time 10 -o /dev/null -w '%{http_code}' --cacert "$WORK/state/trust-anchor.pem" \
        --resolve "$INJECTOR_NAME:$INJECTOR_PORT:$CTL_V4" "$@" 2>/dev/null
}

check_injector() {
    log "$BACKEND: the proxy injector on $CTL_V4:$INJECTOR_PORT from another namespace"
    local status
    if status=$(timeout 15 ip netns exec "$NS_CLIENT" setpriv --reuid="$PROXY_UID" --regid="$PROXY_UID" --clear-groups -- \
        curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "http://$CTL_V4:$INJECTOR_PORT/inject" 2>/dev/null) \
        && [[ $status != 000 ]]; then
        fail "plaintext to the injector answered $status"
    else
        ok "plaintext to the injector: no answer (TLS only)"
    fi
    status=$(injector_curl "https://$INJECTOR_NAME:$INJECTOR_PORT/inject") || true
    if [[ $status == 405 ]]; then ok "GET /inject over TLS, no client certificate: 405"; else fail "GET /inject: $status, expected 405"; fi
    status=$(injector_curl -X POST "https://$INJECTOR_NAME:$INJECTOR_PORT/other" -d '{}') || true
    if [[ $status == 404 ]]; then ok "POST /other: 404"; else fail "POST /other: $status, expected 404"; fi
    head -c $((4 * 1024 * 1024)) /dev/zero >"$LOGS/oversized.json"
    status=$(injector_curl -H 'content-type: application/json' --data-binary "@$LOGS/oversized.json" \
        "https://$INJECTOR_NAME:$INJECTOR_PORT/inject") || true
    if [[ $status == 413 ]]; then ok "a 4 MiB review: 413"; else fail "a 4 MiB review: $status, expected 413"; fi
    cat >"$LOGS/review.json" <<'JSON'
{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"netns-1",
 "kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},
 "namespace":"shop","operation":"CREATE",
 "object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web-2","annotations":{"weft.io/inject":"enabled"}},
  "spec":{"containers":[{"name":"web","image":"nginx"}]}}}}
JSON
    local answer
    answer=$(timeout 15 ip netns exec "$NS_CLIENT" setpriv --reuid="$PROXY_UID" --regid="$PROXY_UID" --clear-groups -- \
        curl -sS --max-time 10 --cacert "$WORK/state/trust-anchor.pem" --resolve "$INJECTOR_NAME:$INJECTOR_PORT:$CTL_V4" \
        -H 'content-type: application/json' --data-binary "@$LOGS/review.json" \
        "https://$INJECTOR_NAME:$INJECTOR_PORT/inject" 2>&1) || true
    if python3 -c 'import base64, json, sys
r = json.loads(sys.argv[1])["response"]
patch = json.loads(base64.b64decode(r["patch"]))
assert r["uid"] == "netns-1" and r["allowed"] is True
added = [op["value"] for op in patch if op["op"] == "add" and op["path"].startswith("/spec/initContainers")]
assert "\"name\": \"weft-proxy\"" in json.dumps(added)' "$answer" 2>/dev/null; then
        ok "a pod review over TLS verified by the anchors: allowed, patched with weft-proxy"
    else
        fail "the pod review: ${answer:0:300}"
    fi
}

run_backend() {
    local started=$SECONDS
    use_backend "$1" "$2"
    log "---- $IPTABLES: namespaces $NS_CTL, $NS_CLIENT, $NS_SERVER"
    make_topology
    check_install
    start_everything
    check_meshed_traffic
    check_injector
    check_proxy_uid_bypass
    check_skip_ports
    check_remove
    # Keep this backend's scrapes with its logs.
    for side in client server; do [[ -f $WORK/$side.metrics ]] && mv "$WORK/$side.metrics" "$LOGS/$side.metrics"; done
    stop_backend
    log "---- $IPTABLES done in $((SECONDS - started))s"
}

main() {
    preflight_init
    trap cleanup_init EXIT
    trap 'exit 130' INT TERM
    make_workdir
    install -m 755 "$CONTROLLER_BIN" "$WORK/weft-controller"
    install -m 755 "$INIT_BIN" "$WORK/weft-init"
    "$WORK/weft-controller" identity init --dir "$WORK/state" >"$WORK/identity-init.log" 2>&1
    log "weft-init $INIT_BIN, proxy $PROXY_BIN as UID $PROXY_UID, backends: ${BACKENDS[*]}"
    local subnet=1 backend
    for backend in "${BACKENDS[@]}"; do
        case $backend in
            nft | legacy) run_backend "$backend" "$subnet" ;;
            *) fail "unknown backend '$backend' in WEFT_INIT_BACKENDS (nft, legacy)" ;;
        esac
        subnet=$((subnet + 1))
    done
    summary
}

main "$@"
