//go:build pcap && cgo && linux

package capture

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	gopcap "github.com/gopacket/gopacket/pcap"
	"golang.org/x/net/bpf"
)

// pcapSLL turns an Ethernet frame into a Linux cooked one, as on "any".
func pcapSLL(eth []byte) []byte {
	b := make([]byte, 16, 16+len(eth)-14)
	binary.BigEndian.PutUint16(b[2:], 1) // ARPHRD_ETHER
	binary.BigEndian.PutUint16(b[4:], 6)
	copy(b[14:], eth[12:14])
	return append(b, eth[14:]...)
}

// TestPcapFilter checks the tcpdump-syntax filter in libpcap against the
// frames the AF_PACKET socket filter is tested with, on Ethernet and cooked
// frames, and that the two filters agree.
func TestPcapFilter(t *testing.T) {
	quoteTCP := func(opts int, dst uint16) []byte {
		return afpIPv4(6, 0, opts, afpTCPSeg(40000, dst, afpSYN, 0)[:8])
	}
	quoteTCP6 := func(dst uint16) []byte {
		return afpIPv6(6, afpTCPSeg(40000, dst, afpSYN, 0)[:8])
	}
	v4 := func(proto byte, payload []byte) []byte { return afpEth(0x0800, afpIPv4(proto, 0, 0, payload)) }
	v6 := func(nh byte, payload []byte) []byte { return afpEth(0x86dd, afpIPv6(nh, payload)) }
	tso := afpEth(0x0800, afpIPv4(6, 0, 0, afpTCPSeg(40000, 80, afpACK, 0)))
	binary.BigEndian.PutUint16(tso[14+2:], 0)
	cases := []struct {
		name        string
		frame       []byte
		all, port80 bool // kept with no ports / with Ports {80}
	}{
		{"v4 SYN to 80", v4(6, afpTCPSeg(40000, 80, afpSYN, 0)), true, true},
		{"v4 SYN-ACK from 80", v4(6, afpTCPSeg(80, 40000, afpSYN|afpACK, 0)), true, true},
		{"v4 SYN to 443", v4(6, afpTCPSeg(40000, 443, afpSYN, 0)), true, false},
		{"v4 SYN with IP options", afpEth(0x0800, afpIPv4(6, 0, 3, afpTCPSeg(40000, 80, afpSYN, 0))), true, true},
		{"v4 pure ACK", v4(6, afpTCPSeg(40000, 80, afpACK, 0)), false, false},
		{"v4 pure ACK, IP options", afpEth(0x0800, afpIPv4(6, 0, 3, afpTCPSeg(40000, 80, afpACK, 0))), false, false},
		{"v4 ACK with data", v4(6, afpTCPSeg(40000, 80, afpACK, 1000)), true, true},
		{"v4 ACK with 1 byte", v4(6, afpTCPSeg(80, 40000, afpACK, 1)), true, true},
		{"v4 ACK, IP length 0 (TSO)", tso, true, true},
		{"v4 FIN", v4(6, afpTCPSeg(80, 40000, afpFIN|afpACK, 0)), true, true},
		{"v4 RST", v4(6, afpTCPSeg(40000, 80, afpRST, 0)), true, true},
		{"v4 RST from 443", v4(6, afpTCPSeg(443, 40000, afpRST|afpACK, 0)), true, false},
		{"v4 later fragment", afpEth(0x0800, afpIPv4(6, 185, 0, afpTCPSeg(40000, 80, afpSYN, 0))), false, false},
		{"v4 UDP", v4(17, make([]byte, 30)), false, false},
		{"ICMP unreachable quoting TCP 80", v4(1, afpICMPErr(3, quoteTCP(0, 80))), true, true},
		{"ICMP unreachable quoting TCP 80, options", v4(1, afpICMPErr(3, quoteTCP(2, 80))), true, true},
		{"ICMP unreachable quoting TCP 443", v4(1, afpICMPErr(3, quoteTCP(0, 443))), true, false},
		{"ICMP unreachable quoting UDP", v4(1, afpICMPErr(3, afpIPv4(17, 0, 0, make([]byte, 8)))), false, false},
		{"ICMP echo", v4(1, afpICMPErr(8, make([]byte, 28))), false, false},
		{"ICMP time exceeded quoting TCP 80", v4(1, afpICMPErr(11, quoteTCP(0, 80))), false, false},
		{"v6 SYN to 80", v6(6, afpTCPSeg(40000, 80, afpSYN, 0)), true, true},
		{"v6 SYN-ACK from 80", v6(6, afpTCPSeg(80, 40000, afpSYN|afpACK, 0)), true, true},
		{"v6 SYN to 443", v6(6, afpTCPSeg(40000, 443, afpSYN, 0)), true, false},
		{"v6 FIN", v6(6, afpTCPSeg(80, 40000, afpFIN|afpACK, 0)), true, true},
		{"v6 RST", v6(6, afpTCPSeg(40000, 80, afpRST, 0)), true, true},
		{"v6 pure ACK", v6(6, afpTCPSeg(80, 40000, afpACK, 0)), false, false},
		{"v6 data", v6(6, afpTCPSeg(80, 40000, afpACK, 10)), true, true},
		{"v6 UDP", v6(17, make([]byte, 30)), false, false},
		{"ICMPv6 unreachable quoting TCP 80", v6(58, afpICMPErr(1, quoteTCP6(80))), true, true},
		{"ICMPv6 unreachable quoting TCP 443", v6(58, afpICMPErr(1, quoteTCP6(443))), true, false},
		{"ICMPv6 unreachable quoting UDP", v6(58, afpICMPErr(1, afpIPv6(17, make([]byte, 8)))), false, false},
		{"ICMPv6 neighbour solicitation", v6(58, afpICMPErr(135, make([]byte, 16))), false, false},
		{"ARP", afpEth(0x0806, make([]byte, 28)), false, false},
	}
	many := make([]uint16, maxFilterPorts+1) // 1..101: has 80, not 443
	for i := range many {
		many[i] = uint16(i + 1)
	}
	for _, ports := range [][]uint16{nil, {80, 8080}, {8080, 80, 80}, many[:maxFilterPorts]} {
		expr, err := pcapFilter(ports)
		if err != nil {
			t.Fatal(err)
		}
		eth, err := gopcap.NewBPF(layers.LinkTypeEthernet, 256, expr)
		if err != nil {
			t.Fatalf("ports %v: libpcap rejects the filter: %v\n%s", ports, err, expr)
		}
		sll, err := gopcap.NewBPF(layers.LinkTypeLinuxSLL, 256, expr)
		if err != nil {
			t.Fatalf("ports %v: libpcap rejects the filter on cooked frames: %v", ports, err)
		}
		prog, err := handshakeFilter(false, 256, ports)
		if err != nil {
			t.Fatal(err)
		}
		ins := make([]bpf.Instruction, len(prog))
		for i, r := range prog {
			ins[i] = r.Disassemble()
		}
		vm, err := bpf.NewVM(ins)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cases {
			want := c.all
			if ports != nil {
				want = c.port80
			}
			ci := gopacket.CaptureInfo{Timestamp: time.Unix(1, 0), CaptureLength: len(c.frame), Length: len(c.frame)}
			if got := eth.Matches(ci, c.frame); got != want {
				t.Errorf("ports %v: Ethernet %s: kept=%v, want %v", ports, c.name, got, want)
			}
			cooked := pcapSLL(c.frame)
			ci.CaptureLength, ci.Length = len(cooked), len(cooked)
			if got := sll.Matches(ci, cooked); got != want {
				t.Errorf("ports %v: cooked %s: kept=%v, want %v", ports, c.name, got, want)
			}
			if keep, err := vm.Run(c.frame); err != nil || (keep > 0) != want {
				t.Errorf("ports %v: %s: the AF_PACKET filter kept %d bytes (%v), libpcap's kept=%v", ports, c.name, keep, err, want)
			}
		}
	}
	if _, err := pcapFilter(many); err == nil {
		t.Error("no error for too many ports")
	}
}

func TestPcapOpenArgs(t *testing.T) {
	ctx := context.Background()
	if _, err := OpenPcap(ctx, LiveConfig{}); err == nil {
		t.Error("no error without an interface")
	}
	if _, err := OpenPcap(ctx, LiveConfig{Interface: "lo", Snaplen: 10}); err == nil {
		t.Error("no error for snaplen 10")
	}
	if _, err := OpenPcap(ctx, LiveConfig{Interface: "lo", BufferMB: -1}); err == nil {
		t.Error("no error for a negative buffer")
	}
	many := make([]uint16, maxFilterPorts+1)
	for i := range many {
		many[i] = uint16(i + 1)
	}
	if _, err := OpenPcap(ctx, LiveConfig{Interface: "lo", Ports: many}); err == nil {
		t.Error("no error for too many ports")
	}
}

func TestPcapOpen(t *testing.T) {
	afpRequireRoot(t)
	ctx := context.Background()
	ports := make([]uint16, maxFilterPorts)
	for i := range ports {
		ports[i] = uint16(1000 + i)
	}
	for _, ifc := range []string{"lo", "any"} {
		s, err := OpenPcap(ctx, LiveConfig{Interface: ifc, Ports: ports, BufferMB: 1})
		if err != nil {
			t.Fatalf("%s with %d ports: %v", ifc, len(ports), err)
		}
		if err := s.Close(); err != nil {
			t.Error(err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	}
	if _, err := OpenPcap(ctx, LiveConfig{Interface: "nosuchif0"}); err == nil || !strings.Contains(err.Error(), "no such interface") {
		t.Errorf("missing interface: %v", err)
	}
	if _, err := OpenPcap(ctx, LiveConfig{Interface: "lo", Netns: "synscope-no-such-ns"}); err == nil || !strings.Contains(err.Error(), "no such network namespace") {
		t.Errorf("missing namespace: %v", err)
	}
	if _, err := OpenPcap(ctx, LiveConfig{Interface: "lo", Netns: "/proc/self/ns/uts"}); err == nil || !strings.Contains(err.Error(), "not a network namespace") {
		t.Errorf("wrong namespace type: %v", err)
	}
}

// TestPcapNeedsRoot runs unprivileged: directly, or as root by running this
// test again as nobody (with setpriv).
func TestPcapNeedsRoot(t *testing.T) {
	if os.Geteuid() == 0 {
		setpriv, err := exec.LookPath("setpriv")
		if err != nil {
			t.Skip("skipped: running as root, and no setpriv to drop it")
		}
		exe, err := os.Executable()
		if err != nil {
			t.Skip(err)
		}
		dir := t.TempDir()
		bin := filepath.Join(dir, "capture.test")
		data, err := os.ReadFile(exe)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin, data, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all",
			bin, "-test.run=^TestPcapNeedsRoot$", "-test.v")
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestPcapNeedsRoot") {
			t.Fatalf("as nobody: %v\n%s", err, out)
		}
		t.Logf("as nobody:\n%s", out)
		return
	}
	s, err := OpenPcap(context.Background(), LiveConfig{Interface: "lo"})
	if err == nil {
		s.Close()
		t.Skip("skipped: this process has CAP_NET_RAW")
	}
	if !errors.Is(err, ErrPcapNeedRoot) || !strings.Contains(err.Error(), "libpcap capture needs root or CAP_NET_RAW") {
		t.Errorf("got %v", err)
	}
	t.Logf("error: %v", err)
}

type pcapSeg struct {
	v6       bool
	src, dst uint16
	flags    byte
	payload  int
}

// pcapParseTCP reads the TCP header of an IPv4 or IPv6 frame, Ethernet or
// Linux SLL (IPv6 without extension headers).
func pcapParseTCP(t *testing.T, p Packet) (pcapSeg, bool) {
	t.Helper()
	l3, et := 14, 12
	if p.LinkType == linkTypeLinuxSLL {
		l3, et = 16, 14
	}
	d := p.Data
	if len(d) < l3+40 {
		return pcapSeg{}, false
	}
	var s pcapSeg
	var tcp []byte
	switch binary.BigEndian.Uint16(d[et:]) {
	case 0x0800:
		if d[l3+9] != 6 {
			return pcapSeg{}, false
		}
		ihl := int(d[l3]&0xf) * 4
		tcp = d[l3+ihl:]
		s.payload = int(binary.BigEndian.Uint16(d[l3+2:])) - ihl
	case 0x86dd:
		if d[l3+6] != 6 {
			return pcapSeg{}, false
		}
		s.v6 = true
		tcp = d[l3+40:]
		s.payload = int(binary.BigEndian.Uint16(d[l3+4:]))
	default:
		return pcapSeg{}, false
	}
	if len(tcp) < 20 {
		t.Fatalf("packet %d: TCP header cut: %x", p.Num, d)
	}
	s.src, s.dst = binary.BigEndian.Uint16(tcp), binary.BigEndian.Uint16(tcp[2:])
	s.flags = tcp[13]
	s.payload -= int(tcp[12]>>4) * 4
	return s, true
}

func TestPcapLive(t *testing.T) {
	afpRequireRoot(t)
	v := newAFPVeth(t)
	// IPv6 too, without duplicate address detection so it is usable now.
	srv6, cli6 := "fd53:7973::1", "fd53:7973::2"
	afpIP(t, "-n", v.srvNS, "addr", "add", srv6+"/64", "dev", v.srvIf, "nodad")
	afpIP(t, "-n", v.cliNS, "addr", "add", cli6+"/64", "dev", v.cliIf, "nodad")

	ln := v.listen(t)
	ln2 := v.listen(t) // traffic the port filter must drop
	var ln6 net.Listener
	if err := inNetns(v.srvNS, func() (err error) {
		ln6, err = net.Listen("tcp6", "["+srv6+"]:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln6.Close()
	closed := v.listen(t) // a port nobody listens on: the SYN gets a RST
	closedAddr := closed.Addr().String()
	closed.Close()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	port2 := uint16(ln2.Addr().(*net.TCPAddr).Port)
	port6 := uint16(ln6.Addr().(*net.TCPAddr).Port)
	closedPort := uint16(closed.Addr().(*net.TCPAddr).Port)

	start := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const snap = 128
	eth, err := OpenPcap(ctx, LiveConfig{Interface: v.srvIf, Netns: v.srvNS, Snaplen: snap})
	if err != nil {
		t.Fatal(err)
	}
	defer eth.Close()
	if info := eth.Info(); info.Path != v.srvIf+"@"+v.srvNS || info.Snaplen != snap || len(info.LinkTypes) != 1 || info.LinkTypes[0] != linkTypeEthernet {
		t.Errorf("info %+v", info)
	}
	anySrc, err := OpenPcap(context.Background(), LiveConfig{Interface: "any", Netns: v.srvNS, Snaplen: snap, Ports: []uint16{port, closedPort}, BufferMB: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer anySrc.Close()
	ce, ca := afpCollect(eth), afpCollect(anySrc)

	// Server: greet back, drain the bulk, close after the client's FIN.
	srvErr := make(chan error, 3)
	serve := func(ln net.Listener) {
		c, err := ln.Accept()
		if err != nil {
			srvErr <- err
			return
		}
		defer c.Close()
		buf := make([]byte, 5)
		if _, err := io.ReadFull(c, buf); err != nil {
			srvErr <- err
			return
		}
		if _, err := c.Write([]byte("world")); err != nil {
			srvErr <- err
			return
		}
		_, err = io.Copy(io.Discard, c)
		srvErr <- err
	}
	go serve(ln)
	go serve(ln2)
	go serve(ln6)

	const bulk = 64 << 10
	talk := func(c net.Conn) {
		t.Helper()
		if _, err := c.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 5)
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(make([]byte, bulk)); err != nil {
			t.Fatal(err)
		}
		c.(*net.TCPConn).CloseWrite()
		if _, err := io.Copy(io.Discard, c); err != nil { // until the server's FIN
			t.Fatal(err)
		}
		c.Close()
		if err := <-srvErr; err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range []net.Listener{ln, ln2} {
		talk(v.dial(t, l.Addr().String()))
	}
	var c6 net.Conn
	if err := inNetns(v.cliNS, func() (err error) {
		c6, err = net.DialTimeout("tcp6", ln6.Addr().String(), 5*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	talk(c6)
	if err := inNetns(v.cliNS, func() error {
		c, err := net.DialTimeout("tcp4", closedAddr, 5*time.Second)
		if err == nil {
			c.Close()
			return fmt.Errorf("connected to the closed port %s", closedAddr)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return err
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	type dirKey struct {
		v6    bool
		toSrv bool
		what  string
	}
	count := func(c *afpCollector) map[dirKey]int {
		seen := map[dirKey]int{}
		for _, p := range c.snapshot() {
			s, ok := pcapParseTCP(t, p)
			if !ok {
				continue
			}
			var toSrv bool
			switch {
			case s.dst == port || s.dst == port2 || s.dst == port6 || s.dst == closedPort:
				toSrv = true
			case s.src == port || s.src == port2 || s.src == port6 || s.src == closedPort:
			default:
				continue
			}
			k := func(w string) dirKey { return dirKey{s.v6, toSrv, w} }
			switch {
			case s.flags&(afpSYN|afpACK) == afpSYN:
				seen[k("SYN")]++
			case s.flags&(afpSYN|afpACK) == afpSYN|afpACK:
				seen[k("SYN-ACK")]++
			}
			if s.flags&afpFIN != 0 {
				seen[k("FIN")]++
			}
			if s.flags&afpRST != 0 {
				seen[k("RST")]++
			}
			if s.payload > 0 {
				seen[k("data")]++
			}
		}
		return seen
	}
	// Both FINs of all three connections and the RST on the veth.
	afpWaitFor(t, 10*time.Second, "FINs and the RST on the veth", func() bool {
		s := count(ce)
		return s[dirKey{false, true, "FIN"}] >= 2 && s[dirKey{false, false, "FIN"}] >= 2 &&
			s[dirKey{true, true, "FIN"}] >= 1 && s[dirKey{true, false, "FIN"}] >= 1 && s[dirKey{false, false, "RST"}] >= 1
	})
	afpWaitFor(t, 10*time.Second, "FINs and the RST on any", func() bool {
		s := count(ca)
		return s[dirKey{false, true, "FIN"}] >= 1 && s[dirKey{false, false, "FIN"}] >= 1 && s[dirKey{false, false, "RST"}] >= 1
	})

	// Cancelling the context ends the blocked Next with io.EOF, promptly;
	// so does Close.
	for _, x := range []struct {
		name string
		c    *afpCollector
		stop func()
	}{{"cancel", ce, cancel}, {"Close", ca, func() { anySrc.Close() }}} {
		t0 := time.Now()
		x.stop()
		select {
		case <-x.c.done:
		case <-time.After(2 * time.Second):
			t.Fatalf("%s: Next still blocked 2s after the stop", x.name)
		}
		if !errors.Is(x.c.err, io.EOF) {
			t.Errorf("%s: Next ended with %v, want io.EOF", x.name, x.c.err)
		}
		d := time.Since(t0)
		if d > 500*time.Millisecond {
			t.Errorf("%s: Next took %v to return", x.name, d)
		}
		t.Logf("%s: Next returned io.EOF after %v", x.name, d)
	}

	now := time.Now()
	pkts := ce.snapshot()
	bulkCut := 0
	for i, p := range pkts {
		if p.Num != uint64(i+1) {
			t.Fatalf("packet %d numbered %d", i+1, p.Num)
		}
		if p.LinkType != linkTypeEthernet {
			t.Fatalf("packet %d: link type %d", p.Num, p.LinkType)
		}
		if p.Time < start.Add(-time.Second).UnixNano() || p.Time > now.Add(time.Second).UnixNano() {
			t.Errorf("packet %d: time %v not within a second of the test", p.Num, time.Unix(0, p.Time))
		}
		if len(p.Data) > snap || p.OrigLen < len(p.Data) {
			t.Errorf("packet %d: %d bytes of %d, snaplen %d", p.Num, len(p.Data), p.OrigLen, snap)
		}
		s, ok := pcapParseTCP(t, p)
		if !ok {
			if !pcapIsICMPUnreach(p) {
				t.Errorf("packet %d: neither TCP nor an ICMP error passed the filter: %x", p.Num, p.Data)
			}
			continue
		}
		if s.flags&(afpSYN|afpFIN|afpRST) == 0 && s.payload <= 0 {
			t.Errorf("packet %d: a pure ACK passed the filter: %x", p.Num, p.Data)
		}
		if s.payload > 0 && p.OrigLen > snap {
			if len(p.Data) != snap {
				t.Errorf("packet %d: %d bytes of a %d-byte segment, want the %d snaplen", p.Num, len(p.Data), p.OrigLen, snap)
			}
			bulkCut++
		}
	}
	seen := count(ce)
	for _, v6 := range []bool{false, true} {
		for _, k := range []dirKey{{v6, true, "SYN"}, {v6, false, "SYN-ACK"}, {v6, true, "data"}, {v6, false, "data"}, {v6, true, "FIN"}, {v6, false, "FIN"}} {
			if seen[k] == 0 {
				t.Errorf("IPv6 %v: no %s towards the %s", v6, k.what, map[bool]string{true: "server", false: "client"}[k.toSrv])
			}
		}
	}
	if seen[dirKey{false, true, "SYN"}] < 3 || seen[dirKey{false, false, "RST"}] == 0 {
		t.Errorf("IPv4: %d SYNs (want 3: two connections and the closed port), %d RSTs to the client", seen[dirKey{false, true, "SYN"}], seen[dirKey{false, false, "RST"}])
	}
	if bulkCut == 0 {
		t.Error("no data segment cut to the snaplen")
	}
	st := eth.Stats()
	if st.Received < uint64(len(pkts)) || st.Dropped != 0 {
		t.Errorf("stats %+v for %d packets read", st, len(pkts))
	}
	if info := eth.Info(); info.Packets != uint64(len(pkts)) || info.First == 0 || info.Last < info.First {
		t.Errorf("info %+v for %d packets", info, len(pkts))
	}
	t.Logf("veth: %d packets (%d data segments cut to %d bytes), stats %+v, seen %v", len(pkts), bulkCut, snap, st, seen)

	// The cooked "any" capture with a port filter: only the first
	// connection and the closed port.
	apk := ca.snapshot()
	for _, p := range apk {
		if p.LinkType != linkTypeLinuxSLL || len(p.Data) > snap {
			t.Fatalf("any: packet %d: link type %d, %d bytes", p.Num, p.LinkType, len(p.Data))
		}
		s, ok := pcapParseTCP(t, p)
		if !ok {
			t.Fatalf("any: packet %d is not TCP: %x", p.Num, p.Data)
		}
		if s.src != port && s.dst != port && s.src != closedPort && s.dst != closedPort {
			t.Errorf("any: packet %d: ports %d->%d passed the filter on %d, %d", p.Num, s.src, s.dst, port, closedPort)
		}
	}
	if len(apk) == 0 || binary.BigEndian.Uint16(apk[0].Data[14:]) != 0x0800 {
		t.Errorf("any: bad SLL header %x", apk[0].Data[:16])
	}
	ast := anySrc.Stats() // after Close: the totals read at Close
	if ast.Received < uint64(len(apk)) {
		t.Errorf("any: stats %+v for %d packets", ast, len(apk))
	}
	t.Logf("any: %d packets, stats %+v", len(apk), ast)

	if err := eth.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := eth.Next(&Packet{}); err != io.EOF {
		t.Errorf("Next after Close: %v", err)
	}
	if st2 := eth.Stats(); st2.Received < st.Received {
		t.Errorf("stats after Close %+v, before %+v", st2, st)
	}
}

func pcapIsICMPUnreach(p Packet) bool {
	d := p.Data
	if len(d) < 14+21 {
		return false
	}
	switch binary.BigEndian.Uint16(d[12:]) {
	case 0x0800:
		return d[14+9] == 1 && d[14+int(d[14]&0xf)*4] == 3
	case 0x86dd:
		return len(d) > 14+40 && d[14+6] == 58 && d[14+40] == 1
	}
	return false
}
