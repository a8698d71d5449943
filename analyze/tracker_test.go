package analyze

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"
	"unsafe"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

func run(cfg Config, pkts []Packet) (*Summary, []*Attempt) {
	var out []*Attempt
	an := NewAnalyzer(cfg, nil, func(a *Attempt) bool { out = append(out, a); return true })
	for i := range pkts {
		an.Packet(&pkts[i])
	}
	an.Finish()
	SortAttempts(out)
	return an.Summary(), out
}

func sumOutcomes(s *Summary) uint64 {
	var n uint64
	for _, v := range s.Outcomes {
		n += v
	}
	return n
}

// synFlood returns n SYNs from distinct clients, 1 ms apart, then one
// packet 10 s later so every SYN has waited out the SYN timeout.
func synFlood(t testing.TB, n int) []Packet {
	var pkts []Packet
	base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC).UnixNano()
	add := func(ts int64, sport uint16) {
		tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: 80, SYN: true, Seq: uint32(sport) * 1000}
		f := frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), tcp)
		pkts = append(pkts, Packet{Data: f, Time: ts, OrigLen: len(f), LinkType: LinkEthernet, Ref: PacketRef{Num: uint64(len(pkts) + 1)}})
	}
	for i := 0; i < n; i++ {
		add(base+int64(i)*int64(time.Millisecond), uint16(10000+i))
	}
	add(base+int64(10*time.Second), 9999)
	return pkts
}

func TestEvictionIsCountedAndOutcomesStillSum(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxFlows, cfg.MaxSYNOnly = 4, 4
	s, atts := run(cfg, synFlood(t, 10))
	if s.Attempts != 11 || uint64(len(atts)) != s.Attempts {
		t.Fatalf("attempts %d, emitted %d, want 11", s.Attempts, len(atts))
	}
	if s.Evicted != 7 { // 11 flows through a table of 4
		t.Errorf("evicted %d, want 7", s.Evicted)
	}
	if got := sumOutcomes(s); got != s.Attempts {
		t.Errorf("outcomes sum to %d, attempts %d", got, s.Attempts)
	}
	// Evicted attempts are judged at the moment of eviction: six were pushed
	// out by SYNs a few ms younger (too soon to say), the seventh by the
	// packet 10 s later (long enough to call it unanswered).
	got := map[Outcome]int{}
	for _, a := range atts {
		if a.Evicted {
			got[a.Outcome]++
		}
	}
	if want := map[Outcome]int{OutcomeUndetermined: 6, OutcomeUnanswered: 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("outcomes of evicted attempts %v, want %v", got, want)
	}
}

func TestUnansweredAfterTimeout(t *testing.T) {
	s, atts := run(DefaultConfig(), synFlood(t, 3))
	if s.Outcomes[OutcomeUnanswered] != 3 || s.Outcomes[OutcomeUndetermined] != 1 {
		t.Errorf("outcomes %v: want 3 unanswered (10 s of capture after them) and 1 undetermined (the last SYN)", s.Outcomes)
	}
	if len(atts) != 4 || atts[0].ID != 1 || atts[3].ID != 4 {
		t.Errorf("attempt ids not in order of first packet")
	}
}

func TestDeterministic(t *testing.T) {
	pkts := benchStream(t, 300)
	_, a1 := run(DefaultConfig(), pkts)
	_, a2 := run(DefaultConfig(), pkts)
	if !reflect.DeepEqual(a1, a2) {
		t.Fatal("two runs over the same packets disagree")
	}
}

// conv builds one connection's packets between 192.0.2.1:40000 and
// 198.51.100.2:443, ts in milliseconds.
type conv struct {
	t    testing.TB
	pkts []Packet
}

func (c *conv) add(ms int64, fromClient bool, flags uint8, seq, ack uint32, n int) *conv {
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 443, Seq: seq, Ack: ack, Window: 8192,
		SYN: flags&FlagSYN != 0, ACK: flags&FlagACK != 0, RST: flags&FlagRST != 0, FIN: flags&FlagFIN != 0, PSH: flags&FlagPSH != 0}
	ip := ip4(layers.IPProtocolTCP)
	ip.Id = uint16(len(c.pkts) + 1)
	if !fromClient {
		tcp.SrcPort, tcp.DstPort = 443, 40000
		ip.SrcIP, ip.DstIP = srv4, cli4
	}
	f := frame(c.t, eth(layers.EthernetTypeIPv4), ip, tcp, gopacket.Payload(make([]byte, n)))
	base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC).UnixNano()
	c.pkts = append(c.pkts, Packet{Data: f, Time: base + ms*int64(time.Millisecond), OrigLen: len(f), LinkType: LinkEthernet, Ref: PacketRef{Num: uint64(len(c.pkts) + 1)}})
	return c
}

// A server still holding an old connection answers the SYN with a SYN-ACK
// (or ACK) for it; the client's RST clears it and the retransmitted SYN
// succeeds: one attempt, answered after a retransmit, flagged stale.
func TestStaleServerState(t *testing.T) {
	const S, A, R = FlagSYN, FlagACK, FlagRST
	for _, stale := range []uint8{S | A, A} {
		c := &conv{t: t}
		c.add(0, true, S, 1000, 0, 0).
			add(10, false, stale, 777, 5001, 0). // acknowledges another sequence space
			add(11, true, R, 5001, 0, 0).
			add(1000, true, S, 1000, 0, 0).
			add(1010, false, S|A, 9000, 1001, 0).
			add(1011, true, A, 1001, 9001, 0).
			add(5000, true, A|FlagFIN, 1001, 9001, 0)
		s, atts := run(DefaultConfig(), c.pkts)
		if len(atts) != 1 {
			t.Fatalf("stale %s: %d attempts, want 1", stringFlags(stale), len(atts))
		}
		a := atts[0]
		if a.Outcome != OutcomeAnsweredAfterRetransmit || a.StaleACKs != 1 || a.Syns != 2 || s.SynRetransmits != 1 {
			t.Errorf("stale %s: outcome %s, stale %d, syns %d, retransmits %d", stringFlags(stale), a.Outcome, a.StaleACKs, a.Syns, s.SynRetransmits)
		}
		if a.RetransmitDelay() != time.Second {
			t.Errorf("retransmit delay %v, want 1s", a.RetransmitDelay())
		}
	}
}

func stringFlags(f uint8) string {
	if f&FlagSYN != 0 {
		return "SYN-ACK"
	}
	return "ACK"
}

// The two-goroutine pipeline gives exactly the serial verdicts.
func TestPipelineMatchesSerial(t *testing.T) {
	pkts := benchStream(t, 700) // several batches
	s1, a1 := run(DefaultConfig(), pkts)
	var a2 []*Attempt
	an := NewAnalyzer(DefaultConfig(), nil, func(a *Attempt) bool { a2 = append(a2, a); return true })
	pl := an.Pipeline()
	for i := range pkts {
		pl.Packet(&pkts[i])
	}
	pl.Close()
	an.Finish()
	SortAttempts(a2)
	if !reflect.DeepEqual(a1, a2) || !reflect.DeepEqual(*s1, *an.Summary()) {
		t.Fatal("pipeline and serial analysis disagree")
	}
}

// indexKey is the n-th key of the embryo index tests.
func indexKey(n uint32) flowKey {
	var k flowKey
	k.a[0], k.a[1], k.a[2], k.a[3] = 10, byte(n>>16), byte(n>>8), byte(n)
	k.b[0], k.pa, k.pb = 192, uint16(n*7), 443
	return k
}

// indexCase is one run of an embryo index test: how many keys, how many
// steps, and the hash the keys are filed under (of the key and its number).
type indexCase struct {
	name  string
	keys  uint32
	steps int
	hash  func(k *flowKey, n uint32) uint32
}

// The hashes of the index tests: the real one, one crowding the keys onto
// a few buckets (passed on over many), and one equal for all (every tag
// matches: only the key tells entries apart).
func realHash(k *flowKey, _ uint32) uint32    { return keyHash(k) }
func crowdedHash(k *flowKey, n uint32) uint32 { return keyHash(k)&^0xfffff | 1 + n%8*3 }
func equalHash(*flowKey, uint32) uint32       { return 0x9e3779b1 }

var indexCases = []indexCase{
	{"keyHash", 4000, 150000, realHash},
	{"crowded", 600, 40000, crowdedHash},
	{"equal", 200, 40000, equalHash},
}

// The index doubles while small and then takes its full size at once;
// the slab's chunks, made ahead of need past the first two, hold every
// record as written.
func TestEmbryoGrowth(t *testing.T) {
	for _, max := range []int{100_000, 1 << 17, DefaultConfig().MaxSYNOnly, 1 << 23} {
		t.Run(strconv.Itoa(max), func(t *testing.T) {
			et := newEmbryos(max)
			var sizes []int
			for n := uint32(0); n < 3*jumpBuckets; n++ {
				k := indexKey(n)
				if _, e := et.alloc(&k, keyHash(&k), false); e.key != k {
					t.Fatalf("record %d: key not written", n)
				}
				if nb := et.bmask + 1; len(sizes) == 0 || sizes[len(sizes)-1] != nb {
					sizes = append(sizes, nb)
				}
			}
			full := 1 // the least power of two of room enough for max records
			for bucketLoad*full < max {
				full *= 2
			}
			var want []int
			for nb := 64; nb <= jumpBuckets; nb *= 2 {
				want = append(want, nb)
			}
			want = append(want, min(full, jumpTo))
			if !slices.Equal(sizes, want) {
				t.Fatalf("bucket counts %v, want %v", sizes, want)
			}
			// Past jumpTo, a table doubles again.
			if full > jumpTo {
				if nb := et.grown(); nb != 2*jumpTo {
					t.Fatalf("after the jump, grown gives %d buckets, want %d", nb, 2*jumpTo)
				}
			}
			if len(et.chunks) < 3*jumpBuckets/chunkSize {
				t.Fatalf("%d chunks for %d records", len(et.chunks), 3*jumpBuckets)
			}
			for n := uint32(0); n < 3*jumpBuckets; n++ {
				k := indexKey(n)
				if i, ok := et.lookup(&k, keyHash(&k)); !ok || et.at(i).key != k {
					t.Fatalf("record %d: lookup %d,%v", n, i, ok)
				}
			}
		})
	}
	// The default table jumps straight to its full size (the flood's
	// speed), and jumpTo is no larger than that.
	if full := DefaultConfig().MaxSYNOnly / bucketLoad; jumpTo != full {
		t.Errorf("jumpTo is %d buckets, a full default table needs %d", jumpTo, full)
	}
}

// A horizon outlives the keys it covers when they are answered (their
// places are still in the queue): with every bucket in that state (8 keys
// filed under each, then answered, while a record at the front keeps the
// queue's front still), a lookup walks every bucket and finds nothing,
// and the next insert rebuilds the index, which clears the horizons. The
// crafted traffic review found looped forever in the lookup before.
func TestEmbryoIndexStaleHorizons(t *testing.T) {
	et := newEmbryos(1 << 20)
	nb := et.bmask + 1
	anchor := indexKey(1 << 20)
	et.alloc(&anchor, 0x7fff0001, false)
	num := uint32(0)
	for b := 0; b < nb; b++ {
		var is []int32
		for range 8 {
			num++
			k := indexKey(num)
			i, _ := et.alloc(&k, uint32(b)<<1|1|num<<20, false)
			is = append(is, i)
		}
		for _, i := range is {
			et.remove(i)
		}
	}
	if et.bmask+1 != nb {
		t.Fatalf("the index grew (%d buckets, from %d): the test missed what it is for", et.bmask+1, nb)
	}
	missing := indexKey(num + 1)
	if _, ok := et.lookup(&missing, 0x12345679); ok {
		t.Fatal("found a key never inserted")
	}
	if !et.longWalks {
		t.Fatal("a lookup over every bucket did not ask for a rebuild")
	}
	et.alloc(&missing, 0x12345679, false)
	for b := range et.bmask + 1 {
		if et.bkt(b)[0]&hdrOverflow != 0 {
			t.Fatalf("bucket %d still overflows after the rebuild", b)
		}
	}
	if i, ok := et.lookup(&anchor, 0x7fff0001); !ok || et.len() != 2 {
		t.Fatalf("after the rebuild: anchor %d,%v, %d records; want 2", i, ok, et.len())
	}
}

// The embryo index agrees with a Go map under heavy churn of inserts and
// removals: with the real hash, and with hashes crowded onto a few home
// buckets (keys passed on over many buckets) or all equal (every tag
// matches: only the key tells entries apart).
func TestEmbryoIndexChurn(t *testing.T) {
	key := indexKey
	for _, c := range indexCases {
		et := newEmbryos(1 << 20)
		ref := map[flowKey]int32{}
		r := rand.New(rand.NewPCG(7, 9))
		for step := 0; step < c.steps; step++ {
			n := r.Uint32N(c.keys)
			k := key(n)
			h := c.hash(&k, n)
			if i, ok := ref[k]; ok {
				if got, ok2 := et.lookup(&k, h); !ok2 || got != i {
					t.Fatalf("%s, step %d: lookup %v = %d,%v; want %d", c.name, step, n, got, ok2, i)
				}
				et.remove(i)
				delete(ref, k)
			} else {
				if _, ok2 := et.lookup(&k, h); ok2 {
					t.Fatalf("%s, step %d: found a removed key", c.name, step)
				}
				ref[k], _ = et.alloc(&k, h, false)
			}
		}
		if et.len() != len(ref) {
			t.Fatalf("%s: len %d, want %d", c.name, et.len(), len(ref))
		}
		for n := uint32(0); n < c.keys; n++ {
			k := key(n)
			i, want := ref[k]
			if got, ok := et.lookup(&k, c.hash(&k, n)); ok != want || (ok && got != i) {
				t.Fatalf("%s: final lookup of %d: %d,%v; want %d,%v", c.name, n, got, ok, i, want)
			}
		}
	}
}

// The embryo index's entries die with their places in the LRU queue: under
// churn of inserts, renewals (retransmits), removals (answers) and
// evictions from the front, with real, crowded and equal hashes, lookups
// agree with a model of the table, the front is its least recently used
// record, and the table's length is right. The queue starts just before
// its places wrap around 2^32, and compaction renumbers them (rebuilding
// the index) along the way. Run again with the periodic rebuild (every
// 2^30 places, so that no dead entry lives to see its place come round
// again) every 97 places, at any point of the churn.
func TestEmbryoIndexLazy(t *testing.T) {
	for _, every := range []uint64{rebuildEvery, 97} {
		t.Run(strconv.FormatUint(every, 10), func(t *testing.T) { testEmbryoIndexLazy(t, every) })
	}
}

func testEmbryoIndexLazy(t *testing.T, every uint64) {
	key := indexKey
	for _, c := range indexCases {
		et := newEmbryos(1 << 20)
		et.every = every
		start := uint64(1<<32 - 500)
		et.qhead, et.qtail, et.rebuilt = start, start, start
		type rec struct {
			i   int32
			seq int
		}
		ref := map[uint32]rec{} // key number: slab index and last use
		r := rand.New(rand.NewPCG(11, 13))
		compactions, wrapped := 0, false
		for step := 0; step < c.steps; step++ {
			tail := et.qtail
			n := r.Uint32N(c.keys)
			k := key(n)
			h := c.hash(&k, n)
			got, ok := et.lookup(&k, h)
			want, in := ref[n]
			if ok != in || (ok && got != want.i) {
				t.Fatalf("%s, step %d: lookup of %d = %d,%v; want %d,%v", c.name, step, n, got, ok, want.i, in)
			}
			switch op := r.IntN(64); {
			case !in:
				i, _ := et.alloc(&k, h, false)
				ref[n] = rec{i, step}
			case op < 32: // a retransmit renews it
				et.renew(want.i)
				ref[n] = rec{want.i, step}
			case op < 63: // answered
				et.remove(want.i)
				delete(ref, n)
			default: // evicted: the least recently used goes
				oldest, first := uint32(0), -1
				for m, v := range ref {
					if first < 0 || v.seq < first {
						oldest, first = m, v.seq
					}
				}
				i := et.head()
				if i != ref[oldest].i {
					t.Fatalf("%s, step %d: front %d, want %d (key %d)", c.name, step, i, ref[oldest].i, oldest)
				}
				et.remove(i)
				delete(ref, oldest)
			}
			if et.len() != len(ref) {
				t.Fatalf("%s, step %d: len %d, want %d", c.name, step, et.len(), len(ref))
			}
			if et.qtail < tail {
				compactions++ // renumbered from 0
			} else if tail < 1<<32 && et.qtail >= 1<<32 {
				wrapped = true
			}
		}
		for n := uint32(0); n < c.keys; n++ {
			k := key(n)
			want, in := ref[n]
			if got, ok := et.lookup(&k, c.hash(&k, n)); ok != in || (ok && got != want.i) {
				t.Fatalf("%s: final lookup of %d: %d,%v; want %d,%v", c.name, n, got, ok, want.i, in)
			}
		}
		if !wrapped || compactions == 0 {
			t.Fatalf("%s: wrapped %v, %d compactions: the test missed what it is for", c.name, wrapped, compactions)
		}
		if every < rebuildEvery && et.rebuilds < c.steps/int(every)/2 {
			t.Fatalf("%s: %d rebuilds in %d steps, one every %d places", c.name, et.rebuilds, c.steps, every)
		}
	}
}

// The LRU queue (lazy deletion, compaction) gives the records in the order
// of their last insertion or renewal, as a plain list does, under churn of
// inserts, renewals and removals, and stays within its bound.
func TestEmbryoLRUOrder(t *testing.T) {
	et := newEmbryos(1 << 20)
	var order []flowKey // the model: least recently used first
	in := map[flowKey]int32{}
	r := rand.New(rand.NewPCG(3, 5))
	key := func(n uint32) flowKey {
		var k flowKey
		k.a[0], k.a[1], k.a[2], k.a[3] = 10, byte(n>>16), byte(n>>8), byte(n)
		k.b[0], k.pa, k.pb = 192, uint16(n), 80
		return k
	}
	drop := func(k flowKey) {
		for j := range order {
			if order[j] == k {
				order = append(order[:j], order[j+1:]...)
				return
			}
		}
	}
	for step := 0; step < 60000; step++ {
		k := key(r.Uint32N(3000))
		i, ok := in[k]
		switch {
		case !ok:
			in[k], _ = et.alloc(&k, keyHash(&k), false)
			order = append(order, k)
		case r.IntN(2) == 0: // a retransmit renews it
			et.renew(i)
			drop(k)
			order = append(order, k)
		default: // answered, or evicted from the front
			if r.IntN(4) == 0 {
				i = et.head()
				k = et.at(i).key
				if k != order[0] {
					t.Fatalf("step %d: head %v, want %v", step, k, order[0])
				}
			}
			et.remove(i)
			delete(in, k)
			drop(k)
		}
		if q := et.qtail - et.qhead; q > uint64(max(4*et.len(), 1024)) {
			t.Fatalf("step %d: queue of %d entries for %d records", step, q, et.len())
		}
	}
	for _, want := range order {
		i := et.head()
		if i < 0 || et.at(i).key != want {
			t.Fatalf("final order differs")
		}
		et.remove(i)
	}
	if et.head() >= 0 {
		t.Fatal("records left")
	}
}

// The same with the stale ACK not captured (a live filter that keeps no pure
// ACKs): the client's RST outside its own sequence space says it was there.
func TestStaleServerStateACKNotCaptured(t *testing.T) {
	const S, A, R = FlagSYN, FlagACK, FlagRST
	c := &conv{t: t}
	c.add(0, true, S, 1000, 0, 0).
		add(11, true, R, 5001, 0, 0).
		add(20, true, S, 1000, 0, 0).
		add(30, false, S|A, 9000, 1001, 0).
		add(31, true, A, 1001, 9001, 0).
		add(5000, true, A|FlagFIN, 1001, 9001, 0)
	_, atts := run(DefaultConfig(), c.pkts)
	if len(atts) != 1 {
		t.Fatalf("%d attempts, want 1", len(atts))
	}
	if a := atts[0]; a.Outcome != OutcomeAnsweredAfterRetransmit || a.StaleACKs != 1 || a.Syns != 2 || a.Close != CloseFIN {
		t.Errorf("outcome %s, stale %d, syns %d, close %s", a.Outcome, a.StaleACKs, a.Syns, a.Close)
	}
	// A client RST with its own next sequence number is an abort: the
	// attempt ends there.
	c = &conv{t: t}
	c.add(0, true, S, 1000, 0, 0).add(11, true, R, 1001, 0, 0).add(5000, true, S, 1000, 0, 0)
	if _, atts := run(DefaultConfig(), c.pkts); len(atts) != 2 {
		t.Errorf("own RST: %d attempts, want 2", len(atts))
	}
}

// A handshake seen complete only at the client's first data (the pure ACK
// not captured) gives no round-trip time.
func TestHandshakeRTTNotFromData(t *testing.T) {
	const S, A = FlagSYN, FlagACK
	for _, pureACK := range []bool{true, false} {
		c := &conv{t: t}
		c.add(0, true, S, 1000, 0, 0).add(10, false, S|A, 9000, 1001, 0)
		if pureACK {
			c.add(20, true, A, 1001, 9001, 0)
		}
		c.add(500, true, A|FlagPSH, 1001, 9001, 100).add(600, false, A|FlagPSH, 9001, 1101, 100)
		_, atts := run(DefaultConfig(), c.pkts)
		_, cl, ok := atts[0].HandshakeRTT()
		if ok != pureACK || (ok && cl != 10*time.Millisecond) {
			t.Errorf("pure ACK %v: client RTT %v, ok %v", pureACK, cl, ok)
		}
	}
}

// An embryo of one SYN is in the first two cache lines of its record.
func TestEmbryoLayout(t *testing.T) {
	var e embryo
	if n := unsafe.Sizeof(e); n != 192 {
		t.Errorf("embryo is %d bytes, want 192", n)
	}
	if o := unsafe.Offsetof(e.last) + unsafe.Sizeof(e.last); o > 64 {
		t.Errorf("the tracker's part ends at %d, beyond the first line", o)
	}
	if o := unsafe.Offsetof(e.syn0) + unsafe.Sizeof(e.syn0); o > 128 {
		t.Errorf("the first SYN ends at %d, beyond the second line", o)
	}
	if o := unsafe.Offsetof(e.syn1); o != 128 {
		t.Errorf("the second SYN starts at %d, not the third line", o)
	}
	// Records are written with non-temporal stores once the table streams
	// (embryos.publish), which need 16-byte alignment: a chunk starts on a
	// page (Go allocates large objects so) and records are 192 bytes.
	et := newEmbryos(3 * chunkSize)
	for n := 0; n < 2*chunkSize+1; n++ {
		k := flowKey{pa: uint16(n), pb: uint16(n >> 16)}
		et.alloc(&k, keyHash(&k), false)
	}
	for c, chunk := range et.chunks {
		if p := uintptr(unsafe.Pointer(&chunk[0])); p%64 != 0 {
			t.Errorf("chunk %d starts at %#x, not on a cache line", c, p)
		}
	}
}

// An answer on another VLAN joins the attempt it answers even when it is the
// capture's first tagged packet (the tracker starts indexing flows by their
// untagged 4-tuple only then), and with flows before it that it does not
// answer.
func TestAnswerOnOtherVLANFirstTagged(t *testing.T) {
	const S, A = FlagSYN, FlagACK
	c := &conv{t: t}
	c.add(0, true, S, 1000, 0, 0) // a SYN left in the SYN-only table
	// Other connections, on other ports, complete untagged.
	for i := 0; i < 3; i++ {
		n := len(c.pkts)
		c.add(int64(1+i), true, S, 5000, 0, 0).add(int64(2+i), false, S|A, 7000, 5001, 0)
		for j := n; j < len(c.pkts); j++ {
			p := c.pkts[j].Data
			p[14+20+1], p[14+20+3] = byte(i+1), byte(i+1) // the source and destination ports' low bytes
		}
	}
	// The SYN-ACK for the first SYN, tagged VLAN 7 (a router on a trunk).
	c.add(10, false, S|A, 9000, 1001, 0)
	last := &c.pkts[len(c.pkts)-1]
	tagged := make([]byte, 0, len(last.Data)+4)
	tagged = append(tagged, last.Data[:12]...)
	tagged = append(tagged, 0x81, 0x00, 0x00, 0x07)
	tagged = append(tagged, last.Data[12:]...)
	last.Data, last.OrigLen = tagged, len(tagged)
	c.add(11, true, A, 1001, 9001, 0)

	_, atts := run(DefaultConfig(), c.pkts)
	var found bool
	for _, a := range atts {
		if a.ISN == 1000 {
			found = true
			if a.SynAcks != 1 || !a.HandshakeDone {
				t.Errorf("the tagged answer was not joined: %d SYN-ACKs, handshake done %v", a.SynAcks, a.HandshakeDone)
			}
		}
	}
	if !found || len(atts) != 4 {
		t.Fatalf("%d attempts (want 4), the first found %v", len(atts), found)
	}
}
