//go:build linux

package capture

// The AF_PACKET engine: a TPACKET_V3 memory-mapped receive ring, read without
// a copy, behind a classic-BPF filter that keeps only what a TCP handshake
// tracker needs. It is our own (on golang.org/x/sys/unix) rather than
// gopacket/afpacket so that a blocked Next can be woken by the context or by
// Close through Go's poller (no polling timeout, no thread parked in poll(2)),
// the ring is unmapped only once no Next is using it, and cooked captures on
// "any" get a Linux SLL header without a copy.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

const (
	linkTypeEthernet = 1
	linkTypeLinuxSLL = 113

	sllHeaderLen = 16
	// TPACKET3_HDRLEN: the aligned tpacket3_hdr, then a sockaddr_ll.
	tpacket3HdrLen = unix.SizeofTpacket3Hdr + unix.SizeofSockaddrLinklayer
	// A block is retired to user space after this long even when not full:
	// the latency of a quiet capture.
	blockTimeoutMs = 50
	maxFilterPorts = 100
)

// ErrNeedRoot is returned (wrapped) when the process may not open a packet
// socket.
var ErrNeedRoot = errors.New("AF_PACKET capture needs root or CAP_NET_RAW")

type afpacket struct {
	ctx     context.Context
	stopCtx func() bool
	f       *os.File
	rc      syscall.RawConn
	cooked  bool
	iface   string // as given, for InterfaceGoneError
	ifindex int    // 0 for "any"

	ring      []byte
	blockSize int
	blockNr   int

	mu     sync.Mutex // held by Next, and by Close while it unmaps the ring
	closed atomic.Bool
	blk    int  // index of the current block
	held   bool // the current block is ours (TP_STATUS_USER) and being read
	// drainBy: once the context ends or the interface is gone, packets
	// already in the ring are still handed out, waiting once for the kernel
	// to retire a partly filled block.
	drainBy time.Time
	// gone is set (by Next, from the socket's pending error) when the interface
	// went away: Next drains the ring, then returns it.
	gone  *InterfaceGoneError
	down  bool   // the interface went down once: see checkGone
	left  uint32 // packets of the held block not yet handed out
	off   int    // offset of the next one within the block
	scrap []byte // a cooked frame whose SLL header did not fit in the ring
	info  SourceInfo

	smu   sync.Mutex
	stats LiveStats
}

// OpenAFPacket opens a live capture on cfg.Interface ("any" for all
// interfaces) inside the network namespace cfg.Netns. Packets are handed out
// from the kernel ring without a copy: Packet.Data is valid until the next
// Next or Close. When ctx is cancelled, a blocked Next returns io.EOF.
func OpenAFPacket(ctx context.Context, cfg LiveConfig) (LiveSource, error) {
	if cfg.Interface == "" {
		return nil, errors.New("afpacket: no interface given (use \"any\" for all)")
	}
	if cfg.Snaplen == 0 {
		cfg.Snaplen = DefaultSnaplen
	}
	if cfg.Snaplen < 64 || cfg.Snaplen > MaxRecordLen {
		return nil, fmt.Errorf("afpacket: snaplen %d out of range [64, %d]", cfg.Snaplen, MaxRecordLen)
	}
	if cfg.BufferMB == 0 {
		cfg.BufferMB = DefaultBufferMB
	}
	if cfg.BufferMB < 1 || cfg.BufferMB > 4096 {
		return nil, fmt.Errorf("afpacket: buffer of %d MiB out of range [1, 4096]", cfg.BufferMB)
	}
	where := ""
	if cfg.Netns != "" {
		where = fmt.Sprintf(" in network namespace %q", cfg.Netns)
	}

	// Only socket() must run inside the namespace: the socket stays bound to
	// the namespace it was created in, and everything after resolves there.
	var fd, ifindex int
	var cooked bool
	err := inNetns(cfg.Netns, func() (err error) {
		fd, ifindex, cooked, err = packetSocket(cfg.Interface)
		return err
	})
	if err != nil {
		if fd > 0 {
			unix.Close(fd)
		}
		if errors.Is(err, unix.ENODEV) {
			return nil, fmt.Errorf("afpacket: no such interface %q%s", cfg.Interface, where)
		}
		return nil, fmt.Errorf("afpacket: %s%s: %w", cfg.Interface, where, err)
	}
	s, err := setup(ctx, fd, ifindex, cooked, cfg)
	if err != nil {
		return nil, fmt.Errorf("afpacket: %s%s: %w", cfg.Interface, where, err)
	}
	s.info.Path = cfg.Interface
	if cfg.Netns != "" {
		s.info.Path += "@" + cfg.Netns
	}
	s.iface = s.info.Path
	return s, nil
}

// InterfaceGoneError ends a live capture whose interface went away (deleted,
// or moved to another namespace) while it was captured: the packets before
// it were handed out. Every live engine returns it from Next (after the
// packets still buffered) and keeps it in SourceInfo.Err.
type InterfaceGoneError struct {
	Interface string    // as given (with "@netns" when in another namespace)
	At        time.Time // when the engine noticed
}

func (e *InterfaceGoneError) Error() string {
	return fmt.Sprintf("interface %s went away at %s; the capture stopped there", e.Interface, e.At.UTC().Format("2006-01-02 15:04:05.000 UTC"))
}

// InterfaceGone says when the interface went away (for callers that match
// the error by this method rather than by type).
func (e *InterfaceGoneError) InterfaceGone() time.Time { return e.At }

// packetSocket creates the packet socket, unbound (protocol 0: it sees
// nothing until bind), raw for Ethernet-like interfaces and cooked
// (SOCK_DGRAM) for "any" and the others.
func packetSocket(iface string) (fd, ifindex int, cooked bool, err error) {
	open := func(typ int) (int, error) {
		fd, err := unix.Socket(unix.AF_PACKET, typ|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return -1, ErrNeedRoot
		}
		return fd, err
	}
	if iface == "any" {
		fd, err = open(unix.SOCK_DGRAM)
		return fd, 0, true, err
	}
	if fd, err = open(unix.SOCK_RAW); err != nil {
		return -1, 0, false, err
	}
	ifr, err := unix.NewIfreq(iface)
	if err == nil {
		err = unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr)
	}
	if err != nil {
		return fd, 0, false, err
	}
	ifindex = int(ifr.Uint32())
	if err = unix.IoctlIfreq(fd, unix.SIOCGIFHWADDR, ifr); err != nil {
		return fd, 0, false, err
	}
	// ifr_hwaddr.sa_family is the ARPHRD type.
	switch hatype := ifr.Uint16(); hatype {
	case unix.ARPHRD_ETHER, unix.ARPHRD_LOOPBACK:
		return fd, ifindex, false, nil
	}
	unix.Close(fd)
	fd, err = open(unix.SOCK_DGRAM)
	return fd, ifindex, true, err
}

func setup(ctx context.Context, fd, ifindex int, cooked bool, cfg LiveConfig) (s *afpacket, err error) {
	defer func() {
		if err != nil {
			unix.Close(fd)
		}
	}()
	prog, err := handshakeFilter(cooked, cfg.Snaplen, cfg.Ports)
	if err != nil {
		return nil, err
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return nil, fmt.Errorf("TPACKET_V3 not supported: %w", err)
	}
	total := cfg.BufferMB << 20
	bs := 128 << 10 // blocks: total/8 rounded down to a power of two, 128 KiB..4 MiB
	for bs*2 <= total/8 && bs < 4<<20 {
		bs *= 2
	}
	const frame = 2048 // only checked by the kernel for V3; packets are variable-length
	req := unix.TpacketReq3{
		Block_size:     uint32(bs),
		Block_nr:       uint32(total / bs),
		Frame_size:     frame,
		Frame_nr:       uint32(total / frame),
		Retire_blk_tov: blockTimeoutMs,
	}
	if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return nil, fmt.Errorf("allocating a %d MiB ring: %w", cfg.BufferMB, err)
	}
	ring, err := unix.Mmap(fd, 0, total, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mapping the ring: %w", err)
	}
	defer func() {
		if err != nil {
			unix.Munmap(ring)
		}
	}()
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: (*unix.SockFilter)(unsafe.Pointer(&prog[0]))}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		return nil, fmt.Errorf("attaching the filter: %w", err)
	}
	// Bind last: the socket receives nothing before, so no packet escapes
	// the filter.
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
		return nil, fmt.Errorf("binding: %w", err)
	}
	// The fd is non-blocking, so os.File puts it in Go's poller: Next waits
	// there, and a read deadline in the past wakes it.
	f := os.NewFile(uintptr(fd), "afpacket")
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		f.Close()
		unix.Munmap(ring)
		return nil, fmt.Errorf("packet socket not pollable: %w", err)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		unix.Munmap(ring)
		return nil, err
	}
	lt := uint16(linkTypeEthernet)
	if cooked {
		lt = linkTypeLinuxSLL
	}
	s = &afpacket{
		ctx: ctx, f: f, rc: rc, cooked: cooked, ifindex: ifindex,
		ring: ring, blockSize: bs, blockNr: total / bs,
		info: SourceInfo{Format: "afpacket", LinkTypes: []uint16{lt}, Snaplen: uint32(cfg.Snaplen), Nanosecond: true},
	}
	s.stopCtx = context.AfterFunc(ctx, s.wake)
	return s, nil
}

// wake makes a Next blocked in the poller return.
func (s *afpacket) wake() { s.f.SetReadDeadline(time.Unix(1, 0)) }

func (s *afpacket) Info() *SourceInfo { return &s.info }

func (s *afpacket) status() *uint32 {
	// tpacket_block_desc.hdr.bh1.block_status
	return (*uint32)(unsafe.Pointer(&s.ring[s.blk*s.blockSize+8]))
}

func (s *afpacket) ready() bool { return atomic.LoadUint32(s.status())&unix.TP_STATUS_USER != 0 }

// release hands the current block back to the kernel and moves to the next.
func (s *afpacket) release() {
	atomic.StoreUint32(s.status(), unix.TP_STATUS_KERNEL)
	s.held = false
	s.blk = (s.blk + 1) % s.blockNr
}

func (s *afpacket) done() bool { return s.closed.Load() || s.ctx.Err() != nil }

func (s *afpacket) Next(p *Packet) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.closed.Load() {
			return io.EOF
		}
		if s.held {
			if s.left > 0 {
				return s.emit(p)
			}
			s.release()
		}
		if s.ready() {
			b := s.ring[s.blk*s.blockSize:]
			s.held = true
			s.left = binary.NativeEndian.Uint32(b[12:])     // num_pkts
			s.off = int(binary.NativeEndian.Uint32(b[16:])) // offset_to_first_pkt
			continue
		}
		if s.ctx.Err() != nil || s.gone != nil {
			// Nothing is lost at the end: a partly filled block comes to
			// user space after the block timeout, so wait for that once.
			if s.drainBy.IsZero() {
				s.drainBy = time.Now().Add((blockTimeoutMs + 30) * time.Millisecond)
			}
			if time.Now().After(s.drainBy) {
				if s.gone != nil {
					s.info.Err = s.gone
					return s.gone
				}
				return io.EOF
			}
			time.Sleep(5 * time.Millisecond)
			continue
		}
		if s.down {
			// The kernel says nothing more when a down interface is then
			// deleted (it already unhooked the socket): look now and then.
			s.f.SetReadDeadline(time.Now().Add(downPoll))
		}
		var sockErr error
		err := s.rc.Read(func(fd uintptr) bool {
			if s.ready() || s.done() {
				return true
			}
			// The kernel reports trouble on the socket as a pending error
			// (poll says POLLERR): ENETDOWN when the interface went down
			// or away.
			if e, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR); err == nil && e != 0 {
				sockErr = unix.Errno(e)
				return true
			}
			return false
		})
		if s.down && errors.Is(err, os.ErrDeadlineExceeded) && !s.done() {
			s.checkBound()
			continue
		}
		if err != nil && !s.done() {
			return fmt.Errorf("afpacket: waiting for packets: %w", err)
		}
		if sockErr != nil {
			if err := s.checkGone(sockErr); err != nil {
				s.info.Err = err
				return err
			}
		}
	}
}

// checkGone looks at an error the socket reported. ENETDOWN is reported
// when the interface goes down, which it does first when it is deleted: if
// the socket is no longer bound to it (the kernel unbinds it, ifindex -1,
// once the interface is unregistered), the interface went away and Next
// drains the ring and returns an *InterfaceGoneError. Else it may only be
// down, which is not an end (the kernel resumes the capture when it comes
// back up), or still on its way out: from then on Next looks every downPoll.
// Any other error ends the capture.
func (s *afpacket) checkGone(sockErr error) error {
	if !errors.Is(sockErr, unix.ENETDOWN) && !errors.Is(sockErr, unix.ENXIO) && !errors.Is(sockErr, unix.ENODEV) {
		return fmt.Errorf("afpacket: %s: %w", s.iface, sockErr)
	}
	if s.ifindex == 0 {
		return nil // "any": no one interface to lose
	}
	s.down = true
	s.checkBound()
	return nil
}

// checkBound sets s.gone when the socket is no longer bound to its
// interface.
func (s *afpacket) checkBound() {
	var sa unix.Sockaddr
	var gerr error
	s.rc.Control(func(fd uintptr) { sa, gerr = unix.Getsockname(int(fd)) })
	if ll, ok := sa.(*unix.SockaddrLinklayer); gerr == nil && ok && ll.Ifindex == s.ifindex {
		return
	}
	s.gone = &InterfaceGoneError{Interface: s.iface, At: time.Now()}
}

// downPoll is how often Next looks whether an interface that went down
// was deleted.
const downPoll = 100 * time.Millisecond

func (s *afpacket) emit(p *Packet) error {
	blk := s.ring[s.blk*s.blockSize : (s.blk+1)*s.blockSize]
	if s.off < 0 || s.off+tpacket3HdrLen > len(blk) {
		return fmt.Errorf("afpacket: corrupt ring: packet header at %d in a %d-byte block", s.off, len(blk))
	}
	h := blk[s.off:]
	ne := binary.NativeEndian
	next := int(ne.Uint32(h[0:]))
	sec, nsec := ne.Uint32(h[4:]), ne.Uint32(h[8:])
	snap, wire := int(ne.Uint32(h[12:])), int(ne.Uint32(h[16:]))
	mac := int(ne.Uint16(h[24:]))
	if mac+snap > len(h) {
		return fmt.Errorf("afpacket: corrupt ring: %d bytes at %d past the block end", snap, s.off+mac)
	}
	data := h[mac : mac+snap : mac+snap]
	if s.cooked {
		// Build the SLL header from the sockaddr_ll that follows the
		// tpacket3_hdr, in the padding before the packet when it fits.
		ll := h[unix.SizeofTpacket3Hdr:tpacket3HdrLen]
		var sll []byte
		if mac-sllHeaderLen >= tpacket3HdrLen {
			sll = h[mac-sllHeaderLen : mac+snap : mac+snap]
		} else {
			s.scrap = append(s.scrap[:0], make([]byte, sllHeaderLen)...)
			s.scrap = append(s.scrap, data...)
			sll = s.scrap
		}
		be := binary.BigEndian
		be.PutUint16(sll[0:], uint16(ll[10]))         // packet type
		be.PutUint16(sll[2:], ne.Uint16(ll[8:]))      // ARPHRD
		be.PutUint16(sll[4:], uint16(min(ll[11], 8))) // address length
		copy(sll[6:14], ll[12:20])                    // address
		be.PutUint16(sll[14:], be.Uint16(ll[2:]))     // protocol (already big-endian)
		data, snap, wire = sll, snap+sllHeaderLen, wire+sllHeaderLen
	}
	s.left--
	s.off += next
	t := int64(sec)*1e9 + int64(nsec)
	s.info.book(t, snap)
	*p = Packet{Data: data, Time: t, OrigLen: wire, LinkType: s.info.LinkTypes[0], Num: s.info.Packets}
	return nil
}

// Stats reads the kernel's counters (which reset on read) into the totals.
func (s *afpacket) Stats() LiveStats {
	s.smu.Lock()
	defer s.smu.Unlock()
	s.rc.Control(func(fd uintptr) {
		st, err := unix.GetsockoptTpacketStatsV3(int(fd), unix.SOL_PACKET, unix.PACKET_STATISTICS)
		if err == nil {
			s.stats.Received += uint64(st.Packets) // the kernel adds the drops in
			s.stats.Dropped += uint64(st.Drops)
			s.stats.Freezes += uint64(st.Freeze_q_cnt)
		}
	})
	return s.stats
}

// Close stops the capture: a blocked Next returns io.EOF. Stats still reports
// the totals afterwards.
func (s *afpacket) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.stopCtx()
	s.Stats()
	s.wake()
	s.mu.Lock() // no Next is reading the ring after this
	defer s.mu.Unlock()
	err := unix.Munmap(s.ring) // before close, or the kernel warns the vma is busy
	s.ring = nil
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	return err
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// inNetns runs fn on an OS thread inside the network namespace ns (a name
// under /var/run/netns or a path; "" runs fn here), then moves the thread
// back. A thread that cannot be moved back stays locked and dies with its
// goroutine rather than serve other goroutines in the wrong namespace.
func inNetns(ns string, fn func() error) error {
	if ns == "" {
		return fn()
	}
	path := ns
	if !strings.Contains(ns, "/") {
		path = filepath.Join("/var/run/netns", ns)
	}
	target, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("no such network namespace %q (%s)", ns, path)
	} else if err != nil {
		return fmt.Errorf("opening network namespace %s: %w", path, err)
	}
	defer unix.Close(target)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("opening this thread's network namespace: %w", err)
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			if errors.Is(err, unix.EINVAL) {
				err = fmt.Errorf("%s is not a network namespace", path)
			} else if errors.Is(err, unix.EPERM) {
				err = fmt.Errorf("entering network namespace %s needs root (CAP_SYS_ADMIN): %w", path, err)
			}
			errc <- err
			return
		}
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("returning from network namespace %s: %w", path, err))
			return // still locked: the runtime ends this thread
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// handshakeFilter assembles the socket filter. It keeps, for IPv4 and IPv6
// without extension headers (Ethernet type at offset 12 for raw frames, the
// skb protocol for cooked ones; VLAN tags are already in auxdata):
//   - TCP segments with SYN, FIN or RST set;
//   - TCP segments carrying payload. cBPF has no state, so it cannot keep only
//     the first data segment each way the tracker needs: every data segment
//     passes, cut to the snap length (the cost of a bulk transfer is a ring
//     slot of headers per segment);
//   - ICMP destination unreachable and ICMPv6 type 1 quoting a TCP segment;
//
// and, with ports, only those whose (quoted) TCP source or destination port
// is one of them. Pure ACKs, IPv4 fragments after the first, and all else are
// dropped. Accepted packets are cut to snaplen bytes of frame.
func handshakeFilter(cooked bool, snaplen int, ports []uint16) ([]bpf.RawInstruction, error) {
	ps := make([]uint16, 0, len(ports))
	for _, p := range ports {
		if !slices.Contains(ps, p) {
			ps = append(ps, p)
		}
	}
	if len(ps) > maxFilterPorts {
		return nil, fmt.Errorf("at most %d ports can be filtered, not %d", maxFilterPorts, len(ps))
	}
	var a bpfAsm
	l3 := uint32(14)
	ret := uint32(snaplen)
	if cooked {
		// SOCK_DGRAM: the filter sees the packet from its network header,
		// and snaplen counts from there; we add a 16-byte SLL header.
		l3, ret = 0, uint32(snaplen-sllHeaderLen)
		a.op(bpf.LoadExtension{Num: bpf.ExtProto})
	} else {
		a.op(bpf.LoadAbsolute{Off: 12, Size: 2})
	}
	a.jif(bpf.JumpEqual, 0x0800, "v4", "")
	a.jif(bpf.JumpEqual, 0x86dd, "v6", "drop")
	// portCheck jumps to ok when the TCP port at [x+off] or [x+off+2] (at
	// [off] and [off+2] when abs) is one of ps, else drops.
	portCheck := func(off uint32, abs bool, ok string) {
		if len(ps) == 0 {
			a.jmp(ok)
			return
		}
		for _, o := range []uint32{off, off + 2} {
			if abs {
				a.op(bpf.LoadAbsolute{Off: o, Size: 2})
			} else {
				a.op(bpf.LoadIndirect{Off: o, Size: 2})
			}
			for _, p := range ps {
				a.jif(bpf.JumpEqual, uint32(p), ok, "")
			}
		}
		a.jmp("drop")
	}

	a.label("v4")
	a.op(bpf.LoadAbsolute{Off: l3 + 6, Size: 2})
	a.jif(bpf.JumpBitsSet, 0x1fff, "drop", "") // a later fragment: no TCP header
	a.op(bpf.LoadMemShift{Off: l3})            // X = IPv4 header length
	a.op(bpf.LoadAbsolute{Off: l3 + 9, Size: 1})
	a.jif(bpf.JumpEqual, 6, "v4tcp", "")
	a.jif(bpf.JumpEqual, 1, "v4icmp", "drop")
	a.label("v4tcp")
	portCheck(l3, false, "v4flags")
	a.label("v4flags")
	a.op(bpf.LoadIndirect{Off: l3 + 13, Size: 1})
	a.jif(bpf.JumpBitsSet, 0x07, "accept", "")   // FIN|SYN|RST
	a.op(bpf.LoadAbsolute{Off: l3 + 2, Size: 2}) // total length
	a.jif(bpf.JumpEqual, 0, "accept", "")        // TSO / BIG TCP: unknown, keep
	a.op(bpf.ALUOpX{Op: bpf.ALUOpSub})           // A = total - IP header
	a.op(bpf.StoreScratch{Src: bpf.RegA, N: 0})
	a.op(bpf.LoadIndirect{Off: l3 + 12, Size: 1}) // data offset
	a.op(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xf0})
	a.op(bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 2})
	a.op(bpf.TAX{}) // X = TCP header length
	a.op(bpf.LoadScratch{Dst: bpf.RegA, N: 0})
	a.jifx(bpf.JumpGreaterThan, "accept", "drop") // payload > 0
	a.label("v4icmp")
	a.op(bpf.LoadIndirect{Off: l3, Size: 1})
	a.jif(bpf.JumpEqual, 3, "", "drop")
	a.op(bpf.LoadIndirect{Off: l3 + 8 + 9, Size: 1}) // quoted protocol
	a.jif(bpf.JumpEqual, 6, "", "drop")
	if len(ps) > 0 {
		a.op(bpf.LoadIndirect{Off: l3 + 8, Size: 1}) // quoted IP header length
		a.op(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0x0f})
		a.op(bpf.ALUOpConstant{Op: bpf.ALUOpShiftLeft, Val: 2})
		a.op(bpf.ALUOpX{Op: bpf.ALUOpAdd})
		a.op(bpf.TAX{})
	}
	portCheck(l3+8, false, "accept")

	a.label("v6")
	a.op(bpf.LoadAbsolute{Off: l3 + 6, Size: 1})
	a.jif(bpf.JumpEqual, 6, "v6tcp", "")
	a.jif(bpf.JumpEqual, 58, "v6icmp", "drop")
	a.label("v6tcp")
	portCheck(l3+40, true, "v6flags")
	a.label("v6flags")
	a.op(bpf.LoadAbsolute{Off: l3 + 40 + 13, Size: 1})
	a.jif(bpf.JumpBitsSet, 0x07, "accept", "")
	a.op(bpf.LoadAbsolute{Off: l3 + 4, Size: 2}) // payload length
	a.jif(bpf.JumpEqual, 0, "accept", "")        // jumbogram / BIG TCP
	a.op(bpf.StoreScratch{Src: bpf.RegA, N: 0})
	a.op(bpf.LoadAbsolute{Off: l3 + 40 + 12, Size: 1})
	a.op(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xf0})
	a.op(bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 2})
	a.op(bpf.TAX{})
	a.op(bpf.LoadScratch{Dst: bpf.RegA, N: 0})
	a.jifx(bpf.JumpGreaterThan, "accept", "drop")
	a.label("v6icmp")
	a.op(bpf.LoadAbsolute{Off: l3 + 40, Size: 1})
	a.jif(bpf.JumpEqual, 1, "", "drop")
	a.op(bpf.LoadAbsolute{Off: l3 + 48 + 6, Size: 1}) // quoted next header
	a.jif(bpf.JumpEqual, 6, "", "drop")
	portCheck(l3+48+40, true, "accept")

	a.label("accept")
	a.op(bpf.RetConstant{Val: ret})
	a.label("drop")
	a.op(bpf.RetConstant{Val: 0})
	return a.assemble()
}

// bpfAsm is a small cBPF assembler with labelled forward jumps ("" = the next
// instruction). A conditional jump farther than 255 instructions goes
// through an unconditional one inserted after it.
type bpfAsm struct {
	ins    []bpf.Instruction
	to     [][2]string // jump targets, by instruction
	labels map[string]int
}

func (a *bpfAsm) op(i bpf.Instruction) { a.jump(i, "", "") }

func (a *bpfAsm) label(l string) {
	if a.labels == nil {
		a.labels = map[string]int{}
	}
	a.labels[l] = len(a.ins)
}

func (a *bpfAsm) jump(i bpf.Instruction, t, f string) {
	a.ins = append(a.ins, i)
	a.to = append(a.to, [2]string{t, f})
}

func (a *bpfAsm) jif(c bpf.JumpTest, v uint32, t, f string) {
	a.jump(bpf.JumpIf{Cond: c, Val: v}, t, f)
}
func (a *bpfAsm) jifx(c bpf.JumpTest, t, f string) { a.jump(bpf.JumpIfX{Cond: c}, t, f) }
func (a *bpfAsm) jmp(l string)                     { a.jump(bpf.Jump{}, l, "") }

func (a *bpfAsm) assemble() ([]bpf.RawInstruction, error) {
	// Resolve to absolute targets (-1: not a jump).
	ins := append([]bpf.Instruction(nil), a.ins...)
	tgt := make([][2]int, len(ins))
	for i, to := range a.to {
		tgt[i] = [2]int{-1, -1}
		switch ins[i].(type) {
		case bpf.Jump, bpf.JumpIf, bpf.JumpIfX:
		default:
			continue
		}
		for k, l := range to {
			tgt[i][k] = i + 1
			if l != "" {
				to, ok := a.labels[l]
				if !ok || to <= i {
					return nil, fmt.Errorf("bpf: bad jump to %q", l)
				}
				tgt[i][k] = to
			}
		}
	}
	insert := func(at int, ni []bpf.Instruction, nt [][2]int) {
		for i := range tgt {
			for k := range tgt[i] {
				if tgt[i][k] >= at {
					tgt[i][k] += len(ni)
				}
			}
		}
		for i := range nt {
			for k := range nt[i] {
				if nt[i][k] >= at {
					nt[i][k] += len(ni)
				}
			}
		}
		ins = append(ins[:at], append(ni, ins[at:]...)...)
		tgt = append(tgt[:at], append(nt, tgt[at:]...)...)
	}
	for i := 0; i < len(ins); i++ {
		if _, ok := ins[i].(bpf.Jump); ok || tgt[i][0] < 0 {
			continue
		}
		t, f := tgt[i][0], tgt[i][1]
		var ni []bpf.Instruction
		var nt [][2]int
		if t-i-1 > 255 {
			ni, nt = append(ni, bpf.Jump{}), append(nt, [2]int{t, -1})
		}
		if f-i-1 > 255 {
			ni, nt = append(ni, bpf.Jump{}), append(nt, [2]int{f, -1})
		}
		if len(ni) == 0 {
			continue
		}
		insert(i+1, ni, nt)
		k := i + 1
		if t-i-1 > 255 {
			tgt[i][0], k = k, k+1
		}
		if f-i-1 > 255 {
			tgt[i][1] = k
		}
		i = -1 // earlier jumps may now be too far: rescan
	}
	for i, in := range ins {
		t, f := uint32(tgt[i][0]-i-1), uint32(tgt[i][1]-i-1)
		switch in := in.(type) {
		case bpf.Jump:
			in.Skip = t
			ins[i] = in
		case bpf.JumpIf:
			in.SkipTrue, in.SkipFalse = uint8(t), uint8(f)
			ins[i] = in
		case bpf.JumpIfX:
			in.SkipTrue, in.SkipFalse = uint8(t), uint8(f)
			ins[i] = in
		}
	}
	return bpf.Assemble(ins)
}
