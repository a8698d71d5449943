package analyze

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

func TestFilterParse(t *testing.T) {
	tests := []struct{ expr, want string }{
		{"port 80", "port 80"},
		{"  tcp  ", "tcp"},
		{"port 80 or 443", "port 80 or port 443"},
		{"tcp port 80 or 443", "tcp port 80 or tcp port 443"},
		{"host 10.0.0.1 or 10.0.0.2", "host 10.0.0.1 or host 10.0.0.2"},
		{"src host 10.0.0.1 or 10.0.0.2", "src host 10.0.0.1 or src host 10.0.0.2"},
		{"host 10.0.0.1 and not 10.0.0.2", "host 10.0.0.1 and not host 10.0.0.2"},
		{"host 10.0.0.1 and (10.0.0.2 or 10.0.0.3)", "host 10.0.0.1 and (host 10.0.0.2 or host 10.0.0.3)"},
		{"host (10.0.0.2 or 10.0.0.3)", "host 10.0.0.2 or host 10.0.0.3"},
		{"host not 10.0.0.2", "not host 10.0.0.2"},
		{"port 80 and (443)", "port 80 and port 443"},
		// As libpcap: after a parenthesis the qualifiers from before it.
		{"port 80 and (host 1.2.3.4) or 443", "(port 80 and host 1.2.3.4) or port 443"},
		{"not port 80 or 443", "not port 80 or port 443"},
		{"src 10.0.0.1", "src host 10.0.0.1"},
		{"ip src 10.0.0.1", "ip src host 10.0.0.1"},
		{"ip6 dst 2001:db8::1", "ip6 dst host 2001:db8::1"},
		{"src or dst host 10.0.0.1", "src or dst host 10.0.0.1"},
		{"dst or src host 10.0.0.1", "src or dst host 10.0.0.1"},
		{"src and dst net 10", "src and dst net 10.0.0.0/8"},
		{"src || dst port 22", "src or dst port 22"},
		{"host 10", "host 0.0.0.10"},
		{"host 10.1", "host 10.1"},
		{"host 167772161", "host 10.0.0.1"},
		{"host ::ffff:10.0.0.1", "host ::ffff:10.0.0.1"},
		{"host 2001:DB8::1", "host 2001:db8::1"},
		{"net 10", "net 10.0.0.0/8"},
		{"net 172.16", "net 172.16.0.0/16"},
		{"net 192.168.1", "net 192.168.1.0/24"},
		{"net 10.0.0.1", "net 10.0.0.1/32"},
		{"net 0", "net 0.0.0.0/32"},
		{"net 10.1/16", "net 10.1.0.0/16"},
		{"net 0.0.0.0/0", "net 0.0.0.0/0"},
		{"net 10.0.0.0 mask 255.0.0.0", "net 10.0.0.0/8"},
		{"net 10.0.0.0 mask 255.0.0.255", "net 10.0.0.0 mask 255.0.0.255"},
		{"net 2001:db8::/32", "net 2001:db8::/32"},
		{"ip6 net 2001:db8::", "ip6 net 2001:db8::/128"},
		{"port http", "tcp port 80"},
		{"port domain or dns", "port 53 or port 53"},
		{"udp port domain", "udp port 53"},
		{"tcp src port 1024", "tcp src port 1024"},
		{"port 0x50", "port 80"},
		{"port 0120", "port 80"},
		{"portrange 1000-2000", "portrange 1000-2000"},
		{"portrange 2000-1000", "portrange 1000-2000"},
		{"portrange http-https", "portrange 80-443"},
		{"portrange ftp-data-ssh", "portrange 20-22"},
		{"portrange 80", "portrange 80-80"},
		{"tcp dst portrange 1-1023", "tcp dst portrange 1-1023"},
		{"ip proto 6", "ip proto 6"},
		{"ip proto \\tcp", "ip proto 6"},
		{"ip6 proto \\ipv6-icmp", "ip6 proto 58"},
		{"proto \\udp", "proto 17"},
		{"ip or ip6 or tcp or udp or sctp or icmp or icmp6", "ip or ip6 or tcp or udp or sctp or icmp or icmp6"},
		{"igmp or pim or vrrp or carp", "igmp or pim or vrrp or carp"},
		{"vlan", "vlan"},
		{"vlan 100 and port 80", "vlan 100 and port 80"},
		{"less 100 or greater 0x200", "less 100 or greater 512"},
		{"tcp and port 80 or udp", "(tcp and port 80) or udp"},
		{"tcp and (port 80 or udp)", "tcp and (port 80 or udp)"},
		{"not not tcp", "not not tcp"},
		{"!tcp && !udp || icmp", "(not tcp and not udp) or icmp"},
		{"not (tcp or udp)", "not (tcp or udp)"},
		{"((((port 80))))", "port 80"},
		{"tcp[13] & 2 != 0", "tcp[13] & 2 != 0"},
		{"tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn", "tcp[tcpflags] & (tcp-syn | tcp-ack) == tcp-syn"},
		{"(tcp[13] & 2) != 0", "tcp[13] & 2 != 0"},
		{"((tcp[13]) & 2) != 0 and port 80", "tcp[13] & 2 != 0 and port 80"},
		{"(tcp[13] & 2 != 0 and port 80)", "tcp[13] & 2 != 0 and port 80"},
		{"ip[8] < 64", "ip[8] < 64"},
		{"ip6[6] = 6", "ip6[6] == 6"},
		{"tcp[0:2] > 1024", "tcp[0:2] > 1024"},
		{"tcp[((tcp[12]&0xf0)>>2):4] = 0x47455420", "tcp[(tcp[12] & 0xf0) >> 2:4] == 0x47455420"},
		{"icmp[icmptype] = icmp-echo", "icmp[icmptype] == icmp-echo"},
		{"icmp6[icmp6type] = icmp6-neighborsolicit", "icmp6[icmp6type] == icmp6-neighborsolicit"},
		{"1 + 2 * 3 = 7", "1 + (2 * 3) == 7"},
		{"len - 1 > 5", "len - 1 > 5"},
		{"ip[0] - 1 - 1 = 3", "(ip[0] - 1) - 1 == 3"},
		{"ip[0] & 0xf << 2 = 20", "ip[0] & (0xf << 2) == 20"},
		{"ip[0] | 1 & 2 = 0", "ip[0] | (1 & 2) == 0"},
		// "^" takes the operand before it and all the rest, as in libpcap.
		{"ip[0] ^ 1 | 2 = 0", "ip[0] ^ (1 | 2) == 0"},
		{"ip[0] & 1 ^ 2 = 0", "ip[0] & (1 ^ 2) == 0"},
		{"ip[0] << 1 ^ 2 = 0", "ip[0] << (1 ^ 2) == 0"},
		{"- ip[0] ^ 1 = 2", "-(ip[0] ^ 1) == 2"},
		{"-ip[8] + 256 = 192", "-ip[8] + 256 == 192"},
		{"(-ip[8]) ^ 3 = 1", "(-ip[8]) ^ 3 == 1"},
		{"- - ip[8] = 1", "--ip[8] == 1"},
		{"1 = 1", "1 == 1"},
		{"port 80 and 443 - 1 = 442", "port 80 and 443 - 1 == 442"},
		{"ip[-1] = 0", "ip[-1] == 0"},
	}
	for _, tt := range tests {
		f, err := CompileFilter(tt.expr)
		if err != nil {
			t.Errorf("CompileFilter(%q): %v", tt.expr, err)
			continue
		}
		if got := f.String(); got != tt.want {
			t.Errorf("CompileFilter(%q).String() = %q, want %q", tt.expr, got, tt.want)
			continue
		}
		// The canonical form compiles to itself.
		g, err := CompileFilter(f.String())
		if err != nil {
			t.Errorf("CompileFilter(%q) (canonical of %q): %v", f.String(), tt.expr, err)
		} else if g.String() != f.String() {
			t.Errorf("canonical %q recompiles as %q", f.String(), g.String())
		}
	}
}

func TestFilterEmpty(t *testing.T) {
	for _, e := range []string{"", " ", "\t\n "} {
		f, err := CompileFilter(e)
		if f != nil || err != nil {
			t.Errorf("CompileFilter(%q) = %v, %v; want nil, nil", e, f, err)
		}
	}
	var f *Filter
	if !f.Match(&Decoded{}, nil) || !f.MatchLen(&Decoded{}, nil, 10) || f.String() != "" {
		t.Error("a nil filter must match everything and print as \"\"")
	}
}

func TestFilterErrors(t *testing.T) {
	tests := []struct{ expr, want string }{
		{"port 80 and ether host x", `filter "port 80 and ether host x": unsupported primitive "ether" at offset 12`},
		{"arp", `filter "arp": unsupported primitive "arp" at offset 0`},
		{"gateway 10.0.0.1", `filter "gateway 10.0.0.1": unsupported primitive "gateway" at offset 0`},
		{"ip broadcast", `filter "ip broadcast": unsupported primitive "broadcast" at offset 3`},
		{"tcp and (ether[0] = 1)", `filter "tcp and (ether[0] = 1)": unsupported primitive "ether" at offset 9`},
		{"host 00:11:22:33:44:55", `filter "host 00:11:22:33:44:55": unsupported primitive: Ethernet address "00:11:22:33:44:55" at offset 5`},
		{"mpls and tcp", `filter "mpls and tcp": unsupported primitive "mpls" at offset 0`},
		{"port", `filter "port": syntax error: expected a port, found end of expression at offset 4`},
		{"host and tcp", `filter "host and tcp": syntax error: expected an address, found "and" at offset 5`},
		{"port 80 and", `filter "port 80 and": syntax error: unexpected end of expression at offset 11`},
		{"port 80 80", `filter "port 80 80": syntax error: unexpected "80" at offset 8`},
		{"port 80)", `filter "port 80)": syntax error: unexpected ")" at offset 7`},
		{"(port 80", `filter "(port 80": syntax error: unexpected end of expression at offset 8`},
		{"(", `filter "(": syntax error: unexpected end of expression at offset 1`},
		{"10.0.0.1", `filter "10.0.0.1": syntax error: "10.0.0.1" needs a qualifier such as host, net or port at offset 0`},
		{"tcp or 80", `filter "tcp or 80": syntax error: "80" needs a qualifier such as host, net or port at offset 7`},
		{"(port 80) or 443", `filter "(port 80) or 443": syntax error: "443" needs a qualifier such as host, net or port at offset 13`},
		{"port 65536", `filter "port 65536": port number 65536 greater than 65535 at offset 5`},
		{"port 09", `filter "port 09": number 09 contains non-octal digit at offset 5`},
		{"port 99999999999", `filter "port 99999999999": number 99999999999 does not fit in 32 bits at offset 5`},
		{"port foo", `filter "port foo": unknown port "foo" at offset 5`},
		{"udp port http", `filter "udp port http": port "http" is not a udp port at offset 9`},
		{"port 1.2.3.4", `filter "port 1.2.3.4": "port" modifier applied to address 1.2.3.4 at offset 5`},
		{"portrange 1-x", `filter "portrange 1-x": invalid port range "1-x" at offset 10`},
		{"ip port 80", `filter "ip port 80": "ip" qualifier not valid with port at offset 8`},
		{"icmp port 80", `filter "icmp port 80": "icmp" qualifier not valid with port at offset 10`},
		{"host www.example.com", `filter "host www.example.com": host names are not supported: "www.example.com" (use an address) at offset 5`},
		{"net loopback", `filter "net loopback": network names are not supported: "loopback" (use an address) at offset 4`},
		{"host 256.1.1.1", `filter "host 256.1.1.1": invalid IPv4 address "256.1.1.1" at offset 5`},
		{"host 2001:db8::g", `filter "host 2001:db8::g": invalid address "2001:db8::g" at offset 5`},
		{"host 1:2:3", `filter "host 1:2:3": invalid IPv6 address "1:2:3" at offset 5`},
		{"ip6 host 10.0.0.1", `filter "ip6 host 10.0.0.1": "ip6" qualifier applied to IPv4 address 10.0.0.1 at offset 9`},
		{"ip host ::1", `filter "ip host ::1": "ip" qualifier applied to IPv6 address ::1 at offset 8`},
		{"tcp host 10.0.0.1", `filter "tcp host 10.0.0.1": "tcp" qualifier not valid with host at offset 9`},
		{"host 10.0.0.0/8", `filter "host 10.0.0.0/8": mask syntax is for networks only: use "net" at offset 13`},
		{"net 10.0.0.1/8", `filter "net 10.0.0.1/8": non-network bits set in "10.0.0.1/8" at offset 4`},
		{"net 10.0.0.1 mask 255.0.0.0", `filter "net 10.0.0.1 mask 255.0.0.0": non-network bits set in "10.0.0.1 mask 255.0.0.0" at offset 4`},
		{"net 10.0.0.0/33", `filter "net 10.0.0.0/33": prefix length 33 greater than 32 at offset 13`},
		{"net 2001:db8::1/32", `filter "net 2001:db8::1/32": non-network bits set in "2001:db8::1/32" at offset 4`},
		{"net 10/8", `filter "net 10/8": syntax error: unexpected "/" at offset 6`},
		{"src proto 6", `filter "src proto 6": syntax error: expected an address, found "proto" at offset 4`},
		{"ip proto tcp", `filter "ip proto tcp": syntax error: expected a protocol, found "tcp" at offset 9`},
		{"ip proto 300", `filter "ip proto 300": protocol number 300 greater than 255 at offset 9`},
		{"proto \\nosuch", `filter "proto \\nosuch": unknown protocol "nosuch" at offset 6`},
		{"tcp proto 6", `filter "tcp proto 6": "tcp" qualifier not valid with proto at offset 10`},
		{"vlan 5000", `filter "vlan 5000": VLAN id 5000 greater than 4095 at offset 5`},
		{"less", `filter "less": syntax error: "less" needs a length at offset 4`},
		{"ip[0:3] = 1", `filter "ip[0:3] = 1": data size must be 1, 2, or 4 at offset 5`},
		{"ip[0] / 0 = 1", `filter "ip[0] / 0 = 1": division by zero at offset 6`},
		{"ip[0] % 0 = 1", `filter "ip[0] % 0 = 1": modulus by zero at offset 6`},
		{"ip[0] / (1 - 1) = 1", `filter "ip[0] / (1 - 1) = 1": division by zero at offset 6`},
		{"ip[0] << 32 = 0", `filter "ip[0] << 32 = 0": shift by more than 31 bits at offset 6`},
		{"ip[0]", `filter "ip[0]": syntax error: expected a comparison, found end of expression at offset 5`},
		{"ip[0] = ", `filter "ip[0] = ": syntax error: unexpected end of expression at offset 8`},
		{"ip[2-1] = 0", `filter "ip[2-1] = 0": syntax error: expected a number, found "2-1" at offset 3`},
		{"tcp[0", `filter "tcp[0": syntax error: unexpected end of expression at offset 5`},
		{"len-1 > 5", `filter "len-1 > 5": syntax error: "len-1" needs a qualifier such as host, net or port at offset 0`},
		{"port 80 # comment", `filter "port 80 # comment": syntax error: unexpected character '#' at offset 8`},
		{"\\", `filter "\\": syntax error: nothing after "\" at offset 0`},
		{"and", `filter "and": syntax error: unexpected "and" at offset 0`},
		{strings.Repeat("(", 300) + "tcp" + strings.Repeat(")", 300), `filter "` + strings.Repeat("(", 300) + "tcp" + strings.Repeat(")", 300) + `": expression nested too deeply at offset 199`},
	}
	for _, tt := range tests {
		f, err := CompileFilter(tt.expr)
		if err == nil {
			t.Errorf("CompileFilter(%q) = %q, want error %s", tt.expr, f, tt.want)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("CompileFilter(%q):\n got %s\nwant %s", tt.expr, err, tt.want)
		}
		var fe *FilterError
		if !errors.As(err, &fe) || fe.Expr != tt.expr {
			t.Errorf("CompileFilter(%q): error %T is not a *FilterError for the expression", tt.expr, err)
		}
	}
}

// ---------------------------------------------------------------------------
// Frames

func mustSerialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		t.Fatalf("serialize: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

var (
	macA = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	macB = net.HardwareAddr{0x02, 0, 0, 0, 0, 2}
)

func ethL(et layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: et}
}

func ip4L(src, dst string, proto layers.IPProtocol, ttl uint8) *layers.IPv4 {
	return &layers.IPv4{Version: 4, TTL: ttl, Protocol: proto, Id: 0x1234,
		SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
}

func ip6L(src, dst string, nh layers.IPProtocol, hop uint8) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: hop, NextHeader: nh,
		SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst)}
}

func tcpL(sp, dp uint16, flags uint8) *layers.TCP {
	return &layers.TCP{SrcPort: layers.TCPPort(sp), DstPort: layers.TCPPort(dp),
		Seq: 1000, Ack: 2000, Window: 65535,
		FIN: flags&FlagFIN != 0, SYN: flags&FlagSYN != 0, RST: flags&FlagRST != 0,
		PSH: flags&FlagPSH != 0, ACK: flags&FlagACK != 0, URG: flags&FlagURG != 0,
		ECE: flags&FlagECE != 0, CWR: flags&FlagCWR != 0}
}

// tcp4 builds Ethernet/IPv4/TCP.
func tcp4(t testing.TB, src, dst string, sp, dp uint16, flags uint8, payload []byte) []byte {
	ip := ip4L(src, dst, layers.IPProtocolTCP, 64)
	tc := tcpL(sp, dp, flags)
	_ = tc.SetNetworkLayerForChecksum(ip)
	return mustSerialize(t, ethL(layers.EthernetTypeIPv4), ip, tc, gopacket.Payload(payload))
}

// tcp6 builds Ethernet/IPv6/TCP.
func tcp6(t testing.TB, src, dst string, sp, dp uint16, flags uint8, payload []byte) []byte {
	ip := ip6L(src, dst, layers.IPProtocolTCP, 64)
	tc := tcpL(sp, dp, flags)
	_ = tc.SetNetworkLayerForChecksum(ip)
	return mustSerialize(t, ethL(layers.EthernetTypeIPv6), ip, tc, gopacket.Payload(payload))
}

// udp4 builds Ethernet/IPv4/UDP.
func udp4(t testing.TB, src, dst string, sp, dp uint16, payload []byte) []byte {
	ip := ip4L(src, dst, layers.IPProtocolUDP, 64)
	u := &layers.UDP{SrcPort: layers.UDPPort(sp), DstPort: layers.UDPPort(dp)}
	_ = u.SetNetworkLayerForChecksum(ip)
	return mustSerialize(t, ethL(layers.EthernetTypeIPv4), ip, u, gopacket.Payload(payload))
}

// rawL4 serializes a transport layer alone, to be quoted or carried as payload.
func rawL4(t testing.TB, ip gopacket.NetworkLayer, l gopacket.SerializableLayer) []byte {
	if c, ok := l.(interface {
		SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
	}); ok {
		_ = c.SetNetworkLayerForChecksum(ip)
	}
	return mustSerialize(t, l)
}

func decodeEth(frame []byte) *Decoded {
	d := new(Decoded)
	Decode(LinkEthernet, frame, len(frame), d)
	return d
}

func compileOK(t testing.TB, expr string) *Filter {
	t.Helper()
	f, err := CompileFilter(expr)
	if err != nil {
		t.Fatalf("CompileFilter(%q): %v", expr, err)
	}
	return f
}

type matchCase struct {
	expr string
	want bool
}

func checkMatches(t *testing.T, name string, d *Decoded, frame []byte, wire int, cases []matchCase) {
	t.Helper()
	for _, c := range cases {
		if got := compileOK(t, c.expr).MatchLen(d, frame, wire); got != c.want {
			t.Errorf("%s: %q matched %v, want %v (kind %d)", name, c.expr, got, c.want, d.Kind)
		}
	}
}

func TestFilterMatchVLAN(t *testing.T) {
	ip := ip4L("10.0.0.1", "10.0.0.2", layers.IPProtocolTCP, 64)
	tc := tcpL(40000, 443, FlagSYN)
	_ = tc.SetNetworkLayerForChecksum(ip)
	one := mustSerialize(t, ethL(layers.EthernetTypeDot1Q),
		&layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeIPv4}, ip, tc)
	two := mustSerialize(t, ethL(layers.EthernetTypeDot1Q),
		&layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeDot1Q},
		&layers.Dot1Q{VLANIdentifier: 200, Type: layers.EthernetTypeIPv4}, ip, tc)
	none := tcp4(t, "10.0.0.1", "10.0.0.2", 40000, 443, FlagSYN, nil)
	common := []matchCase{
		{"port 443", true}, {"tcp dst port 443", true}, {"host 10.0.0.1", true},
		{"tcp[tcpflags] == tcp-syn", true}, {"ip[9] = 6", true}, {"vlan 300", false},
	}
	d := decodeEth(one)
	checkMatches(t, "one tag", d, one, len(one), append(common, []matchCase{
		{"vlan", true}, {"vlan 100", true}, {"vlan 200", false}, {"vlan 100 and port 443", true},
	}...))
	d = decodeEth(two)
	checkMatches(t, "two tags", d, two, len(two), append(common, []matchCase{
		{"vlan", true}, {"vlan 100", true}, {"vlan 200", true}, {"vlan 200 and vlan 100", true},
	}...))
	d = decodeEth(none)
	checkMatches(t, "untagged", d, none, len(none), append(common, []matchCase{
		{"vlan", false}, {"not vlan", true}, {"vlan 0", false},
	}...))
}

func TestFilterMatchICMPUnreach(t *testing.T) {
	// A router tells 10.0.0.1 that its SYN to 93.184.216.34:443 is unreachable.
	qip := ip4L("10.0.0.1", "93.184.216.34", layers.IPProtocolTCP, 63)
	quote := mustSerialize(t, qip, rawPayloadTCP(t, qip, 40000, 443, FlagSYN))[:28]
	frame := mustSerialize(t, ethL(layers.EthernetTypeIPv4),
		ip4L("10.9.9.9", "10.0.0.1", layers.IPProtocolICMPv4, 250),
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 3)}, gopacket.Payload(quote))
	d := decodeEth(frame)
	if d.Kind != KindICMPUnreach {
		t.Fatalf("kind %d, want KindICMPUnreach", d.Kind)
	}
	checkMatches(t, "icmp4", d, frame, len(frame), []matchCase{
		{"host 10.9.9.9", true}, {"src host 10.9.9.9", true}, {"dst host 10.9.9.9", false},
		{"dst host 10.0.0.1", true}, {"host 10.0.0.1", true}, {"host 93.184.216.34", false},
		{"port 443", false}, {"port 40000", false}, {"tcp", false}, {"icmp", true}, {"ip", true},
		{"ip proto 1", true}, {"icmp[icmptype] = icmp-unreach and icmp[icmpcode] = 3", true},
		{"icmp[8] >> 4 = 4", true}, {"tcp[0] = 0", false}, {"not tcp[0] = 0", true},
		{"ip[8] = 250", true},
	})

	q6 := ip6L("2001:db8::1", "2001:db8:1::5", layers.IPProtocolTCP, 63)
	quote6 := mustSerialize(t, q6, rawPayloadTCP(t, q6, 40000, 443, FlagSYN))[:48]
	ip := ip6L("2001:db8::fe", "2001:db8::1", layers.IPProtocolICMPv6, 250)
	ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(1, 4)}
	_ = ic.SetNetworkLayerForChecksum(ip)
	frame = mustSerialize(t, ethL(layers.EthernetTypeIPv6), ip, ic, gopacket.Payload(append(make([]byte, 4), quote6...)))
	d = decodeEth(frame)
	if d.Kind != KindICMPUnreach {
		t.Fatalf("kind %d, want KindICMPUnreach", d.Kind)
	}
	checkMatches(t, "icmp6", d, frame, len(frame), []matchCase{
		{"src host 2001:db8::fe", true}, {"dst host 2001:db8::1", true}, {"host 2001:db8:1::5", false},
		{"net 2001:db8::/64", true}, {"port 443", false}, {"icmp6", true}, {"icmp", false},
		{"icmp6[icmp6type] = icmp6-destinationunreach", true}, {"ip6 proto 58", true},
	})
}

// rawPayloadTCP is a TCP header as an opaque payload, to put in a quote.
func rawPayloadTCP(t testing.TB, ip gopacket.NetworkLayer, sp, dp uint16, flags uint8) gopacket.Payload {
	return gopacket.Payload(rawL4(t, ip, tcpL(sp, dp, flags)))
}

func TestFilterMatchIPv6(t *testing.T) {
	syn := tcp6(t, "2001:db8::1", "2001:db8:1::5", 40000, 443, FlagSYN, nil)
	d := decodeEth(syn)
	checkMatches(t, "v6 syn", d, syn, len(syn), []matchCase{
		{"tcp[tcpflags] & tcp-syn != 0", true}, {"tcp[13] = 2 and port 443", true},
		{"ip6[6] = 6", true}, {"ip[9] = 6", false}, {"ip", false}, {"ip6", true},
		{"ip6 net 2001:db8:1::/48", true}, {"dst net 2001:db8:1::/48", true},
		{"src net 2001:db8:1::/48", false}, {"tcp[0:2] = 40000", true},
	})

	// A hop-by-hop options header before TCP: the port is still found.
	ip := ip6L("2001:db8::1", "2001:db8::2", layers.IPProtocolIPv6HopByHop, 64)
	hbh := []byte{6, 0, 1, 4, 0, 0, 0, 0} // next TCP, 8 bytes, PadN
	tcpb := rawL4(t, ip, tcpL(40000, 80, FlagSYN|FlagACK))
	frame := mustSerialize(t, ethL(layers.EthernetTypeIPv6), ip, gopacket.Payload(append(hbh, tcpb...)))
	d = decodeEth(frame)
	if d.Kind != KindTCP {
		t.Fatalf("hop-by-hop: kind %d", d.Kind)
	}
	checkMatches(t, "v6 hbh", d, frame, len(frame), []matchCase{
		{"port 80", true}, {"tcp", true}, {"ip6 proto 6", true}, {"tcp[13] = 0x12", true},
		{"tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn", false},
	})

	// UDP after a destination options header (Decode gives KindOther).
	ip = ip6L("2001:db8::1", "2001:db8::2", layers.IPProtocolIPv6Destination, 64)
	dst := []byte{17, 0, 1, 4, 0, 0, 0, 0}
	udpb := rawL4(t, ip, &layers.UDP{SrcPort: 5353, DstPort: 53})
	frame = mustSerialize(t, ethL(layers.EthernetTypeIPv6), ip, gopacket.Payload(append(dst, udpb...)))
	d = decodeEth(frame)
	checkMatches(t, "v6 dstopts udp", d, frame, len(frame), []matchCase{
		{"udp port 53", true}, {"udp src port 5353", true}, {"tcp", false}, {"udp[2:2] = 53", true},
		{"ip6 proto 17", true},
	})
}

func TestFilterMatchTunnelAndRaw(t *testing.T) {
	// GRE: the inner packet is the one filtered.
	inner := ip4L("10.0.0.1", "10.0.0.2", layers.IPProtocolTCP, 64)
	tcpb := rawL4(t, inner, tcpL(40000, 443, FlagSYN))
	frame := mustSerialize(t, ethL(layers.EthernetTypeIPv4),
		ip4L("192.0.2.1", "192.0.2.2", layers.IPProtocolGRE, 64),
		&layers.GRE{Protocol: layers.EthernetTypeIPv4}, inner, gopacket.Payload(tcpb))
	d := decodeEth(frame)
	if d.Kind != KindTCP {
		t.Fatalf("gre: kind %d", d.Kind)
	}
	checkMatches(t, "gre", d, frame, len(frame), []matchCase{
		{"host 10.0.0.1 and port 443", true}, {"host 192.0.2.1", false}, {"ip proto 47", false},
		{"tcp", true}, {"ip[12:4] = 0x0a000001", true}, {"tcp[13] = 2", true},
	})

	// Raw IP link type: the IP header is at offset 0.
	raw := tcp4(t, "10.0.0.1", "10.0.0.2", 40000, 22, FlagSYN, nil)[14:]
	d = new(Decoded)
	Decode(LinkRaw, raw, len(raw), d)
	if d.Kind != KindTCP || d.L3Off != 0 {
		t.Fatalf("raw: kind %d, L3Off %d", d.Kind, d.L3Off)
	}
	checkMatches(t, "raw", d, raw, len(raw), []matchCase{
		{"ip", true}, {"port ssh", true}, {"src host 10.0.0.1", true}, {"ip[0] = 0x45", true},
		{"not ip and not ip6", false},
	})

	// Not IP at all.
	arp := mustSerialize(t, ethL(layers.EthernetTypeARP), &layers.ARP{
		AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6,
		ProtAddressSize: 4, Operation: 1, SourceHwAddress: macA, SourceProtAddress: []byte{10, 0, 0, 1},
		DstHwAddress: make([]byte, 6), DstProtAddress: []byte{10, 0, 0, 2}})
	d = decodeEth(arp)
	checkMatches(t, "arp", d, arp, len(arp), []matchCase{
		{"ip", false}, {"ip6", false}, {"not ip and not ip6", true}, {"host 10.0.0.1", false},
		{"ip[0] = 0", false}, {"not ip[0] = 0", true}, {"port 0", false}, {"len >= 60", true},
	})
	d = new(Decoded)
	Decode(LinkRaw, []byte{0x45, 0}, 2, d) // malformed
	checkMatches(t, "malformed raw", d, []byte{0x45, 0}, 2, []matchCase{
		{"ip", false}, {"less 2", true}, {"not tcp", true},
	})
}

func TestFilterMatchFragmentsAndBounds(t *testing.T) {
	ip := ip4L("10.0.0.1", "10.0.0.2", layers.IPProtocolTCP, 64)
	ip.Flags = layers.IPv4MoreFragments
	tcpb := rawL4(t, ip, tcpL(40000, 80, FlagPSH|FlagACK))
	first := mustSerialize(t, ethL(layers.EthernetTypeIPv4), ip, gopacket.Payload(append(tcpb, make([]byte, 40)...)))
	ip2 := ip4L("10.0.0.1", "10.0.0.2", layers.IPProtocolTCP, 64)
	ip2.FragOffset = 8
	later := mustSerialize(t, ethL(layers.EthernetTypeIPv4), ip2, gopacket.Payload(make([]byte, 40)))
	d := decodeEth(first)
	if d.Kind != KindFragment {
		t.Fatalf("first fragment: kind %d", d.Kind)
	}
	checkMatches(t, "first fragment", d, first, len(first), []matchCase{
		{"port 80", true}, {"tcp", true}, {"tcp[13] = 0x18", true}, {"ip[6] & 0x20 != 0", true},
	})
	d = decodeEth(later)
	checkMatches(t, "later fragment", d, later, len(later), []matchCase{
		{"port 80", false}, {"tcp", true}, {"tcp[13] = 0x18", false}, {"not tcp[13] = 0x18", true},
		{"host 10.0.0.2", true},
	})

	// A SYN cut by the snap length: 54 of 74 bytes.
	full := tcp4(t, "10.0.0.1", "10.0.0.2", 40000, 80, FlagSYN, make([]byte, 20))
	cut := full[:54]
	d = new(Decoded)
	Decode(LinkEthernet, cut, len(full), d)
	checkMatches(t, "truncated", d, cut, len(full), []matchCase{
		{"tcp[13] = 2", true}, {"tcp[19] = 0", true},
		{"tcp[20] = 0", false}, {"not tcp[20] = 0", false}, // out of bounds rejects the packet
		{"port 80 or tcp[20] = 0", true}, {"tcp[20] = 0 or port 80", false},
		{"greater 74", true}, {"greater 75", false}, {"less 74", true}, {"len = 74", true},
		{"ip[0] / (ip[1] & 0) = 0", false}, {"not ip[0] / (ip[1] & 0) = 0", false}, // division by zero
		{"ip[0] % (ip[1] & 0) = 0", false}, {"ip[8] << ip[8] = 0", true},
	})
	f := compileOK(t, "greater 60")
	if !f.MatchLen(d, cut, len(full)) || f.Match(d, cut) {
		t.Error("Match must see the captured length and MatchLen the wire length")
	}
}

// ---------------------------------------------------------------------------
// Differential test against tcpdump

type diffPacket struct {
	data []byte
	wire int
	desc string
}

// diffPackets builds a deterministic mix of untagged Ethernet frames.
func diffPackets(t testing.TB) []diffPacket {
	rng := rand.New(rand.NewPCG(20240601, 7))
	pick := func(n int) int { return rng.IntN(n) }
	v4 := []string{"10.0.0.1", "10.0.0.2", "10.0.1.5", "10.1.2.3", "10.1.2.200", "10.1.0.9",
		"192.168.1.10", "192.168.2.20", "172.16.5.4", "172.17.0.1", "8.8.8.8", "93.184.216.34"}
	v6 := []string{"2001:db8::1", "2001:db8::2", "2001:db8:1::5", "2001:db8:1:2::9", "fe80::1",
		"2606:4700::1111", "::ffff:10.0.0.1"}
	ports := []uint16{80, 443, 22, 53, 8080, 1024, 1023, 1000, 2000, 2001, 123, 0, 65535, 40000, 51515, 5060}
	flagSets := []uint8{FlagSYN, FlagSYN | FlagACK, FlagACK, FlagRST, FlagRST | FlagACK, FlagFIN | FlagACK,
		FlagPSH | FlagACK, FlagSYN | FlagECE | FlagCWR, FlagURG | FlagACK}
	ttls := []uint8{1, 32, 63, 64, 65, 66, 67, 128, 255}
	port := func() uint16 {
		if pick(4) == 0 {
			return uint16(1024 + pick(64000))
		}
		return ports[pick(len(ports))]
	}
	flags := func() uint8 {
		if pick(8) == 0 {
			return uint8(pick(256))
		}
		return flagSets[pick(len(flagSets))]
	}
	payload := func() []byte {
		switch pick(6) {
		case 0, 1, 2:
			return nil
		case 3:
			return []byte("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")
		}
		b := make([]byte, 1+pick(1200))
		for i := range b {
			b[i] = byte(pick(256))
		}
		return b
	}
	tcpLayer := func(ip gopacket.NetworkLayer) *layers.TCP {
		tc := tcpL(port(), port(), flags())
		if pick(3) == 0 {
			tc.Options = []layers.TCPOption{
				{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{5, 180}},
				{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2},
				{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{7}},
			}
		}
		_ = tc.SetNetworkLayerForChecksum(ip)
		return tc
	}
	newIP4 := func(proto layers.IPProtocol) *layers.IPv4 {
		ip := ip4L(v4[pick(len(v4))], v4[pick(len(v4))], proto, ttls[pick(len(ttls))])
		if pick(8) == 0 {
			ip.Options = []layers.IPv4Option{{OptionType: 0x94, OptionLength: 4, OptionData: []byte{0, 0}}}
		}
		return ip
	}
	newIP6 := func(nh layers.IPProtocol) *layers.IPv6 {
		return ip6L(v6[pick(len(v6))], v6[pick(len(v6))], nh, ttls[pick(len(ttls))])
	}
	var out []diffPacket
	add := func(desc string, data []byte) {
		out = append(out, diffPacket{data: data, wire: len(data), desc: desc})
	}
	for len(out) < 400 {
		switch k := pick(100); {
		case k < 30:
			ip := newIP4(layers.IPProtocolTCP)
			tc := tcpLayer(ip)
			data := mustSerialize(t, ethL(layers.EthernetTypeIPv4), ip, tc, gopacket.Payload(payload()))
			if pick(8) == 0 && len(ip.Options) == 0 { // cut by the snap length
				wire := len(data)
				data = data[:48+pick(len(data)-47)]
				out = append(out, diffPacket{data: data, wire: wire, desc: "tcp4 truncated"})
				continue
			}
			add("tcp4", data)
		case k < 50:
			ip := newIP6(layers.IPProtocolTCP)
			tc := tcpLayer(ip)
			data := mustSerialize(t, ethL(layers.EthernetTypeIPv6), ip, tc, gopacket.Payload(payload()))
			if pick(8) == 0 {
				wire := len(data)
				data = data[:68+pick(len(data)-67)]
				out = append(out, diffPacket{data: data, wire: wire, desc: "tcp6 truncated"})
				continue
			}
			add("tcp6", data)
		case k < 60:
			ip := newIP4(layers.IPProtocolUDP)
			u := &layers.UDP{SrcPort: layers.UDPPort(port()), DstPort: layers.UDPPort(port())}
			_ = u.SetNetworkLayerForChecksum(ip)
			add("udp4", mustSerialize(t, ethL(layers.EthernetTypeIPv4), ip, u, gopacket.Payload(payload())))
		case k < 67:
			ip := newIP6(layers.IPProtocolUDP)
			u := &layers.UDP{SrcPort: layers.UDPPort(port()), DstPort: layers.UDPPort(port())}
			_ = u.SetNetworkLayerForChecksum(ip)
			add("udp6", mustSerialize(t, ethL(layers.EthernetTypeIPv6), ip, u, gopacket.Payload(payload())))
		case k < 73:
			ip := newIP4(layers.IPProtocolICMPv4)
			types := []uint8{0, 8, 11, 5}
			ic := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(types[pick(len(types))], 0), Id: 7, Seq: 1}
			add("icmp4", mustSerialize(t, ethL(layers.EthernetTypeIPv4), ip, ic, gopacket.Payload(payload())))
		case k < 78: // ICMP unreachable quoting a TCP SYN
			q := newIP4(layers.IPProtocolTCP)
			q.Options = nil
			quote := mustSerialize(t, q, gopacket.Payload(rawL4(t, q, tcpLayer(q))))[:28]
			ip := newIP4(layers.IPProtocolICMPv4)
			ic := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, uint8(pick(4)))}
			add("icmp4 unreach", mustSerialize(t, ethL(layers.EthernetTypeIPv4), ip, ic, gopacket.Payload(quote)))
		case k < 84:
			ip := newIP6(layers.IPProtocolICMPv6)
			var body []byte
			var tc layers.ICMPv6TypeCode
			switch pick(3) {
			case 0:
				tc = layers.CreateICMPv6TypeCode(128, 0)
				body = append([]byte{0, 7, 0, 1}, payload()...)
			case 1:
				tc = layers.CreateICMPv6TypeCode(135, 0)
				body = make([]byte, 20)
			default:
				q := newIP6(layers.IPProtocolTCP)
				quote := mustSerialize(t, q, gopacket.Payload(rawL4(t, q, tcpLayer(q))))[:48]
				tc = layers.CreateICMPv6TypeCode(1, uint8(pick(5)))
				body = append(make([]byte, 4), quote...)
			}
			ic := &layers.ICMPv6{TypeCode: tc}
			_ = ic.SetNetworkLayerForChecksum(ip)
			add("icmp6", mustSerialize(t, ethL(layers.EthernetTypeIPv6), ip, ic, gopacket.Payload(body)))
		case k < 89: // IPv4 fragments of a TCP segment
			ip := newIP4(layers.IPProtocolTCP)
			if pick(2) == 0 {
				ip.Flags = layers.IPv4MoreFragments
				seg := rawL4(t, ip, tcpLayer(ip))
				add("tcp4 first fragment", mustSerialize(t, ethL(layers.EthernetTypeIPv4), ip,
					gopacket.Payload(append(seg, make([]byte, 8*pick(20))...))))
			} else {
				ip.FragOffset = uint16(1 + pick(100))
				b := make([]byte, 8+pick(200))
				for i := range b {
					b[i] = byte(pick(256))
				}
				add("tcp4 later fragment", mustSerialize(t, ethL(layers.EthernetTypeIPv4), ip, gopacket.Payload(b)))
			}
		case k < 93: // other IPv4 protocols, SCTP with ports
			protos := []layers.IPProtocol{layers.IPProtocolSCTP, layers.IPProtocolSCTP, 89, layers.IPProtocolIGMP}
			ip := newIP4(protos[pick(len(protos))])
			b := make([]byte, 12+pick(60))
			for i := range b {
				b[i] = byte(pick(256))
			}
			if ip.Protocol == layers.IPProtocolSCTP && pick(2) == 0 {
				b[0], b[1], b[2], b[3] = 0, 80, 0x13, 0x88
			}
			add(fmt.Sprintf("ip4 proto %d", ip.Protocol), mustSerialize(t, ethL(layers.EthernetTypeIPv4), ip, gopacket.Payload(b)))
		case k < 96: // not IP
			if pick(2) == 0 {
				add("arp", mustSerialize(t, ethL(layers.EthernetTypeARP), &layers.ARP{
					AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6,
					ProtAddressSize: 4, Operation: 1, SourceHwAddress: macA, SourceProtAddress: []byte{169, 254, 1, 1},
					DstHwAddress: make([]byte, 6), DstProtAddress: []byte{169, 254, 1, 2}}))
			} else {
				add("lldp", mustSerialize(t, ethL(layers.EthernetTypeLinkLayerDiscovery), gopacket.Payload(make([]byte, 30+pick(100)))))
			}
		default: // SYNs to the usual ports, so every port expression has matches
			ip := newIP4(layers.IPProtocolTCP)
			ip.Options = nil
			tc := tcpL(uint16(30000+pick(30000)), []uint16{80, 443, 22, 53}[pick(4)], FlagSYN)
			_ = tc.SetNetworkLayerForChecksum(ip)
			add("tcp4 syn", mustSerialize(t, ethL(layers.EthernetTypeIPv4), ip, tc))
		}
	}
	return out
}

func writeDiffPcap(t testing.TB, pkts []diffPacket, base time.Time) []byte {
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for i, p := range pkts {
		ci := gopacket.CaptureInfo{Timestamp: base.Add(time.Duration(i) * time.Second),
			CaptureLength: len(p.data), Length: p.wire}
		if err := w.WritePacket(ci, p.data); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// tcpdumpMatches runs tcpdump on the capture and gives the indexes of the
// packets its filter kept, from the timestamps of the packets it writes.
func tcpdumpMatches(t *testing.T, tcpdump string, pcap []byte, base time.Time, expr string) map[int]bool {
	cmd := exec.Command(tcpdump, "-r", "-", "-w", "-", "--", expr)
	cmd.Stdin = bytes.NewReader(pcap)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("tcpdump %q: %v: %s", expr, err, stderr.String())
	}
	r, err := pcapgo.NewReader(&stdout)
	if err != nil {
		t.Fatalf("tcpdump %q: reading its output: %v (stderr: %s)", expr, err, stderr.String())
	}
	got := make(map[int]bool)
	for {
		_, ci, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("tcpdump %q: reading its output: %v", expr, err)
		}
		got[int(ci.Timestamp.Sub(base)/time.Second)] = true
	}
	return got
}

// Filters compared with tcpdump. Where our semantics differ on purpose
// (tcp[] and udp[] index IPv6 packets too), theirs spells ours out.
var diffFilters = []struct{ ours, theirs string }{
	{"tcp", ""}, {"udp", ""}, {"icmp", ""}, {"icmp6", ""}, {"ip", ""}, {"ip6", ""}, {"sctp", ""},
	{"igmp", ""}, {"not ip and not ip6", ""}, {"not tcp and not udp", ""},
	{"host 10.0.0.1", ""}, {"src host 10.0.0.1", ""}, {"dst host 192.168.1.10", ""},
	{"host 10.0.0.1 or 10.0.0.2", ""}, {"src or dst host 10.0.0.2", ""}, {"src and dst net 10.0.0.0/8", ""},
	{"net 10.1.2.0/24", ""}, {"net 192.168", ""}, {"net 10.0.0.0 mask 255.255.0.0", ""},
	{"dst net 172.16", ""}, {"net 10", ""}, {"host 10.1", ""}, {"net 10.0.0.0 mask 255.0.255.0", ""},
	{"host 2001:db8::1", ""}, {"ip6 net 2001:db8:1::/48", ""}, {"src net 2001:db8::/32", ""},
	{"host ::ffff:10.0.0.1", ""}, {"ip6 dst net fe80::/10 or ip src 8.8.8.8", ""},
	{"port 80", ""}, {"port 443 or 22", ""}, {"tcp port 80 or 443", ""}, {"udp port 53", ""},
	{"src port 1024", ""}, {"dst port http", ""}, {"port domain", ""}, {"sctp port 80", ""},
	{"portrange 1000-2000", ""}, {"tcp dst portrange 1-1023", ""}, {"udp src or dst port 123", ""},
	{"not port 80 and not port 443", ""}, {"src and dst portrange 1000-60000", ""},
	{"host 10.0.0.1 and (port 80 or 443)", ""}, {"(tcp or udp) and not host 10.0.0.1", ""},
	{"tcp and port 80 or udp", ""}, {"host 10.0.0.1 and not (10.0.0.2 or 192.168.1.10)", ""},
	{"ip proto 6", ""}, {"ip6 proto 17", ""}, {"proto \\tcp", ""}, {"ip proto \\icmp", ""}, {"proto 58", ""},
	{"vlan", ""}, {"not vlan", ""},
	{"less 80", ""}, {"greater 200", ""}, {"len > 100 and len <= 1000", ""}, {"len % 2 = 1", ""},
	{"ip[8] < 64", ""}, {"ip[8] >= 64 and tcp", ""}, {"ip6[6] == 6", ""}, {"ip6[7] > 60", ""},
	{"ip[8] ^ 1 | 2 = 64", ""}, {"ip[8] & 0xf ^ 3 = 0", ""}, {"-ip[8] + 256 = 192", ""},
	{"ip[6] & 0x20 != 0", ""}, {"ip[6:2] & 0x1fff != 0", ""}, {"ip[12:4] = 0x0a000001", ""},
	{"ip[0] & 0xf > 5", ""}, {"ip[2:2] / 100 = 0", ""}, {"ip[8] % 2 = 1 and ip[8] >> 1 < 40", ""},
	{"icmp[icmptype] = icmp-echo", ""}, {"icmp[icmptype] == icmp-unreach and icmp[icmpcode] = 3", ""},
	{"icmp6[icmp6type] = icmp6-echo", ""}, {"icmp6[0] == 1", ""},
	{"tcp[13] & 2 != 0 and ip", ""},
	{"tcp[tcpflags] & tcp-syn != 0",
		"tcp[tcpflags] & tcp-syn != 0 or (ip6 and ip6[6] = 6 and ip6[53] & 2 != 0)"},
	{"tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn",
		"tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn or (ip6 and ip6[6] = 6 and ip6[53] & 0x12 = 2)"},
	{"tcp[13] & (tcp-rst|tcp-fin) != 0 and tcp port 443",
		"(tcp[13] & (tcp-rst|tcp-fin) != 0 or (ip6 and ip6[6] = 6 and ip6[53] & 5 != 0)) and tcp port 443"},
	{"tcp[0:2] > 1024", "tcp[0:2] > 1024 or (ip6 and ip6[6] = 6 and ip6[40:2] > 1024)"},
	{"udp[0:2] = 53 or udp[2:2] = 53",
		"udp[0:2] = 53 or udp[2:2] = 53 or (ip6 and ip6[6] = 17 and (ip6[40:2] = 53 or ip6[42:2] = 53))"},
	{"tcp[((tcp[12]&0xf0)>>2):4] = 0x47455420",
		"tcp[((tcp[12]&0xf0)>>2):4] = 0x47455420 or (ip6 and ip6[6] = 6 and ip6[40+((ip6[52]&0xf0)>>2):4] = 0x47455420)"},
	// libpcap 1.10 drops the header check of tcp[12] here (the right operand
	// of "-"), so tcpdump is told it.
	{"ip and ip[2:2] - ((ip[0]&0xf)<<2) - ((tcp[12]&0xf0)>>2) != 0",
		"ip and tcp and ip[6:2] & 0x1fff = 0 and ip[2:2] - ((ip[0]&0xf)<<2) - ((tcp[12]&0xf0)>>2) != 0"},
	// Reads past the captured bytes reject the packet, even under "not".
	{"not tcp[60] = 0", "not tcp[60] = 0 and not (ip6 and ip6[6] = 6 and ip6[100] = 0)"},
	{"port 80 or tcp[40] = 0", "port 80 or tcp[40] = 0 or (ip6 and ip6[6] = 6 and ip6[80] = 0)"},
}

func TestFilterTcpdump(t *testing.T) {
	tcpdump, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Skip("tcpdump is not installed: skipping the comparison with it")
	}
	pkts := diffPackets(t)
	base := time.Unix(1_700_000_000, 0)
	pcap := writeDiffPcap(t, pkts, base)
	decoded := make([]Decoded, len(pkts))
	for i, p := range pkts {
		Decode(LinkEthernet, p.data, p.wire, &decoded[i])
	}
	// tcpdump must see every packet.
	if all := tcpdumpMatches(t, tcpdump, pcap, base, "ip or not ip"); len(all) != len(pkts) {
		t.Fatalf("tcpdump read %d packets of %d", len(all), len(pkts))
	}
	for _, tt := range diffFilters {
		t.Run(tt.ours, func(t *testing.T) {
			t.Parallel()
			theirs := tt.theirs
			if theirs == "" {
				theirs = tt.ours
			}
			f := compileOK(t, tt.ours)
			want := tcpdumpMatches(t, tcpdump, pcap, base, theirs)
			var extra, missing []string
			n := 0
			for i, p := range pkts {
				got := f.MatchLen(&decoded[i], p.data, p.wire)
				if got {
					n++
				}
				if got != want[i] {
					line := fmt.Sprintf("#%d %s (%d/%d bytes) %x", i, p.desc, len(p.data), p.wire, p.data[:min(len(p.data), 70)])
					if got {
						extra = append(extra, line)
					} else {
						missing = append(missing, line)
					}
				}
			}
			sort.Strings(extra)
			sort.Strings(missing)
			if len(extra)+len(missing) > 0 {
				t.Errorf("%q (tcpdump %q): we match %d packets, tcpdump %d\nonly we match:\n  %s\nonly tcpdump matches:\n  %s",
					tt.ours, theirs, n, len(want), strings.Join(extra, "\n  "), strings.Join(missing, "\n  "))
			}
		})
	}
}

// Every filter above must select some packets but not all, or the
// comparison proves little.
func TestFilterTcpdumpCoverage(t *testing.T) {
	pkts := diffPackets(t)
	decoded := make([]Decoded, len(pkts))
	for i, p := range pkts {
		Decode(LinkEthernet, p.data, p.wire, &decoded[i])
	}
	for _, tt := range diffFilters {
		f := compileOK(t, tt.ours)
		n := 0
		for i, p := range pkts {
			if f.MatchLen(&decoded[i], p.data, p.wire) {
				n++
			}
		}
		if tt.ours == "vlan" || tt.ours == "not vlan" {
			continue // untagged frames only
		}
		if n == 0 || n == len(pkts) {
			t.Errorf("%q matches %d of %d packets", tt.ours, n, len(pkts))
		}
	}
}

// FuzzFilter checks that compiling never panics, that the canonical form
// compiles to a filter giving the same answers, and that matching any frame,
// decoded with any link type, never panics.
func FuzzFilter(f *testing.F) {
	for _, tt := range diffFilters {
		f.Add(tt.ours, tcp4(f, "10.0.0.1", "10.0.0.2", 40000, 80, FlagSYN, []byte("GET / HTTP/1.1")), uint16(LinkEthernet))
	}
	f.Add("icmp6[0] = 1 or vlan 3", tcp6(f, "2001:db8::1", "::1", 1, 2, FlagRST, nil)[14:], uint16(LinkRaw))
	f.Add("ip[0] & 0xf ^ 3 = 0", []byte{0x45, 0}, uint16(LinkRaw))
	f.Fuzz(func(t *testing.T, expr string, frame []byte, lt uint16) {
		flt, err := CompileFilter(expr)
		if err != nil {
			var fe *FilterError
			if !errors.As(err, &fe) || fe.Offset < 0 || fe.Offset > len(expr) {
				t.Fatalf("CompileFilter(%q): bad error %v", expr, err)
			}
			return
		}
		var d Decoded
		Decode(lt, frame, len(frame)+3, &d)
		got := flt.MatchLen(&d, frame, len(frame)+3)
		if flt == nil {
			return
		}
		again, err := CompileFilter(flt.String())
		if err != nil {
			t.Fatalf("canonical %q of %q does not compile: %v", flt.String(), expr, err)
		}
		if again.String() != flt.String() {
			t.Fatalf("canonical %q of %q recompiles as %q", flt.String(), expr, again.String())
		}
		if again.MatchLen(&d, frame, len(frame)+3) != got {
			t.Fatalf("%q and its canonical %q disagree", expr, flt.String())
		}
	})
}

// ---------------------------------------------------------------------------
// Allocation and speed

var benchFilters = []string{
	"port 443",
	"host 10.0.0.1 or 10.0.0.2",
	"tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn",
	"net 2001:db8::/32 and not port 22",
	"tcp[((tcp[12]&0xf0)>>2):4] = 0x47455420",
}

func benchFrames(t testing.TB) ([][]byte, []Decoded) {
	frames := [][]byte{
		tcp4(t, "10.0.0.1", "93.184.216.34", 40000, 443, FlagSYN, nil),
		tcp4(t, "10.0.0.2", "10.0.0.1", 80, 51000, FlagACK|FlagPSH, []byte("GET / HTTP/1.1\r\n")),
		tcp6(t, "2001:db8::1", "2001:db8:1::5", 40000, 22, FlagSYN|FlagACK, nil),
		udp4(t, "10.0.0.1", "8.8.8.8", 5353, 53, make([]byte, 30)),
	}
	ds := make([]Decoded, len(frames))
	for i, f := range frames {
		Decode(LinkEthernet, f, len(f), &ds[i])
	}
	return frames, ds
}

func TestFilterMatchNoAlloc(t *testing.T) {
	frames, ds := benchFrames(t)
	for _, e := range append(benchFilters, "vlan 100 or less 100 or len * 2 / 3 > 40") {
		f := compileOK(t, e)
		allocs := testing.AllocsPerRun(100, func() {
			for i := range frames {
				f.Match(&ds[i], frames[i])
			}
		})
		if allocs != 0 {
			t.Errorf("%q: %v allocations per run, want 0", e, allocs)
		}
	}
}

func BenchmarkFilterMatch(b *testing.B) {
	frames, ds := benchFrames(b)
	for _, e := range benchFilters {
		f := compileOK(b, e)
		b.Run(e, func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			for i := 0; b.Loop(); i++ {
				k := i % len(frames)
				if f.Match(&ds[k], frames[k]) {
					n++
				}
			}
			_ = n
		})
	}
}
