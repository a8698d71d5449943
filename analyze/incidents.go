package analyze

import (
	"encoding/binary"
	"math"
	"math/bits"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"
)

// The incident layer turns finished attempts into what a reader needs: groups
// of anomalous attempts of one kind against one server endpoint, close in
// time, with evidence and suspected causes; a verdict on where the failed
// or slow attempts went; counts across the capture for charts. It consumes
// attempts as the tracker finishes them (in any order), and everything it
// keeps is bounded: incidents, samples per incident, servers with traffic
// counts, probe candidates; what does not fit is counted.

// IncidentKind names a kind of incident.
type IncidentKind uint8

const (
	IncUnansweredSYN IncidentKind = iota
	IncSYNRetransmit
	IncSYNACKRetransmit
	IncRefused
	IncReset
	IncHealthcheckRST
	IncSlowResponse
	IncTimestamps
	numIncidentKinds
)

var incidentKindNames = [numIncidentKinds]string{
	"unanswered_syn", "syn_retransmit", "synack_retransmit", "refused", "reset", "healthcheck_rst", "slow_response", "timestamps",
}

func (k IncidentKind) String() string {
	if k < numIncidentKinds {
		return incidentKindNames[k]
	}
	return "incident(" + itoa(int(k)) + ")"
}

// IncidentConfig holds the incident layer's knobs and bounds.
type IncidentConfig struct {
	Gap          time.Duration // a quiet gap longer than this starts a new incident
	Slow         time.Duration // first response byte later than this is slow
	MaxIncidents int           // incidents kept; more are counted as omitted
	Samples      int           // sample attempts kept per incident
	MaxServers   int           // server endpoints whose traffic is counted (for shares)
	MaxProbers   int           // (client, server) pairs watched for periodic probing
}

// DefaultIncidentConfig returns the defaults documented in README.md.
func DefaultIncidentConfig() IncidentConfig {
	return IncidentConfig{Gap: time.Minute, Slow: 5 * time.Second, MaxIncidents: 10000, Samples: 5, MaxServers: 4096, MaxProbers: 65536}
}

// Incident is one group of anomalous attempts.
type Incident struct {
	ID       int
	Kind     IncidentKind
	Server   netip.AddrPort // port 0 for host-wide findings
	Start    int64
	End      int64
	Attempts uint64
	Clients  uint64 // distinct client addresses (estimated beyond 64)

	ServerAttempts uint64 // all attempts to Server in [Start, End]

	Samples        []*Attempt // the earliest few, in start order
	SamplesOmitted uint64

	// Kind-specific facts.
	Schedule  []time.Duration // unanswered_syn: SYN offsets of the attempt with most SYNs
	DelayP50  time.Duration   // syn_retransmit: added delay; slow_response: TTFB
	DelayMax  time.Duration
	BySide    [3]uint64 // reset: by Side; refused: [RefusedRST], [RefusedICMP]
	ByPhase   [5]uint64 // reset: by Phase
	Prober    netip.Addr
	Interval  time.Duration // healthcheck_rst
	Jitter    time.Duration
	TS        *TSFinding
	ICMPFrom  netip.Addr // refused by ICMP: the sender of the first error
	ICMPCodes [2]uint8   // refused by ICMP: type and code of the first error

	clients clientSet
	delays  sample
	order   uint64 // first attempt id, for stable sorting
	// Kernel is what the watched host's kernel said about the attempts
	// (nil without kernel evidence); its findings come from Kernel.Conclude.
	Kernel *IncidentKernel

	// Reported: a live run has already streamed it as closed.
	Reported bool

	latest int32 // 1 + the index of the latest sample, 0 when not known
}

// TSFinding is the timestamp-option finding for one server endpoint.
type TSFinding struct {
	SynsOffering     uint64 // attempts whose SYN carried the option
	SynsNotOffering  uint64
	SynacksWithTS    uint64 // answers to offering SYNs that carried it
	SynacksWithoutTS uint64
	UnansweredWithTS uint64 // unanswered attempts among the offering ones
	UnansweredNoTS   uint64
	// PAWSRejects counts attempts whose SYN the server's kernel dropped by
	// PAWS (its timestamp older than the one kept for the 4-tuple).
	PAWSRejects uint64
	Declines    bool // the server answers offering clients without the option
	RateDiffers bool // unanswered rates with and without the option differ markedly
}

// clientSet counts distinct addresses exactly up to 64, then estimates with
// a small HyperLogLog (1,024 registers, about 3% error).
type clientSet struct {
	exact []netip.Addr
	regs  *[1024]uint8
}

// addrHash is fixed (no random seed), so estimates are the same on every run.
// It hashes the 16-byte form; an IPv4 address is put together in registers
// (copying As16's array stalls on store forwarding, once per attempt).
func addrHash(a netip.Addr) uint64 {
	var lo, hi uint64
	if a.Is4() {
		v := a.As4() // As16 is ::ffff:v
		hi = 0xffff<<16 | uint64(binary.LittleEndian.Uint32(v[:]))<<32
	} else {
		b := a.As16()
		lo, hi = binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])
	}
	return mix(lo ^ mix(hi+0x9e3779b97f4a7c15))
}

func (c *clientSet) add(a netip.Addr) {
	if c.regs == nil {
		if slices.Contains(c.exact, a) {
			return
		}
		if len(c.exact) < 64 {
			c.exact = append(c.exact, a)
			return
		}
		c.regs = new([1024]uint8)
		for _, x := range c.exact {
			c.hll(x)
		}
		c.exact = nil
	}
	c.hll(a)
}

func (c *clientSet) hll(a netip.Addr) {
	h := addrHash(a)
	i := h >> 54
	w := h<<10 | 1<<9
	if rank := uint8(bits.LeadingZeros64(w) + 1); rank > c.regs[i] {
		c.regs[i] = rank
	}
}

func (c *clientSet) merge(o *clientSet) {
	if o.regs == nil {
		for _, x := range o.exact {
			c.add(x)
		}
		return
	}
	if c.regs == nil {
		c.regs = new([1024]uint8)
		for _, x := range c.exact {
			c.hll(x)
		}
		c.exact = nil
	}
	for i, r := range o.regs {
		if r > c.regs[i] {
			c.regs[i] = r
		}
	}
}

func (c *clientSet) count() uint64 {
	if c.regs == nil {
		return uint64(len(c.exact))
	}
	const m = 1024.0
	sum, zeros := 0.0, 0
	for _, r := range c.regs {
		sum += math.Ldexp(1, -int(r))
		if r == 0 {
			zeros++
		}
	}
	est := 0.7213 / (1 + 1.079/m) * m * m / sum
	if est <= 2.5*m && zeros > 0 {
		est = m * math.Log(m/float64(zeros))
	}
	return uint64(est + 0.5)
}

// sample keeps up to sampleMax values, chosen by a hash of the attempt id so
// that the choice does not depend on arrival order: the values with the
// smallest keys (a bottom-k sample), in a max-heap on the key.
type sample struct {
	vals []sampleVal
	n    uint64
	max  time.Duration
}

type sampleVal struct {
	key uint64
	v   time.Duration
}

const sampleMax = 1024

func mix(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

func (s *sample) add(id uint64, v time.Duration) {
	s.n++
	if v > s.max {
		s.max = v
	}
	s.addKeyed(sampleVal{mix(id), v})
}

func (s *sample) merge(o *sample) {
	for _, x := range o.vals {
		s.addKeyed(x)
	}
	s.n += o.n
	if o.max > s.max {
		s.max = o.max
	}
}

func (s *sample) addKeyed(x sampleVal) {
	h := s.vals
	if len(h) < sampleMax {
		h = append(h, x)
		for i := len(h) - 1; i > 0; { // sift up
			p := (i - 1) / 2
			if h[p].key >= h[i].key {
				break
			}
			h[p], h[i] = h[i], h[p]
			i = p
		}
		s.vals = h
		return
	}
	if x.key >= h[0].key {
		return
	}
	h[0] = x
	for i := 0; ; { // sift down
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(h) && h[l].key > h[m].key {
			m = l
		}
		if r < len(h) && h[r].key > h[m].key {
			m = r
		}
		if m == i {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// quantile returns the q-quantile of the sampled values.
func (s *sample) quantile(q float64) time.Duration {
	if len(s.vals) == 0 {
		return 0
	}
	v := make([]time.Duration, len(s.vals))
	for i, x := range s.vals {
		v[i] = x.v
	}
	slices.Sort(v)
	i := int(math.Ceil(q*float64(len(v)))) - 1
	return v[max(0, min(i, len(v)-1))]
}

// HistBoundsMs are the histogram bucket bounds for RTT and TTFB (ms).
var HistBoundsMs = []float64{0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000}

// Histogram is a distribution over HistBoundsMs.
type Histogram struct {
	Counts []uint64 // len(HistBoundsMs)+1
	Count  uint64
	vals   sample
}

func newHistogram() Histogram { return Histogram{Counts: make([]uint64, len(HistBoundsMs)+1)} }

func (h *Histogram) add(id uint64, d time.Duration) {
	ms := float64(d) / 1e6
	i := sort.SearchFloat64s(HistBoundsMs, ms)
	if i < len(HistBoundsMs) && HistBoundsMs[i] == ms {
		i++ // bucket i holds values below bound i
	}
	h.Counts[i]++
	h.Count++
	h.vals.add(id, d)
}

// Quantile estimates the q-quantile from a sample of up to 1,024 values.
func (h *Histogram) Quantile(q float64) time.Duration { return h.vals.quantile(q) }

// Series counts events per bucket across the capture. The bucket width
// doubles whenever the span would need more than maxBuckets, so memory is
// bounded and the result depends only on the span, not on arrival order.
type Series struct {
	Width             time.Duration
	Start             int64 // start of bucket 0 (ns)
	Attempts          []uint64
	Unanswered        []uint64
	SynRetransmits    []uint64
	SynAckRetransmits []uint64
	Resets            []uint64
}

const maxBuckets = 512

type seriesAcc struct {
	width  int64
	first  int64 // bucket index (time/width) of slot 0
	counts [][5]uint64
	// The bucket added to last, [lo, hi) in time, and its slot (hi is 0
	// when none): attempts end in about time order, and most land in it
	// without the division that finds a bucket.
	lo, hi int64
	last   int
}

func (s *seriesAcc) add(ts int64, field int, n uint64) {
	if ts <= 0 || n == 0 {
		return
	}
	if ts >= s.lo && ts < s.hi {
		s.counts[s.last][field] += n
		return
	}
	if s.width == 0 {
		s.width = int64(time.Second)
		s.first = ts / s.width
	}
	b := ts / s.width
	for {
		lo, hi := min(s.first, b), max(s.first+int64(len(s.counts))-1, b)
		if hi-lo < maxBuckets {
			break
		}
		s.double()
		b = ts / s.width
	}
	if b < s.first {
		grow := make([][5]uint64, s.first-b, int(s.first-b)+len(s.counts))
		s.counts = append(grow, s.counts...)
		s.first = b
	}
	for int64(len(s.counts)) <= b-s.first {
		s.counts = append(s.counts, [5]uint64{})
	}
	s.counts[b-s.first][field] += n
	s.lo, s.hi, s.last = b*s.width, (b+1)*s.width, int(b-s.first)
}

func (s *seriesAcc) double() {
	nw := s.width * 2
	nfirst := s.first * s.width / nw
	var out [][5]uint64
	for i, c := range s.counts {
		j := (s.first+int64(i))*s.width/nw - nfirst
		for int64(len(out)) <= j {
			out = append(out, [5]uint64{})
		}
		for f := range c {
			out[j][f] += c[f]
		}
	}
	s.width, s.first, s.counts = nw, nfirst, out
}

const (
	serAttempts = iota
	serUnanswered
	serSynRetrans
	serSynAckRetrans
	serResets
)

type groupKey struct {
	kind   IncidentKind
	server netip.AddrPort
	client netip.Addr // resets are kept per client until probers are known
}

// eq is k == *o, field by field: the compiler calls a function for the
// struct's ==, once per attempt in a flood.
func (k *groupKey) eq(o *groupKey) bool {
	return k.kind == o.kind && k.server.Port() == o.server.Port() && k.server.Addr() == o.server.Addr() && k.client == o.client
}

type proberKey struct {
	client netip.Addr
	server netip.AddrPort
}

type prober struct {
	n, rst, short, small uint64
	starts               []int64
}

const proberStarts = 4096

// What makes a connection look like a health check: short, and small each
// way (the prober watch and the live metrics' probe counter).
const (
	ProbeMaxDuration    = 2 * time.Second
	ProbeMaxClientBytes = 16384
	probeMaxServerBytes = 65536
)

type serverStats struct {
	buckets     map[int64]uint64 // attempts per minute, but for the latest minute's
	curMinute   int64            // the latest minute counted, not yet in buckets
	curN        uint64
	first, last int64 // first and last attempt start
	ts          TSFinding
	tsClients   clientSet  // clients offering the timestamp option
	tsSamples   []*Attempt // attempts whose offered timestamps were declined
}

// attempts returns the attempts counted in minute m.
func (ss *serverStats) attempts(m int64) uint64 {
	n := ss.buckets[m]
	if m == ss.curMinute {
		n += ss.curN
	}
	return n
}

// Incidents accumulates finished attempts into incidents.
type Incidents struct {
	cfg    IncidentConfig
	groups map[groupKey][]*Incident
	// The last server and group looked up: floods and bursts hit the same
	// ones attempt after attempt.
	lastServer netip.AddrPort
	lastSS     *serverStats
	lastKey    groupKey
	lastList   []*Incident
	lastOK     bool

	// WatchOpened makes the accumulator remember new incidents for Opened
	// (a live run shows them as they open).
	WatchOpened bool
	opened      []*Incident
	n           int
	Omitted     uint64 // incidents beyond MaxIncidents

	servers        map[netip.AddrPort]*serverStats
	ServersOmitted uint64
	probers        map[proberKey]*prober
	ProbersOmitted uint64
	series         seriesAcc
	RTT, TTFB      Histogram
	slowCount      uint64
}

// NewIncidents returns an empty accumulator.
func NewIncidents(cfg IncidentConfig) *Incidents {
	def := DefaultIncidentConfig()
	if cfg.Gap <= 0 {
		cfg.Gap = def.Gap
	}
	if cfg.Slow <= 0 {
		cfg.Slow = def.Slow
	}
	if cfg.MaxIncidents <= 0 {
		cfg.MaxIncidents = def.MaxIncidents
	}
	if cfg.Samples <= 0 {
		cfg.Samples = def.Samples
	}
	if cfg.MaxServers <= 0 {
		cfg.MaxServers = def.MaxServers
	}
	if cfg.MaxProbers <= 0 {
		cfg.MaxProbers = def.MaxProbers
	}
	return &Incidents{cfg: cfg, groups: map[groupKey][]*Incident{}, servers: map[netip.AddrPort]*serverStats{},
		probers: map[proberKey]*prober{}, RTT: newHistogram(), TTFB: newHistogram()}
}

// Add takes one finished attempt. It reports whether it keeps the attempt
// (as a sample): the caller must then not reuse it.
func (x *Incidents) Add(a *Attempt) bool {
	kept := x.count(a)
	keep := func(kind IncidentKind, client netip.Addr, at int64) *Incident {
		inc := x.place(groupKey{kind, a.Server, client}, at, a)
		if inc != nil && x.sample(inc, a) {
			kept = true
		}
		if inc != nil && a.Kernel.Watched {
			if inc.Kernel == nil {
				inc.Kernel = &IncidentKernel{}
			}
			inc.Kernel.add(a)
		}
		return inc
	}
	switch a.Outcome {
	case OutcomeUnanswered:
		if inc := keep(IncUnansweredSYN, netip.Addr{}, a.Start); inc != nil {
			if a.Syns > len(inc.Schedule) || (a.Syns == len(inc.Schedule) && a.ID < inc.order) {
				inc.Schedule = a.SynOffsets()
			}
		}
	case OutcomeAnsweredAfterRetransmit:
		if inc := keep(IncSYNRetransmit, netip.Addr{}, a.Start); inc != nil {
			inc.delays.add(a.ID, a.RetransmitDelay())
		}
	case OutcomeRefused:
		if inc := keep(IncRefused, netip.Addr{}, a.Start); inc != nil {
			inc.BySide[a.Refused]++
			if a.Refused == RefusedICMP && !inc.ICMPFrom.IsValid() {
				inc.ICMPFrom, inc.ICMPCodes = a.ICMPFrom, [2]uint8{a.ICMPType, a.ICMPCode}
			}
		}
	}
	if a.SynAcks > 1 && a.HasISN {
		keep(IncSYNACKRetransmit, netip.Addr{}, a.Start)
	}
	if s := a.rstAfterHS; s != SideNone {
		at := a.CloseTime
		if at == 0 {
			at = a.Start
		}
		if inc := keep(IncReset, a.Client.Addr(), at); inc != nil {
			inc.BySide[s]++
			inc.ByPhase[a.ClosePhase]++
		}
	}
	if d, ok := a.TTFB(); ok && d > x.cfg.Slow && a.HandshakeDone {
		x.slowCount++
		if inc := keep(IncSlowResponse, netip.Addr{}, a.FirstDataServer); inc != nil {
			inc.delays.add(a.ID, d)
		}
	}
	return kept
}

// count books the attempt in the traffic counts, the series, the
// distributions, the timestamp finding and the prober watch.
func (x *Incidents) count(a *Attempt) (kept bool) {
	x.series.add(a.Start, serAttempts, 1)
	if a.Outcome == OutcomeUnanswered {
		x.series.add(a.Start, serUnanswered, 1)
	}
	n := min(a.Syns, MaxSynTimes)
	for i := 1; i < n; i++ {
		x.series.add(a.SynTimes[i], serSynRetrans, 1)
	}
	if a.Syns > MaxSynTimes {
		x.series.add(a.SynTimes[MaxSynTimes-1], serSynRetrans, uint64(a.Syns-MaxSynTimes))
	}
	if a.SynAcks > 1 {
		x.series.add(a.FirstSynAck, serSynAckRetrans, uint64(a.SynAcks-1))
	}
	if a.firstRST != SideNone {
		x.series.add(a.CloseTime, serResets, 1)
	}
	if s, c, ok := a.HandshakeRTT(); ok {
		x.RTT.add(a.ID, s+c)
	}
	if d, ok := a.TTFB(); ok {
		x.TTFB.add(a.ID, d)
	}
	if !a.HasISN {
		return false
	}
	ss := x.lastSS
	if ss == nil || a.Server != x.lastServer {
		ss = x.servers[a.Server]
		x.lastServer, x.lastSS = a.Server, ss
	}
	if ss == nil {
		if len(x.servers) >= x.cfg.MaxServers {
			x.ServersOmitted++
		} else {
			ss = &serverStats{buckets: map[int64]uint64{}}
			x.servers[a.Server] = ss
			x.lastServer, x.lastSS = a.Server, ss
		}
	}
	if ss != nil {
		if m := a.Start / int64(time.Minute); m == ss.curMinute && ss.curN > 0 {
			ss.curN++
		} else {
			if ss.curN > 0 {
				ss.buckets[ss.curMinute] += ss.curN
			}
			ss.curMinute, ss.curN = m, 1
		}
		if ss.first == 0 || a.Start < ss.first {
			ss.first = a.Start
		}
		ss.last = max(ss.last, a.Start)
		t := &ss.ts
		if a.Kernel.Dropped() && strings.Contains(a.Kernel.DropReason, "PAWS") {
			t.PAWSRejects++
			if len(ss.tsSamples) < x.cfg.Samples {
				ss.tsSamples = append(ss.tsSamples, a)
				kept = true
			}
		}
		switch a.SynTS {
		case TriYes:
			t.SynsOffering++
			ss.tsClients.add(a.Client.Addr())
			switch a.SynAckTS {
			case TriYes:
				t.SynacksWithTS++
			case TriNo:
				t.SynacksWithoutTS++
				if len(ss.tsSamples) < x.cfg.Samples {
					ss.tsSamples = append(ss.tsSamples, a)
					kept = true
				}
			}
			if a.Outcome == OutcomeUnanswered {
				t.UnansweredWithTS++
			}
		case TriNo:
			t.SynsNotOffering++
			if a.Outcome == OutcomeUnanswered {
				t.UnansweredNoTS++
			}
		}
	}
	x.watchProber(a)
	return kept
}

// watchProber follows (client, server) pairs that could be a health checker:
// connections that complete, stay short and small, and end with the
// client's RST.
func (x *Incidents) watchProber(a *Attempt) {
	if !a.HandshakeDone {
		return
	}
	k := proberKey{a.Client.Addr(), a.Server}
	p := x.probers[k]
	if p == nil {
		if a.rstAfterHS != SideClient {
			return // only a client that resets can be a resetting prober
		}
		if len(x.probers) >= x.cfg.MaxProbers {
			x.ProbersOmitted++
			return
		}
		p = &prober{}
		x.probers[k] = p
	}
	p.n++
	if a.rstAfterHS == SideClient {
		p.rst++
	}
	if a.End-a.Start < int64(ProbeMaxDuration) {
		p.short++
	}
	if a.BytesClient < ProbeMaxClientBytes && a.BytesServer < probeMaxServerBytes {
		p.small++
	}
	if len(p.starts) < proberStarts {
		p.starts = append(p.starts, a.Start)
	}
}

// place finds or opens the incident of key that at falls into, merging
// incidents that the new attempt brings within the gap of each other.
func (x *Incidents) place(k groupKey, at int64, a *Attempt) *Incident {
	gap := int64(x.cfg.Gap)
	var list []*Incident
	same := x.lastOK && k.eq(&x.lastKey)
	if same {
		list = x.lastList
	} else {
		list = x.groups[k]
	}
	i := firstNotPast(list, at, gap)
	var inc *Incident
	if i < len(list) && list[i].Start-gap <= at {
		inc = list[i]
	} else {
		if x.n >= x.cfg.MaxIncidents {
			x.Omitted++
			return nil
		}
		x.n++
		inc = &Incident{Kind: k.kind, Server: k.server, Start: at, End: at, order: a.ID}
		list = slices.Insert(list, i, inc)
		if x.WatchOpened && k.kind != IncReset && len(x.opened) < maxOpened {
			x.opened = append(x.opened, inc)
		}
	}
	inc.Start, inc.End = min(inc.Start, at), max(inc.End, at)
	inc.Attempts++
	inc.clients.add(a.Client.Addr())
	inc.order = min(inc.order, a.ID)
	// The incident may now reach its neighbours.
	for i+1 < len(list) && list[i+1].Start-gap <= inc.End {
		x.mergeInto(inc, list[i+1])
		list = slices.Delete(list, i+1, i+2)
	}
	for i > 0 && list[i-1].End+gap >= inc.Start {
		x.mergeInto(inc, list[i-1])
		list = slices.Delete(list, i-1, i)
		i--
	}
	if !same || len(list) != len(x.lastList) || (len(list) > 0 && &list[0] != &x.lastList[0]) {
		x.groups[k] = list
		x.lastList = list
	}
	if !same {
		x.lastKey, x.lastOK = k, true
	}
	return inc
}

// firstNotPast is the first of list (sorted, each incident apart from the
// next by more than gap) whose end is within gap of at or after it:
// len(list) when at is past them all. Attempts end in about time order, so
// it is mostly the last one, found without the search.
func firstNotPast(list []*Incident, at, gap int64) int {
	if n := len(list); n > 0 && list[n-1].End+gap >= at && (n == 1 || list[n-2].End+gap < at) {
		return n - 1
	}
	return sort.Search(len(list), func(i int) bool { return list[i].End+gap >= at })
}

func (x *Incidents) mergeInto(dst, src *Incident) {
	x.n--
	dst.Start, dst.End = min(dst.Start, src.Start), max(dst.End, src.End)
	dst.Attempts += src.Attempts
	dst.clients.merge(&src.clients)
	dst.delays.merge(&src.delays)
	dst.order = min(dst.order, src.order)
	for i := range dst.BySide {
		dst.BySide[i] += src.BySide[i]
	}
	for i := range dst.ByPhase {
		dst.ByPhase[i] += src.ByPhase[i]
	}
	if len(src.Schedule) > len(dst.Schedule) {
		dst.Schedule = src.Schedule
	}
	if !dst.ICMPFrom.IsValid() {
		dst.ICMPFrom, dst.ICMPCodes = src.ICMPFrom, src.ICMPCodes
	}
	if src.Kernel != nil {
		if dst.Kernel == nil {
			dst.Kernel = &IncidentKernel{}
		}
		dst.Kernel.merge(src.Kernel)
	}
	dst.SamplesOmitted += src.SamplesOmitted
	for _, s := range src.Samples {
		x.sample(dst, s)
	}
}

// sample keeps a in inc's samples if it is among the earliest few.
func (x *Incidents) sample(inc *Incident, a *Attempt) bool {
	for _, s := range inc.Samples {
		if s == a {
			return true
		}
	}
	if len(inc.Samples) < x.cfg.Samples {
		inc.Samples = append(inc.Samples, a)
		return true
	}
	// Replace the latest sample if a starts before it.
	j := int(inc.latest) - 1
	if j < 0 {
		j = 0
		for i, s := range inc.Samples {
			if attemptAfter(s, inc.Samples[j]) {
				j = i
			}
		}
		inc.latest = int32(j + 1)
	}
	inc.SamplesOmitted++
	if attemptAfter(inc.Samples[j], a) {
		inc.Samples[j] = a
		inc.latest = 0
		return true
	}
	return false
}

func attemptAfter(a, b *Attempt) bool {
	if a.Start != b.Start {
		return a.Start > b.Start
	}
	return a.ID > b.ID
}

// Result is the finished incident analysis.
type Result struct {
	Slow      time.Duration // the slow-response threshold used
	Incidents []*Incident
	Omitted   uint64
	Verdict   []VerdictRow
	Series    Series
	RTT, TTFB Histogram
	// ServersOmitted counts attempts to servers beyond MaxServers (not in
	// the traffic shares or the timestamp finding); ProbersOmitted, pairs
	// beyond MaxProbers not watched for periodic probing.
	ServersOmitted, ProbersOmitted uint64
}

// VerdictCategory names where failed or slow attempts went.
type VerdictRow struct {
	Category  string
	Meaning   string
	Attempts  uint64
	Incidents []int
}

const maxOpened = 1024

// Opened returns the incidents opened since the last call (with
// WatchOpened set), at most 1,024 of them.
func (x *Incidents) Opened() []*Incident {
	out := x.opened
	x.opened = nil
	return out
}

// Closed returns the incidents that have been quiet long enough to call
// closed at capture time now: no attempt for Gap plus settle (settle covers
// attempts that finish late, after the tracker's idle timeouts). Each is
// returned once. Kinds decided only at the end (resets, which need the
// health checkers told apart, health checks and the timestamps finding)
// are not streamed. The numbers are final unless a straggler still joins.
func (x *Incidents) Closed(now int64, settle time.Duration) []*Incident {
	var out []*Incident
	limit := now - int64(x.cfg.Gap) - int64(settle)
	for k, list := range x.groups {
		if k.kind == IncReset {
			continue
		}
		for _, inc := range list {
			if inc.Reported || inc.End >= limit {
				continue
			}
			inc.Reported = true
			inc.Clients = min(inc.clients.count(), inc.Attempts)
			inc.DelayP50, inc.DelayMax = inc.delays.quantile(0.5), inc.delays.max
			inc.Samples = slices.Clone(inc.Samples)
			sort.Slice(inc.Samples, func(i, j int) bool { return attemptAfter(inc.Samples[j], inc.Samples[i]) })
			inc.latest = 0
			if ss := x.servers[inc.Server]; ss != nil {
				inc.ServerAttempts = 0
				for m := inc.Start / int64(time.Minute); m <= inc.End/int64(time.Minute); m++ {
					inc.ServerAttempts += ss.attempts(m)
				}
			}
			inc.ServerAttempts = max(inc.ServerAttempts, inc.Attempts)
			out = append(out, inc)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Start < out[j].Start || (out[i].Start == out[j].Start && out[i].Kind < out[j].Kind)
	})
	return out
}

// Finish builds the incidents (with health checkers told apart from real
// resets), numbers them in time order and computes the verdict.
func (x *Incidents) Finish(sum *Summary) *Result {
	res := &Result{Slow: x.cfg.Slow, Omitted: x.Omitted, RTT: x.RTT, TTFB: x.TTFB,
		ServersOmitted: x.ServersOmitted, ProbersOmitted: x.ProbersOmitted}
	probers := x.detectProbers()
	var all []*Incident
	probeResets := uint64(0)
	resetGroups := map[netip.AddrPort][]*Incident{}
	for k, list := range x.groups {
		if k.kind != IncReset {
			all = append(all, list...)
			continue
		}
		if pr, isProber := probers[proberKey{k.client, k.server}]; isProber {
			for _, inc := range list {
				probeResets += inc.Attempts
				pr.samples = append(pr.samples, inc.Samples...) // the prober's resets are its samples
				if inc.Kernel != nil {
					if pr.kernel == nil {
						pr.kernel = &IncidentKernel{}
					}
					pr.kernel.merge(inc.Kernel)
				}
			}
			probers[proberKey{k.client, k.server}] = pr
			continue
		}
		resetGroups[k.server] = append(resetGroups[k.server], list...)
	}
	// Real resets: merge the per-client groups of each server by time.
	for _, list := range resetGroups {
		sort.Slice(list, func(i, j int) bool { return list[i].Start < list[j].Start })
		var cur *Incident
		for _, inc := range list {
			if cur != nil && inc.Start-int64(x.cfg.Gap) <= cur.End {
				x.n++ // mergeInto counts one incident fewer
				x.mergeInto(cur, inc)
				continue
			}
			cur = inc
			all = append(all, cur)
		}
	}
	for k, p := range probers {
		inc := &Incident{Kind: IncHealthcheckRST, Server: k.server, Prober: k.client, Attempts: p.n,
			Start: p.starts[0], End: p.starts[len(p.starts)-1], Interval: p.interval, Jitter: p.jitter, Kernel: p.kernel}
		inc.clients.add(k.client)
		sort.Slice(p.samples, func(i, j int) bool { return attemptAfter(p.samples[j], p.samples[i]) })
		if len(p.samples) > x.cfg.Samples {
			inc.SamplesOmitted = uint64(len(p.samples) - x.cfg.Samples)
			p.samples = p.samples[:x.cfg.Samples]
		}
		inc.Samples = p.samples
		all = append(all, inc)
	}
	all = append(all, x.timestampFindings()...)
	for _, inc := range all {
		inc.Clients = min(inc.clients.count(), inc.Attempts) // the estimate may overshoot
		inc.DelayP50, inc.DelayMax = inc.delays.quantile(0.5), inc.delays.max
		sort.Slice(inc.Samples, func(i, j int) bool { return attemptAfter(inc.Samples[j], inc.Samples[i]) })
		inc.latest = 0
		if ss := x.servers[inc.Server]; ss != nil {
			for m := inc.Start / int64(time.Minute); m <= inc.End/int64(time.Minute); m++ {
				inc.ServerAttempts += ss.attempts(m)
			}
		}
		inc.ServerAttempts = max(inc.ServerAttempts, inc.Attempts)
	}
	sort.Slice(all, func(i, j int) bool {
		a, b := all[i], all[j]
		if a.Start != b.Start {
			return a.Start < b.Start
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Server.String() < b.Server.String()
	})
	for i, inc := range all {
		inc.ID = i + 1
	}
	res.Incidents = all
	res.Series = x.series.result()
	res.Verdict = verdict(sum, all, probeResets, x.slowCount)
	return res
}

func (s *seriesAcc) result() Series {
	out := Series{Width: time.Duration(s.width), Start: s.first * s.width}
	for _, c := range s.counts {
		out.Attempts = append(out.Attempts, c[serAttempts])
		out.Unanswered = append(out.Unanswered, c[serUnanswered])
		out.SynRetransmits = append(out.SynRetransmits, c[serSynRetrans])
		out.SynAckRetransmits = append(out.SynAckRetransmits, c[serSynAckRetrans])
		out.Resets = append(out.Resets, c[serResets])
	}
	return out
}

type proberResult struct {
	interval, jitter time.Duration
	n                uint64
	starts           []int64
	samples          []*Attempt
	kernel           *IncidentKernel
}

// detectProbers decides which watched pairs are periodic health checkers:
// at least five short, small connections, nearly all ended by the client's
// RST, started at a regular interval.
func (x *Incidents) detectProbers() map[proberKey]proberResult {
	out := map[proberKey]proberResult{}
	for k, p := range x.probers {
		if p.n < 5 || p.rst*10 < p.n*8 || p.short*10 < p.n*8 || p.small*10 < p.n*8 || len(p.starts) < 5 {
			continue
		}
		st := slices.Clone(p.starts)
		slices.Sort(st)
		gaps := make([]float64, len(st)-1)
		for i := range gaps {
			gaps[i] = float64(st[i+1] - st[i])
		}
		med := medianF(gaps)
		if med <= 0 {
			continue
		}
		dev := make([]float64, len(gaps))
		for i, g := range gaps {
			dev[i] = math.Abs(g - med)
		}
		mad := medianF(dev)
		if mad > 0.2*med { // not regular enough to be a timer
			continue
		}
		out[k] = proberResult{interval: time.Duration(med), jitter: time.Duration(mad), n: p.n, starts: st}
	}
	return out
}

func medianF(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// timestampFindings reports servers that decline the timestamp option clients
// offer, and servers whose unanswered rate differs with the option.
func (x *Incidents) timestampFindings() []*Incident {
	var out []*Incident
	for srv, ss := range x.servers {
		t := ss.ts
		answered := t.SynacksWithTS + t.SynacksWithoutTS
		t.Declines = answered >= 1 && t.SynacksWithoutTS*10 >= answered*9
		var rateTS, rateNo float64
		if t.SynsOffering > 0 {
			rateTS = float64(t.UnansweredWithTS) / float64(t.SynsOffering)
		}
		if t.SynsNotOffering > 0 {
			rateNo = float64(t.UnansweredNoTS) / float64(t.SynsNotOffering)
		}
		if t.SynsOffering >= 10 && t.SynsNotOffering >= 10 && t.UnansweredWithTS+t.UnansweredNoTS >= 5 {
			hi, lo := max(rateTS, rateNo), min(rateTS, rateNo)
			t.RateDiffers = hi >= 0.05 && hi >= 3*lo
		}
		if !t.Declines && !t.RateDiffers && t.PAWSRejects == 0 {
			continue
		}
		tt := t
		inc := &Incident{Kind: IncTimestamps, Server: srv, TS: &tt, Start: ss.first, End: ss.last,
			Attempts: t.SynsOffering + t.SynsNotOffering, clients: ss.tsClients}
		if t.Declines || t.PAWSRejects > 0 {
			inc.Samples = ss.tsSamples
		}
		out = append(out, inc)
	}
	return out
}

// verdict says where failed or slow attempts went. Its counts agree with the
// summary: every row is a count the summary also has (or a split of one).
func verdict(sum *Summary, incs []*Incident, probeResets, slow uint64) []VerdictRow {
	ids := func(kinds ...IncidentKind) []int {
		out := []int{}
		for _, inc := range incs {
			if slices.Contains(kinds, inc.Kind) {
				out = append(out, inc.ID)
			}
		}
		return out
	}
	resets := sum.ResetsByClient + sum.ResetsByServer
	return []VerdictRow{
		{"lost_in_handshake", "SYNs never answered: dropped on the way to the server, by its firewall or kernel, or the SYN-ACK lost on the way back", sum.Outcomes[OutcomeUnanswered], ids(IncUnansweredSYN)},
		{"answered_late", "answered only after SYN retransmits: the first SYN(s) were lost or dropped (each retransmit adds 1 s or more)", sum.Outcomes[OutcomeAnsweredAfterRetransmit], ids(IncSYNRetransmit)},
		{"refused", "refused by a RST (nothing listening, or a reject rule) or an ICMP unreachable", sum.Outcomes[OutcomeRefused], ids(IncRefused)},
		{"abandoned", "the server answered but the client never completed the handshake", sum.Outcomes[OutcomeAbandoned], ids(IncSYNACKRetransmit)},
		{"reset", "connections reset after the handshake (health checks excluded)", resets - min(resets, probeResets), ids(IncReset)},
		{"slow_application", "handshake fine, first response byte late: the application, not the network", slow, ids(IncSlowResponse)},
		{"healthcheck_rst", "periodic probes that close with RST instead of FIN: notable, not a fault", probeResets, ids(IncHealthcheckRST)},
	}
}
