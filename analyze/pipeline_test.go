package analyze

import (
	"math/rand/v2"
	"reflect"
	"sort"
	"testing"
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
