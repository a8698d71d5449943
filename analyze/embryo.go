package analyze

import (
	"encoding/binary"
	"math/bits"
	"time"
	"unsafe"

	"github.com/synscope/synscope/internal/mem"
)

// Embryos: a flow that has seen nothing but SYNs from one side lives in a
// compact, pointer-free table instead of as a full flow and attempt. Most
// connections leave it within a round trip (their SYN-ACK hatches them into a
// full flow); what stays is unanswered SYNs, and in a spoofed SYN flood that
// is millions of them. The table is a slab of fixed-size records indexed by
// a map of plain integers, so the garbage collector never scans it, a flood
// costs about 250 bytes per tracked SYN (the record, what the tracker
// keeps beside it, its index entry and queue entries), and a flood fills
// this table without evicting the real connections in the flow table.

// embryoSyns is how many SYNs an embryo records; one more hatches it (a
// client that keeps retransmitting is rare enough to get a full flow).
const embryoSyns = 2

// embryo is a SYN-only flow in three cache lines, with no pointers.
type embryo struct {
	// An embryo of one SYN (all of a flood's that do not retransmit) is
	// in the first two cache lines (records are 192 bytes, in page-aligned
	// chunks), its second SYN in the third: most embryos are written and
	// read in two lines. What the tracker reads of an embryo it evicts or
	// expires is beside the records, in embMeta.
	key  flowKey // with its VLAN tags (42 bytes)
	dir  uint8   // key side of the client
	nsyn uint8
	_    [12]byte
	last int64 // latest SYN (capture time)

	id   uint64
	isn  uint32
	data uint32 // payload on the first SYN (TCP Fast Open)
	ipid uint32 // the last SYN's, for duplicate detection
	ack  uint32
	syn0 synSlot

	syn1  synSlot // valid when nsyn is 2
	data1 uint32  // its payload
	_     [20]byte
}

// synSlot is one SYN of an embryo.
type synSlot struct {
	time  int64
	ref   uint64 // packed PacketRef (packRef)
	opts  Options
	win   uint16
	flags uint8
}

// syn returns the embryo's n-th SYN (0 or 1).
func (e *embryo) syn(n uint8) *synSlot {
	if n == 0 {
		return &e.syn0
	}
	return &e.syn1
}

func packRef(r PacketRef) uint64   { return uint64(uint16(r.Source))<<48 | r.Num&(1<<48-1) }
func unpackRef(v uint64) PacketRef { return PacketRef{Source: int32(v >> 48), Num: v & (1<<48 - 1)} }

// embryos is the table: a slab of records in fixed chunks (never copied,
// never scanned by the GC) and an index of cache-line buckets whose entries
// die with their records' places in the LRU queue (see entry), so the churn
// of a flood (an insert and an eviction per SYN) touches one line of the
// index per SYN and leaves no tombstones behind. The index is keyed by the
// untagged 4-tuple, so an answer arriving with other VLAN tags still finds
// its SYN; each record keeps its full key.
//
// The records are kept in least recently used order by a queue of slab
// indices: a record renewed or taken out leaves its old entry behind, stale
// (the record's qpos no longer names it), to be skipped at the front. The
// oldest records are then an array walk away, not a chase through the
// records: a flood evicts one at every SYN, and the next ones are fetched
// ahead. A full queue is compacted when half of it or more is stale, and
// doubled otherwise, so it stays under four entries per record (or 1,024).
type embryos struct {
	idx      []uint64 // buckets of bucketWords words (see entry)
	hz       []uint32 // each bucket's horizon (see entry)
	bmask    int      // buckets-1 (a power of two)
	ibits    uint8    // bits of an entry's slab index (slab index+1)
	rebuilt  uint64   // qtail when the index was last rebuilt
	every    uint64   // queue places between two rebuilds (rebuildEvery; the tests make it small)
	rebuilds int      // how many (for the tests)
	// A lookup walked longWalk buckets or more since (see lookup).
	longWalks bool
	n         int
	chunks    [][]embryo
	meta      [][]embMeta // beside chunks: meta[c][j] is chunks[c][j]'s
	nslab     int32
	ahead     []chan slabChunk // the next chunks, being made (addChunk)
	free      slabQueue
	q         []int32 // ring of slab indices; power-of-two length
	qhead     uint64  // position of the front entry (q[qhead&mask])
	qtail     uint64  // one past the last entry
	max       int

	// Once the table overflows (a flood: Tracker.em runs), new records
	// are built in scratch and published.
	scratch embryo
}

// embMeta is what the tracker reads of a record it evicts or expires, kept
// beside the records: evicting the oldest record (at every SYN of a flood)
// then reads a small array in queue order, and never the record itself,
// which only the emitting goroutine reads then.
type embMeta struct {
	qpos uint32 // its place in the LRU queue (embryos.q), modulo 2^32
	hash uint32 // keyHash of the untagged key; 0 when not in the table
	last int64  // the record's last
}

const (
	chunksAhead = 4 // chunks made ahead of need (addChunk)
	chunkShift  = 12
	chunkSize   = 1 << chunkShift
)

func newEmbryos(max int) *embryos {
	// The slab holds the table's records and those the emitting goroutine
	// has not freed yet (about 10,000): an entry's index field has room
	// for 65,536 more. (A table of over 134 million records, 33 GB, would
	// not fit it: max is held below.)
	max = min(max, 1<<27-1<<16-1)
	ibits := uint8(bits.Len(uint(max + 1<<16)))
	t := &embryos{ibits: ibits, q: make([]int32, 1024), max: max, every: rebuildEvery}
	t.rebuild(64)
	return t
}

func (t *embryos) len() int { return t.n }

func (t *embryos) at(i int32) *embryo { return &t.chunks[i>>chunkShift][i&(chunkSize-1)] }

func (t *embryos) m(i int32) *embMeta { return &t.meta[i>>chunkShift][i&(chunkSize-1)] }

// live reports whether the queue entry at position p (holding slab index i)
// is i's current one. Positions are compared modulo 2^32: an entry is less
// than the queue's length (under 2^32) from its record's current one.
func (t *embryos) live(i int32, p uint64) bool {
	m := t.m(i)
	return m.hash != 0 && m.qpos == uint32(p)
}

// keyHash hashes the untagged 4-tuple (fixed function: lookups only, the
// results never depend on it). The words are multiplied independently and
// mixed once: it runs for every packet.
func keyHash(k *flowKey) uint32 { return hash4(&k.a, &k.b, k.pa, k.pb) }

// packetHash is keyHash of the packet's flow key (dir from keyDir).
func packetHash(d *Decoded, dir uint8) uint32 {
	if dir == 0 {
		return hash4(&d.Src, &d.Dst, d.SPort, d.DPort)
	}
	return hash4(&d.Dst, &d.Src, d.DPort, d.SPort)
}

func hash4(a, b *[16]byte, pa, pb uint16) uint32 {
	le := binary.LittleEndian
	h := le.Uint64(a[:8])*0x9e3779b97f4a7c15 ^ le.Uint64(a[8:])*0xc2b2ae3d27d4eb4f ^
		le.Uint64(b[:8])*0x165667b19e3779f9 ^ le.Uint64(b[8:])*0xd6e8feb86659fd93 ^
		(uint64(pa)<<16|uint64(pb))*0xff51afd7ed558ccd
	return uint32(mix(h)) | 1 // never 0: embMeta's 0 means not in the table
}

// The index is a table of buckets, each one cache line of eight words: a
// header and seven entries. An entry is the key hash's high bits (a tag, 12
// bits for the default table) and the record's slab index+1 in its upper 32
// bits, and in its lower 32 the record's place in the LRU queue (its qpos).
// An entry is live while that place is within the queue, between its front
// and its back: a record evicted or expired from the front leaves its entry
// behind, dead, and the index is not touched. A flood then touches one
// index line per SYN (the new SYN's bucket: looked up, then written), not
// two. Only a record taken out elsewhere (hatched, or dropped by a test)
// has its entry cleared.
//
// The header holds a byte of each entry's key hash (tagByte), matched
// against a key's all at once, the way to fill next (the one written
// longest ago, which in a flood is the first to die), and the overflow
// bit. A key lives in the first bucket from its home (the hash's low bits)
// with a free or dead entry. A bucket whose seven entries are live passes
// the key on to the next: it sets its overflow bit, and its horizon (in
// hz, beside the buckets) is the newest queue place of a key passed on. A
// lookup goes on to the next bucket only while that horizon is within the
// queue. So no entry ever moves (no backward shift, no tombstones), and a
// bucket's overflow dies with the keys it passed on.
//
// The queue's places are compared modulo 2^32; the index is rebuilt from
// the queue when the queue is compacted (its places change) and every
// 2^30 places, so that no dead entry lives long enough to look live again.
const (
	bucketWords  = 8       // a header and bucketWays entries
	bucketWays   = 7       // entries in a bucket
	bucketLoad   = 2       // records per bucket at most, on average (of 7; BENCHMARKS, session 7)
	hdrNext      = 56      // the header's way to fill next (3 bits)
	hdrOverflow  = 1 << 63 // in the header: keys were passed on (see hz)
	rebuildEvery = 1 << 30 // queue places between two rebuilds
	longWalk     = 8       // buckets a lookup walks before it asks for a rebuild
	jumpBuckets  = 1 << 13 // growing past this many buckets (512 KB), the index takes its full size (grown)...
	jumpTo       = 1 << 18 // ...up to this many (16 MB, a full default table's), doubling again after
	bytes1       = 0x0101010101010101
)

// entry makes the entry of slab index i, key hash h, at queue place qpos.
func (t *embryos) entry(h uint32, i int32, qpos uint32) uint64 {
	sh := t.ibits
	return uint64(h>>sh<<sh|uint32(i+1))<<32 | uint64(qpos)
}

// tagByte is the byte of key hash h in its entry's header (bits apart
// from those of its home bucket).
func tagByte(h uint32) uint64 { return uint64(h >> 24) }

// bucket is the home bucket of key hash h (its lowest bit is always set).
func (t *embryos) bucket(h uint32) int { return int(h>>1) & t.bmask }

// bkt is bucket b's line.
func (t *embryos) bkt(b int) *[bucketWords]uint64 {
	return (*[bucketWords]uint64)(t.idx[b*bucketWords:])
}

// window returns the queue's front place and length modulo 2^32: a place p
// is in the queue when uint32(p)-front < n.
func (t *embryos) window() (front, n uint32) {
	return uint32(t.qhead), uint32(t.qtail - t.qhead)
}

// liveEntry reports whether entry w is a record's (not empty, and its place in
// the queue).
func (t *embryos) liveEntry(w uint64, front, n uint32) bool {
	return w>>32&(1<<t.ibits-1) != 0 && uint32(w)-front < n
}

// lookup returns k's embryo, if in the table; h is keyHash of the untagged
// key.
func (t *embryos) lookup(k *flowKey, h uint32) (int32, bool) {
	front, n := t.window()
	sh, imask := t.ibits, uint32(1)<<t.ibits-1
	tag := tagByte(h) * bytes1
	b := t.bucket(h)
	for walked := 0; walked <= t.bmask; walked++ {
		bk := t.bkt(b)
		hdr := bk[0]
		// The ways whose tag byte is h's (and maybe a few above one
		// that is: each is checked), the header's last byte never.
		x := hdr ^ tag | 0xff<<56
		for m := (x - bytes1) &^ x & (bytes1 << 7); m != 0; m &= m - 1 {
			w := bk[1+bits.TrailingZeros64(m)>>3]
			if hi := uint32(w >> 32); (hi^h)>>sh == 0 && hi&imask != 0 && uint32(w)-front < n {
				if i := int32(hi&imask) - 1; sameTuple(&t.at(i).key, k) {
					return i, true
				}
			}
		}
		if hdr&hdrOverflow == 0 {
			return -1, false
		}
		if uint32(t.hz[b])-front >= n {
			bk[0] = hdr &^ hdrOverflow // what it passed on has all died
			return -1, false
		}
		// A horizon stays live after the keys it covers are answered
		// (their places are still in the queue): a long walk asks for a
		// rebuild, which alloc makes once enough has been queued since
		// the last one to pay for it.
		if walked == longWalk {
			t.longWalks = true
		}
		b = (b + 1) & t.bmask
	}
	return -1, false // every bucket looked at
}

// sameTuple reports whether a and b are equal but for their VLAN tags
// (untagged(*a) == untagged(*b), without copying them: a key just written
// field by field and then copied whole stalls on store forwarding).
func sameTuple(a, b *flowKey) bool {
	return a.pa == b.pa && a.pb == b.pb && a.v6 == b.v6 && a.a == b.a && a.b == b.b
}

// insert adds the entry of slab index i (key hash h, queue place qpos) in
// the first bucket from its home with a free or dead entry: the header's
// next way, or else the first such.
func (t *embryos) insert(h uint32, i int32, qpos uint32) {
	front, n := t.window()
	for b := t.bucket(h); ; b = (b + 1) & t.bmask {
		bk := t.bkt(b)
		hdr := bk[0]
		j := int(hdr >> hdrNext & 7)
		if t.liveEntry(bk[1+j], front, n) {
			for j = 0; j < bucketWays && t.liveEntry(bk[1+j], front, n); j++ {
			}
			if j == bucketWays {
				bk[0] = hdr | hdrOverflow
				t.hz[b] = qpos // the newest key passed on
				continue
			}
		}
		bk[1+j] = t.entry(h, i, qpos)
		next := uint64(j + 1)
		if next == bucketWays {
			next = 0
		}
		sh := 8 * uint(j)
		bk[0] = hdr&^(0xff<<sh|7<<hdrNext) | tagByte(h)<<sh | next<<hdrNext
		return
	}
}

// place finds the live entry of slab index i (key hash h), which is in the
// table: its bucket and its word in it.
func (t *embryos) place(h uint32, i int32) (b, j int) {
	front, n := t.window()
	want := uint64(i + 1)
	imask := uint64(1)<<t.ibits - 1
	b = t.bucket(h)
	for range t.bmask + 1 {
		bk := t.bkt(b)
		for j = 1; j < bucketWords; j++ {
			if e := bk[j]; e>>32&imask == want && uint32(e)-front < n {
				return b, j
			}
		}
		b = (b + 1) & t.bmask
	}
	panic("synscope: a SYN-only record is missing from its index")
}

// rebuild makes the index anew with nb buckets, from the live records in
// queue order.
func (t *embryos) rebuild(nb int) {
	t.rebuilds++
	if len(t.hz) == nb {
		clear(t.idx)
	} else {
		t.idx = make([]uint64, nb*bucketWords)
		t.hz = make([]uint32, nb)
		t.bmask = nb - 1
	}
	mask := uint64(len(t.q) - 1)
	for p := t.qhead; p != t.qtail; p++ {
		if t.qtail-p > 8 {
			// The bucket of a record a few places on: they are
			// scattered over the index.
			j := t.q[(p+8)&mask]
			mem.Prefetch(uintptr(unsafe.Pointer(&t.idx[t.bucket(t.m(j).hash)*bucketWords])))
		}
		if i := t.q[p&mask]; t.live(i, p) {
			t.insert(t.m(i).hash, i, uint32(p))
		}
	}
	t.rebuilt, t.longWalks = t.qtail, false
}

// addChunk adds a chunk of records to the slab. A table that keeps
// growing (to a second chunk, short of its max) has its next chunksAhead
// chunks made and their pages mapped in by goroutines of their own
// meanwhile: a flood fills the default table's 100 MB of records in its
// first 50 ms or so, when the tracker alone sets the pace, and it took
// the kernel's page faults there (BENCHMARKS, session 8). At most
// chunksAhead chunks (3.3 MB) are made and never used, when the table
// stops growing.
func (t *embryos) addChunk() {
	var c slabChunk
	if len(t.ahead) > 0 {
		c = <-t.ahead[0]
		t.ahead = t.ahead[1:]
	} else {
		c = newSlabChunk(false)
	}
	t.chunks = append(t.chunks, c.rec)
	t.meta = append(t.meta, c.meta)
	if len(t.chunks) < 2 {
		return
	}
	for len(t.ahead) < chunksAhead && (len(t.chunks)+len(t.ahead))*chunkSize < t.max {
		ch := make(chan slabChunk, 1)
		t.ahead = append(t.ahead, ch)
		go func() { ch <- newSlabChunk(true) }()
	}
}

// slabChunk is a chunk of records and their meta.
type slabChunk struct {
	rec  []embryo
	meta []embMeta
}

// newSlabChunk makes a chunk; with fault, the kernel maps its records'
// pages in now.
func newSlabChunk(fault bool) slabChunk {
	c := slabChunk{make([]embryo, chunkSize), make([]embMeta, chunkSize)}
	if fault {
		mem.Populate(unsafe.Slice((*byte)(unsafe.Pointer(&c.rec[0])), len(c.rec)*int(unsafe.Sizeof(c.rec[0]))))
	}
	return c
}

// grown is the index's number of buckets once it has filled: twice as
// many while it is small, and past jumpBuckets the number a full table
// needs, up to jumpTo (a table that grows that far is mostly a flood on its
// way to filling it), then twice as many again. Each doubling's rebuild
// reads the queue and writes a random line per record: doubling all the
// way to a full default table cost the flood bench capture's tracker 40 ms
// of its 1 s (BENCHMARKS, session 8). jumpTo bounds what the jump costs a
// table with a large --max-syn-only that is not flooded: 16 MB, where the
// full size would be 32 bytes for each record of the maximum.
func (t *embryos) grown() int {
	nb := 2 * (t.bmask + 1)
	if nb > jumpBuckets {
		for nb < jumpTo && bucketLoad*nb < t.max {
			nb *= 2
		}
	}
	return nb
}

// pushBack puts slab index i at the back of the LRU order.
// Compacting the queue renumbers its places, so the index is then rebuilt
// (as it is every rebuildEvery places); the caller updates i's entry.
func (t *embryos) pushBack(i int32) {
	if t.qtail-t.qhead == uint64(len(t.q)) {
		if t.makeRoom() {
			t.rebuild(t.bmask + 1)
		}
	} else if t.qtail-t.rebuilt >= t.every {
		t.rebuild(t.bmask + 1)
	}
	t.q[t.qtail&uint64(len(t.q)-1)] = i
	t.m(i).qpos = uint32(t.qtail)
	t.qtail++
}

// makeRoom is for a full queue: it drops the stale entries when they are
// at least half of it, renumbering the places (it then reports true), and
// doubles it otherwise, each entry keeping its place.
func (t *embryos) makeRoom() bool {
	old, mask := t.q, uint64(len(t.q)-1)
	if 2*t.n > len(old) {
		t.q = make([]int32, 2*len(old))
		nmask := uint64(len(t.q) - 1)
		for p := t.qhead; p != t.qtail; p++ {
			t.q[p&nmask] = old[p&mask]
		}
		return false
	}
	t.q = make([]int32, len(old))
	var n uint64
	for p := t.qhead; p != t.qtail; p++ {
		i := old[p&mask]
		if t.live(i, p) {
			t.q[n] = i
			t.m(i).qpos = uint32(n)
			n++
		}
	}
	t.qhead, t.qtail = 0, n
	return true
}

// head returns the slab index of the least recently used record, or -1,
// dropping the stale entries in front of it.
func (t *embryos) head() int32 {
	mask := uint64(len(t.q) - 1)
	for ; t.qhead != t.qtail; t.qhead++ {
		i := t.q[t.qhead&mask]
		if t.live(i, t.qhead) {
			return i
		}
	}
	return -1
}

// drain takes every record out of the table, least recently used first,
// passing each slab index to f (the caller frees them), and empties the
// index in one sweep instead of a deletion per record.
func (t *embryos) drain(f func(i int32)) {
	for i := t.head(); i >= 0; i = t.head() {
		t.m(i).hash = 0
		t.qhead++
		f(i)
	}
	clear(t.idx)
	t.n = 0
}

// alloc returns a free slot for k (not in the table; h its keyHash),
// linked at the back, and the record to fill in: the slot's own, or with
// scratch (once the table overflows) the scratch one, for publish.
func (t *embryos) alloc(k *flowKey, h uint32, scratch bool) (int32, *embryo) {
	if t.n+1 > bucketLoad*(t.bmask+1) {
		t.rebuild(t.grown())
	} else if t.longWalks && t.qtail-t.rebuilt >= uint64(t.n) {
		t.rebuild(t.bmask + 1)
	}
	var i int32
	if t.free.len() > 0 {
		i = t.free.pop()
	} else {
		if int(t.nslab)>>chunkShift == len(t.chunks) {
			t.addChunk()
		}
		i = t.nslab
		t.nslab++
	}
	// Queued first: while the slab's hash is still 0, a stale queue
	// entry left by its last record is not taken for a live one (see
	// live) if pushBack compacts the queue and rebuilds the index.
	t.pushBack(i)
	m := t.m(i)
	m.hash = h
	e := t.at(i)
	if scratch {
		e = &t.scratch
	}
	// The first two lines only: the third is written with a second SYN.
	*(*[128]byte)(unsafe.Pointer(e)) = [128]byte{}
	e.key = *k
	t.insert(h, i, m.qpos)
	t.n++
	return i, e
}

// publish writes the first two lines of the scratch record, filled in since
// alloc returned it, to slab index i with non-temporal stores: they go to
// memory without reading the lines first, and without pushing the index out
// of the caches. Only the emitting goroutine reads them, much later (the
// tracker, for the rare answer or retransmit, reads them back as usual);
// the emitter's hand-over fences them (emitter.send).
func (t *embryos) publish(i int32) {
	mem.StoreNT128(unsafe.Pointer(t.at(i)), unsafe.Pointer(&t.scratch))
}

// remove forgets slab index i (see drop) and frees its record.
func (t *embryos) remove(i int32) {
	t.drop(i)
	t.free.push(i)
}

// slabQueue holds free slab indices first in, first out: in a flood, the
// records are then written, evicted and built again in slab order.
type slabQueue struct {
	q    []int32
	head int
}

func (s *slabQueue) len() int { return len(s.q) - s.head }

func (s *slabQueue) push(i int32) {
	if s.head > 0 && len(s.q) == cap(s.q) && 2*s.head >= len(s.q) {
		n := copy(s.q, s.q[s.head:])
		s.q, s.head = s.q[:n], 0
	}
	s.q = append(s.q, i)
}

func (s *slabQueue) pop() int32 {
	i := s.q[s.head]
	s.head++
	if s.head == len(s.q) {
		s.q, s.head = s.q[:0], 0
	}
	return i
}

// peek returns the index pop would return n pops from now, or -1.
func (s *slabQueue) peek(n int) int32 {
	if s.head+n >= len(s.q) {
		return -1
	}
	return s.q[s.head+n]
}

// drop takes slab index i out of the table without freeing it: its record
// stays as it is until the caller frees it. At the front of the queue (an
// eviction or an expiry), the index is not touched: its entry dies as the
// front moves past its place.
func (t *embryos) drop(i int32) {
	m := t.m(i)
	if t.qhead != t.qtail && t.q[t.qhead&uint64(len(t.q)-1)] == i && m.qpos == uint32(t.qhead) {
		t.qhead++
	} else {
		b, j := t.place(m.hash, i)
		t.bkt(b)[j] = 0
	}
	m.hash = 0 // not in the table: its queue entries are stale from now on
	t.n--
}

// renew moves slab index i, in the table, to the back of the LRU order (its
// old queue entry is stale from now on) and its index entry with it.
func (t *embryos) renew(i int32) {
	t.pushBack(i)
	m := t.m(i)
	b, j := t.place(m.hash, i)
	bk := t.bkt(b)
	bk[j] = bk[j]>>32<<32 | uint64(m.qpos)
	// The buckets it was passed on by: their horizons cover its new place.
	for home := t.bucket(m.hash); home != b; home = (home + 1) & t.bmask {
		t.bkt(home)[0] |= hdrOverflow
		t.hz[home] = m.qpos
	}
}

// pureSYN reports whether a segment can stay in the embryo table: a SYN
// without ACK or RST (ECN setup bits are fine; a FIN on a SYN is a probe's
// oddity the full path records).
func pureSYN(d *Decoded) bool {
	return d.Flags&(FlagSYN|FlagACK|FlagRST|FlagFIN) == FlagSYN
}

// embryoSYN handles a pure SYN for a flow the flow table does not have. It
// reports whether the embryo table took it; if not, the caller tracks the
// packet as a full flow (after hatching any embryo in the way).
func (t *Tracker) embryoSYN(k *flowKey, h uint32, dir uint8, d *Decoded, ts int64, ref PacketRef) bool {
	et := t.embryos
	i, ok := et.lookup(k, h)
	if !ok {
		if et.len() >= et.max {
			t.sum.Evicted++
			t.finishEmbryo(et.head(), true)
		}
		stream := t.em != nil
		i, e := et.alloc(k, h, stream)
		t.sum.Attempts++
		e.id = t.sum.Attempts
		e.dir, e.isn, e.data = dir, d.Seq, d.PayloadLen
		et.addSYN(i, e, d, ts, ref)
		if stream {
			et.publish(i)
		} else if j := et.free.peek(4); j >= 0 {
			// A record written four SYNs from now: ask for its first two
			// lines (the third is for a second SYN).
			r := uintptr(unsafe.Pointer(et.at(j)))
			mem.PrefetchW128(r)
		}
		return true
	}
	e := et.at(i)
	if e.key != *k || e.dir != dir || e.isn != d.Seq || int(e.nsyn) >= embryoSyns {
		return false // another VLAN, the other side, a new ISN, or too many: the full path decides
	}
	// The embryo has one SYN here (a third hatches it): is d a duplicate
	// of it?
	ps := &e.syn0
	prev := pktSig{t: e.last, seq: e.isn, ack: e.ack, ipid: e.ipid, tsval: ps.opts.TSval, plen: e.data, win: ps.win, flags: ps.flags, valid: true}
	if t.sigDuplicate(&prev, d, ts, d.PayloadLen) {
		t.sum.Duplicates++
		return true
	}
	t.sum.SynRetransmits++
	et.addSYN(i, e, d, ts, ref)
	// A retransmit renews it.
	et.renew(i)
	return true
}

// addSYN records a SYN in e, the record of slab index i, and keeps the
// last SYN's time beside it (embMeta) in step.
func (t *embryos) addSYN(i int32, e *embryo, d *Decoded, ts int64, ref PacketRef) {
	s := e.syn(e.nsyn)
	s.time = ts
	s.ref = packRef(ref)
	s.flags = d.Flags
	s.win = d.Win
	s.opts = d.Opts // not in a tuple assignment (see replayEmbryo)
	if e.nsyn == 1 {
		e.data1 = d.PayloadLen // the first SYN's is e.data
	}
	e.nsyn++
	e.ipid, e.ack = d.IPID, d.Ack
	e.last = max(e.last, ts)
	t.m(i).last = e.last
}

// hatchEmbryo turns the embryo under the packet's 4-tuple, if any, into a full
// flow, so that the packet (an answer, or anything but a SYN retransmit) is
// tracked as usual.
// It reports whether there was one. h is keyHash of k.
func (t *Tracker) hatchEmbryo(k *flowKey, h uint32) bool {
	if t.embryos.n == 0 {
		return false
	}
	i, ok := t.embryos.lookup(k, h)
	if !ok {
		return false
	}
	e := t.embryos.at(i)
	if t.flows.get(&e.key, h) == nil {
		f := t.newFlow(e.key, h)
		t.replayEmbryo(f, e)
	}
	t.embryos.remove(i)
	return true
}

// finishEmbryo judges and emits the embryo in slot i.
func (t *Tracker) finishEmbryo(i int32, evicted bool) {
	e := t.embryos.at(i)
	et := t.embryos
	if evicted && t.em == nil && t.emitAsync {
		t.em = newEmitter(t)
	}
	if t.em != nil {
		// The emitting goroutine builds the attempt from the record and
		// judges it; the record is freed when it is done with it.
		et.drop(i)
		t.em.embryo(i, e, t.now, evicted, et)
	} else {
		// Built and judged here as the emitting goroutine would.
		a := buildEmbryo(&t.spare, nil, &t.scratch, e, t.now, evicted, t.cfg.SynTimeout, t.sum)
		et.remove(i)
		t.hand(a)
	}
}

// replayEmbryo builds the flow's attempt from the embryo, as if its SYNs had
// gone through the full path.
func (t *Tracker) replayEmbryo(f *flow, e *embryo) {
	if f.at != nil {
		t.finishAttempt(f, t.now)
	}
	replayEmbryo(blankAttempt(&t.spare), f, e, t.now)
}

// replayEmbryo makes a, blank, the attempt of embryo e on f, at time now,
// and sets f's handshake state as if e's SYNs had gone through the full
// path.
func replayEmbryo(a *Attempt, f *flow, e *embryo, now int64) {
	fillEmbryo(a, e)
	attach(f, a, e.dir)
	f.lastHS = e.last
	f.last = now
	n := e.nsyn - 1
	ls := e.syn(n)
	sg := &f.sig[e.dir][0]
	sg.t, sg.seq, sg.ack, sg.ipid, sg.tsval, sg.win, sg.flags, sg.valid = ls.time, e.isn, e.ack, e.ipid, ls.opts.TSval, ls.win, ls.flags, true
	sg.plen = e.data
	if n == 1 {
		sg.plen = e.data1
	}
}

// fillEmbryo makes a, blank, the attempt of embryo e, as startAttempt and
// the full path's SYN handling (firstSYN, onSYN) would have made it from
// e's SYNs: keep them in step (TestEmbryoMatchesFullPath). It needs no
// flow: a dropped record's attempt is built with it (buildEmbryo). The
// flow's side is replayEmbryo's.
func fillEmbryo(a *Attempt, e *embryo) {
	k := &e.key
	t0 := e.syn0.time
	setEnds(a, k, e.dir, t0, unpackRef(e.syn0.ref))
	a.ID = e.id // the embryo was counted when it was made
	var d Decoded
	d.Kind, d.Proto, d.IPv6 = KindTCP, 6, k.v6
	d.Seq = e.isn
	for n := uint8(0); n < e.nsyn; n++ {
		s := e.syn(n)
		// d.Opts stays empty: the options are copied from the record
		// (copied into d, a 20-byte copy is two overlapping 16-byte
		// stores, and copying it on from there stalls on store
		// forwarding). For the same reason the event is written in
		// place, field by field.
		d.Flags, d.Win = s.flags, s.win
		d.PayloadLen, d.PayloadCap = e.data, e.data
		note := NoteSYN
		if n == 0 {
			setFirstSYN(a, e.isn, t0, &s.opts, e.data)
		} else {
			d.PayloadLen, d.PayloadCap = e.data1, e.data1
			note = NoteSYNRetransmit
			if a.Syns < MaxSynTimes {
				a.SynTimes[a.Syns] = s.time
				a.synTSval[a.Syns] = s.opts.TSval
			}
			a.Syns++
		}
		if ev := a.recordNew(); ev != nil {
			ev.Time, ev.Ref, ev.Dir, ev.Flags, ev.Seq, ev.Len, ev.Win, ev.Note = s.time, unpackRef(s.ref), SideClient, d.Flags, d.Seq, d.PayloadLen, d.Win, note
			ev.Opts = s.opts
		}
		a.PktsClient++
		if d.PayloadLen > 0 {
			a.BytesClient += uint64(d.PayloadLen)
			if a.FirstDataClient == 0 {
				a.FirstDataClient = s.time
			}
		}
		if n == 0 && firstSYNFits(&d) {
			a.zeek.firstSYN(d.Seq)
		} else {
			a.zeek.update(a, &d, true, nil)
		}
	}
	a.End = e.last
}

// buildEmbryo returns the judged attempt of embryo e, ended at now: built
// by fillEmbryo and judged as conclude judges a flow replayed from e. It
// builds in an attempt from built if there is one (built may be nil), else
// in a blank one from spare. f is a scratch flow: it gets what judge reads
// of such a flow (a flow of SYNs from the client alone), and nothing else.
func buildEmbryo(spare, built *[]*Attempt, f *flow, e *embryo, now int64, evicted bool, synTimeout time.Duration, sum *Summary) *Attempt {
	var a *Attempt
	if built != nil && len(*built) > 0 {
		n := len(*built)
		a = (*built)[n-1]
		*built = (*built)[:n-1]
		clearBuilt(a)
	} else {
		a = blankAttempt(spare)
	}
	fillEmbryo(a, e)
	a.Evicted = evicted
	f.srvSYN, f.synsAtAns, f.lastHS = false, 0, e.last
	conclude(a, f, now, synTimeout, sum)
	return a
}

// clearBuilt makes a, built by buildEmbryo and then not kept by emit
// (which must not change an attempt it does not keep, but for the Kernel
// the Analyzer's emit sets), blank again as far
// as the next fillEmbryo and conclude need: it zeroes what they may have
// set and do not always set again, and what the kernel evidence's match
// may have set (Kernel); the rest of the 856 bytes stayed zero. Zeroing it
// whole cost a flood's emitting goroutine a tenth of its time (BENCHMARKS,
// session 8). TestEmbryoMatchesFullPath builds one record's attempt in
// another's, over every kind of record, and compares it with the full
// path's.
func clearBuilt(a *Attempt) {
	// fillEmbryo's second SYN (a record holds two at most), its counts
	// and its timeline.
	a.SynTimes[1], a.synTSval[1] = 0, 0
	a.PktsClient, a.BytesClient, a.FirstDataClient = 0, 0, 0
	a.Timeline, a.Truncated = a.Timeline[:0], 0
	a.zeek = zeekState{}
	a.Kernel = AttemptKernel{}
}

// expireEmbryos finishes embryos whose last SYN is older than the handshake
// idle time. The list is in creation order, renewed by retransmits, so the
// oldest is at the head.
func (t *Tracker) expireEmbryos() {
	et := t.embryos
	for i := et.head(); i >= 0 && t.now-et.m(i).last > t.idle[listHandshake]; i = et.head() {
		t.finishEmbryo(i, false)
	}
}
