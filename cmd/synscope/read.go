package main

import (
	"container/heap"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/spf13/pflag"

	"github.com/synscope/synscope/analyze"
	"github.com/synscope/synscope/capture"
	"github.com/synscope/synscope/internal/kevent"
	"github.com/synscope/synscope/report"
)

var errHelp = errors.New("help requested")

type readConfig struct {
	files     []string
	filter    string
	format    string
	all       bool
	timelines bool
	maxListed int
	output    string
	tracker   analyze.Config
	incidents analyze.IncidentConfig
	cpuprof   string
	memprof   string
	// liveCapture (live runs): losses by where, the interface going away,
	// the --write file stopping short.
	liveCapture *report.LiveCapture
	// kernelMissing (live): kernel evidence that could not be collected, and why.
	kernelMissing []string
	bundle        string
	bundleMax     int // --bundle-max-mb
	payload       bool
	anonymize     bool
	anonKey       string

	stdin          io.Reader
	stdout, stderr io.Writer
}

const readUsage = `Usage: synscope read [flags] FILE... [FILTER]

Analyse pcap or pcapng files (gzip-compressed too; - reads stdin). Several
files are one capture, merged by timestamp. A tcpdump-style FILTER after the
files limits what is analysed (it applies to the innermost IP/TCP headers, so
'port 443' also matches VLAN-tagged and tunnelled packets).

Outcomes, one per connection attempt (client address, port and ISN):
  established                handshake completed on the first SYN
  answered_after_retransmit  completed only after SYN retransmits
  unanswered                 no SYN-ACK, RST or ICMP error, and the client gave up
  refused                    RST or ICMP unreachable in answer to the SYN
  abandoned                  SYN-ACK seen, the handshake never completed
  undetermined               the capture ended less than --syn-timeout after the last SYN
  partial                    the capture started mid-connection (never an anomaly)

Exit status: 0 all input read, 1 input damaged (the report of what was read
is still printed), 2 usage error.

Flags:
`

func parseRead(args []string, stderr io.Writer) (*readConfig, error) {
	cfg := &readConfig{tracker: analyze.DefaultConfig(), incidents: analyze.DefaultIncidentConfig()}
	fs := pflag.NewFlagSet("read", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = false
	addReportFlags(fs, cfg)
	fs.StringVar(&cfg.cpuprof, "cpuprofile", "", "write a CPU profile (pprof) to this file")
	fs.StringVar(&cfg.memprof, "memprofile", "", "write a heap profile (pprof) to this file at the end")
	_ = fs.MarkHidden("cpuprofile")
	_ = fs.MarkHidden("memprofile")
	fs.Usage = func() {
		fmt.Fprint(stderr, readUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil, errHelp
		}
		return nil, &usageError{err.Error()}
	}
	switch cfg.format {
	case "text", "json", "markdown", "html":
	default:
		return nil, &usageError{fmt.Sprintf("unknown --format %q (want text, json, markdown or html)", cfg.format)}
	}
	if cfg.maxListed < 0 {
		return nil, &usageError{"--max-listed must not be negative"}
	}
	if err := cfg.checkReportFlags(); err != nil {
		return nil, err
	}
	files, filter, err := splitFilesAndFilter(fs.Args())
	if err != nil {
		return nil, err
	}
	cfg.files, cfg.filter = files, filter
	return cfg, nil
}

// addReportFlags adds the flags read and live share: the analysis knobs and
// what to report, where.
func addReportFlags(fs *pflag.FlagSet, cfg *readConfig) {
	fs.StringVarP(&cfg.format, "format", "f", "text", "output format: text, json, markdown or html")
	fs.StringVarP(&cfg.output, "output", "o", "-", "write the report to this file")
	fs.BoolVar(&cfg.all, "attempts", false, "list every attempt, not only the anomalous ones")
	fs.BoolVar(&cfg.timelines, "timelines", false, "include each listed attempt's packet timeline in JSON (anomalous attempts always have one)")
	fs.IntVar(&cfg.maxListed, "max-listed", 1000, "list at most this many attempts (the earliest); the rest are counted")
	fs.DurationVar(&cfg.tracker.SynTimeout, "syn-timeout", cfg.tracker.SynTimeout, "a SYN unanswered this long (while the capture runs on) is unanswered, not undetermined")
	fs.DurationVar(&cfg.tracker.HandshakeIdle, "handshake-idle", cfg.tracker.HandshakeIdle, "end an attempt still in its handshake after this much silence")
	fs.DurationVar(&cfg.tracker.EstablishedIdle, "idle", cfg.tracker.EstablishedIdle, "end an open connection after this much silence")
	fs.DurationVar(&cfg.tracker.ClosedLinger, "closed-linger", cfg.tracker.ClosedLinger, "keep a closed connection this long to absorb retransmitted FINs before its verdict is final")
	fs.IntVar(&cfg.tracker.MaxFlows, "max-flows", cfg.tracker.MaxFlows, "track at most this many flows at once (beyond SYN-only ones); the least recently active are evicted and counted")
	fs.IntVar(&cfg.tracker.MaxSYNOnly, "max-syn-only", cfg.tracker.MaxSYNOnly, "track at most this many flows that have seen only SYNs (~250 bytes each with their index; a SYN flood fills them); the oldest are judged early and counted as evicted")
	fs.DurationVar(&cfg.incidents.Gap, "incident-gap", cfg.incidents.Gap, "a quiet gap longer than this starts a new incident")
	fs.DurationVar(&cfg.incidents.Slow, "slow", cfg.incidents.Slow, "a first response byte later than this after the request is slow (slow_response)")
	fs.IntVar(&cfg.incidents.MaxIncidents, "max-incidents", cfg.incidents.MaxIncidents, "keep at most this many incidents; more are counted")
	fs.StringVar(&cfg.bundle, "bundle", "", "write a ticket bundle to this directory: report.md, report.html, report.json and incident-N.pcapng with each incident's sample packets")
	fs.IntVar(&cfg.bundleMax, "bundle-max-mb", 64, "the bundle's size limit in MiB: the report files always, then each incident's packets while they fit; what is cut is said in report.md and each pcapng (0: no limit)")
	fs.BoolVar(&cfg.payload, "bundle-payload", false, "keep packet payloads in the bundle's pcapng files (default: headers only)")
	fs.BoolVar(&cfg.anonymize, "anonymize", false, "replace every IP address (reports and bundle packets) with a prefix-preserving pseudonym (Crypto-PAn)")
	fs.StringVar(&cfg.anonKey, "anonymize-key", "", "the key for --anonymize (the same key gives the same mapping; default: a fresh random key per run, or $SYNSCOPE_ANONYMIZE_KEY)")
}

func (cfg *readConfig) checkReportFlags() error {
	switch cfg.format {
	case "text", "json", "markdown", "html", "jsonl":
	default:
		return &usageError{fmt.Sprintf("unknown --format %q (want text, json, markdown, html or jsonl)", cfg.format)}
	}
	if cfg.anonKey != "" {
		cfg.anonymize = true
	}
	if cfg.payload && cfg.bundle == "" {
		return &usageError{"--bundle-payload needs --bundle"}
	}
	if cfg.bundleMax < 0 {
		return &usageError{"--bundle-max-mb must not be negative"}
	}
	return nil
}

// splitFilesAndFilter takes the leading arguments that name inputs; the rest
// is the filter expression, as with tcpdump.
func splitFilesAndFilter(args []string) ([]string, string, error) {
	var files []string
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if a == "-" {
			files = append(files, a)
			continue
		}
		if _, err := os.Stat(a); err == nil {
			files = append(files, a)
			continue
		}
		if looksLikePath(a) {
			return nil, "", &usageError{fmt.Sprintf("%s: no such file", a)}
		}
		break
	}
	if len(files) == 0 {
		return nil, "", &usageError{"no capture file given"}
	}
	return files, strings.TrimSpace(strings.Join(args[i:], " ")), nil
}

func looksLikePath(a string) bool {
	if strings.ContainsRune(a, '/') {
		return true
	}
	for _, ext := range []string{".pcap", ".pcapng", ".cap", ".gz", ".dmp"} {
		if strings.HasSuffix(a, ext) {
			return true
		}
	}
	return false
}

// collector keeps the attempts the report lists: the earliest maxListed by
// start time, counting the rest.
type collector struct {
	all     bool
	max     int
	kept    attemptHeap
	omitted uint64
}

func (c *collector) add(a *analyze.Attempt) bool {
	if !c.all && !a.Outcome.Anomalous() {
		return false
	}
	if c.max == 0 {
		c.omitted++
		return false
	}
	if len(c.kept) < c.max {
		heap.Push(&c.kept, a)
		return true
	}
	c.omitted++
	if later(c.kept[0], a) { // a starts before the latest kept one: swap
		c.kept[0] = a
		heap.Fix(&c.kept, 0)
		return true
	}
	return false
}

// readGC lets the heap grow to three times what is live between
// collections (GOGC=200) unless $GOGC says otherwise: a read is a batch job
// whose live heap the analysis's bounds keep small (a few tens of MB; under
// 180 MB for a flood filling the SYN-only table), and every collection
// during it takes a core's share from reading and tracking. The web bench
// capture read in 0.147 s instead of 0.156 s at best (median 0.151 s
// against 0.159 s, 15 alternations) and the flood 2% faster, at the same
// peak RSS within 4 MB.
func readGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
}

// later orders attempts by start, then first packet.
func later(a, b *analyze.Attempt) bool {
	if a.Start != b.Start {
		return a.Start > b.Start
	}
	if a.First.Source != b.First.Source {
		return a.First.Source > b.First.Source
	}
	return a.First.Num > b.First.Num
}

// attemptHeap is a max-heap on start time, so the latest kept is at the top.
type attemptHeap []*analyze.Attempt

func (h attemptHeap) Len() int           { return len(h) }
func (h attemptHeap) Less(i, j int) bool { return later(h[i], h[j]) }
func (h attemptHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *attemptHeap) Push(x any)        { *h = append(*h, x.(*analyze.Attempt)) }
func (h *attemptHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func runRead(ctx context.Context, cfg *readConfig) error {
	readGC()
	filter, err := analyze.CompileFilter(cfg.filter)
	if err != nil {
		return &usageError{err.Error()}
	}
	stopProfiles, err := startProfiles(cfg.cpuprof, cfg.memprof)
	if err != nil {
		return err
	}
	defer stopProfiles()
	var srcs []capture.Source
	var failed []*capture.SourceInfo // sources that could not even be opened
	var order []int                  // position of each opened source among the inputs
	var inputOf []int32              // input position of each opened source
	readPaths := append([]string(nil), cfg.files...)
	var stdin io.Reader
	stdinCut := false // the spooled stdin ends where Ctrl-C or SIGTERM cut it
	if slices.Contains(cfg.files, "-") {
		stdin = interruptible(ctx, cfg.stdin)
	}
	for i, path := range cfg.files {
		var s capture.Source
		var err error
		switch {
		case path == "-" && cfg.bundle != "":
			// A bundle reads the evidence packets back: keep stdin in a
			// file. Interrupted, the file keeps what had arrived, and
			// that is analysed (the reading then ignores the signal).
			var sp string
			var cleanup func()
			if sp, cleanup, err = capture.Spool(endOnCancel{stdin, &stdinCut}); err == nil {
				defer cleanup()
				if stdinCut {
					ctx = context.WithoutCancel(ctx)
				}
				if s, err = capture.Open(sp); err == nil {
					s.Info().Path = "-"
					readPaths[i] = sp
				}
			}
		case path == "-":
			s, err = capture.NewReader(stdin, "-")
		default:
			s, err = capture.Open(path)
		}
		if err != nil { // the error names the file already
			failed = append(failed, &capture.SourceInfo{Path: path, Err: err})
			order = append(order, -1)
			if !errors.Is(err, context.Canceled) {
				fmt.Fprintf(cfg.stderr, "synscope: %v\n", err)
			}
			continue
		}
		order = append(order, len(srcs))
		inputOf = append(inputOf, int32(i))
		srcs = append(srcs, s)
	}

	col := &collector{all: cfg.all, max: cfg.maxListed}
	incs := analyze.NewIncidents(cfg.incidents)
	an := analyze.NewAnalyzer(cfg.tracker, filter, func(a *analyze.Attempt) bool {
		kept := col.add(a)
		return incs.Add(a) || kept
	})
	interrupted := false
	var merged *capture.Merger
	var pumpErr error
	if len(srcs) > 0 {
		merged = capture.Merge(srcs).(*capture.Merger)
		bar := newProgress(cfg.stderr, cfg.files, merged)
		interrupted, pumpErr = pump(ctx, merged, srcs, an, bar, inputOf)
		bar.finish()
		merged.Close()
	}
	an.Finish()

	// Sources in the order given, opened or not.
	var infos []*capture.SourceInfo
	fi := 0
	for _, o := range order {
		if o < 0 {
			infos = append(infos, failed[fi])
			fi++
		} else {
			infos = append(infos, merged.Infos()[o])
		}
	}
	damaged := false
	for _, in := range infos {
		if in.Err != nil && errors.Is(in.Err, context.Canceled) {
			interrupted = true // Ctrl-C while stdin was stalled: not damage
			in.Err = nil
		}
		if stdinCut && in.Path == "-" {
			interrupted = true
			if capture.IsFormatError(in.Err) && strings.Contains(in.Err.Error(), "truncated") {
				in.Err = nil // the interruption cut the last record: not damage
			}
		}
		if in.Err != nil {
			damaged = true
			if !containsInfo(failed, in) {
				fmt.Fprintf(cfg.stderr, "synscope: %v (the report covers the %d packets before it)\n", in.Err, in.Packets)
			}
		}
		if in.Anomalies > 0 {
			damaged = true
			fmt.Fprintf(cfg.stderr, "synscope: %v", in.FirstAnomaly)
			if in.Anomalies > 1 {
				fmt.Fprintf(cfg.stderr, " (and %d more such records)", in.Anomalies-1)
			}
			fmt.Fprintln(cfg.stderr)
		}
	}
	if interrupted {
		fmt.Fprintln(cfg.stderr, "synscope: interrupted; the report covers what was read")
	}
	if pumpErr != nil {
		damaged = true
		fmt.Fprintf(cfg.stderr, "synscope: %v; the report covers what was read before it\n", pumpErr)
	}

	if links := an.Summary().UnsupportedLinks; len(links) > 0 {
		lts := make([]int, 0, len(links))
		for lt := range links {
			lts = append(lts, int(lt))
		}
		sort.Ints(lts)
		for _, lt := range lts {
			fmt.Fprintf(cfg.stderr, "synscope: link type %s (%d) is not decoded: its %d packets are counted, not analysed; the rest of the capture was\n",
				analyze.LinkTypeName(uint16(lt)), lt, links[uint16(lt)])
		}
	}

	if err := finishReport(cfg, an, col, incs, infos, readPaths); err != nil {
		if !errors.Is(err, errDamaged) {
			return err
		}
		damaged = true
	}
	if damaged {
		return errDamaged
	}
	return nil
}

func containsInfo(list []*capture.SourceInfo, in *capture.SourceInfo) bool {
	for _, x := range list {
		if x == in {
			return true
		}
	}
	return false
}

// pump feeds every packet to the analyzer until the sources end or ctx is
// cancelled (Ctrl-C: what was read so far is still reported). Large files are
// memory-mapped: if one shrinks while it is read, the fault ends the reading
// with an error instead of crashing, and the report covers what was read.
// inputOf maps an opened source to its position among the inputs, so packet
// references name the report's sources even when one failed to open.
//
// A single mapped pcap file is read and decoded in parallel (pumpParallel);
// $SYNSCOPE_PARALLEL=0 forces the sequential path.
func pump(ctx context.Context, src capture.Source, srcs []capture.Source, an *analyze.Analyzer, bar *progress, inputOf []int32) (interrupted bool, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if ferr, ok := capture.MappedFault(r, srcs); ok {
				err = ferr
				return
			}
			panic(r)
		}
	}()
	// (Kernel evidence records are read in order, by the analyzer itself.)
	if off, chunk := capture.ParallelSetting(); !off && len(srcs) == 1 && (runtime.GOMAXPROCS(0) > 1 || chunk > 0) &&
		!slices.Contains(srcs[0].Info().LinkTypes, kevent.LinkType) {
		if ch := capture.NewChunks(srcs[0], chunk); ch != nil {
			return pumpParallel(ctx, ch, an, bar, inputOf[0])
		}
	}
	pl := an.Pipeline() // decode here, track in a second goroutine
	defer pl.Close()
	var p capture.Packet
	var ap analyze.Packet
	for n := 0; ; n++ {
		if n&4095 == 0 {
			if ctx.Err() != nil {
				return true, nil
			}
			if n&(1<<16-1) == 0 {
				bar.update()
			}
		}
		if src.Next(&p) != nil {
			return false, nil // io.EOF, or every source has ended (errors stay in their infos)
		}
		ap = analyze.Packet{Data: p.Data, Time: p.Time, OrigLen: p.OrigLen, LinkType: p.LinkType,
			Ref: analyze.PacketRef{Source: inputOf[p.Source], Num: p.Num}}
		pl.Packet(&ap)
	}
}

// Parallel reading: workers find and decode groups of chunks, any number at
// once; the calling goroutine books and tracks them strictly in file order.
const (
	chunkGroup = 8 // chunks one worker walks together (capture.Chunks.Find)
)

// parallelStats says how the last pumpParallel went (for the tests): the
// chunks, those taken as the workers read them, those read again.
type parallelStats struct{ chunks, committed, redone int }

var lastParallel parallelStats

type chunkSlot struct {
	recs    [chunkGroup]capture.Records
	batches [chunkGroup]analyze.Batch
	ready   chan struct{}
}

// pumpParallel is pump for one pcap file read in chunks. A chunk the
// workers got wrong (a guessed start, damage, a packet the batch cannot
// book) is read again here with the sequential reader, so the result is
// exactly the sequential one.
func pumpParallel(ctx context.Context, ch *capture.Chunks, an *analyze.Analyzer, bar *progress, source int32) (interrupted bool, err error) {
	workers := max(runtime.GOMAXPROCS(0), 2)
	groups := (ch.Len() + chunkGroup - 1) / chunkGroup
	slots := make([]*chunkSlot, 2*workers+2)
	tokens := make(chan struct{}, len(slots))
	for i := range slots {
		slots[i] = &chunkSlot{ready: make(chan struct{}, 1)}
		tokens <- struct{}{}
	}
	quit := make(chan struct{})
	var next atomic.Int64
	var wg sync.WaitGroup
	work := func(g int, s *chunkSlot) {
		// A mapped file that shrinks faults here: the chunks are then
		// left dirty, and the sequential reader meets the fault itself.
		// Any other panic is a bug, not to be hidden by reading again.
		defer func() {
			if r := recover(); r != nil {
				if !ch.Faulted(r) {
					panic(r)
				}
				for k := range s.recs {
					ch.Unfound(g*chunkGroup+k, &s.recs[k])
					s.batches[k].Reset()
				}
			}
		}()
		ch.Release()
		var recs [chunkGroup]*capture.Records
		for k := range s.recs {
			recs[k] = &s.recs[k]
		}
		for k := range s.batches {
			s.batches[k].Reset()
		}
		// Each record is decoded as it is found: the decoding hides the
		// wait for the next one.
		var p capture.Packet
		ap := analyze.Packet{Ref: analyze.PacketRef{Source: source}}
		ch.Find(g*chunkGroup, recs[:], func(k int, r *capture.Records) {
			for r.Next(&p) {
				ap.Data, ap.Time, ap.OrigLen, ap.LinkType, ap.Ref.Num = p.Data, p.Time, p.OrigLen, p.LinkType, p.Num
				an.DecodeInto(&s.batches[k], &ap)
			}
		})
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
			for {
				select {
				case <-tokens:
				case <-quit:
					return
				}
				g := int(next.Add(1) - 1)
				if g >= groups {
					return
				}
				s := slots[g%len(slots)]
				work(g, s)
				s.ready <- struct{}{}
			}
		}()
	}
	defer func() {
		close(quit)
		wg.Wait()
	}()

	// Attempts end (are built, judged, grouped and listed) in a goroutine
	// of their own.
	an.EmitAsync() // Finish stops it

	lastParallel = parallelStats{chunks: ch.Len()}
	var p capture.Packet
	var ap analyze.Packet
	for g := 0; g < groups; g++ {
		if ctx.Err() != nil {
			return true, nil
		}
		if g&7 == 0 {
			bar.update()
		}
		s := slots[g%len(slots)]
		<-s.ready
		for k := range s.recs {
			r, b := &s.recs[k], &s.batches[k]
			_, hi := r.Bounds()
			if ch.Offset() >= hi {
				continue // no record starts in this chunk
			}
			if an.Accepts(b) {
				if base, ok := ch.Commit(r); ok {
					an.TrackBatch(b, base)
					lastParallel.committed++
					continue
				}
			}
			lastParallel.redone++
			for ch.Offset() < hi {
				if ch.Next(&p) != nil {
					return false, nil // the error stays in the source's info
				}
				ap = analyze.Packet{Data: p.Data, Time: p.Time, OrigLen: p.OrigLen, LinkType: p.LinkType,
					Ref: analyze.PacketRef{Source: source, Num: p.Num}}
				an.Packet(&ap)
			}
		}
		tokens <- struct{}{}
	}
	return false, nil
}

func buildReport(cfg *readConfig, an *analyze.Analyzer, col *collector, infos []*capture.SourceInfo, res *analyze.Result) *report.Report {
	an.Kernel().Conclude(res)
	rep := &report.Report{
		Schema:    report.Schema,
		Generator: "synscope " + version,
		Filter:    cfg.filter,
		Summary:   report.NewSummary(an.Summary()),
		Settings: report.Settings{
			SynTimeoutS:      cfg.tracker.SynTimeout.Seconds(),
			HandshakeIdleS:   cfg.tracker.HandshakeIdle.Seconds(),
			EstablishedIdleS: cfg.tracker.EstablishedIdle.Seconds(),
			MaxFlows:         cfg.tracker.MaxFlows,
			MaxSYNOnly:       cfg.tracker.MaxSYNOnly,
			MaxListed:        cfg.maxListed,
			IncidentGapS:     cfg.incidents.Gap.Seconds(),
			SlowS:            cfg.incidents.Slow.Seconds(),
		},
		IncidentsOmitted:  res.Omitted,
		ServersNotCounted: res.ServersOmitted,
		ProbersNotWatched: res.ProbersOmitted,
		Series:            report.NewSeries(&res.Series),
		Distributions:     report.NewDistributions(res),
		Listing:           "anomalous",
		AttemptsOmitted:   col.omitted,
	}
	if cfg.all {
		rep.Listing = "all"
	}
	rep.Incidents, rep.Verdict = report.NewIncidents(res, an.Summary())
	rep.Kernel = report.NewKernel(an.Kernel(), cfg.kernelMissing)
	for _, in := range infos {
		s := report.Source{Path: in.Path, Format: in.Format, Compressed: in.Compressed, Packets: in.Packets, Bytes: in.Bytes,
			First: report.TimeString(in.First), Last: report.TimeString(in.Last), LinkTypes: []string{}}
		for _, lt := range in.LinkTypes {
			s.LinkTypes = append(s.LinkTypes, analyze.LinkTypeName(lt))
		}
		if in.Err != nil {
			s.Error = in.Err.Error()
		}
		if in.Anomalies > 0 {
			s.Anomalies, s.FirstAnomaly = in.Anomalies, in.FirstAnomaly.Error()
		}
		rep.Sources = append(rep.Sources, s)
	}
	kept := []*analyze.Attempt(col.kept)
	analyze.SortAttempts(kept)
	rep.Attempts = make([]report.Attempt, 0, len(kept))
	for _, a := range kept {
		rep.Attempts = append(rep.Attempts, report.NewAttempt(a, cfg.timelines || a.Outcome.Anomalous()))
	}
	return rep
}

func writeReport(cfg *readConfig, rep *report.Report) error {
	return writeReportAs(cfg.stdout, cfg.output, cfg.format, rep)
}

// finishReport builds the report, anonymises it when asked, writes it and the
// bundle. paths are where each source can be read again (for the bundle's
// packets). A bundle that could not be written fully gives errDamaged.
func finishReport(cfg *readConfig, an *analyze.Analyzer, col *collector, incs *analyze.Incidents, infos []*capture.SourceInfo, paths []string) error {
	rep := buildReport(cfg, an, col, infos, incs.Finish(an.Summary()))
	rep.Summary.LostEvents = cfg.liveCapture.Lost()
	rep.Live = cfg.liveCapture
	var anon *report.Anonymizer
	if cfg.anonymize {
		var err error
		if anon, err = newAnonymizer(cfg.anonKey); err != nil {
			return err
		}
		anon.Report(rep)
	}
	if err := writeReport(cfg, rep); err != nil {
		return err
	}
	if cfg.bundle == "" {
		return nil
	}
	extract := func(want map[int]map[uint64]bool, fn func(*report.RawPacket) error) error {
		return capture.Extract(paths, want, func(p *capture.Packet) error {
			return fn(&report.RawPacket{Source: p.Source, Num: p.Num, LinkType: p.LinkType, Time: p.Time, Data: p.Data, OrigLen: p.OrigLen})
		})
	}
	// report.md carries a live capture's notes (WriteMarkdown heads it with them).
	opt := report.BundleOptions{Payload: cfg.payload, Anonymizer: anon, MaxBytes: int64(cfg.bundleMax) << 20}
	if err := report.WriteBundle(cfg.bundle, rep, opt, extract); err != nil {
		for _, e := range unjoin(err) { // one line each, naming its file
			fmt.Fprintf(cfg.stderr, "synscope: %v\n", e)
		}
		fmt.Fprintf(cfg.stderr, "synscope: the bundle in %s is incomplete (see above); no file in it is partial\n", cfg.bundle)
		return errDamaged
	}
	fmt.Fprintf(cfg.stderr, "synscope: bundle written to %s (%d incidents)\n", cfg.bundle, len(rep.Incidents))
	return nil
}

// unjoin splits errors.Join's errors.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// writeReportAs renders rep in format to the file output, or to stdout when
// output is "-" or empty; read and report share it.
func writeReportAs(stdout io.Writer, output, format string, rep *report.Report) error {
	w := stdout
	var f *os.File
	if output != "-" && output != "" {
		var err error
		if f, err = os.Create(output); err != nil {
			return fmt.Errorf("writing report: %w", err)
		}
		w = f
	}
	var err error
	switch {
	case format == "json":
		err = report.WriteJSON(w, rep)
	case format == "jsonl": // one line, typed, after any streamed incidents
		err = json.NewEncoder(w).Encode(struct {
			Type string `json:"type"`
			*report.Report
		}{"report", rep})
	case format == "markdown":
		err = report.WriteMarkdown(w, rep)
	case format == "html":
		err = report.WriteHTML(w, rep)
	default:
		err = report.WriteText(w, rep)
	}
	if f != nil {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("writing report: %w", err)
	}
	return nil
}

// interruptible lets Ctrl-C end a read that blocks on a stalled pipe: the
// pump reads from a pipe fed by a copying goroutine, and cancelling ctx
// closes the pipe with context.Canceled. The report then covers what was
// read. (The copying goroutine stays blocked on stdin; the process is about
// to exit.)
func interruptible(ctx context.Context, r io.Reader) io.Reader {
	if r == nil {
		r = os.Stdin
	}
	pr, pw := io.Pipe()
	go func() {
		_, err := io.Copy(pw, r)
		pw.CloseWithError(err)
	}()
	// Closing the write side makes the pending and later reads return
	// ctx's error (closing the read side would turn them into ErrClosedPipe).
	context.AfterFunc(ctx, func() { pw.CloseWithError(ctx.Err()) })
	return pr
}

// endOnCancel reads r and ends cleanly (io.EOF) where an interruption
// (interruptible's context.Canceled) cut it, setting *cut.
type endOnCancel struct {
	r   io.Reader
	cut *bool
}

func (e endOnCancel) Read(b []byte) (int, error) {
	n, err := e.r.Read(b)
	if errors.Is(err, context.Canceled) {
		*e.cut = true
		err = io.EOF
	}
	return n, err
}

// newAnonymizer builds the anonymiser from the key, $SYNSCOPE_ANONYMIZE_KEY,
// or a random key (then the mapping differs on every run, which is what a
// one-off ticket wants).
func newAnonymizer(key string) (*report.Anonymizer, error) {
	if key == "" {
		key = os.Getenv("SYNSCOPE_ANONYMIZE_KEY")
	}
	if key == "" {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("anonymize: %w", err)
		}
		return report.NewAnonymizerSecret(b), nil
	}
	return report.NewAnonymizer([]byte(key)), nil
}

// startProfiles starts CPU profiling and arranges a heap profile at the end;
// profiling is how the hot path was tuned (BENCHMARKS.md).
func startProfiles(cpu, mem string) (stop func(), err error) {
	var cf *os.File
	if cpu != "" {
		if cf, err = os.Create(cpu); err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		if err = pprof.StartCPUProfile(cf); err != nil {
			cf.Close()
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
	}
	return func() {
		if cf != nil {
			pprof.StopCPUProfile()
			cf.Close()
		}
		if mem != "" {
			if f, err := os.Create(mem); err == nil {
				runtime.GC()
				_ = pprof.WriteHeapProfile(f)
				f.Close()
			}
		}
	}, nil
}
