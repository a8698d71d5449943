package analyze

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Filter is a compiled capture filter expression, in the language of
// tcpdump and pcap-filter(7), evaluated in pure Go (no libpcap, no BPF).
//
// Supported grammar:
//
//	expr      = unit { ("and" | "&&" | "or" | "||") unit }   (equal precedence, left to right)
//	unit      = ("not" | "!") unit | "(" expr ")" | primitive | relation | value
//	primitive = [proto] [dir] [kind] value   (at least one qualifier)
//	          | proto                        (ip ip6 tcp udp sctp icmp icmp6 igmp pim vrrp carp)
//	          | "vlan" [N] | "less" N | "greater" N
//	proto     = ip | ip6 | tcp | udp | sctp | icmp | icmp6 | igmp | pim | vrrp | carp
//	dir       = src | dst | src or dst | dst or src | src and dst | dst and src
//	kind      = host | net | port | portrange | proto
//	value     = IPv4 address (also short forms "10.1", or a 32-bit number),
//	            IPv6 address, net A.B.C.D/len | A.B/len | A.B.C.D mask M |
//	            short form (net 10 = 10.0.0.0/8, net 172.16 = /16) | X::/len,
//	            port number or service name, portrange A-B, protocol number
//	            or \name (ip proto \tcp)
//	relation  = arith ("=" | "==" | "!=" | "<" | "<=" | ">" | ">=") arith
//	arith     = N | len | proto "[" arith [":" 1|2|4] "]" | "-" arith | "(" arith ")"
//	          | arith ("+" | "-" | "*" | "/" | "%" | "&" | "|" | "^" | "<<" | ">>") arith
//
// A value standing alone inherits the qualifiers of the primitive before it,
// as in tcpdump: "host a or b" is "host a or host b", "tcp port 80 or 443"
// is "tcp port 80 or tcp port 443", "host a and not (b or c)" works too.
// Arithmetic is unsigned 32-bit, with libpcap's precedences (* / % above
// + - above << >> above & above |; "^" groups as in libpcap's grammar: its
// left operand is the nearest operand and its right one the rest of the
// expression). Named constants: tcpflags, tcp-fin, tcp-syn, tcp-rst,
// tcp-push, tcp-ack, tcp-urg, tcp-ece, tcp-cwr, icmptype, icmpcode,
// icmp-echoreply, icmp-unreach, icmp-echo, icmp-timxceed..., icmp6type,
// icmp6code, icmp6-echo, icmp6-destinationunreach, icmp6-neighborsolicit...
//
// Semantics, and where they deliberately differ from tcpdump:
//
//   - Every primitive applies to the innermost IP header that Decode found and
//     to the TCP/UDP/ICMP header after it, whatever the encapsulation (VLAN,
//     QinQ, MPLS, PPPoE, GRE, IP in IP, Linux cooked capture, ...): "port 443"
//     matches VLAN-tagged and tunnelled packets too, where tcpdump needs the
//     "vlan" keyword (which also shifts its offsets) before tagged packets
//     match. "vlan" matches frames with at least one VLAN tag; "vlan N"
//     matches when one of the two outermost tags has id N (Decoded keeps two).
//     So "ip proto 47" or "ip proto 4" never see tunnels Decode went through,
//     and a frame whose IP header Decode could not read matches no IP test.
//   - host and net test the addresses of that IP header. For an ICMP error
//     (KindICMPUnreach) that is the ICMP packet itself, as for tcpdump: the
//     source is the router (Decoded.ICMPFrom) and the destination the sender
//     of the quoted segment; ports of the quoted segment never match "port",
//     and "tcp" does not match the ICMP packet. Write "port 443 or icmp or
//     icmp6" to keep the ICMP errors too. Unlike tcpdump, host and net do not
//     match ARP/RARP packets.
//   - Ports, "ip6 proto N", "tcp" and the tcp[]/udp[] accessors look past the
//     IPv6 extension headers Decode skips (tcpdump only looks at the fixed
//     header, and past a fragment header for "tcp"); tcp[], udp[], sctp[] and
//     pim[] index into IPv6 packets too (libpcap 1.10 gives them IPv4 only).
//     As in tcpdump, IPv4 non-first fragments have no ports and no tcp[].
//   - Each accessor needs its header, wherever it stands in the expression:
//     libpcap 1.10 forgets that check for an accessor that is the right
//     operand of an arithmetic operator ("ip[2:2] - tcp[12] > 0" reads
//     tcp[12] of UDP packets there).
//   - icmp[], igmp[] and vrrp[] are IPv4 only, icmp6[] IPv6 only, ip[] needs
//     an IPv4 header and ip6[] an IPv6 one, as in tcpdump.
//   - Byte accessors read the captured frame: a read past the captured bytes
//     rejects the whole packet, as BPF does (so "not tcp[60] = 0" is false
//     for a packet too short to have a tcp[60]); so does a division by zero.
//   - less, greater and len use the frame's length on the wire: pass it to
//     MatchLen; Match uses len(frame), the captured length.
//   - Service names come from a built-in table (the usual /etc/services
//     entries, plus "dns" and "rdp"); as in tcpdump a name listed for TCP
//     only ("http") matches TCP only. Host and network names are not looked
//     up: use addresses. Link-layer and other primitives (ether, arp,
//     gateway, broadcast, multicast, mpls, inbound...) are rejected.
//
// Match does not allocate. A nil *Filter matches every frame.
type Filter struct {
	prog []insn
	str  string
}

// FilterError reports a filter expression that does not compile. Offset is
// the byte offset in Expr of the offending token.
type FilterError struct {
	Expr   string
	Offset int
	Msg    string

	fatal bool // not a mere syntax error: do not try another parse
}

func (e *FilterError) Error() string {
	return fmt.Sprintf("filter %q: %s at offset %d", e.Expr, e.Msg, e.Offset)
}

// CompileFilter compiles a tcpdump-style filter expression. An empty (or
// all-blank) expression gives a nil filter, which matches everything.
func CompileFilter(expr string) (*Filter, error) {
	if strings.TrimSpace(expr) == "" {
		return nil, nil
	}
	toks, err := lexFilter(expr)
	if err != nil {
		return nil, err
	}
	p := &parser{expr: expr, toks: toks}
	root, ferr := p.parseAll()
	if ferr != nil {
		return nil, ferr
	}
	c := &compiler{expr: expr}
	if ferr := c.compileAll(root); ferr != nil {
		return nil, ferr
	}
	return &Filter{prog: c.prog, str: root.String()}, nil
}

// String gives the expression in a canonical, fully qualified form that
// compiles to the same filter ("host a or b" gives "host a or host b").
func (f *Filter) String() string {
	if f == nil {
		return ""
	}
	return f.str
}

// Match tells whether a decoded frame passes the filter. less, greater and
// len see len(frame); use MatchLen to give them the length on the wire.
func (f *Filter) Match(d *Decoded, frame []byte) bool {
	return f.MatchLen(d, frame, len(frame))
}

// ---------------------------------------------------------------------------
// Lexer

type tokKind uint8

const (
	tEOF   tokKind = iota
	tNum           // a number, or a named constant such as tcp-syn
	tHID           // dotted decimal IPv4 address, 2 to 4 parts
	tHID6          // IPv6 address
	tMAC           // Ethernet address
	tID            // a name: service, protocol, port range, host name...
	tKW            // a keyword we support
	tUnsup         // a keyword of pcap-filter(7) we do not support
	tPunct         // operator or punctuation
)

type token struct {
	kind  tokKind
	text  string // as written (without the backslash for escaped names)
	pos   int
	num   uint32 // tNum
	parts int    // tHID: how many parts
}

// Keywords we implement.
var filterKeywords = map[string]bool{
	"ip": true, "ip6": true, "tcp": true, "udp": true, "sctp": true,
	"icmp": true, "icmp6": true, "igmp": true, "pim": true, "vrrp": true, "carp": true,
	"host": true, "net": true, "mask": true, "port": true, "portrange": true, "proto": true,
	"src": true, "dst": true, "and": true, "or": true, "not": true,
	"len": true, "less": true, "greater": true, "vlan": true,
}

// Keywords of pcap-filter(7) that we reject with a clear message.
var filterUnsupported = map[string]bool{
	"ether": true, "fddi": true, "tr": true, "wlan": true, "ppp": true, "slip": true, "link": true,
	"arp": true, "rarp": true, "atalk": true, "aarp": true, "decnet": true, "lat": true,
	"sca": true, "moprc": true, "mopdl": true, "iso": true, "esis": true, "es-is": true,
	"isis": true, "is-is": true, "l1": true, "l2": true, "iih": true, "lsp": true, "snp": true,
	"csnp": true, "psnp": true, "clnp": true, "stp": true, "ipx": true, "netbeui": true,
	"ah": true, "esp": true, "radio": true, "igrp": true,
	"protochain": true, "gateway": true, "type": true, "subtype": true, "direction": true,
	"dir": true, "address1": true, "addr1": true, "address2": true, "addr2": true,
	"address3": true, "addr3": true, "address4": true, "addr4": true, "ra": true, "ta": true,
	"byte": true, "broadcast": true, "multicast": true, "inbound": true, "outbound": true,
	"ifindex": true, "ifname": true, "on": true, "rnr": true, "rulenum": true, "reason": true,
	"rset": true, "srnr": true, "subrulenum": true, "action": true, "mpls": true,
	"pppoed": true, "pppoes": true, "geneve": true, "vxlan": true, "lane": true, "llc": true,
	"metac": true, "bcc": true, "oam": true, "oamf4": true, "oamf4ec": true, "oamf4sc": true,
	"sc": true, "ilmic": true, "vpi": true, "vci": true, "connectmsg": true,
	"metaconnect": true, "fisu": true, "lssu": true, "lsu": true, "sio": true, "opc": true,
	"dpc": true, "sls": true, "hfisu": true, "hlssu": true, "hmsu": true, "hsio": true,
	"hopc": true, "hdpc": true, "hsls": true,
}

// Named constants of the libpcap scanner.
var filterConstants = map[string]uint32{
	"tcpflags": 13, "tcp-fin": 0x01, "tcp-syn": 0x02, "tcp-rst": 0x04, "tcp-push": 0x08,
	"tcp-ack": 0x10, "tcp-urg": 0x20, "tcp-ece": 0x40, "tcp-cwr": 0x80,
	"icmptype": 0, "icmpcode": 1,
	"icmp-echoreply": 0, "icmp-unreach": 3, "icmp-sourcequench": 4, "icmp-redirect": 5,
	"icmp-echo": 8, "icmp-routeradvert": 9, "icmp-routersolicit": 10, "icmp-timxceed": 11,
	"icmp-paramprob": 12, "icmp-tstamp": 13, "icmp-tstampreply": 14, "icmp-ireq": 15,
	"icmp-ireqreply": 16, "icmp-maskreq": 17, "icmp-maskreply": 18,
	"icmp6type": 0, "icmp6code": 1,
	"icmp6-destinationunreach": 1, "icmp6-packettoobig": 2, "icmp6-timeexceeded": 3,
	"icmp6-parameterproblem": 4, "icmp6-echo": 128, "icmp6-echoreply": 129,
	"icmp6-multicastlistenerquery": 130, "icmp6-multicastlistenerreportv1": 131,
	"icmp6-multicastlistenerdone": 132, "icmp6-routersolicit": 133,
	"icmp6-routeradvert": 134, "icmp6-neighborsolicit": 135, "icmp6-neighboradvert": 136,
	"icmp6-redirect": 137, "icmp6-routerrenum": 138, "icmp6-nodeinformationquery": 139,
	"icmp6-nodeinformationresponse": 140, "icmp6-ineighbordiscoverysolicit": 141,
	"icmp6-ineighbordiscoveryadvert": 142, "icmp6-multicastlistenerreportv2": 143,
	"icmp6-homeagentdiscoveryrequest": 144, "icmp6-homeagentdiscoveryreply": 145,
	"icmp6-mobileprefixsolicit": 146, "icmp6-mobileprefixadvert": 147,
	"icmp6-certpathsolicit": 148, "icmp6-certpathadvert": 149,
	"icmp6-multicastrouteradvert": 151, "icmp6-multicastroutersolicit": 152,
	"icmp6-multicastrouterterm": 153,
}

// Operators, longest first.
var filterPuncts = []string{
	"&&", "||", "<<", ">>", "<=", ">=", "==", "!=",
	"(", ")", "[", "]", ":", "/", "+", "-", "*", "%", "&", "|", "^", "=", "<", ">", "!",
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isHex(c byte) bool {
	return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}
func isAlnum(c byte) bool {
	return isDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func lexFilter(s string) ([]token, error) {
	var toks []token
	fail := func(pos int, format string, args ...any) ([]token, error) {
		return nil, &FilterError{Expr: s, Offset: pos, Msg: fmt.Sprintf(format, args...)}
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
			continue
		case c == '\\':
			// An escaped name is never a keyword: ip proto \tcp.
			j := i + 1
			for j < len(s) && !strings.ContainsRune(" \t\n\r!()", rune(s[j])) {
				j++
			}
			if j == i+1 {
				return fail(i, "syntax error: nothing after \"\\\"")
			}
			toks = append(toks, token{kind: tID, text: s[i+1 : j], pos: i})
			i = j
			continue
		}
		if isHex(c) || c == ':' {
			// An IPv6 (or Ethernet) address has at least two colons.
			j, colons := i, 0
			for j < len(s) && (isHex(s[j]) || s[j] == ':' || s[j] == '.') {
				if s[j] == ':' {
					colons++
				}
				j++
			}
			if colons >= 2 {
				w := s[i:j]
				if j < len(s) && (isAlnum(s[j]) || s[j] == '_' || s[j] == '-') {
					return fail(i, "invalid address %q", s[i:j+1])
				}
				if a, err := netip.ParseAddr(w); err == nil && a.Is6() && a.Zone() == "" {
					toks = append(toks, token{kind: tHID6, text: w, pos: i})
				} else if isMAC(w) {
					toks = append(toks, token{kind: tMAC, text: w, pos: i})
				} else {
					return fail(i, "invalid IPv6 address %q", w)
				}
				i = j
				continue
			}
		}
		if isAlnum(c) {
			j := i
			for j < len(s) && (isAlnum(s[j]) || s[j] == '-' || s[j] == '_' || s[j] == '.') {
				j++
			}
			for j > i+1 && (s[j-1] == '-' || s[j-1] == '_') { // names end in [.A-Za-z0-9]
				j--
			}
			w := s[i:j]
			tok, err := classifyWord(s, w, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, tok)
			i = j
			continue
		}
		matched := false
		for _, p := range filterPuncts {
			if strings.HasPrefix(s[i:], p) {
				toks = append(toks, token{kind: tPunct, text: p, pos: i})
				i += len(p)
				matched = true
				break
			}
		}
		if !matched {
			return fail(i, "syntax error: unexpected character %q", rune(c))
		}
	}
	toks = append(toks, token{kind: tEOF, pos: len(s)})
	return toks, nil
}

func isMAC(w string) bool {
	parts := strings.Split(w, ":")
	if len(parts) != 6 {
		return false
	}
	for _, p := range parts {
		if len(p) < 1 || len(p) > 2 {
			return false
		}
		for k := 0; k < len(p); k++ {
			if !isHex(p[k]) {
				return false
			}
		}
	}
	return true
}

func classifyWord(s, w string, pos int) (token, error) {
	fail := func(format string, args ...any) (token, error) {
		return token{}, &FilterError{Expr: s, Offset: pos, Msg: fmt.Sprintf(format, args...)}
	}
	if filterKeywords[w] {
		return token{kind: tKW, text: w, pos: pos}, nil
	}
	if filterUnsupported[w] {
		return token{kind: tUnsup, text: w, pos: pos}, nil
	}
	if v, ok := filterConstants[w]; ok {
		return token{kind: tNum, text: w, pos: pos, num: v}, nil
	}
	if isDigit(w[0]) {
		if v, ok, err := parseNum(w); ok {
			if err != "" {
				return fail("%s", err)
			}
			return token{kind: tNum, text: w, pos: pos, num: v}, nil
		}
		parts := strings.Split(w, ".")
		if len(parts) >= 2 && len(parts) <= 4 {
			dotted := true
			for _, p := range parts {
				if p == "" || len(p) > 10 {
					dotted = false
					break
				}
				for k := 0; k < len(p); k++ {
					if !isDigit(p[k]) {
						dotted = false
					}
				}
			}
			if dotted {
				for _, p := range parts {
					if n, _ := strconv.Atoi(p); n > 255 {
						return fail("invalid IPv4 address %q", w)
					}
				}
				return token{kind: tHID, text: w, pos: pos, parts: len(parts)}, nil
			}
		}
	}
	return token{kind: tID, text: w, pos: pos}, nil
}

// parseNum reads a libpcap number: decimal, 0x hexadecimal or 0 octal. ok is
// false when w is not a number at all; err is set for a malformed one.
func parseNum(w string) (v uint32, ok bool, err string) {
	base, digits := 10, w
	switch {
	case len(w) > 2 && (w[:2] == "0x" || w[:2] == "0X"):
		base, digits = 16, w[2:]
		for k := 0; k < len(digits); k++ {
			if !isHex(digits[k]) {
				return 0, false, ""
			}
		}
	default:
		for k := 0; k < len(w); k++ {
			if !isDigit(w[k]) {
				return 0, false, ""
			}
		}
		if len(w) > 1 && w[0] == '0' {
			base, digits = 8, w[1:]
			if strings.ContainsAny(digits, "89") {
				return 0, true, fmt.Sprintf("number %s contains non-octal digit", w)
			}
		}
	}
	n, e := strconv.ParseUint(digits, base, 32)
	if e != nil {
		return 0, true, fmt.Sprintf("number %s does not fit in 32 bits", w)
	}
	return uint32(n), true, ""
}

// ---------------------------------------------------------------------------
// Syntax tree

// Qualifier values. The zero qual is libpcap's "qerr": no qualifier to inherit.
const (
	qUndef = iota
	qDefault
)

// Protocol qualifiers (qual.proto).
const (
	pqIP = iota + 2
	pqIP6
	pqTCP
	pqUDP
	pqSCTP
	pqICMP
	pqICMP6
	pqIGMP
	pqPIM
	pqVRRP
	pqCARP
)

// Address kinds (qual.addr).
const (
	aqHost = iota + 2
	aqNet
	aqPort
	aqPortrange
	aqProto
)

// Directions (qual.dir and the dir argument of host and port tests).
const (
	dirSrc = iota + 2
	dirDst
	dirOr
	dirAnd
)

var pqNames = map[string]uint8{
	"ip": pqIP, "ip6": pqIP6, "tcp": pqTCP, "udp": pqUDP, "sctp": pqSCTP, "icmp": pqICMP,
	"icmp6": pqICMP6, "igmp": pqIGMP, "pim": pqPIM, "vrrp": pqVRRP, "carp": pqCARP,
}

var pqText = [...]string{pqIP: "ip", pqIP6: "ip6", pqTCP: "tcp", pqUDP: "udp", pqSCTP: "sctp",
	pqICMP: "icmp", pqICMP6: "icmp6", pqIGMP: "igmp", pqPIM: "pim", pqVRRP: "vrrp", pqCARP: "carp"}

// Address families of the innermost IP header, as a bit mask.
const (
	famV4 = 1
	famV6 = 2
)

// What a protocol qualifier means: the IP versions and IP protocol it needs.
type pqInfo struct {
	fam   uint8
	proto uint8
	any   bool // no protocol test (ip, ip6)
}

var pqInfos = [...]pqInfo{
	pqIP: {fam: famV4, any: true}, pqIP6: {fam: famV6, any: true},
	pqTCP: {fam: famV4 | famV6, proto: 6}, pqUDP: {fam: famV4 | famV6, proto: 17},
	pqSCTP: {fam: famV4 | famV6, proto: 132}, pqICMP: {fam: famV4, proto: 1},
	pqICMP6: {fam: famV6, proto: 58}, pqIGMP: {fam: famV4, proto: 2},
	pqPIM: {fam: famV4 | famV6, proto: 103}, pqVRRP: {fam: famV4, proto: 112},
	pqCARP: {fam: famV4, proto: 112},
}

type qual struct{ proto, dir, addr uint8 }

type bnode interface{ String() string }

type andNode struct{ l, r bnode }
type orNode struct{ l, r bnode }
type notNode struct{ x bnode }

// and and or have equal precedence and group left to right: a binary
// operand on the right needs parentheses, one on the left only when its
// operator differs (for the reader's sake: "a or b and c" is "(a or b) and c").
func (n *andNode) String() string {
	l := n.l.String()
	if _, ok := n.l.(*orNode); ok {
		l = "(" + l + ")"
	}
	return l + " and " + wrapBinary(n.r)
}
func (n *orNode) String() string {
	l := n.l.String()
	if _, ok := n.l.(*andNode); ok {
		l = "(" + l + ")"
	}
	return l + " or " + wrapBinary(n.r)
}
func (n *notNode) String() string { return "not " + wrapBinary(n.x) }

func wrapBinary(n bnode) string {
	switch n.(type) {
	case *andNode, *orNode:
		return "(" + n.String() + ")"
	}
	return n.String()
}

type primKind uint8

const (
	pkFam primKind = iota
	pkProto
	pkHost4
	pkHost6
	pkPort
	pkVLAN
	pkLess
	pkGreater
)

// prim is a primitive test.
type prim struct {
	kind   primKind
	fam    uint8
	dir    uint8
	protos uint8 // pkPort: ptTCP|ptUDP|ptSCTP
	proto  uint8
	k, k2  uint32    // pkHost4: address and mask; pkPort: range; pkVLAN: id; pkLess/pkGreater: length
	a6     [4]uint64 // pkHost6: address high, low, mask high, low
	text   string
}

func (p *prim) String() string { return p.text }

// relNode is a comparison of two arithmetic expressions.
type relNode struct {
	op   uint8
	a, b arith
	pos  int
}

var relText = [...]string{"==", "!=", "<", "<=", ">", ">="}

const (
	relEQ = iota
	relNE
	relLT
	relLE
	relGT
	relGE
)

func (r *relNode) String() string {
	return arithString(r.a, true) + " " + relText[r.op] + " " + arithString(r.b, true)
}

type arith interface{}

type aConst struct {
	v    uint32
	text string
}
type aLen struct{}
type aLoad struct {
	pq   uint8 // protocol qualifier: the header indexed
	idx  arith
	size uint8
}
type aBin struct {
	op   uint8
	a, b arith
	pos  int
}
type aNeg struct{ x arith }

// Binary arithmetic operators.
const (
	opAdd = iota
	opSub
	opMul
	opDiv
	opMod
	opAnd
	opOr
	opXor
	opShl
	opShr
)

var binText = [...]string{"+", "-", "*", "/", "%", "&", "|", "^", "<<", ">>"}

// Binding strength of the binary operators but "^" (see parsePrimary).
var binPrec = [...]int{opAdd: 4, opSub: 4, opMul: 5, opDiv: 5, opMod: 5,
	opAnd: 2, opOr: 1, opShl: 3, opShr: 3}

var binByText = map[string]uint8{"+": opAdd, "-": opSub, "*": opMul, "/": opDiv, "%": opMod,
	"&": opAnd, "|": opOr, "^": opXor, "<<": opShl, ">>": opShr}

func arithString(e arith, top bool) string {
	switch e := e.(type) {
	case *aConst:
		return e.text
	case *aLen:
		return "len"
	case *aLoad:
		s := pqText[e.pq] + "[" + arithString(e.idx, true)
		if e.size != 1 {
			s += ":" + strconv.Itoa(int(e.size))
		}
		return s + "]"
	case *aNeg:
		return "-" + arithString(e.x, false)
	case *aBin:
		l := arithString(e.a, false)
		if _, ok := e.a.(*aNeg); ok && e.op == opXor { // -a ^ b reads as -(a ^ b)
			l = "(" + l + ")"
		}
		s := l + " " + binText[e.op] + " " + arithString(e.b, false)
		if top {
			return s
		}
		return "(" + s + ")"
	}
	panic("unreachable")
}

// ---------------------------------------------------------------------------
// Parser

const maxFilterDepth = 200

type parser struct {
	expr  string
	toks  []token
	i     int
	q     qual // the qualifiers a bare value inherits
	depth int
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) peekAt(n int) token {
	if p.i+n < len(p.toks) {
		return p.toks[p.i+n]
	}
	return p.toks[len(p.toks)-1]
}
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) fail(pos int, fatal bool, format string, args ...any) {
	panic(&FilterError{Expr: p.expr, Offset: pos, Msg: fmt.Sprintf(format, args...), fatal: fatal})
}

// unexpected fails on t: unsupported keywords get their own message.
func (p *parser) unexpected(t token) {
	switch t.kind {
	case tUnsup:
		p.fail(t.pos, true, "unsupported primitive %q", t.text)
	case tMAC:
		p.fail(t.pos, true, "unsupported primitive: Ethernet address %q", t.text)
	case tEOF:
		p.fail(t.pos, false, "syntax error: unexpected end of expression")
	}
	p.fail(t.pos, false, "syntax error: unexpected %q", t.text)
}

func isPunct(t token, s string) bool { return t.kind == tPunct && t.text == s }
func isKW(t token, s string) bool    { return t.kind == tKW && t.text == s }
func isAndTok(t token) bool          { return isKW(t, "and") || isPunct(t, "&&") }
func isOrTok(t token) bool           { return isKW(t, "or") || isPunct(t, "||") }
func isNotTok(t token) bool          { return isKW(t, "not") || isPunct(t, "!") }
func isValue(t token) bool {
	return t.kind == tNum || t.kind == tHID || t.kind == tHID6 || t.kind == tID || t.kind == tMAC
}
func isRelop(t token) bool {
	if t.kind != tPunct {
		return false
	}
	switch t.text {
	case "=", "==", "!=", "<", "<=", ">", ">=":
		return true
	}
	return false
}
func isBinop(t token) bool {
	if t.kind != tPunct {
		return false
	}
	_, ok := binByText[t.text]
	return ok
}

func (p *parser) enter() {
	p.depth++
	if p.depth > maxFilterDepth {
		p.fail(p.peek().pos, true, "expression nested too deeply")
	}
}
func (p *parser) leave() { p.depth-- }

// try runs fn, returning the syntax error it fails with (fatal ones go on).
func (p *parser) try(fn func()) (err *FilterError) {
	defer func() {
		if r := recover(); r != nil {
			if fe, ok := r.(*FilterError); ok && !fe.fatal {
				err = fe
				return
			}
			panic(r)
		}
	}()
	fn()
	return nil
}

func (p *parser) parseAll() (n bnode, err *FilterError) {
	defer func() {
		if r := recover(); r != nil {
			if fe, ok := r.(*FilterError); ok {
				err = fe
				return
			}
			panic(r)
		}
	}()
	n = p.parseExpr()
	if t := p.peek(); t.kind != tEOF {
		p.unexpected(t)
	}
	return n, nil
}

// parseExpr: units joined by and/or, of equal precedence, left to right.
func (p *parser) parseExpr() bnode {
	n := p.parseUnit()
	for {
		t := p.peek()
		switch {
		case isAndTok(t):
			p.next()
			n = &andNode{n, p.parseUnit()}
		case isOrTok(t):
			p.next()
			n = &orNode{n, p.parseUnit()}
		default:
			return n
		}
	}
}

// parseUnit parses a term, or a bare value inheriting the qualifiers.
func (p *parser) parseUnit() bnode {
	p.enter()
	defer p.leave()
	t := p.peek()
	switch {
	case isNotTok(t):
		p.next()
		return &notNode{p.parseUnit()}
	case isPunct(t, "("):
		return p.parseParen()
	case isPunct(t, "-"):
		return p.parseRelation()
	case t.kind == tNum && (isBinop(p.peekAt(1)) || isRelop(p.peekAt(1))):
		return p.parseRelation()
	case isValue(t):
		return p.parseValue()
	case t.kind == tKW:
		switch t.text {
		case "len":
			return p.parseRelation()
		case "less", "greater":
			p.next()
			n := p.next()
			if n.kind != tNum {
				p.fail(n.pos, false, "syntax error: %q needs a length", t.text)
			}
			p.q = qual{}
			if t.text == "less" {
				return &prim{kind: pkLess, k: n.num, text: "less " + strconv.FormatUint(uint64(n.num), 10)}
			}
			return &prim{kind: pkGreater, k: n.num, text: "greater " + strconv.FormatUint(uint64(n.num), 10)}
		case "vlan":
			p.next()
			p.q = qual{}
			if n := p.peek(); n.kind == tNum {
				p.next()
				if n.num > 4095 {
					p.fail(n.pos, true, "VLAN id %d greater than 4095", n.num)
				}
				return &prim{kind: pkVLAN, k: n.num, text: "vlan " + strconv.Itoa(int(n.num))}
			}
			return &prim{kind: pkVLAN, k: anyVLAN, text: "vlan"}
		case "src", "dst", "host", "net", "port", "portrange", "proto":
			return p.parseHead()
		}
		if _, ok := pqNames[t.text]; ok {
			if isPunct(p.peekAt(1), "[") {
				return p.parseRelation()
			}
			return p.parseHead()
		}
	}
	p.unexpected(t)
	return nil
}

// parseParen parses "(": an arithmetic relation such as (tcp[13] & 2) != 0,
// or else a parenthesized expression.
func (p *parser) parseParen() bnode {
	start, q0 := p.i, p.q
	var n bnode
	errA := p.try(func() { n = p.parseRelation() })
	if errA == nil {
		return n
	}
	p.i, p.q = start, q0
	errB := p.try(func() {
		p.next()
		n = p.parseExpr()
		if t := p.peek(); !isPunct(t, ")") {
			p.unexpected(t)
		}
		p.next()
	})
	if errB == nil {
		p.q = q0 // as libpcap: the qualifiers from before the parenthesis
		return n
	}
	if errA.Offset > errB.Offset {
		panic(errA)
	}
	panic(errB)
}

// parseHead parses [proto] [dir] [kind] and the value that follows.
func (p *parser) parseHead() bnode {
	q := qual{proto: qDefault, dir: qDefault, addr: qDefault}
	t := p.peek()
	if pq, ok := pqNames[t.text]; ok && t.kind == tKW {
		q.proto = pq
		p.next()
	}
	hasDir := false
	if t := p.peek(); isKW(t, "src") || isKW(t, "dst") {
		p.next()
		hasDir = true
		q.dir = dirSrc
		if t.text == "dst" {
			q.dir = dirDst
		}
		if c, o := p.peek(), p.peekAt(1); (isOrTok(c) || isAndTok(c)) &&
			(isKW(o, "src") || isKW(o, "dst")) && o.text != t.text {
			p.next()
			p.next()
			q.dir = dirOr
			if isAndTok(c) {
				q.dir = dirAnd
			}
		}
	}
	t = p.peek()
	switch {
	case isKW(t, "host"):
		q.addr = aqHost
	case isKW(t, "net"):
		q.addr = aqNet
	case isKW(t, "port"):
		q.addr = aqPort
	case isKW(t, "portrange"):
		q.addr = aqPortrange
	case isKW(t, "proto") && !hasDir:
		q.addr = aqProto
	}
	if q.addr != qDefault {
		p.next()
	} else if !hasDir {
		// A protocol name alone: tcp, ip6...
		if t.kind == tUnsup {
			p.unexpected(t)
		}
		p.q = qual{}
		info := pqInfos[q.proto]
		if info.any {
			return &prim{kind: pkFam, fam: info.fam, text: pqText[q.proto]}
		}
		return &prim{kind: pkProto, fam: info.fam, proto: info.proto, text: pqText[q.proto]}
	}
	p.q = q
	return p.parseIDOnly()
}

// parseIDOnly parses what must follow qualifiers: a value, "not" value, or
// a parenthesized list of values.
func (p *parser) parseIDOnly() bnode {
	p.enter()
	defer p.leave()
	t := p.peek()
	switch {
	case isNotTok(t):
		p.next()
		return &notNode{p.parseIDOnly()}
	case isPunct(t, "("):
		q0 := p.q
		p.next()
		n := p.parseExpr()
		if t := p.peek(); !isPunct(t, ")") {
			p.unexpected(t)
		}
		p.next()
		p.q = q0
		return n
	case isValue(t):
		return p.parseValue()
	}
	if t.kind == tUnsup {
		p.unexpected(t)
	}
	want := "an address"
	switch p.q.addr {
	case aqPort:
		want = "a port"
	case aqPortrange:
		want = "a port range"
	case aqNet:
		want = "a network"
	case aqProto:
		want = "a protocol"
	}
	found := "end of expression"
	if t.kind != tEOF {
		found = strconv.Quote(t.text)
	}
	p.fail(t.pos, false, "syntax error: expected %s, found %s", want, found)
	return nil
}

func (q qual) prefix() string {
	s := ""
	if q.proto >= pqIP {
		s = pqText[q.proto] + " "
	}
	switch q.dir {
	case dirSrc:
		s += "src "
	case dirDst:
		s += "dst "
	case dirOr:
		s += "src or dst "
	case dirAnd:
		s += "src and dst "
	}
	return s
}

// parseValue turns a value into a primitive, with the inherited qualifiers.
func (p *parser) parseValue() bnode {
	t := p.next()
	q := p.q
	if q.addr == qUndef {
		p.fail(t.pos, false, "syntax error: %q needs a qualifier such as host, net or port", t.text)
	}
	if t.kind == tMAC {
		p.unexpected(t)
	}
	switch q.addr {
	case qDefault, aqHost, aqNet:
		return p.addrValue(t, q)
	case aqPort, aqPortrange:
		return p.portValue(t, q)
	case aqProto:
		return p.protoValue(t, q)
	}
	panic("unreachable")
}

func (p *parser) addrValue(t token, q qual) bnode {
	isNet := q.addr == aqNet
	kind := "host"
	if isNet {
		kind = "net"
	}
	if q.proto >= pqIP && q.proto != pqIP && q.proto != pqIP6 {
		p.fail(t.pos, true, "%q qualifier not valid with %s", pqText[q.proto], kind)
	}
	var v6 bool
	var a4, m4 uint32
	var a16 [16]byte
	bits := 0
	switch t.kind {
	case tNum:
		a4, m4 = t.num, 0xffffffff
		if isNet { // promote a short net number: net 10 is 10.0.0.0/8
			for a4 != 0 && a4&0xff000000 == 0 {
				a4 <<= 8
				m4 <<= 8
			}
		}
		bits = -1
	case tHID:
		for _, part := range strings.Split(t.text, ".") {
			n, _ := strconv.Atoi(part)
			a4 = a4<<8 | uint32(n)
		}
		sh := uint(32 - 8*t.parts)
		a4 <<= sh
		m4 = 0xffffffff << sh
		bits = -1
		if n := p.peek(); isPunct(n, "/") || isKW(n, "mask") {
			if !isNet {
				p.fail(n.pos, true, "mask syntax is for networks only: use \"net\"")
			}
			p.next()
			m := p.next()
			if n.text == "/" {
				if m.kind != tNum {
					p.fail(m.pos, false, "syntax error: expected a prefix length after \"/\"")
				}
				if m.num > 32 {
					p.fail(m.pos, true, "prefix length %d greater than 32", m.num)
				}
				m4 = 0
				if m.num > 0 {
					m4 = 0xffffffff << (32 - m.num)
				}
			} else {
				if m.kind != tHID {
					p.fail(m.pos, false, "syntax error: expected a dotted mask after \"mask\"")
				}
				m4 = 0
				for _, part := range strings.Split(m.text, ".") {
					n, _ := strconv.Atoi(part)
					m4 = m4<<8 | uint32(n)
				}
				m4 <<= uint(32 - 8*m.parts)
			}
			if a4&^m4 != 0 {
				p.fail(t.pos, true, "non-network bits set in %q", p.expr[t.pos:m.pos+len(m.text)])
			}
		}
	case tHID6:
		v6 = true
		a := netip.MustParseAddr(t.text)
		a16 = a.As16()
		bits = 128
		if n := p.peek(); isPunct(n, "/") || isKW(n, "mask") {
			if !isNet {
				p.fail(n.pos, true, "mask syntax is for networks only: use \"net\"")
			}
			if n.text == "mask" {
				p.fail(n.pos, true, "\"mask\" is for IPv4 networks; use %s/len", t.text)
			}
			p.next()
			m := p.next()
			if m.kind != tNum {
				p.fail(m.pos, false, "syntax error: expected a prefix length after \"/\"")
			}
			if m.num > 128 {
				p.fail(m.pos, true, "prefix length %d greater than 128", m.num)
			}
			bits = int(m.num)
			if pr, _ := a.Prefix(bits); pr.Addr() != a {
				p.fail(t.pos, true, "non-network bits set in %q", p.expr[t.pos:m.pos+len(m.text)])
			}
		}
	case tID:
		if isNet {
			p.fail(t.pos, true, "network names are not supported: %q (use an address)", t.text)
		}
		p.fail(t.pos, true, "host names are not supported: %q (use an address)", t.text)
	}
	if v6 && q.proto == pqIP {
		p.fail(t.pos, true, "\"ip\" qualifier applied to IPv6 address %s", t.text)
	}
	if !v6 && q.proto == pqIP6 {
		p.fail(t.pos, true, "\"ip6\" qualifier applied to IPv4 address %s", t.text)
	}
	dir := q.dir
	if dir == qDefault {
		dir = dirOr
	}
	pr := &prim{dir: dir}
	qtext := q.prefix()
	if v6 {
		pr.kind, pr.fam = pkHost6, famV6
		var m [16]byte
		for k := 0; k < bits; k++ {
			m[k/8] |= 0x80 >> (k % 8)
		}
		pr.a6 = [4]uint64{binary.BigEndian.Uint64(a16[:8]), binary.BigEndian.Uint64(a16[8:]),
			binary.BigEndian.Uint64(m[:8]), binary.BigEndian.Uint64(m[8:])}
		addr := netip.AddrFrom16(a16)
		if isNet {
			pr.text = qtext + "net " + netip.PrefixFrom(addr, bits).String()
		} else {
			pr.text = qtext + "host " + addr.String()
		}
		return pr
	}
	pr.kind, pr.fam, pr.k, pr.k2 = pkHost4, famV4, a4, m4
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], a4)
	addr := netip.AddrFrom4(b).String()
	ones, contiguous := maskLen(m4)
	switch {
	case !isNet && m4 == 0xffffffff:
		pr.text = qtext + "host " + addr
	case !isNet && contiguous && ones%8 == 0 && ones > 0:
		// host 10.1: libpcap's short host form, a /16 in effect.
		pr.text = qtext + "host " + strings.Join(strings.Split(addr, ".")[:ones/8], ".")
	case isNet && contiguous:
		pr.text = qtext + "net " + addr + "/" + strconv.Itoa(ones)
	default:
		binary.BigEndian.PutUint32(b[:], m4)
		pr.text = qtext + "net " + addr + " mask " + netip.AddrFrom4(b).String()
	}
	return pr
}

func maskLen(m uint32) (int, bool) {
	n := 0
	for n < 32 && m&(1<<(31-n)) != 0 {
		n++
	}
	if n < 32 && m<<n != 0 {
		return n, false
	}
	return n, true
}

// Port protocols, as bits.
const (
	ptTCP  = 1
	ptUDP  = 2
	ptSCTP = 4
)

func protoBit(proto uint8) uint8 {
	switch proto {
	case 6:
		return ptTCP
	case 17:
		return ptUDP
	case 132:
		return ptSCTP
	}
	return 0
}

type service struct {
	port   uint16
	protos uint8
}

// filterServices are the usual /etc/services names (netbase), with the
// protocols they are listed for; dns and rdp are our own additions.
var filterServices = map[string]service{
	"echo": {7, ptTCP | ptUDP}, "discard": {9, ptTCP | ptUDP}, "daytime": {13, ptTCP | ptUDP},
	"ftp-data": {20, ptTCP}, "ftp": {21, ptTCP}, "ssh": {22, ptTCP}, "telnet": {23, ptTCP},
	"smtp": {25, ptTCP}, "mail": {25, ptTCP}, "whois": {43, ptTCP},
	"domain": {53, ptTCP | ptUDP}, "dns": {53, ptTCP | ptUDP},
	"bootps": {67, ptUDP}, "bootpc": {68, ptUDP}, "tftp": {69, ptUDP}, "finger": {79, ptTCP},
	"http": {80, ptTCP}, "www": {80, ptTCP}, "kerberos": {88, ptTCP | ptUDP},
	"pop3": {110, ptTCP}, "auth": {113, ptTCP}, "ident": {113, ptTCP}, "nntp": {119, ptTCP},
	"ntp": {123, ptUDP}, "netbios-ns": {137, ptUDP}, "netbios-dgm": {138, ptUDP},
	"netbios-ssn": {139, ptTCP}, "imap2": {143, ptTCP}, "imap": {143, ptTCP},
	"snmp": {161, ptTCP | ptUDP}, "snmp-trap": {162, ptTCP | ptUDP}, "bgp": {179, ptTCP},
	"ldap": {389, ptTCP | ptUDP}, "https": {443, ptTCP | ptUDP}, "microsoft-ds": {445, ptTCP},
	"isakmp": {500, ptUDP}, "syslog": {514, ptUDP}, "submission": {587, ptTCP},
	"ldaps": {636, ptTCP | ptUDP}, "domain-s": {853, ptTCP | ptUDP}, "rsync": {873, ptTCP},
	"imaps": {993, ptTCP}, "pop3s": {995, ptTCP}, "socks": {1080, ptTCP},
	"openvpn": {1194, ptTCP | ptUDP}, "ms-sql-s": {1433, ptTCP}, "mysql": {3306, ptTCP},
	"ms-wbt-server": {3389, ptTCP}, "rdp": {3389, ptTCP}, "sip": {5060, ptTCP | ptUDP},
	"sip-tls": {5061, ptTCP | ptUDP}, "postgresql": {5432, ptTCP}, "postgres": {5432, ptTCP},
	"amqp": {5672, ptTCP}, "redis": {6379, ptTCP}, "http-alt": {8080, ptTCP},
	"webcache": {8080, ptTCP},
}

var protoNames = map[string]uint8{
	"ip": 0, "icmp": 1, "igmp": 2, "ggp": 3, "ipencap": 4, "st": 5, "tcp": 6, "egp": 8,
	"igp": 9, "udp": 17, "ipv6": 41, "ipv6-route": 43, "ipv6-frag": 44, "rsvp": 46, "gre": 47,
	"esp": 50, "ah": 51, "ipv6-icmp": 58, "icmp6": 58, "ipv6-nonxt": 59, "ipv6-opts": 60,
	"eigrp": 88, "ospf": 89, "ipip": 94, "pim": 103, "vrrp": 112, "l2tp": 115, "sctp": 132,
	"udplite": 136,
}

const anyVLAN = 0xffffffff

func (p *parser) portValue(t token, q qual) bnode {
	protos := uint8(ptTCP | ptUDP | ptSCTP)
	switch q.proto {
	case qDefault:
	case pqTCP:
		protos = ptTCP
	case pqUDP:
		protos = ptUDP
	case pqSCTP:
		protos = ptSCTP
	default:
		p.fail(t.pos, true, "%q qualifier not valid with port", pqText[q.proto])
	}
	word := "port"
	if q.addr == aqPortrange {
		word = "portrange"
	}
	var lo, hi uint32
	switch t.kind {
	case tNum:
		if t.num > 65535 {
			p.fail(t.pos, true, "port number %d greater than 65535", t.num)
		}
		lo, hi = t.num, t.num
	case tID:
		if q.addr == aqPort {
			s, ok := filterServices[t.text]
			if !ok {
				p.fail(t.pos, true, "unknown port %q", t.text)
			}
			if s.protos&protos == 0 {
				p.fail(t.pos, true, "port %q is not a %s port", t.text, pqText[q.proto])
			}
			protos &= s.protos
			lo, hi = uint32(s.port), uint32(s.port)
			break
		}
		var ok bool
		lo, hi, ok = portRange(t.text)
		if !ok {
			p.fail(t.pos, true, "invalid port range %q", t.text)
		}
	default:
		p.fail(t.pos, true, "%q modifier applied to address %s", word, t.text)
	}
	dir := q.dir
	if dir == qDefault {
		dir = dirOr
	}
	pfx := qual{dir: q.dir}.prefix()
	switch protos {
	case ptTCP:
		pfx = "tcp " + pfx
	case ptUDP:
		pfx = "udp " + pfx
	case ptSCTP:
		pfx = "sctp " + pfx
	}
	text := pfx + "port " + strconv.Itoa(int(lo))
	if q.addr == aqPortrange {
		text = pfx + "portrange " + strconv.Itoa(int(lo)) + "-" + strconv.Itoa(int(hi))
	}
	return &prim{kind: pkPort, fam: famV4 | famV6, dir: dir, protos: protos, k: lo, k2: hi, text: text}
}

// portRange reads "A-B", each end a number or a service name.
func portRange(s string) (lo, hi uint32, ok bool) {
	one := func(w string) (uint32, bool) {
		if v, isNum, err := parseNum(w); isNum {
			return v, err == "" && v <= 65535
		}
		sv, ok := filterServices[w]
		return uint32(sv.port), ok
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '-' {
			continue
		}
		a, okA := one(s[:i])
		b, okB := one(s[i+1:])
		if okA && okB {
			if a > b {
				a, b = b, a
			}
			return a, b, true
		}
	}
	return 0, 0, false
}

func (p *parser) protoValue(t token, q qual) bnode {
	var fam uint8
	switch q.proto {
	case qDefault:
		fam = famV4 | famV6
	case pqIP:
		fam = famV4
	case pqIP6:
		fam = famV6
	default:
		p.fail(t.pos, true, "%q qualifier not valid with proto", pqText[q.proto])
	}
	var v uint32
	switch t.kind {
	case tNum:
		if t.num > 255 {
			p.fail(t.pos, true, "protocol number %d greater than 255", t.num)
		}
		v = t.num
	case tID:
		n, ok := protoNames[t.text]
		if !ok {
			p.fail(t.pos, true, "unknown protocol %q", t.text)
		}
		v = uint32(n)
	default:
		p.fail(t.pos, true, "\"proto\" modifier applied to address %s", t.text)
	}
	return &prim{kind: pkProto, fam: fam, proto: uint8(v),
		text: qual{proto: q.proto}.prefix() + "proto " + strconv.Itoa(int(v))}
}

// parseRelation parses arith relop arith.
func (p *parser) parseRelation() bnode {
	start := p.peek().pos
	a := p.parseArith(0)
	t := p.peek()
	if !isRelop(t) {
		if t.kind == tEOF {
			p.fail(t.pos, false, "syntax error: expected a comparison, found end of expression")
		}
		if t.kind == tUnsup {
			p.unexpected(t)
		}
		p.fail(t.pos, false, "syntax error: expected a comparison, found %q", t.text)
	}
	p.next()
	b := p.parseArith(0)
	p.q = qual{}
	r := &relNode{a: a, b: b, pos: start}
	switch t.text {
	case "=", "==":
		r.op = relEQ
	case "!=":
		r.op = relNE
	case "<":
		r.op = relLT
	case "<=":
		r.op = relLE
	case ">":
		r.op = relGT
	case ">=":
		r.op = relGE
	}
	return r
}

// parseArith parses binary operators binding at least as strongly as min.
func (p *parser) parseArith(min int) arith {
	p.enter()
	defer p.leave()
	x := p.parsePrimary()
	for {
		t := p.peek()
		if !isBinop(t) || t.text == "^" {
			return x
		}
		op := binByText[t.text]
		prec := binPrec[op]
		if prec < min {
			return x
		}
		p.next()
		y := p.parseArith(prec + 1)
		x = p.mkBin(op, x, y, t.pos)
	}
}

// parsePrimary parses an operand. "^" has no precedence in libpcap's
// grammar, so yacc always shifts it: its left operand is the operand just
// read and its right operand all the rest (a & b ^ c | d is a & (b ^ (c | d))).
func (p *parser) parsePrimary() arith {
	t := p.peek()
	var x arith
	switch {
	case t.kind == tNum:
		p.next()
		x = &aConst{v: t.num, text: t.text}
	case isKW(t, "len"):
		p.next()
		x = &aLen{}
	case isPunct(t, "-"):
		p.next()
		p.enter()
		defer p.leave()
		return &aNeg{p.parsePrimary()} // the operand already took any "^"
	case isPunct(t, "("):
		p.next()
		x = p.parseArith(0)
		p.expect(")")
	case t.kind == tKW && pqNames[t.text] != 0 && isPunct(p.peekAt(1), "["):
		p.next()
		p.next()
		ld := &aLoad{pq: pqNames[t.text], size: 1}
		ld.idx = p.parseArith(0)
		if isPunct(p.peek(), ":") {
			p.next()
			n := p.peek()
			if n.kind != tNum {
				p.fail(n.pos, false, "syntax error: expected 1, 2 or 4 after \":\"")
			}
			p.next()
			if n.num != 1 && n.num != 2 && n.num != 4 {
				p.fail(n.pos, true, "data size must be 1, 2, or 4")
			}
			ld.size = uint8(n.num)
		}
		p.expect("]")
		x = ld
	case t.kind == tUnsup || t.kind == tEOF || t.kind == tMAC:
		p.unexpected(t)
	default:
		p.fail(t.pos, false, "syntax error: expected a number, found %q", t.text)
	}
	if t := p.peek(); isPunct(t, "^") {
		p.next()
		y := p.parseArith(0)
		x = p.mkBin(opXor, x, y, t.pos)
	}
	return x
}

// expect consumes the punctuation s, or fails.
func (p *parser) expect(s string) {
	t := p.peek()
	if !isPunct(t, s) {
		p.unexpected(t)
	}
	p.next()
}

func (p *parser) mkBin(op uint8, a, b arith, pos int) arith {
	if c, ok := b.(*aConst); ok {
		switch {
		case op == opDiv && c.v == 0:
			p.fail(pos, true, "division by zero")
		case op == opMod && c.v == 0:
			p.fail(pos, true, "modulus by zero")
		case (op == opShl || op == opShr) && c.v > 31:
			p.fail(pos, true, "shift by more than 31 bits")
		}
	}
	return &aBin{op: op, a: a, b: b, pos: pos}
}

// ---------------------------------------------------------------------------
// Compiler: the tree becomes a flat program of tests that jump to their true
// or false successor, and stack arithmetic for relations.

type opcode uint8

const (
	opFam    opcode = iota // c.fam & a != 0
	opProto                // fam & a and proto == b
	opHost4                // dir a; address k, mask k2
	opHost6                // dir a; address and mask in v6
	opPortR                // fam a, protocols b, dir c; range k..k2
	opVLAN                 // id k, or anyVLAN
	opWireLE               // wire length <= k
	opWireGE               // wire length >= k
	opNeed                 // accessor precondition: fam a, proto b if c&needProto, L4 if c&needL4
	opCmp                  // pop y, x; x relop(a) y
	opConst                // push k
	opLen                  // push the wire length
	opLoad                 // pop index; push the a-byte value at base(b)+index
	opLoadK                // push the a-byte value at base(b)+k
	opBin                  // pop y, x; push x op(a) y
	opNeg                  // negate the top
)

const (
	needProto = 1
	needL4    = 2
)

const (
	baseL3 = 0
	baseL4 = 1
)

const maxStack = 16

type insn struct {
	op      opcode
	a, b, c uint8
	k, k2   uint32
	jt, jf  int32
	v6      [4]uint64
}

const (
	labelAccept = -1
	labelReject = -2
)

type compiler struct {
	expr   string
	prog   []insn
	labels []int32 // label -> position
	fixups []int   // instructions whose jt/jf are labels
}

func (c *compiler) newLabel() int32 {
	c.labels = append(c.labels, -1)
	return int32(len(c.labels) - 1)
}

func (c *compiler) place(l int32) { c.labels[l] = int32(len(c.prog)) }

func (c *compiler) emit(in insn) { c.prog = append(c.prog, in) }

func (c *compiler) emitTest(in insn, t, f int32) {
	in.jt, in.jf = t, f
	c.fixups = append(c.fixups, len(c.prog))
	c.prog = append(c.prog, in)
}

func (c *compiler) compileAll(root bnode) (err *FilterError) {
	defer func() {
		if r := recover(); r != nil {
			if fe, ok := r.(*FilterError); ok {
				err = fe
				return
			}
			panic(r)
		}
	}()
	c.bool(root, labelAccept, labelReject)
	end := int32(len(c.prog))
	resolve := func(l int32) int32 {
		switch l {
		case labelAccept:
			return end
		case labelReject:
			return end + 1
		}
		return c.labels[l]
	}
	for _, i := range c.fixups {
		c.prog[i].jt = resolve(c.prog[i].jt)
		c.prog[i].jf = resolve(c.prog[i].jf)
	}
	return nil
}

func (c *compiler) bool(n bnode, t, f int32) {
	switch n := n.(type) {
	case *andNode:
		mid := c.newLabel()
		c.bool(n.l, mid, f)
		c.place(mid)
		c.bool(n.r, t, f)
	case *orNode:
		mid := c.newLabel()
		c.bool(n.l, t, mid)
		c.place(mid)
		c.bool(n.r, t, f)
	case *notNode:
		c.bool(n.x, f, t)
	case *prim:
		c.prim(n, t, f)
	case *relNode:
		c.rel(n, t, f)
	default:
		panic("unreachable")
	}
}

func (c *compiler) prim(p *prim, t, f int32) {
	var in insn
	switch p.kind {
	case pkFam:
		in = insn{op: opFam, a: p.fam}
	case pkProto:
		in = insn{op: opProto, a: p.fam, b: p.proto}
	case pkHost4:
		in = insn{op: opHost4, a: p.dir, k: p.k, k2: p.k2}
	case pkHost6:
		in = insn{op: opHost6, a: p.dir, v6: p.a6}
	case pkPort:
		in = insn{op: opPortR, a: p.fam, b: p.protos, c: p.dir, k: p.k, k2: p.k2}
	case pkVLAN:
		in = insn{op: opVLAN, k: p.k}
	case pkLess:
		in = insn{op: opWireLE, k: p.k}
	case pkGreater:
		in = insn{op: opWireGE, k: p.k}
	}
	c.emitTest(in, t, f)
}

func (c *compiler) rel(r *relNode, t, f int32) {
	// The headers the accessors index must be there; if not, the relation
	// is false (as libpcap's protocol checks, which come first).
	var seen [len(pqText)]bool
	var needs func(e arith)
	needs = func(e arith) {
		switch e := e.(type) {
		case *aLoad:
			if !seen[e.pq] {
				seen[e.pq] = true
				info := pqInfos[e.pq]
				in := insn{op: opNeed, a: info.fam}
				if !info.any {
					in.b, in.c = info.proto, needProto|needL4
				}
				next := c.newLabel()
				c.emitTest(in, next, f)
				c.place(next)
			}
			needs(e.idx)
		case *aBin:
			needs(e.a)
			needs(e.b)
		case *aNeg:
			needs(e.x)
		}
	}
	needs(r.a)
	needs(r.b)
	if d := max(depth(r.a), 1+depth(r.b)); d > maxStack {
		panic(&FilterError{Expr: c.expr, Offset: r.pos, Msg: "arithmetic expression too complex", fatal: true})
	}
	c.arith(r.a)
	c.arith(r.b)
	c.emitTest(insn{op: opCmp, a: r.op}, t, f)
}

// depth is the stack an expression needs.
func depth(e arith) int {
	if _, ok := constValue(e); ok {
		return 1
	}
	switch e := e.(type) {
	case *aLoad:
		if _, ok := constValue(e.idx); ok {
			return 1
		}
		return depth(e.idx)
	case *aBin:
		return max(depth(e.a), 1+depth(e.b))
	case *aNeg:
		return depth(e.x)
	}
	return 1
}

// constValue folds constant subexpressions.
func constValue(e arith) (uint32, bool) {
	switch e := e.(type) {
	case *aConst:
		return e.v, true
	case *aNeg:
		if v, ok := constValue(e.x); ok {
			return -v, true
		}
	case *aBin:
		x, okx := constValue(e.a)
		y, oky := constValue(e.b)
		if okx && oky {
			if (e.op == opDiv || e.op == opMod) && y == 0 {
				return 0, false // reported by the compiler
			}
			return binop(e.op, x, y), true
		}
	}
	return 0, false
}

func (c *compiler) arith(e arith) {
	if v, ok := constValue(e); ok {
		c.emit(insn{op: opConst, k: v})
		return
	}
	switch e := e.(type) {
	case *aLen:
		c.emit(insn{op: opLen})
	case *aLoad:
		base := uint8(baseL4)
		if pqInfos[e.pq].any {
			base = baseL3
		}
		if v, ok := constValue(e.idx); ok {
			c.emit(insn{op: opLoadK, a: e.size, b: base, k: v})
			return
		}
		c.arith(e.idx)
		c.emit(insn{op: opLoad, a: e.size, b: base})
	case *aNeg:
		c.arith(e.x)
		c.emit(insn{op: opNeg})
	case *aBin:
		if y, ok := constValue(e.b); ok {
			switch {
			case (e.op == opDiv || e.op == opMod) && y == 0:
				panic(&FilterError{Expr: c.expr, Offset: e.pos, Msg: "division by zero", fatal: true})
			case (e.op == opShl || e.op == opShr) && y > 31:
				panic(&FilterError{Expr: c.expr, Offset: e.pos, Msg: "shift by more than 31 bits", fatal: true})
			}
		}
		c.arith(e.a)
		c.arith(e.b)
		c.emit(insn{op: opBin, a: e.op})
	default:
		panic("unreachable")
	}
}

func binop(op uint8, x, y uint32) uint32 {
	switch op {
	case opAdd:
		return x + y
	case opSub:
		return x - y
	case opMul:
		return x * y
	case opDiv:
		return x / y
	case opMod:
		return x % y
	case opAnd:
		return x & y
	case opOr:
		return x | y
	case opXor:
		return x ^ y
	case opShl:
		return x << y // 0 from 32 on, as libpcap's bpf_filter
	case opShr:
		return x >> y
	}
	return 0
}

// ---------------------------------------------------------------------------
// Evaluation

// pktCtx is what the tests need of one frame, worked out as they ask.
type pktCtx struct {
	d     *Decoded
	frame []byte
	wire  int
	fam   uint8 // famV4, famV6 or 0 (no IP header decoded)
	proto uint8
	l3    int

	l4State   uint8 // 0 not worked out, 1 known, 2 none (fragment, or no IP)
	portState uint8
	l4        int
	sport     uint16
	dport     uint16
}

func (c *pktCtx) init(d *Decoded, frame []byte, wire int) {
	c.d, c.frame, c.wire = d, frame, wire
	// Decode resets *d, so all-zero IP fields with L3Off 0 mean no IP header
	// (L3Off is 0 for a real header only on raw-IP link types).
	if d.L3Off == 0 && d.Src == [16]byte{} && d.Dst == [16]byte{} && d.Proto == 0 && d.TTL == 0 && !d.IPv6 {
		return
	}
	l3 := int(d.L3Off)
	if l3 >= len(frame) {
		return
	}
	switch frame[l3] >> 4 {
	case 4:
		if l3+20 <= len(frame) {
			c.fam, c.l3, c.proto = famV4, l3, frame[l3+9]
		}
	case 6:
		if l3+40 <= len(frame) {
			c.fam, c.l3, c.proto = famV6, l3, d.Proto
		}
	}
}

// l4Off is the offset of the header after the innermost IP header, if the
// packet has one (not an IPv4 non-first fragment nor an IPv6 fragment).
func (c *pktCtx) l4Off() (int, bool) {
	if c.l4State == 0 {
		c.l4State = 2
		b := c.frame
		switch c.fam {
		case famV4:
			if binary.BigEndian.Uint16(b[c.l3+6:])&0x1fff == 0 {
				c.l4, c.l4State = c.l3+int(b[c.l3]&0x0f)*4, 1
			}
		case famV6:
			switch c.d.Kind {
			case KindTCP, KindICMPUnreach:
				c.l4, c.l4State = int(c.d.L4Off), 1
			case KindFragment:
			default:
				if off, ok := ip6Payload(b, c.l3); ok {
					c.l4, c.l4State = off, 1
				}
			}
		}
		if c.l4 < 0 {
			c.l4State = 2
		}
	}
	return c.l4, c.l4State == 1
}

// ip6Payload walks the extension headers Decode skips.
func ip6Payload(b []byte, l3 int) (int, bool) {
	nh, p := b[l3+6], l3+40
	for i := 0; i <= maxEncap; i++ {
		switch nh {
		case 0, 43, 60, 135, 139, 140:
			if len(b) < p+8 {
				return 0, false
			}
			nh, p = b[p], p+(int(b[p+1])+1)*8
		case 51:
			if len(b) < p+8 {
				return 0, false
			}
			nh, p = b[p], p+(int(b[p+1])+2)*4
		case 44:
			if len(b) < p+8 || binary.BigEndian.Uint16(b[p+2:])&0xfff9 != 0 {
				return 0, false
			}
			nh, p = b[p], p+8
		default:
			return p, true
		}
	}
	return 0, false
}

func (c *pktCtx) ports() bool {
	if c.portState == 0 {
		c.portState = 2
		if protoBit(c.proto) != 0 {
			if off, ok := c.l4Off(); ok && off+4 <= len(c.frame) {
				c.sport = binary.BigEndian.Uint16(c.frame[off:])
				c.dport = binary.BigEndian.Uint16(c.frame[off+2:])
				c.portState = 1
			}
		}
	}
	return c.portState == 1
}

func dirMatch(dir uint8, s, d bool) bool {
	switch dir {
	case dirSrc:
		return s
	case dirDst:
		return d
	case dirAnd:
		return s && d
	}
	return s || d
}

// MatchLen is Match with the frame's length on the wire, for less, greater
// and len (a wireLen below len(frame) counts as len(frame)).
func (f *Filter) MatchLen(d *Decoded, frame []byte, wireLen int) bool {
	if f == nil {
		return true
	}
	if wireLen < len(frame) {
		wireLen = len(frame)
	}
	var c pktCtx
	c.init(d, frame, wireLen)
	var st [maxStack]uint32
	sp := 0
	prog := f.prog
	pc := 0
	for pc < len(prog) {
		in := &prog[pc]
		var ok bool
		switch in.op {
		case opFam:
			ok = c.fam&in.a != 0
		case opProto:
			ok = c.fam&in.a != 0 && c.proto == in.b
		case opHost4:
			if c.fam == famV4 {
				s := binary.BigEndian.Uint32(frame[c.l3+12:])&in.k2 == in.k
				t := binary.BigEndian.Uint32(frame[c.l3+16:])&in.k2 == in.k
				ok = dirMatch(in.a, s, t)
			}
		case opHost6:
			if c.fam == famV6 {
				b := frame[c.l3:]
				s := binary.BigEndian.Uint64(b[8:])&in.v6[2] == in.v6[0] &&
					binary.BigEndian.Uint64(b[16:])&in.v6[3] == in.v6[1]
				t := binary.BigEndian.Uint64(b[24:])&in.v6[2] == in.v6[0] &&
					binary.BigEndian.Uint64(b[32:])&in.v6[3] == in.v6[1]
				ok = dirMatch(in.a, s, t)
			}
		case opPortR:
			if c.fam&in.a != 0 && protoBit(c.proto)&in.b != 0 && c.ports() {
				s := uint32(c.sport) >= in.k && uint32(c.sport) <= in.k2
				t := uint32(c.dport) >= in.k && uint32(c.dport) <= in.k2
				ok = dirMatch(in.c, s, t)
			}
		case opVLAN:
			n := int(d.NVLAN)
			if in.k == anyVLAN {
				ok = n > 0
			} else {
				for i := 0; i < n && i < len(d.VLAN); i++ {
					if uint32(d.VLAN[i]) == in.k {
						ok = true
					}
				}
			}
		case opWireLE:
			ok = uint64(wireLen) <= uint64(in.k)
		case opWireGE:
			ok = uint64(wireLen) >= uint64(in.k)
		case opNeed:
			ok = c.fam&in.a != 0
			if ok && in.c&needProto != 0 {
				ok = c.proto == in.b
			}
			if ok && in.c&needL4 != 0 {
				_, ok = c.l4Off()
			}
		case opCmp:
			x, y := st[sp-2], st[sp-1]
			sp -= 2
			switch in.a {
			case relEQ:
				ok = x == y
			case relNE:
				ok = x != y
			case relLT:
				ok = x < y
			case relLE:
				ok = x <= y
			case relGT:
				ok = x > y
			case relGE:
				ok = x >= y
			}
		case opConst:
			st[sp] = in.k
			sp++
			pc++
			continue
		case opLen:
			st[sp] = uint32(wireLen)
			sp++
			pc++
			continue
		case opLoad, opLoadK:
			idx := in.k
			if in.op == opLoad {
				sp--
				idx = st[sp]
			}
			base := c.l3
			if in.b == baseL4 {
				base = c.l4
			}
			off := uint64(base) + uint64(idx)
			if off+uint64(in.a) > uint64(len(frame)) {
				return false // out of the captured bytes: BPF rejects the packet
			}
			var v uint32
			switch in.a {
			case 1:
				v = uint32(frame[off])
			case 2:
				v = uint32(binary.BigEndian.Uint16(frame[off:]))
			default:
				v = binary.BigEndian.Uint32(frame[off:])
			}
			st[sp] = v
			sp++
			pc++
			continue
		case opBin:
			x, y := st[sp-2], st[sp-1]
			sp--
			if (in.a == opDiv || in.a == opMod) && y == 0 {
				return false // as BPF: division by zero rejects the packet
			}
			st[sp-1] = binop(in.a, x, y)
			pc++
			continue
		case opNeg:
			st[sp-1] = -st[sp-1]
			pc++
			continue
		}
		if ok {
			pc = int(in.jt)
		} else {
			pc = int(in.jf)
		}
	}
	return pc == len(prog)
}
