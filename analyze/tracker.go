package analyze

import (
	"encoding/binary"
	"net/netip"
	"time"
)

// Config holds the tracker's timeouts and bounds. All times are capture
// times: a replayed capture gives the same answer on every run.
type Config struct {
	// SynTimeout is how long a SYN (or SYN-ACK) must stay unanswered, with
	// the capture still running, before the attempt counts as unanswered
	// (or abandoned) rather than undetermined.
	SynTimeout time.Duration
	// HandshakeIdle ends an attempt still in its handshake after this much
	// silence. It must exceed the longest gap between SYN retransmits
	// (TCP's maximum RTO is 120 s).
	HandshakeIdle time.Duration
	// EstablishedIdle ends an open connection after this much silence.
	EstablishedIdle time.Duration
	// ClosedLinger keeps a closed connection this long to absorb stragglers
	// (FIN retransmits back off to a minute and more).
	ClosedLinger time.Duration
	// DupWindow: an identical copy of the previous packet in the same
	// direction within this time is a capture duplicate (-i any, mirrors),
	// not a retransmission.
	DupWindow time.Duration
	// MaxFlows caps the flows tracked at once; the least recently active
	// is finished early (and counted as evicted) to make room.
	MaxFlows int
	// MaxSYNOnly caps the flows that have seen only SYNs (about 200 bytes
	// each): it must hold the SYNs of SynTimeout at the highest SYN rate to
	// be judged, or they are judged early (undetermined) and counted.
	MaxSYNOnly int
}

// DefaultConfig returns the defaults documented in README.md.
func DefaultConfig() Config {
	return Config{
		SynTimeout:      3 * time.Second,
		HandshakeIdle:   130 * time.Second,
		EstablishedIdle: time.Hour,
		ClosedLinger:    2 * time.Minute,
		DupWindow:       5 * time.Millisecond,
		MaxFlows:        1 << 18,
		MaxSYNOnly:      1 << 19,
	}
}

// flowKey identifies a flow regardless of direction: the lower (addr, port)
// endpoint is side a. VLAN ids are part of it, so copies of one connection
// on two VLANs (a mirror port) are two flows, as Zeek counts them.
type flowKey struct {
	a, b   [16]byte
	pa, pb uint16
	vlan   [2]uint16
	nvlan  uint8
	v6     bool
}

func makeKey(d *Decoded) (k flowKey, dir uint8) {
	dir = keyDir(d)
	fillKey(&k, d, dir)
	return k, dir
}

// keyDir is the packet's side of its flow key: 0 when its source is the
// lower endpoint (side a).
func keyDir(d *Decoded) uint8 {
	if compareEndpoint(&d.Src, d.SPort, &d.Dst, d.DPort) <= 0 {
		return 0
	}
	return 1
}

// fillKey sets *k to the packet's flow key (dir from keyDir), field by
// field.
func fillKey(k *flowKey, d *Decoded, dir uint8) {
	k.v6 = d.IPv6
	k.nvlan = min(d.NVLAN, 2)
	k.vlan = d.VLAN
	if dir == 0 {
		k.a, k.pa, k.b, k.pb = d.Src, d.SPort, d.Dst, d.DPort
	} else {
		k.a, k.pa, k.b, k.pb = d.Dst, d.DPort, d.Src, d.SPort
	}
}

// isKey reports whether k is the packet's flow key (dir from keyDir),
// without building that key.
func isKey(k *flowKey, d *Decoded, dir uint8) bool {
	if k.v6 != d.IPv6 || k.vlan != d.VLAN || k.nvlan != min(d.NVLAN, 2) {
		return false
	}
	if dir == 0 {
		return k.pa == d.SPort && k.pb == d.DPort && k.a == d.Src && k.b == d.Dst
	}
	return k.pa == d.DPort && k.pb == d.SPort && k.a == d.Dst && k.b == d.Src
}

func compareEndpoint(a *[16]byte, pa uint16, b *[16]byte, pb uint16) int {
	// Bytewise order: the addresses as big-endian numbers.
	if x, y := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(b[:8]); x != y {
		if x < y {
			return -1
		}
		return 1
	}
	if x, y := binary.BigEndian.Uint64(a[8:]), binary.BigEndian.Uint64(b[8:]); x != y {
		if x < y {
			return -1
		}
		return 1
	}
	switch {
	case pa < pb:
		return -1
	case pa > pb:
		return 1
	}
	return 0
}

// seqInWindow reports whether ack acknowledges at least want and not
// implausibly far beyond it.
func seqInWindow(ack, want uint32) bool { return ack-want < maxSeqWindow }

type pktSig struct {
	t     int64
	seq   uint32
	ack   uint32
	ipid  uint32
	tsval uint32
	plen  uint32
	win   uint16
	flags uint8
	valid bool
}

const (
	listHandshake = iota
	listOpen
	listClosed
	numLists
)

type flow struct {
	key        flowKey
	prev, next *flow
	list       uint8
	clientDir  uint8 // key side (0 = a, 1 = b) of the client
	last       int64 // capture time of the last packet (monotonic)
	queued     int64 // when it was (re)queued on its list: lists are sorted by it
	at         *Attempt
	sig        [2][2]pktSig // last SYN-flagged and last other packet per key side, for duplicate detection
	srvSYN     bool         // the server side sent a SYN (simultaneous open)
	srvSYNSeq  uint32
	cliSYNACK  bool // the client side sent a SYN-ACK (simultaneous open)
	cliSAckSeq uint32
	synsAtAns  int                   // client SYNs seen when the first answer came
	lastHS     int64                 // last SYN or SYN-ACK
	synackAck  uint32                // the first SYN-ACK's acknowledgment number
	srvISNs    [maxServerISNs]uint32 // server ISNs seen in SYN-ACKs
	nSrvISN    int
	alias      flowKey // the server side's key when its VLAN tags differ
	hasAlias   bool
	staleAck   uint32 // acknowledgment number of the server's last stale ACK
	hasStale   bool
}

// evNote is what a packet's timeline event says: the side that sent it
// and why it is worth recording (NoteNone: it is not).
type evNote struct {
	Dir  Side
	Note EventNote
}

// flowTable finds flows by key: open addressing with linear probing on
// keyHash, and backward-shift deletion. A flow is in it under its key, and
// under its alias when it has one. (Go's map hashed the 42-byte key on every
// packet; here the hash comes with the packet.)
type flowTable struct {
	slots []flowSlot
	n     int
}

type flowSlot struct {
	h     uint32 // keyHash; 0: empty
	alias bool   // the slot holds f under f.alias
	f     *flow
}

func (ft *flowTable) init() { ft.slots = make([]flowSlot, 1024) }

func (s *flowSlot) key() *flowKey {
	if s.alias {
		return &s.f.alias
	}
	return &s.f.key
}

func (ft *flowTable) get(k *flowKey, h uint32) *flow {
	mask := len(ft.slots) - 1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		s := &ft.slots[i]
		if s.h == h && *s.key() == *k {
			return s.f
		}
		if s.h == 0 {
			return nil
		}
	}
}

// getPacket finds the flow of packet d (dir from keyDir, h from
// packetHash).
func (ft *flowTable) getPacket(d *Decoded, dir uint8, h uint32) *flow {
	mask := len(ft.slots) - 1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		s := &ft.slots[i]
		if s.h == h && isKey(s.key(), d, dir) {
			return s.f
		}
		if s.h == 0 {
			return nil
		}
	}
}

// put adds f (under its alias when alias is set); the key must not be in
// the table.
func (ft *flowTable) put(h uint32, f *flow, alias bool) {
	if 2*(ft.n+1) > len(ft.slots) {
		old := ft.slots
		ft.slots = make([]flowSlot, 2*len(old))
		for _, s := range old {
			if s.h != 0 {
				ft.insert(s)
			}
		}
	}
	ft.insert(flowSlot{h: h, alias: alias, f: f})
	ft.n++
}

func (ft *flowTable) insert(s flowSlot) {
	mask := len(ft.slots) - 1
	i := int(s.h) & mask
	for ft.slots[i].h != 0 {
		i = (i + 1) & mask
	}
	ft.slots[i] = s
}

// shiftsBack is backward-shift deletion's test in a linear-probing table
// (flowTable): the entry at j, whose home slot is home, moves back
// into the hole unless home lies cyclically in (hole, j].
func shiftsBack(hole, j, home int) bool {
	if j > hole {
		return home <= hole || home > j
	}
	return home <= hole && home > j
}

// del removes key k (hash h), if present.
func (ft *flowTable) del(k *flowKey, h uint32) {
	mask := len(ft.slots) - 1
	i := int(h) & mask
	for {
		s := &ft.slots[i]
		if s.h == 0 {
			return
		}
		if s.h == h && *s.key() == *k {
			break
		}
		i = (i + 1) & mask
	}
	ft.slots[i] = flowSlot{}
	ft.n--
	for j := (i + 1) & mask; ft.slots[j].h != 0; j = (j + 1) & mask {
		if shiftsBack(i, j, int(ft.slots[j].h)&mask) {
			ft.slots[i], ft.slots[j] = ft.slots[j], flowSlot{}
			i = j
		}
	}
}

type lru struct{ head, tail *flow }

func (l *lru) remove(f *flow) {
	if f.prev != nil {
		f.prev.next = f.next
	} else {
		l.head = f.next
	}
	if f.next != nil {
		f.next.prev = f.prev
	} else {
		l.tail = f.prev
	}
	f.prev, f.next = nil, nil
}

func (l *lru) pushBack(f *flow) {
	f.prev = l.tail
	f.next = nil
	if l.tail != nil {
		l.tail.next = f
	} else {
		l.head = f
	}
	l.tail = f
}

// Tracker follows connection attempts through their handshakes. It is not
// safe for concurrent use; shard by flow to use more cores.
type Tracker struct {
	cfg   Config
	flows flowTable // by full key, and by alias (answerOnOtherVLAN)
	// byTuple finds a flow by its 4-tuple alone, for captures where the two
	// directions carry different VLAN tags (a router on a trunk, one side
	// tagged): an answer on another VLAN joins the attempt it answers.
	byTuple map[flowKey]*flow
	// vlanSeen: a VLAN-tagged flow has been seen. byTuple is kept from then
	// on only: until then no two flows differ in their tags alone and no
	// answer can come on another VLAN, and the map cost a lookup and an
	// update per connection (hashing a 42-byte key).
	vlanSeen bool
	lists    [numLists]lru
	idle     [numLists]int64
	now      int64 // the latest capture time seen
	start    int64
	sum      *Summary
	emit     func(*Attempt) bool
	spare    []*Attempt // finished attempts nobody kept, reused to spare the GC
	embryos  *embryos   // SYN-only flows (embryo.go)
	scratch  flow       // a flow that is never in the table, to finish embryos
	free     []*flow    // finished flows, for reuse (at most maxSpare)
	em       *emitter   // finished attempts are emitted in a goroutine of their own (EmitAsync)
	// emitAsync: start em when the SYN-only table overflows.
	emitAsync bool
}

// NewTracker returns a tracker that calls emit with every finished attempt.
// emit returns whether it keeps the attempt: one it does not keep is reused
// for a later attempt, so most attempts cost no allocation. emit must not
// change an attempt it does not keep, but for its Kernel (the Analyzer's
// emit sets it; see clearBuilt).
func NewTracker(cfg Config, sum *Summary, emit func(*Attempt) bool) *Tracker {
	def := DefaultConfig()
	if cfg.SynTimeout <= 0 {
		cfg.SynTimeout = def.SynTimeout
	}
	if cfg.HandshakeIdle <= 0 {
		cfg.HandshakeIdle = def.HandshakeIdle
	}
	if cfg.EstablishedIdle <= 0 {
		cfg.EstablishedIdle = def.EstablishedIdle
	}
	if cfg.ClosedLinger <= 0 {
		cfg.ClosedLinger = def.ClosedLinger
	}
	if cfg.DupWindow < 0 {
		cfg.DupWindow = 0
	}
	if cfg.MaxFlows <= 0 {
		cfg.MaxFlows = def.MaxFlows
	}
	if cfg.MaxSYNOnly <= 0 {
		cfg.MaxSYNOnly = def.MaxSYNOnly
	}
	t := &Tracker{cfg: cfg, byTuple: make(map[flowKey]*flow, 1024), sum: sum, emit: emit}
	t.flows.init()
	t.embryos = newEmbryos(cfg.MaxSYNOnly)
	t.idle[listHandshake] = int64(cfg.HandshakeIdle)
	t.idle[listOpen] = int64(cfg.EstablishedIdle)
	t.idle[listClosed] = int64(cfg.ClosedLinger)
	return t
}

// Active is the number of flows tracked now.
func (t *Tracker) Active() int { return t.flows.n + t.embryos.len() }

// advance moves the tracker's clock (the latest capture time seen) and ends
// flows that have been idle too long. Out-of-order timestamps never move it
// back.
func (t *Tracker) advance(ts int64) {
	if t.start == 0 || ts < t.start {
		t.start = ts
	}
	if ts <= t.now {
		return
	}
	t.now = ts
	for i := range t.lists {
		l := &t.lists[i]
		for h := l.head; h != nil && t.now-h.queued > t.idle[i]; h = l.head {
			if t.idleTooLong(h) {
				t.finishFlow(h, false)
				continue
			}
			// Active since it was queued: requeue it behind the others.
			l.remove(h)
			h.queued = t.now
			l.pushBack(h)
		}
	}
	t.expireEmbryos()
}

// touch records activity on f. Only a change of list moves it: the lists
// are sorted by queueing time, and expiry gives a flow seen since it was
// queued a second chance (advance), so a packet costs no pointer chasing.
func (t *Tracker) touch(f *flow, list uint8) {
	f.last = t.now
	if f.list == list {
		return
	}
	t.lists[f.list].remove(f)
	f.list, f.queued = list, t.now
	t.lists[list].pushBack(f)
}

// idleTooLong reports whether f has been silent past its list's timeout: it
// should have expired, whether or not the lazy expiry has reached it yet.
func (t *Tracker) idleTooLong(f *flow) bool { return t.now-f.last > t.idle[f.list] }

func (t *Tracker) newFlow(k flowKey, h uint32) *flow {
	if t.flows.n >= t.cfg.MaxFlows {
		t.evictOldest()
	}
	var f *flow
	if n := len(t.free); n > 0 {
		f = t.free[n-1]
		t.free = t.free[:n-1]
		*f = flow{}
	} else {
		f = &flow{}
	}
	f.key = k
	f.last, f.queued = t.now, t.now
	f.list = listHandshake
	t.lists[listHandshake].pushBack(f)
	t.flows.put(h, f, false)
	if !t.vlanSeen && k.nvlan > 0 {
		t.seeVLAN()
	}
	if t.vlanSeen {
		t.byTuple[untagged(k)] = f
	}
	return f
}

// seeVLAN starts keeping byTuple, with every flow there is (none of them
// has an alias yet, and their untagged keys are all different).
func (t *Tracker) seeVLAN() {
	t.vlanSeen = true
	for i := range t.flows.slots {
		if s := &t.flows.slots[i]; s.h != 0 && !s.alias {
			t.byTuple[untagged(s.f.key)] = s.f
		}
	}
}

func untagged(k flowKey) flowKey {
	k.vlan, k.nvlan = [2]uint16{}, 0
	return k
}

// answerOnOtherVLAN looks for the attempt a packet answers when its VLAN tags
// differ from the SYN's: the server side must not have been seen yet, and the
// packet must acknowledge the client's ISN. It aliases the packet's key to
// that flow.
func (t *Tracker) answerOnOtherVLAN(k flowKey, h uint32, dir uint8, d *Decoded) *flow {
	if !t.vlanSeen {
		if k.nvlan == 0 {
			return nil // no flow differs from k in its tags alone
		}
		t.seeVLAN()
	}
	f := t.byTuple[untagged(k)]
	if f == nil || f.hasAlias || f.key == k || f.at == nil || dir == f.clientDir {
		return nil
	}
	a := f.at
	if !a.HasISN || a.PktsServer > 0 || a.SynAcks > 0 || d.Flags&FlagACK == 0 || d.Flags&FlagRST != 0 {
		return nil
	}
	if d.Ack-(a.ISN+1) >= maxSeqWindow {
		return nil
	}
	f.alias, f.hasAlias = k, true
	t.flows.put(h, f, true)
	return f
}

// evictOldest makes room. A closed connection goes first: its verdict is
// final, so forgetting it early loses nothing and is not counted. Otherwise
// the attempt queued longest ago (about the least recently active: lists are
// requeued lazily) is judged now and counted as evicted.
func (t *Tracker) evictOldest() {
	if h := t.lists[listClosed].head; h != nil {
		t.finishFlow(h, false)
		return
	}
	var victim *flow
	for i := range t.lists {
		if h := t.lists[i].head; h != nil && (victim == nil || h.queued < victim.queued) {
			victim = h
		}
	}
	if victim != nil {
		t.sum.Evicted++
		t.finishFlow(victim, true)
	}
}

// finishFlow emits the flow's attempt and forgets the flow.
func (t *Tracker) finishFlow(f *flow, evicted bool) {
	t.lists[f.list].remove(f)
	h := keyHash(&f.key) // the alias differs in its VLAN tags only: the same hash
	t.flows.del(&f.key, h)
	if f.hasAlias {
		t.flows.del(&f.alias, h)
	}
	if t.vlanSeen {
		if tk := untagged(f.key); t.byTuple[tk] == f {
			delete(t.byTuple, tk)
		}
	}
	if f.at != nil {
		f.at.Evicted = evicted
		t.finishAttempt(f, t.now)
	}
	if len(t.free) < maxSpare {
		t.free = append(t.free, f)
	}
}

// Flush finishes every attempt still tracked, judging them at the capture's
// end time.
func (t *Tracker) Flush(end int64) {
	if end > t.now {
		t.now = end
	}
	for i := range t.lists {
		for t.lists[i].head != nil {
			t.finishFlow(t.lists[i].head, false)
		}
	}
	if t.em != nil {
		// The emitting goroutine builds them; the tracker only hands them
		// over, in order, and empties the index at once.
		t.embryos.drain(func(i int32) { t.em.embryo(i, t.embryos.at(i), t.now, false, t.embryos) })
		return
	}
	for i := t.embryos.head(); i >= 0; i = t.embryos.head() {
		t.finishEmbryo(i, false)
	}
}

// newAttempt starts an attempt on f; clientDir is the key side of the client.
func (t *Tracker) newAttempt(f *flow, clientDir uint8, ts int64, ref PacketRef) *Attempt {
	if f.at != nil {
		t.finishAttempt(f, t.now)
	}
	a := blankAttempt(&t.spare)
	startAttempt(a, f, clientDir, ts, ref)
	t.sum.Attempts++
	a.ID = t.sum.Attempts
	return a
}

// blankAttempt returns a zeroed attempt, one from spare if there is one.
func blankAttempt(spare *[]*Attempt) *Attempt {
	if n := len(*spare); n > 0 {
		a := (*spare)[n-1]
		*spare = (*spare)[:n-1]
		tl := a.Timeline[:0]
		*a = Attempt{Timeline: tl}
		return a
	}
	return &Attempt{Timeline: make([]Event, 0, 4)}
}

// startAttempt makes a, blank, the attempt on f (no id yet).
func startAttempt(a *Attempt, f *flow, clientDir uint8, ts int64, ref PacketRef) {
	setEnds(a, &f.key, clientDir, ts, ref)
	attach(f, a, clientDir)
}

// setEnds gives a, blank, its ends (clientDir is the key side of the
// client), its first packet (at ts) and no answered SYN yet.
func setEnds(a *Attempt, k *flowKey, clientDir uint8, ts int64, ref PacketRef) {
	a.Start, a.End, a.First, a.AnsweredSyn = ts, ts, ref, noAnswerIdx
	ca, cp, sa, sp := &k.a, k.pa, &k.b, k.pb
	if clientDir == 1 {
		ca, cp, sa, sp = sa, sp, ca, cp
	}
	a.Client = netip.AddrPortFrom(addrOf(k.v6, ca), cp)
	a.Server = netip.AddrPortFrom(addrOf(k.v6, sa), sp)
	a.NVLAN = k.nvlan
	a.VLAN = k.vlan
}

// attach makes a f's attempt, with no handshake seen yet.
func attach(f *flow, a *Attempt, clientDir uint8) {
	f.at = a
	f.clientDir = clientDir
	f.srvSYN, f.cliSYNACK = false, false
	f.synsAtAns = 0
	f.lastHS = 0
	f.hasStale = false
}

// maxSpare bounds the attempts, and the finished flows, kept for reuse.
const maxSpare = 1024

// finishAttempt decides the attempt's outcome and hands it to emit.
func (t *Tracker) finishAttempt(f *flow, now int64) {
	a := f.at
	f.at = nil
	conclude(a, f, now, t.cfg.SynTimeout, t.sum)
	t.hand(a)
}

// hand passes a judged attempt on: to the emitting goroutine while it runs,
// else to emit.
func (t *Tracker) hand(a *Attempt) {
	if t.em != nil {
		t.em.attempt(a, t.embryos)
		return
	}
	emitOrKeep(t.emit, &t.spare, a)
}

// emitOrKeep hands a to emit, and keeps it in spare for reuse when emit
// does not keep it.
func emitOrKeep(emit func(*Attempt) bool, spare *[]*Attempt, a *Attempt) {
	if (emit == nil || !emit(a)) && len(*spare) < maxSpare {
		*spare = append(*spare, a)
	}
}

// conclude judges a finished attempt and counts its outcome in sum.
func conclude(a *Attempt, f *flow, now int64, synTimeout time.Duration, sum *Summary) {
	a.Outcome = judge(a, f, now, synTimeout)
	a.finishClose()
	sum.Outcomes[a.Outcome]++
	if s := a.rstAfterHS; s != SideNone {
		if s == SideClient {
			sum.ResetsByClient++
		} else {
			sum.ResetsByServer++
		}
	}
}

func judge(a *Attempt, f *flow, now int64, synTimeout time.Duration) Outcome {
	wait := int64(synTimeout)
	switch {
	case !a.HasISN:
		return OutcomePartial
	case a.HandshakeDone:
		if f.synsAtAns > 1 {
			return OutcomeAnsweredAfterRetransmit
		}
		return OutcomeEstablished
	case a.Refused != RefusedNone:
		return OutcomeRefused
	case a.SynAcks > 0 || f.srvSYN:
		// A single SYN-ACK just before the end of the capture may still be
		// acknowledged; one the server had to retransmit already waited
		// a full RTO in vain.
		if a.SynAcks <= 1 && a.firstRST == SideNone && a.firstFIN == SideNone && now-f.lastHS < wait {
			return OutcomeUndetermined
		}
		return OutcomeAbandoned
	case a.rstBy[SideClient] > 0 || a.finBy[SideClient]:
		return OutcomeUnanswered // the client gave up explicitly
	case now-f.lastHS >= wait:
		return OutcomeUnanswered
	}
	return OutcomeUndetermined
}

func (a *Attempt) phase() Phase {
	switch {
	case !a.HandshakeDone:
		return PhaseHandshake
	case a.FirstDataServer != 0:
		return PhaseAfterResponse
	case a.FirstDataClient != 0:
		return PhaseAfterRequest
	}
	return PhaseBeforeData
}

func (a *Attempt) finishClose() {
	// A close is what ended the connection: an abort (RST) outranks an
	// orderly FIN that preceded it.
	switch {
	case a.firstRST != SideNone:
		a.Close, a.ClosedBy = CloseRST, a.firstRST
	case a.firstFIN != SideNone:
		a.Close, a.ClosedBy = CloseFIN, a.firstFIN
	}
}

// recordNew adds an event to the timeline for the caller to fill in place,
// or returns nil when the timeline is full (counted in Truncated). An event
// built on the stack and copied in would be read back across the stores
// that built it, a store-forwarding stall: in a flood, once per attempt.
func (a *Attempt) recordNew() *Event {
	n := len(a.Timeline)
	if n >= MaxTimeline {
		a.Truncated++
		return nil
	}
	if n < cap(a.Timeline) {
		a.Timeline = a.Timeline[:n+1]
		a.Timeline[n] = Event{}
	} else {
		a.Timeline = append(a.Timeline, Event{})
	}
	return &a.Timeline[n]
}

// Packet is one frame handed to the analyzer.
type Packet struct {
	Data     []byte
	Time     int64 // ns since the Unix epoch
	OrigLen  int
	LinkType uint16
	Ref      PacketRef
}

// track handles one decoded TCP segment or ICMP error.
func (t *Tracker) track(d *Decoded, ts int64, ref PacketRef) {
	if d.Kind == KindICMPUnreach {
		t.advance(ts)
		t.icmp(d, ts, ref)
		return
	}
	dir := keyDir(d)
	t.trackTCP(d, dir, packetHash(d, dir), ts, ref)
}

// trackTCP handles a TCP segment whose side of its flow key (dir, from
// keyDir) and key hash (h, from packetHash) are known: a Batch works them
// out while decoding. The key itself is built only for a flow not in the
// table.
func (t *Tracker) trackTCP(d *Decoded, dir uint8, h uint32, ts int64, ref PacketRef) {
	t.advance(ts)
	f := t.flows.getPacket(d, dir, h)
	if f != nil && t.idleTooLong(f) {
		t.finishFlow(f, false) // as if expiry had reached it already
		f = nil
	}
	flags := d.Flags
	syn, ack, rst, fin := flags&FlagSYN != 0, flags&FlagACK != 0, flags&FlagRST != 0, flags&FlagFIN != 0

	// Handshake packets are counted as frames in the capture (as tshark
	// counts them); duplicates are then set aside before tracking.
	if syn && !ack {
		t.sum.SynPackets++
		if d.Opts.HasTS {
			t.sum.SynWithTS++
		}
	} else if syn {
		t.sum.SynAckPackets++
		if d.Opts.HasTS {
			t.sum.SynAckWithTS++
		}
	}
	if f == nil {
		var k flowKey
		fillKey(&k, d, dir)
		// A lone SYN waits in the compact embryo table; anything else on
		// the 4-tuple hatches the embryo into a full flow first.
		if pureSYN(d) && t.embryoSYN(&k, h, dir, d, ts, ref) {
			return
		}
		if t.hatchEmbryo(&k, h) {
			f = t.flows.get(&k, h)
		}
		if f == nil {
			f = t.answerOnOtherVLAN(k, h, dir, d)
		}
		if f == nil {
			f = t.newFlow(k, h)
		}
	}
	if t.duplicate(f, dir, d, ts) {
		t.sum.Duplicates++
		return
	}
	a := f.at
	if a == nil && !syn {
		// No handshake seen: the sender is the client, unless it talks
		// from a well-known port to an ephemeral one.
		cdir := dir
		if likelyServerPort(d.SPort) && !likelyServerPort(d.DPort) {
			cdir = dir ^ 1
		}
		a = t.newAttempt(f, cdir, ts, ref)
	}
	fromClient := dir == f.clientDir
	side := SideServer
	if fromClient {
		side = SideClient
	}
	// What the timeline records of this packet, if anything: the event
	// itself is built only then.
	ev := evNote{Dir: side}

	switch {
	case syn && !ack:
		a = t.onSYN(f, a, d, dir, fromClient, ts, ref, &ev)
		side = ev.Dir
		fromClient = side == SideClient
	case syn && ack:
		a = t.onSYNACK(f, a, d, dir, fromClient, ts, ref, &ev)
		side = ev.Dir
		fromClient = side == SideClient
	}

	if ts > a.End {
		a.End = ts
	}
	if ts < a.Start {
		a.Start = ts
	}

	if !syn && ack && !rst && !a.HandshakeDone {
		t.maybeComplete(f, a, d, fromClient, ts, &ev)
	}
	if d.PayloadLen > 0 {
		if fromClient {
			a.BytesClient += uint64(d.PayloadLen)
			if a.FirstDataClient == 0 {
				a.FirstDataClient = ts
				if ev.Note == NoteNone {
					ev.Note = NoteFirstData
				}
			}
		} else {
			a.BytesServer += uint64(d.PayloadLen)
			if a.FirstDataServer == 0 {
				a.FirstDataServer = ts
				if ev.Note == NoteNone {
					ev.Note = NoteFirstData
				}
			}
		}
	}
	if fromClient {
		a.PktsClient++
	} else {
		a.PktsServer++
	}
	if fin && !syn { // a FIN on a SYN is a probe's oddity (nmap), not a close
		if !a.finBy[side] && a.firstFIN == SideNone {
			a.firstFIN = side
			if a.firstRST == SideNone {
				a.ClosePhase, a.CloseTime = a.phase(), ts
			}
		}
		a.finBy[side] = true
		if ev.Note == NoteNone || ev.Note == NoteFirstData {
			ev.Note = NoteFIN
		}
	}
	if rst && !syn && fromClient && !a.HandshakeDone && f.hasStale && d.Seq == f.staleAck {
		// The client's RST answering a stale ACK (RFC 793 SYN-SENT): it
		// clears the server's old state; the attempt itself goes on.
		ev.Note = NoteStaleRST
	} else if rst && !syn && fromClient && !a.HandshakeDone && a.HasISN && a.SynAcks == 0 && !f.hasStale &&
		d.Seq != a.ISN && d.Seq != a.ISN+1 {
		// The same, with the stale ACK not captured (a capture that keeps
		// no pure ACKs, or lost it): in SYN-SENT a client sends a RST only
		// in answer to an unacceptable ACK, with that ACK's number as its
		// sequence number; one outside its own sequence space means the
		// server answered the SYN with an ACK for an old connection (a
		// TIME-WAIT rejecting it by PAWS, RFC 5961's challenge ACK).
		a.StaleACKs++
		ev.Note = NoteStaleRST
	} else if rst && !syn {
		if a.firstRST == SideNone {
			a.firstRST = side
			a.ClosePhase, a.CloseTime = a.phase(), ts
		}
		a.rstBy[side]++
		if a.HandshakeDone && a.rstAfterHS == SideNone {
			a.rstAfterHS = side
		}
		if !fromClient && !a.HandshakeDone && a.HasISN && a.SynAcks == 0 && !f.srvSYN && a.Refused == RefusedNone {
			a.Refused, a.RefuseTime = RefusedRST, ts
		}
		ev.Note = NoteRST
	}
	a.zeek.update(a, d, fromClient, f)
	if ev.Note != NoteNone {
		if e := a.recordNew(); e != nil {
			e.Time, e.Ref, e.Dir, e.Flags, e.Seq, e.Ack, e.Len, e.Win, e.Note = ts, ref, ev.Dir, flags, d.Seq, d.Ack, d.PayloadLen, d.Win, ev.Note
			if syn {
				e.Opts = d.Opts
			}
		}
	}

	// Move the flow to the list whose idle timeout fits its state.
	list := uint8(listHandshake)
	switch {
	case a.rstBy[SideClient]+a.rstBy[SideServer] > 0 || (a.finBy[SideClient] && a.finBy[SideServer]):
		list = listClosed
	case a.HandshakeDone || !a.HasISN:
		list = listOpen
	}
	t.touch(f, list)
}

// onSYN handles a SYN without ACK; it may start a new attempt on the flow.
func (t *Tracker) onSYN(f *flow, a *Attempt, d *Decoded, dir uint8, fromClient bool, ts int64, ref PacketRef, ev *evNote) *Attempt {
	newClient := func() *Attempt {
		a := t.newAttempt(f, dir, ts, ref)
		firstSYN(f, a, d, ts)
		ev.Dir, ev.Note = SideClient, NoteSYN
		return a
	}
	switch {
	case a == nil:
		return newClient()
	case fromClient && a.HasISN && d.Seq == a.ISN:
		// Same ISN: a retransmission, unless the connection had already
		// been established or closed, and this SYN opens a new one.
		if a.HandshakeDone || a.finBy[SideClient] || a.finBy[SideServer] || a.rstBy[SideClient] > 0 {
			return newClient()
		}
		t.sum.SynRetransmits++
		if a.Syns < MaxSynTimes {
			a.SynTimes[a.Syns] = ts
			a.synTSval[a.Syns] = d.Opts.TSval
		}
		a.Syns++
		f.lastHS = ts
		ev.Note = NoteSYNRetransmit
		return a
	case fromClient && !a.HasISN && a.SynAcks > 0 && a.HasServerISN && f.synackAck == d.Seq+1 && !a.HandshakeDone:
		// The SYN-ACK was captured before its SYN (two interfaces, or a
		// reordering tap): adopt the SYN into the attempt.
		a.Reordered = true
		firstSYN(f, a, d, ts)
		f.synsAtAns = 1
		ev.Note = NoteSYN
		return a
	case fromClient:
		return newClient()
	case a.HasISN && !a.HandshakeDone && a.SynAcks == 0 && a.Refused == RefusedNone && a.firstRST == SideNone && a.firstFIN == SideNone:
		// Both ends sent a SYN: simultaneous open.
		if f.srvSYN && d.Seq == f.srvSYNSeq {
			t.sum.SynRetransmits++
			ev.Note = NoteSYNRetransmit
		} else {
			f.srvSYN, f.srvSYNSeq = true, d.Seq
			a.SimOpen = true
			a.HasServerISN, a.ServerISN = true, d.Seq
			ev.Note = NoteSimOpenSYN
			if f.synsAtAns == 0 {
				f.synsAtAns = a.Syns
			}
		}
		f.lastHS = ts
		return a
	}
	// A SYN from the other side of a finished or answered connection: a new
	// attempt the other way round.
	return newClient()
}

// firstSYN records the attempt's first SYN.
func firstSYN(f *flow, a *Attempt, d *Decoded, ts int64) {
	setFirstSYN(a, d.Seq, ts, &d.Opts, d.PayloadLen)
	if ts < a.Start || a.Start == 0 {
		a.Start = ts
	}
	f.lastHS = ts
}

// setFirstSYN records what the attempt keeps of its first SYN (an embryo's
// too: fillEmbryo): its sequence number, time, options and payload.
func setFirstSYN(a *Attempt, isn uint32, ts int64, o *Options, data uint32) {
	a.HasISN, a.ISN = true, isn
	a.Syns = 1
	a.SynTimes[0] = ts
	a.synTSval[0] = o.TSval
	a.SynOpts = *o
	a.SynData = data
	a.SynTS = triOf(o)
}

func triOf(o *Options) Tri {
	switch {
	case o.HasTS:
		return TriYes
	case o.Unknown:
		return TriUnknown
	}
	return TriNo
}

// onSYNACK handles a SYN-ACK.
func (t *Tracker) onSYNACK(f *flow, a *Attempt, d *Decoded, dir uint8, fromClient bool, ts int64, ref PacketRef, ev *evNote) *Attempt {
	if a == nil {
		// The first packet of the flow: its receiver is the client.
		a = t.newAttempt(f, dir^1, ts, ref)
		t.firstSYNACK(f, a, d, ts)
		ev.Dir, ev.Note = SideServer, NoteSYNACK
		f.lastHS = ts
		return a
	}
	if fromClient {
		if a.SimOpen {
			// The client's half of a simultaneous open.
			if f.cliSYNACK && d.Seq == f.cliSAckSeq {
				t.sum.SynAckRetransmits++
				ev.Note = NoteSYNACKRetransmit
			} else {
				f.cliSYNACK, f.cliSAckSeq = true, d.Seq
				ev.Note = NoteSYNACK
			}
			return a
		}
		// A SYN-ACK from the side we took for the client: the roles were
		// wrong (a SYN we never saw). Start over with the right roles.
		a = t.newAttempt(f, dir^1, ts, ref)
		fromClient = false
		ev.Dir = SideServer
	}
	switch {
	case a.HasISN && !a.SimOpen && !a.HandshakeDone && d.Ack-(a.ISN+1) > a.SynData:
		// It acknowledges neither the SYN nor its data: the server answers
		// for another incarnation of this 4-tuple (stale state). The client
		// will reset it; it does not answer this attempt.
		a.StaleACKs++
		f.staleAck, f.hasStale = d.Ack, true
		ev.Note = NoteStaleACK
		return a
	case a.SynAcks > 0 && f.seenServerISN(d.Seq):
		t.sum.SynAckRetransmits++
		a.SynAcks++
		ev.Note = NoteSYNACKRetransmit
	case a.SynAcks > 0 && (a.HandshakeDone || a.Close != CloseNone || a.firstRST != SideNone || a.firstFIN != SideNone):
		// A new server ISN after the connection was done: a new attempt
		// whose SYN was not captured.
		a = t.newAttempt(f, f.clientDir, ts, ref)
		t.firstSYNACK(f, a, d, ts)
		ev.Note = NoteSYNACK
	case a.SynAcks > 0:
		// A SYN-ACK with another ISN (the server lost its half-open state
		// and answered a retransmitted SYN afresh): not a retransmission,
		// and the client may complete the handshake with either.
		a.SynAcks++
		f.addServerISN(d.Seq)
		ev.Note = NoteSYNACK
	default:
		t.firstSYNACK(f, a, d, ts)
		ev.Note = NoteSYNACK
	}
	f.lastHS = ts
	return a
}

func (t *Tracker) firstSYNACK(f *flow, a *Attempt, d *Decoded, ts int64) {
	if !a.SimOpen {
		a.HasServerISN, a.ServerISN = true, d.Seq
	}
	f.nSrvISN = 0
	f.addServerISN(d.Seq)
	a.SynAcks = 1
	a.FirstSynAck = ts
	a.SynAckOpts = d.Opts
	a.SynAckTS = triOf(&d.Opts)
	f.synackAck = d.Ack
	if f.synsAtAns == 0 {
		f.synsAtAns = a.Syns
	}
	if d.Opts.HasTS && a.SynTS == TriYes {
		n := a.Syns
		if n > MaxSynTimes {
			n = MaxSynTimes
		}
		for i := n - 1; i >= 0; i-- {
			if a.synTSval[i] == d.Opts.TSecr {
				a.AnsweredSyn = int8(i)
				break
			}
		}
	}
}

const maxServerISNs = 4

func (f *flow) addServerISN(isn uint32) {
	if f.nSrvISN < maxServerISNs {
		f.srvISNs[f.nSrvISN] = isn
		f.nSrvISN++
	}
}

func (f *flow) seenServerISN(seq uint32) bool {
	for _, x := range f.srvISNs[:f.nSrvISN] {
		if x == seq {
			return true
		}
	}
	return false
}

// acksServerISN reports whether ack completes the handshake for one of the
// server ISNs seen, and makes that one the attempt's.
func (f *flow) acksServerISN(ack uint32, a *Attempt) bool {
	for _, x := range f.srvISNs[:f.nSrvISN] {
		if seqInWindow(ack, x+1) {
			a.HasServerISN, a.ServerISN = true, x
			return true
		}
	}
	return false
}

// maybeComplete checks whether an ACK completes the handshake.
func (t *Tracker) maybeComplete(f *flow, a *Attempt, d *Decoded, fromClient bool, ts int64, ev *evNote) {
	if !a.HasISN {
		return
	}
	if fromClient {
		switch {
		case a.HasServerISN && a.SimOpen && seqInWindow(d.Ack, a.ServerISN+1):
			a.HandshakeDone, a.AckTime = true, ts
			ev.Note = NoteHandshakeACK
		case a.SynAcks > 0 && f.acksServerISN(d.Ack, a):
			a.HandshakeDone, a.AckTime = true, ts
			// Completed by data or a FIN: the pure ACK before it may not
			// have been captured (live filters keep no pure ACKs), so this
			// time is only an upper bound of the handshake's end.
			a.AckCarried = d.PayloadLen > 0 || d.Flags&FlagFIN != 0
			ev.Note = NoteHandshakeACK
		case a.SynAcks == 0 && !f.srvSYN && a.Refused == RefusedNone && a.PktsServer == 0 && d.Ack != 0:
			// The client acknowledges a SYN-ACK the capture does not
			// have: the other direction was not captured.
			a.HandshakeDone, a.AckTime, a.OneSided = true, ts, true
			ev.Note = NoteHandshakeACK
		default:
			return
		}
	} else {
		// The server acknowledging the client's SYN without a captured
		// SYN-ACK means the SYN-ACK (or the client's half) is missing.
		if a.SynAcks != 0 || a.Refused != RefusedNone {
			return
		}
		// It can acknowledge at most what the client sent: the SYN, its
		// data and what followed (all in the direction we capture).
		if d.Ack-(a.ISN+1) > a.SynData+uint32(a.BytesClient)+1 {
			// An ACK for some other sequence space: the server still holds
			// an old connection on this 4-tuple and answers the SYN with a
			// challenge ACK (RFC 5961 4.2); the client's stack will reset it.
			a.StaleACKs++
			f.staleAck, f.hasStale = d.Ack, true
			ev.Note = NoteStaleACK
			return
		}
		a.HandshakeDone, a.AckTime, a.OneSided = true, ts, true
	}
	if f.synsAtAns == 0 {
		f.synsAtAns = a.Syns
	}
}

// icmp handles an ICMP destination unreachable quoting a TCP segment. The
// quoted segment's source is the host that sent it (our client for a SYN).
func (t *Tracker) icmp(d *Decoded, ts int64, ref PacketRef) {
	t.sum.ICMPUnreach++
	k, dir := makeKey(d)
	h := keyHash(&k)
	f := t.flows.get(&k, h)
	if f == nil && t.hatchEmbryo(&k, h) {
		f = t.flows.get(&k, h)
	}
	if f == nil || f.at == nil {
		return
	}
	a := f.at
	if dir != f.clientDir || !a.HasISN || d.Seq != a.ISN || a.HandshakeDone || a.SynAcks > 0 {
		return
	}
	if a.Refused == RefusedNone {
		a.Refused, a.RefuseTime = RefusedICMP, ts
		a.ICMPType, a.ICMPCode = d.ICMPType, d.ICMPCode
		a.ICMPFrom = addrOf(d.IPv6, &d.ICMPFrom)
	}
	if ts > a.End {
		a.End = ts
	}
	if e := a.recordNew(); e != nil {
		e.Time, e.Ref, e.Dir, e.Seq, e.Note, e.ICMP = ts, ref, SideServer, d.Seq, NoteICMP, [2]uint8{d.ICMPType, d.ICMPCode}
	}
	t.touch(f, f.list)
}

// synDupWindow: no TCP stack retransmits a SYN or SYN-ACK this soon (the
// initial RTO is 1 s or more, RFC 6298), so an identical copy within it is a
// capture duplicate even when a mirror delays it by milliseconds.
const synDupWindow = 200 * time.Millisecond

// weakDupWindow bounds duplicates that carry no IP ID and no TSval.
const weakDupWindow = time.Millisecond

// duplicate reports whether the packet is an identical copy of the previous
// one of its kind in the same direction, seen within the duplicate window:
// the same frame captured twice (-i any, a mirror port), not a retransmission
// (which comes an RTO later, usually with a new IP ID or TSval).
func (t *Tracker) duplicate(f *flow, dir uint8, d *Decoded, ts int64) bool {
	slot := 1
	if d.Flags&FlagSYN != 0 {
		slot = 0
	}
	return t.sigDuplicate(&f.sig[dir][slot], d, ts, d.PayloadLen)
}

// sigDuplicate compares packet d (seen at ts, its payload length taken as
// plen) with the previous one of its kind, p, and remembers d in p when it
// is not a copy. (Field by field: a pktSig built and copied whole stalls on
// store forwarding.)
func (t *Tracker) sigDuplicate(p *pktSig, d *Decoded, ts int64, plen uint32) bool {
	window := int64(t.cfg.DupWindow)
	if d.Flags&FlagSYN != 0 {
		window = int64(synDupWindow)
	}
	if d.IPID == 0 && !d.Opts.HasTS && window > int64(weakDupWindow) {
		// Nothing tells copies from retransmits (Linux sends SYN-ACKs with
		// IP ID 0, IPv6 has none): only near-simultaneous copies are
		// duplicates. A SYN-ACK resent for a retransmitted SYN can follow
		// the timer's own retransmit by a few milliseconds.
		window = int64(weakDupWindow)
	}
	if p.valid && p.seq == d.Seq && p.ack == d.Ack && p.ipid == d.IPID && p.tsval == d.Opts.TSval &&
		p.plen == plen && p.win == d.Win && p.flags == d.Flags {
		dt := ts - p.t
		if dt < 0 {
			dt = -dt
		}
		if dt <= window {
			return true
		}
	}
	p.t, p.seq, p.ack, p.ipid, p.tsval, p.plen, p.win, p.flags, p.valid = ts, d.Seq, d.Ack, d.IPID, d.Opts.TSval, plen, d.Win, d.Flags, true
	return false
}

// likelyServerPort guesses, for connections whose start was not captured,
// which end is the server: a well-known port talking to an ephemeral one.
func likelyServerPort(p uint16) bool { return p != 0 && p < 1024 }
