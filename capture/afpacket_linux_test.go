//go:build linux

package capture

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/bpf"
)

// Synthetic frames for the filter.

func afpEth(etype uint16, l3 []byte) []byte {
	b := make([]byte, 14, 14+len(l3))
	binary.BigEndian.PutUint16(b[12:], etype)
	return append(b, l3...)
}

func afpIPv4(proto byte, frag uint16, opts int, payload []byte) []byte {
	hl := 20 + 4*opts
	b := make([]byte, hl, hl+len(payload))
	b[0] = 0x40 | byte(hl/4)
	binary.BigEndian.PutUint16(b[2:], uint16(hl+len(payload)))
	binary.BigEndian.PutUint16(b[6:], frag)
	b[8], b[9] = 64, proto
	return append(b, payload...)
}

func afpIPv6(nh byte, payload []byte) []byte {
	b := make([]byte, 40, 40+len(payload))
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(len(payload)))
	b[6], b[7] = nh, 64
	return append(b, payload...)
}

func afpTCPSeg(src, dst uint16, flags byte, payload int) []byte {
	b := make([]byte, 20+payload)
	binary.BigEndian.PutUint16(b[0:], src)
	binary.BigEndian.PutUint16(b[2:], dst)
	b[12], b[13] = 5<<4, flags
	return b
}

func afpICMPErr(typ byte, quoted []byte) []byte {
	return append([]byte{typ, 1, 0, 0, 0, 0, 0, 0}, quoted...)
}

const afpFIN, afpSYN, afpRST, afpACK = 0x01, 0x02, 0x04, 0x10

func TestHandshakeFilter(t *testing.T) {
	quoteTCP := func(opts int, dst uint16) []byte {
		return afpIPv4(6, 0, opts, afpTCPSeg(40000, dst, afpSYN, 0)[:8])
	}
	cases := []struct {
		name        string
		frame       []byte
		all, port80 bool // kept with no ports / with Ports {80}
	}{
		{"v4 SYN to 80", afpEth(0x0800, afpIPv4(6, 0, 0, afpTCPSeg(40000, 80, afpSYN, 0))), true, true},
		{"v4 SYN-ACK from 80", afpEth(0x0800, afpIPv4(6, 0, 0, afpTCPSeg(80, 40000, afpSYN|afpACK, 0))), true, true},
		{"v4 SYN to 443", afpEth(0x0800, afpIPv4(6, 0, 0, afpTCPSeg(40000, 443, afpSYN, 0))), true, false},
		{"v4 SYN with IP options", afpEth(0x0800, afpIPv4(6, 0, 3, afpTCPSeg(40000, 80, afpSYN, 0))), true, true},
		{"v4 pure ACK", afpEth(0x0800, afpIPv4(6, 0, 0, afpTCPSeg(40000, 80, afpACK, 0))), false, false},
		{"v4 ACK with data", afpEth(0x0800, afpIPv4(6, 0, 0, afpTCPSeg(40000, 80, afpACK, 1000))), true, true},
		{"v4 FIN", afpEth(0x0800, afpIPv4(6, 0, 0, afpTCPSeg(80, 40000, afpFIN|afpACK, 0))), true, true},
		{"v4 RST", afpEth(0x0800, afpIPv4(6, 0, 0, afpTCPSeg(40000, 80, afpRST, 0))), true, true},
		{"v4 later fragment", afpEth(0x0800, afpIPv4(6, 185, 0, afpTCPSeg(40000, 80, afpSYN, 0))), false, false},
		{"v4 UDP", afpEth(0x0800, afpIPv4(17, 0, 0, make([]byte, 30))), false, false},
		{"ICMP unreachable quoting TCP 80", afpEth(0x0800, afpIPv4(1, 0, 0, afpICMPErr(3, quoteTCP(0, 80)))), true, true},
		{"ICMP unreachable quoting TCP 80, options", afpEth(0x0800, afpIPv4(1, 0, 0, afpICMPErr(3, quoteTCP(2, 80)))), true, true},
		{"ICMP unreachable quoting TCP 443", afpEth(0x0800, afpIPv4(1, 0, 0, afpICMPErr(3, quoteTCP(0, 443)))), true, false},
		{"ICMP unreachable quoting UDP", afpEth(0x0800, afpIPv4(1, 0, 0, afpICMPErr(3, afpIPv4(17, 0, 0, make([]byte, 8))))), false, false},
		{"ICMP echo", afpEth(0x0800, afpIPv4(1, 0, 0, afpICMPErr(8, make([]byte, 28)))), false, false},
		{"v6 SYN to 80", afpEth(0x86dd, afpIPv6(6, afpTCPSeg(40000, 80, afpSYN, 0))), true, true},
		{"v6 SYN to 443", afpEth(0x86dd, afpIPv6(6, afpTCPSeg(40000, 443, afpSYN, 0))), true, false},
		{"v6 pure ACK", afpEth(0x86dd, afpIPv6(6, afpTCPSeg(80, 40000, afpACK, 0))), false, false},
		{"v6 data", afpEth(0x86dd, afpIPv6(6, afpTCPSeg(80, 40000, afpACK, 10))), true, true},
		{"ICMPv6 unreachable quoting TCP 80", afpEth(0x86dd, afpIPv6(58, afpICMPErr(1, afpIPv6(6, afpTCPSeg(40000, 80, afpSYN, 0)[:8])))), true, true},
		{"ICMPv6 unreachable quoting TCP 443", afpEth(0x86dd, afpIPv6(58, afpICMPErr(1, afpIPv6(6, afpTCPSeg(40000, 443, afpSYN, 0)[:8])))), true, false},
		{"ICMPv6 neighbour solicitation", afpEth(0x86dd, afpIPv6(58, afpICMPErr(135, make([]byte, 16)))), false, false},
		{"ARP", afpEth(0x0806, make([]byte, 28)), false, false},
	}
	many := make([]uint16, maxFilterPorts+1) // 1..101: has 80, not 443
	for i := range many {
		many[i] = uint16(i + 1)
	}
	for _, ports := range [][]uint16{nil, {80, 8080}, many[:maxFilterPorts]} {
		prog, err := handshakeFilter(false, 128, ports)
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
			keep, err := vm.Run(c.frame)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			want := c.all
			if ports != nil {
				want = c.port80
			}
			if (keep > 0) != want {
				t.Errorf("ports %v: %s: kept %d bytes, want kept=%v", ports, c.name, keep, want)
			}
			if keep > 128 {
				t.Errorf("%s: kept %d bytes, more than the snaplen", c.name, keep)
			}
		}
	}
	if _, err := handshakeFilter(false, 128, many); err == nil {
		t.Error("no error for too many ports")
	}
}

// Live tests: two namespaces joined by a veth pair.

func afpRequireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: AF_PACKET capture and network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipped: needs iproute2's ip")
	}
}

type afpVeth struct {
	srvNS, cliNS, srvIf, cliIf string
	srvIP, cliIP               string
}

func afpIP(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func newAFPVeth(t *testing.T) *afpVeth {
	t.Helper()
	var r [3]byte
	rand.Read(r[:])
	id := hex.EncodeToString(r[:])
	v := &afpVeth{
		srvNS: "synscope-s" + id, cliNS: "synscope-c" + id,
		srvIf: "ssv" + id, cliIf: "ssc" + id,
		srvIP: fmt.Sprintf("10.252.%d.1", r[0]), cliIP: fmt.Sprintf("10.252.%d.2", r[0]),
	}
	afpIP(t, "netns", "add", v.srvNS)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", v.srvNS).Run() })
	afpIP(t, "netns", "add", v.cliNS)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", v.cliNS).Run() })
	afpIP(t, "link", "add", v.srvIf, "netns", v.srvNS, "type", "veth", "peer", "name", v.cliIf, "netns", v.cliNS)
	for _, s := range []struct{ ns, dev, ip string }{{v.srvNS, v.srvIf, v.srvIP}, {v.cliNS, v.cliIf, v.cliIP}} {
		afpIP(t, "-n", s.ns, "addr", "add", s.ip+"/30", "dev", s.dev)
		afpIP(t, "-n", s.ns, "link", "set", s.dev, "up")
		afpIP(t, "-n", s.ns, "link", "set", "lo", "up")
	}
	return v
}

// listen opens a TCP listener inside the server namespace.
func (v *afpVeth) listen(t *testing.T) net.Listener {
	t.Helper()
	var ln net.Listener
	if err := inNetns(v.srvNS, func() (err error) {
		ln, err = net.Listen("tcp4", v.srvIP+":0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// dial connects from the client namespace, retrying (bounded) until the veth
// carries traffic.
func (v *afpVeth) dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	var c net.Conn
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for {
		err = inNetns(v.cliNS, func() (err error) {
			c, err = net.DialTimeout("tcp4", addr, 2*time.Second)
			return err
		})
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// afpCollector reads a live source into copies until it ends.
type afpCollector struct {
	mu   sync.Mutex
	pkts []Packet
	err  error
	done chan struct{}
}

func afpCollect(src LiveSource) *afpCollector {
	c := &afpCollector{done: make(chan struct{})}
	go func() {
		defer close(c.done)
		var p Packet
		for {
			err := src.Next(&p)
			c.mu.Lock()
			if err != nil {
				c.err = err
				c.mu.Unlock()
				return
			}
			p.Data = append([]byte(nil), p.Data...)
			c.pkts = append(c.pkts, p)
			c.mu.Unlock()
		}
	}()
	return c
}

func (c *afpCollector) snapshot() []Packet {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Packet(nil), c.pkts...)
}

// afpWaitFor polls cond until it holds or the timeout passes.
func afpWaitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type afpTCP struct {
	src, dst uint16
	flags    byte
	payload  int
}

// afpParseTCP reads the TCP header of an IPv4 frame, Ethernet or Linux SLL.
func afpParseTCP(t *testing.T, p Packet) (afpTCP, bool) {
	t.Helper()
	l3, et := 14, 12
	if p.LinkType == linkTypeLinuxSLL {
		l3, et = 16, 14
	}
	d := p.Data
	if len(d) < l3+20 || binary.BigEndian.Uint16(d[et:]) != 0x0800 || d[l3+9] != 6 {
		return afpTCP{}, false
	}
	ihl := int(d[l3]&0xf) * 4
	tcp := d[l3+ihl:]
	if len(tcp) < 20 {
		t.Fatalf("packet %d: TCP header cut: %x", p.Num, d)
	}
	tot := int(binary.BigEndian.Uint16(d[l3+2:]))
	return afpTCP{
		src: binary.BigEndian.Uint16(tcp), dst: binary.BigEndian.Uint16(tcp[2:]),
		flags: tcp[13], payload: tot - ihl - int(tcp[12]>>4)*4,
	}, true
}

func TestAFPacketLive(t *testing.T) {
	afpRequireRoot(t)
	v := newAFPVeth(t)
	ln := v.listen(t)
	ln2 := v.listen(t) // traffic the port filter must drop
	port := uint16(ln.Addr().(*net.TCPAddr).Port)

	start := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const snap = 128
	eth, err := OpenAFPacket(ctx, LiveConfig{Interface: v.srvIf, Netns: v.srvNS, Snaplen: snap})
	if err != nil {
		t.Fatal(err)
	}
	defer eth.Close()
	ctxAny, cancelAny := context.WithCancel(context.Background())
	defer cancelAny()
	anySrc, err := OpenAFPacket(ctxAny, LiveConfig{Interface: "any", Netns: v.srvNS, Snaplen: snap, Ports: []uint16{port}, BufferMB: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer anySrc.Close()
	ce, ca := afpCollect(eth), afpCollect(anySrc)

	// Server: greet back, drain the bulk, close after the client's FIN.
	srvErr := make(chan error, 2)
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

	const bulk = 256 << 10
	for _, l := range []net.Listener{ln, ln2} {
		c := v.dial(t, l.Addr().String())
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
		c.CloseWrite()
		if _, err := io.Copy(io.Discard, c); err != nil { // until the server's FIN
			t.Fatal(err)
		}
		c.Close()
		if err := <-srvErr; err != nil {
			t.Fatal(err)
		}
	}

	// Both FINs of both connections on the veth, both FINs of the first on "any".
	fins := func(c *afpCollector, want int) func() bool {
		return func() bool {
			n := 0
			for _, p := range c.snapshot() {
				if s, ok := afpParseTCP(t, p); ok && s.flags&afpFIN != 0 {
					n++
				}
			}
			return n >= want
		}
	}
	afpWaitFor(t, 10*time.Second, "FINs on the veth", fins(ce, 4))
	afpWaitFor(t, 10*time.Second, "FINs on any", fins(ca, 2))

	now := time.Now()
	pkts := ce.snapshot()
	type dirKey struct {
		toSrv bool
		what  string
	}
	seen := map[dirKey]int{}
	bulkCut, dataBytes := 0, 0
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
		s, ok := afpParseTCP(t, p)
		if !ok {
			continue
		}
		if s.flags&(afpSYN|afpFIN|afpRST) == 0 && s.payload <= 0 {
			t.Errorf("packet %d: a pure ACK passed the filter: %x", p.Num, p.Data)
		}
		if s.src != port && s.dst != port {
			continue
		}
		toSrv := s.dst == port
		switch {
		case s.flags&(afpSYN|afpACK) == afpSYN:
			seen[dirKey{toSrv, "SYN"}]++
		case s.flags&(afpSYN|afpACK) == afpSYN|afpACK:
			seen[dirKey{toSrv, "SYN-ACK"}]++
		}
		if s.flags&afpFIN != 0 {
			seen[dirKey{toSrv, "FIN"}]++
		}
		if s.payload > 0 {
			seen[dirKey{toSrv, "data"}]++
			if toSrv {
				dataBytes += s.payload
			}
		}
		if s.payload > 0 && p.OrigLen > snap {
			if len(p.Data) != snap {
				t.Errorf("packet %d: %d bytes of a %d-byte segment, want the %d snaplen", p.Num, len(p.Data), p.OrigLen, snap)
			}
			bulkCut++
		}
	}
	for _, k := range []dirKey{{true, "SYN"}, {false, "SYN-ACK"}, {true, "data"}, {false, "data"}, {true, "FIN"}, {false, "FIN"}} {
		if seen[k] == 0 {
			t.Errorf("no %s towards the %s", k.what, map[bool]string{true: "server", false: "client"}[k.toSrv])
		}
	}
	if bulkCut == 0 || dataBytes < bulk {
		t.Errorf("bulk transfer: %d segments cut to the snaplen, %d bytes of payload seen, want > 0 and >= %d", bulkCut, dataBytes, bulk)
	}
	st := eth.Stats()
	if st.Received < uint64(len(pkts)) || st.Dropped != 0 {
		t.Errorf("stats %+v for %d packets read", st, len(pkts))
	}
	t.Logf("veth: %d packets (%d data segments cut to %d bytes), stats %+v", len(pkts), bulkCut, snap, st)

	// The cooked "any" capture with a port filter: only the first connection.
	apk := ca.snapshot()
	for _, p := range apk {
		if p.LinkType != linkTypeLinuxSLL || len(p.Data) > snap {
			t.Fatalf("any: packet %d: link type %d, %d bytes", p.Num, p.LinkType, len(p.Data))
		}
		s, ok := afpParseTCP(t, p)
		if !ok {
			t.Fatalf("any: packet %d is not IPv4 TCP: %x", p.Num, p.Data)
		}
		if s.src != port && s.dst != port {
			t.Errorf("any: packet %d: ports %d->%d passed the filter on %d", p.Num, s.src, s.dst, port)
		}
	}
	if len(apk) == 0 || binary.BigEndian.Uint16(apk[0].Data[2:]) != 1 || binary.BigEndian.Uint16(apk[0].Data[14:]) != 0x0800 {
		t.Errorf("any: bad SLL header %x", apk[0].Data[:16])
	}
	t.Logf("any: %d packets, stats %+v", len(apk), anySrc.Stats())

	// Cancelling the context ends the blocked Next with io.EOF, promptly.
	for _, x := range []struct {
		c    *afpCollector
		stop func()
	}{{ce, cancel}, {ca, func() { anySrc.Close() }}} {
		t0 := time.Now()
		x.stop()
		select {
		case <-x.c.done:
		case <-time.After(2 * time.Second):
			t.Fatal("Next still blocked 2s after the stop")
		}
		if !errors.Is(x.c.err, io.EOF) {
			t.Errorf("Next ended with %v, want io.EOF", x.c.err)
		}
		if d := time.Since(t0); d > 500*time.Millisecond {
			t.Errorf("Next took %v to return", d)
		}
	}
	if err := eth.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := eth.Next(&Packet{}); err != io.EOF {
		t.Errorf("Next after Close: %v", err)
	}
}

func TestAFPacketOpen(t *testing.T) {
	afpRequireRoot(t)
	ctx := context.Background()
	// The kernel accepts the longest programs, raw and cooked.
	ports := make([]uint16, maxFilterPorts)
	for i := range ports {
		ports[i] = uint16(1000 + i)
	}
	for _, ifc := range []string{"lo", "any"} {
		s, err := OpenAFPacket(ctx, LiveConfig{Interface: ifc, Ports: ports, BufferMB: 1})
		if err != nil {
			t.Fatalf("%s with %d ports: %v", ifc, len(ports), err)
		}
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}
	if _, err := OpenAFPacket(ctx, LiveConfig{Interface: "nosuchif0"}); err == nil || !strings.Contains(err.Error(), "no such interface") {
		t.Errorf("missing interface: %v", err)
	}
	if _, err := OpenAFPacket(ctx, LiveConfig{Interface: "lo", Netns: "synscope-no-such-ns"}); err == nil || !strings.Contains(err.Error(), "no such network namespace") {
		t.Errorf("missing namespace: %v", err)
	}
	if _, err := OpenAFPacket(ctx, LiveConfig{Interface: "lo", Netns: "/proc/self/ns/uts"}); err == nil || !strings.Contains(err.Error(), "not a network namespace") {
		t.Errorf("wrong namespace type: %v", err)
	}
	if _, err := OpenAFPacket(ctx, LiveConfig{Interface: "lo", Snaplen: 10}); err == nil {
		t.Error("no error for snaplen 10")
	}
}

func TestAFPacketNeedsRoot(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("skipped: running as root")
	}
	s, err := OpenAFPacket(context.Background(), LiveConfig{Interface: "lo"})
	if err == nil {
		s.Close()
		t.Skip("skipped: this process has CAP_NET_RAW")
	}
	if !errors.Is(err, ErrNeedRoot) || !strings.Contains(err.Error(), "needs root or CAP_NET_RAW") {
		t.Errorf("got %v", err)
	}
}
