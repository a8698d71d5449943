package capture

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
)

// inMemory opens a pcap held in b as Open opens a mapped file (on a copy of
// b: unlike a mapping, the window may compact its buffer at a damaged end).
func inMemory(t testing.TB, b []byte) Source {
	t.Helper()
	b = bytes.Clone(b)
	src, err := newFileWindow(window{buf: b, end: len(b), err: io.EOF}, "mem.pcap", nil)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// readChunks reads src as the parallel reader does: workers find the
// chunks' records, groups of them at a time, in any order, and hand them out
// as they find them (each) or after (Records.Next); the chunks are committed
// in order, and read again sequentially where Commit refuses.
func readChunks(t testing.TB, src Source, size, group int, each bool) (pkts []Packet, committed, redone int) {
	t.Helper()
	c := NewChunks(src, size)
	if c == nil {
		t.Fatal("NewChunks refused the source")
	}
	recs := make([]Records, c.Len())
	found := make([][]Packet, c.Len())
	keep := func(p *Packet) Packet {
		q := *p
		q.Data = bytes.Clone(p.Data)
		return q
	}
	var wg sync.WaitGroup
	groups := (c.Len() + group - 1) / group
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for g := groups - 1 - w; g >= 0; g -= 3 { // from the end: out of order
				rs := make([]*Records, min(group, c.Len()-g*group))
				for k := range rs {
					rs[k] = &recs[g*group+k]
				}
				if !each {
					c.Find(g*group, rs, nil)
					continue
				}
				var p Packet
				c.Find(g*group, rs, func(k int, r *Records) {
					for r.Next(&p) {
						found[g*group+k] = append(found[g*group+k], keep(&p))
					}
				})
			}
		}()
	}
	wg.Wait()
	var p Packet
	for i := range recs {
		r := &recs[i]
		_, hi := r.Bounds()
		if c.Offset() >= hi {
			continue
		}
		for r.Next(&p) {
			if each {
				t.Fatalf("chunk %d: Next hands out a record after Find handed them all out", i)
			}
			found[i] = append(found[i], keep(&p))
		}
		if base, ok := c.Commit(r); ok {
			for _, q := range found[i] {
				q.Num += base
				pkts = append(pkts, q)
			}
			committed++
			continue
		}
		redone++
		for c.Offset() < hi {
			if c.Next(&p) != nil {
				return pkts, committed, redone
			}
			pkts = append(pkts, keep(&p))
		}
	}
	return pkts, committed, redone
}

// TestChunksMatchSequential: whatever the chunk size and whatever the damage,
// reading in chunks gives the sequential reader's packets (numbers, offsets,
// data, times) and SourceInfo (counts, times, anomalies, the error).
func TestChunksMatchSequential(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	build := func(o binary.AppendByteOrder, nano bool, snaplen uint32) *pcapFile {
		f := newPcapFile(o, nano, snaplen, 1)
		sec := uint32(1700000000)
		for i := 0; i < 3000; i++ {
			n := 40 + r.IntN(1500)
			if i%97 == 0 {
				n = 9000 // a jumbo frame
			}
			sec += uint32(r.IntN(2))
			f.add(sec, uint32(r.IntN(1000))*1000, frame(n, byte(i)), uint32(n+r.IntN(3)))
		}
		return f
	}
	clean := build(le, false, 65535).buf
	var offs []int
	for p := 24; p < len(clean); p += 16 + int(le.Uint32(clean[p+8:])) {
		offs = append(offs, p)
	}
	mid := offs[len(offs)/2]
	cases := map[string][]byte{
		"clean":         clean,
		"big-endian":    build(be, false, 65535).buf,
		"nanoseconds":   build(le, true, 65535).buf,
		"small-snaplen": build(le, false, 1000).buf,
		"truncated":     clean[:mid+20],
		"huge-caplen": func() []byte {
			b := bytes.Clone(clean)
			le.PutUint32(b[mid+8:], 1<<20)
			return b
		}(),
		"garbage": append(append(bytes.Clone(clean[:mid]), bytes.Repeat([]byte{1, 0, 0, 0}, 500)...), clean[mid:]...),
		"leap": func() []byte {
			b := bytes.Clone(clean)
			le.PutUint32(b[mid:], le.Uint32(b[mid:])+90*86400)
			return b
		}(),
		"header-only": clean[:24],
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			seq, err := NewReader(bytes.NewReader(data), "mem.pcap")
			if err != nil {
				t.Fatal(err)
			}
			want, _ := readAll(seq)
			wantInfo := *seq.Info()
			for _, size := range []int{16, 700, 4096, 100_000, 1 << 22} {
				src := inMemory(t, data)
				got, committed, redone := readChunks(t, src, size, 1+r.IntN(maxGroup+4), r.IntN(2) == 0)
				gotInfo := *src.Info()
				if !reflect.DeepEqual(got, want) {
					t.Errorf("chunks of %d: %d packets differ from the sequential reader's %d", size, len(got), len(want))
				}
				if !reflect.DeepEqual(gotInfo, wantInfo) {
					t.Errorf("chunks of %d: info\n%+v\nwant\n%+v", size, gotInfo, wantInfo)
				}
				if name == "clean" && size >= 4096 && redone > 0 {
					t.Errorf("chunks of %d: %d of %d chunks read again in a clean file", size, redone, committed+redone)
				}
			}
		})
	}
}

// TestChunkSizeFromRecords: a capture of small packets is cut into smaller
// chunks than one of large packets, judged across the file, not by its
// start (a flood after some minutes of web traffic); damage where it
// samples does not stop it.
func TestChunkSizeFromRecords(t *testing.T) {
	build := func(head, rest, n int) []byte {
		f := newPcapFile(le, false, 65535, 1)
		for i := 0; i < n; i++ {
			size := rest
			if i < n/100 {
				size = head // the first 1% of the packets
			}
			f.add(1700000000+uint32(i/1000), uint32(i%1000)*1000, frame(size, byte(i)), uint32(size))
		}
		return f.buf
	}
	small, large := 60, 1400
	garbage := build(small, small, 40000)
	copy(garbage[len(garbage)/2:], bytes.Repeat([]byte{0xff}, 5000))
	for _, c := range []struct {
		name string
		data []byte
		want int
	}{
		{"small packets", build(small, small, 40000), minChunkSize},
		{"large packets", build(large, large, 4000), ChunkSize},
		{"large packets, then a flood", build(large, small, 40000), minChunkSize},
		{"a flood, then large packets", build(small, large, 4000), ChunkSize},
		{"garbage in the middle", garbage, minChunkSize},
		{"one packet", build(large, large, 1), ChunkSize},
	} {
		ch := NewChunks(inMemory(t, c.data), 0)
		if ch == nil {
			t.Fatalf("%s: not read in chunks", c.name)
		}
		if ch.size != c.want {
			t.Errorf("%s: chunks of %d bytes, want %d", c.name, ch.size, c.want)
		}
		if got := NewChunks(inMemory(t, c.data), 700).size; got != 700 {
			t.Errorf("%s: a size asked for (700) gives %d", c.name, got)
		}
	}
}

// TestChunksOnlyForMappedPcap: pcapng, gzip and streams are read
// sequentially.
func TestChunksOnlyForMappedPcap(t *testing.T) {
	f := newPcapFile(le, false, 65535, 1).add(1700000000, 0, frame(60, 1), 60)
	if NewChunks(inMemory(t, f.buf), 0) == nil {
		t.Error("a pcap in memory is not read in chunks")
	}
	s, err := NewReader(bytes.NewReader(f.buf), "stream")
	if err != nil {
		t.Fatal(err)
	}
	if NewChunks(s, 0) != nil {
		t.Error("a stream is read in chunks")
	}
	if NewChunks(inMemory(t, gzipped(t, f.buf)), 0) != nil {
		t.Error("a gzip file is read in chunks")
	}
	ng := newNgFile(le).idb(1, 262144).epb(0, 1700000000e6, frame(60, 1), 60)
	if NewChunks(inMemory(t, ng.buf), 0) != nil {
		t.Error("a pcapng file is read in chunks")
	}
	// A mapped file is, once SYNSCOPE_PARALLEL asks for small files too.
	t.Setenv(ParallelEnv, "4096")
	path := filepath.Join(t.TempDir(), "small.pcap")
	if err := os.WriteFile(path, f.buf, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if NewChunks(m, 0) == nil {
		t.Error("a mapped pcap file is not read in chunks")
	}
}

// BenchmarkReadPcapChunks: finding the records of the benchmark pcap in
// chunks and handing them out (one goroutine; the parallel reader runs it
// on each core).
func BenchmarkReadPcapChunks(b *testing.B) {
	data := benchPcap()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	n := 0
	var p Packet
	rs := make([]*Records, 8)
	for k := range rs {
		rs[k] = new(Records)
	}
	for b.Loop() {
		src, err := newFileWindow(window{buf: data, end: len(data), err: io.EOF}, "bench", nil)
		if err != nil {
			b.Fatal(err)
		}
		c := NewChunks(src, 64<<10)
		for g := 0; g < c.Len(); g += len(rs) {
			c.Find(g, rs, nil)
			for _, r := range rs {
				for r.Next(&p) {
					n++
				}
			}
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "pkts/s")
}
