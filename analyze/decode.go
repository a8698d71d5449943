package analyze

import (
	"encoding/binary"
	"math"
	"net/netip"
)

// Link types (LINKTYPE_* values as stored in pcap and pcapng headers).
const (
	LinkNull      = 0   // BSD loopback, address family in host byte order
	LinkEthernet  = 1   // Ethernet II and 802.3/LLC
	LinkRawBSD    = 12  // DLT_RAW on most BSDs, seen in old files
	LinkRawOBSD   = 14  // DLT_RAW on OpenBSD
	LinkRaw       = 101 // raw IPv4 or IPv6
	LinkIEEE80211 = 105
	LinkLoop      = 108 // OpenBSD loopback, address family in network byte order
	LinkSLL       = 113 // Linux cooked capture v1
	LinkRadiotap  = 127
	LinkPPI       = 192
	LinkNFLOG     = 239
	LinkIPoIB     = 242
	LinkIPv4      = 228
	LinkIPv6      = 229
	LinkSLL2      = 276 // Linux cooked capture v2
)

// LinkTypeName gives the name tcpdump uses for a link type.
func LinkTypeName(lt uint16) string {
	switch lt {
	case LinkNull:
		return "NULL"
	case LinkEthernet:
		return "EN10MB"
	case LinkRawBSD, LinkRawOBSD, LinkRaw:
		return "RAW"
	case LinkIEEE80211:
		return "IEEE802_11"
	case LinkLoop:
		return "LOOP"
	case LinkSLL:
		return "LINUX_SLL"
	case LinkRadiotap:
		return "IEEE802_11_RADIO"
	case LinkPPI:
		return "PPI"
	case LinkNFLOG:
		return "NFLOG"
	case LinkIPoIB:
		return "IPOIB"
	case LinkIPv4:
		return "IPV4"
	case LinkIPv6:
		return "IPV6"
	case LinkSLL2:
		return "LINUX_SLL2"
	}
	return "LINKTYPE_" + itoa(int(lt))
}

// Kind says what a decoded frame is, as far as the tracker cares.
type Kind uint8

const (
	KindOther       Kind = iota // decodable, but not TCP nor an ICMP error quoting TCP
	KindTCP                     // a TCP segment (flags, seq and ack at least were captured)
	KindICMPUnreach             // an ICMP/ICMPv6 destination unreachable quoting a TCP header
	KindFragment                // an IP fragment: counted, not tracked
	KindUnsupported             // link type we do not decode
	KindMalformed               // headers cut short or inconsistent
)

// TCP flag bits, as in the header's 13th byte.
const (
	FlagFIN = 1 << iota
	FlagSYN
	FlagRST
	FlagPSH
	FlagACK
	FlagURG
	FlagECE
	FlagCWR
)

// Options are the TCP options the tracker reports. When Unknown is set the
// option list was cut off by the snap length or malformed: an option that is
// not marked present may still have been on the wire.
type Options struct {
	Unknown   bool
	HasMSS    bool
	HasWScale bool
	SACKPerm  bool
	HasTS     bool
	TFO       bool  // TCP Fast Open option (34, or experimental 254/0xF989)
	TFOCookie uint8 // cookie length; 0 with TFO set is a cookie request
	WScale    uint8
	MSS       uint16
	TSval     uint32
	TSecr     uint32
}

// Decoded is one frame decoded down to the innermost TCP header or ICMP error.
// It holds no pointers into the frame, so it stays valid after the frame's
// buffer is reused.
//
// Its fields are laid out to leave no padding: the parallel reader moves a
// Decoded per packet from the decoding core to the tracking one, and with
// what it adds a packet is 128 bytes, two cache lines.
type Decoded struct {
	Kind     Kind
	IPv6     bool
	NVLAN    uint8     // VLAN tags seen (outermost first); only the first two are kept
	ICMPType uint8     // ICMP errors: the type (see ICMPFrom)
	VLAN     [2]uint16 // VLAN ids, the key's VLAN part
	TTL      uint8
	Proto    uint8 // final IP protocol number
	Flags    uint8
	ICMPCode uint8  // ICMP errors: the code
	IPID     uint32 // IPv4 identification (IPv6: 0)
	Src      [16]byte
	Dst      [16]byte
	SPort    uint16
	DPort    uint16
	Seq      uint32
	Ack      uint32
	Win      uint16
	// PayloadLen is the TCP payload length on the wire, from the IP length
	// fields (so it is right even when the snap length cut the payload).
	PayloadLen uint32
	// PayloadCap is how much of that payload the frame holds (the snap
	// length may have cut it).
	PayloadCap uint32
	Opts       Options

	// ICMP errors: the type and code (above) and the router or host that
	// sent the error; the quoted segment's addresses, ports and sequence
	// number are in Src/Dst/SPort/DPort/Seq as the original sender wrote
	// them (so Src is the host that sent the quoted SYN).
	ICMPFrom [16]byte

	// Offsets of the innermost IP and TCP (or ICMP) headers in the frame, for
	// filter expressions that index into them. Headers that start beyond
	// 65,535 bytes make the frame KindMalformed.
	L3Off, L4Off uint16
}

// SrcAddr and DstAddr convert the fixed arrays to netip addresses.
func (d *Decoded) SrcAddr() netip.Addr { return addrOf(d.IPv6, &d.Src) }
func (d *Decoded) DstAddr() netip.Addr { return addrOf(d.IPv6, &d.Dst) }

func addrOf(v6 bool, a *[16]byte) netip.Addr {
	if v6 {
		return netip.AddrFrom16(*a)
	}
	return netip.AddrFrom4([4]byte(a[:4]))
}

// maxEncap bounds how many encapsulations one frame may nest, so a crafted
// frame cannot make the decoder loop.
const maxEncap = 8

type decoder struct {
	d     *Decoded
	frame []byte
	orig  int // original frame length on the wire
	depth int
}

// Decode decodes one frame of link type lt. origLen is its length on the wire
// (the payload length falls back to it when IP length fields are zero, as TSO
// captures have). It never allocates and never panics; d.Kind says the result.
func Decode(lt uint16, frame []byte, origLen int, d *Decoded) Kind {
	*d = Decoded{}
	if origLen < len(frame) {
		origLen = len(frame)
	}
	if lt == LinkEthernet && ethIPv4TCP(frame, origLen, d) {
		return KindTCP
	}
	return decodeGeneral(lt, frame, origLen, d)
}

// decodeGeneral is Decode for any frame, d blank and origLen at least the
// frame's length.
func decodeGeneral(lt uint16, frame []byte, origLen int, d *Decoded) Kind {
	// Field by field: a composite literal is built and then copied, and
	// the copy reads across the stores that built it (a store-forwarding
	// stall on every packet).
	var dc decoder
	dc.d = d
	dc.frame = frame
	dc.orig = origLen
	d.Kind = dc.link(lt, 0)
	return d.Kind
}

// ethIPv4TCP decodes the most common frame, TCP in an IPv4 header without
// options in untagged Ethernet, with its whole TCP header captured, in one
// straight pass; it returns false, having written nothing, for any other
// frame (and for anything unusual in these: the general path decides).
// The result is the general path's (FuzzDecode and
// TestDecodeFastMatchesGeneral hold the two equal).
func ethIPv4TCP(b []byte, orig int, d *Decoded) bool {
	const ip, tcp = 14, 14 + 20
	if len(b) < tcp+20 || b[12] != 0x08 || b[13] != 0x00 || b[ip] != 0x45 || b[ip+9] != 6 {
		return false
	}
	be := binary.BigEndian
	total := int(be.Uint16(b[ip+2:]))
	hl := int(b[tcp+12]>>4) * 4
	if total < 20 || be.Uint16(b[ip+6:])&0x3fff != 0 || hl < 20 || len(b) < tcp+hl {
		return false // TSO's zero length, a fragment, a cut TCP header: the general path
	}
	total = min(total, orig-ip)
	ipv4Fields(b[ip:], d)
	d.Proto = 6
	d.L3Off, d.L4Off = ip, tcp
	t := b[tcp:]
	tcpFields(t, d)
	d.Win = be.Uint16(t[14:])
	tcpPayload(t, hl, total-20, d)
	if hl > 20 {
		parseOptions(t[20:hl], &d.Opts)
	}
	d.Kind = KindTCP
	return true
}

func (dc *decoder) link(lt uint16, off int) Kind {
	b := dc.frame
	switch lt {
	case LinkEthernet:
		return dc.ethernet(off)
	case LinkRaw, LinkRawBSD, LinkRawOBSD:
		return dc.ipAny(off)
	case LinkIPv4:
		return dc.ipv4(off)
	case LinkIPv6:
		return dc.ipv6(off)
	case LinkNull, LinkLoop:
		if len(b) < off+4 {
			return KindMalformed
		}
		// The address family is in the writer's byte order for NULL; try both.
		af := binary.LittleEndian.Uint32(b[off:])
		if lt == LinkLoop || af > 0xffff {
			af = binary.BigEndian.Uint32(b[off:])
		}
		switch af {
		case 2:
			return dc.ipv4(off + 4)
		case 10, 24, 28, 30: // AF_INET6 on Linux, NetBSD/OpenBSD, FreeBSD, Darwin
			return dc.ipv6(off + 4)
		}
		return KindOther
	case LinkSLL:
		if len(b) < off+16 {
			return KindMalformed
		}
		return dc.etherType(binary.BigEndian.Uint16(b[off+14:]), off+16)
	case LinkSLL2:
		if len(b) < off+20 {
			return KindMalformed
		}
		return dc.etherType(binary.BigEndian.Uint16(b[off:]), off+20)
	case LinkIPoIB:
		// A 40-byte pseudo-header (destination and source addresses), then
		// the 4-byte IPoIB header: EtherType and reserved.
		if len(b) < off+44 {
			return KindMalformed
		}
		return dc.etherType(binary.BigEndian.Uint16(b[off+40:]), off+44)
	case LinkNFLOG:
		return dc.nflog(off)
	case LinkPPI:
		if len(b) < off+8 {
			return KindMalformed
		}
		hl := int(binary.LittleEndian.Uint16(b[off+2:]))
		inner := binary.LittleEndian.Uint32(b[off+4:])
		if hl < 8 || inner > 0xffff || !dc.nest() {
			return KindMalformed
		}
		return dc.link(uint16(inner), off+hl)
	case LinkRadiotap:
		if len(b) < off+4 {
			return KindMalformed
		}
		hl := int(binary.LittleEndian.Uint16(b[off+2:]))
		if hl < 8 {
			return KindMalformed
		}
		return dc.wlan(off + hl)
	case LinkIEEE80211:
		return dc.wlan(off)
	}
	return KindUnsupported
}

func (dc *decoder) nest() bool {
	dc.depth++
	return dc.depth <= maxEncap
}

func (dc *decoder) ethernet(off int) Kind {
	b := dc.frame
	if len(b) < off+14 {
		return KindMalformed
	}
	et := binary.BigEndian.Uint16(b[off+12:])
	if et <= 1500 { // 802.3 length field: an LLC header follows
		return dc.llc(off + 14)
	}
	return dc.etherType(et, off+14)
}

// llc decodes 802.2 LLC; only SNAP carries an EtherType we can follow.
func (dc *decoder) llc(off int) Kind {
	b := dc.frame
	if len(b) < off+3 {
		return KindMalformed
	}
	if b[off] == 0xaa && b[off+1] == 0xaa && b[off+2] == 0x03 {
		if len(b) < off+8 {
			return KindMalformed
		}
		return dc.etherType(binary.BigEndian.Uint16(b[off+6:]), off+8)
	}
	return KindOther
}

// wlan decodes an 802.11 data frame header and its LLC/SNAP payload.
func (dc *decoder) wlan(off int) Kind {
	b := dc.frame
	if len(b) < off+24 {
		return KindMalformed
	}
	fc0, fc1 := b[off], b[off+1]
	if (fc0>>2)&3 != 2 { // not a data frame
		return KindOther
	}
	if fc1&0x40 != 0 { // protected: payload is encrypted
		return KindOther
	}
	hl := 24
	if fc1&3 == 3 { // ToDS and FromDS: a fourth address
		hl += 6
	}
	subtype := fc0 >> 4
	if subtype&0x4 != 0 { // null data, no payload
		return KindOther
	}
	if subtype&0x8 != 0 { // QoS data
		hl += 2
		if fc1&0x80 != 0 { // +HTC
			hl += 4
		}
	}
	return dc.llc(off + hl)
}

func (dc *decoder) nflog(off int) Kind {
	b := dc.frame
	if len(b) < off+4 {
		return KindMalformed
	}
	family := b[off]
	p := off + 4
	// TLVs: length and type in host byte order (little endian on every
	// platform that writes these files), padded to 4 bytes.
	for p+4 <= len(b) {
		l := int(binary.LittleEndian.Uint16(b[p:]))
		t := binary.LittleEndian.Uint16(b[p+2:])
		if l < 4 {
			return KindMalformed
		}
		if t == 9 { // NFULA_PAYLOAD
			switch family {
			case 2:
				return dc.ipv4(p + 4)
			case 10:
				return dc.ipv6(p + 4)
			}
			return dc.ipAny(p + 4)
		}
		p += (l + 3) &^ 3
	}
	return KindOther
}

func (dc *decoder) etherType(et uint16, off int) Kind {
	b := dc.frame
	for {
		switch et {
		case 0x0800:
			return dc.ipv4(off)
		case 0x86dd:
			return dc.ipv6(off)
		case 0x8100, 0x88a8, 0x9100, 0x9200:
			if len(b) < off+4 {
				return KindMalformed
			}
			d := dc.d
			if d.NVLAN < 2 {
				d.VLAN[d.NVLAN] = binary.BigEndian.Uint16(b[off:]) & 0x0fff
			}
			if d.NVLAN < 255 {
				d.NVLAN++
			}
			if d.NVLAN > maxEncap {
				return KindMalformed
			}
			et = binary.BigEndian.Uint16(b[off+2:])
			off += 4
		case 0x8847, 0x8848: // MPLS: skip labels to the bottom of the stack
			for {
				if len(b) < off+4 {
					return KindMalformed
				}
				bos := b[off+2]&1 != 0
				off += 4
				if bos {
					break
				}
			}
			if !dc.nest() {
				return KindMalformed
			}
			if len(b) <= off {
				return KindMalformed
			}
			switch b[off] >> 4 {
			case 4, 6:
				return dc.ipAny(off)
			case 0: // pseudowire control word, then Ethernet
				return dc.ethernet(off + 4)
			}
			return KindOther
		case 0x8864: // PPPoE session
			if len(b) < off+8 {
				return KindMalformed
			}
			switch binary.BigEndian.Uint16(b[off+6:]) {
			case 0x0021:
				return dc.ipv4(off + 8)
			case 0x0057:
				return dc.ipv6(off + 8)
			}
			return KindOther
		default:
			return KindOther
		}
	}
}

func (dc *decoder) ipAny(off int) Kind {
	if len(dc.frame) <= off {
		return KindMalformed
	}
	switch dc.frame[off] >> 4 {
	case 4:
		return dc.ipv4(off)
	case 6:
		return dc.ipv6(off)
	}
	return KindOther
}

// reported is the number of bytes from off to the end of the frame as it was
// on the wire (not as captured).
func (dc *decoder) reported(off int) int {
	if n := dc.orig - off; n > 0 {
		return n
	}
	return 0
}

func (dc *decoder) ipv4(off int) Kind {
	b := dc.frame
	if len(b) < off+20 {
		return KindMalformed
	}
	if b[off]>>4 != 4 {
		return KindMalformed
	}
	ihl := int(b[off]&0x0f) * 4
	if ihl < 20 || len(b) < off+ihl {
		return KindMalformed
	}
	d := dc.d
	total := int(binary.BigEndian.Uint16(b[off+2:]))
	if total == 0 { // TSO: the length is left to the NIC
		total = dc.reported(off)
	} else if total < ihl {
		return KindMalformed
	}
	if r := dc.reported(off); total > r {
		total = r
	}
	d.IPv6 = false
	ipv4Fields(b[off:], d)
	proto := b[off+9]
	d.Proto = proto
	if off > math.MaxUint16 {
		return KindMalformed
	}
	d.L3Off = uint16(off)
	frag := binary.BigEndian.Uint16(b[off+6:])
	if frag&0x3fff != 0 { // MF set or a non-zero offset
		return KindFragment
	}
	return dc.l4(proto, off+ihl, total-ihl)
}

func (dc *decoder) ipv6(off int) Kind {
	b := dc.frame
	if len(b) < off+40 {
		return KindMalformed
	}
	if b[off]>>4 != 6 {
		return KindMalformed
	}
	d := dc.d
	d.IPv6 = true
	copy(d.Src[:], b[off+8:off+24])
	copy(d.Dst[:], b[off+24:off+40])
	d.IPID = 0
	d.TTL = b[off+7]
	if off > math.MaxUint16 {
		return KindMalformed
	}
	d.L3Off = uint16(off)
	plen := int(binary.BigEndian.Uint16(b[off+4:]))
	if r := dc.reported(off + 40); plen == 0 || plen > r { // jumbogram or TSO
		plen = r
	}
	nh := b[off+6]
	p := off + 40
	for i := 0; ; i++ {
		if i > maxEncap {
			return KindMalformed
		}
		switch nh {
		case 0, 43, 60, 135, 139, 140: // hop-by-hop, routing, destination, mobility, HIP, shim6
			if len(b) < p+8 {
				return KindMalformed
			}
			hl := (int(b[p+1]) + 1) * 8
			nh = b[p]
			p += hl
			plen -= hl
		case 51: // AH: length in 4-byte units, minus 2
			if len(b) < p+8 {
				return KindMalformed
			}
			hl := (int(b[p+1]) + 2) * 4
			nh = b[p]
			p += hl
			plen -= hl
		case 44: // fragment
			if len(b) < p+8 {
				return KindMalformed
			}
			fo := binary.BigEndian.Uint16(b[p+2:])
			d.IPID = binary.BigEndian.Uint32(b[p+4:])
			nh = b[p]
			p += 8
			plen -= 8
			if fo&0xfff9 != 0 { // offset or M set: a real fragment (atomic ones are whole)
				d.Proto = nh
				return KindFragment
			}
		default:
			if plen < 0 {
				return KindMalformed
			}
			d.Proto = nh
			return dc.l4(nh, p, plen)
		}
	}
}

// l4 dispatches on the IP payload; l4len is the payload length on the wire.
func (dc *decoder) l4(proto uint8, off, l4len int) Kind {
	switch proto {
	case 6:
		return dc.tcp(off, l4len)
	case 1:
		return dc.icmp(off, false)
	case 58:
		return dc.icmp(off, true)
	case 4: // IPv4 in IP
		if !dc.nest() {
			return KindMalformed
		}
		return dc.ipv4(off)
	case 41: // IPv6 in IP
		if !dc.nest() {
			return KindMalformed
		}
		return dc.ipv6(off)
	case 47:
		if !dc.nest() {
			return KindMalformed
		}
		return dc.gre(off)
	}
	return KindOther
}

func (dc *decoder) gre(off int) Kind {
	b := dc.frame
	if len(b) < off+4 {
		return KindMalformed
	}
	fl := b[off]
	ver := b[off+1] & 7
	pt := binary.BigEndian.Uint16(b[off+2:])
	p := off + 4
	if fl&0x80 != 0 { // checksum (and reserved)
		p += 4
	}
	if fl&0x20 != 0 { // key
		p += 4
	}
	if fl&0x10 != 0 { // sequence number
		p += 4
	}
	if ver == 1 { // enhanced GRE (PPTP): acknowledgment number
		if b[off+1]&0x80 != 0 {
			p += 4
		}
		if pt == 0x880b {
			if len(b) < p+4 {
				return KindMalformed
			}
			// PPP in HDLC-like framing, possibly with address/control compressed.
			q := p
			if b[q] == 0xff && b[q+1] == 0x03 {
				q += 2
			}
			proto := uint16(b[q])
			if proto&1 == 0 {
				proto = binary.BigEndian.Uint16(b[q:])
				q += 2
			} else {
				q++
			}
			switch proto {
			case 0x21:
				return dc.ipv4(q)
			case 0x57:
				return dc.ipv6(q)
			}
		}
		return KindOther
	}
	switch pt {
	case 0x6558: // transparent Ethernet bridging
		return dc.ethernet(p)
	case 0x88be: // ERSPAN type II: 8-byte header, then the mirrored frame
		return dc.ethernet(p + 8)
	case 0x22eb: // ERSPAN type III: 12 bytes, plus 8 when the O bit says so
		if len(b) < p+12 {
			return KindMalformed
		}
		if b[p+11]&1 != 0 {
			p += 8
		}
		return dc.ethernet(p + 12)
	case 0x8200: // Aruba: 802.11 frames
		return dc.wlan(p)
	}
	return dc.etherType(pt, p)
}

func (dc *decoder) tcp(off, l4len int) Kind {
	b := dc.frame
	d := dc.d
	if off > math.MaxUint16 {
		return KindMalformed
	}
	d.L4Off = uint16(off)
	// Ports, sequence, acknowledgment and flags live in the first 14 bytes;
	// a snap length that cuts later fields still tells us those.
	if len(b) < off+14 {
		return KindMalformed
	}
	t := b[off:]
	tcpFields(t, d)
	hl := int(t[12]>>4) * 4
	if len(t) >= 16 {
		d.Win = binary.BigEndian.Uint16(t[14:])
	}
	if hl < 20 {
		d.Opts.Unknown = true
		return KindTCP
	}
	tcpPayload(t, hl, l4len, d)
	if hl > 20 {
		end := hl
		if len(t) < end {
			end = len(t)
			d.Opts.Unknown = true
		}
		if end > 20 {
			parseOptions(t[20:end], &d.Opts)
		}
	} else if len(t) < 20 {
		d.Opts.Unknown = true
	}
	return KindTCP
}

// ipv4Fields sets d's addresses, IP ID and TTL from the IPv4 header h (20
// bytes or more captured). Each address is one 8-byte store and the rest of
// it zero: keyDir and the flow hash read it back right away as 8-byte words,
// and a word spanning a 4-byte store and the zeroing before it cannot be
// forwarded from the stores (a stall on every packet).
func ipv4Fields(h []byte, d *Decoded) {
	le := binary.LittleEndian
	le.PutUint64(d.Src[:8], uint64(le.Uint32(h[12:])))
	le.PutUint64(d.Src[8:], 0)
	le.PutUint64(d.Dst[:8], uint64(le.Uint32(h[16:])))
	le.PutUint64(d.Dst[8:], 0)
	d.IPID = uint32(binary.BigEndian.Uint16(h[4:]))
	d.TTL = h[8]
}

// tcpFields sets the ports, sequence and acknowledgment numbers and flags
// from the TCP header t (its first 14 bytes captured).
func tcpFields(t []byte, d *Decoded) {
	be := binary.BigEndian
	d.SPort = be.Uint16(t[0:])
	d.DPort = be.Uint16(t[2:])
	d.Seq = be.Uint32(t[4:])
	d.Ack = be.Uint32(t[8:])
	d.Flags = t[13]
}

// tcpPayload sets the payload's length on the wire (l4len, the IP payload,
// less the header length hl) and how much of it the frame holds (t is the
// TCP header on).
func tcpPayload(t []byte, hl, l4len int, d *Decoded) {
	if pl := l4len - hl; pl > 0 {
		d.PayloadLen = uint32(pl)
		if c := len(t) - hl; c > 0 {
			d.PayloadCap = uint32(min(c, pl))
		}
	}
}

// parseOptions reads the TCP option list. An option that runs past the end
// marks the list Unknown (it was cut by the snap length, or is malformed).
func parseOptions(o []byte, opts *Options) {
	for i := 0; i < len(o); {
		kind := o[i]
		switch kind {
		case 0: // end of list
			return
		case 1: // no-op
			i++
			continue
		}
		if i+1 >= len(o) {
			opts.Unknown = true
			return
		}
		l := int(o[i+1])
		if l < 2 || i+l > len(o) {
			opts.Unknown = true
			return
		}
		v := o[i+2 : i+l]
		switch kind {
		case 2:
			if len(v) == 2 {
				opts.HasMSS = true
				opts.MSS = binary.BigEndian.Uint16(v)
			}
		case 3:
			if len(v) == 1 {
				opts.HasWScale = true
				opts.WScale = v[0]
			}
		case 4:
			if len(v) == 0 {
				opts.SACKPerm = true
			}
		case 8:
			if len(v) == 8 {
				opts.HasTS = true
				opts.TSval = binary.BigEndian.Uint32(v)
				opts.TSecr = binary.BigEndian.Uint32(v[4:])
			}
		case 34:
			opts.TFO = true
			opts.TFOCookie = uint8(len(v))
		case 254: // experimental TFO (RFC 6994 magic 0xF989)
			if len(v) >= 2 && v[0] == 0xf9 && v[1] == 0x89 {
				opts.TFO = true
				opts.TFOCookie = uint8(len(v) - 2)
			}
		}
		i += l
	}
}

// icmp decodes an ICMP or ICMPv6 destination unreachable that quotes the
// start of a TCP segment. Other ICMP messages are KindOther.
func (dc *decoder) icmp(off int, v6 bool) Kind {
	b := dc.frame
	d := dc.d
	if len(b) < off+8 {
		return KindMalformed
	}
	typ, code := b[off], b[off+1]
	if (!v6 && typ != 3) || (v6 && typ != 1) {
		return KindOther
	}
	// Decode the quoted IP header and the first 8 TCP bytes before touching
	// d, so that a quote we cannot use leaves the outer packet's fields.
	q := off + 8
	if len(b) < q+1 {
		return KindOther
	}
	var src, dst [16]byte
	var tcpOff int
	qv6 := false
	switch b[q] >> 4 {
	case 4:
		if v6 || len(b) < q+20 {
			return KindOther
		}
		ihl := int(b[q]&0x0f) * 4
		if ihl < 20 || b[q+9] != 6 {
			return KindOther
		}
		copy(src[:4], b[q+12:q+16])
		copy(dst[:4], b[q+16:q+20])
		tcpOff = q + ihl
	case 6:
		if !v6 || len(b) < q+40 || b[q+6] != 6 { // extension headers in quotes are rare; skip them
			return KindOther
		}
		qv6 = true
		copy(src[:], b[q+8:q+24])
		copy(dst[:], b[q+24:q+40])
		tcpOff = q + 40
	default:
		return KindOther
	}
	if len(b) < tcpOff+8 || off > math.MaxUint16 {
		return KindOther
	}
	d.ICMPType, d.ICMPCode = typ, code
	d.ICMPFrom = d.Src
	d.L4Off = uint16(off)
	d.IPv6 = qv6
	d.Src, d.Dst = src, dst
	d.SPort = binary.BigEndian.Uint16(b[tcpOff:])
	d.DPort = binary.BigEndian.Uint16(b[tcpOff+2:])
	d.Seq = binary.BigEndian.Uint32(b[tcpOff+4:])
	if len(b) >= tcpOff+14 {
		d.Flags = b[tcpOff+13]
	}
	return KindICMPUnreach
}

// itoa avoids fmt in paths that may run per packet.
func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var buf [20]byte
	i := len(buf)
	neg := n < 0
	if neg {
		n = -n
	}
	for n > 0 {
		i--
		buf[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		buf[i] = '-'
	}
	return string(buf[i:])
}
