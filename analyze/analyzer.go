// Package analyze decodes packets, follows every TCP connection attempt
// through its handshake, and decides what became of it. It does no I/O and
// imports neither capture nor report: packets in, verdicts out, and the same
// verdicts for the same packets on every run (time comes from the packets,
// never from the clock).
package analyze

import (
	"sort"

	"github.com/synscope/synscope/internal/kevent"
)

// Summary counts what the analyzer saw. Packet counts exclude capture
// duplicates (see Duplicates).
type Summary struct {
	Packets           uint64
	TCPPackets        uint64
	Filtered          uint64 // not matching the filter expression
	Fragments         uint64
	ICMPUnreach       uint64
	Malformed         uint64
	Unsupported       uint64 // frames of link types we do not decode
	NonTCP            uint64
	Duplicates        uint64
	OutOfOrder        uint64 // packets whose timestamp is earlier than one before them
	Attempts          uint64
	SynPackets        uint64
	SynRetransmits    uint64
	SynAckPackets     uint64
	SynAckRetransmits uint64
	SynWithTS         uint64
	SynAckWithTS      uint64
	Evicted           uint64
	Outcomes          [NumOutcomes]uint64
	ResetsByClient    uint64
	ResetsByServer    uint64
	UnsupportedLinks  map[uint16]uint64
	First, Last       int64 // capture time span (ns)
}

// Analyzer decodes frames, applies the filter and feeds the tracker.
type Analyzer struct {
	sum     Summary
	tracker *Tracker
	filter  *Filter
	dec     Decoded
	last    int64
	kernel  *Kernel
}

// NewAnalyzer returns an analyzer; emit receives each finished attempt and
// returns whether it keeps it (one it does not keep is reused, and emit
// must not change it; the analyzer itself sets its Kernel, from the kernel
// evidence, before emit sees it).
func NewAnalyzer(cfg Config, filter *Filter, emit func(*Attempt) bool) *Analyzer {
	an := &Analyzer{filter: filter, kernel: newKernel()}
	an.tracker = NewTracker(cfg, &an.sum, func(a *Attempt) bool {
		if an.kernel.Active() {
			an.kernel.match(a)
		}
		return emit != nil && emit(a)
	})
	return an
}

// Packet analyses one frame. It does not keep p.Data.
func (an *Analyzer) Packet(p *Packet) {
	if an.decode(p, &an.dec) {
		an.tracker.track(&an.dec, p.Time, p.Ref)
	}
}

// decode is the first half of Packet: it counts the frame, decodes it into d
// and applies the filter. It reports whether d is for the tracker. It touches
// only the counters the tracker does not, so the two halves can run in
// different goroutines (see Pipeline). DecodeInto (pipeline.go) does the
// same for the parallel reader, in batches: keep the two in step (the
// tests compare both paths).
func (an *Analyzer) decode(p *Packet, d *Decoded) bool {
	if p.LinkType == kevent.LinkType && kevent.Is(p.Data) {
		an.kernel.record(p.Data, p.Time) // kernel evidence, not a packet
		return false
	}
	s := &an.sum
	s.Packets++
	if s.First == 0 || p.Time < s.First {
		s.First = p.Time
	}
	if p.Time > s.Last {
		s.Last = p.Time
	}
	if p.Time < an.last {
		s.OutOfOrder++
	} else {
		an.last = p.Time
	}
	k := Decode(p.LinkType, p.Data, p.OrigLen, d)
	if an.filter != nil && k != KindUnsupported && !an.filter.MatchLen(d, p.Data, p.OrigLen) {
		s.Filtered++
		return false
	}
	switch k {
	case KindTCP:
		s.TCPPackets++
		return true
	case KindICMPUnreach:
		return true
	case KindFragment:
		s.Fragments++
	case KindMalformed:
		s.Malformed++
	case KindUnsupported:
		s.Unsupported++
		if s.UnsupportedLinks == nil {
			s.UnsupportedLinks = make(map[uint16]uint64)
		}
		s.UnsupportedLinks[p.LinkType]++
	default:
		s.NonTCP++
	}
	return false
}

// Advance moves the tracker's clock to ts when no packet does: a live
// capture calls it with the wall clock, so quiet flows still expire and
// their verdicts come out. Offline analysis never calls it.
func (an *Analyzer) Advance(ts int64) { an.tracker.advance(ts) }

// Finish ends every attempt still open, judging it at the capture's end.
func (an *Analyzer) Finish() {
	an.tracker.Flush(max(an.sum.Last, an.kernel.totals.Last))
	an.tracker.stopEmitter()
	an.kernel.finish()
}

// Kernel returns the kernel evidence read with the packets.
func (an *Analyzer) Kernel() *Kernel { return an.kernel }

// Conclude states what the kernel evidence says about each incident (a
// no-op without kernel evidence).
func (k *Kernel) Conclude(res *Result) {
	if !k.Active() {
		return
	}
	samples := k.Samples()
	for _, inc := range res.Incidents {
		k.conclude(inc, samples)
	}
}

// ConcludeIncident is Conclude for one incident (a live run streams
// incidents as they close; the final report concludes them again).
func (k *Kernel) ConcludeIncident(inc *Incident) {
	if k.Active() {
		k.conclude(inc, k.Samples())
	}
}

// Summary returns the counts so far.
func (an *Analyzer) Summary() *Summary { return &an.sum }

// Active is the number of flows tracked now.
func (an *Analyzer) Active() int { return an.tracker.Active() }

// SortAttempts orders attempts by start time, then by their first packet:
// the order does not depend on when the tracker happened to finish them.
// (Ids are given in order of each attempt's first packet.)
func SortAttempts(as []*Attempt) {
	sort.SliceStable(as, func(i, j int) bool {
		a, b := as[i], as[j]
		if a.Start != b.Start {
			return a.Start < b.Start
		}
		if a.First.Source != b.First.Source {
			return a.First.Source < b.First.Source
		}
		return a.First.Num < b.First.Num
	})
}
