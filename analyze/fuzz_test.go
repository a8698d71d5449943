package analyze

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// FuzzDecode: any bytes under any link type decode without panicking, and
// what the decoder reports stays within the frame.
func FuzzDecode(f *testing.F) {
	syn := frame(f, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), synTCP())
	f.Add(uint16(LinkEthernet), syn)
	f.Add(uint16(LinkRaw), syn[14:])
	f.Add(uint16(LinkSLL2), append(make([]byte, 20), syn[14:]...))
	f.Add(uint16(LinkNFLOG), []byte{2, 0, 0, 0, 8, 0, 9, 0, 0x45})
	f.Add(uint16(LinkPPI), []byte{0, 0, 8, 0, 105, 0, 0, 0, 8, 2})
	data := frame(f, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), dataTCP(), gopacket.Payload(make([]byte, 100)))
	f.Add(uint16(LinkEthernet), data)
	f.Add(uint16(LinkEthernet), data[:60])
	f.Fuzz(func(t *testing.T, lt uint16, data []byte) {
		var d Decoded
		k := Decode(lt, data, len(data)+int(lt%64), &d)
		if k != d.Kind {
			t.Fatalf("Decode returned %d, d.Kind %d", k, d.Kind)
		}
		if k == KindTCP || k == KindICMPUnreach {
			if int(d.L4Off) > len(data) || d.L3Off > d.L4Off {
				t.Fatalf("offsets %d/%d out of a %d-byte frame", d.L3Off, d.L4Off, len(data))
			}
		}
		if d.PayloadCap > d.PayloadLen {
			t.Fatalf("captured payload %d exceeds payload %d", d.PayloadCap, d.PayloadLen)
		}
		// Ethernet frames may take the fast path: it must decode as the
		// general path does.
		var g Decoded
		decodeGeneral(LinkEthernet, data, len(data)+int(lt%64), &g)
		Decode(LinkEthernet, data, len(data)+int(lt%64), &d)
		if d != g {
			t.Fatalf("fast path %+v, general path %+v", d, g)
		}
	})
}

// FuzzOptions: the TCP option parser never panics and never claims an
// option it could not read.
func FuzzOptions(f *testing.F) {
	f.Add([]byte{2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7})
	f.Add([]byte{34, 10, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add([]byte{254, 4, 0xf9, 0x89})
	f.Add([]byte{8, 10, 0})
	f.Fuzz(func(t *testing.T, o []byte) {
		var opts Options
		parseOptions(o, &opts)
		if opts.HasTS && len(o) < 10 {
			t.Fatalf("timestamps claimed from %d bytes", len(o))
		}
	})
}

// FuzzTracker drives the tracker with arbitrary segment sequences and checks
// its invariants: every attempt is emitted once, outcomes sum to the
// attempts, no negative durations, and the tables stay within their bounds.
func FuzzTracker(f *testing.F) {
	f.Add([]byte{0x02, 0, 0, 0x12, 1, 0, 0x10, 0, 0, 0x19, 0, 1, 0x11, 1, 2})
	f.Add([]byte{0x02, 0, 0, 0x02, 0, 50, 0x04, 1, 0, 0x02, 2, 0, 0x12, 3, 1})
	f.Fuzz(func(t *testing.T, ops []byte) {
		cfg := DefaultConfig()
		cfg.MaxFlows, cfg.MaxSYNOnly = 3, 3
		var sum Summary
		emitted := uint64(0)
		tr := NewTracker(cfg, &sum, func(a *Attempt) bool {
			emitted++
			if a.End < a.Start {
				t.Fatalf("attempt %d ends before it starts", a.ID)
			}
			if s, c, ok := a.HandshakeRTT(); ok && (s < 0 || c < 0) {
				t.Fatalf("negative RTT")
			}
			if d, ok := a.TTFB(); ok && d < 0 {
				t.Fatalf("negative TTFB")
			}
			if a.RetransmitDelay() < 0 {
				t.Fatalf("negative retransmit delay")
			}
			return false
		})
		base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC).UnixNano()
		ts := base
		for i := 0; i+3 <= len(ops) && i < 3000; i += 3 {
			op, a, b := ops[i], ops[i+1], ops[i+2]
			var d Decoded
			d.Kind, d.Proto = KindTCP, 6
			if op&0x80 != 0 {
				d.Kind = KindICMPUnreach
			}
			d.Flags = op & 0x3f
			fromClient := a&1 == 0
			cli, srv := [16]byte{192, 0, 2, 1 + a>>6}, [16]byte{198, 51, 100, 1}
			d.SPort, d.DPort = 40000+uint16(a>>4&3), 443
			d.Src, d.Dst = cli, srv
			if !fromClient {
				d.Src, d.Dst, d.SPort, d.DPort = srv, cli, d.DPort, d.SPort
			}
			d.Seq = uint32(b) << 24 >> uint(a&7)
			d.Ack = uint32(b)*0x01000193 + 1
			if a&2 != 0 {
				d.PayloadLen, d.PayloadCap = uint32(b), uint32(b)
			}
			if a&4 != 0 {
				d.Opts.HasTS, d.Opts.TSval, d.Opts.TSecr = true, uint32(b), uint32(a)
			}
			d.NVLAN = (a >> 3) & 1
			d.VLAN[0] = uint16(b & 1)
			d.IPID = uint32(i)
			// Time mostly moves forward, sometimes back, sometimes by a lot.
			switch op >> 6 & 1 {
			case 0:
				ts += int64(b) * int64(time.Millisecond)
			default:
				ts -= int64(b) * int64(time.Microsecond)
			}
			if a == 0xff {
				ts += int64(200 * time.Second)
			}
			tr.track(&d, ts, PacketRef{Num: uint64(i/3 + 1)})
			if tr.flows.n > cfg.MaxFlows+1 || tr.embryos.len() > cfg.MaxSYNOnly {
				t.Fatalf("tables beyond their bounds: %d flows, %d SYN-only", tr.flows.n, tr.embryos.len())
			}
		}
		tr.Flush(ts + int64(time.Hour))
		var outcomes uint64
		for _, n := range sum.Outcomes {
			outcomes += n
		}
		if outcomes != sum.Attempts || emitted != sum.Attempts {
			t.Fatalf("attempts %d, outcomes sum %d, emitted %d", sum.Attempts, outcomes, emitted)
		}
		if tr.Active() != 0 {
			t.Fatalf("%d flows left after Flush", tr.Active())
		}
		_ = binary.LittleEndian
	})
}
