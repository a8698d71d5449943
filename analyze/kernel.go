package analyze

import (
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/synscope/synscope/internal/kevent"
)

// Kernel evidence: what the watched host's kernel said while the packets
// were captured (drops and their reasons, SYN-ACK retransmits, resets sent
// and received, samples of its counters and settings). It reaches the
// analyzer as records of link type kevent.LinkType among the packets, and is
// joined with attempts as the tracker finishes them: an event belongs to an
// attempt when it names the attempt's 4-tuple (and, for a SYN, its sequence
// number) and falls within the attempt's time, give or take kernelSlack.
//
// Records are decoded in the reader's goroutine and attempts finish in the
// tracker's (see Pipeline), so the store has a lock; a capture without
// kernel records never takes it.

// Bounds of the kernel store.
const (
	MaxKernelFlows   = 65536 // 4-tuples with pending events; the oldest go first
	maxKernelPerFlow = 32    // events kept per 4-tuple
	MaxKernelSamples = 2048  // counter samples kept (thinned evenly beyond)
	maxKernelReasons = 16    // reason/location rows per incident and in the totals
	maxKernelNotes   = 64
	kernelSlack      = int64(2e9) // clocks of the tap and the tracepoints may differ a little
	kernelRetention  = int64(600e9)
	maxListenerShown = 4
	// maxKernelRecord and maxSampleBytes bound what a hostile capture's
	// kernel records can make the store keep.
	maxKernelRecord   = 1 << 20
	maxSampleBytes    = 64 << 20
	maxSampleList     = 256 // listeners and addresses kept per sample
	kernelUnknownName = "?"
)

// KernelTotals counts the kernel evidence of the whole run.
type KernelTotals struct {
	Records   uint64 // kernel records read
	Malformed uint64 // kernel records that could not be decoded
	Events    uint64 // tracepoint events (drops, SYN-ACK retransmits, resets)
	// Drops counts TCP segments the kernel dropped, by reason and location.
	Drops []ReasonCount
	// DropsOther counts drops whose reason row did not fit.
	DropsOther        uint64
	SynAckRetransmits uint64
	ResetsSent        uint64
	ResetsReceived    uint64
	ResetReasons      []ReasonCount
	Matched           uint64 // events joined with an attempt
	Unmatched         uint64 // events no attempt claimed (not in the capture, or filtered out)
	Evicted           uint64 // events forgotten because the store was full
	SamplesThinned    uint64 // counter samples dropped to stay within MaxKernelSamples
	First, Last       int64  // span of the kernel records
	GhostsOmitted     uint64 // ghost connections not remembered (see ghostConn)
}

// ReasonCount is a count for one drop or reset reason and, for drops, the
// kernel function that freed the packet.
type ReasonCount struct {
	Reason   string
	Location string
	Count    uint64 // segments
	Attempts uint64 // attempts they belong to (incidents only)
	// SYN: the dropped segments are the clients' SYNs (incidents only;
	// otherwise other segments of the attempts: the handshake's ACK, RSTs).
	SYN bool
}

// AttemptKernel is what the kernel said about one attempt.
type AttemptKernel struct {
	Watched      bool   // kernel evidence was being collected while it ran
	SynDrops     uint16 // the client's SYNs this kernel dropped
	OtherDrops   uint16 // other segments of the attempt it dropped
	DropReason   string // reason of the first SYN drop, else of the first drop ("NETFILTER_DROP")
	DropLocation string // where it was freed ("nft_do_chain+0x1f4")
	// OtherReason and OtherLocation are those of the first drop of a
	// segment other than the client's SYN (the handshake's ACK, a RST).
	OtherReason   string
	OtherLocation string
	SynAckRetrans uint16 // SYN-ACK retransmits the kernel made
	ResetsSent    uint16 // RSTs this kernel sent on the 4-tuple
	ResetsRecv    uint16 // RSTs it received on it
	ResetReason   string // reason of the first RST sent, where the kernel gives one
}

// Dropped reports whether the kernel dropped any segment of the attempt.
func (k *AttemptKernel) Dropped() bool { return k.SynDrops+k.OtherDrops > 0 }

type kkey struct {
	a, b   [16]byte
	pa, pb uint16
}

type kev struct {
	kind     kevent.Kind
	fromA    bool // the segment travels from key side a to b
	flags    uint8
	seq      uint32
	time     int64
	reason   string
	location string
}

type kflow struct {
	evs  []kev
	last int64
}

// Kernel is the store of kernel evidence.
type Kernel struct {
	active atomic.Bool
	mu     sync.Mutex
	names  map[string]string
	flows  map[kkey]*kflow
	order  []kkey // insertion order, for eviction and expiry (may hold stale keys)
	head   int
	clock  int64

	totals  KernelTotals
	drops   map[[2]string]uint64
	rstWhy  map[string]uint64
	samples []*kevent.Sample
	ghosts  []ghostConn
	sizes   []int // record size of each sample
	bytes   int   // sum of sizes
	notes   []kevent.Note
	scratch kevent.Event
}

func newKernel() *Kernel {
	return &Kernel{names: map[string]string{}, flows: map[kkey]*kflow{}, drops: map[[2]string]uint64{},
		rstWhy: map[string]uint64{}}
}

// Active reports whether any kernel record was read.
func (k *Kernel) Active() bool { return k.active.Load() }

func (k *Kernel) intern(s string) string {
	if s == "" {
		return ""
	}
	if v, ok := k.names[s]; ok {
		return v
	}
	if len(k.names) < 4096 {
		k.names[s] = s
	}
	return s
}

func canon(src, dst netip.AddrPort) (kkey, bool) {
	a, b := src.Addr().Unmap().As16(), dst.Addr().Unmap().As16()
	k := kkey{a: a, b: b, pa: src.Port(), pb: dst.Port()}
	if string(a[:]) > string(b[:]) || (a == b && k.pa > k.pb) {
		k.a, k.b, k.pa, k.pb = b, a, k.pb, k.pa
		return k, false
	}
	return k, true
}

// record takes one kernel record (the frame of a kevent.LinkType packet).
func (k *Kernel) record(data []byte, ts int64) {
	if !k.active.Load() { // the tracker reads it for every attempt: write it once
		k.active.Store(true)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	t := &k.totals
	t.Records++
	kind, err := kevent.RecordKind(data)
	if err != nil || len(data) > maxKernelRecord {
		t.Malformed++
		return
	}
	if t.First == 0 || ts < t.First {
		t.First = ts
	}
	t.Last = max(t.Last, ts)
	switch kind {
	case kevent.KindCounters:
		s := new(kevent.Sample)
		if kevent.ParseJSON(data, s) != nil {
			t.Malformed++
			return
		}
		s.Listeners = s.Listeners[:min(len(s.Listeners), maxSampleList)]
		s.Addrs = s.Addrs[:min(len(s.Addrs), maxSampleList)]
		k.addSample(s, len(data))
	case kevent.KindNote:
		var n kevent.Note
		if kevent.ParseJSON(data, &n) != nil {
			t.Malformed++
			return
		}
		if len(k.notes) < maxKernelNotes {
			k.notes = append(k.notes, n)
		}
	default:
		e := &k.scratch
		if kevent.ParseEvent(data, e) != nil {
			t.Malformed++
			return
		}
		k.event(e)
	}
}

func (k *Kernel) addSample(s *kevent.Sample, size int) {
	for len(k.samples) >= MaxKernelSamples || (len(k.samples) > 1 && k.bytes+size > maxSampleBytes) {
		// Keep the first and every other one after it: the deltas around an
		// incident stay right, only coarser.
		kept, sizes, bytes := k.samples[:1], k.sizes[:1], k.sizes[0]
		for i := 2; i < len(k.samples); i += 2 {
			kept, sizes = append(kept, k.samples[i]), append(sizes, k.sizes[i])
			bytes += k.sizes[i]
		}
		k.totals.SamplesThinned += uint64(len(k.samples) - len(kept))
		clear(k.samples[len(kept):])
		k.samples, k.sizes, k.bytes = kept, sizes, bytes
	}
	k.samples = append(k.samples, s)
	k.sizes = append(k.sizes, size)
	k.bytes += size
}

func (k *Kernel) event(e *kevent.Event) {
	t := &k.totals
	t.Events++
	reason, loc := k.intern(e.ReasonName), k.intern(e.Location)
	if reason == "" && e.Kind == kevent.KindDrop {
		reason = k.intern(kernelUnknownName)
	}
	switch e.Kind {
	case kevent.KindDrop:
		key := [2]string{reason, loc}
		if _, ok := k.drops[key]; ok || len(k.drops) < maxKernelReasons {
			k.drops[key]++
		} else {
			t.DropsOther++
		}
	case kevent.KindSynAckRetrans:
		t.SynAckRetransmits++
	case kevent.KindSendReset:
		t.ResetsSent++
		if reason != "" {
			if _, ok := k.rstWhy[reason]; ok || len(k.rstWhy) < maxKernelReasons {
				k.rstWhy[reason]++
			}
		}
	case kevent.KindRecvReset:
		t.ResetsReceived++
	}
	key, fromA := canon(e.Src, e.Dst)
	if e.Time > k.clock {
		k.clock = e.Time
		k.expire()
	}
	f := k.flows[key]
	if f == nil {
		if len(k.flows) >= MaxKernelFlows {
			k.evictOldest()
		}
		f = &kflow{}
		k.flows[key] = f
		k.order = append(k.order, key)
	}
	f.last = max(f.last, e.Time)
	if len(f.evs) >= maxKernelPerFlow {
		t.Evicted++
		return
	}
	f.evs = append(f.evs, kev{kind: e.Kind, fromA: fromA, flags: e.Flags, seq: e.Seq, time: e.Time, reason: reason, location: loc})
}

// evictOldest forgets the flow that came first.
func (k *Kernel) evictOldest() {
	for k.head < len(k.order) {
		key := k.order[k.head]
		k.head++
		if f, ok := k.flows[key]; ok {
			k.totals.Evicted += uint64(len(f.evs))
			delete(k.flows, key)
			break
		}
	}
	k.compact()
}

// expire forgets flows quiet for kernelRetention: no attempt will claim
// their events any more.
func (k *Kernel) expire() {
	for k.head < len(k.order) {
		key := k.order[k.head]
		f, ok := k.flows[key]
		if ok && f.last > k.clock-kernelRetention {
			break
		}
		k.head++
		if ok {
			k.totals.Unmatched += uint64(len(f.evs))
			delete(k.flows, key)
		}
	}
	k.compact()
}

func (k *Kernel) compact() {
	if k.head > 4096 && k.head*2 > len(k.order) {
		k.order = append(k.order[:0], k.order[k.head:]...)
		k.head = 0
	}
}

// watched reports whether kernel evidence was being collected at ts.
func (k *Kernel) watched(ts int64) bool {
	t := &k.totals
	return t.Records > 0 && ts >= t.First-kernelSlack && ts <= t.Last+kernelSlack
}

// match fills a.Kernel from the events on its 4-tuple within its time and
// forgets them.
func (k *Kernel) match(a *Attempt) {
	k.mu.Lock()
	defer k.mu.Unlock()
	ak := &a.Kernel
	*ak = AttemptKernel{Watched: k.watched(a.Start) || k.watched(a.End)}
	key, clientIsA := canon(a.Client, a.Server)
	f := k.flows[key]
	if f == nil {
		return
	}
	lo, hi := a.Start-kernelSlack, a.End+kernelSlack
	kept := f.evs[:0]
	var ghost kev
	hasGhost := false
	for _, e := range f.evs {
		if e.time < lo || e.time > hi {
			kept = append(kept, e)
			continue
		}
		fromClient := e.fromA == clientIsA
		switch e.kind {
		case kevent.KindDrop:
			syn := fromClient && e.flags&0x12 == 0x02
			if syn && a.HasISN && e.seq != a.ISN {
				kept = append(kept, e) // a SYN of another attempt on the same 4-tuple
				continue
			}
			if syn {
				if ak.SynDrops == 0 {
					ak.DropReason, ak.DropLocation = e.reason, e.location
				}
				ak.SynDrops++
			} else {
				if ak.OtherDrops == 0 {
					ak.OtherReason, ak.OtherLocation = e.reason, e.location
					if ak.SynDrops == 0 {
						ak.DropReason, ak.DropLocation = e.reason, e.location
					}
				}
				ak.OtherDrops++
			}
			if !hasGhost && a.HandshakeDone && fromClient && !syn && listenerDrop(e.reason, e.location) {
				ghost, hasGhost = e, true
			}
		case kevent.KindSynAckRetrans:
			ak.SynAckRetrans++
		case kevent.KindSendReset:
			ak.ResetsSent++
			if ak.ResetReason == "" {
				ak.ResetReason = e.reason
			}
		case kevent.KindRecvReset:
			ak.ResetsRecv++
		}
		k.totals.Matched++
	}
	if hasGhost {
		if len(k.ghosts) < MaxGhosts {
			k.ghosts = append(k.ghosts, ghostConn{server: a.Server, time: a.Start, reason: ghost.reason, location: ghost.location})
		} else {
			k.totals.GhostsOmitted++
		}
	}
	clear(f.evs[len(kept):])
	f.evs = kept
	if len(kept) == 0 {
		delete(k.flows, key)
	}
}

// listenerDrop reports whether a drop of a client's segment (not its SYN)
// happened at the listener, before a socket existed for the connection: the
// accept queue had no room for it (TCP_LISTEN_OVERFLOW), or the ACK of a
// syncookie could not become a socket (a drop in cookie_v4_check or
// cookie_v6_check: when the accept queue overflows, that is where a cookie's
// ACK goes; a bad cookie goes there too, see SyncookiesFailed).
func listenerDrop(reason, location string) bool {
	return reason == "TCP_LISTEN_OVERFLOW" || strings.HasPrefix(location, "cookie_v4_check") || strings.HasPrefix(location, "cookie_v6_check")
}

// ghostConn is an attempt that completed its handshake on the wire while
// this kernel dropped the client's ACK at the listener (see listenerDrop):
// the client believes it is connected, the application never sees the
// connection. The wire looks fine, so such attempts make no incident of
// their own; the accept-queue finding counts them.
type ghostConn struct {
	server           netip.AddrPort
	time             int64
	reason, location string
}

// MaxGhosts bounds the ghost connections remembered (the rest are counted).
const MaxGhosts = 65536

// ghostsAt counts the ghost connections to server that started within
// [from, to], by reason and location.
func (k *Kernel) ghostsAt(server netip.AddrPort, from, to int64) []ReasonCount {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []ReasonCount
	for _, g := range k.ghosts {
		if g.server == server && g.time >= from && g.time <= to {
			out = addReason(out, g.reason, g.location, false, 1)
		}
	}
	sortReasons(out)
	return out
}

// finish counts the events nobody claimed.
func (k *Kernel) finish() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for key, f := range k.flows {
		k.totals.Unmatched += uint64(len(f.evs))
		delete(k.flows, key)
	}
	k.order, k.head = nil, 0
}

// Totals returns the counts of the whole run, with the reason rows sorted
// by count.
func (k *Kernel) Totals() KernelTotals {
	k.mu.Lock()
	defer k.mu.Unlock()
	t := k.totals
	t.Drops = nil
	for key, n := range k.drops {
		t.Drops = append(t.Drops, ReasonCount{Reason: key[0], Location: key[1], Count: n})
	}
	sortReasons(t.Drops)
	t.ResetReasons = nil
	for r, n := range k.rstWhy {
		t.ResetReasons = append(t.ResetReasons, ReasonCount{Reason: r, Count: n})
	}
	sortReasons(t.ResetReasons)
	return t
}

func sortReasons(rs []ReasonCount) {
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].Count != rs[j].Count {
			return rs[i].Count > rs[j].Count
		}
		if rs[i].Reason != rs[j].Reason {
			return rs[i].Reason < rs[j].Reason
		}
		if rs[i].Location != rs[j].Location {
			return rs[i].Location < rs[j].Location
		}
		return rs[i].SYN && !rs[j].SYN
	})
}

// Samples returns the counter samples kept, in time order.
func (k *Kernel) Samples() []*kevent.Sample {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := append([]*kevent.Sample(nil), k.samples...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time < out[j].Time })
	return out
}

// Notes returns what evidence could not be collected and why.
func (k *Kernel) Notes() []kevent.Note {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]kevent.Note(nil), k.notes...)
}

// around returns the samples bracketing [start, end]: the last at or before
// start and the first at or after end (the nearest ones when none is).
func around(samples []*kevent.Sample, start, end int64) (before, after *kevent.Sample) {
	if len(samples) == 0 {
		return nil, nil
	}
	i := sort.Search(len(samples), func(i int) bool { return samples[i].Time > start })
	if i > 0 {
		before = samples[i-1]
	} else {
		before = samples[0]
	}
	j := sort.Search(len(samples), func(i int) bool { return samples[i].Time >= end })
	if j < len(samples) {
		after = samples[j]
	} else {
		after = samples[len(samples)-1]
	}
	return before, after
}

// CounterDelta is how much a kernel counter moved.
type CounterDelta struct {
	Name  string
	Delta int64
}

// watchedCounters are the counters that bear on handshakes, in the order a
// report lists them.
var watchedCounters = []string{
	"TcpExt.ListenOverflows", "TcpExt.ListenDrops", "TcpExt.TCPReqQFullDrop", "TcpExt.TCPReqQFullDoCookies",
	"TcpExt.SyncookiesSent", "TcpExt.SyncookiesRecv", "TcpExt.SyncookiesFailed",
	"TcpExt.PAWSActive", "TcpExt.PAWSEstab", "TcpExt.PAWSTimewait", "TcpExt.PAWSOldAck", "TcpExt.TCPACKSkippedPAWS",
	"TcpExt.TCPSynRetrans", "TcpExt.TCPTimeouts", "TcpExt.TCPSYNChallenge", "TcpExt.TCPChallengeACK",
	"TcpExt.IPReversePathFilter", "TcpExt.TCPBacklogDrop", "TcpExt.TCPMinTTLDrop", "TcpExt.TCPDeferAcceptDrop",
	"TcpExt.TCPAbortOnData", "TcpExt.TCPAbortOnClose", "TcpExt.TCPAbortOnLinger", "TcpExt.TW", "TcpExt.TWRecycled",
	"Tcp.AttemptFails", "Tcp.EstabResets", "Tcp.InErrs", "Tcp.OutRsts", "Tcp.RetransSegs", "Tcp.InCsumErrors",
	"IpExt.InNoRoutes", "Ip.InDiscards", "Ip.InAddrErrors", "Ip.InHdrErrors", "Ip6.InDiscards", "Ip6.InNoRoutes",
}

// Deltas lists the watched counters that moved from before to after.
func Deltas(before, after *kevent.Sample) []CounterDelta {
	if before == nil || after == nil || before == after {
		return nil
	}
	var out []CounterDelta
	for _, name := range watchedCounters {
		b, okb := before.Counters[name]
		a, oka := after.Counters[name]
		if okb && oka && a != b {
			out = append(out, CounterDelta{name, int64(a - b)})
		}
	}
	return out
}

func delta(ds []CounterDelta, name string) int64 {
	for _, d := range ds {
		if d.Name == name {
			return d.Delta
		}
	}
	return 0
}

// IncidentKernel is what the kernel said about an incident's attempts.
type IncidentKernel struct {
	Watched       uint64 // attempts during which kernel evidence was collected
	SynDropped    uint64 // attempts with SYNs the kernel dropped
	OtherDropped  uint64 // attempts with other segments dropped
	Drops         []ReasonCount
	SynAckRetrans uint64 // SYN-ACK retransmits the kernel made
	ResetsSent    uint64
	ResetsRecv    uint64
	WithReset     uint64 // attempts with a kernel reset event (sent or received)
	ResetReasons  []ReasonCount

	// From the counter samples bracketing the incident.
	Before, After int64 // times of the samples (ns); 0 when there were none
	Deltas        []CounterDelta
	Sysctls       map[string]string
	Listener      *kevent.Listener // the server's listener, at its fullest
	ListenerFull  bool             // seen with more waiting than its backlog
	// AckDropped counts, by drop reason and location, the attempts to the
	// server between the samples that completed their handshake on the
	// wire while this kernel dropped the client's ACK at the listener (see
	// ghostConn): they may belong to no incident.
	AckDropped []ReasonCount
	Local      string // "server", "client" or "" : which end this host is
	// FromSamples: the counts above are of the incident's sample attempts
	// only (a timestamps incident).
	FromSamples bool
	Findings    []KernelFinding

	lastEnd int64 // the latest end of an attempt (the incident's End is its latest start)
}

// KernelFinding is one conclusion with the evidence behind it.
type KernelFinding struct {
	Cause      string // kernel_drop, accept_queue_overflow, syn_queue_overflow, paws, no_kernel_drop, upstream, kernel_resets, synack_retransmits
	Confidence string // high, medium, low
	Attempts   uint64
	Text       string
	Evidence   []string
}

func (ik *IncidentKernel) add(a *Attempt) {
	k := &a.Kernel
	if !k.Watched {
		return
	}
	ik.lastEnd = max(ik.lastEnd, a.End)
	ik.Watched++
	if k.SynDrops > 0 {
		ik.SynDropped++
	} else if k.OtherDrops > 0 {
		ik.OtherDropped++
	}
	if k.SynDrops > 0 {
		ik.Drops = addReason(ik.Drops, k.DropReason, k.DropLocation, true, uint64(k.SynDrops))
	}
	if k.OtherDrops > 0 {
		ik.Drops = addReason(ik.Drops, k.OtherReason, k.OtherLocation, false, uint64(k.OtherDrops))
	}
	ik.SynAckRetrans += uint64(k.SynAckRetrans)
	ik.ResetsSent += uint64(k.ResetsSent)
	ik.ResetsRecv += uint64(k.ResetsRecv)
	if k.ResetsSent+k.ResetsRecv > 0 {
		ik.WithReset++
	}
	if k.ResetReason != "" {
		ik.ResetReasons = addReason(ik.ResetReasons, k.ResetReason, "", false, uint64(k.ResetsSent))
	}
}

func addReason(rs []ReasonCount, reason, loc string, syn bool, n uint64) []ReasonCount {
	return mergeReason(rs, ReasonCount{Reason: reason, Location: loc, Count: n, Attempts: 1, SYN: syn})
}

// mergeReason adds the row r (of another incident) to rs.
func mergeReason(rs []ReasonCount, r ReasonCount) []ReasonCount {
	for i := range rs {
		if rs[i].Reason == r.Reason && rs[i].Location == r.Location && rs[i].SYN == r.SYN {
			rs[i].Count += r.Count
			rs[i].Attempts += r.Attempts
			return rs
		}
	}
	if len(rs) >= maxKernelReasons {
		return rs
	}
	return append(rs, r)
}

func (ik *IncidentKernel) merge(o *IncidentKernel) {
	ik.Watched += o.Watched
	ik.lastEnd = max(ik.lastEnd, o.lastEnd)
	ik.SynDropped += o.SynDropped
	ik.OtherDropped += o.OtherDropped
	for _, r := range o.Drops {
		ik.Drops = mergeReason(ik.Drops, r)
	}
	ik.SynAckRetrans += o.SynAckRetrans
	ik.ResetsSent += o.ResetsSent
	ik.ResetsRecv += o.ResetsRecv
	ik.WithReset += o.WithReset
	for _, r := range o.ResetReasons {
		ik.ResetReasons = mergeReason(ik.ResetReasons, r)
	}
}

// handshakeSysctls are the settings a report shows beside a finding.
var handshakeSysctls = []string{
	"net.ipv4.tcp_syncookies", "net.ipv4.tcp_max_syn_backlog", "net.core.somaxconn", "net.ipv4.tcp_timestamps",
	"net.ipv4.tcp_syn_retries", "net.ipv4.tcp_synack_retries", "net.ipv4.tcp_syn_linear_timeouts",
	"net.ipv4.tcp_tw_reuse", "net.ipv4.conf.all.rp_filter", "net.ipv4.tcp_abort_on_overflow",
}

// conclude fills the incident's kernel view from the samples and states
// what the evidence says.
func (k *Kernel) conclude(inc *Incident, samples []*kevent.Sample) {
	ik := inc.Kernel
	if ik == nil {
		ik = &IncidentKernel{}
		inc.Kernel = ik
	}
	if inc.Kind == IncTimestamps && ik.Watched == 0 && !ik.FromSamples {
		// A timestamps incident is made per server at the end, from counts:
		// its attempts were not added one by one. Its samples (the attempts
		// whose SYN was dropped by PAWS first) stand for them.
		for _, a := range inc.Samples {
			ik.add(a)
		}
		ik.FromSamples = true
	}
	sortReasons(ik.Drops)
	sortReasons(ik.ResetReasons)
	before, after := around(samples, inc.Start, max(inc.End, ik.lastEnd))
	if before != nil {
		ik.Before, ik.After = before.Time, after.Time
		ik.Deltas = Deltas(before, after)
		ik.Sysctls = map[string]string{}
		for _, name := range handshakeSysctls {
			if v, ok := after.Sysctls[name]; ok {
				ik.Sysctls[name] = v
			}
		}
		ik.Local = localEnd(after, inc)
		ik.Listener, ik.ListenerFull = listenerOf(samples, before, after, inc.Server)
		ik.AckDropped = k.ghostsAt(inc.Server, before.Time, after.Time)
	}
	ik.Findings = findings(inc, ik)
}

func localEnd(s *kevent.Sample, inc *Incident) string {
	srv := inc.Server.Addr().Unmap()
	for _, a := range s.Addrs {
		if a.Unmap() == srv {
			return "server"
		}
	}
	for i := range s.Listeners {
		if listens(&s.Listeners[i], inc.Server) {
			return "server"
		}
	}
	for _, smp := range inc.Samples {
		for _, a := range s.Addrs {
			if a.Unmap() == smp.Client.Addr().Unmap() {
				return "client"
			}
		}
	}
	return ""
}

// listens reports whether l is the listener of server: on its port, at its
// address or at the unspecified one.
func listens(l *kevent.Listener, server netip.AddrPort) bool {
	return l.Addr.Port() == server.Port() && (l.Addr.Addr().IsUnspecified() || l.Addr.Addr().Unmap() == server.Addr().Unmap())
}

// listenerOf finds the server's listener in the samples from before to
// after, at its fullest.
func listenerOf(samples []*kevent.Sample, before, after *kevent.Sample, server netip.AddrPort) (*kevent.Listener, bool) {
	var best *kevent.Listener
	full := false
	in := false
	for _, s := range samples {
		if s == before {
			in = true
		}
		if !in {
			continue
		}
		for i := range s.Listeners {
			l := &s.Listeners[i]
			if !listens(l, server) {
				continue
			}
			if best == nil || l.Queue > best.Queue {
				c := *l
				best = &c
			}
			if l.Queue > l.Backlog {
				full = true
			}
		}
		if s == after {
			break
		}
	}
	return best, full
}

// findings states what the kernel evidence says about an incident. Which
// evidence bears on which kind follows what the kernel does (checked in the
// namespace lab, cmd/synscope/lab_kernel_test.go):
//
//   - unanswered_syn, syn_retransmit, refused, timestamps (whose kernel
//     view is that of its samples: the attempts PAWS rejected): the SYNs are what went
//     unanswered, so drops of the clients' SYNs explain them. Drops of
//     their other segments do not: after a PAWS rejection the client's RST
//     that ends the TIME-WAIT is freed as NOT_SPECIFIED; it is shown, not
//     concluded on.
//   - synack_retransmit: the server re-sent its SYN-ACK because the
//     client's ACK did not arrive, or arrived and was not taken; drops of
//     the clients' other segments (that ACK) explain it, their SYNs (which
//     were answered) do not.
//   - the other kinds: any drop may bear on them.
//   - segments freed with their socket (QUEUE_PURGE: received, and never
//     read by the application) are never a cause.
//
// The accept queue: a SYN that finds it full is dropped without a kfree_skb
// event (the kernel consumes it) and counted only in TcpExt.ListenOverflows
// and ListenDrops; the client retransmits. So for unanswered and
// retransmitted SYNs the finding rests on those counters and the listener's
// fill in the samples. A client's ACK that finds it full (its SYN came while
// there was room, as happens with any round-trip time) is dropped with
// TCP_LISTEN_OVERFLOW, the handshake having completed on the wire; the
// server re-sends its SYN-ACK (a synack_retransmit incident). The ACK of a
// syncookie finds it full in cookie_v4_check, with no SYN-ACK to re-send:
// that client believes it is connected and the wire shows nothing wrong, so
// the finding counts such attempts (IncidentKernel.AckDropped).
func findings(inc *Incident, ik *IncidentKernel) []KernelFinding {
	var out []KernelFinding
	n := inc.Attempts
	synKinds := inc.Kind == IncUnansweredSYN || inc.Kind == IncSYNRetransmit
	handshake := synKinds || inc.Kind == IncSYNACKRetransmit
	over, ldrops := delta(ik.Deltas, "TcpExt.ListenOverflows"), delta(ik.Deltas, "TcpExt.ListenDrops")
	var listenRows []ReasonCount // the clients' ACKs dropped at a full accept queue
	ackDropped := false          // this kernel dropped the clients' ACKs (synack_retransmit)
	dropFindings := 0
	for _, r := range ik.Drops {
		if !dropExplains(inc.Kind, r) {
			continue
		}
		if !r.SYN {
			ackDropped = true
			if handshake && listenerDrop(r.Reason, r.Location) && (r.Reason == "TCP_LISTEN_OVERFLOW" || over > 0) {
				listenRows = append(listenRows, r)
				continue
			}
		}
		what := "segment(s)"
		if r.SYN {
			what = "SYN(s)"
		}
		f := KernelFinding{Cause: "kernel_drop", Confidence: "high", Attempts: r.Attempts,
			Text: "dropped by this host's kernel: " + r.Reason + locSuffix(r.Location) + dropMeaning(r.Reason),
			Evidence: []string{
				itoa(int(r.Count)) + " kfree_skb event(s) with reason " + r.Reason + " for " + what + " of " + itoa(int(r.Attempts)) + " of the " + itoa(int(n)) + " attempts (same 4-tuple" + cond(r.SYN, " and SYN sequence number", "") + ", within 2 s)",
			}}
		if strings.Contains(r.Reason, "PAWS") {
			f.Cause = "paws"
			f.Text = "dropped by this host's kernel: " + r.Reason + locSuffix(r.Location) + ": the SYN's timestamp is older than the one this host remembers for the 4-tuple (PAWS, RFC 7323)"
			if strings.Contains(r.Reason, "TW_PAWS") {
				f.Text += "; the 4-tuple was in TIME-WAIT here (this host closed the previous connection first)"
			}
			if d := delta(ik.Deltas, "TcpExt.PAWSTimewait") + delta(ik.Deltas, "TcpExt.PAWSActive"); d > 0 {
				f.Evidence = append(f.Evidence, "PAWS counters rose by "+itoa(int(d)))
			}
		}
		out = append(out, f)
		dropFindings++
	}
	if handshake && (over > 0 || len(listenRows) > 0 || (ldrops > 0 && dropFindings == 0)) {
		if f, ok := acceptQueueFinding(inc, ik, over, ldrops, listenRows); ok {
			out = append(out, f)
		}
	}
	if synKinds {
		if d := delta(ik.Deltas, "TcpExt.TCPReqQFullDrop"); d > 0 {
			limit := ""
			if l := ik.Listener; l != nil {
				limit = " (its limit is the listen backlog, " + itoa(int(l.Backlog)) + " for " + l.Addr.String() + ")"
			}
			out = append(out, KernelFinding{Cause: "syn_queue_overflow", Confidence: "medium", Attempts: min(n, uint64(d)),
				Text:     "the SYN queue" + limit + " was full and syncookies did not answer: the kernel dropped SYNs",
				Evidence: []string{"TCPReqQFullDrop +" + itoa(int(d)) + sysctlSuffix(ik.Sysctls, "net.ipv4.tcp_syncookies") + sysctlSuffix(ik.Sysctls, "net.ipv4.tcp_max_syn_backlog")}})
		}
	}
	if handshake {
		if d := delta(ik.Deltas, "TcpExt.IPReversePathFilter"); d > 0 {
			out = append(out, KernelFinding{Cause: "rp_filter", Confidence: "medium", Attempts: n,
				Text:     "packets were dropped by reverse-path filtering (rp_filter)",
				Evidence: []string{"IPReversePathFilter +" + itoa(int(d)) + sysctlSuffix(ik.Sysctls, "net.ipv4.conf.all.rp_filter")}})
		}
	}
	if synKinds && !hasPAWS(out) && dropFindings == 0 {
		if d := delta(ik.Deltas, "TcpExt.PAWSTimewait") + delta(ik.Deltas, "TcpExt.PAWSActive"); d > 0 {
			out = append(out, KernelFinding{Cause: "paws", Confidence: "medium", Attempts: n,
				Text:     "the kernel rejected segments by PAWS (timestamps older than the 4-tuple's last): see the timestamps finding",
				Evidence: []string{"PAWSTimewait/PAWSActive +" + itoa(int(d))}})
		}
	}
	if synKinds && len(out) == 0 && ik.Watched > 0 {
		switch ik.Local {
		case "client":
			out = append(out, KernelFinding{Cause: "upstream", Confidence: "medium", Attempts: n,
				Text:     "the SYNs left this host (the capture saw them go) and its kernel dropped nothing: they, or the answers, were lost upstream of this host, on the network or at the server",
				Evidence: []string{"no kfree_skb event for the attempts' SYNs", "no drop counter moved"}})
		default:
			f := KernelFinding{Cause: "no_kernel_drop", Confidence: "medium", Attempts: n,
				Text:     "the SYNs reached this host (the capture saw them) and its kernel neither dropped them nor counted an overflow: look before the stack (XDP, tc, the NIC) or at the application's listener",
				Evidence: []string{"no kfree_skb event for the attempts' SYNs", "ListenOverflows, ListenDrops, TCPReqQFullDrop, PAWS and rp_filter counters unchanged"}}
			if ik.Before == 0 {
				f.Evidence[1] = "no counter samples were taken"
				f.Confidence = "low"
			}
			out = append(out, f)
		}
	}
	if inc.Kind == IncSYNACKRetransmit && ik.SynAckRetrans > 0 {
		f := KernelFinding{Cause: "synack_retransmits", Confidence: "high", Attempts: n,
			Text:     "this host's kernel retransmitted its SYN-ACK " + itoa(int(ik.SynAckRetrans)) + " time(s)",
			Evidence: []string{"tcp_retransmit_synack events on the incident's 4-tuples"}}
		switch {
		case len(listenRows) > 0:
			f.Text += ": it had dropped the clients' ACKs itself, the accept queue being full (above), so it took the SYN-ACKs for lost"
		case ackDropped:
			f.Text += ": it had dropped the clients' ACKs itself (above), so it took the SYN-ACKs for lost"
		default:
			f.Text += " and dropped none of the clients' ACKs: the SYN-ACK or the client's ACK was lost between this host and the client"
		}
		out = append(out, f)
	}
	if (inc.Kind == IncReset || inc.Kind == IncHealthcheckRST || inc.Kind == IncRefused) && ik.WithReset > 0 {
		conf := "high"
		if ik.WithReset < ik.Watched {
			conf = "medium"
		}
		f := KernelFinding{Cause: "kernel_resets", Confidence: conf, Attempts: ik.WithReset,
			Text: "this host's kernel received " + itoa(int(ik.ResetsRecv)) + " and sent " + itoa(int(ik.ResetsSent)) + " reset(s) on " + itoa(int(ik.WithReset)) + " of the " + itoa(int(ik.Watched)) + " watched attempts (tcp_receive_reset, tcp_send_reset): the resets on the wire are the ones its stack took or made",
		}
		for _, r := range ik.ResetReasons {
			f.Evidence = append(f.Evidence, "reset reason "+r.Reason+": "+itoa(int(r.Count)))
		}
		var moved []string
		for _, name := range []string{"Tcp.EstabResets", "Tcp.OutRsts", "TcpExt.TCPAbortOnLinger", "TcpExt.TCPAbortOnClose", "TcpExt.TCPAbortOnData"} {
			if d := delta(ik.Deltas, name); d != 0 {
				moved = append(moved, strings.TrimPrefix(strings.TrimPrefix(name, "TcpExt."), "Tcp.")+" +"+itoa(int(d)))
			}
		}
		if len(moved) > 0 {
			f.Evidence = append(f.Evidence, strings.Join(moved, ", ")+" between the samples around the incident")
		}
		out = append(out, f)
	}
	return out
}

// dropExplains reports whether the drop row r bears on an incident of kind
// (see findings).
func dropExplains(kind IncidentKind, r ReasonCount) bool {
	if r.Reason == "QUEUE_PURGE" {
		return false
	}
	switch kind {
	case IncUnansweredSYN, IncSYNRetransmit, IncRefused, IncTimestamps:
		return r.SYN
	case IncSYNACKRetransmit:
		return !r.SYN
	}
	return true
}

// dropMeaning says what a drop reason means, for the ones a handshake
// meets most.
func dropMeaning(reason string) string {
	switch reason {
	case "NETFILTER_DROP":
		return ": a firewall rule on this host (netfilter: nftables or iptables) dropped it"
	case "NO_SOCKET":
		return ": no socket took it (nothing listens on the port, or the connection is gone)"
	case "IP_RPFILTER":
		return ": reverse-path filtering (rp_filter) dropped it"
	case "TCP_LISTEN_OVERFLOW":
		return ": the listener's accept queue was full"
	case "SOCKET_BACKLOG":
		return ": the socket's backlog was full"
	case "TCP_MINTTL":
		return ": its TTL was below the socket's minimum (IP_MINTTL)"
	}
	return ""
}

// acceptQueueFinding is the accept_queue_overflow finding (see findings);
// ok is false when no attempt of the incident can be put down to it.
func acceptQueueFinding(inc *Incident, ik *IncidentKernel, over, ldrops int64, listenRows []ReasonCount) (KernelFinding, bool) {
	n := inc.Attempts
	f := KernelFinding{Cause: "accept_queue_overflow", Confidence: "medium"}
	who := "a listener"
	if l := ik.Listener; l != nil {
		who = "the listener " + l.Addr.String() + " (backlog " + itoa(int(l.Backlog)) + ", " + itoa(int(l.Queue)) + " waiting to be accepted at its fullest)"
		if ik.ListenerFull {
			f.Confidence = "high"
		}
	}
	why := ": the application does not accept fast enough, or its backlog is too small"
	if inc.Kind == IncSYNACKRetransmit {
		f.Attempts = n
		if len(listenRows) > 0 {
			f.Confidence, f.Attempts = "high", 0
			for _, r := range listenRows {
				f.Attempts += r.Attempts
			}
			f.Attempts = min(f.Attempts, n)
		}
		f.Text = "the accept queue of " + who + " was full when the clients' ACKs came: the kernel dropped them, so the handshakes completed on the wire (the clients believe they are connected) while this host kept re-sending its SYN-ACK" + why
	} else {
		// SYNs dropped for another reason (a drop event) are not the
		// queue's; a full queue drops SYNs without one.
		f.Attempts = n - min(n, ik.SynDropped)
		if f.Attempts == 0 {
			return f, false
		}
		f.Text = "the accept queue of " + who + " was full: the kernel dropped the SYNs it had no room for, silently (no drop event; TcpExt.ListenOverflows counts them), and the clients retransmitted them" + why
	}
	for _, r := range listenRows {
		f.Evidence = append(f.Evidence, itoa(int(r.Count))+" kfree_skb event(s) with reason "+r.Reason+locSuffix(r.Location)+" for the clients' segments after the SYN (the handshake's ACK first) on "+itoa(int(r.Attempts))+" of the "+itoa(int(n))+" attempts (same 4-tuple, within 2 s)")
	}
	f.Evidence = append(f.Evidence, "ListenOverflows +"+itoa(int(over))+", ListenDrops +"+itoa(int(ldrops))+" between the samples around the incident")
	if c, s := delta(ik.Deltas, "TcpExt.TCPReqQFullDoCookies"), delta(ik.Deltas, "TcpExt.SyncookiesSent"); c > 0 || s > 0 {
		f.Evidence = append(f.Evidence, "TCPReqQFullDoCookies +"+itoa(int(c))+", SyncookiesSent +"+itoa(int(s))+": the SYN queue (its limit is the listen backlog too) was full as well, and SYNs were answered with syncookies")
	}
	if d := delta(ik.Deltas, "TcpExt.TCPReqQFullDrop"); d > 0 {
		f.Evidence = append(f.Evidence, "TCPReqQFullDrop +"+itoa(int(d))+": the SYN queue (its limit is the listen backlog too) was full as well and, without syncookies, SYNs were dropped there")
	}
	if v, ok := ik.Sysctls["net.ipv4.tcp_syncookies"]; ok {
		f.Evidence = append(f.Evidence, "net.ipv4.tcp_syncookies = "+v+sysctlSuffix(ik.Sysctls, "net.core.somaxconn"))
	}
	if len(ik.AckDropped) > 0 {
		total, parts := uint64(0), []string(nil)
		for _, r := range ik.AckDropped {
			total += r.Attempts
			what := ""
			if strings.HasPrefix(r.Location, "cookie_v") {
				what = ", the ACKs of syncookies"
			}
			parts = append(parts, r.Reason+locSuffix(r.Location)+": "+itoa(int(r.Attempts))+what)
		}
		f.Evidence = append(f.Evidence, itoa(int(total))+" attempt(s) to this server between the samples completed the handshake on the wire while this kernel dropped the client's ACK at the listener ("+strings.Join(parts, "; ")+"): those clients believe they are connected and the application never sees them; only those this host re-sent its SYN-ACK to show as an incident (synack_retransmit)")
	}
	if ik.Listener == nil {
		f.Evidence = append(f.Evidence, "no listener on port "+itoa(int(inc.Server.Port()))+" in the samples: the counters are namespace-wide")
	}
	return f, true
}

func hasPAWS(fs []KernelFinding) bool {
	for _, f := range fs {
		if f.Cause == "paws" {
			return true
		}
	}
	return false
}

func locSuffix(loc string) string {
	if loc == "" {
		return ""
	}
	return " (" + loc + ")"
}

func sysctlSuffix(m map[string]string, name string) string {
	if v, ok := m[name]; ok {
		return ", " + name + " = " + v
	}
	return ""
}

func cond(c bool, a, b string) string {
	if c {
		return a
	}
	return b
}
