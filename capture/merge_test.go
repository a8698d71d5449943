package capture

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// source opens an in-memory pcap whose records are at the given seconds;
// packet i of source s carries frame(60, s*16+i).
func source(t testing.TB, s int, secs ...uint32) Source {
	f := newPcapFile(le, false, 65535, 1)
	for i, sec := range secs {
		f.add(sec, 0, frame(60, byte(s*16+i)), 60)
	}
	src, err := NewReader(bytes.NewReader(f.buf), "src")
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestMergeOrder(t *testing.T) {
	// Source 2's clock goes back from 4 to 0: its packets still come out in
	// file order, the 0 right after the 4.
	m := Merge([]Source{source(t, 0, 1, 3, 5), source(t, 1, 2, 3, 4), source(t, 2, 4, 0, 6)})
	want := []struct {
		src  int
		num  uint64
		time int64
	}{{0, 1, 1}, {1, 1, 2}, {0, 2, 3}, {1, 2, 3}, {1, 3, 4}, {2, 1, 4}, {2, 2, 0}, {0, 3, 5}, {2, 3, 6}}
	var p Packet
	for i, w := range want {
		if err := m.Next(&p); err != nil {
			t.Fatalf("packet %d: %v", i+1, err)
		}
		if p.Source != w.src || p.Num != w.num || p.Time != w.time*1e9 || !bytes.Equal(p.Data, frame(60, byte(w.src*16+int(w.num)-1))) {
			t.Errorf("packet %d: got source %d num %d time %d, want %d %d %d", i+1, p.Source, p.Num, p.Time, w.src, w.num, w.time*1e9)
		}
	}
	if err := m.Next(&p); err != io.EOF {
		t.Errorf("after the last packet: %v, want io.EOF", err)
	}
	infos := m.(*Merger).Infos()
	if len(infos) != 3 || infos[0].Packets != 3 || infos[2].First != 0 || infos[2].Last != 6e9 {
		t.Errorf("infos: %+v", infos)
	}
	if sum := m.Info(); sum.Packets != 9 || sum.First != 0 || sum.Last != 6e9 || sum.Format != "pcap" || sum.Err != nil {
		t.Errorf("merged info: %+v", *sum)
	}
}

// A source that turns out damaged drops out; the others go on, and the error
// stays in the damaged source's Info.
func TestMergeSourceFails(t *testing.T) {
	good := source(t, 0, 1, 2, 3, 4)
	f := newPcapFile(le, false, 65535, 1).add(1, 5, frame(60, 16), 60).add(2, 5, frame(60, 17), 60)
	bad, err := NewReader(bytes.NewReader(f.buf[:len(f.buf)-10]), "bad.pcap")
	if err != nil {
		t.Fatal(err)
	}
	m := Merge([]Source{good, bad})
	var p Packet
	n := 0
	for m.Next(&p) == nil {
		n++
	}
	if n != 5 {
		t.Errorf("merged %d packets, want the good source's 4 and the damaged one's first", n)
	}
	infos := m.(*Merger).Infos()
	if infos[0].Err != nil || !IsFormatError(infos[1].Err) {
		t.Errorf("errors: good %v, bad %v", infos[0].Err, infos[1].Err)
	}
	if err := m.Info().Err; !errors.Is(err, infos[1].Err) {
		t.Errorf("merged Info().Err = %v, want it to carry the damaged source's error", err)
	}
	if err := m.Next(&p); err != io.EOF {
		t.Errorf("Next after the end: %v", err)
	}
}

func TestMergeNothing(t *testing.T) {
	var p Packet
	if err := Merge(nil).Next(&p); err != io.EOF {
		t.Errorf("empty merge: %v, want io.EOF", err)
	}
}

// Sources bigger than the read buffer refill while another source's packet
// is pending or handed out: every packet must still hold its own bytes
// without a copy, and a merge step costs no allocation.
func TestMergeBuffers(t *testing.T) {
	var srcs []Source
	per := 3 * bufSize / 1514
	for s := range 2 {
		f := newPcapFile(le, false, 65535, 1)
		for i := range per {
			f.add(uint32(i), uint32(s), frame(1500, byte(i+s)), 1500)
		}
		src, err := NewReader(bytes.NewReader(f.buf), "big")
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, src)
	}
	m := Merge(srcs)
	var p Packet
	n := 0
	check := func() {
		if err := m.Next(&p); err != nil {
			t.Fatal(err)
		}
		if p.Time != int64(n/2)*1e9+int64(n%2)*1e3 || !bytes.Equal(p.Data, frame(1500, byte(int(p.Num)-1+p.Source))) {
			t.Fatalf("merged packet %d: source %d num %d time %d, or wrong bytes", n+1, p.Source, p.Num, p.Time)
		}
		n++
	}
	for range per { // both sources' buffers grow to full size in their first MiB
		check()
	}
	if allocs := testing.AllocsPerRun(per/2, check); allocs != 0 {
		t.Errorf("%v allocations per merged packet, want 0", allocs)
	}
}
