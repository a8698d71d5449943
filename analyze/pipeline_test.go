package analyze

import (
	"math/rand/v2"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// snapshot copies an attempt as emitted: an attempt emit does not keep is
// reused afterwards.
func snapshot(a *Attempt) Attempt {
	s := *a
	s.Timeline = append([]Event(nil), a.Timeline...)
	return s
}

// TestBatchesMatchSerial: decoding in batches (DecodeInto, out of the
// tracker's goroutine), tracking them in order (TrackBatch) and emitting in a
// goroutine of its own once the SYN-only table overflows (EmitAsync) gives
// exactly the serial result: the same attempts, emitted in the same order,
// and the same summary, whether the goroutine is stopped before Finish or
// Finish ends the embryos left through it and stops it.
func TestBatchesMatchSerial(t *testing.T) {
	pkts := append(benchStream(t, 700), synFlood(t, 3000)...)
	sort.SliceStable(pkts, func(i, j int) bool { return pkts[i].Time < pkts[j].Time })
	pkts[len(pkts)/2].Time -= 5e9 // a packet out of order
	for i := range pkts {
		pkts[i].Ref.Num = uint64(i + 1)
	}
	cfg := DefaultConfig()
	cfg.MaxSYNOnly = 500 // the flood overflows it

	for _, c := range []struct{ keep, stopFirst bool }{{true, true}, {false, true}, {true, false}, {false, false}} {
		keep := c.keep
		var want []Attempt
		an := NewAnalyzer(cfg, nil, func(a *Attempt) bool { want = append(want, snapshot(a)); return keep })
		for i := range pkts {
			an.Packet(&pkts[i])
		}
		an.Finish()
		wantSum := *an.Summary()

		var got []Attempt
		an = NewAnalyzer(cfg, nil, func(a *Attempt) bool { got = append(got, snapshot(a)); return keep })
		stop := an.EmitAsync()
		r := rand.New(rand.NewPCG(1, 2))
		var b Batch
		batches, refused := 0, 0
		for i := 0; i < len(pkts); {
			n := min(1+r.IntN(300), len(pkts)-i)
			b.Reset()
			for j := i; j < i+n; j++ {
				p := pkts[j]
				p.Ref.Num -= uint64(i) // DecodeInto sees numbers from the batch's start
				an.DecodeInto(&b, &p)
			}
			if an.Accepts(&b) {
				an.TrackBatch(&b, uint64(i))
				batches++
			} else {
				for j := i; j < i+n; j++ {
					an.Packet(&pkts[j])
				}
				refused++
			}
			i += n
		}
		if c.stopFirst {
			stop()
		}
		an.Finish()
		if an.tracker.em != nil {
			t.Error("the emitting goroutine still runs after Finish")
		}
		if batches == 0 || refused == 0 {
			t.Errorf("%d batches tracked, %d refused: both paths should be taken", batches, refused)
		}
		if an.Summary().Evicted == 0 {
			t.Error("nothing evicted: the emitting goroutine was not used")
		}
		if len(got) != len(want) {
			t.Fatalf("%+v: %d attempts emitted, want %d", c, len(got), len(want))
		}
		for i := range want {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Fatalf("%+v: attempt %d emitted differs:\n got %+v\nwant %+v", c, i, got[i], want[i])
			}
		}
		if !reflect.DeepEqual(*an.Summary(), wantSum) {
			t.Errorf("%+v: summary differs:\n got %+v\nwant %+v", c, *an.Summary(), wantSum)
		}
	}
}

// A batch whose packet numbers (from its start) do not fit a batch entry is
// refused, to be read packet by packet, rather than numbered wrong.
func TestBatchNumbersBeyondEntry(t *testing.T) {
	pkts := benchStream(t, 2)
	an := NewAnalyzer(DefaultConfig(), nil, nil)
	var b Batch
	for _, last := range []uint64{1 << 16, 1<<16 - 1} {
		b.Reset()
		for i := range pkts {
			p := pkts[i]
			p.Ref.Num = last - uint64(len(pkts)-1-i)
			an.DecodeInto(&b, &p)
		}
		if got, want := an.Accepts(&b), last < 1<<16; got != want {
			t.Errorf("numbers up to %d: accepted %v, want %v", last, got, want)
		}
	}
}

// TestEmbryoMatchesFullPath: a SYN-only flow kept as an embryo record gives
// the attempt, the flow state and the verdicts the full path gives the
// same SYNs. A second tracker tracks the same packets with a flow made for
// each 4-tuple beforehand (so none becomes an embryo), and for each record
// of the first: fillEmbryo builds the full path's attempt; replayEmbryo
// gives its flow the full path's handshake state (what a hatched embryo
// goes on with); and the emitting goroutine's build, and the tracker's own
// ending (finishEmbryo), judge it as conclude judges the full path's, at
// times on either side of the SYN timeout from the first and from the
// last SYN. The records have one and two SYNs, with and without options,
// data or a window, over IPv4 and IPv6, with the client on either side of
// the key.
func TestEmbryoMatchesFullPath(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC).UnixNano()
	var pkts []Packet
	add := func(ts int64, ip gopacket.SerializableLayer, et layers.EthernetType, tcp *layers.TCP, data []byte) {
		f := frame(t, eth(et), ip, tcp, gopacket.Payload(data))
		pkts = append(pkts, Packet{Data: f, Time: ts, OrigLen: len(f), LinkType: LinkEthernet, Ref: PacketRef{Source: int32(r.IntN(3)), Num: uint64(len(pkts) + 1)}})
	}
	const n = 2000
	for i := 0; i < n; i++ {
		ts := base + int64(i)*int64(time.Millisecond)
		sp := layers.TCPPort(1024 + i)
		syn := func(tsval uint32) *layers.TCP {
			tcp := &layers.TCP{SrcPort: sp, DstPort: 443, SYN: true, Seq: r.Uint32(), Window: uint16(r.IntN(3)) * 29200}
			switch r.IntN(3) {
			case 0:
				tcp.Options = synTCP().Options
				tcp.Options[len(tcp.Options)-1].OptionData = []byte{0, 0, byte(tsval >> 8), byte(tsval), 0, 0, 0, 0}
			case 1:
				tcp.Options = []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{5, 0xb4}}}
			}
			return tcp
		}
		cli, srv := "10.1.0.1", "10.2.0.1"
		if r.IntN(2) == 0 {
			cli, srv = srv, cli // the client on the key's other side
		}
		var ip gopacket.SerializableLayer = ip4L(cli, srv, layers.IPProtocolTCP, 64)
		et := layers.EthernetTypeIPv4
		if r.IntN(4) == 0 {
			ip, et = ip6L("2001:db8::"+cli[3:4], "2001:db8::"+srv[3:4], layers.IPProtocolTCP, 64), layers.EthernetTypeIPv6
		}
		var data []byte
		if r.IntN(5) == 0 {
			data = []byte("GET / HTTP/1.1\r\n\r\n") // TCP Fast Open
		}
		first := syn(uint32(i))
		add(ts, ip, et, first, data)
		if r.IntN(2) == 0 {
			again := syn(uint32(i) + 1000)
			again.Seq = first.Seq
			add(ts+int64(1+r.IntN(2))*int64(time.Second), ip, et, again, data)
		}
	}
	sort.SliceStable(pkts, func(i, j int) bool { return pkts[i].Time < pkts[j].Time })

	cfg := DefaultConfig()
	an := NewAnalyzer(cfg, nil, nil)
	full := NewAnalyzer(cfg, nil, nil)
	var d Decoded
	for i := range pkts {
		p := &pkts[i]
		an.Packet(p)
		if !full.decode(p, &d) {
			t.Fatalf("packet %d not decoded", i)
		}
		var k flowKey
		dir := keyDir(&d)
		fillKey(&k, &d, dir)
		if h := keyHash(&k); full.tracker.flows.get(&k, h) == nil {
			full.tracker.advance(p.Time) // a new flow is as old as its first packet
			full.tracker.newFlow(k, h)
		}
		full.tracker.track(&d, p.Time, p.Ref)
	}
	et := an.tracker.embryos
	if et.len() != n || full.tracker.embryos.len() != 0 {
		t.Fatalf("%d records and %d in the full path's table, want %d and 0", et.len(), full.tracker.embryos.len(), n)
	}
	var seen [NumOutcomes]int
	var twoSYN, flipped int
	wait := int64(cfg.SynTimeout)
	em := &emitter{synTimeout: cfg.SynTimeout}
	et.drain(func(i int32) {
		e := et.at(i)
		ff := full.tracker.flows.get(&e.key, keyHash(&e.key))
		if ff == nil || ff.at == nil {
			t.Fatalf("record %d: the full path has no attempt on its 4-tuple", i)
		}
		if e.nsyn == 2 {
			twoSYN++
		}
		if e.dir == 1 {
			flipped++
		}
		a := &Attempt{}
		fillEmbryo(a, e)
		if !reflect.DeepEqual(snapshot(a), snapshot(ff.at)) {
			t.Fatalf("record %d (%d SYNs):\n  embryo %+v\nfull path %+v", i, e.nsyn, *a, *ff.at)
		}
		f := &flow{}
		replayEmbryo(&Attempt{}, f, e, ff.last)
		if f.clientDir != ff.clientDir || f.srvSYN != ff.srvSYN || f.cliSYNACK != ff.cliSYNACK || f.synsAtAns != ff.synsAtAns ||
			f.lastHS != ff.lastHS || f.hasStale != ff.hasStale || f.last != ff.last || f.sig != ff.sig {
			t.Fatalf("record %d (%d SYNs): replayed flow %+v, the full path's %+v", i, e.nsyn, *f, *ff)
		}
		for _, now := range []int64{e.last, e.last + wait - 1, e.last + wait, e.syn0.time + wait, e.syn0.time + wait - 1} {
			evicted := r.IntN(2) == 0
			want := snapshot(ff.at)
			want.Evicted = evicted
			var sum Summary
			conclude(&want, ff, now, cfg.SynTimeout, &sum)

			before := em.sum.Outcomes
			got := em.build(e, now, evicted)
			if !reflect.DeepEqual(snapshot(got), want) {
				t.Fatalf("record %d (%d SYNs) at +%v: built %+v\nwant %+v", i, e.nsyn, time.Duration(now-e.last), *got, want)
			}
			for o, c := range sum.Outcomes {
				if em.sum.Outcomes[o]-before[o] != c {
					t.Fatalf("record %d: outcome counts differ", i)
				}
			}
			seen[got.Outcome]++
			// As the kernel evidence's match (in emit) may set: the next
			// record's attempt is built in this one.
			got.Kernel = AttemptKernel{Watched: true, SynDrops: 1, DropReason: "NETFILTER_DROP"}
			em.doneBuilt(got)
		}
	})
	if twoSYN == 0 || twoSYN == n || flipped == 0 || flipped == n || seen[OutcomeUnanswered] == 0 || seen[OutcomeUndetermined] == 0 {
		t.Errorf("%d records of two SYNs, %d with the client on the key's b side, outcomes %v: the cases are not all covered", twoSYN, flipped, seen)
	}
}
