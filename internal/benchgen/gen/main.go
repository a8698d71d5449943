// Command gen writes the benchmark's captures (web-1g.pcap, synflood-10m.pcap)
// into a directory, skipping any that is already up to date (see
// benchgen.GenerateFile), and prints what each contains.
//
//	go run ./internal/benchgen/gen -out bench/data
//
// With -summary it instead puts synscope's JSON summary of a capture next to
// what the generator planted in it (from the capture's .sha256 sidecar), as
// markdown list items (bench/run.sh uses it):
//
//	gen -out bench/data -summary web-1g.pcap=bench/data/web-1g.synscope.json
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/synscope/synscope/internal/benchgen"
)

func main() {
	out := flag.String("out", "bench/data", "directory to write the captures into")
	only := flag.String("only", "", "comma-separated file names to write (default: all)")
	force := flag.Bool("force", false, "regenerate even when the files are up to date")
	verify := flag.Bool("verify", false, "rehash existing files before trusting them")
	summary := flag.String("summary", "", "NAME=SYNSCOPE.json: compare synscope's summary with the generator's manifest")
	flag.Parse()
	var err error
	if *summary != "" {
		err = summarize(*out, *summary)
	} else {
		err = run(*out, *only, *force, *verify)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchgen:", err)
		os.Exit(1)
	}
}

func run(dir, only string, force, verify bool) error {
	for _, cfg := range benchgen.Presets() {
		if only != "" && !strings.Contains(","+only+",", ","+cfg.Name+",") {
			continue
		}
		start := time.Now()
		res, err := benchgen.GenerateFile(dir, cfg, force, verify)
		if err != nil {
			return err
		}
		what := fmt.Sprintf("written in %.1f s", time.Since(start).Seconds())
		if res.Skipped {
			what = "up to date, not regenerated"
		}
		fmt.Printf("%s: %s (%.1f MB, sha256 %s)\n  %s\n", res.Path, what, float64(res.Manifest.Bytes)/1e6, res.SHA256[:16], res.Manifest)
	}
	return nil
}

// synscopeSummary is the part of synscope's JSON report (schema synscope/v1)
// the benchmark shows.
type synscopeSummary struct {
	Summary struct {
		Packets           int64            `json:"packets"`
		Attempts          int64            `json:"attempts"`
		SYNPackets        int64            `json:"syn_packets"`
		SYNRetransmits    int64            `json:"syn_retransmits"`
		SYNACKPackets     int64            `json:"synack_packets"`
		SYNACKRetransmits int64            `json:"synack_retransmits"`
		Evicted           int64            `json:"evicted"`
		RawOutcomes       map[string]int64 `json:"outcomes"`
		Resets            struct {
			ByClient int64 `json:"by_client"`
			ByServer int64 `json:"by_server"`
		} `json:"resets_after_handshake"`
	} `json:"summary"`
}

func summarize(dir, arg string) error {
	name, path, ok := strings.Cut(arg, "=")
	if !ok {
		return fmt.Errorf("-summary wants NAME=FILE.json, not %q", arg)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var s synscopeSummary
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	m, err := benchgen.ReadManifest(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	o := s.Summary.RawOutcomes
	fmt.Printf("- synscope: %d packets, %d attempts (established %d, answered_after_retransmit %d, unanswered %d, refused %d, abandoned %d, undetermined %d, partial %d), "+
		"evicted %d; %d SYNs (%d retransmits), %d SYN-ACKs (%d retransmits); resets after the handshake: %d by clients, %d by servers\n",
		s.Summary.Packets, s.Summary.Attempts, o["established"], o["answered_after_retransmit"], o["unanswered"], o["refused"], o["abandoned"],
		o["undetermined"], o["partial"], s.Summary.Evicted, s.Summary.SYNPackets, s.Summary.SYNRetransmits, s.Summary.SYNACKPackets,
		s.Summary.SYNACKRetransmits, s.Summary.Resets.ByClient, s.Summary.Resets.ByServer)
	fmt.Printf("- generated: %s\n", m)
	if s.Summary.Packets != m.Packets {
		fmt.Printf("- WARNING: synscope read %d packets, the file has %d\n", s.Summary.Packets, m.Packets)
	}
	return nil
}
