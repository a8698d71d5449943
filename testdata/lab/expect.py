#!/usr/bin/env python3
"""Writes lab-EXPECT.tsv for the lab captures (same columns as EXPECT.tsv).

Usage: expect.py OUT.tsv FILE:OUTCOMES:NOTE ...

The outcomes and note come from the recording script, which knows what it
staged; the client, server, ISN, SYN and SYN-ACK counts and the close are
read from the capture (classic pcap or pcapng, Ethernet, IPv4, TCP), with
the rules EXPECT.tsv uses: the first FIN or RST captured decides the close
and who closed. A client SYN with a new ISN on a 4-tuple starts a new row
(port reuse).

OUTCOMES is one outcome for every attempt in the file, or a comma-separated
list of CLIENTPORT=OUTCOME (the attempts from that client port),
CLIENTPORT#N=OUTCOME (the Nth attempt from it, from 1) and *=OUTCOME (the
others); "-" leaves the outcome unchecked, "unchecked" the
outcome and the SYN and SYN-ACK counts (for an attempt whose truth the note
gives and an analyser may not yet see).

Rows of files not named on the command line are kept (record.sh and
record-kernel.sh each rewrite only their own).
"""
import os
import struct
import sys

HEADER = "file\tclient\tserver\tisn\toutcome\tsyns\tsynacks\tclose\tclosed_by\tnote"


def pcap_frames(data):
    magic = data[:4]
    if magic == b"\xd4\xc3\xb2\xa1":
        e = "<"
    elif magic == b"\xa1\xb2\xc3\xd4":
        e = ">"
    else:
        raise SystemExit("expect.py: not a microsecond pcap")
    if struct.unpack(e + "I", data[20:24])[0] != 1:
        raise SystemExit("expect.py: not Ethernet")
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(e + "IIII", data[off:off + 16])
        yield data[off + 16:off + 16 + incl]
        off += 16 + incl


def pcapng_frames(data):
    """Enhanced and simple packet blocks of Ethernet interfaces; every other
    block (synscope's kernel evidence in custom blocks among them) is
    skipped."""
    off, e, links = 0, "<", []
    while off + 12 <= len(data):
        btype = struct.unpack("<I", data[off:off + 4])[0]
        if btype == 0x0A0D0D0A:
            e = "<" if data[off + 8:off + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            links = []
        btype, blen = struct.unpack(e + "II", data[off:off + 8])
        body = data[off + 8:off + blen - 4]
        if btype == 1:  # interface description
            links.append(struct.unpack(e + "H", body[:2])[0])
        elif btype == 6:  # enhanced packet
            iface, _, _, incl, _ = struct.unpack(e + "IIIII", body[:20])
            if links[iface] == 1:
                yield body[20:20 + incl]
        elif btype == 3:  # simple packet
            if links[0] == 1:
                yield body[4:]
        off += blen


def packets(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        return pcapng_frames(data)
    return pcap_frames(data)


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


def outcome_of(spec, client, nth):
    if "=" not in spec:
        return spec
    rules = dict(r.split("=", 1) for r in spec.split(","))
    port = client.rsplit(":", 1)[1]
    return rules.get("%s#%d" % (port, nth), rules.get(port, rules.get("*", "-")))


def rows(path, outcomes, note):
    cur = {}  # (client, server) -> the 4-tuple's current attempt
    order = []
    for src, dst, seq, ack, flags in segments(path):
        syn, is_ack = flags & 2, flags & 16
        if syn and not is_ack and ((src, dst) not in cur or cur[(src, dst)]["isn"] != seq):
            c = {"client": src, "server": dst, "isn": seq, "syns": 0, "synacks": 0, "close": "none", "by": "none"}
            cur[(src, dst)] = c
            order.append(c)
        if (src, dst) in cur:
            c, from_client = cur[(src, dst)], True
        elif (dst, src) in cur:
            c, from_client = cur[(dst, src)], False
        else:
            continue
        if syn and not is_ack and from_client:
            c["syns"] += 1
        if syn and is_ack and not from_client:
            c["synacks"] += 1
        stale_rst = (flags & 4 and from_client and c["synacks"] == 0
                     and seq not in (c["isn"], (c["isn"] + 1) & 0xffffffff))
        # A client RST in SYN-SENT outside its own sequence space answers
        # a server's ACK for an old connection (RFC 793): not a close.
        if c["close"] == "none" and flags & 5 and not stale_rst:
            c["close"] = "rst" if flags & 4 else "fin"
            c["by"] = "client" if from_client else "server"
    nth = {}
    for c in order:
        nth[c["client"]] = nth.get(c["client"], 0) + 1
        outcome, syns, synacks = outcome_of(outcomes, c["client"], nth[c["client"]]), str(c["syns"]), str(c["synacks"])
        if outcome == "unchecked":
            outcome, syns, synacks = "-", "-", "-"
        yield "\t".join([os.path.basename(path), c["client"], c["server"], str(c["isn"]),
                         outcome, syns, synacks, c["close"], c["by"], note])


def main():
    out_path = sys.argv[1]
    new, names = [], set()
    for arg in sys.argv[2:]:
        path, outcomes, note = arg.split(":", 2)
        names.add(os.path.basename(path))
        new.extend(rows(path, outcomes, note))
    kept = []
    if os.path.exists(out_path):
        with open(out_path) as f:
            for line in f.read().splitlines()[1:]:
                if line and line.split("\t", 1)[0] not in names:
                    kept.append(line)
    with open(out_path, "w") as f:
        f.write("\n".join([HEADER] + kept + new) + "\n")


if __name__ == "__main__":
    main()
