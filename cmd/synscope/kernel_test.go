package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// reorder hands records out in time order (arrival order among equal
// times), only those at or before the bound it is given.
func TestReorder(t *testing.T) {
	var r reorder
	var times []int64
	for i := range 500 {
		ts := int64(rand.IntN(100))
		times = append(times, ts)
		r.push(livePacket{time: ts, origLen: i})
	}
	var got []livePacket
	r.release(49, func(lp livePacket) { got = append(got, lp) })
	for _, lp := range got {
		if lp.time > 49 {
			t.Fatalf("released %d before its time", lp.time)
		}
	}
	r.release(math.MaxInt64, func(lp livePacket) { got = append(got, lp) })
	if len(got) != len(times) {
		t.Fatalf("%d of %d records released", len(got), len(times))
	}
	if !slices.IsSortedFunc(got, func(a, b livePacket) int {
		if a.time != b.time {
			return int(a.time - b.time)
		}
		return a.origLen - b.origLen
	}) {
		t.Error("records not in time order, then arrival order")
	}
	if r.last != slices.Max(times) || len(r.h) != 0 {
		t.Errorf("last %d, %d left", r.last, len(r.h))
	}
}
