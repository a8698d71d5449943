//go:build linux

package capture

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/synscope/synscope/internal/kevent"
	"golang.org/x/sys/unix"
)

func TestKstateParseCounters(t *testing.T) {
	var ki keyInterner
	m := map[string]uint64{}
	text := "Tcp: RtoAlgorithm RtoMin MaxConn ActiveOpens OutRsts\n" +
		"Tcp: 1 200 -1 7 18446744073709551615\n" +
		"IcmpMsg: InType3 OutType3\n" +
		"IcmpMsg: 2 2\n" +
		"Udp: InDatagrams NoPorts\n" +
		"Udp: 5\n" +
		"Lone: A B\n"
	problems := ki.parseCounterPairs("/proc/net/snmp", []byte(text), m)
	want := map[string]uint64{
		"Tcp.RtoAlgorithm": 1, "Tcp.RtoMin": 200, "Tcp.ActiveOpens": 7, "Tcp.OutRsts": 1<<64 - 1,
		"IcmpMsg.InType3": 2, "IcmpMsg.OutType3": 2, "Udp.InDatagrams": 5,
	}
	if len(m) != len(want) {
		t.Errorf("got %v, want %v", m, want)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %d, want %d", k, m[k], v)
		}
	}
	if _, ok := m["Tcp.MaxConn"]; ok {
		t.Error("negative Tcp.MaxConn kept")
	}
	wantProblems := []string{"/proc/net/snmp: Udp: 2 names but 1 values", "/proc/net/snmp: Lone: names without values"}
	if !slices.Equal(problems, wantProblems) {
		t.Errorf("problems %q, want %q", problems, wantProblems)
	}

	m = map[string]uint64{}
	ki.parseSnmp6([]byte("Ip6InReceives                   \t2\nIcmp6OutType133 5\nUdpLite6InErrors 0\nOdd 3\nIp6Bad x\n"), m)
	want = map[string]uint64{"Ip6.InReceives": 2, "Icmp6.OutType133": 5, "UdpLite6.InErrors": 0, "Odd": 3}
	if len(m) != len(want) {
		t.Errorf("snmp6: got %v, want %v", m, want)
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("snmp6: %s = %d, want %d", k, got, v)
		}
	}
}

func TestKstateParseProcTCP(t *testing.T) {
	hdr := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	v4 := hdr +
		"   0: 0100007F:AC7D 00000000:0000 0A 00000000:00000002 00:00000000 00000000     0        0 1978011 2 0 100 0 0 10 0\n" +
		"   1: 0100007F:CE44 0100007F:AC7D 01 00000000:00000000 00:00000000 00000000     0        0 1978012 2 0 20 0 0 10 -1\n"
	ls, err := parseProcTCP([]byte(v4), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []kevent.Listener{{Addr: netip.MustParseAddrPort("127.0.0.1:44157"), Queue: 2}}
	if !slices.Equal(ls, want) {
		t.Errorf("tcp: %v, want %v", ls, want)
	}
	// ::1 port 22 and fe80::1 port 80, as a little-endian kernel prints them.
	v6 := hdr +
		"   0: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n" +
		"   1: 000080FE000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000001 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n"
	ls, err = parseProcTCP([]byte(v6), true, nil)
	if err != nil {
		t.Fatal(err)
	}
	want = []kevent.Listener{{Addr: netip.MustParseAddrPort("[::1]:22")}, {Addr: netip.MustParseAddrPort("[fe80::1]:80"), Queue: 1}}
	if !slices.Equal(ls, want) {
		t.Errorf("tcp6: %v, want %v", ls, want)
	}
	if _, err := parseProcTCP([]byte(hdr+"   0: 0100007F 00000000:0000 0A 00000000:00000000\n"), false, nil); err == nil {
		t.Error("no error for a bad address")
	}
}

// netnsInode is the inode of a namespace file.
func netnsInode(t testing.TB, path string) uint32 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return uint32(st.Ino)
}

func hasMissing(s *kevent.Sample, prefix string) bool {
	return slices.ContainsFunc(s.Missing, func(m string) bool { return strings.HasPrefix(m, prefix) })
}

// TestSampleKernelHere samples the test's own namespace (no root needed).
func TestSampleKernelHere(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	runtime.LockOSThread() // "" is this thread's namespace
	defer runtime.UnlockOSThread()
	before := time.Now().UnixNano()
	s, err := SampleKernel("")
	if err != nil {
		t.Fatal(err)
	}
	if s.Time < before || s.Time > time.Now().UnixNano() {
		t.Errorf("time %d not within the call", s.Time)
	}
	if want := netnsInode(t, "/proc/thread-self/ns/net"); s.Netns != want {
		t.Errorf("netns %d, want %d", s.Netns, want)
	}
	for _, k := range []string{"TcpExt.ListenOverflows", "TcpExt.ListenDrops", "Tcp.OutRsts", "Tcp.ActiveOpens", "Ip.InReceives", "IpExt.InOctets", "Udp.InDatagrams"} {
		if _, ok := s.Counters[k]; !ok {
			t.Errorf("no counter %s", k)
		}
	}
	if _, err := os.Stat("/proc/net/snmp6"); err == nil {
		if _, ok := s.Counters["Ip6.InReceives"]; !ok {
			t.Error("no counter Ip6.InReceives")
		}
	}
	if _, ok := s.Counters["Tcp.MaxConn"]; ok {
		t.Error("Tcp.MaxConn (-1) kept")
	}
	for _, name := range handshakeSysctls {
		got, ok := s.Sysctls[name]
		if !ok {
			if !hasMissing(s, "sysctl "+name+": ") {
				t.Errorf("sysctl %s neither read nor missing", name)
			}
			continue
		}
		raw, err := os.ReadFile(sysctlPath(name))
		if err != nil {
			t.Fatal(err)
		}
		if want := strings.TrimRight(string(raw), "\n"); got != want {
			t.Errorf("sysctl %s = %q, want %q", name, got, want)
		}
	}
	if _, ok := s.Sysctls["net.ipv4.conf.lo.rp_filter"]; !ok {
		t.Error("no rp_filter for lo")
	}
	if _, err := os.Stat("/proc/sys/net/netfilter/nf_conntrack_max"); err == nil && s.ConntrackMax <= 0 {
		t.Errorf("conntrack max %d, conntrack is loaded", s.ConntrackMax)
	} else if err != nil && (s.ConntrackMax != -1 || s.ConntrackCount != -1) {
		t.Errorf("conntrack %d/%d, want -1/-1 (not loaded)", s.ConntrackCount, s.ConntrackMax)
	}
	addr := netip.MustParseAddrPort(ln.Addr().String())
	i := slices.IndexFunc(s.Listeners, func(l kevent.Listener) bool { return l.Addr == addr })
	if i < 0 {
		t.Fatalf("listener %v not in %v (missing: %q)", addr, s.Listeners, s.Missing)
	}
	if l := s.Listeners[i]; l.Backlog == 0 || l.Queue != 0 {
		t.Errorf("listener %+v: want a backlog and an empty queue", l)
	}
	if hasMissing(s, "listeners") {
		t.Errorf("listeners missing: %q", s.Missing)
	}
	if !slices.IsSortedFunc(s.Listeners, func(a, b kevent.Listener) int { return a.Addr.Compare(b.Addr) }) {
		t.Error("listeners not sorted by address")
	}
	t.Logf("%d counters, %d sysctls, %d listeners, conntrack %d/%d, missing %q",
		len(s.Counters), len(s.Sysctls), len(s.Listeners), s.ConntrackCount, s.ConntrackMax, s.Missing)

	if _, err := SampleKernel("/nonexistent/synscope-netns"); err == nil {
		t.Error("no error for a namespace that is not there")
	}
}

func kstateRequireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipped: needs iproute2's ip")
	}
}

func kstateSysctlW(t *testing.T, ns, kv string) {
	t.Helper()
	if out, err := exec.Command("ip", "netns", "exec", ns, "sysctl", "-q", "-w", kv).CombinedOutput(); err != nil {
		t.Fatalf("sysctl -w %s in %s: %v: %s", kv, ns, err, out)
	}
}

// kstateListen opens a TCP listener with the given backlog inside ns,
// never accepting.
func kstateListen(t *testing.T, ns, ip string, backlog int) netip.AddrPort {
	t.Helper()
	var fd int
	var port int
	err := inNetns(ns, func() (err error) {
		if fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		if err = unix.Bind(fd, &unix.SockaddrInet4{Addr: netip.MustParseAddr(ip).As4()}); err != nil {
			return err
		}
		if err = unix.Listen(fd, backlog); err != nil {
			return err
		}
		sa, err := unix.Getsockname(fd)
		if err != nil {
			return err
		}
		port = sa.(*unix.SockaddrInet4).Port
		return nil
	})
	if fd > 0 {
		t.Cleanup(func() { unix.Close(fd) })
	}
	if err != nil {
		t.Fatal(err)
	}
	return netip.AddrPortFrom(netip.MustParseAddr(ip), uint16(port))
}

// kstateConnect starts non-blocking connects to addr from inside ns.
func kstateConnect(t *testing.T, ns string, addr netip.AddrPort, n int) {
	t.Helper()
	err := inNetns(ns, func() error {
		for range n {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
			if err != nil {
				return err
			}
			t.Cleanup(func() { unix.Close(fd) })
			err = unix.Connect(fd, &unix.SockaddrInet4{Addr: addr.Addr().As4(), Port: int(addr.Port())})
			if err != nil && err != unix.EINPROGRESS {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func kstateSample(t *testing.T, ns string) *kevent.Sample {
	t.Helper()
	s, err := SampleKernel(ns)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func findListener(s *kevent.Sample, addr netip.AddrPort) (kevent.Listener, bool) {
	i := slices.IndexFunc(s.Listeners, func(l kevent.Listener) bool { return l.Addr == addr })
	if i < 0 {
		return kevent.Listener{}, false
	}
	return s.Listeners[i], true
}

// TestSampleKernelNetns: sysctls, counters and listeners are those of the
// namespace sampled, not the process's.
func TestSampleKernelNetns(t *testing.T) {
	kstateRequireRoot(t)
	if _, err := exec.LookPath("sysctl"); err != nil {
		t.Skip("skipped: needs procps' sysctl")
	}
	v := newAFPVeth(t)
	root := kstateSample(t, "")
	// The namespace gets values unlike the root namespace's (0 unless the
	// root namespace has 0 itself).
	val := func(name string) string {
		if root.Sysctls[name] == "0" {
			return "2"
		}
		return "0"
	}
	cookies, stamps := val("net.ipv4.tcp_syncookies"), val("net.ipv4.tcp_timestamps")
	kstateSysctlW(t, v.srvNS, "net.ipv4.tcp_syncookies="+cookies)
	kstateSysctlW(t, v.srvNS, "net.ipv4.tcp_timestamps="+stamps)

	first := kstateSample(t, v.srvNS)
	rootAgain := kstateSample(t, "")
	for _, c := range []struct {
		name, ns, root string
	}{{"net.ipv4.tcp_syncookies", cookies, root.Sysctls["net.ipv4.tcp_syncookies"]}, {"net.ipv4.tcp_timestamps", stamps, root.Sysctls["net.ipv4.tcp_timestamps"]}} {
		if got := first.Sysctls[c.name]; got != c.ns {
			t.Errorf("namespace's %s = %q, want %q", c.name, got, c.ns)
		}
		if got := rootAgain.Sysctls[c.name]; got != c.root {
			t.Errorf("root namespace's %s = %q after sampling the namespace, want %q", c.name, got, c.root)
		}
	}
	if want := netnsInode(t, "/var/run/netns/"+v.srvNS); first.Netns != want || first.Netns == root.Netns {
		t.Errorf("netns inode %d, want %d (root's is %d)", first.Netns, want, root.Netns)
	}
	// rp_filter for the namespace's interfaces, and only them.
	var ifs []string
	for k := range first.Sysctls {
		if strings.HasPrefix(k, "net.ipv4.conf.") {
			ifs = append(ifs, strings.TrimSuffix(strings.TrimPrefix(k, "net.ipv4.conf."), ".rp_filter"))
		}
	}
	slices.Sort(ifs)
	if want := []string{"all", "default", "lo", v.srvIf}; !slices.Equal(ifs, want) {
		t.Errorf("rp_filter read for %q, want %q", ifs, want)
	}
	if first.Counters["Ip.InReceives"] == root.Counters["Ip.InReceives"] && root.Counters["Ip.InReceives"] > 0 {
		t.Log("note: Ip.InReceives equal in both namespaces")
	}
	if _, ok := first.Sysctls["net.ipv4.tcp_syn_linear_timeouts"]; !ok && !hasMissing(first, "sysctl net.ipv4.tcp_syn_linear_timeouts: absent") {
		t.Errorf("tcp_syn_linear_timeouts neither read nor noted: %q", first.Missing)
	}

	// A listener with backlog 1 that never accepts: two connections fill
	// its accept queue (it holds backlog+1), the SYNs of the others are
	// dropped as overflows.
	addr := kstateListen(t, v.srvNS, v.srvIP, 1)
	before := kstateSample(t, v.srvNS)
	l, ok := findListener(before, addr)
	if !ok || l.Backlog != 1 || l.Queue != 0 {
		t.Fatalf("before the connects: listener %v: %+v (found %v), want backlog 1, queue 0; listeners %v, missing %q", addr, l, ok, before.Listeners, before.Missing)
	}
	if len(before.Listeners) != 1 {
		t.Errorf("listeners %v: the root namespace's leaked in?", before.Listeners)
	}
	kstateConnect(t, v.cliNS, addr, 4)
	var after *kevent.Sample
	afpWaitFor(t, 15*time.Second, "a full accept queue and listen overflows", func() bool {
		after = kstateSample(t, v.srvNS)
		l, _ := findListener(after, addr)
		return l.Queue == 2 && after.Counters["TcpExt.ListenOverflows"] > before.Counters["TcpExt.ListenOverflows"]
	})
	l, _ = findListener(after, addr)
	if l.Backlog != 1 {
		t.Errorf("listener %+v: backlog %d, want 1", l, l.Backlog)
	}
	t.Logf("ListenOverflows %d -> %d, ListenDrops %d -> %d; listener %+v",
		before.Counters["TcpExt.ListenOverflows"], after.Counters["TcpExt.ListenOverflows"],
		before.Counters["TcpExt.ListenDrops"], after.Counters["TcpExt.ListenDrops"], l)
	if slices.ContainsFunc(after.Missing, func(m string) bool { return strings.HasPrefix(m, "/proc/net/") }) {
		t.Errorf("missing: %q", after.Missing)
	}

	// The /proc/net/tcp fallback sees the same queue, not the backlog.
	var fb *kevent.Sample
	if err := inNetns(v.srvNS, func() error {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		k := newKReader()
		defer k.close()
		k.noDiag = true
		fb = k.sample()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if l, ok := findListener(fb, addr); !ok || l.Queue != 2 || l.Backlog != 0 {
		t.Errorf("fallback: listener %+v (found %v), want queue 2 and no backlog", l, ok)
	}
	if !hasMissing(fb, "listeners: sock_diag: disabled; read from /proc/net/tcp{,6} instead") {
		t.Errorf("fallback not noted: %q", fb.Missing)
	}
}

// TestKstateListenerCap: more listeners than MaxListeners are cut, the cut
// noted.
func TestKstateListenerCap(t *testing.T) {
	kstateRequireRoot(t)
	v := newAFPVeth(t)
	var want []netip.AddrPort
	for range MaxListeners + 10 {
		want = append(want, kstateListen(t, v.srvNS, "127.0.0.1", 4))
	}
	afpIP(t, "-n", v.srvNS, "link", "set", "lo", "up")
	s := kstateSample(t, v.srvNS)
	if len(s.Listeners) != MaxListeners {
		t.Fatalf("%d listeners, want %d", len(s.Listeners), MaxListeners)
	}
	slices.SortFunc(want, netip.AddrPort.Compare)
	for i, l := range s.Listeners {
		if l.Addr != want[i] || l.Backlog != 4 {
			t.Fatalf("listener %d: %+v, want %v with backlog 4", i, l, want[i])
		}
	}
	if !hasMissing(s, "listeners: "+strconv.Itoa(MaxListeners)+" kept of "+strconv.Itoa(MaxListeners+10)) {
		t.Errorf("cut not noted: %q", s.Missing)
	}
}

// nextWithin reads one record, failing if none comes in time.
func nextWithin(t *testing.T, src Source, d time.Duration) (Packet, error) {
	t.Helper()
	type res struct {
		p   Packet
		err error
	}
	c := make(chan res, 1)
	go func() {
		var p Packet
		err := src.Next(&p)
		p.Data = append([]byte(nil), p.Data...)
		c <- res{p, err}
	}()
	select {
	case r := <-c:
		return r.p, r.err
	case <-time.After(d):
		t.Fatalf("no record within %v", d)
	}
	panic("unreachable")
}

func samplerRecord(t *testing.T, src Source, d time.Duration) *kevent.Sample {
	t.Helper()
	p, err := nextWithin(t, src, d)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	if p.LinkType != kevent.LinkType {
		t.Errorf("link type %d", p.LinkType)
	}
	if k, err := kevent.RecordKind(p.Data); err != nil || k != kevent.KindCounters {
		t.Fatalf("record kind %v, %v", k, err)
	}
	var s kevent.Sample
	if err := kevent.ParseJSON(p.Data, &s); err != nil {
		t.Fatal(err)
	}
	if p.Time != s.Time || p.OrigLen != len(p.Data) {
		t.Errorf("packet time %d, orig len %d; sample time %d, %d bytes", p.Time, p.OrigLen, s.Time, len(p.Data))
	}
	return &s
}

// TestSampler: a record at once, on request, periodically, and a last one
// at the end (cancel or Close), then io.EOF; all from the namespace.
func TestSampler(t *testing.T) {
	ns, ino := "", uint32(0)
	if os.Geteuid() == 0 && exec.Command("ip", "-V").Run() == nil {
		v := newAFPVeth(t)
		ns, ino = v.srvNS, netnsInode(t, "/var/run/netns/"+v.srvNS)
	} else {
		t.Log("not root: sampling the test's own namespace")
		ino = netnsInode(t, "/proc/self/ns/net")
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now().UnixNano()
	src, err := OpenSampler(ctx, ns, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if info := src.Info(); info.Format != "kernel-counters" {
		t.Errorf("format %q", info.Format)
	}
	first := samplerRecord(t, src, 2*time.Second)
	if first.Time < start || first.Netns != ino {
		t.Errorf("first sample at %d (opened at %d), netns %d want %d", first.Time, start, first.Netns, ino)
	}
	src.SampleNow()
	now := samplerRecord(t, src, 2*time.Second)
	if now.Time <= first.Time || now.Netns != ino {
		t.Errorf("sample on request at %d, after %d? netns %d", now.Time, first.Time, now.Netns)
	}
	cancel()
	last := samplerRecord(t, src, 2*time.Second)
	if last.Time <= now.Time || last.Netns != ino {
		t.Errorf("last sample at %d, after %d? netns %d", last.Time, now.Time, last.Netns)
	}
	if _, err := nextWithin(t, src, 2*time.Second); err != io.EOF {
		t.Errorf("after the last sample: %v, want io.EOF", err)
	}
	if info := src.Info(); info.Packets != 3 || info.First != first.Time || info.Last != last.Time ||
		!slices.Equal(info.LinkTypes, []uint16{kevent.LinkType}) {
		t.Errorf("info %+v", info)
	}
	if err := src.Close(); err != nil {
		t.Error(err)
	}

	// Periodic, ended by Close.
	src, err = OpenSampler(context.Background(), ns, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	var prev int64
	for range 4 {
		s := samplerRecord(t, src, 2*time.Second)
		if s.Time <= prev || s.Netns != ino {
			t.Errorf("periodic sample at %d after %d, netns %d", s.Time, prev, s.Netns)
		}
		prev = s.Time
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		p, err := nextWithin(t, src, 2*time.Second)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
		var s kevent.Sample
		if err := kevent.ParseJSON(p.Data, &s); err != nil {
			t.Fatal(err)
		}
		if s.Time <= prev {
			t.Errorf("sample at %d after %d", s.Time, prev)
		}
		prev = s.Time
	}
	if n == 0 {
		t.Error("no last sample after Close")
	}

	// SampleNow in a burst is coalesced.
	src, err = OpenSampler(context.Background(), ns, 0)
	if err != nil {
		t.Fatal(err)
	}
	samplerRecord(t, src, 2*time.Second)
	for range 50 {
		src.SampleNow()
	}
	samplerRecord(t, src, 2*time.Second)
	src.Close()
	n = 0
	for {
		if _, err := nextWithin(t, src, 2*time.Second); err != nil {
			if err != io.EOF {
				t.Fatal(err)
			}
			break
		}
		n++
	}
	if n > 2 { // the last, and perhaps one more request of the burst
		t.Errorf("%d samples after a burst of SampleNow and Close, want at most 2", n)
	}

	if _, err := OpenSampler(context.Background(), "/nonexistent/synscope-netns", time.Second); err == nil {
		t.Error("no error for a namespace that is not there")
	}
	if _, err := OpenSampler(context.Background(), "", -time.Second); err == nil {
		t.Error("no error for a negative period")
	}
}

// BenchmarkSampleKernel measures a sample of a namespace with a few hundred
// sockets (a fresh namespace when root, else this one): "oneshot" enters the
// namespace each time (SampleKernel), "sampler" is the Sampler's cost, from
// a thread living in the namespace.
func BenchmarkSampleKernel(b *testing.B) {
	ns := ""
	if os.Geteuid() == 0 {
		ns = "synscope-bench-" + strconv.Itoa(os.Getpid())
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			b.Fatalf("ip netns add: %v: %s", err, out)
		}
		defer exec.Command("ip", "netns", "del", ns).Run()
		exec.Command("ip", "-n", ns, "link", "set", "lo", "up").Run()
	}
	// 300 listeners and 100 established connections (200 sockets).
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	err := inNetns(ns, func() error {
		for i := range 300 {
			ln, err := net.Listen("tcp4", "127.0.0.1:0")
			if err != nil {
				return err
			}
			closers = append(closers, ln)
			if i < 100 {
				c, err := net.Dial("tcp4", ln.Addr().String())
				if err != nil {
					return err
				}
				a, err := ln.Accept()
				if err != nil {
					return err
				}
				closers = append(closers, c, a)
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("oneshot", func(b *testing.B) {
		for b.Loop() {
			if _, err := SampleKernel(ns); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sampler", func(b *testing.B) {
		err := inNetns(ns, func() error {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			k := newKReader()
			defer k.close()
			var s *kevent.Sample
			for b.Loop() {
				s = k.sample()
			}
			if len(s.Listeners) != 256 || len(s.Counters) < 100 {
				return errors.New("sample lacks listeners or counters")
			}
			b.ReportMetric(float64(len(s.Counters)), "counters")
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	})
	// What Next adds: the sample's record.
	b.Run("record", func(b *testing.B) {
		s, err := SampleKernel(ns)
		if err != nil {
			b.Fatal(err)
		}
		var buf []byte
		for b.Loop() {
			if buf, err = kevent.AppendJSON(buf[:0], kevent.KindCounters, s); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(buf)), "bytes/record")
	})
}
