#!/usr/bin/env python3
"""Servers and clients for record-kernel.sh.

Servers (print "listening" once they listen, run until killed):
  backlog ADDR PORT N      listen with backlog N and never accept
  closer  ADDR PORT        accept, send "bye", close (the server closes first)
  probe   ADDR PORT        accept, read the request, answer "OK", read to the end

Clients:
  overflow ADDR PORT N M GO   N connects at once, then (once a line can be
                              read from the file GO: the recorder writes it when
                              the server's accept queue is full) M more; every
                              connect gives up after one SYN retransmit
                              (TCP_SYNCNT 1). Waits until each has connected or
                              failed, prints "PORT connected|failed" for each,
                              closes them all.
  paws    ADDR PORT LPORT     connects from LPORT, then again from LPORT with an
                              older TCP timestamp (see below); prints the
                              timestamps
  probes  ADDR PORT N MS      N health probes MS ms apart, each closed with
                              SO_LINGER {1, 0}: RST instead of FIN
"""
import select
import socket
import struct
import sys
import threading
import time

TCP_TIMESTAMP = 24  # linux/tcp.h


def listen(addr, port, backlog):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(backlog)
    print("listening", flush=True)
    return s


def serve_backlog(addr, port, n):
    s = listen(addr, port, n)
    while True:
        time.sleep(3600)  # never accepts: the scenario
    s.close()


def serve(addr, port, handle):
    s = listen(addr, port, 64)
    while True:
        c, _ = s.accept()
        threading.Thread(target=handle, args=(c,), daemon=True).start()


def closer(c):
    c.sendall(b"bye\n")
    c.close()


def probe(c):
    try:
        c.recv(64)
        c.sendall(b"OK\n")
        while c.recv(64):
            pass
    except OSError:
        pass
    c.close()


def overflow(addr, port, n, m, go):
    def connect_many(k):
        out = []
        for _ in range(k):
            s = socket.socket()
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT, 1)
            s.setblocking(False)
            try:
                s.connect((addr, port))
            except BlockingIOError:
                pass
            out.append(s)
        return out
    socks = connect_many(n)
    with open(go) as f:  # a FIFO: blocks until the recorder says the queue is full
        f.readline()
    socks += connect_many(m)
    pending, deadline = list(socks), time.monotonic() + 30
    while pending and time.monotonic() < deadline:
        _, w, _ = select.select([], pending, [], 1)
        pending = [s for s in pending if s not in w]
    for s in socks:
        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        state = "pending" if s in pending else ("connected" if err == 0 else "failed")
        print(s.getsockname()[1], state, flush=True)
    for s in socks:
        s.close()


def set_timestamps(v):
    with open("/proc/sys/net/ipv4/tcp_timestamps", "w") as f:
        f.write(str(v))


def gone(lport):
    """No socket on local port lport in this namespace: the server has
    acknowledged the client's FIN, so it holds the 4-tuple in TIME-WAIT."""
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                for line in f.readlines()[1:]:
                    if int(line.split()[1].split(":")[1], 16) == lport:
                        return False
        except FileNotFoundError:
            pass
    return True


def paws(addr, port, lport):
    """TSval is the clock in ms plus an offset per 4-tuple: random with
    net.ipv4.tcp_timestamps=1, zero with 2. The first connection (=1) tells
    the offset (TCP_TIMESTAMP). Positive: a connection with =2 is older than
    it. Negative: one with =2 (newer: the TIME-WAIT lets it through), then one
    with =1 is older than that."""
    def conn(ts):
        set_timestamps(ts)
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("", lport))
        s.settimeout(10)
        s.connect((addr, port))
        tsval = s.getsockopt(socket.IPPROTO_TCP, TCP_TIMESTAMP) & 0xFFFFFFFF
        now = (time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000000) & 0xFFFFFFFF
        while s.recv(100):
            pass  # to the server's close
        s.close()
        deadline = time.monotonic() + 5
        while not gone(lport):
            if time.monotonic() > deadline:
                raise SystemExit("kernellab: the connection from :%d did not end" % lport)
            time.sleep(0.02)  # polling /proc/net/tcp, with a deadline
        off = (tsval - now) & 0xFFFFFFFF
        off = off - (1 << 32) if off >= 1 << 31 else off
        print("tcp_timestamps=%d: TSval %d (offset %d ms)" % (ts, tsval, off), flush=True)
        return off
    try:
        off = conn(1)
        if abs(off) < 60000:
            raise SystemExit("kernellab: timestamp offset %d ms: too close to 0" % off)
        if off < 0:
            conn(2)
            conn(1)
        else:
            conn(2)
    finally:
        set_timestamps(1)


def probes(addr, port, n, ms):
    t0 = time.monotonic()
    for i in range(n):
        wait = t0 + i * ms / 1000 - time.monotonic()
        if wait > 0:
            time.sleep(wait)  # the prober's period is the scenario
        s = socket.create_connection((addr, port), timeout=5)
        s.sendall(b"GET /health\n")
        s.recv(16)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()


def main():
    mode, a = sys.argv[1], sys.argv[2:]
    if mode == "backlog":
        serve_backlog(a[0], int(a[1]), int(a[2]))
    elif mode == "closer":
        serve(a[0], int(a[1]), closer)
    elif mode == "probe":
        serve(a[0], int(a[1]), probe)
    elif mode == "overflow":
        overflow(a[0], int(a[1]), int(a[2]), int(a[3]), a[4])
    elif mode == "paws":
        paws(a[0], int(a[1]), int(a[2]))
    elif mode == "probes":
        probes(a[0], int(a[1]), int(a[2]), int(a[3]))
    else:
        raise SystemExit("kernellab: unknown mode " + mode)


if __name__ == "__main__":
    main()
