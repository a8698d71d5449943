package analyze

import (
	"net"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

var floodPackets []Packet

// floodStream is n spoofed SYNs to one server, from pseudo-random addresses
// and ports, 10 µs apart.
func floodStream(b testing.TB, n int) []Packet {
	out := make([]Packet, 0, n)
	base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC).UnixNano()
	srv := net.IP{198, 51, 100, 2}
	x := uint64(0x9e3779b97f4a7c15)
	tmpl := frame(b, eth(layers.EthernetTypeIPv4), &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: net.IP{1, 2, 3, 4}, DstIP: srv},
		&layers.TCP{SYN: true, SrcPort: 1, DstPort: 80, Window: 1024}, gopacket.Payload(nil))
	for i := 0; i < n; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		f := append([]byte(nil), tmpl...)
		// Source address (IPv4 at 14+12) and port (14+20); checksums are not checked.
		f[26], f[27], f[28], f[29] = byte(x>>8), byte(x>>16), byte(x>>24), byte(x>>32)
		f[34], f[35] = byte(x>>40), byte(x>>48)
		f[38], f[39], f[40], f[41] = byte(x), byte(x>>56), byte(x>>3), byte(x>>11) // seq
		out = append(out, Packet{Data: f, Time: base + int64(i)*10000, OrigLen: len(f), LinkType: LinkEthernet, Ref: PacketRef{Num: uint64(i + 1)}})
	}
	return out
}

var floodBatches []*Batch

// benchFlood runs the flood through an analyzer with the default SYN-only
// table, emitting attempts in a goroutine of their own when async is set.
func benchFlood(b *testing.B, async bool) {
	if floodPackets == nil {
		floodPackets = floodStream(b, 2_000_000)
	}
	cfg := DefaultConfig()
	if floodBatches == nil {
		an := NewAnalyzer(cfg, nil, nil)
		for j := 0; j < len(floodPackets); j += 3000 {
			bt := &Batch{}
			bt.Reset()
			for k := j; k < min(j+3000, len(floodPackets)); k++ {
				p := floodPackets[k]
				p.Ref.Num -= uint64(j)
				an.DecodeInto(bt, &p)
			}
			floodBatches = append(floodBatches, bt)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		incs := NewIncidents(IncidentConfig{})
		an := NewAnalyzer(cfg, nil, func(a *Attempt) bool { return incs.Add(a) })
		var wait func()
		if async {
			wait = an.EmitAsync()
		}
		base := uint64(0)
		for _, bt := range floodBatches {
			an.TrackBatch(bt, base)
			base += bt.packets
		}
		if wait != nil {
			wait()
		}
		an.Finish()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(floodPackets)), "ns/pkt")
}

// BenchmarkFlood tracks 2 M spoofed SYNs through the batch path of the
// parallel reader (decoded beforehand) with the default SYN-only table, which
// overflows after 524,288: one op is the whole flood, ns/pkt the cost per
// SYN. Incidents are built as `synscope read` builds them.
func BenchmarkFlood(b *testing.B) { benchFlood(b, false) }

// BenchmarkFloodAsync is BenchmarkFlood with the emitting goroutine
// (EmitAsync), as the parallel reader runs it: ns/pkt is then wall time.
func BenchmarkFloodAsync(b *testing.B) { benchFlood(b, true) }

// BenchmarkEmitEmbryo is the emitting goroutine's share of a flood: building,
// judging and grouping the attempt of an evicted single-SYN record (the
// records of the first 500,000 SYNs of floodStream, emitted in table order
// 5.2 s after each, as a full table evicts them). ns/op is per record.
func BenchmarkEmitEmbryo(b *testing.B) {
	if floodPackets == nil {
		floodPackets = floodStream(b, 2_000_000)
	}
	cfg := DefaultConfig()
	an := NewAnalyzer(cfg, nil, nil)
	const n = 500_000
	for i := range n {
		an.Packet(&floodPackets[i])
	}
	et := an.tracker.embryos
	recs := make([]embryo, 0, n)
	et.drain(func(i int32) { recs = append(recs, *et.at(i)) })
	var incs *Incidents
	em := &emitter{synTimeout: cfg.SynTimeout, emit: func(a *Attempt) bool { return incs.Add(a) }}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i % len(recs)
		if j == 0 { // each pass over the records groups them afresh, in time order
			b.StopTimer()
			incs = NewIncidents(IncidentConfig{})
			b.StartTimer()
		}
		e := &recs[j]
		em.doneBuilt(em.build(e, e.last+5_200_000_000, true))
	}
}
