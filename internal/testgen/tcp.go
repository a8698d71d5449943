package testgen

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// TCP flag bits, as in the header's 13th byte.
const (
	FIN = 1 << iota
	SYN
	RST
	PSH
	ACK
	URG
	ECE
	CWR
)

// Outcomes a correct analyser must reach, as written in EXPECT.tsv.
const (
	Established             = "established"
	AnsweredAfterRetransmit = "answered_after_retransmit"
	Unanswered              = "unanswered"
	Refused                 = "refused"
	Abandoned               = "abandoned"
	Undetermined            = "undetermined"
	Partial                 = "partial"
)

// Conn is one TCP connection (or attempt) between a client and a server side.
type Conn struct {
	cap            *Capture
	Client, Server *Side
	outcome, note  string
	segs           []segRecord
}

// segRecord remembers one logical segment for the expectations: copies on
// several paths are one record.
type segRecord struct {
	at         time.Duration
	fromClient bool
	flags      uint8
	icmp       bool
	captured   bool
}

// Expect declares what a correct analyser must conclude about this attempt.
// The packet counts and the close are derived from what was captured.
func (k *Conn) Expect(outcome, note string) *Conn {
	k.outcome, k.note = outcome, note
	return k
}

// Options are the TCP options of a SYN or SYN-ACK.
type Options struct {
	MSS  int    // 0: absent
	WS   int    // window scale shift; -1: absent
	SACK bool   // SACK permitted
	TS   bool   // timestamps
	TFO  []byte // TCP Fast Open cookie (option 34); nil: absent
}

// Side is one end of a connection. Its exported fields may be changed before
// the first segment is sent.
type Side struct {
	k      *Conn
	peer   *Side
	client bool

	Addr      netip.AddrPort
	MAC       net.HardwareAddr
	ISN       uint32
	TSBase    uint32 // TSval at capture time zero (the per-connection offset Linux adds)
	IPID      uint16 // IP ID of the next packet
	TTL       uint8
	FlowLabel uint32
	Offer     Options // what this side puts in its SYN, or offers in a SYN-ACK (intersected with the peer's SYN)
	SynWin    uint16  // window of the SYN or SYN-ACK
	RcvWin    int     // receive window in bytes after the handshake
	Via       []Path  // where this side's packets are recorded (nil: not captured)
	V6Ext     bool    // IPv6 hop-by-hop and destination options headers before TCP

	sndNxt, rcvNxt uint32
	sent           Options // options of the SYN or SYN-ACK this side sent
	sentSyn        bool
	tsRecent       uint32
	lastIP         []byte
}

func newSide(k *Conn, ap netip.AddrPort, client bool) *Side {
	c := k.cap
	s := &Side{
		k:         k,
		client:    client,
		Addr:      ap,
		MAC:       macFor(ap.Addr()),
		TSBase:    c.rng.u32(),
		IPID:      uint16(c.rng.next()),
		TTL:       64,
		FlowLabel: uint32(c.rng.next()) & 0xfffff,
		Offer:     Options{MSS: 1460, WS: 7, SACK: true, TS: true},
		SynWin:    64240,
		RcvWin:    64256,
		Via:       append([]Path(nil), c.Via...),
		sent:      Options{WS: -1},
	}
	if ap.Addr().Is6() {
		s.Offer.MSS = 1440
		s.SynWin = 64800
	}
	if client {
		s.TTL = 56 // a few hops away from the server, where the capture is taken
	} else {
		s.SynWin = 65160
		if ap.Addr().Is6() {
			s.SynWin = 64800
		}
		s.RcvWin = 65152
	}
	return s
}

// macFor gives each address a fixed, locally administered MAC.
func macFor(a netip.Addr) net.HardwareAddr {
	b := a.As16()
	return net.HardwareAddr{0x02, 0x00, b[12], b[13], b[14], b[15]}
}

// Opt modifies one segment.
type Opt func(*spec)

type spec struct {
	payload  []byte
	opts     *Options
	noACK    bool
	seq, ack *uint32
	win      *uint16
	unseen   bool
	lost     bool
	stamp    *time.Duration
	frag     int
	flags    uint8
}

func (sp *spec) o() *Options {
	if sp.opts == nil {
		sp.opts = &Options{WS: -1}
	}
	return sp.opts
}

// MSS, WS, SACKPerm, TS and TFO replace the side's default options of a SYN
// or SYN-ACK with exactly the ones listed (in Linux's order on the wire).
func MSS(n int) Opt               { return func(sp *spec) { sp.o().MSS = n } }
func WS(shift int) Opt            { return func(sp *spec) { sp.o().WS = shift } }
func SACKPerm() Opt               { return func(sp *spec) { sp.o().SACK = true } }
func TS() Opt                     { return func(sp *spec) { sp.o().TS = true } }
func TFO(cookie []byte) Opt       { return func(sp *spec) { sp.o().TFO = cookie } }
func NoOptions() Opt              { return func(sp *spec) { sp.o() } }
func Payload(b []byte) Opt        { return func(sp *spec) { sp.payload = b } }
func NoACK() Opt                  { return func(sp *spec) { sp.noACK = true } }
func Seq(v uint32) Opt            { return func(sp *spec) { sp.seq = &v } }
func AckNum(v uint32) Opt         { return func(sp *spec) { sp.ack = &v } }
func Window(w uint16) Opt         { return func(sp *spec) { sp.win = &w } }
func Flags(f uint8) Opt           { return func(sp *spec) { sp.flags |= f } }
func Fragment(size int) Opt       { return func(sp *spec) { sp.frag = size } }
func StampAt(d time.Duration) Opt { return func(sp *spec) { sp.stamp = &d } }

// Unseen: the segment is delivered but not captured.
func Unseen() Opt { return func(sp *spec) { sp.unseen = true } }

// Lost: the segment is captured but never reaches the peer (its state stays).
func Lost() Opt { return func(sp *spec) { sp.lost = true } }

// SYN sends a SYN with the ISN (again, for a retransmission).
func (s *Side) SYN(t time.Duration, opts ...Opt) { s.Segment(t, SYN, opts...) }

// SYNACK answers the peer's SYN.
func (s *Side) SYNACK(t time.Duration, opts ...Opt) { s.Segment(t, SYN|ACK, opts...) }

// ACK sends a pure acknowledgement.
func (s *Side) ACK(t time.Duration, opts ...Opt) { s.Segment(t, ACK, opts...) }

// Send sends payload with PSH|ACK.
func (s *Side) Send(t time.Duration, payload []byte, opts ...Opt) {
	s.Segment(t, PSH|ACK, append([]Opt{Payload(payload)}, opts...)...)
}

// Data sends n bytes of filler with PSH|ACK.
func (s *Side) Data(t time.Duration, n int, opts ...Opt) { s.Send(t, filler(n), opts...) }

// FIN sends FIN|ACK.
func (s *Side) FIN(t time.Duration, opts ...Opt) { s.Segment(t, FIN|ACK, opts...) }

// RST sends RST|ACK (RST alone with NoACK).
func (s *Side) RST(t time.Duration, opts ...Opt) { s.Segment(t, RST|ACK, opts...) }

func filler(n int) []byte {
	const pat = "synscope-testgen-payload-0123456789abcdefghijklmnopqrstuvwxyz\n"
	b := make([]byte, n)
	for i := range b {
		b[i] = pat[i%len(pat)]
	}
	return b
}

// seqGT reports a > b in sequence space (wraparound-safe).
func seqGT(a, b uint32) bool { return int32(a-b) > 0 }

// Segment sends one TCP segment with the given flags at time t.
func (s *Side) Segment(t time.Duration, flags uint8, opts ...Opt) {
	var sp spec
	for _, o := range opts {
		o(&sp)
	}
	flags |= sp.flags
	if sp.noACK {
		flags &^= ACK
	}
	syn := flags&SYN != 0
	seq := s.sndNxt
	if syn {
		seq = s.ISN
	}
	if sp.seq != nil {
		seq = *sp.seq
	}
	var ack uint32
	if flags&ACK != 0 {
		ack = s.rcvNxt
	}
	if sp.ack != nil {
		ack = *sp.ack
	}

	o := Options{WS: -1}
	switch {
	case syn && sp.opts != nil:
		o = *sp.opts
	case syn && flags&ACK == 0:
		o = s.Offer
	case syn:
		// A SYN-ACK offers only what the peer's SYN offered.
		o = s.Offer
		p := s.peer.sent
		o.TS = o.TS && p.TS
		o.SACK = o.SACK && p.SACK
		if p.WS < 0 {
			o.WS = -1
		}
		o.TFO = nil
	case sp.opts != nil:
		o.TS = sp.opts.TS
	default:
		o.TS = s.sent.TS && s.peer.sent.TS
	}
	if syn {
		s.sent = o
		s.sentSyn = true
	}

	tsval := s.TSBase + uint32(t/time.Millisecond)
	tsecr := s.tsRecent
	if flags&ACK == 0 {
		tsecr = 0
	}

	win := s.SynWin
	if !syn {
		bytes := s.RcvWin
		if s.sent.WS >= 0 && s.peer.sent.WS >= 0 {
			bytes >>= uint(s.sent.WS)
		}
		win = uint16(min(bytes, 65535))
	}
	if flags&RST != 0 && (flags&ACK == 0 || !s.sentSyn) {
		win = 0 // a reset from no connection (closed port, stale segment) has no window
	}
	if sp.win != nil {
		win = *sp.win
	}

	tcp := &layers.TCP{
		SrcPort: layers.TCPPort(s.Addr.Port()),
		DstPort: layers.TCPPort(s.peer.Addr.Port()),
		Seq:     seq,
		Ack:     ack,
		Window:  win,
		FIN:     flags&FIN != 0,
		SYN:     syn,
		RST:     flags&RST != 0,
		PSH:     flags&PSH != 0,
		ACK:     flags&ACK != 0,
		URG:     flags&URG != 0,
		ECE:     flags&ECE != 0,
		CWR:     flags&CWR != 0,
		Options: tcpOptions(o, tsval, tsecr),
	}
	datagrams := s.ipDatagrams(layers.IPProtocolTCP, tcp, sp.payload, sp.frag, s.peer.Addr.Addr())

	// Sequence space: SYN and FIN take one number each.
	seqLen := uint32(len(sp.payload))
	if syn {
		seqLen++
	}
	if flags&FIN != 0 {
		seqLen++
	}
	end := seq + seqLen
	if syn {
		s.sndNxt = end
	} else if seqLen > 0 && seqGT(end, s.sndNxt) {
		s.sndNxt = end
	}
	if !sp.lost {
		p := s.peer
		if syn {
			p.rcvNxt = end
		} else if seqLen > 0 && seqGT(end, p.rcvNxt) {
			p.rcvNxt = end
		}
		if o.TS {
			p.tsRecent = tsval
		}
	}

	s.record(t, &sp, datagrams, flags, false)
}

// record writes a segment's datagrams on every path of the side.
func (s *Side) record(t time.Duration, sp *spec, datagrams [][]byte, flags uint8, icmp bool) {
	s.lastIP = datagrams[0]
	captured := !sp.unseen && len(s.Via) > 0
	s.k.segs = append(s.k.segs, segRecord{at: t, fromClient: s.client, flags: flags, icmp: icmp, captured: captured})
	if !captured {
		return
	}
	at := t
	if sp.stamp != nil {
		at = *sp.stamp
	}
	v6 := s.Addr.Addr().Is6()
	for i, d := range datagrams {
		for _, p := range s.Via {
			f := Frame{IP: d, V6: v6, Src: s.MAC, Dst: s.peer.MAC, Outgoing: !s.client, c: s.k.cap}
			s.k.cap.add(at+p.Delay+time.Duration(i)*3*time.Microsecond, p.Iface, p.Link.Type, p.Link.Wrap(f))
		}
	}
}

// tcpOptions lays the options out as Linux's tcp_options_write does.
func tcpOptions(o Options, tsval, tsecr uint32) []layers.TCPOption {
	var out []layers.TCPOption
	nop := layers.TCPOption{OptionType: layers.TCPOptionKindNop, OptionLength: 1}
	if o.MSS > 0 {
		out = append(out, layers.TCPOption{OptionType: layers.TCPOptionKindMSS, OptionData: be16(uint16(o.MSS))})
	}
	if o.TS {
		if o.SACK {
			out = append(out, layers.TCPOption{OptionType: layers.TCPOptionKindSACKPermitted})
		} else {
			out = append(out, nop, nop)
		}
		out = append(out, layers.TCPOption{OptionType: layers.TCPOptionKindTimestamps, OptionData: append(be32(tsval), be32(tsecr)...)})
	} else if o.SACK {
		out = append(out, nop, nop, layers.TCPOption{OptionType: layers.TCPOptionKindSACKPermitted})
	}
	if o.WS >= 0 {
		out = append(out, nop, layers.TCPOption{OptionType: layers.TCPOptionKindWindowScale, OptionData: []byte{byte(o.WS)}})
	}
	if o.TFO != nil {
		out = append(out, layers.TCPOption{OptionType: 34, OptionData: o.TFO})
		for n := (2 + len(o.TFO)) % 4; n != 0 && n < 4; n++ {
			out = append(out, nop)
		}
	}
	return out
}

func be16(v uint16) []byte { return []byte{byte(v >> 8), byte(v)} }
func be32(v uint32) []byte { return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }

var serOpts = gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}

// serialize runs gopacket's serializer; a failure is a bug in a scenario.
func serialize(ls ...gopacket.SerializableLayer) []byte {
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, serOpts, ls...); err != nil {
		panic(fmt.Sprintf("testgen: serialize: %v", err))
	}
	return append([]byte(nil), buf.Bytes()...)
}

// ipDatagrams wraps a transport layer in the side's IP header. With frag > 0
// (IPv4 only) the datagram is sent without DF and split into fragments that
// carry at most frag bytes of IP payload each.
func (s *Side) ipDatagrams(proto layers.IPProtocol, l4 gopacket.SerializableLayer, payload []byte, frag int, dst netip.Addr) [][]byte {
	src := s.Addr.Addr()
	id := s.IPID
	s.IPID++
	if src.Is4() {
		ip := &layers.IPv4{
			Version: 4, IHL: 5, Id: id, Flags: layers.IPv4DontFragment, TTL: s.TTL,
			Protocol: proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice(),
		}
		setNet(l4, ip)
		body := serialize(l4, gopacket.Payload(payload))
		if frag <= 0 {
			return [][]byte{serialize(ip, gopacket.Payload(body))}
		}
		ip.Flags = 0
		return fragments(ip, body, frag)
	}
	ip := &layers.IPv6{
		Version: 6, FlowLabel: s.FlowLabel, HopLimit: s.TTL, NextHeader: proto,
		SrcIP: src.AsSlice(), DstIP: dst.AsSlice(),
	}
	setNet(l4, ip)
	body := serialize(l4, gopacket.Payload(payload))
	if s.V6Ext {
		ip.NextHeader = layers.IPProtocolIPv6HopByHop
		body = append(v6ExtHeaders(proto), body...)
	}
	return [][]byte{serialize(ip, gopacket.Payload(body))}
}

func setNet(l4 gopacket.SerializableLayer, ip gopacket.NetworkLayer) {
	type checksummer interface {
		SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
	}
	if c, ok := l4.(checksummer); ok {
		if err := c.SetNetworkLayerForChecksum(ip); err != nil {
			panic(err)
		}
	}
}

// v6ExtHeaders builds a hop-by-hop header (router alert + PadN) followed by a
// destination options header (PadN only), 8 bytes each, before proto.
func v6ExtHeaders(proto layers.IPProtocol) []byte {
	return []byte{
		// hop-by-hop: next = destination options (60), length 0 (8 bytes)
		60, 0,
		5, 2, 0, 0, // router alert, value 0 (MLD)
		1, 0, // PadN, 0 bytes of padding
		// destination options: next = proto, length 0
		byte(proto), 0,
		1, 4, 0, 0, 0, 0, // PadN, 4 bytes
	}
}

// fragments splits an IPv4 datagram's payload into fragments of at most
// size bytes (rounded down to a multiple of 8).
func fragments(ip *layers.IPv4, body []byte, size int) [][]byte {
	size &^= 7
	var out [][]byte
	for off := 0; off < len(body); off += size {
		end := min(off+size, len(body))
		f := *ip
		f.FragOffset = uint16(off / 8)
		if end < len(body) {
			f.Flags = layers.IPv4MoreFragments
		}
		out = append(out, serialize(&f, gopacket.Payload(body[off:end])))
	}
	return out
}

// ICMPUnreachable sends an ICMP (IPv4: type 3) or ICMPv6 (type 1) destination
// unreachable with the given code to the client, quoting the client's last
// datagram. from is the sender's address; empty means the server.
func (k *Conn) ICMPUnreachable(t time.Duration, from string, code uint8, opts ...Opt) {
	s := k.Server
	var sp spec
	for _, o := range opts {
		o(&sp)
	}
	src := s.Addr.Addr()
	if from != "" {
		src = netip.MustParseAddr(from)
	}
	quote := k.Client.lastIP
	var ip []byte
	if src.Is4() {
		quote = quote[:min(len(quote), 576-28)]
		icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeDestinationUnreachable, code)}
		hdr := &layers.IPv4{
			Version: 4, IHL: 5, Id: k.cap.ipid, TTL: 64, Protocol: layers.IPProtocolICMPv4,
			SrcIP: src.AsSlice(), DstIP: k.Client.Addr.Addr().AsSlice(),
		}
		k.cap.ipid++
		ip = serialize(hdr, icmp, gopacket.Payload(quote))
	} else {
		quote = quote[:min(len(quote), 1280-48)]
		icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeDestinationUnreachable, code)}
		hdr := &layers.IPv6{
			Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolICMPv6,
			SrcIP: src.AsSlice(), DstIP: k.Client.Addr.Addr().AsSlice(),
		}
		if err := icmp.SetNetworkLayerForChecksum(hdr); err != nil {
			panic(err)
		}
		ip = serialize(hdr, icmp, gopacket.Payload(append([]byte{0, 0, 0, 0}, quote...)))
	}
	saved := s.MAC
	if src != s.Addr.Addr() {
		s.MAC = macFor(src)
	}
	s.record(t, &sp, [][]byte{ip}, 0, true)
	s.MAC = saved
}
