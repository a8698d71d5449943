package analyze

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"sort"
	"testing"
	"time"
)

func unansweredAt(id uint64, sec int64, client string) *Attempt {
	a := &Attempt{ID: id, HasISN: true, Syns: 1, Outcome: OutcomeUnanswered, AnsweredSyn: noAnswerIdx,
		Client: netip.MustParseAddrPort(client), Server: netip.MustParseAddrPort("192.0.2.10:443")}
	a.Start = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC).UnixNano() + sec*int64(time.Second)
	a.SynTimes[0], a.End = a.Start, a.Start
	return a
}

// Attempts arrive in finishing order, not start order: an attempt that
// bridges two incidents merges them, whatever the order.
func TestIncidentGrouping(t *testing.T) {
	for _, order := range [][]int64{{0, 100, 50}, {50, 0, 100}, {100, 50, 0}} {
		x := NewIncidents(DefaultIncidentConfig())
		for i, s := range order {
			x.Add(unansweredAt(uint64(i+1), s, "198.51.100.1:40000"))
		}
		res := x.Finish(&Summary{Attempts: 3})
		if len(res.Incidents) != 1 || res.Incidents[0].Attempts != 3 {
			t.Errorf("order %v: %d incidents, want 1 with 3 attempts", order, len(res.Incidents))
		}
	}
	x := NewIncidents(DefaultIncidentConfig())
	x.Add(unansweredAt(1, 0, "198.51.100.1:40000"))
	x.Add(unansweredAt(2, 100, "198.51.100.2:40000")) // 100 s later: past the 60 s gap
	if res := x.Finish(&Summary{Attempts: 2}); len(res.Incidents) != 2 || res.Incidents[0].ID != 1 || res.Incidents[1].Start <= res.Incidents[0].Start {
		t.Errorf("a quiet gap of 100 s should split into two incidents numbered in time order")
	}
}

func TestIncidentCapCounts(t *testing.T) {
	cfg := DefaultIncidentConfig()
	cfg.MaxIncidents = 2
	x := NewIncidents(cfg)
	for i := int64(0); i < 5; i++ {
		x.Add(unansweredAt(uint64(i+1), i*1000, "198.51.100.1:40000"))
	}
	res := x.Finish(&Summary{Attempts: 5})
	if len(res.Incidents) != 2 || res.Omitted != 3 {
		t.Errorf("%d incidents, %d omitted; want 2 and 3", len(res.Incidents), res.Omitted)
	}
}

func TestClientSetEstimate(t *testing.T) {
	var c clientSet
	for i := 0; i < 20000; i++ {
		c.add(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
		c.add(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})) // twice: counted once
	}
	if n := c.count(); n < 19000 || n > 21000 {
		t.Errorf("estimated %d distinct clients, want 20000 ±5%%", n)
	}
	var small clientSet
	for i := 0; i < 10; i++ {
		small.add(netip.AddrFrom4([4]byte{10, 0, 0, byte(i % 7)}))
	}
	if small.count() != 7 {
		t.Errorf("small sets are exact: got %d, want 7", small.count())
	}
}

// The series does not depend on the order attempts arrive in.
func TestSeriesOrderIndependent(t *testing.T) {
	var times []int64
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	for i := 0; i < 3000; i++ {
		times = append(times, base+int64(i)*int64(7*time.Second)) // ~6 hours: the width must double
	}
	var a, b seriesAcc
	for _, ts := range times {
		a.add(ts, serAttempts, 1)
	}
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(times), func(i, j int) { times[i], times[j] = times[j], times[i] })
	for _, ts := range times {
		b.add(ts, serAttempts, 1)
	}
	ra, rb := a.result(), b.result()
	if !reflect.DeepEqual(ra, rb) {
		t.Fatalf("series differ with arrival order: width %v vs %v", ra.Width, rb.Width)
	}
	var total uint64
	for _, n := range ra.Attempts {
		total += n
	}
	if total != 3000 || len(ra.Attempts) > maxBuckets {
		t.Errorf("series holds %d events in %d buckets", total, len(ra.Attempts))
	}
}

// Every event lands in the bucket of its time, whatever came before it:
// runs in one bucket (the last bucket is remembered), steps back before
// the first bucket and forward past the last, and doublings of the width.
func TestSeriesBuckets(t *testing.T) {
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	r := rand.New(rand.NewPCG(7, 8))
	var s seriesAcc
	type ev struct {
		ts    int64
		field int
	}
	var evs []ev
	ts := base + int64(time.Hour)
	for i := 0; i < 20000; i++ {
		switch r.IntN(10) {
		case 0: // a jump back, before anything so far (a new first bucket)
			ts -= int64(r.IntN(600)) * int64(time.Second)
		case 1: // a jump forward, far enough to double the width at times
			ts += int64(r.IntN(3600)) * int64(time.Second)
		case 2, 3: // back to the time of an earlier event
			if len(evs) > 0 {
				ts = evs[r.IntN(len(evs))].ts
			}
		default: // the same bucket or the next
			ts += int64(r.IntN(300)) * int64(time.Millisecond)
		}
		e := ev{ts, r.IntN(5)}
		evs = append(evs, e)
		s.add(e.ts, e.field, 1)
	}
	res := s.result()
	want := make([][5]uint64, len(res.Attempts))
	for _, e := range evs {
		b := (e.ts - res.Start) / int64(res.Width)
		if b < 0 || b >= int64(len(want)) {
			t.Fatalf("event at %d outside the series (start %d, width %v, %d buckets)", e.ts, res.Start, res.Width, len(want))
		}
		want[b][e.field]++
	}
	for i := range want {
		got := [5]uint64{res.Attempts[i], res.Unanswered[i], res.SynRetransmits[i], res.SynAckRetransmits[i], res.Resets[i]}
		if got != want[i] {
			t.Fatalf("bucket %d (width %v): %v, want %v", i, res.Width, got, want[i])
		}
	}
}

// firstNotPast finds what the binary search finds, on incident lists as
// place keeps them (sorted, apart by more than the gap).
func TestFirstNotPast(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	const gap = 10
	for i := 0; i < 20000; i++ {
		var list []*Incident
		end := int64(r.IntN(50))
		for n := r.IntN(6); n > 0; n-- {
			start := end + gap + 1 + int64(r.IntN(30))
			end = start + int64(r.IntN(30))
			list = append(list, &Incident{Start: start, End: end})
		}
		at := int64(r.IntN(int(end) + 3*gap + 1))
		want := sort.Search(len(list), func(i int) bool { return list[i].End+gap >= at })
		if got := firstNotPast(list, at, gap); got != want {
			t.Fatalf("at %d in %d incidents: %d, want %d", at, len(list), got, want)
		}
	}
}

// addrHash gives an IPv4 address the hash of its 16-byte form (the
// estimates of distinct clients must not change with how it is computed).
func TestAddrHashV4(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 10000; i++ {
		var v [4]byte
		binary.LittleEndian.PutUint32(v[:], r.Uint32())
		a := netip.AddrFrom4(v)
		b := a.As16()
		want := mix(binary.LittleEndian.Uint64(b[:8]) ^ mix(binary.LittleEndian.Uint64(b[8:])+0x9e3779b97f4a7c15))
		if got := addrHash(a); got != want {
			t.Fatalf("%v: %x, want %x", a, got, want)
		}
		if got := addrHash(netip.AddrFrom16(b)); got != want {
			t.Fatalf("%v in 6: %x, want %x", a, got, want)
		}
	}
}

// groupKey.eq is the struct's ==, for keys that differ in any one field,
// including IPv4 against IPv4-mapped IPv6 and a zone.
func TestGroupKeyEq(t *testing.T) {
	addrs := []netip.Addr{{}, netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"),
		netip.MustParseAddr("::ffff:192.0.2.1"), netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("fe80::1%eth0")}
	var keys []groupKey
	for _, kind := range []IncidentKind{IncUnansweredSYN, IncReset} {
		for _, sa := range addrs {
			for _, port := range []uint16{0, 80, 443} {
				for _, c := range addrs {
					keys = append(keys, groupKey{kind, netip.AddrPortFrom(sa, port), c})
				}
			}
		}
	}
	for i := range keys {
		for j := range keys {
			if got, want := keys[i].eq(&keys[j]), keys[i] == keys[j]; got != want {
				t.Fatalf("%+v eq %+v = %v, want %v", keys[i], keys[j], got, want)
			}
		}
	}
}
