package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"testing/iotest"
)

// want is what a test expects of one packet.
type want struct {
	time    int64
	data    []byte
	origLen int
	link    uint16
	ifIndex int
	offset  int64
}

func checkPackets(t *testing.T, got []Packet, wants []want) {
	t.Helper()
	if len(got) != len(wants) {
		t.Fatalf("got %d packets, want %d", len(got), len(wants))
	}
	for i, w := range wants {
		p := got[i]
		if p.Num != uint64(i+1) || p.Time != w.time || !bytes.Equal(p.Data, w.data) || p.OrigLen != w.origLen ||
			p.LinkType != w.link || p.IfIndex != w.ifIndex || p.Offset != w.offset {
			t.Errorf("packet %d: got num %d time %d len %d orig %d link %d if %d off %d,\n"+
				"want num %d time %d len %d orig %d link %d if %d off %d",
				i+1, p.Num, p.Time, len(p.Data), p.OrigLen, p.LinkType, p.IfIndex, p.Offset,
				i+1, w.time, len(w.data), w.origLen, w.link, w.ifIndex, w.offset)
		}
	}
}

func TestPcapVariants(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    binary.AppendByteOrder
		nano bool
	}{
		{"le-usec", le, false}, // a1b2c3d4
		{"le-nsec", le, true},  // a1b23c4d
		{"be-usec", be, false},
		{"be-nsec", be, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frac, unit := uint32(123456), int64(1000)
			if tc.nano {
				frac, unit = 123456789, 1
			}
			// Link type 1 with an FCS length in the upper bits; a snaplen
			// shorter than the second record, which must still be read whole;
			// the third record claims less on the wire than was captured.
			a, b, c := frame(60, 1), frame(100, 2), frame(80, 3)
			f := newPcapFile(tc.o, tc.nano, 64, 1|0x14000000).
				add(1700000000, frac, a, 60).
				add(1699999999, frac, b, 1514).
				add(1700000001, 0, c, 40)
			pkts, info := mustRead(t, f.buf, "v.pcap")
			t0 := int64(1700000000)*1e9 + int64(frac)*unit
			checkPackets(t, pkts, []want{
				{t0, a, 60, 1, 0, 24},
				{t0 - 1e9, b, 1514, 1, 0, 24 + 16 + 60},
				{1700000001e9, c, 80, 1, 0, 24 + 16 + 60 + 16 + 100},
			})
			wantInfo := SourceInfo{Path: "v.pcap", Format: "pcap", LinkTypes: []uint16{1}, Snaplen: 64,
				Nanosecond: tc.nano, Packets: 3, First: t0 - 1e9, Last: 1700000001e9, Bytes: int64(len(f.buf))}
			checkInfo(t, info, &wantInfo)
		})
	}
}

func checkInfo(t *testing.T, got, want *SourceInfo) {
	t.Helper()
	if got.Path != want.Path || got.Format != want.Format || got.Compressed != want.Compressed ||
		!slices.Equal(got.LinkTypes, want.LinkTypes) || got.Snaplen != want.Snaplen || got.Nanosecond != want.Nanosecond ||
		got.Packets != want.Packets || got.First != want.First || got.Last != want.Last || got.Bytes != want.Bytes ||
		got.Err != want.Err {
		t.Errorf("info:\n got  %+v\n want %+v", *got, *want)
	}
}

// ngSample is a two-section pcapng with everything the reader must handle:
// two interfaces of different link types and resolutions, a time offset,
// blocks to skip, simple and obsolete packet blocks, and a second section in
// the other byte order with a binary resolution and a picosecond one.
func ngSample() ([]byte, []want) {
	f := newNgFile(le)
	a, b, c, d, e, g, h := frame(60, 1), frame(40, 2), frame(64, 3), frame(54, 4), frame(70, 5), frame(96, 6), frame(33, 7)
	var wants []want
	at := func() int64 { return int64(len(f.buf)) }

	f.idb(1, 0, f.opt(optTSResol, []byte{6}), f.opt(2, []byte("eth0")))
	f.block(4, []byte{1, 0, 4, 0, 10, 0, 0, 1, 0, 0, 0, 0}) // name resolution: skipped
	f.idb(101, 65535, f.opt(optTSResol, []byte{9}), f.opt(optTSOffset, le.AppendUint64(nil, 1000)))
	wants = append(wants, want{1700000000123456000, a, 60, 1, 0, at()})
	f.epb(0, 1700000000123456, a, 60)
	f.block(5, make([]byte, 12)) // interface statistics: skipped
	wants = append(wants, want{1700000000123456789 + 1000e9, b, 1500, 101, 1, at()})
	f.epb(1, 1700000000123456789, b, 1500)
	f.block(0x40000bad, []byte{0, 0, 0x7e, 0x6a, 'x'}) // custom block: skipped
	wants = append(wants, want{1700000000123456789 + 1000e9, c, 64, 1, 0, at()})
	f.spb(c, 64) // no timestamp: the previous packet's

	f.shb(be)
	f.idb(113, 96, f.opt(optTSResol, []byte{0x80 | 20})) // 2^-20 s
	f.idb(1, 0, f.opt(optTSResol, []byte{12}))           // picoseconds
	wants = append(wants, want{3_500_000_000, d, 54, 113, 0, at()})
	f.opb(0, 3<<20|1<<19, d, 54)
	wants = append(wants, want{5_000_000_001, e, 70, 1, 1, at()})
	f.epb(1, 5_000_000_001_500, e, 70)
	wants = append(wants, want{5_000_000_001, g, 200, 113, 0, at()})
	f.spb(append(bytes.Clone(g), frame(8, 0)...), 200) // longer than the snaplen: cut to 96
	wants = append(wants, want{2_000_000_000, h, 33, 113, 0, at()})
	f.epb(0, 2<<20, h, 33)
	return f.buf, wants
}

func TestPcapng(t *testing.T) {
	b, wants := ngSample()
	pkts, info := mustRead(t, b, "s.pcapng")
	checkPackets(t, pkts, wants)
	checkInfo(t, info, &SourceInfo{Path: "s.pcapng", Format: "pcapng", LinkTypes: []uint16{1, 101, 113},
		Packets: 7, First: 2_000_000_000, Last: 1700000000123456789 + 1000e9, Bytes: int64(len(b))})
}

// The link types are known once the reader is open, before the first packet.
func TestPcapngInfoAfterOpen(t *testing.T) {
	b, _ := ngSample()
	src, err := NewReader(bytes.NewReader(b), "s.pcapng")
	if err != nil {
		t.Fatal(err)
	}
	if lt := src.Info().LinkTypes; !slices.Equal(lt, []uint16{1, 101}) {
		t.Errorf("link types after open: %v, want [1 101]", lt)
	}
}

func TestGzip(t *testing.T) {
	ng, ngWants := ngSample()
	p := newPcapFile(le, true, 65535, 1).add(10, 20, frame(60, 1), 60).add(11, 21, frame(1514, 2), 1514)
	for _, tc := range []struct {
		name, format string
		plain        []byte
	}{{"pcap", "pcap", p.buf}, {"pcapng", "pcapng", ng}} {
		t.Run(tc.name, func(t *testing.T) {
			want, wantInfo := mustRead(t, tc.plain, "x")
			got, info := mustRead(t, gzipped(t, tc.plain), "x")
			if !slices.EqualFunc(got, want, samePacket) {
				t.Errorf("gzip packets differ from the plain file's")
			}
			wantInfo.Compressed = true
			checkInfo(t, info, wantInfo) // offsets and Bytes count the decompressed stream
			if tc.format == "pcapng" {
				checkPackets(t, got, ngWants)
			}
		})
	}
}

func samePacket(a, b Packet) bool {
	return bytes.Equal(a.Data, b.Data) && a.Time == b.Time && a.OrigLen == b.OrigLen && a.LinkType == b.LinkType &&
		a.Num == b.Num && a.Offset == b.Offset && a.Source == b.Source && a.IfIndex == b.IfIndex
}

// Readers that return a few bytes per call, or data together with io.EOF,
// must give the same packets: records then straddle many refills.
func TestOddReaders(t *testing.T) {
	ng, _ := ngSample()
	p := newPcapFile(be, false, 65535, 1).add(10, 20, frame(60, 1), 60).add(11, 21, frame(1514, 2), 1514)
	for _, plain := range [][]byte{ng, p.buf, gzipped(t, ng)} {
		want, _ := mustRead(t, plain, "x")
		for name, r := range map[string]io.Reader{
			"one-byte": iotest.OneByteReader(bytes.NewReader(plain)),
			"half":     iotest.HalfReader(bytes.NewReader(plain)),
			"data-err": iotest.DataErrReader(bytes.NewReader(plain)),
		} {
			src, err := NewReader(r, "x")
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			got, err := readAll(src)
			if err != nil || !slices.EqualFunc(got, want, samePacket) {
				t.Errorf("%s: got %d packets, err %v; want %d packets", name, len(got), err, len(want))
			}
		}
	}
}

// A capture bigger than the read buffer, with records of every size up to
// the maximum, exercises refilling, compaction and growth.
func TestLargeCapture(t *testing.T) {
	f := newPcapFile(le, false, 65535, 1)
	ng := newNgFile(le).idb(1, 0)
	var wants []int
	for i := 0; len(f.buf) < 3*bufSize; i++ {
		n := (i * 7919) % 9000
		if i%50 == 0 {
			n = MaxRecordLen - i%3
		}
		f.add(uint32(i), 0, frame(n, byte(i)), uint32(n))
		ng.epb(0, uint64(i)*1e6, frame(n, byte(i)), uint32(n))
		wants = append(wants, n)
	}
	for _, b := range [][]byte{f.buf, ng.buf} {
		pkts, info := mustRead(t, b, "big")
		if len(pkts) != len(wants) || info.Bytes != int64(len(b)) {
			t.Fatalf("got %d packets / %d bytes, want %d / %d", len(pkts), info.Bytes, len(wants), len(b))
		}
		for i, p := range pkts {
			if !bytes.Equal(p.Data, frame(wants[i], byte(i))) || p.Time != int64(i)*1e9 {
				t.Fatalf("packet %d differs", i+1)
			}
		}
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	ng, wants := ngSample()
	gz := filepath.Join(dir, "capture.pcap") // pcapng, gzipped, misnamed: the magic decides
	if err := os.WriteFile(gz, gzipped(t, ng), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := Open(gz)
	if err != nil {
		t.Fatal(err)
	}
	got, err := readAll(src)
	if err != nil {
		t.Fatal(err)
	}
	checkPackets(t, got, wants)
	if info := src.Info(); info.Format != "pcapng" || !info.Compressed {
		t.Errorf("format %q compressed %v, want pcapng compressed", info.Format, info.Compressed)
	}
	if err := src.Close(); err != nil {
		t.Errorf("close: %v", err)
	}

	if _, err := Open(filepath.Join(dir, "missing.pcap")); !errors.Is(err, fs.ErrNotExist) || IsFormatError(err) {
		t.Errorf("missing file: got %v, want a not-exist error", err)
	}
}

func TestOpenStdin(t *testing.T) {
	ng, wants := ngSample()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		w.Write(ng)
		w.Close()
	}()
	stdin := os.Stdin
	os.Stdin = r
	defer func() { os.Stdin = stdin; r.Close() }()

	src, err := Open("-")
	if err != nil {
		t.Fatal(err)
	}
	got, err := readAll(src)
	if err != nil {
		t.Fatal(err)
	}
	checkPackets(t, got, wants)
	if p := src.Info().Path; p != "-" {
		t.Errorf("path %q, want -", p)
	}
}

// In the steady state a packet costs no allocation in either reader.
func TestZeroAllocs(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
	}{{"pcap", benchPcap()}, {"pcapng", benchPcapng()}} {
		src, err := NewReader(bytes.NewReader(tc.data), tc.name)
		if err != nil {
			t.Fatal(err)
		}
		// Warm up: the buffer grows to its full size in the first MiB.
		var p Packet
		for range 5000 {
			src.Next(&p)
		}
		allocs := testing.AllocsPerRun(50000, func() {
			if err := src.Next(&p); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per packet, want 0", tc.name, allocs)
		}
	}
}
