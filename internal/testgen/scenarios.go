package testgen

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// Scenarios builds every capture, in the order they are listed in
// EXPECT.tsv and README.md.
func Scenarios() []*Capture {
	return []*Capture{
		established("established-fin.pcap", PCAP),
		answeredAfterRetransmit(),
		synLinearUnanswered(),
		unansweredTextbook(),
		refusedRST(),
		refusedICMP(),
		refusedICMP6(),
		abandoned(),
		halfOpenScan(),
		undetermined(),
		partial(),
		simultaneousOpen(),
		synackBeforeSyn(),
		duplicates(),
		oooTimestamps(),
		seqWrap(),
		oneSided(),
		portReuse(),
		vlanCopies(),
		linkSLL(),
		linkSLL2(),
		linkRaw(),
		linkNull("linktype-null-le.pcap", binary.LittleEndian),
		linkNull("linktype-null-be.pcap", binary.BigEndian),
		linkLoop(),
		ipv6ExtHeaders(),
		mplsTwoLabels(),
		greIPv4(),
		ipInIP(),
		ipv4Fragments(),
		llcSnap(),
		snaplenCut(),
		snaplenCutEthernet(),
		tfo(),
		rstAfterHandshake(),
		slowResponse(),
		healthcheckRST(),
		timestampsDeclined(),
		multiInterface(),
		established("established-fin-nanos.pcap", PCAPNanos),
		established("established-fin-be.pcap", PCAPBigEndian),
		established("established-fin.pcap.gz", PCAPGzip),
		established("established-fin.pcapng", PCAPNG),
		showcase(),
	}
}

// 1 and 25: the reference connection, in every container.
func established(name string, f Format) *Capture {
	desc := map[Format]string{
		PCAP:          "reference connection: handshake with MSS/SACK/TS/WS, GET, 200, FIN by client then server",
		PCAPNanos:     "established-fin.pcap in a nanosecond pcap (magic a1b23c4d); the server's packets carry +250 ns",
		PCAPBigEndian: "established-fin.pcap in a big-endian pcap (magic a1b2c3d4 stored big-endian)",
		PCAPGzip:      "established-fin.pcap compressed with gzip",
		PCAPNG:        "established-fin.pcap as pcapng (one interface, nanosecond if_tsresol)",
	}[f]
	c := NewCapture(name, desc)
	c.Format = f
	k := c.Conn("198.51.100.20:41234", "192.0.2.10:80", 0x5eed0001, 0x0badc0de)
	if f == PCAPNanos {
		k.Server.Via[0].Delay = 250 * time.Nanosecond
	}
	cl, s := k.Client, k.Server
	rtt := ms(20)
	cl.SYN(0)
	s.SYNACK(us(45))
	cl.ACK(rtt + us(45))
	cl.Send(rtt+us(80), requestBytes(k, "/index.html"))
	s.ACK(rtt + us(120))
	s.Send(rtt+ms(1.2), responseBytes(k, 512))
	cl.ACK(2*rtt + ms(1.2))
	cl.FIN(2*rtt + ms(1.5))
	s.FIN(2*rtt + ms(1.54))
	cl.ACK(3*rtt + ms(1.54))
	k.Expect(Established, "textbook connection")
	return c
}

// 2: two SYNs lost, the third answered.
func answeredAfterRetransmit() *Capture {
	c := NewCapture("answered-after-retransmit.pcap",
		"SYN at 0, retransmitted at +1 s and +3 s (same ISN); the SYN-ACK answers the third (TSecr = its TSval); GET, 200, FIN")
	k := c.Conn("198.51.100.21:50312", "192.0.2.10:80")
	rtt := ms(25)
	k.Client.SYN(0, Lost())
	k.Client.SYN(sec(1), Lost())
	k.Client.SYN(sec(3))
	k.Server.SYNACK(sec(3) + serverDelay)
	t := sec(3) + serverDelay + rtt
	k.Client.ACK(t)
	t = request(k, t+us(20), rtt, us(300), "/", 300)
	closeFIN(k, "client", t+ms(2), rtt)
	k.Expect(AnsweredAfterRetransmit, "answered on the 2nd retransmission")
	return c
}

// background keeps a connection busy from t0 to t1: one request every 2 s,
// FIN by the client at t1.
func background(c *Capture, client, server string, t0, t1 time.Duration) *Conn {
	k := c.Conn(client, server)
	rtt := ms(12)
	t := handshake(k, t0, rtt)
	for next := t + ms(5); next+sec(2) < t1; next += sec(2) {
		request(k, next, rtt, us(400), "/poll", 700)
	}
	closeFIN(k, "client", t1-rtt-serverDelay, rtt)
	k.Expect(Established, "background traffic that keeps the capture going")
	return k
}

// 3: Linux with net.ipv4.tcp_syn_linear_timeouts=4.
func synLinearUnanswered() *Capture {
	c := NewCapture("syn-linear-unanswered.pcap",
		"SYNs at 0,1,2,3,4,5,7,11 s (Linux tcp_syn_linear_timeouts=4 schedule), never answered; other traffic until +30 s")
	background(c, "203.0.113.50:50500", "192.0.2.10:443", ms(100), sec(30))
	k := c.Conn("198.51.100.22:38100", "192.0.2.10:443")
	for _, s := range []float64{0, 1, 2, 3, 4, 5, 7, 11} {
		k.Client.SYN(sec(s) + ms(500))
	}
	k.Expect(Unanswered, "8 SYNs, linear then exponential backoff")
	return c
}

// 4: the RFC 6298 schedule.
func unansweredTextbook() *Capture {
	c := NewCapture("unanswered.pcap", "SYNs at 0,1,3,7 s (exponential backoff), never answered; other traffic until +20 s")
	background(c, "203.0.113.51:50501", "192.0.2.10:443", ms(50), sec(20))
	k := c.Conn("198.51.100.23:38200", "192.0.2.10:443")
	for _, s := range []float64{0, 1, 3, 7} {
		k.Client.SYN(sec(s) + ms(300))
	}
	k.Expect(Unanswered, "4 SYNs, no answer of any kind")
	return c
}

// 5a: closed port, RST from the server's kernel.
func refusedRST() *Capture {
	c := NewCapture("refused-rst.pcap", "SYN to a closed port; RST+ACK from the server (seq 0, ack = ISN+1)")
	k := c.Conn("198.51.100.24:42000", "192.0.2.10:8080")
	k.Client.SYN(0)
	k.Server.RST(serverDelay)
	k.Expect(Refused, "RST answers the SYN")
	return c
}

// 5b: a firewall on the server rejects with ICMP port unreachable.
func refusedICMP() *Capture {
	c := NewCapture("refused-icmp.pcap", "SYN; ICMP port unreachable (type 3 code 3) from the server, quoting the whole SYN")
	k := c.Conn("198.51.100.25:42001", "192.0.2.10:8443")
	k.Client.SYN(0)
	k.ICMPUnreachable(us(60), "", 3)
	k.Expect(Refused, "ICMP port unreachable from the server")
	return c
}

// 5c: IPv6, a router on the path prohibits the connection.
func refusedICMP6() *Capture {
	c := NewCapture("refused-icmp6.pcap", "IPv6 SYN; ICMPv6 destination unreachable, administratively prohibited (type 1 code 1), from router 2001:db8:ffff::1")
	k := c.Conn("[2001:db8:1::25]:42002", "[2001:db8::10]:443")
	k.Client.SYN(0)
	k.ICMPUnreachable(ms(3), "2001:db8:ffff::1", 1)
	k.Expect(Refused, "ICMPv6 admin-prohibited from a router, not from the server")
	return c
}

// 6a: SYN-ACK retransmitted by the server, the client never completes.
func abandoned() *Capture {
	c := NewCapture("abandoned.pcap", "SYN; SYN-ACK at once and retransmitted at +1, +3, +7 s; no ACK ever")
	k := c.Conn("198.51.100.26:43000", "192.0.2.10:80")
	k.Client.SYN(0)
	for _, s := range []float64{0, 1, 3, 7} {
		k.Server.SYNACK(sec(s) + serverDelay)
	}
	k.Expect(Abandoned, "4 SYN-ACKs (1 + 3 retransmissions), client silent")
	return c
}

// 6b: nmap -sS: open, closed and filtered ports.
func halfOpenScan() *Capture {
	c := NewCapture("halfopen-scan.pcap", "SYN scan from one source port: open port (SYN-ACK, client RST), closed port (RST), filtered port (2 SYNs, no answer)")
	scan := []Opt{MSS(1460), Window(1024)}
	open := c.Conn("203.0.113.66:61000", "192.0.2.10:22", 0x4b1d0000)
	open.Client.SYN(0, scan...)
	open.Server.SYNACK(serverDelay)
	open.Client.RST(serverDelay+ms(30), NoACK())
	open.Expect(Abandoned, "half-open: the scanner's kernel resets the SYN-ACK (RST, seq = ISN+1, no ACK)")

	closed := c.Conn("203.0.113.66:61000", "192.0.2.10:23", 0x4b1d0001)
	closed.Client.SYN(us(20), scan...)
	closed.Server.RST(us(20) + serverDelay)
	closed.Expect(Refused, "closed port")

	filtered := c.Conn("203.0.113.66:61000", "192.0.2.10:25", 0x4b1d0002)
	filtered.Client.SYN(us(40), scan...)
	filtered.Client.SYN(sec(1.05), scan...)
	filtered.Expect(Unanswered, "nmap retries once; capture continues 3 s past it")

	// A ping-like keepalive from elsewhere keeps the capture open for 3 s more.
	bg := c.Conn("198.51.100.27:43001", "192.0.2.10:80")
	web(bg, sec(4.5), ms(10), "/", 100, "client")
	bg.Expect(Established, "unrelated connection that extends the capture")
	return c
}

// 7: a SYN too close to the end of the capture to judge.
func undetermined() *Capture {
	c := NewCapture("undetermined.pcap", "one complete connection; a second SYN 0.5 s before the capture's last packet")
	a := c.Conn("198.51.100.28:44000", "192.0.2.10:80")
	rtt := ms(15)
	t := handshake(a, 0, rtt)
	request(a, t+us(20), rtt, us(300), "/a", 200)
	request(a, sec(2), rtt, us(300), "/b", 200)
	closeFIN(a, "client", sec(5)-rtt-serverDelay, rtt) // last packet at exactly 5 s
	a.Expect(Established, "complete connection; its last ACK is the capture's last packet")

	b := c.Conn("198.51.100.29:44001", "192.0.2.10:80")
	b.Client.SYN(sec(4.5))
	b.Expect(Undetermined, "capture ends 0.5 s after the only SYN")
	return c
}

// 8: the capture starts in the middle of things.
func partial() *Capture {
	c := NewCapture("partial.pcap", "capture starts mid-connection (data both ways, then FIN); and a SYN-ACK whose SYN was not captured")
	a := c.Conn("198.51.100.30:45000", "192.0.2.10:80")
	rtt := ms(10)
	a.Client.SYN(-sec(2), Unseen())
	a.Server.SYNACK(-sec(2)+serverDelay, Unseen())
	a.Client.ACK(-sec(2)+serverDelay+rtt, Unseen())
	a.Client.Send(-sec(2)+serverDelay+rtt+us(20), requestBytes(a, "/big"), Unseen())
	a.Server.Segment(0, ACK, Payload(filler(1448)))
	a.Server.Segment(us(12), ACK, Payload(filler(1448)))
	a.Server.Send(us(24), filler(600))
	a.Client.ACK(us(24) + rtt)
	request(a, ms(50), rtt, us(300), "/next", 400)
	closeFIN(a, "client", ms(100), rtt)
	a.Expect(Partial, "handshake before the capture started")

	b := c.Conn("198.51.100.31:45001", "192.0.2.10:80")
	b.Client.SYN(ms(20), Unseen())
	b.Server.SYNACK(ms(20) + serverDelay)
	t := ms(20) + serverDelay + rtt
	b.Client.ACK(t)
	t = request(b, t+us(20), rtt, us(300), "/", 200)
	closeFIN(b, "client", t+ms(1), rtt)
	b.Expect(Partial, "SYN not captured; SYN-ACK, ACK, data and FIN are")
	return c
}

// 9: RFC 793 simultaneous open.
func simultaneousOpen() *Capture {
	c := NewCapture("simultaneous-open.pcap", "simultaneous open: both ends send SYN, then each sends SYN-ACK, then data both ways")
	k := c.Conn("198.51.100.32:50000", "203.0.113.40:50001")
	owd := ms(10) // one-way delay; the capture is taken at the client
	k.Client.SYN(0)
	k.Server.SYN(us(500))
	k.Client.SYNACK(us(500) + us(30))
	k.Server.SYNACK(us(500) + owd) // sent when our SYN reached the peer
	k.Client.Send(owd+ms(1), filler(100))
	k.Server.Send(owd+ms(2), filler(100))
	k.Client.ACK(owd + ms(2) + us(30))
	closeFIN(k, "client", ms(50), 2*owd)
	k.Expect(Established, "simultaneous open; the other end's SYN (its ISN) is part of the same connection")
	return c
}

// 10: merged captures with a skewed clock.
func synackBeforeSyn() *Capture {
	c := NewCapture("synack-before-syn.pcap", "the SYN-ACK is recorded before its SYN (file order and a timestamp 50 µs earlier); handshake completes, data flows")
	k := c.Conn("198.51.100.33:46000", "192.0.2.10:80")
	rtt := ms(8)
	t := ms(10)
	k.Client.SYN(t)
	k.Server.SYNACK(t+serverDelay, StampAt(t-us(50)))
	t += serverDelay + rtt
	k.Client.ACK(t)
	t = request(k, t+us(20), rtt, us(300), "/", 300)
	closeFIN(k, "client", t+ms(1), rtt)
	k.Expect(Established, "SYN-ACK stamped 50 µs before the SYN it answers")
	return c
}

// 11: tcpdump -i any sees every packet twice.
func duplicates() *Capture {
	c := NewCapture("duplicates.pcap", "every packet twice, 20 µs apart, identical bytes (tcpdump -i any on a bridge/veth); Linux SLL")
	c.LinkType = layers.LinkTypeLinuxSLL
	c.Via = []Path{{Link: SLL()}, {Link: SLL(), Delay: us(20)}}
	k := c.Conn("198.51.100.34:47000", "192.0.2.10:80")
	web(k, 0, ms(5), "/", 400, "client")
	k.Expect(Established, "each packet appears twice: count once")
	return c
}

// 12: a timestamp going backwards inside a connection.
func oooTimestamps() *Capture {
	c := NewCapture("ooo-timestamps.pcap", "one packet in the middle of a connection is stamped 2 ms earlier than its predecessor (file order kept)")
	c.KeepOrder = true
	k := c.Conn("198.51.100.35:47100", "192.0.2.10:80")
	rtt := ms(10)
	t := handshake(k, 0, rtt)
	t += us(20)
	k.Client.Send(t, requestBytes(k, "/"))
	k.Server.ACK(t+ms(1), StampAt(t-ms(2)))
	k.Server.Send(t+ms(2), responseBytes(k, 300))
	k.Client.ACK(t + ms(2) + rtt)
	closeFIN(k, "client", t+ms(2)+rtt+ms(1), rtt)
	k.Expect(Established, "the server's ACK of the request goes back in time by 2 ms")
	return c
}

// 13: sequence numbers wrap in both directions.
func seqWrap() *Capture {
	c := NewCapture("seq-wrap.pcap", "client ISN 0xFFFFFF00, server ISN 0xFFFFFFF0: both sequence spaces wrap during the transfer; FIN close")
	k := c.Conn("198.51.100.36:47200", "192.0.2.10:80", 0xFFFFFF00, 0xFFFFFFF0)
	rtt := ms(5)
	t := handshake(k, 0, rtt)
	for i := 0; i < 3; i++ {
		k.Client.Data(t+us(20)+time.Duration(i)*us(50), 200)
	}
	k.Server.ACK(t + us(150) + serverDelay)
	last := respond(k.Server, t+ms(1), filler(3000))
	k.Client.ACK(last + rtt)
	closeFIN(k, "client", last+rtt+ms(1), rtt)
	k.Expect(Established, "client seq wraps after 255 bytes, server's after 15")
	return c
}

// 14: only one direction was captured.
func oneSided() *Capture {
	c := NewCapture("one-sided.pcap", "only client-to-server packets: SYN, ACK of the unseen SYN-ACK, request, ACKs, FIN")
	k := c.Conn("198.51.100.37:47300", "192.0.2.10:80")
	k.Server.Via = nil
	web(k, 0, ms(10), "/", 2000, "client")
	k.Expect(Established, "SYN-ACK not captured; the client's ACK (ack = server ISN+1) and data show the handshake completed")
	return c
}

// 15: the same 4-tuple used three times.
func portReuse() *Capture {
	c := NewCapture("port-reuse.pcap", "one 4-tuple, three connections: FIN-closed, new SYN (new ISN) 2 s later; that one RST-closed, then a SYN reusing its ISN")
	const cli, srv = "198.51.100.38:45678", "192.0.2.10:80"
	rtt := ms(10)
	a := c.Conn(cli, srv, 1000000000, 3000000000)
	t := web(a, 0, rtt, "/one", 200, "client")
	a.Expect(Established, "connection 1")

	b := c.Conn(cli, srv, 1500000000, 3500000000)
	t = handshake(b, t+sec(2), rtt)
	t = request(b, t+us(20), rtt, us(300), "/two", 200)
	b.Client.RST(t + ms(1))
	b.Expect(Established, "connection 2, new ISN on the same 4-tuple, closed by RST")

	d := c.Conn(cli, srv, 1500000000, 3900000000)
	web(d, t+sec(1), rtt, "/three", 200, "client")
	d.Expect(Established, "connection 3 reuses connection 2's ISN after its RST: a new attempt")
	return c
}

// 16: a mirror port delivers each packet on two VLANs; plus QinQ.
func vlanCopies() *Capture {
	c := NewCapture("vlan-copies.pcap", "one connection captured twice, on VLAN 10 and VLAN 20 (mirror port, copy 4 µs later); one connection in QinQ (outer 100, inner 200)")
	k := c.Conn("198.51.100.39:48000", "192.0.2.10:80")
	for _, s := range []*Side{k.Client, k.Server} {
		s.Via = []Path{{Link: VLAN(10)}, {Link: VLAN(20), Delay: us(4)}}
	}
	web(k, 0, ms(10), "/", 300, "client")
	k.Expect(Established, "every packet on VLAN 10 and VLAN 20: one connection, count once")

	q := c.Conn("198.51.100.40:48001", "192.0.2.10:80")
	for _, s := range []*Side{q.Client, q.Server} {
		s.Via = []Path{{Link: VLAN(100, 200)}}
	}
	web(q, ms(100), ms(10), "/", 300, "client")
	q.Expect(Established, "QinQ: 802.1ad outer tag 100, 802.1Q inner tag 200")
	return c
}

// linkScenario is one ordinary connection over a given link.
func linkScenario(name, desc string, lt layers.LinkType, l Link, client, server string) *Capture {
	c := NewCapture(name, desc)
	c.LinkType = lt
	c.Via = []Path{{Link: l}}
	k := c.Conn(client, server)
	web(k, 0, ms(10), "/", 300, "client")
	k.Expect(Established, "plain connection; the point is the framing")
	return c
}

// 17: link types and encapsulations.
func linkSLL() *Capture {
	return linkScenario("linktype-sll.pcap", "one connection, Linux cooked capture v1 (LINKTYPE_LINUX_SLL 113)",
		layers.LinkTypeLinuxSLL, SLL(), "198.51.100.41:48100", "192.0.2.10:80")
}

func linkSLL2() *Capture {
	return linkScenario("linktype-sll2.pcap", "one connection, Linux cooked capture v2 (LINKTYPE_LINUX_SLL2 276, header built by hand)",
		layers.LinkType(276), SLL2(2), "198.51.100.42:48200", "192.0.2.10:80")
}

func linkRaw() *Capture {
	c := linkScenario("linktype-raw.pcap", "one IPv4 and one IPv6 connection, raw IP (LINKTYPE_RAW 101)",
		layers.LinkTypeRaw, Raw(), "198.51.100.43:48300", "192.0.2.10:80")
	k := c.Conn("[2001:db8:1::43]:48301", "[2001:db8::10]:80")
	web(k, ms(200), ms(10), "/", 300, "client")
	k.Expect(Established, "IPv6 in LINKTYPE_RAW (version nibble 6)")
	return c
}

func linkNull(name string, order binary.AppendByteOrder) *Capture {
	o := "little-endian (02 00 00 00)"
	if order == binary.BigEndian {
		o = "big-endian (00 00 00 02)"
	}
	return linkScenario(name, "one connection, BSD loopback (LINKTYPE_NULL 0), address family "+o,
		layers.LinkTypeNull, Null(order), "192.0.2.100:48400", "192.0.2.10:80")
}

func linkLoop() *Capture {
	return linkScenario("linktype-loop.pcap", "one connection, OpenBSD loopback (LINKTYPE_LOOP 108, address family in network byte order)",
		layers.LinkTypeLoop, Loop(), "192.0.2.101:48500", "192.0.2.10:80")
}

func ipv6ExtHeaders() *Capture {
	c := NewCapture("ipv6-exthdrs.pcap", "one IPv6 connection where every packet has hop-by-hop (router alert) and destination options headers before TCP")
	k := c.Conn("[2001:db8:1::44]:48600", "[2001:db8::10]:80")
	k.Client.V6Ext, k.Server.V6Ext = true, true
	web(k, 0, ms(10), "/", 300, "client")
	k.Expect(Established, "extension headers on every packet")
	return c
}

func mplsTwoLabels() *Capture {
	return linkScenario("mpls.pcap", "one connection in Ethernet + MPLS with two labels (100, 200 bottom of stack)",
		layers.LinkTypeEthernet, MPLS(100, 200), "198.51.100.45:48700", "192.0.2.10:80")
}

func greIPv4() *Capture {
	return linkScenario("gre.pcap", "one connection tunnelled in GRE (IPv4 in GRE in IPv4 203.0.113.1 <-> 203.0.113.2)",
		layers.LinkTypeEthernet, GRE(), "198.51.100.46:48800", "192.0.2.10:80")
}

func ipInIP() *Capture {
	return linkScenario("ipip.pcap", "one connection tunnelled IPv4-in-IPv4 (protocol 4, 203.0.113.1 <-> 203.0.113.2)",
		layers.LinkTypeEthernet, IPIP(), "198.51.100.47:48900", "192.0.2.10:80")
}

func llcSnap() *Capture {
	return linkScenario("llc-snap.pcap", "one connection framed as IEEE 802.3 + LLC (AA AA 03) + SNAP (OUI 0, type 0x0800)",
		layers.LinkTypeEthernet, LLCSNAP(), "198.51.100.48:49000", "192.0.2.10:80")
}

func ipv4Fragments() *Capture {
	c := NewCapture("ipv4-fragments.pcap", "one connection whose 1000-byte request is sent as two IPv4 fragments (DF clear)")
	k := c.Conn("198.51.100.49:49100", "192.0.2.10:80")
	rtt := ms(10)
	t := handshake(k, 0, rtt)
	t += us(20)
	k.Client.Send(t, padTo(string(requestBytes(k, "/upload")), 1000), Fragment(520))
	last := respond(k.Server, t+us(300), responseBytes(k, 100))
	k.Client.ACK(last + rtt)
	closeFIN(k, "client", last+rtt+ms(1), rtt)
	k.Expect(Established, "the request travels in 2 fragments: counted, not tracked")
	return c
}

// 18: headers-only captures.
func snaplenCut() *Capture {
	c := NewCapture("snaplen-cut.pcap", "raw IP, snaplen 54: the SYN's options are cut (60 -> 54 bytes); the SYN-ACK (no timestamps, 12 bytes of options) fits")
	c.LinkType = layers.LinkTypeRaw
	c.Snaplen = 54
	c.Via = []Path{{Link: Raw()}}
	k := c.Conn("198.51.100.50:49200", "192.0.2.10:80")
	k.Server.Offer.TS = false
	web(k, 0, ms(10), "/", 300, "client")
	k.Expect(Established, "SYN options cut by the snaplen; data cut too")
	return c
}

func snaplenCutEthernet() *Capture {
	c := NewCapture("snaplen-cut-eth.pcap", "Ethernet, snaplen 54 (tcpdump -s 54): every TCP option and payload cut, headers intact")
	c.Snaplen = 54
	k := c.Conn("198.51.100.51:49300", "192.0.2.10:80")
	web(k, 0, ms(10), "/", 300, "client")
	k.Expect(Established, "only the 20-byte TCP headers captured")
	return c
}

// 19: TCP Fast Open with a valid cookie.
func tfo() *Capture {
	c := NewCapture("tfo.pcap", "TCP Fast Open: SYN with a cookie and 100 bytes of data; the SYN-ACK acknowledges the data (ack = ISN+101)")
	k := c.Conn("198.51.100.52:49400", "192.0.2.10:80")
	rtt := ms(20)
	req := padTo(string(requestBytes(k, "/tfo")), 100)
	cookie := []byte{0x8a, 0x2c, 0x51, 0x07, 0xe3, 0x9d, 0x44, 0xb6}
	k.Client.SYN(0, MSS(1460), SACKPerm(), TS(), WS(7), TFO(cookie), Payload(req))
	k.Server.SYNACK(serverDelay)
	last := respond(k.Server, serverDelay+us(300), responseBytes(k, 300))
	// The client's ACK of the SYN-ACK left before the response reached it.
	k.Client.ACK(serverDelay+rtt, AckNum(k.Server.ISN+1))
	k.Client.ACK(last + rtt)
	closeFIN(k, "client", last+rtt+ms(1), rtt)
	k.Expect(Established, "data in the SYN, acknowledged by the SYN-ACK; response before the handshake's ACK")
	return c
}

// 20: resets at each stage after the SYN-ACK.
func rstAfterHandshake() *Capture {
	c := NewCapture("rst-after-handshake.pcap", "four resets: by the client before any data; by the server after the request; by the client after the response; by the server to the client's final handshake ACK")
	rtt := ms(10)

	a := c.Conn("198.51.100.53:49500", "192.0.2.10:80")
	t := handshake(a, 0, rtt)
	a.Client.RST(t + ms(2))
	a.Expect(Established, "client resets right after the handshake, no data")

	b := c.Conn("198.51.100.54:49501", "192.0.2.10:80")
	t = handshake(b, ms(100), rtt)
	b.Client.Send(t+us(20), requestBytes(b, "/crash"))
	b.Server.RST(t + ms(3))
	b.Expect(Established, "server resets after the request, no response")

	d := c.Conn("198.51.100.55:49502", "192.0.2.10:80")
	t = handshake(d, ms(200), rtt)
	t = request(d, t+us(20), rtt, us(300), "/", 300)
	d.Client.RST(t + us(30))
	d.Expect(Established, "client aborts (SO_LINGER 0) after the response")

	e := c.Conn("198.51.100.56:49503", "192.0.2.10:80")
	t = handshake(e, ms(300), rtt)
	e.Server.RST(t+serverDelay, NoACK(), NoOptions())
	e.Expect(Established, "server answers the final handshake ACK with a bare RST (seq = server ISN+1): half-open entry gone")
	return c
}

// 21: the application takes 6 s to answer.
func slowResponse() *Capture {
	c := NewCapture("slow-response.pcap", "handshake fine, request at +0.1 s, first response byte at +6.2 s")
	k := c.Conn("198.51.100.57:49600", "192.0.2.10:80")
	rtt := ms(20)
	handshake(k, 0, rtt)
	k.Client.Send(sec(0.1), requestBytes(k, "/report"))
	k.Server.ACK(sec(0.1) + ms(40)) // delayed ACK
	last := respond(k.Server, sec(6.2), responseBytes(k, 2500))
	k.Client.ACK(last + rtt)
	closeFIN(k, "client", last+rtt+ms(1), rtt)
	k.Expect(Established, "6.1 s between request and first response byte")
	return c
}

// 22: load-balancer health checks closing with RST.
func healthcheckRST() *Capture {
	c := NewCapture("healthcheck-rst.pcap", "prober 198.51.100.7 checks 192.0.2.10:80 every 1.00 s (±20 ms) for 60 s and closes with RST; ordinary clients close with FIN")
	rtt := us(300)
	for i := 0; i < 60; i++ {
		t := sec(float64(i)) + ms(20) + c.rng.jitter(ms(20))
		k := c.Conn(fmt.Sprintf("198.51.100.7:%d", 33000+i*3), "192.0.2.10:80")
		t = handshake(k, t, rtt)
		k.Client.Send(t+us(10), []byte("GET /healthz HTTP/1.1\r\nHost: 192.0.2.10\r\n\r\n"))
		k.Server.Send(t+us(200), []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
		k.Client.RST(t + us(200) + rtt + us(15))
		k.Expect(Established, "health check, closed by the prober's RST")
	}
	for i := 0; i < 6; i++ {
		k := c.Conn(fmt.Sprintf("203.0.113.%d:%d", 20+i, 51000+i), "192.0.2.10:80")
		web(k, sec(float64(4+i*9))+ms(333), ms(30), "/page", 1200, "client")
		k.Expect(Established, "ordinary client, FIN close")
	}
	return c
}

// 23: the server does not do timestamps.
func timestampsDeclined() *Capture {
	c := NewCapture("timestamps-declined.pcap", "four clients offer the timestamp option; the server's SYN-ACKs come without it (tcp_timestamps=0)")
	for i, o := range []Options{
		{MSS: 1460, WS: 7, SACK: true, TS: true},
		{MSS: 1460, WS: 8, SACK: true, TS: true},
		{MSS: 1400, WS: 6, SACK: false, TS: true},
		{MSS: 1460, WS: -1, SACK: true, TS: true},
	} {
		k := c.Conn(fmt.Sprintf("198.51.100.%d:%d", 60+i, 50000+i), "192.0.2.10:80")
		k.Client.Offer = o
		k.Server.Offer.TS = false
		web(k, ms(float64(i*150)), ms(10), "/", 300, "client")
		k.Expect(Established, "TS offered, declined")
	}
	return c
}

// 24: two interfaces with different timestamp resolutions.
func multiInterface() *Capture {
	c := NewCapture("multi-interface.pcapng", "pcapng with two interfaces: 0 Ethernet (if_tsresol 6, µs) carries the client's packets, 1 raw IP (if_tsresol 9, ns) the server's; libpcap (tcpdump) refuses mixed link types, tshark reads it")
	c.Format = PCAPNGMulti
	c.Ifaces = []Iface{{Name: "eth0", LinkType: layers.LinkTypeEthernet, TSResol: 6}, {Name: "tun0", LinkType: layers.LinkTypeRaw, TSResol: 9}}
	k := c.Conn("198.51.100.64:50100", "192.0.2.10:80")
	k.Client.Via = []Path{{Link: Ethernet(), Iface: 0}}
	k.Server.Via = []Path{{Link: Raw(), Iface: 1, Delay: 123 * time.Nanosecond}}
	web(k, 0, ms(10), "/", 300, "client")
	k.Expect(Established, "one connection split across two interfaces")
	return c
}
