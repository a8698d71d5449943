package capture

import (
	"bytes"
	"io"
	"sync"
	"testing"

	"github.com/gopacket/gopacket/pcapgo"
)

const benchPackets = 100_000

// benchSizes is a handshake-heavy mix: bare SYNs, ACKs and RSTs, SYNs with
// options, mid-size and full-size segments (average about 560 bytes).
var benchSizes = [...]int{54, 66, 74, 1514, 60, 66, 590, 1514, 54, 1200}

// benchPcap and benchPcapng are the same 100k packets in each format.
var benchPcap = sync.OnceValue(func() []byte {
	f := newPcapFile(le, false, 262144, 1)
	for i := range benchPackets {
		n := benchSizes[i%len(benchSizes)]
		f.add(uint32(1700000000+i/1000), uint32(i%1000)*1000, frame(n, byte(i)), uint32(n))
	}
	return f.buf
})

var benchPcapng = sync.OnceValue(func() []byte {
	f := newNgFile(le).idb(1, 262144)
	for i := range benchPackets {
		n := benchSizes[i%len(benchSizes)]
		f.epb(0, 1700000000e6+uint64(i)*1000, frame(n, byte(i)), uint32(n))
	}
	return f.buf
})

func benchRead(b *testing.B, data []byte) {
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	n := 0
	var p Packet
	for b.Loop() {
		src, err := NewReader(bytes.NewReader(data), "bench")
		if err != nil {
			b.Fatal(err)
		}
		for src.Next(&p) == nil {
			n++
		}
		if err := src.Info().Err; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "pkts/s")
}

// allocs/op below counts a whole file of 100k packets: opening costs a few
// allocations (the 1 MiB buffer among them), a packet none (TestZeroAllocs).
func BenchmarkReadPcap(b *testing.B)   { benchRead(b, benchPcap()) }
func BenchmarkReadPcapng(b *testing.B) { benchRead(b, benchPcapng()) }

// BenchmarkPcapgo reads the same bytes with pcapgo's ZeroCopyReadPacketData,
// the fastest path it has, for the ratio to ours.
func BenchmarkPcapgo(b *testing.B) {
	for _, tc := range []struct {
		name string
		data []byte
		open func(io.Reader) (func() error, error)
	}{
		{"pcap", benchPcap(), func(r io.Reader) (func() error, error) {
			pr, err := pcapgo.NewReader(r)
			if err != nil {
				return nil, err
			}
			return func() error { _, _, err := pr.ZeroCopyReadPacketData(); return err }, nil
		}},
		{"pcapng", benchPcapng(), func(r io.Reader) (func() error, error) {
			nr, err := pcapgo.NewNgReader(r, pcapgo.NgReaderOptions{WantMixedLinkType: true})
			if err != nil {
				return nil, err
			}
			return func() error { _, _, err := nr.ZeroCopyReadPacketData(); return err }, nil
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.data)))
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				next, err := tc.open(bytes.NewReader(tc.data))
				if err != nil {
					b.Fatal(err)
				}
				for next() == nil {
					n++
				}
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "pkts/s")
		})
	}
}

// BenchmarkMerge interleaves four sources of 25k packets each.
func BenchmarkMerge(b *testing.B) {
	files := make([][]byte, 4)
	for s := range files {
		f := newPcapFile(le, false, 262144, 1)
		for i := range benchPackets / 4 {
			n := benchSizes[i%len(benchSizes)]
			f.add(1700000000, uint32(i*4+s), frame(n, byte(i)), uint32(n))
		}
		files[s] = f.buf
	}
	b.ReportAllocs()
	n := 0
	var p Packet
	for b.Loop() {
		srcs := make([]Source, len(files))
		for i, f := range files {
			var err error
			if srcs[i], err = NewReader(bytes.NewReader(f), "bench"); err != nil {
				b.Fatal(err)
			}
		}
		m := Merge(srcs)
		for m.Next(&p) == nil {
			n++
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "pkts/s")
}
