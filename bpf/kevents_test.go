//go:build linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package bpf

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/synscope/synscope/internal/kevent"
	"golang.org/x/sys/unix"
)

const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

func requireKernelEvents(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: the kernel events tests need root (network namespaces, BPF load, raw tracepoints)")
	}
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		t.Skip("skipped: the kernel has no BTF (/sys/kernel/btf/vmlinux): kernel events need it for CO-RE")
	}
	for _, c := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("skipped: %s is not installed (make deps installs nftables)", c)
		}
	}
}

// klab is a client and a server namespace joined by a veth pair, with
// 10.251.X.1 and fd51:251:X::1 on the client, 10.251.X.2 and fd51:251:X::2
// on the server.
type klab struct {
	srvNS, cliNS   string
	srvIf, cliIf   string
	srv4, cli4     netip.Addr
	srv6, cli6     netip.Addr
	srvFD, cliFD   int
	srvIno, cliIno uint32
}

func kcmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func newKLab(t *testing.T) *klab {
	t.Helper()
	b := make([]byte, 3)
	rand.Read(b)
	sfx := hex.EncodeToString(b)
	x := byte(mrand.IntN(256))
	l := &klab{
		srvNS: "ske-" + sfx + "s", cliNS: "ske-" + sfx + "c",
		srvIf: "ske" + sfx + "s", cliIf: "ske" + sfx + "c",
		srv4: netip.AddrFrom4([4]byte{10, 251, x, 2}), cli4: netip.AddrFrom4([4]byte{10, 251, x, 1}),
		srv6: netip.MustParseAddr(fmt.Sprintf("fd51:251:%x::2", x)), cli6: netip.MustParseAddr(fmt.Sprintf("fd51:251:%x::1", x)),
	}
	for _, ns := range []string{l.srvNS, l.cliNS} {
		kcmd(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	}
	kcmd(t, "ip", "link", "add", l.srvIf, "netns", l.srvNS, "type", "veth", "peer", "name", l.cliIf, "netns", l.cliNS)
	for _, c := range []struct {
		ns, dev string
		a4, a6  netip.Addr
	}{{l.srvNS, l.srvIf, l.srv4, l.srv6}, {l.cliNS, l.cliIf, l.cli4, l.cli6}} {
		kcmd(t, "ip", "-n", c.ns, "addr", "add", c.a4.String()+"/30", "dev", c.dev)
		kcmd(t, "ip", "-n", c.ns, "addr", "add", c.a6.String()+"/64", "dev", c.dev, "nodad")
		kcmd(t, "ip", "-n", c.ns, "link", "set", c.dev, "up")
		kcmd(t, "ip", "-n", c.ns, "link", "set", "lo", "up")
	}
	var err error
	for _, c := range []struct {
		ns  string
		fd  *int
		ino *uint32
	}{{l.srvNS, &l.srvFD, &l.srvIno}, {l.cliNS, &l.cliFD, &l.cliIno}} {
		if *c.fd, err = unix.Open("/var/run/netns/"+c.ns, unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
			t.Fatal(err)
		}
		fd := *c.fd
		t.Cleanup(func() { unix.Close(fd) })
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			t.Fatal(err)
		}
		*c.ino = uint32(st.Ino)
	}
	return l
}

// nft runs nft commands inside a namespace (a process of its own, so ip
// netns exec is fine here).
func (l *klab) nft(t *testing.T, ns string, cmds ...string) {
	t.Helper()
	for _, c := range cmds {
		kcmd(t, append([]string{"ip", "netns", "exec", ns, "nft"}, strings.Fields(c)...)...)
	}
}

// listen opens a listener in the server namespace; accepted connections go
// to the channel.
func (l *klab) listen(t *testing.T, addr netip.Addr) (uint16, <-chan net.Conn) {
	t.Helper()
	var ln net.Listener
	if err := inNetns(l.srvFD, func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	conns := make(chan net.Conn, 4)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			conns <- c
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return uint16(ln.Addr().(*net.TCPAddr).Port), conns
}

// dial connects from the client namespace, from the given local address,
// in the background; the result arrives on the channel.
func (l *klab) dial(ctx context.Context, local, remote netip.AddrPort) <-chan error {
	res := make(chan error, 1)
	go func() {
		res <- inNetns(l.cliFD, func() error {
			d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(local)}
			c, err := d.DialContext(ctx, "tcp", remote.String())
			if err == nil {
				c.Close()
			}
			return err
		})
	}()
	return res
}

// kcollector reads kernel events in the background.
type kcollector struct {
	mu     sync.Mutex
	evs    []kevent.Event
	notify chan struct{}
	done   chan struct{}
}

func kcollect(t *testing.T, k *KernelEvents) *kcollector {
	c := &kcollector{notify: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for {
			var e kevent.Event
			if err := k.Read(&e); err != nil {
				if !errors.Is(err, os.ErrClosed) {
					t.Errorf("Read: %v", err)
				}
				return
			}
			c.mu.Lock()
			c.evs = append(c.evs, e)
			c.mu.Unlock()
			select {
			case c.notify <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() { k.Close(); <-c.done })
	return c
}

func (c *kcollector) snapshot() []kevent.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]kevent.Event(nil), c.evs...)
}

func evString(e kevent.Event) string {
	return fmt.Sprintf("%s %v->%v flags=%#02x seq=%d ack=%d state=%d reason=%d(%s) loc=%s netns=%d",
		e.Kind, e.Src, e.Dst, e.Flags, e.Seq, e.Ack, e.State, e.Reason, e.ReasonName, e.Location, e.Netns)
}

// waitFor waits, for at most 10 s, until an event matching match arrives
// and returns the matching events seen so far.
func (c *kcollector) waitFor(t *testing.T, what string, match func(kevent.Event) bool) []kevent.Event {
	t.Helper()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		var got []kevent.Event
		all := c.snapshot()
		for _, e := range all {
			if match(e) {
				got = append(got, e)
			}
		}
		if len(got) > 0 {
			return got
		}
		select {
		case <-c.notify:
		case <-timeout.C:
			for _, e := range all {
				t.Log(evString(e))
			}
			t.Fatalf("timed out waiting for %s (%d events)", what, len(all))
		}
	}
}

func tuple(src, dst netip.AddrPort) func(kevent.Event) bool {
	return func(e kevent.Event) bool { return e.Src == src && e.Dst == dst }
}

// seg is a TCP segment seen by the tap on the server's veth.
type seg struct {
	egress   bool
	src, dst netip.AddrPort
	flags    uint8
	seq, ack uint32
}

type segCollector struct {
	mu     sync.Mutex
	segs   []seg
	notify chan struct{}
}

func tapSegments(t *testing.T, l *klab) *segCollector {
	t.Helper()
	tap, err := OpenTap(l.srvIf, l.srvNS, TapConfig{})
	if err != nil {
		t.Fatal(err)
	}
	c := &segCollector{notify: make(chan struct{}, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var rec Record
		for tap.Read(&rec) == nil {
			g := gopacket.NewPacket(rec.Data, layers.LayerTypeEthernet, gopacket.NoCopy)
			tc, ok := g.Layer(layers.LayerTypeTCP).(*layers.TCP)
			if !ok || g.NetworkLayer() == nil {
				continue
			}
			nf := g.NetworkLayer().NetworkFlow()
			s, _ := netip.AddrFromSlice(nf.Src().Raw())
			d, _ := netip.AddrFromSlice(nf.Dst().Raw())
			c.mu.Lock()
			c.segs = append(c.segs, seg{rec.Egress, netip.AddrPortFrom(s, uint16(tc.SrcPort)), netip.AddrPortFrom(d, uint16(tc.DstPort)), tc.Contents[13], tc.Seq, tc.Ack})
			c.mu.Unlock()
			select {
			case c.notify <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() { tap.Close(); <-done })
	return c
}

func (c *segCollector) waitFor(t *testing.T, what string, match func(seg) bool) seg {
	t.Helper()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		c.mu.Lock()
		for _, s := range c.segs {
			if match(s) {
				c.mu.Unlock()
				return s
			}
		}
		n := len(c.segs)
		c.mu.Unlock()
		select {
		case <-c.notify:
		case <-timeout.C:
			t.Fatalf("timed out waiting for the tap to see %s (%d segments)", what, n)
		}
	}
}

// TestKernelEvents drives, in a fresh pair of namespaces, each event the
// program reports and checks it against what the tap saw on the wire.
// Kernel events are read for the server namespace (srv) and, to prove that
// the namespace filter works both ways, for the client's (cli).
func TestKernelEvents(t *testing.T) {
	requireKernelEvents(t)
	l := newKLab(t)
	srvK, err := OpenKernelEvents(KernelEventsConfig{Netns: l.srvNS})
	if err != nil {
		t.Fatal(err)
	}
	if srvK.Netns() != l.srvIno {
		t.Fatalf("watching netns %d, want %d", srvK.Netns(), l.srvIno)
	}
	for _, n := range srvK.Notes() {
		t.Logf("note: %s", n)
	}
	cliK, err := OpenKernelEvents(KernelEventsConfig{Netns: "/var/run/netns/" + l.cliNS})
	if err != nil {
		t.Fatal(err)
	}
	// A third watcher keeps only port 8080.
	portK, err := OpenKernelEvents(KernelEventsConfig{Netns: l.srvNS, Ports: []uint16{0, 8080}})
	if err != nil {
		t.Fatal(err)
	}
	srv, cli, port8080 := kcollect(t, srvK), kcollect(t, cliK), kcollect(t, portK)
	wire := tapSegments(t, l)
	var nextPort uint16 = 41000
	cport := func() uint16 { nextPort++; return nextPort }

	t.Run("nft-drops-syn", func(t *testing.T) {
		l.nft(t, l.srvNS, "add table inet t",
			"add chain inet t in { type filter hook input priority 0 ; }",
			"add rule inet t in tcp dport 8080 tcp flags syn drop")
		for _, fam := range []struct{ cli, srv netip.Addr }{{l.cli4, l.srv4}, {l.cli6, l.srv6}} {
			src, dst := netip.AddrPortFrom(fam.cli, cport()), netip.AddrPortFrom(fam.srv, 8080)
			ctx, cancel := context.WithCancel(context.Background())
			res := l.dial(ctx, src, dst)
			drops := srv.waitFor(t, "the drop of the SYN to "+dst.String(), func(e kevent.Event) bool {
				return e.Kind == kevent.KindDrop && tuple(src, dst)(e)
			})
			cancel()
			<-res
			syn := wire.waitFor(t, "the SYN", func(s seg) bool { return !s.egress && s.src == src && s.dst == dst && s.flags&tcpSYN != 0 })
			d := drops[0]
			t.Logf("%s", evString(d))
			if d.Flags&(tcpSYN|tcpACK|tcpRST|tcpFIN) != tcpSYN || d.Seq != syn.seq || d.Ack != 0 {
				t.Errorf("drop: flags %#x seq %d ack %d, want the SYN's: flags %#x seq %d ack 0", d.Flags, d.Seq, d.Ack, syn.flags, syn.seq)
			}
			if d.ReasonName != "NETFILTER_DROP" {
				t.Errorf("drop reason %d %q, want NETFILTER_DROP", d.Reason, d.ReasonName)
			}
			// 6.18 frees the skb in nft_do_chain itself (as the
			// tracefs output says: location=nft_do_chain+0x3e8/0x610);
			// kernels whose nftables passes no reason free it in
			// nf_hook_slow.
			if !strings.HasPrefix(d.Location, "nft_do_chain+0x") && !strings.HasPrefix(d.Location, "nf_hook_slow+0x") {
				t.Errorf("drop location %q, want nft_do_chain+0x... (or nf_hook_slow+0x...)", d.Location)
			}
			if d.Netns != l.srvIno {
				t.Errorf("drop netns %d, want %d", d.Netns, l.srvIno)
			}
			if d.Time < time.Now().Add(-10*time.Second).UnixNano() || d.Time > time.Now().UnixNano() {
				t.Errorf("drop time %v is not now", time.Unix(0, d.Time))
			}
		}
	})

	t.Run("closed-port", func(t *testing.T) {
		for _, fam := range []struct{ cli, srv netip.Addr }{{l.cli4, l.srv4}, {l.cli6, l.srv6}} {
			src, dst := netip.AddrPortFrom(fam.cli, cport()), netip.AddrPortFrom(fam.srv, 9)
			if err := <-l.dial(context.Background(), src, dst); !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("dial %v: %v, want connection refused", dst, err)
			}
			syn := wire.waitFor(t, "the SYN", func(s seg) bool { return !s.egress && s.src == src && s.dst == dst && s.flags&tcpSYN != 0 })
			rst := wire.waitFor(t, "the RST", func(s seg) bool { return s.egress && s.src == dst && s.dst == src && s.flags&tcpRST != 0 })
			r := srv.waitFor(t, "the reset sent by "+dst.String(), func(e kevent.Event) bool {
				return e.Kind == kevent.KindSendReset && tuple(dst, src)(e)
			})[0]
			t.Logf("%s", evString(r))
			if r.Flags != rst.flags || r.Seq != rst.seq || r.Ack != rst.ack || r.Ack != syn.seq+1 {
				t.Errorf("send_reset flags %#x seq %d ack %d, the wire's RST: flags %#x seq %d ack %d", r.Flags, r.Seq, r.Ack, rst.flags, rst.seq, rst.ack)
			}
			if r.State != 0 || r.Netns != l.srvIno {
				t.Errorf("send_reset state %d netns %d, want no socket in netns %d", r.State, r.Netns, l.srvIno)
			}
			if srvK.rstReason && r.ReasonName != "NO_SOCKET" {
				t.Errorf("send_reset reason %d %q, want NO_SOCKET", r.Reason, r.ReasonName)
			}
			// The SYN itself is then dropped: no socket.
			d := srv.waitFor(t, "the drop of the SYN", func(e kevent.Event) bool {
				return e.Kind == kevent.KindDrop && tuple(src, dst)(e)
			})[0]
			t.Logf("%s", evString(d))
			if d.ReasonName != "NO_SOCKET" || d.Seq != syn.seq {
				t.Errorf("drop reason %q seq %d, want NO_SOCKET, %d", d.ReasonName, d.Seq, syn.seq)
			}
		}
	})

	t.Run("reset-received", func(t *testing.T) {
		for _, fam := range []struct{ cli, srv netip.Addr }{{l.cli4, l.srv4}, {l.cli6, l.srv6}} {
			port, accepted := l.listen(t, fam.srv)
			src, dst := netip.AddrPortFrom(fam.cli, cport()), netip.AddrPortFrom(fam.srv, port)
			var c *net.TCPConn
			if err := inNetns(l.cliFD, func() error {
				d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(src)}
				cn, err := d.Dial("tcp", dst.String())
				if err == nil {
					c = cn.(*net.TCPConn)
				}
				return err
			}); err != nil {
				t.Fatal(err)
			}
			<-accepted // the server's end is established
			c.SetLinger(0)
			c.Close() // RST
			rst := wire.waitFor(t, "the client's RST", func(s seg) bool { return !s.egress && s.src == src && s.dst == dst && s.flags&tcpRST != 0 })
			r := srv.waitFor(t, "the reset received by "+dst.String(), func(e kevent.Event) bool {
				return e.Kind == kevent.KindRecvReset && tuple(src, dst)(e)
			})[0]
			t.Logf("%s", evString(r))
			if r.State != 1 || r.Netns != l.srvIno { // TCP_ESTABLISHED
				t.Errorf("receive_reset state %d netns %d, want 1 (established), %d", r.State, r.Netns, l.srvIno)
			}
			// The client's side: an active reset, seq and ack from its
			// socket, as on the wire. tcp_disconnect (linger 0) moves the
			// socket to TCP_CLOSE (7) before it sends the RST.
			a := cli.waitFor(t, "the reset sent by the client", func(e kevent.Event) bool {
				return e.Kind == kevent.KindSendReset && tuple(src, dst)(e)
			})[0]
			t.Logf("%s", evString(a))
			if cliK.rstReason && a.ReasonName != "TCP_STATE" {
				t.Errorf("client send_reset reason %d %q, want TCP_STATE (tcp_disconnect's)", a.Reason, a.ReasonName)
			}
			if a.Flags != rst.flags || a.Seq != rst.seq || a.Ack != rst.ack || a.State != 7 || a.Netns != l.cliIno {
				t.Errorf("client send_reset flags %#x seq %d ack %d state %d netns %d, the wire's RST: flags %#x seq %d ack %d; want state 7, netns %d",
					a.Flags, a.Seq, a.Ack, a.State, a.Netns, rst.flags, rst.seq, rst.ack, l.cliIno)
			}
		}
	})

	t.Run("synack-retransmit", func(t *testing.T) {
		port, _ := l.listen(t, l.srv4)
		// The client drops the SYN-ACKs, so the server sends them again.
		l.nft(t, l.cliNS, "add table inet t",
			"add chain inet t in { type filter hook input priority 0 ; }",
			fmt.Sprintf("add rule inet t in tcp sport %d tcp flags & (syn|ack) == syn|ack drop", port))
		src, dst := netip.AddrPortFrom(l.cli4, cport()), netip.AddrPortFrom(l.srv4, port)
		ctx, cancel := context.WithCancel(context.Background())
		res := l.dial(ctx, src, dst)
		defer func() { cancel(); <-res }()
		syn := wire.waitFor(t, "the SYN", func(s seg) bool { return !s.egress && s.src == src && s.dst == dst && s.flags&tcpSYN != 0 })
		synack := wire.waitFor(t, "the SYN-ACK", func(s seg) bool {
			return s.egress && s.src == dst && s.dst == src && s.flags&(tcpSYN|tcpACK) == tcpSYN|tcpACK
		})
		r := srv.waitFor(t, "a SYN-ACK retransmit", func(e kevent.Event) bool {
			return e.Kind == kevent.KindSynAckRetrans && tuple(dst, src)(e)
		})[0]
		t.Logf("%s", evString(r))
		if r.Seq != synack.seq || r.Ack != syn.seq+1 || r.Netns != l.srvIno {
			t.Errorf("synack_retransmit seq %d ack %d netns %d, want the SYN-ACK's %d %d, %d", r.Seq, r.Ack, r.Netns, synack.seq, synack.ack, l.srvIno)
		}
		// The client's namespace dropped the first SYN-ACK (before the
		// retransmit): its watcher saw it, the server's did not.
		d := cli.waitFor(t, "the client's drop of the SYN-ACK", func(e kevent.Event) bool {
			return e.Kind == kevent.KindDrop && tuple(dst, src)(e)
		})[0]
		t.Logf("client: %s", evString(d))
		if d.ReasonName != "NETFILTER_DROP" || d.Seq != synack.seq || d.Netns != l.cliIno {
			t.Errorf("client drop %q seq %d netns %d, want NETFILTER_DROP, %d, %d", d.ReasonName, d.Seq, d.Netns, synack.seq, l.cliIno)
		}
		for _, e := range srv.snapshot() {
			if e.Kind == kevent.KindDrop && tuple(dst, src)(e) {
				t.Errorf("the server's watcher reported the client namespace's drop: %s", evString(e))
			}
		}
	})

	// Every event of a watcher is of its namespace.
	for _, w := range []struct {
		name string
		c    *kcollector
		ino  uint32
	}{{"server", srv, l.srvIno}, {"client", cli, l.cliIno}} {
		for _, e := range w.c.snapshot() {
			if e.Netns != w.ino {
				t.Errorf("the %s's watcher reported an event of netns %d: %s", w.name, e.Netns, evString(e))
			}
		}
	}
	// The port watcher saw the drops of the SYNs to 8080, and nothing else.
	port8080.waitFor(t, "a drop of a SYN to port 8080", func(e kevent.Event) bool {
		return e.Kind == kevent.KindDrop && e.Dst.Port() == 8080
	})
	for _, e := range port8080.snapshot() {
		if e.Src.Port() != 8080 && e.Dst.Port() != 8080 {
			t.Errorf("the port 8080 watcher reported %s", evString(e))
		}
	}
	if n := srvK.Lost() + cliK.Lost() + portK.Lost(); n != 0 {
		t.Errorf("%d events lost", n)
	}
}

func TestKernelEventsConfig(t *testing.T) {
	ports := []uint16{1, 2, 3, 4, 5, 6, 7, 8, 9}
	if _, err := OpenKernelEvents(KernelEventsConfig{Ports: ports}); err == nil || !strings.Contains(err.Error(), "at most 8") {
		t.Errorf("9 ports: %v, want an error", err)
	}
	if _, err := OpenKernelEvents(KernelEventsConfig{Netns: "synscope-no-such-netns"}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing netns: %v, want not found", err)
	}
}

// TestKernelEventsDeadline: Read honours SetDeadline on a quiet watcher, and
// returns os.ErrClosed after Close.
func TestKernelEventsDeadline(t *testing.T) {
	requireKernelEvents(t)
	k, err := OpenKernelEvents(KernelEventsConfig{Netns: "/proc/self/ns/net", Ports: []uint16{1}})
	if err != nil {
		t.Fatal(err)
	}
	var e kevent.Event
	start := time.Now()
	k.SetDeadline(start.Add(120 * time.Millisecond))
	if err := k.Read(&e); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read: %v, want a deadline error", err)
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > 2*time.Second {
		t.Errorf("Read returned after %v, deadline 120ms", d)
	}
	k.SetDeadline(time.Time{})
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	if err := k.Read(&e); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Read after Close: %v, want os.ErrClosed", err)
	}
}

func TestLocations(t *testing.T) {
	s := &ksyms{addrs: []uint64{0x1000, 0x1000, 0x2000}, ends: []uint32{3, 6, 9}, names: []byte("aaabbbccc")}
	for _, c := range []struct {
		addr uint64
		want string
		ok   bool
	}{
		{0xfff, "", false},
		{0x1000, "aaa+0x0", true},
		{0x1fff, "bbb+0xfff", true},
		{0x2010, "ccc+0x10", true},
		{0x2000 + maxSymbolSize + 1, "", false},
	} {
		name, off, ok := s.lookup(c.addr)
		got := ""
		if ok {
			got = fmt.Sprintf("%s+%#x", name, off)
		}
		if got != c.want || ok != c.ok {
			t.Errorf("lookup(%#x) = %q %v, want %q %v", c.addr, got, ok, c.want, c.ok)
		}
	}
}

func TestKernelPrivilegeError(t *testing.T) {
	err := fmt.Errorf("%w: operation not permitted", errKernelPrivileges)
	if !errors.Is(err, ErrNeedPrivileges) || !strings.HasPrefix(err.Error(), "kernel events need root") {
		t.Errorf("%v: not ErrNeedPrivileges", err)
	}
}
