package report

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/synscope/synscope/capture"
)

var bundleSources = []string{
	"../testdata/pcaps/rst-after-handshake.pcap",
	"../testdata/pcaps/answered-after-retransmit.pcap",
	"../testdata/pcaps/refused-icmp.pcap",
}

func bundleEv(src int, num uint64, note, dir, flags string, n uint32, offMs float64) Event {
	return Event{OffsetMs: offMs, Dir: dir, Flags: flags, Len: n, Note: note, Packet: PacketRef{Source: src, Packet: num}}
}

// bundleReport is a report of the three captures, as synscope writes it (the
// packet numbers are those of the real analysis), built by hand.
func bundleReport() *Report {
	two := 2
	return &Report{
		Schema: Schema, Generator: "synscope test",
		Sources: []Source{{Path: bundleSources[0], Format: "pcap"}, {Path: bundleSources[1], Format: "pcap"}, {Path: bundleSources[2], Format: "pcap"}},
		Incidents: []Incident{
			{ID: 1, Kind: "reset", Severity: "warning", Server: "192.0.2.10:80", Attempts: 4,
				Title:    "4 connections to 192.0.2.10:80 reset after the handshake",
				Evidence: []string{"resets from 198.51.100.54 and 198.51.100.55"},
				Samples: []Attempt{
					{ID: 2, Client: "198.51.100.54:49501", Server: "192.0.2.10:80", Syns: 1, Synacks: 1, Outcome: "established",
						Close: "rst", ClosedBy: "server", ClosePhase: "after_request", Timeline: []Event{
							bundleEv(0, 5, "SYN", "client", "S", 0, 0), bundleEv(0, 6, "SYN-ACK", "server", "S.", 0, 0.1),
							bundleEv(0, 7, "handshake ACK", "client", ".", 0, 0.2), bundleEv(0, 8, "first data", "client", "P.", 77, 0.3),
							bundleEv(0, 9, "RST", "server", "R.", 0, 0.4)}},
					{ID: 3, Client: "198.51.100.55:49502", Server: "192.0.2.10:80", Syns: 1, Synacks: 1, Outcome: "established",
						Close: "rst", ClosedBy: "client", ClosePhase: "after_response", Timeline: []Event{
							bundleEv(0, 10, "SYN", "client", "S", 0, 0), bundleEv(0, 11, "SYN-ACK", "server", "S.", 0, 0.1),
							bundleEv(0, 12, "handshake ACK", "client", ".", 0, 0.2), bundleEv(0, 13, "first data", "client", "P.", 72, 0.3),
							bundleEv(0, 14, "first data", "server", "P.", 366, 0.4), bundleEv(0, 16, "RST", "client", "R.", 0, 0.5)}},
				}},
			{ID: 2, Kind: "syn_retransmit", Severity: "warning", Server: "192.0.2.10:80", Attempts: 1,
				Title: "1 connection to 192.0.2.10:80 succeeded only after the client retransmitted its SYN",
				Samples: []Attempt{{ID: 1, Client: "198.51.100.21:50312", Server: "192.0.2.10:80", Syns: 3, Synacks: 1, AnsweredSyn: &two,
					Outcome: "answered_after_retransmit", Close: "fin", ClosedBy: "client", ClosePhase: "after_response", Timeline: []Event{
						bundleEv(1, 1, "SYN", "client", "S", 0, 0), bundleEv(1, 2, "SYN retransmission", "client", "S", 0, 1000),
						bundleEv(1, 3, "SYN retransmission", "client", "S", 0, 3000), bundleEv(1, 4, "SYN-ACK", "server", "S.", 0, 3000.04),
						bundleEv(1, 5, "handshake ACK", "client", ".", 0, 3025.04), bundleEv(1, 6, "first data", "client", "P.", 72, 3025.06),
						bundleEv(1, 7, "first data", "server", "P.", 366, 3025.36), bundleEv(1, 9, "FIN", "client", "F.", 0, 3052.36),
						bundleEv(1, 10, "FIN", "server", "F.", 0, 3052.4)}}}},
			{ID: 3, Kind: "refused", Severity: "critical", Server: "192.0.2.10:8443", Attempts: 1,
				Title: "1 connection to 192.0.2.10:8443 refused",
				Samples: []Attempt{{ID: 1, Client: "198.51.100.25:42001", Server: "192.0.2.10:8443", Syns: 1, Outcome: "refused",
					RefusedBy: "icmp", ICMP: &ICMP{Type: 3, Code: 3, From: "192.0.2.10"}, Timeline: []Event{
						bundleEv(2, 1, "SYN", "client", "S", 0, 0), bundleEv(2, 2, "ICMP unreachable", "server", "icmp 3/3", 0, 0.5)}}}},
		},
		Attempts: []Attempt{},
	}
}

func bundleExtract(paths []string) ExtractFunc {
	return func(want map[int]map[uint64]bool, fn func(*RawPacket) error) error {
		return capture.Extract(paths, want, func(p *capture.Packet) error {
			return fn(&RawPacket{Source: p.Source, Num: p.Num, LinkType: p.LinkType, Time: p.Time, Data: p.Data, OrigLen: p.OrigLen})
		})
	}
}

// bundleOriginals reads every packet of the test sources.
func bundleOriginals(t *testing.T) [][]capture.Packet {
	t.Helper()
	out := make([][]capture.Packet, len(bundleSources))
	for i, path := range bundleSources {
		s, err := capture.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		for {
			var p capture.Packet
			if err := s.Next(&p); err != nil {
				if err != io.EOF {
					t.Fatal(err)
				}
				break
			}
			p.Data = bytes.Clone(p.Data)
			out[i] = append(out[i], p)
		}
		s.Close()
	}
	return out
}

type bundleRead struct {
	section  string
	links    []layers.LinkType
	data     [][]byte
	ci       []gopacket.CaptureInfo
	comments [][]string
}

func readBundlePcapng(t *testing.T, path string) *bundleRead {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewNgReader(f, pcapgo.NgReaderOptions{WantMixedLinkType: true})
	if err != nil {
		t.Fatal(err)
	}
	out := &bundleRead{section: r.SectionInfo().Comment}
	for {
		data, ci, opts, err := r.ReadPacketDataWithOptions()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out.data = append(out.data, data)
		out.ci = append(out.ci, ci)
		out.comments = append(out.comments, opts.Comments)
	}
	for i := 0; i < r.NInterfaces(); i++ {
		in, _ := r.Interface(i)
		out.links = append(out.links, in.LinkType)
	}
	return out
}

// bundleHeaderEnd is where the TCP header of a frame ends, per gopacket.
func bundleHeaderEnd(t *testing.T, frame []byte) int {
	t.Helper()
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	n := 0
	for _, l := range p.Layers() {
		n += len(l.LayerContents())
		if l.LayerType() == layers.LayerTypeTCP {
			return n
		}
	}
	return len(frame)
}

func TestWriteBundle(t *testing.T) {
	orig := bundleOriginals(t)
	r := bundleReport()
	dir := filepath.Join(t.TempDir(), "bundle")
	if err := WriteBundle(dir, r, BundleOptions{}, bundleExtract(bundleSources)); err != nil {
		t.Fatal(err)
	}
	names, _ := filepath.Glob(filepath.Join(dir, "*"))
	for i := range names {
		names[i] = filepath.Base(names[i])
	}
	slices.Sort(names)
	if want := []string{"incident-1.pcapng", "incident-2.pcapng", "incident-3.pcapng", "report.html", "report.json", "report.md"}; !slices.Equal(names, want) {
		t.Fatalf("bundle holds %v, want %v", names, want)
	}
	jf, _ := os.Open(filepath.Join(dir, "report.json"))
	back, err := ReadJSON(jf)
	jf.Close()
	if err != nil || len(back.Incidents) != 3 {
		t.Fatalf("report.json: %v", err)
	}
	for _, name := range []string{"report.md", "report.html"} {
		if b, _ := os.ReadFile(filepath.Join(dir, name)); !bytes.Contains(b, []byte("192.0.2.10")) {
			t.Errorf("%s does not render the report", name)
		}
	}

	// Incident 1: two attempts, packets in time order, comments, headers only.
	got := readBundlePcapng(t, filepath.Join(dir, "incident-1.pcapng"))
	if want := "synscope evidence for incident 1: reset at 192.0.2.10:80, 2 sample attempts (of 4 in the incident).\n4 connections"; !strings.HasPrefix(got.section, want) ||
		!strings.Contains(got.section, "Headers only") || !strings.Contains(got.section, "11 packets") {
		t.Errorf("section comment %q", got.section)
	}
	nums := []uint64{5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16}
	if len(got.data) != len(nums) || !slices.Equal(got.links, []layers.LinkType{layers.LinkTypeEthernet}) {
		t.Fatalf("incident-1: %d packets on %v, want %d on Ethernet", len(got.data), got.links, len(nums))
	}
	wantComments := map[int]string{
		0:  "SYN of attempt 2: 198.51.100.54:49501 -> 192.0.2.10:80 [packet 5 of rst-after-handshake.pcap]",
		1:  "SYN-ACK of attempt 2 [packet 6 of rst-after-handshake.pcap]",
		2:  "handshake ACK of attempt 2 [packet 7 of rst-after-handshake.pcap]",
		3:  "first data from the client, attempt 2 (77 bytes) [packet 8 of rst-after-handshake.pcap]",
		4:  "RST from the server, attempt 2 (after request) [packet 9 of rst-after-handshake.pcap]",
		9:  "first data from the server, attempt 3 (366 bytes) [packet 14 of rst-after-handshake.pcap]",
		10: "RST from the client, attempt 3 (after response) [packet 16 of rst-after-handshake.pcap]",
	}
	for i, n := range nums {
		o := orig[0][n-1]
		if i > 0 && got.ci[i].Timestamp.Before(got.ci[i-1].Timestamp) {
			t.Errorf("packet %d out of time order", i+1)
		}
		if got.ci[i].Timestamp.UnixNano() != o.Time || got.ci[i].Length != o.OrigLen {
			t.Errorf("packet %d: time %v length %d, want %d %d", i+1, got.ci[i].Timestamp, got.ci[i].Length, o.Time, o.OrigLen)
		}
		end := bundleHeaderEnd(t, o.Data)
		if !bytes.Equal(got.data[i], o.Data[:end]) {
			t.Errorf("packet %d (capture packet %d): %d bytes kept, want the %d of the headers", i+1, n, len(got.data[i]), end)
		}
		if len(got.comments[i]) != 1 {
			t.Errorf("packet %d: comments %q", i+1, got.comments[i])
		} else if w, ok := wantComments[i]; ok && got.comments[i][0] != w {
			t.Errorf("packet %d: comment %q, want %q", i+1, got.comments[i][0], w)
		}
	}
	if len(got.data[3]) >= len(orig[0][7].Data) {
		t.Error("the first data packet was not cut")
	}

	got = readBundlePcapng(t, filepath.Join(dir, "incident-2.pcapng"))
	for i, w := range map[int]string{
		1: "SYN retransmission 1 of attempt 1 (1 s after the first SYN) [packet 2 of answered-after-retransmit.pcap]",
		2: "SYN retransmission 2 of attempt 1 (3 s after the first SYN) [packet 3 of answered-after-retransmit.pcap]",
		3: "SYN-ACK of attempt 1, answering SYN retransmission 2 [packet 4 of answered-after-retransmit.pcap]",
		8: "FIN from the server, attempt 1 [packet 10 of answered-after-retransmit.pcap]",
	} {
		if len(got.comments) != 9 || len(got.comments[i]) != 1 || got.comments[i][0] != w {
			t.Errorf("incident-2 packet %d: comments %q, want %q", i+1, got.comments[min(i, len(got.comments)-1)], w)
		}
	}
	got = readBundlePcapng(t, filepath.Join(dir, "incident-3.pcapng"))
	if len(got.comments) != 2 || got.comments[1][0] != "ICMP unreachable (type 3 code 3: port unreachable) from 192.0.2.10 for attempt 1 [packet 2 of refused-icmp.pcap]" {
		t.Errorf("incident-3 comments %q", got.comments)
	}
	if o := orig[2][1]; len(got.data) == 2 && (got.ci[1].Length != o.OrigLen || !bytes.Equal(got.data[1], o.Data[:len(got.data[1])])) {
		t.Error("ICMP error not kept as captured")
	}

	// tshark reads the files and shows the comments.
	if _, err := exec.LookPath("tshark"); err == nil {
		out, err := exec.Command("tshark", "-n", "-r", filepath.Join(dir, "incident-2.pcapng"), "-T", "fields", "-e", "frame.comment").Output()
		if err != nil {
			t.Fatalf("tshark: %v", err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) != 9 || !strings.Contains(lines[2], "SYN retransmission 2 of attempt 1") || !strings.Contains(lines[0], "SYN of attempt 1: 198.51.100.21:50312 -> 192.0.2.10:80") {
			t.Errorf("tshark shows %q", lines)
		}
		out, err = exec.Command("tshark", "-n", "-r", filepath.Join(dir, "incident-1.pcapng"), "-T", "fields", "-e", "tcp.flags.str", "-e", "frame.cap_len", "-e", "frame.len").Output()
		if err != nil || len(strings.Split(strings.TrimSpace(string(out)), "\n")) != 11 {
			t.Errorf("tshark on incident-1: %v: %s", err, out)
		}
	} else {
		t.Log("tshark not installed: not checked with tshark")
	}
}

func TestWriteBundlePayload(t *testing.T) {
	orig := bundleOriginals(t)
	dir := t.TempDir()
	if err := WriteBundle(dir, bundleReport(), BundleOptions{Payload: true, Files: []BundleFile{}}, bundleExtract(bundleSources)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "report.json")); !os.IsNotExist(err) {
		t.Error("report files written with Files empty")
	}
	got := readBundlePcapng(t, filepath.Join(dir, "incident-1.pcapng"))
	if len(got.data) != 11 || !bytes.Equal(got.data[3], orig[0][7].Data) || strings.Contains(got.section, "Headers only") {
		t.Error("payload not kept")
	}
}

func TestWriteBundleAnonymized(t *testing.T) {
	orig := bundleOriginals(t)
	a := NewAnonymizer([]byte("bundle key"))
	r := bundleReport()
	if err := WriteBundle(t.TempDir(), r, BundleOptions{Anonymizer: a}, bundleExtract(bundleSources)); err == nil {
		t.Fatal("a report not anonymised was accepted")
	}
	a.Report(r)
	dir := t.TempDir()
	if err := WriteBundle(dir, r, BundleOptions{Anonymizer: a}, bundleExtract(bundleSources)); err != nil {
		t.Fatal(err)
	}
	addrs := []string{"192.0.2.10", "198.51.100.54", "198.51.100.55", "198.51.100.21", "198.51.100.25"}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range addrs {
			ip := netip.MustParseAddr(s)
			if bytes.Contains(b, []byte(s)) || strings.HasSuffix(f, ".pcapng") && bytes.Contains(b, ip.AsSlice()) {
				t.Errorf("%s: %s left", filepath.Base(f), s)
			}
		}
	}
	got := readBundlePcapng(t, filepath.Join(dir, "incident-1.pcapng"))
	server := a.Addr(netip.MustParseAddr("192.0.2.10"))
	if !strings.HasPrefix(got.section, "synscope evidence for incident 1: reset at "+server.String()+":80") || !strings.Contains(got.section, "anonymised") {
		t.Errorf("section comment %q", got.section)
	}
	// The packets carry the report's addresses, with valid IP checksums,
	// and the same length as without anonymisation.
	p := gopacket.NewPacket(got.data[0], layers.LayerTypeEthernet, gopacket.Default)
	ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if ip == nil {
		t.Fatal("no IPv4 in the first packet")
	}
	if dst, _ := netip.AddrFromSlice(ip.DstIP); dst != server {
		t.Errorf("packet to %s, the report says %s", dst, server)
	}
	if !strings.Contains(got.comments[0][0], r.Incidents[0].Samples[0].Client) {
		t.Errorf("comment %q lacks the anonymised client %s", got.comments[0][0], r.Incidents[0].Samples[0].Client)
	}
	if _, res := ip.VerifyChecksum(); !res.Valid {
		t.Error("bad IPv4 checksum")
	}
	if len(got.data[3]) != bundleHeaderEnd(t, orig[0][7].Data) {
		t.Error("anonymised packet cut differently")
	}
	// The same key gives the same bundle.
	dir2 := t.TempDir()
	r2 := bundleReport()
	NewAnonymizer([]byte("bundle key")).Report(r2)
	if err := WriteBundle(dir2, r2, BundleOptions{Anonymizer: NewAnonymizer([]byte("bundle key"))}, bundleExtract(bundleSources)); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"incident-1.pcapng", "incident-3.pcapng", "report.json", "report.md"} {
		b1, _ := os.ReadFile(filepath.Join(dir, name))
		b2, _ := os.ReadFile(filepath.Join(dir2, name))
		if !bytes.Equal(b1, b2) {
			t.Errorf("%s differs between two runs with the same key", name)
		}
	}
}

// TestWriteBundleFailures: what cannot be done is reported with its path,
// the rest is written, and nothing half-written is left.
func TestWriteBundleFailures(t *testing.T) {
	dir := t.TempDir()
	r := bundleReport()
	// A packet that is not in the capture.
	r.Incidents[2].Samples[0].Timeline = append(r.Incidents[2].Samples[0].Timeline, bundleEv(2, 999, "RST", "server", "R.", 0, 1))
	full := errors.New("no space left on device")
	old := []byte("previous report")
	os.WriteFile(filepath.Join(dir, "report.json"), old, 0o644)
	files := []BundleFile{
		{"report.json", func(w io.Writer, r *Report) error { w.Write([]byte("{ half")); return full }},
		{"report.md", WriteMarkdown},
	}
	err := WriteBundle(dir, r, BundleOptions{Files: files}, bundleExtract(bundleSources))
	if err == nil || !errors.Is(err, full) || !strings.Contains(err.Error(), filepath.Join(dir, "report.json")) ||
		!strings.Contains(err.Error(), "refused-icmp.pcap") {
		t.Fatalf("error %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "report.json")); !bytes.Equal(b, old) {
		t.Errorf("report.json replaced by a failed write: %q", b)
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, ".*")); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
	got := readBundlePcapng(t, filepath.Join(dir, "incident-3.pcapng"))
	if len(got.data) != 2 || !strings.Contains(got.section, "1 packet could not be read back") {
		t.Errorf("incident-3: %d packets, section %q", len(got.data), got.section)
	}
	if _, err := os.Stat(filepath.Join(dir, "incident-1.pcapng")); err != nil {
		t.Error(err)
	}
	// The directory cannot be created.
	block := filepath.Join(t.TempDir(), "file")
	os.WriteFile(block, nil, 0o644)
	if err := WriteBundle(filepath.Join(block, "bundle"), r, BundleOptions{}, nil); err == nil || !strings.Contains(err.Error(), block) {
		t.Errorf("error %v does not name %s", err, block)
	}
	// Without an extract function: the report files only.
	d2 := t.TempDir()
	if err := WriteBundle(d2, bundleReport(), BundleOptions{}, nil); err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(filepath.Join(d2, "*.pcapng")); len(m) != 0 {
		t.Errorf("pcapng written without packets: %v", m)
	}
}

// TestWriteBundleLinkTypes: samples from captures of different link types
// share one file, with an interface per link type, in time order (ties by
// source, then packet), anonymised or not.
func TestWriteBundleLinkTypes(t *testing.T) {
	paths := []string{"../testdata/pcaps/linktype-sll.pcap", "../testdata/pcaps/linktype-raw.pcap",
		"../testdata/pcaps/linktype-null-le.pcap", "../testdata/pcaps/linktype-sll2.pcap"}
	clients := []string{"198.51.100.41", "198.51.100.43", "192.0.2.100", "198.51.100.42"}
	mk := func() *Report {
		r := &Report{Schema: Schema, Generator: "synscope test"}
		inc := Incident{ID: 7, Kind: "syn_retransmit", Server: "192.0.2.10:80", Attempts: 4}
		for i, p := range paths {
			r.Sources = append(r.Sources, Source{Path: p})
			inc.Samples = append(inc.Samples, Attempt{ID: uint64(i + 1), Client: clients[i] + ":40000", Server: "192.0.2.10:80", Syns: 1,
				Timeline: []Event{bundleEv(i, 1, "SYN", "client", "S", 0, 0), bundleEv(i, 2, "SYN-ACK", "server", "S.", 0, 0.04),
					bundleEv(i, 3, "handshake ACK", "client", ".", 0, 10.04)}})
		}
		r.Incidents = []Incident{inc}
		return r
	}
	for _, anon := range []bool{false, true} {
		r := mk()
		opt := BundleOptions{Files: []BundleFile{}}
		if anon {
			opt.Anonymizer = NewAnonymizer([]byte("links"))
			opt.Anonymizer.Report(r)
		}
		dir := t.TempDir()
		if err := WriteBundle(dir, r, opt, bundleExtract(paths)); err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, "incident-7.pcapng")
		got := readBundlePcapng(t, file)
		if want := []layers.LinkType{113, 101, 0, 276}; !slices.Equal(got.links, want) {
			t.Errorf("interfaces %v, want %v", got.links, want)
		}
		if len(got.ci) != 12 {
			t.Fatalf("%d packets, want 12", len(got.ci))
		}
		for i, ci := range got.ci {
			src, num := i%4, i/4+1
			if ci.InterfaceIndex != src || !strings.Contains(got.comments[i][0], "packet "+string(rune('0'+num))+" of "+filepath.Base(paths[src])) {
				t.Errorf("packet %d: interface %d, comment %q; want source %d packet %d", i+1, ci.InterfaceIndex, got.comments[i], src, num)
			}
		}
		if anon {
			b, _ := os.ReadFile(file)
			for _, s := range append(clients, "192.0.2.10") {
				if bytes.Contains(b, netip.MustParseAddr(s).AsSlice()) || bytes.Contains(b, []byte(s)) {
					t.Errorf("%s left in the anonymised file", s)
				}
			}
		}
		if _, err := exec.LookPath("tshark"); err == nil {
			out, err := exec.Command("tshark", "-n", "-r", file, "-T", "fields", "-e", "tcp.srcport", "-e", "ip.src").Output()
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if err != nil || len(lines) != 12 || strings.Contains(string(out), "\t\n") {
				t.Errorf("tshark: %v: %q", err, out)
			}
		}
	}
}
