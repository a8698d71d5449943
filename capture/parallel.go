package capture

import (
	"io"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/synscope/synscope/internal/mem"
)

// Parallel reading of a classic pcap file held whole in memory (mapped).
//
// The file is cut into chunks of a fixed number of bytes. Any goroutine can
// find a chunk's records (Find) and hand them out (Records.Next), in any
// order and concurrently: a chunk's first record is found by resynchronising
// on a chain of plausible record headers. Only one goroutine commits the
// chunks, strictly in file order (Commit): a chunk is taken only when its
// first record is exactly where the records before it ended, and when it is
// free of damage; otherwise the caller reads that chunk again with the
// sequential reader (Next), from the true boundary. Whatever a guess got
// wrong, the packets, their numbers and offsets, SourceInfo, the anomalies
// and the damage reported are those of the sequential reader.
//
// Finding records is a pointer chase (a record's length says where the next
// one starts) and each step is a cache miss on a large file. Find walks the
// chains of several chunks in one loop, asks for each chain's next record
// as soon as its offset is known, and hands the records out as it finds
// them, so that the misses overlap with each other and with the decoding.

// ChunkSize is the largest chunk, and the size for captures of large
// packets; captures of small packets get smaller chunks (Chunks.chunkSize).
const ChunkSize = 256 << 10

// minChunkSize is the smallest chunk Chunks.chunkSize picks.
const minChunkSize = 64 << 10

// chunkRecords is about how many records Chunks.chunkSize puts in a chunk at
// most: the workers decode a group of chunks into batches of 128 bytes per
// packet while the tracker reads the groups before it, and a capture of
// small packets (a SYN flood, 3,360 of its 78-byte records in 256 KiB)
// otherwise fills batches well beyond the caches (a flood read 10-15%
// faster with 64 KiB chunks; a web capture, 300 records per 256 KiB, was
// slower with them).
const chunkRecords = 1024

// chunkSize picks the chunk size from the size of records sampled across
// the file (64 at each of 16 places, found as Find finds a chunk's first
// record): ChunkSize, halved while a chunk would hold more than
// chunkRecords records of the median place's mean size, down to
// minChunkSize. The whole file counts, not its start: a capture of a flood
// often begins before the flood. Any size gives the same result; this one
// is only about speed.
func (c *Chunks) chunkSize() int {
	const places, per, huge = 16, 64, 2 << 20
	span := len(c.data) - c.first
	var means []int
	for k := 0; k < places; k++ {
		lo := c.first + span/places*k
		p := c.resync(lo, min(lo+minChunkSize, len(c.data))) // lo itself at the first record
		bytes, n := 0, 0
		for ; p >= 0 && n < per && p+pcapRecHdr <= len(c.data); n++ {
			next := p + pcapRecHdr + int(c.r.order.u32(c.data[p+8:]))
			if next > len(c.data) {
				break
			}
			bytes += next - p
			p = next
		}
		if n > 0 {
			means = append(means, bytes/n)
		}
		if c.mapped && k > 0 && span >= places*huge {
			// Hand the pages read here back at once: the walk is far
			// from them, and a fault may have mapped a whole large folio
			// of the page cache (2 MiB), which would count in the RSS
			// until the walk passed it. (In a file under 16 such folios
			// the ranges would cover most of it, to be faulted in again.)
			a := lo &^ (huge - 1)
			b := min((max(p, lo+minChunkSize)+huge-1)&^(huge-1), len(c.data))
			release(c.data[a:b])
		}
	}
	size := ChunkSize
	if len(means) == 0 {
		return size
	}
	slices.Sort(means)
	for mean := max(means[len(means)/2], 1); size > minChunkSize && size > mean*chunkRecords; {
		size /= 2
	}
	return size
}

// ParallelEnv names the environment variable that controls parallel
// reading: "0" forces the sequential reader; a number forces the parallel
// one with chunks of that many bytes, on files of any size (the tests);
// unset or anything else leaves the choice to the program.
const ParallelEnv = "SYNSCOPE_PARALLEL"

// ParallelSetting reads ParallelEnv: off is true for "0"; chunk is the
// forced chunk size (0 when not forced).
func ParallelSetting() (off bool, chunk int) {
	v := os.Getenv(ParallelEnv)
	if v == "0" {
		return true, 0
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return false, max(n, pcapRecHdr)
	}
	return false, 0
}

// Chunks reads one pcap source in chunks. Find and the Records it fills may
// be used from any goroutine; Offset, Commit and Next only from one.
type Chunks struct {
	r     *pcapReader
	data  []byte
	first int // offset of the first record
	size  int
	n     int
	// Resynchronisation: what a plausible record header stays within.
	fracMax  uint32 // the fraction of a second, in the file's unit
	firstSec uint32 // the first record's seconds

	// Pages of a mapping are handed back behind the committed records
	// (Release), by the workers rather than the committing goroutine.
	mapped    bool
	committed atomic.Int64
	relMu     sync.Mutex
	released  atomic.Int64
}

// NewChunks returns a chunked reader over src, or nil when src cannot be
// read in parallel: it must be a classic pcap file held whole in memory (a
// mapped file, not compressed), not read yet. size is the chunk size in
// bytes (when 0, chosen from the size of its records: chunkSize).
func NewChunks(src Source, size int) *Chunks {
	r, ok := src.(*pcapReader)
	if !ok || r.err != nil || r.info.Compressed || r.info.Packets != 0 {
		return nil
	}
	w := &r.w
	if w.r != nil || w.err != io.EOF || w.end != len(w.buf) || w.pos != pcapFileHdr || w.off != pcapFileHdr {
		return nil
	}
	c := &Chunks{r: r, data: w.buf, first: pcapFileHdr, fracMax: 1e6, mapped: w.mapped}
	w.held = true
	if r.info.Nanosecond {
		c.fracMax = 1e9
	}
	if len(c.data) >= c.first+pcapRecHdr {
		c.firstSec = r.order.u32(c.data[c.first:])
	}
	if size <= 0 {
		size = c.chunkSize()
	}
	c.size = size
	c.n = (len(c.data) - c.first + size - 1) / size
	return c
}

// Faulted reports whether r, recovered while debug.SetPanicOnFault is on,
// is a memory fault in the file the chunks are read from (it shrank).
func (c *Chunks) Faulted(r any) bool {
	addr, ok := faultAddr(r)
	if !ok {
		return false
	}
	_, ok = inMapping(addr, c.data)
	return ok
}

// Len is the number of chunks.
func (c *Chunks) Len() int { return c.n }

// LinkType is the link type of every record.
func (c *Chunks) LinkType() uint16 { return c.r.link }

func (c *Chunks) bounds(i int) (lo, hi int) {
	lo = c.first + i*c.size
	return lo, min(lo+c.size, len(c.data))
}

// Records are the records found in one chunk: those that start in it, the
// last one possibly running into the next chunk.
type Records struct {
	c      *Chunks
	lo, hi int
	start  int // the first record; -1 when none was found
	end    int // where the record after the last one starts
	clean  bool
	offs   []rec // the records, from their headers
	j      int   // next record for Next

	// What Next saw, for Commit.
	first, last int64 // times of the first and last records
	min, max    int64
	jump        bool   // a timestamp leap between two records (an anomaly)
	long        uint64 // records longer than the snap length (anomalies)
	longIdx     int    // the first of them
	longCap     uint32
}

// Bounds returns the chunk's byte range.
func (rs *Records) Bounds() (lo, hi int64) { return int64(rs.lo), int64(rs.hi) }

// Len is the number of records found.
func (rs *Records) Len() int { return len(rs.offs) }

// rec is a record header as Find read it (in the file's byte order).
type rec struct {
	off                     uint32 // from lo
	sec, frac, caplen, wire uint32
}

// maxGroup bounds the chunks one Find walks together.
const maxGroup = 16

// Find finds the records of chunks first, first+1, ... into rs (one chunk
// each; chunks past the end get none). It may run concurrently with other
// calls of Find and with the committing goroutine. When each is not nil,
// Find calls it as it finds each record, with the record's Records and k,
// its place in rs: r.Next then hands the record out (the work on a record
// hides the wait for the next one).
func (c *Chunks) Find(first int, rs []*Records, each func(k int, r *Records)) {
	if len(rs) > maxGroup {
		c.Find(first, rs[:maxGroup], each)
		if each == nil {
			c.Find(first+maxGroup, rs[maxGroup:], nil)
		} else {
			c.Find(first+maxGroup, rs[maxGroup:], func(k int, r *Records) { each(maxGroup+k, r) })
		}
		return
	}
	data := c.data
	o := c.r.order
	var pos [maxGroup]int
	active := 0
	for k, r := range rs {
		i := first + k
		c.Unfound(i, r)
		pos[k] = -1
		if i >= c.n {
			continue
		}
		p := c.resync(r.lo, r.hi)
		pos[k] = p
		if p < 0 {
			continue
		}
		r.start = p
		active++
	}
	// Walk the chains side by side. Each step of a chain is a load that
	// depends on the step before (a record's length says where the next
	// one starts), and on a large file it misses the caches: the next
	// record is asked for as soon as its offset is known, and arrives
	// while the other chains' records are read and handed out.
	base := uintptr(unsafe.Pointer(unsafe.SliceData(data)))
	for active > 0 {
		for k, r := range rs {
			p := pos[k]
			if p < 0 {
				continue
			}
			if p >= r.hi { // the next record belongs to the next chunk (or p is the end)
				r.end, r.clean, pos[k] = p, true, -1
				active--
				continue
			}
			if p+pcapRecHdr > len(data) {
				r.end, pos[k] = p, -1 // damage: the sequential reader will say what it is
				active--
				continue
			}
			hdr := data[p : p+pcapRecHdr]
			caplen := o.u32(hdr[8:])
			next := p + pcapRecHdr + int(caplen)
			if caplen > MaxRecordLen || next > len(data) {
				r.end, pos[k] = p, -1
				active--
				continue
			}
			// The next header and the packet headers after it (up to
			// TCP options).
			mem.Prefetch96(base + uintptr(next))
			// In place, field by field: a literal built and then copied
			// stalls on store forwarding, once per record.
			n := len(r.offs)
			if n == cap(r.offs) {
				r.offs = slices.Grow(r.offs, 1)
			}
			r.offs = r.offs[:n+1]
			rc := &r.offs[n]
			rc.off, rc.sec, rc.frac, rc.caplen, rc.wire = uint32(p-r.lo), o.u32(hdr), o.u32(hdr[4:]), caplen, o.u32(hdr[12:])
			pos[k] = next
			if each != nil {
				each(k, r)
			}
		}
	}
}

// Unfound sets rs to chunk i with no records found (a worker that failed):
// Commit refuses it, so the chunk is read sequentially.
func (c *Chunks) Unfound(i int, rs *Records) {
	*rs = Records{c: c, start: -1, end: -1, offs: rs.offs[:0]}
	rs.lo, rs.hi = len(c.data), len(c.data)
	if i < c.n {
		rs.lo, rs.hi = c.bounds(i)
	}
}

// resyncChain is how many consecutive plausible headers make a boundary.
const resyncChain = 8

// resync returns the first offset in [lo, hi) where a chain of plausible
// record headers starts, or -1. The chunk at the start of the records is
// not guessed.
func (c *Chunks) resync(lo, hi int) int {
	if lo == c.first {
		return lo
	}
	// A quick pass for the seconds of a header (within a year of the
	// first record's), then the whole chain.
	data, o := c.data, c.r.order
	base := c.firstSec - 366*86400
	for p := lo; p < hi && p+4 <= len(data); p++ {
		if o.u32(data[p:])-base <= 2*366*86400 && c.plausible(p) {
			return p
		}
	}
	return -1
}

// plausible reports whether a chain of record headers starts at p: each
// one's captured length at most MaxRecordLen and not above the wire length,
// its fraction of a second in range, its time within an hour of the one
// before and within a year of the file's first, and each record ending where
// the next header starts (or exactly at the end of the file). A wrong guess
// costs only time: Commit checks it.
func (c *Chunks) plausible(p int) bool {
	data := c.data
	o := c.r.order
	var prev uint32
	for h := 0; h < resyncChain; h++ {
		if p == len(data) {
			return h > 0
		}
		if p+pcapRecHdr > len(data) {
			return false
		}
		hdr := data[p : p+pcapRecHdr]
		sec, frac, caplen, wire := o.u32(hdr), o.u32(hdr[4:]), o.u32(hdr[8:]), o.u32(hdr[12:])
		// (The captured length is checked against MaxRecordLen, not the snap
		// length: some writers store longer records.)
		if sec == 0 || frac >= c.fracMax || caplen > MaxRecordLen || caplen > wire || wire > 1<<24 {
			return false
		}
		// Within an hour of the previous record, and within a year of the
		// file's first: a header read 4 bytes late (its microseconds taken
		// for seconds, its lengths shifted) fails here.
		if (h > 0 && sec-prev+3600 > 2*3600) || sec-c.firstSec+366*86400 > 2*366*86400 {
			return false
		}
		prev = sec
		p += pcapRecHdr + int(caplen)
	}
	return p <= len(data)
}

// Release hands the mapped pages of the records committed so far back to
// the page cache, so that they do not pile up in the process's RSS (as the
// sequential reader does as it goes). Any goroutine may call it, often.
func (c *Chunks) Release() {
	if !c.mapped {
		return
	}
	done := c.committed.Load() &^ int64(os.Getpagesize()-1)
	if done-c.released.Load() < releaseChunk || !c.relMu.TryLock() {
		return
	}
	if r := c.released.Load(); done-r >= releaseChunk {
		release(c.data[r:done])
		c.released.Store(done)
	}
	c.relMu.Unlock()
}

// Next hands out the chunk's next record (Num counts from 1 within the
// chunk; Commit says where the chunk starts) and notes what Commit needs to
// book it. It returns false after the last one.
func (rs *Records) Next(p *Packet) bool {
	if rs.j >= len(rs.offs) {
		return false
	}
	c := rs.c
	j := rs.j
	rs.j++
	h := &rs.offs[j]
	at := rs.lo + int(h.off)
	caplen := int(h.caplen)
	n := at + pcapRecHdr + caplen
	// Field by field: a Packet built and copied whole stalls on store
	// forwarding.
	p.Data = c.data[at+pcapRecHdr : n : n]
	p.Time = int64(h.sec)*1e9 + int64(h.frac)*c.r.fracUnit
	p.OrigLen = max(int(h.wire), caplen)
	p.LinkType = c.r.link
	p.Num = uint64(j + 1)
	p.Offset = int64(at)
	p.Source, p.IfIndex = 0, 0
	if s := c.r.info.Snaplen; s != 0 && uint32(caplen) > s {
		if rs.long == 0 {
			rs.longIdx, rs.longCap = j, uint32(caplen)
		}
		rs.long++
	}
	t := p.Time
	if j == 0 {
		rs.first, rs.min, rs.max = t, t, t
	} else {
		if d := t - rs.last; d > maxForwardJump || d < -maxBackwardJump {
			rs.jump = true
		}
		rs.min, rs.max = min(rs.min, t), max(rs.max, t)
	}
	rs.last = t
	return true
}

// Offset is where the sequential reader's next record starts.
func (c *Chunks) Offset() int64 { return c.r.w.off }

// Commit books the chunk's records as read, when they are exactly what the
// sequential reader would read next: the chunk starts where the reader
// stands, holds no damage and no timestamp leap, and Next has handed out
// all its records. It returns the number of packets read before the chunk
// (a record's packet number is that plus its Num). When it returns false,
// nothing changed: read the chunk with Next instead.
func (c *Chunks) Commit(rs *Records) (base uint64, ok bool) {
	f := &c.r.file
	if f.err != nil || !rs.clean || rs.jump || len(rs.offs) == 0 || rs.j != len(rs.offs) || int64(rs.start) != f.w.off {
		return 0, false
	}
	if f.info.Packets > 0 {
		if d := rs.first - f.prev; d > maxForwardJump || d < -maxBackwardJump {
			return 0, false
		}
	}
	base = f.info.Packets
	if rs.long > 0 {
		c.r.longRecord(base+uint64(rs.longIdx)+1, int64(rs.lo)+int64(rs.offs[rs.longIdx].off), rs.longCap)
		f.info.Anomalies += rs.long - 1
	}
	if f.info.Packets == 0 || rs.min < f.info.First {
		f.info.First = rs.min
	}
	if f.info.Packets == 0 || rs.max > f.info.Last {
		f.info.Last = rs.max
	}
	f.prev = rs.last
	f.info.Packets += uint64(len(rs.offs))
	f.consume(rs.end - rs.start)
	c.committed.Store(f.w.off)
	return base, true
}

// Next reads the next record with the sequential reader.
func (c *Chunks) Next(p *Packet) error {
	err := c.r.Next(p)
	c.committed.Store(c.r.w.off)
	return err
}
