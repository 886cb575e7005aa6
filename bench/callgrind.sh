#!/usr/bin/env bash
# Instructions per request of weft-proxy's user space, counted by callgrind
# (not disturbed by other load on the machine, unlike wall-clock figures).
#
#   client (oha, 1 keep-alive connection) ─► weft-proxy inbound ─(FORWARD_ADDR)─► backend
#
# The path is the bench's weft-1hop (inbound forwarding, HTTP/1.1). The proxy
# runs under `valgrind --tool=callgrind`; after a warm-up its counters are
# zeroed, N1 requests are sent on one new connection and the counters dumped,
# then zeroed again and N2 requests sent on another and dumped. (dump2 − dump1)
# / (N2 − N1) is the cost of one request, with start-up and the per-connection
# cost removed. The top functions (self cost per request) are the same
# difference per function.
#
# Usage: bench/callgrind.sh [PROXY_BINARY] [OUT_DIR]
#   PROXY_BINARY  default target/release/weft-proxy (build it with
#                 `cargo build --release -p weft-proxy`)
#   OUT_DIR       default target/callgrind/<binary name>-<time>
# Environment: N1 (2000), N2 (4000), WARMUP (200), TOP (25),
#   WEFT_BENCH (the backend: target/release/weft-bench, built if missing).
set -euo pipefail

cd "$(dirname "$0")/.."
proxy=${1:-target/release/weft-proxy}
out=${2:-target/callgrind/$(basename "$proxy")-$(date +%H%M%S)}
n1=${N1:-2000}
n2=${N2:-4000}
warmup=${WARMUP:-200}
top=${TOP:-25}
bench=${WEFT_BENCH:-target/release/weft-bench}

for tool in valgrind callgrind_control callgrind_annotate oha curl python3; do
    command -v "$tool" >/dev/null || { echo "callgrind.sh: $tool is needed" >&2; exit 1; }
done
[[ -x $proxy ]] || { echo "callgrind.sh: no proxy binary at $proxy" >&2; exit 1; }
if [[ ! -x $bench ]]; then
    cargo build --release -p weft-bench
fi
mkdir -p "$out"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
backend_port=$(free_port)
inbound_port=$(free_port)
outbound_port=$(free_port)
admin_port=$(free_port)

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

"$bench" backend --listen "127.0.0.1:$backend_port" >"$out/backend.log" 2>&1 &
pids+=($!)

WEFT_PROXY_INBOUND_LISTEN_ADDR=127.0.0.1:$inbound_port \
WEFT_PROXY_OUTBOUND_LISTEN_ADDR=127.0.0.1:$outbound_port \
WEFT_PROXY_ADMIN_LISTEN_ADDR=127.0.0.1:$admin_port \
WEFT_PROXY_INBOUND_FORWARD_ADDR=127.0.0.1:$backend_port \
WEFT_PROXY_CORES=1 \
WEFT_PROXY_LOG=warn \
WEFT_PROXY_SHUTDOWN_GRACE_PERIOD=1s \
    valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out.%p" \
    "$proxy" >"$out/proxy.log" 2>&1 &
proxy_pid=$!
pids+=("$proxy_pid")

for _ in $(seq 1 600); do
    curl -fs "http://127.0.0.1:$admin_port/ready" >/dev/null 2>&1 && break
    sleep 0.2
done
curl -fs "http://127.0.0.1:$admin_port/ready" >/dev/null || {
    echo "callgrind.sh: the proxy did not get ready (see $out/proxy.log)" >&2
    exit 1
}

url=http://127.0.0.1:$inbound_port/
run() { oha --no-tui -c 1 -n "$1" "$url" >"$out/oha-$1.txt"; }
run "$warmup"
callgrind_control -z "$proxy_pid" >/dev/null
run "$n1"
callgrind_control -d "n1" "$proxy_pid" >/dev/null
callgrind_control -z "$proxy_pid" >/dev/null
run "$n2"
callgrind_control -d "n2" "$proxy_pid" >/dev/null

dump1=$(ls "$out"/callgrind.out.*.1 2>/dev/null | head -1)
dump2=$(ls "$out"/callgrind.out.*.2 2>/dev/null | head -1)
[[ -n $dump1 && -n $dump2 ]] || { echo "callgrind.sh: no dumps in $out" >&2; exit 1; }
callgrind_annotate --auto=no --inclusive=no --threshold=100 "$dump1" >"$out/annotate-n1.txt"
callgrind_annotate --auto=no --inclusive=no --threshold=100 "$dump2" >"$out/annotate-n2.txt"
callgrind_annotate --auto=no --inclusive=yes --threshold=100 "$dump2" >"$out/annotate-n2-inclusive.txt"

python3 - "$out" "$n1" "$n2" "$top" <<'EOF'
import re, sys
out, n1, n2, top = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
line = re.compile(r"^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S.*)$")
def read(path):
    total, functions = None, {}
    for text in open(path, encoding="utf-8", errors="replace"):
        match = line.match(text)
        if not match:
            continue
        count = int(match.group(1).replace(",", ""))
        name = match.group(2).strip()
        if name.startswith("PROGRAM TOTALS"):
            total = count
        elif ":" in name:
            functions[name] = functions.get(name, 0) + count
    return total, functions
total1, functions1 = read(f"{out}/annotate-n1.txt")
total2, functions2 = read(f"{out}/annotate-n2.txt")
requests = n2 - n1
per_request = (total2 - total1) / requests
# callgrind_annotate also lists the frames every cost runs under (main, the
# runtime's entry) at 100 %: not a function's own cost, left out.
rows = sorted(
    ((functions2.get(name, 0) - functions1.get(name, 0)) / requests, name)
    for name in set(functions1) | set(functions2)
    if functions2.get(name, 0) < 0.99 * total2
)
rows.reverse()
with open(f"{out}/summary.txt", "w") as summary:
    def say(text=""):
        print(text)
        summary.write(text + "\n")
    say(f"instructions per request: {per_request:,.0f}  (({total2:,} - {total1:,}) / {requests})")
    # glibc copies large blocks with `rep movsb`, which callgrind counts one
    # instruction per byte; the CPU moves tens of bytes a cycle. Without
    # memcpy the figure is closer to what the hardware spends.
    copies = sum(cost for cost, name in rows if "memcpy" in name or "memmove" in name)
    say(f"  of which memcpy/memmove: {copies:,.0f}; without them: {per_request - copies:,.0f}")
    say(f"top {top} functions, self instructions per request:")
    for cost, name in rows[:top]:
        say(f"{cost:10,.0f}  {cost / per_request:6.1%}  {name}")
EOF
echo "files: $out"
