//go:build linux

package capture

// Kernel state of a network namespace: its counters (/proc/net/netstat,
// snmp, snmp6), the sysctls that decide how handshakes go, conntrack's fill,
// and its listening sockets with their accept queues, read from an OS thread
// that has entered the namespace.
//
// Everything is read from that thread: /proc/thread-self/net/... shows the
// namespace of the thread (/proc/net follows the thread group leader's), a
// file under /proc/sys/net resolves to the namespace of the task that opens
// it, and a sock_diag netlink socket answers for the namespace it was
// created in.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/synscope/synscope/internal/kevent"
	"golang.org/x/sys/unix"
)

// MaxListeners is the most listening sockets a sample keeps (the first by
// address); MaxRPFilterIfaces the most interfaces whose rp_filter it reads
// (the first by name). Cuts are noted in Sample.Missing.
const (
	MaxListeners      = 256
	MaxRPFilterIfaces = 64
)

// handshakeSysctls are the sysctls a sample reads, by dotted name: those
// that decide whether and how a handshake completes (queue limits, SYN
// cookies, the options a SYN-ACK carries, retries, reuse of TIME-WAIT ports,
// the ephemeral port range, reverse-path filtering). rp_filter is also read
// for each interface of the namespace.
var handshakeSysctls = []string{
	"net.core.somaxconn",
	"net.ipv4.tcp_max_syn_backlog",
	"net.ipv4.tcp_syncookies",
	"net.ipv4.tcp_abort_on_overflow",
	"net.ipv4.tcp_timestamps",
	"net.ipv4.tcp_window_scaling",
	"net.ipv4.tcp_sack",
	"net.ipv4.tcp_ecn",
	"net.ipv4.tcp_fastopen",
	"net.ipv4.tcp_syn_retries",
	"net.ipv4.tcp_synack_retries",
	"net.ipv4.tcp_syn_linear_timeouts", // Linux 6.7 and later
	"net.ipv4.tcp_tw_reuse",
	"net.ipv4.tcp_fin_timeout",
	"net.ipv4.ip_local_port_range",
	"net.ipv4.conf.all.rp_filter",
	"net.ipv4.conf.default.rp_filter",
}

// SampleKernel takes one reading of the network namespace netns (a name
// under /var/run/netns, a path such as /proc/PID/ns/net, or "" for the
// calling thread's). A reading that cannot be taken is listed in
// Sample.Missing; SampleKernel fails only when the namespace cannot be
// entered.
func SampleKernel(netns string) (*kevent.Sample, error) {
	var s *kevent.Sample
	err := inNetns(netns, func() error {
		runtime.LockOSThread() // for "": /proc/thread-self must stay this thread
		defer runtime.UnlockOSThread()
		k := newKReader()
		defer k.close()
		s = k.sample()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("kernel sample: %w", err)
	}
	return s, nil
}

// kreader takes samples from a thread inside the namespace; it keeps its
// sock_diag socket, buffers and key strings from one sample to the next.
type kreader struct {
	nl      int   // sock_diag netlink socket, -1 if none
	nlErr   error // why there is none
	seq     uint32
	buf     []byte // file contents
	nlbuf   []byte // netlink replies
	keys    keyInterner
	sysctls []string // handshakeSysctls as /proc/sys paths
	// noDiag forces the /proc/net/tcp fallback (tests).
	noDiag bool
}

// newKReader must be called on the locked thread that will take the
// samples, inside the namespace.
func newKReader() *kreader {
	k := &kreader{nl: -1, buf: make([]byte, 16<<10)}
	for _, name := range handshakeSysctls {
		k.sysctls = append(k.sysctls, sysctlPath(name))
	}
	k.nl, k.nlErr = openSockDiag()
	return k
}

func (k *kreader) close() {
	if k.nl >= 0 {
		unix.Close(k.nl)
		k.nl = -1
	}
}

func sysctlPath(name string) string {
	return "/proc/sys/" + strings.ReplaceAll(name, ".", "/")
}

// sample reads everything; it is called on the namespace's locked thread.
// Time is taken before the readings.
func (k *kreader) sample() *kevent.Sample {
	s := &kevent.Sample{
		Time:           time.Now().UnixNano(),
		Counters:       make(map[string]uint64, 512),
		Sysctls:        make(map[string]string, len(handshakeSysctls)+8),
		ConntrackCount: -1,
		ConntrackMax:   -1,
	}
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		s.Missing = append(s.Missing, "netns inode: "+why(err))
	} else {
		s.Netns = uint32(st.Ino)
	}

	for _, f := range []string{"netstat", "snmp"} {
		data, err := k.read("/proc/thread-self/net/" + f)
		if err != nil {
			s.Missing = append(s.Missing, "/proc/net/"+f+": "+why(err))
			continue
		}
		s.Missing = append(s.Missing, k.keys.parseCounterPairs("/proc/net/"+f, data, s.Counters)...)
	}
	if data, err := k.read("/proc/thread-self/net/snmp6"); err != nil {
		msg := why(err)
		if errors.Is(err, unix.ENOENT) {
			msg = "absent (IPv6 disabled)"
		}
		s.Missing = append(s.Missing, "/proc/net/snmp6: "+msg)
	} else {
		k.keys.parseSnmp6(data, s.Counters)
	}

	for i, name := range handshakeSysctls {
		k.sysctl(s, name, k.sysctls[i])
	}
	k.rpFilters(s)

	s.ConntrackCount = k.conntrack(s, "nf_conntrack_count")
	s.ConntrackMax = k.conntrack(s, "nf_conntrack_max")

	k.listeners(s)
	k.addrs(s)
	return s
}

// maxAddrs bounds the namespace's own addresses a sample keeps.
const maxAddrs = 256

// addrs lists the namespace's own addresses (a netlink dump from this
// thread, so from its namespace): they tell a report whether this host was
// the client or the server of an attempt.
func (k *kreader) addrs(s *kevent.Sample) {
	as, err := net.InterfaceAddrs()
	if err != nil {
		s.Missing = append(s.Missing, "addresses: "+why(err))
		return
	}
	for _, a := range as {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		if ip, ok := netip.AddrFromSlice(ipn.IP); ok && len(s.Addrs) < maxAddrs {
			s.Addrs = append(s.Addrs, ip.Unmap())
		}
	}
}

// why says why a reading failed, briefly.
func why(err error) string {
	switch {
	case errors.Is(err, unix.ENOENT):
		return "absent"
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return "permission denied"
	}
	return err.Error()
}

// read returns the contents of a (small, /proc) file in k.buf: valid until
// the next read.
func (k *kreader) read(path string) ([]byte, error) {
	var fd int
	var err error
	for {
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	n := 0
	for {
		if n == len(k.buf) {
			k.buf = append(k.buf, make([]byte, len(k.buf))...)
		}
		m, err := unix.Read(fd, k.buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if m == 0 {
			return k.buf[:n], nil
		}
		n += m
	}
}

func (k *kreader) sysctl(s *kevent.Sample, name, path string) {
	data, err := k.read(path)
	if err != nil {
		msg := why(err)
		if errors.Is(err, unix.ENOENT) {
			msg = "absent (not in this kernel)"
		}
		s.Missing = append(s.Missing, "sysctl "+name+": "+msg)
		return
	}
	s.Sysctls[name] = strings.TrimRight(string(data), "\n")
}

// rpFilters reads net.ipv4.conf.<if>.rp_filter for each interface with IPv4
// configuration in the namespace. The name is kept as is in the key, dots
// included (sysctl(8) would write a VLAN's "eth0.100" as "eth0/100").
func (k *kreader) rpFilters(s *kevent.Sample) {
	ents, err := os.ReadDir("/proc/sys/net/ipv4/conf")
	if err != nil {
		s.Missing = append(s.Missing, "interfaces' rp_filter: "+why(err))
		return
	}
	n := 0
	for _, e := range ents { // sorted by name
		name := e.Name()
		if name == "all" || name == "default" {
			continue
		}
		if n++; n > MaxRPFilterIfaces {
			continue
		}
		k.sysctl(s, "net.ipv4.conf."+name+".rp_filter", "/proc/sys/net/ipv4/conf/"+name+"/rp_filter")
	}
	if n > MaxRPFilterIfaces {
		s.Missing = append(s.Missing, fmt.Sprintf("interfaces' rp_filter: read for the first %d interfaces of %d", MaxRPFilterIfaces, n))
	}
}

// conntrack reads /proc/sys/net/netfilter/<name>: -1 when absent, which is
// conntrack not being loaded (it is not noted in Missing: -1 says it). It
// never loads conntrack.
func (k *kreader) conntrack(s *kevent.Sample, name string) int64 {
	data, err := k.read("/proc/sys/net/netfilter/" + name)
	if errors.Is(err, unix.ENOENT) {
		return -1
	}
	if err != nil {
		s.Missing = append(s.Missing, "conntrack: "+name+": "+why(err))
		return -1
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		s.Missing = append(s.Missing, fmt.Sprintf("conntrack: %s: bad value %q", name, data))
		return -1
	}
	return v
}

// listeners lists the namespace's listening TCP sockets, IPv4 and IPv6,
// through sock_diag, or from /proc/net/tcp{,6} if sock_diag fails (then
// without their backlog).
func (k *kreader) listeners(s *kevent.Sample) {
	var ls []kevent.Listener
	var diagErr error
	if k.noDiag {
		diagErr = errors.New("disabled")
	} else if k.nl < 0 {
		diagErr = k.nlErr
	} else {
		for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
			var intr bool
			ls, intr, diagErr = k.diagListeners(fam, ls)
			if diagErr != nil {
				break
			}
			if intr {
				s.Missing = append(s.Missing, "listeners: sock_diag dump interrupted by a change: the list may be inconsistent")
			}
		}
	}
	if diagErr != nil {
		ls = ls[:0]
		var failed []string
		for _, f := range []struct {
			name string
			v6   bool
		}{{"tcp", false}, {"tcp6", true}} {
			data, err := k.read("/proc/thread-self/net/" + f.name)
			if err == nil {
				ls, err = parseProcTCP(data, f.v6, ls)
			}
			if err != nil && !(f.v6 && errors.Is(err, unix.ENOENT)) { // no tcp6 without IPv6
				failed = append(failed, "/proc/net/"+f.name+": "+why(err))
			}
		}
		msg := "listeners: sock_diag: " + diagErr.Error() + "; read from /proc/net/tcp{,6} instead, without backlogs"
		if failed != nil {
			msg += " (" + strings.Join(failed, "; ") + ")"
		}
		s.Missing = append(s.Missing, msg)
	}
	slices.SortFunc(ls, func(a, b kevent.Listener) int {
		if c := a.Addr.Compare(b.Addr); c != 0 {
			return c
		}
		if a.Backlog != b.Backlog {
			return int(a.Backlog) - int(b.Backlog)
		}
		return int(a.Queue) - int(b.Queue)
	})
	if len(ls) > MaxListeners {
		s.Missing = append(s.Missing, fmt.Sprintf("listeners: %d kept of %d (the first by address)", MaxListeners, len(ls)))
		ls = ls[:MaxListeners]
	}
	if len(ls) > 0 {
		s.Listeners = slices.Clip(ls)
	}
}

// openSockDiag opens a NETLINK_SOCK_DIAG socket; it answers for the
// namespace of the thread that creates it, for as long as it lives.
func openSockDiag() (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return -1, fmt.Errorf("netlink socket: %w", err)
	}
	// A reply that never comes must not hang the sampler.
	tv := unix.Timeval{Sec: 5}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("netlink bind: %w", err)
	}
	return fd, nil
}

// Sizes of the inet_diag structures (linux/inet_diag.h).
const (
	nlmsgHdrLen      = 16
	inetDiagReqV2Len = 56 // family, protocol, ext, pad, states, inet_diag_sockid (48)
	inetDiagMsgLen   = 72 // family, state, timer, retrans, sockid (48), expires, rqueue, wqueue, uid, inode
)

// diagListeners dumps the family's TCP sockets in LISTEN state (the kernel
// filters by state; no extensions asked) and appends them to out. For a
// listener, idiag_rqueue is the accept queue's depth (sk_ack_backlog) and
// idiag_wqueue its limit (sk_max_ack_backlog). intr reports a dump the kernel
// flagged as interrupted by a concurrent change (NLM_F_DUMP_INTR).
func (k *kreader) diagListeners(family uint8, out []kevent.Listener) (_ []kevent.Listener, intr bool, err error) {
	k.seq++
	ne := binary.NativeEndian
	var req [nlmsgHdrLen + inetDiagReqV2Len]byte
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	ne.PutUint32(req[8:], k.seq)
	req[16] = family
	req[17] = unix.IPPROTO_TCP
	ne.PutUint32(req[20:], 1<<tcpListen)
	// The socket id stays zero (a dump ignores it) but for the cookie,
	// INET_DIAG_NOCOOKIE.
	ne.PutUint32(req[16+8+40:], ^uint32(0))
	ne.PutUint32(req[16+8+44:], ^uint32(0))
	if err := unix.Sendto(k.nl, req[:], 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return out, false, fmt.Errorf("send: %w", err)
	}
	if k.nlbuf == nil {
		k.nlbuf = make([]byte, 64<<10) // a dump's datagrams are at most 32 KiB
	}
	for {
		n, _, err := unix.Recvfrom(k.nl, k.nlbuf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return out, intr, fmt.Errorf("receive: %w", err)
		}
		b := k.nlbuf[:n]
		for len(b) >= nlmsgHdrLen {
			l := int(ne.Uint32(b[0:]))
			typ := ne.Uint16(b[4:])
			flags := ne.Uint16(b[6:])
			seq := ne.Uint32(b[8:])
			if l < nlmsgHdrLen || l > len(b) {
				return out, intr, fmt.Errorf("bad netlink message length %d", l)
			}
			msg := b[nlmsgHdrLen:l]
			if a := (l + 3) &^ 3; a < len(b) {
				b = b[a:]
			} else {
				b = nil
			}
			if seq != k.seq {
				continue // a stale reply from an earlier, abandoned dump
			}
			if flags&unix.NLM_F_DUMP_INTR != 0 {
				intr = true
			}
			switch typ {
			case unix.NLMSG_DONE:
				return out, intr, nil
			case unix.NLMSG_ERROR:
				if len(msg) >= 4 {
					if e := int32(ne.Uint32(msg)); e != 0 {
						return out, intr, unix.Errno(-e)
					}
				}
				return out, intr, errors.New("netlink error")
			case unix.SOCK_DIAG_BY_FAMILY:
				if len(msg) < inetDiagMsgLen {
					return out, intr, fmt.Errorf("short inet_diag_msg (%d bytes)", len(msg))
				}
				if msg[1] != tcpListen {
					continue
				}
				port := binary.BigEndian.Uint16(msg[4:])
				out = append(out, kevent.Listener{
					Addr:    netipAddrPort(msg[0], msg[8:24], port),
					Queue:   ne.Uint32(msg[56:]),
					Backlog: ne.Uint32(msg[60:]),
				})
			}
		}
	}
}

// OpenSampler starts sampling the network namespace netns (as SampleKernel)
// and returns it as a packet source: each sample is a record of link type
// kevent.LinkType holding kevent.AppendJSON(KindCounters, sample), timed by
// the sample. The first sample is taken before OpenSampler returns, then one
// every `every` (0: none but those asked by SampleNow), and a last one when
// ctx is cancelled or Close is called; Next then returns io.EOF.
//
// The namespace is entered once: a goroutine locked to an OS thread inside
// it takes every sample. OpenSampler fails when the namespace cannot be
// entered.
func OpenSampler(ctx context.Context, netns string, every time.Duration) (*Sampler, error) {
	if every < 0 {
		return nil, fmt.Errorf("kernel sampler: negative period %v", every)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	s := &Sampler{
		ctx:   ctx,
		every: every,
		stop:  make(chan struct{}),
		now:   make(chan struct{}, 1),
		ready: make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
	s.info.Path = "kernel"
	if netns != "" {
		s.info.Path += "@" + netns
	}
	s.info.Format = "kernel-counters"
	s.info.Nanosecond = true
	started := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		defer close(s.done)
		err := inNetns(netns, func() error {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			k := newKReader()
			defer k.close()
			s.push(k.sample(), false)
			close(started)
			s.loop(k)
			return nil
		})
		if err != nil {
			errc <- err
			s.mu.Lock()
			s.ended = true
			s.mu.Unlock()
			s.wake()
		}
	}()
	select {
	case <-started:
		return s, nil
	case err := <-errc:
		return nil, fmt.Errorf("kernel sampler: %w", err)
	}
}

// Sampler is a periodic sample of a namespace's kernel state, read as a
// packet source. See OpenSampler.
type Sampler struct {
	ctx   context.Context
	every time.Duration
	stop  chan struct{} // closed by Close
	once  sync.Once
	now   chan struct{} // SampleNow's requests, coalesced
	done  chan struct{} // closed when the namespace goroutine has ended

	mu      sync.Mutex
	queue   []*kevent.Sample
	ended   bool // the last sample is in the queue
	dropped int
	ready   chan struct{} // signalled when the queue grows or ends

	buf  []byte
	info SourceInfo
}

// MinSampleGap is the least time between a sample asked by SampleNow and the
// one before it: requests in a burst (an incident storm) are coalesced into
// one sample per gap.
const MinSampleGap = 100 * time.Millisecond

// maxQueuedSamples bounds the samples waiting for Next; past it the oldest
// are dropped and the next sample says how many.
const maxQueuedSamples = 1024

// SampleNow asks for an extra sample as soon as possible (within
// MinSampleGap of the previous one), e.g. around an incident. It does not
// wait for it.
func (s *Sampler) SampleNow() {
	select {
	case s.now <- struct{}{}:
	default:
	}
}

func (s *Sampler) loop(k *kreader) {
	var tick <-chan time.Time
	if s.every > 0 {
		t := time.NewTicker(s.every)
		defer t.Stop()
		tick = t.C
	}
	last := time.Now()
	var later *time.Timer // a deferred SampleNow
	var laterC <-chan time.Time
	defer func() {
		if later != nil {
			later.Stop()
		}
	}()
	take := func() {
		s.push(k.sample(), false)
		last = time.Now()
	}
	for {
		select {
		case <-s.ctx.Done():
			s.push(k.sample(), true)
			return
		case <-s.stop:
			s.push(k.sample(), true)
			return
		case <-tick:
			take()
		case <-s.now:
			if laterC != nil {
				break // one is already due
			}
			if wait := MinSampleGap - time.Since(last); wait > 0 {
				later = time.NewTimer(wait)
				laterC = later.C
				break
			}
			take()
		case <-laterC:
			laterC = nil
			take()
		}
	}
}

func (s *Sampler) push(smp *kevent.Sample, last bool) {
	s.mu.Lock()
	for len(s.queue) >= maxQueuedSamples {
		s.queue[0] = nil
		s.queue = s.queue[1:]
		s.dropped++
	}
	if s.dropped > 0 {
		smp.Missing = append(smp.Missing, fmt.Sprintf("counters: %d earlier samples dropped: the reader fell behind", s.dropped))
		s.dropped = 0
	}
	s.queue = append(s.queue, smp)
	if last {
		s.ended = true
	}
	s.mu.Unlock()
	s.wake()
}

func (s *Sampler) wake() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// Next blocks until a sample is due and returns its record. After the last
// sample (ctx cancelled or Close called) it returns io.EOF.
func (s *Sampler) Next(p *Packet) error {
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			smp := s.queue[0]
			s.queue[0] = nil
			s.queue = s.queue[1:]
			s.mu.Unlock()
			var err error
			s.buf, err = kevent.AppendJSON(s.buf[:0], kevent.KindCounters, smp)
			if err != nil {
				return fmt.Errorf("kernel sampler: %w", err)
			}
			s.info.Packets++
			if s.info.First == 0 {
				s.info.First = smp.Time
				s.info.LinkTypes = []uint16{kevent.LinkType}
			}
			s.info.Last = smp.Time
			s.info.Bytes += int64(len(s.buf))
			*p = Packet{
				Data:     s.buf,
				Time:     smp.Time,
				OrigLen:  len(s.buf),
				LinkType: kevent.LinkType,
				Num:      s.info.Packets,
			}
			return nil
		}
		ended := s.ended
		s.mu.Unlock()
		if ended {
			return io.EOF
		}
		<-s.ready
	}
}

// Info describes the sampler: Format "kernel-counters", Path "kernel" or
// "kernel@<netns>".
func (s *Sampler) Info() *SourceInfo { return &s.info }

// Close takes the last sample (which Next still returns, before io.EOF) and
// ends the namespace goroutine.
func (s *Sampler) Close() error {
	s.once.Do(func() { close(s.stop) })
	<-s.done
	return nil
}

var _ Source = (*Sampler)(nil)

func netipAddrPort(family uint8, a []byte, port uint16) netip.AddrPort {
	if family == unix.AF_INET {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(a[:4])), port)
	}
	return netip.AddrPortFrom(netip.AddrFrom16([16]byte(a[:16])), port)
}
