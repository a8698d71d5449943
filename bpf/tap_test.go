//go:build linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package bpf

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: the eBPF tap tests need root (network namespaces, BPF load, TC attach)")
	}
}

// testNet is a client and a server namespace joined by a veth pair, with
// 10.251.X.1 (client) and 10.251.X.2 (server) on a /30.
type testNet struct {
	srvNS, cliNS string
	srvIf        string
	srvIP, cliIP net.IP
	srvFD, cliFD int
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func newTestNet(t *testing.T) *testNet {
	t.Helper()
	requireRoot(t)
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipped: iproute2 (ip) is not installed")
	}
	b := make([]byte, 3)
	rand.Read(b)
	sfx := hex.EncodeToString(b)
	x := mrand.IntN(256)
	n := &testNet{
		srvNS: "sss-" + sfx, cliNS: "ssc-" + sfx,
		srvIf: "ssv" + sfx + "s",
		srvIP: net.IPv4(10, 251, byte(x), 2).To4(), cliIP: net.IPv4(10, 251, byte(x), 1).To4(),
	}
	cliIf := "ssv" + sfx + "c"
	run(t, "ip", "netns", "add", n.srvNS)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", n.srvNS).Run() })
	run(t, "ip", "netns", "add", n.cliNS)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", n.cliNS).Run() })
	run(t, "ip", "link", "add", n.srvIf, "netns", n.srvNS, "type", "veth", "peer", "name", cliIf, "netns", n.cliNS)
	for _, c := range [][]string{
		{n.srvNS, n.srvIf, n.srvIP.String()},
		{n.cliNS, cliIf, n.cliIP.String()},
	} {
		run(t, "ip", "-n", c[0], "addr", "add", c[2]+"/30", "dev", c[1])
		run(t, "ip", "-n", c[0], "link", "set", c[1], "up")
		run(t, "ip", "-n", c[0], "link", "set", "lo", "up")
	}
	var err error
	if n.srvFD, err = unix.Open("/var/run/netns/"+n.srvNS, unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(n.srvFD) })
	if n.cliFD, err = unix.Open("/var/run/netns/"+n.cliNS, unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(n.cliFD) })
	return n
}

// listen opens a TCP listener in the server namespace and serves each
// connection with handle.
func (n *testNet) listen(t *testing.T, handle func(net.Conn)) int {
	t.Helper()
	var ln net.Listener
	if err := inNetns(n.srvFD, func() (err error) {
		ln, err = net.Listen("tcp4", n.srvIP.String()+":0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); defer c.Close(); handle(c) }()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

func (n *testNet) addr(port int) string {
	return net.JoinHostPort(n.srvIP.String(), fmt.Sprint(port))
}

// client runs fn on a thread in the client namespace: sockets it creates
// live there.
func (n *testNet) client(t *testing.T, fn func() error) {
	t.Helper()
	if err := inNetns(n.cliFD, fn); err != nil {
		t.Fatal(err)
	}
}

// pkt is a decoded event.
type pkt struct {
	egress      bool
	time        int64
	ifindex     uint32
	linkType    uint16
	origLen     uint32
	capLen      int
	icmpUnreach bool
	tcp         bool
	sport       uint16
	dport       uint16
	syn, ack    bool
	fin, rst    bool
	payload     []byte // the captured part
	payloadLen  int    // from the IP length
}

func (p pkt) String() string {
	return fmt.Sprintf("eg=%v %d->%d syn=%v ack=%v fin=%v rst=%v len=%d icmp=%v", p.egress, p.sport, p.dport, p.syn, p.ack, p.fin, p.rst, p.payloadLen, p.icmpUnreach)
}

func decode(rec *Record) pkt {
	p := pkt{egress: rec.Egress, time: rec.Time, ifindex: rec.Ifindex, linkType: rec.LinkType, origLen: rec.OrigLen, capLen: len(rec.Data)}
	first := layers.LayerTypeEthernet
	if rec.LinkType == LinkTypeRaw {
		first = layers.LayerTypeIPv4
		if len(rec.Data) > 0 && rec.Data[0]>>4 == 6 {
			first = layers.LayerTypeIPv6
		}
	}
	g := gopacket.NewPacket(rec.Data, first, gopacket.Default)
	if tc, ok := g.Layer(layers.LayerTypeTCP).(*layers.TCP); ok {
		p.tcp, p.sport, p.dport = true, uint16(tc.SrcPort), uint16(tc.DstPort)
		p.syn, p.ack, p.fin, p.rst = tc.SYN, tc.ACK, tc.FIN, tc.RST
		p.payload = append([]byte(nil), tc.Payload...)
		hl := int(tc.DataOffset) * 4
		if ip, ok := g.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok {
			p.payloadLen = int(ip.Length) - int(ip.IHL)*4 - hl
		} else if ip, ok := g.Layer(layers.LayerTypeIPv6).(*layers.IPv6); ok {
			p.payloadLen = int(ip.Length) - hl
		}
	}
	if ic, ok := g.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4); ok {
		p.icmpUnreach = ic.TypeCode.Type() == layers.ICMPv4TypeDestinationUnreachable
	}
	if ic, ok := g.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6); ok {
		p.icmpUnreach = ic.TypeCode.Type() == layers.ICMPv6TypeDestinationUnreachable
	}
	return p
}

// collector reads the tap in the background.
type collector struct {
	mu   sync.Mutex
	pkts []pkt
	done chan struct{}
}

func collect(t *testing.T, tap *Tap) *collector {
	c := &collector{done: make(chan struct{})}
	go func() {
		defer close(c.done)
		var rec Record
		for {
			if err := tap.Read(&rec); err != nil {
				if !errors.Is(err, os.ErrClosed) {
					t.Errorf("Read: %v", err)
				}
				return
			}
			p := decode(&rec)
			c.mu.Lock()
			c.pkts = append(c.pkts, p)
			c.mu.Unlock()
		}
	}()
	t.Cleanup(func() { tap.Close(); <-c.done })
	return c
}

// waitFor polls (no fixed sleeps: each check is cheap) until cond holds on
// the packets seen so far, for at most 10 s.
func (c *collector) waitFor(t *testing.T, what string, cond func([]pkt) bool) []pkt {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		c.mu.Lock()
		ps := append([]pkt(nil), c.pkts...)
		c.mu.Unlock()
		if cond(ps) {
			return ps
		}
		select {
		case <-ctx.Done():
			for _, p := range ps {
				t.Log(p)
			}
			t.Fatalf("timed out waiting for %s (%d events)", what, len(ps))
		case <-tick.C:
		}
	}
}

func TestTapEvents(t *testing.T) {
	for _, mode := range []string{"tcx", "clsact"} {
		t.Run(mode, func(t *testing.T) {
			n := newTestNet(t)
			forceClsact = mode == "clsact"
			defer func() { forceClsact = false }()
			tap, err := OpenTap(n.srvIf, n.srvNS, TapConfig{Snaplen: 200})
			if err != nil {
				t.Fatal(err)
			}
			if tap.Mode != mode {
				t.Fatalf("attached with %s, want %s", tap.Mode, mode)
			}
			c := collect(t, tap)
			testTapEvents(t, n, tap, c)
		})
	}
}

func testTapEvents(t *testing.T, n *testNet, tap *Tap, c *collector) {
	const rounds, bulk, conns = 5, 64 << 10, 3
	port := n.listen(t, func(cn net.Conn) {
		buf := make([]byte, 64)
		for i := 0; i < rounds; i++ {
			if _, err := io.ReadFull(cn, buf[:4]); err != nil {
				return
			}
			cn.Write([]byte("pong"))
		}
		cn.Write(bytes.Repeat([]byte{'b'}, bulk))
	})
	// A port nobody listens on: the server answers RST.
	refused := port + 1
	if refused > 65535 {
		refused = port - 1
	}
	start := time.Now()
	var cports []uint16
	n.client(t, func() error {
		for i := 0; i < conns; i++ {
			cn, err := net.Dial("tcp4", n.addr(port))
			if err != nil {
				return err
			}
			cports = append(cports, uint16(cn.LocalAddr().(*net.TCPAddr).Port))
			buf := make([]byte, 4)
			for r := 0; r < rounds; r++ {
				cn.Write([]byte("ping"))
				if _, err := io.ReadFull(cn, buf); err != nil {
					return err
				}
			}
			if m, err := io.Copy(io.Discard, cn); err != nil || m != bulk {
				return fmt.Errorf("bulk: %d bytes, %v", m, err)
			}
			cn.Close()
		}
		if _, err := net.Dial("tcp4", n.addr(refused)); err == nil {
			return errors.New("dial to the refused port succeeded")
		}
		// UDP to a closed port: the server answers ICMP port unreachable.
		u, err := net.Dial("udp4", n.addr(refused))
		if err != nil {
			return err
		}
		defer u.Close()
		_, err = u.Write([]byte("x"))
		return err
	})

	count := func(ps []pkt, f func(pkt) bool) int {
		k := 0
		for _, p := range ps {
			if f(p) {
				k++
			}
		}
		return k
	}
	isData := func(p pkt) bool { return p.tcp && p.payloadLen > 0 && !p.syn && !p.fin && !p.rst }
	complete := func(ps []pkt) bool {
		for _, cp := range cports {
			in := func(p pkt) bool { return p.tcp && !p.egress && p.sport == cp }
			out := func(p pkt) bool { return p.tcp && p.egress && p.dport == cp }
			if count(ps, func(p pkt) bool { return in(p) && p.syn && !p.ack }) == 0 ||
				count(ps, func(p pkt) bool { return out(p) && p.syn && p.ack }) == 0 ||
				count(ps, func(p pkt) bool { return in(p) && isData(p) }) == 0 ||
				count(ps, func(p pkt) bool { return out(p) && isData(p) }) == 0 ||
				count(ps, func(p pkt) bool { return in(p) && p.fin }) == 0 ||
				count(ps, func(p pkt) bool { return out(p) && p.fin }) == 0 {
				return false
			}
		}
		return count(ps, func(p pkt) bool { return p.egress && p.rst && p.sport == uint16(refused) }) > 0 &&
			count(ps, func(p pkt) bool { return p.egress && p.icmpUnreach }) > 0
	}
	c.waitFor(t, "the handshake, first data, FIN, RST and ICMP events", complete)

	// A marker connection attempt after everything else: once its RST is
	// in, any later data segment of the connections above would be too.
	n.client(t, func() error {
		cn, err := net.Dial("tcp4", n.addr(refused))
		if err == nil {
			cn.Close()
			return errors.New("marker dial succeeded")
		}
		return nil
	})
	ps := c.waitFor(t, "the marker RST", func(ps []pkt) bool {
		return count(ps, func(p pkt) bool { return p.egress && p.rst && p.sport == uint16(refused) }) >= 2
	})

	for _, cp := range cports {
		in := func(p pkt) bool { return p.tcp && !p.egress && p.sport == cp }
		out := func(p pkt) bool { return p.tcp && p.egress && p.dport == cp }
		if k := count(ps, func(p pkt) bool { return in(p) && isData(p) }); k != 1 {
			t.Errorf("client port %d: %d client->server data events, want 1 (the first)", cp, k)
		}
		if k := count(ps, func(p pkt) bool { return out(p) && isData(p) }); k != 1 {
			t.Errorf("client port %d: %d server->client data events, want 1 (the first; %d bulk bytes followed)", cp, k, bulk)
		}
		for _, p := range ps {
			if in(p) && isData(p) && string(p.payload) != "ping" {
				t.Errorf("client port %d: first client data %q, want \"ping\"", cp, p.payload)
			}
			if out(p) && isData(p) && string(p.payload) != "pong" {
				t.Errorf("client port %d: first server data %q, want \"pong\"", cp, p.payload)
			}
		}
		if k := count(ps, func(p pkt) bool { return in(p) && p.syn }); k != 1 {
			t.Errorf("client port %d: %d SYN events, want 1", cp, k)
		}
		pureACK := func(p pkt) bool { return p.ack && !p.syn && !p.fin && !p.rst && !isData(p) }
		if k := count(ps, func(p pkt) bool { return in(p) && pureACK(p) }); k != 1 {
			t.Errorf("client port %d: %d client pure ACKs, want 1 (the handshake's)", cp, k)
		}
		if k := count(ps, func(p pkt) bool { return out(p) && pureACK(p) }); k > 1 {
			t.Errorf("client port %d: %d server pure ACKs, want at most 1 (%d bulk bytes followed)", cp, k, bulk)
		}
	}
	// Nothing else: every event is a SYN/FIN/RST, a first data segment, a
	// first pure ACK or the ICMP error.
	for _, p := range ps {
		if !(p.icmpUnreach || p.tcp && (p.syn || p.fin || p.rst || isData(p) || p.ack)) {
			t.Errorf("unexpected event %v", p)
		}
		if d := p.time - time.Now().UnixNano(); d > int64(time.Second) || d < -int64(time.Since(start)+time.Second) {
			t.Errorf("event time %v is off by %v", time.Unix(0, p.time), time.Duration(d))
		}
		if p.ifindex != uint32(tap.Ifindex()) || p.linkType != LinkTypeEthernet {
			t.Errorf("event ifindex %d link type %d, want %d and 1", p.ifindex, p.linkType, tap.Ifindex())
		}
		if p.capLen > 200 || (p.origLen > 200 && p.capLen != 200) {
			t.Errorf("captured %d of %d bytes with snaplen 200", p.capLen, p.origLen)
		}
	}
	if l := tap.Lost(); l != 0 {
		t.Errorf("Lost() = %d, want 0", l)
	}
	t.Logf("%d events", len(ps))
}

func TestTapBurst(t *testing.T) {
	n := newTestNet(t)
	const conns = 2000
	port := n.listen(t, func(net.Conn) {})
	tap, err := OpenTap(n.srvIf, n.srvNS, TapConfig{Ports: []uint16{uint16(port)}})
	if err != nil {
		t.Fatal(err)
	}
	c := collect(t, tap)
	n.client(t, func() error {
		d := net.Dialer{Timeout: 5 * time.Second}
		for i := 0; i < conns; i++ {
			cn, err := d.Dial("tcp4", n.addr(port))
			if err != nil {
				return fmt.Errorf("connection %d: %w", i, err)
			}
			cn.Close()
		}
		return nil
	})
	// Count SYN events, not client ports: a port can come back once the
	// server side closed first and holds the TIME_WAIT.
	syns := func(ps []pkt) int {
		k := 0
		for _, p := range ps {
			if p.tcp && !p.egress && p.syn && !p.ack && p.dport == uint16(port) {
				k++
			}
		}
		return k
	}
	ps := c.waitFor(t, fmt.Sprintf("%d SYNs", conns), func(ps []pkt) bool { return syns(ps) >= conns })
	if k := syns(ps); k != conns {
		t.Errorf("%d SYN events, want %d", k, conns)
	}
	if l := tap.Lost(); l != 0 {
		t.Errorf("Lost() = %d, want 0", l)
	}
	t.Logf("%d events for %d connections", len(ps), conns)
}

// TestTapProgram feeds crafted frames to the program with BPF_PROG_TEST_RUN:
// IPv6, 802.1ad+802.1Q tags, ICMPv6 errors, the port filter, data on an
// unknown flow.
func TestTapProgram(t *testing.T) {
	requireRoot(t)
	// The other settings must pass the verifier too (raw-IP devices, the
	// snaplen bounds).
	for _, c := range []struct {
		snap int
		l2   bool
	}{{1, false}, {MaxSnaplen, false}, {MaxSnaplen, true}} {
		var o tapObjects
		if err := loadObjects(&o, TapConfig{Snaplen: c.snap}, 1<<16, c.l2); err != nil {
			t.Fatalf("snaplen %d l2 %v: %v", c.snap, c.l2, err)
		}
		o.Close()
	}
	var objs tapObjects
	if err := loadObjects(&objs, TapConfig{Snaplen: 64, Ports: []uint16{443, 8443}}, 1<<16, true); err != nil {
		t.Fatal(err)
	}
	defer objs.Close()
	rd, err := ringbuf.NewReader(objs.Events)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()

	a, b := net.ParseIP("2001:db8::1"), net.ParseIP("2001:db8::2")
	frame := func(vlans int, l ...gopacket.SerializableLayer) []byte {
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv6}
		ls := []gopacket.SerializableLayer{eth}
		if vlans == 2 {
			eth.EthernetType = layers.EthernetTypeQinQ
			ls = append(ls, &layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeDot1Q}, &layers.Dot1Q{VLANIdentifier: 200, Type: layers.EthernetTypeIPv6})
		}
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, append(ls, l...)...); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	tcp := func(src, dst net.IP, sp, dp int, flags string, payload string) []gopacket.SerializableLayer {
		ip := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolTCP, HopLimit: 64, SrcIP: src, DstIP: dst}
		tc := &layers.TCP{SrcPort: layers.TCPPort(sp), DstPort: layers.TCPPort(dp), Window: 1000,
			SYN: strings.Contains(flags, "S"), ACK: strings.Contains(flags, "A"), FIN: strings.Contains(flags, "F"), RST: strings.Contains(flags, "R")}
		tc.SetNetworkLayerForChecksum(ip)
		return []gopacket.SerializableLayer{ip, tc, gopacket.Payload(payload)}
	}
	unreach := func(inner []byte) []gopacket.SerializableLayer {
		ip := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolICMPv6, HopLimit: 64, SrcIP: b, DstIP: a}
		ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeDestinationUnreachable, 4)}
		ic.SetNetworkLayerForChecksum(ip)
		return []gopacket.SerializableLayer{ip, ic, gopacket.Payload(append(make([]byte, 4), inner...))}
	}
	innerTCP := func(dp int) []byte {
		f := frame(0, tcp(a, b, 40000, dp, "S", "")...)
		return f[14:]
	}
	cases := []struct {
		name  string
		prog  *ebpf.Program
		frame []byte
		want  bool
	}{
		{"qinq v6 SYN", objs.TapEgress, frame(2, tcp(a, b, 40000, 443, "S", "")...), true},
		{"SYN to a port not watched", objs.TapEgress, frame(0, tcp(a, b, 40001, 80, "S", "")...), false},
		{"data on a flow never seen", objs.TapEgress, frame(0, tcp(a, b, 40002, 443, "A", "hello")...), false},
		{"SYN-ACK", objs.TapIngress, frame(2, tcp(b, a, 443, 40000, "SA", "")...), true},
		{"first pure ACK a->b (the handshake's)", objs.TapEgress, frame(2, tcp(a, b, 40000, 443, "A", "")...), true},
		{"second pure ACK a->b", objs.TapEgress, frame(2, tcp(a, b, 40000, 443, "A", "")...), false},
		{"pure ACK on a flow never seen", objs.TapEgress, frame(0, tcp(a, b, 40009, 443, "A", "")...), false},
		{"first data a->b", objs.TapEgress, frame(2, tcp(a, b, 40000, 443, "A", "hello")...), true},
		{"second data a->b", objs.TapEgress, frame(2, tcp(a, b, 40000, 443, "A", "again")...), false},
		{"first data b->a", objs.TapIngress, frame(2, tcp(b, a, 443, 40000, "A", "world")...), true},
		{"second data b->a", objs.TapIngress, frame(2, tcp(b, a, 443, 40000, "A", "more")...), false},
		{"FIN", objs.TapIngress, frame(2, tcp(b, a, 443, 40000, "FA", "")...), true},
		{"ICMPv6 unreachable about a watched port", objs.TapIngress, frame(0, unreach(innerTCP(8443))...), true},
		{"ICMPv6 unreachable about another port", objs.TapIngress, frame(0, unreach(innerTCP(22))...), false},
	}
	var rec Record
	tp := &Tap{reader: rd}
	for _, tc := range cases {
		ret, err := tc.prog.Run(&ebpf.RunOptions{Data: tc.frame})
		if err != nil {
			t.Fatalf("%s: run: %v", tc.name, err)
		}
		if int32(ret) != -1 {
			t.Errorf("%s: returned %d, want TC_ACT_UNSPEC (-1)", tc.name, int32(ret))
		}
		tp.SetDeadline(time.Now()) // the record, if any, is already in
		err = tp.Read(&rec)
		got := err == nil
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("%s: read: %v", tc.name, err)
		}
		if got != tc.want {
			t.Errorf("%s: delivered %v, want %v", tc.name, got, tc.want)
			continue
		}
		if got {
			wantCap := min(len(tc.frame), 64)
			if !bytes.Equal(rec.Data, tc.frame[:wantCap]) || int(rec.OrigLen) != len(tc.frame) || rec.LinkType != LinkTypeEthernet || rec.Egress != (tc.prog == objs.TapEgress) {
				t.Errorf("%s: record %d/%d bytes egress=%v lt=%d, want the frame's first %d of %d", tc.name, len(rec.Data), rec.OrigLen, rec.Egress, rec.LinkType, wantCap, len(tc.frame))
			}
		}
	}
}

func TestOpenTapErrors(t *testing.T) {
	if _, err := OpenTap("lo", "", TapConfig{Snaplen: 1000}); err == nil {
		t.Error("snaplen 1000 accepted")
	}
	if _, err := OpenTap("lo", "no-such-ns-synscope", TapConfig{}); err == nil || !strings.Contains(err.Error(), "namespace") {
		t.Errorf("missing namespace: %v", err)
	}
	if _, err := OpenTap("no-such-if0", "", TapConfig{}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing interface: %v", err)
	}
}
