package capture

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

type readResult struct {
	times []int64
	sums  []int
	err   string
}

func readMapped(t *testing.T, s Source) readResult {
	t.Helper()
	var r readResult
	var p Packet
	for s.Next(&p) == nil {
		sum := 0
		for _, b := range p.Data {
			sum += int(b)
		}
		r.times = append(r.times, p.Time)
		r.sums = append(r.sums, sum+p.OrigLen)
	}
	if e := s.Info().Err; e != nil {
		r.err = e.Error()
	}
	return r
}

// TestMappedMatchesRead: a file large enough to be memory-mapped gives the
// same packets, and the same damage report, as reading it through a stream.
func TestMappedMatchesRead(t *testing.T) {
	f := newPcapFile(le, false, 65535, 1)
	for i := 0; i < 3000; i++ {
		d := bytes.Repeat([]byte{byte(i)}, 200+i%1200)
		f.add(uint32(i), 0, d, uint32(len(d)))
	}
	if len(f.buf) < 2*mmapMin {
		t.Fatalf("test file of %d bytes is too small to be mapped", len(f.buf))
	}
	for _, cut := range []int{0, 7} {
		data := f.buf[:len(f.buf)-cut]
		path := filepath.Join(t.TempDir(), "big.pcap")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := m.(*pcapReader).closer.(*mapped); !ok {
			t.Fatalf("%s was not memory-mapped", path)
		}
		got := readMapped(t, m)
		m.Close()
		s, err := NewReader(bytes.NewReader(data), path)
		if err != nil {
			t.Fatal(err)
		}
		want := readMapped(t, s)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("cut %d: mapped read differs: %d packets, err %q; streamed %d packets, err %q", cut, len(got.times), got.err, len(want.times), want.err)
		}
		if cut > 0 && got.err == "" {
			t.Errorf("cut %d: no error for the truncated record", cut)
		}
	}
}
