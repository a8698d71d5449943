package analyze

import (
	"math/rand/v2"
	"testing"
	"time"
	"unsafe"
)

// zpkt is one hand-built segment for the Zeek model tests.
type zpkt struct {
	fromClient bool
	flags      uint8
	seq, ack   uint32
	n          uint32 // payload length
	zeroWin    bool
}

const (
	fS  = FlagSYN
	fSA = FlagSYN | FlagACK
	fA  = FlagACK
	fPA = FlagPSH | FlagACK
	fFA = FlagFIN | FlagACK
	fR  = FlagRST
	fRA = FlagRST | FlagACK
)

func cli(flags uint8, seq, ack, n uint32) zpkt { return zpkt{true, flags, seq, ack, n, false} }
func srv(flags uint8, seq, ack, n uint32) zpkt { return zpkt{false, flags, seq, ack, n, false} }

// zeekRun feeds the segments, 10 ms apart, to a tracker between client
// 10.0.0.1:cport and server 10.0.0.2:sport, and returns the attempts.
func zeekRun(t *testing.T, cport, sport uint16, pkts []zpkt) []*Attempt {
	t.Helper()
	var out []*Attempt
	tr := NewTracker(DefaultConfig(), &Summary{}, func(a *Attempt) bool { out = append(out, a); return true })
	base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC).UnixNano()
	ts := base
	for i, p := range pkts {
		d := Decoded{Kind: KindTCP, Proto: 6, Flags: p.flags, Seq: p.seq, Ack: p.ack, PayloadLen: p.n, PayloadCap: p.n, Win: 8192, IPID: uint32(i + 1)}
		c, s := [16]byte{10, 0, 0, 1}, [16]byte{10, 0, 0, 2}
		if p.fromClient {
			d.Src, d.Dst, d.SPort, d.DPort = c, s, cport, sport
		} else {
			d.Src, d.Dst, d.SPort, d.DPort = s, c, sport, cport
		}
		if p.zeroWin {
			d.Win = 0
		}
		ts = base + int64(i)*int64(10*time.Millisecond)
		tr.track(&d, ts, PacketRef{Num: uint64(i + 1)})
	}
	tr.Flush(ts)
	SortAttempts(out)
	return out
}

// handshake is SYN (ISN 100), SYN-ACK (ISN 500), ACK.
var handshake = []zpkt{cli(fS, 100, 0, 0), srv(fSA, 500, 101, 0), cli(fA, 101, 501, 0)}

func seq(parts ...[]zpkt) []zpkt {
	var out []zpkt
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestZeekStateAndHistory(t *testing.T) {
	tenRetransmits := seq(handshake, []zpkt{cli(fPA, 101, 501, 10)})
	for i := 0; i < 10; i++ {
		tenRetransmits = append(tenRetransmits, cli(fPA, 101, 501, 10))
	}
	zw := srv(fA, 501, 101, 0)
	zw.zeroWin = true

	for _, c := range []struct {
		name         string
		sport        uint16 // the server's port; 80 when 0
		pkts         []zpkt
		state, hist  string
		origIsServer bool
	}{
		{"SYN only", 0, []zpkt{cli(fS, 100, 0, 0)}, "S0", "S", false},
		{"SYN retransmitted", 0, []zpkt{cli(fS, 100, 0, 0), cli(fS, 100, 0, 0)}, "S0", "S", false},
		// The SYN-ACK establishes both ends as Zeek sees them: no ACK needed for S1.
		{"SYN, SYN-ACK", 0, []zpkt{cli(fS, 100, 0, 0), srv(fSA, 500, 101, 0)}, "S1", "Sh", false},
		{"handshake", 0, handshake, "S1", "ShA", false},
		{"handshake and FINs", 0, seq(handshake, []zpkt{cli(fFA, 101, 501, 0), srv(fFA, 501, 102, 0), cli(fA, 102, 502, 0)}), "SF", "ShAFf", false},
		{"request, response, FINs", 0, seq(handshake, []zpkt{
			cli(fPA, 101, 501, 10), srv(fA, 501, 111, 0), srv(fPA, 501, 111, 20), cli(fA, 111, 521, 0),
			cli(fFA, 111, 521, 0), srv(fFA, 521, 112, 0), cli(fA, 112, 522, 0)}), "SF", "ShADadFf", false},
		{"FIN retransmitted", 0, seq(handshake, []zpkt{cli(fFA, 101, 501, 0), cli(fFA, 101, 501, 0)}), "S2", "ShAF", false},
		{"server closes first", 0, seq(handshake, []zpkt{srv(fFA, 501, 101, 0)}), "S3", "ShAf", false},
		// A RST after both FINs leaves the close orderly.
		{"RST after FINs", 0, seq(handshake, []zpkt{cli(fFA, 101, 501, 0), srv(fFA, 501, 102, 0), cli(fR, 102, 0, 0)}), "SF", "ShAFfR", false},
		{"refused", 0, []zpkt{cli(fS, 100, 0, 0), srv(fRA, 0, 101, 0)}, "REJ", "Sr", false},
		{"refused, SYN retried", 0, []zpkt{cli(fS, 100, 0, 0), srv(fRA, 0, 101, 0), cli(fS, 100, 0, 0), srv(fRA, 0, 101, 0)}, "REJ", "Sr", false},
		{"SYN then client RST", 0, []zpkt{cli(fS, 100, 0, 0), cli(fR, 101, 0, 0)}, "RSTOS0", "SR", false},
		// An ACK before the RST breaks /^?S[^HAFGIQ]*R/: OTH.
		{"SYN, ACK, RST", 0, []zpkt{cli(fS, 100, 0, 0), cli(fA, 101, 501, 0), cli(fR, 101, 0, 0)}, "OTH", "SAR", false},
		// Both ends reset, no byte sent either way: REJ by the size rule.
		{"both reset", 0, []zpkt{cli(fS, 100, 0, 0), cli(fR, 101, 0, 0), srv(fR, 0, 0, 0)}, "REJ", "SRr", false},
		{"established, client aborts", 0, seq(handshake, []zpkt{cli(fPA, 101, 501, 10), cli(fRA, 111, 501, 0)}), "RSTO", "ShADR", false},
		{"established, server aborts", 0, seq(handshake, []zpkt{srv(fRA, 501, 101, 0)}), "RSTR", "ShAr", false},
		{"SYN then FIN", 0, []zpkt{cli(fS, 100, 0, 0), cli(fFA, 101, 501, 0)}, "SH", "SF", false},
		{"mid-stream", 0, []zpkt{cli(fPA, 1001, 2001, 18), srv(fA, 2001, 1019, 0)}, "OTH", "Da", false},
		{"mid-stream retransmission", 0, []zpkt{cli(fPA, 1001, 2001, 18), srv(fA, 2001, 1019, 0), cli(fPA, 1001, 2001, 18)}, "OTH", "DaT", false},
		// Logarithmic letters: the 1st and the 10th retransmission.
		{"ten retransmissions", 0, tenRetransmits, "S1", "ShADTT", false},
		{"zero window", 0, seq(handshake, []zpkt{zw}), "S1", "ShAaw", false},
		// The server acknowledges 20 bytes the client never sent: a gap.
		{"content gap", 0, seq(handshake, []zpkt{cli(fPA, 101, 501, 10), srv(fA, 501, 131, 0)}), "S1", "ShADaG", false},
		// Data above a hole, then the ACK of all of it: one gap.
		{"hole filled by ack", 0, seq(handshake, []zpkt{cli(fPA, 101, 501, 10), cli(fPA, 121, 501, 10), srv(fA, 501, 131, 0)}), "S1", "ShADaG", false},
		// The hole filled by a late segment: no gap, but the late segment
		// does not advance the sequence space, which Zeek counts as a
		// retransmission.
		{"out of order", 0, seq(handshake, []zpkt{cli(fPA, 111, 501, 10), cli(fPA, 101, 501, 10), srv(fA, 501, 121, 0)}), "S1", "ShADTa", false},
		// A gap at the end, acknowledged with the FIN (miss_end_data in Zeek's tests).
		{"gap before FIN", 0, seq(handshake, []zpkt{srv(fFA, 601, 101, 0), cli(fA, 101, 602, 0), cli(fFA, 101, 602, 0)}), "SF", "ShAfgF", false},
		{"SYN+FIN probe", 0, []zpkt{cli(fS|FlagFIN, 100, 0, 0)}, "SH", "Q", false},
		{"FIN+RST", 0, seq(handshake, []zpkt{cli(FlagFIN|FlagRST|FlagACK, 101, 501, 0)}), "RSTO", "ShAI", false},
		// The first packet a SYN-ACK from a likely server port: Zeek flips
		// the roles at once, and the client's ACK establishes the
		// connection whose SYN was missed.
		{"SYN-ACK first", 0, []zpkt{srv(fSA, 500, 101, 0), cli(fA, 101, 501, 0), cli(fPA, 101, 501, 10), srv(fA, 501, 111, 0)}, "S1", "^hADa", false},
		{"SYN-ACK first, alone", 0, []zpkt{srv(fSA, 500, 101, 0)}, "OTH", "^h", false},
		// From an unlikely server port Zeek keeps the sender as the
		// originator: a stealth scan's answer, logged from the server's side.
		{"SYN-ACK first, unlikely port, alone", 5000, []zpkt{srv(fSA, 500, 101, 0)}, "OTH", "H", true},
		{"SYN-ACK first, unlikely port, client resets", 5000, []zpkt{srv(fSA, 500, 101, 0), cli(fR, 101, 0, 0)}, "REJ", "Hr", true},
		// ... unless an ACK follows the SYN-ACK (zeek#2191): flipped as
		// from the start (one-sided-2745 in Zeek's tests: ^haf).
		{"SYN-ACK first, unlikely port, one-sided", 5000, []zpkt{srv(fSA, 500, 101, 0), srv(fA, 501, 101, 0), srv(fFA, 501, 101, 0)}, "SHR", "^haf", false},
		// The SYN-ACK captured before its SYN: Zeek flips the roles when the
		// SYN comes (what was logged stays as it was).
		{"SYN-ACK before SYN", 5000, []zpkt{srv(fSA, 500, 101, 0), cli(fS, 100, 0, 0), cli(fA, 101, 501, 0)}, "S1", "Hs^A", false},
		// Mid-stream from the server's well-known port: Zeek flips.
		{"mid-stream from the server", 0, []zpkt{srv(fPA, 501, 101, 10), cli(fA, 101, 511, 0)}, "OTH", "^dA", false},
		// A bare ACK ahead of the SYN-ACK is not a partial connection yet.
		{"ACK before SYN-ACK", 0, []zpkt{cli(fS, 100, 0, 0), srv(fA, 500, 101, 0)}, "S0", "Sa", false},
		{"RST with data", 0, seq(handshake, []zpkt{cli(fRA, 101, 501, 13)}), "RSTO", "ShART", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			sport := c.sport
			if sport == 0 {
				sport = 80
			}
			atts := zeekRun(t, 40000, sport, c.pkts)
			if len(atts) != 1 {
				for _, a := range atts {
					t.Logf("attempt %d: %s %s %s", a.ID, a.Outcome, a.ConnState(), a.History())
				}
				t.Fatalf("%d attempts, want 1", len(atts))
			}
			a := atts[0]
			if a.ConnState() != c.state || a.History() != c.hist || a.ZeekOrigIsServer() != c.origIsServer {
				t.Errorf("conn_state %s history %q orig-is-server %v, want %s %q %v",
					a.ConnState(), a.History(), a.ZeekOrigIsServer(), c.state, c.hist, c.origIsServer)
			}
		})
	}
}

func TestZeekHistoryBounded(t *testing.T) {
	// A FIN with a new sequence number every time adds a letter every time;
	// the history stops at maxHist letters.
	pkts := seq(handshake)
	for i := uint32(0); i < 50; i++ {
		pkts = append(pkts, cli(fFA, 101+i, 501, 1))
	}
	atts := zeekRun(t, 40000, 80, pkts)
	if len(atts) != 1 || len(atts[0].History()) != maxHist {
		t.Fatalf("history %q, want %d letters", atts[0].History(), maxHist)
	}
}

func TestZeekUpdateDoesNotAllocate(t *testing.T) {
	a := &Attempt{}
	ds := []Decoded{
		{Kind: KindTCP, Flags: fS, Seq: 100, Win: 8192},
		{Kind: KindTCP, Flags: fSA, Seq: 500, Ack: 101, Win: 8192},
		{Kind: KindTCP, Flags: fPA, Seq: 101, Ack: 501, PayloadLen: 100, PayloadCap: 100, Win: 8192},
		{Kind: KindTCP, Flags: fA, Seq: 501, Ack: 301},
		{Kind: KindTCP, Flags: fFA, Seq: 201, Ack: 501, Win: 8192},
	}
	fromClient := []bool{true, false, true, false, true}
	allocs := testing.AllocsPerRun(100, func() {
		a.zeek = zeekState{}
		for i := range ds {
			a.zeek.update(a, &ds[i], fromClient[i], nil)
		}
		_ = a.zeek.connState(a)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per connection", allocs)
	}
}

func TestZeekStateSize(t *testing.T) {
	// It lives in every attempt, up to MaxFlows of them.
	if n := unsafe.Sizeof(zeekState{}); n > 176 {
		t.Errorf("zeekState is %d bytes", n)
	}
}

// TestZeekFirstSYN: firstSYN leaves exactly the state update leaves for
// the packets it stands for (a first SYN from the client without ACK, FIN,
// RST or payload, with a window), whatever the other flags, ports and
// sequence number.
func TestZeekFirstSYN(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	fits := 0
	for n := 0; n < 20000; n++ {
		d := Decoded{Kind: KindTCP, Flags: FlagSYN | uint8(r.IntN(256))&^(FlagACK|FlagFIN|FlagRST),
			Seq: r.Uint32(), Win: uint16(r.IntN(3) * r.IntN(65536)),
			SPort: uint16(r.IntN(2048)), DPort: uint16(r.IntN(2048))}
		switch r.IntN(8) {
		case 0:
			d.Seq = ^uint32(0) // wraps
		case 1:
			d.PayloadLen, d.PayloadCap = 10, 10
		case 2:
			d.Flags |= []uint8{FlagACK, FlagFIN, FlagRST}[r.IntN(3)]
		}
		var slow, fast Attempt
		slow.zeek.update(&slow, &d, true, nil)
		if !firstSYNFits(&d) {
			continue
		}
		fits++
		fast.zeek.firstSYN(d.Seq)
		if fast.zeek != slow.zeek {
			t.Fatalf("%+v:\nfirstSYN %+v\nupdate   %+v", d, fast.zeek, slow.zeek)
		}
		// And so on through the rest of a handshake.
		sa := Decoded{Kind: KindTCP, Flags: FlagSYN | FlagACK, Seq: r.Uint32(), Ack: d.Seq + 1, Win: 100}
		ack := Decoded{Kind: KindTCP, Flags: FlagACK, Seq: d.Seq + 1, Ack: sa.Seq + 1, Win: 100}
		for _, a := range []*Attempt{&slow, &fast} {
			a.zeek.update(a, &sa, false, nil)
			a.zeek.update(a, &ack, true, nil)
		}
		if fast.zeek != slow.zeek || fast.zeek.connState(&fast) != slow.zeek.connState(&slow) {
			t.Fatalf("%+v: after the handshake:\nfirstSYN %+v\nupdate   %+v", d, fast.zeek, slow.zeek)
		}
	}
	if fits < 5000 {
		t.Errorf("only %d of 20,000 packets fit firstSYN", fits)
	}
}
