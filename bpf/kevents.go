//go:build linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package bpf

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"github.com/synscope/synscope/internal/kevent"
	"golang.org/x/sys/unix"
)

// DefaultKernelRingBytes is the default size of the kernel events' ring
// buffer (a bit over 14,000 events).
const DefaultKernelRingBytes = 1 << 20

// keventLen is sizeof(struct kevent) in kevents.c.
const keventLen = 72

// KernelEventsConfig says whose kernel events to report.
type KernelEventsConfig struct {
	// Netns is the network namespace watched: a name under /var/run/netns,
	// or a path such as /proc/PID/ns/net; "" is the process's own.
	Netns string
	// Ports keeps only the events of TCP segments and sockets with one of
	// these ports at either end, at most 8 (none, or only 0s = all).
	Ports []uint16
	// RingBytes is the ring buffer's size, rounded up to a power of two
	// (default DefaultKernelRingBytes).
	RingBytes int
}

// KernelEvents reports, through raw tracepoints, what the kernel did with
// the TCP traffic of one network namespace: drops (skb:kfree_skb, with the
// drop reason and where), SYN-ACK retransmits, resets sent and received.
type KernelEvents struct {
	objs     keventsObjects
	links    []link.Link
	reader   *ringbuf.Reader
	raw      ringbuf.Record
	deadline time.Time // the caller's read deadline (SetDeadline)
	bootToRT int64     // add to a CLOCK_BOOTTIME ns value to get Unix ns
	netns    uint32

	dropNames  map[uint32]string // skb_drop_reason values, without SKB_DROP_REASON_
	rstNames   map[uint32]string // sk_rst_reason values, without SK_RST_REASON_
	dropReason bool              // kfree_skb passes a reason
	rstReason  bool              // tcp_send_reset passes a reason

	nmu   sync.Mutex
	notes []string

	// Locations: /proc/kallsyms, loaded on the first drop and again when
	// /proc/modules changed (a module loaded since, nf_tables say).
	syms    *ksyms
	symsErr error
	modules []byte
	locs    map[uint64]string
}

// errKernelPrivileges is ErrNeedPrivileges (errors.Is), worded for the
// kernel events.
var errKernelPrivileges error = privilegeError("kernel events need root or CAP_BPF+CAP_PERFMON")

type privilegeError string

func (e privilegeError) Error() string        { return string(e) }
func (e privilegeError) Is(target error) bool { return target == ErrNeedPrivileges }

// tracepoints attached, with the group they are known by.
var kernelTracepoints = []struct{ group, name string }{
	{"skb", "kfree_skb"},
	{"tcp", "tcp_retransmit_synack"},
	{"tcp", "tcp_send_reset"},
	{"tcp", "tcp_receive_reset"},
}

// OpenKernelEvents loads the kernel events program and attaches it. It needs
// the kernel's BTF (/sys/kernel/btf/vmlinux) and root (CAP_BPF and
// CAP_PERFMON). Evidence the running kernel cannot give (a tracepoint or
// argument it lacks) is not an error: Notes says what is missing.
func OpenKernelEvents(cfg KernelEventsConfig) (*KernelEvents, error) {
	ports := nonZero(cfg.Ports)
	if len(ports) > MaxPorts {
		return nil, fmt.Errorf("kernel events: at most %d ports, got %d", MaxPorts, len(ports))
	}
	ring := ringSize(cfg.RingBytes, DefaultKernelRingBytes)
	ino, err := netnsInode(cfg.Netns)
	if err != nil {
		return nil, err
	}
	kspec, err := btf.LoadKernelSpec()
	if err != nil {
		return nil, fmt.Errorf("kernel events: the kernel has no BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF), which reading its structures needs: %w", err)
	}

	k := &KernelEvents{netns: ino, locs: make(map[uint64]string)}
	var consumed uint32
	var hasConsumed bool
	k.dropNames, consumed, hasConsumed = enumNames(kspec, "skb_drop_reason", "SKB_DROP_REASON_", "SKB_CONSUMED")
	if k.dropNames == nil {
		k.note("the kernel's BTF has no enum skb_drop_reason: drop reasons are numbers without names")
	}
	k.rstNames, _, _ = enumNames(kspec, "sk_rst_reason", "SK_RST_REASON_", "")

	kfree := tracepointParams(kspec, "kfree_skb")
	k.dropReason = len(kfree) >= 3 && isEnum(kfree[2], "skb_drop_reason")
	hasRxSk := len(kfree) >= 4 && isPointerTo(kfree[3], "sock")
	if kfree != nil && !k.dropReason {
		k.note("skb:kfree_skb has no reason field on this kernel (before 5.17): drops come without a reason")
	}
	rst := tracepointParams(kspec, "tcp_send_reset")
	k.rstReason = len(rst) >= 3 && isEnum(rst[2], "sk_rst_reason")
	if rst != nil && !k.rstReason {
		k.note("tcp:tcp_send_reset has no reason field on this kernel (before 6.10): resets sent come without a reason")
	}
	if k.rstReason && k.rstNames == nil {
		k.note("the kernel's BTF has no enum sk_rst_reason: reset reasons are numbers without names")
	}

	_ = rlimit.RemoveMemlock() // kernels before 5.11 account BPF memory to RLIMIT_MEMLOCK
	spec, err := loadKevents()
	if err != nil {
		return nil, fmt.Errorf("kernel events: load spec: %w", err)
	}
	var pa [MaxPorts]uint16
	copy(pa[:], ports)
	b := func(v bool) uint8 {
		if v {
			return 1
		}
		return 0
	}
	for name, v := range map[string]any{
		"netns_ino": ino, "ports": pa, "nports": uint32(len(ports)),
		"consumed_reason": consumed, "skip_consumed": b(hasConsumed && k.dropReason),
		"kfree_has_reason": b(k.dropReason), "kfree_has_rx_sk": b(hasRxSk),
		"rst_has_reason": b(k.rstReason),
	} {
		if err := spec.Variables[name].Set(v); err != nil {
			return nil, fmt.Errorf("kernel events: set %s: %w", name, err)
		}
	}
	spec.Maps["events"].MaxEntries = uint32(ring)
	if err := spec.LoadAndAssign(&k.objs, &ebpf.CollectionOptions{Programs: ebpf.ProgramOptions{KernelTypes: kspec}}); err != nil {
		var ve *ebpf.VerifierError
		switch {
		case errors.As(err, &ve):
			return nil, fmt.Errorf("kernel events: verifier rejected the program: %+v", ve)
		case errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES):
			return nil, fmt.Errorf("%w: %v", errKernelPrivileges, err)
		}
		return nil, fmt.Errorf("kernel events: load: %w", err)
	}
	progs := []*ebpf.Program{k.objs.KevKfreeSkb, k.objs.KevRetransmitSynack, k.objs.KevSendReset, k.objs.KevReceiveReset}
	for i, tp := range kernelTracepoints {
		l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: tp.name, Program: progs[i]})
		switch {
		case err == nil:
			k.links = append(k.links, l)
			continue
		case errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES):
			k.Close()
			return nil, fmt.Errorf("%w: attach %s:%s: %v", errKernelPrivileges, tp.group, tp.name, err)
		case errors.Is(err, unix.ENOENT) || errors.Is(err, os.ErrNotExist):
			k.note(fmt.Sprintf("the kernel has no tracepoint %s:%s: %s", tp.group, tp.name, missingWhat(tp.name)))
		default:
			k.note(fmt.Sprintf("could not attach to %s:%s (%v): %s", tp.group, tp.name, err, missingWhat(tp.name)))
		}
	}
	if len(k.links) == 0 {
		k.Close()
		return nil, fmt.Errorf("kernel events: no tracepoint could be attached: %s", strings.Join(k.Notes(), "; "))
	}
	if k.reader, err = ringbuf.NewReader(k.objs.Events); err != nil {
		k.Close()
		return nil, fmt.Errorf("kernel events: ring buffer: %w", err)
	}
	k.bootToRT = clockOffset()
	return k, nil
}

func missingWhat(tp string) string {
	switch tp {
	case "kfree_skb":
		return "no drop events"
	case "tcp_retransmit_synack":
		return "no SYN-ACK retransmit events"
	case "tcp_send_reset":
		return "no events for resets sent"
	}
	return "no events for resets received"
}

// netnsInode returns the inode of a network namespace given as in
// KernelEventsConfig.Netns.
func netnsInode(netns string) (uint32, error) {
	p := netns
	switch {
	case p == "":
		p = "/proc/self/ns/net"
	case !strings.ContainsRune(p, '/'):
		p = filepath.Join("/var/run/netns", p)
	}
	fi, err := os.Stat(p)
	if err != nil {
		if netns == "" {
			return 0, fmt.Errorf("kernel events: own network namespace: %w", err)
		}
		return 0, fmt.Errorf("kernel events: network namespace %q not found: %w", netns, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Ino == 0 || st.Ino > 0xffffffff {
		return 0, fmt.Errorf("kernel events: %s is not a network namespace", p)
	}
	return uint32(st.Ino), nil
}

// enumNames reads an enum of the kernel's BTF: value to name, prefix
// stripped (names without it are kept whole). It also returns the value of
// the constant named special, and whether it exists.
func enumNames(spec *btf.Spec, enum, prefix, special string) (map[uint32]string, uint32, bool) {
	var e *btf.Enum
	if err := spec.TypeByName(enum, &e); err != nil {
		return nil, 0, false
	}
	names := make(map[uint32]string, len(e.Values))
	var sv uint32
	var found bool
	for _, v := range e.Values {
		if v.Name == special && special != "" {
			sv, found = uint32(v.Value), true
		}
		if _, dup := names[uint32(v.Value)]; !dup {
			names[uint32(v.Value)] = strings.TrimPrefix(v.Name, prefix)
		}
	}
	return names, sv, found
}

// tracepointParams returns the arguments a raw tracepoint passes (its
// TP_PROTO, from the btf_trace_<name> typedef); nil when unknown.
func tracepointParams(spec *btf.Spec, name string) []btf.FuncParam {
	var td *btf.Typedef
	if err := spec.TypeByName("btf_trace_"+name, &td); err != nil {
		return nil
	}
	ptr, ok := td.Type.(*btf.Pointer)
	if !ok {
		return nil
	}
	fp, ok := ptr.Target.(*btf.FuncProto)
	if !ok || len(fp.Params) < 1 {
		return nil
	}
	return fp.Params[1:] // the first is the tracepoint's private data
}

func isEnum(p btf.FuncParam, name string) bool {
	e, ok := btf.UnderlyingType(p.Type).(*btf.Enum)
	return ok && e.Name == name
}

func isPointerTo(p btf.FuncParam, name string) bool {
	ptr, ok := btf.UnderlyingType(p.Type).(*btf.Pointer)
	if !ok {
		return false
	}
	s, ok := btf.UnderlyingType(ptr.Target).(*btf.Struct)
	return ok && s.Name == name
}

func (k *KernelEvents) note(s string) {
	k.nmu.Lock()
	k.notes = append(k.notes, s)
	k.nmu.Unlock()
}

// Notes says what evidence is missing and why (a tracepoint or tracepoint
// argument this kernel lacks, kallsyms hiding addresses).
func (k *KernelEvents) Notes() []string {
	k.nmu.Lock()
	defer k.nmu.Unlock()
	return slices.Clone(k.notes)
}

// Netns is the inode of the network namespace watched.
func (k *KernelEvents) Netns() uint32 { return k.netns }

// Read blocks for the next event and fills e. After Close it returns an
// error wrapping os.ErrClosed; after a SetDeadline expiry one wrapping
// os.ErrDeadlineExceeded.
func (k *KernelEvents) Read(e *kevent.Event) error {
	for {
		if err := readBatched(k.reader, &k.raw, k.deadline); err != nil {
			return err
		}
		if len(k.raw.RawSample) < keventLen {
			continue
		}
		k.decode(k.raw.RawSample, e)
		return nil
	}
}

func (k *KernelEvents) decode(s []byte, e *kevent.Event) {
	le := binary.LittleEndian
	kind := kevent.Kind(s[68])
	reason := le.Uint32(s[20:])
	var src, dst netip.Addr
	if s[69] == 6 {
		src = netip.AddrFrom16([16]byte(s[32:48])).Unmap()
		dst = netip.AddrFrom16([16]byte(s[48:64])).Unmap()
	} else {
		src = netip.AddrFrom4([4]byte(s[32:36]))
		dst = netip.AddrFrom4([4]byte(s[48:52]))
	}
	*e = kevent.Event{
		Kind:   kind,
		Time:   int64(le.Uint64(s[0:])) + k.bootToRT,
		Netns:  le.Uint32(s[16:]),
		Src:    netip.AddrPortFrom(src, le.Uint16(s[64:])),
		Dst:    netip.AddrPortFrom(dst, le.Uint16(s[66:])),
		Flags:  s[70],
		State:  s[71],
		Seq:    le.Uint32(s[24:]),
		Ack:    le.Uint32(s[28:]),
		Reason: reason,
	}
	switch {
	case kind == kevent.KindDrop && k.dropReason:
		e.ReasonName = k.dropNames[reason]
	case kind == kevent.KindSendReset && k.rstReason:
		e.ReasonName = k.rstNames[reason]
	}
	if kind == kevent.KindDrop {
		e.Location = k.location(le.Uint64(s[8:]))
	}
}

// SetDeadline bounds the wait of Read (zero: none). Call it from the
// goroutine that reads.
func (k *KernelEvents) SetDeadline(d time.Time) { k.deadline = d }

// Lost returns how many events were dropped because the ring buffer was full.
func (k *KernelEvents) Lost() uint64 { return perCPUSum(k.objs.Lost) }

// Close detaches the programs and frees the maps and the ring buffer. A Read
// blocked in another goroutine returns os.ErrClosed.
func (k *KernelEvents) Close() error {
	var errs []error
	for _, l := range k.links {
		errs = append(errs, l.Close())
	}
	k.links = nil
	if k.reader != nil {
		errs = append(errs, k.reader.Close())
	}
	errs = append(errs, k.objs.Close())
	return errors.Join(errs...)
}

// maxLocations bounds the cache of resolved locations.
const maxLocations = 4096

// location returns addr as "symbol+0xoff", or in hex when it cannot be
// resolved. Called by Read only.
func (k *KernelEvents) location(addr uint64) string {
	if addr == 0 {
		return ""
	}
	if s, ok := k.locs[addr]; ok {
		return s
	}
	if k.symsErr == nil {
		// A miss: (re)load kallsyms the first time, and when a module
		// came or went since (its symbols would be missing or stale).
		mods, _ := os.ReadFile("/proc/modules")
		if k.syms == nil || !bytes.Equal(mods, k.modules) {
			k.syms, k.symsErr = loadKallsyms()
			k.modules = mods
			clear(k.locs)
			if k.symsErr != nil {
				k.note(fmt.Sprintf("drop locations are addresses: %v", k.symsErr))
			}
		}
	}
	s := "0x" + strconv.FormatUint(addr, 16)
	if k.syms != nil {
		if name, off, ok := k.syms.lookup(addr); ok {
			s = name + "+0x" + strconv.FormatUint(off, 16)
		}
	}
	if len(k.locs) >= maxLocations {
		clear(k.locs)
	}
	k.locs[addr] = s
	return s
}

// ksyms is the kernel's text symbols, sorted by address.
type ksyms struct {
	addrs []uint64
	ends  []uint32 // names[ends[i-1]:ends[i]] is the name of addrs[i]
	names []byte
}

var errKallsymsHidden = errors.New("/proc/kallsyms shows no addresses (kernel.kptr_restrict, or not root)")

func loadKallsyms() (*ksyms, error) {
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	type sym struct {
		addr       uint64
		start, end uint32
	}
	var syms []sym
	var names []byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		// "ffffffff81000000 T _text" or "... t nft_do_chain\t[nf_tables]"
		line := sc.Bytes()
		a, rest, ok := bytes.Cut(line, []byte{' '})
		if !ok || len(rest) < 3 || rest[1] != ' ' {
			continue
		}
		switch rest[0] {
		case 't', 'T', 'w', 'W':
		default:
			continue
		}
		name := rest[2:]
		if i := bytes.IndexAny(name, " \t"); i >= 0 {
			name = name[:i]
		}
		addr, err := strconv.ParseUint(string(a), 16, 64)
		if err != nil || addr == 0 {
			continue
		}
		start := uint32(len(names))
		names = append(names, name...)
		syms = append(syms, sym{addr, start, uint32(len(names))})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading /proc/kallsyms: %w", err)
	}
	if len(syms) == 0 {
		return nil, errKallsymsHidden
	}
	slices.SortStableFunc(syms, func(x, y sym) int {
		switch {
		case x.addr < y.addr:
			return -1
		case x.addr > y.addr:
			return 1
		}
		return 0
	})
	s := &ksyms{addrs: make([]uint64, len(syms)), ends: make([]uint32, 0, len(syms)), names: make([]byte, 0, len(names))}
	for i, x := range syms {
		s.addrs[i] = x.addr
		s.names = append(s.names, names[x.start:x.end]...)
		s.ends = append(s.ends, uint32(len(s.names)))
	}
	return s, nil
}

// maxSymbolSize bounds a function's size: an address further than this past
// the symbol below it is in none that kallsyms lists.
const maxSymbolSize = 1 << 20

// lookup returns the symbol at or below addr and addr's offset from it.
func (s *ksyms) lookup(addr uint64) (string, uint64, bool) {
	i, found := slices.BinarySearch(s.addrs, addr)
	if !found {
		i--
	}
	if i < 0 || addr-s.addrs[i] > maxSymbolSize {
		return "", 0, false
	}
	start := uint32(0)
	if i > 0 {
		start = s.ends[i-1]
	}
	name := string(s.names[start:s.ends[i]])
	return name, addr - s.addrs[i], true
}
