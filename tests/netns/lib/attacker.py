"""The attacker's client for tests/netns/attack.sh: raw sockets and TLS
without a client certificate, printing whatever comes back (until the peer
closes, resets or the timeout passes) so the test can judge the answer.

  attacker.py transport HOST PORT SNI TARGET_PORT   TLS (ALPN transport.l5d.io/v1,
                                                    no client certificate), a transport
                                                    header naming TARGET_PORT (HTTP/1),
                                                    then GET /
  attacker.py tls HOST PORT SNI                     TLS (no ALPN, no client certificate),
                                                    then GET /
  attacker.py raw HOST PORT REQUEST                 REQUEST (\\r\\n escapes allowed)
  attacker.py silent HOST PORT SECONDS REQUEST      says nothing for SECONDS, then REQUEST
  attacker.py overlong HOST PORT HEADER             a 9000-byte request line, then HEADER
"""

import socket
import ssl
import struct
import sys
import time

TIMEOUT = 5.0
ALPN = "transport.l5d.io/v1"


def read_all(sock):
    received = b""
    sock.settimeout(TIMEOUT)
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    except (socket.timeout, ConnectionError, ssl.SSLError, OSError):
        pass
    return received


def transport_header(port):
    # protobuf { port = 1 (varint); session_protocol = 3 { http1 = 1 {} } }
    message = b"\x08"
    value = port
    while value >= 0x80:
        message += bytes([(value & 0x7F) | 0x80])
        value >>= 7
    message += bytes([value]) + b"\x1a\x02\x0a\x00"
    return b"transport.l5d.io/v1\r\n\r\n" + struct.pack(">I", len(message)) + message


def unescape(text):
    return text.encode().decode("unicode_escape").encode("latin-1")


def main(args):
    mode, host, port = args[0], args[1], int(args[2])
    sock = socket.create_connection((host, port), timeout=TIMEOUT)
    if mode in ("transport", "tls"):
        sni = args[3]
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        if mode == "transport":
            context.set_alpn_protocols([ALPN])
        sock = context.wrap_socket(sock, server_hostname=sni)
    if mode == "tls":
        try:
            sock.sendall(b"GET /direct-tls HTTP/1.1\r\nhost: web\r\nconnection: close\r\n\r\n")
        except OSError:
            pass
    elif mode == "transport":
        target_port = int(args[4])
        if sock.selected_alpn_protocol() != ALPN:
            print("no transport ALPN")
            return
        request = b"GET / HTTP/1.1\r\nhost: web\r\nconnection: close\r\n\r\n"
        try:
            sock.sendall(transport_header(target_port) + request)
        except OSError:
            pass
    elif mode == "raw":
        sock.sendall(unescape(args[3]))
    elif mode == "silent":
        time.sleep(float(args[3]))
        try:
            sock.sendall(unescape(args[4]))
        except OSError:
            pass
    elif mode == "overlong":
        request = b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nhost: web\r\n"
        request += unescape(args[3]) + b"\r\nconnection: close\r\n\r\n"
        try:
            sock.sendall(request)
        except OSError:
            pass
    sys.stdout.write(read_all(sock).decode("latin-1"))


if __name__ == "__main__":
    main(sys.argv[1:])
