package analyze

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"testing"
	"unsafe"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// frame serializes layers with gopacket, fixing lengths and checksums.
func frame(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	for _, l := range ls {
		if tcp, ok := l.(*layers.TCP); ok {
			for _, n := range ls {
				if nl, ok := n.(gopacket.NetworkLayer); ok {
					_ = tcp.SetNetworkLayerForChecksum(nl)
				}
			}
		}
	}
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

var (
	cliMAC = net.HardwareAddr{2, 0, 0, 0, 0, 1}
	srvMAC = net.HardwareAddr{2, 0, 0, 0, 0, 2}
	cli4   = net.IP{192, 0, 2, 1}
	srv4   = net.IP{198, 51, 100, 2}
	cli6   = net.ParseIP("2001:db8::1")
	srv6   = net.ParseIP("2001:db8::2")
)

func synTCP() *layers.TCP {
	return &layers.TCP{SrcPort: 40000, DstPort: 443, Seq: 1000, SYN: true, Window: 64240,
		Options: []layers.TCPOption{
			{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}},
			{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2},
			{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: []byte{0, 0, 0, 7, 0, 0, 0, 0}},
			{OptionType: layers.TCPOptionKindNop},
			{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{7}},
		}}
}

// dataTCP is a segment of an established connection: ACK, PSH and
// timestamps behind two no-ops (what Linux sends).
func dataTCP() *layers.TCP {
	return &layers.TCP{SrcPort: 443, DstPort: 40000, Seq: 5000, Ack: 1001, ACK: true, PSH: true, Window: 501,
		Options: []layers.TCPOption{
			{OptionType: layers.TCPOptionKindNop},
			{OptionType: layers.TCPOptionKindNop},
			{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: []byte{0, 0, 1, 0, 0, 0, 0, 7}},
		}}
}

func ip4(proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, TTL: 64, Id: 0x1234, Protocol: proto, SrcIP: cli4, DstIP: srv4, Flags: layers.IPv4DontFragment}
}

func eth(t layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: cliMAC, DstMAC: srvMAC, EthernetType: t}
}

func checkSYN(t *testing.T, d *Decoded) {
	t.Helper()
	if d.Kind != KindTCP {
		t.Fatalf("kind %d, want TCP", d.Kind)
	}
	if d.SPort != 40000 || d.DPort != 443 || d.Seq != 1000 || d.Flags != FlagSYN || d.Win != 64240 {
		t.Errorf("tcp fields: %+v", d)
	}
	o := d.Opts
	if o.Unknown || !o.HasMSS || o.MSS != 1460 || !o.SACKPerm || !o.HasTS || o.TSval != 7 || !o.HasWScale || o.WScale != 7 {
		t.Errorf("options: %+v", o)
	}
}

func TestDecodeEncapsulations(t *testing.T) {
	tcp := synTCP()
	v4 := frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), tcp)
	ipOnly := v4[14:]

	sll := make([]byte, 16)
	binary.BigEndian.PutUint16(sll[14:], 0x0800)
	sll2 := make([]byte, 20)
	binary.BigEndian.PutUint16(sll2[0:], 0x0800)
	nullLE := []byte{2, 0, 0, 0}
	nullBE := []byte{0, 0, 0, 2}
	mpls := []byte{0x00, 0x01, 0x00, 0x40, 0x00, 0x02, 0x01, 0x40} // two labels, S bit on the second
	gre := []byte{0, 0, 0x08, 0x00}
	outer := func(proto byte, inner []byte) []byte {
		o := frame(t, eth(layers.EthernetTypeIPv4), &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocol(proto), SrcIP: net.IP{203, 0, 113, 1}, DstIP: net.IP{203, 0, 113, 2}}, gopacket.Payload(inner))
		return o
	}

	cases := []struct {
		name  string
		lt    uint16
		frame []byte
		vlans []uint16
	}{
		{"ethernet", LinkEthernet, v4, nil},
		{"vlan", LinkEthernet, frame(t, eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 10, Type: layers.EthernetTypeIPv4}, ip4(layers.IPProtocolTCP), tcp), []uint16{10}},
		{"qinq", LinkEthernet, frame(t, eth(layers.EthernetTypeQinQ), &layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeDot1Q}, &layers.Dot1Q{VLANIdentifier: 200, Type: layers.EthernetTypeIPv4}, ip4(layers.IPProtocolTCP), tcp), []uint16{100, 200}},
		{"raw", LinkRaw, ipOnly, nil},
		{"ipv4-linktype", LinkIPv4, ipOnly, nil},
		{"sll", LinkSLL, append(sll, ipOnly...), nil},
		{"sll2", LinkSLL2, append(sll2, ipOnly...), nil},
		{"null-le", LinkNull, append(nullLE, ipOnly...), nil},
		{"null-be", LinkNull, append(nullBE, ipOnly...), nil},
		{"loop", LinkLoop, append(nullBE, ipOnly...), nil},
		{"mpls", LinkEthernet, append(append(append([]byte{}, v4[:12]...), append([]byte{0x88, 0x47}, mpls...)...), ipOnly...), nil},
		{"gre", LinkEthernet, outer(47, append(gre, ipOnly...)), nil},
		{"ipip", LinkEthernet, outer(4, ipOnly), nil},
		{"llc-snap", LinkEthernet, append(append(append([]byte{}, v4[:12]...), 0, byte(8+len(ipOnly)), 0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00), ipOnly...), nil},
		{"ipoib", LinkIPoIB, append(append(make([]byte, 40), 0x08, 0x00, 0, 0), ipOnly...), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var d Decoded
			Decode(c.lt, c.frame, len(c.frame), &d)
			checkSYN(t, &d)
			if d.SrcAddr().String() != "192.0.2.1" || d.DstAddr().String() != "198.51.100.2" {
				t.Errorf("addresses %v -> %v", d.SrcAddr(), d.DstAddr())
			}
			if int(d.NVLAN) != len(c.vlans) {
				t.Fatalf("vlans %d, want %v", d.NVLAN, c.vlans)
			}
			for i, v := range c.vlans {
				if d.VLAN[i] != v {
					t.Errorf("vlan[%d] = %d, want %d", i, d.VLAN[i], v)
				}
			}
		})
	}
}

func TestDecodeIPv6ExtensionHeaders(t *testing.T) {
	tcp := synTCP()
	v6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolIPv6HopByHop, SrcIP: cli6, DstIP: srv6}
	hop := &layers.IPv6HopByHop{}
	hop.NextHeader = layers.IPProtocolIPv6Destination
	hop.Options = []*layers.IPv6HopByHopOption{{OptionType: 1, OptionLength: 4, OptionData: []byte{0, 0, 0, 0}}}
	dst := &layers.IPv6Destination{}
	dst.NextHeader = layers.IPProtocolTCP
	dst.Options = []*layers.IPv6DestinationOption{{OptionType: 1, OptionLength: 4, OptionData: []byte{0, 0, 0, 0}}}
	_ = tcp.SetNetworkLayerForChecksum(v6)
	f := frame(t, eth(layers.EthernetTypeIPv6), v6, hop, dst, tcp)
	var d Decoded
	Decode(LinkEthernet, f, len(f), &d)
	checkSYN(t, &d)
	if !d.IPv6 || d.SrcAddr().String() != "2001:db8::1" {
		t.Errorf("ipv6 source %v", d.SrcAddr())
	}
}

func TestDecodeSnaplenCutsOptions(t *testing.T) {
	f := frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), synTCP())
	var d Decoded
	cut := f[:14+20+20+6] // MSS and SACK-permitted fit, timestamps do not
	Decode(LinkEthernet, cut, len(f), &d)
	if d.Kind != KindTCP || !d.Opts.Unknown || !d.Opts.HasMSS || d.Opts.HasTS {
		t.Fatalf("cut options: kind %d %+v", d.Kind, d.Opts)
	}
	if d.PayloadLen != 0 {
		t.Errorf("payload %d, want 0", d.PayloadLen)
	}
	// Only the first 14 TCP bytes: flags and sequence numbers are still known.
	Decode(LinkEthernet, f[:14+20+14], len(f), &d)
	if d.Kind != KindTCP || d.Flags != FlagSYN || d.Seq != 1000 || !d.Opts.Unknown {
		t.Fatalf("14-byte header: kind %d flags %x opts %+v", d.Kind, d.Flags, d.Opts)
	}
	Decode(LinkEthernet, f[:14+20+13], len(f), &d)
	if d.Kind != KindMalformed {
		t.Fatalf("13-byte header: kind %d, want malformed", d.Kind)
	}
}

func TestDecodePayloadLengthFromIP(t *testing.T) {
	tcp := &layers.TCP{SrcPort: 1, DstPort: 2, ACK: true, Seq: 5}
	f := frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), tcp, gopacket.Payload(make([]byte, 1000)))
	var d Decoded
	Decode(LinkEthernet, f[:80], len(f), &d) // captured 80 of 1054 bytes
	if d.PayloadLen != 1000 {
		t.Errorf("payload %d, want 1000 from the IP header", d.PayloadLen)
	}
	// Ethernet padding after a short IP packet is not payload.
	short := frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), tcp)
	padded := append(short, make([]byte, 6)...)
	Decode(LinkEthernet, padded, len(padded), &d)
	if d.PayloadLen != 0 {
		t.Errorf("padded frame: payload %d, want 0", d.PayloadLen)
	}
}

func TestDecodeICMPUnreachableQuotingSYN(t *testing.T) {
	quoted := frame(t, ip4(layers.IPProtocolTCP), synTCP())[:28]
	icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 3)}
	f := frame(t, eth(layers.EthernetTypeIPv4), &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolICMPv4, SrcIP: srv4, DstIP: cli4}, icmp, gopacket.Payload(quoted))
	var d Decoded
	Decode(LinkEthernet, f, len(f), &d)
	if d.Kind != KindICMPUnreach || d.ICMPType != 3 || d.ICMPCode != 3 {
		t.Fatalf("kind %d type %d code %d", d.Kind, d.ICMPType, d.ICMPCode)
	}
	if d.SrcAddr().String() != "192.0.2.1" || d.SPort != 40000 || d.DPort != 443 || d.Seq != 1000 {
		t.Errorf("quoted segment: %v:%d -> %d seq %d", d.SrcAddr(), d.SPort, d.DPort, d.Seq)
	}
}

func TestDecodeFragmentAndJunk(t *testing.T) {
	ip := ip4(layers.IPProtocolTCP)
	ip.Flags = layers.IPv4MoreFragments
	f := frame(t, eth(layers.EthernetTypeIPv4), ip, synTCP())
	var d Decoded
	if k := Decode(LinkEthernet, f, len(f), &d); k != KindFragment {
		t.Errorf("fragment: kind %d", k)
	}
	if k := Decode(9999, f, len(f), &d); k != KindUnsupported {
		t.Errorf("unknown link: kind %d", k)
	}
	for n := 0; n < len(f); n++ { // every truncation decodes without panicking
		Decode(LinkEthernet, f[:n], len(f), &d)
	}
}

// TestDecodeFastMatchesGeneral: Ethernet frames that take the fast path
// (ethIPv4TCP) decode exactly as the general path decodes them, and the
// frames it refuses are left to it untouched. The frames are valid ones with
// their header bytes mutated (the EtherType, version and header length, the
// IP lengths, fragment bits and protocol, the TCP data offset), cut short,
// or given other wire lengths.
func TestDecodeFastMatchesGeneral(t *testing.T) {
	seeds := [][]byte{
		frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), synTCP()),
		frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), dataTCP(), gopacket.Payload(make([]byte, 1400))),
		frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), &layers.TCP{SrcPort: 1, DstPort: 2, RST: true}),
	}
	r := rand.New(rand.NewPCG(5, 6))
	special := []byte{0, 1, 4, 5, 6, 0x08, 0x45, 0x46, 0x40, 0x20, 0x50, 0x60, 0xf0, 0xff}
	fast := 0
	for i := 0; i < 200_000; i++ {
		f := bytes.Clone(seeds[r.IntN(len(seeds))])
		for n := r.IntN(4); n > 0; n-- {
			j := r.IntN(min(len(f), 60))
			if r.IntN(2) == 0 {
				f[j] = special[r.IntN(len(special))]
			} else {
				f[j] = byte(r.Uint32())
			}
		}
		if r.IntN(4) == 0 {
			f = f[:r.IntN(len(f)+1)]
		}
		orig := len(f)
		if r.IntN(3) == 0 {
			orig += r.IntN(3000) - 100
		}
		var d, g Decoded
		k := Decode(LinkEthernet, f, orig, &d)
		decodeGeneral(LinkEthernet, f, max(orig, len(f)), &g)
		if k != g.Kind || d != g {
			t.Fatalf("frame % x (wire length %d):\nDecode  %+v\ngeneral %+v", f, orig, d, g)
		}
		var z Decoded
		if ethIPv4TCP(f, max(orig, len(f)), &z) {
			fast++
		} else if z != (Decoded{}) {
			t.Fatalf("frame % x: the fast path refused it and wrote %+v", f, z)
		}
	}
	if fast < 50_000 {
		t.Errorf("only %d of 200,000 frames took the fast path", fast)
	}
}

func BenchmarkDecode(b *testing.B) {
	f := frame(b, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), synTCP())
	var d Decoded
	b.ReportAllocs()
	b.SetBytes(int64(len(f)))
	for i := 0; i < b.N; i++ {
		Decode(LinkEthernet, f, len(f), &d)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
}

// A decoded packet in a batch is two cache lines: it crosses from the
// decoding core to the tracking one for every packet of a parallel read.
func TestDecodedSize(t *testing.T) {
	if n := unsafe.Sizeof(decoded{}); n != 128 {
		t.Errorf("decoded is %d bytes, want 128", n)
	}
}
