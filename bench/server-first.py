"""Server-speaks-first through weft-proxy, two builds side by side.

    python3 bench/server-first.py BEFORE_BINARY AFTER_BINARY [SAMPLES]

For each build: how long a banner server's "220 hello" takes to reach a
silent client on a port not in WEFT_PROXY_OPAQUE_PORTS (inbound in explicit
forward mode, and outbound through a CONNECT tunnel; before the feature it
is the detect timeout, 10 s), then what ordinary HTTP/1 traffic costs
(oha, 8 clients, 8 s, keep-alive and a connection per request): requests/s,
connections accepted and opened to the app (tcp_open_total), and
tcp_detect_total{result="server_first"} (expected 0). Needs oha.
"""
import asyncio, os, socket, subprocess, sys, time, urllib.request, json, re, tempfile

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

accepts = {"banner": 0, "http": 0}

async def banner_conn(r, w):
    accepts["banner"] += 1
    w.write(b"220 hello\r\n"); await w.drain()
    try:
        while data := await r.read(4096):
            w.write(data); await w.drain()
    except (Exception, asyncio.CancelledError): pass
    w.close()

RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
async def http_conn(r, w):
    accepts["http"] += 1
    try:
        while True:
            head = await r.readuntil(b"\r\n\r\n")
            w.write(RESPONSE); await w.drain()
    except (Exception, asyncio.CancelledError): pass
    w.close()

def spawn(binary, forward=None, extra=()):
    ports = {k: free_port() for k in ("in", "out", "admin")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEFT_PROXY_")}
    env.update(WEFT_PROXY_INBOUND_LISTEN_ADDR=f"127.0.0.1:{ports['in']}",
               WEFT_PROXY_OUTBOUND_LISTEN_ADDR=f"127.0.0.1:{ports['out']}",
               WEFT_PROXY_ADMIN_LISTEN_ADDR=f"127.0.0.1:{ports['admin']}",
               WEFT_PROXY_TAP_LISTEN_ADDR="off", WEFT_PROXY_LOG="warn")
    if forward: env["WEFT_PROXY_INBOUND_FORWARD_ADDR"] = forward
    env.update(dict(extra))
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{ports['admin']}/ready", timeout=1); break
        except Exception: time.sleep(0.05)
    return proc, ports

def metric(ports, name, **labels):
    text = urllib.request.urlopen(f"http://127.0.0.1:{ports['admin']}/metrics").read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total

def banner_time(addr, connect=None):
    s = socket.create_connection(addr); s.settimeout(30)
    start = time.monotonic()
    if connect:
        s.sendall(f"CONNECT {connect} HTTP/1.1\r\nHost: {connect}\r\n\r\n".encode())
        head = b""
        while not head.endswith(b"\r\n\r\n"): head += s.recv(1)
        start = time.monotonic()
    data = b""
    while len(data) < 11: data += s.recv(11 - len(data))
    took = time.monotonic() - start
    s.close()
    assert data == b"220 hello\r\n", data
    return took

def oha(url, seconds, extra=()):
    out = subprocess.run(["oha", "-z", f"{seconds}s", "-c", "8", "--no-tui", "--output-format", "json", *extra, url],
                         capture_output=True, text=True).stdout
    j = json.loads(out)
    return j["summary"]["requestsPerSec"], j["summary"]["successRate"]

async def main():
    binaries = dict(before=sys.argv[1], after=sys.argv[2])
    samples = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    banner = await asyncio.start_server(banner_conn, "127.0.0.1", 0)
    http = await asyncio.start_server(http_conn, "127.0.0.1", 0)
    b_addr = "127.0.0.1:%d" % banner.sockets[0].getsockname()[1]
    h_addr = "127.0.0.1:%d" % http.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    for label, binary in binaries.items():
        proc, ports = spawn(binary, forward=b_addr)
        n = samples if label == "after" else 1
        inbound = [await loop.run_in_executor(None, banner_time, ("127.0.0.1", ports["in"])) for _ in range(n)]
        outbound = [await loop.run_in_executor(None, banner_time, ("127.0.0.1", ports["out"]), b_addr) for _ in range(n)]
        print(f"{label}: banner inbound {[round(t*1000) for t in inbound]} ms, outbound CONNECT {[round(t*1000) for t in outbound]} ms")
        proc.terminate(); proc.wait()
        for keepalive in (True, False):
            proc, ports = spawn(binary, forward=h_addr)
            accepts["http"] = 0
            extra = () if keepalive else ("--disable-keepalive",)
            rps, ok = await loop.run_in_executor(None, oha, f"http://127.0.0.1:{ports['in']}/", 8, extra)
            opened = metric(ports, "tcp_open_total", direction="inbound", peer="dst")
            accepted = metric(ports, "tcp_open_total", direction="inbound", peer="src")
            sf = metric(ports, "tcp_detect_total", result="server_first")
            print(f"{label}: HTTP/1 {'keep-alive' if keepalive else 'a connection per request'}: {rps:.0f} req/s (success {ok:.3f}); "
                  f"accepted {accepted:.0f}, opened to the app {opened:.0f} (app saw {accepts['http']}), server_first {sf:.0f}")
            proc.terminate(); proc.wait()

asyncio.run(main())
