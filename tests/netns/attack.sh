#!/usr/bin/env bash
# Privileged attack test: a peer on the network against a transparent-mode
# proxy with identity, from another network namespace.
#
#   attacker ns (10.203.9.1)                  server ns (10.203.9.2)
#   lib/attacker.py: TLS without a client     weft-controller on loopback (identity,
#     certificate (ALPN transport.l5d.io/v1),   destination, web API: 127.0.0.1:180xx)
#     plaintext with forged l5d-* headers,    weft-proxy inbound 0.0.0.0:4143 (UID 2102,
#     an overlong request line, silence         transparent, identity web-1.shop)
#     │                                       lib/recording_app.py :8080 (prints every
#     └──────────── veth ──────────────────►    request line and header it receives)
#                    PREROUTING nat: REDIRECT → 4143 (except 4143, 4191)
#
# Checks (each hole closed in weft-proxy, with its before/after):
#   1. TLS for the proxy's identity, no client certificate, a transport header
#      naming the admin port, then the app port: refused (nothing answers),
#      counted as inbound_tcp_errors_total{error="no client certificate"}.
#   2. plaintext HTTP to the app with forged l5d-client-id and
#      l5d-dst-override: the app sees neither.
#   3. a 9000-byte request line followed by a forged l5d-client-id: 431, the
#      app never sees it.
#   3b. a request line with a leading blank (which Python's http.server, the
#      app here, still reads) and a forged l5d-client-id: 400, never relayed.
#   4. silence past the detect timeout (the policy's, 10 s), then a forged
#      l5d-client-id: closed, the app never sees it.
#   5. plaintext, then TLS for the proxy's identity without the transport
#      ALPN, straight to the inbound port 4143: refused at once, no
#      connection loop (the proxy's inbound connection count barely moves).
#   6. authorization policy: the mesh file gains a Server for web-1's port and
#      an AuthorizationPolicy admitting one mesh identity; streamed to the
#      proxy (InboundServerPolicies on the controller's Destination port), it
#      answers the attacker's plaintext request 403 with l5d-proxy-error, the
#      app never sees it, and inbound_http_authz_deny_total counts it.
#
# Needs root, iproute2, iptables (nft or legacy, with the nat table), curl,
# python3, setpriv (util-linux).
#
# Env: WEFT_PROXY_BIN       proxy binary (default: target/debug/weft-proxy)
#      WEFT_CONTROLLER_BIN  controller binary (default: target/debug/weft-controller)
#      KEEP_LOGS=1          print the logs even when the test passes
#
# Exit status: 0 all checks passed, 1 a check failed, 2 cannot run here.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PROXY_BIN=${WEFT_PROXY_BIN:-$ROOT/target/debug/weft-proxy}
CONTROLLER_BIN=${WEFT_CONTROLLER_BIN:-$ROOT/target/debug/weft-controller}
ID=$$
TEST_NAME=attack
NS_CLIENT=weft-attacker-$ID
NS_SERVER=weft-victim-$ID
CLIENT_V4=10.203.9.1
SERVER_V4=10.203.9.2
TOOLS=(ip iptables curl python3 setpriv)
METRIC_FAMILIES='request_total|response_total|tcp_open|tcp_detect|inbound_'
APP_PORT=8080
IDENTITY_ADDR=127.0.0.1:18080
DESTINATION_ADDR=127.0.0.1:18086
CONTROLLER_ADMIN_ADDR=127.0.0.1:19990
CONTROLLER_WEB_ADDR=127.0.0.1:18084
SERVER_IDENTITY=web-1.shop.serviceaccount.identity.weft.cluster.local
FORGED_IDENTITY=admin.shop.serviceaccount.identity.weft.cluster.local
LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")/lib" && pwd)

# shellcheck source-path=SCRIPTDIR source=lib/common.bash
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"

attacker() { timeout 20 ip netns exec "$NS_CLIENT" python3 "$WORK/attacker.py" "$@" 2>&1 || true; }
first_line() { head -n 1 | tr -d '\r'; }

write_mesh_file() {
    cat >"$WORK/mesh.yaml" <<YAML
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: web-1, namespace: shop, labels: {app: web}}
spec:
  serviceAccount: web-1
  addresses: [$SERVER_V4]
  ports:
  - {name: http, port: $APP_PORT}
  meshed: true
  proxy: {inboundPort: 4143}
YAML
}

start_everything() {
    make_workdir
    install -m 755 "$CONTROLLER_BIN" "$WORK/weft-controller"
    install -m 644 "$LIB/attacker.py" "$LIB/recording_app.py" "$WORK/"
    write_mesh_file
    "$WORK/weft-controller" identity init --dir "$WORK/state" >"$WORK/identity-init.log" 2>&1

    local python
    python=$(python3 -c 'import sys; print(sys.executable)')
    start app "$NS_SERVER" "$python" -u "$WORK/recording_app.py" "$APP_PORT"
    start controller "$NS_SERVER" env -i PATH="$PATH" RUST_LOG=info \
        "$WORK/weft-controller" --mesh-file "$WORK/mesh.yaml" \
        --destination-addr "$DESTINATION_ADDR" --admin-addr "$CONTROLLER_ADMIN_ADDR" \
        --web-addr "$CONTROLLER_WEB_ADDR" --identity-addr "$IDENTITY_ADDR" \
        --identity-issuer-dir "$WORK/state/issuer" \
        --identity-trust-anchors "$WORK/state/trust-anchor.pem" \
        --identity-token-dir "$WORK/tokens"
    wait_ready controller "$NS_SERVER" "http://$CONTROLLER_ADMIN_ADDR/ready"
    wait_for "web-1's token" 10 test -s "$WORK/tokens/shop/web-1.token"
    # The proxy runs as PROXY_UID: it reads its token like a mounted secret.
    chmod -R a+rX "$WORK/tokens"

    start_proxy server-proxy "$NS_SERVER" \
        WEFT_PROXY_IDENTITY_SVC_ADDR="$IDENTITY_ADDR" \
        WEFT_PROXY_IDENTITY_TOKEN_FILE="$WORK/tokens/shop/web-1.token" \
        WEFT_PROXY_IDENTITY_LOCAL_NAME="$SERVER_IDENTITY" \
        WEFT_PROXY_IDENTITY_TRUST_ANCHORS="$(cat "$WORK/state/trust-anchor.pem")" \
        WEFT_PROXY_POLICY_WORKLOAD='{"ns":"shop","pod":"web-1"}' \
        WEFT_PROXY_POLICY_SVC_ADDR="$DESTINATION_ADDR" \
        WEFT_PROXY_DETECT_TIMEOUT=1s
    wait_for "the app" 10 in_server curl -sf "http://127.0.0.1:$APP_PORT/"
    wait_ready server-proxy "$NS_SERVER"
}

# app_saw TEXT : whether the app printed TEXT (a request line or header).
app_saw() { grep -qi -- "$1" "$WORK/app.log"; }

check_transport_header_without_certificate() {
    log "1. TLS without a client certificate, transport header (ALPN transport.l5d.io/v1)"
    local port answer
    for port in 4191 "$APP_PORT"; do
        answer=$(attacker transport "$SERVER_V4" 4143 "$SERVER_IDENTITY" "$port" | first_line)
        if [[ -z $answer ]]; then
            ok "transport header naming port $port: refused (no answer)"
        else
            fail "transport header naming port $port without a client certificate answered: $answer"
        fi
    done
    expect_metric server ">=" 2 inbound_tcp_errors_total 'error="no client certificate"'
}

check_forged_plaintext_headers() {
    log "2. plaintext HTTP to the app with forged l5d-client-id and l5d-dst-override"
    local answer
    answer=$(attacker raw "$SERVER_V4" "$APP_PORT" \
        "GET /plain HTTP/1.1\r\nhost: web\r\nl5d-client-id: $FORGED_IDENTITY\r\nl5d-dst-override: evil:4191\r\nconnection: close\r\n\r\n" | first_line)
    if [[ $answer == "HTTP/1.1 200"* ]] && app_saw "REQUEST GET /plain"; then
        ok "the app served the request"
    else
        fail "the request was not served: $answer"
    fi
    if app_saw "HEADER l5d-client-id: $FORGED_IDENTITY"; then
        fail "the app saw the forged l5d-client-id"
    else
        ok "the app did not see the forged l5d-client-id"
    fi
    if app_saw "HEADER l5d-dst-override"; then
        fail "the app saw the client's l5d-dst-override"
    else
        ok "the app did not see l5d-dst-override"
    fi
}

check_overlong_request_line() {
    log "3. a 9000-byte request line, then a forged l5d-client-id"
    local answer
    answer=$(attacker overlong "$SERVER_V4" "$APP_PORT" "l5d-client-id: overlong-$FORGED_IDENTITY" | first_line)
    if [[ $answer == "HTTP/1.1 431"* ]]; then
        ok "answered: $answer"
    else
        fail "expected 431, got: ${answer:-nothing}"
    fi
    if app_saw "overlong-$FORGED_IDENTITY"; then
        fail "the app saw the forged l5d-client-id behind the overlong request line"
    else
        ok "the app did not see the forged l5d-client-id"
    fi
}

check_sloppy_request_line() {
    log "3b. a request line with a leading blank (the app's server is lenient), forged l5d-client-id"
    local answer
    answer=$(attacker raw "$SERVER_V4" "$APP_PORT" \
        " GET /sloppy HTTP/1.1\r\nhost: web\r\nl5d-client-id: sloppy-$FORGED_IDENTITY\r\nconnection: close\r\n\r\n" | first_line)
    if [[ $answer == "HTTP/1.1 400"* ]]; then
        ok "answered: $answer"
    else
        fail "expected 400, got: ${answer:-nothing}"
    fi
    if app_saw "sloppy-$FORGED_IDENTITY"; then
        fail "the app saw the forged l5d-client-id behind the sloppy request line"
    else
        ok "the app did not see the forged l5d-client-id"
    fi
}

check_silence() {
    # The controller's policy for the port sets the detect timeout (its
    # default: 10 s, as Linkerd's), replacing WEFT_PROXY_DETECT_TIMEOUT.
    log "4. silence past the detect timeout (10s, from the policy), then a forged l5d-client-id"
    local answer
    answer=$(attacker silent "$SERVER_V4" "$APP_PORT" 11 \
        "GET /after-silence HTTP/1.1\r\nhost: web\r\nl5d-client-id: silent-$FORGED_IDENTITY\r\nconnection: close\r\n\r\n" | first_line)
    if [[ -z $answer ]]; then
        ok "closed without an answer"
    else
        fail "answered after the detect timeout: $answer"
    fi
    if app_saw "silent-$FORGED_IDENTITY" || app_saw "GET /after-silence"; then
        fail "the app saw the request sent after the detect timeout"
    else
        ok "the app did not see it"
    fi
    expect_metric server ">=" 1 inbound_tcp_errors_total 'error="detect timeout"'
}

check_direct_plaintext() {
    log "5. plaintext, then TLS without the transport ALPN, straight to the inbound port 4143"
    scrape server
    local before after answer
    before=$(metric_sum "$WORK/server.metrics" tcp_open_total 'direction="inbound"' 'peer="src"')
    answer=$(attacker raw "$SERVER_V4" 4143 "GET /direct HTTP/1.1\r\nhost: web\r\nconnection: close\r\n\r\n" | first_line)
    # TLS for the proxy's identity without the transport ALPN: terminated,
    # and what is inside would go to the listener itself.
    answer+=$(attacker tls "$SERVER_V4" 4143 "$SERVER_IDENTITY" | first_line)
    sleep 1
    scrape server
    after=$(metric_sum "$WORK/server.metrics" tcp_open_total 'direction="inbound"' 'peer="src"')
    log "inbound connections accepted: $before before, $after after"
    if ((after - before <= 2)); then
        ok "one connection each, no loop ($((after - before)) accepted)"
    else
        fail "the proxy connected to itself: $((after - before)) inbound connections from two"
    fi
    if [[ -z $answer ]]; then ok "refused (no answer)"; else fail "answered: $answer"; fi
    expect_metric server ">=" 2 inbound_tcp_errors_total 'error="direct without transport header"'
}

# Appends a Server for web-1's app port and an AuthorizationPolicy that
# admits only one mesh identity (not the attacker, who has none).
write_policy() {
    cat >>"$WORK/mesh.yaml" <<YAML
---
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: web-http, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  port: http
---
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {name: only-client, namespace: shop}
spec:
  identities: [client.shop.serviceaccount.identity.weft.cluster.local]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: web-from-client, namespace: shop}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: web-http}
  requiredAuthenticationRefs:
  - {group: policy.linkerd.io, kind: MeshTLSAuthentication, name: only-client}
YAML
}

check_authorization_policy() {
    log "6. a Server admitting one mesh identity, then plaintext from the attacker"
    local answer="" attempt
    write_policy
    # The edit reaches the proxy over its open WatchPort stream.
    for attempt in $(seq 50); do
        answer=$(attacker raw "$SERVER_V4" "$APP_PORT" \
            "GET /denied-$attempt HTTP/1.1\r\nhost: web\r\nconnection: close\r\n\r\n")
        if [[ $(first_line <<<"$answer") == "HTTP/1.1 403"* ]]; then break; fi
        sleep 0.2
    done
    if [[ $(first_line <<<"$answer") == "HTTP/1.1 403"* ]] &&
        grep -qi "l5d-proxy-error: unauthorized request on route" <<<"$answer"; then
        ok "denied: 403 with l5d-proxy-error (request $attempt after the edit)"
    else
        fail "not denied after the policy edit: $(first_line <<<"$answer")"
    fi
    if app_saw "GET /denied-$attempt "; then
        fail "the app saw the denied request"
    else
        ok "the app did not see the denied request"
    fi
    expect_metric server ">=" 1 inbound_http_authz_deny_total 'srv_name="web-http"'
}

main() {
    preflight
    require_binary controller "$CONTROLLER_BIN" WEFT_CONTROLLER_BIN
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    log "namespaces $NS_CLIENT (attacker) and $NS_SERVER, proxy $PROXY_BIN as UID $PROXY_UID"
    make_namespaces
    install_rules "$NS_SERVER"
    start_everything

    check_transport_header_without_certificate
    check_forged_plaintext_headers
    check_overlong_request_line
    check_sloppy_request_line
    check_silence
    check_direct_plaintext
    check_authorization_policy
    check_graceful_stop server-proxy

    summary
}

main "$@"
