package capture

import (
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/synscope/synscope/bpf"
)

// ebpfSource is the eBPF tap as a live Source: the kernel passes only the
// packets the tracker needs (handshake, FIN, RST, ICMP errors, the first
// data segment each way), so a busy server costs little.
type ebpfSource struct {
	ctx    context.Context
	tap    *bpf.Tap
	rec    bpf.Record
	info   SourceInfo
	n      atomic.Uint64
	closed atomic.Bool
	// deadline is the read deadline now set on the tap.
	deadline time.Time
	iface    string              // as given, for InterfaceGoneError
	gone     *InterfaceGoneError // the interface went away: returned once the ring is drained
}

// pollSlice bounds how long Next waits before looking at its context, and
// how late a lone event can arrive (the tap wakes the reader only for
// batches).
const pollSlice = 100 * time.Millisecond

// OpenEBPF attaches the eBPF tap to the interface (inside cfg.Netns when set).
func OpenEBPF(ctx context.Context, cfg LiveConfig) (LiveSource, error) {
	if cfg.Interface == "any" {
		return nil, errors.New("the eBPF engine attaches to one interface, not \"any\"")
	}
	snap := cfg.Snaplen
	if snap <= 0 || snap > 256 {
		snap = 256 // the tap copies at most 256 bytes of each packet
	}
	tap, err := bpf.OpenTap(cfg.Interface, cfg.Netns, bpf.TapConfig{Snaplen: snap, Ports: cfg.Ports, RingBytes: cfg.BufferMB << 20})
	if err != nil {
		return nil, err
	}
	s := &ebpfSource{ctx: ctx, tap: tap, iface: cfg.Interface}
	if cfg.Netns != "" {
		s.iface += "@" + cfg.Netns
	}
	s.info = SourceInfo{Path: cfg.Interface, Format: "ebpf", Nanosecond: true}
	return s, nil
}

func (s *ebpfSource) Next(p *Packet) error {
	if s.closed.Load() {
		return io.EOF
	}
	for {
		if s.gone == nil {
			select {
			case <-s.tap.Gone():
				s.gone = &InterfaceGoneError{Interface: s.iface, At: s.tap.GoneAt()}
			default:
			}
		}
		if s.ctx.Err() != nil || s.gone != nil {
			// The end: hand out what the ring still holds, without waiting.
			s.tap.SetDeadline(time.Now())
			if err := s.tap.Read(&s.rec); err != nil {
				if s.gone != nil {
					s.info.Err = s.gone
					return s.gone
				}
				return io.EOF
			}
			break
		}
		// The ring buffer reader cannot be woken from another goroutine
		// while it waits, so wait in short slices and look at the context
		// in between (a packet is returned as soon as it arrives).
		if now := time.Now(); now.After(s.deadline.Add(-pollSlice / 2)) {
			s.deadline = now.Add(pollSlice) // renewed now and then, not per event
			s.tap.SetDeadline(s.deadline)
		}
		err := s.tap.Read(&s.rec)
		if err == nil {
			break
		}
		if errors.Is(err, os.ErrDeadlineExceeded) && !s.closed.Load() {
			s.deadline = time.Time{}
			continue // and look at the context
		}
		if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, os.ErrClosed) {
			return io.EOF
		}
		s.info.Err = err
		return err
	}
	num := s.n.Add(1)
	*p = Packet{Data: s.rec.Data, Time: s.rec.Time, OrigLen: max(int(s.rec.OrigLen), len(s.rec.Data)), LinkType: s.rec.LinkType, Num: num}
	if !slices.Contains(s.info.LinkTypes, p.LinkType) {
		s.info.LinkTypes = append(s.info.LinkTypes, p.LinkType)
	}
	s.info.book(p.Time, 0) // (the tap's records are not the file's bytes)
	return nil
}

func (s *ebpfSource) Info() *SourceInfo { return &s.info }

// Stats: the tap delivers only what it selected, so Received counts
// events; Lost counts events the ring buffer had no room for.
func (s *ebpfSource) Stats() LiveStats {
	return LiveStats{Received: s.n.Load(), Lost: s.tap.Lost()}
}

func (s *ebpfSource) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return s.tap.Close()
}
