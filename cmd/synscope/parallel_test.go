package main

// The parallel reader (pumpParallel: chunks of one pcap file found, decoded
// and booked out of order, tracked in order) must give exactly what the
// sequential reader gives: the same report, the same warnings and damage
// messages (packet numbers, byte offsets), the same exit status.

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/synscope/synscope/analyze"
	"github.com/synscope/synscope/capture"
	"github.com/synscope/synscope/internal/benchgen"
)

type readRun struct {
	code           int
	stdout, stderr []byte
	stats          parallelStats
}

// readWith runs synscope read with $SYNSCOPE_PARALLEL set to mode ("0": the
// sequential reader; a number: the parallel one with chunks of that size).
func readWith(t *testing.T, mode string, args ...string) readRun {
	t.Helper()
	t.Setenv(capture.ParallelEnv, mode)
	lastParallel = parallelStats{}
	var out, errb bytes.Buffer
	code := runMain(context.Background(), append([]string{"read", "--attempts", "--timelines", "--format", "json"}, args...), nil, &out, &errb)
	return readRun{code, out.Bytes(), errb.Bytes(), lastParallel}
}

// sameAsSequential reads path with both readers, in parallel with each
// chunk size, and fails on any difference. It returns the parallel runs.
// extra are flags, or a filter after a "--".
func sameAsSequential(t *testing.T, path string, chunks []int, extra ...string) []readRun {
	t.Helper()
	args := append(append([]string(nil), extra...), path)
	for i, a := range extra {
		if a == "--" {
			args = append(append(append([]string(nil), extra[:i]...), path), extra[i+1:]...)
			break
		}
	}
	seq := readWith(t, "0", args...)
	if seq.stats.chunks != 0 {
		t.Fatalf("%s: SYNSCOPE_PARALLEL=0 still read in parallel", path)
	}
	var runs []readRun
	for _, c := range chunks {
		mode := strconv.Itoa(c)
		if c == 0 {
			mode = "" // the size the reader picks (capture.Chunks.chunkSize)
		}
		par := readWith(t, mode, args...)
		if par.code != seq.code || !bytes.Equal(par.stderr, seq.stderr) {
			t.Errorf("%s, chunks of %d: exit %d, stderr:\n%s\nsequential: exit %d, stderr:\n%s", path, c, par.code, par.stderr, seq.code, seq.stderr)
		}
		if !bytes.Equal(par.stdout, seq.stdout) {
			t.Errorf("%s, chunks of %d: the report differs from the sequential reader's:\n%s", path, c, firstDiff(seq.stdout, par.stdout))
		}
		runs = append(runs, par)
	}
	return runs
}

// TestParallelMatchesSequential: every capture in testdata/pcaps and in the
// shared corpus (when present), in chunks from smaller than a record to
// larger than the file.
func TestParallelMatchesSequential(t *testing.T) {
	// The shared corpus sits beside the repository (see corpusDir).
	corpus, _ := filepath.Abs(filepath.Join("..", "..", "..", "shared", "corpus", "pcaps"))
	t.Chdir(filepath.Join("..", ".."))
	files := captures(t)
	if m, _ := filepath.Glob(filepath.Join(corpus, "*")); len(m) > 0 {
		files = append(files, m...)
	} else {
		t.Logf("no shared corpus at %s: testdata/pcaps only", corpus)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			sameAsSequential(t, path, []int{16, 100, 1000, 64 << 10})
		})
	}
}

// writeGen writes a benchgen capture into dir.
func writeGen(t *testing.T, dir string, cfg benchgen.Config) (string, []byte) {
	t.Helper()
	var b bytes.Buffer
	if _, err := benchgen.Write(&b, cfg); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, cfg.Name)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, b.Bytes()
}

// recordOffsets lists where each record of a classic little-endian pcap
// file starts.
func recordOffsets(data []byte) []int {
	var offs []int
	for p := 24; p+16 <= len(data); p += 16 + int(binary.LittleEndian.Uint32(data[p+8:])) {
		offs = append(offs, p)
	}
	return offs
}

// TestParallelBenchCaptures: the benchmark's captures scaled down (a web
// server with its planted trouble; a SYN flood that overflows a small
// SYN-only table), intact and damaged in the ways a file gets damaged.
func TestParallelBenchCaptures(t *testing.T) {
	dir := t.TempDir()
	web := benchgen.Web1G()
	web.Name = "web.pcap"
	web.Duration, web.Lead = 90*time.Second, 10*time.Second
	web.ConnRate = 6
	web.DropStart, web.DropLen, web.DropProb = 20*time.Second, 30*time.Second, 0.5
	web.Refused, web.ServerResets, web.Slow, web.SynAckRetx = 3, 3, 4, 4
	flood := benchgen.SynFlood10M()
	flood.Name = "flood.pcap"
	flood.Duration, flood.Lead = 14*time.Second, 2*time.Second
	flood.ConnRate = 3
	flood.DropStart, flood.DropLen = time.Second, 10*time.Second
	flood.FloodSYNs, flood.FloodStart, flood.FloodLen = 60_000, time.Second, 10*time.Second

	webPath, webData := writeGen(t, dir, web)
	floodPath, floodData := writeGen(t, dir, flood)
	t.Logf("web: %d bytes, flood: %d bytes", len(webData), len(floodData))

	for _, tc := range []struct {
		name  string
		path  string
		extra []string
	}{
		{"web", webPath, nil},
		{"web-filtered", webPath, []string{"--", "port", "443"}},
		{"flood", floodPath, []string{"--max-syn-only", "5000"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runs := sameAsSequential(t, tc.path, []int{0, 4096, capture.ChunkSize}, tc.extra...)
			if runs[0].code != exitOK {
				t.Fatalf("exit %d: %s", runs[0].code, runs[0].stderr)
			}
			// An intact file is read in parallel: every chunk the workers
			// found is taken as found.
			for _, r := range runs {
				if r.stats.chunks < 2 || r.stats.redone != 0 || r.stats.committed == 0 {
					t.Errorf("parallel reading did not take the chunks as found: %+v", r.stats)
				}
			}
		})
	}

	// Damage, at a record in the middle of the web capture.
	offs := recordOffsets(webData)
	mid := offs[len(offs)/2]
	damaged := map[string]func(b []byte) []byte{
		"truncated-record": func(b []byte) []byte { return b[:mid+16+10] },
		"truncated-header": func(b []byte) []byte { return b[:mid+7] },
		"huge-caplen": func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[mid+8:], 1<<30)
			return b
		},
		"garbage-inserted": func(b []byte) []byte {
			g := bytes.Repeat([]byte{0x5a, 0, 0, 0}, 300)
			return append(append(append([]byte(nil), b[:mid]...), g...), b[mid:]...)
		},
		"zeros-inserted": func(b []byte) []byte {
			return append(append(append([]byte(nil), b[:mid]...), make([]byte, 5000)...), b[mid:]...)
		},
		"time-leap": func(b []byte) []byte { // a record 40 days late: an anomaly, read anyway
			s := binary.LittleEndian.Uint32(b[mid:])
			binary.LittleEndian.PutUint32(b[mid:], s+40*86400)
			return b
		},
		"time-zero": func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[mid:], 0)
			return b
		},
		"small-snaplen": func(b []byte) []byte { // every longer record is an anomaly
			binary.LittleEndian.PutUint32(b[16:], 200)
			return b
		},
		"trailing-bytes": func(b []byte) []byte { return append(b, 1, 2, 3) },
		"out-of-order": func(b []byte) []byte { // two records swap places
			a, c := offs[len(offs)/3], offs[len(offs)/3+1]
			e := offs[len(offs)/3+2]
			out := append([]byte(nil), b[:a]...)
			out = append(out, b[c:e]...)
			out = append(out, b[a:c]...)
			return append(out, b[e:]...)
		},
	}
	for name, f := range damaged {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".pcap")
			if err := os.WriteFile(path, f(append([]byte(nil), webData...)), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, r := range sameAsSequential(t, path, []int{333, 4096, capture.ChunkSize}) {
				t.Logf("%s: exit %d, %+v", name, r.code, r.stats)
			}
		})
	}

	// Many chunks, read again and again: the result never changes.
	var first []byte
	for i := 0; i < 5; i++ {
		r := readWith(t, fmt.Sprint(2048+i), floodPath, "--max-syn-only", "3000")
		if i == 0 {
			first = r.stdout
		} else if !bytes.Equal(r.stdout, first) {
			t.Fatalf("run %d differs:\n%s", i, firstDiff(first, r.stdout))
		}
	}
}

// TestFileShrinks: a mapped capture cut short while it is read (here,
// after it is opened and before its records are found) faults in the
// workers and then in the sequential reader, or in the sequential reader
// alone; the read ends with an error naming the file and the byte offset
// that was gone, not a crash, and what was read is kept.
func TestFileShrinks(t *testing.T) {
	web := benchgen.Web1G()
	web.Name = "web.pcap"
	web.Duration, web.Lead = 60*time.Second, 10*time.Second
	web.ConnRate = 6
	dir := t.TempDir()
	_, data := writeGen(t, dir, web)
	kept := 3 * os.Getpagesize() // every page after these is gone from the mapping
	if len(data) < 2<<20 {
		t.Fatalf("the capture (%d bytes) is too small to be mapped by default", len(data))
	}
	for _, mode := range []string{"65536", "0"} {
		t.Run("parallel="+mode, func(t *testing.T) {
			path := filepath.Join(dir, "cut-"+mode+".pcap")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Setenv(capture.ParallelEnv, mode)
			src, err := capture.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			if err := os.Truncate(path, int64(kept)); err != nil {
				t.Fatal(err)
			}
			an := analyze.NewAnalyzer(analyze.DefaultConfig(), nil, nil)
			lastParallel = parallelStats{}
			_, err = pump(context.Background(), src, []capture.Source{src}, an, newProgress(io.Discard, []string{path}, src), []int32{0})
			an.Finish()
			want := regexp.MustCompile("^" + regexp.QuoteMeta(path+": the file changed while it was read (truncated?): packet ") +
				`(\d+), at byte offset (\d+), is gone` + regexp.QuoteMeta(fmt.Sprintf(" (the file had %d bytes when opened)", len(data))) + "$")
			m := want.FindStringSubmatch(fmt.Sprint(err))
			if m == nil {
				t.Fatalf("pump: %v\nwant it to match %s", err, want)
			}
			num, _ := strconv.Atoi(m[1])
			off, _ := strconv.Atoi(m[2])
			if off < kept || off >= len(data) {
				t.Errorf("the offset gone is %d, want one past the %d bytes kept", off, kept)
			}
			// The packet named is the one the offset is in, and the
			// packets before it were read.
			offs := append(recordOffsets(data), len(data))
			if num < 1 || num >= len(offs) || off < offs[num-1] || off >= offs[num] {
				t.Errorf("packet %d is gone at byte offset %d: not in it", num, off)
			}
			if n := an.Summary().Packets; n+1 < uint64(num) || n > uint64(num) {
				t.Errorf("%d packets read, packet %d gone", n, num)
			}
			if parallel := lastParallel.chunks > 0; parallel != (mode != "0") {
				t.Errorf("read in parallel: %v (%+v), want %v", parallel, lastParallel, mode != "0")
			}
		})
	}
}
