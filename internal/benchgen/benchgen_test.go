package benchgen

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// smallWeb is Web1G scaled down to about a thousandth: one minute, a drop
// window of 30 s losing half the SYNs, a few of each planted anomaly.
func smallWeb() Config {
	c := Web1G()
	c.Name = "web-small.pcap"
	c.Duration, c.Lead = 60*time.Second, 10*time.Second
	c.ConnRate = 1.2
	c.DropStart, c.DropLen = 20*time.Second, 30*time.Second
	c.DropProb = 0.5 // so that a few clients give up even at this scale
	c.Refused, c.ServerResets, c.Slow, c.SynAckRetx = 3, 3, 4, 4
	return c
}

// smallFlood is SynFlood10M scaled down to a thousandth.
func smallFlood() Config {
	c := SynFlood10M()
	c.Name = "synflood-small.pcap"
	c.Duration, c.Lead = 12*time.Second, 2*time.Second
	c.ConnRate = 3
	c.DropStart, c.DropLen = time.Second, 10*time.Second
	c.FloodSYNs, c.FloodStart, c.FloodLen = 10_000, time.Second, 10*time.Second
	return c
}

func write(t *testing.T, cfg Config) ([]byte, Manifest) {
	t.Helper()
	var b bytes.Buffer
	m, err := Write(&b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if m.Bytes != int64(b.Len()) {
		t.Fatalf("manifest says %d bytes, wrote %d", m.Bytes, b.Len())
	}
	return b.Bytes(), m
}

func TestDeterministic(t *testing.T) {
	for _, cfg := range []Config{smallWeb(), smallFlood()} {
		a, _ := write(t, cfg)
		b, _ := write(t, cfg)
		if !bytes.Equal(a, b) {
			t.Errorf("%s: two runs differ", cfg.Name)
		}
		other := cfg
		other.Seed++
		if c, _ := write(t, other); bytes.Equal(a, c) {
			t.Errorf("%s: the seed changes nothing", cfg.Name)
		}
	}
}

// pk is a decoded packet.
type pk struct {
	t                    time.Duration
	src, dst             [4]byte
	sport, dport         uint16
	seq, ack             uint32
	flags                uint8
	plen                 int
	tsval, tsecr         uint32
	hasTS                bool
	frameLen, optionsLen int
}

// flow is everything seen on one client address and port.
type flow struct {
	pkts []pk
}

// readAll parses the capture with gopacket's pcapgo reader, checks every
// header and checksum, and decodes the TCP fields the checks need.
func readAll(t *testing.T, data []byte, cfg Config) []pk {
	t.Helper()
	r, err := pcapgo.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType() != layers.LinkTypeEthernet || r.Resolution().ToDuration() != time.Microsecond {
		t.Fatalf("link type %v, resolution %v", r.LinkType(), r.Resolution())
	}
	var out []pk
	var last time.Time
	for {
		d, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("packet %d: %v", len(out)+1, err)
		}
		n := len(out) + 1
		if ci.CaptureLength != ci.Length || len(d) != ci.Length {
			t.Fatalf("packet %d: truncated", n)
		}
		if ci.Timestamp.Before(last) || ci.Timestamp.Before(Base) || !ci.Timestamp.Before(Base.Add(cfg.Duration)) {
			t.Fatalf("packet %d: time %v out of order or out of the capture", n, ci.Timestamp)
		}
		last = ci.Timestamp
		if binary.BigEndian.Uint16(d[12:]) != 0x0800 || d[14] != 0x45 || d[23] != 6 {
			t.Fatalf("packet %d: not Ethernet/IPv4/TCP", n)
		}
		ip := d[14:34]
		total := int(binary.BigEndian.Uint16(ip[2:]))
		if 14+total != len(d) && !(len(d) == 60 && 14+total < 60) {
			t.Fatalf("packet %d: IP total length %d in a frame of %d", n, total, len(d))
		}
		if fold(sum16(ip, 0)) != 0xffff {
			t.Fatalf("packet %d: bad IPv4 header checksum", n)
		}
		var p pk
		p.t = ci.Timestamp.Sub(Base)
		p.frameLen = len(d)
		copy(p.src[:], ip[12:16])
		copy(p.dst[:], ip[16:20])
		seg := d[34 : 14+total]
		thl := int(seg[12]>>4) * 4
		p.sport, p.dport = binary.BigEndian.Uint16(seg), binary.BigEndian.Uint16(seg[2:])
		p.seq, p.ack = binary.BigEndian.Uint32(seg[4:]), binary.BigEndian.Uint32(seg[8:])
		p.flags = seg[13]
		p.plen = len(seg) - thl
		p.optionsLen = thl - 20
		for o := seg[20:thl]; len(o) > 0; {
			if o[0] == 1 {
				o = o[1:]
				continue
			}
			if o[0] == 8 {
				p.tsval, p.tsecr, p.hasTS = binary.BigEndian.Uint32(o[2:]), binary.BigEndian.Uint32(o[6:]), true
			}
			o = o[o[1]:]
		}
		pseudo := sum16(p.src[:], sum16(p.dst[:], 6+uint32(len(seg))))
		switch {
		case p.dst == Server: // received: a correct checksum
			if fold(sum16(seg, pseudo)) != 0xffff {
				t.Fatalf("packet %d: bad TCP checksum", n)
			}
		case p.optionsLen == 0: // the kernel's RST reply: a correct checksum
			if fold(sum16(seg, pseudo)) != 0xffff {
				t.Fatalf("packet %d: bad TCP checksum on a RST reply", n)
			}
		default: // sent with checksum offload: the pseudo-header sum
			if binary.BigEndian.Uint16(seg[16:]) != fold(pseudo) {
				t.Fatalf("packet %d: TCP checksum field is not the pseudo-header sum", n)
			}
		}
		out = append(out, p)
	}
	return out
}

func isClientNet(a [4]byte) bool {
	return a[0] == 198 && a[1] == 51 && a[2] == 100 || a[0] == 203 && a[1] == 0 && a[2] == 113
}

func flows(pkts []pk) (map[[6]byte]*flow, [][6]byte) {
	m := map[[6]byte]*flow{}
	var order [][6]byte
	for _, p := range pkts {
		cli, port := p.src, p.sport
		if p.src == Server {
			cli, port = p.dst, p.dport
		}
		k := [6]byte{cli[0], cli[1], cli[2], cli[3], byte(port >> 8), byte(port)}
		f := m[k]
		if f == nil {
			f = &flow{}
			m[k] = f
			order = append(order, k)
		}
		f.pkts = append(f.pkts, p)
	}
	return m, order
}

func TestWebCapture(t *testing.T) {
	cfg := smallWeb()
	data, m := write(t, cfg)
	t.Log(m)
	pkts := readAll(t, data, cfg)
	if int64(len(pkts)) != m.Packets {
		t.Fatalf("read %d packets, manifest says %d", len(pkts), m.Packets)
	}
	fm, order := flows(pkts)
	if len(fm) != m.Conns {
		t.Errorf("%d flows, manifest says %d connections", len(fm), m.Conns)
	}
	ws, we := cfg.DropStart, cfg.DropStart+cfg.DropLen
	var syns, synacks, winSYNs, winDropped, outDropped, gaveUp, retxAnswered int
	var refused, health, serverResets, slow, synackRetxFlows, synackRetxPkts, partial int
	var lastHealth time.Duration
	for _, k := range order {
		f := fm[k]
		first := f.pkts[0]
		cli := first.src
		if first.src == Server {
			cli = first.dst
		}
		if !isClientNet(cli) {
			t.Fatalf("client address %v outside the documentation ranges", cli)
		}
		if first.flags&fSYN == 0 {
			partial++
		}
		var nsyn, nsynack, dropped int
		var synTimes []time.Duration
		var lastClientData time.Duration = -1
		var ts [2]uint32
		var tsSeen [2]bool
		for i, p := range f.pkts {
			fromServer := p.src == Server
			d := 0
			if fromServer {
				d = 1
			}
			if p.hasTS {
				if tsSeen[d] && int32(p.tsval-ts[d]) < 0 {
					t.Fatalf("flow %v: TSval goes backwards", k)
				}
				ts[d], tsSeen[d] = p.tsval, true
			}
			switch {
			case p.flags&(fSYN|fACK) == fSYN:
				nsyn++
				synTimes = append(synTimes, p.t)
				if p.optionsLen != 20 || !p.hasTS {
					t.Fatalf("flow %v: SYN without MSS/SACK/TS/WS", k)
				}
				answered := i+1 < len(f.pkts) && f.pkts[i+1].src == Server
				if !answered {
					dropped++
				}
				if p.dport == 443 && p.t >= ws && p.t < we {
					winSYNs++
					if !answered {
						winDropped++
					}
				} else if !answered && p.dport != 8080 && p.t < cfg.Duration-time.Second {
					outDropped++
				}
			case p.flags&(fSYN|fACK) == fSYN|fACK:
				nsynack++
				if p.ack != f.pkts[0].seq+1 {
					t.Fatalf("flow %v: SYN-ACK acknowledges %d, ISN %d", k, p.ack, f.pkts[0].seq)
				}
			}
			if p.flags == fRST|fACK && fromServer && p.sport == 8080 {
				refused++
			}
			if p.flags&fRST != 0 && fromServer && p.sport != 8080 {
				if lastClientData < 0 || i != len(f.pkts)-1 {
					t.Errorf("flow %v: server RST not at the end after a request", k)
				}
				serverResets++
			}
			if !fromServer && p.plen > 0 {
				lastClientData = p.t
			}
			if fromServer && p.plen > 0 && lastClientData >= 0 {
				if gap := p.t - lastClientData; gap > 5*time.Second {
					slow++
				} else if gap > time.Second {
					t.Errorf("flow %v: response after %v", k, gap)
				}
				lastClientData = -1
			}
		}
		syns += nsyn
		synacks += nsynack
		if nsyn > 0 && nsynack == 0 && f.pkts[0].dport != 8080 && f.pkts[len(f.pkts)-1].t < cfg.Duration-time.Second {
			gaveUp++
			if nsyn != 4 {
				t.Errorf("flow %v: gave up after %d SYNs", k, nsyn)
			}
		}
		if nsynack > 0 && dropped > 0 {
			retxAnswered++
		}
		for i := 1; i < len(synTimes); i++ {
			if d := synTimes[i] - synTimes[i-1]; d != time.Second<<(i-1) {
				t.Errorf("flow %v: SYN %d sent %v after the previous (want %v)", k, i+1, d, time.Second<<(i-1))
			}
		}
		if nsynack > 1 {
			synackRetxFlows++
			synackRetxPkts += nsynack - 1
		}
		if cli == HealthChecker {
			health++
			lastPkt := f.pkts[len(f.pkts)-1]
			if lastPkt.src != HealthChecker || lastPkt.flags&fRST == 0 {
				t.Errorf("health check %v not closed by the checker with RST", k)
			}
			if lastHealth != 0 {
				if d := first.t - lastHealth; d < cfg.HealthEvery-5*time.Millisecond || d > cfg.HealthEvery+5*time.Millisecond {
					t.Errorf("health checks %v apart", d)
				}
			}
			lastHealth = first.t
		}
	}
	check := func(what string, got, want int) {
		t.Helper()
		if got != want {
			t.Errorf("%s: found %d, manifest says %d", what, got, want)
		}
		if want == 0 {
			t.Errorf("%s: none planted", what)
		}
	}
	check("SYNs", syns, m.SYNs)
	check("SYN-ACKs", synacks, m.SYNAcks)
	check("SYNs to :443 in the drop window", winSYNs, m.WindowSYNs)
	check("unanswered SYNs in the drop window", winDropped, m.WindowDropped)
	check("connections answered after SYN retransmits", retxAnswered, m.WindowRetxAnswered)
	check("connections whose client gave up", gaveUp, m.GaveUp)
	check("refused connections to :8080", refused, m.Refused)
	check("health checks", health, m.HealthChecks)
	check("server resets", serverResets, m.ServerResets)
	check("slow responses", slow, m.Slow)
	check("connections with SYN-ACK retransmits", synackRetxFlows, m.SynAckRetx)
	check("SYN-ACK retransmits", synackRetxPkts, m.SynAckRetxPkts)
	check("partial connections", partial, m.Partial)
	if outDropped != 0 {
		t.Errorf("%d unanswered SYNs outside the drop window", outDropped)
	}
	if r := float64(winDropped) / float64(winSYNs); r < cfg.DropProb-0.2 || r > cfg.DropProb+0.2 {
		t.Errorf("%.0f%% of the SYNs in the drop window unanswered, want about %.0f%%", 100*r, 100*cfg.DropProb)
	}
	if m.PeakOpen < 10 {
		t.Errorf("at most %d connections open at once", m.PeakOpen)
	}
}

func TestFloodCapture(t *testing.T) {
	cfg := smallFlood()
	data, m := write(t, cfg)
	t.Log(m)
	pkts := readAll(t, data, cfg)
	if int64(len(pkts)) != m.Packets {
		t.Fatalf("read %d packets, manifest says %d", len(pkts), m.Packets)
	}
	flood, legit := 0, 0
	for _, p := range pkts {
		if p.dport == 80 && p.dst == Server {
			flood++
			if p.flags != fSYN || p.hasTS || p.optionsLen != 0 && p.optionsLen != 4 || p.frameLen != 60 {
				t.Fatalf("flood packet %+v: not a bare SYN in a padded frame", p)
			}
			continue
		}
		if p.sport == 80 && p.src == Server {
			t.Fatalf("the server answered a flood SYN: %+v", p)
		}
		if p.dport == 443 || p.sport == 443 {
			legit++
		}
	}
	if flood != cfg.FloodSYNs || m.FloodSYNs != cfg.FloodSYNs {
		t.Errorf("%d flood SYNs, manifest %d, want %d", flood, m.FloodSYNs, cfg.FloodSYNs)
	}
	if legit == 0 || m.Conns < 10 {
		t.Errorf("%d legitimate packets, %d connections", legit, m.Conns)
	}
}

func TestGenerateFileSkipsUpToDate(t *testing.T) {
	dir := t.TempDir()
	cfg := smallFlood()
	r1, err := GenerateFile(dir, cfg, false, false)
	if err != nil || r1.Skipped {
		t.Fatalf("first run: %+v %v", r1, err)
	}
	r2, err := GenerateFile(dir, cfg, false, true)
	if err != nil || !r2.Skipped || r2.SHA256 != r1.SHA256 || r2.Manifest != r1.Manifest {
		t.Fatalf("second run: %+v %v", r2, err)
	}
	path := filepath.Join(dir, cfg.Name)
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	r3, err := GenerateFile(dir, cfg, false, false)
	if err != nil || r3.Skipped || r3.SHA256 != r1.SHA256 {
		t.Fatalf("after touching the file: %+v %v", r3, err)
	}
	cfg.Seed++
	if r4, err := GenerateFile(dir, cfg, false, false); err != nil || r4.Skipped || r4.SHA256 == r1.SHA256 {
		t.Fatalf("another config: %+v %v", r4, err)
	}
}

// TestPresets plans the full captures (written to io.Discard) and checks
// their size and content against what the benchmark needs.
func TestPresets(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 1.8 GB to io.Discard")
	}
	w, err := Write(io.Discard, Web1G())
	if err != nil {
		t.Fatal(err)
	}
	t.Log(w)
	if w.Bytes < 0.9e9 || w.Bytes > 1.1e9 {
		t.Errorf("web: %d bytes, want 1 GB ± 10%%", w.Bytes)
	}
	if w.Conns < 20000 || w.PeakOpen < 200 || w.WindowDropped < 100 || w.GaveUp == 0 || w.SynAckRetx == 0 {
		t.Errorf("web: %v", w)
	}
	if r := float64(w.WindowDropped) / float64(w.WindowSYNs); r < 0.25 || r > 0.35 {
		t.Errorf("web: %.1f%% of the window's SYNs dropped", 100*r)
	}
	f, err := Write(io.Discard, SynFlood10M())
	if err != nil {
		t.Fatal(err)
	}
	t.Log(f)
	if f.FloodSYNs != 10_000_000 || f.Conns < 200 || f.Conns > 1000 {
		t.Errorf("flood: %v", f)
	}
}
