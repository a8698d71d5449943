package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/synscope/synscope/analyze"
	"github.com/synscope/synscope/capture"
	"github.com/synscope/synscope/internal/kevent"
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
	// Test only (hidden flags): while the file exists, the engine is not
	// read (its kernel buffer fills) or the analysis does not run
	// (synscope's queue fills), so that losses can be forced.
	holdCapture, holdAnalysis string
	// kernel: collect kernel evidence (tracepoints and counter samples of
	// the watched namespace) every sampleEvery and when incidents open.
	kernel      bool
	sampleEvery time.Duration
}

const liveUsage = `Usage: synscope live -i IFACE [flags]

Capture on a live interface and analyse as read does: the same verdicts,
incidents and report, at the end of --duration, Ctrl-C or SIGTERM. On a
terminal a status line every few seconds shows attempts/s, unanswered SYNs,
retransmits, resets, the kernel's drops and lost events.

Engines (--engine): ebpf (a TC program passes only handshake packets, FIN,
RST, ICMP errors, the first data packet and pure ACK each way), afpacket (AF_PACKET
with a socket filter), pcap (libpcap; only in builds made with -tags pcap),
auto (the first that starts, in that order; says which and why).

Kernel evidence (--kernel, on by default): eBPF tracepoints report the
namespace's TCP drops with their reasons (skb:kfree_skb, names from the
kernel's BTF), SYN-ACK retransmits and resets sent and received; its
counters, handshake sysctls and listeners' accept queues are sampled. Each
incident says what the kernel saw and why its SYNs went unanswered where the
kernel knows (a firewall drop, a full accept queue, PAWS, ...). --write keeps
it in the pcapng as custom blocks (tcpdump skips them; Wireshark shows them
as frames of their own, numbered as synscope numbers them).

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
	fs.IntVar(&cfg.live.Snaplen, "snaplen", capture.DefaultSnaplen, "bytes kept of each packet")
	fs.IntVar(&cfg.live.BufferMB, "buffer-mb", 0, "the engine's kernel buffer in MiB: a fuller one drops (and counts) events (default: afpacket 8, ebpf 4, pcap 8)")
	fs.DurationVar(&cfg.status, "status-every", 5*time.Second, "how often the status line is refreshed on a terminal")
	fs.StringVar(&cfg.metrics, "metrics", "", "serve Prometheus metrics on this address (host:port), path /metrics")
	fs.StringVar(&cfg.ready, "ready-file", "", "create this file once the engine captures (for scripts and tests that must not send traffic earlier); it is removed once a signal is being handled")
	_ = fs.MarkHidden("ready-file")
	fs.StringVar(&cfg.holdCapture, "test-hold-capture", "", "test only: do not read from the engine while this file exists (even once stopped)")
	fs.StringVar(&cfg.holdAnalysis, "test-hold-analysis", "", "test only: do not analyse queued packets while this file exists (even once stopped)")
	fs.StringVar(&rc.cpuprof, "cpuprofile", "", "write a CPU profile (pprof) to this file")
	_ = fs.MarkHidden("cpuprofile")
	_ = fs.MarkHidden("test-hold-capture")
	_ = fs.MarkHidden("test-hold-analysis")
	fs.BoolVar(&cfg.kernel, "kernel", true, "collect the kernel's evidence in the watched namespace: drops and their reasons, SYN-ACK retransmits and resets (eBPF tracepoints), counters, settings and listeners")
	fs.DurationVar(&cfg.sampleEvery, "kernel-sample-every", defaultSampleEvery, "how often the namespace's counters are sampled (also at the start, the end and when an incident opens)")
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
	if cfg.sampleEvery < 0 {
		return nil, &usageError{"--kernel-sample-every must not be negative"}
	}
	if cfg.live.BufferMB < 0 {
		return nil, &usageError{"--buffer-mb must not be negative"}
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
	stopProfiles, err := startProfiles(cfg.cpuprof, "")
	if err != nil {
		return err
	}
	defer stopProfiles()
	signalled := ctx // ended by the first SIGINT/SIGTERM (in main)
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
	kf := openKernelFeed(ctx, cfg)
	defer kf.close()
	kf.describe(cfg.stderr, cfg.live.Netns)

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
		defer pw.close()
	}
	if cfg.ready != "" {
		if err := os.WriteFile(cfg.ready, []byte(name+"\n"), 0o644); err != nil {
			return fmt.Errorf("live: %w", err)
		}
	}
	// A second SIGINT or SIGTERM, while the report is being made after the
	// first, exits at once; the pcapng file stays valid (whole blocks).
	finished := make(chan struct{})
	defer close(finished)
	go exitOnSecondSignal(signalled, finished, pw, cleanup, cfg.ready, cfg.stderr)

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
	incs.WatchOpened = showStatus || kf.sampler != nil
	an := analyze.NewAnalyzer(cfg.tracker, filter, func(a *analyze.Attempt) bool {
		met.observe(a)
		kept := col.add(a)
		return incs.Add(a) || kept
	})
	if kf.events != nil || kf.sampler != nil {
		met.watchKernel(an.Kernel())
	}

	queue := make(chan livePacket, liveQueue)
	var queueLost atomic.Uint64
	var readErr error // why the engine stopped, when not at the end (read after close(queue))
	var producers sync.WaitGroup
	// The kernel evidence sources feed the same queue; they end when the
	// engine does (the sampler with a last sample).
	for _, ks := range kf.sources() {
		producers.Add(1)
		go func() {
			defer producers.Done()
			if err := pumpSource(ks, "", queue, func() { queueLost.Add(1) }); err != nil {
				fmt.Fprintf(cfg.stderr, "synscope: kernel evidence (%s) stopped: %v\n", ks.Info().Format, err)
			}
		}()
	}
	producers.Add(1)
	go func() {
		producers.Wait()
		close(queue)
	}()
	go func() {
		defer producers.Done()
		defer kf.stop()
		// An error other than the end: the interface went away, or the engine failed.
		readErr = pumpSource(src, cfg.holdCapture, queue, func() { queueLost.Add(1) })
	}()

	tick := time.NewTicker(cfg.status)
	defer tick.Stop()
	var num uint64
	var last analyze.Summary
	lastAt := time.Now()
	process := func(lp livePacket) {
		holdWhile(cfg.holdAnalysis)
		num++
		an.Packet(&analyze.Packet{Data: lp.data, Time: lp.time, OrigLen: lp.origLen, LinkType: lp.link, Ref: analyze.PacketRef{Num: num}})
		pw.write(lp)
	}
	// With kernel evidence, records are put in time order first (see
	// reorderWindow), and the wall clock given to the tracker lags as much.
	var ro *reorder
	var lag time.Duration
	var roTick <-chan time.Time
	if len(kf.sources()) > 0 {
		ro, lag = &reorder{}, reorderWindow
		t := time.NewTicker(reorderWindow / 2)
		defer t.Stop()
		roTick = t.C
	}
loop:
	for {
		select {
		case lp, ok := <-queue:
			if !ok {
				break loop
			}
			if ro == nil {
				process(lp)
				continue
			}
			ro.push(lp)
			ro.release(ro.last-int64(reorderWindow), process)
		case <-roTick:
			ro.release(time.Now().Add(-reorderWindow).UnixNano(), process)
		case <-tick.C:
			an.Advance(time.Now().Add(-lag).UnixNano()) // quiet flows expire on the wall clock
			opened := incs.Opened()
			if len(opened) > 0 {
				kf.sampleNow() // the counters around each incident
			}
			streamClosed(cfg, an, incs, opened, showStatus)
			pw.flush() // a file cut short by a crash still has what came before
			lost := kernelLost(src.Stats()) + queueLost.Load()
			if met != nil {
				met.lost.Store(lost)
			}
			if showStatus {
				s := an.Summary()
				dt := time.Since(lastAt).Seconds()
				kdrops := ""
				if an.Kernel().Active() {
					t := an.Kernel().Totals()
					n := t.DropsOther
					for _, r := range t.Drops {
						n += r.Count
					}
					kdrops = fmt.Sprintf("  kernel drops %d", n)
				}
				fmt.Fprintf(cfg.stderr, "\r%s  %6.1f attempts/s  unanswered %d  SYN retransmits %d  SYN-ACK retransmits %d  resets %d%s  lost %d   ",
					time.Now().Format("15:04:05"), float64(s.Attempts-last.Attempts)/dt, s.Outcomes[analyze.OutcomeUnanswered],
					s.SynRetransmits, s.SynAckRetransmits, s.ResetsByClient+s.ResetsByServer, kdrops, lost)
				last, lastAt = *s, time.Now()
			}
		}
	}
	if ro != nil {
		ro.release(math.MaxInt64, process)
	}
	if showStatus {
		fmt.Fprintln(cfg.stderr)
	}
	an.Finish()
	damaged := false
	info := src.Info()
	where := cfg.live.Interface
	if cfg.live.Netns != "" {
		where += "@" + cfg.live.Netns
	}
	lc := &report.LiveCapture{Interface: where, Engine: name}
	var gone interface{ InterfaceGone() time.Time }
	switch {
	case errors.As(readErr, &gone):
		lc.InterfaceGone = report.TimeString(gone.InterfaceGone().UnixNano())
		fmt.Fprintf(cfg.stderr, "synscope: %v; the report covers the %d packets captured before\n", readErr, info.Packets)
		damaged = true
	case readErr != nil:
		fmt.Fprintf(cfg.stderr, "synscope: the %s engine stopped: %v; the report covers the %d packets captured before\n", name, readErr, info.Packets)
		damaged = true
	}
	if readErr != nil && info.Err == nil {
		info.Err = readErr
	}
	info.Path = "live:" + cfg.live.Interface + " (" + name + ")"
	st := src.Stats()
	lc.LostKernel, lc.LostQueue = kernelLost(st), queueLost.Load()
	cfg.kernelMissing = kf.missing
	if n := kf.lost(); n > 0 {
		cfg.kernelMissing = append(cfg.kernelMissing, fmt.Sprintf("tracepoints: %d kernel events lost (their ring buffer was full): findings may undercount drops and resets", n))
	}
	if n := lc.Lost(); n > 0 {
		fmt.Fprintf(cfg.stderr, "synscope: %s lost: %s; the report covers what arrived\n", plural(n, "event"), lc.LostBy())
	}
	if pw != nil {
		pw.close()
		if cfg.write != "" {
			lc.Write = &report.LiveWrite{Path: cfg.write, Packets: pw.packets}
		}
		if pw.err != nil {
			if lc.Write != nil {
				lc.Write.Stopped = errReason(pw.err)
			}
			fmt.Fprintf(cfg.stderr, "synscope: %s stopped after %d packets: %v; the file is valid up to there, the capture went on\n", writePath, pw.packets, pw.err)
			damaged = true
		}
	}
	cfg.liveCapture = lc
	paths := []string{writePath}
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

// kernelLost is what the engine's kernel side dropped or lost.
func kernelLost(st capture.LiveStats) uint64 { return st.Dropped + st.Lost }

// errReason is an error's last part: "no space left on device".
func errReason(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	return err.Error()
}

func plural(n uint64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.FormatUint(n, 10) + " " + what + "s"
}

// holdWhile waits while the file exists, even past the end of the capture
// (test only: --test-hold-*).
func holdWhile(path string) {
	if path == "" {
		return
	}
	for {
		if _, err := os.Stat(path); err != nil {
			return
		}
		time.Sleep(10 * time.Millisecond) // polling a file the test removes
	}
}

// exitOnSecondSignal waits for the first SIGINT/SIGTERM (signalled ends),
// then exits at once on the next one, after the pcapng file's last whole
// blocks are written; finished ends it when the run returns normally. The
// ready file, if any, is removed once a second signal would be heard.
func exitOnSecondSignal(signalled context.Context, finished <-chan struct{}, pw *pcapWriter, cleanup func(), ready string, stderr io.Writer) {
	select {
	case <-signalled.Done():
	case <-finished:
		return
	}
	c := make(chan os.Signal, 1)
	signal.Notify(c, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(c)
	if ready != "" {
		os.Remove(ready)
	}
	select {
	case <-c:
	case <-finished:
		return
	}
	msg := "synscope: second signal: exiting without the report"
	if pw != nil {
		pw.close() // waits for a write in progress: the file ends on a whole block
		msg += fmt.Sprintf("; %s holds %d packets", pw.path, pw.packets)
	}
	cleanup()
	fmt.Fprintln(stderr, msg)
	os.Exit(exitDamaged)
}

// streamClosed reports incidents that have closed: with --format jsonl one
// JSON object per line on stdout, and on a terminal one line on stderr.
func streamClosed(cfg *liveConfig, an *analyze.Analyzer, incs *analyze.Incidents, opened []*analyze.Incident, terminal bool) {
	if !cfg.jsonl && !terminal {
		return
	}
	if terminal {
		for _, inc := range opened {
			fmt.Fprintf(cfg.stderr, "\r%-100s\n", fmt.Sprintf("incident opened: %s at %s", inc.Kind, inc.Server))
		}
	}
	settle := cfg.tracker.HandshakeIdle + cfg.tracker.ClosedLinger
	for _, inc := range incs.Closed(time.Now().UnixNano(), settle) {
		an.Kernel().ConcludeIncident(inc)
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

// pcapWriter keeps live packets in a pcapng file, one interface per link
// type, nanosecond timestamps. Blocks are built whole in a buffer and
// written in one call each flush; a write that fails or comes up short is cut
// back to the last whole block, and nothing more is written. So the file is
// a valid pcapng at every moment, on a full disk, a crash between writes or
// an exit on a second signal, and holds the first packets up to where it
// stopped.
type pcapWriter struct {
	mu      sync.Mutex // a write in progress, against close from a signal
	path    string
	f       *os.File
	buf     []byte // whole blocks not yet written
	marks   []int  // where each record's block in buf ends (its packet count is its index+1)
	size    int64  // bytes in the file, whole blocks only
	packets uint64 // packets in the file
	ifaces  map[uint16]uint32
	err     error // the write that failed: the file ends before it
	closed  bool
}

// pcapFlushAt is how much is buffered before a write.
const pcapFlushAt = 64 << 10

func newPcapWriter(path string) (*pcapWriter, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("live: %w", err)
	}
	p := &pcapWriter{path: path, f: f, ifaces: map[uint16]uint32{}}
	p.buf = ngSHB(p.buf, "synscope "+version)
	if err := p.flushLocked(); err != nil { // the header now: a full disk is said before the capture starts
		if fi, serr := f.Stat(); serr == nil && fi.Mode().IsRegular() {
			os.Remove(path) // not a capture: leave nothing under the name (a device, /dev/full, stays)
		}
		f.Close()
		return nil, fmt.Errorf("live: writing %s: %w", path, err)
	}
	return p, nil
}

// write adds one packet (nil p, or after a failure: nothing).
func (p *pcapWriter) write(lp livePacket) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil || p.closed {
		return
	}
	if lp.link == kevent.LinkType {
		// Kernel evidence goes in a custom block that packet tools skip.
		p.buf = ngCB(p.buf, lp.time, lp.data)
	} else {
		id, ok := p.ifaces[lp.link]
		if !ok {
			id = uint32(len(p.ifaces))
			p.ifaces[lp.link] = id
			p.buf = ngIDB(p.buf, lp.link)
		}
		p.buf = ngEPB(p.buf, id, lp.time, lp.data, lp.origLen)
	}
	p.marks = append(p.marks, len(p.buf))
	if len(p.buf) >= pcapFlushAt {
		p.flushLocked()
	}
}

// flush writes what is buffered.
func (p *pcapWriter) flush() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.flushLocked()
}

func (p *pcapWriter) flushLocked() error {
	if p.err != nil || p.closed || len(p.buf) == 0 {
		return p.err
	}
	n, err := p.f.Write(p.buf)
	if err == nil && n < len(p.buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		// Keep the whole blocks that made it, cut the rest.
		keep, pk := 0, uint64(0) // header blocks only: all or nothing
		for i, end := range p.marks {
			if end > n {
				break
			}
			keep, pk = end, uint64(i+1)
		}
		if terr := p.f.Truncate(p.size + int64(keep)); terr != nil {
			err = errors.Join(err, fmt.Errorf("cutting back to whole blocks: %w", terr))
		}
		p.size += int64(keep)
		p.packets += pk
		p.err = err
		p.buf, p.marks = p.buf[:0], p.marks[:0]
		return err
	}
	p.size += int64(n)
	p.packets += uint64(len(p.marks))
	p.buf, p.marks = p.buf[:0], p.marks[:0]
	return nil
}

// close writes what is buffered and closes the file (again: nothing).
func (p *pcapWriter) close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.flushLocked()
	if err := p.f.Close(); err != nil && p.err == nil {
		p.err = err
	}
	p.closed = true
}

// pcapng blocks, little-endian (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-03.html).

func ngBlock(b []byte, typ uint32, body []byte) []byte {
	n := uint32(12 + len(body))
	b = binary.LittleEndian.AppendUint32(b, typ)
	b = binary.LittleEndian.AppendUint32(b, n)
	b = append(b, body...)
	return binary.LittleEndian.AppendUint32(b, n)
}

func ngOption(b []byte, code uint16, v []byte) []byte {
	b = binary.LittleEndian.AppendUint16(b, code)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(v)))
	b = append(b, v...)
	return append(b, make([]byte, (4-len(v)%4)%4)...)
}

func ngSHB(b []byte, app string) []byte {
	var body []byte
	body = binary.LittleEndian.AppendUint32(body, 0x1a2b3c4d)
	body = binary.LittleEndian.AppendUint16(body, 1)
	body = binary.LittleEndian.AppendUint16(body, 0)
	body = binary.LittleEndian.AppendUint64(body, ^uint64(0)) // section length unknown
	body = ngOption(body, 4, []byte(app))                     // shb_userappl
	body = ngOption(body, 0, nil)
	return ngBlock(b, 0x0a0d0d0a, body)
}

func ngIDB(b []byte, link uint16) []byte {
	var body []byte
	body = binary.LittleEndian.AppendUint16(body, link)
	body = binary.LittleEndian.AppendUint16(body, 0)
	body = binary.LittleEndian.AppendUint32(body, capture.MaxRecordLen)
	body = ngOption(body, 2, []byte("synscope")) // if_name
	body = ngOption(body, 9, []byte{9})          // if_tsresol: nanoseconds
	body = ngOption(body, 0, nil)
	return ngBlock(b, 1, body)
}

// ngCB is a custom block (copyable) holding one kernel evidence record.
func ngCB(b []byte, t int64, record []byte) []byte {
	body := binary.LittleEndian.AppendUint32(nil, kevent.PEN)
	body = kevent.AppendCustomData(body, t, record)
	body = append(body, make([]byte, (4-len(body)%4)%4)...)
	return ngBlock(b, 0x00000bad, body)
}

func ngEPB(b []byte, iface uint32, t int64, data []byte, origLen int) []byte {
	n := uint32(32 + len(data) + (4-len(data)%4)%4)
	b = binary.LittleEndian.AppendUint32(b, 6)
	b = binary.LittleEndian.AppendUint32(b, n)
	b = binary.LittleEndian.AppendUint32(b, iface)
	b = binary.LittleEndian.AppendUint32(b, uint32(uint64(t)>>32))
	b = binary.LittleEndian.AppendUint32(b, uint32(uint64(t)))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
	b = binary.LittleEndian.AppendUint32(b, uint32(max(origLen, len(data))))
	b = append(b, data...)
	b = append(b, make([]byte, (4-len(data)%4)%4)...)
	return binary.LittleEndian.AppendUint32(b, n)
}
