//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/synscope/synscope/capture"
	"github.com/synscope/synscope/report"
)

// Hostile conditions for a live capture and for the files synscope writes
// (issue 7): the interface vanishing mid-capture, full kernel rings and a
// full queue, a full disk under --write and --bundle, SIGTERM in the middle
// of a write. Each test checks that the report says what was lost and that
// every file written is valid.

// startLiveWith starts `synscope live --format json` on the lab's server
// interface with args added, and returns once the engine captures.
func startLiveWith(t *testing.T, l *lab, args ...string) *liveRun {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	r := &liveRun{done: make(chan int, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	// --kernel=false: these tests count the packets in the --write file,
	// which would also hold kernel evidence records.
	full := append([]string{"live", "-i", l.srvIf, "--netns", l.srv, "--ready-file", ready, "--format", "json", "--kernel=false"}, args...)
	go func() { r.done <- runMain(ctx, full, nil, &r.out, &r.errb) }()
	t.Cleanup(func() {
		cancel()
		code := <-r.done
		r.done <- code
	})
	for deadline := time.Now().Add(20 * time.Second); ; {
		if _, err := os.Stat(ready); err == nil {
			return r
		}
		select {
		case code := <-r.done:
			r.done <- code
			t.Fatalf("live ended early: exit %d: %s", code, r.errb.String())
		case <-time.After(20 * time.Millisecond): // polling for the ready file
		}
		if time.Now().After(deadline) {
			t.Fatal("the engine did not get ready")
		}
	}
}

// wait returns the run's exit status once it has ended by itself (within
// d), and its JSON report.
func (r *liveRun) wait(t *testing.T, d time.Duration) (int, *report.Report) {
	t.Helper()
	var code int
	select {
	case code = <-r.done:
		r.done <- code
	case <-time.After(d):
		t.Fatalf("live did not end within %v", d)
	}
	rep, err := report.ReadJSON(bytes.NewReader(r.out.Bytes()))
	if err != nil {
		t.Fatalf("no JSON report on stdout (exit %d): %v\nstderr: %s", code, err, r.errb.String())
	}
	return code, rep
}

// connectBurst makes n short connections to port from the client side,
// four at a time; it returns how many failed.
func connectBurst(t *testing.T, l *lab, port, n int) int {
	t.Helper()
	var failed atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in(t, l.cli, func() {
				for i := w; i < n; i += 4 {
					c, err := dialPort(l, port, 5*time.Second)
					if err != nil {
						failed.Add(1)
						continue
					}
					c.Close()
				}
			})
		}()
	}
	wg.Wait()
	return int(failed.Load())
}

// asText renders a JSON report as `synscope report --format text` does.
func asText(t *testing.T, rep *report.Report) string {
	t.Helper()
	var b bytes.Buffer
	if err := writeReportAs(&b, "-", "text", rep); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// checkPcapng requires path to be a valid capture to its end: read by
// synscope's reader, `synscope read` and tcpdump without an error. With want
// >= 0 it must hold exactly want packets. It returns the packets read.
func checkPcapng(t *testing.T, path string, want int) int {
	t.Helper()
	src, err := capture.Open(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	n := 0
	var p capture.Packet
	for {
		err := src.Next(&p)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s is not valid after %d packets: %v", path, n, err)
		}
		n++
	}
	src.Close()
	if want >= 0 && n != want {
		t.Errorf("%s holds %d packets, want %d", path, n, want)
	}
	var out, errb bytes.Buffer
	if code := runMain(context.Background(), []string{"read", "--format", "json", path}, nil, &out, &errb); code != exitOK {
		t.Errorf("synscope read %s: exit %d: %s", path, code, errb.String())
	}
	if _, err := exec.LookPath("tcpdump"); err == nil {
		cmd := exec.Command("tcpdump", "-n", "-r", path)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		lines := bytes.Count(out, []byte("\n"))
		if err != nil || lines != n || strings.Contains(stderr.String(), "truncated") {
			t.Errorf("tcpdump -r %s: %v, %d packets (synscope read %d): %s", path, err, lines, n, stderr.String())
		}
	} else {
		t.Log("tcpdump not installed: not checked with tcpdump")
	}
	return n
}

// mountTmpfs mounts a tmpfs of size (e.g. "256k") on a new directory,
// unmounted at the end of the test.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: mounting a small tmpfs (a disk that fills) needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("skipped: cannot mount a tmpfs here: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// TestLiveInterfaceGone: the interface is deleted mid-capture. Every engine
// notices and stops; synscope reports what was captured, says the interface
// went away and when, and exits with status 1; the --write file is valid.
func TestLiveInterfaceGone(t *testing.T) {
	for _, engine := range labEngines {
		t.Run(engine, func(t *testing.T) {
			l := newLab(t)
			serve(t, l, 8080, func(net.Conn) {})
			written := filepath.Join(t.TempDir(), "live.pcapng")
			r := startLiveWith(t, l, "--engine", engine, "--write", written)
			if n := connectBurst(t, l, 8080, 3); n > 0 {
				t.Fatalf("%d connects failed", n)
			}
			before := time.Now()
			if out, err := exec.Command("ip", "-n", l.srv, "link", "del", l.srvIf).CombinedOutput(); err != nil {
				t.Fatalf("deleting %s: %v: %s", l.srvIf, err, out)
			}
			after := time.Now()
			code, rep := r.wait(t, 15*time.Second) // it ends by itself
			stderr := r.errb.String()
			if code != exitDamaged {
				t.Errorf("exit %d, want %d: %s", code, exitDamaged, stderr)
			}
			where := l.srvIf + "@" + l.srv
			if !strings.Contains(stderr, "interface "+where+" went away at ") {
				t.Errorf("stderr does not say the interface went away: %s", stderr)
			}
			if rep.Live == nil {
				t.Fatal("no live section in the report")
			}
			gone, err := time.Parse(time.RFC3339Nano, rep.Live.InterfaceGone)
			if err != nil || gone.Before(before.Add(-time.Millisecond)) || gone.After(after.Add(2*time.Second)) {
				t.Errorf("live.interface_gone %q (%v), want between %v and 2 s after %v", rep.Live.InterfaceGone, err, before, after)
			}
			if len(rep.Sources) != 1 || !strings.Contains(rep.Sources[0].Error, "went away") {
				t.Errorf("the source does not carry the error: %+v", rep.Sources)
			}
			if o := rep.Summary.Outcomes; o.Established != 3 {
				t.Errorf("outcomes %+v, want the 3 connections made before", o)
			}
			if txt := asText(t, rep); !strings.Contains(txt, "The interface "+where+" went away at "+gone.UTC().Format("2006-01-02 15:04:05.000")) {
				t.Errorf("the text report does not say the interface went away:\n%.600s", txt)
			}
			if n := checkPcapng(t, written, int(rep.Summary.Packets)); n == 0 {
				t.Error("the --write file is empty")
			}
		})
	}
}

// TestLiveLostEvents forces each kind of loss and requires the report to
// count it and say where it happened. kernel: a 1 MiB kernel buffer while
// the reader is held (--test-hold-capture); queue: the analysis is held
// (--test-hold-analysis) while the reader fills synscope's queue.
func TestLiveLostEvents(t *testing.T) {
	const connects = 4000 // about 16,000 handshake packets: more than a 1 MiB ring or the queue holds
	run := func(t *testing.T, engine string, hold string, args ...string) *report.Report {
		l := newLab(t)
		serve(t, l, 8081, func(net.Conn) {})
		holdFile := filepath.Join(t.TempDir(), "hold")
		if err := os.WriteFile(holdFile, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		r := startLiveWith(t, l, append([]string{"--engine", engine, hold, holdFile}, args...)...)
		if n := connectBurst(t, l, 8081, connects); n > 0 {
			t.Fatalf("%d connects failed", n)
		}
		r.cancel() // stop, then let the held side go: what the ring or the queue kept is reported
		os.Remove(holdFile)
		code, rep := r.wait(t, 30*time.Second)
		if code != exitOK {
			t.Errorf("exit %d: %s", code, r.errb.String())
		}
		if rep.Live == nil {
			t.Fatal("no live section in the report")
		}
		if lc := rep.Live; rep.Summary.LostEvents != lc.LostKernel+lc.LostQueue || rep.Summary.LostEvents == 0 {
			t.Errorf("lost_events %d, live %+v: want the kernel and queue losses, adding up", rep.Summary.LostEvents, lc)
		}
		t.Logf("%s: %d attempts seen, lost %d in the kernel, %d in the queue", engine, rep.Summary.Attempts, rep.Live.LostKernel, rep.Live.LostQueue)
		return rep
	}
	for _, engine := range labEngines {
		t.Run("kernel/"+engine, func(t *testing.T) {
			rep := run(t, engine, "--test-hold-capture", "--buffer-mb", "1")
			if rep.Live.LostKernel == 0 {
				t.Fatalf("nothing lost in the kernel with a 1 MiB buffer and the reader held: %+v", rep.Live)
			}
			ring := map[string]string{"ebpf": "the eBPF ring buffer was full", "afpacket": "the AF_PACKET ring was full", "pcap": "libpcap's buffer was full"}[engine]
			want := fmt.Sprintf("%d in the kernel (%s", rep.Live.LostKernel, ring)
			if txt := asText(t, rep); !strings.Contains(txt, "LOST ") || !strings.Contains(txt, want) {
				t.Errorf("the text report does not say %q:\n%.800s", want, txt)
			}
		})
	}
	t.Run("queue", func(t *testing.T) {
		rep := run(t, labEngines[0], "--test-hold-analysis")
		if rep.Live.LostQueue == 0 {
			t.Fatalf("nothing lost in the queue with the analysis held: %+v", rep.Live)
		}
		want := fmt.Sprintf("%d in synscope's queue (the analysis fell behind)", rep.Live.LostQueue)
		if txt := asText(t, rep); !strings.Contains(txt, want) {
			t.Errorf("the text report does not say %q:\n%.800s", want, txt)
		}
	})
}

// TestLiveWriteDiskFull: --write on a disk that fills. The capture goes on,
// the report says after how many packets the file stopped and why, and the
// file is valid pcapng holding exactly those packets.
func TestLiveWriteDiskFull(t *testing.T) {
	dir := mountTmpfs(t, "256k")
	l := newLab(t)
	serve(t, l, 8082, func(net.Conn) {})
	written := filepath.Join(dir, "live.pcapng")
	r := startLiveWith(t, l, "--engine", labEngines[0], "--write", written)
	const connects = 3000 // some 12,000 packets of about 100 bytes: more than 256 KiB
	if n := connectBurst(t, l, 8082, connects); n > 0 {
		t.Fatalf("%d connects failed", n)
	}
	r.cancel()
	code, rep := r.wait(t, 20*time.Second)
	stderr := r.errb.String()
	if code != exitDamaged {
		t.Errorf("exit %d, want %d: %s", code, exitDamaged, stderr)
	}
	if rep.Live == nil || rep.Live.Write == nil {
		t.Fatalf("no live.write in the report: %+v", rep.Live)
	}
	w := rep.Live.Write
	if w.Stopped != "no space left on device" || w.Packets == 0 || w.Packets >= rep.Summary.Packets {
		t.Errorf("live.write %+v, want it stopped by the full disk after some of the %d packets", w, rep.Summary.Packets)
	}
	if want := fmt.Sprintf("%s stopped after %d packets: write %s: no space left on device", written, w.Packets, written); !strings.Contains(stderr, want) {
		t.Errorf("stderr %q\nwant it to contain %q", stderr, want)
	}
	if rep.Summary.Attempts < connects {
		t.Errorf("%d attempts in the report, want %d: the capture goes on without the file", rep.Summary.Attempts, connects)
	}
	if txt := asText(t, rep); !strings.Contains(txt, fmt.Sprintf("The evidence file %s stopped after packet %d (no space left on device)", written, w.Packets)) {
		t.Errorf("the text report does not say the file stopped:\n%.800s", txt)
	}
	checkPcapng(t, written, int(w.Packets))
}

// checkBundle requires every file in dir to be complete: no temporary file
// left, the reports parse, the pcapngs read to their end. It returns the
// names.
func checkBundle(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		name, path := e.Name(), filepath.Join(dir, e.Name())
		names = append(names, name)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasSuffix(name, ".tmp") || strings.HasPrefix(name, "."):
			t.Errorf("temporary file left in the bundle: %s", name)
		case name == "report.json":
			if _, err := report.ReadJSON(bytes.NewReader(b)); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		case name == "report.html":
			if !bytes.HasSuffix(bytes.TrimSpace(b), []byte("</html>")) {
				t.Errorf("%s is cut short", name)
			}
		case name == "report.md":
			// The index of evidence files ends it when there are incidents
			// (a run interrupted early may have none).
			hasIncidents := bytes.Contains(b, []byte("### Incident #"))
			if hasIncidents && !bytes.Contains(b, []byte("## Evidence files")) {
				t.Errorf("%s is cut short (no index at its end)", name)
			}
		case strings.HasSuffix(name, ".pcapng"):
			src, err := capture.Open(path)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			var p capture.Packet
			for {
				if err := src.Next(&p); err != nil {
					if err != io.EOF {
						t.Errorf("%s: %v", name, err)
					}
					break
				}
			}
			src.Close()
		}
	}
	return names
}

// TestReadBundleDiskFull: --bundle on a disk that fills. The error names
// each file that could not be written and says ENOSPC, the exit status is
// 1, the report is still printed, and what is in the bundle is complete
// (written under a temporary name, renamed once whole).
func TestReadBundleDiskFull(t *testing.T) {
	dir := filepath.Join(mountTmpfs(t, "256k"), "bundle") // the showcase's bundle is about 400 KiB
	showcase := filepath.Join("..", "..", "testdata", "pcaps", "showcase.pcapng")
	var out, errb bytes.Buffer
	code := runMain(context.Background(), []string{"read", "--format", "json", "--bundle", dir, showcase}, nil, &out, &errb)
	stderr := errb.String()
	if code != exitDamaged {
		t.Errorf("exit %d, want %d: %s", code, exitDamaged, stderr)
	}
	if _, err := report.ReadJSON(&out); err != nil {
		t.Errorf("no report on stdout: %v", err)
	}
	failed := regexp.MustCompile(`synscope: writing (\S+): .*: no space left on device`).FindAllStringSubmatch(stderr, -1)
	if len(failed) == 0 || !strings.Contains(stderr, "the bundle in "+dir+" is incomplete") {
		t.Fatalf("stderr does not name the files that could not be written: %s", stderr)
	}
	names := checkBundle(t, dir)
	for _, f := range failed {
		if _, err := os.Stat(f[1]); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s could not be written but is there: %v", f[1], err)
		}
	}
	t.Logf("bundle on a full disk: %v; failed: %d files", names, len(failed))
}

// TestSynscopeProcess is not a test: it runs synscope as main does (signal
// handling included) for the tests that send it signals, when started by
// them (SYNSCOPE_TEST_PROCESS=1; the arguments follow "--").
func TestSynscopeProcess(t *testing.T) {
	if os.Getenv("SYNSCOPE_TEST_PROCESS") != "1" {
		t.Skip("not a test: the signal tests run synscope in a child process through it")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	if f := os.Getenv("SYNSCOPE_TEST_SIGNALS_READY"); f != "" {
		os.WriteFile(f, nil, 0o644) // signals are handled from now on
	}
	code := runMain(ctx, flag.Args(), os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// synscopeProcess is a synscope child process.
type synscopeProcess struct {
	cmd       *exec.Cmd
	out, errb bytes.Buffer
	done      chan struct{}
	code      int
}

// startSynscope starts synscope with args in a child process and returns
// once it handles signals.
func startSynscope(t *testing.T, args ...string) *synscopeProcess {
	t.Helper()
	p := &synscopeProcess{done: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], append([]string{"-test.run=^TestSynscopeProcess$", "--"}, args...)...)
	ready := filepath.Join(t.TempDir(), "signals")
	p.cmd.Env = append(os.Environ(), "SYNSCOPE_TEST_PROCESS=1", "SYNSCOPE_TEST_SIGNALS_READY="+ready)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.errb
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer waitFile(t, p, ready, false)
	go func() {
		p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *synscopeProcess) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

func (p *synscopeProcess) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(d):
		t.Fatalf("synscope did not end within %v", d)
		return -1
	}
}

// waitFile polls until path exists (or, with gone, no longer exists).
func waitFile(t *testing.T, p *synscopeProcess, path string, gone bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; {
		_, err := os.Stat(path)
		if (err == nil) != gone {
			return
		}
		select {
		case <-p.done:
			t.Fatalf("synscope ended (exit %d) while waiting for %s: %s", p.code, path, p.errb.String())
		case <-time.After(10 * time.Millisecond): // polling the readiness file
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited 20 s for %s (gone %v)", path, gone)
		}
	}
}

// TestLiveSIGTERM: SIGTERM at a random moment of a busy capture with
// --write. The report is printed and the file is valid pcapng holding every
// packet the report counts. A second signal while the report is being made
// exits at once, and the file is still valid.
func TestLiveSIGTERM(t *testing.T) {
	l := newLab(t)
	serve(t, l, 8083, func(net.Conn) {})
	busy := func() (stop func()) {
		quit := make(chan struct{})
		var wg sync.WaitGroup
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				in(t, l.cli, func() {
					for {
						select {
						case <-quit:
							return
						default:
						}
						if c, err := dialPort(l, 8083, time.Second); err == nil {
							c.Close()
						}
					}
				})
			}()
		}
		return func() { close(quit); wg.Wait() }
	}
	args := func(dir string, more ...string) []string {
		return append([]string{"live", "-i", l.srvIf, "--netns", l.srv, "--engine", labEngines[0], "--format", "json", "--kernel=false",
			"--write", filepath.Join(dir, "live.pcapng"), "--ready-file", filepath.Join(dir, "ready")}, more...)
	}

	t.Run("once", func(t *testing.T) {
		dir := t.TempDir()
		p := startSynscope(t, args(dir)...)
		waitFile(t, p, filepath.Join(dir, "ready"), false)
		stop := busy()
		// The moment is random on purpose: the signal must be safe
		// wherever the writer is.
		time.Sleep(time.Duration(50+rand.IntN(400)) * time.Millisecond)
		p.signal(t, syscall.SIGTERM)
		code := p.wait(t, 20*time.Second)
		stop()
		if code != exitOK {
			t.Errorf("exit %d: %s", code, p.errb.String())
		}
		rep, err := report.ReadJSON(&p.out)
		if err != nil {
			t.Fatalf("no report after SIGTERM: %v\nstderr: %s", err, p.errb.String())
		}
		if rep.Summary.Attempts == 0 || rep.Live == nil || rep.Live.Write == nil || rep.Live.Write.Packets != rep.Summary.Packets {
			t.Errorf("report: %d attempts, %d packets, live %+v", rep.Summary.Attempts, rep.Summary.Packets, rep.Live)
		}
		checkPcapng(t, filepath.Join(dir, "live.pcapng"), int(rep.Summary.Packets))
	})

	t.Run("twice", func(t *testing.T) {
		dir := t.TempDir()
		hold := filepath.Join(dir, "hold")
		p := startSynscope(t, args(dir, "--status-every", "50ms", "--test-hold-analysis", hold)...)
		ready := filepath.Join(dir, "ready")
		waitFile(t, p, ready, false)
		stop := busy()
		// Some packets reach the file (flushed every status tick), then
		// the analysis is held so that the run cannot finish by itself.
		for deadline := time.Now().Add(10 * time.Second); ; {
			if fi, err := os.Stat(filepath.Join(dir, "live.pcapng")); err == nil && fi.Size() > 4096 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("nothing written to the --write file")
			}
			time.Sleep(10 * time.Millisecond) // polling the file's size
		}
		if err := os.WriteFile(hold, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		p.signal(t, syscall.SIGTERM)
		waitFile(t, p, ready, true) // the first signal is being handled: a second one is heard
		p.signal(t, syscall.SIGTERM)
		code := p.wait(t, 10*time.Second)
		stop()
		if code != exitDamaged {
			t.Errorf("exit %d, want %d: %s", code, exitDamaged, p.errb.String())
		}
		m := regexp.MustCompile(`second signal: exiting without the report; \S+ holds (\d+) packets`).FindStringSubmatch(p.errb.String())
		if m == nil {
			t.Fatalf("stderr does not say it exits at once: %s", p.errb.String())
		}
		n, _ := strconv.Atoi(m[1])
		if got := checkPcapng(t, filepath.Join(dir, "live.pcapng"), n); got == 0 {
			t.Error("the --write file holds no packet")
		}
	})
}

// TestReadBundleSIGTERM: SIGTERM while `read --bundle` runs (reading from a
// pipe that stalls half-way, then at a random moment of a whole run): the
// report is printed and every file in the bundle is complete.
func TestReadBundleSIGTERM(t *testing.T) {
	showcase, err := os.ReadFile(filepath.Join("..", "..", "testdata", "pcaps", "showcase.pcapng"))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("mid-read", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "bundle")
		p := &synscopeProcess{done: make(chan struct{})}
		p.cmd = exec.Command(os.Args[0], "-test.run=^TestSynscopeProcess$", "--", "read", "--format", "json", "--bundle", dir, "-")
		p.cmd.Env = append(os.Environ(), "SYNSCOPE_TEST_PROCESS=1")
		p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.errb
		stdin, err := p.cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { p.cmd.Wait(); p.code = p.cmd.ProcessState.ExitCode(); close(p.done) }()
		defer stdin.Close()
		half := showcase[:len(showcase)/2]
		if _, err := stdin.Write(half); err != nil {
			t.Fatal(err)
		}
		// Signal once synscope has spooled all of it (its spool file, seen
		// through /proc, has the size), not while some is in the pipe.
		for deadline := time.Now().Add(10 * time.Second); ; {
			if spooled(p.cmd.Process.Pid) == int64(len(half)) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("synscope spooled %d of %d bytes", spooled(p.cmd.Process.Pid), len(half))
			}
			time.Sleep(5 * time.Millisecond) // polling the spool file's size
		}
		p.signal(t, syscall.SIGTERM)
		code := p.wait(t, 20*time.Second)
		if code != exitOK || !strings.Contains(p.errb.String(), "interrupted") {
			t.Errorf("exit %d: %s", code, p.errb.String())
		}
		rep, err := report.ReadJSON(&p.out)
		if err != nil {
			t.Fatalf("no report after SIGTERM: %v", err)
		}
		// Every packet that had arrived is analysed: as many as a read
		// of the same half (which ends on its cut last record).
		var out, errb bytes.Buffer
		runMain(context.Background(), []string{"read", "--format", "json", "-"}, bytes.NewReader(half), &out, &errb)
		whole, err := report.ReadJSON(&out)
		if err != nil || whole.Summary.Packets == 0 || rep.Summary.Packets != whole.Summary.Packets {
			t.Errorf("the interrupted bundle run analysed %d packets, the half of the file holds %d (%v)", rep.Summary.Packets, whole.Summary.Packets, err)
		}
		checkBundle(t, dir)
	})
	t.Run("random", func(t *testing.T) {
		// Thirty copies of the showcase merged: a run of some tens of ms,
		// long enough for the signal to land while the bundle is written.
		var files []string
		for i := 0; i < 30; i++ {
			files = append(files, filepath.Join("..", "..", "testdata", "pcaps", "showcase.pcapng"))
		}
		for i := 0; i < 5; i++ {
			dir := filepath.Join(t.TempDir(), "bundle")
			p := startSynscope(t, append([]string{"read", "--format", "json", "--bundle", dir, "--bundle-payload"}, files...)...)
			time.Sleep(time.Duration(rand.IntN(60)) * time.Millisecond) // a random moment, on purpose
			p.cmd.Process.Signal(syscall.SIGTERM)                       // it may have ended already
			code := p.wait(t, 20*time.Second)
			if code != exitOK {
				t.Errorf("exit %d: %s", code, p.errb.String())
			}
			if _, err := report.ReadJSON(&p.out); err != nil {
				t.Errorf("no report: %v: %s", err, p.errb.String())
			}
			if _, err := os.Stat(dir); err == nil {
				checkBundle(t, dir)
			}
		}
	})
}

// spooled is the size of the stdin spool file process pid has open (-1:
// none).
func spooled(pid int) int64 {
	fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	for _, fd := range fds {
		if target, err := os.Readlink(fd); err == nil && strings.Contains(target, "synscope-stdin-") {
			if fi, err := os.Stat(fd); err == nil {
				return fi.Size()
			}
		}
	}
	return -1
}

// TestLiveAndBundleFailures: live and bundle failures whose message can be
// checked, as TestDamagedInput does for damaged files: the exit status, a
// message naming what failed and why, and the report still printed where
// there is one to print.
func TestLiveAndBundleFailures(t *testing.T) {
	showcase := filepath.Join("..", "..", "testdata", "pcaps", "showcase.pcapng")
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// A disk already full: --write cannot even write its header.
	var full string
	var l *lab
	if os.Geteuid() == 0 {
		full = mountTmpfs(t, "64k")
		filler, _ := os.Create(filepath.Join(full, "filler"))
		io.Copy(filler, io.LimitReader(zeroes{}, 1<<20)) // until the disk is full
		filler.Close()
		l = newLab(t)
	}
	cases := []struct {
		name   string
		root   bool // needs the lab (root)
		args   func() []string
		exit   int
		msg    string // stderr must contain it
		report bool   // a JSON report is still on stdout
		absent string // a file that must not be left behind
	}{
		{"bundle directory under a file", false,
			func() []string {
				return []string{"read", "--format", "json", "--bundle", filepath.Join(notDir, "b"), showcase}
			},
			exitDamaged, "synscope: evidence bundle: mkdir " + notDir + ": not a directory", true, ""},
		{"bundle size limit negative", false,
			func() []string { return []string{"read", "--bundle", t.TempDir(), "--bundle-max-mb", "-1", showcase} },
			exitUsage, "--bundle-max-mb must not be negative", false, ""},
		{"live buffer negative", false,
			func() []string { return []string{"live", "-i", "lo", "--buffer-mb", "-1"} },
			exitUsage, "--buffer-mb must not be negative", false, ""},
		{"live no such interface", true,
			func() []string { return []string{"live", "-i", "nosuch0", "--netns", l.srv, "--engine", "afpacket"} },
			exitDamaged, `afpacket: no such interface "nosuch0" in network namespace "` + l.srvOrEmpty() + `"`, false, ""},
		{"live no such namespace", true,
			func() []string {
				return []string{"live", "-i", "eth0", "--netns", "synscope-no-such-ns", "--engine", "ebpf"}
			},
			exitDamaged, `network namespace "synscope-no-such-ns" not found`, false, ""},
		{"live --write in a missing directory", true,
			func() []string {
				return []string{"live", "-i", l.srvIf, "--netns", l.srv, "--duration", "1ms", "--write", "/nonexistent-synscope-dir/x.pcapng"}
			},
			exitDamaged, "live: open /nonexistent-synscope-dir/x.pcapng: no such file or directory", false, ""},
		{"live --write on a full disk", true,
			func() []string {
				return []string{"live", "-i", l.srvIf, "--netns", l.srv, "--duration", "1ms", "--write", filepath.Join(full, "x.pcapng")}
			},
			exitDamaged, "live: writing " + filepath.Join(full, "x.pcapng") + ": write " + filepath.Join(full, "x.pcapng") + ": no space left on device", false,
			filepath.Join(full, "x.pcapng")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.root && l == nil {
				t.Skip("skipped: needs root (the live lab)")
			}
			var out, errb bytes.Buffer
			code := runMain(context.Background(), c.args(), nil, &out, &errb)
			if code != c.exit {
				t.Errorf("exit %d, want %d: %s", code, c.exit, errb.String())
			}
			if !strings.Contains(errb.String(), c.msg) {
				t.Errorf("stderr %q\nwant it to contain %q", errb.String(), c.msg)
			}
			if c.report {
				if _, err := report.ReadJSON(&out); err != nil {
					t.Errorf("no report on stdout: %v", err)
				}
			}
			if c.absent != "" {
				if _, err := os.Stat(c.absent); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s left behind (%v)", c.absent, err)
				}
			}
		})
	}
}

type zeroes struct{}

func (zeroes) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}

func (l *lab) srvOrEmpty() string {
	if l == nil {
		return ""
	}
	return l.srv
}

// TestPcapWriterDiskFull: the --write writer on a disk that fills mid-write
// (a 64 KiB tmpfs: the kernel writes part of a buffer, then ENOSPC) keeps
// the whole blocks that made it and nothing of the rest; the file is valid
// pcapng with exactly the packets it counts. A device that refuses even the
// header (/dev/full) is an error at the start, and is left alone.
func TestPcapWriterDiskFull(t *testing.T) {
	if _, err := newPcapWriter("/dev/full"); err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Errorf("newPcapWriter(/dev/full): %v", err)
	}
	if fi, err := os.Stat("/dev/full"); err != nil || fi.Mode()&os.ModeDevice == 0 {
		t.Fatalf("/dev/full is gone or replaced: %v", err)
	}
	dir := mountTmpfs(t, "64k")
	path := filepath.Join(dir, "w.pcapng")
	pw, err := newPcapWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, 150) // 150 bytes: blocks of 184, so the cut falls inside one
	n := 0
	for ; n < 2000 && pw.err == nil; n++ {
		frame[0] = byte(n)
		pw.write(livePacket{data: frame, time: int64(n) * 1e6, origLen: 1500, link: 1})
	}
	pw.close()
	if !errors.Is(pw.err, syscall.ENOSPC) || pw.packets == 0 || pw.packets >= uint64(n) {
		t.Fatalf("after %d packets: err %v, %d packets in the file", n, pw.err, pw.packets)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != pw.size {
		t.Errorf("file of %v bytes, the writer counts %d (%v)", fi.Size(), pw.size, err)
	}
	checkPcapng(t, path, int(pw.packets))
}
