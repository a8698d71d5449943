//go:build pcap && cgo && linux

package capture

// The libpcap engine (build tag pcap, needs cgo and libpcap): gopacket's
// binding to libpcap, behind a filter in tcpdump syntax that keeps what the
// AF_PACKET engine's socket filter keeps. It is the portable fallback and the
// reference the two native engines can be checked against; it is not built
// into the default, cgo-free binary.
//
// libpcap cannot be woken from another goroutine while it waits, so the
// handle is opened non-blocking with a short read timeout and Next looks at
// its context and at Close between waits.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gopcap "github.com/gopacket/gopacket/pcap"
)

// ErrPcapNeedRoot is returned (wrapped) when libpcap may not open the
// interface.
var ErrPcapNeedRoot = errors.New("libpcap capture needs root or CAP_NET_RAW")

// pcapReadTimeout bounds how long Next waits in libpcap before it looks at
// its context (and how long Close waits for a blocked Next).
const pcapReadTimeout = 100 * time.Millisecond

type pcapSource struct {
	ctx context.Context
	h   *gopcap.Handle
	lt  uint16
	cfg LiveConfig // the interface and namespace, to tell a vanished interface

	closed atomic.Bool
	mu     sync.Mutex // held by Next
	info   SourceInfo

	smu   sync.Mutex // Stats against Close: libpcap's stats need an open handle
	stats LiveStats
}

// OpenPcap opens a live capture with libpcap on cfg.Interface ("any" for
// all interfaces) inside the network namespace cfg.Netns, not promiscuous,
// in immediate mode, filtered to what a handshake tracker needs (see
// pcapFilter). Packet.Data is libpcap's buffer, valid until the next Next or
// Close. When ctx is cancelled, Next hands out what libpcap has already
// received and then returns io.EOF.
func OpenPcap(ctx context.Context, cfg LiveConfig) (LiveSource, error) {
	if cfg.Interface == "" {
		return nil, errors.New("pcap: no interface given (use \"any\" for all)")
	}
	if cfg.Snaplen == 0 {
		cfg.Snaplen = DefaultSnaplen
	}
	if cfg.Snaplen < 64 || cfg.Snaplen > MaxRecordLen {
		return nil, fmt.Errorf("pcap: snaplen %d out of range [64, %d]", cfg.Snaplen, MaxRecordLen)
	}
	if cfg.BufferMB == 0 {
		cfg.BufferMB = DefaultBufferMB
	}
	if cfg.BufferMB < 1 || cfg.BufferMB > 2047 {
		return nil, fmt.Errorf("pcap: buffer of %d MiB out of range [1, 2047]", cfg.BufferMB)
	}
	filter, err := pcapFilter(cfg.Ports)
	if err != nil {
		return nil, fmt.Errorf("pcap: %w", err)
	}
	where := ""
	if cfg.Netns != "" {
		where = fmt.Sprintf(" in network namespace %q", cfg.Netns)
	}

	// Everything that creates a socket or looks up the interface runs
	// inside the namespace; the socket stays bound to it afterwards.
	var h *gopcap.Handle
	err = inNetns(cfg.Netns, func() (err error) {
		h, err = pcapOpen(cfg, filter)
		return err
	})
	if err != nil {
		var nd pcapNoDevice
		if errors.As(err, &nd) {
			return nil, fmt.Errorf("pcap: no such interface %q%s", cfg.Interface, where)
		}
		return nil, fmt.Errorf("pcap: %s%s: %w", cfg.Interface, where, err)
	}
	lt := uint16(h.LinkType())
	s := &pcapSource{
		ctx: ctx, h: h, lt: lt, cfg: cfg,
		info: SourceInfo{
			Path: cfg.Interface, Format: "libpcap", LinkTypes: []uint16{lt},
			Snaplen: uint32(h.SnapLen()), Nanosecond: h.Resolution().ToDuration() < time.Microsecond,
		},
	}
	if cfg.Netns != "" {
		s.info.Path += "@" + cfg.Netns
	}
	return s, nil
}

// pcapNoDevice says that libpcap found no interface of that name.
type pcapNoDevice struct{ msg string }

func (e pcapNoDevice) Error() string { return e.msg }

func pcapOpen(cfg LiveConfig, filter string) (*gopcap.Handle, error) {
	in, err := gopcap.NewInactiveHandle(cfg.Interface)
	if err != nil {
		return nil, err
	}
	defer in.CleanUp()
	for _, set := range []struct {
		what string
		err  error
	}{
		{"snaplen", in.SetSnapLen(cfg.Snaplen)},
		{"promiscuous mode", in.SetPromisc(false)},
		{"immediate mode", in.SetImmediateMode(true)},
		{"read timeout", in.SetTimeout(pcapReadTimeout)},
		{"buffer size", in.SetBufferSize(cfg.BufferMB << 20)},
	} {
		if set.err != nil {
			return nil, fmt.Errorf("setting the %s: %w", set.what, set.err)
		}
	}
	h, err := in.Activate()
	if err != nil {
		// gopacket names the libpcap status; pcap_geterr says why.
		detail := err.Error()
		if msg := in.Error().Error(); msg != "" {
			detail = msg
		}
		switch {
		case err.Error() == "Permission Denied" || pcapIsPermission(detail):
			return nil, fmt.Errorf("%w (%s)", ErrPcapNeedRoot, detail)
		case err.Error() == "No Such Device":
			return nil, pcapNoDevice{detail}
		case err.Error() == "Interface Not Up":
			return nil, fmt.Errorf("interface is down (%s)", detail)
		}
		return nil, fmt.Errorf("activating: %s", detail)
	}
	if err := h.SetBPFFilter(filter); err != nil {
		h.Close()
		return nil, fmt.Errorf("setting the filter: %w", err)
	}
	return h, nil
}

func pcapIsPermission(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "operation not permitted") || strings.Contains(m, "permission denied")
}

// pcapFilter is the handshake filter in tcpdump syntax, the counterpart of
// the AF_PACKET engine's handshakeFilter. It keeps, for IPv4 and for IPv6
// without extension headers:
//   - TCP segments with SYN, FIN or RST set;
//   - TCP segments carrying payload (and those whose IP length is 0: TSO /
//     BIG TCP, length unknown);
//   - ICMP destination unreachable and ICMPv6 type 1 quoting a TCP segment;
//
// and, with ports, only those whose (quoted) TCP source or destination port
// is one of them. IPv4 fragments after the first have no TCP header and are
// dropped. Offsets are written out (ip6[6], ip6[40+13], ...) rather than
// with the tcp/icmp6 keywords, which in libpcap either load with the IPv4
// header length or follow IPv6 fragment headers, so that each branch reads
// exactly the header it checks the protocol of; libpcap adds the link-layer
// offset for Ethernet, Linux cooked ("any") and the rest.
func pcapFilter(ports []uint16) (string, error) {
	ps := make([]uint16, 0, len(ports))
	for _, p := range ports {
		if !slices.Contains(ps, p) {
			ps = append(ps, p)
		}
	}
	if len(ps) > maxFilterPorts {
		return "", fmt.Errorf("at most %d ports can be filtered, not %d", maxFilterPorts, len(ps))
	}
	// anyPort is "" with no ports, else " and (A = p1 or B = p1 or ...)"
	// for the two port fields at a and a+2.
	anyPort := func(field func(plus2 bool) string) string {
		if len(ps) == 0 {
			return ""
		}
		var b strings.Builder
		b.WriteString(" and (")
		for i, p := range ps {
			if i > 0 {
				b.WriteString(" or ")
			}
			n := strconv.Itoa(int(p))
			b.WriteString(field(false) + " = " + n + " or " + field(true) + " = " + n)
		}
		b.WriteString(")")
		return b.String()
	}
	pick := func(a, b string) func(bool) string {
		return func(plus2 bool) string {
			if plus2 {
				return b
			}
			return a
		}
	}
	v4tcp := "(ip and ip[9] = 6 and ip[6:2] & 0x1fff = 0" +
		anyPort(pick("tcp[0:2]", "tcp[2:2]")) +
		" and (tcp[tcpflags] & (tcp-syn|tcp-fin|tcp-rst) != 0" +
		" or ip[2:2] = 0" +
		" or ip[2:2] - ((ip[0] & 0xf) << 2) - ((tcp[12] & 0xf0) >> 2) > 0))"
	v6tcp := "(ip6 and ip6[6] = 6" +
		anyPort(pick("ip6[40:2]", "ip6[42:2]")) +
		" and (ip6[40+13] & 0x07 != 0" + // FIN|SYN|RST
		" or ip6[4:2] = 0" +
		" or ip6[4:2] - ((ip6[40+12] & 0xf0) >> 2) > 0))"
	// The quoted IPv4 header starts at icmp[8], its TCP header after its
	// own header length.
	v4icmp := "(icmp[icmptype] = icmp-unreach and icmp[8+9] = 6" +
		anyPort(pick("icmp[8 + ((icmp[8] & 0xf) << 2):2]", "icmp[10 + ((icmp[8] & 0xf) << 2):2]")) + ")"
	v6icmp := "(ip6 and ip6[6] = 58 and ip6[40] = 1 and ip6[48+6] = 6" +
		anyPort(pick("ip6[48+40:2]", "ip6[48+42:2]")) + ")"
	return v4tcp + " or " + v6tcp + " or " + v4icmp + " or " + v6icmp, nil
}

func (s *pcapSource) Info() *SourceInfo { return &s.info }

// Next returns the next packet. Once the context ends it hands out what
// libpcap already holds, then io.EOF; after Close, io.EOF.
func (s *pcapSource) Next(p *Packet) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.closed.Load() {
			return io.EOF
		}
		ending := s.ctx.Err() != nil
		data, ci, err := s.h.ZeroCopyReadPacketData()
		switch {
		case err == nil:
		case errors.Is(err, gopcap.NextErrorTimeoutExpired):
			if ending {
				return io.EOF // drained
			}
			continue
		case errors.Is(err, io.EOF) || s.closed.Load():
			return io.EOF
		default:
			if ending {
				return io.EOF
			}
			if s.interfaceGone() {
				// libpcap says "The interface went down" (ENETDOWN) both
				// when it is down and when it is gone: look it up.
				s.info.Err = &InterfaceGoneError{Interface: s.info.Path, At: time.Now()}
			} else {
				s.info.Err = fmt.Errorf("pcap: reading %s: %w", s.info.Path, err)
			}
			return s.info.Err
		}
		t := ci.Timestamp.UnixNano()
		s.info.book(t, len(data))
		*p = Packet{Data: data, Time: t, OrigLen: max(ci.Length, len(data)), LinkType: s.lt, Num: s.info.Packets}
		return nil
	}
}

// interfaceGone says whether the interface no longer exists in its
// namespace.
func (s *pcapSource) interfaceGone() bool {
	if s.cfg.Interface == "any" {
		return false
	}
	err := inNetns(s.cfg.Netns, func() error {
		_, err := net.InterfaceByName(s.cfg.Interface)
		return err
	})
	return err != nil && strings.Contains(err.Error(), "no such network interface")
}

// Stats reads libpcap's counters (totals since open). Received is what
// passed the filter, the drops included; Dropped is what found the buffer
// full; Lost is libpcap's interface drop count (0 unless promiscuous). After
// Close it reports the totals read at Close.
func (s *pcapSource) Stats() LiveStats {
	s.smu.Lock()
	defer s.smu.Unlock()
	if !s.closed.Load() {
		s.readStats()
	}
	return s.stats
}

func (s *pcapSource) readStats() {
	st, err := s.h.Stats()
	if err != nil {
		return
	}
	s.stats = LiveStats{
		Received: uint64(uint32(st.PacketsReceived)),
		Dropped:  uint64(uint32(st.PacketsDropped)),
		Lost:     uint64(uint32(st.PacketsIfDropped)),
	}
}

// Close stops the capture: a blocked Next returns io.EOF within the read
// timeout. Stats still reports the totals afterwards.
func (s *pcapSource) Close() error {
	s.smu.Lock()
	if s.closed.Load() {
		s.smu.Unlock()
		return nil
	}
	s.readStats()
	s.closed.Store(true)
	s.smu.Unlock()
	s.h.Close() // waits for a Next inside libpcap to come out
	return nil
}
