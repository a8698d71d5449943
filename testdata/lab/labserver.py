#!/usr/bin/env python3
"""Tiny HTTP/1.1 server for record.sh: one listener per port, fixed body.

Usage: labserver.py ADDR PORT [PORT...]

HTTP/1.1 so a client may keep the connection open (the SO_LINGER case needs
the client, not the server, to close first); "Connection: close" from the
client makes the server close after the response.
"""
import http.server
import socketserver
import sys
import threading

BODY = b"synscope lab response\n" * 20


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, fmt, *args):
        sys.stderr.write("labserver: %s %s\n" % (self.address_string(), fmt % args))


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    addr = sys.argv[1]
    servers = [Server((addr, int(p)), Handler) for p in sys.argv[2:]]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
