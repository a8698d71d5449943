package analyze

import (
	"math"
	"slices"
	"time"
	"unsafe"

	"github.com/synscope/synscope/internal/kevent"
	"github.com/synscope/synscope/internal/mem"
)

// Pipeline splits the analysis over two goroutines: the caller's reads and
// decodes (Packet), a second one tracks. Decoded segments travel in batches,
// so the hand-over costs a channel operation per batch, not per packet. The
// tracker sees the packets in exactly the caller's order, so the verdicts are
// those of Analyzer.Packet, run after run.
type Pipeline struct {
	an   *Analyzer
	cur  *batch
	full chan *batch
	free chan *batch
	done chan struct{}
}

// batchSize trades hand-over cost against the latency of a live capture.
const (
	batchSize = 256
	batches   = 8
)

// decoded is a packet decoded for the tracker. It is kept small: a flood
// moves millions of them from the decoding goroutines to the tracker's.
type decoded struct {
	d  Decoded
	ts int64
	// TCP: keyHash of the flow key and the packet's side of that key,
	// worked out by the decoding goroutine.
	h   uint32
	num uint16 // a Batch's: the packet's number from the batch's start
	dir uint8
	// 128 bytes in all (TestDecodedSize): keep it so.
}

// prepare works out what the tracker needs of a decoded packet beyond
// Decoded.
func (e *decoded) prepare() {
	if e.d.Kind == KindTCP {
		e.dir = keyDir(&e.d)
		e.h = packetHash(&e.d, e.dir)
	}
}

// warm prefetches what tracking e will start with (its slots in the flow
// table and, for a SYN, in the SYN-only index) a few packets ahead, so that
// the cache misses overlap with the work on the packets before it.
func (t *Tracker) warm(e *decoded) {
	if e.d.Kind != KindTCP {
		return
	}
	// (Small tables stay in the cache: nothing to fetch.)
	if ft := &t.flows; len(ft.slots) >= bigTable {
		mem.Prefetch(uintptr(unsafe.Pointer(&ft.slots[int(e.h)&(len(ft.slots)-1)])))
	}
	if et := t.embryos; len(et.idx) >= bigTable/2 && et.n > 0 && pureSYN(&e.d) {
		mem.Prefetch(uintptr(unsafe.Pointer(&et.idx[et.bucket(e.h)*bucketWords])))
	}
}

// bigTable is the size of an index (in slots) beyond which warm prefetches
// (for the SYN-only index, in its 8-byte words: bigTable/2 words is 128 KB,
// as bigTable of the old 4-byte slots was).
const bigTable = 1 << 15

// trackDecoded hands e to the tracker.
func (t *Tracker) trackDecoded(e *decoded, ref PacketRef) {
	if e.d.Kind == KindTCP {
		t.trackTCP(&e.d, e.dir, e.h, e.ts, ref)
	} else {
		t.track(&e.d, e.ts, ref)
	}
}

type batch struct {
	n    int
	p    [batchSize]decoded
	refs [batchSize]PacketRef
}

// Pipeline starts the tracking goroutine. Until Close returns, the analyzer
// must be used only through the pipeline.
func (an *Analyzer) Pipeline() *Pipeline {
	pl := &Pipeline{an: an, full: make(chan *batch, batches), free: make(chan *batch, batches), done: make(chan struct{})}
	for i := 0; i < batches; i++ {
		pl.free <- new(batch)
	}
	pl.cur = <-pl.free
	go pl.track()
	return pl
}

func (pl *Pipeline) track() {
	t := pl.an.tracker
	for b := range pl.full {
		for i := 0; i < b.n; i++ {
			t.trackDecoded(&b.p[i], b.refs[i])
		}
		b.n = 0
		pl.free <- b
	}
	close(pl.done)
}

// Packet decodes one frame and queues it for tracking. It does not keep p.Data.
func (pl *Pipeline) Packet(p *Packet) {
	e := &pl.cur.p[pl.cur.n]
	if !pl.an.decode(p, &e.d) {
		return
	}
	e.ts = p.Time
	pl.cur.refs[pl.cur.n] = p.Ref
	e.prepare()
	if pl.cur.n++; pl.cur.n == batchSize {
		pl.Flush()
	}
}

// Flush hands the queued packets to the tracker now (a live capture calls it
// when traffic is slow, so verdicts do not wait for a full batch).
func (pl *Pipeline) Flush() {
	if pl.cur.n == 0 {
		return
	}
	pl.full <- pl.cur
	pl.cur = <-pl.free
}

// Close tracks what is queued and stops the tracking goroutine. The
// analyzer can then be finished and read as usual.
func (pl *Pipeline) Close() {
	pl.Flush()
	close(pl.full)
	<-pl.done
}

// Batch is a run of consecutive packets decoded ahead of tracking, off the
// tracker's goroutine: any number of goroutines can fill batches at once
// (DecodeInto touches no analyzer state), and one goroutine then tracks
// them in capture order (TrackBatch), with the same result as Packet on
// each packet in turn. A batch that cannot be booked as a whole (Accepts
// says so) is discarded, and its packets go through Packet instead.
type Batch struct {
	e []decoded
	// Counters for the Summary, and what Accepts needs to book them.
	packets, tcp, filtered, frags, malformed, nonTCP uint64
	min, max                                         int64
	runMax                                           int64 // the latest time so far, for OutOfOrder
	ooo                                              uint64
	irregular                                        bool // a packet the batch cannot book (see DecodeInto)
	source                                           int32
}

// Reset empties b for reuse.
func (b *Batch) Reset() {
	*b = Batch{e: b.e[:0], min: math.MaxInt64, max: math.MinInt64, runMax: math.MinInt64}
}

// DecodeInto decodes p into b. It mirrors Analyzer.decode, but only reads
// the analyzer (its filter): kernel evidence, time 0 (the Summary's First
// treats it specially) and link types that are not decoded make the batch
// irregular, to be read packet by packet. The packets of a batch come from
// one source, and p.Ref.Num counts from the batch's start (TrackBatch adds
// where it starts; numbers beyond 65,535 make the batch irregular too). It
// does not keep p.Data.
func (an *Analyzer) DecodeInto(b *Batch, p *Packet) {
	if b.irregular {
		return
	}
	if p.Time == 0 || p.LinkType == kevent.LinkType || p.Ref.Num > math.MaxUint16 || (b.packets > 0 && p.Ref.Source != b.source) {
		b.irregular = true
		return
	}
	b.source = p.Ref.Source
	b.packets++
	t := p.Time
	b.min, b.max = min(b.min, t), max(b.max, t)
	if t < b.runMax {
		b.ooo++
	} else {
		b.runMax = t
	}
	n := len(b.e)
	if n == cap(b.e) {
		b.e = slices.Grow(b.e, 1)
	}
	d := &b.e[:n+1][n]
	if n+2 < cap(b.e) {
		// The entry after next was read last by the tracking goroutine,
		// its lines are in that core's cache: ask for them back now, or
		// the stores decoding it wait for them (and the loads after the
		// stores with them).
		mem.PrefetchW128(uintptr(unsafe.Pointer(&b.e[:n+3][n+2])))
	}
	k := Decode(p.LinkType, p.Data, p.OrigLen, &d.d)
	if an.filter != nil && k != KindUnsupported && !an.filter.MatchLen(&d.d, p.Data, p.OrigLen) {
		b.filtered++
		return
	}
	switch k {
	case KindTCP:
		b.tcp++
	case KindICMPUnreach:
	case KindFragment:
		b.frags++
		return
	case KindMalformed:
		b.malformed++
		return
	case KindUnsupported:
		b.irregular = true
		return
	default:
		b.nonTCP++
		return
	}
	d.ts, d.num = t, uint16(p.Ref.Num)
	d.prepare()
	b.e = b.e[:n+1]
}

// Accepts reports whether TrackBatch can book b as a whole now: it holds
// nothing irregular, and its packets are all at or after the latest one
// tracked, or all before it (after a timestamp leap); a batch that straddles
// it is left to Packet, which counts packets out of order one by one.
func (an *Analyzer) Accepts(b *Batch) bool {
	return !b.irregular && (b.packets == 0 || b.min >= an.last || b.max < an.last)
}

// TrackBatch books and tracks b, which Accepts must have accepted. Each
// packet's Ref.Num is offset by base (DecodeInto may see numbers relative
// to the batch's start).
func (an *Analyzer) TrackBatch(b *Batch, base uint64) {
	if b.packets == 0 {
		return
	}
	s := &an.sum
	s.Packets += b.packets
	if s.First == 0 || b.min < s.First {
		s.First = b.min
	}
	if b.max > s.Last {
		s.Last = b.max
	}
	if b.max < an.last {
		s.OutOfOrder += b.packets // all of them earlier than a packet before
	} else {
		s.OutOfOrder += b.ooo
		an.last = b.runMax
	}
	s.Filtered += b.filtered
	s.TCPPackets += b.tcp
	s.Fragments += b.frags
	s.Malformed += b.malformed
	s.NonTCP += b.nonTCP
	t := an.tracker
	// Each decoded packet (two lines) was written by a worker on the other
	// core: it is asked for far entries ahead, so that warm (ahead
	// entries ahead) finds it in the cache: the web bench capture reads
	// 2.5% faster. Not in a flood (the emitting goroutine running, or the
	// SYN-only table large), where it made the read 3% slower, beside the
	// tracker's prefetches of the index (BENCHMARKS, session 9).
	const ahead, far = 4, 16
	pf := t.em == nil && t.embryos.n < 1<<16
	for i := range b.e {
		if pf && i+far < len(b.e) {
			mem.Prefetch96(uintptr(unsafe.Pointer(&b.e[i+far])))
		}
		if i+ahead < len(b.e) {
			t.warm(&b.e[i+ahead])
		}
		e := &b.e[i]
		t.trackDecoded(e, PacketRef{Source: b.source, Num: base + uint64(e.num)})
	}
}

// EmitAsync lets the tracker move the end of each attempt's life to a
// goroutine of its own once the SYN-only table overflows, as in a SYN flood,
// where building, judging, grouping and listing an attempt for each SYN
// costs more than tracking it: an embryo the tracker drops goes over as it
// is, compact, and is built into an attempt, judged and emitted there;
// attempts of full flows go over judged. emit sees exactly the attempts, in
// exactly the order, it would see otherwise. Finish ends the attempts still
// open through the same goroutine and then stops it; the returned function
// does so without Finish: one or the other must be called before Summary
// or anything that reads what emit built. Until then the analyzer must be
// used from one goroutine.
func (an *Analyzer) EmitAsync() (wait func()) {
	t := an.tracker
	t.emitAsync = true
	return t.stopEmitter
}

// stopEmitter waits until the emitting goroutine has emitted everything
// handed over, and stops it; no other is started.
func (t *Tracker) stopEmitter() {
	t.emitAsync = false
	if t.em != nil {
		t.em.stop(t)
		t.em = nil
	}
}

func newEmitter(t *Tracker) *emitter {
	em := &emitter{full: make(chan []ending, emitQueue), free: make(chan []ending, emitQueue+1),
		done: make(chan struct{}), emit: t.emit, synTimeout: t.cfg.SynTimeout}
	for i := 0; i < emitQueue; i++ {
		em.free <- make([]ending, 0, emitBatch)
	}
	em.cur = make([]ending, 0, emitBatch)
	go em.run()
	return em
}

// stop emits what is left, ends the goroutine and books what it counted.
func (em *emitter) stop(t *Tracker) {
	mem.StoreFence()
	em.full <- em.cur
	close(em.full)
	<-em.done
	for len(em.free) > 0 {
		b := <-em.free
		for i := range b {
			if b[i].e != nil {
				t.embryos.free.push(b[i].slab)
			}
		}
	}
	s := t.sum
	for i, n := range em.sum.Outcomes {
		s.Outcomes[i] += n
	}
	s.ResetsByClient += em.sum.ResetsByClient
	s.ResetsByServer += em.sum.ResetsByServer
}

const (
	emitBatch = 1024
	emitQueue = 8
)

// ending is an attempt handed over to the emitting goroutine: a judged one,
// or the record of an embryo (out of the table, not yet freed) to build it
// from.
type ending struct {
	a       *Attempt
	e       *embryo
	now     int64
	slab    int32
	evicted bool
}

type emitter struct {
	cur  []ending // the tracker's
	full chan []ending
	free chan []ending
	done chan struct{}
	_    [64]byte // the tracker writes cur all the time: keep it off the emitting goroutine's cache lines

	// The emitting goroutine's own.
	emit       func(*Attempt) bool
	synTimeout time.Duration
	scratch    flow
	spare      []*Attempt
	built      []*Attempt // attempts build made, not kept (see clearBuilt)
	sum        Summary    // outcomes of the embryos it judged
}

func (em *emitter) attempt(a *Attempt, et *embryos) {
	n := len(em.cur)
	em.cur = em.cur[:n+1]
	x := &em.cur[n]
	x.a, x.e = a, nil
	if len(em.cur) == cap(em.cur) {
		em.send(et)
	}
}

// embryo hands over the embryo in slab index i of et, dropped from the table.
func (em *emitter) embryo(i int32, e *embryo, now int64, evicted bool, et *embryos) {
	n := len(em.cur)
	em.cur = em.cur[:n+1]
	x := &em.cur[n] // field by field: no composite literal to copy
	x.a, x.e, x.now, x.slab, x.evicted = nil, e, now, i, evicted
	if len(em.cur) == cap(em.cur) {
		em.send(et)
	}
}

// send hands the current batch over, and takes back an emitted one: the
// embryo records in it are free again.
func (em *emitter) send(et *embryos) {
	mem.StoreFence() // the records published since the last batch
	em.full <- em.cur
	b := <-em.free
	for i := range b {
		if b[i].e != nil {
			et.free.push(b[i].slab)
		}
	}
	clear(b)
	em.cur = b[:0]
}

func (em *emitter) run() {
	defer close(em.done)
	const ahead = 3
	for b := range em.full {
		for i := range b {
			if i+ahead < len(b) {
				if e := b[i+ahead].e; e != nil {
					// The record was written long ago by the tracker: fetch
					// it while the ones before are built. Prefetch96 of a
					// record (they start on a line) fetches its first two
					// lines; the third holds a second SYN, rare: read when
					// there is one.
					r := uintptr(unsafe.Pointer(e))
					mem.Prefetch96(r)
				}
			}
			x := &b[i]
			if a := x.a; a != nil {
				x.a = nil
				em.done1(a)
			} else {
				em.doneBuilt(em.build(x.e, x.now, x.evicted))
			}
		}
		em.free <- b
	}
}

// build makes the judged attempt of embryo record e, ended at now.
func (em *emitter) build(e *embryo, now int64, evicted bool) *Attempt {
	return buildEmbryo(&em.spare, &em.built, &em.scratch, e, now, evicted, em.synTimeout, &em.sum)
}

// done1 emits a, keeping it for reuse when emit does not.
func (em *emitter) done1(a *Attempt) { emitOrKeep(em.emit, &em.spare, a) }

// doneBuilt emits a, which build made, keeping it for build to reuse
// when emit does not.
func (em *emitter) doneBuilt(a *Attempt) { emitOrKeep(em.emit, &em.built, a) }
