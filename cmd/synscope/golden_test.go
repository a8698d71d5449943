package main

// Golden tests: every capture in testdata/pcaps has its report in every
// format (text, JSON, Markdown, HTML) under testdata/golden. `go test ./cmd/synscope -run Golden -update`
// rewrites them; review the diff. EXPECT.tsv states, independently of the
// goldens, what a correct analyser must say about each crafted attempt.

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/synscope/synscope/report"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func captures(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, pat := range []string{"*.pcap", "*.pcapng", "*.pcap.gz"} {
		m, err := filepath.Glob(filepath.Join("testdata", "pcaps", pat))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m...)
	}
	if len(out) == 0 {
		t.Fatal("no captures in testdata/pcaps")
	}
	return out
}

func runCapture(t *testing.T, args ...string) []byte {
	t.Helper()
	var out, errb bytes.Buffer
	code := runMain(context.Background(), append([]string{"read"}, args...), nil, &out, &errb)
	if code != exitOK {
		t.Fatalf("synscope read %v: exit %d: %s", args, code, errb.String())
	}
	return out.Bytes()
}

func TestGolden(t *testing.T) {
	t.Chdir(filepath.Join("..", ".."))
	for _, path := range captures(t) {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			for _, f := range []struct{ ext, format string }{{".txt", "text"}, {".json", "json"}, {".md", "markdown"}, {".html", "html"}} {
				got := runCapture(t, "--attempts", "--format", f.format, path)
				golden := filepath.Join("testdata", "golden", name+f.ext)
				if *update {
					if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(golden, got, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run with -update to create it)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs from the golden file; run `go test ./cmd/synscope -run Golden -update` and review the diff.\n%s", golden, firstDiff(want, got))
				}
			}
		})
	}
}

// firstDiff shows the first differing line.
func firstDiff(want, got []byte) string {
	w, g := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return "line " + strconv.Itoa(i+1) + ":\n  want: " + a + "\n  got:  " + b
		}
	}
	return ""
}

// TestExpectations checks each crafted attempt against EXPECT.tsv.
func TestExpectations(t *testing.T) {
	t.Chdir(filepath.Join("..", ".."))
	var rows []map[string]string
	for _, name := range []string{"EXPECT.tsv", "lab-EXPECT.tsv"} { // crafted, and recorded in the lab
		r := readTSV(t, filepath.Join("testdata", "pcaps", name))
		if len(r) == 0 {
			t.Fatalf("%s is empty", name)
		}
		rows = append(rows, r...)
	}
	reports := map[string]*report.Report{}
	used := map[*report.Attempt]bool{}
	for _, row := range rows {
		file := row["file"]
		if file == "" || strings.HasPrefix(file, "#") {
			continue
		}
		rep := reports[file]
		if rep == nil {
			rep = analyse(t, filepath.Join("testdata", "pcaps", file))
			reports[file] = rep
		}
		id := file + " " + row["client"] + " -> " + row["server"] + " isn " + row["isn"]
		var match *report.Attempt
		for i := range rep.Attempts {
			a := &rep.Attempts[i]
			if !used[a] && a.Client == row["client"] && a.Server == row["server"] &&
				(row["isn"] == "-" || row["isn"] == "" || strconv.FormatUint(uint64(a.ISN), 10) == row["isn"]) &&
				(row["vlan"] == "" || row["vlan"] == vlanString(a.VLAN)) {
				match = a // rows for one 4-tuple come in time order, as the attempts do
				break
			}
		}
		if match == nil {
			t.Errorf("%s: no such attempt", id)
			continue
		}
		used[match] = true
		check := func(field, got string) {
			if want, ok := row[field]; ok && want != "" && want != "-" && want != got {
				t.Errorf("%s: %s = %s, want %s (%s)", id, field, got, want, row["note"])
			}
		}
		check("outcome", match.Outcome)
		check("syns", strconv.Itoa(match.Syns))
		check("synacks", strconv.Itoa(match.Synacks))
		check("close", match.Close)
		check("closed_by", match.ClosedBy)
	}
}

func vlanString(v []uint16) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(int(x))
	}
	return strings.Join(s, ".")
}

// Packet numbers in a report are Wireshark's frame numbers, also in a pcapng
// whose kernel evidence blocks Wireshark shows as frames of their own: the
// packet a timeline names is, in tshark, the frame with its time and flags.
func TestPacketNumbersAreWiresharkFrames(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("tshark not installed (make deps installs it)")
	}
	t.Chdir(filepath.Join("..", ".."))
	m, _ := filepath.Glob(filepath.Join("testdata", "pcaps", "lab-kernel-*.pcapng"))
	if len(m) == 0 {
		t.Fatal("no lab-kernel captures")
	}
	for _, path := range m {
		out, err := exec.Command("tshark", "-r", path, "-T", "fields", "-e", "frame.number", "-e", "frame.time_epoch", "-e", "tcp.flags").Output()
		if err != nil {
			t.Fatalf("tshark %s: %v", path, err)
		}
		frames := map[uint64][2]string{} // time, flags
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			f := strings.Split(line, "\t")
			if len(f) < 3 || f[1] == "" {
				continue // a custom block: no time
			}
			n, _ := strconv.ParseUint(f[0], 10, 64)
			frames[n] = [2]string{f[1], f[2]}
		}
		var r struct {
			Attempts []struct {
				Timeline []struct {
					Time   time.Time `json:"time"`
					Packet struct {
						Packet uint64 `json:"packet"`
					} `json:"packet"`
				} `json:"timeline"`
			} `json:"attempts"`
		}
		if err := json.Unmarshal(runCapture(t, "--attempts", "--timelines", "--format", "json", path), &r); err != nil {
			t.Fatal(err)
		}
		checked := 0
		for _, a := range r.Attempts {
			for _, ev := range a.Timeline {
				fr, ok := frames[ev.Packet.Packet]
				if !ok {
					t.Fatalf("%s: packet %d is not a packet frame in tshark", path, ev.Packet.Packet)
				}
				sec, _ := strconv.ParseFloat(fr[0], 64)
				if d := sec - float64(ev.Time.UnixNano())/1e9; d > 1e-6 || d < -1e-6 {
					t.Fatalf("%s: packet %d at %v, tshark's frame at %s", path, ev.Packet.Packet, ev.Time, fr[0])
				}
				checked++
			}
		}
		if checked == 0 {
			t.Fatalf("%s: no timeline packets", path)
		}
	}
}
