//go:build linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Limits of TapConfig.
const (
	DefaultSnaplen   = 128
	MaxSnaplen       = 256
	MaxPorts         = 8
	DefaultRingBytes = 4 << 20
)

// Link types of Record.LinkType (pcap LINKTYPE_* values).
const (
	LinkTypeEthernet = 1
	LinkTypeRaw      = 101
)

// eventHdrLen is sizeof(struct event_hdr) in tap.c.
const eventHdrLen = 24

// ErrNeedPrivileges is returned when the kernel refuses to load or attach.
var ErrNeedPrivileges = errors.New("eBPF tap needs root or CAP_BPF+CAP_NET_ADMIN")

// forceClsact makes OpenTap skip TCX (tests use it to cover the fallback).
var forceClsact = false

// TapConfig tunes the tap. Zero values select the defaults.
type TapConfig struct {
	Snaplen   int      // bytes of each packet copied (default 128, max 256)
	Ports     []uint16 // TCP ports to watch, at most 8 (none, or only 0s = all)
	RingBytes int      // ring buffer size, rounded up to a power of two (default 4 MiB)
}

// Record is one packet delivered by the tap. Data aliases the reader's
// buffer: it is valid until the next Read.
type Record struct {
	Time     int64  // ns since the Unix epoch
	Data     []byte // the first Snaplen bytes of the packet
	OrigLen  uint32 // length of the packet (skb->len)
	Ifindex  uint32 // in the tap's namespace
	Egress   bool
	LinkType uint16 // LinkTypeEthernet or LinkTypeRaw

	raw ringbuf.Record
}

// Tap is an attached packet tap.
type Tap struct {
	deadline  time.Time // the caller's read deadline (SetDeadline)
	objs      tapObjects
	links     []link.Link
	reader    *ringbuf.Reader
	bootToRT  int64 // add to a CLOCK_BOOTTIME ns value to get Unix ns
	ifindex   int
	attachDel func() error // clsact fallback cleanup, nil with TCX
	// Mode tells how the program is attached: "tcx" or "clsact".
	Mode string

	gone      chan struct{} // closed when the interface goes away
	goneAt    time.Time     // set before gone is closed
	stopWatch chan struct{} // closed by Close: ends the watcher
	watchDone chan struct{} // closed when the watcher has ended
}

// OpenTap loads the tap and attaches it to ingress and egress of ifname in
// the network namespace netns ("" = the current one; a name under
// /var/run/netns, or a path such as /proc/PID/ns/net).
func OpenTap(ifname, netns string, cfg TapConfig) (*Tap, error) {
	ring, err := cfg.normalize()
	if err != nil {
		return nil, err
	}

	nsFD := -1
	if netns != "" {
		p := netns
		if !strings.ContainsRune(p, '/') {
			p = filepath.Join("/var/run/netns", p)
		}
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("tap: network namespace %q not found: %w", netns, err)
		}
		defer unix.Close(fd)
		nsFD = fd
	}

	// Look up the interface in its namespace first: the L2 setting must be
	// known before load.
	var ifindex int
	var l2 bool
	if err := inNetns(nsFD, func() error {
		l, err := netlink.LinkByName(ifname)
		if err != nil {
			return fmt.Errorf("tap: interface %q not found%s: %w", ifname, nsSuffix(netns), err)
		}
		ifindex = l.Attrs().Index
		et := l.Attrs().EncapType
		l2 = et == "ether" || et == "loopback"
		return nil
	}); err != nil {
		return nil, err
	}

	t := &Tap{ifindex: ifindex}
	if err := loadObjects(&t.objs, cfg, ring, l2); err != nil {
		return nil, err
	}
	if err := inNetns(nsFD, t.attach); err != nil {
		t.Close()
		return nil, err
	}
	if t.reader, err = ringbuf.NewReader(t.objs.Events); err != nil {
		t.Close()
		return nil, fmt.Errorf("tap: ring buffer: %w", err)
	}
	if err := inNetns(nsFD, t.watch); err != nil {
		t.Close()
		return nil, err
	}
	t.bootToRT = clockOffset()
	return t, nil
}

// watch runs in the interface's namespace: it subscribes to the
// namespace's link notifications, and a goroutine closes t.gone when the
// interface is deleted (or moved to another namespace, which the old one
// sees as a deletion). Once a second it also asks for the interface by its
// index, in case a notification was lost (a full netlink socket drops
// them); both sockets stay bound to the namespace they were opened in.
func (t *Tap) watch() error {
	t.gone = make(chan struct{})
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("tap: netlink: %w", err)
	}
	updates := make(chan netlink.LinkUpdate, 64)
	subDone := make(chan struct{})
	if err := netlink.LinkSubscribeWithOptions(updates, subDone, netlink.LinkSubscribeOptions{ErrorCallback: func(error) {}}); err != nil {
		h.Close()
		return fmt.Errorf("tap: watching links: %w", err)
	}
	exists := func() bool {
		_, err := h.LinkByIndex(t.ifindex)
		var nf netlink.LinkNotFoundError
		return !errors.As(err, &nf)
	}
	if !exists() { // gone between the lookup and the subscription
		close(subDone)
		h.Close()
		return fmt.Errorf("tap: interface index %d went away while attaching", t.ifindex)
	}
	t.stopWatch, t.watchDone = make(chan struct{}), make(chan struct{})
	sub := updates
	go func() {
		defer close(t.watchDone)
		defer h.Close()
		defer func() {
			close(subDone)
			go func() {
				for range sub { // let the subscriber see subDone and end
				}
			}()
		}()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			gone := false
			select {
			case <-t.stopWatch:
				return
			case u, ok := <-updates:
				if !ok {
					updates = nil // the subscription failed: the ticker still checks
					continue
				}
				gone = u.Header.Type == unix.RTM_DELLINK && int(u.Index) == t.ifindex
			case <-tick.C:
				gone = !exists()
			}
			if gone {
				t.goneAt = time.Now()
				close(t.gone)
				return
			}
		}
	}()
	return nil
}

// Gone is closed when the interface the tap is attached to goes away
// (deleted, or moved to another namespace); GoneAt then says when. Events
// already in the ring can still be read.
func (t *Tap) Gone() <-chan struct{} { return t.gone }

// GoneAt is when the interface was seen to go away (zero until Gone is
// closed).
func (t *Tap) GoneAt() time.Time {
	select {
	case <-t.gone:
		return t.goneAt
	default:
		return time.Time{}
	}
}

// loadObjects loads tap.c's objects with the settings rewritten.
func loadObjects(objs *tapObjects, cfg TapConfig, ring int, l2 bool) error {
	_ = rlimit.RemoveMemlock() // kernels before 5.11 account BPF memory to RLIMIT_MEMLOCK
	spec, err := loadTap()
	if err != nil {
		return fmt.Errorf("tap: load spec: %w", err)
	}
	var ports [MaxPorts]uint16
	copy(ports[:], cfg.Ports)
	l2v := uint8(0)
	if l2 {
		l2v = 1
	}
	for name, v := range map[string]any{
		"snaplen": uint32(cfg.Snaplen), "ports": ports,
		"nports": uint32(len(cfg.Ports)), "l2_present": l2v,
	} {
		if err := spec.Variables[name].Set(v); err != nil {
			return fmt.Errorf("tap: set %s: %w", name, err)
		}
	}
	spec.Maps["events"].MaxEntries = uint32(ring)
	if err := spec.LoadAndAssign(objs, nil); err != nil {
		var ve *ebpf.VerifierError
		switch {
		case errors.As(err, &ve):
			return fmt.Errorf("tap: verifier rejected the program: %+v", ve)
		case errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES):
			return fmt.Errorf("%w: %v", ErrNeedPrivileges, err)
		}
		return fmt.Errorf("tap: load: %w", err)
	}
	return nil
}

// normalize applies the defaults and returns the ring buffer size.
func (cfg *TapConfig) normalize() (int, error) {
	if cfg.Snaplen == 0 {
		cfg.Snaplen = DefaultSnaplen
	}
	if cfg.Snaplen < 1 || cfg.Snaplen > MaxSnaplen {
		return 0, fmt.Errorf("tap: snaplen %d out of range 1..%d", cfg.Snaplen, MaxSnaplen)
	}
	if len(cfg.Ports) > MaxPorts {
		return 0, fmt.Errorf("tap: at most %d ports, got %d", MaxPorts, len(cfg.Ports))
	}
	cfg.Ports = nonZero(cfg.Ports)
	return ringSize(cfg.RingBytes, DefaultRingBytes), nil
}

// nonZero drops the 0 entries of a port list (none left: all ports).
func nonZero(ports []uint16) []uint16 {
	var out []uint16
	for _, p := range ports {
		if p != 0 {
			out = append(out, p)
		}
	}
	return out
}

// ringSize is a ring buffer's size for a request of req bytes: the next
// power of two from a page (def when req is 0 or less).
func ringSize(req, def int) int {
	if req <= 0 {
		return def
	}
	ring := os.Getpagesize()
	for ring < req {
		ring <<= 1
	}
	return ring
}

// perCPUSum adds up a per-CPU counter at key 0 of m (0 when it cannot be
// read).
func perCPUSum(m *ebpf.Map) uint64 {
	var per []uint64
	if err := m.Lookup(uint32(0), &per); err != nil {
		return 0
	}
	var n uint64
	for _, v := range per {
		n += v
	}
	return n
}

func nsSuffix(netns string) string {
	if netns == "" {
		return ""
	}
	return " in network namespace " + netns
}

// inNetns runs fn on an OS thread that has entered the namespace nsFD (-1:
// stay), then returns the thread to its namespace. A thread that cannot go
// back is left locked, so the runtime discards it.
func inNetns(nsFD int, fn func() error) error {
	if nsFD < 0 {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("tap: current network namespace: %w", err)
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(nsFD, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			if errors.Is(err, unix.EPERM) {
				err = fmt.Errorf("%w: setns: %v", ErrNeedPrivileges, err)
			}
			errc <- fmt.Errorf("tap: enter network namespace: %w", err)
			return
		}
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("tap: leave network namespace: %w", err))
			return // thread stays locked and dies with the goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// attach runs in the interface's namespace: TCX when the kernel has it
// (6.6+), else a clsact qdisc with two direct-action bpf filters.
func (t *Tap) attach() error {
	progs := []*ebpf.Program{t.objs.TapIngress, t.objs.TapEgress}
	if !forceClsact {
		var err error
		for i, at := range []ebpf.AttachType{ebpf.AttachTCXIngress, ebpf.AttachTCXEgress} {
			var l link.Link
			l, err = link.AttachTCX(link.TCXOptions{Interface: t.ifindex, Program: progs[i], Attach: at})
			if err != nil {
				break
			}
			t.links = append(t.links, l)
		}
		if err == nil {
			t.Mode = "tcx"
			return nil
		}
		for _, l := range t.links {
			l.Close()
		}
		t.links = nil
		if !errors.Is(err, ebpf.ErrNotSupported) {
			if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
				return fmt.Errorf("%w: attach tcx: %v", ErrNeedPrivileges, err)
			}
			return fmt.Errorf("tap: attach tcx: %w", err)
		}
	}
	return t.attachClsact(progs)
}

func (t *Tap) attachClsact(progs []*ebpf.Program) error {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE) // bound to this thread's namespace
	if err != nil {
		return fmt.Errorf("tap: netlink: %w", err)
	}
	qd := &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: t.ifindex, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
		QdiscType:  "clsact",
	}
	created := false
	switch err := h.QdiscAdd(qd); {
	case err == nil:
		created = true
	case errors.Is(err, unix.EEXIST):
	case errors.Is(err, unix.EPERM):
		h.Close()
		return fmt.Errorf("%w: add clsact: %v", ErrNeedPrivileges, err)
	default:
		h.Close()
		return fmt.Errorf("tap: kernel has neither TCX nor clsact: %w", err)
	}
	var filters []*netlink.BpfFilter
	cleanup := func() error {
		var errs []error
		for _, f := range filters {
			errs = append(errs, h.FilterDel(f))
		}
		if created {
			errs = append(errs, h.QdiscDel(qd))
		}
		h.Close()
		return errors.Join(errs...)
	}
	for i, parent := range []uint32{netlink.HANDLE_MIN_INGRESS, netlink.HANDLE_MIN_EGRESS} {
		f := &netlink.BpfFilter{
			FilterAttrs: netlink.FilterAttrs{
				LinkIndex: t.ifindex, Parent: parent, Handle: netlink.MakeHandle(0, 1),
				Protocol: unix.ETH_P_ALL, Priority: 1,
			},
			Fd: progs[i].FD(), Name: "synscope_tap", DirectAction: true,
		}
		if err := h.FilterAdd(f); err != nil {
			cleanup()
			return fmt.Errorf("tap: add bpf filter: %w", err)
		}
		filters = append(filters, f)
	}
	t.attachDel = cleanup
	t.Mode = "clsact"
	return nil
}

// clockOffset returns CLOCK_REALTIME - CLOCK_BOOTTIME in ns, read with the
// narrowest bracket of a few tries.
func clockOffset() int64 {
	var best, off int64 = -1, 0
	for i := 0; i < 5; i++ {
		var b, r1, r2 unix.Timespec
		unix.ClockGettime(unix.CLOCK_REALTIME, &r1)
		unix.ClockGettime(unix.CLOCK_BOOTTIME, &b)
		unix.ClockGettime(unix.CLOCK_REALTIME, &r2)
		w := r2.Nano() - r1.Nano()
		if best < 0 || w < best {
			best, off = w, r1.Nano()+w/2-b.Nano()
		}
	}
	return off
}

// Read blocks for the next packet and fills rec. rec.Data is valid until the
// next Read with the same rec. After Close it returns an error wrapping
// os.ErrClosed; after a SetDeadline expiry one wrapping os.ErrDeadlineExceeded.
func (t *Tap) Read(rec *Record) error {
	for {
		if err := readBatched(t.reader, &rec.raw, t.deadline); err != nil {
			return err
		}
		s := rec.raw.RawSample
		if len(s) < eventHdrLen {
			continue
		}
		capLen := binary.LittleEndian.Uint32(s[12:])
		if int(capLen) > len(s)-eventHdrLen {
			continue
		}
		rec.Time = int64(binary.LittleEndian.Uint64(s[0:])) + t.bootToRT
		rec.OrigLen = binary.LittleEndian.Uint32(s[8:])
		rec.Ifindex = binary.LittleEndian.Uint32(s[16:])
		rec.Egress = s[20] != 0
		rec.LinkType = LinkTypeRaw
		if s[21]&1 != 0 {
			rec.LinkType = LinkTypeEthernet
		}
		rec.Data = s[eventHdrLen : eventHdrLen+int(capLen)]
		return nil
	}
}

// lonePoll bounds how late a lone event (one that did not complete a batch
// and so woke nobody) reaches Read.
const lonePoll = 50 * time.Millisecond

// SetDeadline bounds the wait of Read (zero: none). Call it from the
// goroutine that reads.
func (t *Tap) SetDeadline(d time.Time) { t.deadline = d }

// Lost returns how many packets were dropped because the ring buffer was full.
func (t *Tap) Lost() uint64 { return perCPUSum(t.objs.Lost) }

// Ifindex is the interface's index in its namespace.
func (t *Tap) Ifindex() int { return t.ifindex }

// Close detaches the program and frees the maps and the ring buffer. A Read
// blocked in another goroutine returns os.ErrClosed.
func (t *Tap) Close() error {
	var errs []error
	if t.stopWatch != nil {
		close(t.stopWatch)
		<-t.watchDone
		t.stopWatch = nil
	}
	for _, l := range t.links {
		errs = append(errs, l.Close())
	}
	t.links = nil
	if t.attachDel != nil {
		errs = append(errs, t.attachDel())
		t.attachDel = nil
	}
	if t.reader != nil {
		errs = append(errs, t.reader.Close())
	}
	errs = append(errs, t.objs.Close())
	return errors.Join(errs...)
}

// readBatched reads the next record of a ring buffer whose program wakes
// the reader only when a batch has piled up (a wakeup per event costs a
// syscall per event): it waits in slices of lonePoll, so a lone record is
// picked up within that, until the caller's deadline (zero: none).
func readBatched(r *ringbuf.Reader, rec *ringbuf.Record, deadline time.Time) error {
	for {
		wait := time.Now().Add(lonePoll)
		if !deadline.IsZero() && deadline.Before(wait) {
			wait = deadline
		}
		r.SetDeadline(wait)
		err := r.ReadInto(rec)
		if errors.Is(err, os.ErrDeadlineExceeded) && (deadline.IsZero() || time.Now().Before(deadline)) {
			continue
		}
		return err
	}
}
