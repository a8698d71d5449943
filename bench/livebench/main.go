//go:build linux

// Command livebench measures the live engines in a network-namespace lab
// (root): a client namespace connects to a server namespace as fast as it
// can for a while, and `synscope live` captures on the server side with each
// engine in turn. It prints, per engine: connects driven per second, the
// attempts synscope saw, events per second, lost events, and the CPU time
// (user+system) synscope spent. Only addresses inside the lab are used.
//
//	go run ./bench/livebench -bin bin/synscope -seconds 5
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/synscope/synscope/report"
)

func must(err error, what string) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "livebench: %s: %v\n", what, err)
		os.Exit(1)
	}
}

func ip(args ...string) {
	out, err := exec.Command("ip", args...).CombinedOutput()
	must(err, fmt.Sprintf("ip %v: %s", args, out))
}

// inNS runs fn on a thread moved into namespace ns (the thread is discarded).
func inNS(ns string, fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		f, err := os.Open(filepath.Join("/var/run/netns", ns))
		must(err, "open netns")
		defer f.Close()
		must(unix.Setns(int(f.Fd()), unix.CLONE_NEWNET), "setns")
		fn()
	}()
	<-done
}

func main() {
	bin := flag.String("bin", "bin/synscope", "the synscope binary")
	secs := flag.Float64("seconds", 5, "how long to drive connections per engine")
	workers := flag.Int("workers", 4, "parallel connecting clients")
	engines := flag.String("engines", "ebpf,afpacket", "engines to measure")
	kernel := flag.Bool("kernel", true, "collect kernel evidence too (synscope live --kernel)")
	profile := flag.String("cpuprofile", "", "write synscope's CPU profile to this file, suffixed with the engine")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Println("livebench: skipped: needs root (network namespaces, eBPF, AF_PACKET)")
		return
	}
	id := rand.IntN(1 << 20)
	srv, cli, ifc := fmt.Sprintf("lbs%d", id), fmt.Sprintf("lbc%d", id), fmt.Sprintf("vlb%d", id)
	ip("netns", "add", srv)
	defer exec.Command("ip", "netns", "del", srv).Run()
	ip("netns", "add", cli)
	defer exec.Command("ip", "netns", "del", cli).Run()
	ip("link", "add", ifc, "type", "veth", "peer", "name", "c"+ifc)
	ip("link", "set", ifc, "netns", srv)
	ip("link", "set", "c"+ifc, "netns", cli)
	ip("-n", srv, "addr", "add", "10.255.77.2/30", "dev", ifc)
	ip("-n", cli, "addr", "add", "10.255.77.1/30", "dev", "c"+ifc)
	for _, ns := range []string{srv, cli} {
		ip("-n", ns, "link", "set", "lo", "up")
		exec.Command("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65000", "net.ipv4.tcp_tw_reuse=1").Run()
	}
	ip("-n", srv, "link", "set", ifc, "up")
	ip("-n", cli, "link", "set", "c"+ifc, "up")

	var ln net.Listener
	inNS(srv, func() {
		var err error
		ln, err = net.Listen("tcp", "10.255.77.2:8080")
		must(err, "listen")
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()

	fmt.Printf("| engine | connects/s driven | attempts seen | events/s | lost events | synscope CPU s (user+sys) | CPU per 1k attempts ms |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, eng := range strings.Split(*engines, ",") {
		dir, _ := os.MkdirTemp("", "livebench")
		ready := filepath.Join(dir, "ready")
		cmd := exec.Command(*bin, "live", "-i", ifc, "--netns", srv, "--engine", eng, "--ready-file", ready, "--format", "json",
			"--closed-linger", "1s", fmt.Sprintf("--kernel=%v", *kernel))
		if *profile != "" {
			cmd.Args = append(cmd.Args, "--cpuprofile", *profile+"."+eng)
		}
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		must(cmd.Start(), "start synscope")
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) { // polling the ready file
			if _, err := os.Stat(ready); err == nil {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				must(fmt.Errorf("not ready: %s", errb.String()), eng)
			}
		}
		var n atomic.Int64
		stop := time.Now().Add(time.Duration(*secs * float64(time.Second)))
		var wg sync.WaitGroup
		start := time.Now()
		for w := 0; w < *workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				inNS(cli, func() {
					d := net.Dialer{Timeout: 2 * time.Second}
					for time.Now().Before(stop) {
						c, err := d.Dial("tcp", "10.255.77.2:8080")
						if err == nil {
							c.(*net.TCPConn).SetLinger(0) // no TIME_WAIT pile-up on the client
							c.Close()
							n.Add(1)
						}
					}
				})
			}()
		}
		wg.Wait()
		elapsed := time.Since(start).Seconds()
		cmd.Process.Signal(syscall.SIGTERM)
		err := cmd.Wait()
		must(err, fmt.Sprintf("synscope %s: %s", eng, errb.String()))
		rep, err := report.ReadJSON(strings.NewReader(out.String()))
		must(err, "report")
		ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
		perK := 0.0
		if rep.Summary.Attempts > 0 {
			perK = 1000 * cpu / float64(rep.Summary.Attempts) * 1000
		}
		fmt.Printf("| %s | %.0f | %d | %.0f | %d | %.2f | %.2f |\n", eng, float64(n.Load())/elapsed, rep.Summary.Attempts,
			float64(rep.Summary.Packets)/elapsed, rep.Summary.LostEvents, cpu, perK)
		os.RemoveAll(dir)
	}
	ln.Close()
}
