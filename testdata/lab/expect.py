#!/usr/bin/env python3
"""Writes lab-EXPECT.tsv for the lab captures (same columns as EXPECT.tsv).

Usage: expect.py OUT.tsv FILE.pcap:OUTCOME:NOTE ...

The outcome and note come from record.sh, which knows what it staged; the
client, server, ISN, SYN and SYN-ACK counts and the close are read from the
capture (classic pcap, Ethernet, IPv4, TCP), with the rules EXPECT.tsv uses:
the first FIN or RST captured decides the close and who closed.
"""
import os
import struct
import sys

HEADER = "file\tclient\tserver\tisn\toutcome\tsyns\tsynacks\tclose\tclosed_by\tnote"


def packets(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic == b"\xd4\xc3\xb2\xa1":
        e = "<"
    elif magic == b"\xa1\xb2\xc3\xd4":
        e = ">"
    else:
        raise SystemExit("expect.py: %s: not a microsecond pcap" % path)
    if struct.unpack(e + "I", data[20:24])[0] != 1:
        raise SystemExit("expect.py: %s: not Ethernet" % path)
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(e + "IIII", data[off:off + 16])
        yield data[off + 16:off + 16 + incl]
        off += 16 + incl


def segments(path):
    for fr in packets(path):
        if len(fr) < 14 + 20 or fr[12:14] != b"\x08\x00":
            continue
        ip = fr[14:]
        ihl = (ip[0] & 15) * 4
        if ip[9] != 6 or len(ip) < ihl + 14:
            continue
        src, dst = ".".join(map(str, ip[12:16])), ".".join(map(str, ip[16:20]))
        sport, dport, seq, ack = struct.unpack(">HHII", ip[ihl:ihl + 12])
        yield ("%s:%d" % (src, sport), "%s:%d" % (dst, dport), seq, ack, ip[ihl + 13])


def rows(path, outcome, note):
    conns = {}  # (client, server) -> row
    order = []
    for src, dst, seq, ack, flags in segments(path):
        syn, is_ack = flags & 2, flags & 16
        if syn and not is_ack and (src, dst) not in conns:
            conns[(src, dst)] = {"isn": seq, "syns": 0, "synacks": 0, "close": "none", "by": "none"}
            order.append((src, dst))
        if (src, dst) in conns:
            c, from_client = conns[(src, dst)], True
        elif (dst, src) in conns:
            c, from_client = conns[(dst, src)], False
        else:
            continue
        if syn and not is_ack and from_client:
            c["syns"] += 1
        if syn and is_ack and not from_client:
            c["synacks"] += 1
        if c["close"] == "none" and flags & 5:
            c["close"] = "rst" if flags & 4 else "fin"
            c["by"] = "client" if from_client else "server"
    for k in order:
        c = conns[k]
        yield "\t".join([os.path.basename(path), k[0], k[1], str(c["isn"]), outcome,
                         str(c["syns"]), str(c["synacks"]), c["close"], c["by"], note])


def main():
    out = [HEADER]
    for arg in sys.argv[2:]:
        path, outcome, note = arg.split(":", 2)
        out.extend(rows(path, outcome, note))
    with open(sys.argv[1], "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
