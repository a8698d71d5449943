package testgen

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

const committed = "../../testdata/pcaps"

// TestCommittedFilesAreCurrent regenerates everything into a temporary
// directory and compares it with testdata/pcaps, so the committed captures
// cannot drift from the generator.
func TestCommittedFilesAreCurrent(t *testing.T) {
	dir := t.TempDir()
	if err := Generate(dir); err != nil {
		t.Fatal(err)
	}
	made, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, e := range made {
		names[e.Name()] = true
		fresh, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		old, err := os.ReadFile(filepath.Join(committed, e.Name()))
		if err != nil {
			t.Errorf("%s: not committed (run go run ./internal/testgen/gen -out testdata/pcaps): %v", e.Name(), err)
			continue
		}
		if strings.HasSuffix(e.Name(), ".gz") {
			// The deflate stream may change with the Go release; the capture inside may not.
			fresh, old = gunzip(t, e.Name(), fresh), gunzip(t, e.Name(), old)
		}
		if !bytes.Equal(fresh, old) {
			t.Errorf("%s: committed file differs from the generator's output (regenerate with go run ./internal/testgen/gen -out testdata/pcaps)", e.Name())
		}
	}
	// Every committed file that is not a lab recording must come from the generator.
	have, err := os.ReadDir(committed)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range have {
		if !names[e.Name()] && !strings.HasPrefix(e.Name(), "lab-") {
			t.Errorf("%s: committed but no longer generated", e.Name())
		}
	}
}

func TestDeterministic(t *testing.T) {
	a, err := Output()
	if err != nil {
		t.Fatal(err)
	}
	b, err := Output()
	if err != nil {
		t.Fatal(err)
	}
	for name := range a {
		if !bytes.Equal(a[name], b[name]) {
			t.Errorf("%s: two runs differ", name)
		}
	}
}

func gunzip(t *testing.T, name string, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return out
}

// seg is a TCP segment read back from a generated file with gopacket.
type seg struct {
	at       time.Time
	src, dst netip.AddrPort
	flags    uint8
	seq, ack uint32
	tsval    uint32
	tsecr    uint32
	hasTS    bool
	ipBytes  string // the innermost IP datagram, to recognise copies
}

// readBack decodes every TCP segment in a file (not those quoted in ICMP).
func readBack(t *testing.T, name string, data []byte) []seg {
	t.Helper()
	if strings.HasSuffix(name, ".gz") {
		data = gunzip(t, name, data)
	}
	type rec struct {
		ci   gopacket.CaptureInfo
		data []byte
		lt   layers.LinkType
	}
	var recs []rec
	if binary.LittleEndian.Uint32(data) == 0x0a0d0d0a {
		r, err := pcapgo.NewNgReader(bytes.NewReader(data), pcapgo.NgReaderOptions{WantMixedLinkType: true})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for {
			d, ci, err := r.ReadPacketData()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			in, err := r.Interface(ci.InterfaceIndex)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			recs = append(recs, rec{ci, d, in.LinkType})
		}
	} else {
		r, err := pcapgo.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for {
			d, ci, err := r.ReadPacketData()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			recs = append(recs, rec{ci, d, r.LinkType()})
		}
	}
	var out []seg
	for _, r := range recs {
		var dec gopacket.Decoder = r.lt
		if r.lt == 276 {
			dec = layers.LayerTypeLinuxSLL2
		}
		p := gopacket.NewPacket(r.data, dec, gopacket.Default)
		var s seg
		var ipLayer gopacket.Layer
		var tcp *layers.TCP
		for _, l := range p.Layers() {
			switch l := l.(type) {
			case *layers.IPv4, *layers.IPv6:
				ipLayer = l
			case *layers.ICMPv4, *layers.ICMPv6:
				ipLayer = nil
			case *layers.TCP:
				if ipLayer != nil {
					tcp = l
				}
			}
			if tcp != nil {
				break
			}
		}
		if ipLayer == nil {
			continue
		}
		var raw []byte // the transport header, parsed by hand when gopacket gave up (cut options)
		switch ip := ipLayer.(type) {
		case *layers.IPv4:
			if ip.Protocol != layers.IPProtocolTCP || ip.FragOffset != 0 || ip.Flags&layers.IPv4MoreFragments != 0 {
				continue
			}
			s.src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip.SrcIP.To4())), 0)
			s.dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip.DstIP.To4())), 0)
			raw = ip.Payload
			s.ipBytes = string(append(append([]byte(nil), ip.Contents...), ip.Payload...))
		case *layers.IPv6:
			s.src = netip.AddrPortFrom(netip.AddrFrom16([16]byte(ip.SrcIP)), 0)
			s.dst = netip.AddrPortFrom(netip.AddrFrom16([16]byte(ip.DstIP)), 0)
			s.ipBytes = string(append(append([]byte(nil), ip.Contents...), ip.Payload...))
			if tcp == nil {
				continue
			}
		}
		if tcp != nil {
			raw = tcp.Contents
			for _, o := range tcp.Options {
				if o.OptionType == layers.TCPOptionKindTimestamps {
					s.hasTS = true
					s.tsval = binary.BigEndian.Uint32(o.OptionData)
					s.tsecr = binary.BigEndian.Uint32(o.OptionData[4:])
				}
			}
		}
		if len(raw) < 14 {
			t.Fatalf("%s: TCP header cut below 14 bytes", name)
		}
		s.src = netip.AddrPortFrom(s.src.Addr(), binary.BigEndian.Uint16(raw))
		s.dst = netip.AddrPortFrom(s.dst.Addr(), binary.BigEndian.Uint16(raw[2:]))
		s.seq = binary.BigEndian.Uint32(raw[4:])
		s.ack = binary.BigEndian.Uint32(raw[8:])
		s.flags = raw[13]
		s.at = r.ci.Timestamp
		out = append(out, s)
	}
	return out
}

// TestExpectMatchesPackets reads every listed file back with gopacket and
// checks the SYN and SYN-ACK counts and the ISNs of EXPECT.tsv against the
// packets actually in it (copies of the same datagram counted once).
func TestExpectMatchesPackets(t *testing.T) {
	files, err := Output()
	if err != nil {
		t.Fatal(err)
	}
	type key struct{ file, client, server string }
	type counts struct{ syns, synacks int }
	want := map[key]*counts{}
	isns := map[key]map[uint32]bool{}
	sc := bufio.NewScanner(bytes.NewReader(files["EXPECT.tsv"]))
	sc.Scan()
	if sc.Text() != ExpectHeader {
		t.Fatalf("EXPECT.tsv header %q", sc.Text())
	}
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 10 {
			t.Fatalf("EXPECT.tsv: %d columns in %q", len(f), sc.Text())
		}
		k := key{f[0], f[1], f[2]}
		if want[k] == nil {
			want[k] = &counts{}
			isns[k] = map[uint32]bool{}
		}
		n, _ := strconv.Atoi(f[5])
		m, _ := strconv.Atoi(f[6])
		want[k].syns += n
		want[k].synacks += m
		if f[3] != "-" {
			v, err := strconv.ParseUint(f[3], 10, 32)
			if err != nil {
				t.Fatalf("EXPECT.tsv: isn %q", f[3])
			}
			isns[k][uint32(v)] = true
		}
		switch f[4] {
		case Established, AnsweredAfterRetransmit, Unanswered, Refused, Abandoned, Undetermined, Partial:
		default:
			t.Errorf("EXPECT.tsv: outcome %q", f[4])
		}
	}
	got := map[key]*counts{}
	seenISN := map[key]map[uint32]bool{}
	listed := map[string]bool{}
	for k := range want {
		listed[k.file] = true
	}
	for name := range listed {
		seen := map[string]bool{}
		for _, s := range readBack(t, name, files[name]) {
			if seen[s.ipBytes] {
				continue
			}
			seen[s.ipBytes] = true
			syn, ack := s.flags&SYN != 0, s.flags&ACK != 0
			if !syn {
				continue
			}
			k := key{name, s.src.String(), s.dst.String()}
			if ack {
				k = key{name, s.dst.String(), s.src.String()}
			}
			if got[k] == nil {
				got[k] = &counts{}
				seenISN[k] = map[uint32]bool{}
			}
			if ack {
				got[k].synacks++
			} else {
				got[k].syns++
				seenISN[k][s.seq] = true
			}
		}
	}
	for k, w := range want {
		g := got[k]
		if g == nil {
			g = &counts{}
		}
		// In a simultaneous open the "client" also sends a SYN-ACK; EXPECT counts the server's only.
		if k.file == "simultaneous-open.pcap" {
			g.synacks = got[key{k.file, k.server, k.client}].synacks
		}
		if g.syns != w.syns || g.synacks != w.synacks {
			t.Errorf("%s %s -> %s: EXPECT says %d SYNs, %d SYN-ACKs; the file has %d, %d", k.file, k.client, k.server, w.syns, w.synacks, g.syns, g.synacks)
		}
		for isn := range isns[k] {
			if !seenISN[k][isn] {
				t.Errorf("%s %s -> %s: no SYN with ISN %d", k.file, k.client, k.server, isn)
			}
		}
	}
}

// TestTimestampsBehaveLikeAStack checks TSval/TSecr in the retransmission
// scenario: TSval advances with time in milliseconds, TSecr echoes the
// peer's latest TSval.
func TestTimestampsBehaveLikeAStack(t *testing.T) {
	c := answeredAfterRetransmit()
	b, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	segs := readBack(t, c.Name, b)
	var syns []seg
	var synack *seg
	for i, s := range segs {
		if !s.hasTS {
			t.Fatalf("segment %d without timestamps", i)
		}
		if s.flags == SYN {
			syns = append(syns, s)
		}
		if s.flags == SYN|ACK && synack == nil {
			synack = &segs[i]
		}
	}
	if len(syns) != 3 || synack == nil {
		t.Fatalf("%d SYNs, SYN-ACK %v", len(syns), synack != nil)
	}
	for i, s := range syns {
		if s.seq != syns[0].seq {
			t.Errorf("SYN %d: ISN %d, want %d", i, s.seq, syns[0].seq)
		}
		dt := s.at.Sub(syns[0].at)
		if got := s.tsval - syns[0].tsval; got != uint32(dt/time.Millisecond) {
			t.Errorf("SYN %d: TSval advanced by %d over %v", i, got, dt)
		}
		if s.tsecr != 0 {
			t.Errorf("SYN %d: TSecr %d", i, s.tsecr)
		}
	}
	if synack.tsecr != syns[2].tsval {
		t.Errorf("SYN-ACK TSecr %d, want the third SYN's TSval %d", synack.tsecr, syns[2].tsval)
	}
	if synack.ack != syns[0].seq+1 {
		t.Errorf("SYN-ACK ack %d, want ISN+1", synack.ack)
	}
	// Every later segment echoes the latest TSval from the other direction.
	last := map[netip.AddrPort]uint32{}
	for _, s := range segs {
		if s.flags&ACK != 0 {
			if want, ok := last[s.dst]; ok && s.tsecr != want {
				t.Errorf("%v -> %v seq %d: TSecr %d, want %d", s.src, s.dst, s.seq, s.tsecr, want)
			}
		}
		last[s.src] = s.tsval
	}
}

// TestSeqWrap checks the sequence numbers cross zero in both directions and
// the final ACKs are consistent.
func TestSeqWrap(t *testing.T) {
	c := seqWrap()
	b, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	var wrappedC, wrappedS bool
	for _, s := range readBack(t, c.Name, b) {
		fromClient := s.src.Port() == 47200
		if s.seq < 0x1000 && fromClient {
			wrappedC = true
		}
		if s.seq < 0x1000 && !fromClient {
			wrappedS = true
		}
	}
	if !wrappedC || !wrappedS {
		t.Errorf("client wrapped %v, server wrapped %v", wrappedC, wrappedS)
	}
}

func TestFileSizes(t *testing.T) {
	files, err := Output()
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		limit := 64 << 10
		if name == "showcase.pcapng" {
			limit = 512 << 10
		}
		if len(b) > limit {
			t.Errorf("%s: %d bytes, more than %d", name, len(b), limit)
		}
	}
}

func Example() {
	c := NewCapture("example.pcap", "one connection")
	k := c.Conn("198.51.100.1:40000", "192.0.2.1:80", 1000, 5000)
	cl, s := k.Client, k.Server
	cl.SYN(0)
	s.SYNACK(ms(0.05))
	cl.ACK(ms(10))
	cl.Data(ms(10.1), 100)
	s.FIN(ms(11))
	cl.FIN(ms(21))
	s.ACK(ms(21.05))
	k.Expect(Established, "example")
	e := k.Expectation()
	fmt.Println(e.Outcome, e.ISN, e.Syns, e.SynAcks, e.Close, e.ClosedBy)
	// Output: established 1000 1 1 fin server
}
