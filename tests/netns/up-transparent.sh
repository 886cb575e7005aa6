#!/usr/bin/env bash
# Privileged end-to-end test: `weft up --transparent`, the whole mesh of a
# mesh file with every workload in its own network namespace.
#
#   host: bridge weft-<id> 10.209.0.1 ── weft-controller (identity on)
#     ├─ netns weft-<id>-0: books  weft-demo books on 0.0.0.0:7640
#     │                     weft-proxy (transparent, gid 2102) ◄─ PREROUTING REDIRECT → 4143
#     └─ netns weft-<id>-1: client sh -c 'curl --noproxy "*" http://books.up.svc.cluster.local/books'
#                           (no proxy variables, and curl told to use none)
#                           ─ OUTPUT REDIRECT → 4140 ─► weft-proxy ─ mutual TLS ─► books
#
# Passes when the client, which ignores proxies, reaches books by service
# name through both proxies (the client proxy's outbound and books' inbound
# response_total, with tls="true" and the peer's identity), the app gets no
# proxy variables, and after SIGINT nothing is left: no namespace, bridge,
# veth, FORWARD rule or /etc/netns entry of this run. Then what a killed
# weft would leave is made by hand, and the next weft up --transparent must
# remove it before it starts (and again leave nothing when stopped).
#
# Needs root, iproute2, iptables (nft or legacy, with the nat table), curl,
# setpriv (util-linux), and the weft, weft-proxy, weft-controller and
# weft-demo binaries (cargo build --workspace).
#
# Env: WEFT_BIN            weft binary (default: target/debug/weft; the
#                          other binaries are found next to it)
#      KEEP_LOGS=1         print the logs even when the test passes
#
# Exit status: 0 all checks passed, 1 a check failed, 2 cannot run here.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WEFT_BIN=${WEFT_BIN:-$ROOT/target/debug/weft}
BIN_DIR=$(dirname "$WEFT_BIN")
ID=$$
TEST_NAME=up-transparent
# lib/common.bash's own topology is not used here (weft up builds its own):
# these name nothing that is created.
NS_CLIENT=unused-$ID
NS_SERVER=unused-$ID
CLIENT_V4=0.0.0.0
SERVER_V4=0.0.0.0
PROXY_BIN=$BIN_DIR/weft-proxy
TOOLS=(ip iptables curl setpriv)
METRIC_FAMILIES='request_total|response_total|tcp_open|control_|identity_'
BOOKS_PORT=7640

# shellcheck source-path=SCRIPTDIR source=lib/common.bash
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"

STATE=""
WEFT_PID=""
BRIDGE=""
PREFIX=""

# ---------------------------------------------------------------- clean-up

# The EXIT trap: SIGINT to weft up if it still runs (it removes its own
# network), then whatever it left, by this run's names only; logs on failure.
cleanup_up() {
    local status=$?
    set +e
    if [[ -n $WEFT_PID ]] && alive "$WEFT_PID"; then
        kill -INT "$WEFT_PID"
        for _ in $(seq 150); do alive "$WEFT_PID" || break; sleep 0.1; done
        alive "$WEFT_PID" && kill -KILL "$WEFT_PID"
    fi
    if [[ -n $PREFIX ]]; then
        for ns in $(ip netns list | awk '{ print $1 }' | grep "^$PREFIX"); do
            for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
            ip netns del "$ns"
        done
        ip link del "$BRIDGE" 2>/dev/null
        while iptables -D FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null; do :; done
        rm -rf /etc/netns/"$PREFIX"*
    fi
    if [[ -n $STATE && -d $STATE ]]; then
        if ((status != 0)) || [[ ${KEEP_LOGS:-} == 1 ]]; then print_up_logs; fi
        rm -rf "$STATE"
    fi
    exit "$status"
}

print_up_logs() {
    printf '\n----- weft up (last 40 lines) -----\n'
    tail -n 40 "$STATE/weft-up.out"
    for file in "$STATE"/logs/*.log; do
        [[ -s $file ]] || continue
        printf '\n----- %s (last 40 lines) -----\n' "$(basename "$file")"
        tail -n 40 "$file"
    done
    for file in "$STATE"/*.metrics; do
        [[ -s $file ]] || continue
        printf '\n----- %s (weft families) -----\n' "$(basename "$file")"
        grep -E "^($METRIC_FAMILIES)" "$file" | head -n 40
    done
}

# ---------------------------------------------------------------- the mesh

write_mesh_file() {
    cat >"$STATE/mesh.yaml" <<EOF
---
apiVersion: v1
kind: Service
metadata: {name: books, namespace: up}
spec:
  selector: {app: books}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: books, namespace: up, labels: {app: books}}
spec:
  serviceAccount: books
  addresses: [127.0.0.1]
  ports: [{name: http, port: $BOOKS_PORT}]
  meshed: true
  run:
    # Not loopback: the inbound proxy forwards to the original destination,
    # the namespace's own address.
    command: [weft-demo, books, --listen, '0.0.0.0:$BOOKS_PORT']
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: client, namespace: up, labels: {app: client}}
spec:
  serviceAccount: client
  addresses: [127.0.0.1]
  ports: [{name: http, port: 7641}]
  meshed: true
  run:
    dependsOn: [books]
    # Records its environment, then calls books by name twice a second,
    # with curl told to use no proxy at all.
    command:
    - sh
    - -c
    - 'env > $STATE/client.env; while :; do curl --noproxy "*" -sS -o /dev/null -w "%{http_code}\n" http://books.up.svc.cluster.local/books; sleep 0.5; done'
EOF
}

# state_names : BRIDGE and PREFIX (this run's names) from weft up's output.
state_names() {
    BRIDGE=$(sed -n 's/.*creating the bridge and network namespaces\.* [0-9]* on \(weft-[0-9a-f]*\)$/\1/p' "$STATE/weft-up.out")
    [[ -n $BRIDGE ]] && PREFIX="$BRIDGE-"
}

# admin_of NAME : the workload's proxy admin address, from weft up's summary.
admin_of() {
    awk -v w="up/$1" '$1 == w { sub("http://", "", $4); print $4 }' "$STATE/weft-up.out"
}

# expect_up_metric WHO ADMIN OP WANT FAMILY LABEL... : like expect_metric, for
# a proxy scraped from the host at ADMIN.
expect_up_metric() {
    local who=$1 admin=$2 op=$3 want=$4 family=$5
    shift 5
    local sum=0 test="BEGIN { exit !(s $op w) }" file="$STATE/$who.metrics"
    for _ in $(seq 50); do
        curl -sf --max-time 5 "http://$admin/metrics" >"$file" 2>/dev/null || true
        sum=$(metric_sum "$file" "$family" "$@")
        if awk -v s="$sum" -v w="$want" "$test"; then break; fi
        sleep 0.2
    done
    local desc="$who proxy: $family{$(IFS=,; echo "$*")} = $sum"
    if awk -v s="$sum" -v w="$want" "$test"; then ok "$desc"; else fail "$desc, expected $op $want"; fi
}

# ---------------------------------------------------------------- checks

start_mesh() {
    log "weft up --transparent -f $STATE/mesh.yaml"
    # A proxy variable in weft's own environment must not reach the app.
    http_proxy=http://127.0.0.1:9 "$WEFT_BIN" --state-dir "$STATE" \
        up --transparent -f "$STATE/mesh.yaml" >"$STATE/weft-up.out" 2>&1 &
    WEFT_PID=$!
    if ! wait_for "weft up's summary" 90 grep -q "the mesh is up" "$STATE/weft-up.out"; then
        fail "weft up --transparent did not come up"
        return 1
    fi
    state_names
    ok "weft up --transparent is up: bridge $BRIDGE, namespaces $(ip netns list | awk '{ print $1 }' | grep -c "^$PREFIX")"
}

check_traffic() {
    local books client
    books=$(admin_of books)
    client=$(admin_of client)
    log "client proxy at $client, books proxy at $books"
    local identity='tls="true"' peer='client_id="client.up.serviceaccount.identity.weft.cluster.local"'
    expect_up_metric client "$client" ">=" 3 response_total 'direction="outbound"' \
        'dst_service="books"' 'authority="books.up.svc.cluster.local:80"' 'status_code="200"' "$identity"
    expect_up_metric books "$books" ">=" 3 response_total 'direction="inbound"' \
        'status_code="200"' "$identity" "$peer"
    if [[ -f $STATE/client.env ]] && ! grep -qi '_proxy=' "$STATE/client.env"; then
        ok "the client app got no proxy variables"
    else
        fail "the client app's environment: $(grep -i '_proxy=' "$STATE/client.env" 2>/dev/null | tr '\n' ' ')"
    fi
    if grep -q '^200$' "$STATE/logs/up-client-app.log"; then
        ok "curl --noproxy '*' got $(grep -c '^200$' "$STATE/logs/up-client-app.log") x 200 from books by name"
    else
        fail "curl got no 200 from books"
    fi
}

check_stop_leaves_nothing() {
    kill -INT "$WEFT_PID"
    local status=0
    for _ in $(seq 200); do alive "$WEFT_PID" || break; sleep 0.1; done
    if alive "$WEFT_PID"; then
        fail "weft up still running 20s after SIGINT"
        return
    fi
    wait "$WEFT_PID" || status=$?
    if ((status == 0)); then ok "weft up exited 0 on SIGINT"; else fail "weft up exited $status on SIGINT"; fi
    local left
    left=$(ip netns list | awk '{ print $1 }' | grep "^$PREFIX" || true)
    [[ -z $left ]] && ok "no network namespace left" || fail "namespaces left: $left"
    if ip link show "$BRIDGE" >/dev/null 2>&1; then fail "bridge $BRIDGE left"; else ok "no bridge left"; fi
    left=$(ip -o link show | grep -c "wv${BRIDGE#weft-}" || true)
    ((left == 0)) && ok "no veth left" || fail "$left veth links left"
    if iptables -S FORWARD | grep -q -- "-i $BRIDGE "; then fail "FORWARD rule left"; else ok "no FORWARD rule left"; fi
    left=$(find /etc/netns -maxdepth 1 -name "$PREFIX*" 2>/dev/null | wc -l)
    ((left == 0)) && ok "no /etc/netns entry left" || fail "$left /etc/netns entries left"
}

# check_stale_removed : what a killed weft would leave (a namespace of this
# state directory's, the bridge, its FORWARD rule, an /etc/netns entry) is
# removed by the next weft up --transparent, which then stops cleanly too.
check_stale_removed() {
    local stale="${PREFIX}9"
    ip netns add "$stale"
    mkdir -p "/etc/netns/$stale"
    ip link add "$BRIDGE" type bridge
    iptables -I FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT
    log "left behind by hand: $stale, $BRIDGE, its FORWARD rule; weft up --transparent again"
    if ! start_mesh; then return; fi
    if ip netns list | awk '{ print $1 }' | grep -qx "$stale"; then
        fail "the stale namespace $stale is still there"
    else
        ok "the stale namespace $stale was removed at start"
    fi
    local rules
    rules=$(iptables -S FORWARD | grep -c -- "-i $BRIDGE " || true)
    ((rules == 1)) && ok "one FORWARD rule while running" || fail "$rules FORWARD rules while running"
    check_stop_leaves_nothing
}

main() {
    preflight
    require_binary weft "$WEFT_BIN" WEFT_BIN
    require_binary controller "$BIN_DIR/weft-controller" WEFT_BIN
    require_binary demo "$BIN_DIR/weft-demo" WEFT_BIN
    STATE=$(mktemp -d "/tmp/weft-netns-$TEST_NAME.XXXXXX")
    trap cleanup_up EXIT
    trap 'exit 130' INT TERM
    write_mesh_file
    if start_mesh; then
        check_traffic
        check_stop_leaves_nothing
        check_stale_removed
    fi
    summary
}

main "$@"
