package analyze

import (
	"net"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// benchStream builds n web-like connections: handshake, a request, a
// response of several segments, FIN close; one in ten SYNs goes unanswered.
func benchStream(b testing.TB, n int) []Packet {
	var out []Packet
	base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC).UnixNano()
	srv := net.IP{198, 51, 100, 2}
	for c := 0; c < n; c++ {
		cli := net.IP{192, 0, 2, byte(1 + c%200)}
		sport := layers.TCPPort(20000 + c%40000)
		t0 := base + int64(c)*int64(time.Millisecond)
		isn, sisn := uint32(c*7919), uint32(c*104729)
		add := func(dt time.Duration, fromCli bool, tcp *layers.TCP, payload int) {
			src, dst := cli, srv
			tcp.SrcPort, tcp.DstPort = sport, 443
			if !fromCli {
				src, dst = srv, cli
				tcp.SrcPort, tcp.DstPort = 443, sport
			}
			tcp.Window = 64000
			ip := &layers.IPv4{Version: 4, TTL: 64, Id: uint16(len(out)), Protocol: layers.IPProtocolTCP, SrcIP: src, DstIP: dst}
			f := frame(b, eth(layers.EthernetTypeIPv4), ip, tcp, gopacket.Payload(make([]byte, payload)))
			out = append(out, Packet{Data: f, Time: t0 + int64(dt), OrigLen: len(f), LinkType: LinkEthernet, Ref: PacketRef{Num: uint64(len(out) + 1)}})
		}
		add(0, true, &layers.TCP{SYN: true, Seq: isn}, 0)
		if c%10 == 9 {
			continue
		}
		ms := time.Millisecond
		add(1*ms, false, &layers.TCP{SYN: true, ACK: true, Seq: sisn, Ack: isn + 1}, 0)
		add(2*ms, true, &layers.TCP{ACK: true, Seq: isn + 1, Ack: sisn + 1}, 0)
		add(3*ms, true, &layers.TCP{ACK: true, PSH: true, Seq: isn + 1, Ack: sisn + 1}, 300)
		for i := 0; i < 6; i++ {
			add(time.Duration(5+i)*ms, false, &layers.TCP{ACK: true, Seq: sisn + 1 + uint32(i*1400), Ack: isn + 301}, 1400)
		}
		add(12*ms, true, &layers.TCP{ACK: true, FIN: true, Seq: isn + 301, Ack: sisn + 8401}, 0)
		add(13*ms, false, &layers.TCP{ACK: true, FIN: true, Seq: sisn + 8401, Ack: isn + 302}, 0)
		add(14*ms, true, &layers.TCP{ACK: true, Seq: isn + 302, Ack: sisn + 8402}, 0)
	}
	return out
}

// BenchmarkAnalyze measures the whole per-packet path (decode, track): one op
// is one packet. Allocations happen per attempt, never per packet.
var benchPackets []Packet

func BenchmarkAnalyze(b *testing.B) {
	if benchPackets == nil { // built once: the benchmark function runs several times
		benchPackets = benchStream(b, 20000)
	}
	stream := benchPackets
	var attempts int
	newAn := func() *Analyzer {
		return NewAnalyzer(DefaultConfig(), nil, func(*Attempt) bool { attempts++; return false })
	}
	an := newAn()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i % len(stream)
		if j == 0 && i > 0 {
			b.StopTimer()
			an.Finish()
			an = newAn()
			b.StartTimer()
		}
		an.Packet(&stream[j])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
}
