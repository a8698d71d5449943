//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/synscope/synscope/report"
)

// labEngines are the live engines the lab runs (the pcap one joins in builds
// with -tags pcap: lab_pcap_test.go).
var labEngines = []string{"ebpf", "afpacket"}

// lab is a client and a server network namespace joined by a veth pair,
// with addresses only inside them.
type lab struct {
	srv, cli, srvIf string
	srvIP, cliIP    string
}

func newLab(t *testing.T) *lab {
	t.Helper()
	return newLabN(t, rand.IntN(100)+1) // the scenario labs use 200 and up
}

// newLabN builds a lab on the subnet 10.254.n.0/30 chosen by the caller,
// so that concurrent scenarios use distinct, deterministic subnets. (The
// addresses exist only inside the lab's namespaces, so a collision with
// another lab would be harmless; distinct subnets just keep the reports and
// failure messages unambiguous.)
func newLabN(t *testing.T, n int) *lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: the live lab needs root (network namespaces, eBPF, AF_PACKET)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipped: iproute2 (ip) is not installed")
	}
	if n < 1 || n > 254 {
		t.Fatalf("lab subnet 10.254.%d.0/30: out of range", n)
	}
	id := rand.IntN(1 << 20)
	l := &lab{srv: fmt.Sprintf("sssc%d", id), cli: fmt.Sprintf("scsc%d", id), srvIf: fmt.Sprintf("vsc%d", id),
		srvIP: fmt.Sprintf("10.254.%d.2", n), cliIP: fmt.Sprintf("10.254.%d.1", n)}
	run := func(args ...string) {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	run("netns", "add", l.srv)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", l.srv).Run() })
	run("netns", "add", l.cli)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", l.cli).Run() })
	run("link", "add", l.srvIf, "type", "veth", "peer", "name", "c"+l.srvIf)
	run("link", "set", l.srvIf, "netns", l.srv)
	run("link", "set", "c"+l.srvIf, "netns", l.cli)
	run("-n", l.srv, "addr", "add", l.srvIP+"/30", "dev", l.srvIf)
	run("-n", l.cli, "addr", "add", l.cliIP+"/30", "dev", "c"+l.srvIf)
	for _, ns := range []string{l.srv, l.cli} {
		run("-n", ns, "link", "set", "lo", "up")
	}
	run("-n", l.srv, "link", "set", l.srvIf, "up")
	run("-n", l.cli, "link", "set", "c"+l.srvIf, "up")
	return l
}

// in runs fn on an OS thread inside namespace ns.
func in(t *testing.T, ns string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // the thread is discarded, never returned to the pool
		f, err := os.Open(filepath.Join("/var/run/netns", ns))
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			t.Error(err)
			return
		}
		fn()
	}()
	<-done
}

// TestLiveLab runs `synscope live` with each engine on the server side of the
// lab while a client connects (and hits a closed port), then reads the
// --write file back: the verdicts must be the same.
func TestLiveLab(t *testing.T) {
	for _, engine := range labEngines {
		t.Run(engine, func(t *testing.T) {
			l := newLab(t)
			var ln net.Listener
			in(t, l.srv, func() {
				var err error
				if ln, err = net.Listen("tcp", l.srvIP+":8080"); err != nil {
					t.Error(err)
				}
			})
			if ln == nil {
				t.FailNow()
			}
			defer ln.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go func() {
						defer c.Close()
						buf := make([]byte, 64)
						if _, err := c.Read(buf); err == nil {
							c.Write([]byte("HTTP/1.0 200 OK\r\n\r\nhello"))
						}
					}()
				}
			}()

			dir := t.TempDir()
			ready, written := filepath.Join(dir, "ready"), filepath.Join(dir, "live.pcapng")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var out, errb bytes.Buffer
			done := make(chan int)
			mln, err := net.Listen("tcp", "127.0.0.1:0") // a free port for --metrics
			if err != nil {
				t.Fatal(err)
			}
			metricsAddr := mln.Addr().String()
			mln.Close()
			go func() {
				done <- runMain(ctx, []string{"live", "-i", l.srvIf, "--netns", l.srv, "--engine", engine,
					"--write", written, "--ready-file", ready, "--format", "json", "--metrics", metricsAddr}, nil, &out, &errb)
			}()
			// Traffic only once the engine captures.
			deadline := time.Now().Add(20 * time.Second)
			for {
				if _, err := os.Stat(ready); err == nil {
					break
				}
				select {
				case code := <-done:
					t.Fatalf("live ended early: exit %d: %s", code, errb.String())
				case <-time.After(20 * time.Millisecond):
				}
				if time.Now().After(deadline) {
					t.Fatal("the engine did not get ready")
				}
			}
			in(t, l.cli, func() {
				for i := 0; i < 3; i++ {
					c, err := net.DialTimeout("tcp", l.srvIP+":8080", 5*time.Second)
					if err != nil {
						t.Error(err)
						return
					}
					c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
					io.ReadAll(c)
					c.Close()
				}
				if c, err := net.DialTimeout("tcp", l.srvIP+":8089", 2*time.Second); err == nil {
					c.Close()
					t.Error("the closed port accepted a connection")
				}
			})
			resp, err := http.Get("http://" + metricsAddr + "/metrics")
			if err != nil {
				t.Fatalf("--metrics: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, name := range []string{"synscope_lost_events_total", "synscope_handshake_rtt_seconds_bucket"} {
				if resp.StatusCode != 200 || !bytes.Contains(body, []byte(name)) {
					t.Errorf("--metrics: status %d, %s missing", resp.StatusCode, name)
				}
			}
			cancel()
			if code := <-done; code != exitOK {
				t.Fatalf("live: exit %d: %s", code, errb.String())
			}
			rep, err := report.ReadJSON(&out)
			if err != nil {
				t.Fatalf("live report: %v", err)
			}
			o := rep.Summary.Outcomes
			if o.Established != 3 || o.Refused != 1 {
				t.Errorf("live: outcomes %+v, want 3 established and 1 refused", o)
			}
			// Offline on what live wrote: the same verdicts.
			off := analyse(t, written)
			if off.Summary.Outcomes != o {
				t.Errorf("read on the --write file: outcomes %+v, live said %+v", off.Summary.Outcomes, o)
			}
		})
	}
}

// TestLiveJSONL: --format jsonl streams each incident once it has closed,
// one JSON object per line, then the report as the last line.
func TestLiveJSONL(t *testing.T) {
	l := newLab(t)
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var errb bytes.Buffer
	done := make(chan int, 1)
	go func() {
		code := runMain(ctx, []string{"live", "-i", l.srvIf, "--netns", l.srv, "--ready-file", ready, "--format", "jsonl",
			"--incident-gap", "500ms", "--handshake-idle", "1s", "--closed-linger", "500ms", "--status-every", "200ms"}, nil, pw, &errb)
		pw.Close()
		done <- code
	}()
	for deadline := time.Now().Add(20 * time.Second); ; {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the engine did not get ready: %s", errb.String())
		}
		time.Sleep(20 * time.Millisecond) // polling for the ready file, not a guess
	}
	in(t, l.cli, func() {
		if c, err := net.DialTimeout("tcp", l.srvIP+":8089", 2*time.Second); err == nil {
			c.Close()
		}
	})
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	timeout := time.After(30 * time.Second)
	var sawIncident bool
	for !sawIncident {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("stream ended without an incident: %s", errb.String())
			}
			var obj struct {
				Type, Kind, Server string
			}
			if err := json.Unmarshal([]byte(line), &obj); err != nil {
				t.Fatalf("not JSON: %q", line)
			}
			if obj.Type == "incident" && obj.Kind == "refused" && obj.Server == l.srvIP+":8089" {
				sawIncident = true
			}
		case <-timeout:
			t.Fatal("no refused incident streamed within 30 s")
		}
	}
	cancel()
	var last string
	for line := range lines {
		last = line
	}
	if code := <-done; code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.HasPrefix(last, `{"type":"report"`) {
		t.Errorf("the last line is not the report: %.80q", last)
	}
}
