package main

import (
	"math"
	"testing"

	"github.com/synscope/synscope/internal/kevent"
)

// reorder merges the packet lane and the kernel lane by time, each in its
// arrival order, releasing only records at or before the bound given.
func TestReorder(t *testing.T) {
	var r reorder
	// Packets every 10 (one out of order, as rings deliver them), kernel
	// records every 7, each lane arriving in its own order.
	var n int
	for i := range 100 {
		ts := int64(i * 10)
		if i == 50 {
			ts = 485
		}
		r.push(livePacket{time: ts, origLen: n})
		n++
		if i%2 == 0 {
			r.push(livePacket{time: int64(i * 7), link: kevent.LinkType, origLen: n})
			n++
		}
	}
	var got []livePacket
	r.release(300, func(lp livePacket) { got = append(got, lp) })
	for _, lp := range got {
		if lp.time > 300 {
			t.Fatalf("released %d before its time", lp.time)
		}
	}
	r.release(math.MaxInt64, func(lp livePacket) { got = append(got, lp) })
	if len(got) != n {
		t.Fatalf("%d of %d records released", len(got), n)
	}
	var lastPkt, lastK = -1, -1
	for i, lp := range got {
		lane := &lastPkt
		if lp.link == kevent.LinkType {
			lane = &lastK
		}
		if lp.origLen < *lane {
			t.Fatalf("record %d: a lane's arrival order changed", i)
		}
		*lane = lp.origLen
		// Across lanes, time order (the one out-of-order packet aside).
		if i > 0 && lp.time < got[i-1].time && lp.time != 485 && got[i-1].time != 485 {
			t.Fatalf("record %d at %d after one at %d", i, lp.time, got[i-1].time)
		}
	}
	if r.last != 990 || r.lanes[0].len()+r.lanes[1].len() != 0 {
		t.Errorf("last %d, %d left", r.last, r.lanes[0].len()+r.lanes[1].len())
	}
}

// Beyond maxHeld records, the oldest go on at once.
func TestReorderBound(t *testing.T) {
	var r reorder
	var out int
	for i := range maxHeld + 100 {
		r.push(livePacket{time: int64(i)})
		r.release(-1, func(livePacket) { out++ })
	}
	if held := r.lanes[0].len(); held > maxHeld || out != 100 {
		t.Errorf("%d held, %d released", held, out)
	}
}
