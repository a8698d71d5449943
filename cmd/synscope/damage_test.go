package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/synscope/synscope/report"
)

// TestDamagedInput: every kind of damage gives an error naming the file,
// packet number and byte offset, exit status 1, and the report of what was
// read before it; never a panic.
func TestDamagedInput(t *testing.T) {
	good, err := os.ReadFile(filepath.Join("..", "..", "testdata", "pcaps", "established-fin.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	// Records of the good file: offsets of each record header.
	var offs []int
	for off := 24; off+16 <= len(good); {
		offs = append(offs, off)
		off += 16 + int(binary.LittleEndian.Uint32(good[off+8:]))
	}
	if len(offs) < 4 {
		t.Fatalf("established-fin.pcap has %d records", len(offs))
	}
	longRec := append([]byte(nil), good...)
	binary.LittleEndian.PutUint32(longRec[16:], 60) // snaplen 60: later records are longer

	dir := t.TempDir()
	cases := []struct {
		name    string
		data    []byte
		packets uint64 // packets the report must cover
		msg     string // stderr must contain it, with %s for the path
	}{
		{"empty", nil, 0, "reading %s: at byte 0: empty file"},
		{"garbage", []byte("this is not a capture file at all, just text"), 0, "reading %s: at byte 0: not a pcap or pcapng file (magic 0x74686973)"},
		{"wrong-magic", append([]byte{0xd4, 0xc3, 0xb2, 0xa0}, good[4:]...), 0, "reading %s: at byte 0: not a pcap or pcapng file (magic 0xd4c3b2a0)"},
		{"truncated-header", good[:offs[3]+10], 3, "reading %s: packet 4 at byte " + strconv.Itoa(offs[3]) + ": truncated record header: only 10 of 16 bytes left"},
		{"truncated-data", good[:offs[3]+20], 3, "reading %s: packet 4 at byte " + strconv.Itoa(offs[3]) + ": truncated record: header says"},
		{"beyond-snaplen", longRec, uint64(len(offs)), "reading %s: packet 1 at byte 24: record of"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, c.name+".pcap")
			if err := os.WriteFile(path, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			code := runMain(context.Background(), []string{"read", "--format", "json", path}, nil, &out, &errb)
			if code != exitDamaged {
				t.Errorf("exit %d, want %d", code, exitDamaged)
			}
			want := strings.Replace(c.msg, "%s", path, 1)
			if !strings.Contains(errb.String(), want) {
				t.Errorf("stderr %q\nwant it to contain %q", errb.String(), want)
			}
			rep, err := report.ReadJSON(&out)
			if err != nil {
				t.Fatalf("no report on stdout: %v", err)
			}
			if rep.Summary.Packets != c.packets {
				t.Errorf("report covers %d packets, want %d", rep.Summary.Packets, c.packets)
			}
			if len(rep.Sources) != 1 || (rep.Sources[0].Error == "" && rep.Sources[0].FirstAnomaly == "") {
				t.Errorf("the report does not mark the source damaged: %+v", rep.Sources)
			}
		})
	}

	// One damaged file does not stop the others.
	t.Run("one-of-two", func(t *testing.T) {
		bad := filepath.Join(dir, "cut.pcap")
		if err := os.WriteFile(bad, good[:offs[2]+3], 0o644); err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		code := runMain(context.Background(), []string{"read", "--format", "json", bad, filepath.Join("..", "..", "testdata", "pcaps", "refused-rst.pcap")}, nil, &out, &errb)
		rep, err := report.ReadJSON(&out)
		if code != exitDamaged || err != nil {
			t.Fatalf("exit %d, report error %v", code, err)
		}
		if rep.Sources[0].Packets != 2 || rep.Sources[1].Error != "" || rep.Sources[1].Packets == 0 {
			t.Errorf("sources %+v", rep.Sources)
		}
	})
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"read"},
		{"read", "missing-file.pcap"},
		{"read", "--format", "xml", "x"},
		{"frobnicate"},
	} {
		var out, errb bytes.Buffer
		if code := runMain(context.Background(), args, nil, &out, &errb); code != exitUsage {
			t.Errorf("%v: exit %d, want %d (stderr %q)", args, code, exitUsage, errb.String())
		}
	}
	var out, errb bytes.Buffer
	good := filepath.Join("..", "..", "testdata", "pcaps", "refused-rst.pcap")
	if code := runMain(context.Background(), []string{"read", good, "port", "80", "and", "ether", "host", "x"}, nil, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), "ether") {
		t.Errorf("bad filter: exit %d, stderr %q", code, errb.String())
	}
}

// An unsupported link type is named on stderr; the rest is still analysed.
func TestUnsupportedLinkType(t *testing.T) {
	good := filepath.Join("..", "..", "testdata", "pcaps", "refused-rst.pcap")
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	odd := append([]byte(nil), data...)
	binary.LittleEndian.PutUint32(odd[20:], 147) // LINKTYPE_USER0
	path := filepath.Join(t.TempDir(), "user0.pcap")
	if err := os.WriteFile(path, odd, 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := runMain(context.Background(), []string{"read", "--format", "json", path, good}, nil, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "link type LINKTYPE_147 (147) is not decoded") {
		t.Errorf("stderr %q does not name the link type", errb.String())
	}
	rep, err := report.ReadJSON(&out)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Summary.Attempts != 1 || rep.Summary.Unsupported == 0 {
		t.Errorf("attempts %d, unsupported packets %d: want the good file analysed and the other counted", rep.Summary.Attempts, rep.Summary.Unsupported)
	}
}

// "-" reads the capture from standard input.
func TestReadStdin(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "..", "testdata", "pcaps", "established-fin.pcap.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out, errb bytes.Buffer
	if code := runMain(context.Background(), []string{"read", "--format", "json", "-"}, f, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	rep, err := report.ReadJSON(&out)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Summary.Outcomes.Established != 1 || !rep.Sources[0].Compressed || rep.Sources[0].Path != "-" {
		t.Errorf("summary %+v sources %+v", rep.Summary.Outcomes, rep.Sources)
	}
}

// Ctrl-C while stdin is stalled (the writer neither writes nor closes) ends
// the run with the report of what was read, instead of hanging.
func TestStalledStdinInterrupt(t *testing.T) {
	good, err := os.ReadFile(filepath.Join("..", "..", "testdata", "pcaps", "established-fin.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		pw.Write(good) // then stall: never close
		cancel()       // the user presses Ctrl-C
	}()
	var out, errb bytes.Buffer
	code := runMain(ctx, []string{"read", "--format", "json", "-"}, pr, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "interrupted") {
		t.Errorf("stderr %q does not say the run was interrupted", errb.String())
	}
	if _, err := report.ReadJSON(&out); err != nil {
		t.Fatalf("no report after the interruption: %v", err)
	}
}
