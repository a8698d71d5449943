package capture

// Parsers of the /proc/net text files a kernel sample reads. They are pure:
// the namespace plumbing, the sock_diag query and the sampler are in
// kstate_linux.go.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/synscope/synscope/internal/kevent"
)

// keyInterner turns "prefix" + "." + "name" into a string, allocating each
// distinct key once: successive samples of a namespace read the same few
// hundred names.
type keyInterner struct {
	keys    map[string]string
	scratch []byte
}

func (ki *keyInterner) key(prefix, name []byte) string {
	ki.scratch = append(append(append(ki.scratch[:0], prefix...), '.'), name...)
	return ki.whole(ki.scratch)
}

func (ki *keyInterner) whole(name []byte) string {
	if s, ok := ki.keys[string(name)]; ok {
		return s
	}
	if ki.keys == nil {
		ki.keys = make(map[string]string, 512)
	}
	s := string(name)
	ki.keys[s] = s
	return s
}

func countFields(b []byte) (n int) {
	for f, rest := nextField(b); f != nil; f, rest = nextField(rest) {
		n++
	}
	return n
}

// parseUintBytes parses a decimal unsigned integer. ok is false for anything
// else, negative numbers included.
func parseUintBytes(b []byte) (v uint64, ok bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (^uint64(0)-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// parseCounterPairs adds to m the counters of /proc/net/netstat or
// /proc/net/snmp: lines come in pairs, "TcpExt: Name1 Name2 ..." then
// "TcpExt: 1 2 ...", and each becomes m["TcpExt.Name1"] = 1, ...
//
// Negative values are skipped, not clamped: the only ones the kernel prints
// are limits, not counters (Tcp.MaxConn is -1, RFC 2012's "dynamic"), and a
// 0 in their place would be a false reading. Problems (a value line with a
// different number of fields than its header, a line without its pair) are
// returned as messages for Sample.Missing; the fields that can be paired are
// kept.
func (ki *keyInterner) parseCounterPairs(file string, data []byte, m map[string]uint64) (problems []string) {
	var hdrPrefix, hdr []byte
	for len(data) > 0 {
		var line []byte
		line, data = nextLine(data)
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			continue
		}
		prefix, rest := line[:colon], line[colon+1:]
		if hdr == nil || !bytes.Equal(prefix, hdrPrefix) {
			if hdr != nil {
				problems = append(problems, fmt.Sprintf("%s: %s: names without values", file, hdrPrefix))
			}
			hdrPrefix, hdr = prefix, rest
			continue
		}
		names, values := hdr, rest
		hdr = nil
		if nn, nv := countFields(names), countFields(values); nn != nv {
			problems = append(problems, fmt.Sprintf("%s: %s: %d names but %d values", file, prefix, nn, nv))
		}
		for {
			var name, val []byte
			name, names = nextField(names)
			val, values = nextField(values)
			if name == nil || val == nil {
				break
			}
			if v, ok := parseUintBytes(val); ok {
				m[ki.key(prefix, name)] = v
			}
		}
	}
	if hdr != nil {
		problems = append(problems, fmt.Sprintf("%s: %s: names without values", file, hdrPrefix))
	}
	return problems
}

// nextField returns the first space-separated field of b and what follows;
// nil when there is none.
func nextField(b []byte) (field, rest []byte) {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	if i == len(b) {
		return nil, nil
	}
	j := i
	for j < len(b) && b[j] != ' ' && b[j] != '\t' && b[j] != '\r' {
		j++
	}
	return b[i:j], b[j:]
}

// parseSnmp6 adds to m the counters of /proc/net/snmp6, "name value" lines.
// Its names carry their group glued on ("Ip6InReceives", "Icmp6OutType133",
// "UdpLite6InErrors"); the key splits them after the first '6' so that they
// read like the IPv4 ones: "Ip6.InReceives", "Icmp6.OutType133",
// "UdpLite6.InErrors". A name without a '6' is kept whole.
func (ki *keyInterner) parseSnmp6(data []byte, m map[string]uint64) {
	for len(data) > 0 {
		var line []byte
		line, data = nextLine(data)
		name, rest := nextField(line)
		val, _ := nextField(rest)
		if name == nil || val == nil {
			continue
		}
		v, ok := parseUintBytes(val)
		if !ok {
			continue
		}
		if i := bytes.IndexByte(name, '6'); i > 0 && i+1 < len(name) {
			m[ki.key(name[:i+1], name[i+1:])] = v
		} else {
			m[ki.whole(name)] = v
		}
	}
}

// tcpListen is TCP_LISTEN, the socket state of listeners.
const tcpListen = 10

// parseProcTCP appends the listeners of /proc/net/tcp or /proc/net/tcp6.
// For a listener, rx_queue is the accept queue's depth (sk_ack_backlog);
// the file does not show the backlog (tx_queue is write_seq - snd_una, 0 for
// a listener), so Backlog is left 0.
func parseProcTCP(data []byte, v6 bool, out []kevent.Listener) ([]kevent.Listener, error) {
	first := true
	for len(data) > 0 {
		var line []byte
		line, data = nextLine(data)
		if first { // the header
			first = false
			continue
		}
		_, rest := nextField(line) // "sl:"
		local, rest := nextField(rest)
		_, rest = nextField(rest) // remote
		st, rest := nextField(rest)
		queues, _ := nextField(rest)
		if queues == nil {
			continue
		}
		if s, ok := parseHex(st); !ok || s != tcpListen {
			continue
		}
		ap, err := parseProcAddr(local, v6)
		if err != nil {
			return out, err
		}
		colon := bytes.IndexByte(queues, ':')
		if colon < 0 {
			return out, fmt.Errorf("bad queues %q", queues)
		}
		rx, ok := parseHex(queues[colon+1:])
		if !ok || rx > 0xffffffff {
			return out, fmt.Errorf("bad queues %q", queues)
		}
		out = append(out, kevent.Listener{Addr: ap, Queue: uint32(rx)})
	}
	return out, nil
}

func parseHex(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint64(c)
	}
	return v, true
}

// parseProcAddr reads "0100007F:0016": the address as the kernel prints it,
// 32-bit words of network-order bytes loaded as host-order integers, and the
// port in host order.
func parseProcAddr(b []byte, v6 bool) (netip.AddrPort, error) {
	colon := bytes.IndexByte(b, ':')
	n := 8
	if v6 {
		n = 32
	}
	if colon != n || len(b) != n+5 {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", b)
	}
	var a [16]byte
	for w := 0; w < n/8; w++ {
		x, ok := parseHex(b[w*8 : w*8+8])
		if !ok {
			return netip.AddrPort{}, fmt.Errorf("bad address %q", b)
		}
		binary.NativeEndian.PutUint32(a[w*4:], uint32(x))
	}
	port, ok := parseHex(b[colon+1:])
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", b)
	}
	addr := netip.AddrFrom16(a)
	if !v6 {
		addr = netip.AddrFrom4([4]byte(a[:4]))
	}
	return netip.AddrPortFrom(addr, uint16(port)), nil
}

// nextLine splits off data's first line (without its newline).
func nextLine(data []byte) (line, rest []byte) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return data[:i], data[i+1:]
	}
	return data, nil
}
