package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/synscope/synscope/analyze"
	"github.com/synscope/synscope/capture"
	"github.com/synscope/synscope/report"
)

type liveConfig struct {
	*readConfig
	live     capture.LiveConfig
	engine   string
	duration time.Duration
	write    string
	status   time.Duration
	ready    string
	metrics  string
	jsonl    bool
}

const liveUsage = `Usage: synscope live -i IFACE [flags]

Capture on a live interface and analyse as read does: the same verdicts,
incidents and report, at the end of --duration, Ctrl-C or SIGTERM. On a
terminal a status line every few seconds shows attempts/s, unanswered SYNs,
retransmits, resets and lost events.

Engines (--engine): ebpf (a TC program passes only handshake packets, FIN,
RST, ICMP errors and the first data packet each way), afpacket (AF_PACKET
with a socket filter), pcap (libpcap; only in builds made with -tags pcap),
auto (the first that starts, in that order; says which and why).

Flags:
`

func parseLive(args []string, stderr io.Writer) (*liveConfig, error) {
	rc := &readConfig{tracker: analyze.DefaultConfig(), incidents: analyze.DefaultIncidentConfig()}
	cfg := &liveConfig{readConfig: rc}
	fs := pflag.NewFlagSet("live", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = false
	fs.StringVarP(&cfg.live.Interface, "interface", "i", "", "the interface to capture on (required)")
	fs.StringVar(&cfg.engine, "engine", "auto", "capture engine: auto, ebpf, afpacket, or pcap (libpcap, in builds with -tags pcap: make build-pcap)")
	ports := fs.UintSlice("port", nil, "only these TCP ports (repeat the flag, or comma-separate); default all")
	fs.DurationVar(&cfg.duration, "duration", 0, "stop after this long (default: until Ctrl-C or SIGTERM)")
	fs.StringVar(&cfg.write, "write", "", "keep what was captured in this pcapng file (synscope read on it gives the same verdicts)")
	fs.StringVar(&cfg.live.Netns, "netns", "", "capture inside this network namespace (a name under /var/run/netns, or a path)")
	fs.IntVar(&cfg.live.Snaplen, "snaplen", 256, "bytes kept of each packet")
	fs.DurationVar(&cfg.status, "status-every", 5*time.Second, "how often the status line is refreshed on a terminal")
	fs.StringVar(&cfg.metrics, "metrics", "", "serve Prometheus metrics on this address (host:port), path /metrics")
	fs.StringVar(&cfg.ready, "ready-file", "", "create this file once the engine captures (for scripts and tests that must not send traffic earlier)")
	_ = fs.MarkHidden("ready-file")
	addReportFlags(fs, rc)
	fs.Lookup("format").Usage = "output format: text, json, markdown or html for the report at the end; jsonl streams one JSON object per closed incident, then the report as one line"
	fs.Usage = func() {
		fmt.Fprint(stderr, liveUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil, errHelp
		}
		return nil, &usageError{err.Error()}
	}
	if cfg.live.Interface == "" {
		return nil, &usageError{"live needs -i INTERFACE"}
	}
	if fs.NArg() > 0 {
		rc.filter = strings.Join(fs.Args(), " ")
	}
	for _, p := range *ports {
		if p == 0 || p > 65535 {
			return nil, &usageError{fmt.Sprintf("--port %d: not a TCP port", p)}
		}
		cfg.live.Ports = append(cfg.live.Ports, uint16(p))
	}
	cfg.jsonl = rc.format == "jsonl"
	if err := rc.checkReportFlags(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// livePacket is a captured packet copied out of the engine's buffer, so the
// engine can go on while the analysis catches up.
type livePacket struct {
	data    []byte
	time    int64
	origLen int
	link    uint16
}

// liveQueue bounds what waits between the engine and the analysis; when it
// is full, packets are counted as lost (never dropped silently).
const liveQueue = 8192

func runLive(ctx context.Context, cfg *liveConfig) error {
	filter, err := analyze.CompileFilter(cfg.filter)
	if err != nil {
		return &usageError{err.Error()}
	}
	if cfg.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.duration)
		defer cancel()
	}
	src, name, err := openEngine(ctx, cfg.engine, cfg.live, cfg.stderr)
	if err != nil {
		return err
	}
	defer src.Close()
	if cfg.ready != "" {
		if err := os.WriteFile(cfg.ready, []byte(name+"\n"), 0o644); err != nil {
			return fmt.Errorf("live: %w", err)
		}
	}

	// The packets go to a pcapng file: the user's --write, or a temporary
	// one when a bundle needs them read back.
	writePath, cleanup := cfg.write, func() {}
	if writePath == "" && cfg.bundle != "" {
		f, err := os.CreateTemp("", "synscope-live-*.pcapng")
		if err != nil {
			return fmt.Errorf("live: %w", err)
		}
		f.Close()
		writePath, cleanup = f.Name(), func() { os.Remove(f.Name()) }
	}
	defer cleanup()
	var pw *pcapWriter
	if writePath != "" {
		if pw, err = newPcapWriter(writePath); err != nil {
			return err
		}
	}

	showStatus := false
	if f, ok := cfg.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		showStatus = true
	}
	var met *metrics
	if cfg.metrics != "" {
		met = newMetrics(cfg.live.Ports)
		if err := met.serve(cfg.metrics); err != nil {
			return err
		}
		defer met.close()
	}
	col := &collector{all: cfg.all, max: cfg.maxListed}
	incs := analyze.NewIncidents(cfg.incidents)
	incs.WatchOpened = showStatus
	an := analyze.NewAnalyzer(cfg.tracker, filter, func(a *analyze.Attempt) bool {
		met.observe(a)
		kept := col.add(a)
		return incs.Add(a) || kept
	})

	queue := make(chan livePacket, liveQueue)
	var queueLost uint64
	go func() {
		defer close(queue)
		var p capture.Packet
		for {
			if err := src.Next(&p); err != nil {
				return // io.EOF on cancellation, or the engine failed (it says so in Info)
			}
			lp := livePacket{data: append([]byte(nil), p.Data...), time: p.Time, origLen: p.OrigLen, link: p.LinkType}
			select {
			case queue <- lp:
			default:
				queueLost++ // read by the analysis goroutine only after close(queue)
			}
		}
	}()

	tick := time.NewTicker(cfg.status)
	defer tick.Stop()
	var num uint64
	var last analyze.Summary
	lastAt := time.Now()
	var writeErr error
loop:
	for {
		select {
		case lp, ok := <-queue:
			if !ok {
				break loop
			}
			num++
			an.Packet(&analyze.Packet{Data: lp.data, Time: lp.time, OrigLen: lp.origLen, LinkType: lp.link, Ref: analyze.PacketRef{Num: num}})
			if pw != nil && writeErr == nil {
				writeErr = pw.write(lp)
			}
		case <-tick.C:
			an.Advance(time.Now().UnixNano()) // quiet flows expire on the wall clock
			streamClosed(cfg, an, incs, showStatus)
			if met != nil {
				st := src.Stats()
				met.lost.Store(st.Lost + st.Dropped)
			}
			if showStatus {
				s := an.Summary()
				dt := time.Since(lastAt).Seconds()
				st := src.Stats()
				fmt.Fprintf(cfg.stderr, "\r%s  %6.1f attempts/s  unanswered %d  SYN retransmits %d  SYN-ACK retransmits %d  resets %d  lost %d   ",
					time.Now().Format("15:04:05"), float64(s.Attempts-last.Attempts)/dt, s.Outcomes[analyze.OutcomeUnanswered],
					s.SynRetransmits, s.SynAckRetransmits, s.ResetsByClient+s.ResetsByServer, st.Lost+st.Dropped)
				last, lastAt = *s, time.Now()
			}
		}
	}
	if showStatus {
		fmt.Fprintln(cfg.stderr)
	}
	an.Finish()
	if pw != nil {
		if err := pw.close(); writeErr == nil {
			writeErr = err
		}
	}
	info := src.Info()
	info.Path = "live:" + cfg.live.Interface + " (" + name + ")"
	st := src.Stats()
	cfg.lost = st.Lost + st.Dropped + queueLost
	if lost := cfg.lost; lost > 0 {
		fmt.Fprintf(cfg.stderr, "synscope: %d packets lost (engine %d, kernel drops %d, analysis queue full %d): the report covers what arrived\n",
			lost, st.Lost, st.Dropped, queueLost)
	}
	paths := []string{writePath}
	damaged := false
	if writeErr != nil {
		fmt.Fprintf(cfg.stderr, "synscope: writing %s: %v\n", writePath, writeErr)
		damaged = true
	}
	if err := finishReport(cfg.readConfig, an, col, incs, []*capture.SourceInfo{info}, paths); err != nil {
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

// streamClosed reports incidents that have closed: with --format jsonl one
// JSON object per line on stdout, and on a terminal one line on stderr.
func streamClosed(cfg *liveConfig, an *analyze.Analyzer, incs *analyze.Incidents, terminal bool) {
	if !cfg.jsonl && !terminal {
		return
	}
	if terminal {
		for _, inc := range incs.Opened() {
			fmt.Fprintf(cfg.stderr, "\r%-100s\n", fmt.Sprintf("incident opened: %s at %s", inc.Kind, inc.Server))
		}
	}
	settle := cfg.tracker.HandshakeIdle + cfg.tracker.ClosedLinger
	for _, inc := range incs.Closed(time.Now().UnixNano(), settle) {
		ri := report.NewIncident(inc, cfg.incidents.Slow)
		if cfg.jsonl {
			b, err := json.Marshal(struct {
				Type string `json:"type"`
				report.Incident
			}{"incident", ri})
			if err == nil {
				fmt.Fprintf(cfg.stdout, "%s\n", b)
			}
		}
		if terminal {
			fmt.Fprintf(cfg.stderr, "\r%-100s\n", "incident closed: ["+ri.Severity+"] "+ri.Title)
		}
	}
}

// pcapWriter keeps live packets in a pcapng file, one interface per link type.
type pcapWriter struct {
	f      *os.File
	w      *pcapgo.NgWriter
	ifaces map[uint16]int
}

func newPcapWriter(path string) (*pcapWriter, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("live: %w", err)
	}
	w, err := pcapgo.NewNgWriterInterface(f, pcapgo.NgInterface{Name: "synscope", LinkType: layers.LinkTypeEthernet, SnapLength: 262144}, pcapgo.DefaultNgWriterOptions)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("live: %s: %w", path, err)
	}
	return &pcapWriter{f: f, w: w, ifaces: map[uint16]int{1: 0}}, nil
}

func (p *pcapWriter) write(lp livePacket) error {
	id, ok := p.ifaces[lp.link]
	if !ok {
		var err error
		if id, err = p.w.AddInterface(pcapgo.NgInterface{Name: "synscope", LinkType: layers.LinkType(lp.link), SnapLength: 262144}); err != nil {
			return err
		}
		p.ifaces[lp.link] = id
	}
	ci := gopacket.CaptureInfo{Timestamp: time.Unix(0, lp.time), CaptureLength: len(lp.data), Length: lp.origLen, InterfaceIndex: id}
	return p.w.WritePacket(ci, lp.data)
}

func (p *pcapWriter) close() error {
	err := p.w.Flush()
	if cerr := p.f.Close(); err == nil {
		err = cerr
	}
	return err
}
