package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/synscope/synscope/capture"
	"github.com/synscope/synscope/internal/kevent"
)

// kernelFeed is a live run's kernel evidence: the tracepoint events (drops
// with their reasons, SYN-ACK retransmits, resets) and the counter sampler
// of the watched namespace. Both are packet sources of link type
// kevent.LinkType that run beside the capture engine, so their records
// reach the analysis, and the --write file, the way packets do.
type kernelFeed struct {
	events  *capture.KernelSource
	sampler *capture.Sampler
	// cancel ends the events source once it has handed out what its ring
	// still holds (Close would drop that).
	cancel context.CancelFunc
	// missing says what evidence could not be collected, and why: the
	// report shows it.
	missing []string
}

// openKernelFeed starts what it can; what fails goes to missing (the
// capture goes on without it).
func openKernelFeed(ctx context.Context, cfg *liveConfig) *kernelFeed {
	kf := &kernelFeed{cancel: func() {}}
	if !cfg.kernel {
		kf.missing = append(kf.missing, "kernel evidence: not collected (--kernel=false)")
		return kf
	}
	if os.Geteuid() != 0 {
		kf.missing = append(kf.missing, "kernel evidence: not running as root; tracepoints and the namespace's counters may be refused")
	}
	kctx, cancel := context.WithCancel(ctx)
	src, err := capture.OpenKernel(kctx, capture.KernelConfig{Netns: cfg.live.Netns, Ports: cfg.live.Ports})
	if err != nil {
		cancel()
		kf.missing = append(kf.missing, "tracepoints (drops and their reasons, SYN-ACK retransmits, resets): "+err.Error())
	} else {
		kf.events, kf.cancel = src.(*capture.KernelSource), cancel
		for _, n := range kf.events.Notes() {
			kf.missing = append(kf.missing, "tracepoints: "+n)
		}
	}
	s, err := capture.OpenSampler(ctx, cfg.live.Netns, cfg.sampleEvery)
	if err != nil {
		kf.missing = append(kf.missing, "counters, settings and listeners: "+err.Error())
	} else {
		kf.sampler = s
	}
	return kf
}

// sources lists what runs.
func (kf *kernelFeed) sources() []capture.Source {
	var out []capture.Source
	if kf.events != nil {
		out = append(out, kf.events)
	}
	if kf.sampler != nil {
		out = append(out, kf.sampler)
	}
	return out
}

// sampleNow asks for a counter sample now (an incident opened).
func (kf *kernelFeed) sampleNow() {
	if kf.sampler != nil {
		kf.sampler.SampleNow()
	}
}

// lost counts kernel events the tracepoints' ring had no room for.
func (kf *kernelFeed) lost() uint64 {
	if kf.events == nil {
		return 0
	}
	return kf.events.Stats().Lost
}

// stop ends the sources: each hands out what it still holds (the events
// what their ring buffer has, the sampler a last sample), then io.EOF. An
// event that happened just before the end (the drop of the last SYN) is
// still reported.
func (kf *kernelFeed) stop() {
	kf.cancel()
	if kf.sampler != nil {
		kf.sampler.Close()
	}
}

// close releases the sources (after their records were read: see stop),
// the sampler among them.
func (kf *kernelFeed) close() {
	kf.cancel()
	for _, s := range kf.sources() {
		s.Close()
	}
}

// describe says on stderr what kernel evidence the run collects.
func (kf *kernelFeed) describe(w io.Writer, netns string) {
	var on []string
	if kf.events != nil {
		on = append(on, "tracepoints")
	}
	if kf.sampler != nil {
		on = append(on, "counters")
	}
	where := "this namespace"
	if netns != "" {
		where = "namespace " + netns
	}
	if len(on) > 0 {
		fmt.Fprintf(w, "synscope: kernel evidence from %s: %v\n", where, on)
	}
	for _, m := range kf.missing {
		fmt.Fprintf(w, "synscope: %s\n", m)
	}
}

// pumpSource copies a source's records into the queue until it ends (nil
// at io.EOF), counting what found the queue full; the engine and the
// kernel evidence sources share the queue. While the file hold names exists
// (test only: --test-hold-capture) the source is not read.
func pumpSource(src capture.Source, hold string, queue chan<- livePacket, lost func()) error {
	var p capture.Packet
	var slab []byte // the records' copies, carved from 1 MiB slabs: no allocation per packet
	for {
		holdWhile(hold)
		if err := src.Next(&p); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if cap(slab)-len(slab) < len(p.Data) {
			slab = make([]byte, 0, max(1<<20, len(p.Data)))
		}
		slab = append(slab, p.Data...)
		data := slab[len(slab)-len(p.Data) : len(slab) : len(slab)]
		lp := livePacket{data: data, time: p.Time, origLen: p.OrigLen, link: p.LinkType}
		select {
		case queue <- lp:
		default:
			slab = slab[:len(slab)-len(p.Data)] // not kept: its room is free again
			lost()
		}
	}
}

// defaultSampleEvery is how often the counters are sampled beside the
// samples taken when an incident opens and at the start and end.
const defaultSampleEvery = 5 * time.Second

// reorderWindow is how long a live run holds records back to hand them to
// the analysis (and the --write file) in time order. The engine's packets
// and the kernel's events come through separate rings, each read in
// batches (a lone record within about 50 ms), so an event can reach the
// queue after packets that came later: the drop of a SYN after the SYN
// retransmit that ends its attempt, whose join with the event then comes
// too late. Held back this long, the event goes first, as it happened.
const reorderWindow = 250 * time.Millisecond

// reorder merges two lanes by time: the engine's packets and the kernel's
// records, each already in its own arrival order (each comes from one
// ring). A record is handed on once it is reorderWindow older than the
// latest seen, the earlier lane head first: O(1) per record, where a heap
// over everything cost as much as the analysis. At most maxHeld records
// wait; beyond that the oldest go on at once (a burst is then merged less
// exactly, nothing is lost).
type reorder struct {
	lanes [2]fifo
	last  int64 // the latest record time seen
}

const maxHeld = 1 << 16

type fifo struct {
	q    []livePacket
	head int
}

func (f *fifo) len() int { return len(f.q) - f.head }

func (f *fifo) pop() livePacket {
	lp := f.q[f.head]
	f.q[f.head] = livePacket{}
	f.head++
	if f.head == len(f.q) {
		f.q, f.head = f.q[:0], 0
	} else if f.head >= 4096 && f.head*2 >= len(f.q) {
		n := copy(f.q, f.q[f.head:])
		clear(f.q[n:])
		f.q, f.head = f.q[:n], 0
	}
	return lp
}

func (r *reorder) push(lp livePacket) {
	r.last = max(r.last, lp.time)
	lane := 0
	if lp.link == kevent.LinkType {
		lane = 1
	}
	r.lanes[lane].q = append(r.lanes[lane].q, lp)
}

// release hands fn, earlier lane head first, the records at or before upTo
// (and the oldest beyond maxHeld).
func (r *reorder) release(upTo int64, fn func(livePacket)) {
	for {
		a, b := &r.lanes[0], &r.lanes[1]
		var next *fifo
		switch {
		case a.len() == 0 && b.len() == 0:
			return
		case b.len() == 0:
			next = a
		case a.len() == 0:
			next = b
		case b.q[b.head].time < a.q[a.head].time:
			next = b
		default:
			next = a
		}
		if next.q[next.head].time > upTo && a.len()+b.len() <= maxHeld {
			return
		}
		fn(next.pop())
	}
}
