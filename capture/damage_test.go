package capture

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// Damaged captures: each must stop with exactly this error (file, packet
// number, byte offset, what is wrong), after the packets before the damage.
func TestDamage(t *testing.T) {
	// Two 60-byte records: the third would start at byte 24 + 2*(16+60) = 176.
	pcap2 := func() *pcapFile {
		return newPcapFile(le, false, 65535, 1).add(1, 0, frame(60, 1), 60).add(2, 0, frame(60, 2), 60)
	}
	// Section header (28 bytes), interface (20), one enhanced packet block
	// (32+60 = 92): the next block starts at byte 140.
	ng1 := func() *ngFile {
		return newNgFile(le).idb(1, 0).epb(0, 1e6, frame(60, 1), 60)
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	cut := func(b []byte, n int) []byte { return b[:len(b)-n] }
	patch := func(b []byte, at int, v ...byte) []byte {
		b = bytes.Clone(b)
		copy(b[at:], v)
		return b
	}

	for _, tc := range []struct {
		name    string
		data    []byte
		packets int
		err     string // "" for a clean end
	}{
		{"empty file", nil, 0,
			"reading d: at byte 0: empty file"},
		{"wrong magic", []byte("GET / HTTP/1.1\r\n"), 0,
			"reading d: at byte 0: not a pcap or pcapng file (magic 0x47455420)"},
		{"shorter than a magic", []byte("ab\n"), 0,
			"reading d: at byte 0: not a pcap or pcapng file (magic 0x61620a)"},

		// classic pcap
		{"pcap header only", pcap2().buf[:24], 0, ""},
		{"pcap truncated file header", pcap2().buf[:10], 0,
			"reading d: at byte 0: truncated pcap file header: only 10 of 24 bytes"},
		{"pcap archaic version", patch(pcap2().buf, 4, 1, 0, 0, 0), 0,
			"reading d: at byte 0: unsupported pcap version 1.0"},
		{"pcap truncated record header", cat(pcap2().buf, make([]byte, 10)), 2,
			"reading d: packet 3 at byte 176: truncated record header: only 10 of 16 bytes left"},
		{"pcap truncated record data", cut(pcap2().add(3, 0, frame(60, 3), 60).buf, 40), 2,
			"reading d: packet 3 at byte 176: truncated record: header says 60 bytes, only 20 left"},
		{"pcap record over 256 KiB", pcap2().addRaw(3, 0, MaxRecordLen+1, MaxRecordLen+1, frame(100, 3)).buf, 2,
			"reading d: packet 3 at byte 176: captured length 262145 exceeds the maximum of 262144"},
		{"pcap record of exactly 256 KiB", pcap2().add(3, 0, frame(MaxRecordLen, 3), MaxRecordLen).buf, 3, ""},

		// pcapng
		{"pcapng section header only", newNgFile(le).buf, 0, ""},
		{"pcapng headers only", newNgFile(be).idb(1, 0).buf, 0, ""},
		{"pcapng block lengths disagree", patch(ng1().epb(0, 2e6, frame(60, 2), 60).buf, 140+88, 96), 1,
			"reading d: packet 2 at byte 140: block length mismatch: header says 92, trailer says 96"},
		{"pcapng block past EOF", cut(ng1().epb(0, 2e6, frame(60, 2), 60).buf, 10), 1,
			"reading d: packet 2 at byte 140: truncated block: header says 92 bytes, only 82 left"},
		{"pcapng truncated block header", cat(ng1().buf, []byte{6, 0, 0, 0, 92}), 1,
			"reading d: packet 2 at byte 140: truncated block header: only 5 of 8 bytes left"},
		{"pcapng undefined interface", ng1().epb(2, 2e6, frame(60, 2), 60).buf, 1,
			"reading d: packet 2 at byte 140: packet refers to interface 2, but the section defines 1"},
		{"pcapng new section forgets interfaces", ng1().shb(be).epb(0, 2e6, frame(60, 2), 60).buf, 1,
			"reading d: packet 2 at byte 168: packet refers to interface 0, but the section defines 0"},
		{"pcapng block length not a multiple of 4", cat(ng1().buf, le.AppendUint32(le.AppendUint32(nil, 6), 30), make([]byte, 24)), 1,
			"reading d: packet 2 at byte 140: block length 30 is not a multiple of 4"},
		{"pcapng block length under 12", cat(ng1().buf, le.AppendUint32(le.AppendUint32(nil, 6), 8)), 1,
			"reading d: packet 2 at byte 140: block length 8 is shorter than the minimum of 12"},
		{"pcapng enhanced packet block too short", ng1().block(blockEPB, make([]byte, 16)).buf, 1,
			"reading d: packet 2 at byte 140: enhanced packet block length 28 is shorter than the minimum of 32"},
		{"pcapng captured length beyond the block", patch(ng1().epb(0, 2e6, frame(60, 2), 60).buf, 140+20, 100), 1,
			"reading d: packet 2 at byte 140: captured length 100 runs past the end of the block (room for 60)"},
		{"pcapng record over 256 KiB", patch(ng1().epb(0, 2e6, frame(60, 2), 60).buf, 140+20, 0xe0, 0x93, 0x04), 1,
			"reading d: packet 2 at byte 140: captured length 300000 exceeds the maximum of 262144"},
		{"pcapng bad byte-order magic", patch(newNgFile(le).buf, 8, 1, 2, 3, 4), 0,
			"reading d: at byte 0: bad byte-order magic 0x01020304 in section header"},
		{"pcapng bad byte-order magic mid-file", patch(ng1().shb(le).buf, 140+8, 1, 2, 3, 4), 1,
			"reading d: packet 2 at byte 140: bad byte-order magic 0x01020304 in section header"},
		{"pcapng version 2", patch(newNgFile(le).buf, 12, 2), 0,
			"reading d: at byte 0: unsupported pcapng version 2.0"},
		{"pcapng empty simple packet", newNgFile(le).idb(1, 0).spb(nil, 0).buf, 1, ""},
		{"pcapng simple packet longer than its block", newNgFile(le).idb(1, 0).spb(frame(9, 1), 20).buf, 0,
			"reading d: packet 1 at byte 48: captured length 20 runs past the end of the block (room for 12)"},
		{"pcapng simple packet before any interface", newNgFile(le).spb(frame(60, 1), 60).buf, 0,
			"reading d: packet 1 at byte 28: simple packet block before any interface description"},
		{"pcapng unsupported resolution", newNgFile(le).idb(1, 0, (&ngFile{o: le}).opt(optTSResol, []byte{80})).buf, 0,
			"reading d: packet 1 at byte 28: unsupported timestamp resolution 0x50"},
		{"pcapng interface option past the block", newNgFile(le).idb(1, 0, []byte{9, 0, 40, 0}).buf, 0,
			"reading d: packet 1 at byte 28: interface option 9 runs past the end of the block"},

		// gzip
		{"gzip cut before its trailer", cut(gzipped(t, pcap2().buf), 8), 2,
			"reading d: packet 3 at byte 176: decompressing: unexpected EOF"},
		{"gzip bad checksum", func() []byte { b := gzipped(t, pcap2().buf); b[len(b)-8] ^= 0xff; return b }(), 2,
			"reading d: packet 3 at byte 176: decompressing: gzip: invalid checksum"},
		{"gzip magic only", []byte{0x1f, 0x8b}, 0,
			"reading d: at byte 0: decompressing: unexpected EOF"},
		{"gzip of nothing", gzipped(t, nil), 0,
			"reading d: at byte 0: empty file"},
		{"gzip of garbage", gzipped(t, []byte("hello, world")), 0,
			"reading d: at byte 0: not a pcap or pcapng file (magic 0x68656c6c)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, err := NewReader(bytes.NewReader(tc.data), "d")
			var pkts []Packet
			if err == nil {
				pkts, err = readAll(src)
				if err != nil {
					if src.Info().Err != err {
						t.Errorf("Info().Err = %v, want the error Next returned", src.Info().Err)
					}
					var p Packet
					if again := src.Next(&p); again != err {
						t.Errorf("Next after the error returned %v", again)
					}
				}
				if got := src.Info().Packets; got != uint64(len(pkts)) {
					t.Errorf("Info().Packets = %d, want %d", got, len(pkts))
				}
			}
			if len(pkts) != tc.packets {
				t.Errorf("got %d packets before the damage, want %d", len(pkts), tc.packets)
			}
			for i, p := range pkts {
				if p.Num != uint64(i+1) || !bytes.Equal(p.Data, frame(len(p.Data), byte(i+1))) {
					t.Errorf("packet %d is not the one written", i+1)
				}
			}
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("got error %q, want a clean end", err)
			case tc.err != "" && (err == nil || err.Error() != tc.err):
				t.Errorf("got error %v\nwant          %s", err, tc.err)
			case tc.err != "" && !IsFormatError(err):
				t.Errorf("%v is not a *FormatError", err)
			}
		})
	}
}

// An I/O error is not damage: it comes back wrapped, with the path.
func TestIOError(t *testing.T) {
	boom := errors.New("boom")
	b := newPcapFile(le, false, 65535, 1).add(1, 0, frame(60, 1), 60).buf
	src, err := NewReader(io.MultiReader(bytes.NewReader(b), errReader{boom}), "io.pcap")
	if err != nil {
		t.Fatal(err)
	}
	pkts, err := readAll(src)
	if len(pkts) != 1 || !errors.Is(err, boom) || IsFormatError(err) || err.Error() != "reading io.pcap: boom" {
		t.Errorf("got %d packets, error %v; want 1 packet and the wrapped I/O error", len(pkts), err)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// FuzzNewReader: no input may panic, hang or hand out a packet that breaks
// the Packet contract; every failure is io.EOF, damage or a gzip error.
func FuzzNewReader(f *testing.F) {
	ng, _ := ngSample()
	pcap := newPcapFile(be, true, 64, 1).add(1, 2, frame(60, 1), 60).add(3, 4, frame(100, 2), 40).buf
	for _, seed := range [][]byte{ng, pcap, gzipped(f, pcap), newNgFile(le).idb(1, 0).spb(nil, 0).buf} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		src, err := NewReader(bytes.NewReader(b), "fuzz")
		if err != nil {
			if !IsFormatError(err) {
				t.Fatalf("open: %v is not a *FormatError", err)
			}
			return
		}
		var p Packet
		for n := uint64(1); ; n++ {
			err := src.Next(&p)
			if err == io.EOF {
				return
			}
			if err != nil {
				if !IsFormatError(err) || src.Info().Err != err {
					t.Fatalf("packet %d: %v", n, err)
				}
				return
			}
			if p.Num != n || len(p.Data) > MaxRecordLen || p.OrigLen < len(p.Data) || p.Offset < 0 || p.Offset >= int64(len(b)) && !src.Info().Compressed {
				t.Fatalf("packet %d breaks the contract: %+v", n, p)
			}
		}
	})
}

// A record longer than the declared snap length breaks the format but is
// read anyway (as tcpdump and Wireshark do), and the anomaly is reported.
func TestRecordLongerThanSnaplen(t *testing.T) {
	f := newPcapFile(le, false, 64, 1).add(1, 0, make([]byte, 60), 60).add(2, 0, make([]byte, 100), 100).add(3, 0, make([]byte, 10), 10)
	src, err := NewReader(bytes.NewReader(f.buf), "long.pcap")
	if err != nil {
		t.Fatal(err)
	}
	var p Packet
	n := 0
	for src.Next(&p) == nil {
		n++
	}
	in := src.Info()
	if n != 3 || in.Err != nil {
		t.Fatalf("read %d packets, err %v; want all 3 and no error", n, in.Err)
	}
	want := "reading long.pcap: packet 2 at byte 100: record of 100 bytes is longer than the file's snap length 64 (read anyway)"
	if in.Anomalies != 1 || in.FirstAnomaly == nil || in.FirstAnomaly.Error() != want {
		t.Errorf("anomalies %d, first %v; want 1, %q", in.Anomalies, in.FirstAnomaly, want)
	}
}

// A timestamp far from its neighbours is reported, and the packet still read.
func TestTimestampLeap(t *testing.T) {
	const year = 365 * 24 * 3600
	f := newPcapFile(le, false, 65535, 1).add(1000, 0, make([]byte, 60), 60).add(1000+50*year, 0, make([]byte, 60), 60).add(1001, 0, make([]byte, 60), 60)
	src, err := NewReader(bytes.NewReader(f.buf), "leap.pcap")
	if err != nil {
		t.Fatal(err)
	}
	var p Packet
	n := 0
	for src.Next(&p) == nil {
		n++
	}
	in := src.Info()
	if n != 3 || in.Err != nil || in.Anomalies != 2 {
		t.Fatalf("read %d packets, err %v, %d anomalies; want 3, none, 2 (the leap there and back)", n, in.Err, in.Anomalies)
	}
	if want := "reading leap.pcap: packet 2 at byte 100: timestamp 2019-12-20T00:16:40Z jumps by 438000h0m0s from the previous packet's (read anyway)"; in.FirstAnomaly.Error() != want {
		t.Errorf("got %q\nwant %q", in.FirstAnomaly.Error(), want)
	}
}
