"""The app of tests/netns/attack.sh: answers every GET with 200 and prints
each request line and header it received, so the test can grep what
reached it."""

import http.server
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        # Long request lines are cut: the log stays readable.
        print("REQUEST " + self.requestline[:120], flush=True)
        for name, value in self.headers.items():
            print("HEADER %s: %s" % (name.lower(), value), flush=True)
        body = b"app\n"
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer.allow_reuse_address = True
http.server.ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), Handler).serve_forever()
