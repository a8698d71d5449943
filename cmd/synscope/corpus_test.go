package main

// The corpus test holds synscope to tshark's verdicts on real captures made by
// other projects (../shared/corpus, see its HOWTO.md). Where we disagree on
// purpose, the disagreement is listed below with who is right and why; any
// other difference fails the test.

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/synscope/synscope/report"
)

func corpusDir(t testing.TB) string {
	dir := filepath.Join("..", "..", "..", "shared", "corpus")
	if _, err := os.Stat(filepath.Join(dir, "ORACLE.tsv")); err != nil {
		t.Skipf("no shared corpus at %s (it sits beside the repository on the team's machines): %v", dir, err)
	}
	return dir
}

// readTSV reads a tab-separated file with a header line into maps.
func readTSV(t testing.TB, path string) []map[string]string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var head []string
	var rows []map[string]string
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if head == nil {
			head = cols
			continue
		}
		m := make(map[string]string, len(cols))
		for i, c := range cols {
			if i < len(head) {
				m[head[i]] = c
			}
		}
		rows = append(rows, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

// analyse runs `synscope read --attempts --format json` on one file.
func analyse(t testing.TB, files ...string) *report.Report {
	var out, errb bytes.Buffer
	args := append([]string{"read", "--attempts", "--max-listed", "100000000", "--format", "json"}, files...)
	code := runMain(context.Background(), args, nil, &out, &errb)
	if code != exitOK && code != exitDamaged {
		t.Fatalf("synscope %v: exit %d: %s", args, code, errb.String())
	}
	rep, err := report.ReadJSON(&out)
	if err != nil {
		t.Fatalf("synscope %v: %v\nstderr: %s", args, err, errb.String())
	}
	return rep
}

// countDisagreement is a file-level count where synscope and tshark differ
// on purpose.
type countDisagreement struct {
	file, field string
	tshark, us  uint64
	why         string
}

// Reasons shared by several rows.
const (
	whyDuplicates = "capture duplicates: identical copies of one packet (same IP ID or TSval) microseconds to milliseconds apart, " +
		"as -i any, NFLOG hooks or a mirror port record them; no TCP stack retransmits a SYN or SYN-ACK that soon " +
		"(the initial RTO is at least 1 s, RFC 6298), but tshark ignores the IP ID and flags every copy as a retransmission"
	whyOneSided = "one-sided capture: only the client's direction was recorded, and its ACKs and data acknowledge a SYN-ACK " +
		"the file lacks, so the handshake did complete; tshark's oracle only describes the packets present"
)

var countDisagreements = []countDisagreement{
	{"arkime__wireshark-retrans.pcap", "syn_retransmissions", 2, 0,
		"four copies of one SYN (IP ID 0x0df8, TSval 685169) within 6 ms: " + whyDuplicates},
	{"arkime__wireshark-retrans.pcap", "synack_retransmissions", 3, 0,
		"four copies of one SYN-ACK (IP ID 0xa341) within 3 ms: " + whyDuplicates},
	{"chrissanders-packets__nowebaccess3.pcapng", "syn_retransmissions", 2, 1,
		"frame 4 copies frame 3 (IP ID 0x178a) 5 ms later: a duplicate; frame 5, 1 s later, is the real retransmission (" + whyDuplicates + ")"},
	{"gopacket__cip.pcap", "syn_retransmissions", 653, 630,
		"most of the difference is SYNs recorded twice 40 µs apart with one IP ID (" + whyDuplicates + "); the rest: 10.200.1.18:1054 replays the same SYN (same ISN and IP ID) " +
			"every 20 s after the server reset the previous connection: after a RST a SYN opens a new attempt, tshark keeps one stream because the ISN did not change"},
	{"gopacket__cip.pcap", "synack_retransmissions", 85, 83,
		"the replayed 10.200.1.18:1054 connections: the server's first SYN-ACK of each new attempt is not a retransmission"},
	{"ndpi__1kxun.pcap", "syn_retransmissions", 15, 0, "every SYN is recorded twice 40 µs apart with the same IP ID: " + whyDuplicates},
	{"ptcpdump__tcp.pcapng", "syn_retransmissions", 1, 0, "loopback capture on -i any: each packet recorded twice (same IP ID, same TSval): " + whyDuplicates},
	{"ptcpdump__tcp.pcapng", "synack_retransmissions", 1, 0, "loopback capture on -i any: each packet recorded twice (same TSval): " + whyDuplicates},
	{"suricata-verify__issue-3341-tcphdr-01__urgent11_cve_2019_12260.pcap", "syn_retransmissions", 1, 0,
		"crafted URGENT/11 exploit: the client resets its half-open connection, then sends a SYN+FIN+URG with the old ISN; after a RST a SYN opens a new attempt"},
	{"suricata-verify__tcp-split-handshake-01-4whs__split-handshake-4whs.pcap", "synack_retransmissions", 1, 0,
		"split handshake (the server answers the SYN with its own SYN): the client's SYN-ACK is its first, not a retransmission; tshark flags it because it reuses the client's ISN"},
	{"suricata-verify__tls_tls-subjectaltname__input.pcap", "synack_retransmissions", 2, 0,
		"streams 3 and 35: the server first answered the SYN with a stale ACK from an old connection (challenge ACK); tshark takes that ACK's sequence number as the server's and flags the real, first SYN-ACK as a retransmission"},
	{"zeek__http_vnd.ms-cab-compressed-multi-conn.pcap", "syn_retransmissions", 5, 0, "every SYN recorded twice 1 µs apart, same IP ID: " + whyDuplicates},
	{"zeek__http_vnd.ms-cab-compressed-multi-conn.pcap", "synack_retransmissions", 5, 0, "every SYN-ACK recorded twice 1 µs apart, same IP ID: " + whyDuplicates},
	{"zeek__nflog-http.pcap", "syn_retransmissions", 2, 0, "the SYN logged by three NFLOG hooks at the same instant: " + whyDuplicates},
	{"zeek__vlan-collisions.pcap", "syn_retransmissions", 2, 0,
		"the same connection on three VLANs (HOWTO caveat 2): synscope keys attempts by VLAN as Zeek does (see its conn.log), tshark merges the copies into 'retransmissions'"},
	{"zeek__vlan-collisions.pcap", "synack_retransmissions", 2, 0, "as above: one SYN-ACK per VLAN, merged by tshark"},
}

// streamDisagreement is a stream whose outcome we judge differently. stream
// "*" covers every stream of the file; "extra" is the count of synscope
// attempts that have no tshark stream.
type streamDisagreement struct {
	file   string
	stream string
	us     string // our outcome(s), | separated
	why    string
}

var streamDisagreements = []streamDisagreement{
	{"gopacket__cip.pcap", "extra", "8", "the 20-s replays of 10.200.1.18:1054 after each server RST are new attempts (see the count table)"},
	{"suricata-verify__ipv6-evasion_ipv6-kill-router-gateway__kill_router6.pcap", "0", "refused",
		"the router answered each SYN with ICMPv6 destination unreachable (no route); the oracle leaves ICMP out (HOWTO), synscope counts an unreachable quoting the SYN as a refusal"},
	{"suricata-verify__ipv6-evasion_ipv6-kill-router-gateway__kill_router6.pcap", "1", "refused", "as stream 0"},
	{"suricata-verify__issue-3341-tcphdr-01__urgent11_cve_2019_12260.pcap", "1", "abandoned",
		"crafted exploit: the client resets after the SYN-ACK, then sends an ACK that acknowledges its own ISN+1 (1000001), not the server's; the handshake never completed, tshark's file-order rule accepts any client ACK"},
	{"suricata-verify__issue-3341-tcphdr-01__urgent11_cve_2019_12260.pcap", "extra", "1",
		"the SYN+FIN+URG with the old ISN after the client's RST is a new attempt (too close to the end of the capture to judge)"},
	{"suricata-verify__tcp-split-handshake-01-4whs__split-handshake-4whs.pcap", "0", "established",
		"split handshake: the server answers the SYN with a SYN, the client with a SYN-ACK, the server ACKs: a valid simultaneous-open style handshake (RFC 793), data follows; tshark wants a SYN-ACK from the server"},
	{"suricata-verify__tcp-split-handshake-02-5whs__split-handshake-5whs.pcap", "0", "established",
		"five-way split handshake: as the four-way one, after a bare ACK from the server; synscope keeps it as one attempt (the server's later SYN joins it as a simultaneous open), tshark opens a second stream for the server's SYN"},
	{"tcpdump__ipoib.pcap", "0", "established", whyOneSided},
	{"zeek__ipv6-http-atomic-frag.pcap", "0", "established",
		"the SYN-ACK is recorded 30 µs before its SYN (HOWTO caveat 5); synscope joins them and the handshake completes, tshark follows file order"},
	{"zeek__ssh_ssh.client-side-half-duplex.pcap", "*", "established|answered_after_retransmit", whyOneSided},
	{"zeek__tunnels_gre-aruba.pcap", "*", "established", "GRE-tunnelled 802.11 from an Aruba controller carries only the client's direction: " + whyOneSided},
	{"zeek__vlan-collisions.pcap", "extra", "2", "the copies on the second and third VLAN are attempts of their own (VLAN-aware, as Zeek)"},
}

// allowed maps tshark's per-stream outcome to the synscope outcomes that
// agree with it. tshark only describes the file; synscope also says when the
// capture ended too soon to judge (undetermined).
var allowed = map[string][]string{
	"syn-unanswered":           {"unanswered", "undetermined"},
	"refused-rst":              {"refused"},
	"syn-no-synack-client-rst": {"unanswered"},
	"handshake-incomplete":     {"abandoned", "undetermined"},
	"established-rst":          {"established", "answered_after_retransmit"},
	"established-fin":          {"established", "answered_after_retransmit"},
	"established-open":         {"established", "answered_after_retransmit"},
	"synack-without-syn":       {"partial"},
	"midstream":                {"partial"},
}

func TestCorpusAgainstTshark(t *testing.T) {
	dir := corpusDir(t)
	rows := readTSV(t, filepath.Join(dir, "ORACLE.tsv"))
	if len(rows) == 0 {
		t.Fatal("empty ORACLE.tsv")
	}
	for _, row := range rows {
		file := row["file"]
		t.Run(file, func(t *testing.T) {
			rep := analyse(t, filepath.Join(dir, "pcaps", file))
			checkCounts(t, file, row, rep)
			checkStreams(t, file, filepath.Join(dir, "oracle", file+".tsv"), rep)
		})
	}
	if t.Failed() || strings.Contains(flag.Lookup("test.run").Value.String(), "/") {
		return // a failing or filtered run cannot tell which rows are unused
	}
	for i, d := range streamDisagreements {
		if !usedStreamRows[i] {
			t.Errorf("streamDisagreements row %d (%s stream %s) no longer matches any difference: remove it", i, d.file, d.stream)
		}
	}
}

func checkCounts(t *testing.T, file string, row map[string]string, rep *report.Report) {
	s := &rep.Summary
	got := map[string]uint64{
		"syn_packets":                   s.SynPackets,
		"synack_packets":                s.SynackPackets,
		"syn_retransmissions":           s.SynRetransmits,
		"synack_retransmissions":        s.SynackRetransmits,
		"syns_with_timestamp_option":    s.Timestamps.SynWithTS,
		"synacks_with_timestamp_option": s.Timestamps.SynackWithTS,
	}
	if sum := s.Outcomes.Sum(); sum != s.Attempts {
		t.Errorf("outcomes sum to %d, attempts %d", sum, s.Attempts)
	}
	for field, us := range got {
		want, err := strconv.ParseUint(row[field], 10, 64)
		if err != nil {
			t.Fatalf("ORACLE.tsv %s: bad %s %q", file, field, row[field])
		}
		known := false
		for _, d := range countDisagreements {
			if d.file == file && d.field == field {
				known = true
				if d.tshark != want || d.us != us {
					t.Errorf("%s: documented disagreement is stale: tshark %d (table says %d), synscope %d (table says %d)", field, want, d.tshark, us, d.us)
				}
			}
		}
		if !known && us != want {
			t.Errorf("%s: synscope %d, tshark %d", field, us, want)
		}
	}
}

type endpointPair struct{ a, b string }

func pairOf(x, y string) endpointPair {
	if x > y {
		x, y = y, x
	}
	return endpointPair{x, y}
}

func checkStreams(t *testing.T, file, path string, rep *report.Report) {
	if _, err := os.Stat(path); err != nil {
		t.Skipf("no per-stream oracle: %v", err)
	}
	streams := readTSV(t, path)
	// Our attempts by endpoint pair, in start order.
	byPair := map[endpointPair][]*report.Attempt{}
	for i := range rep.Attempts {
		a := &rep.Attempts[i]
		p := pairOf(a.Client, a.Server)
		byPair[p] = append(byPair[p], a)
	}
	used := map[*report.Attempt]bool{}
	for _, st := range streams {
		want := st["outcome"]
		p := pairOf(st["client"], st["server"])
		cands := byPair[p]
		var match *report.Attempt
		if fs := st["first_syn_time"]; fs != "-" {
			ts := parseEpoch(t, fs)
			for _, a := range cands {
				if !used[a] && a.Client == st["client"] && len(a.SynOffsetsMs) > 0 && math.Abs(startEpoch(t, a.Start)-ts) < 1e-6 {
					match = a
					break
				}
			}
		}
		if match == nil {
			for _, a := range cands {
				if !used[a] {
					match = a
					break
				}
			}
		}
		id := fmt.Sprintf("stream %s (%s -> %s, tshark %s)", st["stream"], st["client"], st["server"], want)
		if match == nil {
			if !knownStream(t, file, st["stream"], "") {
				t.Errorf("%s: no synscope attempt", id)
			}
			continue
		}
		used[match] = true
		if os.Getenv("SYNSCOPE_CORPUS_DEBUG") != "" && st["syns"] != strconv.Itoa(match.Syns) {
			t.Logf("debug %s: tshark syns %s (retrans %s) synacks %s (retrans %s); synscope attempt %d syns %d synacks %d",
				id, st["syns"], st["syn_retrans"], st["synacks"], st["synack_retrans"], match.ID, match.Syns, match.Synacks)
		}
		ok := false
		for _, o := range allowed[want] {
			if o == match.Outcome {
				ok = true
			}
		}
		if !ok && !knownStream(t, file, st["stream"], match.Outcome) {
			t.Errorf("%s: synscope says %s (attempt %d, history %s)", id, match.Outcome, match.ID, match.History)
		}
	}
	var extra []string
	for i := range rep.Attempts {
		a := &rep.Attempts[i]
		if !used[a] {
			extra = append(extra, fmt.Sprintf("%d %s->%s %s", a.ID, a.Client, a.Server, a.Outcome))
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 && !knownStream(t, file, "extra", fmt.Sprint(len(extra))) {
		t.Errorf("%d synscope attempts with no tshark stream: %s", len(extra), strings.Join(extra[:min(len(extra), 10)], "; "))
	}
}

// usedStreamRows records which streamDisagreements rows matched, so a row
// that no longer describes a difference fails the test instead of rotting.
var usedStreamRows = map[int]bool{}

func knownStream(t *testing.T, file, stream, us string) bool {
	for i, d := range streamDisagreements {
		if d.file == file && (d.stream == stream || (d.stream == "*" && stream != "extra" && stream != "")) {
			usedStreamRows[i] = true
			if !slices.Contains(strings.Split(d.us, "|"), us) {
				t.Errorf("stream %s: documented disagreement is stale: synscope now says %q (table says %q)", stream, us, d.us)
			}
			return true
		}
	}
	return false
}

func parseEpoch(t *testing.T, s string) float64 {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("bad epoch %q", s)
	}
	return v
}

func startEpoch(t *testing.T, rfc string) float64 {
	v, err := time.Parse(time.RFC3339Nano, rfc)
	if err != nil {
		t.Fatalf("bad time %q: %v", rfc, err)
	}
	return float64(v.Unix()) + float64(v.Nanosecond())/1e9
}
