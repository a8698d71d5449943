package capture

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readAll reads a capture whole, copying each packet.
func extractReadAll(t *testing.T, path string) []Packet {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out []Packet
	for {
		var p Packet
		if err := s.Next(&p); err != nil {
			if err != io.EOF {
				t.Fatal(err)
			}
			return out
		}
		p.Data = bytes.Clone(p.Data)
		out = append(out, p)
	}
}

type extracted struct {
	src  int
	num  uint64
	data []byte
	time int64
	orig int
	lt   uint16
}

func extractAll(paths []string, want map[int]map[uint64]bool) ([]extracted, error) {
	var out []extracted
	err := Extract(paths, want, func(p *Packet) error {
		out = append(out, extracted{p.Source, p.Num, bytes.Clone(p.Data), p.Time, p.OrigLen, p.LinkType})
		return nil
	})
	return out, err
}

func TestExtract(t *testing.T) {
	paths := []string{
		"../testdata/pcaps/answered-after-retransmit.pcap",
		"../testdata/pcaps/unanswered.pcap",
		"../testdata/pcaps/established-fin.pcap.gz",
		"../testdata/pcaps/multi-interface.pcapng",
	}
	all := make([][]Packet, len(paths))
	for i, p := range paths {
		all[i] = extractReadAll(t, p)
	}
	want := map[int]map[uint64]bool{
		0: {2: true, 4: true, 7: true},
		1: {1: true},
		2: {3: true, 1: true},
		3: {uint64(len(all[3])): true, 2: true},
		// Source 4 does not exist but wants nothing: ignored.
		4: {},
	}
	out, err := extractAll(paths, want)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range want {
		n += len(m)
	}
	if len(out) != n {
		t.Fatalf("got %d packets, want %d", len(out), n)
	}
	for i, g := range out {
		if i > 0 && (g.src < out[i-1].src || g.src == out[i-1].src && g.num <= out[i-1].num) {
			t.Errorf("packet %d (source %d, %d) out of order", i, g.src, g.num)
		}
		if !want[g.src][g.num] {
			t.Errorf("unwanted packet: source %d, %d", g.src, g.num)
			continue
		}
		r := all[g.src][g.num-1]
		if !bytes.Equal(g.data, r.Data) || g.time != r.Time || g.orig != r.OrigLen || g.lt != r.LinkType {
			t.Errorf("source %d packet %d differs from a plain read", g.src, g.num)
		}
	}
}

// TestExtractStopsEarly: a source is read only up to its last wanted packet,
// so damage after it is never reached.
func TestExtractStopsEarly(t *testing.T) {
	src, err := os.ReadFile("../testdata/pcaps/answered-after-retransmit.pcap")
	if err != nil {
		t.Fatal(err)
	}
	pkts := extractReadAll(t, "../testdata/pcaps/answered-after-retransmit.pcap")
	// Cut the file in the middle of packet 5's record.
	cut := pkts[4].Offset + 20
	path := filepath.Join(t.TempDir(), "cut.pcap")
	if err := os.WriteFile(path, src[:cut], 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := extractAll([]string{path}, map[int]map[uint64]bool{0: {1: true, 4: true}})
	if err != nil || len(out) != 2 {
		t.Fatalf("got %d packets, err %v; want 2, nil", len(out), err)
	}
	// Wanting packet 5 reaches the damage: the error names the file.
	out, err = extractAll([]string{path}, map[int]map[uint64]bool{0: {1: true, 5: true}})
	if err == nil || !strings.Contains(err.Error(), path) || !IsFormatError(err) || len(out) != 1 {
		t.Fatalf("got %d packets, err %v; want 1 and a format error naming %s", len(out), err, path)
	}
}

func TestExtractErrors(t *testing.T) {
	good := "../testdata/pcaps/answered-after-retransmit.pcap"
	n := uint64(len(extractReadAll(t, good)))
	// A packet past the end: the other sources are still read.
	out, err := extractAll([]string{good, "-", "/nonexistent/x.pcap", good},
		map[int]map[uint64]bool{0: {n + 5: true, 1: true}, 1: {1: true}, 2: {1: true}, 3: {2: true}, 7: {1: true}})
	if err == nil {
		t.Fatal("no error")
	}
	for _, s := range []string{"the file ends at packet", "stdin cannot be read again", "/nonexistent/x.pcap", "no source 7"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
	if len(out) != 2 || out[0].num != 1 || out[1].src != 3 || out[1].num != 2 {
		t.Errorf("got %+v, want source 0 packet 1 and source 3 packet 2", out)
	}
	// An error from fn stops everything and comes back as it is.
	stop := errors.New("disk full")
	calls := 0
	err = Extract([]string{good, good}, map[int]map[uint64]bool{0: {1: true, 2: true}, 1: {1: true}}, func(*Packet) error {
		calls++
		return stop
	})
	if err != stop || calls != 1 {
		t.Errorf("got %v after %d calls, want the callback's error after 1", err, calls)
	}
}

func TestSpool(t *testing.T) {
	orig := "../testdata/pcaps/established-fin.pcap.gz"
	b, err := os.ReadFile(orig)
	if err != nil {
		t.Fatal(err)
	}
	path, cleanup, err := Spool(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	a, c := extractReadAll(t, orig), extractReadAll(t, path)
	if len(a) != len(c) || len(a) == 0 {
		t.Fatalf("spooled %d packets, want %d", len(c), len(a))
	}
	out, err := extractAll([]string{path}, map[int]map[uint64]bool{0: {2: true}})
	if err != nil || len(out) != 1 || !bytes.Equal(out[0].data, a[1].Data) {
		t.Fatalf("extract from the spool: %v", err)
	}
	cleanup()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("spool file left behind: %v", err)
	}
	// A failing reader leaves nothing behind.
	_, _, err = Spool(io.MultiReader(bytes.NewReader(b[:10]), spoolErrReader{}))
	if err == nil || !strings.Contains(err.Error(), "spooling stdin") {
		t.Errorf("got %v, want a spooling error", err)
	}
}

type spoolErrReader struct{}

func (spoolErrReader) Read([]byte) (int, error) { return 0, errors.New("broken pipe") }
