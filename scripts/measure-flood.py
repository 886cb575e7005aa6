#!/usr/bin/env python3
"""Measures weft-proxy's memory under a connection flood (not a test).

Starts the given weft-proxy binary on loopback ports, then for each kind of
connection (idle: nothing sent, so held in protocol detection; request line:
"GET / HTTP/1.1\\r\\n" and nothing more) opens N connections to the inbound
listener, samples the proxy's RSS, closes them and samples RSS again after a
settle time. Timeouts are set long so the proxy keeps every connection.

    scripts/measure-flood.py target/debug/weft-proxy --connections 20000

Run as root: the open-file limits of both processes are raised (to the hard
limit at most; the proxy fits its connection limits in its own).
"""

import argparse
import os
import resource
import socket
import subprocess
import sys
import time
import urllib.request


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def wait_ready(admin, deadline):
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://{admin}/ready", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("proxy not ready")


def flood(inbound, count, payload):
    connections = []
    for _ in range(count):
        connection = socket.create_connection(inbound)
        if payload:
            connection.sendall(payload)
        connections.append(connection)
    return connections


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary")
    parser.add_argument("--connections", type=int, default=20000)
    parser.add_argument("--settle", type=float, default=15.0,
                        help="seconds to wait after closing before sampling")
    parser.add_argument("--env", action="append", default=[],
                        help="extra NAME=VALUE for the proxy")
    parser.add_argument("--label", default="")
    arguments = parser.parse_args()

    # Room for the flood and the script's own sockets, and enough that the
    # proxy's fitted connection limits do not refuse any of it.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = arguments.connections * 4 + 4096
    if hard != resource.RLIM_INFINITY and limit > hard:
        limit = hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
    inbound = ("127.0.0.1", free_port())
    admin = f"127.0.0.1:{free_port()}"
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith("WEFT_PROXY_")}
    environment.update({
        "WEFT_PROXY_INBOUND_LISTEN_ADDR": f"{inbound[0]}:{inbound[1]}",
        "WEFT_PROXY_OUTBOUND_LISTEN_ADDR": f"127.0.0.1:{free_port()}",
        "WEFT_PROXY_ADMIN_LISTEN_ADDR": admin,
        "WEFT_PROXY_TAP_LISTEN_ADDR": "off",
        # Nothing listens there; nothing is forwarded in these floods.
        "WEFT_PROXY_INBOUND_FORWARD_ADDR": f"127.0.0.1:{free_port()}",
        "WEFT_PROXY_DETECT_TIMEOUT": "10m",
        "WEFT_PROXY_HTTP_HEADER_READ_TIMEOUT": "10m",
        "WEFT_PROXY_INBOUND_MAX_CONNECTIONS": str(arguments.connections * 2),
        "WEFT_PROXY_OUTBOUND_MAX_CONNECTIONS": "100",
        "WEFT_PROXY_LOG": "warn",
    })
    for pair in arguments.env:
        name, _, value = pair.partition("=")
        environment[name] = value
    proxy = subprocess.Popen(
        ["prlimit", f"--nofile={limit}:{limit}", "--", arguments.binary],
        env=environment, stdout=subprocess.DEVNULL, stderr=sys.stderr)
    try:
        wait_ready(admin, time.time() + 20)
        time.sleep(1)
        rows = []
        for kind, payload in [("idle", b""), ("request line", b"GET / HTTP/1.1\r\n")]:
            before = rss_kib(proxy.pid)
            connections = flood(inbound, arguments.connections, payload)
            time.sleep(2)
            during = rss_kib(proxy.pid)
            fds = open_fds(proxy.pid)
            for connection in connections:
                connection.close()
            time.sleep(arguments.settle)
            after = rss_kib(proxy.pid)
            per_connection = (during - before) * 1024 // arguments.connections
            rows.append((kind, before, during, after, per_connection, fds))
        print(f"{arguments.label or arguments.binary}: {arguments.connections} connections")
        print(f"{'kind':<14}{'before KiB':>12}{'during KiB':>12}{'after KiB':>12}"
              f"{'B/conn':>9}{'fds':>8}")
        for kind, before, during, after, per_connection, fds in rows:
            print(f"{kind:<14}{before:>12}{during:>12}{after:>12}{per_connection:>9}{fds:>8}")
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)


if __name__ == "__main__":
    main()
