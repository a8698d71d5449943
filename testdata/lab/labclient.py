#!/usr/bin/env python3
"""Tiny client for record.sh.

Usage: labclient.py MODE ADDR PORT
  get      GET / with "Connection: close", read to EOF, close (FIN)
  refused  connect to a closed port; expects ECONNREFUSED
  linger   GET / keeping the connection, read the response, close with
           SO_LINGER {on, 0}: the kernel sends RST instead of FIN
"""
import socket
import struct
import sys


def request(keep):
    conn = "keep-alive" if keep else "close"
    return ("GET / HTTP/1.1\r\nHost: lab\r\nUser-Agent: synscope-lab\r\n"
            "Connection: %s\r\n\r\n" % conn).encode()


def read_response(s):
    """Reads one response with a Content-Length body."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            raise SystemExit("labclient: connection closed before the headers")
        buf += chunk
    head, body = buf.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(body) < length:
        chunk = s.recv(4096)
        if not chunk:
            break
        body += chunk
    return head.split(b"\r\n")[0]


def main():
    mode, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "refused":
        try:
            socket.create_connection((addr, port), timeout=5)
        except ConnectionRefusedError:
            print("labclient: refused, as expected")
            return
        raise SystemExit("labclient: connection to %d was not refused" % port)
    s = socket.create_connection((addr, port), timeout=30)
    if mode == "get":
        s.sendall(request(False))
        status = read_response(s)
        while s.recv(4096):
            pass
        s.close()
    elif mode == "linger":
        s.sendall(request(True))
        status = read_response(s)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    else:
        raise SystemExit("labclient: unknown mode " + mode)
    print("labclient: %s" % status.decode())


if __name__ == "__main__":
    main()
