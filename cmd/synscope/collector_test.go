package main

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/synscope/synscope/analyze"
)

// The listing keeps the earliest anomalous attempts (by start, then first
// packet), whatever order they end in, and counts the others.
func TestCollectorKeepsEarliest(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, tc := range []struct{ max, spread int }{{1, 100_000}, {7, 100_000}, {50, 100_000}, {7, 20}, {50, 5}} {
		max := tc.max
		c := &collector{max: max}
		var all []*analyze.Attempt
		start := int64(1_000_000)
		for i := 0; i < 5000; i++ {
			switch r.IntN(4) {
			case 0: // out of order: earlier than most so far
				start -= int64(r.IntN(tc.spread))
			default: // in order, often at the same start
				start += int64(r.IntN(3))
			}
			if tc.spread < 100 { // few starts: many ties, decided by the first packet
				start = 1_000_000 + int64(r.IntN(tc.spread))
			}
			a := &analyze.Attempt{Start: start, Outcome: analyze.OutcomeUnanswered,
				First: analyze.PacketRef{Source: int32(r.IntN(2)), Num: uint64(r.IntN(1000))}}
			all = append(all, a)
			c.add(a)
		}
		slices.SortFunc(all, byStart)
		got := slices.Clone([]*analyze.Attempt(c.kept))
		slices.SortFunc(got, byStart)
		for i, a := range got {
			if later(a, all[i]) || later(all[i], a) {
				t.Fatalf("max %d: kept #%d starts at %d (first %v), want %d (first %v)", max, i, a.Start, a.First, all[i].Start, all[i].First)
			}
		}
		if len(got) != max || c.omitted != uint64(len(all)-max) {
			t.Errorf("max %d: kept %d, omitted %d of %d", max, len(got), c.omitted, len(all))
		}
	}
}

// byStart orders attempts as the listing does (later).
func byStart(a, b *analyze.Attempt) int {
	switch {
	case later(a, b):
		return 1
	case later(b, a):
		return -1
	}
	return 0
}
