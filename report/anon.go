package report

// Prefix-preserving address anonymisation (Crypto-PAn) for reports and for
// the packets of an evidence bundle: one key gives one mapping, the same in
// every output format and in the pcapng files.

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
	"reflect"
	"strings"
	"sync"

	"github.com/synscope/synscope/analyze"
)

// Anonymizer maps IP addresses with Crypto-PAn (J. Xu, J. Fan, M. Ammar,
// S. Moon, "Prefix-Preserving IP Address Anonymization", ICNP 2002): two
// addresses that share a k-bit prefix map to two addresses that share a
// k-bit prefix and no more, so subnets stay subnets while the addresses
// themselves are hidden. Bit i of the output is bit i of the input XORed
// with the first bit of AES_K(the input's first i bits, then the pad's
// remaining bits), the pad being AES_K of the secret's second half.
//
// IPv6 addresses use the same construction over 128 bits (as the Go and
// Python Crypto-PAn implementations do). An IPv4-mapped IPv6 address
// (::ffff:a.b.c.d) maps to the IPv4-mapped form of a.b.c.d's mapping, so a
// host keeps one identity whichever way it is written; zones are kept.
//
// The mapping is deterministic: the same key gives the same output, in any
// run. It is safe for concurrent use.
type Anonymizer struct {
	block cipher.Block
	pad   [16]byte

	mu    sync.Mutex
	cache map[netip.Addr]netip.Addr
	macs  map[[6]byte][6]byte
}

// maxCache bounds the memo of mapped addresses (each IPv6 address costs 128
// AES blocks); past it the memo starts over.
const maxCache = 1 << 18

// NewAnonymizer returns the anonymizer for a key of any length (a
// passphrase, or the bytes of a key file): the 32-byte Crypto-PAn secret is
// its SHA-256 digest.
func NewAnonymizer(key []byte) *Anonymizer {
	return NewAnonymizerSecret(sha256.Sum256(key))
}

// NewAnonymizerSecret uses a 32-byte Crypto-PAn secret as it is: the first 16
// bytes are the AES-128 key, the last 16 encrypted give the pad. The same
// secret gives the same mapping as the reference implementation and the
// other Crypto-PAn libraries.
func NewAnonymizerSecret(secret [32]byte) *Anonymizer {
	blk, err := aes.NewCipher(secret[:16])
	if err != nil {
		panic(err) // a 16-byte key is always valid
	}
	a := &Anonymizer{block: blk, cache: make(map[netip.Addr]netip.Addr), macs: make(map[[6]byte][6]byte)}
	blk.Encrypt(a.pad[:], secret[16:])
	return a
}

// pan is Crypto-PAn over len(addr) bytes (4 or 16), written to out.
func (a *Anonymizer) pan(addr, out []byte) {
	var in, enc, otp [16]byte
	for pos := 0; pos < len(addr)*8; pos++ {
		// The first pos bits from the address, the rest from the pad.
		in = a.pad
		full := pos / 8
		copy(in[:full], addr[:full])
		if r := pos % 8; r != 0 {
			mask := byte(0xff) << (8 - r)
			in[full] = addr[full]&mask | a.pad[full]&^mask
		}
		a.block.Encrypt(enc[:], in[:])
		otp[full] |= (enc[0] >> 7) << (7 - pos%8)
	}
	for i := range addr {
		out[i] = addr[i] ^ otp[i]
	}
}

// Addr returns ip's anonymised counterpart; an invalid address is returned
// as it is.
func (a *Anonymizer) Addr(ip netip.Addr) netip.Addr {
	if !ip.IsValid() {
		return ip
	}
	zone := ip.Zone()
	key := ip.WithZone("")
	a.mu.Lock()
	out, ok := a.cache[key]
	a.mu.Unlock()
	if !ok {
		switch {
		case key.Is4():
			in := key.As4()
			var o [4]byte
			a.pan(in[:], o[:])
			out = netip.AddrFrom4(o)
		case key.Is4In6():
			out = netip.AddrFrom16(a.Addr(key.Unmap()).As16())
		default:
			in := key.As16()
			var o [16]byte
			a.pan(in[:], o[:])
			out = netip.AddrFrom16(o)
		}
		a.mu.Lock()
		if len(a.cache) >= maxCache {
			clear(a.cache)
		}
		a.cache[key] = out
		a.mu.Unlock()
	}
	if zone != "" {
		out = out.WithZone(zone)
	}
	return out
}

// mac rewrites a 6-byte link-layer address in place: Crypto-PAn over its 48
// bits, keeping the group (multicast) and locally-administered bits; the
// broadcast and all-zero addresses stay as they are.
func (a *Anonymizer) mac(b []byte) {
	in := [6]byte(b[:6])
	if in == [6]byte{} || in == [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff} {
		return
	}
	a.mu.Lock()
	out, ok := a.macs[in]
	a.mu.Unlock()
	if !ok {
		a.pan(in[:], out[:])
		out[0] = out[0]&^3 | in[0]&3
		a.mu.Lock()
		if len(a.macs) >= maxCache {
			clear(a.macs)
		}
		a.macs[in] = out
		a.mu.Unlock()
	}
	copy(b, out[:])
}

// AddrPort anonymises an endpoint as the reports write it: "ip:port",
// "[v6]:port", or an address alone. Anything else is rewritten as free text
// (Text).
func (a *Anonymizer) AddrPort(s string) string {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return netip.AddrPortFrom(a.Addr(ap.Addr()), ap.Port()).String()
	}
	if ip, err := netip.ParseAddr(s); err == nil {
		return a.Addr(ip).String()
	}
	return a.Text(s)
}

// Text rewrites every IPv4 or IPv6 literal in free text ("192.0.2.1",
// "192.0.2.1:443", "[2001:db8::1]:443", "fe80::1%eth0", a sentence ending in
// "10.0.0.1."), leaving the rest alone. A literal is a maximal run of hex
// digits, dots and colons that is not part of a longer word and parses as an
// address (IPv4 in dotted-quad form only, so "1.5" or "10:00:03" stay), or as
// an IPv4 address with a port, possibly followed by sentence punctuation.
func (a *Anonymizer) Text(s string) string {
	if !strings.ContainsAny(s, ".:") {
		return s
	}
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); {
		if !isAddrByte(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isAddrByte(s[j]) {
			j++
		}
		if (i > 0 && isWordByte(s[i-1])) || (j < len(s) && isWordByte(s[j])) {
			i = j
			continue
		}
		if r, ok := a.token(s[i:j]); ok {
			if b.Len() == 0 {
				b.Grow(len(s) + 16)
			}
			b.WriteString(s[last:i])
			b.WriteString(r)
			last = j
		}
		i = j
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

func isAddrByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == '.' || c == ':'
}

func isWordByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}

// token rewrites one run of address bytes, if it is an address (or an IPv4
// endpoint), with trailing dots and colons taken for punctuation when the
// whole run is not.
func (a *Anonymizer) token(t string) (string, bool) {
	for end := len(t); end > 0; end-- {
		if end < len(t) && t[end] != '.' && t[end] != ':' {
			break
		}
		if r, ok := a.literal(t[:end]); ok {
			return r + t[end:], true
		}
	}
	// ":192.0.2.1" after a bracket or the like.
	if len(t) > 1 && t[0] == ':' && t[1] != ':' {
		if r, ok := a.token(t[1:]); ok {
			return ":" + r, true
		}
	}
	return "", false
}

func (a *Anonymizer) literal(t string) (string, bool) {
	if ip, err := netip.ParseAddr(t); err == nil {
		if ip.Is6() && !strings.ContainsAny(t, "0123456789abcdefABCDEF") {
			return "", false // "::" alone is punctuation more often than an address
		}
		return a.Addr(ip).String(), true
	}
	k := strings.LastIndexByte(t, ':')
	if k <= 0 || k == len(t)-1 || len(t)-k-1 > 5 || strings.IndexByte(t[:k], ':') >= 0 {
		return "", false
	}
	for _, c := range []byte(t[k+1:]) {
		if c < '0' || c > '9' {
			return "", false
		}
	}
	ip, err := netip.ParseAddr(t[:k])
	if err != nil || !ip.Is4() {
		return "", false
	}
	return a.Addr(ip).String() + t[k:], true
}

// Report rewrites every address in r in place: the attempts' and samples'
// endpoints, ICMP senders, incident servers and probers, and every IP
// literal in the free text (titles, evidence, causes, checks, the filter
// expression). It walks every string of the report, so fields added later
// are covered too; only the sources (paths and read status), the schema and
// the generator are left alone. It sets Settings.Anonymized.
func (a *Anonymizer) Report(r *Report) {
	v := reflect.ValueOf(r).Elem()
	t := v.Type()
	for i := 0; i < v.NumField(); i++ {
		switch t.Field(i).Name {
		case "Sources", "Schema", "Generator":
			continue
		}
		if t.Field(i).IsExported() {
			a.walk(v.Field(i))
		}
	}
	r.Settings.Anonymized = true
}

// walk rewrites the strings under v, which must be settable.
func (a *Anonymizer) walk(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		if s := v.String(); s != "" {
			if n := a.Text(s); n != s {
				v.SetString(n)
			}
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			e := v.Elem()
			if v.Kind() == reflect.Interface && e.Kind() != reflect.Pointer {
				// A value in an interface is not settable: copy, rewrite, store.
				c := reflect.New(e.Type()).Elem()
				c.Set(e)
				a.walk(c)
				v.Set(c)
				return
			}
			a.walk(e)
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < v.NumField(); i++ {
			if t.Field(i).IsExported() {
				a.walk(v.Field(i))
			}
		}
	case reflect.Slice, reflect.Array:
		if !hasStrings(v.Type().Elem()) {
			return
		}
		for i := 0; i < v.Len(); i++ {
			a.walk(v.Index(i))
		}
	case reflect.Map:
		t := v.Type()
		if v.IsNil() || !hasStrings(t.Key()) && !hasStrings(t.Elem()) {
			return
		}
		m := reflect.MakeMapWithSize(t, v.Len())
		it := v.MapRange()
		for it.Next() {
			k := reflect.New(t.Key()).Elem()
			k.Set(it.Key())
			a.walk(k)
			e := reflect.New(t.Elem()).Elem()
			e.Set(it.Value())
			a.walk(e)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	}
}

// hasStrings reports whether values of t can hold a string.
func hasStrings(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.String, reflect.Interface, reflect.Struct, reflect.Map:
		return true
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return hasStrings(t.Elem())
	}
	return false
}

// Frame rewrites, in place, the IP addresses of one captured frame of link
// type linkType, with the same mapping as Addr. It decodes just enough:
// Ethernet (802.1Q/802.1ad/QinQ tags, LLC/SNAP, MPLS, PPPoE), raw IPv4/IPv6,
// Linux cooked captures (SLL, SLL2) and BSD null/loopback; inside IP it
// follows IP-in-IP, IPv6-in-IP and GRE (Ethernet bridging, ERSPAN II/III,
// EtherTypes) to rewrite the tunnelled addresses too, and an ICMP or ICMPv6
// error's quoted IP header (and the gateway of an ICMP redirect).
//
// Checksums are updated incrementally (RFC 1624) for every field changed: the
// IPv4 header checksums, the TCP, UDP and ICMPv6 checksums over the pseudo
// header, the ICMP checksum over the quoted header, and the checksums of the
// quoted headers. That keeps a checksum valid exactly when it was valid
// before, whether or not the frame holds the whole segment (a snap length or
// "headers only" cut does not matter), and keeps an offloaded checksum (the
// partial sum an outgoing packet carries when the NIC completes it) in its
// offloaded form. A UDP checksum of zero (none, IPv4) stays zero.
//
// Link-layer addresses are rewritten too, with the same key (Crypto-PAn over
// 48 bits, keeping the multicast and locally-administered bits; broadcast
// stays broadcast): the Ethernet source and destination, also of Ethernet
// inside a tunnel, and the Linux cooked capture's sender address (one that is
// not 6 bytes long is zeroed). A captured Ethernet FCS is not updated.
//
// Frame reports whether no original address is left in the headers: false
// for an unsupported link type or encapsulation, a non-IP frame (ARP carries
// addresses too), a frame cut inside an IP header, and headers that carry
// further addresses it does not rewrite (IPv4 record-route, source-route and
// timestamp options, IPv6 routing headers, the home address option, neighbour
// discovery and multicast listener messages). After false the frame may be
// partly rewritten and must not be published as anonymised. Payloads are
// never rewritten: an address inside application data stays.
func (a *Anonymizer) Frame(linkType uint16, data []byte) bool {
	f := frameRW{a: a, b: data}
	return f.link(linkType)
}

// frameRW rewrites one frame; b is the part of it the current layer may
// touch (cut to an IP datagram's length, so trailing link padding is left).
type frameRW struct {
	a     *Anonymizer
	b     []byte
	depth int
}

const maxFrameDepth = 8

func (f *frameRW) nest() bool {
	f.depth++
	return f.depth <= maxFrameDepth
}

func (f *frameRW) link(lt uint16) bool {
	b := f.b
	switch lt {
	case analyze.LinkEthernet:
		return f.ethernet(0)
	case analyze.LinkRaw, analyze.LinkRawBSD, analyze.LinkRawOBSD:
		return f.ipAny(0)
	case analyze.LinkIPv4:
		return f.ipv4(0)
	case analyze.LinkIPv6:
		return f.ipv6(0)
	case analyze.LinkNull, analyze.LinkLoop:
		if len(b) < 4 {
			return false
		}
		af := binary.LittleEndian.Uint32(b)
		if lt == analyze.LinkLoop || af > 0xffff {
			af = binary.BigEndian.Uint32(b)
		}
		switch af {
		case 2:
			return f.ipv4(4)
		case 10, 24, 28, 30:
			return f.ipv6(4)
		}
	case analyze.LinkSLL:
		if len(b) >= 16 {
			f.llAddr(b[6:14], int(binary.BigEndian.Uint16(b[4:])))
			return f.etherType(binary.BigEndian.Uint16(b[14:]), 16)
		}
	case analyze.LinkSLL2:
		if len(b) >= 20 {
			f.llAddr(b[12:20], int(b[11]))
			return f.etherType(binary.BigEndian.Uint16(b), 20)
		}
	}
	return false
}

func (f *frameRW) ethernet(off int) bool {
	b := f.b
	if len(b) < off+14 || !f.nest() {
		return false
	}
	f.a.mac(b[off:])
	f.a.mac(b[off+6:])
	et := binary.BigEndian.Uint16(b[off+12:])
	if et <= 1500 { // 802.3 length: LLC, and only SNAP carries an EtherType
		off += 14
		if len(b) < off+8 || b[off] != 0xaa || b[off+1] != 0xaa || b[off+2] != 0x03 {
			return false
		}
		return f.etherType(binary.BigEndian.Uint16(b[off+6:]), off+8)
	}
	return f.etherType(et, off+14)
}

func (f *frameRW) etherType(et uint16, off int) bool {
	b := f.b
	for tags := 0; ; tags++ {
		switch et {
		case 0x0800:
			return f.ipv4(off)
		case 0x86dd:
			return f.ipv6(off)
		case 0x8100, 0x88a8, 0x9100, 0x9200: // VLAN tags, stacked for QinQ
			if len(b) < off+4 || tags > maxFrameDepth {
				return false
			}
			et = binary.BigEndian.Uint16(b[off+2:])
			off += 4
		case 0x8847, 0x8848: // MPLS: to the bottom of the label stack
			for {
				if len(b) < off+4 {
					return false
				}
				bos := b[off+2]&1 != 0
				off += 4
				if bos {
					break
				}
			}
			if len(b) <= off || !f.nest() {
				return false
			}
			switch b[off] >> 4 {
			case 4, 6:
				return f.ipAny(off)
			case 0: // pseudowire control word, then Ethernet
				return f.ethernet(off + 4)
			}
			return false
		case 0x8864: // PPPoE session
			if len(b) < off+8 {
				return false
			}
			switch binary.BigEndian.Uint16(b[off+6:]) {
			case 0x0021:
				return f.ipv4(off + 8)
			case 0x0057:
				return f.ipv6(off + 8)
			}
			return false
		default:
			return false
		}
	}
}

func (f *frameRW) ipAny(off int) bool {
	if len(f.b) <= off {
		return false
	}
	switch f.b[off] >> 4 {
	case 4:
		return f.ipv4(off)
	case 6:
		return f.ipv6(off)
	}
	return false
}

// limit cuts the writable view to end (an IP datagram's end) and returns the
// view to restore.
func (f *frameRW) limit(end int) []byte {
	saved := f.b
	if end > 0 && end < len(f.b) {
		f.b = f.b[:end]
	}
	return saved
}

func (f *frameRW) ipv4(off int) bool {
	b := f.b
	if len(b) < off+20 || b[off]>>4 != 4 || !f.nest() {
		return false
	}
	ihl := int(b[off]&0x0f) * 4
	if ihl < 20 {
		return false
	}
	var old, cur [8]byte
	copy(old[:], b[off+12:off+20])
	f.addr4(b[off+12:])
	f.addr4(b[off+16:])
	copy(cur[:], b[off+12:off+20])
	csumReplace(b[off+10:], old[:], cur[:], false)
	if ihl > 20 && !v4OptionsSafe(b[off+20:min(off+ihl, len(b))], len(b) < off+ihl) {
		return false
	}
	if len(b) < off+ihl {
		return true // cut inside the options: nothing further
	}
	if binary.BigEndian.Uint16(b[off+6:])&0x1fff != 0 {
		return true // a later fragment: no transport header
	}
	total := int(binary.BigEndian.Uint16(b[off+2:]))
	if total != 0 && total < ihl {
		return false
	}
	end := 0
	if total != 0 { // 0: left to the NIC (TSO)
		end = off + total
	}
	saved := f.limit(end)
	ok := f.l4(b[off+9], off+ihl, old[:], cur[:], false)
	f.b = saved
	return ok
}

// v4OptionsSafe reports whether IPv4 options carry no addresses: record
// route, source routes, and timestamps with addresses do.
func v4OptionsSafe(o []byte, cut bool) bool {
	for i := 0; i < len(o); {
		switch o[i] {
		case 0:
			return true
		case 1:
			i++
			continue
		}
		switch o[i] {
		case 7, 131, 137: // record route, loose and strict source route
			return false
		}
		if i+1 >= len(o) {
			return !cut
		}
		l := int(o[i+1])
		if l < 2 || i+l > len(o) {
			return !cut
		}
		if o[i] == 68 && (l < 4 || o[i+3]&0x0f != 0) { // timestamp: flags 1 and 3 carry addresses
			return false
		}
		i += l
	}
	return true
}

func (f *frameRW) ipv6(off int) bool {
	b := f.b
	if len(b) < off+40 || b[off]>>4 != 6 || !f.nest() {
		return false
	}
	var old, cur [32]byte
	copy(old[:], b[off+8:off+40])
	f.addr16(b[off+8:])
	f.addr16(b[off+24:])
	copy(cur[:], b[off+8:off+40])
	plen := int(binary.BigEndian.Uint16(b[off+4:]))
	end := 0
	if plen != 0 { // 0: a jumbogram, or left to the NIC (TSO)
		end = off + 40 + plen
	}
	saved := f.limit(end)
	defer func() { f.b = saved }()
	b = f.b
	nh, p := b[off+6], off+40
	for range maxFrameDepth {
		switch nh {
		case 0, 60: // hop-by-hop and destination options
			if len(b) < p+8 {
				return true // cut: nothing further
			}
			hl := (int(b[p+1]) + 1) * 8
			if nh == 60 && !v6OptionsSafe(b[p+2:min(p+hl, len(b))]) {
				return false
			}
			nh, p = b[p], p+hl
		case 51: // AH
			if len(b) < p+8 {
				return true
			}
			nh, p = b[p], p+(int(b[p+1])+2)*4
		case 44: // fragment
			if len(b) < p+8 {
				return true
			}
			if binary.BigEndian.Uint16(b[p+2:])&0xfff8 != 0 {
				return true // a later fragment: no transport header
			}
			nh, p = b[p], p+8
		case 43, 135, 139, 140: // routing, mobility, HIP, shim6: may carry addresses
			return false
		default:
			return f.l4(nh, p, old[:], cur[:], true)
		}
	}
	return false
}

// v6OptionsSafe reports whether a destination options header holds no home
// address option (201), which carries an address.
func v6OptionsSafe(o []byte) bool {
	for i := 0; i < len(o); {
		if o[i] == 0 { // Pad1
			i++
			continue
		}
		if o[i] == 201 {
			return false
		}
		if i+1 >= len(o) {
			return true
		}
		i += 2 + int(o[i+1])
	}
	return true
}

// l4 handles the IP payload at off: old and cur are the IP addresses before
// and after the rewrite, for the pseudo-header checksums.
func (f *frameRW) l4(proto uint8, off int, old, cur []byte, v6 bool) bool {
	b := f.b
	switch proto {
	case 6: // TCP
		if len(b) >= off+18 {
			csumReplace(b[off+16:], old, cur, false)
		}
	case 17, 136: // UDP, UDP-Lite
		if len(b) >= off+8 && (v6 || binary.BigEndian.Uint16(b[off+6:]) != 0) {
			csumReplace(b[off+6:], old, cur, true)
		}
	case 1:
		return f.icmp(off, false, nil, nil)
	case 58:
		return f.icmp(off, true, old, cur)
	case 4:
		return f.ipv4(off)
	case 41:
		return f.ipv6(off)
	case 47:
		return f.gre(off)
	}
	return true
}

func (f *frameRW) icmp(off int, v6 bool, old, cur []byte) bool {
	b := f.b
	if len(b) < off+4 {
		return true
	}
	typ := b[off]
	quote := false
	if v6 {
		switch {
		case typ >= 1 && typ <= 4:
			quote = true
		case typ >= 130 && typ <= 137 || typ == 143: // MLD, neighbour discovery: addresses in the body
			return false
		}
	} else {
		switch typ {
		case 3, 4, 5, 11, 12:
			quote = true
		case 9: // router advertisement: addresses in the body
			return false
		}
	}
	ok := true
	before := csumSum16(b[off+4:])
	if !v6 && typ == 5 { // redirect: the gateway's address
		if len(b) < off+8 {
			return false
		}
		f.addr4(b[off+4:])
	}
	if quote && len(b) > off+8 {
		ok = f.ipAny(off + 8)
	}
	after := csumSum16(b[off+4:])
	cs := binary.BigEndian.Uint16(b[off+2:])
	cs = csumAdjust(cs, before, after)
	if v6 {
		cs = csumAdjust(cs, csumSum16(old), csumSum16(cur))
	}
	binary.BigEndian.PutUint16(b[off+2:], cs)
	return ok
}

func (f *frameRW) gre(off int) bool {
	b := f.b
	if len(b) < off+4 || !f.nest() {
		return false
	}
	fl, ver := b[off], b[off+1]&7
	pt := binary.BigEndian.Uint16(b[off+2:])
	if ver != 0 {
		return false // enhanced GRE (PPTP)
	}
	p := off + 4
	for _, bit := range []byte{0x80, 0x20, 0x10} { // checksum, key, sequence number
		if fl&bit != 0 {
			p += 4
		}
	}
	csum := fl&0x80 != 0 && len(b) >= off+8
	var before uint16
	if csum {
		before = csumSum16(b[off+8:])
	}
	var ok bool
	switch pt {
	case 0x6558: // transparent Ethernet bridging
		ok = f.ethernet(p)
	case 0x88be: // ERSPAN type II
		ok = f.ethernet(p + 8)
	case 0x22eb: // ERSPAN type III
		if len(b) < p+12 {
			return false
		}
		if b[p+11]&1 != 0 {
			p += 8
		}
		ok = f.ethernet(p + 12)
	default:
		ok = f.etherType(pt, p)
	}
	if csum {
		cs := binary.BigEndian.Uint16(b[off+4:])
		binary.BigEndian.PutUint16(b[off+4:], csumAdjust(cs, before, csumSum16(b[off+8:])))
	}
	return ok
}

// llAddr rewrites the 8-byte address field of a Linux cooked header, n bytes
// of which are used.
func (f *frameRW) llAddr(b []byte, n int) {
	if n == 6 {
		f.a.mac(b)
	} else {
		clear(b[:min(n, len(b))])
	}
}

func (f *frameRW) addr4(b []byte) {
	ip := f.a.Addr(netip.AddrFrom4([4]byte(b[:4]))).As4()
	copy(b[:4], ip[:])
}

func (f *frameRW) addr16(b []byte) {
	v := f.a.Addr(netip.AddrFrom16([16]byte(b[:16]))).As16()
	copy(b[:16], v[:])
}

// sum16 is the folded ones-complement sum of b as big-endian 16-bit words
// (an odd last byte padded with zero).
func csumSum16(b []byte) uint16 {
	var s uint64
	for len(b) >= 2 {
		s += uint64(b[0])<<8 | uint64(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint64(b[0]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// adjust updates checksum cs for covered data whose sum went from before to
// after: HC' = ~(~HC + ~m + m') (RFC 1624, eqn. 3).
func csumAdjust(cs, before, after uint16) uint16 {
	s := uint64(^cs) + uint64(^before) + uint64(after)
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// replaceSum updates the checksum at field[0:2] for covered bytes changed
// from old to cur. udp: a result of zero is sent as all ones (zero means
// "no checksum").
func csumReplace(field, old, cur []byte, udp bool) {
	cs := csumAdjust(binary.BigEndian.Uint16(field), csumSum16(old), csumSum16(cur))
	if udp && cs == 0 {
		cs = 0xffff
	}
	binary.BigEndian.PutUint16(field, cs)
}
