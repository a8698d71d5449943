package capture

import (
	"context"
	"errors"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/synscope/synscope/bpf"
	"github.com/synscope/synscope/internal/kevent"
)

// KernelConfig says whose kernel events OpenKernel reports.
type KernelConfig struct {
	// Netns is the network namespace watched: a name under /var/run/netns,
	// or a path to a namespace file (/proc/PID/ns/net); "" is the calling
	// process's.
	Netns string
	// Ports keeps only the events with one of these TCP ports at either
	// end (at most 8); empty keeps all.
	Ports []uint16
}

// KernelSource is the kernel's own account of a namespace's TCP traffic as
// a packet source: each drop (with its reason and location), SYN-ACK
// retransmit, reset sent and reset received is a record of link type
// kevent.LinkType holding kevent.AppendEvent, timed like the packets.
type KernelSource struct {
	ctx      context.Context
	k        *bpf.KernelEvents
	ev       kevent.Event
	buf      []byte
	info     SourceInfo
	n        atomic.Uint64
	closed   atomic.Bool
	lost     atomic.Uint64 // Lost at Close (the counter goes with the program)
	deadline time.Time     // the read deadline now set on the events
}

// kernelPollSlice bounds how long Next waits before looking at its context
// (the program wakes the reader only for batches; a lone event arrives
// within its own, shorter, poll).
const kernelPollSlice = 100 * time.Millisecond

// OpenKernel loads and attaches the kernel events program (bpf.KernelEvents:
// raw tracepoints skb:kfree_skb, tcp:tcp_retransmit_synack,
// tcp:tcp_send_reset, tcp:tcp_receive_reset) for cfg.Netns. The Source is a
// *KernelSource; its Next returns io.EOF once ctx is cancelled (after what
// the ring still holds) or Close is called.
func OpenKernel(ctx context.Context, cfg KernelConfig) (Source, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	k, err := bpf.OpenKernelEvents(bpf.KernelEventsConfig{Netns: cfg.Netns, Ports: cfg.Ports})
	if err != nil {
		return nil, err
	}
	s := &KernelSource{ctx: ctx, k: k}
	s.info = SourceInfo{Path: "kernel", Format: "kernel-events", Nanosecond: true}
	if cfg.Netns != "" {
		s.info.Path += "@" + cfg.Netns
	}
	return s, nil
}

// Next blocks for the next kernel event. p.Data is valid until the next call.
func (s *KernelSource) Next(p *Packet) error {
	if s.closed.Load() {
		return io.EOF
	}
	for {
		if s.ctx.Err() != nil {
			// The end: hand out what the ring still holds, without waiting.
			s.k.SetDeadline(time.Now())
			if err := s.k.Read(&s.ev); err != nil {
				return io.EOF
			}
			break
		}
		// The ring buffer reader cannot be woken from another goroutine
		// while it waits, so wait in slices and look at the context in
		// between (an event is returned as soon as it is read).
		if now := time.Now(); now.After(s.deadline.Add(-kernelPollSlice / 2)) {
			s.deadline = now.Add(kernelPollSlice)
			s.k.SetDeadline(s.deadline)
		}
		err := s.k.Read(&s.ev)
		if err == nil {
			break
		}
		if errors.Is(err, os.ErrDeadlineExceeded) && !s.closed.Load() {
			s.deadline = time.Time{}
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, os.ErrClosed) {
			return io.EOF
		}
		s.info.Err = err
		return err
	}
	s.buf = kevent.AppendEvent(s.buf[:0], &s.ev)
	num := s.n.Add(1)
	*p = Packet{Data: s.buf, Time: s.ev.Time, OrigLen: len(s.buf), LinkType: kevent.LinkType, Num: num}
	if s.info.Packets == 0 {
		s.info.LinkTypes = []uint16{kevent.LinkType}
	}
	s.info.book(p.Time, len(s.buf))
	return nil
}

// Info describes the source: Format "kernel-events", Path "kernel" or
// "kernel@<netns>".
func (s *KernelSource) Info() *SourceInfo { return &s.info }

// Stats: Received counts the events handed out, Lost those the ring buffer
// had no room for.
func (s *KernelSource) Stats() LiveStats {
	lost := s.lost.Load()
	if !s.closed.Load() {
		lost = s.k.Lost()
	}
	return LiveStats{Received: s.n.Load(), Lost: lost}
}

// Notes says what kernel evidence is missing and why (a tracepoint or a
// tracepoint argument the running kernel lacks, hidden kallsyms addresses).
func (s *KernelSource) Notes() []string { return s.k.Notes() }

// NetnsInode is the inode of the network namespace watched.
func (s *KernelSource) NetnsInode() uint32 { return s.k.Netns() }

// Close detaches the program; a Next blocked in another goroutine returns
// io.EOF.
func (s *KernelSource) Close() error {
	if s.closed.Load() {
		return nil
	}
	s.lost.Store(s.k.Lost())
	if s.closed.Swap(true) {
		return nil
	}
	return s.k.Close()
}

var _ LiveSource = (*KernelSource)(nil)
